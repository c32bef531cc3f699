"""End to end: the PROXY protocol (v1 and v2), from hand-made headers and from a
real HAProxy in front of two porterd: the handler sees the original client, the
bytes after the header are intact, bad headers are refused and counted."""

import errno
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from porterd_test import (Porterd, TIMEOUT, cpu_ticks, free_port, main, need_program, talk,
                          wait_until)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REPORT = ("exec = /bin/sh\n"
          "args = sh -c 'echo \"$PORTERD_SERVICE $TCPREMOTEIP $TCPREMOTEPORT $TCPLOCALIP "
          "$TCPLOCALPORT\"; exec cat'\n")


def v2_header(src, sport, dst, dport, family=socket.AF_INET, command=1, tlv=b""):
    addrs = (socket.inet_pton(family, src) + socket.inet_pton(family, dst) +
             struct.pack("!HH", sport, dport))
    fam = 0x11 if family == socket.AF_INET else 0x21
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(addrs) + len(tlv)) \
        + addrs + tlv


def exchange(port, parts, source=None):
    """Send parts as separate segments, half-close, read to EOF."""
    with socket.socket() as s:
        s.settimeout(TIMEOUT)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        for i, part in enumerate(parts):
            if i:
                # Not synchronisation: a pause so that each part leaves as a segment.
                time.sleep(0.05)
            s.sendall(part)
        out = b""
        try:
            s.shutdown(socket.SHUT_WR)
            while True:
                b = s.recv(65536)
                if not b:
                    return out
                out += b
        except (ConnectionResetError, BrokenPipeError):
            # Refused with input unread: the kernel resets instead of closing.
            return out
        except OSError as e:
            if e.errno == errno.ENOTCONN:  # reset before we even half-closed
                return out
            raise


def refused(p, name):
    n = p.log().count("status: %s " % name)
    os.kill(p.pid, signal.SIGUSR1)
    p.wait_log("status: %s " % name, count=n + 1)
    line = [l for l in p.log().splitlines() if "status: %s " % name in l][-1]
    return dict((k, int(v)) for k, v in (x.split(":") for x in
                re.search(r"refused=(\S+)", line).group(1).split(",")))


class ProxyTest(unittest.TestCase):

    def start(self, body, **kw):
        p = Porterd({"10-p.conf": body}, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def test_v1_split_over_segments_and_bytes_after(self):
        port = free_port()
        self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\n%s" % (port, REPORT))
        out = exchange(port, [b"PRO", b"XY TCP4 192.0.2.1 198.51.", b"100.7 5555 443\r",
                              b"\nfirst bytes\n", b"second\n"])
        self.assertEqual(out, b"pp 192.0.2.1 5555 198.51.100.7 443\nfirst bytes\nsecond\n")

    def test_v2_ipv4_ipv6_local_and_tlvs(self):
        port = free_port()
        self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v2\n%s" % (port, REPORT))
        out = exchange(port, [v2_header("203.0.113.9", 1234, "10.0.0.1", 80, tlv=b"\x04\x00\x01x")
                              + b"data\n"])
        self.assertEqual(out, b"pp 203.0.113.9 1234 10.0.0.1 80\ndata\n")
        out = exchange(port, [v2_header("2001:db8::5", 4444, "2001:db8::1", 443,
                                        socket.AF_INET6)[:20], v2_header(
            "2001:db8::5", 4444, "2001:db8::1", 443, socket.AF_INET6)[20:] + b"v6\n"])
        self.assertEqual(out, b"pp 2001:db8::5 4444 2001:db8::1 443\nv6\n")
        # LOCAL: the balancer's own connection; the handler sees the real peer.
        with socket.socket() as s:
            s.settimeout(TIMEOUT)
            s.connect(("127.0.0.1", port))
            me = s.getsockname()[1]
            s.sendall(V2_SIG + b"\x20\x00\x00\x00")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(100), b"pp 127.0.0.1 %d 127.0.0.1 %d\n" % (me, port))

    def test_bad_headers_are_refused_and_counted(self):
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = any\n%s" % (port, REPORT))
        bad = [
            b"GET / HTTP/1.0\r\n\r\n",                              # no header
            b"PROXY TCP4 192.0.2.1 198.51.100.7 99999 443\r\n",     # bad port
            b"PROXY TCP4 " + b"1" * 120 + b"\r\n",                 # too long
            V2_SIG + b"\x21\x11\xff\xff",                           # oversized v2
            V2_SIG + b"\x31\x11\x00\x0c" + b"\0" * 12,              # version 3
            b"PROXY TCP4 192.0.2.1",                                # truncated, then EOF
        ]
        for data in bad:
            self.assertEqual(exchange(port, [data]), b"", data)
        wait_until(lambda: refused(p, "pp")["proxy"] == len(bad), what="refusals counted")
        self.assertEqual(p.log().count("pp: refused 127.0.0.1:"), 1, "not rate-limited")
        self.assertEqual(p.children(), [])

    def test_silent_client_times_out_without_blocking(self):
        port, day = free_port(), free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = any\n%s"
                       "[day]\nlisten = 127.0.0.1:%d\nbuiltin = daytime\n" % (port, REPORT, day))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"PROXY TCP4 ")
            self.assertTrue(talk(day).endswith(b"-UTC\r\n"))
            t0 = cpu_ticks(p.pid)
            self.assertEqual(s.recv(100), b"")  # closed after 5 s without a whole header
            # Waiting on half a header costs nothing (it once woke poll over and over).
            self.assertLess(cpu_ticks(p.pid) - t0, 20)
        self.assertEqual(refused(p, "pp")["proxy"], 1)

    def test_a_silent_client_does_not_take_a_handler_slot(self):
        # A connection waiting for its header is held apart from the handlers:
        # with max_children = 1, the next client is served at once.
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\nmax_children = 1\n%s"
                       % (port, REPORT))
        silent = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(silent.close)
        second = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(second.close)
        second.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 9 %d\r\n" % port)
        self.assertTrue(second.recv(100).startswith(b"pp 192.0.2.9 9 "))

    def test_whole_headers_wait_for_a_handler_slot(self):
        # A burst is accepted whole (headers take no slot), but max_children
        # still holds once the headers are in: the others wait, past the
        # header deadline (5 s), as they would in the backlog, and are served
        # in turn. While one waits, porterd accepts no more for the service:
        # under a steady load they would pile up in porterd, not the backlog.
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\nmax_children = 1\n%s"
                       % (port, REPORT))

        def client(i):
            s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            self.addCleanup(s.close)
            s.sendall(b"PROXY TCP4 192.0.2.%d 127.0.0.1 9 %d\r\n" % (i + 1, port))
            return s
        clients = [client(i) for i in range(3)]
        served = 0
        while clients and served < 10:
            ready, _, _ = select.select(clients, [], [], TIMEOUT)
            self.assertEqual(len(ready), 1, "served at once: %d" % len(ready))
            self.assertTrue(ready[0].recv(100).startswith(b"pp 192.0.2."))
            clients.remove(ready[0])
            served += 1
            if served == 1:
                # the others wait past PROXY_WAIT_MS, silent and open
                t0 = time.monotonic()
                more, _, _ = select.select(clients, [], [], 6.0)
                self.assertEqual(more, [], "a second handler while the first runs")
                self.assertGreater(time.monotonic() - t0, 5.5)
                fds = len(p.fds())
                clients += [client(i) for i in range(3, 7)]
                self.assertRegex(self.status(p), r"status: pp 127\.0\.0\.1:%d paused " % port)
                self.assertEqual(len(p.fds()), fds, "accepted while one waits for a slot")
            ready[0].close()
        self.assertEqual(served, 7)
        self.assertNotIn("named no service in time", p.log())

    def test_silent_clients_of_one_source_are_bounded(self):
        # 40 silent connections from one address: it may hold 16, the oldest go
        # first, and a client that speaks at once is served all along.
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\n%s" % (port, REPORT))
        fds = len(p.fds())
        silent = []
        self.addCleanup(lambda: [s.close() for s in silent])
        for _ in range(40):
            silent.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        wait_until(lambda: refused(p, "pp").get("idle") == 24, what="24 closed to make room",
                   interval=0.1)
        self.assertIn("pp: closed a client that had said nothing, to make room (its source "
                      "holds too many)", p.log())
        # the first 24 were closed; porterd holds the last 16 at most (5 s each)
        for s in silent[:24]:
            self.assertEqual(s.recv(100), b"")
        self.assertLessEqual(len(p.fds()), fds + 16)
        self.assertTrue(exchange(port, [b"PROXY TCP4 192.0.2.9 127.0.0.1 9 %d\r\n" % port])
                        .startswith(b"pp 192.0.2.9 9 "))

    def status(self, p):
        n = p.log().count("status: pp ")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: pp ", count=n + 1)
        return p.log()

    def test_acl_and_limits_see_the_original_client(self):
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\ndeny = 192.0.2.66\n"
                       "max_per_source = 1\n%s" % (port, REPORT))
        hdr = b"PROXY TCP4 %s 127.0.0.1 %d %d\r\n"
        self.assertEqual(exchange(port, [hdr % (b"192.0.2.66", 1000, port)]), b"")
        self.assertTrue(exchange(port, [hdr % (b"192.0.2.67", 1000, port)]).startswith(b"pp"))
        self.assertEqual(refused(p, "pp")["acl"], 1)
        # Two connections through the same balancer, one client: the second is refused.
        first = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(first.close)
        first.sendall(hdr % (b"198.51.100.1", 1, port))
        self.assertTrue(first.recv(100).startswith(b"pp 198.51.100.1"))
        self.assertEqual(exchange(port, [hdr % (b"198.51.100.1", 2, port)]), b"")
        self.assertTrue(exchange(port, [hdr % (b"198.51.100.2", 3, port)]).startswith(b"pp"))

    def test_proxy_from_restricts_who_sends_headers(self):
        port = free_port()
        p = self.start("[pp]\nlisten = 127.0.0.1:%d\nproxy = v1\nproxy_from = 127.0.0.2\n%s"
                       % (port, REPORT))
        hdr = b"PROXY TCP4 192.0.2.1 127.0.0.1 7 %d\r\n" % port
        self.assertEqual(exchange(port, [hdr], source="127.0.0.1"), b"")
        self.assertTrue(exchange(port, [hdr], source="127.0.0.2").startswith(b"pp 192.0.2.1 7"))
        self.assertEqual(refused(p, "pp")["proxy"], 1)

    @need_program("haproxy")
    def test_real_haproxy_in_front_of_two_porterd(self):
        front, b1, b2 = free_port(), free_port(), free_port()
        one = self.start("[one]\nlisten = 127.0.0.1:%d\nproxy = v1\n%s" % (b1, REPORT),
                         verbose=False)
        two = self.start("[two]\nlisten = 127.0.0.1:%d\nproxy = v2\n%s" % (b2, REPORT),
                         verbose=False)
        d = tempfile.mkdtemp(prefix="porterd-haproxy.")
        self.addCleanup(shutil.rmtree, d, True)
        cfg = os.path.join(d, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 1000\n"
                    "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n"
                    "  timeout server 30s\n"
                    "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
                    "backend be\n  balance roundrobin\n"
                    "  server one 127.0.0.1:%d send-proxy\n"
                    "  server two 127.0.0.1:%d send-proxy-v2\n" % (front, b1, b2))
        ha = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

        def stop_haproxy():
            ha.terminate()
            ha.wait(timeout=TIMEOUT)
        self.addCleanup(stop_haproxy)

        def up():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", front)) == 0
        wait_until(up, what="haproxy listening")
        served = {"one": 0, "two": 0}
        for i in range(200):
            with socket.socket() as s:
                s.settimeout(TIMEOUT)
                s.bind(("127.0.0.%d" % (2 + i % 3), 0))
                s.connect(("127.0.0.1", front))
                me = s.getsockname()
                s.sendall(b"payload %d\n" % i)
                s.shutdown(socket.SHUT_WR)
                out = b""
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    out += b
            first, rest = out.decode().split("\n", 1)
            name, ip, port, lip, lport = first.split(" ")
            self.assertEqual((ip, int(port)), me)
            self.assertEqual((lip, int(lport)), ("127.0.0.1", front))
            self.assertEqual(rest, "payload %d\n" % i)
            served[name] += 1
        # Round robin, give or take HAProxy's own bookkeeping: both take a fair share.
        self.assertEqual(served["one"] + served["two"], 200)
        self.assertGreaterEqual(min(served.values()), 80, served)


if __name__ == "__main__":
    main()
