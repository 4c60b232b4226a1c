/* KTE_PROTOCOL=cbor: PutRecords in Kinesis's CBOR protocol
 * (Content-Type application/x-amz-cbor-1.1, as the AWS SDK for Java v2 sends
 * it), with libcbor. The request is written with libcbor's item encoders;
 * answers are read with its streaming decoder and handed, item by item, to
 * the same yajl callbacks that read JSON answers (kte_batch.c), so both
 * protocols share one interpretation of a PutRecords answer and of an error.
 *
 * Answers are outside input: the reader allocates nothing, nests at most
 * KTE_CBOR_MAX_DEPTH containers, and its work is linear in the body's size
 * (every item takes at least one byte). Built only with libcbor
 * (KTE_HAVE_CBOR); without it kte_cbor_available() is false and the
 * configuration refuses KTE_PROTOCOL=cbor. */
#ifndef KTE_CBOR_H
#define KTE_CBOR_H

#include "kte_batch.h"
#include "kte_buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_parse.h>

#define KTE_CBOR_MAX_DEPTH 32
/* Indefinite-length text is gathered into a buffer this long; longer text is
 * cut (no key or error code Kinesis sends comes near it). */
#define KTE_CBOR_TEXT_MAX 256

bool kte_cbor_available(void);

/* Appends the CBOR PutRecords request for w[0..n): a map of Records (an
 * array of {Data: byte string, PartitionKey: text}) and StreamName or
 * StreamARN (exactly one of the two is non-empty). -1 on allocation failure
 * or without libcbor. */
int kte_cbor_body_wire(struct kte_buf *out, const char *stream_name, const char *stream_arn,
                       const struct kte_wire *w, size_t n);

/* Reads one CBOR data item filling body[0..len) exactly and reports it to cb
 * as yajl's parser would report the same JSON: maps and arrays, text keys,
 * text values as strings, unsigned integers as numbers (decimal text, to
 * yajl_number; as null when cb has none); every other value (negative
 * integers, byte strings, booleans, null, undefined, floats) as null; tags
 * are skipped. Map keys that are not text, truncated or trailing bytes, more
 * than KTE_CBOR_MAX_DEPTH levels, or a callback returning 0 fail it: -1 with
 * the reason in err. When array_len is not NULL, the length of every array
 * is stored there just before cb's yajl_start_array is called for it
 * (KTE_CBOR_INDEFINITE for an indefinite-length one): JSON has no such
 * count, so yajl's callbacks cannot carry it. */
#define KTE_CBOR_INDEFINITE UINT64_MAX
int kte_cbor_walk(const unsigned char *body, size_t len, const yajl_callbacks *cb, void *ctx,
                  uint64_t *array_len, char *err, size_t errlen);

#endif
