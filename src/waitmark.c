#include <errno.h>

#include "hash.h"
#include "waitmark.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A unix listener's mark: the connection at the head of its queue, tagged. */
#define UNIX_MARK (1ULL << 63)

/*
 * Which connection waits first in a listening unix socket's queue, which
 * TCP_INFO does not tell: from the kernel's socket diagnostics (unix_diag,
 * by the socket's inode), as the inode of that connection's socket. Better
 * than a length: a handler that took the head while another client came is
 * told apart from one that took nothing. 0 when they cannot tell.
 */
static uint64_t
unix_head(int fd)
{
	struct {
		struct nlmsghdr		nlh;
		struct unix_diag_req	req;
	} ask;
	/* Room for a whole queue's inodes (SOMAXCONN of them, and more). */
	static union {
		struct nlmsghdr	nlh;
		char		buf[32768];
	} got;
	struct stat st;
	uint64_t head = 0;
	ssize_t n;
	int nl;

	if (fstat(fd, &st) < 0 ||
	    (nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return 0;
	memset(&ask, 0, sizeof(ask));
	ask.nlh.nlmsg_len = sizeof(ask);
	ask.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	ask.nlh.nlmsg_flags = NLM_F_REQUEST;
	ask.req.sdiag_family = AF_UNIX;
	ask.req.udiag_states = ~0U;
	ask.req.udiag_ino = (unsigned)st.st_ino;
	ask.req.udiag_show = UDIAG_SHOW_ICONS;
	ask.req.udiag_cookie[0] = ask.req.udiag_cookie[1] = ~0U;	/* none */
	if (send(nl, &ask, sizeof(ask), 0) == (ssize_t)sizeof(ask) &&
	    (n = recv(nl, &got, sizeof(got), 0)) > 0 && NLMSG_OK(&got.nlh, (size_t)n) &&
	    got.nlh.nlmsg_type == SOCK_DIAG_BY_FAMILY) {
		struct unix_diag_msg *m = NLMSG_DATA(&got.nlh);
		int left = (int)got.nlh.nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));

		for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, left);
		    a = RTA_NEXT(a, left))
			if (a->rta_type == UNIX_DIAG_ICONS && RTA_PAYLOAD(a) >= 4)
				head = UNIX_MARK | *(uint32_t *)RTA_DATA(a);
	}
	close(nl);
	return head;
}

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
			return errno == EOPNOTSUPP ? unix_head(fd) : 0;
		return ti.tcpi_unacked;
	}
}

int
waitmark_untaken(uint64_t before, uint64_t now, int socktype)
{
	if (before == 0 || now == 0)
		return 0;
	if (socktype == SOCK_DGRAM || (before & UNIX_MARK))
		return now == before;
	return now >= before;
}
