/*
 * watch: the listening sockets the loop waits on, gathered in one epoll
 * instance that the poll loop sees as a single fd. poll(2) looks at every fd it
 * is given on every call, so with one fd per service a connection to any of
 * 1000 services paid for a scan of all 1000; epoll reports only what is ready.
 */
#ifndef PORTERD_WATCH_H
#define PORTERD_WATCH_H

#include <stddef.h>

#include "listener.h"

/* The epoll instance (close-on-exec). 0, or -1 with errno. */
int watch_init(void);
/* The fd to poll for POLLIN: some watched listener is ready. -1 before watch_init. */
int watch_fd(void);
/*
 * Watch l, known to the loop as slot `idx` of the running table, or stop
 * watching it. No system call unless that changes. 0, or -1 with errno (l is
 * then not watched, and the caller tries again later).
 */
int watch_set(struct listener *l, size_t idx, int on);
/* Before l's socket is closed. */
void watch_forget(struct listener *l);
/* Up to max listeners ready now, without waiting. Returns how many (0 on error). */
int watch_ready(struct listener **ready, int max);

#endif
