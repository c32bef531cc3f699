"""End to end: the RFC 862/863/864/867/868 builtins (echo, discard, chargen,
daytime, time) that porterd serves itself, over TCP and UDP on loopback,
checked with raw sockets and with the real rdate client."""

import calendar
import datetime
import os
import select
import socket
import struct
import subprocess
import threading
import time
import unittest

from porterd_test import (Porterd, TIMEOUT, free_port, main, need_program, talk,
                          wait_until)

EPOCH_1900 = 2208988800
MIB = 1 << 20


def chargen_line(n):
    """Line n (from 0) of the RFC 864 pattern: 72 characters, then CR LF."""
    return bytes(32 + (n + i) % 95 for i in range(72)) + b"\r\n"


def chargen_stream(start, length):
    """`length` bytes of the pattern, starting at the beginning of line `start`."""
    out = b""
    n = start
    while len(out) < length:
        out += chargen_line(n)
        n += 1
    return out[:length]


def recv_exactly(s, n):
    chunks, got = [], 0
    while got < n:
        b = s.recv(min(65536, n - got))
        if not b:
            raise AssertionError("EOF after %d of %d bytes" % (got, n))
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def udp_ask(port, data=b"x", timeout=TIMEOUT, host="127.0.0.1"):
    """One datagram from an ephemeral port; the answer (bytes, sender address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((host, 0))
        s.sendto(data, (host, port))
        return s.recvfrom(65536)


def parse_daytime(text):
    """RFC 867 text as porterd writes it, to seconds since the epoch (UTC)."""
    dt = datetime.datetime.strptime(text, "%A, %B %d, %Y %H:%M:%S-UTC")
    return calendar.timegm(dt.timetuple())


class BuiltinsTest(unittest.TestCase):

    def porterd(self, services):
        """services: [(name, proto, builtin, port)]; porterd started on them."""
        body = ""
        for name, proto, builtin, port in services:
            body += "[%s]\nlisten = 127.0.0.1:%d\nprotocol = %s\nbuiltin = %s\n\n" % (
                name, port, proto, builtin)
        p = Porterd({"10-builtins.conf": body})
        self.addCleanup(p.cleanup)
        p.start()
        return p

    # -- echo

    def test_tcp_echo_one_mib_byte_for_byte(self):
        port = free_port()
        self.porterd([("echo", "tcp", "echo", port)])
        data = os.urandom(MIB)
        sent_error = []
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            def sender():
                try:
                    s.sendall(data)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:  # reported by the main thread
                    sent_error.append(e)
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            chunks, got = [], 0
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
                got += len(b)
            t.join(TIMEOUT)
            self.assertFalse(t.is_alive(), "sender stuck")
        self.assertEqual(sent_error, [])
        back = b"".join(chunks)
        self.assertEqual(len(back), MIB)
        self.assertTrue(back == data, "echoed bytes differ")

    def test_tcp_echo_ipv6(self):
        port = free_port(family=socket.AF_INET6, host="::1")
        p = Porterd({"10-e.conf": "[e6]\nlisten = [::1]:%d\nbuiltin = echo\n" % port})
        self.addCleanup(p.cleanup)
        p.start()
        self.assertEqual(talk(port, b"over six\r\n", host="::1", family=socket.AF_INET6),
                         b"over six\r\n")

    # -- discard

    def test_tcp_discard_swallows_one_mib(self):
        port = free_port()
        p = self.porterd([("discard", "tcp", "discard", port)])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(os.urandom(MIB))
            # Nothing has come back while we sent.
            r, _, _ = select.select([s], [], [], 0)
            self.assertEqual(r, [])
            s.shutdown(socket.SHUT_WR)
            # The handler sees EOF and closes its end normally: EOF, not a reset, no data.
            self.assertEqual(s.recv(65536), b"")
        wait_until(lambda: not p.children(), what="discard child to exit")

    # -- chargen

    def test_tcp_chargen_200_lines(self):
        port = free_port()
        p = self.porterd([("chargen", "tcp", "chargen", port)])
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            data = recv_exactly(s, 200 * 74)
        for n in range(200):
            line = data[n * 74:(n + 1) * 74]
            self.assertEqual(line, chargen_line(n), "line %d" % n)
        # Spot check the pattern itself: line 0 starts with ' ', line 1 with '!'.
        self.assertEqual(data[:3], b' !"')
        self.assertEqual(data[74:77], b'!"#')
        # Once we are gone the writer fails and exits.
        wait_until(lambda: not p.children(), what="chargen child to exit")

    # -- daytime

    def test_tcp_daytime(self):
        port = free_port()
        self.porterd([("daytime", "tcp", "daytime", port)])
        data = talk(port, shut=False)
        now = time.time()
        self.assertTrue(data.endswith(b"\r\n"), data)
        self.assertEqual(data.count(b"\n"), 1, data)
        when = parse_daytime(data[:-2].decode("ascii"))
        self.assertLessEqual(abs(when - now), 2, (data, now))
        # The weekday and month are spelled out in full, in English.
        dt = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
        self.assertTrue(data.startswith(dt.strftime("%A, %B ").encode()), data)

    # -- time

    def test_tcp_time_raw(self):
        port = free_port()
        self.porterd([("time", "tcp", "time", port)])
        data = talk(port, shut=False)
        now = time.time()
        self.assertEqual(len(data), 4, data)
        (secs,) = struct.unpack(">I", data)
        self.assertLessEqual(abs(secs - (now + EPOCH_1900)), 2)

    def test_udp_time_raw(self):
        port = free_port(socket.SOCK_DGRAM)
        self.porterd([("time", "udp", "time", port)])
        data, frm = udp_ask(port, b"")
        now = time.time()
        self.assertEqual(frm, ("127.0.0.1", port))
        self.assertEqual(len(data), 4, data)
        (secs,) = struct.unpack(">I", data)
        self.assertLessEqual(abs(secs - (now + EPOCH_1900)), 2)

    def rdate(self, port, udp):
        cmd = ["rdate", "-p", "-o", str(port)] + (["-u"] if udp else []) + ["127.0.0.1"]
        env = dict(os.environ, TZ="UTC", LC_ALL="C")
        r = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, env=env)
        now = time.time()
        self.assertEqual(r.returncode, 0, r)
        # "rdate: [host]\t" prefix with some builds; the date comes last, ctime-like.
        text = r.stdout.decode().strip().split("\t")[-1]
        words = text.split()  # "Wed Nov 25 12:04:56 UTC 2026", day maybe space-padded
        self.assertEqual(len(words), 6, text)
        self.assertEqual(words[4], "UTC", text)
        dt = datetime.datetime.strptime(" ".join(words[:4] + words[5:]),
                                        "%a %b %d %H:%M:%S %Y")
        self.assertLessEqual(abs(calendar.timegm(dt.timetuple()) - now), 2, (text, now))

    @need_program("rdate")
    def test_time_with_rdate_tcp_and_udp(self):
        tport = free_port()
        uport = free_port(socket.SOCK_DGRAM)
        self.porterd([("time", "tcp", "time", tport), ("utime", "udp", "time", uport)])
        self.rdate(tport, udp=False)
        self.rdate(uport, udp=True)

    @need_program("rdate")
    def test_rdate_udp_does_not_fall_back_to_tcp(self):
        # Guards the test above: with only the TCP service on the port, rdate -u
        # gets a port unreachable at once and fails.
        tport = free_port()
        self.porterd([("time", "tcp", "time", tport)])
        r = subprocess.run(["rdate", "-p", "-u", "-o", str(tport), "127.0.0.1"],
                           capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0, r)
        self.assertEqual(r.stdout, b"")

    # -- UDP echo, daytime, chargen

    def test_udp_echo(self):
        port = free_port(socket.SOCK_DGRAM)
        self.porterd([("uecho", "udp", "echo", port)])
        payload = os.urandom(1400)
        data, frm = udp_ask(port, payload)
        self.assertEqual(data, payload)
        self.assertEqual(frm, ("127.0.0.1", port))

    def test_udp_echo_large_datagrams_whole(self):
        port = free_port(socket.SOCK_DGRAM)
        self.porterd([("uecho", "udp", "echo", port)])
        for size in (2049, 9000, 65000):
            payload = os.urandom(size)
            data, _ = udp_ask(port, payload)
            self.assertEqual(len(data), size)
            self.assertEqual(data, payload)

    def test_udp_daytime(self):
        port = free_port(socket.SOCK_DGRAM)
        self.porterd([("uday", "udp", "daytime", port)])
        data, _ = udp_ask(port, b"what time is it?")
        now = time.time()
        self.assertTrue(data.endswith(b"\r\n"), data)
        self.assertLessEqual(abs(parse_daytime(data[:-2].decode("ascii")) - now), 2)

    def test_udp_chargen_datagrams_follow_the_pattern(self):
        port = free_port(socket.SOCK_DGRAM)
        self.porterd([("ucharg", "udp", "chargen", port)])
        lengths = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.bind(("127.0.0.1", 0))
            for _ in range(8):
                s.sendto(b"", ("127.0.0.1", port))
                data, frm = s.recvfrom(65536)
                self.assertEqual(frm, ("127.0.0.1", port))
                self.assertLessEqual(len(data), 512)
                lengths.append(len(data))
                if data:
                    start = (data[0] - 32) % 95
                    self.assertEqual(data, chargen_stream(start, len(data)))
        # Sizes vary (0 to 512), not always the same datagram.
        self.assertGreater(len(set(lengths)), 1, lengths)

    # -- reflector guard

    def test_udp_never_answers_a_privileged_source_port(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to bind port 999")
        echo = free_port(socket.SOCK_DGRAM)
        chargen = free_port(socket.SOCK_DGRAM)
        daytime = free_port(socket.SOCK_DGRAM)
        self.porterd([("uecho", "udp", "echo", echo), ("ucharg", "udp", "chargen", chargen),
                      ("uday", "udp", "daytime", daytime)])
        priv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(priv.close)
        try:
            priv.bind(("127.0.0.1", 999))
        except OSError as e:
            self.skipTest("127.0.0.1:999 is busy: %s" % e)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as eph:
            eph.settimeout(TIMEOUT)
            eph.bind(("127.0.0.1", 0))
            for port in (echo, chargen, daytime):
                # The datagram from port 999 goes first; the one from the
                # ephemeral port is answered after it was read, in order.
                priv.sendto(b"reflect me", ("127.0.0.1", port))
                eph.sendto(b"reflect me", ("127.0.0.1", port))
                data, frm = eph.recvfrom(65536)
                self.assertEqual(frm, ("127.0.0.1", port))
                if port == echo:
                    self.assertEqual(data, b"reflect me")
        # And the absence, given time: nothing ever reaches port 999.
        priv.settimeout(1.0)
        with self.assertRaises(socket.timeout):
            got = priv.recvfrom(65536)
            self.fail("answered a privileged source port: %r" % (got,))

    # -- process hygiene

    def test_builtins_leave_no_children(self):
        port = free_port()
        p = self.porterd([("echo", "tcp", "echo", port)])
        for i in range(20):
            msg = b"hello %d\n" % i
            self.assertEqual(talk(port, msg), msg)
        wait_until(lambda: not p.children(), what="no children of porterd")
        self.assertTrue(p.alive())

    def test_idle_stream_client_does_not_block_the_loop(self):
        echo, discard, daytime = free_port(), free_port(), free_port()
        uecho = free_port(socket.SOCK_DGRAM)
        p = self.porterd([("echo", "tcp", "echo", echo), ("discard", "tcp", "discard", discard),
                          ("daytime", "tcp", "daytime", daytime),
                          ("uecho", "udp", "echo", uecho)])
        # Two clients that connect and then neither send nor close.
        idle1 = socket.create_connection(("127.0.0.1", echo), timeout=TIMEOUT)
        self.addCleanup(idle1.close)
        idle2 = socket.create_connection(("127.0.0.1", discard), timeout=TIMEOUT)
        self.addCleanup(idle2.close)
        wait_until(lambda: len(p.children()) == 2, what="the two builtin children")
        # Another daytime client that never reads: porterd must not wait on it either.
        idle3 = socket.create_connection(("127.0.0.1", daytime), timeout=TIMEOUT)
        self.addCleanup(idle3.close)
        for _ in range(3):
            data = talk(daytime, shut=False, timeout=5)
            self.assertTrue(data.endswith(b"-UTC\r\n"), data)
        self.assertEqual(udp_ask(uecho, b"ping", timeout=5)[0], b"ping")
        # A second echo client is served alongside the idle one.
        self.assertEqual(talk(echo, b"second"), b"second")
        # And the idle echo connection still works once it speaks.
        idle1.sendall(b"late")
        self.assertEqual(recv_exactly(idle1, 4), b"late")


if __name__ == "__main__":
    main()
