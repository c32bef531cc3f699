"""End to end: the protection controls (max_children, -c, max_per_source, rate,
source_rate, allow/deny, timeout, sandbox) and exhaustion (EMFILE, floods), each
counted exactly from a burst of known size."""

import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

from porterd_test import (VALGRIND, Porterd, TIMEOUT, cpu_ticks, free_port, main, need_root, talk,
                          wait_until, write_script)

HELLO_THEN_WAIT = "exec = /bin/sh\nargs = sh -c 'echo hi; exec cat >/dev/null'\n"


def hold(port, source="127.0.0.1", family=socket.AF_INET, host="127.0.0.1"):
    """Connect from `source`; return (socket, True if a handler greeted us with hi,
    False if porterd closed the connection at once)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.bind((source, 0))
    s.connect((host, port))
    data = s.recv(10)
    return s, data == b"hi\n"


def status_of(p, name):
    """Ask for a SIGUSR1 status dump and parse the line of service `name`."""
    n = p.log().count("status: %s " % name)
    os.kill(p.pid, signal.SIGUSR1)
    p.wait_log("status: %s " % name, count=n + 1)
    line = [l for l in p.log().splitlines() if "status: %s " % name in l][-1]
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    fields["refused"] = dict((k, int(v)) for k, v in
                             (x.split(":") for x in fields["refused"].split(",")))
    return fields


def process_group_members(pgid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(entry))
    return out


class LimitsTest(unittest.TestCase):

    def start(self, body, **kw):
        p = Porterd({"10-limits.conf": body}, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def close_all(self, socks):
        self.addCleanup(lambda: [s.close() for s in socks])

    # -- max_children and -c

    def test_max_children_2_with_20_clients(self):
        port = free_port()
        p = self.start("[slow]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                       "args = sh -c 'sleep 0.1; echo done'\nmax_children = 2\n" % port,
                       verbose=False)
        replies, most = [], [0]
        done = threading.Event()

        def watch():
            deadline = time.monotonic() + 120
            while not done.is_set() and time.monotonic() < deadline:
                most[0] = max(most[0], len(p.children()))

        def client():
            try:
                replies.append(talk(port, timeout=60))
            except OSError as e:
                replies.append(repr(e))

        w = threading.Thread(target=watch)
        w.start()
        clients = [threading.Thread(target=client) for _ in range(20)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(timeout=120)
        done.set()
        w.join(timeout=10)
        self.assertEqual(replies, [b"done\n"] * 20)
        self.assertEqual(most[0], 2)

    def test_c_caps_handlers_across_services(self):
        a, b = free_port(), free_port()
        p = self.start("[a]\nlisten = 127.0.0.1:%d\n%s[b]\nlisten = 127.0.0.1:%d\n%s"
                       % (a, HELLO_THEN_WAIT, b, HELLO_THEN_WAIT), extra_args=["-c", "3"])
        socks = []
        self.close_all(socks)
        for port in (a, b, a, b, a):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            socks.append(s)
        wait_until(lambda: len(p.children()) == 3, what="three handlers")
        greeted = []

        def three_greeted():
            readable, _, _ = select.select([x for x in socks if x not in greeted], [], [], 0.1)
            for x in readable:
                self.assertEqual(x.recv(10), b"hi\n")
                greeted.append(x)
            return len(greeted) == 3
        wait_until(three_greeted, what="three greetings")
        # The other two wait in the backlog until a handler goes.
        greeted[0].close()
        wait_until(lambda: len(p.children()) == 3 and
                   p.log().count(" -> pid ") == 4, what="a fourth handler")
        self.assertLessEqual(len(p.children()), 3)

    def assert_waits_idle(self, p, client, when):
        """For a second, nothing greets client and porterd does not spin."""
        t0 = cpu_ticks(p.pid)
        readable, _, _ = select.select([client], [], [], 1.0)
        self.assertEqual(readable, [])
        used = cpu_ticks(p.pid) - t0
        self.assertLess(used, 20, "porterd used %d ticks %s" % (used, when))

    def test_a_full_service_is_not_watched(self):
        # At max_children the listener leaves the set porterd waits on: a client
        # in the backlog neither gets a handler nor makes porterd spin, and it is
        # served as soon as a handler exits.
        port = free_port()
        p = self.start("[one]\nlisten = 127.0.0.1:%d\n%smax_children = 1\n"
                       % (port, HELLO_THEN_WAIT))
        first, greeted = hold(port)
        self.assertTrue(greeted)
        second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.close_all([first, second])
        self.assert_waits_idle(p, second, "at max_children")
        first.close()
        self.assertEqual(second.recv(10), b"hi\n")

    def test_c_full_daemon_does_not_spin(self):
        a, b, d = free_port(), free_port(), free_port()
        p = self.start("[a]\nlisten = 127.0.0.1:%d\n%s[b]\nlisten = 127.0.0.1:%d\n%s"
                       "[d]\nlisten = 127.0.0.1:%d\nbuiltin = daytime\n"
                       % (a, HELLO_THEN_WAIT, b, HELLO_THEN_WAIT, d), extra_args=["-c", "1"])
        first, greeted = hold(a)
        self.assertTrue(greeted)
        other = socket.create_connection(("127.0.0.1", b), timeout=TIMEOUT)
        self.close_all([first, other])
        # daytime starts no process: answered at -c, and porterd still idles
        # (it once kept the listener watched but accepted nothing: a spin).
        self.assertRegex(talk(d).decode(), r"\d\d:\d\d:\d\d")
        self.assert_waits_idle(p, other, "at -c")
        # Both services are held back, and the status says so.
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: b ")
        self.assertRegex(p.log(), r"status: a 127\.0\.0\.1:%d paused running=1 " % a)
        self.assertRegex(p.log(), r"status: b 127\.0\.0\.1:%d paused running=0 " % b)
        first.close()
        self.assertEqual(other.recv(10), b"hi\n")
        # Below -c again: listening.
        other.close()
        wait_until(lambda: p.children() == [], what="handlers gone")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: b ", count=2)
        self.assertRegex(p.log(), r"status: b 127\.0\.0\.1:%d listening running=0 " % b)

    # -- per source

    def test_max_per_source_exact_counts(self):
        port = free_port()
        p = self.start("[s]\nlisten = 127.0.0.1:%d\n%smax_per_source = 2\n"
                       % (port, HELLO_THEN_WAIT))
        socks = []
        self.close_all(socks)
        results = []
        for _ in range(5):
            s, ok = hold(port, "127.0.0.1")
            socks.append(s)
            results.append(ok)
        self.assertEqual(results, [True, True, False, False, False])
        # Another address has its own count.
        for _ in range(2):
            s, ok = hold(port, "127.0.0.2")
            socks.append(s)
            self.assertTrue(ok)
        self.assertEqual(status_of(p, "s")["refused"]["per_source"], 3)
        # A slot frees when its handler goes.
        socks[0].close()
        wait_until(lambda: len(p.children()) == 3, what="one handler gone")
        s, ok = hold(port, "127.0.0.1")
        socks.append(s)
        self.assertTrue(ok)

    def test_source_prefix_groups_addresses(self):
        port = free_port()
        self.start("[s]\nlisten = 127.0.0.1:%d\n%smax_per_source = 1\nsource_prefix4 = 24\n"
                   % (port, HELLO_THEN_WAIT))
        socks = []
        self.close_all(socks)
        s, ok = hold(port, "127.0.0.1")
        socks.append(s)
        self.assertTrue(ok)
        s, ok = hold(port, "127.0.0.2")  # same /24
        socks.append(s)
        self.assertFalse(ok)

    def test_rate_exact_counts(self):
        port = free_port()
        p = self.start("[r]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "rate = 5/60\n" % port)
        replies = [talk(port) for _ in range(12)]
        self.assertEqual(replies, [b"ok\n"] * 5 + [b""] * 7)
        self.assertEqual(status_of(p, "r")["refused"]["rate"], 7)

    def test_source_rate_exact_counts(self):
        port = free_port()
        p = self.start("[r]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "source_rate = 3/60\n" % port)
        one = [talk(port, source=("127.0.0.1", 0)) for _ in range(8)]
        two = [talk(port, source=("127.0.0.2", 0)) for _ in range(4)]
        self.assertEqual(one, [b"ok\n"] * 3 + [b""] * 5)
        self.assertEqual(two, [b"ok\n"] * 3 + [b""])
        self.assertEqual(status_of(p, "r")["refused"]["source_rate"], 6)

    def test_a_rate_refusal_costs_the_source_nothing(self):
        # The service's rate refuses the third and later clients; the source's
        # own budget (3) is spent only by the two admitted, so none of the
        # refusals is put down to source_rate.
        port = free_port()
        p = self.start("[r]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "rate = 2/60\nsource_rate = 3/60\n" % port)
        replies = [talk(port) for _ in range(6)]
        self.assertEqual(replies, [b"ok\n"] * 2 + [b""] * 4)
        refused = status_of(p, "r")["refused"]
        self.assertEqual((refused["rate"], refused["source_rate"]), (4, 0))

    # -- allow / deny

    def test_allow_and_deny(self):
        v4, dual = free_port(), free_port(family=socket.AF_INET6, host="::")
        p = self.start("[v4]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "allow = 127.0.0.0/8\ndeny = 127.0.0.3\n"
                       "[dual]\nlisten = *:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "allow = 127.0.0.1\n" % (v4, dual))
        self.assertEqual(talk(v4, source=("127.0.0.1", 0)), b"ok\n")
        self.assertEqual(talk(v4, source=("127.0.0.2", 0)), b"ok\n")
        self.assertEqual(talk(v4, source=("127.0.0.3", 0)), b"")  # deny wins
        # An IPv4 client of a dual-stack socket matches the IPv4 rule.
        self.assertEqual(talk(dual, source=("127.0.0.1", 0)), b"ok\n")
        self.assertEqual(talk(dual, source=("127.0.0.2", 0)), b"")
        self.assertEqual(talk(dual, host="::1", family=socket.AF_INET6), b"")
        self.assertEqual(status_of(p, "v4")["refused"]["acl"], 1)
        self.assertEqual(status_of(p, "dual")["refused"]["acl"], 2)

    def test_ipv6_allow(self):
        port = free_port(family=socket.AF_INET6, host="::1")
        self.start("[v6]\nlisten = [::1]:%d\nexec = /bin/echo\nargs = echo ok\n"
                   "allow = ::1/128\n" % port)
        self.assertEqual(talk(port, host="::1", family=socket.AF_INET6), b"ok\n")

    def test_refusals_are_logged_once_per_10_s(self):
        port = free_port()
        p = self.start("[d]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "deny = 127.0.0.1\n" % port, verbose=False)
        for _ in range(50):
            self.assertEqual(talk(port), b"")
        self.assertEqual(status_of(p, "d")["refused"]["acl"], 50)
        self.assertEqual(len(re.findall(r"d: refused 127\.0\.0\.1:\d+ \(acl\)", p.log())), 1)

    def test_udp_builtin_checks_every_datagram(self):
        port = free_port(socket.SOCK_DGRAM)
        p = self.start("[u]\nlisten = 127.0.0.1:%d\nprotocol = udp\nbuiltin = echo\n"
                       "allow = 127.0.0.2\n" % port)
        for source, want in (("127.0.0.1", None), ("127.0.0.2", b"ping")):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((source, 0))
                s.settimeout(1.0)  # asserting that no answer comes
                s.sendto(b"ping", ("127.0.0.1", port))
                try:
                    got = s.recv(100)
                except socket.timeout:
                    got = None
            self.assertEqual(got, want)
        self.assertEqual(status_of(p, "u")["refused"]["acl"], 1)

    # -- timeout

    def test_timeout_kills_handler_and_its_children(self):
        port = free_port()
        p = self.start("[t]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                       "args = sh -c 'sleep 1000 & echo started; sleep 1000'\ntimeout = 1\n"
                       % port)
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        self.assertEqual(s.recv(100), b"started\n")
        handler = wait_until(p.children, what="handler")[0][0]
        self.assertGreaterEqual(len(process_group_members(handler)), 2)
        p.wait_log("t: pid %d timed out; sent SIGTERM" % handler)
        wait_until(lambda: not p.children(), what="handler reaped")
        wait_until(lambda: not process_group_members(handler), what="its children gone")
        self.assertEqual(status_of(p, "t")["timed_out"], "1")

    def test_timeouts_are_counted_each_and_logged_once_in_a_while(self):
        # Idle clients reach the timeout at the rate they connect: one line.
        port = free_port()
        p = self.start("[t]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                       "args = sh -c 'echo started; exec sleep 1000'\ntimeout = 1\n" % port)
        socks = []
        self.close_all(socks)
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            socks.append(s)
            self.assertEqual(s.recv(100), b"started\n")
        wait_until(lambda: status_of(p, "t")["timed_out"] == "4", what="four timeouts")
        wait_until(lambda: not p.children(), what="handlers reaped")
        self.assertEqual(p.log().count("timed out; sent SIGTERM"), 1, p.log())

    def test_timeout_sigkill_when_sigterm_is_ignored(self):
        port = free_port()
        p = self.start("[t]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                       "args = sh -c 'trap \"\" TERM; echo started; while :; do sleep 1; done'\n"
                       "timeout = 1\n" % port)
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        self.assertEqual(s.recv(100), b"started\n")
        handler = wait_until(p.children, what="handler")[0][0]
        p.wait_log("t: pid %d still there; sent SIGKILL" % handler)
        wait_until(lambda: not p.children(), what="handler reaped")
        p.wait_log("killed by signal 9")

    # -- sandbox

    @need_root
    @unittest.skipIf(VALGRIND, "valgrind cannot follow a child into a chroot")
    def test_sandbox_visible_from_inside(self):
        port = free_port()
        p = Porterd({})
        self.addCleanup(p.cleanup)
        root = os.path.join(p.dir, "jail")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        for line in subprocess.run(["ldd", "/bin/busybox"], capture_output=True,
                                   text=True).stdout.splitlines():
            lib = [w for w in line.split() if w.startswith("/")]
            if lib:
                dest = os.path.join(root, lib[0].lstrip("/"))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copy(lib[0], dest)
        with open(os.path.join(root, "marker"), "w") as f:
            f.write("inside\n")
        p.set_services({"10-jail.conf":
                        "[jail]\nlisten = 127.0.0.1:%d\nexec = /bin/busybox\n"
                        "args = busybox sh -c 'busybox cat /marker; busybox id -u; ulimit -n; "
                        "umask; echo no-proc-in-jail; pwd'\n"
                        "chroot = %s\nuser = nobody\nrlimit_nofile = 17\numask = 027\n"
                        "nice = 5\n" % (port, root)})
        p.start()
        out = talk(port).decode().split("\n")
        nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True,
                                    text=True).stdout)
        self.assertEqual(out[0], "inside")
        self.assertEqual(out[1], str(nobody))
        self.assertEqual(out[2], "17")
        self.assertEqual(out[3], "0027")
        self.assertEqual(out[5], "/")

    def test_nice_and_no_new_privs(self):
        on, off = free_port(), free_port()
        body = ("[%s]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                "args = sh -c 'grep NoNewPrivs /proc/self/status; cut -d\" \" -f19 /proc/self/stat'\n")
        self.start(body % ("on", on) + "nice = 7\n" + body % ("off", off) + "no_new_privs = no\n")
        self.assertEqual(talk(on).split(), [b"NoNewPrivs:", b"1", b"7"])
        self.assertEqual(talk(off).split()[:2], [b"NoNewPrivs:", b"0"])

    # -- exhaustion

    @unittest.skipIf(VALGRIND, "valgrind keeps descriptors of its own and costs CPU time")
    def test_emfile_flood_does_not_spin_and_recovers(self):
        port = free_port()
        p = self.start("[e]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                       "backlog = 1024\n" % port, verbose=False)

        def limit(n):
            # The soft limit only: raising it back needs no privilege.
            subprocess.run(["prlimit", "--pid", str(p.pid), "--nofile=%d:" % n],
                           check=True, timeout=TIMEOUT)
        self.assertEqual(talk(port), b"ok\n")
        # Not one descriptor to spare: every accept fails with EMFILE.
        limit(len(p.settled_fds()))
        t0 = cpu_ticks(p.pid)
        flood = []
        self.close_all(flood)
        for _ in range(500):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            flood.append(s)
        p.wait_log("e: accept: Too many open files; pausing for 1000 ms")
        # Over at least two back-off periods, porterd must sleep, not spin.
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            time.sleep(0.1)  # measuring an interval of idleness, not synchronising
        used = cpu_ticks(p.pid) - t0
        self.assertLess(used, 30, "porterd used %d ticks while out of fds" % used)
        self.assertLessEqual(p.log().count("accept: Too many open files"), 1)
        # Room again: the backlog drains and a new client is served.
        limit(1024)
        self.assertEqual(talk(port, timeout=60), b"ok\n")

    @unittest.skipIf(VALGRIND, "valgrind costs CPU time and descriptors of its own")
    def test_flood_under_ulimit_32(self):
        port = free_port()
        p = Porterd({"10-f.conf": "[f]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\n"
                                  "args = echo ok\nbacklog = 1024\n" % port}, verbose=False)
        self.addCleanup(p.cleanup)
        p.logfile = open(p.logpath, "ab")
        p.proc = subprocess.Popen(
            p.command(), stdin=subprocess.DEVNULL, stdout=p.logfile, stderr=p.logfile,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32)))
        p.pid = p.proc.pid
        p.wait_log("started with")
        t0 = cpu_ticks(p.pid)
        errors, ok = [], [0]

        def client(n):
            for _ in range(n):
                try:
                    if talk(port, timeout=60) == b"ok\n":
                        ok[0] += 1
                except OSError as e:
                    errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(125,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        self.assertEqual(errors, [])
        self.assertEqual(ok[0], 500)
        # A fork and exec per connection, and nothing more: well under 2 s of CPU.
        self.assertLess(cpu_ticks(p.pid) - t0, 200)
        self.assertEqual(talk(port), b"ok\n")

    @need_root
    def test_fork_failure_degrades_and_recovers(self):
        """porterd as an unprivileged user whose process limit runs out."""
        port = free_port()
        p = Porterd({"10-f.conf": "[f]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                  "args = sh -c 'echo hi; exec cat >/dev/null'\n" % port})
        self.addCleanup(p.cleanup)
        # A uid of its own: the process limit counts every process of the user,
        # and other tests run handlers as nobody at the same time. The user may
        # have porterd, its spawner threads (the limit counts threads;
        # PORTERD_SPAWNERS, 2 unless set), its start watch thread and 5 handlers.
        spawners = int(os.environ.get("PORTERD_SPAWNERS", "2"))
        nproc = 1 + spawners + 1 + 5
        p.start_as(64123, then=["prlimit", "--nproc=%d:%d" % (nproc, nproc)])
        socks = []
        self.close_all(socks)
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        # Five are served. Which five is up to the spawner threads, which
        # start handlers side by side: not always the first five to connect.
        first = []
        deadline = time.monotonic() + TIMEOUT
        while len(first) < 5 and time.monotonic() < deadline:
            ready, _, _ = select.select([s for s in socks if s not in first], [], [],
                                        max(0.0, deadline - time.monotonic()))
            first += ready
        self.assertEqual(len(first), 5, "not five served")
        for s in first:
            self.assertEqual(s.recv(10), b"hi\n")
        waiting = [s for s in socks if s not in first]
        p.wait_log("f: fork: Resource temporarily unavailable")
        self.assertTrue(p.alive())
        # The three others are neither served nor closed: they wait, the one in
        # hand when the fork failed as well as those in the backlog.
        for s in waiting:
            s.settimeout(0.2)
            self.assertRaises(socket.timeout, s.recv, 10)
            s.settimeout(TIMEOUT)
        # Handlers go; the clients that waited are served, none was lost.
        for s in first:
            s.close()
        for s in waiting:
            self.assertEqual(s.recv(10), b"hi\n")
        for s in waiting:
            s.close()
        wait_until(lambda: not p.children(), what="handlers gone")
        s = wait_until(lambda: hold(port)[1], what="served again")
        self.assertTrue(s)
        # Every client was served in the end: none counts as failed, however
        # many times its start was tried again.
        self.assertEqual(status_of(p, "f")["failed"], "0")

if __name__ == "__main__":
    main()
