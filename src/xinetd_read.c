/* xinetd_read: xinetd.conf and the files it includes into entries; see xinetd_read.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xinetd_diag.h"
#include "xinetd_read.h"

/* xinetd follows include loops until it runs out of descriptors; we stop. */
#define INCLUDE_DEPTH 16
/* The most networks one factorized word of only_from or no_access stands for. */
#define NETS_PER_WORD 256

#define IN_SERVICE 1
#define IN_DEFAULTS 2
#define LIST -2		/* any number of values, and += and -= */
#define ANY -1		/* any number of values, = only */

static const struct attr_def {
	const char	*name;
	enum attr	 id;
	int		 nvalues;	/* exactly this many, or LIST, or ANY */
	int		 in;		/* IN_SERVICE | IN_DEFAULTS */
} attr_defs[] = {
	{ "socket_type", A_SOCKET_TYPE, 1, IN_SERVICE },
	{ "protocol", A_PROTOCOL, 1, IN_SERVICE },
	{ "wait", A_WAIT, 1, IN_SERVICE },
	{ "user", A_USER, 1, IN_SERVICE },
	{ "group", A_GROUP, 1, IN_SERVICE },
	{ "server", A_SERVER, 1, IN_SERVICE },
	{ "server_args", A_SERVER_ARGS, ANY, IN_SERVICE },
	{ "instances", A_INSTANCES, 1, IN_SERVICE | IN_DEFAULTS },
	{ "type", A_TYPE, ANY, IN_SERVICE },
	{ "id", A_ID, 1, IN_SERVICE },
	{ "port", A_PORT, 1, IN_SERVICE },
	{ "flags", A_FLAGS, ANY, IN_SERVICE },
	{ "nice", A_NICE, 1, IN_SERVICE },
	{ "bind", A_BIND, 1, IN_SERVICE | IN_DEFAULTS },
	{ "interface", A_BIND, 1, IN_SERVICE | IN_DEFAULTS },
	{ "per_source", A_PER_SOURCE, 1, IN_SERVICE | IN_DEFAULTS },
	{ "groups", A_GROUPS, 1, IN_SERVICE | IN_DEFAULTS },
	{ "cps", A_CPS, 2, IN_SERVICE | IN_DEFAULTS },
	{ "disable", A_DISABLE, 1, IN_SERVICE },
	{ "rlimit_as", A_RLIMIT_AS, 1, IN_SERVICE },
	{ "rlimit_cpu", A_RLIMIT_CPU, 1, IN_SERVICE },
	{ "rlimit_files", A_RLIMIT_FILES, 1, IN_SERVICE },
	{ "v6only", A_V6ONLY, 1, IN_SERVICE | IN_DEFAULTS },
	{ "umask", A_UMASK, 1, IN_SERVICE | IN_DEFAULTS },
	{ "redirect", A_REDIRECT, 2, IN_SERVICE },
	{ "banner", A_BANNER, 1, IN_SERVICE | IN_DEFAULTS },
	{ "banner_success", A_BANNER_SUCCESS, 1, IN_SERVICE | IN_DEFAULTS },
	{ "banner_fail", A_BANNER_FAIL, 1, IN_SERVICE | IN_DEFAULTS },
	{ "access_times", A_ACCESS_TIMES, ANY, IN_SERVICE },
	{ "log_type", A_LOG_TYPE, ANY, IN_SERVICE | IN_DEFAULTS },
	{ "log_on_success", A_LOG_ON_SUCCESS, LIST, IN_SERVICE | IN_DEFAULTS },
	{ "log_on_failure", A_LOG_ON_FAILURE, LIST, IN_SERVICE | IN_DEFAULTS },
	{ "rpc_version", A_RPC_VERSION, 1, IN_SERVICE },
	{ "rpc_number", A_RPC_NUMBER, 1, IN_SERVICE },
	{ "max_load", A_MAX_LOAD, 1, IN_SERVICE | IN_DEFAULTS },
	{ "deny_time", A_DENY_TIME, 1, IN_SERVICE },
	{ "mdns", A_MDNS, 1, IN_SERVICE },
	{ "libwrap", A_LIBWRAP, 1, IN_SERVICE },
	{ "rlimit_data", A_RLIMIT_DATA, 1, IN_SERVICE },
	{ "rlimit_rss", A_RLIMIT_RSS, 1, IN_SERVICE },
	{ "rlimit_stack", A_RLIMIT_STACK, 1, IN_SERVICE },
	{ "only_from", A_ONLY_FROM, LIST, IN_SERVICE | IN_DEFAULTS },
	{ "no_access", A_NO_ACCESS, LIST, IN_SERVICE | IN_DEFAULTS },
	{ "env", A_ENV, LIST, IN_SERVICE },
	{ "passenv", A_PASSENV, LIST, IN_SERVICE | IN_DEFAULTS },
	{ "disabled", A_DISABLED, LIST, IN_DEFAULTS },
	{ "enabled", A_ENABLED, LIST, IN_DEFAULTS },
};

static const struct attr_def *
attr_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++)
		if (strcmp(attr_defs[i].name, name) == 0)
			return &attr_defs[i];
	return NULL;
}

const char *
read_attr_name(enum attr id)
{
	for (size_t i = 0; i < sizeof(attr_defs) / sizeof(attr_defs[0]); i++)
		if (attr_defs[i].id == id)
			return attr_defs[i].name;
	return "?";
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

/* only_from or no_access: OP (=, + or -) the networks of the words from `from` on. */
static void
apply_nets(struct conv *cv, struct nets *l, const char *attr, int op, const struct words *w,
    size_t from, const struct where *at, struct entry *e)
{
	if (op == '=')
		nets_clear(l);
	l->present = 1;
	l->at = *at;
	for (size_t i = from; i < w->n; i++) {
		struct net nets[NETS_PER_WORD];
		size_t count;
		const char *why;

		if (nets_parse(w->v[i], nets, NETS_PER_WORD, &count, &why) < 0) {
			diag_error(cv, at, "%s: %s: %s", attr, w->v[i], why);
			e->bad = 1;
			continue;
		}
		for (size_t k = 0; k < count; k++) {
			nets[k].at = *at;
			nets[k].text = w->v[i];
			if (op == '-') {
				for (size_t j = l->n; j-- > 0;)
					if (nets_same(&l->v[j], &nets[k]))
						nets_del(l, j);
			} else {
				nets_add(l, &nets[k]);
			}
		}
	}
}

/* A list of words: OP the words from `from` on; unique: a word already there is not added. */
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

/* A list attribute: w are its values. */
static void
list_line(struct conv *cv, struct entry *e, const char *name, enum attr id, int op,
    const struct words *w, const struct where *at)
{
	/* In defaults, xinetd adds with '=' as with '+='. */
	if (e->name == NULL && op == '=')
		op = '+';
	switch (id) {
	case A_ONLY_FROM:
		apply_nets(cv, &e->only_from, name, op, w, 0, at, e);
		break;
	case A_NO_ACCESS:
		apply_nets(cv, &e->no_access, name, op, w, 0, at, e);
		break;
	case A_ENV:
		if (op == '-') {
			diag_error(cv, at, "env: xinetd has no '-=' for env");
			e->bad = 1;
			break;
		}
		for (size_t i = 0; i < w->n; i++)
			if (strchr(w->v[i], '=') == NULL) {
				diag_error(cv, at, "env: %s: expected NAME=VALUE", w->v[i]);
				e->bad = 1;
			}
		/* xinetd's env '=' replaces what was there only when something was. */
		apply_items(&e->env, op, w, 0, at, 0);
		break;
	case A_PASSENV:
		apply_items(&e->passenv, op, w, 0, at, 1);
		break;
	case A_DISABLED:
		apply_items(&e->disabled, op, w, 0, at, 1);
		break;
	case A_ENABLED:
		apply_items(&e->enabled, op, w, 0, at, 1);
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
}

/* A scalar attribute: set once, with '='. Takes w when it keeps it. */
static void
scalar_line(struct conv *cv, struct entry *e, const struct attr_def *ad, int op,
    struct words *w, const struct where *at)
{
	const char *name = ad->name;

	if (op != '=') {
		diag_error(cv, at, "%s takes '=' only", name);
		e->bad = 1;
	} else if (e->a[ad->id].set) {
		diag_error(cv, at, "%s is already set at line %d", name, e->a[ad->id].at.line);
		e->bad = 1;
	} else if (ad->nvalues > 0 && w->n != (size_t)ad->nvalues) {
		diag_error(cv, at, "%s takes %d value%s, not %zu", name, ad->nvalues,
		    ad->nvalues == 1 ? "" : "s", w->n);
		e->bad = 1;
	} else if (ad->nvalues == ANY && w->n == 0 && ad->id != A_SERVER_ARGS) {
		diag_error(cv, at, "%s needs a value", name);
		e->bad = 1;
	} else {
		e->a[ad->id].set = 1;
		e->a[ad->id].at = *at;
		e->a[ad->id].w = *w;
		memset(w, 0, sizeof(*w));
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
		diag_error(cv, at, "'%.*s': put a blank between the attribute and its operator",
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
		diag_error(cv, at, "%s: expected '=', '+=' or '-=' after the attribute", name);
		e->bad = 1;
		return;
	}
	if ((ad = attr_lookup(name)) == NULL) {
		diag_error(cv, at, "unknown attribute '%s'", name);
		e->bad = 1;
		return;
	}
	if (!(ad->in & (defaults ? IN_DEFAULTS : IN_SERVICE))) {
		diag_error(cv, at, defaults ? "%s cannot be set in defaults" :
		    "%s can be set in defaults only", name);
		e->bad = 1;
		return;
	}
	words_split(p, &w);
	if (ad->nvalues == LIST)
		list_line(cv, e, name, ad->id, op, &w, at);
	else
		scalar_line(cv, e, ad, op, &w, at);
	words_clear(&w);
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
	diag_error(cv, &e->at, "%s%s: no '}' before the end of the file",
	    e->name ? "service " : "defaults", e->name ? e->name : "");
	e->bad = e->cut = 1;
	return -1;
}

/* Skip the rest of an entry whose '{' is missing, as xinetd does. */
static void
skip_entry(FILE *f, char **line, size_t *cap, int *lineno)
{
	while (next_line(f, line, cap, lineno) != NULL)
		if (only_char(*line, '}'))
			return;
}

static int read_file(struct conv *, const char *, const struct where *, int);

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
		diag_error(cv, at, "includedir %s: %s", dir, strerror(errno));
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
			diag_info(cv, &here, "skipped, as xinetd skips it (%s)",
			    strchr(n, '.') != NULL ? "the name contains a '.'" :
			    "the name ends in '~'");
			continue;
		}
		if (stat(path, &st) < 0) {
			diag_error(cv, &here, "%s", strerror(errno));
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			diag_info(cv, &here, "skipped, as xinetd skips it (not a regular file)");
			continue;
		}
		read_file(cv, path, at, depth + 1);
	}
	words_clear(&names);
}

/* A "service NAME" or "defaults" line, and the entry that follows it. */
static void
read_entry(struct conv *cv, const struct words *w, FILE *f, const struct where *at, size_t si,
    char **line, size_t *cap, int *lineno, int *defaults_here)
{
	int service = w->v[0][0] == 's';
	struct entry *e;

	if (next_line(f, line, cap, lineno) == NULL || !only_char(*line, '{')) {
		diag_error(cv, at, "%s%s: expected '{' alone on the next line",
		    service ? "service " : "defaults", service ? w->v[1] : "");
		if (!feof(f))
			skip_entry(f, line, cap, lineno);
		return;
	}
	if (service) {
		e = conv_entry_new(w->v[1], at, si);
		/*
		 * xinetd copies the defaults' lists into a service as it starts
		 * reading it, so that its += and -= work on them and its =
		 * replaces them.
		 */
		if (cv->defaults != NULL) {
			nets_copy(&e->only_from, &cv->defaults->only_from);
			nets_copy(&e->no_access, &cv->defaults->no_access);
			items_copy(&e->passenv, &cv->defaults->passenv);
		}
		entry_body(cv, e, f, at->file, line, cap, lineno);
		cv->svc = xgrow(cv->svc, cv->nsvc, &cv->capsvc, sizeof(*cv->svc));
		cv->svc[cv->nsvc++] = e;
	} else if ((*defaults_here)++) {
		diag_error(cv, at, "defaults: only one defaults entry per file");
		skip_entry(f, line, cap, lineno);
	} else {
		/* Across files, xinetd keeps adding to the one set of defaults. */
		if (cv->defaults == NULL)
			cv->defaults = conv_entry_new(NULL, at, si);
		entry_body(cv, cv->defaults, f, at->file, line, cap, lineno);
	}
}

/* -1 with errno only when the file named on the command line (from NULL) cannot be opened. */
static int
read_file(struct conv *cv, const char *path, const struct where *from, int depth)
{
	char *line = NULL;
	size_t cap = 0, si;
	int lineno = 0, defaults_here = 0;
	const char *file;
	FILE *f;

	if (depth > INCLUDE_DEPTH) {
		diag_error(cv, from, "%s: more than %d levels of include (a loop?)", path,
		    INCLUDE_DEPTH);
		return 0;
	}
	if ((f = fopen(path, "r")) == NULL) {
		if (from == NULL)
			return -1;
		diag_error(cv, from, "%s: %s", path, strerror(errno));
		return 0;
	}
	file = conv_source_add(cv, path)->path;
	si = cv->nsrc - 1;
	while (next_line(f, &line, &cap, &lineno) != NULL) {
		struct where at = { file, lineno };
		struct words w = { 0 };
		const char *kw;

		words_split(line, &w);
		kw = w.v[0];
		if ((strcmp(kw, "service") == 0 || strcmp(kw, "include") == 0 ||
		    strcmp(kw, "includedir") == 0) && w.n < 2)
			diag_error(cv, &at, "%s: a name must follow", kw);
		else if (strcmp(kw, "include") == 0)
			read_file(cv, w.v[1], &at, depth + 1);
		else if (strcmp(kw, "includedir") == 0)
			read_dir(cv, w.v[1], &at, depth);
		else if (strcmp(kw, "service") == 0 || strcmp(kw, "defaults") == 0)
			read_entry(cv, &w, f, &at, si, &line, &cap, &lineno, &defaults_here);
		else
			diag_error(cv, &at, "expected service, defaults, include or includedir, "
			    "not '%s'", kw);
		words_clear(&w);
	}
	if (ferror(f))
		diag_error(cv, from, "%s: %s", path, strerror(errno));
	free(line);
	fclose(f);
	return 0;
}

int
read_config(struct conv *cv, const char *path)
{
	return read_file(cv, path, NULL, 0);
}
