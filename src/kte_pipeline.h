/* The buffer between the listener and Kinesis, and the sender thread that
 * drains it. The lifecycle thread asks for flushes and waits for them; the
 * listener thread ingests bodies; the sender thread owns the Kinesis client.
 * One mutex guards the queue, one condition variable announces any change. */
#ifndef KTE_PIPELINE_H
#define KTE_PIPELINE_H

#include "kte_config.h"
#include "kte_kinesis.h"
#include "kte_metrics.h"
#include "kte_record.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define KTE_RID_RING 32

struct kte_rid_ring {
    char rid[KTE_RID_RING][64];
    unsigned pos;
};

struct kte_pipeline {
    const struct kte_config *cfg;
    struct kte_metrics metrics;
    char env_id[KTE_ENV_ID_LEN + 1];
    struct kte_record_builder rb;
    struct kte_kinesis kinesis;
    uint64_t rng; /* xorshift state for random partition keys */

    pthread_mutex_t mu;
    pthread_cond_t changed; /* broadcast on every change of the fields below */
    struct kte_rec *head, *tail;
    size_t count;
    size_t bytes; /* data + partition keys of queued records (batch sizing) */
    size_t mem;   /* memory of queued and in-flight records (the buffer cap) */
    uint64_t next_seq;
    size_t inflight;           /* records the sender holds */
    uint64_t inflight_min_seq; /* lowest seq in flight; 0 when a kte.dropped record is */
    size_t inflight_reports;   /* kte.dropped records among them */
    bool flush_active;
    uint64_t flush_upto;
    int64_t flush_deadline_ms;
    int64_t last_flush_ms;
    int64_t next_attempt_ms; /* backoff: no PutRecords before this */
    int64_t backoff_ms;
    bool stopping;
    bool closed;   /* intake ended: bodies are refused, not accepted */
    int ingesting; /* bodies between sequence reservation and append */
    char current_rid[64];
    struct kte_rid_ring runtime_done;
    struct kte_rid_ring reports;
    char last_error[128];             /* to log each kind of failure once, not per batch */
    struct kte_drop_stats unreported; /* drops no kte.dropped record mentions yet */
    struct kte_drop_stats reporting;  /* drops the queued kte.dropped record carries */
    bool report_queued;
    bool overflow_logged;

    pthread_t sender;
    bool sender_started;
    bool sender_done; /* the sender thread has left its loop */
    bool abandoned;   /* stop() stopped waiting for the sender's last request */
};

int kte_pipeline_init(struct kte_pipeline *p, const struct kte_config *cfg, char *err,
                      size_t errlen);
/* Starts the sender thread. */
int kte_pipeline_start(struct kte_pipeline *p);
/* Stops the sender after its current request, waiting for that until the
 * deadline (epoch ms; 0: as long as it takes), and counts whatever is still
 * buffered, or still in flight at the deadline, as dropped at shutdown.
 * Idempotent. */
void kte_pipeline_stop(struct kte_pipeline *p, int64_t deadline_ms);
void kte_pipeline_free(struct kte_pipeline *p);

/* Ends intake: later bodies are refused (KTE_SINK_CLOSED), and a body being
 * buffered right now is waited for, so that a flush after this covers every
 * event ever accepted. */
void kte_pipeline_close(struct kte_pipeline *p);

/* kte_listener_sink: parses a Telemetry API body and buffers its events. */
int kte_pipeline_ingest(void *p, const char *body, size_t len, char *msg, size_t msg_len);

void kte_pipeline_set_request(struct kte_pipeline *p, const char *rid);

enum kte_wait_for { KTE_WAIT_RUNTIME_DONE, KTE_WAIT_REPORT };
/* Waits until the platform event of that kind for rid has been ingested.
 * Returns true when it has, false at the deadline (epoch ms). */
bool kte_pipeline_wait_for(struct kte_pipeline *p, enum kte_wait_for what, const char *rid,
                           int64_t deadline_ms);

/* Delivers everything buffered now, retrying failures, until done or the
 * deadline (epoch ms). Returns the number of those events still buffered. */
size_t kte_pipeline_flush(struct kte_pipeline *p, int64_t deadline_ms);

int64_t kte_pipeline_last_flush_ms(struct kte_pipeline *p);
size_t kte_pipeline_buffered(struct kte_pipeline *p);

int64_t kte_now_ms(void);

#endif
