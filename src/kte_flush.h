/* When to flush and for how long: pure functions of the configuration and
 * the clock, so the policy is tested without a Lambda around it. All times
 * are monotonic milliseconds (kte_clock); main converts Lambda's epoch
 * deadlines before calling these. */
#ifndef KTE_FLUSH_H
#define KTE_FLUSH_H

#include "kte_config.h"

#include <stdbool.h>
#include <stdint.h>

/* Kept back before a deadline Lambda gives: the flush must be over and next
 * called (or the process gone) before Lambda acts on the deadline. */
#define KTE_INVOKE_MARGIN_MS    50
#define KTE_SHUTDOWN_MARGIN_MS  150
#define KTE_SHUTDOWN_FLUSH_MS   300  /* at least this much of the shutdown is for flushing */
#define KTE_SHUTDOWN_DEFAULT_MS 1700 /* when SHUTDOWN carries no usable deadline */

struct kte_invoke_plan {
    bool flush;             /* flush before calling next */
    bool wait_runtime_done; /* wait for this invoke's platform.runtimeDone first */
    int64_t wait_until;     /* end of that wait */
    int64_t deadline;       /* nothing may run past this */
};

/* At the end of an invoke (after INVOKE arrived, before next). */
struct kte_invoke_plan kte_flush_plan_invoke(const struct kte_config *cfg, int64_t now,
                                             int64_t last_flush, int64_t invoke_deadline);

/* What the adaptive (and the bench-only Datadog) mode has observed of this
 * environment: wall-clock times (kte_epoch_ms), because what matters is how
 * long the environment idles, frozen or not. Owned by the lifecycle thread;
 * the functions below only read or update it, without clocks or threads. */
#define KTE_ADAPT_HISTORY 8  /* inter-arrival gaps kept */
#define KTE_ADAPT_MARGIN  50 /* ms: Telemetry API buffering and a PutRecords on top */
/* Gaps needed before deferring a flush: one. A wrong guess costs one
 * invoke's events waiting through an idle (counted), while each invoke
 * flushed at its end costs ~25 ms billed or more (docs/flush.md). */
#define KTE_ADAPT_WARMUP        1
#define KTE_DATADOG_WARMUP      20
#define KTE_DATADOG_FREQUENT_MS 120000

struct kte_flush_history {
    int64_t gaps[KTE_ADAPT_HISTORY]; /* ring of the latest gaps between INVOKEs */
    uint64_t ngaps;                  /* gaps ever recorded */
    uint64_t invokes;                /* INVOKEs seen */
    int64_t last_invoke;             /* wall ms of the latest INVOKE, 0: none */
};

/* Records an INVOKE that arrived at now (wall ms). */
void kte_flush_history_invoke(struct kte_flush_history *h, int64_t now);

/* The idle to expect after this invoke: the longest of the recent gaps
 * between INVOKEs (a gap includes the handler, so this over-estimates the
 * idle, which errs on the side of flushing). -1 before KTE_ADAPT_WARMUP gaps. */
int64_t kte_flush_predicted_gap(const struct kte_flush_history *h);

/* Adaptive: whether this invoke may call next at once and leave what is
 * buffered to the sender's timer. Yes when the next INVOKE is predicted
 * soon enough that an event buffered now is delivered within
 * KTE_MAX_LATENCY_MS even if the environment freezes meanwhile: predicted
 * gap + the timer's period + KTE_ADAPT_MARGIN <= max_latency_ms; and when
 * the sender keeps up: fewer than KTE_ADAPT_MAX_BACKLOG records buffered
 * (else this invoke flushes at its end, which holds the function back to
 * the rate Kinesis takes, and leaves no backlog for a freeze or SHUTDOWN). */
#define KTE_ADAPT_MAX_BACKLOG 500 /* one PutRecords */
bool kte_flush_adaptive_defer(const struct kte_config *cfg, const struct kte_flush_history *h,
                              size_t buffered);

/* The plan of an invoke with what has been observed (h: may be NULL, then
 * adaptive flushes like end; buffered: records queued or in flight). h must
 * already hold this INVOKE. */
struct kte_invoke_plan kte_flush_plan_invoke_h(const struct kte_config *cfg, int64_t now,
                                               int64_t last_flush, int64_t invoke_deadline,
                                               const struct kte_flush_history *h, size_t buffered);

/* Whether the environment was frozen while events waited in the extension:
 * next was called at called and returned at returned (wall ms), and the
 * sender's timer would have delivered a waiting event within
 * KTE_MAX_LATENCY_MS had the process run. A gap longer than that bound means
 * the process did not run (frozen) for most of it. */
bool kte_flush_was_frozen(const struct kte_config *cfg, int64_t called, int64_t returned);

/* When the Telemetry API's bodies arrived (wall ms) and how many events
 * had arrived by then: the pipeline adds one entry per body; at a thaw,
 * kte_intake_log_before tells how many events the extension already held
 * when the freeze began, leaving out what Lambda hands over after it. */
#define KTE_INTAKE_LOG 16
struct kte_intake_log {
    struct {
        int64_t t;       /* wall ms the body arrived */
        uint64_t before; /* events that arrived before it */
        uint64_t after;  /* and with it */
    } e[KTE_INTAKE_LOG];
    uint64_t n; /* bodies ever added */
};

void kte_intake_log_add(struct kte_intake_log *l, int64_t t, uint64_t events);
/* Events in the bodies that arrived before t (exact while fewer than
 * KTE_INTAKE_LOG bodies arrived from t on). */
uint64_t kte_intake_log_before(const struct kte_intake_log *l, int64_t t);

/* Events that waited in the extension through a freeze: those that arrived
 * before the thaw (received) and were not yet delivered or dropped when
 * next returned (settled: delivery is in order), each counted once
 * (*counted: events up to this one were counted at an earlier freeze; it
 * moves to received). EventsDeliveredAfterFreeze. */
uint64_t kte_flush_held_over_freeze(uint64_t received, uint64_t settled, uint64_t *counted);

/* End of an end-of-invoke flush that starts at now. */
int64_t kte_flush_invoke_flush_deadline(const struct kte_config *cfg, int64_t now,
                                        const struct kte_invoke_plan *plan);

struct kte_shutdown_plan {
    bool wait_report;   /* wait for the last invoke's platform.report */
    int64_t wait_until; /* end of that wait (or of the grace sleep) */
    int64_t deadline;   /* end of the final flush */
};

struct kte_shutdown_plan kte_flush_plan_shutdown(const struct kte_config *cfg, int64_t now,
                                                 int64_t shutdown_deadline, bool have_last_request);

#endif
