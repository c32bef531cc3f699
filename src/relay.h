/*
 * relay: a tls = yes connection. porterd forks a relay per connection
 * (spawn_relay); the relay drops to the service's ids, makes the TLS handshake,
 * starts the handler on one end of a socketpair with the SSL_ variables, and
 * carries the bytes both ways, half-closes included, until both sides are done.
 * A crash in TLS code takes one connection down, never porterd.
 */
#ifndef PORTERD_RELAY_H
#define PORTERD_RELAY_H

#include "config.h"
#include "spawn.h"
#include "table.h"

/* What a relay tells porterd when it ends, in one write on its report pipe. */
struct relay_report {
	int		 handshake;	/* 0: made; else 1 + enum tls_fail */
	int		 truncated;	/* the client went without close_notify */
	int		 no_handler;	/* the handler could not be started (why) */
	char		 why[256];
};

/*
 * In the forked child: never returns. cgfd: the connection's cgroup (O_PATH) to
 * enter first, or -1; errfd: the handler's fd 2, or -1 (the stream).
 */
_Noreturn void relay_main(const struct service *s, const struct conn *c, int cgfd, int errfd,
    int reportfd);

/* In porterd, once the relay is reaped: its report. 0, or -1 if it sent none. */
int relay_report_read(int fd, struct relay_report *r);

#endif
