#!/usr/bin/python3
"""`make bench` (cost part; also `bash scripts/bench.sh cost`): what each
KTE_RECORD_FORMAT and KTE_COMPRESSION costs in Kinesis and in CPU.

For 100-byte and 4 KB function lines, every format/compression pair runs the
real binary (dev build, and the layer binary when build/layer-<arch>.zip
exists) under the stub Extensions/Telemetry API of bench_lib, posting N
events and shutting down; a null Kinesis endpoint answers every PutRecords
with success and measures each record. Figures per million events:

  records       Kinesis records written
  units         PUT payload units: ceil((data + partition key) / 25,000) per
                record (25 KB units as the pricing page counts them)
  bytes/event   HTTP request body bytes sent per event (what SigV4 hashes)
  cpu µs/event  the extension's user + system CPU (whole process, start to
                exit, divided by N)

Every run uses the binary's default wire protocol (cbor in a build with
libcbor); each binary then runs a few formats again with
KTE_PROTOCOL=json and =cbor for the protocol table (request bytes are what
SigV4 hashes, CPU includes base64 for json).

The pairs of CPU_COMBOS (100-byte lines) then run 7 more times each (3 with
KTE_BENCH_QUICK=1), alternating the binaries, for the median CPU per event
that the issue's goal (at most 2 µs in the layer binary) is judged on.

Writes build/bench/cost.{json,md} (and docs/bench/cost.md unless
KTE_BENCH_PUBLISH=0). KTE_BENCH_QUICK=1: fewer events. Exits 1 only when
events were lost.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h  # noqa: E402

REPO = b.REPO
MiB = 1024 * 1024
UNIT = 25000
COMBOS = [("event", "none"), ("event", "gzip"), ("event", "zstd"), ("kpl", "none"),
          ("ndjson", "none"), ("ndjson", "gzip"), ("ndjson", "zstd")]
GOALS = {"kpl": 60, "ndjson+gzip": 200, "ndjson+zstd": 200}
# CPU per 100-byte event: the goal (issue 11) is at most 2 µs in the layer
# binary. One run varies by ±20% on a shared VM, so these pairs run REPEATS
# more times, alternating the binaries, and the table gives the median.
CPU_GOAL_US = 2.0
CPU_COMBOS = [("event", "none"), ("kpl", "none"), ("ndjson", "none"), ("ndjson", "zstd")]
# KTE_PROTOCOL json vs cbor (dev binary): per line size, the formats compared.
PROTOCOL_COMBOS = {100: [("event", "none"), ("kpl", "none"), ("ndjson", "zstd")], 4096: [("event", "none")]}


class CostSink(b.BenchSink):
    """Null endpoint that also measures every record."""

    def __init__(self):
        super().__init__(mode="null")
        self.records = self.units = self.body_bytes = self.data_bytes = 0

    def reset_counts(self) -> None:
        super().reset_counts()
        with self.cond:
            self.records = self.units = self.body_bytes = self.data_bytes = 0

    def _put_records(self, path, headers, body):
        cbor = h.request_is_cbor(headers)
        req = h.wire_loads(body, cbor)
        units = nbytes = 0
        for r in req["Records"]:
            size = len(h.record_data(r, cbor)) + len(r["PartitionKey"].encode())
            nbytes += size
            units += max(1, math.ceil(size / UNIT))
        with self.cond:
            self.records += len(req["Records"])
            self.units += units
            self.body_bytes += len(body)
            self.data_bytes += nbytes
        return super()._put_records(path, headers, body)


def binaries(out: Path) -> dict:
    bins = {"dev": str(h.EXTENSION)}
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine())
    z = REPO / "build" / f"layer-{arch}.zip"
    if arch and z.is_file() and os.environ.get("KTE_BENCH_LAYER", "1") != "0":
        dest = out / "layer-cost"
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / b.EXT_NAME
        with zipfile.ZipFile(z) as zf:
            target.write_bytes(zf.read("extensions/" + b.EXT_NAME))
        target.chmod(0o755)
        bins["layer"] = str(target)
    return bins


def run_one(sink: CostSink, binary: str, tmp: Path, fmt: str, comp: str, line: int, bodies,
            protocol: str = None) -> dict:
    n = sum(body.count(b'"type":"function"') for body in bodies)
    sink.reset_counts()
    env = h.kte_env("kte-bench", sink.endpoint, MAX_BUFFER_BYTES=512 * MiB, RECORD_FORMAT=fmt,
                    COMPRESSION=comp, PROTOCOL=protocol)
    tag = f"{Path(binary).parent.name}-{fmt}-{comp}-{line}-{protocol or 'default'}"
    stub = b.ExtStub(binary, tmp / tag, env).start()
    try:
        uri = stub.wait_ready()
        post = b.post_bodies(uri, bodies)
        stub.shutdown(30.0)
        stub.wait_exit(120)
    finally:
        stub.stop()
    emf = stub.emf or {}
    cpu = b.cpu_seconds(stub.rusage) or 0.0
    delivered = emf.get("EventsDelivered")
    per_m = 1e6 / n
    return {"format": fmt, "compression": comp, "protocol": protocol or "default", "lineBytes": line, "events": n,
            "delivered": delivered, "lost": n - (delivered or 0), "exit": stub.exit_code,
            "posts": post["statusCounts"], "records": sink.records, "units": sink.units,
            "recordsPerM": round(sink.records * per_m), "unitsPerM": round(sink.units * per_m),
            "bodyBytesPerEvent": round(sink.body_bytes / n, 1), "dataBytesPerEvent": round(sink.data_bytes / n, 1),
            "cpuUsPerEvent": round(cpu / n * 1e6, 3)}


def render(R: dict) -> str:
    out = ["# Cost per format and compression (`make bench`)", "",
           f"{R['events'][str(100)]} events of 100-byte lines, {R['events'][str(4096)]} of 4 KB lines, "
           "posted to the real binary, null Kinesis endpoint. Units: 25,000-byte PUT payload units "
           "(data + key). CPU: the whole process, start to exit, per event. Reduction: `event`'s units "
           "divided by the row's.", ""]
    for line in (100, 4096):
        out += [f"## {line}-byte lines", "",
                "| format | compression | records / M events | PUT units / M events | units reduction | "
                "request bytes / event | CPU µs / event (dev) | CPU µs / event (layer) |",
                "|---|---|---|---|---|---|---|---|"]
        rows = [r for r in R["runs"] if r["lineBytes"] == line and r["protocol"] == "default" and not r.get("repeat")]
        base = {r["binary"]: r["unitsPerM"] for r in rows if r["format"] == "event" and r["compression"] == "none"}
        for fmt, comp in COMBOS:
            got = {r["binary"]: r for r in rows if r["format"] == fmt and r["compression"] == comp}
            d = got.get("dev")
            if not d:
                continue
            lay = got.get("layer")
            red = base.get("dev", 0) / d["unitsPerM"] if d["unitsPerM"] else 0
            goal = GOALS.get(fmt if comp == "none" else f"{fmt}+{comp}")
            mark = f" (goal ≥ {goal}×: {'met' if red >= goal else 'not met'})" if goal and line == 100 else ""
            out.append(f"| {fmt} | {comp} | {d['recordsPerM']:,} | {d['unitsPerM']:,} | {red:.0f}×{mark} | "
                       f"{d['bodyBytesPerEvent']} | {d['cpuUsPerEvent']} | "
                       f"{lay['cpuUsPerEvent'] if lay else '–'} |")
        out.append("")
    out += ["## Wire protocol (`KTE_PROTOCOL`)", "",
            "Request body bytes per event (what SigV4 hashes and the network carries) and the "
            "process's CPU per event, json against cbor, for the dev build and the layer binary; "
            "saving = 1 − cbor / json.", "",
            "| line | format | compression | binary | bytes / event json | cbor | saving | CPU µs / event json "
            "| cbor | saving |", "|---|---|---|---|---|---|---|---|---|---|"]
    for line, combos in PROTOCOL_COMBOS.items():
        for fmt, comp in combos:
            for binary in ("dev", "layer"):
                got = {r["protocol"]: r for r in R["runs"] if r["lineBytes"] == line and r["format"] == fmt
                       and r["compression"] == comp and r["binary"] == binary}
                j, c = got.get("json"), got.get("cbor")
                if not j or not c:
                    continue
                bs = 1 - c["bodyBytesPerEvent"] / j["bodyBytesPerEvent"] if j["bodyBytesPerEvent"] else 0
                cs = 1 - c["cpuUsPerEvent"] / j["cpuUsPerEvent"] if j["cpuUsPerEvent"] else 0
                out.append(f"| {line} | {fmt} | {comp} | {binary} | {j['bodyBytesPerEvent']} | "
                           f"{c['bodyBytesPerEvent']} | {bs:.0%} | {j['cpuUsPerEvent']} | {c['cpuUsPerEvent']} | "
                           f"{cs:.0%} |")
    out.append("")
    rep = [r for r in R["runs"] if r.get("repeat")]
    if rep:
        out += ["## CPU per 100-byte event, repeated (goal: at most "
                f"{CPU_GOAL_US:g} µs in the layer binary)", "",
                f"Each pair ran {R['repeats']} more times, the binaries alternating; median, lowest and highest "
                "of those runs. Load average at the start and end of the bench: "
                f"{R.get('loadStart', '?')} / {R.get('loadEnd', '?')}.", "",
                "| format | compression | binary | median µs / event | lowest | highest | goal |",
                "|---|---|---|---|---|---|---|"]
        for fmt, comp in CPU_COMBOS:
            for binary in ("dev", "layer"):
                v = sorted(r["cpuUsPerEvent"] for r in rep if r["format"] == fmt and r["compression"] == comp
                           and r["binary"] == binary)
                if not v:
                    continue
                med = v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
                goal = ("met" if med <= CPU_GOAL_US else "not met") if binary == "layer" else ""
                out.append(f"| {fmt} | {comp} | {binary} | {med:.2f} | {v[0]:.2f} | {v[-1]:.2f} | {goal} |")
        out.append("")
    if R["problems"]:
        out += ["Problems:", ""] + [f"- {p}" for p in R["problems"]]
    return "\n".join(out)


def main() -> int:
    quick = os.environ.get("KTE_BENCH_QUICK") == "1"
    out = Path(os.environ.get("KTE_BENCH_OUT") or REPO / "build" / "bench")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="kte-bench-cost-"))
    events = {100: 20000 if quick else 100000, 4096: 5000 if quick else 20000}
    bins = binaries(out)
    sink = CostSink().start()
    repeats = 3 if quick else 7
    R = {"machine": b.machine(), "binaries": bins, "events": {str(k): v for k, v in events.items()},
         "runs": [], "problems": [], "repeats": repeats,
         "loadStart": " ".join(f"{x:.2f}" for x in os.getloadavg())}

    def run(name: str, fmt: str, comp: str, line: int, bodies, proto: str = None, repeat: int = None) -> None:
        r = run_one(sink, bins[name], tmp, fmt, comp, line, bodies, proto)
        r["binary"] = name
        label = f"{name} {line}B {fmt}/{comp}" + (f" {proto}" if proto else "")
        if repeat:
            r["repeat"] = repeat
            label = f"repeat {repeat}/{repeats} {label}"
        R["runs"].append(r)
        print(f"[cost] {label}: {r['recordsPerM']} records/M, {r['unitsPerM']} units/M, "
              f"{r['bodyBytesPerEvent']} B/event, {r['cpuUsPerEvent']} µs/event, lost {r['lost']}", flush=True)
        if r["lost"] or r["exit"] != 0:
            R["problems"].append(f"{label}: lost {r['lost']}, exit {r['exit']}")

    try:
        bodies = {line: b.telemetry_bodies(n, line, "text") for line, n in events.items()}
        for line in events:
            for name in bins:
                for fmt, comp in COMBOS:
                    run(name, fmt, comp, line, bodies[line])
            for name in bins:
                for fmt, comp in PROTOCOL_COMBOS[line]:
                    for proto in ("json", "cbor"):
                        run(name, fmt, comp, line, bodies[line], proto)
        for i in range(repeats):
            for fmt, comp in CPU_COMBOS:
                for name in bins:
                    run(name, fmt, comp, 100, bodies[100], repeat=i + 1)
        R["loadEnd"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    finally:
        sink.stop()
    (out / "cost.json").write_text(json.dumps(R, indent=1) + "\n")
    md = render(R)
    (out / "cost.md").write_text(md + "\n")
    if os.environ.get("KTE_BENCH_PUBLISH", "0" if quick else "1") != "0":
        (REPO / "docs" / "bench").mkdir(parents=True, exist_ok=True)
        (REPO / "docs" / "bench" / "cost.md").write_text(md + "\n")
    print(md)
    return 1 if R["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
