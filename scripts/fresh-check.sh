#!/usr/bin/env bash
# The fresh-machine check (`make fresh-check`): do README's two commands work,
# as root, on a pristine Debian?
#
#  1. A minimal Debian root (debootstrap --variant=minbase) from this machine's
#     Debian mirror (the first deb URI of /etc/apt/sources.list*), built once
#     and cached under $KTE_FRESH_CACHE/<release>/minbase
#     (default /var/cache/kte-fresh-check); every run starts from a copy of it.
#  2. Apt sources as a Debian installer writes them (<release>,
#     <release>-updates, <release>-security), then only git, make and
#     ca-certificates (--no-install-recommends).
#  3. A clean clone of the committed revision (HEAD of this work tree unless
#     --repo/--ref say otherwise) in /root/kinesis-telemetry-extension: nothing
#     uncommitted, no build/, no node_modules, no ../shared.
#  4. Inside it, as root, with /proc, /sys, /dev, /dev/pts, /dev/shm mounted
#     (pivot_root into the root, see below):
#     `make demo`, then `make test` (both run even if the first fails).
#
# Mounts live in a private mount namespace (unshare --mount), so they vanish
# when the check ends, however it ends. The root becomes that namespace's /
# with pivot_root, not chroot, so that it looks like a real machine's / to
# what runs inside: a mount point (lambda-sim's `unshare --propagation
# private` needs one) whose nested mount namespaces show the same paths
# (/proc/PID/exe). /etc/hostname and /etc/hosts are written as the Debian
# installer writes them (debootstrap leaves no /etc/hosts, and lambda-sim maps
# sandbox.localdomain by bind-mounting over it).
#
# Proxies and extra CAs: a machine that reaches the mirrors and npm through a
# proxy or a TLS-inspecting gateway needs the same inside. Copied in: apt
# settings of /etc/apt/apt.conf.d that concern the network (files named
# *proxy*, and every Acquire::*Proxy, Check-Valid-Until, Check-Date setting),
# /etc/apt/auth.conf.d, the extra CA certificates of
# /usr/local/share/ca-certificates (before ca-certificates is installed, so
# they land in the system bundle), the proxy, https-proxy, noproxy, registry
# and cafile lines of the host's global npmrc, and the http_proxy,
# https_proxy, no_proxy variables (either case). Nothing else of the host.
#
# Usage: scripts/fresh-check.sh [--release bookworm|trixie] [--repo DIR]
#          [--ref REV] [--only demo|test] [--rebuild-base] [--base-only] [--keep]
#        scripts/fresh-check.sh [--release R] --rerun 'TARGET...'
# Options:
#   --release R     Debian release of the root (default bookworm = Debian 12;
#                   trixie = Debian 13)
#   --repo DIR      repository to clone (default: this one)
#   --ref REV       revision to check (default HEAD of --repo)
#   --only demo|test  run one of the two commands
#   --rebuild-base  debootstrap again instead of using the cached minbase
#   --base-only     only make sure the cached minbase exists (warm a cache)
#   --keep          keep the root afterwards (default: removed on success)
#   --rerun TARGETS diagnosis, not a fresh check: `make TARGETS` in the root a
#                   failed (or --keep) run left, e.g. the targets after the one
#                   that stopped `make test`; log rerun.log
# Environment: KTE_FRESH_CACHE  cache and root location (default /var/cache/kte-fresh-check)
#              KTE_FRESH_MIRROR Debian mirror (default: this machine's)
# Logs: build/fresh-check/<release>/ (setup.log, demo.log, test.log, result).
# Exit status: 0 when every command run passed. Needs root.
set -euo pipefail
# One brace group: bash parses it whole before running it, so editing this
# file during a (long) run cannot change what the run does.
{
REPO_SELF=$(cd "$(dirname "$0")/.." && pwd)

RELEASE=bookworm
REPO=$REPO_SELF
REF=HEAD
ONLY=
REBUILD=0
BASE_ONLY=0
RERUN=
KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --release) RELEASE=$2; shift 2 ;;
    --release=*) RELEASE=${1#*=}; shift ;;
    --repo) REPO=$2; shift 2 ;;
    --repo=*) REPO=${1#*=}; shift ;;
    --ref) REF=$2; shift 2 ;;
    --ref=*) REF=${1#*=}; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --rebuild-base) REBUILD=1; shift ;;
    --base-only) BASE_ONLY=1; shift ;;
    --keep) KEEP=1; shift ;;
    --rerun) RERUN=$2; shift 2 ;;
    -h|--help) sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "fresh-check: $(date -u +%H:%M:%S) $*"; }
die() { echo "fresh-check: error: $*" >&2; exit 2; }
case $RELEASE in bookworm|trixie) ;; *) die "--release must be bookworm or trixie" ;; esac
case $ONLY in ''|demo|test) ;; *) die "--only must be demo or test" ;; esac
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"
REPO=$(cd "$REPO" && pwd)
SHA=$(git -C "$REPO" rev-parse --verify "$REF^{commit}") || die "no commit $REF in $REPO"

CACHE=${KTE_FRESH_CACHE:-/var/cache/kte-fresh-check}/$RELEASE
BASE=$CACHE/minbase
ROOT=$CACHE/root
LOGS=$REPO_SELF/build/fresh-check/$RELEASE
SRC=/root/kinesis-telemetry-extension
mkdir -p "$CACHE" "$LOGS"
[ "$BASE_ONLY" = 1 ] || [ -n "$RERUN" ] || rm -f "$LOGS"/*.log "$LOGS/result"

# This machine's Debian mirror: the first deb URI ending in /debian.
host_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -n -e 's/^URIs: *\([^ ]*\/debian\/\{0,1\}\)\( .*\)\{0,1\}$/\1/p' \
      -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\/debian\/\{0,1\}\) .*/\2/p' "$f"
  done | head -1
}
MIRROR=${KTE_FRESH_MIRROR:-$(host_mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
MIRROR=${MIRROR%/}
SECURITY=${MIRROR%/debian}/debian-security

# apt settings of the host that concern reaching the mirror.
apt_net_conf() {
  local f
  for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    case ${f##*/} in *proxy*|*Proxy*) cat "$f"; continue ;; esac
    grep -hiE '^[[:space:]]*Acquire::([a-z]+::)*(Proxy|Check-Valid-Until|Check-Date)|^[[:space:]]*Acquire::https?::.*(CaInfo|Verify)' "$f" || true
  done
}

t_all=$(date +%s)
if [ -z "$RERUN" ]; then
# -- 1. the cached minimal root --------------------------------------------
if [ "$REBUILD" = 1 ] || [ ! -f "$BASE/.kte-minbase" ] || [ "$(cat "$BASE/.kte-minbase")" != "$RELEASE $MIRROR" ]; then
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends debootstrap >>"$LOGS/setup.log" 2>&1
  }
  say "debootstrap --variant=minbase $RELEASE from $MIRROR into $BASE (cached for later runs)"
  rm -rf "$BASE"; mkdir -p "$CACHE/debs"
  t0=$(date +%s)
  # Same network settings for debootstrap's own downloads (wget).
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
    "$RELEASE" "$BASE" "$MIRROR" >>"$LOGS/setup.log" 2>&1 \
    || { die "debootstrap failed; see $LOGS/setup.log"; }
  echo "$RELEASE $MIRROR" > "$BASE/.kte-minbase"
  say "minbase ready in $(( $(date +%s) - t0 )) s"
fi

[ "$BASE_ONLY" = 0 ] || { say "minbase $BASE ready"; exit 0; }

say "fresh root $ROOT (copy of the minbase)"
if [ -d "$ROOT" ]; then
  # A previous run's root; nothing can be mounted there (private namespace), but check.
  ! grep -q " $ROOT/" /proc/self/mounts || die "something is still mounted under $ROOT"
  rm -rf "$ROOT"
fi
cp -a "$BASE" "$ROOT"
rm -f "$ROOT/.kte-minbase"

# -- 2. what a Debian installer leaves, plus the host's network settings ----
rm -f "$ROOT/etc/apt/sources.list"
cat > "$ROOT/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $RELEASE $RELEASE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $RELEASE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
conf=$(apt_net_conf)
if [ -n "$conf" ]; then
  printf '// Copied from the host by scripts/fresh-check.sh\n%s\n' "$conf" > "$ROOT/etc/apt/apt.conf.d/90kte-host-network"
  say "host apt network settings copied: $(grep -c . <<<"$conf") lines"
fi
if compgen -G "/etc/apt/auth.conf.d/*" >/dev/null; then
  cp -a /etc/apt/auth.conf.d/. "$ROOT/etc/apt/auth.conf.d/"
fi
cas=()
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
  mapfile -t cas < <(cd /usr/local/share/ca-certificates && find . -name '*.crt' | sed 's|^\./||')
  [ "${#cas[@]}" = 0 ] || say "host extra CA certificates copied: ${cas[*]}"
fi
for rc in /etc/npmrc /usr/etc/npmrc; do
  [ -f "$rc" ] || continue
  grep -E '^[[:space:]]*(proxy|https-proxy|noproxy|registry|cafile)[[:space:]]*=' "$rc" >> "$ROOT/etc/npmrc" || true
done
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
# What the Debian installer (or a cloud image) writes and debootstrap does not.
echo "fresh-check" > "$ROOT/etc/hostname"
cat > "$ROOT/etc/hosts" <<EOF
127.0.0.1	localhost
127.0.1.1	fresh-check

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF

# -- 3. the clone ----------------------------------------------------------
mkdir -p "$ROOT/root"
git clone -q --no-local "$REPO" "$ROOT$SRC"
git -C "$ROOT$SRC" -c advice.detachedHead=false checkout -q --detach "$SHA"
say "cloned $REPO at $(git -C "$ROOT$SRC" log -1 --format='%h %s' | cut -c1-90)"
else
  [ -d "$ROOT$SRC" ] || die "--rerun: no root left by an earlier run in $ROOT"
  SHA=$(git -C "$ROOT$SRC" rev-parse HEAD)
  say "--rerun: make $RERUN in the existing root $ROOT (not a fresh check)"
fi

# -- 4. inside: mounts in a private namespace, then the commands -----------
envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive)
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  [ -z "${!v:-}" ] || envs+=("$v=${!v}")
done
RERUN_SUFFIX=
[ -z "$RERUN" ] || RERUN_SUFFIX=-rerun
cmds=(demo test)
[ -z "$ONLY" ] || cmds=("$ONLY")
[ -z "$RERUN" ] || cmds=(rerun)

# Runs in the private mount namespace (unshare below): mount, then make the
# root the namespace's / with pivot_root (not chroot), and run the step. With a
# mere chroot, processes in nested mount namespaces (lambda-sim runs the
# extension under `unshare --mount`) show /proc/PID/exe with the host path of
# the root in front, which no real machine does and which the tests' process
# lookups rightly do not expect. Output goes to the caller's redirection: the
# host's files are out of reach after the pivot.
inside() {
  set -euo pipefail
  local step=$1 cmd
  case $step in
    setup) cmd='apt-get -q update && apt-get -q install -y --no-install-recommends git make ca-certificates' ;;
    rerun) cmd="cd $SRC && make $RERUN" ;;
    *) cmd="cd $SRC && make $step" ;;
  esac
  mount --bind "$ROOT" "$ROOT"
  mount -t proc proc "$ROOT/proc"
  mount -t sysfs sysfs "$ROOT/sys"
  mount --rbind /dev "$ROOT/dev"
  # Its own /dev/pts and /dev/shm, not the host's.
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$ROOT/dev/pts"
  mount --bind "$ROOT/dev/pts/ptmx" "$ROOT/dev/ptmx"
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"
  mkdir -p "$ROOT/.kte-old-root"
  cd "$ROOT"
  pivot_root . .kte-old-root
  cd /
  umount -l /.kte-old-root
  rmdir /.kte-old-root
  exec env -i "${envs[@]}" sh -c "$cmd"
}
run_inside() { # step log
  unshare --mount --propagation private -- bash -c \
    "$(declare -p ROOT SRC RERUN envs); $(declare -f inside); inside $1" >"$2" 2>&1
}

if [ -z "$RERUN" ]; then
  say "installing git, make, ca-certificates (log: ${LOGS#$REPO_SELF/}/setup.log)"
  t0=$(date +%s)
  run_inside setup "$LOGS/setup-apt.log" || { cat "$LOGS/setup-apt.log" >>"$LOGS/setup.log"; die "apt-get in the root failed; see $LOGS/setup.log"; }
  cat "$LOGS/setup-apt.log" >>"$LOGS/setup.log"; rm -f "$LOGS/setup-apt.log"
  say "setup done in $(( $(date +%s) - t0 )) s"
fi

fail=0
summary=()
for c in "${cmds[@]}"; do
  what="make $c"; [ "$c" != rerun ] || what="make $RERUN"
  say "$what (log: ${LOGS#$REPO_SELF/}/$c.log)"
  t0=$(date +%s)
  if run_inside "$c" "$LOGS/$c.log"; then r=passed; else
    r="FAILED (exit $?)"; fail=1
    say "$what failed; the end of its log:"
    tail -n 40 "$LOGS/$c.log" | cut -c1-400 | sed 's/^/  | /'
  fi
  line="$what: $r in $(( $(date +%s) - t0 )) s"
  say "$line"
  # The runners' closing lines stay in the log: show them, and their sum.
  if [ "$c" = test ]; then python3 "$REPO_SELF/scripts/test-summary.py" "$LOGS/$c.log" || true; fi
  summary+=("$line")
done
{
  echo "release $RELEASE, mirror $MIRROR, commit $SHA"
  printf '%s\n' "${summary[@]}"
  echo "total $(( $(date +%s) - t_all )) s"
} > "$LOGS/result$RERUN_SUFFIX"
say "result ($LOGS/result$RERUN_SUFFIX):"
sed 's/^/  /' "$LOGS/result$RERUN_SUFFIX"
if [ "$fail" = 0 ] && [ "$KEEP" = 0 ] && [ -z "$RERUN" ]; then rm -rf "$ROOT"; else say "root kept in $ROOT"; fi
exit "$fail"
}
