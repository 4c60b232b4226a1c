"""lambda-sim --trace, --time-scale, --min-idle-ms (issue 12): one invoke per
trace line with its idle before it, handler duration, log lines and their
size, error or timeout; compressed idles keep their nominal length in the
summary; each freeze records how many events every subscriber had been
handed when it began."""
import json
import time

from conftest import ALL_TYPES, FAST, REPO

BOOTSTRAP = REPO / "examples" / "function" / "bootstrap"


def trace_file(sandbox, steps, name="trace.jsonl"):
    path = sandbox.dir / name
    path.write_text("# a comment line\n\n" + "".join(json.dumps(s) + "\n" for s in steps))
    return path


def fn_lines(run, name):
    """The function log lines the extension received, per invoke index."""
    out = {}
    for ev in run.events(name):
        if ev["type"] == "function":
            rec = ev["record"]
            inv = int(rec.split(" inv=")[1].split(" ")[0])
            out.setdefault(inv, []).append(rec)
    return out


def test_trace_drives_each_invoke(sandbox):
    # waits for each runtimeDone and, at SHUTDOWN, for the last report: it sees every event
    ext = sandbox.ext("obs", subscribe={"types": ALL_TYPES, "buffering": FAST},
                      wait_runtime_done_ms=3000, shutdown_wait_report_ms=1500)
    steps = [
        {"idleMs": 0, "durationMs": 10, "lines": 2, "lineBytes": 100},
        {"idleMs": 300, "durationMs": 120, "lines": 0},
        {"idleMs": 50, "durationMs": 5, "lines": 4, "lineBytes": 200, "error": "Runtime.TraceBoom"},
        {"idleMs": 0, "durationMs": 0, "lines": 1},
    ]
    run = sandbox.run([ext], bootstrap=BOOTSTRAP, expect=0,
                      args=["--trace", trace_file(sandbox, steps), "--invokes", 99, "--idle-ms", 40])
    s = run.summary
    invs = s["invokes"]
    assert len(invs) == 4, run.describe()  # the trace sets the number of invokes
    assert [i["status"] for i in invs] == ["success", "success", "error", "success"], run.describe()
    assert invs[2]["errorType"] == "Runtime.TraceBoom"
    assert [i["nominalIdleBeforeMs"] for i in invs] == [None, 300, 50, 0]
    assert invs[1]["durationMs"] >= 120
    lines = fn_lines(run, "obs")
    assert {k: len(v) for k, v in lines.items()} == {1: 2, 3: 4, 4: 1}, lines
    assert all(len(l.encode()) == 100 for l in lines[1])
    assert all(len(l.encode()) == 200 for l in lines[3])
    # freezes: before invokes 2 and 3 (0 ms idle is no freeze), and before shutdown (--idle-ms)
    fr = s["freezes"]
    assert [f["nominalMs"] for f in fr] == [300, 50, 40], run.describe()
    assert [f["invokesBefore"] for f in fr] == [1, 2, 4]
    for f in fr:
        assert f["endMs"] - f["startMs"] >= f["nominalMs"] - 1
    # events handed to the extension before each freeze: non-decreasing, within what it received
    handed = [f["deliveredBefore"]["obs"] for f in fr]
    assert handed == sorted(handed) and 0 < handed[0] <= s["subscribers"]["obs"]["delivered"]
    assert s["timeScale"] == 1


def test_time_scale_compresses_idle_and_reports_the_nominal_one(sandbox):
    ext = sandbox.ext("obs", subscribe={"types": ALL_TYPES, "buffering": FAST})
    steps = [{"idleMs": 0, "durationMs": 1, "lines": 1},
             {"idleMs": 600000, "durationMs": 1, "lines": 1},   # 10 min -> 600 ms
             {"idleMs": 20000, "durationMs": 1, "lines": 1},    # 20 s -> 20 ms, raised to 250
             {"idleMs": 100, "durationMs": 1, "lines": 1}]      # below the floor: as is
    t0 = time.monotonic()
    run = sandbox.run([ext], bootstrap=BOOTSTRAP, expect=0,
                      args=["--trace", trace_file(sandbox, steps), "--time-scale", 1000,
                            "--min-idle-ms", 250, "--idle-ms", 30000])
    assert time.monotonic() - t0 < 30
    fr = run.summary["freezes"]
    assert [f["nominalMs"] for f in fr] == [600000, 20000, 100, 30000], run.describe()
    real = [f["endMs"] - f["startMs"] for f in fr]
    for got, want in zip(real, [600, 250, 100, 250]):
        assert want - 1 <= got < want + 400, (real, run.describe())
    assert run.summary["timeScale"] == 1000


def test_trace_timeout_resets_the_environment(sandbox):
    ext = sandbox.ext("obs", subscribe={"types": ALL_TYPES, "buffering": FAST})
    steps = [{"durationMs": 1, "lines": 1}, {"idleMs": 10, "timeout": True, "lines": 1},
             {"idleMs": 10, "durationMs": 1, "lines": 1}]
    run = sandbox.run([ext], bootstrap=BOOTSTRAP, expect=0,
                      args=["--trace", trace_file(sandbox, steps), "--timeout", 1])
    s = run.summary
    assert [i["status"] for i in s["invokes"]] == ["success", "timeout", "success"], run.describe()
    assert s["resets"] == 1
    envs = [i["environment"] for i in s["invokes"]]
    assert envs[0] == envs[1] and envs[2] == envs[1] + 1, envs


def test_bad_traces_are_usage_errors(sandbox):
    bad = {
        "empty": [],
        "unknown": [{"idleMs": 1, "sleep": 3}],
        "negative": [{"idleMs": -1}],
        "bool": [{"lines": True}],
        "string": [{"durationMs": "10"}],
        "not-object": [[1, 2]],
    }
    for name, steps in bad.items():
        run = sandbox.run([], bootstrap=BOOTSTRAP, args=["--trace", trace_file(sandbox, steps, name)])
        assert run.code == 2, (name, run.describe())
        assert "--trace" in run.stderr, (name, run.stderr)
    run = sandbox.run([], bootstrap=BOOTSTRAP, args=["--trace", sandbox.dir / "missing.jsonl"])
    assert run.code == 2
    run = sandbox.run([], bootstrap=BOOTSTRAP, args=["--time-scale", "0.5"])
    assert run.code == 2
