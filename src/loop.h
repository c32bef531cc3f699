/* loop: the poll loop. Signals, accepts, spawns, reaps and reloads happen here. */
#ifndef PORTERD_LOOP_H
#define PORTERD_LOOP_H

#include "config.h"
#include "table.h"

/* Install the signal handlers and their self-pipe. 0, or -1 with errno. */
int loop_init(void);
/*
 * Serve *tab until SIGTERM or SIGINT; a reload of `src` (on SIGHUP, or when the
 * -i file was rewritten) replaces *tab. max_handlers: at most this many
 * handlers alive at once (-c), 0 for no limit. inetd_watch: filewatch_open of
 * src->inetd_conf, made before the file was first read so that no change is
 * missed, or -1; closed here.
 */
void loop_run(struct table **tab, const struct config_sources *src, unsigned max_handlers,
    int inetd_watch);
/*
 * After loop_run, the listeners closed: end the handlers of shutdown = stop
 * services, whole trees (SIGTERM, then SIGKILL after the grace period), and
 * return once they are gone. The others are left to finish.
 */
void loop_finish(void);

#endif
