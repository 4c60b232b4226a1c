#include "kte_agg.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "kte_send.h"

static const unsigned char kpl_magic[4] = {0xF3, 0x89, 0x9A, 0xC2};
#define KPL_MD5_LEN   16
#define RANDOM_PK_LEN 16

/* Protocol buffers by hand: an aggregate needs two length-delimited fields
 * and one varint, written once and never parsed. protobuf-c would add a code
 * generator to the build and a runtime library to the static layer for
 * these few lines; the tests check the output against blobs made by the
 * real KPL and decode ours with AWS's own deaggregator. */
static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static int put_varint(struct kte_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return kte_buf_append(b, tmp, n);
}

/* A length-delimited field: tag byte (field << 3 | 2), length, bytes. */
static int put_bytes_field(struct kte_buf *b, unsigned field, const void *p, size_t n)
{
    unsigned char tag = (unsigned char)(field << 3 | 2);
    return kte_buf_append(b, &tag, 1) || put_varint(b, n) || kte_buf_append(b, p, n);
}

/* Record{partition_key_index=1 (varint); data=3 (bytes)}: its length. */
static size_t kpl_record_len(uint64_t pk_index, size_t data_len)
{
    return 1 + varint_len(pk_index) + 1 + varint_len(data_len) + data_len;
}

static int put_kpl_record(struct kte_buf *b, uint64_t pk_index, const char *data, size_t len)
{
    unsigned char tag_records = 3 << 3 | 2, tag_index = 1 << 3 | 0;
    return kte_buf_append(b, &tag_records, 1) || put_varint(b, kpl_record_len(pk_index, len)) ||
           kte_buf_append(b, &tag_index, 1) || put_varint(b, pk_index) ||
           put_bytes_field(b, 3, data, len);
}

static int put_md5_of(struct kte_buf *b, size_t from)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (kte_buf_reserve(b, KPL_MD5_LEN) ||
        !EVP_Digest(b->data + from, b->len - from, md, &mdlen, EVP_md5(), NULL) ||
        mdlen != KPL_MD5_LEN)
        return -1;
    return kte_buf_append(b, md, KPL_MD5_LEN);
}

static bool same_key(const struct kte_agg_item *a, const struct kte_agg_item *b)
{
    return a->pk_len == b->pk_len && !memcmp(a->pk, b->pk, a->pk_len);
}

/* The first item with items[i]'s key. */
static size_t first_use(const struct kte_agg_item *items, size_t i)
{
    size_t j = 0;
    while (!same_key(&items[j], &items[i]))
        j++;
    return j;
}

int kte_agg_kpl_encode(struct kte_buf *out, const struct kte_agg_item *items, size_t n)
{
    if (kte_buf_append(out, kpl_magic, sizeof kpl_magic))
        return -1;
    size_t start = out->len;
    /* The key table, in order of first use (quadratic: a test helper and
     * the one-key aggregates of the sender use it on few keys). */
    for (size_t i = 0; i < n; i++)
        if (first_use(items, i) == i && put_bytes_field(out, 1, items[i].pk, items[i].pk_len))
            return -1;
    for (size_t i = 0; i < n; i++) {
        size_t first = first_use(items, i);
        uint64_t index = 0;
        for (size_t j = 0; j < first; j++)
            index += first_use(items, j) == j;
        if (put_kpl_record(out, index, items[i].data, items[i].data_len))
            return -1;
    }
    return put_md5_of(out, start);
}

/* ---- grouping --------------------------------------------------------- */

/* The record being filled: its key and its size (data + key). */
struct group {
    bool open;
    const char *pk;
    size_t pk_len;
    size_t size;
};

static size_t key_len(const struct kte_framer *f, const struct kte_rec *r)
{
    return f->random_pk ? RANDOM_PK_LEN : r->pk_len;
}

/* Size of a new record of format fmt holding data_len bytes of one event
 * alone, under a key of k bytes. */
static size_t lone_size_of(enum kte_record_format fmt, size_t k, size_t data_len)
{
    switch (fmt) {
    case KTE_FORMAT_KPL:
        return sizeof kpl_magic + 1 + varint_len(k) + k + 1 +
               varint_len(kpl_record_len(0, data_len)) + kpl_record_len(0, data_len) + KPL_MD5_LEN +
               k;
    case KTE_FORMAT_NDJSON:
        return data_len + 1 + k;
    case KTE_FORMAT_EVENT:
    default:
        return data_len + k;
    }
}

/* Size of a new record holding r alone. */
static size_t lone_size(const struct kte_framer *f, const struct kte_rec *r)
{
    return lone_size_of(f->fmt, key_len(f, r), r->data_len);
}

/* What r adds to an open group it may join; 0 when it must not join. */
static size_t join_growth(const struct kte_framer *f, const struct group *g,
                          const struct kte_rec *r)
{
    if (!g->open || f->fmt == KTE_FORMAT_EVENT)
        return 0;
    if (!f->random_pk && (g->pk_len != r->pk_len || memcmp(g->pk, r->pk, r->pk_len)))
        return 0;
    size_t add = f->fmt == KTE_FORMAT_KPL ? 1 + varint_len(kpl_record_len(0, r->data_len)) +
                                                kpl_record_len(0, r->data_len)
                                          : r->data_len + 1;
    return g->size + add <= f->group_bytes ? add : 0;
}

/* What compression can add to n bytes at worst. */
static size_t compress_slack(enum kte_compression kind, size_t n)
{
    return kte_compress_bound(kind, n) - n;
}

size_t kte_agg_overhead(const struct kte_config *cfg, size_t pk_len)
{
    /* Varint lengths sized for the largest envelope (up to 2^30 bytes). It
     * runs for every event: no framer is built for it. */
    size_t big = (size_t)1 << 30;
    return lone_size_of(cfg->record_format, pk_len, big) - big - pk_len +
           compress_slack(cfg->compression, (size_t)cfg->max_record_bytes);
}

void kte_framer_init(struct kte_framer *f, const struct kte_config *cfg)
{
    memset(f, 0, sizeof *f);
    f->fmt = cfg->record_format;
    f->random_pk = cfg->record_format != KTE_FORMAT_EVENT && cfg->partition_key == KTE_PK_RANDOM;
    f->target_bytes = KTE_AGG_TARGET_BYTES < (size_t)cfg->max_record_bytes
                          ? KTE_AGG_TARGET_BYTES
                          : (size_t)cfg->max_record_bytes;
    f->max_request = (size_t)cfg->max_request_bytes;
    f->group_bytes = f->target_bytes;
    size_t slack = 256 + compress_slack(cfg->compression, (size_t)cfg->max_record_bytes);
    f->raw_cap = (size_t)cfg->max_record_bytes > slack + f->target_bytes
                     ? (size_t)cfg->max_record_bytes - slack
                     : f->target_bytes;
    kte_compressor_init(&f->comp, cfg->compression);
    kte_buf_init(&f->scratch);
    f->max_events =
        cfg->record_format == KTE_FORMAT_EVENT ? KTE_BATCH_MAX_RECORDS : KTE_BATCH_MAX_EVENTS;
    kte_buf_init(&f->arena);
}

void kte_framer_free(struct kte_framer *f)
{
    kte_buf_free(&f->arena);
    kte_buf_free(&f->scratch);
    kte_compressor_free(&f->comp);
}

/* Adds r to the plan; returns false (nothing changed) when the call is full. */
static bool plan_step(const struct kte_framer *f, struct group *g, size_t *records, size_t *bytes,
                      size_t events, const struct kte_rec *r, size_t max_records)
{
    if (events >= f->max_events)
        return false;
    size_t add = join_growth(f, g, r);
    if (add) {
        if (*bytes + add > f->max_request)
            return false;
        g->size += add;
        *bytes += add;
        return true;
    }
    size_t sz = lone_size(f, r);
    if (*records >= max_records || (events > 0 && *bytes + sz > f->max_request))
        return false;
    *g = (struct group){true, r->pk, r->pk_len, sz};
    (*records)++;
    *bytes += sz;
    return true;
}

size_t kte_framer_plan_max(const struct kte_framer *f, const struct kte_rec *head,
                           size_t max_records)
{
    if (max_records < 1)
        max_records = 1;
    if (max_records > KTE_BATCH_MAX_RECORDS)
        max_records = KTE_BATCH_MAX_RECORDS;
    struct group g = {0};
    size_t records = 0, bytes = 0, n = 0;
    for (const struct kte_rec *r = head; r && plan_step(f, &g, &records, &bytes, n, r, max_records);
         r = r->next)
        n++;
    return n;
}

size_t kte_framer_plan(const struct kte_framer *f, const struct kte_rec *head)
{
    return kte_framer_plan_max(f, head, KTE_BATCH_MAX_RECORDS);
}

static void random_key(uint64_t *rng, char out[RANDOM_PK_LEN + 1])
{
    snprintf(out, RANDOM_PK_LEN + 1, "%016llx", (unsigned long long)kte_send_random(rng));
}

/* Writes the grouped record of recs[first .. first + count) into the arena;
 * its data and key are offsets until the arena stops moving. */
static int emit(struct kte_framer *f, struct kte_rec *const *recs, size_t first, size_t count,
                uint64_t *rng)
{
    struct kte_wire *w = &f->wires[f->nwires++];
    char key[RANDOM_PK_LEN + 1];
    const char *pk = recs[first]->pk;
    size_t pk_len = recs[first]->pk_len;
    if (f->random_pk) {
        random_key(rng, key);
        pk = key;
        pk_len = RANDOM_PK_LEN;
    }
    struct kte_buf *a = &f->arena;
    size_t off = a->len;
    if (f->fmt == KTE_FORMAT_KPL) {
        if (kte_buf_append(a, kpl_magic, sizeof kpl_magic) || put_bytes_field(a, 1, pk, pk_len))
            return -1;
        for (size_t i = first; i < first + count; i++)
            if (put_kpl_record(a, 0, recs[i]->data, recs[i]->data_len))
                return -1;
        if (put_md5_of(a, off + sizeof kpl_magic))
            return -1;
    } else if (f->fmt == KTE_FORMAT_EVENT) {
        if (kte_compress(&f->comp, a, recs[first]->data, recs[first]->data_len))
            return -1;
    } else {
        /* Joined, then compressed (when compressing) as one piece. */
        struct kte_buf *j = f->comp.kind == KTE_COMPRESSION_NONE ? a : &f->scratch;
        if (j != a)
            kte_buf_reset(j);
        for (size_t i = first; i < first + count; i++)
            if (kte_buf_append(j, recs[i]->data, recs[i]->data_len) || kte_buf_append(j, "\n", 1))
                return -1;
        if (j != a && kte_compress(&f->comp, a, j->data, j->len))
            return -1;
    }
    size_t pk_off = a->len;
    if (kte_buf_append(a, pk, pk_len))
        return -1;
    *w = (struct kte_wire){(const char *)(uintptr_t)off,
                           pk_off - off,
                           (const char *)(uintptr_t)pk_off,
                           pk_len,
                           first,
                           count};
    return 0;
}

/* Compressed ndjson: groups as large as should compress to about 90% of the
 * target, judged by this call's ratio (envelopes of one function compress
 * alike from call to call). Only calls of some size teach anything. */
static void adapt_group_size(struct kte_framer *f, size_t raw, size_t packed)
{
    if (f->fmt != KTE_FORMAT_NDJSON || f->comp.kind == KTE_COMPRESSION_NONE || raw < 4096 ||
        !packed)
        return;
    double want = (double)f->target_bytes * 0.9 * (double)raw / (double)packed;
    size_t g = want > (double)f->raw_cap ? f->raw_cap : (size_t)want;
    f->group_bytes = g < f->target_bytes ? f->target_bytes : g;
}

int kte_framer_build(struct kte_framer *f, struct kte_rec *const *recs, size_t n, uint64_t *rng)
{
    f->nwires = 0;
    kte_buf_reset(&f->arena);
    if (f->fmt == KTE_FORMAT_EVENT && f->comp.kind == KTE_COMPRESSION_NONE) {
        /* No copy: each record is an envelope as queued. */
        for (size_t i = 0; i < n && i < KTE_BATCH_MAX_RECORDS; i++)
            f->wires[f->nwires++] = (struct kte_wire){
                recs[i]->data, recs[i]->data_len, recs[i]->pk, recs[i]->pk_len, i, 1};
        return 0;
    }
    struct group g = {0};
    size_t records = 0, bytes = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        size_t before = records;
        /* The plan made room for these events; the check repeats its cuts. */
        if (!plan_step(f, &g, &records, &bytes, i, recs[i], KTE_BATCH_MAX_RECORDS) ||
            (records != before && i > 0 && emit(f, recs, first, i - first, rng)))
            return -1;
        if (records != before)
            first = i;
    }
    if (n && emit(f, recs, first, n - first, rng))
        return -1;
    size_t raw = 0, packed = 0;
    for (size_t w = 0; w < f->nwires; w++) {
        f->wires[w].data = f->arena.data + (uintptr_t)f->wires[w].data;
        f->wires[w].pk = f->arena.data + (uintptr_t)f->wires[w].pk;
        packed += f->wires[w].len;
    }
    for (size_t i = 0; i < n; i++)
        raw += recs[i]->data_len + 1;
    adapt_group_size(f, raw, packed);
    return 0;
}
