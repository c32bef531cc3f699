"""Shared helpers of the end-to-end tests: start the real porterd on loopback
with a services.d made for the test, wait for it by readiness checks (never by
sleeping), and stop it by its PID.

Every wait here is bounded in time; every loop in a test should be too."""

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

PORTERD = os.environ.get("PORTERD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "src", "porterd")
SRCDIR = os.environ.get("PORTERD_SRCDIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")

# Generous upper bounds, for a loaded 2-core CI machine or valgrind.
TIMEOUT = float(os.environ.get("PORTERD_TEST_TIMEOUT", "20"))
# PORTERD_VALGRIND=1: run every daemon under memcheck; any report fails the test.
VALGRIND = os.environ.get("PORTERD_VALGRIND", "") not in ("", "0")
# What porterd keeps open on a connection's cgroup between connections (cgroup.c).
WARM_CGROUP = re.compile(r"/handlers/[^/]+/c\d+(/cgroup\.(events|procs))?$")


_given_ports = set()


def free_port(kind=socket.SOCK_STREAM, family=socket.AF_INET, host="127.0.0.1"):
    """A port nothing is bound to right now (the kernel picks it), and never one
    this process handed out before: the kernel may offer the same port twice."""
    for _ in range(100):
        with socket.socket(family, kind) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _given_ports:
            _given_ports.add(port)
            return port
    raise AssertionError("no fresh port after 100 tries")


def wait_until(predicate, timeout=TIMEOUT, what="condition", interval=0.01):
    """Poll predicate until true, at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def write_script(directory, name, text):
    """An executable handler in the test's directory."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def talk(port, data=b"", host="127.0.0.1", family=socket.AF_INET, timeout=TIMEOUT,
         shut=True, source=None):
    """Connect, send data, half-close, read to EOF; return the bytes."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if source is not None:
            s.bind(source)
        s.connect((host, port))
        if data:
            s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def parse_env(text):
    env = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def children_of(pid):
    """(pid, state) of every live child process of pid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return out


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Porterd:
    """One porterd process on a services.d of the test's own."""

    def __init__(self, services, verbose=True, extra_args=(), foreground=True, env=None):
        self.dir = tempfile.mkdtemp(prefix="porterd-e2e.")
        self.confdir = os.path.join(self.dir, "services.d")
        os.mkdir(self.confdir)
        os.chmod(self.dir, 0o755)
        self.pidfile = os.path.join(self.dir, "porterd.pid")
        self.logpath = os.path.join(self.dir, "porterd.log")
        self.verbose = verbose
        self.extra_args = list(extra_args)
        self.foreground = foreground
        self.env = dict(env or {})     # added to the environment at start
        self.proc = None
        self.pid = None
        self.set_services(services)

    # -- configuration

    def set_services(self, services):
        """services: {file name: text}; replaces the whole directory."""
        for name in os.listdir(self.confdir):
            os.unlink(os.path.join(self.confdir, name))
        for name, text in services.items():
            with open(os.path.join(self.confdir, name), "w") as f:
                f.write(text)

    # -- life cycle

    def command(self):
        cmd = [PORTERD, "-d", self.confdir, "-p", self.pidfile]
        if VALGRIND:
            cmd = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
                   "--track-fds=no", "--child-silent-after-fork=yes",
                   "--log-file=%s/valgrind.%%p" % self.dir] + cmd
        if self.foreground:
            cmd.append("-f")
        if self.verbose:
            cmd.append("-v")
        return cmd + self.extra_args

    def start(self):
        self.logfile = open(self.logpath, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self.logfile, stderr=self.logfile,
                                     env=dict(os.environ, **self.env))
        if self.foreground:
            self.pid = self.proc.pid
        else:
            # The parent exits once the sockets are open and the child is on its own.
            self.proc.wait(timeout=TIMEOUT)
            wait_until(lambda: os.path.exists(self.pidfile) and
                       open(self.pidfile).read().strip(), what="pid file")
            self.pid = int(open(self.pidfile).read())
            return self  # it logs to syslog; the pid file comes after the sockets
        self.wait_log("started with", what="porterd to start")
        return self

    def start_as(self, uid, setpriv=(), then=()):
        """Start, in the foreground, as uid (setpriv, with setpriv's options and
        then the command prefix `then`, such as prlimit): a copy of porterd in
        the test's directory, which that user can reach, as the build tree may
        not be; the services.d files readable."""
        os.chmod(self.confdir, 0o755)
        for name in os.listdir(self.confdir):
            os.chmod(os.path.join(self.confdir, name), 0o644)
        os.chown(self.dir, uid, uid)
        binary = os.path.join(self.dir, "porterd")
        shutil.copy(PORTERD, binary)
        os.chmod(binary, 0o755)
        self.logfile = open(self.logpath, "ab")
        cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + \
            list(setpriv) + list(then) + [binary if x == PORTERD else x for x in self.command()]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.logfile,
                                     stderr=self.logfile)
        self.pid = self.proc.pid
        self.wait_log("started with", what="porterd to start")
        return self

    def alive(self):
        if self.pid is None:
            return False
        if self.proc is not None and self.proc.pid == self.pid:
            return self.proc.poll() is None
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self):
        """SIGTERM by PID and wait for the exit; returns the exit status."""
        status = None
        if self.pid is not None and self.alive():
            os.kill(self.pid, signal.SIGTERM)
            if self.proc is not None and self.proc.pid == self.pid:
                try:
                    status = self.proc.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait(timeout=TIMEOUT)
                    raise AssertionError("porterd ignored SIGTERM")
            else:
                wait_until(lambda: not self.alive(), what="porterd to exit")
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self.pid = None
        return status

    def cleanup(self):
        self.stop()
        if getattr(self, "logfile", None):
            self.logfile.close()
        reports = []
        log = self.log() if os.path.exists(self.logpath) else ""
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                reports.append(log)
                break
        for name in os.listdir(self.dir):
            if name.startswith("valgrind."):
                with open(os.path.join(self.dir, name)) as f:
                    text = f.read()
                if text.strip():
                    reports.append(text)
        shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer or valgrind reports:\n" + "\n".join(reports))

    # -- observation

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, text, count=1, what=None):
        """Wait until `text` appears `count` times in the log."""
        def seen():
            if not self.alive():
                raise AssertionError("porterd died; log:\n" + self.log())
            return self.log().count(text) >= count
        wait_until(seen, what=what or repr(text))

    def reload(self):
        """SIGHUP, then wait for the outcome; returns True when it succeeded."""
        log = self.log()
        ok, failed = log.count("reloaded "), log.count("reload failed")
        os.kill(self.pid, signal.SIGHUP)
        wait_until(lambda: self.log().count("reloaded ") > ok or
                   self.log().count("reload failed") > failed, what="reload")
        return self.log().count("reloaded ") > ok

    def fds(self):
        return sorted(int(x) for x in os.listdir("/proc/%d/fd" % self.pid))

    def warm_fds(self):
        """The fds porterd keeps on the cgroups of its last connections (a second)."""
        warm = []
        for x in os.listdir("/proc/%d/fd" % self.pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (self.pid, x))
            except FileNotFoundError:
                continue
            if WARM_CGROUP.search(target):
                warm.append(int(x))
        return warm

    def settled_fds(self):
        """porterd's fds once it has closed those of its idle connections' cgroups."""
        wait_until(lambda: not self.warm_fds(), what="the warm cgroups' fds closed")
        return self.fds()

    def children(self):
        return children_of(self.pid)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None and self.pid is not None:
            sys.stderr.write("porterd log:\n" + self.log())
        self.cleanup()


def need_root(test):
    return unittest.skipUnless(os.geteuid() == 0, "needs root")(test)


def need_program(path):
    return unittest.skipUnless(shutil.which(path) or os.access(path, os.X_OK),
                               "%s is not installed" % path)


def main():
    """Run the module's tests; exit 0 pass, 1 fail, 77 (automake skip) if all skipped."""
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun > 0 and len(r.skipped) == r.testsRun:
        sys.exit(77)
    sys.exit(0)
