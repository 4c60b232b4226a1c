"""Pacing under throttling (src/kte_pace.h): the real binary under lambda-sim,
writing through the fault proxy playing one shard with a low per-second
limit. A burst far over the limit, then quiet invokes while it drains.

Every event is delivered exactly once, and the extension offers the shard
about what it takes: the records it has refused stay a fraction of the
events. Before pacing, every throttled record came back within 25 ms (a
call that stored some records counts as progress), so a backlog of 1,600
events against 200 records/s drew thousands of refusals (measured below).
"""

from __future__ import annotations

import json

import pytest

import faultlib
import harness

PTE = "ProvisionedThroughputExceededException"
LIMIT = 200  # records per second
BURST = [400, 400, 400, 400]  # lines of the first invokes, 200 ms apart
QUIET = 12  # then one line a second while the backlog drains


def write_trace(path):
    steps = [{"idleMs": 0 if i == 0 else 195, "durationMs": 5, "lines": n} for i, n in enumerate(BURST)]
    steps += [{"idleMs": 995, "durationMs": 5, "lines": 1} for _ in range(QUIET)]
    path.write_text("".join(json.dumps(s) + "\n" for s in steps))
    return [s["lines"] for s in steps]


@pytest.mark.parametrize("fmt", ["event", "kpl"])
def test_a_throttled_backlog_drains_at_the_shards_pace(kinesis_local, tmp_path, fmt):
    lines = write_trace(tmp_path / "trace.jsonl")
    with faultlib.proxied_stream(kinesis_local, tmp_path, "pacing") as (proxy, stream):
        # kpl: aggregates of ~25 KB (~75 events here); a bytes limit of 3
        # of them a second binds instead of the records
        if fmt == "kpl":
            proxy.set_shard_limit(1000, 3 * 25600)
        else:
            proxy.set_shard_limit(LIMIT)
        kte = {"FLUSH": "continuous,200", "RECORD_FORMAT": fmt}
        run = faultlib.start(proxy, stream, tmp_path, invokes=len(lines), kte=kte,
                             extra_args=["--trace", str(tmp_path / "trace.jsonl")])
        o = faultlib.finish(run, kinesis_local, stream)
        s = proxy.stats()
    faultlib.assert_exited_cleanly(o, len(lines))
    faultlib.assert_emf_complete(o)
    want = [faultlib.expected_line(i + 1, n, rid) for i, rid in enumerate(o.request_ids())
            for n in range(1, lines[i] + 1)]
    assert sorted(o.function_lines()) == sorted(want), o.describe()
    assert o.m("EventsDropped") == 0 and o.m("EventsReceived") == o.m("EventsDelivered"), o.emf
    assert [e["seq"] for e in o.events()] == list(range(1, o.m("EventsReceived") + 1))
    # the shard was over its limit, and the extension noticed
    throttled = s["records_failed"][PTE]
    assert throttled > 0 and o.m("RecordsRetried") > 0, (s, o.emf)
    # ...and offered about what it takes: refusals stay well under the
    # records the stream stored (unpaced: several times as many)
    stored = s["records_forwarded"]
    print(f"pacing {fmt}: throttled {throttled}, stored {stored}, calls {s['put_records_requests']}")
    assert throttled < stored, (throttled, stored, s["put_records_requests"], o.emf)
