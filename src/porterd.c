/*
 * porterd: an inetd-style super-server. This file only wires the modules
 * together: options, start-up, daemonizing, the pid file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "children.h"
#include "config.h"
#include "errlog.h"
#include "filewatch.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "pending.h"
#include "ratelimit.h"
#include "report.h"
#include "spawn.h"
#include "spawner.h"
#include "startwatch.h"
#include "table.h"

#ifndef PORTERD_SERVICES_DIR
#define PORTERD_SERVICES_DIR "/etc/porterd/services.d"
#endif

/* Exit codes: 1 bad configuration, 100 usage, 111 system trouble at start. */
#define EXIT_CONFIG 1
#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

static const char usage_line[] =
    "usage: porterd [-f] [-c MAX] [-d DIR] [-g CGROUP] [-i INETD_CONF] [-p PIDFILE] [-t | -T]\n"
    "               [-v] [-V]\n";

static void
usage(void)
{
	fputs(usage_line, stderr);
	fputs("Try 'porterd --help' for more information.\n", stderr);
	exit(EXIT_USAGE);
}

static void
help(void)
{
	printf("%s\n"
	    "porterd is an inetd-style super-server: it listens for the services of a\n"
	    "services directory (and of an inetd.conf) and runs a handler per connection.\n"
	    "\n"
	    "  -c MAX         at most MAX handlers alive at once, over all services\n"
	    "  -d DIR         the services directory (default %s)\n"
	    "  -f             stay in the foreground and log to stderr\n"
	    "  -g CGROUP      the cgroup directory for handlers' cgroups, or none\n"
	    "  -i FILE        also serve FILE in inetd.conf format; reread when it changes\n"
	    "  -p PIDFILE     write the daemon's pid there\n"
	    "  -t             check the configuration and exit (0: valid)\n"
	    "  -T             check, then print the effective table\n"
	    "  -v             log every connection\n"
	    "  -V, --version  print the version and exit\n"
	    "  -h, --help     print this help and exit\n"
	    "\n"
	    "Signals: HUP reloads, TERM stops, USR1 logs the status table.\n"
	    "See porterd(8), porterd.conf(5) and porterd-inetd.conf(5).\n",
	    usage_line, PORTERD_SERVICES_DIR);
	exit(0);
}

/* Handlers expect 0, 1 and 2 to be open; and so do our own dup2 calls. */
static void
open_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			exit(EXIT_SYSTEM);
}

/*
 * Whatever dispositions and mask we were started with are not for handlers: an
 * ignored signal stays ignored across exec. glibc refuses to touch the two
 * real-time signals it reserves (32 and 33), so those go through the system
 * call itself; an all-zero kernel sigaction is SIG_DFL whatever its layout.
 */
static void
reset_signals(void)
{
	sigset_t none;

	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (signal(sig, SIG_DFL) == SIG_ERR && errno == EINVAL) {
			unsigned long zero[16] = { 0 };

			(void)syscall(SYS_rt_sigaction, sig, zero, NULL, (size_t)(NSIG / 8));
		}
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * Held connections and 10,000 listeners need more descriptors than the usual
 * soft limit of 1024: take the hard limit, give handlers the old one back, and
 * let held connections have a quarter, so that they can never starve accept.
 */
static void
raise_nofile(void)
{
	struct rlimit rl, raised;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	raised = rl;
	if (rl.rlim_cur < rl.rlim_max) {
		raised.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
			raised = rl;
		else
			spawn_set_nofile(&rl);
	}
	pending_set_max(raised.rlim_cur == RLIM_INFINITY ? 65536 :
	    raised.rlim_cur / 4 > 16 ? (size_t)(raised.rlim_cur / 4) : 16);
}

static char *
absolute(const char *path)
{
	char cwd[PATH_MAX], *abs;

	if (path[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
		abs = strdup(path);
	else if (asprintf(&abs, "%s/%s", cwd, path) < 0)
		abs = NULL;
	if (abs == NULL)
		exit(EXIT_SYSTEM);
	return abs;
}

/* The daemon's end of the pipe its starter waits on (daemonize), or -1. */
static int started_fd = -1;

/*
 * In the daemon: its start is over, with status (0: serving). The command that
 * started it exits with that status, so that an init script finds the pid file
 * written when it returns, and a start that failed is not reported as done.
 */
static void
tell_starter(int status)
{
	unsigned char b = (unsigned char)status;

	if (started_fd < 0)
		return;
	(void)!write(started_fd, &b, 1);
	close(started_fd);
	started_fd = -1;
}

/*
 * Returns in the daemon. The parent waits until the daemon has told how its
 * start went (or exited), and exits with that status.
 */
static void
daemonize(void)
{
	int fd, p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		fprintf(stderr, "porterd: fork: %s\n", strerror(errno));
		exit(EXIT_SYSTEM);
	}
	if (pid > 0) {
		unsigned char b = EXIT_SYSTEM;	/* gone without a word */
		ssize_t r;

		close(p[1]);
		while ((r = read(p[0], &b, 1)) < 0 && errno == EINTR)
			;
		_exit(b);
	}
	close(p[0]);
	started_fd = p[1];
	setsid();
	if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

/*
 * -t: a memory_max or tasks_max the host cannot enforce is a warning, not an
 * error (the configuration is right; this host lacks the controller).
 */
static void
limits_hint(const struct config *cf, const char *cgroup_where)
{
	int ctl = -2;

	for (size_t i = 0; i < cf->nsvc; i++) {
		const struct service *s = &cf->svc[i];

		if (s->memory_max == 0 && s->tasks_max == 0)
			continue;
		if (ctl == -2)
			ctl = cgroup_probe(cgroup_where);
		if (s->memory_max != 0 && (ctl < 0 || !(ctl & CG_MEMORY)))
			fprintf(stderr, "%s:%d: warning: memory_max cannot be enforced here: %s\n",
			    s->memory_max_at.file, s->memory_max_at.line, ctl < 0 ?
			    "porterd would have no cgroups" : "no memory controller on cgroup2");
		if (s->tasks_max != 0 && (ctl < 0 || !(ctl & CG_PIDS)))
			fprintf(stderr, "%s:%d: warning: tasks_max cannot be enforced here: %s\n",
			    s->tasks_max_at.file, s->tasks_max_at.line, ctl < 0 ?
			    "porterd would have no cgroups" : "no pids controller on cgroup2");
	}
}

/*
 * With reuseport, stopping one instance resets what waits in its accept queue,
 * unless the kernel moves it to the others: say so when it will not.
 */
static void
reuseport_hint(const struct config *cf)
{
	char v = '1';
	int fd;

	for (size_t i = 0; i < cf->nsvc; i++) {
		if (!cf->svc[i].reuseport)
			continue;
		if ((fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC)) >= 0) {
			if (read(fd, &v, 1) != 1)
				v = '1';
			close(fd);
		}
		if (v == '0')
			log_info("reuseport: net.ipv4.tcp_migrate_req is 0: when an instance stops, "
			    "connections waiting in its queue are reset; set it to 1 to have "
			    "them moved to the other instances");
		return;
	}
}

static int
write_pidfile(const char *path)
{
	char buf[32];
	int fd, n;

	/* Not blocking: a FIFO there must not hold up the start. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Only if it is still ours: another porterd (reuseport) may have written it since. */
static void
remove_pidfile(const char *path)
{
	char buf[32];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0 && (buf[n] = '\0', strtol(buf, NULL, 10) == (long)getpid()))
		(void)unlink(path);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir_arg = PORTERD_SERVICES_DIR;
	char *dir, *pidfile = NULL, *inetd_conf = NULL, *cgroup_where = NULL;
	struct config_sources src = { .dir = NULL };
	int foreground = 0, check = 0, dump = 0, verbose = 0, status = 0, c, spawners;
	int inetd_watch = -1;
	unsigned max_handlers = 0;
	struct config_errors errs = { NULL, 0 };
	struct config *cf;
	struct table *tab;
	char err[512];

	while ((c = getopt_long(argc, argv, "c:d:fg:hi:p:tTvV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (*optarg < '0' || *optarg > '9' || *end != '\0' || n == 0 || n > 1000000)
				usage();
			max_handlers = (unsigned)n;
			break;
		}
		case 'd': dir_arg = optarg; break;
		case 'f': foreground = 1; break;
		case 'g':
			free(cgroup_where);
			cgroup_where = strcmp(optarg, "none") == 0 ? strdup(optarg) :
			    absolute(optarg);
			if (cgroup_where == NULL)
				exit(EXIT_SYSTEM);
			break;
		case 'h': help(); break;
		case 'i': free(inetd_conf); inetd_conf = absolute(optarg); break;
		case 'p': pidfile = absolute(optarg); break;
		case 't': check = 1; break;
		case 'T': check = dump = 1; break;
		case 'v': verbose = 1; break;
		case 'V': printf("porterd %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	open_std_fds();
	reset_signals();
	spawn_init();
	raise_nofile();
	notify_init();
	/* Before anything opens an fd of its own: these are 3, 4, ... */
	listener_inherit();
	/* Strays inherited from whoever started us must not reach a handler. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	umask(022);
	dir = absolute(dir_arg);
	src.dir = dir;
	src.inetd_conf = inetd_conf;
	log_open(1, verbose);

	/*
	 * Watched before it is first read: a rewrite between the read and the
	 * loop (update-inetd right after the start) must not go unseen.
	 */
	if (inetd_conf != NULL && !check && (inetd_watch = filewatch_open(inetd_conf)) < 0)
		log_err("%s: cannot watch for changes (%s): reload it with SIGHUP", inetd_conf,
		    strerror(errno));
	cf = config_load(&src, &errs, check ? stderr : NULL);
	if (cf == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		fprintf(stderr, "porterd: %s%s%s: %zu error%s\n", dir, inetd_conf ? " and " : "",
		    inetd_conf ? inetd_conf : "", errs.n, errs.n == 1 ? "" : "s");
		config_errors_free(&errs);
		status = EXIT_CONFIG;
		goto out;
	}
	/* Lines of the -i file left out, certificates close to expiry: said, not refused. */
	for (size_t i = 0; i < cf->warnings.n; i++)
		fprintf(stderr, "%s\n", cf->warnings.msg[i]);
	for (size_t i = 0; i < cf->nsvc; i++)
		for (size_t j = 0; j < cf->svc[i].ntls_warn; j++)
			fprintf(stderr, "%s\n", cf->svc[i].tls_warn[j]);
	if (check) {
		limits_hint(cf, cgroup_where);
		if (dump)
			config_dump(cf, stdout);
		config_free(cf);
		goto out;
	}

	spawners = spawn_prepare(spawner_wanted());
	/* Sockets before daemonizing, so that "address in use" reaches the terminal. */
	(void)cgroup_enable(cgroup_wanted(cf));
	if ((tab = table_build(cf, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "porterd: %s\n", err);
		config_free(cf);
		status = EXIT_SYSTEM;
		goto out;
	}
	listener_inherit_unused();
	reuseport_hint(cf);
	if (loop_init() < 0) {
		fprintf(stderr, "porterd: signals: %s\n", strerror(errno));
		table_retire(tab, NULL);
		status = EXIT_SYSTEM;
		goto out;
	}
	if (!foreground)
		daemonize();	/* the sockets are the daemon's; the starter has exited */
	if (chdir("/") < 0)
		exit(EXIT_SYSTEM);
	log_open(foreground, verbose);
	if (pidfile != NULL && write_pidfile(pidfile) < 0) {
		log_err("pid file %s: %s", pidfile, strerror(errno));
		table_retire(tab, NULL);
		free(pidfile);
		pidfile = NULL;
		status = EXIT_SYSTEM;
		tell_starter(status);
		goto out;
	}
	tell_starter(0);
	{
		char msg[PATH_MAX + 256];

		/* In the daemon: BASE may be named after its pid. */
		if (cgroup_setup(cgroup_where, msg, sizeof(msg)))
			log_info("%s", msg);
		else
			log_warn("%s", msg);
	}
	daemon_stats.pid = getpid();
	daemon_stats.started = time(NULL);
	daemon_stats.started_ms = log_now_ms();
	daemon_stats.generation = 1;
	log_info("started with %zu service%s from %s%s%s", tab->n, tab->n == 1 ? "" : "s", dir,
	    inetd_conf ? " and " : "", inetd_conf ? inetd_conf : "");
	{
		char state[96];

		snprintf(state, sizeof(state), "READY=1\nMAINPID=%ld\nSTATUS=%zu service%s",
		    (long)getpid(), tab->n, tab->n == 1 ? "" : "s");
		notify_send(state);
	}

	(void)spawner_start(spawners);
	if (startwatch_start() < 0)
		log_warn("no thread to watch handlers' starts: %s", strerror(errno));
	loop_run(&tab, &src, max_handlers, inetd_watch);
	inetd_watch = -1;	/* closed by loop_run */
	spawner_stop();
	startwatch_stop();

	notify_send("STOPPING=1");
	pending_close_all();
	table_retire(tab, NULL);
	loop_finish();
	log_info("stopping; %zu handler%s left to finish", children_count(),
	    children_count() == 1 ? "" : "s");
	errlog_flush_all();
	children_clear();
	sources_clear();
	config_read_forget();
	{
		size_t left = cgroup_cleanup();

		if (left != 0)
			log_info("%zu handler cgroup%s left in %s/handlers: removed once empty",
			    left, left == 1 ? "" : "s", cgroup_base());
	}
	if (pidfile != NULL)
		remove_pidfile(pidfile);
out:
	if (inetd_watch >= 0)
		close(inetd_watch);
	free(cgroup_where);
	free(pidfile);
	free(dir);
	free(inetd_conf);
	return status;
}
