"""KTE_RECORD_FORMAT end to end: the real binary under lambda-sim against
kinesis-local. `kpl` records are decoded by AWS's own deaggregator (npm
aws-kinesis-agg, pinned in tests/deagg/package-lock.json) with checksums
verified; `ndjson` records are split on newlines. Either way the user records
must be exactly today's envelopes: every delivered event once, byte for byte,
in seq order, with the same checks as the `event` format's tests."""

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest

import harness
from test_extension import (assert_clean_run, assert_emf, assert_function_lines, assert_platform_events,
                            assert_stream_matches_delivery, run_extension, throttle_every_other_record)

DEAGG = os.path.join(os.path.dirname(__file__), "..", "deagg")
CONSUMER = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "consumer", "read_stream.py")
TARGET = 25000  # KTE_AGG_TARGET_BYTES


def deaggregate(records):
    """User records of the stream's records, via aws-kinesis-agg."""
    if not os.path.isdir(os.path.join(DEAGG, "node_modules", "aws-kinesis-agg")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                       cwd=DEAGG, check=True)
    inp = [{"data": base64.b64encode(r["data"]).decode(), "partitionKey": r["partition_key"],
            "sequenceNumber": r["sequence_number"]} for r in records]
    out = subprocess.run([shutil.which("node") or "node", os.path.join(DEAGG, "deaggregate.js")],
                         input=json.dumps(inp).encode(), capture_output=True, check=True, timeout=120)
    users = json.loads(out.stdout)
    assert all(u["error"] is None for u in users), [u["error"] for u in users if u["error"]][:3]
    return users


def as_user_records(run, split):
    """Replaces the run's Kinesis records by the user records inside them."""
    outer = run.records
    users = []
    for r in outer:
        for data, pk in split(r):
            users.append(dict(r, data=data, partition_key=pk))
    run.outer = outer
    run.records = users
    run.envelopes = [harness.parse_envelope(u) for u in users]
    return run


def kpl_split_factory(outer):
    decoded = deaggregate(outer)
    by_seq = {}
    for u in decoded:
        # Every record is an aggregate (a plain record would come back
        # without a sub-sequence number).
        assert u["subSequenceNumber"] is not None, u
        by_seq.setdefault(u["sequenceNumber"], []).append(u)

    def split(r):
        subs = by_seq[r["sequence_number"]]
        assert [u["subSequenceNumber"] for u in subs] == list(range(len(subs)))
        # One partition key per aggregate: the outer record's.
        assert {u["partitionKey"] for u in subs} == {r["partition_key"]}
        return [(base64.b64decode(u["data"]), u["partitionKey"]) for u in subs]

    return split


def decompress(data, compression):
    """With the standard command-line decompressors (gzip(1), zstd(1))."""
    if compression == "none":
        return data
    magic = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd"}[compression]
    assert data.startswith(magic), data[:8]
    return subprocess.run([compression, "-dc"], input=data, capture_output=True, check=True).stdout


def ndjson_split_factory(compression):
    def split(r):
        data = decompress(r["data"], compression)
        assert data.endswith(b"\n")
        return [(line, r["partition_key"]) for line in data[:-1].split(b"\n")]

    return split


def event_split_factory(compression):
    def split(r):
        return [(decompress(r["data"], compression), r["partition_key"])]

    return split


def run_format(kinesis_local, kinesis_proxy, stream, tmp_path, **kwargs):
    """run_extension, reading the stream's (binary) records without parsing them."""
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, read=False, **kwargs)
    run.records = harness.Kinesis(kinesis_local.endpoint, run.function["region"]).read_all(stream)
    return run


def check_run(run, invokes, lines, fmt, line_bytes, compression="none", **kw):
    assert_clean_run(run, invokes)
    split = (kpl_split_factory(run.records) if fmt == "kpl" else
             ndjson_split_factory(compression) if fmt == "ndjson" else event_split_factory(compression))
    as_user_records(run, split)
    for r in run.outer:
        assert len(r["data"]) + len(r["partition_key"]) <= TARGET
    assert_stream_matches_delivery(run, **kw)
    assert_function_lines(run, invokes, lines, line_bytes)
    assert_platform_events(run, invokes)
    return assert_emf(run)


@pytest.mark.parametrize("fmt,compression", [("kpl", "none"), ("ndjson", "none"), ("ndjson", "gzip"),
                                              ("ndjson", "zstd"), ("event", "gzip"), ("event", "zstd")])
def test_formats_deliver_every_event_byte_for_byte(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                  lambda_sim, tmp_path, fmt, compression):
    run = run_format(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=20, lines=40, line_bytes=100,
                     kte={"RECORD_FORMAT": fmt, "COMPRESSION": compression, "FLUSH": "end"})
    m = check_run(run, 20, 40, fmt, 100, compression)
    events = len(run.records)
    if fmt == "event":
        assert len(run.outer) == events
        # Alone, a ~300-byte envelope shrinks by a quarter at best (headers, no history).
        assert sum(len(r["data"]) for r in run.outer) < sum(len(u["data"]) for u in run.records)
    else:
        assert len(run.outer) * 20 < events, (len(run.outer), events)  # grouped, not one per event
    assert m["EventsDelivered"] == events
    # The example consumer reads the format back: the same envelopes, in seq order.
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="dummy")
    res = subprocess.run([sys.executable, CONSUMER, "--stream", stream, "--endpoint-url", kinesis_local.endpoint,
                          "--region", run.function["region"], "--json"],
                         capture_output=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    by_seq = sorted(run.records, key=lambda r: harness.parse_envelope(r)["seq"])
    assert res.stdout.split(b"\n")[:-1] == [r["data"] for r in by_seq]
    assert b" 0 unreadable" in res.stderr, res.stderr


@pytest.mark.parametrize("protocol", ["cbor", "json"])
def test_kpl_failed_aggregates_retried_whole_exact_counts(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                         lambda_sim, tmp_path, protocol):
    # Every other Kinesis record here is an aggregate of several events.
    kinesis_proxy.fault = throttle_every_other_record(6)
    run = run_format(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=10, lines=30, line_bytes=400,
                        kte={"RECORD_FORMAT": "kpl", "PARTITION_KEY": "random", "PROTOCOL": protocol})
    assert {c.get("protocol") for c in run.put_calls} == {protocol}
    injected = sum(c["failed"] for c in run.put_calls)
    assert injected > 0
    m = check_run(run, 10, 30, "kpl", 400, partition_key="random", ordered=False)
    # Retries count events: each event of a throttled aggregate, once per failure.
    failed = [{"data": d, "partition_key": "k", "sequence_number": str(i)}
              for i, d in enumerate(d for c in run.put_calls for d in c.get("failed_data", []))]
    assert len(failed) == injected
    failed_events = len(deaggregate(failed))
    assert failed_events > injected
    assert m["RecordsRetried"] == failed_events, (m["RecordsRetried"], failed_events)
    assert m["EventsDelivered"] == len(run.delivered)


@pytest.mark.parametrize("fmt", ["kpl", "ndjson"])
def test_grouped_formats_fill_calls_instead_of_waking_at_500_events(kinesis_local, kinesis_proxy, stream,
                                                                    extension_bin, lambda_sim, tmp_path, fmt):
    """3,000 lines in one invoke with end-of-invoke flushes: one call at the
    end of the invoke (about 120 grouped records, well under a request's
    limits) and the shutdown's, not a call every 500 events as when `kpl` and
    `ndjson` woke the sender like `event` (each then carried a couple of
    grouped records)."""
    run = run_format(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=1, lines=3000, line_bytes=100,
                     kte={"RECORD_FORMAT": fmt, "FLUSH": "end"})
    check_run(run, 1, 3000, fmt, 100)
    ok = [c for c in run.put_calls if c["status"] == 200]
    assert len(ok) <= 2, [c["records"] for c in ok]
    assert max(c["records"] for c in ok) * 25000 >= 3000 * 100, [c["records"] for c in ok]
