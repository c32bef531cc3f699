#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "check_porterd.h"
#include "children.h"

#define MANY 10000

/* Bytes malloc has given out, large blocks (mmap) included. */
static size_t
in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* Whether in_use sees allocations (not under a sanitizer's own allocator). */
static int
stats_work(void)
{
	size_t before = in_use();
	void *volatile p = malloc(1 << 20);	/* volatile: not optimised away */
	int seen = in_use() >= before + (1 << 20);

	free(p);
	return seen;
}

/* A table that grew to 10,000 handlers finds each, and shrinks as they go. */
START_TEST(many_handlers_come_and_go_and_their_memory_with_them)
{
	static struct svc_state st;
	int stats = stats_work();
	size_t before = in_use();
	struct child c;

	for (pid_t pid = 1; pid <= MANY; pid++) {
		struct child *r = children_add(pid, &st, NULL);

		ck_assert_ptr_nonnull(r);
		r->deadline_ms = pid;
	}
	ck_assert_uint_eq(children_count(), MANY);
	ck_assert_int_eq(st.refs, MANY);
	if (stats)
		ck_assert_uint_gt(in_use(), before + MANY * sizeof(struct child));
	/* The odd ones first: the even ones must still be found among the holes. */
	for (int pass = 1; pass >= 0; pass--)
		for (pid_t pid = 1; pid <= MANY; pid++) {
			if (pid % 2 != pass)
				continue;
			ck_assert(children_has(pid));
			ck_assert_int_eq(children_take(pid, &c), 0);
			ck_assert(!children_has(pid));
			ck_assert_int_eq(c.pid, pid);
			ck_assert_int_eq(c.deadline_ms, pid);
			ck_assert_ptr_eq(c.st, &st);
			ck_assert_int_eq(children_take(pid, &c), -1);
		}
	ck_assert_uint_eq(children_count(), 0);
	ck_assert(!children_has(1));
	/* Back to the smallest table, not the peak's. */
	if (stats)
		ck_assert_uint_lt(in_use(), before + 128 * sizeof(struct child));
	children_clear();
}
END_TEST

Suite *
children_suite(void)
{
	Suite *s = suite_create("children");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, many_handlers_come_and_go_and_their_memory_with_them);
	suite_add_tcase(s, tc);
	return s;
}
