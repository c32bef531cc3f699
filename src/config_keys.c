/*
 * config_keys: the meaning of each key. A service is built from its section,
 * on top of [defaults], by one setter per key; then the rules that tie keys
 * together are checked, and names are resolved to ids, argv and envp built.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "config_raw.h"
#include "proxy.h"
#include "tls.h"
#include "tls_alpn.h"

/* What is being built: the service, and where each key was last given. */
#define BUILD_KEYS 64
struct build {
	struct service		*svc;
	struct config_errors	*errs;
	struct where		 set_at[BUILD_KEYS];	/* per key; line 0 = not given */
	int			 own[BUILD_KEYS];	/* given in the service's own section */
	int			 cur_own;	/* the entry being applied is the service's own */
	const struct where	*cur_at;	/* and its line */
	int			 own_pairs;	/* an own tls_cert/tls_key replaced inherited pairs */
	char			*args;		/* args as written, split at the end */
};

typedef int (*setter)(struct build *b, const char *v, const char **why);

static int
parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int
parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	*out = strtoul(v, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

static int
lookup_user(const char *v, uid_t *uid, gid_t *gid, const char **why)
{
	struct passwd *pw;
	unsigned long n;

	errno = 0;
	if (parse_uint(v, UINT_MAX - 1, &n) == 0) {
		*uid = (uid_t)n;
		pw = getpwuid(*uid);
		*gid = pw != NULL ? pw->pw_gid : (gid_t)-1;
		return 0;
	}
	if ((pw = getpwnam(v)) == NULL) {
		*why = "no such user";
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

static int
lookup_group(const char *v, gid_t *gid, const char **why)
{
	struct group *gr;
	unsigned long n;

	if (parse_uint(v, UINT_MAX - 1, &n) == 0) {
		*gid = (gid_t)n;
		return 0;
	}
	if ((gr = getgrnam(v)) == NULL) {
		*why = "no such group";
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

static int
set_listen(struct build *b, const char *v, const char **why)
{
	return addr_parse(v, &b->svc->listen, why);
}

static int
set_protocol(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "tcp") == 0)
		b->svc->socktype = SOCK_STREAM;
	else if (strcmp(v, "udp") == 0)
		b->svc->socktype = SOCK_DGRAM;
	else
		return *why = "expected tcp or udp", -1;
	return 0;
}

static int
set_wait(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->wait) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static int
set_enabled(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->enabled) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

/* Whether it exists is checked once chroot is known (check_exec). */
static int
set_exec(struct build *b, const char *v, const char **why)
{
	if (v[0] != '/')
		return *why = "must be an absolute path", -1;
	free(b->svc->exec);
	b->svc->exec = config_strdup(v);
	return 0;
}

/*
 * The last path checked, for this load only: services of one table mostly run
 * the same few programs, and 10,000 path walks are a good part of a reload.
 */
static struct {
	unsigned	 load;
	char		 path[PATH_MAX];
	const char	*why;		/* NULL: fine */
} exec_seen;
static unsigned exec_load;

void
config_keys_new_load(void)
{
	exec_load++;
}

static int
check_exec(const struct service *s, const char **why)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", s->chroot ? s->chroot : "", s->exec);
	if (exec_seen.load == exec_load && strcmp(exec_seen.path, path) == 0)
		return (*why = exec_seen.why) != NULL ? -1 : 0;
	if (stat(path, &st) < 0)
		*why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		*why = "not a regular file";
	else if (access(path, X_OK) < 0)
		*why = "not executable";
	else
		*why = NULL;
	exec_seen.load = exec_load;
	exec_seen.why = *why;
	snprintf(exec_seen.path, sizeof(exec_seen.path), "%s", path);
	return *why != NULL ? -1 : 0;
}

/* Kept as written: continuation lines may follow; finish_service splits it. */
static int
set_args(struct build *b, const char *v, const char **why)
{
	free(b->args);
	b->args = config_strdup(v);
	return 0;
}

static const char *const builtin_names[] = {
	[BUILTIN_ECHO] = "echo", [BUILTIN_DISCARD] = "discard", [BUILTIN_DAYTIME] = "daytime",
	[BUILTIN_CHARGEN] = "chargen", [BUILTIN_TIME] = "time",
	[BUILTIN_STATUS] = "status", [BUILTIN_METRICS] = "metrics",
	[BUILTIN_TCPMUX] = "tcpmux",
};

const char *
config_builtin_name(enum builtin bi)
{
	return bi > 0 && bi < sizeof(builtin_names) / sizeof(*builtin_names) ?
	    builtin_names[bi] : "none";
}

static int
set_builtin(struct build *b, const char *v, const char **why)
{
	for (size_t i = 1; i < sizeof(builtin_names) / sizeof(*builtin_names); i++)
		if (strcmp(v, builtin_names[i]) == 0) {
			b->svc->builtin = (enum builtin)i;
			return 0;
		}
	return *why = "expected echo, discard, daytime, chargen, time, status, metrics or "
	    "tcpmux", -1;
}

static int
set_user(struct build *b, const char *v, const char **why)
{
	if (lookup_user(v, &b->svc->uid, &b->svc->gid, why) < 0)
		return -1;
	free(b->svc->user);
	b->svc->user = config_strdup(v);
	b->svc->set_user = 1;
	return 0;
}

static int
set_group(struct build *b, const char *v, const char **why)
{
	gid_t gid;

	if (lookup_group(v, &gid, why) < 0)
		return -1;
	free(b->svc->group);
	b->svc->group = config_strdup(v);
	b->svc->set_group = 1;
	return 0;
}

static int
set_socket_user(struct build *b, const char *v, const char **why)
{
	gid_t unused;

	if (lookup_user(v, &b->svc->socket_uid, &unused, why) < 0)
		return -1;
	free(b->svc->socket_user);
	b->svc->socket_user = config_strdup(v);
	return 0;
}

static int
set_socket_group(struct build *b, const char *v, const char **why)
{
	if (lookup_group(v, &b->svc->socket_gid, why) < 0)
		return -1;
	free(b->svc->socket_group);
	b->svc->socket_group = config_strdup(v);
	return 0;
}

static int
set_socket_mode(struct build *b, const char *v, const char **why)
{
	char *end;
	unsigned long m = strtoul(v, &end, 8);

	if (*v < '0' || *v > '7' || *end != '\0' || m > 0777)
		return *why = "expected an octal mode such as 0660", -1;
	b->svc->socket_mode = (mode_t)m;
	return 0;
}

static int
set_backlog(struct build *b, const char *v, const char **why)
{
	unsigned long n;

	if (parse_uint(v, 65535, &n) < 0 || n == 0)
		return *why = "expected a number from 1 to 65535", -1;
	b->svc->backlog = (int)n;
	return 0;
}

static int
set_max_children(struct build *b, const char *v, const char **why)
{
	unsigned long n;

	if (parse_uint(v, 1000000, &n) < 0 || n == 0)
		return *why = "expected a number from 1 to 1000000", -1;
	b->svc->max_children = (unsigned)n;
	return 0;
}


/* An own list replaces an inherited one; more lines of the same section add to it. */
static int
set_acl(struct build *b, struct acl *acl, int idx_own, const char *v, const char **why)
{
	if (b->cur_own && !b->own[idx_own])
		acl_free(acl);
	return acl_parse(acl, v, why);
}

static size_t key_index(const char *name);

static int
set_allow(struct build *b, const char *v, const char **why)
{
	return set_acl(b, &b->svc->allow, (int)key_index("allow"), v, why);
}

static int
set_deny(struct build *b, const char *v, const char **why)
{
	return set_acl(b, &b->svc->deny, (int)key_index("deny"), v, why);
}

static int
set_uint_key(unsigned *out, const char *v, unsigned long min, unsigned long max,
    const char **why, const char *range)
{
	unsigned long n;

	if (parse_uint(v, max, &n) < 0 || n < min)
		return *why = range, -1;
	*out = (unsigned)n;
	return 0;
}

static int
set_max_per_source(struct build *b, const char *v, const char **why)
{
	return set_uint_key(&b->svc->max_per_source, v, 0, 1000000, why,
	    "expected a number from 0 (no limit) to 1000000");
}

static int
set_source_prefix4(struct build *b, const char *v, const char **why)
{
	return set_uint_key(&b->svc->source_prefix4, v, 1, 32, why,
	    "expected a prefix length from 1 to 32");
}

static int
set_source_prefix6(struct build *b, const char *v, const char **why)
{
	return set_uint_key(&b->svc->source_prefix6, v, 1, 128, why,
	    "expected a prefix length from 1 to 128");
}

static int
set_rate(struct build *b, const char *v, const char **why)
{
	return rate_parse(v, &b->svc->rate, why);
}

static int
set_source_rate(struct build *b, const char *v, const char **why)
{
	return rate_parse(v, &b->svc->source_rate, why);
}

static int
set_timeout(struct build *b, const char *v, const char **why)
{
	return set_uint_key(&b->svc->timeout, v, 0, 31536000, why,
	    "expected seconds, 0 (none) to 31536000");
}

static int
set_chroot(struct build *b, const char *v, const char **why)
{
	struct stat st;

	if (v[0] != '/')
		return *why = "must be an absolute path", -1;
	if (stat(v, &st) < 0)
		return *why = strerror(errno), -1;
	if (!S_ISDIR(st.st_mode))
		return *why = "not a directory", -1;
	free(b->svc->chroot);
	/* "/" is no chroot at all; keep exec paths simple. */
	b->svc->chroot = strcmp(v, "/") == 0 ? NULL : config_strdup(v);
	return 0;
}

static int
set_umask(struct build *b, const char *v, const char **why)
{
	char *end;
	unsigned long m = strtoul(v, &end, 8);

	if (*v < '0' || *v > '7' || *end != '\0' || m > 0777)
		return *why = "expected an octal mask such as 027", -1;
	b->svc->umask = (int)m;
	return 0;
}

static int
set_nice(struct build *b, const char *v, const char **why)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (end == v || *end != '\0' || n < -20 || n > 19)
		return *why = "expected a number from -20 to 19", -1;
	b->svc->nice = (int)n;
	b->svc->set_nice = 1;
	return 0;
}

const int config_rlimit_resource[4] = { RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_CPU, RLIMIT_NPROC };

/* A number with an optional K, M or G (powers of 1024), or "unlimited". */
static int
set_rlimit_value(struct rlim_key *r, const char *v, const char **why)
{
	unsigned long long n;
	char *end;

	if (strcasecmp(v, "unlimited") == 0 || strcasecmp(v, "infinity") == 0) {
		r->set = 1;
		r->value = RLIM_INFINITY;
		return 0;
	}
	if (!isdigit((unsigned char)*v))
		return *why = "expected a number (K, M or G may follow) or unlimited", -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	{
		unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;

		if (shift != 0) {
			if (n > (~0ULL >> shift))
				return *why = "too large", -1;
			n <<= shift;
			end++;
		}
	}
	if (errno != 0 || *end != '\0')
		return *why = "expected a number (K, M or G may follow) or unlimited", -1;
	r->set = 1;
	r->value = (rlim_t)n;
	return 0;
}

static int
set_rlimit(struct build *b, int which, const char *v, const char **why)
{
	return set_rlimit_value(&b->svc->rlimit[which], v, why);
}

static int
set_rlimit_nofile(struct build *b, const char *v, const char **why)
{
	return set_rlimit(b, CONFIG_RLIMIT_NOFILE, v, why);
}

static int
set_rlimit_as(struct build *b, const char *v, const char **why)
{
	return set_rlimit(b, CONFIG_RLIMIT_AS, v, why);
}

static int
set_rlimit_cpu(struct build *b, const char *v, const char **why)
{
	return set_rlimit(b, CONFIG_RLIMIT_CPU, v, why);
}

static int
set_rlimit_nproc(struct build *b, const char *v, const char **why)
{
	return set_rlimit(b, CONFIG_RLIMIT_NPROC, v, why);
}

static int
set_no_new_privs(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->no_new_privs) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static int
set_stderr(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "socket") == 0)
		b->svc->stderr_mode = STDERR_SOCKET;
	else if (strcmp(v, "log") == 0)
		b->svc->stderr_mode = STDERR_LOG;
	else if (strcmp(v, "null") == 0)
		b->svc->stderr_mode = STDERR_NULL;
	else
		return *why = "expected socket, log or null", -1;
	return 0;
}

static int
set_fds(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "inetd") == 0)
		b->svc->fds_systemd = 0;
	else if (strcmp(v, "systemd") == 0)
		b->svc->fds_systemd = 1;
	else
		return *why = "expected inetd or systemd", -1;
	return 0;
}

static int
set_reuseport(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->reuseport) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static int
set_proxy(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "v1") == 0)
		b->svc->proxy = PROXY_V1;
	else if (strcmp(v, "v2") == 0)
		b->svc->proxy = PROXY_V2;
	else if (strcmp(v, "any") == 0)
		b->svc->proxy = PROXY_ANY;
	else if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0)
		b->svc->proxy = 0;
	else
		return *why = "expected v1, v2, any or off", -1;
	return 0;
}

static int
set_proxy_from(struct build *b, const char *v, const char **why)
{
	return set_acl(b, &b->svc->proxy_from, (int)key_index("proxy_from"), v, why);
}

static int
set_tcpmux(struct build *b, const char *v, const char **why)
{
	if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-+") !=
	    strlen(v))
		return *why = "use letters, digits, '.', '-', '_' and '+'", -1;
	if (*v == '\0' || strlen(v) > 64)
		return *why = "expected a name of 1 to 64 characters", -1;
	if (strcasecmp(v, "help") == 0)
		return *why = "HELP is the name tcpmux itself answers (RFC 1078)", -1;
	free(b->svc->tcpmux);
	b->svc->tcpmux = config_strdup(v);
	return 0;
}

static int
set_tcpmux_ack(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->tcpmux_ack) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static int
set_contain(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->contain) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static int
set_shutdown(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "leave") == 0)
		b->svc->stop_at_exit = 0;
	else if (strcmp(v, "stop") == 0)
		b->svc->stop_at_exit = 1;
	else
		return *why = "expected leave or stop", -1;
	return 0;
}

/* A size with an optional K, M or G (powers of 1024), or "max" for none. */
static int
set_memory_max(struct build *b, const char *v, const char **why)
{
	struct rlim_key r;

	if (strcmp(v, "max") == 0 || strcmp(v, "0") == 0) {
		b->svc->memory_max = 0;
		return 0;
	}
	if (set_rlimit_value(&r, v, why) < 0)
		return -1;
	if (r.value == RLIM_INFINITY || r.value < 4096)
		return *why = "expected a size of at least 4096 bytes (K, M or G may follow), "
		    "or max", -1;
	b->svc->memory_max = (unsigned long long)r.value;
	return 0;
}

static int
set_tasks_max(struct build *b, const char *v, const char **why)
{
	unsigned long n;

	if (strcmp(v, "max") == 0) {
		b->svc->tasks_max = 0;
		return 0;
	}
	if (parse_uint(v, 4194304, &n) < 0 || n == 0)
		return *why = "expected a number of processes from 1 to 4194304, or max", -1;
	b->svc->tasks_max = n;
	return 0;
}

static int
set_tls(struct build *b, const char *v, const char **why)
{
	if (parse_bool(v, &b->svc->tls) < 0)
		return *why = "expected yes or no", -1;
	return 0;
}

static void
tls_files_free(struct tls_file *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].path);
	free(f);
}

/* The pairs of a service's own section replace the inherited ones, all of them. */
static int
add_tls_file(struct build *b, int cert, const char *v, const char **why)
{
	struct service *s = b->svc;
	struct tls_file **list = cert ? &s->tls_cert : &s->tls_key;
	size_t *n = cert ? &s->ntls_cert : &s->ntls_key;

	if (v[0] != '/')
		return *why = "must be an absolute path", -1;
	if (b->cur_own && !b->own_pairs) {
		tls_files_free(s->tls_cert, s->ntls_cert);
		tls_files_free(s->tls_key, s->ntls_key);
		s->tls_cert = s->tls_key = NULL;
		s->ntls_cert = s->ntls_key = 0;
		b->own_pairs = 1;
	}
	if ((*list = realloc(*list, (*n + 1) * sizeof(**list))) == NULL)
		abort();
	(*list)[*n].path = config_strdup(v);
	(*list)[*n].at = *b->cur_at;
	(*n)++;
	return 0;
}

static int
set_tls_cert(struct build *b, const char *v, const char **why)
{
	return add_tls_file(b, 1, v, why);
}

static int
set_tls_key(struct build *b, const char *v, const char **why)
{
	return add_tls_file(b, 0, v, why);
}

static int
set_tls_client_ca(struct build *b, const char *v, const char **why)
{
	if (v[0] != '/')
		return *why = "must be an absolute path", -1;
	free(b->svc->tls_client_ca);
	b->svc->tls_client_ca = config_strdup(v);
	b->svc->tls_client_ca_at = *b->cur_at;
	return 0;
}

static int
set_tls_verify(struct build *b, const char *v, const char **why)
{
	if (strcmp(v, "none") == 0)
		b->svc->tls_verify = TLS_VERIFY_NONE;
	else if (strcmp(v, "optional") == 0)
		b->svc->tls_verify = TLS_VERIFY_OPTIONAL;
	else if (strcmp(v, "required") == 0)
		b->svc->tls_verify = TLS_VERIFY_REQUIRED;
	else
		return *why = "expected none, optional or required", -1;
	return 0;
}

static int
set_tls_handshake_timeout(struct build *b, const char *v, const char **why)
{
	return set_uint_key(&b->svc->tls_handshake_timeout, v, 1, 3600, why,
	    "expected seconds, 1 to 3600");
}

static int
set_tls_alpn(struct build *b, const char *v, const char **why)
{
	unsigned char wire[TLS_ALPN_MAX];

	if (tls_alpn_parse(v, wire, why) < 0)
		return -1;
	free(b->svc->tls_alpn);
	b->svc->tls_alpn = config_strdup(v);
	b->svc->tls_alpn_at = *b->cur_at;
	return 0;
}

static const char *const reserved_env[] = {
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"TCPREMOTEHOST", "TCPLOCALHOST", "TCPREMOTEINFO", "IPCLOCALPATH",
	"IPCREMOTEEUID", "IPCREMOTEEGID", "PORTERD_SERVICE", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", "SSL_PROTOCOL", "SSL_CIPHER", "SSL_TLS_SNI_SERVERNAME",
	"SSL_PEER_CERT_HASH", "SSL_PEER_CERT_SUBJECT", "SSL_ALPN",
};

static int
env_name_check(const char *name, size_t len, const char *bad, const char **why)
{
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)name[i]) || name[i] == '_') ||
		    (i == 0 && isdigit((unsigned char)name[i])))
			return *why = bad, -1;
	for (size_t i = 0; i < sizeof(reserved_env) / sizeof(*reserved_env); i++)
		if (strlen(reserved_env[i]) == len && strncmp(name, reserved_env[i], len) == 0)
			return *why = "porterd sets this variable itself", -1;
	return 0;
}

static int
set_env(struct build *b, const char *v, const char **why)
{
	struct service *s = b->svc;
	size_t klen = strcspn(v, "=");

	if (v[klen] != '=' || klen == 0)
		return *why = "expected KEY=VALUE", -1;
	if (env_name_check(v, klen, "KEY must be letters, digits and '_'", why) < 0)
		return -1;
	/* A service's own env replaces an inherited one of the same KEY. */
	for (size_t i = 0; i < s->envp_base; i++)
		if (strncmp(s->envp[i], v, klen + 1) == 0) {
			free(s->envp[i]);
			s->envp[i] = config_strdup(v);
			return 0;
		}
	s->envp = realloc(s->envp, (s->envp_base + 1) * sizeof(*s->envp));
	if (s->envp == NULL)
		abort();
	s->envp[s->envp_base++] = config_strdup(v);
	return 0;
}

/*
 * Variables of porterd's own environment, as they were when it started, for
 * handlers that need them (xinetd's passenv): names separated by commas or blanks.
 */
static int
set_passenv(struct build *b, const char *v, const char **why)
{
	struct service *s = b->svc;
	char *names = config_strdup(v), *save = NULL, *name;
	int r = 0;

	for (name = strtok_r(names, ", \t", &save); name != NULL && r == 0;
	    name = strtok_r(NULL, ", \t", &save)) {
		const char *value = getenv(name);
		char *kv, *joined;

		if ((r = env_name_check(name, strlen(name), "a name is letters, digits and '_'",
		    why)) < 0)
			break;
		if (value != NULL) {
			if (asprintf(&kv, "%s=%s", name, value) < 0)
				abort();
			r = set_env(b, kv, why);
			free(kv);
		}
		if (r == 0) {
			if (asprintf(&joined, "%s%s%s", s->passenv ? s->passenv : "",
			    s->passenv ? "," : "", name) < 0)
				abort();
			free(s->passenv);
			s->passenv = joined;
		}
	}
	free(names);
	return r;
}

struct key {
	const char	*name;
	setter		 set;
	int		 repeat;	/* may be given more than once (env) */
	int		 cont;		/* an indented line may continue it */
};

static const struct key keys[] = {
	{ "listen", set_listen, 0, 0 },
	{ "protocol", set_protocol, 0, 0 },
	{ "wait", set_wait, 0, 0 },
	{ "exec", set_exec, 0, 0 },
	{ "args", set_args, 0, 1 },
	{ "builtin", set_builtin, 0, 0 },
	{ "user", set_user, 0, 0 },
	{ "group", set_group, 0, 0 },
	{ "env", set_env, 1, 1 },
	{ "passenv", set_passenv, 1, 0 },
	{ "enabled", set_enabled, 0, 0 },
	{ "socket_user", set_socket_user, 0, 0 },
	{ "socket_group", set_socket_group, 0, 0 },
	{ "socket_mode", set_socket_mode, 0, 0 },
	{ "backlog", set_backlog, 0, 0 },
	{ "max_children", set_max_children, 0, 0 },
	{ "allow", set_allow, 1, 0 },
	{ "deny", set_deny, 1, 0 },
	{ "max_per_source", set_max_per_source, 0, 0 },
	{ "source_prefix4", set_source_prefix4, 0, 0 },
	{ "source_prefix6", set_source_prefix6, 0, 0 },
	{ "rate", set_rate, 0, 0 },
	{ "source_rate", set_source_rate, 0, 0 },
	{ "timeout", set_timeout, 0, 0 },
	{ "chroot", set_chroot, 0, 0 },
	{ "umask", set_umask, 0, 0 },
	{ "nice", set_nice, 0, 0 },
	{ "rlimit_nofile", set_rlimit_nofile, 0, 0 },
	{ "rlimit_as", set_rlimit_as, 0, 0 },
	{ "rlimit_cpu", set_rlimit_cpu, 0, 0 },
	{ "rlimit_nproc", set_rlimit_nproc, 0, 0 },
	{ "no_new_privs", set_no_new_privs, 0, 0 },
	{ "stderr", set_stderr, 0, 0 },
	{ "tcpmux", set_tcpmux, 0, 0 },
	{ "tcpmux_ack", set_tcpmux_ack, 0, 0 },
	{ "reuseport", set_reuseport, 0, 0 },
	{ "fds", set_fds, 0, 0 },
	{ "proxy", set_proxy, 0, 0 },
	{ "proxy_from", set_proxy_from, 1, 0 },
	{ "contain", set_contain, 0, 0 },
	{ "shutdown", set_shutdown, 0, 0 },
	{ "memory_max", set_memory_max, 0, 0 },
	{ "tasks_max", set_tasks_max, 0, 0 },
	{ "tls", set_tls, 0, 0 },
	{ "tls_cert", set_tls_cert, 1, 0 },
	{ "tls_key", set_tls_key, 1, 0 },
	{ "tls_client_ca", set_tls_client_ca, 0, 0 },
	{ "tls_verify", set_tls_verify, 0, 0 },
	{ "tls_handshake_timeout", set_tls_handshake_timeout, 0, 0 },
	{ "tls_alpn", set_tls_alpn, 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(*keys))
_Static_assert(NKEYS <= BUILD_KEYS, "struct build holds BUILD_KEYS keys");

/*
 * Index of key `name` in keys[], NKEYS when there is no such key. Asked some
 * thirty times a service: an open hash, made at the first call.
 */
#define KEY_HASH_SIZE 128
_Static_assert(KEY_HASH_SIZE >= 2 * NKEYS, "room for every key");

static size_t
key_hash(const char *s)
{
	size_t h = 5381;

	for (; *s != '\0'; s++)
		h = h * 33 + (unsigned char)*s;
	return h & (KEY_HASH_SIZE - 1);
}

static size_t
key_index(const char *name)
{
	static unsigned char slot[KEY_HASH_SIZE];	/* index + 1; 0: free */
	size_t h;

	if (slot[key_hash(keys[0].name)] == 0)
		for (size_t i = 0; i < NKEYS; i++) {
			for (h = key_hash(keys[i].name); slot[h] != 0; h = (h + 1) % KEY_HASH_SIZE)
				;
			slot[h] = (unsigned char)(i + 1);
		}
	for (h = key_hash(name); slot[h] != 0; h = (h + 1) % KEY_HASH_SIZE)
		if (strcmp(keys[slot[h] - 1].name, name) == 0)
			return slot[h] - 1u;
	return NKEYS;
}

/*
 * Give the entries of one section to the service being built. own: the
 * service's own section (else [defaults], whose own mistakes are reported once,
 * by config_load, so here they go to `errs`, which may be a sink).
 */
static void
apply_entries(struct build *b, const struct section *sec, int own,
    struct config_errors *errs)
{
	int seen[NKEYS] = { 0 };

	for (size_t i = 0; i < sec->n; i++) {
		const struct entry *e = &sec->e[i];
		const struct key *k;
		const char *why = NULL;
		char *joined = NULL;
		const char *value = e->value;
		size_t idx;

		if ((idx = key_index(e->key)) == NKEYS) {
			config_error(errs, &e->at, "unknown key '%s'", e->key);
			continue;
		}
		k = &keys[idx];
		if (e->cont) {
			if (!k->cont) {
				config_error(errs, &e->at, "indented line continues '%s'; only args "
				    "and env may go on over indented lines", e->key);
				continue;
			}
			if (k->set == set_args && b->args != NULL) {
				/* A newline: a blank between words, kept inside quotes. */
				if (asprintf(&joined, "%s\n%s", b->args, e->value) < 0)
					abort();
				value = joined;
			}
		} else if (!k->repeat && seen[idx]) {
			config_error(errs, &e->at, "'%s' is already set at line %d", e->key,
			    b->set_at[idx].line);
			continue;
		}
		seen[idx] = 1;
		b->cur_own = own;
		b->cur_at = &e->at;
		if (k->set(b, value, &why) < 0)
			config_error(errs, &e->at, "%s = %s: %s", e->key, e->value, why);
		if (!e->cont) {
			b->set_at[idx] = e->at;
			b->own[idx] = own;
		}
		free(joined);
	}
}

static const struct where *
key_at(const struct build *b, const char *name)
{
	size_t idx = key_index(name);

	return idx < NKEYS && b->set_at[idx].line != 0 ? &b->set_at[idx] : NULL;
}

/*
 * An error at each of the keys in names (NULL-terminated) that the service sets in its own
 * section: said there, it is a mistake; inherited from [defaults], it is not.
 */
static void
refuse_own_keys(struct build *b, const char *const *names, const char *why)
{
	for (; *names != NULL; names++) {
		size_t idx = key_index(*names);

		if (b->own[idx] && b->set_at[idx].line != 0)
			config_error(b->errs, &b->set_at[idx], "%s %s", *names, why);
	}
}

static const char *const tls_keys[] = { "tls_cert", "tls_key", "tls_client_ca", "tls_verify",
	"tls_handshake_timeout", "tls_alpn", NULL };

/* tls = yes: where it applies, its pairs, its files (read now, as root). */
static void
finish_tls(struct build *b)
{
	struct service *s = b->svc;
	const struct where *at = key_at(b, "tls");

	if (!s->tls) {
		refuse_own_keys(b, tls_keys, "applies with tls = yes");
		/* Inherited from [defaults], of no use here: -T must not show them. */
		tls_files_free(s->tls_cert, s->ntls_cert);
		tls_files_free(s->tls_key, s->ntls_key);
		s->tls_cert = s->tls_key = NULL;
		s->ntls_cert = s->ntls_key = 0;
		free(s->tls_client_ca);
		free(s->tls_alpn);
		s->tls_client_ca = s->tls_alpn = NULL;
		return;
	}
	if (s->socktype != SOCK_STREAM || s->wait || s->listen.family == AF_UNIX ||
	    s->builtin != BUILTIN_NONE || s->tcpmux != NULL) {
		config_error(b->errs, at, "tls applies to tcp services with exec and wait = no "
		    "on an IP address (not builtin, not tcpmux)");
		return;
	}
	if (s->tls_verify < 0)
		s->tls_verify = s->tls_client_ca != NULL ? TLS_VERIFY_REQUIRED : TLS_VERIFY_NONE;
	else if (s->tls_verify != TLS_VERIFY_NONE && s->tls_client_ca == NULL)
		config_error(b->errs, key_at(b, "tls_verify"), "tls_verify = %s needs "
		    "tls_client_ca, the CAs client certificates are checked against",
		    s->tls_verify == TLS_VERIFY_OPTIONAL ? "optional" : "required");
	if (s->ntls_cert == 0 && s->ntls_key == 0) {
		config_error(b->errs, at, "tls = yes needs a certificate: tls_cert and tls_key");
		return;
	}
	for (size_t i = s->ntls_key; i < s->ntls_cert; i++)
		config_error(b->errs, &s->tls_cert[i].at, "tls_cert = %s has no tls_key to "
		    "pair with (they pair in order)", s->tls_cert[i].path);
	for (size_t i = s->ntls_cert; i < s->ntls_key; i++)
		config_error(b->errs, &s->tls_key[i].at, "tls_key = %s has no tls_cert to "
		    "pair with (they pair in order)", s->tls_key[i].path);
	/* The contexts are built by config_load_tls, once every service is read. */
}

/* Finish a service whose keys are all applied: defaults, cross-key rules, argv, env. */
static void
finish_service(struct build *b, const struct section *sec)
{
	struct service *s = b->svc;
	const struct where *at;
	size_t argc, n = 0;
	const char *why;
	int has_path = 0;
	char **envp;

	if (s->tcpmux != NULL) {
		/* Reached through the tcpmux builtin: no socket of its own. */
		/* An inherited listen is not this service's: a tcpmux service has none. */
		if ((at = key_at(b, "listen")) != NULL && b->own[key_index("listen")])
			config_error(b->errs, at, "[%s] is reached through tcpmux; it has no listen "
			    "of its own", s->name);
		if (key_at(b, "builtin") != NULL)
			config_error(b->errs, key_at(b, "tcpmux"), "tcpmux applies to exec, not to "
			    "builtin");
		if (s->wait || s->socktype != SOCK_STREAM)
			config_error(b->errs, key_at(b, "tcpmux"), "a tcpmux service is tcp with "
			    "wait = no");
		memset(&s->listen, 0, sizeof(s->listen));
	} else if (key_at(b, "listen") == NULL) {
		config_error(b->errs, &sec->at, "[%s] has no listen", s->name);
	} else {
		s->listen_at = *key_at(b, "listen");
	}
	if (s->tcpmux_ack && s->tcpmux == NULL && key_at(b, "tcpmux_ack") != NULL &&
	    b->own[key_index("tcpmux_ack")])
		config_error(b->errs, key_at(b, "tcpmux_ack"), "tcpmux_ack applies to a service "
		    "with tcpmux = NAME");
	if (key_at(b, "exec") == NULL && key_at(b, "builtin") == NULL)
		config_error(b->errs, &sec->at, "[%s] has neither exec nor builtin", s->name);
	if (key_at(b, "exec") != NULL && key_at(b, "builtin") != NULL)
		config_error(b->errs, key_at(b, "builtin"), "[%s] has both exec and builtin",
		    s->name);
	if (s->listen.family == AF_UNIX && s->socktype == SOCK_DGRAM)
		config_error(b->errs, key_at(b, "protocol"), "unix sockets are stream sockets; "
		    "protocol = udp does not apply");
	if (s->socktype == SOCK_DGRAM && !s->wait && key_at(b, "builtin") == NULL &&
	    key_at(b, "exec") != NULL)
		config_error(b->errs, (at = key_at(b, "wait")) ? at : &sec->at, "[%s] is a udp "
		    "service with a handler: it needs wait = yes (the handler reads the "
		    "datagrams itself)", s->name);
	if (s->proxy != 0 && (s->socktype != SOCK_STREAM || s->wait ||
	    s->listen.family == AF_UNIX || s->builtin == BUILTIN_TCPMUX || s->tcpmux != NULL))
		config_error(b->errs, key_at(b, "proxy"), "proxy applies to tcp services with "
		    "wait = no on an IP address (not tcpmux)");
	if (s->proxy_from.n > 0 && s->proxy == 0 && b->own[key_index("proxy_from")])
		config_error(b->errs, key_at(b, "proxy_from"), "proxy_from applies with proxy = "
		    "v1, v2 or any");
	else if (s->proxy == 0)
		acl_free(&s->proxy_from);	/* inherited, and of no use here */
	if (s->fds_systemd && (!s->wait || s->exec == NULL))
		config_error(b->errs, key_at(b, "fds"), "fds = systemd passes a wait = yes "
		    "handler its socket; it needs exec and wait = yes");
	if (s->reuseport && s->listen.family == AF_UNIX && b->own[key_index("reuseport")])
		config_error(b->errs, key_at(b, "reuseport"), "reuseport applies to IP sockets");
	if (s->builtin == BUILTIN_TCPMUX && s->listen.family == AF_UNIX)
		config_error(b->errs, key_at(b, "builtin"), "tcpmux listens on an IP address: its "
		    "services see the client's address, not a unix socket's");
	if ((s->builtin == BUILTIN_STATUS || s->builtin == BUILTIN_METRICS ||
	    s->builtin == BUILTIN_TCPMUX) && s->socktype == SOCK_DGRAM)
		config_error(b->errs, key_at(b, "protocol"), "builtin %s is a stream service; "
		    "protocol = udp does not apply", config_builtin_name(s->builtin));
	if (s->builtin != BUILTIN_NONE && s->wait)
		config_error(b->errs, key_at(b, "wait"), "builtin services are served by "
		    "porterd itself; wait = yes does not apply");
	if (s->builtin != BUILTIN_NONE) {
		/* From [defaults], meant for the handlers: not an error here. */
		static const char *const exec_only[] = { "args", "stderr", "env", "passenv", NULL };

		refuse_own_keys(b, exec_only, "applies to exec, not to builtin");
	}
	if (s->listen.family != AF_UNIX) {
		static const char *const unix_only[] = { "socket_user", "socket_group",
			"socket_mode", NULL };

		refuse_own_keys(b, unix_only, "applies only to unix sockets (listen = unix:PATH)");
	}
	s->socket_owner = s->socket_user != NULL || s->socket_group != NULL;
	if (s->exec == NULL) {
		static const char *const exec_keys[] = { "contain", "shutdown", "memory_max",
			"tasks_max", NULL };

		refuse_own_keys(b, exec_keys, "applies to exec, not to builtin");
	} else if (!s->contain && (s->memory_max != 0 || s->tasks_max != 0)) {
		at = key_at(b, s->memory_max != 0 ? "memory_max" : "tasks_max");
		config_error(b->errs, at, "%s needs the handler in a cgroup of its own: it does not "
		    "apply with contain = no", s->memory_max != 0 ? "memory_max" : "tasks_max");
	}
	if (s->memory_max != 0 && (at = key_at(b, "memory_max")) != NULL)
		s->memory_max_at = *at;
	if (s->tasks_max != 0 && (at = key_at(b, "tasks_max")) != NULL)
		s->tasks_max_at = *at;
	if (s->tcpmux != NULL && (at = key_at(b, "tcpmux")) != NULL)
		s->tcpmux_at = *at;
	if (s->exec != NULL && key_at(b, "exec") != NULL && check_exec(s, &why) < 0)
		config_error(b->errs, key_at(b, "exec"), "exec = %s%s: %s", s->chroot ?
		    s->chroot : "", s->exec, why);
	if (s->chroot != NULL && s->exec == NULL) {
		static const char *const chroot_key[] = { "chroot", NULL };

		refuse_own_keys(b, chroot_key, "applies to exec, not to builtin");
		free(s->chroot);	/* inherited, and of no use here */
		s->chroot = NULL;
	}
	if (s->chroot != NULL && geteuid() != 0)
		config_error(b->errs, key_at(b, "chroot"), "porterd is not running as root and "
		    "cannot chroot");
	{
		/* Controls on clients need porterd to see the clients. */
		static const char *const per_client[] = { "allow", "deny", "max_per_source",
			"source_rate" };
		const char *why_not = s->wait ? "a wait = yes handler receives its clients "
		    "itself" : s->listen.family == AF_UNIX ? "unix socket clients have no "
		    "address" : NULL;
		const int in_force[] = { s->allow.n > 0, s->deny.n > 0, s->max_per_source != 0,
			s->source_rate.n != 0 };

		/* An inherited one only matters where it would be a false promise. */
		for (size_t i = 0; why_not != NULL && i < 4; i++)
			if (in_force[i] && (at = key_at(b, per_client[i])) != NULL &&
			    (s->wait || b->own[key_index(per_client[i])]))
				config_error(b->errs, at, "%s cannot apply to [%s]: %s", per_client[i],
				    s->name, why_not);
		/* Else it is ignored: drop it, so that -T does not show it as in force. */
		if (why_not != NULL && !s->wait) {
			acl_free(&s->allow);
			acl_free(&s->deny);
			s->max_per_source = 0;
			memset(&s->source_rate, 0, sizeof(s->source_rate));
		}
	}
	/*
	 * A UDP builtin answers whatever address a datagram claims: a budget per
	 * source ends a ping-pong with another server (started by one forged
	 * datagram) after a few rounds, as the first answer refused breaks it.
	 */
	if (s->builtin != BUILTIN_NONE && s->socktype == SOCK_DGRAM &&
	    key_at(b, "source_rate") == NULL) {
		s->source_rate.n = CONFIG_UDP_BUILTIN_SOURCE_RATE;
		s->source_rate.secs = 1;
	}
	s->limits_source = s->max_per_source != 0 || s->source_rate.n != 0;
	finish_tls(b);

	/* Privileges: resolve everything now; the child only makes system calls. */
	if (s->set_user || s->set_group) {
		if (s->set_group)
			lookup_group(s->group, &s->gid, &why);
		else if (s->gid == (gid_t)-1)
			config_error(b->errs, key_at(b, "user"), "user %s has no passwd entry; "
			    "set group too", s->user);
		if (geteuid() != 0 && ((s->set_user && s->uid != geteuid()) ||
		    (s->set_group && s->gid != getegid())))
			config_error(b->errs, key_at(b, s->set_user ? "user" : "group"),
			    "porterd is not running as root and cannot switch to %s %s",
			    s->set_user ? "user" : "group", s->set_user ? s->user : s->group);
		if (s->set_user) {
			struct passwd *pw = getpwuid(s->uid);
			int ng = 16;

			s->groups = malloc((size_t)ng * sizeof(gid_t));
			if (pw != NULL && s->groups != NULL &&
			    getgrouplist(pw->pw_name, s->gid, s->groups, &ng) < 0) {
				s->groups = realloc(s->groups, (size_t)ng * sizeof(gid_t));
				if (s->groups != NULL)
					getgrouplist(pw->pw_name, s->gid, s->groups, &ng);
			}
			if (s->groups == NULL)
				abort();
			if (pw == NULL) {
				s->groups[0] = s->gid;
				ng = 1;
			}
			s->ngroups = ng;
		} else {
			if ((s->groups = malloc(sizeof(gid_t))) == NULL)
				abort();
			s->groups[0] = s->gid;
			s->ngroups = 1;
		}
	}

	if (b->args != NULL && s->exec != NULL) {
		if ((s->argv = args_split(b->args, &argc, &why)) == NULL && why != NULL)
			config_error(b->errs, key_at(b, "args"), "args: %s", why);
		else if (s->argv != NULL && argc == 0)
			config_error(b->errs, key_at(b, "args"), "args: no words (argv[0] comes "
			    "first)");
	}
	if (s->exec != NULL && s->argv == NULL) {
		if (b->args != NULL) {
			s->argv = calloc(1, sizeof(char *));	/* reported above */
		} else {
			const char *base = strrchr(s->exec, '/') + 1;

			s->argv = calloc(2, sizeof(char *));
			if (s->argv != NULL)
				s->argv[0] = config_strdup(base);
		}
		if (s->argv == NULL)
			abort();
	}

	/* Environment: PATH (unless env gave one), env keys, PORTERD_SERVICE, slots. */
	for (size_t i = 0; i < s->envp_base; i++)
		has_path |= strncmp(s->envp[i], "PATH=", 5) == 0;
	envp = calloc(s->envp_base + 2 + CONFIG_ENV_SLOTS + 1, sizeof(*envp));
	if (envp == NULL)
		abort();
	if (!has_path)
		envp[n++] = config_strdup(CONFIG_DEFAULT_PATH);
	for (size_t i = 0; i < s->envp_base; i++)
		envp[n++] = s->envp[i];
	if (asprintf(&envp[n++], "PORTERD_SERVICE=%s", s->name) < 0)
		abort();
	free(s->envp);
	s->envp = envp;
	s->envp_base = n;
}

static void
service_init(struct service *s, const struct section *sec)
{
	memset(s, 0, sizeof(*s));
	s->name = config_strdup(sec->name);
	s->at = sec->at;
	s->from_inetd = sec->from_inetd;
	s->socktype = SOCK_STREAM;
	s->enabled = 1;
	s->uid = (uid_t)-1;
	s->gid = (gid_t)-1;
	s->socket_uid = (uid_t)-1;
	s->socket_gid = (gid_t)-1;
	s->socket_mode = 0660;
	s->backlog = SOMAXCONN;
	s->max_children = CONFIG_DEFAULT_MAX_CHILDREN;
	s->source_prefix4 = 32;
	s->source_prefix6 = 64;
	s->umask = -1;
	s->no_new_privs = 1;
	s->contain = 1;
	s->tls_verify = -1;
	s->tls_handshake_timeout = 10;
}

void
config_service_free(struct service *s)
{
	free(s->name);
	free(s->exec);
	args_free(s->argv);
	free(s->groups);
	free(s->user);
	free(s->group);
	free(s->socket_user);
	free(s->socket_group);
	free(s->chroot);
	free(s->tcpmux);
	free(s->passenv);
	acl_free(&s->proxy_from);
	tls_files_free(s->tls_cert, s->ntls_cert);
	tls_files_free(s->tls_key, s->ntls_key);
	free(s->tls_client_ca);
	free(s->tls_alpn);
	tls_free(s->tls_ctx);
	for (size_t i = 0; i < s->ntls_warn; i++)
		free(s->tls_warn[i]);
	free(s->tls_warn);
	acl_free(&s->allow);
	acl_free(&s->deny);
	if (s->envp != NULL)
		for (size_t i = 0; i < s->envp_base; i++)
			free(s->envp[i]);
	free(s->envp);
}


/* [defaults] on its own, so that its mistakes are reported once. */
void
config_check_defaults(const struct section *defaults, struct config_errors *errs)
{
	struct service scratch;
	struct build b;

	service_init(&scratch, defaults);
	memset(&b, 0, sizeof(b));
	b.svc = &scratch;
	b.errs = errs;
	apply_entries(&b, defaults, 0, errs);
	config_service_free(&scratch);
	free(b.args);
}

/*
 * Errors from errs->msg[from] on that are at the line of a key the service
 * inherited: [defaults]'s line is the place to mend, but the service is the
 * one it does not fit, and each may be told apart only by its name.
 */
static void
name_inherited(const struct build *b, struct config_errors *errs, size_t from)
{
	for (size_t i = from; i < errs->n; i++)
		for (size_t k = 0; k < NKEYS; k++) {
			const struct where *at = &b->set_at[k];
			char prefix[PATH_MAX + 32], *longer;

			if (b->own[k] || at->line == 0 || at->file == NULL)
				continue;
			snprintf(prefix, sizeof(prefix), "%s:%d: ", at->file, at->line);
			if (strncmp(errs->msg[i], prefix, strlen(prefix)) != 0)
				continue;
			if (asprintf(&longer, "%s (inherited by [%s])", errs->msg[i],
			    b->svc->name) >= 0) {
				free(errs->msg[i]);
				errs->msg[i] = longer;
			}
			break;
		}
}

void
config_build_service(struct service *s, const struct section *defaults,
    const struct section *sec, struct config_errors *errs)
{
	struct build b;
	size_t from = errs->n;

	service_init(s, sec);
	memset(&b, 0, sizeof(b));
	b.svc = s;
	b.errs = errs;
	if (defaults != NULL) {
		struct config_errors sink = { NULL, 0 };

		apply_entries(&b, defaults, 0, &sink);
		config_errors_free(&sink);
	}
	apply_entries(&b, sec, 1, errs);
	finish_service(&b, sec);
	name_inherited(&b, errs, from);
	free(b.args);
}
