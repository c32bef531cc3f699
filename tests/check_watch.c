#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_porterd.h"
#include "listener.h"
#include "watch.h"

/* A listener on a fresh 127.0.0.1 port, as listener_open would leave it. */
static void
listen_on(struct listener *l, unsigned *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(l, 0, sizeof(*l));
	l->refs = 1;
	l->socktype = SOCK_STREAM;
	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l->fd, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(l->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(l->fd, 8), 0);
	ck_assert_int_eq(getsockname(l->fd, (struct sockaddr *)&sin, &len), 0);
	l->addr.family = AF_INET;
	l->addr.len = len;
	memcpy(&l->addr.ss, &sin, len);
	*port = ntohs(sin.sin_port);
}

static int
connect_to(unsigned port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Does the poll loop's view (the epoll fd) say something is ready? */
static int
epoll_fd_ready(void)
{
	struct pollfd p = { .fd = watch_fd(), .events = POLLIN };

	return poll(&p, 1, 1000) == 1;
}

START_TEST(test_only_watched_ready_listeners_are_reported)
{
	struct listener a, b, *ready[4];
	unsigned pa, pb;
	int ca;

	ck_assert_int_eq(watch_init(), 0);
	listen_on(&a, &pa);
	listen_on(&b, &pb);
	ck_assert_int_eq(watch_set(&a, 3, 1), 0);
	ck_assert_int_eq(watch_set(&b, 4, 1), 0);
	ck_assert_int_eq(watch_ready(ready, 4), 0);

	ca = connect_to(pa);
	ck_assert(epoll_fd_ready());
	ck_assert_int_eq(watch_ready(ready, 4), 1);
	ck_assert_ptr_eq(ready[0], &a);
	ck_assert_uint_eq(a.watch_idx, 3);
	/* Level-triggered: still there while the connection waits. */
	ck_assert_int_eq(watch_ready(ready, 4), 1);

	/* Unwatched (a busy wait service, a full one): not reported, however ready. */
	ck_assert_int_eq(watch_set(&a, 3, 0), 0);
	ck_assert_int_eq(a.watched, 0);
	ck_assert_int_eq(watch_ready(ready, 4), 0);
	/* Watched again, from another slot after a reload. */
	ck_assert_int_eq(watch_set(&a, 7, 1), 0);
	ck_assert_int_eq(watch_ready(ready, 4), 1);
	ck_assert_uint_eq(ready[0]->watch_idx, 7);

	close(ca);
	listener_close(&a);
	listener_close(&b);
}
END_TEST

/*
 * A wait handler holds the listening socket porterd closes in a reload: the
 * socket lives on in the child, and epoll, which keys on the socket and not on
 * porterd's fd, would go on reporting it unless it was taken out first.
 */
START_TEST(test_closed_listener_is_forgotten_while_a_child_holds_it)
{
	struct listener a, *ready[4];
	unsigned pa;
	int held, ca;

	ck_assert_int_eq(watch_init(), 0);
	listen_on(&a, &pa);
	ck_assert_int_eq(watch_set(&a, 0, 1), 0);
	held = dup(a.fd);
	ck_assert_int_ge(held, 0);
	listener_close(&a);
	ck_assert_int_eq(a.watched, 0);
	ca = connect_to(pa);
	ck_assert_int_eq(watch_ready(ready, 4), 0);
	close(ca);
	close(held);
}
END_TEST

Suite *
watch_suite(void)
{
	Suite *s = suite_create("watch");
	TCase *tc = tcase_create("epoll set");

	tcase_add_test(tc, test_only_watched_ready_listeners_are_reported);
	tcase_add_test(tc, test_closed_listener_is_forgotten_while_a_child_holds_it);
	suite_add_tcase(s, tc);
	return s;
}
