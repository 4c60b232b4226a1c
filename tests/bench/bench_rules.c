/* CPU per event of the processing rules (issue 15), for `bash scripts/bench.sh
 * rules`: kte_rules_apply on 100-byte text-format function events (Node.js
 * layout), with no rules (the cost of parsing the body, which every event
 * pays anyway), with the built-in redaction set (KTE_REDACT=all), with 10
 * custom regexes, and with filters. Half the events carry
 * something to redact. Process CPU time, best of 5 runs. */
#include "kte_event.h"
#include "kte_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVENTS 10000

struct env {
    const char *n[8], *v[8];
};

static const char *get(const char *name, void *ctx)
{
    struct env *e = ctx;
    for (int i = 0; i < 8 && e->n[i]; i++)
        if (!strcmp(e->n[i], name))
            return e->v[i];
    return NULL;
}

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static char *make_body(size_t *len, size_t *event_bytes)
{
    static const char *const msgs[] = {
        "order 81723 shipped to warehouse 7, 3 items, total 129.90 EUR",
        "user alice@example.com logged in from 192.168.10.20 ok!",
        "cache miss for key product:2291, fetching from dynamodb...",
        "charging card 4111 1111 1111 1111 for the order, attempt 1",
    };
    size_t cap = (size_t)EVENTS * 200 + 16, n = 0, total = 0;
    char *b = malloc(cap);
    b[n++] = '[';
    for (int i = 0; i < EVENTS; i++) {
        int k =
            snprintf(b + n, cap - n,
                     "%s{\"time\":\"2026-11-29T10:00:00.000Z\",\"type\":\"function\",\"record\":"
                     "\"%s\"}",
                     i ? "," : "", msgs[i % 4]);
        total += (size_t)k - (i ? 1 : 0);
        n += (size_t)k;
    }
    b[n++] = ']';
    b[n] = '\0';
    *len = n;
    *event_bytes = total / EVENTS;
    return b;
}

static void run(const char *label, struct env *e, const char *body, size_t len, double base)
{
    struct kte_rules *r = NULL;
    char msg[512];
    if (kte_rules_load(&r, get, e, msg, sizeof msg) != 0) {
        fprintf(stderr, "%s: %s\n", label, msg);
        exit(1);
    }
    struct kte_rules_scratch *s = r ? kte_rules_scratch_new(r) : NULL;
    struct kte_event_list l;
    kte_event_list_init(&l);
    struct kte_buf out;
    kte_buf_init(&out);
    double best = 1e30;
    size_t redacted = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = cpu_ns();
        kte_event_parse(body, len, &l, msg, sizeof msg);
        redacted = 0;
        for (size_t i = 0; r && i < l.n; i++) {
            struct kte_rules_outcome oc;
            kte_rules_apply(r, s, &l.v[i], "8476a536-e9f4-11e8-9739-2dfe598c3fcd", &out, &oc);
            redacted += oc.redacted;
        }
        double t = (cpu_ns() - t0) / EVENTS;
        if (t < best)
            best = t;
    }
    printf("  %-40s %7.0f ns/event   (+%5.0f ns over parsing; %zu of %d events redacted)\n", label,
           best, best - base, redacted, EVENTS);
    kte_buf_free(&out);
    kte_event_list_free(&l);
    kte_rules_scratch_free(s);
    kte_rules_free(r);
}

int main(void)
{
    size_t len, ev_bytes;
    char *body = make_body(&len, &ev_bytes);
    printf("rules: %d text-format function events of %zu bytes on average\n", EVENTS, ev_bytes);
    struct env none = {{NULL}, {NULL}};
    /* The baseline: parsing alone (what every event costs with no rules). */
    struct kte_event_list l;
    kte_event_list_init(&l);
    char msg[256];
    double best = 1e30;
    for (int rep = 0; rep < 20; rep++) {
        double t0 = cpu_ns();
        kte_event_parse(body, len, &l, msg, sizeof msg);
        double t = (cpu_ns() - t0) / EVENTS;
        if (t < best)
            best = t;
    }
    kte_event_list_free(&l);
    run("no rules (parsing only)", &none, body, len, best);
    struct env builtin = {{"KTE_REDACT"}, {"all"}};
    run("built-in redaction set (KTE_REDACT=all)", &builtin, body, len, best);
    struct env custom = {{"KTE_REDACT_REGEX"},
                         {"[\"order [0-9]+\",\"warehouse [0-9]+\",\"key [a-z]+:[0-9]+\","
                          "\"total [0-9.]+ EUR\",\"attempt [0-9]+\",\"(?i)password=\\\\S+\","
                          "\"ssn:? ?[0-9]{3}-[0-9]{2}-[0-9]{4}\",\"token=[A-Za-z0-9]{20,}\","
                          "\"session [0-9a-f]{32}\",\"x-api-key: ?\\\\S+\"]"}};
    run("10 custom regexes (KTE_REDACT_REGEX)", &custom, body, len, best);
    struct env mix = {{"KTE_REDACT", "KTE_MIN_LEVEL", "KTE_EXCLUDE_REGEX", "KTE_EXCLUDE_TYPES"},
                      {"all", "INFO", "healthcheck", "platform.start"}};
    run("all + level + exclude regex + type", &mix, body, len, best);
    free(body);
    return 0;
}
