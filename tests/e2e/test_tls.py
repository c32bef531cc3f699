"""End to end: tls = yes. Real clients (openssl s_client, curl, gnutls-cli and
Python's ssl) against the real daemon; certificates (ECDSA P-256) are made by
the openssl CLI into a temporary directory for this run. The handler reads and
writes plaintext and learns the TLS facts from SSL_ variables; bad handshakes
are refused and counted while the service goes on serving."""

import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

from porterd_test import (Porterd, TIMEOUT, VALGRIND, free_port, main, need_program, need_root,
                          parse_env, wait_until, write_script)
from test_containment import GRACE, alive, need_cgroups, one_pid

PKI = None


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, timeout=TIMEOUT, **kw)


class Pki:
    """A CA, server pairs for two names, client certificates (good, expired,
    untrusted), a server certificate close to expiry and an expired one."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="porterd-tls.")
        os.chmod(self.dir, 0o755)
        self.ca = self.make_ca("ca", "porterd test CA")
        self.other_ca = self.make_ca("other", "someone else's CA")
        self.srv = self.issue("srv", "localhost", days=30, san="DNS:localhost")
        self.alt = self.issue("alt", "other.example", days=30, san="DNS:other.example")
        self.renewed = self.issue("renewed", "localhost", days=60, san="DNS:localhost")
        self.client = self.issue("client", "client one", days=30, ext="clientAuth")
        self.untrusted = self.issue("untrusted", "stranger", days=30, ext="clientAuth",
                                    ca="other")
        self.soon = self.issue("soon", "localhost", days=3, san="DNS:localhost")
        self.expired_client = self.issue("expclient", "old client", ext="clientAuth",
                                         dates=("20200101000000Z", "20200201000000Z"))
        self.expired = self.issue("expsrv", "localhost", san="DNS:localhost",
                                  dates=("20200101000000Z", "20200201000000Z"))

    def path(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", self.path(name + ".key")])
        return self.path(name + ".key")

    def make_ca(self, name, cn):
        key = self.key(name)
        run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=" + cn,
             "-days", "365", "-out", self.path(name + ".pem")])
        d = self.path(name + ".db")
        os.mkdir(d)
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("1000\n")
        with open(self.path(name + ".cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                    "serial = %s/serial\ndefault_md = sha256\npolicy = p\n"
                    "unique_subject = no\ncopy_extensions = copy\n"
                    "[p]\ncommonName = supplied\n" % (d, d, d))
        return self.path(name + ".pem")

    def issue(self, name, cn, days=None, san=None, ext="serverAuth", ca="ca", dates=None):
        """A certificate signed with `openssl ca` (which can backdate it)."""
        key = self.key(name)
        csr = self.path(name + ".csr")
        run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", csr])
        extfile = self.path(name + ".ext")
        with open(extfile, "w") as f:
            f.write("[x]\nextendedKeyUsage = %s\n%s" % (
                ext, "subjectAltName = %s\n" % san if san else ""))
        cmd = ["openssl", "ca", "-batch", "-notext", "-config", self.path(ca + ".cnf"),
               "-cert", self.path(ca + ".pem"), "-keyfile", self.path(ca + ".key"),
               "-in", csr, "-out", self.path(name + ".pem"), "-extfile", extfile,
               "-extensions", "x"]
        if dates:
            cmd += ["-startdate", dates[0], "-enddate", dates[1]]
        else:
            cmd += ["-days", str(days)]
        run(cmd)
        return self.path(name + ".pem"), key


def setUpModule():
    global PKI
    if shutil.which("openssl"):
        PKI = Pki()


def tearDownModule():
    if PKI is not None:
        shutil.rmtree(PKI.dir, ignore_errors=True)


def s_client(port, data=b"", args=(), name="localhost"):
    """openssl s_client; returns (returncode, stdout+stderr text)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", PKI.ca,
           "-verify_return_error", "-ign_eof"]
    if name:
        cmd += ["-servername", name]
    p = subprocess.run(cmd + list(args), input=data, capture_output=True, timeout=TIMEOUT)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def client_context(cert=None):
    ctx = ssl.create_default_context(cafile=PKI.ca)
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def tls_exchange(port, data, close="notify", host="localhost", ctx=None, header=b""):
    """Over TLS: send data, then close our side with close_notify or with a bare
    TCP FIN, and read what comes until the server's close_notify. Returns
    (bytes, whether the server's close_notify came)."""
    ctx = ctx or client_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        if header:
            s.sendall(header)

        def flush():
            out = outgoing.read()
            if out:
                s.sendall(out)

        def feed():
            b = s.recv(65536)
            if not b:
                incoming.write_eof()
            else:
                incoming.write(b)
            return b

        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                flush()
                if not feed():
                    raise ConnectionError("closed during the handshake")
        flush()
        obj.write(data)
        flush()
        if close == "notify":
            try:
                obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            flush()
        else:
            s.shutdown(socket.SHUT_WR)
        got, notified = [], False
        while True:
            try:
                chunk = obj.read(65536)
                if not chunk:   # Python's read gives b"" at a close_notify
                    notified = True
                    break
                got.append(chunk)
            except ssl.SSLWantReadError:
                if not feed():
                    break
            except ssl.SSLZeroReturnError:
                notified = True
                break
            except ssl.SSLError as e:
                if "APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in str(e):
                    raise
                break
        return b"".join(got), notified


class BioClient:
    """A TLS client on memory BIOs over a plain socket, so that a test decides
    what goes on the wire when: close_notify or not, FIN, RST."""

    def __init__(self, port):
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_context().wrap_bio(self.incoming, self.outgoing,
                                             server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.port = self.sock.getsockname()[1]

    def flush(self):
        out = self.outgoing.read()
        if out:
            self.sock.sendall(out)

    def read_until(self, done):
        """The handshake, then what the server sends until done(got), or its
        close_notify; returns what came. Bounded by the socket's timeout."""
        got = b""
        while not done(got):
            try:
                if self.obj.version() is None:
                    self.obj.do_handshake()
                b = self.obj.read(100)
                if not b:
                    break
                got += b
            except ssl.SSLZeroReturnError:
                break
            except ssl.SSLWantReadError:
                self.flush()
                b = self.sock.recv(65536)
                if not b:
                    raise ConnectionError("closed, after %r" % got)
                self.incoming.write(b)
        return got

    def send(self, data, notify=False):
        """data, then our close_notify if notify, on the wire."""
        self.obj.write(data)
        if notify:
            try:
                self.obj.unwrap()
            except ssl.SSLWantReadError:
                pass
        self.flush()


def status_tls(p, name):
    n = p.log().count("status: %s " % name)
    os.kill(p.pid, signal.SIGUSR1)
    p.wait_log("status: %s " % name, count=n + 1)
    line = [l for l in p.log().splitlines() if "status: %s " % name in l][-1]
    return dict((k, int(v)) for k, v in (x.split(":") for x in
                re.search(r" tls=(\S+)", line).group(1).split(",")))


ENV_HANDLER = ("exec = /bin/sh\n"
               "args = sh -c 'env | grep -E \"^(SSL|TCP|PROTO)\" | sort; echo end-of-env; "
               "read line; echo \"got $line\"'\n")


@need_program("openssl")
class TlsTest(unittest.TestCase):

    def start(self, body, **kw):
        p = Porterd({"10-tls.conf": body}, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def service(self, port, extra="", handler=ENV_HANDLER, pairs=None, name="t"):
        pairs = pairs or [PKI.srv]
        text = "[%s]\nlisten = 127.0.0.1:%d\n%stls = yes\n" % (name, port, handler)
        for cert, key in pairs:
            text += "tls_cert = %s\ntls_key = %s\n" % (cert, key)
        return text + extra

    # -- the handler's view

    def test_env_tls13_and_tls12_with_sni(self):
        port = free_port()
        self.start(self.service(port))
        for version, proto in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            rc, out = s_client(port, b"hello\n", [version])
            self.assertEqual(rc, 0, out)
            env = parse_env(out)
            self.assertEqual(env["SSL_PROTOCOL"], proto)
            self.assertTrue(env["SSL_CIPHER"])
            self.assertEqual(env["SSL_TLS_SNI_SERVERNAME"], "localhost")
            self.assertEqual(env["PROTO"], "TCP")
            self.assertEqual(env["TCPLOCALPORT"], str(port))
            self.assertEqual(env["TCPREMOTEIP"], "127.0.0.1")
            self.assertNotIn("SSL_PEER_CERT_HASH", env)
            self.assertNotIn("SSL_ALPN", env)
            self.assertIn("got hello", out)
        # Without SNI: no SSL_TLS_SNI_SERVERNAME, the first pair.
        rc, out = s_client(port, b"x\n", ["-noservername"], name=None)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("SSL_TLS_SNI_SERVERNAME", out)

    def test_sni_picks_the_pair_else_the_first(self):
        port = free_port()
        self.start(self.service(port, pairs=[PKI.srv, PKI.alt]))
        rc, out = s_client(port, b"x\n", ["-verify_hostname", "other.example"],
                           name="other.example")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"subject=CN\s*=\s*other\.example")
        rc, out = s_client(port, b"x\n", [], name="unknown.example")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"subject=CN\s*=\s*localhost")
        self.assertIn("SSL_TLS_SNI_SERVERNAME=unknown.example", out)

    def test_sni_reaches_the_handler_only_as_a_host_name(self):
        # The client chooses these bytes: a newline (or "=") must not reach an
        # environment that a handler may write out as text.
        port = free_port()
        self.start(self.service(port))
        rc, out = s_client(port, b"x\n", [], name="evil\nLD_PRELOAD=/tmp/x.so")
        self.assertIn("end-of-env", out)
        self.assertNotIn("SSL_TLS_SNI_SERVERNAME", out)
        self.assertNotIn("LD_PRELOAD", out.split("end-of-env")[0])
        rc, out = s_client(port, b"x\n", [], name="host_1.example")
        self.assertIn("SSL_TLS_SNI_SERVERNAME=host_1.example", out)

    def test_half_close_both_ways(self):
        """The client's close_notify, or its bare FIN, is EOF on the handler's
        stdin; the handler's output after that still arrives, then close_notify."""
        port = free_port()
        self.start(self.service(port, handler="exec = /bin/sh\nargs = sh -c 'n=$(wc -c); "
                                "echo \"read $n bytes\"; echo after-eof'\n"))
        body = os.urandom(300000)
        for close in ("notify", "fin"):
            out, notified = tls_exchange(port, body, close=close)
            self.assertEqual(out, b"read %d bytes\nafter-eof\n" % len(body), close)
            self.assertTrue(notified, close)

    def test_fin_without_close_notify_is_logged_as_truncated(self):
        port = free_port()
        p = self.start(self.service(port, handler="exec = /bin/cat\n"))
        out, _ = tls_exchange(port, b"abc", close="fin")
        self.assertEqual(out, b"abc")
        p.wait_log("closed without close_notify (truncated)")
        wait_until(lambda: status_tls(p, "t")["truncated"] == 1, what="truncated counted")
        out, _ = tls_exchange(port, b"abc", close="notify")
        self.assertEqual(out, b"abc")
        wait_until(lambda: not p.children(), what="reaped")
        self.assertEqual(status_tls(p, "t")["truncated"], 1)
        self.assertNotIn("exited with status 1", p.log())

    def test_what_came_before_a_reset_reaches_the_handler(self):
        """A client that sends, then resets the connection (SO_LINGER 0), with
        or without its close_notify first: the handler reads every byte sent,
        then EOF, as on a plain TCP service. Only the one without close_notify
        counts as truncated."""
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-rst.")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o777)
        p = self.start(self.service(port, handler="exec = /bin/sh\nargs = sh -c 'echo banner; "
                                    "cat > %s/$TCPREMOTEPORT'\n" % d))
        for close in ("notify", "reset"):
            c = BioClient(port)
            # The handshake, then the banner: the handler runs.
            self.assertEqual(c.read_until(lambda got: got.endswith(b"banner\n")), b"banner\n")
            c.send(b"QUIT %s\n" % close.encode(), notify=close == "notify")
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.sock.close()
            path = os.path.join(d, str(c.port))
            wait_until(lambda: not [c for c in p.children()], what="relay and handler gone")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"QUIT %s\n" % close.encode())
        # counted when porterd reaps the relay, which may come after it is gone
        wait_until(lambda: status_tls(p, "t")["truncated"] == 1, what="one truncated")
        self.assertEqual(status_tls(p, "t")["truncated"], 1)

    def test_our_close_notify_is_not_taken_for_the_clients(self):
        """The handler ends its output but reads on; porterd's close_notify goes
        out; the client sends more and goes with a bare FIN. Its input was cut
        short: truncated (porterd once took its own close_notify for the
        client's). Then a client that answers with its close_notify is not."""
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-half.")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o777)
        reader = write_script(d, "reader", "#!/usr/bin/python3\nimport os, socket, sys\n"
                              "os.write(1, b'hi\\n')\n"
                              "socket.socket(fileno=os.dup(0)).shutdown(socket.SHUT_WR)\n"
                              "data = sys.stdin.buffer.read()\n"
                              "with open('%s/' + os.environ['TCPREMOTEPORT'], 'wb') as f:\n"
                              "    f.write(data)\n" % d)
        p = self.start(self.service(port, handler="exec = %s\n" % reader))
        for i, (close, truncated) in enumerate((("fin", 1), ("notify", 1))):
            c = BioClient(port)
            with c.sock:
                # The handshake, "hi", and porterd's close_notify.
                self.assertEqual(c.read_until(lambda got: False), b"hi\n")
                c.send(b"more", notify=close == "notify")
                c.sock.shutdown(socket.SHUT_WR)
                self.assertEqual(c.sock.recv(100), b"")
            path = os.path.join(d, str(c.port))
            wait_until(lambda: os.path.exists(path) and not p.children(), what="handler done")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"more")
            # counted when porterd reaps the relay, which may come after it is gone
            wait_until(lambda: status_tls(p, "t")["ok"] >= i + 1, what="the relay reaped")
            self.assertEqual(status_tls(p, "t")["truncated"], truncated, close)

    @unittest.skipIf(VALGRIND, "a timing: the relay runs under memcheck")
    def test_replies_are_not_held_for_a_delayed_ack(self):
        """A reply of two TLS records: Nagle's algorithm would hold the short
        second one until the client's delayed ACK, some 40 ms a round trip."""
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-nagle.")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        replier = write_script(d, "replier", "#!/usr/bin/python3\nimport sys\n"
                               "for line in sys.stdin.buffer:\n"
                               "    sys.stdout.buffer.write(bytes(20000))\n"
                               "    sys.stdout.flush()\n")
        self.start(self.service(port, handler="exec = %s\n" % replier))
        ctx = client_context()
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT),
                             server_hostname="localhost") as ts:
            times = []
            for _ in range(20):
                t0 = time.monotonic()
                ts.sendall(b"x\n")
                n = 0
                while n < 20000:
                    b = ts.recv(65536)
                    self.assertTrue(b)
                    n += len(b)
                times.append(time.monotonic() - t0)
        times.sort()
        self.assertLess(times[len(times) // 2], 0.020, "round trips: %s" % times)

    def test_large_transfer_byte_exact(self):
        """8 MiB each way: up, hashed by the handler; down, from a file."""
        port, port2 = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="porterd-big.")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        body = os.urandom(8 << 20)
        big = os.path.join(d, "big")
        with open(big, "wb") as f:
            f.write(body)
        os.chmod(big, 0o644)
        self.start(self.service(port, handler="exec = /usr/bin/sha256sum\n") +
                   self.service(port2, handler="exec = /bin/cat\nargs = cat %s\n" % big,
                                name="down"))
        out, notified = tls_exchange(port, body, close="notify")
        self.assertEqual(out.split()[0].decode(), hashlib.sha256(body).hexdigest())
        self.assertTrue(notified)
        out, notified = tls_exchange(port2, b"", close="notify")
        self.assertEqual(hashlib.sha256(out).digest(), hashlib.sha256(body).digest())
        self.assertTrue(notified)

    @need_program("curl")
    @need_program("busybox")
    def test_curl_against_busybox_httpd(self):
        port = free_port()
        www = tempfile.mkdtemp(prefix="porterd-www.")
        self.addCleanup(shutil.rmtree, www, True)
        os.chmod(www, 0o755)
        body = os.urandom(5 << 20)
        with open(os.path.join(www, "big.bin"), "wb") as f:
            f.write(body)
        os.chmod(os.path.join(www, "big.bin"), 0o644)
        self.start(self.service(port, handler="exec = %s\nargs = httpd -i -h %s\n" % (
            shutil.which("busybox"), www)))
        out = os.path.join(www, "got.bin")
        r = subprocess.run(["curl", "-sS", "--fail", "--cacert", PKI.ca, "--resolve",
                            "localhost:%d:127.0.0.1" % port, "-o", out,
                            "https://localhost:%d/big.bin" % port],
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(body).digest())

    @need_program("gnutls-cli")
    def test_gnutls_cli_and_alpn(self):
        port = free_port()
        self.start(self.service(port, extra="tls_alpn = h2, http/1.1\n",
                                handler="exec = /bin/sh\nargs = sh -c 'echo \"alpn=$SSL_ALPN "
                                "$SSL_PROTOCOL\"'\n"))
        r = subprocess.run(["gnutls-cli", "--x509cafile", PKI.ca, "-p", str(port),
                            "--alpn", "http/1.1", "--alpn", "h2", "localhost"],
                           input=b"", capture_output=True, timeout=TIMEOUT)
        self.assertIn(b"alpn=h2 TLSv1.3", r.stdout, r.stdout + r.stderr)
        rc, out = s_client(port, b"", ["-alpn", "http/1.1"])
        self.assertIn("alpn=http/1.1", out)
        # No protocol in common: the handshake fails (no_application_protocol).
        rc, out = s_client(port, b"", ["-alpn", "spdy/1"])
        self.assertNotEqual(rc, 0)
        self.assertIn("no application protocol", out)
        # A client that offers no ALPN at all is served, without SSL_ALPN.
        rc, out = s_client(port, b"", [])
        self.assertIn("alpn= TLSv1.3", out)

    def test_resumption_with_tickets(self):
        port = free_port()
        self.start(self.service(port, handler="exec = /bin/echo\nargs = echo served\n"))
        sess = os.path.join(PKI.dir, "sess-%d" % port)
        for version in ("-tls1_3", "-tls1_2"):
            rc, out = s_client(port, b"", [version, "-sess_out", sess])
            self.assertEqual(rc, 0, out)
            self.assertIn("served", out)
            rc, out = s_client(port, b"", [version, "-sess_in", sess])
            self.assertEqual(rc, 0, out)
            self.assertIn("Reused", out, version)

    # -- client certificates

    def test_client_certificates_required(self):
        port = free_port()
        p = self.start(self.service(port, extra="tls_client_ca = %s\n" % PKI.ca))
        cert, key = PKI.client
        rc, out = s_client(port, b"hi\n", ["-cert", cert, "-key", key])
        self.assertEqual(rc, 0, out)
        env = parse_env(out)
        der = run(["openssl", "x509", "-in", cert, "-outform", "DER"]).stdout
        self.assertEqual(env["SSL_PEER_CERT_HASH"], "SHA256:" + hashlib.sha256(der).hexdigest())
        self.assertEqual(env["SSL_PEER_CERT_SUBJECT"], "CN=client one")
        # No certificate, an untrusted one, an expired one: refused and counted.
        for args in ([], ["-cert", PKI.untrusted[0], "-key", PKI.untrusted[1]],
                     ["-cert", PKI.expired_client[0], "-key", PKI.expired_client[1]]):
            rc, out = s_client(port, b"hi\n", args)
            self.assertNotIn("end-of-env", out)
        wait_until(lambda: not p.children(), what="reaped")
        st = status_tls(p, "t")
        self.assertEqual(st["certificate"], 3)
        self.assertEqual(st["ok"], 1)
        self.assertIn("TLS handshake failed (certificate)", p.log())
        # The service still serves.
        rc, out = s_client(port, b"hi\n", ["-cert", cert, "-key", key])
        self.assertIn("got hi", out)

    def test_client_certificates_optional(self):
        port = free_port()
        p = self.start(self.service(port, extra="tls_client_ca = %s\ntls_verify = optional\n"
                                    % PKI.ca))
        rc, out = s_client(port, b"hi\n", [])
        self.assertIn("got hi", out)
        self.assertNotIn("SSL_PEER_CERT", out)
        rc, out = s_client(port, b"hi\n", ["-cert", PKI.client[0], "-key", PKI.client[1]])
        self.assertIn("SSL_PEER_CERT_SUBJECT=CN=client one", out)
        rc, out = s_client(port, b"hi\n", ["-cert", PKI.untrusted[0], "-key",
                                           PKI.untrusted[1]])
        self.assertNotIn("got hi", out)
        wait_until(lambda: status_tls(p, "t")["certificate"] == 1, what="counted")

    # -- bad handshakes

    def test_bad_handshakes_refused_counted_service_serves(self):
        port = free_port()
        p = self.start(self.service(port, extra="tls_handshake_timeout = 1\n"))
        # Plaintext to a TLS port.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                self.assertNotIn(b"end-of-env", s.recv(4096))
            except ConnectionResetError:
                pass
        # A client that stalls mid-handshake: a few bytes of a ClientHello, then nothing.
        stall = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(stall.close)
        stall.sendall(b"\x16\x03\x01\x02\x00\x01")
        # Meanwhile the service serves.
        rc, out = s_client(port, b"hi\n", [])
        self.assertIn("got hi", out)
        stall.settimeout(TIMEOUT)
        self.assertEqual(stall.recv(100), b"")   # closed by porterd at the deadline
        wait_until(lambda: status_tls(p, "t")["timeout"] == 1, what="timeout counted")
        st = status_tls(p, "t")
        self.assertEqual(st["protocol"], 1)
        self.assertEqual(st["ok"], 1)
        # Logged, at most once in a while: the second failure is not.
        self.assertEqual(p.log().count("TLS handshake failed"), 1)
        # Metrics carry the same counts.
        self.assertIn("TLS handshake failed (protocol)", p.log())

    # -- keys and reloads

    def test_renewed_certificate_served_after_sighup(self):
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-live.")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(PKI.srv[0], cert)
        shutil.copy(PKI.srv[1], key)
        p = self.start(self.service(port, pairs=[(cert, key)],
                                    handler="exec = /bin/echo\nargs = echo served\n"))

        def serial():
            rc, out = s_client(port, b"", ["-showcerts"])
            pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----",
                            out, re.S).group(0)
            return run(["openssl", "x509", "-noout", "-serial"], input=pem.encode()).stdout

        def file_serial(path):
            return run(["openssl", "x509", "-noout", "-serial", "-in", path]).stdout

        self.assertEqual(serial(), file_serial(PKI.srv[0]))
        shutil.copy(PKI.renewed[0], cert)
        shutil.copy(PKI.renewed[1], key)
        self.assertTrue(p.reload())
        self.assertEqual(serial(), file_serial(PKI.renewed[0]))
        # A broken new certificate fails the reload; the one in use stays.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        self.assertFalse(p.reload())
        self.assertRegex(p.log(), r"10-tls\.conf:\d+: tls_cert = %s: no PEM certificate" %
                         re.escape(cert))
        self.assertEqual(serial(), file_serial(PKI.renewed[0]))

    @need_root
    def test_handler_cannot_read_the_key(self):
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-key.")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        key = os.path.join(d, "key.pem")
        shutil.copy(PKI.srv[1], key)
        os.chmod(key, 0o600)
        probe = write_script(d, "probe.sh", "#!/bin/sh\n"
                             "id -un\n"
                             "(exec 3</proc/$PPID/mem) 2>/dev/null && echo MEM-OPEN || "
                             "echo mem-denied\n"
                             "cat %s >/dev/null 2>&1 && echo KEY-READ || echo key-denied\n"
                             "grep -l PRIVATE /proc/$PPID/environ 2>/dev/null && echo ENV\n"
                             "ls /proc/self/fd | tr '\\n' ' '; echo\n" % key)
        self.start(self.service(port, pairs=[(PKI.srv[0], key)],
                                handler="exec = %s\nuser = nobody\n" % probe))
        rc, out = s_client(port, b"", [])
        self.assertIn("nobody", out)
        self.assertIn("mem-denied", out)
        self.assertIn("key-denied", out)
        self.assertNotIn("MEM-OPEN", out)
        self.assertNotIn("KEY-READ", out)
        self.assertIn("0 1 2 3 \n", out)   # 3: ls's own directory

    @need_cgroups
    def test_relay_and_handler_tree_contained_and_ended_by_timeout(self):
        # The relay enters the connection's cgroup before its handler is born:
        # a grandchild in a session of its own is in it too, and timeout ends it.
        port = free_port()
        d = tempfile.mkdtemp(prefix="porterd-tree.")
        self.addCleanup(shutil.rmtree, d, True)
        f = os.path.join(d, "pid")
        tree = write_script(d, "tree.sh", "#!/bin/sh\n"
                            "setsid sh -c 'echo $$ > %s; exec sleep 1000' </dev/null "
                            ">/dev/null 2>&1 &\necho started; exec sleep 1000\n" % f)
        p = self.start(self.service(port, handler="exec = %s\n" % tree,
                                    extra="timeout = 1\n"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s = client_context().wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(s.close)
        self.assertEqual(s.recv(100), b"started\n")
        grandchild = wait_until(lambda: one_pid(f), what="the grandchild's pid")
        self.addCleanup(lambda: alive(grandchild) and os.kill(grandchild, signal.SIGKILL))
        with open("/proc/%d/cgroup" % grandchild) as cg:
            self.assertRegex(cg.read(), r"0::/.*/handlers/t/c\d+\n")
        wait_until(lambda: not alive(grandchild), timeout=1 + GRACE + 5,
                   what="the grandchild to be gone")
        p.wait_log("sent SIGTERM to its cgroup")

    def test_stderr_inside_tls_unless_log(self):
        port, port2 = free_port(), free_port()
        h = "exec = /bin/sh\nargs = sh -c 'echo out; echo err >&2'\n"
        p = self.start(self.service(port, handler=h) +
                       self.service(port2, handler=h + "stderr = log\n", name="l"))
        rc, out = s_client(port, b"", [])
        self.assertIn("out\nerr\n", out)
        rc, out = s_client(port2, b"", [])
        self.assertIn("out\n", out)
        self.assertNotIn("err\n", out)
        p.wait_log("]: err")

    def test_with_proxy_header(self):
        port = free_port()
        self.start(self.service(port, extra="proxy = v1\n",
                                handler="exec = /bin/sh\nargs = sh -c 'echo \"$TCPREMOTEIP "
                                "$SSL_PROTOCOL\"'\n"))
        out, _ = tls_exchange(port, b"", header=b"PROXY TCP4 192.0.2.7 192.0.2.1 5555 443\r\n")
        self.assertEqual(out, b"192.0.2.7 TLSv1.3\n")

    # -- -t

    def test_check_certificates(self):
        d = tempfile.mkdtemp(prefix="porterd-bad.")
        self.addCleanup(shutil.rmtree, d, True)
        garbage = os.path.join(d, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("hello\n")
        conf = os.path.join(d, "services.d")
        os.mkdir(conf)

        def check(pairs, extra=""):
            with open(os.path.join(conf, "10-c.conf"), "w") as f:
                f.write(self.service(free_port(), pairs=pairs, extra=extra))
            r = subprocess.run([os.environ.get("PORTERD", "src/porterd"), "-t", "-d", conf],
                               capture_output=True, timeout=TIMEOUT)
            return r.returncode, r.stderr.decode()

        f = os.path.join(conf, "10-c.conf")
        rc, err = check([("/nonexistent/cert.pem", PKI.srv[1])])
        self.assertEqual(rc, 1)
        self.assertIn("%s:6: tls_cert = /nonexistent/cert.pem: No such file or directory" % f,
                      err)
        rc, err = check([(garbage, PKI.srv[1])])
        self.assertIn("%s:6: tls_cert = %s: no PEM certificate" % (f, garbage), err)
        rc, err = check([(PKI.srv[0], garbage)])
        self.assertIn("%s:7: tls_key = %s:" % (f, garbage), err)
        rc, err = check([(PKI.srv[0], PKI.alt[1])])
        self.assertIn("%s:7: tls_key = %s: does not match the certificate of tls_cert = %s "
                      "(line 6)" % (f, PKI.alt[1], PKI.srv[0]), err)
        rc, err = check([PKI.expired])
        self.assertEqual(rc, 1)
        self.assertIn("%s:6: tls_cert = %s: the certificate expired on" % (f, PKI.expired[0]),
                      err)
        rc, err = check([PKI.soon])
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, r"%s:6: warning: tls_cert = %s: the certificate expires in "
                         r"[23] days" % (re.escape(f), re.escape(PKI.soon[0])))
        rc, err = check([PKI.srv], extra="tls_verify = required\n")
        self.assertIn("tls_verify = required needs tls_client_ca", err)
        rc, err = check([PKI.srv], extra="tls_alpn = h2, h2\n")
        self.assertIn("tls_alpn = h2, h2: a protocol is named twice", err)
        long_dir = os.path.join(d, "a-directory-with-a-long-name-" + "x" * 200)
        os.mkdir(long_dir)
        shutil.copy(PKI.srv[0], long_dir)
        rc, err = check([(os.path.join(long_dir, os.path.basename(PKI.srv[0])), PKI.srv[1])])
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    main()
