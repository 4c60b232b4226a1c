#include "kte_pace.h"

#define SHARD_RECORDS_PER_S 1000.0
#define SHARD_BYTES_PER_S   1048576.0

double kte_pace_cost(size_t bytes)
{
    double by_bytes = (double)bytes / SHARD_BYTES_PER_S;
    double by_count = 1.0 / SHARD_RECORDS_PER_S;
    return by_bytes > by_count ? by_bytes : by_count;
}

/* A record's cost as last seen (a small one before any call). */
static double record_cost(const struct kte_pace *p)
{
    return p->record_cost > 0 ? p->record_cost : 1.0 / SHARD_RECORDS_PER_S;
}

/* The bucket holds a second of the rate, or one record if that is more. */
static double bucket(const struct kte_pace *p)
{
    double c = record_cost(p);
    return p->rate > c ? p->rate : c;
}

static double tokens_at(const struct kte_pace *p, int64_t now)
{
    double t = p->tokens + p->rate * (double)(now - p->tokens_ms) / 1000.0;
    double cap = bucket(p);
    return t < cap ? t : cap;
}

/* What a call waits for: a quarter second of the rate, at least a record,
 * never more than the bucket holds. */
static double call_tokens(const struct kte_pace *p)
{
    double need = p->rate * KTE_PACE_CALL_MS / 1000.0, c = record_cost(p), cap = bucket(p);
    if (need < c)
        need = c;
    return need < cap ? need : cap;
}

/* What Kinesis stored per second lately: the larger of the previous second
 * and the current one so far (a second that only began says little). */
static double stored_rate(const struct kte_pace *p)
{
    return p->win_cost > p->prev_win_cost ? p->win_cost : p->prev_win_cost;
}

void kte_pace_answer(struct kte_pace *p, double sent, double stored, size_t records,
                     size_t throttled, int64_t now)
{
    if (now - p->win_start >= 1000) {
        /* a gap of more than a second: the previous second stored nothing */
        p->prev_win_cost = now - p->win_start < 2000 ? p->win_cost : 0;
        p->win_cost = 0;
        p->win_start = now;
    }
    p->win_cost += stored;
    if (records)
        p->record_cost = sent / (double)records;
    int64_t since = p->seen_ms ? now - p->seen_ms : 0;
    p->seen_ms = now;

    if (throttled) {
        if (p->rate <= 0) {
            /* First throttling: start from what the stream took lately,
             * with a full bucket. */
            p->rate = KTE_PACE_BETA * stored_rate(p);
            if (p->rate < KTE_PACE_MIN)
                p->rate = KTE_PACE_MIN;
            p->tokens = bucket(p);
            p->tokens_ms = now;
            p->cut_ms = now;
            return;
        }
        if (now - p->cut_ms >= KTE_PACE_CUT_MS) {
            p->rate *= KTE_PACE_BETA;
            p->cut_ms = now;
        }
        if (p->rate < KTE_PACE_MIN)
            p->rate = KTE_PACE_MIN;
    } else if (p->rate > 0) {
        /* Growth per second of sending, not of idling: at most a second
         * counts, so a stream that throttled before is not hit at full
         * speed after a pause. */
        if (since > 1000)
            since = 1000;
        double g = p->rate * KTE_PACE_GROWTH;
        if (g < KTE_PACE_STEP)
            g = KTE_PACE_STEP;
        p->rate += g * (double)since / 1000.0;
        if (p->rate > KTE_PACE_OFF) {
            *p = (struct kte_pace){0};
            return;
        }
    }
    if (p->rate > 0) {
        /* Every record sent counts, refused or not: the rate bounds what
         * this environment offers, retries included. */
        p->tokens = tokens_at(p, now) - sent;
        p->tokens_ms = now;
    }
}

int64_t kte_pace_next_ms(const struct kte_pace *p, int64_t now)
{
    if (p->rate <= 0)
        return now;
    double missing = call_tokens(p) - tokens_at(p, now);
    if (missing <= 0)
        return now;
    return now + (int64_t)(missing * 1000.0 / p->rate + 0.999);
}

size_t kte_pace_max_records(const struct kte_pace *p, int64_t now)
{
    if (p->rate <= 0)
        return SIZE_MAX;
    double n = tokens_at(p, now) / record_cost(p);
    return n >= 1 ? (n < 1e9 ? (size_t)n : SIZE_MAX) : 1;
}
