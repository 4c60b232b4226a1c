/* The buffer between the listener and Kinesis, and the sender thread that
 * drains it. The lifecycle (and signal) thread asks for flushes and waits for
 * them; the listener thread ingests bodies; the sender thread owns the
 * Kinesis client. The struct is opaque: kte_pipeline.c lists every shared
 * field next to the lock that guards it. The queue itself (kte_queue) and the
 * sender's decisions (kte_send) are single-threaded modules of their own.
 *
 * Every time here is monotonic milliseconds (kte_clock): convert Lambda's
 * epoch deadlines with kte_deadline_from_epoch first. */
#ifndef KTE_PIPELINE_H
#define KTE_PIPELINE_H

#include "kte_clock.h"
#include "kte_config.h"
#include "kte_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kte_pipeline;

/* NULL with a message in err on failure. cfg must outlive the pipeline. */
struct kte_pipeline *kte_pipeline_new(const struct kte_config *cfg, char *err, size_t errlen);
/* Starts the sender thread. */
int kte_pipeline_start(struct kte_pipeline *p);
/* Stops the sender after its current request, waiting for that until the
 * deadline (0: as long as it takes), and counts whatever is still buffered,
 * or still in flight at the deadline, as dropped at shutdown. Flushes and
 * waits in progress on other threads return at once. Idempotent. */
void kte_pipeline_stop(struct kte_pipeline *p, int64_t deadline_ms);
/* Stops (deadline 0) and frees. */
void kte_pipeline_free(struct kte_pipeline *p);

/* Ends intake: later bodies are refused (KTE_SINK_CLOSED), and a body being
 * buffered right now is waited for, so that a flush after this covers every
 * event ever accepted. */
void kte_pipeline_close(struct kte_pipeline *p);

/* kte_listener_sink: parses a Telemetry API body and buffers its events, one
 * record at a time under KTE_MAX_BUFFER_BYTES. Bodies are taken one at a
 * time (callers on several threads queue up). */
int kte_pipeline_ingest(void *p, const char *body, size_t len, char *msg, size_t msg_len);

void kte_pipeline_set_request(struct kte_pipeline *p, const char *rid);

enum kte_wait_for { KTE_WAIT_RUNTIME_DONE, KTE_WAIT_REPORT };
/* Waits until the platform event of that kind for rid has been ingested.
 * Returns true when it has, false at the deadline or once stopping. */
bool kte_pipeline_wait_for(struct kte_pipeline *p, enum kte_wait_for what, const char *rid,
                           int64_t deadline_ms);

/* Delivers everything buffered now, retrying failures, until done, the
 * deadline, or stop. Returns the number of those events still buffered.
 * Flushes on several threads compose: each is served until its own end. */
size_t kte_pipeline_flush(struct kte_pipeline *p, int64_t deadline_ms);

int64_t kte_pipeline_last_flush_ms(struct kte_pipeline *p);
/* Restarts the sender's timer (continuous, adaptive) from now: an
 * end-of-invoke flush is coming, so a timer call now would only put a second
 * PutRecords ahead of it; a long invoke still gets the timer's calls. */
void kte_pipeline_restart_timer(struct kte_pipeline *p);
/* Events in the Telemetry API bodies accepted before wall_ms (kte_epoch_ms):
 * see kte_intake_log in kte_flush.h. */
uint64_t kte_pipeline_received_before(struct kte_pipeline *p, int64_t wall_ms);
size_t kte_pipeline_buffered(struct kte_pipeline *p);

/* The delivery counters (atomics: read them any time). */
struct kte_metrics *kte_pipeline_metrics(struct kte_pipeline *p);
/* The execution environment's random id: made at kte_pipeline_new, made
 * again at each SnapStart restore. Copied out (it may change). */
#define KTE_PIPELINE_ENV_ID_SIZE 33
void kte_pipeline_env_id(struct kte_pipeline *p, char out[KTE_PIPELINE_ENV_ID_SIZE]);
/* SnapStart restores detected so far. */
unsigned kte_pipeline_restores(struct kte_pipeline *p);

/* Lifecycle thread, SnapStart (no-ops otherwise; docs/lifecycle.md):
 * init_done just before the event/next that ends init (the snapshot may be
 * taken from then on: what arrives is sent at once), invoked at every
 * INVOKE (the first one after init is a restore unless the telemetry showed
 * it already). A restore makes a new environment id and seq space, new
 * randomness, new connections and credentials. */
void kte_pipeline_init_done(struct kte_pipeline *p);
void kte_pipeline_invoked(struct kte_pipeline *p);

/* A consistent snapshot, for tests and logs. */
struct kte_pipeline_stats {
    size_t queued;   /* records waiting */
    size_t inflight; /* records the sender holds */
    size_t mem;      /* memory of both: what KTE_MAX_BUFFER_BYTES limits */
    size_t mem_peak; /* the highest mem ever reached */
    bool abandoned;  /* stop() gave up on a request at its deadline */
};
void kte_pipeline_stats(struct kte_pipeline *p, struct kte_pipeline_stats *out);

#endif
