/* xinetd_limits: counts, rates and process limits; see xinetd_limits.h. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xinetd_diag.h"
#include "xinetd_emit.h"
#include "xinetd_limits.h"
#include "xinetd_read.h"

/* porterd's largest max_children, max_per_source and rate. */
#define COUNT_MAX 1000000
/* The longest pause of cps we read, in seconds. */
#define PAUSE_MAX 1000000000

static const struct {
	enum attr	 id;
	const char	*key;
} rlimits[] = {
	{ A_RLIMIT_AS, "rlimit_as" }, { A_RLIMIT_CPU, "rlimit_cpu" },
	{ A_RLIMIT_FILES, "rlimit_nofile" },
};

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

/* An octal mask, or -1. */
static long
umask_value(const char *s)
{
	char *end;
	unsigned long m = strtoul(s, &end, 8);

	if (!isdigit((unsigned char)s[0]) || *end != '\0' || m > 0777)
		return -1;
	return (long)m;
}

static int
nice_ok(const char *s, long *n)
{
	char *end;

	*n = strtol(s, &end, 10);
	return *end == '\0' && end != s;
}

/* A number or UNLIMITED, as instances and per_source take. */
static int
count_ok(const char *s)
{
	return strcmp(s, "UNLIMITED") == 0 || text_number(s, COUNT_MAX) >= 0;
}

static int
cps_ok(const struct slot *s)
{
	return text_number(s->w.v[0], COUNT_MAX) >= 0 && text_number(s->w.v[1], PAUSE_MAX) >= 0;
}

/* Whether an error was reported, so that the entry is marked bad. */
static int
check_instances(struct conv *cv, const struct slot *s)
{
	if (count_ok(s->w.v[0]))
		return 0;
	diag_error(cv, &s->at, "instances = %s: expected a number or UNLIMITED", s->w.v[0]);
	return 1;
}

static int
check_cps(struct conv *cv, const struct slot *s)
{
	if (cps_ok(s))
		return 0;
	diag_error(cv, &s->at, "cps = %s %s: expected two numbers", s->w.v[0], s->w.v[1]);
	return 1;
}

static int
check_umask(struct conv *cv, const struct slot *s)
{
	if (umask_value(s->w.v[0]) >= 0)
		return 0;
	diag_error(cv, &s->at, "umask = %s: expected an octal mask such as 022", s->w.v[0]);
	return 1;
}

static int
check_per_source(struct conv *cv, const struct slot *s)
{
	if (count_ok(s->w.v[0]))
		return 0;
	diag_error(cv, &s->at, "per_source = %s: expected a number or UNLIMITED", s->w.v[0]);
	return 1;
}

static int
check_nice(struct conv *cv, const struct slot *s)
{
	long n;

	if (nice_ok(s->w.v[0], &n))
		return 0;
	diag_error(cv, &s->at, "nice = %s: expected a number", s->w.v[0]);
	return 1;
}

static int
check_rlimit(struct conv *cv, enum attr id, const struct slot *s)
{
	char v[32];

	if (rlimit_value(s->w.v[0], v, sizeof(v)) != NULL)
		return 0;
	diag_error(cv, &s->at, "%s = %s: expected a number (K or M may follow) or UNLIMITED",
	    read_attr_name(id), s->w.v[0]);
	return 1;
}

void
limits_check(struct conv *cv, struct entry *e)
{
	const struct slot *a = e->a;

	if (a[A_INSTANCES].set && check_instances(cv, &a[A_INSTANCES]))
		e->bad = 1;
	if (a[A_CPS].set && check_cps(cv, &a[A_CPS]))
		e->bad = 1;
	if (a[A_UMASK].set && check_umask(cv, &a[A_UMASK]))
		e->bad = 1;
	if (a[A_PER_SOURCE].set && check_per_source(cv, &a[A_PER_SOURCE]))
		e->bad = 1;
	if (a[A_NICE].set && check_nice(cv, &a[A_NICE]))
		e->bad = 1;
	for (enum attr id = A_RLIMIT_AS; id <= A_RLIMIT_FILES; id++)
		if (a[id].set && check_rlimit(cv, id, &a[id]))
			e->bad = 1;
}

void
limits_instances(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys,
    struct buf *tail, const char *who)
{
	long n;
	char v[16];

	if (s == NULL)
		return;
	if (strcmp(s->w.v[0], "UNLIMITED") == 0) {
		const struct slot *d = cv->defaults ? &cv->defaults->a[A_INSTANCES] : NULL;

		/* Without a limit of its own the service would take the [defaults] one. */
		if (!cv->fold && e != NULL && d != NULL && d->set && text_digits(d->w.v[0])) {
			emit_key(keys, "max_children", "1000000");
			emit_commentf(tail, "instances = UNLIMITED (%s:%d): porterd has no "
			    "unlimited; 1000000 is its largest max_children.", s->at.file,
			    s->at.line);
		} else {
			emit_commentf(tail, "instances = UNLIMITED (%s:%d): porterd has no "
			    "unlimited; its default max_children = 256 applies.", s->at.file,
			    s->at.line);
		}
		return;
	}
	if (check_instances(cv, s)) {
		if (e != NULL)
			e->bad = 1;
		return;
	}
	n = text_number(s->w.v[0], COUNT_MAX);
	if (n == 0) {
		diag_not_carried(cv, tail, &s->at, who, "instances = 0", "porterd's max_children "
		    "is at least 1");
		return;
	}
	if (n > COUNT_MAX) {
		n = COUNT_MAX;
		emit_commentf(tail, "instances = %s (%s:%d): 1000000 is porterd's largest "
		    "max_children.", s->w.v[0], s->at.file, s->at.line);
	}
	snprintf(v, sizeof(v), "%ld", n);
	emit_key(keys, "max_children", v);
}

void
limits_cps(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys,
    struct buf *tail, const char *who)
{
	long n, pause;
	char v[32];

	if (s == NULL)
		return;
	if (check_cps(cv, s)) {
		if (e != NULL)
			e->bad = 1;
		return;
	}
	n = text_number(s->w.v[0], COUNT_MAX);
	pause = text_number(s->w.v[1], PAUSE_MAX);
	if (n == 0)	/* xinetd: no limit */
		return;
	if (n > COUNT_MAX)
		n = COUNT_MAX;
	snprintf(v, sizeof(v), "%ld/1", n);
	emit_key(keys, "rate", v);
	diag_not_carried(cv, tail, &s->at, who, "the pause of cps", "beyond %ld connections a "
	    "second porterd refuses each connection too many; xinetd stopped the whole "
	    "service for %ld s instead", n, pause);
}

void
limits_umask(struct conv *cv, struct entry *e, const struct slot *s, struct buf *keys)
{
	char v[8];

	if (s == NULL)
		return;
	if (check_umask(cv, s)) {
		if (e != NULL)
			e->bad = 1;
		return;
	}
	snprintf(v, sizeof(v), "%03lo", (unsigned long)umask_value(s->w.v[0]));
	emit_key(keys, "umask", v);
}

void
limits_per_source(struct conv *cv, struct entry *e, const struct slot *s, int server_waits,
    struct buf *keys, struct buf *tail)
{
	long n;
	char v[16];

	if (s == NULL)
		return;
	if (check_per_source(cv, s)) {
		e->bad = 1;
		return;
	}
	n = strcmp(s->w.v[0], "UNLIMITED") == 0 ? 0 : text_number(s->w.v[0], COUNT_MAX);
	if (server_waits) {
		if (s == &e->a[A_PER_SOURCE] && n > 0)
			diag_not_carried(cv, tail, &s->at, e->name, "per_source", "a wait = yes "
			    "handler receives its clients itself, so porterd cannot count them");
	} else if (n > 0) {
		snprintf(v, sizeof(v), "%ld", n > COUNT_MAX ? COUNT_MAX : n);
		emit_key(keys, "max_per_source", v);
	} else if (strcmp(s->w.v[0], "0") == 0) {
		diag_not_carried(cv, tail, &s->at, e->name, "per_source = 0", "porterd's "
		    "max_per_source = 0 means no limit");
	}
}

void
limits_nice(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail)
{
	const struct slot *s = &e->a[A_NICE];
	long n;

	if (!s->set)
		return;
	if (check_nice(cv, s)) {
		e->bad = 1;
		return;
	}
	(void)nice_ok(s->w.v[0], &n);
	if (n < -20 || n > 19)
		diag_not_carried(cv, tail, &s->at, e->name, "nice", "porterd's nice is -20 to 19");
	else
		emit_key(keys, "nice", s->w.v[0]);
}

void
limits_rlimits(struct conv *cv, struct entry *e, struct buf *keys)
{
	for (size_t i = 0; i < sizeof(rlimits) / sizeof(rlimits[0]); i++) {
		const struct slot *s = &e->a[rlimits[i].id];
		char v[32];

		if (!s->set)
			continue;
		if (check_rlimit(cv, rlimits[i].id, s))
			e->bad = 1;
		else
			emit_key(keys, rlimits[i].key, rlimit_value(s->w.v[0], v, sizeof(v)));
	}
}
