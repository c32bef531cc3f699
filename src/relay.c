#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "addr.h"
#include "relay.h"
#include "tls.h"

/*
 * Client to handler: one TLS record's worth, the most SSL_read gives at once.
 * Handler to client: four, so that a handler writing a lot costs one recv()
 * per 64 KiB; SSL_write makes records of it one by one (partial writes).
 */
#define RELAY_BUF_IN 16384
#define RELAY_BUF_OUT 65536
/* After our close_notify and FIN, how long the client has to close too. */
#define LINGER_MS 1000

/*
 * A write or close_notify that did not go through: whether OpenSSL only waits
 * for the socket (and which way, added to *want), rather than the client being gone.
 */
static int
ssl_would_block(SSL *ssl, int ret, short *want)
{
	int e = SSL_get_error(ssl, ret);

	if (e == SSL_ERROR_WANT_WRITE)
		*want |= POLLOUT;
	else if (e == SSL_ERROR_WANT_READ)
		*want |= POLLIN;
	return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The client's close_notify, as against a bare TCP FIN (truncation). */
static int got_close_notify;

static void
on_info(const SSL *ssl, int where, int ret)
{
	(void)ssl;
	/* SSL_CB_READ_ALERT is two bits, one of them shared with SSL_CB_WRITE_ALERT. */
	if ((where & SSL_CB_READ_ALERT) == SSL_CB_READ_ALERT &&
	    (ret & 0xff) == SSL_AD_CLOSE_NOTIFY)
		got_close_notify = 1;
}

static void
finish(int reportfd, const struct relay_report *r)
{
	(void)!write(reportfd, r, sizeof(*r));
	close(reportfd);
}

/* Why a handshake failed, from what OpenSSL left: one of enum tls_fail. */
static int
classify(SSL *ssl, int err, char *why, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	long v = SSL_get_verify_result(ssl);
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (v != X509_V_OK) {
		snprintf(why, len, "client certificate: %s", X509_verify_cert_error_string(v));
		return TLS_FAIL_CERTIFICATE;
	}
	if (reason == NULL)
		reason = err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN ?
		    "the client closed the connection" : "handshake failed";
	snprintf(why, len, "%s", reason);
	switch (ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0) {
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_NO_CERTIFICATES_RETURNED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
		return TLS_FAIL_CERTIFICATE;
	}
	return TLS_FAIL_PROTOCOL;
}

/* The handshake, under its deadline. 0, or -1 with the report filled in. */
static int
handshake(SSL *ssl, int fd, unsigned secs, struct relay_report *r)
{
	long long deadline = now_ms() + (long long)secs * 1000;

	for (;;) {
		int ret, err;
		struct pollfd p = { .fd = fd };
		long long left;

		ERR_clear_error();
		if ((ret = SSL_accept(ssl)) == 1)
			return 0;
		err = SSL_get_error(ssl, ret);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
			r->handshake = 1 + classify(ssl, err, r->why, sizeof(r->why));
			return -1;
		}
		p.events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		do {
			if ((left = deadline - now_ms()) <= 0) {
				r->handshake = 1 + TLS_FAIL_TIMEOUT;
				snprintf(r->why, sizeof(r->why), "no handshake within %u s", secs);
				return -1;
			}
			ret = poll(&p, 1, (int)left);
		} while (ret == 0 || (ret < 0 && errno == EINTR));
	}
}

/* The UCSPI-TLS variables (as s6-tlsserver sets them) and SSL_ALPN. */
static char var_proto[64], var_cipher[128], var_sni[300], var_alpn[300], var_hash[128];
static char var_subject[1024];
static char *tls_env[7];

static void
tls_vars(SSL *ssl)
{
	const unsigned char *alpn;
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	unsigned alpnlen;
	int n = 0;

	snprintf(var_proto, sizeof(var_proto), "SSL_PROTOCOL=%s", SSL_get_version(ssl));
	tls_env[n++] = var_proto;
	snprintf(var_cipher, sizeof(var_cipher), "SSL_CIPHER=%s", SSL_get_cipher_name(ssl));
	tls_env[n++] = var_cipher;
	/* A host name, or nothing: the client chose these bytes (a newline, say). */
	if (sni != NULL && sni[0] != '\0' && strspn(sni, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(sni)) {
		snprintf(var_sni, sizeof(var_sni), "SSL_TLS_SNI_SERVERNAME=%s", sni);
		tls_env[n++] = var_sni;
	}
	SSL_get0_alpn_selected(ssl, &alpn, &alpnlen);
	if (alpnlen > 0) {
		snprintf(var_alpn, sizeof(var_alpn), "SSL_ALPN=%.*s", (int)alpnlen, alpn);
		tls_env[n++] = var_alpn;
	}
	/* Only a certificate that verified: tls_verify refuses the others. */
	if (peer != NULL && SSL_get_verify_result(ssl) == X509_V_OK) {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned mdlen = 0;
		BIO *b;

		if (X509_digest(peer, EVP_sha256(), md, &mdlen) == 1) {
			int at = snprintf(var_hash, sizeof(var_hash), "SSL_PEER_CERT_HASH=SHA256:");

			for (unsigned i = 0; i < mdlen && at + 3 <= (int)sizeof(var_hash); i++)
				at += snprintf(var_hash + at, sizeof(var_hash) - (size_t)at, "%02x",
				    md[i]);
			tls_env[n++] = var_hash;
		}
		/* Whole or not at all: cut short, it would name a broader subject. */
		if ((b = BIO_new(BIO_s_mem())) != NULL) {
			int at = snprintf(var_subject, sizeof(var_subject),
			    "SSL_PEER_CERT_SUBJECT="), got;

			X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
			got = BIO_read(b, var_subject + at, (int)sizeof(var_subject) - at - 1);
			if (got >= 0 && BIO_pending(b) == 0) {
				var_subject[at + got] = '\0';
				tls_env[n++] = var_subject;
			}
			BIO_free(b);
		}
	}
	tls_env[n] = NULL;
}

struct pipe_buf {
	char		*buf;
	size_t		 size, off, len;
};

/*
 * A handler that fills the whole buffer is sending a lot: its records are
 * held back (TCP_CORK) until there is nothing more to write for now, so that
 * four 16 KiB records go out as one segment rather than four. Returns the
 * new state.
 */
static int
cork(int fd, int on)
{
	(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
	return on;
}

/*
 * Whether the handler may still want the client's bytes: it has not stopped
 * reading, and its end is not closed (POLLHUP: it has exited). A client that
 * ends without close_notify after that has cut nothing short.
 */
static int
handler_listens(int sp, int h_deaf)
{
	struct pollfd p = { .fd = sp };

	return !h_deaf && !(poll(&p, 1, 0) == 1 && (p.revents & POLLHUP));
}

/*
 * Carry bytes between the client (ssl on fd) and the handler (sp) until both
 * directions are done, as a careful proxy: the handler's EOF becomes our
 * close_notify, the client's close_notify or FIN an EOF on the handler's
 * stdin, and the other direction goes on meanwhile. A client that resets
 * the connection can be written no more, but what it sent before is read to
 * the end and reaches the handler, as it would on a plain TCP service.
 */
static void
pump(SSL *ssl, int fd, int sp, struct relay_report *r)
{
	static char in[RELAY_BUF_IN], out[RELAY_BUF_OUT];
	struct pipe_buf to_h = { in, sizeof(in), 0, 0 }, to_c = { out, sizeof(out), 0, 0 };
	int c_eof = 0, c_dead = 0, h_eof = 0, h_gone = 0, h_deaf = 0, sp_shut = 0;
	int notified = 0, c_hup = 0;	/* c_hup: reset (poll said so); read what is left */
	int c_judged = 0;		/* whether the client's end was truncation, said */
	/*
	 * A side that said "nothing more for now" is not asked again until poll
	 * says it has something: in a long transfer, one read() that fails with
	 * EAGAIN per record is otherwise spent on the side that sends nothing.
	 */
	int c_drained = 0, h_drained = 0;
	int corked = 0;

	for (;;) {
		short want_c = 0, want_h = 0;
		int progress = 0, n, e;

		/* The client's bytes to the handler. */
		if (!c_eof && !c_dead && to_h.len == 0 && c_drained && !c_hup &&
		    !SSL_has_pending(ssl)) {
			want_c |= POLLIN;
		} else if (!c_eof && !c_dead && to_h.len == 0) {
			ERR_clear_error();
			n = SSL_read(ssl, to_h.buf, (int)to_h.size);
			if (n > 0) {
				to_h.off = 0;
				to_h.len = (size_t)n;
				progress = 1;
			} else if ((e = SSL_get_error(ssl, n)) == SSL_ERROR_WANT_READ && !c_hup) {
				want_c |= POLLIN;
				c_drained = 1;
			} else if (e == SSL_ERROR_WANT_WRITE && !c_hup) {
				want_c |= POLLOUT;
			} else {
				/* A FIN (unexpected EOF is ignored) or a close_notify; else gone. */
				if (e == SSL_ERROR_ZERO_RETURN && !c_hup)
					c_eof = 1;
				else
					c_dead = 1;
				/* Now: once the handler's stdin is shut, it exits, and listens no more. */
				r->truncated = !got_close_notify && handler_listens(sp, h_deaf);
				c_judged = 1;
				progress = 1;
			}
		}
		if (to_h.len > 0 && !h_deaf) {
			ssize_t w = send(sp, to_h.buf + to_h.off, to_h.len, MSG_NOSIGNAL |
			    MSG_DONTWAIT);

			if (w > 0) {
				to_h.off += (size_t)w;
				to_h.len -= (size_t)w;
				progress = 1;
			} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
				want_h |= POLLOUT;
			} else {
				h_deaf = 1;	/* it reads no more: what comes is dropped */
				progress = 1;
			}
		}
		if (h_deaf)
			to_h.len = 0;
		if ((c_eof || c_dead) && to_h.len == 0 && !sp_shut) {
			shutdown(sp, SHUT_WR);
			sp_shut = 1;
		}

		/* The handler's bytes to the client. */
		if (!h_eof && !c_dead && to_c.len == 0 && h_drained) {
			want_h |= POLLIN;
		} else if (!h_eof && !c_dead && to_c.len == 0) {
			ssize_t got = recv(sp, to_c.buf, to_c.size, MSG_DONTWAIT);

			if (got > 0) {
				to_c.off = 0;
				to_c.len = (size_t)got;
				progress = 1;
				if ((size_t)got == to_c.size && !corked)
					corked = cork(fd, 1);
			} else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
				want_h |= POLLIN;
				h_drained = errno == EAGAIN;
			} else {
				h_eof = 1;
				progress = 1;
			}
		}
		if (to_c.len > 0 && !c_dead) {
			ERR_clear_error();
			n = SSL_write(ssl, to_c.buf + to_c.off, (int)to_c.len);
			if (n > 0) {
				to_c.off += (size_t)n;
				to_c.len -= (size_t)n;
				progress = 1;
			} else if (!ssl_would_block(ssl, n, &want_c)) {
				c_dead = 1;
				progress = 1;
			}
		}
		if (h_eof && to_c.len == 0 && !notified && !c_dead) {
			ERR_clear_error();
			n = SSL_shutdown(ssl);
			if (n >= 0) {
				notified = 1;
				progress = 1;
			} else if (!ssl_would_block(ssl, n, &want_c)) {
				c_dead = 1;
				progress = 1;
			}
		}

		/*
		 * A client gone takes the rest of the handler's output with it; what
		 * it sent before is passed on, then the end of the handler's input.
		 */
		if (c_dead) {
			if (!c_judged)
				r->truncated = !got_close_notify && handler_listens(sp, h_deaf);
			if (to_h.len > 0 && !h_deaf)
				(void)!send(sp, to_h.buf + to_h.off, to_h.len, MSG_NOSIGNAL |
				    MSG_DONTWAIT);
			shutdown(sp, SHUT_WR);
			return;
		}
		if (h_eof && notified && ((c_eof && sp_shut) || h_deaf || h_gone)) {
			if (corked)
				(void)cork(fd, 0);
			return;
		}
		if (progress)
			continue;
		if (corked)
			corked = cork(fd, 0);
		{
			struct pollfd p[2] = { { .fd = c_hup ? -1 : fd, .events = want_c },
				{ .fd = sp, .events = want_h } };

			/* The handler's end, watched for its last close (POLLHUP) until then. */
			if (h_gone && want_h == 0)
				p[1].fd = -1;
			if (poll(p, 2, -1) < 0 && errno != EINTR)
				return;
			if (p[0].revents != 0)
				c_drained = 0;
			if (p[1].revents != 0)
				h_drained = 0;
			/* Reset: no more writing; the reads above drain what came, then end. */
			if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
				c_hup = 1;
			if (p[1].revents & (POLLHUP | POLLERR))
				h_gone = 1;
		}
	}
}

/* Our close_notify and FIN are out: let the client close first, so no RST eats them. */
static void
linger(int fd)
{
	long long deadline = now_ms() + LINGER_MS;
	char sink[4096];

	shutdown(fd, SHUT_WR);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return;
		if ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) == 0 ||
		    (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

/* The relay ends as its handler did, so that porterd counts the exit the same way. */
static _Noreturn void
exit_as(int status)
{
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		sigset_t one;

		signal(sig, SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		kill(getpid(), sig);
		_exit(128 + sig);
	}
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 111);
}

void
relay_main(const struct service *s, const struct conn *c, int cgfd, int errfd, int reportfd)
{
	struct relay_report r;
	int keep[3] = { c->fd, errfd, reportfd }, sp[2], status = 0, unused;
	struct conn h;
	const char *step;
	char err[sizeof(r.why)];
	pid_t pid;
	SSL *ssl;

	memset(&r, 0, sizeof(r));
	spawn_reset_signals();
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Into the connection's cgroup while still porterd's ids (a fork cannot be
	 * born there: clone3 without fork's care for malloc's locks is not safe in
	 * porterd, which has a reader thread): the handler is then born in it.
	 */
	if (cgfd >= 0 && spawn_join_cgroup(cgfd) < 0) {
		r.no_handler = 1;
		snprintf(r.why, sizeof(r.why), "relay: cgroup: %s", strerror(errno));
		finish(reportfd, &r);
		_exit(111);
	}
	/* porterd's listeners, pipes and other clients are none of this process's business. */
	spawn_close_fds(keep, 3);
	/*
	 * The handler's ids before the first byte from the client is parsed, and
	 * not dumpable: the handler runs with the same ids, and must not read the
	 * key out of this process (ptrace, /proc/PID/mem).
	 */
	if (spawn_sandbox(s, &step) < 0) {
		r.no_handler = 1;
		snprintf(r.why, sizeof(r.why), "relay: %s: %s", step, strerror(errno));
		finish(reportfd, &r);
		_exit(111);
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	(void)fcntl(c->fd, F_SETFL, O_NONBLOCK);
	/*
	 * A record goes out when it is made: OpenSSL writes each one on its own,
	 * and Nagle would hold the last short one of a reply (or the first after
	 * the session tickets) for the client's delayed ACK, some 40 ms. Bulk
	 * output is batched by cork() instead.
	 */
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
	if ((ssl = SSL_new(tls_ssl_ctx(s->tls_ctx))) == NULL || SSL_set_fd(ssl, c->fd) != 1) {
		r.no_handler = 1;
		snprintf(r.why, sizeof(r.why), "relay: SSL_new: out of memory");
		finish(reportfd, &r);
		_exit(111);
	}
	SSL_set_info_callback(ssl, on_info);
	if (handshake(ssl, c->fd, s->tls_handshake_timeout, &r) < 0) {
		finish(reportfd, &r);
		_exit(0);
	}
	tls_vars(ssl);

	h = *c;
	if (h.locallen == 0) {
		h.locallen = sizeof(h.local);
		if (getsockname(c->fd, (struct sockaddr *)&h.local, &h.locallen) < 0)
			h.locallen = 0;
	}
	h.relayed = 1;
	h.relay_errfd = errfd;
	h.tls_env = tls_env;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		r.no_handler = 1;
		snprintf(r.why, sizeof(r.why), "socketpair: %s", strerror(errno));
		pid = -1;
	} else {
		h.fd = sp[1];
		if ((pid = spawn_handler(s, &h, -1, &unused, err, sizeof(err))) < 0) {
			r.no_handler = 1;
			snprintf(r.why, sizeof(r.why), "%s", err);
		}
		close(sp[1]);
	}
	if (s->stderr_mode == STDERR_LOG && errfd >= 0)
		close(errfd);	/* the handler has it; porterd sees EOF when it is done */
	if (pid > 0) {
		(void)fcntl(sp[0], F_SETFL, O_NONBLOCK);
		pump(ssl, c->fd, sp[0], &r);
		close(sp[0]);
	} else {
		SSL_shutdown(ssl);
	}
	linger(c->fd);
	close(c->fd);
	finish(reportfd, &r);
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	exit_as(pid > 0 ? status : 111 << 8);
}

int
relay_report_read(int fd, struct relay_report *r)
{
	ssize_t n;

	do
		n = read(fd, r, sizeof(*r));
	while (n < 0 && errno == EINTR);
	/* The relay runs as the service's user, exposed to the client: trust nothing. */
	if (n != (ssize_t)sizeof(*r) || r->handshake < 0 || r->handshake > TLS_FAIL_N)
		return -1;
	r->truncated = r->truncated != 0;
	r->no_handler = r->no_handler != 0;
	r->why[sizeof(r->why) - 1] = '\0';
	for (char *p = r->why; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
	return 0;
}
