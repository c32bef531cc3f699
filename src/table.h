/*
 * table: the running service table. A configuration plus, for each service, its
 * listener and its runtime state. A reload builds a new table from the old one,
 * keeping every socket whose identity did not change.
 */
#ifndef PORTERD_TABLE_H
#define PORTERD_TABLE_H

#include "cgroup.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "ratelimit.h"

/* Why a connection was closed without a handler. */
enum refusal {
	REFUSE_ACL,		/* allow / deny */
	REFUSE_PER_SOURCE,	/* max_per_source */
	REFUSE_SOURCE_RATE,	/* source_rate */
	REFUSE_RATE,		/* rate */
	REFUSE_PROXY,		/* no valid PROXY header, or from a source not in proxy_from */
	REFUSE_LOOP,		/* a datagram from one of porterd's own UDP builtins */
	REFUSE_IDLE,		/* held waiting for its first words, and said nothing */
	REFUSE_N
};
extern const char *const refusal_names[REFUSE_N];

/* Why a TLS handshake failed (tls = yes). */
enum tls_fail {
	TLS_FAIL_TIMEOUT,	/* not done within tls_handshake_timeout */
	TLS_FAIL_PROTOCOL,	/* not TLS, no common version, cipher or ALPN, closed */
	TLS_FAIL_CERTIFICATE,	/* a client certificate missing or not verified, or */
				/* the client refused ours */
	TLS_FAIL_N
};
extern const char *const tls_fail_names[TLS_FAIL_N];

/* What outlives a reload of a service of the same name. */
struct svc_state {
	int		 refs;
	uint64_t	 id;		/* unique for the life of the process */
	char		*name;
	unsigned	 running;	/* handlers alive */
	int		 capped;	/* its listener is unwatched for max_children or -c */
	unsigned long	 accepted;
	unsigned long	 failed;	/* fork or exec failed */
	unsigned long	 exits_ok, exits_error, exits_signal;
	long long	 created_ms;	/* monotonic */
	struct log_limit lim_fail;	/* fork, exec, accept trouble */
	struct log_limit lim_signal;	/* handlers killed by a signal */
	struct bucket	 bucket;	/* rate */
	unsigned long	 refused[REFUSE_N];
	struct log_limit lim_refused[REFUSE_N];
	unsigned long	 timed_out;
	struct log_limit lim_timeout, lim_kill;	/* timeouts: SIGTERM, then SIGKILL */
	struct bucket	 stderr_bucket;	/* stderr = log: lines a second */
	unsigned long	 stderr_dropped;
	struct log_limit lim_stderr;
	struct cg_svc	*cg;		/* its handlers' cgroup; NULL until the first */
	int		 limits_warned;	/* said once that memory_max/tasks_max cannot apply */
	unsigned long	 tls_ok;		/* handshakes made */
	unsigned long	 tls_failed[TLS_FAIL_N];
	unsigned long	 tls_truncated;		/* clients gone without close_notify */
	struct log_limit lim_tls, lim_truncated;
};

struct slot {
	const struct service	*svc;
	struct listener		*lst;	/* NULL when the service is disabled */
	struct svc_state	*st;
};

struct table {
	struct config	*cf;
	struct slot	*slot;
	size_t		 n;
	size_t		 unbound;	/* lines of the -i file left out: no socket */
};

/*
 * Build the table for cf, taking over the sockets of `old` (may be NULL) that
 * have the same identity. On failure nothing of old is changed, every socket
 * this call opened is closed, the error is in err, and NULL is returned (cf is
 * then still the caller's).
 */
struct table *table_build(struct config *cf, const struct table *old, char *err,
    size_t errlen);
/*
 * Free a table that `next` replaced (next may be NULL at exit): close the sockets
 * next does not use.
 */
void table_retire(struct table *old, const struct table *next);
void svc_state_unref(struct svc_state *st);

#endif
