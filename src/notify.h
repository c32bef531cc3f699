/*
 * notify: the sd_notify protocol, spoken directly (a datagram to the unix
 * socket named by $NOTIFY_SOCKET), so that Type=notify units work without
 * libsystemd. Does nothing when $NOTIFY_SOCKET is not set.
 */
#ifndef PORTERD_NOTIFY_H
#define PORTERD_NOTIFY_H

/* Read and unset $NOTIFY_SOCKET (handlers must not see it). */
void notify_init(void);
/* Send "STATE\n..." as is, e.g. "READY=1". 0, or -1 with errno. */
int notify_send(const char *state);

#endif
