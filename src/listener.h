/* listener: one listening (or datagram) socket and its identity. */
#ifndef PORTERD_LISTENER_H
#define PORTERD_LISTENER_H

#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "config.h"

struct listener {
	int		 refs;
	int		 fd;		/* -1 once closed */
	int		 socktype;
	struct addr	 addr;
	pid_t		 wait_pid;	/* wait = yes: the handler holding it, else 0 */
	uint64_t	 wait_mark;	/* what woke that handler (waitmark.h) */
	unsigned	 wait_spins;	/* handlers in a row that left it untaken */
	long long	 paused_until;	/* back-off after EMFILE or a failed fork (monotonic ms) */
	int		 reuseport;	/* as opened: changing it needs a new socket */
	int		 adopted;	/* passed by systemd (LISTEN_FDS), not opened here */
	int		 blocking;	/* as porterd last set it: a wait service's socket */
	int		 backlog;	/* as last given to listen() */
	struct {			/* a unix socket file's, as last applied */
		int	 applied, owner;
		uid_t	 uid;
		gid_t	 gid;
		mode_t	 mode;
	}		 perms;
	unsigned	 in_use;	/* table_retire's mark: the next table uses it */
	int		 watched;	/* in the loop's epoll set (see watch.h) */
	size_t		 watch_idx;	/* its slot in the running table, while watched */
};

/*
 * systemd socket activation: take the sockets passed by $LISTEN_FDS (when
 * $LISTEN_PID is ours) and their $LISTEN_FDNAMES, and unset those variables.
 * Returns how many.
 */
int listener_inherit(void);
/* Close (and log) the inherited sockets no service took: their clients must not hang. */
void listener_inherit_unused(void);

/*
 * Open, bind and listen for service s; or adopt an inherited socket named
 * after s, or else bound to the address s wants. Returns the listener, or NULL with a
 * message "listen ADDRESS: what failed: why" in err.
 */
struct listener *listener_open(const struct service *s, char *err, size_t errlen);
/* Same socket identity as s wants (protocol, family, address, port or path). */
int listener_matches(const struct listener *l, const struct service *s);
/* Take on the settings of s that need no new socket: backlog, blocking mode, unix owner and mode. */
int listener_update(struct listener *l, const struct service *s, char *err, size_t errlen);
/* Close the socket (and remove a unix socket's file); the struct lives while referenced. */
void listener_close(struct listener *l);
struct listener *listener_ref(struct listener *l);
void listener_unref(struct listener *l);

#endif
