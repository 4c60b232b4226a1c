"""Running an invocation trace under lambda-sim and measuring what a flush
strategy costs and delivers: shared by the flush bench (bench_flush.py) and
the end-to-end tests (tests/flush/).

Where each figure comes from (docs/flush.md, "How it is measured"):

* added duration per invoke: lambda-sim's extensionOverheadMs, from the end
  of the runtime's response (its next) to the moment every extension called
  next: what Lambda bills beyond the handler. Billed ms added per invoke:
  ceil(durationMs) - ceil(durationMs - extensionOverheadMs) (1 ms billing).
* delivery latency of an event: from its "time" (set by lambda-sim when it
  emitted the event) to the PutRecords answer that stored it, stamped by
  RecordingSink, a proxy in front of kinesis-local. A freeze between the two
  counts at its nominal length (--time-scale compresses it): latency +=
  nominalMs - real freeze. platform.report is left out: Lambda emits it after
  the extensions called next, so it always waits for the next thaw.
* bounded latency: the largest latency among events that did not wait
  through a freeze longer than KTE_MAX_LATENCY_MS (those are the exception
  the bound allows: the idle after their invoke could not be predicted).
* buffered at a freeze: events whose time is before the freeze began and
  which reached Kinesis only after it ended; "in the extension" are those
  the sim had already handed to the extension (seq <= the sim's delivered
  count at the freeze; the extension numbers events in the order received),
  the rest were still in the Telemetry API's buffer.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(HERE))

import harness as h  # noqa: E402
import bench_lib as b  # noqa: E402

TRACES = HERE / "traces"
EXT = b.EXT_NAME
# Idle shorter than this is not compressed; longer idles last idle/scale but
# at least this long: above KTE_MAX_LATENCY_MS's default (2000 ms), so that
# the extension sees a long idle as long (docs/flush.md).
TIME_SCALE = 1000
MIN_IDLE_MS = 2500
STRATEGIES = ["end", "periodic,1000", "continuous,1000", "adaptive", "x-datadog"]


def load_trace(name: str, limit: Optional[int] = None) -> List[dict]:
    steps = [json.loads(l) for l in open(TRACES / f"{name}.jsonl") if l.strip() and not l.startswith("#")]
    return steps[:limit] if limit else steps


def write_trace(steps: List[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(s) + "\n" for s in steps))
    return path


def iso_ms(t: str) -> float:
    return _dt.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=_dt.timezone.utc).timestamp() * 1000.0


class RecordingSink(b.BenchSink):
    """BenchSink ("pass" to kinesis-local, or "null") that stamps every stored
    record with the moments its PutRecords arrived and was answered."""

    def __init__(self, upstream: str = "http://127.0.0.1:9", mode: str = "pass"):
        super().__init__(upstream, mode=mode)
        self.arrivals: List[dict] = []

    def clear(self) -> None:
        with self.cond:
            self.arrivals = []
        self.reset_counts()

    def _put_records(self, path, headers, body):
        received = b.epoch_ms()
        status, out, ctype = super()._put_records(path, headers, body)
        t = b.epoch_ms()
        if status != 200:
            return status, out, ctype
        cbor = h.request_is_cbor(headers)
        try:
            sent = h.wire_loads(body, cbor)["Records"]
            got = h.wire_loads(out, cbor)["Records"]
        except (ValueError, KeyError, TypeError, h.cbor2.CBORDecodeError):
            return status, out, ctype
        rows = []
        for rec, res in zip(sent, got):
            if res.get("ErrorCode"):
                continue
            env = json.loads(h.record_data(rec, cbor))
            ev = env.get("event") if isinstance(env.get("event"), dict) else {}
            rows.append({"at": t, "received": received, "seq": env.get("seq"), "type": ev.get("type"),
                         "time": ev.get("time")})
        with self.cond:
            self.arrivals.extend(rows)
        return status, out, ctype


def percentile(v, p):
    return b.percentile(v, p)


def run_trace(sink: RecordingSink, kl, binary: str, steps: List[dict], strategy: str, workdir: Path,
              extra_env: Optional[Dict[str, str]] = None, stream: Optional[str] = None) -> dict:
    """One lambda-sim run of a trace with KTE_FLUSH=strategy (None: unset, the
    default); raw results."""
    workdir.mkdir(parents=True, exist_ok=True)
    trace = write_trace(steps, workdir / "trace.jsonl")
    stream = stream or h.unique_stream_name("flush")
    kl.create_stream(stream)
    sink.clear()
    env = h.kte_env(stream, sink.endpoint, FLUSH=strategy, BUFFER_TIMEOUT_MS=25, **(extra_env or {}))
    load_before = os.getloadavg()
    tlog = workdir / "telemetry.log"
    run = b.sim_run(workdir, binary, len(steps), env, verbose=1, timeout=30, telemetry_log=tlog,
                    extra_args=["--trace", str(trace), "--time-scale", str(TIME_SCALE),
                                "--min-idle-ms", str(MIN_IDLE_MS), "--idle-ms", "3000",
                                "--subscriber-queue-max", "100000"],
                    run_timeout=1800)
    emf = h.emf_lines(run.stderr)
    return {"strategy": strategy or "default", "result": run, "summary": run.summary or {}, "emf": emf[-1] if emf else {},
            "arrivals": list(sink.arrivals), "stream": stream, "load": [load_before, os.getloadavg()]}


def analyse(raw: dict, max_latency_ms: float = 2000) -> dict:
    """Figures of one run (see the module doc)."""
    s = raw["summary"]
    invs = s.get("invokes") or []
    freezes = s.get("freezes") or []
    over = [i["extensionOverheadMs"] for i in invs]
    billed = [math.ceil(i["durationMs"]) - math.ceil(max(0.0, i["durationMs"] - i["extensionOverheadMs"]))
              for i in invs]
    arrivals = [a for a in raw["arrivals"] if a["type"] not in (None, "kte.dropped")]
    seqs = [a["seq"] for a in arrivals]
    # What EventsDeliveredAfterFreeze counts, from the outside: events the
    # extension had received when a freeze longer than the latency bound began
    # (the extension sees only the real length of a freeze: with time
    # compression a nominal idle shorter than the bound runs at its length)
    # (seq within what the sim had handed it) whose PutRecords reached the
    # proxy after that freeze ended, platform.report included, each at its
    # first such freeze. A request already on its way when the freeze began
    # is stored during the freeze: its events did not wait for the thaw.
    long_freezes = [f for f in freezes if f["endMs"] - f["startMs"] > max_latency_ms]
    ext_held = 0
    for a in arrivals:
        for f in long_freezes:
            if a["seq"] <= (f.get("deliveredBefore") or {}).get(EXT, 0) and a["received"] >= f["endMs"]:
                ext_held += 1
                break
            if a["at"] < f["startMs"]:
                break
    lat, held, held_ext, held_wait, held_long, bounded = [], 0, 0, [], 0, []
    for a in arrivals:
        if a["type"] == "platform.report" or not a["time"]:
            continue
        t0 = iso_ms(a["time"])
        extra = sum(f["nominalMs"] - (f["endMs"] - f["startMs"]) for f in freezes
                    if f["startMs"] >= t0 and f["endMs"] <= a["at"])
        latency = a["at"] - t0 + extra
        lat.append(latency)
        spanned = [f for f in freezes if t0 < f["startMs"] and a["at"] > f["endMs"]]
        long_freeze = any(f["nominalMs"] > max_latency_ms for f in spanned)
        if spanned:
            held += 1
            held_wait.append(latency)
            held_long += long_freeze
            if a["seq"] <= (spanned[0].get("deliveredBefore") or {}).get(EXT, 0):
                held_ext += 1
        if not long_freeze:
            bounded.append(latency)
    sub = (s.get("subscribers") or {}).get(EXT) or {}
    n = len(invs)
    return {
        "strategy": raw["strategy"], "invokes": n,
        "addedP50Ms": percentile(over, 50), "addedP99Ms": percentile(over, 99),
        "billedMsPer1000": sum(billed) * 1000.0 / n if n else None,
        "latencyP50Ms": percentile(lat, 50), "latencyP99Ms": percentile(lat, 99),
        "latencyMaxMs": max(lat) if lat else None,
        "boundedMaxMs": max(bounded) if bounded else None,
        "heldAtFreeze": held, "heldInExtension": held_ext, "heldOverLongFreeze": held_long,
        "heldWaitP50Ms": percentile(held_wait, 50), "heldWaitMaxMs": max(held_wait) if held_wait else None,
        "eventsDeliveredAfterFreeze": raw["emf"].get("EventsDeliveredAfterFreeze"),
        "heldAcrossFreezeSeenBySink": ext_held,
        "simDelivered": sub.get("delivered"), "received": raw["emf"].get("EventsReceived"),
        "delivered": raw["emf"].get("EventsDelivered"), "dropped": raw["emf"].get("EventsDropped"),
        "stored": len(set(seqs)), "duplicates": len(seqs) - len(set(seqs)),
        "statuses": sorted({i.get("status") for i in invs}),
        "simExit": raw["result"].exit_code,
        "load1": [round(raw["load"][0][0], 2), round(raw["load"][1][0], 2)],
    }
