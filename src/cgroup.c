#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "config.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/*
 * Cost, measured on the developers' 6.18 kernel: mkdir + rmdir of a cgroup is
 * about 70 us, against a few hundred for a whole handler start. So an empty
 * connection cgroup goes back to its service's pool, and the next connection
 * reuses it. Opening its directory for clone3 and its cgroup.events when the
 * handler is reaped costs some 8 us more (kernfs makes an inode at each open),
 * a fifth of what containment costs porterd for a connection. clone3 itself
 * checks that porterd may write the target's cgroup.procs and that of the
 * common ancestor, and kernfs makes and frees an inode for each check unless
 * that file is open somewhere: most of what CLONE_INTO_CGROUP costs (perf, a
 * loop of spawns: the kernel's cgroup_can_fork fell to a tenth with both files
 * held). So up to WARM_MAX cgroups (and no more than a 64th of the fd limit's
 * worth) keep their directory, cgroup.events and cgroup.procs open from one
 * connection to the next ("warm"), and close them once idle for WARM_IDLE_MS,
 * so that porterd's fds are back to what they were soon after a burst; the
 * common ancestor's cgroup.procs stays open from setup to exit. Only a tree
 * that outlives its handler is watched (its cgroup.events in an epoll set,
 * EPOLLPRI), so a thousand short connections add nothing to the loop.
 */
#define POOL_MAX 128
#define WARM_MAX 64
#define WARM_IDLE_MS 1000

struct cg_svc {
	char		 name[80];	/* under handlers/ */
	int		 limits;	/* CG_* enabled in its subtree_control */
	int		 tried;		/* CG_* asked for there, granted or not */
	unsigned long long usage0;	/* usage_usec found when it was made (left over) */
	struct cg_conn	*pool;
	unsigned	 npool;
};

struct cg_conn {
	struct cg_svc	*sv;
	char		 path[112];	/* SERVICE/cN, under handlers/ */
	int		 fd;		/* O_PATH, its directory, while a handler starts */
	int		 events;	/* cgroup.events, while watched */
	int		 procs;		/* O_PATH, its cgroup.procs, while warm (see above) */
	long		 key;		/* watched: what cgroup_run reports; 0: not */
	unsigned long long memory_max;	/* what memory.max and pids.max hold */
	unsigned long	 tasks_max;
	struct cg_conn	*next;		/* in the pool */
	int		 warm;		/* fd and events stay open between connections */
	int		 killed;	/* cgroup.kill was written: never used again */
	long long	 idle_ms;	/* warm and pooled: since when (monotonic) */
	struct cg_conn	*older, *newer;	/* warm and pooled: the idle list */
};

static int active;
static int base_fd = -1, handlers_fd = -1, epfd = -1;
static int ancestor_procs = -1;	/* O_PATH: see the cost, above */
static int controllers;		/* CG_* enabled in handlers/ */
static int own_leaf;		/* porterd moved itself into BASE/porterd */
static int base_made;		/* BASE is ours to remove at exit */
static char base_path[PATH_MAX];
static char parent_path[PATH_MAX];	/* where BASE was made, when base_made */
static unsigned long next_conn;
static size_t nconns;		/* connection cgroups made and not removed */
static unsigned nwarm;		/* warm cgroups, in use or pooled */
static unsigned warm_max;	/* WARM_MAX, or less under a small fd limit */
static struct cg_conn *idle_oldest, *idle_newest;	/* warm and pooled */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
idle_unlink(struct cg_conn *cc)
{
	if (cc->older != NULL)
		cc->older->newer = cc->newer;
	else if (idle_oldest == cc)
		idle_oldest = cc->newer;
	if (cc->newer != NULL)
		cc->newer->older = cc->older;
	else if (idle_newest == cc)
		idle_newest = cc->older;
	cc->older = cc->newer = NULL;
}

/* Close what a cgroup keeps open (the epoll set is the caller's business). */
static void
conn_close_fds(struct cg_conn *cc)
{
	if (cc->events >= 0)
		close(cc->events);
	if (cc->procs >= 0)
		close(cc->procs);
	if (cc->fd >= 0)
		close(cc->fd);
	cc->events = cc->procs = cc->fd = -1;
	if (cc->warm) {
		idle_unlink(cc);
		cc->warm = 0;
		nwarm--;
	}
}

int
cgroup_active(void)
{
	return active;
}

int
cgroup_controllers(void)
{
	return controllers;
}

static int enable_controllers(int fd, int want);

int
cgroup_wanted(const struct config *cf)
{
	int want = 0;

	for (size_t i = 0; i < cf->nsvc; i++)
		want |= (cf->svc[i].memory_max != 0 ? CG_MEMORY : 0) |
		    (cf->svc[i].tasks_max != 0 ? CG_PIDS : 0);
	return want;
}

/*
 * Only when a service sets memory_max or tasks_max: a controller on in the
 * subtree_control of the unit's own cgroup makes systemd unable to start the
 * next porterd there while old handlers still run (no process in an inner
 * node), so a porterd without limits never turns one on.
 */
int
cgroup_enable(int want)
{
	if (!active || (want & ~controllers) == 0)
		return controllers;
	if (enable_controllers(base_fd, want) != 0)
		controllers |= enable_controllers(handlers_fd, want);
	return controllers;
}

const char *
cgroup_base(void)
{
	return base_path;
}

int
cgroup_fd(void)
{
	return epfd;
}

/* ---- small file helpers, on kernfs files that fit in a page ---- */

static ssize_t
read_at(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r >= 0)
		buf[r] = '\0';
	return r;
}

static int
write_at(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	ssize_t r, len = (ssize_t)strlen(text);
	int e;

	if (fd < 0)
		return -1;
	r = write(fd, text, (size_t)len);
	e = errno;
	close(fd);
	errno = e;
	return r == len ? 0 : -1;
}

long long
cgroup_parse_usage(const char *text)
{
	const char *p = strstr(text, "usage_usec ");

	if (p == NULL || (p != text && p[-1] != '\n'))
		return -1;
	return strtoll(p + strlen("usage_usec "), NULL, 10);
}

int
cgroup_parse_populated(const char *text)
{
	const char *p = strstr(text, "populated ");

	if (p == NULL || (p != text && p[-1] != '\n'))
		return -1;
	p += strlen("populated ");
	return *p == '0' ? 0 : *p == '1' ? 1 : -1;
}

void
cgroup_limit_text(unsigned long long v, char *buf, size_t len)
{
	if (v == 0)
		snprintf(buf, len, "max");
	else
		snprintf(buf, len, "%llu", v);
}

/* ---- finding the hierarchy ---- */

/* mountinfo escapes blanks and backslashes as \ooo. */
static void
unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* The first cgroup2 mount: its mount point, and the cgroup path it shows as "/". */
static int
find_mount(char *mnt, size_t mlen, char *root, size_t rlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		char *sep = strstr(line, " - "), *save = NULL, *field[5];
		int n = 0;

		if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		for (char *t = strtok_r(line, " ", &save); t != NULL && n < 5;
		    t = strtok_r(NULL, " ", &save))
			field[n++] = t;
		if (n < 5)
			continue;
		unescape(field[3]);
		unescape(field[4]);
		snprintf(mnt, mlen, "%s", field[4]);
		snprintf(root, rlen, "%s", field[3]);
		found = 1;
	}
	fclose(f);
	return found ? 0 : -1;
}

/* porterd's own cgroup, as a path under the mount point. */
static int
own_cgroup(const char *mnt, const char *root, char *out, size_t len)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[PATH_MAX + 8];
	int found = 0;

	if (f == NULL)
		return -1;
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		const char *p = line + 3;
		size_t rl = strlen(root);

		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		/* Below a mount of a sub-tree, paths are shown from the host's root. */
		if (strcmp(root, "/") != 0 && strncmp(p, root, rl) == 0)
			p += rl;
		if ((size_t)snprintf(out, len, "%s%s%s", mnt, *p == '/' ? "" : "/",
		    strcmp(p, "/") == 0 ? "" : p) < len)
			found = 1;
	}
	fclose(f);
	return found ? 0 : -1;
}

/* Whether the cgroup at path holds porterd and nothing else: it is porterd's to manage. */
static int
ours_alone(const char *path)
{
	char file[PATH_MAX + 16], buf[256];
	ssize_t r;

	snprintf(file, sizeof(file), "%s/cgroup.procs", path);
	if ((r = read_at(AT_FDCWD, file, buf, sizeof(buf))) <= 0)
		return 0;
	return strtol(buf, NULL, 10) == (long)getpid() && strchr(buf, '\n') == buf + r - 1;
}

/* Remove the empty cgroups of the tree at dirfd/name, deepest first; 0 if all went. */
static int
remove_tree(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *d;
	DIR *dir;
	int left = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((d = readdir(dir)) != NULL)
		if (d->d_type == DT_DIR && strcmp(d->d_name, ".") != 0 &&
		    strcmp(d->d_name, "..") != 0 && remove_tree(dirfd(dir), d->d_name) < 0)
			left = 1;
	closedir(dir);
	if (unlinkat(at, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		left = 1;
	return left ? -1 : 0;
}

/*
 * porterd.PID subtrees of porterd instances gone: what was left running in
 * them has ended since (or is left alone, if not).
 */
static void
sweep_stale(const char *parent)
{
	DIR *dir = opendir(parent);
	struct dirent *d;

	if (dir == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		char *end;
		long pid;

		if (d->d_type != DT_DIR || strncmp(d->d_name, "porterd.", 8) != 0)
			continue;
		pid = strtol(d->d_name + 8, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == (long)getpid() ||
		    (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		(void)remove_tree(dirfd(dir), d->d_name);
	}
	closedir(dir);
}

/* Turn on what is available of memory and pids below fd; returns CG_* turned on. */
static int
enable_controllers(int fd, int want)
{
	char avail[512];
	int on = 0;

	if (read_at(fd, "cgroup.controllers", avail, sizeof(avail)) < 0)
		return 0;
	/* Word by word: one the kernel refuses must not cost the other. */
	if ((want & CG_MEMORY) && strstr(avail, "memory") != NULL &&
	    write_at(fd, "cgroup.subtree_control", "+memory") == 0)
		on |= CG_MEMORY;
	if ((want & CG_PIDS) && strstr(avail, "pids") != NULL &&
	    write_at(fd, "cgroup.subtree_control", "+pids") == 0)
		on |= CG_PIDS;
	return on;
}

/* Where BASE goes; *made_here: it is to be made (and removed) by porterd. */
static int
choose_base(const char *where, char *out, size_t len, int *made_here, int *move_self,
    char *why, size_t wlen)
{
	char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX];

	*made_here = *move_self = 0;
	if (find_mount(mnt, sizeof(mnt), root, sizeof(root)) < 0) {
		snprintf(why, wlen, "no cgroup2 hierarchy is mounted");
		return -1;
	}
	if (where != NULL) {
		snprintf(out, len, "%s", where);
		return 0;
	}
	if (own_cgroup(mnt, root, own, sizeof(own)) < 0) {
		snprintf(why, wlen, "porterd's own cgroup is not in /proc/self/cgroup");
		return -1;
	}
	*move_self = 1;
	if (strcmp(own, mnt) != 0 && ours_alone(own)) {
		/* Delegated to porterd (systemd's Delegate=yes): its own cgroup is BASE. */
		snprintf(out, len, "%s", own);
		return 0;
	}
	/* Shared with others: a subtree of this instance's own below it. */
	snprintf(parent_path, sizeof(parent_path), "%s", own);
	if ((size_t)snprintf(out, len, "%s/porterd.%ld", own, (long)getpid()) >= len) {
		snprintf(why, wlen, "%s: path too long", own);
		return -1;
	}
	*made_here = 1;
	return 0;
}

/*
 * The cgroup.procs of the closest cgroup above both porterd's own and its
 * handlers' (BASE, when porterd moved itself into BASE/porterd): clone3 checks
 * it at every spawn. Left closed when it cannot be found; only a cache.
 */
static void
open_ancestor_procs(void)
{
	char mnt[PATH_MAX], root[PATH_MAX], own[PATH_MAX], common[PATH_MAX + 16];
	size_t n = 0;

	if (find_mount(mnt, sizeof(mnt), root, sizeof(root)) < 0 ||
	    own_cgroup(mnt, root, own, sizeof(own)) < 0)
		return;
	/* The longest common prefix that ends at a path component of both. */
	for (size_t i = 0;; i++) {
		int end_own = own[i] == '\0' || own[i] == '/';
		int end_base = base_path[i] == '\0' || base_path[i] == '/';

		if (end_own && end_base)
			n = i;
		if (own[i] == '\0' || own[i] != base_path[i])
			break;
	}
	if (n == 0)
		return;
	snprintf(common, sizeof(common), "%.*s/cgroup.procs", (int)n, own);
	ancestor_procs = open(common, O_PATH | O_CLOEXEC);
}

static void
undo_setup(void)
{
	if (ancestor_procs >= 0)
		close(ancestor_procs);
	if (handlers_fd >= 0)
		close(handlers_fd);
	if (base_fd >= 0)
		close(base_fd);
	if (epfd >= 0)
		close(epfd);
	handlers_fd = base_fd = epfd = ancestor_procs = -1;
	if (base_made)
		(void)remove_tree(AT_FDCWD, base_path);
	base_made = 0;
}

int
cgroup_setup(const char *where, char *msg, size_t len)
{
	char why[PATH_MAX + 128], pid[32];
	struct statfs sfs;
	struct rlimit rl;
	int made_here, move_self;

	active = 0;
	if (where != NULL && strcmp(where, "none") == 0) {
		snprintf(msg, len, "containment is off (-g none)");
		return 0;
	}
	if (choose_base(where, base_path, sizeof(base_path), &made_here, &move_self, why,
	    sizeof(why)) < 0)
		goto fail;
	if (made_here)
		sweep_stale(parent_path);
	if (mkdir(base_path, 0755) < 0 && errno != EEXIST) {
		snprintf(why, sizeof(why), "%s: %s", base_path, strerror(errno));
		goto fail;
	}
	base_made = made_here;
	if ((base_fd = open(base_path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstatfs(base_fd, &sfs) < 0) {
		snprintf(why, sizeof(why), "%s: %s", base_path, strerror(errno));
		goto fail;
	}
	if (sfs.f_type != CGROUP2_SUPER_MAGIC) {
		snprintf(why, sizeof(why), "%s is not in a cgroup2 hierarchy", base_path);
		goto fail;
	}
	if (move_self) {
		/* A leaf of its own: BASE may then enable controllers for its children. */
		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		if ((mkdirat(base_fd, "porterd", 0755) < 0 && errno != EEXIST) ||
		    write_at(base_fd, "porterd/cgroup.procs", pid) < 0) {
			snprintf(why, sizeof(why), "%s/porterd: %s", base_path, strerror(errno));
			goto fail;
		}
		own_leaf = 1;
	}
	if ((mkdirat(base_fd, "handlers", 0755) < 0 && errno != EEXIST) ||
	    (handlers_fd = openat(base_fd, "handlers", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(why, sizeof(why), "%s/handlers: %s", base_path, strerror(errno));
		goto fail;
	}
	/* Writable is what matters: a probe cgroup, made and removed. */
	if (mkdirat(handlers_fd, ".probe", 0755) < 0 ||
	    unlinkat(handlers_fd, ".probe", AT_REMOVEDIR) < 0) {
		snprintf(why, sizeof(why), "%s/handlers: %s", base_path, strerror(errno));
		goto fail;
	}
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(why, sizeof(why), "epoll: %s", strerror(errno));
		goto fail;
	}
	/* Three fds each: a 64th of the limit (raised by now) at most. */
	warm_max = WARM_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 192 < warm_max)
		warm_max = (unsigned)(rl.rlim_cur / 192);
	open_ancestor_procs();
	active = 1;
	snprintf(msg, len, "handlers are contained in cgroups under %s/handlers", base_path);
	return 1;
fail:
	if (own_leaf) {
		/* Back where it came from, so that its old leaf can go. */
		char up[PATH_MAX + 16];

		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		snprintf(up, sizeof(up), "%s/cgroup.procs", made_here ? parent_path : base_path);
		(void)write_at(AT_FDCWD, up, pid);
		own_leaf = 0;
	}
	undo_setup();
	snprintf(msg, len, "no writable cgroup2 hierarchy (%s): handlers are tracked by "
	    "process group, and what leaves the group is not tracked", why);
	return 0;
}

int
cgroup_probe(const char *where)
{
	char base[PATH_MAX], why[256], avail[512], file[PATH_MAX + 32];
	int made_here, move_self, on = 0;

	if (where != NULL && strcmp(where, "none") == 0)
		return -1;
	if (choose_base(where, base, sizeof(base), &made_here, &move_self, why,
	    sizeof(why)) < 0)
		return -1;
	/* What BASE would have is what its parent offers it. */
	snprintf(file, sizeof(file), "%s/cgroup.controllers", made_here ? parent_path : base);
	if (read_at(AT_FDCWD, file, avail, sizeof(avail)) < 0)
		return made_here ? 0 : -1;
	if (made_here) {
		/* Its parent must also let it have them, and holds processes: not for long. */
		snprintf(file, sizeof(file), "%s/cgroup.subtree_control", parent_path);
		if (read_at(AT_FDCWD, file, avail, sizeof(avail)) < 0)
			return 0;
	}
	if (strstr(avail, "memory") != NULL)
		on |= CG_MEMORY;
	if (strstr(avail, "pids") != NULL)
		on |= CG_PIDS;
	return on;
}

/* ---- services ---- */

/*
 * The controllers porterd has (more after a reload that asked for memory_max
 * or tasks_max) in the service's subtree, asked for once each.
 */
static void
svc_controllers(struct cg_svc *sv)
{
	int want = controllers & ~sv->tried, fd;

	if (want == 0)
		return;
	sv->tried |= want;
	if ((fd = openat(handlers_fd, sv->name, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		sv->limits |= enable_controllers(fd, want);
		close(fd);
	}
}

struct cg_svc *
cgroup_svc_new(const char *name, unsigned long long id)
{
	struct cg_svc *sv;
	char stat[1024], file[128];
	int e, r;

	if (!active) {
		errno = ENOTSUP;
		return NULL;
	}
	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return NULL;
	/*
	 * Section names are letters, digits, '.', '-' and '_': a cgroup name,
	 * unless it is an interface file's, or taken by a service of the same
	 * name that a reload removed and whose handlers are still running.
	 */
	snprintf(sv->name, sizeof(sv->name), "%s", name);
	r = name[0] == '.' || strncmp(name, "cgroup.", 7) == 0 ? -1 :
	    mkdirat(handlers_fd, sv->name, 0755);
	if (r < 0 && errno == EEXIST && unlinkat(handlers_fd, sv->name, AT_REMOVEDIR) == 0)
		r = mkdirat(handlers_fd, sv->name, 0755);
	if (r < 0) {
		snprintf(sv->name, sizeof(sv->name), "%s-%llu", name, id);
		if (mkdirat(handlers_fd, sv->name, 0755) < 0 && errno != EEXIST)
			goto fail;
	}
	snprintf(file, sizeof(file), "%s/cpu.stat", sv->name);
	if (read_at(handlers_fd, file, stat, sizeof(stat)) > 0 && cgroup_parse_usage(stat) > 0)
		sv->usage0 = (unsigned long long)cgroup_parse_usage(stat);
	svc_controllers(sv);
	return sv;
fail:
	e = errno;
	free(sv);
	errno = e;
	return NULL;
}

static void
conn_remove(struct cg_conn *cc)
{
	conn_close_fds(cc);
	if (handlers_fd >= 0)
		(void)unlinkat(handlers_fd, cc->path, AT_REMOVEDIR);
	nconns--;
	free(cc);
}

void
cgroup_svc_free(struct cg_svc *sv)
{
	if (sv == NULL)
		return;
	while (sv->pool != NULL) {
		struct cg_conn *cc = sv->pool;

		sv->pool = cc->next;
		conn_remove(cc);
	}
	if (handlers_fd >= 0)
		(void)unlinkat(handlers_fd, sv->name, AT_REMOVEDIR);
	free(sv);
}

/* NAME of sv, or of one of its connections' cgroups, from handlers/. */
static ssize_t
read_in(const char *dir, const char *name, char *buf, size_t len)
{
	char file[160];

	snprintf(file, sizeof(file), "%s/%s", dir, name);
	return read_at(handlers_fd, file, buf, len);
}

/*
 * By path: the status and metrics builtins ask from a child of porterd that
 * has closed every fd but its client's.
 */
static ssize_t
read_svc(const struct cg_svc *sv, const char *name, char *buf, size_t len)
{
	char file[PATH_MAX + 192];

	snprintf(file, sizeof(file), "%s/handlers/%s/%s", base_path, sv->name, name);
	return read_at(AT_FDCWD, file, buf, len);
}

int
cgroup_svc_usage(const struct cg_svc *sv, struct cg_usage *u)
{
	char buf[1024];
	long long usec;

	u->cpu_seconds = 0;
	u->memory = u->tasks = -1;
	if (sv == NULL)
		return -1;
	if (read_svc(sv, "cpu.stat", buf, sizeof(buf)) > 0 &&
	    (usec = cgroup_parse_usage(buf)) >= 0)
		u->cpu_seconds = (double)((unsigned long long)usec - sv->usage0) / 1e6;
	if ((controllers & CG_MEMORY) && read_svc(sv, "memory.current", buf, sizeof(buf)) > 0)
		u->memory = strtoll(buf, NULL, 10);
	if ((controllers & CG_PIDS) && read_svc(sv, "pids.current", buf, sizeof(buf)) > 0)
		u->tasks = strtoll(buf, NULL, 10);
	return 0;
}

/* ---- connections ---- */

static int
set_limits(struct cg_conn *cc, unsigned long long memory_max, unsigned long tasks_max)
{
	char text[32];

	if (memory_max != cc->memory_max && (cc->sv->limits & CG_MEMORY)) {
		cgroup_limit_text(memory_max, text, sizeof(text));
		if (write_at(cc->fd, "memory.max", text) < 0)
			return -1;
		cc->memory_max = memory_max;
	}
	if (tasks_max != cc->tasks_max && (cc->sv->limits & CG_PIDS)) {
		cgroup_limit_text(tasks_max, text, sizeof(text));
		if (write_at(cc->fd, "pids.max", text) < 0)
			return -1;
		cc->tasks_max = tasks_max;
	}
	return 0;
}

struct cg_conn *
cgroup_conn_get(struct cg_svc *sv, unsigned long long memory_max, unsigned long tasks_max)
{
	struct cg_conn *cc = sv->pool;
	int e, r;

	if (cc != NULL) {
		sv->pool = cc->next;
		sv->npool--;
		idle_unlink(cc);
	} else {
		if ((cc = calloc(1, sizeof(*cc))) == NULL)
			return NULL;
		cc->sv = sv;
		cc->fd = cc->events = cc->procs = -1;
		/* A name left by an earlier porterd, with its handlers still in it, is skipped. */
		do
			snprintf(cc->path, sizeof(cc->path), "%s/c%lu", sv->name, next_conn++);
		while ((r = mkdirat(handlers_fd, cc->path, 0755)) < 0 && errno == EEXIST);
		if (r < 0) {
			free(cc);
			return NULL;
		}
		nconns++;
	}
	cc->next = NULL;
	cc->key = 0;
	svc_controllers(sv);
	if (cc->fd < 0 && (cc->fd = openat(handlers_fd, cc->path, O_PATH | O_DIRECTORY |
	    O_CLOEXEC)) >= 0 && nwarm < warm_max) {
		cc->warm = 1;
		nwarm++;
		/* Only a cache: clone3 works without it. */
		cc->procs = openat(cc->fd, "cgroup.procs", O_PATH | O_CLOEXEC);
	}
	if (cc->fd < 0 || set_limits(cc, memory_max, tasks_max) < 0) {
		e = errno;
		conn_remove(cc);
		errno = e;
		return NULL;
	}
	return cc;
}

int
cgroup_conn_fd(const struct cg_conn *cc)
{
	return cc->fd;
}

void
cgroup_conn_started(struct cg_conn *cc)
{
	if (cc->warm)
		return;
	if (cc->fd >= 0)
		close(cc->fd);
	cc->fd = -1;
}

int
cgroup_conn_empty(struct cg_conn *cc)
{
	char buf[128];
	ssize_t r;
	int p;

	if (cc->events < 0 && cc->warm)
		cc->events = openat(cc->fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
	if (cc->events >= 0)
		r = pread(cc->events, buf, sizeof(buf) - 1, 0);
	else
		r = read_in(cc->path, "cgroup.events", buf, sizeof(buf));
	if (r <= 0) {
		if (r == 0)
			errno = EIO;
		return -1;
	}
	buf[r] = '\0';
	if ((p = cgroup_parse_populated(buf)) < 0) {
		errno = EIO;
		return -1;
	}
	return !p;
}

int
cgroup_conn_watch(struct cg_conn *cc, long key)
{
	struct epoll_event ev = { .events = EPOLLPRI, .data.ptr = cc };
	char file[160];
	int empty, e;

	snprintf(file, sizeof(file), "%s/cgroup.events", cc->path);
	if (cc->events < 0 && (cc->events = openat(handlers_fd, file, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	/*
	 * kernfs raises EPOLLPRI once the file changed after this fd last read
	 * it: read first, so that a tree that empties from now on is reported.
	 */
	if ((empty = cgroup_conn_empty(cc)) != 0 ||
	    epoll_ctl(epfd, EPOLL_CTL_ADD, cc->events, &ev) < 0) {
		e = errno;
		close(cc->events);
		cc->events = -1;
		errno = e;
		return empty == 1 ? 1 : -1;
	}
	cc->key = key;
	return 0;
}

/* The pids in cgroup.procs, a chunk at a time. */
int
cgroup_conn_signal(struct cg_conn *cc, int sig)
{
	char buf[4096], *p, *nl;
	size_t have = 0;
	ssize_t r;
	int fd, n = 0;

	snprintf(buf, sizeof(buf), "%s/cgroup.procs", cc->path);
	if ((fd = openat(handlers_fd, buf, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while ((r = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)r;
		buf[have] = '\0';
		for (p = buf; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			long pid = strtol(p, NULL, 10);

			if (pid > 0 && kill((pid_t)pid, sig) == 0)
				n++;
		}
		have = strlen(p);
		memmove(buf, p, have);
	}
	close(fd);
	return n;
}

int
cgroup_conn_kill(struct cg_conn *cc)
{
	char file[160];

	snprintf(file, sizeof(file), "%s/cgroup.kill", cc->path);
	cc->killed = 1;
	if (write_at(handlers_fd, file, "1") == 0)
		return 0;
	/* Before 5.14: one by one (a fork in between is caught by the next round). */
	return cgroup_conn_signal(cc, SIGKILL) < 0 ? -1 : 0;
}

void
cgroup_conn_drop(struct cg_conn *cc)
{
	if (cc->key != 0)
		(void)epoll_ctl(epfd, EPOLL_CTL_DEL, cc->events, NULL);
	conn_close_fds(cc);
	/* Still populated, it stays, and counts as left behind. */
	if (unlinkat(handlers_fd, cc->path, AT_REMOVEDIR) == 0)
		nconns--;
	free(cc);
}

/* The caller has seen it empty: the handler reaped, its tree gone. */
void
cgroup_conn_put(struct cg_conn *cc)
{
	struct cg_svc *sv = cc->sv;

	if (cc->key != 0)
		(void)epoll_ctl(epfd, EPOLL_CTL_DEL, cc->events, NULL);
	cc->key = 0;
	/*
	 * A cgroup once killed is not pooled: on Linux 6.18 every child cloned
	 * into it later (CLONE_INTO_CGROUP) was killed at birth, the kernel
	 * taking the kill it had seen for one still to come.
	 */
	if (cc->killed || sv->npool >= POOL_MAX) {
		conn_remove(cc);
		return;
	}
	if (cc->warm) {
		cc->idle_ms = now_ms();
		cc->older = idle_newest;
		if (idle_newest != NULL)
			idle_newest->newer = cc;
		else
			idle_oldest = cc;
		idle_newest = cc;
	} else {
		conn_close_fds(cc);
	}
	cc->next = sv->pool;
	sv->pool = cc;
	sv->npool++;
}

long long
cgroup_cool(long long now)
{
	while (idle_oldest != NULL && now - idle_oldest->idle_ms >= WARM_IDLE_MS)
		conn_close_fds(idle_oldest);
	return idle_oldest != NULL ? idle_oldest->idle_ms + WARM_IDLE_MS : 0;
}

void
cgroup_run(void (*done)(long key, void *ctx), void *ctx)
{
	struct epoll_event ev[64];
	int n;

	if (epfd < 0)
		return;
	while ((n = epoll_wait(epfd, ev, 64, 0)) > 0) {
		for (int i = 0; i < n; i++) {
			struct cg_conn *cc = ev[i].data.ptr;
			long key = cc->key;
			int empty = cgroup_conn_empty(cc);

			/* The pread above clears the event; only an empty one is reported. */
			if (empty == 0)
				continue;
			(void)epoll_ctl(epfd, EPOLL_CTL_DEL, cc->events, NULL);
			if (!cc->warm) {
				close(cc->events);
				cc->events = -1;
			}
			cc->key = 0;
			done(key, ctx);
		}
		if (n < 64)
			break;
	}
}

/*
 * What was left running (handlers left to finish, children of porterd outside
 * any connection's cgroup) keeps the subtree: a small process outside it
 * waits for it to empty (BASE's cgroup.events counts the whole subtree) and
 * removes it. Not when BASE is porterd's own delegated cgroup: systemd
 * removes that one.
 */
static void
spawn_cleaner(const char *dir)
{
	char file[PATH_MAX + 32];
	struct pollfd pfd;
	int fd;
	pid_t pid = fork();

	if (pid != 0)
		return;
	setsid();
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
	}
	close_range(3, ~0U, 0);
	if (base_made) {
		snprintf(file, sizeof(file), "%s/cgroup.procs", parent_path);
		if (write_at(AT_FDCWD, file, "0") < 0)
			_exit(1);
	}
	snprintf(file, sizeof(file), "%s/cgroup.events", dir);
	if ((pfd.fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		_exit(1);
	pfd.events = POLLPRI;
	/*
	 * EPOLLPRI says when it empties; the timeout covers what it does not
	 * say: the subtree removed meanwhile (by a porterd sweeping stale ones).
	 */
	for (;;) {
		char buf[128];
		ssize_t r = pread(pfd.fd, buf, sizeof(buf) - 1, 0);

		if (r <= 0 || access(dir, F_OK) < 0)
			_exit(1);
		buf[r] = '\0';
		if (cgroup_parse_populated(buf) == 0)
			break;
		(void)poll(&pfd, 1, 1000);
	}
	(void)remove_tree(AT_FDCWD, dir);
	_exit(0);
}

size_t
cgroup_cleanup(void)
{
	size_t left = nconns;

	if (!active)
		return 0;
	if (ancestor_procs >= 0)
		close(ancestor_procs);
	ancestor_procs = -1;
	if (handlers_fd >= 0)
		close(handlers_fd);
	handlers_fd = -1;
	if (epfd >= 0)
		close(epfd);
	epfd = -1;
	if (controllers != 0 && own_leaf && !base_made && base_fd >= 0) {
		/*
		 * BASE is the unit's cgroup, where systemd starts the next porterd:
		 * with a controller on in its subtree_control it would refuse to
		 * (no process in an inner node). Off again, deepest first.
		 */
		DIR *dir;
		struct dirent *d;
		int fd = openat(base_fd, "handlers", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd >= 0 && (dir = fdopendir(fd)) != NULL) {
			while ((d = readdir(dir)) != NULL)
				if (d->d_type == DT_DIR && d->d_name[0] != '.') {
					char file[320];

					snprintf(file, sizeof(file), "%s/cgroup.subtree_control", d->d_name);
					(void)write_at(dirfd(dir), file, "-memory -pids");
				}
			closedir(dir);
		} else if (fd >= 0) {
			close(fd);
		}
		(void)write_at(base_fd, "handlers/cgroup.subtree_control", "-memory -pids");
		(void)write_at(base_fd, "cgroup.subtree_control", "-memory -pids");
	}
	if (left == 0 && base_fd >= 0) {
		(void)remove_tree(base_fd, "handlers");
		if (own_leaf) {
			/* Out of BASE/porterd, so that the whole subtree can go. */
			char up[PATH_MAX + 16], pid[32];

			snprintf(pid, sizeof(pid), "%ld", (long)getpid());
			snprintf(up, sizeof(up), "%s/cgroup.procs", base_made ? parent_path :
			    base_path);
			if (base_made && write_at(AT_FDCWD, up, pid) == 0)
				(void)unlinkat(base_fd, "porterd", AT_REMOVEDIR);
		}
		if (base_made)
			(void)rmdir(base_path);
	}
	if (base_made && access(base_path, F_OK) == 0) {
		spawn_cleaner(base_path);
	} else if (!own_leaf && left != 0) {
		char dir[PATH_MAX + 16];

		snprintf(dir, sizeof(dir), "%s/handlers", base_path);
		spawn_cleaner(dir);
	}
	if (base_fd >= 0)
		close(base_fd);
	base_fd = -1;
	active = 0;
	return left;
}
