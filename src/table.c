#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "table.h"

const char *const refusal_names[REFUSE_N] = {
	[REFUSE_ACL] = "acl", [REFUSE_PER_SOURCE] = "per_source",
	[REFUSE_SOURCE_RATE] = "source_rate", [REFUSE_RATE] = "rate",
	[REFUSE_PROXY] = "proxy",
};

const char *const tls_fail_names[TLS_FAIL_N] = {
	[TLS_FAIL_TIMEOUT] = "timeout", [TLS_FAIL_PROTOCOL] = "protocol",
	[TLS_FAIL_CERTIFICATE] = "certificate",
};

void
svc_state_unref(struct svc_state *st)
{
	if (st != NULL && --st->refs == 0) {
		free(st->name);
		free(st);
	}
}

static struct svc_state *
state_for(const struct service *s, const struct table *old)
{
	struct svc_state *st;

	for (size_t i = 0; old != NULL && i < old->n; i++)
		if (strcmp(old->slot[i].st->name, s->name) == 0) {
			old->slot[i].st->refs++;
			return old->slot[i].st;
		}
	static uint64_t next_id;

	if ((st = calloc(1, sizeof(*st))) == NULL || (st->name = strdup(s->name)) == NULL)
		abort();
	st->refs = 1;
	st->id = ++next_id;
	st->created_ms = log_now_ms();
	return st;
}

static struct listener *
old_listener(const struct service *s, const struct table *old)
{
	for (size_t i = 0; old != NULL && i < old->n; i++)
		if (old->slot[i].lst != NULL && listener_matches(old->slot[i].lst, s))
			return old->slot[i].lst;
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
	char why[256];

	if (t == NULL || (t->slot = calloc(cf->nsvc + 1, sizeof(*t->slot))) == NULL)
		abort();
	t->cf = cf;
	/* First every socket, so that a failure leaves the old table untouched. */
	for (size_t i = 0; i < cf->nsvc; i++) {
		const struct service *s = &cf->svc[i];
		struct slot *sl = &t->slot[t->n++];

		sl->svc = s;
		sl->st = state_for(s, old);
		if (!s->enabled || s->tcpmux != NULL)
			continue;
		if ((sl->lst = old_listener(s, old)) != NULL) {
			listener_ref(sl->lst);
		} else if ((sl->lst = listener_open(s, why, sizeof(why))) == NULL) {
			snprintf(err, errlen, "%s: %s", s->name, why);
			slots_free(t->slot, t->n);
			free(t);
			return NULL;
		}
	}
	/* Then the settings that change on a kept socket. */
	for (size_t i = 0; i < t->n; i++)
		if (t->slot[i].lst != NULL &&
		    listener_update(t->slot[i].lst, t->slot[i].svc, why, sizeof(why)) < 0)
			log_warn("%s: %s", t->slot[i].svc->name, why);
	return t;
}

static int
table_uses(const struct table *t, const struct listener *l)
{
	for (size_t i = 0; t != NULL && i < t->n; i++)
		if (t->slot[i].lst == l)
			return 1;
	return 0;
}

void
table_retire(struct table *old, const struct table *next)
{
	if (old == NULL)
		return;
	for (size_t i = 0; i < old->n; i++)
		if (old->slot[i].lst != NULL && !table_uses(next, old->slot[i].lst))
			listener_close(old->slot[i].lst);
	slots_free(old->slot, old->n);
	config_free(old->cf);
	free(old);
}
