"""Per-extension and per-invoke timing in the summary (used by the benchmarks):
spawn / exec / register / first next / SHUTDOWN / exit timestamps, the spans
between them, the process's CPU time (wait4), and per invoke the start,
the end of the response and the delivery of its platform.runtimeDone."""
from conftest import ALL_TYPES, FAST

TOL = 0.01  # ms: values are rounded to microseconds


def close(a, b):
    return abs(a - b) <= TOL


def test_extension_timing_and_rusage(sandbox):
    ext = sandbox.ext("timed", subscribe={"types": ALL_TYPES, "buffering": FAST},
                      wait_runtime_done_ms=5000, work_ms=30)
    run = sandbox.run([ext], args=["--invokes", 2, "--idle-ms", 20], expect=0)
    s = run.summary
    e = s["extensions"]["timed"]
    # the timestamps happen in this order
    order = [e["spawnMs"], e["execMs"], e["registerMs"], e["firstNextMs"], e["shutdownMs"], e["exitMs"]]
    assert all(isinstance(t, float) for t in order), run.describe()
    assert order == sorted(order), run.describe()
    assert close(e["initToRegisterMs"], e["registerMs"] - e["spawnMs"])
    assert close(e["initToFirstNextMs"], e["firstNextMs"] - e["spawnMs"])
    assert close(e["execToFirstNextMs"], e["firstNextMs"] - e["execMs"])
    assert 0 < e["execToFirstNextMs"] <= e["initToFirstNextMs"]
    assert close(e["shutdownToExitMs"], e["exitMs"] - e["shutdownMs"])
    # spawn to first next lies inside the init phase; SHUTDOWN to exit inside the shutdown phase
    assert 0 < e["initToRegisterMs"] <= e["initToFirstNextMs"] <= s["init"]["durationMs"]
    assert 0 <= e["shutdownToExitMs"] <= s["shutdown"]["durationMs"]
    assert s["shutdown"]["startMs"] <= e["shutdownMs"]
    # CPU time of the (Python) extension process; the exit status is unchanged
    ru = e["rusage"]
    assert set(ru) == {"userS", "systemS"}
    assert ru["userS"] >= 0 and ru["systemS"] >= 0 and ru["userS"] + ru["systemS"] > 0
    assert e["exitCode"] == 0 and s["shutdown"]["exitCodes"]["timed"] == 0

    assert len(s["invokes"]) == 2
    for inv in s["invokes"]:
        assert inv["startMs"] <= inv["responseEndMs"] <= inv["runtimeDoneDeliveredMs"], run.describe()
        # the extension called next only after its runtimeDone arrived, then worked 30 ms
        ext_next = inv["responseEndMs"] + inv["extensionOverheadMs"]
        assert inv["runtimeDoneDeliveredMs"] <= ext_next + 1.0, run.describe()
        assert inv["extensionOverheadMs"] >= 30
    # invokes follow each other
    assert s["invokes"][0]["responseEndMs"] < s["invokes"][1]["startMs"]
    assert e["firstNextMs"] < s["invokes"][0]["startMs"]


def test_without_platform_subscription_no_runtime_done_delivery(sandbox):
    ext = sandbox.ext("nosub", subscribe=None)
    run = sandbox.run([ext], expect=0)
    inv = run.summary["invokes"][0]
    assert inv["runtimeDoneDeliveredMs"] is None
    assert inv["startMs"] <= inv["responseEndMs"]
    e = run.summary["extensions"]["nosub"]
    assert e["rusage"] is not None and e["shutdownToExitMs"] >= 0


def test_killed_extension_keeps_exit_code_and_gets_rusage(sandbox):
    ext = sandbox.ext("stubborn", shutdown="hang")
    run = sandbox.run([ext], expect=0)
    s = run.summary
    e = s["extensions"]["stubborn"]
    assert e["killed"] is True and e["exitCode"] == -9
    assert s["shutdown"]["exitCodes"]["stubborn"] == -9
    assert e["rusage"] is not None
    # held on until the 2 s deadline, then SIGKILLed
    assert e["shutdownToExitMs"] >= 1500, run.describe()


def test_failed_launch_has_no_timing(sandbox, tmp_path):
    bad = tmp_path / "opt-extensions" / "badinterp"
    bad.write_text("#!/nonexistent/interpreter\n")
    bad.chmod(0o755)
    # run directly (no unshare wrapper in between), so that the exec itself fails
    run = sandbox.run([bad], args=["--no-hosts-map"], expect=1)
    e = run.summary["extensions"]["badinterp"]
    assert e["registerMs"] is None and e["firstNextMs"] is None and e["initToFirstNextMs"] is None
    assert e["exitMs"] is None and e["rusage"] is None and e["execMs"] is None
