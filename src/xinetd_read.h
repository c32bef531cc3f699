/*
 * xinetd_read: xinetd's configuration syntax into entries. A file is read
 * whole, with what it includes (include, includedir), into cv->svc and
 * cv->defaults; each mistake becomes an error with its FILE:LINE, and reading
 * goes on so that all of them are reported at once.
 */
#ifndef PORTERD_XINETD_READ_H
#define PORTERD_XINETD_READ_H

#include "xinetd_conv.h"

/* 0, or -1 with errno when path itself cannot be opened (what it includes may not). */
int read_config(struct conv *cv, const char *path);
/* The attribute's name as xinetd spells it. */
const char *read_attr_name(enum attr id);

#endif
