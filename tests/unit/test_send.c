/* kte_send: the sender's decisions as pure functions, without threads. */
#include "kte_send.h"

#include "kte_test_util.h"

static struct kte_send_view view(size_t queued, uint64_t head_seq)
{
    return (struct kte_send_view){.queued = queued,
                                  .queued_bytes = queued * 100,
                                  .head_seq = head_seq,
                                  .mode = KTE_FLUSH_END,
                                  .full = {KTE_BATCH_MAX_RECORDS, KTE_BATCH_MAX_BYTES}};
}

static void test_nothing_queued_never_sends(void **state)
{
    (void)state;
    struct kte_send_view v = view(0, 0);
    struct kte_flush_req f = {10, 5000, NULL};
    v.flushes = &f;
    int64_t wake = -1;
    assert_false(kte_send_should(&v, 1000, &wake));
    assert_int_equal(wake, 0);
}

static void test_full_batch_sends_without_a_flush(void **state)
{
    (void)state;
    struct kte_send_view v = view(KTE_BATCH_MAX_RECORDS, 1);
    int64_t wake;
    assert_true(kte_send_should(&v, 1000, &wake));
    v = view(3, 1);
    v.queued_bytes = KTE_BATCH_MAX_BYTES;
    assert_true(kte_send_should(&v, 1000, &wake));
    v = view(3, 1);
    assert_false(kte_send_should(&v, 1000, &wake)); /* end mode, no flush: wait */
    assert_int_equal(wake, 0);
}

/* `kpl` and `ndjson` group many events per Kinesis record: a call is full
 * at the framer's event limit or a request's bytes, not at 500 events; and
 * never later than half the buffer, so a small buffer sends before it
 * overflows. */
static void test_full_follows_the_format_and_the_buffer(void **state)
{
    (void)state;
    struct kte_config cfg = {0};
    cfg.record_format = KTE_FORMAT_EVENT;
    cfg.max_request_bytes = 10L << 20;
    cfg.max_buffer_bytes = 64L << 20;
    struct kte_send_limits l = kte_send_limits(&cfg, KTE_BATCH_MAX_RECORDS);
    assert_int_equal(l.events, KTE_BATCH_MAX_RECORDS);
    assert_int_equal(l.bytes, KTE_BATCH_MAX_BYTES); /* `event`: 5 MiB whatever the request limit */
    assert_true(kte_send_full(&l, KTE_BATCH_MAX_RECORDS, 100));
    assert_false(kte_send_full(&l, KTE_BATCH_MAX_RECORDS - 1, KTE_BATCH_MAX_BYTES - 1));

    cfg.record_format = KTE_FORMAT_KPL;
    l = kte_send_limits(&cfg, 16384);
    assert_int_equal(l.events, 16384);
    assert_int_equal(l.bytes, 10u << 20);
    assert_false(kte_send_full(&l, KTE_BATCH_MAX_RECORDS, KTE_BATCH_MAX_RECORDS * 100));
    assert_false(kte_send_full(&l, 16383, (10u << 20) - 1));
    assert_true(kte_send_full(&l, 16384, 1));
    assert_true(kte_send_full(&l, 3, 10u << 20));

    cfg.record_format = KTE_FORMAT_NDJSON;
    cfg.max_buffer_bytes = 1L << 20; /* the smallest buffer: half of it */
    l = kte_send_limits(&cfg, 16384);
    assert_int_equal(l.bytes, 512u << 10);
    cfg.record_format = KTE_FORMAT_EVENT;
    assert_int_equal(kte_send_limits(&cfg, KTE_BATCH_MAX_RECORDS).bytes, 512u << 10);

    /* kte_send_should acts on it */
    struct kte_send_view v = view(KTE_BATCH_MAX_RECORDS, 1);
    v.full = kte_send_limits(&(struct kte_config){.record_format = KTE_FORMAT_KPL,
                                                  .max_request_bytes = 5L << 20,
                                                  .max_buffer_bytes = 16L << 20},
                             16384);
    int64_t wake;
    assert_false(kte_send_should(&v, 1000, &wake));
    v.queued_bytes = 5u << 20;
    assert_true(kte_send_should(&v, 1000, &wake));
}

/* Flushes compose: any waiting flush that covers the head and has time
 * left is enough, whatever the others' state. */
static void test_any_live_flush_covering_the_head_sends(void **state)
{
    (void)state;
    struct kte_send_view v = view(3, 5);
    struct kte_flush_req expired = {10, 1010, NULL};  /* less than KTE_MIN_ATTEMPT_MS left */
    struct kte_flush_req older = {4, 9000, &expired}; /* does not cover seq 5 */
    v.flushes = &older;
    int64_t wake;
    assert_false(kte_send_should(&v, 1000, &wake));
    struct kte_flush_req live = {6, 3000, &older};
    v.flushes = &live;
    assert_true(kte_send_should(&v, 1000, &wake));
    /* A kte.dropped record at the head is due for any flush. */
    v.flushes = &older;
    v.head_is_report = true;
    v.head_seq = 99;
    assert_true(kte_send_should(&v, 1000, &wake));
}

static void test_backoff_defers_a_due_send(void **state)
{
    (void)state;
    struct kte_send_view v = view(3, 1);
    struct kte_flush_req f = {10, 5000, NULL};
    v.flushes = &f;
    v.next_attempt_ms = 1200;
    int64_t wake;
    assert_false(kte_send_should(&v, 1000, &wake));
    assert_int_equal(wake, 1200);
    assert_true(kte_send_should(&v, 1200, &wake));
}

/* A flush whose deadline falls inside the backoff gets one last attempt
 * KTE_LAST_CHANCE_MS before it (after a long outage the backoff reaches 2 s,
 * longer than a SIGTERM flush), and only one. */
static void test_flush_gets_a_last_chance_inside_the_backoff(void **state)
{
    (void)state;
    struct kte_send_view v = view(3, 1);
    struct kte_flush_req f = {10, 2000, NULL};
    v.flushes = &f;
    v.next_attempt_ms = 2500; /* past the deadline */
    v.last_call_ms = 500;
    int64_t wake;
    assert_false(kte_send_should(&v, 1000, &wake));
    assert_int_equal(wake, 2000 - KTE_LAST_CHANCE_MS);
    assert_true(kte_send_should(&v, 2000 - KTE_LAST_CHANCE_MS, &wake));
    /* that attempt failed: no second last chance, the backoff decides */
    v.last_call_ms = 2000 - KTE_LAST_CHANCE_MS;
    assert_false(kte_send_should(&v, 1750, &wake));
    assert_int_equal(wake, 2500);
    /* a backoff ending before the last chance is kept as it is */
    v.last_call_ms = 500;
    v.next_attempt_ms = 1200;
    assert_false(kte_send_should(&v, 1000, &wake));
    assert_int_equal(wake, 1200);
    /* without a flush (a full queue under backoff) there is no deadline */
    v.flushes = NULL;
    v.queued = KTE_BATCH_MAX_RECORDS;
    v.next_attempt_ms = 2500;
    assert_false(kte_send_should(&v, 1000, &wake));
    assert_int_equal(wake, 2500);
}

static void test_continuous_timer(void **state)
{
    (void)state;
    /* adaptive runs the same timer (it delivers what deferred invokes left);
     * end, periodic and the Datadog reference have none */
    static const struct {
        enum kte_flush_mode mode;
        bool timer;
    } cases[] = {{KTE_FLUSH_CONTINUOUS, true},
                 {KTE_FLUSH_ADAPTIVE, true},
                 {KTE_FLUSH_END, false},
                 {KTE_FLUSH_PERIODIC, false},
                 {KTE_FLUSH_DATADOG, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kte_send_view v = view(3, 1);
        v.mode = cases[i].mode;
        v.interval_ms = 100;
        v.last_flush_ms = 1000;
        int64_t wake;
        assert_false(kte_send_should(&v, 1050, &wake));
        assert_int_equal(wake, cases[i].timer ? 1100 : 0);
        assert_true(kte_send_should(&v, 1100, &wake) == cases[i].timer);
    }
}

static void test_backoff_grows_caps_and_resets_on_progress(void **state)
{
    (void)state;
    int64_t b = 0;
    /* rand = UINT64_MAX % (cap + 1) is the top of the window for these caps. */
    int64_t want[] = {25, 50, 100, 200, 400, 800, 1600, 2000, 2000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int64_t at = kte_send_backoff(&b, false, (uint64_t)want[i], 1000);
        assert_int_equal(b, want[i]);
        assert_int_equal(at, 1000 + want[i]);
    }
    assert_int_equal(kte_send_backoff(&b, false, 0, 1000), 1000); /* full jitter: may be now */
    kte_send_backoff(&b, true, 7, 1000);
    assert_int_equal(b, KTE_BACKOFF_BASE_MS); /* progress starts over */
}

static void test_outcome_per_status(void **state)
{
    (void)state;
    struct kte_rec_result res[2] = {{KTE_REC_OK, ""}, {KTE_REC_RETRY, "X"}};
    assert_int_equal(kte_send_outcome(KTE_PUT_OK, res, 0), KTE_REC_OK);
    assert_int_equal(kte_send_outcome(KTE_PUT_OK, res, 1), KTE_REC_RETRY);
    assert_int_equal(kte_send_outcome(KTE_PUT_RETRY, res, 0), KTE_REC_RETRY);
    assert_int_equal(kte_send_outcome(KTE_PUT_PERMANENT, res, 0), KTE_REC_PERMANENT);
}

static void test_random_is_a_full_period_xorshift(void **state)
{
    (void)state;
    uint64_t s = 1, first = kte_send_random(&s);
    assert_int_not_equal(first, 0);
    assert_int_equal(s, first);
    assert_int_not_equal(kte_send_random(&s), first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_queued_never_sends),
        cmocka_unit_test(test_full_batch_sends_without_a_flush),
        cmocka_unit_test(test_full_follows_the_format_and_the_buffer),
        cmocka_unit_test(test_any_live_flush_covering_the_head_sends),
        cmocka_unit_test(test_backoff_defers_a_due_send),
        cmocka_unit_test(test_flush_gets_a_last_chance_inside_the_backoff),
        cmocka_unit_test(test_continuous_timer),
        cmocka_unit_test(test_backoff_grows_caps_and_resets_on_progress),
        cmocka_unit_test(test_outcome_per_status),
        cmocka_unit_test(test_random_is_a_full_period_xorshift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
