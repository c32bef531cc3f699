#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"
#include "reload.h"

/*
 * What a read needs and gives. Between reload_start and the join in reload_take
 * only the reader touches it; pthread_join orders its writes before our reads.
 * The reader shares nothing else with the loop: config_load's caches are its
 * own, its files are opened close-on-exec (a handler spawned meanwhile inherits
 * none), and OpenSSL, which the relays use after fork, is left to the loop.
 */
static struct {
	struct config_sources	 apart;		/* what to read, with tls_apart */
	struct config		*cf;
	struct config_errors	 errs;
	long long		 t0, ms;
	pthread_t		 thread;
	int			 threaded;	/* else read in reload_start */
	int			 busy;
} rd;
static int done_fd = -1;

/* Free heap after a read above which it goes back to the system. */
#define RELOAD_TRIM_BYTES (16 << 20)

static void
load(void)
{
	rd.cf = config_load(&rd.apart, &rd.errs, NULL);
	/*
	 * A large or broken configuration may have taken many megabytes, freed by
	 * now: give them back when there is much to give, more than is in use (a
	 * table's worth is kept: the next reload would only fault it in again).
	 * Here, off the loop: counting the free heap walks all of it.
	 */
	struct mallinfo2 mi = mallinfo2();

	if (mi.fordblks > RELOAD_TRIM_BYTES && mi.fordblks > mi.uordblks)
		malloc_trim(0);
	rd.ms = log_now_ms() - rd.t0;
}

static void *
reader(void *unused)
{
	uint64_t one = 1;

	(void)unused;
	/* Told apart from the spawner threads in ps -L, top -H and the tests; named
	 * from inside, as they are (spawner.c). */
	(void)prctl(PR_SET_NAME, "porterd-reload", 0, 0, 0);
	load();
	(void)!write(done_fd, &one, sizeof(one));
	return NULL;
}

int
reload_init(void)
{
	if (done_fd < 0)
		done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return done_fd < 0 ? -1 : 0;
}

void
reload_start(const struct config_sources *src)
{
	sigset_t all, old;

	if (rd.busy)
		return;
	rd.apart = *src;
	rd.apart.tls_apart = 1;
	rd.cf = NULL;
	memset(&rd.errs, 0, sizeof(rd.errs));
	rd.t0 = log_now_ms();
	rd.busy = 1;
	/* Signals are the loop's: the reader is never interrupted by one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rd.threaded = pthread_create(&rd.thread, NULL, reader, NULL) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!rd.threaded) {
		load();
		(void)!write(done_fd, &(uint64_t){ 1 }, sizeof(uint64_t));
	}
}

int
reload_busy(void)
{
	return rd.busy;
}

int
reload_fd(void)
{
	return rd.busy ? done_fd : -1;
}

struct config *
reload_take(struct config_errors *errs, long long *ms)
{
	struct config *cf;
	uint64_t n;

	if (!rd.busy) {
		memset(errs, 0, sizeof(*errs));
		*ms = 0;
		return NULL;
	}
	if (rd.threaded)
		pthread_join(rd.thread, NULL);
	(void)!read(done_fd, &n, sizeof(n));
	rd.busy = 0;
	rd.threaded = 0;
	cf = rd.cf;
	*errs = rd.errs;
	*ms = rd.ms;
	rd.cf = NULL;
	memset(&rd.errs, 0, sizeof(rd.errs));
	return cf;
}

void
reload_abandon(void)
{
	struct config_errors errs = { NULL, 0 };
	long long ms;

	if (rd.busy)
		config_free(reload_take(&errs, &ms));
	config_errors_free(&errs);
	if (done_fd >= 0)
		close(done_fd);
	done_fd = -1;
}
