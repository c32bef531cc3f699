"""End to end: porterd serves handlers on loopback with the right fds,
environment, process state and logs; it starts, daemonizes and stops cleanly."""

import ctypes
import os
import platform
import signal
import socket
import stat
import subprocess
import unittest

from porterd_test import (Porterd, TIMEOUT, free_port, main, parse_env, talk, wait_until,
                          write_script)

# Reports what a handler sees of its own process. Checking fds with fcntl, not
# by listing /proc/self/fd, which would open one more.
REPORT = r'''#!/usr/bin/python3
import fcntl, os, stat, sys
fds = []
for fd in range(0, 1024):
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
        fds.append(fd)
    except OSError:
        pass
ino = [os.fstat(fd).st_ino for fd in (0, 1, 2)]
out = ["FDS=" + ",".join(map(str, fds)),
       "SOCKETS=" + str(all(stat.S_ISSOCK(os.fstat(fd).st_mode) for fd in (0, 1, 2))),
       "SAME=" + str(len(set(ino)) == 1),
       "LEADER=" + str(os.getsid(0) == os.getpid()),
       "CWD=" + os.getcwd(),
       "UID=%d" % os.getuid(), "GID=%d" % os.getgid()]
sys.stdout.write("\n".join(out) + "\n--\n")
for k, v in sorted(os.environ.items()):
    sys.stdout.write("%s=%s\n" % (k, v))
'''


def split_report(data):
    head, _, env = data.decode().partition("--\n")
    return parse_env(head), parse_env(env)


class ServeTest(unittest.TestCase):

    def porterd(self, body, **kw):
        p = Porterd({}, **kw)
        self.addCleanup(p.cleanup)
        report = write_script(p.dir, "report.py", REPORT)
        p.set_services({"10-test.conf": body.replace("@REPORT@", report)
                        .replace("@DIR@", p.dir)})
        return p

    def test_shell_handler_answers_nc(self):
        port = free_port()
        p = self.porterd("[hello]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                         "args = sh -c 'echo hello; read x; echo \"got $x\"'\n" % port)
        p.start()
        out = subprocess.run(["nc", "-N", "127.0.0.1", str(port)], input=b"world\n",
                             capture_output=True, timeout=TIMEOUT)
        self.assertEqual(out.stdout, b"hello\ngot world\n")

    def check_env(self, port, host, family, listen_ip, want_remote):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(TIMEOUT)
            s.connect((host, port))
            local_port = s.getsockname()[1]
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        _, env = split_report(data)
        want = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PORTERD_SERVICE": "report",
            "GREETING": "hello world",
            "PROTO": "TCP",
            "TCPREMOTEIP": want_remote,
            "TCPREMOTEPORT": str(local_port),
            "TCPLOCALIP": listen_ip,
            "TCPLOCALPORT": str(port),
        }
        # Exactly these: nothing of porterd's own environment leaks through.
        env.pop("LC_CTYPE", None)  # python may add it when it coerces the locale
        self.assertEqual(env, want)

    def test_environment_ipv4(self):
        port = free_port()
        p = self.porterd("[report]\nlisten = 127.0.0.1:%d\nexec = @REPORT@\n"
                         "env = GREETING=hello world\n" % port)
        p.start()
        self.check_env(port, "127.0.0.1", socket.AF_INET, "127.0.0.1", "127.0.0.1")

    def test_environment_ipv6(self):
        port = free_port(family=socket.AF_INET6, host="::1")
        p = self.porterd("[report]\nlisten = [::1]:%d\nexec = @REPORT@\n"
                         "env = GREETING=hello world\n" % port)
        p.start()
        self.check_env(port, "::1", socket.AF_INET6, "::1", "::1")

    def test_passenv_passes_named_variables_of_porterds_environment(self):
        port = free_port()
        p = self.porterd("[env]\nlisten = 127.0.0.1:%d\nexec = /usr/bin/env\n"
                         "env = A=1\npassenv = PORTERD_T_ONE, PORTERD_T_UNSET\n"
                         "passenv = PORTERD_T_TWO\n" % port)
        os.environ.update(PORTERD_T_ONE="one", PORTERD_T_TWO="two words",
                          PORTERD_T_OTHER="not named")
        try:
            p.start()
        finally:
            for k in ("PORTERD_T_ONE", "PORTERD_T_TWO", "PORTERD_T_OTHER"):
                del os.environ[k]
        env = parse_env(talk(port).decode())
        self.assertEqual((env.get("PORTERD_T_ONE"), env.get("PORTERD_T_TWO"), env.get("A")),
                         ("one", "two words", "1"))
        self.assertNotIn("PORTERD_T_UNSET", env)
        self.assertNotIn("PORTERD_T_OTHER", env)

    def test_dual_stack_reports_ipv4_as_dotted_quad(self):
        port = free_port(family=socket.AF_INET6, host="::")
        p = self.porterd("[report]\nlisten = *:%d\nexec = @REPORT@\n"
                         "env = GREETING=hello world\n" % port)
        p.start()
        self.check_env(port, "127.0.0.1", socket.AF_INET, "127.0.0.1", "127.0.0.1")
        self.check_env(port, "::1", socket.AF_INET6, "::1", "::1")

    def test_unix_socket_ipc_environment(self):
        p = self.porterd("[report]\nlisten = unix:@DIR@/report.sock\nexec = @REPORT@\n"
                         "socket_mode = 0606\n")
        p.start()
        path = os.path.join(p.dir, "report.sock")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o606)
        out = subprocess.run(["socat", "-t5", "-", "UNIX-CONNECT:" + path],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
        _, env = split_report(out.stdout)
        self.assertEqual(env["PROTO"], "IPC")
        self.assertEqual(env["IPCLOCALPATH"], path)
        self.assertEqual(env["IPCREMOTEEUID"], str(os.geteuid()))
        self.assertEqual(env["IPCREMOTEEGID"], str(os.getegid()))
        self.assertNotIn("TCPREMOTEIP", env)
        self.assertEqual(p.stop(), 0)
        self.assertFalse(os.path.exists(path), "socket file left behind")

    def signal_state(self, port):
        """SigBlk/SigIgn/SigCgt of a handler exec'd straight from porterd.

        Read by cat itself: python would ignore SIGPIPE and SIGXFSZ on its own."""
        status = parse_env(talk(port).decode().replace(":\t", "="))
        return (int(status["SigBlk"], 16), int(status["SigIgn"], 16),
                int(status["SigCgt"], 16))

    def test_handler_process_state(self):
        port, sig = free_port(), free_port()
        p = self.porterd("[report]\nlisten = 127.0.0.1:%d\nexec = @REPORT@\n"
                         "[sig]\nlisten = 127.0.0.1:%d\nexec = /bin/cat\n"
                         "args = cat /proc/self/status\n" % (port, sig))
        p.start()
        head, _ = split_report(talk(port))
        self.assertEqual(head["FDS"], "0,1,2")
        self.assertEqual(head["SOCKETS"], "True")
        self.assertEqual(head["SAME"], "True")
        self.assertEqual(head["LEADER"], "True")
        self.assertEqual(head["CWD"], "/")
        # porterd ignores SIGPIPE and catches five signals; none of it may show.
        self.assertEqual(self.signal_state(sig), (0, 0, 0))

    def test_only_0_1_2_with_many_listeners_and_every_stderr(self):
        # Handlers start from porterd's own fd table, which they leave at once
        # keeping only what sits below its staging slots: the 300 listeners
        # above must not reach them, whatever fd 2 is, and porterd must keep
        # no copy of a connection or a stderr pipe.
        ports = {m: free_port() for m in ("socket", "log", "null")}
        body = "".join("[r-%s]\nlisten = 127.0.0.1:%d\nexec = @REPORT@\nstderr = %s\n"
                       % (m, port, m) for m, port in ports.items())
        body += "".join("[idle%03d]\nlisten = unix:@DIR@/s%03d.sock\nexec = /bin/true\n"
                        % (i, i) for i in range(300))
        p = self.porterd(body, verbose=False)
        p.start()
        for m, port in ports.items():
            head, env = split_report(talk(port))
            self.assertEqual(head["FDS"], "0,1,2", m)
            self.assertEqual(env["PORTERD_SERVICE"], "r-" + m)
        wait_until(lambda: not p.children(), what="handlers reaped")
        fds = p.settled_fds()
        for _ in range(20):
            for port in ports.values():
                self.assertEqual(talk(port).split(b"\n")[0], b"FDS=0,1,2")
        wait_until(lambda: not p.children(), what="handlers reaped")
        self.assertEqual(p.settled_fds(), fds)

    def test_inherited_signal_state_and_fds_do_not_reach_handlers(self):
        port, sig = free_port(), free_port()
        p = self.porterd("[report]\nlisten = 127.0.0.1:%d\nexec = @REPORT@\n"
                         "[sig]\nlisten = 127.0.0.1:%d\nexec = /bin/cat\n"
                         "args = cat /proc/self/status\n" % (port, sig))
        stray_r, stray_w = os.pipe()  # not close-on-exec: porterd inherits it

        def child_setup():
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
            signal.signal(signal.SIGQUIT, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
            # The two signals glibc keeps for itself, ignored the way a
            # careless parent can leave them: only the system call reaches them.
            if platform.machine() == "x86_64":
                libc = ctypes.CDLL(None, use_errno=True)
                ignore = (ctypes.c_ulong * 4)(1, 0, 0, 0)  # handler SIG_IGN
                for sig in (32, 33):
                    libc.syscall(13, sig, ignore, None, 8)  # 13: rt_sigaction
        p.logfile = open(p.logpath, "ab")
        p.proc = subprocess.Popen(p.command(), stdin=subprocess.DEVNULL, stdout=p.logfile,
                                  stderr=p.logfile, preexec_fn=child_setup,
                                  pass_fds=(stray_r, stray_w))
        p.pid = p.proc.pid
        os.close(stray_r)
        os.close(stray_w)
        p.wait_log("started with")
        head, _ = split_report(talk(port))
        self.assertEqual(head["FDS"], "0,1,2")
        self.assertEqual(self.signal_state(sig), (0, 0, 0))

    def test_exec_failure_is_logged_and_serving_goes_on(self):
        gone, ok = free_port(), free_port()
        p = self.porterd("[gone]\nlisten = 127.0.0.1:%d\nexec = @DIR@/vanishing\n"
                         "[ok]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo ok\n"
                         % (gone, ok))
        write_script(p.dir, "vanishing", "#!/bin/sh\necho never\n")
        p.start()
        os.unlink(os.path.join(p.dir, "vanishing"))
        self.assertEqual(talk(gone), b"")
        p.wait_log("gone: exec %s/vanishing: No such file or directory" % p.dir)
        self.assertEqual(talk(ok), b"ok\n")
        wait_until(lambda: not p.children(), what="children reaped")
        self.assertTrue(p.alive())

    def test_killed_handler_is_logged(self):
        port = free_port()
        p = self.porterd("[victim]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                         "args = sh -c 'kill -SEGV $$'\n" % port)
        p.start()
        talk(port)
        p.wait_log("victim: pid ")
        p.wait_log("killed by signal 11 (Segmentation fault)")

    def test_verbose_logs_connections_and_exits(self):
        port = free_port()
        p = self.porterd("[v]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                         "args = sh -c 'exit 3'\n" % port)
        p.start()
        with socket.socket() as s:
            s.settimeout(TIMEOUT)
            s.connect(("127.0.0.1", port))
            me = s.getsockname()[1]
            s.recv(1)
        p.wait_log("v: 127.0.0.1:%d -> pid " % me)
        p.wait_log("exited with status 3 after")

    def test_quiet_without_v(self):
        port = free_port()
        p = self.porterd("[q]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n" % port,
                         verbose=False)
        p.start()
        for _ in range(5):
            talk(port)
        wait_until(lambda: not p.children(), what="children reaped")
        self.assertNotIn(" -> pid ", p.log())
        self.assertNotIn("exited with status", p.log())

    def test_pidfile_and_clean_stop(self):
        port = free_port()
        p = self.porterd("[s]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n" % port)
        p.start()
        with open(p.pidfile) as f:
            self.assertEqual(int(f.read()), p.pid)
        self.assertEqual(p.stop(), 0)
        self.assertFalse(os.path.exists(p.pidfile))
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)

    def test_daemonizes_without_f(self):
        port = free_port()
        p = self.porterd("[d]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo up\n"
                         % port, foreground=False)
        p.start()
        self.assertEqual(p.proc.returncode, 0)
        self.assertNotEqual(p.pid, p.proc.pid)
        self.assertEqual(talk(port), b"up\n")
        st = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
        self.assertEqual(int(st[3]), p.pid, "daemon should lead its own session")
        p.stop()
        wait_until(lambda: not os.path.exists(p.pidfile), what="pid file removed")

    def test_the_start_returns_once_the_pid_file_is_written(self):
        # An init script (start-stop-daemon --pidfile) reads it right after.
        port = free_port()
        p = self.porterd("[d]\nlisten = 127.0.0.1:%d\nexec = /bin/echo\nargs = echo up\n"
                         % port, foreground=False)
        r = subprocess.run(p.command(), stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(p.pidfile) as f:
            p.pid = int(f.read())
        self.assertEqual(talk(port), b"up\n")
        p.stop()
        # A pid file that cannot be written: the start fails, and says so.
        cmd = [x if x != p.pidfile else os.path.join(p.dir, "no", "such", "pid")
               for x in p.command()]
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT)
        self.assertEqual(r.returncode, 111)

    def test_address_in_use_at_start(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            p = self.porterd("[taken]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n" % port)
            r = subprocess.run(p.command(), capture_output=True, timeout=TIMEOUT)
        self.assertEqual(r.returncode, 111)
        self.assertIn(b"taken: listen 127.0.0.1:%d: bind: Address already in use" % port,
                      r.stderr)

    def test_running_handlers_outlive_stop(self):
        port = free_port()
        p = self.porterd("[slow]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                         "args = sh -c 'echo started; exec sleep 60'\n" % port)
        p.start()
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(s.close)
        self.assertEqual(s.recv(100), b"started\n")
        kids = wait_until(p.children, what="the handler")
        self.assertEqual(p.stop(), 0)
        handler = kids[0][0]
        self.assertTrue(os.path.exists("/proc/%d" % handler), "handler was killed")
        os.kill(handler, signal.SIGKILL)


if __name__ == "__main__":
    main()
