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
arrival time. Per format: events/s sustained, throttled records, retries
(RecordsRetried), delivery latency (event time to storage, p50/p99) and
losses (events received by the extensions but never stored).

Writes build/bench/fleet.json and fleet.md (docs/bench/fleet.md unless
KTE_BENCH_PUBLISH=0).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import os
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
            for r in req["Records"]:
                data = h.record_data(r, cbor)
                size = len(data) + len(r["PartitionKey"].encode())
                s = self._shard(r["PartitionKey"])
                if (self.window[1][s] + 1 > self.RECORDS_PER_S
                        or self.window[2][s] + size > self.BYTES_PER_S):
                    self.throttled += 1
                    results.append({"ErrorCode": PTE, "ErrorMessage": f"Rate exceeded for shard shardId-00000000000{s}"})
                    continue
                self.window[1][s] += 1
                self.window[2][s] += size
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


def epoch(t: str) -> float:
    return datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def run_format(sink, fmt, comp, envs, invokes, lines, idle_ms, tmp: Path) -> dict:
    sink.reset_all()
    results = [None] * envs

    def one(i):
        env = h.kte_env("kte-fleet", sink.endpoint, RECORD_FORMAT=fmt, COMPRESSION=comp,
                        FLUSH="continuous,200")
        env["LINES_PER_INVOKE"] = str(lines)
        env["LINE_BYTES"] = "100"
        wd = tmp / f"{fmt}-{comp}-{i}"
        results[i] = h.run_sim(run_timeout=900, extensions=[h.EXTENSION], bootstrap=h.BOOTSTRAP,
                               invokes=invokes, idle_ms=idle_ms, env=env, workdir=wd, verbose=1)

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
    return {"format": fmt, "compression": comp, "environments": envs, "received": received,
            "delivered": delivered, "stored": stored, "lost": received - stored, "dropped": dropped,
            "eventsPerS": round(stored / span) if span > 0 else None, "wallS": round(wall, 1),
            "throttledRecords": sink.throttled, "acceptedRecords": sink.accepted, "retriedEvents": retried,
            "latencyP50S": round(percentile(lat, 50), 2) if lat else None,
            "latencyP99S": round(percentile(lat, 99), 2) if lat else None,
            "exitCodes": sorted({r.exit_code for r in results})}


def main() -> int:
    envs = int(os.environ.get("FLEET_ENVS", "20"))
    invokes = int(os.environ.get("FLEET_INVOKES", "20"))
    lines = int(os.environ.get("FLEET_LINES", "200"))
    # Invokes paced so that the fleet offers about what two shards take
    # (2,000 records/s): environments live long enough to drain.
    idle_ms = int(os.environ.get("FLEET_IDLE_MS", "2000"))
    out = Path(os.environ.get("KTE_BENCH_OUT") or REPO / "build" / "bench")
    tmp = out / "fleet-runs"
    tmp.mkdir(parents=True, exist_ok=True)
    sink = ShardLimitSink().start()
    runs = []
    try:
        for fmt, comp in [("event", "none"), ("kpl", "none"), ("ndjson", "zstd")]:
            r = run_format(sink, fmt, comp, envs, invokes, lines, idle_ms, tmp)
            runs.append(r)
            print(f"[fleet] {r}", flush=True)
    finally:
        sink.stop()
    md = ["# Fleet against a 2-shard stream's limits (`bash scripts/bench.sh fleet`)", "",
          f"{envs} lambda-sim environments with the real binary, {invokes} invokes × {lines} lines of 100 B each, "
          f"{idle_ms} ms between invokes, "
          "`KTE_FLUSH=continuous,200`; proxy enforcing 1,000 records/s and 1 MiB/s per shard "
          "(ProvisionedThroughputExceededException per record).", "",
          "| format | events | stored | lost (dropped at shutdown) | events/s | throttled records | retried events | "
          "latency p50 / p99 (s) |",
          "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        md.append(f"| {r['format']}+{r['compression']} | {r['received']} | {r['stored']} | {r['lost']} "
                  f"({r['dropped']['DroppedShutdownDeadline']}) | "
                  f"{r['eventsPerS']} | {r['throttledRecords']} | {r['retriedEvents']} | "
                  f"{r['latencyP50S']} / {r['latencyP99S']} |")
    text = "\n".join(md) + "\n"
    (out / "fleet.json").write_text(json.dumps(runs, indent=1) + "\n")
    (out / "fleet.md").write_text(text)
    if os.environ.get("KTE_BENCH_PUBLISH", "1") != "0":
        (REPO / "docs" / "bench" / "fleet.md").write_text(text)
    print(text)
    return 1 if any(r["lost"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
