/*
 * report: what porterd is doing, as text. The status table (builtin = status,
 * SIGUSR1) and the Prometheus text exposition (builtin = metrics).
 */
#ifndef PORTERD_REPORT_H
#define PORTERD_REPORT_H

#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "table.h"

struct daemon_stats {
	pid_t		 pid;		/* the daemon's: reports are written by its children */
	time_t		 started;	/* wall clock, for start_time_seconds */
	long long	 started_ms;	/* monotonic, for uptimes */
	unsigned long	 reloads_ok, reloads_failed;
	unsigned long	 generation;	/* successful loads, the first included */
	time_t		 last_reload;	/* 0: none yet */
	int		 last_reload_ok;
};

extern struct daemon_stats daemon_stats;
/* The table served; the loop keeps it current. */
extern const struct table *report_table;

/* The status table: a line for the daemon, then a line per service. */
void report_status(FILE *out);
/* The Prometheus text format, version 0.0.4. */
void report_metrics(FILE *out);
/*
 * Body of a child of porterd answering on fd: status writes at once; metrics
 * reads an HTTP request first and answers GET /metrics.
 */
void report_serve(enum builtin b, int fd);

#endif
