/* xinetd_nets: only_from and no_access as xinetd reads them; see xinetd_nets.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "xinetd_nets.h"

/*
 * Parse one address as xinetd reads it, not a factorized one. Returns 0, or -1
 * with *why set when it is malformed. A name (host, domain, network) is kept
 * with family 0.
 */
static int
parse_one(const char *s, struct net *n, const char **why)
{
	const char *slash = strchr(s, '/');
	unsigned char a6[16];
	int all_digits = 1;

	memset(n, 0, sizeof(*n));
	n->text = (char *)s;
	for (const char *p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			all_digits = 0;
	if (slash != NULL) {
		char addr[INET6_ADDRSTRLEN];
		char *end;
		unsigned long bits;
		size_t len = (size_t)(slash - s);

		if (len == 0 || len >= sizeof(addr))
			return *why = "expected ADDRESS/BITS", -1;
		memcpy(addr, s, len);
		addr[len] = '\0';
		errno = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end != '\0' || errno != 0)
			return *why = "the prefix length must be a number", -1;
		if (inet_pton(AF_INET, addr, n->a) == 1) {
			if (bits > 32)
				return *why = "an IPv4 prefix length is 0 to 32", -1;
			n->family = AF_INET;
		} else if (inet_pton(AF_INET6, addr, n->a) == 1) {
			n->family = AF_INET6;
			if (bits > 128)
				bits = 128;	/* xinetd takes a longer one as the host */
		} else {
			return *why = "not a numeric IPv4 or IPv6 address", -1;
		}
		n->bits = (int)bits;
		return 0;
	}
	if (inet_pton(AF_INET, s, n->a) == 1) {
		/* Trailing zero bytes are wildcards: 10.1.0.0 is 10.1.0.0/16. */
		n->family = AF_INET;
		n->bits = 0;
		for (int i = 0; i < 4; i++)
			if (n->a[i] != 0)
				n->bits = 8 * (i + 1);
		return 0;
	}
	if (strchr(s, ':') != NULL && inet_pton(AF_INET6, s, a6) == 1) {
		static const unsigned char zero[16];

		n->family = AF_INET6;
		memcpy(n->a, a6, 16);
		n->bits = memcmp(a6, zero, 16) == 0 ? 0 : 128;
		return 0;
	}
	if (all_digits)	/* "10.1": the C library would read it as 10.0.0.1 */
		return *why = "write all four parts of an IPv4 address", -1;
	return 0;	/* a name */
}

/* Clear the bits beyond the prefix, so that equal networks compare equal. */
static void
mask(struct net *n)
{
	int len = n->family == AF_INET ? 4 : 16;

	for (int i = 0; i < len; i++) {
		int keep = n->bits - 8 * i;

		if (keep <= 0)
			n->a[i] = 0;
		else if (keep < 8)
			n->a[i] &= (unsigned char)(0xff << (8 - keep));
	}
}

int
nets_same(const struct net *x, const struct net *y)
{
	if (x->family != y->family)
		return 0;
	if (x->family == 0)
		return strcmp(x->text, y->text) == 0;
	return x->bits == y->bits && memcmp(x->a, y->a, 16) == 0;
}

int
nets_inside(const struct net *inner, const struct net *outer)
{
	struct net t;

	if (inner->family == 0 || inner->family != outer->family || inner->bits <= outer->bits)
		return 0;
	t = *inner;
	t.bits = outer->bits;
	mask(&t);
	return memcmp(t.a, outer->a, 16) == 0;
}

int
nets_parse(const char *s, struct net *out, size_t max, size_t *count, const char **why)
{
	const char *brace = strchr(s, '{');
	unsigned char pre[4] = { 0 };
	int parts = 0;
	const char *p;

	*count = 0;
	if (brace == NULL) {
		if (strchr(s, ',') != NULL)
			return *why = "a comma outside braces (separate addresses with blanks)", -1;
		if (parse_one(s, &out[0], why) < 0)
			return -1;
		if (out[0].family != 0)
			mask(&out[0]);
		*count = 1;
		return 0;
	}
	/* "a.b.{c,d}": the prefix parts, then one part from the braces each. */
	for (p = s; p < brace;) {
		unsigned long v;
		char *end;

		if (!isdigit((unsigned char)*p))
			return *why = "expected a factorized address such as 10.1.2.{3,4}", -1;
		v = strtoul(p, &end, 10);
		if (v > 255 || *end != '.' || parts == 3)
			return *why = "expected a factorized address such as 10.1.2.{3,4}", -1;
		pre[parts++] = (unsigned char)v;
		p = end + 1;
	}
	if (s[strlen(s) - 1] != '}')
		return *why = "nothing may follow the closing brace", -1;
	for (p = brace + 1; *p != '}';) {
		unsigned long v;
		char *end;
		struct net *n;

		if (!isdigit((unsigned char)*p))
			return *why = "expected numbers separated by commas within the braces", -1;
		v = strtoul(p, &end, 10);
		if (v > 255 || (*end != ',' && *end != '}'))
			return *why = "expected numbers separated by commas within the braces", -1;
		if (*count == max)
			return *why = "too many addresses within the braces", -1;
		n = &out[(*count)++];
		memset(n, 0, sizeof(*n));
		n->family = AF_INET;
		memcpy(n->a, pre, (size_t)parts);
		n->a[parts] = (unsigned char)v;
		n->bits = 8 * (parts + 1);
		n->text = (char *)s;
		p = *end == ',' ? end + 1 : end;
	}
	if (p[1] != '\0')
		return *why = "nothing may follow the closing brace", -1;
	return 0;
}

void
nets_add(struct nets *l, const struct net *n)
{
	l->v = xgrow(l->v, l->n, &l->cap, sizeof(*l->v));
	l->v[l->n] = *n;
	l->v[l->n++].text = xstrdup(n->text);
}

void
nets_del(struct nets *l, size_t i)
{
	free(l->v[i].text);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

void
nets_clear(struct nets *l)
{
	while (l->n > 0)
		nets_del(l, l->n - 1);
}

void
nets_free(struct nets *l)
{
	nets_clear(l);
	free(l->v);
}

void
nets_copy(struct nets *to, const struct nets *from)
{
	for (size_t i = 0; i < from->n; i++)
		nets_add(to, &from->v[i]);
	to->present = from->present;
	to->at = from->at;
}
