#include "kte_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

int kte_random_hex_id(char out[KTE_ENV_ID_LEN + 1])
{
    unsigned char raw[KTE_ENV_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[KTE_ENV_ID_LEN] = '\0';
    return 0;
}

int kte_record_builder_init_restored(struct kte_record_builder *rb, const char *env_id,
                                     const char *restored_from, const char *function_name,
                                     const char *function_version, const char *region,
                                     uint64_t seq_base)
{
    struct kte_buf *b = &rb->prefix;
    kte_buf_init(b);
    rb->seq_base = seq_base;
    if (kte_buf_puts(b, "{\"kte\":1,\"environment\":") ||
        kte_buf_json_string(b, env_id, strlen(env_id)) ||
        (restored_from && (kte_buf_puts(b, ",\"restoredFrom\":") ||
                           kte_buf_json_string(b, restored_from, strlen(restored_from)))) ||
        kte_buf_puts(b, ",\"function\":{\"name\":") ||
        kte_buf_json_string(b, function_name, strlen(function_name)) ||
        kte_buf_puts(b, ",\"version\":") ||
        kte_buf_json_string(b, function_version, strlen(function_version)) ||
        kte_buf_puts(b, ",\"region\":") || kte_buf_json_string(b, region, strlen(region)) ||
        kte_buf_puts(b, "},\"seq\":")) {
        kte_buf_free(b);
        return -1;
    }
    return 0;
}

int kte_record_builder_init(struct kte_record_builder *rb, const char *env_id,
                            const char *function_name, const char *function_version,
                            const char *region)
{
    return kte_record_builder_init_restored(rb, env_id, NULL, function_name, function_version,
                                            region, 0);
}

void kte_record_builder_free(struct kte_record_builder *rb)
{
    kte_buf_free(&rb->prefix);
}

static size_t escaped_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* Longest prefix of raw whose JSON-escaped form fits in budget bytes and that
 * ends on a UTF-8 character boundary. */
static size_t utf8_prefix_fitting(const char *raw, size_t raw_len, size_t budget)
{
    size_t used = 0, i = 0, cut = 0;
    while (i < raw_len) {
        used += escaped_len((unsigned char)raw[i]);
        if (used > budget)
            break;
        i++;
        /* A boundary is any position not followed by a continuation byte. */
        if (i == raw_len || ((unsigned char)raw[i] & 0xC0) != 0x80)
            cut = i;
    }
    return cut;
}

/* A record of data_len bytes and key pk, fields set and data left to fill:
 * one allocation holds them all (kte_record.h). */
static struct kte_rec *new_rec(size_t data_len, const char *pk, uint64_t seq, bool truncated)
{
    size_t pk_len = strlen(pk);
    struct kte_rec *r = malloc(sizeof *r + data_len + pk_len + 1);
    if (!r)
        return NULL;
    r->next = NULL;
    r->seq = seq;
    r->attempts = 0;
    r->data_len = (uint32_t)data_len;
    r->pk_len = (uint32_t)pk_len;
    r->truncated = truncated;
    r->is_report = false;
    r->pk = r->data + data_len;
    memcpy(r->pk, pk, pk_len + 1);
    return r;
}

static struct kte_rec *alloc_rec(const struct kte_buf *data, const char *pk, uint64_t seq,
                                 bool truncated)
{
    struct kte_rec *r = new_rec(data->len, pk, seq, truncated);
    if (r)
        memcpy(r->data, data->data, data->len);
    return r;
}

struct kte_rec *kte_record_build(const struct kte_record_builder *rb, uint64_t seq, const char *raw,
                                 size_t raw_len, const char *pk, size_t max_data_bytes,
                                 enum kte_build_error *why)
{
    return kte_record_build_flags(rb, seq, raw, raw_len, pk, max_data_bytes, 0, why);
}

struct kte_rec *kte_record_build_flags(const struct kte_record_builder *rb, uint64_t seq,
                                       const char *raw, size_t raw_len, const char *pk,
                                       size_t max_data_bytes, unsigned flags,
                                       enum kte_build_error *why)
{
    enum kte_build_error dummy;
    if (!why)
        why = &dummy;
    *why = KTE_BUILD_NOMEM;
    char num[KTE_U64_DECIMAL_MAX];
    static const char redelivered[] = ",\"redelivered\":true";
    static const char event_key[] = ",\"event\":";
    size_t mark_len = (flags & KTE_BUILD_REDELIVERED) ? sizeof redelivered - 1 : 0;
    size_t nlen = kte_u64_decimal(seq - rb->seq_base, num);
    size_t full = rb->prefix.len + nlen + mark_len + sizeof event_key - 1 + raw_len + 1;

    if (full <= max_data_bytes) {
        /* The common case: written straight into the record, one copy of
         * the event and one allocation. */
        struct kte_rec *r = new_rec(full, pk, seq, false);
        if (!r)
            return NULL;
        char *w = r->data;
        memcpy(w, rb->prefix.data, rb->prefix.len);
        w += rb->prefix.len;
        memcpy(w, num, nlen);
        w += nlen;
        memcpy(w, redelivered, mark_len);
        w += mark_len;
        memcpy(w, event_key, sizeof event_key - 1);
        w += sizeof event_key - 1;
        memcpy(w, raw, raw_len);
        w[raw_len] = '}';
        return r;
    }

    const char *mark = mark_len ? redelivered : "";
    struct kte_buf b;
    kte_buf_init(&b);
    struct kte_rec *r = NULL;
    if (kte_buf_append(&b, rb->prefix.data, rb->prefix.len) || kte_buf_append(&b, num, nlen) ||
        kte_buf_puts(&b, mark) ||
        kte_buf_printf(&b, ",\"truncated\":{\"originalBytes\":%zu},\"event\":", raw_len))
        goto out;
    size_t closing = 3; /* the string's two quotes and the final brace */
    if (b.len + closing > max_data_bytes) {
        *why = KTE_BUILD_TOO_LARGE; /* cannot even hold the envelope */
        goto out;
    }
    size_t keep = utf8_prefix_fitting(raw, raw_len, max_data_bytes - b.len - closing);
    if (kte_buf_json_string(&b, raw, keep) || kte_buf_puts(&b, "}"))
        goto out;
    r = alloc_rec(&b, pk, seq, true);
out:
    kte_buf_free(&b);
    return r;
}
