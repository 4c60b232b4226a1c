/* PutRecords answers and error bodies in Kinesis's CBOR protocol
 * (KTE_PROTOCOL=cbor): kte_batch_parse_response_cbor and
 * kte_batch_error_code_cbor over kte_cbor_walk. Byte 0: bit 6 picks the error
 * body (else a 200 answer); bits 0-5 the records sent - 1 (answers) or the
 * size of the code buffer - 1 (errors), allocated exactly. The rest is the
 * body. Beyond the sanitizers: results as in put_response; a code that is
 * terminated and cut as botocore cuts it; and whatever the walker accepts is
 * one well-formed CBOR item filling the body, as libcbor's own loader reads
 * it (checked only then: the loader allocates what a body claims), except
 * an answer that stops reading at FailedRecordCount 0 (kte_batch.c): that
 * one must report every record written. */
#include "kte_batch.h"
#include "kte_cbor.h"

#include "fuzz_results.h"

#include <cbor.h>
#include <stdbool.h>

/* The walker accepted body: libcbor's loader reads one item of exactly len bytes. */
static void check_well_formed(const uint8_t *body, size_t len)
{
    struct cbor_load_result lr;
    cbor_item_t *item = cbor_load(body, len, &lr);
    FUZZ_CHECK(item != NULL);
    FUZZ_CHECK(lr.read == len);
    cbor_decref(&item);
}

static void answer(const uint8_t *body, size_t len, size_t n)
{
    struct kte_rec_result *res = malloc(n * sizeof *res);
    FUZZ_CHECK(res != NULL);
    memset(res, 0xA5, n * sizeof *res);
    char err[200];
    err[0] = '\0';
    int failed = kte_batch_parse_response_cbor(body, len, n, res, err, sizeof err);
    fuzz_check_results(failed, res, n, err, sizeof err);
    if (failed >= 0) {
        /* Whether the walker reads the whole body, with no callbacks. */
        yajl_callbacks none = {0};
        bool whole = kte_cbor_walk(body, len, &none, NULL, NULL, err, sizeof err) == 0;
        if (whole) {
            check_well_formed(body, len);
        } else {
            /* Only an answer that stopped at FailedRecordCount 0 ahead of a
             * Records array of n entries leaves bytes unread (test_cbor.c
             * has the exact rule): it must say every record was written. */
            FUZZ_CHECK(failed == 0);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(res[i].outcome == KTE_REC_OK && res[i].error_code[0] == '\0');
        }
    }
    free(res);
}

static void error_body(const uint8_t *body, size_t len, size_t cap)
{
    char *code = malloc(cap);
    FUZZ_CHECK(code != NULL);
    if (kte_batch_error_code_cbor(body, len, code, cap) == 0) {
        FUZZ_CHECK(memchr(code, '\0', cap) != NULL);
        FUZZ_CHECK(strchr(code, '#') == NULL && strchr(code, ':') == NULL);
        enum kte_rec_outcome o = kte_batch_classify(code);
        FUZZ_CHECK(o == KTE_REC_RETRY || o == KTE_REC_PERMANENT);
        check_well_formed(body, len);
    }
    free(code);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t k = 1 + (data[0] & 63);
    if (data[0] & 64)
        error_body(data + 1, size - 1, k);
    else
        answer(data + 1, size - 1, k);
    return 0;
}
