/* The invariants of a parsed PutRecords answer, whichever the protocol
 * (fuzz_put_response: JSON, fuzz_put_cbor: CBOR): one reading of per-record
 * results, so one check. */
#ifndef KTE_FUZZ_RESULTS_H
#define KTE_FUZZ_RESULTS_H

#include "fuzz_util.h"
#include "kte_batch.h"

/* failed is what the parser returned for n results: -1 with an error
 * message, or the number of results that failed, each result one of the
 * outcomes with a terminated code (empty when stored). */
static inline void fuzz_check_results(int failed, const struct kte_rec_result *res, size_t n,
                                      const char *err, size_t err_cap)
{
    if (failed < 0) {
        FUZZ_CHECK(failed == -1 && err[0] != '\0' && memchr(err, '\0', err_cap) != NULL);
        return;
    }
    size_t not_ok = 0;
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(res[i].outcome == KTE_REC_OK || res[i].outcome == KTE_REC_RETRY ||
                   res[i].outcome == KTE_REC_PERMANENT);
        FUZZ_CHECK(FUZZ_TERMINATED(res[i].error_code));
        if (res[i].outcome == KTE_REC_OK)
            FUZZ_CHECK(res[i].error_code[0] == '\0');
        else
            not_ok++;
    }
    FUZZ_CHECK((size_t)failed == not_ok);
}

#endif
