/*
 * libFuzzer target for args_split() and args_quote(): whatever splits must
 * come back word for word after quoting, since -T prints args that way and an
 * admin pastes them back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what, const char *quoted)
{
	fprintf(stderr, "fuzz_args: %s\n", what);
	if (quoted != NULL)
		fprintf(stderr, "---- quoted ----\n%s\n----\n", quoted);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char **argv, **again;
	size_t argc, argc2, cap = 1;
	const char *why;
	char *s, *quoted;

	if ((s = malloc(size + 1)) == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	argv = args_split(s, &argc, &why);
	free(s);
	if (argv == NULL) {
		/* No message means out of memory, and ASan's malloc does not return NULL. */
		if (why == NULL)
			fail("args_split failed without a message", NULL);
		return 0;
	}
	if (argv[argc] != NULL)
		fail("argv[argc] is not NULL", NULL);

	/* Worst case per word: a blank before it, and every byte escaped inside "". */
	for (size_t i = 0; i < argc; i++)
		cap += 2 * strlen(argv[i]) + 3;
	if ((quoted = malloc(cap)) == NULL)
		abort();
	quoted[0] = '\0';
	for (size_t i = 0; i < argc; i++) {
		if (i > 0)
			strcat(quoted, " ");
		if (args_quote(quoted, cap, argv[i]) < 0)
			fail("args_quote ran out of a buffer of the worst-case size", quoted);
	}

	if ((again = args_split(quoted, &argc2, &why)) == NULL)
		fail(why != NULL ? why : "args_split failed on quoted words", quoted);
	if (argc2 != argc)
		fail("quoted words split into a different number of words", quoted);
	for (size_t i = 0; i < argc; i++)
		if (strcmp(argv[i], again[i]) != 0)
			fail("a quoted word came back different", quoted);

	args_free(again);
	args_free(argv);
	free(quoted);
	return 0;
}
