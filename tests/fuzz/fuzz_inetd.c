/*
 * libFuzzer target for the inetd.conf reader (-i): the input is one inetd.conf,
 * read with an empty services directory. Any bytes must give a table or a list
 * of errors, never a crash, a hang or a leak; a table must dump (-T).
 */
#include <dlfcn.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[4096], sd[4096], conf[4096];

/* Host names would go to DNS and make runs slow and flaky: numeric only here. */
int
getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
    struct addrinfo **res)
{
	static int (*real)(const char *, const char *, const struct addrinfo *,
	    struct addrinfo **);
	struct addrinfo h = *hints;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}

static void
cleanup(void)
{
	unlink(conf);
	rmdir(sd);
	rmdir(dir);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/porterd-fuzz-inetd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror(dir);
		abort();
	}
	snprintf(sd, sizeof(sd), "%s/services.d", dir);
	snprintf(conf, sizeof(conf), "%s/inetd.conf", dir);
	if (mkdir(sd, 0700) < 0) {
		perror(sd);
		abort();
	}
	atexit(cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs = { NULL, 0 };
	struct config_sources src = { .dir = sd, .inetd_conf = conf };
	struct config *cf;
	FILE *f, *sink;

	if (dir[0] == '\0')
		setup();
	if ((f = fopen(conf, "w")) == NULL || fwrite(data, 1, size, f) != size ||
	    fclose(f) != 0)
		abort();
	sink = fopen("/dev/null", "w");
	cf = config_load(&src, &errs, sink);
	if ((cf == NULL) != (errs.n > 0)) {
		fprintf(stderr, "fuzz_inetd: config_load returned %s with %zu errors\n",
		    cf == NULL ? "NULL" : "a table", errs.n);
		abort();
	}
	if (cf != NULL) {
		config_dump(cf, sink);
		config_free(cf);
	}
	fclose(sink);
	config_errors_free(&errs);
	return 0;
}
