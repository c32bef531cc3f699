/*
 * tls: the OpenSSL side of a tls = yes service, built when the configuration
 * is loaded (while porterd is root, so that keys may be 0600 root), and the
 * certificate checks that -t and every reload make.
 */
#ifndef PORTERD_TLS_H
#define PORTERD_TLS_H

#include <openssl/ssl.h>

#include "config.h"

/* A certificate that expires within this many days is a warning. */
#define TLS_EXPIRY_WARN_DAYS 14

/*
 * Read s's tls_cert/tls_key pairs and tls_client_ca and build its context.
 * Every problem is an error at the FILE:LINE of the key that named the file
 * (unreadable, not PEM, a key that does not match its certificate, an expired
 * certificate); a certificate close to expiry is a warning in s->tls_warn.
 */
void tls_build(struct service *s, struct config_errors *errs);
void tls_free(struct tls_ctx *t);
/* The context relays make their connections from. */
SSL_CTX *tls_ssl_ctx(const struct tls_ctx *t);

#endif
