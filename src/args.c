#include <stdlib.h>
#include <string.h>

#include "args.h"

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void
args_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

char **
args_split(const char *s, size_t *argc, const char **error)
{
	size_t cap = 4, n = 0, len = strlen(s);
	char **argv = calloc(cap, sizeof(*argv));
	/* A word is never longer than the input. */
	char *word = malloc(len + 1);

	*error = NULL;
	if (argv == NULL || word == NULL)
		goto fail;
	for (const char *p = s;;) {
		size_t w = 0;
		int have_word = 0;

		while (is_blank(*p))
			p++;
		if (*p == '\0')
			break;
		while (*p != '\0' && !is_blank(*p)) {
			have_word = 1;
			if (*p == '\'') {
				const char *end = strchr(p + 1, '\'');

				if (end == NULL) {
					*error = "unterminated ' quote";
					goto fail;
				}
				memcpy(word + w, p + 1, (size_t)(end - p - 1));
				w += (size_t)(end - p - 1);
				p = end + 1;
			} else if (*p == '"') {
				for (p++; *p != '"'; p++) {
					if (*p == '\0') {
						*error = "unterminated \" quote";
						goto fail;
					}
					/* \; lets a value hold " ;", which inih would cut as a comment. */
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\' || p[1] == ';'))
						p++;
					word[w++] = *p;
				}
				p++;
			} else if (*p == '\\') {
				if (p[1] == '\0') {
					*error = "trailing backslash";
					goto fail;
				}
				word[w++] = p[1];
				p += 2;
			} else {
				word[w++] = *p++;
			}
		}
		if (!have_word)
			continue;
		if (n + 2 > cap) {
			char **grown = realloc(argv, 2 * cap * sizeof(*argv));

			if (grown == NULL)
				goto fail;
			argv = grown;
			cap *= 2;
		}
		if ((argv[n] = strndup(word, w)) == NULL)
			goto fail;
		argv[++n] = NULL;
	}
	free(word);
	*argc = n;
	return argv;
fail:
	free(word);
	args_free(argv);
	return NULL;
}

int
args_quote(char *buf, size_t len, const char *word)
{
	size_t used = strlen(buf);
	int plain = *word != '\0';

	for (const char *p = word; *p != '\0'; p++)
		if (is_blank(*p) || strchr("'\"\\;#", *p) != NULL)
			plain = 0;
	if (plain) {
		if (used + strlen(word) + 1 > len)
			return -1;
		strcat(buf, word);
		return 0;
	}
	/* Double quotes: only " and \ need escaping inside them. */
	if (used + 2 * strlen(word) + 3 > len)
		return -1;
	buf += used;
	*buf++ = '"';
	for (const char *p = word; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || *p == ';')
			*buf++ = '\\';
		*buf++ = *p;
	}
	*buf++ = '"';
	*buf = '\0';
	return 0;
}
