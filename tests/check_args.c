#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "check_porterd.h"

static void
expect_words(const char *in, const char *const *want, size_t n)
{
	const char *err = "unset";
	size_t argc;
	char **argv = args_split(in, &argc, &err);

	ck_assert_msg(argv != NULL, "split of <%s> failed: %s", in, err ? err : "?");
	ck_assert_uint_eq(argc, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(argv[i], want[i]);
	ck_assert_ptr_null(argv[n]);
	args_free(argv);
}

START_TEST(test_plain_words)
{
	const char *const w[] = { "in.tftpd", "-s", "/srv/tftp" };

	expect_words("  in.tftpd \t -s   /srv/tftp  ", w, 3);
}
END_TEST

START_TEST(test_quotes)
{
	const char *const w[] = { "sh", "-c", "echo \"$X\" 'a b'", "it's", "a\"b\\c" };

	expect_words("sh -c 'echo \"$X\" '\\''a b'\\' \"it's\" \"a\\\"b\\\\c\"", w, 5);
}
END_TEST

START_TEST(test_adjacent_and_empty)
{
	const char *const w[] = { "abc", "", "x y" };

	expect_words("a'b'\"c\" '' x\\ y", w, 3);
}
END_TEST

START_TEST(test_newline_separates_but_not_in_quotes)
{
	const char *const w[] = { "python3", "-c", "import os\nprint(1)" };

	expect_words("python3\n-c 'import os\nprint(1)'", w, 3);
}
END_TEST

START_TEST(test_semicolon_escape)
{
	const char *const w[] = { "a ; b" };

	expect_words("\"a \\; b\"", w, 1);
}
END_TEST

START_TEST(test_errors)
{
	static const struct { const char *in, *err; } cases[] = {
		{ "sh -c 'oops", "unterminated ' quote" },
		{ "sh -c \"oops", "unterminated \" quote" },
		{ "trailing\\", "trailing backslash" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const char *err = NULL;
		size_t argc;

		ck_assert_ptr_null(args_split(cases[i].in, &argc, &err));
		ck_assert_ptr_nonnull(err);
		ck_assert_str_eq(err, cases[i].err);
	}
}
END_TEST

START_TEST(test_blank_is_no_words)
{
	const char *err = NULL;
	size_t argc = 99;
	char **argv = args_split("   ", &argc, &err);

	ck_assert_ptr_nonnull(argv);
	ck_assert_uint_eq(argc, 0);
	args_free(argv);
}
END_TEST

START_TEST(test_quote_round_trip)
{
	const char *const words[] = { "plain", "two words", "it's", "a\"b", "back\\slash",
		"semi ; colon", "#hash", "", "line\nbreak" };

	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++) {
		char buf[256] = "";
		const char *err;
		size_t argc;
		char **argv;

		ck_assert_int_eq(args_quote(buf, sizeof(buf), words[i]), 0);
		argv = args_split(buf, &argc, &err);
		ck_assert_ptr_nonnull(argv);
		ck_assert_uint_eq(argc, 1);
		ck_assert_str_eq(argv[0], words[i]);
		/* inih would cut a value at " ;" */
		ck_assert_ptr_null(strstr(buf, " ;"));
		args_free(argv);
	}
}
END_TEST

START_TEST(test_quote_overflow)
{
	char buf[8] = "";

	ck_assert_int_eq(args_quote(buf, sizeof(buf), "much too long"), -1);
}
END_TEST

Suite *
args_suite(void)
{
	Suite *s = suite_create("args");
	TCase *tc = tcase_create("split");

	tcase_add_test(tc, test_plain_words);
	tcase_add_test(tc, test_quotes);
	tcase_add_test(tc, test_adjacent_and_empty);
	tcase_add_test(tc, test_newline_separates_but_not_in_quotes);
	tcase_add_test(tc, test_semicolon_escape);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_blank_is_no_words);
	tcase_add_test(tc, test_quote_round_trip);
	tcase_add_test(tc, test_quote_overflow);
	suite_add_tcase(s, tc);
	return s;
}
