#include "kte_compress.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

/* Speed first: the extension runs in the customer's billed time. zlib's
 * level 1 and zstd's level 3 (its default) both shrink envelopes several
 * times at a fraction of a microsecond per event (docs/bench). */
#define GZIP_LEVEL 1
#define ZSTD_LEVEL 3

void kte_compressor_init(struct kte_compressor *c, enum kte_compression kind)
{
    c->kind = kind;
    c->state = NULL;
}

void kte_compressor_free(struct kte_compressor *c)
{
    if (!c->state)
        return;
    if (c->kind == KTE_COMPRESSION_GZIP) {
        deflateEnd(c->state);
        free(c->state);
    } else if (c->kind == KTE_COMPRESSION_ZSTD) {
        ZSTD_freeCCtx(c->state);
    }
    c->state = NULL;
}

size_t kte_compress_bound(enum kte_compression kind, size_t len)
{
    switch (kind) {
    case KTE_COMPRESSION_GZIP:
        /* deflateBound for the zlib wrapper, plus the gzip header and trailer
         * (18 bytes) it does not count. */
        return (size_t)compressBound((uLong)len) + 18;
    case KTE_COMPRESSION_ZSTD:
        return ZSTD_compressBound(len);
    default:
        return len;
    }
}

static int gzip(struct kte_compressor *c, struct kte_buf *out, const void *in, size_t len)
{
    z_stream *zs = c->state;
    if (!zs) {
        zs = calloc(1, sizeof *zs);
        /* 15 + 16: a gzip wrapper (RFC 1952), readable by gzip(1) and every
         * gzip library, rather than zlib's own. */
        if (!zs ||
            deflateInit2(zs, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(zs);
            return -1;
        }
        c->state = zs;
    } else if (deflateReset(zs) != Z_OK) {
        return -1;
    }
    size_t cap = kte_compress_bound(c->kind, len);
    if (len > UINT_MAX || cap > UINT_MAX || kte_buf_reserve(out, cap))
        return -1;
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    zs->next_out = (Bytef *)out->data + out->len;
    zs->avail_out = (uInt)cap;
    if (deflate(zs, Z_FINISH) != Z_STREAM_END)
        return -1;
    out->len += cap - zs->avail_out;
    return 0;
}

static int zstd(struct kte_compressor *c, struct kte_buf *out, const void *in, size_t len)
{
    if (!c->state) {
        c->state = ZSTD_createCCtx();
        if (!c->state ||
            ZSTD_isError(ZSTD_CCtx_setParameter(c->state, ZSTD_c_compressionLevel, ZSTD_LEVEL)) ||
            /* The content size in the header lets readers allocate once. */
            ZSTD_isError(ZSTD_CCtx_setParameter(c->state, ZSTD_c_contentSizeFlag, 1)))
            return -1;
    }
    size_t cap = kte_compress_bound(c->kind, len);
    if (kte_buf_reserve(out, cap))
        return -1;
    size_t n = ZSTD_compress2(c->state, out->data + out->len, cap, in, len);
    if (ZSTD_isError(n))
        return -1;
    out->len += n;
    return 0;
}

int kte_compress(struct kte_compressor *c, struct kte_buf *out, const void *in, size_t len)
{
    switch (c->kind) {
    case KTE_COMPRESSION_GZIP:
        return gzip(c, out, in, len);
    case KTE_COMPRESSION_ZSTD:
        return zstd(c, out, in, len);
    default:
        return kte_buf_append(out, in, len);
    }
}
