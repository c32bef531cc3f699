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

#include "listener.h"

static const char *
unix_path(const struct addr *a)
{
	return ((const struct sockaddr_un *)&a->ss)->sun_path;
}

/*
 * A socket file left by a previous run is replaced only if nothing answers on it:
 * a file that is not a socket, or a live socket, is somebody else's.
 */
static int
unix_clear_stale(const struct addr *a, const char **why)
{
	struct stat st;
	int fd, r;

	if (lstat(unix_path(a), &st) < 0)
		return errno == ENOENT ? 0 : (*why = strerror(errno), -1);
	if (!S_ISSOCK(st.st_mode))
		return *why = "exists and is not a socket", -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return *why = strerror(errno), -1;
	r = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	close(fd);
	if (r == 0)
		return *why = "another process is listening on it", -1;
	if (errno != ECONNREFUSED)
		return *why = strerror(errno), -1;
	if (unlink(unix_path(a)) < 0 && errno != ENOENT)
		return *why = strerror(errno), -1;
	return 0;
}

static int
unix_set_owner(const struct listener *l, const struct service *s, const char **why)
{
	if (s->socket_owner && chown(unix_path(&l->addr), s->socket_uid, s->socket_gid) < 0)
		return *why = strerror(errno), -1;
	if (chmod(unix_path(&l->addr), s->socket_mode) < 0)
		return *why = strerror(errno), -1;
	return 0;
}

static int
set_blocking(int fd, int blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	return fcntl(fd, F_SETFL, fl);
}

struct listener *
listener_open(const struct service *s, char *err, size_t errlen)
{
	struct listener *l = calloc(1, sizeof(*l));
	char text[ADDR_TEXT_MAX];
	const char *step = "socket", *why = NULL;
	int one = 1, family = s->listen.family;
	struct addr a = s->listen;

	addr_format(&s->listen, text, sizeof(text));
	if (l == NULL) {
		snprintf(err, errlen, "listen %s: %s", text, strerror(ENOMEM));
		return NULL;
	}
	l->refs = 1;
	l->socktype = s->socktype;
	l->addr = s->listen;
	l->fd = socket(family, s->socktype | SOCK_CLOEXEC, 0);
	if (l->fd < 0 && a.dualstack && errno == EAFNOSUPPORT) {
		/* "*:PORT" on a host without IPv6: all IPv4 addresses, then. */
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;
		unsigned port = addr_port(&s->listen);

		memset(&a.ss, 0, sizeof(a.ss));
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a.len = sizeof(*sin);
		l->fd = socket(AF_INET, s->socktype | SOCK_CLOEXEC, 0);
	}
	if (l->fd < 0)
		goto fail;
	if (family == AF_UNIX) {
		step = "remove stale socket";
		if (unix_clear_stale(&a, &why) < 0)
			goto fail;
	} else {
		step = "setsockopt";
		if (s->socktype == SOCK_STREAM &&
		    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
			goto fail;
		if (a.ss.ss_family == AF_INET6) {
			int v6only = !a.dualstack;

			if (setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			    sizeof(v6only)) < 0)
				goto fail;
		}
	}
	step = "bind";
	if (family == AF_UNIX) {
		/* Born unreachable to others; unix_set_owner opens it up as configured. */
		mode_t old = umask(0177);
		int r = bind(l->fd, (const struct sockaddr *)&a.ss, a.len);

		umask(old);
		if (r < 0)
			goto fail;
		step = "chown/chmod";
		if (unix_set_owner(l, s, &why) < 0) {
			unlink(unix_path(&a));
			goto fail;
		}
	} else if (bind(l->fd, (const struct sockaddr *)&a.ss, a.len) < 0) {
		goto fail;
	}
	step = "listen";
	if (s->socktype == SOCK_STREAM && listen(l->fd, s->backlog) < 0) {
		if (family == AF_UNIX)
			unlink(unix_path(&a));
		goto fail;
	}
	/* The daemon never blocks on a socket it polls; a wait handler expects blocking. */
	step = "fcntl";
	if (set_blocking(l->fd, s->wait) < 0)
		goto fail;
	return l;
fail:
	snprintf(err, errlen, "listen %s: %s: %s", text, step, why ? why : strerror(errno));
	if (l->fd >= 0)
		close(l->fd);
	free(l);
	return NULL;
}

int
listener_matches(const struct listener *l, const struct service *s)
{
	return l->fd >= 0 && l->socktype == s->socktype && addr_same(&l->addr, &s->listen);
}

int
listener_update(struct listener *l, const struct service *s, char *err, size_t errlen)
{
	char text[ADDR_TEXT_MAX];
	const char *why = NULL;

	addr_format(&s->listen, text, sizeof(text));
	/* listen() again only changes the backlog of a listening socket. */
	if (s->socktype == SOCK_STREAM && listen(l->fd, s->backlog) < 0)
		why = strerror(errno);
	else if (set_blocking(l->fd, s->wait) < 0)
		why = strerror(errno);
	else if (l->addr.family != AF_UNIX || unix_set_owner(l, s, &why) == 0)
		return 0;
	snprintf(err, errlen, "listen %s: %s", text, why);
	return -1;
}

void
listener_close(struct listener *l)
{
	if (l->fd < 0)
		return;
	if (l->addr.family == AF_UNIX)
		unlink(unix_path(&l->addr));
	close(l->fd);
	l->fd = -1;
}

struct listener *
listener_ref(struct listener *l)
{
	l->refs++;
	return l;
}

void
listener_unref(struct listener *l)
{
	if (l != NULL && --l->refs == 0) {
		listener_close(l);
		free(l);
	}
}
