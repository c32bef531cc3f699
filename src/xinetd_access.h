/*
 * xinetd_access: only_from and no_access into porterd's allow and deny. The
 * two differ where porterd cannot follow: names (porterd matches numeric
 * addresses only), an allowed network within a denied one (xinetd lets the
 * closer match win, porterd's deny always does), and a wait = yes server,
 * whose clients porterd never sees. Each of those is noted.
 */
#ifndef PORTERD_XINETD_ACCESS_H
#define PORTERD_XINETD_ACCESS_H

#include "xinetd_conv.h"

/* server_waits: a wait = yes server, which gets no allow or deny. */
void access_keys(struct conv *cv, struct entry *e, int server_waits, struct buf *keys,
    struct buf *tail);

#endif
