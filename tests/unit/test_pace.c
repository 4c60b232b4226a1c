/* kte_pace: pacing under throttling, as pure functions without threads. */
#include "kte_pace.h"

#include "kte_test_util.h"

#include <math.h>

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-9)

static void test_cost_is_the_binding_limit_of_a_shard(void **state)
{
    (void)state;
    NEAR(kte_pace_cost(100), 0.001);               /* small: 1 of 1,000 records/s */
    NEAR(kte_pace_cost(1048), 0.001);              /* still the count */
    NEAR(kte_pace_cost(51200), 51200 / 1048576.0); /* a 50 KiB aggregate: bytes */
    NEAR(kte_pace_cost(1048576), 1.0);             /* 1 MiB: a whole shard-second */
}

static void test_unthrottled_never_waits_nor_caps(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    for (int64_t t = 1000; t < 20000; t += 10)
        kte_pace_answer(&p, 0.5, 0.5, 500, 0, t);
    NEAR(p.rate, 0);
    assert_int_equal(kte_pace_next_ms(&p, 20000), 20000);
    assert_true(kte_pace_max_records(&p, 20000) == SIZE_MAX);
}

/* The first throttled answer starts pacing at 0.8 of what the stream
 * stored in the last second, with a full bucket: the refused records go
 * again at once, as many as a second of the rate pays for. */
static void test_first_throttle_starts_from_what_was_stored(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    kte_pace_answer(&p, 0.5, 0.5, 500, 0, 1000);
    kte_pace_answer(&p, 0.5, 0.3, 500, 200, 1100); /* 0.8 stored this second */
    NEAR(p.rate, 0.8 * 0.8);
    assert_int_equal(kte_pace_next_ms(&p, 1100), 1100);
    assert_int_equal(kte_pace_max_records(&p, 1100), 640);
}

/* Then calls carry what the tokens pay for and wait for a quarter second
 * of the rate: a slow writer sends small calls often. */
static void test_calls_follow_the_tokens(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    kte_pace_answer(&p, 0.5, 0.5, 500, 0, 1000);
    kte_pace_answer(&p, 0.5, 0, 500, 500, 1010); /* rate 0.4, bucket 0.4 */
    assert_int_equal(kte_pace_max_records(&p, 1010), 400);
    kte_pace_answer(&p, 0.4, 0.4, 400, 0, 1020); /* 10 ms of growth: 0.401 */
    NEAR(p.rate, 0.4 + 0.4 * KTE_PACE_GROWTH * 0.01);
    /* tokens ~0: the next call waits for a quarter second's worth */
    int64_t next = kte_pace_next_ms(&p, 1020);
    assert_int_equal(next, 1020 + 248); /* (0.10025 - 0.001) / 0.401 s */
    assert_int_equal(kte_pace_max_records(&p, next), 100);
    /* tokens never pile up beyond a second of the rate */
    assert_int_equal(kte_pace_max_records(&p, 60000), 401);
}

/* A record costs what the latest call's records cost: with 50 KiB
 * aggregates a call waits for at least one and carries what is paid. */
static void test_big_records_wait_for_at_least_one(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    double agg = kte_pace_cost(51200);
    kte_pace_answer(&p, 10 * agg, 0, 10, 10, 1000); /* nothing stored: the floor */
    NEAR(p.rate, KTE_PACE_MIN);
    /* the bucket holds one record (0.049 < 0.05: a second of the rate) */
    assert_int_equal(kte_pace_max_records(&p, 1000), 1);
    kte_pace_answer(&p, agg, agg, 1, 0, 1001);
    int64_t next = kte_pace_next_ms(&p, 1001);
    assert_true(next > 1001 + 900 && next < 1001 + 1000); /* one record's worth of tokens */
    assert_int_equal(kte_pace_max_records(&p, next), 1);
}

/* Kinesis counts per second: throttled answers within a second of a cut
 * cut nothing more; the next second's do, down to the floor. */
static void test_cuts_once_a_second_down_to_the_floor(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    kte_pace_answer(&p, 0.5, 0.5, 500, 0, 1000);
    kte_pace_answer(&p, 0.5, 0, 500, 500, 1010);
    double r = p.rate;
    NEAR(r, 0.4);
    kte_pace_answer(&p, 0.1, 0, 100, 100, 1500);
    NEAR(p.rate, r);
    kte_pace_answer(&p, 0.1, 0, 100, 100, 2010);
    NEAR(p.rate, r * KTE_PACE_BETA);
    for (int64_t t = 3010; t < 60000; t += 1000)
        kte_pace_answer(&p, 0.001, 0, 1, 1, t);
    NEAR(p.rate, KTE_PACE_MIN);
    struct kte_pace q = {0}; /* a throttle with nothing stored at all starts at the floor */
    kte_pace_answer(&q, 0.5, 0, 500, 500, 1000);
    NEAR(q.rate, KTE_PACE_MIN);
}

/* Unthrottled calls grow the rate by a quarter per second of sending, at
 * least KTE_PACE_STEP; a long pause counts as one second. */
static void test_grows_per_second_of_sending_not_of_idling(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    kte_pace_answer(&p, 0.5, 0, 500, 500, 1000);
    NEAR(p.rate, KTE_PACE_MIN);
    kte_pace_answer(&p, 0.01, 0.01, 10, 0, 2000); /* small: the additive step */
    NEAR(p.rate, KTE_PACE_MIN + KTE_PACE_STEP);
    p.rate = 1.0;
    kte_pace_answer(&p, 0.1, 0.1, 100, 0, 2500); /* half a second */
    NEAR(p.rate, 1.125);
    kte_pace_answer(&p, 0.1, 0.1, 100, 0, 602500); /* ten minutes idle: one second */
    NEAR(p.rate, 1.125 * 1.25);
}

static void test_grown_past_the_ceiling_stops_pacing(void **state)
{
    (void)state;
    struct kte_pace p = {0};
    kte_pace_answer(&p, 0.5, 0.5, 500, 0, 1000);
    kte_pace_answer(&p, 0.5, 0, 500, 500, 1001);
    int64_t t = 1001;
    while (p.rate > 0) {
        t += 1000;
        kte_pace_answer(&p, 0.001, 0.001, 1, 0, t);
        assert_true(t < 1000000);
    }
    assert_int_equal(kte_pace_next_ms(&p, t), t);
    assert_true(kte_pace_max_records(&p, t) == SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_is_the_binding_limit_of_a_shard),
        cmocka_unit_test(test_unthrottled_never_waits_nor_caps),
        cmocka_unit_test(test_first_throttle_starts_from_what_was_stored),
        cmocka_unit_test(test_calls_follow_the_tokens),
        cmocka_unit_test(test_big_records_wait_for_at_least_one),
        cmocka_unit_test(test_cuts_once_a_second_down_to_the_floor),
        cmocka_unit_test(test_grows_per_second_of_sending_not_of_idling),
        cmocka_unit_test(test_grown_past_the_ceiling_stops_pacing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
