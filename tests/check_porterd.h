/* Suites of the unit test runner, and helpers they share. */
#ifndef CHECK_PORTERD_H
#define CHECK_PORTERD_H

#include <check.h>

Suite *args_suite(void);
Suite *addr_suite(void);
Suite *config_suite(void);
Suite *table_suite(void);
Suite *builtins_suite(void);
Suite *proxy_suite(void);
Suite *watch_suite(void);
Suite *ratelimit_suite(void);
Suite *cgroup_suite(void);
Suite *children_suite(void);
Suite *relay_suite(void);

/* A fresh directory under $TMPDIR; removed with its files by tmpdir_remove. */
char *tmpdir_make(void);
void tmpdir_remove(char *dir);
/* Write `text` to dir/name. */
void write_file(const char *dir, const char *name, const char *text);
/* Directory of the test fixtures (tests/data in the source tree). */
const char *data_dir(void);
/* A TCP port on 127.0.0.1 that nothing listens on right now. */
unsigned free_port(int socktype);

#endif
