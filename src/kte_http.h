/* A thin owner of one libcurl easy handle: reused across requests so the
 * connection stays alive, with the response body and one chosen response
 * header collected. Not thread-safe: one per thread. */
#ifndef KTE_HTTP_H
#define KTE_HTTP_H

#include "kte_buf.h"

#include <curl/curl.h>
#include <stdbool.h>

struct kte_http {
    CURL *curl;
    struct kte_buf body;
    const char *want_header; /* case-insensitive name, or NULL */
    long connect_timeout_ms;
    bool fresh_connect; /* the next request opens a new connection (then cleared) */
    char header_value[256];
    char errbuf[CURL_ERROR_SIZE];
};

int kte_http_init(struct kte_http *h);
void kte_http_free(struct kte_http *h);

/* Performs one request. headers may be NULL. timeout_ms 0 means none (long
 * polls). On return h->body holds the response body. Returns the CURLcode;
 * *status is the HTTP status (0 when no response). */
CURLcode kte_http_request(struct kte_http *h, const char *method, const char *url,
                          struct curl_slist *headers, const char *body, size_t body_len,
                          long timeout_ms, long *status);

/* libcurl's header callback, one header line per call: copies the value of
 * want_header (trimmed, cut to fit) into header_value. Exposed for the fuzz
 * harness, which feeds it register answers. */
size_t kte_http_on_header(char *p, size_t size, size_t nmemb, void *ud);

#endif
