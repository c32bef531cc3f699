/* xinetd_handler: the program porterd runs, and its environment; see xinetd_handler.h. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xinetd_diag.h"
#include "xinetd_emit.h"
#include "xinetd_handler.h"

/*
 * Names porterd sets or reserves in a handler's environment (libporterd's
 * list is private to its config_keys).
 */
static const char *const reserved_env[] = {
	"PROTO", "TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP", "TCPLOCALPORT",
	"TCPREMOTEHOST", "TCPLOCALHOST", "TCPREMOTEINFO", "IPCLOCALPATH",
	"IPCREMOTEEUID", "IPCREMOTEEGID", "PORTERD_SERVICE", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", NULL
};

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

void
handler_builtin(struct conv *cv, struct entry *e, const char *builtin, struct buf *keys,
    struct buf *tail)
{
	emit_key(keys, "builtin", builtin);
	if (e->a[A_SERVER].set)
		diag_not_carried(cv, tail, &e->a[A_SERVER].at, e->name, "server",
		    "the service is porterd's builtin");
	if (e->a[A_SERVER_ARGS].set)
		diag_not_carried(cv, tail, &e->a[A_SERVER_ARGS].at, e->name, "server_args",
		    "the service is porterd's builtin");
	if (e->env.n > 0)
		diag_not_carried(cv, tail, &e->env.v[0].at, e->name, "env",
		    "porterd's builtins have no environment");
	/* The passenv of the defaults is inherited by all: only the service's own is noted. */
	if (e->passenv.n > 0 && e->passenv.v[0].at.file == e->at.file &&
	    e->passenv.v[0].at.line > e->at.line)
		diag_not_carried(cv, tail, &e->passenv.v[0].at, e->name, "passenv",
		    "porterd's builtins have no environment");
}

int
handler_server(struct conv *cv, struct entry *e, int name_in_args, struct buf *keys)
{
	const char *server = e->a[A_SERVER].w.v[0];
	const char *base = strrchr(server, '/') + 1;
	const struct slot *sa = &e->a[A_SERVER_ARGS];
	struct words argv = { 0 };
	int rc = 0;

	emit_key(keys, "exec", server);
	if (access(server, X_OK) < 0)
		diag_info(cv, &e->a[A_SERVER].at, "service %s: warning: server %s: %s here; "
		    "porterd -t refuses it until it is installed", e->name, server,
		    strerror(errno));
	if (!name_in_args)
		words_add(&argv, base);
	for (size_t i = 0; sa->set && i < sa->w.n; i++)
		words_add(&argv, sa->w.v[i]);
	if (argv.n != 1 || strcmp(argv.v[0], base) != 0) {
		struct buf a = { 0 };

		if ((rc = emit_args(&a, argv.v, argv.n)) == 0)
			buf_add(keys, "%s", a.s);
		free(a.s);
	}
	words_clear(&argv);
	return rc;
}

void
handler_user(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail)
{
	const struct slot *user = &e->a[A_USER], *group = &e->a[A_GROUP];
	const struct slot *groups = &e->a[A_GROUPS];

	if (user->set) {
		emit_key(keys, "user", user->w.v[0]);
		if (!text_digits(user->w.v[0]) && getpwnam(user->w.v[0]) == NULL)
			diag_info(cv, &user->at, "service %s: warning: user %s does not exist here; "
			    "porterd -t refuses it", e->name, user->w.v[0]);
	}
	if (group->set) {
		emit_key(keys, "group", group->w.v[0]);
		if (!text_digits(group->w.v[0]) && getgrnam(group->w.v[0]) == NULL)
			diag_info(cv, &group->at, "service %s: warning: group %s does not exist "
			    "here; porterd -t refuses it", e->name, group->w.v[0]);
	}
	/* The defaults' groups = no is noted once, with the defaults. */
	if (groups->set && strcmp(groups->w.v[0], "no") == 0)
		diag_not_carried(cv, tail, &groups->at, e->name, "groups = no", "porterd gives a "
		    "handler the supplementary groups of its user");
}

void
handler_env(struct conv *cv, struct entry *e, struct buf *keys, struct buf *tail)
{
	for (size_t i = 0; i < e->env.n; i++) {
		const char *kv = e->env.v[i].s;
		size_t n = (size_t)(strchr(kv, '=') - kv);

		if (!env_name_ok(kv, n))
			diag_not_carried(cv, tail, &e->env.v[i].at, e->name, "env", "%s: porterd's "
			    "names are letters, digits and '_'", kv);
		else if (env_reserved(kv, n))
			diag_not_carried(cv, tail, &e->env.v[i].at, e->name, "env", "%s: porterd "
			    "sets this variable itself", kv);
		else if (strlen(kv) > LINE_LIMIT - 8)
			diag_not_carried(cv, tail, &e->env.v[i].at, e->name, "env", "%.*s...: too "
			    "long for a line of porterd's files", 40, kv);
		else
			emit_key(keys, "env", kv);
	}
	if (e->passenv.present && e->passenv.n > 0) {
		struct buf pv = { 0 };

		for (size_t i = 0; i < e->passenv.n; i++) {
			const char *v = e->passenv.v[i].s;

			if (!env_name_ok(v, strlen(v)) || env_reserved(v, strlen(v)))
				diag_not_carried(cv, tail, &e->passenv.v[i].at, e->name, "passenv",
				    "%s: not a name porterd passes", v);
			else
				buf_add(&pv, "%s%s", pv.len ? "," : "", v);
		}
		if (pv.len > 0)
			emit_key(keys, "passenv", pv.s);
		free(pv.s);
	}
}
