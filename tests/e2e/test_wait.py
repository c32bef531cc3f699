"""End to end: `wait = yes` services. The handler gets the listening (TCP) or
datagram (UDP) socket itself on fds 0,1,2 and porterd leaves that socket alone
until the handler exits; then it watches it again. Checked with the real
in.tftpd and tftp client, a self-accepting Python handler, and git daemon
--inetd with the real git client."""

import os
import re
import signal
import socket
import subprocess
import unittest

from porterd_test import (Porterd, TIMEOUT, cpu_ticks, free_port, main, need_program, talk,
                          wait_until, write_script)

TFTPD = "/usr/sbin/in.tftpd"
GIT = "/usr/bin/git"

# Accepts exactly three connections on the listening socket porterd hands it,
# answers each with its number, its pid and what fd 0 is, then exits.
ACCEPT3 = r'''#!/usr/bin/python3
import os, socket
ino = set(os.fstat(fd).st_ino for fd in (0, 1, 2))
ls = socket.socket(fileno=0)
listening = ls.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
for n in range(1, 4):
    c, _ = ls.accept()
    c.sendall(b"served %d by %d listening=%d same=%d\n" % (n, os.getpid(), listening,
                                                            len(ino) == 1))
    c.close()
'''

SERVED = re.compile(rb"^served (\d) by (\d+) listening=1 same=1\n$")


def udp_rx_queue(port, host_hex="0100007F"):
    """Bytes waiting in the receive queue of the UDP socket bound to 127.0.0.1:port."""
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            ip, p = fields[1].split(":")
            if ip == host_hex and int(p, 16) == port:
                return int(fields[4].split(":")[1], 16)
    return None


def wait_pids(log, service):
    return [int(x) for x in re.findall(r"%s: wait handler -> pid (\d+)" % re.escape(service),
                                       log)]


def foreign_lines(log, service):
    """Log lines about `service` other than starting, ending or a status dump of a
    wait handler: with -v, a connection porterd accepted itself would show here."""
    ok = re.compile(r"porterd\[\d+\]: (%s: (wait handler -> pid \d+|pid \d+ "
                    r"(exited with status|killed by signal) .*)|status: .*)$"
                    % re.escape(service))
    return [l for l in log.splitlines() if service + ":" in l and not ok.match(l)]


def kill_handlers(p, service, marker):
    """Stop porterd, then SIGKILL the wait handlers of `service` it logged that are
    still alive (checked by their command line containing `marker`)."""
    p.stop()
    try:
        pids = wait_pids(p.log(), service)
    except OSError:
        return
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read()
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# A wait handler that makes its listening socket non-blocking, as event-driven
# daemons do, and tells each of two clients whether it still is.
NONBLOCK = r"""#!/usr/bin/env python3
import fcntl, os, select, socket
s = socket.socket(fileno=0)
fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK)
served = 0
while served < 2:
    if not select.select([0], [], [], 30)[0]:
        break
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    flag = bool(fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK)
    c.sendall(b"nonblock=%d\n" % flag)
    c.close()
    served += 1
"""


class WaitTest(unittest.TestCase):

    def porterd(self, body_fn):
        """body_fn(dir) -> services.d text; porterd not started yet."""
        p = Porterd({})
        self.addCleanup(p.cleanup)
        p.set_services({"10-wait.conf": body_fn(p.dir)})
        return p

    # -- UDP: the real in.tftpd

    @need_program(TFTPD)
    @need_program("tftp")
    def test_udp_wait_with_real_tftpd(self):
        if os.geteuid() != 0:
            self.skipTest("in.tftpd --secure chroots: needs root")
        port = free_port(socket.SOCK_DGRAM)
        p = self.porterd(lambda d: (
            "[tftp]\nlisten = 127.0.0.1:%d\nprotocol = udp\nwait = yes\nexec = %s\n"
            "args = in.tftpd --secure --timeout 1 --user root %s/root\n"
            % (port, TFTPD, d)))
        root = os.path.join(p.dir, "root")
        out = os.path.join(p.dir, "out")
        os.mkdir(root)
        os.mkdir(out)
        # Sizes around the 512-byte block: one short block, exact blocks, many blocks.
        files = {"empty.txt": b"", "small.txt": b"hello tftp\n",
                 "block.bin": os.urandom(512), "two.bin": os.urandom(1024),
                 "big.bin": os.urandom(70001), "crlf.txt": b"a\r\nb\nc\r"}
        for name, data in files.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(data)
        self.addCleanup(kill_handlers, p, "tftp", "in.tftpd")
        p.start()

        def fetch(name):
            local = os.path.join(out, name)
            if os.path.exists(local):
                os.unlink(local)
            r = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get",
                                name, local], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r)
            with open(local, "rb") as f:
                self.assertEqual(f.read(), files[name], "%s differs (%r)" % (name, r))

        for name in ["small.txt", "block.bin", "two.bin", "big.bin", "crlf.txt"]:
            fetch(name)
        log = p.log()
        first = wait_pids(log, "tftp")
        self.assertGreaterEqual(len(first), 1, log)
        # No per-datagram handling by porterd: at most a handler per idle period.
        self.assertLessEqual(len(first), 5, log)
        # in.tftpd leaves after 1 s without a request; porterd reaps it.
        last = first[-1]
        p.wait_log("tftp: pid %d exited with status 0" % last,
                   what="in.tftpd %d to time out and exit" % last)
        wait_until(lambda: not p.children(), what="no handler left")
        # porterd watches the socket again: a new request starts a new in.tftpd.
        fetch("small.txt")
        # Its start is logged once porterd runs again, which on a busy machine
        # may come after in.tftpd has served the whole file.
        wait_until(lambda: len(wait_pids(p.log(), "tftp")) > len(first), what="a new in.tftpd")
        then = wait_pids(p.log(), "tftp")
        self.assertEqual(len(then), len(first) + 1, p.log())
        self.assertNotEqual(then[-1], last)
        # A file that is not there: tftp reports the error, porterd goes on.
        r = subprocess.run(["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get",
                            "missing.txt", os.path.join(out, "missing.txt")],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
        self.assertIn(b"File not found", r.stdout + r.stderr)
        fetch("empty.txt")
        self.assertTrue(p.alive())
        # Let the last in.tftpd time out on its own, reaped by porterd.
        for pid in wait_pids(p.log(), "tftp"):
            p.wait_log("tftp: pid %d exited with status 0" % pid)
        wait_until(lambda: not p.children(), what="no handler left")

    # -- TCP: a self-accepting handler

    def test_tcp_wait_handler_accepts_itself_and_is_rearmed(self):
        port = free_port()
        p = self.porterd(lambda d: "[acc]\nlisten = 127.0.0.1:%d\nwait = yes\nexec = %s\n"
                         % (port, os.path.join(d, "accept3.py")))
        write_script(p.dir, "accept3.py", ACCEPT3)
        self.addCleanup(kill_handlers, p, "acc", "accept3.py")
        p.start()
        # Three clients at once: all queue on the one listening socket.
        clients = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                   for _ in range(3)]
        for c in clients:
            self.addCleanup(c.close)
        answers = []
        for c in clients:
            data = b""
            while True:
                b = c.recv(1024)
                if not b:
                    break
                data += b
            m = SERVED.match(data)
            self.assertIsNotNone(m, data)
            answers.append((int(m.group(1)), int(m.group(2))))
        pids = {pid for _, pid in answers}
        self.assertEqual(len(pids), 1, answers)
        self.assertEqual(sorted(n for n, _ in answers), [1, 2, 3])
        first = pids.pop()
        log = p.log()
        # porterd did not accept any of them itself and started one handler only.
        self.assertEqual(wait_pids(log, "acc"), [first], log)
        self.assertEqual(foreign_lines(log, "acc"), [])
        # The handler is done after three; the next client (possibly queued while
        # it still ran) is served by a new handler once porterd re-arms the socket.
        data = talk(port, shut=False)
        m = SERVED.match(data)
        self.assertIsNotNone(m, data)
        self.assertEqual(m.group(1), b"1")
        second = int(m.group(2))
        self.assertNotEqual(second, first)
        p.wait_log("acc: pid %d exited with status 0" % first)
        self.assertEqual(wait_pids(p.log(), "acc"), [first, second])
        # Both handlers end up reaped once the second one has served three.
        self.assertEqual(SERVED.match(talk(port, shut=False)).group(1), b"2")
        self.assertEqual(SERVED.match(talk(port, shut=False)).group(1), b"3")
        p.wait_log("acc: pid %d exited with status 0" % second)
        wait_until(lambda: not p.children(), what="handlers reaped")
        self.assertEqual(foreign_lines(p.log(), "acc"), [])

    def test_a_reload_leaves_a_running_handlers_socket_as_it_set_it(self):
        # An event-driven daemon (lighttpd under fds = systemd) makes its socket
        # non-blocking; a reload that changes nothing must not make it block.
        port = free_port()
        p = self.porterd(lambda d: "[nb]\nlisten = 127.0.0.1:%d\nwait = yes\nexec = %s\n"
                         % (port, os.path.join(d, "nonblock.py")))
        write_script(p.dir, "nonblock.py", NONBLOCK)
        self.addCleanup(kill_handlers, p, "nb", "nonblock.py")
        p.start()
        self.assertEqual(talk(port, shut=False), b"nonblock=1\n")
        self.assertTrue(p.reload())
        self.assertEqual(talk(port, shut=False), b"nonblock=1\n")

    def test_tcp_wait_socket_not_watched_while_handler_runs(self):
        # A handler that holds the socket and accepts nothing: connections queue
        # in the backlog; porterd must neither accept them nor start more handlers.
        port = free_port()
        p = self.porterd(lambda d: "[hold]\nlisten = 127.0.0.1:%d\nwait = yes\n"
                         "exec = /bin/sh\nargs = sh -c 'exec sleep 60'\n" % port)
        # Handlers outlive porterd: kill every one it started, by pid, at the end.
        self.addCleanup(kill_handlers, p, "hold", "sleep")
        p.start()
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as c1:
            p.wait_log("hold: wait handler -> pid")
            holder = wait_pids(p.log(), "hold")[0]
            extra = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                     for _ in range(5)]
            for c in extra:
                self.addCleanup(c.close)
            # porterd is not spinning on the readable socket it does not watch.
            t0 = cpu_ticks(p.pid)
            # Ask for a status dump; it is written after porterd handled everything before.
            os.kill(p.pid, signal.SIGUSR1)
            p.wait_log("status: hold ")
            self.assertRegex(p.log(), r"status: hold 127\.0\.0\.1:%d waiting running=1 "
                             r"accepted=1 failed=0" % port)
            self.assertEqual(wait_pids(p.log(), "hold"), [holder])
            self.assertEqual([pid for pid, _ in p.children()], [holder])
            self.assertLess(cpu_ticks(p.pid) - t0, 20)
            # Once the holder is gone, porterd starts a new handler for the queue.
            os.kill(holder, signal.SIGKILL)
            p.wait_log("hold: pid %d killed by signal 9" % holder)
            p.wait_log("hold: wait handler -> pid", count=2)
        self.assertEqual(foreign_lines(p.log(), "hold"), [])

    # -- UDP wait service whose program is gone

    def test_tcp_wait_that_cannot_start_closes_its_client(self):
        port = free_port()
        p = self.porterd(lambda d: "[w]\nlisten = 127.0.0.1:%d\nwait = yes\nexec = %s/vanishing\n"
                         % (port, d))
        script = write_script(p.dir, "vanishing", "#!/bin/sh\nexit 0\n")
        p.start()
        os.unlink(script)
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            # Closed by porterd, not left hanging until a timeout.
            self.assertEqual(s.recv(10), b"")
        p.wait_log("w: exec %s/vanishing: No such file or directory" % p.dir)
        # And it does not go on retrying for a client that is gone.
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: w ")
        m = re.search(r"status: w 127\.0\.0\.1:%d [\w-]+ running=0 accepted=0 failed=(\d+)"
                      % port, p.log())
        self.assertIsNotNone(m, p.log())
        self.assertEqual(int(m.group(1)), 1)

    def test_udp_wait_exec_vanished_does_not_spin(self):
        gone = free_port(socket.SOCK_DGRAM)
        ok = free_port()
        p = self.porterd(lambda d: (
            "[gone]\nlisten = 127.0.0.1:%d\nprotocol = udp\nwait = yes\nexec = %s/vanishing\n"
            "[ok]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
            % (gone, d, ok)))
        script = write_script(p.dir, "vanishing", "#!/bin/sh\nexit 0\n")
        p.start()
        os.unlink(script)
        t0 = cpu_ticks(p.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            for i in range(50):
                s.sendto(b"request %d" % i, ("127.0.0.1", gone))
        failure = "gone: exec %s/vanishing: No such file or directory" % p.dir
        p.wait_log(failure)
        # The loop goes on serving while the failing service backs off.
        self.assertEqual(talk(ok), b"ok\n")
        # Every datagram is dropped in the end (a failed attempt drops all waiting)...
        def drained():
            used = cpu_ticks(p.pid) - t0
            if used >= 50:  # fail fast when it spins
                raise AssertionError("porterd used %d ticks on 50 datagrams" % used)
            return udp_rx_queue(gone) == 0
        wait_until(drained, timeout=max(TIMEOUT, 40), what="the 50 datagrams to be drained",
                   interval=0.1)
        used = cpu_ticks(p.pid) - t0
        self.assertLess(used, 50, "porterd used %d ticks on 50 datagrams" % used)
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: gone ")
        m = re.search(r"status: gone 127\.0\.0\.1:%d [\w-]+ running=0 accepted=0 "
                      r"failed=(\d+)" % gone, p.log())
        self.assertIsNotNone(m, p.log())
        # A burst costs a few failed starts, not one per datagram.
        self.assertGreaterEqual(int(m.group(1)), 1)
        self.assertLessEqual(int(m.group(1)), 10)
        # ...but the failure is logged a handful of times, not 50.
        lines = [l for l in p.log().splitlines() if failure in l]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 3, lines)
        self.assertTrue(lines[0].endswith(failure), lines[0])
        suppressed = 0
        for line in lines[1:]:
            m = re.search(r"\(and (\d+) more like it in the last 10 s\)$", line)
            self.assertIsNotNone(m, line)
            suppressed += int(m.group(1))
        self.assertLessEqual(len(lines) + suppressed, 50)
        self.assertTrue(p.alive())
        self.assertEqual(talk(ok), b"ok\n")
        wait_until(lambda: not p.children(), what="children reaped")
        # porterd still watches the socket: one more datagram is taken (and dropped).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            s.sendto(b"once more", ("127.0.0.1", gone))
        wait_until(lambda: udp_rx_queue(gone) == 0, what="the last datagram taken")
        self.assertTrue(p.alive())

    # -- git daemon --inetd (nowait) with the real git client

    @need_program(GIT)
    def test_git_daemon_inetd_clone(self):
        if not os.path.exists("/usr/lib/git-core/git-daemon"):
            self.skipTest("git daemon is not installed")
        port = free_port()
        p = self.porterd(lambda d: (
            "[git]\nlisten = 127.0.0.1:%d\nexec = %s\n"
            "args = git daemon --inetd --export-all --base-path=%s/base %s/base\n"
            "env = GIT_CONFIG_COUNT=1\nenv = GIT_CONFIG_KEY_0=safe.directory\n"
            "env = GIT_CONFIG_VALUE_0=*\n" % (port, GIT, d, d)))
        work = os.path.join(p.dir, "work")
        base = os.path.join(p.dir, "base")
        os.mkdir(base)
        env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=p.dir, GIT_TERMINAL_PROMPT="0")

        def git(*args, cwd=None):
            r = subprocess.run([GIT, "-c", "user.name=t", "-c", "user.email=t@t",
                                "-c", "init.defaultBranch=main"] + list(args), cwd=cwd,
                               env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=TIMEOUT)
            self.assertEqual(r.returncode, 0, r)
            return r.stdout

        content = b"porterd serves git\n" + os.urandom(32).hex().encode() + b"\n"
        git("init", "-q", work)
        with open(os.path.join(work, "README"), "wb") as f:
            f.write(content)
        git("add", "README", cwd=work)
        git("commit", "-q", "-m", "first", cwd=work)
        head = git("rev-parse", "HEAD", cwd=work).strip()
        git("clone", "-q", "--bare", work, os.path.join(base, "demo.git"))
        p.start()
        clone = os.path.join(p.dir, "clone")
        git("clone", "-q", "git://127.0.0.1:%d/demo.git" % port, clone)
        with open(os.path.join(clone, "README"), "rb") as f:
            self.assertEqual(f.read(), content)
        self.assertEqual(git("rev-parse", "HEAD", cwd=clone).strip(), head)
        # A repository that is not there: the clone fails, porterd serves on.
        r = subprocess.run([GIT, "clone", "-q", "git://127.0.0.1:%d/nope.git" % port,
                            os.path.join(p.dir, "nope")], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        git("ls-remote", "git://127.0.0.1:%d/demo.git" % port)
        wait_until(lambda: not p.children(), what="git handlers reaped")
        self.assertTrue(p.alive())


if __name__ == "__main__":
    main()
