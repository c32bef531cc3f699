/* builtins: the RFC 862-868 services porterd answers itself. */
#ifndef PORTERD_BUILTINS_H
#define PORTERD_BUILTINS_H

#include <stddef.h>
#include <sys/socket.h>

#include "config.h"

/* daytime and time answer at once, inside porterd; the others need a child. */
int builtin_is_immediate(enum builtin b);
/* Answer an accepted stream connection of an immediate builtin (never blocks). */
void builtin_stream_now(enum builtin b, int fd);
/* The body of a child serving echo, discard or chargen on fd until EOF. */
void builtin_stream_child(enum builtin b, int fd);
/*
 * Answer the datagrams waiting on fd (at most a few per call, so one busy
 * service cannot starve the others); admit() says whether a sender may have an
 * answer. Returns how many were answered.
 */
int builtin_dgram(enum builtin b, int fd, int (*admit)(void *ctx, const struct sockaddr *from),
    void *ctx);

/* Send all of buf on a blocking socket (in a child of porterd). 0, or -1. */
int builtin_send_all(int fd, const void *buf, size_t n);
/* Line `n` of the chargen pattern: 72 characters then CR LF (74 bytes). */
void builtin_chargen_line(unsigned n, char out[74]);
/* RFC 868 time: seconds since 1900-01-01 00:00 UTC, low 32 bits. */
unsigned long builtin_rfc868_now(void);
/* RFC 867 daytime text, ending in CR LF. Returns its length. */
size_t builtin_daytime(char *buf, size_t len);

#endif
