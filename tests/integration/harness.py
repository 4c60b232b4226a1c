"""Integration harness: kinesis-local, Kinesis helpers and lambda-sim runner.

Importable by the pytest suite (tests/integration is on sys.path there) and by
scripts (``/usr/bin/python3 tests/integration/kinesis_cli.py ...``). Debian
python3 + python3-botocore only; all traffic goes to 127.0.0.1.

Main pieces:

* ``free_port()`` / ``free_ports(n)``: unused TCP ports on 127.0.0.1.
* ``KinesisLocal``: starts tools/kinesis-local (kinesis-mock 0.6.2 on Node) on
  free loopback ports, waits until it answers ListStreams, stops it (SIGTERM,
  then SIGKILL of its process group). Its output goes to ``log_path``.
* ``Kinesis(endpoint)``: botocore client wrapper with dummy credentials;
  ``create_stream(name, shards=1)`` (waits for ACTIVE), ``read_all(stream)``
  (every record of every shard from TRIM_HORIZON), ``delete_stream``.
  ``KinesisLocal`` delegates the same methods to its own ``Kinesis``.
* ``run_sim(...)`` / ``start_sim(...)``: build and run the lambda-sim command
  line; ``run_sim`` returns ``SimResult(exit_code, summary, stdout, stderr)``.
* ``kte_env(...)``: the extension's KTE_* environment for a test.
* ``find_processes_by_exe(exe, ancestor=pid)``: /proc scan used to deliver
  signals to the extension started by one particular sim.
* ``parse_envelope(record)`` / ``raw_event_text(data)``: decode the
  extension's Kinesis record format.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence

import cbor2  # Debian python3-cbor2: KinesisProxy reads and answers the CBOR protocol

REPO = Path(__file__).resolve().parents[2]
KINESIS_LOCAL_DIR = REPO / "tools" / "kinesis-local"
KINESIS_LOCAL_MAIN = KINESIS_LOCAL_DIR / "node_modules" / "kinesis-local" / "main.js"
KINESIS_LOCAL_SHIM = KINESIS_LOCAL_DIR / "loopback-only.js"
EXTENSION = REPO / "build" / "kinesis-telemetry-extension"
EXTENSION_NAME = "kinesis-telemetry-extension"
LAMBDA_SIM = REPO / "tools" / "lambda-sim" / "lambda-sim"
BOOTSTRAP = REPO / "examples" / "function" / "bootstrap"
RECORDER = Path(__file__).resolve().parent / "recorder-extension"

LOOPBACK = "127.0.0.1"
REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


class HarnessError(RuntimeError):
    """The harness itself could not do its job (not a product failure)."""


def require_executable(path: os.PathLike | str, what: str):
    """For pytest: path if it is an executable file; else fail the test, or
    skip it when KTE_ALLOW_SKIP=1 (CI must never go green by skipping)."""
    import pytest

    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    msg = f"{what} not found at {path} (build it first: make build)"
    if os.environ.get("KTE_ALLOW_SKIP") == "1":
        pytest.skip(msg + "; skipped because KTE_ALLOW_SKIP=1")
    pytest.fail(msg + " -- set KTE_ALLOW_SKIP=1 to skip instead", pytrace=False)


# --------------------------------------------------------------------------
# ports


def kinesis_local_fixture(tmp_path_factory, extra_env: Optional[Dict[str, str]] = None):
    """For a pytest session fixture: yields a started KinesisLocal logging
    under the session's tmp dir, stops it afterwards; fails the test when it
    does not start."""
    import pytest

    log = tmp_path_factory.mktemp("kinesis-local") / "kinesis-local.log"
    kl = KinesisLocal(log_path=log, extra_env=extra_env)
    try:
        kl.start()
    except HarnessError as e:
        pytest.fail(f"kinesis-local: {e}", pytrace=False)
    yield kl
    kl.stop()


def free_ports(n: int, host: str = LOOPBACK) -> List[int]:
    """Return n distinct TCP ports that were free on host a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port(host: str = LOOPBACK) -> int:
    return free_ports(1, host)[0]


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# processes


def _kill_group(proc: subprocess.Popen, term_wait: float = 5.0) -> None:
    """SIGTERM the process group of proc, SIGKILL it if still there."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=term_wait)
        except subprocess.TimeoutExpired:
            pass
    # Also kill stragglers left in the group after the leader went away.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _libc_prctl():
    import ctypes

    with contextlib.suppress(Exception):
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    return None


# Bound here, in the parent: importing ctypes and loading libc inside
# preexec_fn ran in the forked child and cost about 7 ms of CPU that the
# child's own rusage then counted (make bench measures the extension's CPU
# that way).
_PRCTL = _libc_prctl()


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it dies
    (Linux PR_SET_PDEATHSIG), so a killed test run leaves no server behind."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL, 0, 0, 0)


def _proc_exe(pid: int) -> Optional[str]:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    if exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    return exe


def _proc_ppid(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may contain spaces and parentheses.
    rest = stat[stat.rfind(")") + 2 :].split()
    return int(rest[1]) if len(rest) > 1 else None


def _proc_argv(pid: int) -> List[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def find_processes(
    exe: Optional[os.PathLike | str] = None,
    ancestor: Optional[int] = None,
    argv_contains: Optional[str] = None,
) -> List[int]:
    """PIDs whose /proc/PID/exe is exe and/or whose argv has the element
    argv_contains, optionally only descendants of ancestor."""
    want = os.path.realpath(exe) if exe is not None else None
    pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    found = []
    for pid in pids:
        if pid == os.getpid():
            continue
        if want is not None and _proc_exe(pid) != want:
            continue
        if argv_contains is not None and argv_contains not in _proc_argv(pid):
            continue
        if ancestor is not None:
            if pid == ancestor:
                continue
            p, hops = pid, 0
            while p and p != ancestor and hops < 64:
                p, hops = _proc_ppid(p), hops + 1
            if p != ancestor:
                continue
        found.append(pid)
    return sorted(found)


def find_processes_by_exe(exe: os.PathLike | str, ancestor: Optional[int] = None) -> List[int]:
    """PIDs whose /proc/PID/exe is exe, optionally only descendants of ancestor."""
    return find_processes(exe=exe, ancestor=ancestor)


def process_exited(pid: int) -> bool:
    """True when pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll predicate until it returns a truthy value; HarnessError on timeout.

    Only used to wait for things to *happen* (a port to open, a file line to
    appear); the timeouts are generous hang guards, never speed assertions.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Kinesis


def kinesis_client(endpoint: str, region: str = REGION):
    import botocore.config
    import botocore.session

    session = botocore.session.Session()
    # Ignore the user's ~/.aws and AWS_* variables: dummy credentials only.
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    config = botocore.config.Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return session.create_client(
        "kinesis",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def unique_stream_name(label: str) -> str:
    """A valid, unused stream name mentioning label."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-")[:80]
    return f"kte-{label}-{uuid.uuid4().hex[:8]}"


class Kinesis:
    """Thin helpers over a botocore Kinesis client for one endpoint."""

    def __init__(self, endpoint: str, region: str = REGION):
        self.endpoint = endpoint
        self.region = region
        self.client = kinesis_client(endpoint, region)

    def list_streams(self) -> List[str]:
        names: List[str] = []
        kwargs: Dict[str, Any] = {}
        while True:
            resp = self.client.list_streams(**kwargs)
            names += resp["StreamNames"]
            if not resp.get("HasMoreStreams"):
                return names
            kwargs = {"ExclusiveStartStreamName": names[-1]}

    def stream_status(self, name: str) -> str:
        return self.client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
            "StreamStatus"
        ]

    def create_stream(self, name: str, shards: int = 1, timeout: float = 60.0) -> str:
        """Create a provisioned stream and wait until it is ACTIVE; returns its ARN."""
        self.client.create_stream(StreamName=name, ShardCount=shards)
        wait_for(lambda: self.stream_status(name) == "ACTIVE", timeout, what=f"stream {name} ACTIVE")
        return self.client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
            "StreamARN"
        ]

    def delete_stream(self, name: str) -> None:
        self.client.delete_stream(StreamName=name, EnforceConsumerDeletion=True)

    def list_shards(self, stream: str) -> List[str]:
        shards: List[str] = []
        kwargs: Dict[str, Any] = {"StreamName": stream}
        while True:
            resp = self.client.list_shards(**kwargs)
            shards += [s["ShardId"] for s in resp["Shards"]]
            token = resp.get("NextToken")
            if not token:
                return sorted(shards)
            kwargs = {"NextToken": token}

    def put_records(self, stream: str, records: Iterable[tuple]) -> dict:
        """records: (data bytes, partition key) pairs. Returns the response."""
        return self.client.put_records(
            StreamName=stream, Records=[{"Data": d, "PartitionKey": k} for d, k in records]
        )

    def read_all(self, stream: str, max_calls_per_shard: int = 10000) -> List[dict]:
        """Every record in every shard from TRIM_HORIZON until caught up.

        Returns dicts {data: bytes, partition_key, sequence_number, shard,
        arrival} ordered by shard id, then sequence number.
        """
        out: List[dict] = []
        for shard in self.list_shards(stream):
            it = self.client.get_shard_iterator(
                StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            for _ in range(max_calls_per_shard):
                if not it:
                    break  # closed shard fully read
                resp = self.client.get_records(ShardIterator=it, Limit=10000)
                for r in resp["Records"]:
                    out.append(
                        {
                            "data": bytes(r["Data"]),
                            "partition_key": r["PartitionKey"],
                            "sequence_number": r["SequenceNumber"],
                            "shard": shard,
                            "arrival": r.get("ApproximateArrivalTimestamp"),
                        }
                    )
                it = resp.get("NextShardIterator")
                if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                    break
            else:
                raise HarnessError(f"read_all({stream}): shard {shard} not caught up")
        return out


class KinesisLocal:
    """kinesis-local on free loopback ports, as a context manager.

    with KinesisLocal(log_path=tmp / "kinesis-local.log") as kl:
        kl.create_stream("s"); kl.endpoint  # http://127.0.0.1:<port>
    """

    def __init__(
        self,
        log_path: Optional[os.PathLike | str] = None,
        plain_port: Optional[int] = None,
        tls_port: Optional[int] = None,
        log_level: str = "INFO",
        startup_timeout: float = 90.0,
        node: Optional[str] = None,
        extra_env: Optional[Dict[str, str]] = None,
    ):
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkdtemp(prefix="kinesis-local-")) / "kinesis-local.log"
        self._fixed_ports = (plain_port, tls_port)
        self.plain_port: Optional[int] = None
        self.tls_port: Optional[int] = None
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.node = node or os.environ.get("KINESIS_LOCAL_NODE") or "node"
        self.extra_env = dict(extra_env or {})
        self.proc: Optional[subprocess.Popen] = None
        self._kinesis: Optional[Kinesis] = None

    # -- lifecycle
    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.plain_port}"

    @property
    def kinesis(self) -> Kinesis:
        if self._kinesis is None:
            self._kinesis = Kinesis(self.endpoint)
        return self._kinesis

    def _env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KINESIS_MOCK_"))}
        env.update(
            {
                "KINESIS_MOCK_PLAIN_PORT": str(self.plain_port),
                "KINESIS_MOCK_TLS_PORT": str(self.tls_port),
                "KINESIS_MOCK_CERT_PATH": str(KINESIS_LOCAL_MAIN.parent / "server.json"),
                "KINESIS_LOCAL_HOST": LOOPBACK,
                "CREATE_STREAM_DURATION": "0ms",
                "DELETE_STREAM_DURATION": "0ms",
                "UPDATE_SHARD_COUNT_DURATION": "0ms",
                "SHARD_LIMIT": "10000",
                "ON_DEMAND_STREAM_COUNT_LIMIT": "1000",
                "SHOULD_PERSIST_DATA": "false",
                "LOAD_DATA_IF_EXISTS": "false",
                "LOG_LEVEL": self.log_level,
                "ROOT_LOG_LEVEL": "ERROR",
                "AWS_REGION": REGION,
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> "KinesisLocal":
        if not KINESIS_LOCAL_MAIN.is_file():
            raise HarnessError(
                f"{KINESIS_LOCAL_MAIN} is missing: run `make deps` (scripts/install-deps.sh)"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        attempts = 1 if all(self._fixed_ports) else 3
        last_error: Optional[Exception] = None
        for _ in range(attempts):
            ports = free_ports(2)
            self.plain_port = self._fixed_ports[0] or ports[0]
            self.tls_port = self._fixed_ports[1] or ports[1]
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [self.node, "--require", str(KINESIS_LOCAL_SHIM), str(KINESIS_LOCAL_MAIN)],
                    cwd=str(KINESIS_LOCAL_MAIN.parent),
                    env=self._env(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            finally:
                log.close()
            try:
                self._wait_ready()
                self._kinesis = None
                return self
            except HarnessError as e:  # e.g. a port grabbed by someone else meanwhile
                last_error = e
                self.stop()
        raise HarnessError(f"kinesis-local did not start: {last_error}; log: {self.log_tail()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        client = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"kinesis-local exited with {self.proc.returncode}")
            if port_open(self.plain_port):
                if client is None:
                    client = kinesis_client(self.endpoint)
                try:
                    client.list_streams()
                    client.close()
                    return
                except Exception:  # not ready yet
                    pass
            time.sleep(0.05)
        raise HarnessError(f"kinesis-local not answering after {self.startup_timeout:.0f}s")

    def stop(self) -> None:
        # kinesis-local only exits on SIGTERM once its keep-alive connections
        # are closed: close ours, and SIGKILL after 2 s for anybody else's
        # (nothing is persisted, so a kill loses nothing).
        if self._kinesis is not None:
            with contextlib.suppress(Exception):
                self._kinesis.client.close()
            self._kinesis = None
        if self.proc is not None:
            _kill_group(self.proc, term_wait=2.0)
            self.proc = None

    def __enter__(self) -> "KinesisLocal":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # -- delegation to Kinesis
    def create_stream(self, name: str, shards: int = 1, timeout: float = 60.0) -> str:
        return self.kinesis.create_stream(name, shards, timeout)

    def delete_stream(self, name: str) -> None:
        self.kinesis.delete_stream(name)

    def read_all(self, stream: str) -> List[dict]:
        return self.kinesis.read_all(stream)

    def list_shards(self, stream: str) -> List[str]:
        return self.kinesis.list_shards(stream)

    def put_records(self, stream: str, records: Iterable[tuple]) -> dict:
        return self.kinesis.put_records(stream, records)


# --------------------------------------------------------------------------
# a strict proxy in front of kinesis-local

PUT_RECORDS_MAX_RECORDS = 500
PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024  # data + partition keys, whole request
RECORD_MAX_BYTES = 1024 * 1024  # data + partition key, one record
PARTITION_KEY_MAX_CHARS = 256


def sigv4_problem(method: str, path: str, headers: Dict[str, str], body: bytes,
                  access_key: str, secret: str, region: str, service: str = "kinesis") -> Optional[str]:
    """None when headers carry a valid AWS SigV4 signature for this request
    (header-based, as the extension sends it), else what is wrong."""
    import hashlib
    import hmac

    h = {k.lower(): v for k, v in headers.items()}
    auth = h.get("authorization", "")
    m = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,"
                     r"\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})", auth)
    if not m:
        return f"Authorization header not SigV4: {auth[:120]!r}"
    key_id, day, rgn, svc, signed, signature = m.groups()
    if key_id != access_key:
        return f"access key {key_id!r}, expected {access_key!r}"
    if (rgn, svc) != (region, service):
        return f"credential scope {rgn}/{svc}, expected {region}/{service}"
    amz_date = h.get("x-amz-date", "")
    if not amz_date.startswith(day):
        return f"X-Amz-Date {amz_date!r} does not match the scope date {day}"
    names = signed.split(";")
    for required in ("host", "x-amz-date"):
        if required not in names:
            return f"{required} is not signed"
    for name in names:
        if name not in h:
            return f"signed header {name} missing"
    canon_headers = "".join(f"{n}:{' '.join(h[n].strip().split())}\n" for n in names)
    p, _, q = path.partition("?")
    canon_query = "&".join(sorted(q.split("&"))) if q else ""
    creq = "\n".join([method, p or "/", canon_query, canon_headers, signed, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{rgn}/{svc}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (day, rgn, svc, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, signature):
        return "signature does not match"
    return None


class KinesisProxy:
    """HTTP proxy on 127.0.0.1 in front of kinesis-local that holds the
    extension to the real Kinesis rules kinesis-local does not check, and
    can inject failures.

    For every PutRecords it checks: at most 500 records, at most 5 MiB of
    data + partition keys, each record at most 1 MiB, partition keys of 1 to
    256 characters, a stream name or ARN and a known content type: awsJson 1.1
    (Data in base64) or CBOR (KTE_PROTOCOL=cbor, the default: Data a byte
    string), answered in the request's protocol. A breach
    is recorded in .violations and answered 400 ValidationException, as
    Kinesis would. It also verifies the SigV4 signature (dummy credentials,
    expected region): problems go to .signature_problems, and are answered
    400 IncompleteSignatureException only with .strict_signatures set.
    Other actions pass through unchanged.

    .fault, when set, is called as fault(call_index, n_records) for each
    valid PutRecords (call_index counts from 0 since the last reset()) and
    returns None (pass), ("call", status, error_type) to fail the whole
    request, or ("records", {index: error_code}) to fail those records: only
    the others are forwarded, so a failed record is never stored.
    .calls records each PutRecords: records, bytes, status, failed (injected),
    protocol ("json" or "cbor").
    With .sink set, valid PutRecords are not forwarded: the proxy stores the
    records itself (read them with read_sink(stream)); kinesis-local takes
    about a second per 1 MiB record, too slow for multi-MiB tests.
    """

    def __init__(self, upstream: str, region: str = REGION):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        import threading
        import urllib.parse

        self.upstream = urllib.parse.urlsplit(upstream)
        self.region = region
        self.lock = threading.Lock()
        self.calls: List[dict] = []
        self.violations: List[str] = []
        self.signature_problems: List[str] = []
        self.strict_signatures = False
        self.fault = None
        self.sink = False
        self.stored: Dict[str, List[dict]] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per answer

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items()}
                target = self.headers.get("X-Amz-Target", "")
                if target.endswith(".PutRecords"):
                    status, out, ctype = proxy._put_records(self.path, headers, body)
                else:
                    status, out, ctype = proxy._forward(self.command, self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_PUT = do_POST
            do_GET = do_POST

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def start(self) -> "KinesisProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "KinesisProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self, region: Optional[str] = None) -> None:
        with self.lock:
            self.calls = []
            self.violations = []
            self.signature_problems = []
            self.strict_signatures = False
            self.fault = None
            self.sink = False
            self.stored = {}
            if region:
                self.region = region

    def read_sink(self, stream: str) -> List[dict]:
        """Records stored in sink mode, in the order accepted (like read_all)."""
        with self.lock:
            return list(self.stored.get(stream, []))

    # -- internals
    def _forward(self, method: str, path: str, headers: Dict[str, str], body: bytes):
        import http.client

        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            fwd = {k: v for k, v in headers.items()
                   if k.lower() not in ("host", "content-length", "connection", "expect")}
            fwd["Content-Length"] = str(len(body))
            conn.request(method, path, body=body, headers=fwd)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type", "application/x-amz-json-1.1")
        finally:
            conn.close()

    @staticmethod
    def _error(status: int, etype: str, message: str, cbor: bool = False):
        return status, wire_dumps({"__type": etype, "message": message}, cbor), wire_content_type(cbor)

    def _violation(self, msg: str, cbor: bool = False):
        with self.lock:
            self.violations.append(msg)
        return self._error(400, "ValidationException", msg, cbor)

    def _put_records(self, path: str, headers: Dict[str, str], body: bytes):
        import base64
        import binascii

        with self.lock:
            index = len(self.calls)
            call = {"records": 0, "bytes": 0, "status": None, "failed": 0}
            self.calls.append(call)
        problem = sigv4_problem("POST", path, headers, body, DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], self.region)
        if problem:
            with self.lock:
                self.signature_problems.append(f"PutRecords #{index}: {problem}")
            if self.strict_signatures:
                call["status"] = 400
                return self._error(400, "IncompleteSignatureException", problem)
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        ctype = ctype.split(";")[0].strip()
        if ctype not in (JSON_CONTENT_TYPE, CBOR_CONTENT_TYPE):
            call["status"] = 400
            return self._violation(f"PutRecords #{index}: Content-Type {ctype!r}")
        cbor = ctype == CBOR_CONTENT_TYPE
        call["protocol"] = "cbor" if cbor else "json"

        def data_of(r) -> bytes:
            if cbor:
                if not isinstance(r["Data"], bytes):
                    raise TypeError("Data is not a byte string")
                return r["Data"]
            return base64.b64decode(r["Data"], validate=True)

        try:
            req = wire_loads(body, cbor)
            records = req["Records"]
            sizes = []
            for r in records:
                key = r["PartitionKey"]
                data = data_of(r)
                sizes.append((len(data), len(key), len(key.encode("utf-8"))))
        except (ValueError, KeyError, TypeError, binascii.Error, cbor2.CBORDecodeError) as e:
            call["status"] = 400
            return self._violation(f"PutRecords #{index}: malformed request: {e}", cbor)
        call["records"] = len(records)
        call["bytes"] = sum(d + kb for d, _, kb in sizes)
        problems = []
        if not req.get("StreamName") and not req.get("StreamARN"):
            problems.append("neither StreamName nor StreamARN")
        if not 1 <= len(records) <= PUT_RECORDS_MAX_RECORDS:
            problems.append(f"{len(records)} records (1 to {PUT_RECORDS_MAX_RECORDS} allowed)")
        if call["bytes"] > PUT_RECORDS_MAX_BYTES:
            problems.append(f"{call['bytes']} bytes of data + keys (at most {PUT_RECORDS_MAX_BYTES})")
        for i, (d, kc, kb) in enumerate(sizes):
            if not 1 <= kc <= PARTITION_KEY_MAX_CHARS:
                problems.append(f"record {i}: partition key of {kc} characters")
            if d + kb > RECORD_MAX_BYTES:
                problems.append(f"record {i}: {d} + {kb} bytes (at most {RECORD_MAX_BYTES})")
        if problems:
            call["status"] = 400
            return self._violation(f"PutRecords #{index}: " + "; ".join(problems[:5]), cbor)

        fault = self.fault(index, len(records)) if self.fault else None
        if fault and fault[0] == "call":
            _, status, etype = fault
            call["status"] = status
            call["failed"] = len(records)
            return self._error(status, etype, "injected by the test proxy", cbor)
        failing = dict(fault[1]) if fault and fault[0] == "records" else {}
        # What the failed records carried (grouped formats count their events).
        call["failed_data"] = [data_of(records[i]) for i in sorted(failing)]
        keep = [i for i in range(len(records)) if i not in failing]
        results: Dict[int, dict] = {}
        if keep and self.sink:
            name = req.get("StreamName") or req.get("StreamARN", "").rsplit("/", 1)[-1]
            with self.lock:
                stored = self.stored.setdefault(name, [])
                for i in keep:
                    seq = str(49600000000000000000000000000000000000000000000000000000 + len(stored))
                    stored.append({"data": data_of(records[i]),
                                   "partition_key": records[i]["PartitionKey"],
                                   "sequence_number": seq, "shard": "shardId-000000000000", "arrival": None})
                    results[i] = {"SequenceNumber": seq, "ShardId": "shardId-000000000000"}
        elif keep:
            sub = dict(req, Records=[records[i] for i in keep])
            status, out, ctype = self._forward("POST", path, headers, wire_dumps(sub, cbor))
            if status != 200:
                call["status"] = status
                return status, out, ctype
            resp = wire_loads(out, cbor)
            for i, r in zip(keep, resp["Records"]):
                results[i] = r
        stream = req.get("StreamName") or req.get("StreamARN", "").rsplit("/", 1)[-1]
        for i, code in failing.items():
            results[i] = {"ErrorCode": code,
                          "ErrorMessage": f"Rate exceeded for shard shardId-000000000000 in stream {stream} "
                                          f"under account 000000000000."}
        merged = [results[i] for i in range(len(records))]
        failed = sum(1 for r in merged if r.get("ErrorCode"))
        call["status"] = 200
        call["failed"] = failed
        out = wire_dumps({"FailedRecordCount": failed, "Records": merged, "EncryptionType": "NONE"}, cbor)
        return 200, out, wire_content_type(cbor)


JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
CBOR_CONTENT_TYPE = "application/x-amz-cbor-1.1"


# The two wire protocols of PutRecords (KTE_PROTOCOL), for the proxies and
# sinks of the tests and benchmarks.
def request_is_cbor(headers: Dict[str, str]) -> bool:
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return ctype.split(";")[0].strip() == CBOR_CONTENT_TYPE


def wire_content_type(cbor: bool) -> str:
    return CBOR_CONTENT_TYPE if cbor else JSON_CONTENT_TYPE


def wire_dumps(doc, cbor: bool) -> bytes:
    return cbor2.dumps(doc) if cbor else json.dumps(doc).encode()


def wire_loads(body: bytes, cbor: bool):
    return cbor2.loads(body) if cbor else json.loads(body)


def record_data(record: dict, cbor: bool) -> bytes:
    """A request record's Data: a byte string in CBOR, base64 in JSON."""
    import base64

    return record["Data"] if cbor else base64.b64decode(record["Data"])


# --------------------------------------------------------------------------
# the extension's record format


def raw_event_text(data: bytes) -> bytes:
    """The bytes of the envelope's "event" value exactly as stored."""
    key = b',"event":'
    i = data.find(key)
    if i < 0:
        raise ValueError("no top-level \"event\" member found")
    start = i + len(key)
    text = data.decode("utf-8")
    # raw_decode works on str indices; map the byte offset to a str offset.
    sstart = len(data[:start].decode("utf-8"))
    _, send = json.JSONDecoder().raw_decode(text, sstart)
    return text[sstart:send].encode("utf-8")


def parse_envelope(record: dict) -> dict:
    """json.loads the record's data, with the record's metadata attached."""
    env = json.loads(record["data"].decode("utf-8"))
    env["_partition_key"] = record["partition_key"]
    env["_shard"] = record["shard"]
    env["_sequence_number"] = record["sequence_number"]
    return env


def split_raw_json_array(text: str) -> List[str]:
    """The exact text of each element of a JSON array, in order."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    out: List[str] = []
    n = len(text)

    def skip_ws(j: int) -> int:
        while j < n and text[j] in " \t\r\n":
            j += 1
        return j

    i = skip_ws(i)
    if i < n and text[i] == "]":
        return out
    while True:
        i = skip_ws(i)
        _, end = dec.raw_decode(text, i)
        out.append(text[i:end])
        i = skip_ws(end)
        if text[i] == ",":
            i += 1
            continue
        if text[i] == "]":
            return out
        raise ValueError(f"bad JSON array at {i}")


def read_telemetry_log(path: os.PathLike | str, subscriber: Optional[str] = None) -> List[bytes]:
    """Every event lambda-sim delivered (--telemetry-log), as the exact bytes
    posted, in delivery order; only those to subscriber when given."""
    out: List[bytes] = []
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return out
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break  # a line still being written
            line = raw.decode("utf-8")
            head = json.JSONDecoder().raw_decode(line[: line.index(',"events":')] + "}")[0]
            if subscriber is not None and head["subscriber"] != subscriber:
                continue
            body = line[line.index(',"events":') + len(',"events":') : line.rstrip("\n").rindex("}")]
            out += [e.encode("utf-8") for e in split_raw_json_array(body)]
    return out


def emf_lines(sim_stderr: str, process: str = EXTENSION_NAME) -> List[dict]:
    """CloudWatch EMF objects a process printed, from lambda-sim --verbose stderr."""
    prefix = f"[{process}] "
    out = []
    for line in sim_stderr.splitlines():
        if line.startswith(prefix + "{") and '"_aws"' in line:
            out.append(json.loads(line[len(prefix) :]))
    return out


# --------------------------------------------------------------------------
# lambda-sim


class SimResult(NamedTuple):
    exit_code: int
    summary: Optional[dict]
    stdout: str
    stderr: str

    def describe(self, limit: int = 4000) -> str:
        """Everything useful for an assertion message."""
        return (
            f"lambda-sim exit code {self.exit_code}\n"
            f"--- summary ---\n{json.dumps(self.summary, indent=1)[:limit]}\n"
            f"--- stdout (tail) ---\n{self.stdout[-limit:]}\n"
            f"--- stderr (tail) ---\n{self.stderr[-limit:]}"
        )


def kte_env(
    stream: Optional[str],
    endpoint: str,
    listener_port: Optional[int] = None,
    **overrides: Any,
) -> Dict[str, str]:
    """The extension's environment for tests: fast buffering, loopback only.

    Keyword overrides are KTE_* names without the prefix, e.g.
    kte_env(s, ep, port, FLUSH="end", LOG_LEVEL="debug"); a value of None
    removes the variable.
    """
    env = {
        "KTE_ENDPOINT": endpoint,
        "KTE_LISTENER_HOST": LOOPBACK,
        "KTE_LISTENER_PORT": str(listener_port or free_port()),
        "KTE_BUFFER_TIMEOUT_MS": "25",
    }
    if stream is not None:
        env["KTE_STREAM_NAME"] = stream
    for k, v in overrides.items():
        name = k if k.startswith("KTE_") else "KTE_" + k
        if v is None:
            env.pop(name, None)
        else:
            env[name] = str(v)
    return env


def sim_command(
    *,
    extensions: Sequence[os.PathLike | str] = (),
    bootstrap: os.PathLike | str = BOOTSTRAP,
    invokes: Optional[int] = None,
    event: Optional[Any] = None,
    idle_ms: Optional[int] = None,
    log_format: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    shutdown_reason: Optional[str] = None,
    mode: Optional[str] = None,
    summary: Optional[os.PathLike | str] = None,
    timeout: Optional[int] = None,
    function_name: Optional[str] = None,
    region: Optional[str] = None,
    memory_mb: Optional[int] = None,
    telemetry_log: Optional[os.PathLike | str] = None,
    verbose: int = 0,
    sim: os.PathLike | str = LAMBDA_SIM,
    extra_args: Sequence[str] = (),
) -> List[str]:
    """The lambda-sim argv for these options (None = the sim's default)."""
    cmd = [str(sim)]
    for ext in extensions:
        cmd += ["--extension", str(ext)]
    cmd += ["--bootstrap", str(bootstrap)]
    if invokes is not None:
        cmd += ["--invokes", str(invokes)]
    if event is not None:
        cmd += ["--event", event if isinstance(event, str) else json.dumps(event)]
    if idle_ms is not None:
        cmd += ["--idle-ms", str(idle_ms)]
    if log_format is not None:
        cmd += ["--log-format", log_format]
    for k, v in (env or {}).items():
        cmd += ["--env", f"{k}={v}"]
    if shutdown_reason is not None:
        cmd += ["--shutdown-reason", shutdown_reason]
    if mode is not None:
        cmd += ["--mode", mode]
    if summary is not None:
        cmd += ["--summary", str(summary)]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    if function_name is not None:
        cmd += ["--function-name", function_name]
    if region is not None:
        cmd += ["--region", region]
    if memory_mb is not None:
        cmd += ["--memory-mb", str(memory_mb)]
    if telemetry_log is not None:
        cmd += ["--telemetry-log", str(telemetry_log)]
    cmd += ["--verbose"] * int(verbose)
    cmd += list(extra_args)
    return cmd


def sim_process_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The sim's own environment: ours minus AWS_*/KTE_*, plus dummy credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KTE_"))}
    env.update(DUMMY_CREDENTIALS)
    env.update(extra or {})
    return env


class SimRun:
    """A lambda-sim process started by start_sim(); call wait() for the result."""

    def __init__(self, cmd: List[str], workdir: Path, summary_path: Path, env: Dict[str, str], cwd: Path):
        self.cmd = cmd
        self.workdir = workdir
        self.summary_path = summary_path
        self.stdout_path = workdir / "sim.stdout"
        self.stderr_path = workdir / "sim.stderr"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> Optional[int]:
        return self.proc.poll()

    def wait(self, run_timeout: float = 300.0) -> SimResult:
        """Wait for the sim; on a hang past run_timeout kill it and raise."""
        try:
            code = self.proc.wait(timeout=run_timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.proc, term_wait=2.0)
            raise HarnessError(
                f"lambda-sim still running after {run_timeout:.0f}s (hang), killed:\n"
                + self._result(-9).describe()
            )
        finally:
            # Anything the sim left behind in its process group is ours to end.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self._result(code)

    def _result(self, code: int) -> SimResult:
        summary = None
        try:
            summary = json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            pass
        return SimResult(
            code,
            summary,
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )

    def kill(self) -> None:
        _kill_group(self.proc, term_wait=2.0)


def start_sim(*, workdir: Optional[os.PathLike | str] = None, process_env: Optional[Dict[str, str]] = None,
              cwd: os.PathLike | str = REPO, **options: Any) -> SimRun:
    """Start lambda-sim with sim_command(**options); summary goes to workdir."""
    wd = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="lambda-sim-"))
    wd.mkdir(parents=True, exist_ok=True)
    summary = Path(options.pop("summary", None) or wd / "summary.json")
    with contextlib.suppress(FileNotFoundError):
        summary.unlink()
    cmd = sim_command(summary=summary, **options)
    (wd / "sim.cmd").write_text(" ".join(cmd) + "\n")
    return SimRun(cmd, wd, summary, sim_process_env(process_env), Path(cwd))


def run_sim(*, run_timeout: float = 300.0, **kwargs: Any) -> SimResult:
    """Run lambda-sim to completion: (exit code, parsed summary, stdout, stderr)."""
    return start_sim(**kwargs).wait(run_timeout)
