"""The benchmark chart: data files and a gnuplot script from results.json, drawn
as SVG with Debian's gnuplot (scripts/bench.sh installs gnuplot-nox).

Usage: render(results, out_dir) -> path of chart.svg; or standalone
`/usr/bin/python3 tests/bench/bench_chart.py build/bench/results.json` to redraw.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Optional


def _med(m: Optional[dict]) -> Optional[float]:
    return None if not m else m["median"]


def _v(x: Optional[float], fmt: str = "%.3f") -> str:
    return "-" if x is None else fmt % x


def _label(sc: dict) -> str:
    size = "100B" if sc["lineBytes"] == 100 else "4KB"
    return f"{sc['logFormat']} {size} ×{sc['lines']}"


def _short(x: Optional[float], unit: str) -> str:
    if x is None:
        return "n/a"
    if x >= 100:
        return f"{x:.0f} {unit}"
    if x >= 10:
        return f"{x:.1f} {unit}"
    return f"{x:.2f} {unit}"


def _panel(empty: bool, text: str) -> str:
    """A panel's gnuplot commands, or an empty frame with its title when it has no data."""
    if not empty:
        return text
    title = next(l for l in text.splitlines() if l.startswith("set title"))
    return (title + '\nset label 99 "no data in this run" at graph 0.5, 0.5 center\n'
            'unset logscale y\nplot [0:1] [0:1] NaN notitle\nunset label 99\n')


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(R: dict, out: Path) -> Optional[Path]:
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        raise RuntimeError("gnuplot not found (scripts/bench.sh installs gnuplot-nox)")
    out = Path(out)
    matrix = R.get("matrix", {}).get("null") or []

    # (a) added duration per invoke, flush end
    a_rows: List[str] = []
    a_has = False
    b_rows: dict = {}
    for res in matrix:
        sc, sm = res["scenario"], res["summary"]
        lab = _label(sc)
        if sc["flush"] == "end":
            p50, wait = _med(sm["overheadP50Ms"]), _med(sm["waitRuntimeDoneP50Ms"])
            if p50 is not None and wait is not None:
                wait = min(wait, p50)
            flush = None if p50 is None or wait is None else p50 - wait
            a_has = a_has or flush is not None
            a_rows.append(f'"{lab}" {_v(wait)} {_v(flush)} {_v(_med(sm["overheadP99Ms"]))} '
                          f'{_v(_med(sm["flushAndNextP50Ms"]))}')
        b_rows.setdefault(lab, {})["end" if sc["flush"] == "end" else "periodic"] = _med(sm.get("cpuMsPerInvokeMarginal"))
    (out / "chart-a.dat").write_text("# scenario wait_p50 flush_p50 p99 flush_own_p50\n" + "\n".join(a_rows) + "\n")
    (out / "chart-b.dat").write_text(
        "# scenario cpu_ms_per_invoke_end cpu_ms_per_invoke_periodic\n"
        + "\n".join(f'"{k}" {_v(v.get("end"))} {_v(v.get("periodic"))}' for k, v in b_rows.items()) + "\n")

    # (c) every figure that has a target, as % of it, per binary
    by = {}
    for row in R.get("headline", []):
        if row.get("target") is None or row.get("median") is None:
            continue
        key = row["targetText"]
        by.setdefault(key, {"target": row["target"], "unit": row["unit"], "vals": {}})
        by[key]["vals"].setdefault(row["binary"], (row["median"], row["figure"]))
    names = {"initMs": "init to first next", "idleRssMiB": "peak RSS, light run",
             "cpuUsPerEvent": "CPU per 100 B event", "overheadP50Ms": "added per invoke p50",
             "drainMs": "drain 10k events"}
    c_rows = []
    for key, d in by.items():
        short = next((names[k] for k, t in _targets().items() if t == key), key)
        dev = d["vals"].get("dev", (None, ""))[0]
        layer = d["vals"].get("layer", (None, ""))[0]
        lab = f"{short}\\n(target {d['target']:g} {d['unit']})"
        c_rows.append(f'"{lab}" {_v(None if dev is None else 100 * dev / d["target"])} '
                      f'{_v(None if layer is None else 100 * layer / d["target"])} '
                      f'"{_short(dev, d["unit"]) if dev is not None else ""}" '
                      f'"{_short(layer, d["unit"]) if layer is not None else ""}"')
    (out / "chart-c.dat").write_text("# figure dev_pct layer_pct dev_value layer_value\n" + "\n".join(c_rows) + "\n")

    empty = {"a": not a_has, "b": not any(v is not None for d in b_rows.values() for v in d.values()),
             "c": not c_rows}
    M = R.get("machine", {})
    title = (f"kinesis-telemetry-extension benchmarks — {M.get('nproc')} × {M.get('cpuModel')}, "
             f"Linux {M.get('kernel')}, {M.get('date')}, median of {R.get('config', {}).get('reps')} runs")
    svg = out / "chart.svg"
    gp = f"""
set terminal svg size 1100,1400 dynamic enhanced font "Helvetica,11" background rgb "white"
set output {_quote(str(svg))}
set datafile missing "-"
set encoding utf8
set multiplot layout 3,1 title {_quote(title)} font ",13"
set style fill solid 0.85 border -1
set grid ytics lc rgb "#dddddd"
set key top center horizontal box opaque font ",10"
set xtics rotate by -25 font ",10" nomirror
set bmargin 5
set offsets 0, 0, graph 0.18, 0

PANEL_A
set title "Added duration per invoke with flush end (lambda-sim, null endpoint): p50 = wait for platform.runtimeDone + flush and next; p99 as dots"
set style data histograms
set style histogram rowstacked
set boxwidth 0.6
set ylabel "ms"
set yrange [0:*]
plot {_quote(str(out / "chart-a.dat"))} using 2:xtic(1) title "waiting for platform.runtimeDone (Telemetry API buffering, 25 ms)" lc rgb "#9ecae1", \\
     '' using 3 title "flush (PutRecords) and next" lc rgb "#3182bd", \\
     '' using 0:4 with points pt 7 ps 1.2 lc rgb "#e6550d" title "p99", \\
     2 with lines dt 2 lw 2 lc rgb "#31a354" title "target: p50 < 2 ms"

END_PANEL
PANEL_B
set title "Extension CPU per invoke (user + system; minus a 1-invoke run's init and shutdown; lambda-sim, null endpoint)"
set style histogram clustered gap 1
set logscale y
set yrange [0.01:*]
set offsets 0, 0, graph 0.25, 0
set ylabel "ms CPU per invoke (log)"
plot {_quote(str(out / "chart-b.dat"))} using 2:xtic(1) title "flush end" lc rgb "#3182bd", \\
     '' using 3 title "flush periodic,1000" lc rgb "#9ecae1"

END_PANEL
PANEL_C
set title "Each targeted figure as % of its target (below the line: met)"
set yrange [1:*]
set ylabel "% of target (log)"
set xtics norotate font ",10"
set bmargin 6
plot {_quote(str(out / "chart-c.dat"))} using 2:xtic(1) title "dev build (glibc, shared libraries)" lc rgb "#756bb1", \\
     '' using 3 title "layer binary (static musl, what Lambda runs)" lc rgb "#bcbddc", \\
     '' using ($0 - 1/6.):2:4 with labels offset 0,0.7 font ",9" notitle, \\
     '' using ($0 + 1/6.):3:5 with labels offset 0,0.7 font ",9" notitle, \\
     100 with lines dt 2 lw 2 lc rgb "#e6550d" title "target"
END_PANEL
unset multiplot
"""
    import re

    gp = re.sub(r"PANEL_(\w)\n(.*?)END_PANEL\n",
                lambda m: _panel(empty[m.group(1).lower()], m.group(2)), gp, flags=re.S)
    (out / "chart.gp").write_text(gp)
    p = subprocess.run([gnuplot, str(out / "chart.gp")], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError("gnuplot failed: " + p.stderr.strip()[-1500:])
    return svg


def _targets() -> dict:
    from bench_lib import TARGETS

    return {k: v[2] for k, v in TARGETS.items()}


sys.path.insert(0, str(Path(__file__).resolve().parent))

if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "build/bench/results.json")
    print(render(json.loads(path.read_text()), path.parent))
