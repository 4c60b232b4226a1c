#include "kte_flush.h"

void kte_flush_history_invoke(struct kte_flush_history *h, int64_t now)
{
    if (h->last_invoke && now >= h->last_invoke) {
        h->gaps[h->ngaps % KTE_ADAPT_HISTORY] = now - h->last_invoke;
        h->ngaps++;
    }
    h->last_invoke = now;
    h->invokes++;
}

int64_t kte_flush_predicted_gap(const struct kte_flush_history *h)
{
    if (!h || h->ngaps < KTE_ADAPT_WARMUP)
        return -1;
    uint64_t n = h->ngaps < KTE_ADAPT_HISTORY ? h->ngaps : KTE_ADAPT_HISTORY;
    int64_t max = 0;
    for (uint64_t i = 0; i < n; i++)
        if (h->gaps[i] > max)
            max = h->gaps[i];
    return max;
}

bool kte_flush_adaptive_defer(const struct kte_config *cfg, const struct kte_flush_history *h,
                              size_t buffered)
{
    int64_t gap = kte_flush_predicted_gap(h);
    return gap >= 0 && gap + cfg->flush_interval_ms + KTE_ADAPT_MARGIN <= cfg->max_latency_ms &&
           buffered < KTE_ADAPT_MAX_BACKLOG;
}

/* Datadog's published default (datadog-agent pkg/serverless/flush, README of
 * datadog-lambda-extension): at the end of each of the first 20 invokes;
 * then, if invokes came more often than every 120 s on average, every 20 s
 * at the start of an invoke (without waiting for anything); else at the end. */
static bool datadog_periodic(const struct kte_flush_history *h)
{
    if (!h || h->invokes <= KTE_DATADOG_WARMUP || !h->ngaps)
        return false;
    uint64_t n = h->ngaps < KTE_ADAPT_HISTORY ? h->ngaps : KTE_ADAPT_HISTORY;
    int64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += h->gaps[i];
    return sum / (int64_t)n < KTE_DATADOG_FREQUENT_MS;
}

bool kte_flush_was_frozen(const struct kte_config *cfg, int64_t called, int64_t returned)
{
    return returned - called > cfg->max_latency_ms;
}

void kte_intake_log_add(struct kte_intake_log *l, int64_t t, uint64_t events)
{
    uint64_t before = l->n ? l->e[(l->n - 1) % KTE_INTAKE_LOG].after : 0;
    unsigned i = (unsigned)(l->n % KTE_INTAKE_LOG);
    l->e[i].t = t;
    l->e[i].before = before;
    l->e[i].after = before + events;
    l->n++;
}

uint64_t kte_intake_log_before(const struct kte_intake_log *l, int64_t t)
{
    uint64_t kept = l->n < KTE_INTAKE_LOG ? l->n : KTE_INTAKE_LOG;
    uint64_t oldest = 0;
    for (uint64_t k = 1; k <= kept; k++) { /* newest first */
        unsigned i = (unsigned)((l->n - k) % KTE_INTAKE_LOG);
        if (l->e[i].t < t)
            return l->e[i].after;
        oldest = l->e[i].before;
    }
    return oldest;
}

uint64_t kte_flush_held_over_freeze(uint64_t received, uint64_t settled, uint64_t *counted)
{
    uint64_t from = settled > *counted ? settled : *counted;
    if (received > *counted)
        *counted = received;
    return received > from ? received - from : 0;
}

struct kte_invoke_plan kte_flush_plan_invoke(const struct kte_config *cfg, int64_t now,
                                             int64_t last_flush, int64_t invoke_deadline)
{
    return kte_flush_plan_invoke_h(cfg, now, last_flush, invoke_deadline, NULL, 0);
}

struct kte_invoke_plan kte_flush_plan_invoke_h(const struct kte_config *cfg, int64_t now,
                                               int64_t last_flush, int64_t invoke_deadline,
                                               const struct kte_flush_history *h, size_t buffered)
{
    struct kte_invoke_plan p = {0};
    if (invoke_deadline <= now)
        p.deadline = now + cfg->flush_timeout_ms; /* absent or unusable: our own bound */
    else if (invoke_deadline > now + KTE_INVOKE_MARGIN_MS)
        p.deadline = invoke_deadline - KTE_INVOKE_MARGIN_MS;
    else
        p.deadline = now; /* inside the margin: no time left to spend */
    switch (cfg->flush_mode) {
    case KTE_FLUSH_END:
        p.flush = true;
        break;
    case KTE_FLUSH_PERIODIC:
        p.flush = now - last_flush >= cfg->flush_interval_ms;
        break;
    case KTE_FLUSH_CONTINUOUS:
        p.flush = false; /* the sender's timer does it during the invoke */
        break;
    case KTE_FLUSH_ADAPTIVE:
        /* Deferred: next at once, the timer delivers within the bound. */
        p.flush = !kte_flush_adaptive_defer(cfg, h, buffered);
        break;
    case KTE_FLUSH_DATADOG:
        if (datadog_periodic(h)) {
            p.flush = now - last_flush >= cfg->flush_interval_ms;
            p.wait_until = now;
            return p; /* at the start of the invoke: waits for nothing */
        }
        p.flush = true;
        break;
    }
    /* Without platform events there is no runtimeDone to wait for. */
    p.wait_runtime_done = p.flush && (cfg->types & KTE_TYPE_PLATFORM);
    p.wait_until = p.deadline;
    if (cfg->flush_wait_ms && now + cfg->flush_wait_ms < p.wait_until)
        p.wait_until = now + cfg->flush_wait_ms;
    return p;
}

int64_t kte_flush_invoke_flush_deadline(const struct kte_config *cfg, int64_t now,
                                        const struct kte_invoke_plan *plan)
{
    int64_t d = now + cfg->flush_timeout_ms;
    return d < plan->deadline ? d : plan->deadline;
}

struct kte_shutdown_plan kte_flush_plan_shutdown(const struct kte_config *cfg, int64_t now,
                                                 int64_t shutdown_deadline, bool have_last_request)
{
    struct kte_shutdown_plan p = {0};
    int64_t end = shutdown_deadline > now ? shutdown_deadline : now + KTE_SHUTDOWN_DEFAULT_MS;
    p.deadline = end - KTE_SHUTDOWN_MARGIN_MS;
    int64_t latest_wait = p.deadline - KTE_SHUTDOWN_FLUSH_MS;
    if (latest_wait < now)
        latest_wait = now;
    /* The last invoke's platform.report is only sent during shutdown. */
    p.wait_report = have_last_request && (cfg->types & KTE_TYPE_PLATFORM);
    if (p.wait_report) {
        p.wait_until = latest_wait;
    } else {
        /* Nothing to wait for: give the Telemetry API one buffering period
         * to hand over what it still holds. */
        int64_t grace = now + cfg->buffer_timeout_ms + 50;
        p.wait_until = grace < latest_wait ? grace : latest_wait;
    }
    return p;
}
