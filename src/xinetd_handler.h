/*
 * xinetd_handler: what porterd runs for a service, into its keys: a builtin,
 * or a server with its args, user, group and environment. What a porterd
 * handler cannot have is noted in tail.
 */
#ifndef PORTERD_XINETD_HANDLER_H
#define PORTERD_XINETD_HANDLER_H

#include "xinetd_conv.h"

/* builtin = NAME; the server, server_args, env and passenv of the entry are noted. */
void handler_builtin(struct conv *cv, struct entry *e, const char *builtin, struct buf *keys,
    struct buf *tail);
/*
 * exec and args (none when they are porterd's default, the basename).
 * name_in_args: xinetd's NAMEINARGS, server_args start with argv[0]. -1 when a
 * word of the args does not fit on a line: the service cannot be written.
 */
int handler_server(struct conv *cv, struct entry *e, int name_in_args, struct buf *keys);
/* user, group and groups; a name unknown here is a warning, as the target may have it. */
void handler_user(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail);
/* env and passenv of a server, but for the names porterd refuses or sets itself. */
void handler_env(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail);

#endif
