"""Lifecycle modes (issue 13): container credentials, SnapStart, provisioned
concurrency, tenant isolation."""
from conftest import ALL_TYPES, FAST

WATCH = {"types": ALL_TYPES, "buffering": FAST}


def env_of(run, name=None):
    if name is None:
        return [r for r in run.rt() if r["k"] == "env"][0]["env"]
    return [r for r in run.ext(name) if r["k"] == "start"][0]["env"]


def test_container_credentials_with_expiry(sandbox):
    ext = sandbox.ext("keys")
    run = sandbox.run([ext], args=["--credentials", "container", "--credentials-ttl", 1, "--invokes", 2,
                                   "--idle-ms", 1300],
                      env={"RT_CREDS": 1}, expect=0)
    for e in (env_of(run), env_of(run, "keys")):
        assert "AWS_ACCESS_KEY_ID" not in e and "AWS_SECRET_ACCESS_KEY" not in e and "AWS_SESSION_TOKEN" not in e
        assert e["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://127.0.0.1:%d/2021-04-23/credentials" \
            % run.summary["port"]
        assert len(e["AWS_CONTAINER_AUTHORIZATION_TOKEN"]) >= 32
    creds = {r["when"]: r for r in run.rt() if r["k"] == "creds"}
    assert creds["no-token"]["status"] == 401 and creds["bad-token"]["status"] == 403
    first = creds["init"]
    assert first["status"] == 200
    assert set(first["body"]) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
    assert first["body"]["Expiration"].endswith("Z")
    rids = [i["requestId"] for i in run.summary["invokes"]]
    # invoke 1 comes within the second: the same set; invoke 2 after the 1.3 s freeze: a new one
    assert creds[rids[0]]["body"] == first["body"]
    assert creds[rids[1]]["body"]["AccessKeyId"] != first["body"]["AccessKeyId"]
    assert creds[rids[1]]["body"]["Expiration"] > first["body"]["Expiration"]
    c = run.summary["credentials"]
    assert c == {"mode": "container", "ttlS": 1, "requests": 5, "denied": 2, "issued": 2}


def test_env_credentials_are_the_default(sandbox):
    run = sandbox.run([], args=["--invokes", 1, "--idle-ms", 0], expect=0)
    assert "AWS_CONTAINER_CREDENTIALS_FULL_URI" not in env_of(run)
    assert run.summary["credentials"] == {"mode": "env"}


def test_snapstart_restores_the_same_processes(sandbox):
    ext = sandbox.ext("snappy", subscribe=WATCH, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--snapstart", "--restores", 2, "--invokes", 3, "--idle-ms", 100],
                      env={"RT_RESTORE_HOOK": 1}, expect=0)
    s = run.summary
    assert s["exitReason"] == "completed" and s["initializationType"] == "snap-start", run.describe()
    assert s["restores"] == 2 and [i["status"] for i in s["invokes"]] == ["success"] * 3
    envs = s["environments"]
    assert [len(e["requestIds"]) for e in envs] == [2, 1]
    # the same processes (the same memory) in both restored environments; one SHUTDOWN at the end
    assert envs[0]["pids"] == envs[1]["pids"]
    assert len([r for r in run.ext("snappy") if r["k"] == "start"]) == 1
    assert envs[0]["shutdown"] is None and envs[1]["shutdown"]["reason"] == "spindown"
    # no log group/stream, container credentials, initialization type
    for e in (env_of(run), env_of(run, "snappy")):
        assert "AWS_LAMBDA_LOG_GROUP_NAME" not in e and "AWS_LAMBDA_LOG_STREAM_NAME" not in e
        assert "AWS_ACCESS_KEY_ID" not in e and "AWS_CONTAINER_CREDENTIALS_FULL_URI" in e
        assert e["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    # the runtime waited in restore/next until the first restore
    restored = [r for r in run.rt() if r["k"] == "restored"]
    assert len(restored) == 1 and restored[0]["status"] == 200
    types = [e["type"] for e in run.events("snappy")]
    platform = [t for t in types if t.startswith("platform.init") or t.startswith("platform.restore")]
    init = ["platform.initStart", "platform.initRuntimeDone", "platform.initReport"]
    restore = ["platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport"]
    # init once, then per restore: the snapshot's init events again and the restore events
    assert platform == init + (init + restore) * 2, platform
    starts = [e["record"] for e in run.events("snappy") if e["type"] == "platform.initStart"]
    assert all(r["initializationType"] == "snap-start" for r in starts)
    assert starts[0] == starts[1] == starts[2]
    rs = [e["record"] for e in run.events("snappy") if e["type"] == "platform.restoreStart"]
    assert rs[0]["instanceId"] != rs[1]["instanceId"]
    reports = [e["record"] for e in run.events("snappy") if e["type"] == "platform.restoreReport"]
    assert all(r["status"] == "success" and r["metrics"]["durationMs"] >= 0 for r in reports)
    first_reports = [e["record"]["metrics"] for e in run.events("snappy") if e["type"] == "platform.report"]
    assert "restoreDurationMs" in first_reports[0] and "initDurationMs" not in first_reports[0]
    assert "restoreDurationMs" not in first_reports[1] and "restoreDurationMs" in first_reports[2]
    # the same subscriber runs on across restores: each environment counts what it added
    delivered = len(run.events("snappy"))
    assert s["subscribers"]["snappy"]["delivered"] == delivered, s["subscribers"]
    assert sum(e["subscribers"]["snappy"]["delivered"] for e in envs) == delivered


def test_provisioned_concurrency(sandbox):
    ext = sandbox.ext("warm", subscribe=WATCH, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--provisioned-concurrency", "--provisioned-idle-ms", 600, "--invokes", 1,
                                   "--idle-ms", 0], expect=0)
    assert env_of(run)["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    evs = run.events("warm")
    init = [e["record"] for e in evs if e["type"].startswith("platform.init")]
    assert {r["initializationType"] for r in init} == {"provisioned-concurrency"}
    report = [e["record"] for e in evs if e["type"] == "platform.report"][0]
    assert "initDurationMs" not in report["metrics"]
    # initialised long before the first invoke: frozen in between
    start_rec = [r for r in run.ext("warm") if r["k"] == "next"][0]
    assert run.summary["freezes"][0]["endMs"] - run.summary["freezes"][0]["startMs"] >= 600
    assert start_rec["t"] * 1000 >= run.summary["freezes"][0]["endMs"] - 5


def test_tenant_id(sandbox):
    ext = sandbox.ext("tenant", subscribe=WATCH, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--tenant-id", "blue-42", "--invokes", 1, "--idle-ms", 0, "--log-format", "json"],
                      env={"RT_LINES": 2}, expect=0)
    evs = run.events("tenant")
    for t in ("platform.start", "platform.runtimeDone", "platform.report"):
        assert [e["record"]["tenantId"] for e in evs if e["type"] == t] == ["blue-42"], t
    fn = [e["record"] for e in evs if e["type"] == "function"]
    assert len(fn) == 2 and all(r["tenantId"] == "blue-42" for r in fn)
    # init has no tenant
    assert all("tenantId" not in e["record"] for e in evs if e["type"].startswith("platform.init"))
