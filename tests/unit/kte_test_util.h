/* Header-only helpers shared by the unit tests. Every tests/unit/test_*.c is
 * its own executable, so everything here is static inline (unused helpers
 * cost nothing and trigger no warnings). */
#ifndef KTE_TEST_UTIL_H
#define KTE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <yajl/yajl_tree.h>

/* Fixtures owned by these tests, and the read-only reference fixtures that
 * live next to the repository (absent in some checkouts: tests skip). */
#define KT_FIXTURES        KTE_SOURCE_DIR "/tests/unit/fixtures"
#define KT_SHARED_FIXTURES KTE_SOURCE_DIR "/../shared/fixtures"

/* ---- base64 ------------------------------------------------------------ */

/* Decodes len characters of standard base64 (len a multiple of 4) into out;
 * *olen is the number of bytes, without the zeros EVP_DecodeBlock writes for
 * the '=' padding. -1 for invalid input or when out is too small. */
static inline int kt_b64_decode(const char *in, size_t len, unsigned char *out, size_t cap,
                                size_t *olen)
{
    *olen = 0;
    if (len % 4 || len / 4 * 3 > cap || len > (size_t)1 << 30)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    size_t pad = (len > 0 && in[len - 1] == '=') + (len > 1 && in[len - 2] == '=');
    *olen = (size_t)n - pad;
    return 0;
}

/* ---- files ------------------------------------------------------------- */

static inline bool kt_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whole file, NUL-terminated; NULL when it cannot be read. */
static inline char *kt_read_file(const char *path, size_t *len)
{
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    for (;;) {
        if (!p)
            break;
        if (n + 1 == cap) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                p = NULL;
                break;
            }
            p = q;
            cap *= 2;
        }
        size_t got = fread(p + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    if (!p)
        return NULL;
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* Reads a fixture the test cannot do without; fails the test if missing. */
static inline char *kt_must_read(const char *path, size_t *len)
{
    char *p = kt_read_file(path, len);
    if (!p)
        print_error("cannot read fixture %s\n", path);
    assert_non_null(p);
    return p;
}

/* Skips the calling test (before it allocates anything) when the shared
 * fixtures are not checked out next to the repository. */
#define KT_SKIP_WITHOUT_SHARED()                                                                   \
    do {                                                                                           \
        if (!kt_exists(KT_SHARED_FIXTURES)) {                                                      \
            print_message("skipped: %s is absent\n", KT_SHARED_FIXTURES);                          \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- whitespace and an independent JSON array splitter ------------------ */

static inline bool kt_is_json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* [*off, *off + *len) without JSON whitespace at either end. */
static inline void kt_trim(const char *p, size_t *off, size_t *len)
{
    while (*len && kt_is_json_ws(p[*off])) {
        (*off)++;
        (*len)--;
    }
    while (*len && kt_is_json_ws(p[*off + *len - 1]))
        (*len)--;
}

struct kt_span {
    size_t off;
    size_t len;
};

/* Splits a top-level JSON array into its elements (whitespace trimmed) by
 * bracket counting: an oracle deliberately unlike the code under test.
 * Assumes well-formed input. Returns the element count. */
static inline size_t kt_split_array(const char *b, size_t n, struct kt_span *out, size_t max)
{
    size_t i = 0, count = 0;
    while (i < n && kt_is_json_ws(b[i]))
        i++;
    if (i == n || b[i] != '[')
        return 0;
    i++;
    size_t start = i;
    int depth = 0;
    bool in_str = false, any = false;
    for (; i < n; i++) {
        char c = b[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            any = true;
        } else if (c == '{' || c == '[') {
            depth++;
            any = true;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if ((c == ',' || c == ']') && depth == 0) {
            size_t off = start, len = i - start;
            kt_trim(b, &off, &len);
            if (any || len) {
                if (count < max)
                    out[count] = (struct kt_span){off, len};
                count++;
            }
            if (c == ']')
                break;
            start = i + 1;
            any = false;
        } else if (!kt_is_json_ws(c)) {
            any = true;
        }
    }
    return count;
}

/* ---- exact byte comparison with a readable failure ---------------------- */

static inline bool kt_bytes_equal(const char *what, const char *got, size_t got_len,
                                  const char *want, size_t want_len)
{
    if (got && got_len == want_len && memcmp(got, want, want_len) == 0)
        return true;
    print_error("%s differs\n  want (%zu bytes): %.*s\n  got  (%zu bytes): %.*s\n", what, want_len,
                (int)want_len, want, got_len, got ? (int)got_len : 6, got ? got : "(null)");
    return false;
}

#define kt_assert_bytes(got, got_len, want)                                                        \
    assert_true(kt_bytes_equal(#got, (got), (got_len), (want), strlen(want)))

#define kt_assert_bytes_n(got, got_len, want, want_len)                                            \
    assert_true(kt_bytes_equal(#got, (got), (got_len), (want), (want_len)))

#define kt_assert_contains(haystack, needle)                                                       \
    do {                                                                                           \
        if (!strstr((haystack), (needle)))                                                         \
            print_error("'%s' does not contain '%s'\n", (haystack), (needle));                     \
        assert_non_null(strstr((haystack), (needle)));                                             \
    } while (0)

/* ---- JSON (yajl_tree) ---------------------------------------------------- */

/* Parses p[0..n) strictly (yajl validates UTF-8); NULL and a message when
 * it is not JSON. Free with yajl_tree_free. */
static inline yajl_val kt_json_parse(const char *p, size_t n)
{
    char *copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    copy[n] = '\0';
    char err[512] = "";
    yajl_val v = yajl_tree_parse(copy, err, sizeof err);
    if (!v)
        print_error("not JSON (%s): %.*s\n", err, (int)(n > 400 ? 400 : n), p);
    free(copy);
    return v;
}

/* obj[k1][k2]... of the given type (yajl_t_any for any), or NULL. */
static inline yajl_val kt_json_get(yajl_val v, yajl_type t, const char *k1, const char *k2,
                                   const char *k3)
{
    const char *path[4] = {k1, k2, k3, NULL};
    return yajl_tree_get(v, path, t);
}

/* A string value, or a marker that compares unequal to any real string. */
static inline const char *kt_str(yajl_val v)
{
    const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
    return s ? s : "\x01(not a string)";
}

static inline const char *kt_json_str(yajl_val v, const char *k1, const char *k2)
{
    yajl_val s = kt_json_get(v, yajl_t_string, k1, k2, NULL);
    return s ? YAJL_GET_STRING(s) : NULL;
}

static inline long long kt_json_int(yajl_val v, const char *k1, const char *k2)
{
    yajl_val s = kt_json_get(v, yajl_t_number, k1, k2, NULL);
    assert_non_null(s);
    assert_true(YAJL_IS_INTEGER(s));
    return YAJL_GET_INTEGER(s);
}

/* ---- a fake environment for kte_config_load ----------------------------- */

#define KT_ENV_MAX 64

struct kt_env {
    const char *name[KT_ENV_MAX];
    const char *value[KT_ENV_MAX];
    size_t n;
    unsigned lookups; /* how often the code under test asked */
};

/* Sets (or with value NULL removes) a variable. */
static inline void kt_env_set(struct kt_env *e, const char *name, const char *value)
{
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->name[i], name) == 0) {
            if (value) {
                e->value[i] = value;
            } else {
                e->n--;
                e->name[i] = e->name[e->n];
                e->value[i] = e->value[e->n];
            }
            return;
        }
    }
    if (!value)
        return;
    assert_true(e->n < KT_ENV_MAX);
    e->name[e->n] = name;
    e->value[e->n] = value;
    e->n++;
}

static inline const char *kt_env_get(const char *name, void *ctx)
{
    struct kt_env *e = ctx;
    e->lookups++;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->name[i], name) == 0)
            return e->value[i];
    return NULL;
}

#endif
