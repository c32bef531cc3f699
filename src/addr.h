/* addr: listen addresses as written in services.d, and peer addresses as text. */
#ifndef PORTERD_ADDR_H
#define PORTERD_ADDR_H

#include <sys/socket.h>
#include <stddef.h>
#include <stdint.h>

struct addr {
	int		family;		/* AF_INET, AF_INET6 or AF_UNIX */
	int		dualstack;	/* "*:PORT": IPv6 any with IPV6_V6ONLY off */
	socklen_t	len;
	struct sockaddr_storage ss;
};

/* Longest text of an address with port ("[v6%scope]:65535") or unix path. */
#define ADDR_TEXT_MAX 128
#define ADDR_IP_MAX 64

/*
 * Parse "127.0.0.1:7000", "[::1]:7000", "*:7000" or "unix:/path". The port is
 * numeric (no service lookups). Returns 0, or -1 with *error set.
 */
int addr_parse(const char *s, struct addr *a, const char **error);
/* Same socket identity: family, address, port (or path), dual-stack mode. */
int addr_same(const struct addr *a, const struct addr *b);
/* Two sockets of one type on these addresses could not both be bound. */
int addr_conflict(const struct addr *a, const struct addr *b);
/*
 * An order in which addresses that may conflict are next to each other (same
 * port, or same unix path): 0 for those, so that a sort finds every clash.
 */
int addr_conflict_order(const struct addr *a, const struct addr *b);
/* Equal for addresses that addr_same says are the same. */
uint64_t addr_hash(const struct addr *a);
/* Back to the services.d syntax. */
void addr_format(const struct addr *a, char *buf, size_t len);
/* An IP wildcard address (0.0.0.0, ::, or "*"). */
int addr_is_any(const struct addr *a);
/* Port of an IP address, 0 for unix. */
unsigned addr_port(const struct addr *a);
/*
 * Numeric text of an IP socket address and its port. An IPv4-mapped IPv6
 * address (a v4 client on a dual-stack socket) is written as a dotted quad.
 */
int addr_ntop(const struct sockaddr *sa, char *ip, size_t iplen, unsigned *port);

#endif
