#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "pending.h"

static struct pending **list;
static size_t count, cap, max_all = 1024;
static size_t *map;		/* pollfd k -> list index, from pending_pollfds */

static void drop(size_t i, int close_fd);

void
pending_set_max(size_t max)
{
	max_all = max;
}

/*
 * The oldest silent one held for st (NULL: any service), from src (NULL: any
 * source), or count if none; *n: how many of them. One that has spoken and waits
 * for a handler slot of the service it named is never a candidate.
 */
static size_t
oldest(const struct svc_state *st, const struct srckey *src, size_t *n)
{
	size_t best = count;

	*n = 0;
	for (size_t i = 0; i < count; i++) {
		const struct pending *p = list[i];

		if (p->ready != 0 || (st != NULL && p->st != st) ||
		    (src != NULL && memcmp(&p->src, src, sizeof(*src)) != 0))
			continue;
		++*n;
		if (best == count || p->added_ms < list[best]->added_ms)
			best = i;
	}
	return best;
}

static void
evict(size_t i, const char *budget)
{
	struct svc_state *st = list[i]->st;

	st->refused[REFUSE_IDLE]++;
	log_limited(&st->lim_refused[REFUSE_IDLE], LOG_NOTICE, "%s: closed a client that "
	    "had said nothing, to make room (%s)", st->name, budget);
	drop(i, 1);
}

int
pending_add(const struct conn *c, struct svc_state *st, long long now_ms,
    long long deadline_ms, int proxy)
{
	struct srckey src;
	struct pending *p;
	size_t i, n;

	memset(&src, 0, sizeof(src));
	(void)acl_source_key((const struct sockaddr *)&c->peer, 32, 64, &src);
	if ((i = oldest(st, &src, &n)) < count && n >= PENDING_PER_SOURCE)
		evict(i, "its source holds too many");
	else if ((i = oldest(st, NULL, &n)) < count && n >= PENDING_PER_SERVICE)
		evict(i, "its service holds too many");
	else if (count >= max_all && (i = oldest(NULL, NULL, &n)) < count)
		evict(i, "porterd holds too many");

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
	p->src = src;
	p->added_ms = now_ms;
	p->st = st;
	st->refs++;
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
	svc_state_unref(p->st);
	free(p);
	list[i] = list[--count];
}

size_t
pending_pollfds(struct pollfd *pfd)
{
	size_t n = 0;

	free(map);
	if ((map = calloc(count + 1, sizeof(*map))) == NULL)
		return 0;	/* not watched this time round; their deadlines still run */
	for (size_t i = 0; i < count; i++)
		if (list[i]->ready == 0) {
			map[n] = i;
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
	/* Backwards: a drop moves the last entry into its place, never one still to look at. */
	for (size_t k = n; k-- > 0;) {
		size_t i = map[k];

		if (pfd[k].revents == 0 || i >= count || list[i]->conn.fd != pfd[k].fd ||
		    list[i]->ready != 0)
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
		/* A whole PROXY header waits for a handler slot with no deadline, as in the backlog. */
		if (p->proxy && p->ready > 0)
			continue;
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
			/* A tcpmux client that named no service in time: counted, and said once in a while. */
			p->st->refused[REFUSE_IDLE]++;
			log_limited(&p->st->lim_refused[REFUSE_IDLE], LOG_NOTICE, "%s: closed a "
			    "client that named no service in time", p->st->name);
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
	free(map);
	list = NULL;
	map = NULL;
	cap = 0;
}
