/* Record formats: KPL aggregates byte for byte against a blob the real KPL
 * made, and the sender's grouping (cuts at key change, size, call limits). */
#include "kte_agg.h"
#include "kte_config.h"
#include "kte_queue.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/random.h>
#include <yajl/yajl_tree.h>
#include <zlib.h>
#include <zstd.h>

#include "kte_test_util.h"

static const char *str_at(yajl_val v, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val s = yajl_tree_get(v, path, yajl_t_string);
    return s ? YAJL_GET_STRING(s) : NULL;
}

/* The real KPL's aggregate of 8 records with 8 keys and no explicit hash
 * keys: our encoder must write the same bytes (key table in order of first
 * use, indexes as varints, MD5 of the protobuf message). */
static void test_encoder_matches_real_kpl(void **state)
{
    (void)state;
    char *json = kt_must_read(
        KT_FIXTURES "/kpl/aggregate.real-kpl.8-records.no-explicit-hash-keys.json", NULL);
    yajl_val root = yajl_tree_parse(json, NULL, 0);
    assert_non_null(root);
    const char *up[] = {"user_records", NULL};
    yajl_val recs = yajl_tree_get(root, up, yajl_t_array);
    assert_non_null(recs);
    size_t n = YAJL_GET_ARRAY(recs)->len;
    assert_int_equal(n, 8);
    struct kte_agg_item items[8];
    for (size_t i = 0; i < n; i++) {
        yajl_val r = YAJL_GET_ARRAY(recs)->values[i];
        items[i].pk = str_at(r, "partition_key");
        items[i].pk_len = strlen(items[i].pk);
        items[i].data = str_at(r, "data_utf8");
        items[i].data_len = strlen(items[i].data);
    }
    const char *b64 = str_at(root, "expected_aggregated_record_base64");
    unsigned char *want = malloc(strlen(b64));
    size_t want_len = 0;
    assert_int_equal(kt_b64_decode(b64, strlen(b64), want, strlen(b64), &want_len), 0);

    struct kte_buf out;
    kte_buf_init(&out);
    assert_int_equal(kte_agg_kpl_encode(&out, items, n), 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    /* The same key twice: one table entry, index 0 for both. */
    struct kte_agg_item two[3] = {items[0], items[1], items[0]};
    kte_buf_reset(&out);
    assert_int_equal(kte_agg_kpl_encode(&out, two, 3), 0);
    assert_int_equal(out.len, 4 + 2 * (2 + 36) + (2 + 2 + 2 + two[0].data_len) +
                                  (2 + 2 + 2 + two[1].data_len) + (2 + 2 + 2 + two[2].data_len) +
                                  16);
    kte_buf_free(&out);
    free(want);
    yajl_tree_free(root);
    free(json);
}

static struct kte_rec *mk(uint64_t seq, const char *pk, size_t data_len)
{
    size_t pk_len = strlen(pk);
    struct kte_rec *r = calloc(1, sizeof *r + data_len + pk_len + 1);
    r->seq = seq;
    r->data_len = (uint32_t)data_len;
    r->pk_len = (uint32_t)pk_len;
    memset(r->data, 'a' + (int)(seq % 26), data_len);
    r->pk = r->data + data_len;
    memcpy(r->pk, pk, pk_len + 1);
    return r;
}

static void cfg_for(struct kte_config *cfg, enum kte_record_format fmt, enum kte_partition_key pk)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->record_format = fmt;
    cfg->partition_key = pk;
    cfg->max_record_bytes = 1048576;
    cfg->max_request_bytes = 5 * 1048576;
}

/* A queue's list of the records, for the planner. */
static void link_all(struct kte_rec **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i]->next = i + 1 < n ? v[i + 1] : NULL;
}

static void free_all(struct kte_rec **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
}

/* Each grouped record must equal the general encoder's aggregate of its
 * events (which the test above ties to the real KPL). */
static void test_kpl_groups_by_key_and_matches_encoder(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_KPL, KTE_PK_ENVIRONMENT);
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    const char *keys[] = {"A", "A", "A", "B", "A", "A"};
    struct kte_rec *v[6];
    for (size_t i = 0; i < 6; i++)
        v[i] = mk(i + 1, keys[i], 100 + i);
    link_all(v, 6);
    assert_int_equal(kte_framer_plan(&f, v[0]), 6);
    uint64_t rng = 1;
    assert_int_equal(kte_framer_build(&f, v, 6, &rng), 0);
    assert_int_equal(f.nwires, 3); /* cut at each key change */
    const size_t first[] = {0, 3, 4}, count[] = {3, 1, 2};
    for (size_t w = 0; w < 3; w++) {
        assert_int_equal(f.wires[w].first, first[w]);
        assert_int_equal(f.wires[w].count, count[w]);
        assert_int_equal(f.wires[w].pk_len, 1);
        assert_memory_equal(f.wires[w].pk, keys[first[w]], 1);
        struct kte_agg_item items[3];
        for (size_t i = 0; i < count[w]; i++) {
            const struct kte_rec *r = v[first[w] + i];
            items[i] = (struct kte_agg_item){r->pk, r->pk_len, r->data, r->data_len};
        }
        struct kte_buf want;
        kte_buf_init(&want);
        assert_int_equal(kte_agg_kpl_encode(&want, items, count[w]), 0);
        assert_int_equal(f.wires[w].len, want.len);
        assert_memory_equal(f.wires[w].data, want.data, want.len);
        kte_buf_free(&want);
    }
    free_all(v, 6);
    kte_framer_free(&f);
}

/* Aggregates are cut before they pass one PUT payload unit (25,000 bytes
 * of data and key); with random keys, each aggregate gets its own key. */
static void test_kpl_cuts_at_target_size_random_keys(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_KPL, KTE_PK_RANDOM);
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    enum { N = 1000 };
    static struct kte_rec *v[N];
    char key[17];
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "%016zx", i); /* per-event random keys at intake */
        v[i] = mk(i + 1, key, 240);
    }
    link_all(v, N);
    assert_int_equal(kte_framer_plan(&f, v[0]), N);
    uint64_t rng = 12345;
    assert_int_equal(kte_framer_build(&f, v, N, &rng), 0);
    /* 240 + 8 bytes per event (records tag, 2-byte length, index field, data
     * tag, 2-byte length) after a 4 + 18 + 16 byte frame and a 16-byte key:
     * (25000 - 54) / 248 = 100 events per aggregate. */
    assert_int_equal(f.wires[0].count, 100);
    size_t total = 0;
    for (size_t w = 0; w < f.nwires; w++) {
        assert_true(f.wires[w].len + f.wires[w].pk_len <= KTE_AGG_TARGET_BYTES);
        if (w + 1 < f.nwires)
            assert_true(f.wires[w].len + f.wires[w].pk_len + 248 > KTE_AGG_TARGET_BYTES);
        assert_int_equal(f.wires[w].first, total);
        total += f.wires[w].count;
        assert_int_equal(f.wires[w].pk_len, 16);
        if (w)
            assert_memory_not_equal(f.wires[w].pk, f.wires[w - 1].pk, 16);
    }
    assert_int_equal(total, N);
    assert_int_equal(f.nwires, N / 100);
    free_all(v, N);
    kte_framer_free(&f);
}

/* A call holds at most 500 records and KTE_MAX_REQUEST_BYTES; a lone event
 * too large to share an aggregate still goes, alone. */
static void test_plan_limits(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_KPL, KTE_PK_ENVIRONMENT);
    cfg.max_request_bytes = 1048576;
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    enum { N = 700 };
    static struct kte_rec *v[N];
    for (size_t i = 0; i < N; i++)
        v[i] = mk(i + 1, i % 2 ? "odd" : "even", 10); /* alternating keys: one record each */
    link_all(v, N);
    assert_int_equal(kte_framer_plan(&f, v[0]), 500);
    free_all(v, N);

    struct kte_rec *big[3] = {mk(1, "k", 600000), mk(2, "k", 600000), mk(3, "k", 10)};
    link_all(big, 3);
    assert_int_equal(kte_framer_plan(&f, big[0]), 1); /* two would pass 1 MiB */
    assert_int_equal(kte_framer_plan(&f, big[1]), 2); /* the small one joins... a new record */
    uint64_t rng = 1;
    assert_int_equal(kte_framer_build(&f, big + 1, 2, &rng), 0);
    assert_int_equal(f.nwires, 2); /* the big one fills its aggregate past the target */
    assert_true(f.wires[0].len <= 600000 + kte_agg_overhead(&cfg, 1));
    free_all(big, 3);
    kte_framer_free(&f);
}

/* Paced calls (kte_pace) carry at most max_records Kinesis records: whole
 * records, however many events share one; 0 still takes one, more than 500
 * still stops at 500. */
static void test_plan_max_caps_records_not_events(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_KPL, KTE_PK_ENVIRONMENT);
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    const char *keys[] = {"A", "A", "A", "B", "A", "A"}; /* records: AAA | B | AA */
    struct kte_rec *v[6];
    for (size_t i = 0; i < 6; i++)
        v[i] = mk(i + 1, keys[i], 100);
    link_all(v, 6);
    assert_int_equal(kte_framer_plan_max(&f, v[0], 1), 3);
    assert_int_equal(kte_framer_plan_max(&f, v[0], 2), 4);
    assert_int_equal(kte_framer_plan_max(&f, v[0], 3), 6);
    assert_int_equal(kte_framer_plan_max(&f, v[0], 0), 3);
    free_all(v, 6);
    kte_framer_free(&f);

    cfg_for(&cfg, KTE_FORMAT_EVENT, KTE_PK_ENVIRONMENT);
    kte_framer_init(&f, &cfg);
    enum { N = 600 };
    static struct kte_rec *e[N];
    for (size_t i = 0; i < N; i++)
        e[i] = mk(i + 1, "k", 10);
    link_all(e, N);
    assert_int_equal(kte_framer_plan_max(&f, e[0], 7), 7);
    assert_int_equal(kte_framer_plan_max(&f, e[0], SIZE_MAX), 500);
    free_all(e, N);
    kte_framer_free(&f);
}

static void test_ndjson_and_event(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_NDJSON, KTE_PK_ENVIRONMENT);
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    struct kte_rec *v[3] = {mk(1, "k", 3), mk(2, "k", 4), mk(3, "j", 2)};
    link_all(v, 3);
    uint64_t rng = 1;
    assert_int_equal(kte_framer_plan(&f, v[0]), 3);
    assert_int_equal(kte_framer_build(&f, v, 3, &rng), 0);
    assert_int_equal(f.nwires, 2);
    assert_int_equal(f.wires[0].len, 9);
    assert_memory_equal(f.wires[0].data, "bbb\ncccc\n", 9);
    assert_memory_equal(f.wires[1].data, "dd\n", 3);
    assert_memory_equal(f.wires[1].pk, "j", 1);

    kte_framer_free(&f);
    cfg_for(&cfg, KTE_FORMAT_EVENT, KTE_PK_RANDOM);
    kte_framer_init(&f, &cfg);
    assert_int_equal(kte_framer_build(&f, v, 3, &rng), 0);
    assert_int_equal(f.nwires, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_ptr_equal(f.wires[i].data, v[i]->data); /* no copy: today's records */
        assert_ptr_equal(f.wires[i].pk, v[i]->pk);
    }
    free_all(v, 3);
    kte_framer_free(&f);
}

/* The overhead the envelope leaves free covers the largest lone aggregate. */
static void test_overhead_bounds_a_lone_record(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_EVENT, KTE_PK_ENVIRONMENT);
    assert_int_equal(kte_agg_overhead(&cfg, 32), 0);
    cfg_for(&cfg, KTE_FORMAT_NDJSON, KTE_PK_ENVIRONMENT);
    assert_int_equal(kte_agg_overhead(&cfg, 32), 1);
    cfg_for(&cfg, KTE_FORMAT_KPL, KTE_PK_ENVIRONMENT);
    struct kte_framer f;
    kte_framer_init(&f, &cfg);
    size_t room = 1048576 - 32 - kte_agg_overhead(&cfg, 32);
    struct kte_rec *r = mk(1, "0123456789abcdef0123456789abcdef", room);
    uint64_t rng = 1;
    assert_int_equal(kte_framer_build(&f, &r, 1, &rng), 0);
    assert_true(f.wires[0].len + f.wires[0].pk_len <= 1048576);
    free(r);
    kte_framer_free(&f);
}

/* Decompresses with the libraries' own readers (gzip member / zstd frame). */
static size_t inflate_all(enum kte_compression kind, const char *in, size_t len, char *out,
                          size_t cap)
{
    if (kind == KTE_COMPRESSION_ZSTD) {
        size_t n = ZSTD_decompress(out, cap, in, len);
        assert_false(ZSTD_isError(n));
        return n;
    }
    assert_memory_equal(in, "\x1f\x8b", 2);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 16 + 15), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0);
    size_t n = cap - zs.avail_out;
    inflateEnd(&zs);
    return n;
}

/* An envelope-like record: compressible JSON text. */
static struct kte_rec *mk_json(uint64_t seq, const char *pk)
{
    char text[400];
    int n = snprintf(text, sizeof text,
                     "{\"kte\":1,\"environment\":\"0123456789abcdef0123456789abcdef\",\"seq\":%llu,"
                     "\"event\":{\"time\":\"2026-11-29T21:00:00.000Z\",\"type\":\"function\","
                     "\"record\":\"line %llu of the function's output, padded to a hundred "
                     "bytes\"}}",
                     (unsigned long long)seq, (unsigned long long)seq * 7919);
    struct kte_rec *r = mk(seq, pk, (size_t)n);
    memcpy(r->data, text, (size_t)n);
    return r;
}

static void test_compressed_event_records(void **state)
{
    (void)state;
    for (int kind = KTE_COMPRESSION_GZIP; kind <= KTE_COMPRESSION_ZSTD; kind++) {
        struct kte_config cfg;
        cfg_for(&cfg, KTE_FORMAT_EVENT, KTE_PK_ENVIRONMENT);
        cfg.compression = (enum kte_compression)kind;
        struct kte_framer f;
        kte_framer_init(&f, &cfg);
        struct kte_rec *v[3] = {mk_json(1, "k"), mk_json(2, "k"), mk_json(3, "k")};
        uint64_t rng = 1;
        for (int round = 0; round < 2; round++) { /* the compressor is reused */
            assert_int_equal(kte_framer_build(&f, v, 3, &rng), 0);
            assert_int_equal(f.nwires, 3);
            for (size_t i = 0; i < 3; i++) {
                char out[1024];
                size_t n =
                    inflate_all(cfg.compression, f.wires[i].data, f.wires[i].len, out, sizeof out);
                assert_int_equal(n, v[i]->data_len);
                assert_memory_equal(out, v[i]->data, n);
                assert_true(f.wires[i].len < v[i]->data_len);
            }
        }
        free_all(v, 3);
        kte_framer_free(&f);
    }
}

/* Compressed ndjson learns the ratio: after one call, records hold many
 * times 25 KB of envelopes and still come out at most 25 KB. */
static void test_compressed_ndjson_fills_the_unit(void **state)
{
    (void)state;
    for (int kind = KTE_COMPRESSION_GZIP; kind <= KTE_COMPRESSION_ZSTD; kind++) {
        struct kte_config cfg;
        cfg_for(&cfg, KTE_FORMAT_NDJSON, KTE_PK_ENVIRONMENT);
        cfg.compression = (enum kte_compression)kind;
        struct kte_framer f;
        kte_framer_init(&f, &cfg);
        enum { N = 8000 };
        static struct kte_rec *v[N];
        for (size_t i = 0; i < N; i++)
            v[i] = mk_json(i + 1, "k");
        link_all(v, N);
        uint64_t rng = 1;
        size_t records = 0;
        static char out[2 * 1048576];
        for (int pass = 0; pass < 2; pass++) { /* the second pass knows the ratio */
            size_t done = 0;
            records = 0;
            for (int call = 0; done < N; call++) {
                size_t n = kte_framer_plan(&f, v[done]);
                assert_int_equal(kte_framer_build(&f, v + done, n, &rng), 0);
                for (size_t w = 0; w < f.nwires; w++) {
                    size_t len = inflate_all(cfg.compression, f.wires[w].data, f.wires[w].len, out,
                                             sizeof out);
                    /* Exactly the envelopes, each followed by a newline. */
                    size_t o = 0;
                    for (size_t i = 0; i < f.wires[w].count; i++) {
                        const struct kte_rec *r = v[done + f.wires[w].first + i];
                        assert_memory_equal(out + o, r->data, r->data_len);
                        assert_int_equal(out[o + r->data_len], '\n');
                        o += r->data_len + 1;
                    }
                    assert_int_equal(o, len);
                    assert_true(f.wires[w].len + 1 <= KTE_AGG_TARGET_BYTES * 21 / 20);
                }
                if (pass == 0 && call == 0) /* no ratio yet: 25 KB of ~200-byte envelopes */
                    assert_true(f.wires[0].count > 100 && f.wires[0].count < 130);
                records += f.nwires;
                done += n;
            }
        }
        print_message("%s: %zu records for %d events, group %zu bytes\n",
                      kind == KTE_COMPRESSION_GZIP ? "gzip" : "zstd", records, N, f.group_bytes);
        assert_true(f.group_bytes > 4 * KTE_AGG_TARGET_BYTES);
        assert_true(records * 1000 < N); /* > 1000 events per 25 KB record */
        free_all(v, N);
        kte_framer_free(&f);
    }
}

/* An incompressible envelope as large as the record allows still fits. */
static void test_incompressible_lone_record_fits(void **state)
{
    (void)state;
    struct kte_config cfg;
    cfg_for(&cfg, KTE_FORMAT_NDJSON, KTE_PK_ENVIRONMENT);
    for (int kind = KTE_COMPRESSION_GZIP; kind <= KTE_COMPRESSION_ZSTD; kind++) {
        cfg.compression = (enum kte_compression)kind;
        struct kte_framer f;
        kte_framer_init(&f, &cfg);
        size_t room = 1048576 - 32 - kte_agg_overhead(&cfg, 32);
        struct kte_rec *r = mk(1, "0123456789abcdef0123456789abcdef", room);
        for (size_t o = 0; o < room; o += 256)
            assert_true(getrandom(r->data + o, room - o < 256 ? room - o : 256, 0) > 0);
        uint64_t rng = 1;
        assert_int_equal(kte_framer_build(&f, &r, 1, &rng), 0);
        assert_true(f.wires[0].len > room);
        assert_true(f.wires[0].len + f.wires[0].pk_len <= 1048576);
        free(r);
        kte_framer_free(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder_matches_real_kpl),
        cmocka_unit_test(test_kpl_groups_by_key_and_matches_encoder),
        cmocka_unit_test(test_kpl_cuts_at_target_size_random_keys),
        cmocka_unit_test(test_plan_limits),
        cmocka_unit_test(test_plan_max_caps_records_not_events),
        cmocka_unit_test(test_ndjson_and_event),
        cmocka_unit_test(test_overhead_bounds_a_lone_record),
        cmocka_unit_test(test_compressed_event_records),
        cmocka_unit_test(test_compressed_ndjson_fills_the_unit),
        cmocka_unit_test(test_incompressible_lone_record_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
