"""scripts/demo_view.py, what `make demo` prints: one aligned line per record
and the extension's counters from its EMF line (pure functions, no services)."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("demo_view", REPO / "scripts" / "demo_view.py")
demo_view = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo_view)

RID = "c8a6c879-2431-4781-8780-adf067d1f1ce"


def envelope(etype, record, time="2026-11-29T20:15:16.086Z"):
    return json.dumps({"kte": 1, "seq": 1, "event": {"time": time, "type": etype, "record": record}}).encode()


def test_lines_show_time_type_request_and_message_or_metrics():
    cur = {}
    start = demo_view.line_of(envelope("platform.start", {"requestId": RID, "version": "$LATEST"}), cur)
    assert start == ("20:15:16.086", "platform.start", "c8a6c879", "version $LATEST")
    # A text log line has no request id: it gets the invoke's in progress.
    assert demo_view.line_of(envelope("function", "hello\n"), cur) == ("20:15:16.086", "function", "c8a6c879", "hello")
    done = demo_view.line_of(envelope("platform.runtimeDone", {"requestId": RID, "status": "success",
                                                                "metrics": {"durationMs": 1.5, "producedBytes": 21}}), cur)
    assert done[3] == "success, duration 1.5 ms, produced 21 B"
    assert demo_view.line_of(envelope("function", "late"), cur)[2] == "-"
    report = demo_view.line_of(envelope("platform.report", {
        "requestId": RID, "status": "timeout", "errorType": "Sandbox.Timedout",
        "metrics": {"durationMs": 3000.0, "billedDurationMs": 3000, "memorySizeMB": 128, "maxMemoryUsedMB": 30}}), cur)
    assert report[3] == "timeout (Sandbox.Timedout), duration 3000 ms, billed 3000 ms, memory 30 of 128 MB"
    msg = demo_view.line_of(envelope("function", {"requestId": RID, "level": "INFO", "message": "json line"}), {})
    assert msg[2:] == ("c8a6c879", "json line")


def test_odd_records_still_get_one_line():
    assert demo_view.line_of(b"not json", {})[1] == "(not JSON)"
    trunc = json.dumps({"kte": 1, "event": '{"time":"x", "type":"function"', "truncated": {"originalBytes": 5000}})
    assert demo_view.line_of(trunc.encode(), {})[1:3] == ("(truncated)", "-")
    long = demo_view.line_of(envelope("extension", "x" * 500), {})[3]
    assert len(long) == demo_view.DETAIL_WIDTH and long.endswith("…")


def test_counters_from_the_emf_line(tmp_path, capsys):
    emf = {"_aws": {}, "FunctionName": "f", "EventsReceived": 25, "EventsDelivered": 23, "EventsDropped": 2,
           "DroppedBufferOverflow": 2, "DroppedTooLarge": 0, "Batches": 4, "RecordsRetried": 1}
    log = tmp_path / "sim.log"
    log.write_text("lambda-sim: started\n[kinesis-telemetry-extension] " + json.dumps(emf) + "\n")
    assert demo_view.print_emf(log) == 0
    assert capsys.readouterr().out == ("extension counters: 25 received, 23 delivered, 2 dropped (2 BufferOverflow); "
                                       "4 PutRecords, 1 records retried\n")
    log.write_text("no metrics line\n")
    assert demo_view.print_emf(log) == 1
    assert "found 0" in capsys.readouterr().out
