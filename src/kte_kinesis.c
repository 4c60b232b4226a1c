#include "kte_kinesis.h"

#include "kte_log.h"

#include <stdio.h>
#include <string.h>

int kte_kinesis_init(struct kte_kinesis *k, const struct kte_config *cfg)
{
    memset(k, 0, sizeof *k);
    k->cfg = cfg;
    if (kte_http_init(&k->http) != 0)
        return -1;
    snprintf(k->url, sizeof k->url, "%s/", cfg->endpoint);
    snprintf(k->sigv4, sizeof k->sigv4, "aws:amz:%s:kinesis", cfg->region);
    snprintf(k->userpwd, sizeof k->userpwd, "%s:%s", cfg->access_key_id, cfg->secret_access_key);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/x-amz-json-1.1");
    h = curl_slist_append(h, "X-Amz-Target: Kinesis_20131202.PutRecords");
    if (h && cfg->session_token[0]) {
        /* Passed as a header so that curl's SigV4 signs it, as STS requires. */
        char tok[sizeof cfg->session_token + 32];
        snprintf(tok, sizeof tok, "X-Amz-Security-Token: %s", cfg->session_token);
        h = curl_slist_append(h, tok);
    }
    if (!h)
        return -1;
    k->headers = h;

    k->http.connect_timeout_ms = cfg->connect_timeout_ms;
    CURL *c = k->http.curl;
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, k->sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, k->userpwd);
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

void kte_kinesis_free(struct kte_kinesis *k)
{
    curl_slist_free_all(k->headers);
    kte_http_free(&k->http);
}

enum kte_put_status kte_kinesis_put(struct kte_kinesis *k, const struct kte_wire *recs, size_t n,
                                    long timeout_ms, struct kte_rec_result *results,
                                    char *error_code, size_t error_code_len)
{
    struct kte_buf body;
    kte_buf_init(&body);
    error_code[0] = '\0';
    if (kte_batch_body_wire(&body, k->cfg->stream_name, k->cfg->stream_arn, recs, n) != 0) {
        snprintf(error_code, error_code_len, "OutOfMemory");
        kte_buf_free(&body);
        return KTE_PUT_RETRY;
    }
    long status = 0;
    CURLcode rc = kte_http_request(&k->http, "POST", k->url, k->headers, body.data, body.len,
                                   timeout_ms, &status);
    kte_buf_free(&body);

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
        if (kte_batch_parse_response(resp, resp_len, n, results, err, sizeof err) < 0) {
            /* A 200 we cannot read may have stored everything: resending risks
             * duplicates, dropping risks loss. At-least-once wins. */
            snprintf(error_code, error_code_len, "UnreadableResponse");
            KTE_WARN("PutRecords answered 200 with an unreadable body (%s); resending", err);
            return KTE_PUT_RETRY;
        }
        return KTE_PUT_OK;
    }
    if (kte_batch_error_code(resp, resp_len, error_code, error_code_len) != 0)
        snprintf(error_code, error_code_len, "HTTP %ld", status);
    if (status >= 500 || status == 429 || status == 408)
        return KTE_PUT_RETRY;
    if (strncmp(error_code, "HTTP ", 5) == 0)
        return KTE_PUT_RETRY; /* a 4xx without an AWS error: likely a proxy; try again */
    return kte_batch_classify(error_code) == KTE_REC_RETRY ? KTE_PUT_RETRY : KTE_PUT_PERMANENT;
}
