/*
 * config_raw: what the config modules share inside porterd. A source (services.d
 * or inetd.conf) is read into sections of `key = value` entries, each with its
 * FILE:LINE; config_keys gives them meaning; config checks the whole table.
 */
#ifndef PORTERD_CONFIG_RAW_H
#define PORTERD_CONFIG_RAW_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "config_line.h"

/* Longest section name inih keeps whole (it cuts at 49 characters). */
#define NAME_MAX_LEN 48

/* One `key = value` line as read, before any meaning is given to it. */
struct entry {
	char		*key;
	char		*value;
	struct where	 at;
	int		 cont;		/* an indented line continuing `key` */
};

struct section {
	char		*name;
	struct where	 at;
	struct entry	*e;
	size_t		 n, cap;
	int		 from_inetd;	/* a line of the -i file, not a [section] */
	int		 lent;		/* config_read's cache owns name and entries */
};

struct raw {
	struct section	*sec;
	size_t		 n, cap;
	size_t		*by_name;	/* open hash of section indexes + 1; 0: free */
	size_t		 by_name_cap;	/* a power of two, at least twice n */
	struct config_errors *errs;
	struct config	*cf;		/* owns the file names */
	FILE		*notes;		/* what -t tells besides errors; may be NULL */
};

void config_error(struct config_errors *errs, const struct where *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *config_grow(void *p, size_t *cap, size_t n, size_t size);
char *config_strdup(const char *s);
/* Keep path for the table's lifetime (the wheres point into it); returns the copy. */
const char *config_keep_file(struct config *cf, const char *path);

/*
 * Open a configuration file for reading, or NULL with the error recorded: one
 * that is not a regular file, or is larger than CONFIG_FILE_MAX, is refused
 * before a byte of it is read.
 */
#define CONFIG_FILE_MAX (16 << 20)
/* After this many errors the sections left are not checked: the table is lost anyway. */
#define CONFIG_ERRORS_MAX 200
FILE *config_open(struct raw *raw, const char *path);

struct section *raw_find(struct raw *raw, const char *name);
struct section *raw_section_new(struct raw *raw, const char *name, const struct where *at);
/*
 * from, as it is (nothing copied), as raw's last section: a file that did not
 * change since the last load lends its sections from config_read's cache, which
 * outlives raw. A lent section cannot take more entries.
 */
void raw_section_lend(struct raw *raw, const struct section *from);
void section_add(struct section *sec, const char *key, const char *value,
    const struct where *at, int cont);
void raw_free(struct raw *raw);

/*
 * config_read: every *.conf of dir, in lexical order; a file unchanged since
 * the last load (same inode, size, mtime and ctime) is taken from a cache.
 */
void config_read_dir(struct raw *raw, const char *dir);
/* inetd_conf: the classic inetd.conf file (-i), one section per line it can serve. */
void inetd_conf_read(struct raw *raw, const char *path);

/* config_keys: [defaults] alone (its own errors, once), then each service. */
void config_keys_new_load(void);
void config_check_defaults(const struct section *defaults, struct config_errors *errs);
void config_build_service(struct service *s, const struct section *defaults,
    const struct section *sec, struct config_errors *errs);
void config_service_free(struct service *s);

#endif
