/* The HTTP endpoint the Telemetry API posts to (libmicrohttpd, its own
 * thread). Only POSTs to the secret path are accepted, so other code in the
 * sandbox cannot inject telemetry; everything else is answered and counted. */
#ifndef KTE_LISTENER_H
#define KTE_LISTENER_H

#include "kte_metrics.h"

#include <stddef.h>

/* Called with each complete body. Returns KTE_SINK_OK when the events were
 * buffered, KTE_SINK_MALFORMED when the body is malformed (msg says why;
 * answered 400), KTE_SINK_CLOSED when intake has ended for shutdown
 * (answered 503: nothing was accepted, so nothing is owed). */
enum { KTE_SINK_OK = 0, KTE_SINK_MALFORMED = -1, KTE_SINK_CLOSED = -2 };

typedef int (*kte_listener_sink)(void *ctx, const char *body, size_t len, char *msg,
                                 size_t msg_len);

struct kte_listener;

/* path is the secret path, beginning with '/'. */
struct kte_listener *kte_listener_start(const char *host, int port, const char *path,
                                        size_t max_body, kte_listener_sink sink, void *ctx,
                                        struct kte_metrics *metrics, char *err, size_t errlen);
/* Port actually bound (useful when 0 was asked for). */
int kte_listener_port(const struct kte_listener *l);
void kte_listener_stop(struct kte_listener *l);

#endif
