#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listener.h"
#include "watch.h"
#include "log.h"

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
	/* Not blocking: a listener with a full queue would hold up the whole loop. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return *why = strerror(errno), -1;
	r = connect(fd, (const struct sockaddr *)&a->ss, a->len);
	close(fd);
	if (r == 0 || errno == EAGAIN || errno == EINPROGRESS)
		return *why = "another process is listening on it", -1;
	if (errno != ECONNREFUSED)
		return *why = strerror(errno), -1;
	if (unlink(unix_path(a)) < 0 && errno != ENOENT)
		return *why = strerror(errno), -1;
	return 0;
}

static int
unix_set_owner(struct listener *l, const struct service *s, const char **why)
{
	if (s->socket_owner && chown(unix_path(&l->addr), s->socket_uid, s->socket_gid) < 0)
		return *why = strerror(errno), -1;
	if (chmod(unix_path(&l->addr), s->socket_mode) < 0)
		return *why = strerror(errno), -1;
	l->perms.applied = 1;
	l->perms.owner = s->socket_owner;
	l->perms.uid = s->socket_uid;
	l->perms.gid = s->socket_gid;
	l->perms.mode = s->socket_mode;
	return 0;
}

/* What the service asks of the socket file is what was last applied to it. */
static int
unix_owner_same(const struct listener *l, const struct service *s)
{
	return l->perms.applied && l->perms.owner == s->socket_owner &&
	    l->perms.mode == s->socket_mode && (!s->socket_owner ||
	    (l->perms.uid == s->socket_uid && l->perms.gid == s->socket_gid));
}

/*
 * porterd never blocks on a socket it polls; a classic wait handler (in.tftpd)
 * expects a blocking one; one under fds = systemd gets what systemd would give
 * it, a socket created non-blocking.
 */
static int
wants_blocking(const struct service *s)
{
	return s->wait && !s->fds_systemd;
}

static int
set_blocking(struct listener *l, int blocking)
{
	int fl = fcntl(l->fd, F_GETFL);

	if (fl < 0)
		return -1;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	if (fcntl(l->fd, F_SETFL, fl) < 0)
		return -1;
	l->blocking = blocking;
	return 0;
}

/* Sockets from the service manager, until a service adopts them. */
struct inherited {
	int		 fd;
	int		 socktype;
	struct addr	 addr;
	char		 name[64];
};
static struct inherited *inherited;
static size_t ninherited;

#define SD_LISTEN_FDS_START 3

int
listener_inherit(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long n;

	if (pid == NULL || fds == NULL || strtol(pid, NULL, 10) != (long)getpid() ||
	    (n = strtol(fds, NULL, 10)) <= 0 || n > 1024 ||
	    (inherited = calloc((size_t)n, sizeof(*inherited))) == NULL) {
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_FDNAMES");
		return 0;
	}
	for (long i = 0; i < n; i++) {
		struct inherited *in = &inherited[ninherited];
		socklen_t len = sizeof(in->socktype);
		const char *end;

		in->fd = SD_LISTEN_FDS_START + (int)i;
		in->addr.len = sizeof(in->addr.ss);
		if (getsockopt(in->fd, SOL_SOCKET, SO_TYPE, &in->socktype, &len) < 0 ||
		    getsockname(in->fd, (struct sockaddr *)&in->addr.ss, &in->addr.len) < 0) {
			log_warn("LISTEN_FDS: fd %d is not a socket; ignored", in->fd);
			continue;
		}
		in->addr.family = in->addr.ss.ss_family;
		if (in->addr.family == AF_INET6) {
			int v6only = 1;

			len = sizeof(v6only);
			getsockopt(in->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len);
			in->addr.dualstack = !v6only &&
			    IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&in->addr.ss)->sin6_addr);
		}
		(void)fcntl(in->fd, F_SETFD, FD_CLOEXEC);
		/* LISTEN_FDNAMES: colon-separated, in the order of the fds. */
		for (long k = 0; names != NULL && k < i; k++)
			names = strchr(names, ':') ? strchr(names, ':') + 1 : NULL;
		if (names != NULL) {
			end = strchr(names, ':');
			snprintf(in->name, sizeof(in->name), "%.*s",
			    (int)(end ? (size_t)(end - names) : strlen(names)), names);
		}
		names = getenv("LISTEN_FDNAMES");
		ninherited++;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (int)ninherited;
}

void
listener_inherit_unused(void)
{
	for (size_t i = 0; i < ninherited; i++) {
		struct inherited *in = &inherited[i];
		char text[ADDR_TEXT_MAX];

		if (in->fd < 0)
			continue;
		addr_format(&in->addr, text, sizeof(text));
		log_warn("LISTEN_FDS: fd %d%s%s (%s) matches no service; closed", in->fd,
		    in->name[0] ? " named " : "", in->name, text);
		close(in->fd);
		in->fd = -1;
	}
}

/* An inherited socket for s: by name first, then by address. */
static int
take_inherited(const struct service *s)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < ninherited; i++) {
			struct inherited *in = &inherited[i];
			int fd = in->fd;

			if (fd < 0 || in->socktype != s->socktype)
				continue;
			if (pass == 0 ? strcmp(in->name, s->name) != 0 :
			    !addr_same(&in->addr, &s->listen))
				continue;
			in->fd = -1;
			log_info("%s: adopted the socket passed as fd %d%s%s", s->name, fd,
			    in->name[0] ? " named " : "", in->name);
			if (pass == 0 && !addr_same(&in->addr, &s->listen)) {
				char got[ADDR_TEXT_MAX], want[ADDR_TEXT_MAX];

				/* The name decides; the clients reach what systemd bound. */
				addr_format(&in->addr, got, sizeof(got));
				addr_format(&s->listen, want, sizeof(want));
				log_warn("%s: the socket named %s is on %s, not on %s as listen "
				    "says; serving it", s->name, in->name, got, want);
			}
			return fd;
		}
	return -1;
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
	l->reuseport = s->reuseport;
	if (ninherited > 0 && (l->fd = take_inherited(s)) >= 0) {
		/* The service manager owns its file and options: just make it ours to poll. */
		step = "adopt";
		l->adopted = 1;
		if ((s->socktype == SOCK_STREAM && listen(l->fd, s->backlog) < 0) ||
		    set_blocking(l, wants_blocking(s)) < 0)
			goto fail;
		l->backlog = s->backlog;
		return l;
	}
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
		if (s->reuseport &&
		    setsockopt(l->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
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
	l->backlog = s->backlog;
	step = "fcntl";
	if (set_blocking(l, wants_blocking(s)) < 0)
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

	if (l->reuseport != s->reuseport && l->addr.family != AF_UNIX && !l->adopted) {
		addr_format(&s->listen, text, sizeof(text));
		log_warn("%s: listen %s: reuseport = %s takes effect when porterd restarts (the "
		    "open socket is kept)", s->name, text, s->reuseport ? "yes" : "no");
	}
	/*
	 * listen() again only changes the backlog of a listening socket. The flags
	 * belong to the open file a wait handler shares, and it may have set them
	 * itself (an event-driven daemon makes its socket non-blocking): they change
	 * only when the mode the service wants changes (wait, fds).
	 */
	if (s->socktype == SOCK_STREAM && l->backlog != s->backlog) {
		if (listen(l->fd, s->backlog) < 0)
			why = strerror(errno);
		else
			l->backlog = s->backlog;
	}
	if (why == NULL && l->blocking != wants_blocking(s) &&
	    set_blocking(l, wants_blocking(s)) < 0)
		why = strerror(errno);
	/* An adopted socket's owner and mode are its unit's. */
	if (why == NULL && (l->addr.family != AF_UNIX || l->adopted ||
	    unix_owner_same(l, s) || unix_set_owner(l, s, &why) == 0))
		return 0;
	addr_format(&s->listen, text, sizeof(text));
	snprintf(err, errlen, "listen %s: %s", text, why);
	return -1;
}

void
listener_close(struct listener *l)
{
	if (l->fd < 0)
		return;
	/* An adopted unix socket's file is the service manager's. */
	if (l->addr.family == AF_UNIX && !l->adopted)
		unlink(unix_path(&l->addr));
	watch_forget(l);
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
