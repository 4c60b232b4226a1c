#include "kte_batch.h"

#include "kte_cbor.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

size_t kte_batch_plan(const struct kte_rec *head, size_t *bytes_out)
{
    size_t n = 0, bytes = 0;
    for (const struct kte_rec *r = head; r && n < KTE_BATCH_MAX_RECORDS; r = r->next) {
        size_t sz = (size_t)r->data_len + r->pk_len;
        if (n > 0 && bytes + sz > KTE_BATCH_MAX_BYTES)
            break;
        bytes += sz;
        n++;
    }
    if (bytes_out)
        *bytes_out = bytes;
    return n;
}

/* One {"Data":"<base64>","PartitionKey":"..."} entry. */
static int put_entry(struct kte_buf *out, bool first, const char *data, size_t len, const char *pk,
                     size_t pk_len)
{
    size_t b64 = 4 * ((len + 2) / 3);
    if (kte_buf_puts(out, first ? "{\"Data\":\"" : ",{\"Data\":\"") ||
        kte_buf_reserve(out, b64 + 1))
        return -1;
    /* OpenSSL's table encoder (libcrypto, linked anyway for TLS): writes
     * exactly b64 characters and a NUL, which the reservation covers. */
    if (len > (size_t)INT_MAX / 2 ||
        EVP_EncodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)data,
                        (int)len) != (int)b64)
        return -1;
    out->len += b64;
    return kte_buf_puts(out, "\",\"PartitionKey\":") || kte_buf_json_string(out, pk, pk_len) ||
                   kte_buf_puts(out, "}")
               ? -1
               : 0;
}

static int put_stream(struct kte_buf *out, const char *stream_name, const char *stream_arn)
{
    bool arn = stream_arn && *stream_arn;
    const char *v = arn ? stream_arn : stream_name;
    return kte_buf_puts(out, arn ? "],\"StreamARN\":" : "],\"StreamName\":") ||
                   kte_buf_json_string(out, v, strlen(v)) || kte_buf_puts(out, "}")
               ? -1
               : 0;
}

int kte_batch_body(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                   struct kte_rec *const *recs, size_t n)
{
    size_t est = 64;
    for (size_t i = 0; i < n; i++)
        est += 4 * ((size_t)recs[i]->data_len / 3 + 1) + recs[i]->pk_len * 6 + 40;
    if (kte_buf_reserve(out, est) || kte_buf_puts(out, "{\"Records\":["))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_entry(out, i == 0, recs[i]->data, recs[i]->data_len, recs[i]->pk, recs[i]->pk_len))
            return -1;
    return put_stream(out, stream_name, stream_arn);
}

int kte_batch_body_wire(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                        const struct kte_wire *w, size_t n)
{
    size_t est = 64;
    for (size_t i = 0; i < n; i++)
        est += 4 * (w[i].len / 3 + 1) + w[i].pk_len * 6 + 40;
    if (kte_buf_reserve(out, est) || kte_buf_puts(out, "{\"Records\":["))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (put_entry(out, i == 0, w[i].data, w[i].len, w[i].pk, w[i].pk_len))
            return -1;
    return put_stream(out, stream_name, stream_arn);
}

enum kte_rec_outcome kte_batch_classify(const char *code)
{
    static const char *const retryable[] = {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "KMSThrottlingException",
        "LimitExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestTimeout",
        "RequestTimeoutException",
    };
    for (size_t i = 0; i < sizeof retryable / sizeof retryable[0]; i++)
        if (!strcmp(code, retryable[i]))
            return KTE_REC_RETRY;
    return KTE_REC_PERMANENT;
}

/* Copies s into dst, dropping an awsJson "namespace#" prefix and ":uri"
 * suffix so codes compare equal however the service spells them. */
static void normalise_code(const char *s, char *dst, size_t cap)
{
    /* As botocore does: cut the ":uri" suffix first, then keep what follows
     * the last '#'. */
    size_t n = strcspn(s, ":");
    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == '#') {
            s += i;
            n -= i;
            break;
        }
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* Streaming parse of an error body: the first "__type" and "code" members
 * of the top-level object, kept when they are strings. No tree is built:
 * freeing one recurses once per nesting level, and a deeply nested body
 * (8 KiB of brackets) overflowed the sender thread's stack in the musl
 * build, whose threads get 128 KiB. */
enum err_key { ERR_KEY_NONE = 0, ERR_KEY_TYPE, ERR_KEY_CODE };

struct err_state {
    int depth;
    enum err_key pending; /* the value being read belongs to this key */
    bool seen[3];         /* first occurrence of each key decides */
    char *found[3];       /* its string value, NUL-terminated (owned) */
    bool oom;
};

static int err_value(void *ctx)
{
    ((struct err_state *)ctx)->pending = ERR_KEY_NONE;
    return 1;
}

static int err_bool(void *ctx, int b)
{
    (void)b;
    return err_value(ctx);
}

static int err_number(void *ctx, const char *v, size_t len)
{
    (void)v;
    (void)len;
    return err_value(ctx);
}

static int err_string(void *ctx, const unsigned char *v, size_t len)
{
    struct err_state *st = ctx;
    if (st->pending != ERR_KEY_NONE && st->depth == 1) {
        char *copy = malloc(len + 1);
        if (!copy) {
            st->oom = true;
            return 0;
        }
        memcpy(copy, v, len);
        copy[len] = '\0';
        st->found[st->pending] = copy;
    }
    return err_value(ctx);
}

static int err_key(void *ctx, const unsigned char *k, size_t len)
{
    struct err_state *st = ctx;
    enum err_key key = ERR_KEY_NONE;
    if (st->depth == 1 && len == 6 && !memcmp(k, "__type", 6))
        key = ERR_KEY_TYPE;
    else if (st->depth == 1 && len == 4 && !memcmp(k, "code", 4))
        key = ERR_KEY_CODE;
    st->pending = key != ERR_KEY_NONE && !st->seen[key] ? key : ERR_KEY_NONE;
    st->seen[key] = true;
    return 1;
}

static int err_open(void *ctx)
{
    struct err_state *st = ctx;
    st->pending = ERR_KEY_NONE;
    st->depth++;
    return 1;
}

static int err_start_array(void *ctx)
{
    /* A top-level array is no error object: depth 1 must be an object. */
    struct err_state *st = ctx;
    err_open(ctx);
    if (st->depth == 1)
        st->depth = 2;
    return 1;
}

static int err_close(void *ctx)
{
    ((struct err_state *)ctx)->depth--;
    return 1;
}

static const yajl_callbacks err_callbacks = {
    err_value, err_bool,        NULL,      NULL, err_number, err_string, err_open, err_key,
    err_close, err_start_array, err_close,
};

/* The code found by a parse (parsed: it succeeded); frees what it kept. */
static int err_result(struct err_state *st, bool parsed, char *code, size_t code_len)
{
    const char *t = st->found[ERR_KEY_TYPE] ? st->found[ERR_KEY_TYPE] : st->found[ERR_KEY_CODE];
    int rc = -1;
    if (parsed && !st->oom && t) {
        normalise_code(t, code, code_len);
        rc = 0;
    }
    free(st->found[ERR_KEY_TYPE]);
    free(st->found[ERR_KEY_CODE]);
    return rc;
}

int kte_batch_error_code(const char *body, size_t len, char *code, size_t code_len)
{
    struct err_state st = {0};
    yajl_handle h = yajl_alloc(&err_callbacks, NULL, &st);
    if (!h)
        return -1;
    /* As yajl_tree_parse did: comments allowed, the text ends at a NUL. */
    yajl_config(h, yajl_allow_comments, 1);
    yajl_status ys = yajl_parse(h, (const unsigned char *)body, strnlen(body, len));
    if (ys == yajl_status_ok)
        ys = yajl_complete_parse(h);
    yajl_free(h);
    return err_result(&st, ys == yajl_status_ok, code, code_len);
}

int kte_batch_error_code_cbor(const void *body, size_t len, char *code, size_t code_len)
{
    struct err_state st = {0};
    char err[120];
    int rc = kte_cbor_walk(body, len, &err_callbacks, &st, NULL, err, sizeof err);
    return err_result(&st, rc == 0, code, code_len);
}

/* Streaming parse of a PutRecords answer: only the Records array's entries
 * and their ErrorCode matter, so no tree is built (it cost a tenth of the
 * CPU per event). Depth 1 is the answer object, 2 the Records array, 3 an
 * entry.
 *
 * In CBOR, a FailedRecordCount of 0 that comes before a Records array of
 * exactly the records sent (the array's head says how many entries follow;
 * Kinesis's documented answer and kinesis-local both put the count first)
 * ends the reading there: every record was written, and the entries only
 * carry sequence numbers nobody uses. Walking 500 of them was about a tenth
 * of the CPU per event (docs/bench/profile.md). Fluent Bit's Kinesis output
 * also takes the count at its word. Any other answer, and every JSON answer
 * (a JSON array does not say its length), is read to the end and its entries
 * counted against the records sent. */
struct resp_state {
    struct kte_rec_result *results;
    size_t n;
    size_t count; /* entries seen in Records */
    int depth;
    int failed;
    bool records_key;      /* the last key at depth 1 was "Records" */
    bool failed_count_key; /* ... was "FailedRecordCount" */
    bool none_failed;      /* FailedRecordCount 0 was read */
    bool stopped;          /* read no further: every record is written */
    uint64_t array_len;    /* CBOR: the length of the array being opened */
    bool in_records;
    bool error_key; /* the last key in an entry was "ErrorCode" */
};

static int resp_scalar(void *ctx)
{
    ((struct resp_state *)ctx)->error_key = false;
    return 1;
}

static int resp_bool(void *ctx, int b)
{
    (void)b;
    return resp_scalar(ctx);
}

static int resp_number(void *ctx, const char *v, size_t len)
{
    struct resp_state *st = ctx;
    if (st->depth == 1 && st->failed_count_key)
        st->none_failed = len == 1 && v[0] == '0';
    return resp_scalar(ctx);
}

static int resp_string(void *ctx, const unsigned char *v, size_t len)
{
    struct resp_state *st = ctx;
    if (st->error_key && st->in_records && st->depth == 3 && len && st->count <= st->n) {
        struct kte_rec_result *r = &st->results[st->count - 1];
        char code[KTE_ERRCODE_MAX];
        size_t k = len < sizeof code - 1 ? len : sizeof code - 1;
        memcpy(code, v, k);
        code[k] = '\0';
        if (r->outcome == KTE_REC_OK)
            st->failed++; /* once per entry, however often it says ErrorCode */
        normalise_code(code, r->error_code, sizeof r->error_code);
        r->outcome = kte_batch_classify(r->error_code);
    }
    st->error_key = false;
    return 1;
}

static int resp_key(void *ctx, const unsigned char *k, size_t len)
{
    struct resp_state *st = ctx;
    if (st->depth == 1) {
        st->records_key = len == 7 && !memcmp(k, "Records", 7);
        st->failed_count_key = len == 17 && !memcmp(k, "FailedRecordCount", 17);
    } else if (st->in_records && st->depth == 3)
        st->error_key = len == 9 && !memcmp(k, "ErrorCode", 9);
    return 1;
}

static int resp_start_map(void *ctx)
{
    struct resp_state *st = ctx;
    st->depth++;
    if (st->in_records && st->depth == 3) {
        if (st->count < st->n) {
            st->results[st->count].outcome = KTE_REC_OK;
            st->results[st->count].error_code[0] = '\0';
        }
        st->count++;
    }
    return 1;
}

static int resp_end_map(void *ctx)
{
    ((struct resp_state *)ctx)->depth--;
    return 1;
}

static int resp_start_array(void *ctx)
{
    struct resp_state *st = ctx;
    st->depth++;
    if (st->depth == 2 && st->records_key) {
        if (st->none_failed && st->count == 0 && st->array_len == st->n) {
            for (size_t i = 0; i < st->n; i++) {
                st->results[i].outcome = KTE_REC_OK;
                st->results[i].error_code[0] = '\0';
            }
            st->count = st->n;
            st->stopped = true;
            return 0; /* stops the parser */
        }
        st->in_records = true;
    }
    return 1;
}

static int resp_end_array(void *ctx)
{
    struct resp_state *st = ctx;
    if (st->depth == 2)
        st->in_records = false;
    st->depth--;
    return 1;
}

static const yajl_callbacks resp_callbacks = {
    resp_scalar,  resp_bool,        NULL,           NULL,
    resp_number,  resp_string,      resp_start_map, resp_key,
    resp_end_map, resp_start_array, resp_end_array,
};

/* A reader of an answer for results[0..n); no array length is known yet
 * (JSON never tells one). */
static struct resp_state resp_start(struct kte_rec_result *results, size_t n)
{
    return (struct resp_state){.results = results, .n = n, .array_len = KTE_CBOR_INDEFINITE};
}

static int resp_result(const struct resp_state *st, char *err, size_t errlen)
{
    if (st->count != st->n) {
        snprintf(err, errlen, "response has %zu results for %zu records", st->count, st->n);
        return -1;
    }
    return st->failed;
}

int kte_batch_parse_response(const char *body, size_t len, size_t n, struct kte_rec_result *results,
                             char *err, size_t errlen)
{
    struct resp_state st = resp_start(results, n);
    yajl_handle h = yajl_alloc(&resp_callbacks, NULL, &st);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yajl_status ys = yajl_parse(h, (const unsigned char *)body, len);
    if (ys == yajl_status_ok)
        ys = yajl_complete_parse(h);
    yajl_free(h);
    if (ys != yajl_status_ok) {
        snprintf(err, errlen, "response is not JSON");
        return -1;
    }
    return resp_result(&st, err, errlen);
}

int kte_batch_parse_response_cbor(const void *body, size_t len, size_t n,
                                  struct kte_rec_result *results, char *err, size_t errlen)
{
    struct resp_state st = resp_start(results, n);
    if (kte_cbor_walk(body, len, &resp_callbacks, &st, &st.array_len, err, errlen) != 0 &&
        !st.stopped)
        return -1;
    return resp_result(&st, err, errlen);
}
