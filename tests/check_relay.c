#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_porterd.h"
#include "relay.h"

/* A report as a relay would write it, read back by porterd. */
static int
round_trip(const struct relay_report *sent, struct relay_report *got)
{
	int p[2];
	int rc;

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], sent, sizeof(*sent)), (ssize_t)sizeof(*sent));
	close(p[1]);
	rc = relay_report_read(p[0], got);
	close(p[0]);
	return rc;
}

START_TEST(a_report_is_read_as_sent)
{
	struct relay_report r, got;

	memset(&r, 0, sizeof(r));
	r.handshake = 1 + TLS_FAIL_CERTIFICATE;
	snprintf(r.why, sizeof(r.why), "client certificate: expired");
	ck_assert_int_eq(round_trip(&r, &got), 0);
	ck_assert_int_eq(got.handshake, r.handshake);
	ck_assert_str_eq(got.why, r.why);
}
END_TEST

/*
 * The relay runs as the service's user and parses what the client sends: a
 * relay taken over must not steer porterd's counters (an index) or its log.
 */
START_TEST(a_hostile_report_is_refused_or_tamed)
{
	struct relay_report r, got;

	memset(&r, 0, sizeof(r));
	r.handshake = -4000;
	ck_assert_int_eq(round_trip(&r, &got), -1);
	r.handshake = TLS_FAIL_N + 1;
	ck_assert_int_eq(round_trip(&r, &got), -1);
	r.handshake = 0;
	r.truncated = 77;
	r.no_handler = -1;
	memset(r.why, 'x', sizeof(r.why));	/* no NUL */
	r.why[3] = '\n';
	r.why[4] = '\033';
	ck_assert_int_eq(round_trip(&r, &got), 0);
	ck_assert_int_eq(got.truncated, 1);
	ck_assert_int_eq(got.no_handler, 1);
	ck_assert_uint_eq(strlen(got.why), sizeof(got.why) - 1);
	ck_assert_int_eq(strncmp(got.why, "xxx??xx", 7), 0);
}
END_TEST

START_TEST(no_report_is_an_error)
{
	struct relay_report got;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	close(p[1]);
	ck_assert_int_eq(relay_report_read(p[0], &got), -1);
	close(p[0]);
}
END_TEST

Suite *
relay_suite(void)
{
	Suite *s = suite_create("relay");
	TCase *tc = tcase_create("report");

	tcase_add_test(tc, a_report_is_read_as_sent);
	tcase_add_test(tc, a_hostile_report_is_refused_or_tamed);
	tcase_add_test(tc, no_report_is_an_error);
	suite_add_tcase(s, tc);
	return s;
}
