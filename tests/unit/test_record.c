/* kte_record_build: the envelope around an event's exact bytes, and the
 * truncated form (a JSON string holding a UTF-8-safe prefix) when too big. */
#include "kte_record.h"

#include "kte_test_util.h"

#define ENV_ID "0123456789abcdef0123456789abcdef"
#define PREFIX                                                                                     \
    "{\"kte\":1,\"environment\":\"" ENV_ID "\",\"function\":{\"name\":\"my-fn\",\"version\":"      \
    "\"$LATEST\",\"region\":\"eu-west-1\"},\"seq\":"

static int setup(void **state)
{
    struct kte_record_builder *rb = calloc(1, sizeof *rb);
    if (!rb || kte_record_builder_init(rb, ENV_ID, "my-fn", "$LATEST", "eu-west-1") != 0) {
        free(rb);
        return -1;
    }
    *state = rb;
    return 0;
}

static int teardown(void **state)
{
    struct kte_record_builder *rb = *state;
    kte_record_builder_free(rb);
    free(rb);
    return 0;
}

static void test_builder_prefix(void **state)
{
    struct kte_record_builder *rb = *state;
    kt_assert_bytes(rb->prefix.data, rb->prefix.len, PREFIX);
}

static void test_small_event_exact_bytes(void **state)
{
    struct kte_record_builder *rb = *state;
    const char *raw =
        "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"function\",\"record\":\"hi\"}";
    struct kte_rec *r = kte_record_build(rb, 17, raw, strlen(raw), "pk-1", 1048576, NULL);
    assert_non_null(r);
    kt_assert_bytes(r->data, r->data_len,
                    PREFIX "17,\"event\":{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":"
                           "\"function\",\"record\":\"hi\"}}");
    assert_false(r->truncated);
    assert_int_equal(r->seq, 17);
    assert_int_equal(r->attempts, 0);
    assert_null(r->next);
    assert_string_equal(r->pk, "pk-1");
    assert_int_equal(r->pk_len, 4);
    assert_ptr_equal(r->pk, r->data + r->data_len); /* one allocation */

    yajl_val v = kt_json_parse(r->data, r->data_len);
    assert_non_null(v);
    assert_int_equal(kt_json_int(v, "kte", NULL), 1);
    assert_int_equal(kt_json_int(v, "seq", NULL), 17);
    assert_string_equal(kt_json_str(v, "environment", NULL), ENV_ID);
    assert_string_equal(kt_json_str(v, "function", "name"), "my-fn");
    assert_string_equal(kt_json_str(v, "function", "version"), "$LATEST");
    assert_string_equal(kt_json_str(v, "function", "region"), "eu-west-1");
    assert_null(kt_json_get(v, yajl_t_any, "truncated", NULL, NULL));
    assert_string_equal(kt_json_str(v, "event", "record"), "hi");
    yajl_tree_free(v);
    free(r);
}

static void test_event_bytes_are_not_reencoded(void **state)
{
    struct kte_record_builder *rb = *state;
    static const char *const raws[] = {
        "{ \"type\" : \"x\" ,\n\t\"record\" : { \"v\" : 1.0e3 , \"w\" : 0.62 , \"s\" : "
        "\"caf\\u00e9 \\ud83d\\ude00 \\/\" , \"a\" : [ [ ] , { } ] } }",
        "{\"type\":\"function\",\"record\":\"raw utf-8: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
        "\"a string event\"",
        "-2E-2",
        "null",
        "[1,[2,{\"k\":[]}]]",
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        struct kte_rec *r = kte_record_build(rb, 5, raws[i], strlen(raws[i]), "k", 1048576, NULL);
        assert_non_null(r);
        char want[1024];
        snprintf(want, sizeof want, PREFIX "5,\"event\":%s}", raws[i]);
        kt_assert_bytes(r->data, r->data_len, want);
        assert_false(r->truncated);
        yajl_val v = kt_json_parse(r->data, r->data_len);
        assert_non_null(v);
        yajl_tree_free(v);
        free(r);
    }
}

static void test_seq_values(void **state)
{
    struct kte_record_builder *rb = *state;
    static const struct {
        uint64_t seq;
        const char *digits;
    } cases[] = {
        {0, "0"}, {1, "1"}, {4294967296ULL, "4294967296"}, {UINT64_MAX, "18446744073709551615"}};
    for (size_t i = 0; i < 4; i++) {
        struct kte_rec *r = kte_record_build(rb, cases[i].seq, "{}", 2, "k", 4096, NULL);
        assert_non_null(r);
        char want[512];
        snprintf(want, sizeof want, PREFIX "%s,\"event\":{}}", cases[i].digits);
        kt_assert_bytes(r->data, r->data_len, want);
        assert_true(r->seq == cases[i].seq);
        free(r);
    }
}

static void test_function_identity_is_json_escaped(void **state)
{
    (void)state;
    struct kte_record_builder rb;
    const char *name = "fn\"quote\\back\nnl\ttab\x01\x1f caf\xc3\xa9";
    assert_int_equal(kte_record_builder_init(&rb, ENV_ID, name, "v\"1", "r\\"), 0);
    struct kte_rec *r = kte_record_build(&rb, 1, "{}", 2, "k", 4096, NULL);
    assert_non_null(r);
    kt_assert_bytes(r->data, r->data_len,
                    "{\"kte\":1,\"environment\":\"" ENV_ID
                    "\",\"function\":{\"name\":\"fn\\\"quote\\\\back\\nnl\\ttab\\u0001\\u001f "
                    "caf\xc3\xa9\",\"version\":\"v\\\"1\",\"region\":\"r\\\\\"},\"seq\":1,"
                    "\"event\":{}}");
    yajl_val v = kt_json_parse(r->data, r->data_len);
    assert_non_null(v);
    assert_string_equal(kt_json_str(v, "function", "name"), name);
    assert_string_equal(kt_json_str(v, "function", "version"), "v\"1");
    assert_string_equal(kt_json_str(v, "function", "region"), "r\\");
    yajl_tree_free(v);
    free(r);
    kte_record_builder_free(&rb);
}

static void test_partition_key_is_stored(void **state)
{
    struct kte_record_builder *rb = *state;
    static const char *const pks[] = {"", ENV_ID, "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
                                      "p\"k with spaces \xc3\xa9"};
    for (size_t i = 0; i < 4; i++) {
        struct kte_rec *r = kte_record_build(rb, 9, "{}", 2, pks[i], 4096, NULL);
        assert_non_null(r);
        assert_string_equal(r->pk, pks[i]);
        assert_int_equal(r->pk_len, strlen(pks[i]));
        assert_ptr_equal(r->pk, r->data + r->data_len);
        kt_assert_bytes(r->data, r->data_len, PREFIX "9,\"event\":{}}");
        free(r);
    }
}

/* ---- truncation ------------------------------------------------------------ */

/* Bytes the JSON-escaped form of the character starting at raw[i] takes,
 * and that character's length in bytes. */
static size_t char_cost(const char *raw, size_t i, size_t *bytes)
{
    unsigned char c = (unsigned char)raw[i];
    *bytes = 1;
    if (c >= 0xF0)
        *bytes = 4;
    else if (c >= 0xE0)
        *bytes = 3;
    else if (c >= 0xC0)
        *bytes = 2;
    if (c >= 0x80)
        return *bytes;
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* The envelope of a truncated record, everything before the event string. */
static size_t truncated_head(char *out, size_t cap, uint64_t seq, size_t raw_len)
{
    return (size_t)snprintf(out, cap,
                            PREFIX "%llu,\"truncated\":{\"originalBytes\":%zu},\"event\":",
                            (unsigned long long)seq, raw_len);
}

/* Checks one record built from raw with limit max against the rules. */
static void check_record(struct kte_record_builder *rb, uint64_t seq, const char *raw,
                         size_t raw_len, size_t max)
{
    char head[512];
    size_t head_len = truncated_head(head, sizeof head, seq, raw_len);
    char full_head[512];
    size_t full_len = (size_t)snprintf(full_head, sizeof full_head,
                                       PREFIX "%llu,\"event\":", (unsigned long long)seq) +
                      raw_len + 1;

    struct kte_rec *r = kte_record_build(rb, seq, raw, raw_len, "pk", max, NULL);
    if (max >= full_len) {
        assert_non_null(r);
        assert_false(r->truncated);
        assert_int_equal(r->data_len, full_len);
        assert_memory_equal(r->data, full_head, full_len - raw_len - 1);
        assert_memory_equal(r->data + full_len - raw_len - 1, raw, raw_len);
        assert_int_equal(r->data[full_len - 1], '}');
        free(r);
        return;
    }
    if (max < head_len + 3) { /* "" and } do not fit */
        if (r)
            print_error("max %zu < %zu: want NULL, got %u bytes\n", max, head_len + 3, r->data_len);
        assert_null(r);
        return;
    }
    if (!r)
        print_error("max %zu (head %zu, full %zu): NULL\n", max, head_len, full_len);
    assert_non_null(r);
    assert_true(r->truncated);
    assert_string_equal(r->pk, "pk");
    if (r->data_len > max)
        print_error("max %zu: record has %u bytes\n", max, r->data_len);
    assert_true(r->data_len <= max);
    assert_memory_equal(r->data, head, head_len);
    assert_int_equal(r->data[r->data_len - 2], '"');
    assert_int_equal(r->data[r->data_len - 1], '}');

    /* Valid JSON (yajl checks UTF-8, so a cut inside a character fails). */
    yajl_val v = kt_json_parse(r->data, r->data_len);
    if (!v)
        print_error("max %zu: record is not JSON\n", max);
    assert_non_null(v);
    assert_int_equal(kt_json_int(v, "truncated", "originalBytes"), (long long)raw_len);
    assert_int_equal(kt_json_int(v, "seq", NULL), (long long)seq);
    yajl_val ev = kt_json_get(v, yajl_t_string, "event", NULL, NULL);
    assert_non_null(ev);
    const char *kept = YAJL_GET_STRING(ev);
    assert_non_null(kept);
    size_t k = strlen(kept);
    /* A prefix of the raw event, ending on a character boundary ... */
    assert_true(k < raw_len);
    assert_memory_equal(kept, raw, k);
    assert_true(((unsigned char)raw[k] & 0xC0) != 0x80);
    /* ... and the longest one: the next character would not have fit. */
    size_t next_bytes;
    size_t next_cost = char_cost(raw, k, &next_bytes);
    if (r->data_len + next_cost <= max)
        print_error("max %zu: kept %zu bytes in %u; the next character (%zu more) fits\n", max, k,
                    r->data_len, next_cost);
    assert_true(r->data_len + next_cost > max);
    /* The escaped length adds up exactly. */
    size_t esc = 0;
    for (size_t i = 0; i < k;) {
        size_t b;
        esc += char_cost(raw, i, &b);
        i += b;
    }
    assert_int_equal(r->data_len, head_len + 2 + esc + 1);
    yajl_tree_free(v);
    free(r);
}

static void test_exact_fit_is_not_truncated(void **state)
{
    struct kte_record_builder *rb = *state;
    const char *raw = "{\"type\":\"function\",\"record\":\"hello\"}";
    size_t full = strlen(PREFIX "3,\"event\":") + strlen(raw) + 1;
    struct kte_rec *r = kte_record_build(rb, 3, raw, strlen(raw), "k", full, NULL);
    assert_non_null(r);
    assert_false(r->truncated);
    assert_int_equal(r->data_len, full);
    free(r);
    /* One byte less: truncated; for an event this small only the marker
     * and an empty string fit, and one byte less still nothing does. */
    r = kte_record_build(rb, 3, raw, strlen(raw), "k", full - 1, NULL);
    assert_non_null(r);
    assert_true(r->truncated);
    kt_assert_bytes(r->data, r->data_len,
                    PREFIX "3,\"truncated\":{\"originalBytes\":36},\"event\":\"\"}");
    free(r);
    assert_null(kte_record_build(rb, 3, raw, strlen(raw), "k", full - 2, NULL));
}

/* Hand-computed outputs near 2-, 3- and 4-byte characters. */
static void test_truncation_exact_bytes_at_utf8_boundaries(void **state)
{
    struct kte_record_builder *rb = *state;
    /* {"k":"é€😀 then 300 x and "} */
    char raw[400];
    size_t n = (size_t)sprintf(raw, "{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    memset(raw + n, 'x', 300);
    n += 300;
    n += (size_t)sprintf(raw + n, "\"}");
    assert_int_equal(n, 6 + 2 + 3 + 4 + 300 + 2);

    char head[512];
    size_t head_len = truncated_head(head, sizeof head, 2, n);
    assert_string_equal(head, PREFIX "2,\"truncated\":{\"originalBytes\":317},\"event\":");
    /* budget = bytes of escaped event text that fit between the quotes */
    static const struct {
        size_t budget;
        const char *event;
    } cases[] = {
        {0, "\"\""},
        {1, "\"{\""},
        {2, "\"{\""}, /* the quote needs two */
        {3, "\"{\\\"\""},
        {9, "\"{\\\"k\\\":\\\"\""},
        {10, "\"{\\\"k\\\":\\\"\""}, /* half an é never */
        {11, "\"{\\\"k\\\":\\\"\xc3\xa9\""},
        {13, "\"{\\\"k\\\":\\\"\xc3\xa9\""}, /* 2 of €'s 3 bytes */
        {14, "\"{\\\"k\\\":\\\"\xc3\xa9\xe2\x82\xac\""},
        {17, "\"{\\\"k\\\":\\\"\xc3\xa9\xe2\x82\xac\""}, /* 3 of 😀's 4 bytes */
        {18, "\"{\\\"k\\\":\\\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
        {19, "\"{\\\"k\\\":\\\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t max = head_len + 3 + cases[i].budget;
        struct kte_rec *r = kte_record_build(rb, 2, raw, n, "pk", max, NULL);
        assert_non_null(r);
        assert_true(r->truncated);
        char want[1024];
        snprintf(want, sizeof want, "%s%s}", head, cases[i].event);
        kt_assert_bytes(r->data, r->data_len, want);
        free(r);
    }
}

/* Escapes near the cut: a 2-byte escape never splits. */
static void test_truncation_escapes_near_cut(void **state)
{
    struct kte_record_builder *rb = *state;
    char raw[400];
    size_t n = (size_t)sprintf(raw, "{\"s\":\"a\\\\b\\\"c\n\t\r");
    memset(raw + n, 'y', 300);
    n += 300;
    n += (size_t)sprintf(raw + n, "\"}");
    char head[512];
    size_t head_len = truncated_head(head, sizeof head, 4, n);
    /* raw: {  "  s  "  :  "  a  \\  \\  b  \\  "  c  LF TAB CR
     * esc: 1  2  1  2  1  2  1  2  2  1  2  2  1  2  2   2 */
    static const struct {
        size_t budget;
        const char *event;
    } cases[] = {
        {10, "\"{\\\"s\\\":\\\"a\""},
        {11, "\"{\\\"s\\\":\\\"a\""},
        {12, "\"{\\\"s\\\":\\\"a\\\\\""},
        {13, "\"{\\\"s\\\":\\\"a\\\\\""},
        {14, "\"{\\\"s\\\":\\\"a\\\\\\\\\""},
        {15, "\"{\\\"s\\\":\\\"a\\\\\\\\b\""},
        {16, "\"{\\\"s\\\":\\\"a\\\\\\\\b\""},
        {17, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\""},
        {18, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\""},
        {19, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"\""},
        {20, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\""},
        {21, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\""},
        {22, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\\n\""},
        {23, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\\n\""},
        {24, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\\n\\t\""},
        {25, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\\n\\t\""},
        {26, "\"{\\\"s\\\":\\\"a\\\\\\\\b\\\\\\\"c\\n\\t\\r\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kte_rec *r =
            kte_record_build(rb, 4, raw, n, "pk", head_len + 3 + cases[i].budget, NULL);
        assert_non_null(r);
        char want[1024];
        snprintf(want, sizeof want, "%s%s}", head, cases[i].event);
        kt_assert_bytes(r->data, r->data_len, want);
        free(r);
    }
}

/* Every limit from "too small for the envelope" to "fits whole". */
static void test_truncation_sweep(void **state)
{
    struct kte_record_builder *rb = *state;
    struct kte_buf raw;
    kte_buf_init(&raw);
    assert_int_equal(kte_buf_puts(&raw, "{\n\t\"type\": \"function\",\r\n \"record\": \""), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(kte_buf_puts(&raw, "\xc3\xa9\\\"\xe2\x82\xac\\\\\xf0\x9f\x98\x80"
                                            "a\\u00e9 "),
                         0);
    assert_int_equal(kte_buf_puts(&raw, "\"\n}"), 0);
    char head[512];
    size_t head_len = truncated_head(head, sizeof head, 123456, raw.len);
    size_t full = strlen(PREFIX "123456,\"event\":") + raw.len + 1;
    for (size_t max = 0; max <= full + 2; max++) {
        if (max > 4 && max < head_len - 2)
            max = head_len - 2; /* nothing new to learn below the envelope */
        check_record(rb, 123456, raw.data, raw.len, max);
    }
    kte_buf_free(&raw);
}

/* Raw bytes that need \u00XX (not JSON, but a record must still be). */
static void test_truncation_of_control_bytes(void **state)
{
    struct kte_record_builder *rb = *state;
    char raw[600];
    for (size_t i = 0; i < sizeof raw; i++)
        raw[i] = (char)(i % 3 == 0 ? 0x01 : (i % 3 == 1 ? 'z' : 0x1f));
    char head[512];
    size_t head_len = truncated_head(head, sizeof head, 8, sizeof raw);
    for (size_t b = 0; b < 40; b++)
        check_record(rb, 8, raw, sizeof raw, head_len + 3 + b);
}

static void test_envelope_that_cannot_fit_gives_null(void **state)
{
    struct kte_record_builder *rb = *state;
    char raw[2000];
    memset(raw, 'x', sizeof raw);
    raw[0] = '"';
    raw[sizeof raw - 1] = '"';
    char head[512];
    size_t head_len = truncated_head(head, sizeof head, 1, sizeof raw);
    assert_null(kte_record_build(rb, 1, raw, sizeof raw, "pk", 0, NULL));
    assert_null(kte_record_build(rb, 1, raw, sizeof raw, "pk", 10, NULL));
    assert_null(kte_record_build(rb, 1, raw, sizeof raw, "pk", head_len, NULL));
    enum kte_build_error why = 0;
    assert_null(kte_record_build(rb, 1, raw, sizeof raw, "pk", head_len + 2, &why));
    assert_int_equal(why, KTE_BUILD_TOO_LARGE); /* counted as DroppedTooLarge, not as NOMEM */
    struct kte_rec *r = kte_record_build(rb, 1, raw, sizeof raw, "pk", head_len + 3, NULL);
    assert_non_null(r);
    char want[600];
    snprintf(want, sizeof want, "%s\"\"}", head);
    kt_assert_bytes(r->data, r->data_len, want);
    assert_true(r->truncated);
    free(r);
}

static void test_large_event_at_kinesis_limit(void **state)
{
    struct kte_record_builder *rb = *state;
    /* A 2 MiB event cut to the 1 MiB record limit less a partition key. */
    size_t n = 2 * 1048576;
    char *raw = malloc(n);
    assert_non_null(raw);
    const char *unit = "\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9\\\"a";
    size_t ul = strlen(unit);
    raw[0] = '"';
    for (size_t i = 1; i < n; i++)
        raw[i] = unit[(i - 1) % ul];
    size_t max = 1048576 - 36;
    check_record(rb, 77, raw, n, max);
    check_record(rb, 77, raw, n, max - 1);
    check_record(rb, 77, raw, n, max - 2);
    check_record(rb, 77, raw, n, max - 3);
    free(raw);
}

static void test_random_hex_id(void **state)
{
    (void)state;
    char a[KTE_ENV_ID_LEN + 1], b[KTE_ENV_ID_LEN + 1];
    memset(a, 'X', sizeof a);
    assert_int_equal(kte_random_hex_id(a), 0);
    assert_int_equal(kte_random_hex_id(b), 0);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(a[32], '\0');
    for (size_t i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    assert_string_not_equal(a, b);
}

static bool rec_has(const struct kte_rec *r, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= r->data_len; i++)
        if (!memcmp(r->data + i, s, n))
            return true;
    return false;
}

/* A restored environment: "restoredFrom" names the snapshot's environment,
 * seq restarts at 1 (pipeline seq minus seq_base, which the record keeps),
 * and a re-delivered init event is marked, also when truncated. */
static void test_restored_envelope(void **state)
{
    (void)state;
    struct kte_record_builder rb;
    assert_int_equal(kte_record_builder_init_restored(&rb, "11111111111111111111111111111111",
                                                      ENV_ID, "my-fn", "$LATEST", "eu-west-1", 40),
                     0);
    const char *raw = "{\"type\":\"platform.initStart\"}";
    struct kte_rec *r =
        kte_record_build_flags(&rb, 41, raw, strlen(raw), "pk", 4096, KTE_BUILD_REDELIVERED, NULL);
    assert_non_null(r);
    kt_assert_bytes(r->data, r->data_len,
                    "{\"kte\":1,\"environment\":\"11111111111111111111111111111111\","
                    "\"restoredFrom\":\"" ENV_ID "\",\"function\":{\"name\":\"my-fn\","
                    "\"version\":\"$LATEST\",\"region\":\"eu-west-1\"},\"seq\":1,"
                    "\"redelivered\":true,\"event\":{\"type\":\"platform.initStart\"}}");
    assert_int_equal(r->seq, 41);
    free(r);
    r = kte_record_build_flags(&rb, 42, raw, strlen(raw), "pk", 4096, 0, NULL);
    assert_non_null(r);
    assert_false(rec_has(r, "redelivered"));
    yajl_val v = kt_json_parse(r->data, r->data_len);
    assert_int_equal(kt_json_int(v, "seq", NULL), 2);
    yajl_tree_free(v);
    free(r);
    /* Truncated and marked: still valid JSON with both members. */
    char big[300];
    snprintf(big, sizeof big, "{\"type\":\"platform.initStart\",\"pad\":\"%0200d\"}", 0);
    size_t full = rb.prefix.len + 1 + strlen(",\"redelivered\":true,\"event\":") + strlen(big) + 1;
    r = kte_record_build_flags(&rb, 41, big, strlen(big), "pk", full - 20, KTE_BUILD_REDELIVERED,
                               NULL);
    assert_non_null(r);
    assert_true(r->truncated);
    v = kt_json_parse(r->data, r->data_len);
    assert_non_null(v);
    assert_int_equal(kt_json_int(v, "seq", NULL), 1);
    yajl_tree_free(v);
    assert_true(rec_has(r, "\"redelivered\":true"));
    free(r);
    kte_record_builder_free(&rb);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_builder_prefix),
        T(test_small_event_exact_bytes),
        T(test_event_bytes_are_not_reencoded),
        T(test_seq_values),
        cmocka_unit_test(test_function_identity_is_json_escaped),
        T(test_partition_key_is_stored),
        T(test_exact_fit_is_not_truncated),
        T(test_truncation_exact_bytes_at_utf8_boundaries),
        T(test_truncation_escapes_near_cut),
        T(test_truncation_sweep),
        T(test_truncation_of_control_bytes),
        T(test_envelope_that_cannot_fit_gives_null),
        T(test_large_event_at_kinesis_limit),
        cmocka_unit_test(test_random_hex_id),
        cmocka_unit_test(test_restored_envelope),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
