/* Many threads at once on one pipeline, as in the extension: the listener
 * ingests, the lifecycle thread sets the request and flushes, the signal
 * thread flushes too, intake closes while bodies still arrive, and the
 * pipeline stops. Meant for ThreadSanitizer (make test-tsan), which reports
 * any unlocked sharing; the plain and ASan builds check the accounting. Kinesis is a small
 * in-process HTTP server that fails every second call, so that retries (and their random backoff)
 * run alongside random partition keys. */
#include "kte_config.h"
#include "kte_pipeline.h"
#include "kte_test_util.h"

#include <curl/curl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define BODIES       40
#define PER_BODY     250
#define SET_REQUESTS 300

struct server {
    struct MHD_Daemon *d;
    atomic_int calls;
};

struct conn {
    size_t records; /* counted from the body's "PartitionKey" fields */
    char tail[16];
};

static size_t count_keys(struct conn *c, const char *data, size_t n)
{
    /* "PartitionKey" may span two uploads: keep the last bytes around. */
    static const char key[] = "\"PartitionKey\"";
    size_t klen = sizeof key - 1, found = 0;
    char buf[64 + 4096];
    size_t t = strlen(c->tail);
    for (size_t off = 0; off < n;) {
        size_t chunk = n - off < 4096 ? n - off : 4096;
        memcpy(buf, c->tail, t);
        memcpy(buf + t, data + off, chunk);
        size_t len = t + chunk;
        for (size_t i = 0; i + klen <= len; i++)
            if (!memcmp(buf + i, key, klen))
                found++;
        t = len < klen - 1 ? len : klen - 1;
        memcpy(c->tail, buf + len - t, t);
        c->tail[t] = '\0';
        off += chunk;
    }
    return found;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *mc, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    struct server *s = cls;
    struct conn *c = *con_cls;
    if (!c) {
        *con_cls = calloc(1, sizeof *c);
        return MHD_YES;
    }
    if (*size) {
        c->records += count_keys(c, data, *size);
        *size = 0;
        return MHD_YES;
    }
    int call = atomic_fetch_add(&s->calls, 1);
    char body[64 + 500 * 64];
    unsigned status = 200;
    if (call % 2 == 1) {
        status = 503;
        snprintf(body, sizeof body, "{\"__type\":\"ServiceUnavailable\"}");
    } else {
        size_t o = (size_t)snprintf(body, sizeof body, "{\"FailedRecordCount\":0,\"Records\":[");
        for (size_t i = 0; i < c->records; i++)
            o += (size_t)snprintf(body + o, sizeof body - o,
                                  "%s{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-0\"}",
                                  i ? "," : "");
        snprintf(body + o, sizeof body - o, "]}");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
}

struct world {
    struct server srv;
    struct kte_config cfg;
    struct kte_pipeline *p;
    atomic_bool ingest_done;
    atomic_int bodies_sent;     /* bodies handed to ingest */
    atomic_int bodies_accepted; /* of which buffered (not refused after close) */
};

static void *ingest_main(void *arg)
{
    struct world *w = arg;
    char body[PER_BODY * 160 + 8];
    for (int b = 0; b < BODIES; b++) {
        size_t o = (size_t)snprintf(body, sizeof body, "[");
        for (int i = 0; i < PER_BODY; i++) {
            /* Every other event names no request: its key is the current one. */
            if (i % 2)
                o += (size_t)snprintf(
                    body + o, sizeof body - o,
                    "%s{\"time\":\"t\",\"type\":\"function\",\"record\":\"b%di%d\"}", i ? "," : "",
                    b, i);
            else
                o += (size_t)snprintf(body + o, sizeof body - o,
                                      "%s{\"time\":\"t\",\"type\":\"platform.runtimeDone\","
                                      "\"record\":{\"requestId\":\"r%d\"}}",
                                      i ? "," : "", b);
        }
        snprintf(body + o, sizeof body - o, "]");
        char msg[128];
        if (kte_pipeline_ingest(w->p, body, strlen(body), msg, sizeof msg) == 0)
            atomic_fetch_add(&w->bodies_accepted, 1);
        atomic_fetch_add(&w->bodies_sent, 1);
        if (b % 10 == 0)
            usleep(1000);
    }
    atomic_store(&w->ingest_done, true);
    return NULL;
}

static void *set_request_main(void *arg)
{
    struct world *w = arg;
    char rid[64];
    for (int i = 0; i < SET_REQUESTS && !atomic_load(&w->ingest_done); i++) {
        snprintf(rid, sizeof rid, "request-%d-with-a-long-identifier-%d", i, i * 7);
        kte_pipeline_set_request(w->p, rid);
        kte_pipeline_wait_for(w->p, KTE_WAIT_RUNTIME_DONE, "r3", kte_now_ms() + 1);
        usleep(200);
    }
    return NULL;
}

static void *flush_main(void *arg)
{
    struct world *w = arg;
    while (!atomic_load(&w->ingest_done)) {
        kte_pipeline_flush(w->p, kte_now_ms() + 30);
        (void)kte_pipeline_buffered(w->p);
        (void)kte_pipeline_last_flush_ms(w->p);
    }
    return NULL;
}

static void stress(const char *partition_key)
{
    struct world *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->srv.d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, handler,
                         &w->srv, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    assert_non_null(w->srv.d);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d",
             MHD_get_daemon_info(w->srv.d, MHD_DAEMON_INFO_BIND_PORT)->port);
    static const char *const vars[][2] = {
        {"KTE_STREAM_NAME", "s"},
        {"AWS_REGION", "us-east-1"},
        {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
        {"AWS_SECRET_ACCESS_KEY", "secret"},
        {"AWS_LAMBDA_FUNCTION_NAME", "fn"},
        {"KTE_FLUSH", "continuous,5"},
    };
    struct kt_env env = {0};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        kt_env_set(&env, vars[i][0], vars[i][1]);
    kt_env_set(&env, "KTE_ENDPOINT", endpoint);
    kt_env_set(&env, "KTE_PARTITION_KEY", partition_key);
    char et[64], msg[256], err[256];
    int rc = kte_config_load(&w->cfg, kt_env_get, &env, et, sizeof et, msg, sizeof msg);
    if (rc)
        print_error("%s: %s\n", et, msg);
    assert_int_equal(rc, 0);
    w->p = kte_pipeline_new(&w->cfg, err, sizeof err);
    assert_non_null(w->p);
    assert_int_equal(kte_pipeline_start(w->p), 0);

    pthread_t t[4];
    assert_int_equal(pthread_create(&t[0], NULL, ingest_main, w), 0);
    assert_int_equal(pthread_create(&t[1], NULL, set_request_main, w), 0);
    assert_int_equal(pthread_create(&t[2], NULL, flush_main, w), 0);
    assert_int_equal(pthread_create(&t[3], NULL, flush_main, w), 0);
    /* Intake closes while bodies are still arriving, as at SIGTERM. */
    while (atomic_load(&w->bodies_sent) < BODIES * 3 / 4)
        usleep(500);
    kte_pipeline_close(w->p);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    int accepted = atomic_load(&w->bodies_accepted);
    assert_true(accepted >= BODIES * 3 / 4); /* usually fewer than all: timing decides */

    kte_pipeline_flush(w->p, kte_now_ms() + 10000);
    kte_pipeline_stop(w->p, kte_now_ms() + 10000);

    struct kte_metrics *m = kte_pipeline_metrics(w->p);
    assert_int_equal(atomic_load(&m->received), accepted * PER_BODY);
    assert_int_equal(atomic_load(&m->delivered) + kte_metrics_dropped_total(m),
                     accepted * PER_BODY);
    assert_int_equal(kte_metrics_dropped_total(m), 0);
    kte_pipeline_free(w->p);
    MHD_stop_daemon(w->srv.d);
    free(w);
}

static void test_stress_random_keys(void **state)
{
    (void)state;
    stress("random");
}

static void test_stress_request_keys(void **state)
{
    (void)state;
    stress("request");
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_random_keys),
        cmocka_unit_test(test_stress_request_keys),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
