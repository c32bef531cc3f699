/*
 * inetd_conf: the classic inetd.conf (-i FILE), in the dialect of Debian's
 * openbsd-inetd, read into the same raw sections as services.d. Each line that
 * porterd can serve becomes a section of porterd keys, every entry at the
 * line's FILE:LINE, so that one builder and one set of checks serve both
 * formats. Lines porterd cannot serve are told to the notes and left out.
 *
 *	[host:]service socktype proto[,sndbuf=N][,rcvbuf=N] wait|nowait[.max]
 *	    user[.group|:group] server|internal [argv0 args...]
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "args.h"
#include "config_raw.h"

#define FIELDS_MAX 64
/* Room for a derived name and its suffixes within NAME_MAX_LEN. */
#define BASE_NAME_MAX 28

/* One logical line: a line and the blank-led lines that continue it. */
struct logical {
	char	*text;
	size_t	 len, cap;
	int	 line;		/* of its first physical line */
};

struct line_ctx {
	struct raw	*raw;
	struct where	 at;
	char		*field[FIELDS_MAX];
	int		 nfield;
	const char	*host;		/* from the line's host: prefix, or the default */
};

static void
note(struct line_ctx *c, const char *service, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
note(struct line_ctx *c, const char *service, const char *fmt, ...)
{
	va_list ap;

	if (c->raw->notes == NULL)
		return;
	fprintf(c->raw->notes, "%s:%d: %s: ", c->at.file, c->at.line, service);
	va_start(ap, fmt);
	vfprintf(c->raw->notes, fmt, ap);
	va_end(ap);
	fputc('\n', c->raw->notes);
}

/* Room for `need` bytes in a growing text. */
static char *
text_room(char *p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return p;
	*cap = need < 2 * *cap ? 2 * *cap : need + 64;
	if ((p = realloc(p, *cap)) == NULL)
		abort();
	return p;
}

static void
add(struct section *sec, struct line_ctx *c, const char *key, const char *value)
{
	section_add(sec, key, value, &c->at, 0);
}

/* "tcp4" → family AF_INET, "udp" → any family (dual stack), and the socket type. */
struct proto {
	const char	*name;
	int		 socktype;
	int		 family;	/* AF_UNSPEC: IPv4 and IPv6 */
};

static const struct proto protos[] = {
	{ "tcp", SOCK_STREAM, AF_UNSPEC }, { "tcp4", SOCK_STREAM, AF_INET },
	{ "tcp6", SOCK_STREAM, AF_INET6 }, { "tcp46", SOCK_STREAM, AF_UNSPEC },
	{ "udp", SOCK_DGRAM, AF_UNSPEC }, { "udp4", SOCK_DGRAM, AF_INET },
	{ "udp6", SOCK_DGRAM, AF_INET6 }, { "udp46", SOCK_DGRAM, AF_UNSPEC },
	{ "unix", SOCK_STREAM, AF_UNIX },
};

static const struct proto *
proto_find(const char *name)
{
	for (size_t i = 0; i < sizeof(protos) / sizeof(*protos); i++)
		if (strcmp(protos[i].name, name) == 0)
			return &protos[i];
	return NULL;
}

/*
 * A section name from a service field: letters, digits, '.', '-' and '_' as in
 * services.d, never "defaults", and unique: then NAME-PROTO, NAME-PROTO-LINE...
 */
static void
derive_name(struct raw *raw, const char *service, const char *proto, int line, char *out,
    size_t outlen)
{
	char base[BASE_NAME_MAX + 1];
	size_t n = 0;

	for (const char *p = service; *p != '\0' && n < BASE_NAME_MAX; p++)
		base[n++] = isalnum((unsigned char)*p) || strchr("_.-", *p) ? *p : '_';
	base[n] = '\0';
	snprintf(out, outlen, "%s", base);
	if (strcmp(out, "defaults") != 0 && raw_find(raw, out) == NULL)
		return;
	snprintf(out, outlen, "%s-%s", base, proto);
	if (raw_find(raw, out) == NULL)
		return;
	snprintf(out, outlen, "%s-%s-%d", base, proto, line);
	for (int i = 2; raw_find(raw, out) != NULL; i++)
		snprintf(out, outlen, "%s-%s-%d-%d", base, proto, line, i);
}

/* A services.d section of the service's name replaces the line. */
static int
replaced(struct line_ctx *c, const char *service)
{
	const struct section *s = raw_find(c->raw, service);

	/* Names are unique: a section from an earlier line means none from services.d. */
	if (s == NULL || s->from_inetd)
		return 0;
	note(c, service, "replaced by [%s] at %s:%d", s->name, s->at.file, s->at.line);
	return 1;
}

static const char *const internal_names[] = {
	"echo", "discard", "daytime", "chargen", "time", "tcpmux", NULL
};

/*
 * The listen addresses of one line: each host of a comma-separated list (a name
 * may give several addresses), in the family the protocol allows.
 */
static int
listen_addresses(struct line_ctx *c, const struct proto *pr, unsigned port,
    char out[][ADDR_TEXT_MAX], int max)
{
	char hosts[256], *save = NULL, *h;
	int n = 0;

	/* Cut short, a list would end in another address than the one written. */
	if (strlen(c->host) >= sizeof(hosts)) {
		config_error(c->raw->errs, &c->at, "host list longer than %zu characters",
		    sizeof(hosts) - 1);
		return -1;
	}
	snprintf(hosts, sizeof(hosts), "%s", c->host);
	for (h = strtok_r(hosts, ",", &save); h != NULL; h = strtok_r(NULL, ",", &save)) {
		struct addrinfo hints, *res, *ai;
		size_t hl = strlen(h);
		int r;

		if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
			h[hl - 1] = '\0';
			h++;
		}
		if (strcmp(h, "*") == 0) {
			if (n == max)
				goto too_many;
			snprintf(out[n++], ADDR_TEXT_MAX, pr->family == AF_INET ? "0.0.0.0:%u" :
			    pr->family == AF_INET6 ? "[::]:%u" : "*:%u", port);
			continue;
		}
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = pr->family;
		hints.ai_socktype = pr->socktype;
		hints.ai_flags = AI_NUMERICHOST;
		if ((r = getaddrinfo(h, NULL, &hints, &res)) == EAI_NONAME) {
			hints.ai_flags = AI_ADDRCONFIG;
			r = getaddrinfo(h, NULL, &hints, &res);
		}
		if (r != 0) {
			config_error(c->raw->errs, &c->at, "host %s: %s%s", h, gai_strerror(r),
			    pr->family == AF_INET ? " (for IPv4)" : pr->family == AF_INET6 ?
			    " (for IPv6)" : "");
			return -1;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			char ip[INET6_ADDRSTRLEN], text[ADDR_TEXT_MAX];
			int dup = 0;

			if (ai->ai_family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
				    ip, sizeof(ip));
			else if (ai->ai_family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
				    ip, sizeof(ip));
			else
				continue;
			snprintf(text, sizeof(text), ai->ai_family == AF_INET6 ? "[%s]:%u" :
			    "%s:%u", ip, port);
			for (int i = 0; i < n; i++)
				dup |= strcmp(out[i], text) == 0;
			if (dup)
				continue;
			if (n == max) {
				freeaddrinfo(res);
				goto too_many;
			}
			memcpy(out[n++], text, sizeof(text));
		}
		freeaddrinfo(res);
	}
	return n;
too_many:
	config_error(c->raw->errs, &c->at, "host list gives more than %d addresses", max);
	return -1;
}

/* "user", "user.group" or "user:group"; a user name with a dot in it wins. */
static void
split_user(char *field, char **user, char **group)
{
	char *sep = strchr(field, ':');

	if (sep == NULL && (sep = strchr(field, '.')) != NULL && getpwnam(field) != NULL)
		sep = NULL;
	*user = field;
	*group = NULL;
	if (sep != NULL) {
		*sep = '\0';
		*group = sep + 1;
	}
}

static void
serve_line(struct line_ctx *c)
{
	char **f = c->field, *service = f[0], *proto_text = f[2], *opts, *user, *group;
	char addrs[16][ADDR_TEXT_MAX], name[NAME_MAX_LEN + 1], *tcpmux = NULL;
	const char *base;
	const struct proto *pr;
	unsigned long max = 0;
	unsigned port = 0;
	int wait, internal, socktype, naddr;

	if ((opts = strchr(proto_text, ',')) != NULL) {
		*opts++ = '\0';
		note(c, service, "%s ignored: porterd sets no socket buffer sizes", opts);
	}
	if (strncmp(proto_text, "rpc/", 4) == 0 ||
	    (strchr(service, '/') != NULL && strcmp(proto_text, "unix") != 0)) {
		if (strncmp(service, "tcpmux/", 7) != 0) {
			note(c, service, "skipped (RPC services are not supported)");
			return;
		}
		tcpmux = service + 7;
		service = tcpmux + (*tcpmux == '+');
	}
	if (strcmp(f[1], "stream") == 0)
		socktype = SOCK_STREAM;
	else if (strcmp(f[1], "dgram") == 0)
		socktype = SOCK_DGRAM;
	else {
		note(c, service, "skipped (socket type %s is not supported)", f[1]);
		return;
	}
	if ((pr = proto_find(proto_text)) == NULL) {
		config_error(c->raw->errs, &c->at, "%s: protocol %s: expected tcp, tcp4, tcp6, "
		    "tcp46, udp, udp4, udp6, udp46 or unix", service, proto_text);
		return;
	}
	if (pr->family == AF_UNIX && socktype == SOCK_DGRAM) {
		note(c, service, "skipped (unix datagram sockets are not supported)");
		return;
	}
	if (pr->family != AF_UNIX && pr->socktype != socktype) {
		config_error(c->raw->errs, &c->at, "%s: socket type %s does not go with "
		    "protocol %s", service, f[1], proto_text);
		return;
	}
	if (strncmp(f[3], "nowait", 6) == 0)
		wait = 0;
	else if (strncmp(f[3], "wait", 4) == 0)
		wait = 1;
	else
		wait = -1;
	if (wait >= 0) {
		const char *rest = f[3] + (wait ? 4 : 6);
		char *end;

		if (*rest == '.') {
			errno = 0;
			max = strtoul(rest + 1, &end, 10);
			if (!isdigit((unsigned char)rest[1]) || *end != '\0' || errno != 0 ||
			    max == 0 || max > 1000000)
				wait = -1;
		} else if (*rest != '\0') {
			wait = -1;
		}
	}
	if (wait < 0) {
		config_error(c->raw->errs, &c->at, "%s: %s: expected wait or nowait, with "
		    "an optional .MAX (starts per minute, 1 to 1000000)", service, f[3]);
		return;
	}
	internal = strcmp(f[5], "internal") == 0;
	if (!internal && f[5][0] != '/') {
		config_error(c->raw->errs, &c->at, "%s: server %s: expected an absolute path "
		    "or internal", service, f[5]);
		return;
	}
	/*
	 * Other packages write this file: a line left behind by one that was
	 * removed must not keep porterd, and every other service, from starting.
	 */
	if (!internal && access(f[5], F_OK) < 0) {
		note(c, service, "skipped (%s: %s)", f[5], strerror(errno));
		return;
	}
	if (socktype == SOCK_DGRAM && !wait && !internal) {
		note(c, service, "skipped (dgram nowait handlers are not supported; porterd "
		    "runs udp handlers with wait)");
		return;
	}
	if (internal) {
		const char *const *n = internal_names;

		while (*n != NULL && strcmp(*n, service) != 0)
			n++;
		if (*n == NULL || tcpmux != NULL) {
			config_error(c->raw->errs, &c->at, "%s: no such internal service (porterd "
			    "has echo, discard, daytime, chargen, time and tcpmux)", service);
			return;
		}
	}
	if (pr->family == AF_UNIX && service[0] != '/') {
		config_error(c->raw->errs, &c->at, "%s: a unix service is the socket's "
		    "absolute path", service);
		return;
	}
	base = pr->family == AF_UNIX ? strrchr(service, '/') + 1 : service;
	if (replaced(c, base))
		return;

	if (pr->family == AF_UNIX) {
		snprintf(addrs[0], ADDR_TEXT_MAX, "unix:%s", service);
		naddr = 1;
	} else if (tcpmux != NULL) {
		naddr = 1;	/* reached through the tcpmux builtin: no socket of its own */
	} else {
		char *end;
		unsigned long n;

		errno = 0;
		n = strtoul(service, &end, 10);
		if (isdigit((unsigned char)service[0]) && *end == '\0' && errno == 0 && n > 0 &&
		    n <= 65535) {
			port = (unsigned)n;
		} else {
			struct servent *se = getservbyname(service, socktype == SOCK_STREAM ?
			    "tcp" : "udp");

			if (se == NULL) {
				config_error(c->raw->errs, &c->at, "%s: no such %s service in "
				    "/etc/services, and not a port number", service,
				    socktype == SOCK_STREAM ? "tcp" : "udp");
				return;
			}
			port = ntohs((uint16_t)se->s_port);
		}
		if ((naddr = listen_addresses(c, pr, port, addrs, 16)) <= 0)
			return;
	}

	split_user(f[4], &user, &group);
	for (int i = 0; i < naddr; i++) {
		struct section *sec;
		char value[64];

		derive_name(c->raw, base, proto_text, c->at.line, name, sizeof(name));
		sec = raw_section_new(c->raw, name, &c->at);
		sec->from_inetd = 1;
		if (tcpmux != NULL) {
			add(sec, c, "tcpmux", service);
			if (tcpmux[0] == '+')
				add(sec, c, "tcpmux_ack", "yes");
		} else {
			add(sec, c, "listen", addrs[i]);
		}
		if (pr->family != AF_UNIX)
			add(sec, c, "protocol", socktype == SOCK_STREAM ? "tcp" : "udp");
		if (max != 0) {
			snprintf(value, sizeof(value), "%lu/60", max);
			add(sec, c, "rate", value);
		}
		if (internal) {
			/* Served by porterd itself: no process, so no wait and no user. */
			add(sec, c, "builtin", service);
			continue;
		}
		add(sec, c, "wait", wait ? "yes" : "no");
		add(sec, c, "user", user);
		if (group != NULL)
			add(sec, c, "group", group);
		add(sec, c, "exec", f[5]);
		if (c->nfield > 6) {
			size_t len = 0, cap = 0;
			char *args = NULL;

			for (int w = 6; w < c->nfield; w++) {
				size_t need = 2 * strlen(f[w]) + 4;

				args = text_room(args, &cap, len + need + 1);
				if (len == 0)
					args[0] = '\0';
				args_quote(args + len, need, f[w]);
				len += strlen(args + len);
				args[len++] = ' ';
				args[len] = '\0';
			}
			args[len - 1] = '\0';
			add(sec, c, "args", args);
			free(args);
		}
	}
}

static void
parse_line(struct raw *raw, const char *file, struct logical *l, const char **default_host)
{
	struct line_ctx c;
	char *save = NULL, *w, *colon;

	memset(&c, 0, sizeof(c));
	c.raw = raw;
	c.at.file = file;
	c.at.line = l->line;
	for (w = strtok_r(l->text, " \t", &save); w != NULL; w = strtok_r(NULL, " \t", &save)) {
		if (c.nfield == FIELDS_MAX) {
			config_error(raw->errs, &c.at, "more than %d fields", FIELDS_MAX);
			return;
		}
		c.field[c.nfield++] = w;
	}
	if (c.nfield == 0)
		return;
	/* host:service, or a lone "host:" that sets the host of the lines after it. */
	c.host = *default_host;
	if (c.field[0][0] != '/' && (colon = strrchr(c.field[0], ':')) != NULL) {
		*colon = '\0';
		if (c.field[0][0] == '\0') {
			config_error(raw->errs, &c.at, "empty host before ':'");
			return;
		}
		if (c.nfield == 1 && colon[1] == '\0') {
			free((char *)*default_host);
			*default_host = config_strdup(c.field[0]);
			return;
		}
		c.host = c.field[0];
		c.field[0] = colon + 1;
	}
	if (c.nfield < 6) {
		config_error(raw->errs, &c.at, "expected at least 6 fields: service, socket "
		    "type, protocol, wait or nowait, user, server (and its arguments)");
		return;
	}
	serve_line(&c);
}

static void
logical_append(struct logical *l, const char *s)
{
	size_t n = strlen(s);

	l->text = text_room(l->text, &l->cap, l->len + n + 2);
	if (l->len > 0)
		l->text[l->len++] = ' ';
	memcpy(l->text + l->len, s, n + 1);
	l->len += n;
}

void
inetd_conf_read(struct raw *raw, const char *path)
{
	const char *file = config_keep_file(raw->cf, path);
	const char *default_host = config_strdup("*");
	struct logical l = { NULL, 0, 0, 0 };
	struct where at = { file, 0 };
	char *buf = NULL;
	size_t bufsz = 0;
	ssize_t len;
	int lineno = 0, errs_before = (int)raw->errs->n;
	FILE *f;

	if ((f = config_open(raw, file)) == NULL) {
		free((char *)default_host);
		return;
	}
	while ((len = getline(&buf, &bufsz, f)) >= 0) {
		char *s = buf;

		lineno++;
		if ((int)raw->errs->n - errs_before >= 50) {
			at.line = lineno;
			config_error(raw->errs, &at, "too many errors; the rest of the file is "
			    "not read");
			break;
		}
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		if ((size_t)len != strlen(buf)) {
			at.line = lineno;
			config_error(raw->errs, &at, "NUL byte in line");
			buf[0] = '\0';
		}
		for (char *p = buf; *p != '\0'; p++)
			if (*p == '\t')
				*p = ' ';
		while (*s == ' ')
			s++;
		/* A comment is '#' in the first column; "#<off># " lines are off. */
		if (buf[0] == '#' || *s == '\0') {
			if (l.len > 0)
				parse_line(raw, file, &l, &default_host);
			l.len = 0;
			continue;
		}
		if (s > buf && l.len > 0) {
			logical_append(&l, s);	/* a blank-led line continues the line */
			continue;
		}
		if (l.len > 0)
			parse_line(raw, file, &l, &default_host);
		l.len = 0;
		l.line = lineno;
		logical_append(&l, s);
	}
	if (ferror(f)) {
		at.line = lineno + 1;
		config_error(raw->errs, &at, "read error: %s", strerror(errno));
	} else if (l.len > 0) {
		parse_line(raw, file, &l, &default_host);
	}
	fclose(f);
	free(buf);
	free(l.text);
	free((char *)default_host);
}
