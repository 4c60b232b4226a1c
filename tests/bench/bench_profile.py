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
change the load (default 100 × 1000).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h  # noqa: E402

OUT = Path(os.environ.get("KTE_BENCH_OUT") or b.REPO / "build" / "bench") / "profile"


def flavours() -> dict:
    out = {"dev": str(h.EXTENSION)}
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    layer = b.REPO / "build" / "layer-build" / arch / "cmake" / b.EXT_NAME
    if layer.is_file() and os.access(layer, os.X_OK):
        out["layer"] = str(layer)
    return out


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


def annotate(path: Path, inclusive: bool, show: str = "Ir") -> str:
    args = ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=99.5",
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
        flush: str = "end") -> dict:
    outfile = OUT / f"callgrind.out.{flavour}-{label}"
    if outfile.exists():
        outfile.unlink()
    w = wrapper(tmp / f"{flavour}-{label}" / "opt", binary, outfile)
    env = h.kte_env("kte-bench", sink.endpoint, FLUSH=flush, FLUSH_TIMEOUT_MS=20000,
                    MAX_BUFFER_BYTES=256 * 1024 * 1024)
    env.update(LINES_PER_INVOKE=str(lines), LINE_BYTES="100")
    sink.reset_counts()
    res = b.sim_run(tmp / f"{flavour}-{label}", str(w), invokes, env, timeout=300, run_timeout=3600,
                    extra_args=["--init-timeout-ms", "60000", "--subscriber-queue-max", "100000"])
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
