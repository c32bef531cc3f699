#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errlog.h"
#include "log.h"

struct errpipe {
	int			 fd;
	pid_t			 pid;
	struct svc_state	*st;	/* referenced */
	size_t			 len;
	char			 buf[ERRLOG_LINE_MAX];
};

static struct errpipe **pipes;
static size_t npipes, cap;

/* A handler may write without end: beyond this many lines a second per service, drop. */
static const struct rate line_rate = { 200, 1 };

int
errlog_add(int fd, pid_t pid, struct svc_state *st)
{
	struct errpipe *e;

	if (npipes == cap) {
		size_t ncap = cap ? 2 * cap : 16;
		struct errpipe **grown = realloc(pipes, ncap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		pipes = grown;
		cap = ncap;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->fd = fd;
	e->pid = pid;
	e->st = st;
	st->refs++;
	pipes[npipes++] = e;
	return 0;
}

size_t
errlog_count(void)
{
	return npipes;
}

size_t
errlog_pollfds(struct pollfd *pfd)
{
	for (size_t i = 0; i < npipes; i++) {
		pfd[i].fd = pipes[i]->fd;
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
	}
	return npipes;
}

static void
emit(struct errpipe *e, const char *line, size_t len)
{
	if (!rate_take(&e->st->stderr_bucket, &line_rate, log_now_ms())) {
		e->st->stderr_dropped++;
		log_limited(&e->st->lim_stderr, LOG_WARNING, "%s: stderr lines dropped (more "
		    "than %u a second); %lu so far", e->st->name, line_rate.n,
		    e->st->stderr_dropped);
		return;
	}
	/*
	 * Control bytes as \xNN: on a terminal or in a plain file, an escape or a
	 * carriage return would let a handler write over the prefix and forge a
	 * line of porterd's own; a NUL would cut the rest off.
	 */
	char safe[4 * 1024 + 1];
	size_t n = 0;

	for (size_t i = 0; i < len && n + 5 <= sizeof(safe); i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch < 0x20 && ch != '\t')
			n += (size_t)snprintf(safe + n, sizeof(safe) - n, "\\x%02x", ch);
		else if (ch == 0x7f)
			n += (size_t)snprintf(safe + n, sizeof(safe) - n, "\\x7f");
		else
			safe[n++] = (char)ch;
	}
	safe[n] = '\0';
	log_msg(LOG_NOTICE, "%s[%ld]: %s", e->st->name, (long)e->pid, safe);
}

/* Log every complete line in the buffer; a full buffer goes out as it is. */
static void
emit_lines(struct errpipe *e, int at_eof)
{
	size_t start = 0;

	for (size_t i = 0; i < e->len; i++)
		if (e->buf[i] == '\n') {
			emit(e, e->buf + start, i - start);
			start = i + 1;
		}
	if (start < e->len && (at_eof || (start == 0 && e->len == sizeof(e->buf)))) {
		emit(e, e->buf + start, e->len - start);
		start = e->len;
	}
	memmove(e->buf, e->buf + start, e->len - start);
	e->len -= start;
}

static void
close_pipe(size_t i)
{
	struct errpipe *e = pipes[i];

	emit_lines(e, 1);
	close(e->fd);
	svc_state_unref(e->st);
	free(e);
	pipes[i] = pipes[--npipes];
}

void
errlog_service(const struct pollfd *pfd, size_t n)
{
	/* Backwards: closing moves the last pipe into the slot closed. */
	for (size_t k = n; k-- > 0;) {
		struct errpipe *e;
		size_t i;
		ssize_t r;

		if (pfd[k].revents == 0)
			continue;
		for (i = 0; i < npipes && pipes[i]->fd != pfd[k].fd; i++)
			;
		if (i == npipes)
			continue;
		e = pipes[i];
		r = read(e->fd, e->buf + e->len, sizeof(e->buf) - e->len);
		if (r > 0) {
			e->len += (size_t)r;
			emit_lines(e, 0);
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			close_pipe(i);
		}
	}
}

void
errlog_drain(pid_t pid)
{
	struct pollfd p = { .fd = -1, .events = POLLIN, .revents = POLLIN };

	for (size_t i = 0; i < npipes && p.fd < 0; i++)
		if (pipes[i]->pid == pid)
			p.fd = pipes[i]->fd;
	/* Each read takes a buffer's worth; the rest waits for poll. */
	for (int round = 0; round < 8 && p.fd >= 0; round++) {
		size_t before = npipes;

		errlog_service(&p, 1);
		if (npipes != before)
			break;	/* EOF: closed */
	}
}

void
errlog_flush_all(void)
{
	while (npipes > 0)
		close_pipe(npipes - 1);
	free(pipes);
	pipes = NULL;
	cap = 0;
}
