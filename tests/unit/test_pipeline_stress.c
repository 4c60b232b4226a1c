/* Many threads at once on one pipeline, as in the extension: the listener
 * ingests, the lifecycle thread sets the request and flushes, the signal
 * thread flushes too, intake closes while bodies still arrive, and the
 * pipeline stops. Meant for ThreadSanitizer (make test-tsan), which reports
 * any unlocked sharing; the plain and ASan builds check the accounting.
 * Kinesis is the fake of kte_fake_kinesis.h, failing every second call so
 * that retries (and their random backoff) run alongside random partition
 * keys. */
#include "kte_config.h"
#include "kte_pipeline.h"
#include "kte_test_util.h"

#include <curl/curl.h>
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

#include "kte_fake_kinesis.h"

#define BODIES       40
#define PER_BODY     250
#define SET_REQUESTS 300

struct world {
    struct fake srv;
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
    w->srv.fail_every = 2; /* before its thread starts: no lock needed */
    fake_start(&w->srv);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", w->srv.port);
    static const char *const vars[][2] = {
        {"KTE_STREAM_NAME", "s"},
        {"AWS_REGION", "us-east-1"},
        {"AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"},
        {"AWS_SECRET_ACCESS_KEY", "secret"},
        {"AWS_LAMBDA_FUNCTION_NAME", "fn"},
        {"KTE_FLUSH", "continuous,5"},
        {"KTE_PROTOCOL", "json"}, /* the fake Kinesis speaks JSON only */
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
    fake_stop(&w->srv);
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
