/*
 * xinetd_emit: porterd's services.d syntax, as porterd-xinetd writes it:
 * `key = value` lines, comments, args and allow/deny lists, each kept well
 * within the line length inih reads whole (LINE_LIMIT).
 */
#ifndef PORTERD_XINETD_EMIT_H
#define PORTERD_XINETD_EMIT_H

#include <stddef.h>

#include "xinetd_nets.h"
#include "xinetd_text.h"

void emit_key(struct buf *out, const char *key, const char *value);
/* A comment, wrapped into `; ` lines. */
void emit_comment(struct buf *out, const char *text);
void emit_commentf(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * argv as an `args =` key: each word quoted with libporterd's args_quote,
 * over continuation lines when long. -1 if a word does not fit on a line.
 */
int emit_args(struct buf *out, char **argv, size_t argc);
/* A list of networks (no names) as `key = ` lines, a few to a line. */
void emit_nets(struct buf *out, const char *key, const struct net *v, size_t n);

#endif
