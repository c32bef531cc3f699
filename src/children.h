/* children: the handlers alive, by pid, with what to do when each is reaped. */
#ifndef PORTERD_CHILDREN_H
#define PORTERD_CHILDREN_H

#include <sys/types.h>
#include <time.h>

#include "acl.h"
#include "cgroup.h"
#include "listener.h"
#include "table.h"

/*
 * A handler's connection ends when its whole process tree has: a record whose
 * handler was reaped while others of its tree remain lingers, under a key of
 * its own (a negative number) instead of the pid, which may be reused.
 */
struct child {
	pid_t			 pid;		/* the key: the handler's pid, or < 0 lingering */
						/* or being spawned */
	pid_t			 pgid;		/* the handler's pid, its process group */
	struct cg_conn		*cg;		/* its cgroup; NULL: its process group only */
	int			 reaped;	/* the handler itself has exited, with status */
	int			 status;
	long long		 reaped_ms;
	int			 stop_at_exit;	/* shutdown = stop */
	struct svc_state	*st;		/* referenced: outlives a reload */
	struct listener		*wait_lst;	/* wait = yes: referenced, re-armed on exit */
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	int			 has_src;	/* counted in the sources table under src */
	struct srckey		 src;
	long long		 deadline_ms;	/* timeout: SIGTERM then; 0: none */
	long long		 kill_ms;	/* SIGKILL then, once SIGTERM went; 0: not yet */
	char			 peer[48];	/* -v: the client, for the exit line */
	int			 tls_fd;	/* a TLS relay's report pipe; -1: none */
	int			 no_handler;	/* a TLS relay that started none: no exit to count */
	int			 has_errlog;	/* stderr = log: a pipe in errlog */
	int			 cg_unsure;	/* its cgroup not seen empty: not to be reused */
	int			 slot_freed;	/* running and its source's count given back */
	int			 spawning;	/* a spawner thread is starting it: no pid yet, */
						/* its key is < 0 (spawner.h) */
};

/*
 * Record a child; takes references on st and wait_lst. Returns the record (to
 * fill in; valid until the next add or take), or NULL (ENOMEM).
 */
struct child *children_add(pid_t pid, struct svc_state *st, struct listener *wait_lst);
/* Put a record taken out back, under its (new) pid; 0, or -1 (ENOMEM). */
int children_put(const struct child *c);
/* Call fn on every child (which fn must not add or take). */
void children_foreach(void (*fn)(struct child *c, void *ctx), void *ctx);
/* Remove pid from the table into *out (the caller drops the references). 0, or -1 if unknown. */
int children_take(pid_t pid, struct child *out);
/* Whether a record is kept under pid (or key). */
int children_has(pid_t pid);
/* The record kept under pid (or key), valid until the next add or take; or NULL. */
struct child *children_get(pid_t pid);
size_t children_count(void);
/* Free the table at exit (the handlers themselves are left to finish). */
void children_clear(void);

#endif
