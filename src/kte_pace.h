/* Pacing under throttling: how fast this environment offers records to a
 * stream that answers ProvisionedThroughputExceededException.
 *
 * Kinesis caps each shard at 1,000 records/s and 1 MiB/s and refuses what
 * goes over, per record. An environment is one writer among many (every
 * environment of every function writing to the stream) and cannot see the
 * others, so it learns its share from the answers, as TCP and the AWS SDKs'
 * adaptive retry mode do: a rate that drops by KTE_PACE_BETA at most once a
 * second while throttled and grows while calls go through. Without it every
 * throttled record came back after a few milliseconds (a call that stores
 * some records is progress, so the backoff stayed short): 20 environments on
 * two shards offered several times what the shards take, in calls that
 * mostly failed, and a backlog was left that SHUTDOWN could not drain
 * (docs/bench/fleet.md).
 *
 * The rate is in shard-seconds per second, the unit both limits share: a
 * record costs max(1/1000, (data + key bytes) / 1 MiB) of one shard's
 * second, so 500 small records cost 0.5 and one 50 KiB aggregate 0.049. It
 * fills a token bucket holding at most one second of it; a call waits for a
 * quarter of that (or one record) and carries no more records than the
 * tokens pay for, so a slow writer sends small calls often rather than big
 * ones rarely, which a per-second limit refuses whole.
 *
 * Pure functions of a state owned by the sender thread (times: monotonic
 * ms), tested without threads or clocks. */
#ifndef KTE_PACE_H
#define KTE_PACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KTE_PACE_BETA 0.8 /* rate kept after a throttled second */
/* Growth per second of unthrottled sending: a quarter of the rate, and at
 * least KTE_PACE_STEP (additive, so that writers cut to the floor catch up
 * with the others: AIMD's fairness). */
#define KTE_PACE_GROWTH 0.25
#define KTE_PACE_STEP   0.05
/* Never slower than 50 records/s or 50 KiB/s: 20 environments at the floor
 * still take only half of two shards. */
#define KTE_PACE_MIN     0.05
#define KTE_PACE_OFF     1000.0 /* grown past a thousand shards' worth: stop pacing */
#define KTE_PACE_CUT_MS  1000   /* Kinesis's limits are per second: one cut per second */
#define KTE_PACE_CALL_MS 250    /* a call waits for this much of the rate */

struct kte_pace {
    double rate;   /* shard-seconds per second; 0: not pacing (no throttling seen) */
    double tokens; /* at tokens_ms; negative when a call cost more than it was given */
    int64_t tokens_ms;
    double record_cost; /* a Kinesis record's cost in the latest call */
    int64_t cut_ms;     /* the last decrease */
    int64_t seen_ms;    /* the last answer (0: none) */
    /* what Kinesis stored in the current and the previous second */
    double win_cost, prev_win_cost;
    int64_t win_start;
};

/* The cost of one Kinesis record of `bytes` (data + partition key). */
double kte_pace_cost(size_t bytes);

/* An answered call: `records` Kinesis records costing `sent`, of which
 * `stored` was stored, and `throttled` records refused for throughput. */
void kte_pace_answer(struct kte_pace *p, double sent, double stored, size_t records,
                     size_t throttled, int64_t now);

/* The earliest moment the next call may start (now or earlier: at once). */
int64_t kte_pace_next_ms(const struct kte_pace *p, int64_t now);

/* How many Kinesis records a call starting at now may carry (at least 1;
 * SIZE_MAX when not pacing). */
size_t kte_pace_max_records(const struct kte_pace *p, int64_t now);

#endif
