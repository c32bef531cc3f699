#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

static void
mask_bits(uint8_t *addr, unsigned bits, unsigned total)
{
	for (unsigned i = 0; i < total / 8; i++) {
		if (bits >= 8 * (i + 1))
			continue;
		addr[i] &= bits <= 8 * i ? 0 : (uint8_t)(0xff << (8 - (bits - 8 * i)));
	}
}

static int
parse_one(const char *s, struct cidr *c, const char **error)
{
	char host[64];
	const char *slash = strchr(s, '/');
	size_t hl = slash ? (size_t)(slash - s) : strlen(s);
	unsigned total;

	if (hl == 0 || hl >= sizeof(host))
		return *error = "expected ADDRESS or ADDRESS/BITS", -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, host, c->addr) == 1) {
		c->family = AF_INET;
		total = 32;
	} else if (inet_pton(AF_INET6, host, c->addr) == 1) {
		c->family = AF_INET6;
		total = 128;
	} else {
		return *error = "not a numeric IPv4 or IPv6 address", -1;
	}
	c->bits = total;
	if (slash != NULL) {
		char *end;
		unsigned long b;

		if (!isdigit((unsigned char)slash[1]))
			return *error = "prefix length must be a number", -1;
		b = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || b > total)
			return *error = c->family == AF_INET ? "prefix length must be 0 to 32" :
			    "prefix length must be 0 to 128", -1;
		c->bits = (unsigned)b;
	}
	/* 10.1.2.3/8 means 10.0.0.0/8: compare networks, not what was typed. */
	mask_bits(c->addr, c->bits, total);
	return 0;
}

int
acl_parse(struct acl *acl, const char *list, const char **error)
{
	const char *p = list;

	for (;;) {
		char item[96];
		size_t n;
		struct cidr *grown;

		while (isspace((unsigned char)*p))
			p++;
		n = strcspn(p, ",");
		while (n > 0 && isspace((unsigned char)p[n - 1]))
			n--;
		if (n == 0 || n >= sizeof(item))
			return *error = n == 0 ? "empty entry in the list" : "entry too long", -1;
		memcpy(item, p, n);
		item[n] = '\0';
		if ((grown = realloc(acl->v, (acl->n + 1) * sizeof(*grown))) == NULL)
			return *error = "out of memory", -1;
		acl->v = grown;
		if (parse_one(item, &acl->v[acl->n], error) < 0)
			return -1;
		acl->n++;
		p += strcspn(p, ",");
		if (*p == '\0')
			return 0;
		p++;
	}
}

void
acl_free(struct acl *acl)
{
	free(acl->v);
	acl->v = NULL;
	acl->n = 0;
}

/* The address as family + bytes, with a v4-mapped IPv6 address folded to IPv4. */
static int
plain_addr(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, &a6->s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

int
acl_match(const struct acl *acl, const struct sockaddr *sa)
{
	uint8_t addr[16];
	int family;

	if (plain_addr(sa, &family, addr) < 0)
		return 0;
	for (size_t i = 0; i < acl->n; i++) {
		const struct cidr *c = &acl->v[i];
		unsigned full = c->bits / 8, rest = c->bits % 8;

		if (c->family != family || memcmp(addr, c->addr, full) != 0)
			continue;
		if (rest == 0 || ((addr[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0)
			return 1;
	}
	return 0;
}

void
acl_format(const struct acl *acl, char *buf, size_t len)
{
	size_t used = strlen(buf);

	for (size_t i = 0; i < acl->n && used < len; i++) {
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(acl->v[i].family, acl->v[i].addr, ip, sizeof(ip));
		used += (size_t)snprintf(buf + used, len - used, "%s%s/%u", i ? ", " : "", ip,
		    acl->v[i].bits);
	}
}

int
acl_source_key(const struct sockaddr *sa, unsigned bits4, unsigned bits6, struct srckey *key)
{
	int family;

	if (plain_addr(sa, &family, key->addr) < 0)
		return -1;
	key->family = (uint8_t)family;
	if (family == AF_INET)
		mask_bits(key->addr, bits4, 32);
	else
		mask_bits(key->addr, bits6, 128);
	return 0;
}
