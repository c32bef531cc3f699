/*
 * waitmark: what waits on a wait service's socket, so that porterd can tell a
 * handler that exits without taking it (and would be started again at once,
 * forever) from one that served and left more behind.
 */
#ifndef PORTERD_WAITMARK_H
#define PORTERD_WAITMARK_H

#include <stdint.h>

/*
 * 0 when nothing waits. For a datagram socket, a fingerprint of the datagram
 * at the head of the queue (its source, size and first bytes); for a listening
 * TCP socket, the length of its accept queue; for a listening unix socket, the
 * connection at the head of its queue. 0 also when it cannot be told.
 */
uint64_t waitmark_take(int fd, int socktype);
/* Whether what woke the handler that started at `before` is still there, untaken. */
int waitmark_untaken(uint64_t before, uint64_t now, int socktype);

#endif
