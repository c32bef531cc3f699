/*
 * porterd-xinetd: turn an xinetd configuration (xinetd.conf, and the files it
 * includes) into porterd services.d files. The whole input is read and checked
 * first; nothing is written unless all of it could be understood. What porterd
 * cannot do is said twice, as a comment in the output and on stderr, with the
 * FILE:LINE it came from, so that nothing is dropped silently.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* As porterd: 1 bad input, 100 usage, 111 the system (files, memory). */
#define EXIT_INPUT 1
#define EXIT_USAGE 100
#define EXIT_SYSTEM 111

/* porterd's limits: inih's line buffer, section names. */
#define LINE_LIMIT 198
#define NAME_LIMIT 48
#define TCPMUX_NAME_LIMIT 64
/* xinetd follows include loops until it runs out of descriptors; we stop. */
#define INCLUDE_DEPTH 16
/* Comments are wrapped here, well below LINE_LIMIT. */
#define COMMENT_WIDTH 90

struct where {
	const char	*file;
	int		 line;
};

struct buf {
	char	*s;
	size_t	 len, cap;
};

struct words {
	char	**v;
	size_t	  n, cap;
};

/* One value of a list attribute (env, passenv, disabled...), with its line. */
struct item {
	char		*s;
	struct where	 at;
};

struct items {
	struct item	*v;
	size_t		 n, cap;
	int		 present;	/* given, even with no value */
};

/* One entry of only_from or no_access. */
struct net {
	int		 family;	/* AF_INET, AF_INET6; 0: a name porterd cannot match */
	unsigned char	 a[16];
	int		 bits;
	char		*text;		/* as written */
	struct where	 at;
};

struct nets {
	struct net	*v;
	size_t		 n, cap;
	int		 present;
	struct where	 at;		/* the last assignment */
};

enum attr {
	A_SOCKET_TYPE, A_PROTOCOL, A_WAIT, A_USER, A_GROUP, A_SERVER, A_SERVER_ARGS,
	A_INSTANCES, A_TYPE, A_ID, A_PORT, A_FLAGS, A_NICE, A_BIND, A_PER_SOURCE,
	A_GROUPS, A_CPS, A_DISABLE, A_RLIMIT_AS, A_RLIMIT_CPU, A_RLIMIT_FILES,
	A_V6ONLY, A_UMASK,
	/* Attributes porterd has no equivalent for. */
	A_REDIRECT, A_BANNER, A_BANNER_SUCCESS, A_BANNER_FAIL, A_ACCESS_TIMES,
	A_LOG_TYPE, A_LOG_ON_SUCCESS, A_LOG_ON_FAILURE, A_RPC_VERSION, A_RPC_NUMBER,
	A_MAX_LOAD, A_DENY_TIME, A_MDNS, A_LIBWRAP, A_RLIMIT_DATA, A_RLIMIT_RSS,
	A_RLIMIT_STACK,
	/* Lists, kept apart. */
	A_ONLY_FROM, A_NO_ACCESS, A_ENV, A_PASSENV, A_DISABLED, A_ENABLED,
	A_COUNT
};

#define IN_SERVICE 1
#define IN_DEFAULTS 2
#define LIST -2		/* any number of values, and += and -= */
#define ANY -1		/* any number of values, = only */

static const struct attr_def {
	const char	*name;
	enum attr	 id;
	int		 nvalues;	/* exactly this many, or LIST, or ANY */
	int		 in;		/* IN_SERVICE | IN_DEFAULTS */
	const char	*why;		/* not carried over: why; NULL when it is */
} attr_defs[] = {
	{ "socket_type", A_SOCKET_TYPE, 1, IN_SERVICE, NULL },
	{ "protocol", A_PROTOCOL, 1, IN_SERVICE, NULL },
	{ "wait", A_WAIT, 1, IN_SERVICE, NULL },
	{ "user", A_USER, 1, IN_SERVICE, NULL },
	{ "group", A_GROUP, 1, IN_SERVICE, NULL },
	{ "server", A_SERVER, 1, IN_SERVICE, NULL },
	{ "server_args", A_SERVER_ARGS, ANY, IN_SERVICE, NULL },
	{ "instances", A_INSTANCES, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "type", A_TYPE, ANY, IN_SERVICE, NULL },
	{ "id", A_ID, 1, IN_SERVICE, NULL },
	{ "port", A_PORT, 1, IN_SERVICE, NULL },
	{ "flags", A_FLAGS, ANY, IN_SERVICE, NULL },
	{ "nice", A_NICE, 1, IN_SERVICE, NULL },
	{ "bind", A_BIND, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "interface", A_BIND, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "per_source", A_PER_SOURCE, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "groups", A_GROUPS, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "cps", A_CPS, 2, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "disable", A_DISABLE, 1, IN_SERVICE, NULL },
	{ "rlimit_as", A_RLIMIT_AS, 1, IN_SERVICE, NULL },
	{ "rlimit_cpu", A_RLIMIT_CPU, 1, IN_SERVICE, NULL },
	{ "rlimit_files", A_RLIMIT_FILES, 1, IN_SERVICE, NULL },
	{ "v6only", A_V6ONLY, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "umask", A_UMASK, 1, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "redirect", A_REDIRECT, 2, IN_SERVICE,
	    "porterd does not forward connections to another host" },
	{ "banner", A_BANNER, 1, IN_SERVICE | IN_DEFAULTS,
	    "porterd sends nothing of its own to a client" },
	{ "banner_success", A_BANNER_SUCCESS, 1, IN_SERVICE | IN_DEFAULTS,
	    "porterd sends nothing of its own to a client" },
	{ "banner_fail", A_BANNER_FAIL, 1, IN_SERVICE | IN_DEFAULTS,
	    "porterd closes a refused connection without sending anything" },
	{ "access_times", A_ACCESS_TIMES, ANY, IN_SERVICE,
	    "porterd has no time-of-day windows" },
	{ "log_type", A_LOG_TYPE, ANY, IN_SERVICE | IN_DEFAULTS,
	    "porterd logs to syslog (facility daemon), or to stderr with -f" },
	{ "log_on_success", A_LOG_ON_SUCCESS, LIST, IN_SERVICE | IN_DEFAULTS,
	    "porterd -v logs every connection with the client's address, and each "
	    "handler's pid, exit status and duration" },
	{ "log_on_failure", A_LOG_ON_FAILURE, LIST, IN_SERVICE | IN_DEFAULTS,
	    "porterd logs every refusal with the client's address, at most once per "
	    "10 seconds for each service and reason" },
	{ "rpc_version", A_RPC_VERSION, 1, IN_SERVICE,
	    "porterd does not register RPC services" },
	{ "rpc_number", A_RPC_NUMBER, 1, IN_SERVICE,
	    "porterd does not register RPC services" },
	{ "max_load", A_MAX_LOAD, 1, IN_SERVICE | IN_DEFAULTS,
	    "porterd does not watch the load average" },
	{ "deny_time", A_DENY_TIME, 1, IN_SERVICE,
	    "porterd has no SENSOR services that deny addresses for a time" },
	{ "mdns", A_MDNS, 1, IN_SERVICE,
	    "porterd does not register services with mDNS" },
	{ "libwrap", A_LIBWRAP, 1, IN_SERVICE,
	    "porterd does not use TCP wrappers (hosts.allow); use allow and deny" },
	{ "rlimit_data", A_RLIMIT_DATA, 1, IN_SERVICE,
	    "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc only" },
	{ "rlimit_rss", A_RLIMIT_RSS, 1, IN_SERVICE,
	    "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc only" },
	{ "rlimit_stack", A_RLIMIT_STACK, 1, IN_SERVICE,
	    "porterd sets rlimit_as, rlimit_cpu, rlimit_nofile and rlimit_nproc only" },
	{ "only_from", A_ONLY_FROM, LIST, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "no_access", A_NO_ACCESS, LIST, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "env", A_ENV, LIST, IN_SERVICE, NULL },
	{ "passenv", A_PASSENV, LIST, IN_SERVICE | IN_DEFAULTS, NULL },
	{ "disabled", A_DISABLED, LIST, IN_DEFAULTS, NULL },
	{ "enabled", A_ENABLED, LIST, IN_DEFAULTS, NULL },
};

/* A scalar attribute as written: its values and its line. */
struct slot {
	int		 set;
	struct where	 at;
	struct words	 w;
};

/* A service entry, or the defaults entry. */
struct entry {
	char		*name;		/* NULL for defaults */
	struct where	 at;
	size_t		 source;	/* index of the file it came from */
	int		 bad;		/* had an error: not converted */
	int		 cut;		/* ended by the end of its file */
	struct slot	 a[A_COUNT];
	struct nets	 only_from, no_access;
	struct items	 env, passenv, disabled, enabled;
	/* The not-carried list attributes: where they were last given. */
	struct where	 log_success_at, log_failure_at;
};

struct source {
	char		*path;
	struct buf	 out;		/* its services, for -o */
	int		 used;		/* something to write */
};

struct conv {
	struct source	**src;
	size_t		  nsrc, capsrc;
	struct entry	**svc;
	size_t		  nsvc, capsvc;
	struct entry	 *defaults;
	struct where	  defaults_at[8];	/* the files' defaults lines, for "only one" */
	struct buf	  errors, notes;
	size_t		  nerrors, nnotes;
	struct words	  taken;		/* section names in use */
	int		  fold;			/* put xinetd's defaults into each service */
	struct buf	  defaults_out;
	size_t		  converted, disabled_count, left_out;
	int		  have_defaults_section;
};

/* Names porterd sets or reserves in a handler's environment. */
static const char *const reserved_env[] = {
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"TCPREMOTEHOST", "TCPLOCALHOST", "TCPREMOTEINFO", "IPCLOCALPATH",
	"IPCREMOTEEUID", "IPCREMOTEEGID", "PORTERD_SERVICE", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", NULL
};

/* ---- memory and text ---- */

static void
die_nomem(void)
{
	fprintf(stderr, "porterd-xinetd: out of memory\n");
	exit(EXIT_SYSTEM);
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		die_nomem();
	return p;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		die_nomem();
	return d;
}

/* Make room for one more element of `size` bytes in *v (n used, *cap held). */
static void *
grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? 2 * *cap : 8;
	return xrealloc(v, *cap * size);
}

static void __attribute__((format(printf, 2, 3)))
buf_add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s == NULL ? NULL : b->s + b->len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			die_nomem();
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap + (size_t)n + 256;
		b->s = xrealloc(b->s, b->cap);
	}
}

static void
words_add(struct words *w, const char *s)
{
	w->v = grow(w->v, w->n + 1, &w->cap, sizeof(*w->v));
	w->v[w->n++] = xstrdup(s);
	w->v[w->n] = NULL;
}

static void
words_clear(struct words *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i]);
	free(w->v);
	memset(w, 0, sizeof(*w));
}

static int
words_has(const struct words *w, const char *s)
{
	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i], s) == 0)
			return 1;
	return 0;
}

/* Split on blanks, as xinetd does: no quotes, no escapes. */
static void
split(const char *line, struct words *w)
{
	const char *p = line;

	while (*p != '\0') {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (n = 0; p[n] != '\0' && p[n] != ' ' && p[n] != '\t'; n++)
			;
		w->v = grow(w->v, w->n + 1, &w->cap, sizeof(*w->v));
		if ((w->v[w->n] = strndup(p, n)) == NULL)
			die_nomem();
		w->v[++w->n] = NULL;
		p += n;
	}
}

static void
items_add(struct items *l, const char *s, const struct where *at)
{
	l->v = grow(l->v, l->n, &l->cap, sizeof(*l->v));
	l->v[l->n].s = xstrdup(s);
	l->v[l->n++].at = *at;
}

static void
items_del(struct items *l, size_t i)
{
	free(l->v[i].s);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

static void
items_clear(struct items *l)
{
	while (l->n > 0)
		items_del(l, l->n - 1);
}

static void
items_free(struct items *l)
{
	items_clear(l);
	free(l->v);
}

static void
items_copy(struct items *to, const struct items *from)
{
	for (size_t i = 0; i < from->n; i++)
		items_add(to, from->v[i].s, &from->v[i].at);
	to->present = from->present;
}

static void
nets_add(struct nets *l, const struct net *n)
{
	l->v = grow(l->v, l->n, &l->cap, sizeof(*l->v));
	l->v[l->n] = *n;
	l->v[l->n++].text = xstrdup(n->text);
}

static void
nets_del(struct nets *l, size_t i)
{
	free(l->v[i].text);
	memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
	l->n--;
}

static void
nets_free(struct nets *l)
{
	while (l->n > 0)
		nets_del(l, l->n - 1);
	free(l->v);
}

static void
nets_copy(struct nets *to, const struct nets *from)
{
	for (size_t i = 0; i < from->n; i++)
		nets_add(to, &from->v[i]);
	to->present = from->present;
	to->at = from->at;
}

/* ---- diagnostics ---- */

static void __attribute__((format(printf, 3, 4)))
error_at(struct conv *cv, const struct where *at, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	char line[1200];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != NULL && at->line > 0)
		snprintf(line, sizeof(line), "%s:%d: %s\n", at->file, at->line, msg);
	else if (at != NULL)
		snprintf(line, sizeof(line), "%s: %s\n", at->file, msg);
	else
		snprintf(line, sizeof(line), "porterd-xinetd: %s\n", msg);
	/* A value of the defaults is checked in every service it is written into. */
	if (cv->errors.s != NULL && (strncmp(cv->errors.s, line, strlen(line)) == 0 ||
	    strstr(cv->errors.s, line) != NULL))
		return;
	buf_add(&cv->errors, "%s", line);
	cv->nerrors++;
}

/* A line of stderr that is not an error: printed only if the conversion succeeds. */
static void __attribute__((format(printf, 3, 4)))
info_at(struct conv *cv, const struct where *at, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at->line > 0)
		buf_add(&cv->notes, "%s:%d: %s\n", at->file, at->line, msg);
	else
		buf_add(&cv->notes, "%s: %s\n", at->file, msg);
}

/* A comment of the output, wrapped so that no line comes near inih's limit. */
static void
comment(struct buf *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strlen(p), cut = n;

		if (n > COMMENT_WIDTH) {
			cut = COMMENT_WIDTH;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)	/* one long word: cut it anywhere */
				cut = n < LINE_LIMIT - 2 ? n : LINE_LIMIT - 2;
		}
		buf_add(out, "; %.*s\n", (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void __attribute__((format(printf, 2, 3)))
commentf(struct buf *out, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	comment(out, text);
}

/*
 * Something of the input that the output does not do: a comment where the
 * service is written, and the same on stderr. `svc` NULL means the defaults.
 */
static void __attribute__((format(printf, 6, 7)))
not_carried(struct conv *cv, struct buf *out, const struct where *at, const char *svc,
    const char *what, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	commentf(out, "not carried over: %s (%s:%d): %s", what, at->file, at->line, why);
	if (svc != NULL)
		info_at(cv, at, "service %s: %s not carried over: %s", svc, what, why);
	else
		info_at(cv, at, "defaults: %s not carried over: %s", what, why);
	cv->nnotes++;
}

/* ---- reading xinetd's files ---- */

static const struct attr_def *
attr_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++)
		if (strcmp(attr_defs[i].name, name) == 0)
			return &attr_defs[i];
	return NULL;
}

static const char *
attr_name(enum attr id)
{
	for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++)
		if (attr_defs[i].id == id)
			return attr_defs[i].name;
	return "?";
}

static struct source *
source_add(struct conv *cv, const char *path)
{
	struct source *s = calloc(1, sizeof(*s));

	if (s == NULL)
		die_nomem();
	s->path = xstrdup(path);
	cv->src = grow(cv->src, cv->nsrc, &cv->capsrc, sizeof(*cv->src));
	cv->src[cv->nsrc++] = s;
	return s;
}

/* The next line that is neither blank nor a comment, without its newline. */
static char *
next_line(FILE *f, char **line, size_t *cap, int *lineno)
{
	ssize_t n;

	while ((n = getline(line, cap, f)) >= 0) {
		char *p = *line;

		(*lineno)++;
		while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
			p[--n] = '\0';
		while (*p == ' ' || *p == '\t' || *p == '\f' || *p == '\v')
			p++;
		if (*p != '\0' && *p != '#')
			return *line;
	}
	return NULL;
}

/* xinetd's '{' and '}' stand alone on their lines. */
static int
only_char(const char *line, char c)
{
	int seen = 0;

	for (const char *p = line; *p != '\0'; p++) {
		if (*p == c && !seen)
			seen = 1;
		else if (!isspace((unsigned char)*p))
			return 0;
	}
	return seen;
}

/*
 * Parse one address of only_from or no_access as xinetd reads it. Returns 0,
 * or -1 with *why set when it is malformed. A name (host, domain, network) is
 * kept with family 0: porterd matches addresses only.
 */
static int
net_parse(const char *s, struct net *n, const char **why)
{
	const char *brace = strchr(s, '{'), *slash = strchr(s, '/');
	unsigned char a6[16];
	int all_digits = 1;

	memset(n, 0, sizeof(*n));
	n->text = (char *)s;
	for (const char *p = s; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			all_digits = 0;
	if (brace != NULL) {
		/* Factorized: "a.b.c.{d,e}" stands for a.b.c.d and a.b.c.e. */
		return *why = "a factorized address is expanded by the caller", -1;
	}
	if (slash != NULL) {
		char addr[INET6_ADDRSTRLEN];
		char *end;
		unsigned long bits;
		size_t len = (size_t)(slash - s);

		if (len == 0 || len >= sizeof(addr))
			return *why = "expected ADDRESS/BITS", -1;
		memcpy(addr, s, len);
		addr[len] = '\0';
		errno = 0;
		bits = strtoul(slash + 1, &end, 10);
		if (!isdigit((unsigned char)slash[1]) || *end != '\0' || errno != 0)
			return *why = "the prefix length must be a number", -1;
		if (inet_pton(AF_INET, addr, n->a) == 1) {
			if (bits > 32)
				return *why = "an IPv4 prefix length is 0 to 32", -1;
			n->family = AF_INET;
		} else if (inet_pton(AF_INET6, addr, n->a) == 1) {
			n->family = AF_INET6;
			if (bits > 128)
				bits = 128;	/* xinetd takes a longer one as the host */
		} else {
			return *why = "not a numeric IPv4 or IPv6 address", -1;
		}
		n->bits = (int)bits;
		return 0;
	}
	if (inet_pton(AF_INET, s, n->a) == 1) {
		/* Trailing zero bytes are wildcards: 10.1.0.0 is 10.1.0.0/16. */
		n->family = AF_INET;
		n->bits = 0;
		for (int i = 0; i < 4; i++)
			if (n->a[i] != 0)
				n->bits = 8 * (i + 1);
		return 0;
	}
	if (strchr(s, ':') != NULL && inet_pton(AF_INET6, s, a6) == 1) {
		static const unsigned char zero[16];

		n->family = AF_INET6;
		memcpy(n->a, a6, 16);
		n->bits = memcmp(a6, zero, 16) == 0 ? 0 : 128;
		return 0;
	}
	if (all_digits)	/* "10.1": the C library would read it as 10.0.0.1 */
		return *why = "write all four parts of an IPv4 address", -1;
	return 0;	/* a name */
}

/* Clear the bits beyond the prefix, so that equal networks compare equal. */
static void
net_mask(struct net *n)
{
	int len = n->family == AF_INET ? 4 : 16;

	for (int i = 0; i < len; i++) {
		int keep = n->bits - 8 * i;

		if (keep <= 0)
			n->a[i] = 0;
		else if (keep < 8)
			n->a[i] &= (unsigned char)(0xff << (8 - keep));
	}
}

static int
net_same(const struct net *x, const struct net *y)
{
	if (x->family != y->family)
		return 0;
	if (x->family == 0)
		return strcmp(x->text, y->text) == 0;
	return x->bits == y->bits && memcmp(x->a, y->a, 16) == 0;
}

/* inner lies within outer, and is a smaller network. */
static int
net_inside(const struct net *inner, const struct net *outer)
{
	struct net t;

	if (inner->family == 0 || inner->family != outer->family || inner->bits <= outer->bits)
		return 0;
	t = *inner;
	t.bits = outer->bits;
	net_mask(&t);
	return memcmp(t.a, outer->a, 16) == 0;
}

/* The networks one word of only_from or no_access stands for. */
static int
net_words(const char *s, struct net *out, size_t max, size_t *count, const char **why)
{
	const char *brace = strchr(s, '{');
	unsigned char pre[4] = { 0 };
	int parts = 0;
	const char *p;

	*count = 0;
	if (brace == NULL) {
		if (strchr(s, ',') != NULL)
			return *why = "a comma outside braces (separate addresses with blanks)", -1;
		if (net_parse(s, &out[0], why) < 0)
			return -1;
		if (out[0].family != 0)
			net_mask(&out[0]);
		*count = 1;
		return 0;
	}
	/* "a.b.{c,d}": the prefix parts, then one part from the braces each. */
	for (p = s; p < brace;) {
		unsigned long v;
		char *end;

		if (!isdigit((unsigned char)*p))
			return *why = "expected a factorized address such as 10.1.2.{3,4}", -1;
		v = strtoul(p, &end, 10);
		if (v > 255 || *end != '.' || parts == 3)
			return *why = "expected a factorized address such as 10.1.2.{3,4}", -1;
		pre[parts++] = (unsigned char)v;
		p = end + 1;
	}
	if (s[strlen(s) - 1] != '}')
		return *why = "nothing may follow the closing brace", -1;
	for (p = brace + 1; *p != '}';) {
		unsigned long v;
		char *end;
		struct net *n;

		if (!isdigit((unsigned char)*p))
			return *why = "expected numbers separated by commas within the braces", -1;
		v = strtoul(p, &end, 10);
		if (v > 255 || (*end != ',' && *end != '}'))
			return *why = "expected numbers separated by commas within the braces", -1;
		if (*count == max)
			return *why = "too many addresses within the braces", -1;
		n = &out[(*count)++];
		memset(n, 0, sizeof(*n));
		n->family = AF_INET;
		memcpy(n->a, pre, (size_t)parts);
		n->a[parts] = (unsigned char)v;
		n->bits = 8 * (parts + 1);
		n->text = (char *)s;
		p = *end == ',' ? end + 1 : end;
	}
	if (p[1] != '\0')
		return *why = "nothing may follow the closing brace", -1;
	return 0;
}

static void
apply_nets(struct conv *cv, struct nets *l, const char *attr, int op, const struct words *w,
    size_t from, const struct where *at, struct entry *e)
{
	if (op == '=') {
		while (l->n > 0)
			nets_del(l, l->n - 1);
	}
	l->present = 1;
	l->at = *at;
	for (size_t i = from; i < w->n; i++) {
		struct net nets[256];
		size_t count;
		const char *why;

		if (net_words(w->v[i], nets, 256, &count, &why) < 0) {
			error_at(cv, at, "%s: %s: %s", attr, w->v[i], why);
			e->bad = 1;
			continue;
		}
		for (size_t k = 0; k < count; k++) {
			nets[k].at = *at;
			nets[k].text = w->v[i];
			if (op == '-') {
				for (size_t j = l->n; j-- > 0;)
					if (net_same(&l->v[j], &nets[k]))
						nets_del(l, j);
			} else {
				nets_add(l, &nets[k]);
			}
		}
	}
}

static void
apply_items(struct items *l, int op, const struct words *w, size_t from, const struct where *at,
    int unique)
{
	if (op == '=')
		items_clear(l);
	l->present = 1;
	for (size_t i = from; i < w->n; i++) {
		size_t j;

		for (j = 0; j < l->n; j++)
			if (strcmp(l->v[j].s, w->v[i]) == 0)
				break;
		if (op == '-') {
			if (j < l->n)
				items_del(l, j);
		} else if (!unique || j == l->n) {
			items_add(l, w->v[i], at);
		}
	}
}

/*
 * One "attribute OP value..." line of an entry. xinetd wants a blank between
 * the attribute and the operator; the values are the words after it.
 */
static void
attribute_line(struct conv *cv, struct entry *e, char *line, const struct where *at)
{
	const int defaults = e->name == NULL;
	const struct attr_def *ad;
	struct words w = { 0 };
	char *p = line, *name;
	int op;

	while (isspace((unsigned char)*p))
		p++;
	name = p;
	while (*p != '\0' && !isspace((unsigned char)*p) && *p != '=')
		p++;
	if (*p == '=' || (p > name && (p[-1] == '+' || p[-1] == '-') && *p == '\0')) {
		error_at(cv, at, "'%.*s': put a blank between the attribute and its operator",
		    (int)(p - name), name);
		e->bad = 1;
		return;
	}
	if (*p != '\0')
		*p++ = '\0';
	while (isspace((unsigned char)*p))
		p++;
	if (p[0] == '=') {
		op = '=';
		p++;
	} else if ((p[0] == '+' || p[0] == '-') && p[1] == '=') {
		op = p[0];
		p += 2;
	} else {
		error_at(cv, at, "%s: expected '=', '+=' or '-=' after the attribute", name);
		e->bad = 1;
		return;
	}
	if ((ad = attr_lookup(name)) == NULL) {
		error_at(cv, at, "unknown attribute '%s'", name);
		e->bad = 1;
		return;
	}
	if (!(ad->in & (defaults ? IN_DEFAULTS : IN_SERVICE))) {
		error_at(cv, at, defaults ? "%s cannot be set in defaults" :
		    "%s can be set in defaults only", name);
		e->bad = 1;
		return;
	}
	split(p, &w);
	if (ad->nvalues == LIST) {
		/* In defaults, xinetd adds with '=' as with '+='. */
		if (defaults && op == '=')
			op = '+';
		switch (ad->id) {
		case A_ONLY_FROM:
			apply_nets(cv, &e->only_from, name, op, &w, 0, at, e);
			break;
		case A_NO_ACCESS:
			apply_nets(cv, &e->no_access, name, op, &w, 0, at, e);
			break;
		case A_ENV:
			if (op == '-') {
				error_at(cv, at, "env: xinetd has no '-=' for env");
				e->bad = 1;
				break;
			}
			for (size_t i = 0; i < w.n; i++)
				if (strchr(w.v[i], '=') == NULL) {
					error_at(cv, at, "env: %s: expected NAME=VALUE", w.v[i]);
					e->bad = 1;
				}
			/* xinetd's env '=' replaces what was there only when something was. */
			apply_items(&e->env, op, &w, 0, at, 0);
			break;
		case A_PASSENV:
			apply_items(&e->passenv, op, &w, 0, at, 1);
			break;
		case A_DISABLED:
			apply_items(&e->disabled, op, &w, 0, at, 1);
			break;
		case A_ENABLED:
			apply_items(&e->enabled, op, &w, 0, at, 1);
			break;
		case A_LOG_ON_SUCCESS:
			e->log_success_at = *at;
			break;
		case A_LOG_ON_FAILURE:
			e->log_failure_at = *at;
			break;
		default:
			break;
		}
		words_clear(&w);
		return;
	}
	if (op != '=') {
		error_at(cv, at, "%s takes '=' only", name);
		e->bad = 1;
	} else if (e->a[ad->id].set) {
		error_at(cv, at, "%s is already set at line %d", name, e->a[ad->id].at.line);
		e->bad = 1;
	} else if (ad->nvalues > 0 && w.n != (size_t)ad->nvalues) {
		error_at(cv, at, "%s takes %d value%s, not %zu", name, ad->nvalues,
		    ad->nvalues == 1 ? "" : "s", w.n);
		e->bad = 1;
	} else if (ad->nvalues == ANY && w.n == 0 && ad->id != A_SERVER_ARGS) {
		error_at(cv, at, "%s needs a value", name);
		e->bad = 1;
	} else {
		e->a[ad->id].set = 1;
		e->a[ad->id].at = *at;
		e->a[ad->id].w = w;
		return;
	}
	words_clear(&w);
}

static struct entry *
entry_new(const char *name, const struct where *at, size_t source)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (e == NULL)
		die_nomem();
	e->name = name != NULL ? xstrdup(name) : NULL;
	e->at = *at;
	e->source = source;
	return e;
}

static void
entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	for (int i = 0; i < A_COUNT; i++)
		words_clear(&e->a[i].w);
	nets_free(&e->only_from);
	nets_free(&e->no_access);
	items_free(&e->env);
	items_free(&e->passenv);
	items_free(&e->disabled);
	items_free(&e->enabled);
	free(e->name);
	free(e);
}

/* Read an entry's lines up to its '}'. Returns -1 at the end of the file. */
static int
entry_body(struct conv *cv, struct entry *e, FILE *f, const char *file, char **line,
    size_t *cap, int *lineno)
{
	while (next_line(f, line, cap, lineno) != NULL) {
		struct where at = { file, *lineno };

		if (only_char(*line, '}'))
			return 0;
		attribute_line(cv, e, *line, &at);
	}
	error_at(cv, &e->at, "%s%s: no '}' before the end of the file",
	    e->name ? "service " : "defaults", e->name ? e->name : "");
	e->bad = e->cut = 1;
	return -1;
}

static void read_file(struct conv *, const char *, const struct where *, int);

/* strcmp order, which is what xinetd sorts by whatever the locale. */
static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * includedir, as xinetd reads it: the directory's files in strcmp order,
 * skipping names that contain a '.' or end in '~' (editor and package
 * manager leftovers) and anything but regular files.
 */
static void
read_dir(struct conv *cv, const char *dir, const struct where *at, int depth)
{
	struct words names = { 0 };
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) == NULL) {
		error_at(cv, at, "includedir %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			words_add(&names, de->d_name);
	closedir(d);
	if (names.n > 0)
		qsort(names.v, names.n, sizeof(*names.v), cmp_names);
	for (size_t i = 0; i < names.n; i++) {
		const char *n = names.v[i];
		char path[4096];
		struct stat st;
		struct where here;

		snprintf(path, sizeof(path), "%s/%s", dir, n);
		here.file = path;
		here.line = 0;
		if (strchr(n, '.') != NULL || n[strlen(n) - 1] == '~') {
			info_at(cv, &here, "skipped, as xinetd skips it (%s)",
			    strchr(n, '.') != NULL ? "the name contains a '.'" :
			    "the name ends in '~'");
			continue;
		}
		if (stat(path, &st) < 0) {
			error_at(cv, &here, "%s", strerror(errno));
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			info_at(cv, &here, "skipped, as xinetd skips it (not a regular file)");
			continue;
		}
		read_file(cv, path, at, depth + 1);
	}
	words_clear(&names);
}

/* Skip the rest of an entry whose '{' is missing, as xinetd does. */
static void
skip_entry(FILE *f, char **line, size_t *cap, int *lineno)
{
	while (next_line(f, line, cap, lineno) != NULL)
		if (only_char(*line, '}'))
			return;
}

static void
read_file(struct conv *cv, const char *path, const struct where *from, int depth)
{
	char *line = NULL;
	size_t cap = 0, si;
	int lineno = 0, defaults_here = 0;
	const char *file;
	FILE *f;

	if (depth > INCLUDE_DEPTH) {
		error_at(cv, from, "%s: more than %d levels of include (a loop?)", path,
		    INCLUDE_DEPTH);
		return;
	}
	if ((f = fopen(path, "r")) == NULL) {
		if (from == NULL) {
			fprintf(stderr, "porterd-xinetd: %s: %s\n", path, strerror(errno));
			exit(EXIT_SYSTEM);
		}
		error_at(cv, from, "%s: %s", path, strerror(errno));
		return;
	}
	file = source_add(cv, path)->path;
	si = cv->nsrc - 1;
	while (next_line(f, &line, &cap, &lineno) != NULL) {
		struct where at = { file, lineno };
		struct words w = { 0 };
		const char *kw;

		split(line, &w);
		kw = w.v[0];
		if ((strcmp(kw, "service") == 0 || strcmp(kw, "include") == 0 ||
		    strcmp(kw, "includedir") == 0) && w.n < 2) {
			error_at(cv, &at, "%s: a name must follow", kw);
		} else if (strcmp(kw, "include") == 0) {
			read_file(cv, w.v[1], &at, depth + 1);
		} else if (strcmp(kw, "includedir") == 0) {
			read_dir(cv, w.v[1], &at, depth);
		} else if (strcmp(kw, "service") == 0 || strcmp(kw, "defaults") == 0) {
			int service = kw[0] == 's';
			struct entry *e;

			if (next_line(f, &line, &cap, &lineno) == NULL || !only_char(line, '{')) {
				error_at(cv, &at, "%s%s: expected '{' alone on the next line",
				    service ? "service " : "defaults", service ? w.v[1] : "");
				if (!feof(f))
					skip_entry(f, &line, &cap, &lineno);
				words_clear(&w);
				continue;
			}
			if (service) {
				e = entry_new(w.v[1], &at, si);
				/*
				 * xinetd copies the defaults' lists into a service
				 * as it starts reading it, so that its += and -=
				 * work on them and its = replaces them.
				 */
				if (cv->defaults != NULL) {
					nets_copy(&e->only_from, &cv->defaults->only_from);
					nets_copy(&e->no_access, &cv->defaults->no_access);
					items_copy(&e->passenv, &cv->defaults->passenv);
				}
				entry_body(cv, e, f, file, &line, &cap, &lineno);
				cv->svc = grow(cv->svc, cv->nsvc, &cv->capsvc, sizeof(*cv->svc));
				cv->svc[cv->nsvc++] = e;
			} else if (defaults_here++) {
				error_at(cv, &at, "defaults: only one defaults entry per file");
				skip_entry(f, &line, &cap, &lineno);
			} else {
				/* Across files, xinetd keeps adding to the one set of defaults. */
				if (cv->defaults == NULL)
					cv->defaults = entry_new(NULL, &at, si);
				entry_body(cv, cv->defaults, f, file, &line, &cap, &lineno);
			}
		} else {
			error_at(cv, &at, "expected service, defaults, include or includedir, not '%s'",
			    kw);
		}
		words_clear(&w);
	}
	if (ferror(f))
		error_at(cv, from, "%s: %s", path, strerror(errno));
	free(line);
	fclose(f);
}

/* ---- writing porterd's keys ---- */

static int
name_char(int c)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_';
}

static int
taken(const struct conv *cv, const char *name)
{
	return words_has(&cv->taken, name);
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
		info_at(cv, id->set ? &id->at : &e->at, "service %s: written as [%s]: porterd's "
		    "names are up to %d letters, digits, '.', '-' and '_'", e->name, fixed,
		    NAME_LIMIT);
	snprintf(name, len, "%s", fixed);
	for (int i = 2; taken(cv, name); i++) {
		char suffix[16];

		snprintf(suffix, sizeof(suffix), "-%d", i);
		snprintf(name, len, "%.*s%s", (int)(NAME_LIMIT - strlen(suffix)), fixed, suffix);
		if (!taken(cv, name))
			info_at(cv, id->set ? &id->at : &e->at, "service %s: [%s] is taken; "
			    "written as [%s]", e->name, fixed, name);
	}
	words_add(&cv->taken, name);
}

static void
key(struct buf *out, const char *k, const char *v)
{
	buf_add(out, "%s = %s\n", k, v);
}

/* The argv as porterd's args: quoted words, over continuation lines when long. */
static int
emit_args(struct buf *out, char **argv, size_t argc)
{
	size_t col = strlen("args =");

	buf_add(out, "args =");
	for (size_t i = 0; i < argc; i++) {
		char q[LINE_LIMIT + 1] = "";

		if (args_quote(q, sizeof(q), argv[i]) < 0 || strlen(q) > LINE_LIMIT - 8)
			return -1;
		if (col + 1 + strlen(q) > 100) {
			buf_add(out, "\n    %s", q);
			col = 4 + strlen(q);
		} else {
			buf_add(out, " %s", q);
			col += 1 + strlen(q);
		}
	}
	buf_add(out, "\n");
	return 0;
}

/* A list of networks as allow or deny lines, a few to a line. */
static void
emit_nets(struct buf *out, const char *k, const struct net *v, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		char text[INET6_ADDRSTRLEN + 8];
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(v[i].family, v[i].a, ip, sizeof(ip));
		if ((v[i].family == AF_INET && v[i].bits == 32) ||
		    (v[i].family == AF_INET6 && v[i].bits == 128))
			snprintf(text, sizeof(text), "%s", ip);
		else
			snprintf(text, sizeof(text), "%s/%d", ip, v[i].bits);
		if (col == 0 || col + strlen(text) + 2 > 100) {
			buf_add(out, "%s%s = %s", col ? "\n" : "", k, text);
			col = strlen(k) + 3 + strlen(text);
		} else {
			buf_add(out, ", %s", text);
			col += 2 + strlen(text);
		}
	}
	if (col)
		buf_add(out, "\n");
}

static int
env_name_ok(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

static int
env_reserved(const char *s, size_t n)
{
	for (const char *const *r = reserved_env; *r != NULL; r++)
		if (strlen(*r) == n && strncmp(*r, s, n) == 0)
			return 1;
	return 0;
}

static int
all_digits(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* A non-negative decimal number, or -1. */
static long
number(const char *s, long max)
{
	char *end;
	long v;

	if (!all_digits(s))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v > max)
		return max + 1;
	return v;
}

/* xinetd's rlimit value: N, N with K or M, or UNLIMITED. NULL if not one. */
static const char *
rlimit_value(const char *s, char *buf, size_t len)
{
	size_t n = strlen(s);
	char unit = '\0';

	if (strcmp(s, "UNLIMITED") == 0)
		return "unlimited";
	if (n > 1 && strchr("kKmM", s[n - 1]) != NULL) {
		unit = (char)toupper((unsigned char)s[n - 1]);
		n--;
	}
	if (n == 0 || n > 18)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return NULL;
	snprintf(buf, len, "%.*s%s", (int)n, s, unit ? (char[]){ unit, '\0' } : "");
	return buf;
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
	error_at(cv, &s->at, "%s = %s: expected yes or no", attr_name(id), s->w.v[0]);
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
	const char	*why;	/* not carried over: why */
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

static const char *const builtin_names[] = {
	"echo", "discard", "daytime", "chargen", "time", "tcpmux", NULL
};

/* What porterd needs to know of the services already written. */
struct written {
	const struct entry *e;
	char		 section[NAME_LIMIT + 1];
	char		 listen[INET6_ADDRSTRLEN + 16];
	const char	*proto;
	int		 enabled;
};

static struct written *written;
static size_t nwritten, capwritten;

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
			error_at(cv, &s->at, "type %s: expected INTERNAL, UNLISTED, RPC, TCPMUX or "
			    "TCPMUXPLUS", v);
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
			error_at(cv, &s->at, "flags: unknown flag %s", s->w.v[i]);
			e->bad = 1;
		} else {
			f |= flag_defs[k].bit;
		}
	}
	return f;
}

#define LEAVE_OUT(...) do { left_out(__VA_ARGS__); goto out; } while (0)

/* The whole service is left out: a comment in its place, and the same on stderr. */
static void
left_out(struct conv *cv, struct entry *e, const struct where *at, const char *what,
    const char *why)
{
	struct buf *out = &cv->src[e->source]->out;

	buf_add(out, "\n");
	commentf(out, "xinetd service %s (%s:%d) is left out.", e->name, e->at.file, e->at.line);
	not_carried(cv, out, at, e->name, what, "%s", why);
	cv->src[e->source]->used = 1;
	cv->left_out++;
}

/*
 * The listen address: bind (or interface) if given, else every address. xinetd
 * opens an IPv6 socket that takes IPv4 too, unless the IPv4 flag asks for IPv4
 * only or v6only = yes for IPv6 only.
 */
static int
listen_of(struct conv *cv, struct entry *e, int flags, unsigned port, char *text, size_t len)
{
	const struct slot *bind = own_or_default(cv, e, A_BIND);
	const struct slot *v6s = own_or_default(cv, e, A_V6ONLY);
	int v6only = v6s != NULL && strcmp(v6s->w.v[0], "yes") == 0;
	unsigned char a[16];

	if (v6s != NULL && !v6only && strcmp(v6s->w.v[0], "no") != 0) {
		error_at(cv, &v6s->at, "v6only = %s: expected yes or no", v6s->w.v[0]);
		return -1;
	}
	if (bind == NULL) {
		if ((flags & F_IPV4) && !(flags & F_IPV6))
			snprintf(text, len, "0.0.0.0:%u", port);
		else
			snprintf(text, len, "%s:%u", v6only ? "[::]" : "*", port);
		return 0;
	}
	if (inet_pton(AF_INET, bind->w.v[0], a) == 1) {
		snprintf(text, len, "%s:%u", bind->w.v[0], port);
	} else if (inet_pton(AF_INET6, bind->w.v[0], a) == 1) {
		static const unsigned char any[16];
		char ip[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, a, ip, sizeof(ip));
		if (memcmp(a, any, 16) == 0 && !v6only)
			snprintf(text, len, "*:%u", port);
		else
			snprintf(text, len, "[%s]:%u", ip, port);
	} else {
		/* xinetd looks the name up once, at start; so do we, here. */
		struct addrinfo hints, *res;
		char ip[INET6_ADDRSTRLEN];
		int rc;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = (flags & F_IPV6) ? AF_INET6 : (flags & F_IPV4) ? AF_INET : AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		if ((rc = getaddrinfo(bind->w.v[0], NULL, &hints, &res)) != 0) {
			error_at(cv, &bind->at, "bind = %s: %s (porterd listens on numeric addresses "
			    "only)", bind->w.v[0], gai_strerror(rc));
			return -1;
		}
		if (res->ai_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)res->ai_addr)->sin_addr, ip,
			    sizeof(ip));
			snprintf(text, len, "%s:%u", ip, port);
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, ip,
			    sizeof(ip));
			snprintf(text, len, "[%s]:%u", ip, port);
		}
		freeaddrinfo(res);
		info_at(cv, &bind->at, "service %s: bind = %s: looked up here as %s; porterd "
		    "takes numeric addresses only", e->name, bind->w.v[0], ip);
	}
	return 0;
}

/* only_from and no_access as allow and deny. */
static void
access_lists(struct conv *cv, struct entry *e, int wait, struct buf *keys, struct buf *tail)
{
	struct net *allow = NULL, *deny = NULL;
	size_t nallow = 0, ndeny = 0, capa = 0, capd = 0;
	int names_only = 0;

	if (wait) {
		if (e->only_from.present)
			not_carried(cv, tail, &e->only_from.at, e->name, "only_from", "a wait = yes "
			    "handler receives its clients itself, so porterd cannot check them");
		if (e->no_access.present)
			not_carried(cv, tail, &e->no_access.at, e->name, "no_access", "a wait = yes "
			    "handler receives its clients itself, so porterd cannot check them");
		return;
	}
	for (size_t i = 0; i < e->only_from.n; i++) {
		const struct net *n = &e->only_from.v[i];
		size_t j;

		if (n->family == 0) {
			not_carried(cv, tail, &n->at, e->name, "only_from", "%s: porterd matches "
			    "numeric addresses only; list the addresses of %s instead", n->text,
			    n->text);
			names_only = 1;
			continue;
		}
		for (j = 0; j < nallow && !net_same(&allow[j], n); j++)
			;
		if (j == nallow) {
			allow = grow(allow, nallow, &capa, sizeof(*allow));
			allow[nallow++] = *n;
		}
	}
	for (size_t i = 0; i < e->no_access.n; i++) {
		const struct net *n = &e->no_access.v[i];
		size_t j;

		if (n->family == 0) {
			not_carried(cv, tail, &n->at, e->name, "no_access", "%s: porterd matches "
			    "numeric addresses only, so clients from %s are no longer refused; "
			    "list its addresses instead", n->text, n->text);
			continue;
		}
		for (j = 0; j < ndeny && !net_same(&deny[j], n); j++)
			;
		if (j == ndeny) {
			deny = grow(deny, ndeny, &capd, sizeof(*deny));
			deny[ndeny++] = *n;
		}
	}
	/* xinetd lets the closer match win; with porterd, deny always does. */
	for (size_t i = 0; i < nallow; i++)
		for (size_t j = 0; j < ndeny; j++)
			if (net_inside(&allow[i], &deny[j]))
				not_carried(cv, tail, &allow[i].at, e->name, "only_from", "%s lies "
				    "within no_access %s: xinetd let it in as the closer match, but "
				    "porterd's deny wins, so it is refused", allow[i].text,
				    deny[j].text);
	if (e->only_from.present && nallow == 0) {
		static const struct net all[2] = { { .family = AF_INET }, { .family = AF_INET6 } };

		/* xinetd: an only_from that lists nothing lets nobody in. */
		commentf(tail, "only_from (%s:%d) lets %s in, so deny covers every address.",
		    e->only_from.at.file, e->only_from.at.line,
		    names_only ? "no numeric address" : "nobody");
		emit_nets(keys, "deny", all, 2);
	} else {
		emit_nets(keys, "allow", allow, nallow);
		emit_nets(keys, "deny", deny, ndeny);
	}
	free(allow);
	free(deny);
}

static void
emit_instances(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys,
    struct buf *tail, const char *who)
{
	long n;
	char v[16];

	if (s == NULL)
		return;
	if (strcmp(s->w.v[0], "UNLIMITED") == 0) {
		const struct slot *d = cv->defaults ? &cv->defaults->a[A_INSTANCES] : NULL;

		if (!cv->fold && e != NULL && d != NULL && d->set && all_digits(d->w.v[0])) {
			key(keys, "max_children", "1000000");
			commentf(tail, "instances = UNLIMITED (%s:%d): porterd has no unlimited; "
			    "1000000 is its largest max_children.", s->at.file, s->at.line);
		} else {
			commentf(tail, "instances = UNLIMITED (%s:%d): porterd has no unlimited; "
			    "its default max_children = 256 applies.", s->at.file, s->at.line);
		}
		return;
	}
	if ((n = number(s->w.v[0], 1000000)) < 0) {
		error_at(cv, &s->at, "instances = %s: expected a number or UNLIMITED", s->w.v[0]);
		if (e != NULL)
			e->bad = 1;
		return;
	}
	if (n == 0) {
		not_carried(cv, tail, &s->at, who, "instances = 0", "porterd's max_children is "
		    "at least 1");
		return;
	}
	if (n > 1000000) {
		n = 1000000;
		commentf(tail, "instances = %s (%s:%d): 1000000 is porterd's largest max_children.",
		    s->w.v[0], s->at.file, s->at.line);
	}
	snprintf(v, sizeof(v), "%ld", n);
	key(keys, "max_children", v);
}

static void
emit_cps(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys,
    struct buf *tail, const char *who)
{
	long n, pause;
	char v[32];

	if (s == NULL)
		return;
	n = number(s->w.v[0], 1000000);
	pause = number(s->w.v[1], 1000000000);
	if (n < 0 || pause < 0) {
		error_at(cv, &s->at, "cps = %s %s: expected two numbers", s->w.v[0], s->w.v[1]);
		if (e != NULL)
			e->bad = 1;
		return;
	}
	if (n == 0)	/* xinetd: no limit */
		return;
	if (n > 1000000)
		n = 1000000;
	snprintf(v, sizeof(v), "%ld/1", n);
	key(keys, "rate", v);
	not_carried(cv, tail, &s->at, who, "the pause of cps", "beyond %ld connections a "
	    "second porterd refuses each connection too many; xinetd stopped the whole "
	    "service for %ld s instead", n, pause);
}

static void
emit_umask(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys)
{
	char *end;
	unsigned long m;
	char v[8];

	if (s == NULL)
		return;
	m = strtoul(s->w.v[0], &end, 8);
	if (!isdigit((unsigned char)s->w.v[0][0]) || *end != '\0' || m > 0777) {
		error_at(cv, &s->at, "umask = %s: expected an octal mask such as 022", s->w.v[0]);
		if (e != NULL)
			e->bad = 1;
		return;
	}
	snprintf(v, sizeof(v), "%03lo", m);
	key(keys, "umask", v);
}

/* The notes for attributes porterd has no equivalent of, set in the entry itself. */
static void
plain_not_carried(struct conv *cv, struct entry *e, struct buf *tail, const char *who)
{
	struct {
		const struct where *at;
		const struct attr_def *ad;
	} found[A_COUNT], t;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++) {
		const struct attr_def *ad = &attr_defs[i];
		const struct where *at = NULL;

		if (ad->why == NULL || (i > 0 && attr_defs[i - 1].id == ad->id))
			continue;
		if (ad->id == A_LOG_ON_SUCCESS && e->log_success_at.line > 0)
			at = &e->log_success_at;
		else if (ad->id == A_LOG_ON_FAILURE && e->log_failure_at.line > 0)
			at = &e->log_failure_at;
		else if (e->a[ad->id].set)
			at = &e->a[ad->id].at;
		if (at != NULL && n < A_COUNT) {
			found[n].at = at;
			found[n++].ad = ad;
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
		not_carried(cv, tail, found[i].at, who, found[i].ad->name, "%s", found[i].ad->why);
}

/*
 * The values that are checked as they are written, checked beforehand, so
 * that an entry with one mistake has all its mistakes reported at once.
 */
static void
check_values(struct conv *cv, struct entry *e)
{
	const struct slot *s;
	char v[32];

	yes_no(cv, e, A_V6ONLY, 0);
	/* Only the entry's own values: those of the defaults are checked there. */
	if ((s = &e->a[A_INSTANCES])->set && strcmp(s->w.v[0], "UNLIMITED") != 0 &&
	    number(s->w.v[0], 1000000) < 0) {
		error_at(cv, &s->at, "instances = %s: expected a number or UNLIMITED", s->w.v[0]);
		e->bad = 1;
	}
	if ((s = &e->a[A_CPS])->set && (number(s->w.v[0], 1000000) < 0 ||
	    number(s->w.v[1], 1000000000) < 0)) {
		error_at(cv, &s->at, "cps = %s %s: expected two numbers", s->w.v[0], s->w.v[1]);
		e->bad = 1;
	}
	if ((s = &e->a[A_UMASK])->set) {
		char *end;
		unsigned long m = strtoul(s->w.v[0], &end, 8);

		if (!isdigit((unsigned char)s->w.v[0][0]) || *end != '\0' || m > 0777) {
			error_at(cv, &s->at, "umask = %s: expected an octal mask such as 022",
			    s->w.v[0]);
			e->bad = 1;
		}
	}
	if (e->a[A_PER_SOURCE].set && strcmp(e->a[A_PER_SOURCE].w.v[0], "UNLIMITED") != 0 &&
	    number(e->a[A_PER_SOURCE].w.v[0], 1000000) < 0) {
		error_at(cv, &e->a[A_PER_SOURCE].at, "per_source = %s: expected a number or "
		    "UNLIMITED", e->a[A_PER_SOURCE].w.v[0]);
		e->bad = 1;
	}
	if (e->a[A_NICE].set) {
		char *end;

		(void)strtol(e->a[A_NICE].w.v[0], &end, 10);
		if (*end != '\0' || end == e->a[A_NICE].w.v[0]) {
			error_at(cv, &e->a[A_NICE].at, "nice = %s: expected a number",
			    e->a[A_NICE].w.v[0]);
			e->bad = 1;
		}
	}
	for (enum attr id = A_RLIMIT_AS; id <= A_RLIMIT_FILES; id++)
		if (e->a[id].set && rlimit_value(e->a[id].w.v[0], v, sizeof(v)) == NULL) {
			error_at(cv, &e->a[id].at, "%s = %s: expected a number (K or M may follow) "
			    "or UNLIMITED", attr_name(id), e->a[id].w.v[0]);
			e->bad = 1;
		}
}

static void
convert_service(struct conv *cv, struct entry *e)
{
	struct source *src = cv->src[e->source];
	const struct entry *d = cv->defaults;
	struct buf keys = { 0 }, tail = { 0 }, head = { 0 };
	const struct slot *st = &e->a[A_SOCKET_TYPE], *pr = &e->a[A_PROTOCOL], *s;
	const char *id = e->a[A_ID].set ? e->a[A_ID].w.v[0] : e->name;
	const char *stype = NULL, *proto = NULL, *builtin = NULL;
	char section[NAME_LIMIT + 1], listen[INET6_ADDRSTRLEN + 16] = "";
	int types = types_of(cv, e), flags = flags_of(cv, e);
	int wait, disable, enabled = 1, nerr = (int)cv->nerrors;
	unsigned port = 0;
	struct written *w;

	/* What xinetd itself requires, as errors. */
	if (st->set)
		stype = st->w.v[0];
	if (pr->set)
		proto = pr->w.v[0];
	if (stype == NULL && proto == NULL) {
		error_at(cv, &e->at, "service %s: socket_type is missing", e->name);
		e->bad = 1;
	}
	if (stype != NULL && strcmp(stype, "stream") != 0 && strcmp(stype, "dgram") != 0 &&
	    strcmp(stype, "raw") != 0 && strcmp(stype, "seqpacket") != 0 &&
	    strcmp(stype, "rdm") != 0) {
		error_at(cv, &st->at, "socket_type = %s: expected stream, dgram, raw, seqpacket or "
		    "rdm", stype);
		e->bad = 1;
	}
	if (proto != NULL && getprotobyname(proto) == NULL &&
	    strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
		error_at(cv, &pr->at, "protocol = %s: not in /etc/protocols", proto);
		e->bad = 1;
	}
	if (stype == NULL && proto != NULL)
		stype = strcmp(proto, "udp") == 0 ? "dgram" : "stream";
	if (proto == NULL && stype != NULL)
		proto = strcmp(stype, "dgram") == 0 ? "udp" : "tcp";
	if (stype != NULL && proto != NULL &&
	    ((strcmp(stype, "stream") == 0 && strcmp(proto, "udp") == 0) ||
	    (strcmp(stype, "dgram") == 0 && strcmp(proto, "tcp") == 0))) {
		error_at(cv, &pr->at, "socket_type %s does not go with protocol %s", stype, proto);
		e->bad = 1;
	}
	if (!e->a[A_WAIT].set) {
		error_at(cv, &e->at, "service %s: wait is missing", e->name);
		e->bad = 1;
	}
	wait = yes_no(cv, e, A_WAIT, 0);
	disable = yes_no(cv, e, A_DISABLE, 0);
	yes_no(cv, e, A_GROUPS, 0);
	if (!(types & T_INTERNAL) && !e->a[A_REDIRECT].set && !(flags & F_SENSOR) &&
	    !(types & T_RPC)) {
		if (!e->a[A_SERVER].set) {
			error_at(cv, &e->at, "service %s: server is missing", e->name);
			e->bad = 1;
		}
		if (!e->a[A_USER].set) {
			error_at(cv, &e->at, "service %s: user is missing (xinetd requires it for "
			    "a server)", e->name);
			e->bad = 1;
		}
		if ((flags & F_NAMEINARGS) && (!e->a[A_SERVER_ARGS].set ||
		    e->a[A_SERVER_ARGS].w.n == 0)) {
			error_at(cv, &e->a[A_FLAGS].at, "service %s: NAMEINARGS needs server_args "
			    "(their first word is argv[0])", e->name);
			e->bad = 1;
		}
	}
	if (e->a[A_PORT].set) {
		long p = number(e->a[A_PORT].w.v[0], 65535);

		if (p < 1 || p > 65535) {
			error_at(cv, &e->a[A_PORT].at, "port = %s: expected a number from 1 to 65535",
			    e->a[A_PORT].w.v[0]);
			e->bad = 1;
		}
		port = (unsigned)p;
	}
	check_values(cv, e);
	if (e->bad || (int)cv->nerrors > nerr)
		goto out;

	/* Services porterd has no form for. */
	if (types & T_RPC)
		LEAVE_OUT(cv, e, &e->a[A_TYPE].at, "type = RPC",
		    "porterd does not register RPC services with rpcbind");
	if (e->a[A_REDIRECT].set)
		LEAVE_OUT(cv, e, &e->a[A_REDIRECT].at, "redirect",
		    "porterd does not forward connections to another host");
	if (flags & F_SENSOR)
		LEAVE_OUT(cv, e, &e->a[A_FLAGS].at, "flags = SENSOR",
		    "porterd has no sensor that denies the addresses that touch a port");
	if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
		LEAVE_OUT(cv, e, pr->set ? &pr->at : &e->at, "protocol",
		    "porterd serves tcp and udp only");
	if (strcmp(stype, "stream") != 0 && strcmp(stype, "dgram") != 0)
		LEAVE_OUT(cv, e, st->set ? &st->at : &e->at, "socket_type",
		    "porterd serves stream and dgram sockets only");
	if (types & T_INTERNAL) {
		for (const char *const *b = builtin_names; *b != NULL; b++)
			if (strcmp(*b, e->name) == 0)
				builtin = *b;
		if (builtin == NULL)
			LEAVE_OUT(cv, e, &e->a[A_TYPE].at, "type = INTERNAL",
			    "porterd's builtins are echo, discard, daytime, chargen, time and "
			    "tcpmux (its status builtin lists its services)");
		if (strcmp(builtin, "tcpmux") == 0 && strcmp(proto, "tcp") != 0)
			LEAVE_OUT(cv, e, &e->a[A_TYPE].at, "type = INTERNAL",
			    "tcpmux is a tcp service");
	} else if (strcmp(proto, "udp") == 0 && !wait) {
		LEAVE_OUT(cv, e, &e->a[A_WAIT].at, "wait = no",
		    "porterd starts a udp handler with wait = yes only, giving it the socket");
	}
	if (types & T_TCPMUX) {
		size_t n = strlen(e->name);
		int ok = n >= 1 && n <= TCPMUX_NAME_LIMIT && strcasecmp(e->name, "HELP") != 0;

		for (const char *p = e->name; *p != '\0'; p++)
			if (!name_char((unsigned char)*p) && *p != '+')
				ok = 0;
		if (!ok)
			LEAVE_OUT(cv, e, &e->a[A_TYPE].at, "type = TCPMUX", "porterd's "
			    "tcpmux names are 1 to 64 letters, digits, '.', '-', '_' and '+', "
			    "and not HELP");
		if (strcmp(proto, "tcp") != 0 || wait)
			LEAVE_OUT(cv, e, &e->a[A_TYPE].at, "type = TCPMUX",
			    "a tcpmux service is tcp with wait = no");
	}
	if (!builtin) {
		const char *server = e->a[A_SERVER].w.v[0];

		if (server[0] != '/')
			LEAVE_OUT(cv, e, &e->a[A_SERVER].at, "server", "porterd needs an "
			    "absolute path");
		if (strlen(server) > LINE_LIMIT - 8)
			LEAVE_OUT(cv, e, &e->a[A_SERVER].at, "server", "the path is too long "
			    "for a line of porterd's files");
	}

	/* The port, as xinetd finds it. */
	if (!(types & T_TCPMUX)) {
		if (port == 0 && (types & T_UNLISTED) && !builtin) {
			error_at(cv, &e->at, "service %s: type UNLISTED needs a port", e->name);
			e->bad = 1;
			goto out;
		}
		if (port == 0) {
			struct servent *se = getservbyname(e->name, proto);

			if (se == NULL) {
				error_at(cv, &e->at, "service %s: no port: %s/%s is not in "
				    "/etc/services; give port =", e->name, e->name, proto);
				e->bad = 1;
				goto out;
			}
			port = ntohs((unsigned short)se->s_port);
		}
		if (listen_of(cv, e, flags, port, listen, sizeof(listen)) < 0) {
			e->bad = 1;
			goto out;
		}
	} else if ((s = own_or_default(cv, e, A_BIND)) != NULL && s == &e->a[A_BIND]) {
		not_carried(cv, &tail, &s->at, e->name, "bind", "a tcpmux service is reached "
		    "through the socket of porterd's tcpmux builtin");
	}

	section_name(cv, e, section, sizeof(section));
	commentf(&head, "xinetd service %s%s%s%s, %s:%d", e->name,
	    e->a[A_ID].set ? " (id " : "", e->a[A_ID].set ? id : "", e->a[A_ID].set ? ")" : "",
	    e->at.file, e->at.line);

	/* Enabled: disable, the DISABLE flag, and the defaults' two lists. */
	if (disable) {
		commentf(&tail, "disable = yes (%s:%d): converted, with enabled = no.",
		    e->a[A_DISABLE].at.file, e->a[A_DISABLE].at.line);
		enabled = 0;
	} else if (flags & F_DISABLE) {
		commentf(&tail, "flags DISABLE (%s:%d): converted, with enabled = no.",
		    e->a[A_FLAGS].at.file, e->a[A_FLAGS].at.line);
		enabled = 0;
	}
	if (d != NULL) {
		for (size_t i = 0; enabled && i < d->disabled.n; i++)
			if (strcmp(d->disabled.v[i].s, id) == 0) {
				commentf(&tail, "listed in the defaults' disabled (%s:%d): converted, "
				    "with enabled = no.", d->disabled.v[i].at.file,
				    d->disabled.v[i].at.line);
				enabled = 0;
			}
		if (enabled && d->enabled.present) {
			size_t i;

			for (i = 0; i < d->enabled.n; i++)
				if (strcmp(d->enabled.v[i].s, id) == 0)
					break;
			if (i == d->enabled.n) {
				commentf(&tail, "not listed in the defaults' enabled (%s:%d): "
				    "converted, with enabled = no.",
				    d->enabled.n ? d->enabled.v[0].at.file : d->at.file,
				    d->enabled.n ? d->enabled.v[0].at.line : d->at.line);
				enabled = 0;
			}
		}
	}
	/* xinetd runs one of two enabled entries on the same socket; porterd neither. */
	for (size_t i = 0; enabled && listen[0] != '\0' && i < nwritten; i++)
		if (written[i].enabled && strcmp(written[i].listen, listen) == 0 &&
		    strcmp(written[i].proto, proto) == 0) {
			commentf(&tail, "[%s] (%s:%d) listens on %s/%s already; xinetd disables "
			    "this entry, so it is written with enabled = no.", written[i].section,
			    written[i].e->at.file, written[i].e->at.line, listen, proto);
			info_at(cv, &e->at, "service %s: [%s] listens on %s/%s already: written with "
			    "enabled = no, as xinetd disables the second", e->name,
			    written[i].section, listen, proto);
			enabled = 0;
		}

	if (listen[0] != '\0')
		key(&keys, "listen", listen);
	else
		key(&keys, "tcpmux", e->name);
	key(&keys, "protocol", proto);
	if (!builtin)
		key(&keys, "wait", wait ? "yes" : "no");
	if (!enabled)
		key(&keys, "enabled", "no");
	if (types & T_TCPMUXPLUS)
		key(&keys, "tcpmux_ack", "yes");

	if (builtin) {
		key(&keys, "builtin", builtin);
		if (e->a[A_SERVER].set)
			not_carried(cv, &tail, &e->a[A_SERVER].at, e->name, "server",
			    "the service is porterd's builtin");
		if (e->a[A_SERVER_ARGS].set)
			not_carried(cv, &tail, &e->a[A_SERVER_ARGS].at, e->name, "server_args",
			    "the service is porterd's builtin");
		if (e->env.n > 0)
			not_carried(cv, &tail, &e->env.v[0].at, e->name, "env",
			    "porterd's builtins have no environment");
		if (e->passenv.n > 0 && e->passenv.v[0].at.file == e->at.file &&
		    e->passenv.v[0].at.line > e->at.line)
			not_carried(cv, &tail, &e->passenv.v[0].at, e->name, "passenv",
			    "porterd's builtins have no environment");
	} else {
		const char *server = e->a[A_SERVER].w.v[0];
		const char *base = strrchr(server, '/') + 1;
		const struct slot *sa = &e->a[A_SERVER_ARGS];
		struct words argv = { 0 };

		key(&keys, "exec", server);
		if (access(server, X_OK) < 0)
			info_at(cv, &e->a[A_SERVER].at, "service %s: warning: server %s: %s here; "
			    "porterd -t refuses it until it is installed", e->name, server,
			    strerror(errno));
		if (!(flags & F_NAMEINARGS))
			words_add(&argv, base);
		for (size_t i = 0; sa->set && i < sa->w.n; i++)
			words_add(&argv, sa->w.v[i]);
		if (argv.n != 1 || strcmp(argv.v[0], base) != 0) {
			struct buf a = { 0 };

			if (emit_args(&a, argv.v, argv.n) < 0) {
				free(a.s);
				words_clear(&argv);
				LEAVE_OUT(cv, e, &sa->at, "server_args", "a word is too long "
				    "for a line of porterd's files");
			}
			buf_add(&keys, "%s", a.s);
			free(a.s);
		}
		words_clear(&argv);
	}
	if (e->a[A_USER].set) {
		key(&keys, "user", e->a[A_USER].w.v[0]);
		if (!all_digits(e->a[A_USER].w.v[0]) && getpwnam(e->a[A_USER].w.v[0]) == NULL)
			info_at(cv, &e->a[A_USER].at, "service %s: warning: user %s does not exist "
			    "here; porterd -t refuses it", e->name, e->a[A_USER].w.v[0]);
	}
	if (e->a[A_GROUP].set) {
		key(&keys, "group", e->a[A_GROUP].w.v[0]);
		if (!all_digits(e->a[A_GROUP].w.v[0]) && getgrnam(e->a[A_GROUP].w.v[0]) == NULL)
			info_at(cv, &e->a[A_GROUP].at, "service %s: warning: group %s does not "
			    "exist here; porterd -t refuses it", e->name, e->a[A_GROUP].w.v[0]);
	}
	if ((s = own_or_default(cv, e, A_GROUPS)) != NULL && s == &e->a[A_GROUPS] &&
	    strcmp(s->w.v[0], "no") == 0)
		not_carried(cv, &tail, &s->at, e->name, "groups = no", "porterd gives a handler "
		    "the supplementary groups of its user");

	if (!builtin) {
		for (size_t i = 0; i < e->env.n; i++) {
			const char *kv = e->env.v[i].s;
			size_t n = (size_t)(strchr(kv, '=') - kv);

			if (!env_name_ok(kv, n))
				not_carried(cv, &tail, &e->env.v[i].at, e->name, "env", "%s: porterd's "
				    "names are letters, digits and '_'", kv);
			else if (env_reserved(kv, n))
				not_carried(cv, &tail, &e->env.v[i].at, e->name, "env", "%s: porterd "
				    "sets this variable itself", kv);
			else if (strlen(kv) > LINE_LIMIT - 8)
				not_carried(cv, &tail, &e->env.v[i].at, e->name, "env", "%.*s...: too "
				    "long for a line of porterd's files", 40, kv);
			else
				key(&keys, "env", kv);
		}
		if (e->passenv.present && e->passenv.n > 0) {
			struct buf pv = { 0 };

			for (size_t i = 0; i < e->passenv.n; i++) {
				const char *v = e->passenv.v[i].s;

				if (!env_name_ok(v, strlen(v)) || env_reserved(v, strlen(v)))
					not_carried(cv, &tail, &e->passenv.v[i].at, e->name, "passenv",
					    "%s: not a name porterd passes", v);
				else
					buf_add(&pv, "%s%s", pv.len ? "," : "", v);
			}
			if (pv.len > 0)
				key(&keys, "passenv", pv.s);
			free(pv.s);
		}
	}

	access_lists(cv, e, wait && !builtin, &keys, &tail);

	emit_instances(cv, e, scalar_for(cv, e, A_INSTANCES), &keys, &tail, e->name);
	if ((s = own_or_default(cv, e, A_PER_SOURCE)) != NULL) {
		long n = strcmp(s->w.v[0], "UNLIMITED") == 0 ? 0 : number(s->w.v[0], 1000000);
		char v[16];

		if (n < 0) {
			error_at(cv, &s->at, "per_source = %s: expected a number or UNLIMITED",
			    s->w.v[0]);
			e->bad = 1;
		} else if (wait && !builtin) {
			if (s == &e->a[A_PER_SOURCE] && n > 0)
				not_carried(cv, &tail, &s->at, e->name, "per_source", "a wait = yes "
				    "handler receives its clients itself, so porterd cannot count them");
		} else if (n > 0) {
			snprintf(v, sizeof(v), "%ld", n > 1000000 ? 1000000 : n);
			key(&keys, "max_per_source", v);
		} else if (strcmp(s->w.v[0], "0") == 0) {
			not_carried(cv, &tail, &s->at, e->name, "per_source = 0", "porterd's "
			    "max_per_source = 0 means no limit");
		}
	}
	emit_cps(cv, e, scalar_for(cv, e, A_CPS), &keys, &tail, e->name);
	emit_umask(cv, e, scalar_for(cv, e, A_UMASK), &keys);
	if ((s = &e->a[A_NICE])->set) {
		char *end;
		long n = strtol(s->w.v[0], &end, 10);

		if (*end != '\0' || end == s->w.v[0]) {
			error_at(cv, &s->at, "nice = %s: expected a number", s->w.v[0]);
			e->bad = 1;
		} else if (n < -20 || n > 19) {
			not_carried(cv, &tail, &s->at, e->name, "nice", "porterd's nice is -20 to 19");
		} else {
			key(&keys, "nice", s->w.v[0]);
		}
	}
	{
		static const struct {
			enum attr id;
			const char *key;
		} lim[] = {
			{ A_RLIMIT_AS, "rlimit_as" }, { A_RLIMIT_CPU, "rlimit_cpu" },
			{ A_RLIMIT_FILES, "rlimit_nofile" },
		};

		for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
			char v[32];
			const char *val;

			if (!(s = &e->a[lim[i].id])->set)
				continue;
			if ((val = rlimit_value(s->w.v[0], v, sizeof(v))) == NULL) {
				error_at(cv, &s->at, "%s = %s: expected a number (K or M may follow) "
				    "or UNLIMITED", attr_name(lim[i].id), s->w.v[0]);
				e->bad = 1;
			} else {
				key(&keys, lim[i].key, val);
			}
		}
	}
	for (size_t i = 0; i < sizeof(flag_defs) / sizeof(flag_defs[0]); i++)
		if ((flags & flag_defs[i].bit) && flag_defs[i].why != NULL)
			not_carried(cv, &tail, &e->a[A_FLAGS].at, e->name, flag_defs[i].name,
			    "%s", flag_defs[i].why);
	plain_not_carried(cv, e, &tail, e->name);

	if (e->bad || (int)cv->nerrors > nerr)
		goto out;
	buf_add(&src->out, "\n%s[%s]\n%s%s", head.s, section, keys.s, tail.s ? tail.s : "");
	src->used = 1;
	cv->converted++;
	if (!enabled)
		cv->disabled_count++;
	written = grow(written, nwritten, &capwritten, sizeof(*written));
	w = &written[nwritten++];
	w->e = e;
	snprintf(w->section, sizeof(w->section), "%s", section);
	snprintf(w->listen, sizeof(w->listen), "%s", listen);
	w->proto = proto;
	w->enabled = enabled;
out:
	free(keys.s);
	free(tail.s);
	free(head.s);
}

/*
 * xinetd's defaults. What every porterd service can take (instances, cps,
 * umask) goes into a [defaults] section; what porterd refuses in some
 * services when inherited (only_from, no_access and per_source on wait = yes
 * services), and what porterd has no [defaults] form for (bind, v6only,
 * passenv), is written into each service instead.
 */
static void
convert_defaults(struct conv *cv, const char *fold_why)
{
	struct entry *d = cv->defaults;
	struct buf keys = { 0 }, tail = { 0 };
	struct buf *out = &cv->defaults_out;

	if (d == NULL)
		return;
	commentf(out, "xinetd defaults, %s:%d", d->at.file, d->at.line);
	if (cv->fold) {
		commentf(out, "%s has a [defaults] section already: instances, cps and umask of "
		    "the xinetd defaults are written into each service.", fold_why);
		info_at(cv, &d->at, "defaults: %s has a [defaults] section already: written "
		    "into each service instead", fold_why);
	} else {
		emit_instances(cv, NULL, d->a[A_INSTANCES].set ? &d->a[A_INSTANCES] : NULL, &keys,
		    &tail, NULL);
		emit_cps(cv, NULL, d->a[A_CPS].set ? &d->a[A_CPS] : NULL, &keys, &tail, NULL);
		emit_umask(cv, NULL, d->a[A_UMASK].set ? &d->a[A_UMASK] : NULL, &keys);
	}
	if (d->only_from.present || d->no_access.present || d->passenv.present ||
	    d->a[A_BIND].set || d->a[A_V6ONLY].set || d->a[A_PER_SOURCE].set)
		comment(&tail, "only_from, no_access, per_source, passenv, bind and v6only of the "
		    "xinetd defaults are written into each service they apply to.");
	if (d->disabled.n > 0 || d->enabled.present)
		comment(&tail, "The services the defaults' disabled names, or its enabled does not "
		    "name, are written with enabled = no.");
	if (d->a[A_GROUPS].set && strcmp(d->a[A_GROUPS].w.v[0], "no") == 0)
		not_carried(cv, &tail, &d->a[A_GROUPS].at, NULL, "groups = no", "porterd gives a "
		    "handler the supplementary groups of its user");
	else if (d->a[A_GROUPS].set && strcmp(d->a[A_GROUPS].w.v[0], "yes") != 0) {
		error_at(cv, &d->a[A_GROUPS].at, "groups = %s: expected yes or no",
		    d->a[A_GROUPS].w.v[0]);
	}
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
				info_at(cv, &l->v[i].at, "defaults: warning: %s names %s, which is no "
				    "service's id", k == 0 ? "disabled" : "enabled", l->v[i].s);
		}
	}
	if (keys.len > 0) {
		buf_add(out, "[defaults]\n%s", keys.s);
		cv->have_defaults_section = 1;
	}
	if (tail.len > 0)
		buf_add(out, "%s", tail.s);
	else if (keys.len == 0)
		comment(out, "Nothing in them to carry over.");
	free(keys.s);
	free(tail.s);
}

/*
 * The section names of a services directory we are to write into, and whether
 * it has a [defaults] already: porterd takes one only. Returns the name of the
 * file with [defaults], or NULL.
 */
static char *
scan_dir(struct conv *cv, const char *dir)
{
	struct dirent *de;
	char *with_defaults = NULL;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return NULL;	/* created later */
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		char path[4096], *line = NULL;
		size_t cap = 0;
		FILE *f;

		if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".conf") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		while (getline(&line, &cap, f) >= 0) {
			char *p = line, *end;

			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != '[' || (end = strchr(p, ']')) == NULL)
				continue;
			*end = '\0';
			if (strcmp(p + 1, "defaults") == 0) {
				if (with_defaults == NULL)
					with_defaults = xstrdup(path);
			} else if (!taken(cv, p + 1)) {
				words_add(&cv->taken, p + 1);
			}
		}
		free(line);
		fclose(f);
	}
	closedir(d);
	return with_defaults;
}

/* A file name for the services of one xinetd file: NN-xinetd-NAME.conf. */
static void
out_name(const struct source *s, unsigned nn, int width, char *name, size_t len)
{
	const char *base = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
	size_t n = strlen(base);
	char clean[64];
	size_t k = 0;

	if (n > 5 && strcmp(base + n - 5, ".conf") == 0)
		n -= 5;
	for (size_t i = 0; i < n && k < sizeof(clean) - 1; i++)
		clean[k++] = isalnum((unsigned char)base[i]) || base[i] == '-' || base[i] == '_' ?
		    base[i] : '_';
	clean[k] = '\0';
	snprintf(name, len, "%0*u-xinetd-%s.conf", width, nn, clean);
}

static int
write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Write each file with O_EXCL, having first checked that none exists: an
 * existing file is never replaced, and a failure removes what was written.
 */
static int
write_dir(struct conv *cv, const char *dir, const char *header)
{
	struct words names = { 0 }, texts = { 0 };
	size_t nfiles = 0;
	int width = 2, rc = 0;
	unsigned first = 10;
	size_t made = 0;

	for (size_t i = 0; i < cv->nsrc; i++)
		nfiles += cv->src[i]->used;
	if (first + nfiles > 100) {
		width = 3;
		first = 100;
	}
	if (cv->defaults_out.len > 0) {
		char name[32];
		struct buf b = { 0 };

		snprintf(name, sizeof(name), "%0*u-xinetd-defaults.conf", width, 0);
		buf_add(&b, "%s%s", header, cv->defaults_out.s);
		words_add(&names, name);
		words_add(&texts, b.s);
		free(b.s);
	}
	for (size_t i = 0, nn = first; i < cv->nsrc; i++) {
		struct source *s = cv->src[i];
		char name[128];
		struct buf b = { 0 };

		if (!s->used)
			continue;
		out_name(s, (unsigned)nn++, width, name, sizeof(name));
		buf_add(&b, "%s", header);
		commentf(&b, "From %s.", s->path);
		buf_add(&b, "%s", s->out.s);
		words_add(&names, name);
		words_add(&texts, b.s);
		free(b.s);
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "porterd-xinetd: %s: %s\n", dir, strerror(errno));
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < names.n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, names.v[i]);
		if (lstat(path, &st) == 0) {
			fprintf(stderr, "porterd-xinetd: %s exists already; nothing written (remove "
			    "it, or write to another directory)\n", path);
			rc = -1;
		}
	}
	if (rc < 0)
		goto out;
	for (made = 0; made < names.n; made++) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/%s", dir, names.v[made]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "porterd-xinetd: %s: %s\n", path, strerror(errno));
			rc = -1;
			break;
		}
		if (write_all(fd, texts.v[made], strlen(texts.v[made])) < 0 || close(fd) < 0) {
			fprintf(stderr, "porterd-xinetd: %s: %s\n", path, strerror(errno));
			unlink(path);
			rc = -1;
			break;
		}
	}
	if (rc < 0) {
		while (made-- > 0) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", dir, names.v[made]);
			unlink(path);
		}
	} else {
		for (size_t i = 0; i < names.n; i++)
			info_at(cv, &(struct where){ dir, 0 }, "wrote %s", names.v[i]);
	}
out:
	words_clear(&names);
	words_clear(&texts);
	return rc;
}

static void
usage(void)
{
	fprintf(stderr, "usage: porterd-xinetd [-o DIR] [FILE]\n");
	exit(EXIT_USAGE);
}

static void
help(void)
{
	printf("usage: porterd-xinetd [-o DIR] [FILE]\n"
	    "Convert an xinetd configuration (FILE, default /etc/xinetd.conf, and the\n"
	    "files it includes) into porterd services.d files.\n"
	    "  -o DIR  write NN-xinetd-NAME.conf files into DIR (never replacing one);\n"
	    "          without -o, print one services.d stream on stdout\n"
	    "  -V      print the version\n"
	    "Then check the result with: porterd -t -d DIR\n");
	exit(0);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = "/etc/xinetd.conf", *dir = NULL;
	struct conv cv;
	struct buf header = { 0 };
	char *with_defaults = NULL;
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "ho:V", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': help(); break;
		case 'o': dir = optarg; break;
		case 'V': printf("porterd-xinetd %s\n", PACKAGE_VERSION); return 0;
		default: usage();
		}
	}
	if (argc - optind > 1)
		usage();
	if (optind < argc)
		file = argv[optind];
	if (dir != NULL && *dir == '\0')
		usage();

	memset(&cv, 0, sizeof(cv));
	words_add(&cv.taken, "defaults");
	if (dir != NULL && (with_defaults = scan_dir(&cv, dir)) != NULL)
		cv.fold = 1;
	read_file(&cv, file, NULL, 0);
	convert_defaults(&cv, with_defaults);
	for (size_t i = 0; i < cv.nsvc; i++)
		if (!cv.svc[i]->cut)	/* what it lacks would only be reported again */
			convert_service(&cv, cv.svc[i]);

	if (cv.nerrors > 0) {
		fputs(cv.errors.s, stderr);
		fprintf(stderr, "porterd-xinetd: %s: %zu error%s; nothing written\n", file,
		    cv.nerrors, cv.nerrors == 1 ? "" : "s");
		status = EXIT_INPUT;
		goto out;
	}
	commentf(&header, "porterd services converted from xinetd's configuration by "
	    "porterd-xinetd %s.", PACKAGE_VERSION);
	commentf(&header, "Check them with porterd -t before porterd reads them.");
	if (dir == NULL) {
		/* One stream: the [defaults] first, then each file's services in order. */
		fputs(header.s, stdout);
		if (cv.defaults_out.len > 0)
			printf("\n%s", cv.defaults_out.s);
		for (size_t i = 0; i < cv.nsrc; i++)
			if (cv.src[i]->used) {
				struct buf from = { 0 };

				commentf(&from, "From %s.", cv.src[i]->path);
				printf("\n%s%s", from.s, cv.src[i]->out.s);
				free(from.s);
			}
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "porterd-xinetd: stdout: %s\n", strerror(errno));
			status = EXIT_SYSTEM;
		}
	} else if (write_dir(&cv, dir, header.s) < 0) {
		status = EXIT_SYSTEM;
	}
	if (status == 0 && cv.notes.len > 0)
		fputs(cv.notes.s, stderr);
	if (status == 0)
		fprintf(stderr, "porterd-xinetd: %zu service%s converted (%zu with enabled = no), "
		    "%zu left out, %zu note%s on what is not carried over\n", cv.converted,
		    cv.converted == 1 ? "" : "s", cv.disabled_count, cv.left_out, cv.nnotes,
		    cv.nnotes == 1 ? "" : "s");
out:
	for (size_t i = 0; i < cv.nsvc; i++)
		entry_free(cv.svc[i]);
	free(cv.svc);
	entry_free(cv.defaults);
	for (size_t i = 0; i < cv.nsrc; i++) {
		free(cv.src[i]->path);
		free(cv.src[i]->out.s);
		free(cv.src[i]);
	}
	free(cv.src);
	free(cv.errors.s);
	free(cv.notes.s);
	free(cv.defaults_out.s);
	free(header.s);
	free(with_defaults);
	free(written);
	words_clear(&cv.taken);
	return status;
}
