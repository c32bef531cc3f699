#include <string.h>

#include "check_porterd.h"
#include "ratelimit.h"

START_TEST(parse_accepts_n_per_seconds_and_nothing_else)
{
	static const char *const bad[] = { "", "x", "10", "10/", "/1", "0/1", "1/0",
	    "1000001/1", "1/86401", "-1/1", "1/-1", "1.5/1", "1/1s", " 1/1" };
	const char *error = NULL;
	struct rate r;

	ck_assert_int_eq(rate_parse("10/1", &r, &error), 0);
	ck_assert_uint_eq(r.n, 10);
	ck_assert_uint_eq(r.secs, 1);
	ck_assert_int_eq(rate_parse("1000000/86400", &r, &error), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		error = NULL;
		ck_assert_msg(rate_parse(bad[i], &r, &error) < 0, "accepted \"%s\"", bad[i]);
		ck_assert_ptr_nonnull(error);
	}
}
END_TEST

START_TEST(take_spends_a_full_bucket_then_refills_with_time)
{
	struct rate r = { 3, 1 };	/* 3 a second: one token per 333 ms */
	struct bucket b = { 0, 0 };

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 0);
	ck_assert_int_eq(rate_take(&b, &r, 1300), 0);
	ck_assert_int_eq(rate_take(&b, &r, 1340), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1340), 0);
	/* A long pause fills the bucket, and no more than full. */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(rate_take(&b, &r, 60000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 60000), 0);
}
END_TEST

START_TEST(no_rate_always_takes)
{
	struct rate r = { 0, 0 };
	struct bucket b = { 0, 0 };

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(rate_take(&b, &r, 5), 1);
}
END_TEST

START_TEST(refund_gives_back_one_token_and_never_overfills)
{
	struct rate r = { 2, 60 };
	struct bucket b = { 0, 0 };

	ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 0);
	rate_refund(&b, &r);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 0);
	/* Refunds into a full bucket are lost: still two, not three. */
	b.tokens = 2;
	rate_refund(&b, &r);
	rate_refund(&b, &r);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 1);
	ck_assert_int_eq(rate_take(&b, &r, 1000), 0);
}
END_TEST

static struct srckey
key_of(unsigned n)
{
	struct srckey k;

	memset(&k, 0, sizeof(k));
	k.family = 2;
	memcpy(k.addr, &n, sizeof(n));
	return k;
}

START_TEST(sources_are_per_service_and_found_again)
{
	struct srckey a = key_of(1), b = key_of(2);
	struct source *e1, *e2;

	sources_clear();
	ck_assert_ptr_null(sources_find(7, &a));
	e1 = sources_get(7, &a, 10);
	ck_assert_ptr_nonnull(e1);
	e1->active = 1;
	ck_assert_ptr_eq(sources_get(7, &a, 20), e1);
	ck_assert_ptr_eq(sources_find(7, &a), e1);
	ck_assert_uint_eq(e1->active, 1);
	/* The same address of another service, or another address: other entries. */
	e2 = sources_get(8, &a, 20);
	ck_assert_ptr_nonnull(e2);
	ck_assert_ptr_ne(e1, e2);
	ck_assert_ptr_null(sources_find(7, &b));
	ck_assert_uint_eq(sources_count(), 2);
	sources_clear();
}
END_TEST

START_TEST(a_full_table_evicts_only_idle_sources)
{
	unsigned refused = 0, n = SOURCES_MAX + SOURCES_MAX / 4;

	sources_clear();
	/* Every source busy: once a set is full, a new source cannot be counted. */
	for (unsigned i = 0; i < n; i++) {
		struct srckey k = key_of(i);
		struct source *e = sources_get(1, &k, i + 1);

		if (e == NULL) {
			refused++;
			continue;
		}
		e->active = 1;
	}
	ck_assert_uint_gt(refused, 0);
	ck_assert_uint_le(sources_count(), SOURCES_MAX);
	ck_assert_uint_eq(n - refused, sources_count());
	/* Busy sources were never evicted: each admitted one is still there. */
	for (unsigned i = 0, seen = 0; i < n && seen < 1000; i++) {
		struct srckey k = key_of(i);
		struct source *e = sources_find(1, &k);

		if (e != NULL) {
			ck_assert_uint_eq(e->active, 1);
			seen++;
		}
	}
	/* Idle, the oldest go to make room. */
	for (unsigned i = 0; i < n; i++) {
		struct srckey k = key_of(i);
		struct source *e = sources_find(1, &k);

		if (e != NULL)
			e->active = 0;
	}
	for (unsigned i = n; i < n + 1000; i++) {
		struct srckey k = key_of(i);

		ck_assert_ptr_nonnull(sources_get(1, &k, n + i));
	}
	sources_clear();
}
END_TEST

Suite *
ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc = tcase_create("ratelimit");

	tcase_add_test(tc, parse_accepts_n_per_seconds_and_nothing_else);
	tcase_add_test(tc, take_spends_a_full_bucket_then_refills_with_time);
	tcase_add_test(tc, no_rate_always_takes);
	tcase_add_test(tc, refund_gives_back_one_token_and_never_overfills);
	tcase_add_test(tc, sources_are_per_service_and_found_again);
	tcase_add_test(tc, a_full_table_evicts_only_idle_sources);
	suite_add_tcase(s, tc);
	return s;
}
