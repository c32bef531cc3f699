/* xinetd_diag: errors and notes of porterd-xinetd; see xinetd_diag.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xinetd_diag.h"
#include "xinetd_emit.h"

void
diag_error(struct conv *cv, const struct where *at, const char *fmt, ...)
{
	char msg[1024], line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at != NULL && at->line > 0)
		snprintf(line, sizeof(line), "%s:%d: %s\n", at->file, at->line, msg);
	else if (at != NULL)
		snprintf(line, sizeof(line), "%s: %s\n", at->file, msg);
	else
		snprintf(line, sizeof(line), "porterd-xinetd: %s\n", msg);
	/* A value of the defaults is checked in every service it is written into. */
	if (cv->errors.s != NULL && strstr(cv->errors.s, line) != NULL)
		return;
	buf_add(&cv->errors, "%s", line);
	cv->nerrors++;
}

void
diag_info(struct conv *cv, const struct where *at, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at->line > 0)
		buf_add(&cv->notes, "%s:%d: %s\n", at->file, at->line, msg);
	else
		buf_add(&cv->notes, "%s: %s\n", at->file, msg);
}

void
diag_not_carried(struct conv *cv, struct buf *out, const struct where *at, const char *svc,
    const char *what, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	emit_commentf(out, "not carried over: %s (%s:%d): %s", what, at->file, at->line, why);
	if (svc != NULL)
		diag_info(cv, at, "service %s: %s not carried over: %s", svc, what, why);
	else
		diag_info(cv, at, "defaults: %s not carried over: %s", what, why);
	cv->nnotes++;
}
