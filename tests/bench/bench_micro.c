/* Micro-benchmarks behind the recommendations in docs/bench/profile.md.
 *
 *   cc -O2 -o build/bench/bench_micro tests/bench/bench_micro.c -lmbedcrypto -lcrypto
 *   build/bench/bench_micro
 *
 * (scripts/bench.sh micro does both.) Per record-sized input it times:
 *   - base64: mbedtls_base64_encode (what kte_batch_body calls; constant-time,
 *     meant for secrets) against a plain table-driven encoder, and checks
 *     that both give the same bytes;
 *   - SHA-256 over a PutRecords-sized body: mbedTLS 2.28's portable C (what
 *     curl's SigV4 uses in the static layer build) and OpenSSL's (what it
 *     uses in the Debian build).
 * Not a test: it only prints timings. */
#define _POSIX_C_SOURCE 200809L
#include <mbedtls/base64.h>
#include <mbedtls/sha256.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The proposed replacement: 3 bytes in, 4 characters out, one table lookup
 * per character. Writes 4*ceil(n/3) bytes, no NUL. */
static size_t b64_table(char *dst, const unsigned char *src, size_t n)
{
    static const char tbl[64] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *d = dst;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        d[0] = tbl[v >> 18];
        d[1] = tbl[(v >> 12) & 63];
        d[2] = tbl[(v >> 6) & 63];
        d[3] = tbl[v & 63];
        d += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < n ? (uint32_t)src[i + 1] << 8 : 0);
        d[0] = tbl[v >> 18];
        d[1] = tbl[(v >> 12) & 63];
        d[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        d[3] = '=';
        d += 4;
    }
    return (size_t)(d - dst);
}

static volatile unsigned sink;

static void bench_b64(size_t len)
{
    unsigned char *in = malloc(len);
    size_t cap = 4 * (len / 3 + 1) + 1;
    char *a = malloc(cap), *b = malloc(cap);
    for (size_t i = 0; i < len; i++)
        in[i] = (unsigned char)(' ' + (i * 7) % 90); /* JSON-ish text */
    size_t olen = 0;
    mbedtls_base64_encode((unsigned char *)a, cap, &olen, in, len);
    size_t tlen = b64_table(b, in, len);
    if (olen != tlen || memcmp(a, b, olen) != 0) {
        fprintf(stderr, "base64 mismatch at %zu bytes\n", len);
        exit(1);
    }
    int iters = (int)(20000000 / (len + 1)) + 1000;
    double t0 = now_ns();
    for (int k = 0; k < iters; k++) {
        mbedtls_base64_encode((unsigned char *)a, cap, &olen, in, len);
        sink += (unsigned char)a[k % olen];
    }
    double t1 = now_ns();
    for (int k = 0; k < iters; k++) {
        tlen = b64_table(b, in, len);
        sink += (unsigned char)b[k % tlen];
    }
    double t2 = now_ns();
    printf("base64 %5zu-byte record: mbedtls_base64_encode %8.0f ns, table %6.0f ns (%.0fx)\n", len,
           (t1 - t0) / iters, (t2 - t1) / iters, (t1 - t0) / (t2 - t1));
    free(in);
    free(a);
    free(b);
}

static void bench_sha(size_t len)
{
    unsigned char *in = malloc(len), out[32];
    for (size_t i = 0; i < len; i++)
        in[i] = (unsigned char)('A' + i % 50);
    int iters = (int)(200000000 / len) + 10;
    double t0 = now_ns();
    for (int k = 0; k < iters; k++) {
        mbedtls_sha256_ret(in, len, out, 0);
        sink += out[0];
    }
    double t1 = now_ns();
    for (int k = 0; k < iters; k++) {
        SHA256(in, len, out);
        sink += out[0];
    }
    double t2 = now_ns();
    printf("sha256 %7zu-byte body: mbedTLS %.2f ns/byte, OpenSSL %.2f ns/byte\n", len,
           (t1 - t0) / iters / (double)len, (t2 - t1) / iters / (double)len);
    free(in);
}

int main(void)
{
    bench_b64(330);  /* a 100-byte log line in its envelope */
    bench_b64(4300); /* a 4 KB line in its envelope */
    bench_sha(225000); /* a PutRecords body of 500 such 330-byte records, base64 */
    return 0;
}
