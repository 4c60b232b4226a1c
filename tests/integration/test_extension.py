"""End to end: build/kinesis-telemetry-extension under lambda-sim, shipping to
kinesis-local, checked record by record.

Ground truth is lambda-sim's --telemetry-log: the exact bytes of every event
it delivered to the extension, in order. The extension numbers events in the
order received (seq 1, 2, ...), so record seq k must carry delivered event k
byte for byte, and the stream must hold exactly one record per delivered
event. On top of that the tests check the function's own lines (from
examples/function/bootstrap, fully predictable), the platform events of every
invoke, the sim's summary and the extension's EMF metrics line (read from the
sim's --verbose echo of the extension's stdout).

A missing binary or sim fails these tests unless KTE_ALLOW_SKIP=1.
"""

import collections
import json
import os
import re
import signal

import pytest

import harness

KTE = harness.EXTENSION_NAME
HEX32 = re.compile(r"[0-9a-f]{32}\Z")
FUNCTION = {"name": "kte-demo", "version": "$LATEST", "region": "us-east-1"}


# --------------------------------------------------------------------------
# running the extension


class Run:
    """One lambda-sim run of the extension and what ended up in the stream."""

    def __init__(self, res, records, delivered, workdir, function=FUNCTION, proxy=None):
        self.res = res
        # What the strict proxy saw of the extension's PutRecords calls.
        self.put_calls = list(proxy.calls) if proxy else []
        self.violations = list(proxy.violations) if proxy else []
        self.signature_problems = list(proxy.signature_problems) if proxy else []
        self.summary = res.summary or {}
        self.records = records
        self.envelopes = [harness.parse_envelope(r) for r in records]
        self.delivered = delivered
        self.workdir = workdir
        self.function = function
        self.emf = harness.emf_lines(res.stderr)

    def describe(self):
        return self.res.describe() + f"\n(workdir {self.workdir})"

    def events(self, prefix=None):
        """(seq, event) in seq order; events whose type starts with prefix."""
        out = sorted((e["seq"], e["event"]) for e in self.envelopes if isinstance(e["event"], dict))
        return [(s, ev) for s, ev in out if prefix is None or ev["type"].startswith(prefix)]

    def request_ids(self):
        return [inv["requestId"] for inv in self.summary.get("invokes", [])]


def sim_options(endpoint, stream, tmp_path, *, invokes, lines=3, line_bytes=None, kte=None,
                idle_ms=20, extra_env=None, **options):
    env = harness.kte_env(stream, endpoint, **(kte or {}))
    env["LINES_PER_INVOKE"] = str(lines)
    if line_bytes is not None:
        env["LINE_BYTES"] = str(line_bytes)
    env.update(extra_env or {})
    return dict(
        extensions=[harness.EXTENSION],
        bootstrap=harness.BOOTSTRAP,
        invokes=invokes,
        idle_ms=idle_ms,
        env=env,
        telemetry_log=tmp_path / "telemetry.jsonl",
        verbose=1,
        workdir=tmp_path,
        **options,
    )


def run_extension(kinesis_local, proxy, stream, tmp_path, function=FUNCTION, read=True, **kwargs):
    """Run the sim with the extension shipping through proxy to kinesis-local
    (or only to the proxy, in sink mode)."""
    proxy.region = function["region"]
    opts = sim_options(proxy.endpoint, stream, tmp_path, **kwargs)
    res = harness.run_sim(run_timeout=600, **opts)
    if not read:
        records = []
    elif proxy.sink:
        records = proxy.read_sink(stream)
    else:
        # kinesis-local keeps streams per region, like Kinesis.
        records = harness.Kinesis(kinesis_local.endpoint, function["region"]).read_all(stream)
    delivered = harness.read_telemetry_log(opts["telemetry_log"], KTE)
    return Run(res, records, delivered, tmp_path, function, proxy)


def throttle_every_other_record(calls):
    """A kinesis_proxy fault: the first `calls` PutRecords calls have every
    other record (index 0, 2, ...) throttled, as Kinesis does per record."""
    def fault(index, n):
        if index < calls:
            return ("records", {i: "ProvisionedThroughputExceededException" for i in range(0, n, 2)})
        return None
    return fault


def expected_line(inv, n, rid, line_bytes=None):
    line = f"kte-line inv={inv} n={n} rid={rid} pad="
    return line + "x" * max(0, (line_bytes or 0) - len(line.encode()))


# --------------------------------------------------------------------------
# checks shared by the tests


def assert_clean_run(run, invokes):
    """Init, every invoke and shutdown went fine; the extension exited 0 itself."""
    s = run.summary
    assert run.res.exit_code == 0, run.describe()
    assert s["exitReason"] == "completed", run.describe()
    assert s["init"]["errors"] == [], run.describe()
    assert [i["status"] for i in s["invokes"]] == ["success"] * invokes, run.describe()
    ext = s["extensions"][KTE]
    assert ext["registered"] is True
    assert ext["initError"] is None and ext["exitError"] is None, run.describe()
    # Exited 0 on its own before the shutdown deadline: not killed.
    assert ext["killed"] is False, run.describe()
    assert ext["exitCode"] == 0, run.describe()
    # (The example runtime gets 300 ms to exit on SIGTERM; on a loaded
    # machine it may be killed, which says nothing about the extension.)
    assert KTE not in s["shutdown"]["killed"], run.describe()
    assert s["shutdown"]["exitCodes"][KTE] == 0
    sub = s["subscribers"][KTE]
    assert sub["dropped"] == 0, sub
    assert_kinesis_rules_kept(run)


def assert_kinesis_rules_kept(run):
    """Every PutRecords within Kinesis's limits and correctly signed."""
    assert run.violations == [], run.violations[:5]
    assert all(c["records"] <= harness.PUT_RECORDS_MAX_RECORDS for c in run.put_calls)


def assert_stream_matches_delivery(run, partition_key="environment", shards=1, ordered=True):
    """Exactly one record per delivered event: seq k holds delivered event k
    byte for byte (or its truncated beginning), seq contiguous from 1."""
    envs, delivered = run.envelopes, run.delivered
    assert len(delivered) == run.summary["subscribers"][KTE]["delivered"], "telemetry log vs summary"
    assert len(delivered) > 0
    assert len(envs) == len(delivered), (
        f"{len(envs)} records in the stream for {len(delivered)} events delivered to the extension\n"
        + run.describe()
    )
    environments = {e["environment"] for e in envs}
    assert len(environments) == 1, environments
    env_id = environments.pop()
    assert HEX32.match(env_id), env_id
    keys = [(e["environment"], e["seq"]) for e in envs]
    assert len(set(keys)) == len(keys), [k for k, c in collections.Counter(keys).items() if c > 1][:5]
    assert sorted(e["seq"] for e in envs) == list(range(1, len(envs) + 1))
    for e, rec in zip(envs, run.records):
        assert e["kte"] == 1
        assert e["function"] == run.function, e["function"]
        raw = delivered[e["seq"] - 1]
        if "truncated" in e:
            assert e["truncated"] == {"originalBytes": len(raw)}, (e["seq"], e["truncated"], len(raw))
            assert isinstance(e["event"], str)
            assert raw.startswith(e["event"].encode("utf-8")), e["seq"]
        else:
            assert harness.raw_event_text(rec["data"]) == raw, (e["seq"], rec["data"][:300], raw[:300])
        if partition_key == "environment":
            assert e["_partition_key"] == env_id
    if not ordered:
        pass  # records failed and re-sent land after later ones
    elif shards == 1:
        # One shard, one partition key: the stream keeps the extension's order.
        assert [e["seq"] for e in envs] == list(range(1, len(envs) + 1))
    else:
        for shard in {e["_shard"] for e in envs}:
            seqs = [e["seq"] for e in envs if e["_shard"] == shard]
            if partition_key == "environment":
                assert seqs == sorted(seqs), shard
    return env_id


def assert_emf(run, truncated=0, batches_failed=0):
    """The extension's shutdown metrics line agrees with the stream."""
    assert len(run.emf) == 1, f"expected one EMF line on the extension's stdout\n{run.res.stderr[-3000:]}"
    m = run.emf[0]
    assert m["FunctionName"] == run.function["name"]
    assert m["EventsReceived"] == len(run.delivered), m
    assert m["EventsDelivered"] == len(run.records), m
    assert m["EventsDropped"] == 0, m
    assert m["EventsTruncated"] == truncated, m
    assert m["PostsMalformed"] == 0 and m["PostsRejected"] == 0 and m["PostsOversized"] == 0, m
    assert m["BatchesFailed"] == batches_failed, m
    return m


def assert_function_lines(run, invokes, lines, line_bytes=None, json_format=False):
    """Every line of every invoke, exactly once, in order, content intact."""
    rids = run.request_ids()
    assert len(rids) == invokes
    expected = [(rid, expected_line(i, n, rid, line_bytes)) for i, rid in enumerate(rids, 1)
                for n in range(1, lines + 1)]
    got = [ev["record"] for _, ev in run.events("function")]
    assert len(got) == len(expected), f"{len(got)} function events, expected {len(expected)}"
    if not json_format:
        missing = collections.Counter(line for _, line in expected) - collections.Counter(got)
        assert not missing, f"{sum(missing.values())} lines missing, e.g. {list(missing)[:3]}"
        assert got == [line for _, line in expected]
    else:
        for rec, (rid, line) in zip(got, expected):
            assert isinstance(rec, dict), rec
            assert set(rec) == {"timestamp", "level", "requestId", "message"}, rec
            assert (rec["level"], rec["requestId"], rec["message"]) == ("INFO", rid, line)
            assert rec["timestamp"].endswith("Z")


def assert_platform_events(run, invokes, runtime_done=True):
    """Init events once; start, runtimeDone and report of every invoke once, in that order."""
    by_type = collections.defaultdict(list)
    for seq, ev in run.events("platform."):
        by_type[ev["type"]].append((seq, ev))
    for t in ("platform.initStart", "platform.initRuntimeDone", "platform.initReport"):
        assert len(by_type[t]) == 1, (t, len(by_type[t]))
    assert by_type["platform.initReport"][0][1]["record"]["status"] == "success"
    exts = [ev["record"] for _, ev in by_type["platform.extension"]]
    assert [r["name"] for r in exts] == [KTE] and exts[0]["state"] == "Ready"
    subs = [ev["record"] for _, ev in by_type["platform.telemetrySubscription"]]
    assert [(r["name"], r["state"]) for r in subs] == [(KTE, "Subscribed")]
    assert sorted(subs[0]["types"]) == ["extension", "function", "platform"]
    rids = run.request_ids()
    assert len(rids) == invokes
    kinds = ["platform.start", "platform.runtimeDone", "platform.report"] if runtime_done else \
        ["platform.start", "platform.report"]
    for rid in rids:
        seqs = []
        for t in kinds:
            found = [(s, ev) for s, ev in by_type[t] if ev["record"].get("requestId") == rid]
            assert len(found) == 1, f"{t} for {rid}: {len(found)} records"
            if t != "platform.start":
                assert found[0][1]["record"]["status"] == "success", found[0][1]
            seqs.append(found[0][0])
        assert seqs == sorted(seqs), (rid, seqs)
    for t in kinds:
        assert len(by_type[t]) == invokes, (t, len(by_type[t]))
    # The last invoke's report reaches the extension only during SHUTDOWN.
    last = [ev for _, ev in by_type["platform.report"] if ev["record"]["requestId"] == rids[-1]]
    assert len(last) == 1


def assert_extension_events(run, env_id, json_format=False):
    """KTE_LOG_LEVEL=info: the extension's own 'subscribed' line came back as
    an `extension` event and was shipped."""
    recs = [ev["record"] for _, ev in run.events("extension")]
    texts = [r["message"] if json_format else r for r in recs]
    hits = [t for t in texts if f"subscribed; environment {env_id}" in t]
    assert len(hits) == 1, texts[:10]


# --------------------------------------------------------------------------
# the main scenario: 100 invokes x 10 lines, text format


@pytest.fixture(scope="module")
def big_run(kinesis_local, kinesis_proxy_session, extension_bin, lambda_sim, tmp_path_factory):
    proxy = kinesis_proxy_session
    proxy.reset(region=harness.REGION)
    stream = harness.unique_stream_name("big-text")
    kinesis_local.create_stream(stream)
    tmp = tmp_path_factory.mktemp("big-run")
    run = run_extension(kinesis_local, proxy, stream, tmp, invokes=100, lines=10, line_bytes=100,
                        kte={"LOG_LEVEL": "info"})
    yield run
    kinesis_local.delete_stream(stream)


def test_big_run_clean_exit_before_deadline(big_run):
    assert_clean_run(big_run, 100)


def test_big_run_stream_holds_every_delivered_event_once(big_run):
    assert_stream_matches_delivery(big_run)


def test_big_run_every_line_once_intact(big_run):
    assert_function_lines(big_run, 100, 10, line_bytes=100)


def test_big_run_platform_events_of_every_invoke(big_run):
    assert_platform_events(big_run, 100)


def test_big_run_all_three_event_types(big_run):
    types = {ev["type"].split(".")[0] for _, ev in big_run.events()}
    assert types == {"platform", "function", "extension"}
    env_id = big_run.envelopes[0]["environment"]
    assert_extension_events(big_run, env_id)


def test_big_run_metrics_line(big_run):
    m = assert_emf(big_run)
    assert m["EventsReceived"] == m["EventsDelivered"] == len(big_run.records)


# --------------------------------------------------------------------------
# JSON log format


def test_json_log_format(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=20, lines=5, log_format="json",
                        kte={"LOG_LEVEL": "info"})
    assert_clean_run(run, 20)
    env_id = assert_stream_matches_delivery(run)
    assert_function_lines(run, 20, 5, json_format=True)
    assert_platform_events(run, 20)
    assert_extension_events(run, env_id, json_format=True)
    assert_emf(run)


# --------------------------------------------------------------------------
# flush modes, partition keys, truncation, function identity


@pytest.mark.parametrize("flush", ["end", "periodic,200", "continuous,50"])
def test_flush_modes(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path, flush):
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=8, lines=4, kte={"FLUSH": flush})
    assert_clean_run(run, 8)
    assert_stream_matches_delivery(run)
    assert_function_lines(run, 8, 4)
    assert_platform_events(run, 8)
    assert_emf(run)


@pytest.mark.parametrize("mode", ["request", "function", "random"])
def test_partition_keys_over_shards(kinesis_local, kinesis_proxy, extension_bin, lambda_sim, tmp_path, mode):
    stream = harness.unique_stream_name(f"pk-{mode}")
    function = {"name": "kte-it-fn", "version": "$LATEST", "region": "eu-west-1"}
    kinesis = harness.Kinesis(kinesis_local.endpoint, "eu-west-1")
    kinesis.create_stream(stream, shards=4)
    try:
        run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, function=function, invokes=10, lines=4,
                            kte={"PARTITION_KEY": mode}, function_name="kte-it-fn", region="eu-west-1")
        assert_clean_run(run, 10)
        assert_stream_matches_delivery(run, partition_key=mode, shards=4)
        assert_function_lines(run, 10, 4)
        assert_platform_events(run, 10)
        pks = [e["_partition_key"] for e in run.envelopes]
        if mode == "function":
            assert set(pks) == {"kte-it-fn"}
        elif mode == "random":
            assert all(re.fullmatch(r"[0-9a-f]{16}", k) for k in pks), pks[:5]
            assert len(set(pks)) > len(pks) // 2  # random keys hardly ever repeat
            assert len({e["_shard"] for e in run.envelopes}) > 1
        else:
            rids = set(run.request_ids())
            for e in run.envelopes:
                rec = e["event"]["record"]
                if e["event"]["type"] in ("platform.start", "platform.runtimeDone", "platform.report"):
                    assert e["_partition_key"] == rec["requestId"]
                else:
                    assert e["_partition_key"] in rids | {e["environment"]}, e
    finally:
        kinesis.delete_stream(stream)


def test_oversized_events_truncated(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    # 6 function lines of 5000 bytes with records limited to 2048 bytes.
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=2, lines=3, line_bytes=5000,
                        kte={"MAX_RECORD_BYTES": "2048"})
    assert_clean_run(run, 2)
    assert_stream_matches_delivery(run)
    truncated = [e for e in run.envelopes if "truncated" in e]
    assert len(truncated) == 6
    rids = run.request_ids()
    for e, rec in zip(run.envelopes, run.records):
        assert len(rec["data"]) + len(rec["partition_key"].encode()) <= 2048
        if "truncated" in e:
            raw = run.delivered[e["seq"] - 1]
            assert json.loads(raw)["type"] == "function"
            assert e["truncated"]["originalBytes"] > 5000
            assert len(e["event"]) > 1024  # a useful beginning, not an empty string
    lines = sorted(json.loads(run.delivered[e["seq"] - 1])["record"] for e in truncated)
    assert lines == sorted(expected_line(i, n, rid, 5000) for i, rid in enumerate(rids, 1) for n in (1, 2, 3))
    assert_emf(run, truncated=6)


# --------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize(
    "overrides,variable",
    [
        ({"BUFFER_TIMEOUT_MS": "5"}, "KTE_BUFFER_TIMEOUT_MS"),
        ({"STREAM_NAME": None}, "KTE_STREAM_NAME"),
        ({"FLUSH": "sometimes"}, "KTE_FLUSH"),
        ({"PARTITION_KEY": "shard"}, "KTE_PARTITION_KEY"),
        ({"TYPES": "platform,metrics"}, "KTE_TYPES"),
        ({"MAX_RECORD_BYTES": "11000000"}, "KTE_MAX_RECORD_BYTES"),
    ],
    ids=["buffer-timeout-5", "no-stream-name", "bad-flush", "bad-partition-key", "bad-types",
         "record-bytes-over-10MiB"],
)
def test_configuration_error_fails_init(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path,
                                        overrides, variable):
    opts = sim_options(kinesis_proxy.endpoint, stream, tmp_path, invokes=2, kte=overrides)
    res = harness.run_sim(run_timeout=300, **opts)
    s = res.summary
    assert res.exit_code == 1, res.describe()
    assert s["exitReason"] == "initFailed"
    errors = s["init"]["errors"]
    assert len(errors) == 1, errors
    err = errors[0]
    assert err["source"] == f"extension:{KTE}", err
    assert err["errorType"].startswith("Extension."), err
    assert variable in err["body"], err
    ext = s["extensions"][KTE]
    assert ext["initError"] is not None and ext["initError"]["errorType"] == err["errorType"]
    assert ext["killed"] is False
    # Lambda retries a failed init during each invoke, in a new environment
    # each time, and the invoke fails with the init's error.
    assert [(i["status"], i["errorType"]) for i in s["invokes"]] == [("error", err["errorType"])] * 2, s["invokes"]
    assert len(s["environments"]) == 3, s["environments"]
    assert kinesis_local.read_all(stream) == []
    assert kinesis_proxy.calls == []


def test_unknown_variables_are_warned_about_not_fatal(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                      lambda_sim, tmp_path):
    """A typo and a newer version's option: one warning each at start, naming
    the closest known variable when there is one; everything else as usual."""
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=2, lines=2,
                        kte={"STREM_NAME": "typo", "ENCRYPTION": "on"})
    assert_clean_run(run, 2)
    assert_stream_matches_delivery(run)
    assert_function_lines(run, 2, 2)
    texts = [ev["record"] for _, ev in run.events("extension")]
    typo = [t for t in texts if "KTE_STREM_NAME" in t]
    assert len(typo) == 1, texts
    assert "did you mean KTE_STREAM_NAME?" in typo[0]
    newer = [t for t in texts if "KTE_ENCRYPTION" in t]
    assert len(newer) == 1, texts
    assert "did you mean" not in newer[0] and "not an option of this version" in newer[0]


# --------------------------------------------------------------------------
# SIGTERM


def test_sigterm_flushes_buffered_records(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    """SIGTERM while the extension holds an invoke's records (KTE_FLUSH=end
    flushes only once the runtime is done, and this runtime sleeps): the
    extension ships what it has and exits 0."""
    opts = sim_options(kinesis_proxy.endpoint, stream, tmp_path, invokes=1, lines=10, kte={"FLUSH": "end"},
                       event={"sleepMs": 120000}, timeout=300)
    sim = harness.start_sim(**opts)
    try:
        tlog = opts["telemetry_log"]

        def lines_delivered():
            evs = [json.loads(e) for e in harness.read_telemetry_log(tlog, KTE)]
            return len([e for e in evs if e["type"] == "function"]) == 10

        harness.wait_for(lines_delivered, 120, what="the 10 lines delivered to the extension")
        pids = harness.find_processes(exe=harness.EXTENSION, ancestor=sim.pid)
        assert len(pids) == 1, pids
        # The lines are buffered, not shipped yet: that is what SIGTERM must flush.
        before = [harness.parse_envelope(r) for r in kinesis_local.read_all(stream)]
        assert [e for e in before if e["event"]["type"] == "function"] == []
        os.kill(pids[0], signal.SIGTERM)
        harness.wait_for(lambda: harness.process_exited(pids[0]), 120, what="the extension to exit")
        # An extension that exits during an invoke makes Lambda reset the
        # environment: the sandbox ends the long invoke itself.
        res = sim.wait(300)
    finally:
        if sim.poll() is None:
            sim.kill()
    records = kinesis_local.read_all(stream)
    delivered = harness.read_telemetry_log(tlog, KTE)
    run = Run(res, records, delivered, tmp_path, proxy=kinesis_proxy)
    assert_kinesis_rules_kept(run)
    ext = run.summary["extensions"][KTE]
    assert ext["exitCode"] == 0, run.describe()
    assert ext["killed"] is False
    assert_stream_matches_delivery(run)
    rid = run.request_ids()[0]
    lines = [ev["record"] for _, ev in run.events("function")]
    assert lines == [expected_line(1, n, rid) for n in range(1, 11)]
    assert len([ev for _, ev in run.events("platform.start")]) == 1
    assert_emf(run)


# --------------------------------------------------------------------------
# Kinesis trouble must not keep the extension past the shutdown deadline


def test_missing_stream_drops_and_exits_cleanly(kinesis_local, kinesis_proxy, extension_bin, lambda_sim, tmp_path):
    run = run_extension(kinesis_local, kinesis_proxy, "kte-no-such-stream", tmp_path, read=False,
                        invokes=3, lines=2)
    assert_clean_run(run, 3)
    assert "kte-no-such-stream" not in kinesis_local.kinesis.list_streams()
    assert len(run.emf) == 1, run.res.stderr[-3000:]
    m = run.emf[0]
    assert m["EventsReceived"] == len(run.delivered) > 0
    assert m["EventsDelivered"] == 0
    assert m["EventsDropped"] == m["EventsReceived"], m


def test_unreachable_endpoint_exits_before_deadline(kinesis_local, kinesis_proxy, extension_bin, lambda_sim, tmp_path):
    dead = f"http://127.0.0.1:{harness.free_port()}"
    run = run_extension(kinesis_local, kinesis_proxy, "kte-unreachable", tmp_path, read=False,
                        invokes=2, lines=2, kte={"ENDPOINT": dead})
    assert_clean_run(run, 2)
    assert len(run.emf) == 1, res.stderr[-3000:]
    m = run.emf[0]
    assert m["EventsReceived"] == len(run.delivered) > 0
    assert m["EventsDelivered"] == 0
    assert m["EventsDropped"] == m["EventsReceived"], m


# --------------------------------------------------------------------------
# Kinesis limits and failures (through the strict proxy)


def test_putrecords_carry_a_valid_sigv4_signature(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                 lambda_sim, tmp_path):
    """kinesis-local ignores signatures; real Kinesis does not. Every signed
    header must be present and the signature must verify."""
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=2, lines=2)
    assert_clean_run(run, 2)
    assert len(run.put_calls) > 0
    assert run.signature_problems == [], run.signature_problems[:3]


def test_large_flush_split_within_putrecords_limits(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                   lambda_sim, tmp_path):
    # One invoke, 1200 lines: one flush of over 1200 records -> at least 3 calls.
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=1, lines=1200, line_bytes=300)
    assert_clean_run(run, 1)
    assert_stream_matches_delivery(run)
    assert_function_lines(run, 1, 1200, line_bytes=300)
    ok = [c for c in run.put_calls if c["status"] == 200]
    assert sum(c["records"] for c in ok) == len(run.records)
    assert len(ok) >= 3 and max(c["records"] for c in ok) <= 500, [c["records"] for c in ok]
    assert_emf(run)


def test_large_records_split_by_request_bytes(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim,
                                             tmp_path):
    # 8 lines of 900 KiB: ~7 MiB, more than one 5 MiB PutRecords can carry.
    # kinesis-local needs ~1 s per such record: the proxy stores them itself.
    kinesis_proxy.sink = True
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=1, lines=8,
                        line_bytes=900 * 1024)
    assert_clean_run(run, 1)
    assert_stream_matches_delivery(run)
    assert_function_lines(run, 1, 8, line_bytes=900 * 1024)
    ok = [c for c in run.put_calls if c["status"] == 200]
    assert len(ok) >= 2 and max(c["bytes"] for c in ok) <= harness.PUT_RECORDS_MAX_BYTES
    assert_emf(run)


@pytest.mark.parametrize("protocol", ["cbor", "json"])
def test_throttled_records_retried_exactly_once_each(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                    lambda_sim, tmp_path, protocol):
    kinesis_proxy.fault = throttle_every_other_record(6)
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=10, lines=5,
                        kte={"PROTOCOL": protocol})
    assert_clean_run(run, 10)
    assert {c.get("protocol") for c in run.put_calls} == {protocol}
    injected = sum(c["failed"] for c in run.put_calls)
    assert injected > 0
    assert_stream_matches_delivery(run, ordered=False)
    assert_function_lines(run, 10, 5)
    assert_platform_events(run, 10)
    m = assert_emf(run)
    assert m["RecordsRetried"] == injected, (m["RecordsRetried"], injected)


@pytest.mark.parametrize("protocol", ["cbor", "json"])
def test_failed_calls_retried_without_loss_or_duplicates(kinesis_local, kinesis_proxy, stream, extension_bin,
                                                        lambda_sim, tmp_path, protocol):
    # Calls 0, 1 and 3 fail as a whole (500 InternalFailure, 503, 500).
    errors = {0: ("call", 500, "InternalFailure"), 1: ("call", 503, "ServiceUnavailable"),
              3: ("call", 500, "InternalFailure")}
    kinesis_proxy.fault = lambda index, n: errors.get(index)
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=6, lines=5,
                        kte={"PROTOCOL": protocol})
    assert_clean_run(run, 6)
    assert {c.get("protocol") for c in run.put_calls} == {protocol}
    assert [c["status"] for c in run.put_calls[:2]] == [500, 503]
    assert_stream_matches_delivery(run)
    assert_function_lines(run, 6, 5)
    assert_platform_events(run, 6)
    failed = [c for c in run.put_calls if c["status"] != 200]
    assert len(failed) == 3
    m = assert_emf(run, batches_failed=3)
    assert m["RecordsRetried"] == sum(c["records"] for c in failed), m


# --------------------------------------------------------------------------
# Lambda Managed Instances


def test_managed_instances_mode(kinesis_local, kinesis_proxy, stream, extension_bin, lambda_sim, tmp_path):
    """Concurrent invokes, SHUTDOWN-only registration, schema 2025-01-29,
    no runtimeDone: every event still shipped once."""
    run = run_extension(kinesis_local, kinesis_proxy, stream, tmp_path, invokes=12, lines=3,
                        mode="managed-instances")
    assert_clean_run(run, 12)
    assert run.summary["extensions"][KTE]["events"] == ["SHUTDOWN"]
    assert run.summary["subscribers"][KTE]["schemaVersion"] == "2025-01-29"
    assert_stream_matches_delivery(run)
    rids = run.request_ids()
    # Managed instances take JSON log format only: each line is a record
    # object whose message is the line and whose requestId is the invoke's.
    recs = [ev["record"] for _, ev in run.events("function")]
    assert all(r["message"].split(" rid=")[1].startswith(r["requestId"]) for r in recs), recs
    got = collections.Counter(r["message"] for r in recs)
    # The example runtime serves one invoke at a time, in the order started.
    want = collections.Counter(expected_line(i, n, rid) for i, rid in enumerate(rids, 1) for n in (1, 2, 3))
    assert got == want
    assert run.events("platform.runtimeDone") == []
    for t in ("platform.start", "platform.report"):
        assert sorted(ev["record"]["requestId"] for _, ev in run.events(t)) == sorted(rids), t
    assert_emf(run)
