/* Telemetry POST bodies: kte_event_parse on the exact bytes, then checks
 * that the events it returns are the body cut at its top-level commas. Each
 * view must be one whole JSON value, views must follow each other with only
 * white space and one comma between them, and nothing may come after the
 * last: so no byte of the body is lost, duplicated or shifted, and a
 * malformed body yields no event at all. */
#include "kte_event.h"

#include "fuzz_util.h"

#include <stdbool.h>

static bool json_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *b, size_t i, size_t len)
{
    while (i < len && json_ws(b[i]))
        i++;
    return i;
}

static void check_event(const char *body, size_t len, const struct kte_event_view *v)
{
    FUZZ_CHECK(v->raw >= body && v->raw_len > 0 && v->raw_len <= len &&
               (size_t)(v->raw - body) <= len - v->raw_len);
    FUZZ_CHECK(FUZZ_TERMINATED(v->type) && FUZZ_TERMINATED(v->request_id));
    FUZZ_CHECK(fuzz_one_json_value(v->raw, v->raw_len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    struct kte_event_list l;
    kte_event_list_init(&l);
    char err[256];
    err[0] = '\0';
    int rc = kte_event_parse(body, size, &l, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == -1 && l.n == 0 && err[0] != '\0' && FUZZ_TERMINATED(err));
        kte_event_list_free(&l);
        return 0;
    }
    FUZZ_CHECK(l.n <= l.cap);
    size_t i = skip_ws(body, 0, size);
    FUZZ_CHECK(i < size);
    if (body[i] == '{') {
        FUZZ_CHECK(l.n == 1 && l.v[0].raw == body + i);
        check_event(body, size, &l.v[0]);
        i += l.v[0].raw_len;
    } else {
        FUZZ_CHECK(body[i] == '[');
        i++;
        for (size_t k = 0; k < l.n; k++) {
            i = skip_ws(body, i, size);
            if (k > 0) {
                FUZZ_CHECK(i < size && body[i] == ',');
                i = skip_ws(body, i + 1, size);
            }
            FUZZ_CHECK(l.v[k].raw == body + i);
            check_event(body, size, &l.v[k]);
            i += l.v[k].raw_len;
        }
        i = skip_ws(body, i, size);
        FUZZ_CHECK(i < size && body[i] == ']');
        i++;
    }
    FUZZ_CHECK(skip_ws(body, i, size) == size);
    kte_event_list_free(&l);
    return 0;
}
