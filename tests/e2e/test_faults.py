"""End to end: hostile input and faults. Each test is what a probe of the
running daemon did to it, and checks that porterd ends the damage by itself."""

import os
import re
import socket
import struct
import time
import unittest

from porterd_test import (TIMEOUT, VALGRIND, Porterd, cpu_ticks, free_port, main, need_root, talk,
                          wait_until)


def metric(port, name, **labels):
    """One value of porterd's metrics builtin, 0 when the series is absent."""
    text = talk(port, b"GET /metrics HTTP/1.0\r\n\r\n").decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if m and m.group(1) == name and \
                ",".join(sorted(m.group(2).split(","))) == want:
            return float(m.group(3))
    return 0.0


def forge_udp(src, dst, payload):
    """A UDP datagram from any source address and port (a raw socket: root)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64,
                     socket.IPPROTO_UDP, 0, socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        s.sendto(ip + udp, (dst[0], 0))


class UdpBuiltinLoopTest(unittest.TestCase):
    """One forged datagram must not set two UDP builtins answering each other."""

    def start(self, *ports):
        self.metrics = free_port()
        conf = "[metrics]\nlisten = 127.0.0.1:%d\nbuiltin = metrics\n" % self.metrics
        for i, port in enumerate(ports):
            conf += "[echo%d]\nlisten = 127.0.0.1:%d\nprotocol = udp\nbuiltin = echo\n" % (
                i, port)
        p = Porterd({"10-udp.conf": conf}, verbose=False)
        self.addCleanup(p.cleanup)
        return p.start()

    def answered(self, i):
        return metric(self.metrics, "porterd_connections_accepted_total",
                      service="echo%d" % i)

    @need_root
    def test_a_forged_datagram_between_two_builtins_is_not_answered(self):
        a = free_port(socket.SOCK_DGRAM)
        b = free_port(socket.SOCK_DGRAM)
        p = self.start(a, b)
        ticks = cpu_ticks(p.pid)
        forge_udp(("127.0.0.1", a), ("127.0.0.1", b), b"ping-pong")
        # it claims to come from a builtin of ours: answering it starts the loop
        p.wait_log("echo1: refused 127.0.0.1:%d (loop)" % a)
        self.assertEqual((self.answered(0), self.answered(1)), (0.0, 0.0))
        self.assertEqual(metric(self.metrics, "porterd_connections_refused_total",
                                service="echo1", reason="loop"), 1.0)
        # and nothing goes on behind our back: no answers, no CPU spent
        time.sleep(0.3)  # a running loop would answer thousands of times by now
        self.assertEqual((self.answered(0), self.answered(1)), (0.0, 0.0))
        self.assertLess(cpu_ticks(p.pid) - ticks, 20)

    @need_root
    def test_a_datagram_from_the_service_itself_is_not_answered(self):
        a = free_port(socket.SOCK_DGRAM)
        p = self.start(a)
        forge_udp(("127.0.0.1", a), ("127.0.0.1", a), b"myself")
        p.wait_log("echo0: refused 127.0.0.1:%d (loop)" % a)
        self.assertEqual(self.answered(0), 0.0)

    def test_a_ping_pong_with_another_server_ends_after_a_few_rounds(self):
        # Another host's echo server, as far as porterd can tell: it bounces
        # every datagram back, as a second porterd elsewhere would.
        a = free_port(socket.SOCK_DGRAM)
        p = self.start(a)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.2", 0))
            peer.settimeout(0.5)
            peer.sendto(b"ball", ("127.0.0.1", a))
            rounds = 0
            deadline = time.monotonic() + TIMEOUT
            while rounds < 10000 and time.monotonic() < deadline:
                try:
                    data, frm = peer.recvfrom(100)
                except socket.timeout:
                    break       # porterd stopped answering: the game is over
                rounds += 1
                peer.sendto(data, frm)
        self.assertLessEqual(rounds, 25)
        self.assertGreaterEqual(rounds, 5)
        p.wait_log("echo0: refused 127.0.0.2")
        self.assertIn("(source_rate)", p.log())
        # an ordinary client of the same service is still answered
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.settimeout(TIMEOUT)
            c.sendto(b"hello", ("127.0.0.1", a))
            self.assertEqual(c.recvfrom(100)[0], b"hello")


class WaitHandlerSpinTest(unittest.TestCase):
    """A wait handler that leaves what woke it is not started again at once, forever."""

    def start(self, handler_args):
        port = free_port(socket.SOCK_DGRAM)
        p = Porterd({}, verbose=False)
        self.addCleanup(p.cleanup)
        self.starts = os.path.join(p.dir, "starts")
        p.set_services({"10-w.conf": "[w]\nlisten = 127.0.0.1:%d\nprotocol = udp\nwait = yes\n"
                        "exec = /bin/sh\nargs = sh -c '%s'\n" % (
                            port, handler_args.replace("@STARTS@", self.starts))})
        p.start()
        return p, port

    def count(self):
        try:
            with open(self.starts) as f:
                return len(f.read().splitlines())
        except FileNotFoundError:
            return 0

    def test_a_handler_that_exits_without_reading_backs_off(self):
        p, port = self.start("echo started >> @STARTS@")
        ticks = cpu_ticks(p.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.sendto(b"never read", ("127.0.0.1", port))
        p.wait_log("w: 3 handlers in a row exited without taking what woke them; "
                   "the next starts in 1 s")
        seen = self.count()
        time.sleep(1.5)  # a window to count starts in: unchecked, some 300 more
        # one start after the 1 s pause, then the next waits 2 s
        self.assertLessEqual(self.count() - seen, 2)
        self.assertLess(cpu_ticks(p.pid) - ticks, 50)

    def start_unix(self, handler):
        """A wait service on a unix socket; handler: its exec (and args) lines."""
        p = Porterd({}, verbose=False)
        self.addCleanup(p.cleanup)
        self.starts = os.path.join(p.dir, "starts")
        path = os.path.join(p.dir, "w.sock")
        p.set_services({"10-w.conf": "[w]\nlisten = unix:%s\nwait = yes\n%s"
                        % (path, handler.replace("@STARTS@", self.starts))})
        p.start()
        return p, path

    def test_a_unix_handler_that_exits_without_accepting_backs_off(self):
        # TCP_INFO says nothing of a unix socket's queue: it comes from
        # unix_diag. Without it, such a handler was started 1,600 times a second.
        p, path = self.start_unix("exec = /bin/sh\nargs = sh -c 'echo started >> @STARTS@'\n")
        ticks = cpu_ticks(p.pid)
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(path)
            p.wait_log("w: 3 handlers in a row exited without taking what woke them; "
                       "the next starts in 1 s")
            self.assertLessEqual(self.count(), 4)
        self.assertLess(cpu_ticks(p.pid) - ticks, 50)

    def test_a_unix_handler_that_accepts_is_not_held_back(self):
        p, path = self.start_unix("exec = /usr/bin/python3\nargs = python3 -c \"import socket; "
                                  "c, _ = socket.socket(fileno=0).accept(); "
                                  "c.sendall(b'hi')\"\n")
        for i in range(6):
            with socket.socket(socket.AF_UNIX) as c:
                c.settimeout(TIMEOUT)
                c.connect(path)
                self.assertEqual(c.recv(10), b"hi", "client %d" % i)
        self.assertNotIn("in a row exited without taking", p.log())

    def test_a_handler_that_reads_one_and_exits_is_not_held_back(self):
        # It takes one datagram and leaves the rest for the next handler: not a spin.
        p, port = self.start("python3 -c "
                             "\"import socket; s = socket.socket(fileno=0); "
                             "s.recvfrom(100)\"; echo started >> @STARTS@")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            for i in range(8):
                c.sendto(b"%d" % i, ("127.0.0.1", port))
        wait_until(lambda: self.count() == 8, timeout=5, what="8 handlers, one a datagram")
        self.assertNotIn("in a row exited without taking", p.log())


class DescriptorLimitTest(unittest.TestCase):

    @unittest.skipIf(VALGRIND, "valgrind keeps descriptors of its own below the limit")
    def test_porterd_raises_its_own_limit_and_handlers_get_the_old_one(self):
        port, port2 = free_port(), free_port()
        p = Porterd({"10-n.conf": "[n]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                  "args = sh -c 'ulimit -Sn; ulimit -Hn'\n"
                                  "[m]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                  "args = sh -c 'ulimit -Sn'\nrlimit_nofile = 512\n"
                     % (port, port2)})
        self.addCleanup(p.cleanup)
        cmd = p.command
        p.command = lambda: ["prlimit", "--nofile=1024:4096"] + cmd()
        p.start()
        with open("/proc/%d/limits" % p.pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0].split()
        self.assertEqual(line[3:5], ["4096", "4096"])
        self.assertEqual(talk(port), b"1024\n4096\n")
        self.assertEqual(talk(port2), b"512\n")


if __name__ == "__main__":
    main()
