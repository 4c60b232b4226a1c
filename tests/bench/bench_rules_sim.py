#!/usr/bin/python3
"""The processing rules' cost in the real extension binaries (issue 15's
figure): the layer binary (static musl, -Os, what Lambda runs) and the dev
build, each under lambda-sim against kinesis-local, with no rules, with the
built-in redaction set (KTE_REDACT=all) and with 10 custom regexes.

Each run: INVOKES invokes of LINES text-format lines of 100 bytes (the
runtime tests/bench/rules_function/bootstrap: one line in two carries an
e-mail and an IPv4 address or a card number), flush at the end of each
invoke, everything delivered to kinesis-local. The figure is the extension's
CPU (user + system, from lambda-sim's rusage of the process) of a run with
rules minus that of the run without rules in the same repetition, divided by
the lines: the runs differ only in the rule variables, so init, shutdown,
platform events and delivery cancel out. Configurations are interleaved and
their order rotated per repetition, so the machine's load drifts over all of
them alike. Reported: the median of the per-repetition differences
[min–max], and the difference of the minima.

Also part of `make bench` (tests/bench/bench_run.py); alone:

  bash scripts/bench.sh rules-sim     build/bench/rules-sim.{json,md}, copied to
                                      docs/bench/rules-sim.md unless KTE_BENCH_PUBLISH=0

Environment: KTE_BENCH_RULES_REPS (default 5; 2 with KTE_BENCH_QUICK=1),
KTE_BENCH_RULES_INVOKES (default 25), KTE_BENCH_RULES_LINES (default 200: kinesis-local
takes a few hundred records/s on a loaded machine, and an invoke's flush must
end within KTE_FLUSH_TIMEOUT_MS or events are left for the shutdown deadline),
and bench_run.py's KTE_BENCH_LAYER, KTE_BENCH_OUT.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import traceback
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h, mmm, rnd  # noqa: E402

MiB = 1024 * 1024
BOOTSTRAP = Path(__file__).resolve().parent / "rules_function" / "bootstrap"
LINE_BYTES = 100

# The same 10 patterns as tests/bench/bench_rules.c; 5 of them match in each
# 4 lines of the runtime (order, warehouse, total; key; attempt).
CUSTOM10 = json.dumps(["order [0-9]+", "warehouse [0-9]+", "key [a-z]+:[0-9]+", "total [0-9.]+ EUR",
                       "attempt [0-9]+", "(?i)password=\\S+", "ssn:? ?[0-9]{3}-[0-9]{2}-[0-9]{4}",
                       "token=[A-Za-z0-9]{20,}", "session [0-9a-f]{32}", "x-api-key: ?\\S+"])

# id, label, KTE_* variables (without the prefix), redactions expected per 4 lines
CONFIGS = [
    ("none", "no rules", {}, {}),
    ("builtin", "built-in set (KTE_REDACT=all)", {"REDACT": "all"},
     {"RedactedEmail": 1, "RedactedIpAddress": 1, "RedactedCreditCard": 1}),
    ("custom10", "10 custom regexes (KTE_REDACT_REGEX)", {"REDACT_REGEX": CUSTOM10}, {"RedactedCustom": 5}),
]
REDACTION_KEYS = ["RedactedEmail", "RedactedCreditCard", "RedactedAwsAccessKeyId", "RedactedAwsSecretKey",
                  "RedactedJwt", "RedactedBearerToken", "RedactedIpAddress", "RedactedCustom"]


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


def run_once(ctx, binary: str, cfg: tuple, rep: int, invokes: int, lines: int) -> Optional[dict]:
    cid, _, rules, expect = cfg
    stream = ctx.new_stream("rules")
    # A long flush timeout: under load kinesis-local can take more than the
    # default 2 s for an invoke's records, which would leave them to the
    # shutdown deadline (and fail the run).
    env = h.kte_env(stream, ctx.kl.endpoint, FLUSH="end", FLUSH_TIMEOUT_MS=20000, BUFFER_TIMEOUT_MS=25,
                    MAX_BUFFER_BYTES=256 * MiB, **rules)
    env.update(LINES_PER_INVOKE=str(lines), LINE_BYTES=str(LINE_BYTES))
    wd = ctx.tmp / f"rules-{binary}-{cid}-r{rep}"
    res = b.sim_run(wd, ctx.binaries[binary], invokes, env, verbose=1, timeout=120, bootstrap=BOOTSTRAP,
                    extra_args=["--subscriber-queue-max", str(4 * lines)], run_timeout=900)
    ctx.drop_stream(stream)
    s = res.summary or {}
    e = b.ext_summary(s)
    prefix = f"[{b.EXT_NAME}] "
    emf = b.read_emf("\n".join(l[len(prefix):] for l in res.stderr.splitlines() if l.startswith(prefix + "{")))
    invs = s.get("invokes") or []
    cpu = b.cpu_seconds(e.get("rusage"))
    what = f"rules {binary}/{cid} rep {rep}"
    if res.exit_code != 0 or e.get("exitCode") != 0 or len(invs) != invokes or not emf or cpu is None:
        ctx.problem(f"{what}: sim exit {res.exit_code}, extension exit {e.get('exitCode')}, "
                    f"{len(invs)} invokes, EMF {'found' if emf else 'missing'}; logs in {wd}")
        return None
    n = invokes * lines
    # Every event delivered, and the rules did their work (else the figure
    # would measure something else).
    want = {k: expect.get(k, 0) * n // 4 for k in REDACTION_KEYS}
    got = {k: emf.get(k, 0) for k in REDACTION_KEYS}
    if emf.get("EventsDelivered") != emf.get("EventsReceived") or emf.get("EventsDropped") or got != want:
        ctx.problem(f"{what}: received {emf.get('EventsReceived')}, delivered {emf.get('EventsDelivered')}, "
                    f"dropped {emf.get('EventsDropped')}; redactions {got}, expected {want}; logs in {wd}")
        return None
    shutil.rmtree(wd, ignore_errors=True)
    return {"rep": rep, "cpuS": cpu, "lines": n, "eventsReceived": emf.get("EventsReceived"),
            "cpuUsPerEvent": cpu / emf["EventsReceived"] * 1e6, "cpuUsPerLine": cpu / n * 1e6}


def measure(ctx) -> dict:
    """Runs every configuration on every binary; ctx is bench_run's Ctx with
    kinesis-local started."""
    reps = env_int("KTE_BENCH_RULES_REPS", 2 if ctx.quick else 5)
    invokes = env_int("KTE_BENCH_RULES_INVOKES", 5 if ctx.quick else 25)
    lines = env_int("KTE_BENCH_RULES_LINES", 200)
    lines -= lines % 4  # whole cycles of the runtime's 4 messages
    out: dict = {"reps": reps, "invokes": invokes, "lines": lines, "lineBytes": LINE_BYTES, "binaries": {}}
    for name in ctx.binaries:
        runs: Dict[str, List[Optional[dict]]] = {c[0]: [] for c in CONFIGS}
        for rep in range(1, reps + 1):
            for k in range(len(CONFIGS)):
                cfg = CONFIGS[(k + rep - 1) % len(CONFIGS)]
                try:
                    r = run_once(ctx, name, cfg, rep, invokes, lines)
                except Exception as e:
                    ctx.problem(f"rules {name}/{cfg[0]} rep {rep}: {e!r}")
                    traceback.print_exc()
                    r = None
                runs[cfg[0]].append(r)
                if r:
                    ctx.log(f"rules {name:<5} {cfg[0]:<8} rep {rep}: CPU {r['cpuUsPerLine']:.2f} µs/line "
                            f"({r['cpuS'] * 1e3:.0f} ms for {r['lines']} lines, {r['eventsReceived']} events)")
        per: dict = {}
        for cid, label, _, _ in CONFIGS:
            ok = [r for r in runs[cid] if r]
            entry = {"label": label, "runs": runs[cid],
                     "cpuUsPerLine": rnd(mmm([r["cpuUsPerLine"] for r in ok])),
                     "cpuUsPerEvent": rnd(mmm([r["cpuUsPerEvent"] for r in ok]))}
            if cid != "none":
                # paired: this configuration minus no rules, same repetition
                diffs = [(r["cpuS"] - base["cpuS"]) / r["lines"] * 1e6
                         for r, base in zip(runs[cid], runs["none"]) if r and base]
                mins = [min(x["cpuS"] for x in rs if x) / lines / invokes * 1e6 if any(rs) else None
                        for rs in (runs[cid], runs["none"])]
                entry["addedUsPerLine"] = rnd(mmm(diffs))
                entry["addedUsPerLineOfMinima"] = (rnd(mins[0] - mins[1]) if None not in mins else None)
            per[cid] = entry
        out["binaries"][name] = per
    return out


def fmt(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}"


def fmt_m(m: Optional[dict]) -> str:
    if not m:
        return "-"
    if m["n"] == 1:
        return fmt(m["median"])
    return f"{fmt(m['median'])} [{fmt(m['min'])}–{fmt(m['max'])}]"


def render(R: dict) -> List[str]:
    """The markdown section (bench_run.py's results.md and rules-sim.md)."""
    L = [f"## Processing rules in the binaries, lambda-sim and kinesis-local (issue 15)\n",
         f"{R['invokes']} invokes × {R['lines']} text lines of {R['lineBytes']} B per run (one line in two "
         f"carries something to redact), flush end, {R['reps']} repetitions per configuration, interleaved. "
         "CPU = the extension process's user+system time. *added* = (CPU with the rules − CPU without, same "
         "repetition) / lines: median of the repetitions [min–max]; *of minima* = the same from each "
         "configuration's fastest run. Method: tests/bench/bench_rules_sim.py.\n",
         "| binary | rules | CPU µs/line | CPU µs/event (all events) | added µs/line | added, of minima | target |",
         "|---|---|---|---|---|---|---|"]
    goal = b.TARGETS["rulesBuiltinUs"][0]
    for name, per in R["binaries"].items():
        for cid, e in per.items():
            added = e.get("addedUsPerLine")
            tgt = ""
            if cid == "builtin" and added:
                tgt = f"< {goal:g} µs: **{'met' if added['median'] < goal else 'not met'}**"
            L.append(f"| {name} | {e['label']} | {fmt_m(e['cpuUsPerLine'])} | {fmt_m(e['cpuUsPerEvent'])} | "
                     f"{fmt_m(added) if cid != 'none' else '—'} | "
                     f"{fmt(e.get('addedUsPerLineOfMinima')) if cid != 'none' else '—'} | {tgt} |")
    L.append("")
    return L


def main() -> int:
    import bench_run  # the context (binaries, kinesis-local, output directory)
    ctx = bench_run.Ctx()
    R: dict = {"machine": b.machine()}
    try:
        if not ctx.start_kinesis_local():
            print("bench: rules need kinesis-local: " + "; ".join(ctx.notes), file=sys.stderr)
            return 1
        R.update(measure(ctx))
    finally:
        ctx.close()
    M = R["machine"]
    md = [f"# Processing rules' cost in the binaries\n",
          f"`bash scripts/bench.sh rules-sim` on {M['date']}: {M['nproc']} × {M['cpuModel']}, load average at "
          f"start {M['loadAvgAtStart'][0]}. `layer` is the binary of `build/layer-x86_64.zip` (static musl, "
          "-Os); `dev` is `build/kinesis-telemetry-extension` (glibc, -O2).\n", *render(R)]
    for n in ctx.notes:
        md.append(f"* {n}")
    for p in ctx.problems:
        md.append(f"* PROBLEM: {p}")
    (ctx.out / "rules-sim.json").write_text(json.dumps(R, indent=1, ensure_ascii=False) + "\n")
    (ctx.out / "rules-sim.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    if os.environ.get("KTE_BENCH_PUBLISH", "0" if ctx.quick else "1") != "0":
        docs = b.REPO / "docs" / "bench"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.out / "rules-sim.md", docs / "rules-sim.md")
    if not ctx.problems:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    return 1 if ctx.problems else 0


if __name__ == "__main__":
    sys.exit(main())
