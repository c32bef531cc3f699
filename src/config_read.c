/*
 * config_read: the services.d files, read with inih through a physical-line
 * reader, into raw sections. No key is given a meaning here.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config_raw.h"

/* What the physical-line reader tells the inih handler about the current line. */
struct reader {
	FILE		*f;
	const char	*file;
	int		 line;
	int		 cont;
	int		 key_seen;	/* a key line since the last [section] */
	size_t		 cont_indent;	/* of the first continuation line after a key */
	char		*cont_text;	/* that line, dedented by cont_indent */
	char		*long_value;	/* a value too long for inih's buffer, as inih would give it */
	struct section	*cur;
	struct raw	*raw;
	char		*buf;
	size_t		 bufsz;
	size_t		 errs_before;	/* errors before this file */
	int		 read_errno;	/* why getline failed, 0 at the end of the file */
};

/* A file that is garbage stops being read here: its errors would drown the rest. */
#define FILE_ERRORS_MAX 50

/* ---- reading: physical lines, sections, continuation ---- */

static char *
trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static char *
trim_end(char *s)
{
	char *end = s + strlen(s);

	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("_.-", *s) == NULL)
			return 0;
	return 1;
}

/* A `[name]` line: start a section, or refuse it (its keys are then dropped). */
static void
reader_section(struct reader *rd, char *s)
{
	struct where at = { rd->file, rd->line };
	struct section *dup;
	char *close = strchr(s, ']');
	char *name;

	rd->cur = NULL;
	rd->key_seen = 0;
	if (close == NULL) {
		config_error(rd->raw->errs, &at, "section header without ']'");
		return;
	}
	*close = '\0';
	name = trim(s + 1);
	if (strlen(name) > NAME_MAX_LEN) {
		config_error(rd->raw->errs, &at, "section name is longer than %d characters",
		    NAME_MAX_LEN);
		return;
	}
	if (!valid_name(name)) {
		config_error(rd->raw->errs, &at,
		    "section name '%s': use letters, digits, '.', '-' and '_'", name);
		return;
	}
	if ((dup = raw_find(rd->raw, name)) != NULL) {
		config_error(rd->raw->errs, &at, "[%s] is already defined at %s:%d", name,
		    dup->at.file, dup->at.line);
		return;
	}
	rd->cur = raw_section_new(rd->raw, name, &at);
}

/*
 * A value as inih gives it: from after the '=' (or ':'), cut at an inline
 * comment (';' after a blank), without the blanks around it.
 */
static char *
inih_value(char *v)
{
	int was_space = 0;
	char *p;

	for (p = v; *p != '\0' && !(was_space && *p == ';'); p++)
		was_space = isspace((unsigned char)*p);
	*p = '\0';
	return trim(v);
}

/*
 * inih's line reader. We hand inih one physical line at a time so that its
 * line numbers, and ours, are the file's; and we look at each line first, to
 * catch what inih would silently cut, merge or drop.
 */
static char *
reader_gets(char *str, int num, void *stream)
{
	struct reader *rd = stream;
	struct where at;
	ssize_t len;
	char *s;

	at.file = rd->file;
	at.line = rd->line + 1;
	if (rd->raw->errs->n - rd->errs_before >= FILE_ERRORS_MAX) {
		config_error(rd->raw->errs, &at, "too many errors; the rest of the file is "
		    "not read");
		return NULL;
	}
	len = getline(&rd->buf, &rd->bufsz, rd->f);
	if (len < 0) {
		rd->read_errno = ferror(rd->f) ? errno : 0;
		return NULL;
	}
	rd->line++;
	rd->cont = 0;
	while (len > 0 && (rd->buf[len - 1] == '\n' || rd->buf[len - 1] == '\r'))
		rd->buf[--len] = '\0';
	if ((size_t)len != strlen(rd->buf)) {
		config_error(rd->raw->errs, &at, "NUL byte in line");
		goto blank;
	}
	s = rd->buf;
	if (rd->line == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	if (len > CONFIG_LINE_MAX) {
		config_error(rd->raw->errs, &at, "line is longer than %d characters", CONFIG_LINE_MAX);
		goto blank;
	}
	rd->long_value = NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		goto blank;	/* inih would skip it too, however long */
	if (*s == '[') {
		reader_section(rd, s);
		/* Ours is rd->cur; inih only has to know a section began. */
		snprintf(str, (size_t)num, "[s]\n");
		return str;
	}
	if (s > rd->buf && rd->key_seen) {
		/*
		 * inih continues the previous key's value with an indented line; it
		 * must see the indentation. We keep the line's own text, less the
		 * indentation of the first such line, so inline scripts keep theirs.
		 */
		size_t indent = (size_t)(s - rd->buf), strip;

		if (!rd->cont_indent)
			rd->cont_indent = indent;
		strip = indent < rd->cont_indent ? indent : rd->cont_indent;
		rd->cont = 1;
		rd->cont_text = rd->buf + strip;
		/* on_ini_entry takes cont_text: inih needs only the indentation. */
		snprintf(str, (size_t)num, " c\n");
		return str;
	}
	rd->cont_indent = 0;
	if (strcspn(s, "=:") == strlen(s)) {
		config_error(rd->raw->errs, &at, "expected 'key = value'");
		goto blank;
	}
	rd->key_seen = 1;
	if ((size_t)len + 2 > (size_t)num) {
		size_t klen = strcspn(s, "=:");

		if (klen + 4 > (size_t)num) {
			config_error(rd->raw->errs, &at, "key is longer than %d characters",
			    num - 4);
			goto blank;
		}
		rd->long_value = inih_value(s + klen + 1);
		snprintf(str, (size_t)num, "%.*s=v\n", (int)klen, s);
		return str;
	}
	snprintf(str, (size_t)num, "%s\n", s);
	return str;
blank:
	snprintf(str, (size_t)num, "\n");
	return str;
}

static int
on_ini_entry(void *user, const char *section, const char *key, const char *value)
{
	struct reader *rd = user;
	struct where at = { rd->file, rd->line };
	struct section *sec = rd->cur;

	(void)section;	/* ours is rd->cur: never cut, and NULL for a refused one */
	if (sec == NULL) {
		if (rd->raw->sec == NULL || *section == '\0')
			config_error(rd->raw->errs, &at, "'%s' is outside of any [section]", key);
		return 1;
	}
	if (rd->cont)
		value = trim_end(rd->cont_text);
	else if (rd->long_value != NULL)
		value = rd->long_value;
	section_add(sec, key, value, &at, rd->cont);
	return 1;
}

static void
read_file(struct raw *raw, const char *path)
{
	struct reader rd;
	size_t before = raw->errs->n;
	int r;

	memset(&rd, 0, sizeof(rd));
	rd.file = path;
	rd.raw = raw;
	rd.errs_before = before;
	if ((rd.f = config_open(raw, path)) == NULL)
		return;
	r = ini_parse_stream(reader_gets, &rd, on_ini_entry, &rd);
	if (r > 0 && raw->errs->n == before) {
		struct where at = { path, r };

		config_error(raw->errs, &at, "syntax error");
	} else if (r < 0) {
		struct where at = { path, 0 };

		config_error(raw->errs, &at, "out of memory");
	}
	if (rd.read_errno != 0) {
		struct where at = { path, rd.line + 1 };

		config_error(raw->errs, &at, "read error: %s", strerror(rd.read_errno));
	}
	fclose(rd.f);
	free(rd.buf);
}

static int
is_conf_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * What the files read last time held, by path: a reload re-reads only the
 * files that changed (a stat each), since reading 10,000 unchanged files is
 * most of what such a reload costs. A file is kept only if it read without
 * an error; its sections are copies, their wheres without a file name.
 */
struct cached_file {
	char		*path;
	struct stat	 st;
	struct section	*sec;
	size_t		 nsec;
};

#define CACHE_SETTLE_SECS 2

static struct cached_file *cache, *next_cache;
static size_t ncache, nnext, next_cap;

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void
sections_copy(struct section *to, const struct section *from, size_t n, const char *file)
{
	for (size_t i = 0; i < n; i++) {
		memset(&to[i], 0, sizeof(to[i]));
		to[i].name = config_strdup(from[i].name);
		to[i].at = from[i].at;
		to[i].at.file = file;
		for (size_t j = 0; j < from[i].n; j++) {
			struct where at = from[i].e[j].at;

			at.file = file;
			section_add(&to[i], from[i].e[j].key, from[i].e[j].value, &at,
			    from[i].e[j].cont);
		}
	}
}

static void
cached_free(struct cached_file *c)
{
	for (size_t i = 0; i < c->nsec; i++) {
		for (size_t j = 0; j < c->sec[i].n; j++) {
			free(c->sec[i].e[j].key);
			free(c->sec[i].e[j].value);
		}
		free(c->sec[i].e);
		free(c->sec[i].name);
	}
	free(c->sec);
	free(c->path);
}

/* Cache entries are in the order read: a load looks at the next one first. */
static struct cached_file *
cache_find(const char *path, size_t *hint)
{
	for (size_t k = 0; k < ncache; k++) {
		size_t i = (*hint + k) % ncache;

		if (cache[i].path != NULL && strcmp(cache[i].path, path) == 0) {
			*hint = i + 1;
			return &cache[i];
		}
	}
	return NULL;
}

/* The file's sections into raw from the cache, unless a name is taken by now. */
static int
from_cache(struct raw *raw, struct cached_file *c, const char *file)
{
	for (size_t i = 0; i < c->nsec; i++)
		if (raw_find(raw, c->sec[i].name) != NULL)
			return -1;	/* read it, so that the clash is told as usual */
	for (size_t i = 0; i < c->nsec; i++) {
		/* This load's copy of the file name; the last one's goes with its table. */
		c->sec[i].at.file = file;
		for (size_t j = 0; j < c->sec[i].n; j++)
			c->sec[i].e[j].at.file = file;
		raw_section_lend(raw, &c->sec[i]);
	}
	return 0;
}

static void
cache_keep(struct cached_file *c)
{
	if (nnext == next_cap) {
		next_cap = next_cap ? 2 * next_cap : 64;
		if ((next_cache = realloc(next_cache, next_cap * sizeof(*next_cache))) == NULL)
			abort();
	}
	next_cache[nnext++] = *c;
}

/* Read one *.conf, or take it from the cache if it did not change. */
static void
read_conf(struct raw *raw, int dirfd, const char *name, const char *path, size_t *hint)
{
	const char *file = config_keep_file(raw->cf, path);
	struct cached_file *old, c;
	size_t errs = raw->errs->n, first = raw->n;
	struct stat st;

	memset(&c, 0, sizeof(c));
	if (fstatat(dirfd, name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
	    (old = cache_find(path, hint)) != NULL && same_file(&old->st, &st) &&
	    from_cache(raw, old, file) == 0) {
		c = *old;
		memset(old, 0, sizeof(*old));	/* moved to the next cache */
		cache_keep(&c);
		return;
	}
	read_file(raw, file);
	/*
	 * File times are coarse (a few ms): a file changed in the last seconds
	 * could change again and keep the same times and size. It is read again
	 * until it is older, as git does with racily clean files.
	 */
	if (raw->errs->n != errs || fstatat(dirfd, name, &c.st, 0) < 0 ||
	    !same_file(&c.st, &st) || time(NULL) - c.st.st_mtim.tv_sec < CACHE_SETTLE_SECS ||
	    time(NULL) - c.st.st_ctim.tv_sec < CACHE_SETTLE_SECS)
		return;		/* not kept: read again next time */
	c.path = config_strdup(path);
	c.nsec = raw->n - first;
	if ((c.sec = calloc(c.nsec + 1, sizeof(*c.sec))) == NULL)
		abort();
	sections_copy(c.sec, &raw->sec[first], c.nsec, NULL);
	cache_keep(&c);
}

/*
 * A *.conf that cannot be read is an error with its reason (a dangling link
 * must not drop a service quietly); other names are skipped, and -t says so.
 */
void
config_read_dir(struct raw *raw, const char *dir)
{
	struct dirent **names;
	size_t hint = 0;
	int n, dirfd;

	n = scandir(dir, &names, NULL, by_name);
	if (n < 0 || (dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		struct where at = { dir, 0 };

		config_error(raw->errs, &at, "%s", strerror(errno));
		if (n >= 0) {
			for (int i = 0; i < n; i++)
				free(names[i]);
			free(names);
		}
		return;
	}
	nnext = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char *path;

		if (asprintf(&path, "%s/%s", dir, name) < 0)
			abort();
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			;
		} else if (!is_conf_name(name)) {
			if (raw->notes != NULL)
				fprintf(raw->notes, "%s: skipped (%s)\n", path, name[0] == '.' ?
				    "hidden file" : "not named *.conf");
		} else {
			read_conf(raw, dirfd, name, path, &hint);
		}
		free(path);
		free(names[i]);
	}
	free(names);
	close(dirfd);
	/* What was not used this time goes; the next load starts from this one's. */
	for (size_t i = 0; i < ncache; i++)
		cached_free(&cache[i]);
	free(cache);
	cache = next_cache;
	ncache = nnext;
	next_cache = NULL;
	nnext = next_cap = 0;
}

void
config_read_forget(void)
{
	for (size_t i = 0; i < ncache; i++)
		cached_free(&cache[i]);
	free(cache);
	cache = NULL;
	ncache = 0;
}
