/*
 * handler: the benchmark's handler. One line on fd 1, then exit: everything
 * measured is the server's cost of starting and reaping it. Built static and
 * dynamic (the dynamic one adds the loader's work to every connection).
 */
#include <unistd.h>

int
main(void)
{
	static const char line[] = "hello\n";

	return write(1, line, sizeof(line) - 1) == (ssize_t)sizeof(line) - 1 ? 0 : 1;
}
