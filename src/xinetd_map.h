/*
 * xinetd_map: xinetd's entries into porterd's keys. Each service becomes a
 * section in the output of the file it came from, with a comment for each
 * thing it cannot carry over; a service porterd has no form for becomes a
 * comment that says why. Errors found on the way are recorded in cv, and a
 * service with one is not written.
 */
#ifndef PORTERD_XINETD_MAP_H
#define PORTERD_XINETD_MAP_H

#include "xinetd_conv.h"

/*
 * xinetd's defaults, into cv->defaults_out: a [defaults] section, or with
 * cv->fold (fold_why, a file of the output directory, has a [defaults]
 * already) notes that they are written into each service. Call it first.
 */
void map_defaults(struct conv *cv, const char *fold_why);
/* One service entry, in the order they were read: a later one may clash with an earlier one. */
void map_service(struct conv *cv, struct entry *e);

#endif
