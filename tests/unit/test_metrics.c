/* kte_metrics: the CloudWatch EMF line and the kte.dropped report event. */
#include "kte_metrics.h"

#include "kte_test_util.h"

#define NOW_MS INT64_C(1763897400123)

struct want {
    const char *name, *unit;
    uint64_t value;
};

static void set_counters(struct kte_metrics *m)
{
    kte_metrics_init(m);
    atomic_store(&m->received, 101);
    atomic_store(&m->delivered, 90);
    atomic_store(&m->retried, 7);
    atomic_store(&m->truncated, 3);
    for (int i = 0; i < KTE_DROP_REASONS; i++)
        atomic_store(&m->dropped[i], (uint64_t)(i + 1) * 10);
    atomic_store(&m->bytes_received, 123456);
    atomic_store(&m->bytes_delivered, 120000);
    atomic_store(&m->batches, 12);
    atomic_store(&m->batches_failed, 2);
    atomic_store(&m->posts, 40);
    atomic_store(&m->posts_rejected, 4);
    atomic_store(&m->posts_malformed, 5);
    atomic_store(&m->posts_oversized, 6);
    atomic_store(&m->posts_after_close, 8);
    atomic_store(&m->drop_reports, 9);
    atomic_store(&m->connections_accepted, 1100);
    atomic_store(&m->connections_evicted, 1036);
    atomic_store(&m->connections_refused, 11);
    atomic_store(&m->connections_without_request, 12);
    atomic_store(&m->requests_incomplete, 13);
    atomic_store(&m->delivered_after_freeze, 14);
    atomic_store(&m->filtered, 14);
    atomic_store(&m->sampled_out, 15);
    for (int i = 0; i < KTE_RX_KINDS; i++)
        atomic_store(&m->redactions[i], 20 + i);
    atomic_store(&m->rules_match_limit, 16);
    atomic_store(&m->protocol_fallbacks, 1);
}

static const struct want expected[] = {
    {"EventsReceived", "Count", 101},
    {"EventsDelivered", "Count", 90},
    {"EventsDropped", "Count", 150},
    {"DroppedShutdownDeadline", "Count", 10},
    {"DroppedPermanentError", "Count", 20},
    {"DroppedBufferOverflow", "Count", 30},
    {"DroppedTooLarge", "Count", 40},
    {"DroppedOutOfMemory", "Count", 50},
    {"RecordsRetried", "Count", 7},
    {"EventsTruncated", "Count", 3},
    {"BytesReceived", "Bytes", 123456},
    {"BytesDelivered", "Bytes", 120000},
    {"Batches", "Count", 12},
    {"BatchesFailed", "Count", 2},
    {"PostsAccepted", "Count", 40},
    {"PostsRejected", "Count", 4},
    {"PostsMalformed", "Count", 5},
    {"PostsOversized", "Count", 6},
    {"PostsAfterClose", "Count", 8},
    {"DropReportsDelivered", "Count", 9},
    {"ConnectionsAccepted", "Count", 1100},
    {"ConnectionsEvicted", "Count", 1036},
    {"ConnectionsRefused", "Count", 11},
    {"ConnectionsWithoutRequest", "Count", 12},
    {"RequestsIncomplete", "Count", 13},
    {"PeakRssBytes", "Bytes", 50331648},
    {"EventsDeliveredAfterFreeze", "Count", 14},
    {"EventsFiltered", "Count", 14},
    {"EventsSampledOut", "Count", 15},
    {"RedactedEmail", "Count", 20},
    {"RedactedCreditCard", "Count", 21},
    {"RedactedAwsAccessKeyId", "Count", 22},
    {"RedactedAwsSecretKey", "Count", 23},
    {"RedactedJwt", "Count", 24},
    {"RedactedBearerToken", "Count", 25},
    {"RedactedIpAddress", "Count", 26},
    {"RedactedCustom", "Count", 27},
    {"RulesMatchLimit", "Count", 16},
    {"ProtocolFallbacks", "Count", 1},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

/* Parses an EMF line and checks its structure; returns the tree. */
static yajl_val check_emf(const struct kte_buf *b, const char *function_name)
{
    assert_non_null(b->data);
    assert_null(memchr(b->data, '\n', b->len)); /* one line */
    yajl_val v = kt_json_parse(b->data, b->len);
    assert_non_null(v);
    assert_true(YAJL_IS_OBJECT(v));
    assert_int_equal(kt_json_int(v, "_aws", "Timestamp"), NOW_MS);
    yajl_val cwm = kt_json_get(v, yajl_t_array, "_aws", "CloudWatchMetrics", NULL);
    assert_non_null(cwm);
    assert_int_equal(YAJL_GET_ARRAY(cwm)->len, 1);
    yajl_val d = YAJL_GET_ARRAY(cwm)->values[0];
    assert_string_equal(kt_json_str(d, "Namespace", NULL), "KinesisTelemetryExtension");
    /* Dimensions [["FunctionName"]], and that key is a top-level string. */
    yajl_val dims = kt_json_get(d, yajl_t_array, "Dimensions", NULL, NULL);
    assert_non_null(dims);
    assert_int_equal(YAJL_GET_ARRAY(dims)->len, 1);
    yajl_val set = YAJL_GET_ARRAY(dims)->values[0];
    assert_true(YAJL_IS_ARRAY(set));
    assert_int_equal(YAJL_GET_ARRAY(set)->len, 1);
    assert_string_equal(kt_str(YAJL_GET_ARRAY(set)->values[0]), "FunctionName");
    assert_string_equal(kt_json_str(v, "FunctionName", NULL), function_name);

    /* Every metric named in the directive is a top-level integer, and every
     * other top-level key is _aws or a dimension. */
    yajl_val metrics = kt_json_get(d, yajl_t_array, "Metrics", NULL, NULL);
    assert_non_null(metrics);
    size_t nm = YAJL_GET_ARRAY(metrics)->len;
    assert_true(nm <= 100); /* EMF's limit per directive */
    for (size_t i = 0; i < nm; i++) {
        yajl_val e = YAJL_GET_ARRAY(metrics)->values[i];
        const char *name = kt_json_str(e, "Name", NULL);
        const char *unit = kt_json_str(e, "Unit", NULL);
        assert_non_null(name);
        assert_non_null(unit);
        assert_true(!strcmp(unit, "Count") || !strcmp(unit, "Bytes"));
        yajl_val val = kt_json_get(v, yajl_t_number, name, NULL, NULL);
        if (!val)
            print_error("metric %s has no top-level value\n", name);
        assert_non_null(val);
        assert_true(YAJL_IS_INTEGER(val));
        for (size_t k = 0; k < i; k++) /* no duplicates */
            assert_string_not_equal(name,
                                    kt_json_str(YAJL_GET_ARRAY(metrics)->values[k], "Name", NULL));
    }
    assert_int_equal(YAJL_GET_OBJECT(v)->len, nm + 2); /* + _aws + FunctionName */
    return v;
}

static void test_emf_values_equal_counters(void **state)
{
    (void)state;
    struct kte_metrics m;
    set_counters(&m);
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_metrics_emf(&m, "my-fn", NOW_MS, 50331648, &b), 0);
    yajl_val v = check_emf(&b, "my-fn");
    yajl_val metrics = kt_json_get(v, yajl_t_array, "_aws", "CloudWatchMetrics", NULL);
    metrics = kt_json_get(YAJL_GET_ARRAY(metrics)->values[0], yajl_t_array, "Metrics", NULL, NULL);
    size_t nm = YAJL_GET_ARRAY(metrics)->len;
    /* Exactly the expected metrics, in this order, with these units. */
    for (size_t i = 0; i < nm && i < N_EXPECTED; i++) {
        yajl_val e = YAJL_GET_ARRAY(metrics)->values[i];
        assert_string_equal(kt_json_str(e, "Name", NULL), expected[i].name);
        assert_string_equal(kt_json_str(e, "Unit", NULL), expected[i].unit);
        long long got = kt_json_int(v, expected[i].name, NULL);
        if ((uint64_t)got != expected[i].value)
            print_error("%s = %lld, want %llu\n", expected[i].name, got,
                        (unsigned long long)expected[i].value);
        assert_int_equal(got, expected[i].value);
    }
    if (nm != N_EXPECTED)
        print_error("%zu metrics, %zu expected (update this test for new metrics)\n", nm,
                    N_EXPECTED);
    assert_int_equal(nm, N_EXPECTED);
    yajl_tree_free(v);
    kte_buf_free(&b);
}

static void test_emf_zero_counters_and_escaped_name(void **state)
{
    (void)state;
    struct kte_metrics m;
    kte_metrics_init(&m);
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_buf_puts(&b, ""), 0);
    const char *name = "fn\"with\\odd\nname";
    assert_int_equal(kte_metrics_emf(&m, name, NOW_MS, 0, &b), 0);
    yajl_val v = check_emf(&b, name);
    for (size_t i = 0; i < N_EXPECTED; i++)
        assert_int_equal(kt_json_int(v, expected[i].name, NULL), 0);
    yajl_tree_free(v);
    /* The prefix is fixed text. */
    static const char head[] = "{\"_aws\":{\"Timestamp\":1763897400123,\"CloudWatchMetrics\":[{"
                               "\"Namespace\":\"KinesisTelemetryExtension\",\"Dimensions\":[["
                               "\"FunctionName\"]],\"Metrics\":[{\"Name\":\"EventsReceived\","
                               "\"Unit\":\"Count\"},";
    assert_memory_equal(b.data, head, sizeof head - 1);
    kte_buf_free(&b);
}

static void test_emf_large_values(void **state)
{
    (void)state;
    struct kte_metrics m;
    kte_metrics_init(&m);
    atomic_store(&m.bytes_received, (uint64_t)INT64_MAX);
    atomic_store(&m.received, UINT64_C(9007199254740993)); /* not a double */
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_metrics_emf(&m, "f", NOW_MS, 1, &b), 0);
    assert_non_null(strstr(b.data, ",\"BytesReceived\":9223372036854775807,"));
    assert_non_null(strstr(b.data, ",\"EventsReceived\":9007199254740993,"));
    yajl_val v = check_emf(&b, "f");
    assert_int_equal(kt_json_int(v, "BytesReceived", NULL), INT64_MAX);
    yajl_tree_free(v);
    kte_buf_free(&b);
}

static void test_drop_totals_and_names(void **state)
{
    (void)state;
    struct kte_metrics m;
    kte_metrics_init(&m);
    assert_int_equal(kte_metrics_dropped_total(&m), 0);
    set_counters(&m);
    assert_int_equal(kte_metrics_dropped_total(&m), 150);
    assert_string_equal(kte_drop_reason_name(KTE_DROP_SHUTDOWN), "DroppedShutdownDeadline");
    assert_string_equal(kte_drop_reason_name(KTE_DROP_PERMANENT), "DroppedPermanentError");
    assert_string_equal(kte_drop_reason_name(KTE_DROP_OVERFLOW), "DroppedBufferOverflow");
    assert_string_equal(kte_drop_reason_name(KTE_DROP_TOO_LARGE), "DroppedTooLarge");
    assert_string_equal(kte_drop_reason_name(KTE_DROP_NOMEM), "DroppedOutOfMemory");
    assert_string_equal(kte_drop_reason_name(KTE_DROP_REASONS), "DroppedUnknown");
}

static void test_drop_stats(void **state)
{
    (void)state;
    struct kte_drop_stats s, t;
    memset(&s, 0, sizeof s);
    memset(&t, 0, sizeof t);
    assert_int_equal(kte_drop_stats_total(&s), 0);
    kte_drop_stats_add(&s, KTE_DROP_OVERFLOW, 17);
    kte_drop_stats_add(&s, KTE_DROP_OVERFLOW, 12);
    kte_drop_stats_add(&s, KTE_DROP_PERMANENT, 30);
    assert_int_equal(kte_drop_stats_total(&s), 3);
    assert_int_equal(s.first_seq, 12);
    assert_int_equal(s.last_seq, 30);
    assert_int_equal(s.by_reason[KTE_DROP_OVERFLOW], 2);

    kte_drop_stats_add(&t, KTE_DROP_SHUTDOWN, 5);
    kte_drop_stats_add(&t, KTE_DROP_SHUTDOWN, 40);
    kte_drop_stats_merge(&s, &t);
    assert_int_equal(kte_drop_stats_total(&s), 5);
    assert_int_equal(s.first_seq, 5);
    assert_int_equal(s.last_seq, 40);
    /* Merging nothing changes nothing. */
    struct kte_drop_stats empty;
    memset(&empty, 0, sizeof empty);
    kte_drop_stats_merge(&s, &empty);
    assert_int_equal(s.first_seq, 5);
    assert_int_equal(s.last_seq, 40);
    kte_drop_stats_merge(&empty, &s);
    assert_int_equal(empty.first_seq, 5);
    assert_int_equal(kte_drop_stats_total(&empty), 5);

    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_drop_stats_event(&s, NOW_MS, &b), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"time\":\"2025-11-23T11:30:00.123Z\",\"type\":\"kte.dropped\",\"record\":{"
                    "\"droppedEvents\":5,\"firstSeq\":5,\"lastSeq\":40,\"reasons\":{"
                    "\"DroppedShutdownDeadline\":2,\"DroppedPermanentError\":1,"
                    "\"DroppedBufferOverflow\":2}}}");
    yajl_val v = kt_json_parse(b.data, b.len);
    assert_non_null(v);
    yajl_tree_free(v);
    kte_buf_free(&b);

    /* Millisecond padding. */
    kte_buf_init(&b);
    assert_int_equal(kte_drop_stats_event(&t, INT64_C(1763897400007), &b), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"time\":\"2025-11-23T11:30:00.007Z\",\"type\":\"kte.dropped\",\"record\":{"
                    "\"droppedEvents\":2,\"firstSeq\":5,\"lastSeq\":40,\"reasons\":{"
                    "\"DroppedShutdownDeadline\":2}}}");
    kte_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emf_values_equal_counters),
        cmocka_unit_test(test_emf_zero_counters_and_escaped_name),
        cmocka_unit_test(test_emf_large_values),
        cmocka_unit_test(test_drop_totals_and_names),
        cmocka_unit_test(test_drop_stats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
