/* kte_flush: when to flush at the end of an invoke and at shutdown, and how
 * long each step may take. Pure functions of the configuration and clock. */
#include "kte_flush.h"

#include "kte_test_util.h"

#define NOW INT64_C(1763897400000)

/* The configuration's defaults (see test_config.c), fields set directly. */
static void default_cfg(struct kte_config *c)
{
    memset(c, 0, sizeof *c);
    c->types = KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION;
    c->buffer_timeout_ms = 25;
    c->flush_mode = KTE_FLUSH_END;
    c->flush_interval_ms = 0;
    c->flush_wait_ms = 0;
    c->flush_timeout_ms = 2000;
}

static void test_margins_are_as_documented(void **state)
{
    (void)state;
    assert_int_equal(KTE_INVOKE_MARGIN_MS, 50);
    assert_int_equal(KTE_SHUTDOWN_MARGIN_MS, 150);
    assert_int_equal(KTE_SHUTDOWN_FLUSH_MS, 300);
    assert_int_equal(KTE_SHUTDOWN_DEFAULT_MS, 1700);
}

/* ---- end of invoke ---------------------------------------------------------- */

static void test_invoke_end_mode(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, NOW - 10, NOW + 3000);
    assert_true(p.flush);
    assert_true(p.wait_runtime_done);
    assert_int_equal(p.deadline, NOW + 3000 - 50);
    assert_int_equal(p.wait_until, NOW + 3000 - 50); /* flush_wait_ms 0: until the deadline */

    /* A long function timeout: the deadline follows it. */
    p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 900000);
    assert_true(p.flush);
    assert_int_equal(p.deadline, NOW + 900000 - 50);
    assert_int_equal(p.wait_until, NOW + 900000 - 50);
}

static void test_invoke_flush_wait_bound(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.flush_wait_ms = 200;
    struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_true(p.wait_runtime_done);
    assert_int_equal(p.wait_until, NOW + 200);
    assert_int_equal(p.deadline, NOW + 2950);
    /* A bound past the deadline is cut to the deadline. */
    c.flush_wait_ms = 5000;
    p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_int_equal(p.wait_until, NOW + 2950);
    /* Exactly at the deadline. */
    c.flush_wait_ms = 2950;
    p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_int_equal(p.wait_until, NOW + 2950);
    c.flush_wait_ms = 2949;
    p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_int_equal(p.wait_until, NOW + 2949);
}

static void test_invoke_periodic_mode(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.flush_mode = KTE_FLUSH_PERIODIC;
    c.flush_interval_ms = 1000;
    struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, NOW - 999, NOW + 3000);
    assert_false(p.flush);
    assert_false(p.wait_runtime_done);
    assert_int_equal(p.deadline, NOW + 2950);
    p = kte_flush_plan_invoke(&c, NOW, NOW - 1000, NOW + 3000);
    assert_true(p.flush);
    assert_true(p.wait_runtime_done);
    p = kte_flush_plan_invoke(&c, NOW, NOW - 60000, NOW + 3000);
    assert_true(p.flush);
    /* Never flushed yet (last_flush 0): flush. */
    p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_true(p.flush);
    assert_true(p.wait_runtime_done);
}

static void test_invoke_continuous_mode(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.flush_mode = KTE_FLUSH_CONTINUOUS;
    c.flush_interval_ms = 500;
    static const int64_t lasts[] = {0, NOW - 100000, NOW};
    for (size_t i = 0; i < 3; i++) {
        struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, lasts[i], NOW + 3000);
        assert_false(p.flush); /* the sender's timer flushes during the invoke */
        assert_false(p.wait_runtime_done);
        assert_int_equal(p.deadline, NOW + 2950);
    }
}

static void test_invoke_without_platform_events(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    static const unsigned types[] = {KTE_TYPE_FUNCTION, KTE_TYPE_EXTENSION,
                                     KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION};
    for (size_t i = 0; i < 3; i++) {
        c.types = types[i];
        struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
        assert_true(p.flush);
        assert_false(p.wait_runtime_done); /* no runtimeDone will come */
        assert_int_equal(p.deadline, NOW + 2950);
    }
    c.types = KTE_TYPE_PLATFORM;
    assert_true(kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000).wait_runtime_done);
}

static void test_invoke_missing_or_past_deadline(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    /* 0 (absent), the docs' 676051 (not epoch ms), and already past. */
    static const int64_t deadlines[] = {0, 676051, NOW - 1, NOW};
    for (size_t i = 0; i < 4; i++) {
        struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, deadlines[i]);
        assert_true(p.flush);
        assert_int_equal(p.deadline, NOW + 2000); /* the flush timeout bounds it */
        assert_int_equal(p.wait_until, NOW + 2000);
    }
    c.flush_timeout_ms = 50;
    c.flush_wait_ms = 10;
    struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, 0);
    assert_int_equal(p.deadline, NOW + 50);
    assert_int_equal(p.wait_until, NOW + 10);
}

/* The deadline is "nothing may run past this". An invoke deadline that is
 * real and in the future but closer than the margin must not be replaced by
 * now + flush_timeout_ms, which lies after it. */
static void test_invoke_deadline_within_margin_is_not_exceeded(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    static const int64_t left[] = {1, 30, 50};
    for (size_t i = 0; i < 3; i++) {
        int64_t invoke_deadline = NOW + left[i];
        struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, invoke_deadline);
        int64_t fd = kte_flush_invoke_flush_deadline(&c, NOW, &p);
        if (p.deadline > invoke_deadline || fd > invoke_deadline || p.wait_until > invoke_deadline)
            print_error("invoke deadline now+%lld: plan deadline now+%lld, wait until now+%lld, "
                        "flush deadline now+%lld\n",
                        (long long)left[i], (long long)(p.deadline - NOW),
                        (long long)(p.wait_until - NOW), (long long)(fd - NOW));
        assert_true(p.deadline <= invoke_deadline);
        assert_true(p.wait_until <= invoke_deadline);
        assert_true(fd <= invoke_deadline);
    }
}

/* Over a range of deadlines past the margin: every bound is consistent. */
static void test_invoke_invariants(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    static const long waits[] = {0, 1, 100, 3000};
    for (size_t w = 0; w < 4; w++) {
        c.flush_wait_ms = waits[w];
        for (int64_t left = 51; left < 6000; left += 7) {
            struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, NOW + left);
            assert_int_equal(p.deadline, NOW + left - 50);
            assert_true(p.wait_until <= p.deadline);
            assert_true(p.wait_until >= NOW);
            if (waits[w])
                assert_true(p.wait_until <= NOW + waits[w]);
            int64_t fd = kte_flush_invoke_flush_deadline(&c, p.wait_until, &p);
            assert_true(fd <= p.deadline);
            assert_true(fd <= p.wait_until + c.flush_timeout_ms);
        }
    }
}

static void test_invoke_flush_deadline(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    struct kte_invoke_plan p = kte_flush_plan_invoke(&c, NOW, 0, NOW + 3000);
    assert_int_equal(p.deadline, NOW + 2950);
    /* Flush starting right away: the flush timeout ends first. */
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW, &p), NOW + 2000);
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW + 100, &p), NOW + 2100);
    /* Flush starting after a long wait: the invoke deadline ends first. */
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW + 950, &p), NOW + 2950);
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW + 2000, &p), NOW + 2950);
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW + 2950, &p), NOW + 2950);
    c.flush_timeout_ms = 50;
    assert_int_equal(kte_flush_invoke_flush_deadline(&c, NOW + 100, &p), NOW + 150);
}

/* ---- shutdown ---------------------------------------------------------------- */

static void test_shutdown_with_last_request(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    /* Lambda gives external extensions 2 s at shutdown. */
    struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, NOW + 2000, true);
    assert_true(p.wait_report);
    assert_int_equal(p.deadline, NOW + 2000 - 150);
    assert_int_equal(p.wait_until, NOW + 2000 - 150 - 300);
}

static void test_shutdown_without_last_request(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, NOW + 2000, false);
    assert_false(p.wait_report);
    assert_int_equal(p.deadline, NOW + 1850);
    /* One buffering period (+50 ms) for the Telemetry API to hand over. */
    assert_int_equal(p.wait_until, NOW + 25 + 50);
    c.buffer_timeout_ms = 1000;
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 2000, false);
    assert_int_equal(p.wait_until, NOW + 1050);
    /* ... but never past the point that leaves the flush its share. */
    c.buffer_timeout_ms = 30000;
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 2000, false);
    assert_int_equal(p.wait_until, NOW + 1550);
}

static void test_shutdown_without_platform_events(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.types = KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION;
    struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, NOW + 2000, true);
    assert_false(p.wait_report); /* no platform.report will come */
    assert_int_equal(p.wait_until, NOW + 75);
    assert_int_equal(p.deadline, NOW + 1850);
}

static void test_shutdown_absent_or_past_deadline(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    static const int64_t deadlines[] = {0, NOW - 5, NOW};
    for (size_t i = 0; i < 3; i++) {
        struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, deadlines[i], true);
        assert_true(p.wait_report);
        assert_int_equal(p.deadline, NOW + 1700 - 150);
        assert_int_equal(p.wait_until, NOW + 1700 - 150 - 300);
        p = kte_flush_plan_shutdown(&c, NOW, deadlines[i], false);
        assert_int_equal(p.deadline, NOW + 1550);
        assert_int_equal(p.wait_until, NOW + 75);
    }
}

static void test_shutdown_tiny_deadlines(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    /* Less than margin + flush share: no waiting at all. */
    struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, NOW + 450, true);
    assert_int_equal(p.deadline, NOW + 300);
    assert_int_equal(p.wait_until, NOW);
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 451, true);
    assert_int_equal(p.wait_until, NOW + 1);
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 450, false);
    assert_int_equal(p.wait_until, NOW);
    /* Less than the margin itself: the flush deadline has passed already,
     * and waiting ends now. */
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 100, true);
    assert_int_equal(p.deadline, NOW - 50);
    assert_int_equal(p.wait_until, NOW);
    p = kte_flush_plan_shutdown(&c, NOW, NOW + 1, false);
    assert_int_equal(p.deadline, NOW - 149);
    assert_int_equal(p.wait_until, NOW);
}

static void test_shutdown_invariants(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    static const long timeouts[] = {25, 1000, 30000};
    for (size_t t = 0; t < 3; t++) {
        c.buffer_timeout_ms = timeouts[t];
        for (int last = 0; last < 2; last++) {
            for (int64_t left = 1; left < 10000; left += 13) {
                struct kte_shutdown_plan p = kte_flush_plan_shutdown(&c, NOW, NOW + left, last);
                assert_int_equal(p.deadline, NOW + left - 150); /* never past Lambda's */
                assert_true(p.wait_until >= NOW);
                if (left >= 450)
                    assert_true(p.wait_until <= p.deadline - 300);
                else
                    assert_int_equal(p.wait_until, NOW);
                assert_true(p.wait_report == (last != 0));
            }
        }
    }
}

/* ---- adaptive (issue 12, docs/flush.md) ------------------------------------- */

static void adaptive_cfg(struct kte_config *c)
{
    default_cfg(c);
    c->flush_mode = KTE_FLUSH_ADAPTIVE;
    c->max_latency_ms = 2000;
    c->flush_interval_ms = 500;
}

/* INVOKEs every gap ms, n of them, the last at NOW. */
static void invokes_every(struct kte_flush_history *h, int n, int64_t gap)
{
    memset(h, 0, sizeof *h);
    for (int i = n - 1; i >= 0; i--)
        kte_flush_history_invoke(h, NOW - (int64_t)i * gap);
}

static void test_adaptive_history(void **state)
{
    (void)state;
    struct kte_flush_history h;
    memset(&h, 0, sizeof h);
    assert_int_equal(kte_flush_predicted_gap(&h), -1);
    assert_int_equal(kte_flush_predicted_gap(NULL), -1);
    kte_flush_history_invoke(&h, NOW);
    assert_int_equal(h.invokes, 1);
    assert_int_equal(h.ngaps, 0); /* the first INVOKE has no gap */
    assert_int_equal(kte_flush_predicted_gap(&h), -1);
    kte_flush_history_invoke(&h, NOW + 200);
    assert_int_equal(kte_flush_predicted_gap(&h), 200); /* one gap is enough */
    kte_flush_history_invoke(&h, NOW + 400);
    kte_flush_history_invoke(&h, NOW + 900);
    assert_int_equal(kte_flush_predicted_gap(&h), 500); /* the longest recent gap */
    /* A clock that went back records no gap. */
    kte_flush_history_invoke(&h, NOW);
    assert_int_equal(h.ngaps, 3);
    /* Old gaps leave the window: after 8 short ones the 500 ms gap is gone. */
    for (int i = 1; i <= KTE_ADAPT_HISTORY; i++)
        kte_flush_history_invoke(&h, NOW + i * 100);
    assert_int_equal(kte_flush_predicted_gap(&h), 100);
}

static void test_adaptive_first_invokes_flush_like_end(void **state)
{
    (void)state;
    struct kte_config c;
    adaptive_cfg(&c);
    struct kte_flush_history h;
    for (int n = 1; n <= KTE_ADAPT_WARMUP; n++) {
        invokes_every(&h, n, 200); /* fast, but too few to predict */
        struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
        assert_true(p.flush);
        assert_true(p.wait_runtime_done);
    }
    struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, NULL, 0);
    assert_true(p.flush && p.wait_runtime_done);
}

static void test_adaptive_defers_when_next_invoke_is_soon(void **state)
{
    (void)state;
    struct kte_config c;
    adaptive_cfg(&c);
    struct kte_flush_history h;
    /* steady (5/s) and busy (50/s): next at once, the timer delivers */
    static const int64_t soon[] = {20, 200, 1450};
    for (size_t i = 0; i < sizeof soon / sizeof soon[0]; i++) {
        invokes_every(&h, KTE_ADAPT_WARMUP + 1, soon[i]);
        struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
        assert_false(p.flush);
        assert_false(p.wait_runtime_done);
    }
    /* the bound: gap + timer + margin <= max latency */
    invokes_every(&h, 5, 2000 - 500 - KTE_ADAPT_MARGIN);
    assert_true(kte_flush_adaptive_defer(&c, &h, 0));
    invokes_every(&h, 5, 2000 - 500 - KTE_ADAPT_MARGIN + 1);
    assert_false(kte_flush_adaptive_defer(&c, &h, 0));
    /* a backlog the sender has not cleared: flush at the end (backpressure) */
    invokes_every(&h, 5, 20);
    assert_true(kte_flush_adaptive_defer(&c, &h, KTE_ADAPT_MAX_BACKLOG - 1));
    assert_false(kte_flush_adaptive_defer(&c, &h, KTE_ADAPT_MAX_BACKLOG));
    struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 10000);
    assert_true(p.flush && p.wait_runtime_done);
    /* a larger bound defers for sparser traffic */
    c.max_latency_ms = 60000;
    c.flush_interval_ms = 15000;
    invokes_every(&h, 5, 20000);
    assert_true(kte_flush_adaptive_defer(&c, &h, 0));
}

static void test_adaptive_flushes_at_end_when_idle_is_long_or_uncertain(void **state)
{
    (void)state;
    struct kte_config c;
    adaptive_cfg(&c);
    struct kte_flush_history h;
    /* sparse: every 30 s */
    invokes_every(&h, 10, 30000);
    struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
    assert_true(p.flush);
    assert_true(p.wait_runtime_done);
    assert_int_equal(p.wait_until, NOW + 3000 - 50);
    /* one long gap among short ones keeps it flushing at the end until it
     * leaves the window (bursty: the first invokes of a burst) */
    invokes_every(&h, 10, 10);
    kte_flush_history_invoke(&h, NOW + 120000);
    for (int i = 1; i < KTE_ADAPT_HISTORY; i++) {
        kte_flush_history_invoke(&h, NOW + 120000 + i * 10);
        assert_false(kte_flush_adaptive_defer(&c, &h, 0));
    }
    kte_flush_history_invoke(&h, NOW + 120000 + KTE_ADAPT_HISTORY * 10);
    assert_true(kte_flush_adaptive_defer(&c, &h, 0));
    /* without platform events there is no runtimeDone to wait for */
    c.types = KTE_TYPE_FUNCTION;
    invokes_every(&h, 10, 30000);
    p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
    assert_true(p.flush);
    assert_false(p.wait_runtime_done);
}

static void test_adaptive_freeze_accounting(void **state)
{
    (void)state;
    struct kte_config c;
    adaptive_cfg(&c);
    assert_false(kte_flush_was_frozen(&c, NOW, NOW + 2000)); /* the timer could have run */
    assert_true(kte_flush_was_frozen(&c, NOW, NOW + 2001));
    assert_false(kte_flush_was_frozen(&c, NOW, NOW - 5)); /* clock stepped back */
    uint64_t counted = 0;
    assert_int_equal(kte_flush_held_over_freeze(10, 4, &counted), 6);
    assert_int_equal(counted, 10);
    /* still there at the next thaw: not counted again, only the newer ones */
    assert_int_equal(kte_flush_held_over_freeze(13, 5, &counted), 3);
    assert_int_equal(counted, 13);
    assert_int_equal(kte_flush_held_over_freeze(13, 13, &counted), 0);
    /* what arrived before the thaw, leaving out what Lambda held */
    struct kte_intake_log l;
    memset(&l, 0, sizeof l);
    assert_int_equal(kte_intake_log_before(&l, NOW), 0);
    kte_intake_log_add(&l, NOW - 3000, 4); /* the invoke's logs and runtimeDone */
    kte_intake_log_add(&l, NOW - 2990, 2);
    kte_intake_log_add(&l, NOW + 1, 3); /* after the thaw: report, start */
    assert_int_equal(kte_intake_log_before(&l, NOW), 6);
    assert_int_equal(kte_intake_log_before(&l, NOW - 2990), 4); /* strictly before */
    assert_int_equal(kte_intake_log_before(&l, NOW - 5000), 0);
    assert_int_equal(kte_intake_log_before(&l, NOW + 10), 9);
    /* beyond the log's memory: the oldest entry kept bounds the answer */
    for (int i = 0; i < KTE_INTAKE_LOG; i++)
        kte_intake_log_add(&l, NOW + 100 + i, 1);
    assert_int_equal(kte_intake_log_before(&l, NOW + 50), 9);
    assert_int_equal(kte_intake_log_before(&l, NOW + 100 + KTE_INTAKE_LOG), 9 + KTE_INTAKE_LOG);
    counted = 0;
    assert_int_equal(kte_flush_held_over_freeze(10, 10, &counted), 0);
    assert_int_equal(kte_flush_held_over_freeze(10, 12, &counted), 0); /* later ones too */
}

/* Other modes ignore the history. */
static void test_history_does_not_change_other_modes(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    struct kte_flush_history h;
    invokes_every(&h, 10, 20);
    static const enum kte_flush_mode modes[] = {KTE_FLUSH_END, KTE_FLUSH_PERIODIC,
                                                KTE_FLUSH_CONTINUOUS};
    for (size_t i = 0; i < 3; i++) {
        c.flush_mode = modes[i];
        c.flush_interval_ms = modes[i] == KTE_FLUSH_END ? 0 : 1000;
        for (int64_t last = NOW - 5000; last <= NOW; last += 2500) {
            struct kte_invoke_plan a = kte_flush_plan_invoke(&c, NOW, last, NOW + 3000);
            struct kte_invoke_plan b = kte_flush_plan_invoke_h(&c, NOW, last, NOW + 3000, &h, 0);
            assert_true(a.flush == b.flush && a.wait_runtime_done == b.wait_runtime_done);
            assert_int_equal(a.wait_until, b.wait_until);
            assert_int_equal(a.deadline, b.deadline);
        }
    }
}

/* The bench's reference strategy: Datadog's published rules. */
static void test_datadog_reference(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.flush_mode = KTE_FLUSH_DATADOG;
    c.flush_interval_ms = 20000;
    struct kte_flush_history h;
    /* the first 20 invokes: at the end, after runtimeDone */
    invokes_every(&h, KTE_DATADOG_WARMUP, 200);
    struct kte_invoke_plan p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
    assert_true(p.flush && p.wait_runtime_done);
    /* then, invoked more often than every 120 s: every 20 s, at the start */
    invokes_every(&h, KTE_DATADOG_WARMUP + 1, 200);
    p = kte_flush_plan_invoke_h(&c, NOW, NOW - 19999, NOW + 3000, &h, 0);
    assert_false(p.flush);
    p = kte_flush_plan_invoke_h(&c, NOW, NOW - 20000, NOW + 3000, &h, 0);
    assert_true(p.flush);
    assert_false(p.wait_runtime_done);
    assert_int_equal(p.wait_until, NOW);
    /* less often: at the end */
    invokes_every(&h, 30, 120000);
    p = kte_flush_plan_invoke_h(&c, NOW, NOW, NOW + 3000, &h, 0);
    assert_true(p.flush && p.wait_runtime_done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_margins_are_as_documented),
        cmocka_unit_test(test_invoke_end_mode),
        cmocka_unit_test(test_invoke_flush_wait_bound),
        cmocka_unit_test(test_invoke_periodic_mode),
        cmocka_unit_test(test_invoke_continuous_mode),
        cmocka_unit_test(test_invoke_without_platform_events),
        cmocka_unit_test(test_invoke_missing_or_past_deadline),
        cmocka_unit_test(test_invoke_deadline_within_margin_is_not_exceeded),
        cmocka_unit_test(test_invoke_invariants),
        cmocka_unit_test(test_invoke_flush_deadline),
        cmocka_unit_test(test_shutdown_with_last_request),
        cmocka_unit_test(test_shutdown_without_last_request),
        cmocka_unit_test(test_shutdown_without_platform_events),
        cmocka_unit_test(test_shutdown_absent_or_past_deadline),
        cmocka_unit_test(test_shutdown_tiny_deadlines),
        cmocka_unit_test(test_shutdown_invariants),
        cmocka_unit_test(test_adaptive_history),
        cmocka_unit_test(test_adaptive_first_invokes_flush_like_end),
        cmocka_unit_test(test_adaptive_defers_when_next_invoke_is_soon),
        cmocka_unit_test(test_adaptive_flushes_at_end_when_idle_is_long_or_uncertain),
        cmocka_unit_test(test_adaptive_freeze_accounting),
        cmocka_unit_test(test_history_does_not_change_other_modes),
        cmocka_unit_test(test_datadog_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
