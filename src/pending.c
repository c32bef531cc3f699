#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pending.h"

static struct pending **list;
static size_t count, cap;

int
pending_add(const struct conn *c, struct svc_state *st, long long deadline_ms, int proxy)
{
	struct pending *p;

	if (count == cap) {
		size_t ncap = cap ? 2 * cap : 16;
		struct pending **grown = realloc(list, ncap * sizeof(*grown));

		if (grown == NULL)
			return -1;
		list = grown;
		cap = ncap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	p->conn = *c;
	p->st = st;
	st->refs++;
	/* Counted as running: max_children of the service bounds what it holds. */
	st->running++;
	p->deadline_ms = deadline_ms;
	p->proxy = proxy;
	list[count++] = p;
	return 0;
}

size_t
pending_count(void)
{
	return count;
}

/* Remove entry i; close its fd unless the caller took it. */
static void
drop(size_t i, int close_fd)
{
	struct pending *p = list[i];

	if (close_fd)
		close(p->conn.fd);
	p->st->running--;
	svc_state_unref(p->st);
	free(p);
	list[i] = list[--count];
}

size_t
pending_pollfds(struct pollfd *pfd)
{
	size_t n = 0;

	for (size_t i = 0; i < count; i++)
		if (list[i]->ready == 0) {
			pfd[n].fd = list[i]->conn.fd;
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			n++;
		}
	return n;
}

/* Peek at what came; take exactly the line once it is whole. */
static int
read_line(struct pending *p)
{
	char buf[PENDING_LINE_MAX + 2];
	ssize_t r = recv(p->conn.fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	char *nl;
	size_t len;

	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (r == 0)
		return -1;
	if ((nl = memchr(buf, '\n', (size_t)r)) == NULL)
		return (size_t)r >= sizeof(buf) ? -1 : 0;
	len = (size_t)(nl - buf) + 1;
	if (recv(p->conn.fd, buf, len, MSG_DONTWAIT) != (ssize_t)len)
		return -1;
	len--;
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	if (len > PENDING_LINE_MAX)
		return -1;
	memcpy(p->line, buf, len);
	p->line[len] = '\0';
	p->ready = 1;
	return 0;
}

/*
 * Peek at what came. While the header is not whole, every byte that came is
 * header: take them all (left unread, they would wake poll again at once).
 * Once it is whole, take just the rest of it: what follows is the handler's.
 */
static void
read_proxy(struct pending *p)
{
	ssize_t r = recv(p->conn.fd, p->head + p->have, sizeof(p->head) - p->have,
	    MSG_PEEK | MSG_DONTWAIT);
	enum proxy_result res;
	size_t take;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		p->ready = -1;
		p->why = r == 0 ? "closed before the end of its PROXY header" : strerror(errno);
		return;
	}
	res = proxy_parse(p->head, p->have + (size_t)r, p->proxy, &p->hdr, &p->why);
	if (res == PROXY_BAD) {
		p->ready = -1;
		return;
	}
	take = res == PROXY_DONE ? p->hdr.length - p->have : (size_t)r;
	if (recv(p->conn.fd, p->head + p->have, take, MSG_DONTWAIT) != (ssize_t)take) {
		p->ready = -1;
		p->why = "short read of its PROXY header";
		return;
	}
	p->have += take;
	if (res == PROXY_DONE)
		p->ready = 1;
	else if (p->have == sizeof(p->head)) {
		p->ready = -1;
		p->why = "PROXY header too long";
	}
}

void
pending_service(const struct pollfd *pfd, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		size_t i;

		if (pfd[k].revents == 0)
			continue;
		for (i = 0; i < count && list[i]->conn.fd != pfd[k].fd; i++)
			;
		if (i == count || list[i]->ready != 0)
			continue;
		if (list[i]->proxy)
			read_proxy(list[i]);
		else if (read_line(list[i]) < 0)
			drop(i, 1);
	}
}

long long
pending_run(int (*take)(struct pending *p, void *ctx), void *ctx, long long now,
    const char *late)
{
	long long next = 0;

	for (size_t i = count; i-- > 0;) {
		struct pending *p = list[i];

		if (p->ready != 0 && take(p, ctx)) {
			drop(i, 0);
			continue;
		}
		if (now >= p->deadline_ms && p->proxy && p->ready == 0) {
			/* A PROXY header that never came whole: its service counts it. */
			p->ready = -1;
			p->why = "no whole PROXY header in time";
			if (take(p, ctx)) {
				drop(i, 0);
				continue;
			}
		}
		if (now >= p->deadline_ms) {
			if (late != NULL)
				(void)!send(p->conn.fd, late, strlen(late), MSG_DONTWAIT | MSG_NOSIGNAL);
			/* Unread input at close would turn it into a reset that eats `late`. */
			shutdown(p->conn.fd, SHUT_WR);
			for (int k = 0; k < 16; k++) {
				char sink[4096];

				if (recv(p->conn.fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
					break;
			}
			drop(i, 1);
			continue;
		}
		if (next == 0 || p->deadline_ms < next)
			next = p->deadline_ms;
	}
	return next;
}

void
pending_close_all(void)
{
	while (count > 0)
		drop(count - 1, 1);
	free(list);
	list = NULL;
	cap = 0;
}
