/*
 * ratelimit: token buckets, and the table of client sources (address prefixes)
 * that per-source limits count in. The table has a fixed size, so that a flood
 * from many addresses cannot grow porterd's memory: a new source takes the slot
 * of the least recently seen idle one near it.
 */
#ifndef PORTERD_RATELIMIT_H
#define PORTERD_RATELIMIT_H

#include <stdint.h>

#include "acl.h"

/* N connections per SECONDS; n == 0: no limit. */
struct rate {
	unsigned	 n;
	unsigned	 secs;
};

struct bucket {
	double		 tokens;
	long long	 last_ms;	/* 0: never used, starts full */
};

/* Parse "N/SECONDS". 0, or -1 with *error set. */
int rate_parse(const char *s, struct rate *r, const char **error);
/* Take a token at now_ms: 1 if the connection may go on, 0 if over the rate. */
int rate_take(struct bucket *b, const struct rate *r, long long now_ms);
/* Give back a token taken for a connection that a later check refused. */
void rate_refund(struct bucket *b, const struct rate *r);

#define SOURCES_MAX 65536	/* entries in the whole table */
#define SOURCES_WAYS 8		/* slots a source may live in */

struct source {
	uint64_t	 svc;		/* the service's id; 0: free slot */
	struct srckey	 key;
	unsigned	 active;	/* handlers alive from this source */
	struct bucket	 bucket;	/* source_rate */
	long long	 seen_ms;
};

/*
 * The entry of (svc, key), made if need be. NULL only when every slot it could
 * take holds a source with handlers alive (then nothing can be counted for it).
 */
struct source *sources_get(uint64_t svc, const struct srckey *key, long long now_ms);
/* The entry, if it is in the table; never makes one. */
struct source *sources_find(uint64_t svc, const struct srckey *key);
/* Entries in use (for tests and the status). */
unsigned sources_count(void);
void sources_clear(void);

#endif
