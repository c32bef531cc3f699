#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "log.h"
#include "table.h"

const char *const refusal_names[REFUSE_N] = {
	[REFUSE_ACL] = "acl", [REFUSE_PER_SOURCE] = "per_source",
	[REFUSE_SOURCE_RATE] = "source_rate", [REFUSE_RATE] = "rate",
	[REFUSE_PROXY] = "proxy", [REFUSE_LOOP] = "loop",
	[REFUSE_IDLE] = "idle",
};

const char *const tls_fail_names[TLS_FAIL_N] = {
	[TLS_FAIL_TIMEOUT] = "timeout", [TLS_FAIL_PROTOCOL] = "protocol",
	[TLS_FAIL_CERTIFICATE] = "certificate",
};

void
svc_state_unref(struct svc_state *st)
{
	if (st != NULL && --st->refs == 0) {
		/* Its last handler has ended: its cgroup is empty and can go. */
		cgroup_svc_free(st->cg);
		free(st->name);
		free(st);
	}
}

/*
 * What a reload looks up in the old table for each new service: its state by
 * name, its socket by identity. Open hashes of old slot indexes (+1; 0 is a
 * free entry), so that a table of 10,000 services reloads in linear time.
 */
struct old_index {
	const struct table	*old;
	size_t			*by_name, *by_socket;
	size_t			 mask;
};

static void
index_build(struct old_index *ix, const struct table *old)
{
	size_t cap = 64;

	memset(ix, 0, sizeof(*ix));
	ix->old = old;
	if (old == NULL)
		return;
	while (cap < 2 * old->n)
		cap *= 2;
	ix->mask = cap - 1;
	if ((ix->by_name = calloc(cap, sizeof(size_t))) == NULL ||
	    (ix->by_socket = calloc(cap, sizeof(size_t))) == NULL)
		abort();
	for (size_t i = 0; i < old->n; i++) {
		const struct slot *sl = &old->slot[i];
		size_t h = hash_string(sl->st->name) & ix->mask;

		while (ix->by_name[h] != 0)
			h = (h + 1) & ix->mask;
		ix->by_name[h] = i + 1;
		if (sl->lst == NULL || sl->lst->fd < 0)
			continue;
		h = (size_t)(addr_hash(&sl->lst->addr) ^ (uint64_t)sl->lst->socktype) & ix->mask;
		while (ix->by_socket[h] != 0)
			h = (h + 1) & ix->mask;
		ix->by_socket[h] = i + 1;
	}
}

static void
index_free(struct old_index *ix)
{
	free(ix->by_name);
	free(ix->by_socket);
}

static struct svc_state *
state_for(const struct service *s, const struct old_index *ix)
{
	static uint64_t next_id;
	struct svc_state *st;

	if (ix->old != NULL)
		for (size_t h = hash_string(s->name) & ix->mask; ix->by_name[h] != 0;
		    h = (h + 1) & ix->mask) {
			st = ix->old->slot[ix->by_name[h] - 1].st;
			if (strcmp(st->name, s->name) == 0) {
				st->refs++;
				return st;
			}
		}
	if ((st = calloc(1, sizeof(*st))) == NULL || (st->name = strdup(s->name)) == NULL)
		abort();
	st->refs = 1;
	st->id = ++next_id;
	st->created_ms = log_now_ms();
	return st;
}

static struct listener *
old_listener(const struct service *s, const struct old_index *ix)
{
	if (ix->old == NULL)
		return NULL;
	for (size_t h = (size_t)(addr_hash(&s->listen) ^ (uint64_t)s->socktype) & ix->mask;
	    ix->by_socket[h] != 0; h = (h + 1) & ix->mask) {
		struct listener *l = ix->old->slot[ix->by_socket[h] - 1].lst;

		if (listener_matches(l, s))
			return l;
	}
	return NULL;
}

static void
slots_free(struct slot *slot, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		listener_unref(slot[i].lst);
		svc_state_unref(slot[i].st);
	}
	free(slot);
}

struct table *
table_build(struct config *cf, const struct table *old, char *err, size_t errlen)
{
	struct table *t = calloc(1, sizeof(*t));
	struct old_index ix;
	char why[256];

	if (t == NULL || (t->slot = calloc(cf->nsvc + 1, sizeof(*t->slot))) == NULL)
		abort();
	t->cf = cf;
	index_build(&ix, old);
	/* First every socket, so that a failure leaves the old table untouched. */
	for (size_t i = 0; i < cf->nsvc; i++) {
		const struct service *s = &cf->svc[i];
		struct slot *sl = &t->slot[t->n++];

		sl->svc = s;
		sl->st = state_for(s, &ix);
		if (!s->enabled || s->tcpmux != NULL)
			continue;
		if ((sl->lst = old_listener(s, &ix)) != NULL) {
			listener_ref(sl->lst);
		} else if ((sl->lst = listener_open(s, why, sizeof(why))) == NULL &&
		    s->from_inetd) {
			/*
			 * A line of the shared inetd.conf whose port is taken (a wait
			 * handler of the last porterd still holds it, or a daemon of
			 * its own): as openbsd-inetd, serve the rest and try it again
			 * (loop.c, every minute). services.d stays all or nothing.
			 */
			log_warn("%s:%d: %s: %s; left out, tried again in a minute",
			    s->at.file, s->at.line, s->name, why);
			t->unbound++;
		} else if (sl->lst == NULL) {
			snprintf(err, errlen, "%s: %s", s->name, why);
			slots_free(t->slot, t->n);
			free(t);
			index_free(&ix);
			return NULL;
		}
	}
	index_free(&ix);
	/* Then the settings that change on a kept socket. */
	for (size_t i = 0; i < t->n; i++)
		if (t->slot[i].lst != NULL &&
		    listener_update(t->slot[i].lst, t->slot[i].svc, why, sizeof(why)) < 0)
			log_warn("%s: %s", t->slot[i].svc->name, why);
	return t;
}

void
table_retire(struct table *old, const struct table *next)
{
	static unsigned stamp;

	if (old == NULL)
		return;
	/* Mark what next uses, rather than look for each old socket in it. */
	stamp++;
	for (size_t i = 0; next != NULL && i < next->n; i++)
		if (next->slot[i].lst != NULL)
			next->slot[i].lst->in_use = stamp;
	for (size_t i = 0; i < old->n; i++)
		if (old->slot[i].lst != NULL && (next == NULL || old->slot[i].lst->in_use != stamp))
			listener_close(old->slot[i].lst);
	slots_free(old->slot, old->n);
	config_free(old->cf);
	free(old);
}
