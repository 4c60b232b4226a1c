/* PutRecords request bodies and responses (awsJson1.1, Kinesis_20131202; the
 * CBOR protocol's body is written by kte_cbor.h, its answers read here). */
#ifndef KTE_BATCH_H
#define KTE_BATCH_H

#include "kte_buf.h"
#include "kte_record.h"

#include <stddef.h>

#define KTE_BATCH_MAX_RECORDS 500
#define KTE_BATCH_MAX_BYTES   (5u * 1024u * 1024u) /* data + partition keys */
#define KTE_ERRCODE_MAX       64

/* How many records from the head of the list fit into one PutRecords call
 * (at most 500, at most 5 MiB of data plus partition keys). At least one
 * record is always taken when the list is non-empty: a single record is
 * never over the limit because records are capped at 1 MiB when built. */
size_t kte_batch_plan(const struct kte_rec *head, size_t *bytes_out);

/* Appends the JSON request body for recs[0..n) to out. Exactly one of
 * stream_name / stream_arn is non-empty. */
int kte_batch_body(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                   struct kte_rec *const *recs, size_t n);

/* One Kinesis record of a call: its data and key, and the events it holds
 * (the sender's batch[first .. first + count)). See kte_agg.h. */
struct kte_wire {
    const char *data;
    size_t len;
    const char *pk;
    size_t pk_len;
    size_t first, count;
};

/* The same body for records already framed (kte_agg). */
int kte_batch_body_wire(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                        const struct kte_wire *w, size_t n);

enum kte_rec_outcome { KTE_REC_OK = 0, KTE_REC_RETRY, KTE_REC_PERMANENT };

struct kte_rec_result {
    enum kte_rec_outcome outcome;
    char error_code[KTE_ERRCODE_MAX];
};

/* Parses a 200 PutRecords response for n records into results[0..n).
 * Returns the number of failed records, or -1 (message in err) when the body
 * is not a PutRecords response for n records. */
int kte_batch_parse_response(const char *body, size_t len, size_t n, struct kte_rec_result *results,
                             char *err, size_t errlen);

/* The same for an answer in Kinesis's CBOR protocol (KTE_PROTOCOL=cbor,
 * kte_cbor.h); -1 too when built without CBOR. */
int kte_batch_parse_response_cbor(const void *body, size_t len, size_t n,
                                  struct kte_rec_result *results, char *err, size_t errlen);

/* Error code of an error response (__type, without any "namespace#" prefix or
 * ":uri" suffix; falls back to "code"). Returns 0 when found. */
int kte_batch_error_code(const char *body, size_t len, char *code, size_t code_len);
/* The same for a CBOR error body. */
int kte_batch_error_code_cbor(const void *body, size_t len, char *code, size_t code_len);

/* Whether a Kinesis error code (per record or for a whole request) is worth
 * retrying: throttling and internal failures are; validation, permissions
 * and missing or disabled resources are not. */
enum kte_rec_outcome kte_batch_classify(const char *error_code);

#endif
