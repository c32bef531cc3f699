"""End to end: the status and metrics builtins change exactly as a known
sequence of connections, refusals and reloads says; handlers' stderr reaches
the log; -v logs each connection and each exit."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from porterd_test import (PORTERD, SRCDIR, Porterd, TIMEOUT, free_port, main, talk,
                          wait_until)


def parse_status(text):
    """{'porterd': {...}, service: {...}} from the status table."""
    out = {}
    for line in text.splitlines():
        words = line.split()
        fields = dict(w.split("=", 1) for w in words if "=" in w)
        for key in ("refused", "exits", "reloads"):
            if key in fields:
                fields[key] = dict((k, int(v)) for k, v in
                                   (x.split(":") for x in fields[key].split(",")))
        if words[0] == "porterd":
            out["porterd"] = fields
        else:
            fields["listen"], fields["state"] = words[1], words[2]
            out[words[0]] = fields
    return out


def parse_metrics(text):
    """{(name, frozenset(labels)): value}, checking the exposition format as it goes."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge"), line
            typed.add(name)
            continue
        if line.startswith("#") or not line:
            continue
        m = re.fullmatch(r'([a-z_]+)(?:\{(.*)\})? (\d+(?:\.\d+)?)', line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.groups()
        assert name in typed, "%s has no TYPE line before it" % name
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        samples[(name, pairs)] = float(value)
    return samples


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


class ObservabilityTest(unittest.TestCase):

    def setUp(self):
        self.ports = {k: free_port() for k in ("ok", "deny", "fail", "status", "metrics")}
        self.p = Porterd({})
        self.addCleanup(self.p.cleanup)

    def base(self):
        p = self.ports
        return ("[ok]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\nargs = sh -c 'echo ok'\n"
                "[deny]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\ndeny = 127.0.0.1\n"
                "[fail]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\nargs = sh -c 'exit 3'\n"
                "[status]\nlisten = 127.0.0.1:%d\nbuiltin = status\n"
                "[metrics]\nlisten = 127.0.0.1:%d\nbuiltin = metrics\n"
                % (p["ok"], p["deny"], p["fail"], p["status"], p["metrics"]))

    def status(self):
        return parse_status(talk(self.ports["status"]).decode())

    def metrics(self):
        r = subprocess.run(["curl", "-sS", "--max-time", str(int(TIMEOUT)), "-i",
                            "http://127.0.0.1:%d/metrics" % self.ports["metrics"]],
                           capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        head, _, body = r.stdout.decode().partition("\r\n\r\n")
        self.assertTrue(head.startswith("HTTP/1.0 200 OK"), head)
        self.assertIn("Content-Type: text/plain; version=0.0.4", head)
        return parse_metrics(body)

    def test_counters_follow_a_known_sequence(self):
        p = self.p
        p.set_services({"10-all.conf": self.base()})
        p.start()
        for _ in range(3):
            self.assertEqual(talk(self.ports["ok"]), b"ok\n")
        for _ in range(2):
            self.assertEqual(talk(self.ports["deny"]), b"")
        talk(self.ports["fail"])
        wait_until(lambda: not p.children(), what="handlers reaped")

        st = self.status()
        self.assertEqual(st["porterd"]["pid"], str(p.pid))
        self.assertEqual(st["porterd"]["generation"], "1")
        self.assertEqual(st["porterd"]["last_reload_result"], "none")
        self.assertEqual(st["ok"]["accepted"], "3")
        self.assertEqual(st["ok"]["exits"], {"ok": 3, "error": 0, "signal": 0})
        self.assertEqual(st["ok"]["state"], "listening")
        self.assertEqual(st["ok"]["listen"], "127.0.0.1:%d" % self.ports["ok"])
        self.assertEqual(st["deny"]["refused"],
                         {"acl": 2, "per_source": 0, "source_rate": 0, "rate": 0, "proxy": 0,
                          "loop": 0, "idle": 0})
        self.assertEqual(st["deny"]["accepted"], "0")
        self.assertEqual(st["fail"]["exits"], {"ok": 0, "error": 1, "signal": 0})

        m = self.metrics()
        self.assertEqual(metric(m, "porterd_connections_accepted_total", service="ok"), 3)
        self.assertEqual(metric(m, "porterd_connections_refused_total", service="deny",
                                reason="acl"), 2)
        self.assertEqual(metric(m, "porterd_connections_refused_total", service="deny",
                                reason="rate"), 0)
        self.assertEqual(metric(m, "porterd_handler_exits_total", service="ok",
                                result="ok"), 3)
        self.assertEqual(metric(m, "porterd_handler_exits_total", service="fail",
                                result="error"), 1)
        self.assertEqual(metric(m, "porterd_handlers_running", service="ok"), 0)
        self.assertEqual(metric(m, "porterd_config_generation"), 1)
        self.assertEqual(metric(m, "porterd_reloads_total", result="ok"), 0)
        started = metric(m, "porterd_start_time_seconds")
        self.assertLess(abs(started - os.stat("/proc/%d" % p.pid).st_mtime), 600)

        # A failed reload, then a good one that drops [fail] and adds [new].
        p.set_services({"10-all.conf": self.base() + "bogus = 1\n"})
        self.assertFalse(p.reload())
        st = self.status()
        self.assertEqual(st["porterd"]["reloads"], {"ok": 0, "failed": 1})
        self.assertEqual(st["porterd"]["last_reload_result"], "failed")
        new = free_port()
        p.set_services({"10-all.conf": self.base().replace("[fail]", "[new]").replace(
            "127.0.0.1:%d" % self.ports["fail"], "127.0.0.1:%d" % new)})
        self.assertTrue(p.reload())
        talk(new)
        wait_until(lambda: not p.children(), what="handlers reaped")
        st = self.status()
        self.assertEqual(st["porterd"]["generation"], "2")
        self.assertEqual(st["porterd"]["reloads"], {"ok": 1, "failed": 1})
        self.assertEqual(st["porterd"]["last_reload_result"], "ok")
        self.assertNotIn("fail", st)
        self.assertEqual(st["new"]["exits"]["error"], 1)
        # Counters of a service that stayed go on across the reload.
        self.assertEqual(st["ok"]["accepted"], "3")
        m = self.metrics()
        self.assertEqual(metric(m, "porterd_reloads_total", result="ok"), 1)
        self.assertEqual(metric(m, "porterd_reloads_total", result="failed"), 1)
        self.assertEqual(metric(m, "porterd_config_generation"), 2)
        self.assertEqual(metric(m, "porterd_connections_accepted_total", service="ok"), 3)
        self.assertNotIn(("porterd_handlers_running", frozenset({("service", "fail")})), m)

    def test_metrics_http_errors(self):
        self.p.set_services({"10-all.conf": self.base()})
        self.p.start()
        port = self.ports["metrics"]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"GET /nope HTTP/1.0\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.0 404"))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.sendall(b"POST /metrics HTTP/1.0\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.0 405"))

    def test_metrics_request_has_5_seconds_in_all(self):
        # A byte a second never lets a per-read timeout expire; the deadline is
        # for the whole request, and the child serving it goes at 5 s.
        self.p.set_services({"10-all.conf": self.base()})
        self.p.start()
        with socket.create_connection(("127.0.0.1", self.ports["metrics"]),
                                      timeout=TIMEOUT) as s:
            wait_until(lambda: len(self.p.children()) == 1, what="the metrics child")
            start = time.monotonic()
            closed = None
            for byte in b"GET /metrics HTTP/1.0\r\nX-Slow: " + b"x" * 20:
                r, _, _ = select.select([s], [], [], 1.0)
                if r:
                    closed = time.monotonic() - start
                    # Closed: by a FIN, or by a reset when a byte was still
                    # unread as the deadline's SIGALRM ended the child.
                    try:
                        self.assertEqual(s.recv(100), b"")
                    except ConnectionResetError:
                        pass
                    break
                s.send(bytes([byte]))
            self.assertIsNotNone(closed, "still open after 20 s of trickling")
            self.assertGreater(closed, 4.0)
        wait_until(lambda: not self.p.children(), what="the metrics child gone")

    def test_status_builtin_does_not_wait_for_the_client(self):
        self.p.set_services({"10-all.conf": self.base()})
        self.p.start()
        # The client sends nothing and does not half-close: the table still comes.
        with socket.create_connection(("127.0.0.1", self.ports["status"]),
                                      timeout=TIMEOUT) as s:
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        self.assertIn("ok", parse_status(data.decode()))

    def test_sigusr1_writes_the_status_table(self):
        p = self.p
        p.set_services({"10-all.conf": self.base()})
        p.start()
        talk(self.ports["ok"])
        wait_until(lambda: not p.children(), what="reaped")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: metrics ")
        lines = [l.split("status: ", 1)[1] for l in p.log().splitlines() if "status: " in l]
        st = parse_status("\n".join(lines))
        self.assertEqual(st["ok"]["accepted"], "1")
        self.assertEqual(st["porterd"]["pid"], str(p.pid))

    def test_stderr_log_and_null(self):
        p = self.p
        a, b = free_port(), free_port()
        p.set_services({"10-e.conf":
                        "[talky]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\nstderr = log\n"
                        "args = sh -c 'echo out; echo first >&2; echo second >&2; "
                        "printf \"forged\\033[2K\\rporterd[1]: x\\n\" >&2; "
                        "printf \"last words\" >&2'\n"
                        "[quiet]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\nstderr = null\n"
                        "args = sh -c 'echo out; echo secret >&2'\n" % (a, b)})
        p.start()
        self.assertEqual(talk(a), b"out\n")
        pid = wait_until(lambda: re.search(r"talky: 127\.0\.0\.1:\d+ -> pid (\d+)", p.log()),
                         what="the connection line").group(1)
        # a control byte is escaped: no line written over, no line forged
        for line in ("first", "second", "forged\\x1b[2K\\x0dporterd[1]: x", "last words"):
            p.wait_log("talky[%s]: %s\n" % (pid, line))
        # The handler's stderr went to the log, not to the client; null: nowhere.
        self.assertEqual(talk(b), b"out\n")
        wait_until(lambda: not p.children(), what="reaped")
        self.assertNotIn("secret", p.log())

    def test_verbose_accept_and_exit_lines(self):
        p = self.p
        port = free_port()
        k = free_port()
        p.set_services({"10-v.conf": "[v]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                     "args = sh -c 'exit 4'\n"
                                     "[k]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                     "args = sh -c 'kill -TERM $$'\n" % (port, k)})
        p.start()
        for svc, target in (("v", port), ("k", k)):
            with socket.create_connection(("127.0.0.1", target), timeout=TIMEOUT) as s:
                me = s.getsockname()[1]
                s.recv(1)
            peer = "127.0.0.1:%d" % me
            m = wait_until(lambda: re.search(r"%s: %s -> pid (\d+)" % (svc, re.escape(peer)),
                                             p.log()), what="accept line")
            pid = m.group(1)
            if svc == "v":
                p.wait_log("v: pid %s exited with status 4 after " % pid)
                self.assertRegex(p.log(), r"v: pid %s exited with status 4 after \d+\.\d{3} s, "
                                 r"client %s" % (pid, re.escape(peer)))
            else:
                p.wait_log("k: pid %s killed by signal 15 (Terminated) after " % pid)
                self.assertRegex(p.log(), r"k: pid %s killed by signal 15 \(Terminated\) after "
                                 r"\d+\.\d{3} s, client %s" % (pid, re.escape(peer)))

    def start_with_env(self, p, env):
        p.logfile = open(p.logpath, "ab")
        p.proc = subprocess.Popen(p.command(), stdin=subprocess.DEVNULL, stdout=p.logfile,
                                  stderr=p.logfile, env=dict(os.environ, **env))
        p.pid = p.proc.pid
        p.wait_log("started with")

    def test_journal_stream_gets_a_priority_on_each_line(self):
        p = self.p
        gone, refusing, talky = free_port(), free_port(), free_port()
        vanishing = os.path.join(p.dir, "vanishing")
        with open(vanishing, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(vanishing, 0o755)
        p.set_services({"10-j.conf":
                        "[gone]\nlisten = 127.0.0.1:%d\nexec = %s\n"
                        "[refusing]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n"
                        "allow = 127.0.0.2\n"
                        "[talky]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\nstderr = log\n"
                        "args = sh -c 'echo oops >&2'\n"
                        % (gone, vanishing, refusing, talky)})
        open(p.logpath, "ab").close()
        st = os.stat(p.logpath)
        # systemd's JOURNAL_STREAM names the stream on stderr: this log file.
        self.start_with_env(p, {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        os.unlink(vanishing)
        self.assertEqual(talk(gone), b"")
        self.assertEqual(talk(refusing), b"")
        self.assertEqual(talk(talky), b"")
        p.wait_log("gone: exec %s: No such file or directory" % vanishing)
        p.wait_log("refusing: refused 127.0.0.1:")
        p.wait_log("]: oops")
        lines = [l for l in p.log().splitlines() if "porterd[" in l]
        bad = [l for l in lines if not re.match(r"<[0-7]>porterd\[\d+\]: ", l)]
        self.assertEqual(bad, [])
        self.assertRegex(p.log(), r"(?m)^<6>porterd\[\d+\]: started with 3 services")
        self.assertRegex(p.log(), r"(?m)^<3>porterd\[\d+\]: gone: exec ")
        self.assertRegex(p.log(), r"(?m)^<5>porterd\[\d+\]: refusing: refused 127\.0\.0\.1:")
        self.assertRegex(p.log(), r"(?m)^<5>porterd\[\d+\]: talky\[\d+\]: oops$")

    def test_no_priority_when_stderr_is_not_the_journal(self):
        p = self.p
        port = free_port()
        p.set_services({"10-j.conf": "[a]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n" % port})
        # A JOURNAL_STREAM inherited from elsewhere names another stream.
        st = os.stat(SRCDIR)
        self.start_with_env(p, {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
        self.assertRegex(p.log(), r"(?m)^porterd\[\d+\]: started with 1 service ")
        self.assertNotIn("<6>", p.log())


class SystemdUnitTest(unittest.TestCase):

    @unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
    def test_unit_verifies(self):
        with open(os.path.join(SRCDIR, "systemd", "porterd.service.in")) as f:
            text = f.read()
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", text)
        self.assertIn("Type=notify", text)
        self.assertIn("ExecStart=@sbindir@/porterd -f ", text)
        d = tempfile.mkdtemp(prefix="porterd-unit.")
        self.addCleanup(shutil.rmtree, d, True)
        sbindir = os.path.dirname(os.path.abspath(PORTERD))
        unit = os.path.join(d, "porterd.service")
        with open(unit, "w") as f:
            f.write(text.replace("@sbindir@", sbindir).replace("@sysconfdir@", d))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit], capture_output=True,
                           text=True, timeout=TIMEOUT)
        problems = [l for l in (r.stdout + r.stderr).splitlines()
                    if "porterd.service" in l]
        self.assertEqual(problems, [])
        sock = os.path.join(d, "porterd.socket")
        shutil.copy(os.path.join(SRCDIR, "systemd", "porterd.socket"), sock)
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", sock],
                           capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual([l for l in (r.stdout + r.stderr).splitlines()
                          if "porterd.socket" in l], [])


if __name__ == "__main__":
    main()
