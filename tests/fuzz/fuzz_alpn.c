/*
 * libFuzzer target for the ALPN lists (src/tls_alpn.c): tls_alpn_select reads
 * the protocol list of a client's ClientHello, untrusted bytes, before any
 * handshake is done. The input is split at its first NUL: before it, a
 * tls_alpn value as an admin writes it; after it, the client's wire list.
 * A value that parses must give a well-formed wire list that holds each name
 * once; a selection must point inside ours, at a name the client offered.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls_alpn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the client's wire list names (sel, len). */
static int
offered(const unsigned char *l, size_t n, const unsigned char *sel, size_t len)
{
	for (size_t at = 0; at < n && (size_t)l[at] <= n - at - 1; at += 1 + (size_t)l[at])
		if (l[at] == len && memcmp(l + at + 1, sel, len) == 0)
			return 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t textlen = nul != NULL ? (size_t)(nul - data) : size;
	unsigned char ours[TLS_ALPN_MAX];
	const unsigned char *client = nul != NULL ? nul + 1 : data + size;
	size_t clientlen = size - textlen - (nul != NULL);
	const unsigned char *sel = NULL;
	unsigned char sellen = 0;
	const char *why = NULL;
	char *text = malloc(textlen + 1);
	int n;

	if (text == NULL)
		abort();
	memcpy(text, data, textlen);
	text[textlen] = '\0';
	n = tls_alpn_parse(text, ours, &why);
	free(text);
	if (n < 0) {
		if (why == NULL)
			abort();
		/* The client's list alone, against a fixed list of ours. */
		n = tls_alpn_parse("h2,http/1.1", ours, &why);
	}
	if (n <= 0 || n > TLS_ALPN_MAX)
		abort();
	for (size_t at = 0; at < (size_t)n; at += 1 + (size_t)ours[at]) {
		if (ours[at] == 0 || (size_t)ours[at] > (size_t)n - at - 1)
			abort();
		/* Each name once: it must be found first at its own place. */
		for (size_t b = 0; b < at; b += 1 + (size_t)ours[b])
			if (ours[b] == ours[at] && memcmp(ours + b + 1, ours + at + 1, ours[at]) == 0)
				abort();
	}
	if (tls_alpn_select(ours, (size_t)n, client, clientlen, &sel, &sellen) == 0) {
		if (sel < ours || sel + sellen > ours + n || sellen == 0)
			abort();
		if (!offered(client, clientlen, sel, sellen))
			abort();
	}
	return 0;
}
