/* The pipeline against a fake Kinesis endpoint (a real HTTP server in this
 * process) that answers with scripted responses: what is sent, what is
 * retried, what is counted. */
#include "kte_batch.h"
#include "kte_config.h"
#include "kte_pipeline.h"

#include <curl/curl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kte_fake_kinesis.h"

/* Sanitizers keep freed memory in quarantine and own malloc: the memory
 * figure and the allocation fault below only mean something without them. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KT_SANITIZED 1
#else
#define KT_SANITIZED 0
#endif

struct env_kv {
    const char *k, *v;
};

static const char *table_env(const char *name, void *ctx)
{
    for (const struct env_kv *e = ctx; e->k; e++)
        if (!strcmp(e->k, name))
            return e->v;
    return NULL;
}

struct fixture {
    struct fake fake;
    struct kte_config cfg;
    struct kte_pipeline *p;
};

#define P(fx) ((fx)->p)
#define M(fx) kte_pipeline_metrics((fx)->p)

static struct kte_pipeline_stats stats(struct fixture *fx)
{
    struct kte_pipeline_stats st;
    kte_pipeline_stats(fx->p, &st);
    return st;
}

/* Orders the test thread's reads and writes of the fake's fields with its
 * server thread (which takes the same lock): the HTTP round trip between
 * them is invisible to ThreadSanitizer. */
static void fake_sync(struct fixture *fx)
{
    pthread_mutex_lock(&fx->fake.mu);
    pthread_mutex_unlock(&fx->fake.mu);
}

static void fake_set(struct fixture *fx, int *field, int value)
{
    pthread_mutex_lock(&fx->fake.mu);
    *field = value;
    pthread_mutex_unlock(&fx->fake.mu);
}

static size_t flush_in(struct fixture *fx, int ms)
{
    size_t left = kte_pipeline_flush(P(fx), kte_now_ms() + ms);
    fake_sync(fx);
    return left;
}

/* Overrides come first in the table, so they win over the defaults. */
static int setup_with3(void **state, const char *k1, const char *v1, const char *k2, const char *v2,
                       const char *k3, const char *v3)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    fake_start(&fx->fake);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fx->fake.port);
    struct env_kv env[] = {{k1 ? k1 : "-", v1},
                           {k2 ? k2 : "-", v2},
                           {k3 ? k3 : "-", v3},
                           {"KTE_STREAM_NAME", "s"},
                           {"KTE_ENDPOINT", endpoint},
                           {"AWS_REGION", "us-east-1"},
                           {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
                           {"AWS_SECRET_ACCESS_KEY", "secret"},
                           {"AWS_LAMBDA_FUNCTION_NAME", "fn"},
                           {"KTE_REQUEST_TIMEOUT_MS", "2000"},
                           {"KTE_PROTOCOL", "json"}, /* the fake speaks JSON; k1 may override */
                           {NULL, NULL}};
    char et[64], msg[256], err[256];
    assert_int_equal(kte_config_load(&fx->cfg, table_env, env, et, sizeof et, msg, sizeof msg), 0);
    fx->p = kte_pipeline_new(&fx->cfg, err, sizeof err);
    assert_non_null(fx->p);
    assert_int_equal(kte_pipeline_start(P(fx)), 0);
    *state = fx;
    return 0;
}

static int setup_with(void **state, const char *k1, const char *v1, const char *k2, const char *v2)
{
    return setup_with3(state, k1, v1, k2, v2, NULL, NULL);
}

static int setup(void **state)
{
    return setup_with(state, NULL, NULL, NULL, NULL);
}

static int setup_small_buffer(void **state)
{
    return setup_with(state, "KTE_MAX_BUFFER_BYTES", "1048576", NULL, NULL);
}

static int setup_small_buffer_newest(void **state)
{
    return setup_with(state, "KTE_MAX_BUFFER_BYTES", "1048576", "KTE_OVERFLOW", "drop-newest");
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    kte_pipeline_free(P(fx));
    fake_stop(&fx->fake);
    free(fx);
    return 0;
}

static void ingest_n(struct kte_pipeline *p, int n)
{
    size_t cap = (size_t)n * 64 + 16;
    char *body = malloc(cap);
    size_t o = (size_t)snprintf(body, cap, "[");
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(body + o, cap - o,
                              "%s{\"time\":\"t\",\"type\":\"function\",\"record\":\"l%d\"}",
                              i ? "," : "", i);
    snprintf(body + o, cap - o, "]");
    char msg[128];
    assert_int_equal(kte_pipeline_ingest(p, body, strlen(body), msg, sizeof msg), 0);
    free(body);
}

static void ingest_fx(struct fixture *fx, int n)
{
    fake_sync(fx);
    ingest_n(P(fx), n);
}

static void test_flush_delivers_in_order(void **state)
{
    struct fixture *fx = *state;
    ingest_fx(fx, 3);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_int_equal(fx->fake.req_records[0], 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->fake.req_seqs[0][i], (uint64_t)i + 1);
    assert_string_equal(fx->fake.target, "Kinesis_20131202.PutRecords");
    assert_int_equal(atomic_load(&M(fx)->received), 3);
    assert_int_equal(atomic_load(&M(fx)->delivered), 3);
    assert_int_equal(atomic_load(&M(fx)->batches), 1);
}

static void test_only_failed_records_are_retried(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){200, NULL, 1};
    fx->fake.script[1] = (struct answer){200, NULL, -1};
    fx->fake.nscript = 2;
    ingest_fx(fx, 3);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 2);
    assert_int_equal(fx->fake.req_records[0], 3);
    assert_int_equal(fx->fake.req_records[1], 1);
    assert_int_equal(fx->fake.req_seqs[1][0], 2);
    assert_int_equal(atomic_load(&M(fx)->delivered), 3);
    assert_int_equal(atomic_load(&M(fx)->retried), 1);
}

static void test_server_error_retries_the_batch(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] =
        (struct answer){500, "{\"__type\":\"InternalFailure\",\"message\":\"x\"}", -1};
    fx->fake.script[1] = (struct answer){503, "", -1};
    fx->fake.nscript = 2;
    ingest_fx(fx, 4);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 3);
    for (int r = 0; r < 3; r++)
        assert_int_equal(fx->fake.req_records[r], 4);
    assert_int_equal(atomic_load(&M(fx)->delivered), 4);
    assert_int_equal(atomic_load(&M(fx)->batches_failed), 2);
    assert_int_equal(atomic_load(&M(fx)->retried), 8);
}

static void test_permanent_error_drops_and_counts_without_retry(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){
        400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s not found\"}", -1};
    fx->fake.nscript = 1;
    ingest_fx(fx, 5);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_int_equal(atomic_load(&M(fx)->delivered), 0);
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_PERMANENT]), 5);
    assert_int_equal(kte_metrics_dropped_total(M(fx)), 5);
}

static int setup_cbor(void **state)
{
    return setup_with(state, "KTE_PROTOCOL", "cbor", NULL, NULL);
}

/* A service that refuses CBOR (kinesis-mock and Kinesis answer an unknown
 * content type with 404 UnknownOperationException): the same batch goes again
 * in JSON at once, JSON stays, nothing is lost or counted as failed. */
static void test_cbor_refused_falls_back_to_json(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){404, "<UnknownOperationException/>\n", -1};
    fx->fake.nscript = 1;
    ingest_fx(fx, 3);
    assert_int_equal(flush_in(fx, 5000), 0);
    ingest_fx(fx, 2);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 3);
    assert_string_equal(fx->fake.ctype[0], "application/x-amz-cbor-1.1");
    assert_int_equal(fx->fake.req_records[0], -1); /* not JSON */
    assert_string_equal(fx->fake.ctype[1], "application/x-amz-json-1.1");
    assert_int_equal(fx->fake.req_records[1], 3);
    assert_string_equal(fx->fake.ctype[2], "application/x-amz-json-1.1");
    assert_int_equal(fx->fake.req_records[2], 2);
    assert_int_equal(atomic_load(&M(fx)->delivered), 5);
    assert_int_equal(atomic_load(&M(fx)->protocol_fallbacks), 1);
    assert_int_equal(atomic_load(&M(fx)->batches_failed), 0);
    assert_int_equal(kte_metrics_dropped_total(M(fx)), 0);
}

/* A refusal of the request (here as a JSON body) is no refusal of CBOR. */
static void test_cbor_request_error_keeps_cbor(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){
        400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s not found\"}", -1};
    fx->fake.nscript = 1;
    ingest_fx(fx, 4);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_string_equal(fx->fake.ctype[0], "application/x-amz-cbor-1.1");
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_PERMANENT]), 4);
    assert_int_equal(atomic_load(&M(fx)->protocol_fallbacks), 0);
}

static void test_batches_split_at_500(void **state)
{
    struct fixture *fx = *state;
    ingest_fx(fx, 1200);
    assert_int_equal(flush_in(fx, 10000), 0);
    int total = 0;
    for (int r = 0; r < fx->fake.nreq; r++) {
        assert_true(fx->fake.req_records[r] <= 500);
        total += fx->fake.req_records[r];
    }
    assert_int_equal(total, 1200);
    assert_int_equal(fx->fake.nreq, 3);
    assert_int_equal(atomic_load(&M(fx)->delivered), 1200);
}

static int setup_kpl_random(void **state)
{
    return setup_with(state, "KTE_RECORD_FORMAT", "kpl", "KTE_PARTITION_KEY", "random");
}

static int setup_ndjson(void **state)
{
    return setup_with(state, "KTE_RECORD_FORMAT", "ndjson", NULL, NULL);
}

/* Events of request r, in order: each record's first seq and count. */
static void assert_request_covers(struct fixture *fx, int r, uint64_t from, uint64_t to)
{
    uint64_t next = from;
    for (int i = 0; i < fx->fake.req_records[r]; i++) {
        assert_int_equal(fx->fake.req_seqs[r][i], next);
        next += fx->fake.req_events[r][i];
    }
    assert_int_equal(next, to + 1);
}

/* A failed aggregate is retried whole: its events go again (once each) and
 * count once as delivered; the other aggregates are not resent. */
static void test_kpl_failed_aggregate_is_retried_whole(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){200, NULL, 1};
    fx->fake.nscript = 1;
    ingest_fx(fx, 1200);
    assert_int_equal(flush_in(fx, 10000), 0);
    /* The sender may start before all 1200 are queued: look at every call. */
    assert_true(fx->fake.req_records[0] >= 2);
    uint64_t failed_seq = fx->fake.req_seqs[0][1];
    uint32_t failed = fx->fake.req_events[0][1];
    assert_true(failed > 100); /* ~127 envelopes of ~196 bytes per 25 KB aggregate */
    uint64_t sent = 0;
    int resent = 0;
    for (int r = 0; r < fx->fake.nreq; r++)
        for (int i = 0; i < fx->fake.req_records[r]; i++) {
            sent += fx->fake.req_events[r][i];
            if (r > 0 && fx->fake.req_seqs[r][i] == failed_seq) {
                assert_int_equal(fx->fake.req_events[r][i], failed);
                assert_int_equal(i, 0); /* first again: order kept */
                resent++;
            }
        }
    assert_int_equal(resent, 1);
    assert_int_equal(sent, 1200 + failed);
    assert_int_equal(atomic_load(&M(fx)->received), 1200);
    assert_int_equal(atomic_load(&M(fx)->delivered), 1200);
    assert_int_equal(atomic_load(&M(fx)->retried), failed);
    assert_int_equal(kte_metrics_dropped_total(M(fx)), 0);
}

/* A permanent error on an aggregate drops (and counts) each of its events. */
static void test_kpl_refused_aggregate_counts_each_event(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){
        400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s not found\"}", -1};
    fx->fake.nscript = 1;
    ingest_fx(fx, 300);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_true(fx->fake.req_records[0] >= 2);
    assert_int_equal(atomic_load(&M(fx)->delivered), 0);
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_PERMANENT]), 300);
}

static void test_ndjson_joins_envelopes(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){200, NULL, 0};
    fx->fake.nscript = 1;
    ingest_fx(fx, 300);
    assert_int_equal(flush_in(fx, 10000), 0);
    assert_int_equal(fx->fake.nreq, 2);
    assert_int_equal(fx->fake.req_records[0], 3); /* ~127 envelopes per 25 KB record */
    assert_request_covers(fx, 0, 1, 300);
    assert_int_equal(fx->fake.req_records[1], 1);
    assert_int_equal(fx->fake.req_seqs[1][0], 1);
    assert_int_equal(fx->fake.req_events[1][0], fx->fake.req_events[0][0]);
    assert_int_equal(atomic_load(&M(fx)->delivered), 300);
    assert_int_equal(atomic_load(&M(fx)->retried), fx->fake.req_events[0][0]);
}

static void test_flush_gives_up_at_deadline_and_stop_counts_drops(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < MAX_REQ; i++)
        fx->fake.script[i] = (struct answer){503, "", -1};
    fx->fake.nscript = MAX_REQ;
    ingest_fx(fx, 7);
    int64_t t0 = kte_now_ms();
    size_t left = kte_pipeline_flush(P(fx), t0 + 300);
    fake_sync(fx);
    assert_int_equal(left, 7);
    assert_true(kte_now_ms() >= t0 + 300 - 25); /* it waited for the deadline, roughly */
    assert_true(fx->fake.nreq >= 1);
    kte_pipeline_stop(P(fx), 0);
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_SHUTDOWN]), 7);
    assert_int_equal(atomic_load(&M(fx)->delivered) + kte_metrics_dropped_total(M(fx)),
                     atomic_load(&M(fx)->received));
}

static void test_wait_for_runtime_done_and_report(void **state)
{
    struct fixture *fx = *state;
    assert_false(kte_pipeline_wait_for(P(fx), KTE_WAIT_RUNTIME_DONE, "r1", kte_now_ms() + 30));
    const char *body = "[{\"time\":\"t\",\"type\":\"platform.runtimeDone\",\"record\":{"
                       "\"requestId\":\"r1\",\"status\":\"success\"}}]";
    char msg[64];
    assert_int_equal(kte_pipeline_ingest(P(fx), body, strlen(body), msg, sizeof msg), 0);
    assert_true(kte_pipeline_wait_for(P(fx), KTE_WAIT_RUNTIME_DONE, "r1", kte_now_ms() + 30));
    assert_false(kte_pipeline_wait_for(P(fx), KTE_WAIT_REPORT, "r1", kte_now_ms() + 30));
    assert_false(kte_pipeline_wait_for(P(fx), KTE_WAIT_RUNTIME_DONE, "r2", kte_now_ms() + 30));
}

static void test_malformed_body_buffers_nothing(void **state)
{
    struct fixture *fx = *state;
    char msg[128] = "";
    const char *body = "[{\"type\":\"function\",\"record\":\"a\"},{\"type\":";
    assert_int_equal(kte_pipeline_ingest(P(fx), body, strlen(body), msg, sizeof msg), -1);
    assert_true(strlen(msg) > 0);
    assert_int_equal(atomic_load(&M(fx)->received), 0);
    assert_int_equal(kte_pipeline_buffered(P(fx)), 0);
}

/* Processing rules at ingest: filtered events are counted, never buffered,
 * still consume their seq, and a filtered platform.runtimeDone still ends
 * the wait for it. */
static int setup_rules(void **state)
{
    return setup_with3(state, "KTE_EXCLUDE_TYPES", "platform.runtimeDone", "KTE_REDACT", "email",
                       "KTE_EXCLUDE_REGEX", "^drop");
}

static int teardown_rules(void **state)
{
    struct fixture *fx = *state;
    kte_config_free(&fx->cfg);
    return teardown(state);
}

static void test_rules_filter_and_redact_at_ingest(void **state)
{
    struct fixture *fx = *state;
    const char *body = "[{\"time\":\"t\",\"type\":\"platform.runtimeDone\",\"record\":{"
                       "\"requestId\":\"r1\",\"status\":\"success\"}},"
                       "{\"time\":\"t\",\"type\":\"function\",\"record\":\"mail a@b.io\"},"
                       "{\"time\":\"t\",\"type\":\"function\",\"record\":\"drop me\"},"
                       "{\"time\":\"t\",\"type\":\"function\",\"record\":\"keep\"}]";
    char msg[64];
    fake_sync(fx);
    assert_int_equal(kte_pipeline_ingest(P(fx), body, strlen(body), msg, sizeof msg), 0);
    assert_true(kte_pipeline_wait_for(P(fx), KTE_WAIT_RUNTIME_DONE, "r1", kte_now_ms() + 30));
    assert_int_equal(kte_pipeline_buffered(P(fx)), 2);
    assert_int_equal(flush_in(fx, 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_int_equal(fx->fake.req_records[0], 2);
    assert_int_equal(fx->fake.req_seqs[0][0], 2);
    assert_int_equal(fx->fake.req_seqs[0][1], 4);
    struct kte_metrics *m = M(fx);
    assert_int_equal(atomic_load(&m->received), 4);
    assert_int_equal(atomic_load(&m->delivered), 2);
    assert_int_equal(atomic_load(&m->filtered), 2);
    assert_int_equal(atomic_load(&m->sampled_out), 0);
    assert_int_equal(atomic_load(&m->redactions[KTE_RX_EMAIL]), 1);
    assert_int_equal(atomic_load(&m->bytes_received), strlen(body) - 2 - 3);
}

/* Pushes n events in bodies of 500 while Kinesis is down. */
static void ingest_during_outage(struct fixture *fx, int n)
{
    fake_set(fx, &fx->fake.outage, 1);
    for (int i = 0; i < n; i += 500)
        ingest_fx(fx, 500);
}

static uint64_t json_u64(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : UINT64_MAX;
}

static void test_overflow_drops_oldest_and_reports_in_stream(void **state)
{
    struct fixture *fx = *state;
    ingest_during_outage(fx, 10000); /* ~2 MB of records against a 1 MiB cap */
    struct kte_metrics *m = M(fx);
    uint64_t dropped = atomic_load(&m->dropped[KTE_DROP_OVERFLOW]);
    assert_true(dropped > 0);
    /* The cap, plus one batch in flight, at every moment. */
    assert_true(stats(fx).mem_peak <= 1048576 + 500 * 400);
    assert_int_equal(atomic_load(&m->received), 10000);

    fake_set(fx, &fx->fake.outage, 0);
    assert_int_equal(flush_in(fx, 10000), 0);
    /* Everything is accounted for exactly, and the stream says what was lost. */
    assert_int_equal(atomic_load(&m->delivered) + kte_metrics_dropped_total(m), 10000);
    assert_int_equal(kte_metrics_dropped_total(m), dropped);
    assert_int_equal(atomic_load(&m->drop_reports), 1);
    assert_non_null(strstr(fx->fake.report, "\"type\":\"kte.dropped\""));
    assert_int_equal(json_u64(fx->fake.report, "\"droppedEvents\":"), dropped);
    assert_int_equal(json_u64(fx->fake.report, "\"DroppedBufferOverflow\":"), dropped);
    /* Oldest first: the first events that were still queued were dropped. */
    uint64_t first = json_u64(fx->fake.report, "\"firstSeq\":");
    uint64_t last = json_u64(fx->fake.report, "\"lastSeq\":");
    assert_true(first >= 1 && last >= first);
    /* The oldest queued ones go; a batch in flight cannot be dropped, so the
     * run may have gaps, but it spans at least as many events. */
    assert_true(last - first + 1 >= dropped);
    assert_true(last <= 10000);
    /* The report carries its own sequence number, after every event's. */
    assert_int_equal(json_u64(fx->fake.report, "\"seq\":"), 10001);
}

static void test_overflow_drop_newest_keeps_the_oldest(void **state)
{
    struct fixture *fx = *state;
    ingest_during_outage(fx, 10000);
    struct kte_metrics *m = M(fx);
    uint64_t dropped = atomic_load(&m->dropped[KTE_DROP_OVERFLOW]);
    assert_true(dropped > 0);
    fake_set(fx, &fx->fake.outage, 0);
    assert_int_equal(flush_in(fx, 10000), 0);
    assert_int_equal(atomic_load(&m->delivered) + dropped, 10000);
    assert_int_equal(json_u64(fx->fake.report, "\"lastSeq\":"), 10000);
    assert_int_equal(json_u64(fx->fake.report, "\"firstSeq\":"), 10000 - dropped + 1);
}

static void test_stop_abandons_a_request_past_the_deadline(void **state)
{
    struct fixture *fx = *state;
    fake_set(fx, &fx->fake.delay_ms, 1500); /* longer than the time left at shutdown */
    ingest_fx(fx, 500);                     /* a full batch: the sender sends at once */
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&fx->fake.mu);
        int seen = fx->fake.nreq;
        pthread_mutex_unlock(&fx->fake.mu);
        if (seen)
            break;
        usleep(5000);
    }
    assert_int_equal(fx->fake.nreq, 1); /* the request is in flight now */
    kte_pipeline_stop(P(fx), kte_now_ms() + 200);
    assert_true(stats(fx).abandoned); /* it stopped waiting for the slow answer */
    struct kte_metrics *m = M(fx);
    assert_int_equal(atomic_load(&m->dropped[KTE_DROP_SHUTDOWN]), 500);
    assert_int_equal(atomic_load(&m->delivered), 0);
    assert_int_equal(atomic_load(&m->received), 500);
    /* teardown waits for the abandoned sender before freeing */
}

/* ---- regression tests of issue 10 ---------------------------------------- */

/* Runs fn(fx) after ms milliseconds on a thread of its own. */
struct later {
    struct fixture *fx;
    int ms;
    void (*fn)(struct fixture *);
    pthread_t t;
};

static void *later_main(void *arg)
{
    struct later *l = arg;
    usleep((useconds_t)l->ms * 1000);
    l->fn(l->fx);
    return NULL;
}

static void later_start(struct later *l, struct fixture *fx, int ms, void (*fn)(struct fixture *))
{
    *l = (struct later){fx, ms, fn, 0};
    assert_int_equal(pthread_create(&l->t, NULL, later_main, l), 0);
}

static void end_outage(struct fixture *fx)
{
    fake_set(fx, &fx->fake.outage, 0);
}

/* A second flush, on its own thread: ingests 3 events, then flushes with
 * its own deadline. */
struct flusher {
    struct fixture *fx;
    int start_ms, deadline_ms;
    size_t left;
    pthread_t t;
};

static void *flusher_main(void *arg)
{
    struct flusher *f = arg;
    usleep((useconds_t)f->start_ms * 1000);
    ingest_n(P(f->fx), 3);
    f->left = kte_pipeline_flush(P(f->fx), kte_now_ms() + f->deadline_ms);
    return NULL;
}

/* Two flushes overlap while Kinesis is down for 600 ms (the end-of-invoke
 * flush retrying when SIGTERM's flush begins): the one with the later
 * deadline must still deliver everything once Kinesis is back, whichever
 * of the two started first. */
static void overlapping_flushes(struct fixture *fx, bool long_one_first)
{
    fake_set(fx, &fx->fake.outage, 1);
    ingest_fx(fx, 3);
    struct later heal;
    later_start(&heal, fx, 600, end_outage);
    struct flusher other = {fx, 100, long_one_first ? 300 : 4000, 0, 0};
    assert_int_equal(pthread_create(&other.t, NULL, flusher_main, &other), 0);
    size_t left = kte_pipeline_flush(P(fx), kte_now_ms() + (long_one_first ? 4000 : 300));
    pthread_join(other.t, NULL);
    pthread_join(heal.t, NULL);
    fake_sync(fx);
    assert_int_equal(long_one_first ? left : other.left, 0);
    assert_int_equal(atomic_load(&M(fx)->delivered), 6);
    assert_int_equal(kte_metrics_dropped_total(M(fx)), 0);
}

static void test_overlapping_flushes_compose_long_first(void **state)
{
    overlapping_flushes(*state, true);
}

static void test_overlapping_flushes_compose_short_first(void **state)
{
    overlapping_flushes(*state, false);
}

/* The wall clock is stepped by the test (as NTP or a snapshot restore
 * does); the pipeline's timers must not move with it. Every clock_gettime
 * of this executable (the pipeline is linked in statically) comes here. */
static _Atomic long wall_step_s;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    int rc = (int)syscall(SYS_clock_gettime, clk, ts);
    if (rc == 0 && clk == CLOCK_REALTIME)
        ts->tv_sec += atomic_load(&wall_step_s);
    return rc;
}

static void step_wall_clock_forward(struct fixture *fx)
{
    (void)fx;
    atomic_store(&wall_step_s, 3600);
}

static void test_wall_clock_step_does_not_end_a_flush(void **state)
{
    struct fixture *fx = *state;
    fake_set(fx, &fx->fake.outage, 1);
    ingest_fx(fx, 3);
    struct later step, heal;
    later_start(&step, fx, 100, step_wall_clock_forward);
    later_start(&heal, fx, 400, end_outage);
    size_t left = flush_in(fx, 3000);
    pthread_join(step.t, NULL);
    pthread_join(heal.t, NULL);
    atomic_store(&wall_step_s, 0);
    assert_int_equal(left, 0);
    assert_int_equal(atomic_load(&M(fx)->delivered), 3);
}

/* An event whose envelope alone exceeds KTE_MAX_RECORD_BYTES (a function
 * name of control characters, escaped six bytes each) is DroppedTooLarge,
 * not DroppedOutOfMemory. */
static int setup_tiny_records(void **state)
{
    static char name[256];
    memset(name, '\x01', 255);
    return setup_with(state, "KTE_MAX_RECORD_BYTES", "1024", "AWS_LAMBDA_FUNCTION_NAME", name);
}

static void test_too_large_is_counted_as_such(void **state)
{
    struct fixture *fx = *state;
    ingest_fx(fx, 3);
    assert_int_equal(atomic_load(&M(fx)->received), 3);
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_TOO_LARGE]), 3);
    assert_int_equal(atomic_load(&M(fx)->dropped[KTE_DROP_NOMEM]), 0);
}

#if !KT_SANITIZED
static uint64_t peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return (uint64_t)kib * 1024;
}
#endif

/* A 6 MiB body of [0,0,...] (3 million array elements) must not cost more
 * than the buffer cap plus a small constant. */
static void test_hostile_body_memory_is_bounded(void **state)
{
#if KT_SANITIZED
    (void)state;
    skip();
#else
    struct fixture *fx = *state;
    fake_set(fx, &fx->fake.outage, 1);
    size_t len = 6 * 1048576 + 1; /* [0,0,...,0] */
    char *body = malloc(len);
    assert_non_null(body);
    body[0] = '[';
    for (size_t i = 1; i < len - 1; i++)
        body[i] = i % 2 ? '0' : ',';
    body[len - 1] = ']';
    uint64_t before = peak_rss();
    char msg[128];
    kte_pipeline_ingest(P(fx), body, len, msg, sizeof msg);
    uint64_t grew = peak_rss() - before;
    free(body);
    print_message("peak RSS grew by %llu KiB\n", (unsigned long long)(grew / 1024));
    assert_true(grew <= 1048576 + 16 * 1048576);
#endif
}

/* One body of 10,000 events (about 2.5 MB of records) against a 1 MiB cap
 * while Kinesis is down: the cap holds after every record, so the buffer
 * never held more than the cap plus the one record being added. */
static void test_cap_holds_within_one_body(void **state)
{
    struct fixture *fx = *state;
    fake_set(fx, &fx->fake.outage, 1);
    ingest_fx(fx, 10000);
    struct kte_pipeline_stats st = stats(fx);
    print_message("buffer peak %zu bytes, cap 1048576\n", st.mem_peak);
    assert_true(st.mem_peak <= 1048576 + 512);
    assert_true(atomic_load(&M(fx)->dropped[KTE_DROP_OVERFLOW]) > 0);
}

#if !KT_SANITIZED
/* Fails the sender's allocation of its result array (500 of them). */
extern void *__libc_calloc(size_t n, size_t size);
static _Atomic int fail_results_calloc;

void *calloc(size_t n, size_t size)
{
    if (atomic_load(&fail_results_calloc) && n == KTE_BATCH_MAX_RECORDS &&
        size == sizeof(struct kte_rec_result))
        return NULL;
    return __libc_calloc(n, size);
}
#endif

/* A sender that cannot allocate must not leave stop() waiting for ever. */
static void test_sender_allocation_failure_does_not_hang_stop(void **state)
{
#if KT_SANITIZED
    (void)state;
    skip();
#else
    struct fixture *fx = *state;
    /* A second pipeline, started while the allocation fails. */
    char err[128];
    struct kte_pipeline *p = kte_pipeline_new(&fx->cfg, err, sizeof err);
    assert_non_null(p);
    atomic_store(&fail_results_calloc, 1);
    int started = kte_pipeline_start(p);
    usleep(50000);
    atomic_store(&fail_results_calloc, 0);
    alarm(10); /* a hang ends the test as a failure */
    if (started == 0)
        kte_pipeline_stop(p, 0);
    alarm(0);
    kte_pipeline_free(p);
#endif
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_delivers_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_failed_records_are_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_error_retries_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_error_drops_and_counts_without_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batches_split_at_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cbor_refused_falls_back_to_json, setup_cbor, teardown),
        cmocka_unit_test_setup_teardown(test_cbor_request_error_keeps_cbor, setup_cbor, teardown),
        cmocka_unit_test_setup_teardown(test_kpl_failed_aggregate_is_retried_whole,
                                        setup_kpl_random, teardown),
        cmocka_unit_test_setup_teardown(test_kpl_refused_aggregate_counts_each_event,
                                        setup_kpl_random, teardown),
        cmocka_unit_test_setup_teardown(test_ndjson_joins_envelopes, setup_ndjson, teardown),
        cmocka_unit_test_setup_teardown(test_flush_gives_up_at_deadline_and_stop_counts_drops,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_runtime_done_and_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rules_filter_and_redact_at_ingest, setup_rules,
                                        teardown_rules),
        cmocka_unit_test_setup_teardown(test_malformed_body_buffers_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_drops_oldest_and_reports_in_stream,
                                        setup_small_buffer, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_drop_newest_keeps_the_oldest,
                                        setup_small_buffer_newest, teardown),
        cmocka_unit_test_setup_teardown(test_stop_abandons_a_request_past_the_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_flushes_compose_long_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_flushes_compose_short_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wall_clock_step_does_not_end_a_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_is_counted_as_such, setup_tiny_records,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hostile_body_memory_is_bounded, setup_small_buffer,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cap_holds_within_one_body, setup_small_buffer,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sender_allocation_failure_does_not_hang_stop, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
