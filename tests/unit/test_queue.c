/* kte_queue: the pipeline's FIFO, single-threaded, without a pipeline. */
#include "kte_batch.h"
#include "kte_queue.h"

#include "kte_test_util.h"

static struct kte_rec *rec(uint64_t seq, size_t data_len, bool report)
{
    struct kte_rec *r = calloc(1, sizeof *r + data_len + 3);
    assert_non_null(r);
    r->seq = seq;
    r->data_len = (uint32_t)data_len;
    r->pk = r->data + data_len;
    memcpy(r->pk, "pk", 3);
    r->pk_len = 2;
    r->is_report = report;
    return r;
}

static void drain(struct kte_queue *q)
{
    struct kte_rec *r;
    while ((r = kte_queue_pop(q)))
        free(r);
    assert_int_equal(q->count, 0);
    assert_int_equal(q->bytes, 0);
    assert_null(q->tail);
}

static void test_fifo_order_and_sizes(void **state)
{
    (void)state;
    struct kte_queue q;
    kte_queue_init(&q);
    assert_null(kte_queue_pop(&q));
    for (uint64_t s = 1; s <= 3; s++)
        kte_queue_push(&q, rec(s, 10, false));
    assert_int_equal(q.count, 3);
    assert_int_equal(q.bytes, 3 * 12);
    kte_queue_push_front(&q, rec(9, 5, true));
    assert_int_equal(q.bytes, 3 * 12 + 7);
    uint64_t want[] = {9, 1, 2, 3};
    for (size_t i = 0; i < 4; i++) {
        struct kte_rec *r = kte_queue_pop(&q);
        assert_int_equal(r->seq, want[i]);
        assert_null(r->next);
        free(r);
    }
    drain(&q);
    assert_int_equal(kte_rec_mem(&(struct kte_rec){.data_len = 10, .pk_len = 2}),
                     sizeof(struct kte_rec) + 13);
}

static void test_prepend_keeps_order(void **state)
{
    (void)state;
    struct kte_queue q, retry;
    kte_queue_init(&q);
    kte_queue_init(&retry);
    kte_queue_prepend(&q, &retry); /* empty into empty */
    assert_int_equal(q.count, 0);
    kte_queue_push(&retry, rec(1, 1, false));
    kte_queue_push(&retry, rec(2, 1, false));
    kte_queue_prepend(&q, &retry); /* into an empty queue: the tail follows */
    kte_queue_push(&q, rec(5, 1, false));
    kte_queue_push(&retry, rec(0, 1, false));
    kte_queue_prepend(&q, &retry);
    assert_int_equal(retry.count, 0);
    assert_null(retry.head);
    assert_int_equal(q.count, 4);
    uint64_t want[] = {0, 1, 2, 5};
    for (size_t i = 0; i < 4; i++) {
        struct kte_rec *r = kte_queue_pop(&q);
        assert_int_equal(r->seq, want[i]);
        free(r);
    }
    drain(&q);
}

static void test_take_batch_stops_at_500(void **state)
{
    (void)state;
    struct kte_queue q;
    kte_queue_init(&q);
    for (uint64_t s = 1; s <= 501; s++)
        kte_queue_push(&q, rec(s, 1, false));
    struct kte_rec *out[KTE_BATCH_MAX_RECORDS];
    assert_int_equal(kte_queue_take_batch(&q, out), 500);
    for (size_t i = 0; i < 500; i++) {
        assert_int_equal(out[i]->seq, i + 1);
        free(out[i]);
    }
    assert_int_equal(q.count, 1);
    assert_int_equal(q.head->seq, 501);
    drain(&q);
}

static void test_due_counts_reports_and_stops_at_upto(void **state)
{
    (void)state;
    struct kte_queue q;
    kte_queue_init(&q);
    assert_int_equal(kte_queue_due(&q, 100), 0);
    kte_queue_push(&q, rec(20, 1, true)); /* a kte.dropped record: always due */
    kte_queue_push(&q, rec(3, 1, false));
    kte_queue_push(&q, rec(4, 1, false));
    kte_queue_push(&q, rec(7, 1, false));
    assert_int_equal(kte_queue_due(&q, 2), 1);
    assert_int_equal(kte_queue_due(&q, 4), 3);
    assert_int_equal(kte_queue_due(&q, 100), 4);
    drain(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order_and_sizes),
        cmocka_unit_test(test_prepend_keeps_order),
        cmocka_unit_test(test_take_batch_stops_at_500),
        cmocka_unit_test(test_due_counts_reports_and_stops_at_upto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
