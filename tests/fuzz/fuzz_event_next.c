/* /event/next answers: kte_lambda_parse_event on the exact bytes. */
#include "kte_lambda_api.h"

#include "fuzz_util.h"

#include <ctype.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kte_next_event ev;
    char err[256];
    err[0] = '\0';
    if (kte_lambda_parse_event((const char *)data, size, &ev, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && FUZZ_TERMINATED(err));
        return 0;
    }
    FUZZ_CHECK(ev.type == KTE_NEXT_INVOKE || ev.type == KTE_NEXT_SHUTDOWN);
    FUZZ_CHECK(FUZZ_TERMINATED(ev.request_id) && FUZZ_TERMINATED(ev.shutdown_reason));
    for (const char *c = ev.shutdown_reason; *c; c++)
        FUZZ_CHECK(!isupper((unsigned char)*c));
    return 0;
}
