/*
 * hold: the handler of the hold phase (bench/run.sh, "Held connections").
 * It writes "hello\n" to fd 1, like bench/handler.c, then holds the
 * connection: it reads fd 0 until EOF or an error (the client's close or
 * reset), and exits. Built static, so that each of 10,000 of them costs
 * little more than its page tables and stack.
 */
#include <unistd.h>

int
main(void)
{
	static const char line[] = "hello\n";
	char buf[256];

	if (write(1, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1)
		return 1;
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}
