/*
 * cgroup: each handler's whole process tree in a cgroup v2 of porterd's own
 * subtree, so that it can be counted until its last process has left, and
 * signalled or killed whole. Without a writable cgroup2 hierarchy everything
 * here is off and porterd falls back to process groups (see loop.c).
 *
 * Layout (default): BASE/porterd holds porterd itself; BASE/handlers/SERVICE
 * holds one cgroup per connection, cN, reused once empty (creating and
 * removing one costs more than the rest of a handler start, see cgroup.c).
 */
#ifndef PORTERD_CGROUP_H
#define PORTERD_CGROUP_H

#include <stddef.h>

struct config;

struct cg_svc;		/* a service's cgroup, and its pool of empty connection cgroups */
struct cg_conn;		/* a connection's cgroup */

/* Controllers porterd could enable below its subtree. */
#define CG_MEMORY 1
#define CG_PIDS 2

/*
 * Find a writable cgroup2 hierarchy and make porterd's subtree in it. where:
 * NULL for the default (porterd's own cgroup when it is porterd's alone, as
 * under systemd with Delegate=yes, else a porterd.PID below it; porterd moves
 * itself into BASE/porterd), "none" for no containment, or a cgroup directory
 * (created if missing) for the handlers, porterd itself staying where it is.
 * Returns 1 when handlers are contained, else 0 with the reason in msg.
 */
int cgroup_setup(const char *where, char *msg, size_t len);
/*
 * Without creating anything: the controllers (CG_*) that a porterd started
 * with `where` could enable, or -1 when it would have no cgroups (-t).
 */
int cgroup_probe(const char *where);
/* Whether handlers are contained; the controllers enabled below BASE. */
int cgroup_active(void);
int cgroup_controllers(void);
/* Turn on the controllers of want (CG_*) that are not yet; returns those on. */
int cgroup_enable(int want);
/* What the services of cf need: CG_MEMORY for memory_max, CG_PIDS for tasks_max. */
int cgroup_wanted(const struct config *cf);
/* BASE, for the log. */
const char *cgroup_base(void);

/*
 * A service's cgroup under handlers/, made on first use; the caller keeps the
 * pointer (NULL: could not, with errno).
 */
struct cg_svc *cgroup_svc_new(const char *name, unsigned long long id);
/* The service is gone, and every one of its connections has ended. */
void cgroup_svc_free(struct cg_svc *sv);

struct cg_usage {
	double		 cpu_seconds;	/* user and system, of every handler ever run */
	long long	 memory;	/* bytes now; -1: no memory controller */
	long long	 tasks;		/* processes now; -1: no pids controller */
};
int cgroup_svc_usage(const struct cg_svc *sv, struct cg_usage *u);

/*
 * An empty cgroup of sv for a new connection (from the pool, or new), with
 * memory.max and pids.max set as asked (0: no limit). NULL with errno.
 */
struct cg_conn *cgroup_conn_get(struct cg_svc *sv, unsigned long long memory_max,
    unsigned long tasks_max);
/* The fd clone3 takes with CLONE_INTO_CGROUP; closed by cgroup_conn_started. */
int cgroup_conn_fd(const struct cg_conn *cc);
void cgroup_conn_started(struct cg_conn *cc);
/* 1: no process left in it; 0: some; -1: cannot tell (errno). */
int cgroup_conn_empty(struct cg_conn *cc);
/*
 * Tell cgroup_run about cc once it is empty, with key: 0. 1: it is empty
 * already; -1 with errno: cannot (cc is then to be treated as empty).
 */
int cgroup_conn_watch(struct cg_conn *cc, long key);
/* sig to every process in it; returns how many were signalled. */
int cgroup_conn_signal(struct cg_conn *cc, int sig);
/* Every process in it killed at once (cgroup.kill, else SIGKILL to each). */
int cgroup_conn_kill(struct cg_conn *cc);
/* The connection has ended and its cgroup was seen empty: back to the pool. */
void cgroup_conn_put(struct cg_conn *cc);
/*
 * Close the fds of the pooled cgroups idle for a while (now: monotonic ms).
 * Returns when to call again, or 0 when no fd is kept.
 */
long long cgroup_cool(long long now);

/* At exit, its handler left to finish: forget it (removed if empty by now). */
void cgroup_conn_drop(struct cg_conn *cc);

/* An fd that is readable when a watched cgroup may have emptied (-1: none). */
int cgroup_fd(void);
/* Call done(key, ctx) for each watched cgroup now empty (it is no longer watched). */
void cgroup_run(void (*done)(long key, void *ctx), void *ctx);

/*
 * At exit: remove every empty cgroup of the subtree, and the subtree itself
 * when nothing is left in it. Returns how many connection cgroups still hold
 * processes.
 */
size_t cgroup_cleanup(void);

/* For the unit tests: the text written for a limit ("max" for 0). */
void cgroup_limit_text(unsigned long long v, char *buf, size_t len);
/* Parse "usage_usec N" out of cpu.stat text; -1 if absent. */
long long cgroup_parse_usage(const char *text);
/* Parse "populated N" out of cgroup.events text: 0, 1, or -1. */
int cgroup_parse_populated(const char *text);

#endif
