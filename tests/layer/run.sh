#!/usr/bin/env bash
# The Lambda layer tests: build both layer zips (scripts/build-layer.sh, with
# its dependency cache under build/layer-deps/), then run tests/layer with
# Debian's python3 and pytest. Needs root (chroot, mknod).
#
# Usage: bash tests/layer/run.sh [pytest arguments]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
cd "$REPO"

. scripts/layer/versions.sh
. scripts/layer/deps.sh
# What the tests themselves use: qemu-user for arm64, openssl for the test
# CA, file/readelf for the ELF checks; node and kinesis-local come from
# scripts/install-deps.sh.
ensure_host_packages qemu-user-static openssl file binutils binutils-aarch64-linux-gnu \
  coreutils util-linux python3 python3-pytest python3-botocore
bash scripts/install-deps.sh -q

JOBS=${JOBS:-2} bash scripts/build-layer.sh
# Own temporary directory (chroots with device nodes; emptied on every run),
# away from /tmp/pytest-of-* that other test runs rotate.
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider --basetemp="$REPO/build/layer-test-tmp" \
  tests/layer "$@"
