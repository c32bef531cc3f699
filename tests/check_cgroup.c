#include <string.h>

#include "cgroup.h"
#include "check_porterd.h"

START_TEST(test_parse_populated)
{
	ck_assert_int_eq(cgroup_parse_populated("populated 1\nfrozen 0\n"), 1);
	ck_assert_int_eq(cgroup_parse_populated("populated 0\nfrozen 0\n"), 0);
	ck_assert_int_eq(cgroup_parse_populated("frozen 0\npopulated 0\n"), 0);
	ck_assert_int_eq(cgroup_parse_populated("frozen 0\n"), -1);
	/* Only a whole key: not the tail of another one. */
	ck_assert_int_eq(cgroup_parse_populated("unpopulated 1\n"), -1);
}
END_TEST

START_TEST(test_parse_usage)
{
	ck_assert_int_eq(cgroup_parse_usage("usage_usec 451462\nuser_usec 1\n"), 451462);
	ck_assert_int_eq(cgroup_parse_usage("x 1\nusage_usec 7\n"), 7);
	ck_assert_int_eq(cgroup_parse_usage("user_usec 1\n"), -1);
	ck_assert_int_eq(cgroup_parse_usage("core_usage_usec 5\n"), -1);
}
END_TEST

/* What is written to memory.max and pids.max. */
START_TEST(test_limit_text)
{
	char buf[32];

	cgroup_limit_text(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "max");
	cgroup_limit_text(64ULL << 20, buf, sizeof(buf));
	ck_assert_str_eq(buf, "67108864");
	cgroup_limit_text(32, buf, sizeof(buf));
	ck_assert_str_eq(buf, "32");
}
END_TEST

/* Not a cgroup2 directory: no containment, and a reason. */
START_TEST(test_setup_elsewhere_falls_back)
{
	char msg[512];

	ck_assert_int_eq(cgroup_setup("/proc/self", msg, sizeof(msg)), 0);
	ck_assert_ptr_nonnull(strstr(msg, "no writable cgroup2 hierarchy"));
	ck_assert_int_eq(cgroup_active(), 0);
	ck_assert_int_eq(cgroup_fd(), -1);
	ck_assert_int_eq(cgroup_setup("none", msg, sizeof(msg)), 0);
	ck_assert_ptr_nonnull(strstr(msg, "-g none"));
	ck_assert_int_eq(cgroup_probe("none"), -1);
}
END_TEST

Suite *
cgroup_suite(void)
{
	Suite *s = suite_create("cgroup");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_populated);
	tcase_add_test(tc, test_parse_usage);
	tcase_add_test(tc, test_limit_text);
	tcase_add_test(tc, test_setup_elsewhere_falls_back);
	suite_add_tcase(s, tc);
	return s;
}
