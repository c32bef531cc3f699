"""End to end: handlers started by spawner threads while the loop goes on (spawner.h).

PORTERD_TEST_SPAWNER_PAUSE_MS holds each spawner thread between a handler's
start and its job being done: the races the loop must handle (a handler reaped
before its start is collected, a reload or a stop while starts are in flight)
then happen every time instead of once in a while.
"""

import os
import re
import signal
import socket
import time
import unittest

from porterd_test import VALGRIND, Porterd, TIMEOUT, free_port, main, talk, wait_until

PAUSE_MS = 1500


def thread_names(pid):
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            continue
    return sorted(names)


def service(name, port, extra=""):
    return ("[%s]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
            "args = sh -c 'echo hi; echo bye >&2'\n%s" % (name, port, extra))


class SpawnerTest(unittest.TestCase):

    def start(self, services, **kw):
        p = Porterd(services, **kw)
        self.addCleanup(p.cleanup)
        return p.start()

    def test_handlers_start_from_two_named_threads_or_from_the_loop(self):
        port = free_port()
        p = self.start({"a.conf": service("a", port)})
        self.assertEqual(talk(port), b"hi\nbye\n")
        # The main thread aside (under valgrind it bears valgrind's name).
        self.assertEqual(thread_names(p.pid)[1:], ["porterd-spawn", "porterd-spawn",
                                                   "porterd-watch"])
        p.stop()
        # Without them the loop starts every handler itself, as before.
        port = free_port()
        p = self.start({"a.conf": service("a", port)}, env={"PORTERD_SPAWNERS": "0"})
        self.assertEqual(talk(port), b"hi\nbye\n")
        self.assertEqual(thread_names(p.pid)[1:], ["porterd-watch"])

    def test_a_handler_reaped_before_its_start_is_collected(self):
        # max_children = 1: had its exit been lost, the slot would stay taken.
        port = free_port()
        p = self.start({"a.conf": service("quick", port, "max_children = 1\nstderr = log\n")},
                       env={"PORTERD_TEST_SPAWNER_PAUSE_MS": str(PAUSE_MS)})
        t0 = time.monotonic()
        self.assertEqual(talk(port), b"hi\n")
        # Served and gone while its thread still holds the job: the loop reaped
        # a pid it did not know yet.
        self.assertLess(time.monotonic() - t0, PAUSE_MS / 1000.0,
                        "the handler did not end before its job was done")
        p.wait_log("exited with status 0")
        log = p.log()
        pid = re.search(r"quick: 127\.0\.0\.1:\d+ -> pid (\d+)", log).group(1)
        # Its start, its last words, its exit: in that order.
        start = log.index("-> pid %s" % pid)
        words = log.index("quick[%s]: bye" % pid)
        end = log.index("quick: pid %s exited with status 0" % pid)
        self.assertLess(start, words)
        self.assertLess(words, end)
        # The slot is free again, and no zombie is left.
        self.assertEqual(talk(port), b"hi\n")
        p.wait_log("exited with status 0", count=2)
        self.assertEqual(p.children(), [])
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: quick ")
        self.assertRegex(p.log(), r"status: quick 127\.0\.0\.1:%d listening running=0 "
                         r"accepted=2 failed=0 " % port)

    def test_a_handler_gone_before_its_job_frees_its_slot_at_once(self):
        # Its thread holds the job for 3 s; the handler is long gone. The
        # client comes back: max_children = 1 and max_per_source = 1 must not
        # hold it until the job is handed over.
        port = free_port()
        p = self.start({"a.conf": service("quick", port, "max_children = 1\n"
                                          "max_per_source = 1\n")},
                       env={"PORTERD_TEST_SPAWNER_PAUSE_MS": "3000"})
        t0 = time.monotonic()
        self.assertEqual(talk(port), b"hi\nbye\n")
        self.assertEqual(talk(port), b"hi\nbye\n")
        self.assertLess(time.monotonic() - t0, 2.0, "the second client waited for the "
                        "first one's job")
        p.wait_log("exited with status 0", count=2)
        wait_until(lambda: p.children() == [], what="handlers gone")
        os.kill(p.pid, signal.SIGUSR1)
        p.wait_log("status: quick ")
        self.assertRegex(p.log(), r"status: quick 127\.0\.0\.1:%d listening running=0 "
                         r"accepted=2 failed=0 refused=acl:0,per_source:0," % port)

    @unittest.skipIf(VALGRIND, "valgrind has no pidfd_open and says so in its log "
                     "(the kill by pid that porterd falls back to works there)")
    def test_a_child_stopped_before_its_exec_is_killed(self):
        # Between its switch to the handler's user and its exec, any process of
        # that user may SIGSTOP the child, and whoever started it waits for the
        # exec. PORTERD_TEST_STOP_BEFORE_EXEC makes the child stop itself
        # there. A service with user = is started by a thread, so the loop
        # serves meanwhile; the watch kills the child after 3 s either way.
        for spawners in ("2", "0"):
            stuck, ok = free_port(), free_port()
            p = self.start({"a.conf": "[stuck]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                            "args = sh -c 'echo never'\nuser = nobody\n" % stuck +
                            service("ok", ok)},
                           env={"PORTERD_TEST_STOP_BEFORE_EXEC": "stuck",
                                "PORTERD_SPAWNERS": spawners})
            t0 = time.monotonic()
            c = socket.create_connection(("127.0.0.1", stuck), timeout=TIMEOUT)
            self.addCleanup(c.close)
            if spawners != "0":
                self.assertEqual(talk(ok), b"hi\nbye\n")
                self.assertLess(time.monotonic() - t0, 2.5, "the loop waited")
            c.settimeout(10)
            try:
                self.assertEqual(c.recv(10), b"")
            except ConnectionResetError:
                pass
            self.assertGreater(time.monotonic() - t0, 2.5)
            p.wait_log("had not started its handler 3 s after its start")
            self.assertEqual(talk(ok), b"hi\nbye\n")
            p.stop()

    def test_a_reload_waits_for_starts_in_flight(self):
        # The service goes away in the reload while its handlers are being
        # started: its description must outlive them (the sanitizer runs would
        # see a use after free), and they are served.
        keep, gone = free_port(), free_port()
        p = self.start({"a.conf": service("keep", keep), "b.conf": service("gone", gone)},
                       env={"PORTERD_TEST_SPAWNER_PAUSE_MS": str(PAUSE_MS)})
        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])
        for _ in range(3):
            clients.append(socket.create_connection(("127.0.0.1", gone), timeout=TIMEOUT))
        # All three accepted and handed over (the -v line comes when collected).
        for c in clients:
            self.assertEqual(c.recv(3), b"hi\n")
        p.set_services({"a.conf": service("keep", keep)})
        os.kill(p.pid, signal.SIGHUP)
        p.wait_log("reloaded 1 service")
        self.assertEqual(p.log().count("gone: 127.0.0.1:"), 3)
        self.assertRaises(ConnectionRefusedError, socket.create_connection,
                          ("127.0.0.1", gone), TIMEOUT)
        self.assertEqual(talk(keep), b"hi\nbye\n")
        wait_until(lambda: p.children() == [], what="handlers gone")

    def test_a_stop_waits_for_starts_in_flight(self):
        port = free_port()
        p = self.start({"a.conf": "[a]\nlisten = 127.0.0.1:%d\nexec = /bin/sh\n"
                                  "args = sh -c 'echo hi; read x; echo $x'\n" % port},
                       env={"PORTERD_TEST_SPAWNER_PAUSE_MS": str(PAUSE_MS)})
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.addCleanup(c.close)
        self.assertEqual(c.recv(3), b"hi\n")
        # Its job is still held: porterd stops once it is done, and the
        # handler, left to finish, still serves its client.
        self.assertEqual(p.stop(), 0)
        self.assertIn("-> pid", p.log())
        self.assertIn("stopping; 1 handler left to finish", p.log())
        c.sendall(b"after\n")
        self.assertEqual(c.recv(10), b"after\n")


if __name__ == "__main__":
    main()
