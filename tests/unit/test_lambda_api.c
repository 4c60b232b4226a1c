/* kte_lambda_api without a network: /event/next bodies and the Telemetry API
 * subscription body, checked against the RIE's JSON schema. */
#include "kte_lambda_api.h"

#include "kte_test_util.h"

#define OWN(f)    KT_FIXTURES "/extensions/" f
#define SHARED(f) KT_SHARED_FIXTURES "/extensions/" f

/* Parses body[0..len) from an exact-size copy (no NUL after it). */
static int parse_event(const char *body, size_t len, struct kte_next_event *ev, char *err,
                       size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, body, len);
    memset(ev, 0x55, sizeof *ev); /* garbage that must not survive */
    int rc = kte_lambda_parse_event(copy, len, ev, err, errlen);
    free(copy);
    return rc;
}

static void parse_file(const char *path, struct kte_next_event *ev)
{
    size_t len = 0;
    char *text = kt_must_read(path, &len);
    char err[256] = "";
    int rc = parse_event(text, len, ev, err, sizeof err);
    if (rc != 0)
        print_error("%s: %s\n", path, err);
    assert_int_equal(rc, 0);
    free(text);
}

static void check_docs_invoke(const char *path)
{
    struct kte_next_event ev;
    parse_file(path, &ev);
    assert_int_equal(ev.type, KTE_NEXT_INVOKE);
    assert_string_equal(ev.request_id, "3da1f2dc-3222-475e-9205-e2e6c6318895");
    assert_int_equal(ev.deadline_ms, 676051);
    assert_string_equal(ev.shutdown_reason, "");
}

static void check_docs_shutdown_template(const char *path)
{
    struct kte_next_event ev;
    parse_file(path, &ev);
    assert_int_equal(ev.type, KTE_NEXT_SHUTDOWN);
    assert_string_equal(ev.shutdown_reason, "reason for shutdown");
    /* "the time and date that the function times out in Unix time
     * milliseconds" is no number: no deadline. */
    assert_int_equal(ev.deadline_ms, 0);
    assert_string_equal(ev.request_id, "");
}

static void test_docs_invoke_own(void **state)
{
    (void)state;
    check_docs_invoke(OWN("event-next.INVOKE.json"));
}

static void test_docs_invoke_shared(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    check_docs_invoke(SHARED("awsdocs-2023/event-next.INVOKE.json"));
}

static void test_docs_shutdown_template_own(void **state)
{
    (void)state;
    check_docs_shutdown_template(OWN("event-next.SHUTDOWN.TEMPLATE-placeholder-values.json"));
}

static void test_docs_shutdown_template_shared(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    check_docs_shutdown_template(
        SHARED("awsdocs-2023/event-next.SHUTDOWN.TEMPLATE-placeholder-values.json"));
}

static void test_own_realistic_events(void **state)
{
    (void)state;
    struct kte_next_event ev;
    parse_file(OWN("event-next.INVOKE.epoch-deadline.json"), &ev);
    assert_int_equal(ev.type, KTE_NEXT_INVOKE);
    assert_string_equal(ev.request_id, "459921b5-681c-4a96-beb0-81e0aa586026");
    assert_int_equal(ev.deadline_ms, INT64_C(1763897400123));

    parse_file(OWN("event-next.SHUTDOWN.SPINDOWN-upper-case.json"), &ev);
    assert_int_equal(ev.type, KTE_NEXT_SHUTDOWN);
    assert_string_equal(ev.shutdown_reason, "spindown");
    assert_int_equal(ev.deadline_ms, INT64_C(1763897402000));
    assert_string_equal(ev.request_id, "");

    parse_file(OWN("event-next.SHUTDOWN.timeout-string-deadline.json"), &ev);
    assert_int_equal(ev.type, KTE_NEXT_SHUTDOWN);
    assert_string_equal(ev.shutdown_reason, "timeout");
    assert_int_equal(ev.deadline_ms, INT64_C(1763897402500));
}

static void test_event_variants(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        enum kte_next_type type;
        const char *rid;
        int64_t deadline;
        const char *reason;
    } cases[] = {
        {"{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"FAILURE\",\"deadlineMs\":5}",
         KTE_NEXT_SHUTDOWN, "", 5, "failure"},
        {"{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"TimeOut\"}", KTE_NEXT_SHUTDOWN, "", 0,
         "timeout"},
        {"{\"eventType\":\"SHUTDOWN\"}", KTE_NEXT_SHUTDOWN, "", 0, ""},
        {"{\"eventType\":\"INVOKE\",\"deadlineMs\":1.7638974001e12,\"requestId\":\"r\"}",
         KTE_NEXT_INVOKE, "r", INT64_C(1763897400100), ""},
        {"{\"eventType\":\"INVOKE\",\"deadlineMs\":null,\"requestId\":\"r\"}", KTE_NEXT_INVOKE, "r",
         0, ""},
        {"{\"eventType\":\"INVOKE\",\"deadlineMs\":\"soon\",\"requestId\":\"r\"}", KTE_NEXT_INVOKE,
         "r", 0, ""},
        {"{\"requestId\":\"r2\",\"extra\":{\"eventType\":\"SHUTDOWN\"},\"eventType\":\"INVOKE\"}",
         KTE_NEXT_INVOKE, "r2", 0, ""},
        {"  {\"eventType\" : \"INVOKE\" ,\n\"deadlineMs\" : 1763897400999 }\n", KTE_NEXT_INVOKE, "",
         INT64_C(1763897400999), ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct kte_next_event ev;
        char err[128] = "";
        int rc = parse_event(cases[i].body, strlen(cases[i].body), &ev, err, sizeof err);
        if (rc != 0)
            print_error("case %zu: %s\n", i, err);
        assert_int_equal(rc, 0);
        assert_int_equal(ev.type, cases[i].type);
        assert_string_equal(ev.request_id, cases[i].rid);
        assert_int_equal(ev.deadline_ms, cases[i].deadline);
        assert_string_equal(ev.shutdown_reason, cases[i].reason);
    }
}

static void test_bad_events(void **state)
{
    (void)state;
    static const struct {
        const char *body, *needle;
    } bad[] = {
        {"", NULL},
        {"not json", "not JSON"},
        {"{\"eventType\":\"INVOKE\"", "not JSON"},
        {"{}", "eventType"},
        {"{\"eventType\":5}", "eventType"},
        {"{\"eventType\":\"invoke\"}", "'invoke'"},
        {"{\"eventType\":\"RESTORE\"}", "'RESTORE'"},
        {"[{\"eventType\":\"INVOKE\"}]", "eventType"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kte_next_event ev;
        char err[128] = "";
        int rc = parse_event(bad[i].body, strlen(bad[i].body), &ev, err, sizeof err);
        if (rc != -1)
            print_error("accepted: %s\n", bad[i].body);
        assert_int_equal(rc, -1);
        assert_true(strlen(err) > 0);
        if (bad[i].needle)
            kt_assert_contains(err, bad[i].needle);
    }
    /* Only len bytes count: a valid event followed by junk past len. */
    const char *body = "{\"eventType\":\"INVOKE\"}JUNK";
    struct kte_next_event ev;
    char err[128];
    assert_int_equal(kte_lambda_parse_event(body, 22, &ev, err, sizeof err), 0);
    assert_int_equal(ev.type, KTE_NEXT_INVOKE);
    assert_int_equal(kte_lambda_parse_event(body, 21, &ev, err, sizeof err), -1);
}

/* ---- subscription body ----------------------------------------------------------- */

static void default_cfg(struct kte_config *c)
{
    memset(c, 0, sizeof *c);
    c->types = KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION;
    c->buffer_timeout_ms = 25;
    c->buffer_max_bytes = 262144;
    c->buffer_max_items = 10000;
    c->schema_version = "2022-12-13";
}

static void test_subscribe_body_exact(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(
        kte_lambda_subscribe_body(&c, "http://sandbox.localdomain:4243/0123456789abcdef", &b), 0);
    kt_assert_bytes(b.data, b.len,
                    "{\"schemaVersion\":\"2022-12-13\",\"destination\":{\"protocol\":\"HTTP\","
                    "\"URI\":\"http://sandbox.localdomain:4243/0123456789abcdef\"},\"types\":["
                    "\"platform\",\"function\",\"extension\"],\"buffering\":{\"maxItems\":10000,"
                    "\"maxBytes\":262144,\"timeoutMs\":25}}");
    kte_buf_free(&b);

    static const struct {
        unsigned types;
        const char *json;
    } subsets[] = {
        {KTE_TYPE_PLATFORM, "[\"platform\"]"},
        {KTE_TYPE_FUNCTION, "[\"function\"]"},
        {KTE_TYPE_EXTENSION, "[\"extension\"]"},
        {KTE_TYPE_PLATFORM | KTE_TYPE_EXTENSION, "[\"platform\",\"extension\"]"},
        {KTE_TYPE_FUNCTION | KTE_TYPE_EXTENSION, "[\"function\",\"extension\"]"},
    };
    for (size_t i = 0; i < sizeof subsets / sizeof subsets[0]; i++) {
        c.types = subsets[i].types;
        c.buffer_timeout_ms = 30000;
        c.buffer_max_bytes = 1048576;
        c.buffer_max_items = 1000;
        c.schema_version = "2025-01-29";
        kte_buf_init(&b);
        assert_int_equal(kte_lambda_subscribe_body(&c, "http://h:1/p\"q", &b), 0);
        char want[512];
        snprintf(want, sizeof want,
                 "{\"schemaVersion\":\"2025-01-29\",\"destination\":{\"protocol\":\"HTTP\","
                 "\"URI\":\"http://h:1/p\\\"q\"},\"types\":%s,\"buffering\":{\"maxItems\":1000,"
                 "\"maxBytes\":1048576,\"timeoutMs\":30000}}",
                 subsets[i].json);
        kt_assert_bytes(b.data, b.len, want);
        kte_buf_free(&b);
    }
}

/* Semantically equal to the RIE's own accepted request. */
static void test_subscribe_body_matches_rie_request(void **state)
{
    (void)state;
    struct kte_config c;
    default_cfg(&c);
    c.types = KTE_TYPE_PLATFORM | KTE_TYPE_FUNCTION;
    c.schema_version = "2025-01-29";
    c.buffer_max_items = 5000;
    c.buffer_max_bytes = 262144;
    c.buffer_timeout_ms = 500;
    struct kte_buf b;
    kte_buf_init(&b);
    assert_int_equal(kte_lambda_subscribe_body(&c, "http://sandbox.localdomain:8080/telemetry", &b),
                     0);
    size_t len = 0;
    char *text =
        kt_must_read(OWN("telemetry-subscribe.request.valid_http_subscription_request.expect-200."
                         "json"),
                     &len);
    yajl_val want = kt_json_parse(text, len), got = kt_json_parse(b.data, b.len);
    assert_non_null(want);
    assert_non_null(got);
    assert_int_equal(YAJL_GET_OBJECT(got)->len, YAJL_GET_OBJECT(want)->len);
    assert_string_equal(kt_json_str(got, "schemaVersion", NULL),
                        kt_json_str(want, "schemaVersion", NULL));
    assert_string_equal(kt_json_str(got, "destination", "protocol"),
                        kt_json_str(want, "destination", "protocol"));
    assert_string_equal(kt_json_str(got, "destination", "URI"),
                        kt_json_str(want, "destination", "URI"));
    static const char *const keys[] = {"maxItems", "maxBytes", "timeoutMs"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(kt_json_int(got, "buffering", keys[i]),
                         kt_json_int(want, "buffering", keys[i]));
    yajl_val gt = kt_json_get(got, yajl_t_array, "types", NULL, NULL);
    yajl_val wt = kt_json_get(want, yajl_t_array, "types", NULL, NULL);
    assert_non_null(gt);
    assert_non_null(wt);
    assert_int_equal(YAJL_GET_ARRAY(gt)->len, YAJL_GET_ARRAY(wt)->len);
    for (size_t i = 0; i < YAJL_GET_ARRAY(wt)->len; i++)
        assert_string_equal(kt_str(YAJL_GET_ARRAY(gt)->values[i]),
                            kt_str(YAJL_GET_ARRAY(wt)->values[i]));
    yajl_tree_free(want);
    yajl_tree_free(got);
    free(text);
    kte_buf_free(&b);
}

/* The fields of body that the RIE's schema constrains, checked against the
 * bounds read from the schema itself. */
static void check_against_schema(yajl_val schema, const char *body, size_t len, bool managed)
{
    yajl_val v = kt_json_parse(body, len);
    assert_non_null(v);
    yajl_val req = kt_json_get(schema, yajl_t_array, "required", NULL, NULL);
    assert_non_null(req);
    for (size_t i = 0; i < YAJL_GET_ARRAY(req)->len; i++) {
        const char *k = kt_str(YAJL_GET_ARRAY(req)->values[i]);
        assert_non_null(kt_json_get(v, yajl_t_any, k, NULL, NULL));
    }
    /* schemaVersion: the RIE (Managed Instances) knows only its enum. */
    const char *sv = kt_json_str(v, "schemaVersion", NULL);
    assert_non_null(sv);
    if (managed) {
        yajl_val en = kt_json_get(schema, yajl_t_array, "properties", "schemaVersion", "enum");
        assert_non_null(en);
        bool found = false;
        for (size_t i = 0; i < YAJL_GET_ARRAY(en)->len; i++)
            found |= !strcmp(sv, kt_str(YAJL_GET_ARRAY(en)->values[i]));
        assert_true(found);
    }
    /* types: at least minItems, each in the enum. */
    yajl_val types = kt_json_get(v, yajl_t_array, "types", NULL, NULL);
    assert_non_null(types);
    const char *tp[] = {"properties", "types", "minItems", NULL};
    yajl_val min_items = yajl_tree_get(schema, tp, yajl_t_number);
    assert_non_null(min_items);
    assert_true((long long)YAJL_GET_ARRAY(types)->len >= YAJL_GET_INTEGER(min_items));
    const char *ep[] = {"properties", "types", "items", "enum", NULL};
    yajl_val ten = yajl_tree_get(schema, ep, yajl_t_array);
    assert_non_null(ten);
    for (size_t i = 0; i < YAJL_GET_ARRAY(types)->len; i++) {
        const char *t = kt_str(YAJL_GET_ARRAY(types)->values[i]);
        bool found = false;
        for (size_t k = 0; k < YAJL_GET_ARRAY(ten)->len; k++)
            found |= !strcmp(t, kt_str(YAJL_GET_ARRAY(ten)->values[k]));
        assert_true(found);
    }
    /* destination: the HTTP form. */
    assert_string_equal(kt_json_str(v, "destination", "protocol"), "HTTP");
    const char *uri = kt_json_str(v, "destination", "URI");
    assert_non_null(uri);
    assert_true(strlen(uri) >= 1);
    /* buffering: integers within [minimum, maximum]. */
    static const char *const keys[] = {"maxItems", "maxBytes", "timeoutMs"};
    for (size_t i = 0; i < 3; i++) {
        const char *minp[] = {"properties", "buffering", "properties", keys[i], "minimum", NULL};
        const char *maxp[] = {"properties", "buffering", "properties", keys[i], "maximum", NULL};
        yajl_val lo = yajl_tree_get(schema, minp, yajl_t_number);
        yajl_val hi = yajl_tree_get(schema, maxp, yajl_t_number);
        assert_non_null(lo);
        assert_non_null(hi);
        long long x = kt_json_int(v, "buffering", keys[i]);
        if (x < YAJL_GET_INTEGER(lo) || x > YAJL_GET_INTEGER(hi))
            print_error("buffering.%s=%lld outside [%lld, %lld]\n", keys[i], x,
                        YAJL_GET_INTEGER(lo), YAJL_GET_INTEGER(hi));
        assert_true(x >= YAJL_GET_INTEGER(lo) && x <= YAJL_GET_INTEGER(hi));
    }
    yajl_tree_free(v);
}

/* Whatever kte_config_load accepts yields a body the schema accepts. */
static void test_subscribe_body_satisfies_rie_schema(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = kt_must_read(OWN("telemetry-subscription-schema.json"), &len);
    yajl_val schema = kt_json_parse(text, len);
    assert_non_null(schema);

    static const char *const timeouts[] = {NULL, "25", "1000", "30000"};
    static const char *const bytes[] = {NULL, "262144", "500000", "1048576"};
    static const char *const items[] = {NULL, "1000", "5000", "10000"};
    static const char *const types[] = {NULL, "platform", "function,extension"};
    static const char *const init[] = {NULL, "lambda-managed-instances"};
    size_t checked = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t t = 0; t < 3; t++)
            for (size_t m = 0; m < 2; m++) {
                struct kt_env env;
                memset(&env, 0, sizeof env);
                kt_env_set(&env, "KTE_STREAM_NAME", "s");
                kt_env_set(&env, "AWS_REGION", "us-east-1");
                kt_env_set(&env, "AWS_ACCESS_KEY_ID", "AKID");
                kt_env_set(&env, "AWS_SECRET_ACCESS_KEY", "secret");
                kt_env_set(&env, "KTE_ENDPOINT", "http://127.0.0.1:4567");
                kt_env_set(&env, "KTE_BUFFER_TIMEOUT_MS", timeouts[a]);
                kt_env_set(&env, "KTE_BUFFER_MAX_BYTES", bytes[(a + t) % 4]);
                kt_env_set(&env, "KTE_BUFFER_MAX_ITEMS", items[(a + m) % 4]);
                kt_env_set(&env, "KTE_TYPES", types[t]);
                kt_env_set(&env, "AWS_LAMBDA_INITIALIZATION_TYPE", init[m]);
                struct kte_config *c = calloc(1, sizeof *c);
                assert_non_null(c);
                char et[64], msg[512];
                int rc = kte_config_load(c, kt_env_get, &env, et, sizeof et, msg, sizeof msg);
                if (rc != 0)
                    print_error("%s: %s\n", et, msg);
                assert_int_equal(rc, 0);
                struct kte_buf b;
                kte_buf_init(&b);
                assert_int_equal(
                    kte_lambda_subscribe_body(c, "http://sandbox.localdomain:4243/x", &b), 0);
                check_against_schema(schema, b.data, b.len, m == 1);
                kte_buf_free(&b);
                free(c);
                checked++;
            }
    assert_int_equal(checked, 24);
    yajl_tree_free(schema);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docs_invoke_own),
        cmocka_unit_test(test_docs_invoke_shared),
        cmocka_unit_test(test_docs_shutdown_template_own),
        cmocka_unit_test(test_docs_shutdown_template_shared),
        cmocka_unit_test(test_own_realistic_events),
        cmocka_unit_test(test_event_variants),
        cmocka_unit_test(test_bad_events),
        cmocka_unit_test(test_subscribe_body_exact),
        cmocka_unit_test(test_subscribe_body_matches_rie_request),
        cmocka_unit_test(test_subscribe_body_satisfies_rie_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
