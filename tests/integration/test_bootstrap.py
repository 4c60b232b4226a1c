"""The example runtime examples/function/bootstrap against a fake Runtime API.

The fake serves a fixed list of invocations on 127.0.0.1, records every
response, and then keeps the next GET /next pending so the runtime sits idle
until the test sends it SIGTERM.
"""

import json
import os
import signal
import subprocess
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import harness


class FakeRuntimeAPI:
    def __init__(self, request_ids, payload=None):
        self.pending = list(request_ids)
        self.served = []
        self.responses = {}
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.release = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, code, body=b"{}", headers=()):
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self._reply(404)
                with api.lock:
                    rid = api.pending.pop(0) if api.pending else None
                    if rid:
                        api.served.append(rid)
                if rid is None:
                    api.release.wait(60)  # idle: the runtime blocks here
                    return self._reply(500)
                self._reply(
                    200,
                    json.dumps(payload if payload is not None else {"n": len(api.served)}).encode(),
                    [
                        ("Lambda-Runtime-Aws-Request-Id", rid),
                        ("Lambda-Runtime-Deadline-Ms", "9999999999999"),
                        ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:f"),
                    ],
                )

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                parts = self.path.split("/")
                # /2018-06-01/runtime/invocation/{id}/response
                if len(parts) != 6 or parts[5] != "response":
                    return self._reply(404)
                with api.lock:
                    api.responses[parts[4]] = body
                    if len(api.responses) == len(request_ids):
                        api.all_done.set()
                self._reply(202, b'{"status":"OK"}')

        self.server = ThreadingHTTPServer((harness.LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self):
        return f"{harness.LOOPBACK}:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def run_bootstrap(tmp_path, request_ids, env_extra, payload=None):
    """Run the bootstrap through request_ids, SIGTERM it while idle."""
    env = {k: v for k, v in os.environ.items() if k not in ("LINES_PER_INVOKE", "LINE_BYTES", "AWS_LAMBDA_LOG_FORMAT")}
    with FakeRuntimeAPI(request_ids, payload) as api:
        env["AWS_LAMBDA_RUNTIME_API"] = api.address
        env.update(env_extra)
        out = tmp_path / "stdout"
        with open(out, "wb") as f:
            proc = subprocess.Popen([str(harness.BOOTSTRAP)], env=env, stdout=f, stderr=subprocess.PIPE)
        try:
            assert api.all_done.wait(60), "bootstrap did not answer every invocation"
            # All invocations answered: it is now blocked in GET /next.
            harness.wait_for(lambda: len(api.served) == len(request_ids), 10, what="served")
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
        return code, out.read_bytes(), api.responses, stderr


RIDS = ["11111111-aaaa-4bbb-8ccc-000000000001", "22222222-aaaa-4bbb-8ccc-000000000002", "33333333-aaaa-4bbb-8ccc-000000000003"]


def test_bootstrap_is_executable():
    assert os.access(harness.BOOTSTRAP, os.X_OK)


def test_text_lines_default_count(tmp_path):
    code, out, responses, stderr = run_bootstrap(tmp_path, RIDS, {})
    assert code == 0, stderr
    expected = "".join(
        f"kte-line inv={i} n={n} rid={rid} pad=\n" for i, rid in enumerate(RIDS, 1) for n in (1, 2, 3)
    )
    assert out.decode() == expected
    assert responses == {rid: b'{"ok":true,"lines":3}' for rid in RIDS}


def test_text_lines_count_and_padding(tmp_path):
    code, out, responses, stderr = run_bootstrap(tmp_path, RIDS[:2], {"LINES_PER_INVOKE": "5", "LINE_BYTES": "120"})
    assert code == 0, stderr
    lines = out.decode().split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == 10
    for k, line in enumerate(lines):
        inv, n = divmod(k, 5)
        prefix = f"kte-line inv={inv + 1} n={n + 1} rid={RIDS[inv]} pad="
        assert line == prefix + "x" * (120 - len(prefix))
        assert len(line.encode()) == 120
    assert responses == {rid: b'{"ok":true,"lines":5}' for rid in RIDS[:2]}


def test_json_log_format(tmp_path):
    code, out, responses, stderr = run_bootstrap(
        tmp_path, RIDS, {"AWS_LAMBDA_LOG_FORMAT": "JSON", "LINES_PER_INVOKE": "2"}
    )
    assert code == 0, stderr
    lines = out.decode().splitlines()
    assert len(lines) == 6
    for k, line in enumerate(lines):
        inv, n = divmod(k, 2)
        obj = json.loads(line)
        assert list(obj) == ["timestamp", "level", "requestId", "message"]
        assert obj["level"] == "INFO"
        assert obj["requestId"] == RIDS[inv]
        assert obj["message"] == f"kte-line inv={inv + 1} n={n + 1} rid={RIDS[inv]} pad="
        assert obj["timestamp"].endswith("Z")
        datetime.fromisoformat(obj["timestamp"][:-1])
    assert responses == {rid: b'{"ok":true,"lines":2}' for rid in RIDS}


@pytest.mark.parametrize("lines", ["0", "1"])
def test_zero_and_one_line(tmp_path, lines):
    code, out, responses, stderr = run_bootstrap(tmp_path, RIDS[:1], {"LINES_PER_INVOKE": lines})
    assert code == 0, stderr
    expected = "".join(f"kte-line inv=1 n={n} rid={RIDS[0]} pad=\n" for n in range(1, int(lines) + 1))
    assert out.decode() == expected
    assert responses == {RIDS[0]: ('{"ok":true,"lines":%s}' % lines).encode()}


def test_sleep_payload_delays_the_response(tmp_path):
    import time

    t0 = time.monotonic()
    code, out, responses, stderr = run_bootstrap(tmp_path, RIDS[:2], {"LINES_PER_INVOKE": "1"}, {"sleepMs": 300})
    assert code == 0, stderr
    assert time.monotonic() - t0 >= 0.6  # two invokes of at least 300 ms each (a lower bound only)
    assert out.decode() == "".join(f"kte-line inv={i} n=1 rid={rid} pad=\n" for i, rid in enumerate(RIDS[:2], 1))
    assert responses == {rid: b'{"ok":true,"lines":1}' for rid in RIDS[:2]}
