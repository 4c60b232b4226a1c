#include "kte_config_vars.h"

#include "kte_log.h"

#include <string.h>

const struct kte_config_var kte_config_vars[] = {
    {"KTE_STREAM_NAME", "Kinesis stream name (required unless KTE_STREAM_ARN)"},
    {"KTE_STREAM_ARN", "stream ARN, sent as StreamARN (set only one of the two)"},
    {"KTE_ENDPOINT", "Kinesis endpoint override, e.g. http://127.0.0.1:4568"},
    {"KTE_TYPES", "comma-separated subset of platform,function,extension"},
    {"KTE_BUFFER_TIMEOUT_MS", "Telemetry API buffering timeout, 25-30000 ms"},
    {"KTE_BUFFER_MAX_BYTES", "Telemetry API buffering size, 262144-1048576 bytes"},
    {"KTE_BUFFER_MAX_ITEMS", "Telemetry API buffering count, 1000-10000 events"},
    {"KTE_LISTENER_HOST", "address the listener binds and the Telemetry API posts to"},
    {"KTE_LISTENER_PORT", "listener port, 1-65535"},
    {"KTE_MAX_BODY_BYTES", "largest Telemetry API POST body, 1 MiB-64 MiB (larger get 413)"},
    {"KTE_PARTITION_KEY", "environment, request, function or random"},
    {"KTE_FLUSH", "adaptive (default), end, periodic,<ms> or continuous,<ms>"},
    {"KTE_MAX_LATENCY_MS", "adaptive: bound on an event's delivery latency"},
    {"KTE_FLUSH_WAIT_MS", "how long the end of an invoke waits for its runtimeDone (0: deadline)"},
    {"KTE_FLUSH_TIMEOUT_MS", "longest an end-of-invoke flush may hold up the invoke"},
    {"KTE_RECORD_FORMAT", "event, kpl or ndjson: how events become Kinesis records"},
    {"KTE_COMPRESSION", "none, gzip or zstd per record (event and ndjson)"},
    {"KTE_PROTOCOL", "json or cbor: PutRecords wire protocol (cbor falls back to json if refused)"},
    {"KTE_EXCLUDE_TYPES", "event types to drop (platform = every platform.*)"},
    {"KTE_MIN_LEVEL", "drop log lines below this level"},
    {"KTE_INCLUDE_REGEX", "keep only log lines whose message matches"},
    {"KTE_EXCLUDE_REGEX", "drop log lines whose message matches"},
    {"KTE_SAMPLE_RATE", "fraction of invokes whose log lines are kept"},
    {"KTE_SAMPLE_PLATFORM", "sample platform.* events too"},
    {"KTE_REDACT", "built-in redactions (email, credit-card, ..., all)"},
    {"KTE_REDACT_REGEX",
     "custom redaction patterns (JSON array of patterns or {name, pattern}, or one pattern)"},
    {"KTE_RULES_FILE", "processing rules as a JSON file"},
    {"KTE_MAX_RECORD_BYTES", "largest record (data plus partition key), 1024-1048576 bytes"},
    {"KTE_MAX_REQUEST_BYTES", "data plus partition keys per PutRecords call, up to 10 MiB"},
    {"KTE_MAX_BUFFER_BYTES", "memory for records waiting for delivery, 1 MiB-1 GiB"},
    {"KTE_OVERFLOW", "drop-oldest or drop-newest when the buffer is full"},
    {"KTE_CONNECT_TIMEOUT_MS", "Kinesis connect timeout, 10-60000 ms"},
    {"KTE_REQUEST_TIMEOUT_MS", "timeout per PutRecords call, 100-300000 ms"},
    {"KTE_TLS_INSECURE", "1: no certificate verification (loopback endpoints only)"},
    {"KTE_LOG_LEVEL", "error, warn, info or debug"},
};

const size_t kte_config_vars_count = sizeof kte_config_vars / sizeof kte_config_vars[0];

#define PREFIX       "KTE_"
#define PREFIX_LEN   (sizeof PREFIX - 1)
#define NAME_MAX_LEN 64

const struct kte_config_var *kte_config_var_find(const char *name, size_t name_len)
{
    for (size_t i = 0; i < kte_config_vars_count; i++) {
        const char *k = kte_config_vars[i].name;
        if (strlen(k) == name_len && memcmp(k, name, name_len) == 0)
            return &kte_config_vars[i];
    }
    return NULL;
}

static size_t min3(size_t a, size_t b, size_t c)
{
    size_t m = a < b ? a : b;
    return m < c ? m : c;
}

/* Optimal string alignment distance, both lengths <= NAME_MAX_LEN. */
static size_t osa_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1;
        }
    }
    return d[la][lb];
}

const char *kte_config_var_closest(const char *name, size_t name_len)
{
    if (name_len > NAME_MAX_LEN)
        return NULL;
    /* Plausible typo: at most 3 edits, and fewer than a third of the part
     * after KTE_ (so KTE_FOO does not "mean" KTE_FLUSH). */
    size_t part = name_len > PREFIX_LEN ? name_len - PREFIX_LEN : name_len;
    size_t limit = part / 3 < 3 ? part / 3 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < kte_config_vars_count; i++) {
        const char *k = kte_config_vars[i].name;
        size_t d = osa_distance(name, name_len, k, strlen(k));
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    return best;
}

size_t kte_config_vars_check(char *const *envp, kte_unknown_var_fn fn, void *ctx)
{
    size_t unknown = 0;
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *e = envp[i];
        if (strncmp(e, PREFIX, PREFIX_LEN) != 0)
            continue;
        const char *eq = strchr(e, '=');
        size_t len = eq ? (size_t)(eq - e) : strlen(e);
        if (kte_config_var_find(e, len))
            continue;
        unknown++;
        if (fn)
            fn(e, len, kte_config_var_closest(e, len), ctx);
    }
    return unknown;
}

static void warn_unknown(const char *name, size_t len, const char *closest, void *ctx)
{
    (void)ctx;
    if (closest)
        KTE_WARN("unknown variable %.*s ignored: did you mean %s?", (int)len, name, closest);
    else
        KTE_WARN("unknown variable %.*s ignored (not an option of this version)", (int)len, name);
}

size_t kte_config_vars_warn_unknown(char *const *envp)
{
    return kte_config_vars_check(envp, warn_unknown, NULL);
}
