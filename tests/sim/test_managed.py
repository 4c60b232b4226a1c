"""managed-instances mode: concurrent invokes, SHUTDOWN-only extensions, schema 2025-01-29."""
import json

from conftest import FAST


def test_managed_instances_mode(sandbox):
    probes = [
        {"id": "invoke-event", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": "other"}, "body": {"events": ["INVOKE", "SHUTDOWN"]}},
        {"id": "old-schema", "path": "/2022-07-01/telemetry",
         "body": {"schemaVersion": "2022-12-13", "types": ["platform"],
                  "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243"}}},
    ]
    ext = sandbox.ext("lmi", events=["SHUTDOWN"], probes=probes, shutdown_wait_report_ms=0, shutdown_linger_ms=400,
                      subscribe={"types": ["platform", "function"], "schemaVersion": "2025-01-29", "buffering": FAST})
    run = sandbox.run([ext], args=["--mode", "managed-instances", "--invokes", 8, "--concurrency", 4,
                                   "--idle-ms", 500],
                      env={"RT_WORKERS": 4, "RT_SLEEP_MS": 300, "RT_LINES": 1}, expect=0)
    s = run.summary
    res = {r["id"]: r for r in run.ext("lmi") if r["k"] == "probe"}
    assert res["invoke-event"]["status"] == 403
    assert json.loads(res["invoke-event"]["body"])["errorType"] == "Extension.InvalidEventType"
    assert res["old-schema"]["status"] == 400
    assert [r for r in run.ext("lmi") if r["k"] == "subscribe"][0]["status"] == 200
    assert len(s["invokes"]) == 8 and all(i["status"] == "success" for i in s["invokes"])
    assert s["freezes"] == []
    # concurrency: at most 4 in flight, and more than one at a time
    rt = [r for r in run.rt() if r["k"] in ("invoke", "posted")]
    inflight = peak = 0
    for r in sorted(rt, key=lambda r: r["t"]):
        inflight += 1 if r["k"] == "invoke" else -1
        peak = max(peak, inflight)
    assert 2 <= peak <= 4
    env = [r for r in run.rt() if r["k"] == "env"][0]["env"]
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "lambda-managed-instances"
    assert env["AWS_LAMBDA_MAX_CONCURRENCY"] == "4"
    events = run.events("lmi")
    types = [e["type"] for e in events]
    assert "platform.runtimeDone" not in types
    init = [e["record"] for e in events if e["type"] == "platform.initStart"][0]
    assert init["initializationType"] == "lambda-managed-instances"
    reports = [e["record"] for e in events if e["type"] == "platform.report"]
    assert sorted(r["requestId"] for r in reports) == sorted(i["requestId"] for i in s["invokes"])
    for r in reports:
        assert set(r) == {"requestId", "status", "metrics", "spans"}
        assert set(r["metrics"]) == {"durationMs"}
        assert r["metrics"]["durationMs"] >= 300
        assert [sp["name"] for sp in r["spans"]] == ["responseLatency", "responseDuration"]
    nxt = [r["event"] for r in run.ext("lmi") if r["k"] == "next"]
    assert [e["eventType"] for e in nxt] == ["SHUTDOWN"]
