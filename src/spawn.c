#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "addr.h"
#include "relay.h"
#include "spawn.h"
#include "startwatch.h"

static int daemon_sigs[16];
static int ndaemon_sigs;

void
spawn_set_daemon_signals(const int *sigs, int n)
{
	ndaemon_sigs = n < 16 ? n : 16;
	memcpy(daemon_sigs, sigs, (size_t)ndaemon_sigs * sizeof(int));
}

/* The per-connection variables of the loop's own (synchronous) starts. */
static struct spawn_env loop_env;
/* Opened by the parent: a vfork child must not open what the parent won't have. */
static int devnull_fd = -1;

/*
 * The per-connection variables into e, pointed to from envp[s->envp_base] on
 * (envp[0..envp_base) are the service's own). Thread-safe: only e and envp
 * are written.
 */
static void
fill_env(const struct service *s, const struct conn *c, char **envp_all, struct spawn_env *e)
{
	char (*connvar)[sizeof(e->var[0])] = e->var;
	char **envp = envp_all + s->envp_base;
	size_t n = 0;

	if (s->listen.family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)&s->listen.ss;

		snprintf(connvar[n++], sizeof(*connvar), "PROTO=IPC");
		snprintf(connvar[n++], sizeof(*connvar), "IPCLOCALPATH=%s", sun->sun_path);
		if (c->peerlen != 0) {
			struct ucred cred;
			socklen_t len = sizeof(cred);

			if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
				snprintf(connvar[n++], sizeof(*connvar), "IPCREMOTEEUID=%u",
				    (unsigned)cred.uid);
				snprintf(connvar[n++], sizeof(*connvar), "IPCREMOTEEGID=%u",
				    (unsigned)cred.gid);
			}
		}
	} else {
		struct sockaddr_storage local;
		socklen_t len = sizeof(local);
		char ip[ADDR_IP_MAX];
		unsigned port;

		snprintf(connvar[n++], sizeof(*connvar), "PROTO=%s",
		    s->socktype == SOCK_DGRAM ? "UDP" : "TCP");
		if (c->peerlen != 0 && addr_ntop((const struct sockaddr *)&c->peer, ip,
		    sizeof(ip), &port) == 0) {
			snprintf(connvar[n++], sizeof(*connvar), "TCPREMOTEIP=%s", ip);
			snprintf(connvar[n++], sizeof(*connvar), "TCPREMOTEPORT=%u", port);
		}
		/* Known (a specific listen address, a PROXY header), or ask the socket. */
		if (c->locallen != 0) {
			local = c->local;
			len = c->locallen;
		}
		if ((c->locallen != 0 || getsockname(c->fd, (struct sockaddr *)&local, &len) == 0) &&
		    addr_ntop((const struct sockaddr *)&local, ip, sizeof(ip), &port) == 0) {
			snprintf(connvar[n++], sizeof(*connvar), "TCPLOCALIP=%s", ip);
			snprintf(connvar[n++], sizeof(*connvar), "TCPLOCALPORT=%u", port);
		}
	}
	if (s->fds_systemd) {
		snprintf(connvar[n++], sizeof(*connvar), "LISTEN_FDS=1");
		snprintf(connvar[n++], sizeof(*connvar), "LISTEN_FDNAMES=%s", s->name);
		/* The child writes its own pid over the zeros (see set_listen_pid). */
		e->listen_pid = connvar[n];
		snprintf(connvar[n++], sizeof(*connvar), "LISTEN_PID=0000000000");
	}
	for (size_t i = 0; i < n; i++)
		envp[i] = connvar[i];
	for (size_t i = 0; c->tls_env != NULL && c->tls_env[i] != NULL &&
	    n < CONFIG_ENV_SLOTS; i++)
		envp[n++] = c->tls_env[i];
	envp[n] = NULL;
}

/* In the child: LISTEN_PID=<its pid>, with no library call that may allocate. */
static void
set_listen_pid(char *var)
{
	char digits[16], *p = var + strlen("LISTEN_PID=");
	unsigned long pid = (unsigned long)getpid();
	int n = 0;

	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) != 0);
	while (n > 0)
		*p++ = digits[--n];
	*p = '\0';
}

/* The descriptor limit handlers get back (spawn_set_nofile). */
static struct rlimit handler_nofile;
static int handler_nofile_set;

/* What a child reports through the error pipe when it cannot exec. */
struct child_error {
	int		 step;
	int		 err;
};

static const char *const step_names[] = {
	"unshare", "cgroup", "setsid", "dup2", "setrlimit", "setpriority", "chroot", "setgroups",
	"setgid", "setuid", "no_new_privs", "exec",
};

enum {
	STEP_UNSHARE, STEP_CGROUP, STEP_SETSID, STEP_DUP2, STEP_RLIMIT, STEP_NICE, STEP_CHROOT,
	STEP_SETGROUPS, STEP_SETGID, STEP_SETUID, STEP_NO_NEW_PRIVS, STEP_EXEC
};

int
spawn_join_cgroup(int cgfd)
{
	int fd = openat(cgfd, "cgroup.procs", O_WRONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -1;
	if (write(fd, "0", 1) != 1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return close(fd);
}

void
spawn_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int i = 0; i < ndaemon_sigs; i++)
		sigaction(daemon_sigs[i], &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* What needs privileges, after the fds: nice, umask, chroot, the ids, no_new_privs. */
static int
sandbox(const struct service *s)
{
	if (s->set_nice && setpriority(PRIO_PROCESS, 0, s->nice) < 0)
		return STEP_NICE;
	if (s->umask >= 0)
		umask((mode_t)s->umask);
	if (s->chroot != NULL && (chroot(s->chroot) < 0 || chdir("/") < 0))
		return STEP_CHROOT;
	/*
	 * Not root: config_load made sure the ids asked for are porterd's own. The
	 * system calls themselves: glibc's wrappers would try to change the ids of
	 * every thread of a process this child shares memory with.
	 */
	/*
	 * Capabilities porterd was given to keep across its own uid (systemd's
	 * AmbientCapabilities= with User=) are not the handler's. EINVAL: a kernel
	 * without them.
	 */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if ((s->set_user || s->set_group) && geteuid() == 0) {
		if (syscall(SYS_setgroups, (size_t)s->ngroups, s->groups) < 0)
			return STEP_SETGROUPS;
		if (syscall(SYS_setgid, s->gid) < 0)
			return STEP_SETGID;
		if (s->set_user && syscall(SYS_setuid, s->uid) < 0)
			return STEP_SETUID;
	}
	/* Last: no setuid program the handler runs can give back what was dropped. */
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 && errno != EINVAL)
		return STEP_NO_NEW_PRIVS;
	return -1;
}

int
spawn_sandbox(const struct service *s, const char **step)
{
	int r;

	if (setsid() < 0) {
		*step = step_names[STEP_SETSID];
		return -1;
	}
	if ((r = sandbox(s)) >= 0) {
		*step = step_names[r];
		return -1;
	}
	return 0;
}

/*
 * The child between fork and exec: only system calls, in the order that keeps
 * privileges for as long as they are needed and no longer. The handler of a
 * TLS relay (relayed) finds the session, the chroot and the ids made already:
 * it stays in its relay's process group, so that a timeout reaches both.
 */
static int
child_setup(const struct service *s, int fd, int errfd, int keep_fd, int relayed,
    char *listen_pid)
{
	spawn_reset_signals();
	if (!relayed && setsid() < 0)
		return STEP_SETSID;
	if (s->fds_systemd) {
		/*
		 * systemd's layout: the socket on fd 3, nothing on 0 and 1. Move it
		 * there first, and out of the way whatever else sits on 3.
		 */
		int null = devnull_fd;

		if (errfd == 3 && (errfd = fcntl(3, F_DUPFD_CLOEXEC, 4)) < 0)
			return STEP_DUP2;
		if (null == 3 && (null = fcntl(3, F_DUPFD_CLOEXEC, 4)) < 0)
			return STEP_DUP2;
		if (fd != 3) {
			if (dup2(fd, 3) < 0)
				return STEP_DUP2;
			fd = 3;
		}
		if (dup2(null, 0) < 0 || dup2(null, 1) < 0 ||
		    dup2(errfd >= 0 ? errfd : null, 2) < 0)
			return STEP_DUP2;
		set_listen_pid(listen_pid);
	} else {
		for (int target = 0; target <= 2; target++)
			if (dup2(target == 2 && errfd >= 0 ? errfd : fd, target) < 0)
				return STEP_DUP2;
	}
	/*
	 * Everything else goes now, not at exec: a child stopped before its exec
	 * (by any process of its user, once it has its ids) would otherwise hold
	 * them, other clients' connections staged below slot_top among them.
	 * keep_fd: the pipe for the report of a failure (fork).
	 */
	{
		unsigned first = s->fds_systemd ? 4 : 3;
		int r = 0;

		if (keep_fd >= (int)first) {
			if (keep_fd > (int)first)
				r = close_range(first, (unsigned)keep_fd - 1, 0);
			if (r == 0)
				r = close_range((unsigned)keep_fd + 1, ~0U, 0);
		} else {
			r = close_range(first, ~0U, 0);
		}
		if (r < 0) {
			for (int i = (int)first; i < 65536; i++)
				if (i != keep_fd)
					(void)close(i);
		}
	}
	if (s->fds_systemd && fcntl(3, F_SETFD, 0) < 0)
		return STEP_DUP2;
	/*
	 * Limits while we still may raise them; chroot while we still may call it.
	 * Programs that close every descriptor up to the limit, or select(), expect
	 * the usual one, not the one porterd raised for itself.
	 */
	if (handler_nofile_set && !s->rlimit[CONFIG_RLIMIT_NOFILE].set &&
	    setrlimit(RLIMIT_NOFILE, &handler_nofile) < 0)
		return STEP_RLIMIT;
	/* A relay's handler: the limits are its own; lowering them needs no privilege. */
	for (int i = 0; i < 4; i++) {
		struct rlimit rl = { s->rlimit[i].value, s->rlimit[i].value };

		if (s->rlimit[i].set && setrlimit(config_rlimit_resource[i], &rl) < 0)
			return STEP_RLIMIT;
	}
	return relayed ? -1 : sandbox(s);
}

/* What the child needs, on the parent's stack (shared with a vfork child). */
struct child_args {
	const struct service	*s;
	char		* const *envp;
	char			*listen_pid;	/* fds = systemd: LISTEN_PID=, to complete */
	int			 relayed;	/* the handler of a TLS relay */
	int			 fd;		/* the connection */
	int			 errfd;		/* its fd 2, or -1 */
	int			 pipe_r, pipe_w;	/* exec error report, after fork */
	unsigned		 unshare_from;	/* >0: the fd table is porterd's; keep below this */
	int			 cgfd;		/* the handler's cgroup, or -1 */
	int			 join_cg;	/* no clone3: the child moves itself there */
	struct child_error	 report;	/* exec error report, after vfork */
};

/* PORTERD_TEST_STOP_BEFORE_EXEC: a service whose children stop before their exec. */
static const char *stop_before_exec;

/* The child from fork or vfork to exec: system calls only, no allocation. */
static int
child_main(void *arg)
{
	struct child_args *a = arg;
	struct child_error ce;

	/*
	 * No clone3: into its cgroup before anything of the handler's runs, so
	 * that nothing escapes it. First, while cgfd is still in the table (the
	 * fd it opens for this comes and goes while porterd waits for the child).
	 */
	if (a->join_cg && spawn_join_cgroup(a->cgfd) < 0) {
		ce.step = STEP_CGROUP;
		goto fail;
	}
	/*
	 * Sharing porterd's fd table: make a private one before touching any fd,
	 * holding only the fds below the staging slots' top (see stage_fds).
	 */
	if (a->unshare_from != 0 && close_range(a->unshare_from, ~0U, CLOSE_RANGE_UNSHARE) < 0 &&
	    syscall(SYS_unshare, CLONE_FILES) < 0) {
		a->report.step = STEP_UNSHARE;
		a->report.err = errno;
		_exit(127);
	}
	if (a->pipe_r >= 0)
		close(a->pipe_r);
	/* fds = systemd puts the socket on 3: the error pipe must not be there. */
	if (a->pipe_w == 3)
		a->pipe_w = fcntl(3, F_DUPFD_CLOEXEC, 4);
	ce.step = child_setup(a->s, a->fd, a->errfd, a->pipe_w, a->relayed, a->listen_pid);
	/* For the tests: the stop another process of the handler's user could send now. */
	if (ce.step < 0 && stop_before_exec != NULL && strcmp(a->s->name, stop_before_exec) == 0)
		(void)syscall(SYS_kill, (pid_t)syscall(SYS_getpid), SIGSTOP);
	if (ce.step < 0) {
		execve(a->s->exec, a->s->argv, a->envp);
		ce.step = STEP_EXEC;
	}
fail:
	ce.err = errno;
	/* After vfork the parent reads this once we are gone; after fork, the pipe. */
	if (a->pipe_w >= 0)
		(void)!write(a->pipe_w, &ce, sizeof(ce));
	else
		a->report = ce;
	_exit(127);
}

/*
 * vfork, and not fork: the parent's page tables are not copied and the parent
 * waits until the child has exec'd (or failed), which is what it does anyway.
 * The child runs on a stack of its own, so it cannot disturb the frames of the
 * parent it borrows memory from, and it reports a failure in that memory: no
 * pipe to open, read and close for every handler. Sanitizer runtimes do not
 * expect a second task in their address space: those builds fork.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
static int use_vfork = 0;
#else
static int use_vfork = 1;
#endif

#define CHILD_STACK_SIZE (64 * 1024)

/*
 * A fork child whose pid the kernel writes into the parent's memory before the
 * child runs (CLONE_PARENT_SETTID): the raw clone system call, whose argument
 * order is per architecture.
 */
#if defined(__x86_64__)
#define HAVE_FORK_SETTID 1
#else
#define HAVE_FORK_SETTID 0
#endif

/*
 * Staging slots: two fds held from the start, below every listener, on
 * /dev/null while idle. A vfork child would otherwise get a copy of porterd's
 * whole fd table, one reference per listener, and drop them all again at exec:
 * with 1000 services that was about 50 us of every handler start here.
 * Instead the connection and the handler's fd 2 are put in the slots, the
 * child starts on porterd's own table (CLONE_FILES), and its first act is
 * close_range(slot_top, ~0, CLOSE_RANGE_UNSHARE), which gives it a private
 * table holding only the fds below slot_top: stdio, /dev/null and the slots,
 * and the few opened before them (sockets from systemd, the -i file's watch),
 * which are close-on-exec like every other fd of porterd's.
 */
struct spawn_ctx {
	char	*stack;			/* the vfork child's */
	int	 slot_conn, slot_err;	/* -1: none, the child gets a copy of the table */
};
/* The loop's own; then one for each spawner thread (spawner.h). */
static struct spawn_ctx ctxs[1 + SPAWN_THREADS_MAX];
static int nctx = 1;

/*
 * clone3, for CLONE_INTO_CGROUP: the handler is in its cgroup from its first
 * instruction. 0: not tried yet, 1: works, -1: not here (before 5.7, or
 * valgrind), and the child moves itself into its cgroup before anything else.
 * Spawner threads learn it too: read and written atomically.
 */
static int have_clone3_;
static unsigned slot_top;	/* above every context's slots; 0: no slots at all */

static int
have_clone3(void)
{
	return __atomic_load_n(&have_clone3_, __ATOMIC_RELAXED);
}

void
spawn_set_nofile(const struct rlimit *rl)
{
	handler_nofile = *rl;
	handler_nofile_set = 1;
}

void
spawn_init(void)
{
	const char *how = getenv("PORTERD_SPAWN");

	if (how != NULL && strcmp(how, "fork") == 0)
		use_vfork = 0;
	/* For the tests: the path of kernels without clone3, where children join their cgroup. */
	if ((how = getenv("PORTERD_CLONE3")) != NULL && strcmp(how, "no") == 0)
		have_clone3_ = -1;
	for (int i = 0; i < 1 + SPAWN_THREADS_MAX; i++)
		ctxs[i].slot_conn = ctxs[i].slot_err = -1;
	if (use_vfork && (ctxs[0].stack = malloc(CHILD_STACK_SIZE)) == NULL)
		use_vfork = 0;
}

/* Where a handler's fd 2 goes with stderr = null, and 0 and 1 with fds = systemd. */
static int
devnull(void)
{
	if (devnull_fd < 0)
		devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	return devnull_fd;
}

/* Tells whether a vfork child writes the memory its parent reads. */
static int
probe_child(void *flag)
{
	*(volatile int *)flag = 1;
	_exit(0);
}

/*
 * A CLONE_VM child shares porterd's memory, or so the kernel says: valgrind
 * runs it as a fork, and then a failed exec would go unreported. Check once.
 */
static int
vfork_shares_memory(void)
{
	volatile int flag = 0;
	int status;
	pid_t pid;

	pid = clone(probe_child, ctxs[0].stack + CHILD_STACK_SIZE,
	    CLONE_VM | CLONE_VFORK | SIGCHLD, (void *)&flag);
	if (pid < 0)
		return 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return flag == 1;
}

/* Its slots on /dev/null, below the listeners; 0, or -1 (then it has none). */
static int
ctx_slots(struct spawn_ctx *x)
{
	int top;

	if ((x->slot_conn = fcntl(devnull_fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -1;
	if ((x->slot_err = fcntl(devnull_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		close(x->slot_conn);
		x->slot_conn = -1;
		return -1;
	}
	top = x->slot_conn > x->slot_err ? x->slot_conn : x->slot_err;
	if ((unsigned)top + 1 > slot_top)
		slot_top = (unsigned)top + 1;
	return 0;
}

int
spawn_prepare(int threads)
{
	stop_before_exec = getenv("PORTERD_TEST_STOP_BEFORE_EXEC");
	if (use_vfork && !vfork_shares_memory())
		use_vfork = 0;
	/* Spawner threads need the pid before their child can be reaped (spawner.c). */
	if (!use_vfork && !HAVE_FORK_SETTID)
		threads = 0;
	if (devnull() < 0)
		return 0;
	if ((unsigned)devnull_fd + 1 > slot_top)
		slot_top = (unsigned)devnull_fd + 1;
	if (use_vfork)
		(void)ctx_slots(&ctxs[0]);
	for (nctx = 1; nctx < 1 + threads && nctx < 1 + SPAWN_THREADS_MAX; nctx++) {
		struct spawn_ctx *x = &ctxs[nctx];

		if (use_vfork && (x->stack = malloc(CHILD_STACK_SIZE)) == NULL)
			break;
		if (use_vfork && ctx_slots(x) < 0) {
			free(x->stack);
			x->stack = NULL;
			break;
		}
	}
	return nctx - 1;
}

struct spawn_ctx *
spawn_ctx(int i)
{
	return i + 1 < nctx ? &ctxs[i + 1] : NULL;
}

/* Put the child's fds in x's slots (see slot_top); 0, or -1 to copy the table. */
static int
stage_fds(const struct spawn_ctx *x, struct child_args *a)
{
	/* A pipe for stderr = log sits above the slots; /dev/null is below. */
	int move_err = a->errfd >= 0 && (unsigned)a->errfd >= slot_top;

	if (x->slot_conn < 0 || dup3(a->fd, x->slot_conn, O_CLOEXEC) < 0)
		return -1;
	if (move_err && dup3(a->errfd, x->slot_err, O_CLOEXEC) < 0) {
		(void)dup3(devnull_fd, x->slot_conn, O_CLOEXEC);
		return -1;
	}
	a->fd = x->slot_conn;
	if (move_err)
		a->errfd = x->slot_err;
	a->unshare_from = slot_top;
	return 0;
}

/* Back to /dev/null: porterd's copies of the connection and pipe must go. */
static void
unstage_fds(const struct spawn_ctx *x, const struct child_args *a)
{
	(void)dup3(devnull_fd, x->slot_conn, O_CLOEXEC);
	if (a->errfd == x->slot_err)
		(void)dup3(devnull_fd, x->slot_err, O_CLOEXEC);
}


#if defined(__x86_64__)
/*
 * A CLONE_VM child on a stack of its own cannot return from the system call
 * into C code, whose frame is on the parent's stack: as glibc's clone() does,
 * it calls fn(arg) from assembly and exits with what fn returns.
 */
static pid_t
clone3_on_stack(struct clone_args *ca, int (*fn)(void *), void *arg)
{
	register long rax __asm__("rax") = SYS_clone3;
	register struct clone_args *rdi __asm__("rdi") = ca;
	register size_t rsi __asm__("rsi") = sizeof(*ca);
	register int (*r12)(void *) __asm__("r12") = fn;
	register void *r13 __asm__("r13") = arg;

	__asm__ volatile(
	    "syscall\n\t"
	    "testq %%rax, %%rax\n\t"
	    "jnz 1f\n\t"
	    /* The child, on the new stack (16-byte aligned): fn(arg), then exit. */
	    "xorl %%ebp, %%ebp\n\t"
	    "movq %%r13, %%rdi\n\t"
	    "callq *%%r12\n\t"
	    "movl %%eax, %%edi\n\t"
	    "movl $60, %%eax\n\t"
	    "syscall\n\t"
	    "hlt\n"
	    "1:\n\t"
	    : "+r"(rax)
	    : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
	    : "rcx", "r11", "memory", "cc");
	if (rax < 0) {
		errno = (int)-rax;
		return -1;
	}
	return (pid_t)rax;
}
#define HAVE_CLONE3_ON_STACK 1
#else
#define HAVE_CLONE3_ON_STACK 0
#endif

/* clone3 refused as such (not for want of memory or pids): use the fallback. */
static int
clone3_missing(int e)
{
	return e == ENOSYS || e == E2BIG;
}

/*
 * What a clone3 into a cgroup taught: it works here, or this kernel lacks it
 * and children join their cgroup themselves from now on.
 */
static void
clone3_tried(pid_t pid, int e, struct child_args *a)
{
	if (pid >= 0 && have_clone3() == 0)
		__atomic_store_n(&have_clone3_, 1, __ATOMIC_RELAXED);
	else if (pid < 0 && have_clone3() == 0 && clone3_missing(e))
		__atomic_store_n(&have_clone3_, -1, __ATOMIC_RELAXED);
	if (pid < 0 && have_clone3() < 0)
		a->join_cg = 1;
}

/* fork(), and the child's pid in *ptid before it runs (when ptid is set). */
static pid_t
fork_settid(pid_t *ptid)
{
#if HAVE_FORK_SETTID
	if (ptid != NULL)
		return (pid_t)syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD, NULL, ptid, NULL,
		    NULL);
#endif
	return fork();
}

/*
 * Start the child from x; returns its pid once it has exec'd or failed, with
 * a->report telling which (step -1: it exec'd), or -1 with errno and *what
 * failed when there is no child. ptid (may be NULL): where the kernel writes
 * the pid before the child runs.
 */
static pid_t
start_child(const struct spawn_ctx *x, struct child_args *a, const char **what, pid_t *ptid)
{
	sigset_t all, saved;
	ssize_t r;
	pid_t pid, *tid;
	int e, pfd[2], watch = (int)(x - ctxs);

	a->report.step = -1;
	a->pipe_r = a->pipe_w = -1;
	a->unshare_from = 0;
	a->join_cg = 0;
	if (a->cgfd >= 0 && (have_clone3() < 0 || (use_vfork && !HAVE_CLONE3_ON_STACK)))
		a->join_cg = 1;
	*what = "pipe";
	if (!use_vfork) {
		if (pipe2(pfd, O_CLOEXEC) < 0)
			return -1;
		a->pipe_r = pfd[0];
		a->pipe_w = pfd[1];
	}
	*what = "fork";
	/* No porterd signal handler may run in the child before it resets them. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	/* Its pid is always written, for the watch (startwatch.h) if not for ptid. */
	tid = startwatch_begin(watch, ptid);
	/* The stack grows down on every architecture Linux runs porterd on. */
	if (use_vfork) {
		int shared = stage_fds(x, a) == 0;
		int flags = CLONE_VM | CLONE_VFORK | (shared ? CLONE_FILES : 0) |
		    CLONE_PARENT_SETTID;

		pid = -1;
		e = ENOSYS;
#if HAVE_CLONE3_ON_STACK
		if (a->cgfd >= 0 && !a->join_cg) {
			struct clone_args ca = {
				.flags = (uint64_t)flags | CLONE_INTO_CGROUP,
				.exit_signal = SIGCHLD,
				.stack = (uint64_t)(uintptr_t)x->stack,
				.stack_size = CHILD_STACK_SIZE,
				.cgroup = (uint64_t)a->cgfd,
				.parent_tid = (uint64_t)(uintptr_t)tid,
			};

			pid = clone3_on_stack(&ca, child_main, a);
			e = errno;
			clone3_tried(pid, e, a);
		}
#endif
		if (a->cgfd < 0 || a->join_cg) {
			pid = clone(child_main, x->stack + CHILD_STACK_SIZE, flags | SIGCHLD, a,
			    tid);
			e = errno;
		}
		startwatch_end(watch);
		if (shared)
			unstage_fds(x, a);
		sigprocmask(SIG_SETMASK, &saved, NULL);
		errno = e;
		return pid;
	}
	pid = -1;
	if (a->cgfd >= 0 && !a->join_cg) {
		/* As fork(): the child has a copy of the memory, and may return here. */
		struct clone_args ca = {
			.flags = CLONE_INTO_CGROUP | CLONE_PARENT_SETTID,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)a->cgfd,
			.parent_tid = (uint64_t)(uintptr_t)tid,
		};

		pid = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
		e = errno;
		clone3_tried(pid, e, a);
	}
	if (a->cgfd < 0 || a->join_cg)
		pid = fork_settid(tid);
	if (pid == 0)
		child_main(a);
	e = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(a->pipe_w);
	if (pid > 0) {
		__atomic_store_n(tid, pid, __ATOMIC_SEQ_CST);	/* fork() wrote none */
		/* EOF: the exec closed the pipe. A record: the child failed and exits. */
		do
			r = read(a->pipe_r, &a->report, sizeof(a->report));
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)sizeof(a->report))
			a->report.step = -1;
	}
	startwatch_end(watch);
	close(a->pipe_r);
	errno = e;
	return pid;
}

/*
 * Start s's handler on c from x, with the environment envp (whose
 * per-connection part is made in env). A child that fails before its exec is
 * reaped here unless ptid is set: then the kernel writes its pid there before
 * it runs, and the loop reaps it (spawner.c). *forked: whether there was a child.
 */
static pid_t
handler_from(const struct spawn_ctx *x, const struct service *s, const struct conn *c,
    int cgfd, char **envp, struct spawn_env *env, int *errfd, char *err, size_t errlen,
    pid_t *ptid, int *forked)
{
	struct child_args a = { .s = s, .fd = c->fd, .errfd = -1, .cgfd = cgfd,
		.relayed = c->relayed, .envp = envp };
	int epipe[2] = { -1, -1 }, status;
	const char *what;
	pid_t pid;

	*errfd = -1;
	*forked = 0;
	fill_env(s, c, envp, env);
	a.listen_pid = env->listen_pid;
	if (s->fds_systemd && devnull() < 0) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		return -1;
	}
	if (c->relayed) {
		a.errfd = c->relay_errfd;	/* made by porterd before the relay */
	} else if (s->stderr_mode == STDERR_LOG) {
		if (pipe2(epipe, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			return -1;
		}
		a.errfd = epipe[1];
	}
	if (!c->relayed && s->stderr_mode == STDERR_NULL && (a.errfd = devnull()) < 0) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		return -1;
	}
	pid = start_child(x, &a, &what, ptid);
	if (epipe[1] >= 0)
		close(epipe[1]);
	*forked = pid > 0;
	if (pid < 0 || a.report.step >= 0) {
		int e = pid < 0 ? errno : a.report.err;

		if (pid < 0) {
			snprintf(err, errlen, "%s: %s", what, strerror(e));
		} else {
			while (ptid == NULL && waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			snprintf(err, errlen, "%s%s%s: %s", step_names[a.report.step],
			    a.report.step == STEP_EXEC ? " " : "",
			    a.report.step == STEP_EXEC ? s->exec : "", strerror(e));
		}
		if (epipe[0] >= 0)
			close(epipe[0]);
		errno = e;
		return -1;
	}
	if (epipe[0] >= 0) {
		(void)fcntl(epipe[0], F_SETFL, O_NONBLOCK);
		*errfd = epipe[0];
	}
	return pid;
}

pid_t
spawn_handler(const struct service *s, const struct conn *c, int cgfd, int *errfd, char *err,
    size_t errlen)
{
	int forked;

	/* The loop's starts are one at a time: the service's own envp takes the variables. */
	return handler_from(&ctxs[0], s, c, cgfd, s->envp, &loop_env, errfd, err, errlen, NULL,
	    &forked);
}

pid_t
spawn_handler_from(struct spawn_ctx *x, const struct service *s, const struct conn *c,
    int cgfd, char **envp, struct spawn_env *env, int *errfd, char *err, size_t errlen,
    pid_t *ptid, int *forked)
{
	memcpy(envp, s->envp, s->envp_base * sizeof(*envp));
	return handler_from(x, s, c, cgfd, envp, env, errfd, err, errlen, ptid, forked);
}

pid_t
spawn_builtin(const struct service *s, int fd, void (*fn)(enum builtin b, int fd))
{
	sigset_t all, saved;
	pid_t pid;
	int e;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	pid = fork();
	if (pid == 0) {
		/* A child of porterd that never execs: shed every other fd by hand. */
		if (child_setup(s, fd, -1, fd, 0, NULL) >= 0)	/* fd: fn writes on it */
			_exit(111);
		if (fd > 3)
			close_range(3, (unsigned)fd - 1, 0);
		close_range((unsigned)fd + 1, ~0U, 0);
		fn(s->builtin, fd);
		_exit(0);
	}
	e = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	errno = e;
	return pid;
}

static int
int_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

void
spawn_close_fds(const int *keep, int n)
{
	int k[16], m = 0;
	unsigned from = 3;

	for (int i = 0; i < n && m < 12; i++)
		if (keep[i] >= 3)
			k[m++] = keep[i];
	/*
	 * What spawn_handler starts a handler from: /dev/null and the loop's slots
	 * (the spawner threads' are not: a relay has none).
	 */
	if (devnull_fd >= 3)
		k[m++] = devnull_fd;
	if (ctxs[0].slot_conn >= 3)
		k[m++] = ctxs[0].slot_conn;
	if (ctxs[0].slot_err >= 3)
		k[m++] = ctxs[0].slot_err;
	qsort(k, (size_t)m, sizeof(*k), int_cmp);
	for (int i = 0; i < m; i++) {
		if ((unsigned)k[i] < from)
			continue;
		if ((unsigned)k[i] > from)
			close_range(from, (unsigned)k[i] - 1, 0);
		from = (unsigned)k[i] + 1;
	}
	close_range(from, ~0U, 0);
}

pid_t
spawn_relay(const struct service *s, const struct conn *c, int cgfd, int *errfd,
    int *reportfd, char *err, size_t errlen)
{
	int rp[2], ep[2] = { -1, -1 }, herr = -1, e;
	sigset_t all, saved;
	pid_t pid;

	*errfd = *reportfd = -1;
	if (pipe2(rp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if (s->stderr_mode == STDERR_LOG) {
		if (pipe2(ep, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			close(rp[0]);
			close(rp[1]);
			return -1;
		}
		herr = ep[1];
	} else if (s->stderr_mode == STDERR_NULL && (herr = devnull()) < 0) {
		snprintf(err, errlen, "/dev/null: %s", strerror(errno));
		close(rp[0]);
		close(rp[1]);
		return -1;
	}
	/* A fork, not a vfork: the relay runs for the whole connection. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	pid = fork();
	if (pid == 0)
		relay_main(s, c, cgfd, herr, rp[1]);
	e = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(rp[1]);
	if (ep[1] >= 0)
		close(ep[1]);
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(e));
		close(rp[0]);
		if (ep[0] >= 0)
			close(ep[0]);
		errno = e;
		return -1;
	}
	(void)fcntl(rp[0], F_SETFL, O_NONBLOCK);
	*reportfd = rp[0];
	if (ep[0] >= 0) {
		(void)fcntl(ep[0], F_SETFL, O_NONBLOCK);
		*errfd = ep[0];
	}
	return pid;
}
