/* One Kinesis record per Telemetry event: a small JSON envelope naming the
 * function and execution environment around the event's exact bytes. */
#ifndef KTE_RECORD_H
#define KTE_RECORD_H

#include "kte_buf.h"

#include <stdbool.h>
#include <stdint.h>

#define KTE_ENV_ID_LEN 32 /* lowercase hex characters */

/* A record waiting for delivery. One allocation holds the struct, the data
 * and the partition key; its owner frees it with free(). */
struct kte_rec {
    struct kte_rec *next;
    uint64_t seq;
    uint32_t attempts;
    uint32_t data_len;
    uint32_t pk_len;
    bool truncated;
    bool is_report; /* a kte.dropped record we made, not a received event */
    char *pk;       /* points into the same allocation, NUL-terminated */
    char data[];    /* data_len bytes, then the partition key */
};

struct kte_record_builder {
    struct kte_buf prefix; /* {"kte":1,...,"seq": — everything before the number */
    /* The envelope's seq is the pipeline's sequence number minus this: a
     * restored environment numbers its events from 1 again. */
    uint64_t seq_base;
};

int kte_record_builder_init(struct kte_record_builder *rb, const char *env_id,
                            const char *function_name, const char *function_version,
                            const char *region);
/* The envelope of an environment restored from a SnapStart snapshot:
 * "restoredFrom" names the environment that was snapshotted; seq_base as
 * above. */
int kte_record_builder_init_restored(struct kte_record_builder *rb, const char *env_id,
                                     const char *restored_from, const char *function_name,
                                     const char *function_version, const char *region,
                                     uint64_t seq_base);
void kte_record_builder_free(struct kte_record_builder *rb);

/* Why kte_record_build made no record. */
enum kte_build_error {
    KTE_BUILD_NOMEM = 1, /* out of memory: counted as DroppedOutOfMemory */
    KTE_BUILD_TOO_LARGE, /* max_data_bytes cannot hold even the envelope: DroppedTooLarge */
};

/* Builds the record data for one event. When envelope + event exceed
 * max_data_bytes the event is carried as a JSON string holding its first
 * bytes, cut at a UTF-8 boundary, and "truncated":{"originalBytes":N} is
 * added; *truncated says which. Returns a new kte_rec (caller owns), or NULL
 * with the reason in *why (when why is not NULL). */
struct kte_rec *kte_record_build(const struct kte_record_builder *rb, uint64_t seq, const char *raw,
                                 size_t raw_len, const char *pk, size_t max_data_bytes,
                                 enum kte_build_error *why);

/* kte_record_build with flags: KTE_BUILD_REDELIVERED adds
 * "redelivered":true (an init event of the snapshot that Lambda delivers
 * again in a restored environment). */
#define KTE_BUILD_REDELIVERED 1u
struct kte_rec *kte_record_build_flags(const struct kte_record_builder *rb, uint64_t seq,
                                       const char *raw, size_t raw_len, const char *pk,
                                       size_t max_data_bytes, unsigned flags,
                                       enum kte_build_error *why);

/* Fills out with 32 random lowercase hex characters and a NUL. */
int kte_random_hex_id(char out[KTE_ENV_ID_LEN + 1]);

#endif
