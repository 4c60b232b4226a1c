/* Clocks. Every timer, backoff and wait inside the extension runs on the
 * monotonic clock, so that a step of the wall clock (NTP, a SnapStart
 * restore) neither ends a flush early nor stalls a retry. Only what leaves
 * the process (record and metric timestamps) or comes from Lambda (its epoch
 * deadlines, converted once on arrival) uses the wall clock. */
#ifndef KTE_CLOCK_H
#define KTE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds (an arbitrary origin): the time base of every
 * deadline passed to the pipeline and to kte_flush. */
int64_t kte_now_ms(void);

/* Wall-clock milliseconds since the epoch, for timestamps only. */
int64_t kte_epoch_ms(void);

/* An epoch deadline from Lambda in the monotonic time base; 0 (no
 * deadline) stays 0. */
int64_t kte_deadline_from_epoch(int64_t epoch_ms);

/* A monotonic time as the absolute timespec pthread_cond_timedwait wants
 * from a condition variable set to CLOCK_MONOTONIC. */
struct timespec kte_mono_timespec(int64_t ms);

#endif
