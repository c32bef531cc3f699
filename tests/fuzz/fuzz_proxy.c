/*
 * libFuzzer target for the PROXY protocol header parser (src/proxy.c), the
 * first thing porterd reads from a client of a proxy = service. Any input
 * must give MORE, BAD with a reason, or DONE with a header length within the
 * input; a DONE header must parse the same from exactly its own bytes, and
 * every shorter prefix of it must be MORE (a header split over segments).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int versions[] = { PROXY_V1, PROXY_V2, PROXY_ANY };

	for (size_t v = 0; v < 3; v++) {
		struct proxy_header h, again;
		const char *why = NULL;
		enum proxy_result r = proxy_parse(data, size, versions[v], &h, &why);

		if (r == PROXY_BAD && why == NULL)
			abort();
		if (r != PROXY_DONE)
			continue;
		if (h.length == 0 || h.length > size || h.length > PROXY_MAX)
			abort();
		if (proxy_parse(data, h.length, versions[v], &again, &why) != PROXY_DONE ||
		    again.length != h.length || again.local != h.local ||
		    (!h.local && (memcmp(&again.src, &h.src, sizeof(h.src)) != 0 ||
		    memcmp(&again.dst, &h.dst, sizeof(h.dst)) != 0)))
			abort();
		for (size_t i = 0; i < h.length; i++)
			if (proxy_parse(data, i, versions[v], &again, &why) != PROXY_MORE)
				abort();
	}
	return 0;
}
