"""Command line: --help documents the contract; usage errors exit 2."""
import json
import subprocess

import pytest

from conftest import RUNTIME, SIM

OPTIONS = ["--extension", "--bootstrap", "--invokes", "--event", "--idle-ms", "--log-format", "--env",
           "--shutdown-reason", "--mode", "--summary", "--port", "--timeout", "--function-name", "--memory-mb",
           "--region", "--subscriber-queue-max", "--telemetry-log", "--concurrency", "--verbose", "--no-hosts-map"]


def test_help_lists_every_option():
    p = subprocess.run([str(SIM), "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    for opt in OPTIONS:
        assert opt in p.stdout, opt
    for word in ("spindown", "timeout", "failure", "on-demand", "managed-instances", "text", "json"):
        assert word in p.stdout


@pytest.mark.parametrize("args", [
    [],
    ["--bootstrap", "/nonexistent/bootstrap"],
    ["--bootstrap", str(RUNTIME), "--shutdown-reason", "SPINDOWN"],
    ["--bootstrap", str(RUNTIME), "--mode", "provisioned"],
    ["--bootstrap", str(RUNTIME), "--event", "{not json"],
    ["--bootstrap", str(RUNTIME), "--env", "NOEQUALS"],
    ["--bootstrap", str(RUNTIME), "--invokes", "x"],
    ["--bootstrap", str(RUNTIME), "--extension", "NOT-EXECUTABLE"],
])
def test_usage_errors_exit_2(args, tmp_path):
    summary = tmp_path / "s.json"
    plain = tmp_path / "plain-file"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    args = [str(plain) if a == "NOT-EXECUTABLE" else a for a in args]
    p = subprocess.run([str(SIM)] + args + ["--summary", str(summary)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p.stderr
    assert "usage" in p.stderr.lower()


def test_summary_written_for_a_usage_error_after_parsing(tmp_path):
    summary = tmp_path / "s.json"
    p = subprocess.run([str(SIM), "--bootstrap", "/nonexistent", "--summary", str(summary)], capture_output=True,
                       timeout=30)
    assert p.returncode == 2
    assert json.loads(summary.read_text())["exitReason"] == "usageError"


def test_defaults_just_work_and_telemetry_log(sandbox, tmp_path):
    log = tmp_path / "telemetry.jsonl"
    ext = sandbox.ext("defaults", subscribe={"types": ["platform"]})
    run = sandbox.run([ext], args=["--telemetry-log", log], expect=0)
    s = run.summary
    assert set(s) >= {"exitReason", "init", "invokes", "shutdown", "extensions", "subscribers"}
    assert s["exitReason"] == "completed"
    assert isinstance(s["init"]["durationMs"], float) and s["init"]["errors"] == []
    assert len(s["invokes"]) == 1
    inv = s["invokes"][0]
    assert set(inv) >= {"requestId", "durationMs", "extensionOverheadMs", "status"}
    assert inv["status"] == "success"
    assert set(s["shutdown"]) >= {"reason", "durationMs", "killed", "exitCodes"}
    assert s["shutdown"]["reason"] == "spindown"
    assert set(s["shutdown"]["exitCodes"]) == {"runtime", "defaults"}
    e = s["extensions"]["defaults"]
    assert set(e) >= {"registered", "events", "initError", "exitError", "exitCode", "killed"}
    assert e["registered"] is True and e["initError"] is None and e["exitCode"] == 0 and e["killed"] is False
    sub = s["subscribers"]["defaults"]
    assert set(sub) >= {"delivered", "posts", "retries", "dropped"}
    # default buffering (timeoutMs 1000) as documented
    assert sub["buffering"] == {"timeoutMs": 1000, "maxBytes": 262144, "maxItems": 10000}
    logged = [json.loads(l) for l in log.read_text().splitlines()]
    assert sum(len(b["events"]) for b in logged) == sub["delivered"] == len(run.events("defaults"))
    assert all(b["subscriber"] == "defaults" for b in logged)
