/*
 * xinetd_conv: what porterd-xinetd's modules share: an xinetd entry as read
 * (xinetd_read fills it), and the state of one conversion, from the entries
 * to the text of each output file (xinetd_map writes it).
 */
#ifndef PORTERD_XINETD_CONV_H
#define PORTERD_XINETD_CONV_H

#include <stddef.h>

#include "addr.h"
#include "config_line.h"
#include "xinetd_nets.h"
#include "xinetd_text.h"

/* porterd's limits: the longest line its files may have, section names. */
#define LINE_LIMIT CONFIG_LINE_MAX
#define NAME_LIMIT 48

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

/* An xinetd file read, and the services converted from it. */
struct source {
	char		*path;
	struct buf	 out;		/* its services, for -o */
	int		 used;		/* something to write */
};

/* A service written, for the services written after it. */
struct written {
	const struct entry *e;
	char		 section[NAME_LIMIT + 1];
	int		 has_listen;	/* not a tcpmux service */
	struct addr	 listen;
	const char	*proto;
	int		 enabled;
};

struct conv {
	struct source	**src;
	size_t		  nsrc, capsrc;
	struct entry	**svc;
	size_t		  nsvc, capsvc;
	struct entry	 *defaults;
	struct buf	  errors, notes;
	size_t		  nerrors, nnotes;
	struct words	  taken;		/* section names in use */
	int		  fold;			/* put xinetd's defaults into each service */
	struct buf	  defaults_out;
	size_t		  converted, disabled_count, left_out;
	struct written	 *written;
	size_t		  nwritten, capwritten;
};

/* An empty conversion; the name "defaults" is taken from the start. */
void conv_init(struct conv *cv);
void conv_free(struct conv *cv);
/* A new entry (name NULL for defaults), owned by the caller until put into cv. */
struct entry *conv_entry_new(const char *name, const struct where *at, size_t source);
/* A file being read; its path lives as long as cv, for the wheres that point to it. */
struct source *conv_source_add(struct conv *cv, const char *path);

#endif
