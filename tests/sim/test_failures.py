"""Failure paths as Lambda runs them (issue 13, differences 1-9): resets after a
timeout or crash, init retried during the first invoke, the extensions'
environment, init telemetry order, runtimeDone at the runtime's next,
subscriptions closing with init, no API call after an error, error types and
status, partial log lines."""
import json

import pytest

from conftest import ALL_TYPES, FAST, PROCS, RUNTIME

WATCH = {"types": ALL_TYPES, "buffering": FAST}


def processes(run, name):
    """Per process of extension `name` (in start order): its observation lines."""
    out, cur = [], None
    for r in run.ext(name):
        if r["k"] == "start":
            cur = []
            out.append(cur)
        if cur is not None:
            cur.append(r)
    return out


def received(recs):
    return [ev for r in recs if r["k"] == "batch" for ev in r["events"]]


def shutdown_reasons(recs):
    return [r["event"]["shutdownReason"] for r in recs if r["k"] == "next" and r["event"]["eventType"] == "SHUTDOWN"]


# ---- 1. reset after a timeout or a crash ---------------------------------------

@pytest.mark.parametrize("mode,status,reason", [("timeout-once", "timeout", "timeout"),
                                                ("crash-once", "error", "failure")])
def test_timeout_or_crash_resets_the_environment_and_the_rest_runs_in_a_new_one(sandbox, mode, status, reason):
    ext = sandbox.ext("watcher", subscribe=WATCH, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 3, "--timeout", 1, "--idle-ms", 0], env={"RT_MODE": mode}, expect=0)
    s = run.summary
    assert s["exitReason"] == "completed", run.describe()
    assert [i["status"] for i in s["invokes"]] == [status, "success", "success"], run.describe()
    assert [i["environment"] for i in s["invokes"]] == [1, 2, 2]
    envs = s["environments"]
    assert s["resets"] == 1 and len(envs) == 2
    rids = [i["requestId"] for i in s["invokes"]]
    assert envs[0]["requestIds"] == rids[:1] and envs[0]["resetReason"] == reason
    assert envs[0]["shutdown"]["reason"] == reason
    assert envs[1]["requestIds"] == rids[1:] and envs[1]["resetReason"] is None
    assert envs[1]["shutdown"]["reason"] == "spindown" and s["shutdown"] == envs[1]["shutdown"]
    assert envs[0]["initPhase"] == "init" and envs[1]["initPhase"] == "invoke"
    # new processes: two extension processes and two runtimes, each with its own pid
    procs = processes(run, "watcher")
    assert len(procs) == 2
    assert procs[0][0]["pid"] != procs[1][0]["pid"]
    rt_pids = [r["pid"] for r in run.rt() if r["k"] == "env"]
    assert len(rt_pids) == 2 and rt_pids[0] != rt_pids[1]
    assert shutdown_reasons(procs[0]) == [reason] and shutdown_reasons(procs[1]) == ["spindown"]
    # the first process saw its failed invoke; the second a new init (phase invoke), then the rest
    first, second = received(procs[0]), received(procs[1])
    done = [e["record"] for e in first if e["type"] == "platform.runtimeDone"]
    assert [(d["requestId"], d["status"]) for d in done] == [(rids[0], status)]
    starts = [e["record"] for e in second if e["type"] == "platform.initStart"]
    assert [st["phase"] for st in starts] == ["invoke"]
    reports = [e["record"]["requestId"] for e in second if e["type"] == "platform.report"]
    assert reports == rids[1:]
    # the summary's counters add up over both environments
    assert s["subscribers"]["watcher"]["delivered"] == len(first) + len(second)


# ---- 2. init failures are retried during the first invoke -----------------------

@pytest.mark.parametrize("mode,etype", [("init-crash-once", "Runtime.ExitError"),
                                        ("init-hang-once", "Sandbox.Timedout")])
def test_failed_init_is_retried_during_the_first_invoke(sandbox, mode, etype):
    ext = sandbox.ext("watcher", subscribe=WATCH, shutdown_wait_report_ms=1500, shutdown_linger_ms=300)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 0, "--init-timeout-ms", 700, "--timeout", 5],
                      env={"RT_MODE": mode}, expect=0)
    s = run.summary
    assert s["exitReason"] == "completed", run.describe()
    assert [i["status"] for i in s["invokes"]] == ["success", "success"]
    envs = s["environments"]
    assert len(envs) == 2 and envs[0]["requestIds"] == [] and envs[0]["init"]["status"] == "failed"
    assert envs[0]["init"]["errors"][0]["errorType"] == etype
    assert s["init"]["errors"][0]["errorType"] == etype
    procs = processes(run, "watcher")
    assert len(procs) == 2 and shutdown_reasons(procs[0]) == ["failure"]
    first = [(e["type"], e["record"]) for e in received(procs[0]) if e["type"].startswith("platform.init")]
    assert first[-1][0] == "platform.initReport" and first[-1][1]["phase"] == "init"
    assert first[-1][1]["status"] == ("timeout" if etype == "Sandbox.Timedout" else "error")
    # the retry: init events with phase "invoke", then the invoke itself
    second = received(procs[1])
    types = [e["type"] for e in second]
    init = [e["record"] for e in second if e["type"] in ("platform.initStart", "platform.initReport")]
    assert [r["phase"] for r in init] == ["invoke", "invoke"] and init[1]["status"] == "success"
    assert types.index("platform.initReport") < types.index("platform.start")
    report = [e["record"] for e in second if e["type"] == "platform.report"][0]
    assert report["requestId"] == s["invokes"][0]["requestId"]
    assert "initDurationMs" in report["metrics"]


def test_init_failing_again_fails_each_invoke_in_a_new_environment(sandbox):
    run = sandbox.run([sandbox.ext("fine")], args=["--invokes", 2, "--idle-ms", 0], env={"RT_MODE": "init-crash"},
                      expect=1)
    s = run.summary
    assert s["exitReason"] == "initFailed"
    assert [(i["status"], i["errorType"]) for i in s["invokes"]] == [("error", "Runtime.ExitError")] * 2
    assert [e["initPhase"] for e in s["environments"]] == ["init", "invoke", "invoke"]
    assert [e["requestIds"] for e in s["environments"]] == [[], [s["invokes"][0]["requestId"]],
                                                            [s["invokes"][1]["requestId"]]]
    assert len([r for r in run.rt() if r["k"] == "env"]) == 3


# ---- 4. init telemetry order and real extension states ---------------------------

def test_init_order_and_extension_states(sandbox):
    # repeated: the old race put initReport before initRuntimeDone in some runs
    for n in range(3):
        name = "good%d" % n
        good = sandbox.ext(name, subscribe=WATCH, shutdown_wait_report_ms=1500)
        run = sandbox.run([good], args=["--invokes", 1, "--idle-ms", 0], env={"RT_INIT_LINES": 2}, expect=0)
        types = [e["type"] for e in run.events(name)]
        init = [t for t in types if t in ("platform.initRuntimeDone", "platform.extension", "platform.initReport")]
        assert init == ["platform.initRuntimeDone", "platform.extension", "platform.initReport"], types
        # what the runtime logged during init comes before initRuntimeDone
        fn = [i for i, e in enumerate(run.events(name)) if e["type"] == "function"]
        assert fn[0] < types.index("platform.initRuntimeDone")
        ext = [e["record"] for e in run.events(name) if e["type"] == "platform.extension"][0]
        assert ext == {"name": name, "state": "Ready", "events": ["INVOKE", "SHUTDOWN"]}
    # an extension that fails its init is reported with its state and error type
    bad = sandbox.ext("broken", init_error="Extension.ConfigInvalid", init_error_delay_ms=300)
    watch = sandbox.ext("watch", subscribe={"types": ["platform"], "buffering": FAST}, shutdown_linger_ms=500)
    run = sandbox.run([watch, bad], args=["--invokes", 0], expect=1)
    states = {e["record"]["name"]: e["record"] for e in run.events("watch") if e["type"] == "platform.extension"}
    assert states["broken"]["state"] == "InitError"
    assert states["broken"]["errorType"] == "Extension.ConfigInvalid"
    assert states["watch"]["state"] == "Ready"


def test_managed_instances_init_runtime_done_precedes_start(sandbox):
    for n in range(3):
        ext = sandbox.ext("lmi%d" % n, events=["SHUTDOWN"], shutdown_linger_ms=400,
                          subscribe={"types": ["platform"], "schemaVersion": "2025-01-29", "buffering": FAST})
        run = sandbox.run([ext], args=["--mode", "managed-instances", "--invokes", 2, "--idle-ms", 0], expect=0)
        types = [e["type"] for e in run.events("lmi%d" % n)]
        assert types.index("platform.initRuntimeDone") < types.index("platform.initReport") \
            < types.index("platform.start"), types


# ---- 5. runtimeDone when the runtime calls next; overhead spans ------------------

def test_runtime_done_is_sent_when_the_runtime_calls_next(sandbox):
    ext = sandbox.ext("watcher", subscribe=WATCH, work_ms=400, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 0, "--log-format", "json"],
                      env={"RT_AFTER_MS": 200, "RT_LINES": 1}, expect=0)
    events = run.events("watcher")
    rids = [i["requestId"] for i in run.summary["invokes"]]
    for rid in rids:
        pos = {(e["type"], (e["record"].get("message") if e["type"] == "function" else None)): i
               for i, e in enumerate(events) if isinstance(e["record"], dict)}
        after = pos[("function", "after %s" % rid)]
        done_i = [i for i, e in enumerate(events) if e["type"] == "platform.runtimeDone"
                  and e["record"]["requestId"] == rid][0]
        # the line logged between response and next belongs to the invoke
        assert after < done_i
        assert events[after]["record"]["requestId"] == rid
        done = events[done_i]["record"]
        assert [sp["name"] for sp in done["spans"]] == ["responseLatency", "responseDuration", "runtimeOverhead"]
        overhead = done["spans"][2]["durationMs"]
        assert overhead >= 190, done
        assert done["metrics"]["durationMs"] >= overhead
        report = [e["record"] for e in events if e["type"] == "platform.report" and e["record"]["requestId"] == rid][0]
        # the extension works 400 ms after INVOKE, the runtime is ready after ~200 ms
        assert [sp["name"] for sp in report["spans"]] == ["extensionOverhead"]
        assert 50 <= report["spans"][0]["durationMs"] <= report["metrics"]["durationMs"]


# ---- 6. subscriptions close with init ------------------------------------------

def test_subscription_after_init_is_closed(sandbox):
    late = {"id": "late", "path": "/2022-07-01/telemetry",
            "body": {"schemaVersion": "2022-12-13", "types": ["platform"],
                     "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}}}
    ext = sandbox.ext("tardy", probes_after_init=[late])
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    probe = [r for r in run.ext("tardy") if r["k"] == "probe"][0]
    assert probe["status"] == 403, probe
    assert json.loads(probe["body"])["errorType"] == "Telemetry.SubscriptionClosed"
    assert run.summary["subscribers"] == {}


# ---- 7. no API call succeeds after init/error or exit/error -----------------------

def test_no_api_call_after_an_error(sandbox):
    grumpy = sandbox.ext("grumpy", shutdown="exit-error")
    run = sandbox.run([grumpy], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    after = [r for r in run.ext("grumpy") if r["k"] == "after-error"]
    assert after and after[0]["status"] == 403, run.ext("grumpy")
    assert json.loads(after[0]["body"])["errorType"] == "Extension.InvalidExtensionState"

    broken = sandbox.ext("broken", init_error="Extension.ConfigInvalid")
    run = sandbox.run([broken], args=["--invokes", 0], expect=1)
    after = [r for r in run.ext("broken") if r["k"] == "after-error"]
    assert after and after[0]["status"] == 403

    run = sandbox.run([], args=["--invokes", 0], env={"RT_MODE": "init-error"}, expect=1)
    after = [r for r in run.rt() if r["k"] == "after-init-error"]
    assert [r["status"] for r in after] == [403, 403], after


# ---- 8. error types and status --------------------------------------------------

@pytest.mark.parametrize("posted,kept", [("MyError", "Runtime.Unknown"), ("", "Runtime.Unknown"),
                                         ("Function.Oops", "Function.Oops"), ("Function.oops", "Function.Unknown"),
                                         ("Runtime.HandlerNotFound", "Runtime.HandlerNotFound"),
                                         ("Sandbox.Timedout", "Runtime.Unknown")])
def test_error_type_mapping(sandbox, posted, kept):
    ext = sandbox.ext("watcher", subscribe={"types": ["platform"], "buffering": FAST}, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 1, "--idle-ms", 0], env={"RT_MODE": "error", "RT_ERROR_TYPE": posted},
                      expect=0)
    recs = [e["record"] for e in run.events("watcher") if e["type"] in ("platform.runtimeDone", "platform.report")]
    assert [(r["status"], r["errorType"]) for r in recs] == [("error", kept)] * 2


def test_managed_instances_details(sandbox, tmp_path):
    ext = sandbox.ext("lmi", events=["SHUTDOWN"], shutdown_linger_ms=400,
                      subscribe={"types": ["platform"], "schemaVersion": "2025-01-29", "buffering": FAST})
    run = sandbox.run([ext], args=["--mode", "managed-instances", "--invokes", 1, "--timeout", 1, "--idle-ms", 0],
                      env={"RT_MODE": "timeout"}, expect=0)
    events = run.events("lmi")
    start = [e["record"] for e in events if e["type"] == "platform.start"][0]
    assert start["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:kte-demo"
    report = [e["record"] for e in events if e["type"] == "platform.report"][0]
    assert report["status"] == "timeout" and report["errorType"] == "Sandbox.Timedout"
    assert run.summary["logFormat"] == "json"
    bad = sandbox.run([ext], args=["--mode", "managed-instances", "--log-format", "text"], expect=2)
    assert "JSON log format only" in bad.stderr


# ---- 9. partial lines, no traceback ---------------------------------------------

def test_line_without_newline_is_not_glued_to_the_next_invoke(sandbox):
    ext = sandbox.ext("watcher", subscribe=WATCH, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 0], env={"RT_MODE": "partial-line", "RT_LINES": 1},
                      expect=0)
    rids = [i["requestId"] for i in run.summary["invokes"]]
    events = run.events("watcher")
    fn = [e["record"] for e in events if e["type"] == "function"]
    assert fn == ["fn %s 0" % rids[0], "tail-of-%s" % rids[0], "fn %s 0" % rids[1], "tail-of-%s" % rids[1]], fn
    types = [e["type"] if e["type"] != "function" else e["record"] for e in events]
    assert types.index("tail-of-%s" % rids[0]) < types.index("platform.runtimeDone")


@pytest.mark.parametrize("mode", ["init-error", "init-crash", "reset-connection"])
def test_no_traceback_after_a_runtime_init_error(sandbox, mode):
    bootstrap = PROCS / "reset_conn_runtime.py" if mode == "reset-connection" else RUNTIME
    run = sandbox.run([], bootstrap=bootstrap, args=["--invokes", 1, "--idle-ms", 0], env={"RT_MODE": mode},
                      expect=1)
    assert "Traceback" not in run.stderr, run.stderr
    assert "Exception occurred" not in run.stderr, run.stderr
    assert "init failed" in run.stderr
