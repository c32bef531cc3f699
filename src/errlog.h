/*
 * errlog: handlers' stderr collected into porterd's log (stderr = log). Each
 * handler's fd 2 is the write end of a pipe whose read end porterd polls; lines
 * are logged as "service[pid]: text", the last one even without a newline.
 */
#ifndef PORTERD_ERRLOG_H
#define PORTERD_ERRLOG_H

#include <poll.h>
#include <sys/types.h>

#include "table.h"

/* Lines longer than this are logged in pieces. */
#define ERRLOG_LINE_MAX 1024

/* Start collecting from fd (the read end) for pid of st; takes fd. 0 or -1. */
int errlog_add(int fd, pid_t pid, struct svc_state *st);
/* Append a pollfd per open pipe to pfd (room for errlog_count()); returns how many. */
size_t errlog_pollfds(struct pollfd *pfd);
/* Read what the pipes polled in pfd[0..n) have; log complete lines; close at EOF. */
void errlog_service(const struct pollfd *pfd, size_t n);
size_t errlog_count(void);
/*
 * pid was reaped: log what its pipe holds now (at most a few reads), so that
 * its last words come before its exit even when its pipe was not polled yet.
 */
void errlog_drain(pid_t pid);
/* Log what is left and close every pipe (at exit). */
void errlog_flush_all(void);

#endif
