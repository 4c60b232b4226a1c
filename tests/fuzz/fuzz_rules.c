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
 *              exclude) regex, MESSAGE a text-format function log line;
 *   mode odd with bit 4: NAME '\0' PATTERN '\0' MESSAGE; PATTERN is a named
 *              custom redaction, KTE_REDACT_REGEX=[{"name":NAME,"pattern":PATTERN}]
 *              (no exclude regex, so a match reaches the redaction).
 * Bit 2 adds every built-in redaction.
 * Checks: no crash, every redacted event is valid JSON, no match call runs
 * away (-timeout catches a stalled engine); a named rule loads only with a
 * valid name (1-32 of [A-Za-z0-9_.-], not reserved) and, alone, marks its
 * matches with [REDACTED:NAME]. */
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

static bool contains(const struct kte_buf *b, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= b->len; i++)
        if (!memcmp(b->data + i, s, n))
            return true;
    return false;
}

/* Set by run(): whether the rules loaded; what a custom-only redaction must
 * contain (NULL: no check). */
static bool loaded;
static const char *want_marker;

static void run(struct env *e, const char *body, size_t len)
{
    struct kte_rules *r = NULL;
    char msg[512];
    loaded = false;
    if (kte_rules_load(&r, get, e, msg, sizeof msg) != 0 || !r)
        return; /* an invalid pattern is an init error: fine */
    loaded = true;
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
            if (oc.redacted && want_marker && oc.redactions[KTE_RX_CUSTOM] && !oc.match_limit &&
                !contains(&out, want_marker))
                abort(); /* a named rule's match without its marker */
        }
    }
    kte_buf_free(&out);
    kte_event_list_free(&l);
    kte_rules_scratch_free(s);
    kte_rules_free(r);
}

/* s[0, n) as a JSON string body: what JSON requires escaped, bytes as-is. */
static void json_escape(struct kte_buf *b, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            kte_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            kte_buf_printf(b, "\\u%04x", c);
        else
            kte_buf_append(b, &c, 1);
    }
}

/* What kte_rules_load accepts as a custom rule's name (docs/rules.md). */
static bool name_ok(const char *n)
{
    static const char *const reserved[] = {"email",          "credit-card", "aws-access-key-id",
                                           "aws-secret-key", "jwt",         "bearer-token",
                                           "ip-address",     "all",         "custom",
                                           "match-limit"};
    size_t len = strlen(n);
    if (len == 0 || len > 32 ||
        strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
        return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(n, reserved[i]))
            return false;
    return true;
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
    const uint8_t *name = NULL;
    size_t name_len = 0;
    if (mode & 4) { /* NAME '\0' PATTERN '\0' MESSAGE */
        name = data;
        name_len = (size_t)(nul - data);
        size -= name_len + 1;
        data = nul + 1;
        if (!(nul = memchr(data, 0, size)))
            return 0;
    }
    char *pattern = strndup((const char *)data, (size_t)(nul - data));
    const uint8_t *m = nul + 1;
    size_t mn = size - (size_t)(m - data);
    /* The message as a JSON string (kte_event_parse refuses invalid UTF-8,
     * which is fine). */
    struct kte_buf ev;
    kte_buf_init(&ev);
    kte_buf_puts(&ev, "{\"time\":\"t\",\"type\":\"function\",\"record\":\"");
    json_escape(&ev, m, mn);
    kte_buf_puts(&ev, "\"}");
    struct env e = {{"KTE_REDACT_REGEX", "KTE_EXCLUDE_REGEX", "KTE_REDACT"},
                    {pattern, pattern, (mode & 2) ? "all" : NULL}};
    struct kte_buf named, marker;
    kte_buf_init(&named);
    kte_buf_init(&marker);
    char *name_z = name ? strndup((const char *)name, name_len) : NULL;
    if (name) {
        kte_buf_puts(&named, "[{\"name\":\"");
        json_escape(&named, name, name_len);
        kte_buf_puts(&named, "\",\"pattern\":\"");
        if (pattern)
            json_escape(&named, (const uint8_t *)pattern, strlen(pattern));
        kte_buf_puts(&named, "\"}]");
        kte_buf_printf(&marker, "[REDACTED:%.*s]", (int)name_len, (const char *)name);
        e.values[0] = named.data;
        e.names[1] = "KTE_REDACT"; /* no exclude regex */
        e.values[1] = e.values[2];
    }
    if (!(mode & 2))
        e.names[name ? 1 : 2] = NULL;
    /* Checked only where nothing else can name a merged span. */
    want_marker = name && !(mode & 2) ? marker.data : NULL;
    if (pattern && ev.data && (!name || (named.data && marker.data && name_z))) {
        run(&e, ev.data, ev.len);
        if (loaded && name && !name_ok(name_z))
            abort(); /* an invalid name was accepted */
    }
    want_marker = NULL;
    free(name_z);
    kte_buf_free(&named);
    kte_buf_free(&marker);
    kte_buf_free(&ev);
    free(pattern);
    return 0;
}
