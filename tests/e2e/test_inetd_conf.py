"""End to end: porterd -i FILE serves the classic inetd.conf as Debian's
openbsd-inetd reads it: each line a service of the same table, checked like
services.d, and reread by itself when update-inetd rewrites the file."""

import os
import pwd
import grp
import shutil
import socket
import subprocess
import tempfile
import unittest

from porterd_test import (PORTERD, SRCDIR, TIMEOUT, Porterd, free_port, main, need_program,
                          parse_env, talk, wait_until, write_script)

ME = pwd.getpwuid(os.geteuid()).pw_name
MY_GROUP = grp.getgrgid(os.getegid()).gr_name


def run(*args):
    return subprocess.run([PORTERD] + list(args), capture_output=True, timeout=TIMEOUT,
                          text=True)


def table(stdout):
    """-T output as {section: {key: value or [values]}}."""
    out, cur = {}, None
    for line in stdout.splitlines():
        if line.startswith("["):
            cur = out.setdefault(line.strip("[]"), {})
        elif " = " in line and cur is not None:
            k, v = line.split(" = ", 1)
            if k in cur:
                cur[k] = cur[k] if isinstance(cur[k], list) else [cur[k]]
                cur[k].append(v)
            else:
                cur[k] = v
    return out


def update_inetd(path, *args):
    """The real update-inetd on our file; it must not touch the machine's inetd."""
    env = dict(os.environ, UPDATE_INETD_FAKE_IT="1", UPDATE_INETD_NOXINETD="1",
               DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["update-inetd", "--file", path] + list(args), env=env,
                       capture_output=True, text=True, timeout=TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr


def answers(port, data=b""):
    try:
        return talk(port, data, timeout=2)
    except OSError:
        return None


class InetdConfCheckTest(unittest.TestCase):
    """-t and -T: the mapping of each field, and every bad line as FILE:LINE."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porterd-inetd.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.sd = os.path.join(self.dir, "services.d")
        os.mkdir(self.sd)
        self.conf = os.path.join(self.dir, "inetd.conf")

    def write(self, text, services=None):
        with open(self.conf, "w") as f:
            f.write(text)
        for name, body in (services or {}).items():
            with open(os.path.join(self.sd, name), "w") as f:
                f.write(body)

    def test_fields_map_onto_keys(self):
        self.write(
            "# a comment, and a line update-inetd turned off:\n"
            "#<off># finger\tstream\ttcp\tnowait\tnobody\t/usr/sbin/tcpd\t/usr/sbin/in.fingerd\n"
            "\n"
            "echo\tstream\ttcp\tnowait\troot\tinternal\n"
            "echo  dgram  udp  wait  root  internal\n"
            "127.0.0.1:\n"
            "daytime stream tcp4 nowait.10 root internal\n"
            "7101 stream tcp nowait %s.%s /bin/echo echo one\n"
            "*:\n"
            "7102 stream tcp6 wait %s:%s /bin/cat cat\n"
            "7103 stream tcp46 nowait %s /bin/echo echo two\n"
            "  three four\n"
            "[::1]:7104 stream tcp nowait %s /bin/echo echo \"q\n"
            "127.0.0.2:7105 dgram udp4 wait.30 %s /bin/cat cat\n"
            % (ME, MY_GROUP, ME, MY_GROUP, ME, ME, ME))
        r = run("-T", "-d", self.sd, "-i", self.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        t = table(r.stdout)
        self.assertEqual(sorted(t), ["7101", "7102", "7103", "7104", "7105", "daytime",
                                     "echo", "echo-udp"])
        self.assertEqual((t["echo"]["listen"], t["echo"]["protocol"], t["echo"]["builtin"]),
                         ("*:7", "tcp", "echo"))
        self.assertEqual((t["echo-udp"]["listen"], t["echo-udp"]["protocol"],
                          t["echo-udp"]["wait"]), ("*:7", "udp", "no"))
        # a lone host: line sets the host of the lines after it; .N is starts a minute
        self.assertEqual((t["daytime"]["listen"], t["daytime"]["rate"]),
                         ("127.0.0.1:13", "10/60"))
        self.assertEqual((t["7101"]["listen"], t["7101"]["user"], t["7101"]["group"],
                          t["7101"]["args"], t["7101"]["wait"]),
                         ("127.0.0.1:7101", ME, MY_GROUP, "echo one", "no"))
        # "*:" puts back all addresses; tcp6 is IPv6 only, tcp and tcp46 both
        self.assertEqual((t["7102"]["listen"], t["7102"]["wait"], t["7102"]["group"]),
                         ("[::]:7102", "yes", MY_GROUP))
        # a line that starts with a blank goes on with the line before it
        self.assertEqual((t["7103"]["listen"], t["7103"]["args"]),
                         ("*:7103", "echo two three four"))
        # inetd.conf has no quoting: a quote is a character of the word
        self.assertEqual((t["7104"]["listen"], t["7104"]["args"]),
                         ("[::1]:7104", 'echo "\\"q"'))
        self.assertEqual((t["7105"]["listen"], t["7105"]["protocol"], t["7105"]["rate"]),
                         ("127.0.0.2:7105", "udp", "30/60"))
        # what -T prints loads as services.d, without the inetd.conf
        again = os.path.join(self.dir, "again")
        os.mkdir(again)
        with open(os.path.join(again, "all.conf"), "w") as f:
            f.write(r.stdout)
        r2 = run("-T", "-d", again)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(table(r2.stdout), t)

    def test_service_names_come_from_etc_services(self):
        self.write("finger stream tcp nowait %s /bin/echo echo f\n"
                   "tftp dgram udp wait %s /bin/cat cat\n" % (ME, ME))
        r = run("-T", "-d", self.sd, "-i", self.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        t = table(r.stdout)
        self.assertEqual(t["finger"]["listen"], "*:79")
        self.assertEqual((t["tftp"]["listen"], t["tftp"]["protocol"]), ("*:69", "udp"))

    def test_lines_porterd_does_not_serve_are_listed_not_errors(self):
        self.write(
            "rstatd/1-5 dgram rpc/udp wait root /usr/sbin/rpc.rstatd rpc.rstatd\n"
            "7201 dgram udp nowait %s /bin/cat cat\n"
            "7202 raw icmp nowait %s /bin/cat cat\n"
            "/tmp/x.sock dgram unix wait %s /bin/cat cat\n"
            "7203 stream tcp,rcvbuf=64k,sndbuf=1m nowait %s /bin/cat cat\n"
            "7204 stream tcp nowait %s /usr/sbin/in.gone in.gone\n"
            % (ME, ME, ME, ME, ME))
        r = run("-t", "-d", self.sd, "-i", self.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        f = self.conf
        self.assertIn("%s:1: rstatd/1-5: skipped (RPC services are not supported)" % f,
                      r.stderr)
        self.assertIn("%s:2: 7201: skipped (dgram nowait handlers are not supported" % f,
                      r.stderr)
        self.assertIn("%s:3: 7202: skipped (socket type raw is not supported)" % f, r.stderr)
        self.assertIn("%s:4: /tmp/x.sock: skipped (unix datagram sockets are not "
                      "supported)" % f, r.stderr)
        self.assertIn("%s:5: 7203: rcvbuf=64k,sndbuf=1m ignored" % f, r.stderr)
        # a line left behind by a removed package must not stop everything else
        self.assertIn("%s:6: 7204: skipped (/usr/sbin/in.gone: No such file or directory)"
                      % f, r.stderr)
        t = table(run("-T", "-d", self.sd, "-i", self.conf).stdout)
        self.assertEqual(sorted(t), ["7203"])

    def test_services_d_replaces_the_line_of_the_same_name(self):
        self.write("finger stream tcp nowait %s /bin/echo echo old\n"
                   "finger dgram udp wait %s /bin/cat cat\n"
                   "7301 stream tcp nowait %s /bin/echo echo kept\n" % (ME, ME, ME),
                   {"10-finger.conf": "[finger]\nlisten = 127.0.0.1:7379\n"
                                      "exec = /bin/echo\nargs = echo new\n"})
        r = run("-T", "-d", self.sd, "-i", self.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        t = table(r.stdout)
        self.assertEqual(sorted(t), ["7301", "finger"])
        self.assertEqual(t["finger"]["args"], "echo new")
        where = os.path.join(self.sd, "10-finger.conf")
        self.assertIn("%s:1: finger: replaced by [finger] at %s:1" % (self.conf, where),
                      r.stderr)
        self.assertIn("%s:2: finger: replaced by [finger] at %s:1" % (self.conf, where),
                      r.stderr)

    def test_every_bad_line_is_left_out_with_a_warning_at_file_and_line(self):
        # The file is shared by every package that registers a service: as
        # with openbsd-inetd, a wrong line costs only itself.
        d = os.path.join(SRCDIR, "tests", "data", "inetd-errors")
        conf = os.path.join(d, "inetd.conf")
        r = run("-T", "-d", os.path.join(d, "services.d"), "-i", conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(d, "expected")) as f:
            want = [l.replace(": ", ": warning: ", 1) + " (the line is left out)"
                    for l in f.read().splitlines()]
        got = [l.replace(d + "/", "") for l in r.stderr.splitlines()]
        self.assertEqual(got, want)
        # the good lines, and services.d, are served
        self.assertEqual(sorted(table(r.stdout)), ["7410", "7414", "ok"])

    def test_a_missing_file_is_read_as_empty(self):
        # Purging openbsd-inetd removes an /etc/inetd.conf with no line on.
        with open(os.path.join(self.sd, "a.conf"), "w") as f:
            f.write("[a]\nlisten = 127.0.0.1:7001\nbuiltin = echo\n")
        r = run("-T", "-d", self.sd, "-i", self.conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("%s: warning: No such file or directory (nothing of it is served)"
                      % self.conf, r.stderr)
        self.assertEqual(list(table(r.stdout)), ["a"])


class InetdConfServeTest(unittest.TestCase):
    """The real daemon on an inetd.conf: it serves the lines, and rereads the file."""

    def setUp(self):
        self.p = None

    def start(self, text, services=None, env=None):
        self.p = Porterd(services or {}, env=env)
        self.conf = os.path.join(self.p.dir, "inetd.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.p.extra_args = ["-i", self.conf]
        self.addCleanup(self.p.cleanup)
        self.p.start()
        return self.p

    def rewrite(self, text):
        """As update-inetd does: a new file renamed over the old one."""
        tmp = self.conf + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)

    def test_a_line_is_served_with_the_ucspi_environment(self):
        port = free_port()
        p = self.start("127.0.0.1:%d stream tcp nowait %s /usr/bin/env env\n" % (port, ME))
        env = parse_env(talk(port).decode())
        self.assertEqual(env["PROTO"], "TCP")
        self.assertEqual(env["TCPREMOTEIP"], "127.0.0.1")
        self.assertEqual(env["TCPLOCALPORT"], str(port))
        self.assertEqual(env["PORTERD_SERVICE"], str(port))
        self.assertIn("and %s" % self.conf, p.log())

    def test_internal_echo_by_its_service_name(self):
        if os.geteuid() != 0:
            self.skipTest("echo is port 7: needs root")
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 7))
            except OSError:
                self.skipTest("127.0.0.1:7 is taken")
        self.start("127.0.0.1:echo stream tcp nowait root internal\n"
                   "127.0.0.1:echo dgram udp wait root internal\n")
        self.assertEqual(talk(7, b"ping\n"), b"ping\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(TIMEOUT)
            u.sendto(b"dgram", ("127.0.0.1", 7))
            self.assertEqual(u.recvfrom(100)[0], b"dgram")

    def test_update_inetd_add_disable_enable_remove(self):
        port = free_port()
        kept = free_port()
        self.start("#:OTHER: Other services\n"
                   "127.0.0.1:%d stream tcp nowait %s /bin/echo echo kept\n" % (kept, ME))
        self.assertEqual(talk(kept), b"kept\n")
        line = "127.0.0.1:%d\tstream\ttcp\tnowait\t%s\t/bin/echo\techo added" % (port, ME)
        reloads = self.p.log().count("reloaded ")
        update_inetd(self.conf, "--group", "OTHER", "--add", line)
        wait_until(lambda: answers(port) == b"added\n", what="the added line to answer")
        self.assertIn(": it changed", self.p.log())
        self.assertEqual(self.p.log().count("reloaded "), reloads + 1)

        update_inetd(self.conf, "--pattern", "added", "--disable", "127.0.0.1:%d" % port)
        with open(self.conf) as f:
            self.assertIn("#<off># 127.0.0.1:%d" % port, f.read())
        wait_until(lambda: answers(port) is None, what="the disabled line to stop")
        self.assertEqual(talk(kept), b"kept\n")

        update_inetd(self.conf, "--pattern", "added", "--enable", "127.0.0.1:%d" % port)
        wait_until(lambda: answers(port) == b"added\n", what="the enabled line to answer")

        update_inetd(self.conf, "--pattern", "added", "--remove", "127.0.0.1:%d" % port)
        wait_until(lambda: answers(port) is None, what="the removed line to stop")
        self.assertEqual(talk(kept), b"kept\n")

    def test_a_line_whose_port_is_taken_is_left_out_and_tried_again(self):
        # A wait handler of the last porterd (in.tftpd lingers) or a daemon of
        # its own may hold a line's port: the rest is served, and the line is
        # tried again every minute (here, every half second).
        free, taken = free_port(), free_port()
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", taken))
        holder.listen(1)
        self.addCleanup(holder.close)
        p = self.start("127.0.0.1:%d stream tcp nowait %s /bin/echo echo free\n"
                       "127.0.0.1:%d stream tcp nowait %s /bin/echo echo taken\n"
                       % (free, ME, taken, ME), env={"PORTERD_TEST_REBIND_MS": "500"})
        self.assertEqual(talk(free), b"free\n")
        self.assertRegex(p.log(), r"inetd\.conf:2: %d: listen 127\.0\.0\.1:%d: bind: Address "
                         r"already in use; left out, tried again in a minute" % (taken, taken))
        holder.close()
        wait_until(lambda: answers(taken) == b"taken\n", what="the line, once its port is free")
        self.assertEqual(talk(free), b"free\n")

    def test_a_bad_line_added_costs_only_itself(self):
        # As update-inetd adds one package's line: another package's wrong
        # line must not keep it from being served.
        port, other = free_port(), free_port()
        p = self.start("127.0.0.1:%d stream tcp nowait %s /bin/echo echo one\n" % (port, ME))
        self.assertEqual(talk(port), b"one\n")
        self.rewrite("127.0.0.1:%d stream tcp nowait %s /bin/echo echo one\n"
                     "nosuchservice stream tcp nowait %s /bin/echo echo two\n"
                     "127.0.0.1:%d stream tcp nowait %s /bin/echo echo new\n"
                     % (port, ME, ME, other, ME))
        wait_until(lambda: answers(other) == b"new\n", what="the good new line")
        self.assertIn("inetd.conf:2: warning: nosuchservice: no such tcp service in "
                      "/etc/services, and not a port number (the line is left out)", p.log())
        self.assertEqual(talk(port), b"one\n")
        # a file that goes away (a purge of openbsd-inetd removes one with no
        # line on) is read as empty at the next reload, and seen when it is back
        os.unlink(self.conf)
        self.assertTrue(p.reload())
        self.assertIn("inetd.conf: warning: No such file or directory", p.log())
        self.assertIsNone(answers(port))
        self.rewrite("127.0.0.1:%d stream tcp nowait %s /bin/echo echo back\n" % (port, ME))
        wait_until(lambda: answers(port) == b"back\n", what="the file back")
        # an edit in place (an editor's write, then close) is seen too
        with open(self.conf, "w") as f:
            f.write("127.0.0.1:%d stream tcp nowait %s /bin/echo echo three\n" % (port, ME))
        wait_until(lambda: answers(port) == b"three\n", what="the edited line to answer")

    def test_only_the_file_itself_counts_and_sighup_rereads_it(self):
        port = free_port()
        p = self.start("")
        before = p.log().count("reloading ")
        # other files of the directory, written and renamed, change nothing...
        with open(os.path.join(p.dir, "inetd.conf.dpkg-new"), "w") as f:
            f.write("127.0.0.1:%d stream tcp nowait %s /bin/echo echo other\n" % (port, ME))
        os.rename(os.path.join(p.dir, "inetd.conf.dpkg-new"), os.path.join(p.dir, "x"))
        # ...and the events come in order: a reload for them would be logged first
        self.rewrite("127.0.0.1:%d stream tcp nowait %s /bin/echo echo mine\n" % (port, ME))
        wait_until(lambda: answers(port) == b"mine\n", what="the rewritten file")
        self.assertEqual(p.log().count("reloading "), before + 1)
        self.assertTrue(p.reload())
        self.assertEqual(talk(port), b"mine\n")


class HelpTest(unittest.TestCase):

    def test_help_and_version(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("usage: porterd "), r.stdout)
        self.assertIn("-i FILE", r.stdout)
        self.assertEqual(r.stderr, "")
        self.assertEqual(run("-h").stdout, r.stdout)
        v = run("--version")
        self.assertEqual(v.returncode, 0)
        self.assertRegex(v.stdout, r"^porterd \d+\.\d+\.\d+\n$")
        self.assertEqual(run("-V").stdout, v.stdout)
        bad = run("--no-such-option")
        self.assertEqual(bad.returncode, 100)
        self.assertIn("Try 'porterd --help'", bad.stderr)


if __name__ == "__main__":
    main()
