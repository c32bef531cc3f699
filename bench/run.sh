#!/usr/bin/env bash
# bench/run.sh: porterd against the floor (the smallest correct fork-per-connection
# server) and against the inetds that are installed, in interleaved rounds; then
# porterd alone: scaling with the number of services (to 10,000), reload latency,
# serving during reloads, memory, and thousands of held connections; then TLS:
# porterd tls = yes against stunnel4, as ratios to plaintext porterd.
# Measurement only: nothing here passes or fails on a number.
#
# usage: bench/run.sh [--quick] [--dynamic] [--rounds N] [--secs S] [--conc "1 8 64"]
#                     [--only "floor porterd ..."] [--rss-conns N] [--rss-secs S] [--no-scale]
#                     [--no-reload] [--no-gap] [--no-hold] [--no-huge] [--scale-sizes "..."]
#                     [--reload-sizes "..."] [--gap-sizes "..."] [--hold-sizes "..."]
#                     [--no-tls] [--tls-only] [--no-install] [--no-plot]
# See bench/README.
set -uo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD=$BENCH/build
RUN=$BENCH/.run
PEERS=$BENCH/.peers
PORTERD=${PORTERD:-$ROOT/src/porterd}
RESULTS=$BENCH/results.json
RAW=$RUN/raw.jsonl

# Defaults: a full run in about eleven minutes on two cores.
ROUNDS=5 SECS=2 CONC="1 8 64" SCALE_CONC="1 8 64" SCALE_ROUNDS=3 RSS_CONNS=100000
RELOAD_REPS=5 RELOAD_SIZES="10 100 1000 10000" SCALE_SIZES="1 100 1000 10000" RSS_SECS=200
GAP_SIZES="1000 10000" GAP_REPS=5 GAP_SLOT=0.5 HOLD_SIZES="1000 5000 10000" HOLD_SECS=1
HANDLER_KIND=static ONLY="" DO_SCALE=1 DO_RELOAD=1 DO_INSTALL=1 DO_PLOT=1 QUICK=0
DO_GAP=1 DO_HOLD=1 HUGE=1
# The TLS phase: its rounds (--rounds sets both), the transfer, the held connections.
DO_TLS=1 TLS_ONLY=0 TLS_ROUNDS=3 TLS_BYTES=104857600 TLS_TRANSFERS=3 TLS_HOLD=100
CONN_TIMEOUT=5

usage() {
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ROUNDS=1 SECS=1 SCALE_CONC="8" SCALE_ROUNDS=1 RSS_CONNS=10000
		RSS_SECS=30 RELOAD_REPS=3 SCALE_SIZES="1 1000 10000" RELOAD_SIZES="10 1000 10000"
		GAP_REPS=3 HOLD_SIZES="1000 10000" HOLD_SECS=0.5 TLS_ROUNDS=1 ;;
	--dynamic) HANDLER_KIND=dynamic ;;
	--rounds) ROUNDS=$2 TLS_ROUNDS=$2; shift ;;
	--secs) SECS=$2; shift ;;
	--conc) CONC=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--rss-conns) RSS_CONNS=$2; shift ;;
	--rss-secs) RSS_SECS=$2; shift ;;
	--no-scale) DO_SCALE=0 ;;
	--no-reload) DO_RELOAD=0 ;;
	--no-gap) DO_GAP=0 ;;
	--no-hold) DO_HOLD=0 ;;
	--no-tls) DO_TLS=0 ;;
	--tls-only) TLS_ONLY=1 ;;
	--no-huge) HUGE=0 ;;
	--scale-sizes) SCALE_SIZES=$2; shift ;;
	--reload-sizes) RELOAD_SIZES=$2; shift ;;
	--gap-sizes) GAP_SIZES=$2; shift ;;
	--hold-sizes) HOLD_SIZES=$2; shift ;;
	--no-install) DO_INSTALL=0 ;;
	--no-plot) DO_PLOT=0 ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option $1" >&2; usage 100 ;;
	esac
	shift
done

say() { printf '%s\n' "$*" >&2; }
T_START=$(date +%s)

# at_most MAX WORDS...: the numbers among WORDS that are MAX or less.
at_most() {
	local max=$1 w out=""
	shift
	for w in "$@"; do
		[ "$w" -le "$max" ] && out+="$w "
	done
	printf '%s' "${out% }"
}
# --no-huge: nothing above 1,000 services or held connections.
if [ "$HUGE" = 0 ]; then
	SCALE_SIZES=$(at_most 1000 $SCALE_SIZES) RELOAD_SIZES=$(at_most 1000 $RELOAD_SIZES)
	GAP_SIZES=$(at_most 1000 $GAP_SIZES) HOLD_SIZES=$(at_most 1000 $HOLD_SIZES)
fi

# Descriptors: porterd raises its soft limit to the hard one at start, and needs
# one per service and then some; holder needs one per held connection. Make the
# hard limit (only the hard one: the soft limit every contender starts with stays
# as it was) big enough for the largest size, raising it when root; else
# leave out the sizes it cannot hold, and say so.
largest=0
for w in $SCALE_SIZES $RELOAD_SIZES $GAP_SIZES $HOLD_SIZES; do
	[ "$w" -gt "$largest" ] && largest=$w
done
FD_NEED=$((largest + 1024))
FD_HARD=$(ulimit -Hn)
FD_NOTE="hard fd limit $FD_HARD, enough"
if [ "$FD_HARD" != unlimited ] && [ "$FD_HARD" -lt "$FD_NEED" ]; then
	if [ "$(id -u)" = 0 ] && ulimit -Hn "$FD_NEED" 2>/dev/null; then
		FD_NOTE="hard fd limit raised from $FD_HARD to $FD_NEED"
		FD_HARD=$FD_NEED
	else
		fit=$((FD_HARD - 1024))
		FD_NOTE="hard fd limit $FD_HARD < $FD_NEED and cannot be raised (that needs root with CAP_SYS_RESOURCE):"
		FD_NOTE+=" sizes above $fit left out"
		SCALE_SIZES=$(at_most "$fit" $SCALE_SIZES) RELOAD_SIZES=$(at_most "$fit" $RELOAD_SIZES)
		GAP_SIZES=$(at_most "$fit" $GAP_SIZES) HOLD_SIZES=$(at_most "$fit" $HOLD_SIZES)
	fi
fi
say "$FD_NOTE (largest size $largest)"

# ---- peers: install what is missing (the package scripts cannot start daemons:
# /usr/sbin/policy-rc.d says no), and unpack openbsd-inetd, which conflicts with
# xinetd as a package, into .peers/ to use its binary without installing it.
policy_blocks_daemons() {
	[ -x /usr/sbin/policy-rc.d ] && { /usr/sbin/policy-rc.d >/dev/null 2>&1; [ $? -eq 101 ]; }
}

setup_peers() {
	local want=()
	if [ "$TLS_ONLY" = 0 ]; then
		command -v xinetd >/dev/null || want+=(xinetd)
		command -v tcpserver >/dev/null || want+=(ucspi-tcp)
		command -v gnuplot >/dev/null || want+=(gnuplot-nox)
	fi
	# stunnel4 ships a daemon: policy-rc.d keeps its scripts from starting it.
	[ "$DO_TLS" = 1 ] && ! command -v stunnel4 >/dev/null && want+=(stunnel4)
	if [ ${#want[@]} -gt 0 ]; then
		if [ "$DO_INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && policy_blocks_daemons; then
			say "installing ${want[*]}"
			apt-get install -y -q "${want[@]}" >"$RUN/apt.log" 2>&1 ||
			    { apt-get update -q >>"$RUN/apt.log" 2>&1 &&
			      apt-get install -y -q "${want[@]}" >>"$RUN/apt.log" 2>&1; } ||
			    say "apt-get install ${want[*]} failed; see $RUN/apt.log"
		else
			say "not installing ${want[*]} (--no-install, not root, or no policy-rc.d" \
			    "that stops package scripts from starting daemons)"
		fi
	fi
	if [ "$TLS_ONLY" = 0 ] && ! openbsd_inetd >/dev/null && [ "$DO_INSTALL" = 1 ]; then
		mkdir -p "$PEERS/debs"
		say "fetching openbsd-inetd into $PEERS (unpacked, not installed)"
		if (cd "$PEERS/debs" && apt-get download openbsd-inetd >"$RUN/apt-download.log" 2>&1); then
			dpkg-deb -x "$(ls -t "$PEERS"/debs/openbsd-inetd_*.deb | head -1)" "$PEERS"
		else
			say "apt-get download openbsd-inetd failed; see $RUN/apt-download.log"
		fi
	fi
}

# The openbsd-inetd binary: the installed package's, else the unpacked one.
openbsd_inetd() {
	if dpkg-query -W -f='${Status}' openbsd-inetd 2>/dev/null | grep -q 'ok installed'; then
		echo /usr/sbin/inetd
	elif [ -x "$PEERS/usr/sbin/inetd" ]; then
		echo "$PEERS/usr/sbin/inetd"
	else
		return 1
	fi
}

have_busybox_inetd() {
	command -v busybox >/dev/null && busybox inetd --help 2>&1 | grep -q -i 'usage'
}

# ---- contenders: NAME, port; start_NAME writes its configuration and starts it.
declare -A PORT=([floor]=20001 [floor-fork]=20002 [porterd]=20003 [xinetd]=20004
    [openbsd-inetd]=20005 [tcpserver]=20006 [busybox-inetd]=20007
    [systemd-socket-activate]=20008 [floor-posix-spawn]=20009 [floor-nosetsid]=20010
    [porterd-fork]=20014 [porterd-nocgroup]=20015)
ALL="floor floor-posix-spawn floor-fork floor-nosetsid porterd porterd-nocgroup porterd-fork xinetd
    openbsd-inetd tcpserver busybox-inetd systemd-socket-activate"
declare -A PID=() HOW=() MISSING=()
SERVED_PORTERD=0	# connections porterd has answered (ok), for the RSS figures

# The floors: bench/floor.c built four ways (see its header).
start_floor_variant() {	# NAME PORT
	HOW[$1]="$BUILD/$1 $2 $HANDLER"
	"$BUILD/$1" "$2" "$HANDLER" </dev/null >"$RUN/$1.log" 2>&1 &
	PID[$1]=$!
}
start_floor() { start_floor_variant floor "$1"; }
start_floor-posix-spawn() { start_floor_variant floor-posix-spawn "$1"; }
start_floor-fork() { start_floor_variant floor-fork "$1"; }
start_floor-nosetsid() { start_floor_variant floor-nosetsid "$1"; }

# porterd_dir DIR PORT NFILLERS: one TCP service on PORT plus NFILLERS services
# on unix sockets (the loopback port range of this benchmark is 1,000 ports).
porterd_dir() {
	local dir=$1 port=$2 n=$3 i
	rm -rf "$dir"
	mkdir -p "$dir/sock"
	printf '[bench]\nlisten = 127.0.0.1:%s\nexec = %s\n' "$port" "$HANDLER" >"$dir/000-bench.conf"
	for ((i = 1; i <= n; i++)); do
		printf -v f %04d "$i"	# no subshell: 10,000 of them would take seconds
		printf '[filler%s]\nlisten = unix:%s/sock/f%s.sock\nexec = %s\n' \
		    "$f" "$dir" "$f" "$HANDLER" >"$dir/f$f.conf"
	done
	# As an admin's files are: written a while ago. porterd does not read again
	# a file unchanged since the last load, once its times are 2 s old.
	find "$dir" -maxdepth 1 -name '*.conf' -exec touch -d '@'"$(( $(date +%s) - 60 ))" {} +
}

start_porterd() {
	local dir=$RUN/porterd.d
	porterd_dir "$dir" "$1" 0
	HOW[porterd]="$PORTERD -f -d $dir   ($dir/000-bench.conf: [bench] listen = 127.0.0.1:$1, exec = $HANDLER; every other key default)"
	"$PORTERD" -f -d "$dir" </dev/null >"$RUN/porterd.log" 2>&1 &
	PID[porterd]=$!
}

# The same, starting handlers with fork() (PORTERD_SPAWN=fork): what vfork buys.
start_porterd-fork() {
	local dir=$RUN/porterd-fork.d
	porterd_dir "$dir" "$1" 0
	HOW[porterd-fork]="PORTERD_SPAWN=fork $PORTERD -f -d $dir   (as porterd, on port $1)"
	PORTERD_SPAWN=fork "$PORTERD" -f -d "$dir" </dev/null >"$RUN/porterd-fork.log" 2>&1 &
	PID[porterd-fork]=$!
}

# The same without containment (-g none): what a cgroup per connection costs.
start_porterd-nocgroup() {
	local dir=$RUN/porterd-nocgroup.d
	porterd_dir "$dir" "$1" 0
	HOW[porterd-nocgroup]="$PORTERD -f -g none -d $dir   (as porterd, on port $1)"
	"$PORTERD" -f -g none -d "$dir" </dev/null >"$RUN/porterd-nocgroup.log" 2>&1 &
	PID[porterd-nocgroup]=$!
}

start_xinetd() {
	local conf=$RUN/xinetd.conf
	{
		printf 'defaults\n{\n}\n'
		printf 'service porterd-bench\n{\n'
		printf '\t%-15s = %s\n' type UNLISTED socket_type stream protocol tcp port "$1" \
		    bind 127.0.0.1 wait no user root server "$HANDLER" instances UNLIMITED \
		    per_source UNLIMITED cps "1000000 1" log_on_success "" log_on_failure ""
		printf '}\n'
	} >"$conf"
	HOW[xinetd]="xinetd -dontfork -f $conf -filelog $RUN/xinetd.filelog   (service: type = UNLISTED, socket_type = stream, protocol = tcp, port = $1, bind = 127.0.0.1, wait = no, user = root, server = $HANDLER, instances = UNLIMITED, per_source = UNLIMITED, cps = 1000000 1, log_on_success and log_on_failure empty)"
	xinetd -dontfork -f "$conf" -filelog "$RUN/xinetd.filelog" </dev/null >"$RUN/xinetd.log" 2>&1 &
	PID[xinetd]=$!
}

start_openbsd-inetd() {
	local conf=$RUN/openbsd-inetd.conf bin
	bin=$(openbsd_inetd)
	# .max is per minute: above anything a run reaches, so it never trips.
	echo "127.0.0.1:$1 stream tcp nowait.1000000000 root $HANDLER handler" >"$conf"
	HOW[openbsd-inetd]="$bin -i -q 4096 $conf   (line: 127.0.0.1:$1 stream tcp nowait.1000000000 root $HANDLER handler)"
	"$bin" -i -q 4096 "$conf" </dev/null >"$RUN/openbsd-inetd.log" 2>&1 &
	PID[openbsd-inetd]=$!
}

start_tcpserver() {
	HOW[tcpserver]="tcpserver -c 1000 -b 4096 -HRl0 127.0.0.1 $1 $HANDLER"
	tcpserver -c 1000 -b 4096 -HRl0 127.0.0.1 "$1" "$HANDLER" </dev/null >"$RUN/tcpserver.log" 2>&1 &
	PID[tcpserver]=$!
}

start_busybox-inetd() {
	local conf=$RUN/busybox-inetd.conf
	echo "127.0.0.1:$1 stream tcp nowait root $HANDLER handler" >"$conf"
	HOW[busybox-inetd]="busybox inetd -f -e -q 4096 -R 0 $conf   (line: 127.0.0.1:$1 stream tcp nowait root $HANDLER handler)"
	busybox inetd -f -e -q 4096 -R 0 "$conf" </dev/null >"$RUN/busybox-inetd.log" 2>&1 &
	PID[busybox-inetd]=$!
}

start_systemd-socket-activate() {
	HOW[systemd-socket-activate]="SYSTEMD_LOG_LEVEL=warning systemd-socket-activate --inetd -a -l 127.0.0.1:$1 $HANDLER   (the log level only silences its per-connection info lines)"
	SYSTEMD_LOG_LEVEL=warning systemd-socket-activate --inetd -a -l "127.0.0.1:$1" "$HANDLER" \
	    </dev/null >"$RUN/systemd-socket-activate.log" 2>&1 &
	PID[systemd-socket-activate]=$!
}

available() {
	case $1 in
	floor|floor-*) return 0 ;;
	porterd|porterd-fork|porterd-nocgroup) [ -x "$PORTERD" ] || { MISSING[$1]="$PORTERD missing: build it (./configure && make)"; return 1; } ;;
	xinetd) command -v xinetd >/dev/null || { MISSING[$1]="not installed"; return 1; } ;;
	openbsd-inetd) openbsd_inetd >/dev/null || { MISSING[$1]="not installed, and not fetched"; return 1; } ;;
	tcpserver) command -v tcpserver >/dev/null || { MISSING[$1]="ucspi-tcp not installed"; return 1; } ;;
	busybox-inetd) have_busybox_inetd || { MISSING[$1]="busybox has no inetd applet (Debian builds busybox and busybox-static without it)"; return 1; } ;;
	systemd-socket-activate) command -v systemd-socket-activate >/dev/null || { MISSING[$1]="not installed"; return 1; } ;;
	esac
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; only ever the pid we started.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		# A zombie child of ours still answers kill -0 until waited for.
		[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] &&
	    kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

EXTRA_PIDS=()
# forget_pid PID: stopped, so never signalled again (10,000 handlers recycle pids fast).
forget_pid() {
	local p keep=()
	for p in "${EXTRA_PIDS[@]}"; do
		[ "$p" != "$1" ] && keep+=("$p")
	done
	EXTRA_PIDS=("${keep[@]}")
}
cleanup() {
	local p
	for p in "${PID[@]}" "${EXTRA_PIDS[@]}" ${TLS_PID[@]+"${TLS_PID[@]}"}; do
		[ -n "$p" ] && stop_pid "$p"
	done
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# The daemon's own CPU time (user + system, not its children's), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# load PHASE NAME PORT ROUND C [extra loadgen args]: one measured run, one raw line.
load() {
	local phase=$1 name=$2 port=$3 round=$4 c=$5 json human ok t0=0 ticks=-1
	shift 5
	[ -n "${PID[$name]:-}" ] && t0=$(cpu_ticks "${PID[$name]}")
	json=$("$BUILD/loadgen" -c "$c" -n 100000000 -d "$SECS" -t "$CONN_TIMEOUT" "$@" \
	    "127.0.0.1:$port" 2>"$RUN/loadgen.err")
	[ -n "${PID[$name]:-}" ] && ticks=$(( $(cpu_ticks "${PID[$name]}") - t0 ))
	human=$(cat "$RUN/loadgen.err")
	if [ -z "$json" ]; then
		say "  loadgen failed: $human"
		return
	fi
	printf '{"phase":"%s","contender":"%s","round":%d,"c":%d,"daemon_cpu_ticks":%d,"result":%s}\n' \
	    "$phase" "$name" "$round" "$c" "$ticks" "$json" >>"$RAW"
	ok=$(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$json")
	printf '  %-6s r%d c=%-3d %-24s %s; daemon CPU %s us/conn\n' "$phase" "$round" "$c" "$name" \
	    "${human#*: }" "$(awk -v t="$ticks" -v n="${ok:-0}" -v hz="$(getconf CLK_TCK)" \
	    'BEGIN { if (t < 0 || n == 0) print "-"; else printf "%.1f", t * 1e6 / hz / n }')" >&2
	if [ "$name" = porterd ]; then
		SERVED_PORTERD=$((SERVED_PORTERD + ok))
	fi
}

# rotate N WORDS...: the words, starting at the Nth (mod count), so that no
# contender always runs first or right after the same one.
rotate() {
	local n=$1 a
	shift
	a=("$@")
	local k=$(( n % ${#a[@]} )) i
	for ((i = 0; i < ${#a[@]}; i++)); do
		printf '%s ' "${a[(k + i) % ${#a[@]}]}"
	done
}

record_rss() {	# record_rss LABEL CONNS PID
	printf '{"phase":"rss","label":"%s","connections":%d,"rss_kb":%d,"fds":%d}\n' \
	    "$1" "$2" "$(rss_kb "$3")" "$(nfds "$3")" >>"$RAW"
	say "  rss    porterd $1: $(rss_kb "$3") kB, $(nfds "$3") fds, after $2 connections"
}

# ---- TLS: the same tiny handler over TLS, one ECDSA P-256 certificate for all.
# Each contender serves three services: the rate one (HANDLER, "hello\n"), the
# transfer (bench/bulk: TLS_BYTES zero bytes) and the held one (bench/hold).
# Ports: 2400x rate, 2401x transfer, 2402x held; x = 1 plaintext porterd (the
# reference), 2 porterd tls = yes, 3 stunnel4 daemon, 4 porterd + stunnel4 inetd,
# 5 tls-floor (the ceiling: TLS alone, no process per connection), 6 tls-floor-exec
# (the ceiling with a handler: pre-forked TLS workers that start the handler).
TLS_ALL="porterd-plain porterd-tls stunnel porterd+stunnel tls-floor tls-floor-exec"
declare -A TLS_PORT=([porterd-plain]=24001 [porterd-tls]=24002 [stunnel]=24003
    [porterd+stunnel]=24004 [tls-floor]=24005 [tls-floor-exec]=24006)
declare -A TLS_PID=() TLS_HOW=()
STUNNEL=""

# tls_services DIR BASE TLS: porterd's three services, plaintext or tls = yes.
tls_services() {
	local dir=$1 base=$2 tls=$3 kind port exec
	rm -rf "$dir"
	mkdir -p "$dir"
	for kind in rate bulk hold; do
		case $kind in
		rate) port=$base exec=$HANDLER ;;
		bulk) port=$((base + 10)) exec=$BUILD/bulk ;;
		hold) port=$((base + 20)) exec=$BUILD/hold ;;
		esac
		{
			printf '[%s]\nlisten = 127.0.0.1:%s\nexec = %s\n' "$kind" "$port" "$exec"
			[ "$tls" = yes ] && printf 'tls = yes\ntls_cert = %s\ntls_key = %s\n' \
			    "$RUN/tls-cert.pem" "$RUN/tls-key.pem"
		} >"$dir/$kind.conf"
	done
}

start_tls_porterd-plain() {
	tls_services "$RUN/tls-plain.d" "$1" no
	TLS_HOW[porterd-plain]="$PORTERD -f -d $RUN/tls-plain.d   (services rate, bulk, hold on 127.0.0.1:$1, $(($1 + 10)), $(($1 + 20)): listen, exec; every other key default)"
	"$PORTERD" -f -d "$RUN/tls-plain.d" </dev/null >"$RUN/tls-porterd-plain.log" 2>&1 &
	TLS_PID[porterd-plain]=$!
}

start_tls_porterd-tls() {
	tls_services "$RUN/tls-tls.d" "$1" yes
	TLS_HOW[porterd-tls]="$PORTERD -f -d $RUN/tls-tls.d   (as porterd-plain on $1, $(($1 + 10)), $(($1 + 20)), plus tls = yes, tls_cert = $RUN/tls-cert.pem, tls_key = $RUN/tls-key.pem)"
	"$PORTERD" -f -d "$RUN/tls-tls.d" </dev/null >"$RUN/tls-porterd-tls.log" 2>&1 &
	TLS_PID[porterd-tls]=$!
}

# stunnel_conf FILE EXEC ARGV0 [PORT]: appends a daemon's service on PORT; without
# PORT the file is for inetd mode (no accept, the service in the global section).
stunnel_conf() {
	{
		[ -n "${4:-}" ] && printf '[%s]\naccept = 127.0.0.1:%s\n' "$3" "$4"
		printf 'cert = %s\nkey = %s\nexec = %s\nexecArgs = %s\n' \
		    "$RUN/tls-cert.pem" "$RUN/tls-key.pem" "$2" "$3"
	} >>"$1"
}

# Only errors logged: the default level, notice, logs every connection.
STUNNEL_GLOBAL='debug = err\npid =\n'

start_tls_stunnel() {
	local conf=$RUN/tls-stunnel.conf
	printf "$STUNNEL_GLOBAL"'foreground = yes\n' >"$conf"
	stunnel_conf "$conf" "$HANDLER" handler "$1"
	stunnel_conf "$conf" "$BUILD/bulk" bulk $(($1 + 10))
	stunnel_conf "$conf" "$BUILD/hold" hold $(($1 + 20))
	TLS_HOW[stunnel]="$STUNNEL $conf   (daemon, as root, no setuid; foreground = yes, pid = (none), debug = err; services [handler], [bulk], [hold]: accept = 127.0.0.1:$1, $(($1 + 10)), $(($1 + 20)), cert, key, exec, execArgs)"
	"$STUNNEL" "$conf" </dev/null >"$RUN/tls-stunnel.log" 2>&1 &
	TLS_PID[stunnel]=$!
}

# porterd runs stunnel4 as the handler, in inetd mode (a file without accept).
start_tls_porterd+stunnel() {
	local dir=$RUN/tls-pstunnel.d kind port exec
	rm -rf "$dir"
	mkdir -p "$dir"
	for kind in rate bulk hold; do
		case $kind in
		rate) port=$1 exec=$HANDLER ;;
		bulk) port=$(($1 + 10)) exec=$BUILD/bulk ;;
		hold) port=$(($1 + 20)) exec=$BUILD/hold ;;
		esac
		printf "$STUNNEL_GLOBAL" >"$RUN/tls-stunnel-$kind.conf"
		stunnel_conf "$RUN/tls-stunnel-$kind.conf" "$exec" "$(basename "$exec")"
		printf '[%s]\nlisten = 127.0.0.1:%s\nexec = %s\nargs = stunnel4 %s\n' "$kind" "$port" \
		    "$STUNNEL" "$RUN/tls-stunnel-$kind.conf" >"$dir/$kind.conf"
	done
	TLS_HOW[porterd+stunnel]="$PORTERD -f -d $dir   (services rate, bulk, hold on 127.0.0.1:$1, $(($1 + 10)), $(($1 + 20)): exec = $STUNNEL, args = stunnel4 $RUN/tls-stunnel-KIND.conf; that file: debug = err, pid = (none), cert, key, exec, execArgs, no accept: inetd mode)"
	"$PORTERD" -f -d "$dir" </dev/null >"$RUN/tls-porterd+stunnel.log" 2>&1 &
	TLS_PID[porterd+stunnel]=$!
}

# tlsfloor_start NAME PORT WHAT [tlsfloor args]: 16 workers on PORT and PORT + 10
# (rate, transfer); no hold service.
tlsfloor_start() {
	local name=$1 port=$2 what=$3
	shift 3
	TLS_HOW[$name]="$BUILD/tlsfloor -c $RUN/tls-cert.pem -k $RUN/tls-key.pem -w 16 $* 127.0.0.1:$port 127.0.0.1:$((port + 10))   ($what; no hold service)"
	"$BUILD/tlsfloor" -c "$RUN/tls-cert.pem" -k "$RUN/tls-key.pem" -w 16 "$@" \
	    "127.0.0.1:$port" "127.0.0.1:$((port + 10))" </dev/null >"$RUN/tls-$name.log" 2>&1 &
	TLS_PID[$name]=$!
}

# The ceiling: no process per connection, no handler, TLS alone (tlsfloor.c).
start_tls_tls-floor() {
	tlsfloor_start tls-floor "$1" "16 workers forked once; each accepts, handshakes and writes the reply itself: hello, or the transfer's bytes" \
	    -b "$TLS_BYTES"
}

# The ceiling with a handler: the same workers start HANDLER (bulk) for each connection.
start_tls_tls-floor-exec() {
	tlsfloor_start tls-floor-exec "$1" "as tls-floor, but after each handshake the worker starts the handler on a socketpair, posix_spawn, and carries its output to the client" \
	    -x "$HANDLER" -X "$BUILD/bulk"
}

# The server's CPU time with its reaped children (relays, handlers) and its live
# ones (tls-floor's workers: never reaped during a run), in ticks.
tree_ticks() {
	local kids k
	kids=$(cat /proc/"$1"/task/*/children 2>/dev/null)
	{
		awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0
		for k in $kids; do
			awk '{print $14 + $15}' "/proc/$k/stat" 2>/dev/null
		done
	} | awk '{ t += $1 } END { print t + 0 }'
}

# tls_gen NAME PORT [tlsgen args]: tlsgen against NAME, plaintext for the reference.
tls_gen() {
	local name=$1 port=$2
	shift 2
	if [ "$name" = porterd-plain ]; then
		"$BUILD/tlsgen" -P "$@" "127.0.0.1:$port"
	else
		"$BUILD/tlsgen" -C "$RUN/tls-cert.pem" "$@" "127.0.0.1:$port"
	fi
}

# tls_load PHASE NAME PORT ROUND C [tlsgen args]: one measured run, one raw line.
tls_load() {
	local phase=$1 name=$2 port=$3 round=$4 c=$5 json t0 ticks
	shift 5
	t0=$(tree_ticks "${TLS_PID[$name]}")
	json=$(tls_gen "$name" "$port" -c "$c" "$@" 2>"$RUN/tlsgen.err")
	ticks=$(( $(tree_ticks "${TLS_PID[$name]}") - t0 ))
	if [ -z "$json" ]; then
		say "  tlsgen failed: $(cat "$RUN/tlsgen.err")"
		return
	fi
	printf '{"phase":"%s","contender":"%s","round":%d,"c":%d,"server_cpu_ticks":%d,"result":%s}\n' \
	    "$phase" "$name" "$round" "$c" "$ticks" "$json" >>"$RAW"
	printf '  %-8s r%d c=%-3d %-16s %s; server CPU %s ticks\n' "$phase" "$round" "$c" "$name" \
	    "$(sed 's/^[^:]*:[^:]*: //' "$RUN/tlsgen.err")" "$ticks" >&2
}

tls_phase() {
	local name t r c ci=0 out tc=()
	say "TLS: $TLS_ROUNDS round(s) x c in {$CONC} x $(wc -w <<<"$TLS_ALL") contenders, $SECS s each; $TLS_TRANSFERS transfers of $TLS_BYTES bytes per round; $TLS_HOLD held connections"
	STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
	if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
	    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout "$RUN/tls-key.pem" -out "$RUN/tls-cert.pem" >"$RUN/tls-openssl.log" 2>&1; then
		say "  openssl req failed (see $RUN/tls-openssl.log): no TLS phase"
		return
	fi
	for name in $TLS_ALL; do
		case $name in
		stunnel|porterd+stunnel) [ -n "$STUNNEL" ] || { TLS_HOW[$name]="not run: stunnel4 not installed"; continue; } ;;
		esac
		"start_tls_$name" "${TLS_PORT[$name]}"
		# Ready when the rate service answers right (10 s at most).
		t=0
		until tls_gen "$name" "${TLS_PORT[$name]}" -q -c 1 -n 1 -t 2 >/dev/null 2>&1; do
			t=$((t + 1))
			if [ "$t" -ge 100 ] || ! kill -0 "${TLS_PID[$name]}" 2>/dev/null; then
				break
			fi
			sleep 0.1
		done
		if [ "$t" -ge 100 ] || ! kill -0 "${TLS_PID[$name]}" 2>/dev/null; then
			say "  $name did not answer on ${TLS_PORT[$name]}; its log:"
			tail -5 "$RUN/tls-$name.log" >&2
			stop_pid "${TLS_PID[$name]}"
			unset "TLS_PID[$name]"
			TLS_HOW[$name]="not run: did not start (see $RUN/tls-$name.log)"
			continue
		fi
		say "  started $name (pid ${TLS_PID[$name]}) on 127.0.0.1:${TLS_PORT[$name]}"
		tls_gen "$name" "${TLS_PORT[$name]}" -q -c 4 -n 50 >/dev/null 2>&1	# warm-up
		tc+=("$name")
	done
	if [[ " ${tc[*]} " != *" porterd-plain "* ]]; then
		say "  plaintext porterd did not start: no reference, no TLS figures"
	else
		for ((r = 1; r <= TLS_ROUNDS; r++)); do
			for c in $CONC; do
				ci=$((ci + 1))
				for name in $(rotate "$ci" "${tc[@]}"); do
					tls_load tls "$name" "${TLS_PORT[$name]}" "$r" "$c" -d "$SECS" \
					    -t "$CONN_TIMEOUT"
				done
			done
			ci=$((ci + 1))
			for name in $(rotate "$ci" "${tc[@]}"); do
				tls_load tls-bulk "$name" $((TLS_PORT[$name] + 10)) "$r" 1 -b "$TLS_BYTES" \
				    -n "$TLS_TRANSFERS"
			done
		done
		# Memory: TLS_HOLD connections held at once, the server's process tree read.
		for name in "${tc[@]}"; do
			case $name in tls-floor*) continue ;; esac	# 16 workers: no hold service
			out=$(tls_gen "$name" $((TLS_PORT[$name] + 20)) -H "$TLS_HOLD" -c 16 -t 30 \
			    -p "${TLS_PID[$name]}" 2>"$RUN/tlsgen.err")
			say "  hold     $name: $(sed 's/^[^:]*:[^:]*: //' "$RUN/tlsgen.err")"
			[ -n "$out" ] && printf '{"phase":"tls-hold","contender":"%s","n":%d,"result":%s}\n' \
			    "$name" "$TLS_HOLD" "$out" >>"$RAW"
		done
	fi
	for name in "${tc[@]}"; do
		stop_pid "${TLS_PID[$name]}"
		unset "TLS_PID[$name]"
	done
	for name in $TLS_ALL; do
		[ -n "${TLS_HOW[$name]:-}" ] && printf '%s\t%s\n' "$name" "${TLS_HOW[$name]}"
	done >"$RUN/tls-how.tsv"
}

# ---- the report
report() {
	HOWJSON=$RUN/how.jsonl
	: >"$HOWJSON"
	for name in $ALL; do
		if [ -n "${HOW[$name]:-}" ]; then
			printf '%s\t%s\n' "$name" "${HOW[$name]}" >>"$HOWJSON"
		elif [ -n "${MISSING[$name]:-}" ]; then
			printf '%s\tnot run: %s\n' "$name" "${MISSING[$name]}" >>"$HOWJSON"
		fi
	done
	[ -f "$RUN/tls-how.tsv" ] || : >"$RUN/tls-how.tsv"
	"$PY" "$BENCH/report.py" --raw "$RAW" --how "$HOWJSON" --tls-how "$RUN/tls-how.tsv" \
	    --out "$RESULTS" --dat "$RUN/throughput.dat" --meta "handler=$HANDLER_KIND" "rounds=$ROUNDS" "secs=$SECS" \
	    "conc=$CONC" "quick=$QUICK" "scale_rounds=$SCALE_ROUNDS" "scale_conc=$SCALE_CONC" \
	    "rss_conns=$RSS_CONNS" "porterd=$PORTERD" "nproc=$(nproc)" \
	    "scale_sizes=$SCALE_SIZES" "reload_sizes=$RELOAD_SIZES" "reload_reps=$RELOAD_REPS" \
	    "gap_sizes=$GAP_SIZES" "gap_reps=$GAP_REPS" "hold_sizes=$HOLD_SIZES" "hold_secs=$HOLD_SECS" \
	    "fd_limit=$FD_NOTE" "pid_max=$(cat /proc/sys/kernel/pid_max)" \
	    "mem_total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)" \
	    "sched_autogroup=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -)" \
	    "porterd_commit=$PORTERD_COMMIT" "porterd_src=${PORTERD_SRC:-$PORTERD}" \
	    "tls_rounds=$TLS_ROUNDS" "tls_bytes=$TLS_BYTES" "tls_transfers=$TLS_TRANSFERS" \
	    "tls_hold=$TLS_HOLD" \
	    "tls_only=$TLS_ONLY" "openssl=$(openssl version 2>/dev/null)" \
	    "stunnel=$( (${STUNNEL:-stunnel4} -version 2>&1 || true) | sed -n 's/^\(stunnel [0-9.]*\).*/\1/p' | head -1)" \
	    "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" "duration_s=$(( $(date +%s) - T_START ))"
	# --tls-only: no main matrix, nothing to plot.
	if [ "$DO_PLOT" = 1 ] && [ "$TLS_ONLY" = 0 ]; then
		if command -v gnuplot >/dev/null; then
			"$BENCH/plot.sh" "$RUN/throughput.dat" "$BENCH/throughput.png" &&
			    say "plot: $BENCH/throughput.png"
		else
			say "no gnuplot: no plot"
		fi
	fi
}

# ------------------------------------------------------------------ main
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
rm -rf "$RUN"
mkdir -p "$RUN"
: >"$RAW"
setup_peers
say "building bench tools"
make -s -C "$BENCH" >"$RUN/make.log" 2>&1 || { cat "$RUN/make.log" >&2; exit 111; }
# The hold phase's handler and client, with bench/Makefile's compiler and flags.
BCFLAGS="-O2 -g -Wall -Wextra -std=gnu11"
for t in holder hold; do
	[ "$t" = hold ] && static=-static || static=
	if [ ! -x "$BUILD/$t" ] || [ "$BENCH/$t.c" -nt "$BUILD/$t" ] || [ "$BENCH/genlib.h" -nt "$BUILD/$t" ]; then
		${CC:-cc} $BCFLAGS $static -o "$BUILD/$t" "$BENCH/$t.c" >>"$RUN/make.log" 2>&1 ||
		    { cat "$RUN/make.log" >&2; exit 111; }
	fi
done
HANDLER=$BUILD/handler-$HANDLER_KIND
# Measure a snapshot: a rebuild of src/porterd during the run must not switch binaries.
PORTERD_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)
if [ -x "$PORTERD" ]; then
	cp "$PORTERD" "$RUN/porterd"
	PORTERD_SRC=$PORTERD
	PORTERD=$RUN/porterd
	say "measuring $PORTERD_SRC (checkout at $PORTERD_COMMIT), copied to $PORTERD"
fi
[ "$("$BUILD/handler-$HANDLER_KIND" </dev/null)" = hello ] || { say "handler broken"; exit 111; }

if [ "$TLS_ONLY" = 1 ]; then
	tls_phase
	report
	say "results: $RESULTS (raw runs: $RAW); took $(( $(date +%s) - T_START )) s"
	exit 0
fi

CONTENDERS=()
for name in ${ONLY:-$ALL}; do
	if [ -z "${PORT[$name]:-}" ]; then
		say "unknown contender $name (known: $ALL)"
		exit 100
	fi
	if ! available "$name"; then
		say "skipping $name: ${MISSING[$name]}"
		continue
	fi
	"start_$name" "${PORT[$name]}"
	if ! t=$("$BUILD/probe" -t 10 "127.0.0.1:${PORT[$name]}"); then
		say "$name did not answer on ${PORT[$name]} within 10 s; its log:"
		tail -5 "$RUN/$name.log" >&2
		stop_pid "${PID[$name]}"
		unset "PID[$name]"
		MISSING[$name]="did not start (see $RUN/$name.log)"
		continue
	fi
	say "started $name (pid ${PID[$name]}) on 127.0.0.1:${PORT[$name]}, answering after $t ms"
	[ "$name" = porterd ] && SERVED_PORTERD=1
	CONTENDERS+=("$name")
done
[[ " ${CONTENDERS[*]} " == *" floor "* ]] || { say "the floor did not start; nothing to compare with"; exit 111; }

if [ -n "${PID[porterd]:-}" ]; then
	record_rss idle "$SERVED_PORTERD" "${PID[porterd]}"
fi
say "warming up (porterd: to 1,000 connections; the others: 200)"
for name in "${CONTENDERS[@]}"; do
	n=200
	[ "$name" = porterd ] && n=$((1000 - SERVED_PORTERD))
	out=$("$BUILD/loadgen" -q -c 8 -n "$n" -t "$CONN_TIMEOUT" "127.0.0.1:${PORT[$name]}")
	if [ "$name" = porterd ]; then
		SERVED_PORTERD=$((SERVED_PORTERD + $(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$out")))
		record_rss after-1000 "$SERVED_PORTERD" "${PID[porterd]}"
	fi
done

say "throughput: $ROUNDS round(s) x c in {$CONC} x ${#CONTENDERS[@]} contenders, $SECS s each"
ci=0
for ((r = 1; r <= ROUNDS; r++)); do
	for c in $CONC; do
		ci=$((ci + 1))
		for name in $(rotate "$ci" "${CONTENDERS[@]}"); do
			load main "$name" "${PORT[$name]}" "$r" "$c"
		done
	done
done

if [ -n "${PID[porterd]:-}" ]; then
	left=$((RSS_CONNS - SERVED_PORTERD))
	if [ "$left" -gt 0 ]; then
		# Bounded in time too: on a slow or busy machine the label says how far it got.
		say "porterd: up to $left more connections (c=8, at most $RSS_SECS s) to reach $RSS_CONNS"
		out=$("$BUILD/loadgen" -q -c 8 -n "$left" -d "$RSS_SECS" -t "$CONN_TIMEOUT" \
		    "127.0.0.1:${PORT[porterd]}")
		SERVED_PORTERD=$((SERVED_PORTERD + $(sed -n 's/.*"ok":\([0-9]*\).*/\1/p' <<<"$out")))
		printf '{"phase":"rss-load","result":%s}\n' "$out" >>"$RAW"
	fi
	record_rss after-load "$SERVED_PORTERD" "${PID[porterd]}"
fi

# Only the floor stays up for the porterd-only phases.
for name in "${CONTENDERS[@]}"; do
	[ "$name" = floor ] && continue
	stop_pid "${PID[$name]}"
	unset "PID[$name]"
done

if [ "$DO_SCALE" = 1 ] && [ -x "$PORTERD" ]; then
	say "scaling: one service measured while porterd has {$SCALE_SIZES} services"
	SC=(floor)
	declare -A SPORT=()
	port=20011
	for k in $SCALE_SIZES; do
		name=porterd-${k}svc
		porterd_dir "$RUN/$name.d" "$port" $((k - 1))
		"$PORTERD" -f -d "$RUN/$name.d" </dev/null >"$RUN/$name.log" 2>&1 &
		PID[$name]=$!
		SPORT[$name]=$port
		PORT[$name]=$port
		if t=$("$BUILD/probe" -t 60 "127.0.0.1:$port"); then
			say "  started $name (pid ${PID[$name]}), answering after $t ms"
			SC+=("$name")
			printf '{"phase":"scale-rss","services":%d,"when":"idle","rss_kb":%d,"fds":%d,"start_ms":%s}\n' \
			    "$k" "$(rss_kb "${PID[$name]}")" "$(nfds "${PID[$name]}")" "$t" >>"$RAW"
		else
			say "  $name did not start; see $RUN/$name.log"
		fi
		port=$((port + 1))
		[ "$port" = "${PORT[porterd-fork]}" ] && port=$((port + 1))
	done
	for ((r = 1; r <= SCALE_ROUNDS; r++)); do
		for c in $SCALE_CONC; do
			ci=$((ci + 1))
			for name in $(rotate "$ci" "${SC[@]}"); do
				load scale "$name" "${PORT[$name]}" "$r" "$c"
			done
		done
	done
	for name in "${SC[@]}"; do
		[ "$name" = floor ] && continue
		k=${name#porterd-}; k=${k%svc}
		printf '{"phase":"scale-rss","services":%d,"when":"after-load","rss_kb":%d,"fds":%d}\n' \
		    "$k" "$(rss_kb "${PID[$name]}")" "$(nfds "${PID[$name]}")" >>"$RAW"
		stop_pid "${PID[$name]}"
		unset "PID[$name]"
	done
fi
stop_pid "${PID[floor]}"
unset "PID[floor]"

# has_word WORD WORDS...
has_word() {
	local w=$1
	shift
	[[ " $* " == *" $w "* ]]
}

# Reload latency (RELOAD_SIZES), then serving during reloads (GAP_SIZES), on the
# same porterd for a size that is in both lists.
RG_SIZES=""
[ "$DO_RELOAD" = 1 ] && RG_SIZES+=" $RELOAD_SIZES"
[ "$DO_GAP" = 1 ] && RG_SIZES+=" $GAP_SIZES"
RG_SIZES=$(tr ' ' '\n' <<<"$RG_SIZES" | sed '/^$/d' | sort -n -u | tr '\n' ' ')
if [ -n "${RG_SIZES// /}" ] && [ -x "$PORTERD" ]; then
	[ "$DO_RELOAD" = 1 ] &&
	    say "reload: SIGHUP to a new service answering, with {$RELOAD_SIZES} services loaded"
	[ "$DO_GAP" = 1 ] &&
	    say "reload-gap: c=1 on an unchanged service through $GAP_REPS reloads, with {$GAP_SIZES} services loaded"
	for k in $RG_SIZES; do
		dir=$RUN/reload-$k.d
		porterd_dir "$dir" 20020 $((k - 1))
		# touch ages the mtimes, but nothing can age the ctimes, and porterd reads
		# again every file changed in the last 2 s: wait for that, as an admin's
		# files would be, so that the first reloads measure the usual case.
		sleep 2.1
		"$PORTERD" -f -d "$dir" </dev/null >"$RUN/reload-$k.log" 2>&1 &
		rpid=$!
		EXTRA_PIDS+=("$rpid")
		if ! "$BUILD/probe" -t 60 127.0.0.1:20020 >/dev/null; then
			say "  porterd with $k services did not start; see $RUN/reload-$k.log"
			stop_pid "$rpid"
			forget_pid "$rpid"
			continue
		fi
		if [ "$DO_RELOAD" = 1 ] && has_word "$k" $RELOAD_SIZES; then
			for ((i = 1; i <= RELOAD_REPS; i++)); do
				printf '[zz-new]\nlisten = 127.0.0.1:20021\nexec = %s\n' "$HANDLER" >"$dir/zz-new.conf"
				read -r add listening < <("$BUILD/probe" -H "$rpid" -c -t 30 -i 200 \
				    127.0.0.1:20021 || echo null null)
				rm -f "$dir/zz-new.conf"
				del=$("$BUILD/probe" -H "$rpid" -g -t 30 -i 200 127.0.0.1:20021) || del=null
				printf '{"phase":"reload","services":%d,"rep":%d,"add_ms":%s,"add_listening_ms":%s,"remove_ms":%s}\n' \
				    "$k" "$i" "$add" "$listening" "$del" >>"$RAW"
				say "  reload $k services, rep $i: new service listening after $listening ms, answering after $add ms; removed service refusing after $del ms"
			done
			# porterd's own account of each reload ("reloaded N services in X ms"),
			# read before the reload-gap reloads add theirs.
			sed -n 's/.*reloaded \([0-9]*\) services\{0,1\} in \([0-9]*\) ms.*/{"phase":"reload-log","services":\1,"ms":\2}/p' \
			    "$RUN/reload-$k.log" >>"$RAW"
		fi
		if [ "$DO_GAP" = 1 ] && has_word "$k" $GAP_SIZES; then
			# The changed service: a filler in the middle (or the bench service
			# itself when there is no filler, which then measures its own reload).
			printf -v f %04d $(( (k + 1) / 2 ))
			conf=$dir/f$f.conf
			[ -f "$conf" ] || conf=$dir/000-bench.conf
			"$PY" "$BENCH/reloadgap.py" --pid "$rpid" --log "$RUN/reload-$k.log" \
			    --conf "$conf" --target 127.0.0.1:20020 --loadgen "$BUILD/loadgen" \
			    --trace "$RUN/reload-gap-$k.trace" --services "$k" --reps "$GAP_REPS" \
			    --min-slot "$GAP_SLOT" >>"$RAW" ||
			    say "  reload-gap with $k services: incomplete (see above)"
		fi
		stop_pid "$rpid"
		forget_pid "$rpid"
	done
fi

# Held connections: N handlers alive at once, all holding their connection, then
# all released. porterd's CPU time and memory must not depend on N.
hold_skip() {	# hold_skip N WHY
	say "  hold: skipping $1 connections: $2"
	printf '{"phase":"hold-skip","n":%d,"why":"%s"}\n' "$1" "$2" >>"$RAW"
}
# The pids.max of our cgroup (v1 or v2), or nothing when there is no such limit.
cgroup_pids_max() {
	local path v
	path=$(sed -n 's/^[0-9]*:pids:\(.*\)/\1/p' /proc/self/cgroup)
	for f in "/sys/fs/cgroup/pids$path/pids.max" \
	    "/sys/fs/cgroup$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)/pids.max"; do
		[ -r "$f" ] && v=$(cat "$f") && [ "$v" != max ] && { echo "$v"; return; }
	done
}
if [ "$DO_HOLD" = 1 ] && [ -x "$PORTERD" ] && [ -n "$HOLD_SIZES" ]; then
	say "hold: {$HOLD_SIZES} connections held at once (handler $BUILD/hold), then released"
	hmax=0
	for n in $HOLD_SIZES; do [ "$n" -gt "$hmax" ] && hmax=$n; done
	dir=$RUN/hold.d
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '[hold]\nlisten = 127.0.0.1:20022\nexec = %s\nmax_children = %d\n' \
	    "$BUILD/hold" $((hmax + 100)) >"$dir/hold.conf"
	"$PORTERD" -f -d "$dir" </dev/null >"$RUN/hold.log" 2>&1 &
	hpid=$!
	EXTRA_PIDS+=("$hpid")
	# Ready when one connection is held and released (probe would wait for EOF).
	ready=0 t_end=$((SECONDS + 30))
	while [ "$SECONDS" -lt "$t_end" ]; do
		"$BUILD/holder" -n 1 -H 0 -t 2 -p "$hpid" 127.0.0.1:20022 >/dev/null 2>&1 &&
		    { ready=1; break; }
		sleep 0.1
	done
	if [ "$ready" = 0 ]; then
		say "  porterd for the hold phase did not start; see $RUN/hold.log"
	else
		printf '{"phase":"hold-rss","when":"idle","rss_kb":%d,"fds":%d}\n' \
		    "$(rss_kb "$hpid")" "$(nfds "$hpid")" >>"$RAW"
	fi
	pid_max=$(cat /proc/sys/kernel/pid_max)
	threads_max=$(cat /proc/sys/kernel/threads-max)
	cg_max=$(cgroup_pids_max)
	for n in $HOLD_SIZES; do
		[ "$ready" = 1 ] || break
		# Room for n more processes? Count what runs now, plus a margin.
		procs=$(ls -d /proc/[0-9]* 2>/dev/null | wc -l)
		threads=$(awk '{split($4, a, "/"); print a[2]}' /proc/loadavg)
		avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
		if [ $((procs + n + 500)) -gt "$pid_max" ]; then
			hold_skip "$n" "kernel.pid_max is $pid_max and $procs processes run"
			continue
		elif [ $((threads + n + 500)) -gt "$threads_max" ]; then
			hold_skip "$n" "kernel.threads-max is $threads_max and $threads threads run"
			continue
		elif [ -n "$cg_max" ] && [ $((procs + n + 500)) -gt "$cg_max" ]; then
			hold_skip "$n" "the cgroup's pids.max is $cg_max"
			continue
		elif [ "$(id -u)" != 0 ] && [ "$(ulimit -u)" != unlimited ] &&
		    [ $(( $(ps -U "$(id -u)" --no-headers | wc -l) + n + 100)) -gt "$(ulimit -u)" ]; then
			hold_skip "$n" "RLIMIT_NPROC (ulimit -u) is $(ulimit -u)"
			continue
		elif [ $((n * 256 + 524288)) -gt "$avail_kb" ]; then
			hold_skip "$n" "MemAvailable is $avail_kb kB, and $n handlers may need $((n / 4)) MB"
			continue
		elif [ "$FD_HARD" != unlimited ] && [ $((n + 64)) -gt "$FD_HARD" ]; then
			hold_skip "$n" "the hard fd limit is $FD_HARD"
			continue
		fi
		# Bounded: at most 120 s to open them all, and 120 s for the release.
		out=$("$BUILD/holder" -n "$n" -c 128 -H "$HOLD_SECS" -t 120 -p "$hpid" \
		    127.0.0.1:20022 2>"$RUN/holder.err")
		sed 's/^/  hold   /' "$RUN/holder.err" >&2
		if [ -n "$out" ]; then
			printf '{"phase":"hold","n":%d,"result":%s}\n' "$n" "$out" >>"$RAW"
		else
			say "  holder failed"
		fi
		sleep 0.5
	done
	stop_pid "$hpid"
	forget_pid "$hpid"
fi

if [ "$DO_TLS" = 1 ]; then
	tls_phase
fi
report
say "results: $RESULTS (raw runs: $RAW); took $(( $(date +%s) - T_START )) s"
