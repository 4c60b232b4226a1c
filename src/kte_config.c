#include "kte_config.h"

#include "kte_cbor.h"
#include "kte_creds.h"
#include "kte_log.h"
#include "kte_rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define ERR_INVALID "Extension.ConfigInvalid"
#define ERR_MISSING "Extension.ConfigMissing"

struct ctx {
    kte_getenv_fn get;
    void *env;
    char *errtype;
    size_t errtype_len;
    char *msg;
    size_t msg_len;
};

const char *kte_config_process_env(const char *name, void *ctx)
{
    (void)ctx;
    return getenv(name);
}

static const char *get(struct ctx *c, const char *name)
{
    const char *v = c->get(name, c->env);
    return (v && *v) ? v : NULL; /* an empty variable means "not set" */
}

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, const char *type,
                                                      const char *fmt, ...)
{
    snprintf(c->errtype, c->errtype_len, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, c->msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

static int copy_str(struct ctx *c, const char *name, const char *v, char *dst, size_t cap)
{
    size_t n = strlen(v);
    if (n >= cap)
        return fail(c, ERR_INVALID, "%s is %zu characters long; at most %zu are supported", name, n,
                    cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

/* Whether s is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s++;
        int more;
        unsigned cp, min;
        if (c < 0x80)
            continue;
        if (c >= 0xC2 && c <= 0xDF)
            more = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
            more = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
            more = 3, cp = c & 0x07, min = 0x10000;
        else
            return false;
        for (; more; more--, s++) {
            if ((*s & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (*s & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
    }
    return true;
}

/* A value copied into every record's JSON envelope: JSON text is UTF-8, so
 * anything else would make every record invalid. Refused at start rather
 * than escaped: Lambda only sets these to ASCII, so a bad value is a
 * misconfiguration to show, not data to carry. */
static int copy_envelope_str(struct ctx *c, const char *name, const char *v, char *dst, size_t cap)
{
    if (!utf8_valid((const unsigned char *)v))
        return fail(c, ERR_INVALID,
                    "%s is not valid UTF-8; it goes into every record's JSON envelope", name);
    return copy_str(c, name, v, dst, cap);
}

/* Integer variable in [lo, hi]; def when unset. */
static int get_long(struct ctx *c, const char *name, long def, long lo, long hi, const char *why,
                    long *out)
{
    const char *v = get(c, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0')
        return fail(c, ERR_INVALID, "%s='%s' is not a whole number; use a value from %ld to %ld%s",
                    name, v, lo, hi, why);
    if (x < lo || x > hi)
        return fail(c, ERR_INVALID, "%s=%ld is out of range; use a value from %ld to %ld%s", name,
                    x, lo, hi, why);
    *out = x;
    return 0;
}

static int load_types(struct ctx *c, struct kte_config *cfg)
{
    const char *v = get(c, "KTE_TYPES");
    if (!v) {
        cfg->types = KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION;
        return 0;
    }
    char tmp[256];
    if (strlen(v) >= sizeof tmp)
        return fail(c, ERR_INVALID,
                    "KTE_TYPES is too long; use a comma-separated list of "
                    "platform, function, extension");
    strcpy(tmp, v);
    cfg->types = 0;
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        unsigned bit = 0;
        if (!strcmp(t, "platform"))
            bit = KTE_TYPE_PLATFORM;
        else if (!strcmp(t, "function"))
            bit = KTE_TYPE_FUNCTION;
        else if (!strcmp(t, "extension"))
            bit = KTE_TYPE_EXTENSION;
        else
            return fail(c, ERR_INVALID,
                        "KTE_TYPES='%s' names unknown type '%s'; allowed: platform, function, "
                        "extension (comma-separated)",
                        v, t);
        cfg->types |= bit;
    }
    if (!cfg->types)
        return fail(c, ERR_INVALID,
                    "KTE_TYPES='%s' names no type; allowed: platform, function, "
                    "extension (comma-separated)",
                    v);
    return 0;
}

static int load_flush(struct ctx *c, struct kte_config *cfg)
{
    const char *v = get(c, "KTE_FLUSH");
    cfg->flush_mode = KTE_FLUSH_ADAPTIVE;
    cfg->flush_interval_ms = 0;
    /* The adaptive mode's bound on an event's delivery latency; its sender
     * timer runs at a quarter of it, so that an event that waits a whole
     * timer period plus a predicted freeze still makes it, and batches stay
     * small enough to drain within a shutdown (docs/flush.md). */
    if (get_long(c, "KTE_MAX_LATENCY_MS", 2000, 200, 900000, "", &cfg->max_latency_ms))
        return -1;
    if (!v || !strcmp(v, "adaptive")) {
        cfg->flush_interval_ms = cfg->max_latency_ms / 4;
        goto managed;
    }
    if (!strcmp(v, "end")) {
        cfg->flush_mode = KTE_FLUSH_END;
        goto managed;
    }
    if (!strcmp(v, "x-datadog")) { /* bench-only reference strategy */
        cfg->flush_mode = KTE_FLUSH_DATADOG;
        cfg->flush_interval_ms = 20000;
        goto managed;
    }
    const char *comma = strchr(v, ',');
    size_t head = comma ? (size_t)(comma - v) : strlen(v);
    if (head == 8 && !strncmp(v, "periodic", 8))
        cfg->flush_mode = KTE_FLUSH_PERIODIC;
    else if (head == 10 && !strncmp(v, "continuous", 10))
        cfg->flush_mode = KTE_FLUSH_CONTINUOUS;
    else
        return fail(c, ERR_INVALID,
                    "KTE_FLUSH='%s' is not understood; use adaptive, end, periodic,<ms> or "
                    "continuous,<ms>",
                    v);
    char *end;
    errno = 0;
    long ms = comma ? strtol(comma + 1, &end, 10) : 0;
    if (!comma || errno || end == comma + 1 || *end || ms < 1 || ms > 900000)
        return fail(c, ERR_INVALID,
                    "KTE_FLUSH='%s' needs an interval in milliseconds from 1 to "
                    "900000, e.g. %.*s,1000",
                    v, (int)head, v);
    cfg->flush_interval_ms = ms;
managed:
    /* Managed Instances run invokes concurrently and send no INVOKE events to
     * extensions, so "end of invoke" does not exist there: flush on a timer. */
    if (cfg->managed_instances && cfg->flush_mode != KTE_FLUSH_CONTINUOUS) {
        /* periodic keeps its interval; the others get 1 s, as before adaptive */
        if (cfg->flush_mode != KTE_FLUSH_PERIODIC)
            cfg->flush_interval_ms = 1000;
        cfg->flush_mode = KTE_FLUSH_CONTINUOUS;
    }
    return 0;
}

/* A variable naming one of names[] (its index in *out); def when unset. */
static int get_choice(struct ctx *c, const char *name, const char *const *names, int def, int *out)
{
    const char *v = get(c, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char allowed[200] = "";
    for (int i = 0; names[i]; i++) {
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
        strncat(allowed, i ? ", " : "", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, names[i], sizeof allowed - strlen(allowed) - 1);
    }
    return fail(c, ERR_INVALID, "%s='%s' is not understood; use one of: %s", name, v, allowed);
}

static int load_partition_key(struct ctx *c, struct kte_config *cfg)
{
    static const char *const names[] = {"environment", "request", "function",
                                        "random",      "tenant",  NULL};
    int i;
    if (get_choice(c, "KTE_PARTITION_KEY", names, KTE_PK_ENVIRONMENT, &i))
        return -1;
    cfg->partition_key = (enum kte_partition_key)i;
    return 0;
}

static int load_record_format(struct ctx *c, struct kte_config *cfg)
{
    static const char *const names[] = {"event", "kpl", "ndjson", NULL};
    int i;
    if (get_choice(c, "KTE_RECORD_FORMAT", names, KTE_FORMAT_EVENT, &i))
        return -1;
    cfg->record_format = (enum kte_record_format)i;
    static const char *const comp[] = {"none", "gzip", "zstd", NULL};
    if (get_choice(c, "KTE_COMPRESSION", comp, KTE_COMPRESSION_NONE, &i))
        return -1;
    cfg->compression = (enum kte_compression)i;
    if (cfg->compression != KTE_COMPRESSION_NONE && cfg->record_format == KTE_FORMAT_KPL)
        return fail(c, ERR_INVALID,
                    "KTE_COMPRESSION=%s cannot be used with KTE_RECORD_FORMAT=kpl: KPL "
                    "consumers (KCL, Firehose) do not decompress records; use ndjson or "
                    "event with compression, or kpl without",
                    comp[i]);
    return 0;
}

/* cbor by default where it is built in (README, "Wire protocol"); a build
 * without libcbor refuses it rather than quietly sending JSON. */
static int load_protocol(struct ctx *c, struct kte_config *cfg)
{
    static const char *const names[] = {"json", "cbor", NULL};
    int i;
    if (get_choice(c, "KTE_PROTOCOL", names,
                   kte_cbor_available() ? KTE_PROTOCOL_CBOR : KTE_PROTOCOL_JSON, &i))
        return -1;
    cfg->protocol = (enum kte_protocol)i;
    if (cfg->protocol == KTE_PROTOCOL_CBOR && !kte_cbor_available())
        return fail(c, ERR_INVALID,
                    "KTE_PROTOCOL=cbor is not built into this binary (it was built without "
                    "libcbor); use KTE_PROTOCOL=json");
    return 0;
}

const char *const kte_ca_bundle_paths[] = {
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    NULL,
};

/* Whether s[0..n) is a dotted IPv4 address in 127.0.0.0/8. */
static bool is_ipv4_loopback(const char *s, size_t n)
{
    int parts = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (!digits)
                return false;
            parts++;
            digits = 0;
        } else if (s[i] >= '0' && s[i] <= '9' && digits < 3) {
            digits++;
        } else {
            return false;
        }
    }
    return parts == 3 && digits && n > 4 && !strncmp(s, "127.", 4);
}

bool kte_url_is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    if (!h)
        return false;
    h += 3;
    size_t authority = strcspn(h, "/?#");
    /* user@host: the host is after the '@'; refuse rather than guess. */
    if (memchr(h, '@', authority))
        return false;
    if (*h == '[') {
        const char *end = memchr(h, ']', authority);
        return end && end - h == 4 && !strncmp(h, "[::1]", 5) &&
               (end[1] == '\0' || end[1] == ':' || end[1] == '/');
    }
    size_t n = strcspn(h, ":/?#");
    return (n == 9 && !strncasecmp(h, "localhost", 9)) || is_ipv4_loopback(h, n);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Certificate verification is always on for https: find what to trust, or
 * say exactly where we looked. */
static int load_tls(struct ctx *c, struct kte_config *cfg)
{
    const char *insecure = get(c, "KTE_TLS_INSECURE");
    if (insecure && strcmp(insecure, "0") && strcmp(insecure, "false")) {
        if (!kte_url_is_loopback(cfg->endpoint))
            return fail(c, ERR_INVALID,
                        "KTE_TLS_INSECURE is set but KTE_ENDPOINT '%s' is not a "
                        "loopback address; certificate verification can only be "
                        "turned off for 127.0.0.1, ::1 or localhost",
                        cfg->endpoint);
        cfg->tls_insecure = true;
        return 0;
    }
    if (strncmp(cfg->endpoint, "https://", 8) != 0)
        return 0;
    const char *file = get(c, "SSL_CERT_FILE");
    const char *dir = get(c, "SSL_CERT_DIR");
    if (file) {
        if (!is_file(file))
            return fail(c, "Extension.TlsConfig", "SSL_CERT_FILE='%s' is not a readable file",
                        file);
        return copy_str(c, "SSL_CERT_FILE", file, cfg->ca_file, sizeof cfg->ca_file);
    }
    if (dir) {
        if (!is_dir(dir))
            return fail(c, "Extension.TlsConfig", "SSL_CERT_DIR='%s' is not a directory", dir);
        return copy_str(c, "SSL_CERT_DIR", dir, cfg->ca_dir, sizeof cfg->ca_dir);
    }
    for (const char *const *p = kte_ca_bundle_paths; *p; p++)
        if (is_file(*p))
            return copy_str(c, "CA bundle", *p, cfg->ca_file, sizeof cfg->ca_file);
    char tried[600] = "";
    for (const char *const *p = kte_ca_bundle_paths; *p; p++) {
        strncat(tried, *p, sizeof tried - strlen(tried) - 1);
        if (p[1])
            strncat(tried, ", ", sizeof tried - strlen(tried) - 1);
    }
    return fail(c, "Extension.TlsConfig",
                "no CA certificate bundle found to verify %s: SSL_CERT_FILE and SSL_CERT_DIR are "
                "unset and none of %s exists; set SSL_CERT_FILE to a PEM bundle",
                cfg->endpoint, tried);
}

/* The default buffer is a tenth of the function's memory, within [8, 128]
 * MiB: enough for minutes of outage at typical log rates without putting the
 * function itself at risk of running out of memory. */
static long default_buffer_bytes(struct ctx *c)
{
    const char *mem = get(c, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE");
    long mb = mem ? strtol(mem, NULL, 10) : 0;
    if (mb > 10240)
        mb = 10240; /* Lambda's largest size; keeps mb * 1 MiB from overflowing */
    long bytes = mb > 0 ? mb * 1048576L / 10 : 16 * 1048576L;
    if (bytes < 8 * 1048576L)
        bytes = 8 * 1048576L;
    if (bytes > 128 * 1048576L)
        bytes = 128 * 1048576L;
    return bytes;
}

static int load_buffer(struct ctx *c, struct kte_config *cfg)
{
    if (get_long(c, "KTE_MAX_BUFFER_BYTES", default_buffer_bytes(c), 1048576, 1073741824L,
                 " (bytes of buffered records)", &cfg->max_buffer_bytes))
        return -1;
    static const char *const names[] = {"drop-oldest", "drop-newest", NULL};
    int i;
    if (get_choice(c, "KTE_OVERFLOW", names, KTE_OVERFLOW_DROP_OLDEST, &i))
        return -1;
    cfg->overflow = (enum kte_overflow)i;
    return 0;
}

/* arn:aws[-partition]:kinesis:<region>:<12 digits>:stream/<name without
 * white space>, the pattern of the Kinesis API model. Copies the region. */
static int parse_stream_arn(const char *arn, char *region, size_t region_len)
{
    if (strncmp(arn, "arn:aws", 7) != 0)
        return -1;
    const char *p = strchr(arn + 4, ':'); /* end of the partition */
    if (!p || strncmp(p, ":kinesis:", 9) != 0)
        return -1;
    const char *r = p + 9;
    const char *r_end = strchr(r, ':');
    if (!r_end || r_end == r || (size_t)(r_end - r) >= region_len)
        return -1;
    const char *acct = r_end + 1;
    for (int i = 0; i < 12; i++)
        if (acct[i] < '0' || acct[i] > '9')
            return -1;
    if (strncmp(acct + 12, ":stream/", 8) != 0)
        return -1;
    const char *name = acct + 20;
    if (!*name)
        return -1;
    for (const char *q = name; *q; q++)
        if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
            return -1;
    memcpy(region, r, (size_t)(r_end - r));
    region[r_end - r] = '\0';
    return 0;
}

/* Credentials as the AWS SDKs look for them inside Lambda: the environment
 * first; otherwise the container credentials provider (SnapStart gives only
 * that). No credentials at all is an init error naming both sources. */
static int load_credentials(struct ctx *c, struct kte_config *cfg)
{
    const char *ak = get(c, "AWS_ACCESS_KEY_ID");
    const char *sk = get(c, "AWS_SECRET_ACCESS_KEY");
    if (ak || sk) {
        if (!ak || !sk)
            return fail(c, ERR_MISSING,
                        "%s is set but %s is not; set both (Lambda sets them from the "
                        "function's execution role)",
                        ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                        ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        if (strchr(ak, ':'))
            return fail(c, ERR_INVALID, "AWS_ACCESS_KEY_ID contains ':', which no access key has");
        if (copy_str(c, "AWS_ACCESS_KEY_ID", ak, cfg->access_key_id, sizeof cfg->access_key_id) ||
            copy_str(c, "AWS_SECRET_ACCESS_KEY", sk, cfg->secret_access_key,
                     sizeof cfg->secret_access_key))
            return -1;
        const char *tok = get(c, "AWS_SESSION_TOKEN");
        cfg->session_token[0] = '\0';
        if (tok &&
            copy_str(c, "AWS_SESSION_TOKEN", tok, cfg->session_token, sizeof cfg->session_token))
            return -1;
        if (strpbrk(cfg->session_token, "\r\n"))
            return fail(c, ERR_INVALID, "AWS_SESSION_TOKEN contains a line break");
        cfg->creds_source = KTE_CREDS_ENV;
        return 0;
    }

    /* As the SDKs: a relative URI (ECS) wins over a full one. */
    const char *rel = get(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = get(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (!rel && !full)
        return fail(c, ERR_MISSING,
                    "no AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor "
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI (the container credentials endpoint, "
                    "as SnapStart provides) is set; Lambda provides one of them from the "
                    "function's execution role");
    cfg->creds_source = KTE_CREDS_CONTAINER;
    if (rel) {
        if (rel[0] != '/')
            return fail(c, ERR_INVALID,
                        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI='%s' must start with '/'", rel);
        int n =
            snprintf(cfg->container_uri, sizeof cfg->container_uri, "http://169.254.170.2%s", rel);
        if (n < 0 || (size_t)n >= sizeof cfg->container_uri)
            return fail(c, ERR_INVALID, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is too long");
    } else {
        if (!kte_creds_uri_allowed(full))
            return fail(c, ERR_INVALID,
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI='%s' is not allowed: use https, or "
                        "http to a loopback address (127.0.0.0/8, ::1, localhost) or to "
                        "169.254.170.2, 169.254.170.23 or [fd00:ec2::23] (the AWS SDKs' rule)",
                        full);
        if (copy_str(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI", full, cfg->container_uri,
                     sizeof cfg->container_uri))
            return -1;
    }
    /* The token file wins over the token, as in the SDKs. */
    const char *file = get(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = get(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    if (file)
        return copy_str(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file,
                        cfg->container_token_file, sizeof cfg->container_token_file);
    if (tok) {
        if (strpbrk(tok, "\r\n"))
            return fail(c, ERR_INVALID, "AWS_CONTAINER_AUTHORIZATION_TOKEN contains a line break");
        return copy_str(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN", tok, cfg->container_token,
                        sizeof cfg->container_token);
    }
    return 0;
}

static int load_destination(struct ctx *c, struct kte_config *cfg)
{
    char arn_region[64] = "";
    const char *name = get(c, "KTE_STREAM_NAME");
    const char *arn = get(c, "KTE_STREAM_ARN");
    if (!name && !arn)
        return fail(c, ERR_MISSING,
                    "KTE_STREAM_NAME is not set; set it to the name of the "
                    "Kinesis data stream (or set KTE_STREAM_ARN)");
    if (name && arn)
        return fail(c, ERR_INVALID,
                    "both KTE_STREAM_NAME and KTE_STREAM_ARN are set; set only "
                    "one of them");
    if (name) {
        size_t n = strlen(name);
        if (n > 128)
            return fail(c, ERR_INVALID,
                        "KTE_STREAM_NAME is %zu characters; Kinesis stream "
                        "names have 1 to 128",
                        n);
        for (size_t i = 0; i < n; i++) {
            char ch = name[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'))
                return fail(c, ERR_INVALID,
                            "KTE_STREAM_NAME='%s' has character '%c'; stream names use only "
                            "letters, digits, '_', '.' and '-'",
                            name, ch);
        }
        if (copy_str(c, "KTE_STREAM_NAME", name, cfg->stream_name, sizeof cfg->stream_name))
            return -1;
    } else {
        if (parse_stream_arn(arn, arn_region, sizeof arn_region) != 0)
            return fail(
                c, ERR_INVALID,
                "KTE_STREAM_ARN='%s' is not a Kinesis stream ARN "
                "(arn:aws:kinesis:<region>:<account>:stream/<name>, with a 12-digit account)",
                arn);
        if (copy_str(c, "KTE_STREAM_ARN", arn, cfg->stream_arn, sizeof cfg->stream_arn))
            return -1;
    }

    /* A stream ARN names its region; requests go (and are signed) there. */
    const char *region = arn_region[0] ? arn_region : get(c, "AWS_REGION");
    if (!region)
        region = get(c, "AWS_DEFAULT_REGION");
    if (!region)
        return fail(c, ERR_MISSING,
                    "AWS_REGION is not set (Lambda always sets it; outside "
                    "Lambda set AWS_REGION, e.g. us-east-1)");
    if (copy_envelope_str(c, "AWS_REGION", region, cfg->region, sizeof cfg->region))
        return -1;

    const char *ep = get(c, "KTE_ENDPOINT");
    if (ep) {
        if (strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
            return fail(c, ERR_INVALID,
                        "KTE_ENDPOINT='%s' must start with https:// (or http:// "
                        "for a local endpoint)",
                        ep);
        if (copy_str(c, "KTE_ENDPOINT", ep, cfg->endpoint, sizeof cfg->endpoint))
            return -1;
        size_t n = strlen(cfg->endpoint);
        while (n > 8 && cfg->endpoint[n - 1] == '/')
            cfg->endpoint[--n] = '\0';
    } else {
        /* China regions live in their own partition with its own DNS suffix. */
        const char *suffix =
            strncmp(cfg->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";
        snprintf(cfg->endpoint, sizeof cfg->endpoint, "https://kinesis.%s.%s", cfg->region, suffix);
    }

    return load_credentials(c, cfg);
}

int kte_config_load(struct kte_config *cfg, kte_getenv_fn getenv_fn, void *env, char *errtype,
                    size_t errtype_len, char *msg, size_t msg_len)
{
    struct ctx c = {getenv_fn, env, errtype, errtype_len, msg, msg_len};
    memset(cfg, 0, sizeof *cfg);

    const char *lvl = get(&c, "KTE_LOG_LEVEL");
    enum kte_log_level level = KTE_LOG_WARN;
    if (lvl && kte_log_parse_level(lvl, &level) != 0)
        return fail(&c, ERR_INVALID,
                    "KTE_LOG_LEVEL='%s' is not understood; use error, warn, "
                    "info or debug",
                    lvl);
    cfg->log_level = (int)level;

    const char *init_type = get(&c, "AWS_LAMBDA_INITIALIZATION_TYPE");
    cfg->managed_instances = init_type && !strcmp(init_type, "lambda-managed-instances");
    cfg->snapstart = init_type && !strcmp(init_type, "snap-start");
    /* 2022-12-13 gives JSON log records as objects; Managed Instances need the
     * newer schema, the only one they accept. */
    cfg->schema_version = cfg->managed_instances ? "2025-01-29" : "2022-12-13";

    const char *fn = get(&c, "AWS_LAMBDA_FUNCTION_NAME");
    const char *fv = get(&c, "AWS_LAMBDA_FUNCTION_VERSION");
    if (copy_envelope_str(&c, "AWS_LAMBDA_FUNCTION_NAME", fn ? fn : "unknown", cfg->function_name,
                          sizeof cfg->function_name) ||
        copy_envelope_str(&c, "AWS_LAMBDA_FUNCTION_VERSION", fv ? fv : "$LATEST",
                          cfg->function_version, sizeof cfg->function_version))
        return -1;

    if (load_destination(&c, cfg) || load_tls(&c, cfg) || load_types(&c, cfg))
        return -1;

    /* Ranges are Lambda's own for a subscription's buffering block. The
     * default timeout is Lambda's minimum: at the end of every invoke we wait
     * for platform.runtimeDone, so this timeout adds to each invoke. */
    if (get_long(&c, "KTE_BUFFER_TIMEOUT_MS", 25, 25, 30000, " (Lambda's limits)",
                 &cfg->buffer_timeout_ms) ||
        get_long(&c, "KTE_BUFFER_MAX_BYTES", 262144, 262144, 1048576, " (Lambda's limits)",
                 &cfg->buffer_max_bytes) ||
        get_long(&c, "KTE_BUFFER_MAX_ITEMS", 10000, 1000, 10000, " (Lambda's limits)",
                 &cfg->buffer_max_items))
        return -1;

    const char *host = get(&c, "KTE_LISTENER_HOST");
    if (!host)
        host = get(&c, "AWS_SAM_LOCAL") ? "0.0.0.0" : "sandbox.localdomain";
    if (copy_str(&c, "KTE_LISTENER_HOST", host, cfg->listener_host, sizeof cfg->listener_host))
        return -1;
    long port;
    if (get_long(&c, "KTE_LISTENER_PORT", 4243, 1, 65535, "", &port))
        return -1;
    cfg->listener_port = (int)port;
    /* Lambda's POSTs carry at most about 2 x maxBytes (JSON framing on top
     * of the buffered events); twice that again is the default, so that no
     * genuine body is ever refused while a hostile one costs little. */
    if (get_long(&c, "KTE_MAX_BODY_BYTES", 4 * cfg->buffer_max_bytes, 1048576, 64 * 1048576L, "",
                 &cfg->max_body_bytes))
        return -1;
    if (cfg->max_body_bytes < 2 * cfg->buffer_max_bytes)
        return fail(&c, ERR_INVALID,
                    "KTE_MAX_BODY_BYTES=%ld is below what Lambda sends with "
                    "KTE_BUFFER_MAX_BYTES=%ld (up to about twice that); use at least %ld",
                    cfg->max_body_bytes, cfg->buffer_max_bytes, 2 * cfg->buffer_max_bytes);

    if (load_partition_key(&c, cfg) || load_record_format(&c, cfg) || load_protocol(&c, cfg) ||
        load_flush(&c, cfg) || load_buffer(&c, cfg))
        return -1;
    if (get_long(&c, "KTE_FLUSH_WAIT_MS", 0, 0, 900000, " (0 waits until the invoke's deadline)",
                 &cfg->flush_wait_ms) ||
        get_long(&c, "KTE_FLUSH_TIMEOUT_MS", 2000, 50, 900000, "", &cfg->flush_timeout_ms) ||
        get_long(&c, "KTE_MAX_RECORD_BYTES", 1048576, 1024, 10 * 1048576L,
                 " (Kinesis allows 1 MiB per record, partition key included, or up to 10 MiB "
                 "on a stream raised with UpdateMaxRecordSize)",
                 &cfg->max_record_bytes) ||
        /* 5 MiB by default, the limit every Kinesis endpoint (and emulator)
         * knows; a larger record size raises it to one record. */
        get_long(&c, "KTE_MAX_REQUEST_BYTES",
                 cfg->max_record_bytes > 5 * 1048576L ? cfg->max_record_bytes : 5 * 1048576L,
                 1048576, 10 * 1048576L,
                 " (Kinesis allows at most 10 MiB per PutRecords call, partition keys included)",
                 &cfg->max_request_bytes) ||
        get_long(&c, "KTE_CONNECT_TIMEOUT_MS", 1000, 10, 60000, "", &cfg->connect_timeout_ms) ||
        get_long(&c, "KTE_REQUEST_TIMEOUT_MS", 5000, 100, 300000, "", &cfg->request_timeout_ms))
        return -1;
    if (cfg->max_record_bytes > cfg->max_request_bytes)
        return fail(&c, ERR_INVALID,
                    "KTE_MAX_RECORD_BYTES=%ld is larger than KTE_MAX_REQUEST_BYTES=%ld: a record "
                    "must fit in one PutRecords call; raise KTE_MAX_REQUEST_BYTES or lower "
                    "KTE_MAX_RECORD_BYTES",
                    cfg->max_record_bytes, cfg->max_request_bytes);
    char rules_msg[512];
    if (kte_rules_load(&cfg->rules, getenv_fn, env, rules_msg, sizeof rules_msg) != 0)
        return fail(&c, "Extension.RulesInvalid", "%s", rules_msg);
    return 0;
}

void kte_config_free(struct kte_config *cfg)
{
    kte_rules_free(cfg->rules);
    cfg->rules = NULL;
}
