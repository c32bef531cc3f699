#!/usr/bin/env python3
"""Turn bench/run.sh's raw runs (one JSON object a line) into the table on
stdout, bench/results.json and the data file that plot.sh draws.

Every ratio is taken within one round (the contender's run against the floor's
run of the same round and concurrency, minutes apart at most), then the median
over rounds is reported, with the range. Nothing here judges a number."""

import argparse
import json
import os
import statistics
import sys
from collections import defaultdict

FLOOR = "floor"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def ratio_stats(rows, floor_rows, key):
    """Per-round ratios of key(row) to key(floor row of the same round and c)."""
    by_round = {(r["round"], r["c"]): r for r in floor_rows}
    out = []
    for r in rows:
        f = by_round.get((r["round"], r["c"]))
        if f is None:
            continue
        a, b = key(r), key(f)
        if a is not None and b:
            out.append(a / b)
    if not out:
        return None
    return {"median": med(out), "min": min(out), "max": max(out), "per_round": out}


def throughput(runs, phase):
    """{contender: {c: [runs]}} for one phase, in first-seen order."""
    table = defaultdict(lambda: defaultdict(list))
    for r in runs:
        if r.get("phase") == phase:
            table[r["contender"]][r["c"]].append(r)
    return table


def cps(r):
    return r["result"]["conn_per_s"]


def p99(r):
    return r["result"]["lat_ms"]["p99"] if r["result"]["ok"] else None


def summarize(table):
    out = {}
    floor = table.get(FLOOR, {})
    for name, per_c in table.items():
        s = {}
        errors = defaultdict(int)
        for c, rows in sorted(per_c.items()):
            for r in rows:
                for k, v in r["result"]["errors"].items():
                    if v:
                        errors[k] += v
            s["c=%d" % c] = {
                "conn_per_s_median": med([cps(r) for r in rows]),
                "conn_per_s_per_round": [cps(r) for r in rows],
                "ratio_to_floor": ratio_stats(rows, floor.get(c, []), cps),
                "p50_ms_median": med([r["result"]["lat_ms"]["p50"] for r in rows]),
                "p99_ms_median": med([p99(r) for r in rows]),
                "max_ms": max(r["result"]["lat_ms"]["max"] for r in rows),
                "p99_ratio_to_floor": ratio_stats(rows, floor.get(c, []), p99),
                "connections_ok": sum(r["result"]["ok"] for r in rows),
            }
        s["errors"] = dict(errors)
        out[name] = s
    return out


def is_peer(name):
    return not name.startswith("floor") and not name.startswith("porterd")


def versus_best_peer(table, concs):
    """Per round and c: porterd's conn/s over the fastest peer's in that round."""
    if "porterd" not in table:
        return {}
    out = {}
    for c in concs:
        ratios = []
        for r in table["porterd"].get(c, []):
            best = max((cps(p) for n, per_c in table.items() if is_peer(n)
                        for p in per_c.get(c, []) if p["round"] == r["round"]), default=None)
            if best:
                ratios.append(cps(r) / best)
        if ratios:
            out["c=%d" % c] = {"median": med(ratios), "min": min(ratios),
                               "max": max(ratios), "per_round": ratios}
    return out


def ratio_text(st):
    if st is None:
        return "-"
    if abs(st["max"] - st["min"]) < 0.005:
        return "%.2f" % st["median"]
    return "%.2f (%.2f-%.2f)" % (st["median"], st["min"], st["max"])


def print_throughput(title, summ, concs, out):
    print(title, file=out)
    head = "%-24s" % "contender"
    for c in concs:
        head += " %-26s" % ("c=%d conn/s  x floor" % c)
    head += " %-10s %-18s %s" % ("p99 c=8", "p99 c=8 x floor", "errors")
    print(head, file=out)
    for name, s in summ.items():
        line = "%-24s" % name
        for c in concs:
            cell = s.get("c=%d" % c)
            if cell is None:
                line += " %-26s" % "-"
                continue
            line += " %-26s" % ("%7s  %s" % (fmt(cell["conn_per_s_median"], ".0f"),
                                             ratio_text(cell["ratio_to_floor"])))
        c8 = s.get("c=8")
        line += " %-10s %-18s" % (
            (fmt(c8["p99_ms_median"], ".1f") + " ms") if c8 else "-",
            ratio_text(c8["p99_ratio_to_floor"]) if c8 else "-")
        errs = s["errors"]
        line += " " + (", ".join("%s %d" % kv for kv in sorted(errs.items())) or "0")
        print(line, file=out)


def ratio(a, b):
    return a / b if a is not None and b else None


def print_reload_gap(rows, out):
    """Serving during reloads: each row is reloadgap.py's line for one size."""
    summ = {}
    if not rows:
        return summ
    print("", file=out)
    print("Serving during reloads: c=1 connect+read on an unchanged service while porterd "
          "is reloaded (each SIGHUP changing one other service), against a quiet period of "
          "the same length just before; gap = longest time between two successive answers",
          file=out)
    print("  %-8s %-12s %6s %7s %12s %8s %8s %8s  %s" % (
        "services", "window", "secs", "conn/s", "longest gap", "p50 ms", "p99 ms", "max ms",
        "errors"), file=out)
    for r in sorted(rows, key=lambda r: r["services"]):
        k = r["services"]
        q, rl = r["quiet"], r["reloads"]
        for label, w in (("quiet", q), ("%d reloads" % r["reps"], rl)):
            print("  %-8s %-12s %6.1f %7s %12s %8s %8s %8s  %s" % (
                k, label, w["secs"], fmt(w["conn_per_s"], ".0f"),
                fmt(w["max_gap_ms"], ".1f") + " ms", fmt(w["lat_p50_ms"], ".2f"),
                fmt(w["lat_p99_ms"], ".2f"), fmt(w["lat_max_ms"], ".1f"),
                ", ".join("%s %d" % kv for kv in sorted(w["errors"].items())) or "0"),
                file=out)
        gap_x = ratio(rl["max_gap_ms"], q["max_gap_ms"])
        p99_x = ratio(rl["lat_p99_ms"], q["lat_p99_ms"])
        per = r["per_reload"]
        print("  %-8s %-12s longest gap x quiet %s, p99 x quiet %s; per reload: longest gap "
              "%s ms; porterd logged %s ms (SIGHUP to log line %s ms)%s" % (
                  "", "", fmt(gap_x, ".2f"), fmt(p99_x, ".2f"),
                  ", ".join(fmt(x["max_gap_ms"], ".1f") for x in per),
                  ", ".join(fmt(x["logged_ms"], ".0f") for x in per),
                  ", ".join(fmt(x["hup_to_logged_ms"], ".0f") for x in per),
                  "" if not r["reloads_not_seen"] else
                  "; %d reloads not seen in the log" % r["reloads_not_seen"]), file=out)
        summ[str(k)] = {"quiet": q, "reloads": rl, "per_reload": per,
                        "max_gap_ratio_to_quiet": gap_x, "p99_ratio_to_quiet": p99_x,
                        "reps": r["reps"], "slot_s": r["slot_s"],
                        "reloads_not_seen": r["reloads_not_seen"]}
    return summ


def print_hold(rows, out):
    """Held connections: holder's line for each N, the skipped N, the idle RSS."""
    summ = {"runs": {}, "skipped": {}, "idle": None}
    if not rows:
        return summ
    print("", file=out)
    print("Held connections: N handlers (bench/hold) alive at once, each holding its "
          "connection, then all released; porterd's own CPU time per connection "
          "(schedstat ns; utime+stime ticks in brackets) and its RSS", file=out)
    for r in rows:
        if r["phase"] == "hold-rss":
            summ["idle"] = r
            print("  porterd idle before: %d kB, %d fds" % (r["rss_kb"], r["fds"]), file=out)
    print("  %6s %6s %7s %9s %10s %11s %18s %9s %9s %9s %9s" % (
        "N", "held", "open s", "release s", "us/conn in", "us/conn out",
        "us/conn total", "RSS held", "RSS after", "fds held", "cpu idle"), file=out)
    for r in rows:
        if r["phase"] == "hold-skip":
            summ["skipped"][str(r["n"])] = r["why"]
            print("  %6d skipped: %s" % (r["n"], r["why"]), file=out)
            continue
        if r["phase"] != "hold":
            continue
        x, n = r["result"], r["n"]
        b, h, hi, a = x["before"], x["all_held"], x["held_idle"], x["released"]
        us = lambda ns: ns / 1e3 / n
        tick_us = 1e6 / x["clk_tck"]
        cell = {
            "held": x["held"], "failed": x["failed"], "failures": x["failures"],
            "open_s": x["open_s"], "release_s": x["release_s"],
            "children_left": x["children_left"],
            "cpu_us_per_conn_open": us(h["cpu_ns"] - b["cpu_ns"]),
            "cpu_us_per_conn_release": us(a["cpu_ns"] - hi["cpu_ns"]),
            "cpu_us_per_conn_total": us(a["cpu_ns"] - b["cpu_ns"]),
            "cpu_ticks_us_per_conn_total": (a["cpu_ticks"] - b["cpu_ticks"]) * tick_us / n,
            "cpu_ms_while_holding": (hi["cpu_ns"] - h["cpu_ns"]) / 1e6,
            "rss_kb_before": b["rss_kb"], "rss_kb_held": h["rss_kb"],
            "rss_kb_released": a["rss_kb"], "fds_held": h["fds"],
            "fds_released": a["fds"], "hold_s": x["hold_s"],
        }
        summ["runs"][str(n)] = cell
        print("  %6d %6d %7.2f %9.2f %10.1f %11.1f %9.1f (%6.1f) %6d kB %6d kB %9d %6.1f ms%s" % (
            n, x["held"], x["open_s"], x["release_s"], cell["cpu_us_per_conn_open"],
            cell["cpu_us_per_conn_release"], cell["cpu_us_per_conn_total"],
            cell["cpu_ticks_us_per_conn_total"], h["rss_kb"], a["rss_kb"], h["fds"],
            cell["cpu_ms_while_holding"],
            "" if x["failed"] == 0 and x["children_left"] <= 0 else
            "; failed: %s; handlers not reaped: %d" % (
                ", ".join("%s %d" % kv for kv in sorted(x["failures"].items()) if kv[1]) or "0",
                max(x["children_left"], 0))), file=out)
    return summ

TLS_REF = "porterd-plain"
TLS_PORTERD = "porterd-tls"
# The ceilings (tlsfloor.c): TLS alone, no process per connection, no handler;
# and the same workers starting the handler for each connection.
TLS_FLOORS = ("tls-floor", "tls-floor-exec")
# Issue 10's targets: (contender, conn/s at least this many times its conn/s).
TLS_TARGETS = ((TLS_REF, 0.5), ("stunnel", 1.0), ("porterd+stunnel", 2.0))
TLS_BULK_TARGET = 0.8


def per_round_ratio(rows, ref_rows, key):
    """Ratios of key(row) to key(ref row) of the same round and c; median, range."""
    by = {(r["round"], r["c"]): r for r in ref_rows}
    out = []
    for r in rows:
        f = by.get((r["round"], r["c"]))
        if f is not None and key(r) is not None and key(f):
            out.append(key(r) / key(f))
    if not out:
        return None
    return {"median": med(out), "min": min(out), "max": max(out), "per_round": out}


def mbps(r):
    return r["result"].get("mb_per_s") if r["result"]["ok"] else None


def server_us(r, hz):
    ok = r["result"]["ok"]
    t = r.get("server_cpu_ticks", -1)
    return t * 1e6 / hz / ok if ok and t >= 0 else None


def print_tls(runs, how, meta, out):
    """The TLS phase: conn/s and the transfer as ratios to plaintext porterd."""
    rate = throughput(runs, "tls")
    bulk = throughput(runs, "tls-bulk")
    holds = {r["contender"]: r for r in runs if r.get("phase") == "tls-hold"}
    if not rate and not bulk and not holds:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    names = [n for n in how if n in rate or n in bulk or n in holds]
    names += [n for n in rate if n not in names]
    concs = sorted({c for per_c in rate.values() for c in per_c})
    ref = rate.get(TLS_REF, {})
    bref = bulk.get(TLS_REF, {}).get(1, [])
    first = next((r["result"] for per_c in rate.values() for rows in per_c.values()
                  for r in rows if r["result"].get("tls") and r["result"].get("protocol")), {})
    summ = {"how": how, "contenders": {}, "targets": {}, "memory": {}}
    print("", file=out)
    print("TLS: the same handler over TLS, one ECDSA P-256 certificate, a full handshake "
          "per connection (%s, %s, %s; the client checks the chain); %s round(s) x %s s; "
          "x plain = median (min-max) of the per-round ratios to plaintext porterd; "
          "transfer: %s bytes, MB/s from the first byte to EOF, the median of %s "
          "transfers a round" % (
              first.get("protocol", "-"), first.get("cipher", "-"), first.get("group", "-"),
              meta.get("tls_rounds"), meta.get("secs"), meta.get("tls_bytes"),
              meta.get("tls_transfers")), file=out)
    head = "%-16s" % "contender"
    for c in concs:
        head += " %-25s" % ("c=%d conn/s  x plain" % c)
    head += " %-25s %-13s %-13s %s" % ("transfer MB/s  x plain", "server us/c8",
                                       "client us/c8", "errors")
    print(head, file=out)
    for name in names:
        cell = {}
        line = "%-16s" % name
        errors = defaultdict(int)
        for c in concs:
            rows = rate.get(name, {}).get(c, [])
            for r in rows:
                for k, v in r["result"]["errors"].items():
                    if v:
                        errors[k] += v
            st = per_round_ratio(rows, ref.get(c, []), cps)
            cell["c=%d" % c] = {
                "conn_per_s_median": med([cps(r) for r in rows]),
                "conn_per_s_per_round": [cps(r) for r in rows],
                "ratio_to_plain": st,
                "p99_ms_median": med([p99(r) for r in rows]),
                "server_cpu_us_per_conn": med([server_us(r, hz) for r in rows]),
                "client_cpu_us_per_conn": med([r["result"]["client_cpu_us_per_conn"]
                                               for r in rows if r["result"]["ok"]]),
                "unclean_close": sum(r["result"].get("unclean_close", 0) for r in rows),
            }
            line += " %-25s" % ("%7s  %s" % (fmt(cell["c=%d" % c]["conn_per_s_median"], ".0f"),
                                             ratio_text(st) if rows else "-"))
        brows = bulk.get(name, {}).get(1, [])
        for r in brows:
            for k, v in r["result"]["errors"].items():
                if v:
                    errors[k] += v
        bst = per_round_ratio(brows, bref, mbps)
        cell["transfer"] = {
            "mb_per_s_median": med([mbps(r) for r in brows]),
            "mb_per_s_per_round": [mbps(r) for r in brows],
            "mb_per_s_total_median": med([r["result"].get("mb_per_s_total") for r in brows
                                          if r["result"]["ok"]]),
            "ratio_to_plain": bst,
            "server_cpu_ms": med([r.get("server_cpu_ticks", -1) * 1e3 / hz for r in brows
                                  if r.get("server_cpu_ticks", -1) >= 0]),
        }
        cell["errors"] = dict(errors)
        c8 = cell.get("c=8", {})
        line += " %-25s %-13s %-13s %s" % (
            "%7s  %s" % (fmt(cell["transfer"]["mb_per_s_median"], ".0f"),
                         ratio_text(bst) if brows else "-"),
            fmt(c8.get("server_cpu_us_per_conn"), ".0f"),
            fmt(c8.get("client_cpu_us_per_conn"), ".0f"),
            ", ".join("%s %d" % kv for kv in sorted(errors.items())) or "0")
        print(line, file=out)
        summ["contenders"][name] = cell
    for name, text in how.items():
        if text.startswith("not run"):
            print("%-16s %s" % (name, text), file=out)

    # porterd tls = yes against each target, per round.
    mine = rate.get(TLS_PORTERD, {})
    if mine:
        print("", file=out)
        print("Issue 10's targets for porterd tls = yes (per-round ratios, median (min-max)):",
              file=out)
        for other, want in TLS_TARGETS:
            if other not in rate:
                continue
            cells, met = [], True
            for c in concs:
                st = per_round_ratio(mine.get(c, []), rate[other].get(c, []), cps)
                summ["targets"]["conn_per_s_vs_%s_c=%d" % (other, c)] = {
                    "want_at_least": want, "ratio": st,
                    "met": st is not None and st["median"] >= want}
                met = met and st is not None and st["median"] >= want
                cells.append("c=%d %s" % (c, ratio_text(st)))
            print("  conn/s >= %.1f x %-16s %s: %s" % (want, other, "met" if met else "NOT met",
                                                       "; ".join(cells)), file=out)
        if TLS_PORTERD in bulk and bref:
            st = per_round_ratio(bulk[TLS_PORTERD].get(1, []), bref, mbps)
            ok = st is not None and st["median"] >= TLS_BULK_TARGET
            summ["targets"]["transfer_vs_%s" % TLS_REF] = {
                "want_at_least": TLS_BULK_TARGET, "ratio": st, "met": ok}
            print("  transfer >= %.1f x %-14s %s: %s" % (
                TLS_BULK_TARGET, TLS_REF, "met" if ok else "NOT met", ratio_text(st)), file=out)

    # What no design could beat here: each ceiling against the reference, and
    # how close porterd tls = yes comes to it.
    if ref and any(f in rate for f in TLS_FLOORS):
        summ["ceiling"] = {}
        print("", file=out)
        print("The ceilings, with the same clients on the same CPUs: tls-floor (TLS alone: "
              "no process per connection, no handler); tls-floor-exec (the same workers "
              "start the handler for each connection and carry its output):", file=out)
    for fl in TLS_FLOORS:
        floor = rate.get(fl, {})
        if not floor or not ref:
            continue
        summ["ceiling"][fl] = {}
        c_plain, c_mine = [], []
        for c in concs:
            fp = per_round_ratio(floor.get(c, []), ref.get(c, []), cps)
            mf = per_round_ratio(mine.get(c, []), floor.get(c, []), cps)
            summ["ceiling"][fl]["c=%d" % c] = {"vs_plain": fp, "porterd_tls_vs_it": mf}
            c_plain.append("c=%d %s" % (c, ratio_text(fp)))
            c_mine.append("c=%d %s" % (c, ratio_text(mf)))
        fb = bulk.get(fl, {}).get(1, [])
        tb = ""
        if fb and bref:
            fp = per_round_ratio(fb, bref, mbps)
            mf = per_round_ratio(bulk.get(TLS_PORTERD, {}).get(1, []), fb, mbps)
            summ["ceiling"][fl]["transfer"] = {"vs_plain": fp, "porterd_tls_vs_it": mf}
            tb = "; transfer %s" % ratio_text(fp)
        print("  %-15s x %s: %s%s" % (fl, TLS_REF, "; ".join(c_plain), tb), file=out)
        print("  %-15s x %s: %s" % (TLS_PORTERD, fl, "; ".join(c_mine)), file=out)

    if holds:
        print("", file=out)
        n = next(iter(holds.values()))["n"]
        print("Memory: %d connections held at once (handler bench/hold); the server's whole "
              "process tree (daemon, relays or threads, handlers), PSS and RSS summed over "
              "/proc/PID/smaps_rollup, held minus before, per connection" % n, file=out)
        print("  %-16s %6s %12s %12s %13s %13s" % ("contender", "held", "procs", "PSS kB",
                                                   "PSS kB/conn", "RSS kB/conn"), file=out)
        for name in names:
            h = holds.get(name)
            if h is None:
                continue
            x = h["result"]
            held = x.get("held", 0)
            b, d = x["before"], x["held_mem"]
            per_pss = (d["pss_kb"] - b["pss_kb"]) / held if held else None
            per_rss = (d["rss_kb"] - b["rss_kb"]) / held if held else None
            summ["memory"][name] = {"held": held, "before": b, "held_mem": d,
                                    "after": x["after"], "pss_kb_per_conn": per_pss,
                                    "rss_kb_per_conn": per_rss}
            print("  %-16s %6d %5d -> %-4d %5d -> %-6d %13s %13s" % (
                name, held, b["procs"], d["procs"], b["pss_kb"], d["pss_kb"],
                fmt(per_pss, ".0f"), fmt(per_rss, ".0f")), file=out)
        m = summ["memory"]
        if m.get(TLS_PORTERD, {}).get("pss_kb_per_conn") is not None and \
                m.get(TLS_REF, {}).get("pss_kb_per_conn") is not None:
            extra = m[TLS_PORTERD]["pss_kb_per_conn"] - m[TLS_REF]["pss_kb_per_conn"]
            extra_rss = m[TLS_PORTERD]["rss_kb_per_conn"] - m[TLS_REF]["rss_kb_per_conn"]
            summ["memory"]["porterd_tls_extra_pss_kb_per_conn"] = extra
            summ["memory"]["porterd_tls_extra_rss_kb_per_conn"] = extra_rss
            print("  per TLS connection, porterd tls = yes minus plaintext porterd: PSS %.0f kB "
                  "(RSS %.0f kB, which counts every shared page once per process)" % (
                      extra, extra_rss), file=out)
    return summ


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--how")
    ap.add_argument("--tls-how")
    ap.add_argument("--out", required=True)
    ap.add_argument("--dat")
    ap.add_argument("--meta", nargs="*", default=[])
    a = ap.parse_args()

    runs = []
    with open(a.raw) as f:
        for line in f:
            line = line.strip()
            if line:
                runs.append(json.loads(line))
    meta = dict(kv.split("=", 1) for kv in a.meta)
    how = {}
    if a.how:
        with open(a.how) as f:
            for line in f:
                name, _, text = line.rstrip("\n").partition("\t")
                how[name] = text

    tls_how = {}
    if a.tls_how:
        with open(a.tls_how) as f:
            for line in f:
                name, _, text = line.rstrip("\n").partition("\t")
                tls_how[name] = text

    out = sys.stdout
    main_t = throughput(runs, "main")
    order = list(how)
    main_t = dict(sorted(main_t.items(),
                         key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))
    concs = sorted({c for per_c in main_t.values() for c in per_c})
    summ = summarize(main_t)
    print("", file=out)
    if meta.get("tls_only") == "1":
        print("porterd benchmark, the TLS phase alone (--tls-only): handler %s, %s CPUs" % (
            meta.get("handler"), meta.get("nproc")), file=out)
    else:
        print("porterd benchmark: handler %s, %s round(s) x %s s per run, %s CPUs; "
              "conn/s = median over rounds; x floor = median (min-max) of the per-round "
              "ratios to the floor (vfork + setsid + execve)" % (
                  meta.get("handler"), meta.get("rounds"), meta.get("secs"),
                  meta.get("nproc")), file=out)
    print("porterd %s (checkout at %s); kernel.sched_autogroup_enabled = %s; load average at "
          "the end %s; took %s s" % (meta.get("porterd_src"), meta.get("porterd_commit"),
                                 meta.get("sched_autogroup"), meta.get("loadavg_end"),
                                 meta.get("duration_s")), file=out)
    if main_t:
        print("", file=out)
        print_throughput("Throughput (connections/s) and p99 latency at c=8", summ, concs, out)
        for name, text in how.items():
            if text.startswith("not run"):
                print("%-24s %s" % (name, text), file=out)
    vs_peers = versus_best_peer(main_t, concs)
    if vs_peers:
        line = "%-24s" % "porterd / best peer"
        for c in concs:
            st = vs_peers.get("c=%d" % c)
            line += " %-26s" % ("%7s  %s" % ("", ratio_text(st) if st else "-"))
        print(line, file=out)
        print("%-24s %s" % ("", "(per round: porterd conn/s over the fastest peer's; "
                                 "peers: " + ", ".join(n for n in main_t if is_peer(n))
                                 + ")"), file=out)

    # The daemon's own CPU per connection served (porterd's contenders): what a
    # cgroup per connection costs it (porterd against porterd-nocgroup).
    hz = os.sysconf("SC_CLK_TCK")
    cpu_lines = []
    for name, per_c in main_t.items():
        if not name.startswith("porterd"):
            continue
        cells = []
        for c in concs:
            vals = [r["daemon_cpu_ticks"] * 1e6 / hz / r["result"]["ok"] for r in per_c.get(c, [])
                    if r.get("daemon_cpu_ticks", -1) >= 0 and r["result"]["ok"]]
            cells.append("%.1f" % med(vals) if vals else "-")
        cpu_lines.append("%-24s %s" % (name, " ".join("%-12s" % x for x in cells)))
    if cpu_lines:
        print("", file=out)
        print("Daemon CPU per connection (us, user + system of the daemon itself, median over "
              "rounds; clock ticks of %d ms)" % (1000 // hz), file=out)
        print("%-24s %s" % ("contender", " ".join("%-12s" % ("c=%d" % c) for c in concs)),
              file=out)
        for line in cpu_lines:
            print(line, file=out)

    scale_t = throughput(runs, "scale")

    def scale_key(name):
        if name == FLOOR:
            return -1
        digits = "".join(ch for ch in name if ch.isdigit())
        return int(digits) if digits else 1 << 30
    scale_t = dict(sorted(scale_t.items(), key=lambda kv: scale_key(kv[0])))
    scale_summ = summarize(scale_t) if scale_t else {}
    scale_rss = [r for r in runs if r.get("phase") == "scale-rss"]
    per_service_kb = None
    per_service_at = {}
    if scale_summ:
        sconcs = sorted({c for per_c in scale_t.values() for c in per_c})
        print("", file=out)
        print_throughput("Scaling: one TCP service under load while porterd has N services "
                         "(the others on unix sockets, idle)", scale_summ, sconcs, out)
        idle = {r["services"]: r for r in scale_rss if r["when"] == "idle"}
        after = {r["services"]: r for r in scale_rss if r["when"] == "after-load"}
        for k in sorted(idle):
            print("  %4d services: RSS idle %d kB, after the load %s kB; %d fds; "
                  "first answer %.0f ms after start" % (
                      k, idle[k]["rss_kb"], after.get(k, {}).get("rss_kb", "-"),
                      idle[k]["fds"], idle[k]["start_ms"]), file=out)
        ks = sorted(idle)
        if len(ks) >= 2 and ks[-1] > ks[0]:
            lo = ks[0]
            for hi in ks[1:]:
                kb = (idle[hi]["rss_kb"] - idle[lo]["rss_kb"]) / (hi - lo)
                per_service_at[str(hi)] = kb
                print("  memory per service at %5d: (RSS %d svc - RSS %d svc) / %d = %.2f kB" % (
                    hi, hi, lo, hi - lo, kb), file=out)
            per_service_kb = per_service_at[str(ks[-1])]

    reload_rows = [r for r in runs if r.get("phase") == "reload"]
    reload_log = [r for r in runs if r.get("phase") == "reload-log"]
    reload_summ = {}
    if reload_rows:
        print("", file=out)
        print("Reload: SIGHUP -> a newly added service answering (ms, median and range "
              "over reps; 'listening': first accepted connect); SIGHUP -> a removed service "
              "refusing; porterd's own 'reloaded in' log figure", file=out)
        by_k = defaultdict(list)
        for r in reload_rows:
            by_k[r["services"]].append(r)
        for k in sorted(by_k):
            adds = [r["add_ms"] for r in by_k[k] if r["add_ms"] is not None]
            lsn = [r.get("add_listening_ms") for r in by_k[k]
                   if r.get("add_listening_ms") is not None]
            dels = [r["remove_ms"] for r in by_k[k] if r["remove_ms"] is not None]
            # The log line counts the services after the reload: k+1 after an add.
            logged = [r["ms"] for r in reload_log if r["services"] in (k, k + 1)]
            reload_summ[str(k)] = {
                "add_ms_median": med(adds), "add_ms": adds,
                "add_listening_ms_median": med(lsn), "add_listening_ms": lsn,
                "remove_ms_median": med(dels), "remove_ms": dels,
                "porterd_logged_ms": logged,
                "failed": sum(1 for r in by_k[k] if r["add_ms"] is None),
            }
            print("  %4d services: add %s ms (%s-%s; listening after %s), remove %s ms "
                  "(%s-%s); porterd log: %s ms%s" % (
                      k, fmt(med(adds), ".1f"), fmt(min(adds) if adds else None, ".1f"),
                      fmt(max(adds) if adds else None, ".1f"), fmt(med(lsn), ".1f"),
                      fmt(med(dels), ".1f"),
                      fmt(min(dels) if dels else None, ".1f"),
                      fmt(max(dels) if dels else None, ".1f"),
                      fmt(med(logged), ".0f"),
                      "" if not reload_summ[str(k)]["failed"] else
                      "; %d reps never answered" % reload_summ[str(k)]["failed"]), file=out)

    gap_summ = print_reload_gap([r for r in runs if r.get("phase") == "reload-gap"], out)
    hold_summ = print_hold([r for r in runs if r.get("phase") in ("hold", "hold-skip", "hold-rss")],
                           out)

    tls_summ = print_tls(runs, tls_how, meta, out)

    rss_rows = [r for r in runs if r.get("phase") == "rss"]
    if rss_rows:
        print("", file=out)
        print("porterd memory (VmRSS) and open fds, one service:", file=out)
        for r in rss_rows:
            print("  %-14s after %6d connections: %6d kB, %d fds" % (
                r["label"], r["connections"], r["rss_kb"], r["fds"]), file=out)
    print("", file=out)

    results = {
        "meta": meta,
        "how": how,
        "throughput": summ,
        "porterd_vs_best_peer": versus_best_peer(main_t, concs),
        "scaling": {"throughput": scale_summ, "rss": scale_rss,
                    "memory_per_service_kb": per_service_kb,
                    "memory_per_service_kb_at": per_service_at},
        "reload": reload_summ,
        "reload_gap": gap_summ,
        "hold": hold_summ,
        "tls": tls_summ,
        "rss": rss_rows,
        "runs": runs,
    }
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")

    if a.dat:
        names = list(main_t)
        with open(a.dat, "w") as f:
            f.write("c " + " ".join(n for n in names) + "\n")
            for c in concs:
                cells = []
                for n in names:
                    v = summ[n].get("c=%d" % c, {}).get("conn_per_s_median")
                    cells.append("NaN" if v is None else "%.1f" % v)
                f.write("%d %s\n" % (c, " ".join(cells)))


if __name__ == "__main__":
    main()
