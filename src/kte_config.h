/* The extension's configuration: KTE_* and the AWS_* variables Lambda sets.
 * Loaded and validated once at start; a failure yields an errorType for
 * /extension/init/error and a message a person can act on. */
#ifndef KTE_CONFIG_H
#define KTE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum kte_type_bits { KTE_TYPE_PLATFORM = 1, KTE_TYPE_FUNCTION = 2, KTE_TYPE_EXTENSION = 4 };

enum kte_partition_key {
    KTE_PK_ENVIRONMENT = 0, /* keeps order per environment, spreads environments */
    KTE_PK_REQUEST,
    KTE_PK_FUNCTION,
    KTE_PK_RANDOM,
    KTE_PK_TENANT, /* the event's tenantId, else the environment */
};

/* KTE_FLUSH_ADAPTIVE (the default) decides per invoke from the observed
 * inter-arrival times (kte_flush.h, docs/flush.md). KTE_FLUSH_DATADOG is
 * bench-only (KTE_FLUSH=x-datadog, undocumented for users): Datadog's
 * published default strategy, run by the same harness for comparison. */
enum kte_flush_mode {
    KTE_FLUSH_END = 0,
    KTE_FLUSH_PERIODIC,
    KTE_FLUSH_CONTINUOUS,
    KTE_FLUSH_ADAPTIVE,
    KTE_FLUSH_DATADOG
};

/* Where the signing credentials come from. */
enum kte_creds_source {
    KTE_CREDS_ENV = 0,   /* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN */
    KTE_CREDS_CONTAINER, /* AWS_CONTAINER_CREDENTIALS_FULL_URI (or _RELATIVE_URI) */
};

/* KTE_RECORD_FORMAT: how events become Kinesis records (kte_agg.h). */
enum kte_record_format { KTE_FORMAT_EVENT = 0, KTE_FORMAT_KPL, KTE_FORMAT_NDJSON };

/* KTE_COMPRESSION: per record, for `event` and `ndjson` (kte_compress.h). */
enum kte_compression { KTE_COMPRESSION_NONE = 0, KTE_COMPRESSION_GZIP, KTE_COMPRESSION_ZSTD };

/* KTE_PROTOCOL: how PutRecords travels (kte_cbor.h). */
enum kte_protocol { KTE_PROTOCOL_JSON = 0, KTE_PROTOCOL_CBOR };

enum kte_overflow { KTE_OVERFLOW_DROP_OLDEST = 0, KTE_OVERFLOW_DROP_NEWEST };

#define KTE_CFG_STR 512

struct kte_config {
    /* Destination */
    char stream_name[KTE_CFG_STR];
    char stream_arn[KTE_CFG_STR];
    char endpoint[KTE_CFG_STR]; /* full URL, without trailing slash */
    char region[64];
    char access_key_id[256];
    char secret_access_key[256];
    char session_token[4096];
    enum kte_creds_source creds_source;
    char container_uri[KTE_CFG_STR];
    char container_token[4096];             /* AWS_CONTAINER_AUTHORIZATION_TOKEN */
    char container_token_file[KTE_CFG_STR]; /* ..._TOKEN_FILE: read at every fetch */
    /* TLS trust for https endpoints: a CA bundle file or directory (one of
     * them set), or verification off (only allowed for loopback endpoints). */
    char ca_file[KTE_CFG_STR];
    char ca_dir[KTE_CFG_STR];
    bool tls_insecure;

    /* Subscription */
    unsigned types; /* kte_type_bits */
    long buffer_timeout_ms;
    long buffer_max_bytes;
    long buffer_max_items;
    bool managed_instances;     /* AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances */
    bool snapstart;             /* AWS_LAMBDA_INITIALIZATION_TYPE=snap-start */
    const char *schema_version; /* static string */

    /* Listener */
    char listener_host[256];
    int listener_port;
    long max_body_bytes;

    /* Records and flushing */
    enum kte_partition_key partition_key;
    enum kte_flush_mode flush_mode;
    long flush_interval_ms; /* periodic/continuous; adaptive: the sender's timer */
    long max_latency_ms;    /* adaptive: KTE_MAX_LATENCY_MS, see docs/flush.md */
    long flush_wait_ms;     /* 0: wait for runtimeDone until the invoke deadline */
    long flush_timeout_ms;  /* longest an end-of-invoke flush may hold up the invoke */
    enum kte_record_format record_format;
    enum kte_compression compression;
    enum kte_protocol protocol;
    long max_record_bytes;  /* data + partition key: 1 MiB, or up to 10 MiB if the stream allows */
    long max_request_bytes; /* data + partition keys per PutRecords call, up to 10 MiB */
    long max_buffer_bytes;  /* memory for buffered records, in-flight ones included */
    enum kte_overflow overflow;
    long connect_timeout_ms;
    long request_timeout_ms;

    /* Function identity, for the envelope */
    char function_name[256];
    char function_version[64];

    int log_level; /* enum kte_log_level */

    /* Processing rules (kte_rules, docs/rules.md); NULL when none is set.
     * Owned by the config: kte_config_free releases them. */
    struct kte_rules *rules;
};

typedef const char *(*kte_getenv_fn)(const char *name, void *ctx);

/* errtype receives e.g. "Extension.ConfigInvalid"; msg a sentence naming the
 * variable, the value and what is allowed. Returns 0 or -1. */
int kte_config_load(struct kte_config *cfg, kte_getenv_fn getenv_fn, void *ctx, char *errtype,
                    size_t errtype_len, char *msg, size_t msg_len);

/* Frees what kte_config_load allocated (the rules). */
void kte_config_free(struct kte_config *cfg);

/* Where a CA bundle is looked for, in order, after SSL_CERT_FILE and
 * SSL_CERT_DIR: Amazon Linux 2 and 2023 first, then Debian/Ubuntu, then
 * Alpine/BSD. NULL-terminated. */
extern const char *const kte_ca_bundle_paths[];

/* Whether an http(s) URL's host is a loopback address. */
bool kte_url_is_loopback(const char *url);

/* getenv(3) adapter for kte_config_load. */
const char *kte_config_process_env(const char *name, void *ctx);

#endif
