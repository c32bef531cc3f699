/* xinetd_emit: services.d text for porterd-xinetd; see xinetd_emit.h. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "xinetd_conv.h"
#include "xinetd_emit.h"

/* Comments are wrapped here, well below LINE_LIMIT. */
#define COMMENT_WIDTH 90
/* Lists and args are wrapped here, for a reader rather than for inih. */
#define LIST_WIDTH 100

void
emit_key(struct buf *out, const char *k, const char *v)
{
	buf_add(out, "%s = %s\n", k, v);
}

void
emit_comment(struct buf *out, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strlen(p), cut = n;

		if (n > COMMENT_WIDTH) {
			cut = COMMENT_WIDTH;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)	/* one long word: cut it anywhere */
				cut = n < LINE_LIMIT - 2 ? n : LINE_LIMIT - 2;
		}
		buf_add(out, "; %.*s\n", (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

void
emit_commentf(struct buf *out, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emit_comment(out, text);
}

int
emit_args(struct buf *out, char **argv, size_t argc)
{
	size_t col = strlen("args =");

	buf_add(out, "args =");
	for (size_t i = 0; i < argc; i++) {
		static char q[LINE_LIMIT + 1];

		q[0] = '\0';	/* args_quote appends */

		if (args_quote(q, sizeof(q), argv[i]) < 0 || strlen(q) > LINE_LIMIT - 8)
			return -1;
		if (col + 1 + strlen(q) > LIST_WIDTH) {
			buf_add(out, "\n    %s", q);
			col = 4 + strlen(q);
		} else {
			buf_add(out, " %s", q);
			col += 1 + strlen(q);
		}
	}
	buf_add(out, "\n");
	return 0;
}

void
emit_nets(struct buf *out, const char *k, const struct net *v, size_t n)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		char text[INET6_ADDRSTRLEN + 8];
		char ip[INET6_ADDRSTRLEN];

		/* porterd reads a bare address as a host: leave out /32 and /128. */
		inet_ntop(v[i].family, v[i].a, ip, sizeof(ip));
		if ((v[i].family == AF_INET && v[i].bits == 32) ||
		    (v[i].family == AF_INET6 && v[i].bits == 128))
			snprintf(text, sizeof(text), "%s", ip);
		else
			snprintf(text, sizeof(text), "%s/%d", ip, v[i].bits);
		if (col == 0 || col + strlen(text) + 2 > LIST_WIDTH) {
			buf_add(out, "%s%s = %s", col ? "\n" : "", k, text);
			col = strlen(k) + 3 + strlen(text);
		} else {
			buf_add(out, ", %s", text);
			col += 2 + strlen(text);
		}
	}
	if (col)
		buf_add(out, "\n");
}
