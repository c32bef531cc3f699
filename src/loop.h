/* loop: the poll loop. Signals, accepts, spawns, reaps and reloads happen here. */
#ifndef PORTERD_LOOP_H
#define PORTERD_LOOP_H

#include "table.h"

/* Install the signal handlers and their self-pipe. 0, or -1 with errno. */
int loop_init(void);
/*
 * Serve *tab until SIGTERM or SIGINT; a reload of `dir` replaces *tab.
 * max_handlers: at most this many handlers alive at once (-c), 0 for no limit.
 */
void loop_run(struct table **tab, const char *dir, unsigned max_handlers);

#endif
