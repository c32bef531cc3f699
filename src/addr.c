#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "hash.h"

static int
parse_port(const char *s, unsigned *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int
addr_parse(const char *s, struct addr *a, const char **error)
{
	char host[ADDR_TEXT_MAX];
	const char *colon;
	unsigned port;
	size_t hl;
	int bracketed = s[0] == '[';

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
		const char *path = s + 5;

		if (path[0] != '/') {
			*error = "unix socket path must be absolute";
			return -1;
		}
		if (strlen(path) >= sizeof(sun->sun_path)) {
			*error = "unix socket path is too long";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		a->family = AF_UNIX;
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
		return 0;
	}

	if (bracketed) {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':') {
			*error = "expected [IPv6]:PORT";
			return -1;
		}
		hl = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL) {
			*error = "expected ADDRESS:PORT, [IPv6]:PORT, *:PORT or unix:/PATH";
			return -1;
		}
		hl = (size_t)(colon - s);
	}
	if (hl >= sizeof(host)) {
		*error = "address is too long";
		return -1;
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (parse_port(colon + 1, &port) < 0) {
		*error = "port must be a number from 1 to 65535";
		return -1;
	}

	if (strcmp(host, "*") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)port);
		a->family = AF_INET6;
		a->dualstack = 1;
		a->len = sizeof(*sin6);
	} else if (bracketed || strchr(host, ':') != NULL) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		if (!bracketed) {
			*error = "IPv6 addresses are written [ADDRESS]:PORT";
			return -1;
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*error = "not a numeric IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		a->family = AF_INET6;
		a->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*error = "not a numeric IPv4 address (host names are not looked up)";
			return -1;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a->family = AF_INET;
		a->len = sizeof(*sin);
	}
	return 0;
}

unsigned
addr_port(const struct addr *a)
{
	if (a->family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	if (a->family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return 0;
}

int
addr_same(const struct addr *a, const struct addr *b)
{
	if (a->family != b->family || a->dualstack != b->dualstack)
		return 0;
	switch (a->family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)&b->ss;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	case AF_UNIX:
		return strcmp(((const struct sockaddr_un *)&a->ss)->sun_path,
		    ((const struct sockaddr_un *)&b->ss)->sun_path) == 0;
	}
	return 0;
}

uint64_t
addr_hash(const struct addr *a)
{
	uint64_t h = hash_bytes(HASH_INIT, &a->family, sizeof(a->family));

	h = hash_bytes(h, &a->dualstack, sizeof(a->dualstack));
	switch (a->family) {
	case AF_INET: {
		const struct sockaddr_in *x = (const void *)&a->ss;

		h = hash_bytes(h, &x->sin_port, sizeof(x->sin_port));
		return hash_bytes(h, &x->sin_addr, sizeof(x->sin_addr));
	}
	case AF_INET6: {
		const struct sockaddr_in6 *x = (const void *)&a->ss;

		h = hash_bytes(h, &x->sin6_port, sizeof(x->sin6_port));
		return hash_bytes(h, &x->sin6_addr, sizeof(x->sin6_addr));
	}
	case AF_UNIX: {
		const char *path = ((const struct sockaddr_un *)&a->ss)->sun_path;

		return hash_bytes(h, path, strlen(path));
	}
	}
	return h;
}

int
addr_conflict_order(const struct addr *a, const struct addr *b)
{
	unsigned pa = a->family == AF_UNIX ? 0 : addr_port(a);
	unsigned pb = b->family == AF_UNIX ? 0 : addr_port(b);

	if ((a->family == AF_UNIX) != (b->family == AF_UNIX))
		return a->family == AF_UNIX ? 1 : -1;
	if (a->family == AF_UNIX)
		return strcmp(((const struct sockaddr_un *)&a->ss)->sun_path,
		    ((const struct sockaddr_un *)&b->ss)->sun_path);
	return pa < pb ? -1 : pa > pb;
}

int
addr_is_any(const struct addr *a)
{
	if (a->family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
	return 0;
}

int
addr_conflict(const struct addr *a, const struct addr *b)
{
	if (addr_same(a, b))
		return 1;
	if (a->family == AF_UNIX || b->family == AF_UNIX || addr_port(a) != addr_port(b))
		return 0;
	/* A wildcard socket takes the port on every address of its families. */
	if (a->dualstack || b->dualstack)
		return 1;
	if (a->family != b->family)
		return 0;
	return addr_is_any(a) || addr_is_any(b);
}

void
addr_format(const struct addr *a, char *buf, size_t len)
{
	char ip[ADDR_IP_MAX];

	switch (a->family) {
	case AF_UNIX:
		snprintf(buf, len, "unix:%s", ((const struct sockaddr_un *)&a->ss)->sun_path);
		return;
	case AF_INET:
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->ss)->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, addr_port(a));
		return;
	case AF_INET6:
		if (a->dualstack) {
			snprintf(buf, len, "*:%u", addr_port(a));
			return;
		}
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, addr_port(a));
		return;
	}
	snprintf(buf, len, "?");
}

int
addr_ntop(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		*port = ntohs(sin->sin_port);
		return inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen) ? 0 : -1;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		*port = ntohs(sin6->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			return inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip,
			    (socklen_t)iplen) ? 0 : -1;
		return inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen) ? 0 : -1;
	}
	return -1;
}
