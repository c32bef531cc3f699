#include "filewatch.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

int
filewatch_open(const char *path)
{
	const char *base = base_name(path);
	char dir[PATH_MAX];
	int fd;

	if (base == path)
		snprintf(dir, sizeof(dir), ".");
	else if (base - path == 1)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(base - path - 1), path);
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -1;
	/*
	 * A close after writing: the file is whole (IN_MODIFY would show it half
	 * written). A rename onto it: update-inetd writes inetd.conf.new, then renames.
	 */
	if (inotify_add_watch(fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
filewatch_changed(int fd, const char *path)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *base = base_name(path);
	int changed = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; ) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			/* Events were lost: the file may be among them. */
			if ((ev->mask & IN_Q_OVERFLOW) ||
			    (ev->len > 0 && strcmp(ev->name, base) == 0))
				changed = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
	return changed;
}
