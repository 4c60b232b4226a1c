/* Record formats (KTE_RECORD_FORMAT): how the events of one PutRecords call
 * become Kinesis records. `event` sends each envelope as its own record;
 * `kpl` packs the envelopes of one partition key into KPL aggregated records
 * (magic F3 89 9A C2, protobuf AggregatedRecord, MD5 trailer: the format the
 * KCL, Firehose and aws-kinesis-agg deaggregate); `ndjson` joins them with
 * newlines. Pure functions, no threads: the sender thread owns a framer.
 *
 * Queued records stay one per event (kte_rec): memory, flushes and
 * exact-count accounting remain per event. Only the sender groups them, and
 * a record that fails is retried with all its events (they are put back in
 * order and grouped again). */
#ifndef KTE_AGG_H
#define KTE_AGG_H

#include "kte_batch.h"
#include "kte_buf.h"
#include "kte_compress.h"
#include "kte_config.h"
#include "kte_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of an aggregate (data + partition key) at which the next event starts
 * a new one: one PUT payload unit (25 KB, counted on data + key). KPL's
 * 50 KiB would bill three units for a full aggregate and buy nothing here:
 * the per-shard byte limit (1 MiB/s), not the record limit, binds as soon
 * as records exceed 1 KiB. See docs/records.md. */
#define KTE_AGG_TARGET_BYTES 25000u

/* Events one PutRecords call carries at most in the grouped formats (the
 * sender's arrays are sized for it). */
#define KTE_BATCH_MAX_EVENTS 16384u

/* One KPL user record, for the general encoder. */
struct kte_agg_item {
    const char *pk;
    size_t pk_len;
    const char *data;
    size_t data_len;
};

/* Appends one KPL aggregated record holding items[0..n) (partition keys
 * deduplicated into the key table in order of first use, no explicit hash
 * keys) to out. Returns 0, or -1 out of memory. */
int kte_agg_kpl_encode(struct kte_buf *out, const struct kte_agg_item *items, size_t n);

/* Bytes the record format (and compression, at worst) adds around one
 * envelope in a record of its own with a key of pk_len bytes: what the
 * envelope must leave free under KTE_MAX_RECORD_BYTES so that a lone event
 * still fits. */
size_t kte_agg_overhead(const struct kte_config *cfg, size_t pk_len);

struct kte_framer {
    enum kte_record_format fmt;
    bool random_pk;      /* one random key per record instead of the events' keys */
    size_t target_bytes; /* KTE_AGG_TARGET_BYTES, at most max_record_bytes */
    /* Compressed ndjson: records are grouped by their uncompressed size,
     * group_bytes, which follows the compression ratio seen so far so that
     * compressed records come out near target_bytes (at most raw_cap, whose
     * worst-case compressed size still fits in a record). */
    struct kte_compressor comp;
    size_t group_bytes;
    size_t raw_cap;
    struct kte_buf scratch;
    size_t max_request;   /* data + keys per call (KTE_MAX_REQUEST_BYTES) */
    size_t max_events;    /* KTE_BATCH_MAX_EVENTS, or 500 for `event` */
    struct kte_buf arena; /* the grouped records' bytes */
    struct kte_wire wires[KTE_BATCH_MAX_RECORDS];
    size_t nwires;
};

void kte_framer_init(struct kte_framer *f, const struct kte_config *cfg);
void kte_framer_free(struct kte_framer *f);

/* How many events from head (a queue's list) the next call takes: whole
 * records only, at most 500 records and max_request bytes, at most
 * max_events events. At least one when the list is not empty. */
size_t kte_framer_plan(const struct kte_framer *f, const struct kte_rec *head);

/* The same with at most max_records Kinesis records (1..500): what the
 * pacing (kte_pace) lets the call carry. */
size_t kte_framer_plan_max(const struct kte_framer *f, const struct kte_rec *head,
                           size_t max_records);

/* Groups recs[0..n) (as planned) into f->wires[0..f->nwires). rng gives the
 * random keys. Returns 0, or -1 out of memory. */
int kte_framer_build(struct kte_framer *f, struct kte_rec *const *recs, size_t n, uint64_t *rng);

#endif
