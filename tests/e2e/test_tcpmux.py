"""End to end: tcpmux (RFC 1078) hands a connection to the service it names,
with that service's limits, ids and environment, and never blocks the loop."""

import os
import re
import signal
import socket
import subprocess
import time
import unittest

from porterd_test import PORTERD, Porterd, TIMEOUT, free_port, main, need_root, talk, wait_until


def mux(port, name, data=b"", source=None):
    return talk(port, name + b"\r\n" + data, source=source)


class TcpmuxTest(unittest.TestCase):

    def start(self, body):
        p = Porterd({"10-mux.conf": body})
        self.addCleanup(p.cleanup)
        return p.start()

    def base(self, port, extra=""):
        return ("[mux]\nlisten = 127.0.0.1:%d\nbuiltin = tcpmux\n%s"
                "[greeter]\ntcpmux = greet\ntcpmux_ack = yes\nexec = /bin/sh\n"
                "args = sh -c 'read x; echo \"hello $x from $PORTERD_SERVICE on $TCPLOCALPORT\"'\n"
                "[plain]\ntcpmux = Plain-Svc\nexec = /bin/cat\n"
                "[off]\ntcpmux = hidden\nexec = /bin/cat\nenabled = no\n" % (port, extra))

    def test_help_lists_the_enabled_names(self):
        port = free_port()
        self.start(self.base(port))
        self.assertEqual(mux(port, b"HELP"), b"greet\r\nPlain-Svc\r\n")
        self.assertEqual(mux(port, b"help"), b"greet\r\nPlain-Svc\r\n")

    def test_named_service_with_and_without_ack(self):
        port = free_port()
        self.start(self.base(port))
        self.assertEqual(mux(port, b"GREET", b"world\n"),
                         b"+Go\r\nhello world from greeter on %d\n" % port)
        # Without tcpmux_ack the handler speaks first; what came after the name is its.
        self.assertEqual(mux(port, b"plain-svc", b"pipelined\nbytes\n"),
                         b"pipelined\nbytes\n")

    def test_unknown_and_disabled_names(self):
        port = free_port()
        self.start(self.base(port))
        self.assertEqual(mux(port, b"nope"), b"-Service not available\r\n")
        self.assertEqual(mux(port, b"hidden"), b"-Service not available\r\n")

    def test_a_client_that_names_nothing_in_time_is_counted(self):
        port = free_port()
        p = self.start(self.base(port, "timeout = 1\n"))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            self.assertEqual(s.recv(100), b"-Timeout\r\n")
        p.wait_log("mux: closed a client that named no service in time")
        n = p.log().count("status: mux ")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: mux ", count=n + 1)
        line = [l for l in p.log().splitlines() if "status: mux " in l][-1]
        self.assertIn(",idle:1 ", line)

    def test_target_admission_applies(self):
        port = free_port()
        body = self.base(port).replace("[plain]\n", "[plain]\ndeny = 127.0.0.2\n")
        p = self.start(body)
        self.assertEqual(mux(port, b"plain-svc", b"x\n", source=("127.0.0.2", 0)),
                         b"-Refused\r\n")
        self.assertEqual(mux(port, b"plain-svc", b"x\n", source=("127.0.0.1", 0)), b"x\n")
        n = p.log().count("status: plain ")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: plain ", count=n + 1)
        line = [l for l in p.log().splitlines() if "status: plain " in l][-1]
        self.assertIn("status: plain tcpmux:Plain-Svc tcpmux running=", line)
        self.assertIn("accepted=1 ", line)
        self.assertIn("refused=acl:1,", line)

    def test_target_max_children_waits_instead_of_refusing(self):
        port = free_port()
        body = self.base(port).replace("[plain]\n", "[plain]\nmax_children = 1\n")
        p = self.start(body)
        first = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(first.close)
        first.sendall(b"plain-svc\r\none\n")
        self.assertEqual(first.recv(10), b"one\n")
        second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(second.close)
        second.sendall(b"plain-svc\r\ntwo\n")
        wait_until(lambda: p.log().count("plain: 127.0.0.1") == 1, what="first handler")
        # The second is held, not refused, until the first handler goes.
        self.assertEqual(len(p.children()), 1)
        first.close()
        self.assertEqual(second.recv(10), b"two\n")

    def test_silent_client_times_out_and_blocks_nothing(self):
        port, day = free_port(), free_port()
        p = self.start(self.base(port, "timeout = 1\nmax_children = 2\n") +
                       "[day]\nlisten = 127.0.0.1:%d\nbuiltin = daytime\n" % day)
        silent = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                  for _ in range(3)]
        self.addCleanup(lambda: [s.close() for s in silent])
        # The loop goes on serving while they say nothing.
        self.assertTrue(talk(day).endswith(b"-UTC\r\n"))
        # Two are held (max_children of the tcpmux service), the third waits in the
        # backlog; each gets -Timeout after its second, then the third gets its turn.
        for s in silent:
            self.assertEqual(s.recv(100), b"-Timeout\r\n")
            self.assertEqual(s.recv(100), b"")
        wait_until(lambda: p.log().count("mux: 127.0.0.1") == 3, what="all three accepted")

    @need_root
    def test_target_runs_with_its_own_user(self):
        port = free_port()
        body = self.base(port) + "[who]\ntcpmux = whoami\nexec = /usr/bin/id\nargs = id -u\nuser = nobody\n"
        self.start(body)
        nobody = subprocess.run(["id", "-u", "nobody"], capture_output=True).stdout
        self.assertEqual(mux(port, b"whoami"), nobody)

    def test_inherited_listen_does_not_apply(self):
        port = free_port()
        self.start("[defaults]\nlisten = 127.0.0.1:%d\n" % free_port() +
                   self.base(port).replace("[mux]\nlisten", "[mux]\nlisten"))
        self.assertEqual(mux(port, b"plain-svc", b"x\n"), b"x\n")

    def test_config_errors(self):
        port = free_port()
        p = Porterd({"10-bad.conf": "[a]\ntcpmux = x\nlisten = 127.0.0.1:%d\nexec = /bin/cat\n"
                     "[b]\ntcpmux = X\nexec = /bin/cat\n"
                     "[c]\ntcpmux = help\nexec = /bin/cat\n" % port})
        self.addCleanup(p.cleanup)
        r = subprocess.run([PORTERD, "-t", "-d", p.confdir], capture_output=True,
                           text=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("10-bad.conf:3: [a] is reached through tcpmux; it has no listen of its own",
                      r.stderr)
        self.assertIn("10-bad.conf:6: [b]: tcpmux name X is already [a]'s", r.stderr)
        self.assertIn("10-bad.conf:9: tcpmux = help: HELP is the name tcpmux itself answers",
                      r.stderr)


if __name__ == "__main__":
    main()
