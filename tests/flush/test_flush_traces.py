"""End to end (issue 12): invocation traces under lambda-sim against
kinesis-local with the default flush strategy (adaptive), every event
delivered and counted exactly. Timing goals live in `make bench`
(tests/bench/bench_flush.py), not here: these assert counts and where the
events were when the environment froze.

sparse: each invoke's events reach Kinesis before the environment freezes
(nothing held at a freeze, EventsDeliveredAfterFreeze 0), as with
KTE_FLUSH=end. A control run with continuous,1000 shows the measurement
sees events held at a freeze when there are some.
busy: 50 invokes/s, the adaptive mode stops waiting for runtimeDone; every
event is still delivered exactly once, with exact per-type counts.
"""
from collections import Counter

import pytest

import flush_lib as fl
import harness as h


def run(recording_sink, kinesis_local, extension_bin, tmp_path, trace, limit, strategy=None):
    """strategy None: KTE_FLUSH unset, i.e. the default (adaptive). A generous
    KTE_FLUSH_TIMEOUT_MS: a loaded machine can stall kinesis-local for a
    second or two, and these tests are about where events are, not speed."""
    steps = fl.load_trace(trace, limit)
    raw = fl.run_trace(recording_sink, kinesis_local, str(extension_bin), steps, strategy,
                       tmp_path / "run", extra_env={"FLUSH_TIMEOUT_MS": "10000"})
    return steps, raw, fl.analyse(raw)


def check_exact(steps, raw, r, kinesis_local):
    res = raw["result"]
    assert res.exit_code == 0, res.describe()
    invs = raw["summary"]["invokes"]
    assert len(invs) == len(steps) and all(i["status"] == "success" for i in invs), res.describe()
    emf = raw["emf"]
    assert emf, res.describe()
    # received from the sim == delivered == stored in the stream, none dropped, no duplicate
    stored = kinesis_local.read_all(raw["stream"])
    envs = [h.parse_envelope(rec) for rec in stored]
    seqs = [e["seq"] for e in envs]
    sim_delivered = raw["summary"]["subscribers"][fl.EXT]["delivered"]
    assert emf["EventsReceived"] == sim_delivered == emf["EventsDelivered"] == len(stored), \
        (emf, sim_delivered, len(stored))
    assert emf["EventsDropped"] == 0
    assert sorted(seqs) == list(range(1, len(stored) + 1))
    assert r["stored"] == len(stored) and r["duplicates"] == 0
    # per type: one start, runtimeDone and report per invoke, every log line of the trace
    types = Counter(e["event"]["type"] for e in envs)
    n = len(steps)
    assert types["platform.start"] == types["platform.runtimeDone"] == types["platform.report"] == n, types
    assert types["function"] == sum(s.get("lines", 0) for s in steps), types
    lines = Counter(e["event"]["record"] for e in envs if e["event"]["type"] == "function")
    assert all(c == 1 for c in lines.values())
    for i, s in enumerate(steps, 1):
        got = [l for l in lines if f" inv={i} " in l]
        assert len(got) == s.get("lines", 0), (i, got)
        assert all(len(l.encode()) == s["lineBytes"] for l in got), (i, got)
    return emf


def test_sparse_trace_delivers_every_invoke_before_its_freeze(recording_sink, kinesis_local,
                                                               extension_bin, tmp_path):
    steps, raw, r = run(recording_sink, kinesis_local, extension_bin, tmp_path, "sparse", 4)
    emf = check_exact(steps, raw, r, kinesis_local)
    # every freeze here is long (compressed 30 s ... 10 min, at least 2.5 s)
    assert all(f["nominalMs"] >= 2500 for f in raw["summary"]["freezes"])
    assert r["heldAtFreeze"] == 0, r
    assert emf["EventsDeliveredAfterFreeze"] == 0, emf


def test_sparse_trace_control_continuous_leaves_events_at_the_freeze(recording_sink, kinesis_local,
                                                                      extension_bin, tmp_path):
    """The measurement above can fail: continuous,1000 calls next at once, so
    the invoke's own events are still buffered when the environment freezes."""
    steps, raw, r = run(recording_sink, kinesis_local, extension_bin, tmp_path, "sparse", 4,
                        strategy="continuous,1000")
    emf = check_exact(steps, raw, r, kinesis_local)
    assert r["heldAtFreeze"] > 0, r
    assert emf["EventsDeliveredAfterFreeze"] > 0, emf


def test_busy_trace_every_event_delivered_exactly_once(recording_sink, kinesis_local, extension_bin,
                                                       tmp_path):
    steps, raw, r = run(recording_sink, kinesis_local, extension_bin, tmp_path, "busy", 200)
    emf = check_exact(steps, raw, r, kinesis_local)
    assert "EventsDeliveredAfterFreeze" in emf
