#include "kte_pipeline.h"

#include "kte_event.h"
#include "kte_listener.h"
#include "kte_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define BACKOFF_BASE_MS 25
#define BACKOFF_CAP_MS  2000
#define MIN_ATTEMPT_MS  20 /* less time than this left: do not start a request */

int64_t kte_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_deadline(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = ms / 1000;
    ts->tv_nsec = (ms % 1000) * 1000000;
}

static uint64_t next_random(struct kte_pipeline *p)
{
    uint64_t x = p->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p->rng = x;
    return x;
}

int kte_pipeline_init(struct kte_pipeline *p, const struct kte_config *cfg, char *err,
                      size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    kte_metrics_init(&p->metrics);
    p->next_seq = 1;
    p->last_flush_ms = kte_now_ms();
    if (kte_random_hex_id(p->env_id) != 0 ||
        getrandom(&p->rng, sizeof p->rng, 0) != (ssize_t)sizeof p->rng) {
        snprintf(err, errlen, "cannot read random bytes for the environment id");
        return -1;
    }
    p->rng |= 1; /* xorshift must not start at zero */
    if (kte_record_builder_init(&p->rb, p->env_id, cfg->function_name, cfg->function_version,
                                cfg->region) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (kte_kinesis_init(&p->kinesis, cfg) != 0) {
        kte_record_builder_free(&p->rb);
        snprintf(err, errlen, "cannot initialise the HTTP client (libcurl)");
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->changed, NULL);
    return 0;
}

static size_t rec_mem(const struct kte_rec *r)
{
    return sizeof *r + r->data_len + r->pk_len + 1;
}

/* Accounts one event that will not be delivered. Lock held. */
static void note_drop(struct kte_pipeline *p, enum kte_drop_reason why, uint64_t seq)
{
    atomic_fetch_add(&p->metrics.dropped[why], 1);
    if (why != KTE_DROP_SHUTDOWN)
        kte_drop_stats_add(&p->unreported, why, seq);
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
    p->mem -= rec_mem(r);
    free(r);
}

/* Enforces KTE_MAX_BUFFER_BYTES by dropping the oldest queued records.
 * Records in flight cannot be dropped; they are bounded by one batch. */
static void enforce_cap_oldest(struct kte_pipeline *p)
{
    size_t cap = (size_t)p->cfg->max_buffer_bytes;
    while (p->mem > cap && p->head) {
        struct kte_rec *r = p->head;
        p->head = r->next;
        if (!p->head)
            p->tail = NULL;
        p->count--;
        p->bytes -= (size_t)r->data_len + r->pk_len;
        discard(p, r, KTE_DROP_OVERFLOW);
    }
}

static void ring_add(struct kte_rid_ring *r, const char *rid)
{
    snprintf(r->rid[r->pos % KTE_RID_RING], sizeof r->rid[0], "%s", rid);
    r->pos++;
}

static bool ring_has(const struct kte_rid_ring *r, const char *rid)
{
    for (unsigned i = 0; i < KTE_RID_RING; i++)
        if (r->rid[i][0] && !strcmp(r->rid[i], rid))
            return true;
    return false;
}

/* The partition key for one event, per KTE_PARTITION_KEY. */
static const char *partition_key(struct kte_pipeline *p, const struct kte_event_view *ev, char *tmp,
                                 size_t tmp_len)
{
    switch (p->cfg->partition_key) {
    case KTE_PK_REQUEST:
        if (ev->request_id[0])
            return ev->request_id;
        return p->current_rid[0] ? p->current_rid : p->env_id;
    case KTE_PK_FUNCTION:
        return p->cfg->function_name;
    case KTE_PK_RANDOM:
        snprintf(tmp, tmp_len, "%016llx", (unsigned long long)next_random(p));
        return tmp;
    case KTE_PK_ENVIRONMENT:
    default:
        return p->env_id;
    }
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

    /* The listener is one thread, so bodies arrive one at a time: records
     * are built outside the lock with sequence numbers reserved under it. */
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        kte_event_list_free(&evs);
        snprintf(msg, msg_len, "shutting down");
        return KTE_SINK_CLOSED;
    }
    p->ingesting++;
    uint64_t seq = p->next_seq;
    p->next_seq += evs.n;
    pthread_mutex_unlock(&p->mu);

    struct kte_rec *first = NULL, *last = NULL;
    struct kte_drop_stats nomem = {0};
    for (size_t i = 0; i < evs.n; i++, seq++) {
        const struct kte_event_view *ev = &evs.v[i];
        atomic_fetch_add(&p->metrics.received, 1);
        atomic_fetch_add(&p->metrics.bytes_received, ev->raw_len);
        char tmp[32];
        const char *pk = partition_key(p, ev, tmp, sizeof tmp);
        size_t pk_len = strlen(pk);
        struct kte_rec *r = kte_record_build(&p->rb, seq, ev->raw, ev->raw_len, pk,
                                             (size_t)p->cfg->max_record_bytes - pk_len);
        if (!r) {
            kte_drop_stats_add(&nomem, KTE_DROP_NOMEM, seq);
            continue;
        }
        if (r->truncated)
            atomic_fetch_add(&p->metrics.truncated, 1);
        if (last)
            last->next = r;
        else
            first = r;
        last = r;
    }

    pthread_mutex_lock(&p->mu);
    if (nomem.by_reason[KTE_DROP_NOMEM]) {
        atomic_fetch_add(&p->metrics.dropped[KTE_DROP_NOMEM], nomem.by_reason[KTE_DROP_NOMEM]);
        kte_drop_stats_merge(&p->unreported, &nomem);
    }
    size_t cap = (size_t)p->cfg->max_buffer_bytes;
    bool overflowed = false;
    for (struct kte_rec *r = first, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (p->cfg->overflow == KTE_OVERFLOW_DROP_NEWEST && p->mem + rec_mem(r) > cap) {
            p->mem += rec_mem(r);
            discard(p, r, KTE_DROP_OVERFLOW);
            overflowed = true;
            continue;
        }
        if (p->tail)
            p->tail->next = r;
        else
            p->head = r;
        p->tail = r;
        p->count++;
        p->bytes += (size_t)r->data_len + r->pk_len;
        p->mem += rec_mem(r);
    }
    if (p->cfg->overflow == KTE_OVERFLOW_DROP_OLDEST && p->mem > cap) {
        enforce_cap_oldest(p);
        overflowed = true;
    }
    if (overflowed && !p->overflow_logged) {
        /* Once per episode; the kte.dropped record and the metrics carry the counts. */
        KTE_WARN("buffer full (KTE_MAX_BUFFER_BYTES=%ld): dropping %s events until delivery "
                 "catches up",
                 p->cfg->max_buffer_bytes,
                 p->cfg->overflow == KTE_OVERFLOW_DROP_OLDEST ? "the oldest" : "new");
        p->overflow_logged = true;
    }
    for (size_t i = 0; i < evs.n; i++) {
        const struct kte_event_view *ev = &evs.v[i];
        if (!ev->request_id[0])
            continue;
        if (!strcmp(ev->type, "platform.runtimeDone"))
            ring_add(&p->runtime_done, ev->request_id);
        else if (!strcmp(ev->type, "platform.report"))
            ring_add(&p->reports, ev->request_id);
    }
    p->ingesting--;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    kte_event_list_free(&evs);
    return 0;
}

void kte_pipeline_close(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    p->closed = true;
    while (p->ingesting)
        pthread_cond_wait(&p->changed, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void kte_pipeline_set_request(struct kte_pipeline *p, const char *rid)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->current_rid, sizeof p->current_rid, "%s", rid);
    pthread_mutex_unlock(&p->mu);
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
    struct timespec ts;
    abs_deadline(deadline_ms, &ts);
    return pthread_cond_timedwait(&p->changed, &p->mu, &ts) != ETIMEDOUT ||
           kte_now_ms() < deadline_ms;
}

bool kte_pipeline_wait_for(struct kte_pipeline *p, enum kte_wait_for what, const char *rid,
                           int64_t deadline_ms)
{
    const struct kte_rid_ring *ring =
        what == KTE_WAIT_RUNTIME_DONE ? &p->runtime_done : &p->reports;
    pthread_mutex_lock(&p->mu);
    bool seen;
    while (!(seen = ring_has(ring, rid)) && wait_until(p, deadline_ms))
        ;
    pthread_mutex_unlock(&p->mu);
    return seen;
}

/* Records a flush up to upto still has to deliver, buffered or in flight. A
 * kte.dropped record is always due: it has a later seq than the events it
 * reports on, and stands at the head of the queue. */
static size_t pending_upto(struct kte_pipeline *p, uint64_t upto)
{
    size_t n = 0;
    for (struct kte_rec *r = p->head; r && (r->is_report || r->seq <= upto); r = r->next)
        n++;
    if (p->inflight && p->inflight_min_seq <= upto)
        n += p->inflight;
    return n;
}

size_t kte_pipeline_flush(struct kte_pipeline *p, int64_t deadline_ms)
{
    pthread_mutex_lock(&p->mu);
    uint64_t upto = p->next_seq - 1;
    p->flush_active = true;
    p->flush_upto = upto;
    p->flush_deadline_ms = deadline_ms;
    /* A flush is a fresh start: retry at once rather than after the backoff
     * of a failure during the last invoke. */
    p->next_attempt_ms = 0;
    p->backoff_ms = 0;
    pthread_cond_broadcast(&p->changed);
    size_t left;
    while ((left = pending_upto(p, upto)) > 0 && wait_until(p, deadline_ms))
        ;
    p->flush_active = false;
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

size_t kte_pipeline_buffered(struct kte_pipeline *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->count + p->inflight;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Exponential backoff with full jitter (AWS's recommendation): a random wait
 * in [0, min(cap, base * 2^k)]. */
static void schedule_retry(struct kte_pipeline *p, int64_t now)
{
    p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_BASE_MS;
    if (p->backoff_ms > BACKOFF_CAP_MS)
        p->backoff_ms = BACKOFF_CAP_MS;
    p->next_attempt_ms = now + (int64_t)(next_random(p) % (uint64_t)(p->backoff_ms + 1));
}

/* Called with the lock held: decides whether the sender should send now and
 * otherwise until when it may sleep (0: until signalled). */
static bool should_send(struct kte_pipeline *p, int64_t now, int64_t *wake)
{
    *wake = 0;
    if (!p->head)
        return false;
    const struct kte_config *cfg = p->cfg;
    bool full = p->count >= KTE_BATCH_MAX_RECORDS || p->bytes >= KTE_BATCH_MAX_BYTES;
    bool flush_due = p->flush_active && (p->head->is_report || p->head->seq <= p->flush_upto) &&
                     now + MIN_ATTEMPT_MS < p->flush_deadline_ms;
    bool timer = cfg->flush_mode == KTE_FLUSH_CONTINUOUS;
    int64_t timer_at = p->last_flush_ms + cfg->flush_interval_ms;
    bool timer_due = timer && now >= timer_at;
    if (full || flush_due || timer_due) {
        if (now >= p->next_attempt_ms)
            return true;
        *wake = p->next_attempt_ms;
        return false;
    }
    if (timer)
        *wake = timer_at;
    return false;
}

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
 * lost as soon as delivery works again. Lock held. */
static void queue_drop_report(struct kte_pipeline *p, int64_t now)
{
    if (p->report_queued || !kte_drop_stats_total(&p->unreported))
        return;
    struct kte_buf ev;
    kte_buf_init(&ev);
    if (kte_drop_stats_event(&p->unreported, now, &ev) != 0) {
        kte_buf_free(&ev);
        return; /* the numbers stay unreported; the next success tries again */
    }
    uint64_t seq = p->next_seq++;
    struct kte_rec *r = kte_record_build(&p->rb, seq, ev.data, ev.len, p->env_id,
                                         (size_t)p->cfg->max_record_bytes - KTE_ENV_ID_LEN);
    kte_buf_free(&ev);
    if (!r)
        return;
    r->is_report = true;
    p->reporting = p->unreported;
    memset(&p->unreported, 0, sizeof p->unreported);
    p->report_queued = true;
    r->next = p->head;
    p->head = r;
    if (!p->tail)
        p->tail = r;
    p->count++;
    p->bytes += (size_t)r->data_len + r->pk_len;
    p->mem += rec_mem(r);
}

/* Settles a finished PutRecords call: frees what was delivered or refused
 * for good, puts the rest back at the head of the queue in order. Lock held. */
static void settle(struct kte_pipeline *p, struct kte_rec **recs, size_t n, enum kte_put_status st,
                   const struct kte_rec_result *results, const char *code, int64_t now)
{
    struct kte_rec *retry_first = NULL, *retry_last = NULL;
    size_t retry_n = 0, retry_bytes = 0, permanent = 0, delivered = 0;
    const char *perm_code = code, *retry_code = code;
    for (size_t i = 0; i < n; i++) {
        struct kte_rec *r = recs[i];
        enum kte_rec_outcome o = st == KTE_PUT_OK          ? results[i].outcome
                                 : st == KTE_PUT_PERMANENT ? KTE_REC_PERMANENT
                                                           : KTE_REC_RETRY;
        if (o == KTE_REC_OK) {
            if (r->is_report) {
                atomic_fetch_add(&p->metrics.drop_reports, 1);
                memset(&p->reporting, 0, sizeof p->reporting);
                p->report_queued = false;
            } else {
                atomic_fetch_add(&p->metrics.delivered, 1);
                atomic_fetch_add(&p->metrics.bytes_delivered, r->data_len);
            }
            delivered++;
            p->mem -= rec_mem(r);
            free(r);
        } else if (o == KTE_REC_PERMANENT) {
            if (st == KTE_PUT_OK)
                perm_code = results[i].error_code;
            permanent++;
            discard(p, r, KTE_DROP_PERMANENT);
        } else {
            if (st == KTE_PUT_OK && retry_code == code)
                retry_code = results[i].error_code;
            r->attempts++;
            atomic_fetch_add(&p->metrics.retried, 1);
            r->next = NULL;
            if (retry_last)
                retry_last->next = r;
            else
                retry_first = r;
            retry_last = r;
            retry_n++;
            retry_bytes += (size_t)r->data_len + r->pk_len;
        }
    }
    atomic_fetch_add(st == KTE_PUT_OK ? &p->metrics.batches : &p->metrics.batches_failed, 1);

    if (retry_first) {
        retry_last->next = p->head;
        p->head = retry_first;
        if (!p->tail)
            p->tail = retry_last;
        p->count += retry_n;
        p->bytes += retry_bytes;
        log_failure(p, false, retry_code, retry_n);
        /* Progress (some records stored, e.g. under per-shard throttling)
         * keeps the wait short; only calls that store nothing back off
         * further. */
        if (delivered)
            p->backoff_ms = 0;
        schedule_retry(p, now);
    } else {
        p->backoff_ms = 0;
        p->next_attempt_ms = 0;
    }
    if (permanent)
        log_failure(p, true, perm_code, permanent);
    else if (!retry_first && p->last_error[0]) {
        KTE_INFO("PutRecords succeeds again");
        p->last_error[0] = '\0';
    }
    if (delivered) {
        p->overflow_logged = false;
        queue_drop_report(p, now);
    }
    if (p->cfg->flush_mode == KTE_FLUSH_CONTINUOUS || p->flush_active)
        p->last_flush_ms = now;
}

static void *sender_main(void *arg)
{
    struct kte_pipeline *p = arg;
    struct kte_rec *recs[KTE_BATCH_MAX_RECORDS];
    struct kte_rec_result *results = calloc(KTE_BATCH_MAX_RECORDS, sizeof *results);
    if (!results) {
        KTE_ERROR("out of memory starting the sender");
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        int64_t now = kte_now_ms(), wake;
        if (!should_send(p, now, &wake)) {
            wait_until(p, wake);
            continue;
        }
        size_t bytes;
        size_t n = kte_batch_plan(p->head, &bytes);
        for (size_t i = 0; i < n; i++) {
            recs[i] = p->head;
            p->head = p->head->next;
        }
        if (!p->head)
            p->tail = NULL;
        p->count -= n;
        p->bytes -= bytes;
        p->inflight = n;
        p->inflight_reports = 0;
        p->inflight_min_seq = UINT64_MAX;
        for (size_t i = 0; i < n; i++) {
            uint64_t due = recs[i]->is_report ? 0 : recs[i]->seq; /* reports are always due */
            if (due < p->inflight_min_seq)
                p->inflight_min_seq = due;
            p->inflight_reports += recs[i]->is_report;
        }
        /* The full request timeout even near a flush deadline: the flush
         * returns at its deadline anyway, and cutting the request short would
         * abort (and resend) a slow batch at every flush, storing it each
         * time. Shutdown abandons a request still running at its deadline. */
        long timeout = p->cfg->request_timeout_ms;
        pthread_mutex_unlock(&p->mu);

        char code[KTE_ERRCODE_MAX + 200];
        enum kte_put_status st =
            kte_kinesis_put(&p->kinesis, recs, n, timeout, results, code, sizeof code);

        pthread_mutex_lock(&p->mu);
        if (p->abandoned) {
            /* stop() gave up on this batch and counted it already. */
            for (size_t i = 0; i < n; i++)
                free(recs[i]);
            break;
        }
        settle(p, recs, n, st, results, code, kte_now_ms());
        p->inflight = 0;
        pthread_cond_broadcast(&p->changed);
    }
    p->sender_done = true;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->mu);
    free(results);
    return NULL;
}

int kte_pipeline_start(struct kte_pipeline *p)
{
    if (pthread_create(&p->sender, NULL, sender_main, p) != 0)
        return -1;
    p->sender_started = true;
    return 0;
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
    while (p->head) {
        struct kte_rec *r = p->head;
        p->head = r->next;
        discard(p, r, KTE_DROP_SHUTDOWN);
    }
    p->tail = NULL;
    p->count = p->bytes = 0;
    pthread_mutex_unlock(&p->mu);
}

void kte_pipeline_free(struct kte_pipeline *p)
{
    kte_pipeline_stop(p, 0);
    /* An abandoned sender still uses the client: let it finish first. */
    pthread_mutex_lock(&p->mu);
    while (p->abandoned && !p->sender_done)
        pthread_cond_wait(&p->changed, &p->mu);
    pthread_mutex_unlock(&p->mu);
    kte_kinesis_free(&p->kinesis);
    kte_record_builder_free(&p->rb);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->mu);
}
