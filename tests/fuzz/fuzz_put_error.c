/* PutRecords error bodies (HTTP 4xx/5xx): kte_batch_error_code. Byte 0 sets
 * the size of the caller's code buffer (1 + byte % 128), which is allocated
 * exactly; the rest is the body. */
#include "kte_batch.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cap = 1 + data[0] % 128;
    char *code = malloc(cap);
    FUZZ_CHECK(code != NULL);
    if (kte_batch_error_code((const char *)data + 1, size - 1, code, cap) == 0) {
        /* A terminated code without "namespace#" or ":uri", classified as
         * one of the two outcomes. */
        FUZZ_CHECK(memchr(code, '\0', cap) != NULL);
        FUZZ_CHECK(strchr(code, '#') == NULL && strchr(code, ':') == NULL);
        enum kte_rec_outcome o = kte_batch_classify(code);
        FUZZ_CHECK(o == KTE_REC_RETRY || o == KTE_REC_PERMANENT);
    }
    free(code);
    return 0;
}
