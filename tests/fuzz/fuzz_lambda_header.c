/* Register answers: the extension identifier is the only thing read from
 * them, by kte_http_on_header, which libcurl calls once per header line.
 * The input is the answer's header block; each line (up to and including
 * '\n') is handed over in an exact-size copy, as curl would, then the
 * identifier is taken as kte_lambda_register takes it. */
#include "kte_http.h"

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kte_http h;
    memset(&h, 0, sizeof h);
    h.want_header = "Lambda-Extension-Identifier";
    size_t start = 0;
    while (start < size) {
        const uint8_t *nl = memchr(data + start, '\n', size - start);
        size_t n = nl ? (size_t)(nl - (data + start)) + 1 : size - start;
        char *line = malloc(n);
        FUZZ_CHECK(line != NULL);
        memcpy(line, data + start, n);
        FUZZ_CHECK(kte_http_on_header(line, 1, n, &h) == n);
        free(line);
        start += n;
    }
    FUZZ_CHECK(FUZZ_TERMINATED(h.header_value));
    size_t len = strlen(h.header_value);
    /* Sent back in a header of every later call: one line, no line end. */
    FUZZ_CHECK(strchr(h.header_value, '\r') == NULL && strchr(h.header_value, '\n') == NULL);
    if (len) {
        /* Trimmed: no white space at either end. */
        FUZZ_CHECK(h.header_value[0] != ' ' && h.header_value[0] != '\t');
        FUZZ_CHECK(h.header_value[len - 1] != ' ' && h.header_value[len - 1] != '\t');
        char ext_id[256];
        snprintf(ext_id, sizeof ext_id, "%s", h.header_value);
        FUZZ_CHECK(strcmp(ext_id, h.header_value) == 0);
    }
    return 0;
}
