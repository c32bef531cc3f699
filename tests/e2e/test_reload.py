"""End to end: SIGHUP reloads are transactional and keep unchanged sockets."""

import ctypes
import errno
import os
import signal
import socket
import threading
import time
import unittest

from porterd_test import Porterd, TIMEOUT, VALGRIND, free_port, main, talk, wait_until


def service(name, port, reply):
    return ("[%s]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo %s\n"
            % (name, port, reply))


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def stop_thread(tid):
    """Stop one thread of another process (ptrace: the others run on); False if gone."""
    if libc.ptrace(PTRACE_SEIZE, tid, None, None) != 0:
        if ctypes.get_errno() == errno.ESRCH:
            return False
        raise OSError(ctypes.get_errno(), "ptrace seize %d" % tid)
    if libc.ptrace(PTRACE_INTERRUPT, tid, None, None) != 0:
        raise OSError(ctypes.get_errno(), "ptrace interrupt %d" % tid)
    os.waitpid(tid, WALL)
    return True


def threads(pid, name="porterd-reload"):
    """The tids of pid's threads named name (the reader; not the spawner threads)."""
    found = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                if f.read().strip() == name:
                    found.append(int(t))
        except FileNotFoundError:
            continue
    return found


def read_done(pid):
    """Whether porterd's reader has said it is done (the count of its eventfd).
    Its eventfd is porterd's first (made before the spawner threads' one)."""
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:[eventfd]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("eventfd-count:"):
                        return int(line.split()[1], 16) != 0
        except FileNotFoundError:
            continue
    raise AssertionError("porterd has no eventfd")


class ReloadTest(unittest.TestCase):

    def start(self, services, **kw):
        p = Porterd(services, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def test_hammered_service_refuses_nothing_over_20_reloads(self):
        steady, extra = free_port(), free_port()
        base = {"10-steady.conf": service("steady", steady, "steady")}
        p = self.start(base, verbose=False)
        stop = threading.Event()
        results = {"ok": 0, "bad": []}

        def hammer():
            deadline = time.monotonic() + 300
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    out = talk(steady, timeout=10)
                    if out == b"steady\n":
                        results["ok"] += 1
                    else:
                        results["bad"].append(out)
                except OSError as e:
                    results["bad"].append(repr(e))

        t = threading.Thread(target=hammer)
        t.start()
        try:
            for i in range(20):
                # Each reload lands while the client is getting through.
                served = results["ok"]
                wait_until(lambda: results["ok"] > served or results["bad"],
                           what="a connection between reloads")
                if i % 2 == 0:
                    p.set_services(dict(base, **{"20-extra.conf":
                                                 service("extra", extra, "extra%d" % i)}))
                    self.assertTrue(p.reload())
                    self.assertEqual(talk(extra), b"extra%d\n" % i)
                else:
                    p.set_services(base)
                    self.assertTrue(p.reload())
                    self.assertTrue(refused(extra), "removed service still listening")
        finally:
            stop.set()
            t.join(timeout=60)
        self.assertEqual(results["bad"], [])
        self.assertGreaterEqual(results["ok"], 20)

    # Under valgrind, one thread at a time runs: stopping one stops all.
    @unittest.skipIf(VALGRIND, "valgrind runs one thread at a time")
    def test_the_loop_serves_while_a_reload_reads(self):
        # A reload reads services.d on a thread of its own. Hold that thread still
        # (ptrace stops it alone): the running table must go on serving, a second
        # SIGHUP waits for the first, and both are applied once the read goes on.
        steady, changed = free_port(), free_port()
        fillers = {"f%02d.conf" % f: "".join(
            "[filler%02d%03d]\nlisten = 127.0.0.1:%d\nexec = /bin/true\nenabled = no\n"
            % (f, i, 30000 + 250 * f + i) for i in range(250)) for f in range(8)}
        base = dict(fillers, **{"a.conf": service("steady", steady, "steady"),
                                "b.conf": service("changed", changed, "before")})
        p = self.start(base)
        stopped = None
        for attempt in range(5):
            done = p.log().count("reloaded ")
            os.kill(p.pid, signal.SIGHUP)
            deadline = time.monotonic() + TIMEOUT
            while stopped is None and time.monotonic() < deadline:
                for tid in threads(p.pid):
                    if not stop_thread(tid):
                        continue
                    if not read_done(p.pid):
                        stopped = tid
                        break
                    libc.ptrace(PTRACE_DETACH, tid, None, None)    # caught too late
                if stopped is None and p.log().count("reloaded ") > done:
                    break       # read before we could catch it: again
            if stopped is not None:
                break
            wait_until(lambda: p.log().count("reloaded ") > done, what="the reload")
        self.assertIsNotNone(stopped, "never caught the reload's reader thread")
        detached = False
        try:
            log = p.log()
            self.assertEqual(log.count("reloading "), done + 1)
            for i in range(3):
                self.assertEqual(talk(steady), b"steady\n")
            p.set_services(dict(base, **{"b.conf": service("changed", changed, "after")}))
            os.kill(p.pid, signal.SIGHUP)
            self.assertEqual(talk(changed), b"before\n")
            self.assertEqual(p.log().count("reloaded "), done, "applied before the read ended")
            libc.ptrace(PTRACE_DETACH, stopped, None, None)
            detached = True
        finally:
            if not detached:
                libc.ptrace(PTRACE_DETACH, stopped, None, None)
        # The first reload, then the one asked for meanwhile, which sees the change.
        p.wait_log("reloaded ", count=done + 2)
        self.assertEqual(talk(changed), b"after\n")
        self.assertEqual(p.log().count("reloading "), done + 2)
        wait_until(lambda: threads(p.pid) == [], what="the reader thread to end")

    def test_broken_config_keeps_the_running_table(self):
        a, b = free_port(), free_port()
        p = self.start({"10-a.conf": service("a", a, "A"), "20-b.conf": service("b", b, "B")})
        p.set_services({"10-a.conf": service("a", a, "A2") + "bogus = 1\n",
                        "20-b.conf": "[b]\nlisten = 127.0.0.1:%d\n" % b})
        self.assertFalse(p.reload())
        log = p.log()
        self.assertIn("10-a.conf:5: unknown key 'bogus'", log)
        self.assertIn("20-b.conf:1: [b] has neither exec nor builtin", log)
        self.assertIn("reload failed with 2 errors; the running configuration is unchanged",
                      log)
        self.assertEqual(talk(a), b"A\n")
        self.assertEqual(talk(b), b"B\n")
        # Fixed, it applies.
        p.set_services({"10-a.conf": service("a", a, "A2"), "20-b.conf": service("b", b, "B")})
        self.assertTrue(p.reload())
        self.assertEqual(talk(a), b"A2\n")

    def test_reload_rolls_back_when_a_new_socket_cannot_open(self):
        a, new = free_port(), free_port()
        p = self.start({"10-a.conf": service("a", a, "A")})
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            busy = holder.getsockname()[1]
            p.set_services({"10-a.conf": service("a", a, "A-new"),
                            "20-new.conf": service("new", new, "N"),
                            "30-busy.conf": service("busy", busy, "X")})
            self.assertFalse(p.reload())
        self.assertIn("busy: listen 127.0.0.1:%d: bind: Address already in use" % busy,
                      p.log())
        self.assertEqual(talk(a), b"A\n")
        self.assertTrue(refused(new), "a socket of the failed reload stayed open")

    def test_a_reload_waits_on_no_other_process(self):
        """Two things a reload opens that another process could hold up: a
        unix socket path whose listener's queue is full (the probe for a stale
        socket), and a tls_cert that is a FIFO with no writer. Each fails the
        reload at once; the running services answer meanwhile."""
        a = free_port()
        p = self.start({"10-a.conf": service("a", a, "A")})
        path = os.path.join(p.dir, "busy.sock")
        fifo = os.path.join(p.dir, "cert.fifo")
        os.mkfifo(fifo)
        with socket.socket(socket.AF_UNIX) as holder:
            holder.bind(path)
            holder.listen(0)
            queued = []
            self.addCleanup(lambda: [q.close() for q in queued])
            for _ in range(16):     # until its queue is full
                q = socket.socket(socket.AF_UNIX)
                q.setblocking(False)
                queued.append(q)
                try:
                    q.connect(path)
                except BlockingIOError:
                    break
            else:
                self.fail("the queue never filled")
            p.set_services({"10-a.conf": service("a", a, "A"),
                            "20-u.conf": "[u]\nlisten = unix:%s\nbuiltin = daytime\n" % path})
            self.assertFalse(p.reload())
            self.assertIn("another process is listening on it", p.log())
            self.assertEqual(talk(a), b"A\n")
        p.set_services({"10-a.conf": service("a", a, "A"),
                        "20-t.conf": "[t]\nlisten = 127.0.0.1:%d\nexec = /bin/cat\ntls = yes\n"
                        "tls_cert = %s\ntls_key = %s\n" % (free_port(), fifo, fifo)})
        self.assertFalse(p.reload())
        self.assertIn("20-t.conf:5: tls_cert = %s: not a regular file" % fifo, p.log())
        self.assertEqual(talk(a), b"A\n")

    def test_a_file_changed_under_the_same_times_is_read_again(self):
        # Unchanged files are not read again at a reload; a file is, once any
        # of its inode, size, mtime or ctime changed: here only ctime does.
        port, other = free_port(), free_port()
        p = Porterd({"10-a.conf": "[a]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\n"
                                  "args = echo one\n" % port,
                     "20-b.conf": "[b]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\n"
                                  "args = echo bee\n" % other})
        self.addCleanup(p.cleanup)
        path = os.path.join(p.confdir, "10-a.conf")
        old = 1_000_000_000     # long settled: cached after the first reload
        for name in ("10-a.conf", "20-b.conf"):
            os.utime(os.path.join(p.confdir, name), (old, old))
        # A file is cached once its times are 2 s old; utime just moved ctime.
        wait_until(lambda: time.time() - os.stat(path).st_ctime > 2.2, timeout=5,
                   what="the files to settle", interval=0.1)
        p.start()
        self.assertTrue(p.reload())
        self.assertTrue(p.reload())
        self.assertEqual((talk(port), talk(other)), (b"one\n", b"bee\n"))
        with open(path, "r+") as f:      # same size, same mtime: only ctime moves
            f.write("[a]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo two\n" % port)
        os.utime(path, (old, old))
        self.assertTrue(p.reload())
        self.assertEqual((talk(port), talk(other)), (b"two\n", b"bee\n"))
        os.unlink(os.path.join(p.confdir, "20-b.conf"))
        self.assertTrue(p.reload())
        self.assertEqual(talk(port), b"two\n")
        self.assertRaises(OSError, talk, other)

    def test_changed_handler_same_socket(self):
        a = free_port()
        p = self.start({"10-a.conf": service("a", a, "one")})
        fds = p.fds()
        p.set_services({"10-a.conf": service("a", a, "two")})
        self.assertTrue(p.reload())
        self.assertEqual(talk(a), b"two\n")
        wait_until(lambda: not p.children(), what="reaped")
        self.assertEqual(p.settled_fds(), fds, "the socket was reopened or leaked")

    def test_removed_unix_service_removes_its_file(self):
        a = free_port()
        p = Porterd({})
        self.addCleanup(p.cleanup)
        path = os.path.join(p.dir, "u.sock")
        p.set_services({"10-a.conf": service("a", a, "A"),
                        "20-u.conf": "[u]\nlisten = unix:%s\nbuiltin = daytime\n" % path})
        p.start()
        self.assertTrue(os.path.exists(path))
        p.set_services({"10-a.conf": service("a", a, "A")})
        self.assertTrue(p.reload())
        self.assertFalse(os.path.exists(path))

    def test_children_of_removed_service_are_reaped(self):
        a, b = free_port(), free_port()
        p = self.start({"10-a.conf": service("a", a, "A"),
                        "20-slow.conf": "[slow]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                        "args = sh -c 'read x; echo bye'\n" % b})
        s = socket.create_connection(("127.0.0.1", b), timeout=TIMEOUT)
        self.addCleanup(s.close)
        wait_until(lambda: len(p.children()) == 1, what="slow handler")
        p.set_services({"10-a.conf": service("a", a, "A")})
        self.assertTrue(p.reload())
        self.assertTrue(refused(b))
        s.sendall(b"x\n")
        self.assertEqual(s.recv(10), b"bye\n")
        wait_until(lambda: not p.children(), what="the orphaned handler reaped")
        p.wait_log("slow: pid ")

    def test_sigusr1_status_dump(self):
        a = free_port()
        p = self.start({"10-a.conf": service("a", a, "A")})
        talk(a)
        os.kill(p.pid, 10)  # SIGUSR1
        p.wait_log("status: a 127.0.0.1:%d listening running=" % a)


if __name__ == "__main__":
    main()
