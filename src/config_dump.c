/*
 * config_dump: the effective table (-T), every key with its value in force,
 * in services.d syntax, so that the output loads again as it is.
 */
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "config.h"
#include "proxy.h"

/* What the reader would not take as the rest of a value: blank, ; or # first, or [. */
static int
line_would_vanish(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0' || *s == '\n' || *s == '#' || *s == ';' || *s == '[';
}

static void
dump_args(FILE *out, char **argv)
{
	fputs("args =", out);
	for (size_t i = 0; argv[i] != NULL; i++) {
		/* Quoting at most doubles a word, plus its quotes. */
		size_t len = 2 * strlen(argv[i]) + 4;
		char *q = malloc(len);

		if (q == NULL)
			abort();
		q[0] = '\0';
		args_quote(q, len, argv[i]);
		fputc(' ', out);
		/*
		 * A newline inside a word goes on over an indented line, as it came in.
		 * Such a line must not read as blank, a comment or a [section]: then
		 * it starts by closing and reopening the quote the newline is in ("").
		 */
		for (const char *p = q; *p != '\0'; p++) {
			fputs(*p == '\n' ? "\n    " : (char[]){ *p, '\0' }, out);
			if (*p == '\n' && line_would_vanish(p + 1))
				fputs("\"\"", out);
		}
		free(q);
	}
	fputc('\n', out);
}

static void
dump_rlimit(FILE *out, const char *key, const struct rlim_key *r)
{
	if (!r->set)
		return;
	if (r->value == RLIM_INFINITY)
		fprintf(out, "%s = unlimited\n", key);
	else
		fprintf(out, "%s = %llu\n", key, (unsigned long long)r->value);
}

static void
dump_limits(FILE *out, const struct service *s)
{
	char list[4096];

	if (s->allow.n > 0) {
		list[0] = '\0';
		acl_format(&s->allow, list, sizeof(list));
		fprintf(out, "allow = %s\n", list);
	}
	if (s->deny.n > 0) {
		list[0] = '\0';
		acl_format(&s->deny, list, sizeof(list));
		fprintf(out, "deny = %s\n", list);
	}
	fprintf(out, "max_per_source = %u\n", s->max_per_source);
	fprintf(out, "source_prefix4 = %u\n", s->source_prefix4);
	fprintf(out, "source_prefix6 = %u\n", s->source_prefix6);
	if (s->rate.n != 0)
		fprintf(out, "rate = %u/%u\n", s->rate.n, s->rate.secs);
	if (s->source_rate.n != 0)
		fprintf(out, "source_rate = %u/%u\n", s->source_rate.n, s->source_rate.secs);
	fprintf(out, "timeout = %u\n", s->timeout);
	if (s->chroot != NULL)
		fprintf(out, "chroot = %s\n", s->chroot);
	if (s->umask >= 0)
		fprintf(out, "umask = %03o\n", (unsigned)s->umask);
	if (s->set_nice)
		fprintf(out, "nice = %d\n", s->nice);
	dump_rlimit(out, "rlimit_nofile", &s->rlimit[CONFIG_RLIMIT_NOFILE]);
	dump_rlimit(out, "rlimit_as", &s->rlimit[CONFIG_RLIMIT_AS]);
	dump_rlimit(out, "rlimit_cpu", &s->rlimit[CONFIG_RLIMIT_CPU]);
	dump_rlimit(out, "rlimit_nproc", &s->rlimit[CONFIG_RLIMIT_NPROC]);
	fprintf(out, "no_new_privs = %s\n", s->no_new_privs ? "yes" : "no");
	if (s->tcpmux != NULL)
		fprintf(out, "tcpmux = %s\ntcpmux_ack = %s\n", s->tcpmux, s->tcpmux_ack ?
		    "yes" : "no");
	if (s->reuseport)
		fprintf(out, "reuseport = yes\n");
	if (s->fds_systemd)
		fprintf(out, "fds = systemd\n");
	if (s->proxy != 0)
		fprintf(out, "proxy = %s\n", s->proxy == PROXY_ANY ? "any" : s->proxy == PROXY_V1 ?
		    "v1" : "v2");
	if (s->proxy_from.n > 0) {
		list[0] = '\0';
		acl_format(&s->proxy_from, list, sizeof(list));
		fprintf(out, "proxy_from = %s\n", list);
	}
	if (s->exec != NULL)
		fprintf(out, "stderr = %s\n", s->stderr_mode == STDERR_LOG ? "log" :
		    s->stderr_mode == STDERR_NULL ? "null" : "socket");
	if (s->exec != NULL) {
		fprintf(out, "contain = %s\nshutdown = %s\n", s->contain ? "yes" : "no",
		    s->stop_at_exit ? "stop" : "leave");
		if (s->memory_max != 0)
			fprintf(out, "memory_max = %llu\n", s->memory_max);
		if (s->tasks_max != 0)
			fprintf(out, "tasks_max = %lu\n", s->tasks_max);
	}
	if (s->tls) {
		static const char *const verify[] = { "none", "optional", "required" };

		fprintf(out, "tls = yes\n");
		for (size_t i = 0; i < s->ntls_cert && i < s->ntls_key; i++)
			fprintf(out, "tls_cert = %s\ntls_key = %s\n", s->tls_cert[i].path,
			    s->tls_key[i].path);
		if (s->tls_client_ca != NULL)
			fprintf(out, "tls_client_ca = %s\n", s->tls_client_ca);
		fprintf(out, "tls_verify = %s\n", verify[s->tls_verify]);
		fprintf(out, "tls_handshake_timeout = %u\n", s->tls_handshake_timeout);
		if (s->tls_alpn != NULL)
			fprintf(out, "tls_alpn = %s\n", s->tls_alpn);
	}
}

/* KEY=VALUE came from porterd's environment through passenv: -T shows the name. */
static int
passed(const struct service *s, const char *kv)
{
	size_t klen = strcspn(kv, "=");

	for (const char *p = s->passenv; p != NULL && *p != '\0'; ) {
		size_t n = strcspn(p, ",");

		if (n == klen && strncmp(p, kv, n) == 0)
			return 1;
		p += n + (p[n] == ',');
	}
	return 0;
}

void
config_dump(const struct config *cf, FILE *out)
{
	for (size_t i = 0; i < cf->nsvc; i++) {
		const struct service *s = &cf->svc[i];
		char text[ADDR_TEXT_MAX];

		if (i > 0)
			fputc('\n', out);
		addr_format(&s->listen, text, sizeof(text));
		fprintf(out, "; %s:%d\n[%s]\n", s->at.file, s->at.line, s->name);
		if (s->tcpmux == NULL)
			fprintf(out, "listen = %s\n", text);
		fprintf(out, "protocol = %s\n", s->socktype == SOCK_DGRAM ? "udp" : "tcp");
		fprintf(out, "wait = %s\n", s->wait ? "yes" : "no");
		fprintf(out, "enabled = %s\n", s->enabled ? "yes" : "no");
		if (s->exec != NULL) {
			fprintf(out, "exec = %s\n", s->exec);
			dump_args(out, s->argv);
		} else {
			fprintf(out, "builtin = %s\n", config_builtin_name(s->builtin));
		}
		if (s->set_user)
			fprintf(out, "user = %s\n", s->user);
		if (s->set_user || s->set_group)
			fprintf(out, "group = %s\n", s->set_group ? s->group :
			    getgrgid(s->gid) ? getgrgid(s->gid)->gr_name : "?");
		for (size_t e = 0; s->exec != NULL && e < s->envp_base; e++)
			if (strncmp(s->envp[e], "PORTERD_SERVICE=", 16) != 0 &&
			    !passed(s, s->envp[e]))
				fprintf(out, "env = %s\n", s->envp[e]);
		if (s->passenv != NULL)
			fprintf(out, "passenv = %s\n", s->passenv);
		if (s->listen.family == AF_UNIX) {
			if (s->socket_user != NULL)
				fprintf(out, "socket_user = %s\n", s->socket_user);
			if (s->socket_group != NULL)
				fprintf(out, "socket_group = %s\n", s->socket_group);
			fprintf(out, "socket_mode = %04o\n", (unsigned)s->socket_mode);
		}
		fprintf(out, "backlog = %d\n", s->backlog);
		fprintf(out, "max_children = %u\n", s->max_children);
		dump_limits(out, s);
	}
}

