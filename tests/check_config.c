#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_porterd.h"
#include "config.h"

static char *
read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	ck_assert_msg(f != NULL, "%s missing", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* Every message, with "DIR/" taken out wherever it appears, one per line. */
static char *
errors_text(const struct config_errors *errs, const char *dir)
{
	size_t cap = 1;
	char *out;

	for (size_t i = 0; i < errs->n; i++)
		cap += strlen(errs->msg[i]) + 1;
	out = calloc(1, cap);
	for (size_t i = 0; i < errs->n; i++) {
		const char *p = errs->msg[i];
		size_t dl = strlen(dir);

		while (*p != '\0') {
			if (strncmp(p, dir, dl) == 0 && p[dl] == '/') {
				p += dl + 1;
				continue;
			}
			strncat(out, p++, 1);
		}
		strcat(out, "\n");
	}
	return out;
}

static void
expect_golden(const char *name)
{
	struct config_errors errs = { NULL, 0 };
	char *dir, *want_path, *want, *got;
	struct config *cf;

	ck_assert(asprintf(&dir, "%s/%s", data_dir(), name) > 0);
	ck_assert(asprintf(&want_path, "%s/expected", dir) > 0);
	cf = config_load(&(struct config_sources){ .dir = dir }, &errs, NULL);
	ck_assert_ptr_null(cf);
	want = read_all(want_path);
	got = errors_text(&errs, dir);
	ck_assert_msg(strcmp(want, got) == 0, "%s: errors differ.\n--- want\n%s--- got\n%s",
	    name, want, got);
	config_errors_free(&errs);
	free(want);
	free(got);
	free(want_path);
	free(dir);
}

START_TEST(test_golden_keys)
{
	expect_golden("errors-keys");
}
END_TEST

START_TEST(test_golden_services)
{
	expect_golden("errors-services");
}
END_TEST

START_TEST(test_golden_lines)
{
	expect_golden("errors-lines");
}
END_TEST

static struct config *
load_ok(const char *dir)
{
	struct config_errors errs = { NULL, 0 };
	struct config *cf = config_load(&(struct config_sources){ .dir = dir }, &errs, NULL);

	ck_assert_msg(cf != NULL, "unexpected error: %s", errs.n ? errs.msg[0] : "?");
	return cf;
}

static const struct service *
find(const struct config *cf, const char *name)
{
	for (size_t i = 0; i < cf->nsvc; i++)
		if (strcmp(cf->svc[i].name, name) == 0)
			return &cf->svc[i];
	ck_abort_msg("no service %s", name);
	return NULL;
}

static const char *
env_get(const struct service *s, const char *key)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i < s->envp_base; i++)
		if (strncmp(s->envp[i], key, kl) == 0 && s->envp[i][kl] == '=')
			return s->envp[i] + kl + 1;
	return NULL;
}

START_TEST(test_skipped_files)
{
	char *dir;
	struct config *cf;

	ck_assert(asprintf(&dir, "%s/valid-skips", data_dir()) > 0);
	cf = load_ok(dir);
	ck_assert_uint_eq(cf->nsvc, 1);
	ck_assert_str_eq(cf->svc[0].name, "ok");
	ck_assert_uint_eq(cf->nfiles, 1);
	config_free(cf);
	free(dir);
}
END_TEST

START_TEST(test_every_key)
{
	struct passwd *pw = getpwuid(geteuid());
	struct group *gr = getgrgid(getegid());
	char *dir = tmpdir_make(), *text;
	const struct service *s;
	struct config *cf;

	ck_assert_ptr_nonnull(pw);
	ck_assert_ptr_nonnull(gr);
	ck_assert(asprintf(&text,
	    "[full]\n"
	    "listen = [::1]:7001\n"
	    "protocol = tcp\n"
	    "wait = no\n"
	    "exec = /bin/sh\n"
	    "args = sh -c 'exit 0'\n"
	    "user = %s\n"
	    "group = %s\n"
	    "env = ONE=1\n"
	    "env = TWO=two words\n"
	    "enabled = yes\n"
	    "backlog = 17\n"
	    "max_children = 3\n"
	    "\n"
	    "[sock]\n"
	    "listen = unix:/tmp/porterd-check.sock\n"
	    "builtin = echo\n"
	    "socket_user = %s\n"
	    "socket_group = %s\n"
	    "socket_mode = 0640\n"
	    "enabled = no\n"
	    "\n"
	    "[dg]\n"
	    "listen = 127.0.0.1:7002\n"
	    "protocol = udp\n"
	    "wait = yes\n"
	    "exec = /bin/cat\n",
	    pw->pw_name, gr->gr_name, pw->pw_name, gr->gr_name) > 0);
	write_file(dir, "10-all.conf", text);
	cf = load_ok(dir);
	ck_assert_uint_eq(cf->nsvc, 3);

	s = find(cf, "full");
	ck_assert_int_eq(s->listen.family, AF_INET6);
	ck_assert_int_eq(s->socktype, SOCK_STREAM);
	ck_assert_int_eq(s->wait, 0);
	ck_assert_str_eq(s->exec, "/bin/sh");
	ck_assert_str_eq(s->argv[0], "sh");
	ck_assert_str_eq(s->argv[2], "exit 0");
	ck_assert_ptr_null(s->argv[3]);
	ck_assert(s->set_user && s->set_group);
	ck_assert_uint_eq(s->uid, geteuid());
	ck_assert_uint_eq(s->gid, getegid());
	ck_assert_int_ge(s->ngroups, 1);
	ck_assert_str_eq(env_get(s, "ONE"), "1");
	ck_assert_str_eq(env_get(s, "TWO"), "two words");
	ck_assert_str_eq(env_get(s, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	ck_assert_str_eq(env_get(s, "PORTERD_SERVICE"), "full");
	ck_assert_ptr_null(s->envp[s->envp_base]);
	ck_assert_int_eq(s->backlog, 17);
	ck_assert_uint_eq(s->max_children, 3);
	ck_assert_int_eq(s->enabled, 1);

	s = find(cf, "sock");
	ck_assert_int_eq(s->listen.family, AF_UNIX);
	ck_assert_int_eq(s->builtin, BUILTIN_ECHO);
	ck_assert_uint_eq(s->socket_uid, geteuid());
	ck_assert_uint_eq(s->socket_gid, getegid());
	ck_assert_uint_eq(s->socket_mode, 0640);
	ck_assert_int_eq(s->enabled, 0);

	s = find(cf, "dg");
	ck_assert_int_eq(s->socktype, SOCK_DGRAM);
	ck_assert_int_eq(s->wait, 1);
	/* args defaults to the basename of exec */
	ck_assert_str_eq(s->argv[0], "cat");
	ck_assert_ptr_null(s->argv[1]);
	ck_assert_int_eq(s->set_user, 0);
	ck_assert_uint_eq(s->max_children, CONFIG_DEFAULT_MAX_CHILDREN);
	ck_assert_int_eq(s->backlog, SOMAXCONN);

	config_free(cf);
	free(text);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_defaults_inherited_and_overridden)
{
	char *dir = tmpdir_make();
	struct config *cf;
	const struct service *a, *b;

	/* [defaults] in a later file still applies to services read before it. */
	write_file(dir, "10-a.conf",
	    "[a]\nlisten = 127.0.0.1:7010\nexec = /bin/sh\nenv = SHARED=mine\n"
	    "max_children = 9\n");
	write_file(dir, "20-b.conf", "[b]\nlisten = 127.0.0.1:7011\nexec = /bin/sh\n");
	write_file(dir, "99-defaults.conf",
	    "[defaults]\nmax_children = 4\nenv = SHARED=inherited\nenv = EXTRA=x\n"
	    "env = PATH=/opt/bin\n");
	cf = load_ok(dir);
	a = find(cf, "a");
	b = find(cf, "b");
	ck_assert_uint_eq(a->max_children, 9);
	ck_assert_uint_eq(b->max_children, 4);
	ck_assert_str_eq(env_get(a, "SHARED"), "mine");
	ck_assert_str_eq(env_get(b, "SHARED"), "inherited");
	ck_assert_str_eq(env_get(a, "EXTRA"), "x");
	/* An env PATH replaces porterd's, and there is just one. */
	ck_assert_str_eq(env_get(b, "PATH"), "/opt/bin");
	{
		int paths = 0;

		for (size_t i = 0; i < b->envp_base; i++)
			paths += strncmp(b->envp[i], "PATH=", 5) == 0;
		ck_assert_int_eq(paths, 1);
	}
	config_free(cf);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_continuation_lines)
{
	char *dir = tmpdir_make();
	struct config *cf;
	const struct service *s;

	write_file(dir, "10-c.conf",
	    "[c]\n"
	    "listen = 127.0.0.1:7020\n"
	    "exec = /usr/bin/env\n"
	    "args = python3 -c 'import sys\n"
	    "    for i in range(2):\n"
	    "        print(i)\n"
	    "    sys.exit(0)' second\n"
	    "    third\n"
	    "env = A=1\n"
	    "  B=2\n");
	cf = load_ok(dir);
	s = find(cf, "c");
	ck_assert_str_eq(s->argv[0], "python3");
	ck_assert_str_eq(s->argv[1], "-c");
	ck_assert_str_eq(s->argv[2], "import sys\nfor i in range(2):\n    print(i)\nsys.exit(0)");
	ck_assert_str_eq(s->argv[3], "second");
	ck_assert_str_eq(s->argv[4], "third");
	ck_assert_ptr_null(s->argv[5]);
	ck_assert_str_eq(env_get(s, "A"), "1");
	ck_assert_str_eq(env_get(s, "B"), "2");
	config_free(cf);
	tmpdir_remove(dir);
}
END_TEST

/* Lines past inih's 200-byte buffer keep their whole value; only 64 KiB is too long. */
START_TEST(test_long_lines)
{
	char *dir = tmpdir_make(), *text, *huge;
	char word[1200], cont[600];
	struct config_errors errs = { NULL, 0 };
	struct config *cf;
	const struct service *s;

	memset(word, 'w', sizeof(word) - 1);
	word[sizeof(word) - 1] = '\0';
	memset(cont, 'c', sizeof(cont) - 1);
	cont[sizeof(cont) - 1] = '\0';
	ck_assert(asprintf(&text,
	    "[long]\n"
	    "listen = 127.0.0.1:7021\n"
	    "exec = /bin/echo\n"
	    "args = echo %s  ; an inline comment, cut as inih cuts it\n"
	    "    %s\n"
	    "env = K=%s;not-a-comment\n", word, cont, word) > 0);
	write_file(dir, "10-l.conf", text);
	cf = load_ok(dir);
	s = find(cf, "long");
	ck_assert_str_eq(s->argv[1], word);
	ck_assert_str_eq(s->argv[2], cont);
	ck_assert_ptr_null(s->argv[3]);
	ck_assert_int_eq(strlen(env_get(s, "K")), strlen(word) + strlen(";not-a-comment"));
	config_free(cf);
	free(text);

	huge = malloc(70000);
	ck_assert_ptr_nonnull(huge);
	memset(huge, 'x', 69999);
	huge[69999] = '\0';
	ck_assert(asprintf(&text, "[huge]\nlisten = 127.0.0.1:7022\nexec = /bin/echo\n"
	    "args = %s\n", huge) > 0);
	write_file(dir, "10-l.conf", text);
	cf = config_load(&(struct config_sources){ .dir = dir }, &errs, NULL);
	ck_assert_ptr_null(cf);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_ptr_nonnull(strstr(errs.msg[0], "10-l.conf:4: line is longer than 65535 "
	    "characters"));
	config_errors_free(&errs);
	free(text);
	free(huge);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_user_only_takes_primary_group)
{
	struct passwd *pw = getpwuid(geteuid());
	char *dir = tmpdir_make(), *text;
	struct config *cf;
	const struct service *s;

	ck_assert(asprintf(&text, "[u]\nlisten = 127.0.0.1:7030\nexec = /bin/sh\nuser = %s\n",
	    pw->pw_name) > 0);
	write_file(dir, "u.conf", text);
	cf = load_ok(dir);
	s = find(cf, "u");
	ck_assert_uint_eq(s->gid, pw->pw_gid);
	ck_assert_int_eq(s->set_group, 0);
	ck_assert_int_ge(s->ngroups, 1);
	ck_assert_uint_eq(s->groups[0], pw->pw_gid);
	config_free(cf);
	free(text);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_empty_and_missing_dir)
{
	struct config_errors errs = { NULL, 0 };
	char *dir = tmpdir_make(), *missing;
	struct config *cf = load_ok(dir);

	ck_assert_uint_eq(cf->nsvc, 0);
	config_free(cf);
	ck_assert(asprintf(&missing, "%s/nope", dir) > 0);
	ck_assert_ptr_null(config_load(&(struct config_sources){ .dir = missing }, &errs, NULL));
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_ptr_nonnull(strstr(errs.msg[0], "nope: No such file or directory"));
	config_errors_free(&errs);
	free(missing);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_dump_round_trip)
{
	char *src, *dir = tmpdir_make(), *again = tmpdir_make();
	char *first = NULL, *second = NULL;
	size_t n1 = 0, n2 = 0;
	struct config *cf;
	FILE *f;

	ck_assert(asprintf(&src, "%s/../../services.d", data_dir()) > 0);
	cf = load_ok(src);
	f = open_memstream(&first, &n1);
	config_dump(cf, f);
	fclose(f);
	config_free(cf);
	write_file(dir, "all.conf", first);
	cf = load_ok(dir);
	f = open_memstream(&second, &n2);
	config_dump(cf, f);
	fclose(f);
	config_free(cf);
	/* Same table, apart from the "; FILE:LINE" comments. */
	{
		char *p = first, *q = second;

		for (;;) {
			char *pe = strchr(p, '\n'), *qe = strchr(q, '\n');

			if (pe == NULL || qe == NULL) {
				ck_assert_ptr_eq(pe, qe);
				break;
			}
			if (*p != ';')
				ck_assert_int_eq(strncmp(p, q, (size_t)(pe - p + 1)), 0);
			p = pe + 1;
			q = qe + 1;
		}
	}
	free(first);
	free(second);
	free(src);
	tmpdir_remove(dir);
	tmpdir_remove(again);
}
END_TEST

Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *golden = tcase_create("errors");
	TCase *valid = tcase_create("valid");

	tcase_add_test(golden, test_golden_keys);
	tcase_add_test(golden, test_golden_services);
	tcase_add_test(golden, test_golden_lines);
	tcase_add_test(valid, test_skipped_files);
	tcase_add_test(valid, test_every_key);
	tcase_add_test(valid, test_defaults_inherited_and_overridden);
	tcase_add_test(valid, test_continuation_lines);
	tcase_add_test(valid, test_long_lines);
	tcase_add_test(valid, test_user_only_takes_primary_group);
	tcase_add_test(valid, test_empty_and_missing_dir);
	tcase_add_test(valid, test_dump_round_trip);
	suite_add_tcase(s, golden);
	suite_add_tcase(s, valid);
	return s;
}
