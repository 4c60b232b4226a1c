"""Building blocks of the benchmarks (scripts/bench.sh, tests/bench/bench_run.py).

Debian's /usr/bin/python3 and the integration harness only (tests/integration/
harness.py: KinesisLocal, KinesisProxy, run_sim, kte_env); all traffic stays on
127.0.0.1. Nothing here asserts anything about speed: the benchmarks measure and
report, they never fail on timing.

* ``BenchSink``: harness.KinesisProxy in one of three modes, switchable at any
  time: ``null`` answers every PutRecords with success at once without storing
  anything (an endpoint that costs nothing: what is left is the extension's own
  cost), ``down`` answers 503 (an outage), ``pass`` forwards the request as it
  is to kinesis-local. It counts the records it acknowledged.
* ``ExtStub``: a minimal Extensions + Telemetry API on 127.0.0.1 that starts the
  extension itself, learns its listener URI from the subscription and hands out
  SHUTDOWN when told. Used where the Python sandbox would be the bottleneck (the
  throughput runs feed the listener directly, faster than lambda-sim could).
* ``telemetry_bodies`` / ``post_bodies``: Telemetry API POST bodies shaped like
  lambda-sim's, and a keep-alive client that sends them.
* statistics, machine description, and a sim runner with the bench's defaults.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import harness as h  # noqa: E402  (tests/integration/harness.py)

EXT_NAME = h.EXTENSION_NAME

# Goals printed next to the figures (met / not met); never a reason to fail.
TARGETS = {
    "initMs": (5.0, "ms", "init to first next < 5 ms"),
    "idleRssMiB": (4.0, "MiB", "idle RSS < 4 MiB"),
    "cpuUsPerEvent": (2.0, "µs", "< 2 µs CPU per 100-byte event end to end"),
    "overheadP50Ms": (2.0, "ms", "added duration per invoke < 2 ms p50 (local endpoint)"),
    "drainMs": (300.0, "ms", "shutdown drain of 10k events < 300 ms"),
    "rulesBuiltinUs": (1.0, "µs", "the built-in redaction set adds < 1 µs CPU per 100-byte event (issue 15)"),
}
LOOPBACK = h.LOOPBACK


def epoch_ms() -> float:
    return time.time() * 1000.0


# --------------------------------------------------------------------------
# statistics


def percentile(values: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (p in 0..100) of values; None when empty."""
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = max(1, math.ceil(p / 100.0 * len(vals)))
    return vals[k - 1]


def mmm(values: Sequence[Optional[float]]) -> Optional[dict]:
    """{median, min, max, n} of the values that are not None; None when none are."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def rnd(x, digits=3):
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: rnd(v, digits) for k, v in x.items()}
    if isinstance(x, float):
        return round(x, digits)
    return x


# --------------------------------------------------------------------------
# the machine


def machine() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = None
    with contextlib.suppress(OSError, ValueError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    os_name = ""
    with contextlib.suppress(OSError):
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    gnuplot = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        gnuplot = subprocess.run(["gnuplot", "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpuModel": model,
        "kernel": platform.release(),
        "arch": platform.machine(),
        "os": os_name,
        "memTotalMiB": round(mem_kb / 1024) if mem_kb else None,
        "python": platform.python_version(),
        "gnuplot": gnuplot,
        "loadAvgAtStart": [round(x, 2) for x in os.getloadavg()],
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --------------------------------------------------------------------------
# the Kinesis side


class BenchSink(h.KinesisProxy):
    """KinesisProxy with a switchable mode: "null", "down" or "pass" (see module doc).

    Only PutRecords is affected; other actions are forwarded to the upstream
    (pass a dummy upstream when there is none: the extension only calls
    PutRecords). ``records_ok`` counts records acknowledged with success."""

    def __init__(self, upstream: str = "http://127.0.0.1:9", mode: str = "null"):
        super().__init__(upstream)
        # answer in one go: no Nagle stall between our header and body writes
        self.server.RequestHandlerClass.disable_nagle_algorithm = True
        # a client that gives up on a request (the extension at its shutdown
        # deadline) is expected here: no traceback on stderr
        self.server.handle_error = lambda request, client_address: None
        self.mode = mode
        self.cond = threading.Condition(self.lock)
        self.records_ok = 0
        self.calls_ok = 0
        self.calls_down = 0
        self.calls_failed = 0
        self.call_log: List[tuple] = []   # (epoch ms at the answer, mode, records)
        self._canned: Dict[int, bytes] = {}

    def reset_counts(self) -> None:
        with self.cond:
            self.records_ok = self.calls_ok = self.calls_down = self.calls_failed = 0
            self.call_log = []

    def set_mode(self, mode: str) -> None:
        assert mode in ("null", "down", "pass"), mode
        self.mode = mode

    def wait_records(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.records_ok >= n, timeout)

    def _ok(self, n: int) -> None:
        with self.cond:
            self.records_ok += n
            self.calls_ok += 1
            self.cond.notify_all()

    def _canned_success(self, n: int, cbor: bool = False) -> bytes:
        out = self._canned.get((n, cbor))
        if out is None:
            rec = {"SequenceNumber": "49600000000000000000000000000000000000000000000000000000",
                   "ShardId": "shardId-000000000000"}
            out = h.wire_dumps({"FailedRecordCount": 0, "Records": [rec] * n, "EncryptionType": "NONE"}, cbor)
            self._canned[(n, cbor)] = out
        return out

    def _put_records(self, path, headers, body):  # called by KinesisProxy's handler
        mode = self.mode
        cbor = h.request_is_cbor(headers)
        # JSON: Data is base64 and the stream name cannot hold quotes, so one
        # key per record. CBOR's Data is raw bytes: decoded.
        n = len(h.wire_loads(body, True)["Records"]) if cbor else body.count(b'"PartitionKey"')
        with self.cond:
            self.call_log.append((epoch_ms(), mode, n))
        if mode == "down":
            with self.cond:
                self.calls_down += 1
            return self._error(503, "ServiceUnavailable", "outage injected by the benchmark", cbor)
        if mode == "null":
            self._ok(n)
            return 200, self._canned_success(n, cbor), h.wire_content_type(cbor)
        status, out, ctype = self._forward("POST", path, headers, body)
        failed = n
        if status == 200:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                failed = int(h.wire_loads(out, cbor)["FailedRecordCount"])
        if n - failed > 0:
            self._ok(n - failed)
        if status != 200 or failed:
            with self.cond:
                self.calls_failed += 1
        return status, out, ctype


def kinesis_local_reference(kl: "h.KinesisLocal", stream: str, record_bytes: int, n: int) -> dict:
    """Records/s kinesis-local takes from botocore PutRecords (one client,
    batches of 500 records of record_bytes, one call at a time): what
    kinesis-local itself manages, for comparison with the end-to-end runs."""
    recs = [(b"x" * record_bytes, "pk-%d" % i) for i in range(500)]
    done = 0
    t0 = time.monotonic()
    while done < n:
        batch = recs[: min(500, n - done)]
        kl.put_records(stream, batch)
        done += len(batch)
    dt = time.monotonic() - t0
    return {"records": done, "recordBytes": record_bytes, "seconds": round(dt, 3),
            "recordsPerS": round(done / dt, 1)}


# --------------------------------------------------------------------------
# Telemetry API bodies


def iso_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def function_line(inv: int, n: int, rid: str, line_bytes: int) -> str:
    """The example bootstrap's line (examples/function/bootstrap)."""
    line = f"kte-line inv={inv} n={n} rid={rid} pad="
    return line + "x" * max(0, line_bytes - len(line.encode()))


def telemetry_bodies(n_events: int, line_bytes: int = 100, log_format: str = "text",
                     max_body: int = 262144) -> List[bytes]:
    """JSON-array POST bodies holding n_events `function` events, each at most
    max_body bytes (the extension's default buffering maxBytes), formatted as
    lambda-sim formats them."""
    rid = str(uuid.uuid4())
    ts = iso_now()
    bodies, cur, size = [], [], 2
    for i in range(n_events):
        line = function_line(1, i + 1, rid, line_bytes)
        if log_format == "json":
            rec = {"timestamp": ts, "level": "INFO", "requestId": rid, "message": line}
        else:
            rec = line
        ev = json.dumps({"time": ts, "type": "function", "record": rec}, separators=(",", ":"),
                        ensure_ascii=False).encode()
        if cur and size + len(ev) + 1 > max_body:
            bodies.append(b"[" + b",".join(cur) + b"]")
            cur, size = [], 2
        cur.append(ev)
        size += len(ev) + 1
    if cur:
        bodies.append(b"[" + b",".join(cur) + b"]")
    return bodies


def post_bodies(uri: str, bodies: Sequence[bytes]) -> dict:
    """POSTs each body in turn over one keep-alive connection, as the Telemetry
    API does; returns {posts, statusCounts, seconds}."""
    u = urllib.parse.urlsplit(uri)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    statuses: Dict[int, int] = {}
    t0 = time.monotonic()
    try:
        for body in bodies:
            conn.request("POST", u.path or "/", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.will_close:
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    finally:
        conn.close()
    return {"posts": len(bodies), "statusCounts": statuses, "seconds": time.monotonic() - t0}


# --------------------------------------------------------------------------
# a stub of the Extensions and Telemetry APIs


def read_emf(text: str) -> Optional[dict]:
    """The last CloudWatch EMF object in a process's output (its stdout)."""
    found = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            with contextlib.suppress(ValueError):
                found = json.loads(line)
    return found


class ExtStub:
    """Runs one extension against a stub of the Extensions/Telemetry APIs.

    stub = ExtStub(binary, workdir, env); stub.start(); stub.wait_ready()
    post_bodies(stub.destination, ...); stub.shutdown(deadline_s); stub.wait_exit()
    Then .rusage, .emf, .timing. The extension gets the environment lambda-sim
    would give it plus env; SHUTDOWN carries deadlineMs = now + deadline_s.
    """

    def __init__(self, binary: str, workdir: Path, env: Dict[str, str], function_name: str = "kte-bench",
                 argv_prefix: Sequence[str] = ()):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(env)
        self.function_name = function_name
        self.argv_prefix = list(argv_prefix)
        self.cond = threading.Condition()
        self.ext_id = str(uuid.uuid4())
        self.destination: Optional[str] = None
        self.registered = False
        self.ready = False
        self.shutdown_deadline_ms: Optional[int] = None
        self.errors: List[dict] = []
        self.t = {"spawn": None, "register": None, "subscribe": None, "firstNext": None,
                  "shutdown": None, "exit": None}
        self.proc: Optional[subprocess.Popen] = None
        self.rusage: Optional[dict] = None
        self.exit_code: Optional[int] = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as lambda-sim: no delayed-ACK stall

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self._body()
                path = urllib.parse.urlsplit(self.path).path
                if path.endswith("/extension/register"):
                    with stub.cond:
                        stub.registered = True
                        stub.t["register"] = epoch_ms()
                        stub.cond.notify_all()
                    resp = {"functionName": stub.function_name, "functionVersion": "$LATEST",
                            "handler": "function.handler"}
                    return self._reply(200, json.dumps(resp).encode(),
                                       {"Lambda-Extension-Identifier": stub.ext_id})
                if path.endswith("/init/error") or path.endswith("/exit/error"):
                    with stub.cond:
                        stub.errors.append({"path": path, "body": body.decode(errors="replace"),
                                            "type": self.headers.get("Lambda-Extension-Function-Error-Type")})
                        stub.cond.notify_all()
                    return self._reply(202, b'{"status":"OK"}')
                self._reply(404, b"{}")

            def do_PUT(self):
                body = self._body()
                if urllib.parse.urlsplit(self.path).path.rstrip("/").endswith("/telemetry"):
                    req = json.loads(body)
                    with stub.cond:
                        stub.destination = req["destination"]["URI"]
                        stub.t["subscribe"] = epoch_ms()
                        stub.cond.notify_all()
                    return self._reply(200, b'"OK"')
                self._reply(404, b"{}")

            def do_GET(self):
                if not urllib.parse.urlsplit(self.path).path.endswith("/event/next"):
                    return self._reply(404, b"{}")
                with stub.cond:
                    if not stub.ready:
                        stub.ready = True
                        stub.t["firstNext"] = epoch_ms()
                        stub.cond.notify_all()
                    stub.cond.wait_for(lambda: stub.shutdown_deadline_ms is not None)
                    deadline = stub.shutdown_deadline_ms
                    first = stub.t["shutdown"] is None
                    if first:
                        stub.t["shutdown"] = epoch_ms()
                if not first:  # a next after SHUTDOWN blocks, as in Lambda
                    while True:
                        time.sleep(3600)
                ev = {"eventType": "SHUTDOWN", "shutdownReason": "spindown", "deadlineMs": deadline}
                self._reply(200, json.dumps(ev).encode(),
                            {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self) -> Dict[str, str]:
        e = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "LC_ALL") if k in os.environ}
        e.update(h.DUMMY_CREDENTIALS)
        e.update({
            "AWS_LAMBDA_RUNTIME_API": "%s:%d" % (LOOPBACK, self.server.server_address[1]),
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_REGION": h.REGION, "AWS_DEFAULT_REGION": h.REGION,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023", "TZ": ":UTC",
        })
        e.update(self.extra_env)
        return e

    def start(self) -> "ExtStub":
        out = open(self.workdir / "ext.stdout", "wb")
        err = open(self.workdir / "ext.stderr", "wb")
        self.t["spawn"] = epoch_ms()
        # No preexec_fn (the tests' die-with-parent hook): with one, Python
        # forks instead of vforking and the child's copy-on-write work before
        # exec counts in the extension's rusage: 2-7 ms a run, 0.02-0.07 µs
        # per event of a 100,000-event cost run (measured 2026-11-30). stop()
        # kills the extension; if the bench itself is killed, the extension
        # exits when its Extensions API (the stub, gone) stops answering.
        self.proc = subprocess.Popen(self.argv_prefix + [self.binary], env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=err, start_new_session=True)
        out.close()
        err.close()
        threading.Thread(target=self._waiter, daemon=True).start()
        return self

    def _waiter(self) -> None:
        _, status, ru = os.wait4(self.proc.pid, 0)
        with self.cond:
            self.t["exit"] = epoch_ms()
            self.exit_code = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.exit_code
            self.rusage = {"userS": ru.ru_utime, "systemS": ru.ru_stime, "maxRssKb": ru.ru_maxrss}
            self.cond.notify_all()

    def wait_ready(self, timeout: float = 60.0) -> str:
        with self.cond:
            ok = self.cond.wait_for(lambda: (self.ready and self.destination) or self.exit_code is not None
                                    or self.errors, timeout)
        if not ok or not self.ready or not self.destination:
            raise h.HarnessError("extension not ready under the stub API: exit %s, errors %s, stderr %s"
                                 % (self.exit_code, self.errors, self.stderr()[-2000:]))
        return self.destination

    def shutdown(self, deadline_s: float = 2.0) -> None:
        with self.cond:
            self.shutdown_deadline_ms = int(epoch_ms() + deadline_s * 1000)
            self.cond.notify_all()

    def wait_exit(self, timeout: float) -> Optional[int]:
        with self.cond:
            self.cond.wait_for(lambda: self.exit_code is not None, timeout)
        if self.exit_code is None:
            self.kill()
            with self.cond:
                self.cond.wait_for(lambda: self.exit_code is not None, 10)
        return self.exit_code

    def kill(self) -> None:
        if self.proc is not None and self.exit_code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.kill()
        with self.cond:
            if self.shutdown_deadline_ms is None:
                self.shutdown_deadline_ms = int(epoch_ms())
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def stdout(self) -> str:
        return (self.workdir / "ext.stdout").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.workdir / "ext.stderr").read_text(errors="replace")

    @property
    def emf(self) -> Optional[dict]:
        return read_emf(self.stdout())

    def span(self, a: str, b: str) -> Optional[float]:
        if self.t[a] is None or self.t[b] is None:
            return None
        return self.t[b] - self.t[a]


# --------------------------------------------------------------------------
# lambda-sim




def sim_run(workdir: Path, binary: str, invokes: int, env: Dict[str, str], *, idle_ms: int = 50,
            log_format: str = "text", verbose: int = 0, event=None, timeout: int = 60,
            extra_args: Sequence[str] = (), telemetry_log: Optional[Path] = None,
            run_timeout: float = 600.0, start_only: bool = False, bootstrap: Optional[Path] = None):
    """lambda-sim with the bench's defaults: the extension under its real name,
    the example bootstrap, no hosts mapping (the listener is on 127.0.0.1, and
    CPU time then belongs to the extension alone, not to an unshare/sh exec
    chain)."""
    kwargs = dict(workdir=workdir, extensions=[binary], invokes=invokes, idle_ms=idle_ms,
                  sim=h.LAMBDA_SIM,
                  log_format=log_format, env=env, verbose=verbose, timeout=timeout,
                  function_name="kte-bench", telemetry_log=telemetry_log,
                  extra_args=["--no-hosts-map", *extra_args])
    if event is not None:
        kwargs["event"] = event
    if bootstrap is not None:
        kwargs["bootstrap"] = bootstrap
    if start_only:
        return h.start_sim(**kwargs)
    return h.start_sim(**kwargs).wait(run_timeout)


def ext_summary(summary: Optional[dict]) -> dict:
    return ((summary or {}).get("extensions") or {}).get(EXT_NAME) or {}


def sub_summary(summary: Optional[dict]) -> dict:
    return ((summary or {}).get("subscribers") or {}).get(EXT_NAME) or {}


def cpu_seconds(rusage: Optional[dict]) -> Optional[float]:
    if not rusage:
        return None
    return rusage["userS"] + rusage["systemS"]


def telemetry_log_times(path: Path, needle: bytes) -> List[float]:
    """Epoch ms (millisecond resolution) of the --telemetry-log batches whose
    events contain needle."""
    out = []
    with contextlib.suppress(FileNotFoundError):
        with open(path, "rb") as f:
            for raw in f:
                if needle in raw:
                    m = re.search(rb'"time":"([^"]+)"', raw)
                    if m:
                        t = _dt.datetime.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S.%fZ")
                        out.append(t.replace(tzinfo=_dt.timezone.utc).timestamp() * 1000.0)
    return out


class StderrWatch:
    """Calls fn once when a line containing needle appears in a growing file."""

    def __init__(self, path: Path, needle: str, fn, interval: float = 0.001):
        self.path, self.needle, self.fn, self.interval = Path(path), needle.encode(), fn, interval
        self.seen_at: Optional[float] = None
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        pos, buf = 0, b""
        while not self._stop:
            try:
                with open(self.path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            if chunk:
                pos += len(chunk)
                buf = (buf + chunk)[-65536:]
                if self.needle in buf:
                    self.seen_at = epoch_ms()
                    self.fn()
                    return
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop = True


def tool_path(name: str) -> Optional[str]:
    return shutil.which(name)


# --------------------------------------------------------------------------
# memory of a running process


def proc_status_kb(pid: int) -> Dict[str, int]:
    """VmRSS, VmHWM, RssAnon, RssFile of pid in kB ({} once it is gone)."""
    out = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
    return out


class MemSampler:
    """Samples /proc/PID/status every interval until the process is gone.

    VmHWM is the process's own peak RSS since its exec (unlike ru_maxrss,
    which keeps the high-water mark of the forking parent's memory), and it
    only grows, so the last sample is the peak up to interval before exit.
    The process is found by its executable under ancestor (a lambda-sim)."""

    def __init__(self, pid: Optional[int] = None, exe: Optional[str] = None, ancestor: Optional[int] = None,
                 interval: float = 0.02, find_timeout: float = 30.0):
        self.pid = pid
        self.exe, self.ancestor = exe, ancestor
        self.interval, self.find_timeout = interval, find_timeout
        self.hwm_kb = 0
        self.last: Dict[str, int] = {}
        self.samples: List[tuple] = []   # (epoch ms, VmRSS kB, RssAnon kB, RssFile kB)
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _find(self) -> Optional[int]:
        # the extension is a direct child of the sim (no hosts mapping): look at
        # the sim's children only, rather than scanning /proc while it starts
        want = os.path.realpath(self.exe)
        kids: List[int] = []
        with contextlib.suppress(OSError, ValueError):
            for tid in os.listdir("/proc/%d/task" % self.ancestor):
                with open("/proc/%d/task/%s/children" % (self.ancestor, tid)) as f:
                    kids += [int(x) for x in f.read().split()]
        for pid in kids:
            with contextlib.suppress(OSError):
                exe = os.readlink("/proc/%d/exe" % pid)
                if exe == want or exe == want + " (deleted)":
                    return pid
        return None

    def _run(self) -> None:
        deadline = time.monotonic() + self.find_timeout
        while self.pid is None and not self._stop and time.monotonic() < deadline:
            self.pid = self._find()
            if self.pid is None:
                time.sleep(0.005)
        while self.pid is not None and not self._stop:
            st = proc_status_kb(self.pid)
            if not st or "VmHWM" not in st:
                return
            self.last = st
            self.hwm_kb = max(self.hwm_kb, st["VmHWM"])
            self.samples.append((epoch_ms(), st.get("VmRSS", 0), st.get("RssAnon", 0), st.get("RssFile", 0)))
            time.sleep(self.interval)

    def rss_at(self, t_ms: float) -> Optional[tuple]:
        """(VmRSS, RssAnon, RssFile) in kB of the last sample taken at or before t_ms."""
        best = None
        for t, *rss in self.samples:
            if t <= t_ms:
                best = tuple(rss)
        return best

    def stop(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
