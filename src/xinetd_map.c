/* xinetd_map: an xinetd entry into porterd's keys; see xinetd_map.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "addr.h"
#include "xinetd_access.h"
#include "xinetd_diag.h"
#include "xinetd_emit.h"
#include "xinetd_handler.h"
#include "xinetd_limits.h"
#include "xinetd_map.h"
#include "xinetd_read.h"

#define TCPMUX_NAME_LIMIT 64

#define T_INTERNAL 0x01
#define T_UNLISTED 0x02
#define T_RPC 0x04
#define T_TCPMUX 0x08
#define T_TCPMUXPLUS 0x10

#define F_INTERCEPT 0x001
#define F_NORETRY 0x002
#define F_IDONLY 0x004
#define F_NAMEINARGS 0x008
#define F_NODELAY 0x010
#define F_KEEPALIVE 0x020
#define F_NOLIBWRAP 0x040
#define F_SENSOR 0x080
#define F_IPV4 0x100
#define F_IPV6 0x200
#define F_LABELED 0x400
#define F_REUSE 0x800
#define F_DISABLE 0x1000

static const struct {
	const char	*name;
	int		 bit;
	const char	*why;	/* not carried over: why; NULL when it is, or needs nothing */
} flag_defs[] = {
	{ "INTERCEPT", F_INTERCEPT, "porterd checks allow and deny on each connection it "
	    "accepts, and does not intercept a wait = yes handler's traffic" },
	{ "NORETRY", F_NORETRY, "porterd logs a failed fork and goes on" },
	{ "IDONLY", F_IDONLY, "porterd makes no RFC 1413 ident lookups" },
	{ "NAMEINARGS", F_NAMEINARGS, NULL },
	{ "NODELAY", F_NODELAY, "porterd sets no TCP_NODELAY; the handler can set it on "
	    "its socket" },
	{ "KEEPALIVE", F_KEEPALIVE, "porterd sets no SO_KEEPALIVE; the handler can set it "
	    "on its socket" },
	{ "NOLIBWRAP", F_NOLIBWRAP, NULL },
	{ "SENSOR", F_SENSOR, NULL },
	{ "IPv4", F_IPV4, NULL },
	{ "IPv6", F_IPV6, NULL },
	{ "LABELED", F_LABELED, "porterd does not set SELinux contexts" },
	{ "REUSE", F_REUSE, NULL },
	{ "DISABLE", F_DISABLE, NULL },
};

/* The attributes porterd has no equivalent for, and why; noted in the order of their lines. */
static const char *const why_not[A_COUNT] = {
	[A_REDIRECT] = "porterd does not forward connections to another host",
	[A_BANNER] = "porterd sends nothing of its own to a client",
	[A_BANNER_SUCCESS] = "porterd sends nothing of its own to a client",
	[A_BANNER_FAIL] = "porterd closes a refused connection without sending anything",
	[A_ACCESS_TIMES] = "porterd has no time-of-day windows",
	[A_LOG_TYPE] = "porterd logs to syslog (facility daemon), or to stderr with -f",
	[A_LOG_ON_SUCCESS] = "porterd -v logs every connection with the client's address, and "
	    "each handler's pid, exit status and duration",
	[A_LOG_ON_FAILURE] = "porterd logs every refusal with the client's address, at most once "
	    "per 10 seconds for each service and reason",
	[A_RPC_VERSION] = "porterd does not register RPC services",
	[A_RPC_NUMBER] = "porterd does not register RPC services",
	[A_MAX_LOAD] = "porterd does not watch the load average",
	[A_DENY_TIME] = "porterd has no SENSOR services that deny addresses for a time",
	[A_MDNS] = "porterd does not register services with mDNS",
	[A_LIBWRAP] = "porterd does not use TCP wrappers (hosts.allow); use allow and deny",
	[A_RLIMIT_DATA] = "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc "
	    "only",
	[A_RLIMIT_RSS] = "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc "
	    "only",
	[A_RLIMIT_STACK] = "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc "
	    "only",
};

static const char *const builtin_names[] = {
	"echo", "discard", "daytime", "chargen", "time", "tcpmux", NULL
};

/* One service on its way to porterd's keys. */
struct svc {
	struct conv	*cv;
	struct entry	*e;
	const char	*id;		/* xinetd's id: the name, unless id is set */
	int		 types, flags;	/* T_ and F_ bits */
	const char	*stype, *proto;
	int		 wait, disable, enabled;
	unsigned	 port;
	const char	*builtin;	/* porterd's builtin, or NULL for a server */
	int		 has_listen;	/* not a tcpmux service */
	struct addr	 listen;
	char		 section[NAME_LIMIT + 1];
	struct buf	 head, keys, tail;	/* the comment above, the keys, the notes */
};

static int
name_char(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_';
}

/*
 * The section name: the service's id (xinetd's unique key, which tells apart
 * the tcp and udp entries of one service name), made fit for porterd's rules
 * and unique in the directory.
 */
static void
section_name(struct conv *cv, struct entry *e, char *name, size_t len)
{
	const struct slot *id = &e->a[A_ID];
	const char *base = id->set ? id->w.v[0] : e->name;
	char fixed[NAME_LIMIT + 1];
	size_t n = 0;

	for (const char *p = base; *p != '\0' && n < NAME_LIMIT; p++)
		fixed[n++] = name_char((unsigned char)*p) ? *p : '_';
	fixed[n] = '\0';
	if (strcmp(fixed, base) != 0)
		diag_info(cv, id->set ? &id->at : &e->at, "service %s: written as [%s]: porterd's "
		    "names are up to %d letters, digits, '.', '-' and '_'", e->name, fixed,
		    NAME_LIMIT);
	snprintf(name, len, "%s", fixed);
	for (int i = 2; words_has(&cv->taken, name); i++) {
		char suffix[16];

		snprintf(suffix, sizeof(suffix), "-%d", i);
		snprintf(name, len, "%.*s%s", (int)(NAME_LIMIT - strlen(suffix)), fixed, suffix);
		if (!words_has(&cv->taken, name))
			diag_info(cv, id->set ? &id->at : &e->at, "service %s: [%s] is taken; "
			    "written as [%s]", e->name, fixed, name);
	}
	words_add(&cv->taken, name);
}

static int
yes_no(struct conv *cv, struct entry *e, enum attr id, int dflt)
{
	const struct slot *s = &e->a[id];

	if (!s->set)
		return dflt;
	if (strcmp(s->w.v[0], "yes") == 0)
		return 1;
	if (strcmp(s->w.v[0], "no") == 0)
		return 0;
	diag_error(cv, &s->at, "%s = %s: expected yes or no", read_attr_name(id), s->w.v[0]);
	e->bad = 1;
	return dflt;
}

/* The service's own value, else the one of the defaults. */
static const struct slot *
own_or_default(const struct conv *cv, const struct entry *e, enum attr id)
{
	if (e->a[id].set)
		return &e->a[id];
	if (cv->defaults != NULL && cv->defaults->a[id].set)
		return &cv->defaults->a[id];
	return NULL;
}

/* Where a key of xinetd's defaults goes: the [defaults] section, or each service. */
static const struct slot *
scalar_for(const struct conv *cv, const struct entry *e, enum attr id)
{
	return cv->fold ? own_or_default(cv, e, id) : (e->a[id].set ? &e->a[id] : NULL);
}

static int
types_of(struct conv *cv, struct entry *e)
{
	const struct slot *s = &e->a[A_TYPE];
	int t = 0;

	for (size_t i = 0; s->set && i < s->w.n; i++) {
		const char *v = s->w.v[i];

		if (strcmp(v, "INTERNAL") == 0)
			t |= T_INTERNAL;
		else if (strcmp(v, "UNLISTED") == 0)
			t |= T_UNLISTED;
		else if (strcmp(v, "RPC") == 0)
			t |= T_RPC;
		else if (strcmp(v, "TCPMUX") == 0)
			t |= T_TCPMUX;
		else if (strcmp(v, "TCPMUXPLUS") == 0)
			t |= T_TCPMUX | T_TCPMUXPLUS;
		else {
			diag_error(cv, &s->at, "type %s: expected INTERNAL, UNLISTED, RPC, TCPMUX "
			    "or TCPMUXPLUS", v);
			e->bad = 1;
		}
	}
	return t;
}

static int
flags_of(struct conv *cv, struct entry *e)
{
	const struct slot *s = &e->a[A_FLAGS];
	int f = 0;

	for (size_t i = 0; s->set && i < s->w.n; i++) {
		size_t k;

		for (k = 0; k < sizeof(flag_defs) / sizeof(flag_defs[0]); k++)
			if (strcmp(flag_defs[k].name, s->w.v[i]) == 0)
				break;
		if (k == sizeof(flag_defs) / sizeof(flag_defs[0])) {
			diag_error(cv, &s->at, "flags: unknown flag %s", s->w.v[i]);
			e->bad = 1;
		} else {
			f |= flag_defs[k].bit;
		}
	}
	return f;
}

/* The notes for attributes porterd has no equivalent of, set in the entry itself. */
static void
plain_not_carried(struct conv *cv, struct entry *e, struct buf *tail, const char *who)
{
	struct {
		const struct where *at;
		enum attr id;
	} found[A_COUNT], t;
	size_t n = 0;

	for (enum attr id = 0; id < A_COUNT; id++) {
		const struct where *at = NULL;

		if (why_not[id] == NULL)
			continue;
		if (id == A_LOG_ON_SUCCESS && e->log_success_at.line > 0)
			at = &e->log_success_at;
		else if (id == A_LOG_ON_FAILURE && e->log_failure_at.line > 0)
			at = &e->log_failure_at;
		else if (e->a[id].set)
			at = &e->a[id].at;
		if (at != NULL) {
			found[n].at = at;
			found[n++].id = id;
		}
	}
	/* In the order of the lines, which is how the reader will look for them. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && found[j - 1].at->line > found[j].at->line; j--) {
			t = found[j];
			found[j] = found[j - 1];
			found[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++)
		diag_not_carried(cv, tail, found[i].at, who, read_attr_name(found[i].id), "%s",
		    why_not[found[i].id]);
}

/* The whole service is left out: a comment in its place, and the same on stderr. */
static void
left_out(struct svc *sv, const struct where *at, const char *what, const char *why)
{
	struct source *src = sv->cv->src[sv->e->source];
	struct entry *e = sv->e;

	buf_add(&src->out, "\n");
	emit_commentf(&src->out, "xinetd service %s (%s:%d) is left out.", e->name, e->at.file,
	    e->at.line);
	diag_not_carried(sv->cv, &src->out, at, e->name, what, "%s", why);
	src->used = 1;
	sv->cv->left_out++;
}

/* socket_type and protocol, each from the other when only one is given. */
static void
check_socket(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct entry *e = sv->e;
	const struct slot *st = &e->a[A_SOCKET_TYPE], *pr = &e->a[A_PROTOCOL];
	const char *stype = st->set ? st->w.v[0] : NULL, *proto = pr->set ? pr->w.v[0] : NULL;

	if (stype == NULL && proto == NULL) {
		diag_error(cv, &e->at, "service %s: socket_type is missing", e->name);
		e->bad = 1;
	}
	if (stype != NULL && strcmp(stype, "stream") != 0 && strcmp(stype, "dgram") != 0 &&
	    strcmp(stype, "raw") != 0 && strcmp(stype, "seqpacket") != 0 &&
	    strcmp(stype, "rdm") != 0) {
		diag_error(cv, &st->at, "socket_type = %s: expected stream, dgram, raw, seqpacket "
		    "or rdm", stype);
		e->bad = 1;
	}
	if (proto != NULL && getprotobyname(proto) == NULL &&
	    strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
		diag_error(cv, &pr->at, "protocol = %s: not in /etc/protocols", proto);
		e->bad = 1;
	}
	if (stype == NULL && proto != NULL)
		stype = strcmp(proto, "udp") == 0 ? "dgram" : "stream";
	if (proto == NULL && stype != NULL)
		proto = strcmp(stype, "dgram") == 0 ? "udp" : "tcp";
	if (stype != NULL && proto != NULL &&
	    ((strcmp(stype, "stream") == 0 && strcmp(proto, "udp") == 0) ||
	    (strcmp(stype, "dgram") == 0 && strcmp(proto, "tcp") == 0))) {
		diag_error(cv, &pr->at, "socket_type %s does not go with protocol %s", stype, proto);
		e->bad = 1;
	}
	sv->stype = stype;
	sv->proto = proto;
}

/* What xinetd itself requires of an entry, as errors. */
static void
check_required(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct entry *e = sv->e;

	check_socket(sv);
	if (!e->a[A_WAIT].set) {
		diag_error(cv, &e->at, "service %s: wait is missing", e->name);
		e->bad = 1;
	}
	sv->wait = yes_no(cv, e, A_WAIT, 0);
	sv->disable = yes_no(cv, e, A_DISABLE, 0);
	yes_no(cv, e, A_GROUPS, 0);
	if (!(sv->types & T_INTERNAL) && !e->a[A_REDIRECT].set && !(sv->flags & F_SENSOR) &&
	    !(sv->types & T_RPC)) {
		if (!e->a[A_SERVER].set) {
			diag_error(cv, &e->at, "service %s: server is missing", e->name);
			e->bad = 1;
		}
		if (!e->a[A_USER].set) {
			diag_error(cv, &e->at, "service %s: user is missing (xinetd requires it "
			    "for a server)", e->name);
			e->bad = 1;
		}
		if ((sv->flags & F_NAMEINARGS) && (!e->a[A_SERVER_ARGS].set ||
		    e->a[A_SERVER_ARGS].w.n == 0)) {
			diag_error(cv, &e->a[A_FLAGS].at, "service %s: NAMEINARGS needs "
			    "server_args (their first word is argv[0])", e->name);
			e->bad = 1;
		}
	}
	if (e->a[A_PORT].set) {
		long p = text_number(e->a[A_PORT].w.v[0], 65535);

		if (p < 1 || p > 65535) {
			diag_error(cv, &e->a[A_PORT].at, "port = %s: expected a number from 1 to "
			    "65535", e->a[A_PORT].w.v[0]);
			e->bad = 1;
		}
		sv->port = (unsigned)p;
	}
	/*
	 * The values that are checked as they are written, checked now, so that
	 * an entry with one mistake has all its mistakes reported at once.
	 */
	yes_no(cv, e, A_V6ONLY, 0);
	limits_check(cv, e);
}

/* A service porterd has no form for is left out: -1. Finds the builtin. */
static int
check_porterd_form(struct svc *sv)
{
	struct entry *e = sv->e;
	const struct slot *st = &e->a[A_SOCKET_TYPE], *pr = &e->a[A_PROTOCOL];
	const char *proto = sv->proto;

	if (sv->types & T_RPC)
		return left_out(sv, &e->a[A_TYPE].at, "type = RPC",
		    "porterd does not register RPC services with rpcbind"), -1;
	if (e->a[A_REDIRECT].set)
		return left_out(sv, &e->a[A_REDIRECT].at, "redirect",
		    "porterd does not forward connections to another host"), -1;
	if (sv->flags & F_SENSOR)
		return left_out(sv, &e->a[A_FLAGS].at, "flags = SENSOR",
		    "porterd has no sensor that denies the addresses that touch a port"), -1;
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		return left_out(sv, pr->set ? &pr->at : &e->at, "protocol",
		    "porterd serves tcp and udp only"), -1;
	if (strcmp(sv->stype, "stream") != 0 && strcmp(sv->stype, "dgram") != 0)
		return left_out(sv, st->set ? &st->at : &e->at, "socket_type",
		    "porterd serves stream and dgram sockets only"), -1;
	if (sv->types & T_INTERNAL) {
		for (const char *const *b = builtin_names; *b != NULL; b++)
			if (strcmp(*b, e->name) == 0)
				sv->builtin = *b;
		if (sv->builtin == NULL)
			return left_out(sv, &e->a[A_TYPE].at, "type = INTERNAL",
			    "porterd's builtins are echo, discard, daytime, chargen, time and "
			    "tcpmux (its status builtin lists its services)"), -1;
		if (strcmp(sv->builtin, "tcpmux") == 0 && strcmp(proto, "tcp") != 0)
			return left_out(sv, &e->a[A_TYPE].at, "type = INTERNAL",
			    "tcpmux is a tcp service"), -1;
	} else if (strcmp(proto, "udp") == 0 && !sv->wait) {
		return left_out(sv, &e->a[A_WAIT].at, "wait = no",
		    "porterd starts a udp handler with wait = yes only, giving it the socket"), -1;
	}
	if (sv->types & T_TCPMUX) {
		size_t n = strlen(e->name);
		int ok = n >= 1 && n <= TCPMUX_NAME_LIMIT && strcasecmp(e->name, "HELP") != 0;

		for (const char *p = e->name; *p != '\0'; p++)
			if (!name_char((unsigned char)*p) && *p != '+')
				ok = 0;
		if (!ok)
			return left_out(sv, &e->a[A_TYPE].at, "type = TCPMUX", "porterd's "
			    "tcpmux names are 1 to 64 letters, digits, '.', '-', '_' and '+', "
			    "and not HELP"), -1;
		if (strcmp(proto, "tcp") != 0 || sv->wait)
			return left_out(sv, &e->a[A_TYPE].at, "type = TCPMUX",
			    "a tcpmux service is tcp with wait = no"), -1;
	}
	if (!sv->builtin) {
		const char *server = e->a[A_SERVER].w.v[0];

		if (server[0] != '/')
			return left_out(sv, &e->a[A_SERVER].at, "server", "porterd needs an "
			    "absolute path"), -1;
		if (strlen(server) > LINE_LIMIT - 8)
			return left_out(sv, &e->a[A_SERVER].at, "server", "the path is too long "
			    "for a line of porterd's files"), -1;
	}
	return 0;
}

/* An IP address and port (ip: 4 or 16 bytes in network order) as a listen address. */
static void
set_addr(struct addr *a, int family, const void *ip, unsigned port, int dualstack)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	a->dualstack = dualstack;
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, ip, sizeof(sin->sin_addr));
		a->len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		memcpy(&sin6->sin6_addr, ip, sizeof(sin6->sin6_addr));
		a->len = sizeof(*sin6);
	}
}

/*
 * The listen address: bind (or interface) if given, else every address. xinetd
 * opens an IPv6 socket that takes IPv4 too, unless the IPv4 flag asks for IPv4
 * only or v6only = yes for IPv6 only.
 */
static int
listen_of(struct svc *sv)
{
	static const unsigned char any[16];
	struct conv *cv = sv->cv;
	const struct slot *bind = own_or_default(cv, sv->e, A_BIND);
	const struct slot *v6s = own_or_default(cv, sv->e, A_V6ONLY);
	int v6only = v6s != NULL && strcmp(v6s->w.v[0], "yes") == 0;
	struct addrinfo hints, *res;
	char ip[INET6_ADDRSTRLEN];
	unsigned char a[16];
	int rc;

	if (v6s != NULL && !v6only && strcmp(v6s->w.v[0], "no") != 0) {
		diag_error(cv, &v6s->at, "v6only = %s: expected yes or no", v6s->w.v[0]);
		return -1;
	}
	if (bind == NULL) {
		if ((sv->flags & F_IPV4) && !(sv->flags & F_IPV6))
			set_addr(&sv->listen, AF_INET, any, sv->port, 0);
		else
			set_addr(&sv->listen, AF_INET6, any, sv->port, !v6only);
		return 0;
	}
	if (inet_pton(AF_INET, bind->w.v[0], a) == 1) {
		set_addr(&sv->listen, AF_INET, a, sv->port, 0);
		return 0;
	}
	if (inet_pton(AF_INET6, bind->w.v[0], a) == 1) {
		set_addr(&sv->listen, AF_INET6, a, sv->port, memcmp(a, any, 16) == 0 && !v6only);
		return 0;
	}
	/* xinetd looks the name up once, at start; so do we, here. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = (sv->flags & F_IPV6) ? AF_INET6 : (sv->flags & F_IPV4) ? AF_INET :
	    AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(bind->w.v[0], NULL, &hints, &res)) != 0) {
		diag_error(cv, &bind->at, "bind = %s: %s (porterd listens on numeric addresses "
		    "only)", bind->w.v[0], gai_strerror(rc));
		return -1;
	}
	if (res->ai_family == AF_INET) {
		const struct in_addr *in = &((struct sockaddr_in *)res->ai_addr)->sin_addr;

		inet_ntop(AF_INET, in, ip, sizeof(ip));
		set_addr(&sv->listen, AF_INET, in, sv->port, 0);
	} else {
		const struct in6_addr *in6 = &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;

		inet_ntop(AF_INET6, in6, ip, sizeof(ip));
		set_addr(&sv->listen, AF_INET6, in6, sv->port, 0);
	}
	freeaddrinfo(res);
	diag_info(cv, &bind->at, "service %s: bind = %s: looked up here as %s; porterd takes "
	    "numeric addresses only", sv->e->name, bind->w.v[0], ip);
	return 0;
}

/* The port, as xinetd finds it, and the listen address; a tcpmux service has neither. */
static int
find_listen(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct entry *e = sv->e;
	const struct slot *s;

	if (sv->types & T_TCPMUX) {
		if ((s = own_or_default(cv, e, A_BIND)) != NULL && s == &e->a[A_BIND])
			diag_not_carried(cv, &sv->tail, &s->at, e->name, "bind", "a tcpmux service "
			    "is reached through the socket of porterd's tcpmux builtin");
		return 0;
	}
	if (sv->port == 0 && (sv->types & T_UNLISTED) && !sv->builtin) {
		diag_error(cv, &e->at, "service %s: type UNLISTED needs a port", e->name);
		e->bad = 1;
		return -1;
	}
	if (sv->port == 0) {
		struct servent *se = getservbyname(e->name, sv->proto);

		if (se == NULL) {
			diag_error(cv, &e->at, "service %s: no port: %s/%s is not in /etc/services; "
			    "give port =", e->name, e->name, sv->proto);
			e->bad = 1;
			return -1;
		}
		sv->port = ntohs((unsigned short)se->s_port);
	}
	if (listen_of(sv) < 0) {
		e->bad = 1;
		return -1;
	}
	sv->has_listen = 1;
	return 0;
}

/* Enabled: disable, the DISABLE flag, the defaults' two lists, and an earlier service. */
static void
enabled_state(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct entry *e = sv->e;
	const struct entry *d = cv->defaults;

	sv->enabled = 1;
	if (sv->disable) {
		emit_commentf(&sv->tail, "disable = yes (%s:%d): converted, with enabled = no.",
		    e->a[A_DISABLE].at.file, e->a[A_DISABLE].at.line);
		sv->enabled = 0;
	} else if (sv->flags & F_DISABLE) {
		emit_commentf(&sv->tail, "flags DISABLE (%s:%d): converted, with enabled = no.",
		    e->a[A_FLAGS].at.file, e->a[A_FLAGS].at.line);
		sv->enabled = 0;
	}
	if (d != NULL) {
		for (size_t i = 0; sv->enabled && i < d->disabled.n; i++)
			if (strcmp(d->disabled.v[i].s, sv->id) == 0) {
				emit_commentf(&sv->tail, "listed in the defaults' disabled (%s:%d): "
				    "converted, with enabled = no.", d->disabled.v[i].at.file,
				    d->disabled.v[i].at.line);
				sv->enabled = 0;
			}
		if (sv->enabled && d->enabled.present) {
			size_t i;

			for (i = 0; i < d->enabled.n; i++)
				if (strcmp(d->enabled.v[i].s, sv->id) == 0)
					break;
			if (i == d->enabled.n) {
				emit_commentf(&sv->tail, "not listed in the defaults' enabled "
				    "(%s:%d): converted, with enabled = no.",
				    d->enabled.n ? d->enabled.v[0].at.file : d->at.file,
				    d->enabled.n ? d->enabled.v[0].at.line : d->at.line);
				sv->enabled = 0;
			}
		}
	}
	/* xinetd runs one of two enabled entries on the same socket; porterd neither. */
	for (size_t i = 0; sv->enabled && sv->has_listen && i < cv->nwritten; i++) {
		const struct written *w = &cv->written[i];
		char text[ADDR_TEXT_MAX];

		if (!w->enabled || !w->has_listen || !addr_same(&w->listen, &sv->listen) ||
		    strcmp(w->proto, sv->proto) != 0)
			continue;
		addr_format(&sv->listen, text, sizeof(text));
		emit_commentf(&sv->tail, "[%s] (%s:%d) listens on %s/%s already; xinetd disables "
		    "this entry, so it is written with enabled = no.", w->section, w->e->at.file,
		    w->e->at.line, text, sv->proto);
		diag_info(cv, &e->at, "service %s: [%s] listens on %s/%s already: written with "
		    "enabled = no, as xinetd disables the second", e->name, w->section, text,
		    sv->proto);
		sv->enabled = 0;
	}
}

/* Where and how porterd takes the service's connections. */
static void
socket_keys(struct svc *sv)
{
	if (sv->has_listen) {
		char text[ADDR_TEXT_MAX];

		addr_format(&sv->listen, text, sizeof(text));
		emit_key(&sv->keys, "listen", text);
	} else {
		emit_key(&sv->keys, "tcpmux", sv->e->name);
	}
	emit_key(&sv->keys, "protocol", sv->proto);
	if (!sv->builtin)
		emit_key(&sv->keys, "wait", sv->wait ? "yes" : "no");
	if (!sv->enabled)
		emit_key(&sv->keys, "enabled", "no");
	if (sv->types & T_TCPMUXPLUS)
		emit_key(&sv->keys, "tcpmux_ack", "yes");
}

static void
limit_keys(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct entry *e = sv->e;

	limits_instances(cv, e, scalar_for(cv, e, A_INSTANCES), &sv->keys, &sv->tail, e->name);
	limits_per_source(cv, e, own_or_default(cv, e, A_PER_SOURCE), sv->wait && !sv->builtin,
	    &sv->keys, &sv->tail);
	limits_cps(cv, e, scalar_for(cv, e, A_CPS), &sv->keys, &sv->tail, e->name);
	limits_umask(cv, e, scalar_for(cv, e, A_UMASK), &sv->keys);
	limits_nice(cv, e, &sv->keys, &sv->tail);
	limits_rlimits(cv, e, &sv->keys);
}

/* The flags and attributes of the entry that porterd has no equivalent for. */
static void
not_carried_notes(struct svc *sv)
{
	struct entry *e = sv->e;

	for (size_t i = 0; i < sizeof(flag_defs) / sizeof(flag_defs[0]); i++)
		if ((sv->flags & flag_defs[i].bit) && flag_defs[i].why != NULL)
			diag_not_carried(sv->cv, &sv->tail, &e->a[A_FLAGS].at, e->name,
			    flag_defs[i].name, "%s", flag_defs[i].why);
	plain_not_carried(sv->cv, e, &sv->tail, e->name);
}

/* The section into its source's output, and into the services written. */
static void
write_service(struct svc *sv)
{
	struct conv *cv = sv->cv;
	struct source *src = cv->src[sv->e->source];
	struct written *w;

	buf_add(&src->out, "\n%s[%s]\n%s%s", sv->head.s, sv->section, sv->keys.s,
	    sv->tail.s ? sv->tail.s : "");
	src->used = 1;
	cv->converted++;
	if (!sv->enabled)
		cv->disabled_count++;
	cv->written = xgrow(cv->written, cv->nwritten, &cv->capwritten, sizeof(*cv->written));
	w = &cv->written[cv->nwritten++];
	w->e = sv->e;
	snprintf(w->section, sizeof(w->section), "%s", sv->section);
	w->has_listen = sv->has_listen;
	w->listen = sv->listen;
	w->proto = sv->proto;
	w->enabled = sv->enabled;
}

void
map_service(struct conv *cv, struct entry *e)
{
	struct svc sv = { .cv = cv, .e = e };
	size_t nerr;

	sv.id = e->a[A_ID].set ? e->a[A_ID].w.v[0] : e->name;
	sv.types = types_of(cv, e);
	sv.flags = flags_of(cv, e);
	nerr = cv->nerrors;
	check_required(&sv);
	if (e->bad || cv->nerrors > nerr)
		goto out;
	if (check_porterd_form(&sv) < 0 || find_listen(&sv) < 0)
		goto out;

	section_name(cv, e, sv.section, sizeof(sv.section));
	emit_commentf(&sv.head, "xinetd service %s%s%s%s, %s:%d", e->name,
	    e->a[A_ID].set ? " (id " : "", e->a[A_ID].set ? sv.id : "",
	    e->a[A_ID].set ? ")" : "", e->at.file, e->at.line);
	enabled_state(&sv);
	socket_keys(&sv);
	if (sv.builtin) {
		handler_builtin(cv, e, sv.builtin, &sv.keys, &sv.tail);
	} else if (handler_server(cv, e, sv.flags & F_NAMEINARGS, &sv.keys) < 0) {
		left_out(&sv, &e->a[A_SERVER_ARGS].at, "server_args", "a word is too long for a "
		    "line of porterd's files");
		goto out;
	}
	handler_user(cv, e, &sv.keys, &sv.tail);
	if (!sv.builtin)
		handler_env(cv, e, &sv.keys, &sv.tail);
	access_keys(cv, e, sv.wait && !sv.builtin, &sv.keys, &sv.tail);
	limit_keys(&sv);
	not_carried_notes(&sv);
	if (e->bad || cv->nerrors > nerr)
		goto out;
	write_service(&sv);
out:
	free(sv.keys.s);
	free(sv.tail.s);
	free(sv.head.s);
}

/*
 * xinetd's defaults. What every porterd service can take (instances, cps,
 * umask) goes into a [defaults] section; what porterd refuses in some
 * services when inherited (only_from, no_access and per_source on wait = yes
 * services), and what porterd has no [defaults] form for (bind, v6only,
 * passenv), is written into each service instead.
 */
void
map_defaults(struct conv *cv, const char *fold_why)
{
	struct entry *d = cv->defaults;
	struct buf keys = { 0 }, tail = { 0 };
	struct buf *out = &cv->defaults_out;

	if (d == NULL)
		return;
	emit_commentf(out, "xinetd defaults, %s:%d", d->at.file, d->at.line);
	if (cv->fold) {
		emit_commentf(out, "%s has a [defaults] section already: instances, cps and umask "
		    "of the xinetd defaults are written into each service.", fold_why);
		diag_info(cv, &d->at, "defaults: %s has a [defaults] section already: written "
		    "into each service instead", fold_why);
	} else {
		limits_instances(cv, NULL, d->a[A_INSTANCES].set ? &d->a[A_INSTANCES] : NULL,
		    &keys, &tail, NULL);
		limits_cps(cv, NULL, d->a[A_CPS].set ? &d->a[A_CPS] : NULL, &keys, &tail, NULL);
		limits_umask(cv, NULL, d->a[A_UMASK].set ? &d->a[A_UMASK] : NULL, &keys);
	}
	if (d->only_from.present || d->no_access.present || d->passenv.present ||
	    d->a[A_BIND].set || d->a[A_V6ONLY].set || d->a[A_PER_SOURCE].set)
		emit_comment(&tail, "only_from, no_access, per_source, passenv, bind and v6only of "
		    "the xinetd defaults are written into each service they apply to.");
	if (d->disabled.n > 0 || d->enabled.present)
		emit_comment(&tail, "The services the defaults' disabled names, or its enabled does "
		    "not name, are written with enabled = no.");
	if (d->a[A_GROUPS].set && strcmp(d->a[A_GROUPS].w.v[0], "no") == 0)
		diag_not_carried(cv, &tail, &d->a[A_GROUPS].at, NULL, "groups = no", "porterd "
		    "gives a handler the supplementary groups of its user");
	else if (d->a[A_GROUPS].set && strcmp(d->a[A_GROUPS].w.v[0], "yes") != 0)
		diag_error(cv, &d->a[A_GROUPS].at, "groups = %s: expected yes or no",
		    d->a[A_GROUPS].w.v[0]);
	plain_not_carried(cv, d, &tail, NULL);
	/* A name in disabled or enabled that no entry has is likely a typo. */
	for (int k = 0; k < 2; k++) {
		const struct items *l = k == 0 ? &d->disabled : &d->enabled;

		for (size_t i = 0; i < l->n; i++) {
			size_t j;

			for (j = 0; j < cv->nsvc; j++) {
				const struct entry *e = cv->svc[j];
				const char *id = e->a[A_ID].set ? e->a[A_ID].w.v[0] : e->name;

				if (strcmp(id, l->v[i].s) == 0)
					break;
			}
			if (j == cv->nsvc)
				diag_info(cv, &l->v[i].at, "defaults: warning: %s names %s, which is "
				    "no service's id", k == 0 ? "disabled" : "enabled", l->v[i].s);
		}
	}
	if (keys.len > 0)
		buf_add(out, "[defaults]\n%s", keys.s);
	if (tail.len > 0)
		buf_add(out, "%s", tail.s);
	else if (keys.len == 0)
		emit_comment(out, "Nothing in them to carry over.");
	free(keys.s);
	free(tail.s);
}
