#include "kte_listener.h"

#include "kte_buf.h"
#include "kte_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Room above max_connections for evicted connections that libmicrohttpd has
 * not reaped yet (it accepts at most 10 per turn and reaps every turn). Its
 * own limit is max_connections + this: beyond it new connections wait in the
 * kernel's backlog instead of being accepted. */
#define EVICTING_SLACK 32

/* One open connection; owned by libmicrohttpd's socket_context slot from
 * MHD_CONNECTION_NOTIFY_STARTED to _CLOSED. Its state lives in the table
 * (slot), so the pure policy sees a plain array. */
struct conn {
    size_t slot;
    int fd;
    unsigned requests; /* requests whose headers arrived */
};

struct kte_listener {
    struct MHD_Daemon *daemon;
    char *path;
    size_t max_body;
    kte_listener_sink sink;
    void *ctx;
    struct kte_metrics *metrics;
    struct kte_listener_limits limits;
    int port;
    /* The connection table. Only libmicrohttpd's one polling thread touches
     * it (every callback below runs there), so it needs no lock. */
    struct conn **conns;
    struct kte_conn_state *states;
    size_t nconns, cap, nevicting;
    uint64_t tick; /* orders idleness (struct kte_conn_state) */
};

/* Per-request state, owned by libmicrohttpd's con_cls slot. */
struct request {
    struct kte_buf body;
    struct conn *conn;
    bool reject;   /* not ours: 404/405, body ignored */
    bool oversize; /* over max_body: body ignored, answered 413 */
    bool answered; /* a response was queued: counted by its status */
    int status;
};

long kte_listener_pick_victim(const struct kte_conn_state *conns, size_t n)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        const struct kte_conn_state *c = &conns[i];
        if (c->evicting || (c->trusted && c->busy))
            continue;
        if (best < 0) {
            best = (long)i;
            continue;
        }
        const struct kte_conn_state *b = &conns[best];
        if (b->trusted != c->trusted ? b->trusted : c->idle_since < b->idle_since)
            best = (long)i;
    }
    return best;
}

/* Before libmicrohttpd sets up a new connection: make room or refuse. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    struct kte_listener *l = cls;
    if (l->nconns - l->nevicting < l->limits.max_connections && l->nconns < l->cap)
        return MHD_YES;
    long v = l->nconns < l->cap ? kte_listener_pick_victim(l->states, l->nconns) : -1;
    if (v < 0) {
        atomic_fetch_add(&l->metrics->connections_refused, 1);
        return MHD_NO;
    }
    /* libmicrohttpd has no call to close a connection from outside its
     * handlers; a shut-down socket reads as end of stream, and it closes
     * the connection on its next turn. */
    shutdown(l->conns[v]->fd, SHUT_RDWR);
    l->states[v].evicting = true;
    l->nevicting++;
    atomic_fetch_add(&l->metrics->connections_evicted, 1);
    return MHD_YES;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct kte_listener *l = cls;
    struct conn *c = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        atomic_fetch_add(&l->metrics->connections_accepted, 1);
        if (l->nconns == l->cap || !ci || !(c = calloc(1, sizeof *c))) {
            /* Cannot track it, so cannot bound it: close it at once. */
            if (ci)
                shutdown(ci->connect_fd, SHUT_RDWR);
            atomic_fetch_add(&l->metrics->connections_refused, 1);
            return;
        }
        c->fd = ci->connect_fd;
        c->slot = l->nconns++;
        l->conns[c->slot] = c;
        l->states[c->slot] = (struct kte_conn_state){.idle_since = ++l->tick};
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    if (l->states[c->slot].evicting)
        l->nevicting--;
    else if (c->requests == 0)
        atomic_fetch_add(&l->metrics->connections_without_request, 1);
    /* Swap-remove from the table. */
    size_t last = --l->nconns;
    if (c->slot != last) {
        l->conns[c->slot] = l->conns[last];
        l->states[c->slot] = l->states[last];
        l->conns[c->slot]->slot = c->slot;
    }
    free(c);
    *socket_context = NULL;
}

static enum MHD_Result reply(struct MHD_Connection *conn, struct request *rq, unsigned status,
                             const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    rq->answered = true;
    MHD_add_response_header(r, "Content-Type", "text/plain");
    /* Whoever got the path wrong is not the Telemetry API: no keep-alive. */
    if (rq->reject)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
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
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        rq->conn = ci ? ci->socket_context : NULL;
        if (rq->conn) {
            rq->conn->requests++;
            l->states[rq->conn->slot].busy = true;
        }
        if (strcmp(url, l->path) != 0) {
            rq->reject = true;
            rq->status = MHD_HTTP_NOT_FOUND;
        } else if (strcmp(method, "POST") != 0) {
            rq->reject = true;
            rq->status = MHD_HTTP_METHOD_NOT_ALLOWED;
        } else {
            const char *cl =
                MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            unsigned long long claimed = cl ? strtoull(cl, NULL, 10) : 0;
            if (claimed > l->max_body)
                rq->oversize = true;
            /* The whole body in one allocation, not grown by doubling: that
             * copied a 256 KiB batch about twice over. Only for the secret
             * path (the Telemetry API), and only up to the body limit. A
             * failure here is not one: the appends below try again. */
            else if (claimed > 0)
                (void)kte_buf_reserve(&rq->body, (size_t)claimed);
            /* It knows the secret path: this is the Telemetry API. It keeps
             * its connection alive between batches, so it gets the long
             * idle timeout and is the last to be evicted. */
            if (rq->conn) {
                l->states[rq->conn->slot].trusted = true;
                MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                          l->limits.trusted_timeout_s);
            }
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
        return reply(conn, rq, (unsigned)rq->status,
                     rq->status == MHD_HTTP_NOT_FOUND ? "not found\n" : "POST only\n");
    }
    if (rq->oversize) {
        atomic_fetch_add(&l->metrics->posts_oversized, 1);
        return reply(conn, rq, MHD_HTTP_CONTENT_TOO_LARGE, "body too large\n");
    }
    char msg[256] = "";
    int rc = l->sink(l->ctx, rq->body.data ? rq->body.data : "", rq->body.len, msg, sizeof msg);
    if (rc == KTE_SINK_CLOSED) {
        atomic_fetch_add(&l->metrics->posts_after_close, 1);
        return reply(conn, rq, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down\n");
    }
    if (rc != KTE_SINK_OK) {
        atomic_fetch_add(&l->metrics->posts_malformed, 1);
        char text[300];
        snprintf(text, sizeof text, "%s\n", msg);
        return reply(conn, rq, MHD_HTTP_BAD_REQUEST, text);
    }
    atomic_fetch_add(&l->metrics->posts, 1);
    return reply(conn, rq, MHD_HTTP_OK, "");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct kte_listener *l = cls;
    struct request *rq = *con_cls;
    if (rq) {
        struct kte_conn_state *st = rq->conn ? &l->states[rq->conn->slot] : NULL;
        if (st) {
            st->busy = false;
            st->idle_since = ++l->tick;
        }
        /* Ended before it was answered (timeout, client gone, stopped):
         * count it unless eviction already counted its connection. */
        if (!rq->answered && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !(st && st->evicting))
            atomic_fetch_add(&l->metrics->requests_incomplete, 1);
        kte_buf_free(&rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

/* Binds host:port with SO_REUSEADDR (a restarted extension can bind again
 * while old connections sit in TIME_WAIT; on Linux it never lets a second
 * socket bind while this one listens) and deliberately without
 * SO_REUSEPORT, which would let any process of the same user bind the port
 * too and receive a share of the Telemetry API's POSTs, path and all.
 * Returns the listening socket or -1 with err set. */
static int bind_exclusive(const char *host, int port, int *bound_port, char *err, size_t errlen)
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
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int on = 1;
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) != 0) {
        snprintf(err, errlen,
                 "cannot listen on %s:%d (KTE_LISTENER_HOST/KTE_LISTENER_PORT): %s; is the port "
                 "in use?",
                 host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    *bound_port = ntohs(sa.sin_port);
    return fd;
}

struct kte_listener *kte_listener_start(const char *host, int port, const char *path,
                                        size_t max_body, kte_listener_sink sink, void *ctx,
                                        struct kte_metrics *metrics, char *err, size_t errlen)
{
    const struct kte_listener_limits limits = {
        KTE_LISTENER_MAX_CONNECTIONS, KTE_LISTENER_IDLE_TIMEOUT_S, KTE_LISTENER_TRUSTED_TIMEOUT_S};
    return kte_listener_start_limited(host, port, path, max_body, &limits, sink, ctx, metrics, err,
                                      errlen);
}

struct kte_listener *
kte_listener_start_limited(const char *host, int port, const char *path, size_t max_body,
                           const struct kte_listener_limits *limits, kte_listener_sink sink,
                           void *ctx, struct kte_metrics *metrics, char *err, size_t errlen)
{
    struct kte_listener *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->path = strdup(path);
    l->max_body = max_body;
    l->sink = sink;
    l->ctx = ctx;
    l->metrics = metrics;
    l->limits = *limits;
    if (l->limits.max_connections < 1)
        l->limits.max_connections = 1;
    l->cap = l->limits.max_connections + EVICTING_SLACK;
    l->conns = calloc(l->cap, sizeof *l->conns);
    l->states = calloc(l->cap, sizeof *l->states);
    if (!l->path || !l->conns || !l->states) {
        snprintf(err, errlen, "out of memory");
        kte_listener_stop(l);
        return NULL;
    }
    int fd = bind_exclusive(host, port, &l->port, err, errlen);
    if (fd < 0) {
        kte_listener_stop(l);
        return NULL;
    }
    l->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, on_accept, l,
                         on_request, l, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED,
                         on_completed, l, MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned int)l->cap,
                         /* 16 KiB, not 32: libmicrohttpd zeroes the pool for every
                          * request, and bodies are copied out as they arrive, so it
                          * only holds headers and one read's worth of body. */
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
                         MHD_OPTION_CONNECTION_TIMEOUT, l->limits.idle_timeout_s, MHD_OPTION_END);
    if (!l->daemon) {
        /* libmicrohttpd closes a given listening socket on most of its
         * failure paths but not all; leaking it is harmless (the extension
         * exits after this), closing it twice would not be. */
        snprintf(err, errlen, "cannot start the listener on %s:%d (libmicrohttpd)", host, port);
        kte_listener_stop(l);
        return NULL;
    }
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
    free(l->conns);
    free(l->states);
    free(l->path);
    free(l);
}
