#!/usr/bin/env bash
# make bench: measure the extension's cost inside a customer's function
# (cold start, memory, CPU per event, per-invoke overhead, shutdown drain,
# throughput) under lambda-sim against a null endpoint and kinesis-local.
#
#   bash scripts/bench.sh            the benchmarks (about 10 minutes on 2 cores);
#                                    build/bench/results.{json,md}, chart.svg, copied to docs/bench/
#   bash scripts/bench.sh cost       records, PUT units, bytes and CPU per event for each record format
#                                    and compression (build/bench/cost.{json,md}, docs/bench/cost.md)
#   bash scripts/bench.sh fleet      20 environments against a 2-shard stream's per-shard limits
#                                    (build/bench/fleet.{json,md}, docs/bench/fleet.md)
#   bash scripts/bench.sh profile    callgrind profile of a 100k-event run (build/bench/profile/);
#                                    KTE_PROFILE_RULES=1: instructions per event the processing rules
#                                    add, on the rules-sim lines (tests/bench/bench_profile.py)
#   bash scripts/bench.sh rules      CPU per event of the processing rules (issue 15), glibc -O2
#                                    and, once `make layer` ran, the layer's musl -Os toolchain
#   bash scripts/bench.sh rules-sim  CPU the processing rules add in the layer and dev binaries under
#                                    lambda-sim against kinesis-local (build/bench/rules-sim.{json,md},
#                                    docs/bench/rules-sim.md); also part of the main run
#   bash scripts/bench.sh micro      base64 and SHA-256 micro-benchmarks behind docs/bench/profile.md
#   bash scripts/bench.sh chart [F]  redraw the chart from a results.json
#   bash scripts/bench.sh flush      flush strategies on invocation traces only (docs/flush.md)
#
# Environment: KTE_BENCH_REPS (default 3), KTE_BENCH_QUICK=1, KTE_BENCH_LAYER=0,
# KTE_BENCH_KINESIS_LOCAL=0, KTE_BENCH_PUBLISH=0, KTE_BENCH_OUT (see tests/bench/bench_run.py).
# Timing never makes it fail; it exits non-zero only when a run failed functionally.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=/usr/bin/python3

need_pkg() { # install the Debian packages that are missing (idempotent); 1 if it cannot
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: ${missing[*]} missing and not root: apt-get install -y --no-install-recommends ${missing[*]}" >&2
        return 1
    fi
    echo "bench: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

need_gnuplot() { # any gnuplot will do; else Debian's gnuplot-nox
    command -v gnuplot >/dev/null 2>&1 || need_pkg gnuplot-nox ||
        echo "bench: no gnuplot, the chart will not be drawn" >&2
}

if [ ! -x build/kinesis-telemetry-extension ]; then
    make -s build
fi

# The processing rules' cost per event (tests/bench/bench_rules.c): the rule
# engine as the host build compiles it and as the layer does (musl, -Os, the
# layer's static PCRE2 with JIT and yajl), when build/layer-deps has them.
bench_rules() {
    local srcs=(tests/bench/bench_rules.c src/kte_rules.c src/kte_event.c src/kte_buf.c)
    mkdir -p build/bench
    cc -O2 -D_DEFAULT_SOURCE -Isrc -o build/bench/bench_rules "${srcs[@]}" \
        $(pkg-config --cflags --libs libpcre2-8 yajl) -lm
    echo "== host build (glibc, -O2)"
    build/bench/bench_rules
    local arch pfx
    arch=$(uname -m); [ "$arch" = aarch64 ] && arch=arm64
    pfx=build/layer-deps/$arch
    if [ -x "$pfx/musl/bin/musl-gcc" ] && [ -f "$pfx/prefix/lib/libpcre2-8.a" ]; then
        "$pfx/musl/bin/musl-gcc" -Os -static -D_DEFAULT_SOURCE -Isrc -I"$pfx/prefix/include" \
            -o build/bench/bench_rules_layer "${srcs[@]}" -L"$pfx/prefix/lib" -lpcre2-8 -lyajl -lm
        echo "== layer build (musl, -Os, static PCRE2 with JIT)"
        build/bench/bench_rules_layer
    else
        echo "== layer build: run \`make layer\` first (no $pfx/prefix/lib/libpcre2-8.a)"
    fi
}

case "${1:-run}" in
rules)
    bench_rules
    ;;
run)
    need_gnuplot
    rc=0
    mkdir -p build/bench && bench_rules | tee build/bench/rules.txt
    "$PYTHON" tests/bench/bench_run.py || rc=$?
    "$PYTHON" tests/bench/bench_flush.py || rc=$?
    "$PYTHON" tests/bench/bench_cost.py || rc=1
    "$PYTHON" tests/bench/bench_fleet.py || rc=1
    exit $rc
    ;;
flush)
    need_gnuplot
    exec "$PYTHON" tests/bench/bench_flush.py
    ;;
rules-sim)
    exec "$PYTHON" tests/bench/bench_rules_sim.py
    ;;
cost)
    exec "$PYTHON" tests/bench/bench_cost.py
    ;;
fleet)
    exec "$PYTHON" tests/bench/bench_fleet.py
    ;;
profile)
    need_pkg valgrind || exit 1
    exec "$PYTHON" tests/bench/bench_profile.py
    ;;
micro)
    need_pkg gcc libc6-dev libmbedtls-dev libssl-dev || exit 1
    mkdir -p build/bench
    cc -O2 -Wall -o build/bench/bench_micro tests/bench/bench_micro.c -lmbedcrypto -lcrypto
    exec build/bench/bench_micro
    ;;
chart)
    need_gnuplot
    exec "$PYTHON" tests/bench/bench_chart.py "${2:-build/bench/results.json}"
    ;;
*)
    echo "usage: scripts/bench.sh [run|rules|rules-sim|cost|fleet|flush|profile|micro|chart [results.json]]" >&2
    exit 2
    ;;
esac
