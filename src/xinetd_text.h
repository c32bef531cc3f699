/*
 * xinetd_text: the few data structures porterd-xinetd is built of: a growing
 * text buffer, word lists, and lists of values that remember the FILE:LINE
 * they came from. Allocation never fails here: a converter that has run out
 * of memory has nothing useful left to do, so it says so and exits.
 */
#ifndef PORTERD_XINETD_TEXT_H
#define PORTERD_XINETD_TEXT_H

#include <stddef.h>

/* Exit statuses, as porterd's: 1 bad input, 100 usage, 111 the system (files, memory). */
#define EXIT_INPUT 1
#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

struct where {
	const char	*file;
	int		 line;		/* 0: the file as a whole */
};

struct buf {
	char	*s;			/* NUL-terminated once anything was added */
	size_t	 len, cap;
};

/* A NULL-terminated vector of strings, each its own allocation. */
struct words {
	char	**v;
	size_t	  n, cap;
};

/* One value of a list attribute (env, passenv, disabled...), with its line. */
struct item {
	char		*s;
	struct where	 at;
};

struct items {
	struct item	*v;
	size_t		 n, cap;
	int		 present;	/* given, even with no value */
};

void *xrealloc(void *p, size_t n);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Make room for one more element of `size` bytes in v (n used, *cap held). */
void *xgrow(void *v, size_t n, size_t *cap, size_t size);

void buf_add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void words_add(struct words *w, const char *s);
void words_clear(struct words *w);
int words_has(const struct words *w, const char *s);
/* Append the blank-separated words of line, as xinetd splits them: no quotes, no escapes. */
void words_split(const char *line, struct words *w);

void items_add(struct items *l, const char *s, const struct where *at);
void items_del(struct items *l, size_t i);
void items_clear(struct items *l);
void items_free(struct items *l);
/* Append the values of from to `to`, which takes its `present` too. */
void items_copy(struct items *to, const struct items *from);

/* s is one or more decimal digits and nothing else. */
int text_digits(const char *s);
/* A non-negative decimal number; -1 if s is not one, max + 1 if it is larger than max. */
long text_number(const char *s, long max);

#endif
