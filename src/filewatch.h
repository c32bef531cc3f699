/*
 * filewatch: learn that a file was rewritten or replaced, so that porterd
 * reloads the -i inetd.conf by itself when update-inetd (or an editor) has
 * written it: update-inetd signals only a process named inetd.
 */
#ifndef PORTERD_FILEWATCH_H
#define PORTERD_FILEWATCH_H

/*
 * Watch `path` (its directory, so that a rename over it is seen too). Returns
 * an fd to poll for POLLIN, or -1 with errno. close() it when done.
 */
int filewatch_open(const char *path);
/* Drain the fd; 1 if one of the events was a complete write or a rename onto path. */
int filewatch_changed(int fd, const char *path);

#endif
