/*
 * proxy: the PROXY protocol header (HAProxy's, versions 1 and 2) that a load
 * balancer puts before the client's bytes, telling who the client really is.
 */
#ifndef PORTERD_PROXY_H
#define PORTERD_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1 1
#define PROXY_V2 2
#define PROXY_ANY (PROXY_V1 | PROXY_V2)

/* A v1 line is at most 107 bytes; v2 carries TLVs, which we allow this many of. */
#define PROXY_V1_MAX 107
#define PROXY_V2_MAX (16 + 1024)
#define PROXY_MAX PROXY_V2_MAX

struct proxy_header {
	int			 local;		/* LOCAL or UNKNOWN: the connection is its own */
	struct sockaddr_storage	 src, dst;	/* the client, and what it reached */
	socklen_t		 srclen, dstlen;
	size_t			 length;	/* bytes the header takes */
};

enum proxy_result {
	PROXY_BAD = -1,		/* not a header of an allowed version; *why says why */
	PROXY_MORE = 0,		/* fine so far; more bytes are needed */
	PROXY_DONE = 1,		/* *h filled in */
};

/* Look at the first len bytes of a connection. versions: PROXY_V1 and/or PROXY_V2. */
enum proxy_result proxy_parse(const unsigned char *buf, size_t len, int versions,
    struct proxy_header *h, const char **why);

#endif
