#include "kte_queue.h"

#include "kte_batch.h"

size_t kte_rec_mem(const struct kte_rec *r)
{
    return sizeof *r + r->data_len + r->pk_len + 1;
}

void kte_queue_init(struct kte_queue *q)
{
    q->head = q->tail = NULL;
    q->count = q->bytes = 0;
}

static size_t rec_bytes(const struct kte_rec *r)
{
    return (size_t)r->data_len + r->pk_len;
}

void kte_queue_push(struct kte_queue *q, struct kte_rec *r)
{
    r->next = NULL;
    if (q->tail)
        q->tail->next = r;
    else
        q->head = r;
    q->tail = r;
    q->count++;
    q->bytes += rec_bytes(r);
}

void kte_queue_push_front(struct kte_queue *q, struct kte_rec *r)
{
    r->next = q->head;
    q->head = r;
    if (!q->tail)
        q->tail = r;
    q->count++;
    q->bytes += rec_bytes(r);
}

struct kte_rec *kte_queue_pop(struct kte_queue *q)
{
    struct kte_rec *r = q->head;
    if (!r)
        return NULL;
    q->head = r->next;
    if (!q->head)
        q->tail = NULL;
    r->next = NULL;
    q->count--;
    q->bytes -= rec_bytes(r);
    return r;
}

void kte_queue_prepend(struct kte_queue *q, struct kte_queue *from)
{
    if (!from->head)
        return;
    from->tail->next = q->head;
    q->head = from->head;
    if (!q->tail)
        q->tail = from->tail;
    q->count += from->count;
    q->bytes += from->bytes;
    kte_queue_init(from);
}

size_t kte_queue_take_batch(struct kte_queue *q, struct kte_rec **out)
{
    size_t bytes;
    size_t n = kte_batch_plan(q->head, &bytes);
    for (size_t i = 0; i < n; i++)
        out[i] = kte_queue_pop(q);
    return n;
}

size_t kte_queue_due(const struct kte_queue *q, uint64_t upto)
{
    size_t n = 0;
    for (const struct kte_rec *r = q->head; r && (r->is_report || r->seq <= upto); r = r->next)
        n++;
    return n;
}
