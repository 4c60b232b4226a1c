/* A fake Kinesis endpoint for the pipeline's tests: a real HTTP server
 * (libmicrohttpd) in the test process that answers PutRecords with scripted
 * responses and notes what each request carried. Header-only (static), one
 * copy per test executable; include it after <cmocka.h>. It speaks JSON only
 * (a CBOR request is noted as -1 records), which the protocol fallback's
 * tests use. Fields are read and
 * written under mu. */
#ifndef KTE_FAKE_KINESIS_H
#define KTE_FAKE_KINESIS_H

#include "kte_test_util.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define MAX_REQ 64

/* One scripted answer: status and body; "%PARTIAL:k" marks a 200 whose k-th
 * record (0-based) fails with ProvisionedThroughputExceededException. */
struct answer {
    unsigned status;
    const char *body;
    int fail_index;
};

struct fake {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;
    struct answer script[MAX_REQ];
    int nscript;
    int nreq;
    int req_records[MAX_REQ];
    uint64_t req_seqs[MAX_REQ][500];   /* of each record's first envelope */
    uint32_t req_events[MAX_REQ][500]; /* envelopes in each record (kpl, ndjson: many) */
    char target[128];
    char ctype[MAX_REQ][48]; /* each request's Content-Type */
    int outage;              /* answer 503 to everything while set */
    int fail_every;          /* when > 0: answer 503 to every fail_every-th call */
    int delay_ms;            /* answer this late */
    char report[1024];       /* the last kte.dropped record seen */
    uint64_t min_seq[MAX_REQ];
};

struct conn {
    char *buf;
    size_t len;
};

/* The seq of the first envelope in a record's data (NUL-terminated, may
 * hold binary framing), and how many envelopes it holds. */
static uint64_t seq_of(const unsigned char *data, size_t len, uint32_t *count)
{
    const char *d = (const char *)data, *first = NULL;
    *count = 0;
    for (size_t i = 0; i + 6 <= len; i++) {
        if (memcmp(d + i, "\"seq\":", 6))
            continue;
        if (!first)
            first = d + i;
        (*count)++;
    }
    return first ? strtoull(first + 6, NULL, 10) : 0;
}

/* Notes what request idx carried (the first MAX_REQ requests); returns its
 * number of records. */
static int record_request(struct fake *f, const char *body, int idx)
{
    yajl_val root = yajl_tree_parse(body, NULL, 0);
    const char *path[] = {"Records", NULL};
    yajl_val recs = root ? yajl_tree_get(root, path, yajl_t_array) : NULL;
    int n = recs ? (int)YAJL_GET_ARRAY(recs)->len : -1;
    if (idx < MAX_REQ)
        f->req_records[idx] = n;
    for (int i = 0; i < n && i < 500 && idx < MAX_REQ; i++) {
        const char *dp[] = {"Data", NULL};
        yajl_val d = yajl_tree_get(YAJL_GET_ARRAY(recs)->values[i], dp, yajl_t_string);
        const char *b64 = YAJL_GET_STRING(d);
        size_t olen = 0;
        unsigned char *out = malloc(strlen(b64) + 1);
        if (kt_b64_decode(b64, strlen(b64), out, strlen(b64) + 1, &olen) != 0)
            olen = 0; /* counted as no sequence number: the test then fails on counts */
        out[olen] = '\0';
        f->req_seqs[idx][i] = seq_of(out, olen, &f->req_events[idx][i]);
        if (olen < sizeof f->report && strstr((const char *)out, "kte.dropped")) {
            memcpy(f->report, out, olen);
            f->report[olen] = '\0';
        }
        free(out);
    }
    yajl_tree_free(root);
    return n;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    struct fake *f = cls;
    struct conn *cn = *con_cls;
    if (!cn) {
        *con_cls = calloc(1, sizeof *cn);
        return MHD_YES;
    }
    if (*size) {
        cn->buf = realloc(cn->buf, cn->len + *size + 1);
        memcpy(cn->buf + cn->len, data, *size);
        cn->len += *size;
        cn->buf[cn->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&f->mu);
    int idx = f->nreq++;
    const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
    snprintf(f->target, sizeof f->target, "%s", t ? t : "");
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    if (idx < MAX_REQ)
        snprintf(f->ctype[idx], sizeof f->ctype[idx], "%s", ct ? ct : "");
    int n = record_request(f, cn->buf ? cn->buf : "", idx);
    bool fail = f->outage || (f->fail_every > 0 && idx % f->fail_every == f->fail_every - 1);
    struct answer a = fail               ? (struct answer){503, "", -1}
                      : idx < f->nscript ? f->script[idx]
                                         : (struct answer){200, NULL, -1};
    int delay = f->delay_ms;
    pthread_mutex_unlock(&f->mu);
    if (delay)
        usleep((useconds_t)delay * 1000);

    char body[65536];
    if (a.body) {
        snprintf(body, sizeof body, "%s", a.body);
    } else {
        /* A PutRecords answer for n records, failing a.fail_index. */
        size_t o = (size_t)snprintf(body, sizeof body, "{\"FailedRecordCount\":%d,\"Records\":[",
                                    a.fail_index >= 0 ? 1 : 0);
        for (int i = 0; i < n; i++)
            o += (size_t)snprintf(
                body + o, sizeof body - o, "%s%s", i ? "," : "",
                i == a.fail_index
                    ? "{\"ErrorCode\":\"ProvisionedThroughputExceededException\","
                      "\"ErrorMessage\":\"Rate exceeded\"}"
                    : "{\"SequenceNumber\":\"1\",\"ShardId\":\"shardId-000000000000\"}");
        snprintf(body + o, sizeof body - o, "]}");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/x-amz-json-1.1");
    enum MHD_Result rc = MHD_queue_response(c, a.status, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct conn *cn = *con_cls;
    if (cn) {
        free(cn->buf);
        free(cn);
    }
}

static void fake_start(struct fake *f)
{
    pthread_mutex_init(&f->mu, NULL);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, handler,
                            f, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    assert_non_null(f->d);
    f->port = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void fake_stop(struct fake *f)
{
    MHD_stop_daemon(f->d);
    pthread_mutex_destroy(&f->mu);
}

#endif
