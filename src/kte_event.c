#include "kte_event.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

enum key { KEY_OTHER = 0, KEY_TYPE, KEY_RECORD, KEY_REQUEST_ID, KEY_TENANT_ID };

struct state {
    yajl_handle h;
    const char *body;
    struct kte_event_list *out;
    int depth;       /* open containers around the current token */
    bool top_array;  /* the body is an array of events */
    int event_depth; /* depth at which an event's value starts */
    size_t event_start;
    size_t prev_end; /* offset just after the previous token */
    enum key key2;   /* last key seen directly inside the event object */
    enum key key3;   /* last key seen directly inside event.record */
    bool in_record;
    struct kte_event_view cur;
    size_t top_end; /* offset just after the body's top-level value */
    bool oom;
    bool too_many;
};

static size_t now(struct state *s)
{
    return yajl_get_bytes_consumed(s->h);
}

/* Start of the token that ended at now(): skip separators after prev_end. */
static size_t token_start(struct state *s)
{
    size_t i = s->prev_end;
    while (s->body[i] == ' ' || s->body[i] == '\t' || s->body[i] == '\n' || s->body[i] == '\r' ||
           s->body[i] == ',' || s->body[i] == ':' || s->body[i] == '[')
        i++;
    return i;
}

static int push(struct state *s, size_t start, size_t end)
{
    struct kte_event_list *l = s->out;
    if (l->n == KTE_EVENT_MAX_PER_BODY) {
        s->too_many = true;
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        if (cap > KTE_EVENT_MAX_PER_BODY)
            cap = KTE_EVENT_MAX_PER_BODY;
        struct kte_event_view *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            s->oom = true;
            return 0;
        }
        l->v = v;
        l->cap = cap;
    }
    s->cur.raw = s->body + start;
    s->cur.raw_len = end - start;
    l->v[l->n++] = s->cur;
    return 1;
}

static void begin_event(struct state *s, size_t start)
{
    memset(&s->cur, 0, sizeof s->cur);
    s->event_start = start;
    s->key2 = s->key3 = KEY_OTHER;
    s->in_record = false;
}

static bool at_event_level(struct state *s)
{
    return s->depth == s->event_depth;
}

/* A scalar directly at event level is an event of its own (unusual, but it
 * passes through rather than being dropped). */
static int scalar(struct state *s)
{
    size_t end = now(s);
    int rc = 1;
    if (at_event_level(s)) {
        size_t start = token_start(s);
        begin_event(s, start);
        rc = push(s, start, end);
    }
    s->prev_end = end;
    return rc;
}

static void copy_field(char *dst, size_t cap, const unsigned char *v, size_t n)
{
    if (n < cap) {
        memcpy(dst, v, n);
        dst[n] = '\0';
    }
}

/* record.tenantId as it stands in the body (no copy: views point into the
 * body already): only when written without escapes, as Lambda's tenant ids
 * are, and at most KTE_EVENT_TENANT_MAX bytes (a partition key's limit). */
static void note_tenant(struct state *s, size_t decoded_len)
{
    size_t end = now(s), start = token_start(s);
    size_t len = end - start;
    if (len < 3 || len - 2 != decoded_len || decoded_len > KTE_EVENT_TENANT_MAX ||
        s->body[start] != '"' || s->body[end - 1] != '"' ||
        memchr(s->body + start + 1, '\\', len - 2))
        return;
    s->cur.tenant = s->body + start + 1;
    s->cur.tenant_len = (unsigned short)decoded_len;
}

static int on_string(void *ctx, const unsigned char *v, size_t n)
{
    struct state *s = ctx;
    if (s->depth == s->event_depth + 1 && s->key2 == KEY_TYPE)
        copy_field(s->cur.type, sizeof s->cur.type, v, n);
    else if (s->in_record && s->depth == s->event_depth + 2 && s->key3 == KEY_REQUEST_ID)
        copy_field(s->cur.request_id, sizeof s->cur.request_id, v, n);
    else if (s->in_record && s->depth == s->event_depth + 2 && s->key3 == KEY_TENANT_ID)
        note_tenant(s, n);
    return scalar(s);
}

static int on_null(void *ctx)
{
    return scalar(ctx);
}

static int on_bool(void *ctx, int b)
{
    (void)b;
    return scalar(ctx);
}

static int on_number(void *ctx, const char *v, size_t n)
{
    (void)v;
    (void)n;
    return scalar(ctx);
}

static int on_key(void *ctx, const unsigned char *k, size_t n)
{
    struct state *s = ctx;
    if (s->depth == s->event_depth + 1) {
        s->key2 = (n == 4 && !memcmp(k, "type", 4))     ? KEY_TYPE
                  : (n == 6 && !memcmp(k, "record", 6)) ? KEY_RECORD
                                                        : KEY_OTHER;
    } else if (s->in_record && s->depth == s->event_depth + 2) {
        s->key3 = (n == 9 && !memcmp(k, "requestId", 9))  ? KEY_REQUEST_ID
                  : (n == 8 && !memcmp(k, "tenantId", 8)) ? KEY_TENANT_ID
                                                          : KEY_OTHER;
    }
    s->prev_end = now(s);
    return 1;
}

static int open_container(struct state *s)
{
    size_t end = now(s);
    if (at_event_level(s))
        begin_event(s, end - 1); /* the '{' or '[' just consumed */
    else if (s->depth == s->event_depth + 1 && s->key2 == KEY_RECORD)
        s->in_record = true;
    s->depth++;
    s->prev_end = end;
    return 1;
}

static int close_container(struct state *s)
{
    size_t end = now(s);
    s->depth--;
    int rc = 1;
    if (at_event_level(s))
        rc = push(s, s->event_start, end);
    else if (s->depth == s->event_depth + 1)
        s->in_record = false;
    if (s->depth == 0)
        s->top_end = end;
    s->prev_end = end;
    return rc;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx);
}

static int on_end_map(void *ctx)
{
    return close_container(ctx);
}

static int on_start_array(void *ctx)
{
    struct state *s = ctx;
    if (s->depth == 0 && s->event_depth == -1) {
        /* The body itself is the array of events. */
        s->top_array = true;
        s->event_depth = 1;
        s->depth = 1;
        s->prev_end = now(s);
        return 1;
    }
    return open_container(s);
}

static int on_end_array(void *ctx)
{
    struct state *s = ctx;
    if (s->top_array && s->depth == 1) {
        s->depth = 0;
        s->prev_end = s->top_end = now(s);
        return 1;
    }
    return close_container(s);
}

static const yajl_callbacks callbacks = {
    on_null,      on_bool, NULL,       NULL,           on_number,    on_string,
    on_start_map, on_key,  on_end_map, on_start_array, on_end_array,
};

void kte_event_list_init(struct kte_event_list *l)
{
    l->v = NULL;
    l->n = l->cap = 0;
}

void kte_event_list_free(struct kte_event_list *l)
{
    free(l->v);
    kte_event_list_init(l);
}

int kte_event_parse(const char *body, size_t len, struct kte_event_list *out, char *err,
                    size_t errlen)
{
    out->n = 0;
    struct state s = {0};
    s.body = body;
    s.out = out;
    s.event_depth = -1;

    /* A body that starts with '{' is a single event at depth 0. */
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
        i++;
    if (i == len) {
        snprintf(err, errlen, "empty body; expected a JSON array of events");
        return -1;
    }
    /* yajl takes form feed and vertical tab as white space; JSON does not,
     * and no valid JSON text holds them raw (not even inside strings). */
    if (memchr(body, '\f', len) || memchr(body, '\v', len)) {
        snprintf(err, errlen, "malformed JSON: form feed or vertical tab outside a string");
        return -1;
    }
    if (body[i] == '{')
        s.event_depth = 0;
    else if (body[i] != '[') {
        snprintf(err, errlen, "body is not a JSON array of events");
        return -1;
    }

    s.h = yajl_alloc(&callbacks, NULL, &s);
    if (!s.h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    yajl_status st = yajl_parse(s.h, (const unsigned char *)body, len);
    size_t at = yajl_get_bytes_consumed(s.h);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(s.h);
    int rc = 0;
    if (s.oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else if (s.too_many) {
        snprintf(err, errlen,
                 "more than %d events in one body (the Telemetry API sends at most %d per POST)",
                 KTE_EVENT_MAX_PER_BODY, KTE_EVENT_MAX_PER_BODY);
        rc = -1;
    } else if (st != yajl_status_ok) {
        unsigned char *msg = yajl_get_error(s.h, 0, (const unsigned char *)body, len);
        snprintf(err, errlen, "malformed JSON near byte %zu: %s", at,
                 msg ? (const char *)msg : "parse error");
        if (msg)
            yajl_free_error(s.h, msg);
        size_t n = strlen(err); /* yajl ends its message with a newline */
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        rc = -1;
    } else {
        /* yajl accepts an unfinished token after a complete value (`[]"`,
         * `[]tru`): only white space may follow the body's value. */
        for (size_t k = s.top_end; k < len && rc == 0; k++) {
            if (body[k] != ' ' && body[k] != '\t' && body[k] != '\n' && body[k] != '\r') {
                snprintf(err, errlen, "malformed JSON near byte %zu: data after the events", k);
                rc = -1;
            }
        }
    }
    yajl_free(s.h);
    if (rc != 0)
        out->n = 0;
    return rc;
}
