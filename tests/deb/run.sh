#!/bin/bash
# tests/deb/run.sh: the Debian package, end to end (see tests/deb/README).
#
#   1. copy the source tree, dpkg-buildpackage -us -uc -b, lintian (no error);
#   2. a fresh Debian 12 root (debootstrap minbase, cached), in a private mount
#      namespace, its commands in a private network namespace (only lo);
#   3. install the .deb there; check its files, start porterd with its init
#      script, porterd -t, nothing listening;
#   4. fingerd through porterd: answers, update-inetd --disable/--enable,
#      purge; then nullidentd and micro-httpd;
#   5. stop, remove, purge porterd: nothing left.
# Last line: "deb: N passed, M failed"; exit 0 only if all passed.
#
# Run as root:  tests/deb/run.sh [SOURCE_TREE]   (default: this checkout)
# Knobs: DEB_CACHE (/var/cache/porterd-fresh: the cached root), DEB_TMP
#   (/var/tmp), DEB_LOGS (/tmp/porterd-deb-logs), DEB_EXTRA (1: also nullidentd
#   and micro-httpd), DEB_REBUILD_ROOT (0), DEB_ROOT_MAX_DAYS (30).
set -u

if [ "$(id -u)" != 0 ]; then
	echo "deb: must run as root (dpkg-buildpackage, debootstrap, chroot, mount)"
	echo "deb: 0 passed, 1 failed"
	exit 1
fi
# Everything runs in a private mount namespace: the root's mounts (and the
# network namespace file) are invisible to the host and vanish with it.
if [ "${DEB_IN_NS:-}" != "$$" ]; then
	exec unshare --mount --propagation private env DEB_IN_NS=$$ bash "$(readlink -f "$0")" "$@"
	echo "deb: unshare --mount failed"
	echo "deb: 0 passed, 1 failed"
	exit 1
fi

HERE=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
SRC=$(cd "${1:-$HERE/../..}" 2>/dev/null && pwd) || SRC=""
CACHE=${DEB_CACHE:-/var/cache/porterd-fresh}
TMPBASE=${DEB_TMP:-/var/tmp}
LOGS=${DEB_LOGS:-/tmp/porterd-deb-logs}
EXTRA=${DEB_EXTRA:-1}
MAXDAYS=${DEB_ROOT_MAX_DAYS:-30}
TARBALL=$CACHE/bookworm-minbase.tar.gz
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

pass=0 failed=0 work="" root="" netns="" made_policy=0 aborted=""
exec 8>&1
say() { echo "deb: $*"; }
ok() { pass=$((pass + 1)); echo "ok    $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
# check DESCRIPTION COMMAND...: one counted check
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}
# A step that cannot go on: counted as a failure, and the steps after it are
# not tried (cleanup still runs).
abort() {
	bad "$*"
	aborted=$*
	exit 1
}
tail_log() { tail -n "${2:-15}" "$1" | cut -c1-200 | sed 's/^/      | /'; }

# ---- processes and mounts under a directory ------------------------------------
# PIDs of the processes whose root directory is DIR or below it.
root_pids() {
	find /proc -mindepth 2 -maxdepth 2 -name root \( -lname "$1" -o -lname "$1/*" \) \
		2>/dev/null | cut -d/ -f3 | grep -vx "$$"
}
# PIDs of porterd processes in the root
porterd_pids() {
	local p
	for p in $(root_pids "$root"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = porterd ] && echo "$p"
	done
}
# TERM, up to 5 s, then KILL, up to 5 s: every process started in DIR, by PID.
kill_root_procs() {
	local pids i
	for sig in TERM KILL; do
		pids=$(root_pids "$1")
		[ -n "$pids" ] || return 0
		kill -"$sig" $pids 2>/dev/null
		for ((i = 0; i < 25; i++)); do
			[ -n "$(root_pids "$1")" ] || return 0
			sleep 0.2
		done
	done
	return 1
}
# Mount points at or under DIR, deepest first.
mounts_under() {
	awk -v p="$1" '{ m = $5; gsub(/\\040/, " ", m)
		if (m == p || index(m, p "/") == 1) print length(m) "\t" m }' /proc/self/mountinfo |
		sort -rn | cut -f2-
}
teardown() {
	local dir=$1 m
	[ -n "$dir" ] && [ -d "$dir" ] || return 0
	kill_root_procs "$dir" || say "warning: processes under $dir survived SIGKILL"
	mounts_under "$dir" | while IFS= read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	if [ -n "$(mounts_under "$dir")" ]; then
		say "warning: still mounted under $dir, left in place"
		return 1
	fi
	rm -rf --one-file-system -- "$dir"
}

finish() {
	local rc=$?
	trap '' TERM INT HUP
	trap - EXIT
	# a signal may arrive while a command's output goes to its log
	exec >&8 2>&8
	if [ -n "$work" ]; then
		if [ -n "$root" ] && [ -n "$(root_pids "$root")" ]; then
			say "cleanup: stopping what still runs in the root: $(root_pids "$root" | tr '\n' ' ')"
		fi
		teardown "$work" || bad "cleanup: could not unmount everything under $work"
	fi
	if [ "$made_policy" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	[ -z "$aborted" ] || say "stopped early: $aborted"
	[ "$failed" != 0 ] || [ "$rc" = 0 ] || bad "internal: stopped with status $rc"
	echo "deb: $pass passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}
on_signal() { aborted="interrupted by signal $1"; failed=$((failed + 1)); exit 1; }
trap finish EXIT
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP

# ---- the host -------------------------------------------------------------------
[ -n "$SRC" ] || abort "setup: no source tree ${1:-$HERE/../..}"
[ -f "$SRC/debian/control" ] || abort "setup: no debian/control in $SRC"
mkdir -p "$CACHE" "$LOGS" || abort "setup: cannot create $CACHE or $LOGS"
# Nothing that apt installs on the host may start a daemon.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	made_policy=1
fi
exec 9>"$CACHE/deb.lock"
flock -w 600 9 || abort "setup: another run holds $CACHE/deb.lock"
for d in "$TMPBASE"/porterd-deb.*; do
	[ -d "$d" ] || continue
	say "removing the leftovers of an earlier run: $d"
	teardown "$d" || abort "setup: could not remove $d"
done
work=$(mktemp -d "$TMPBASE/porterd-deb.XXXXXX") || abort "setup: mktemp in $TMPBASE failed"
hostlog=$LOGS/host-apt.log
: >"$hostlog"

apt_host() {
	apt-get -o DPkg::Lock::Timeout=300 -y --no-install-recommends "$@" \
		>>"$hostlog" 2>&1 </dev/null 8>&- 9>&-
}
# Install the packages that are missing on the host (update the lists first
# when they are empty, or when the install fails with the ones there are).
host_install() {
	local p missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	say "host: installing$missing"
	if [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ]; then
		apt_host update
	fi
	apt_host install $missing || { apt_host update && apt_host install $missing; }
}

say "source $SRC; logs in $LOGS"
t0=$SECONDS
host_install build-essential dpkg-dev debhelper lintian iproute2 git ||
	abort "host: could not install the build tools: $(tail -n 1 "$hostlog")"

# ---- 1. build and lint ----------------------------------------------------------
bdir=$work/build
mkdir -p "$bdir/porterd"
# The tracked files and the new ones that are not ignored, as they are in the
# work tree; a tree without git is copied whole, but for its build products.
if git -c safe.directory='*' -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$SRC" && git -c safe.directory='*' ls-files -co --exclude-standard -z |
		tar --null -T - --ignore-failed-read -cf - 2>/dev/null) |
		tar -xf - -C "$bdir/porterd" || abort "build: could not copy $SRC"
else
	(cd "$SRC" && tar --exclude=./debian/porterd --exclude=./debian/tmp -cf - .) |
		tar -xf - -C "$bdir/porterd" || abort "build: could not copy $SRC"
fi
(cd "$bdir/porterd" && dpkg-checkbuilddeps) >/dev/null 2>&1 || {
	say "host: installing the build dependencies"
	apt_host build-dep "$bdir/porterd" ||
		{ apt_host update && apt_host build-dep "$bdir/porterd"; } ||
		abort "build: could not install the build dependencies (log $hostlog)"
}
buildlog=$LOGS/build.log
say "build: dpkg-buildpackage -us -uc -b"
t1=$SECONDS
(cd "$bdir/porterd" && timeout -k 10 900 dpkg-buildpackage -us -uc -b) \
	>"$buildlog" 2>&1 </dev/null 8>&- 9>&-
brc=$?
deb=$(ls "$bdir"/porterd_*.deb 2>/dev/null | head -n 1)
changes=$(ls "$bdir"/porterd_*.changes 2>/dev/null | head -n 1)
if [ "$brc" != 0 ] || [ -z "$deb" ] || [ -z "$changes" ]; then
	tail_log "$buildlog" 25
	abort "build: dpkg-buildpackage failed (exit $brc; log $buildlog)"
fi
ok "build: $(basename "$deb") in $((SECONDS - t1))s, unit tests $(grep -m1 -E '^# PASS:' "$buildlog" | tr -s ' ' | sed 's/^# //')"

relations_ok() {
	local f
	f=$(dpkg-deb -f "$deb" Provides Conflicts Depends)
	echo "$f" | grep -qx 'Provides: inet-superserver' &&
		echo "$f" | grep -qx 'Conflicts: inet-superserver' &&
		echo "$f" | grep -q '^Depends: .*tcpd' && echo "$f" | grep -q '^Depends: .*update-inetd'
}
check "build: the .deb provides and conflicts with inet-superserver, depends on tcpd and update-inetd" \
	relations_ok

lintlog=$LOGS/lintian.log
timeout -k 10 300 lintian -I --tag-display-limit 0 "$changes" >"$lintlog.raw" 2>&1 </dev/null 8>&- 9>&-
lrc=$?
grep -v 'running with root privileges' "$lintlog.raw" >"$lintlog"
rm -f "$lintlog.raw"
sed 's/^/      /' "$lintlog"
if [ "$lrc" != 0 ] && [ "$lrc" != 1 ]; then
	bad "lintian: did not run through (exit $lrc; log $lintlog)"
elif grep -q '^E: ' "$lintlog"; then
	bad "lintian: $(grep -c '^E: ' "$lintlog") error(s)"
else
	ok "lintian: no error ($(grep -c '^W: ' "$lintlog") warning(s), $(grep -c '^I: ' "$lintlog") info)"
fi

# ---- 2. a fresh bookworm root -----------------------------------------------------
host_source_files() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && echo "$f"
	done
}
# The URI of the host's bookworm archive, from deb822 or one-line sources.
apt_mirror() {
	local f
	for f in $(host_source_files); do
		case $f in
		*.sources)
			awk 'function flush() {
				if (types ~ /(^| )deb( |$)/ && suites ~ /(^| )bookworm( |$)/ && enabled != "no" && uris != "") {
					split(uris, u, " "); print u[1]; done = 1; exit }
				types = suites = uris = enabled = "" }
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{ k = tolower($1); v = $0; sub(/^[^:]*:[ \t]*/, "", v); gsub(/[ \t]+/, " ", v)
			  if (k == "types:") types = v; else if (k == "suites:") suites = v
			  else if (k == "uris:") uris = v; else if (k == "enabled:") enabled = tolower(v) }
			END { if (!done) flush() }' "$f" ;;
		*)
			awk '$1 == "deb" { i = 2
				if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i + 1) == "bookworm") { print $i; exit } }' "$f" ;;
		esac
	done | head -n 1
}
# The host's apt sources, the keyrings they name and its Acquire:: settings.
copy_apt_config() {
	local f k
	rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
	for f in $(host_source_files); do
		case $f in
		/etc/apt/sources.list) cp "$f" "$root/etc/apt/sources.list" ;;
		*) cp "$f" "$root/etc/apt/sources.list.d/" ;;
		esac
		for k in $(sed -n 's/^[[:space:]]*[Ss]igned-[Bb]y:[[:space:]]*\(\/[^[:space:]]*\).*/\1/p;
		                   s/.*signed-by=\(\/[^] ,]*\).*/\1/p' "$f"); do
			[ -f "$k" ] && [ ! -e "$root$k" ] && mkdir -p "$root$(dirname "$k")" && cp "$k" "$root$k"
		done
	done
	[ -f /etc/apt/apt.conf ] && grep -q 'Acquire::' /etc/apt/apt.conf && cp /etc/apt/apt.conf "$root/etc/apt/"
	for f in $(grep -l 'Acquire::' /etc/apt/apt.conf.d/* 2>/dev/null); do
		cp "$f" "$root/etc/apt/apt.conf.d/"
	done
}
# The cached root, in the format of ../shared/fresh-check (a tar.gz of a
# minbase debootstrap, without package lists or downloaded .debs).
ensure_root_tarball() {
	local b=$work/debootstrap mirror rc
	if [ -s "$TARBALL" ] && [ "${DEB_REBUILD_ROOT:-0}" != 1 ] &&
		[ -z "$(find "$TARBALL" -mtime +"$MAXDAYS" 2>/dev/null)" ]; then
		say "root: cached $TARBALL (built $(date -r "$TARBALL" +%F))"
		return 0
	fi
	host_install debootstrap || abort "root: could not install debootstrap (log $hostlog)"
	mirror=$(apt_mirror)
	[ -n "$mirror" ] || abort "root: no 'deb ... bookworm' archive in the host's apt sources"
	say "root: debootstrap --variant=minbase bookworm (about a minute)"
	timeout -k 10 900 debootstrap --variant=minbase bookworm "$b" "$mirror" \
		>"$LOGS/debootstrap.log" 2>&1 </dev/null 8>&- 9>&-
	rc=$?
	mounts_under "$b" | while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	[ "$rc" = 0 ] && [ -x "$b/usr/bin/apt-get" ] ||
		abort "root: debootstrap failed (exit $rc; log $LOGS/debootstrap.log)"
	rm -rf "$b"/var/lib/apt/lists/* "$b"/var/cache/apt/archives/*.deb "$b/etc/apt/sources.list"
	mkdir -p "$b/var/lib/apt/lists/partial"
	tar --numeric-owner -czf "$CACHE/.root.tar.gz.deb-tmp" -C "$b" . &&
		mv -f "$CACHE/.root.tar.gz.deb-tmp" "$TARBALL" || abort "root: could not write $TARBALL"
	teardown "$b" || abort "root: could not remove $b"
}

t1=$SECONDS
ensure_root_tarball
root=$work/root
mkdir -p "$root"
tar --numeric-owner -xzf "$TARBALL" -C "$root" ||
	{ rm -f "$TARBALL"; abort "root: $TARBALL did not unpack (removed; the next run rebuilds it)"; }
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null
copy_apt_config
[ -s "$root/etc/hosts" ] ||
	printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# No package may start its daemon on install: the init script must not start
# porterd there (invoke-rc.d asks policy-rc.d); the test starts it itself.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/debs"
cp "$deb" "$root/debs/"
mount --bind /proc "$root/proc" &&
	mount --bind /dev "$root/dev" &&
	mount --bind /dev/pts "$root/dev/pts" &&
	mount -t tmpfs -o mode=1777,size=256m tmpfs "$root/dev/shm" &&
	mount -t tmpfs -o mode=0755,size=64m tmpfs "$root/run" &&
	mkdir -p "$root/run/lock" && chmod 1777 "$root/run/lock" ||
	abort "root: could not mount /proc, /dev, /run into $root"

# A network namespace of its own, with only lo: porterd and every handler in
# the root listen there, never on the host's ports. A bind mount holds it.
netns=$work/netns
touch "$netns"
unshare --net="$netns" true && nsenter --net="$netns" ip link set lo up ||
	abort "root: could not create a network namespace"

# in_root [-n] SECONDS COMMAND: run COMMAND (bash) in the root, as root with a
# clean environment, in the private network namespace (with -n: in the host's,
# for downloads only). Output goes to stdout.
in_root() {
	local ns=(nsenter --net="$netns" --)
	[ "$1" = -n ] && { ns=(); shift; }
	local t=$1
	shift
	timeout -k 5 "$t" "${ns[@]}" chroot "$root" /usr/bin/env -i HOME=/root USER=root \
		LOGNAME=root TERM=dumb LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/bash -c "$1" </dev/null 8>&- 9>&-
}
# in_root_log NAME SECONDS COMMAND: the same, output to $LOGS/NAME.log
in_root_log() {
	local name=$1
	shift
	in_root "$@" >"$LOGS/$name.log" 2>&1
}
# An apt-get run without errors: exit 0 and no "E:" nor dpkg error line.
apt_clean_log() {
	! grep -qE '^E: |dpkg: error|^dpkg: warning: .*(failed|error)' "$LOGS/$1.log"
}

# Everything step 3 and 4 install, downloaded while the root still reaches the
# archive (the host's network); the installs themselves then run offline, in
# the private network namespace.
pkgs="fingerd finger"
[ "$EXTRA" = 1 ] && pkgs="$pkgs nullidentd micro-httpd curl"
say "root: apt-get update and download ($pkgs and porterd's dependencies)"
in_root_log root-download -n 300 "apt-get -o Acquire::Retries=3 update &&
	apt-get install -y --no-install-recommends --download-only /debs/$(basename "$deb") $pkgs" ||
	{ tail_log "$LOGS/root-download.log"; abort "root: apt-get update/download failed (log $LOGS/root-download.log)"; }
ok "root: fresh bookworm root with its own network namespace, packages downloaded in $((SECONDS - t1))s"

# ---- 3. install and start -----------------------------------------------------------
t1=$SECONDS
in_root_log install-porterd 120 "apt-get install -y --no-install-recommends /debs/$(basename "$deb")"
irc=$?
[ "$irc" = 0 ] || tail_log "$LOGS/install-porterd.log"
check "install: apt-get install ./$(basename "$deb") exits 0 without error" \
	eval '[ "$irc" = 0 ] && apt_clean_log install-porterd'
[ "$irc" = 0 ] || abort "install: porterd did not install (log $LOGS/install-porterd.log)"

dpkg_status() { in_root 10 "dpkg-query -W -f='\${Status}' porterd 2>/dev/null"; }
check "install: dpkg says installed" eval '[ "$(dpkg_status)" = "install ok installed" ]'
check "install: /usr/sbin/porterd runs (-V)" eval 'in_root 10 "/usr/sbin/porterd -V" | grep -q "^porterd "'
# every man page of the source tree, porterd(8) and porterd.conf(5) at least
man_pages_ok() {
	local m n
	[ -f "$root/usr/share/man/man8/porterd.8.gz" ] &&
		[ -f "$root/usr/share/man/man5/porterd.conf.5.gz" ] || return 1
	for m in "$bdir"/porterd/man/*.[1-8]; do
		[ -f "$m" ] || continue
		n=$(basename "$m")
		[ -f "$root/usr/share/man/man${n##*.}/$n.gz" ] || { echo "      missing: $n"; return 1; }
	done
}
check "install: the man pages ($(cd "$bdir/porterd/man" && ls *.[1-8] 2>/dev/null | tr '\n' ' '))" \
	man_pages_ok
conffiles=$(in_root 10 "dpkg-query -W -f='\${Conffiles}\n' porterd" | awk 'NF { print $1 }')
check "install: services.d holds only README and 00-defaults.conf, both conffiles" eval '
	[ "$(ls "$root/etc/porterd/services.d" | tr "\n" " ")" = "00-defaults.conf README " ] &&
	echo "$conffiles" | grep -qx /etc/porterd/services.d/README &&
	echo "$conffiles" | grep -qx /etc/porterd/services.d/00-defaults.conf'
check "install: the example services are in /usr/share/doc/porterd/examples/services.d" \
	eval 'ls "$root"/usr/share/doc/porterd/examples/services.d/*.conf >/dev/null 2>&1'
inetd_conf_fresh() {
	local f=$root/etc/inetd.conf g
	for g in INTERNAL STANDARD BSD MAIL INFO BOOT RPC HAM-RADIO OTHER; do
		grep -q "^#:$g:" "$f" || return 1
	done
	! grep -q '^[^#[:space:]]' "$f" && ! echo "$conffiles" | grep -qx /etc/inetd.conf
}
check "install: /etc/inetd.conf created with its #:GROUP: headers, no active line, not a conffile" \
	inetd_conf_fresh
check "install: porterd.service runs porterd -f -i /etc/inetd.conf, enabled (wants link)" eval '
	grep -q "^ExecStart=/usr/sbin/porterd -f -i /etc/inetd.conf -d /etc/porterd/services.d$" \
		"$root/lib/systemd/system/porterd.service" &&
	grep -q "^Type=notify" "$root/lib/systemd/system/porterd.service" &&
	[ -L "$root/etc/systemd/system/multi-user.target.wants/porterd.service" ]'
check "install: /etc/init.d/porterd, a conffile with an LSB header, in the runlevels" eval '
	[ -x "$root/etc/init.d/porterd" ] && grep -q "^### BEGIN INIT INFO" "$root/etc/init.d/porterd" &&
	echo "$conffiles" | grep -qx /etc/init.d/porterd &&
	ls "$root"/etc/rc2.d/S*porterd >/dev/null 2>&1 && ls "$root"/etc/rc0.d/K*porterd >/dev/null 2>&1'
check "install: porterd was not started by the install (policy-rc.d)" eval '[ -z "$(porterd_pids)" ]'

tlog=$LOGS/porterd-t.log
in_root 20 "porterd -t -i /etc/inetd.conf -d /etc/porterd/services.d" >"$tlog" 2>&1
trc=$?
[ "$trc" = 0 ] || tail_log "$tlog" 5
check "config: porterd -t -i /etc/inetd.conf -d /etc/porterd/services.d exits 0 (got $trc)" \
	test "$trc" = 0

# The pid in /run/porterd.pid, if that process is porterd in the root.
daemon_pid() {
	local p
	p=$(cat "$root/run/porterd.pid" 2>/dev/null) || return 1
	case $p in '' | *[!0-9]*) return 1 ;; esac
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = porterd ] || return 1
	[ "$(readlink "/proc/$p/root")" = "$root" ] || return 1
	echo "$p"
}
# wait_for SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}
listening() { nsenter --net="$netns" ss -Hltnu 2>/dev/null; }

in_root_log init-start 30 "/etc/init.d/porterd start"
src=$?
[ "$src" = 0 ] || tail_log "$LOGS/init-start.log" 5
check "start: /etc/init.d/porterd start exits 0 (got $src)" test "$src" = 0
if wait_for 10 daemon_pid >/dev/null; then
	pid=$(daemon_pid)
	ok "start: /run/porterd.pid names the running porterd (pid $pid)"
else
	pid=""
	bad "start: no running porterd in /run/porterd.pid after 10 s"
fi
check "start: porterd runs in the root's network namespace, not the host's" eval '
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$(nsenter --net="$netns" readlink /proc/self/ns/net)" ] &&
	[ "$(readlink "/proc/$pid/ns/net")" != "$(readlink /proc/self/ns/net)" ]'
check "start: /etc/init.d/porterd status exits 0" eval 'in_root 10 "/etc/init.d/porterd status" >/dev/null 2>&1'
lst=$(listening)
[ -z "$lst" ] || echo "$lst" | sed 's/^/      | /'
check "start: nothing listens (nothing is declared)" test -z "$lst"
check "start: reload keeps the same porterd" eval '
	in_root 20 "/etc/init.d/porterd reload" >"$LOGS/init-reload.log" 2>&1 &&
	[ -n "$pid" ] && [ "$(daemon_pid)" = "$pid" ]'
# restart: a new porterd; a broken file: restart and reload refuse, and the
# running porterd stays.
restart_ok() {
	local old=$pid
	in_root 30 "/etc/init.d/porterd restart" >"$LOGS/init-restart.log" 2>&1 &&
		wait_for 10 daemon_pid >/dev/null && pid=$(daemon_pid) && [ "$pid" != "$old" ]
}
check "restart: /etc/init.d/porterd restart starts a new porterd" restart_ok
broken_refused() {
	local rc1 rc2
	printf '[broken]\nlisten = nowhere\nexec = /bin/true\n' >"$root/etc/porterd/services.d/99-broken.conf"
	in_root 30 "/etc/init.d/porterd restart" >"$LOGS/init-restart-broken.log" 2>&1
	rc1=$?
	in_root 30 "/etc/init.d/porterd reload" >"$LOGS/init-reload-broken.log" 2>&1
	rc2=$?
	rm -f "$root/etc/porterd/services.d/99-broken.conf"
	[ "$rc1" = 1 ] && [ "$rc2" = 1 ] && grep -q '99-broken.conf:' "$LOGS/init-restart-broken.log" &&
		[ -n "$pid" ] && [ "$(daemon_pid)" = "$pid" ]
}
check "restart: with a broken services.d, restart and reload fail, print FILE:LINE, keep porterd" \
	broken_refused
say "step 3 took $((SECONDS - t1))s"

# ---- 4. real inetd.conf services ------------------------------------------------------
t1=$SECONDS
# port_closed PORT: a TCP connection to 127.0.0.1:PORT in the namespace is refused.
port_closed() {
	! in_root 5 "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}
finger_answers() {
	in_root 5 "finger root@127.0.0.1" 2>&1 | grep -q '^Login: root'
}
in_root_log install-fingerd 120 "apt-get install -y --no-install-recommends fingerd finger"
frc=$?
check "fingerd: apt-get install fingerd finger exits 0 without error (got $frc)" \
	eval '[ "$frc" = 0 ] && apt_clean_log install-fingerd'
check "fingerd: update-inetd added an active finger line to /etc/inetd.conf" \
	grep -qE '^finger[[:space:]].*in\.fingerd' "$root/etc/inetd.conf"
check "fingerd: finger root@127.0.0.1 answers within 10 s" wait_for 10 finger_answers
check "fingerd: port 79 is porterd's, and porterd was not restarted" eval '
	nsenter --net="$netns" ss -Hltnp "sport = :79" | grep -q "\"porterd\",pid=$pid," &&
	[ -n "$pid" ] && [ "$(daemon_pid)" = "$pid" ]'
in_root_log disable-finger 30 "update-inetd --disable finger"
check "fingerd: update-inetd --disable finger: the port closes within 10 s" eval '
	grep -q "^#<off># finger" "$root/etc/inetd.conf" && wait_for 10 port_closed 79'
in_root_log enable-finger 30 "update-inetd --enable finger"
check "fingerd: update-inetd --enable finger: answers again within 10 s" wait_for 10 finger_answers
in_root_log purge-fingerd 120 "apt-get purge -y fingerd"
prc=$?
check "fingerd: apt-get purge fingerd exits 0 without error (got $prc)" \
	eval '[ "$prc" = 0 ] && apt_clean_log purge-fingerd'
check "fingerd: after the purge the port closes within 10 s" wait_for 10 port_closed 79
# fingerd's postrm runs update-inetd --remove "finger<TAB>.*<TAB>/usr/sbin/in\.fingerd",
# which matches only if blanks follow in.fingerd: its own line, which ends
# there, is left disabled ("#<off># finger ..."), whatever the inetd (fingerd
# 0.17-17's bug, not porterd's). So: no active line, and nothing else.
check "fingerd: after the purge no active finger line is left in /etc/inetd.conf" \
	eval '! grep -qE "^finger[[:space:]]" "$root/etc/inetd.conf"'
if grep -qE '^#<off># finger[[:space:]]' "$root/etc/inetd.conf"; then
	say "note: fingerd's purge left its disabled line: $(grep -E '^#<off># finger' "$root/etc/inetd.conf" | tr '\t' ' ')"
fi

if [ "$EXTRA" = 1 ]; then
	# nullidentd: an ident line without tcpd, under the service name "ident"
	# (an alias of auth/113 in /etc/services).
	ident_answers() {
		in_root 5 'exec 3<>/dev/tcp/127.0.0.1/113 && printf "80, 4242\r\n" >&3 &&
			timeout 3 head -n 1 <&3' 2>/dev/null | grep -q 'USERID'
	}
	in_root_log install-nullidentd 120 "apt-get install -y --no-install-recommends nullidentd"
	nrc=$?
	check "nullidentd: apt-get install nullidentd exits 0 without error (got $nrc)" \
		eval '[ "$nrc" = 0 ] && apt_clean_log install-nullidentd'
	check "nullidentd: an ident query on port 113 gets a USERID answer within 10 s" \
		wait_for 10 ident_answers
	in_root_log purge-nullidentd 120 "apt-get purge -y nullidentd"
	nprc=$?
	check "nullidentd: purged, the port closes within 10 s and its line is gone" eval '
		[ "$nprc" = 0 ] && apt_clean_log purge-nullidentd && wait_for 10 port_closed 113 &&
		! grep -qE "^(#<off># )?ident[[:space:]]" "$root/etc/inetd.conf"'

	# micro-httpd: a www (port 80) line, user:group, through tcpd; curl is the client.
	http_answers() {
		in_root 8 "curl -sS --max-time 3 http://127.0.0.1/index.html" 2>/dev/null |
			grep -q 'porterd-deb-test'
	}
	in_root_log install-micro-httpd 120 "apt-get install -y --no-install-recommends micro-httpd curl &&
		mkdir -p /var/www/html && echo porterd-deb-test >/var/www/html/index.html"
	mrc=$?
	check "micro-httpd: apt-get install micro-httpd curl exits 0 without error (got $mrc)" \
		eval '[ "$mrc" = 0 ] && apt_clean_log install-micro-httpd'
	check "micro-httpd: curl http://127.0.0.1/ gets the page within 10 s" wait_for 10 http_answers
	in_root_log purge-micro-httpd 120 "apt-get purge -y micro-httpd"
	mprc=$?
	check "micro-httpd: purged, port 80 closes within 10 s and its line is gone" eval '
		[ "$mprc" = 0 ] && apt_clean_log purge-micro-httpd && wait_for 10 port_closed 80 &&
		! grep -qE "^(#<off># )?www[[:space:]].*micro-httpd" "$root/etc/inetd.conf"'
fi
check "porterd: the same daemon served all of step 4 (never restarted)" \
	eval '[ -n "$pid" ] && [ "$(daemon_pid)" = "$pid" ]'
say "step 4 took $((SECONDS - t1))s"

# ---- 5. stop, remove, purge -----------------------------------------------------------------
t1=$SECONDS
in_root_log init-stop 30 "/etc/init.d/porterd stop"
strc=$?
check "stop: /etc/init.d/porterd stop exits 0 (got $strc)" test "$strc" = 0
check "stop: no porterd process left within 10 s, pid file gone" eval '
	wait_for 10 eval "[ -z \"\$(porterd_pids)\" ]" && [ ! -e "$root/run/porterd.pid" ]'
check "stop: nothing listens" eval '[ -z "$(listening)" ]'

in_root_log remove-porterd 120 "apt-get remove -y porterd"
rrc=$?
check "remove: apt-get remove porterd exits 0 without error (got $rrc)" \
	eval '[ "$rrc" = 0 ] && apt_clean_log remove-porterd'
check "remove: /usr/sbin/porterd is gone, the conffiles stay (config-files)" eval '
	[ ! -e "$root/usr/sbin/porterd" ] && [ -f "$root/etc/porterd/services.d/README" ] &&
	[ "$(dpkg_status)" = "deinstall ok config-files" ]'
# A line still on keeps /etc/inetd.conf at the purge; with none, it goes.
active_before_purge=no
grep -q '^[^#[:space:]]' "$root/etc/inetd.conf" 2>/dev/null && active_before_purge=yes
in_root_log purge-porterd 120 "apt-get purge -y porterd"
pprc=$?
check "purge: apt-get purge porterd exits 0 without error (got $pprc)" \
	eval '[ "$pprc" = 0 ] && apt_clean_log purge-porterd'
check "purge: /etc/porterd, the init script, its rc links and the unit's links are gone" eval '
	[ ! -e "$root/etc/porterd" ] && [ ! -e "$root/etc/init.d/porterd" ] &&
	! ls "$root"/etc/rc?.d/*porterd >/dev/null 2>&1 &&
	[ ! -e "$root/etc/systemd/system/multi-user.target.wants/porterd.service" ]'
check "purge: dpkg shows porterd as not installed" eval '
	st=$(dpkg_status); [ -z "$st" ] || [ "$st" = "unknown ok not-installed" ]'
if [ "$active_before_purge" = yes ]; then
	check "purge: /etc/inetd.conf, with a line on, stays" test -f "$root/etc/inetd.conf"
else
	check "purge: /etc/inetd.conf, with no line on, is gone (as openbsd-inetd's purge does)" \
		test ! -e "$root/etc/inetd.conf"
fi
check "purge: no porterd process in the root" eval '[ -z "$(porterd_pids)" ]'
say "step 5 took $((SECONDS - t1))s; the whole run $((SECONDS - t0))s"
exit 0
