"""Lifecycle fidelity: freeze, report ordering, shutdown deadline, delivery retry, logsDropped."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ALL_TYPES, FAST


class ExternalListener:
    """A telemetry listener in the test process: never frozen, so it sees exactly when the sim POSTs."""

    def __init__(self, answer_delay_for=None, delay_s=0.0):
        self.arrivals = []  # (epoch seconds, events)
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events = json.loads(body)
                outer.arrivals.append((time.time(), events))
                if answer_delay_for and any(ev["type"] == answer_delay_for for ev in events):
                    time.sleep(delay_s)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def by_kind(records, kind):
    return [r for r in records if r["k"] == kind]


def test_freeze_between_invokes_stops_processes_and_delivery(sandbox):
    listener = ExternalListener()
    try:
        ext = sandbox.ext("ticker", tick_ms=10, subscribe={"types": ALL_TYPES, "buffering": FAST},
                          uri="http://127.0.0.1:%d/t" % listener.port)
        run = sandbox.run([ext], args=["--invokes", 3, "--idle-ms", 300], env={"RT_LINES": 5}, expect=0)
    finally:
        listener.close()
    s = run.summary
    freezes = s["freezes"]
    # two freezes between the three invokes and one before shutdown
    assert len(freezes) == 3, run.describe()
    for f in freezes:
        assert f["endMs"] - f["startMs"] >= 300
    ticks = [r["t"] for r in run.ext("ticker") if r["k"] == "tick"]
    assert len(ticks) > 4
    for f in freezes:
        start, end = f["startMs"] / 1000.0, f["endMs"] / 1000.0
        inside = [t for t in ticks if start + 0.005 < t < end - 0.005]
        assert inside == [], "the extension ticked while frozen"
        before = max(t for t in ticks if t <= start + 0.005)
        after = min(t for t in ticks if t >= end - 0.005)
        assert after - before >= 0.300 - 0.002, (before, after, f)
    # the sim itself does not POST telemetry while the environment is frozen
    assert listener.arrivals
    for t, _ in listener.arrivals:
        for f in freezes:
            assert not (f["startMs"] / 1000.0 < t < f["endMs"] / 1000.0), ("POST while frozen", t, f)
    delivered = sum(len(evs) for _, evs in listener.arrivals)
    assert delivered == s["subscribers"]["ticker"]["delivered"]


def test_report_of_invoke_n_arrives_during_invoke_n_plus_1_and_last_during_shutdown(sandbox):
    ext = sandbox.ext("orderly", subscribe={"types": ["platform"], "buffering": FAST},
                      wait_runtime_done_ms=3000, shutdown_wait_report_ms=1800)
    run = sandbox.run([ext], args=["--invokes", 4, "--idle-ms", 200], expect=0)
    s = run.summary
    rids = [i["requestId"] for i in s["invokes"]]
    assert len(rids) == 4 and all(i["status"] == "success" for i in s["invokes"])
    recs = run.ext("orderly")
    # one timeline: position of every INVOKE/SHUTDOWN and of every received event
    invoke_pos, shutdown_pos, got = {}, None, {}
    for pos, r in enumerate(recs):
        if r["k"] == "next":
            if r["event"]["eventType"] == "INVOKE":
                invoke_pos[r["event"]["requestId"]] = pos
            else:
                shutdown_pos = pos
        if r["k"] == "batch":
            for ev in r["events"]:
                if ev["type"] in ("platform.runtimeDone", "platform.report"):
                    key = (ev["type"], ev["record"]["requestId"])
                    assert key not in got, "delivered twice: %s" % (key,)
                    got[key] = (pos, r["t"])
    assert list(invoke_pos) == rids
    assert shutdown_pos is not None
    for n, rid in enumerate(rids):
        done_pos, _ = got[("platform.runtimeDone", rid)]
        report_pos, report_t = got[("platform.report", rid)]
        # runtimeDone reaches the extension while invoke N is still open (before its next call)
        assert invoke_pos[rid] < done_pos
        if n + 1 < len(rids):
            assert done_pos < invoke_pos[rids[n + 1]]
            # report N only after the freeze, when INVOKE N+1 is handed out (the extension's
            # listener and next threads race by a few ms; the freeze is 200 ms)
            assert report_t * 1000.0 >= s["freezes"][n]["endMs"], "report %d arrived before the thaw" % n
            assert report_t >= recs[invoke_pos[rids[n + 1]]]["t"] - 0.05, "report %d before invoke %d" % (n, n + 1)
        else:
            assert report_t * 1000.0 >= s["shutdown"]["startMs"], "last report arrived before shutdown"
    waits = [r for r in recs if r["k"] == "runtimeDone-wait"]
    assert len(waits) == 4 and all(w["ok"] for w in waits)
    assert [r for r in recs if r["k"] == "report-wait"][0]["ok"] is True
    # report carries initDurationMs only on the first invoke
    reports = [ev for b in run.batches("orderly") for ev in b["events"] if ev["type"] == "platform.report"]
    assert "initDurationMs" in reports[0]["record"]["metrics"]
    assert all("initDurationMs" not in r["record"]["metrics"] for r in reports[1:])
    assert reports[0]["record"]["metrics"]["initDurationMs"] == s["init"]["durationMs"]


def test_invoke_completes_only_when_every_extension_called_next(sandbox):
    slow = sandbox.ext("slowpoke", work_ms=250)
    quick = sandbox.ext("quick")
    run = sandbox.run([slow, quick], args=["--invokes", 2, "--idle-ms", 0], expect=0)
    for inv in run.summary["invokes"]:
        # slowpoke gets INVOKE after the invoke began and works 250 ms before
        # next: the invoke lasts that long, and most of it is extension
        # overhead (what the runtime took is not: 11.5 ms once on Debian 13,
        # which failed an overhead >= 240 check)
        assert inv["durationMs"] >= 248, run.describe()
        assert inv["extensionOverheadMs"] >= 150, run.describe()
        assert inv["durationMs"] >= inv["extensionOverheadMs"]
    # the runtime gets invoke 2 only after slowpoke called next for invoke 1
    rt_invokes = [r for r in run.rt() if r["k"] == "invoke"]
    slow_next = [r for r in run.ext("slowpoke") if r["k"] == "next"]
    assert rt_invokes[1]["t"] - slow_next[0]["t"] >= 0.24


def test_no_extension_means_no_overhead(sandbox):
    run = sandbox.run([], args=["--invokes", 2, "--idle-ms", 0], expect=0)
    assert [i["extensionOverheadMs"] for i in run.summary["invokes"]] == [0.0, 0.0]
    assert run.summary["shutdown"]["killed"] == []


def test_shutdown_deadline_kills_what_is_left(sandbox):
    ext = sandbox.ext("stubborn", shutdown="hang")
    t0 = time.time()
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], env={"RT_MODE": "ignore-term"}, expect=0)
    s = run.summary
    assert s["exitReason"] == "completed"
    assert s["shutdown"]["killed"] == ["runtime", "stubborn"], run.describe()
    assert s["extensions"]["stubborn"]["killed"] is True
    assert s["shutdown"]["exitCodes"] == {"runtime": -9, "stubborn": -9}
    assert 1950 <= s["shutdown"]["durationMs"] < 6000
    assert time.time() - t0 < 30
    # SIGTERM reached the runtime first; the extension's SHUTDOWN came after the runtime's share
    sigterm = [r for r in run.rt() if r["k"] == "sigterm"]
    assert len(sigterm) == 1
    shut = [r for r in run.ext("stubborn") if r["k"] == "next" and r["event"]["eventType"] == "SHUTDOWN"]
    assert len(shut) == 1
    assert shut[0]["t"] - sigterm[0]["t"] >= 0.28
    ev = shut[0]["event"]
    assert ev["shutdownReason"] == "spindown"
    assert isinstance(ev["deadlineMs"], int)
    assert ev["deadlineMs"] == s["shutdown"]["deadlineMs"]
    assert abs(ev["deadlineMs"] - (s["shutdown"]["startMs"] + 2000)) <= 1


def test_well_behaved_shutdown_is_quick_and_kills_nothing(sandbox):
    ext = sandbox.ext("polite", shutdown_wait_report_ms=1000, subscribe={"types": ["platform"], "buffering": FAST})
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0, "--shutdown-reason", "failure"], expect=0)
    s = run.summary
    assert s["shutdown"]["killed"] == [] and s["shutdown"]["reason"] == "failure"
    assert s["shutdown"]["durationMs"] < 1900
    assert s["shutdown"]["exitCodes"]["polite"] == 0
    shut = [r for r in run.ext("polite") if r["k"] == "next" and r["event"]["eventType"] == "SHUTDOWN"]
    assert shut[0]["event"]["shutdownReason"] == "failure"
    assert s["extensions"]["polite"]["killed"] is False


def test_delivery_retries_until_a_late_listener_is_up(sandbox):
    ext = sandbox.ext("late", listen_delay_ms=700, subscribe={"types": ALL_TYPES, "buffering": FAST},
                      shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 0], expect=0)
    s = run.summary
    sub = s["subscribers"]["late"]
    assert sub["retries"] >= 2, run.describe()
    recs = run.ext("late")
    listening = [r["t"] for r in recs if r["k"] == "listening"][0]
    batches = [r for r in recs if r["k"] == "batch"]
    assert batches and batches[0]["t"] >= listening
    events = [ev for b in batches for ev in b["events"]]
    types = [ev["type"] for ev in events]
    # nothing lost: the init backlog and both invokes arrive, each once
    assert types.count("platform.initStart") == 1
    assert types.count("platform.report") == 2
    assert len(events) == sub["delivered"]
    assert sub["dropped"] == 0


def test_failed_posts_are_retried_with_the_same_batch(sandbox):
    ext = sandbox.ext("flaky", fail_first_posts=3, subscribe={"types": ["platform"], "buffering": FAST},
                      shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    sub = run.summary["subscribers"]["flaky"]
    assert sub["retries"] == 3
    assert len([r for r in run.ext("flaky") if r["k"] == "post-failed"]) == 3
    types = [ev["type"] for ev in run.events("flaky")]
    assert types.count("platform.initStart") == 1
    assert types.count("platform.report") == 1
    assert len(types) == sub["delivered"]


def test_a_batch_answered_while_the_sandbox_shuts_down_is_counted_as_delivered(sandbox):
    # issue 16 item 2: the summary raced the delivery thread. The listener
    # (here in the test process) answers the POST holding the last report
    # 300 ms after it came, when the only extension has already exited: that
    # POST is in flight when the shutdown phase ends, and it is delivered.
    listener = ExternalListener(answer_delay_for="platform.report", delay_s=0.3)
    try:
        ext = sandbox.ext("brief", subscribe={"types": ["platform"], "buffering": FAST},
                          uri="http://127.0.0.1:%d/t" % listener.port, shutdown_linger_ms=150)
        run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    finally:
        listener.close()
    sub = run.summary["subscribers"]["brief"]
    received = [ev for _, evs in listener.arrivals for ev in evs]
    assert [ev["type"] for ev in received].count("platform.report") == 1, run.describe()
    assert sub["delivered"] == len(received), run.describe()
    assert sub["queued"] == 0


def test_slow_listener_drops_logs_and_gets_logs_dropped(sandbox):
    ext = sandbox.ext("slow", slow_ms=250, subscribe={"types": ["platform", "function"],
                                                      "buffering": {"timeoutMs": 25, "maxItems": 1000}},
                      shutdown_wait_report_ms=1000, shutdown_linger_ms=900)
    lines = 3000
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0, "--subscriber-queue-max", 100],
                      env={"RT_LINES": lines}, expect=0)
    sub = run.summary["subscribers"]["slow"]
    assert sub["dropped"] > 0, run.describe()
    events = run.events("slow")
    dropped_events = [ev for ev in events if ev["type"] == "platform.logsDropped"]
    assert dropped_events, "no platform.logsDropped delivered"
    for ev in dropped_events:
        rec = ev["record"]
        assert set(rec) == {"reason", "droppedRecords", "droppedBytes"}
        assert rec["reason"] == ("Some logs were dropped because the downstream consumer is slower "
                                 "than the logs production rate")
        assert rec["droppedRecords"] > 0 and rec["droppedBytes"] > 0
    fn = [ev["record"] for ev in events if ev["type"] == "function"]
    assert len(fn) == len(set(fn))
    # exact accounting: every line was either delivered or counted as dropped
    assert len(fn) + sum(ev["record"]["droppedRecords"] for ev in dropped_events) == lines
    assert sub["dropped"] == sum(ev["record"]["droppedRecords"] for ev in dropped_events)
    # platform events are never dropped
    types = [ev["type"] for ev in events]
    assert types.count("platform.runtimeDone") == 1 and types.count("platform.report") == 1


def test_function_timeout(sandbox):
    ext = sandbox.ext("watcher", subscribe={"types": ["platform"], "buffering": FAST}, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 1, "--timeout", 1, "--idle-ms", 0], env={"RT_MODE": "timeout"},
                      expect=0)
    s = run.summary
    assert [i["status"] for i in s["invokes"]] == ["timeout"]
    assert s["invokes"][0]["durationMs"] >= 1000
    assert s["shutdown"]["reason"] == "timeout"
    shut = [r for r in run.ext("watcher") if r["k"] == "next" and r["event"]["eventType"] == "SHUTDOWN"]
    assert shut[0]["event"]["shutdownReason"] == "timeout"
    events = run.events("watcher")
    done = [ev["record"] for ev in events if ev["type"] == "platform.runtimeDone"]
    report = [ev["record"] for ev in events if ev["type"] == "platform.report"]
    assert done[0]["status"] == "timeout" and report[0]["status"] == "timeout"
    assert "errorType" not in report[0]
    # deadline given to the runtime = invoke start + timeout
    inv = [r for r in run.rt() if r["k"] == "invoke"][0]
    assert abs(int(inv["headers"]["Lambda-Runtime-Deadline-Ms"]) - inv["t"] * 1000 - 1000) < 150


def test_function_error_and_crash(sandbox):
    ext = sandbox.ext("watcher", subscribe={"types": ["platform"], "buffering": FAST}, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 0],
                      env={"RT_MODE": "error", "RT_ERROR_TYPE": "Function.MyError"}, expect=0)
    assert [i["status"] for i in run.summary["invokes"]] == ["error", "error"]
    events = run.events("watcher")
    done = [ev["record"] for ev in events if ev["type"] == "platform.runtimeDone"]
    assert [d["status"] for d in done] == ["error", "error"] and done[0]["errorType"] == "Function.MyError"
    posted = [r for r in run.rt() if r["k"] == "posted"]
    assert posted[0]["status"] == 202 and json.loads(posted[0]["body"]) == {"status": "OK"}

    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], env={"RT_MODE": "crash"}, expect=0)
    s = run.summary
    # a crash is an "error" with the first fatal error's type (rapid/handlers.go handleReset)
    assert [i["status"] for i in s["invokes"]] == ["error"]
    assert s["invokes"][0]["errorType"] == "Runtime.ExitError"
    assert s["shutdown"]["reason"] == "failure"
    assert s["shutdown"]["exitCodes"]["runtime"] == 3


def test_extension_init_error_fails_init(sandbox):
    bad = sandbox.ext("broken", init_error="Extension.ConfigInvalid", init_error_delay_ms=400)
    good = sandbox.ext("fine")
    run = sandbox.run([bad, good], args=["--invokes", 0], expect=1)
    s = run.summary
    assert s["exitReason"] == "initFailed"
    assert s["invokes"] == []
    errs = s["init"]["errors"]
    assert errs[0]["source"] == "extension:broken"
    assert errs[0]["errorType"] == "Extension.ConfigInvalid"
    assert "cannot start" in errs[0]["body"]
    assert s["extensions"]["broken"]["initError"]["errorType"] == "Extension.ConfigInvalid"
    assert [r for r in run.ext("broken") if r["k"] == "init-error"][0]["status"] == 202
    # the healthy extension is shut down with reason failure
    shut = [r for r in run.ext("fine") if r["k"] == "next"]
    assert shut and shut[-1]["event"] == {"eventType": "SHUTDOWN", "shutdownReason": "failure",
                                          "deadlineMs": s["shutdown"]["deadlineMs"]}


@pytest.mark.parametrize("mode,etype", [("init-error", "Runtime.Unknown"), ("init-crash", "Runtime.ExitError")])
def test_runtime_init_failure(sandbox, mode, etype):
    run = sandbox.run([sandbox.ext("fine")], args=["--invokes", 0], env={"RT_MODE": mode}, expect=1)
    s = run.summary
    assert s["exitReason"] == "initFailed"
    assert s["init"]["errors"][0]["source"] == "runtime"
    assert s["init"]["errors"][0]["errorType"] == etype


def test_init_is_limited(sandbox, tmp_path):
    hang = tmp_path / "hang-bootstrap"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    t0 = time.time()
    run = sandbox.run([], bootstrap=hang, args=["--init-timeout-ms", 500, "--invokes", 0], expect=1)
    assert time.time() - t0 < 10
    assert run.summary["init"]["errors"][0]["errorType"] == "Sandbox.Timedout"
    # `sleep` dies of the SIGTERM within the runtime's share
    assert run.summary["shutdown"]["killed"] == []
    assert run.summary["shutdown"]["exitCodes"]["runtime"] == -15


def test_exit_error_is_recorded(sandbox):
    ext = sandbox.ext("grumpy", shutdown="exit-error")
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    e = run.summary["extensions"]["grumpy"]
    assert e["exitError"]["errorType"] == "Extension.FlushFailed"
    assert "flush failed" in e["exitError"]["body"]
    assert [r for r in run.ext("grumpy") if r["k"] == "exit-error"][0]["status"] == 202


def test_runtime_done_always_precedes_report_even_when_extensions_are_already_waiting(sandbox):
    # An extension that calls next at once is already waiting when the runtime
    # answers, so the invoke completes the moment the runtime calls next: its
    # report must still come after the runtimeDone the response produced (a
    # race the integration suite once caught). Many short invokes make a
    # regression show.
    ext = sandbox.ext("eager", subscribe={"types": ["platform"], "buffering": FAST},
                      shutdown_linger_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 60, "--idle-ms", 0], expect=0)
    rids = [i["requestId"] for i in run.summary["invokes"]]
    assert len(rids) == 60
    order = [(ev["type"], ev["record"]["requestId"]) for ev in run.events("eager")
             if ev["type"] in ("platform.runtimeDone", "platform.report")]
    for rid in rids:
        done = order.index(("platform.runtimeDone", rid))
        report = order.index(("platform.report", rid))
        assert done < report, (rid, done, report)
