#include "kte_send.h"

/* Whether a flush waits for the head record and still has time for a call;
 * *deadline is the latest such flush's deadline. */
static bool flush_due(const struct kte_send_view *v, int64_t now, int64_t *deadline)
{
    bool due = false;
    for (const struct kte_flush_req *f = v->flushes; f; f = f->next)
        if ((v->head_is_report || v->head_seq <= f->upto) &&
            now + KTE_MIN_ATTEMPT_MS < f->deadline_ms) {
            if (!due || f->deadline_ms > *deadline)
                *deadline = f->deadline_ms;
            due = true;
        }
    return due;
}

struct kte_send_limits kte_send_limits(const struct kte_config *cfg, size_t max_events)
{
    /* `event` keeps its 5 MiB whatever KTE_MAX_REQUEST_BYTES says: a call of
     * 500 records is full long before that. */
    size_t bytes = cfg->record_format == KTE_FORMAT_EVENT ? KTE_BATCH_MAX_BYTES
                                                          : (size_t)cfg->max_request_bytes;
    size_t half_buffer = (size_t)cfg->max_buffer_bytes / 2;
    if (bytes > half_buffer)
        bytes = half_buffer;
    return (struct kte_send_limits){max_events, bytes};
}

bool kte_send_full(const struct kte_send_limits *l, size_t queued, size_t queued_bytes)
{
    return queued >= l->events || queued_bytes >= l->bytes;
}

bool kte_send_should(const struct kte_send_view *v, int64_t now, int64_t *wake)
{
    *wake = 0;
    if (!v->queued)
        return false;
    bool full = kte_send_full(&v->full, v->queued, v->queued_bytes);
    /* adaptive: the timer delivers what deferred invokes left (kte_flush.h) */
    bool timer = v->mode == KTE_FLUSH_CONTINUOUS || v->mode == KTE_FLUSH_ADAPTIVE;
    int64_t timer_at = v->last_flush_ms + v->interval_ms;
    int64_t deadline = 0;
    bool flushing = flush_due(v, now, &deadline);
    if (full || flushing || (timer && now >= timer_at)) {
        int64_t at = v->next_attempt_ms;
        int64_t last = deadline - KTE_LAST_CHANCE_MS;
        if (flushing && at > last && v->last_call_ms < last)
            at = last;
        if (now >= at)
            return true;
        *wake = at;
        return false;
    }
    if (timer)
        *wake = timer_at;
    return false;
}

int64_t kte_send_backoff(int64_t *backoff_ms, bool progress, uint64_t rand, int64_t now)
{
    int64_t b = progress ? 0 : *backoff_ms;
    b = b ? b * 2 : KTE_BACKOFF_BASE_MS;
    if (b > KTE_BACKOFF_CAP_MS)
        b = KTE_BACKOFF_CAP_MS;
    *backoff_ms = b;
    return now + (int64_t)(rand % (uint64_t)(b + 1));
}

enum kte_rec_outcome kte_send_outcome(enum kte_put_status st, const struct kte_rec_result *results,
                                      size_t i)
{
    switch (st) {
    case KTE_PUT_OK:
        return results[i].outcome;
    case KTE_PUT_PERMANENT:
        return KTE_REC_PERMANENT;
    default:
        return KTE_REC_RETRY;
    }
}

uint64_t kte_send_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}
