/* xinetd_conv: the state of one conversion; see xinetd_conv.h. */
#include <stdlib.h>
#include <string.h>

#include "xinetd_conv.h"

void
conv_init(struct conv *cv)
{
	memset(cv, 0, sizeof(*cv));
	words_add(&cv->taken, "defaults");
}

struct entry *
conv_entry_new(const char *name, const struct where *at, size_t source)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->name = name != NULL ? xstrdup(name) : NULL;
	e->at = *at;
	e->source = source;
	return e;
}

static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	for (int i = 0; i < A_COUNT; i++)
		words_clear(&e->a[i].w);
	nets_free(&e->only_from);
	nets_free(&e->no_access);
	items_free(&e->env);
	items_free(&e->passenv);
	items_free(&e->disabled);
	items_free(&e->enabled);
	free(e->name);
	free(e);
}

struct source *
conv_source_add(struct conv *cv, const char *path)
{
	struct source *s = xcalloc(1, sizeof(*s));

	s->path = xstrdup(path);
	cv->src = xgrow(cv->src, cv->nsrc, &cv->capsrc, sizeof(*cv->src));
	cv->src[cv->nsrc++] = s;
	return s;
}

void
conv_free(struct conv *cv)
{
	for (size_t i = 0; i < cv->nsvc; i++)
		entry_free(cv->svc[i]);
	free(cv->svc);
	entry_free(cv->defaults);
	for (size_t i = 0; i < cv->nsrc; i++) {
		free(cv->src[i]->path);
		free(cv->src[i]->out.s);
		free(cv->src[i]);
	}
	free(cv->src);
	free(cv->errors.s);
	free(cv->notes.s);
	free(cv->defaults_out.s);
	free(cv->written);
	words_clear(&cv->taken);
}
