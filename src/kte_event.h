/* Splits a Telemetry API POST body (a JSON array of events) into events
 * without re-encoding them: each view points at the event's exact bytes in the
 * body, so what we ship is byte-for-byte what Lambda sent. */
#ifndef KTE_EVENT_H
#define KTE_EVENT_H

#include <stddef.h>

#define KTE_EVENT_TYPE_MAX   64
#define KTE_EVENT_RID_MAX    64
#define KTE_EVENT_TENANT_MAX 256 /* bytes: a partition key is at most 256 characters */
/* Lambda hands over at most 10,000 events per POST (the subscription's
 * maxItems is at most 10,000). A body with more is not from the Telemetry
 * API; refusing it keeps the memory a body costs (views and records) bounded
 * whatever its elements are, even [0,0,...]. */
#define KTE_EVENT_MAX_PER_BODY 10000

struct kte_event_view {
    const char *raw; /* points into the parsed body; not NUL-terminated */
    size_t raw_len;
    /* Copied out for routing only ("" when absent or longer than the field);
     * an unknown or missing type never stops an event from passing through. */
    char type[KTE_EVENT_TYPE_MAX];
    char request_id[KTE_EVENT_RID_MAX]; /* record.requestId, if any */
    /* record.tenantId, if any (tenant isolation), pointing into the body,
     * not NUL-terminated; tenant_len 0 when absent, escaped or longer than
     * KTE_EVENT_TENANT_MAX */
    const char *tenant;
    unsigned short tenant_len;
};

struct kte_event_list {
    struct kte_event_view *v;
    size_t n;
    size_t cap;
};

void kte_event_list_init(struct kte_event_list *l);
void kte_event_list_free(struct kte_event_list *l);

/* Parses body; on success fills out (reset first) and returns 0. A body that
 * is not valid JSON, neither an array nor a single object, or an array of
 * more than KTE_EVENT_MAX_PER_BODY elements, returns -1 with a message in err
 * and leaves out empty: all or nothing, so a malformed body never yields a
 * partial batch. Every element counts as an event, objects or not: a scalar
 * is passed through rather than lost. */
int kte_event_parse(const char *body, size_t len, struct kte_event_list *out, char *err,
                    size_t errlen);

#endif
