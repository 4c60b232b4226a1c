#!/usr/bin/env bash
# Build the Lambda layer zips (`make layer`):
#
#   build/layer-x86_64.zip, build/layer-arm64.zip
#
# each holding extensions/kinesis-telemetry-extension (mode 0755): the
# extension linked statically against musl, stripped, so it runs under every
# Lambda runtime (Amazon Linux 2 and 2023, OS-only and language runtimes);
# and, outside extensions/, kinesis-telemetry-extension/ with the project's
# LICENSE and NOTICE and the licence and copyright texts of every library in
# the binary (licenses/<package>/: debian/copyright and upstream's files).
#
# Dependencies (musl, OpenSSL, libcurl, libmicrohttpd, yajl) are built from
# the Debian source packages (Debian 13, yajl Debian 12) pinned in
# scripts/layer/versions.sh (`apt-get source NAME=VERSION`, through a private
# apt configuration with its own deb-src entries) into a cache under
# build/layer-deps/<arch>/, rebuilt only when the pins, scripts/layer/deps.sh
# or the compiler change. musl is compiled from Debian's source with Debian's
# gcc (x86_64) or gcc-aarch64-linux-gnu (arm64); its musl-gcc wrapper then
# compiles everything else.
#
# Usage: scripts/build-layer.sh [--arch x86_64|arm64]... [-j N] [--clean-deps]
#   --arch        architecture(s) to build (default: both)
#   -j N          parallel jobs per make (default: 2, or $JOBS)
#   --clean-deps  drop the dependency cache first
# Environment: KTE_LAYER_DEPS_DIR  cache location (default build/layer-deps)
#
# See docs/layer.md.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"

# shellcheck source=layer/versions.sh
. scripts/layer/versions.sh
# shellcheck source=layer/deps.sh
. scripts/layer/deps.sh

# ---- CBOR (KTE_PROTOCOL=cbor, issue 11; src/kte_cbor.c) ----------------------
# libcbor is in the dependencies (scripts/layer/versions.sh). OFF builds a
# layer binary without it: KTE_PROTOCOL then defaults to json and
# KTE_PROTOCOL=cbor is an init error saying CBOR is not built in. Kept out of
# versions.sh and deps.sh, whose text is the dependency cache's key.
KTE_LAYER_CBOR=ON
# ---- end CBOR -----------------------------------------------------------------

ARCHES=()
JOBS=${JOBS:-2}
CLEAN=0
while [ $# -gt 0 ]; do
  case $1 in
    --arch) ARCHES+=("$2"); shift 2 ;;
    --arch=*) ARCHES+=("${1#*=}"); shift ;;
    -j) JOBS=$2; shift 2 ;;
    -j*) JOBS=${1#-j}; shift ;;
    --clean-deps) CLEAN=1; shift ;;
    -h|--help) sed -n '2,/^# See docs/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ "${#ARCHES[@]}" -gt 0 ] || ARCHES=(x86_64 arm64)
for a in "${ARCHES[@]}"; do
  case $a in x86_64|arm64) ;; *) die "unknown architecture $a (x86_64 or arm64)" ;; esac
done

BUILD=$REPO/build
DEPS=${KTE_LAYER_DEPS_DIR:-$BUILD/layer-deps}
mkdir -p "$BUILD"
DEPS=$(mkdir -p "$DEPS" && cd "$DEPS" && pwd)
[ "$CLEAN" = 1 ] && rm -rf "${DEPS:?}"/*

export SOURCE_DATE_EPOCH=$KTE_LAYER_SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC
umask 022

t_start=$(date +%s)
ensure_host_packages "${KTE_LAYER_HOST_PACKAGES[@]}"
fetch_sources

EXT=kinesis-telemetry-extension

EXT_CFLAGS=""
NOTICES_DIR=$EXT  # the zip's directory (under /opt in Lambda) for the notices

# The extension for $ARCH, from this work tree, against the cached deps.
build_extension() {
  local out=$BUILD/layer-build/$ARCH
  local cm=$out/cmake stage=$out/stage
  # A fresh configure each time (a few seconds): a cache from an older
  # dependency set would keep linking libraries that are gone.
  rm -rf "$cm"
  mkdir -p "$cm"
  # -DKTE_STATIC=ON: -static and static pkg-config libraries. Size flags and
  # --gc-sections come from the command line, so CMakeLists.txt stays as is.
  run_step extension-configure env PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH= \
    cmake -S "$REPO" -B "$cm" -DCMAKE_BUILD_TYPE=MinSizeRel \
      -DCMAKE_TOOLCHAIN_FILE="$ARCH_DIR/toolchain.cmake" \
      -DKTE_STATIC=ON -DKTE_TESTS=OFF -DKTE_SANITIZE=OFF \
      -DKTE_WITH_CBOR="$KTE_LAYER_CBOR" \
      -DKTE_LIBC_VERSION="musl/$(pkg_upstream "$(pkg_version "$(pin_of musl)")")" \
      -DKTE_BUILD_SOURCES="${KTE_LAYER_SOURCES[*]}" \
      -DKTE_MALLOC_OBJECT="$PREFIX/lib/mimalloc.o" \
      -DCMAKE_C_FLAGS="$DEP_CFLAGS $EXT_CFLAGS" \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,--gc-sections -Wl,-O1 -Wl,--hash-style=gnu -Wl,--build-id=sha1"
  run_step extension-build cmake --build "$cm" --target "$EXT" -j "$JOBS"
  rm -rf "$stage"
  mkdir -p "$stage/extensions"
  "$STRIP" --strip-all -R .comment -o "$stage/extensions/$EXT" "$cm/$EXT"
  chmod 0755 "$stage/extensions/$EXT"
  check_binary "$stage/extensions/$EXT"
  write_notices "$stage/$NOTICES_DIR"
  # The binary first, then the notices in name order (mkzip.py: mode 0755 for
  # executables, 0644 for the rest).
  local entries=("$stage/extensions/$EXT=extensions/$EXT") f
  while IFS= read -r f; do
    entries+=("$stage/$f=$f")
  done < <(cd "$stage" && find "$NOTICES_DIR" -type f | LC_ALL=C sort)
  python3 "$REPO/scripts/layer/mkzip.py" "$BUILD/layer-$ARCH.zip" "${entries[@]}"
}

# The layer binary must be a static, stripped executable for $ARCH.
check_binary() {
  local bin=$1 hdr machine
  hdr=$("$READELF" -lhS "$bin")
  machine=$(sed -n 's/^ *Machine: *//p' <<<"$hdr")
  case $ARCH in
    x86_64) [[ $machine == *X86-64* ]] || die "[$ARCH] $bin is for '$machine'" ;;
    arm64) [[ $machine == *AArch64* ]] || die "[$ARCH] $bin is for '$machine'" ;;
  esac
  ! grep -q 'INTERP' <<<"$hdr" || die "[$ARCH] $bin has a program interpreter (not static)"
  ! grep -q '(DYNAMIC)\| DYNAMIC ' <<<"$hdr" || die "[$ARCH] $bin has a dynamic section"
  ! grep -q '\.symtab' <<<"$hdr" || die "[$ARCH] $bin is not stripped"
}

for ARCH in "${ARCHES[@]}"; do
  t0=$(date +%s)
  setup_toolchain "$ARCH"
  prepare_arch
  build_extension
  zip=$BUILD/layer-$ARCH.zip
  log "[$ARCH] ${zip#$REPO/}: $(stat -c %s "$zip") bytes" \
    "(binary $(stat -c %s "$BUILD/layer-build/$ARCH/stage/extensions/$EXT") bytes)," \
    "sha256 $(sha256sum "$zip" | cut -c1-16)…, $(( $(date +%s) - t0 )) s"
done
log "done in $(( $(date +%s) - t_start )) s"
