"""The harness itself, against kinesis-local directly (no extension, no sim)."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

import harness


def listening_addresses(port):
    """Local addresses (hex ip:port as in /proc/net/tcp*) LISTENing on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for row in f:
                    cols = row.split()
                    local, state = cols[1], cols[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        found.append(local)
        except FileNotFoundError:
            pass
    return found


def test_free_ports_distinct_and_bindable():
    ports = harness.free_ports(5)
    assert len(set(ports)) == 5
    for p in ports:
        with socket.socket() as s:
            s.bind((harness.LOOPBACK, p))


def test_kinesis_local_lifecycle(tmp_path):
    log = tmp_path / "kl.log"
    with harness.KinesisLocal(log_path=log) as kl:
        pid = kl.proc.pid
        assert kl.endpoint == f"http://127.0.0.1:{kl.plain_port}"
        # Loopback only: 0100007F is 127.0.0.1 in /proc/net/tcp byte order.
        assert listening_addresses(kl.plain_port) == [f"0100007F:{kl.plain_port:04X}"]
        assert listening_addresses(kl.tls_port) == [f"0100007F:{kl.tls_port:04X}"]
        assert kl.kinesis.list_streams() == []
    assert kl.proc is None
    assert not harness.port_open(kl.plain_port)
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert log.stat().st_size > 0


def test_create_stream_and_read_empty(kinesis_local, stream):
    assert kinesis_local.kinesis.stream_status(stream) == "ACTIVE"
    assert kinesis_local.list_shards(stream) == ["shardId-000000000000"]
    assert kinesis_local.read_all(stream) == []


def test_read_all_every_shard_in_order(kinesis_local):
    name = "harness-multi-" + os.urandom(4).hex()
    kinesis_local.create_stream(name, shards=3)
    try:
        shards = kinesis_local.list_shards(name)
        assert shards == [f"shardId-00000000000{i}" for i in range(3)]
        sent = []
        for batch in range(3):  # 3 PutRecords calls of 400 records
            recs = [(json.dumps({"b": batch, "i": i}).encode(), f"key-{batch}-{i}") for i in range(400)]
            resp = kinesis_local.put_records(name, recs)
            assert resp["FailedRecordCount"] == 0
            sent += [(d, k, r["ShardId"], r["SequenceNumber"]) for (d, k), r in zip(recs, resp["Records"])]
        sent.append((b"\x00\xff\xfe binary", "bin", None, None))
        resp = kinesis_local.put_records(name, [sent[-1][:2]])
        sent[-1] = sent[-1][:2] + (resp["Records"][0]["ShardId"], resp["Records"][0]["SequenceNumber"])
        got = kinesis_local.read_all(name)
        assert len(got) == len(sent) == 1201
        assert len({r["shard"] for r in got}) == 3  # keys spread over all shards
        # Same records; within a shard in put order (= sequence number order).
        for shard in shards:
            exp = [(d, k, seq) for d, k, sh, seq in sent if sh == shard]
            act = [(r["data"], r["partition_key"], r["sequence_number"]) for r in got if r["shard"] == shard]
            assert act == exp
        # A second read gives the same answer (reads do not consume).
        assert kinesis_local.read_all(name) == got
    finally:
        kinesis_local.delete_stream(name)


def test_raw_event_text_and_parse_envelope():
    data = (
        b'{"kte":1,"environment":"0123456789abcdef0123456789abcdef","seq":7,'
        b'"function":{"name":"f","version":"$LATEST","region":"us-east-1"},'
        b'"event":{"time": "t", "type":"function","record":"caf\xc3\xa9 \\"q\\" {}"}}'
    )
    assert harness.raw_event_text(data) == b'{"time": "t", "type":"function","record":"caf\xc3\xa9 \\"q\\" {}"}'
    env = harness.parse_envelope({"data": data, "partition_key": "pk", "shard": "s", "sequence_number": "1"})
    assert env["seq"] == 7 and env["event"]["record"] == 'café "q" {}'
    assert (env["_partition_key"], env["_shard"], env["_sequence_number"]) == ("pk", "s", "1")
    truncated = b'{"kte":1,"seq":1,"truncated":{"originalBytes":9},"event":"{\\"ti"}'
    assert harness.raw_event_text(truncated) == b'"{\\"ti"'
    with pytest.raises(ValueError):
        harness.raw_event_text(b'{"kte":1}')


def test_sim_command_line():
    cmd = harness.sim_command(
        extensions=["/a/ext1", "/b/ext2"],
        bootstrap="/c/bootstrap",
        invokes=5,
        event={"k": 1},
        idle_ms=10,
        log_format="json",
        env={"A": "1", "B": "x=y"},
        shutdown_reason="spindown",
        mode="on-demand",
        summary="/tmp/s.json",
        timeout=7,
        function_name="fn",
        region="eu-west-1",
        memory_mb=256,
        telemetry_log="/tmp/t.log",
        verbose=2,
        sim="/sim",
    )
    assert cmd == [
        "/sim", "--extension", "/a/ext1", "--extension", "/b/ext2", "--bootstrap", "/c/bootstrap",
        "--invokes", "5", "--event", '{"k": 1}', "--idle-ms", "10", "--log-format", "json",
        "--env", "A=1", "--env", "B=x=y", "--shutdown-reason", "spindown", "--mode", "on-demand",
        "--summary", "/tmp/s.json", "--timeout", "7", "--function-name", "fn", "--region", "eu-west-1",
        "--memory-mb", "256", "--telemetry-log", "/tmp/t.log", "--verbose", "--verbose",
    ]
    assert harness.sim_command(bootstrap="/b", sim="/s") == ["/s", "--bootstrap", "/b"]


def test_run_sim_result_with_a_stand_in_command(tmp_path):
    # run_sim plumbing (argv, env, summary, outputs) with a stand-in program.
    fake = tmp_path / "fake-sim"
    fake.write_text(
        "#!/usr/bin/python3\n"
        "import json, os, sys\n"
        "a = sys.argv[1:]\n"
        "open(a[a.index('--summary') + 1], 'w').write(json.dumps({'argv': a, 'key': os.environ['AWS_ACCESS_KEY_ID'], 'kte': [k for k in os.environ if k.startswith('KTE_')]}))\n"
        "print('out'); print('err', file=sys.stderr); sys.exit(3)\n"
    )
    fake.chmod(0o755)
    os.environ["KTE_LEAK"] = "1"
    try:
        res = harness.run_sim(sim=fake, bootstrap="/b", invokes=2, workdir=tmp_path / "w", run_timeout=60)
    finally:
        del os.environ["KTE_LEAK"]
    code, summary, out, err = res
    assert code == 3 and out == "out\n" and err == "err\n"
    assert summary == {
        "argv": ["--bootstrap", "/b", "--invokes", "2", "--summary", str(tmp_path / "w" / "summary.json")],
        "key": "AKIDEXAMPLE",
        "kte": [],
    }


def test_kte_env():
    env = harness.kte_env("s", "http://127.0.0.1:1", 5555, FLUSH="end", KTE_LOG_LEVEL="debug")
    assert env == {
        "KTE_ENDPOINT": "http://127.0.0.1:1",
        "KTE_LISTENER_HOST": "127.0.0.1",
        "KTE_LISTENER_PORT": "5555",
        "KTE_BUFFER_TIMEOUT_MS": "25",
        "KTE_STREAM_NAME": "s",
        "KTE_FLUSH": "end",
        "KTE_LOG_LEVEL": "debug",
    }
    assert "KTE_STREAM_NAME" not in harness.kte_env("s", "e", 1, STREAM_NAME=None)


def test_find_processes_by_exe():
    sleeper = "/bin/sleep"
    # A shell parent with two sleep children, plus one unrelated sleep.
    parent = subprocess.Popen(["/bin/sh", "-c", f"{sleeper} 60 & {sleeper} 60 & wait"], start_new_session=True)
    other = subprocess.Popen([sleeper, "60"])
    try:
        harness.wait_for(lambda: len(harness.find_processes_by_exe(sleeper, ancestor=parent.pid)) == 2, 30)
        mine = harness.find_processes_by_exe(sleeper, ancestor=parent.pid)
        assert other.pid not in mine
        assert other.pid in harness.find_processes_by_exe(sleeper)
        assert harness.find_processes_by_exe(sys.executable, ancestor=parent.pid) == []
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        other.kill()
        parent.wait()
        other.wait()


def test_split_raw_json_array():
    assert harness.split_raw_json_array("[]") == []
    assert harness.split_raw_json_array(' [ {"a": [1,2]} , "x,]" ,3]') == ['{"a": [1,2]}', '"x,]"', "3"]


def test_read_telemetry_log(tmp_path):
    log = tmp_path / "t.log"
    log.write_bytes(
        b'{"subscriber":"a","time":"t1","events":[{"type":"function","record":"caf\xc3\xa9 }"},{"x":1}]}\n'
        b'{"subscriber":"b","time":"t2","events":[{"y":2}]}\n'
        b'{"subscriber":"a","time":"t3","events":[{"z": 3}]}\n'
        b'{"subscriber":"a","time":"t4","events":[{"partial'
    )
    assert harness.read_telemetry_log(log, "a") == [
        b'{"type":"function","record":"caf\xc3\xa9 }"}', b'{"x":1}', b'{"z": 3}'
    ]
    assert harness.read_telemetry_log(log) == [
        b'{"type":"function","record":"caf\xc3\xa9 }"}', b'{"x":1}', b'{"y":2}', b'{"z": 3}'
    ]
    assert harness.read_telemetry_log(tmp_path / "missing") == []


def test_emf_lines():
    err = (
        "lambda-sim: invoke 1 x success\n"
        '[kinesis-telemetry-extension] {"_aws":{"Timestamp":1},"EventsReceived":3}\n'
        '[other] {"_aws":{},"EventsReceived":9}\n'
        "[kinesis-telemetry-extension] plain log line\n"
    )
    assert harness.emf_lines(err) == [{"_aws": {"Timestamp": 1}, "EventsReceived": 3}]


def test_kinesis_cli_serve_create_read(tmp_path):
    cli = [sys.executable, str(harness.REPO / "tests" / "integration" / "kinesis_cli.py")]
    state = tmp_path / "state"
    serve = subprocess.Popen(cli + ["serve", "--state-dir", str(state)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        endpoint = harness.wait_for(
            lambda: (state / "endpoint").is_file() and (state / "endpoint").read_text().strip(), 120,
            what="kinesis_cli serve endpoint")
        assert endpoint.startswith("http://127.0.0.1:")
        out = subprocess.run(cli + ["create-stream", "--endpoint", endpoint, "cli-s"], capture_output=True,
                             text=True, check=True).stdout
        assert out == "arn:aws:kinesis:us-east-1:000000000000:stream/cli-s\n"
        data = [
            b'{"kte":1,"seq":1,"event":{"type":"function","record":"a"}}',
            b'{"kte":1,"seq":2,"event":{"type":"platform.start","record":{}}}',
        ]
        k = harness.Kinesis(endpoint)
        assert k.put_records("cli-s", [(d, "pk") for d in data])["FailedRecordCount"] == 0
        k.client.close()
        out = subprocess.run(cli + ["read", "--endpoint", endpoint, "cli-s"], capture_output=True,
                             text=True, check=True).stdout
        assert out.splitlines() == [d.decode() for d in data] + [
            "2 records in stream cli-s (1 function, 1 platform)"]
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
        assert not harness.port_open(int(endpoint.rsplit(":", 1)[1]))
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        serve.stdout.close()
        serve.stderr.close()


def _signed_put_records(body, region="us-east-1", key=None, secret=None):
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    creds = botocore.credentials.Credentials(key or harness.DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                             secret or harness.DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    req = botocore.awsrequest.AWSRequest(
        method="POST", url="http://127.0.0.1:1/", data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.PutRecords"})
    botocore.auth.SigV4Auth(creds, "kinesis", region).add_auth(req)
    headers = dict(req.headers.items())
    headers["Host"] = "127.0.0.1:1"
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in headers.items()}


def test_sigv4_check():
    body = b'{"StreamName":"s","Records":[]}'
    ok = _signed_put_records(body)
    assert harness.sigv4_problem("POST", "/", ok, body, "AKIDEXAMPLE", harness.DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], "us-east-1") is None
    sec = harness.DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    assert harness.sigv4_problem("POST", "/", ok, body + b" ", "AKIDEXAMPLE", sec, "us-east-1") == "signature does not match"
    assert harness.sigv4_problem("POST", "/", ok, body, "AKIDEXAMPLE", "other", "us-east-1") == "signature does not match"
    assert "scope" in harness.sigv4_problem("POST", "/", ok, body, "AKIDEXAMPLE", sec, "eu-west-1")
    assert "access key" in harness.sigv4_problem("POST", "/", ok, body, "AKIDOTHER", sec, "us-east-1")
    assert "not SigV4" in harness.sigv4_problem("POST", "/", {}, body, "AKIDEXAMPLE", sec, "us-east-1")


def test_proxy_enforces_limits_and_injects_faults(kinesis_local, kinesis_proxy):
    import base64

    name = "proxy-" + os.urandom(4).hex()
    kinesis_local.create_stream(name)
    k = harness.Kinesis(kinesis_proxy.endpoint)  # botocore signs like any SDK
    try:
        assert k.put_records(name, [(b"a", "k1"), (b"b", "k2")])["FailedRecordCount"] == 0
        with pytest.raises(Exception, match="ValidationException"):
            k.put_records(name, [(b"x", "k")] * 501)
        with pytest.raises(Exception, match="ValidationException"):
            k.put_records(name, [(b"x" * (1024 * 1024), "k")])  # 1 MiB + key
        with pytest.raises(Exception, match="ValidationException"):
            k.put_records(name, [(b"x" * (900 * 1024), "k")] * 6)  # over 5 MiB
        with pytest.raises(Exception, match="ValidationException"):
            k.put_records(name, [(b"x", "k" * 257)])
        assert len(kinesis_proxy.violations) == 4
        assert [c["status"] for c in kinesis_proxy.calls] == [200, 400, 400, 400, 400]
        kinesis_proxy.violations.clear()
        kinesis_proxy.fault = lambda i, n: ("records", {0: "ProvisionedThroughputExceededException"}) if i == 5 else None
        resp = k.put_records(name, [(b"c", "k3"), (b"d", "k4")])
        assert resp["FailedRecordCount"] == 1
        assert resp["Records"][0]["ErrorCode"] == "ProvisionedThroughputExceededException"
        assert "SequenceNumber" in resp["Records"][1]
        kinesis_proxy.fault = lambda i, n: ("call", 500, "InternalFailure")
        k.client.meta.config.retries = {"max_attempts": 1}
        with pytest.raises(Exception):
            harness.Kinesis(kinesis_proxy.endpoint).client.put_records(
                StreamName=name, Records=[{"Data": b"e", "PartitionKey": "k"}])
        kinesis_proxy.fault = None
        assert kinesis_proxy.violations == []
        # Only what was accepted is stored: a, b, d.
        assert [r["data"] for r in kinesis_local.read_all(name)] == [b"a", b"b", b"d"]
        assert base64  # noqa
    finally:
        k.client.close()
        kinesis_local.delete_stream(name)


def test_missing_executable_fails_unless_skip_allowed(monkeypatch, tmp_path):
    missing = tmp_path / "nope"
    monkeypatch.delenv("KTE_ALLOW_SKIP", raising=False)
    with pytest.raises(pytest.fail.Exception, match="KTE_ALLOW_SKIP=1 to skip"):
        harness.require_executable(missing, "thing")
    monkeypatch.setenv("KTE_ALLOW_SKIP", "0")
    with pytest.raises(pytest.fail.Exception):
        harness.require_executable(missing, "thing")
    monkeypatch.setenv("KTE_ALLOW_SKIP", "1")
    with pytest.raises(pytest.skip.Exception):
        harness.require_executable(missing, "thing")
    plain = tmp_path / "plain"
    plain.write_text("")
    monkeypatch.delenv("KTE_ALLOW_SKIP")
    with pytest.raises(pytest.fail.Exception):
        harness.require_executable(plain, "not executable")
    assert harness.require_executable("/bin/sh", "sh") == "/bin/sh"
