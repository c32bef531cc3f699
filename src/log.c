#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_to_stderr = 1;
static int log_level_verbose;
static int log_to_journal;	/* stderr is the journal's: "<N>" gives each line its priority */

/* systemd names the stream it connects to stderr in JOURNAL_STREAM (device:inode). */
static int
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_open(int to_stderr, int verbose)
{
	log_to_stderr = to_stderr;
	log_level_verbose = verbose;
	log_to_journal = to_stderr && stderr_is_journal();
	if (!to_stderr)
		openlog("porterd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

int
log_verbose(void)
{
	return log_level_verbose;
}

void
log_msg(int prio, const char *fmt, ...)
{
	/* Callers pass strerror(errno) in the arguments; keep errno intact for them. */
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	if (log_to_stderr) {
		char line[2048];
		int n;

		/* One write per message so lines from several processes never interleave. */
		if (log_to_journal)
			n = snprintf(line, sizeof(line), "<%d>porterd[%ld]: ", LOG_PRI(prio),
			    (long)getpid());
		else
			n = snprintf(line, sizeof(line), "porterd[%ld]: ", (long)getpid());
		if (n < 0)
			n = 0;
		vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
		n = (int)strlen(line);
		line[n++] = '\n';
		(void)!write(STDERR_FILENO, line, (size_t)n);
	} else {
		vsyslog(prio, fmt, ap);
	}
	va_end(ap);
	errno = saved;
}

long long
log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
log_limited(struct log_limit *ll, int prio, const char *fmt, ...)
{
	long long now = log_now_ms();
	char msg[1024];
	va_list ap;

	if (now < ll->next_ms) {
		ll->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (ll->suppressed > 0)
		log_msg(prio, "%s (and %lu more like it in the last %d s)", msg,
		    ll->suppressed, LOG_LIMIT_MS / 1000);
	else
		log_msg(prio, "%s", msg);
	ll->suppressed = 0;
	ll->next_ms = now + LOG_LIMIT_MS;
}
