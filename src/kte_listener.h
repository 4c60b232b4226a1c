/* The HTTP endpoint the Telemetry API posts to (libmicrohttpd, its own
 * thread). Only POSTs to the secret path are accepted, so other code in the
 * sandbox cannot inject telemetry; everything else is answered and counted.
 *
 * The listener shares the sandbox with the customer's code, so it also holds
 * its port exclusively (no SO_REUSEPORT: a second bind fails) and bounds its
 * connections well under Lambda's 1,024 file descriptors. When the bound is
 * reached a new connection evicts the longest-idle connection that has not
 * proved it is the Telemetry API (by a POST to the secret path); connections
 * that have are evicted only when there is no other, and never while a request
 * is in progress. See docs/security.md. */
#ifndef KTE_LISTENER_H
#define KTE_LISTENER_H

#include "kte_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called with each complete body. Returns KTE_SINK_OK when the events were
 * buffered, KTE_SINK_MALFORMED when the body is malformed (msg says why;
 * answered 400), KTE_SINK_CLOSED when intake has ended for shutdown
 * (answered 503: nothing was accepted, so nothing is owed). */
enum { KTE_SINK_OK = 0, KTE_SINK_MALFORMED = -1, KTE_SINK_CLOSED = -2 };

typedef int (*kte_listener_sink)(void *ctx, const char *body, size_t len, char *msg,
                                 size_t msg_len);

/* Connection limits. The defaults (kte_listener_start) are what Lambda
 * needs: the Telemetry API keeps one connection alive per subscriber and
 * posts one batch at a time. */
struct kte_listener_limits {
    unsigned max_connections;   /* open connections; more evict or are refused */
    unsigned idle_timeout_s;    /* until a connection proved it is the Telemetry API */
    unsigned trusted_timeout_s; /* idle keep-alive of connections that did */
};
#define KTE_LISTENER_MAX_CONNECTIONS   64
#define KTE_LISTENER_IDLE_TIMEOUT_S    5
#define KTE_LISTENER_TRUSTED_TIMEOUT_S 60

struct kte_listener;

/* path is the secret path, beginning with '/'. */
struct kte_listener *kte_listener_start(const char *host, int port, const char *path,
                                        size_t max_body, kte_listener_sink sink, void *ctx,
                                        struct kte_metrics *metrics, char *err, size_t errlen);
/* The same with explicit limits (tests use small ones). */
struct kte_listener *
kte_listener_start_limited(const char *host, int port, const char *path, size_t max_body,
                           const struct kte_listener_limits *limits, kte_listener_sink sink,
                           void *ctx, struct kte_metrics *metrics, char *err, size_t errlen);
/* Port actually bound (useful when 0 was asked for). */
int kte_listener_port(const struct kte_listener *l);
void kte_listener_stop(struct kte_listener *l);

/* The eviction policy, pure so it is tested without sockets. One entry per
 * open connection. Idleness is ordered by a tick the listener counts up at
 * every open and every request end, not by a clock: only the order matters,
 * and a tick never ties. */
struct kte_conn_state {
    bool trusted;        /* has sent a POST to the secret path */
    bool busy;           /* a request is in progress */
    bool evicting;       /* already chosen; closing */
    uint64_t idle_since; /* tick when opened or its last request ended */
};
/* Index of the connection to evict to make room for a new one, or -1 when
 * every connection is a Telemetry API request in progress (refuse the new
 * one). Untrusted connections go first (busy or not: a slow body on a wrong
 * path is no reason to keep a slot), longest idle first; then idle trusted
 * ones, longest idle first. */
long kte_listener_pick_victim(const struct kte_conn_state *conns, size_t n);

#endif
