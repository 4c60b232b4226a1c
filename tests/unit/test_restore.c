/* kte_restore: telling a SnapStart restore apart from the lifecycle and the
 * telemetry, in the orders Lambda and lambda-sim deliver them. */
#include "kte_restore.h"

#include "kte_test_util.h"

static bool ev(struct kte_restore *r, const char *type, bool *redelivered)
{
    bool dummy;
    return kte_restore_on_event(r, type, redelivered ? redelivered : &dummy);
}

/* The original init: nothing is a restore, nothing is marked, whether the
 * init report arrives before or after the end of init. */
static void original_init(struct kte_restore *r, bool report_after_arm)
{
    bool re;
    assert_false(ev(r, "platform.initStart", &re));
    assert_false(re);
    assert_false(ev(r, "platform.telemetrySubscription", &re));
    assert_false(re);
    assert_false(ev(r, "platform.initRuntimeDone", &re));
    assert_false(ev(r, "platform.extension", &re));
    if (!report_after_arm)
        assert_false(ev(r, "platform.initReport", &re));
    kte_restore_arm(r);
    if (report_after_arm) {
        assert_false(ev(r, "platform.initReport", &re));
        assert_false(re);
    }
}

/* The restored environment's telemetry: the init events again, then the
 * restore events, then the invoke. Returns how many restores began. */
static int restored_telemetry(struct kte_restore *r, int invokes)
{
    int begun = 0;
    bool re;
    const char *init[] = {"platform.initStart", "platform.initRuntimeDone", "platform.initReport"};
    for (size_t i = 0; i < 3; i++) {
        begun += ev(r, init[i], &re);
        assert_true(re == r->snapstart); /* re-delivered */
    }
    const char *rest[] = {"platform.restoreStart", "platform.restoreRuntimeDone",
                          "platform.restoreReport"};
    for (size_t i = 0; i < 3; i++) {
        begun += ev(r, rest[i], &re);
        assert_false(re);
    }
    for (int i = 0; i < invokes; i++) {
        begun += ev(r, "platform.start", &re);
        begun += ev(r, "function", &re);
        assert_false(re);
        begun += ev(r, "platform.runtimeDone", &re);
        begun += ev(r, "platform.report", &re);
    }
    return begun;
}

/* A process through its original init. */
static struct kte_restore after_init(bool snapstart, bool report_after_arm)
{
    struct kte_restore r;
    kte_restore_init(&r, snapstart);
    original_init(&r, report_after_arm);
    return r;
}

static void test_not_snapstart_never_restores(void **state)
{
    (void)state;
    struct kte_restore r = after_init(false, true);
    assert_false(kte_restore_on_invoke(&r));
    assert_int_equal(restored_telemetry(&r, 2), 0);
    assert_int_equal(r.restores, 0);
}

/* Lambda: the INVOKE arrives first, its telemetry after. One restore. */
static void test_invoke_first(void **state)
{
    (void)state;
    struct kte_restore r = after_init(true, true);
    assert_true(kte_restore_on_invoke(&r));
    assert_int_equal(restored_telemetry(&r, 2), 0);
    assert_false(kte_restore_on_invoke(&r)); /* the next invoke is just an invoke */
    assert_int_equal(r.restores, 1);
}

/* The telemetry (re-delivered initStart) is ingested before the INVOKE. */
static void test_telemetry_first(void **state)
{
    (void)state;
    struct kte_restore r = after_init(true, false);
    bool re;
    assert_true(ev(&r, "platform.initStart", &re));
    assert_true(re);
    assert_false(kte_restore_on_invoke(&r));
    assert_false(ev(&r, "platform.restoreStart", &re));
    assert_int_equal(r.restores, 1);
}

/* Lambda might not re-deliver the init events: restoreStart alone. */
static void test_restore_start_alone(void **state)
{
    (void)state;
    struct kte_restore r = after_init(true, true);
    bool re;
    assert_true(ev(&r, "platform.restoreStart", &re));
    assert_false(re);
    assert_false(kte_restore_on_invoke(&r));
    assert_false(ev(&r, "platform.restoreReport", &re));
    assert_false(ev(&r, "platform.start", &re));
    assert_int_equal(r.restores, 1);
}

/* lambda-sim resumes the same processes for each restore: restore 2 and 3
 * begin from the telemetry, once each. */
static void test_same_process_restored_three_times(void **state)
{
    (void)state;
    struct kte_restore r = after_init(true, true);
    assert_true(kte_restore_on_invoke(&r));
    assert_int_equal(restored_telemetry(&r, 2), 0);
    assert_int_equal(restored_telemetry(&r, 2), 1);
    assert_false(kte_restore_on_invoke(&r));
    assert_int_equal(restored_telemetry(&r, 1), 1);
    assert_int_equal(r.restores, 3);
}

/* Before init ended nothing is a restore, even a repeated type. */
static void test_not_armed(void **state)
{
    (void)state;
    struct kte_restore r;
    kte_restore_init(&r, true);
    assert_false(ev(&r, "platform.initStart", NULL));
    assert_false(ev(&r, "platform.initStart", NULL));
    assert_false(ev(&r, "platform.restoreStart", NULL));
    assert_false(kte_restore_on_invoke(&r));
    assert_int_equal(r.restores, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_snapstart_never_restores),
        cmocka_unit_test(test_invoke_first),
        cmocka_unit_test(test_telemetry_first),
        cmocka_unit_test(test_restore_start_alone),
        cmocka_unit_test(test_same_process_restored_three_times),
        cmocka_unit_test(test_not_armed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
