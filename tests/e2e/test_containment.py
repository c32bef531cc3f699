"""End to end: containment (issue 12). Every handler's process tree lives in a
cgroup of porterd's own: it is counted until its last process has left, and
timeout or shutdown = stop end the whole of it. Without a writable cgroup2
hierarchy (-g naming a place that is not one), porterd falls back to process
groups and keeps signalling a group whose leader has died."""

import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from porterd_test import (TIMEOUT, Porterd, free_port, main, talk, wait_until,
                          write_script)

# porterd's grace period between SIGTERM and SIGKILL (loop.c TIMEOUT_KILL_MS).
GRACE = 5.0


def cgroup2_mount():
    """The mount point of the first cgroup2 hierarchy, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.startswith("cgroup2 "):
                return left.split()[4]
    return None


def can_contain():
    mnt = cgroup2_mount()
    return os.geteuid() == 0 and mnt is not None and os.access(mnt, os.W_OK)


need_cgroups = unittest.skipUnless(can_contain(), "needs root and a writable cgroup2")


def alive(pid):
    """Whether pid is a live process (a zombie is not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pids_in(path):
    """The pids a handler wrote to path, one a line."""
    with open(path) as f:
        return [int(x) for x in f.read().split()]


def one_pid(path):
    """The pid a handler wrote to path, once it is there; else 0."""
    return os.path.exists(path) and (pids_in(path) or [0])[0]


def subtree_of(p):
    """porterd's subtree, from its log line."""
    for line in p.log().splitlines():
        if "handlers are contained in cgroups under " in line:
            return line.split(" under ", 1)[1].rsplit("/handlers", 1)[0]
    return None


def status_line(port, name):
    text = talk(port).decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return dict(f.split("=", 1) for f in line.split() if "=" in f)
    raise AssertionError("no status line for %s in %r" % (name, text))


class ContainmentTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="porterd-cg.")
        os.chmod(self.tmp, 0o755)
        # Registered first, so run last: after every porterd the test started.
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.leftover = []

    def tearDown(self):
        for pid in self.leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def service(self, name, port, body, extra=""):
        """A service whose handler is a shell script of body (no quoting to mind)."""
        script = write_script(self.tmp, name + ".sh", "#!/bin/sh\n" + body + "\n")
        return "[%s]\nlisten = 127.0.0.1:%d\nexec = %s\n%s" % (name, port, script, extra)

    def start(self, services, extra_args=(), env=None):
        p = Porterd(services, extra_args=extra_args, env=env)
        p.start()
        self.addCleanup(p.cleanup)
        return p

    def wait_gone(self, pids, limit):
        t0 = time.monotonic()
        wait_until(lambda: not any(alive(x) for x in pids), timeout=limit,
                   what="processes %s to be gone" % pids)
        return time.monotonic() - t0

    # -- timeout ends the whole tree

    @need_cgroups
    def test_timeout_ends_setsid_grandchild_and_sigterm_ignorer(self):
        port = free_port()
        f = os.path.join(self.tmp, "pids")
        # A grandchild in a session of its own, and a member of the handler's
        # group that ignores SIGTERM: both hold the client's socket.
        body = ("setsid sh -c 'echo $$ >> %s; exec sleep 1000' &\n"
                "sh -c 'trap \"\" TERM; echo $$ >> %s; exec sleep 1000' &\n"
                "echo started; sleep 1000" % (f, f))
        p = self.start({"t.conf": self.service("t", port, body, "timeout = 1\n")})
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertEqual(s.recv(100), b"started\n")
        wait_until(lambda: os.path.exists(f) and len(pids_in(f)) == 2, what="two pids")
        pids = pids_in(f)
        self.leftover += pids
        t0 = time.monotonic()
        # The client sees the end once the last holder of its socket is gone.
        s.settimeout(1 + GRACE + 5)
        self.assertEqual(s.recv(100), b"")
        s.close()
        self.wait_gone(pids, 1 + GRACE + 5)
        self.assertLess(time.monotonic() - t0, 1 + GRACE + 3)
        p.wait_log("exited with status")
        self.assertIn("sent SIGTERM to its cgroup", p.log())
        self.assertIn("sent SIGKILL to its cgroup", p.log())

    @need_cgroups
    def test_handlers_after_a_killed_tree_live(self):
        """cgroup.kill ended a tree that ignored SIGTERM; the next handlers of
        the service start in cgroups of their own, alive (one cloned into the
        killed cgroup was killed at birth on Linux 6.18)."""
        port = free_port()
        f = os.path.join(self.tmp, "pid")
        body = ("read x\nif [ \"$x\" = hold ]; then trap '' TERM; echo $$ > %s; "
                "echo held; exec sleep 1000; fi\necho quick" % f)
        p = self.start({"t.conf": self.service("t", port, body, "timeout = 1\n")})
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.sendall(b"hold\n")
        self.assertEqual(s.recv(100), b"held\n")
        self.leftover.append(wait_until(lambda: one_pid(f), what="pid"))
        s.settimeout(1 + GRACE + 5)
        self.assertEqual(s.recv(100), b"")
        s.close()
        p.wait_log("sent SIGKILL to its cgroup")
        for i in range(5):
            self.assertEqual(talk(port, b"x\n"), b"quick\n", "client %d" % i)
        self.assertNotIn("killed by signal 9 after", p.log().split("sent SIGKILL")[-1])

    @need_cgroups
    def test_fifty_children_killed_whole(self):
        port = free_port()
        f = os.path.join(self.tmp, "pids")
        body = ("trap '' TERM\nfor i in $(seq 50); do sleep 1000 & echo $! >> %s; done\n"
                "echo started; wait" % f)
        p = self.start({"t.conf": self.service("t", port, body, "timeout = 1\n")})
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertEqual(s.recv(100), b"started\n")
        pids = pids_in(f)
        self.assertEqual(len(pids), 50)
        self.leftover += pids
        self.assertTrue(all(alive(x) for x in pids))
        self.wait_gone(pids, 1 + GRACE + 5)
        s.settimeout(TIMEOUT)
        self.assertEqual(s.recv(100), b"")
        s.close()
        p.wait_log("killed by signal 9")

    # -- a tree is counted until it has ended

    @need_cgroups
    def test_double_fork_holds_its_max_children_slot(self):
        port, sport = free_port(), free_port()
        f = os.path.join(self.tmp, "pid")
        body = ("echo hi; setsid sh -c 'echo $$ > %s; exec sleep 2' "
                "</dev/null >/dev/null 2>&1 &" % f)
        p = self.start({"t.conf": self.service("t", port, body, "max_children = 1\n") +
                        "[st]\nlisten = 127.0.0.1:%d\nbuiltin = status\n" % sport})
        t0 = time.monotonic()
        self.assertEqual(talk(port), b"hi\n")
        grandchild = wait_until(lambda: one_pid(f), what="pid")
        self.leftover.append(grandchild)
        # The handler is gone; its grandchild still holds the service's only slot.
        st = status_line(sport, "t")
        self.assertEqual(st["running"], "1")
        self.assertEqual(talk(port), b"hi\n")
        waited = time.monotonic() - t0
        self.assertGreater(waited, 1.5, "the second client was served before the "
                           "first one's grandchild ended")
        self.assertFalse(alive(grandchild))
        p.wait_log("its process tree goes on")

    @need_cgroups
    def test_a_lingering_trees_key_is_not_given_to_a_start(self):
        """A record without a pid (a tree whose handler has exited, a start in
        flight) has a key of its own; the keys wrap (after -5 here, after 2^31
        otherwise) and one still in use must be skipped: two records under one
        key had q's start taken for l's tree, and q's only slot never freed."""
        lport, qport, sport = free_port(), free_port(), free_port()
        f = os.path.join(self.tmp, "pid")
        body = ("echo hi; setsid sh -c 'echo $$ > %s; exec sleep 1000' "
                "</dev/null >/dev/null 2>&1 &" % f)
        p = self.start({"l.conf": self.service("l", lport, body),
                        "q.conf": self.service("q", qport, "echo hi", "max_children = 1\n") +
                        "[st]\nlisten = 127.0.0.1:%d\nbuiltin = status\n" % sport},
                       env={"PORTERD_TEST_PIDLESS_KEYS": "5",
                            # every start from a thread, each taking a key
                            "PORTERD_TEST_SPAWNER_PAUSE_MS": "100"})
        self.assertEqual(talk(lport), b"hi\n")
        self.leftover.append(wait_until(lambda: one_pid(f), what="pid"))
        p.wait_log("its process tree goes on")
        for i in range(6):
            self.assertEqual(talk(qport, timeout=5), b"hi\n", "client %d" % i)
        # Each exit is q's own; l's one handler exited once.
        wait_until(lambda: len(re.findall(r"q: pid \d+ exited", p.log())) == 6,
                   what="q's six exits")
        self.assertEqual(len(re.findall(r"l: pid \d+ exited", p.log())), 1, p.log())
        wait_until(lambda: status_line(sport, "q")["running"] == "0", what="q's slot freed")
        self.assertEqual(status_line(sport, "l")["running"], "1")

    @need_cgroups
    def test_without_clone3_and_with_fork_children_join_their_cgroup(self):
        """The ways without CLONE_INTO_CGROUP: the child joins before it execs."""
        for env in ({"PORTERD_CLONE3": "no"}, {"PORTERD_CLONE3": "no", "PORTERD_SPAWN": "fork"},
                    {"PORTERD_SPAWN": "fork"}):
            port = free_port()
            old = dict(os.environ)
            os.environ.update(env)
            try:
                p = self.start({"t.conf": self.service("t", port, "cat /proc/self/cgroup")})
            finally:
                os.environ.clear()
                os.environ.update(old)
            got = talk(port).decode()
            self.assertRegex(got, r"/handlers/t/c\d+\n", env)
            p.stop()

    @need_cgroups
    def test_contain_no_opts_out(self):
        port = free_port()
        f = os.path.join(self.tmp, "pid")
        body = ("echo hi; setsid sh -c 'echo $$ >> %s; exec sleep 1000' "
                "</dev/null >/dev/null 2>&1 &" % f)
        self.start({"t.conf": self.service("t", port, body,
                                           "max_children = 1\ncontain = no\n")})
        self.assertEqual(talk(port), b"hi\n")
        bg = wait_until(lambda: one_pid(f), what="pid")
        self.leftover.append(bg)
        t0 = time.monotonic()
        self.assertEqual(talk(port), b"hi\n")
        self.assertLess(time.monotonic() - t0, 1.0)
        wait_until(lambda: len(pids_in(f)) == 2, what="the second pid")
        self.leftover += pids_in(f)
        self.assertTrue(alive(bg))

    @need_cgroups
    def test_c_counts_trees(self):
        port = free_port()
        body = 'echo hi; setsid sleep 2 </dev/null >/dev/null 2>&1 &'
        self.start({"t.conf": self.service("t", port, body)}, extra_args=["-c", "1"])
        t0 = time.monotonic()
        self.assertEqual(talk(port), b"hi\n")
        self.assertEqual(talk(port), b"hi\n")
        self.assertGreater(time.monotonic() - t0, 1.5)

    # -- shutdown = stop

    @need_cgroups
    def test_shutdown_stop_ends_trees(self):
        port, lport = free_port(), free_port()
        f = os.path.join(self.tmp, "pids")
        stop = self.service("s", port, "sh -c 'trap \"\" TERM; echo $$ >> %s; exec sleep "
                            "1000' &\nsetsid sh -c 'echo $$ >> %s; exec sleep 1000' &\n"
                            "echo started; sleep 1000" % (f, f), "shutdown = stop\n")
        leave = self.service("l", lport, 'echo started; exec sleep 1000')
        p = self.start({"t.conf": stop + leave})
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertEqual(s.recv(100), b"started\n")
        ls = socket.create_connection(("127.0.0.1", lport), timeout=TIMEOUT)
        self.assertEqual(ls.recv(100), b"started\n")
        wait_until(lambda: os.path.exists(f) and len(pids_in(f)) == 2, what="two pids")
        stopped = pids_in(f)
        self.leftover += stopped
        left = [pid for pid, _ in p.children() if pid not in stopped]
        self.leftover += left
        t0 = time.monotonic()
        p.stop()
        self.assertLess(time.monotonic() - t0, GRACE + 3)
        self.assertFalse(any(alive(x) for x in stopped))
        self.assertIn("stopping 1 handler (shutdown = stop)", p.log())
        # The other service's handler is left to finish, as before.
        self.assertIn("1 handler left to finish", p.log())
        ls.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            ls.recv(100)
        ls.close()
        s.close()

    # -- accounting and clean-up

    @need_cgroups
    def test_cpu_seconds_and_cgroups_removed(self):
        port, sport, mport = free_port(), free_port(), free_port()
        body = 'i=0; while [ $i -lt 400000 ]; do i=$((i+1)); done; echo done'
        p = self.start({"t.conf": self.service("busy", port, body) +
                        "[st]\nlisten = 127.0.0.1:%d\nbuiltin = status\n" % sport +
                        "[m]\nlisten = 127.0.0.1:%d\nbuiltin = metrics\n" % mport})
        base = subtree_of(p)
        self.assertIsNotNone(base)
        self.assertEqual(talk(port, timeout=60), b"done\n")
        wait_until(lambda: status_line(sport, "busy")["running"] == "0", what="the end")
        cpu = float(status_line(sport, "busy")["cpu"].rstrip("s"))
        self.assertGreater(cpu, 0.05)
        metrics = talk(mport, b"GET /metrics HTTP/1.0\r\n\r\n").decode()
        self.assertIn('porterd_handler_cpu_seconds_total{service="busy"}', metrics)
        # porterd in a leaf of its own, handlers beside it.
        with open("/proc/%d/cgroup" % p.pid) as f:
            self.assertTrue(f.read().rstrip().endswith("/porterd"))
        self.assertTrue(os.path.isdir(os.path.join(base, "handlers", "busy")))
        p.stop()
        self.assertFalse(os.path.exists(base), "porterd's subtree is left after it stopped")

    @need_cgroups
    def test_cgroup_of_a_handler_left_to_finish_goes_when_it_ends(self):
        port = free_port()
        p = self.start({"t.conf": self.service("t", port, "echo started; exec sleep 2")})
        base = subtree_of(p)
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertEqual(s.recv(100), b"started\n")
        p.stop()
        self.assertIn("1 handler cgroup left", p.log())
        self.assertTrue(os.path.isdir(base))
        s.settimeout(TIMEOUT)
        self.assertEqual(s.recv(100), b"")
        s.close()
        wait_until(lambda: not os.path.exists(base), what="the subtree to go")

    @need_cgroups
    def test_limits_warn_where_not_enforceable(self):
        mnt = cgroup2_mount()
        with open(os.path.join(mnt, "cgroup.controllers")) as f:
            ctl = f.read().split()
        if "memory" in ctl:
            self.skipTest("this host can enforce memory_max")
        port = free_port()
        p = Porterd({"t.conf": self.service("t", port, "echo hi", "memory_max = 64M\n")})
        import subprocess
        from porterd_test import PORTERD
        r = subprocess.run([PORTERD, "-t", "-d", p.confdir], capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("t.conf:4: warning: memory_max cannot be enforced here", r.stderr)
        p.start()
        self.addCleanup(p.cleanup)
        self.assertEqual(talk(port), b"hi\n")
        self.assertEqual(p.log().count("t: memory_max cannot be enforced here"), 1)

    # -- without cgroups

    def test_fallback_keeps_signalling_the_group(self):
        port = free_port()
        f = os.path.join(self.tmp, "pids")
        notcg = os.path.join(self.tmp, "not-a-cgroup")
        body = ("sh -c 'trap \"\" TERM; echo $$ >> %s; exec sleep 1000' &\n"
                "echo started; sleep 1000" % f)
        p = self.start({"t.conf": self.service("t", port, body, "timeout = 1\n")},
                       extra_args=["-g", notcg])
        self.assertIn("no writable cgroup2 hierarchy", p.log())
        self.assertEqual(p.log().count("no writable cgroup2 hierarchy"), 1)
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.assertEqual(s.recv(100), b"started\n")
        wait_until(lambda: os.path.exists(f) and pids_in(f), what="pid")
        member = pids_in(f)
        self.leftover += member
        # The leader dies of SIGTERM; its group member ignores it, and gets SIGKILL.
        self.wait_gone(member, 1 + GRACE + 5)
        s.settimeout(TIMEOUT)
        self.assertEqual(s.recv(100), b"")
        s.close()
        p.wait_log("process group")
        self.assertIn("still there; sent SIGKILL", p.log())

    def test_fallback_with_g_none_serves(self):
        port = free_port()
        p = self.start({"t.conf": self.service("t", port, "echo hi")}, extra_args=["-g", "none"])
        self.assertIn("containment is off (-g none)", p.log())
        self.assertEqual(talk(port), b"hi\n")


if __name__ == "__main__":
    main()
