"""End to end: porterd -t and -T on real directories: exit codes, every error as
FILE:LINE: message, the effective table, skipped files, and no socket opened."""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from porterd_test import PORTERD, SRCDIR, TIMEOUT, main


def run(*args):
    return subprocess.run([PORTERD] + list(args), capture_output=True, timeout=TIMEOUT,
                          text=True)


class ConfigCheckTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="porterd-check.")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        with open(os.path.join(self.dir, name), "w") as f:
            f.write(text)

    def test_shipped_services_are_valid(self):
        r = run("-t", "-d", os.path.join(SRCDIR, "services.d"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn("services.d/README: skipped (not named *.conf)", r.stderr)

    def golden(self, case):
        d = os.path.join(SRCDIR, "tests", "data", case)
        r = run("-t", "-d", d)
        self.assertEqual(r.returncode, 1)
        with open(os.path.join(d, "expected")) as f:
            want = f.read().splitlines()
        lines = r.stderr.splitlines()
        self.assertEqual(lines[-1], "porterd: %s: %d errors" % (d, len(want)))
        got = [l.replace(d + "/", "") for l in lines if not l.endswith(
            "skipped (not named *.conf)")][:-1]
        self.assertEqual(got, want)

    def test_every_error_with_file_and_line(self):
        for case in ("errors-keys", "errors-services", "errors-lines"):
            with self.subTest(case=case):
                self.golden(case)

    def test_T_prints_the_effective_table(self):
        self.write("00-defaults.conf", "[defaults]\nmax_children = 7\nenv = A=1\n")
        self.write("10-x.conf", "[x]\nlisten = 127.0.0.1:7777\nexec = /bin/echo\n"
                   "args = echo 'two words'\n")
        r = run("-T", "-d", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        table = [l for l in r.stdout.splitlines() if l and not l.startswith(";")]
        self.assertEqual(table, [
            "[x]", "listen = 127.0.0.1:7777", "protocol = tcp", "wait = no",
            "enabled = yes", "exec = /bin/echo", 'args = echo "two words"',
            "env = PATH=/usr/local/bin:/usr/bin:/bin", "env = A=1", "backlog = 4096",
            "max_children = 7", "max_per_source = 0", "source_prefix4 = 32",
            "source_prefix6 = 64", "timeout = 0", "no_new_privs = yes",
            "stderr = socket", "contain = yes", "shutdown = leave"])
        # and it reads back to the same table
        again = tempfile.mkdtemp(prefix="porterd-check.")
        self.addCleanup(shutil.rmtree, again, True)
        with open(os.path.join(again, "all.conf"), "w") as f:
            f.write(r.stdout)
        r2 = run("-T", "-d", again)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual([l for l in r2.stdout.splitlines() if not l.startswith(";")],
                         [l for l in r.stdout.splitlines() if not l.startswith(";")])

    def test_keys_for_handlers_in_defaults_pass_builtins_by(self):
        # [defaults] meant for the handlers: the builtins ignore them (written
        # in a builtin's own section, each is an error).
        self.write("00-defaults.conf", "[defaults]\nargs = x y\nchroot = /tmp\nstderr = log\n")
        self.write("10-x.conf", "[x]\nlisten = 127.0.0.1:7777\nexec = /bin/echo\nchroot = /\n"
                   "[d]\nlisten = 127.0.0.1:7778\nbuiltin = daytime\n")
        r = run("-T", "-d", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        d = r.stdout[r.stdout.index("[d]"):]
        self.assertNotIn("chroot", d)
        self.assertNotIn("args", d)
        self.assertIn("args = x y", r.stdout[:r.stdout.index("[d]")])
        self.write("20-e.conf", "[e]\nlisten = 127.0.0.1:7779\nbuiltin = echo\nchroot = /tmp\n"
                   "args = a\n")
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("20-e.conf:4: chroot applies to exec, not to builtin", r.stderr)
        self.assertIn("20-e.conf:5: args applies to exec, not to builtin", r.stderr)

    def test_an_inherited_key_that_does_not_fit_names_the_service(self):
        self.write("00-defaults.conf", "[defaults]\nmemory_max = 64M\n")
        self.write("10-x.conf", "[x]\nlisten = 127.0.0.1:7777\nexec = /bin/true\n"
                   "contain = no\n[y]\nlisten = 127.0.0.1:7778\nexec = /bin/true\n")
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("00-defaults.conf:2: memory_max needs the handler in a cgroup of its "
                      "own: it does not apply with contain = no (inherited by [x])", r.stderr)
        self.assertNotIn("[y]", r.stderr)

    def test_t_opens_no_socket(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            self.write("a.conf", "[a]\nlisten = 127.0.0.1:%d\nexec = /bin/true\n" % port)
            r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_skipped_files_are_listed(self):
        self.write("a.conf", "[a]\nlisten = 127.0.0.1:7001\nbuiltin = echo\n")
        self.write("b.conf.disabled", "garbage\n")
        self.write(".c.conf", "garbage\n")
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("b.conf.disabled: skipped (not named *.conf)", r.stderr)
        self.assertIn(".c.conf: skipped (hidden file)", r.stderr)

    def test_a_conf_that_cannot_be_read_is_an_error_with_its_reason(self):
        self.write("a.conf", "[a]\nlisten = 127.0.0.1:7001\nbuiltin = echo\n")
        os.symlink(os.path.join(self.dir, "gone"), os.path.join(self.dir, "b.conf"))
        os.symlink("c.conf", os.path.join(self.dir, "c.conf"))
        os.mkdir(os.path.join(self.dir, "d.conf"))
        os.symlink("/proc/self/mem", os.path.join(self.dir, "e.conf"))
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1, r.stderr)
        lines = r.stderr.splitlines()
        self.assertIn("%s/b.conf: No such file or directory" % self.dir, lines)
        self.assertIn("%s/c.conf: Too many levels of symbolic links" % self.dir, lines)
        self.assertIn("%s/d.conf: not a regular file" % self.dir, lines)
        self.assertIn("%s/e.conf:1: read error: Input/output error" % self.dir, lines)
        self.assertEqual(lines[-1], "porterd: %s: 4 errors" % self.dir)

    def test_an_absurd_file_is_refused_before_it_is_read(self):
        self.write("a.conf", "[a]\nlisten = 127.0.0.1:7001\nbuiltin = echo\n")
        with open(os.path.join(self.dir, "b.conf"), "w") as f:
            f.truncate(200 << 20)     # sparse: 200 MiB that cost no disk
        os.mkfifo(os.path.join(self.dir, "c.conf"))   # must not block the reader
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.splitlines(), [
            "%s/b.conf: 209715200 bytes: a configuration file is at most 16 MiB" % self.dir,
            "%s/c.conf: not a regular file" % self.dir,
            "porterd: %s: 2 errors" % self.dir])

    def test_a_garbage_file_stops_being_read(self):
        self.write("a.conf", "garbage\n" * 100000)
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 52, lines[-3:])
        self.assertEqual(lines[-2], "%s/a.conf:51: too many errors; the rest of the file is "
                         "not read" % self.dir)

    def test_checking_stops_after_200_errors(self):
        self.write("a.conf", "".join("[s%d]\nbogus = 1\n" % i for i in range(5000)))
        r = run("-t", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        lines = r.stderr.splitlines()
        # three errors a section: 67 sections make 201
        self.assertEqual(lines[-2], "the other 4933 sections were not checked")
        self.assertEqual(len(lines), 203)

    def test_missing_directory(self):
        r = run("-t", "-d", os.path.join(self.dir, "nope"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope: No such file or directory", r.stderr)

    def test_usage_and_version(self):
        self.assertEqual(run("-x").returncode, 100)
        self.assertEqual(run("-d").returncode, 100)
        self.assertEqual(run("extra").returncode, 100)
        r = run("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^porterd \d+\.\d+")

    def test_start_refuses_a_bad_config(self):
        self.write("a.conf", "[a]\nlisten = 127.0.0.1:7001\n")
        r = run("-f", "-d", self.dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("a.conf:1: [a] has neither exec nor builtin", r.stderr)


if __name__ == "__main__":
    main()
