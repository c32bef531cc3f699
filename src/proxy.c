#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

static const unsigned char v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A
};

/* A port as v1 writes it: decimal, no sign, no leading zero. */
static int
v1_port(const char *s, size_t n, unsigned short *port)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*port = (unsigned short)v;
	return 0;
}

static int
v1_addr(int family, const char *s, size_t n, unsigned short port,
    struct sockaddr_storage *ss, socklen_t *len)
{
	char text[64];

	if (n == 0 || n >= sizeof(text))
		return -1;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
	}
	return 0;
}

/* "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n" (or TCP6, or UNKNOWN ...). */
static enum proxy_result
parse_v1(const unsigned char *buf, size_t len, struct proxy_header *h, const char **why)
{
	const char *line = (const char *)buf, *field[6], *end;
	size_t flen[6], nfields = 0;
	unsigned short sport, dport;
	int family;
	const unsigned char *cr;

	/* 107 bytes at most, CR LF included: the CR is within the first 106. */
	cr = memchr(buf, '\r', len < PROXY_V1_MAX - 1 ? len : PROXY_V1_MAX - 1);
	if (cr == NULL) {
		if (len >= PROXY_V1_MAX - 1)
			return *why = "v1 header longer than 107 bytes", PROXY_BAD;
		return PROXY_MORE;
	}
	if ((size_t)(cr - buf) + 1 >= len)
		return PROXY_MORE;
	if (cr[1] != '\n')
		return *why = "v1 header: CR without LF", PROXY_BAD;
	end = (const char *)cr;
	h->length = (size_t)(cr - buf) + 2;
	/* Fields are separated by exactly one space. */
	for (const char *p = line; p < end && nfields < 6;) {
		const char *sp = memchr(p, ' ', (size_t)(end - p));
		size_t n = sp ? (size_t)(sp - p) : (size_t)(end - p);

		field[nfields] = p;
		flen[nfields++] = n;
		p += n + (sp ? 1 : 0);
		if (sp != NULL && sp + 1 == end)
			return *why = "v1 header: trailing space", PROXY_BAD;
	}
	if (nfields >= 2 && flen[1] == 7 && memcmp(field[1], "UNKNOWN", 7) == 0) {
		h->local = 1;
		return PROXY_DONE;
	}
	if (nfields != 6 || field[5] + flen[5] != end)
		return *why = "v1 header: expected PROXY TCP4|TCP6 SRC DST SPORT DPORT",
		    PROXY_BAD;
	if (flen[1] == 4 && memcmp(field[1], "TCP4", 4) == 0)
		family = AF_INET;
	else if (flen[1] == 4 && memcmp(field[1], "TCP6", 4) == 0)
		family = AF_INET6;
	else
		return *why = "v1 header: protocol is not TCP4, TCP6 or UNKNOWN", PROXY_BAD;
	/* The last field runs to CR: it must not hold a space (checked above). */
	if (v1_port(field[4], flen[4], &sport) < 0 || v1_port(field[5], flen[5], &dport) < 0)
		return *why = "v1 header: bad port", PROXY_BAD;
	if (v1_addr(family, field[2], flen[2], sport, &h->src, &h->srclen) < 0 ||
	    v1_addr(family, field[3], flen[3], dport, &h->dst, &h->dstlen) < 0)
		return *why = "v1 header: bad address", PROXY_BAD;
	h->local = 0;
	return PROXY_DONE;
}

static enum proxy_result
parse_v2(const unsigned char *buf, size_t len, struct proxy_header *h, const char **why)
{
	size_t body, total;
	int cmd, family, transport;

	if (len < 16)
		return PROXY_MORE;
	if ((buf[12] >> 4) != 2)
		return *why = "v2 header: version is not 2", PROXY_BAD;
	cmd = buf[12] & 0x0F;
	if (cmd > 1)
		return *why = "v2 header: command is neither LOCAL nor PROXY", PROXY_BAD;
	family = buf[13] >> 4;
	transport = buf[13] & 0x0F;
	body = (size_t)buf[14] << 8 | buf[15];
	total = 16 + body;
	if (total > PROXY_V2_MAX)
		return *why = "v2 header: too long", PROXY_BAD;
	if (len < total)
		return PROXY_MORE;
	h->length = total;
	h->local = 1;
	if (cmd == 0)
		return PROXY_DONE;	/* LOCAL: the balancer's own check */
	if (transport != 0 && transport != 1)
		return *why = "v2 header: not a stream connection", PROXY_BAD;
	if (family == 1) {
		struct sockaddr_in *src = (struct sockaddr_in *)&h->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)&h->dst;

		if (body < 12)
			return *why = "v2 header: IPv4 addresses cut short", PROXY_BAD;
		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, buf + 16, 4);
		memcpy(&dst->sin_addr, buf + 20, 4);
		memcpy(&src->sin_port, buf + 24, 2);
		memcpy(&dst->sin_port, buf + 26, 2);
		h->srclen = h->dstlen = sizeof(*src);
		h->local = 0;
	} else if (family == 2) {
		struct sockaddr_in6 *src = (struct sockaddr_in6 *)&h->src;
		struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&h->dst;

		if (body < 36)
			return *why = "v2 header: IPv6 addresses cut short", PROXY_BAD;
		memset(&h->src, 0, sizeof(h->src));
		memset(&h->dst, 0, sizeof(h->dst));
		src->sin6_family = dst->sin6_family = AF_INET6;
		memcpy(&src->sin6_addr, buf + 16, 16);
		memcpy(&dst->sin6_addr, buf + 32, 16);
		memcpy(&src->sin6_port, buf + 48, 2);
		memcpy(&dst->sin6_port, buf + 50, 2);
		h->srclen = h->dstlen = sizeof(*src);
		h->local = 0;
	}
	/* UNSPEC and UNIX: nothing we could name in TCPREMOTEIP; the connection's own. */
	return PROXY_DONE;
}

enum proxy_result
proxy_parse(const unsigned char *buf, size_t len, int versions, struct proxy_header *h,
    const char **why)
{
	size_t n;

	*why = NULL;
	if (len == 0)
		return PROXY_MORE;
	if (buf[0] == 'P') {
		n = len < 6 ? len : 6;
		if (memcmp(buf, "PROXY ", n) != 0)
			return *why = "no PROXY header", PROXY_BAD;
		if (!(versions & PROXY_V1))
			return *why = "a v1 header where v2 is required", PROXY_BAD;
		return len < 6 ? PROXY_MORE : parse_v1(buf, len, h, why);
	}
	if (buf[0] == v2_sig[0]) {
		n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
		if (memcmp(buf, v2_sig, n) != 0)
			return *why = "no PROXY header", PROXY_BAD;
		if (!(versions & PROXY_V2))
			return *why = "a v2 header where v1 is required", PROXY_BAD;
		return parse_v2(buf, len, h, why);
	}
	return *why = "no PROXY header", PROXY_BAD;
}
