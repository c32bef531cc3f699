/*
 * hash: FNV-1a, unkeyed: for the open hashes whose keys come from the
 * configuration (sections and services by name, sockets by address) and for
 * fingerprints; not for tables whose keys a client chooses.
 */
#ifndef PORTERD_HASH_H
#define PORTERD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_INIT 14695981039346656037ULL

static inline uint64_t
hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ULL;
	return h;
}

static inline uint64_t
hash_string(const char *s)
{
	uint64_t h = HASH_INIT;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

#endif
