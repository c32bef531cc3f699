"""End to end: porterd-xinetd on real xinetd configurations (Debian's own
files, the example of xinetd.conf(5) in our words, and one that uses every
attribute), checked with the real porterd -t, and one conversion served by the
real porterd and spoken to with real clients on 127.0.0.1.

Under PORTERD_VALGRIND=1 every run of the converter is under memcheck too."""

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

from porterd_test import (PORTERD, SRCDIR, TIMEOUT, VALGRIND, Porterd, free_port, main,
                          talk, write_script)

CONVERTER = os.environ.get("PORTERD_XINETD") or os.path.join(
    os.path.dirname(PORTERD), "porterd-xinetd")
DATA = os.path.join(SRCDIR, "tests", "data", "xinetd")
VALGRIND_FAILED = 99


def convert(*args, cwd=None):
    cmd = [CONVERTER] + list(args)
    if VALGRIND:
        cmd = ["valgrind", "-q", "--error-exitcode=%d" % VALGRIND_FAILED,
               "--leak-check=full", "--errors-for-leak-kinds=definite,indirect"] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT * 3, cwd=cwd)


def porterd_check(directory, dump=False):
    return subprocess.run([PORTERD, "-T" if dump else "-t", "-d", directory],
                          capture_output=True, text=True, timeout=TIMEOUT)


def section(text, name):
    """The key lines of [name] in a services.d text, comments left out."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("["):
            inside = line == "[%s]" % name
            continue
        if inside and line and not line.startswith(";"):
            lines.append(line)
    return lines


def sections(text):
    return re.findall(r"^\[([^\]]+)\]$", text, re.M)


def needs_root_for(text):
    """porterd -t refuses user and group other than its own when not root."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    users = re.findall(r"^(?:user|group) = (.*)$", text, re.M)
    return os.geteuid() != 0 and any(u != me for u in users)


class XinetdTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porterd-xinetd.")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # Servers named by real configurations that this machine lacks
        # (/usr/lib/amanda/amandad...) are replaced, for porterd -t only, by
        # a program that exists: porterd checks that exec can be run.
        self.stub = write_script(self.dir, "stub-server", "#!/bin/sh\nexit 0\n")

    def assert_porterd_accepts(self, text, name="10-converted.conf"):
        """porterd -t on the converted text, in a directory of its own."""
        if needs_root_for(text):
            self.skipTest("porterd -t needs root for the users of this configuration")
        checked = os.path.join(self.dir, "check-%d" % len(os.listdir(self.dir)))
        os.mkdir(checked)
        text = re.sub(r"^exec = (.*)$",
                      lambda m: m.group(0) if os.access(m.group(1), os.X_OK)
                      else "exec = " + self.stub, text, flags=re.M)
        with open(os.path.join(checked, name), "w") as f:
            f.write(text)
        r = porterd_check(checked)
        self.assertEqual(r.returncode, 0, r.stderr + text)
        return checked

    def read_dir(self, d):
        files = {}
        for n in sorted(os.listdir(d)):
            with open(os.path.join(d, n)) as f:
                files[n] = f.read()
        return files

    def test_long_paths_and_arguments_are_carried(self):
        """A server path and an argument longer than inih's 200-byte line buffer
        convert whole (porterd reads lines up to 64 KiB) and are served."""
        me = pwd.getpwuid(os.geteuid()).pw_name
        deep = os.path.join(self.dir, *(["d" * 60] * 4))
        os.makedirs(deep)
        server = write_script(deep, "say", '#!/bin/sh\nprintf "%s\\n" "$1"\n')
        word = "w" * 300
        port = free_port()
        conf = os.path.join(self.dir, "xinetd.conf")
        with open(conf, "w") as f:
            f.write("service long\n{\n\ttype = UNLISTED\n\tsocket_type = stream\n"
                    "\twait = no\n\tuser = %s\n\tserver = %s\n\tserver_args = %s\n"
                    "\tbind = 127.0.0.1\n\tport = %d\n}\n" % (me, server, word, port))
        self.assertGreater(len(server), 250)
        p = Porterd({})
        self.addCleanup(p.cleanup)
        r = convert("-o", p.confdir, conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        text = "".join(self.read_dir(p.confdir).values())
        self.assertIn("exec = %s\n" % server, text)
        self.assertRegex(text, r"\nargs = say\s+%s\n" % word)
        p.start()
        self.assertEqual(talk(port), word.encode() + b"\n")

    # -- Debian's files

    def test_debian_xinetd_package(self):
        """/etc/xinetd.conf and /etc/xinetd.d of Debian's xinetd, and amanda's file."""
        out = os.path.join(self.dir, "services.d")
        r = convert("-o", out, "xinetd.conf", cwd=os.path.join(DATA, "debian"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        files = self.read_dir(out)
        self.assertEqual(list(files), [
            "00-xinetd-defaults.conf", "10-xinetd-amanda.conf", "11-xinetd-chargen.conf",
            "12-xinetd-chargen-udp.conf", "13-xinetd-daytime.conf",
            "14-xinetd-daytime-udp.conf", "15-xinetd-discard.conf",
            "16-xinetd-discard-udp.conf", "17-xinetd-echo.conf", "18-xinetd-echo-udp.conf",
            "19-xinetd-servers.conf", "20-xinetd-services.conf", "21-xinetd-time.conf",
            "22-xinetd-time-udp.conf"])
        self.assertIn("; Nothing in them to carry over.", files["00-xinetd-defaults.conf"])
        self.assertNotIn("[defaults]", files["00-xinetd-defaults.conf"])
        echo = files["17-xinetd-echo.conf"]
        self.assertEqual(sections(echo), ["echo-stream", "echo-dgram"])
        self.assertEqual(section(echo, "echo-stream"), [
            "listen = *:7", "protocol = tcp", "enabled = no", "builtin = echo",
            "user = root"])
        self.assertEqual(section(echo, "echo-dgram"), [
            "listen = *:7", "protocol = udp", "enabled = no", "builtin = echo",
            "user = root"])
        self.assertIn("; disable = yes (xinetd.d/echo:8): converted, with enabled = no.", echo)
        # echo-udp repeats the id echo-dgram: a section name is unique.
        self.assertEqual(sections(files["18-xinetd-echo-udp.conf"]), ["echo-dgram-2"])
        self.assertIn("xinetd.d/echo-udp:8: service echo: [echo-dgram] is taken; written as "
                      "[echo-dgram-2]", r.stderr)
        self.assertEqual(section(files["10-xinetd-amanda.conf"], "amanda"), [
            "listen = 0.0.0.0:10080", "protocol = tcp", "wait = no",
            "exec = /usr/lib/amanda/amandad",
            "args = amandad -auth=bsdtcp amdump amindexd amidxtaped senddiscover",
            "user = backup", "group = disk"])
        # xinetd's own "services" and "servers" have no porterd builtin.
        self.assertEqual(sections(files["19-xinetd-servers.conf"]), [])
        self.assertIn("xinetd.d/servers:7: service servers: type = INTERNAL not carried over: "
                      "porterd's builtins are echo, discard, daytime, chargen, time and "
                      "tcpmux", r.stderr)
        self.assertIn("; not carried over: type = INTERNAL (xinetd.d/services:7):",
                      files["20-xinetd-services.conf"])
        self.assertTrue(r.stderr.endswith(
            "porterd-xinetd: 16 services converted (15 with enabled = no), 2 left out, "
            "2 notes on what is not carried over\n"), r.stderr)
        self.assert_porterd_accepts("".join(files.values()))

    def test_debian_example_files(self):
        """The xinetd files that vsftpd and amanda-client ship as examples."""
        r = convert("vsftpd.xinetd", cwd=os.path.join(DATA, "packages"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(section(r.stdout, "ftp"), [
            "listen = *:21", "protocol = tcp", "wait = no", "exec = /usr/local/sbin/vsftpd",
            "user = root", "deny = 192.168.1.3", "max_children = 200", "max_per_source = 5"])
        for attr, line in (("banner_fail", 13), ("log_on_success", 14),
                           ("log_on_failure", 15)):
            self.assertIn("vsftpd.xinetd:%d: service ftp: %s not carried over: " % (line, attr),
                          r.stderr)
            self.assertIn("; not carried over: %s (vsftpd.xinetd:%d): " % (attr, line),
                          r.stdout)
        self.assert_porterd_accepts(r.stdout)

        r = convert(os.path.join(DATA, "packages", "xinetd.amandaclient"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(section(r.stdout, "amanda"), [
            "listen = 0.0.0.0:10080", "protocol = tcp", "wait = no",
            "exec = /usr/lib/amanda/amandad", "args = amandad -auth=bsdtcp amdump senddiscover",
            "user = backup", "group = disk"])
        self.assert_porterd_accepts(r.stdout)

    # -- the manual's example, and every attribute

    def test_manual_example(self):
        r = convert("xinetd.conf", cwd=os.path.join(DATA, "manual"))
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        self.assertEqual(sections(out), ["defaults", "login", "shell", "ftp", "telnet",
                                         "echo-stream", "echo-dgram", "unlisted"])
        self.assertEqual(section(out, "defaults"), ["max_children = 10"])
        allow = "allow = 192.0.2.0/24, 198.51.100.0/24, 203.0.113.7"
        self.assertEqual(section(out, "login"), [
            "listen = *:513", "protocol = tcp", "wait = no", "exec = /usr/sbin/in.rlogind",
            "user = root", allow, "max_children = 1000000"])
        self.assertIn("; instances = UNLIMITED (xinetd.conf:26): porterd has no unlimited; "
                      "1000000 is its largest", out)
        self.assertEqual(section(out, "ftp"), [
            "listen = *:21", "protocol = tcp", "wait = no", "exec = /usr/sbin/in.ftpd",
            "args = in.ftpd -l", "user = root", allow, "max_children = 4", "nice = 10"])
        self.assertEqual(section(out, "telnet")[-3:], [
            "nice = 10", "rlimit_as = 8M", "rlimit_cpu = 20"])
        self.assertEqual(section(out, "echo-dgram"), [
            "listen = *:7", "protocol = udp", "builtin = echo", "user = root", allow])
        self.assertEqual(section(out, "unlisted")[:2], ["listen = *:20020", "protocol = tcp"])
        for line in (
                "xinetd.conf:9: defaults: log_type not carried over: ",
                "xinetd.conf:10: defaults: log_on_success not carried over: ",
                "xinetd.conf:37: service shell: log_on_success not carried over: ",
                "xinetd.conf:50: service ftp: access_times not carried over: porterd has no "
                "time-of-day windows",
                "xinetd.conf:86: service rstatd: type = RPC not carried over: porterd does "
                "not register RPC services with rpcbind"):
            self.assertIn(line, r.stderr)
        self.assert_porterd_accepts(out)

    def test_every_attribute(self):
        r = convert("xinetd.conf", cwd=os.path.join(DATA, "features"))
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = r.stdout, r.stderr
        self.assertEqual(sections(out), ["defaults", "lists", "replaced", "named", "sleepy",
                                         "udpwait", "tcpmux", "upper", "lower", "wrapped"])
        self.assertEqual(section(out, "defaults"), [
            "max_children = 30", "rate = 25/1", "umask = 027"])
        self.assertIn("xinetd.conf:7: defaults: the pause of cps not carried over: beyond 25 "
                      "connections a second porterd refuses each connection too many; xinetd "
                      "stopped the whole service for 10 s instead", err)
        # =, += and -= on the lists the defaults started the service with
        self.assertEqual(section(out, "lists"), [
            "listen = *:25001", "protocol = tcp", "wait = no", "exec = /bin/cat",
            "user = nobody", "group = nogroup", "env = GREETING=hello", "env = EMPTY=",
            "passenv = TZ,HOME",
            "allow = 127.0.0.1, 192.0.2.10, 192.0.2.11, 192.0.2.12, 198.51.100.0/25, "
            "2001:db8::/32, ::1",
            "deny = 10.1.99.0/24, 192.0.2.11"])
        self.assertIn("xinetd.conf:33: service lists: only_from not carried over: "
                      "gateway.example.org: porterd matches numeric addresses only", err)
        self.assertIn("xinetd.conf:34: service lists: no_access not carried over: "
                      "host.example.org: porterd matches numeric addresses only, so clients "
                      "from host.example.org are no longer refused", err)
        self.assertEqual(section(out, "replaced"), [
            "listen = 127.0.0.1:25002", "protocol = tcp", "wait = no", "exec = /bin/cat",
            "user = nobody", "allow = 0.0.0.0/0, ::/0", "deny = 10.1.99.0/24",
            "max_children = 1000000", "max_per_source = 8", "rate = 100/1", "umask = 077",
            "nice = 5", "rlimit_as = 64M", "rlimit_cpu = unlimited", "rlimit_nofile = 128"])
        for attr, line in (("groups = no", 62), ("the pause of cps", 55), ("NODELAY", 63),
                           ("KEEPALIVE", 63), ("rlimit_stack", 61), ("access_times", 64)):
            self.assertIn("xinetd.conf:%d: service replaced: %s not carried over: "
                          % (line, attr), err)
        # only host names in only_from: porterd lets nobody in, as the safe side
        self.assertEqual(section(out, "named"), [
            "listen = [::1]:25003", "protocol = tcp", "wait = no", "exec = /bin/cat",
            "user = nobody", "passenv = TZ,LANG", "deny = 0.0.0.0/0, ::/0",
            "max_per_source = 8"])
        self.assertIn("enabled = no", section(out, "sleepy"))
        self.assertIn("; listed in the defaults' disabled (xinetd.conf:13)", out)
        # wait = yes: porterd never sees the clients, so no allow or deny
        self.assertEqual(section(out, "udpwait"), [
            "listen = 0.0.0.0:25005", "protocol = udp", "wait = yes", "exec = /bin/cat",
            "user = nobody", "passenv = TZ,LANG"])
        self.assertIn("more.conf:13: service udpwait: only_from not carried over: a wait = "
                      "yes handler receives its clients itself", err)
        self.assertEqual(section(out, "tcpmux")[:3], [
            "listen = *:1", "protocol = tcp", "builtin = tcpmux"])
        self.assertEqual(section(out, "lower")[:6], [
            "tcpmux = lower", "protocol = tcp", "wait = no", "tcpmux_ack = yes",
            "exec = /usr/bin/tr", "args = tr A-Z a-z"])
        self.assertEqual(section(out, "wrapped")[:4], [
            "listen = [::]:25006", "protocol = tcp", "wait = no", "exec = /bin/sh"])
        self.assertIn("xinetd.d/wrapped:23: service forward: redirect not carried over: "
                      "porterd does not forward connections to another host", err)
        self.assertIn("xinetd.d/ignored.rpmsave: skipped, as xinetd skips it (the name "
                      "contains a '.')", err)
        self.assertIn("xinetd.d/wrapped~: skipped, as xinetd skips it (the name ends in '~')",
                      err)
        checked = self.assert_porterd_accepts(out)
        # server_args are split on blanks only; porterd gets back the same words
        r = porterd_check(checked, dump=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('args = sh -c "echo\\\\" "\\"a\\;b\\"#c"', section(r.stdout, "wrapped"))

    # -- mistakes and refusals

    def test_errors_are_reported_with_file_and_line(self):
        d = os.path.join(DATA, "errors")
        out = os.path.join(self.dir, "services.d")
        r = convert("-o", out, "xinetd.conf", cwd=d)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        with open(os.path.join(d, "expected")) as f:
            self.assertEqual(r.stderr, f.read())
        self.assertFalse(os.path.exists(out), "nothing is written")

    def test_never_overwrites(self):
        out = os.path.join(self.dir, "services.d")
        cwd = os.path.join(DATA, "manual")
        self.assertEqual(convert("-o", out, "xinetd.conf", cwd=cwd).returncode, 0)
        before = self.read_dir(out)
        r = convert("-o", out, "xinetd.conf", cwd=cwd)
        self.assertEqual(r.returncode, 111)
        self.assertIn("porterd-xinetd: %s/00-xinetd-defaults.conf exists already; nothing "
                      "written" % out, r.stderr)
        self.assertEqual(self.read_dir(out), before)

    def test_defaults_go_into_each_service_next_to_a_defaults(self):
        """A services directory has one [defaults]: xinetd's go into the services."""
        out = os.path.join(self.dir, "services.d")
        os.mkdir(out)
        with open(os.path.join(out, "00-site.conf"), "w") as f:
            f.write("[defaults]\nstderr = log\n\n[login]\nlisten = 127.0.0.1:25090\n"
                    "builtin = echo\n")
        r = convert("-o", out, "xinetd.conf", cwd=os.path.join(DATA, "manual"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("xinetd.conf:7: defaults: %s/00-site.conf has a [defaults] section "
                      "already: written into each service instead" % out, r.stderr)
        files = self.read_dir(out)
        converted = files["10-xinetd-xinetd.conf"]
        self.assertEqual(sections(files["00-xinetd-defaults.conf"]), [])
        self.assertNotIn("[login]", converted)
        self.assertIn("[login-2]", converted)
        self.assertIn("max_children = 10", section(converted, "telnet"))
        self.assertIn("max_children = 4", section(converted, "ftp"))
        self.assertIn("xinetd.conf:19: service login: [login] is taken; written as [login-2]",
                      r.stderr)
        text = "".join(files.values()).replace("listen = 127.0.0.1:25090", "listen = "
                                                "127.0.0.1:%d" % free_port())
        self.assert_porterd_accepts(text)

    def test_include_loop_and_usage(self):
        loop = os.path.join(self.dir, "loop.conf")
        with open(loop, "w") as f:
            f.write("include %s\n" % loop)
        r = convert(loop)
        self.assertEqual(r.returncode, 1)
        self.assertIn("%s:1: %s: more than 16 levels of include (a loop?)" % (loop, loop),
                      r.stderr)
        self.assertEqual(convert("-x").returncode, 100)
        self.assertEqual(convert("a", "b").returncode, 100)
        self.assertEqual(convert("-o").returncode, 100)
        r = convert(os.path.join(self.dir, "nope.conf"))
        self.assertEqual(r.returncode, 111)
        self.assertIn("nope.conf: No such file or directory", r.stderr)

    # -- served by porterd

    def test_converted_services_serve(self):
        """Convert, start porterd on the result, and be served on 127.0.0.1."""
        me = pwd.getpwuid(os.geteuid()).pw_name
        server = write_script(self.dir, "greeter", "#!/bin/sh\n"
                              'echo "$GREETING $1 from $TCPREMOTEIP, $PORTERD_SERVICE"\n')
        greet, echo, day, closed, off, mux = (free_port() for _ in range(6))
        udp_day = free_port(socket.SOCK_DGRAM)
        conf = os.path.join(self.dir, "xinetd.conf")
        with open(conf, "w") as f:
            f.write("""defaults
{
	instances	= 20
	cps		= 50 10
}

service greet
{
	type		= UNLISTED
	socket_type	= stream
	wait		= no
	user		= %(me)s
	server		= %(server)s
	server_args	= there
	env		= GREETING=hello
	bind		= 127.0.0.1
	port		= %(greet)d
	only_from	= 127.0.0.0/8
}

service echo
{
	type		= INTERNAL UNLISTED
	id		= echo-stream
	socket_type	= stream
	wait		= no
	bind		= 127.0.0.1
	port		= %(echo)d
}

service daytime
{
	type		= INTERNAL UNLISTED
	id		= daytime-dgram
	socket_type	= dgram
	wait		= yes
	bind		= 127.0.0.1
	port		= %(udp_day)d
}

service guarded
{
	type		= UNLISTED
	socket_type	= stream
	wait		= no
	user		= %(me)s
	server		= %(server)s
	bind		= 127.0.0.1
	port		= %(closed)d
	only_from	= 192.0.2.{1,2}
}

service resting
{
	type		= UNLISTED
	socket_type	= stream
	wait		= no
	user		= %(me)s
	server		= %(server)s
	bind		= 127.0.0.1
	port		= %(off)d
	disable		= yes
}

service tcpmux
{
	type		= INTERNAL UNLISTED
	socket_type	= stream
	wait		= no
	bind		= 127.0.0.1
	port		= %(mux)d
}

service shout
{
	type		= TCPMUXPLUS UNLISTED
	socket_type	= stream
	protocol	= tcp
	wait		= no
	user		= %(me)s
	server		= /usr/bin/tr
	server_args	= a-z A-Z
}
""" % dict(me=me, server=server, greet=greet, echo=echo, udp_day=udp_day, closed=closed,
           off=off, mux=mux))
        p = Porterd({})
        self.addCleanup(p.cleanup)
        r = convert("-o", p.confdir, conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(p.confdir)),
                         ["00-xinetd-defaults.conf", "10-xinetd-xinetd.conf"])
        self.assertEqual(porterd_check(p.confdir).returncode, 0)
        p.start()

        self.assertEqual(talk(greet), b"hello there from 127.0.0.1, greet\n")
        self.assertEqual(talk(echo, b"ping\n"), b"ping\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(TIMEOUT)
            s.bind(("127.0.0.1", 0))
            s.sendto(b"?", ("127.0.0.1", udp_day))
            answer, _ = s.recvfrom(512)
        self.assertRegex(answer.decode(), r"^\w+day, \w+ \d+, \d{4} \d\d:\d\d:\d\d-UTC\r\n$")
        # only_from without 127.0.0.1: closed at once, nothing sent
        self.assertEqual(talk(closed), b"")
        p.wait_log("guarded: refused 127.0.0.1:")
        # disable = yes: no socket at all
        with socket.socket() as s:
            s.settimeout(TIMEOUT)
            self.assertNotEqual(s.connect_ex(("127.0.0.1", off)), 0)
        # TCPMUXPLUS: porterd says +Go, then tr runs
        self.assertEqual(talk(mux, b"shout\r\nquiet please\n"), b"+Go\r\nQUIET PLEASE\n")


if __name__ == "__main__":
    main()
