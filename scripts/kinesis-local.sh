#!/usr/bin/env bash
# Run kinesis-local (tools/kinesis-local, kinesis-mock 0.6.2) in the
# foreground on 127.0.0.1 for manual experiments; Ctrl-C stops it.
#   scripts/kinesis-local.sh [--plain-port N] [--tls-port N] [--state-dir DIR] [--log FILE]
# Free ports are picked unless given; the endpoint is printed, e.g.
#   aws --endpoint-url http://127.0.0.1:PORT --region us-east-1 kinesis list-streams
# (any dummy credentials work: AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=x).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f tools/kinesis-local/node_modules/kinesis-local/main.js ] || bash scripts/install-deps.sh -q
exec /usr/bin/python3 tests/integration/kinesis_cli.py serve "$@"
