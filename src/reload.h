/*
 * reload: read and check the next configuration on a thread of its own, so that
 * the loop goes on serving while a large services.d is parsed. The loop then
 * finishes the reload itself (TLS contexts, sockets, the table swap), which is
 * quick. One read at a time.
 */
#ifndef PORTERD_RELOAD_H
#define PORTERD_RELOAD_H

#include "config.h"

/* At start: what tells the loop that a read is done. -1 with errno. */
int reload_init(void);
/*
 * Begin reading src (which must stay valid until reload_take). When no thread
 * can be made, the read is done here and now, and reload_fd is ready at once.
 */
void reload_start(const struct config_sources *src);
/* A read has begun and its result is not taken yet. */
int reload_busy(void);
/* Readable once the read is done; -1 when none is in flight. */
int reload_fd(void);
/*
 * The result of a read that is done (or, if it is not yet, once it is): what
 * config_load returned, its errors in errs, and the time it took in ms.
 */
struct config *reload_take(struct config_errors *errs, long long *ms);
/* At exit: wait for a read in flight and drop what it made. */
void reload_abandon(void);

#endif
