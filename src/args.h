/* args: split an `args =` value into an argv, and quote one back for -T. */
#ifndef PORTERD_ARGS_H
#define PORTERD_ARGS_H

#include <stddef.h>

/*
 * Split `s` into words on blanks. '...' quotes literally; "..." quotes with \", \\ and \; as
 * escapes; outside quotes a backslash takes the next character literally.
 * Returns a NULL-terminated malloc'ed vector (free with args_free) and sets *argc,
 * or NULL with *error set to a static message (or NULL when out of memory).
 */
char **args_split(const char *s, size_t *argc, const char **error);
void args_free(char **argv);
/* Append `word` to buf (size len), quoted so that args_split gives it back. */
int args_quote(char *buf, size_t len, const char *word);

#endif
