"""End to end: no zombie, no fd leak, no stall, whatever the clients do."""

import os
import socket
import struct
import threading
import time
import unittest

from porterd_test import Porterd, TIMEOUT, free_port, main, talk, wait_until


class HygieneTest(unittest.TestCase):

    def start(self, services, **kw):
        p = Porterd(services, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def test_2000_connections_leave_no_zombie_and_no_fd(self):
        port = free_port()
        p = self.start({"a.conf": "[ok]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\n"
                        "args = echo ok\n" % port}, verbose=False)
        talk(port)
        wait_until(lambda: not p.children(), what="first handler reaped")
        fds_before = p.settled_fds()
        errors = []

        def client(n):
            try:
                for _ in range(n):
                    if talk(port) != b"ok\n":
                        errors.append("wrong reply")
            except OSError as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(250,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        self.assertEqual(errors, [])
        wait_until(lambda: not p.children(), what="every handler reaped")
        # The cgroups of the last connections are let go of a second after.
        self.assertEqual(p.settled_fds(), fds_before, "an fd leaked")
        self.assertEqual([c for c in p.children() if c[1] == "Z"], [])

    def test_resets_and_silent_clients_do_not_hurt(self):
        cat, hello = free_port(), free_port()
        p = self.start({"a.conf":
                        "[cat]\nlisten = 127.0.0.1:%d\nexec = /bin/cat\n"
                        "[hello]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo hi\n"
                        % (cat, hello)}, verbose=False)
        talk(hello)
        wait_until(lambda: not p.children(), what="first handler reaped")
        fds_before = p.settled_fds()
        # Clients that connect and reset at once (RST, not FIN).
        for _ in range(200):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.connect(("127.0.0.1", cat))
            s.close()
        # Clients that connect and never send: their cat handlers wait forever.
        idle = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", cat), timeout=TIMEOUT)
            idle.append(s)
        self.addCleanup(lambda: [s.close() for s in idle])
        wait_until(lambda: len(p.children()) >= 20, what="20 idle handlers")
        # The other service is not held up.
        self.assertEqual(talk(hello), b"hi\n")
        for s in idle:
            s.close()
        wait_until(lambda: not p.children(), what="idle handlers gone")
        # "No children" can come between two handlers while the last clients
        # still wait to be accepted: a leaked fd stays, a connection in hand goes.
        try:
            wait_until(lambda: p.settled_fds() == fds_before, what="porterd's fds as before")
        except AssertionError:
            self.assertEqual(p.fds(), fds_before)
            raise
        self.assertTrue(p.alive())

    def test_max_children_pauses_instead_of_refusing(self):
        port = free_port()
        p = self.start({"a.conf": "[slow]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                        "args = sh -c 'read x; echo done'\nmax_children = 2\n" % port})
        socks = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                 for _ in range(6)]
        self.addCleanup(lambda: [s.close() for s in socks])
        wait_until(lambda: len(p.children()) == 2, what="two handlers")
        # The others wait in the backlog: connected, not refused, not served yet.
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            self.assertLessEqual(len(p.children()), 2)
        for s in socks:
            s.sendall(b"x\n")
        for s in socks:
            self.assertEqual(s.recv(100), b"done\n")
        wait_until(lambda: not p.children(), what="all reaped")
        # A start made by a spawner thread is logged once its job is collected,
        # which may come after its handler was reaped.
        p.wait_log("slow: 127.0.0.1:", count=6)
        self.assertEqual(p.log().count("slow: 127.0.0.1:"), 6)


if __name__ == "__main__":
    main()
