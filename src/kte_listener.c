#include "kte_listener.h"

#include "kte_buf.h"
#include "kte_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct kte_listener {
    struct MHD_Daemon *daemon;
    char *path;
    size_t max_body;
    kte_listener_sink sink;
    void *ctx;
    struct kte_metrics *metrics;
    int port;
};

/* Per-connection request state, owned by libmicrohttpd's con_cls slot. */
struct request {
    struct kte_buf body;
    bool reject;   /* not ours: 404/405, body ignored */
    bool oversize; /* over max_body: body ignored, answered 413 */
    int status;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct kte_listener *l = cls;
    struct request *rq = *con_cls;

    if (!rq) {
        /* First call: headers only. Decide what to do with the body. */
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        kte_buf_init(&rq->body);
        *con_cls = rq;
        if (strcmp(url, l->path) != 0) {
            rq->reject = true;
            rq->status = MHD_HTTP_NOT_FOUND;
        } else if (strcmp(method, "POST") != 0) {
            rq->reject = true;
            rq->status = MHD_HTTP_METHOD_NOT_ALLOWED;
        } else {
            const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl && strtoull(cl, NULL, 10) > l->max_body)
                rq->oversize = true;
        }
        return MHD_YES;
    }

    if (*upload_data_size) {
        if (!rq->reject && !rq->oversize) {
            if (rq->body.len + *upload_data_size > l->max_body)
                rq->oversize = true;
            else if (kte_buf_append(&rq->body, upload_data, *upload_data_size) != 0)
                return MHD_NO; /* connection closed; Lambda retries the POST */
            if (rq->oversize)
                kte_buf_free(&rq->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* Body complete. */
    if (rq->reject) {
        atomic_fetch_add(&l->metrics->posts_rejected, 1);
        return reply(conn, (unsigned)rq->status,
                     rq->status == MHD_HTTP_NOT_FOUND ? "not found\n" : "POST only\n");
    }
    if (rq->oversize) {
        atomic_fetch_add(&l->metrics->posts_oversized, 1);
        return reply(conn, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
    }
    char msg[256] = "";
    int rc = l->sink(l->ctx, rq->body.data ? rq->body.data : "", rq->body.len, msg, sizeof msg);
    if (rc == KTE_SINK_CLOSED) {
        atomic_fetch_add(&l->metrics->posts_after_close, 1);
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if (rc != KTE_SINK_OK) {
        atomic_fetch_add(&l->metrics->posts_malformed, 1);
        char text[300];
        snprintf(text, sizeof text, "%s\n", msg);
        return reply(conn, MHD_HTTP_BAD_REQUEST, text);
    }
    atomic_fetch_add(&l->metrics->posts, 1);
    return reply(conn, MHD_HTTP_OK, "");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct request *rq = *con_cls;
    if (rq) {
        kte_buf_free(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

struct kte_listener *kte_listener_start(const char *host, int port, const char *path,
                                        size_t max_body, kte_listener_sink sink, void *ctx,
                                        struct kte_metrics *metrics, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_INET; /* Lambda's sandbox network is IPv4 */
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listener host '%s' (KTE_LISTENER_HOST): %s", host,
                 gai_strerror(gai));
        return NULL;
    }
    struct kte_listener *l = calloc(1, sizeof *l);
    if (!l) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->path = strdup(path);
    l->max_body = max_body;
    l->sink = sink;
    l->ctx = ctx;
    l->metrics = metrics;
    l->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL, on_request, l,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        /* 16 KiB, not 32: libmicrohttpd zeroes the pool for every
         * request, and bodies are copied out as they arrive, so it
         * only holds headers and one read's worth of body. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)60, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!l->daemon || !l->path) {
        snprintf(err, errlen,
                 "cannot listen on %s:%d (KTE_LISTENER_HOST/KTE_LISTENER_PORT); is the port "
                 "in use?",
                 host, port);
        kte_listener_stop(l);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT);
    l->port = info ? (int)info->port : port;
    return l;
}

int kte_listener_port(const struct kte_listener *l)
{
    return l->port;
}

void kte_listener_stop(struct kte_listener *l)
{
    if (!l)
        return;
    if (l->daemon)
        MHD_stop_daemon(l->daemon);
    free(l->path);
    free(l);
}
