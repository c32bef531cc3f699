#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "builtins.h"

/* Seconds from 1900-01-01 to 1970-01-01 (RFC 868). */
#define EPOCH_1900 2208988800UL
#define CHARGEN_LINE 72
#define CHARGEN_CHARS 95	/* printable ASCII, ' ' to '~' */
#define DGRAM_BURST 16

int
builtin_is_immediate(enum builtin b)
{
	return b == BUILTIN_DAYTIME || b == BUILTIN_TIME;
}

void
builtin_chargen_line(unsigned n, char out[74])
{
	for (unsigned i = 0; i < CHARGEN_LINE; i++)
		out[i] = (char)(' ' + (n + i) % CHARGEN_CHARS);
	out[CHARGEN_LINE] = '\r';
	out[CHARGEN_LINE + 1] = '\n';
}

unsigned long
builtin_rfc868_now(void)
{
	return ((unsigned long)time(NULL) + EPOCH_1900) & 0xffffffffUL;
}

size_t
builtin_daytime(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	return strftime(buf, len, "%A, %B %d, %Y %H:%M:%S-UTC\r\n", &tm);
}

static size_t
immediate_answer(enum builtin b, char *buf, size_t len)
{
	if (b == BUILTIN_TIME) {
		uint32_t t = htonl((uint32_t)builtin_rfc868_now());

		memcpy(buf, &t, sizeof(t));
		return sizeof(t);
	}
	return builtin_daytime(buf, len);
}

void
builtin_stream_now(enum builtin b, int fd)
{
	char buf[128];
	size_t n = immediate_answer(b, buf, sizeof(buf));

	/* A fresh socket's send buffer holds a few bytes; never wait on a client. */
	(void)!send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int
builtin_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void
builtin_stream_child(enum builtin b, int fd)
{
	char buf[16384];
	ssize_t r;

	if (b == BUILTIN_CHARGEN) {
		/* One full cycle of 95 lines, sent over and over until the client goes. */
		char cycle[CHARGEN_CHARS * 74];

		for (unsigned i = 0; i < CHARGEN_CHARS; i++)
			builtin_chargen_line(i, cycle + i * 74);
		shutdown(fd, SHUT_RD);
		while (builtin_send_all(fd, cycle, sizeof(cycle)) == 0)
			;
		return;
	}
	for (;;) {
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		if (b == BUILTIN_ECHO && builtin_send_all(fd, buf, (size_t)r) < 0)
			return;
	}
}

/*
 * Never answer a datagram from a privileged source port: that is how a forged
 * source turns echo or chargen into a reflector against another UDP service.
 */
static int
reflector_risk(const struct sockaddr_storage *ss)
{
	const struct sockaddr *sa = (const struct sockaddr *)ss;

	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port) < 1024;
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port) < 1024;
	return 1;
}

int
builtin_dgram(enum builtin b, int fd, int (*admit)(void *ctx, const struct sockaddr *from),
    void *ctx)
{
	int answered = 0;
	static unsigned chargen_seed;
	/* The largest datagram, so that echo gives back all it got (RFC 862). */
	static char in[65536];
	char out[512];
	int n;

	if (chargen_seed == 0)
		chargen_seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16) ^ 1u;

	for (n = 0; n < DGRAM_BURST; n++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		size_t len = 0;
		ssize_t r;

		r = recvfrom(fd, in, sizeof(in), MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
		if (r < 0)
			break;
		if (reflector_risk(&from) || !admit(ctx, (struct sockaddr *)&from))
			continue;
		answered++;
		if (b == BUILTIN_DISCARD)
			continue;
		switch (b) {
		case BUILTIN_ECHO:
			sendto(fd, in, (size_t)r, MSG_DONTWAIT, (struct sockaddr *)&from, fromlen);
			continue;
		case BUILTIN_CHARGEN: {
			/* RFC 864: a datagram of 0 to 512 characters of the pattern. */
			unsigned start;

			chargen_seed = chargen_seed * 1103515245u + 12345u;
			len = (chargen_seed >> 16) % 513;
			start = chargen_seed % CHARGEN_CHARS;
			for (size_t i = 0; i < len; i += 74) {
				char line[74];

				builtin_chargen_line(start++, line);
				memcpy(out + i, line, len - i < 74 ? len - i : 74);
			}
			break;
		}
		default:
			len = immediate_answer(b, out, sizeof(out));
			break;
		}
		sendto(fd, out, len, MSG_DONTWAIT, (struct sockaddr *)&from, fromlen);
	}
	return answered;
}
