#include "kte_lambda_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

int kte_lambda_api_init(struct kte_lambda_api *api, const char *runtime_api)
{
    memset(api, 0, sizeof *api);
    if (kte_http_init(&api->http) != 0)
        return -1;
    snprintf(api->base, sizeof api->base, "http://%s", runtime_api);
    return 0;
}

void kte_lambda_api_free(struct kte_lambda_api *api)
{
    kte_http_free(&api->http);
}

static struct curl_slist *id_headers(struct kte_lambda_api *api, const char *extra)
{
    char h[300];
    snprintf(h, sizeof h, "Lambda-Extension-Identifier: %s", api->ext_id);
    struct curl_slist *l = curl_slist_append(NULL, h);
    if (l)
        l = curl_slist_append(l, "Content-Type: application/json");
    if (l && extra)
        l = curl_slist_append(l, extra);
    return l;
}

/* Describes a failed call for an init error or a log line: status, body. */
static void describe(struct kte_lambda_api *api, const char *what, CURLcode rc, long status,
                     char *err, size_t errlen)
{
    if (rc != CURLE_OK)
        snprintf(err, errlen, "%s failed: %s", what,
                 api->http.errbuf[0] ? api->http.errbuf : curl_easy_strerror(rc));
    else
        snprintf(err, errlen, "%s answered HTTP %ld: %.300s", what, status,
                 api->http.body.data ? api->http.body.data : "");
}

int kte_lambda_register(struct kte_lambda_api *api, const char *name, bool shutdown_only, char *err,
                        size_t errlen)
{
    char url[400], hname[300];
    snprintf(url, sizeof url, "%s/2020-01-01/extension/register", api->base);
    snprintf(hname, sizeof hname, "Lambda-Extension-Name: %s", name);
    struct curl_slist *h = curl_slist_append(NULL, hname);
    h = curl_slist_append(h, "Content-Type: application/json");
    const char *body =
        shutdown_only ? "{\"events\":[\"SHUTDOWN\"]}" : "{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}";
    api->http.want_header = "Lambda-Extension-Identifier";
    long status;
    CURLcode rc = kte_http_request(&api->http, "POST", url, h, body, strlen(body), 5000, &status);
    api->http.want_header = NULL;
    curl_slist_free_all(h);
    if (rc != CURLE_OK || status != 200 || !api->http.header_value[0]) {
        describe(api, "register", rc, status, err, errlen);
        return -1;
    }
    snprintf(api->ext_id, sizeof api->ext_id, "%s", api->http.header_value);
    return 0;
}

/* A string member of obj, or NULL. */
static const char *get_string(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

int kte_lambda_parse_event(const char *body, size_t len, struct kte_next_event *ev, char *err,
                           size_t errlen)
{
    memset(ev, 0, sizeof *ev);
    char *copy = strndup(body, len);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char ebuf[128] = "";
    yajl_val root = yajl_tree_parse(copy, ebuf, sizeof ebuf);
    free(copy);
    if (!root) {
        snprintf(err, errlen, "event is not JSON: %s", ebuf);
        return -1;
    }
    int rc = -1;
    const char *p_deadline[] = {"deadlineMs", NULL};
    const char *type = get_string(root, "eventType");
    if (!type) {
        snprintf(err, errlen, "event has no eventType");
        goto out;
    }
    if (!strcmp(type, "INVOKE"))
        ev->type = KTE_NEXT_INVOKE;
    else if (!strcmp(type, "SHUTDOWN"))
        ev->type = KTE_NEXT_SHUTDOWN;
    else {
        snprintf(err, errlen, "unknown eventType '%.64s'", type);
        goto out;
    }
    const char *rid = get_string(root, "requestId");
    if (rid)
        snprintf(ev->request_id, sizeof ev->request_id, "%s", rid);
    yajl_val dl = yajl_tree_get(root, p_deadline, yajl_t_any);
    if (dl && YAJL_IS_INTEGER(dl))
        ev->deadline_ms = YAJL_GET_INTEGER(dl);
    else if (dl && YAJL_IS_DOUBLE(dl) && YAJL_GET_DOUBLE(dl) > 0 && YAJL_GET_DOUBLE(dl) < 9e15)
        ev->deadline_ms = (int64_t)YAJL_GET_DOUBLE(dl);
    else if (get_string(root, "deadlineMs")) /* the published SHUTDOWN example has a string */
        ev->deadline_ms = strtoll(get_string(root, "deadlineMs"), NULL, 10);
    const char *reason = get_string(root, "shutdownReason");
    if (reason) {
        /* Docs say SPINDOWN, the wire says spindown: compare lower-cased. */
        snprintf(ev->shutdown_reason, sizeof ev->shutdown_reason, "%s", reason);
        for (char *c = ev->shutdown_reason; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    rc = 0;
out:
    yajl_tree_free(root);
    return rc;
}

int kte_lambda_next(struct kte_lambda_api *api, struct kte_next_event *ev, char *err, size_t errlen)
{
    char url[400];
    snprintf(url, sizeof url, "%s/2020-01-01/extension/event/next", api->base);
    struct curl_slist *h = id_headers(api, NULL);
    long status;
    CURLcode rc = kte_http_request(&api->http, "GET", url, h, NULL, 0, 0, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK || status != 200) {
        describe(api, "event/next", rc, status, err, errlen);
        return -1;
    }
    return kte_lambda_parse_event(api->http.body.data ? api->http.body.data : "",
                                  api->http.body.len, ev, err, errlen);
}

int kte_lambda_report_error(struct kte_lambda_api *api, bool init, const char *error_type,
                            const char *message)
{
    char url[400], th[200];
    snprintf(url, sizeof url, "%s/2020-01-01/extension/%s/error", api->base,
             init ? "init" : "exit");
    snprintf(th, sizeof th, "Lambda-Extension-Function-Error-Type: %s", error_type);
    struct curl_slist *h = id_headers(api, th);
    struct kte_buf body;
    kte_buf_init(&body);
    int rc = -1;
    if (kte_buf_puts(&body, "{\"errorType\":") ||
        kte_buf_json_string(&body, error_type, strlen(error_type)) ||
        kte_buf_puts(&body, ",\"errorMessage\":") ||
        kte_buf_json_string(&body, message, strlen(message)) ||
        kte_buf_puts(&body, ",\"stackTrace\":[]}"))
        goto out;
    long status;
    if (kte_http_request(&api->http, "POST", url, h, body.data, body.len, 2000, &status) ==
            CURLE_OK &&
        status == 202)
        rc = 0;
out:
    kte_buf_free(&body);
    curl_slist_free_all(h);
    return rc;
}

int kte_lambda_subscribe_body(const struct kte_config *cfg, const char *uri, struct kte_buf *out)
{
    if (kte_buf_printf(out,
                       "{\"schemaVersion\":\"%s\",\"destination\":{\"protocol\":\"HTTP\","
                       "\"URI\":",
                       cfg->schema_version) ||
        kte_buf_json_string(out, uri, strlen(uri)) || kte_buf_puts(out, "},\"types\":["))
        return -1;
    static const struct {
        unsigned bit;
        const char *name;
    } types[] = {{KTE_TYPE_PLATFORM, "platform"},
                 {KTE_TYPE_FUNCTION, "function"},
                 {KTE_TYPE_EXTENSION, "extension"}};
    int first = 1;
    for (size_t i = 0; i < 3; i++) {
        if (!(cfg->types & types[i].bit))
            continue;
        if (kte_buf_printf(out, "%s\"%s\"", first ? "" : ",", types[i].name))
            return -1;
        first = 0;
    }
    return kte_buf_printf(out,
                          "],\"buffering\":{\"maxItems\":%ld,\"maxBytes\":%ld,"
                          "\"timeoutMs\":%ld}}",
                          cfg->buffer_max_items, cfg->buffer_max_bytes, cfg->buffer_timeout_ms);
}

int kte_lambda_subscribe(struct kte_lambda_api *api, const struct kte_config *cfg, const char *uri,
                         char *err, size_t errlen)
{
    char url[400];
    snprintf(url, sizeof url, "%s/2022-07-01/telemetry", api->base);
    struct kte_buf body;
    kte_buf_init(&body);
    if (kte_lambda_subscribe_body(cfg, uri, &body)) {
        kte_buf_free(&body);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct curl_slist *h = id_headers(api, NULL);
    long status;
    CURLcode rc = kte_http_request(&api->http, "PUT", url, h, body.data, body.len, 5000, &status);
    curl_slist_free_all(h);
    kte_buf_free(&body);
    if (rc != CURLE_OK || status != 200) {
        describe(api, "telemetry subscribe", rc, status, err, errlen);
        return -1;
    }
    return 0;
}
