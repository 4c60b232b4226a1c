#include "kte_kinesis.h"

#include "kte_cbor.h"
#include "kte_clock.h"
#include "kte_log.h"

#include <stdio.h>
#include <string.h>

/* Puts the current credentials into curl's user:password and the token
 * header. Sender thread only. */
static int apply_creds(struct kte_kinesis *k)
{
    const struct kte_creds *c = &k->creds.cur;
    curl_slist_free_all(k->headers);
    k->headers = NULL;
    struct curl_slist *h =
        curl_slist_append(NULL, k->cbor ? "Content-Type: application/x-amz-cbor-1.1"
                                        : "Content-Type: application/x-amz-json-1.1");
    if (h)
        h = curl_slist_append(h, "X-Amz-Target: Kinesis_20131202.PutRecords");
    if (h && c->session_token[0]) {
        /* Passed as a header so that curl's SigV4 signs it, as STS requires. */
        char tok[sizeof c->session_token + 32];
        snprintf(tok, sizeof tok, "X-Amz-Security-Token: %s", c->session_token);
        struct curl_slist *h2 = curl_slist_append(h, tok);
        memset(tok, 0, sizeof tok);
        if (!h2)
            curl_slist_free_all(h);
        h = h2;
    }
    if (!h)
        return -1;
    k->headers = h;
    snprintf(k->userpwd, sizeof k->userpwd, "%s:%s", c->access_key_id, c->secret_access_key);
    curl_easy_setopt(k->http.curl, CURLOPT_USERPWD, k->userpwd);
    k->creds_version = k->creds.version;
    return 0;
}

int kte_kinesis_init(struct kte_kinesis *k, const struct kte_config *cfg, char *err, size_t errlen)
{
    memset(k, 0, sizeof *k);
    k->cfg = cfg;
    k->cbor = cfg->protocol == KTE_PROTOCOL_CBOR;
    if (kte_http_init(&k->http) != 0) {
        snprintf(err, errlen, "cannot initialise the HTTP client (libcurl)");
        return -1;
    }
    if (kte_creds_provider_init(&k->creds, cfg, err, errlen) != 0)
        return -1;
    snprintf(k->url, sizeof k->url, "%s/", cfg->endpoint);
    snprintf(k->sigv4, sizeof k->sigv4, "aws:amz:%s:kinesis", cfg->region);
    if (apply_creds(k) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    k->http.connect_timeout_ms = cfg->connect_timeout_ms;
    CURL *c = k->http.curl;
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, k->sigv4);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    /* No waiting for "100 Continue" on large bodies. (An empty "Expect:"
     * header would do it too, but curl 7.88's SigV4 then signs a header it
     * never sends: curl/curl#11664.) */
    curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
    curl_easy_setopt(c, CURLOPT_DNS_CACHE_TIMEOUT, 60L);
    if (cfg->tls_insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (cfg->ca_file[0]) {
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
    } else if (cfg->ca_dir[0]) {
        curl_easy_setopt(c, CURLOPT_CAPATH, cfg->ca_dir);
    }
    return 0;
}

void kte_kinesis_restored(struct kte_kinesis *k)
{
    k->http.fresh_connect = true;
    kte_creds_invalidate(&k->creds);
}

void kte_kinesis_free(struct kte_kinesis *k)
{
    curl_slist_free_all(k->headers);
    k->headers = NULL;
    memset(k->userpwd, 0, sizeof k->userpwd);
    kte_creds_provider_free(&k->creds);
    kte_http_free(&k->http);
}

/* Valid credentials in the client for a request now; -1 with the reason. */
static int ready_creds(struct kte_kinesis *k, char *error_code, size_t error_code_len)
{
    char err[300];
    if (kte_creds_ensure(&k->creds, kte_epoch_ms(), err, sizeof err) != 0) {
        snprintf(error_code, error_code_len, "no valid credentials: %s", err);
        return -1;
    }
    if (k->creds_version != k->creds.version && apply_creds(k) != 0) {
        snprintf(error_code, error_code_len, "OutOfMemory");
        return -1;
    }
    return 0;
}

bool kte_kinesis_refuses_cbor(long status, const char *error_code)
{
    static const char *const protocol_codes[] = {
        "UnknownOperationException", "SerializationException",      "UnsupportedMediaTypeException",
        "UnsupportedMediaType",      "InvalidContentTypeException",
    };
    if (status < 400 || status > 499 || status == 401 || status == 403 || status == 408 ||
        status == 429)
        return false;
    if (!strncmp(error_code, "HTTP ", 5))
        return true;
    for (size_t i = 0; i < sizeof protocol_codes / sizeof protocol_codes[0]; i++)
        if (!strcmp(error_code, protocol_codes[i]))
            return true;
    return false;
}

/* The error code of an error body: in CBOR mode the answer may still be JSON
 * (a proxy, or a service refusing CBOR), so both are tried. */
static int error_body_code(const struct kte_kinesis *k, const char *resp, size_t len, char *code,
                           size_t code_len)
{
    if (k->cbor && kte_batch_error_code_cbor(resp, len, code, code_len) == 0)
        return 0;
    return kte_batch_error_code(resp, len, code, code_len);
}

static enum kte_put_status put_once(struct kte_kinesis *k, const struct kte_wire *recs, size_t n,
                                    long timeout_ms, struct kte_rec_result *results,
                                    char *error_code, size_t error_code_len, long *http_status)
{
    struct kte_buf body;
    kte_buf_init(&body);
    error_code[0] = '\0';
    *http_status = 0;
    int built = k->cbor
                    ? kte_cbor_body_wire(&body, k->cfg->stream_name, k->cfg->stream_arn, recs, n)
                    : kte_batch_body_wire(&body, k->cfg->stream_name, k->cfg->stream_arn, recs, n);
    if (built != 0) {
        snprintf(error_code, error_code_len, "OutOfMemory");
        kte_buf_free(&body);
        return KTE_PUT_RETRY;
    }
    long status = 0;
    CURLcode rc = kte_http_request(&k->http, "POST", k->url, k->headers, body.data, body.len,
                                   timeout_ms, &status);
    kte_buf_free(&body);
    *http_status = status;

    const char *resp = k->http.body.data ? k->http.body.data : "";
    size_t resp_len = k->http.body.len;
    if (rc != CURLE_OK) {
        /* curl's generic text for the code, not its detailed message: the
         * detail changes from call to call (ports, milliseconds) and the
         * caller logs each kind of failure once. */
        snprintf(error_code, error_code_len, "%s (curl error %d)", curl_easy_strerror(rc), (int)rc);
        return KTE_PUT_RETRY;
    }
    if (status == 200) {
        char err[200];
        int failed =
            k->cbor ? kte_batch_parse_response_cbor(resp, resp_len, n, results, err, sizeof err)
                    : kte_batch_parse_response(resp, resp_len, n, results, err, sizeof err);
        if (failed < 0) {
            /* A 200 we cannot read may have stored everything: resending risks
             * duplicates, dropping risks loss. At-least-once wins. */
            snprintf(error_code, error_code_len, "UnreadableResponse");
            KTE_WARN("PutRecords answered 200 with an unreadable body (%s); resending", err);
            return KTE_PUT_RETRY;
        }
        return KTE_PUT_OK;
    }
    if (error_body_code(k, resp, resp_len, error_code, error_code_len) != 0)
        snprintf(error_code, error_code_len, "HTTP %ld", status);
    if (status >= 500 || status == 429 || status == 408)
        return KTE_PUT_RETRY;
    if (strncmp(error_code, "HTTP ", 5) == 0)
        return KTE_PUT_RETRY; /* a 4xx without an AWS error: likely a proxy; try again */
    return kte_batch_classify(error_code) == KTE_REC_RETRY ? KTE_PUT_RETRY : KTE_PUT_PERMANENT;
}

/* put_once, and with CBOR refused once more in JSON (for the rest of the
 * process: the service will not change its mind within a sandbox's life). */
static enum kte_put_status put_protocol(struct kte_kinesis *k, const struct kte_wire *recs,
                                        size_t n, long timeout_ms, struct kte_rec_result *results,
                                        char *error_code, size_t error_code_len)
{
    long status;
    enum kte_put_status st =
        put_once(k, recs, n, timeout_ms, results, error_code, error_code_len, &status);
    if (!k->cbor || !kte_kinesis_refuses_cbor(status, error_code))
        return st;
    KTE_WARN("PutRecords in CBOR refused (HTTP %ld, %s): using JSON from now on", status,
             error_code);
    k->cbor = false;
    k->protocol_fallbacks++;
    if (apply_creds(k) != 0) {
        snprintf(error_code, error_code_len, "OutOfMemory");
        return KTE_PUT_RETRY;
    }
    return put_once(k, recs, n, timeout_ms, results, error_code, error_code_len, &status);
}

enum kte_put_status kte_kinesis_put(struct kte_kinesis *k, const struct kte_wire *recs, size_t n,
                                    long timeout_ms, struct kte_rec_result *results,
                                    char *error_code, size_t error_code_len)
{
    if (ready_creds(k, error_code, error_code_len) != 0)
        return KTE_PUT_RETRY; /* the records wait; the endpoint may answer later */
    enum kte_put_status st =
        put_protocol(k, recs, n, timeout_ms, results, error_code, error_code_len);
    if (st == KTE_PUT_OK || !kte_creds_error_is_expired(error_code) ||
        !kte_creds_refreshable(&k->creds))
        return st;
    /* Refused for credentials that expired (or were revoked) before their
     * Expiration: a fresh set and one more try; then the normal retry path.
     * Not a permanent failure: the records are not at fault. */
    k->creds_refusals++;
    KTE_INFO("PutRecords refused (%s): refreshing the credentials", error_code);
    kte_creds_invalidate(&k->creds);
    if (ready_creds(k, error_code, error_code_len) != 0)
        return KTE_PUT_RETRY;
    st = put_protocol(k, recs, n, timeout_ms, results, error_code, error_code_len);
    return st == KTE_PUT_PERMANENT && kte_creds_error_is_expired(error_code) ? KTE_PUT_RETRY : st;
}
