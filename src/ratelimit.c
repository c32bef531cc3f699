#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

int
rate_parse(const char *s, struct rate *r, const char **error)
{
	unsigned long n, secs;
	char *end;

	if (!isdigit((unsigned char)*s))
		return *error = "expected N/SECONDS, such as 10/1 or 100/60", -1;
	n = strtoul(s, &end, 10);
	if (*end != '/' || !isdigit((unsigned char)end[1]))
		return *error = "expected N/SECONDS, such as 10/1 or 100/60", -1;
	secs = strtoul(end + 1, &end, 10);
	if (*end != '\0' || n == 0 || n > 1000000 || secs == 0 || secs > 86400)
		return *error = "N must be 1 to 1000000 and SECONDS 1 to 86400", -1;
	r->n = (unsigned)n;
	r->secs = (unsigned)secs;
	return 0;
}

int
rate_take(struct bucket *b, const struct rate *r, long long now_ms)
{
	if (r->n == 0)
		return 1;
	if (b->last_ms == 0) {
		b->tokens = r->n;
	} else if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * r->n / (r->secs * 1000.0);
		if (b->tokens > r->n)
			b->tokens = r->n;
	}
	b->last_ms = now_ms > 0 ? now_ms : 1;
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

void
rate_refund(struct bucket *b, const struct rate *r)
{
	if (r->n != 0 && (b->tokens += 1.0) > r->n)
		b->tokens = r->n;
}

static struct source *table;
static unsigned used;

static uint32_t
hash_of(uint64_t svc, const struct srckey *key)
{
	/* FNV-1a over the service id and the key: cheap, and fine for a table we size. */
	uint32_t h = 2166136261u;
	const uint8_t *p = key->addr;

	for (int i = 0; i < 8; i++)
		h = (h ^ (uint8_t)(svc >> (8 * i))) * 16777619u;
	h = (h ^ key->family) * 16777619u;
	for (int i = 0; i < 16; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static int
same(const struct source *e, uint64_t svc, const struct srckey *key)
{
	return e->svc == svc && e->key.family == key->family &&
	    memcmp(e->key.addr, key->addr, sizeof(key->addr)) == 0;
}

struct source *
sources_find(uint64_t svc, const struct srckey *key)
{
	uint32_t base;

	if (table == NULL)
		return NULL;
	base = hash_of(svc, key) & (SOURCES_MAX - 1) & ~(uint32_t)(SOURCES_WAYS - 1);
	for (uint32_t i = 0; i < SOURCES_WAYS; i++)
		if (same(&table[base + i], svc, key))
			return &table[base + i];
	return NULL;
}

struct source *
sources_get(uint64_t svc, const struct srckey *key, long long now_ms)
{
	struct source *e, *victim = NULL;
	uint32_t base;

	if (table == NULL && (table = calloc(SOURCES_MAX, sizeof(*table))) == NULL)
		return NULL;
	if ((e = sources_find(svc, key)) != NULL) {
		e->seen_ms = now_ms;
		return e;
	}
	base = hash_of(svc, key) & (SOURCES_MAX - 1) & ~(uint32_t)(SOURCES_WAYS - 1);
	for (uint32_t i = 0; i < SOURCES_WAYS; i++) {
		e = &table[base + i];
		if (e->svc == 0) {
			victim = e;
			used++;
			break;
		}
		/* Never evict a source with handlers alive: its count must stay right. */
		if (e->active == 0 && (victim == NULL || e->seen_ms < victim->seen_ms))
			victim = e;
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->svc = svc;
	victim->key = *key;
	victim->seen_ms = now_ms;
	return victim;
}

unsigned
sources_count(void)
{
	return used;
}

void
sources_clear(void)
{
	free(table);
	table = NULL;
	used = 0;
}
