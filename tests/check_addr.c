#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"
#include "check_porterd.h"

static struct addr
parse_ok(const char *s)
{
	const char *err = NULL;
	struct addr a;

	ck_assert_msg(addr_parse(s, &a, &err) == 0, "%s: %s", s, err ? err : "?");
	return a;
}

START_TEST(test_parse_forms)
{
	struct addr a;
	char text[ADDR_TEXT_MAX];

	a = parse_ok("127.0.0.1:7000");
	ck_assert_int_eq(a.family, AF_INET);
	ck_assert_uint_eq(addr_port(&a), 7000);
	addr_format(&a, text, sizeof(text));
	ck_assert_str_eq(text, "127.0.0.1:7000");

	a = parse_ok("[::1]:7001");
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_int_eq(a.dualstack, 0);
	addr_format(&a, text, sizeof(text));
	ck_assert_str_eq(text, "[::1]:7001");

	a = parse_ok("*:7002");
	ck_assert_int_eq(a.family, AF_INET6);
	ck_assert_int_eq(a.dualstack, 1);
	addr_format(&a, text, sizeof(text));
	ck_assert_str_eq(text, "*:7002");

	a = parse_ok("[::]:7003");
	ck_assert_int_eq(a.dualstack, 0);

	a = parse_ok("unix:/run/porterd/x.sock");
	ck_assert_int_eq(a.family, AF_UNIX);
	ck_assert_str_eq(((struct sockaddr_un *)&a.ss)->sun_path, "/run/porterd/x.sock");
	addr_format(&a, text, sizeof(text));
	ck_assert_str_eq(text, "unix:/run/porterd/x.sock");
}
END_TEST

START_TEST(test_parse_errors)
{
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80x",
		"localhost:80", "::1:80", "[::1]80", "[::1:80", "[nope]:80", "unix:relative",
		"1.2.3.4.5:80", ":80", "*:http",
	};
	char longpath[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		const char *err = NULL;
		struct addr a;

		ck_assert_msg(addr_parse(bad[i], &a, &err) < 0, "%s was accepted", bad[i]);
		ck_assert_ptr_nonnull(err);
	}
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[sizeof(longpath) - 1] = '\0';
	{
		const char *err = NULL;
		struct addr a;

		ck_assert_int_lt(addr_parse(longpath, &a, &err), 0);
		ck_assert_str_eq(err, "unix socket path is too long");
	}
}
END_TEST

START_TEST(test_identity)
{
	struct addr a = parse_ok("127.0.0.1:7000"), b = parse_ok("127.0.0.1:7000");
	struct addr c = parse_ok("127.0.0.2:7000"), d = parse_ok("127.0.0.1:7001");
	struct addr e = parse_ok("[::]:7000"), f = parse_ok("*:7000");

	ck_assert(addr_same(&a, &b));
	ck_assert(!addr_same(&a, &c));
	ck_assert(!addr_same(&a, &d));
	/* Same address and port, but one is dual stack: a different socket. */
	ck_assert(!addr_same(&e, &f));
	struct addr ua = parse_ok("unix:/a"), ua2 = parse_ok("unix:/a"), ub = parse_ok("unix:/b");

	ck_assert(addr_same(&ua, &ua2));
	ck_assert(!addr_same(&ua, &ub));
}
END_TEST

START_TEST(test_conflicts)
{
	struct addr lo = parse_ok("127.0.0.1:7000"), lo2 = parse_ok("127.0.0.2:7000");
	struct addr any4 = parse_ok("0.0.0.0:7000"), star = parse_ok("*:7000");
	struct addr v6 = parse_ok("[::1]:7000"), other = parse_ok("127.0.0.1:7001");

	ck_assert(addr_conflict(&lo, &lo));
	ck_assert(!addr_conflict(&lo, &lo2));
	ck_assert(addr_conflict(&lo, &any4));
	ck_assert(addr_conflict(&any4, &lo2));
	ck_assert(addr_conflict(&star, &lo));
	ck_assert(addr_conflict(&v6, &star));
	ck_assert(!addr_conflict(&v6, &lo));
	ck_assert(!addr_conflict(&star, &other));
}
END_TEST

START_TEST(test_ntop)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	char ip[ADDR_IP_MAX];
	unsigned port = 0;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(4242);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &sin6.sin6_addr);
	ck_assert_int_eq(addr_ntop((struct sockaddr *)&sin6, ip, sizeof(ip), &port), 0);
	ck_assert_str_eq(ip, "192.0.2.7");
	ck_assert_uint_eq(port, 4242);

	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ck_assert_int_eq(addr_ntop((struct sockaddr *)&sin6, ip, sizeof(ip), &port), 0);
	ck_assert_str_eq(ip, "2001:db8::1");

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(80);
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	ck_assert_int_eq(addr_ntop((struct sockaddr *)&sin, ip, sizeof(ip), &port), 0);
	ck_assert_str_eq(ip, "10.1.2.3");
	ck_assert_uint_eq(port, 80);
}
END_TEST

Suite *
addr_suite(void)
{
	Suite *s = suite_create("addr");
	TCase *tc = tcase_create("addr");

	tcase_add_test(tc, test_parse_forms);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_identity);
	tcase_add_test(tc, test_conflicts);
	tcase_add_test(tc, test_ntop);
	suite_add_tcase(s, tc);
	return s;
}
