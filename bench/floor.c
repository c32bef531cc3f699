/*
 * floor: the smallest correct concurrent inetd-style server, the yardstick of
 * bench/run.sh. One listening socket on 127.0.0.1:PORT; per connection:
 * accept4, start HANDLER in a session of its own with the connection on fds 0
 * and 1, close our copy. Children are reaped on SIGCHLD.
 *
 * How the handler is started:
 *   default             vfork + setsid + execve: no page tables copied, and
 *                       the child makes a handful of system calls before execve
 *   -DFLOOR_POSIX_SPAWN posix_spawn with POSIX_SPAWN_SETSID (glibc: a
 *                       CLONE_VM|CLONE_VFORK child too, but on an mmap'ed stack
 *                       and with one sigaction per signal before execve)
 *   -DFLOOR_FORK        fork + setsid + execve
 *   -DFLOOR_NO_SETSID   (with any of them) the handler stays in our session.
 * setsid is what xinetd, openbsd-inetd and porterd do; it also matters to the
 * scheduler: with autogroup, a new session is a new scheduling group.
 *
 * usage: floor PORT HANDLER
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef FLOOR_NO_SETSID
#define NEW_SESSION 0
#else
#define NEW_SESSION 1
#endif

extern char **environ;

static void
reap(int sig)
{
	int saved = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sigaction sa = { .sa_handler = reap, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	char *hargv[2] = { argv[argc > 2 ? 2 : 0], NULL };
	int lfd, fd, one = 1;
	sigset_t all, none;
	pid_t pid;

	if (argc != 3) {
		fprintf(stderr, "usage: floor PORT HANDLER\n");
		return 100;
	}
	/* An accepted fd must never land on 0 or 1 (dup2 onto itself keeps CLOEXEC). */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd < 3)
		;
	close(fd);
	sigfillset(&all);
	sigemptyset(&none);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
	sin.sin_port = htons((unsigned short)atoi(argv[1]));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, SOMAXCONN) < 0) {
		perror("floor: listen");
		return 111;
	}
	for (;;) {
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(100000);
			continue;
		}
#if defined(FLOOR_POSIX_SPAWN)
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;

		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_adddup2(&fa, fd, 0);
		posix_spawn_file_actions_adddup2(&fa, fd, 1);
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, NEW_SESSION ? POSIX_SPAWN_SETSID : 0);
		if ((errno = posix_spawn(&pid, hargv[0], &fa, &at, hargv, environ)) != 0)
			perror("floor: posix_spawn");
		posix_spawnattr_destroy(&at);
		posix_spawn_file_actions_destroy(&fa);
#else
		/* Our SIGCHLD handler must not run in the child before execve. */
		sigprocmask(SIG_SETMASK, &all, NULL);
#if defined(FLOOR_FORK)
		pid = fork();
#else
		pid = vfork();
#endif
		if (pid == 0) {
			/* Not shared with a vfork child: dispositions and mask are its own. */
			signal(SIGCHLD, SIG_DFL);
			sigprocmask(SIG_SETMASK, &none, NULL);
			if (NEW_SESSION)
				setsid();
			dup2(fd, 0);
			dup2(fd, 1);
			execve(hargv[0], hargv, environ);
			_exit(127);
		}
		if (pid < 0)
			perror("floor: fork");
		sigprocmask(SIG_SETMASK, &none, NULL);
#endif
		close(fd);
	}
}
