#!/usr/bin/python3
"""The flush-strategy benchmark (issue 12): every invocation trace of
tests/bench/traces/ under lambda-sim against kinesis-local, once per
strategy, measured by flush_lib (what each figure means: its module doc and
docs/flush.md).

Writes build/bench/flush.{json,md} and flush.svg; copies the table and the
chart to docs/bench/ (unless KTE_BENCH_QUICK=1 or KTE_BENCH_PUBLISH=0).
KTE_BENCH_QUICK=1: the first invokes of each trace only (about 4 minutes);
KTE_BENCH_TRACES=sparse,busy: only those traces; KTE_BENCH_OUT: output dir.
Exit 1 only when a run failed functionally (an event not delivered exactly
once, a failed invoke, the sim or the extension failing); timing never
fails it.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flush_lib as fl  # noqa: E402

h = fl.h
b = fl.b

TRACES = ["sparse", "steady", "busy", "bursty", "azure"]
QUICK_LIMIT = {"sparse": 4, "steady": 40, "busy": 150, "bursty": 250, "azure": 12}
LABEL = {"x-datadog": "datadog (reference)"}
GOALS = "adaptive: added ≤ 1 ms p50 and ≤ 5 ms p99 on steady and busy; nothing held over a freeze on sparse"


def fmt(x, d=1):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{d}f}"


def table(rows, machine) -> str:
    out = ["| trace | strategy | invokes | added p50 / p99 (ms) | billed ms added per 1,000 invokes "
           "| latency p50 / p99 / max (ms) | max latency outside long freezes (ms) "
           "| events held at a freeze (in the extension) | their wait p50 / max (ms) "
           "| EventsDeliveredAfterFreeze (seen by the sink) | events received = stored | load (1 min) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(
            f"| {r['trace']} | {LABEL.get(r['strategy'], r['strategy'])} | {r['invokes']} "
            f"| {fmt(r['addedP50Ms'])} / {fmt(r['addedP99Ms'])} | {fmt(r['billedMsPer1000'], 0)} "
            f"| {fmt(r['latencyP50Ms'], 0)} / {fmt(r['latencyP99Ms'], 0)} / {fmt(r['latencyMaxMs'], 0)} "
            f"| {fmt(r['boundedMaxMs'], 0)} "
            f"| {r['heldAtFreeze']} ({r['heldInExtension']}) | {fmt(r['heldWaitP50Ms'], 0)} / "
            f"{fmt(r['heldWaitMaxMs'], 0)} | {r['eventsDeliveredAfterFreeze']} ({r['heldAcrossFreezeSeenBySink']}) "
            f"| {r['received']} = {r['stored']} | {r['load1'][0]}–{r['load1'][1]} |")
    head = [f"Machine: {machine['cpus']} CPUs, load average (1/5/15 min) at the start "
            f"{machine['loadStart']}, at the end {machine['loadEnd']}; {machine['when']}; "
            f"{'quick run (first invokes of each trace)' if machine['quick'] else 'full traces'}; "
            f"idle compressed {fl.TIME_SCALE}× with a floor of {fl.MIN_IDLE_MS} ms "
            f"(latencies count freezes at their nominal length).", ""]
    return "\n".join(head + out) + "\n"


def chart(rows, out: Path) -> Path | None:
    gp = shutil.which("gnuplot")
    if not gp:
        return None
    strategies = fl.STRATEGIES
    traces = [t for t in TRACES if any(r["trace"] == t for r in rows)]

    def write_dat(path: Path, key: str, floor: float) -> Path:
        """One row per trace, one column per strategy (floored: log scale)."""
        with open(path, "w") as f:
            f.write("trace " + " ".join(f'"{LABEL.get(s, s)}"' for s in strategies) + "\n")
            for t in traces:
                vals = []
                for s in strategies:
                    r = next((r for r in rows if r["trace"] == t and r["strategy"] == s), None)
                    v = r.get(key) if r else None
                    vals.append(floor if v is None else max(floor, v))
                f.write(t + " " + " ".join(f"{v:.3f}" for v in vals) + "\n")
        return path

    dat = write_dat(out / "flush.dat", "billedMsPer1000", 0.1)
    lat = write_dat(out / "flush_lat.dat", "latencyP99Ms", 1.0)
    svg = out / "flush.svg"
    n = len(strategies)
    script = f"""set terminal svg size 1100,520 dynamic font "sans,11"
set output "{svg}"
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left font ",9"
set logscale y
set grid ytics
set xtics nomirror
set title "billed ms added per 1,000 invokes (log)"
plot for [i=2:{n + 1}] "{dat}" using i:xtic(1) title columnheader(i)
set title "delivery latency p99, ms (log; idle at nominal length)"
plot for [i=2:{n + 1}] "{lat}" using i:xtic(1) title columnheader(i)
unset multiplot
"""
    (out / "flush.gp").write_text(script)
    subprocess.run([gp, str(out / "flush.gp")], check=True)
    return svg


def main() -> int:
    quick = os.environ.get("KTE_BENCH_QUICK") == "1"
    publish = os.environ.get("KTE_BENCH_PUBLISH", "1") != "0" and not quick
    out = Path(os.environ.get("KTE_BENCH_OUT") or fl.REPO / "build" / "bench")
    out.mkdir(parents=True, exist_ok=True)
    only = [t for t in os.environ.get("KTE_BENCH_TRACES", "").split(",") if t] or TRACES
    binary = str(fl.REPO / "build" / "kinesis-telemetry-extension")
    machine = {"cpus": os.cpu_count(), "loadStart": [round(x, 2) for x in os.getloadavg()],
               "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": quick}
    tmp = out / "flush-runs"
    shutil.rmtree(tmp, ignore_errors=True)
    kl = h.KinesisLocal(log_path=out / "flush-kinesis-local.log").start()
    sink = fl.RecordingSink(kl.endpoint).start()
    rows, problems = [], []
    try:
        for t in only:
            steps = fl.load_trace(t, QUICK_LIMIT[t] if quick else None)
            for s in fl.STRATEGIES:
                t0 = time.monotonic()
                raw = fl.run_trace(sink, kl, binary, steps, s, tmp / f"{t}-{s.replace(',', '_')}")
                r = fl.analyse(raw)
                r["trace"] = t
                r["wallS"] = round(time.monotonic() - t0, 1)
                rows.append(r)
                ok = (r["simExit"] == 0 and r["invokes"] == len(steps) and r["dropped"] == 0
                      and r["received"] == r["delivered"] == r["stored"] == r["simDelivered"]
                      and r["duplicates"] == 0 and r["statuses"] == ["success"])
                if not ok:
                    problems.append(f"{t} {s}: {json.dumps(r)}")
                print(f"flush bench {t:<7} {s:<16} added p50 {fmt(r['addedP50Ms'])} p99 "
                      f"{fmt(r['addedP99Ms'])} ms, billed {fmt(r['billedMsPer1000'], 0)} ms/1000, latency "
                      f"p99 {fmt(r['latencyP99Ms'], 0)} ms, held {r['heldAtFreeze']}, after-freeze "
                      f"{r['eventsDeliveredAfterFreeze']} (sink: {r['heldAcrossFreezeSeenBySink']}), {r['wallS']} s{'' if ok else '  FAILED'}",
                      file=sys.stderr, flush=True)
                with contextlib.suppress(Exception):
                    kl.delete_stream(raw["stream"])
    finally:
        sink.stop()
        kl.stop()
    machine["loadEnd"] = [round(x, 2) for x in os.getloadavg()]
    (out / "flush.json").write_text(json.dumps({"machine": machine, "rows": rows, "problems": problems},
                                               indent=1))
    md = table(rows, machine)
    (out / "flush.md").write_text(md)
    svg = None
    try:
        svg = chart(rows, out)
    except Exception as e:  # the figures stand without the chart
        print(f"flush bench: no chart: {e}", file=sys.stderr)
    print(md)
    if publish:
        docs = fl.REPO / "docs" / "bench"
        (docs / "flush.md").write_text("# Flush strategies on invocation traces\n\n"
                                       "Written by `make bench` (tests/bench/bench_flush.py); "
                                       "see [docs/flush.md](../flush.md).\n\n" + md)
        if svg:
            shutil.copy(svg, docs / "flush.svg")
    for p in problems:
        print("flush bench: FAILED " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
