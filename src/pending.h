/*
 * pending: accepted connections that must say something before they get a
 * handler (a tcpmux service name). Read without blocking the loop, under a
 * deadline, and never a byte past the line: what follows is the handler's.
 */
#ifndef PORTERD_PENDING_H
#define PORTERD_PENDING_H

#include <poll.h>

#include "acl.h"
#include "proxy.h"
#include "spawn.h"
#include "table.h"

#define PENDING_LINE_MAX 256

struct pending {
	struct conn		 conn;		/* conn.fd is the connection */
	struct srckey		 src;		/* its client's address, for the budget per source */
	long long		 added_ms;
	struct svc_state	*st;		/* the service that accepted it; referenced */
	long long		 deadline_ms;
	int			 proxy;		/* PROXY_V1/V2 allowed: a PROXY header, not a line */
	int			 ready;		/* 1: line[] or hdr complete; -1: bad (why) */
	const char		*why;
	struct proxy_header	 hdr;
	size_t			 have;		/* header bytes taken so far */
	unsigned char		 head[PROXY_MAX];
	char			 line[PENDING_LINE_MAX + 1];
};

/*
 * Connections held waiting are bounded apart from handlers, so that silent
 * clients can neither take a service's handler slots nor the daemon's
 * descriptors: at most PENDING_PER_SERVICE for a service, PENDING_PER_SOURCE
 * of those from one client address, and pending_set_max() in all. A new one
 * over a budget makes room by closing the oldest held under that budget: a
 * real client speaks at once, so the oldest is the one that says nothing.
 */
#define PENDING_PER_SERVICE 256
#define PENDING_PER_SOURCE 16
void pending_set_max(size_t max);

/*
 * Hold c (taking its fd) for st until its line (proxy == 0) or its PROXY
 * header of an allowed version comes, or deadline_ms. 0, or -1.
 */
int pending_add(const struct conn *c, struct svc_state *st, long long now_ms,
    long long deadline_ms, int proxy);
size_t pending_count(void);
/* A pollfd per connection still reading its line; returns how many. */
size_t pending_pollfds(struct pollfd *pfd);
/*
 * Read what those have. A line connection at EOF, in error or over-long is
 * closed; a PROXY one is marked bad (ready = -1), for its service to count.
 */
void pending_service(const struct pollfd *pfd, size_t n);
/*
 * Offer each ready connection to take(); when it returns 1 the connection is
 * its (fd included) and leaves the list. Then close those past their deadline
 * (sending `late`, if not NULL), but for a whole PROXY header, which waits for
 * its handler slot as long as it takes. Returns the earliest deadline left, or 0.
 */
long long pending_run(int (*take)(struct pending *p, void *ctx), void *ctx, long long now,
    const char *late);
/* Close every one (at exit). */
void pending_close_all(void);

#endif
