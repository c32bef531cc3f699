#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "config_raw.h"
#include "tls.h"
#include "tls_alpn.h"

struct tls_pair {
	X509		*cert;
	STACK_OF(X509)	*chain;		/* the rest of the tls_cert file */
	EVP_PKEY	*key;
};

struct tls_ctx {
	SSL_CTX		*ctx;
	struct tls_pair	*pair;		/* pair[0]: the default */
	size_t		 npair;
	unsigned char	 alpn[TLS_ALPN_MAX];
	size_t		 alpn_len;	/* 0: no ALPN */
};

SSL_CTX *
tls_ssl_ctx(const struct tls_ctx *t)
{
	return t->ctx;
}

/* OpenSSL's last error, for a message; the queue is cleared. */
static const char *
ssl_why(const char *fallback)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	ERR_clear_error();
	if (e == 0)
		return fallback;
	snprintf(buf, sizeof(buf), "%s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) :
	    fallback);
	return buf;
}

/* A key with a passphrase cannot be asked for: say so instead of prompting. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

static BIO *
open_pem(const char *path, const struct where *at, const char *key,
    struct config_errors *errs)
{
	/* Not blocking, and a regular file: a FIFO would hold up the loop, which reads these. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	FILE *f;
	BIO *b;

	if (fd < 0 || fstat(fd, &st) < 0) {
		config_error(errs, at, "%s = %s: %s", key, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		config_error(errs, at, "%s = %s: not a regular file", key, path);
		close(fd);
		return NULL;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		config_error(errs, at, "%s = %s: %s", key, path, strerror(errno));
		close(fd);
		return NULL;
	}
	if ((b = BIO_new_fp(f, BIO_CLOSE)) == NULL) {
		fclose(f);
		config_error(errs, at, "%s = %s: out of memory", key, path);
	}
	return b;
}

static void
check_dates(struct service *s, X509 *cert, const struct tls_file *tf,
    struct config_errors *errs)
{
	time_t soon = time(NULL) + (time_t)TLS_EXPIRY_WARN_DAYS * 86400;
	const ASN1_TIME *na = X509_get0_notAfter(cert);
	char when[64] = "?";
	BIO *m = BIO_new(BIO_s_mem());
	int days = 0, secs = 0;

	if (m != NULL) {
		int n;

		ASN1_TIME_print(m, na);
		n = BIO_read(m, when, sizeof(when) - 1);
		when[n > 0 ? n : 0] = '\0';
		BIO_free(m);
	}
	if (X509_cmp_current_time(na) <= 0) {
		config_error(errs, &tf->at, "tls_cert = %s: the certificate expired on %s",
		    tf->path, when);
	} else if (X509_cmp_time(na, &soon) <= 0) {
		struct config_errors w = { s->tls_warn, s->ntls_warn };

		ASN1_TIME_diff(&days, &secs, NULL, na);
		config_error(&w, &tf->at, "warning: tls_cert = %s: the certificate expires in "
		    "%d day%s (%s)", tf->path, days, days == 1 ? "" : "s", when);
		s->tls_warn = w.msg;
		s->ntls_warn = w.n;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
		config_error(errs, &tf->at, "tls_cert = %s: the certificate is not valid yet",
		    tf->path);
}

/* A certificate chain file: the certificate, then the rest of its chain. */
static int
load_cert(struct service *s, const struct tls_file *tf, struct tls_pair *p,
    struct config_errors *errs)
{
	BIO *b = open_pem(tf->path, &tf->at, "tls_cert", errs);
	X509 *x;

	if (b == NULL)
		return -1;
	if ((p->cert = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) == NULL) {
		config_error(errs, &tf->at, "tls_cert = %s: no PEM certificate (%s)", tf->path,
		    ssl_why("unreadable"));
		BIO_free(b);
		return -1;
	}
	if ((p->chain = sk_X509_new_null()) == NULL)
		abort();
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(p->chain, x))
			abort();
	/* The end of the file, or a broken certificate after the first. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE &&
	    ERR_peek_last_error() != 0) {
		config_error(errs, &tf->at, "tls_cert = %s: a certificate of the chain is "
		    "broken (%s)", tf->path, ssl_why("unreadable"));
		BIO_free(b);
		return -1;
	}
	ERR_clear_error();
	BIO_free(b);
	check_dates(s, p->cert, tf, errs);
	return 0;
}

static int
load_key(const struct tls_file *tf, const struct tls_file *cf, struct tls_pair *p,
    struct config_errors *errs)
{
	BIO *b = open_pem(tf->path, &tf->at, "tls_key", errs);
	int asked = 0;

	if (b == NULL)
		return -1;
	p->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, &asked);
	BIO_free(b);
	if (p->key == NULL) {
		config_error(errs, &tf->at, "tls_key = %s: %s", tf->path, asked ?
		    "the key has a passphrase; porterd needs it without one" :
		    ssl_why("no PEM private key"));
		ERR_clear_error();
		return -1;
	}
	if (p->cert != NULL && X509_check_private_key(p->cert, p->key) != 1) {
		config_error(errs, &tf->at, "tls_key = %s: does not match the certificate of "
		    "tls_cert = %s (line %d)", tf->path, cf->path, cf->at.line);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* SNI: the first pair whose certificate names the host; else pair 0, set already. */
static int
on_servername(SSL *ssl, int *alert, void *arg)
{
	const struct tls_ctx *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL || t->npair < 2)
		return SSL_TLSEXT_ERR_OK;
	for (size_t i = 0; i < t->npair; i++)
		if (X509_check_host(t->pair[i].cert, name, strlen(name), 0, NULL) == 1) {
			if (i != 0 && SSL_use_cert_and_key(ssl, t->pair[i].cert, t->pair[i].key,
			    t->pair[i].chain, 1) != 1)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			break;
		}
	return SSL_TLSEXT_ERR_OK;
}

/* ALPN: porterd's order; none in common is no_application_protocol (RFC 7301). */
static int
on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
    unsigned int inlen, void *arg)
{
	const struct tls_ctx *t = arg;

	(void)ssl;
	if (tls_alpn_select(t->alpn, t->alpn_len, in, inlen, out, outlen) < 0)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *
new_ctx(const struct service *s, struct tls_ctx *t, struct config_errors *errs)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	size_t n = strlen(s->name);

	if (ctx == NULL) {
		config_error(errs, &s->at, "[%s]: TLS: %s", s->name, ssl_why("out of memory"));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	/*
	 * No renegotiation at all. A TCP EOF without close_notify reads as an
	 * end of input (the relay tells truncation apart by the alert), so that
	 * the handler's output still reaches a client that only half-closed.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
	    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * Each connection has a process of its own: a server-side session cache
	 * would die with it. Tickets carry the session instead; their keys are
	 * made here, once, and every relay forked from porterd shares them.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (n > sizeof(sid))
		n = sizeof(sid);
	memcpy(sid, s->name, n);
	SSL_CTX_set_session_id_context(ctx, sid, (unsigned)n);
	SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	if (t->alpn_len > 0)
		SSL_CTX_set_alpn_select_cb(ctx, on_alpn, t);
	return ctx;
}

static void
load_client_ca(const struct service *s, struct tls_ctx *t, struct config_errors *errs)
{
	const struct where *at = &s->tls_client_ca_at;
	STACK_OF(X509_NAME) *names;
	BIO *b;
	X509 *x;
	int n = 0;

	/* Read it ourselves first: a clear reason for an unreadable or empty file. */
	if ((b = open_pem(s->tls_client_ca, at, "tls_client_ca", errs)) == NULL)
		return;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		X509_free(x);
		n++;
	}
	BIO_free(b);
	if (n == 0) {
		config_error(errs, at, "tls_client_ca = %s: no PEM certificate in it",
		    s->tls_client_ca);
		ERR_clear_error();
		return;
	}
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(t->ctx, s->tls_client_ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(s->tls_client_ca)) == NULL) {
		config_error(errs, at, "tls_client_ca = %s: %s", s->tls_client_ca,
		    ssl_why("unusable"));
		return;
	}
	SSL_CTX_set_client_CA_list(t->ctx, names);
	SSL_CTX_set_verify(t->ctx, s->tls_verify == TLS_VERIFY_REQUIRED ? SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT : s->tls_verify == TLS_VERIFY_OPTIONAL ?
	    SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
}

/* Whether a handshake step only waits for the other side's bytes. */
static int
in_progress(SSL *ssl, int ret)
{
	int e;

	if (ret == 1)
		return 1;
	e = SSL_get_error(ssl, ret);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/*
 * One handshake of the context with a client of our own, in memory, once it is
 * built. OpenSSL 3 fills caches on first use: the algorithms it fetches from
 * its provider, the key's form for that provider, the record layer's ciphers.
 * Filled here, they are in the memory every relay is forked from; otherwise
 * each relay fills them again for its one handshake, in pages of its own, and
 * throws them away (measured: most of a relay's CPU time outside the
 * cryptography itself, and of its private memory). The outcome does not
 * matter: with a required client certificate it fails, after the server's
 * part is done.
 */
static void
warm_up(SSL_CTX *server)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = NULL, *sv = NULL;
	BIO *cb = NULL, *sb = NULL;
	char byte;

	if (cctx == NULL || (c = SSL_new(cctx)) == NULL || (sv = SSL_new(server)) == NULL ||
	    BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		goto out;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(sv, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(sv);
	for (int i = 0; i < 16; i++) {
		int rc = SSL_do_handshake(c), rs = SSL_do_handshake(sv);

		if ((rc == 1 && rs == 1) || !in_progress(c, rc) || !in_progress(sv, rs))
			break;
	}
	/* A byte each way: the record layer, and the client reads the tickets. */
	if (SSL_is_init_finished(c) && SSL_is_init_finished(sv) && SSL_write(sv, "x", 1) == 1 &&
	    SSL_read(c, &byte, 1) == 1 && SSL_write(c, "x", 1) == 1)
		(void)SSL_read(sv, &byte, 1);
out:
	SSL_free(c);
	SSL_free(sv);
	SSL_CTX_free(cctx);
	ERR_clear_error();
}

void
tls_build(struct service *s, struct config_errors *errs)
{
	struct tls_ctx *t = calloc(1, sizeof(*t));
	size_t before = errs->n;
	const char *why;
	int len;

	if (t == NULL)
		abort();
	s->tls_ctx = t;
	if (s->tls_alpn != NULL) {
		if ((len = tls_alpn_parse(s->tls_alpn, t->alpn, &why)) < 0)
			config_error(errs, &s->tls_alpn_at, "tls_alpn = %s: %s", s->tls_alpn, why);
		else
			t->alpn_len = (size_t)len;
	}
	if ((t->pair = calloc(s->ntls_cert + 1, sizeof(*t->pair))) == NULL)
		abort();
	t->npair = s->ntls_cert;
	for (size_t i = 0; i < s->ntls_cert && i < s->ntls_key; i++) {
		if (load_cert(s, &s->tls_cert[i], &t->pair[i], errs) < 0)
			continue;
		load_key(&s->tls_key[i], &s->tls_cert[i], &t->pair[i], errs);
	}
	if (errs->n != before || t->npair == 0 || (t->ctx = new_ctx(s, t, errs)) == NULL)
		return;
	if (SSL_CTX_use_cert_and_key(t->ctx, t->pair[0].cert, t->pair[0].key, t->pair[0].chain,
	    1) != 1) {
		config_error(errs, &s->tls_key[0].at, "tls_key = %s: %s", s->tls_key[0].path,
		    ssl_why("OpenSSL refuses this pair"));
		return;
	}
	if (s->tls_client_ca != NULL)
		load_client_ca(s, t, errs);
	if (errs->n == before)
		warm_up(t->ctx);
}

void
tls_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->npair; i++) {
		X509_free(t->pair[i].cert);
		EVP_PKEY_free(t->pair[i].key);
		sk_X509_pop_free(t->pair[i].chain, X509_free);
	}
	free(t->pair);
	SSL_CTX_free(t->ctx);
	free(t);
}
