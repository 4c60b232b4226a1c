#!/usr/bin/env bash
# make demo: run the extension for real, locally, and show what reached Kinesis.
#
#  1. scripts/install-deps.sh (quick when everything is there)
#  2. kinesis-local on free 127.0.0.1 ports, stream kte-demo
#  3. tools/lambda-sim: build/kinesis-telemetry-extension + examples/function/bootstrap, 3 invokes
#  4. every record of the stream, one line each (time, type, request id, the
#     log line or the platform metrics; scripts/demo_view.py), a count line,
#     and the extension's delivered/dropped counters from its metrics (EMF) line
# Everything started here is stopped on exit. DEMO_INVOKES overrides 3;
# DEMO_RAW=1 prints the records as the raw JSON envelopes instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
CLI=tests/integration/kinesis_cli.py
EXT=build/kinesis-telemetry-extension
SIM=tools/lambda-sim/lambda-sim
STREAM=kte-demo
INVOKES=${DEMO_INVOKES:-3}

say() { echo "demo: $*" >&2; }

bash scripts/install-deps.sh -q
for f in "$EXT" "$SIM"; do
  [ -x "$f" ] || { say "$f is missing: run 'make build' (and see README)"; exit 1; }
done

work=$(mktemp -d -t kte-demo.XXXXXX)
kl_pid=
cleanup() {
  rc=$?
  if [ -n "$kl_pid" ] && kill -0 "$kl_pid" 2>/dev/null; then
    kill -TERM "$kl_pid" 2>/dev/null || true
    wait "$kl_pid" 2>/dev/null || true
  fi
  if [ "$rc" = 0 ]; then rm -rf "$work"; else say "logs kept in $work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting kinesis-local"
"$PY" "$CLI" serve --state-dir "$work" >/dev/null &
kl_pid=$!
for _ in $(seq 1 900); do
  [ -s "$work/endpoint" ] && break
  kill -0 "$kl_pid" 2>/dev/null || { say "kinesis-local did not start; log: $work/kinesis-local.log"; exit 1; }
  sleep 0.1
done
[ -s "$work/endpoint" ] || { say "kinesis-local did not answer in 90 s"; exit 1; }
endpoint=$(cat "$work/endpoint")
say "kinesis-local at $endpoint"

"$PY" "$CLI" create-stream --endpoint "$endpoint" "$STREAM" >/dev/null
say "stream $STREAM is ACTIVE"

port=$("$PY" "$CLI" free-port)
say "running lambda-sim: $INVOKES invokes"
set +e
env -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY \
  "$SIM" --extension "$EXT" --bootstrap examples/function/bootstrap --invokes "$INVOKES" \
  --env KTE_STREAM_NAME="$STREAM" --env KTE_ENDPOINT="$endpoint" \
  --env KTE_LISTENER_HOST=127.0.0.1 --env KTE_LISTENER_PORT="$port" \
  --env KTE_BUFFER_TIMEOUT_MS=25 --summary "$work/summary.json" --verbose 2>"$work/lambda-sim.log"
sim_rc=$?
set -e
# --verbose echoes every process's output (the extension's metrics line too)
# into the log; the sandbox's own warnings are worth seeing here.
grep '^lambda-sim: warning:' "$work/lambda-sim.log" >&2 || true
say "lambda-sim exited with $sim_rc"
[ "$sim_rc" = 0 ] || tail -n 20 "$work/lambda-sim.log" >&2

say "records in stream $STREAM:"
raw=()
[ "${DEMO_RAW:-0}" = 0 ] || raw=(--raw)
"$PY" scripts/demo_view.py --endpoint "$endpoint" --stream "$STREAM" --sim-log "$work/lambda-sim.log" "${raw[@]}" \
  || { [ "$sim_rc" != 0 ] || sim_rc=1; }
exit "$sim_rc"
