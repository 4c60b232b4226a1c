/* KTE_COMPRESSION: each Kinesis record's data compressed on its own (gzip
 * with zlib, zstd with libzstd), for the `event` and `ndjson` formats.
 * Readers tell the formats by their magic bytes (1F 8B, 28 B5 2F FD). One
 * compressor per thread (the sender's), its state reused between records. */
#ifndef KTE_COMPRESS_H
#define KTE_COMPRESS_H

#include "kte_buf.h"
#include "kte_config.h"

#include <stddef.h>

struct kte_compressor {
    enum kte_compression kind;
    void *state; /* z_stream or ZSTD_CCtx, made on first use */
};

void kte_compressor_init(struct kte_compressor *c, enum kte_compression kind);
void kte_compressor_free(struct kte_compressor *c);

/* Appends the compressed form of in[0..len) (one gzip member or one zstd
 * frame) to out. Returns 0, or -1 (out of memory, library failure). */
int kte_compress(struct kte_compressor *c, struct kte_buf *out, const void *in, size_t len);

/* The most bytes kte_compress can write for len bytes of input. */
size_t kte_compress_bound(enum kte_compression kind, size_t len);

#endif
