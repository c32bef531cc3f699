#include <string.h>
#include <time.h>

#include "builtins.h"
#include "check_porterd.h"

START_TEST(test_chargen_pattern)
{
	char line[74];

	builtin_chargen_line(0, line);
	ck_assert_int_eq(memcmp(line, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n", 74), 0);
	builtin_chargen_line(1, line);
	ck_assert_int_eq(line[0], '!');
	ck_assert_int_eq(line[71], 'h');
	/* After 95 lines the pattern starts over. */
	builtin_chargen_line(95, line);
	ck_assert_int_eq(line[0], ' ');
	builtin_chargen_line(94, line);
	ck_assert_int_eq(line[0], '~');
	ck_assert_int_eq(line[1], ' ');
}
END_TEST

START_TEST(test_rfc868_epoch)
{
	unsigned long t = builtin_rfc868_now();
	unsigned long want = ((unsigned long)time(NULL) + 2208988800UL) & 0xffffffffUL;

	ck_assert(t == want || t + 1 == want);
}
END_TEST

START_TEST(test_daytime_text)
{
	char buf[128];
	size_t n = builtin_daytime(buf, sizeof(buf));

	ck_assert_uint_gt(n, 20);
	ck_assert_int_eq(buf[n - 2], '\r');
	ck_assert_int_eq(buf[n - 1], '\n');
	ck_assert_ptr_nonnull(strstr(buf, "-UTC"));
}
END_TEST

Suite *
builtins_suite(void)
{
	Suite *s = suite_create("builtins");
	TCase *tc = tcase_create("builtins");

	tcase_add_test(tc, test_chargen_pattern);
	tcase_add_test(tc, test_rfc868_epoch);
	tcase_add_test(tc, test_daytime_text);
	suite_add_tcase(s, tc);
	return s;
}
