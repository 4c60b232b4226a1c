/* A FIFO of records waiting for delivery, oldest first. Single-threaded: the
 * pipeline calls it with its lock held, the tests call it directly. The
 * queue owns the records on it. */
#ifndef KTE_QUEUE_H
#define KTE_QUEUE_H

#include "kte_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kte_queue {
    struct kte_rec *head, *tail;
    size_t count;
    size_t bytes; /* data + partition keys (what PutRecords limits) */
};

/* Memory one record holds: what KTE_MAX_BUFFER_BYTES counts. */
size_t kte_rec_mem(const struct kte_rec *r);

void kte_queue_init(struct kte_queue *q);
void kte_queue_push(struct kte_queue *q, struct kte_rec *r);       /* at the tail */
void kte_queue_push_front(struct kte_queue *q, struct kte_rec *r); /* at the head */
/* The oldest record, taken off the queue; NULL when empty. */
struct kte_rec *kte_queue_pop(struct kte_queue *q);
/* Moves all of from (in order) ahead of everything in q; from ends empty. */
void kte_queue_prepend(struct kte_queue *q, struct kte_queue *from);
/* Takes the records of the next PutRecords call (kte_batch_plan) into
 * out[0..n); returns n. */
size_t kte_queue_take_batch(struct kte_queue *q, struct kte_rec **out);
/* How many records from the head a flush of everything up to seq upto still
 * waits for. A kte.dropped record counts whatever its seq: it reports on
 * earlier events and stands at the head. */
size_t kte_queue_due(const struct kte_queue *q, uint64_t upto);

#endif
