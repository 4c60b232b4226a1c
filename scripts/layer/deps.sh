# Functions for scripts/build-layer.sh: fetch the pinned Debian source
# packages and build the layer's static dependencies with musl.
# Sourced, not run. Expects: REPO, DEPS (cache root), JOBS, and the arrays
# from scripts/layer/versions.sh.

log() { echo "layer: $*"; }
die() { echo "layer: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------
# host packages

ensure_host_packages() {
  local missing=() p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update
  "${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------
# sources: a private apt configuration (deb822 deb-src entries for bookworm,
# its own lists and cache under $DEPS/apt) so the machine's apt setup is
# neither needed nor changed.

pkg_name() { echo "${1%%=*}"; }
pkg_version() { echo "${1#*=}"; }
# Upstream part of a Debian version: no epoch, no Debian revision.
pkg_upstream() { local v=${1#*:}; echo "${v%-*}"; }
# Directory dpkg-source extracts NAME=VERSION into, relative to $DEPS/src.
pkg_dir() { echo "$(pkg_name "$1")-$(pkg_upstream "$(pkg_version "$1")")"; }
# The NAME=VERSION pin of package NAME.
pin_of() {
  local s
  for s in "${KTE_LAYER_SOURCES[@]}"; do
    [ "$(pkg_name "$s")" = "$1" ] && { echo "$s"; return 0; }
  done
  die "no pin for $1 in scripts/layer/versions.sh"
}

APT_DIR=
APT_OPTS=()
setup_apt() {
  APT_DIR=$DEPS/apt
  mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  cat > "$APT_DIR/sources.list.d/kte-layer-src.sources" <<EOF
# Written by scripts/build-layer.sh: Debian 12 source packages for the layer build.
Types: deb-src
URIs: $KTE_LAYER_DEBIAN_MIRROR
Suites: $KTE_LAYER_SUITES
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $KTE_LAYER_DEBIAN_SECURITY_MIRROR
Suites: $KTE_LAYER_SECURITY_SUITES
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APT_OPTS=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
    -o "Dir::State::Lists=$APT_DIR/lists"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    -o "Debug::NoLocking=1"
  )
  # As root apt drops to the _apt user for downloads, which cannot write here.
  [ "$(id -u)" = 0 ] && APT_OPTS+=(-o "APT::Sandbox::User=root")
  return 0
}

fetch_sources() {
  mkdir -p "$DEPS/src"
  local want=() s
  for s in "${KTE_LAYER_SOURCES[@]}"; do
    [ -f "$DEPS/src/.fetched-$s" ] && [ -d "$DEPS/src/$(pkg_dir "$s")" ] || want+=("$s")
  done
  [ "${#want[@]}" -eq 0 ] && return 0
  setup_apt
  log "apt-get update (deb-src, private lists in ${APT_DIR#$REPO/})"
  apt-get -q "${APT_OPTS[@]}" update > "$APT_DIR/update.log" 2>&1 ||
    { tail -20 "$APT_DIR/update.log" >&2; die "apt-get update for the deb-src entries failed"; }
  for s in "${want[@]}"; do
    local offered
    offered=$(apt-cache "${APT_OPTS[@]}" showsrc --only-source "$(pkg_name "$s")" 2>/dev/null |
      sed -n 's/^Version: //p')
    if ! grep -Fxq -- "$(pkg_version "$s")" <<<"$offered"; then
      echo "layer: error: Debian no longer offers source package $s; it offers:" >&2
      sed 's/^/  /' <<<"$offered" >&2
      die "move the pin in scripts/layer/versions.sh to one of these"
    fi
    rm -rf "${DEPS:?}/src/$(pkg_dir "$s")"
  done
  log "apt-get source ${want[*]}"
  (cd "$DEPS/src" && apt-get -q "${APT_OPTS[@]}" source "${want[@]}") > "$DEPS/src/fetch.log" 2>&1 ||
    { tail -30 "$DEPS/src/fetch.log" >&2; die "apt-get source failed"; }
  for s in "${want[@]}"; do
    [ -d "$DEPS/src/$(pkg_dir "$s")" ] || die "apt-get source $s did not give $(pkg_dir "$s")"
    prepare_source "$s"
    touch "$DEPS/src/.fetched-$s"
  done
}

# One-time fix-ups of an extracted source tree shared by both architectures
# (each architecture then builds out of tree or in a copy).
prepare_source() {
  local s=$1 dir
  dir=$DEPS/src/$(pkg_dir "$s")
  case $(pkg_name "$s") in
    curl)
      # Debian's series ends with the patches that turn the tree into the
      # GnuTLS and NSS flavours; its rules `quilt pop` them before building
      # the OpenSSL flavour. Do the same, then regenerate the build system as
      # its rules do (./buildconf) since the patches touch configure.ac.
      log "preparing curl source (reverse 99_nss, 90_gnutls; autoreconf)"
      (cd "$dir" &&
        patch -R -p1 -s -f < debian/patches/99_nss.patch &&
        patch -R -p1 -s -f < debian/patches/90_gnutls.patch &&
        autoreconf -fi) > "$DEPS/src/prepare-curl.log" 2>&1 ||
        { tail -30 "$DEPS/src/prepare-curl.log" >&2; die "preparing the curl source failed"; }
      ;;
  esac
}

# ---------------------------------------------------------------------------
# toolchains

# Sets, for architecture $1: ARCH_DIR PREFIX HOST_TRIPLET CROSS CC AR RANLIB
# NM STRIP READELF MUSL_SYSROOT.
setup_toolchain() {
  ARCH=$1
  ARCH_DIR=$DEPS/$ARCH
  PREFIX=$ARCH_DIR/prefix
  case $ARCH in
    x86_64)
      HOST_TRIPLET=x86_64-linux-musl
      CROSS=
      MUSL_SYSROOT=/usr/lib/x86_64-linux-musl
      CC=/usr/bin/musl-gcc
      ;;
    arm64)
      HOST_TRIPLET=aarch64-linux-musl
      CROSS=aarch64-linux-gnu-
      MUSL_SYSROOT=$ARCH_DIR/musl
      CC=$MUSL_SYSROOT/bin/musl-gcc
      ;;
    *) die "unknown architecture $ARCH (x86_64 or arm64)" ;;
  esac
  AR=${CROSS}ar
  RANLIB=${CROSS}ranlib
  NM=${CROSS}nm
  STRIP=${CROSS}strip
  READELF=${CROSS}readelf
  # Size first; every function and object in its own section so that the
  # final link (--gc-sections) keeps only what the extension reaches.
  DEP_CFLAGS="-Os -pipe -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables"
  # No build paths in the binary, wherever the checkout and the cache are.
  DEP_CFLAGS+=" -fno-unwind-tables -fstack-protector-strong -ffile-prefix-map=$REPO=."
  case $DEPS/ in "$REPO"/*) ;; *) DEP_CFLAGS+=" -ffile-prefix-map=$DEPS=layer-deps" ;; esac
}

# What a cached build of $ARCH depends on; a change rebuilds the cache.
cache_key() {
  {
    cat "$REPO/scripts/layer/versions.sh" "$REPO/scripts/layer/deps.sh"
    echo "$DEP_CFLAGS" | sed "s|$REPO|REPO|g"
    if [ "$ARCH" = x86_64 ]; then
      gcc --version | head -1
      dpkg-query -W -f='${Version}\n' musl-dev
    else
      ${CROSS}gcc --version | head -1
    fi
  } | sha256sum | cut -c1-16
}

# run_step NAME CMD...: run CMD with output to $ARCH_DIR/logs/NAME.log; on
# failure show the end of the log.
run_step() {
  local name=$1; shift
  local logf=$ARCH_DIR/logs/$name.log
  mkdir -p "$ARCH_DIR/logs"
  if ! "$@" > "$logf" 2>&1; then
    echo "---- last lines of ${logf#$REPO/} ----" >&2
    tail -40 "$logf" >&2
    die "[$ARCH] $name failed (full log: ${logf#$REPO/})"
  fi
}

# dep NAME FUNC: build dependency NAME with FUNC once per cache.
dep() {
  local name=$1 fn=$2 t0
  [ -f "$ARCH_DIR/stamps/$name" ] && return 0
  t0=$(date +%s)
  run_step "$name" "$fn"
  mkdir -p "$ARCH_DIR/stamps"
  touch "$ARCH_DIR/stamps/$name"
  log "[$ARCH] $(pin_of "$name") built in $(( $(date +%s) - t0 )) s"
}

prepare_arch() {
  local key
  key=$(cache_key)
  if [ "$(cat "$ARCH_DIR/.key" 2>/dev/null)" != "$key" ]; then
    [ -d "$ARCH_DIR" ] && log "[$ARCH] pins, flags or compiler changed: rebuilding dependencies"
    rm -rf "$ARCH_DIR"
    mkdir -p "$ARCH_DIR"
    echo "$key" > "$ARCH_DIR/.key"
  fi
  write_toolchain
  if [ "$ARCH" = x86_64 ]; then
    local have want
    have=$(dpkg-query -W -f='${Version}' musl-dev 2>/dev/null || true)
    want=$(pkg_version "$(pin_of musl)")
    [ "$have" = "$want" ] ||
      log "[$ARCH] warning: Debian's musl-dev is $have, versions.sh pins musl=$want"
  fi
  dep musl build_musl
  dep mbedtls build_mbedtls
  dep curl build_curl
  dep libmicrohttpd build_libmicrohttpd
  dep yajl build_yajl
}

# ---------------------------------------------------------------------------
# the dependencies

src_of() { echo "$DEPS/src/$(pkg_dir "$(pin_of "$1")")"; }

# Environment for autoconf builds: our compiler, nothing from the host's
# pkg-config or library directories.
autoconf_env() {
  env CC="$CC" AR="$AR" RANLIB="$RANLIB" NM="$NM" STRIP="$STRIP" \
    CFLAGS="$DEP_CFLAGS" CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib" \
    PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH= \
    SOURCE_DATE_EPOCH="$KTE_LAYER_SOURCE_DATE_EPOCH" "$@"
}

build_musl() {
  if [ "$ARCH" = x86_64 ]; then
    # Debian's musl-tools: /usr/bin/musl-gcc with musl-dev's libc.a.
    [ -x "$CC" ] || die "musl-gcc missing (Debian package musl-tools)"
    return 0
  fi
  # arm64: Debian's musl source, cross-compiled with Debian's
  # aarch64-linux-gnu gcc, installed into a sysroot with its musl-gcc wrapper.
  local b=$ARCH_DIR/build/musl src
  src=$(src_of musl)
  rm -rf "$b" "$MUSL_SYSROOT"
  mkdir -p "$b"
  (cd "$b" &&
    "$src/configure" --target=aarch64-linux-gnu --prefix="$MUSL_SYSROOT" \
      --syslibdir="$MUSL_SYSROOT/lib" --disable-shared \
      CROSS_COMPILE=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc CFLAGS="-Os -pipe" &&
    make -j"$JOBS" && make install)
  [ -x "$MUSL_SYSROOT/bin/musl-gcc" ] || { echo "no musl-gcc wrapper installed"; return 1; }
}

build_mbedtls() {
  local b=$ARCH_DIR/build/mbedtls
  rm -rf "$b"
  mkdir -p "$ARCH_DIR/build"
  cp -a "$(src_of mbedtls)" "$b"
  (cd "$b" &&
    # As Debian's rules do: thread-safe contexts (the extension sends from one
    # thread while the Lambda API client runs in another).
    python3 scripts/config.py set MBEDTLS_THREADING_C &&
    python3 scripts/config.py set MBEDTLS_THREADING_PTHREAD &&
    # Not needed by an HTTPS client and only make the binary bigger/weaker.
    for opt in $MBEDTLS_UNSET; do python3 scripts/config.py unset "$opt" || exit 1; done &&
    make -C library -j"$JOBS" CC="$CC" AR="$AR" RANLIB="$RANLIB" CFLAGS="$DEP_CFLAGS" static &&
    mkdir -p "$PREFIX/include" "$PREFIX/lib" &&
    cp -R include/mbedtls include/psa "$PREFIX/include/" &&
    cp library/libmbedcrypto.a library/libmbedx509.a library/libmbedtls.a "$PREFIX/lib/")
}

# Switched off in mbedTLS: old protocol versions, DTLS, the TLS server side
# and rarely used ciphers. Kinesis endpoints speak TLS 1.2 with ECDHE and
# AES-GCM, with RSA or ECDSA certificates, all of which stay.
MBEDTLS_UNSET="MBEDTLS_SSL_PROTO_TLS1 MBEDTLS_SSL_PROTO_TLS1_1 MBEDTLS_SSL_CBC_RECORD_SPLITTING
  MBEDTLS_SSL_PROTO_DTLS
  MBEDTLS_SSL_DTLS_ANTI_REPLAY MBEDTLS_SSL_DTLS_HELLO_VERIFY
  MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE MBEDTLS_SSL_DTLS_BADMAC_LIMIT MBEDTLS_SSL_COOKIE_C
  MBEDTLS_SSL_SRV_C MBEDTLS_SSL_CACHE_C MBEDTLS_SSL_TICKET_C
  MBEDTLS_ARC4_C MBEDTLS_BLOWFISH_C MBEDTLS_CAMELLIA_C MBEDTLS_ARIA_C MBEDTLS_XTEA_C
  MBEDTLS_DES_C MBEDTLS_RIPEMD160_C MBEDTLS_NET_C MBEDTLS_TIMING_C
  MBEDTLS_PKCS12_C MBEDTLS_PKCS5_C MBEDTLS_PEM_WRITE_C
  MBEDTLS_X509_CSR_PARSE_C MBEDTLS_X509_CRT_WRITE_C MBEDTLS_X509_CSR_WRITE_C
  MBEDTLS_X509_CREATE_C MBEDTLS_SELF_TEST MBEDTLS_VERSION_FEATURES MBEDTLS_DEBUG_C
  MBEDTLS_PSA_CRYPTO_C MBEDTLS_PSA_CRYPTO_STORAGE_C MBEDTLS_PSA_ITS_FILE_C
  MBEDTLS_KEY_EXCHANGE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED
  MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED
  MBEDTLS_KEY_EXCHANGE_ECJPAKE_ENABLED MBEDTLS_ECJPAKE_C"

build_curl() {
  local b=$ARCH_DIR/build/curl
  rm -rf "$b"
  mkdir -p "$b"
  # HTTP and HTTPS (mbedTLS) only; no compression, IDN, PSL, HTTP/2, LDAP,
  # SSH, RTMP, GSSAPI; no CA bundle or path compiled in (the extension always
  # sets CURLOPT_CAINFO or CURLOPT_CAPATH itself). AWS SigV4 needs HTTP auth
  # and crypto auth, which stay.
  (cd "$b" && autoconf_env "$(src_of curl)/configure" \
      --host="$HOST_TRIPLET" --build="$(gcc -dumpmachine)" --prefix="$PREFIX" \
      --disable-shared --enable-static --disable-dependency-tracking \
      --with-mbedtls="$PREFIX" --without-openssl --without-gnutls --without-wolfssl \
      --without-bearssl --without-rustls --without-nss --without-hyper \
      --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
      --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
      --without-libssh2 --without-libssh --without-wolfssh --without-librtmp \
      --without-gssapi --without-libgsasl \
      --without-ca-bundle --without-ca-path --without-ca-fallback \
      --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps \
      --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
      --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
      --disable-websockets --disable-manual --disable-libcurl-option --disable-ntlm \
      --disable-ntlm-wb --disable-tls-srp --disable-cookies --disable-doh --disable-mime \
      --disable-netrc --disable-progress-meter --disable-alt-svc --disable-hsts \
      --disable-unix-sockets --disable-dnsshuffle --disable-get-easy-options \
      --enable-threaded-resolver --enable-ipv6 --enable-symbol-hiding &&
    make -C lib -j"$JOBS" &&
    make -C lib install && make -C include install &&
    make install-pkgconfigDATA)
}

build_libmicrohttpd() {
  local b=$ARCH_DIR/build/libmicrohttpd
  rm -rf "$b"
  mkdir -p "$b"
  # Plain HTTP on loopback for the Telemetry API; no TLS, auth or upgrades.
  (cd "$b" && autoconf_env "$(src_of libmicrohttpd)/configure" \
      --host="$HOST_TRIPLET" --build="$(gcc -dumpmachine)" --prefix="$PREFIX" \
      --disable-shared --enable-static --disable-dependency-tracking \
      --with-threads=posix --disable-https --without-gnutls --disable-doc \
      --disable-examples --disable-curl --disable-nls --disable-postprocessor \
      --disable-bauth --disable-dauth --disable-httpupgrade &&
    make -C src/microhttpd -j"$JOBS" &&
    make -C src/microhttpd install && make -C src/include install &&
    make install-pkgconfigDATA)
}

build_yajl() {
  local b=$ARCH_DIR/build/yajl
  rm -rf "$b"
  mkdir -p "$b"
  # Only the static library (the tools and tests are not needed).
  (cd "$b" &&
    cmake -S "$(src_of yajl)" -B . -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$ARCH_DIR/toolchain.cmake" \
      -DCMAKE_C_FLAGS_RELEASE="-DNDEBUG $DEP_CFLAGS" &&
    cmake --build . --target yajl_s -j"$JOBS" &&
    mkdir -p "$PREFIX/include/yajl" "$PREFIX/lib/pkgconfig" &&
    cp yajl-2.1.0/include/yajl/*.h "$PREFIX/include/yajl/" &&
    cp yajl-2.1.0/lib/libyajl_s.a "$PREFIX/lib/libyajl.a")
  # Same Cflags as Debian's yajl.pc (headers under include/yajl).
  cat > "$PREFIX/lib/pkgconfig/yajl.pc" <<EOF
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include/yajl

Name: Yet Another JSON Library
Description: A Portable JSON parsing and serialization library in ANSI C
Version: $(pkg_upstream "$(pkg_version "$(pin_of yajl)")")
Cflags: -I\${includedir}
Libs: -L\${libdir} -lyajl
EOF
}

# CMake toolchain for yajl and the extension: our musl compiler, and only
# $PREFIX and the musl sysroot to find headers and libraries in.
write_toolchain() {
  local proc=x86_64
  [ "$ARCH" = arm64 ] && proc=aarch64
  mkdir -p "$ARCH_DIR"
  cat > "$ARCH_DIR/toolchain.cmake" <<EOF
# Written by scripts/build-layer.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR $proc)
set(CMAKE_C_COMPILER "$CC")
set(CMAKE_AR "$(command -v "$AR")" CACHE FILEPATH "")
set(CMAKE_RANLIB "$(command -v "$RANLIB")" CACHE FILEPATH "")
set(CMAKE_STRIP "$(command -v "$STRIP")" CACHE FILEPATH "")
set(CMAKE_FIND_ROOT_PATH "$PREFIX" "$MUSL_SYSROOT")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
EOF
}
