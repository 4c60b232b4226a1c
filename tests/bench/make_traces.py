#!/usr/bin/python3
"""Writes the invocation traces of tests/bench/traces/ (lambda-sim --trace).

Deterministic (fixed seeds): run it again and the files do not change. Each
line is one invoke: idleMs (time the environment idles, frozen, before it),
durationMs (the handler's own time), lines and lineBytes (its log output).

  sparse   one invoke every 30 s ... 10 min (log-uniform), 12 invokes
  steady   5 invokes/s (200 ms apart), 150 invokes
  busy     50 invokes/s (20 ms apart), 500 invokes
  bursty   3 bursts of 200 invokes at 100/s, 2 to 5 min apart
  azure    one function shaped after Shahrad et al., "Serverless in the
           Wild", USENIX ATC 2020 (the figures used, and where each was
           checked, are in docs/flush.md): most functions are invoked
           rarely and irregularly (invocation frequencies over 8 orders of
           magnitude), and half of them run for less than a second; so
           quick repeats mixed with gaps of a minute to an hour, and
           log-normal handler times with a median under a second.
"""
import json
import math
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "traces"


def write(name, steps, comment):
    with open(OUT / f"{name}.jsonl", "w") as f:
        f.write(f"# {comment}\n")
        for s in steps:
            f.write(json.dumps(s, separators=(",", ":")) + "\n")


def sparse():
    r = random.Random(12)
    out = []
    for i in range(12):
        idle = 0 if i == 0 else int(math.exp(r.uniform(math.log(30000), math.log(600000))))
        out.append({"idleMs": idle, "durationMs": 50, "lines": 3, "lineBytes": 100})
    return out


def periodic(n, period_ms, duration_ms, lines):
    return [{"idleMs": 0 if i == 0 else period_ms - duration_ms, "durationMs": duration_ms,
             "lines": lines, "lineBytes": 100} for i in range(n)]


def bursty():
    r = random.Random(3)
    out = []
    for b in range(3):
        for i in range(200):
            idle = (r.randint(120000, 300000) if b else 0) if i == 0 else 5
            out.append({"idleMs": idle, "durationMs": 5, "lines": 2, "lineBytes": 100})
    return out


def azure():
    r = random.Random(2020)
    out = []
    for i in range(40):
        # a session of quick repeats (bursts) or a long pause: CV > 1
        if i == 0:
            idle = 0
        elif r.random() < 0.6:
            idle = int(r.expovariate(1 / 400.0))            # within a burst: ~0.4 s
        elif r.random() < 0.8:
            idle = int(r.expovariate(1 / 60000.0))          # about a minute
        else:
            idle = int(r.uniform(600000, 3600000))          # 10 min to an hour
        duration = min(3000, int(r.lognormvariate(math.log(300), 1.0)))
        out.append({"idleMs": idle, "durationMs": duration, "lines": r.choice([1, 3, 10]),
                    "lineBytes": r.choice([100, 400])})
    return out


def main():
    OUT.mkdir(exist_ok=True)
    write("sparse", sparse(), "sparse: one invoke every 30 s to 10 min (log-uniform)")
    write("steady", periodic(150, 200, 10, 3), "steady: 5 invokes/s, 10 ms handler, 3 lines of 100 B")
    write("busy", periodic(500, 20, 5, 3), "busy: 50 invokes/s, 5 ms handler, 3 lines of 100 B")
    write("bursty", bursty(), "bursty: 3 bursts of 200 invokes at 100/s, 2-5 min apart")
    write("azure", azure(), "azure: after Shahrad et al. (USENIX ATC 2020), see make_traces.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
