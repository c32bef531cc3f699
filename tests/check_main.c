/* The unit test runner: every suite, against the code in libporterd.a. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_porterd.h"

char *
tmpdir_make(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir;

	ck_assert(asprintf(&dir, "%s/porterd-check.XXXXXX", base) > 0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

void
tmpdir_remove(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char *path;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		ck_assert(asprintf(&path, "%s/%s", dir, e->d_name) > 0);
		unlink(path);
		free(path);
	}
	if (d != NULL)
		closedir(d);
	rmdir(dir);
	free(dir);
}

void
write_file(const char *dir, const char *name, const char *text)
{
	char *path;
	FILE *f;

	ck_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	free(path);
}

const char *
data_dir(void)
{
	static char path[4096];
	const char *src = getenv("PORTERD_SRCDIR");

	snprintf(path, sizeof(path), "%s/tests/data", src ? src : ".");
	return path;
}

unsigned
free_port(int socktype)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, socktype, 0);

	ck_assert_int_ge(fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

int
main(void)
{
	SRunner *sr = srunner_create(args_suite());
	int failed;

	srunner_add_suite(sr, addr_suite());
	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, table_suite());
	srunner_add_suite(sr, builtins_suite());
	srunner_add_suite(sr, proxy_suite());
	srunner_add_suite(sr, watch_suite());
	srunner_add_suite(sr, ratelimit_suite());
	srunner_add_suite(sr, cgroup_suite());
	srunner_add_suite(sr, children_suite());
	srunner_add_suite(sr, relay_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
