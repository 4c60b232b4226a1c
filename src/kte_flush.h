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
