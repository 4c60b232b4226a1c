#!/usr/bin/python3
"""`bash scripts/bench.sh fleet`: many execution environments against the
per-shard limits of a 2-shard stream.

FLEET_ENVS (default 20) lambda-sim instances, each running the real binary,
write at once through a proxy that plays a 2-shard stream: a record goes to
the shard owning MD5(partition key) (lower or upper half of the 128-bit hash
key range, as CreateStream splits it), each shard takes at most 1,000 records
and 1 MiB (data + key) per second, and a record over the limit is answered
with ProvisionedThroughputExceededException, per record, as Kinesis does.
Stored records are not forwarded (kinesis-local cannot take this rate); the
proxy decodes them (every format) and keeps (environment, seq) and the
arrival time. Each environment replays a trace: FLEET_HEAVY_S (15) seconds of
invokes every 200 ms that together offer about 1.5 times what the shards
take, then FLEET_DRAIN_S (20) seconds of one small invoke a second while the
backlog drains. Per format: events/s sustained while the shards were
saturated and the share of their limits used, throttled records, retries
(RecordsRetried), delivery latency (event time to storage, p50/p99) and
losses (events received by the extensions but never stored).
FLEET_FORMATS=event,kpl,ndjson-4000: only those cases (format, or format-line bytes;
nothing published).

Writes build/bench/fleet.json and fleet.md (docs/bench/fleet.md unless
KTE_BENCH_PUBLISH=0).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_lib as b  # noqa: E402
from bench_lib import h, percentile  # noqa: E402

REPO = b.REPO
PTE = "ProvisionedThroughputExceededException"
_spec = importlib.util.spec_from_file_location("read_stream", REPO / "examples" / "consumer" / "read_stream.py")
consumer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(consumer)


class ShardLimitSink(b.BenchSink):
    RECORDS_PER_S = 1000
    BYTES_PER_S = 1024 * 1024

    def __init__(self):
        super().__init__(mode="null")
        self.reset_all()

    def reset_all(self):
        self.window = [int(time.time()), [0, 0], [0, 0]]  # second, records per shard, bytes per shard
        self.stored = {}  # (env, seq) -> arrival epoch s
        self.event_time = {}
        self.throttled = self.accepted = 0
        # per second: [cost stored per shard (shard-seconds, kte_pace's unit), records throttled per shard]
        self.seconds = {}

    def _shard(self, pk: str) -> int:
        return 0 if int.from_bytes(hashlib.md5(pk.encode()).digest(), "big") < 2 ** 127 else 1

    def _put_records(self, path, headers, body):
        cbor = h.request_is_cbor(headers)
        req = h.wire_loads(body, cbor)
        now = time.time()
        results = []
        with self.cond:
            sec = int(now)
            if sec != self.window[0]:
                self.window = [sec, [0, 0], [0, 0]]
            acct = self.seconds.setdefault(sec, [[0.0, 0.0], [0, 0]])
            for r in req["Records"]:
                data = h.record_data(r, cbor)
                size = len(data) + len(r["PartitionKey"].encode())
                s = self._shard(r["PartitionKey"])
                if (self.window[1][s] + 1 > self.RECORDS_PER_S
                        or self.window[2][s] + size > self.BYTES_PER_S):
                    self.throttled += 1
                    acct[1][s] += 1
                    results.append({"ErrorCode": PTE, "ErrorMessage": f"Rate exceeded for shard shardId-00000000000{s}"})
                    continue
                self.window[1][s] += 1
                self.window[2][s] += size
                acct[0][s] += max(1 / self.RECORDS_PER_S, size / self.BYTES_PER_S)
                self.accepted += 1
                for env in consumer.envelopes(data):
                    e = json.loads(env)
                    key = (e["environment"], e["seq"])
                    if key not in self.stored:
                        self.stored[key] = now
                        ev = e.get("event")
                        if isinstance(ev, dict) and isinstance(ev.get("time"), str):
                            self.event_time[key] = ev["time"]
                results.append({"SequenceNumber": "1", "ShardId": f"shardId-00000000000{s}"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        out = h.wire_dumps({"FailedRecordCount": failed, "Records": results}, cbor)
        return 200, out, h.wire_content_type(cbor)

    def saturation(self):
        """Per shard, the seconds from its first to its last with a throttled
        record (the shard was full; a shard whose writers never offered more
        than it takes is not a limit and does not count); what the shards
        stored in them as a share of their limits, and the events stored per
        second while any shard was saturated."""
        with self.cond:
            spans = []
            for s in (0, 1):
                hot = sorted(sec for sec, (_, thr) in self.seconds.items() if thr[s])
                if hot:
                    spans.append((s, hot[0], hot[-1]))
            if not spans:
                return None
            used = sum(self.seconds.get(sec, [[0, 0], [0, 0]])[0][s]
                       for s, a, z in spans for sec in range(a, z + 1))
            shard_seconds = sum(z - a + 1 for _, a, z in spans)
            first, last = min(a for _, a, _ in spans), max(z for _, _, z in spans)
            events = sum(1 for t in self.stored.values() if first <= int(t) <= last)
        return {"seconds": last - first + 1, "shards": len(spans), "utilisation": used / shard_seconds,
                "eventsPerS": events / (last - first + 1)}


def epoch(t: str) -> float:
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def fleet_trace(path: Path, lines: int, line_bytes: int, heavy_s: float, drain_s: float) -> Path:
    """An invoke every 200 ms with `lines` lines for heavy_s seconds, then one
    line a second for drain_s seconds: the environments live on while the
    backlog drains, as a fleet does after a burst."""
    steps = [{"idleMs": 0 if i == 0 else 195, "durationMs": 5, "lines": lines, "lineBytes": line_bytes}
             for i in range(int(heavy_s * 5))]
    steps += [{"idleMs": 995, "durationMs": 5, "lines": 1, "lineBytes": line_bytes} for _ in range(int(drain_s))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in steps))
    return path


def run_format(sink, case: dict, envs: int, heavy_s: float, drain_s: float, tmp: Path) -> dict:
    fmt, comp = case["format"], case["compression"]
    sink.reset_all()
    results = [None] * envs
    trace = fleet_trace(tmp / f"{fmt}-{comp}-{case['lineBytes']}.trace", case["lines"], case["lineBytes"], heavy_s,
                        drain_s)

    def one(i):
        env = h.kte_env("kte-fleet", sink.endpoint, RECORD_FORMAT=fmt, COMPRESSION=comp,
                        FLUSH="continuous,200", LOG_LEVEL=os.environ.get("FLEET_LOG_LEVEL"))
        env["LINE_PAD"] = case.get("pad", "x")
        wd = tmp / f"{fmt}-{comp}-{case['lineBytes']}-{i}"
        results[i] = h.run_sim(run_timeout=900, extensions=[h.EXTENSION], bootstrap=h.BOOTSTRAP,
                               env=env, workdir=wd, verbose=1, extra_args=["--trace", str(trace)])

    t0 = time.time()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(envs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    emfs = [h.emf_lines(r.stderr)[-1] if h.emf_lines(r.stderr) else {} for r in results]
    received = sum(m.get("EventsReceived", 0) for m in emfs)
    delivered = sum(m.get("EventsDelivered", 0) for m in emfs)
    retried = sum(m.get("RecordsRetried", 0) for m in emfs)
    dropped = {k: sum(m.get(k, 0) for m in emfs) for k in ("DroppedShutdownDeadline", "DroppedBufferOverflow",
                                                           "DroppedPermanentError")}
    stored = len(sink.stored)
    arrivals = sorted(sink.stored.values())
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else wall
    lat = [sink.stored[k] - epoch(t) for k, t in sink.event_time.items()]
    sat = sink.saturation()
    offered = envs * 5 * (case["lines"] + 3)  # + platform.start, runtimeDone, report per invoke
    return {**case, "environments": envs, "offeredEventsPerS": offered, "received": received,
            "delivered": delivered, "stored": stored, "lost": received - stored, "dropped": dropped,
            "eventsPerS": round(stored / span) if span > 0 else None, "wallS": round(wall, 1),
            "saturatedS": sat["seconds"] if sat else 0, "saturatedShards": sat["shards"] if sat else 0,
            "utilisation": round(sat["utilisation"], 3) if sat else None,
            "saturatedEventsPerS": round(sat["eventsPerS"]) if sat else None,
            "throttledRecords": sink.throttled, "acceptedRecords": sink.accepted, "retriedEvents": retried,
            "latencyP50S": round(percentile(lat, 50), 2) if lat else None,
            "latencyP99S": round(percentile(lat, 99), 2) if lat else None,
            "exitCodes": sorted({r.exit_code for r in results}),
            # per second: shard-seconds stored per shard, records throttled
            "perSecond": [[sec, [round(c, 3) for c in v[0]], v[1]] for sec, v in sorted(sink.seconds.items())]}


# Per format, lines per invoke (5 invokes/s per environment) and their size:
# enough that 20 environments offer more than the two shards take in the
# limit that binds the format (records for `event`, bytes for `kpl`), about
# 1.5 times. ndjson+zstd packs thousands of 100-byte lines into a record of a
# few KB: two shards would take about half a million such events per second,
# far more than this machine generates, so the limit is out of reach there
# and the run shows delivery without throttling; with 4 KB hex lines the
# bytes limit binds.
CASES = [
    {"format": "event", "compression": "none", "lines": 27, "lineBytes": 100},
    {"format": "kpl", "compression": "none", "lines": 20, "lineBytes": 1000},
    {"format": "ndjson", "compression": "zstd", "lines": 27, "lineBytes": 100},
    # hex lines (examples/function/bootstrap LINE_PAD=hex) that zstd only
    # halves: a compressed format against the bytes limit
    {"format": "ndjson", "compression": "zstd", "lines": 12, "lineBytes": 4000, "pad": "hex"},
]


def chart(runs, out: Path):
    """Per format, what the stream stored each second (shard-seconds, both
    shards together) against the two shards' limit, and the records it
    throttled: build/bench/fleet.svg."""
    gp = shutil.which("gnuplot")
    if not gp or not runs:
        return None
    plots = []
    for r in runs:
        dat = out / f"fleet-{r['format']}-{r['compression']}-{r['lineBytes']}.dat"
        t0 = r["perSecond"][0][0] if r["perSecond"] else 0
        with open(dat, "w") as f:
            for sec, cost, thr in r["perSecond"]:
                f.write(f"{sec - t0} {sum(cost):.4f} {sum(thr)}\n")
        plots.append((f"{r['format']}+{r['compression']}, {r['lineBytes']} B lines", dat))
    svg = out / "fleet.svg"
    lines = [f'set terminal svg size 1100,{300 * len(plots)} dynamic font "sans,11"', f'set output "{svg}"',
             f"set multiplot layout {len(plots)},1", "set grid", "set xlabel \"seconds\"",
             "set ylabel \"shard-seconds stored / s\"", "set y2label \"records throttled / s\"",
             "set ytics nomirror", "set y2tics", "set yrange [0:2.4]", "set key top right font \",9\""]
    for name, dat in plots:
        lines += [f'set title "{name}: stored per second against two shards\' limits (2.0)"',
                  f'plot "{dat}" using 1:2 with steps lw 2 title "stored", 2 with lines dt 2 lc rgb "red" '
                  f'title "limit", "{dat}" using 1:3 axes x1y2 with impulses lc rgb "gray" title "throttled"']
    lines.append("unset multiplot")
    (out / "fleet.gp").write_text("\n".join(lines) + "\n")
    subprocess.run([gp, str(out / "fleet.gp")], check=True)
    return svg


def main() -> int:
    envs = int(os.environ.get("FLEET_ENVS", "20"))
    heavy_s = float(os.environ.get("FLEET_HEAVY_S", "15"))
    drain_s = float(os.environ.get("FLEET_DRAIN_S", "20"))
    only = [f for f in os.environ.get("FLEET_FORMATS", "").split(",") if f]
    out = Path(os.environ.get("KTE_BENCH_OUT") or REPO / "build" / "bench")
    tmp = out / "fleet-runs"
    tmp.mkdir(parents=True, exist_ok=True)
    sink = ShardLimitSink().start()
    runs = []
    load0 = os.getloadavg()
    try:
        for case in CASES:
            if only and case["format"] not in only and f"{case['format']}-{case['lineBytes']}" not in only:
                continue
            r = run_format(sink, case, envs, heavy_s, drain_s, tmp)
            runs.append(r)
            print(f"[fleet] {r}", flush=True)
    finally:
        sink.stop()
    md = ["# Fleet against a 2-shard stream's limits (`bash scripts/bench.sh fleet`)", "",
          f"{envs} lambda-sim environments with the real binary (default wire protocol, "
          "`KTE_FLUSH=continuous,200`) write at once through a proxy that plays a 2-shard stream: "
          "1,000 records/s and 1 MiB/s per shard, ProvisionedThroughputExceededException per record over "
          f"them. Each environment invokes every 200 ms for {heavy_s:g} s (the fleet then offers about "
          "1.5 times what the shards take in the limit that binds the format), then once a second with one "
          f"line for {drain_s:g} s while the backlog drains, then shuts down.", "",
          f"Machine: {os.cpu_count()} CPUs, load average at the start {load0[0]:.2f}, at the end "
          f"{os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
          "Saturated: per shard, the seconds from its first to its last throttled record (a shard whose "
          "writers never offered more than it takes is no limit: records go to a shard by partition key, "
          "the environment's id by default, so the 20 environments rarely split 10/10). Use of the limits: "
          "what the saturated shards stored in those seconds, each record costing the larger of 1/1,000 of "
          "a shard-second (records) and its bytes / 1 MiB (bytes), over one shard-second per second each. "
          "Events / s while saturated: events stored from the first to the last saturated second.", "",
          "| format | line | events offered / s | events | stored | lost (dropped at shutdown) | saturated s (shards) "
          "| use of the limits | events / s while saturated | throttled records | retried events "
          "| latency p50 / p99 (s) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        use = f"{r['utilisation'] * 100:.1f}%" if r["utilisation"] is not None else "not reached"
        md.append(f"| {r['format']}+{r['compression']} | {r['lineBytes']} B{' hex' if r.get('pad') == 'hex' else ''} "
                  f"| {r['offeredEventsPerS']} "
                  f"| {r['received']} | {r['stored']} | {r['lost']} "
                  f"({r['dropped']['DroppedShutdownDeadline']}) | {r['saturatedS']} ({r['saturatedShards']}) | {use} | "
                  f"{r['saturatedEventsPerS'] if r['saturatedEventsPerS'] is not None else '–'} | "
                  f"{r['throttledRecords']} | {r['retriedEvents']} | "
                  f"{r['latencyP50S']} / {r['latencyP99S']} |")
    text = "\n".join(md) + "\n"
    (out / "fleet.json").write_text(json.dumps(runs, indent=1) + "\n")
    (out / "fleet.md").write_text(text)
    svg = None
    try:
        svg = chart(runs, out)
    except Exception as e:  # the figures stand without the chart
        print(f"fleet bench: no chart: {e}", file=sys.stderr)
    if os.environ.get("KTE_BENCH_PUBLISH", "1") != "0" and not only:
        (REPO / "docs" / "bench" / "fleet.md").write_text(text + ("\n![stored per second](fleet.svg)\n" if svg else ""))
        if svg:
            shutil.copy(svg, REPO / "docs" / "bench" / "fleet.svg")
    print(text)
    return 1 if any(r["lost"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
