/*
 * config: the service table as a whole. It has its sources read (config_read,
 * inetd_conf), its sections given meaning (config_keys), then checks what only
 * the whole table shows, and reports every error in file and line order.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_raw.h"
#include "hash.h"
#include "tls.h"


void
config_error(struct config_errors *errs, const struct where *at, const char *fmt, ...)
{
	char msg[1024], *line;
	char **grown;
	va_list ap;
	int n = 0;

	if (at != NULL && at->file != NULL)
		n = at->line > 0 ? snprintf(msg, sizeof(msg), "%s:%d: ", at->file, at->line)
		    : snprintf(msg, sizeof(msg), "%s: ", at->file);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	grown = realloc(errs->msg, (errs->n + 1) * sizeof(*grown));
	if (grown == NULL)
		return;
	errs->msg = grown;
	if ((line = strdup(msg)) != NULL)
		errs->msg[errs->n++] = line;
}

void
config_errors_free(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

void *
config_grow(void *p, size_t *cap, size_t n, size_t size)
{
	void *q;

	if (n < *cap)
		return p;
	*cap = *cap ? 2 * *cap : 8;
	if ((q = realloc(p, *cap * size)) == NULL)
		abort();	/* start-up or reload of a few KiB: nothing to degrade to */
	return q;
}

char *
config_strdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

const char *
config_keep_file(struct config *cf, const char *path)
{
	cf->files = config_grow(cf->files, &cf->files_cap, cf->nfiles, sizeof(*cf->files));
	return cf->files[cf->nfiles++] = config_strdup(path);
}

FILE *
config_open(struct raw *raw, const char *path)
{
	struct where at = { path, 0 };
	struct stat st;
	FILE *f;
	int fd;

	/* Non-blocking: a FIFO named *.conf must not hang a reload. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) < 0) {
		config_error(raw->errs, &at, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		config_error(raw->errs, &at, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		config_error(raw->errs, &at, "not a regular file");
	} else if (st.st_size > CONFIG_FILE_MAX) {
		config_error(raw->errs, &at, "%lld bytes: a configuration file is at most "
		    "%d MiB", (long long)st.st_size, CONFIG_FILE_MAX >> 20);
	} else if (fcntl(fd, F_SETFL, 0) == 0 && (f = fdopen(fd, "r")) != NULL) {
		return f;
	} else {
		config_error(raw->errs, &at, "%s", strerror(errno));
	}
	close(fd);
	return NULL;
}

/* The slot of `name` in the hash: its section's, or the free one where it would go. */
static size_t *
by_name_slot(struct raw *raw, const char *name)
{
	size_t mask = raw->by_name_cap - 1, i = (size_t)hash_string(name) & mask;

	while (raw->by_name[i] != 0 && strcmp(raw->sec[raw->by_name[i] - 1].name, name) != 0)
		i = (i + 1) & mask;
	return &raw->by_name[i];
}

/* Sections are looked up by name at every one read: 10,000 of them must not cost n². */
struct section *
raw_find(struct raw *raw, const char *name)
{
	size_t *slot;

	if (raw->by_name_cap == 0)
		return NULL;
	slot = by_name_slot(raw, name);
	return *slot != 0 ? &raw->sec[*slot - 1] : NULL;
}

/* A new, empty section named name (not copied) at the end of raw. */
static struct section *
raw_append(struct raw *raw, char *name)
{
	struct section *sec;

	if (2 * (raw->n + 1) > raw->by_name_cap) {
		size_t cap = raw->by_name_cap ? 2 * raw->by_name_cap : 64;

		free(raw->by_name);
		if ((raw->by_name = calloc(cap, sizeof(*raw->by_name))) == NULL)
			abort();
		raw->by_name_cap = cap;
		for (size_t i = 0; i < raw->n; i++)
			*by_name_slot(raw, raw->sec[i].name) = i + 1;
	}
	raw->sec = config_grow(raw->sec, &raw->cap, raw->n, sizeof(*sec));
	sec = &raw->sec[raw->n++];
	memset(sec, 0, sizeof(*sec));
	sec->name = name;
	*by_name_slot(raw, name) = raw->n;
	return sec;
}

struct section *
raw_section_new(struct raw *raw, const char *name, const struct where *at)
{
	struct section *sec = raw_append(raw, config_strdup(name));

	sec->at = *at;
	return sec;
}

void
raw_section_lend(struct raw *raw, const struct section *from)
{
	struct section *sec = raw_append(raw, from->name);

	*sec = *from;
	sec->lent = 1;
}

void
section_add(struct section *sec, const char *key, const char *value, const struct where *at,
    int cont)
{
	struct entry *e;

	if (sec->lent)
		abort();	/* the cache's: read-only */
	sec->e = config_grow(sec->e, &sec->cap, sec->n, sizeof(*e));
	e = &sec->e[sec->n++];
	e->key = config_strdup(key);
	e->value = config_strdup(value);
	e->at = *at;
	e->cont = cont;
}

void
config_free(struct config *cf)
{
	if (cf == NULL)
		return;
	for (size_t i = 0; i < cf->nsvc; i++)
		config_service_free(&cf->svc[i]);
	free(cf->svc);
	for (size_t i = 0; i < cf->nfiles; i++)
		free(cf->files[i]);
	free(cf->files);
	config_errors_free(&cf->warnings);
	free(cf);
}

static void errs_sort(struct config_errors *errs);

/*
 * /etc/inetd.conf is shared: every package that registers a service edits it
 * (update-inetd), and each of them is told it went well. As openbsd-inetd
 * does, one wrong line must not keep the others (or services.d) from being
 * served: an error at a line of the -i file leaves out the services made from
 * that line, and becomes a warning; one about the whole file (it is missing)
 * leaves the file out. services.d stays all or nothing.
 */
static void
inetd_lines_apart(struct config *cf, const char *path, struct config_errors *errs)
{
	size_t plen = strlen(path), keep = 0;

	for (size_t i = 0; i < errs->n; i++) {
		char *m = errs->msg[i], *rest, *w;
		long line;

		if (strncmp(m, path, plen) != 0 || m[plen] != ':') {
			errs->msg[keep++] = m;
			continue;
		}
		line = strtol(m + plen + 1, &rest, 10);
		if (rest == m + plen + 1 || *rest != ':')
			line = 0, rest = m + plen;
		for (size_t s = 0; s < cf->nsvc; ) {
			const struct service *sv = &cf->svc[s];

			if ((line == 0 || sv->at.line == line) && sv->at.file != NULL &&
			    strcmp(sv->at.file, path) == 0) {
				config_service_free(&cf->svc[s]);
				memmove(&cf->svc[s], &cf->svc[s + 1],
				    (cf->nsvc - s - 1) * sizeof(*cf->svc));
				cf->nsvc--;
			} else {
				s++;
			}
		}
		if (asprintf(&w, "%.*s: warning:%s (%s)", (int)(rest - m), m, rest + 1,
		    line > 0 ? "the line is left out" : "nothing of it is served") < 0)
			abort();
		if ((cf->warnings.msg = realloc(cf->warnings.msg, (cf->warnings.n + 1) *
		    sizeof(char *))) == NULL)
			abort();	/* a few KiB at start-up or reload */
		cf->warnings.msg[cf->warnings.n++] = w;
		free(m);
	}
	errs->n = keep;
	if (keep == 0) {
		free(errs->msg);	/* no error left: the caller frees nothing */
		errs->msg = NULL;
	}
	errs_sort(&cf->warnings);
}

void
raw_free(struct raw *raw)
{
	for (size_t i = 0; i < raw->n; i++) {
		if (raw->sec[i].lent)
			continue;
		for (size_t j = 0; j < raw->sec[i].n; j++) {
			free(raw->sec[i].e[j].key);
			free(raw->sec[i].e[j].value);
		}
		free(raw->sec[i].e);
		free(raw->sec[i].name);
	}
	free(raw->sec);
	free(raw->by_name);
}

static void
check_tcpmux_names(struct config *cf, struct config_errors *errs)
{
	for (size_t i = 0; i < cf->nsvc; i++)
		for (size_t j = 0; cf->svc[i].tcpmux != NULL && j < i; j++)
			if (cf->svc[j].tcpmux != NULL &&
			    strcasecmp(cf->svc[i].tcpmux, cf->svc[j].tcpmux) == 0) {
				config_error(errs, cf->svc[i].tcpmux_at.line != 0 ?
				    &cf->svc[i].tcpmux_at : &cf->svc[i].at, "[%s]: tcpmux name %s is already "
				    "[%s]'s (names are not case sensitive)", cf->svc[i].name,
				    cf->svc[i].tcpmux, cf->svc[j].name);
				break;
			}
}

/* Services with a socket, in an order that puts the ones that may clash together. */
static int
by_socket(const void *x, const void *y)
{
	const struct service *a = *(const struct service *const *)x;
	const struct service *b = *(const struct service *const *)y;
	int c;

	if (a->socktype != b->socktype)
		return a->socktype < b->socktype ? -1 : 1;
	if ((c = addr_conflict_order(&a->listen, &b->listen)) != 0)
		return c;
	return a < b ? -1 : a > b;	/* the order read: the first one keeps the address */
}

/* Sorted, so that 10,000 services cost n log n, not n². */
static void
check_addresses(struct config *cf, struct config_errors *errs)
{
	const struct service **v = calloc(cf->nsvc + 1, sizeof(*v));
	size_t n = 0;

	if (v == NULL)
		abort();
	for (size_t i = 0; i < cf->nsvc; i++)
		if (cf->svc[i].enabled && cf->svc[i].listen.family != 0)
			v[n++] = &cf->svc[i];
	qsort(v, n, sizeof(*v), by_socket);
	for (size_t i = 0, run = 0; i < n; i++) {
		const struct service *a = v[i];

		/* The run of those that may clash with a, first read first. */
		if (v[run]->socktype != a->socktype ||
		    addr_conflict_order(&v[run]->listen, &a->listen) != 0)
			run = i;
		for (size_t j = run; j < i; j++) {
			const struct service *b = v[j];
			char text[ADDR_TEXT_MAX];

			if (!addr_conflict(&a->listen, &b->listen))
				continue;
			addr_format(&a->listen, text, sizeof(text));
			config_error(errs, &a->listen_at, "listen = %s: clashes with [%s] at %s:%d",
			    text, b->name, b->listen_at.file, b->listen_at.line);
			break;
		}
	}
	free(v);
}

/* Errors come from several passes; an admin reads them best in file and line order. */
struct err_order {
	char	*msg;
	size_t	 seq;
	size_t	 pathlen;	/* of "PATH" in "PATH:LINE: text" */
	long	 line;
};

static int
err_cmp(const void *a, const void *b)
{
	const struct err_order *x = a, *y = b;
	size_t n = x->pathlen < y->pathlen ? x->pathlen : y->pathlen;
	int c = strncmp(x->msg, y->msg, n);

	if (c != 0)
		return c;
	if (x->pathlen != y->pathlen)
		return x->pathlen < y->pathlen ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void
errs_sort(struct config_errors *errs)
{
	struct err_order *o = calloc(errs->n + 1, sizeof(*o));

	if (o == NULL)
		return;
	for (size_t i = 0; i < errs->n; i++) {
		char *sep = strstr(errs->msg[i], ": "), *colon;

		o[i].msg = errs->msg[i];
		o[i].seq = i;
		o[i].pathlen = sep ? (size_t)(sep - errs->msg[i]) : 0;
		o[i].line = 0;
		for (colon = sep; colon != NULL && colon > errs->msg[i]; colon--)
			if (*colon == ':' && colon != sep)
				break;
		if (colon != NULL && colon > errs->msg[i] && *colon == ':' &&
		    strspn(colon + 1, "0123456789") == (size_t)(sep - colon - 1) && sep > colon + 1) {
			o[i].pathlen = (size_t)(colon - errs->msg[i]);
			o[i].line = strtol(colon + 1, NULL, 10);
		}
	}
	qsort(o, errs->n, sizeof(*o), err_cmp);
	for (size_t i = 0; i < errs->n; i++)
		errs->msg[i] = o[i].msg;
	free(o);
}

int
config_load_tls(struct config *cf, struct config_errors *errs)
{
	size_t before = errs->n;

	for (size_t i = 0; i < cf->nsvc; i++) {
		struct service *s = &cf->svc[i];

		/* Unpaired files are already an error of their keys. */
		if (s->tls && s->tls_ctx == NULL && s->ntls_cert > 0 && s->ntls_cert == s->ntls_key)
			tls_build(s, errs);
	}
	if (errs->n == before)
		return 0;
	errs_sort(errs);
	return -1;
}

struct config *
config_load(const struct config_sources *src, struct config_errors *errs, FILE *notes)
{
	struct config *cf = calloc(1, sizeof(*cf));
	struct section *defaults;
	size_t i, unchecked;
	struct raw raw;

	if (cf == NULL)
		abort();
	memset(&raw, 0, sizeof(raw));
	raw.errs = errs;
	raw.cf = cf;
	raw.notes = notes;
	config_keys_new_load();
	config_read_dir(&raw, src->dir);
	/* After services.d, whose services replace the lines of the same name. */
	if (src->inetd_conf != NULL)
		inetd_conf_read(&raw, src->inetd_conf);

	defaults = raw_find(&raw, "defaults");
	cf->svc = calloc(raw.n + 1, sizeof(*cf->svc));
	if (cf->svc == NULL)
		abort();
	if (defaults != NULL)
		config_check_defaults(defaults, errs);
	for (i = 0; i < raw.n && errs->n < CONFIG_ERRORS_MAX; i++)
		if (&raw.sec[i] != defaults)
			config_build_service(&cf->svc[cf->nsvc++], defaults, &raw.sec[i], errs);
	unchecked = raw.n - i;
	if (errs->n < CONFIG_ERRORS_MAX) {
		check_addresses(cf, errs);
		check_tcpmux_names(cf, errs);
	}
	raw_free(&raw);
	if (!src->tls_apart)
		(void)config_load_tls(cf, errs);
	if (src->inetd_conf != NULL)
		inetd_lines_apart(cf, src->inetd_conf, errs);
	if (errs->n > 0) {
		errs_sort(errs);
		/* Garbage must not cost a reload seconds and megabytes of messages. */
		if (unchecked > 0)
			config_error(errs, NULL, "the other %zu section%s were not checked",
			    unchecked, unchecked == 1 ? "" : "s");
		config_free(cf);
		return NULL;
	}
	return cf;
}
