/* spawn: start a handler process for a connection, with its fds, environment and ids. */
#ifndef PORTERD_SPAWN_H
#define PORTERD_SPAWN_H

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "config.h"

struct conn {
	int			 fd;		/* goes on the handler's fds 0, 1 and 2 */
	struct sockaddr_storage	 peer;
	socklen_t		 peerlen;	/* 0: no peer (wait = yes) */
	struct sockaddr_storage	 local;		/* what the client reached, when known: */
	socklen_t		 locallen;	/* a specific listen address, a PROXY header; */
						/* else 0: ask the socket */
	/* Zero, except for the handler a TLS relay starts (relay.h): */
	int			 relayed;	/* fd is the relay's socketpair; the relay */
						/* did setsid, nice, chroot and the ids */
	int			 relay_errfd;	/* the handler's fd 2; -1: fd (in the TLS stream) */
	char		* const *tls_env;	/* SSL_ variables, NULL-terminated */
};

/*
 * Read PORTERD_SPAWN from the environment: "fork" makes handlers start with
 * fork() instead of vfork() (to measure one against the other); and
 * PORTERD_CLONE3: "no" takes the way of kernels without clone3 (the tests).
 */
void spawn_init(void);
/*
 * The descriptor limit handlers start with, unless their service sets
 * rlimit_nofile: the one porterd was started with, before it raised its own.
 */
void spawn_set_nofile(const struct rlimit *rl);

/*
 * Before serving, and before the listeners are opened: check that a vfork
 * child really shares porterd's memory (else fork), and hold the fds handlers
 * start from (/dev/null and two staging slots) below every listener opened
 * from the table: the loop's, and those of up to `threads` spawner threads
 * (spawner.h). Sockets from systemd and the -i file's watch come first. Returns
 * how many spawner threads can start handlers here (0: the loop only).
 */
int spawn_prepare(int threads);

/* Signals porterd catches or ignores; the only ones a child has to put back. */
void spawn_set_daemon_signals(const int *sigs, int n);

/*
 * Fork and exec s's handler on c, in the cgroup cgfd (-1: porterd's own) from
 * its start. Returns the pid once the handler has been
 * exec'd, or -1 with "what failed: why" in err (fork, or a step in the child
 * such as the exec itself; that child is then already reaped). With
 * stderr = log, *errfd is the (non-blocking) read end of the handler's fd 2,
 * else -1.
 */
pid_t spawn_handler(const struct service *s, const struct conn *c, int cgfd, int *errfd,
    char *err, size_t errlen);

/* ---- from spawner threads (spawner.h) ---- */

#define SPAWN_THREADS_MAX 8

/* A spawner thread's means: a vfork child's stack, two staging slots. */
struct spawn_ctx;
/* The i-th, 0 <= i < what spawn_prepare returned. */
struct spawn_ctx *spawn_ctx(int i);

/* The per-connection variables of a handler's environment, until its exec. */
struct spawn_env {
	char		 var[CONFIG_ENV_SLOTS][160];
	char		*listen_pid;	/* fds = systemd: completed by the child */
};

/*
 * As spawn_handler, from a thread of its own with x (one thread per ctx), in
 * an environment of its own: envp has room for s->envp_base + CONFIG_ENV_SLOTS
 * + 1 pointers, env for the variables. The kernel writes the pid to *ptid
 * before the child runs; a child that fails before its exec is left for the
 * loop to reap. *forked: whether there was a child (else c->fd is untouched).
 */
pid_t spawn_handler_from(struct spawn_ctx *x, const struct service *s, const struct conn *c,
    int cgfd, char **envp, struct spawn_env *env, int *errfd, char *err, size_t errlen,
    pid_t *ptid, int *forked);

/*
 * tls = yes: fork the relay (relay.h) for c, which makes the TLS handshake,
 * starts the handler and carries the bytes. Returns its pid, or -1 with
 * "what failed: why" in err. cgfd and *errfd are as for spawn_handler (the relay
 * enters the cgroup, and its handler is born there); *reportfd is the read end
 * (non-blocking) of the pipe the relay reports its TLS outcome on.
 */
pid_t spawn_relay(const struct service *s, const struct conn *c, int cgfd, int *errfd,
    int *reportfd, char *err, size_t errlen);

/*
 * In a relay: its own session, then the service's nice, umask, chroot, ids and
 * no_new_privs, as a handler would have them. 0, or -1 with *step failed.
 */
int spawn_sandbox(const struct service *s, const char **step);
/*
 * The calling process into the cgroup whose directory cgfd is (the relay; a
 * handler where clone3 is missing). System calls only. 0, or -1 with errno.
 */
int spawn_join_cgroup(int cgfd);
/* In a relay: porterd's signal dispositions back to the defaults, the mask empty. */
void spawn_reset_signals(void);
/* In a relay: close every fd from 3 up but keep[0..n) and what spawn_handler needs. */
void spawn_close_fds(const int *keep, int n);

/*
 * Fork a child of porterd that keeps only c->fd and runs fn on it, with s's ids
 * (stream builtins). Returns the pid, or -1 with errno.
 */
pid_t spawn_builtin(const struct service *s, int fd, void (*fn)(enum builtin b, int fd));

#endif
