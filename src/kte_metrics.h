/* Delivery accounting. The invariant the tests check:
 *   received == delivered + dropped (all reasons) + filtered + sampled out
 *               + still buffered
 * Counters are atomics because the listener, the sender and the lifecycle
 * threads all update them. */
#ifndef KTE_METRICS_H
#define KTE_METRICS_H

#include "kte_buf.h"
#include "kte_rules.h"

#include <stdatomic.h>
#include <stdint.h>

enum kte_drop_reason {
    KTE_DROP_SHUTDOWN = 0, /* still buffered when the shutdown deadline came */
    KTE_DROP_PERMANENT,    /* Kinesis refused it for good (validation, access, missing stream) */
    KTE_DROP_OVERFLOW,     /* the buffer limit was reached */
    KTE_DROP_TOO_LARGE,    /* could not be represented within the record limit */
    KTE_DROP_NOMEM,        /* allocation failed while buffering */
    KTE_DROP_REASONS
};

struct kte_metrics {
    atomic_uint_fast64_t received;  /* events accepted from the Telemetry API */
    atomic_uint_fast64_t delivered; /* events acknowledged by Kinesis */
    atomic_uint_fast64_t retried;   /* record re-sends after a failure */
    atomic_uint_fast64_t truncated; /* events shipped truncated */
    atomic_uint_fast64_t dropped[KTE_DROP_REASONS];
    atomic_uint_fast64_t bytes_received;    /* raw event bytes */
    atomic_uint_fast64_t bytes_delivered;   /* record data bytes */
    atomic_uint_fast64_t batches;           /* PutRecords calls answered 200 */
    atomic_uint_fast64_t batches_failed;    /* PutRecords calls that failed as a whole */
    atomic_uint_fast64_t posts;             /* accepted POSTs from the Telemetry API */
    atomic_uint_fast64_t posts_rejected;    /* wrong path or method: not the Telemetry API */
    atomic_uint_fast64_t posts_malformed;   /* bodies that are not JSON event arrays */
    atomic_uint_fast64_t posts_oversized;   /* bodies over KTE_MAX_BODY_BYTES */
    atomic_uint_fast64_t posts_after_close; /* refused with 503 once intake closed at exit */
    atomic_uint_fast64_t drop_reports;      /* kte.dropped records delivered */
    /* Listener connections (docs/security.md): */
    atomic_uint_fast64_t connections_accepted;        /* opened by the listener */
    atomic_uint_fast64_t connections_evicted;         /* closed to make room for a new one */
    atomic_uint_fast64_t connections_refused;         /* every slot held a Telemetry API request */
    atomic_uint_fast64_t connections_without_request; /* closed before one complete request */
    atomic_uint_fast64_t requests_incomplete;         /* ended unanswered: timed out, client gone */
    /* Events that waited in the extension through a freeze (docs/flush.md):
     * received but undelivered when next returned after a gap longer than
     * KTE_MAX_LATENCY_MS. */
    atomic_uint_fast64_t delivered_after_freeze;
    /* Processing rules (docs/rules.md). With them the invariant at exit is
     * received == delivered + dropped + filtered + sampled_out. */
    atomic_uint_fast64_t filtered;                 /* by type, level or regex */
    atomic_uint_fast64_t sampled_out;              /* KTE_SAMPLE_RATE */
    atomic_uint_fast64_t redactions[KTE_RX_KINDS]; /* spans replaced, per rule */
    atomic_uint_fast64_t rules_match_limit;        /* events where a regex hit its limit */
    /* KTE_PROTOCOL=cbor refused by the service: 1 once the sender switched to JSON. */
    atomic_uint_fast64_t protocol_fallbacks;
};

/* Drops not yet reported in the stream (see kte.dropped in docs/records.md). */
struct kte_drop_stats {
    uint64_t by_reason[KTE_DROP_REASONS];
    uint64_t first_seq; /* lowest and highest seq dropped; 0 when none */
    uint64_t last_seq;
};

void kte_drop_stats_add(struct kte_drop_stats *s, enum kte_drop_reason r, uint64_t seq);
void kte_drop_stats_merge(struct kte_drop_stats *into, const struct kte_drop_stats *from);
uint64_t kte_drop_stats_total(const struct kte_drop_stats *s);
/* The kte.dropped event's JSON text: {"time":..,"type":"kte.dropped","record":{..}}. */
int kte_drop_stats_event(const struct kte_drop_stats *s, int64_t now_ms, struct kte_buf *out);

void kte_metrics_init(struct kte_metrics *m);
uint64_t kte_metrics_dropped_total(const struct kte_metrics *m);
const char *kte_drop_reason_name(enum kte_drop_reason r);

/* One CloudWatch Embedded Metric Format line (no trailing newline). */
int kte_metrics_emf(const struct kte_metrics *m, const char *function_name, int64_t now_ms,
                    uint64_t peak_rss_bytes, struct kte_buf *out);

#endif
