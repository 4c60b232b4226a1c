/* Growable byte buffer. The buffer owns its storage; kte_buf_free releases it.
 * Every append either succeeds completely or leaves the buffer unchanged and
 * returns -1 (allocation failure), so callers can stop at the first error. */
#ifndef KTE_BUF_H
#define KTE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct kte_buf {
    char *data; /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
};

void kte_buf_init(struct kte_buf *b);
void kte_buf_free(struct kte_buf *b);
void kte_buf_reset(struct kte_buf *b); /* len = 0, keeps the storage */
int kte_buf_reserve(struct kte_buf *b, size_t extra);
int kte_buf_append(struct kte_buf *b, const void *p, size_t n);
int kte_buf_puts(struct kte_buf *b, const char *s);
int kte_buf_printf(struct kte_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. s must be UTF-8. */
int kte_buf_json_string(struct kte_buf *b, const char *s, size_t n);
/* Hands the storage to the caller (who frees it) and re-initialises b. */
char *kte_buf_steal(struct kte_buf *b, size_t *len);

/* Writes v in decimal into out (KTE_U64_DECIMAL_MAX bytes at least, no NUL)
 * and returns the length. For hot paths, where snprintf's "%llu" costs a
 * tenth of the time it takes to take in an event. */
#define KTE_U64_DECIMAL_MAX 20
size_t kte_u64_decimal(uint64_t v, char *out);

#endif
