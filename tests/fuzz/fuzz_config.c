/* The configuration loader with a fuzzed environment: the input is lines of
 * NAME=VALUE, served to kte_config_load through its getenv callback (the
 * first line naming a variable wins, as in a real environment). A load that
 * succeeds must leave a configuration main() can use as it is; one that
 * fails must say why. */
#include "kte_config.h"
#include "kte_log.h"

#include "fuzz_util.h"

#define MAX_VARS 64

struct env {
    const char *name[MAX_VARS];
    const char *value[MAX_VARS];
    size_t n;
};

static const char *fuzz_getenv(const char *name, void *ctx)
{
    const struct env *e = ctx;
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->name[i], name))
            return e->value[i];
    return NULL;
}

#define IN_RANGE(x, lo, hi) ((x) >= (lo) && (x) <= (hi))

static void check_config(const struct kte_config *c)
{
    FUZZ_CHECK(FUZZ_TERMINATED(c->stream_name) && FUZZ_TERMINATED(c->stream_arn) &&
               FUZZ_TERMINATED(c->endpoint) && FUZZ_TERMINATED(c->region) &&
               FUZZ_TERMINATED(c->access_key_id) && FUZZ_TERMINATED(c->secret_access_key) &&
               FUZZ_TERMINATED(c->session_token) && FUZZ_TERMINATED(c->ca_file) &&
               FUZZ_TERMINATED(c->ca_dir) && FUZZ_TERMINATED(c->listener_host) &&
               FUZZ_TERMINATED(c->function_name) && FUZZ_TERMINATED(c->function_version));
    /* One destination, a region, credentials, an http(s) endpoint. */
    FUZZ_CHECK((c->stream_name[0] != '\0') != (c->stream_arn[0] != '\0'));
    FUZZ_CHECK(FUZZ_TERMINATED(c->container_uri) && FUZZ_TERMINATED(c->container_token) &&
               FUZZ_TERMINATED(c->container_token_file));
    FUZZ_CHECK(c->region[0]);
    if (c->creds_source == KTE_CREDS_ENV)
        FUZZ_CHECK(c->access_key_id[0] && c->secret_access_key[0]);
    else
        FUZZ_CHECK(c->creds_source == KTE_CREDS_CONTAINER && c->container_uri[0]);
    FUZZ_CHECK(!strncmp(c->endpoint, "http://", 7) || !strncmp(c->endpoint, "https://", 8));
    FUZZ_CHECK(!c->tls_insecure || kte_url_is_loopback(c->endpoint));
    FUZZ_CHECK(!(c->ca_file[0] && c->ca_dir[0]));
    FUZZ_CHECK(c->types != 0 && (c->types & ~7u) == 0);
    FUZZ_CHECK(c->schema_version != NULL && c->listener_host[0]);
    FUZZ_CHECK(c->function_name[0] && c->function_version[0]);
    /* Lambda's and Kinesis' limits. */
    FUZZ_CHECK(IN_RANGE(c->buffer_timeout_ms, 25, 30000));
    FUZZ_CHECK(IN_RANGE(c->buffer_max_bytes, 262144, 1048576));
    FUZZ_CHECK(IN_RANGE(c->buffer_max_items, 1000, 10000));
    FUZZ_CHECK(IN_RANGE(c->listener_port, 1, 65535));
    FUZZ_CHECK(c->max_body_bytes > 0 && c->max_buffer_bytes > 0);
    FUZZ_CHECK(IN_RANGE(c->max_record_bytes, 1024, 10485760));
    FUZZ_CHECK(IN_RANGE(c->max_request_bytes, 1048576, 10485760) &&
               c->max_request_bytes >= c->max_record_bytes);
    FUZZ_CHECK(c->record_format <= KTE_FORMAT_NDJSON && c->compression <= KTE_COMPRESSION_ZSTD);
    FUZZ_CHECK(c->flush_wait_ms >= 0 && c->flush_timeout_ms > 0);
    FUZZ_CHECK(c->connect_timeout_ms > 0 && c->request_timeout_ms > 0);
    FUZZ_CHECK(IN_RANGE((int)c->partition_key, KTE_PK_ENVIRONMENT, KTE_PK_TENANT));
    FUZZ_CHECK(IN_RANGE((int)c->overflow, KTE_OVERFLOW_DROP_OLDEST, KTE_OVERFLOW_DROP_NEWEST));
    FUZZ_CHECK(IN_RANGE(c->log_level, KTE_LOG_ERROR, KTE_LOG_DEBUG));
    if (c->flush_mode == KTE_FLUSH_END)
        FUZZ_CHECK(!c->managed_instances);
    else
        FUZZ_CHECK(c->flush_mode <= KTE_FLUSH_DATADOG && IN_RANGE(c->flush_interval_ms, 1, 900000));
    if (c->flush_mode == KTE_FLUSH_ADAPTIVE)
        FUZZ_CHECK(IN_RANGE(c->max_latency_ms, 200, 900000));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One NUL-terminated copy, cut into lines, then at each line's first '='. */
    char *copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    struct env env = {.n = 0};
    for (char *line = copy; line && env.n < MAX_VARS;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq) {
            *eq = '\0';
            env.name[env.n] = line;
            env.value[env.n++] = eq + 1;
        }
        line = next;
    }
    struct kte_config *cfg = malloc(sizeof *cfg);
    FUZZ_CHECK(cfg != NULL);
    char errtype[64] = "", msg[512] = "";
    if (kte_config_load(cfg, fuzz_getenv, &env, errtype, sizeof errtype, msg, sizeof msg) == 0)
        check_config(cfg);
    else
        FUZZ_CHECK(errtype[0] && msg[0] && FUZZ_TERMINATED(errtype) && FUZZ_TERMINATED(msg));
    /* A bad rule (a named redaction's name, a pattern, ...) names its variable. */
    if (!strcmp(errtype, "Extension.RulesInvalid"))
        FUZZ_CHECK(!strncmp(msg, "KTE_", 4) || !strcmp(msg, "out of memory"));
    kte_config_free(cfg); /* the processing rules it may hold */
    free(cfg);
    free(copy);
    return 0;
}
