# Pinned inputs of the Lambda layer build (sourced by scripts/build-layer.sh).
#
# Every library in the layer binary is built from a Debian source package at
# exactly this version -- Debian 13 (trixie), the current stable release, for
# all but yajl (see below) -- fetched with
# `apt-get source NAME=VERSION` (signature-checked by apt against Debian's
# archive keyring). Changing a line here invalidates the dependency cache
# under build/layer-deps/ and rebuilds from scratch.
#
# If `make layer` says a version is no longer offered by the archive (Debian
# keeps only the newest version of each suite in its indexes), move the pin to
# the version it lists, rebuild, run tests/layer/run.sh and note the new
# versions in docs/layer.md.

# name=version pairs, in build order; musl is built from source for both
# architectures. yajl stays at Debian 12's security-patched 2.1.0 (the same
# upstream release as trixie's 2.1.0-5, whose .dsc this build host's mirror
# does not serve); everything else is trixie's.
KTE_LAYER_SOURCES=(
  "musl=1.2.5-3.1~deb13u1"
  "openssl=3.5.7-1~deb13u2"
  "curl=8.14.1-2+deb13u5"
  "libmicrohttpd=1.0.1-4"
  "yajl=2.1.0-3+deb12u2"
  # --- compression (KTE_COMPRESSION; issue 11) ---
  "zlib=1:1.3.dfsg+really1.3.1-1"
  "libzstd=1.5.7+dfsg-1"
  # --- end compression ---
)

# ---- PCRE2 (processing rules, issue 15; src/kte_rules.c) -------------------
# 8-bit library only, JIT compiled in (sljit supports x86_64 and arm64).
# Debian 12's 10.42-1, like yajl: trixie's pcre2 10.46-1~deb13u3 is listed in
# the trixie indexes but this build host's mirror answers 404 for its .dsc and
# .diff (checked 2026-11-29); move the pin to trixie's once it is served.
KTE_LAYER_SOURCES+=(
  "pcre2=10.42-1"
)
# ---- end PCRE2 ----------------------------------------------------------------

# ---- CBOR (KTE_PROTOCOL=cbor, issue 11; src/kte_cbor.c) ----------------------
# trixie's libcbor 0.10.2-2. This build host's mirror answers 404 for its .dsc
# and .debian.tar.xz (checked 2026-11-29) but serves the orig tarball, so
# scripts/layer/deps.sh fetches that alone (fetch_orig_only): its sha256 and
# size must be the ones trixie's signed Sources index lists for 0.10.2-2 (apt
# checked the index's signature). The library is upstream's release as Debian
# ships it, built without Debian's packaging (which only adds build rules);
# licenses/libcbor/ holds upstream's LICENSE.md and a `copyright` saying so.
# Bookworm's 0.8.0 (the dev build's) is not used: its orig tarball is not
# served. src/kte_cbor.c uses only the API common to 0.8 and 0.10.
KTE_LAYER_SOURCES+=(
  "libcbor=0.10.2-2"
)
KTE_LAYER_ORIG_ONLY=(libcbor)
# ---- end CBOR -----------------------------------------------------------------

# ---- allocator (issue 11: CPU per event; docs/bench/profile.md) ---------------
# mimalloc replaces musl's malloc in the layer binary: musl's mallocng hands
# freed memory back to the kernel at once (munmap, mremap, then page faults
# and TLB-shootdown IPIs to the other threads' CPU), which was about 40% of
# the extension's CPU per event. Debian 12's 2.0.9: trixie's 3.0.1+ds-2.1 is
# listed in the trixie indexes but this build host's mirror answers 404 for
# its orig and debian tarballs (checked 2026-11-30); move the pin once served.
# Linked as one object file (upstream's MI_BUILD_OBJECT), so its malloc,
# free, realloc... are the program's; musl keeps its own minimal allocator
# only for the few allocations it makes internally and never frees.
KTE_LAYER_SOURCES+=(
  "mimalloc=2.0.9+ds-2"
)
# ---- end allocator --------------------------------------------------------------

# Debian suites the sources come from (deb-src, main only). The build host may
# stay Debian 12: its debian-archive-keyring (2023.3+deb12u2) holds trixie's
# archive keys, so apt checks trixie's signed indexes as it does bookworm's.
KTE_LAYER_DEBIAN_MIRROR="http://deb.debian.org/debian"
KTE_LAYER_DEBIAN_SECURITY_MIRROR="http://deb.debian.org/debian-security"
KTE_LAYER_SUITES="trixie trixie-updates bookworm bookworm-updates"
KTE_LAYER_SECURITY_SUITES="trixie-security bookworm-security"

# Host (build machine) Debian packages the build needs.
KTE_LAYER_HOST_PACKAGES=(
  build-essential cmake pkg-config dpkg-dev python3 file
  autoconf automake libtool
  gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu
  # Only a Recommends of gcc-aarch64-linux-gnu, and we install without
  # recommends: without its headers musl's configure builds no musl-gcc
  # wrapper and the arm64 build fails.
  libc6-dev-arm64-cross
  debian-archive-keyring
)

# Timestamp written into the zips (and SOURCE_DATE_EPOCH for the builds):
# 1980-01-01 00:00:00, the earliest time a zip entry can carry.
KTE_LAYER_ZIP_DATE="1980-01-01T00:00:00"
KTE_LAYER_SOURCE_DATE_EPOCH=315532800
