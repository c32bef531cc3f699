#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "builtins.h"
#include "cgroup.h"
#include "children.h"
#include "report.h"

struct daemon_stats daemon_stats;
const struct table *report_table;

static const char *
state_of(const struct slot *sl, long long now)
{
	if (!sl->svc->enabled)
		return "disabled";
	if (sl->svc->tcpmux != NULL)
		return sl->st->running >= sl->svc->max_children ? "paused" : "tcpmux";
	if (sl->lst == NULL)
		return "disabled";
	if (sl->lst->wait_pid != 0)
		return "waiting";
	/* capped: at max_children, or a spawning service while the daemon is at -c */
	if (sl->st->running >= sl->svc->max_children || sl->st->capped)
		return "paused";
	if (sl->lst->paused_until > now)
		return "backing-off";
	return "listening";
}

/* Handlers of this service run in cgroups: their usage can be told. */
static int
contained(const struct slot *sl)
{
	return cgroup_active() && sl->svc->exec != NULL && sl->svc->contain;
}

static void
utc(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, len, "never");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
report_status(FILE *out)
{
	const struct table *t = report_table;
	long long now = log_now_ms();
	char when[32];

	utc(daemon_stats.last_reload, when, sizeof(when));
	fprintf(out, "porterd version=%s pid=%ld up=%llds generation=%lu reloads=ok:%lu,"
	    "failed:%lu last_reload=%s last_reload_result=%s services=%zu handlers=%zu\n",
	    PACKAGE_VERSION, (long)daemon_stats.pid, (now - daemon_stats.started_ms) / 1000,
	    daemon_stats.generation, daemon_stats.reloads_ok, daemon_stats.reloads_failed,
	    when, daemon_stats.last_reload == 0 ? "none" : daemon_stats.last_reload_ok ?
	    "ok" : "failed", t ? t->n : 0, children_count());
	for (size_t i = 0; t != NULL && i < t->n; i++) {
		const struct slot *sl = &t->slot[i];
		const struct svc_state *st = sl->st;
		char text[ADDR_TEXT_MAX];

		if (sl->svc->tcpmux != NULL)
			snprintf(text, sizeof(text), "tcpmux:%s", sl->svc->tcpmux);
		else
			addr_format(&sl->svc->listen, text, sizeof(text));
		fprintf(out, "%s %s %s running=%u accepted=%lu failed=%lu refused=acl:%lu,"
		    "per_source:%lu,source_rate:%lu,rate:%lu,proxy:%lu,loop:%lu,idle:%lu "
		    "timed_out=%lu exits=ok:%lu,error:%lu,signal:%lu ", sl->svc->name,
		    text, state_of(sl, now), st->running, st->accepted, st->failed,
		    st->refused[REFUSE_ACL], st->refused[REFUSE_PER_SOURCE],
		    st->refused[REFUSE_SOURCE_RATE], st->refused[REFUSE_RATE],
		    st->refused[REFUSE_PROXY], st->refused[REFUSE_LOOP], st->refused[REFUSE_IDLE],
		    st->timed_out, st->exits_ok, st->exits_error, st->exits_signal);
		if (sl->svc->tls)
			fprintf(out, "tls=ok:%lu,timeout:%lu,protocol:%lu,certificate:%lu,"
			    "truncated:%lu ", st->tls_ok, st->tls_failed[TLS_FAIL_TIMEOUT],
			    st->tls_failed[TLS_FAIL_PROTOCOL], st->tls_failed[TLS_FAIL_CERTIFICATE],
			    st->tls_truncated);
		fprintf(out, "up=%llds", (now - st->created_ms) / 1000);
		if (contained(sl)) {
			struct cg_usage u;

			(void)cgroup_svc_usage(st->cg, &u);
			fprintf(out, " cpu=%.3fs", u.cpu_seconds);
			if (u.memory >= 0)
				fprintf(out, " memory=%lld", u.memory);
			if (u.tasks >= 0)
				fprintf(out, " tasks=%lld", u.tasks);
		}
		fputc('\n', out);
	}
}

static void
metric_head(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
report_metrics(FILE *out)
{
	const struct table *t = report_table;
	size_t n = t ? t->n : 0;

	metric_head(out, "porterd_connections_accepted_total", "counter",
	    "Connections accepted (datagrams admitted, for UDP builtins; handlers "
	    "started, for wait services).");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "porterd_connections_accepted_total{service=\"%s\"} %lu\n",
		    t->slot[i].svc->name, t->slot[i].st->accepted);
	metric_head(out, "porterd_connections_refused_total", "counter",
	    "Connections closed at once, by reason.");
	for (size_t i = 0; i < n; i++)
		for (int r = 0; r < REFUSE_N; r++)
			fprintf(out, "porterd_connections_refused_total{service=\"%s\","
			    "reason=\"%s\"} %lu\n", t->slot[i].svc->name, refusal_names[r],
			    t->slot[i].st->refused[r]);
	metric_head(out, "porterd_handlers_running", "gauge", "Handlers alive.");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "porterd_handlers_running{service=\"%s\"} %u\n",
		    t->slot[i].svc->name, t->slot[i].st->running);
	metric_head(out, "porterd_handler_exits_total", "counter",
	    "Handlers ended: ok (status 0), error (other status), signal, or failed (never "
	    "started).");
	for (size_t i = 0; i < n; i++) {
		const struct svc_state *st = t->slot[i].st;
		const char *name = t->slot[i].svc->name;

		fprintf(out, "porterd_handler_exits_total{service=\"%s\",result=\"ok\"} %lu\n",
		    name, st->exits_ok);
		fprintf(out, "porterd_handler_exits_total{service=\"%s\",result=\"error\"} %lu\n",
		    name, st->exits_error);
		fprintf(out, "porterd_handler_exits_total{service=\"%s\",result=\"signal\"} "
		    "%lu\n", name, st->exits_signal);
		fprintf(out, "porterd_handler_exits_total{service=\"%s\",result=\"failed\"} "
		    "%lu\n", name, st->failed);
	}
	metric_head(out, "porterd_handler_timeouts_total", "counter",
	    "Handlers sent SIGTERM for running past their timeout.");
	for (size_t i = 0; i < n; i++)
		fprintf(out, "porterd_handler_timeouts_total{service=\"%s\"} %lu\n",
		    t->slot[i].svc->name, t->slot[i].st->timed_out);
	if (cgroup_active()) {
		struct cg_usage *u = calloc(n ? n : 1, sizeof(*u));

		for (size_t i = 0; u != NULL && i < n; i++)
			(void)cgroup_svc_usage(contained(&t->slot[i]) ? t->slot[i].st->cg : NULL,
			    &u[i]);
		metric_head(out, "porterd_handler_cpu_seconds_total", "counter",
		    "CPU time (user and system) of the handlers and everything they started.");
		for (size_t i = 0; u != NULL && i < n; i++)
			if (contained(&t->slot[i]))
				fprintf(out, "porterd_handler_cpu_seconds_total{service=\"%s\"} %.6f\n",
				    t->slot[i].svc->name, u[i].cpu_seconds);
		if (cgroup_controllers() & CG_MEMORY) {
			metric_head(out, "porterd_handler_memory_bytes", "gauge",
			    "Memory in use by the service's handlers and what they started.");
			for (size_t i = 0; u != NULL && i < n; i++)
				if (contained(&t->slot[i]))
					fprintf(out, "porterd_handler_memory_bytes{service=\"%s\"} %lld\n",
					    t->slot[i].svc->name, u[i].memory < 0 ? 0 : u[i].memory);
		}
		if (cgroup_controllers() & CG_PIDS) {
			metric_head(out, "porterd_handler_tasks", "gauge",
			    "Processes of the service's handlers, theirs included.");
			for (size_t i = 0; u != NULL && i < n; i++)
				if (contained(&t->slot[i]))
					fprintf(out, "porterd_handler_tasks{service=\"%s\"} %lld\n",
					    t->slot[i].svc->name, u[i].tasks < 0 ? 0 : u[i].tasks);
		}
		free(u);
	}
	metric_head(out, "porterd_tls_handshakes_total", "counter",
	    "TLS handshakes made (tls = yes), counted when the connection ends.");
	for (size_t i = 0; i < n; i++)
		if (t->slot[i].svc->tls)
			fprintf(out, "porterd_tls_handshakes_total{service=\"%s\"} %lu\n",
			    t->slot[i].svc->name, t->slot[i].st->tls_ok);
	metric_head(out, "porterd_tls_handshake_failures_total", "counter",
	    "TLS handshakes that failed, by reason: timeout, protocol, certificate.");
	for (size_t i = 0; i < n; i++)
		for (int r = 0; t->slot[i].svc->tls && r < TLS_FAIL_N; r++)
			fprintf(out, "porterd_tls_handshake_failures_total{service=\"%s\","
			    "reason=\"%s\"} %lu\n", t->slot[i].svc->name, tls_fail_names[r],
			    t->slot[i].st->tls_failed[r]);
	metric_head(out, "porterd_tls_truncated_total", "counter",
	    "TLS clients that closed without close_notify.");
	for (size_t i = 0; i < n; i++)
		if (t->slot[i].svc->tls)
			fprintf(out, "porterd_tls_truncated_total{service=\"%s\"} %lu\n",
			    t->slot[i].svc->name, t->slot[i].st->tls_truncated);
	metric_head(out, "porterd_reloads_total", "counter", "Reloads (SIGHUP), by result.");
	fprintf(out, "porterd_reloads_total{result=\"ok\"} %lu\n", daemon_stats.reloads_ok);
	fprintf(out, "porterd_reloads_total{result=\"failed\"} %lu\n",
	    daemon_stats.reloads_failed);
	metric_head(out, "porterd_config_generation", "gauge",
	    "Configurations loaded: 1 at start, plus one per successful reload.");
	fprintf(out, "porterd_config_generation %lu\n", daemon_stats.generation);
	metric_head(out, "porterd_start_time_seconds", "gauge",
	    "When porterd started, in seconds since the epoch.");
	fprintf(out, "porterd_start_time_seconds %lld\n", (long long)daemon_stats.started);
}

#define write_str(fd, s) builtin_send_all((fd), (s), strlen(s))

static void
send_stream(int fd, void (*fn)(FILE *), const char *http_head)
{
	char *body = NULL, head[256];
	size_t len = 0;
	FILE *f = open_memstream(&body, &len);

	if (f == NULL)
		return;
	fn(f);
	fclose(f);
	if (http_head != NULL) {
		snprintf(head, sizeof(head), "%sContent-Length: %zu\r\n\r\n", http_head, len);
		builtin_send_all(fd, head, strlen(head));
	}
	builtin_send_all(fd, body, len);
	free(body);
}

/* Read the request head (until an empty line); returns its first line in buf. */
static int
read_request(int fd, char *buf, size_t len)
{
	size_t used = 0;

	while (used + 1 < len) {
		ssize_t r = read(fd, buf + used, len - used - 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		used += (size_t)r;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
			break;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

/*
 * This runs in a child of porterd that counts against max_children: a client
 * that trickles its request, or does not read the answer, must not keep it.
 * SIGALRM, at its default disposition here, ends the child at the deadline.
 */
#define REQUEST_SECS 5
#define ANSWER_SECS 30

void
report_serve(enum builtin b, int fd)
{
	char req[8192], method[16], path[256];

	if (b == BUILTIN_STATUS) {
		alarm(ANSWER_SECS);
		send_stream(fd, report_status, NULL);
		return;
	}
	/* The whole request within 5 s, however it comes: else nothing. */
	alarm(REQUEST_SECS);
	if (read_request(fd, req, sizeof(req)) < 0)
		return;
	alarm(ANSWER_SECS);
	if (sscanf(req, "%15s %255s", method, path) != 2) {
		write_str(fd, "HTTP/1.0 400 Bad Request\r\n\r\n");
		return;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		write_str(fd, "HTTP/1.0 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n\r\n");
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
		write_str(fd, "HTTP/1.0 404 Not Found\r\n\r\n");
		return;
	}
	if (strcmp(method, "HEAD") == 0) {
		write_str(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; "
		    "charset=utf-8\r\n\r\n");
		return;
	}
	send_stream(fd, report_metrics, "HTTP/1.0 200 OK\r\n"
	    "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n");
}
