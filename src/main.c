/* kinesis-telemetry-extension: a Lambda external extension that ships every
 * Telemetry API event to a Kinesis data stream.
 *
 * Threads: this one runs the lifecycle (register, subscribe, event/next);
 * libmicrohttpd's thread receives telemetry; the pipeline's sender thread
 * calls PutRecords; a signal thread turns SIGTERM/SIGINT into flush-and-exit. */
#include "kte_config.h"
#include "kte_config_vars.h"
#include "kte_flush.h"
#include "kte_lambda_api.h"
#include "kte_listener.h"
#include "kte_log.h"
#include "kte_pipeline.h"
#include "kte_record.h"
#include "kte_version.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define SIGNAL_FLUSH_MS 1500

struct app {
    struct kte_config cfg;
    struct kte_lambda_api api;
    struct kte_pipeline *pipeline;
    struct kte_listener *listener;
    /* The one thread that ends the process (finish or init_fail) claims
     * this first; it alone stops the listener and the pipeline. */
    atomic_flag exiting;
    sigset_t signals;
    /* The lifecycle thread calls into the pipeline only between
     * lifecycle_enter and lifecycle_leave; once finish() has begun it
     * enters no more, and finish() waits for a call in progress to return
     * (stopping the pipeline makes flushes and waits return at once). */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    bool finishing;   /* gate_mu */
    bool in_pipeline; /* gate_mu */
    /* The lifecycle thread's own: what the adaptive flush observed. */
    struct kte_flush_history flush_history;
};

static void park_forever(void)
{
    for (;;)
        pause();
}

static void lifecycle_enter(struct app *a)
{
    pthread_mutex_lock(&a->gate_mu);
    bool closed = a->finishing;
    a->in_pipeline = !closed;
    pthread_mutex_unlock(&a->gate_mu);
    if (closed)
        park_forever(); /* the finishing thread ends the process */
}

static void lifecycle_leave(struct app *a)
{
    pthread_mutex_lock(&a->gate_mu);
    a->in_pipeline = false;
    pthread_cond_broadcast(&a->gate_cv);
    pthread_mutex_unlock(&a->gate_mu);
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: on
 * Linux that keeps the peak of the parent from before exec. */
static uint64_t peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    unsigned long long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
            break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

/* Closes intake, delivers what was accepted until the deadline, settles the
 * accounts, prints the metrics and ends the process. Intake closes first so
 * that nothing is accepted after the last flush began: every event we
 * answered 200 for is delivered or counted, and later POSTs get 503 (the
 * listener keeps answering until the end, so no answer is cut off after the
 * events were taken). Only the first caller (lifecycle or signal thread)
 * goes on; a second one waits for the first to end the process. */
__attribute__((noreturn)) static void finish(struct app *a, int code, int64_t deadline_ms)
{
    if (atomic_flag_test_and_set(&a->exiting))
        park_forever();
    pthread_mutex_lock(&a->gate_mu);
    a->finishing = true;
    pthread_mutex_unlock(&a->gate_mu);
    struct kte_pipeline *p = a->pipeline;
    if (p) {
        /* A flush of the lifecycle thread may be running: this one
         * composes with it (each is served until its own deadline). */
        kte_pipeline_close(p);
        kte_pipeline_flush(p, deadline_ms);
    }
    if (a->listener)
        kte_listener_stop(a->listener);
    a->listener = NULL;
    if (p) {
        kte_pipeline_stop(p, deadline_ms);
        pthread_mutex_lock(&a->gate_mu);
        while (a->in_pipeline)
            pthread_cond_wait(&a->gate_cv, &a->gate_mu);
        pthread_mutex_unlock(&a->gate_mu);
        struct kte_metrics *m = kte_pipeline_metrics(p);
        struct kte_buf emf;
        kte_buf_init(&emf);
        if (kte_metrics_emf(m, a->cfg.function_name, kte_epoch_ms(), peak_rss_bytes(), &emf) == 0)
            printf("%s\n", emf.data);
        kte_buf_free(&emf);
        uint64_t dropped = kte_metrics_dropped_total(m);
        if (dropped)
            KTE_ERROR("%llu of %llu events could not be delivered (see the Dropped* metrics)",
                      (unsigned long long)dropped, (unsigned long long)atomic_load(&m->received));
    }
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}

static void *signal_main(void *arg)
{
    struct app *a = arg;
    int sig = 0;
    sigwait(&a->signals, &sig);
    KTE_INFO("signal %d: flushing and exiting", sig);
    finish(a, 0, kte_now_ms() + SIGNAL_FLUSH_MS);
}

/* deadline: the invoke's, already converted to the monotonic clock. */
static void on_invoke(struct app *a, const struct kte_next_event *ev, int64_t deadline)
{
    struct kte_pipeline *p = a->pipeline;
    lifecycle_enter(a);
    kte_pipeline_set_request(p, ev->request_id);
    kte_flush_history_invoke(&a->flush_history, kte_epoch_ms());
    struct kte_invoke_plan plan =
        kte_flush_plan_invoke_h(&a->cfg, kte_now_ms(), kte_pipeline_last_flush_ms(p), deadline,
                                &a->flush_history, kte_pipeline_buffered(p));
    if (plan.flush && a->cfg.flush_mode == KTE_FLUSH_ADAPTIVE)
        kte_pipeline_restart_timer(p);
    if (plan.flush) {
        /* Flush once the runtime is done, so that the invoke's own logs and
         * its runtimeDone leave with it and nothing waits in a frozen
         * environment. */
        if (plan.wait_runtime_done &&
            !kte_pipeline_wait_for(p, KTE_WAIT_RUNTIME_DONE, ev->request_id, plan.wait_until))
            KTE_DEBUG("no platform.runtimeDone for %s before the wait ended", ev->request_id);
        kte_pipeline_flush(p, kte_flush_invoke_flush_deadline(&a->cfg, kte_now_ms(), &plan));
    }
    lifecycle_leave(a);
}

__attribute__((noreturn)) static void on_shutdown(struct app *a, const struct kte_next_event *ev,
                                                  int64_t deadline, const char *last_rid)
{
    int64_t now = kte_now_ms();
    struct kte_shutdown_plan plan =
        kte_flush_plan_shutdown(&a->cfg, now, deadline, last_rid[0] != '\0');
    KTE_INFO("SHUTDOWN (%s), %lld ms left", ev->shutdown_reason, (long long)(deadline - now));
    if (plan.wait_report) {
        lifecycle_enter(a);
        kte_pipeline_wait_for(a->pipeline, KTE_WAIT_REPORT, last_rid, plan.wait_until);
        lifecycle_leave(a);
    } else {
        sleep_ms(plan.wait_until - now);
    }
    finish(a, 0, plan.deadline);
}

/* SnapStart: init ends with our next event/next, after which Lambda may
 * take the snapshot that many environments resume from. Whatever is
 * buffered then would be delivered once per restored copy, so it goes now;
 * what arrives until the snapshot is sent at once (kte_pipeline_init_done).
 * docs/lifecycle.md. */
static void snapshot_ready(struct app *a)
{
    lifecycle_enter(a);
    size_t left = kte_pipeline_flush(a->pipeline, kte_now_ms() + a->cfg.flush_timeout_ms);
    if (left)
        KTE_WARN("SnapStart: %zu events still buffered when init ends; every environment "
                 "restored from the snapshot may deliver them (same environment and seq)",
                 left);
    kte_pipeline_init_done(a->pipeline);
    lifecycle_leave(a);
}

/* Reports a start-up failure to Lambda and exits non-zero. */
__attribute__((noreturn)) static void init_fail(struct app *a, const char *type, const char *msg)
{
    KTE_ERROR("%s: %s", type, msg);
    /* The signal thread may be finishing already: then it stops the
     * listener, and this thread waits for it to end the process. */
    if (atomic_flag_test_and_set(&a->exiting))
        park_forever();
    if (a->api.ext_id[0] && kte_lambda_report_error(&a->api, true, type, msg) != 0)
        KTE_ERROR("could not report the init error to the Extensions API");
    if (a->listener)
        kte_listener_stop(a->listener);
    fflush(stderr);
    _exit(1);
}

int main(int argc, char **argv)
{
    /* What is in this binary, for users and scanners; no Lambda needed. */
    if (argc == 2 && strcmp(argv[1], "--version") == 0)
        return kte_version_print(stdout) == 0 ? 0 : 1;
    static struct app a; /* large; lives for the whole process */
    atomic_flag_clear(&a.exiting);
    pthread_mutex_init(&a.gate_mu, NULL);
    pthread_cond_init(&a.gate_cv, NULL);

    /* Block the termination signals in every thread; one thread waits for
     * them. SIGPIPE must never kill us over a closed connection. */
    sigemptyset(&a.signals);
    sigaddset(&a.signals, SIGTERM);
    sigaddset(&a.signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &a.signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *slash = strrchr(argv[0], '/');
    const char *name = slash ? slash + 1 : argv[0];
    const char *runtime_api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!runtime_api || !*runtime_api) {
        fprintf(stderr,
                "[%s] AWS_LAMBDA_RUNTIME_API is not set: this program is a Lambda "
                "extension and runs inside a Lambda execution environment (or "
                "tools/lambda-sim)\n",
                name);
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        kte_lambda_api_init(&a.api, runtime_api) != 0) {
        fprintf(stderr, "[%s] cannot initialise libcurl\n", name);
        return 1;
    }

    char errtype[64], msg[512];
    int cfg_rc = kte_config_load(&a.cfg, kte_config_process_env, NULL, errtype, sizeof errtype, msg,
                                 sizeof msg);
    kte_log_set_level(cfg_rc == 0 ? (enum kte_log_level)a.cfg.log_level : KTE_LOG_WARN);
    /* A typo (KTE_STREM_NAME) or a newer version's option: warn, go on. */
    kte_config_vars_warn_unknown(environ);

    char err[512];
    if (kte_lambda_register(&a.api, name, cfg_rc == 0 && a.cfg.managed_instances, err,
                            sizeof err) != 0) {
        KTE_ERROR("cannot register with the Extensions API: %s", err);
        return 1;
    }
    if (cfg_rc != 0)
        init_fail(&a, errtype, msg);

    a.pipeline = kte_pipeline_new(&a.cfg, err, sizeof err);
    if (!a.pipeline)
        init_fail(&a, "Extension.InitFailed", err);

    /* An unguessable path: only whoever we tell it to (the Telemetry API)
     * can post telemetry, not other code in the sandbox. */
    char token[KTE_ENV_ID_LEN + 1], path[KTE_ENV_ID_LEN + 2];
    if (kte_random_hex_id(token) != 0)
        init_fail(&a, "Extension.InitFailed", "cannot read random bytes");
    snprintf(path, sizeof path, "/%s", token);
    a.listener = kte_listener_start(a.cfg.listener_host, a.cfg.listener_port, path,
                                    (size_t)a.cfg.max_body_bytes, kte_pipeline_ingest, a.pipeline,
                                    kte_pipeline_metrics(a.pipeline), err, sizeof err);
    if (!a.listener)
        init_fail(&a, "Extension.ListenerFailed", err);
    if (kte_pipeline_start(a.pipeline) != 0)
        init_fail(&a, "Extension.InitFailed", "cannot start the sender thread");
    pthread_t sig_thread;
    if (pthread_create(&sig_thread, NULL, signal_main, &a) != 0)
        init_fail(&a, "Extension.InitFailed", "cannot start the signal thread");
    pthread_detach(sig_thread);

    char uri[400];
    const char *host =
        strcmp(a.cfg.listener_host, "0.0.0.0") ? a.cfg.listener_host : "sandbox.localdomain";
    snprintf(uri, sizeof uri, "http://%s:%d%s", host, kte_listener_port(a.listener), path);
    if (kte_lambda_subscribe(&a.api, &a.cfg, uri, err, sizeof err) != 0)
        init_fail(&a, "Extension.SubscribeFailed", err);
    char env_id[KTE_PIPELINE_ENV_ID_SIZE];
    kte_pipeline_env_id(a.pipeline, env_id);
    KTE_INFO("subscribed; environment %s, stream %s, credentials from %s", env_id,
             a.cfg.stream_name[0] ? a.cfg.stream_name : a.cfg.stream_arn,
             a.cfg.creds_source == KTE_CREDS_ENV ? "the environment" : "the container endpoint");
    if (a.cfg.snapstart)
        snapshot_ready(&a);

    char last_rid[64] = "";
    struct kte_metrics *m = kte_pipeline_metrics(a.pipeline);
    uint64_t freeze_counted = 0; /* events counted in EventsDeliveredAfterFreeze so far */
    for (;;) {
        struct kte_next_event ev;
        /* A freeze with events in the extension: they wait for the thaw
         * (EventsDeliveredAfterFreeze, docs/flush.md). Lambda hands out the
         * INVOKE at the thaw, the telemetry it held during the freeze just
         * after: bodies from KTE_ADAPT_MARGIN before the return on are
         * taken as post-thaw ones. */
        int64_t called = kte_epoch_ms();
        int next_rc = kte_lambda_next(&a.api, &ev, err, sizeof err);
        int64_t returned = kte_epoch_ms();
        if (next_rc == 0 && kte_flush_was_frozen(&a.cfg, called, returned)) {
            uint64_t received =
                kte_pipeline_received_before(a.pipeline, returned - KTE_ADAPT_MARGIN);
            uint64_t settled = atomic_load(&m->delivered) + kte_metrics_dropped_total(m);
            uint64_t held = kte_flush_held_over_freeze(received, settled, &freeze_counted);
            atomic_fetch_add(&m->delivered_after_freeze, held);
            if (held)
                KTE_DEBUG("%llu events waited through a freeze", (unsigned long long)held);
        }
        if (next_rc != 0) {
            /* Without the Extensions API there is no lifecycle left to follow. */
            KTE_ERROR("%s; flushing and exiting", err);
            kte_lambda_report_error(&a.api, false, "Extension.NextFailed", err);
            finish(&a, 1, kte_now_ms() + SIGNAL_FLUSH_MS);
        }
        /* Lambda's deadline is wall-clock time: converted once, here. */
        int64_t deadline = kte_deadline_from_epoch(ev.deadline_ms);
        if (ev.type == KTE_NEXT_SHUTDOWN)
            on_shutdown(&a, &ev, deadline, last_rid);
        snprintf(last_rid, sizeof last_rid, "%s", ev.request_id);
        if (a.cfg.snapstart) {
            lifecycle_enter(&a);
            kte_pipeline_invoked(a.pipeline); /* the first INVOKE may be a restore */
            lifecycle_leave(&a);
        }
        on_invoke(&a, &ev, deadline);
    }
}
