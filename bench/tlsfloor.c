/*
 * tlsfloor: the ceiling of the TLS phase (bench/run.sh, bench/README "TLS").
 *
 *   tlsfloor -c CERT -k KEY [-w WORKERS] [-b BYTES] [-x PROG] [-X PROG]
 *            HOST:PORT [HOST:PORT]
 *
 * What a TLS server costs on this machine when nothing but TLS is done: no
 * process per connection, no handler, no relay. WORKERS processes (default
 * 16), forked once after the certificate and key are loaded, share one
 * listening sockets; each accepts, makes the handshake, writes the reply
 * itself ("hello\n" on the first address; BYTES zero bytes on the second,
 * the transfer), sends close_notify and closes. The same OpenSSL as porterd's relay and the same context settings
 * as src/tls.c's (TLS 1.2 and 1.3, the library's defaults, its session
 * tickets, no session cache). Whatever porterd-tls does beyond this (fork
 * a relay, start the handler, carry its bytes) can only cost more, so this
 * contender's conn/s over plaintext porterd's is the highest ratio any design
 * of porterd could reach here, with its clients on the same cores.
 *
 * With -x PROG (first address) and -X PROG (second), the reply is not made
 * in the worker: after the handshake it starts PROG with a socketpair on its
 * fds 0 and 1 (posix_spawn: glibc's vfork), carries what PROG writes into the
 * TLS stream until PROG's EOF, and reaps it. That is the least any inetd-style
 * TLS server must do for each connection with a handler of its own (it does
 * less than porterd: no client-to-handler direction, no limits, no cgroup).
 *
 * SIGTERM to the parent ends the workers (they also die with it: PDEATHSIG).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "genlib.h"

#define MAX_WORKERS 256

static pid_t workers[MAX_WORKERS];
static int nworkers;

static void
on_term(int sig)
{
	for (int i = 0; i < nworkers; i++)
		kill(workers[i], SIGTERM);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
listen_on(const char *hostport)
{
	struct sockaddr_in sin;
	int fd, one = 1;

	if (ipv4_port(hostport, &sin) < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The handler's output into the TLS stream, to its EOF; then reaped. 0 if all went. */
static int
run_handler(SSL *ssl, const char *prog)
{
	static char buf[65536];
	char *argv[] = { (char *)prog, NULL }, *envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	int sp[2], st, ok = 0;
	pid_t pid;
	ssize_t n;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sp[1], 0);
	posix_spawn_file_actions_adddup2(&fa, sp[1], 1);
	if (posix_spawn(&pid, prog, &fa, NULL, argv, envp) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(sp[1]);
	while (pid > 0 && (n = read(sp[0], buf, sizeof(buf))) > 0) {
		for (ssize_t at = 0; at < n;) {
			int w = SSL_write(ssl, buf + at, (int)(n - at));

			if (w <= 0) {
				ok = -1;
				goto out;
			}
			at += w;
		}
	}
out:
	close(sp[0]);
	if (pid > 0)
		waitpid(pid, &st, 0);
	return pid > 0 ? ok : -1;
}

/* One connection, blocking, bounded by the socket timeouts. */
static void
serve(SSL_CTX *ctx, int fd, unsigned long long bytes, const char *prog)
{
	static const char hello[] = "hello\n";
	static char zeros[16384];
	struct timeval tv = { .tv_sec = 10 };
	SSL *ssl = SSL_new(ctx);
	int one = 1;

	/* Each flight in one go: no small write waits for the ACK of the one before. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1)
		goto out;
	if (prog != NULL) {
		if (run_handler(ssl, prog) < 0)
			goto out;
	} else if (bytes == 0) {
		if (SSL_write(ssl, hello, sizeof(hello) - 1) <= 0)
			goto out;
	} else {
		while (bytes > 0) {
			int n = bytes < sizeof(zeros) ? (int)bytes : (int)sizeof(zeros);

			if ((n = SSL_write(ssl, zeros, n)) <= 0)
				goto out;
			bytes -= (unsigned long long)n;
		}
	}
	SSL_shutdown(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

int
main(int argc, char **argv)
{
	const char *cert = NULL, *key = NULL, *prog[2] = { NULL, NULL };
	unsigned long long bytes = 0;
	int ch, n = 16, nl;
	struct pollfd lfd[2];
	SSL_CTX *ctx;

	while ((ch = getopt(argc, argv, "c:k:w:b:x:X:")) != -1) {
		switch (ch) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'w': n = atoi(optarg); break;
		case 'b': bytes = strtoull(optarg, NULL, 10); break;
		case 'x': prog[0] = optarg; break;
		case 'X': prog[1] = optarg; break;
		default: goto usage;
		}
	}
	nl = argc - optind;
	if (cert == NULL || key == NULL || nl < 1 || nl > 2 || n < 1 || n > MAX_WORKERS)
		goto usage;
	signal(SIGPIPE, SIG_IGN);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_print_errors_fp(stderr);
		return 2;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION);
	for (int i = 0; i < nl; i++) {
		lfd[i].events = POLLIN;
		if ((lfd[i].fd = listen_on(argv[optind + i])) < 0) {
			fprintf(stderr, "tlsfloor: %s: %s\n", argv[optind + i], strerror(errno));
			return 2;
		}
	}
	for (nworkers = 0; nworkers < n; nworkers++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("tlsfloor: fork");
			on_term(SIGTERM);
		}
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			if (getppid() == 1)
				_exit(0);
			for (;;) {
				if (poll(lfd, (nfds_t)nl, -1) <= 0)
					continue;
				for (int i = 0; i < nl; i++) {
					/* Blocking: the socket timeouts bound each step. */
					int fd = accept4(lfd[i].fd, NULL, NULL, 0);

					if (fd >= 0)
						serve(ctx, fd, i == 0 ? 0 : bytes, prog[i]);
				}
			}
		}
		workers[nworkers] = pid;
	}
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	return 0;
usage:
	fprintf(stderr, "usage: tlsfloor -c CERT -k KEY [-w WORKERS] [-b BYTES] [-x PROG] [-X PROG]\n"
	    "                HOST:PORT [HOST:PORT]\n");
	return 2;
}
