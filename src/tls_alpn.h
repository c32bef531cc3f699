/*
 * tls_alpn: ALPN protocol lists (RFC 7301), without OpenSSL. The tls_alpn key
 * as written becomes the wire form (length-prefixed names); the client's list,
 * untrusted bytes from its ClientHello, is matched against it.
 */
#ifndef PORTERD_TLS_ALPN_H
#define PORTERD_TLS_ALPN_H

#include <stddef.h>

/* A wire list is at most this long (the extension's own limit is 65535). */
#define TLS_ALPN_MAX 1024

/*
 * "h2, http/1.1" (commas and/or blanks) to wire form in out[TLS_ALPN_MAX].
 * Returns the length, or -1 with *why: an empty list, an empty or over-long
 * (255 bytes) name, a name with a control character or a blank, a duplicate.
 */
int tls_alpn_parse(const char *text, unsigned char *out, const char **why);

/*
 * The first of ours (wire form) that the client's wire list offers: 0 with
 * *sel and *sellen pointing into ours, or -1 (no overlap, or a malformed client list).
 */
int tls_alpn_select(const unsigned char *ours, size_t ourlen, const unsigned char *client,
    size_t clientlen, const unsigned char **sel, unsigned char *sellen);

#endif
