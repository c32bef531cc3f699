#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "check_porterd.h"
#include "proxy.h"

static void
expect_peer(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	char text[ADDR_IP_MAX];
	unsigned got;

	ck_assert_int_eq(addr_ntop((const struct sockaddr *)ss, text, sizeof(text), &got), 0);
	ck_assert_str_eq(text, ip);
	ck_assert_uint_eq(got, port);
}

/* A valid header: DONE with exactly its length, and MORE for every shorter prefix. */
static struct proxy_header
parse_whole(const unsigned char *buf, size_t len, size_t header_len, int versions)
{
	struct proxy_header h;
	const char *why;

	for (size_t i = 0; i < header_len; i++) {
		memset(&h, 0, sizeof(h));
		ck_assert_msg(proxy_parse(buf, i, versions, &h, &why) == PROXY_MORE,
		    "prefix of %zu bytes: %s", i, why ? why : "not MORE");
	}
	memset(&h, 0, sizeof(h));
	ck_assert_msg(proxy_parse(buf, len, versions, &h, &why) == PROXY_DONE, "%s",
	    why ? why : "?");
	ck_assert_uint_eq(h.length, header_len);
	return h;
}

START_TEST(test_v1_tcp4_and_tcp6)
{
	const char *v4 = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\nGET / HTTP/1.0\r\n";
	const char *v6 = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
	struct proxy_header h;

	h = parse_whole((const unsigned char *)v4, strlen(v4), 45, PROXY_ANY);
	ck_assert_int_eq(h.local, 0);
	expect_peer(&h.src, "192.0.2.1", 56324);
	expect_peer(&h.dst, "198.51.100.7", 443);
	h = parse_whole((const unsigned char *)v6, strlen(v6), strlen(v6), PROXY_V1);
	expect_peer(&h.src, "2001:db8::1", 1);
	expect_peer(&h.dst, "2001:db8::2", 65535);
}
END_TEST

START_TEST(test_v1_unknown)
{
	const char *u = "PROXY UNKNOWN\r\n", *u2 = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	struct proxy_header h;

	h = parse_whole((const unsigned char *)u, strlen(u), strlen(u), PROXY_ANY);
	ck_assert_int_eq(h.local, 1);
	h = parse_whole((const unsigned char *)u2, strlen(u2), strlen(u2), PROXY_ANY);
	ck_assert_int_eq(h.local, 1);
}
END_TEST

START_TEST(test_v1_bad)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 extra\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",
		"PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",
		"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 65536 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 0443 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 -1 1\r\n",
		"PROXY TCP4  192.0.2.1 198.51.100.7 1 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 1 1 \r\n",
		"PROXY UDP4 192.0.2.1 198.51.100.7 1 1\r\n",
		"PROXY TCP4 192.0.2.1 198.51.100.7 1 1\rX",
		"PROXYTCP4 192.0.2.1 198.51.100.7 1 1\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"SSH-2.0-OpenSSH_9.2\r\n",
	};
	char longline[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct proxy_header h;
		const char *why = NULL;

		ck_assert_msg(proxy_parse((const unsigned char *)bad[i], strlen(bad[i]), PROXY_ANY,
		    &h, &why) == PROXY_BAD, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	{
		/* 107 bytes with CR LF is the longest line; 108 is one too many. */
		char line[200];
		struct proxy_header h;
		const char *why;
		size_t n = (size_t)snprintf(line, sizeof(line), "PROXY UNKNOWN ");

		memset(line + n, 'x', 107 - 2 - n);
		memcpy(line + 105, "\r\n", 2);
		ck_assert_int_eq(proxy_parse((const unsigned char *)line, 107, PROXY_ANY, &h, &why),
		    PROXY_DONE);
		ck_assert_uint_eq(h.length, 107);
		memset(line + n, 'x', 108 - 2 - n);
		memcpy(line + 106, "\r\n", 2);
		ck_assert_int_eq(proxy_parse((const unsigned char *)line, 108, PROXY_ANY, &h, &why),
		    PROXY_BAD);
	}
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "PROXY TCP4 ", 11);
	{
		struct proxy_header h;
		const char *why;

		ck_assert_int_eq(proxy_parse((const unsigned char *)longline, sizeof(longline),
		    PROXY_ANY, &h, &why), PROXY_BAD);
		ck_assert_str_eq(why, "v1 header longer than 107 bytes");
	}
}
END_TEST

static size_t
v2_header(unsigned char *b, int cmd, int fam, const void *addrs, size_t alen, size_t extra)
{
	static const unsigned char sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
		0x55, 0x49, 0x54, 0x0A };
	size_t body = alen + extra;

	memcpy(b, sig, 12);
	b[12] = (unsigned char)(0x20 | cmd);
	b[13] = (unsigned char)(fam << 4 | 1);
	b[14] = (unsigned char)(body >> 8);
	b[15] = (unsigned char)body;
	memcpy(b + 16, addrs, alen);
	memset(b + 16 + alen, 0xEE, extra);	/* TLVs we skip */
	return 16 + body;
}

START_TEST(test_v2_inet_inet6_local)
{
	unsigned char b[600], a4[12], a6[36];
	struct proxy_header h;
	size_t n;

	inet_pton(AF_INET, "203.0.113.9", a4);
	inet_pton(AF_INET, "127.0.0.1", a4 + 4);
	a4[8] = 0x30; a4[9] = 0x39;	/* 12345 */
	a4[10] = 0x00; a4[11] = 0x50;	/* 80 */
	n = v2_header(b, 1, 1, a4, sizeof(a4), 20);
	memcpy(b + n, "after", 5);
	h = parse_whole(b, n + 5, n, PROXY_ANY);
	ck_assert_int_eq(h.local, 0);
	expect_peer(&h.src, "203.0.113.9", 12345);
	expect_peer(&h.dst, "127.0.0.1", 80);

	inet_pton(AF_INET6, "2001:db8::9", a6);
	inet_pton(AF_INET6, "::1", a6 + 16);
	a6[32] = 0xff; a6[33] = 0xff;
	a6[34] = 0x00; a6[35] = 0x01;
	n = v2_header(b, 1, 2, a6, sizeof(a6), 0);
	h = parse_whole(b, n, n, PROXY_V2);
	expect_peer(&h.src, "2001:db8::9", 65535);
	expect_peer(&h.dst, "::1", 1);

	n = v2_header(b, 0, 0, a4, 0, 0);	/* LOCAL: a health check */
	h = parse_whole(b, n, n, PROXY_ANY);
	ck_assert_int_eq(h.local, 1);
}
END_TEST

START_TEST(test_v2_bad)
{
	unsigned char b[PROXY_V2_MAX + 64], a4[12] = { 0 };
	struct proxy_header h;
	const char *why;
	size_t n;

	n = v2_header(b, 1, 1, a4, 8, 0);	/* IPv4 block cut short */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_ANY, &h, &why), PROXY_BAD);
	n = v2_header(b, 1, 1, a4, sizeof(a4), 0);
	b[12] = 0x31;				/* version 3 */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_ANY, &h, &why), PROXY_BAD);
	b[12] = 0x22;				/* command 2 */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_ANY, &h, &why), PROXY_BAD);
	b[12] = 0x21;
	b[13] = 0x12;				/* datagram */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_ANY, &h, &why), PROXY_BAD);
	b[13] = 0x11;
	b[3] = 0x0B;				/* signature */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_ANY, &h, &why), PROXY_BAD);
	b[3] = 0x0A;
	/* v2 where only v1 is allowed, and the other way round */
	ck_assert_int_eq(proxy_parse(b, n, PROXY_V1, &h, &why), PROXY_BAD);
	ck_assert_int_eq(proxy_parse((const unsigned char *)"PROXY UNKNOWN\r\n", 15, PROXY_V2,
	    &h, &why), PROXY_BAD);
	/* oversized: refused as soon as the length is known */
	n = v2_header(b, 1, 1, a4, sizeof(a4), PROXY_V2_MAX);
	ck_assert_int_eq(proxy_parse(b, 16, PROXY_ANY, &h, &why), PROXY_BAD);
	ck_assert_str_eq(why, "v2 header: too long");
}
END_TEST

Suite *
proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("proxy");

	tcase_add_test(tc, test_v1_tcp4_and_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_bad);
	tcase_add_test(tc, test_v2_inet_inet6_local);
	tcase_add_test(tc, test_v2_bad);
	suite_add_tcase(s, tc);
	return s;
}
