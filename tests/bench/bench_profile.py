#!/usr/bin/python3
"""`bash scripts/bench.sh profile`: where the extension's CPU per event goes.

Runs the extension under `valgrind --tool=callgrind` inside lambda-sim (a
wrapper executable named kinesis-telemetry-extension execs valgrind, since
the sandbox names an extension by its file name), against the null endpoint:

  baseline   1 invoke of 1 line              (init, one invoke, shutdown)
  load       100 invokes of 1000 lines of 100 B, text format, flush end

Instructions per event = (Ir(load) - Ir(baseline)) / (events(load) - events(baseline)).
Profiles the dev build (build/kinesis-telemetry-extension, with debug info) and,
when `make layer` left it, the unstripped static musl binary of the layer
(build/layer-build/<arch>/cmake/kinesis-telemetry-extension).

Writes build/bench/profile/: callgrind.out.<flavour>-<run>, annotate-<flavour>-{self,inclusive}.txt,
summary.json; prints the top functions. KTE_PROFILE_INVOKES / KTE_PROFILE_LINES
change the load (default 100 × 1000); KTE_PROFILE_FLAVOURS (e.g. "layer") the
binaries profiled (default: every one found).

The processing rules' cost (issue 15): KTE_PROFILE_RULES=1 runs the lines of
the rules-sim bench (tests/bench/rules_function/bootstrap: bench_rules.c's four
messages padded to 100 B, one in two with something to redact) in three
configurations, as tests/bench/bench_rules_sim.py's CONFIGS (no rules,
KTE_REDACT=all, 10 custom regexes), and reports the instructions each adds per
event over no rules, with callgrind_annotate's per-function difference
(annotate-<flavour>-<config>-diff.txt). The small-invokes run is skipped then.
Files are named <flavour>-<config>-<run>, summary in summary-rules.json.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h  # noqa: E402

OUT = Path(os.environ.get("KTE_BENCH_OUT") or b.REPO / "build" / "bench") / "profile"


def flavours() -> dict:
    out = {"dev": str(h.EXTENSION)} if os.access(h.EXTENSION, os.X_OK) else {}
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer = b.REPO / "build" / "layer-build" / arch / "cmake" / b.EXT_NAME
    if layer.is_file() and os.access(layer, os.X_OK):
        out["layer"] = str(layer)
    only = [f for f in os.environ.get("KTE_PROFILE_FLAVOURS", "").replace(",", " ").split() if f]
    return {k: v for k, v in out.items() if not only or k in only}


def wrapper(dirpath: Path, binary: str, outfile: Path) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    w = dirpath / b.EXT_NAME
    w.write_text("#!/bin/sh\n"
                 f"exec valgrind --tool=callgrind --callgrind-out-file={outfile} "
                 "--dump-instr=no --collect-jumps=no --collect-systime=nsec --log-file=" + str(outfile) + ".log "
                 f"{binary} \"$@\"\n")
    w.chmod(0o755)
    return w


def totals(path: Path) -> dict:
    """{event name: total} of a callgrind output (Ir, sysCount, sysTime)."""
    names, vals = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        if line.startswith("totals:") or line.startswith("summary:"):
            vals = [int(x) for x in line.split()[1:]]
    if not names or not vals:
        raise RuntimeError(f"no totals in {path}")
    return dict(zip(names, vals))


def annotate(path: Path, inclusive: bool, show: str = "Ir", threshold: float = 99.5) -> str:
    args = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", f"--threshold={threshold}",
            f"--show={show}", f"--sort={show.split(',')[0]}", str(path)]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def top_functions(text: str, n: int = 25) -> list:
    """(Ir, percent, function) rows of a callgrind_annotate listing."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if m and "PROGRAM TOTALS" not in line:
            rows.append((int(m.group(1).replace(",", "")), float(m.group(2)), m.group(3).strip()))
    return rows[:n]


def run(flavour: str, binary: str, label: str, invokes: int, lines: int, sink: b.BenchSink, tmp: Path,
        flush: str = "end", rules: Optional[dict] = None, bootstrap: Optional[Path] = None) -> dict:
    outfile = OUT / f"callgrind.out.{flavour}-{label}"
    if outfile.exists():
        outfile.unlink()
    w = wrapper(tmp / f"{flavour}-{label}" / "opt", binary, outfile)
    env = h.kte_env("kte-bench", sink.endpoint, FLUSH=flush, FLUSH_TIMEOUT_MS=20000,
                    MAX_BUFFER_BYTES=256 * 1024 * 1024, **(rules or {}))
    env.update(LINES_PER_INVOKE=str(lines), LINE_BYTES="100")
    sink.reset_counts()
    res = b.sim_run(tmp / f"{flavour}-{label}", str(w), invokes, env, timeout=300, run_timeout=3600,
                    extra_args=["--init-timeout-ms", "60000", "--subscriber-queue-max", "100000"],
                    bootstrap=bootstrap)
    s = res.summary or {}
    e = b.ext_summary(s)
    events = b.sub_summary(s).get("delivered")
    if res.exit_code != 0 or e.get("exitCode") != 0 or not outfile.exists():
        raise RuntimeError(f"{flavour}/{label}: sim exit {res.exit_code}, extension exit {e.get('exitCode')}, "
                           f"profile {'written' if outfile.exists() else 'missing'}; see {tmp}")
    t = totals(outfile)
    return {"ir": t["Ir"], "syscalls": t.get("sysCount"), "sysTimeNs": t.get("sysTime"), "events": events, "delivered": sink.records_ok, "file": str(outfile),
            "invokes": invokes, "linesPerInvoke": lines, "flush": flush,
            "cpuS": b.cpu_seconds(e.get("rusage"))}


def diff_functions(a: Path, base: Path, events: int, n: int = 25) -> list:
    """(Ir per event, function) of callgrind_annotate's self cost in a minus
    that in base, largest first (a function's Ir grows with the events of
    the run: both runs have the same number)."""
    def self_cost(p: Path) -> dict:
        out: dict = {}
        for ir, _, fn in top_functions(annotate(p, inclusive=False, threshold=100), 100000):
            out[fn] = out.get(fn, 0) + ir
        return out
    x, y = self_cost(a), self_cost(base)
    rows = [((x.get(f, 0) - y.get(f, 0)) / events, f) for f in set(x) | set(y)]
    rows.sort(key=lambda r: -abs(r[0]))
    return [(round(d, 1), f) for d, f in rows[:n]]


def main_rules(invokes: int, lines: int, tmp: Path, sink: b.BenchSink) -> dict:
    import bench_rules_sim as rs
    lines -= lines % 4  # whole cycles of the runtime's 4 messages
    out: dict = {"machine": b.machine(), "load": {"invokes": invokes, "linesPerInvoke": lines, "lineBytes": 100,
                                                  "runtime": str(rs.BOOTSTRAP)}, "flavours": {}}
    for flavour, binary in flavours().items():
        per: dict = {}
        for cid, label, rules, _ in rs.CONFIGS:
            print(f"[profile] {flavour}/{cid}: baseline run and {invokes} × {lines} lines", flush=True)
            base = run(flavour, binary, f"{cid}-baseline", 1, 4, sink, tmp, rules=rules, bootstrap=rs.BOOTSTRAP)
            load = run(flavour, binary, f"{cid}-load", invokes, lines, sink, tmp, rules=rules,
                       bootstrap=rs.BOOTSTRAP)
            ev = load["events"] - base["events"]
            per[cid] = {"label": label, "baseline": base, "load": load, "events": ev,
                        "irPerEvent": round((load["ir"] - base["ir"]) / ev)}
            (OUT / f"annotate-{flavour}-{cid}-self.txt").write_text(annotate(Path(load["file"]), inclusive=False))
            (OUT / f"annotate-{flavour}-{cid}-inclusive.txt").write_text(
                annotate(Path(load["file"]), inclusive=True))
        none = per["none"]
        for cid in per:
            if cid == "none":
                continue
            e = per[cid]
            e["addedIrPerEvent"] = e["irPerEvent"] - none["irPerEvent"]
            e["diffTop"] = diff_functions(Path(e["load"]["file"]), Path(none["load"]["file"]),
                                          e["load"]["events"])
            (OUT / f"annotate-{flavour}-{cid}-diff.txt").write_text(
                "".join(f"{d:10.1f} Ir/event  {f}\n" for d, f in e["diffTop"]))
        out["flavours"][flavour] = per
        for cid, e in per.items():
            print(f"[profile] {flavour}/{cid}: {e['irPerEvent']:,} instructions per event"
                  + (f", {e['addedIrPerEvent']:+,} over no rules" if "addedIrPerEvent" in e else ""), flush=True)
            for d, f in e.get("diffTop", [])[:15]:
                print(f"    {d:+9.1f} Ir/event  {f}")
    return out


def main() -> int:
    if not shutil.which("valgrind"):
        print("valgrind is not installed (scripts/bench.sh profile installs it)", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kte-profile-"))
    invokes = int(os.environ.get("KTE_PROFILE_INVOKES", "100"))
    lines = int(os.environ.get("KTE_PROFILE_LINES", "1000"))
    inv_n = int(os.environ.get("KTE_PROFILE_SMALL_INVOKES", "100"))
    sink = b.BenchSink(mode="null").start()
    if os.environ.get("KTE_PROFILE_RULES", "0") not in ("", "0"):
        try:
            R = main_rules(invokes, lines, tmp, sink)
        finally:
            sink.stop()
        (OUT / "summary-rules.json").write_text(json.dumps(R, indent=1, ensure_ascii=False) + "\n")
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"profile: {OUT}")
        return 0
    summary = {"machine": b.machine(), "load": {"invokes": invokes, "linesPerInvoke": lines, "lineBytes": 100,
                                                "format": "text", "flush": "end"},
               "smallInvokes": inv_n, "flavours": {}}
    try:
        for flavour, binary in flavours().items():
            print(f"[profile] {flavour}: baseline run", flush=True)
            base = run(flavour, binary, "baseline", 1, 1, sink, tmp)
            print(f"[profile] {flavour}: {invokes} × {lines} lines under callgrind (a few minutes)", flush=True)
            load = run(flavour, binary, "load", invokes, lines, sink, tmp)
            per_event = (load["ir"] - base["ir"]) / (load["events"] - base["events"])
            print(f"[profile] {flavour}: {inv_n} invokes of 1 line (flush end), for the cost per invoke", flush=True)
            small = run(flavour, binary, "invokes", inv_n, 1, sink, tmp)
            per_invoke = (small["ir"] - base["ir"]) / (inv_n - 1)
            sys_per_invoke = ((small["syscalls"] or 0) - (base["syscalls"] or 0)) / (inv_n - 1)
            self_txt = annotate(Path(load["file"]), inclusive=False)
            incl_txt = annotate(Path(load["file"]), inclusive=True)
            (OUT / f"annotate-{flavour}-self.txt").write_text(self_txt)
            (OUT / f"annotate-{flavour}-inclusive.txt").write_text(incl_txt)
            (OUT / f"annotate-{flavour}-invokes-syscalls.txt").write_text(
                annotate(Path(small["file"]), inclusive=False, show="sysCount,sysTime"))
            (OUT / f"annotate-{flavour}-invokes-inclusive.txt").write_text(
                annotate(Path(small["file"]), inclusive=True))
            summary["flavours"][flavour] = {
                "binary": binary, "baseline": base, "load": load, "irPerEvent": round(per_event),
                "invokes": small, "irPerInvoke1Line": round(per_invoke),
                "syscallsPerInvoke1Line": round(sys_per_invoke, 1),
                "syscallsPerEvent": round(((load["syscalls"] or 0) - (base["syscalls"] or 0))
                                          / (load["events"] - base["events"]), 3),
                "topSelfInvokes": top_functions(annotate(Path(small["file"]), inclusive=False)),
                "topSelf": top_functions(self_txt), "topInclusive": top_functions(incl_txt, 40)}
            print(f"[profile] {flavour}: {load['events']} events, {load['ir']:,} Ir in all, baseline "
                  f"{base['ir']:,} Ir; {per_event:,.0f} instructions per event; "
                  f"{per_invoke:,.0f} per invoke of 1 line ({sys_per_invoke:.0f} system calls)", flush=True)
            for ir, pct, fn in summary["flavours"][flavour]["topSelf"][:15]:
                print(f"    {pct:5.1f}%  {ir / (load['events'] or 1):8.0f} Ir/event  {fn}")
    finally:
        sink.stop()
    (OUT / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"profile: {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
