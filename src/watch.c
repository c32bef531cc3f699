#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "watch.h"

static int epfd = -1;

int
watch_init(void)
{
	if (epfd < 0 && (epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -1;
	return 0;
}

int
watch_fd(void)
{
	return epfd;
}

int
watch_set(struct listener *l, size_t idx, int on)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };

	l->watch_idx = idx;
	if (on == l->watched || l->fd < 0)
		return 0;
	/*
	 * Delete rather than disable: epoll keys on the open socket, and a wait
	 * handler holding that socket must not keep reporting it here.
	 */
	if (epoll_ctl(epfd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, l->fd, on ? &ev : NULL) < 0 &&
	    !(!on && (errno == ENOENT || errno == EBADF)))
		return -1;
	l->watched = on;
	return 0;
}

void
watch_forget(struct listener *l)
{
	if (l->watched && l->fd >= 0)
		(void)epoll_ctl(epfd, EPOLL_CTL_DEL, l->fd, NULL);
	l->watched = 0;
}

int
watch_ready(struct listener **ready, int max)
{
	struct epoll_event ev[64];
	int n;

	if (max > 64)
		max = 64;
	do
		n = epoll_wait(epfd, ev, max, 0);
	while (n < 0 && errno == EINTR);
	for (int i = 0; i < n; i++)
		ready[i] = ev[i].data.ptr;
	return n < 0 ? 0 : n;
}
