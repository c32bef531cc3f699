/*
 * xinetd_diag: what porterd-xinetd tells on stderr. Errors are collected,
 * not printed, so that all of them come out together and nothing is written
 * when there is one; notes are printed only when the conversion succeeds.
 */
#ifndef PORTERD_XINETD_DIAG_H
#define PORTERD_XINETD_DIAG_H

#include "xinetd_conv.h"

/* "FILE:LINE: message" into cv->errors, once: the same error again is dropped. */
void diag_error(struct conv *cv, const struct where *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "FILE:LINE: message" into cv->notes. */
void diag_info(struct conv *cv, const struct where *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Something of the input that the output does not do: a comment into out,
 * where the service is written, and the same as a note. svc NULL: the defaults.
 */
void diag_not_carried(struct conv *cv, struct buf *out, const struct where *at, const char *svc,
    const char *what, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
