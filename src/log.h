/* log: messages to stderr (foreground) or syslog (daemon). */
#ifndef PORTERD_LOG_H
#define PORTERD_LOG_H

#include <syslog.h>

void log_open(int to_stderr, int verbose);
/* Nonzero when -v asked for per-connection messages. */
int log_verbose(void);
void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_verbose()) log_msg(LOG_INFO, __VA_ARGS__); } while (0)

/*
 * A message that may repeat at flood rate (refusals, EMFILE, fork failures):
 * logged at most once per LOG_LIMIT_MS, with the count of those suppressed.
 */
#define LOG_LIMIT_MS 10000
struct log_limit {
	long long	 next_ms;	/* CLOCK_MONOTONIC ms before which we stay quiet */
	unsigned long	 suppressed;
};
void log_limited(struct log_limit *ll, int prio, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
long long log_now_ms(void);

#endif
