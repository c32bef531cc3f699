#include "hash.h"
#include "waitmark.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

uint64_t
waitmark_take(int fd, int socktype)
{
	if (socktype == SOCK_DGRAM) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		char head[256];
		ssize_t n;
		uint64_t h;

		memset(&from, 0, sizeof(from));
		/* MSG_TRUNC: the datagram's whole length, whatever fits in head. */
		n = recvfrom(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC,
		    (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			return 0;
		h = hash_bytes(HASH_INIT, &from, fromlen);
		h = hash_bytes(h, &n, sizeof(n));
		h = hash_bytes(h, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head));
		return h | 1;	/* never 0, even an empty datagram */
	} else {
		struct tcp_info ti;
		socklen_t len = sizeof(ti);

		/* On a listening socket, tcpi_unacked is the accept queue's length. */
		if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
			return 0;
		return ti.tcpi_unacked;
	}
}

int
waitmark_untaken(uint64_t before, uint64_t now, int socktype)
{
	if (before == 0 || now == 0)
		return 0;
	return socktype == SOCK_DGRAM ? now == before : now >= before;
}
