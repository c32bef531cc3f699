#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "spawner.h"

/* Threads unless PORTERD_SPAWNERS says otherwise (0: none, the loop starts all). */
#define THREADS_DEFAULT 2
/* Jobs at once, beyond which the loop starts handlers itself. */
#define JOBS_MAX 256
/* The threads' own stacks (a vfork child runs on one of spawn.c's). */
#define THREAD_STACK (256 * 1024)

/*
 * Under the lock: the queue, each thread's current job, the done list and the
 * count of jobs queued or running. The free list and everything else are the
 * loop's alone.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work = PTHREAD_COND_INITIALIZER;	/* a job was queued */
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;	/* busy fell to 0 */
static struct spawn_job *queue, **queue_tail = &queue;
static struct spawn_job *done, **done_tail = &done;
static struct spawn_job *current[SPAWN_THREADS_MAX];
static unsigned busy;		/* changed under the lock; read without it too */
static unsigned ndone;		/* on the done list; read without the lock too */
static int wake_fd = -1;
static int nthreads;
static pthread_t threads[SPAWN_THREADS_MAX];
static int stopping;		/* under the lock: threads return once the queue is empty */

/*
 * For the tests: PORTERD_TEST_SPAWNER_PAUSE_MS holds each thread that long
 * between a handler's start and its job being done, so that the handler can
 * exit and be reaped first (spawner_reaped); and every start is a thread's,
 * even when the threads are idle (spawner_idle says no).
 */
static long pause_ms;

static struct spawn_job *free_jobs;
static unsigned njobs;		/* made, free or not */

/* A thread's work: start the handler, close porterd's copy of the connection. */
static void
run(struct spawn_ctx *x, struct spawn_job *j)
{
	pid_t pid;

	pid = spawn_handler_from(x, j->s, &j->c, j->cgfd, j->envp, &j->env, &j->errfd, j->why,
	    sizeof(j->why), &j->pid, &j->forked);
	/* j->pid needs no store: the kernel wrote it before the child ran. */
	j->err = pid >= 0 ? 0 : errno != 0 ? errno : EIO;
	/* The handler has its copy, or its child failed: ours goes. Else the loop decides. */
	if (j->forked) {
		close(j->c.fd);
		j->c.fd = -1;
	}
	if (pause_ms > 0) {
		struct timespec ts = { pause_ms / 1000, (pause_ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

static void *
thread_main(void *arg)
{
	int i = (int)(intptr_t)arg;
	struct spawn_ctx *x = spawn_ctx(i);
	struct spawn_job *j;
	uint64_t one = 1;
	int wake;

	/*
	 * Named from inside: pthread_setname_np from another thread opens
	 * /proc/self/task/TID/comm, an fd of porterd's for a moment.
	 */
	(void)prctl(PR_SET_NAME, "porterd-spawn", 0, 0, 0);
	pthread_mutex_lock(&lock);
	for (;;) {
		while (queue == NULL && !stopping)
			pthread_cond_wait(&work, &lock);
		if (queue == NULL)
			break;
		j = queue;
		if ((queue = j->next) == NULL)
			queue_tail = &queue;
		current[i] = j;
		pthread_mutex_unlock(&lock);

		run(x, j);

		pthread_mutex_lock(&lock);
		current[i] = NULL;
		j->next = NULL;
		*done_tail = j;
		done_tail = &j->next;
		__atomic_store_n(&ndone, ndone + 1, __ATOMIC_RELEASE);
		wake = j->wake || j->err != 0 || j->reaped;
		if (__atomic_sub_fetch(&busy, 1, __ATOMIC_RELAXED) == 0)
			pthread_cond_broadcast(&idle);
		if (wake)
			(void)!write(wake_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int
spawner_wanted(void)
{
	const char *v = getenv("PORTERD_SPAWNERS");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return THREADS_DEFAULT;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n < 0)
		return THREADS_DEFAULT;
	return n > SPAWN_THREADS_MAX ? SPAWN_THREADS_MAX : (int)n;
}

int
spawner_start(int n)
{
	sigset_t all, saved;
	pthread_attr_t attr;

	const char *v = getenv("PORTERD_TEST_SPAWNER_PAUSE_MS");

	if (v != NULL)
		pause_ms = strtol(v, NULL, 10);
	if (n <= 0 || (wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return 0;
	if (pthread_attr_init(&attr) != 0)
		return 0;
	(void)pthread_attr_setstacksize(&attr, THREAD_STACK);
	/* Every signal is the loop's: the threads are born with them all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	for (nthreads = 0; nthreads < n && nthreads < SPAWN_THREADS_MAX; nthreads++) {
		if (pthread_create(&threads[nthreads], &attr, thread_main,
		    (void *)(intptr_t)nthreads) != 0)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	pthread_attr_destroy(&attr);
	return nthreads;
}

int
spawner_active(void)
{
	return nthreads > 0;
}

int
spawner_idle(void)
{
	return pause_ms == 0 && __atomic_load_n(&busy, __ATOMIC_RELAXED) == 0;
}

int
spawner_fd(void)
{
	return wake_fd;
}

void
spawner_woken(void)
{
	uint64_t n;

	(void)!read(wake_fd, &n, sizeof(n));
}

struct spawn_job *
spawner_job(const struct service *s)
{
	size_t room = s->envp_base + CONFIG_ENV_SLOTS + 1;
	struct spawn_job *j = free_jobs;

	if (j != NULL) {
		free_jobs = j->next;
	} else {
		if (njobs >= JOBS_MAX || (j = calloc(1, sizeof(*j))) == NULL)
			return NULL;
		njobs++;
	}
	if (j->envp_room < room) {
		char **envp = realloc(j->envp, room * sizeof(*envp));

		if (envp == NULL) {
			j->next = free_jobs;
			free_jobs = j;
			return NULL;
		}
		j->envp = envp;
		j->envp_room = room;
	}
	j->s = s;
	j->cgfd = -1;
	j->wake = 0;
	j->lst = NULL;
	j->pid = 0;
	j->err = 0;
	j->forked = 0;
	j->errfd = -1;
	j->why[0] = '\0';
	j->reaped = 0;
	j->status = 0;
	j->next = NULL;
	return j;
}

void
spawner_unused(struct spawn_job *j)
{
	j->next = free_jobs;
	free_jobs = j;
}

void
spawner_submit(struct spawn_job *j)
{
	pthread_mutex_lock(&lock);
	j->next = NULL;
	*queue_tail = j;
	queue_tail = &j->next;
	__atomic_add_fetch(&busy, 1, __ATOMIC_RELAXED);
	pthread_cond_signal(&work);
	pthread_mutex_unlock(&lock);
}

void
spawner_collect(void (*fn)(struct spawn_job *j, void *ctx), void *ctx)
{
	struct spawn_job *list, *next;

	/* Most wakeups of the loop have nothing here: no lock taken then. */
	if (nthreads == 0 || __atomic_load_n(&ndone, __ATOMIC_ACQUIRE) == 0)
		return;
	pthread_mutex_lock(&lock);
	list = done;
	done = NULL;
	done_tail = &done;
	__atomic_store_n(&ndone, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lock);
	for (; list != NULL; list = next) {
		next = list->next;
		fn(list, ctx);
		list->next = free_jobs;
		free_jobs = list;
	}
}

long
spawner_reaped(pid_t pid, int status)
{
	struct spawn_job *j = NULL;
	long key = 0;

	if (nthreads == 0)
		return 0;
	pthread_mutex_lock(&lock);
	/* Not a job whose handler was reaped already: its pid may be in use again. */
	for (int i = 0; i < nthreads && j == NULL; i++)
		if (current[i] != NULL && !current[i]->reaped &&
		    __atomic_load_n(&current[i]->pid, __ATOMIC_RELAXED) == pid)
			j = current[i];
	for (struct spawn_job *d = done; d != NULL && j == NULL; d = d->next)
		if (!d->reaped && d->pid == pid)
			j = d;
	if (j != NULL) {
		j->reaped = 1;
		j->status = status;
		key = j->key;
	}
	pthread_mutex_unlock(&lock);
	return key;
}

void
spawner_stop(void)
{
	struct spawn_job *j;

	if (nthreads == 0)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&work);
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	while ((j = free_jobs) != NULL) {
		free_jobs = j->next;
		free(j->envp);
		free(j);
	}
	close(wake_fd);
	wake_fd = -1;
}

void
spawner_quiesce(void)
{
	if (nthreads == 0)
		return;
	pthread_mutex_lock(&lock);
	while (busy != 0)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}
