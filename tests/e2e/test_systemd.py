"""End to end: porterd among systemd's conventions and other porterd: socket
activation in (LISTEN_FDS) and out (fds = systemd), sd_notify readiness, and
SO_REUSEPORT shared by two instances."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from porterd_test import (PORTERD, Porterd, TIMEOUT, free_port, main, need_program, talk,
                          wait_until)


class SocketActivationTest(unittest.TestCase):

    def activate(self, p, args, port):
        """systemd-socket-activate binds with args, then execs porterd on the
        first connection: wait until it listens on port."""
        p.logfile = open(p.logpath, "ab")
        p.proc = subprocess.Popen(["systemd-socket-activate"] + args + p.command(),
                                  stdin=subprocess.DEVNULL, stdout=p.logfile,
                                  stderr=p.logfile)
        p.pid = p.proc.pid

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, what="systemd-socket-activate listening")

    @need_program("systemd-socket-activate")
    def test_adopts_passed_sockets_by_name_and_address(self):
        named, byaddr = free_port(), free_port()
        p = Porterd({"10-sa.conf":
                     "[web]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo named\n"
                     "[other]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo byaddr\n"
                     % (named, byaddr)})
        self.addCleanup(p.cleanup)
        self.activate(p, ["-l", "127.0.0.1:%d" % named, "--fdname=web:x",
                          "-l", "127.0.0.1:%d" % byaddr], named)
        self.assertEqual(talk(named), b"named\n")
        p.wait_log("started with")
        self.assertIn("web: adopted the socket passed as fd 3 named web", p.log())
        self.assertIn("other: adopted the socket passed as fd 4", p.log())
        self.assertEqual(talk(byaddr), b"byaddr\n")
        # A reload keeps them (porterd could not bind them itself: they are taken).
        self.assertTrue(p.reload())
        self.assertEqual(talk(named), b"named\n")
        self.assertEqual(talk(byaddr), b"byaddr\n")

    @need_program("systemd-socket-activate")
    def test_a_socket_adopted_by_name_elsewhere_is_served_and_reported(self):
        # FileDescriptorName decides; the address systemd bound is what clients
        # reach, so that is what the handler is told, and porterd warns.
        held, said = free_port(), free_port()
        p = Porterd({"10-sa.conf": "[web]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                   "args = sh -c 'echo $TCPLOCALIP:$TCPLOCALPORT'\n" % said})
        self.addCleanup(p.cleanup)
        self.activate(p, ["-l", "127.0.0.1:%d" % held, "--fdname=web"], held)
        self.assertEqual(talk(held), b"127.0.0.1:%d\n" % held)
        p.wait_log("started with")
        self.assertIn("web: the socket named web is on 127.0.0.1:%d, not on 127.0.0.1:%d "
                      "as listen says; serving it" % (held, said), p.log())
        self.assertEqual(talk(held), b"127.0.0.1:%d\n" % held)

    def test_fds_systemd_passes_the_socket_as_fd_3(self):
        port = free_port()
        p = Porterd({})
        self.addCleanup(p.cleanup)
        script = os.path.join(p.dir, "sd.py")
        with open(script, "w") as f:
            f.write("#!/usr/bin/python3\n"
                    "import os, socket, stat\n"
                    "ok = (os.environ['LISTEN_FDS'] == '1' and\n"
                    "      os.environ['LISTEN_PID'] == str(os.getpid()) and\n"
                    "      os.environ['LISTEN_FDNAMES'] == 'sd' and\n"
                    "      not stat.S_ISSOCK(os.fstat(0).st_mode) and\n"
                    "      not stat.S_ISSOCK(os.fstat(1).st_mode) and\n"
                    # non-blocking, as systemd creates its listening sockets
                    "      not os.get_blocking(3))\n"
                    "import select\n"
                    "s = socket.socket(fileno=3)\n"
                    "for i in range(2):\n"
                    "    select.select([s], [], [], 30)\n"
                    "    c, _ = s.accept()\n"
                    "    c.sendall(b'%d %s %d\\n' % (i, str(ok).encode(), os.getpid()))\n"
                    "    c.close()\n")
        os.chmod(script, 0o755)
        p.set_services({"10-sd.conf": "[sd]\nlisten = 127.0.0.1:%d\nwait = yes\nfds = systemd\n"
                                      "exec = %s\n" % (port, script)})
        p.start()
        first = talk(port).split()
        second = talk(port).split()
        self.assertEqual(first[:2], [b"0", b"True"])
        self.assertEqual(second[:2], [b"1", b"True"])
        self.assertEqual(first[2], second[2])
        # That handler is done; the next connection gets a new one.
        third = talk(port).split()
        self.assertEqual(third[:2], [b"0", b"True"])
        self.assertNotEqual(third[2], first[2])
        # Its second connection lets that handler finish: none outlives the test.
        self.assertEqual(talk(port).split()[:3], [b"1", b"True", third[2]])
        wait_until(lambda: not p.children(), what="the handler's exit")


class NotifyTest(unittest.TestCase):

    def test_ready_reloading_stopping(self):
        d = tempfile.mkdtemp(prefix="porterd-notify.")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(TIMEOUT)
        port = free_port()
        p = Porterd({"10-n.conf": "[n]\nlisten = 127.0.0.1:%d\nbuiltin = daytime\n" % port})
        self.addCleanup(p.cleanup)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            p.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        ready = sock.recv(4096).decode().split("\n")
        self.assertIn("READY=1", ready)
        self.assertIn("MAINPID=%d" % p.pid, ready)
        # The service answers once READY=1 was sent.
        self.assertTrue(talk(port).endswith(b"-UTC\r\n"))
        os.kill(p.pid, signal.SIGHUP)
        reloading = sock.recv(4096).decode().split("\n")
        self.assertEqual(reloading[0], "RELOADING=1")
        self.assertTrue(reloading[1].startswith("MONOTONIC_USEC="))
        again = sock.recv(4096).decode().split("\n")
        self.assertEqual(again[:2], ["READY=1", "STATUS=reloaded"])
        os.kill(p.pid, signal.SIGTERM)
        self.assertEqual(sock.recv(4096), b"STOPPING=1")


class ReuseportTest(unittest.TestCase):

    def test_two_instances_share_a_port_and_one_can_go(self):
        port = free_port()
        body = "[r]\nlisten = 127.0.0.1:%d\nreuseport = yes\nexec = /bin/echo\nargs = echo %s\n"
        a = Porterd({"10-r.conf": body % (port, "a")}, verbose=False)
        b = Porterd({"10-r.conf": body % (port, "b")}, verbose=False)
        self.addCleanup(a.cleanup)
        self.addCleanup(b.cleanup)
        a.start()
        b.start()
        with open("/proc/sys/net/ipv4/tcp_migrate_req") as f:
            migrate = f.read().strip()
        hinted = "net.ipv4.tcp_migrate_req is 0" in a.log()
        self.assertEqual(hinted, migrate == "0")
        seen = {"a\n": 0, "b\n": 0}
        for _ in range(200):
            seen[talk(port).decode()] += 1
        self.assertGreater(seen["a\n"], 0)
        self.assertGreater(seen["b\n"], 0)

        # Switch-over: a goes while a client hammers the port. Linux resets what
        # sat in the stopped listener's queue; we measure it, and require that
        # everything after the stop is served by b.
        stop = threading.Event()
        results = {"ok": 0, "failed": 0}

        def hammer():
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    if talk(port, timeout=10) in (b"a\n", b"b\n"):
                        results["ok"] += 1
                    else:
                        results["failed"] += 1
                except OSError:
                    results["failed"] += 1
        t = threading.Thread(target=hammer)
        t.start()
        wait_until(lambda: results["ok"] > 50, what="load before the switch")
        self.assertEqual(a.stop(), 0)
        after = results["ok"]
        wait_until(lambda: results["ok"] > after + 100, what="load after the switch")
        stop.set()
        t.join(timeout=60)
        print("\nreuseport switch-over: %d served, %d failed around the stop"
              % (results["ok"], results["failed"]))
        for _ in range(50):
            self.assertEqual(talk(port), b"b\n")


if __name__ == "__main__":
    main()
