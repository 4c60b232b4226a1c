#include "kte_flush.h"

struct kte_invoke_plan kte_flush_plan_invoke(const struct kte_config *cfg, int64_t now,
                                             int64_t last_flush, int64_t invoke_deadline)
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
