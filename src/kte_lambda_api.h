/* Client of the Lambda Extensions API (2020-01-01) and the Telemetry API
 * subscription (2022-07-01), both served at $AWS_LAMBDA_RUNTIME_API. */
#ifndef KTE_LAMBDA_API_H
#define KTE_LAMBDA_API_H

#include "kte_config.h"
#include "kte_http.h"

#include <stdbool.h>
#include <stdint.h>

struct kte_lambda_api {
    struct kte_http http;
    char base[300];   /* http://host:port */
    char ext_id[256]; /* Lambda-Extension-Identifier, after register */
};

enum kte_next_type { KTE_NEXT_INVOKE, KTE_NEXT_SHUTDOWN };

struct kte_next_event {
    enum kte_next_type type;
    char request_id[64];      /* INVOKE */
    int64_t deadline_ms;      /* epoch milliseconds; 0 when absent */
    char shutdown_reason[32]; /* SHUTDOWN, lower-cased */
};

int kte_lambda_api_init(struct kte_lambda_api *api, const char *runtime_api);
void kte_lambda_api_free(struct kte_lambda_api *api);

/* Registers as name for INVOKE and SHUTDOWN (SHUTDOWN only when
 * shutdown_only: Managed Instances allow nothing else). */
int kte_lambda_register(struct kte_lambda_api *api, const char *name, bool shutdown_only, char *err,
                        size_t errlen);

/* Blocks until the next lifecycle event. */
int kte_lambda_next(struct kte_lambda_api *api, struct kte_next_event *ev, char *err,
                    size_t errlen);

/* POSTs /extension/init/error (init=true) or /extension/exit/error. */
int kte_lambda_report_error(struct kte_lambda_api *api, bool init, const char *error_type,
                            const char *message);

/* Subscribes uri to the configured types with the configured buffering. */
int kte_lambda_subscribe(struct kte_lambda_api *api, const struct kte_config *cfg, const char *uri,
                         char *err, size_t errlen);

/* The subscription request body (exposed for tests). */
int kte_lambda_subscribe_body(const struct kte_config *cfg, const char *uri, struct kte_buf *out);

/* Parses an /event/next body (exposed for tests). */
int kte_lambda_parse_event(const char *body, size_t len, struct kte_next_event *ev, char *err,
                           size_t errlen);

#endif
