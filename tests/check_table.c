#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check_porterd.h"
#include "config.h"
#include "table.h"

static struct config *
conf_from(const char *text)
{
	struct config_errors errs = { NULL, 0 };
	char *dir = tmpdir_make();
	struct config *cf;

	write_file(dir, "t.conf", text);
	cf = config_load(&(struct config_sources){ .dir = dir }, &errs, NULL);
	ck_assert_msg(cf != NULL, "config: %s", errs.n ? errs.msg[0] : "?");
	tmpdir_remove(dir);
	return cf;
}

static const struct slot *
slot_of(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->slot[i].svc->name, name) == 0)
			return &t->slot[i];
	ck_abort_msg("no slot %s", name);
	return NULL;
}

/* bind (0) or connect (1) to 127.0.0.1:port; did it work? */
static int
try_port(unsigned port, int do_connect)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = do_connect ? connect(fd, (struct sockaddr *)&sin, sizeof(sin)) :
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);
	return r == 0;
}

#define port_is_free(port) try_port((port), 0)
#define connects(port) try_port((port), 1)

START_TEST(test_reload_keeps_unchanged_sockets)
{
	unsigned p1 = free_port(SOCK_STREAM), p2 = free_port(SOCK_STREAM);
	unsigned p3 = free_port(SOCK_STREAM);
	struct table *ta, *tb;
	char *text, err[256];
	struct listener *kept;
	struct svc_state *st;
	int fd;

	ck_assert(asprintf(&text, "[a]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n"
	    "[b]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n", p1, p2) > 0);
	ta = table_build(conf_from(text), NULL, err, sizeof(err));
	free(text);
	ck_assert_msg(ta != NULL, "%s", err);
	kept = slot_of(ta, "a")->lst;
	fd = kept->fd;
	st = slot_of(ta, "a")->st;
	st->accepted = 41;

	/* a keeps its address (new backlog), b goes, c comes. */
	ck_assert(asprintf(&text, "[a]\nlisten = 127.0.0.1:%u\nbuiltin = echo\nbacklog = 5\n"
	    "[c]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n", p1, p3) > 0);
	tb = table_build(conf_from(text), ta, err, sizeof(err));
	free(text);
	ck_assert_msg(tb != NULL, "%s", err);
	ck_assert_ptr_eq(slot_of(tb, "a")->lst, kept);
	ck_assert_int_eq(slot_of(tb, "a")->lst->fd, fd);
	ck_assert_ptr_eq(slot_of(tb, "a")->st, st);
	ck_assert_uint_eq(slot_of(tb, "a")->st->accepted, 41);
	/* Until the old table is retired, b is still open. */
	ck_assert(!port_is_free(p2));
	table_retire(ta, tb);
	ck_assert(port_is_free(p2));
	ck_assert(connects(p1));
	ck_assert(connects(p3));
	table_retire(tb, NULL);
	ck_assert(port_is_free(p1));
	ck_assert(port_is_free(p3));
}
END_TEST

START_TEST(test_reload_rolls_back_when_a_socket_fails)
{
	unsigned p1 = free_port(SOCK_STREAM), p2 = free_port(SOCK_STREAM);
	unsigned p3 = free_port(SOCK_STREAM);
	struct sockaddr_in sin;
	struct table *ta, *tb;
	struct config *cf;
	char *text, err[256], want[128];
	int busy;

	ck_assert(asprintf(&text, "[a]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n", p1) > 0);
	ta = table_build(conf_from(text), NULL, err, sizeof(err));
	free(text);
	ck_assert_ptr_nonnull(ta);

	/* Somebody else holds p2. */
	busy = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)p2);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(busy, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(busy, 1), 0);

	ck_assert(asprintf(&text, "[a]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n"
	    "[x]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n"
	    "[y]\nlisten = 127.0.0.1:%u\nbuiltin = echo\n", p1, p3, p2) > 0);
	cf = conf_from(text);
	free(text);
	tb = table_build(cf, ta, err, sizeof(err));
	ck_assert_ptr_null(tb);
	snprintf(want, sizeof(want), "y: listen 127.0.0.1:%u: bind: Address already in use", p2);
	ck_assert_str_eq(err, want);
	/* x was opened for the new table and closed again; a is untouched. */
	ck_assert(port_is_free(p3));
	ck_assert(connects(p1));
	ck_assert_int_eq(slot_of(ta, "a")->lst->refs, 1);
	config_free(cf);
	close(busy);
	table_retire(ta, NULL);
}
END_TEST

static void
stale_socket_file(const char *path)
{
	struct sockaddr_un sun;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);	/* the file stays: what a crashed daemon leaves */
}

START_TEST(test_unix_sockets)
{
	char *dir = tmpdir_make(), *text, err[256], *path, *plain;
	struct table *t;
	struct config *cf;
	struct stat st;

	ck_assert(asprintf(&path, "%s/s.sock", dir) > 0);
	ck_assert(asprintf(&plain, "%s/plain.sock", dir) > 0);
	stale_socket_file(path);
	ck_assert(asprintf(&text, "[u]\nlisten = unix:%s\nbuiltin = echo\nsocket_mode = 0604\n",
	    path) > 0);
	t = table_build(conf_from(text), NULL, err, sizeof(err));
	free(text);
	ck_assert_msg(t != NULL, "%s", err);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0604);

	/* A file that is not a socket is never removed. */
	write_file(dir, "plain.sock", "keep me\n");
	ck_assert(asprintf(&text, "[p]\nlisten = unix:%s\nbuiltin = echo\n", plain) > 0);
	cf = conf_from(text);
	free(text);
	ck_assert_ptr_null(table_build(cf, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "exists and is not a socket"));
	ck_assert_int_eq(stat(plain, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	config_free(cf);

	/* A live socket of someone else's is not taken over either. */
	ck_assert(asprintf(&text, "[u2]\nlisten = unix:%s\nbuiltin = echo\n", path) > 0);
	cf = conf_from(text);
	free(text);
	ck_assert_ptr_null(table_build(cf, NULL, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "another process is listening on it"));
	config_free(cf);

	table_retire(t, NULL);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	free(path);
	free(plain);
	tmpdir_remove(dir);
}
END_TEST

START_TEST(test_wait_mode_switches_blocking)
{
	unsigned p = free_port(SOCK_STREAM);
	struct table *ta, *tb;
	char *text, err[256];
	int fd;

	ck_assert(asprintf(&text, "[w]\nlisten = 127.0.0.1:%u\nexec = /bin/cat\n", p) > 0);
	ta = table_build(conf_from(text), NULL, err, sizeof(err));
	free(text);
	fd = slot_of(ta, "w")->lst->fd;
	ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(asprintf(&text, "[w]\nlisten = 127.0.0.1:%u\nexec = /bin/cat\nwait = yes\n",
	    p) > 0);
	tb = table_build(conf_from(text), ta, err, sizeof(err));
	free(text);
	ck_assert_int_eq(slot_of(tb, "w")->lst->fd, fd);
	/* A wait handler gets the socket itself and expects it blocking. */
	ck_assert(!(fcntl(fd, F_GETFL) & O_NONBLOCK));
	table_retire(ta, tb);
	table_retire(tb, NULL);
}
END_TEST

START_TEST(test_disabled_service_has_no_socket)
{
	unsigned p = free_port(SOCK_STREAM);
	struct table *t;
	char *text, err[256];

	ck_assert(asprintf(&text, "[off]\nlisten = 127.0.0.1:%u\nbuiltin = echo\nenabled = no\n",
	    p) > 0);
	t = table_build(conf_from(text), NULL, err, sizeof(err));
	free(text);
	ck_assert_ptr_null(slot_of(t, "off")->lst);
	ck_assert(port_is_free(p));
	table_retire(t, NULL);
}
END_TEST

Suite *
table_suite(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("reload");

	tcase_add_test(tc, test_reload_keeps_unchanged_sockets);
	tcase_add_test(tc, test_reload_rolls_back_when_a_socket_fails);
	tcase_add_test(tc, test_unix_sockets);
	tcase_add_test(tc, test_wait_mode_switches_blocking);
	tcase_add_test(tc, test_disabled_service_has_no_socket);
	suite_add_tcase(s, tc);
	return s;
}
