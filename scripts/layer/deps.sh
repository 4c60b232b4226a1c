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
# sources: a private apt configuration (deb822 deb-src entries for trixie,
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
# Written by scripts/build-layer.sh: Debian source packages for the layer build.
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
  local by_apt=()
  for s in "${want[@]}"; do
    if orig_only "$(pkg_name "$s")"; then fetch_orig_only "$s"; else by_apt+=("$s"); fi
  done
  if [ "${#by_apt[@]}" -gt 0 ]; then
    log "apt-get source ${by_apt[*]}"
    (cd "$DEPS/src" && apt-get -q "${APT_OPTS[@]}" source "${by_apt[@]}") > "$DEPS/src/fetch.log" 2>&1 ||
      { tail -30 "$DEPS/src/fetch.log" >&2; die "apt-get source failed"; }
  fi
  for s in "${want[@]}"; do
    [ -d "$DEPS/src/$(pkg_dir "$s")" ] || die "apt-get source $s did not give $(pkg_dir "$s")"
    prepare_source "$s"
    touch "$DEPS/src/.fetched-$s"
  done
}

# One-time fix-ups of an extracted source tree shared by both architectures
# (each architecture then builds out of tree or in a copy).
# ---- CBOR (issue 11): sources fetched as their orig tarball alone -----------
orig_only() {
  local n
  for n in "${KTE_LAYER_ORIG_ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

# fetch_orig_only NAME=VERSION: the package's orig tarball, checked against
# the sha256 and size that the (signature-checked) Sources index lists for
# that version, unpacked as $DEPS/src/<name>-<upstream>. For packages whose
# .dsc the mirror does not serve (scripts/layer/versions.sh says why).
fetch_orig_only() {
  local s=$1 name ver file stanza dir sha size got
  name=$(pkg_name "$s")
  ver=$(pkg_version "$s")
  file=${name}_$(pkg_upstream "$ver").orig.tar.gz
  stanza=$(apt-cache "${APT_OPTS[@]}" showsrc --only-source "$name" |
    awk -v v="$ver" 'BEGIN { RS = "" } index($0 "\n", "\nVersion: " v "\n") { print; exit }')
  dir=$(sed -n 's/^Directory: //p' <<<"$stanza")
  read -r sha size < <(sed -n '/^Checksums-Sha256:/,/^[^ ]/p' <<<"$stanza" |
    awk -v f="$file" '$3 == f { print $1, $2 }') || true
  [ -n "$dir" ] && [ -n "${sha:-}" ] || die "the Sources index lists no $file for $s"
  log "fetching $file (orig tarball only; sha256 from the signed Sources index)"
  # apt's own downloader: apt's proxy settings, no curl(1) needed on the
  # build host, and it refuses a file whose sha256 is not the index's.
  rm -f "$DEPS/src/$file.part"
  /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$KTE_LAYER_DEBIAN_MIRROR/$dir/$file" \
    "$DEPS/src/$file.part" "SHA256:$sha" >&2 ||
    die "cannot download $KTE_LAYER_DEBIAN_MIRROR/$dir/$file (or its sha256 is not the index's)"
  got=$(sha256sum "$DEPS/src/$file.part" | cut -d' ' -f1)
  [ "$got" = "$sha" ] && [ "$(stat -c %s "$DEPS/src/$file.part")" = "$size" ] ||
    die "$file: sha256 $got, size $(stat -c %s "$DEPS/src/$file.part"); the index says $sha, $size"
  mv "$DEPS/src/$file.part" "$DEPS/src/$file"
  tar -xzf "$DEPS/src/$file" -C "$DEPS/src"
}
# ---- end CBOR -----------------------------------------------------------------

prepare_source() {
  local s=$1 dir
  dir=$DEPS/src/$(pkg_dir "$s")
  case $(pkg_name "$s") in
    curl)
      # Debian's series applies as is to the OpenSSL flavour (its last patch,
      # ZZZgnutls-build, only renames the library when configured with
      # GnuTLS); regenerate the build system as its rules do (autoreconf -fi),
      # since the patches touch configure.ac and Makefile.am.
      log "preparing curl source (autoreconf)"
      (cd "$dir" && autoreconf -fi) > "$DEPS/src/prepare-curl.log" 2>&1 ||
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
      OPENSSL_TARGET=linux-x86_64
      ;;
    arm64)
      HOST_TRIPLET=aarch64-linux-musl
      CROSS=aarch64-linux-gnu-
      OPENSSL_TARGET=linux-aarch64
      ;;
    *) die "unknown architecture $ARCH (x86_64 or arm64)" ;;
  esac
  # musl from Debian's source for both architectures, installed into a
  # sysroot whose generated musl-gcc wrapper (a specs file around Debian's
  # gcc) is the compiler of everything else.
  MUSL_SYSROOT=$ARCH_DIR/musl
  CC=$MUSL_SYSROOT/bin/musl-gcc
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
    ${CROSS}gcc --version | head -1
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
  dep musl build_musl
  dep openssl build_openssl
  dep curl build_curl
  dep libmicrohttpd build_libmicrohttpd
  dep yajl build_yajl
  # --- compression (KTE_COMPRESSION; issue 11): after curl, which must not pick zlib up ---
  dep zlib build_zlib
  dep libzstd build_libzstd
  # --- end compression ---
  dep pcre2 build_pcre2
  dep libcbor build_libcbor # CBOR (KTE_PROTOCOL=cbor; issue 11)
  dep mimalloc build_mimalloc # the allocator (issue 11)
}

# ---------------------------------------------------------------------------
# the dependencies

src_of() { echo "$DEPS/src/$(pkg_dir "$(pin_of "$1")")"; }

# cmake_install NAME EXTRA_CFLAGS [CMAKE_ARGS...]: configure NAME's source
# with our toolchain (Release: -DNDEBUG, $DEP_CFLAGS, then EXTRA_CFLAGS),
# build it and install it into $PREFIX (libraries in lib/).
cmake_install() {
  local name=$1 cflags=$2 b=$ARCH_DIR/build/$1
  shift 2
  rm -rf "$b"
  mkdir -p "$b"
  (cd "$b" &&
    cmake -S "$(src_of "$name")" -B . -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_TOOLCHAIN_FILE="$ARCH_DIR/toolchain.cmake" \
      -DCMAKE_C_FLAGS_RELEASE="-DNDEBUG $DEP_CFLAGS${cflags:+ $cflags}" \
      -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib "$@" &&
    cmake --build . -j"$JOBS" &&
    cmake --install .)
}

# Environment for autoconf builds: our compiler, nothing from the host's
# pkg-config or library directories.
autoconf_env() {
  env CC="$CC" AR="$AR" RANLIB="$RANLIB" NM="$NM" STRIP="$STRIP" \
    CFLAGS="$DEP_CFLAGS" CPPFLAGS="-I$PREFIX/include" LDFLAGS="-L$PREFIX/lib" \
    PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH= \
    SOURCE_DATE_EPOCH="$KTE_LAYER_SOURCE_DATE_EPOCH" "$@"
}

build_musl() {
  # Debian's musl source, compiled with Debian's gcc for $ARCH (cross for
  # arm64), installed into a sysroot with its musl-gcc wrapper.
  local b=$ARCH_DIR/build/musl src gnu
  src=$(src_of musl)
  gnu=x86_64-linux-gnu
  [ "$ARCH" = arm64 ] && gnu=aarch64-linux-gnu
  rm -rf "$b" "$MUSL_SYSROOT"
  mkdir -p "$b"
  (cd "$b" &&
    "$src/configure" --target="$gnu" --prefix="$MUSL_SYSROOT" \
      --syslibdir="$MUSL_SYSROOT/lib" --disable-shared \
      CROSS_COMPILE="$gnu-" CC="$gnu-gcc" CFLAGS="-Os -pipe" &&
    make -j"$JOBS" && make install)
  [ -x "$MUSL_SYSROOT/bin/musl-gcc" ] || { echo "no musl-gcc wrapper installed"; return 1; }
}

build_openssl() {
  local b=$ARCH_DIR/build/openssl
  rm -rf "$b"
  mkdir -p "$b"
  # Static libcrypto and libssl for an HTTPS client, and nothing else.
  # OPENSSLDIR is a directory no runtime has, so no system openssl.cnf (Amazon
  # Linux's crypto policies, say) changes the extension's TLS; the CA bundle
  # is always set by the extension itself.
  (cd "$b" &&
    env CC="$CC" AR="$AR" RANLIB="$RANLIB" NM="$NM" CFLAGS="$DEP_CFLAGS" \
      SOURCE_DATE_EPOCH="$KTE_LAYER_SOURCE_DATE_EPOCH" \
      perl "$(src_of openssl)/Configure" "$OPENSSL_TARGET" --prefix="$PREFIX" --libdir=lib \
      --openssldir=/opt/kinesis-telemetry-extension/ssl \
      no-shared no-module no-dso no-engine no-legacy no-tests no-docs no-apps \
      $OPENSSL_DISABLE &&
    # No build path may end up in the binary (reproducible zips): the
    # compiler flags compiled into libcrypto (OpenSSL_version(OPENSSL_CFLAGS))
    # are regenerated without them, and the engines and modules directories
    # (unused: no-engine, no-module; only reported by OpenSSL_version) point
    # under OPENSSLDIR instead of the install prefix.
    make build_generated &&
    perl "$(src_of openssl)/util/mkbuildinf.pl" \
      "$(basename "$CC") $(sed -e "s|$REPO|.|g" -e "s|$DEPS|layer-deps|g" <<<"$DEP_CFLAGS")" \
      "$OPENSSL_TARGET" > crypto/buildinf.h.new &&
    mv crypto/buildinf.h.new crypto/buildinf.h &&
    make -j"$JOBS" build_libs ENGINESDIR=/opt/kinesis-telemetry-extension/ssl/engines-3 \
      MODULESDIR=/opt/kinesis-telemetry-extension/ssl/ossl-modules &&
    make install_dev)
}

# Switched off in OpenSSL: protocol versions before TLS 1.2, DTLS and QUIC,
# compression, SRP/PSK, old or national ciphers and digests, the client
# functions curl does not use here (OCSP, CT, CMS, CMP, timestamps, its HTTP
# client), post-quantum signatures (no certificate uses them), kernel TLS,
# the secure heap (needs Linux kernel headers musl does not carry; it guards
# long-lived private keys, which a TLS client without client certificates has
# none of) and file names in error records. TLS 1.2 and 1.3 with ECDHE (X25519, P-256/384,
# the hybrid X25519MLKEM768 key share that 3.5 offers first), AES-GCM and
# ChaCha20-Poly1305, RSA and ECDSA certificates (what AWS endpoints use) stay,
# with the assembly (AES-NI/ARMv8 crypto, SHA extensions) of each target.
OPENSSL_DISABLE="no-ssl3 no-ssl3-method no-tls1 no-tls1-method no-tls1_1 no-tls1_1-method
  no-dtls no-quic no-sctp no-srtp no-comp no-zlib no-srp no-psk no-gost no-idea no-mdc2
  no-rc2 no-rc4 no-rc5 no-bf no-cast no-camellia no-aria no-seed no-sm2 no-sm3 no-sm4
  no-whirlpool no-md4 no-des no-dsa no-siv no-siphash no-scrypt no-argon2 no-ec2m
  no-ocsp no-ct no-cms no-cmp no-ts no-http no-rfc3779 no-ml-dsa no-slh-dsa
  no-ktls no-async no-afalgeng no-ui-console no-filenames no-ssl-trace no-unit-test
  no-autoload-config no-sslkeylog no-tfo no-thread-pool no-default-thread-pool
  no-secure-memory"

build_curl() {
  local b=$ARCH_DIR/build/curl
  rm -rf "$b"
  mkdir -p "$b"
  # HTTP and HTTPS (OpenSSL) only; no compression, IDN, PSL, HTTP/2, LDAP,
  # SSH, RTMP, GSSAPI; no CA bundle or path compiled in (the extension always
  # sets CURLOPT_CAINFO or CURLOPT_CAPATH itself). AWS SigV4 needs HTTP auth
  # and crypto auth, which stay. No OpenSSL configuration file is loaded, not
  # even one named by OPENSSL_CONF in the function's environment (which Lambda
  # passes on to extensions): the extension's TLS is the same in every runtime.
  (cd "$b" && autoconf_env "$(src_of curl)/configure" \
      --host="$HOST_TRIPLET" --build="$(gcc -dumpmachine)" --prefix="$PREFIX" \
      --disable-shared --enable-static --disable-dependency-tracking \
      --with-openssl="$PREFIX" --without-mbedtls --without-gnutls --without-wolfssl \
      --without-bearssl --without-rustls --without-openssl-quic \
      --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
      --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche \
      --without-libssh2 --without-libssh --without-wolfssh --without-librtmp \
      --without-gssapi --without-libgsasl \
      --without-ca-bundle --without-ca-path \
      --enable-http --disable-ftp --disable-file --disable-ldap --disable-ldaps \
      --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
      --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
      --disable-websockets --disable-manual --disable-libcurl-option --disable-ntlm \
      --disable-tls-srp --disable-cookies --disable-doh --disable-mime \
      --disable-netrc --disable-progress-meter --disable-alt-svc --disable-hsts \
      --disable-unix-sockets --disable-dnsshuffle --disable-get-easy-options \
      --disable-digest-auth --disable-kerberos-auth --disable-negotiate-auth --disable-bearer-auth \
      --enable-threaded-resolver --enable-ipv6 --enable-symbol-hiding \
      --disable-openssl-auto-load-config &&
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
      --disable-bauth --disable-dauth --disable-httpupgrade --disable-cookie --disable-tools &&
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

# --- compression (KTE_COMPRESSION; issue 11) --------------------------------

build_zlib() {
  local b=$ARCH_DIR/build/zlib
  rm -rf "$b"
  mkdir -p "$ARCH_DIR/build"
  # zlib builds in its source tree: work in a copy. Static library only.
  cp -a "$(src_of zlib)" "$b"
  (cd "$b" &&
    CC="$CC" AR="$AR" RANLIB="$RANLIB" CFLAGS="$DEP_CFLAGS" ./configure --static --prefix="$PREFIX" &&
    make -j"$JOBS" libz.a && make install)
  [ -f "$PREFIX/lib/libz.a" ] && [ -f "$PREFIX/lib/pkgconfig/zlib.pc" ]
}

build_libzstd() {
  local b=$ARCH_DIR/build/libzstd
  rm -rf "$b"
  mkdir -p "$ARCH_DIR/build"
  cp -a "$(src_of libzstd)" "$b"
  # The extension only compresses: no decompressor (and so none of its
  # assembly), no legacy formats, no dictionary builder, no threads.
  local opts=(CC="$CC" AR="$AR" RANLIB="$RANLIB" CFLAGS="$DEP_CFLAGS"
    ZSTD_LIB_DECOMPRESSION=0 ZSTD_LIB_DICTBUILDER=0 ZSTD_LIB_DEPRECATED=0
    ZSTD_LEGACY_SUPPORT=0 ZSTD_NO_ASM=1 PREFIX="$PREFIX")
  (cd "$b/lib" &&
    make -j"$JOBS" libzstd.a "${opts[@]}" &&
    make install-static install-includes install-pc "${opts[@]}")
  [ -f "$PREFIX/lib/libzstd.a" ] && [ -f "$PREFIX/lib/pkgconfig/libzstd.pc" ]
}

# --- end compression ---------------------------------------------------------

# ---- PCRE2 (processing rules, issue 15) -------------------------------------
build_pcre2() {
  local b=$ARCH_DIR/build/pcre2
  rm -rf "$b"
  mkdir -p "$b"
  # libpcre2-8 only, with JIT (x86_64 and arm64 both have sljit back ends);
  # no 16/32-bit libraries, no pcre2grep/pcre2test features, no Unicode
  # tables beyond what the 8-bit library needs.
  (cd "$b" && autoconf_env "$(src_of pcre2)/configure" \
      --host="$HOST_TRIPLET" --build="$(gcc -dumpmachine)" --prefix="$PREFIX" \
      --disable-shared --enable-static --disable-dependency-tracking \
      --enable-pcre2-8 --disable-pcre2-16 --disable-pcre2-32 --enable-jit \
      --disable-pcre2grep-jit --disable-pcre2grep-libz --disable-pcre2grep-libbz2 \
      --disable-pcre2test-libedit --disable-pcre2test-libreadline &&
    make -j"$JOBS" libpcre2-8.la &&
    make install-libLTLIBRARIES install-nodist_includeHEADERS install-pkgconfigDATA \
      lib_LTLIBRARIES=libpcre2-8.la pkgconfig_DATA=libpcre2-8.pc)
  [ -f "$PREFIX/lib/libpcre2-8.a" ] || { echo "no libpcre2-8.a installed"; return 1; }
}
# ---- end PCRE2 ----------------------------------------------------------------

# ---- CBOR (KTE_PROTOCOL=cbor, issue 11) --------------------------------------
build_libcbor() {
  # The static library only: no examples, tests, sanitizers or pretty printer.
  cmake_install libcbor "" \
    -DBUILD_SHARED_LIBS=OFF -DWITH_EXAMPLES=OFF -DWITH_TESTS=OFF -DSANITIZE=OFF \
    -DCBOR_PRETTY_PRINTER=OFF &&
    [ -f "$PREFIX/lib/libcbor.a" ] && [ -f "$PREFIX/lib/pkgconfig/libcbor.pc" ]
}
# ---- end CBOR -----------------------------------------------------------------

# ---- allocator (issue 11) ------------------------------------------------------
# Upstream's object build (MI_BUILD_OBJECT: src/static.c, malloc and friends
# overridden), installed as $PREFIX/lib/mimalloc.o for scripts/build-layer.sh
# to link in front of musl. -O2, not the -Os of the rest: it runs on every
# allocation. No shared or static library, no tests.
build_mimalloc() {
  cmake_install mimalloc -O2 -DMI_INSTALL_TOPLEVEL=ON \
    -DMI_OVERRIDE=ON -DMI_BUILD_OBJECT=ON -DMI_BUILD_SHARED=OFF -DMI_BUILD_STATIC=OFF \
    -DMI_BUILD_TESTS=OFF &&
    { [ -f "$PREFIX/lib/mimalloc.o" ] || { echo "no mimalloc.o installed"; return 1; }; }
}
# ---- end allocator --------------------------------------------------------------

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

# ---------------------------------------------------------------------------
# licences: what travels with the binary in the zip

# package:licence:upstream files (besides debian/copyright, which every
# package has; these are the texts debian/copyright refers to or summarises).
KTE_LAYER_LICENSES=(
  "musl:MIT:COPYRIGHT"
  "openssl:Apache-2.0:LICENSE.txt"
  "curl:curl (MIT-style):COPYING"
  "libmicrohttpd:LGPL-2.1-or-later:COPYING"
  "yajl:ISC:COPYING"
  # --- compression (issue 11) ---
  "zlib:Zlib:LICENSE"
  "libzstd:BSD-3-Clause (or GPL-2.0):LICENSE COPYING"
  # --- end compression ---
  "pcre2:BSD-3-Clause WITH PCRE2-exception:LICENCE"
  "libcbor:MIT:LICENSE.md" # CBOR (issue 11)
  "mimalloc:MIT:LICENSE" # the allocator (issue 11)
)

license_entry() {
  local e
  for e in "${KTE_LAYER_LICENSES[@]}"; do
    [ "${e%%:*}" = "$1" ] && { echo "$e"; return 0; }
  done
  die "no licence entry for $1 in KTE_LAYER_LICENSES (scripts/layer/deps.sh)"
}

# write_notices DIR: the project's LICENSE and NOTICE, THIRD-PARTY-NOTICES and
# licenses/<package>/ (debian/copyright as `copyright`, upstream's licence
# files) for every pinned package, all mode 0644 (mkzip.py keeps that).
write_notices() {
  local dir=$1 s name src e lic files f version
  version=$(sed -n 's/^project(.* VERSION \([0-9.]*\).*/\1/p' "$REPO/CMakeLists.txt")
  rm -rf "$dir"
  mkdir -p "$dir/licenses"
  install -m 0644 "$REPO/LICENSE" "$dir/LICENSE"
  install -m 0644 "$REPO/NOTICE" "$dir/NOTICE"
  {
    echo "kinesis-telemetry-extension $version -- third-party notices"
    echo
    echo "extensions/kinesis-telemetry-extension (Apache-2.0, see LICENSE and NOTICE)"
    echo "links statically the following libraries, each built from the Debian source"
    echo "package named (any version is kept at https://snapshot.debian.org/). Their"
    echo "copyright and licence texts are in licenses/<package>/: \`copyright\` is the"
    echo "package's debian/copyright, the other files are upstream's."
    echo
    for s in "${KTE_LAYER_SOURCES[@]}"; do
      name=$(pkg_name "$s")
      e=$(license_entry "$name")
      lic=${e#*:}; lic=${lic%:*}
      printf '  %-14s %-24s %s\n' "$name" "$(pkg_version "$s")" "$lic"
    done
    echo
    echo "GCC's libgcc (helper routines the compiler may call) is covered by the GCC"
    echo "Runtime Library Exception, which puts no conditions on the program."
    echo
    echo "libmicrohttpd is licensed under the GNU LGPL, version 2.1 or later"
    echo "(licenses/libmicrohttpd/COPYING). You may change it and relink the extension"
    echo "with your version: the complete source of the extension is public under"
    echo "Apache-2.0, and its \`make layer\` (scripts/build-layer.sh, docs/layer.md)"
    echo "rebuilds this zip from that source and the Debian source packages above;"
    echo "replace the libmicrohttpd source (or build/layer-deps/<arch>/prefix/lib/"
    echo "libmicrohttpd.a) with yours and run it again."
  } > "$dir/THIRD-PARTY-NOTICES"
  chmod 0644 "$dir/THIRD-PARTY-NOTICES"
  for s in "${KTE_LAYER_SOURCES[@]}"; do
    name=$(pkg_name "$s")
    src=$DEPS/src/$(pkg_dir "$s")
    e=$(license_entry "$name")
    files=${e##*:}
    mkdir -p "$dir/licenses/$name"
    if orig_only "$name"; then
      # No debian/ directory came with it (scripts/layer/versions.sh).
      {
        echo "$name $(pkg_version "$s"): built from the orig tarball of the Debian source"
        echo "package (its debian/copyright was not available to the build); upstream's"
        echo "licence and copyright notice, from LICENSE.md:"
        echo
        cat "$src/LICENSE.md"
      } > "$dir/licenses/$name/copyright"
      chmod 0644 "$dir/licenses/$name/copyright"
    else
      install -m 0644 "$src/debian/copyright" "$dir/licenses/$name/copyright"
    fi
    for f in $files; do
      install -m 0644 "$src/$f" "$dir/licenses/$name/$f"
    done
  done
  chmod -R u=rwX,go=rX "$dir"
}
