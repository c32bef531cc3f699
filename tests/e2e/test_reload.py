"""End to end: SIGHUP reloads are transactional and keep unchanged sockets."""

import os
import socket
import threading
import time
import unittest

from porterd_test import Porterd, TIMEOUT, free_port, main, talk, wait_until


def service(name, port, reply):
    return ("[%s]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo %s\n"
            % (name, port, reply))


def refused(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


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
        self.assertEqual(p.fds(), fds, "the socket was reopened or leaked")

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
