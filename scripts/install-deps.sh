#!/usr/bin/env bash
# Install what this project needs on a Debian 12 machine; idempotent and quick
# when everything is already there (used by .ci/run, `make deps`, scripts/demo.sh).
#
#  1. Debian packages: checked with dpkg-query; `apt-get update` and
#     `apt-get install -y --no-install-recommends` run only for missing ones.
#     nodejs/npm are skipped when `node` and `npm` are already on PATH.
#  2. tools/kinesis-local: `npm ci` when node_modules is missing or stale
#     (package-lock.json changed since the last install).
#  3. A Node.js that AWS CDK supports, for infra/: the one on PATH if new
#     enough, else tools/node's pinned build (scripts/cdk-node.sh).
#
# Options: -q  print nothing when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

quiet=0
[ "${1:-}" = "-q" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "install-deps: $*"; }

packages=(
  build-essential cmake pkg-config clang-format libtsan2
  libcurl4-openssl-dev libmicrohttpd-dev libyajl-dev libssl-dev libcmocka-dev libpcre2-dev
  libcbor-dev python3-cbor2  # KTE_PROTOCOL=cbor (issue 11): the encoder/decoder and the fault proxy
  zlib1g-dev libzstd-dev zstd python3-zstandard
  python3 python3-pytest python3-botocore awscli
  util-linux ca-certificates
  clang libclang-rt-dev  # libFuzzer, ASan, UBSan (make fuzz, make test-fuzz): the release's default LLVM (14 on Debian 12, 19 on 13)
)
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  say "node $(node --version) and npm $(npm --version 2>/dev/null) already on PATH"
else
  packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root (or sudo) for apt-get" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages: all present"
fi

# kinesis-local (the local Kinesis for tests and the demo), pinned by its lockfile.
kl=tools/kinesis-local
stamp=$kl/node_modules/.kte-lock.sha256
want=$(sha256sum "$kl/package-lock.json" | cut -d' ' -f1)
if [ -f "$kl/node_modules/kinesis-local/main.js" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  say "kinesis-local: up to date ($(sed -n 's/.*"version" *: *"\([^"]*\)".*/\1/p' "$kl/node_modules/kinesis-local/package.json" | head -1))"
else
  echo "install-deps: npm ci in $kl"
  (cd "$kl" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$want" > "$stamp"
fi

# aws-kinesis-agg (AWS's KPL deaggregator, for the kpl format's tests), pinned by its lockfile.
dg=tests/deagg
dstamp=$dg/node_modules/.kte-lock.sha256
dwant=$(sha256sum "$dg/package-lock.json" | cut -d' ' -f1)
if [ -f "$dg/node_modules/aws-kinesis-agg/index.js" ] && [ -f "$dstamp" ] && [ "$(cat "$dstamp")" = "$dwant" ]; then
  say "aws-kinesis-agg: up to date"
else
  echo "install-deps: npm ci in $dg"
  (cd "$dg" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$dwant" > "$dstamp"
fi

# The Node for infra/ (the CDK app): Debian 12's and 13's are older than AWS CDK supports.
bash scripts/cdk-node.sh install $([ "$quiet" = 1 ] && echo -q)
