#!/usr/bin/python3
"""lambda-sim, unchanged, except that its API server sets TCP_NODELAY on the
connections it accepts. Same arguments as tools/lambda-sim/lambda-sim.

Why: lambda-sim's server (http.server) writes each answer in two send()s, the
headers and then the body. Without TCP_NODELAY, Nagle's algorithm holds the
body until the headers are acknowledged, and the client (the extension's
libcurl) delays that acknowledgement by up to 40 ms on a kept-alive
connection. Every Extensions API answer after the first one on a connection -
the subscribe answer during init, every INVOKE handed out by /event/next -
then arrives ~40 ms late. Lambda's own API server does not do that (Go sets
TCP_NODELAY on every connection), so the benchmarks use this wrapper; they
also run one scenario under the stock sandbox to show the difference.
"""

import importlib.machinery
import importlib.util
import sys
from pathlib import Path

SIM = Path(__file__).resolve().parents[2] / "tools" / "lambda-sim" / "lambda-sim"


def load_sim():
    loader = importlib.machinery.SourceFileLoader("lambda_sim", str(SIM))
    spec = importlib.util.spec_from_loader("lambda_sim", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


if __name__ == "__main__":
    sim = load_sim()
    # socketserver.StreamRequestHandler.setup() sets TCP_NODELAY when this is true
    sim.Handler.disable_nagle_algorithm = True
    sim.main(sys.argv[1:])
