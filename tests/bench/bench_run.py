#!/usr/bin/python3
"""`make bench`: the extension's cost inside a customer's function, measured
the same way every time (see docs/bench/README.md for the method).

Runs the extension under lambda-sim against a null Kinesis endpoint and
against kinesis-local, repeats every scenario, and writes

  build/bench/results.json   every run and every figure (median, min, max)
  build/bench/results.md     the tables printed at the end
  build/bench/chart.svg      the chart (gnuplot)

and, unless KTE_BENCH_PUBLISH=0, copies results.md and chart.svg to
docs/bench/. Targets are printed next to the figures as met / not met; timing
never makes the bench fail. It exits 1 only when a run failed functionally
(the extension crashed, or lost events against the null endpoint), 0 otherwise.

Environment:
  KTE_BENCH_REPS=N      repetitions of every scenario (default 3)
  KTE_BENCH_QUICK=1     a smoke run: 1 repetition, fewer invokes and events
  KTE_BENCH_LAYER=0     skip the layer binary (default: measured too when
                        build/layer-<arch>.zip exists; `make layer` makes it)
  KTE_BENCH_KINESIS_LOCAL=0  skip the end-to-end runs against kinesis-local
  KTE_BENCH_PUBLISH=0   do not copy results.md and chart.svg to docs/bench/
  KTE_BENCH_OUT=DIR     output directory (default build/bench)
  KTE_BENCH_RULES_REPS, KTE_BENCH_RULES_INVOKES, KTE_BENCH_RULES_LINES: the
                        processing rules' runs (tests/bench/bench_rules_sim.py)
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h, mmm, percentile, rnd  # noqa: E402

import bench_chart  # noqa: E402
import bench_rules_sim  # noqa: E402

REPO = b.REPO
MiB = 1024 * 1024

TARGETS = b.TARGETS


def env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


class Ctx:
    def __init__(self):
        self.quick = os.environ.get("KTE_BENCH_QUICK") == "1"
        self.reps = env_int("KTE_BENCH_REPS", 1 if self.quick else 3)
        self.out = Path(os.environ.get("KTE_BENCH_OUT") or REPO / "build" / "bench")
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="kte-bench-"))
        self.problems: List[str] = []
        self.notes: List[str] = []
        self.binaries = self.find_binaries()
        self.null = b.BenchSink(mode="null").start()
        self.kl: Optional[h.KinesisLocal] = None
        self.gate: Optional[b.BenchSink] = None
        self.t0 = time.monotonic()
        # scales
        self.invokes_small = 10 if self.quick else 50
        self.invokes_big = 3 if self.quick else 10
        self.events_outage = 20000 if self.quick else 100000
        self.events_drain = 10000
        self.events_tp_null = 50000 if self.quick else 200000
        self.events_tp_kl = 2000 if self.quick else 6000

    def find_binaries(self) -> Dict[str, str]:
        out = {"dev": str(h.EXTENSION)}
        if not os.access(h.EXTENSION, os.X_OK):
            raise SystemExit(f"bench: {h.EXTENSION} is missing: run `make build` (or `make bench`)")
        arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
        zpath = REPO / "build" / f"layer-{arch}.zip"
        if os.environ.get("KTE_BENCH_LAYER", "1") != "0" and arch and zpath.is_file():
            dest = self.out / "layer" / "extensions"
            dest.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(zpath) as z:
                data = z.read("extensions/" + b.EXT_NAME)
            target = dest / b.EXT_NAME
            target.write_bytes(data)
            target.chmod(0o755)
            out["layer"] = str(target)
        elif os.environ.get("KTE_BENCH_LAYER", "1") != "0":
            self.notes.append(f"layer binary not measured: {zpath} not found (`make layer` builds it)")
        return out

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def log(self, msg: str) -> None:
        print(f"[bench {self.elapsed():6.0f}s] {msg}", flush=True)

    def problem(self, msg: str) -> None:
        self.problems.append(msg)
        print(f"[bench] PROBLEM: {msg}", flush=True)

    def start_kinesis_local(self) -> bool:
        if os.environ.get("KTE_BENCH_KINESIS_LOCAL", "1") == "0":
            self.notes.append("end-to-end runs against kinesis-local skipped (KTE_BENCH_KINESIS_LOCAL=0)")
            return False
        try:
            self.kl = h.KinesisLocal(log_path=self.tmp / "kinesis-local.log").start()
        except Exception as e:  # report, carry on with the null endpoint
            self.notes.append(f"kinesis-local did not start, end-to-end runs skipped: {e}")
            self.kl = None
            return False
        self.gate = b.BenchSink(upstream=self.kl.endpoint, mode="pass").start()
        return True

    def new_stream(self, label: str) -> str:
        name = h.unique_stream_name(label)
        self.kl.create_stream(name)
        return name

    def drop_stream(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.kl.delete_stream(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.null.stop()
        if self.gate:
            with contextlib.suppress(Exception):
                self.gate.stop()
        if self.kl:
            self.kl.stop()


# --------------------------------------------------------------------------
# lambda-sim scenarios


def scenario_id(sc: dict) -> str:
    flush = "end" if sc["flush"] == "end" else "periodic"
    size = "100B" if sc["lineBytes"] == 100 else "4KB"
    return f"{sc['logFormat']}-{size}-x{sc['lines']}-{flush}"


def sim_scenario_run(ctx: Ctx, sc: dict, rep: int) -> dict:
    """One lambda-sim run of a matrix scenario; per-run figures."""
    sink = sc["sink"]
    binary = ctx.binaries[sc.get("binary", "dev")]
    stream = ctx.new_stream("bench") if sink == "kinesis-local" else "kte-bench"
    endpoint = ctx.kl.endpoint if sink == "kinesis-local" else ctx.null.endpoint
    env = h.kte_env(stream, endpoint, FLUSH=sc["flush"], BUFFER_TIMEOUT_MS=25,
                    MAX_BUFFER_BYTES=256 * MiB)
    env.update(LINES_PER_INVOKE=str(sc["lines"]), LINE_BYTES=str(sc["lineBytes"]))
    wd = ctx.tmp / f"{sc['id']}-{sc['sink']}-r{rep}"
    verbose = 1 if sink == "kinesis-local" else 0
    if sink == "null":
        ctx.null.reset_counts()
    run = b.sim_run(wd, binary, sc["invokes"], env, log_format=sc["logFormat"], verbose=verbose,
                    timeout=120, extra_args=["--subscriber-queue-max", "100000"], start_only=True)
    mem = b.MemSampler(exe=binary, ancestor=run.pid, interval=0.05)
    res = run.wait(900)
    mem.stop()
    if sink == "kinesis-local":
        ctx.drop_stream(stream)
    s = res.summary or {}
    e = b.ext_summary(s)
    sub = b.sub_summary(s)
    invs = s.get("invokes") or []
    r: dict = {"rep": rep, "exitCode": res.exit_code, "workdir": str(wd)}
    bad = [i for i in invs if i.get("status") != "success"]
    if res.exit_code != 0 or e.get("exitCode") != 0 or bad or len(invs) != sc["invokes"]:
        ctx.problem(f"{sc['id']} ({sink}) rep {rep}: sim exit {res.exit_code}, extension exit "
                    f"{e.get('exitCode')}, {len(bad)} failed invokes; logs in {wd}")
        r["failed"] = True
    over = [i["extensionOverheadMs"] for i in invs]
    waits, flushes = [], []
    for i in invs:
        if i.get("runtimeDoneDeliveredMs") and i.get("responseEndMs"):
            w = i["runtimeDoneDeliveredMs"] - i["responseEndMs"]
            waits.append(w)
            if sc["flush"] == "end":
                flushes.append(max(0.0, i["extensionOverheadMs"] - w))
    received = sub.get("delivered")
    cpu = b.cpu_seconds(e.get("rusage"))
    r.update({
        "invokes": len(invs),
        "overheadMs": over,
        "overheadP50Ms": percentile(over, 50), "overheadP99Ms": percentile(over, 99),
        "waitRuntimeDoneP50Ms": percentile(waits, 50), "waitRuntimeDoneP99Ms": percentile(waits, 99),
        "flushAndNextP50Ms": percentile(flushes, 50), "flushAndNextP99Ms": percentile(flushes, 99),
        "durationP50Ms": percentile([i["durationMs"] for i in invs], 50),
        "initToFirstNextMs": e.get("initToFirstNextMs"), "execToFirstNextMs": e.get("execToFirstNextMs"),
        "shutdownToExitMs": e.get("shutdownToExitMs"),
        "cpuS": cpu, "eventsReceived": received,
        "cpuUsPerEvent": cpu / received * 1e6 if cpu is not None and received else None,
        "cpuMsPerInvoke": cpu / len(invs) * 1e3 if cpu is not None and invs else None,
        "vmHwmKb": mem.hwm_kb or None,
    })
    if sink == "null":
        r["sinkRecords"] = ctx.null.records_ok
        # every event the sim delivered must be in the sink (nothing else writes there)
        if received is not None and ctx.null.records_ok < received:
            ctx.problem(f"{sc['id']} rep {rep}: {received} events received, {ctx.null.records_ok} delivered")
            r["failed"] = True
    else:
        emf = b.read_emf("\n".join(l[len(f"[{b.EXT_NAME}] "):] for l in res.stderr.splitlines()
                                   if l.startswith(f"[{b.EXT_NAME}] {{")))
        if emf:
            r["emf"] = {k: emf.get(k) for k in ("EventsReceived", "EventsDelivered", "EventsDropped",
                                                "Batches", "BatchesFailed", "RecordsRetried")}
    return r


SIM_FIGURES = ["overheadP50Ms", "overheadP99Ms", "waitRuntimeDoneP50Ms", "waitRuntimeDoneP99Ms",
               "flushAndNextP50Ms", "flushAndNextP99Ms", "durationP50Ms", "initToFirstNextMs",
               "execToFirstNextMs", "shutdownToExitMs", "cpuUsPerEvent", "cpuMsPerInvoke", "vmHwmKb",
               "cpuMsPerInvokeMarginal", "cpuUsPerEventMarginal"]


def aggregate(runs: List[dict], figures: List[str]) -> dict:
    ok = [r for r in runs if not r.get("failed")]
    return {f: rnd(mmm([r.get(f) for r in ok])) for f in figures}


def matrix_scenarios(ctx: Ctx) -> List[dict]:
    out = []
    for fmt in ("text", "json"):
        for size in (100, 4096):
            for lines in (1, 10, 1000):
                for flush in ("end", "periodic,1000"):
                    sc = {"logFormat": fmt, "lineBytes": size, "lines": lines, "flush": flush,
                          "invokes": ctx.invokes_big if lines >= 1000 else ctx.invokes_small}
                    sc["id"] = scenario_id(sc)
                    out.append(sc)
    return out


def kinesis_local_scenarios(ctx: Ctx) -> List[dict]:
    out = []
    for fmt in ("text", "json"):
        for size in (100, 4096):
            for lines in (1, 10):
                if ctx.quick and (fmt == "json" or size == 4096):
                    continue
                sc = {"logFormat": fmt, "lineBytes": size, "lines": lines, "flush": "end",
                      "invokes": ctx.invokes_small}
                sc["id"] = scenario_id(sc)
                out.append(sc)
    # 1000 lines of 100 B: kinesis-local takes ~1000 records/s, so few invokes
    sc = {"logFormat": "text", "lineBytes": 100, "lines": 1000, "flush": "end", "invokes": 3 if ctx.quick else 5}
    sc["id"] = scenario_id(sc)
    out.append(sc)
    return out


def run_matrix(ctx: Ctx, scenarios: List[dict], sink: str, label: str,
               baseline: Optional[dict] = None) -> List[dict]:
    """baseline: the cold-start summary of the binary; its CPU (init, 1 invoke,
    shutdown) is subtracted for the marginal CPU per invoke and per event."""
    base_cpu = (baseline or {}).get("cpuMs") and baseline["cpuMs"]["median"] / 1e3
    base_ev = (baseline or {}).get("events") and baseline["events"]["median"]
    results = [dict(scenario=sc, sink=sink, runs=[]) for sc in scenarios]
    for rep in range(1, ctx.reps + 1):  # repetitions interleaved, so noise spreads over scenarios
        for res in results:
            sc = dict(res["scenario"], sink=sink)
            try:
                run = sim_scenario_run(ctx, sc, rep)
            except Exception as e:
                ctx.problem(f"{label} {sc['id']} rep {rep}: {e!r}")
                traceback.print_exc()
                continue
            if base_cpu and run.get("cpuS") is not None and run["invokes"] > 1 and run.get("eventsReceived"):
                extra = max(0.0, run["cpuS"] - base_cpu)
                run["cpuMsPerInvokeMarginal"] = extra / (run["invokes"] - 1) * 1e3
                if base_ev is not None and run["eventsReceived"] > base_ev:
                    run["cpuUsPerEventMarginal"] = extra / (run["eventsReceived"] - base_ev) * 1e6
            res["runs"].append(run)
            ctx.log(f"{label} {sc['id']:<26} rep {rep}: added p50 {fmt_num(run['overheadP50Ms'])} ms, "
                    f"p99 {fmt_num(run['overheadP99Ms'])} ms, CPU {fmt_num(run['cpuUsPerEvent'])} µs/event")
    for res in results:
        res["summary"] = aggregate(res["runs"], SIM_FIGURES)
        # invokes of all repetitions together (p99 from more samples)
        pooled = [o for r in res["runs"] if not r.get("failed") for o in r["overheadMs"]]
        res["pooled"] = {"invokes": len(pooled), "overheadP50Ms": rnd(percentile(pooled, 50)),
                         "overheadP99Ms": rnd(percentile(pooled, 99))}
        for r in res["runs"]:
            r.pop("overheadMs", None)
    return results


# --------------------------------------------------------------------------
# cold start and idle memory


def cold_start(ctx: Ctx, name: str) -> dict:
    """1 invoke of 1 line: init to first next, peak and idle RSS."""
    binary = ctx.binaries[name]
    runs = []
    for rep in range(1, 2 * ctx.reps + 1):
        ctx.null.reset_counts()
        env = h.kte_env("kte-bench", ctx.null.endpoint)
        env.update(LINES_PER_INVOKE="1", LINE_BYTES="100")
        wd = ctx.tmp / f"cold-{name}-r{rep}"
        run = b.sim_run(wd, binary, 1, env, idle_ms=200, verbose=1, start_only=True)
        mem = b.MemSampler(exe=binary, ancestor=run.pid, interval=0.01)
        res = run.wait(120)
        mem.stop()
        s = res.summary or {}
        e = b.ext_summary(s)
        if res.exit_code != 0 or e.get("exitCode") != 0:
            ctx.problem(f"cold start {name} rep {rep}: sim exit {res.exit_code}, extension exit {e.get('exitCode')}")
            continue
        emf = b.read_emf("\n".join(l[len(f"[{b.EXT_NAME}] "):] for l in res.stderr.splitlines()
                                   if l.startswith(f"[{b.EXT_NAME}] {{")))
        # idle: the RSS while frozen after the invoke (the freeze before SHUTDOWN)
        fr = (s.get("freezes") or [{}])[-1]
        idle = mem.rss_at(fr.get("endMs", 0) - 5) if fr else None
        runs.append({
            "rep": rep,
            "initToFirstNextMs": e.get("initToFirstNextMs"), "execToFirstNextMs": e.get("execToFirstNextMs"),
            "initToRegisterMs": e.get("initToRegisterMs"),
            "peakRssKb": mem.hwm_kb or None, "idleRssKb": idle and idle[0],
            "idleRssAnonKb": idle and idle[1], "idleRssFileKb": idle and idle[2],
            "emfPeakRssKb": (emf or {}).get("PeakRssBytes", 0) // 1024 or None,
            "cpuMs": (b.cpu_seconds(e.get("rusage")) or 0) * 1e3,
            "events": b.sub_summary(s).get("delivered"),
            "shutdownToExitMs": e.get("shutdownToExitMs"),
        })
        ctx.log(f"cold start {name} rep {rep}: init {fmt_num(runs[-1]['initToFirstNextMs'])} ms, "
                f"peak RSS {fmt_num(mem.hwm_kb / 1024)} MiB")
    figs = ["initToFirstNextMs", "execToFirstNextMs", "initToRegisterMs", "peakRssKb", "idleRssKb",
            "idleRssAnonKb", "idleRssFileKb", "emfPeakRssKb", "cpuMs", "shutdownToExitMs", "events"]
    return {"binary": name, "runs": runs, "summary": aggregate(runs, figs)}


# --------------------------------------------------------------------------
# memory with 100k events buffered during an outage


def outage_rss(ctx: Ctx, name: str) -> dict:
    binary = ctx.binaries[name]
    n = ctx.events_outage
    runs = []
    for rep in range(1, ctx.reps + 1):
        ctx.null.reset_counts()
        ctx.null.set_mode("down")
        env = h.kte_env("kte-bench", ctx.null.endpoint, FLUSH="periodic,900000", MAX_BUFFER_BYTES=512 * MiB)
        env.update(LINES_PER_INVOKE=str(n), LINE_BYTES="100")
        wd = ctx.tmp / f"outage-{name}-r{rep}"
        try:
            run = b.sim_run(wd, binary, 1, env, verbose=1, timeout=600, start_only=True,
                            extra_args=["--subscriber-queue-max", str(2 * n)])
            mem = b.MemSampler(exe=binary, ancestor=run.pid, interval=0.02)
            res = run.wait(900)
            mem.stop()
        finally:
            ctx.null.set_mode("null")
        s = res.summary or {}
        e = b.ext_summary(s)
        emf = b.read_emf("\n".join(l[len(f"[{b.EXT_NAME}] "):] for l in res.stderr.splitlines()
                                   if l.startswith(f"[{b.EXT_NAME}] {{"))) or {}
        if res.exit_code != 0 or e.get("exitCode") != 0 or not emf:
            ctx.problem(f"outage {name} rep {rep}: sim exit {res.exit_code}, extension exit {e.get('exitCode')}; {wd}")
            continue
        received = emf.get("EventsReceived", 0)
        if emf.get("DroppedBufferOverflow") or received < n:
            ctx.problem(f"outage {name} rep {rep}: {received} events received, "
                        f"{emf.get('DroppedBufferOverflow')} dropped for overflow")
        runs.append({"rep": rep, "peakRssKb": mem.hwm_kb, "eventsReceived": received,
                     "bytesReceived": emf.get("BytesReceived"), "putRecordsRefused": ctx.null.calls_down,
                     "droppedAtShutdown": emf.get("DroppedShutdownDeadline"),
                     "emfPeakRssKb": emf.get("PeakRssBytes", 0) // 1024})
        ctx.log(f"outage {name} rep {rep}: {received} events buffered, peak RSS {mem.hwm_kb / 1024:.1f} MiB")
    return {"binary": name, "events": n, "runs": runs,
            "summary": aggregate(runs, ["peakRssKb", "eventsReceived", "emfPeakRssKb"])}


# --------------------------------------------------------------------------
# shutdown drain of 10k pending events


def drain(ctx: Ctx, name: str, sink_name: str = "null", reps: Optional[int] = None) -> dict:
    binary = ctx.binaries[name]
    n = ctx.events_drain
    sink = ctx.null if sink_name == "null" else ctx.gate
    up_mode = "null" if sink_name == "null" else "pass"
    runs = []
    for rep in range(1, (reps or ctx.reps) + 1):
        stream = ctx.new_stream("drain") if sink_name == "kinesis-local" else "kte-bench"
        sink.reset_counts()
        sink.set_mode("down")
        env = h.kte_env(stream, sink.endpoint, FLUSH="periodic,900000", MAX_BUFFER_BYTES=256 * MiB,
                        LOG_LEVEL="info")
        env.update(LINES_PER_INVOKE=str(n), LINE_BYTES="100")
        wd = ctx.tmp / f"drain-{name}-{sink_name}-r{rep}"
        wd.mkdir(parents=True, exist_ok=True)
        tlog = wd / "telemetry.jsonl"
        watch = None
        try:
            run = b.sim_run(wd, binary, 1, env, verbose=1, idle_ms=100, timeout=300, start_only=True,
                            telemetry_log=tlog, extra_args=["--subscriber-queue-max", str(4 * n)])
            # the outage ends as soon as the extension says it got SHUTDOWN (it first
            # waits ~25 ms for the last platform.report, then flushes)
            watch = b.StderrWatch(run.stderr_path, "INFO SHUTDOWN (", lambda: sink.set_mode(up_mode))
            res = run.wait(900)
        finally:
            if watch:
                watch.stop()
            sink.set_mode(up_mode)
        if sink_name == "kinesis-local":
            ctx.drop_stream(stream)
        s = res.summary or {}
        e = b.ext_summary(s)
        emf = b.read_emf("\n".join(l[len(f"[{b.EXT_NAME}] "):] for l in res.stderr.splitlines()
                                   if l.startswith(f"[{b.EXT_NAME}] {{"))) or {}
        if res.exit_code != 0 or e.get("exitCode") != 0 or not emf or watch.seen_at is None:
            ctx.problem(f"drain {name}/{sink_name} rep {rep}: sim exit {res.exit_code}, extension exit "
                        f"{e.get('exitCode')}, SHUTDOWN seen: {watch.seen_at is not None}; {wd}")
            continue
        shut = e.get("shutdownMs")
        reports = [t for t in b.telemetry_log_times(tlog, b'"platform.report"') if shut and t >= shut - 1]
        after = [(t, mode) for t, mode, _ in sink.call_log if shut and t >= shut]
        first_ok = next((t for t, mode in after if mode != "down"), None)
        delivered_before = 0  # nothing gets through during the outage
        r = {"rep": rep, "shutdownToExitMs": e.get("shutdownToExitMs"),
             "outageEndAfterShutdownMs": watch.seen_at - shut if shut else None,
             # the telemetry log has millisecond timestamps: the report wait is +-1 ms
             "reportWaitMs": max(0.0, reports[0] - shut) if reports else None,
             "refusedAfterShutdown": sum(1 for _, mode in after if mode == "down"),
             "firstDeliveryAfterShutdownMs": first_ok - shut if first_ok else None,
             "eventsReceived": emf.get("EventsReceived"), "eventsDelivered": emf.get("EventsDelivered"),
             "droppedAtShutdown": emf.get("DroppedShutdownDeadline"),
             "putRecordsRefused": sink.calls_down, "pendingAtShutdown": emf.get("EventsReceived", 0) - delivered_before}
        if r["reportWaitMs"] is not None and r["shutdownToExitMs"] is not None:
            r["flushMs"] = r["shutdownToExitMs"] - r["reportWaitMs"]
        if sink_name == "null" and (emf.get("EventsDropped") or not sink.calls_down):
            ctx.problem(f"drain {name} rep {rep}: {emf.get('EventsDropped')} dropped, "
                        f"{sink.calls_down} refused calls; {wd}")
        runs.append(r)
        ctx.log(f"drain {name}/{sink_name} rep {rep}: {r['eventsReceived']} pending, SHUTDOWN to exit "
                f"{fmt_num(r['shutdownToExitMs'])} ms, delivered {r['eventsDelivered']}")
    return {"binary": name, "sink": sink_name, "events": n, "runs": runs,
            "summary": aggregate(runs, ["shutdownToExitMs", "reportWaitMs", "flushMs", "outageEndAfterShutdownMs",
                                        "eventsDelivered", "droppedAtShutdown", "firstDeliveryAfterShutdownMs",
                                        "refusedAfterShutdown"])}


# --------------------------------------------------------------------------
# throughput: the listener fed directly (ExtStub), null endpoint and kinesis-local


_bodies_cache: Dict[int, List[bytes]] = {}


def throughput(ctx: Ctx, name: str, sink_name: str) -> dict:
    binary = ctx.binaries[name]
    n = ctx.events_tp_null if sink_name == "null" else ctx.events_tp_kl
    sink = ctx.null if sink_name == "null" else ctx.gate
    bodies = _bodies_cache.get(n) or _bodies_cache.setdefault(n, b.telemetry_bodies(n, 100, "text"))
    runs = []
    for rep in range(1, ctx.reps + 1):
        stream = ctx.new_stream("tp") if sink_name == "kinesis-local" else "kte-bench"
        sink.reset_counts()
        env = h.kte_env(stream, sink.endpoint, MAX_BUFFER_BYTES=512 * MiB)
        wd = ctx.tmp / f"tp-{name}-{sink_name}-r{rep}"
        stub = b.ExtStub(binary, wd, env).start()
        try:
            uri = stub.wait_ready()
            mem = b.MemSampler(pid=stub.proc.pid, interval=0.05)
            t0 = time.monotonic()
            post = b.post_bodies(uri, bodies)
            t_acc = time.monotonic()
            # batches of 500 go out as they fill; n is a multiple of 500, so all of them do
            ok = sink.wait_records(n, timeout=600)
            t_del = time.monotonic()
            stub.shutdown(30.0)
            stub.wait_exit(60)
            mem.stop()
        finally:
            stub.stop()
        if sink_name == "kinesis-local":
            ctx.drop_stream(stream)
        emf = stub.emf or {}
        if not ok or stub.exit_code != 0 or post["statusCounts"].get(200) != len(bodies):
            ctx.problem(f"throughput {name}/{sink_name} rep {rep}: delivered {sink.records_ok}/{n}, "
                        f"exit {stub.exit_code}, POST statuses {post['statusCounts']}; {wd}")
            continue
        cpu = b.cpu_seconds(stub.rusage)
        r = {"rep": rep, "events": n, "posts": len(bodies),
             "acceptedPerS": n / (t_acc - t0), "deliveredPerS": n / (t_del - t0),
             "seconds": t_del - t0, "cpuS": cpu, "cpuUsPerEvent": cpu / n * 1e6,
             "peakRssKb": mem.hwm_kb, "initToFirstNextMs": stub.span("spawn", "firstNext"),
             "batches": emf.get("Batches"), "bytesDelivered": emf.get("BytesDelivered")}
        runs.append(r)
        ctx.log(f"throughput {name}/{sink_name} rep {rep}: {r['deliveredPerS']:.0f} events/s delivered, "
                f"{r['acceptedPerS']:.0f}/s accepted, CPU {r['cpuUsPerEvent']:.2f} µs/event")
    return {"binary": name, "sink": sink_name, "events": n, "runs": runs,
            "summary": aggregate(runs, ["acceptedPerS", "deliveredPerS", "cpuUsPerEvent", "peakRssKb", "seconds"])}


# --------------------------------------------------------------------------
# the report


def fmt_num(x, digits: Optional[int] = None) -> str:
    if x is None:
        return "-"
    if digits is None:
        ax = abs(x)
        digits = 0 if ax >= 100 else 1 if ax >= 10 else 2
    return f"{x:,.{digits}f}".replace(",", " ")


def fmt_mmm(m: Optional[dict], scale: float = 1.0, digits: Optional[int] = None) -> str:
    if not m:
        return "-"
    if m["n"] == 1:
        return fmt_num(m["median"] * scale, digits)
    return (f"{fmt_num(m['median'] * scale, digits)} "
            f"[{fmt_num(m['min'] * scale, digits)}–{fmt_num(m['max'] * scale, digits)}]")


def verdict(value: Optional[float], key: str) -> str:
    if value is None:
        return "-"
    target = TARGETS[key][0]
    return "met" if value < target else "not met"


def headline(R: dict) -> List[dict]:
    """The figures users choose by, each with its target where there is one."""
    rows = []

    def add(figure, binary, m, unit, scale=1.0, target_key=None, how=""):
        rows.append({"figure": figure, "binary": binary, "unit": unit, "how": how,
                     "median": None if not m else m["median"] * scale,
                     "min": None if not m else m["min"] * scale, "max": None if not m else m["max"] * scale,
                     "n": None if not m else m["n"],
                     "target": TARGETS[target_key][0] if target_key else None,
                     "targetText": TARGETS[target_key][2] if target_key else "",
                     "met": (None if not m else (m["median"] * scale < TARGETS[target_key][0]))
                     if target_key else None})

    for name, cs in R["coldStart"].items():
        add("Init: spawn to first /event/next", name, cs["summary"].get("initToFirstNextMs"), "ms",
            target_key="initMs", how="lambda-sim, 1 invoke")
        add("Init: exec to first /event/next", name, cs["summary"].get("execToFirstNextMs"), "ms")
    for name, cs in R["coldStart"].items():
        add("Peak RSS, light run (init + 1 invoke)", name, cs["summary"].get("peakRssKb"), "MiB", 1 / 1024,
            target_key="idleRssMiB", how="VmHWM")
        add("RSS while idle (frozen after the invoke)", name, cs["summary"].get("idleRssKb"), "MiB", 1 / 1024)
    for name, o in R["outage"].items():
        add(f"Peak RSS, {o['events'] // 1000}k events buffered (outage)", name, o["summary"].get("peakRssKb"),
            "MiB", 1 / 1024)
    for name, tp in R["throughput"].items():
        if "null" in tp:
            add("CPU per 100-byte event, listener to PutRecords", name, tp["null"]["summary"].get("cpuUsPerEvent"),
                "µs", target_key="cpuUsPerEvent", how="256 KiB POSTs, null endpoint")
    m = R["matrix"].get("null", [])
    for res in m:
        sc = res["scenario"]
        if (sc["logFormat"], sc["lineBytes"], sc["lines"], sc["flush"]) == ("text", 100, 1000, "end"):
            add("CPU per 100-byte event under lambda-sim (1000 lines/invoke)", "dev",
                res["summary"].get("cpuUsPerEventMarginal"), "µs", target_key="cpuUsPerEvent")
    for res in m:
        sc = res["scenario"]
        if (sc["logFormat"], sc["lineBytes"], sc["lines"]) == ("text", 100, 10):
            flush = "end" if sc["flush"] == "end" else sc["flush"]
            add(f"Added duration per invoke p50, flush {flush} (10 lines)", "dev", res["summary"].get("overheadP50Ms"),
                "ms", target_key="overheadP50Ms", how="null endpoint")
            add(f"Added duration per invoke p99, flush {flush} (10 lines)", "dev", res["summary"].get("overheadP99Ms"), "ms")
            if sc["flush"] == "end":
                add("  of which: waiting for platform.runtimeDone (p50)", "dev",
                    res["summary"].get("waitRuntimeDoneP50Ms"), "ms")
                add("  of which: flush + next (p50)", "dev", res["summary"].get("flushAndNextP50Ms"), "ms")
                add("CPU per invoke, 10 lines, flush end", "dev", res["summary"].get("cpuMsPerInvokeMarginal"), "ms")
    for res in R["matrix"].get("kinesis-local", []):
        sc = res["scenario"]
        if (sc["logFormat"], sc["lineBytes"], sc["lines"], sc["flush"]) == ("text", 100, 10, "end"):
            add("Added duration per invoke p50, flush end, kinesis-local", "dev", res["summary"].get("overheadP50Ms"), "ms",
                target_key="overheadP50Ms")
            add("Added duration per invoke p99, flush end, kinesis-local", "dev", res["summary"].get("overheadP99Ms"), "ms")
    for name, d in R["drain"].items():
        if "null" in d:
            add(f"Shutdown drain, {d['null']['events'] // 1000}k events pending (SHUTDOWN to exit)", name,
                d["null"]["summary"].get("shutdownToExitMs"), "ms", target_key="drainMs", how="null endpoint")
            add("  of which: waiting for the last platform.report", name, d["null"]["summary"].get("reportWaitMs"), "ms")
    for name, tp in R["throughput"].items():
        if "null" in tp:
            add("Events/s through the extension, null endpoint", name, tp["null"]["summary"].get("deliveredPerS"), "/s")
        if "kinesis-local" in tp:
            add("Events/s end to end, kinesis-local", name, tp["kinesis-local"]["summary"].get("deliveredPerS"), "/s")
    for name, per in (R.get("rules") or {}).get("binaries", {}).items():
        add("CPU added per 100-byte line, built-in redaction set (KTE_REDACT=all)", name,
            per["builtin"].get("addedUsPerLine"), "µs", target_key="rulesBuiltinUs",
            how="lambda-sim, kinesis-local, vs no rules")
        add("CPU added per 100-byte line, 10 custom regexes", name, per["custom10"].get("addedUsPerLine"), "µs")
    if R.get("kinesisLocalReference"):
        c = R["kinesisLocalReference"]
        rows.append({"figure": "kinesis-local fed by botocore PutRecords (500 × %d B), reference" % c["recordBytes"],
                     "binary": "-", "unit": "/s", "median": c["recordsPerS"], "min": None, "max": None, "n": 1,
                     "target": None, "targetText": "", "met": None, "how": ""})
    return rows


def render_markdown(R: dict) -> str:
    M = R["machine"]
    L = []
    L.append("# Benchmark results\n")
    L.append(f"Generated by `make bench` ({R['config']['reps']} repetitions"
             f"{', quick mode' if R['config']['quick'] else ''}) on {M['date']}: "
             f"{M['nproc']} × {M['cpuModel']}, {M['memTotalMiB']} MiB, Linux {M['kernel']} ({M['arch']}), "
             f"{M['os']}; load average at start {M['loadAvgAtStart'][0]}. Total {R['durationS'] / 60:.1f} min.\n")
    L.append("Figures are the median over the repetitions with [min–max]. `dev` is "
             "`build/kinesis-telemetry-extension` (glibc, Debian's shared libraries, RelWithDebInfo); "
             "`layer` is the binary of `build/layer-x86_64.zip` (static musl, -Os), what Lambda runs. "
             "Method and explanations: [README.md](README.md).\n")
    L.append("## Headline figures\n")
    L.append("| figure | binary | value | target |")
    L.append("|---|---|---|---|")
    for row in R["headline"]:
        if row["median"] is None:
            val = "-"
        elif row["n"] and row["n"] > 1 and row["min"] is not None:
            val = f"{fmt_num(row['median'])} [{fmt_num(row['min'])}–{fmt_num(row['max'])}] {row['unit']}"
        else:
            val = f"{fmt_num(row['median'])} {row['unit']}"
        tgt = ""
        if row["target"] is not None:
            tgt = f"< {fmt_num(row['target'])} {row['unit']}: **{'met' if row['met'] else 'not met'}**"
        L.append(f"| {row['figure']} | {row['binary']} | {val} | {tgt} |")
    L.append("")
    for sink, title in (("null", "null endpoint (answers every PutRecords at once)"),
                        ("kinesis-local", "kinesis-local (end to end)")):
        rows = R["matrix"].get(sink)
        if not rows:
            continue
        L.append(f"## Per-invoke cost under lambda-sim, {title}\n")
        L.append("Added duration per invoke = from the end of the runtime's response to the extension's "
                 "next `/event/next` (lambda-sim's `extensionOverheadMs`). *wait* = until the invoke's "
                 "`platform.runtimeDone` was delivered to the extension, *flush* = the rest (PutRecords "
                 "and the next call). CPU: the extension's user+system time, minus that of a 1-invoke run "
                 "(init, one invoke, shutdown), per further invoke and per further event received; "
                 "*CPU µs/event (all)* divides the whole life's CPU by all events.\n")
        L.append("| format | line | lines/invoke | flush | invokes | added p50 ms | added p99 ms | "
                 "wait p50 ms | flush p50 ms | CPU ms/invoke | CPU µs/event | CPU µs/event (all) | peak RSS MiB |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for res in rows:
            sc, sm = res["scenario"], res["summary"]
            L.append(f"| {sc['logFormat']} | {'100 B' if sc['lineBytes'] == 100 else '4 KB'} | {sc['lines']} | "
                     f"{sc['flush']} | {sc['invokes']}×{len(res['runs'])} | {fmt_mmm(sm['overheadP50Ms'])} | "
                     f"{fmt_mmm(sm['overheadP99Ms'])} | {fmt_mmm(sm['waitRuntimeDoneP50Ms'])} | "
                     f"{fmt_mmm(sm['flushAndNextP50Ms']) if sc['flush'] == 'end' else '-'} | "
                     f"{fmt_mmm(sm['cpuMsPerInvokeMarginal'])} | {fmt_mmm(sm['cpuUsPerEventMarginal'])} | "
                     f"{fmt_mmm(sm['cpuUsPerEvent'])} | {fmt_mmm(sm['vmHwmKb'], 1 / 1024)} |")
        L.append("")
    if R["throughput"]:
        L.append("## Throughput (listener fed directly, 256 KiB POSTs of 100-byte lines)\n")
        L.append("| binary | endpoint | events | accepted/s | delivered/s | CPU µs/event | peak RSS MiB |")
        L.append("|---|---|---|---|---|---|---|")
        for name, per in R["throughput"].items():
            for sink, t in per.items():
                sm = t["summary"]
                L.append(f"| {name} | {sink} | {t['events']} | {fmt_mmm(sm['acceptedPerS'])} | "
                         f"{fmt_mmm(sm['deliveredPerS'])} | {fmt_mmm(sm['cpuUsPerEvent'])} | "
                         f"{fmt_mmm(sm['peakRssKb'], 1 / 1024)} |")
        L.append("")
    if R["drain"]:
        L.append("## Shutdown drain\n")
        L.append("| binary | endpoint | pending | SHUTDOWN to exit ms | report wait ms | flush ms | delivered | dropped |")
        L.append("|---|---|---|---|---|---|---|---|")
        for name, per in R["drain"].items():
            for sink, d in per.items():
                sm = d["summary"]
                L.append(f"| {name} | {sink} | {d['events']} | {fmt_mmm(sm['shutdownToExitMs'])} | "
                         f"{fmt_mmm(sm['reportWaitMs'])} | {fmt_mmm(sm['flushMs'])} | "
                         f"{fmt_mmm(sm['eventsDelivered'], digits=0)} | {fmt_mmm(sm['droppedAtShutdown'], digits=0)} |")
        L.append("")
    if R.get("rules"):
        L.extend(bench_rules_sim.render(R["rules"]))
    if R["notes"] or R["problems"]:
        L.append("## Notes\n")
        for n in R["notes"]:
            L.append(f"* {n}")
        for p in R["problems"]:
            L.append(f"* PROBLEM: {p}")
        L.append("")
    return "\n".join(L)


def print_table(R: dict) -> None:
    print()
    print(f"kinesis-telemetry-extension benchmarks — {R['machine']['nproc']} × {R['machine']['cpuModel']}, "
          f"Linux {R['machine']['kernel']}, {R['machine']['date']}, {R['config']['reps']} repetitions")
    print("median [min–max]; targets are goals, not pass/fail")
    w = max(len(r["figure"]) for r in R["headline"]) + 2
    print(f"{'figure':<{w}} {'binary':<6} {'value':>30}   target")
    print("-" * (w + 60))
    for row in R["headline"]:
        if row["median"] is None:
            val = "-"
        elif row["n"] and row["n"] > 1 and row["min"] is not None:
            val = f"{fmt_num(row['median'])} [{fmt_num(row['min'])}–{fmt_num(row['max'])}] {row['unit']}"
        else:
            val = f"{fmt_num(row['median'])} {row['unit']}"
        tgt = ""
        if row["target"] is not None:
            tgt = f"< {fmt_num(row['target'])} {row['unit']}  {'met' if row['met'] else 'NOT MET'}"
        print(f"{row['figure']:<{w}} {row['binary']:<6} {val:>30}   {tgt}")
    print()


def main() -> int:
    ctx = Ctx()
    R: dict = {"machine": b.machine(), "config": {"reps": ctx.reps, "quick": ctx.quick,
                                                   "binaries": ctx.binaries, "idleMs": 50,
                                                   "bufferTimeoutMs": 25, "periodic": "periodic,1000"},
               "coldStart": {}, "outage": {}, "drain": {}, "throughput": {}, "matrix": {}}
    R["binarySizes"] = {k: os.path.getsize(v) for k, v in ctx.binaries.items()}
    ctx.log(f"{ctx.reps} repetitions; binaries: {', '.join(ctx.binaries)}; work dir {ctx.tmp}")
    try:
        for name in ctx.binaries:
            R["coldStart"][name] = cold_start(ctx, name)
        base = R["coldStart"]["dev"]["summary"]
        R["matrix"]["null"] = run_matrix(ctx, matrix_scenarios(ctx), "null", "sim/null", base)
        for name in ctx.binaries:
            R["outage"][name] = outage_rss(ctx, name)
            R["drain"][name] = {"null": drain(ctx, name, "null")}
            R["throughput"][name] = {"null": throughput(ctx, name, "null")}
        if ctx.start_kinesis_local():
            stream = ctx.new_stream("ceiling")
            R["kinesisLocalReference"] = b.kinesis_local_reference(ctx.kl, stream, 330, ctx.events_tp_kl)
            ctx.drop_stream(stream)
            ctx.log(f"kinesis-local with botocore: {R['kinesisLocalReference']['recordsPerS']:.0f} records/s")
            for name in ctx.binaries:
                R["throughput"][name]["kinesis-local"] = throughput(ctx, name, "kinesis-local")
            R["drain"]["dev"]["kinesis-local"] = drain(ctx, "dev", "kinesis-local", reps=1)
            R["matrix"]["kinesis-local"] = run_matrix(ctx, kinesis_local_scenarios(ctx), "kinesis-local",
                                                      "sim/kinesis-local", base)
            R["rules"] = bench_rules_sim.measure(ctx)
    except KeyboardInterrupt:
        ctx.problem("interrupted")
    finally:
        ctx.close()
    R["durationS"] = round(ctx.elapsed(), 1)
    R["notes"], R["problems"] = ctx.notes, ctx.problems
    R["headline"] = headline(R)
    (ctx.out / "results.json").write_text(json.dumps(R, indent=1, ensure_ascii=False) + "\n")
    md = render_markdown(R)
    (ctx.out / "results.md").write_text(md + "\n")
    chart = None
    try:
        chart = bench_chart.render(R, ctx.out)
    except Exception as e:
        ctx.notes.append(f"chart not drawn: {e}")
        print(f"[bench] chart not drawn: {e}", flush=True)
    print_table(R)
    publish = os.environ.get("KTE_BENCH_PUBLISH", "0" if ctx.quick else "1") != "0"
    if publish:
        docs = REPO / "docs" / "bench"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.out / "results.md", docs / "results.md")
        if chart:
            shutil.copyfile(chart, docs / "bench.svg")
    print(f"results: {ctx.out / 'results.json'}, {ctx.out / 'results.md'}"
          + (f", chart {chart}" if chart else "") + (" (copied to docs/bench/)" if publish else ""))
    if ctx.problems:
        print(f"run logs: {ctx.tmp}")
    else:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    for p in ctx.problems:
        print(f"PROBLEM: {p}")
    return 1 if ctx.problems else 0


if __name__ == "__main__":
    sys.exit(main())
