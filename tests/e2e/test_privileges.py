"""End to end, as root: `user` / `group` really change the handler's uid, gid
and supplementary groups (initgroups, setgid, setuid), the change cannot be
undone by the handler, and socket_user / socket_group / socket_mode set the
owner and mode of a unix socket file."""

import grp
import os
import pwd
import shutil
import stat
import subprocess
import unittest

from porterd_test import (Porterd, TIMEOUT, free_port, main, need_root, parse_env, talk,
                          write_script)

# What the handler is: ids from id(1) and every id the kernel holds for it
# (real, effective, saved, fs), the groups and the capabilities.
IDS = ("exec = /bin/sh\nargs = sh -c 'echo UID=$(id -u); echo GID=$(id -g); "
       "echo GROUPS=$(id -G); grep -E \"^(Uid|Gid|Groups|CapPrm|CapEff):\" "
       "/proc/self/status | tr -s \"\\t\" \" \" | sed \"s/: */=/\"'\n")


# A handler as nobody trying to write a root file and to get root back.
REGAIN = """#!/bin/sh
echo x > @TARGET@
echo WRITE=$?
exec /usr/bin/python3 -c '
import os
for f in (os.setuid, os.seteuid, os.setgid, os.setegid):
    try:
        f(0)
        print(f.__name__ + "=ok")
    except PermissionError:
        print(f.__name__ + "=denied")
try:
    os.setgroups([0])
    print("setgroups=ok")
except PermissionError:
    print("setgroups=denied")
print("UID=%d" % os.getuid())
'
"""


def other_group(not_gid):
    """An existing group that is not `not_gid` (daemon, else nogroup, else any)."""
    for name in ("daemon", "nogroup", "bin", "sys", "adm"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid != not_gid and g.gr_gid != 0:
            return g
    for g in grp.getgrall():
        if g.gr_gid not in (not_gid, 0):
            return g
    raise unittest.SkipTest("no group to test with")


@need_root
class PrivilegesTest(unittest.TestCase):

    def setUp(self):
        try:
            self.nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")

    def porterd(self, body):
        p = Porterd({})
        self.addCleanup(p.cleanup)
        p.set_services({"10-priv.conf": body.replace("@DIR@", p.dir)})
        p.start()
        return p

    def ids(self, extra):
        port = free_port()
        self.porterd("[ids]\nlisten = 127.0.0.1:%d\n%s%s" % (port, IDS, extra))
        out = parse_env(talk(port).decode())
        return out

    def check(self, out, uid, gid, groups):
        self.assertEqual(out["UID"], str(uid), out)
        self.assertEqual(out["GID"], str(gid), out)
        # id -G: the effective gid first, then the supplementary groups.
        self.assertEqual(set(map(int, out["GROUPS"].split())), set(groups) | {gid}, out)
        # Real, effective, saved and fs ids are all switched: nothing to go back to.
        self.assertEqual(out["Uid"].split(), [str(uid)] * 4, out)
        self.assertEqual(out["Gid"].split(), [str(gid)] * 4, out)
        self.assertEqual(sorted(map(int, out["Groups"].split())), sorted(groups), out)

    def test_user_nobody(self):
        nb = self.nobody
        out = self.ids("user = nobody\n")
        self.check(out, nb.pw_uid, nb.pw_gid, os.getgrouplist("nobody", nb.pw_gid))
        self.assertEqual(int(out["CapEff"], 16), 0, out)
        self.assertEqual(int(out["CapPrm"], 16), 0, out)

    def test_user_by_number(self):
        nb = self.nobody
        out = self.ids("user = %d\n" % nb.pw_uid)
        self.check(out, nb.pw_uid, nb.pw_gid, os.getgrouplist("nobody", nb.pw_gid))

    def test_user_nobody_with_other_group(self):
        nb = self.nobody
        g = other_group(nb.pw_gid)
        out = self.ids("user = nobody\ngroup = %s\n" % g.gr_name)
        # initgroups(nobody, group): that group plus nobody's memberships.
        self.check(out, nb.pw_uid, g.gr_gid, os.getgrouplist("nobody", g.gr_gid))

    def test_group_alone_keeps_root(self):
        g = other_group(0)
        out = self.ids("group = %s\n" % g.gr_name)
        self.check(out, 0, g.gr_gid, [g.gr_gid])
        # Still root, so still privileged; only the group changed.
        self.assertNotEqual(int(out["CapEff"], 16), 0, out)

    def test_without_user_or_group_handler_is_root(self):
        out = self.ids("")
        self.assertEqual(out["UID"], "0", out)
        self.assertEqual(out["Uid"].split(), ["0"] * 4, out)
        self.assertEqual(out["Gid"].split(), [str(os.getgid())] * 4, out)

    @unittest.skipUnless(shutil.which("setpriv"), "needs setpriv")
    def test_ambient_capabilities_are_not_the_handlers(self):
        # porterd under systemd's User= with AmbientCapabilities= (say, to bind
        # a low port): its handlers must not inherit them.
        port = free_port()
        p = Porterd({"10-caps.conf": "[caps]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                     "args = sh -c 'grep -E \"^Cap(Amb|Eff|Prm):\" "
                                     "/proc/self/status'\n" % port})
        self.addCleanup(p.cleanup)
        p.start_as(64125, setpriv=["--inh-caps=+net_bind_service",
                                   "--ambient-caps=+net_bind_service"])
        with open("/proc/%d/status" % p.pid) as f:
            mine = [l for l in f if l.startswith("CapAmb:")][0].split()[1]
        self.assertNotEqual(int(mine, 16), 0, "porterd itself has the capability")
        out = parse_env(talk(port).decode().replace(":\t", "="))
        self.assertEqual(int(out["CapAmb"], 16), 0, out)
        self.assertEqual(int(out["CapEff"], 16), 0, out)
        self.assertEqual(int(out["CapPrm"], 16), 0, out)

    def test_unix_socket_owner_group_mode(self):
        g = other_group(self.nobody.pw_gid)
        p = Porterd({})
        self.addCleanup(p.cleanup)
        path = os.path.join(p.dir, "owned.sock")
        plain = os.path.join(p.dir, "plain.sock")
        p.set_services({"10-sock.conf": (
            "[owned]\nlisten = unix:%s\nexec = /bin/echo\nargs = echo owned\n"
            "socket_user = nobody\nsocket_group = %s\nsocket_mode = 0660\n"
            "[plain]\nlisten = unix:%s\nexec = /bin/echo\nargs = echo plain\n"
            "socket_group = %s\nsocket_mode = 0604\n" % (path, g.gr_name, plain, g.gr_name))})
        p.start()
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(st.st_uid, self.nobody.pw_uid)
        self.assertEqual(st.st_gid, g.gr_gid)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        # socket_group alone: the owner stays porterd's (root).
        st = os.stat(plain)
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (0, g.gr_gid, 0o604))
        for sock, want in ((path, b"owned\n"), (plain, b"plain\n")):
            r = subprocess.run(["socat", "-t5", "-", "UNIX-CONNECT:" + sock],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=TIMEOUT)
            self.assertEqual(r.stdout, want)

    def test_privileges_cannot_be_regained(self):
        port = free_port()
        p = Porterd({})
        self.addCleanup(p.cleanup)
        target = os.path.join(p.dir, "root-owned.txt")
        with open(target, "w") as f:
            f.write("original\n")
        os.chmod(target, 0o644)
        os.chown(target, 0, 0)
        script = write_script(p.dir, "regain.sh", REGAIN.replace("@TARGET@", target))
        p.set_services({"10-regain.conf": "[regain]\nlisten = 127.0.0.1:%d\nuser = nobody\n"
                        "exec = %s\n" % (port, script)})
        p.start()
        out = talk(port).decode()
        env = parse_env(out)
        self.assertEqual(env.get("WRITE"), "2", out)  # sh: cannot create: Permission denied
        self.assertIn("Permission denied", out)
        self.assertEqual(env.get("setuid"), "denied", out)
        self.assertEqual(env.get("seteuid"), "denied", out)
        self.assertEqual(env.get("setgid"), "denied", out)
        self.assertEqual(env.get("setegid"), "denied", out)
        self.assertEqual(env.get("setgroups"), "denied", out)
        self.assertEqual(env.get("UID"), str(self.nobody.pw_uid), out)
        with open(target) as f:
            self.assertEqual(f.read(), "original\n")
        st = os.stat(target)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o644))


if __name__ == "__main__":
    main()
