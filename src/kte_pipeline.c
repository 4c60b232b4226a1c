#include "kte_pipeline.h"

#include "kte_agg.h"
#include "kte_event.h"
#include "kte_flush.h"
#include "kte_kinesis.h"
#include "kte_listener.h"
#include "kte_log.h"
#include "kte_queue.h"
#include "kte_record.h"
#include "kte_restore.h"
#include "kte_rules.h"
#include "kte_pace.h"
#include "kte_send.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RID_RING 32

struct rid_ring {
    char rid[RID_RING][KTE_EVENT_RID_MAX];
    unsigned pos;
};

/* Who may touch what. Four groups, each with one owner. */
struct kte_pipeline {
    /* 1. Fixed at kte_pipeline_new, read by every thread without a lock. */
    const struct kte_config *cfg;
    char first_env_id[KTE_ENV_ID_LEN + 1]; /* the environment at start (the snapshot's) */
    struct kte_metrics metrics;            /* atomics */

    /* 1b. The identity: changed only by a SnapStart restore, which holds
     *     intake_mu and mu; read with either held. */
    char env_id[KTE_ENV_ID_LEN + 1];
    struct kte_record_builder rb; /* its envelope; rb.seq_base starts the restored seq at 1 */

    /* 2. Intake: the thread in kte_pipeline_ingest, which holds intake_mu
     *    for the whole body (bodies are buffered one at a time, in order),
     *    or the lifecycle thread in kte_pipeline_invoked. */
    pthread_mutex_t intake_mu;
    uint64_t intake_rng; /* random partition keys */
    struct kte_restore restore;
    struct kte_rules_scratch *rules_scratch; /* NULL without rules (cfg->rules) */
    struct kte_buf rules_out;                /* an event as redacted */

    /* 3. The sender thread alone (no lock): its client, its batch, its
     *    randomness, preallocated so that the thread never allocates (the
     *    framer's arena grows to the largest call and stays). */
    struct kte_kinesis kinesis;
    uint64_t send_rng;           /* backoff jitter, random keys of grouped records */
    unsigned sender_restores;    /* restores the sender has acted on (connections, credentials) */
    struct kte_rec **batch;      /* the events of the call, framer.max_events */
    struct kte_framer framer;    /* their Kinesis records */
    struct kte_send_limits full; /* when the queue holds a call's worth (fixed at start) */
    struct kte_rec_result results[KTE_BATCH_MAX_RECORDS]; /* per Kinesis record */
    char last_error[128]; /* to log each kind of failure once, not per batch */

    /* 4. Guarded by mu; `changed` is broadcast on every change. */
    pthread_mutex_t mu;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC */
    struct kte_queue queue;
    size_t mem;      /* memory of queued and in-flight records (the buffer cap) */
    size_t mem_peak; /* highest mem so far */
    uint64_t next_seq;
    size_t inflight;               /* records the sender holds */
    uint64_t inflight_min_seq;     /* lowest seq in flight; 0 when a kte.dropped record is */
    size_t inflight_reports;       /* kte.dropped records among them */
    struct kte_flush_req *flushes; /* one per thread in kte_pipeline_flush */
    int64_t last_flush_ms;
    struct kte_intake_log intake_log; /* when bodies arrived (adaptive flush) */
    int64_t next_attempt_ms;          /* backoff: no PutRecords before this */
    int64_t last_call_ms;             /* when the sender took its last batch */
    int64_t backoff_ms;
    struct kte_pace pace; /* the share of the stream's throughput this environment offers */
    bool stopping;
    bool closed;       /* intake ended: bodies are refused, not accepted */
    unsigned restores; /* SnapStart restores begun (the sender catches up) */
    bool eager;        /* SnapStart, init over: send whatever arrives before the snapshot */
    char current_rid[KTE_EVENT_RID_MAX];
    struct rid_ring runtime_done;
    struct rid_ring reports;
    struct kte_drop_stats unreported; /* drops no kte.dropped record mentions yet */
    struct kte_drop_stats reporting;  /* drops the queued kte.dropped record carries */
    bool report_queued;
    bool overflow_logged;
    bool sender_started;
    bool sender_done; /* the sender thread has left its loop */
    bool abandoned;   /* stop() stopped waiting for the sender's last request */
    pthread_t sender;
};

static int init_sync(struct kte_pipeline *p)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&p->changed, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->intake_mu, NULL);
    return 0;
}

struct kte_pipeline *kte_pipeline_new(const struct kte_config *cfg, char *err, size_t errlen)
{
    struct kte_pipeline *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    kte_metrics_init(&p->metrics);
    kte_queue_init(&p->queue);
    p->next_seq = 1;
    p->last_flush_ms = kte_now_ms();
    uint64_t seeds[2];
    if (kte_random_hex_id(p->env_id) != 0 ||
        getrandom(seeds, sizeof seeds, 0) != (ssize_t)sizeof seeds) {
        snprintf(err, errlen, "cannot read random bytes for the environment id");
        free(p);
        return NULL;
    }
    p->intake_rng = seeds[0] | 1; /* xorshift must not start at zero */
    p->send_rng = seeds[1] | 1;
    memcpy(p->first_env_id, p->env_id, sizeof p->env_id);
    kte_restore_init(&p->restore, cfg->snapstart);
    if (kte_record_builder_init(&p->rb, p->env_id, cfg->function_name, cfg->function_version,
                                cfg->region) != 0) {
        snprintf(err, errlen, "out of memory");
        free(p);
        return NULL;
    }
    if (kte_kinesis_init(&p->kinesis, cfg, err, errlen) != 0) {
        kte_kinesis_free(&p->kinesis);
        kte_record_builder_free(&p->rb);
        free(p);
        return NULL;
    }
    kte_buf_init(&p->rules_out);
    if (cfg->rules && !(p->rules_scratch = kte_rules_scratch_new(cfg->rules))) {
        kte_kinesis_free(&p->kinesis);
        kte_record_builder_free(&p->rb);
        snprintf(err, errlen, "out of memory (processing rules)");
        free(p);
        return NULL;
    }
    kte_framer_init(&p->framer, cfg);
    p->full = kte_send_limits(cfg, p->framer.max_events);
    p->batch = calloc(p->framer.max_events, sizeof *p->batch);
    if (!p->batch || init_sync(p) != 0) {
        free(p->batch);
        kte_framer_free(&p->framer);
        kte_rules_scratch_free(p->rules_scratch);
        kte_kinesis_free(&p->kinesis);
        kte_record_builder_free(&p->rb);
        snprintf(err, errlen, "cannot initialise the pipeline's condition variable");
        free(p);
        return NULL;
    }
    return p;
}

struct kte_metrics *kte_pipeline_metrics(struct kte_pipeline *p)
{
    return &p->metrics;
}

void kte_pipeline_env_id(struct kte_pipeline *p, char out[KTE_PIPELINE_ENV_ID_SIZE])
{
    pthread_mutex_lock(&p->mu);
    memcpy(out, p->env_id, KTE_PIPELINE_ENV_ID_SIZE);
    pthread_mutex_unlock(&p->mu);
}

unsigned kte_pipeline_restores(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->restores;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ---- with mu held ----------------------------------------------------- */

static void mem_add(struct kte_pipeline *p, size_t n)
{
    p->mem += n;
    if (p->mem > p->mem_peak)
        p->mem_peak = p->mem;
}

/* Accounts one event that will not be delivered. seq is the pipeline's;
 * the kte.dropped record speaks in the envelope's numbering (an event from
 * before a restore keeps its old number). */
static void note_drop(struct kte_pipeline *p, enum kte_drop_reason why, uint64_t seq)
{
    atomic_fetch_add(&p->metrics.dropped[why], 1);
    if (why != KTE_DROP_SHUTDOWN)
        kte_drop_stats_add(&p->unreported, why, seq > p->rb.seq_base ? seq - p->rb.seq_base : seq);
}

/* Frees a record that leaves without delivery. Our own kte.dropped record
 * is not an event: losing it only puts its numbers back for the next one. */
static void discard(struct kte_pipeline *p, struct kte_rec *r, enum kte_drop_reason why)
{
    if (r->is_report) {
        kte_drop_stats_merge(&p->unreported, &p->reporting);
        memset(&p->reporting, 0, sizeof p->reporting);
        p->report_queued = false;
    } else {
        note_drop(p, why, r->seq);
    }
    p->mem -= kte_rec_mem(r);
    free(r);
}

/* Buffers one new record under KTE_MAX_BUFFER_BYTES: the cap holds after
 * every record, so a body never costs more than the cap plus one record.
 * Records in flight cannot be dropped; they are bounded by one batch.
 * Returns whether something was dropped. */
static bool buffer_record(struct kte_pipeline *p, struct kte_rec *r)
{
    size_t cap = (size_t)p->cfg->max_buffer_bytes;
    mem_add(p, kte_rec_mem(r));
    if (p->cfg->overflow == KTE_OVERFLOW_DROP_NEWEST && p->mem > cap) {
        discard(p, r, KTE_DROP_OVERFLOW);
        return true;
    }
    kte_queue_push(&p->queue, r);
    bool dropped = false;
    while (p->mem > cap && p->queue.head) {
        discard(p, kte_queue_pop(&p->queue), KTE_DROP_OVERFLOW);
        dropped = true;
    }
    return dropped;
}

static void log_overflow(struct kte_pipeline *p)
{
    if (p->overflow_logged)
        return;
    /* Once per episode; the kte.dropped record and the metrics carry the counts. */
    KTE_WARN("buffer full (KTE_MAX_BUFFER_BYTES=%ld): dropping %s events until delivery "
             "catches up",
             p->cfg->max_buffer_bytes,
             p->cfg->overflow == KTE_OVERFLOW_DROP_OLDEST ? "the oldest" : "new");
    p->overflow_logged = true;
}

static void ring_add(struct rid_ring *r, const char *rid)
{
    snprintf(r->rid[r->pos % RID_RING], sizeof r->rid[0], "%s", rid);
    r->pos++;
}

static bool ring_has(const struct rid_ring *r, const char *rid)
{
    for (unsigned i = 0; i < RID_RING; i++)
        if (r->rid[i][0] && !strcmp(r->rid[i], rid))
            return true;
    return false;
}

/* Waits on the condition until the deadline; returns false once it passed. */
static bool wait_until(struct kte_pipeline *p, int64_t deadline_ms)
{
    if (deadline_ms <= 0) {
        pthread_cond_wait(&p->changed, &p->mu);
        return true;
    }
    if (kte_now_ms() >= deadline_ms)
        return false;
    struct timespec ts = kte_mono_timespec(deadline_ms);
    return pthread_cond_timedwait(&p->changed, &p->mu, &ts) != ETIMEDOUT ||
           kte_now_ms() < deadline_ms;
}

/* ---- intake (listener thread) ----------------------------------------- */

/* Bytes an envelope may take so that it fits in a Kinesis record of its own
 * under KTE_MAX_RECORD_BYTES, key and record format included. */
static size_t room_for_envelope(const struct kte_pipeline *p, size_t pk_len)
{
    return (size_t)p->cfg->max_record_bytes - pk_len - kte_agg_overhead(p->cfg, pk_len);
}

/* The partition key for one event, per KTE_PARTITION_KEY. Intake lock held;
 * rid is the request current when the body arrived. */
static const char *partition_key(struct kte_pipeline *p, const struct kte_event_view *ev,
                                 const char *rid, char *tmp, size_t tmp_len)
{
    switch (p->cfg->partition_key) {
    case KTE_PK_REQUEST:
        if (ev->request_id[0])
            return ev->request_id;
        return rid[0] ? rid : p->env_id;
    case KTE_PK_FUNCTION:
        return p->cfg->function_name;
    case KTE_PK_TENANT:
        if (!ev->tenant_len || ev->tenant_len >= tmp_len)
            return p->env_id;
        memcpy(tmp, ev->tenant, ev->tenant_len);
        tmp[ev->tenant_len] = '\0';
        return tmp;
    case KTE_PK_RANDOM:
        snprintf(tmp, tmp_len, "%016llx", (unsigned long long)kte_send_random(&p->intake_rng));
        return tmp;
    case KTE_PK_ENVIRONMENT:
    default:
        return p->env_id;
    }
}

/* A SnapStart restore begins (intake_mu held): a new environment id and
 * envelope whose seq starts at 1 with the event of pipeline seq first_seq
 * (0: the next seq given out),
 * new randomness; the sender renews its connections and credentials before
 * its next request. Records built before keep their identity: delivered by
 * several restored copies in Lambda, they are byte-identical duplicates,
 * which (environment, seq) tells apart. */
static void begin_restore(struct kte_pipeline *p, uint64_t first_seq)
{
    char id[KTE_ENV_ID_LEN + 1];
    uint64_t seed;
    struct kte_record_builder rb;
    if (kte_random_hex_id(id) != 0 || getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        KTE_ERROR("SnapStart restore: cannot read random bytes; keeping environment %s", p->env_id);
        return;
    }
    if (kte_record_builder_init_restored(&rb, id, p->first_env_id, p->cfg->function_name,
                                         p->cfg->function_version, p->cfg->region, 0) != 0) {
        KTE_ERROR("SnapStart restore: out of memory; keeping environment %s", p->env_id);
        return;
    }
    p->intake_rng = seed | 1;
    pthread_mutex_lock(&p->mu);
    rb.seq_base = (first_seq ? first_seq : p->next_seq) - 1;
    struct kte_record_builder old = p->rb;
    p->rb = rb;
    memcpy(p->env_id, id, sizeof id);
    p->restores++;
    p->eager = false;
    unsigned n = p->restores;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    kte_record_builder_free(&old);
    KTE_INFO("SnapStart restore %u: environment %s (snapshot %s)", n, id, p->first_env_id);
}

void kte_pipeline_init_done(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->intake_mu);
    kte_restore_arm(&p->restore);
    pthread_mutex_lock(&p->mu);
    p->eager = p->cfg->snapstart;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->intake_mu);
}

void kte_pipeline_invoked(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->intake_mu);
    if (kte_restore_on_invoke(&p->restore))
        begin_restore(p, 0);
    pthread_mutex_unlock(&p->intake_mu);
}

/* Applies the processing rules to one event (intake lock held): false when
 * the event goes no further (counted as filtered or sampled out); otherwise
 * *raw and *raw_len are what to ship, the event as redacted if need be. */
static bool apply_rules(struct kte_pipeline *p, const struct kte_event_view *ev, const char *rid,
                        const char **raw, size_t *raw_len)
{
    struct kte_rules_outcome oc;
    kte_rules_apply(p->cfg->rules, p->rules_scratch, ev, rid, &p->rules_out, &oc);
    for (int i = 0; i < KTE_RX_KINDS; i++)
        if (oc.redactions[i])
            atomic_fetch_add(&p->metrics.redactions[i], oc.redactions[i]);
    if (oc.match_limit)
        atomic_fetch_add(&p->metrics.rules_match_limit, 1);
    if (oc.verdict == KTE_VERDICT_FILTERED) {
        atomic_fetch_add(&p->metrics.filtered, 1);
        return false;
    }
    if (oc.verdict == KTE_VERDICT_SAMPLED_OUT) {
        atomic_fetch_add(&p->metrics.sampled_out, 1);
        return false;
    }
    if (oc.redacted) {
        *raw = p->rules_out.data;
        *raw_len = p->rules_out.len;
    }
    return true;
}

/* Builds and buffers the records of one parsed body, one at a time: the
 * memory a body costs is its records under the cap, never all of them. */
static void buffer_events(struct kte_pipeline *p, const struct kte_event_list *evs, uint64_t seq,
                          const char *rid)
{
    bool overflowed = false;
    for (size_t i = 0; i < evs->n; i++, seq++) {
        const struct kte_event_view *ev = &evs->v[i];
        atomic_fetch_add(&p->metrics.received, 1);
        atomic_fetch_add(&p->metrics.bytes_received, ev->raw_len);
        bool redelivered;
        if (kte_restore_on_event(&p->restore, ev->type, &redelivered))
            begin_restore(p, seq);
        const char *raw = ev->raw;
        size_t raw_len = ev->raw_len;
        if (p->rules_scratch && !apply_rules(p, ev, rid, &raw, &raw_len))
            continue;
        char tmp[KTE_EVENT_TENANT_MAX + 1];
        const char *pk = partition_key(p, ev, rid, tmp, sizeof tmp);
        enum kte_build_error why;
        struct kte_rec *r =
            kte_record_build_flags(&p->rb, seq, raw, raw_len, pk, room_for_envelope(p, strlen(pk)),
                                   redelivered ? KTE_BUILD_REDELIVERED : 0, &why);
        if (r && r->truncated)
            atomic_fetch_add(&p->metrics.truncated, 1);
        pthread_mutex_lock(&p->mu);
        bool was_full = kte_send_full(&p->full, p->queue.count, p->queue.bytes);
        if (!r)
            note_drop(p, why == KTE_BUILD_TOO_LARGE ? KTE_DROP_TOO_LARGE : KTE_DROP_NOMEM, seq);
        else if (buffer_record(p, r))
            overflowed = true;
        /* Wake the sender when the queue fills a call, not for every record. */
        if (!was_full && kte_send_full(&p->full, p->queue.count, p->queue.bytes))
            pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    if (overflowed)
        log_overflow(p);
    for (size_t i = 0; i < evs->n; i++) {
        const struct kte_event_view *ev = &evs->v[i];
        if (!ev->request_id[0])
            continue;
        if (!strcmp(ev->type, "platform.runtimeDone"))
            ring_add(&p->runtime_done, ev->request_id);
        else if (!strcmp(ev->type, "platform.report"))
            ring_add(&p->reports, ev->request_id);
    }
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
}

int kte_pipeline_ingest(void *ctx, const char *body, size_t len, char *msg, size_t msg_len)
{
    struct kte_pipeline *p = ctx;
    struct kte_event_list evs;
    kte_event_list_init(&evs);
    if (kte_event_parse(body, len, &evs, msg, msg_len) != 0) {
        KTE_WARN("rejected a Telemetry API body of %zu bytes: %s", len, msg);
        kte_event_list_free(&evs);
        return KTE_SINK_MALFORMED;
    }

    pthread_mutex_lock(&p->intake_mu);
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        pthread_mutex_unlock(&p->intake_mu);
        kte_event_list_free(&evs);
        snprintf(msg, msg_len, "shutting down");
        return KTE_SINK_CLOSED;
    }
    uint64_t seq = p->next_seq;
    p->next_seq += evs.n;
    kte_intake_log_add(&p->intake_log, kte_epoch_ms(), evs.n);
    char rid[KTE_EVENT_RID_MAX];
    memcpy(rid, p->current_rid, sizeof rid);
    pthread_mutex_unlock(&p->mu);

    buffer_events(p, &evs, seq, rid);
    pthread_mutex_unlock(&p->intake_mu);
    kte_event_list_free(&evs);
    return 0;
}

void kte_pipeline_close(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    pthread_mutex_unlock(&p->mu);
    /* A body that got past the check above is still being buffered: the
     * intake lock is free again only once it is done. */
    pthread_mutex_lock(&p->intake_mu);
    pthread_mutex_unlock(&p->intake_mu);
}

/* ---- lifecycle thread ---------------------------------------------------- */

void kte_pipeline_set_request(struct kte_pipeline *p, const char *rid)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->current_rid, sizeof p->current_rid, "%s", rid);
    pthread_mutex_unlock(&p->mu);
}

bool kte_pipeline_wait_for(struct kte_pipeline *p, enum kte_wait_for what, const char *rid,
                           int64_t deadline_ms)
{
    const struct rid_ring *ring = what == KTE_WAIT_RUNTIME_DONE ? &p->runtime_done : &p->reports;
    pthread_mutex_lock(&p->mu);
    bool seen;
    while (!(seen = ring_has(ring, rid)) && !p->stopping && wait_until(p, deadline_ms))
        ;
    pthread_mutex_unlock(&p->mu);
    return seen;
}

/* Records a flush up to upto still has to deliver, buffered or in flight. */
static size_t pending_upto(struct kte_pipeline *p, uint64_t upto)
{
    size_t n = kte_queue_due(&p->queue, upto);
    if (p->inflight && p->inflight_min_seq <= upto)
        n += p->inflight;
    return n;
}

/* Whether pending_upto is non-zero, in constant time: the queue is in seq
 * order (kte.dropped reports first, always due), so the head decides. The
 * flush loop asks at every wake-up (each body ingested, each call
 * settled); counting there walked the whole queue each time, quadratic in a
 * backlog: 10% of all CPU of a 200,000-event drain (perf, 2026-11-30). */
static bool any_pending_upto(const struct kte_pipeline *p, uint64_t upto)
{
    const struct kte_rec *h = p->queue.head;
    return (h && (h->is_report || h->seq <= upto)) || (p->inflight && p->inflight_min_seq <= upto);
}

size_t kte_pipeline_flush(struct kte_pipeline *p, int64_t deadline_ms)
{
    pthread_mutex_lock(&p->mu);
    struct kte_flush_req req = {p->next_seq - 1, deadline_ms, p->flushes};
    p->flushes = &req;
    /* A flush is a fresh start: retry at once rather than after the backoff
     * of a failure during the last invoke, or after the pacing (kte_pace):
     * the invoke waits for it, billed. Its retries are paced again. */
    p->next_attempt_ms = 0;
    p->backoff_ms = 0;
    pthread_cond_broadcast(&p->changed);
    while (any_pending_upto(p, req.upto) && !p->stopping && wait_until(p, deadline_ms))
        ;
    size_t left = pending_upto(p, req.upto);
    struct kte_flush_req **link = &p->flushes;
    while (*link != &req)
        link = &(*link)->next;
    *link = req.next;
    p->last_flush_ms = kte_now_ms();
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    return left;
}

int64_t kte_pipeline_last_flush_ms(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    int64_t t = p->last_flush_ms;
    pthread_mutex_unlock(&p->mu);
    return t;
}

void kte_pipeline_restart_timer(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->last_flush_ms = kte_now_ms();
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
}

uint64_t kte_pipeline_received_before(struct kte_pipeline *p, int64_t wall_ms)
{
    pthread_mutex_lock(&p->mu);
    uint64_t n = kte_intake_log_before(&p->intake_log, wall_ms);
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t kte_pipeline_buffered(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queue.count + p->inflight;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void kte_pipeline_stats(struct kte_pipeline *p, struct kte_pipeline_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out =
        (struct kte_pipeline_stats){p->queue.count, p->inflight, p->mem, p->mem_peak, p->abandoned};
    pthread_mutex_unlock(&p->mu);
}

/* ---- sender thread (mu held unless said otherwise) ---------------------- */

static void log_failure(struct kte_pipeline *p, bool permanent, const char *code, size_t n)
{
    /* Once per kind of failure, not per batch: our output is telemetry too. */
    if (!strncmp(p->last_error, code, sizeof p->last_error - 1))
        return;
    snprintf(p->last_error, sizeof p->last_error, "%.*s", (int)sizeof p->last_error - 1, code);
    const char *stream = p->cfg->stream_name[0] ? p->cfg->stream_name : p->cfg->stream_arn;
    if (permanent)
        KTE_ERROR("PutRecords to stream %s failed permanently: %s; %zu records dropped "
                  "(counted as DroppedPermanentError)",
                  stream, code, n);
    else
        KTE_WARN("PutRecords to stream %s failed: %s; retrying with backoff", stream, code);
}

/* Queues a kte.dropped record at the head, so that the stream says what it
 * lost as soon as delivery works again. */
static void queue_drop_report(struct kte_pipeline *p)
{
    if (p->report_queued || !kte_drop_stats_total(&p->unreported))
        return;
    struct kte_buf ev;
    kte_buf_init(&ev);
    if (kte_drop_stats_event(&p->unreported, kte_epoch_ms(), &ev) != 0) {
        kte_buf_free(&ev);
        return; /* the numbers stay unreported; the next success tries again */
    }
    uint64_t seq = p->next_seq++;
    struct kte_rec *r = kte_record_build(&p->rb, seq, ev.data, ev.len, p->env_id,
                                         room_for_envelope(p, KTE_ENV_ID_LEN), NULL);
    kte_buf_free(&ev);
    if (!r)
        return;
    r->is_report = true;
    p->reporting = p->unreported;
    memset(&p->unreported, 0, sizeof p->unreported);
    p->report_queued = true;
    kte_queue_push_front(&p->queue, r);
    mem_add(p, kte_rec_mem(r));
}

/* Tells the pacer what the stream did with the call just answered: the
 * cost of its Kinesis records, sent and stored, and how many were refused
 * for throughput (per record, or the whole call). */
static void pace_answer(struct kte_pipeline *p, enum kte_put_status st, const char *code,
                        int64_t now)
{
    double sent = 0, stored = 0;
    size_t throttled = 0;
    bool call_throttled =
        st != KTE_PUT_OK && (!strcmp(code, "ProvisionedThroughputExceededException") ||
                             !strcmp(code, "LimitExceededException"));
    for (size_t w = 0; w < p->framer.nwires; w++) {
        double c = kte_pace_cost(p->framer.wires[w].len + p->framer.wires[w].pk_len);
        sent += c;
        if (st == KTE_PUT_OK && p->results[w].outcome == KTE_REC_OK)
            stored += c;
        else if (call_throttled ||
                 (st == KTE_PUT_OK &&
                  !strcmp(p->results[w].error_code, "ProvisionedThroughputExceededException")))
            throttled++;
    }
    kte_pace_answer(&p->pace, sent, stored, p->framer.nwires, throttled, now);
}

/* Settles a finished PutRecords call: frees what was delivered or refused
 * for good, puts the rest back at the head of the queue in order. */
static void settle(struct kte_pipeline *p, size_t n, enum kte_put_status st, const char *code,
                   int64_t now)
{
    struct kte_queue retry;
    kte_queue_init(&retry);
    size_t permanent = 0, delivered = 0;
    const char *perm_code = code, *retry_code = code;
    size_t w = 0; /* the Kinesis record holding event i: its fate is the event's */
    for (size_t i = 0; i < n; i++) {
        struct kte_rec *r = p->batch[i];
        while (st == KTE_PUT_OK && i >= p->framer.wires[w].first + p->framer.wires[w].count)
            w++;
        switch (kte_send_outcome(st, p->results, w)) {
        case KTE_REC_OK:
            if (r->is_report) {
                atomic_fetch_add(&p->metrics.drop_reports, 1);
                memset(&p->reporting, 0, sizeof p->reporting);
                p->report_queued = false;
            } else {
                atomic_fetch_add(&p->metrics.delivered, 1);
                atomic_fetch_add(&p->metrics.bytes_delivered, r->data_len);
            }
            delivered++;
            p->mem -= kte_rec_mem(r);
            free(r);
            break;
        case KTE_REC_PERMANENT:
            if (st == KTE_PUT_OK)
                perm_code = p->results[w].error_code;
            permanent++;
            discard(p, r, KTE_DROP_PERMANENT);
            break;
        case KTE_REC_RETRY:
            if (st == KTE_PUT_OK && retry_code == code)
                retry_code = p->results[w].error_code;
            r->attempts++;
            atomic_fetch_add(&p->metrics.retried, 1);
            kte_queue_push(&retry, r);
            break;
        }
    }
    atomic_fetch_add(st == KTE_PUT_OK ? &p->metrics.batches : &p->metrics.batches_failed, 1);
    pace_answer(p, st, code, now);

    bool retrying = retry.count > 0;
    if (retrying) {
        size_t retry_n = retry.count;
        kte_queue_prepend(&p->queue, &retry);
        log_failure(p, false, retry_code, retry_n);
        /* Progress (some records stored, e.g. under per-shard throttling)
         * keeps the wait short; only calls that store nothing back off
         * further. */
        p->next_attempt_ms =
            kte_send_backoff(&p->backoff_ms, delivered > 0, kte_send_random(&p->send_rng), now);
    } else {
        p->backoff_ms = 0;
        p->next_attempt_ms = 0;
    }
    int64_t paced = kte_pace_next_ms(&p->pace, now);
    if (paced > p->next_attempt_ms)
        p->next_attempt_ms = paced;
    if (permanent)
        log_failure(p, true, perm_code, permanent);
    else if (!retrying && p->last_error[0]) {
        KTE_INFO("PutRecords succeeds again");
        p->last_error[0] = '\0';
    }
    if (delivered) {
        p->overflow_logged = false;
        queue_drop_report(p);
    }
    if (p->cfg->flush_mode == KTE_FLUSH_CONTINUOUS || p->cfg->flush_mode == KTE_FLUSH_ADAPTIVE ||
        p->flushes)
        p->last_flush_ms = now;
}

static bool should_send(struct kte_pipeline *p, int64_t now, int64_t *wake)
{
    const struct kte_rec *head = p->queue.head;
    /* SnapStart between the end of init and the snapshot: what arrives now
     * (the init report) is sent at once, as if a flush waited for it, so
     * that little is left in the memory every restored copy resumes with. */
    struct kte_flush_req eager = {UINT64_MAX, INT64_MAX, p->flushes};
    struct kte_send_view v = {
        .queued = p->queue.count,
        .queued_bytes = p->queue.bytes,
        .head_is_report = head && head->is_report,
        .head_seq = head ? head->seq : 0,
        .flushes = p->eager ? &eager : p->flushes,
        .mode = p->cfg->flush_mode,
        .interval_ms = p->cfg->flush_interval_ms,
        .last_flush_ms = p->last_flush_ms,
        .next_attempt_ms = p->next_attempt_ms,
        .last_call_ms = p->last_call_ms,
        .full = p->full,
    };
    return kte_send_should(&v, now, wake);
}

/* Moves the next batch from the queue to the sender. */
static size_t take_batch(struct kte_pipeline *p)
{
    p->last_call_ms = kte_now_ms();
    /* Paced, a call carries what the pacing's tokens pay for; a waiting
     * flush (end of invoke, SIGTERM, SHUTDOWN) sends full calls: it has a
     * deadline, and the function or Lambda waits for it. */
    size_t max =
        p->flushes ? KTE_BATCH_MAX_RECORDS : kte_pace_max_records(&p->pace, p->last_call_ms);
    size_t n = kte_framer_plan_max(&p->framer, p->queue.head, max);
    for (size_t i = 0; i < n; i++)
        p->batch[i] = kte_queue_pop(&p->queue);
    p->inflight = n;
    p->inflight_reports = 0;
    p->inflight_min_seq = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t due = p->batch[i]->is_report ? 0 : p->batch[i]->seq; /* reports are always due */
        if (due < p->inflight_min_seq)
            p->inflight_min_seq = due;
        p->inflight_reports += p->batch[i]->is_report;
    }
    return n;
}

static void *sender_main(void *arg)
{
    struct kte_pipeline *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        int64_t now = kte_now_ms(), wake;
        if (!should_send(p, now, &wake)) {
            wait_until(p, wake);
            continue;
        }
        if (p->sender_restores != p->restores) {
            /* Restored: connections and credentials of the snapshot are not
             * this environment's; new jitter too. */
            p->sender_restores = p->restores;
            uint64_t seed;
            if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed)
                p->send_rng = seed | 1;
            kte_kinesis_restored(&p->kinesis);
            p->pace = (struct kte_pace){0}; /* a new writer: the snapshot's share is not its own */
        }
        size_t n = take_batch(p);
        /* The full request timeout even near a flush deadline: the flush
         * returns at its deadline anyway, and cutting the request short would
         * abort (and resend) a slow batch at every flush, storing it each
         * time. Shutdown abandons a request still running at its deadline. */
        long timeout = p->cfg->request_timeout_ms;
        pthread_mutex_unlock(&p->mu);

        char code[KTE_ERRCODE_MAX + 200];
        enum kte_put_status st = KTE_PUT_RETRY;
        if (kte_framer_build(&p->framer, p->batch, n, &p->send_rng) != 0) {
            p->framer.nwires = 0; /* nothing was sent: nothing for the pacer */
            snprintf(code, sizeof code, "OutOfMemory");
        } else
            st = kte_kinesis_put(&p->kinesis, p->framer.wires, p->framer.nwires, timeout,
                                 p->results, code, sizeof code);
        atomic_store(&p->metrics.protocol_fallbacks, p->kinesis.protocol_fallbacks);

        pthread_mutex_lock(&p->mu);
        if (p->abandoned) {
            /* stop() gave up on this batch and counted it already. */
            for (size_t i = 0; i < n; i++)
                free(p->batch[i]);
            break;
        }
        settle(p, n, st, code, kte_now_ms());
        p->inflight = 0;
        pthread_cond_broadcast(&p->changed);
    }
    p->sender_done = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int kte_pipeline_start(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    int rc = pthread_create(&p->sender, NULL, sender_main, p) == 0 ? 0 : -1;
    p->sender_started = rc == 0;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void kte_pipeline_stop(struct kte_pipeline *p, int64_t deadline_ms)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->changed);
    /* The sender finishes its current PutRecords first. One that would run
     * past the deadline is abandoned: Lambda kills us at its deadline, and
     * the metrics must be printed before that. Its records count as dropped
     * at shutdown, though Kinesis may still take them (at least once). */
    while (p->sender_started && !p->sender_done && wait_until(p, deadline_ms))
        ;
    if (p->sender_started && !p->sender_done) {
        p->abandoned = true;
        atomic_fetch_add(&p->metrics.dropped[KTE_DROP_SHUTDOWN], p->inflight - p->inflight_reports);
        p->inflight = 0;
        pthread_detach(p->sender);
        p->sender_started = false;
    }
    bool join = p->sender_started;
    p->sender_started = false;
    pthread_mutex_unlock(&p->mu);
    if (join)
        pthread_join(p->sender, NULL);

    pthread_mutex_lock(&p->mu);
    struct kte_rec *r;
    while ((r = kte_queue_pop(&p->queue)))
        discard(p, r, KTE_DROP_SHUTDOWN);
    pthread_mutex_unlock(&p->mu);
}

void kte_pipeline_free(struct kte_pipeline *p)
{
    if (!p)
        return;
    kte_pipeline_stop(p, 0);
    /* An abandoned sender still uses the client: let it finish first. */
    pthread_mutex_lock(&p->mu);
    while (p->abandoned && !p->sender_done)
        pthread_cond_wait(&p->changed, &p->mu);
    pthread_mutex_unlock(&p->mu);
    kte_kinesis_free(&p->kinesis);
    kte_framer_free(&p->framer);
    free(p->batch);
    kte_record_builder_free(&p->rb);
    kte_rules_scratch_free(p->rules_scratch);
    kte_buf_free(&p->rules_out);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->intake_mu);
    free(p);
}
