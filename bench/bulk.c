/*
 * bulk: the handler of the TLS phase's transfer (bench/run.sh, bench/README
 * "TLS"). It writes BYTES zero bytes (default 100 MiB) to fd 1 in 64 KiB
 * writes from one static buffer and exits. Static, and about as cheap as a
 * writer can be, so that the contenders differ only in what carries the
 * bytes: every contender runs this same program.
 */
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	static const char zero[65536];
	unsigned long long left = argc > 1 ? strtoull(argv[1], NULL, 10) : 100ULL << 20;

	while (left > 0) {
		size_t k = left < sizeof(zero) ? (size_t)left : sizeof(zero);
		ssize_t w = write(1, zero, k);

		if (w <= 0)
			return 1;
		left -= (unsigned long long)w;
	}
	return 0;
}
