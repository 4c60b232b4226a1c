/* Records built from Telemetry events: the body (after two bytes that set
 * the record size limit, 1 to 4096) is split by kte_event_parse, and each
 * event is wrapped by kte_record_build. A record must fit the limit, be one
 * valid JSON value (UTF-8 checked: truncation cuts at a character
 * boundary), carry the event byte for byte when it fits, and be truncated
 * only when it does not. */
#include "kte_event.h"
#include "kte_record.h"

#include "fuzz_util.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 1 + ((size_t)data[0] | (size_t)data[1] << 8) % 4096;
    struct kte_event_list l;
    kte_event_list_init(&l);
    char err[256];
    if (kte_event_parse((const char *)data + 2, size - 2, &l, err, sizeof err) != 0) {
        kte_event_list_free(&l); /* the caller frees on failure too */
        return 0;
    }
    struct kte_record_builder rb;
    FUZZ_CHECK(kte_record_builder_init(&rb, "0123456789abcdef0123456789abcdef", "fn-\xc3\xa9",
                                       "$LATEST", "us-east-1") == 0);
    for (size_t i = 0; i < l.n; i++) {
        const struct kte_event_view *v = &l.v[i];
        char num[32], trunc[96];
        size_t nlen = (size_t)snprintf(num, sizeof num, "%zu", i);
        size_t full = rb.prefix.len + nlen + strlen(",\"event\":") + v->raw_len + 1;
        size_t envelope =
            rb.prefix.len + nlen + 3 +
            (size_t)snprintf(trunc, sizeof trunc,
                             ",\"truncated\":{\"originalBytes\":%zu},\"event\":", v->raw_len);
        enum kte_build_error why = 0;
        struct kte_rec *r = kte_record_build(&rb, i, v->raw, v->raw_len, "pk", max, &why);
        if (!r) {
            /* only when nothing fits, and then said so */
            FUZZ_CHECK(why == KTE_BUILD_NOMEM ||
                       (why == KTE_BUILD_TOO_LARGE && full > max && envelope > max));
            continue;
        }
        FUZZ_CHECK(r->data_len <= max && r->seq == i);
        FUZZ_CHECK(r->pk_len == 2 && !strcmp(r->pk, "pk"));
        FUZZ_CHECK(r->truncated == (full > max));
        FUZZ_CHECK(fuzz_one_json_value(r->data, r->data_len));
        if (!r->truncated)
            FUZZ_CHECK(r->data_len == full &&
                       !memcmp(r->data + full - 1 - v->raw_len, v->raw, v->raw_len));
        free(r);
    }
    kte_record_builder_free(&rb);
    kte_event_list_free(&l);
    return 0;
}
