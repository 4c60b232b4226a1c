"""Delivery guarantees under Kinesis faults (issue 4): throttling, partial
failures, 5xx, slow answers, outages, buffer overflow, shutdown and SIGTERM
during an outage, connections closed during a freeze, permanent errors.

The real build/kinesis-telemetry-extension runs under tools/lambda-sim with
examples/function/bootstrap; its KTE_ENDPOINT is tests/faults/fault_proxy.py,
which forwards to kinesis-local and injects the faults. What reached Kinesis
is read straight from kinesis-local.

Each scenario runs once (a module-scoped fixture) and several tests check it.
Exact counts throughout; the checks that link the extension's EMF counters to
the proxy's counters are identities (every record the extension puts on the
wire reaches the proxy unless the proxy refuses the connection):

    proxy records received = EventsDelivered + DropReportsDelivered
                             + RecordsRetried + DroppedPermanentError
    proxy PutRecords requests = Batches + BatchesFailed

Timing: waits are hang guards, never speed checks. Where a fault must be
active during some invokes and not others, the test switches it at points it
observes in the sim's --verbose output (a given function line, "invoke N
done"), not after a sleep.
"""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import faultlib
import harness
from faultlib import KTE

REPO = harness.REPO
CONSUMER = REPO / "examples" / "consumer" / "read_stream.py"
MiB = 1024 * 1024
PTE = "ProvisionedThroughputExceededException"


def report(title, **figures):
    """Figures worth seeing in the test output (pytest -s, or on failure)."""
    print(f"\n[{title}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def emf_figures(o):
    return {k: o.emf.get(k) for k in faultlib.EMF_NAMES}


def assert_proxy_identities(o, proxy):
    """The extension's counters against the proxy's (no outage in the run)."""
    s = proxy.stats()
    assert s["records_received"] == (o.m("EventsDelivered") + o.m("DropReportsDelivered")
                                     + o.m("RecordsRetried") + o.m("DroppedPermanentError")), (s, o.emf)
    assert s["put_records_requests"] == o.m("Batches") + o.m("BatchesFailed"), (s, o.emf)
    # What the proxy had kinesis-local store is exactly what the stream holds.
    assert s["records_forwarded"] == len(o.records), (s, len(o.records))


def run_consumer(stream, endpoint, *args):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    res = subprocess.run([sys.executable, str(CONSUMER), "--stream", stream, "--endpoint-url", endpoint,
                          "--region", harness.REGION, *args],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return res


# ==========================================================================
# 30 % per-record throttling + 10 % HTTP 500 (+ 5 % slow answers)

THROTTLE_INVOKES, THROTTLE_LINES = 12, 10


# The default protocol (cbor) in every variant but two: "+json" sends awsJson
# (KTE_PROTOCOL=json), "+refuse-cbor" meets a service that refuses CBOR (the
# proxy answers CBOR like one) and must go on in JSON without losing a thing.
@pytest.fixture(scope="module", params=["throttle+500", "throttle+500+slow", "throttle+500+kpl",
                                        "throttle+500+json", "throttle+500+refuse-cbor"])
def throttled(request, kinesis_local, tmp_path_factory):
    """Faults on every PutRecords of invokes 1..N-1. They stop once the last
    invoke has printed its lines (it then sleeps 200 ms before answering), so
    that the last flushes, and the shutdown flush, can drain what is left:
    under persistent faults the shutdown flush (< 2 s, backoff up to 2 s) may
    legitimately run out of time, which the shutdown tests cover."""
    slow = request.param.endswith("slow")
    wd = tmp_path_factory.mktemp("throttled")
    with faultlib.proxied_stream(kinesis_local, wd, request.param) as (proxy, stream):
        proxy.set_record_failure_rate(PTE, 0.30)
        proxy.set_fault_rate("http500", 0.10)
        kte = {}
        if request.param.endswith("kpl"):
            # Aggregates: a throttled record is an aggregate, retried whole.
            kte["RECORD_FORMAT"] = "kpl"
        if request.param.endswith("+json"):
            kte["PROTOCOL"] = "json"
        if request.param.endswith("refuse-cbor"):
            proxy.set_refuse_cbor(True)
        if slow:
            proxy.set_fault_rate("slow", 0.05)
            proxy.set_slow_seconds(1.5)
            proxy.inject_next("slow", 1)  # at least one, whatever the rate draws
            kte["REQUEST_TIMEOUT_MS"] = 1000
        run = faultlib.start(proxy, stream, wd, invokes=THROTTLE_INVOKES, lines=THROTTLE_LINES,
                             kte=kte, event={"sleepMs": 200})
        faultlib.wait_for_output(run, faultlib.function_line_marker(THROTTLE_INVOKES, THROTTLE_LINES))
        during = proxy.stats()
        proxy.clear()  # (refuse-cbor stays: the extension must not try CBOR again anyway)
        if request.param.endswith("refuse-cbor"):
            proxy.set_refuse_cbor(True)
        o = faultlib.finish(run, kinesis_local, stream)
        o.variant, o.slow, o.stats_during_faults = request.param, slow, during
        yield o, proxy, stream


def test_throttling_every_line_delivered_once(throttled):
    o, proxy, _ = throttled
    faultlib.assert_exited_cleanly(o, THROTTLE_INVOKES)
    faultlib.assert_emf_complete(o)
    faultlib.assert_every_line_once(o, THROTTLE_LINES)
    assert o.m("EventsDropped") == 0, o.emf
    assert o.m("EventsReceived") == o.m("EventsDelivered"), o.emf
    # Every event once after dedupe: seq 1..EventsReceived, nothing else.
    assert [e["seq"] for e in o.events()] == list(range(1, o.m("EventsReceived") + 1))
    assert o.drop_reports() == []
    assert len(o.environments()) == 1
    d = o.stats_during_faults
    assert d["records_failed"][PTE] > 0 and d["injected"]["http500"] > 0, d
    assert o.m("RecordsRetried") > 0
    s = proxy.stats()
    if o.variant.endswith("+json"):
        assert s["protocols"]["cbor"] == 0 and o.m("ProtocolFallbacks") == 0, (s, o.emf)
    elif o.variant.endswith("refuse-cbor"):
        # One CBOR request, refused; JSON from then on, that batch included.
        assert s["cbor_refused"] == 1 and s["protocols"]["cbor"] == 0, s
        assert o.m("ProtocolFallbacks") == 1, o.emf
    else:
        assert s["protocols"]["json"] == 0 and o.m("ProtocolFallbacks") == 0, (s, o.emf)
    report(o.variant, raw_records=len(o.records), duplicates=o.duplicates(), **emf_figures(o),
           proxy_failed=d["records_failed"], proxy_injected=d["injected"])


def test_throttling_counters_match_the_proxy(throttled):
    o, proxy, _ = throttled
    s = proxy.stats()
    if o.variant.endswith("kpl"):
        # The proxy counts Kinesis records (aggregates), the extension events.
        assert len(o.kinesis_records) * 10 < len(o.records), (len(o.kinesis_records), len(o.records))
        assert s["records_forwarded"] == len(o.kinesis_records), s
        assert o.m("RecordsRetried") > s["records_failed_total"] + s["records_in_failed_requests"], (s, o.emf)
        return
    assert_proxy_identities(o, proxy)
    # Each injected failure made the extension retry: per record for
    # per-record codes, the whole batch for a 500. Timeouts add to that.
    assert o.m("RecordsRetried") >= s["records_failed_total"] + s["records_in_failed_requests"]
    assert o.m("BatchesFailed") >= s["injected"]["http500"]
    if o.slow:
        # Records stored by a request the extension gave up on were sent again.
        assert s["injected"]["slow"] >= 1 and s["records_forwarded_unanswered"] > 0, s
        assert o.duplicates() >= s["records_forwarded_unanswered"], (o.duplicates(), s)
    report(o.variant, retried_beyond_injected=o.m("RecordsRetried") - s["records_failed_total"]
           - s["records_in_failed_requests"], batches_failed=o.m("BatchesFailed"),
           http500=s["injected"]["http500"], slow=s["injected"]["slow"],
           unanswered_stored=s["records_forwarded_unanswered"], duplicates=o.duplicates())


def test_consumer_prints_each_event_once_in_seq_order(throttled, kinesis_local):
    o, _, stream = throttled
    res = run_consumer(stream, kinesis_local.endpoint, "--json")
    lines = res.stdout.splitlines()
    envs = [json.loads(l) for l in lines]
    keys = [(e["environment"], e["seq"]) for e in envs]
    assert len(keys) == len(set(keys)), "the consumer printed an event twice"
    assert keys == sorted(o.distinct()), "not every event, or not in seq order"
    # Byte for byte the stored data.
    stored = {(e["environment"], e["seq"]): r["data"] for r, e in zip(o.records, o.envelopes)}
    assert all(stored[k] == l.encode() for k, l in zip(keys, lines))
    assert f"{len(o.kinesis_records)} records read, {o.duplicates()} duplicates dropped" in res.stderr, res.stderr
    assert "missing" not in res.stderr and "kte.dropped" not in res.stderr, res.stderr
    if o.slow:
        assert o.duplicates() > 0  # the consumer really had duplicates to drop
    # Text mode: one line per event, same order.
    text = run_consumer(stream, kinesis_local.endpoint).stdout.splitlines()
    assert [tuple(l.split(" ", 2)[:2]) for l in text] == [(e, str(s)) for e, s in keys]


# ==========================================================================
# a 5 s outage in the middle of a run

OUTAGE_INVOKES, OUTAGE_LINES = 30, 10


@pytest.fixture(scope="module")
def outage5(kinesis_local, tmp_path_factory):
    wd = tmp_path_factory.mktemp("outage5")
    with faultlib.proxied_stream(kinesis_local, wd, "outage5") as (proxy, stream):
        # KTE_FLUSH=end: the scenario needs invokes held back by failing
        # end-of-invoke flushes (the default, adaptive, would defer them).
        run = faultlib.start(proxy, stream, wd, invokes=OUTAGE_INVOKES, lines=OUTAGE_LINES,
                             kte={"FLUSH_TIMEOUT_MS": 1000, "FLUSH": "end"})
        faultlib.wait_for_output(run, faultlib.function_line_marker(10, OUTAGE_LINES))
        proxy.outage(5)
        harness.wait_for(lambda: not proxy.in_outage(), 60, what="the outage to end")
        ended_before_last_invoke = faultlib.invoke_done_marker(OUTAGE_INVOKES) not in faultlib.sim_stderr(run)
        requests_at_recovery = proxy.stats()["put_records_requests"]
        o = faultlib.finish(run, kinesis_local, stream)
        o.ended_before_last_invoke = ended_before_last_invoke
        o.requests_at_recovery = requests_at_recovery
        yield o, proxy, stream


def test_outage_everything_delivered_after_recovery(outage5):
    o, proxy, _ = outage5
    faultlib.assert_exited_cleanly(o, OUTAGE_INVOKES)
    faultlib.assert_emf_complete(o)
    # The outage really hit flushes, and delivery resumed while invokes still ran.
    assert o.ended_before_last_invoke
    assert o.m("BatchesFailed") > 0 and proxy.stats()["outages"] == 1
    assert proxy.stats()["put_records_requests"] > o.requests_at_recovery
    faultlib.assert_every_line_once(o, OUTAGE_LINES)
    assert o.m("EventsDropped") == 0 and o.m("EventsReceived") == o.m("EventsDelivered"), o.emf
    assert [e["seq"] for e in o.events()] == list(range(1, o.m("EventsReceived") + 1))
    # Refused connections store nothing; duplicates only come from a request
    # the extension gave up on (none expected unless the machine is very slow).
    assert proxy.stats()["records_forwarded"] == len(o.records)
    report("outage 5 s", duplicates=o.duplicates(), **emf_figures(o))


def test_outage_failures_logged_once_per_kind(outage5):
    """The extension logs a PutRecords failure once per kind, not per batch
    (its output is telemetry too: each line becomes an event it must ship)."""
    o, _, _ = outage5
    kinds = faultlib.normalised_failure_kinds(o.log_lines("WARN"))
    repeats = [k for prev, k in zip(kinds, kinds[1:]) if k == prev]
    report("outage 5 s: failure WARN lines", lines=len(kinds), distinct=sorted(set(kinds)),
           BatchesFailed=o.m("BatchesFailed"))
    assert kinds, "no failure was logged at all"
    assert repeats == [], (f"{len(repeats)} of {len(kinds)} failure lines repeat the previous line's kind "
                           f"(one per failed batch): {kinds[:4]}")


# ==========================================================================
# an outage longer than the buffer

# One invoke's data (200 x ~4.4 KB records) fits in the 1 MiB buffer; the
# outage spans 4 invokes (~3.5 MB, 3.3 x the buffer). KTE_FLUSH_TIMEOUT_MS is
# generous so that kinesis-local (~1 MB/s, slower on a loaded machine) can
# take a full buffer in one flush; outage invokes last that long.
OVF_INVOKES, OVF_LINES, OVF_LINE_BYTES, OVF_CAP = 9, 200, 4096, 1048576
OVF_OUTAGE = (3, 6)  # the invokes whose flushes fail
OVF_FLUSH_TIMEOUT_MS = 10000
OVF_SLEEP_MS = 500


@pytest.fixture(scope="module")
def overflow(kinesis_local, tmp_path_factory):
    wd = tmp_path_factory.mktemp("overflow")
    with faultlib.proxied_stream(kinesis_local, wd, "overflow") as (proxy, stream):
        run = faultlib.start(proxy, stream, wd, invokes=OVF_INVOKES, lines=OVF_LINES,
                             line_bytes=OVF_LINE_BYTES,
                             # built on end-of-invoke flushes (which invokes' data is
                             # buffered when the outage begins), as adaptive's default is not
                             kte={"MAX_BUFFER_BYTES": OVF_CAP, "FLUSH_TIMEOUT_MS": OVF_FLUSH_TIMEOUT_MS,
                                  "FLUSH": "end"},
                             # Each invoke stays open OVF_SLEEP_MS after its lines, so the
                             # outage begins (on seeing invoke 3's first line) well before
                             # invoke 3's end-of-invoke flush. Without it the window was
                             # ~30-60 ms, and a loaded machine noticed the line too late:
                             # invoke 3 was delivered (Debian 13 fresh-check, 2026-11-30).
                             event={"sleepMs": OVF_SLEEP_MS})
        sampler = faultlib.ProcSampler(run)
        sampler.start()
        faultlib.wait_for_output(run, faultlib.function_line_marker(OVF_OUTAGE[0], 1))
        sampler.mark("before_outage")
        proxy.outage()
        faultlib.wait_for_output(run, faultlib.function_line_marker(OVF_OUTAGE[1] + 1, 1))
        sampler.mark("end_of_outage")
        proxy.end_outage()
        o = faultlib.finish(run, kinesis_local, stream)
        sampler.stop()
        o.sampler = sampler
        yield o, proxy, stream


def test_overflow_accounting_is_exact(overflow):
    o, _, _ = overflow
    faultlib.assert_exited_cleanly(o, OVF_INVOKES)
    faultlib.assert_emf_complete(o)
    assert o.m("DroppedBufferOverflow") > 0, o.emf
    # Delivery was back long before shutdown: nothing else was lost.
    for r in ("DroppedShutdownDeadline", "DroppedPermanentError", "DroppedTooLarge", "DroppedOutOfMemory"):
        assert o.m(r) == 0, (r, o.emf)
    assert o.m("EventsDelivered") + o.m("EventsDropped") == o.m("EventsReceived")
    assert len(o.events()) == o.m("EventsDelivered")
    report("overflow", **emf_figures(o))


def test_overflow_reported_in_the_stream(overflow):
    o, _, _ = overflow
    reports = o.drop_reports()
    assert reports, "no kte.dropped record in the stream after recovery"
    assert len(reports) == o.m("DropReportsDelivered")
    recs = [r["event"]["record"] for r in reports]
    assert sum(r["droppedEvents"] for r in recs) == sum(o.m(x) for x in faultlib.REPORTED_REASONS)
    by_reason = collections.Counter()
    for r in recs:
        by_reason.update(r["reasons"])
        assert sum(r["reasons"].values()) == r["droppedEvents"]
    assert dict(by_reason) == {"DroppedBufferOverflow": o.m("DroppedBufferOverflow")}
    # Stream + reports account for every seq: what is missing is exactly the
    # reported ranges (drop-oldest: one contiguous run per report).
    cov = faultlib.seq_coverage(o)
    reported = set()
    for r in recs:
        reported.update(range(r["firstSeq"], r["lastSeq"] + 1))
        # drop-oldest, and nothing in flight when the last overflow came
        # (mid-invoke, between flushes): one contiguous run (docs/records.md)
        assert r["lastSeq"] - r["firstSeq"] + 1 == r["droppedEvents"]
    assert set(cov["gone"]) == reported
    assert len(cov["gone"]) == o.m("EventsDropped")
    assert len(cov["events"]) + len(cov["reports"]) + len(cov["gone"]) == cov["max"]
    assert min(e["seq"] for e in reports) > max(reported)  # reported after the drops
    report("overflow: kte.dropped", records=recs)


def test_overflow_drops_the_oldest(overflow):
    """drop-oldest: the invokes before the outage and the newest data are all
    there -- the first invoke after the outage (its lines enter the full
    buffer before its flush recovers) and the ones after it; the first
    outage invoke's lines are gone."""
    o, _, _ = overflow
    got = set(o.function_lines())
    want = o.expected_lines(OVF_LINES, OVF_LINE_BYTES)
    by_inv = {i: want[(i - 1) * OVF_LINES:i * OVF_LINES] for i in range(1, OVF_INVOKES + 1)}
    keep = [1, 2] + list(range(OVF_OUTAGE[1] + 1, OVF_INVOKES + 1))
    for i in keep:
        assert all(l in got for l in by_inv[i]), f"lines of invoke {i} missing"
    assert not any(l in got for l in by_inv[OVF_OUTAGE[0]]), "oldest outage data not dropped"
    assert len(o.function_lines()) == len(got)  # once each


def test_overflow_memory_stays_bounded(overflow):
    """Measured from /proc (VmHWM, RssAnon): the outage must not grow the
    anonymous memory by more than the buffer plus one PutRecords body of it
    (~4/3 of it) plus 1 MiB."""
    o, _, _ = overflow
    s = o.sampler
    before, peak = s.marks["before_outage"], s.max
    growth = peak["RssAnon"] - before["RssAnon"]
    report("overflow: memory", VmHWM=peak["VmHWM"], RssAnon_peak=peak["RssAnon"],
           RssFile_peak=peak["RssFile"], RssAnon_before_outage=before["RssAnon"], growth=growth,
           EMF_PeakRssBytes=o.emf.get("PeakRssBytes"), cap=OVF_CAP)
    assert growth < 2 * OVF_CAP + MiB + OVF_CAP // 3, growth
    # (without the cap it would hold ~3.5 MB more, plus a PutRecords body of it)


def test_overflow_emf_peak_rss_within_documented_bound(overflow):
    """README: peak memory is about KTE_MAX_BUFFER_BYTES + one PutRecords body
    (<= 7 MiB) on top of the program's own footprint. The EMF gauge must stay
    under the footprint measured before the outage (VmHWM) + cap + 7 MiB."""
    o, _, _ = overflow
    peak = o.m("PeakRssBytes")
    base = o.sampler.marks["before_outage"]["VmHWM"]
    bound = base + OVF_CAP + 7 * MiB
    report("overflow: PeakRssBytes", PeakRssBytes=peak, baseline_VmHWM=base, bound=bound,
           measured_VmHWM=o.sampler.max.get("VmHWM"))
    assert peak < bound, (
        f"PeakRssBytes {peak} >= footprint {base} + cap + 7 MiB = {bound} "
        f"(the extension's own VmHWM, sampled from /proc, was {o.sampler.max.get('VmHWM')})")


def test_emf_peak_rss_is_the_extensions_own(overflow):
    """PeakRssBytes must be the extension's peak, not its parent's: on Linux
    getrusage(RUSAGE_SELF).ru_maxrss keeps the high-water mark of the image
    before execve (the forked parent). Compared with VmHWM sampled from
    /proc every 5 ms until the process exited."""
    o, _, _ = overflow
    peak, hwm = o.m("PeakRssBytes"), o.sampler.max["VmHWM"]
    report("PeakRssBytes vs /proc", PeakRssBytes=peak, sampled_VmHWM=hwm)
    assert peak <= hwm + MiB, f"PeakRssBytes {peak} but the process's own VmHWM was {hwm}"


def test_consumer_reports_the_drops(overflow, kinesis_local):
    o, _, stream = overflow
    res = run_consumer(stream, kinesis_local.endpoint)
    assert len(res.stdout.splitlines()) == len(o.distinct())
    reports = o.drop_reports()
    assert res.stderr.count("kte.dropped: ") == len(reports)
    total = sum(r["event"]["record"]["droppedEvents"] for r in reports)
    assert f"{total} events reported dropped" in res.stderr
    assert "missing and not reported" not in res.stderr, res.stderr


# ==========================================================================
# SHUTDOWN and SIGTERM during an outage


def test_shutdown_during_outage(kinesis_local, tmp_path):
    invokes, lines = 5, 10
    with faultlib.proxied_stream(kinesis_local, tmp_path, "shutdown-outage") as (proxy, stream):
        # KTE_FLUSH=end: each invoke's lines are delivered before the next
        # one, so what preceded the outage is known to be complete.
        run = faultlib.start(proxy, stream, tmp_path, invokes=invokes, lines=lines,
                             kte={"FLUSH": "end"})
        faultlib.wait_for_output(run, faultlib.function_line_marker(invokes - 1, lines))
        proxy.outage()  # until the end
        o = faultlib.finish(run, kinesis_local, stream)
    # Exited 0 on its own before the deadline, with its EMF line.
    faultlib.assert_exited_cleanly(o, invokes)
    assert o.summary["extensions"][KTE]["receivedShutdown"] is True
    faultlib.assert_emf_complete(o)
    left = o.m("EventsReceived") - o.m("EventsDelivered")
    assert left > 0
    assert o.m("DroppedShutdownDeadline") == left == o.m("EventsDropped"), o.emf
    assert len(o.events()) == o.m("EventsDelivered")
    # What was delivered before the outage is complete.
    got = collections.Counter(o.function_lines())
    want = o.expected_lines(lines)[: (invokes - 2) * lines]
    assert all(got[l] == 1 for l in want)
    assert any(f"{left} of {o.m('EventsReceived')} events could not be delivered" in l
               for l in o.log_lines("ERROR"))
    report("shutdown during outage", **emf_figures(o))


def test_sigterm_during_outage(kinesis_local, tmp_path):
    """SIGTERM while Kinesis is unreachable: flush for up to 1.5 s, print the
    EMF line, exit 0. The 10 s limit is a hang guard (documented: 1.5 s).
    An extension that exits during an invoke makes Lambda reset the
    environment; with invoke 2 the last, no new environment follows."""
    with faultlib.proxied_stream(kinesis_local, tmp_path, "sigterm-outage") as (proxy, stream):
        run = faultlib.start(proxy, stream, tmp_path, invokes=2, lines=10, event={"sleepMs": 5000})
        faultlib.wait_for_output(run, faultlib.invoke_done_marker(1))
        proxy.outage()
        # Invoke 2 sleeps 5 s after its lines; wait until the extension has them.
        faultlib.wait_for_delivery(run, "kte-line inv=2 n=10 ")
        (pid,) = harness.find_processes_by_exe(harness.EXTENSION, ancestor=run.pid)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        exited = True
        try:
            harness.wait_for(lambda: harness.process_exited(pid), 10, interval=0.005, what="exit after SIGTERM")
        except harness.HarnessError:
            exited = False
        elapsed = time.monotonic() - t0
        o = faultlib.finish(run, kinesis_local, stream)
    report("SIGTERM during outage", exit_seconds=round(elapsed, 3), **emf_figures(o))
    assert exited, o.describe()
    assert len(o.summary["environments"]) == 1, o.summary["environments"]
    ext = o.summary["environments"][0]["extensions"][KTE]
    assert ext["exitCode"] == 0 and ext["killed"] is False and ext["receivedShutdown"] is False, ext
    faultlib.assert_emf_complete(o)
    left = o.m("EventsReceived") - o.m("EventsDelivered")
    assert left > 0 and o.m("DroppedShutdownDeadline") == left == o.m("EventsDropped"), o.emf
    assert len(o.events()) == o.m("EventsDelivered")


# ==========================================================================
# A PutRecords call in flight when the end comes (Kinesis accepts the
# connection but does not answer). The buffer-full trigger (500 records)
# sends during the invoke with the full KTE_REQUEST_TIMEOUT_MS; the end of the
# extension must not wait for that timeout.


def test_shutdown_while_putrecords_hangs(kinesis_local, tmp_path):
    """Default timeouts (KTE_REQUEST_TIMEOUT_MS=5000). Expected: exits 0
    before the 2 s shutdown deadline with its EMF line."""
    with faultlib.proxied_stream(kinesis_local, tmp_path, "shutdown-hang") as (proxy, stream):
        proxy.set_slow_seconds(60)
        proxy.force("slow")
        run = faultlib.start(proxy, stream, tmp_path, invokes=1, lines=600)
        o = faultlib.finish(run, kinesis_local, stream)
        s = proxy.stats()
    report("SHUTDOWN while PutRecords hangs", killed=o.summary["shutdown"]["killed"],
           emf_lines=len(o.emf_all), requests=s["put_records_requests"],
           first_request_records=proxy.events()[0]["records"] if proxy.events() else None)
    assert s["put_records_requests"] >= 1 and proxy.events()[0]["records"] == 500  # the full-buffer send
    ext = o.summary["extensions"][KTE]
    assert ext["killed"] is False and ext["exitCode"] == 0, (
        "killed at the shutdown deadline: " + json.dumps(o.summary["shutdown"]))
    faultlib.assert_emf_complete(o)
    assert o.m("EventsDelivered") == 0
    assert o.m("DroppedShutdownDeadline") == o.m("EventsReceived"), o.emf
    # At least once: the abandoned request's records did reach the stream.
    report("SHUTDOWN while PutRecords hangs: stored though counted dropped", stored=len(o.events()))
    assert len(o.events()) == s["records_forwarded"] == 500


def test_shutdown_abandoning_a_batch_with_the_drop_report(kinesis_local, tmp_path):
    """The batch in flight at the shutdown deadline carries the kte.dropped
    record (it goes first after drops). Abandoning it must count its events
    as DroppedShutdownDeadline, but not the kte.dropped record, which is not
    an event: EventsReceived = EventsDelivered + EventsDropped still.
    Script: PutRecords 1 (500 records, buffer-full send) fails permanently,
    2 succeeds (the kte.dropped record is queued first), 3 (that record and
    499 events, sent during the invoke with KTE_REQUEST_TIMEOUT_MS=20000)
    never gets an answer."""
    with faultlib.proxied_stream(kinesis_local, tmp_path, "abandon-report") as (proxy, stream):
        proxy.set_slow_seconds(60)
        proxy.inject_next("permanent", 1)
        proxy.inject_next("ok", 1)
        proxy.inject_next("slow", 1000)
        run = faultlib.start(proxy, stream, tmp_path, invokes=1, lines=1600, event={"sleepMs": 3000},
                             kte={"REQUEST_TIMEOUT_MS": 20000})
        o = faultlib.finish(run, kinesis_local, stream)
        events = proxy.events()
    report("abandoned batch with kte.dropped", requests=[(e["records"], e["fault"], e["status"]) for e in events],
           **emf_figures(o))
    assert [e["fault"] for e in events[:3]] == ["permanent", None, "slow"], events
    assert [e["records"] for e in events[:3]] == [500, 500, 500], events
    assert o.m("DroppedPermanentError") == 500 and o.m("EventsDelivered") == 500, o.emf
    ext = o.summary["extensions"][KTE]
    assert ext["killed"] is False and ext["exitCode"] == 0, o.describe()
    # The kte.dropped record rode in request 3 (stored by kinesis-local although unanswered).
    reports = o.drop_reports()
    assert len(reports) == 1 and reports[0]["event"]["record"]["droppedEvents"] == 500, reports
    received, delivered, dropped = o.m("EventsReceived"), o.m("EventsDelivered"), o.m("EventsDropped")
    assert delivered + dropped == received, (
        f"EventsDelivered {delivered} + EventsDropped {dropped} = {delivered + dropped} != EventsReceived "
        f"{received}: DroppedShutdownDeadline={o.m('DroppedShutdownDeadline')} counts the kte.dropped record "
        f"of the abandoned batch as an event")
    faultlib.assert_emf_complete(o)


def test_sigterm_while_putrecords_hangs(kinesis_local, tmp_path):
    """SIGTERM flushes for at most 1.5 s. With a request in flight whose
    timeout is KTE_REQUEST_TIMEOUT_MS=15000, the exit must still come within
    the 10 s hang guard."""
    with faultlib.proxied_stream(kinesis_local, tmp_path, "sigterm-hang") as (proxy, stream):
        proxy.set_slow_seconds(60)
        run = faultlib.start(proxy, stream, tmp_path, invokes=2, lines=600, event={"sleepMs": 3000},
                             kte={"REQUEST_TIMEOUT_MS": 15000})
        faultlib.wait_for_output(run, faultlib.invoke_done_marker(1))
        proxy.force("slow")
        assert proxy.wait_until(lambda s: s["injected"]["slow"] >= 1, 30), "no request in flight"
        (pid,) = harness.find_processes_by_exe(harness.EXTENSION, ancestor=run.pid)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        exited = True
        try:
            harness.wait_for(lambda: harness.process_exited(pid), 10, interval=0.005, what="exit after SIGTERM")
        except harness.HarnessError:
            exited = False
        elapsed = time.monotonic() - t0
        proxy.unforce()
        o = faultlib.finish(run, kinesis_local, stream)
    if not exited:
        elapsed = None
    report("SIGTERM while PutRecords hangs", exited_within_guard=exited, exit_seconds=elapsed,
           emf_lines=len(o.emf_all), warn=o.log_lines("WARN")[:2])
    assert exited, "still running 10 s after SIGTERM (waiting for the in-flight request's timeout)"
    faultlib.assert_emf_complete(o)


# ==========================================================================
# connections closed by the server while the environment is frozen

FREEZE_INVOKES = 4


@pytest.mark.parametrize("mode", ["fin", "rst"])
def test_freeze_with_server_side_idle_close(kinesis_local, tmp_path, mode):
    """lambda-sim freezes 2 s between invokes (and before shutdown); the proxy
    closes keep-alive connections idle for 0.3 s (a load balancer's idle
    timeout). libcurl must notice the dead connection and reconnect without
    losing anything."""
    with faultlib.proxied_stream(kinesis_local, tmp_path, f"idle-{mode}") as (proxy, stream):
        proxy.set_idle_close(0.3, mode)
        run = faultlib.start(proxy, stream, tmp_path, invokes=FREEZE_INVOKES, lines=10, idle_ms=2000,
                             kte={"FLUSH_TIMEOUT_MS": 10000})
        o = faultlib.finish(run, kinesis_local, stream)
        s = proxy.stats()
    report(f"freeze, idle close {mode}", idle_closes=s["idle_closes"], connections=s["connections_accepted"],
           BatchesFailed=o.m("BatchesFailed"), RecordsRetried=o.m("RecordsRetried"),
           warn=o.log_lines("WARN"))
    faultlib.assert_exited_cleanly(o, FREEZE_INVOKES)
    faultlib.assert_emf_complete(o)
    # Every freeze (after each invoke, and before shutdown) closed the
    # connection, so every flush after the first one needed a new connection.
    assert s["idle_closes"][mode] >= FREEZE_INVOKES, s
    assert s["connections_accepted"] >= FREEZE_INVOKES + 1, s
    faultlib.assert_every_line_once(o, 10)
    assert o.m("EventsDropped") == 0 and o.m("EventsReceived") == o.m("EventsDelivered"), o.emf
    assert_proxy_identities(o, proxy)
    if mode == "fin":
        assert o.m("BatchesFailed") == 0 and o.m("RecordsRetried") == 0, o.emf


# ==========================================================================
# permanent error


def test_permanent_error_logged_once_no_retry_storm(kinesis_local, tmp_path):
    invokes = 5
    with faultlib.proxied_stream(kinesis_local, tmp_path, "permanent") as (proxy, stream):
        proxy.set_permanent_error(True)
        run = faultlib.start(proxy, stream, tmp_path, invokes=invokes, lines=10)
        o = faultlib.finish(run, kinesis_local, stream)
        s = proxy.stats()
    faultlib.assert_exited_cleanly(o, invokes)
    faultlib.assert_emf_complete(o)
    errors = [l for l in o.log_lines("ERROR") if stream in l and "ResourceNotFoundException" in l]
    report("permanent error", requests=s["put_records_requests"], errors=errors, **emf_figures(o))
    assert len(errors) == 1, o.log_lines("ERROR")
    # At most one PutRecords per flush (each invoke, and shutdown), no retries.
    assert 1 <= s["put_records_requests"] <= invokes + 1, s
    assert s["injected"]["permanent"] == s["put_records_requests"]
    assert o.m("RecordsRetried") == 0
    assert o.m("DroppedPermanentError") == o.m("EventsReceived") - o.m("EventsDelivered") > 0, o.emf
    assert o.m("EventsDelivered") == 0 and o.records == []
    assert_proxy_identities(o, proxy)


# ==========================================================================
# recovery with more than one batch buffered, after drops


def test_recovery_at_shutdown_sends_the_whole_backlog(kinesis_local, tmp_path):
    """Kinesis is down for the whole run (the buffer overflows) and back
    during the freeze before SHUTDOWN. The backlog is 500 to 1000 records:
    two PutRecords. After the first succeeds the extension queues its
    kte.dropped record; the shutdown flush must go on with the second (which
    carries that record) while time is left -- the first takes ~0.5 s of
    the ~1.8 s. Checked: the number of PutRecords kinesis saw (all in the
    shutdown flush: the proxy refused connections until then) and the
    kte.dropped record in the stream."""
    invokes, lines = 3, 400
    with faultlib.proxied_stream(kinesis_local, tmp_path, "recovery-shutdown") as (proxy, stream):
        proxy.outage()
        run = faultlib.start(proxy, stream, tmp_path, invokes=invokes, lines=lines, line_bytes=1000,
                             idle_ms=300, kte={"MAX_BUFFER_BYTES": 1048576, "FLUSH_TIMEOUT_MS": 300})
        faultlib.wait_for_output(run, faultlib.invoke_done_marker(invokes))
        proxy.end_outage()
        o = faultlib.finish(run, kinesis_local, stream)
        events = proxy.events()
    faultlib.assert_exited_cleanly(o, invokes)
    faultlib.assert_emf_complete(o)
    backlog = o.m("EventsReceived") - o.m("DroppedBufferOverflow")
    sd = o.summary["shutdown"]
    report("recovery at shutdown", backlog=backlog,
           requests=[(e["records"], e["status"], e.get("upstream_ms")) for e in events],
           shutdown_ms=sd["durationMs"], **emf_figures(o))
    assert o.m("DroppedBufferOverflow") > 0 and 500 < backlog < 1000, o.emf  # the scenario happened
    assert events and events[0]["status"] == 200
    first_ms = events[0].get("upstream_ms") or 0
    if len(events) < 2 and first_ms > 900:
        # The scenario needs kinesis-local to store ~800 KB in well under
        # half of the ~1.8 s left; on a machine this loaded it cannot, and
        # the extension was right to stop (what is left is counted).
        assert o.m("EventsDelivered") + o.m("DroppedShutdownDeadline") == backlog, o.emf
        pytest.skip(f"kinesis-local took {first_ms:.0f} ms for the first PutRecords: no time for a second")
    assert len(events) >= 2, (
        f"the shutdown flush stopped after {len(events)} PutRecords with {backlog - events[0]['records']} "
        f"events still buffered (counted DroppedShutdownDeadline={o.m('DroppedShutdownDeadline')}); "
        f"the extension exited {sd['durationMs']} ms into the 2000 ms shutdown phase")
    assert len(o.drop_reports()) == 1, "no kte.dropped record although delivery worked"
    assert o.m("EventsDelivered") == backlog - o.m("DroppedShutdownDeadline")
