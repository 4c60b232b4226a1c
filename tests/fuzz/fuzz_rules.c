/* libFuzzer harness for the rule engine (src/kte_rules.c) on hostile
 * messages and patterns. Build and run (ASan + UBSan), from the repository:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_DEFAULT_SOURCE -Isrc \
 *     tests/fuzz/fuzz_rules.c src/kte_rules.c src/kte_event.c src/kte_buf.c \
 *     $(pkg-config --cflags --libs libpcre2-8 yajl) -o build/fuzz_rules
 *   nice build/fuzz_rules -max_total_time=60 -timeout=2
 *
 * Input: one mode byte, then
 *   mode even: a Telemetry API body; every event goes through a fixed rule set
 *              (every built-in redaction, a level filter, sampling);
 *   mode odd:  PATTERN '\0' MESSAGE; PATTERN is a custom redaction (and
 *              exclude) regex, MESSAGE a text-format function log line.
 * Checks: no crash, every redacted event is valid JSON, no match call runs
 * away (-timeout catches a stalled engine). */
#include "kte_event.h"
#include "kte_rules.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

struct env {
    const char *names[8];
    const char *values[8];
};

static const char *get(const char *name, void *ctx)
{
    struct env *e = ctx;
    for (int i = 0; i < 8 && e->names[i]; i++)
        if (!strcmp(e->names[i], name))
            return e->values[i];
    return NULL;
}

static void check_json(const struct kte_buf *b)
{
    char *copy = malloc(b->len + 1);
    if (!copy)
        return;
    memcpy(copy, b->data, b->len);
    copy[b->len] = '\0';
    char err[128];
    yajl_val v = yajl_tree_parse(copy, err, sizeof err);
    free(copy);
    if (!v)
        abort(); /* redaction produced invalid JSON */
    yajl_tree_free(v);
}

static void run(struct env *e, const char *body, size_t len)
{
    struct kte_rules *r = NULL;
    char msg[512];
    if (kte_rules_load(&r, get, e, msg, sizeof msg) != 0 || !r)
        return; /* an invalid pattern is an init error: fine */
    struct kte_rules_scratch *s = kte_rules_scratch_new(r);
    struct kte_event_list l;
    kte_event_list_init(&l);
    struct kte_buf out;
    kte_buf_init(&out);
    if (s && kte_event_parse(body, len, &l, msg, sizeof msg) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            struct kte_rules_outcome oc;
            kte_rules_apply(r, s, &l.v[i], "rid-fallback", &out, &oc);
            if (oc.redacted)
                check_json(&out);
        }
    }
    kte_buf_free(&out);
    kte_event_list_free(&l);
    kte_rules_scratch_free(s);
    kte_rules_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (!(mode & 1)) {
        struct env e = {{"KTE_REDACT", "KTE_MIN_LEVEL", "KTE_SAMPLE_RATE"}, {"all", "INFO", "0.5"}};
        run(&e, (const char *)data, size);
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return 0;
    char *pattern = strndup((const char *)data, (size_t)(nul - data));
    const uint8_t *m = nul + 1;
    size_t mn = size - (size_t)(m - data);
    /* The message as a JSON string: escape what JSON requires, bytes as-is
     * (kte_event_parse refuses invalid UTF-8, which is fine). */
    struct kte_buf ev;
    kte_buf_init(&ev);
    kte_buf_puts(&ev, "{\"time\":\"t\",\"type\":\"function\",\"record\":\"");
    for (size_t i = 0; i < mn; i++) {
        unsigned char c = m[i];
        if (c == '"' || c == '\\')
            kte_buf_printf(&ev, "\\%c", c);
        else if (c < 0x20)
            kte_buf_printf(&ev, "\\u%04x", c);
        else
            kte_buf_append(&ev, &c, 1);
    }
    kte_buf_puts(&ev, "\"}");
    struct env e = {{"KTE_REDACT_REGEX", "KTE_EXCLUDE_REGEX", "KTE_REDACT"},
                    {pattern, pattern, (mode & 2) ? "all" : NULL}};
    if (!(mode & 2))
        e.names[2] = NULL;
    if (pattern && ev.data)
        run(&e, ev.data, ev.len);
    kte_buf_free(&ev);
    free(pattern);
    return 0;
}
