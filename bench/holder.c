/*
 * holder: opens N connections to HOST:PORT, waits until every one has had the
 * expected reply (so that its handler runs), holds them all, then closes them
 * all at once (SO_LINGER {1, 0}: an RST, nothing left in TIME_WAIT) and waits
 * until the server has reaped every handler. With -p PID it reads the server's
 * CPU time (utime + stime from /proc/PID/stat, in clock ticks, and the
 * nanoseconds of /proc/PID/schedstat), VmRSS, open fds and child count before,
 * when all are held, after -H seconds of holding, and after the release.
 * "Reaped": the children files under /proc/PID/task/ list no pid any more
 * (without -p there is nothing to wait for).
 *
 * usage: holder -n N [-c C] [-t SECS] [-H SECS] [-p PID] [-e REPLY] HOST:PORT
 *   -c C      connections being opened at once (default 128)
 *   -t SECS   bound of the opening, and separately of the release (default 120)
 *   -H SECS   hold that long before releasing (default 1)
 * Output: one JSON line on stdout, one human line on stderr.
 * Exit: 0 all held and reaped, 1 some not, 2 usage or system trouble.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "genlib.h"

enum { S_FREE, S_OPENING, S_HELD, S_DONE };
enum { F_REFUSED, F_RESET, F_TIMEOUT, F_WRONG, F_LOST, F_OTHER, F_NKINDS };
static const char *const fail_name[F_NKINDS] = {
	"refused", "reset", "timeout", "wrong_reply", "lost", "other",
};

struct conn {
	int	 fd;
	int	 state;
	size_t	 got;
};

struct snap {
	int		 ok;
	unsigned long long ticks;	/* utime + stime */
	unsigned long long ns;		/* schedstat: time on a CPU */
	long		 rss_kb, fds, children;
};

static volatile sig_atomic_t interrupted;
static const char *expect = "hello\n";
static size_t explen;
static unsigned long fails[F_NKINDS];
static int other_errno;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static long
count_children(pid_t pid)
{
	char path[320], buf[8192];
	DIR *d;
	struct dirent *de;
	long n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		FILE *f;
		size_t r;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		/* Space-separated pids: count the spaces after each one. */
		while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
			for (size_t i = 0; i < r; i++)
				n += buf[i] == ' ';
		fclose(f);
	}
	closedir(d);
	return n;
}

static struct snap
snapshot(pid_t pid)
{
	struct snap s = { 0 };
	char path[64], buf[4096], *p;
	FILE *f;
	DIR *d;
	struct dirent *de;

	if (pid <= 0)
		return s;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return s;
	if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL) {
		unsigned long long ut, st;

		/* After "pid (comm)": state is field 3, utime 14, stime 15. */
		if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		    &ut, &st) == 2) {
			s.ticks = ut + st;
			s.ok = 1;
		}
	}
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%llu", &s.ns) != 1)
			s.ns = 0;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) != NULL) {
		while (fgets(buf, sizeof(buf), f) != NULL)
			if (sscanf(buf, "VmRSS: %ld", &s.rss_kb) == 1)
				break;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			s.fds += de->d_name[0] != '.';
		closedir(d);
	}
	s.children = count_children(pid);
	return s;
}

static void
print_snap(const char *name, const struct snap *s, int last)
{
	printf("\"%s\":{\"cpu_ticks\":%llu,\"cpu_ns\":%llu,\"rss_kb\":%ld,\"fds\":%ld,"
	    "\"children\":%ld}%s", name, s->ticks, s->ns, s->rss_kb, s->fds, s->children,
	    last ? "" : ",");
}

static void
fail(struct conn *c, int kind, int e)
{
	struct linger lg = { 1, 0 };

	fails[kind]++;
	if (kind == F_OTHER)
		other_errno = e;
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
	c->state = S_DONE;
}

static int
kind_of(int e)
{
	switch (e) {
	case ECONNREFUSED: return F_REFUSED;
	case ECONNRESET: case EPIPE: return F_RESET;
	case ETIMEDOUT: return F_TIMEOUT;
	default: return F_OTHER;
	}
}

/* Returns 1 when the connection left the opening state (held or failed). */
static int
readable(struct conn *c)
{
	char buf[256];
	ssize_t n;

	for (;;) {
		n = read(c->fd, buf, sizeof(buf));
		if (n > 0) {
			if (c->state == S_HELD || c->got + (size_t)n > explen ||
			    memcmp(buf, expect + c->got, (size_t)n) != 0) {
				int was = c->state;

				fail(c, F_WRONG, 0);
				return was == S_OPENING;
			}
			c->got += (size_t)n;
			if (c->got == explen) {
				c->state = S_HELD;
				return 1;
			}
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			int was = c->state, e = n == 0 ? 0 : errno;

			/* EOF or an error while held: the handler went away early. */
			fail(c, was == S_HELD ? F_LOST : n == 0 ? F_WRONG : kind_of(e), e);
			return was == S_OPENING;
		} else {
			return 0;
		}
	}
}

int
main(int argc, char **argv)
{
	unsigned long n = 0, launched = 0, held = 0, failed_total = 0;
	int conc = 128, ch, ep, inflight = 0;
	double tmo = 120, hold_s = 1, t0, t_open, t_rel0, t_rel;
	pid_t pid = 0;
	struct sockaddr_in target = { .sin_family = AF_INET };
	struct rlimit rl;
	struct conn *conns;
	struct epoll_event *evs;
	struct sigaction sa;
	struct snap before, at_held, at_idle, after;
	long children_left = -1;

	while ((ch = getopt(argc, argv, "n:c:t:H:p:e:")) != -1) {
		switch (ch) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'c': conc = atoi(optarg); break;
		case 't': tmo = atof(optarg); break;
		case 'H': hold_s = atof(optarg); break;
		case 'p': pid = (pid_t)atol(optarg); break;
		case 'e': expect = optarg; break;	/* no escapes: the default has its \n */
		default: goto usage;
		}
	}
	if (optind != argc - 1 || n < 1 || conc < 1 || tmo <= 0 || hold_s < 0)
		goto usage;
	explen = strlen(expect);
	if (ipv4_port(argv[optind], &target) < 0)
		goto usage;

	/* N connections and a few more descriptors: take the hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 ||
	    (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n + 64)) {
		fprintf(stderr, "holder: the fd limit (%llu) is below %lu connections + 64\n",
		    (unsigned long long)rl.rlim_cur, n);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	conns = calloc(n, sizeof(*conns));
	evs = calloc((size_t)conc + 64, sizeof(*evs));
	if (conns == NULL || evs == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("holder");
		return 2;
	}
	for (unsigned long i = 0; i < n; i++)
		conns[i].fd = -1;

	before = snapshot(pid);
	t0 = now_s();
	/* Open: at most conc connections waiting for their reply at a time. */
	while ((launched < n || inflight > 0) && !interrupted && now_s() - t0 < tmo) {
		int nev;

		while (launched < n && inflight < conc) {
			struct conn *c = &conns[launched++];
			struct epoll_event ev = { .events = EPOLLIN };
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			c->state = S_DONE;
			if (fd < 0) {
				fails[F_OTHER]++;
				other_errno = errno;
				continue;
			}
			c->fd = fd;
			ev.data.ptr = c;
			if ((connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 &&
			    errno != EINPROGRESS) || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
				fail(c, kind_of(errno), errno);
				continue;
			}
			c->state = S_OPENING;
			inflight++;
		}
		nev = epoll_wait(ep, evs, conc + 64, 50);
		for (int i = 0; i < nev; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0 && readable(c))
				inflight--;
		}
	}
	t_open = now_s() - t0;
	for (unsigned long i = 0; i < n; i++) {
		if (conns[i].state == S_OPENING)
			fail(&conns[i], F_TIMEOUT, 0);
	}
	at_held = snapshot(pid);
	/* Hold: the server should spend nothing on connections that do nothing. */
	for (double th = now_s(); now_s() - th < hold_s && !interrupted;) {
		int nev = epoll_wait(ep, evs, conc + 64, 50);

		for (int i = 0; i < nev; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0)
				readable(c);
		}
	}
	for (unsigned long i = 0; i < n; i++)
		held += conns[i].state == S_HELD;
	at_idle = snapshot(pid);
	/* Release them all, then wait until the server has reaped every handler. */
	t_rel0 = now_s();
	for (unsigned long i = 0; i < n; i++) {
		if (conns[i].fd >= 0) {
			struct linger lg = { 1, 0 };

			(void)setsockopt(conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(conns[i].fd);
			conns[i].fd = -1;
		}
	}
	if (pid > 0) {
		while (!interrupted && now_s() - t_rel0 < tmo &&
		    (children_left = count_children(pid)) > 0)
			usleep(5000);
	}
	t_rel = now_s() - t_rel0;
	after = snapshot(pid);

	for (int k = 0; k < F_NKINDS; k++)
		failed_total += fails[k];
	printf("{\"target\":\"%s\",\"n\":%lu,\"held\":%lu,\"failed\":%lu,\"failures\":{",
	    argv[optind], n, held, failed_total);
	for (int k = 0; k < F_NKINDS; k++)
		printf("%s\"%s\":%lu", k ? "," : "", fail_name[k], fails[k]);
	printf("},\"other_errno\":\"%s\",\"open_s\":%.3f,\"hold_s\":%.3f,\"release_s\":%.3f,"
	    "\"children_left\":%ld,\"clk_tck\":%ld,\"pid\":%d,\"interrupted\":%s,",
	    other_errno ? strerror(other_errno) : "", t_open, hold_s, t_rel, children_left,
	    sysconf(_SC_CLK_TCK), (int)pid, interrupted ? "true" : "false");
	print_snap("before", &before, 0);
	print_snap("all_held", &at_held, 0);
	print_snap("held_idle", &at_idle, 0);
	print_snap("released", &after, 1);
	printf("}\n");
	fflush(stdout);
	fprintf(stderr, "%s: %lu of %lu held after %.2f s, released and reaped in %.2f s%s; "
	    "server RSS %ld -> %ld -> %ld kB, cpu %.1f us per connection\n", argv[optind],
	    held, n, t_open, t_rel, children_left > 0 ? " (NOT all reaped)" : "",
	    before.rss_kb, at_held.rss_kb, after.rss_kb,
	    (double)(after.ns - before.ns) / 1e3 / (double)n);
	return held == n && children_left <= 0 ? 0 : 1;
usage:
	fprintf(stderr, "usage: holder -n N [-c C] [-t SECS] [-H SECS] [-p PID] [-e REPLY] HOST:PORT\n");
	return 2;
}
