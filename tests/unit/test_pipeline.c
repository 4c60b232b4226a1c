/* The pipeline against a fake Kinesis endpoint (a real HTTP server in this
 * process) that answers with scripted responses: what is sent, what is
 * retried, what is counted. */
#include "kte_config.h"
#include "kte_pipeline.h"
#include "kte_test_util.h"

#include <microhttpd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include <cmocka.h>

#define MAX_REQ 64

/* One scripted answer: status and body; "%PARTIAL:k" marks a 200 whose k-th
 * record (0-based) fails with ProvisionedThroughputExceededException. */
struct answer {
    unsigned status;
    const char *body;
    int fail_index;
};

struct fake {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct answer script[MAX_REQ];
    int nscript;
    int nreq;
    int req_records[MAX_REQ];
    uint64_t req_seqs[MAX_REQ][500];
    char target[128];
    int outage;        /* answer 503 to everything while set */
    int delay_ms;      /* answer this late */
    char report[1024]; /* the last kte.dropped record seen */
    uint64_t min_seq[MAX_REQ];
};

struct conn {
    char *buf;
    size_t len;
};

static uint64_t seq_of(const unsigned char *data, size_t len)
{
    char tmp[4096];
    size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
    memcpy(tmp, data, n);
    tmp[n] = '\0';
    const char *p = strstr(tmp, "\"seq\":");
    return p ? strtoull(p + 6, NULL, 10) : 0;
}

static void record_request(struct fake *f, const char *body, int idx)
{
    yajl_val root = yajl_tree_parse(body, NULL, 0);
    const char *path[] = {"Records", NULL};
    yajl_val recs = root ? yajl_tree_get(root, path, yajl_t_array) : NULL;
    int n = recs ? (int)YAJL_GET_ARRAY(recs)->len : -1;
    f->req_records[idx] = n;
    for (int i = 0; i < n && i < 500; i++) {
        const char *dp[] = {"Data", NULL};
        yajl_val d = yajl_tree_get(YAJL_GET_ARRAY(recs)->values[i], dp, yajl_t_string);
        const char *b64 = YAJL_GET_STRING(d);
        size_t olen = 0;
        unsigned char *out = malloc(strlen(b64) + 1);
        if (kt_b64_decode(b64, strlen(b64), out, strlen(b64) + 1, &olen) != 0)
            olen = 0; /* counted as no sequence number: the test then fails on counts */
        f->req_seqs[idx][i] = seq_of(out, olen);
        out[olen] = '\0';
        if (olen < sizeof f->report && strstr((const char *)out, "kte.dropped")) {
            memcpy(f->report, out, olen);
            f->report[olen] = '\0';
        }
        free(out);
    }
    yajl_tree_free(root);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    struct fake *f = cls;
    struct conn *cn = *con_cls;
    if (!cn) {
        *con_cls = calloc(1, sizeof *cn);
        return MHD_YES;
    }
    if (*size) {
        cn->buf = realloc(cn->buf, cn->len + *size + 1);
        memcpy(cn->buf + cn->len, data, *size);
        cn->len += *size;
        cn->buf[cn->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&f->mu);
    int idx = f->nreq++;
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
    snprintf(f->target, sizeof f->target, "%s", t ? t : "");
    record_request(f, cn->buf ? cn->buf : "", idx);
    struct answer a = f->outage          ? (struct answer){503, "", -1}
                      : idx < f->nscript ? f->script[idx]
                                         : (struct answer){200, NULL, -1};
    int n = f->req_records[idx];
    int delay = f->delay_ms;
    pthread_mutex_unlock(&f->mu);
    if (delay)
        usleep((useconds_t)delay * 1000);

    char body[65536];
    if (a.body) {
        snprintf(body, sizeof body, "%s", a.body);
    } else {
        /* A PutRecords answer for n records, failing a.fail_index. */
        size_t o = (size_t)snprintf(body, sizeof body, "{\"FailedRecordCount\":%d,\"Records\":[",
                                    a.fail_index >= 0 ? 1 : 0);
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(
                body + o, sizeof body - o, "%s%s", i ? "," : "",
                i == a.fail_index
                    ? "{\"ErrorCode\":\"ProvisionedThroughputExceededException\","
                      "\"ErrorMessage\":\"Rate exceeded\"}"
                    : "{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-000000000000\"}");
        snprintf(body + o, sizeof body - o, "]}");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/x-amz-json-1.1");
    enum MHD_Result rc = MHD_queue_response(c, a.status, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *cn = *con_cls;
    if (cn) {
        free(cn->buf);
        free(cn);
    }
}

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
    struct kte_pipeline p;
};

static int setup_with(void **state, const char *k1, const char *v1, const char *k2, const char *v2)
{
    struct fixture *fx = calloc(1, sizeof *fx);
    pthread_mutex_init(&fx->fake.mu, NULL);
    fx->fake.d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, handler,
                         &fx->fake, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    assert_non_null(fx->fake.d);
    fx->fake.port = MHD_get_daemon_info(fx->fake.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fx->fake.port);
    struct env_kv env[] = {{"KTE_STREAM_NAME", "s"},
                           {"KTE_ENDPOINT", endpoint},
                           {"AWS_REGION", "us-east-1"},
                           {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
                           {"AWS_SECRET_ACCESS_KEY", "secret"},
                           {"AWS_LAMBDA_FUNCTION_NAME", "fn"},
                           {"KTE_REQUEST_TIMEOUT_MS", "2000"},
                           {k1, v1},
                           {k2, v2},
                           {NULL, NULL}};
    char et[64], msg[256], err[256];
    assert_int_equal(kte_config_load(&fx->cfg, table_env, env, et, sizeof et, msg, sizeof msg), 0);
    assert_int_equal(kte_pipeline_init(&fx->p, &fx->cfg, err, sizeof err), 0);
    assert_int_equal(kte_pipeline_start(&fx->p), 0);
    *state = fx;
    return 0;
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
    kte_pipeline_free(&fx->p);
    MHD_stop_daemon(fx->fake.d);
    pthread_mutex_destroy(&fx->fake.mu);
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

static void test_flush_delivers_in_order(void **state)
{
    struct fixture *fx = *state;
    ingest_n(&fx->p, 3);
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_int_equal(fx->fake.req_records[0], 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fx->fake.req_seqs[0][i], (uint64_t)i + 1);
    assert_string_equal(fx->fake.target, "Kinesis_20131202.PutRecords");
    assert_int_equal(atomic_load(&fx->p.metrics.received), 3);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered), 3);
    assert_int_equal(atomic_load(&fx->p.metrics.batches), 1);
}

static void test_only_failed_records_are_retried(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){200, NULL, 1};
    fx->fake.script[1] = (struct answer){200, NULL, -1};
    fx->fake.nscript = 2;
    ingest_n(&fx->p, 3);
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 5000), 0);
    assert_int_equal(fx->fake.nreq, 2);
    assert_int_equal(fx->fake.req_records[0], 3);
    assert_int_equal(fx->fake.req_records[1], 1);
    assert_int_equal(fx->fake.req_seqs[1][0], 2);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered), 3);
    assert_int_equal(atomic_load(&fx->p.metrics.retried), 1);
}

static void test_server_error_retries_the_batch(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] =
        (struct answer){500, "{\"__type\":\"InternalFailure\",\"message\":\"x\"}", -1};
    fx->fake.script[1] = (struct answer){503, "", -1};
    fx->fake.nscript = 2;
    ingest_n(&fx->p, 4);
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 5000), 0);
    assert_int_equal(fx->fake.nreq, 3);
    for (int r = 0; r < 3; r++)
        assert_int_equal(fx->fake.req_records[r], 4);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered), 4);
    assert_int_equal(atomic_load(&fx->p.metrics.batches_failed), 2);
    assert_int_equal(atomic_load(&fx->p.metrics.retried), 8);
}

static void test_permanent_error_drops_and_counts_without_retry(void **state)
{
    struct fixture *fx = *state;
    fx->fake.script[0] = (struct answer){
        400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Stream s not found\"}", -1};
    fx->fake.nscript = 1;
    ingest_n(&fx->p, 5);
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 5000), 0);
    assert_int_equal(fx->fake.nreq, 1);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered), 0);
    assert_int_equal(atomic_load(&fx->p.metrics.dropped[KTE_DROP_PERMANENT]), 5);
    assert_int_equal(kte_metrics_dropped_total(&fx->p.metrics), 5);
}

static void test_batches_split_at_500(void **state)
{
    struct fixture *fx = *state;
    ingest_n(&fx->p, 1200);
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 10000), 0);
    int total = 0;
    for (int r = 0; r < fx->fake.nreq; r++) {
        assert_true(fx->fake.req_records[r] <= 500);
        total += fx->fake.req_records[r];
    }
    assert_int_equal(total, 1200);
    assert_int_equal(fx->fake.nreq, 3);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered), 1200);
}

static void test_flush_gives_up_at_deadline_and_stop_counts_drops(void **state)
{
    struct fixture *fx = *state;
    for (int i = 0; i < MAX_REQ; i++)
        fx->fake.script[i] = (struct answer){503, "", -1};
    fx->fake.nscript = MAX_REQ;
    ingest_n(&fx->p, 7);
    int64_t t0 = kte_now_ms();
    size_t left = kte_pipeline_flush(&fx->p, t0 + 300);
    assert_int_equal(left, 7);
    assert_true(kte_now_ms() >= t0 + 300 - 25); /* it waited for the deadline, roughly */
    assert_true(fx->fake.nreq >= 1);
    kte_pipeline_stop(&fx->p, 0);
    assert_int_equal(atomic_load(&fx->p.metrics.dropped[KTE_DROP_SHUTDOWN]), 7);
    assert_int_equal(atomic_load(&fx->p.metrics.delivered) +
                         kte_metrics_dropped_total(&fx->p.metrics),
                     atomic_load(&fx->p.metrics.received));
}

static void test_wait_for_runtime_done_and_report(void **state)
{
    struct fixture *fx = *state;
    assert_false(kte_pipeline_wait_for(&fx->p, KTE_WAIT_RUNTIME_DONE, "r1", kte_now_ms() + 30));
    const char *body = "[{\"time\":\"t\",\"type\":\"platform.runtimeDone\",\"record\":{"
                       "\"requestId\":\"r1\",\"status\":\"success\"}}]";
    char msg[64];
    assert_int_equal(kte_pipeline_ingest(&fx->p, body, strlen(body), msg, sizeof msg), 0);
    assert_true(kte_pipeline_wait_for(&fx->p, KTE_WAIT_RUNTIME_DONE, "r1", kte_now_ms() + 30));
    assert_false(kte_pipeline_wait_for(&fx->p, KTE_WAIT_REPORT, "r1", kte_now_ms() + 30));
    assert_false(kte_pipeline_wait_for(&fx->p, KTE_WAIT_RUNTIME_DONE, "r2", kte_now_ms() + 30));
}

static void test_malformed_body_buffers_nothing(void **state)
{
    struct fixture *fx = *state;
    char msg[128] = "";
    const char *body = "[{\"type\":\"function\",\"record\":\"a\"},{\"type\":";
    assert_int_equal(kte_pipeline_ingest(&fx->p, body, strlen(body), msg, sizeof msg), -1);
    assert_true(strlen(msg) > 0);
    assert_int_equal(atomic_load(&fx->p.metrics.received), 0);
    assert_int_equal(kte_pipeline_buffered(&fx->p), 0);
}

/* Pushes n events in bodies of 500 while Kinesis is down. */
static void ingest_during_outage(struct fixture *fx, int n)
{
    fx->fake.outage = 1;
    for (int i = 0; i < n; i += 500)
        ingest_n(&fx->p, 500);
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
    struct kte_metrics *m = &fx->p.metrics;
    uint64_t dropped = atomic_load(&m->dropped[KTE_DROP_OVERFLOW]);
    assert_true(dropped > 0);
    assert_true(fx->p.mem <= 1048576 + 500 * 400); /* the cap, plus one batch in flight */
    assert_int_equal(atomic_load(&m->received), 10000);

    fx->fake.outage = 0;
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 10000), 0);
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
    struct kte_metrics *m = &fx->p.metrics;
    uint64_t dropped = atomic_load(&m->dropped[KTE_DROP_OVERFLOW]);
    assert_true(dropped > 0);
    fx->fake.outage = 0;
    assert_int_equal(kte_pipeline_flush(&fx->p, kte_now_ms() + 10000), 0);
    assert_int_equal(atomic_load(&m->delivered) + dropped, 10000);
    assert_int_equal(json_u64(fx->fake.report, "\"lastSeq\":"), 10000);
    assert_int_equal(json_u64(fx->fake.report, "\"firstSeq\":"), 10000 - dropped + 1);
}

static void test_stop_abandons_a_request_past_the_deadline(void **state)
{
    struct fixture *fx = *state;
    fx->fake.delay_ms = 1500; /* longer than the time left at shutdown */
    ingest_n(&fx->p, 500);    /* a full batch: the sender sends at once */
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&fx->fake.mu);
        int seen = fx->fake.nreq;
        pthread_mutex_unlock(&fx->fake.mu);
        if (seen)
            break;
        usleep(5000);
    }
    assert_int_equal(fx->fake.nreq, 1); /* the request is in flight now */
    kte_pipeline_stop(&fx->p, kte_now_ms() + 200);
    assert_true(fx->p.abandoned); /* it stopped waiting for the slow answer */
    struct kte_metrics *m = &fx->p.metrics;
    assert_int_equal(atomic_load(&m->dropped[KTE_DROP_SHUTDOWN]), 500);
    assert_int_equal(atomic_load(&m->delivered), 0);
    assert_int_equal(atomic_load(&m->received), 500);
    /* teardown waits for the abandoned sender before freeing */
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
        cmocka_unit_test_setup_teardown(test_flush_gives_up_at_deadline_and_stop_counts_drops,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_for_runtime_done_and_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_body_buffers_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_drops_oldest_and_reports_in_stream,
                                        setup_small_buffer, teardown),
        cmocka_unit_test_setup_teardown(test_overflow_drop_newest_keeps_the_oldest,
                                        setup_small_buffer_newest, teardown),
        cmocka_unit_test_setup_teardown(test_stop_abandons_a_request_past_the_deadline, setup,
                                        teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
