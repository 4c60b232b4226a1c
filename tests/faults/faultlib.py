"""Helpers for the fault-injection tests: run the real extension under
lambda-sim with KTE_ENDPOINT at the fault proxy, watch the run, and read
back what reached kinesis-local (directly, not through the proxy).

Built on tests/integration/harness.py (imported, not modified).
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import harness

KTE = harness.EXTENSION_NAME
EXT_PREFIX = f"[{KTE}] "
FUNCTION = {"name": "kte-demo", "version": "$LATEST", "region": harness.REGION}
EMF_NAMES = (
    "EventsReceived", "EventsDelivered", "EventsDropped", "DroppedShutdownDeadline",
    "DroppedPermanentError", "DroppedBufferOverflow", "DroppedTooLarge", "DroppedOutOfMemory",
    "RecordsRetried", "EventsTruncated", "BytesReceived", "BytesDelivered", "Batches",
    "BatchesFailed", "PostsAccepted", "PostsRejected", "PostsMalformed", "PostsOversized",
    "DropReportsDelivered", "PeakRssBytes", "ProtocolFallbacks",
)
DROP_REASONS = ("DroppedShutdownDeadline", "DroppedPermanentError", "DroppedBufferOverflow",
                "DroppedTooLarge", "DroppedOutOfMemory")
# Reasons a kte.dropped record can report (shutdown drops happen after the last chance).
REPORTED_REASONS = tuple(r for r in DROP_REASONS if r != "DroppedShutdownDeadline")


def expected_line(inv: int, n: int, rid: str, line_bytes: Optional[int] = None) -> str:
    """The exact text examples/function/bootstrap prints (see its docstring)."""
    line = f"kte-line inv={inv} n={n} rid={rid} pad="
    return line + "x" * max(0, (line_bytes or 0) - len(line.encode()))


# --------------------------------------------------------------------------
# running


def start(proxy, stream: str, workdir: Path, *, invokes: int, lines: int = 10,
          line_bytes: Optional[int] = None, kte: Optional[dict] = None, idle_ms: int = 20,
          event=None, **sim_options) -> harness.SimRun:
    """Start lambda-sim with the extension (KTE_ENDPOINT = the proxy) and
    examples/function/bootstrap; --verbose, --telemetry-log in workdir."""
    env = harness.kte_env(stream, proxy.url, **{"LOG_LEVEL": "warn", **(kte or {})})
    env.update(harness.DUMMY_CREDENTIALS)
    env["AWS_REGION"] = harness.REGION
    env["LINES_PER_INVOKE"] = str(lines)
    if line_bytes is not None:
        env["LINE_BYTES"] = str(line_bytes)
    return harness.start_sim(
        extensions=[harness.EXTENSION],
        bootstrap=harness.BOOTSTRAP,
        invokes=invokes,
        idle_ms=idle_ms,
        env=env,
        event=event,
        telemetry_log=Path(workdir) / "telemetry.jsonl",
        verbose=1,
        workdir=workdir,
        **sim_options,
    )


def sim_stderr(run: harness.SimRun) -> str:
    try:
        return run.stderr_path.read_text(errors="replace")
    except OSError:
        return ""


def wait_for_output(run: harness.SimRun, needle: str, timeout: float = 120.0) -> None:
    """Wait until the sim's stderr contains needle (a hang guard, not a speed check)."""
    deadline = time.monotonic() + timeout
    while needle not in sim_stderr(run):
        if run.poll() is not None:
            raise harness.HarnessError(f"lambda-sim ended before {needle!r} appeared:\n{sim_stderr(run)[-3000:]}")
        if time.monotonic() > deadline:
            raise harness.HarnessError(f"{needle!r} not seen after {timeout:.0f}s")
        time.sleep(0.01)


def wait_for_delivery(run: harness.SimRun, text: str, timeout: float = 120.0) -> None:
    """Wait until lambda-sim has delivered (POST answered 200) a telemetry
    event containing text to the extension (from --telemetry-log)."""
    path = Path(run.workdir) / "telemetry.jsonl"
    needle = text.encode()
    deadline = time.monotonic() + timeout
    while not any(needle in e for e in harness.read_telemetry_log(path, KTE)):
        if run.poll() is not None:
            raise harness.HarnessError(f"lambda-sim ended before {text!r} was delivered")
        if time.monotonic() > deadline:
            raise harness.HarnessError(f"{text!r} not delivered after {timeout:.0f}s")
        time.sleep(0.02)


def invoke_done_marker(i: int) -> str:
    """lambda-sim -v prints this once invoke i (1-based) is complete."""
    return f"lambda-sim: invoke {i} "


def function_line_marker(inv: int, n: int) -> str:
    """The runtime's echo of line n of invoke inv (printed during the invoke)."""
    return f"[runtime] kte-line inv={inv} n={n} "


# --------------------------------------------------------------------------
# results


class Outcome:
    """A finished run: sim result, the extension's EMF metrics and log lines,
    and the records in the stream (read straight from kinesis-local)."""

    def __init__(self, res: harness.SimResult, kinesis_local, stream: str, workdir: Path):
        self.res = res
        self.summary = res.summary or {}
        self.workdir = Path(workdir)
        self.emf_all = harness.emf_lines(res.stderr)
        self.emf = self.emf_all[-1] if self.emf_all else {}
        self.ext_lines = [l[len(EXT_PREFIX):] for l in res.stderr.splitlines() if l.startswith(EXT_PREFIX)]
        # The stream's Kinesis records; with KTE_RECORD_FORMAT=kpl each is an
        # aggregate, and `records` holds its user records (the envelopes).
        self.kinesis_records = harness.Kinesis(kinesis_local.endpoint, FUNCTION["region"]).read_all(stream)
        self.records = [dict(r, data=u) for r in self.kinesis_records for u in kpl_user_records(r["data"])]
        self.envelopes = [harness.parse_envelope(r) for r in self.records]
        self.stream = stream

    def describe(self) -> str:
        return (self.res.describe() + f"\n(workdir {self.workdir})\nEMF: {json.dumps(self.emf)}\n"
                + f"records in stream: {len(self.records)}")

    def log_lines(self, level: str) -> List[str]:
        """The extension's own log lines of a level (they look like
        '[kinesis-telemetry-extension] ERROR ...' and come back prefixed by the sim)."""
        tag = f"{EXT_PREFIX}{level} "
        return [l[len(tag):] for l in self.ext_lines if l.startswith(tag)]

    def m(self, name: str) -> int:
        return self.emf[name]

    # -- stream contents
    def distinct(self) -> Dict[Tuple[str, int], dict]:
        """(environment, seq) -> envelope; duplicates must be byte-identical."""
        out: Dict[Tuple[str, int], dict] = {}
        raw: Dict[Tuple[str, int], bytes] = {}
        for rec, env in zip(self.records, self.envelopes):
            key = (env["environment"], env["seq"])
            if key in raw:
                assert raw[key] == rec["data"], f"two different records share {key}"
                continue
            raw[key] = rec["data"]
            out[key] = env
        return out

    def duplicates(self) -> int:
        return len(self.records) - len(self.distinct())

    def environments(self) -> List[str]:
        return sorted({e["environment"] for e in self.envelopes})

    def events(self) -> List[dict]:
        """Distinct envelopes that carry Lambda events (not kte.dropped), by seq."""
        return sorted((e for e in self.distinct().values() if not is_drop_report(e)), key=lambda e: e["seq"])

    def drop_reports(self) -> List[dict]:
        return sorted((e for e in self.distinct().values() if is_drop_report(e)), key=lambda e: e["seq"])

    def function_lines(self) -> List[str]:
        """The text of every distinct function event, in seq order."""
        return [e["event"]["record"] for e in self.events()
                if isinstance(e["event"], dict) and e["event"].get("type") == "function"]

    def request_ids(self) -> List[str]:
        return [inv["requestId"] for inv in self.summary.get("invokes", [])]

    def expected_lines(self, lines: int, line_bytes: Optional[int] = None) -> List[str]:
        return [expected_line(i + 1, n, rid, line_bytes)
                for i, rid in enumerate(self.request_ids()) for n in range(1, lines + 1)]


def kpl_user_records(data: bytes) -> List[bytes]:
    """The envelopes of a KPL aggregate (decoded by the example consumer's
    reader, MD5 checked), or [data] for any other record."""
    import importlib.util

    global _consumer
    if _consumer is None:
        path = Path(__file__).resolve().parents[2] / "examples" / "consumer" / "read_stream.py"
        spec = importlib.util.spec_from_file_location("read_stream", path)
        _consumer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_consumer)
    users = _consumer.kpl_user_records(data)
    return [data] if users is None else users


_consumer = None


def is_drop_report(env: dict) -> bool:
    ev = env.get("event")
    return isinstance(ev, dict) and ev.get("type") == "kte.dropped"


def finish(run: harness.SimRun, kinesis_local, stream: str, run_timeout: float = 300.0) -> Outcome:
    res = run.wait(run_timeout)
    return Outcome(res, kinesis_local, stream, run.workdir)


# --------------------------------------------------------------------------
# shared checks


def assert_emf_complete(o: Outcome) -> None:
    """Exactly one EMF line, with every documented metric, and the invariant."""
    assert len(o.emf_all) == 1, f"expected one EMF line, got {len(o.emf_all)}\n" + o.describe()
    missing = [n for n in EMF_NAMES if n not in o.emf]
    assert not missing, f"EMF lacks {missing}: {o.emf}"
    declared = [m["Name"] for m in o.emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert set(EMF_NAMES) <= set(declared), declared  # newer versions may add metrics
    assert all(isinstance(o.emf.get(n), int) for n in declared), o.emf
    assert o.m("EventsDropped") == sum(o.m(r) for r in DROP_REASONS), o.emf
    assert o.m("EventsReceived") == o.m("EventsDelivered") + o.m("EventsDropped"), o.emf


def assert_exited_cleanly(o: Outcome, invokes: int) -> None:
    s = o.summary
    assert o.res.exit_code == 0, o.describe()
    assert s.get("exitReason") == "completed", o.describe()
    assert [i["status"] for i in s["invokes"]] == ["success"] * invokes, o.describe()
    ext = s["extensions"][KTE]
    assert ext["killed"] is False and ext["exitCode"] == 0, o.describe()
    # (the runtime may be killed at shutdown on a loaded machine: not ours)
    assert KTE not in s["shutdown"]["killed"], o.describe()
    assert s["subscribers"][KTE]["dropped"] == 0, s["subscribers"][KTE]


def assert_stream_consistent(o: Outcome) -> None:
    """The stream agrees with the extension's own counters, exactly."""
    assert len(o.environments()) <= 1, o.environments()
    events, reports = o.events(), o.drop_reports()
    assert len(events) == o.m("EventsDelivered"), (len(events), o.emf)
    assert len(reports) == o.m("DropReportsDelivered"), (reports, o.emf)


def assert_every_line_once(o: Outcome, lines: int, line_bytes: Optional[int] = None) -> None:
    """Every function line the bootstrap printed is in the stream exactly once
    (after dedupe by (environment, seq)), and nothing else claims to be one."""
    want = o.expected_lines(lines, line_bytes)
    got = o.function_lines()
    counts = collections.Counter(got)
    missing = [l[:80] for l in want if counts[l] == 0]
    extra = [l[:80] for l in counts if l not in set(want)]
    twice = [l[:80] for l, c in counts.items() if c > 1]
    assert not missing and not extra and not twice, (
        f"missing {len(missing)} {missing[:5]}, unexpected {extra[:5]}, twice {twice[:5]}\n" + o.describe())
    assert len(got) == len(want)


def seq_coverage(o: Outcome) -> dict:
    """How the sequence numbers 1..max split up: events in the stream, drop
    reports in the stream, and the rest (gone)."""
    events = {e["seq"] for e in o.events()}
    reports = {e["seq"] for e in o.drop_reports()}
    top = max(events | reports | {0})
    gone = sorted(set(range(1, top + 1)) - events - reports)
    return {"events": events, "reports": reports, "gone": gone, "max": top}


# --------------------------------------------------------------------------
# scenario plumbing


@contextlib.contextmanager
def proxied_stream(kinesis_local, workdir: Path, label: str, seed: int = 1234):
    """A fresh stream and a fresh FaultProxy in front of kinesis-local."""
    from fault_proxy import FaultProxy

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    name = harness.unique_stream_name(label)
    kinesis_local.create_stream(name)
    log = open(workdir / "fault-proxy.log", "a")
    proxy = FaultProxy(kinesis_local.endpoint, seed=seed, log=log).start()
    try:
        yield proxy, name
    finally:
        proxy.stop()
        log.close()
        try:
            kinesis_local.delete_stream(name)
        except Exception:
            pass


class ProcSampler(threading.Thread):
    """Samples /proc/PID/status of the extension started by a sim run (VmHWM,
    VmRSS, RssAnon, RssFile, in bytes) every few ms until it exits."""

    FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")

    def __init__(self, run: harness.SimRun, exe=harness.EXTENSION, interval: float = 0.005):
        super().__init__(name="proc-sampler", daemon=True)
        self.run_ = run
        self.exe = exe
        self.interval = interval
        self.pid: Optional[int] = None
        self.max: Dict[str, int] = {}
        self.last: Dict[str, int] = {}
        self.marks: Dict[str, Dict[str, int]] = {}
        self._lock = threading.Lock()
        self._stop_evt = threading.Event()

    def run(self) -> None:
        while not self._stop_evt.is_set() and self.run_.poll() is None:
            if self.pid is None:
                found = harness.find_processes_by_exe(self.exe, ancestor=self.run_.pid)
                self.pid = found[0] if found else None
            if self.pid is not None:
                try:
                    with open(f"/proc/{self.pid}/status") as f:
                        text = f.read()
                except OSError:
                    text = ""
                vals = {}
                for line in text.splitlines():
                    k, _, v = line.partition(":")
                    if k in self.FIELDS:
                        vals[k] = int(v.split()[0]) * 1024
                if vals:
                    with self._lock:
                        self.last = vals
                        for k, v in vals.items():
                            self.max[k] = max(self.max.get(k, 0), v)
            time.sleep(self.interval)

    def wait_for_pid(self, timeout: float = 30.0) -> int:
        return harness.wait_for(lambda: self.pid, timeout, what="the extension's pid")

    def mark(self, label: str) -> Dict[str, int]:
        with self._lock:
            self.marks[label] = dict(self.max)
            return self.marks[label]

    def stop(self) -> None:
        self._stop_evt.set()
        self.join(timeout=5)


def normalised_failure_kinds(lines: List[str]) -> List[str]:
    """The extension's 'PutRecords ... failed: <why>; retrying' WARN lines,
    with numbers (ports, milliseconds) blanked so one kind compares equal."""
    out = []
    for l in lines:
        m = re.search(r"PutRecords to stream \S+ failed: (.*); retrying with backoff", l)
        if m:
            out.append(re.sub(r"\d+", "N", m.group(1)))
    return out
