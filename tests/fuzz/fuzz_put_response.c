/* PutRecords answers (HTTP 200 bodies): kte_batch_parse_response. Byte 0
 * says how many records were sent (1 + byte % 64); the rest is the body.
 * The results array is exactly that long, so ASan sees any write past it,
 * and starts out as garbage, so an entry the parser forgot to fill shows. */
#include "kte_batch.h"

#include "fuzz_results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = 1 + data[0] % 64;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct kte_rec_result *res = malloc(n * sizeof *res);
    FUZZ_CHECK(res != NULL);
    memset(res, 0xA5, n * sizeof *res);
    char err[200];
    err[0] = '\0';
    int failed = kte_batch_parse_response(body, len, n, res, err, sizeof err);
    fuzz_check_results(failed, res, n, err, sizeof err);
    free(res);
    return 0;
}
