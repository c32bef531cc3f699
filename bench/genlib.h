/*
 * genlib.h: the small pieces bench/'s tools (loadgen, tlsgen, probe, holder,
 * tlsfloor) share.
 * Header-only, as each tool is one .c built by plain cc (bench/Makefile).
 */
#ifndef BENCH_GENLIB_H
#define BENCH_GENLIB_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* "IPv4:PORT" from the command line into *sin: 0, or -1 when it is not that. */
static inline int
ipv4_port(const char *arg, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(arg, ':');

	if (colon == NULL || (size_t)(colon - arg) >= sizeof(host))
		return -1;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static inline uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* An expected reply from the command line: \n, \r and \\ escapes. */
static inline char *
unescape(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (out == NULL)
		exit(2);
	for (; *s != '\0'; s++) {
		if (*s == '\\' && s[1] == 'n')
			*o++ = '\n', s++;
		else if (*s == '\\' && s[1] == 'r')
			*o++ = '\r', s++;
		else if (*s == '\\' && s[1] == '\\')
			*o++ = '\\', s++;
		else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

static inline int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of n sorted latencies in ns, in ms. */
static inline double
pct_ms_of(const uint64_t *lat, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return (double)lat[i - 1] / 1e6;
}

#endif
