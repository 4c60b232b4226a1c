#!/usr/bin/python3
"""What `make demo` shows (scripts/demo.sh): the records read back from the
stream, then the extension's own counters.

  demo_view.py --endpoint URL --stream NAME [--sim-log FILE] [--raw]

Default: one line per record, aligned -- time (UTC), event type, request id
(first 8 characters), then the log line of `function`/`extension` events or
the metrics and status of `platform` events. --raw (DEMO_RAW=1): every record
as the JSON envelope it is, one per line. Then the count line, and the
delivered/dropped counters of the extension's shutdown metrics line (EMF),
taken from lambda-sim's --verbose output (--sim-log).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
import harness  # noqa: E402
import kinesis_cli  # noqa: E402

DETAIL_WIDTH = 100
# Platform metrics worth a glance, in this order, with a short label.
METRICS = (("durationMs", "duration", "ms"), ("billedDurationMs", "billed", "ms"),
           ("initDurationMs", "init", "ms"), ("producedBytes", "produced", "B"))


def fmt_number(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def platform_detail(rec):
    """status, then the metrics a person looks at, then whatever identifies the event."""
    if not isinstance(rec, dict):
        return json.dumps(rec)
    parts = []
    if "status" in rec:
        parts.append(str(rec["status"]) + (f" ({rec['errorType']})" if rec.get("errorType") else ""))
    metrics = rec.get("metrics") if isinstance(rec.get("metrics"), dict) else {}
    shown = set()
    for key, label, unit in METRICS:
        if key in metrics:
            parts.append(f"{label} {fmt_number(metrics[key])} {unit}")
            shown.add(key)
    if "maxMemoryUsedMB" in metrics:
        size = f" of {metrics['memorySizeMB']}" if "memorySizeMB" in metrics else ""
        parts.append(f"memory {metrics['maxMemoryUsedMB']}{size} MB")
        shown |= {"maxMemoryUsedMB", "memorySizeMB"}
    parts += [f"{k} {fmt_number(v)}" for k, v in metrics.items() if k not in shown]
    for key in ("initializationType", "phase", "name", "state", "version", "types", "events"):
        if key in rec:
            v = rec[key]
            parts.append(f"{key} {','.join(map(str, v)) if isinstance(v, list) else v}")
    return ", ".join(parts) if parts else json.dumps(rec, separators=(",", ":"))


def line_of(data, current):
    """(time, type, request id, detail) of one record of the stream. Log lines
    in text format carry no request id: they get the one of the invoke in
    progress (current["rid"], between its platform.start and runtimeDone;
    right for invokes one at a time, as in the demo)."""
    try:
        env = json.loads(data)
    except ValueError:
        return "-", "(not JSON)", "-", data[:DETAIL_WIDTH].decode("utf-8", "replace")
    ev = env.get("event") if isinstance(env, dict) else None
    if not isinstance(ev, dict):  # truncated events keep a prefix of the original as a string
        trunc = env.get("truncated", {}) if isinstance(env, dict) else {}
        return "-", "(truncated)", "-", f"{trunc.get('originalBytes', '?')} bytes: {str(ev)[:60]}"
    t = str(ev.get("time", "-"))
    t = t[11:23] if len(t) >= 23 and t[10] == "T" else t
    etype = str(ev.get("type", "?"))
    rec = ev.get("record")
    rid = rec.get("requestId") if isinstance(rec, dict) else None
    if etype == "platform.start":
        current["rid"] = rid
    elif etype == "platform.runtimeDone" and rid == current.get("rid"):
        current["rid"] = None
    if etype.startswith("platform."):
        detail = platform_detail(rec)
    elif isinstance(rec, dict):  # JSON log format: the message is what a person reads
        rid = rid or rec.get("requestId") or current.get("rid")
        detail = str(rec.get("message", json.dumps(rec)))
    else:
        rid = current.get("rid")
        detail = str(rec)
    detail = detail.rstrip()
    if len(detail) > DETAIL_WIDTH:
        detail = detail[: DETAIL_WIDTH - 1] + "…"
    return t, etype, (rid or "-")[:8], detail


def print_table(records):
    current = {}
    rows = [line_of(r["data"], current) for r in records]
    header = ("TIME (UTC)", "TYPE", "REQUEST", "MESSAGE / METRICS")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(3)]
    for row in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[3])


def print_emf(sim_log):
    """The extension's counters at shutdown, from its EMF line."""
    try:
        text = Path(sim_log).read_text(errors="replace")
    except OSError as e:
        print(f"extension counters: no lambda-sim log ({e})")
        return 1
    emf = harness.emf_lines(text)
    if len(emf) != 1:
        print(f"extension counters: expected one metrics (EMF) line from the extension, found {len(emf)}")
        return 1
    m = emf[0]
    dropped = {k[len("Dropped"):]: v for k, v in m.items() if k.startswith("Dropped") and v}
    why = " (" + ", ".join(f"{n} {k}" for k, n in dropped.items()) + ")" if dropped else ""
    print(f"extension counters: {m.get('EventsReceived')} received, {m.get('EventsDelivered')} delivered, "
          f"{m.get('EventsDropped')} dropped{why}; {m.get('Batches')} PutRecords, "
          f"{m.get('RecordsRetried')} records retried")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="demo_view.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--region", default=harness.REGION)
    p.add_argument("--stream", required=True)
    p.add_argument("--sim-log")
    p.add_argument("--raw", action="store_true")
    args = p.parse_args(argv)
    records = harness.Kinesis(args.endpoint, args.region).read_all(args.stream)
    if args.raw:
        for r in records:
            print(r["data"].decode("utf-8", "replace"))
    else:
        print_table(records)
    print(kinesis_cli.count_line(records, args.stream))
    return print_emf(args.sim_log) if args.sim_log else 0


if __name__ == "__main__":
    sys.exit(main())
