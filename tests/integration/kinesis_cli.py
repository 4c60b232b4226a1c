#!/usr/bin/python3
"""Small command line over harness.py, for scripts/demo.sh and people.

  kinesis_cli.py serve [--state-dir DIR] [--log FILE] [--plain-port N] [--tls-port N]
      Start kinesis-local on 127.0.0.1 (free ports unless given), print its
      endpoint, write it to DIR/endpoint, and keep it running until SIGTERM
      or SIGINT (then stop it and exit 0).
  kinesis_cli.py create-stream --endpoint URL NAME [--shards N]
  kinesis_cli.py read --endpoint URL NAME
      Every record of the stream (all shards, from TRIM_HORIZON), decoded,
      one per line, then a count line.
  kinesis_cli.py free-port
"""

import argparse
import collections
import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def cmd_serve(args):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state = Path(args.state_dir) if args.state_dir else None
    log = args.log or (state / "kinesis-local.log" if state else None)
    kl = harness.KinesisLocal(log_path=log, plain_port=args.plain_port, tls_port=args.tls_port)
    try:
        kl.start()
    except harness.HarnessError as e:
        print(f"kinesis-local: {e}", file=sys.stderr)
        return 1
    try:
        if state:
            state.mkdir(parents=True, exist_ok=True)
            tmp = state / "endpoint.tmp"
            tmp.write_text(kl.endpoint + "\n")
            os.replace(tmp, state / "endpoint")
        print(f"kinesis-local: endpoint {kl.endpoint} (log {kl.log_path})", flush=True)
        while not stop.is_set():
            if kl.proc.poll() is not None:
                print(f"kinesis-local exited with {kl.proc.returncode}; log {kl.log_path}", file=sys.stderr)
                return 1
            stop.wait(0.5)
        return 0
    finally:
        kl.stop()


def cmd_create_stream(args):
    arn = harness.Kinesis(args.endpoint, args.region).create_stream(args.name, args.shards)
    print(arn)
    return 0


def describe(data):
    """A one-line summary of an extension record: seq and event type."""
    try:
        env = json.loads(data)
        ev = env["event"]
        etype = ev["type"] if isinstance(ev, dict) else "truncated"
        return env.get("seq"), etype
    except (ValueError, KeyError, TypeError):
        return None, "other"


def count_line(records, stream):
    """'23 records in stream NAME (9 function, 14 platform)'."""
    kinds = collections.Counter(describe(r["data"])[1].split(".")[0] for r in records)
    detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"{len(records)} records in stream {stream}" + (f" ({detail})" if detail else "")


def cmd_read(args):
    records = harness.Kinesis(args.endpoint, args.region).read_all(args.name)
    for r in records:
        print(r["data"].decode("utf-8", "replace"))
    print(count_line(records, args.name))
    return 0


def cmd_free_port(args):
    print(harness.free_port())
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="kinesis_cli.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--state-dir")
    s.add_argument("--log")
    s.add_argument("--plain-port", type=int)
    s.add_argument("--tls-port", type=int)
    s.set_defaults(fn=cmd_serve)
    for name, fn in (("create-stream", cmd_create_stream), ("read", cmd_read)):
        s = sub.add_parser(name)
        s.add_argument("--endpoint", required=True)
        s.add_argument("--region", default=harness.REGION)
        s.add_argument("name")
        if name == "create-stream":
            s.add_argument("--shards", type=int, default=1)
        s.set_defaults(fn=fn)
    s = sub.add_parser("free-port")
    s.set_defaults(fn=cmd_free_port)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
