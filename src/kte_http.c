#include "kte_http.h"

#include <string.h>
#include <strings.h>

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct kte_http *h = ud;
    size_t n = size * nmemb;
    return kte_buf_append(&h->body, p, n) == 0 ? n : 0;
}

/* White space around a header value. CR, LF and NUL inside a value count as
 * spaces, as RFC 9110 5.5 tells a recipient to treat them. */
static int field_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\0';
}

size_t kte_http_on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct kte_http *h = ud;
    size_t n = size * nmemb;
    size_t name_len = h->want_header ? strlen(h->want_header) : 0;
    if (name_len && n > name_len + 1 && p[name_len] == ':' &&
        strncasecmp(p, h->want_header, name_len) == 0) {
        const char *v = p + name_len + 1;
        const char *end = p + n;
        while (v < end && field_space(*v))
            v++;
        if ((size_t)(end - v) >= sizeof h->header_value)
            end = v + sizeof h->header_value - 1;
        while (end > v && field_space(end[-1]))
            end--;
        size_t len = (size_t)(end - v);
        for (size_t i = 0; i < len; i++)
            h->header_value[i] = field_space(v[i]) ? ' ' : v[i];
        h->header_value[len] = '\0';
    }
    return n;
}

int kte_http_init(struct kte_http *h)
{
    memset(h, 0, sizeof *h);
    kte_buf_init(&h->body);
    h->connect_timeout_ms = 2000;
    h->curl = curl_easy_init();
    return h->curl ? 0 : -1;
}

void kte_http_free(struct kte_http *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    kte_buf_free(&h->body);
    h->curl = NULL;
}

CURLcode kte_http_request(struct kte_http *h, const char *method, const char *url,
                          struct curl_slist *headers, const char *body, size_t body_len,
                          long timeout_ms, long *status)
{
    CURL *c = h->curl;
    kte_buf_reset(&h->body);
    h->header_value[0] = '\0';
    h->errbuf[0] = '\0';
    /* Options are set on every call because the handle is shared by calls
     * with different methods; curl keeps the connection across them. */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, kte_http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, strcmp(method, "GET") ? method : NULL);
    }
    /* After a SnapStart restore a kept-alive connection belongs to another
     * machine's past: open a new one. */
    curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, h->fresh_connect ? 1L : 0L);
    h->fresh_connect = false;
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    *status = rc == CURLE_OK ? code : 0;
    return rc;
}
