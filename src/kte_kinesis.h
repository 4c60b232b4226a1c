/* Kinesis PutRecords over one kept-alive libcurl connection, signed with
 * libcurl's SigV4 (CURLOPT_AWS_SIGV4). Used by the sender thread only: it
 * owns the client and its credentials provider (kte_creds), so refreshing
 * the credentials (curl's user:password and the token header) never races a
 * request. */
#ifndef KTE_KINESIS_H
#define KTE_KINESIS_H

#include "kte_batch.h"
#include "kte_config.h"
#include "kte_creds.h"
#include "kte_http.h"

#include <stdbool.h>

enum kte_put_status {
    KTE_PUT_OK = 0,    /* HTTP 200; per-record results parsed */
    KTE_PUT_RETRY,     /* throttled, 5xx, timeout, connection trouble: resend the batch */
    KTE_PUT_PERMANENT, /* a request Kinesis will refuse again (missing stream, access...) */
};

struct kte_kinesis {
    const struct kte_config *cfg;
    struct kte_http http;
    struct curl_slist *headers;
    char url[KTE_CFG_STR + 8];
    char sigv4[128];
    char userpwd[600];
    struct kte_creds_provider creds;
    unsigned creds_version;      /* the set userpwd and headers were made from */
    unsigned creds_refusals;     /* PutRecords refused for expired credentials */
    bool cbor;                   /* KTE_PROTOCOL=cbor, until the service refuses it */
    unsigned protocol_fallbacks; /* 1 once a refusal of CBOR switched to JSON */
};

/* Sets up the client and takes the first credentials (a container endpoint
 * is asked now, so that a bad one is an init error). -1 with err. */
int kte_kinesis_init(struct kte_kinesis *k, const struct kte_config *cfg, char *err, size_t errlen);
void kte_kinesis_free(struct kte_kinesis *k);

/* After a SnapStart restore: new connections and new credentials before the
 * next request. */
void kte_kinesis_restored(struct kte_kinesis *k);

/* Sends the records recs[0..n) (framed by kte_agg) as one PutRecords call that may take at most
 * timeout_ms, signed with credentials valid now (refreshed first when due). A call refused for
 * expired credentials is sent once more with a fresh set; if that fails too it is KTE_PUT_RETRY,
 * never a drop. On KTE_PUT_OK results[i] tells each record's fate. Otherwise error_code names the
 * failure (a Kinesis error code, "HTTP 503", or curl's text). With KTE_PROTOCOL=cbor a refusal
 * of the protocol (kte_kinesis_refuses_cbor) switches the client to JSON for good and sends the
 * call again at once. */
/* Whether a CBOR PutRecords answered (status, error_code) refused the
 * protocol itself rather than the request: a 4xx other than 401/403/408/429
 * with UnknownOperationException, SerializationException, an unsupported
 * media type, or no error code readable in either protocol. A false alarm
 * only costs the efficiency of CBOR; missing one would resend forever. */
bool kte_kinesis_refuses_cbor(long status, const char *error_code);

enum kte_put_status kte_kinesis_put(struct kte_kinesis *k, const struct kte_wire *recs, size_t n,
                                    long timeout_ms, struct kte_rec_result *results,
                                    char *error_code, size_t error_code_len);

#endif
