#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "builtins.h"
#include "cgroup.h"
#include "children.h"
#include "errlog.h"
#include "filewatch.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "pending.h"
#include "relay.h"
#include "reload.h"
#include "report.h"
#include "spawn.h"
#include "spawner.h"
#include "waitmark.h"
#include "watch.h"

/* Connections taken from one listener per wakeup: a burst drains, no listener starves. */
#define ACCEPT_BURST 16
/* Back-off of a listener when the process is out of fds or cannot fork. */
#define PAUSE_EMFILE_MS 1000
#define PAUSE_FORK_MS 250
/* A wait handler that leaves what woke it: the first pause, and the longest. */
#define WAIT_SPIN_PAUSE_MS 1000LL
#define WAIT_SPIN_PAUSE_MAX_MS 60000LL
/* A client of a proxy = service has this long to send its header. */
#define PROXY_WAIT_MS 5000
/* A tcpmux client names its service, and gets it, within this. */
#define TCPMUX_WAIT_MS 30000
/* timeout, shutdown = stop: SIGKILL (cgroup.kill) this long after SIGTERM. */
#define TIMEOUT_KILL_MS 5000
/* A process group whose leader is gone is looked at this often (no cgroup). */
#define GROUP_PROBE_MS 100

static const int caught[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGUSR1 };
#define NCAUGHT (int)(sizeof(caught) / sizeof(*caught))

static int selfpipe[2] = { -1, -1 };
static unsigned max_total = UINT_MAX;	/* -c: handlers alive in the whole daemon */
static size_t timed_children;		/* children with a timeout */
static long long next_timer_ms;		/* earliest timeout to act on; 0: none */
static volatile sig_atomic_t pending[NSIG];
/*
 * Whether a listener is watched changes only when a wait handler starts or
 * ends, a service reaches max_children or leaves it, the daemon reaches -c or
 * leaves it, a pause begins or ends, or the table is reloaded (connections
 * held for their first words are not handlers: they have budgets of their own). Each of those sets rewatch: only then does the loop look
 * at every listener again, and a connection costs the same with 1 or 1000.
 */
static int rewatch = 1;
static long long next_unpause;		/* earliest end of a pause; 0: none */
/* Lines of the -i file whose socket could not be opened are tried again, by a reload. */
#define REBIND_MS 60000
static long long rebind_ms = REBIND_MS;	/* PORTERD_TEST_REBIND_MS for the tests */
static long long next_rebind;		/* when; 0: none due */
static pid_t next_linger_key = -1;	/* keys of records without a pid: -1, -2, ... */
static pid_t last_linger_key = INT_MIN;	/* ...down to this one, then -1 again */

static void
on_signal(int sig)
{
	int saved = errno;

	pending[sig] = 1;
	/* Full pipe: a wakeup is already on its way, and the flag is set. */
	(void)!write(selfpipe[1], "", 1);
	errno = saved;
}

int
loop_init(void)
{
	struct sigaction sa;
	int sigs[NCAUGHT + 1];

	if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) < 0 || watch_init() < 0 ||
	    reload_init() < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < NCAUGHT; i++) {
		if (sigaction(caught[i], &sa, NULL) < 0)
			return -1;
		sigs[i] = caught[i];
	}
	/* porterd writes to sockets its clients may have closed. */
	signal(SIGPIPE, SIG_IGN);
	sigs[NCAUGHT] = SIGPIPE;
	spawn_set_daemon_signals(sigs, NCAUGHT + 1);
	return 0;
}

static int
take_signal(int sig)
{
	if (!pending[sig])
		return 0;
	pending[sig] = 0;
	return 1;
}

static void pause_listener(struct listener *l, long long ms);
static void spawned(struct spawn_job *j, void *ctx);
static int spawns(const struct service *s);

/*
 * A wait handler that exits without taking the datagram or connection that
 * woke it would be started again at once, forever (220 times a second): after
 * three in a row, wait before the next, twice as long each time, up to a minute.
 */
static void
wait_handler_left(struct listener *l, struct svc_state *st, double secs)
{
	long long ms;

	if (l->fd < 0 || secs >= 1.0 ||
	    !waitmark_untaken(l->wait_mark, waitmark_take(l->fd, l->socktype), l->socktype)) {
		l->wait_spins = 0;
		return;
	}
	if (++l->wait_spins < 3)
		return;
	ms = WAIT_SPIN_PAUSE_MS << (l->wait_spins < 9 ? l->wait_spins - 3 : 6);
	if (ms > WAIT_SPIN_PAUSE_MAX_MS)
		ms = WAIT_SPIN_PAUSE_MAX_MS;
	st->failed++;
	log_limited(&st->lim_fail, LOG_WARNING, "%s: %u handlers in a row exited without "
	    "taking what woke them; the next starts in %lld s", st->name, l->wait_spins,
	    ms / 1000);
	pause_listener(l, ms);
}

/* Its handler and tree are gone: max_children and max_per_source count it no more. */
static void
free_slot(struct child *c)
{
	if (c->st->capped)
		rewatch = 1;
	c->st->running--;
	if (c->has_src) {
		struct source *src = sources_find(c->st->id, &c->src);

		if (src != NULL && src->active > 0)
			src->active--;
	}
	c->slot_freed = 1;
}

/*
 * The connection is over: its handler was reaped and, contained, the last
 * process of its tree has left. Only now does its slot free up.
 */
static void
child_done(struct child *c)
{
	struct timespec now;
	double secs;
	int status = c->status;

	if (c->st->capped || c->wait_lst != NULL || children_count() + 1 >= max_total)
		rewatch = 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - c->started.tv_sec) +
	    (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
	if (!c->slot_freed)
		free_slot(c);
	if (c->deadline_ms != 0)
		timed_children--;
	if (c->wait_lst != NULL) {
		c->wait_lst->wait_pid = 0;
		wait_handler_left(c->wait_lst, c->st, secs);
		listener_unref(c->wait_lst);
	}
	/* One that may still hold processes is removed if it can be, never pooled. */
	if (c->cg != NULL && c->cg_unsure)
		cgroup_conn_drop(c->cg);
	else if (c->cg != NULL)
		cgroup_conn_put(c->cg);
	if (c->no_handler) {
		svc_state_unref(c->st);
		return;
	}
	if (WIFSIGNALED(status))
		c->st->exits_signal++;
	else if (WEXITSTATUS(status) == 0)
		c->st->exits_ok++;
	else
		c->st->exits_error++;
	if (WIFSIGNALED(status) && log_verbose())
		log_warn("%s: pid %ld killed by signal %d (%s) after %.3f s, client %s",
		    c->st->name, (long)c->pgid, WTERMSIG(status),
		    strsignal(WTERMSIG(status)), secs, c->peer);
	else if (WIFSIGNALED(status))
		log_limited(&c->st->lim_signal, LOG_WARNING,
		    "%s: pid %ld killed by signal %d (%s) after %.3f s", c->st->name,
		    (long)c->pgid, WTERMSIG(status), strsignal(WTERMSIG(status)), secs);
	else
		log_debug("%s: pid %ld exited with status %d after %.3f s, client %s",
		    c->st->name, (long)c->pgid, WEXITSTATUS(status), secs, c->peer);
	svc_state_unref(c->st);
}

/*
 * Whether what the reaped handler started still runs: the rest of its cgroup;
 * without one, its process group, but only once it was told to end (timeout,
 * shutdown = stop), so that SIGKILL still reaches the group after the grace.
 * A cgroup that cannot be read (out of fds) counts as ended, but unsure.
 */
static int
tree_left(struct child *c)
{
	int empty;

	if (c->cg != NULL) {
		if ((empty = cgroup_conn_empty(c->cg)) < 0)
			c->cg_unsure = 1;
		return empty == 0;
	}
	return c->kill_ms != 0 && kill(-c->pgid, 0) == 0;
}

/*
 * A key for a record without a pid: a lingering tree, a handler being spawned.
 * Every threaded start takes one, so the counter wraps within days at full
 * speed, while a lingering tree may hold its key for longer: a key in use is
 * skipped (the table has fewer than 2^31 records, so one is free).
 */
static pid_t
pidless_key(void)
{
	pid_t key = next_linger_key;

	for (size_t n = 0; n <= children_count(); n++) {
		key = next_linger_key;
		next_linger_key = next_linger_key == last_linger_key ? -1 : next_linger_key - 1;
		if (!children_has(key))
			break;
	}
	return key;
}

/* Keep the record of a reaped handler whose tree goes on, under a key of its own. */
static void
linger(struct child *c)
{
	int r;

	c->pid = pidless_key();
	if (c->cg != NULL && (r = cgroup_conn_watch(c->cg, c->pid)) != 0) {
		if (r < 0)
			log_limited(&c->st->lim_fail, LOG_ERR, "%s: pid %ld: watching its cgroup: "
			    "%s; its slot is freed now", c->st->name, (long)c->pgid,
			    strerror(errno));
		c->cg_unsure = r < 0;
		child_done(c);
		return;
	}
	if (children_put(c) < 0) {
		c->cg_unsure = 1;	/* its tree goes on */
		child_done(c);
		return;
	}
	if (c->cg == NULL) {
		/* Probed by the timers until the group is empty. */
		long long due = log_now_ms() + GROUP_PROBE_MS;

		if (next_timer_ms == 0 || due < next_timer_ms)
			next_timer_ms = due;
	}
	log_debug("%s: pid %ld exited with status %d; its process tree goes on", c->st->name,
	    (long)c->pgid, WIFEXITED(c->status) ? WEXITSTATUS(c->status) : -1);
}

/*
 * What a TLS relay reported: the handshake (counted, and its failure logged
 * at most once in a while), a truncated client. Returns whether a handler ran.
 */
static int
tls_outcome(struct child *c)
{
	struct relay_report r;
	int ran = 1;

	if (relay_report_read(c->tls_fd, &r) == 0) {
		if (r.handshake > 0 && r.handshake <= TLS_FAIL_N) {
			enum tls_fail why = (enum tls_fail)(r.handshake - 1);

			c->st->tls_failed[why]++;
			log_limited(&c->st->lim_tls, LOG_NOTICE, "%s: TLS handshake failed (%s): %s",
			    c->st->name, tls_fail_names[why], r.why);
			ran = 0;
		} else if (r.no_handler) {
			c->st->tls_ok++;
			c->st->failed++;
			log_limited(&c->st->lim_fail, LOG_ERR, "%s: %s", c->st->name, r.why);
			ran = 0;
		} else {
			c->st->tls_ok++;
		}
		if (r.truncated) {
			c->st->tls_truncated++;
			log_limited(&c->st->lim_truncated, LOG_INFO, "%s: pid %ld: the client "
			    "closed without close_notify (truncated)", c->st->name, (long)c->pid);
		}
	}
	close(c->tls_fd);
	return ran;
}

/* The handler of c (taken out of the table) was reaped with status. */
static void
reaped(struct child *c, int status)
{
	c->reaped = 1;
	c->status = status;
	c->reaped_ms = log_now_ms();
	if (c->has_errlog)
		errlog_drain(c->pgid);
	/* A relay whose handshake failed started no handler: no exit to count. */
	if (c->tls_fd >= 0) {
		c->no_handler = !tls_outcome(c);
		c->tls_fd = -1;
	}
	if (tree_left(c))
		linger(c);
	else
		child_done(c);
}

static void
reap(void)
{
	struct child c;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *early;
		long key;

		if (children_take(pid, &c) == 0) {
			reaped(&c, status);
		} else if ((key = spawner_reaped(pid, status)) != 0 &&
		    (early = children_get((pid_t)key)) != NULL && !early->slot_freed &&
		    !tree_left(early)) {
			/*
			 * A handler a spawner thread started, gone before its thread
			 * was scheduled again to hand over the job (milliseconds on
			 * busy CPUs): its client may come back at once, and find its
			 * slot free. The record, and its log lines, wait for the job.
			 */
			free_slot(early);
		}
	}
}

/* A lingering tree's cgroup is empty: its connection is over. */
static void
tree_gone(long key, void *ctx)
{
	struct child c;

	(void)ctx;
	if (children_take((pid_t)key, &c) == 0)
		child_done(&c);
}

static void
reload_done(int ok)
{
	char state[96];

	/* Ready again, either way: a failed reload keeps the running table. */
	snprintf(state, sizeof(state), "READY=1\nSTATUS=%s", ok ? "reloaded" :
	    "reload failed; running the previous configuration");
	notify_send(state);
	if (ok)
		daemon_stats.reloads_ok++;
	else
		daemon_stats.reloads_failed++;
	daemon_stats.last_reload = time(NULL);
	daemon_stats.last_reload_ok = ok;
}

/* A SIGHUP (or a change of the -i file) while a read is in flight: one more after it. */
static const char *reload_again;

static void
reload_begin(const struct config_sources *src, const char *why)
{
	struct timespec ts;
	char state[96];

	if (reload_busy()) {
		/* The read in flight may have missed the change: read again after it. */
		reload_again = why;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify_send(state);
	if (src->inetd_conf != NULL)
		log_info("reloading %s and %s%s", src->dir, src->inetd_conf, why);
	else
		log_info("reloading %s%s", src->dir, why);
	reload_start(src);
}

/* The read is done: build the table from it and swap, or keep the running one. */
static void
reload_apply(struct table **tab)
{
	struct config_errors errs = { NULL, 0 };
	long long t0 = log_now_ms(), read_ms;
	struct config *cf = reload_take(&errs, &read_ms);
	struct table *next;
	char err[512];

	if (cf != NULL && config_load_tls(cf, &errs) < 0) {
		config_free(cf);
		cf = NULL;
	}
	if (cf == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			log_err("%s", errs.msg[i]);
		log_err("reload failed with %zu error%s; the running configuration is "
		    "unchanged", errs.n, errs.n == 1 ? "" : "s");
		config_errors_free(&errs);
		reload_done(0);
		return;
	}
	if ((next = table_build(cf, *tab, err, sizeof(err))) == NULL) {
		log_err("%s", err);
		log_err("reload failed; the running configuration is unchanged");
		config_free(cf);
		reload_done(0);
		return;
	}
	/* Only for a table that is in: a controller enabled stays, at a cost (cgroup.c). */
	(void)cgroup_enable(cgroup_wanted(cf));
	for (size_t i = 0; i < cf->warnings.n; i++)
		log_warn("%s", cf->warnings.msg[i]);
	for (size_t i = 0; i < cf->nsvc; i++)
		for (size_t j = 0; j < cf->svc[i].ntls_warn; j++)
			log_warn("%s", cf->svc[i].tls_warn[j]);
	/* No handler may still be starting from a service about to be freed. */
	spawner_quiesce();
	spawner_collect(spawned, NULL);
	table_retire(*tab, next);
	*tab = next;
	rewatch = 1;
	report_table = next;
	daemon_stats.generation++;
	reload_done(1);
	/* Read beside the serving loop; only the rest held it up. */
	log_info("reloaded %zu service%s in %lld ms (read %lld ms, applied in %lld ms)",
	    next->n, next->n == 1 ? "" : "s", read_ms + log_now_ms() - t0, read_ms,
	    log_now_ms() - t0);
}

/* memory_max or tasks_max that this host cannot enforce: said once per service. */
static void
warn_limits(const struct table *t)
{
	int ctl = cgroup_active() ? cgroup_controllers() : -1;
	const char *why = ctl < 0 ? "porterd has no cgroups (see the start of the log)" :
	    "the controller is not enabled for porterd's cgroups";

	for (size_t i = 0; i < t->n; i++) {
		const struct service *s = t->slot[i].svc;
		struct svc_state *st = t->slot[i].st;

		if (st->limits_warned)
			continue;
		if (s->memory_max != 0 && (ctl < 0 || !(ctl & CG_MEMORY)))
			log_warn("%s: memory_max cannot be enforced here: %s", s->name, why);
		if (s->tasks_max != 0 && (ctl < 0 || !(ctl & CG_PIDS)))
			log_warn("%s: tasks_max cannot be enforced here: %s", s->name, why);
		st->limits_warned = (s->memory_max != 0 && (ctl < 0 || !(ctl & CG_MEMORY))) ||
		    (s->tasks_max != 0 && (ctl < 0 || !(ctl & CG_PIDS)));
	}
}

/* The read is done: apply it, and begin the one asked for meanwhile. */
static void
reload_finish(struct table **tab, const struct config_sources *src)
{
	const char *again = reload_again;

	reload_apply(tab);
	warn_limits(*tab);
	if (again != NULL) {
		reload_again = NULL;
		reload_begin(src, again);
	}
}

/* SIGUSR1: the status table, a log line each. */
static void
status_dump(void)
{
	char *text = NULL, *line, *next;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return;
	report_status(f);
	fclose(f);
	for (line = text; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		log_info("status: %s", line);
	}
	free(text);
}

/* Back off; a longer pause already set stands. */
static void
pause_listener(struct listener *l, long long ms)
{
	long long until = log_now_ms() + ms;

	if (until > l->paused_until)
		l->paused_until = until;
	rewatch = 1;
}

static void
spawn_failed(const struct slot *sl, const char *err)
{
	int e = errno;

	sl->st->failed++;
	log_limited(&sl->st->lim_fail, LOG_ERR, "%s: %s", sl->svc->name, err);
	if (sl->lst == NULL)
		;	/* a tcpmux service: the tcpmux listener goes on */
	else if (e == EAGAIN || e == ENOMEM)
		pause_listener(sl->lst, PAUSE_FORK_MS);
	else if (e == EMFILE || e == ENFILE)
		pause_listener(sl->lst, PAUSE_EMFILE_MS);
	errno = e;
}

static void peer_text(const struct sockaddr *sa, char *buf, size_t len);

/* stderr = log: errfd (taken) read into the log for pid; whether it is. */
static int
log_stderr(struct svc_state *st, pid_t pid, int errfd)
{
	if (errfd < 0)
		return 0;
	if (errlog_add(errfd, pid, st) == 0)
		return 1;
	log_limited(&st->lim_fail, LOG_ERR, "%s: pid %ld: stderr: %s", st->name, (long)pid,
	    strerror(errno));
	close(errfd);
	return 0;
}

static struct child *
track(const struct slot *sl, pid_t pid, struct listener *wait_lst, const struct srckey *src,
    int errfd, int tlsfd, const struct conn *conn, struct cg_conn *cg)
{
	struct child *c = children_add(pid, sl->st, wait_lst);
	int logged = log_stderr(sl->st, pid, errfd);

	if (c != NULL) {
		c->tls_fd = tlsfd;
		c->has_errlog = logged;
	} else if (tlsfd >= 0)
		close(tlsfd);
	if (c == NULL) {
		/* Untracked, it is still reaped; only its slot is not counted. */
		log_limited(&sl->st->lim_fail, LOG_ERR, "%s: pid %ld: %s", sl->svc->name,
		    (long)pid, strerror(errno));
		return NULL;	/* the caller's cgroup is still the caller's */
	}
	c->cg = cg;
	c->stop_at_exit = sl->svc->stop_at_exit;
	sl->st->running++;
	if (sl->st->running >= sl->svc->max_children || children_count() >= max_total)
		rewatch = 1;
	if (log_verbose()) {
		if (conn == NULL)
			snprintf(c->peer, sizeof(c->peer), "wait");
		else if (sl->svc->listen.family == AF_UNIX)
			snprintf(c->peer, sizeof(c->peer), "unix");
		else
			peer_text((const struct sockaddr *)&conn->peer, c->peer, sizeof(c->peer));
	}
	if (src != NULL) {
		struct source *e = sources_find(sl->st->id, src);

		if (e != NULL) {
			e->active++;
			c->has_src = 1;
			c->src = *src;
		}
	}
	if (sl->svc->timeout != 0) {
		c->deadline_ms = log_now_ms() + (long long)sl->svc->timeout * 1000;
		timed_children++;
		if (next_timer_ms == 0 || c->deadline_ms < next_timer_ms)
			next_timer_ms = c->deadline_ms;
	}
	return c;
}

/* ---- timeouts ---- */

/* sig to a handler's whole tree: its cgroup, else its process group. */
static void
signal_tree(struct child *c, int sig)
{
	if (c->cg != NULL) {
		if (sig == SIGKILL)
			(void)cgroup_conn_kill(c->cg);
		else
			(void)cgroup_conn_signal(c->cg, sig);
		/* The handler may have left the cgroup's process group: it is in the cgroup. */
		return;
	}
	kill(-c->pgid, sig);
}

/* SIGTERM to the tree now, SIGKILL after the grace period. */
static void
end_tree(struct child *c, long long now)
{
	signal_tree(c, SIGTERM);
	c->kill_ms = now + TIMEOUT_KILL_MS;
}

struct timer_scan {
	long long	 now, next;
	pid_t		*gone;		/* lingering groups found empty */
	size_t		 ngone, capgone;
};

static void
check_timeout(struct child *c, void *ctx)
{
	struct timer_scan *ts = ctx;
	long long due;

	if (c->deadline_ms == 0 && c->kill_ms == 0)
		return;
	if (c->spawning) {
		/* No pid to signal yet: looked at again once it has one. */
		due = c->deadline_ms > ts->now ? c->deadline_ms : ts->now + GROUP_PROBE_MS;
	} else if (c->reaped && c->cg == NULL) {
		/* A group whose leader is gone: until it is empty, or the grace is over. */
		if (kill(-c->pgid, 0) < 0 || ts->now >= c->kill_ms) {
			if (ts->now >= c->kill_ms && kill(-c->pgid, SIGKILL) == 0)
				log_limited(&c->st->lim_kill, LOG_INFO, "%s: process group %ld "
				    "still there; sent SIGKILL", c->st->name, (long)c->pgid);
			if (ts->ngone == ts->capgone) {
				size_t cap = ts->capgone ? ts->capgone * 2 : 16;
				pid_t *g = realloc(ts->gone, cap * sizeof(*g));

				if (g == NULL)
					return;
				ts->gone = g;
				ts->capgone = cap;
			}
			ts->gone[ts->ngone++] = c->pid;
			return;
		}
		due = ts->now + GROUP_PROBE_MS < c->kill_ms ? ts->now + GROUP_PROBE_MS : c->kill_ms;
	} else {
		if (c->kill_ms == 0 && ts->now >= c->deadline_ms) {
			end_tree(c, ts->now);
			c->st->timed_out++;
			/* A client that connects and idles reaches this: once in a while. */
			log_limited(&c->st->lim_timeout, LOG_INFO, "%s: pid %ld timed out; sent "
			    "SIGTERM to %s", c->st->name, (long)c->pgid,
			    c->cg != NULL ? "its cgroup" : "its process group");
		} else if (c->kill_ms != 0 && ts->now >= c->kill_ms) {
			signal_tree(c, SIGKILL);
			c->kill_ms = ts->now + TIMEOUT_KILL_MS;	/* again, should it still linger */
			log_limited(&c->st->lim_kill, LOG_INFO, "%s: pid %ld still there; sent "
			    "SIGKILL to %s", c->st->name, (long)c->pgid,
			    c->cg != NULL ? "its cgroup" : "its process group");
		}
		due = c->kill_ms != 0 ? c->kill_ms : c->deadline_ms;
	}
	if (ts->next == 0 || due < ts->next)
		ts->next = due;
}

static void
run_timers(long long now)
{
	struct timer_scan ts = { now, 0, NULL, 0, 0 };
	struct child c;

	if (timed_children == 0) {
		next_timer_ms = 0;
		return;
	}
	if (next_timer_ms == 0 || now < next_timer_ms)
		return;
	children_foreach(check_timeout, &ts);
	next_timer_ms = ts.next;
	for (size_t i = 0; i < ts.ngone; i++)
		if (children_take(ts.gone[i], &c) == 0)
			child_done(&c);
	free(ts.gone);
}

/* ---- admission ---- */

static void
peer_text(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[ADDR_IP_MAX];
	unsigned port;

	if (addr_ntop(sa, ip, sizeof(ip), &port) == 0)
		snprintf(buf, len, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
	else
		snprintf(buf, len, "?");
}

static void
refuse(const struct slot *sl, enum refusal why, const struct sockaddr *peer)
{
	char text[ADDR_TEXT_MAX];

	sl->st->refused[why]++;
	if (sl->st->lim_refused[why].next_ms > log_now_ms()) {
		sl->st->lim_refused[why].suppressed++;
		return;
	}
	peer_text(peer, text, sizeof(text));
	log_limited(&sl->st->lim_refused[why], LOG_NOTICE, "%s: refused %s (%s)",
	    sl->svc->name, text, refusal_names[why]);
}

/*
 * May this client have a handler now? Returns REFUSE_N if so, with *key set
 * and *counted when its source is to be counted. Cheapest and per-client
 * checks first: a flood from one source must not use up the service's rate.
 */
static enum refusal
admit(const struct slot *sl, const struct sockaddr *peer, struct srckey *key, int *counted)
{
	const struct service *s = sl->svc;
	struct source *src = NULL;
	long long now;

	*counted = 0;
	if (s->allow.n > 0 && !acl_match(&s->allow, peer))
		return REFUSE_ACL;
	if (s->deny.n > 0 && acl_match(&s->deny, peer))
		return REFUSE_ACL;
	if (!s->limits_source && s->rate.n == 0)
		return REFUSE_N;
	now = log_now_ms();
	if (s->limits_source && acl_source_key(peer, s->source_prefix4, s->source_prefix6,
	    key) == 0) {
		if ((src = sources_get(sl->st->id, key, now)) == NULL)
			return REFUSE_PER_SOURCE;	/* no room to count it */
		if (s->max_per_source != 0 && src->active >= s->max_per_source)
			return REFUSE_PER_SOURCE;
		if (!rate_take(&src->bucket, &s->source_rate, now))
			return REFUSE_SOURCE_RATE;
		*counted = s->max_per_source != 0;
	}
	if (!rate_take(&sl->st->bucket, &s->rate, now)) {
		/* Refused for the service's rate: not one of the source's connections. */
		if (src != NULL)
			rate_refund(&src->bucket, &s->source_rate);
		*counted = 0;
		return REFUSE_RATE;
	}
	return REFUSE_N;
}

/* For UDP builtins: one datagram at a time. */
/*
 * Ports of the UDP builtins of the running table: a datagram from one of them,
 * sent from an address of this host, is one builtin answering another (or
 * itself) after a forged first datagram, and answering it would loop forever.
 */
static unsigned char own_udp_ports[65536 / 8];
static const struct table *own_udp_ports_of;

static void
own_udp_ports_refresh(const struct table *t)
{
	if (t == own_udp_ports_of)
		return;
	memset(own_udp_ports, 0, sizeof(own_udp_ports));
	for (size_t i = 0; i < t->n; i++) {
		const struct service *s = t->slot[i].svc;
		unsigned port = addr_port(&s->listen);

		if (s->builtin != BUILTIN_NONE && s->socktype == SOCK_DGRAM && s->enabled)
			own_udp_ports[port / 8] |= (unsigned char)(1u << (port % 8));
	}
	own_udp_ports_of = t;
}

/* An address of this host: the kernel lets a socket bind only to one of those. */
static int
address_is_local(const struct sockaddr *sa)
{
	struct sockaddr_storage probe;
	socklen_t len;
	int fd, local;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if ((ntohl(in->sin_addr.s_addr) >> 24) == 127)
			return 1;
		len = sizeof(struct sockaddr_in);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) || (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127))
			return 1;
		len = sizeof(struct sockaddr_in6);
	} else {
		return 0;
	}
	memcpy(&probe, sa, len);
	((struct sockaddr_in *)&probe)->sin_port = 0;	/* same place in both families */
	if ((fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return 1;	/* cannot tell: err on the side of no answer */
	local = bind(fd, (struct sockaddr *)&probe, len) == 0 || errno == EADDRINUSE;
	close(fd);
	return local;
}

static int
from_own_builtin(const struct sockaddr *from)
{
	unsigned port;

	if (from->sa_family == AF_INET)
		port = ntohs(((const struct sockaddr_in *)from)->sin_port);
	else if (from->sa_family == AF_INET6)
		port = ntohs(((const struct sockaddr_in6 *)from)->sin6_port);
	else
		return 0;
	own_udp_ports_refresh(report_table);
	return (own_udp_ports[port / 8] & (1u << (port % 8))) && address_is_local(from);
}

static int
admit_datagram(void *ctx, const struct sockaddr *from)
{
	const struct slot *sl = ctx;
	struct srckey key;
	int counted;
	enum refusal why = from_own_builtin(from) ? REFUSE_LOOP :
	    admit(sl, from, &key, &counted);

	if (why == REFUSE_N)
		return 1;
	refuse(sl, why, from);
	return 0;
}

/*
 * A wait handler could not be started: what woke us would wake us again at
 * once, forever. Drop the datagrams waiting (each would fail the same way), or
 * close the connection waiting, so that its client is not left hanging.
 */
static void
drop_pending(struct listener *l)
{
	char byte;

	if (l->socktype == SOCK_DGRAM) {
		for (int i = 0; i < 64 && recv(l->fd, &byte, 1, MSG_DONTWAIT) >= 0; i++)
			;
	} else {
		/* The socket of a wait service blocks: accept only what is there. */
		struct pollfd p = { .fd = l->fd, .events = POLLIN };
		int fd;

		if (poll(&p, 1, 0) == 1 && (fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
			close(fd);
	}
}

/*
 * The cgroup of a new handler of sl's service; NULL for none (contain = no,
 * or no cgroups here). On failure -1 in *failed with the reason in err.
 */
static struct cg_conn *
handler_cgroup(const struct slot *sl, int *failed, char *err, size_t errlen)
{
	const struct service *s = sl->svc;
	struct cg_conn *cg;

	*failed = 0;
	if (!cgroup_active() || !s->contain)
		return NULL;
	if (sl->st->cg == NULL && (sl->st->cg = cgroup_svc_new(s->name, sl->st->id)) == NULL) {
		snprintf(err, errlen, "cgroup of the service: %s", strerror(errno));
		*failed = 1;
		return NULL;
	}
	if ((cg = cgroup_conn_get(sl->st->cg, s->memory_max, s->tasks_max)) == NULL) {
		snprintf(err, errlen, "cgroup of the handler: %s", strerror(errno));
		*failed = 1;
	}
	return cg;
}

/*
 * Start sl's handler on c in a cgroup of its own (with tls, the relay, which
 * starts the handler: both in the cgroup); the pid, or -1 with err. *tlsfd: the
 * relay's report pipe.
 */
static pid_t
start_handler(const struct slot *sl, const struct conn *c, int *errfd, int *tlsfd,
    struct cg_conn **cg, char *err, size_t errlen)
{
	int failed, cgfd;
	pid_t pid;

	*errfd = *tlsfd = -1;
	if ((*cg = handler_cgroup(sl, &failed, err, errlen)) == NULL && failed)
		return -1;
	cgfd = *cg != NULL ? cgroup_conn_fd(*cg) : -1;
	if (sl->svc->tls)
		pid = spawn_relay(sl->svc, c, cgfd, errfd, tlsfd, err, errlen);
	else
		pid = spawn_handler(sl->svc, c, cgfd, errfd, err, errlen);
	if (*cg != NULL)
		cgroup_conn_started(*cg);
	if (pid < 0 && *cg != NULL) {
		int e = errno;

		cgroup_conn_put(*cg);
		*cg = NULL;
		errno = e;
	}
	return pid;
}

static void
serve_wait(const struct slot *sl)
{
	struct cg_conn *cg;
	struct conn c = { .fd = sl->lst->fd, .peerlen = 0 };
	char err[512];
	int errfd, tlsfd;	/* no tls with wait = yes: stays -1 */
	pid_t pid;

	/* A wait service's rate counts handlers started, not clients. */
	if (!rate_take(&sl->st->bucket, &sl->svc->rate, log_now_ms())) {
		sl->st->refused[REFUSE_RATE]++;
		log_limited(&sl->st->lim_refused[REFUSE_RATE], LOG_NOTICE, "%s: handler not "
		    "started (rate)", sl->svc->name);
		drop_pending(sl->lst);
		pause_listener(sl->lst, PAUSE_FORK_MS);
		return;
	}
	/* Before the handler can take it. */
	sl->lst->wait_mark = waitmark_take(sl->lst->fd, sl->lst->socktype);
	if ((pid = start_handler(sl, &c, &errfd, &tlsfd, &cg, err, sizeof(err))) < 0) {
		spawn_failed(sl, err);
		drop_pending(sl->lst);
		pause_listener(sl->lst, PAUSE_FORK_MS);
		return;
	}
	sl->st->accepted++;
	log_debug("%s: wait handler -> pid %ld", sl->svc->name, (long)pid);
	sl->lst->wait_pid = pid;
	rewatch = 1;
	if (track(sl, pid, sl->lst, NULL, errfd, -1, NULL, cg) == NULL && cg != NULL)
		cgroup_conn_drop(cg);	/* its fds: the cgroup goes once it can */
}

/* -v: "service: ip:port -> pid N" (or -> builtin, or -> failed). */
static void
log_connection(const struct service *s, const struct conn *c, pid_t pid)
{
	char ip[ADDR_IP_MAX] = "local", peer[ADDR_TEXT_MAX];
	unsigned port = 0;

	if (s->listen.family == AF_UNIX)
		snprintf(peer, sizeof(peer), "unix");
	else if (addr_ntop((const struct sockaddr *)&c->peer, ip, sizeof(ip), &port) == 0)
		snprintf(peer, sizeof(peer), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
	else
		snprintf(peer, sizeof(peer), "?");
	if (pid > 0)
		log_info("%s: %s -> pid %ld", s->name, peer, (long)pid);
	else if (pid == 0)
		log_info("%s: %s -> builtin %s", s->name, peer, config_builtin_name(s->builtin));
	else
		log_info("%s: %s -> failed", s->name, peer);
}

/* ---- handlers started by spawner threads (spawner.h) ---- */

static int defer(struct listener *l, struct conn *c, const struct srckey *key, int counted);

/*
 * Hand c to a spawner thread. Its record is made now, under a key of its own,
 * so that every limit counts it from here on. 0: submitted, c->fd is the
 * job's now; -1: not (no job free, no cgroup or record): start it here.
 */
static int
submit(const struct slot *sl, struct conn *c, const struct srckey *src)
{
	struct spawn_job *j;
	struct cg_conn *cg;
	struct child *rec;
	char err[512];
	int failed;
	pid_t key;

	if ((j = spawner_job(sl->svc)) == NULL)
		return -1;
	if ((cg = handler_cgroup(sl, &failed, err, sizeof(err))) == NULL && failed) {
		spawner_unused(j);
		return -1;
	}
	key = pidless_key();
	if ((rec = track(sl, key, NULL, src, -1, -1, c, cg)) == NULL) {
		if (cg != NULL) {
			cgroup_conn_started(cg);
			cgroup_conn_put(cg);
		}
		spawner_unused(j);
		return -1;
	}
	rec->spawning = 1;
	rec->pgid = 0;
	j->c = *c;
	c->fd = -1;
	j->cgfd = cg != NULL ? cgroup_conn_fd(cg) : -1;
	/* Its stderr pipe to be read, or its start logged, at once. */
	j->wake = log_verbose() || sl->svc->stderr_mode == STDERR_LOG;
	j->key = key;
	j->lst = sl->lst != NULL ? listener_ref(sl->lst) : NULL;
	spawner_submit(j);
	return 0;
}

/*
 * ... unless nothing else is being started and no other client waits: then the
 * loop starts it itself, as there is nothing to do meanwhile, and spares the
 * wakeup of a thread (on this machine that made c=1 10 % slower).
 */
static int
start_here(const struct slot *sl)
{
	struct pollfd p;

	/*
	 * Not a child that takes another user's ids: until its exec, any process of
	 * that user may stop it, and whoever started it waits (startwatch.h).
	 * Better a thread than the loop.
	 */
	if (!spawner_idle() || sl->lst == NULL || sl->lst->fd < 0 ||
	    (sl->svc->set_user && sl->svc->uid != geteuid()))
		return 0;
	p.fd = sl->lst->fd;
	p.events = POLLIN;
	return poll(&p, 1, 0) == 0;
}

/*
 * A spawner thread is done with j: its record gets the handler's pid, or the
 * start failed (logged, and the client deferred as in dispatch_or_defer when
 * there was no memory or process for a child). Before any job's service is
 * freed, and before reaping, so that a handler's pid is known when it is.
 */
static void
spawned(struct spawn_job *j, void *ctx)
{
	struct child c;

	(void)ctx;
	if (children_take((pid_t)j->key, &c) < 0) {
		/* Not to happen: the record is made before the job is submitted. */
		if (j->c.fd >= 0)
			close(j->c.fd);
		if (j->errfd >= 0)
			close(j->errfd);
		goto out;
	}
	c.spawning = 0;
	if (c.cg != NULL)
		cgroup_conn_started(c.cg);
	if (j->err != 0) {
		struct slot sl = { j->s, j->lst, c.st };

		errno = j->err;
		spawn_failed(&sl, j->why);
		if (log_verbose())
			log_connection(j->s, &j->c, -1);
		if (j->c.fd >= 0 && (j->err == EAGAIN || j->err == ENOMEM) && j->lst != NULL &&
		    j->lst->fd >= 0 && defer(j->lst, &j->c, &c.src, c.has_src) == 0) {
			c.st->accepted--;	/* counted when it is served */
			c.st->failed--;		/* or closed for good */
		}
		if (j->c.fd >= 0)
			close(j->c.fd);
		c.no_handler = 1;
		child_done(&c);
		goto out;
	}
	c.pid = c.pgid = j->pid;
	c.has_errlog = log_stderr(c.st, j->pid, j->errfd);
	if (log_verbose())
		log_connection(j->s, &j->c, j->pid);
	if (j->reaped)
		reaped(&c, j->status);
	else
		(void)children_put(&c);	/* where it was taken from: no room needed */
out:
	if (j->lst != NULL)
		listener_unref(j->lst);
}

/*
 * An admitted connection of sl's service (accepted, or named through tcpmux, or
 * past its PROXY header): answer it, or start its handler. The caller closes
 * c->fd afterwards unless it is -1: porterd's copy is never needed again, and
 * a spawner thread closes it itself.
 */
static pid_t
dispatch(const struct slot *sl, struct conn *c, const struct srckey *src)
{
	const struct service *s = sl->svc;
	struct cg_conn *cg = NULL;
	char err[512];
	int errfd = -1, tlsfd = -1;
	pid_t pid;

	sl->st->accepted++;
	/* A handler of its own, no TLS relay: a spawner thread starts it... */
	if (s->builtin == BUILTIN_NONE && !s->tls && spawner_active() && !start_here(sl) &&
	    submit(sl, c, src) == 0)
		return 1;	/* a pid yet to come; logged when it has come */
	if (s->builtin != BUILTIN_NONE && builtin_is_immediate(s->builtin)) {
		builtin_stream_now(s->builtin, c->fd);
		pid = 0;
	} else if (s->builtin != BUILTIN_NONE) {
		pid = spawn_builtin(s, c->fd, s->builtin == BUILTIN_STATUS ||
		    s->builtin == BUILTIN_METRICS ? report_serve : builtin_stream_child);
		if (pid < 0) {
			snprintf(err, sizeof(err), "fork: %s", strerror(errno));
			spawn_failed(sl, err);
		}
	} else if ((pid = start_handler(sl, c, &errfd, &tlsfd, &cg, err, sizeof(err))) < 0) {
		spawn_failed(sl, err);
	}
	int e = errno;	/* why it failed, past the logging */

	if (pid > 0)
		if (track(sl, pid, NULL, src, errfd, tlsfd, c, cg) == NULL && cg != NULL)
			cgroup_conn_drop(cg);	/* its fds: the cgroup goes once it can */
	if (log_verbose())
		log_connection(s, c, pid);
	errno = e;
	return pid;
}

/*
 * A connection accepted just before a fork failed for want of processes or
 * memory: rather than closed, it waits for the listener's pause to end, like
 * the backlog behind it, and is served first then.
 */
struct deferred {
	struct listener	*lst;
	struct conn	 c;
	struct srckey	 key;
	int		 counted;
};
static struct deferred *deferred;
static size_t ndeferred, deferred_cap;

static int
defer(struct listener *l, struct conn *c, const struct srckey *key, int counted)
{
	struct deferred *d;

	if (ndeferred == deferred_cap) {
		size_t cap = deferred_cap ? 2 * deferred_cap : 8;

		if ((d = realloc(deferred, cap * sizeof(*d))) == NULL)
			return -1;
		deferred = d;
		deferred_cap = cap;
	}
	d = &deferred[ndeferred++];
	d->lst = listener_ref(l);
	d->c = *c;
	d->key = *key;
	d->counted = counted;
	c->fd = -1;	/* the deferral's now */
	return 0;
}

static void dispatch_or_defer(const struct slot *sl, struct conn *c, const struct srckey *key,
    int counted);

/*
 * Deferred connections whose listener is watched again get their turn; those
 * of a listener that was closed (its service removed) are closed too.
 */
static void
retry_deferred(const struct table *t, long long now)
{
	for (size_t i = 0; i < ndeferred; ) {
		struct deferred d = deferred[i];
		struct listener *l = d.lst;
		const struct slot *sl = l->watch_idx < t->n && t->slot[l->watch_idx].lst == l ?
		    &t->slot[l->watch_idx] : NULL;

		if (l->fd >= 0 && (sl == NULL || !l->watched || l->paused_until > now ||
		    sl->st->running >= sl->svc->max_children || children_count() >= max_total)) {
			i++;
			continue;
		}
		deferred[i] = deferred[--ndeferred];
		if (l->fd >= 0)
			dispatch_or_defer(sl, &d.c, &d.key, d.counted);
		if (d.c.fd >= 0)
			close(d.c.fd);
		listener_unref(l);
	}
}

/* Serve c now; if the fork fails again for the same reason, keep it for later. */
static void
dispatch_or_defer(const struct slot *sl, struct conn *c, const struct srckey *key,
    int counted)
{
	int later = dispatch(sl, c, counted ? key : NULL) < 0 &&
	    (errno == EAGAIN || errno == ENOMEM) && defer(sl->lst, c, key, counted) == 0;

	/* Tried again once the pause is over: neither accepted nor failed yet. */
	sl->st->accepted -= later;
	sl->st->failed -= later;
}

static void
serve_stream(const struct slot *sl)
{
	const struct service *s = sl->svc;

	/* Paused since the listeners were last looked at (a deferred client failed again). */
	if (sl->lst->paused_until > log_now_ms())
		return;

	/* -c as watch_listeners applies it: daytime at -c is answered, not spun on. */
	for (int i = 0; i < ACCEPT_BURST && sl->st->running < s->max_children &&
	    (children_count() < max_total || !spawns(s)); i++) {
		struct srckey key;
		int counted = 0;
		struct conn c;
		enum refusal why;

		memset(&c, 0, sizeof(c));
		c.peerlen = sizeof(c.peer);
		c.fd = accept4(sl->lst->fd, (struct sockaddr *)&c.peer, &c.peerlen, SOCK_CLOEXEC);
		if (c.fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_limited(&sl->st->lim_fail, LOG_ERR, "%s: accept: %s; pausing "
				    "for %d ms", s->name, strerror(errno), PAUSE_EMFILE_MS);
				pause_listener(sl->lst, PAUSE_EMFILE_MS);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED && errno != EPROTO) {
				log_limited(&sl->st->lim_fail, LOG_ERR, "%s: accept: %s", s->name,
				    strerror(errno));
			}
			return;
		}
		/*
		 * A specific listen address is what every client reached: no
		 * getsockname. Not for a socket from systemd, which may be elsewhere.
		 */
		c.locallen = 0;
		if (s->listen.family != AF_UNIX && !sl->lst->adopted &&
		    !addr_is_any(&sl->lst->addr)) {
			memcpy(&c.local, &sl->lst->addr.ss, sl->lst->addr.len);
			c.locallen = sl->lst->addr.len;
		}
		if (s->proxy != 0) {
			/* Who the client is comes in the header; admission waits for it. */
			if (s->proxy_from.n > 0 && !acl_match(&s->proxy_from,
			    (struct sockaddr *)&c.peer)) {
				refuse(sl, REFUSE_PROXY, (struct sockaddr *)&c.peer);
				close(c.fd);
				continue;
			}
			if (pending_add(&c, sl->st, log_now_ms(), log_now_ms() + PROXY_WAIT_MS,
			    s->proxy) < 0)
				close(c.fd);
			continue;
		}
		if (s->listen.family == AF_UNIX) {
			c.peerlen = 1;	/* a peer, without an address: SO_PEERCRED tells who */
			if (!rate_take(&sl->st->bucket, &s->rate, log_now_ms())) {
				sl->st->refused[REFUSE_RATE]++;
				log_limited(&sl->st->lim_refused[REFUSE_RATE], LOG_NOTICE,
				    "%s: refused a unix client (rate)", s->name);
				close(c.fd);
				continue;
			}
		} else if ((why = admit(sl, (struct sockaddr *)&c.peer, &key, &counted)) !=
		    REFUSE_N) {
			refuse(sl, why, (struct sockaddr *)&c.peer);
			close(c.fd);
			continue;
		}
		if (s->builtin == BUILTIN_TCPMUX) {
			/* The service name comes first; held until then, without blocking. */
			long long wait = s->timeout ? (long long)s->timeout * 1000 : TCPMUX_WAIT_MS;

			sl->st->accepted++;
			if (pending_add(&c, sl->st, log_now_ms(), log_now_ms() + wait, 0) == 0)
				c.fd = -1;
			if (log_verbose())
				log_connection(s, &c, 0);
		} else {
			dispatch_or_defer(sl, &c, &key, counted);
		}
		/* The handler has its copy, or a deferral; ours goes on every other path. */
		if (c.fd >= 0)
			close(c.fd);
		if (sl->lst->paused_until != 0)
			return;
	}
}

static void
serve(const struct slot *sl)
{
	if (sl->svc->wait)
		serve_wait(sl);
	else if (sl->svc->socktype == SOCK_DGRAM)
		sl->st->accepted += (unsigned long)builtin_dgram(sl->svc->builtin, sl->lst->fd,
		    admit_datagram, (void *)sl);
	else
		serve_stream(sl);
}

/* ---- tcpmux (RFC 1078) ---- */

static void
say(int fd, const char *text)
{
	(void)!send(fd, text, strlen(text), MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Close after a reply without a reset: unread input at close makes the kernel
 * send RST, which can destroy the reply before the client reads it.
 */
static void
close_gently(int fd)
{
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
		;
	close(fd);
}

static void
tcpmux_help(const struct table *t, int fd)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct service *s = t->slot[i].svc;

		if (s->tcpmux != NULL && s->enabled) {
			say(fd, s->tcpmux);
			say(fd, "\r\n");
		}
	}
}

/*
 * A tcpmux client has named its service: hand it over exactly as a direct
 * connection to that service would be, or say why not. 0 leaves it waiting
 * (the service is at max_children, or the daemon at -c).
 */
static int
tcpmux_take(struct pending *p, void *ctx)
{
	const struct table *t = ctx;
	const struct slot *sl = NULL;
	struct srckey key;
	int counted;
	enum refusal why;

	if (strcasecmp(p->line, "help") == 0) {
		tcpmux_help(t, p->conn.fd);
		close_gently(p->conn.fd);
		return 1;
	}
	for (size_t i = 0; i < t->n && sl == NULL; i++)
		if (t->slot[i].svc->tcpmux != NULL && t->slot[i].svc->enabled &&
		    strcasecmp(t->slot[i].svc->tcpmux, p->line) == 0)
			sl = &t->slot[i];
	if (sl == NULL) {
		say(p->conn.fd, "-Service not available\r\n");
		close_gently(p->conn.fd);
		return 1;
	}
	if (sl->st->running >= sl->svc->max_children || children_count() >= max_total)
		return 0;
	if ((why = admit(sl, (struct sockaddr *)&p->conn.peer, &key, &counted)) != REFUSE_N) {
		refuse(sl, why, (struct sockaddr *)&p->conn.peer);
		say(p->conn.fd, "-Refused\r\n");
		close_gently(p->conn.fd);
		return 1;
	}
	if (sl->svc->tcpmux_ack)
		say(p->conn.fd, "+Go\r\n");
	dispatch(sl, &p->conn, counted ? &key : NULL);
	if (p->conn.fd >= 0)
		close(p->conn.fd);
	return 1;
}

/* ---- PROXY protocol ---- */

/*
 * The header of a connection to a proxy service is in (or it is bad): go on as
 * for a direct connection from the client it names. 0 leaves it waiting for a
 * handler slot (the service is at max_children, or the daemon at -c), as a
 * direct client waits in the backlog: a burst is accepted whole, since
 * connections held for their headers take no slot.
 */
static int
proxy_take(struct pending *p, const struct table *t)
{
	const struct slot *sl = NULL;
	struct srckey key;
	int counted;
	enum refusal why;

	for (size_t i = 0; i < t->n && sl == NULL; i++)
		if (t->slot[i].st == p->st && t->slot[i].svc->proxy != 0)
			sl = &t->slot[i];
	if (sl == NULL) {
		close(p->conn.fd);	/* its service went away in a reload */
		return 1;
	}
	if (p->ready < 0) {
		char text[ADDR_TEXT_MAX];

		sl->st->refused[REFUSE_PROXY]++;
		peer_text((struct sockaddr *)&p->conn.peer, text, sizeof(text));
		log_limited(&sl->st->lim_refused[REFUSE_PROXY], LOG_NOTICE, "%s: refused %s "
		    "(proxy: %s)", sl->svc->name, text, p->why ? p->why : "bad header");
		close_gently(p->conn.fd);
		return 1;
	}
	if (sl->st->running >= sl->svc->max_children || children_count() >= max_total)
		return 0;
	if (!p->hdr.local) {
		memcpy(&p->conn.peer, &p->hdr.src, sizeof(p->hdr.src));
		p->conn.peerlen = p->hdr.srclen;
		memcpy(&p->conn.local, &p->hdr.dst, sizeof(p->hdr.dst));
		p->conn.locallen = p->hdr.dstlen;
	}
	if ((why = admit(sl, (struct sockaddr *)&p->conn.peer, &key, &counted)) != REFUSE_N) {
		refuse(sl, why, (struct sockaddr *)&p->conn.peer);
		close(p->conn.fd);
		return 1;
	}
	dispatch(sl, &p->conn, counted ? &key : NULL);
	if (p->conn.fd >= 0)
		close(p->conn.fd);
	return 1;
}

/* A held connection is ready: a tcpmux name or a PROXY header. */
static int
pending_take(struct pending *p, void *ctx)
{
	return p->proxy ? proxy_take(p, ctx) : tcpmux_take(p, ctx);
}

/*
 * Stopping: closing a listener resets what waits in its accept queue (with
 * reuseport, clients the kernel gave to this instance). Serve those first.
 */
static void
drain_queues(const struct table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct slot *sl = &t->slot[i];
		struct pollfd p;

		if (sl->lst == NULL || sl->lst->fd < 0 || sl->svc->wait ||
		    sl->svc->socktype != SOCK_STREAM || sl->svc->proxy != 0 ||
		    sl->svc->builtin == BUILTIN_TCPMUX)
			continue;
		p.fd = sl->lst->fd;
		p.events = POLLIN;
		/* A few bursts at most: a flood must not keep porterd from stopping. */
		for (int round = 0; round < 8 && poll(&p, 1, 0) == 1; round++)
			serve_stream(sl);
	}
}

/* A service whose connections need a child of porterd (so -c applies to it). */
static int
spawns(const struct service *s)
{
	return s->builtin == BUILTIN_NONE ||
	    (s->socktype == SOCK_STREAM && !builtin_is_immediate(s->builtin));
}

/*
 * Which listeners the loop waits on: not those of a busy wait service, of a
 * service at max_children, of a spawning service while the daemon is at -c,
 * nor a paused one. Looked at again only when rewatch says so, or a pause
 * ends; *wake is set to the earliest end of a pause.
 */
static void
watch_listeners(const struct table *t, long long now, long long *wake)
{
	int full = children_count() >= max_total;

	if (rewatch || (next_unpause != 0 && now >= next_unpause)) {
		rewatch = 0;
		next_unpause = 0;
		for (size_t i = 0; i < t->n; i++) {
			const struct slot *sl = &t->slot[i];
			struct listener *l = sl->lst;
			int on;

			if (l == NULL)
				continue;
			sl->st->capped = sl->st->running >= sl->svc->max_children ||
			    (full && spawns(sl->svc));
			on = l->wait_pid == 0 && !sl->st->capped;
			if (on && l->paused_until > now)
				on = 0;
			else if (on)
				l->paused_until = 0;
			if (watch_set(l, i, on) < 0) {
				log_limited(&sl->st->lim_fail, LOG_ERR, "%s: epoll: %s; trying "
				    "again in %d ms", sl->svc->name, strerror(errno),
				    PAUSE_EMFILE_MS);
				pause_listener(l, PAUSE_EMFILE_MS);
			}
			if (l->paused_until > now &&
			    (next_unpause == 0 || l->paused_until < next_unpause))
				next_unpause = l->paused_until;
		}
	}
	if (next_unpause != 0 && (*wake < 0 || next_unpause < *wake))
		*wake = next_unpause;
}

/* The watched listeners that are ready: serve each (a burst at most). */
static void
serve_ready(const struct table *t)
{
	struct listener *ready[64];
	int n = watch_ready(ready, 64);

	for (int i = 0; i < n; i++) {
		struct listener *l = ready[i];

		/* Ready is level-triggered; the slot is checked, not trusted. */
		if (l->watch_idx < t->n && t->slot[l->watch_idx].lst == l)
			serve(&t->slot[l->watch_idx]);
	}
}

/*
 * Our own fds at the head of the poll set: the self-pipe, the listeners, the -i
 * file, the cgroups of lingering trees, the end of a reload's read, the
 * spawner threads' wakeup.
 */
#define LOOP_FIXED_FDS 6

void
loop_run(struct table **tab, const struct config_sources *src, unsigned max_handlers,
    int inetd_watch)
{
	struct pollfd *pfd = NULL;
	size_t cap = 0;
	long long next_pending = 0;

	/* For the tests: PORTERD_TEST_PIDLESS_KEYS=N wraps the keys after -N. */
	const char *keys = getenv("PORTERD_TEST_PIDLESS_KEYS");

	if (keys != NULL && atoi(keys) > 0)
		last_linger_key = -atoi(keys);
	if ((keys = getenv("PORTERD_TEST_REBIND_MS")) != NULL && atoi(keys) > 0)
		rebind_ms = atoi(keys);
	if (max_handlers != 0)
		max_total = max_handlers;
	report_table = *tab;
	warn_limits(*tab);
	for (;;) {
		long long now = log_now_ms(), wake = -1, cool;
		size_t n = LOOP_FIXED_FDS, nerr;
		size_t want = LOOP_FIXED_FDS + errlog_count() + pending_count();
		int timeout, r;

		run_timers(now);
		if (next_timer_ms != 0)
			wake = next_timer_ms;
		if ((*tab)->unbound == 0)
			next_rebind = 0;
		else if (next_rebind == 0)
			next_rebind = now + rebind_ms;
		else if (now >= next_rebind && !reload_busy()) {
			next_rebind = 0;
			reload_begin(src, ": trying again what could not listen");
		}
		if (next_rebind != 0 && (wake < 0 || next_rebind < wake))
			wake = next_rebind;
		if ((cool = cgroup_cool(now)) != 0 && (wake < 0 || cool < wake))
			wake = cool;
		if (cap < want) {
			cap = want + 16;
			if ((pfd = realloc(pfd, cap * sizeof(*pfd))) == NULL)
				abort();
		}
		pfd[0].fd = selfpipe[0];
		pfd[0].events = POLLIN;
		pfd[1].fd = watch_fd();
		pfd[1].events = POLLIN;
		pfd[2].fd = inetd_watch;	/* -1: poll passes over it */
		pfd[2].events = POLLIN;
		pfd[3].fd = cgroup_fd();
		pfd[3].events = POLLIN;
		pfd[4].fd = reload_fd();
		pfd[4].events = POLLIN;
		pfd[5].fd = spawner_fd();	/* -1 without spawner threads */
		pfd[5].events = POLLIN;
		watch_listeners(*tab, now, &wake);
		/* Before poll: a listener watched again may have nothing new to wake us. */
		if (ndeferred > 0)
			retry_deferred(*tab, now);
		n += errlog_pollfds(pfd + n);
		nerr = n;
		n += pending_pollfds(pfd + n);
		if (next_pending != 0 && (wake < 0 || next_pending < wake))
			wake = next_pending;
		/* A timeout of over 24.8 days would not fit poll's int: wake up and look again. */
		timeout = wake < 0 ? -1 : wake <= now ? 0 :
		    wake - now > INT_MAX ? INT_MAX : (int)(wake - now);
		if (pending[SIGUSR1])
			timeout = 0;	/* a dump put off (see below) */
		r = poll(pfd, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			continue;
		}
		if (r > 0 && pfd[0].revents != 0) {
			char buf[64];

			/* One read: more than 64 signals since the last wakeup wake us again. */
			(void)!read(selfpipe[0], buf, sizeof(buf));
		}
		/* Before reaping, so that a handler's last words come before its exit. */
		if (r > 0 && nerr > LOOP_FIXED_FDS)
			errlog_service(pfd + LOOP_FIXED_FDS, nerr - LOOP_FIXED_FDS);
		if (r > 0 && n > nerr)
			pending_service(pfd + nerr, n - nerr);
		if (r > 0 && pfd[5].revents != 0)
			spawner_woken();
		/* Handlers started meanwhile get their pids before any is reaped... */
		spawner_collect(spawned, NULL);
		if (take_signal(SIGCHLD)) {
			reap();
			/* ... and those reaped before they were collected, their exit. */
			spawner_collect(spawned, NULL);
		}
		/* After reaping: a tree is over once its handler and its cgroup are. */
		if (r > 0 && pfd[3].revents != 0)
			cgroup_run(tree_gone, NULL);
		if (take_signal(SIGTERM) || take_signal(SIGINT)) {
			drain_queues(*tab);
			spawner_quiesce();
			spawner_collect(spawned, NULL);
			break;
		}
		if (take_signal(SIGHUP))
			reload_begin(src, "");
		if (r > 0 && pfd[2].revents != 0 && filewatch_changed(inetd_watch,
		    src->inetd_conf))
			reload_begin(src, ": it changed");
		/* pfd[4] is from before a reload that began just now: that one is not done. */
		if (reload_busy() && r > 0 && pfd[4].fd >= 0 && pfd[4].revents != 0) {
			reload_finish(tab, src);
			continue;	/* what was ready is looked at again, in the new table */
		}
		/* Listeners to look at again first, or the dump would tell the old state. */
		if (!rewatch && take_signal(SIGUSR1))
			status_dump();
		if (r > 0 && pfd[1].revents != 0)
			serve_ready(*tab);
		next_pending = pending_run(pending_take, *tab, log_now_ms(), "-Timeout\r\n");
	}
	reload_abandon();
	if (inetd_watch >= 0)
		close(inetd_watch);
	free(pfd);
}

/* ---- shutdown = stop ---- */

struct stop_scan {
	long long	 now;
	int		 sig;		/* to send; 0: count only */
	size_t		 n;
	pid_t		*gone;		/* process groups found empty */
	size_t		 ngone, capgone;
};

static void
stop_one(struct child *c, void *ctx)
{
	struct stop_scan *ss = ctx;

	if (!c->stop_at_exit || c->spawning)
		return;
	if (c->reaped && c->cg == NULL && kill(-c->pgid, 0) < 0) {
		if (ss->ngone == ss->capgone) {
			size_t cap = ss->capgone ? ss->capgone * 2 : 16;
			pid_t *g = realloc(ss->gone, cap * sizeof(*g));

			if (g == NULL)
				return;
			ss->gone = g;
			ss->capgone = cap;
		}
		ss->gone[ss->ngone++] = c->pid;
		return;
	}
	ss->n++;
	if (ss->sig != 0)
		signal_tree(c, ss->sig);
	if (ss->sig == SIGTERM)
		c->kill_ms = ss->now + TIMEOUT_KILL_MS;
}

static size_t
stop_scan(int sig)
{
	struct stop_scan ss = { log_now_ms(), sig, 0, NULL, 0, 0 };
	struct child c;

	children_foreach(stop_one, &ss);
	for (size_t i = 0; i < ss.ngone; i++)
		if (children_take(ss.gone[i], &c) == 0)
			child_done(&c);
	free(ss.gone);
	return ss.n;
}

void
loop_finish(void)
{
	long long deadline = log_now_ms() + TIMEOUT_KILL_MS;
	size_t n = stop_scan(SIGTERM);
	int killed = 0;

	if (n == 0)
		return;
	log_info("stopping %zu handler%s (shutdown = stop): sent SIGTERM", n, n == 1 ? "" : "s");
	while ((n = stop_scan(0)) != 0) {
		struct pollfd pfd[2] = {
			{ .fd = selfpipe[0], .events = POLLIN },
			{ .fd = cgroup_fd(), .events = POLLIN },
		};
		long long now = log_now_ms(), wait;
		char buf[64];

		if (now >= deadline) {
			if (killed)
				break;
			log_info("%zu handler%s still there; sent SIGKILL", n, n == 1 ? "" : "s");
			(void)stop_scan(SIGKILL);
			killed = 1;
			deadline = now + TIMEOUT_KILL_MS;
			continue;
		}
		wait = deadline - now < GROUP_PROBE_MS ? deadline - now : GROUP_PROBE_MS;
		if (poll(pfd, 2, (int)wait) > 0 && pfd[0].revents != 0)
			(void)!read(selfpipe[0], buf, sizeof(buf));
		if (take_signal(SIGCHLD))
			reap();
		cgroup_run(tree_gone, NULL);
	}
	if (n != 0)
		log_err("%zu handler%s could not be stopped", n, n == 1 ? "" : "s");
}
