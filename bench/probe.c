/*
 * probe: wait, by connecting, until HOST:PORT answers with the expected reply
 * (or, with -g, until it refuses connections), and print how long that took
 * in milliseconds. With -H PID it first sends SIGHUP to PID, so the figure is
 * the time from SIGHUP to a newly added service answering. -c adds a second
 * figure: when a connect() first succeeded (the socket was listening), which
 * tells the server's reload from the handler's start.
 *
 * usage: probe [-H PID] [-g] [-c] [-t SECS] [-i USECS] [-e REPLY] HOST:PORT
 * Exit: 0 reached, 1 timed out, 2 usage or system trouble.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "genlib.h"

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double t_connected = -1;

/* 1: answered with the reply; 0: refused; -1: anything else. */
static int
try_once(const struct sockaddr_in *sin, const char *expect, int tmo_ms)
{
	struct timeval tv = { tmo_ms / 1000, (tmo_ms % 1000) * 1000 };
	struct linger lg = { 1, 0 };
	size_t want = strlen(expect), got = 0;
	char buf[256];
	int fd, r = -1;
	ssize_t n;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
		r = errno == ECONNREFUSED ? 0 : -1;
		goto out;
	}
	if (t_connected < 0)
		t_connected = now_ms();
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (got + (size_t)n > want || memcmp(buf, expect + got, (size_t)n) != 0)
			goto out;
		got += (size_t)n;
	}
	if (n == 0 && got == want)
		r = 1;
out:
	close(fd);
	return r;
}

int
main(int argc, char **argv)
{
	const char *expect = "hello\n";
	double tmo = 10, t0, t;
	int gone = 0, both = 0, interval = 200, ch, r;
	pid_t hup = 0;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	while ((ch = getopt(argc, argv, "H:gct:i:e:")) != -1) {
		switch (ch) {
		case 'H': hup = (pid_t)atol(optarg); break;
		case 'g': gone = 1; break;
		case 'c': both = 1; break;
		case 't': tmo = atof(optarg); break;
		case 'i': interval = atoi(optarg); break;
		case 'e': expect = unescape(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc - 1)
		goto usage;
	if (ipv4_port(argv[optind], &sin) < 0)
		goto usage;

	t0 = now_ms();
	if (hup > 0 && kill(hup, SIGHUP) < 0) {
		perror("probe: kill");
		return 2;
	}
	for (;;) {
		r = try_once(&sin, expect, 1000);
		t = now_ms();
		if ((gone && r == 0) || (!gone && r == 1)) {
			if (both && !gone)
				printf("%.3f %.3f\n", t - t0, t_connected - t0);
			else
				printf("%.3f\n", t - t0);
			return 0;
		}
		if (t - t0 > tmo * 1e3) {
			fprintf(stderr, "probe: %s: not %s after %.1f s\n", argv[optind],
			    gone ? "gone" : "answering", tmo);
			return 1;
		}
		usleep((useconds_t)interval);
	}
usage:
	fprintf(stderr, "usage: probe [-H PID] [-g] [-c] [-t SECS] [-i USECS] [-e REPLY] HOST:PORT\n");
	return 2;
}
