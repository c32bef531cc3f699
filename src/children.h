/* children: the handlers alive, by pid, with what to do when each is reaped. */
#ifndef PORTERD_CHILDREN_H
#define PORTERD_CHILDREN_H

#include <sys/types.h>
#include <time.h>

#include "acl.h"
#include "listener.h"
#include "table.h"

struct child {
	pid_t			 pid;
	struct svc_state	*st;		/* referenced: outlives a reload */
	struct listener		*wait_lst;	/* wait = yes: referenced, re-armed on exit */
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	int			 has_src;	/* counted in the sources table under src */
	struct srckey		 src;
	long long		 deadline_ms;	/* timeout: SIGTERM then; 0: none */
	long long		 kill_ms;	/* SIGKILL then, once SIGTERM went; 0: not yet */
	char			 peer[48];	/* -v: the client, for the exit line */
	int			 tls_fd;	/* a TLS relay's report pipe; -1: none */
};

/*
 * Record a child; takes references on st and wait_lst. Returns the record (to
 * fill in; valid until the next add or take), or NULL (ENOMEM).
 */
struct child *children_add(pid_t pid, struct svc_state *st, struct listener *wait_lst);
/* Call fn on every child (which fn must not add or take). */
void children_foreach(void (*fn)(struct child *c, void *ctx), void *ctx);
/* Remove pid from the table into *out (the caller drops the references). 0, or -1 if unknown. */
int children_take(pid_t pid, struct child *out);
size_t children_count(void);
/* Free the table at exit (the handlers themselves are left to finish). */
void children_clear(void);

#endif
