/*
 * xinetd_limits: what bounds a service's handlers, into porterd's keys:
 * instances, per_source and cps (counts and rates), nice, umask and the
 * rlimits (the handler's process). A value porterd cannot take the same way
 * is noted in tail; a malformed one is an error, and marks e bad.
 */
#ifndef PORTERD_XINETD_LIMITS_H
#define PORTERD_XINETD_LIMITS_H

#include "xinetd_conv.h"

/*
 * Check beforehand the values that the functions below check as they write
 * them, so that an entry with one mistake has all of them reported at once.
 * Only the entry's own values: those of the defaults are checked there.
 */
void limits_check(struct conv *cv, struct entry *e);

/*
 * instances, cps and umask also make the [defaults] section: then e is NULL,
 * s the defaults' value (or NULL when not set) and who NULL; otherwise s is
 * the value that applies to service e, and who its name.
 */
void limits_instances(struct conv *cv, struct entry *e, const struct slot *s,
    struct buf *keys, struct buf *tail, const char *who);
void limits_cps(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys,
    struct buf *tail, const char *who);
void limits_umask(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys);

/* per_source (s: e's own or the defaults'); a wait = yes server gets no limit. */
void limits_per_source(struct conv *cv, struct entry *e, const struct slot *s,
    int server_waits, struct buf *keys, struct buf *tail);
void limits_nice(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail);
/* rlimit_as, rlimit_cpu and rlimit_files; the other rlimits are not carried over. */
void limits_rlimits(struct conv *cv, struct entry *e, struct buf *keys);

#endif
