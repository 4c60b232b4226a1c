/* The sender's decisions, as pure functions of a snapshot (like kte_flush):
 * whether to call PutRecords now, how long to back off, what to do with each
 * record of an answered call. The pipeline takes the snapshot under its lock
 * and acts on the answer; the tests call these without threads or clocks.
 * Times are monotonic milliseconds (kte_clock). */
#ifndef KTE_SEND_H
#define KTE_SEND_H

#include "kte_batch.h"
#include "kte_config.h"
#include "kte_kinesis.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KTE_BACKOFF_BASE_MS 25
#define KTE_BACKOFF_CAP_MS  2000
#define KTE_MIN_ATTEMPT_MS  20  /* less time than this left in a flush: do not start a request */
#define KTE_LAST_CHANCE_MS  300 /* a flush's last attempt starts this long before its deadline */

/* One caller of kte_pipeline_flush: it waits for every record up to seq
 * upto, until its deadline. Flushes compose: each waiter keeps its own
 * request on a list until it returns, so one flush ending never ends
 * another's. */
struct kte_flush_req {
    uint64_t upto;
    int64_t deadline_ms;
    struct kte_flush_req *next;
};

/* What should_send looks at. */
struct kte_send_view {
    size_t queued;       /* records waiting */
    size_t queued_bytes; /* their data + partition keys */
    bool head_is_report; /* the oldest one is a kte.dropped record */
    uint64_t head_seq;
    const struct kte_flush_req *flushes; /* waiting flushes, any order */
    enum kte_flush_mode mode;
    long interval_ms;        /* the continuous mode's timer */
    int64_t last_flush_ms;   /* last flush or (continuous) last call */
    int64_t next_attempt_ms; /* backoff: no call before this */
    int64_t last_call_ms;    /* when the last call started (0: none yet) */
    struct kte_send_limits {
        size_t events; /* events one call can take (500 for `event`, more when grouped) */
        size_t bytes;  /* queued bytes that make a call worth sending at once */
    } full;
};

/* What makes the queue "full", i.e. worth a call without waiting for a
 * flush or a timer: as many events as one call takes, or as many bytes as
 * one request carries (data + keys before grouping or compression), but
 * never more than half the buffer, so that a small KTE_MAX_BUFFER_BYTES
 * sends before it overflows. With `kpl` and `ndjson`, 500 events are only
 * a few Kinesis records: waking the sender at 500 events made calls far
 * smaller than a request can be. */
struct kte_send_limits kte_send_limits(const struct kte_config *cfg, size_t max_events);

/* Whether queued events fill a call (see kte_send_limits). */
bool kte_send_full(const struct kte_send_limits *l, size_t queued, size_t queued_bytes);

/* Whether to call PutRecords at now; otherwise *wake is when to look again
 * (0: only when something changes). A waiting flush whose deadline falls
 * inside the backoff still gets one last attempt, KTE_LAST_CHANCE_MS before
 * that deadline (unless a call already started since then): after a long
 * outage the backoff reaches 2 s, and a SIGTERM or SHUTDOWN flush (1.5 s)
 * must not drop what Kinesis would take by now. */
bool kte_send_should(const struct kte_send_view *v, int64_t now, int64_t *wake);

/* The backoff after a call that left records to retry: exponential with full
 * jitter (AWS's recommendation). *backoff_ms is the current cap (0 after a
 * success, or after a call that stored some records: progress keeps the
 * wait short); it grows to base * 2^k up to KTE_BACKOFF_CAP_MS. Returns when
 * the next attempt may start, a uniformly drawn moment in [now, now + cap]
 * from rand. */
int64_t kte_send_backoff(int64_t *backoff_ms, bool progress, uint64_t rand, int64_t now);

/* What becomes of record i of a call answered with st. */
enum kte_rec_outcome kte_send_outcome(enum kte_put_status st, const struct kte_rec_result *results,
                                      size_t i);

/* xorshift64: cheap randomness for partition keys and jitter, one state per
 * thread that uses it (never shared). */
uint64_t kte_send_random(uint64_t *state);

#endif
