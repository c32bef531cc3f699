#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "spawn.h"
#include "startwatch.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct watch {
	long long	 since;		/* CLOCK_MONOTONIC ms; 0: no start in flight */
	pid_t		*tid;		/* where the child's pid is written */
	pid_t		 own;		/* there, when the caller has no place of its own */
};

static struct watch watches[1 + SPAWN_THREADS_MAX];
/*
 * Starts in flight, and whether the thread sleeps until there is one: a start
 * costs two atomic operations, and a futex wake only for the first one after
 * the thread went to sleep (at most twice a second under load).
 */
static int inflight, sleeping, stopping;
static pthread_t thread;
static int running;
static struct log_limit lim_killed;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pid_t *
startwatch_begin(int i, pid_t *tid)
{
	if (tid == NULL) {
		__atomic_store_n(&watches[i].own, 0, __ATOMIC_SEQ_CST);
		tid = &watches[i].own;
	}
	__atomic_store_n(&watches[i].tid, tid, __ATOMIC_SEQ_CST);
	__atomic_store_n(&watches[i].since, now_ms(), __ATOMIC_SEQ_CST);
	if (__atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST) == 1 &&
	    __atomic_load_n(&sleeping, __ATOMIC_SEQ_CST))
		(void)syscall(SYS_futex, &inflight, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	return tid;
}

void
startwatch_end(int i)
{
	__atomic_store_n(&watches[i].since, 0, __ATOMIC_SEQ_CST);
	__atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
}

/*
 * Kill the child of w's start begun at since, if it is still that one: through
 * a pidfd, and only while it is a child of porterd that has not exited (its
 * pid cannot have been reused then).
 */
static void
kill_overdue(struct watch *w, long long since, pid_t pid)
{
	siginfo_t si;
	int fd;

	int killed;

	memset(&si, 0, sizeof(si));
	if ((fd = (int)syscall(SYS_pidfd_open, pid, 0)) >= 0) {
		killed = __atomic_load_n(&w->since, __ATOMIC_SEQ_CST) == since &&
		    waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0 && syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0;
		close(fd);
	} else {
		/*
		 * No pidfds (before 5.3, or valgrind): by pid, once it is known to be
		 * a live child of ours, which cannot be reaped (nor its pid reused)
		 * before it exits; stopped, it does not.
		 */
		killed = __atomic_load_n(&w->since, __ATOMIC_SEQ_CST) == since &&
		    waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == 0 && kill(pid, SIGKILL) == 0;
	}
	if (killed)
		log_limited(&lim_killed, LOG_WARNING, "pid %ld had not started its handler %d s "
		    "after its start (stopped by another process of the handler's user?); "
		    "killed", (long)pid, STARTWATCH_LIMIT_MS / 1000);
}

static void *
watch_main(void *arg)
{
	(void)arg;
	/* Named from inside, as the spawner threads are (spawner.c). */
	(void)prctl(PR_SET_NAME, "porterd-watch", 0, 0, 0);
	while (!__atomic_load_n(&stopping, __ATOMIC_SEQ_CST)) {
		struct timespec half = { 0, 500 * 1000000L };
		long long now;

		if (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) == 0) {
			__atomic_store_n(&sleeping, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&inflight, __ATOMIC_SEQ_CST) == 0 &&
			    !__atomic_load_n(&stopping, __ATOMIC_SEQ_CST))
				(void)syscall(SYS_futex, &inflight, FUTEX_WAIT_PRIVATE, 0, NULL,
				    NULL, 0);
			__atomic_store_n(&sleeping, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		nanosleep(&half, NULL);
		now = now_ms();
		for (size_t i = 0; i < sizeof(watches) / sizeof(*watches); i++) {
			struct watch *w = &watches[i];
			long long since = __atomic_load_n(&w->since, __ATOMIC_SEQ_CST);
			pid_t *tid = __atomic_load_n(&w->tid, __ATOMIC_SEQ_CST);
			pid_t pid;

			if (since == 0 || now - since < STARTWATCH_LIMIT_MS || tid == NULL)
				continue;
			if ((pid = __atomic_load_n(tid, __ATOMIC_SEQ_CST)) > 0)
				kill_overdue(w, since, pid);
		}
	}
	return NULL;
}

int
startwatch_start(void)
{
	sigset_t all, saved;
	int r;

	/* Every signal is the loop's. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	r = pthread_create(&thread, NULL, watch_main, NULL);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (r != 0) {
		errno = r;
		return -1;
	}
	running = 1;
	return 0;
}

void
startwatch_stop(void)
{
	if (!running)
		return;
	__atomic_store_n(&stopping, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST);	/* out of its sleep */
	(void)syscall(SYS_futex, &inflight, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	pthread_join(thread, NULL);
	running = 0;
}
