/*
 * config: read services.d (and the -i inetd.conf) into an immutable service
 * table, or a list of "FILE:LINE: message" errors. Nothing here touches sockets.
 */
#ifndef PORTERD_CONFIG_H
#define PORTERD_CONFIG_H

#include <stdio.h>
#include <sys/types.h>

#include <sys/resource.h>

#include "acl.h"
#include "addr.h"
#include "ratelimit.h"

enum builtin {
	BUILTIN_NONE = 0,
	BUILTIN_ECHO,
	BUILTIN_DISCARD,
	BUILTIN_DAYTIME,
	BUILTIN_CHARGEN,
	BUILTIN_TIME,
	BUILTIN_STATUS,
	BUILTIN_METRICS,
	BUILTIN_TCPMUX,
};

/*
 * Per-connection variables spawn adds after a service's prebuilt environment:
 * PROTO and four TCP ones, or three with fds = systemd; six SSL_ ones with tls.
 */
#define CONFIG_ENV_SLOTS 16

#define CONFIG_DEFAULT_PATH "PATH=/usr/local/bin:/usr/bin:/bin"
#define CONFIG_DEFAULT_MAX_CHILDREN 256
/* Answers a second a UDP builtin gives one source unless source_rate says otherwise. */
#define CONFIG_UDP_BUILTIN_SOURCE_RATE 20

struct where {
	const char	*file;
	int		 line;
};

/* A file named by a key (tls_cert, tls_key), and where. */
struct tls_file {
	char		*path;
	struct where	 at;
};

enum { TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL, TLS_VERIFY_REQUIRED };
/* OpenSSL's side of a tls = yes service (tls.h), built when the table is loaded. */
struct tls_ctx;

struct service {
	char		*name;
	struct where	 at;		/* its [section] line */
	int		 from_inetd;	/* a line of the -i file (see table_build) */
	struct where	 listen_at;
	struct addr	 listen;
	int		 socktype;	/* SOCK_STREAM or SOCK_DGRAM */
	int		 wait;
	int		 enabled;
	char		*exec;
	char	       **argv;
	enum builtin	 builtin;

	int		 set_user;	/* user given: setgroups/setgid/setuid */
	int		 set_group;	/* group given */
	uid_t		 uid;
	gid_t		 gid;
	gid_t		*groups;	/* supplementary groups, resolved at load */
	int		 ngroups;
	char		*user, *group;	/* as written */

	char		*passenv;	/* names, comma-separated, as -T shows them */
	/* PATH, env keys, PORTERD_SERVICE, then CONFIG_ENV_SLOTS free slots and NULL. */
	char	       **envp;
	size_t		 envp_base;

	int		 socket_owner;	/* socket_user or socket_group given */
	uid_t		 socket_uid;
	gid_t		 socket_gid;
	char		*socket_user, *socket_group;
	mode_t		 socket_mode;

	int		 backlog;
	unsigned	 max_children;

	/* Admission, checked before any fork. */
	struct acl	 allow, deny;
	unsigned	 max_per_source;	/* 0: no limit */
	unsigned	 source_prefix4, source_prefix6;
	struct rate	 rate, source_rate;	/* n == 0: no limit */
	int		 limits_source;		/* max_per_source or source_rate set */

	/* The handler's sandbox. */
	unsigned	 timeout;		/* seconds; 0: none */
	char		*chroot;
	int		 umask;			/* -1: porterd's */
	int		 set_nice, nice;
	struct rlim_key {
		int	 set;
		rlim_t	 value;
	}		 rlimit[4];		/* CONFIG_RLIMIT_* */
	int		 no_new_privs;
	int		 reuseport;		/* SO_REUSEPORT: share the port with others */
	int		 fds_systemd;		/* wait = yes: socket on fd 3, LISTEN_FDS=1 */
	int		 proxy;			/* PROXY_V1|V2 accepted; 0: no header */
	struct acl	 proxy_from;		/* who may send one; empty: anyone */
	char		*tcpmux;		/* reached by this name through tcpmux */
	int		 tcpmux_ack;		/* porterd sends "+" before the handler runs */
	enum stderr_mode {
		STDERR_SOCKET, STDERR_LOG, STDERR_NULL
	}		 stderr_mode;

	/* Containment (cgroup.c): the handler's whole process tree. */
	int		 contain;		/* in a cgroup of its own; 0: detached allowed */
	int		 stop_at_exit;		/* shutdown = stop: ended when porterd stops */
	unsigned long long memory_max;		/* bytes, per connection; 0: none */
	unsigned long	 tasks_max;		/* processes, per connection; 0: none */
	struct where	 memory_max_at, tasks_max_at;	/* line 0: not set */
	struct where	 tcpmux_at;			/* line 0: not set */
	/* tls = yes: a relay between the TLS client and the handler (relay.h). */
	int		 tls;
	struct tls_file	*tls_cert, *tls_key;	/* in pairs; pair 0 is the default */
	size_t		 ntls_cert, ntls_key;
	char		*tls_client_ca;
	struct where	 tls_client_ca_at;
	int		 tls_verify;		/* TLS_VERIFY_* */
	unsigned	 tls_handshake_timeout;	/* seconds */
	char		*tls_alpn;		/* as written; NULL: no ALPN */
	struct where	 tls_alpn_at;
	struct tls_ctx	*tls_ctx;
	char	       **tls_warn;		/* "FILE:LINE: warning: ..." (expiry) */
	size_t		 ntls_warn;
};

enum { CONFIG_RLIMIT_NOFILE, CONFIG_RLIMIT_AS, CONFIG_RLIMIT_CPU, CONFIG_RLIMIT_NPROC };
extern const int config_rlimit_resource[4];

struct config_errors {
	char	**msg;
	size_t	  n;
};

struct config {
	struct service	*svc;
	size_t		 nsvc;
	char	       **files;		/* paths the wheres point into */
	size_t		 nfiles, files_cap;
	/* "FILE:LINE: warning: ...": lines of the -i file left out (config_load) */
	struct config_errors warnings;
};

struct config_sources {
	const char	*dir;		/* services.d: every *.conf, in lexical order */
	const char	*inetd_conf;	/* -i FILE in inetd.conf format, or NULL */
	int		 tls_apart;	/* leave the TLS contexts to config_load_tls */
};

/*
 * Read the sources into one table. On success returns the table (which may
 * hold no service). On any error returns NULL and every error is in errs.
 * What is left out without being an error (files not named *.conf, lines of
 * inetd.conf porterd does not serve) is told to `notes` when it is not NULL.
 */
struct config *config_load(const struct config_sources *src, struct config_errors *errs,
    FILE *notes);
/*
 * The TLS contexts of cf's tls = yes services, when config_load left them out
 * (tls_apart: OpenSSL stays on the thread that forks the relays). 0, or -1
 * with the errors in errs.
 */
int config_load_tls(struct config *cf, struct config_errors *errs);
void config_free(struct config *cf);
/* Drop what config_load keeps between loads (the files it read), at exit. */
void config_read_forget(void);
void config_errors_free(struct config_errors *errs);
/* Print the effective table in services.d syntax (-T). */
void config_dump(const struct config *cf, FILE *out);
const char *config_builtin_name(enum builtin b);

#endif
