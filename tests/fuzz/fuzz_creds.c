/* Container credentials answers (kte_creds_parse) and the time format inside
 * them (kte_creds_parse_time), on the exact bytes: the endpoint is outside
 * input like any other. The error message names fields, never values, so a
 * secret in a malformed answer cannot reach a log line. */
#include "kte_creds.h"

#include "fuzz_util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kte_creds c;
    memset(&c, 0x5a, sizeof c);
    char err[256];
    err[0] = '\0';
    if (kte_creds_parse((const char *)data, size, &c, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != '\0' && FUZZ_TERMINATED(err));
    } else {
        FUZZ_CHECK(FUZZ_TERMINATED(c.access_key_id) && FUZZ_TERMINATED(c.secret_access_key) &&
                   FUZZ_TERMINATED(c.session_token));
        FUZZ_CHECK(c.access_key_id[0] && c.secret_access_key[0]);
        FUZZ_CHECK(c.expiration_ms >= 0);
    }
    /* The time parser on the input as one C string. */
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t ms = 0;
    (void)kte_creds_parse_time(s, &ms);
    free(s);
    return 0;
}
