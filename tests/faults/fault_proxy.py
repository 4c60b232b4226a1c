#!/usr/bin/python3
"""fault_proxy: an HTTP proxy in front of kinesis-local that injects Kinesis faults.

The extension's KTE_ENDPOINT points at the proxy; the proxy forwards to
kinesis-local's plain-HTTP endpoint. Python 3 standard library only.

kinesis-local (kinesis-mock 0.6.2) checks that an ``Authorization`` header is
present but does not verify the SigV4 signature (checked: a request with a
bogus signature and a 2020 date is accepted), so the proxy forwards edited
PutRecords bodies with the client's original, now stale, signature headers.

Faults, each either by rate (a fraction of PutRecords requests, or of the
records in them, drawn from a seeded ``random.Random`` so that a run is
reproducible for the same request sequence), for the next N PutRecords
requests, or during a time window (now until cleared, or for N seconds):

request kinds (``REQUEST_FAULTS``), all on PutRecords only:
  ``http500``    500 ``{"__type":"InternalFailure"}``, not forwarded
  ``http503``    503 ``{"__type":"ServiceUnavailable"}``, not forwarded
  ``throttle``   400 ``{"__type":"ProvisionedThroughputExceededException"}``, not forwarded
  ``permanent``  400 ``{"__type":"ResourceNotFoundException"}``, not forwarded
  ``slow``       forwarded (the records ARE stored), then the answer is held
                 back ``slow_seconds`` -- longer than the client's timeout, so
                 the client resends and the stream gets duplicates
  ``reset``      connection reset (SO_LINGER 0 close), not forwarded
  ``reset_after_forward``  forwarded (stored), then connection reset
record codes (``RECORD_CODES``): ``ProvisionedThroughputExceededException``
  and ``InternalFailure`` inside a 200 answer. The chosen records are not
  forwarded; the others are, and the answer merges kinesis-local's results
  with the failures: same length and order as the request, failed entries
  ``{"ErrorCode":..,"ErrorMessage":..}``, ``FailedRecordCount`` exact.
shard limit (``set_shard_limit(records_per_s, bytes_per_s)``): the stream
  plays one shard with Kinesis's per-second limits, in whole-second windows:
  a record that would take the second over either limit fails with
  ``ProvisionedThroughputExceededException`` in a 200 answer (counted in
  ``records_failed`` like injected ones); the others are forwarded.
outage: the listening socket is closed (connections are refused) and every
  open connection is reset; when the outage ends the proxy listens again on
  the same port.
idle close: keep-alive connections idle for longer than ``idle_close_after``
  seconds are closed by the proxy, with a FIN (``mode="fin"``) or a RST
  (``mode="rst"``) -- a load balancer closing connections while a Lambda
  environment is frozen.

Other Kinesis calls (CreateStream, GetRecords, ...) pass straight through
(they are only subject to outages and idle closes).

Both wire protocols: a PutRecords sent as ``application/x-amz-cbor-1.1``
(KTE_PROTOCOL=cbor; Debian's python3-cbor2) is read, edited and answered in
CBOR -- error bodies, merged answers and forwarded bodies alike -- and one sent
as awsJson 1.1 in JSON. ``set_refuse_cbor(True)`` makes the proxy answer
every CBOR PutRecords as a service without CBOR would (kinesis-mock and
Kinesis answer an unknown content type with 404 ``<UnknownOperationException/>``),
not forwarded; JSON ones are unaffected. ``stats()["protocols"]`` counts the
PutRecords requests of each protocol.

In-process use (pytest)::

    p = FaultProxy("http://127.0.0.1:4567", seed=7).start()
    p.set_record_failure_rate("ProvisionedThroughputExceededException", 0.3)
    p.set_fault_rate("http500", 0.1)
    p.outage(5)            # refuse connections for 5 s
    p.inject_next("slow", 1)
    p.stats()              # counters, see FaultProxy.stats
    p.stop()

CLI (manual runs; commands on stdin, ``help`` lists them)::

    tests/faults/fault_proxy.py --upstream http://127.0.0.1:4567 --port 4568 \\
        --record-fail ProvisionedThroughputExceededException=0.3 --fault http500=0.1
"""

from __future__ import annotations

import argparse
import base64
import copy
import email.utils
import http.client
import json
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from typing import Dict, List, Optional

import cbor2  # Debian's python3-cbor2 (scripts/install-deps.sh)

REQUEST_FAULTS = (
    "http500",
    "http503",
    "throttle",
    "permanent",
    "slow",
    "reset",
    "reset_after_forward",
)
RECORD_CODES = ("ProvisionedThroughputExceededException", "InternalFailure")
PUT_RECORDS_TARGET = "Kinesis_20131202.PutRecords"
JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/x-amz-cbor-1.1"


class _Codec:
    """One wire protocol: how bodies are read and written, and their type."""

    def __init__(self, name, loads, dumps, content_type):
        self.name, self.loads, self.dumps, self.content_type = name, loads, dumps, content_type


_JSON = _Codec("json", json.loads, lambda d: json.dumps(d, separators=(",", ":")).encode(), JSON_TYPE)
_CBOR = _Codec("cbor", cbor2.loads, cbor2.dumps, CBOR_TYPE)


def _codec_of(req) -> _Codec:
    ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
    return _CBOR if ctype == CBOR_TYPE else _JSON
ACCOUNT = "123456789012"

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "host",
}
_POLL_S = 0.02  # how often idle connections and the acceptor look at the settings
_MAX_HEADER = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class _Request:
    __slots__ = ("method", "target", "version", "headers", "body")

    def __init__(self, method, target, version, headers, body):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value), original case
        self.body = body

    def header(self, name: str) -> Optional[str]:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


class _Closed(Exception):
    """The connection is finished (EOF, error, or closed by a fault)."""


class _Conn:
    """One client connection and its state."""

    def __init__(self, cid: int, sock: socket.socket, peer):
        self.id = cid
        self.sock = sock
        self.peer = peer
        self.buf = bytearray()
        self.last_activity = time.monotonic()
        self.upstream: Optional[http.client.HTTPConnection] = None
        self.closed = False


def _now_http_date() -> str:
    return email.utils.formatdate(usegmt=True)


class FaultProxy:
    """The proxy. All public methods are thread-safe."""

    def __init__(
        self,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        slow_seconds: float = 2.0,
        log=None,
    ):
        u = urllib.parse.urlsplit(upstream)
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host = u.hostname
        self.upstream_port = u.port
        self.host = host
        self._port = port
        self._log = log
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._slow_seconds = float(slow_seconds)
        self._record_rates: Dict[str, float] = {c: 0.0 for c in RECORD_CODES}
        self._fault_rates: Dict[str, float] = {k: 0.0 for k in REQUEST_FAULTS}
        self._forced: Dict[str, Optional[float]] = {}  # kind or record code -> until (monotonic) / None
        self._next: List[List] = []  # [kind, remaining count]
        self._outage = False
        self._outage_until: Optional[float] = None
        self._idle_close_after: Optional[float] = None
        self._idle_close_mode = "fin"
        self._listener: Optional[socket.socket] = None
        self._stopping = threading.Event()
        self._acceptor: Optional[threading.Thread] = None
        self._conns: Dict[int, _Conn] = {}
        self._threads: List[threading.Thread] = []
        self._next_cid = 1
        self._stats = self._empty_stats()
        self._events: List[dict] = []
        self._outages: List[dict] = []
        self._refuse_cbor = False
        self._shard_limit: Optional[tuple] = None  # (records/s, bytes/s)
        self._shard_window = [0, 0, 0]  # second, records, bytes

    # ------------------------------------------------------------------
    # lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def start(self) -> "FaultProxy":
        self._open_listener()
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        with self._lock:
            conns = list(self._conns.values())
            threads = list(self._threads)
        for c in conns:
            self._close(c, rst=False, why=None)
        for t in threads:
            t.join(timeout=5)
        self._close_listener()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------
    # settings

    def set_seed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def set_record_failure_rate(self, code: str, rate: float) -> None:
        """Fraction of records in every PutRecords that fail with code in a 200 answer."""
        if code not in RECORD_CODES:
            raise ValueError(f"record code must be one of {RECORD_CODES}")
        _check_rate(rate)
        with self._lock:
            self._record_rates[code] = float(rate)
            if sum(self._record_rates.values()) > 1.0:
                raise ValueError("record failure rates add up to more than 1")

    def set_shard_limit(self, records_per_s: Optional[int] = 1000, bytes_per_s: int = 1024 * 1024) -> None:
        """Play one shard's limits (None: no limit); see the module doc."""
        with self._lock:
            self._shard_limit = None if records_per_s is None else (int(records_per_s), int(bytes_per_s))
            self._shard_window = [0, 0, 0]

    def _pick_shard_limit(self, records: list, codec, failures: List[Optional[str]]) -> None:
        """Lock held. Marks the records over this second's limits."""
        if self._shard_limit is None or records is None:
            return
        sec = int(time.time())
        w = self._shard_window
        if w[0] != sec:
            w[:] = [sec, 0, 0]
        for i, r in enumerate(records):
            if failures[i] is not None:
                continue
            try:
                size = len(_record_data(r, codec)) + len(str(r.get("PartitionKey", "")).encode())
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if w[1] + 1 > self._shard_limit[0] or w[2] + size > self._shard_limit[1]:
                failures[i] = "ProvisionedThroughputExceededException"
            else:
                w[1] += 1
                w[2] += size

    def set_fault_rate(self, kind: str, rate: float) -> None:
        """Fraction of PutRecords requests answered with the request fault kind."""
        if kind not in REQUEST_FAULTS:
            raise ValueError(f"fault must be one of {REQUEST_FAULTS}")
        _check_rate(rate)
        with self._lock:
            self._fault_rates[kind] = float(rate)
            if sum(self._fault_rates.values()) > 1.0:
                raise ValueError("request fault rates add up to more than 1")

    def set_slow_seconds(self, seconds: float) -> None:
        """How long a ``slow`` answer is held back after forwarding."""
        with self._lock:
            self._slow_seconds = float(seconds)

    def force(self, kind: str, seconds: Optional[float] = None) -> None:
        """Every PutRecords gets kind (a request fault, or a record code: every
        record fails with it) from now on, for seconds or until unforce()."""
        if kind not in REQUEST_FAULTS and kind not in RECORD_CODES:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._forced[kind] = None if seconds is None else time.monotonic() + seconds

    def unforce(self, kind: Optional[str] = None) -> None:
        with self._lock:
            if kind is None:
                self._forced.clear()
            else:
                self._forced.pop(kind, None)

    def set_permanent_error(self, on: bool = True) -> None:
        """Permanent error mode: every PutRecords gets 400 ResourceNotFoundException."""
        if on:
            self.force("permanent")
        else:
            self.unforce("permanent")

    def inject_next(self, kind: str, count: int = 1) -> None:
        """The next count PutRecords requests get the request fault kind
        (queued after any earlier inject_next); kind "ok" lets them through
        untouched (no rate-based fault either), to script a sequence."""
        if kind not in REQUEST_FAULTS and kind != "ok":
            raise ValueError(f"fault must be one of {REQUEST_FAULTS}")
        with self._lock:
            self._next.append([kind, int(count)])

    def set_refuse_cbor(self, on: bool = True) -> None:
        """Answer every CBOR PutRecords 404 <UnknownOperationException/>, as a
        service without the CBOR protocol does (not forwarded)."""
        with self._lock:
            self._refuse_cbor = bool(on)

    def set_idle_close(self, seconds: Optional[float], mode: str = "fin") -> None:
        """Close keep-alive connections idle for longer than seconds (None: never)."""
        if mode not in ("fin", "rst"):
            raise ValueError("mode must be fin or rst")
        with self._lock:
            self._idle_close_after = None if seconds is None else float(seconds)
            self._idle_close_mode = mode

    def outage(self, seconds: Optional[float] = None, wait: bool = True) -> None:
        """Start a full outage now (until end_outage(), or for seconds):
        connections are refused and open ones reset. With wait, returns once
        the listening socket is closed."""
        with self._lock:
            self._outage = True
            self._outage_until = None if seconds is None else time.monotonic() + seconds
            self._outages.append({"start": time.monotonic(), "end": None})
            self._stats["outages"] += 1
        if wait:
            self._wait_listener(False)

    def end_outage(self, wait: bool = True) -> None:
        with self._lock:
            self._outage = False
            self._outage_until = None
        if wait:
            self._wait_listener(True)

    def _wait_listener(self, listening: bool, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set() and (self._listener is not None) != listening:
            if time.monotonic() > deadline or self._acceptor is None:
                return
            time.sleep(0.005)

    def in_outage(self) -> bool:
        with self._lock:
            return self._outage

    def clear(self) -> None:
        """Remove every fault (rates, forced windows, queued injections, outage, idle close)."""
        with self._lock:
            for k in self._record_rates:
                self._record_rates[k] = 0.0
            for k in self._fault_rates:
                self._fault_rates[k] = 0.0
            self._forced.clear()
            self._next.clear()
            self._idle_close_after = None
            self._refuse_cbor = False
            self._shard_limit = None
        self.end_outage()

    # ------------------------------------------------------------------
    # counters

    @staticmethod
    def _empty_stats() -> dict:
        return {
            "requests": 0,  # every HTTP request read from a client
            "put_records_requests": 0,
            "other_requests": 0,  # non-PutRecords calls passed through
            "records_received": 0,  # records in PutRecords requests
            "records_forwarded": 0,  # records stored by kinesis-local (its answer had no ErrorCode)
            "records_forwarded_unanswered": 0,  # stored, but the answer was withheld (slow/reset_after_forward)
            "records_failed": {c: 0 for c in RECORD_CODES},  # injected per-record failures
            "records_in_failed_requests": 0,  # records in requests answered by a request fault
            "upstream_record_failures": {},  # per-record errors kinesis-local itself returned
            "upstream_errors": 0,  # kinesis-local unreachable / non-200 on a forwarded PutRecords
            "injected": {k: 0 for k in REQUEST_FAULTS},
            "connections_accepted": 0,
            "connections_closed": 0,
            "closed_by_client": 0,
            "idle_closes": {"fin": 0, "rst": 0},
            "outage_resets": 0,
            "outages": 0,
            "responses": {},  # status -> count
            "protocols": {"json": 0, "cbor": 0},  # PutRecords requests per wire protocol
            "cbor_refused": 0,  # CBOR PutRecords answered 404 by set_refuse_cbor
        }

    def stats(self) -> dict:
        """A snapshot (deep copy) of the counters."""
        with self._lock:
            s = copy.deepcopy(self._stats)
            s["records_failed_total"] = sum(s["records_failed"].values())
            s["open_connections"] = len(self._conns)
            return s

    def events(self) -> List[dict]:
        """One dict per PutRecords request, in arrival order: time (monotonic),
        conn, protocol (json or cbor), records, bytes (request body), fault (request fault or None),
        failed ({code: n}), forwarded (records stored), upstream_ms (time
        kinesis-local took, when forwarded), status (answer sent, None if none)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def outages(self) -> List[dict]:
        with self._lock:
            return copy.deepcopy(self._outages)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = self._empty_stats()
            self._events = []

    def wait_until(self, predicate, timeout: float, interval: float = 0.02) -> bool:
        """Poll predicate(stats()) until true or timeout; returns the last value."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate(self.stats()):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(interval)

    def _log_line(self, msg: str) -> None:
        if self._log is not None:
            try:
                self._log.write(f"{time.strftime('%H:%M:%S')} fault-proxy: {msg}\n")
                self._log.flush()
            except Exception:
                pass

    # ------------------------------------------------------------------
    # listening

    def _open_listener(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:
            try:
                s.bind((self.host, self._port))
                break
            except OSError:
                if not self._port or time.monotonic() > deadline:
                    s.close()
                    raise
                time.sleep(0.05)  # re-listen after an outage: the port is ours, retry
        s.listen(128)
        self._port = s.getsockname()[1]
        self._listener = s

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
            self._listener = None

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._outage and self._outage_until is not None and time.monotonic() >= self._outage_until:
                    self._outage = False
                    self._outage_until = None
                want = not self._outage
                if self._outages and not self._outage and self._outages[-1]["end"] is None:
                    self._outages[-1]["end"] = time.monotonic()
            if not want:
                if self._listener is not None:
                    self._close_listener()
                    self._log_line("outage: listener closed")
                time.sleep(_POLL_S)
                continue
            if self._listener is None:
                try:
                    self._open_listener()
                    self._log_line(f"outage over: listening again on {self._port}")
                except OSError as e:
                    self._log_line(f"cannot listen again on {self._port}: {e}")
                    time.sleep(0.1)
                    continue
            try:
                r, _, _ = select.select([self._listener], [], [], _POLL_S)
            except (OSError, ValueError):
                continue
            if not r:
                continue
            try:
                sock, peer = self._listener.accept()
            except OSError:
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._outage:
                    self._stats["outage_resets"] += 1
                    _rst_close(sock)
                    continue
                cid = self._next_cid
                self._next_cid += 1
                c = _Conn(cid, sock, peer)
                self._conns[cid] = c
                self._stats["connections_accepted"] += 1
                t = threading.Thread(target=self._serve, args=(c,), name=f"fault-proxy-conn-{cid}", daemon=True)
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()
        self._close_listener()

    # ------------------------------------------------------------------
    # connections

    def _close(self, c: _Conn, rst: bool, why: Optional[str]) -> None:
        with self._lock:
            if c.closed:
                return
            c.closed = True
            self._conns.pop(c.id, None)
            self._stats["connections_closed"] += 1
            if why == "client":
                self._stats["closed_by_client"] += 1
            elif why in ("fin", "rst"):
                self._stats["idle_closes"][why] += 1
            elif why == "outage":
                self._stats["outage_resets"] += 1
        if rst:
            _rst_close(c.sock)
        else:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass
        if c.upstream is not None:
            try:
                c.upstream.close()
            except Exception:
                pass
            c.upstream = None

    def _serve(self, c: _Conn) -> None:
        try:
            while True:
                req = self._read_request(c)
                if not self._handle(c, req):
                    break
        except _Closed:
            pass
        except Exception as e:  # never let a bug kill the proxy silently
            self._log_line(f"conn {c.id}: internal error {e!r}")
        finally:
            self._close(c, rst=False, why=None)

    def _wait_readable(self, c: _Conn, between_requests: bool) -> None:
        """Block until c has bytes to read; applies stop, outage and idle close."""
        while True:
            if self._stopping.is_set():
                self._close(c, rst=False, why=None)
                raise _Closed
            with self._lock:
                outage = self._outage
                idle_after = self._idle_close_after
                idle_mode = self._idle_close_mode
            if outage:
                self._close(c, rst=True, why="outage")
                raise _Closed
            if between_requests and idle_after is not None and time.monotonic() - c.last_activity >= idle_after:
                self._log_line(f"conn {c.id}: idle for {idle_after}s, closing ({idle_mode})")
                self._close(c, rst=idle_mode == "rst", why=idle_mode)
                raise _Closed
            try:
                r, _, _ = select.select([c.sock], [], [], _POLL_S)
            except (OSError, ValueError):
                raise _Closed
            if r:
                return

    def _recv_more(self, c: _Conn, between_requests: bool) -> None:
        self._wait_readable(c, between_requests)
        try:
            data = c.sock.recv(1 << 16)
        except OSError:
            self._close(c, rst=False, why="client")
            raise _Closed
        if not data:
            self._close(c, rst=False, why="client")
            raise _Closed
        c.buf += data

    def _read_request(self, c: _Conn) -> _Request:
        while True:
            i = c.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            if len(c.buf) > _MAX_HEADER:
                raise _Closed
            self._recv_more(c, between_requests=not c.buf)
        head = bytes(c.buf[:i]).decode("latin-1")
        del c.buf[: i + 4]
        lines = head.split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _Closed
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        req = _Request(method, target, version, headers, b"")
        if (req.header("expect") or "").lower() == "100-continue":
            self._send_raw(c, b"HTTP/1.1 100 Continue\r\n\r\n")
        te = (req.header("transfer-encoding") or "").lower()
        if "chunked" in te:
            req.body = self._read_chunked(c)
        else:
            n = int(req.header("content-length") or 0)
            if n > _MAX_BODY:
                raise _Closed
            while len(c.buf) < n:
                self._recv_more(c, between_requests=False)
            req.body = bytes(c.buf[:n])
            del c.buf[:n]
        with self._lock:
            self._stats["requests"] += 1
        return req

    def _read_chunked(self, c: _Conn) -> bytes:
        body = bytearray()
        while True:
            while b"\r\n" not in c.buf:
                self._recv_more(c, False)
            i = c.buf.find(b"\r\n")
            size = int(bytes(c.buf[:i]).split(b";")[0].strip() or b"0", 16)
            del c.buf[: i + 2]
            if size == 0:
                while b"\r\n" not in c.buf:  # trailers end with an empty line
                    self._recv_more(c, False)
                while True:
                    j = c.buf.find(b"\r\n")
                    line = bytes(c.buf[:j])
                    del c.buf[: j + 2]
                    if not line:
                        return bytes(body)
                    while b"\r\n" not in c.buf:
                        self._recv_more(c, False)
            while len(c.buf) < size + 2:
                self._recv_more(c, False)
            body += c.buf[:size]
            del c.buf[: size + 2]

    def _send_raw(self, c: _Conn, data: bytes) -> bool:
        try:
            c.sock.sendall(data)
            return True
        except OSError:
            return False

    def _respond(self, c: _Conn, status: int, body: bytes, reason: Optional[str] = None,
                 content_type: str = "application/x-amz-json-1.1", extra=()) -> bool:
        reason = reason or http.client.responses.get(status, "Unknown")
        head = [
            f"HTTP/1.1 {status} {reason}",
            f"Date: {_now_http_date()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"x-amzn-RequestId: {uuid.uuid4()}",
            "Connection: keep-alive",
        ]
        head += [f"{k}: {v}" for k, v in extra]
        ok = self._send_raw(c, ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        with self._lock:
            key = str(status)
            self._stats["responses"][key] = self._stats["responses"].get(key, 0) + 1
        c.last_activity = time.monotonic()
        return ok

    # ------------------------------------------------------------------
    # upstream

    def _forward(self, c: _Conn, req: _Request, body: bytes):
        """Send req (with body) to kinesis-local; returns (status, content type,
        other headers, body) or None when kinesis-local cannot be reached."""
        for attempt in (1, 2):
            if c.upstream is None:
                c.upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
            try:
                up = c.upstream
                up.putrequest(req.method, req.target, skip_host=True, skip_accept_encoding=True)
                up.putheader("Host", req.header("host") or f"{self.upstream_host}:{self.upstream_port}")
                for k, v in req.headers:
                    if k.lower() not in _HOP_BY_HOP:
                        up.putheader(k, v)
                up.putheader("Content-Length", str(len(body)))
                up.endheaders(body)
                resp = up.getresponse()
                data = resp.read()
                hdrs = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP
                        and k.lower() not in ("date", "content-type")]
                ctype = resp.getheader("Content-Type") or "application/x-amz-json-1.1"
                if resp.will_close:
                    up.close()
                    c.upstream = None
                return resp.status, ctype, hdrs, data
            except (http.client.HTTPException, OSError) as e:
                try:
                    c.upstream.close()
                except Exception:
                    pass
                c.upstream = None
                if attempt == 2:
                    self._log_line(f"conn {c.id}: upstream error {e!r}")
                    return None
        return None

    # ------------------------------------------------------------------
    # decisions

    def _pick_request_fault(self) -> Optional[str]:
        """Lock held."""
        now = time.monotonic()
        for kind, until in list(self._forced.items()):
            if until is not None and now >= until:
                del self._forced[kind]
        for kind in REQUEST_FAULTS:  # forced windows: fixed priority
            if kind in self._forced:
                return kind
        while self._next and self._next[0][1] <= 0:
            self._next.pop(0)
        if self._next:
            self._next[0][1] -= 1
            return self._next[0][0]  # "ok": no fault
        u = self._rng.random()
        acc = 0.0
        for kind in REQUEST_FAULTS:
            acc += self._fault_rates[kind]
            if u < acc:
                return kind
        return None

    def _pick_record_failures(self, n: int) -> List[Optional[str]]:
        """Lock held."""
        forced = [c for c in RECORD_CODES if c in self._forced]
        if forced:
            return [forced[0]] * n
        out: List[Optional[str]] = []
        for _ in range(n):
            u = self._rng.random()
            acc, code = 0.0, None
            for k in RECORD_CODES:
                acc += self._record_rates[k]
                if u < acc:
                    code = k
                    break
            out.append(code)
        return out

    # ------------------------------------------------------------------
    # handling

    def _handle(self, c: _Conn, req: _Request) -> bool:
        """Answers one request; False when the connection is finished."""
        with self._lock:
            outage = self._outage
        if outage:
            self._close(c, rst=True, why="outage")
            return False
        keep = (req.header("connection") or "").lower() != "close"
        if req.header("x-amz-target") != PUT_RECORDS_TARGET:
            with self._lock:
                self._stats["other_requests"] += 1
            res = self._forward(c, req, req.body)
            if res is None:
                codec = _codec_of(req)
                self._respond(c, 502, codec.dumps(_UNREACHABLE), content_type=codec.content_type)
                return keep
            status, ctype, hdrs, data = res
            self._respond(c, status, data, content_type=ctype)
            return keep
        return self._put_records(c, req) and keep

    def _put_records(self, c: _Conn, req: _Request) -> bool:
        codec = _codec_of(req)
        with self._lock:
            refuse = self._refuse_cbor and codec is _CBOR
            if refuse:
                self._stats["cbor_refused"] += 1
        if refuse:
            return self._respond(c, 404, b"<UnknownOperationException/>\n", content_type="text/plain; charset=UTF-8")
        try:
            doc = codec.loads(req.body)
            records = doc["Records"]
            if not isinstance(records, list):
                raise ValueError("Records is not a list")
        except (ValueError, KeyError, TypeError, cbor2.CBORDecodeError):
            doc, records = None, None
        n = len(records) if records is not None else 0
        stream = (doc or {}).get("StreamName") or (doc or {}).get("StreamARN") or "?"
        with self._lock:
            self._stats["put_records_requests"] += 1
            self._stats["protocols"][codec.name] += 1
            self._stats["records_received"] += n
            fault = self._pick_request_fault()
            slow_s = self._slow_seconds
            if fault == "ok":
                fault, failures = None, [None] * n
            elif fault == "reset_after_forward":
                failures = [None] * n
            else:
                failures = self._pick_record_failures(n)
                self._pick_shard_limit(records, codec, failures)
            if fault is not None:
                self._stats["injected"][fault] += 1
            ev = {"time": time.monotonic(), "conn": c.id, "protocol": codec.name, "records": n, "bytes": len(req.body), "fault": fault,
                  "failed": {}, "forwarded": 0, "status": None}
            self._events.append(ev)

        def finish(status):
            with self._lock:
                ev["status"] = status

        error_bodies = {
            "http500": (500, {"__type": "InternalFailure"}),
            "http503": (503, {"__type": "ServiceUnavailable"}),
            "throttle": (400, {"__type": "ProvisionedThroughputExceededException",
                               "message": f"Rate exceeded for stream {stream} under account {ACCOUNT}."}),
            "permanent": (400, {"__type": "ResourceNotFoundException",
                                "message": f"Stream {stream} under account {ACCOUNT} not found."}),
        }
        if fault in error_bodies:
            status, body = error_bodies[fault]
            with self._lock:
                self._stats["records_in_failed_requests"] += n
            finish(status)
            return self._respond(c, status, codec.dumps(body), content_type=codec.content_type)
        if fault == "reset":
            with self._lock:
                self._stats["records_in_failed_requests"] += n
            finish(None)
            self._close(c, rst=True, why=None)
            return False

        if records is None:  # not a body we understand: pass it through
            res = self._forward(c, req, req.body)
            if res is None:
                finish(502)
                return self._respond(c, 502, codec.dumps(_UNREACHABLE), content_type=codec.content_type)
            status, ctype, hdrs, data = res
            finish(status)
            return self._respond(c, status, data, content_type=ctype)

        keep_idx = [i for i in range(n) if failures[i] is None]
        up_results: List[dict] = []
        up_doc: dict = {}
        if keep_idx:
            fwd = dict(doc)
            fwd["Records"] = [records[i] for i in keep_idx]
            body = codec.dumps(fwd) if len(keep_idx) < n else req.body
            t0 = time.monotonic()
            res = self._forward(c, req, body)
            with self._lock:
                ev["upstream_ms"] = round((time.monotonic() - t0) * 1000, 1)
            if res is None:
                with self._lock:
                    self._stats["upstream_errors"] += 1
                finish(502)
                return self._respond(c, 502, codec.dumps(_UNREACHABLE), content_type=codec.content_type)
            status, ctype, hdrs, data = res
            if status != 200:
                with self._lock:
                    self._stats["upstream_errors"] += 1
                finish(status)
                return self._respond(c, status, data, content_type=ctype)
            try:
                up_doc = codec.loads(data)
                up_results = up_doc["Records"]
                assert len(up_results) == len(keep_idx)
            except Exception:
                with self._lock:
                    self._stats["upstream_errors"] += 1
                finish(status)
                return self._respond(c, status, data, content_type=ctype)

        merged: List[dict] = []
        failed_n = 0
        stored = 0
        it = iter(up_results)
        per_code: Dict[str, int] = {}
        up_fail: Dict[str, int] = {}
        for i in range(n):
            code = failures[i]
            if code is not None:
                merged.append({"ErrorCode": code, "ErrorMessage": _record_message(code, stream)})
                per_code[code] = per_code.get(code, 0) + 1
                failed_n += 1
            else:
                r = next(it)
                merged.append(r)
                if r.get("ErrorCode"):
                    failed_n += 1
                    up_fail[r["ErrorCode"]] = up_fail.get(r["ErrorCode"], 0) + 1
                else:
                    stored += 1
        answer = {"EncryptionType": up_doc.get("EncryptionType", "NONE"), "FailedRecordCount": failed_n,
                  "Records": merged}
        out = codec.dumps(answer)
        with self._lock:
            for k, v in per_code.items():
                self._stats["records_failed"][k] += v
            for k, v in up_fail.items():
                self._stats["upstream_record_failures"][k] = self._stats["upstream_record_failures"].get(k, 0) + v
            if fault in ("slow", "reset_after_forward"):
                self._stats["records_forwarded_unanswered"] += stored
            self._stats["records_forwarded"] += stored
            ev["failed"] = per_code
            ev["forwarded"] = stored

        if fault == "reset_after_forward":
            finish(None)
            self._close(c, rst=True, why=None)
            return False
        if fault == "slow":
            self._log_line(f"conn {c.id}: holding the answer back {slow_s}s")
            if self._stopping.wait(slow_s):
                return False
        finish(200)
        return self._respond(c, 200, out, content_type=codec.content_type)


_UNREACHABLE = {"__type": "InternalFailure", "message": "fault proxy: upstream unreachable"}


def _record_message(code: str, stream: str) -> str:
    if code == "ProvisionedThroughputExceededException":
        return f"Rate exceeded for shard shardId-000000000000 in stream {stream} under account {ACCOUNT}."
    return "Internal service failure."


def _record_data(r: dict, codec) -> bytes:
    """A record's Data: raw bytes in CBOR, base64 text in JSON."""
    d = r["Data"]
    if codec.name == "cbor":
        if not isinstance(d, (bytes, bytearray)):
            raise TypeError("Data is not a byte string")
        return bytes(d)
    return base64.b64decode(d, validate=True)


def _check_rate(rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within [0, 1]")


def _rst_close(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# --------------------------------------------------------------------------
# CLI

_HELP = """commands (one per line on stdin):
  stats                          print the counters as JSON
  outage [SECONDS]               refuse connections (until 'recover', or for SECONDS)
  recover                        end the outage
  force KIND [SECONDS]           every PutRecords gets KIND (request fault or record code)
  unforce [KIND]                 end forced faults (all without KIND)
  next KIND [COUNT]              the next COUNT PutRecords get KIND ("ok": no fault)
  rate KIND RATE                 request fault rate (KIND in %s)
  record-rate CODE RATE          per-record failure rate (CODE in %s)
  slow SECONDS                   how long 'slow' answers are held back
  idle-close SECONDS|off [fin|rst]
  clear                          remove every fault
  quit""" % (", ".join(REQUEST_FAULTS), ", ".join(RECORD_CODES))


def _command(p: FaultProxy, line: str) -> Optional[str]:
    w = line.split()
    if not w:
        return None
    cmd, args = w[0], w[1:]
    if cmd == "stats":
        return json.dumps(p.stats(), indent=1)
    if cmd == "outage":
        p.outage(float(args[0]) if args else None)
        return "outage started"
    if cmd == "recover":
        p.end_outage()
        return "listening again"
    if cmd == "force":
        p.force(args[0], float(args[1]) if len(args) > 1 else None)
        return "ok"
    if cmd == "unforce":
        p.unforce(args[0] if args else None)
        return "ok"
    if cmd == "next":
        p.inject_next(args[0], int(args[1]) if len(args) > 1 else 1)
        return "ok"
    if cmd == "rate":
        p.set_fault_rate(args[0], float(args[1]))
        return "ok"
    if cmd == "record-rate":
        p.set_record_failure_rate(args[0], float(args[1]))
        return "ok"
    if cmd == "slow":
        p.set_slow_seconds(float(args[0]))
        return "ok"
    if cmd == "idle-close":
        p.set_idle_close(None if args[0] == "off" else float(args[0]), args[1] if len(args) > 1 else "fin")
        return "ok"
    if cmd == "clear":
        p.clear()
        return "ok"
    if cmd == "quit":
        raise SystemExit(0)
    return _HELP


def _pair(s: str):
    k, sep, v = s.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=RATE, got {s!r}")
    return k, float(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description="HTTP proxy in front of kinesis-local that injects Kinesis faults "
                    "(throttling, 5xx, slow answers, resets, outages, idle closes, permanent errors).",
        epilog=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="kinesis-local plain endpoint, http://127.0.0.1:PORT")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--record-fail", type=_pair, action="append", default=[], metavar="CODE=RATE")
    ap.add_argument("--fault", type=_pair, action="append", default=[], metavar="KIND=RATE")
    ap.add_argument("--slow-seconds", type=float, default=2.0)
    ap.add_argument("--idle-close", type=float, metavar="SECONDS")
    ap.add_argument("--idle-close-mode", choices=("fin", "rst"), default="fin")
    ap.add_argument("--permanent", action="store_true", help="answer every PutRecords 400 ResourceNotFoundException")
    ap.add_argument("--outage-after", type=float, metavar="SECONDS", help="start an outage this long after start")
    ap.add_argument("--outage-for", type=float, metavar="SECONDS", help="length of that outage (default: until 'recover')")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)

    p = FaultProxy(a.upstream, host=a.host, port=a.port, seed=a.seed, slow_seconds=a.slow_seconds,
                   log=None if a.quiet else sys.stderr)
    for code, rate in a.record_fail:
        p.set_record_failure_rate(code, rate)
    for kind, rate in a.fault:
        p.set_fault_rate(kind, rate)
    if a.idle_close is not None:
        p.set_idle_close(a.idle_close, a.idle_close_mode)
    if a.permanent:
        p.set_permanent_error(True)
    p.start()
    print(f"fault-proxy listening on {p.url} -> {a.upstream}", flush=True)
    if a.outage_after is not None:
        threading.Timer(a.outage_after, lambda: p.outage(a.outage_for)).start()

    done = threading.Event()

    def on_signal(*_):
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def read_stdin():
        for line in sys.stdin:
            try:
                out = _command(p, line)
            except SystemExit:
                done.set()
                return
            except (ValueError, IndexError) as e:
                out = f"error: {e}"
            if out:
                print(out, flush=True)

    threading.Thread(target=read_stdin, daemon=True).start()
    while not done.wait(0.2):
        pass
    p.stop()
    print(json.dumps(p.stats(), indent=1), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
