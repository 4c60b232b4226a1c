"""Hostile clients against the real extension (issue 10).

Every test runs build/kinesis-telemetry-extension under lambda-sim, shipping
to kinesis-local, held to 1,024 file descriptors as in Lambda (a wrapper sets
RLIMIT_NOFILE before exec). The runtime (tests/hostile/bootstrap) keeps invoke
1 open and writes a line every 50 ms until the test is done attacking the
listener, so the real Telemetry API (lambda-sim) keeps posting during the
attack. The hostile client learns the listener's port from KTE_LISTENER_PORT,
which the test chooses.

The invariant, checked after every attack: every event lambda-sim delivered
is in the stream exactly once, byte for byte, nothing was dropped, and every
refusal is counted in the extension's EMF line, with exact counts.
"""

import contextlib
import errno
import os
import resource
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness

HERE = Path(__file__).resolve().parent
BOOTSTRAP = HERE / "bootstrap"
KTE = harness.EXTENSION_NAME
FD_LIMIT = 1024  # Lambda's RLIMIT_NOFILE
MAX_CONNECTIONS = 64  # KTE_LISTENER_MAX_CONNECTIONS in src/kte_listener.h
IDLE_TIMEOUT_S = 5  # KTE_LISTENER_IDLE_TIMEOUT_S in src/kte_listener.h

# The listener's refusal counters; a clean run has all of them at 0.
REFUSALS = (
    "PostsRejected",
    "PostsMalformed",
    "PostsOversized",
    "PostsAfterClose",
    "ConnectionsEvicted",
    "ConnectionsRefused",
    "ConnectionsWithoutRequest",
    "RequestsIncomplete",
)


def listening(port):
    """True when something listens on 127.0.0.1:port (read from /proc, so
    that looking does not open a connection the extension would count)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(
            line.split()[1] == want and line.split()[3] == "0A" for line in list(f)[1:]
        )


class Sandbox:
    """One lambda-sim run of the extension, attacked while invoke 1 lasts."""

    def __init__(self, extension_bin, kinesis_local, stream, tmp_path, **kte):
        self.kinesis_local = kinesis_local
        self.stream = stream
        self.tmp = tmp_path
        self.port = harness.free_port()
        self.gate = tmp_path / "gate"
        self.telemetry_log = tmp_path / "telemetry.jsonl"
        wrapper_dir = tmp_path / "opt-extensions"
        wrapper_dir.mkdir()
        wrapper = wrapper_dir / KTE  # lambda-sim names the extension by file name
        wrapper.write_text(f'#!/bin/sh\nulimit -n {FD_LIMIT} || exit 1\nexec "{extension_bin}" "$@"\n')
        wrapper.chmod(0o755)
        env = harness.kte_env(stream, kinesis_local.endpoint, self.port, **kte)
        env["HOSTILE_GATE"] = str(self.gate)
        self.sim = harness.start_sim(
            extensions=[wrapper],
            bootstrap=BOOTSTRAP,
            invokes=3,
            idle_ms=50,
            env=env,
            timeout=180,
            telemetry_log=self.telemetry_log,
            verbose=1,
            workdir=tmp_path / "sim",
        )
        self.res = None

    def batches(self):
        try:
            with open(self.telemetry_log) as f:
                return sum(1 for line in f if f'"subscriber":"{KTE}"' in line)
        except FileNotFoundError:
            return 0

    def wait_listening(self):
        harness.wait_for(lambda: listening(self.port) or self.sim.poll() is not None, 60,
                         interval=0.001, what="the listener")
        assert self.sim.poll() is None, "lambda-sim ended before the listener was up"

    def wait_first_delivery(self, timeout=60.0):
        harness.wait_for(lambda: self.batches() > 0 or self.sim.poll() is not None, timeout,
                         what="the first Telemetry API delivery")

    def wait_more_deliveries(self, n=5, timeout=20.0):
        """The Telemetry API is not starved: n more POSTs succeed in time."""
        start = self.batches()
        deadline = time.monotonic() + timeout
        while self.batches() < start + n:
            assert time.monotonic() < deadline, (
                f"the Telemetry API delivered {self.batches() - start} of {n} batches in "
                f"{timeout:.0f}s while the listener was attacked\n{self.describe_partial()}"
            )
            time.sleep(0.02)

    def extension_pid(self):
        pids = harness.find_processes_by_exe(harness.EXTENSION, ancestor=self.sim.pid)
        return pids[0] if pids else None

    def describe_partial(self):
        err = (self.tmp / "sim" / "sim.stderr").read_text(errors="replace")
        return err[-3000:]

    def finish(self):
        """Ends invoke 1, lets the run complete and checks the invariant."""
        self.gate.touch()
        self.res = self.sim.wait(run_timeout=300)
        res = self.res
        s = res.summary or {}
        assert res.exit_code == 0 and s.get("exitReason") == "completed", res.describe()
        assert [i["status"] for i in s["invokes"]] == ["success"] * 3, res.describe()
        ext = s["extensions"][KTE]
        assert ext["exitCode"] == 0 and not ext["killed"], res.describe()
        sub = s["subscribers"][KTE]
        assert sub["dropped"] == 0, sub  # (still queued at the end: never delivered)
        delivered = harness.read_telemetry_log(self.telemetry_log, KTE)
        records = self.kinesis_local.read_all(self.stream)
        # Every event the Telemetry API delivered is in the stream, exactly
        # once, byte for byte; nothing forged got in.
        got = sorted(harness.raw_event_text(r["data"]) for r in records)
        assert len(records) == len(delivered), res.describe()
        assert got == sorted(delivered)
        assert any(b"hostile inv=1 n=" in e for e in delivered)
        emf = harness.emf_lines(res.stderr)
        assert len(emf) == 1, res.describe()
        self.metrics = emf[0]
        m = self.metrics
        assert m["EventsReceived"] == len(delivered), m
        assert m["EventsDelivered"] == len(records), m
        assert m["EventsDropped"] == 0, m
        assert m["PostsAccepted"] == sub["posts"], (m, sub)
        return m

    def assert_refusals(self, **want):
        """Each refusal counted exactly: the named counters have these values,
        all the others 0."""
        got = {k: self.metrics.get(k) for k in REFUSALS}
        expected = {k: want.get(k, 0) for k in REFUSALS}
        assert got == expected, self.metrics

    def kill(self):
        if self.sim.poll() is None:
            self.gate.touch()
            self.sim.kill()


@pytest.fixture
def sandbox(extension_bin, lambda_sim, kinesis_local, stream, tmp_path, request):
    marker = request.node.get_closest_marker("kte")
    sb = Sandbox(extension_bin, kinesis_local, stream, tmp_path, **(marker.kwargs if marker else {}))
    yield sb
    sb.kill()


# --------------------------------------------------------------------------
# raw HTTP clients


def connect(port):
    s = socket.create_connection((harness.LOOPBACK, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def answer(s, timeout=10.0):
    """Everything the server sends until it closes (or timeout); a reset
    after the answer is fine."""
    s.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError, socket.timeout):
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def status_of(data):
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else None


def exchange(port, raw, timeout=10.0):
    """Sends raw bytes on a fresh connection; the status code of the answer
    (None when there was none) once the server closed the connection."""
    s = connect(port)
    try:
        s.sendall(raw)
        return status_of(answer(s, timeout))
    finally:
        s.close()


def closed_by_server_within(s, seconds):
    """Seconds until the server closed s, or None if it did not in time."""
    start = time.monotonic()
    r, _, _ = select.select([s], [], [], seconds)
    if not r:
        return None
    with contextlib.suppress(ConnectionResetError):
        while s.recv(4096):
            pass
    return time.monotonic() - start


def forged_body(text="forged"):
    return (
        '[{"time":"2026-01-01T00:00:00.000Z","type":"function","record":"' + text + '"}]'
    ).encode()


def post(path, body, extra=b"", content_type=b"application/json"):
    return (
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: sandbox.localdomain\r\n"
        b"Content-Type: " + content_type + b"\r\nContent-Length: " + str(len(body)).encode()
        + b"\r\nConnection: close\r\n" + extra + b"\r\n" + body
    )


# --------------------------------------------------------------------------
# the attacks


def test_second_process_cannot_bind_the_port(sandbox):
    """Issue 10, defect 1: with SO_REUSEPORT a second socket could bind the
    listener's port and take a share of the Telemetry API's POSTs, path
    token included. Now every kind of second bind fails, in this process
    and in another one."""
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    for reuseport in (True, False):
        for host in (harness.LOOPBACK, "0.0.0.0"):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuseport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                with pytest.raises(OSError) as e:
                    s.bind((host, sandbox.port))
                    s.listen(16)
                assert e.value.errno == errno.EADDRINUSE, (host, reuseport, e.value)
            finally:
                s.close()
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
        f"s.bind(('127.0.0.1', {sandbox.port})); s.listen(16); print('bound')\n"
    )
    other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert other.returncode != 0 and "Address already in use" in other.stderr, other
    sandbox.wait_more_deliveries()
    sandbox.finish()
    sandbox.assert_refusals()


def test_forged_posts_on_wrong_paths_are_refused_and_counted(sandbox):
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    paths = ["/", "/" + "0" * 32, "/" + "a" * 31, "/2022-07-01/telemetry", "//", "/%2e%2e/"]
    for p in paths:
        assert exchange(sandbox.port, post(p, forged_body())) == 404, p
    sandbox.wait_more_deliveries()
    sandbox.finish()
    sandbox.assert_refusals(PostsRejected=len(paths))


def test_wrong_methods_and_content_types(sandbox):
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    raws = [
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"DELETE /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"PUT /2022-07-01/telemetry HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n[]",
        post("/x", b"not json at all", content_type=b"text/plain"),
        post("/x", forged_body(), content_type=b"application/x-www-form-urlencoded"),
        post("/x", b"--b\r\n\r\n[]\r\n--b--\r\n", content_type=b"multipart/form-data; boundary=b"),
    ]
    for raw in raws:
        assert exchange(sandbox.port, raw) in (404, 405), raw
    # Not HTTP at all: libmicrohttpd closes the connection (with or without
    # a 400); no request ever reached us, so it counts as a connection
    # without one.
    assert exchange(sandbox.port, b"HELLO\r\n\r\n") in (400, None)
    assert exchange(sandbox.port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 64) in (400, None)
    sandbox.wait_more_deliveries()
    sandbox.finish()
    sandbox.assert_refusals(PostsRejected=len(raws), ConnectionsWithoutRequest=2)


def test_chunked_bodies(sandbox):
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    body = forged_body()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    assert exchange(sandbox.port, head + chunked) == 404
    # A chunk larger than announced, then a bad chunk size: the request
    # cannot complete; libmicrohttpd ends it.
    bad = b"4\r\n[1,2,3,4,5]\r\nzz\r\n"
    status = exchange(sandbox.port, head + bad)
    assert status in (400, None), status
    sandbox.wait_more_deliveries()
    sandbox.finish()
    sandbox.assert_refusals(PostsRejected=1, RequestsIncomplete=1)


def test_bodies_larger_and_smaller_than_announced(sandbox):
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    # Larger: the announced bytes are the request (404: wrong path), the
    # connection is closed after the answer, the rest is never read.
    raw = post("/x", b"[1]") + forged_body() * 100
    assert exchange(sandbox.port, raw) == 404
    # Smaller, then the client goes away: an incomplete request.
    s = connect(sandbox.port)
    s.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[1,2")
    time.sleep(0.5)
    s.close()
    sandbox.wait_more_deliveries()
    sandbox.finish()
    sandbox.assert_refusals(PostsRejected=1, RequestsIncomplete=1)


def test_slow_headers_and_slow_bodies_time_out(sandbox):
    """Connections that have not proved they are the Telemetry API (by a
    POST to the secret path) are closed after IDLE_TIMEOUT_S idle seconds."""
    sandbox.wait_listening()
    sandbox.wait_first_delivery()
    slow_headers = connect(sandbox.port)
    slow_headers.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-")
    slow_body = connect(sandbox.port)
    slow_body.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[1,")
    # Trickling a byte a second keeps a connection from going idle...
    trickle = connect(sandbox.port)
    for b in b"POST /x HTTP/1.1\r\n":
        trickle.sendall(bytes([b]))
        time.sleep(0.5 if b != ord("\n") else 0)
    # ...so it is closed only at shutdown (a connection without request).
    for s in (slow_headers, slow_body):
        took = closed_by_server_within(s, IDLE_TIMEOUT_S + 10)
        assert took is not None, "an idle connection was not closed"
        s.close()
    sandbox.wait_more_deliveries()
    sandbox.finish()
    trickle.close()
    sandbox.assert_refusals(ConnectionsWithoutRequest=2, RequestsIncomplete=1)


def raise_own_fd_limit(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# The Telemetry API's first POST waits for a batch timeout of 1 s, so the flood
# is surely in place before it: as if the function's init code flooded.
@pytest.mark.kte(BUFFER_TIMEOUT_MS=1000)
def test_thousand_idle_connections_cannot_starve_the_telemetry_api(sandbox):
    """Issue 10, defect 2: 1,100 idle connections against a process held to
    1,024 descriptors starved the Telemetry API. The flood starts the moment
    the port listens, before the Telemetry API's first POST. Now the
    listener holds at most MAX_CONNECTIONS, evicting the longest-idle
    connection that has not proved it is the Telemetry API, and every flood
    connection is counted once: evicted, or closed without a request (timed
    out, or at shutdown)."""
    n = 1100
    if raise_own_fd_limit(n + 100) < n + 100:
        pytest.fail("this test needs 1,200 file descriptors in the test process")
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    for s in socks:
        s.setblocking(False)
    sandbox.wait_listening()
    started = time.monotonic()
    for s in socks:
        err = s.connect_ex((harness.LOOPBACK, sandbox.port))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
    assert sandbox.batches() == 0, "the flood came too late to test anything"
    flood_s = time.monotonic() - started
    pid = sandbox.extension_pid()
    assert pid, "extension process not found"
    with open(f"/proc/{pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == [str(FD_LIMIT)] * 2, line
    # While the flood is held, the Telemetry API delivers (its first POST
    # on a new connection included). Its POSTs time out after 30 s.
    sandbox.wait_first_delivery(timeout=10)
    sandbox.wait_more_deliveries(n=2, timeout=10)
    # The extension never held more than its limit.
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    assert fds < MAX_CONNECTIONS + 64, fds
    sandbox.finish()
    for s in socks:
        s.close()
    m = sandbox.metrics
    evicted = m["ConnectionsEvicted"]
    print(f"flood of {n} in {flood_s:.3f}s; extension fds {fds};",
          {k: m[k] for k in ("ConnectionsAccepted",) + REFUSALS})
    # One connection of the Telemetry API's may take a slot too.
    assert n - MAX_CONNECTIONS <= evicted <= n - MAX_CONNECTIONS + 1, (m, flood_s)
    sandbox.assert_refusals(ConnectionsEvicted=evicted, ConnectionsWithoutRequest=n - evicted)
