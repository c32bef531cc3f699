#!/usr/bin/env python3
"""bench/reloadgap.py: does a reload hold up the serving of the other services?

Called by bench/run.sh on a running porterd with many services. bench/loadgen
hammers one unchanged service of it at concurrency 1 (connect, read the reply
to EOF, close; one line per connection with -o), first through a quiet period,
then through --reps reloads, each changing one other service (a max_children
line in --conf) and sent as SIGHUP at the start of a slot of equal length.
The quiet period is as long as the slots together, and just before them: it is
the reference. For each window: the longest gap between two successive
connections answered right, and the latency (connect to EOF) p50/p99/max of
the connections started in it.

One JSON line on stdout (a raw line of run.sh), one human line on stderr.
Measurement only: nothing here passes or fails on a number.
Exit: 0 measured, 1 a reload was not seen in porterd's log, 2 trouble.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

RELOADED = re.compile(rb"reloaded (\d+) services? in (\d+) ms")
FAILED = re.compile(rb"reload failed")


class Log:
    """porterd's stderr, read from where it ended when we started."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, os.SEEK_END)
        self.buf = b""

    def wait_reload(self, timeout):
        """(monotonic ns when seen, logged ms or None for a failed reload), or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.buf += self.f.read()
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                m = RELOADED.search(line)
                if m:
                    return time.monotonic_ns(), int(m.group(2))
                if FAILED.search(line):
                    return time.monotonic_ns(), None
            time.sleep(0.002)
        return None


def pct(sorted_xs, p):
    if not sorted_xs:
        return None
    i = max(1, min(len(sorted_xs), int(p / 100.0 * len(sorted_xs) + 0.999999)))
    return sorted_xs[i - 1]


def window(recs, oks, a, b):
    """Figures of the window [a, b) (monotonic ns). recs: (t0, t1, kind);
    oks: sorted completion times of the connections answered right."""
    gaps = []
    prev = None
    for t in oks:
        if a <= t < b and prev is not None:
            gaps.append(t - prev)
        if t >= b:
            break
        prev = t
    lat = sorted(t1 - t0 for t0, t1, k in recs if k == "ok" and a <= t0 < b)
    errors = {}
    for t0, _, k in recs:
        if k not in ("ok", "aborted") and a <= t0 < b:
            errors[k] = errors.get(k, 0) + 1
    done = sum(1 for t in oks if a <= t < b)
    ms = lambda ns: None if ns is None else round(ns / 1e6, 3)
    return {
        "secs": round((b - a) / 1e9, 3),
        "connections_ok": done,
        "conn_per_s": round(done / ((b - a) / 1e9), 1) if b > a else None,
        "max_gap_ms": ms(max(gaps)) if gaps else None,
        "lat_p50_ms": ms(pct(lat, 50)),
        "lat_p99_ms": ms(pct(lat, 99)),
        "lat_max_ms": ms(lat[-1]) if lat else None,
        "errors": errors,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True, help="porterd")
    ap.add_argument("--log", required=True, help="porterd's stderr (-f)")
    ap.add_argument("--conf", required=True, help="the service file to change")
    ap.add_argument("--target", required=True, help="HOST:PORT of an unchanged service")
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--trace", required=True, help="loadgen's per-connection file")
    ap.add_argument("--services", type=int, required=True, help="for the record")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-slot", type=float, default=0.5, help="seconds per reload, at least")
    ap.add_argument("--timeout", type=float, default=60, help="bound of one reload")
    a = ap.parse_args()

    with open(a.conf) as f:
        original = f.read()

    def change(i):
        with open(a.conf + ".tmp", "w") as f:
            f.write(original + "max_children = %d\n" % (200 + i))
        os.rename(a.conf + ".tmp", a.conf)

    log = Log(a.log)
    # One reload first, unmeasured: its length sizes the slots.
    change(0)
    t = time.monotonic_ns()
    os.kill(a.pid, signal.SIGHUP)
    seen = log.wait_reload(a.timeout)
    if seen is None:
        print("reloadgap: no reload in porterd's log within %.0f s" % a.timeout, file=sys.stderr)
        return 1
    warm_ms = (seen[0] - t) / 1e6
    slot = min(30.0, max(a.min_slot, 3 * warm_ms / 1e3 + 0.2))
    quiet = slot * a.reps
    time.sleep(0.2)

    bound = 1 + 2 * quiet + a.reps * a.timeout + 10
    lg = subprocess.Popen([a.loadgen, "-q", "-c", "1", "-n", "1000000000", "-d", "%.0f" % bound,
                           "-t", "5", "-o", a.trace, a.target],
                          stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    reloads = []
    missing = 0
    try:
        time.sleep(0.3)                 # loadgen up and running
        r0 = time.monotonic_ns() + int(quiet * 1e9)
        time.sleep(quiet)               # the quiet reference
        start = r0
        for i in range(1, a.reps + 1):
            wait = (start - time.monotonic_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)
            change(i)
            hup = time.monotonic_ns()
            os.kill(a.pid, signal.SIGHUP)
            seen = log.wait_reload(a.timeout)
            if seen is None:
                missing += 1
                done, logged = time.monotonic_ns(), None
            else:
                done, logged = seen
            end = max(start + int(slot * 1e9), done + 50_000_000)
            reloads.append({"start": start, "hup": hup, "done": done, "end": end,
                            "logged_ms": logged})
            start = end
        r1 = start
        wait = (r1 - time.monotonic_ns()) / 1e9 + 0.1
        if wait > 0:
            time.sleep(wait)
    finally:
        lg.send_signal(signal.SIGINT)
        try:
            out, _ = lg.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            lg.kill()
            out, _ = lg.communicate()
    summary = json.loads(out.decode() or "null")

    recs = []
    with open(a.trace) as f:
        for line in f:
            t0, t1, kind = line.split()
            recs.append((int(t0), int(t1), kind))
    oks = sorted(t1 for _, t1, k in recs if k == "ok")
    q = window(recs, oks, r0 - int(quiet * 1e9), r0)
    r = window(recs, oks, r0, r1)
    per = []
    for x in reloads:
        w = window(recs, oks, x["start"], x["end"])
        per.append({"logged_ms": x["logged_ms"],
                    "hup_to_logged_ms": round((x["done"] - x["hup"]) / 1e6, 3),
                    "max_gap_ms": w["max_gap_ms"], "lat_max_ms": w["lat_max_ms"],
                    "connections_ok": w["connections_ok"]})
    res = {"phase": "reload-gap", "services": a.services, "reps": a.reps,
           "slot_s": round(slot, 3), "warmup_reload_ms": round(warm_ms, 3),
           "quiet": q, "reloads": r, "per_reload": per, "reloads_not_seen": missing,
           "loadgen": summary}
    print(json.dumps(res))
    fmt = lambda v: "-" if v is None else "%.1f" % v
    print("  reload-gap %d services: longest gap quiet %s ms, during %d reloads %s ms; "
          "p99 quiet %s ms, reloads %s ms; porterd logged %s ms" % (
              a.services, fmt(q["max_gap_ms"]), a.reps, fmt(r["max_gap_ms"]),
              fmt(q["lat_p99_ms"]), fmt(r["lat_p99_ms"]),
              ", ".join(fmt(x["logged_ms"]) for x in reloads)), file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
