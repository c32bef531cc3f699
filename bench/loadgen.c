/*
 * loadgen: a connection-rate load generator for inetd-style servers.
 *
 * Keeps C connections in flight to HOST:PORT until N have been started (or
 * until -d seconds have passed). Each one connects, reads the handler's reply
 * to EOF, checks it byte for byte against the expected reply, and closes.
 * One thread, non-blocking sockets, epoll: the generator must cost far less
 * per connection than the fork+exec it measures.
 *
 * Closing: by default every socket is closed with SO_LINGER {1, 0}, after EOF,
 * so the close is an RST. The server closed first, so without it its side of
 * each connection would sit in TIME_WAIT for a minute; at thousands of
 * connections per second that fills the kernel's TIME_WAIT table and the
 * 4-tuple space of one client address. -s K also spreads connections over
 * the source addresses 127.0.0.1 .. 127.0.0.K. -L turns the RST off.
 *
 * Output: one JSON line on stdout, one human line on stderr. -o FILE also
 * writes one line per finished connection, "T0 T1 KIND" (CLOCK_MONOTONIC ns at
 * socket() and at EOF or failure; KIND ok or an error name), for a caller that
 * cuts the run into time windows (bench/reloadgap.py).
 * Exit: 0 every connection ok, 1 some failed, 2 usage or system trouble.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "genlib.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum err_kind {
	E_REFUSED, E_RESET, E_TIMEOUT, E_WRONG, E_EMPTY, E_ADDRNOTAVAIL, E_OTHER,
	E_ABORTED, E_NKINDS
};

static const char *const err_name[E_NKINDS] = {
	"refused", "reset", "timeout", "wrong_reply", "empty_reply", "addrnotavail",
	"other", "aborted",
};

struct conn {
	int		 fd;		/* -1: slot free */
	uint64_t	 t0;		/* ns, before socket() */
	size_t		 got;		/* reply bytes matched so far */
};

static volatile sig_atomic_t interrupted;

static struct sockaddr_in target;
static const char *expect = "hello\n";
static size_t explen;
static int nsrc = 1, linger0 = 1;

static uint64_t *lat;		/* ns, connect to EOF, of the connections that passed */
static size_t nlat, latcap;
static unsigned long errs[E_NKINDS];
static int other_errno;
static uint64_t addr_pause_until;
static uint64_t last_ok_ns, gap_max_ns;	/* longest wait between successive oks */

struct trace_rec {
	uint64_t	 t0, t1;
	int		 kind;		/* -1 ok, else enum err_kind */
};
static struct trace_rec *trace;	/* -o: kept in memory, written at the end */
static size_t ntrace, tracecap;
static const char *trace_path;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: loadgen [-n N] [-c C] [-d SECS] [-T SECS] [-t SECS] [-e REPLY] [-s K]\n"
	    "               [-L] [-q] [-o FILE] HOST:PORT\n"
	    "  -n N      connections to start at most (default 10000)\n"
	    "  -c C      connections in flight (default 8)\n"
	    "  -d SECS   start no connection after SECS (default: no limit)\n"
	    "  -T SECS   hard deadline: abandon what is in flight (default: d + t + 1, or 600)\n"
	    "  -t SECS   per-connection timeout, connect to EOF (default 5)\n"
	    "  -e REPLY  expected reply, \\n and \\\\ escapes (default \"hello\\n\")\n"
	    "  -s K      source addresses 127.0.0.1 .. 127.0.0.K, round robin (default 1)\n"
	    "  -L        plain close (FIN, TIME_WAIT) instead of SO_LINGER 0 (RST)\n"
	    "  -q        no human line on stderr\n"
	    "  -o FILE   one line per finished connection: T0_NS T1_NS KIND (monotonic)\n");
	exit(2);
}

static void
record_ok(uint64_t ns)
{
	if (nlat == latcap) {
		latcap = latcap ? latcap * 2 : 65536;
		if ((lat = realloc(lat, latcap * sizeof(*lat))) == NULL) {
			perror("loadgen: realloc");
			exit(2);
		}
	}
	lat[nlat++] = ns;
}

static enum err_kind
kind_of(int e)
{
	switch (e) {
	case ECONNREFUSED: return E_REFUSED;
	case ECONNRESET: case EPIPE: return E_RESET;
	case ETIMEDOUT: return E_TIMEOUT;
	case EADDRNOTAVAIL: case EADDRINUSE: return E_ADDRNOTAVAIL;
	default: other_errno = e; return E_OTHER;
	}
}

static void
record_err(int e)
{
	errs[kind_of(e)]++;
}

/* kind < 0: the reply was right. */
static void
finish(struct conn *c, int kind)
{
	struct linger lg = { 1, 0 };
	uint64_t t1 = now_ns();

	if (kind < 0) {
		record_ok(t1 - c->t0);
		if (t1 - last_ok_ns > gap_max_ns)
			gap_max_ns = t1 - last_ok_ns;
		last_ok_ns = t1;
	} else
		errs[kind]++;
	if (trace_path != NULL) {
		if (ntrace == tracecap) {
			tracecap = tracecap ? tracecap * 2 : 65536;
			if ((trace = realloc(trace, tracecap * sizeof(*trace))) == NULL) {
				perror("loadgen: realloc");
				exit(2);
			}
		}
		trace[ntrace++] = (struct trace_rec){ c->t0, t1, kind };
	}
	if (linger0)
		(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);	/* also drops it from the epoll set: it was never dup'ed */
	c->fd = -1;
}

/* Returns 0 when the connection is under way, -1 when it failed at once. */
static int
start(int ep, struct conn *c, unsigned long seq)
{
	struct epoll_event ev;
	int fd, e;

	c->t0 = now_ns();
	c->got = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		record_err(errno);
		return -1;
	}
	if (nsrc > 1) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		int one = 1;

		src.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(seq % (unsigned)nsrc));
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			goto fail;
	}
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->fd = fd;
	return 0;
fail:
	e = errno;
	close(fd);
	record_err(e);
	/* Out of local ports: let the ones in flight drain before the next try. */
	if (e == EADDRNOTAVAIL || e == EADDRINUSE)
		addr_pause_until = now_ns() + 10000000u;
	return -1;
}

static void
readable(struct conn *c)
{
	char buf[4096];
	ssize_t n;

	for (;;) {
		n = read(c->fd, buf, sizeof(buf));
		if (n > 0) {
			if (c->got + (size_t)n > explen ||
			    memcmp(buf, expect + c->got, (size_t)n) != 0) {
				finish(c, E_WRONG);
				return;
			}
			c->got += (size_t)n;
		} else if (n == 0) {
			finish(c, c->got == explen ? -1 : c->got == 0 ? E_EMPTY : E_WRONG);
			return;
		} else if (errno == EAGAIN || errno == EINTR) {
			return;
		} else {
			finish(c, (int)kind_of(errno));
			return;
		}
	}
}

static double
pct_ms(double p)
{
	return pct_ms_of(lat, nlat, p);
}

int
main(int argc, char **argv)
{
	unsigned long n = 10000, started = 0, ok;
	double soft = -1, hard = -1, conn_timeout = 5;
	int conc = 8, quiet = 0, ep, ch;
	uint64_t t_begin, t_end, soft_ns, hard_ns, tmo_ns, last_scan;
	struct epoll_event *evs;
	struct conn *conns;
	struct sigaction sa;
	unsigned long errtotal = 0;
	double elapsed, sum = 0;
	size_t active = 0;

	while ((ch = getopt(argc, argv, "n:c:d:T:t:e:s:Lqo:")) != -1) {
		switch (ch) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'c': conc = atoi(optarg); break;
		case 'd': soft = atof(optarg); break;
		case 'T': hard = atof(optarg); break;
		case 't': conn_timeout = atof(optarg); break;
		case 'e': expect = unescape(optarg); break;
		case 's': nsrc = atoi(optarg); break;
		case 'L': linger0 = 0; break;
		case 'q': quiet = 1; break;
		case 'o': trace_path = optarg; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || conc < 1 || n < 1 || nsrc < 1 || nsrc > 254 ||
	    conn_timeout <= 0)
		usage();
	explen = strlen(expect);
	if (ipv4_port(argv[optind], &target) < 0) {
		fprintf(stderr, "loadgen: %s: not an IPv4 address and port\n", argv[optind]);
		return 2;
	}
	if (hard < 0)
		hard = soft >= 0 ? soft + conn_timeout + 1 : 600;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	conns = calloc((size_t)conc, sizeof(*conns));
	evs = calloc((size_t)conc, sizeof(*evs));
	if (conns == NULL || evs == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("loadgen");
		return 2;
	}
	for (int i = 0; i < conc; i++)
		conns[i].fd = -1;

	tmo_ns = (uint64_t)(conn_timeout * 1e9);
	t_begin = last_scan = last_ok_ns = now_ns();
	soft_ns = soft >= 0 ? t_begin + (uint64_t)(soft * 1e9) : UINT64_MAX;
	hard_ns = t_begin + (uint64_t)(hard * 1e9);

	for (;;) {
		uint64_t now = now_ns();
		int launching = started < n && now < soft_ns && !interrupted;
		int nev;

		/* Fill the free slots. */
		if (launching && now >= addr_pause_until) {
			for (int i = 0; i < conc && started < n; i++) {
				if (conns[i].fd >= 0)
					continue;
				started++;
				if (start(ep, &conns[i], started) == 0)
					active++;
				if (addr_pause_until > now)
					break;
			}
		}
		if (active == 0 && (!launching || started >= n))
			break;
		if (interrupted || now >= hard_ns)
			break;
		nev = epoll_wait(ep, evs, conc, active == 0 ? 10 : 50);
		if (nev < 0 && errno != EINTR) {
			perror("loadgen: epoll_wait");
			return 2;
		}
		for (int i = 0; i < nev; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd < 0)
				continue;
			readable(c);
			if (c->fd < 0)
				active--;
		}
		/* Per-connection timeouts; a scan of C slots every 20 ms is cheap. */
		now = now_ns();
		if (now - last_scan > 20000000u) {
			last_scan = now;
			for (int i = 0; i < conc; i++)
				if (conns[i].fd >= 0 && now - conns[i].t0 > tmo_ns) {
					finish(&conns[i], E_TIMEOUT);
					active--;
				}
		}
	}
	/* Whatever is still in flight was cut off by the deadline or a signal. */
	for (int i = 0; i < conc; i++)
		if (conns[i].fd >= 0)
			finish(&conns[i], E_ABORTED);
	t_end = now_ns();
	if (trace_path != NULL) {
		FILE *tf = fopen(trace_path, "w");

		if (tf == NULL) {
			perror(trace_path);
			return 2;
		}
		for (size_t i = 0; i < ntrace; i++)
			fprintf(tf, "%llu %llu %s\n", (unsigned long long)trace[i].t0,
			    (unsigned long long)trace[i].t1,
			    trace[i].kind < 0 ? "ok" : err_name[trace[i].kind]);
		if (fclose(tf) != 0) {
			perror(trace_path);
			return 2;
		}
	}

	elapsed = (double)(t_end - t_begin) / 1e9;
	ok = (unsigned long)nlat;
	for (size_t i = 0; i < nlat; i++)
		sum += (double)lat[i];
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	for (int k = 0; k < E_NKINDS; k++)
		errtotal += errs[k];

	printf("{\"target\":\"%s\",\"n\":%lu,\"c\":%d,\"started\":%lu,\"ok\":%lu,"
	    "\"errors_total\":%lu,\"errors\":{", argv[optind], n, conc, started, ok, errtotal);
	for (int k = 0; k < E_NKINDS; k++)
		printf("%s\"%s\":%lu", k ? "," : "", err_name[k], errs[k]);
	printf("},\"other_errno\":\"%s\",\"elapsed_s\":%.6f,\"conn_per_s\":%.1f,"
	    "\"lat_ms\":{\"min\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f,"
	    "\"mean\":%.4f},\"gap_ms_max\":%.4f,\"linger0\":%s,\"sources\":%d,\"interrupted\":%s}\n",
	    other_errno ? strerror(other_errno) : "", elapsed,
	    elapsed > 0 ? (double)ok / elapsed : 0.0,
	    nlat ? (double)lat[0] / 1e6 : 0.0, pct_ms(50), pct_ms(90), pct_ms(99),
	    nlat ? (double)lat[nlat - 1] / 1e6 : 0.0, nlat ? sum / (double)nlat / 1e6 : 0.0,
	    (double)gap_max_ns / 1e6, linger0 ? "true" : "false", nsrc, interrupted ? "true" : "false");
	fflush(stdout);

	if (!quiet) {
		fprintf(stderr, "%s c=%d: %lu ok of %lu in %.2f s = %.0f conn/s; latency ms "
		    "p50 %.3f p99 %.3f max %.3f; errors:", argv[optind], conc, ok, started,
		    elapsed, elapsed > 0 ? (double)ok / elapsed : 0.0, pct_ms(50), pct_ms(99),
		    nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
		if (errtotal == 0)
			fprintf(stderr, " none");
		for (int k = 0; k < E_NKINDS; k++)
			if (errs[k] != 0)
				fprintf(stderr, " %s %lu", err_name[k], errs[k]);
		if (other_errno)
			fprintf(stderr, " (other: %s)", strerror(other_errno));
		fprintf(stderr, "\n");
	}
	return errtotal == 0 ? 0 : 1;
}
