#include "kte_creds.h"

#include "kte_clock.h"
#include "kte_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yajl/yajl_tree.h>

int64_t kte_creds_refresh_at(const struct kte_creds *c)
{
    if (!c->expiration_ms)
        return INT64_MAX;
    int64_t lifetime = c->expiration_ms - c->fetched_ms;
    int64_t margin = lifetime / 4;
    if (margin > KTE_CREDS_MAX_MARGIN_MS)
        margin = KTE_CREDS_MAX_MARGIN_MS;
    if (margin < KTE_CREDS_MIN_MARGIN_MS)
        margin = 0;
    return c->expiration_ms - margin;
}

bool kte_creds_refresh_due(const struct kte_creds *c, int64_t now_ms)
{
    return now_ms >= kte_creds_refresh_at(c);
}

static int digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = (*s)[i];
        if (ch < '0' || ch > '9')
            return -1;
        v = v * 10 + (ch - '0');
    }
    *s += n;
    *out = v;
    return 0;
}

int kte_creds_parse_time(const char *s, int64_t *epoch_ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec;
    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, &d) || (*s != 'T' && *s != 't' && *s != ' '))
        return -1;
    s++;
    if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
        digits(&s, 2, &sec))
        return -1;
    /* Before 1970 is no expiration a provider hands out, and a negative
     * epoch would read as "already expired" at every request. */
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    int64_t ms = 0;
    if (*s == '.') {
        s++;
        int n = 0, scale = 100;
        while (*s >= '0' && *s <= '9') {
            if (scale) {
                ms += (*s - '0') * scale;
                scale /= 10;
            }
            s++, n++;
        }
        if (!n)
            return -1;
    }
    int64_t offset_s = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1, oh, om;
        if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om))
            return -1;
        offset_s = sign * (oh * 3600 + om * 60);
    } else {
        return -1;
    }
    if (*s)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    int64_t when = ((int64_t)t - offset_s) * 1000 + ms;
    if (when <= 0) /* 0 means "does not expire" in struct kte_creds */
        return -1;
    *epoch_ms = when;
    return 0;
}

static int copy_field(yajl_val root, const char *name, char *dst, size_t cap, bool required,
                      char *err, size_t errlen)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(root, path, yajl_t_string);
    if (!v) {
        if (!required) {
            dst[0] = '\0';
            return 0;
        }
        snprintf(err, errlen, "the answer has no string \"%s\"", name);
        return -1;
    }
    const char *s = YAJL_GET_STRING(v);
    size_t n = strlen(s);
    if (n >= cap || (required && !n)) {
        snprintf(err, errlen, "\"%s\" is %s", name, n ? "too long" : "empty");
        return -1;
    }
    /* Goes into an HTTP header and curl's user:password: no line breaks,
     * and no ':' in the key id. */
    if (strpbrk(s, "\r\n") || (!strcmp(name, "AccessKeyId") && strchr(s, ':'))) {
        snprintf(err, errlen, "\"%s\" has characters no credential has", name);
        return -1;
    }
    memcpy(dst, s, n + 1);
    return 0;
}

int kte_creds_parse(const char *body, size_t len, struct kte_creds *out, char *err, size_t errlen)
{
    char *text = malloc(len + 1);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(text, body, len);
    text[len] = '\0';
    char perr[128];
    yajl_val root = yajl_tree_parse(text, perr, sizeof perr);
    free(text);
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "the answer is not a JSON object");
        yajl_tree_free(root);
        return -1;
    }
    struct kte_creds c;
    memset(&c, 0, sizeof c);
    char exp[64];
    int rc = -1;
    if (copy_field(root, "AccessKeyId", c.access_key_id, sizeof c.access_key_id, true, err,
                   errlen) ||
        copy_field(root, "SecretAccessKey", c.secret_access_key, sizeof c.secret_access_key, true,
                   err, errlen) ||
        copy_field(root, "Token", c.session_token, sizeof c.session_token, false, err, errlen) ||
        copy_field(root, "Expiration", exp, sizeof exp, false, err, errlen))
        goto out;
    if (exp[0] && kte_creds_parse_time(exp, &c.expiration_ms) != 0) {
        snprintf(err, errlen, "\"Expiration\" is not an ISO 8601 time: '%s'", exp);
        goto out;
    }
    c.fetched_ms = out->fetched_ms;
    *out = c;
    rc = 0;
out:
    yajl_tree_free(root);
    return rc;
}

bool kte_creds_uri_allowed(const char *uri)
{
    if (!strncasecmp(uri, "https://", 8))
        return uri[8] != '\0';
    if (strncasecmp(uri, "http://", 7) != 0)
        return false;
    if (kte_url_is_loopback(uri))
        return true;
    const char *h = uri + 7;
    static const char *const hosts[] = {"169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        size_t n = strlen(hosts[i]);
        if (!strncasecmp(h, hosts[i], n) &&
            (h[n] == '\0' || h[n] == ':' || h[n] == '/' || h[n] == '?'))
            return true;
    }
    return false;
}

bool kte_creds_error_is_expired(const char *code)
{
    /* Not InvalidSignatureException or RequestExpired: those are a wrong
     * region or clock, which new credentials do not cure. */
    static const char *const codes[] = {"ExpiredTokenException", "ExpiredToken",
                                        "UnrecognizedClientException"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strcmp(code, codes[i]))
            return true;
    return false;
}

/* ---- the provider ------------------------------------------------------- */

static void from_env(struct kte_creds_provider *p)
{
    const struct kte_config *cfg = p->cfg;
    memset(&p->cur, 0, sizeof p->cur);
    snprintf(p->cur.access_key_id, sizeof p->cur.access_key_id, "%s", cfg->access_key_id);
    snprintf(p->cur.secret_access_key, sizeof p->cur.secret_access_key, "%s",
             cfg->secret_access_key);
    snprintf(p->cur.session_token, sizeof p->cur.session_token, "%s", cfg->session_token);
    p->have = true;
    p->version++;
}

/* The token, read fresh from its file each time (it is rotated there). */
static int read_token(const struct kte_config *cfg, char *tok, size_t cap, char *err, size_t errlen)
{
    if (!cfg->container_token_file[0]) {
        snprintf(tok, cap, "%s", cfg->container_token);
        return 0;
    }
    FILE *f = fopen(cfg->container_token_file, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%s'",
                 cfg->container_token_file);
        return -1;
    }
    size_t n = fread(tok, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    fclose(f);
    tok[n] = '\0';
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
        tok[--n] = '\0';
    if (more || !n || strpbrk(tok, "\r\n")) {
        snprintf(err, errlen,
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '%s' does not hold one token of at most "
                 "%zu characters",
                 cfg->container_token_file, cap - 1);
        return -1;
    }
    return 0;
}

static int fetch(struct kte_creds_provider *p, int64_t now_ms, char *err, size_t errlen)
{
    const struct kte_config *cfg = p->cfg;
    char tok[4096];
    if (read_token(cfg, tok, sizeof tok, err, errlen) != 0)
        return -1;
    struct curl_slist *h = NULL;
    if (tok[0]) {
        char line[sizeof tok + 32];
        snprintf(line, sizeof line, "Authorization: %s", tok);
        h = curl_slist_append(NULL, line);
        memset(line, 0, sizeof line);
        if (!h) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    memset(tok, 0, sizeof tok);
    long status = 0;
    CURLcode rc = kte_http_request(&p->http, "GET", cfg->container_uri, h, NULL, 0, 2000, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "container credentials endpoint %s: %s", cfg->container_uri,
                 curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "container credentials endpoint %s answered HTTP %ld%s",
                 cfg->container_uri, status,
                 status == 401 || status == 403 ? " (authorization token refused)" : "");
        return -1;
    }
    struct kte_creds c;
    memset(&c, 0, sizeof c);
    c.fetched_ms = now_ms;
    char perr[160];
    if (kte_creds_parse(p->http.body.data ? p->http.body.data : "", p->http.body.len, &c, perr,
                        sizeof perr) != 0) {
        snprintf(err, errlen, "container credentials endpoint %s: %s", cfg->container_uri, perr);
        memset(&c, 0, sizeof c);
        return -1;
    }
    memset(p->http.body.data, 0, p->http.body.len); /* no copy of a secret left behind */
    bool same = p->have && !strcmp(c.access_key_id, p->cur.access_key_id) &&
                !strcmp(c.secret_access_key, p->cur.secret_access_key) &&
                !strcmp(c.session_token, p->cur.session_token);
    p->cur = c;
    memset(&c, 0, sizeof c);
    p->have = true;
    p->stale = false;
    p->fetches++;
    if (!same)
        p->version++;
    /* The key id names a key, not a secret: it helps tell sets apart. */
    KTE_DEBUG("container credentials %s, key %.8s..., expire in %lld s",
              same ? "unchanged" : "refreshed", p->cur.access_key_id,
              p->cur.expiration_ms ? (long long)(p->cur.expiration_ms - now_ms) / 1000 : -1LL);
    return 0;
}

int kte_creds_provider_init(struct kte_creds_provider *p, const struct kte_config *cfg, char *err,
                            size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    if (cfg->creds_source == KTE_CREDS_ENV) {
        from_env(p);
        return 0;
    }
    if (kte_http_init(&p->http) != 0) {
        snprintf(err, errlen, "cannot initialise libcurl");
        return -1;
    }
    p->http.connect_timeout_ms = 1000;
    return fetch(p, kte_epoch_ms(), err, errlen);
}

void kte_creds_provider_free(struct kte_creds_provider *p)
{
    if (p->cfg && p->cfg->creds_source == KTE_CREDS_CONTAINER)
        kte_http_free(&p->http);
    memset(&p->cur, 0, sizeof p->cur);
}

bool kte_creds_refreshable(const struct kte_creds_provider *p)
{
    return p->cfg->creds_source == KTE_CREDS_CONTAINER;
}

void kte_creds_invalidate(struct kte_creds_provider *p)
{
    if (!kte_creds_refreshable(p))
        return;
    p->stale = true;
    p->retry_at_ms = 0;
    p->http.fresh_connect = true;
}

bool kte_creds_should_fetch(const struct kte_creds *cur, bool have, bool stale, int64_t retry_at_ms,
                            int64_t now_ms)
{
    if (!have)
        return true;
    if (!stale && !kte_creds_refresh_due(cur, now_ms))
        return false;
    /* Not more often than retry_at_ms, even when due: an endpoint answers
     * with the same set until it expires (Expiration has whole seconds, the
     * endpoint's clock may not), and a failing endpoint is not hammered. The
     * set it answered last is used meanwhile; Kinesis has the last word. */
    return now_ms >= retry_at_ms;
}

int64_t kte_creds_next_fetch(bool ok, int64_t now_ms)
{
    return now_ms + (ok ? KTE_CREDS_MIN_INTERVAL_MS : KTE_CREDS_RETRY_MS);
}

int kte_creds_ensure(struct kte_creds_provider *p, int64_t now_ms, char *err, size_t errlen)
{
    if (!kte_creds_refreshable(p) ||
        !kte_creds_should_fetch(&p->cur, p->have, p->stale, p->retry_at_ms, now_ms))
        return 0;
    int rc = fetch(p, now_ms, err, errlen);
    p->retry_at_ms = kte_creds_next_fetch(rc == 0, now_ms);
    if (rc == 0)
        return 0;
    /* Keep using a set that has not expired: the endpoint may recover. */
    return p->have && (!p->cur.expiration_ms || now_ms < p->cur.expiration_ms) ? 0 : -1;
}
