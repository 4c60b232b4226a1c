/* kte_config_load over a fake environment: defaults, endpoint derivation and
 * every validation failure, whose message must name the variable and what is
 * allowed. */
#include "kte_config.h"
#include "kte_cbor.h"
#include "kte_log.h"

#include "kte_test_util.h"

#define ERR_INVALID "Extension.ConfigInvalid"
#define ERR_MISSING "Extension.ConfigMissing"

struct t {
    struct kt_env env;
    struct kte_config cfg;
    char errtype[64];
    char msg[512];
};

/* What Lambda always sets, plus a stream name. */
static void base_env(struct kt_env *e)
{
    memset(e, 0, sizeof *e);
    kt_env_set(e, "KTE_STREAM_NAME", "my-stream");
    kt_env_set(e, "AWS_REGION", "us-east-1");
    kt_env_set(e, "AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    kt_env_set(e, "AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    kt_env_set(e, "AWS_SESSION_TOKEN", "session-token");
    kt_env_set(e, "AWS_LAMBDA_FUNCTION_NAME", "my-fn");
    kt_env_set(e, "AWS_LAMBDA_FUNCTION_VERSION", "7");
    /* https endpoints need a CA bundle; only its existence is checked at
     * load time, so the tests do not depend on the host's bundle paths. */
    kt_env_set(e, "SSL_CERT_FILE", KT_FIXTURES "/tls/placeholder-ca-bundle.pem");
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    base_env(&t->env);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static int load(struct t *t)
{
    t->errtype[0] = t->msg[0] = '\0';
    return kte_config_load(&t->cfg, kt_env_get, &t->env, t->errtype, sizeof t->errtype, t->msg,
                           sizeof t->msg);
}

static void load_ok(struct t *t)
{
    int rc = load(t);
    if (rc != 0)
        print_error("unexpected failure: %s: %s\n", t->errtype, t->msg);
    assert_int_equal(rc, 0);
}

/* name=value must fail with errtype and a message holding every needle. */
static void expect_fail(struct t *t, const char *name, const char *value, const char *errtype,
                        const char *n1, const char *n2, const char *n3)
{
    base_env(&t->env);
    if (name)
        kt_env_set(&t->env, name, value);
    int rc = load(t);
    if (rc != -1)
        print_error("%s='%s' was accepted\n", name, value ? value : "(unset)");
    assert_int_equal(rc, -1);
    assert_string_equal(t->errtype, errtype);
    if (n1)
        kt_assert_contains(t->msg, n1);
    if (n2)
        kt_assert_contains(t->msg, n2);
    if (n3)
        kt_assert_contains(t->msg, n3);
}

static void test_defaults(void **state)
{
    struct t *t = *state;
    load_ok(t);
    const struct kte_config *c = &t->cfg;
    assert_string_equal(c->stream_name, "my-stream");
    assert_string_equal(c->stream_arn, "");
    assert_string_equal(c->region, "us-east-1");
    assert_string_equal(c->endpoint, "https://kinesis.us-east-1.amazonaws.com");
    assert_string_equal(c->access_key_id, "AKIDEXAMPLE");
    assert_string_equal(c->secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    assert_string_equal(c->session_token, "session-token");
    assert_int_equal(c->types, KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION);
    assert_int_equal(c->types, 7);
    assert_int_equal(c->buffer_timeout_ms, 25);
    assert_int_equal(c->buffer_max_bytes, 262144);
    assert_int_equal(c->buffer_max_items, 10000);
    assert_false(c->managed_instances);
    assert_string_equal(c->schema_version, "2022-12-13");
    assert_string_equal(c->listener_host, "sandbox.localdomain");
    assert_int_equal(c->listener_port, 4243);
    assert_int_equal(c->max_body_bytes, 4 * 262144); /* 4 x the subscription's maxBytes */
    assert_int_equal(c->partition_key, KTE_PK_ENVIRONMENT);
    assert_int_equal(c->flush_mode, KTE_FLUSH_ADAPTIVE); /* issue 12: the default */
    assert_int_equal(c->max_latency_ms, 2000);
    assert_int_equal(c->flush_interval_ms, 500); /* the sender timer: a quarter of the bound */
    assert_int_equal(c->flush_wait_ms, 0);
    assert_int_equal(c->flush_timeout_ms, 2000);
    assert_int_equal(c->max_record_bytes, 1048576);
    assert_int_equal(c->connect_timeout_ms, 1000);
    assert_int_equal(c->request_timeout_ms, 5000);
    assert_string_equal(c->function_name, "my-fn");
    assert_string_equal(c->function_version, "7");
    assert_int_equal(c->log_level, KTE_LOG_WARN);
    assert_string_equal(t->errtype, "");
    assert_string_equal(t->msg, "");
}

static void test_function_identity_defaults(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "AWS_LAMBDA_FUNCTION_NAME", NULL);
    kt_env_set(&t->env, "AWS_LAMBDA_FUNCTION_VERSION", NULL);
    load_ok(t);
    assert_string_equal(t->cfg.function_name, "unknown");
    assert_string_equal(t->cfg.function_version, "$LATEST");
}

static void test_empty_variable_means_unset(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_TYPES", "");
    kt_env_set(&t->env, "KTE_BUFFER_TIMEOUT_MS", "");
    kt_env_set(&t->env, "KTE_FLUSH", "");
    kt_env_set(&t->env, "KTE_LOG_LEVEL", "");
    kt_env_set(&t->env, "AWS_SESSION_TOKEN", "");
    load_ok(t);
    assert_int_equal(t->cfg.types, 7);
    assert_int_equal(t->cfg.buffer_timeout_ms, 25);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_ADAPTIVE);
    assert_int_equal(t->cfg.log_level, KTE_LOG_WARN);
    assert_string_equal(t->cfg.session_token, "");
    /* An empty stream name is no stream name. */
    expect_fail(t, "KTE_STREAM_NAME", "", ERR_MISSING, "KTE_STREAM_NAME", NULL, NULL);
}

static void test_sam_local_listens_on_all_interfaces(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "AWS_SAM_LOCAL", "true");
    load_ok(t);
    assert_string_equal(t->cfg.listener_host, "0.0.0.0");
    /* An explicit host wins over both. */
    kt_env_set(&t->env, "KTE_LISTENER_HOST", "127.0.0.1");
    kt_env_set(&t->env, "KTE_LISTENER_PORT", "9999");
    load_ok(t);
    assert_string_equal(t->cfg.listener_host, "127.0.0.1");
    assert_int_equal(t->cfg.listener_port, 9999);
    kt_env_set(&t->env, "AWS_SAM_LOCAL", NULL);
    load_ok(t);
    assert_string_equal(t->cfg.listener_host, "127.0.0.1");
}

static void test_managed_instances(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "AWS_LAMBDA_INITIALIZATION_TYPE", "lambda-managed-instances");
    load_ok(t);
    assert_true(t->cfg.managed_instances);
    assert_string_equal(t->cfg.schema_version, "2025-01-29");
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_CONTINUOUS);
    assert_int_equal(t->cfg.flush_interval_ms, 1000);

    /* No end of invoke there: end and periodic become continuous, keeping
     * a configured interval. */
    kt_env_set(&t->env, "KTE_FLUSH", "end");
    load_ok(t);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_CONTINUOUS);
    assert_int_equal(t->cfg.flush_interval_ms, 1000);
    kt_env_set(&t->env, "KTE_FLUSH", "adaptive");
    load_ok(t);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_CONTINUOUS);
    assert_int_equal(t->cfg.flush_interval_ms, 1000);
    kt_env_set(&t->env, "KTE_FLUSH", "periodic,5000");
    load_ok(t);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_CONTINUOUS);
    assert_int_equal(t->cfg.flush_interval_ms, 5000);
    kt_env_set(&t->env, "KTE_FLUSH", "continuous,250");
    load_ok(t);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_CONTINUOUS);
    assert_int_equal(t->cfg.flush_interval_ms, 250);

    /* Other initialization types are ordinary Lambda. */
    kt_env_set(&t->env, "KTE_FLUSH", NULL);
    static const char *const others[] = {"on-demand", "provisioned-concurrency", "snap-start",
                                         "Lambda-Managed-Instances"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        kt_env_set(&t->env, "AWS_LAMBDA_INITIALIZATION_TYPE", others[i]);
        load_ok(t);
        assert_false(t->cfg.managed_instances);
        assert_string_equal(t->cfg.schema_version, "2022-12-13");
        assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_ADAPTIVE);
    }
}

static void test_endpoint_from_region(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *region, *endpoint;
    } cases[] = {
        {"us-east-1", "https://kinesis.us-east-1.amazonaws.com"},
        {"eu-west-1", "https://kinesis.eu-west-1.amazonaws.com"},
        {"us-gov-west-1", "https://kinesis.us-gov-west-1.amazonaws.com"},
        {"cn-north-1", "https://kinesis.cn-north-1.amazonaws.com.cn"},
        {"cn-northwest-1", "https://kinesis.cn-northwest-1.amazonaws.com.cn"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_env_set(&t->env, "AWS_REGION", cases[i].region);
        load_ok(t);
        assert_string_equal(t->cfg.region, cases[i].region);
        assert_string_equal(t->cfg.endpoint, cases[i].endpoint);
    }
}

static void test_region_fallback_and_missing(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "AWS_REGION", NULL);
    kt_env_set(&t->env, "AWS_DEFAULT_REGION", "ap-southeast-2");
    load_ok(t);
    assert_string_equal(t->cfg.region, "ap-southeast-2");
    assert_string_equal(t->cfg.endpoint, "https://kinesis.ap-southeast-2.amazonaws.com");
    /* AWS_REGION wins when both are set. */
    kt_env_set(&t->env, "AWS_REGION", "eu-central-1");
    load_ok(t);
    assert_string_equal(t->cfg.region, "eu-central-1");
    /* Neither. */
    base_env(&t->env);
    kt_env_set(&t->env, "AWS_REGION", NULL);
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, ERR_MISSING);
    kt_assert_contains(t->msg, "AWS_REGION");
}

static void test_endpoint_override(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"http://127.0.0.1:4567", "http://127.0.0.1:4567"},
        {"http://127.0.0.1:4567/", "http://127.0.0.1:4567"},
        {"https://kinesis.example.com///", "https://kinesis.example.com"},
        {"https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com/",
         "https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_env_set(&t->env, "KTE_ENDPOINT", cases[i].in);
        load_ok(t);
        assert_string_equal(t->cfg.endpoint, cases[i].out);
        assert_string_equal(t->cfg.region, "us-east-1"); /* still used for signing */
    }
    expect_fail(t, "KTE_ENDPOINT", "kinesis.example.com", ERR_INVALID, "KTE_ENDPOINT",
                "kinesis.example.com", "https://");
    expect_fail(t, "KTE_ENDPOINT", "ftp://x", ERR_INVALID, "KTE_ENDPOINT", "https://", NULL);
}

static void test_missing_stream(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_STREAM_NAME", NULL);
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, ERR_MISSING);
    kt_assert_contains(t->msg, "KTE_STREAM_NAME");
    kt_assert_contains(t->msg, "KTE_STREAM_ARN");
}

static void test_stream_name_and_arn_both_set(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_STREAM_ARN", "arn:aws:kinesis:us-east-1:123456789012:stream/s");
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, ERR_INVALID);
    kt_assert_contains(t->msg, "KTE_STREAM_NAME");
    kt_assert_contains(t->msg, "KTE_STREAM_ARN");
}

static void test_stream_arn(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_STREAM_NAME", NULL);
    kt_env_set(&t->env, "KTE_STREAM_ARN", "arn:aws:kinesis:us-east-1:123456789012:stream/my-s");
    load_ok(t);
    assert_string_equal(t->cfg.stream_arn, "arn:aws:kinesis:us-east-1:123456789012:stream/my-s");
    assert_string_equal(t->cfg.stream_name, "");
    /* Other partitions. */
    kt_env_set(&t->env, "AWS_REGION", "cn-north-1");
    kt_env_set(&t->env, "KTE_STREAM_ARN", "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s");
    load_ok(t);
    assert_string_equal(t->cfg.stream_arn, "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s");
    assert_string_equal(t->cfg.endpoint, "https://kinesis.cn-north-1.amazonaws.com.cn");
}

static void test_bad_stream_arn(void **state)
{
    struct t *t = *state;
    static const char *const bad[] = {
        "my-stream",
        "arn:aws:sqs:us-east-1:123456789012:queue",
        "arn:aws:kinesis:us-east-1:123456789012:my-stream", /* no stream/ */
        "aws:kinesis:us-east-1:123456789012:stream/s",      /* no arn: */
        "ARN:AWS:KINESIS:us-east-1:123456789012:stream/s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_env(&t->env);
        kt_env_set(&t->env, "KTE_STREAM_NAME", NULL);
        kt_env_set(&t->env, "KTE_STREAM_ARN", bad[i]);
        int rc = load(t);
        if (rc != -1)
            print_error("KTE_STREAM_ARN='%s' was accepted\n", bad[i]);
        assert_int_equal(rc, -1);
        assert_string_equal(t->errtype, ERR_INVALID);
        kt_assert_contains(t->msg, "KTE_STREAM_ARN");
        kt_assert_contains(t->msg, bad[i]);
        kt_assert_contains(t->msg, "arn:aws:kinesis:<region>:<account>:stream/<name>");
    }
}

/* Kinesis validates StreamARN against arn:aws.*:kinesis:.*:\d{12}:stream/\S+
 * (botocore's kinesis-2013-12-02 service model). An ARN outside that pattern
 * makes every PutRecords fail with a permanent error, so it must be refused
 * at init, where Lambda shows the message. */
static void test_stream_arn_outside_kinesis_pattern(void **state)
{
    struct t *t = *state;
    static const char *const bad[] = {
        "arn:aws:kinesis:us-east-1:123456789012:stream/",    /* empty stream name */
        "arn:aws:kinesis:us-east-1:12345:stream/s",          /* account is not 12 digits */
        "arn:aws:kinesis:us-east-1:123456789012:stream/a b", /* whitespace in the name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        base_env(&t->env);
        kt_env_set(&t->env, "KTE_STREAM_NAME", NULL);
        kt_env_set(&t->env, "KTE_STREAM_ARN", bad[i]);
        int rc = load(t);
        if (rc != -1)
            print_error("KTE_STREAM_ARN='%s' was accepted\n", bad[i]);
        assert_int_equal(rc, -1);
        assert_string_equal(t->errtype, ERR_INVALID);
        kt_assert_contains(t->msg, "KTE_STREAM_ARN");
    }
}

/* The ARN names the stream's region; requests go to the endpoint derived
 * from AWS_REGION. A stream in another region must either be reached at its
 * own region's endpoint or be refused at init, not fail every PutRecords. */
static void test_stream_arn_in_other_region(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_STREAM_NAME", NULL);
    kt_env_set(&t->env, "AWS_REGION", "us-east-1");
    kt_env_set(&t->env, "KTE_STREAM_ARN", "arn:aws:kinesis:eu-west-1:123456789012:stream/s");
    int rc = load(t);
    if (rc == 0) {
        if (strcmp(t->cfg.endpoint, "https://kinesis.eu-west-1.amazonaws.com") != 0)
            print_error("stream in eu-west-1 but endpoint is %s\n", t->cfg.endpoint);
        assert_string_equal(t->cfg.endpoint, "https://kinesis.eu-west-1.amazonaws.com");
    } else {
        assert_string_equal(t->errtype, ERR_INVALID);
        kt_assert_contains(t->msg, "KTE_STREAM_ARN");
        kt_assert_contains(t->msg, "eu-west-1");
    }
}

static void test_stream_name_characters_and_length(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_STREAM_NAME", "Az09_.-stream");
    load_ok(t);
    assert_string_equal(t->cfg.stream_name, "Az09_.-stream");

    char name[130];
    memset(name, 'a', 128);
    name[128] = '\0';
    kt_env_set(&t->env, "KTE_STREAM_NAME", name);
    load_ok(t);
    assert_int_equal(strlen(t->cfg.stream_name), 128);
    name[128] = 'a';
    name[129] = '\0';
    expect_fail(t, "KTE_STREAM_NAME", name, ERR_INVALID, "KTE_STREAM_NAME", "129", "1 to 128");

    static const char *const bad[] = {"my stream", "a/b", "a:b", "str\xc3\xa9m", "a*"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fail(t, "KTE_STREAM_NAME", bad[i], ERR_INVALID, "KTE_STREAM_NAME", bad[i],
                    "letters, digits, '_', '.' and '-'");
}

struct range_case {
    const char *name;
    long lo, hi;
    size_t off; /* offsetof the long field */
};

static void check_range(struct t *t, const struct range_case *rc, const char *range_text)
{
    char v[32];
    const long good[] = {rc->lo, rc->hi};
    for (size_t i = 0; i < 2; i++) {
        base_env(&t->env);
        snprintf(v, sizeof v, "%ld", good[i]);
        kt_env_set(&t->env, rc->name, v);
        load_ok(t);
        long got;
        memcpy(&got, (const char *)&t->cfg + rc->off, sizeof got);
        assert_int_equal(got, good[i]);
    }
    const long bad[] = {rc->lo - 1, rc->hi + 1};
    for (size_t i = 0; i < 2; i++) {
        snprintf(v, sizeof v, "%ld", bad[i]);
        expect_fail(t, rc->name, v, ERR_INVALID, rc->name, v, range_text);
        kt_assert_contains(t->msg, "out of range");
    }
    /* Not numbers at all. */
    static const char *const junk[] = {
        "abc", "25ms", "1e3", "3.5", "0x20", "--1", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        expect_fail(t, rc->name, junk[i], ERR_INVALID, rc->name, junk[i], range_text);
        kt_assert_contains(t->msg, "not a whole number");
    }
}

static void test_buffering_ranges(void **state)
{
    struct t *t = *state;
    /* Lambda's own limits for a subscription's buffering block. */
    static const struct range_case cases[] = {
        {"KTE_BUFFER_TIMEOUT_MS", 25, 30000, offsetof(struct kte_config, buffer_timeout_ms)},
        {"KTE_BUFFER_MAX_BYTES", 262144, 1048576, offsetof(struct kte_config, buffer_max_bytes)},
        {"KTE_BUFFER_MAX_ITEMS", 1000, 10000, offsetof(struct kte_config, buffer_max_items)},
    };
    const char *texts[] = {"from 25 to 30000", "from 262144 to 1048576", "from 1000 to 10000"};
    for (size_t i = 0; i < 3; i++) {
        check_range(t, &cases[i], texts[i]);
        kt_assert_contains(t->msg, "Lambda");
    }
    /* Explicit spot checks of the bounds named in the brief. */
    expect_fail(t, "KTE_BUFFER_TIMEOUT_MS", "24", ERR_INVALID, "KTE_BUFFER_TIMEOUT_MS=24",
                "from 25 to 30000", NULL);
    expect_fail(t, "KTE_BUFFER_TIMEOUT_MS", "30001", ERR_INVALID, "KTE_BUFFER_TIMEOUT_MS=30001",
                "from 25 to 30000", NULL);
    expect_fail(t, "KTE_BUFFER_MAX_BYTES", "262143", ERR_INVALID, "KTE_BUFFER_MAX_BYTES=262143",
                NULL, NULL);
    expect_fail(t, "KTE_BUFFER_MAX_ITEMS", "999", ERR_INVALID, "KTE_BUFFER_MAX_ITEMS=999", NULL,
                NULL);
    expect_fail(t, "KTE_BUFFER_MAX_ITEMS", "-5", ERR_INVALID, "KTE_BUFFER_MAX_ITEMS=-5", NULL,
                NULL);
}

static void test_other_numeric_ranges(void **state)
{
    struct t *t = *state;
    static const struct range_case cases[] = {
        {"KTE_MAX_RECORD_BYTES", 1024, 10 * 1048576L,
         offsetof(struct kte_config, max_record_bytes)},
        {"KTE_MAX_REQUEST_BYTES", 1048576, 10 * 1048576L,
         offsetof(struct kte_config, max_request_bytes)},
        {"KTE_FLUSH_WAIT_MS", 0, 900000, offsetof(struct kte_config, flush_wait_ms)},
        {"KTE_FLUSH_TIMEOUT_MS", 50, 900000, offsetof(struct kte_config, flush_timeout_ms)},
        {"KTE_MAX_BODY_BYTES", 1048576, 64 * 1048576L, offsetof(struct kte_config, max_body_bytes)},
        {"KTE_CONNECT_TIMEOUT_MS", 10, 60000, offsetof(struct kte_config, connect_timeout_ms)},
        {"KTE_REQUEST_TIMEOUT_MS", 100, 300000, offsetof(struct kte_config, request_timeout_ms)},
    };
    const char *texts[] = {"from 1024 to 10485760", "from 1048576 to 10485760", "from 0 to 900000",
                           "from 50 to 900000",     "from 1048576 to 67108864", "from 10 to 60000",
                           "from 100 to 300000"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_range(t, &cases[i], texts[i]);
    expect_fail(t, "KTE_MAX_RECORD_BYTES", "10485761", ERR_INVALID, "KTE_MAX_RECORD_BYTES",
                "10 MiB", "UpdateMaxRecordSize");
    /* A record must fit in a call: 6 MiB records need 6 MiB calls, which
     * they get by default. */
    base_env(&t->env);
    kt_env_set(&t->env, "KTE_MAX_RECORD_BYTES", "6291456");
    load_ok(t);
    assert_int_equal(t->cfg.max_record_bytes, 6291456);
    kt_env_set(&t->env, "KTE_MAX_REQUEST_BYTES", "5242880");
    assert_int_equal(load(t), -1);
    kt_assert_contains(t->msg, "KTE_MAX_REQUEST_BYTES=5242880");
    kt_env_set(&t->env, "KTE_MAX_REQUEST_BYTES", "6291456");
    load_ok(t);
    assert_int_equal(t->cfg.max_request_bytes, 6291456);

    /* The listener port is an int in [1, 65535]. */
    expect_fail(t, "KTE_LISTENER_PORT", "0", ERR_INVALID, "KTE_LISTENER_PORT", "from 1 to 65535",
                NULL);
    expect_fail(t, "KTE_LISTENER_PORT", "65536", ERR_INVALID, "KTE_LISTENER_PORT",
                "from 1 to 65535", NULL);
    base_env(&t->env);
    kt_env_set(&t->env, "KTE_LISTENER_PORT", "65535");
    load_ok(t);
    assert_int_equal(t->cfg.listener_port, 65535);
}

static void test_types(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *v;
        unsigned want;
    } ok[] = {
        {"platform", KTE_TYPE_PLATFORM},
        {"function", KTE_TYPE_FUNCTION},
        {"extension", KTE_TYPE_EXTENSION},
        {"function,extension", KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION},
        {"platform,function,extension", 7},
        {" platform , function ", KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION},
        {"platform,platform", KTE_TYPE_PLATFORM}, /* duplicates are harmless */
        {"function,,platform", KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kt_env_set(&t->env, "KTE_TYPES", ok[i].v);
        load_ok(t);
        assert_int_equal(t->cfg.types, ok[i].want);
    }
    expect_fail(t, "KTE_TYPES", "platform,logs", ERR_INVALID, "KTE_TYPES", "'logs'",
                "platform, function, extension");
    expect_fail(t, "KTE_TYPES", "Platform", ERR_INVALID, "KTE_TYPES", "'Platform'",
                "platform, function, extension");
    expect_fail(t, "KTE_TYPES", ",", ERR_INVALID, "KTE_TYPES", "no type",
                "platform, function, extension");
    expect_fail(t, "KTE_TYPES", " , ", ERR_INVALID, "KTE_TYPES", "platform, function, extension",
                NULL);
    char longv[300];
    memset(longv, 'x', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    expect_fail(t, "KTE_TYPES", longv, ERR_INVALID, "KTE_TYPES", "platform, function, extension",
                NULL);
}

static void test_flush(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *v;
        enum kte_flush_mode mode;
        long ms;
    } ok[] = {
        {"end", KTE_FLUSH_END, 0},
        {"adaptive", KTE_FLUSH_ADAPTIVE, 500},
        {"x-datadog", KTE_FLUSH_DATADOG, 20000},
        {"periodic,1000", KTE_FLUSH_PERIODIC, 1000},
        {"continuous,500", KTE_FLUSH_CONTINUOUS, 500},
        {"periodic,1", KTE_FLUSH_PERIODIC, 1},
        {"continuous,900000", KTE_FLUSH_CONTINUOUS, 900000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kt_env_set(&t->env, "KTE_FLUSH", ok[i].v);
        load_ok(t);
        assert_int_equal(t->cfg.flush_mode, ok[i].mode);
        assert_int_equal(t->cfg.flush_interval_ms, ok[i].ms);
        assert_false(t->cfg.managed_instances);
    }
    /* A mode without its interval, or a bad interval: the message names the
     * range and shows the form. */
    static const char *const no_ms[] = {"periodic",     "periodic,",         "periodic,0",
                                        "periodic,abc", "periodic,10s",      "periodic,900001",
                                        "periodic,-1",  "periodic,1000,2000"};
    for (size_t i = 0; i < sizeof no_ms / sizeof no_ms[0]; i++)
        expect_fail(t, "KTE_FLUSH", no_ms[i], ERR_INVALID, "KTE_FLUSH", "from 1 to 900000",
                    "periodic,1000");
    expect_fail(t, "KTE_FLUSH", "continuous", ERR_INVALID, "KTE_FLUSH", "from 1 to 900000",
                "continuous,1000");
    static const char *const bogus[] = {"bogus", "End",           "periodically,5", "end,5",
                                        ",1000", "adaptive,1000", "Adaptive"};
    for (size_t i = 0; i < sizeof bogus / sizeof bogus[0]; i++)
        expect_fail(t, "KTE_FLUSH", bogus[i], ERR_INVALID, "KTE_FLUSH", bogus[i],
                    "end, periodic,<ms> or continuous,<ms>");
    /* KTE_MAX_LATENCY_MS sets the adaptive mode's bound and its timer. */
    kt_env_set(&t->env, "KTE_FLUSH", NULL);
    kt_env_set(&t->env, "KTE_MAX_LATENCY_MS", "5000");
    load_ok(t);
    assert_int_equal(t->cfg.flush_mode, KTE_FLUSH_ADAPTIVE);
    assert_int_equal(t->cfg.max_latency_ms, 5000);
    assert_int_equal(t->cfg.flush_interval_ms, 1250);
    expect_fail(t, "KTE_MAX_LATENCY_MS", "199", ERR_INVALID, "KTE_MAX_LATENCY_MS",
                "from 200 to 900000", NULL);
    expect_fail(t, "KTE_MAX_LATENCY_MS", "2s", ERR_INVALID, "KTE_MAX_LATENCY_MS", "whole number",
                NULL);
}

static void test_record_format(void **state)
{
    struct t *t = *state;
    load_ok(t);
    assert_int_equal(t->cfg.record_format, KTE_FORMAT_EVENT); /* today's records by default */
    assert_int_equal(t->cfg.max_request_bytes, 5 * 1048576);
    static const struct {
        const char *v;
        enum kte_record_format f;
    } ok[] = {{"event", KTE_FORMAT_EVENT}, {"kpl", KTE_FORMAT_KPL}, {"ndjson", KTE_FORMAT_NDJSON}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kt_env_set(&t->env, "KTE_RECORD_FORMAT", ok[i].v);
        load_ok(t);
        assert_int_equal(t->cfg.record_format, ok[i].f);
    }
    expect_fail(t, "KTE_RECORD_FORMAT", "KPL", ERR_INVALID, "KTE_RECORD_FORMAT", "'KPL'",
                "event, kpl, ndjson");

    base_env(&t->env);
    load_ok(t);
    assert_int_equal(t->cfg.compression, KTE_COMPRESSION_NONE);
    static const char *const comp[] = {"none", "gzip", "zstd"};
    for (int f = 0; f < 3; f++) {
        kt_env_set(&t->env, "KTE_RECORD_FORMAT", f == 1 ? "ndjson" : "event");
        kt_env_set(&t->env, "KTE_COMPRESSION", comp[f]);
        load_ok(t);
        assert_int_equal(t->cfg.compression, (enum kte_compression)f);
    }
    /* KPL consumers do not decompress: refused, with the way out. */
    kt_env_set(&t->env, "KTE_RECORD_FORMAT", "kpl");
    kt_env_set(&t->env, "KTE_COMPRESSION", "gzip");
    assert_int_equal(load(t), -1);
    kt_assert_contains(t->msg, "KTE_COMPRESSION=gzip");
    kt_assert_contains(t->msg, "ndjson");
    expect_fail(t, "KTE_COMPRESSION", "lz4", ERR_INVALID, "KTE_COMPRESSION", "none, gzip, zstd",
                NULL);
}

static void test_protocol(void **state)
{
    struct t *t = *state;
    load_ok(t);
    /* CBOR where it is built in (this build links libcbor). */
    assert_int_equal(t->cfg.protocol, kte_cbor_available() ? KTE_PROTOCOL_CBOR : KTE_PROTOCOL_JSON);
    kt_env_set(&t->env, "KTE_PROTOCOL", "json");
    load_ok(t);
    assert_int_equal(t->cfg.protocol, KTE_PROTOCOL_JSON);
    kt_env_set(&t->env, "KTE_PROTOCOL", "cbor");
    if (kte_cbor_available()) {
        load_ok(t);
        assert_int_equal(t->cfg.protocol, KTE_PROTOCOL_CBOR);
    } else {
        assert_int_equal(load(t), -1);
        kt_assert_contains(t->msg, "not built into this binary");
    }
    expect_fail(t, "KTE_PROTOCOL", "CBOR", ERR_INVALID, "KTE_PROTOCOL", "'CBOR'", "json, cbor");
}

static void test_partition_key(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *v;
        enum kte_partition_key pk;
    } ok[] = {
        {"environment", KTE_PK_ENVIRONMENT},
        {"request", KTE_PK_REQUEST},
        {"function", KTE_PK_FUNCTION},
        {"random", KTE_PK_RANDOM},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kt_env_set(&t->env, "KTE_PARTITION_KEY", ok[i].v);
        load_ok(t);
        assert_int_equal(t->cfg.partition_key, ok[i].pk);
    }
    static const char *const bad[] = {"shard", "Random", "environment "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char quoted[32];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        expect_fail(t, "KTE_PARTITION_KEY", bad[i], ERR_INVALID, "KTE_PARTITION_KEY", quoted,
                    "environment");
        kt_assert_contains(t->msg, "request");
        kt_assert_contains(t->msg, "function");
        kt_assert_contains(t->msg, "random");
    }
}

static void test_log_level(void **state)
{
    struct t *t = *state;
    static const struct {
        const char *v;
        int level;
    } ok[] = {
        {"error", KTE_LOG_ERROR}, {"warn", KTE_LOG_WARN},   {"info", KTE_LOG_INFO},
        {"debug", KTE_LOG_DEBUG}, {"DEBUG", KTE_LOG_DEBUG}, {"Warning", KTE_LOG_WARN},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        kt_env_set(&t->env, "KTE_LOG_LEVEL", ok[i].v);
        load_ok(t);
        assert_int_equal(t->cfg.log_level, ok[i].level);
    }
    expect_fail(t, "KTE_LOG_LEVEL", "verbose", ERR_INVALID, "KTE_LOG_LEVEL", "'verbose'",
                "error, warn, info or debug");
    expect_fail(t, "KTE_LOG_LEVEL", "3", ERR_INVALID, "KTE_LOG_LEVEL", "error, warn, info or debug",
                NULL);
}

static void test_credentials(void **state)
{
    struct t *t = *state;
    expect_fail(t, "AWS_ACCESS_KEY_ID", NULL, ERR_MISSING, "AWS_ACCESS_KEY_ID", NULL, NULL);
    expect_fail(t, "AWS_SECRET_ACCESS_KEY", NULL, ERR_MISSING, "AWS_SECRET_ACCESS_KEY", NULL, NULL);
    expect_fail(t, "AWS_ACCESS_KEY_ID", "AKID:X", ERR_INVALID, "AWS_ACCESS_KEY_ID", "':'", NULL);

    /* The session token is optional (long-term keys outside Lambda). */
    base_env(&t->env);
    kt_env_set(&t->env, "AWS_SESSION_TOKEN", NULL);
    load_ok(t);
    assert_string_equal(t->cfg.session_token, "");
    assert_string_equal(t->cfg.access_key_id, "AKIDEXAMPLE");

    /* A realistic, long session token is kept whole. */
    static char tok[2001];
    memset(tok, 'T', 2000);
    tok[2000] = '\0';
    kt_env_set(&t->env, "AWS_SESSION_TOKEN", tok);
    load_ok(t);
    assert_int_equal(strlen(t->cfg.session_token), 2000);
    /* One that does not fit is refused, not cut. */
    static char huge[5001];
    memset(huge, 'T', 5000);
    huge[5000] = '\0';
    expect_fail(t, "AWS_SESSION_TOKEN", huge, ERR_INVALID, "AWS_SESSION_TOKEN", "5000", NULL);
}

/* No keys in the environment: the container credentials provider, with the
 * SDKs' rules for the URI and the token; neither source is an init error
 * naming both. */
static void test_container_credentials(void **state)
{
    struct t *t = *state;
    struct kt_env *e = &t->env;
    base_env(e);
    kt_env_set(e, "AWS_ACCESS_KEY_ID", NULL);
    kt_env_set(e, "AWS_SECRET_ACCESS_KEY", NULL);
    kt_env_set(e, "AWS_SESSION_TOKEN", NULL);
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, ERR_MISSING);
    kt_assert_contains(t->msg, "AWS_ACCESS_KEY_ID");
    kt_assert_contains(t->msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");

    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9001/2021-04-23/creds");
    kt_env_set(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-1");
    load_ok(t);
    assert_int_equal(t->cfg.creds_source, KTE_CREDS_CONTAINER);
    assert_string_equal(t->cfg.container_uri, "http://127.0.0.1:9001/2021-04-23/creds");
    assert_string_equal(t->cfg.container_token, "tok-1");
    assert_string_equal(t->cfg.container_token_file, "");

    /* The token file wins over the token (the SDKs' order). */
    kt_env_set(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token");
    load_ok(t);
    assert_string_equal(t->cfg.container_token_file, "/var/run/token");

    /* A relative URI (ECS) goes to 169.254.170.2 and wins over a full one. */
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc");
    load_ok(t);
    assert_string_equal(t->cfg.container_uri, "http://169.254.170.2/v2/credentials/abc");
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/x");
    assert_int_equal(load(t), -1);
    kt_assert_contains(t->msg, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", NULL);

    /* Plain http only to loopback or the ECS/EKS addresses. */
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials");
    load_ok(t);
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example.com/x");
    load_ok(t);
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://creds.example.com/x");
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, ERR_INVALID);
    kt_assert_contains(t->msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    kt_assert_contains(t->msg, "169.254.170.2");

    /* A token with a line break would forge headers. */
    kt_env_set(e, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1/c");
    kt_env_set(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);
    kt_env_set(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "a\r\nX-Evil: 1");
    assert_int_equal(load(t), -1);
    kt_assert_contains(t->msg, "AWS_CONTAINER_AUTHORIZATION_TOKEN");

    /* Keys in the environment win over the endpoint. */
    kt_env_set(e, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok");
    kt_env_set(e, "AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    kt_env_set(e, "AWS_SECRET_ACCESS_KEY", "secret");
    load_ok(t);
    assert_int_equal(t->cfg.creds_source, KTE_CREDS_ENV);
}

static void test_snapstart_and_tenant(void **state)
{
    struct t *t = *state;
    load_ok(t);
    assert_false(t->cfg.snapstart);
    kt_env_set(&t->env, "AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start");
    kt_env_set(&t->env, "KTE_PARTITION_KEY", "tenant");
    load_ok(t);
    assert_true(t->cfg.snapstart);
    assert_int_equal(t->cfg.partition_key, KTE_PK_TENANT);
}

static void test_tls_trust(void **state)
{
    struct t *t = *state;
    load_ok(t);
    assert_string_equal(t->cfg.ca_file, KT_FIXTURES "/tls/placeholder-ca-bundle.pem");
    assert_string_equal(t->cfg.ca_dir, "");
    assert_false(t->cfg.tls_insecure);

    expect_fail(t, "SSL_CERT_FILE", KT_FIXTURES "/tls/no-such-file.pem", "Extension.TlsConfig",
                "SSL_CERT_FILE", "no-such-file.pem", NULL);
    /* A directory is not a bundle file. */
    expect_fail(t, "SSL_CERT_FILE", KT_FIXTURES "/tls", "Extension.TlsConfig", "SSL_CERT_FILE",
                NULL, NULL);

    base_env(&t->env);
    kt_env_set(&t->env, "SSL_CERT_FILE", NULL);
    kt_env_set(&t->env, "SSL_CERT_DIR", KT_FIXTURES "/tls");
    load_ok(t);
    assert_string_equal(t->cfg.ca_dir, KT_FIXTURES "/tls");
    assert_string_equal(t->cfg.ca_file, "");
    kt_env_set(&t->env, "SSL_CERT_DIR", KT_FIXTURES "/tls/placeholder-ca-bundle.pem");
    assert_int_equal(load(t), -1);
    assert_string_equal(t->errtype, "Extension.TlsConfig");
    kt_assert_contains(t->msg, "SSL_CERT_DIR");

    /* Plain http (a local endpoint) needs no trust store at all. */
    base_env(&t->env);
    kt_env_set(&t->env, "SSL_CERT_FILE", KT_FIXTURES "/tls/no-such-file.pem");
    kt_env_set(&t->env, "KTE_ENDPOINT", "http://127.0.0.1:4567");
    load_ok(t);
    assert_string_equal(t->cfg.ca_file, "");
    assert_false(t->cfg.tls_insecure);
}

static void test_tls_insecure_only_for_loopback(void **state)
{
    struct t *t = *state;
    static const char *const loopback[] = {"https://127.0.0.1:4567", "https://localhost:4567/",
                                           "https://[::1]:4567"};
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        base_env(&t->env);
        kt_env_set(&t->env, "KTE_ENDPOINT", loopback[i]);
        kt_env_set(&t->env, "KTE_TLS_INSECURE", "1");
        load_ok(t);
        assert_true(t->cfg.tls_insecure);
    }
    expect_fail(t, "KTE_TLS_INSECURE", "1", ERR_INVALID, "KTE_TLS_INSECURE",
                "https://kinesis.us-east-1.amazonaws.com", "loopback");
    /* "0" and "false" mean off. */
    static const char *const off[] = {"0", "false"};
    for (size_t i = 0; i < 2; i++) {
        base_env(&t->env);
        kt_env_set(&t->env, "KTE_TLS_INSECURE", off[i]);
        load_ok(t);
        assert_false(t->cfg.tls_insecure);
    }
}

static void test_url_is_loopback(void **state)
{
    (void)state;
    assert_true(kte_url_is_loopback("http://127.0.0.1:4567"));
    assert_true(kte_url_is_loopback("https://127.0.0.1"));
    assert_true(kte_url_is_loopback("https://127.1.2.3:1/x"));
    assert_true(kte_url_is_loopback("http://localhost:4567/"));
    assert_true(kte_url_is_loopback("http://localhost"));
    assert_true(kte_url_is_loopback("http://[::1]:4567"));
    assert_false(kte_url_is_loopback("https://kinesis.us-east-1.amazonaws.com"));
    assert_false(kte_url_is_loopback("http://localhost.example.com"));
    assert_false(kte_url_is_loopback("http://10.0.0.1"));
    assert_false(kte_url_is_loopback("http://[::2]:4567"));
    assert_false(kte_url_is_loopback("localhost"));
}

/* The host of https://127.0.0.1@evil.example/ is evil.example (127.0.0.1 is
 * userinfo), and 127.example.com is a DNS name: neither is loopback, so
 * neither may turn certificate verification off. */
static void test_url_is_loopback_host_not_prefix(void **state)
{
    (void)state;
    static const char *const not_loopback[] = {
        "https://127.0.0.1@evil.example/",
        "https://127.example.com",
        "https://localhost@evil.example:443",
    };
    for (size_t i = 0; i < sizeof not_loopback / sizeof not_loopback[0]; i++) {
        bool got = kte_url_is_loopback(not_loopback[i]);
        if (got)
            print_error("kte_url_is_loopback(\"%s\") is true\n", not_loopback[i]);
        assert_false(got);
    }
}

static void test_buffer_limit_and_overflow(void **state)
{
    struct t *t = *state;
    const long MiB = 1048576L;
    load_ok(t);
    assert_int_equal(t->cfg.max_buffer_bytes, 16 * MiB); /* memory size unknown */
    assert_int_equal(t->cfg.overflow, KTE_OVERFLOW_DROP_OLDEST);
    static const struct {
        const char *mem;
        long want;
    } cases[] = {
        {"128", 128 * MiB / 10}, {"1024", 1024 * MiB / 10}, {"50", 8 * MiB},
        {"10240", 128 * MiB},    {"1280", 128 * MiB},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kt_env_set(&t->env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", cases[i].mem);
        load_ok(t);
        assert_int_equal(t->cfg.max_buffer_bytes, cases[i].want);
    }
    kt_env_set(&t->env, "KTE_MAX_BUFFER_BYTES", "2097152");
    load_ok(t);
    assert_int_equal(t->cfg.max_buffer_bytes, 2097152);
    expect_fail(t, "KTE_MAX_BUFFER_BYTES", "1048575", ERR_INVALID, "KTE_MAX_BUFFER_BYTES",
                "from 1048576 to 1073741824", NULL);
    expect_fail(t, "KTE_MAX_BUFFER_BYTES", "1073741825", ERR_INVALID, "KTE_MAX_BUFFER_BYTES",
                "from 1048576 to 1073741824", NULL);

    base_env(&t->env);
    kt_env_set(&t->env, "KTE_OVERFLOW", "drop-newest");
    load_ok(t);
    assert_int_equal(t->cfg.overflow, KTE_OVERFLOW_DROP_NEWEST);
    kt_env_set(&t->env, "KTE_OVERFLOW", "drop-oldest");
    load_ok(t);
    assert_int_equal(t->cfg.overflow, KTE_OVERFLOW_DROP_OLDEST);
    expect_fail(t, "KTE_OVERFLOW", "block", ERR_INVALID, "KTE_OVERFLOW", "'block'", "drop-oldest");
    kt_assert_contains(t->msg, "drop-newest");
}

static void test_message_fits_small_buffers(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_BUFFER_MAX_ITEMS", "5");
    char errtype[8], msg[16];
    memset(errtype, 'X', sizeof errtype);
    memset(msg, 'X', sizeof msg);
    assert_int_equal(
        kte_config_load(&t->cfg, kt_env_get, &t->env, errtype, sizeof errtype, msg, sizeof msg),
        -1);
    assert_string_equal(errtype, "Extensi");
    assert_string_equal(msg, "KTE_BUFFER_MAX_");
}

static void test_process_env_adapter(void **state)
{
    (void)state;
    assert_int_equal(setenv("KTE_UNIT_TEST_VAR", "v42", 1), 0);
    assert_string_equal(kte_config_process_env("KTE_UNIT_TEST_VAR", NULL), "v42");
    assert_int_equal(unsetenv("KTE_UNIT_TEST_VAR"), 0);
    assert_null(kte_config_process_env("KTE_UNIT_TEST_VAR", NULL));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

/* Lambda sends at most about 2 x maxBytes per POST: the body limit follows
 * the subscription's maxBytes, and may not be set below what Lambda sends. */
static void test_body_limit_follows_buffering(void **state)
{
    struct t *t = *state;
    kt_env_set(&t->env, "KTE_BUFFER_MAX_BYTES", "1048576");
    load_ok(t);
    assert_int_equal(t->cfg.max_body_bytes, 4 * 1048576);
    kt_env_set(&t->env, "KTE_MAX_BODY_BYTES", "1048576");
    assert_int_equal(load(t), -1);
    kt_assert_contains(t->msg, "KTE_MAX_BODY_BYTES");
    kt_assert_contains(t->msg, "KTE_BUFFER_MAX_BYTES");
    kt_env_set(&t->env, "KTE_MAX_BODY_BYTES", "2097152");
    load_ok(t);
    assert_int_equal(t->cfg.max_body_bytes, 2097152);
}

/* Values copied into every record's JSON envelope must be UTF-8, or the
 * envelope is not JSON: refused at start with the variable named. */
static void test_envelope_values_must_be_utf8(void **state)
{
    struct t *t = *state;
    static const char *const bad[] = {"\xff",         "fn-\xc3\x28", "\xe2\x82",
                                      "\xed\xa0\x80", "\xc0\xaf",    "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_fail(t, "AWS_LAMBDA_FUNCTION_NAME", bad[i], ERR_INVALID, "AWS_LAMBDA_FUNCTION_NAME",
                    "UTF-8", NULL);
        expect_fail(t, "AWS_LAMBDA_FUNCTION_VERSION", bad[i], ERR_INVALID,
                    "AWS_LAMBDA_FUNCTION_VERSION", "UTF-8", NULL);
        expect_fail(t, "AWS_REGION", bad[i], ERR_INVALID, "AWS_REGION", "UTF-8", NULL);
    }
    base_env(&t->env);
    kt_env_set(&t->env, "AWS_LAMBDA_FUNCTION_NAME", "f\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80");
    load_ok(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_body_limit_follows_buffering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_values_must_be_utf8, setup, teardown),
        T(test_defaults),
        T(test_function_identity_defaults),
        T(test_empty_variable_means_unset),
        T(test_sam_local_listens_on_all_interfaces),
        T(test_managed_instances),
        T(test_endpoint_from_region),
        T(test_region_fallback_and_missing),
        T(test_endpoint_override),
        T(test_missing_stream),
        T(test_stream_name_and_arn_both_set),
        T(test_stream_arn),
        T(test_bad_stream_arn),
        T(test_stream_arn_outside_kinesis_pattern),
        T(test_stream_arn_in_other_region),
        T(test_stream_name_characters_and_length),
        T(test_buffering_ranges),
        T(test_other_numeric_ranges),
        T(test_types),
        T(test_flush),
        T(test_partition_key),
        T(test_record_format),
        T(test_protocol),
        T(test_log_level),
        T(test_credentials),
        T(test_container_credentials),
        T(test_snapstart_and_tenant),
        T(test_tls_trust),
        T(test_tls_insecure_only_for_loopback),
        T(test_url_is_loopback),
        T(test_url_is_loopback_host_not_prefix),
        T(test_buffer_limit_and_overflow),
        T(test_message_fits_small_buffers),
        T(test_process_env_adapter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
