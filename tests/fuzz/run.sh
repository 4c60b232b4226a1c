#!/usr/bin/env bash
# Runs the libFuzzer harnesses one after the other (never in parallel: the
# machine is shared), each for SECONDS seconds or RUNS executions, whichever
# comes first, and prints the executions per harness. Exits non-zero on the
# first finding (crash, leak, sanitizer report, failed invariant, hang).
#
#   run.sh -b BUILD_DIR -t SECONDS [-r RUNS] [-w WORK_DIR] [harness ...]
#
# Each harness starts from its committed seeds (tests/fuzz/corpus/<h>) and
# regression inputs (tests/fuzz/regressions/<h>) and saves what it finds new
# in WORK_DIR/corpus/<h>, so a later run goes on from there. A finding is
# saved as WORK_DIR/artifacts/<h>/crash-* (or leak-*, timeout-*): once the
# code is fixed, commit it to tests/fuzz/regressions/<h>/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

build=build/fuzz seconds=60 runs=-1 work=
while getopts b:t:r:w: o; do
  case $o in
    b) build=$OPTARG ;;
    t) seconds=$OPTARG ;;
    r) runs=$OPTARG ;;
    w) work=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
work=${work:-$build}
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(event record put_response put_error put_cbor event_next lambda_header config listener creds rules)
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary=()
for h in "${harnesses[@]}"; do
  bin=$build/fuzz_$h
  [ -x "$bin" ] || { echo "fuzz: no harness $bin (make fuzz-build)" >&2; exit 2; }
  mkdir -p "$work/corpus/$h" "$work/artifacts/$h"
  seeds=("$here/corpus/$h")
  [ -d "$here/regressions/$h" ] && seeds+=("$here/regressions/$h")
  dict=()
  [ -f "$here/dict/$h.dict" ] && dict=(-dict="$here/dict/$h.dict")
  log=$work/fuzz_$h.log
  echo "fuzz: $h for ${seconds}s$([ "$runs" != -1 ] && echo " or $runs runs") (log: $log)"
  rc=0
  "$bin" -max_total_time="$seconds" -runs="$runs" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/$h/" "${dict[@]}" "$work/corpus/$h" "${seeds[@]}" \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" = 72 ]; then # libFuzzer's exit code when interrupted (SIGINT)
    echo "fuzz: $h interrupted after ${execs:-?} executions (${rate:-?} exec/s)" >&2
    exit 130
  fi
  if [ "$rc" != 0 ]; then
    tail -n 40 "$log" >&2
    echo "fuzz: FINDING in $h (exit $rc); input saved in $work/artifacts/$h/" >&2
    echo "fuzz: ${#summary[@]} passed, 1 failed"
    exit 1
  fi
  summary+=("$(printf '%-14s %12s executions %8s exec/s' "$h" "${execs:-?}" "${rate:-?}")")
done
printf 'fuzz: %s\n' "${summary[@]}"
echo "fuzz: ${#summary[@]} passed, 0 failed"
