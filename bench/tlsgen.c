/*
 * tlsgen: the load generator of the TLS phase (bench/run.sh, bench/README "TLS").
 *
 * Three modes, over TLS or (-P) over plain TCP, so that the plaintext reference
 * is measured by the same program, with the same loop, as the TLS contenders:
 *
 *   rate (default)  C connections in flight to HOST:PORT for -d seconds (or
 *                   until -n were started); each one connects, makes a full
 *                   handshake (a fresh SSL object, no session ever offered:
 *                   no resumption), reads the reply to EOF, checks it byte for
 *                   byte (-e, default "hello\n"), sends close_notify and closes
 *                   with an RST (SO_LINGER {1, 0}; see loadgen.c for why).
 *   bulk (-b BYTES) one connection at a time, -n of them (default 1); each
 *                   reply must be BYTES zero bytes. The rate is BYTES over
 *                   the time from the first byte to EOF (and, in "total",
 *                   from connect to EOF); the median over the transfers.
 *   hold (-H N)     N connections (C at a time being opened) each held open
 *                   once its reply has come, so that the server has N relays
 *                   and handlers alive; with -p PID, the memory of PID and all
 *                   its descendants is read before and while they are held
 *                   (RSS and PSS, summed over /proc/P/smaps_rollup). Then all
 *                   are closed and, with -p, tlsgen waits until the process
 *                   tree is back to the size it had before (at most -t s).
 *
 * -C CAFILE checks the server's certificate chain against CAFILE (a full
 * client); without it the chain is not checked, but the handshake still
 * checks the server's signature with the certificate's key, as TLS requires.
 * One thread, non-blocking sockets, epoll. Output: one JSON line on stdout,
 * one human line on stderr. Exit: 0 all ok, 1 some failed, 2 usage or system.
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

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "genlib.h"

enum err_kind {
	E_REFUSED, E_RESET, E_TIMEOUT, E_HANDSHAKE, E_TLS, E_WRONG, E_EMPTY,
	E_ADDRNOTAVAIL, E_OTHER, E_ABORTED, E_NKINDS
};

static const char *const err_name[E_NKINDS] = {
	"refused", "reset", "timeout", "handshake", "tls", "wrong_reply", "empty_reply",
	"addrnotavail", "other", "aborted",
};

enum { C_FREE, C_HANDSHAKE, C_READ, C_HELD };

struct conn {
	int		 fd;
	int		 state;
	SSL		*ssl;		/* NULL with -P */
	uint64_t	 t0;		/* ns, before socket() */
	uint64_t	 t_first;	/* ns, first reply byte (bulk) */
	uint64_t	 got;		/* reply bytes matched so far */
	uint32_t	 events;	/* what epoll waits for */
};

static volatile sig_atomic_t interrupted;

static struct sockaddr_in target;
static SSL_CTX *ctx;
static int plain, ep;
static const char *expect = "hello\n";
static uint64_t explen;
static int bulk;			/* the reply is explen zero bytes */

static uint64_t *lat;
static size_t nlat, latcap;
static unsigned long errs[E_NKINDS], unclean, held;
static int other_errno;
static char ssl_reason[160];
static char proto[32], cipher[64], group[32];
static double *bulk_s;			/* per transfer: first byte to EOF, s */
static size_t nbulk;
static uint64_t addr_pause_until;

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
	    "usage: tlsgen [-P] [-C CAFILE] [-c C] [-n N] [-d SECS] [-T SECS] [-t SECS]\n"
	    "              [-e REPLY | -b BYTES | -H N [-p PID]] [-q] HOST:PORT\n"
	    "  -P        plain TCP, no TLS (the reference)\n"
	    "  -C FILE   check the server's certificate chain against FILE\n"
	    "  -c C      connections in flight (default 8)\n"
	    "  -n N      connections to start at most (default: no limit)\n"
	    "  -d SECS   start no connection after SECS (default 2)\n"
	    "  -T SECS   hard deadline (default d + t + 1)\n"
	    "  -t SECS   per-connection timeout, socket() to EOF (default 5; bulk: 120)\n"
	    "  -e REPLY  expected reply, \\n escapes (default \"hello\\n\")\n"
	    "  -b BYTES  bulk: one connection, BYTES zero bytes expected\n"
	    "  -H N      hold N connections open, then close them all\n"
	    "  -p PID    with -H: the memory of PID's process tree, before and held\n"
	    "  -q        no human line on stderr\n");
	exit(2);
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

/* A failed SSL call: a system error, the peer's EOF, or a TLS error (kept for the report). */
static enum err_kind
ssl_kind(struct conn *c, int ret, enum err_kind tls_kind)
{
	int e = SSL_get_error(c->ssl, ret);
	unsigned long le;

	if (e == SSL_ERROR_SYSCALL) {
		ERR_clear_error();
		if (errno != 0)
			return kind_of(errno);
		return c->state == C_HANDSHAKE ? E_RESET : E_WRONG;
	}
	if ((le = ERR_peek_last_error()) != 0 && ssl_reason[0] == '\0')
		snprintf(ssl_reason, sizeof(ssl_reason), "%s",
		    ERR_reason_error_string(le) ? ERR_reason_error_string(le) : "?");
	ERR_clear_error();
	return tls_kind;
}

static void
record_ok(uint64_t ns)
{
	if (nlat == latcap) {
		latcap = latcap ? latcap * 2 : 65536;
		if ((lat = realloc(lat, latcap * sizeof(*lat))) == NULL) {
			perror("tlsgen: realloc");
			exit(2);
		}
	}
	lat[nlat++] = ns;
}

/* kind < 0: the reply was right. Frees the slot. */
static void
finish(struct conn *c, int kind)
{
	struct linger lg = { 1, 0 };
	uint64_t t1 = now_ns();

	if (kind < 0) {
		record_ok(t1 - c->t0);
		if (bulk) {
			bulk_s[nbulk++] = (double)(t1 - c->t_first) / 1e9;
		}
	} else {
		errs[kind]++;
	}
	if (c->ssl != NULL) {
		/* Polite, as a real client: our close_notify, once, without waiting. */
		if (kind < 0)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	(void)setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c->fd);
	c->fd = -1;
	c->state = C_FREE;
}

static void
want(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	c->events = events;
	(void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* The first handshake made: what was negotiated, for the report. */
static void
note_session(SSL *ssl)
{
	int nid;

	if (proto[0] != '\0')
		return;
	snprintf(proto, sizeof(proto), "%s", SSL_get_version(ssl));
	snprintf(cipher, sizeof(cipher), "%s", SSL_get_cipher_name(ssl));
	nid = SSL_get_negotiated_group(ssl);
	snprintf(group, sizeof(group), "%s", nid != NID_undef ? OBJ_nid2sn(nid) : "-");
}

/* Bytes of the reply: 0 while they match what is expected, else the error kind. */
static int
check(struct conn *c, const char *buf, size_t n)
{
	static const char zero[65536];

	if (c->got == 0 && n > 0)
		c->t_first = now_ns();
	if (c->got + n > explen)
		return E_WRONG;
	if (bulk) {
		for (size_t at = 0; at < n; at += sizeof(zero)) {
			size_t k = n - at < sizeof(zero) ? n - at : sizeof(zero);

			if (memcmp(buf + at, zero, k) != 0)
				return E_WRONG;
		}
	} else if (memcmp(buf, expect + c->got, n) != 0) {
		return E_WRONG;
	}
	c->got += n;
	return 0;
}

/* The reply is complete: hold the connection (-H) or finish it. */
static void
got_reply(struct conn *c, int holding)
{
	if (holding) {
		c->state = C_HELD;
		held++;
		/* Out of the set: a peer's close would otherwise be reported again and again. */
		(void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	} else {
		finish(c, -1);
	}
}

/* Move a connection as far as it goes without blocking. */
static void
step(struct conn *c, int holding)
{
	static char buf[262144];
	int ret, k;

	if (c->state == C_HANDSHAKE) {
		if ((ret = SSL_connect(c->ssl)) != 1) {
			int e = SSL_get_error(c->ssl, ret);

			if (e == SSL_ERROR_WANT_READ)
				want(c, EPOLLIN);
			else if (e == SSL_ERROR_WANT_WRITE)
				want(c, EPOLLOUT);
			else
				finish(c, ssl_kind(c, ret, E_HANDSHAKE));
			return;
		}
		note_session(c->ssl);
		c->state = C_READ;
		want(c, EPOLLIN);
	}
	if (c->state != C_READ)
		return;
	for (;;) {
		if (plain) {
			ssize_t n = read(c->fd, buf, sizeof(buf));

			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n < 0) {
				finish(c, kind_of(errno));
				return;
			}
			ret = (int)n;
		} else {
			errno = 0;
			ret = SSL_read(c->ssl, buf, sizeof(buf));
			if (ret <= 0) {
				int e = SSL_get_error(c->ssl, ret);

				if (e == SSL_ERROR_WANT_READ)
					return;
				if (e == SSL_ERROR_WANT_WRITE) {
					want(c, EPOLLOUT);
					return;
				}
				if (e == SSL_ERROR_ZERO_RETURN) {
					/* EOF; with or without the server's close_notify. */
					if (!(SSL_get_shutdown(c->ssl) & SSL_RECEIVED_SHUTDOWN))
						unclean++;
					ret = 0;
				} else {
					finish(c, ssl_kind(c, ret, E_TLS));
					return;
				}
			}
		}
		if (ret == 0) {
			if (c->got == explen)
				finish(c, -1);
			else
				finish(c, c->got == 0 ? E_EMPTY : E_WRONG);
			return;
		}
		if ((k = check(c, buf, (size_t)ret)) != 0) {
			finish(c, k);
			return;
		}
		/* A held connection is held once its reply is in, before any EOF. */
		if (holding && c->got == explen) {
			got_reply(c, 1);
			return;
		}
	}
}

/* 0: under way; -1: failed at once (counted). */
static int
start(struct conn *c)
{
	struct epoll_event ev;
	int fd, e;

	c->t0 = now_ns();
	c->got = 0;
	c->t_first = 0;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		errs[kind_of(errno)]++;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS)
		goto fail;
	ev.events = c->events = plain ? EPOLLIN : EPOLLOUT;
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->fd = fd;
	if (plain) {
		c->state = C_READ;
		return 0;
	}
	if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1) {
		fprintf(stderr, "tlsgen: SSL_new failed\n");
		exit(2);
	}
	SSL_set_connect_state(c->ssl);
	c->state = C_HANDSHAKE;
	return 0;
fail:
	e = errno;
	close(fd);
	errs[kind_of(e)]++;
	if (e == EADDRNOTAVAIL || e == EADDRINUSE)
		addr_pause_until = now_ns() + 10000000u;
	return -1;
}

/* ---- the memory of a process tree (-p) */

struct mem {
	long	 procs;
	long	 rss_kb, pss_kb;
};

static void
add_proc(pid_t pid, struct mem *m, int depth)
{
	char path[96], line[256];
	DIR *d;
	FILE *f;
	struct dirent *de;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;		/* gone meanwhile */
	m->procs++;
	while (fgets(line, sizeof(line), f) != NULL) {
		long kb;

		if (sscanf(line, "Rss: %ld kB", &kb) == 1)
			m->rss_kb += kb;
		else if (sscanf(line, "Pss: %ld kB", &kb) == 1)
			m->pss_kb += kb;
	}
	fclose(f);
	if (depth > 8)
		return;
	/* Every thread's children: stunnel's are its threads'. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char cpath[320];
		FILE *cf;
		int child;

		if (de->d_name[0] == '.')
			continue;
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%s/children", (int)pid, de->d_name);
		if ((cf = fopen(cpath, "re")) == NULL)
			continue;
		while (fscanf(cf, "%d", &child) == 1)
			add_proc((pid_t)child, m, depth + 1);
		fclose(cf);
	}
	closedir(d);
}

static struct mem
tree_mem(pid_t pid)
{
	struct mem m = { 0, 0, 0 };

	add_proc(pid, &m, 0);
	return m;
}

static double
pct_ms(double p)
{
	return pct_ms_of(lat, nlat, p);
}

/* The median of n values, from a sorted copy. */
static double
median(const double *v, size_t n)
{
	double *w = malloc(n * sizeof(*w)), m;

	if (w == NULL)
		return 0;
	memcpy(w, v, n * sizeof(*w));
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && w[j - 1] > w[j]; j--) {
			double t = w[j];

			w[j] = w[j - 1];
			w[j - 1] = t;
		}
	m = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
	free(w);
	return m;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char **argv)
{
	unsigned long n = 0, started = 0, hold_n = 0;
	double soft = 2, hard = -1, tmo = -1, cpu0;
	int conc = 8, quiet = 0, ch, mode_set = 0;
	const char *cafile = NULL;
	pid_t tree = 0;
	uint64_t t_begin, t_end, soft_ns, hard_ns, tmo_ns, last_scan;
	struct epoll_event *evs;
	struct conn *conns;
	struct sigaction sa;
	struct mem before = { 0, 0, 0 }, during = { 0, 0, 0 }, after = { 0, 0, 0 };
	unsigned long errtotal = 0;
	double elapsed, settle_s = 0, data_s = 0;
	size_t active = 0;

	while ((ch = getopt(argc, argv, "PC:c:n:d:T:t:e:b:H:p:q")) != -1) {
		switch (ch) {
		case 'P': plain = 1; break;
		case 'C': cafile = optarg; break;
		case 'c': conc = atoi(optarg); break;
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'd': soft = atof(optarg); break;
		case 'T': hard = atof(optarg); break;
		case 't': tmo = atof(optarg); break;
		case 'e': expect = unescape(optarg); mode_set++; break;
		case 'b': explen = strtoull(optarg, NULL, 10); bulk = 1; mode_set++; break;
		case 'H': hold_n = strtoul(optarg, NULL, 10); mode_set++; break;
		case 'p': tree = (pid_t)atoi(optarg); break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (optind != argc - 1 || conc < 1 || mode_set > 1 || (bulk && explen == 0) ||
	    (tree != 0 && hold_n == 0))
		usage();
	if (!bulk)
		explen = strlen(expect);
	if (bulk) {
		conc = 1;
		if (n == 0)
			n = 1;
		if ((bulk_s = calloc(n, sizeof(*bulk_s))) == NULL) {
			perror("tlsgen");
			return 2;
		}
	}
	if (hold_n > 0) {
		n = hold_n;
		if (conc > (int)hold_n)
			conc = (int)hold_n;
	}
	if (tmo < 0)
		tmo = bulk ? 120 : 5;
	if (ipv4_port(argv[optind], &target) < 0) {
		fprintf(stderr, "tlsgen: %s: not an IPv4 address and port\n", argv[optind]);
		return 2;
	}
	if (bulk || hold_n > 0)
		soft = tmo * (bulk ? (double)n : 1);	/* bounded by the timeout, each */
	if (hard < 0)
		hard = soft + tmo + 1;

	if (!plain) {
		if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
			fprintf(stderr, "tlsgen: SSL_CTX_new failed\n");
			return 2;
		}
		/* Never a resumed session: no cache, and no ticket kept. */
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
		SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
		if (cafile != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
				fprintf(stderr, "tlsgen: %s: cannot load\n", cafile);
				return 2;
			}
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	conns = calloc((size_t)conc, sizeof(*conns));
	evs = calloc((size_t)conc, sizeof(*evs));
	if (hold_n > 0) {
		/* Every held connection keeps its slot: as many slots as connections. */
		free(conns);
		conns = calloc(hold_n, sizeof(*conns));
	}
	if (conns == NULL || evs == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		perror("tlsgen");
		return 2;
	}
	for (size_t i = 0; i < (hold_n > 0 ? hold_n : (size_t)conc); i++)
		conns[i].fd = -1;
	if (tree != 0)
		before = tree_mem(tree);

	tmo_ns = (uint64_t)(tmo * 1e9);
	cpu0 = cpu_s();
	t_begin = last_scan = now_ns();
	soft_ns = t_begin + (uint64_t)(soft * 1e9);
	hard_ns = t_begin + (uint64_t)(hard * 1e9);

	for (;;) {
		size_t nslots = hold_n > 0 ? hold_n : (size_t)conc;
		uint64_t now = now_ns();
		int launching = (n == 0 || started < n) && now < soft_ns && !interrupted;
		size_t opening = active - held;
		int nev;

		if (launching && now >= addr_pause_until && hold_n > 0) {
			/* Held ones keep their slots: slot i is connection i; C opening at once. */
			while (started < n && opening < (size_t)conc) {
				struct conn *c = &conns[started++];

				if (start(c) == 0) {
					opening++;
					step(c, 1);
				}
				if (addr_pause_until > now)
					break;
			}
		} else if (launching && now >= addr_pause_until) {
			/*
			 * A server that answers at once can have its whole connection
			 * made inside step(): the slot is free again, and is filled
			 * again here rather than after an epoll_wait with nothing to wait for.
			 */
			int again;

			do {
				again = 0;
				for (size_t i = 0; i < nslots && (n == 0 || started < n); i++) {
					if (conns[i].fd >= 0)
						continue;
					started++;
					if (start(&conns[i]) == 0 && !plain) {
						step(&conns[i], 0);
						again |= conns[i].fd < 0;
					}
					if (addr_pause_until > now)
						break;
				}
			} while (again && (n == 0 || started < n) && now_ns() < soft_ns &&
			    !interrupted && addr_pause_until <= now);
		}
		/* Count again: a step may have finished some. */
		active = 0;
		for (size_t i = 0; i < (hold_n > 0 ? started : nslots); i++)
			if (conns[i].fd >= 0)
				active++;
		if (hold_n > 0 && (started >= n || !launching) && active == held)
			break;	/* everything opened is held or failed */
		if (active == 0 && !launching)
			break;
		if (interrupted || now >= hard_ns)
			break;
		nev = epoll_wait(ep, evs, conc, active == 0 ? 10 : 50);
		if (nev < 0 && errno != EINTR) {
			perror("tlsgen: epoll_wait");
			return 2;
		}
		for (int i = 0; i < nev; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0 && c->state != C_HELD)
				step(c, hold_n > 0);
		}
		now = now_ns();
		if (now - last_scan > 20000000u) {
			last_scan = now;
			for (size_t i = 0; i < nslots; i++)
				if (conns[i].fd >= 0 && conns[i].state != C_HELD &&
				    now - conns[i].t0 > tmo_ns)
					finish(&conns[i], E_TIMEOUT);
		}
	}
	t_end = now_ns();
	if (hold_n > 0) {
		size_t nslots = hold_n;

		if (tree != 0) {
			/* Let the last handlers settle into their read before looking. */
			usleep(200000);
			during = tree_mem(tree);
		}
		for (size_t i = 0; i < nslots; i++)
			if (conns[i].fd >= 0)
				finish(&conns[i], conns[i].state == C_HELD ? -1 : E_ABORTED);
		if (tree != 0) {
			uint64_t t0 = now_ns(), limit = t0 + tmo_ns;

			/* Back to the tree of before: every relay and handler reaped. */
			do {
				after = tree_mem(tree);
				if (after.procs <= before.procs)
					break;
				usleep(20000);
			} while (now_ns() < limit);
			settle_s = (double)(now_ns() - t0) / 1e9;
		}
	} else {
		for (int i = 0; i < conc; i++)
			if (conns[i].fd >= 0)
				finish(&conns[i], E_ABORTED);
	}
	elapsed = (double)(t_end - t_begin) / 1e9;
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	for (int k = 0; k < E_NKINDS; k++)
		errtotal += errs[k];

	printf("{\"target\":\"%s\",\"tls\":%s,\"mode\":\"%s\",\"c\":%d,\"started\":%lu,"
	    "\"ok\":%zu,\"errors_total\":%lu,\"errors\":{", argv[optind], plain ? "false" : "true",
	    bulk ? "bulk" : hold_n > 0 ? "hold" : "rate", conc, started, nlat, errtotal);
	for (int k = 0; k < E_NKINDS; k++)
		printf("%s\"%s\":%lu", k ? "," : "", err_name[k], errs[k]);
	printf("},\"other_errno\":\"%s\",\"tls_error\":\"%s\",\"protocol\":\"%s\",\"cipher\":\"%s\","
	    "\"group\":\"%s\",\"verify_chain\":%s,\"unclean_close\":%lu,\"elapsed_s\":%.6f,"
	    "\"conn_per_s\":%.1f,\"client_cpu_us_per_conn\":%.1f,"
	    "\"lat_ms\":{\"min\":%.4f,\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"max\":%.4f}",
	    other_errno ? strerror(other_errno) : "", ssl_reason, proto, cipher, group,
	    cafile != NULL ? "true" : "false", unclean, elapsed,
	    elapsed > 0 ? (double)nlat / elapsed : 0.0,
	    nlat ? (cpu_s() - cpu0) * 1e6 / (double)nlat : 0.0,
	    nlat ? (double)lat[0] / 1e6 : 0.0, pct_ms(50), pct_ms(90), pct_ms(99),
	    nlat ? (double)lat[nlat - 1] / 1e6 : 0.0);
	if (bulk) {
		double total_s = nlat ? (double)lat[nlat / 2] / 1e9 : 0;

		data_s = nbulk ? median(bulk_s, nbulk) : 0;
		printf(",\"bytes\":%llu,\"transfers\":%zu,\"data_s\":%.6f,\"total_s\":%.6f,"
		    "\"mb_per_s\":%.1f,\"mb_per_s_total\":%.1f,\"mb_per_s_each\":[",
		    (unsigned long long)explen, nbulk, data_s, total_s,
		    data_s > 0 ? (double)explen / data_s / 1e6 : 0.0,
		    total_s > 0 ? (double)explen / total_s / 1e6 : 0.0);
		for (size_t i = 0; i < nbulk; i++)
			printf("%s%.1f", i ? "," : "", bulk_s[i] > 0 ? (double)explen / bulk_s[i] / 1e6 : 0);
		printf("]");
	}
	if (hold_n > 0)
		printf(",\"held\":%lu,\"tree\":%d,\"before\":{\"procs\":%ld,\"rss_kb\":%ld,"
		    "\"pss_kb\":%ld},\"held_mem\":{\"procs\":%ld,\"rss_kb\":%ld,\"pss_kb\":%ld},"
		    "\"after\":{\"procs\":%ld,\"rss_kb\":%ld,\"pss_kb\":%ld},\"settle_s\":%.3f",
		    held, (int)tree, before.procs, before.rss_kb, before.pss_kb, during.procs,
		    during.rss_kb, during.pss_kb, after.procs, after.rss_kb, after.pss_kb, settle_s);
	printf(",\"interrupted\":%s}\n", interrupted ? "true" : "false");
	fflush(stdout);

	if (!quiet) {
		fprintf(stderr, "%s %s c=%d: ", argv[optind], plain ? "plain" : proto, conc);
		if (bulk)
			fprintf(stderr, "%zu of %lu transfers of %llu bytes, median %.3f s (first byte "
			    "to EOF) = %.0f MB/s", nbulk, started, (unsigned long long)explen, data_s,
			    data_s > 0 ? (double)explen / data_s / 1e6 : 0.0);
		else if (hold_n > 0)
			fprintf(stderr, "%lu of %lu held; tree %ld -> %ld procs, PSS %ld -> %ld kB,"
			    " RSS %ld -> %ld kB", held, hold_n, before.procs, during.procs,
			    before.pss_kb, during.pss_kb, before.rss_kb, during.rss_kb);
		else
			fprintf(stderr, "%zu ok of %lu in %.2f s = %.0f conn/s; latency ms p50 %.3f"
			    " p99 %.3f", nlat, started, elapsed,
			    elapsed > 0 ? (double)nlat / elapsed : 0.0, pct_ms(50), pct_ms(99));
		fprintf(stderr, "; errors:");
		if (errtotal == 0)
			fprintf(stderr, " none");
		for (int k = 0; k < E_NKINDS; k++)
			if (errs[k] != 0)
				fprintf(stderr, " %s %lu", err_name[k], errs[k]);
		if (other_errno)
			fprintf(stderr, " (other: %s)", strerror(other_errno));
		if (ssl_reason[0] != '\0')
			fprintf(stderr, " (tls: %s)", ssl_reason);
		fprintf(stderr, "\n");
	}
	return errtotal == 0 ? 0 : 1;
}
