#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

static struct sockaddr_un where;
static socklen_t where_len;

void
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    (n = strlen(path)) >= sizeof(where.sun_path))
		return;
	memset(&where, 0, sizeof(where));
	where.sun_family = AF_UNIX;
	memcpy(where.sun_path, path, n);
	if (path[0] == '@')
		where.sun_path[0] = '\0';	/* an abstract socket */
	where_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	unsetenv("NOTIFY_SOCKET");
}

int
notify_send(const char *state)
{
	int fd, r, e;

	if (where_len == 0)
		return 0;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	r = (int)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&where,
	    where_len);
	e = errno;
	close(fd);
	errno = e;
	return r < 0 ? -1 : 0;
}
