#include "kte_metrics.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const drop_names[KTE_DROP_REASONS] = {
    "DroppedShutdownDeadline", "DroppedPermanentError", "DroppedBufferOverflow",
    "DroppedTooLarge",         "DroppedOutOfMemory",
};

static const char *const redaction_names[KTE_RX_KINDS] = {
    "RedactedEmail", "RedactedCreditCard",  "RedactedAwsAccessKeyId", "RedactedAwsSecretKey",
    "RedactedJwt",   "RedactedBearerToken", "RedactedIpAddress",      "RedactedCustom",
};

struct metric {
    const char *name;
    const char *unit;
    uint64_t value;
};

void kte_metrics_init(struct kte_metrics *m)
{
    memset(m, 0, sizeof *m);
}

const char *kte_drop_reason_name(enum kte_drop_reason r)
{
    return r < KTE_DROP_REASONS ? drop_names[r] : "DroppedUnknown";
}

uint64_t kte_metrics_dropped_total(const struct kte_metrics *m)
{
    uint64_t t = 0;
    for (int i = 0; i < KTE_DROP_REASONS; i++)
        t += atomic_load(&m->dropped[i]);
    return t;
}

int kte_metrics_emf(const struct kte_metrics *m, const char *function_name, int64_t now_ms,
                    uint64_t peak_rss_bytes, struct kte_buf *out)
{
    struct metric v[48];
    size_t n = 0;
#define ADD(nm, u, val) v[n++] = (struct metric){nm, u, (uint64_t)(val)}
    ADD("EventsReceived", "Count", atomic_load(&m->received));
    ADD("EventsDelivered", "Count", atomic_load(&m->delivered));
    ADD("EventsDropped", "Count", kte_metrics_dropped_total(m));
    for (int i = 0; i < KTE_DROP_REASONS; i++)
        ADD(drop_names[i], "Count", atomic_load(&m->dropped[i]));
    ADD("RecordsRetried", "Count", atomic_load(&m->retried));
    ADD("EventsTruncated", "Count", atomic_load(&m->truncated));
    ADD("BytesReceived", "Bytes", atomic_load(&m->bytes_received));
    ADD("BytesDelivered", "Bytes", atomic_load(&m->bytes_delivered));
    ADD("Batches", "Count", atomic_load(&m->batches));
    ADD("BatchesFailed", "Count", atomic_load(&m->batches_failed));
    ADD("PostsAccepted", "Count", atomic_load(&m->posts));
    ADD("PostsRejected", "Count", atomic_load(&m->posts_rejected));
    ADD("PostsMalformed", "Count", atomic_load(&m->posts_malformed));
    ADD("PostsOversized", "Count", atomic_load(&m->posts_oversized));
    ADD("PostsAfterClose", "Count", atomic_load(&m->posts_after_close));
    ADD("DropReportsDelivered", "Count", atomic_load(&m->drop_reports));
    ADD("ConnectionsAccepted", "Count", atomic_load(&m->connections_accepted));
    ADD("ConnectionsEvicted", "Count", atomic_load(&m->connections_evicted));
    ADD("ConnectionsRefused", "Count", atomic_load(&m->connections_refused));
    ADD("ConnectionsWithoutRequest", "Count", atomic_load(&m->connections_without_request));
    ADD("RequestsIncomplete", "Count", atomic_load(&m->requests_incomplete));
    ADD("PeakRssBytes", "Bytes", peak_rss_bytes);
    ADD("EventsDeliveredAfterFreeze", "Count", atomic_load(&m->delivered_after_freeze));
    ADD("EventsFiltered", "Count", atomic_load(&m->filtered));
    ADD("EventsSampledOut", "Count", atomic_load(&m->sampled_out));
    for (int i = 0; i < KTE_RX_KINDS; i++)
        ADD(redaction_names[i], "Count", atomic_load(&m->redactions[i]));
    ADD("RulesMatchLimit", "Count", atomic_load(&m->rules_match_limit));
    ADD("ProtocolFallbacks", "Count", atomic_load(&m->protocol_fallbacks));
#undef ADD
    if (kte_buf_printf(out,
                       "{\"_aws\":{\"Timestamp\":%lld,\"CloudWatchMetrics\":[{\"Namespace\":"
                       "\"KinesisTelemetryExtension\",\"Dimensions\":[[\"FunctionName\"]],"
                       "\"Metrics\":[",
                       (long long)now_ms))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (kte_buf_printf(out, "%s{\"Name\":\"%s\",\"Unit\":\"%s\"}", i ? "," : "", v[i].name,
                           v[i].unit))
            return -1;
    if (kte_buf_puts(out, "]}]},\"FunctionName\":") ||
        kte_buf_json_string(out, function_name, strlen(function_name)))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (kte_buf_printf(out, ",\"%s\":%llu", v[i].name, (unsigned long long)v[i].value))
            return -1;
    return kte_buf_puts(out, "}");
}

void kte_drop_stats_add(struct kte_drop_stats *s, enum kte_drop_reason r, uint64_t seq)
{
    s->by_reason[r]++;
    if (!s->first_seq || seq < s->first_seq)
        s->first_seq = seq;
    if (seq > s->last_seq)
        s->last_seq = seq;
}

void kte_drop_stats_merge(struct kte_drop_stats *into, const struct kte_drop_stats *from)
{
    for (int i = 0; i < KTE_DROP_REASONS; i++)
        into->by_reason[i] += from->by_reason[i];
    if (from->first_seq && (!into->first_seq || from->first_seq < into->first_seq))
        into->first_seq = from->first_seq;
    if (from->last_seq > into->last_seq)
        into->last_seq = from->last_seq;
}

uint64_t kte_drop_stats_total(const struct kte_drop_stats *s)
{
    uint64_t t = 0;
    for (int i = 0; i < KTE_DROP_REASONS; i++)
        t += s->by_reason[i];
    return t;
}

int kte_drop_stats_event(const struct kte_drop_stats *s, int64_t now_ms, struct kte_buf *out)
{
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    if (kte_buf_printf(out,
                       "{\"time\":\"%s.%03dZ\",\"type\":\"kte.dropped\",\"record\":{"
                       "\"droppedEvents\":%llu,\"firstSeq\":%llu,\"lastSeq\":%llu,\"reasons\":{",
                       ts, (int)(now_ms % 1000), (unsigned long long)kte_drop_stats_total(s),
                       (unsigned long long)s->first_seq, (unsigned long long)s->last_seq))
        return -1;
    int first = 1;
    for (int i = 0; i < KTE_DROP_REASONS; i++) {
        if (!s->by_reason[i])
            continue;
        if (kte_buf_printf(out, "%s\"%s\":%llu", first ? "" : ",", drop_names[i],
                           (unsigned long long)s->by_reason[i]))
            return -1;
        first = 0;
    }
    return kte_buf_puts(out, "}}}");
}
