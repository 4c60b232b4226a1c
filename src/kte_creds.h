/* AWS credentials for signing PutRecords: from the environment (static for
 * the process), or from the container credentials provider the AWS SDKs use
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI with an authorization
 * token), which is what SnapStart gives and what expires during a long-lived
 * environment.
 *
 * The provider belongs to one thread, the sender's (which also owns the
 * Kinesis client that signs with the credentials), so nothing here is
 * shared. It fetches at init (so that a bad endpoint or token is an init
 * error), then only when kte_creds_refresh_due says so, when a PutRecords was
 * refused for expired credentials, or after a SnapStart restore: never per
 * request. The timing and parsing are pure functions, tested without a
 * network. Secrets never reach a log line. */
#ifndef KTE_CREDS_H
#define KTE_CREDS_H

#include "kte_config.h"
#include "kte_http.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kte_creds {
    char access_key_id[256];
    char secret_access_key[256];
    char session_token[4096];
    int64_t expiration_ms; /* epoch ms; 0: does not expire (environment) */
    int64_t fetched_ms;    /* epoch ms of the fetch that returned this set */
};

/* Refreshing begins a quarter of a set's lifetime before it expires (at most
 * five minutes before, as the SDKs do for container credentials); when that
 * quarter is shorter than this, the set is used until it expires (an endpoint
 * hands out the same set until then, so refetching sooner gains nothing). */
#define KTE_CREDS_MAX_MARGIN_MS   300000
#define KTE_CREDS_MIN_MARGIN_MS   250
#define KTE_CREDS_RETRY_MS        1000 /* after a failed fetch */
#define KTE_CREDS_MIN_INTERVAL_MS 500  /* between two fetches, unless invalidated */

/* When c should be replaced (epoch ms); INT64_MAX for credentials that do
 * not expire. */
int64_t kte_creds_refresh_at(const struct kte_creds *c);
/* Whether c should be replaced at now (epoch ms). */
bool kte_creds_refresh_due(const struct kte_creds *c, int64_t now_ms);

/* The cache's rule (kte_creds_ensure): fetch when there is no set, or when
 * the set is due (or stale: refused by Kinesis, or a restore) and no fetch
 * happened since retry_at_ms; otherwise use the cached set. */
bool kte_creds_should_fetch(const struct kte_creds *cur, bool have, bool stale, int64_t retry_at_ms,
                            int64_t now_ms);
/* retry_at_ms after a fetch at now that succeeded (ok) or failed. */
int64_t kte_creds_next_fetch(bool ok, int64_t now_ms);

/* "2026-11-29T21:00:00Z", with optional fractional seconds and a "Z",
 * "+hh:mm" or "-hh:mm" zone, to epoch ms. 0 or -1. */
int kte_creds_parse_time(const char *s, int64_t *epoch_ms);

/* The endpoint's answer {"AccessKeyId","SecretAccessKey","Token",
 * "Expiration"} into out (fetched_ms untouched). The error message names
 * fields, never values. */
int kte_creds_parse(const char *body, size_t len, struct kte_creds *out, char *err, size_t errlen);

/* Whether a FULL_URI may be used, by the AWS SDKs' rule: https to any host;
 * plain http only to a loopback address (127.0.0.0/8, ::1, localhost) or the
 * link-local addresses of ECS (169.254.170.2) and EKS Pod Identity
 * (169.254.170.23, fd00:ec2::23). */
bool kte_creds_uri_allowed(const char *uri);

/* Whether a Kinesis error code means "these credentials are no longer
 * accepted": refresh and resend, never drop. */
bool kte_creds_error_is_expired(const char *code);

struct kte_creds_provider {
    const struct kte_config *cfg;
    struct kte_http http; /* container source only */
    struct kte_creds cur;
    bool have;
    bool stale;          /* refresh before the next use, whatever the expiration */
    unsigned version;    /* bumped each time cur changes */
    unsigned fetches;    /* container fetches that returned a set */
    int64_t retry_at_ms; /* no fetch before this unless invalidated */
};

/* Takes the credentials from the environment (cfg), or fetches the first set
 * from the container endpoint. -1 with a message (no secret in it). */
int kte_creds_provider_init(struct kte_creds_provider *p, const struct kte_config *cfg, char *err,
                            size_t errlen);
void kte_creds_provider_free(struct kte_creds_provider *p);

/* Makes p->cur fit for a request at now (epoch ms): refreshes when due or
 * stale. A failed refresh keeps a set that has not expired yet. 0 when
 * p->cur may be used, -1 (message in err) when there is none. */
int kte_creds_ensure(struct kte_creds_provider *p, int64_t now_ms, char *err, size_t errlen);

/* The next kte_creds_ensure refetches (container source; a no-op for
 * environment credentials, which cannot be refreshed), and opens a new
 * connection to the endpoint (after a restore the old one is gone). */
void kte_creds_invalidate(struct kte_creds_provider *p);

/* Whether the credentials can be refreshed at all (container source). */
bool kte_creds_refreshable(const struct kte_creds_provider *p);

#endif
