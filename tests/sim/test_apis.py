"""Extensions API and Runtime API details, environment, logs, hosts mapping."""
import json
import re
import shutil
import socket
import uuid

import pytest

from conftest import ALL_TYPES, FAST


def probes_by_id(run, name):
    return {r["id"]: r for r in run.ext(name) if r["k"] == "probe"}


def test_register_response_and_errors(sandbox):
    probes = [
        {"id": "empty-name", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": ""}, "body": {"events": ["INVOKE"]}},
        {"id": "bad-event", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": "other"}, "body": {"events": ["INVOKE", "RESTORE"]}},
        {"id": "again", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": "acct"}, "body": {"events": ["INVOKE"]}},
    ]
    after = [
        {"id": "closed", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": "newcomer"}, "body": {"events": ["INVOKE"]}},
        {"id": "again-after-init", "method": "POST", "path": "/2020-01-01/extension/register", "identifier": None,
         "headers": {"Lambda-Extension-Name": "acct"}, "body": {"events": ["INVOKE"]}},
        {"id": "late-init-error", "method": "POST", "path": "/2020-01-01/extension/init/error",
         "headers": {"Lambda-Extension-Function-Error-Type": "Extension.Late"}, "body": "{}"},
        {"id": "bad-request-id", "method": "POST", "path": "/2018-06-01/runtime/invocation/nope/response",
         "identifier": None, "body": "{}"},
    ]
    acct = sandbox.ext("acct", accept_account=True, probes=probes, probes_after_init=after)
    plain = sandbox.ext("plain")
    run = sandbox.run([acct, plain], args=["--function-name", "orders", "--handler", "app.main",
                                           "--account-id", "210987654321", "--idle-ms", 0], expect=0)
    reg = {n: [r for r in run.ext(n) if r["k"] == "register"][0] for n in ("acct", "plain")}
    assert json.loads(reg["acct"]["body"]) == {"functionName": "orders", "functionVersion": "$LATEST",
                                               "handler": "app.main", "accountId": "210987654321"}
    assert json.loads(reg["plain"]["body"]) == {"functionName": "orders", "functionVersion": "$LATEST",
                                                "handler": "app.main"}
    assert reg["acct"]["id"] != reg["plain"]["id"]
    assert uuid.UUID(reg["acct"]["id"])
    res = probes_by_id(run, "acct")
    expect = {"empty-name": (403, "Extension.InvalidExtensionName"),
              "bad-event": (403, "Extension.InvalidEventType"),
              "again": (403, "Extension.InvalidExtensionState"),
              "closed": (403, "Extension.RegistrationClosed"),
              "again-after-init": (403, "Extension.InvalidExtensionState"),
              "late-init-error": (403, "Extension.InvalidExtensionState"),
              "bad-request-id": (400, "InvalidRequestID")}
    for key, (status, etype) in expect.items():
        assert res[key]["status"] == status, (key, res[key])
        assert json.loads(res[key]["body"])["errorType"] == etype, (key, res[key])
    assert run.summary["extensions"]["acct"]["events"] == ["INVOKE", "SHUTDOWN"]
    nxt = [r for r in run.ext("plain") if r["k"] == "next"]
    assert all(uuid.UUID(r["eventId"]) for r in nxt)


def test_register_with_a_name_that_is_not_the_file_name_fails_init(sandbox):
    ext = sandbox.ext("real-name", register_name="another-name")
    run = sandbox.run([ext], expect=1)
    reg = [r for r in run.ext("real-name") if r["k"] == "register"][0]
    assert reg["status"] == 403
    body = json.loads(reg["body"])
    assert body["errorType"] == "Extension.InvalidExtensionName"
    assert "another-name" in body["errorMessage"]
    assert run.summary["exitReason"] == "initFailed"
    assert run.summary["extensions"]["real-name"]["registered"] is False


def test_runtime_api_headers_event_and_invoke_event(sandbox, tmp_path):
    payload = {"order": 42, "items": ["a", "b"]}
    (tmp_path / "event.json").write_text(json.dumps(payload))
    ext = sandbox.ext("watch")
    run = sandbox.run([ext], args=["--invokes", 2, "--event", "@%s" % (tmp_path / "event.json"), "--timeout", 5,
                                   "--region", "eu-west-1", "--function-name", "orders", "--idle-ms", 0], expect=0)
    rt = [r for r in run.rt() if r["k"] == "invoke"]
    ext_invokes = [r["event"] for r in run.ext("watch") if r["k"] == "next" and r["event"]["eventType"] == "INVOKE"]
    assert len(rt) == 2 and len(ext_invokes) == 2
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    for r, ev, s in zip(rt, ext_invokes, run.summary["invokes"]):
        h = r["headers"]
        assert r["event"] == payload
        assert h["Lambda-Runtime-Aws-Request-Id"] == ev["requestId"] == s["requestId"]
        assert int(h["Lambda-Runtime-Deadline-Ms"]) == ev["deadlineMs"]
        assert abs(ev["deadlineMs"] - r["t"] * 1000 - 5000) < 200
        assert h["Lambda-Runtime-Invoked-Function-Arn"] == ev["invokedFunctionArn"] == arn
        assert re.match(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1$", h["Lambda-Runtime-Trace-Id"])
        assert ev["tracing"] == {"type": "X-Amzn-Trace-Id", "value": h["Lambda-Runtime-Trace-Id"]}
        assert set(ev) == {"eventType", "deadlineMs", "requestId", "invokedFunctionArn", "tracing"}
        assert isinstance(ev["deadlineMs"], int)
        assert s["responseBytes"] == len(json.dumps(payload))
    posted = [r for r in run.rt() if r["k"] == "posted"]
    assert [p["status"] for p in posted] == [202, 202]


def test_environment_of_runtime_and_extensions(sandbox):
    ext = sandbox.ext("envy")
    run = sandbox.run([ext], args=["--memory-mb", 512, "--region", "eu-central-1", "--env", "FOO=bar",
                                   "--env", "_HANDLER=override.handler", "--log-format", "json", "--idle-ms", 0],
                      expect=0)
    env = [r for r in run.rt() if r["k"] == "env"][0]["env"]
    ext_env = [r for r in run.ext("envy") if r["k"] == "start"][0]["env"]
    for e in (env, ext_env):
        assert re.match(r"^127\.0\.0\.1:\d+$", e["AWS_LAMBDA_RUNTIME_API"])
        assert e["AWS_LAMBDA_RUNTIME_API"] == "127.0.0.1:%d" % run.summary["port"]
        assert e["AWS_LAMBDA_FUNCTION_NAME"] == "kte-demo"
        assert e["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
        assert e["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
        assert e["AWS_REGION"] == e["AWS_DEFAULT_REGION"] == "eu-central-1"
        assert e["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert e["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
        assert e["FOO"] == "bar"
        assert "PATH" in e
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/kte-demo"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert env["_HANDLER"] == "override.handler"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_provided.al2023"
    assert env["LAMBDA_TASK_ROOT"]
    # extensions do not get the runtime's own variables (runtimes-extensions-api.html,
    # "Permissions and configuration"), nor any "_" variable (the emulator's AgentExecEnv)
    for k in ("AWS_EXECUTION_ENV", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
              "LAMBDA_TASK_ROOT", "_HANDLER"):
        assert k not in ext_env, k
    text = sandbox.run([ext], args=["--idle-ms", 0], expect=0)
    assert "AWS_LAMBDA_LOG_FORMAT" not in [r for r in text.rt() if r["k"] == "env"][-1]["env"]


def test_credentials_are_passed_through(sandbox):
    import os
    import subprocess
    from conftest import SIM, RUNTIME
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="secret", AWS_SESSION_TOKEN="tok",
               AWS_PROFILE="not-passed")
    out = sandbox.dir / "rt.out"
    subprocess.run([str(SIM), "--bootstrap", str(RUNTIME), "--env", "RT_OUT=%s" % out, "--idle-ms", "0"],
                   env=env, check=True, timeout=60)
    e = json.loads(out.read_text().splitlines()[0])["env"]
    assert (e["AWS_ACCESS_KEY_ID"], e["AWS_SECRET_ACCESS_KEY"], e["AWS_SESSION_TOKEN"]) == ("AKIDTEST", "secret", "tok")
    assert "AWS_PROFILE" not in e


def test_every_log_line_becomes_one_event_text(sandbox):
    ext = sandbox.ext("logs", subscribe={"types": ALL_TYPES, "buffering": FAST}, shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--invokes", 3, "--idle-ms", 0],
                      env={"RT_LINES": 50, "RT_ERR_LINES": 2, "RT_INIT_LINES": 2}, expect=0)
    events = run.events("logs")
    fn = [e["record"] for e in events if e["type"] == "function"]
    rids = [i["requestId"] for i in run.summary["invokes"]]
    expected = ["init 0", "init 1"] + ["fn %s %d" % (r, i) for r in rids for i in range(50)] + \
               ["err %s %d" % (r, i) for r in rids for i in range(2)]
    assert sorted(fn) == sorted(expected)
    # stdout lines keep their order
    assert [x for x in fn if x.startswith("fn ")] == ["fn %s %d" % (r, i) for r in rids for i in range(50)]
    ext_lines = [e["record"] for e in events if e["type"] == "extension"]
    assert ext_lines == ["logs ready"] + ["logs got %s" % r for r in rids]
    # function lines of an invoke arrive before its runtimeDone
    pos = {e["record"]: i for i, e in enumerate(events) if e["type"] == "function"}
    done = {e["record"]["requestId"]: i for i, e in enumerate(events) if e["type"] == "platform.runtimeDone"}
    for r in rids:
        assert max(pos["fn %s %d" % (r, i)] for i in range(50)) < done[r]


def test_json_log_format(sandbox):
    ext = sandbox.ext("logs", subscribe={"types": ALL_TYPES, "buffering": FAST}, shutdown_wait_report_ms=1500)
    old = sandbox.ext("oldschema", subscribe={"types": ["function"], "schemaVersion": "2022-07-01",
                                              "buffering": FAST}, shutdown_wait_report_ms=300)
    jline = '{"level": "WARN", "msg": "structured", "n": 1}'
    run = sandbox.run([ext, old], args=["--invokes", 2, "--idle-ms", 0, "--log-format", "json"],
                      env={"RT_LINES": 2, "RT_INIT_LINES": 1, "RT_JSON_LINE": jline}, expect=0)
    rids = [i["requestId"] for i in run.summary["invokes"]]
    fn = [e["record"] for e in run.events("logs") if e["type"] == "function"]
    assert all(isinstance(r, dict) for r in fn)
    init = [r for r in fn if r.get("message") == "init 0"]
    assert len(init) == 1 and "requestId" not in init[0] and init[0]["level"] == "INFO"
    for rid in rids:
        mine = [r for r in fn if r.get("requestId") == rid]
        assert [r["message"] for r in mine] == ["fn %s 0" % rid, "fn %s 1" % rid]
        for r in mine:
            assert set(r) == {"timestamp", "level", "requestId", "message"}
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", r["timestamp"])
    assert fn.count(json.loads(jline)) == 2  # a JSON object line is passed as it is
    ext_recs = [e["record"] for e in run.events("logs") if e["type"] == "extension"]
    assert {r["message"] for r in ext_recs} >= {"logs got %s" % r for r in rids}
    assert [r["requestId"] for r in ext_recs if r["message"].startswith("logs got")] == rids
    # schema 2022-07-01: records stay strings even with JSON logging
    old_fn = [e["record"] for e in run.events("oldschema") if e["type"] == "function"]
    assert old_fn and all(isinstance(r, str) for r in old_fn)
    assert jline in old_fn


def test_sandbox_localdomain_resolves_for_the_processes(sandbox):
    ext = sandbox.ext("resolver", subscribe={"types": ["platform"], "buffering": FAST}, host="sandbox.localdomain",
                      shutdown_wait_report_ms=1500)
    run = sandbox.run([ext], args=["--idle-ms", 0], expect=0)
    if not run.summary["hostsMap"].startswith("unshare"):
        # a missing unshare (util-linux) is a missing dependency: fail; a kernel
        # that refuses mount namespaces to this user is the machine's limit: skip
        assert shutil.which("unshare"), "unshare not installed (util-linux): scripts/install-deps.sh"
        pytest.skip("the kernel gives this user no private mount namespace (unshare failed): hostsMap=%s"
                    % run.summary["hostsMap"])
    assert [r for r in run.rt() if r["k"] == "env"][0]["resolved"] == "127.0.0.1"
    sub = [r for r in run.ext("resolver") if r["k"] == "subscribe"][0]
    assert sub["uri"].startswith("http://sandbox.localdomain:")
    assert any(e["type"] == "platform.report" for e in run.events("resolver"))
    # the machine's /etc/hosts was not touched
    with open("/etc/hosts") as f:
        before = f.read()
    try:
        socket.gethostbyname("sandbox.localdomain")
        mapped_outside = True
    except OSError:
        mapped_outside = False
    if not mapped_outside:
        off = sandbox.run([], args=["--idle-ms", 0, "--no-hosts-map"], expect=0)
        assert off.summary["hostsMap"] == "disabled"
        assert [r for r in off.rt() if r["k"] == "env"][-1]["resolved"] is None
    with open("/etc/hosts") as f:
        assert f.read() == before
