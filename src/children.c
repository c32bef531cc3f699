#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "children.h"

/*
 * Open addressing on the pid, so that reaping stays O(1) with thousands of
 * handlers alive. Deleted slots are re-packed (backward shift), no tombstones.
 */
static struct child *tab;
static size_t cap, count;

static size_t
slot_of(pid_t pid)
{
	return ((size_t)pid * 2654435761u) & (cap - 1);
}

/* The table at newcap slots (a power of two, more than twice count). */
static int
rehash(size_t newcap)
{
	struct child *old = tab;
	size_t oldcap = cap;

	if ((tab = calloc(newcap, sizeof(*tab))) == NULL) {
		tab = old;
		errno = ENOMEM;
		return -1;
	}
	cap = newcap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i].pid != 0) {
			size_t j = slot_of(old[i].pid);

			while (tab[j].pid != 0)
				j = (j + 1) & (cap - 1);
			tab[j] = old[i];
		}
	free(old);
	return 0;
}

static int
grow_table(void)
{
	return rehash(cap ? cap * 2 : 64);
}

struct child *
children_add(pid_t pid, struct svc_state *st, struct listener *wait_lst)
{
	size_t i;

	if ((count + 1) * 2 > cap && grow_table() < 0)
		return NULL;
	for (i = slot_of(pid); tab[i].pid != 0; i = (i + 1) & (cap - 1))
		;
	memset(&tab[i], 0, sizeof(tab[i]));
	tab[i].pid = pid;
	tab[i].pgid = pid;
	tab[i].st = st;
	st->refs++;
	tab[i].wait_lst = wait_lst != NULL ? listener_ref(wait_lst) : NULL;
	tab[i].tls_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &tab[i].started);
	count++;
	return &tab[i];
}

int
children_put(const struct child *c)
{
	size_t i;

	if ((count + 1) * 2 > cap && grow_table() < 0)
		return -1;
	for (i = slot_of(c->pid); tab[i].pid != 0; i = (i + 1) & (cap - 1))
		;
	tab[i] = *c;
	count++;
	return 0;
}

void
children_foreach(void (*fn)(struct child *c, void *ctx), void *ctx)
{
	for (size_t i = 0; i < cap; i++)
		if (tab[i].pid != 0)
			fn(&tab[i], ctx);
}

/* The slot of pid's record, or -1. */
static ssize_t
find(pid_t pid)
{
	size_t i;

	if (cap == 0)
		return -1;
	for (i = slot_of(pid); tab[i].pid != pid; i = (i + 1) & (cap - 1))
		if (tab[i].pid == 0)
			return -1;
	return (ssize_t)i;
}

int
children_has(pid_t pid)
{
	return find(pid) >= 0;
}

struct child *
children_get(pid_t pid)
{
	ssize_t at = find(pid);

	return at < 0 ? NULL : &tab[at];
}

int
children_take(pid_t pid, struct child *out)
{
	ssize_t at = find(pid);
	size_t i, j;

	if (at < 0)
		return -1;
	i = (size_t)at;
	*out = tab[i];
	tab[i].pid = 0;
	count--;
	/* Shift back the entries of the run after i that belong at or before it. */
	for (j = (i + 1) & (cap - 1); tab[j].pid != 0; j = (j + 1) & (cap - 1)) {
		size_t home = slot_of(tab[j].pid);

		if (((j - home) & (cap - 1)) >= ((j - i) & (cap - 1))) {
			tab[i] = tab[j];
			tab[j].pid = 0;
			i = j;
		}
	}
	/*
	 * Back to a quarter full once it is an eighth full: after 10,000 handlers
	 * at once, porterd's memory comes back down with them.
	 */
	if (cap > 64 && count * 8 < cap)
		(void)rehash(cap / 2);
	return 0;
}

size_t
children_count(void)
{
	return count;
}

void
children_clear(void)
{
	for (size_t i = 0; i < cap; i++)
		if (tab[i].pid != 0) {
			if (tab[i].cg != NULL)
				cgroup_conn_drop(tab[i].cg);
			svc_state_unref(tab[i].st);
			listener_unref(tab[i].wait_lst);
		}
	free(tab);
	tab = NULL;
	cap = count = 0;
}
