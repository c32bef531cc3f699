/*
 * spawner: handlers started from threads of their own. The loop waits for no
 * child: while one is being started (the vfork window of bench/README), the
 * loop goes on accepting and other threads start other children.
 *
 * The loop fills a job, submits it and goes on; a thread starts the handler
 * and puts the job on the done list, which the loop collects at its next
 * wakeup. A job that went well wakes the loop only when asked to (wake);
 * one that failed, or whose handler the loop reaped before collecting it,
 * always does.
 */
#ifndef PORTERD_SPAWNER_H
#define PORTERD_SPAWNER_H

#include <sys/types.h>

#include "listener.h"
#include "spawn.h"

struct spawn_job {
	/* The loop's, before spawner_submit. */
	const struct service	*s;		/* kept alive until collected */
	struct conn		 c;		/* c.fd is the job's */
	int			 cgfd;		/* the handler's cgroup, or -1 */
	int			 wake;		/* wake the loop even when it went well */
	long			 key;		/* the loop's record of it */
	struct listener		*lst;		/* a reference, or NULL */
	/* The thread's, for the loop once done. */
	pid_t			 pid;		/* the kernel writes it before the child runs */
	int			 err;		/* 0: exec'd; else errno, and why says what failed */
	int			 forked;	/* there was a child: c.fd is closed */
	int			 errfd;		/* stderr = log: the pipe's read end */
	char			 why[256];
	/* The loop's, under the lock: its handler was reaped before it was collected. */
	int			 reaped, status;
	/* Room for the environment. */
	char			**envp;
	size_t			 envp_room;
	struct spawn_env	 env;
	struct spawn_job	*next;
};

/* How many threads to ask spawn_prepare for: PORTERD_SPAWNERS, else a default. */
int spawner_wanted(void);
/* Start n threads (the contexts spawn_prepare made); the number started. */
int spawner_start(int n);
/* Whether any thread runs: else the loop starts every handler itself. */
int spawner_active(void);
/* No job queued or being started. */
int spawner_idle(void);
/* A job with room for s's environment, or NULL (too many at once, or ENOMEM). */
struct spawn_job *spawner_job(const struct service *s);
void spawner_submit(struct spawn_job *j);
/* A job from spawner_job that is not submitted after all. */
void spawner_unused(struct spawn_job *j);
/* Readable when jobs are done that the loop was to be woken for; then spawner_woken. */
int spawner_fd(void);
void spawner_woken(void);
/* Every job done to fn, in order; then they are free again. */
void spawner_collect(void (*fn)(struct spawn_job *j, void *ctx), void *ctx);
/*
 * The loop reaped pid, which it does not know: if it is the handler of a job
 * not yet collected, note the status there and return the job's key (its
 * record in the loop's table); else 0.
 */
long spawner_reaped(pid_t pid, int status);
/* Wait until no job is queued or being started (before their services are freed). */
void spawner_quiesce(void);
/* At exit, once quiesced and collected: the threads end, the jobs are freed. */
void spawner_stop(void);

#endif
