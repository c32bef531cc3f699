#include <string.h>

#include "tls_alpn.h"

int
tls_alpn_parse(const char *text, unsigned char *out, const char **why)
{
	size_t len = 0;

	for (const char *p = text; *p != '\0';) {
		size_t n;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		if (n > 255)
			return *why = "a protocol name is at most 255 bytes", -1;
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] == 0x7f)
				return *why = "a protocol name has no control characters", -1;
		for (size_t at = 0; at < len; at += 1 + out[at])
			if (out[at] == n && memcmp(out + at + 1, p, n) == 0)
				return *why = "a protocol is named twice", -1;
		if (len + 1 + n > TLS_ALPN_MAX)
			return *why = "the list is longer than 1024 bytes", -1;
		out[len] = (unsigned char)n;
		memcpy(out + len + 1, p, n);
		len += 1 + n;
		p += n;
	}
	if (len == 0)
		return *why = "expected protocol names, such as h2, http/1.1", -1;
	return (int)len;
}

/* Whether wire list l[0..len) is well formed: names of 1 to 255 bytes, nothing left over. */
static int
well_formed(const unsigned char *l, size_t len)
{
	size_t at = 0;

	while (at < len) {
		if (l[at] == 0 || l[at] > len - at - 1)
			return 0;
		at += 1 + (size_t)l[at];
	}
	return len > 0;
}

int
tls_alpn_select(const unsigned char *ours, size_t ourlen, const unsigned char *client,
    size_t clientlen, const unsigned char **sel, unsigned char *sellen)
{
	if (!well_formed(client, clientlen))
		return -1;
	/* Our order wins: the server's preference, as RFC 7301 allows. */
	for (size_t a = 0; a + 1 <= ourlen && a + 1 + ours[a] <= ourlen; a += 1 + (size_t)ours[a])
		for (size_t b = 0; b < clientlen; b += 1 + (size_t)client[b])
			if (client[b] == ours[a] && memcmp(client + b + 1, ours + a + 1, ours[a]) == 0) {
				*sel = ours + a + 1;
				*sellen = ours[a];
				return 0;
			}
	return -1;
}
