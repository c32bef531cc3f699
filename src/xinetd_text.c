/* xinetd_text: buffers and lists for porterd-xinetd; see xinetd_text.h. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xinetd_text.h"

static void __attribute__((noreturn))
nomem(void)
{
	fprintf(stderr, "porterd-xinetd: out of memory\n");
	exit(EXIT_SYSTEM);
}

void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		nomem();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		nomem();
	return p;
}

char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		nomem();
	return d;
}

char *
xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (d == NULL)
		nomem();
	return d;
}

void *
xgrow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? 2 * *cap : 8;
	return xrealloc(v, *cap * size);
}

void
buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s == NULL ? NULL : b->s + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			nomem();
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap + (size_t)n + 256;
		b->s = xrealloc(b->s, b->cap);
	}
}

void
words_add(struct words *w, const char *s)
{
	/* n + 1: the vector keeps its NULL terminator. */
	w->v = xgrow(w->v, w->n + 1, &w->cap, sizeof(*w->v));
	w->v[w->n++] = xstrdup(s);
	w->v[w->n] = NULL;
}

void
words_clear(struct words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	memset(w, 0, sizeof(*w));
}

int
words_has(const struct words *w, const char *s)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i], s) == 0)
			return 1;
	return 0;
}

void
words_split(const char *line, struct words *w)
{
	const char *p = line;

	while (*p != '\0') {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (n = 0; p[n] != '\0' && p[n] != ' ' && p[n] != '\t'; n++)
			;
		w->v = xgrow(w->v, w->n + 1, &w->cap, sizeof(*w->v));
		w->v[w->n] = xstrndup(p, n);
		w->v[++w->n] = NULL;
		p += n;
	}
}

void
items_add(struct items *l, const char *s, const struct where *at)
{
	l->v = xgrow(l->v, l->n, &l->cap, sizeof(*l->v));
	l->v[l->n].s = xstrdup(s);
	l->v[l->n++].at = *at;
}

void
items_del(struct items *l, size_t i)
{
	free(l->v[i].s);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

void
items_clear(struct items *l)
{
	while (l->n > 0)
		items_del(l, l->n - 1);
}

void
items_free(struct items *l)
{
	items_clear(l);
	free(l->v);
}

void
items_copy(struct items *to, const struct items *from)
{
	for (size_t i = 0; i < from->n; i++)
		items_add(to, from->v[i].s, &from->v[i].at);
	to->present = from->present;
}

int
text_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

long
text_number(const char *s, long max)
{
	char *end;
	long v;

	if (!text_digits(s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v > max)
		return max + 1;
	return v;
}
