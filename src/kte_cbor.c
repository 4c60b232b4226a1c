#include "kte_cbor.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifndef KTE_HAVE_CBOR

bool kte_cbor_available(void)
{
    return false;
}

int kte_cbor_body_wire(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                       const struct kte_wire *w, size_t n)
{
    (void)out, (void)stream_name, (void)stream_arn, (void)w, (void)n;
    return -1;
}

int kte_cbor_walk(const unsigned char *body, size_t len, const yajl_callbacks *cb, void *ctx,
                  uint64_t *array_len, char *err, size_t errlen)
{
    (void)body, (void)len, (void)cb, (void)ctx, (void)array_len;
    snprintf(err, errlen, "built without CBOR support (libcbor)");
    return -1;
}

#else

#include <cbor.h>

/* libcbor 0.10 passes string and collection lengths as uint64_t, 0.8 as
 * size_t (the same type on the 64-bit targets, but say which). */
#if CBOR_MAJOR_VERSION == 0 && CBOR_MINOR_VERSION < 10
typedef size_t cbor_len_t;
#else
typedef uint64_t cbor_len_t;
#endif

bool kte_cbor_available(void)
{
    return true;
}

/* ---- request ---------------------------------------------------------- */

typedef size_t (*head_encoder)(size_t, unsigned char *, size_t);

/* A major type's head (type and length), at most 9 bytes. */
static int put_head(struct kte_buf *b, head_encoder enc, size_t v)
{
    unsigned char h[9];
    size_t k = enc(v, h, sizeof h);
    return k ? kte_buf_append(b, h, k) : -1;
}

static int put_text(struct kte_buf *b, const char *s, size_t n)
{
    return put_head(b, cbor_encode_string_start, n) || kte_buf_append(b, s, n) ? -1 : 0;
}

int kte_cbor_body_wire(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                       const struct kte_wire *w, size_t n)
{
    bool arn = stream_arn && *stream_arn;
    const char *stream = arn ? stream_arn : stream_name;
    size_t stream_len = strlen(stream);
    /* Heads are at most 9 bytes; the keys' texts are short. */
    size_t est = 64 + stream_len;
    for (size_t i = 0; i < n; i++)
        est += w[i].len + w[i].pk_len + 48;
    if (kte_buf_reserve(out, est) || put_head(out, cbor_encode_map_start, 2) ||
        put_text(out, "Records", 7) || put_head(out, cbor_encode_array_start, n))
        return -1;
    /* What every record entry repeats, encoded once per body rather than
     * per record: the map's head and the "Data" key; the "PartitionKey" key. */
    struct kte_buf data_key, pk_key;
    kte_buf_init(&data_key);
    kte_buf_init(&pk_key);
    int rc = put_head(&data_key, cbor_encode_map_start, 2) || put_text(&data_key, "Data", 4) ||
                     put_text(&pk_key, "PartitionKey", 12)
                 ? -1
                 : 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (kte_buf_append(out, data_key.data, data_key.len) ||
            put_head(out, cbor_encode_bytestring_start, w[i].len) ||
            kte_buf_append(out, w[i].data, w[i].len) ||
            kte_buf_append(out, pk_key.data, pk_key.len) || put_text(out, w[i].pk, w[i].pk_len))
            rc = -1;
    kte_buf_free(&data_key);
    kte_buf_free(&pk_key);
    if (rc)
        return -1;
    return put_text(out, arn ? "StreamARN" : "StreamName", arn ? 9 : 10) ||
                   put_text(out, stream, stream_len)
               ? -1
               : 0;
}

/* ---- answers ---------------------------------------------------------- */

/* What libcbor's decoder saw in one call: exactly one item head (or a whole
 * definite-length string). Its callbacks only note it here. */
enum item {
    IT_NONE = 0,
    IT_VALUE, /* negative integer, float, bool, null, undefined, simple value */
    IT_UINT,  /* unsigned integer: its value in len */
    IT_TEXT,
    IT_BYTES,
    IT_TEXT_START, /* indefinite-length text: chunks follow, then a break */
    IT_BYTES_START,
    IT_ARRAY,
    IT_ARRAY_INDEF,
    IT_MAP,
    IT_MAP_INDEF,
    IT_TAG,
    IT_BREAK,
};

struct item_seen {
    enum item kind;
    cbor_data data;
    uint64_t len; /* string bytes or container entries */
};

static void seen(void *ctx, enum item kind, cbor_data data, uint64_t len)
{
    struct item_seen *s = ctx;
    s->kind = kind;
    s->data = data;
    s->len = len;
}

/* Unsigned integers keep their value (FailedRecordCount is one); negative
 * ones are reported as null like the other values. */
static void on_u8(void *ctx, uint8_t v)
{
    seen(ctx, IT_UINT, NULL, v);
}
static void on_u16(void *ctx, uint16_t v)
{
    seen(ctx, IT_UINT, NULL, v);
}
static void on_u32(void *ctx, uint32_t v)
{
    seen(ctx, IT_UINT, NULL, v);
}
static void on_u64(void *ctx, uint64_t v)
{
    seen(ctx, IT_UINT, NULL, v);
}
static void on_neg8(void *ctx, uint8_t v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_neg16(void *ctx, uint16_t v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_neg32(void *ctx, uint32_t v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_neg64(void *ctx, uint64_t v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_tag(void *ctx, uint64_t v)
{
    (void)v;
    seen(ctx, IT_TAG, NULL, 0);
}
static void on_simple(void *ctx)
{
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_float(void *ctx, float v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_double(void *ctx, double v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_bool(void *ctx, bool v)
{
    (void)v;
    seen(ctx, IT_VALUE, NULL, 0);
}
static void on_text(void *ctx, cbor_data d, cbor_len_t n)
{
    seen(ctx, IT_TEXT, d, n);
}
static void on_bytes(void *ctx, cbor_data d, cbor_len_t n)
{
    seen(ctx, IT_BYTES, d, n);
}
static void on_text_start(void *ctx)
{
    seen(ctx, IT_TEXT_START, NULL, 0);
}
static void on_bytes_start(void *ctx)
{
    seen(ctx, IT_BYTES_START, NULL, 0);
}
static void on_array(void *ctx, cbor_len_t n)
{
    seen(ctx, IT_ARRAY, NULL, n);
}
static void on_array_indef(void *ctx)
{
    seen(ctx, IT_ARRAY_INDEF, NULL, 0);
}
static void on_map(void *ctx, cbor_len_t n)
{
    seen(ctx, IT_MAP, NULL, n);
}
static void on_map_indef(void *ctx)
{
    seen(ctx, IT_MAP_INDEF, NULL, 0);
}
static void on_break(void *ctx)
{
    seen(ctx, IT_BREAK, NULL, 0);
}

static const struct cbor_callbacks item_callbacks = {
    .uint8 = on_u8,
    .uint16 = on_u16,
    .uint32 = on_u32,
    .uint64 = on_u64,
    .negint8 = on_neg8,
    .negint16 = on_neg16,
    .negint32 = on_neg32,
    .negint64 = on_neg64,
    .byte_string_start = on_bytes_start,
    .byte_string = on_bytes,
    .string = on_text,
    .string_start = on_text_start,
    .indef_array_start = on_array_indef,
    .array_start = on_array,
    .indef_map_start = on_map_indef,
    .map_start = on_map,
    .tag = on_tag,
    .float2 = on_float,
    .float4 = on_float,
    .float8 = on_double,
    .undefined = on_simple,
    .null = on_simple,
    .boolean = on_bool,
    .indef_break = on_break,
};

enum frame_kind { FR_ARRAY, FR_MAP, FR_TEXT, FR_BYTES };

struct frame {
    enum frame_kind kind;
    bool indefinite;
    bool want_value; /* maps: the next item is a value (else a key) */
    uint64_t left;   /* definite containers: items still to come (a map's keys and values) */
};

struct walk {
    const yajl_callbacks *cb;
    void *ctx;
    uint64_t *array_len; /* where an array's length goes, or NULL */
    struct frame st[KTE_CBOR_MAX_DEPTH];
    int depth;
    bool done;   /* the top-level item is complete */
    bool tagged; /* the last item was a tag: a data item must follow */
    char text[KTE_CBOR_TEXT_MAX];
    size_t text_len;
    const char *why; /* the failure, for err */
};

static int fail(struct walk *w, const char *why)
{
    w->why = why;
    return -1;
}

static bool at_key(const struct walk *w)
{
    return w->depth > 0 && w->st[w->depth - 1].kind == FR_MAP && !w->st[w->depth - 1].want_value;
}

static int push(struct walk *w, enum frame_kind kind, bool indefinite, uint64_t left)
{
    if (w->depth == KTE_CBOR_MAX_DEPTH)
        return fail(w, "nested too deeply");
    w->st[w->depth++] = (struct frame){kind, indefinite, false, left};
    return 0;
}

/* One item of the current container is complete: count it, and close every
 * definite container that this completes. */
static int item_done(struct walk *w)
{
    while (w->depth > 0) {
        struct frame *f = &w->st[w->depth - 1];
        if (f->kind == FR_MAP)
            f->want_value = !f->want_value;
        if (f->indefinite || --f->left > 0)
            return 0;
        w->depth--;
        int ok = f->kind == FR_MAP ? (!w->cb->yajl_end_map || w->cb->yajl_end_map(w->ctx))
                                   : (!w->cb->yajl_end_array || w->cb->yajl_end_array(w->ctx));
        if (!ok)
            return fail(w, "cancelled");
    }
    w->done = true;
    return 0;
}

/* RFC 3629 UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): CBOR text must be, and yajl checks as much of JSON text. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII eight bytes at a time: an answer's 500 sequence numbers and
         * shard ids are all ASCII. */
        uint64_t word;
        while (n - i >= sizeof word) {
            memcpy(&word, s + i, sizeof word);
            if (word & 0x8080808080808080u)
                break;
            i += sizeof word;
        }
        if (i == n)
            break;
        /* Fewer than eight left: the string's last eight bytes as one word
         * (re-reading some checked ones) when the string has that many. */
        if (n - i < sizeof word && n >= sizeof word) {
            memcpy(&word, s + n - sizeof word, sizeof word);
            if (!(word & 0x8080808080808080u))
                break;
        }
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3, cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* A complete text: a key or a string value. */
static int text_done(struct walk *w, const unsigned char *s, size_t n)
{
    int ok;
    if (at_key(w))
        ok = !w->cb->yajl_map_key || w->cb->yajl_map_key(w->ctx, s, n);
    else
        ok = !w->cb->yajl_string || w->cb->yajl_string(w->ctx, s, n);
    return ok ? item_done(w) : fail(w, "cancelled");
}

static int value_done(struct walk *w)
{
    if (at_key(w))
        return fail(w, "a map key is not text");
    if (w->cb->yajl_null && !w->cb->yajl_null(w->ctx))
        return fail(w, "cancelled");
    return item_done(w);
}

/* An unsigned integer, as yajl reports a JSON number: its decimal text. */
static int uint_done(struct walk *w, uint64_t v)
{
    if (!w->cb->yajl_number)
        return value_done(w);
    if (at_key(w))
        return fail(w, "a map key is not text");
    char text[KTE_U64_DECIMAL_MAX];
    if (!w->cb->yajl_number(w->ctx, text, kte_u64_decimal(v, text)))
        return fail(w, "cancelled");
    return item_done(w);
}

/* Chunks of an indefinite-length string, up to its break. */
static int string_chunk(struct walk *w, const struct item_seen *it)
{
    struct frame *f = &w->st[w->depth - 1];
    if (it->kind == IT_BREAK) {
        bool text = f->kind == FR_TEXT;
        w->depth--;
        return text ? text_done(w, (const unsigned char *)w->text, w->text_len) : value_done(w);
    }
    if (it->kind != (f->kind == FR_TEXT ? IT_TEXT : IT_BYTES))
        return fail(w, "an indefinite-length string holds something else than its chunks");
    if (f->kind == FR_TEXT) {
        if (!utf8_valid(it->data, (size_t)it->len))
            return fail(w, "text that is not UTF-8");
        size_t room = sizeof w->text - w->text_len;
        size_t k = it->len < room ? (size_t)it->len : room;
        memcpy(w->text + w->text_len, it->data, k);
        w->text_len += k;
    }
    return 0;
}

static int container(struct walk *w, const struct item_seen *it, size_t bytes_left)
{
    bool map = it->kind == IT_MAP || it->kind == IT_MAP_INDEF;
    bool indefinite = it->kind == IT_MAP_INDEF || it->kind == IT_ARRAY_INDEF;
    if (at_key(w))
        return fail(w, "a map key is not text");
    /* Every item takes at least a byte: a claim beyond the body is false. */
    if (!indefinite && (it->len > bytes_left || (map && it->len * 2 > bytes_left)))
        return fail(w, "a container claims more items than the body holds");
    if (!map && w->array_len)
        *w->array_len = indefinite ? KTE_CBOR_INDEFINITE : it->len;
    int ok = map ? (!w->cb->yajl_start_map || w->cb->yajl_start_map(w->ctx))
                 : (!w->cb->yajl_start_array || w->cb->yajl_start_array(w->ctx));
    if (!ok)
        return fail(w, "cancelled");
    if (push(w, map ? FR_MAP : FR_ARRAY, indefinite, map ? it->len * 2 : it->len))
        return -1;
    if (indefinite || it->len > 0)
        return 0;
    /* Empty: closed at once, as item_done closes a container on its last item. */
    w->st[w->depth - 1].left = 1;
    w->st[w->depth - 1].want_value = true; /* item_done flips it back for a map */
    return item_done(w);
}

static int step(struct walk *w, const struct item_seen *it, size_t bytes_left)
{
    if (w->depth > 0 &&
        (w->st[w->depth - 1].kind == FR_TEXT || w->st[w->depth - 1].kind == FR_BYTES))
        return string_chunk(w, it);
    bool tagged = w->tagged;
    w->tagged = it->kind == IT_TAG;
    switch (it->kind) {
    case IT_TAG:
        return 0; /* tags qualify the next item; its value is what counts */
    case IT_VALUE:
    case IT_BYTES:
        return value_done(w);
    case IT_UINT:
        return uint_done(w, it->len);
    case IT_TEXT:
        if (!utf8_valid(it->data, (size_t)it->len))
            return fail(w, "text that is not UTF-8");
        return text_done(w, it->data, (size_t)it->len);
    case IT_TEXT_START:
    case IT_BYTES_START:
        if (it->kind == IT_BYTES_START && at_key(w))
            return fail(w, "a map key is not text");
        w->text_len = 0;
        return push(w, it->kind == IT_TEXT_START ? FR_TEXT : FR_BYTES, true, 0);
    case IT_ARRAY:
    case IT_ARRAY_INDEF:
    case IT_MAP:
    case IT_MAP_INDEF:
        return container(w, it, bytes_left);
    case IT_BREAK: {
        struct frame *f = w->depth > 0 ? &w->st[w->depth - 1] : NULL;
        if (!f || !f->indefinite || (f->kind == FR_MAP && f->want_value) || tagged)
            return fail(w, "a break outside an indefinite-length container, or after a key or tag");
        w->depth--;
        int ok = f->kind == FR_MAP ? (!w->cb->yajl_end_map || w->cb->yajl_end_map(w->ctx))
                                   : (!w->cb->yajl_end_array || w->cb->yajl_end_array(w->ctx));
        return ok ? item_done(w) : fail(w, "cancelled");
    }
    case IT_NONE:
        break;
    }
    return fail(w, "an item the decoder did not report");
}

int kte_cbor_walk(const unsigned char *body, size_t len, const yajl_callbacks *cb, void *ctx,
                  uint64_t *array_len, char *err, size_t errlen)
{
    struct walk w = {.cb = cb, .ctx = ctx, .array_len = array_len};
    size_t pos = 0;
    while (!w.done) {
        if (pos >= len) {
            snprintf(err, errlen, "CBOR: truncated at byte %zu", pos);
            return -1;
        }
        struct item_seen it = {0};
        struct cbor_decoder_result r =
            cbor_stream_decode(body + pos, len - pos, &item_callbacks, &it);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > len - pos) {
            snprintf(err, errlen, "CBOR: %s at byte %zu",
                     r.status == CBOR_DECODER_NEDATA ? "truncated" : "malformed", pos);
            return -1;
        }
        pos += r.read;
        if (step(&w, &it, len - pos) != 0) {
            snprintf(err, errlen, "CBOR: %s at byte %zu", w.why, pos - r.read);
            return -1;
        }
    }
    if (pos != len) {
        snprintf(err, errlen, "CBOR: %zu bytes after the answer", len - pos);
        return -1;
    }
    return 0;
}

#endif
