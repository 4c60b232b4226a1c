#include "kte_version.h"

#include <curl/curl.h>
#include <microhttpd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>
#include <yajl/yajl_version.h>
#include <zlib.h>
#include <zstd.h>
#ifdef KTE_HAVE_CBOR
#include <cbor.h>
#endif
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

/* Set by CMakeLists.txt (project version) and, for the layer, by
 * scripts/build-layer.sh (musl's version, the Debian source packages). */
#ifndef KTE_VERSION
#define KTE_VERSION "unknown"
#endif
#ifndef KTE_LIBC_VERSION
#define KTE_LIBC_VERSION "musl"
#endif

/* mimalloc's version call, defined only when the layer build links mimalloc
 * in place of the C library's malloc (CMakeLists.txt, KTE_MALLOC_OBJECT):
 * a weak reference, so --version says which allocator the binary really has. */
extern int mi_version(void) __attribute__((weak));

size_t kte_version_text(char *buf, size_t cap)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    int yv = yajl_version();
    char pcre2[64] = "?"; /* "10.42 2022-12-11": the version is the first word */
    if (pcre2_config(PCRE2_CONFIG_VERSION, pcre2) > 0)
        pcre2[strcspn(pcre2, " ")] = '\0';
    char libc[64];
#ifdef __GLIBC__
    snprintf(libc, sizeof libc, "glibc/%s", gnu_get_libc_version());
#else
    snprintf(libc, sizeof libc, "%s", KTE_LIBC_VERSION);
#endif
    const char *sources = "";
#ifdef KTE_BUILD_SOURCES
    sources = "built from Debian source packages: " KTE_BUILD_SOURCES "\n";
#endif
    /* libcbor has no run-time version call: its headers' (static in the layer) */
#ifdef KTE_HAVE_CBOR
    const char *cbor = " libcbor/" CBOR_VERSION;
#else
    const char *cbor = "";
#endif
    char alloc[32] = ""; /* mi_version(): 209 for 2.0.9 */
    if (mi_version) {
        int mv = mi_version();
        snprintf(alloc, sizeof alloc, " mimalloc/%d.%d.%d", mv / 100, mv / 10 % 10, mv % 10);
    }
    int n =
        snprintf(buf, cap,
                 "kinesis-telemetry-extension %s\n"
                 "libcurl/%s %s libmicrohttpd/%s yajl/%d.%d.%d PCRE2/%s zlib/%s zstd/%s%s%s %s\n%s",
                 KTE_VERSION, cv->version, cv->ssl_version ? cv->ssl_version : "(no TLS)",
                 MHD_get_version(), yv / 10000, yv / 100 % 100, yv % 100, pcre2, zlibVersion(),
                 ZSTD_versionString(), cbor, alloc, libc, sources);
    return n < 0 ? 0 : (size_t)n;
}

int kte_version_print(FILE *out)
{
    char buf[1024];
    size_t n = kte_version_text(buf, sizeof buf);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    return fwrite(buf, 1, n, out) == n && fflush(out) == 0 ? 0 : -1;
}
