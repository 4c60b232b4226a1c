/* kte_event_parse: splits a Telemetry API body into events whose raw slices
 * are exactly the events' bytes in the body; all or nothing on bad JSON. */
#include "kte_buf.h"
#include "kte_event.h"

#include "kte_test_util.h"

/* The body under test lives in an exact-size heap copy without a NUL, so
 * ASan reports any read past its end and slices can be checked by offset. */
struct parsed {
    char *body;
    size_t len;
    struct kte_event_list l;
    int rc;
    char err[512];
};

static void parse(struct parsed *p, const char *body, size_t len)
{
    p->body = malloc(len ? len : 1);
    assert_non_null(p->body);
    if (len)
        memcpy(p->body, body, len);
    p->len = len;
    kte_event_list_init(&p->l);
    p->err[0] = '\0';
    p->rc = kte_event_parse(p->body, len, &p->l, p->err, sizeof p->err);
}

static void parsed_free(struct parsed *p)
{
    kte_event_list_free(&p->l);
    free(p->body);
}

/* Event i is exactly body[off, off + len). */
static void assert_slice(const struct parsed *p, size_t i, size_t off, size_t len)
{
    assert_true(i < p->l.n);
    const struct kte_event_view *v = &p->l.v[i];
    if (v->raw != p->body + off || v->raw_len != len)
        print_error("event %zu: want body[%zu..+%zu) '%.*s'\n      got body[%td..+%zu) '%.*s'\n", i,
                    off, len, (int)len, p->body + off, v->raw - p->body, v->raw_len,
                    (int)v->raw_len, v->raw);
    assert_ptr_equal(v->raw, p->body + off);
    assert_int_equal(v->raw_len, len);
}

static void assert_fails(const char *body, size_t len, const char *needle)
{
    struct parsed p;
    parse(&p, body, len);
    if (p.rc != -1)
        print_error("accepted (%zu events): %.*s\n", p.l.n, (int)len, body);
    assert_int_equal(p.rc, -1);
    assert_int_equal(p.l.n, 0);
    assert_true(strlen(p.err) > 0);
    if (needle)
        kt_assert_contains(p.err, needle);
    parsed_free(&p);
}

/* What kte_event_parse should copy out, computed with yajl_tree instead. */
static void expected_fields(const char *raw, size_t len, char *type, char *rid)
{
    type[0] = rid[0] = '\0';
    yajl_val v = kt_json_parse(raw, len);
    assert_non_null(v);
    const char *t = kt_json_str(v, "type", NULL);
    if (t && strlen(t) < KTE_EVENT_TYPE_MAX)
        strcpy(type, t);
    const char *r = kt_json_str(v, "record", "requestId");
    if (r && strlen(r) < KTE_EVENT_RID_MAX)
        strcpy(rid, r);
    yajl_tree_free(v);
}

static void assert_fields_match_oracle(const struct kte_event_view *e)
{
    char type[KTE_EVENT_TYPE_MAX], rid[KTE_EVENT_RID_MAX];
    expected_fields(e->raw, e->raw_len, type, rid);
    assert_string_equal(e->type, type);
    assert_string_equal(e->request_id, rid);
}

/* ---- shapes of bodies ---------------------------------------------------- */

static void test_single_object_is_one_event(void **state)
{
    (void)state;
    const char *body = " \n{\"type\":\"function\",\"record\":\"x\"}\r\n";
    struct parsed p;
    parse(&p, body, strlen(body));
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 1);
    assert_slice(&p, 0, 2, strlen("{\"type\":\"function\",\"record\":\"x\"}"));
    assert_string_equal(p.l.v[0].type, "function");
    assert_string_equal(p.l.v[0].request_id, "");
    parsed_free(&p);

    parse(&p, "{}", 2);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 1);
    assert_slice(&p, 0, 0, 2);
    assert_string_equal(p.l.v[0].type, "");
    parsed_free(&p);
}

static void test_empty_array_is_no_events(void **state)
{
    (void)state;
    static const char *const bodies[] = {"[]", " [ \n\t] ", "\r\n[\r\n]\r\n"};
    for (size_t i = 0; i < 3; i++) {
        struct parsed p;
        parse(&p, bodies[i], strlen(bodies[i]));
        assert_int_equal(p.rc, 0);
        assert_int_equal(p.l.n, 0);
        parsed_free(&p);
    }
}

/* Events separated by every kind of JSON whitespace, each with its own
 * oddities, come back as their exact bytes. */
static void test_exact_slices_with_odd_whitespace(void **state)
{
    (void)state;
    static const char *const events[] = {
        "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"function\",\"record\":\"caf\\u00e9 "
        "\\ud83d\\ude00 \\\"q\\\" \\\\ \\/\"}",
        "{ \"type\" : \"platform.runtimeDone\" ,\n\t\"record\" : { \"requestId\" : \"r-1\" , "
        "\"metrics\" : { \"durationMs\" : 0.62 , \"x\" : 1.0e3 , \"y\" : -2E-2 } , \"spans\" : [ "
        "[ ] , { } , [ { \"a\" : [ 1 , [ 2 ] ] } ] ] } }",
        "{\"type\":\"platform.report\",\"record\":{\"requestId\":\"r-2\",\"metrics\":{"
        "\"durationMs\""
        ":693.92,\"billedDurationMs\":694}}}",
        "{\"type\":\"function\",\"record\":{\"level\":\"INFO\",\"requestId\":\"r-3\",\"message\":"
        "\"\\u00e9\\u20ac\\ud83d\\ude00 raw: \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}}",
        "\"a bare string event\"",
        "1.0e3",
        "-0.62",
        "true",
        "false",
        "null",
        "[1,{\"type\":\"nested\"},[]]",
        "{\"type\":\"platform.futureEvent\",\"record\":{\"whatever\":[{}]}}",
    };
    static const char *const seps[] = {"\r\n[\t", " \r\n,\t", ",",      "\n , \n", "  ,",
                                       ",\r",     "\t,\t",    ", ",     ",",       ",\n",
                                       ",",       ",",        "\n]\r\n"};
    const size_t n = sizeof events / sizeof events[0];
    assert_int_equal(sizeof seps / sizeof seps[0], n + 1);
    char body[4096];
    size_t off[16], len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(body + len, "%s", seps[i]);
        off[i] = len;
        len += (size_t)sprintf(body + len, "%s", events[i]);
    }
    len += (size_t)sprintf(body + len, "%s", seps[n]);

    struct parsed p;
    parse(&p, body, len);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_slice(&p, i, off[i], strlen(events[i]));

    assert_string_equal(p.l.v[0].type, "function");
    assert_string_equal(p.l.v[0].request_id, "");
    assert_string_equal(p.l.v[1].type, "platform.runtimeDone");
    assert_string_equal(p.l.v[1].request_id, "r-1");
    assert_string_equal(p.l.v[2].type, "platform.report");
    assert_string_equal(p.l.v[2].request_id, "r-2");
    assert_string_equal(p.l.v[3].type, "function");
    assert_string_equal(p.l.v[3].request_id, "r-3");
    for (size_t i = 4; i < 11; i++) { /* non-object elements pass through */
        assert_string_equal(p.l.v[i].type, "");
        assert_string_equal(p.l.v[i].request_id, "");
    }
    assert_string_equal(p.l.v[11].type, "platform.futureEvent");
    parsed_free(&p);
}

static void test_scalar_elements_pass_through(void **state)
{
    (void)state;
    const char *body = "[\"x\",1,[2],{\"type\":\"t\"},null]";
    struct parsed p;
    parse(&p, body, strlen(body));
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 5);
    assert_slice(&p, 0, 1, 3);
    assert_slice(&p, 1, 5, 1);
    assert_slice(&p, 2, 7, 3);
    assert_slice(&p, 3, 11, 12);
    assert_slice(&p, 4, 24, 4);
    assert_string_equal(p.l.v[3].type, "t");
    parsed_free(&p);
}

/* ---- type and record.requestId -------------------------------------------- */

static void test_type_and_request_id_extraction(void **state)
{
    (void)state;
    static const struct {
        const char *event, *type, *rid;
    } cases[] = {
        /* runtimeDone and report carry record.requestId */
        {"{\"type\":\"platform.runtimeDone\",\"record\":{\"requestId\":\"abc\"}}",
         "platform.runtimeDone", "abc"},
        {"{\"record\":{\"status\":\"success\",\"requestId\":\"def\"},\"type\":\"platform.report\"}",
         "platform.report", "def"},
        /* only record.requestId counts, not deeper or elsewhere */
        {"{\"type\":\"x\",\"requestId\":\"top\"}", "x", ""},
        {"{\"type\":\"x\",\"record\":{\"m\":{\"requestId\":\"deep\"}}}", "x", ""},
        {"{\"type\":\"x\",\"record\":[{\"requestId\":\"in-array\"}]}", "x", ""},
        {"{\"type\":\"x\",\"other\":{\"requestId\":\"other\"},\"record\":{}}", "x", ""},
        /* a requestId after a nested object inside record still counts */
        {"{\"type\":\"x\",\"record\":{\"m\":{\"requestId\":\"deep\"},\"requestId\":\"mine\"}}", "x",
         "mine"},
        /* type inside record is not the event's type */
        {"{\"record\":{\"type\":\"inner\",\"requestId\":\"r\"}}", "", "r"},
        {"{\"record\":{\"type\":\"inner\"},\"type\":\"outer\"}", "outer", ""},
        /* non-string values are ignored */
        {"{\"type\":5,\"record\":{\"requestId\":7}}", "", ""},
        {"{\"type\":[\"a\"],\"record\":{\"requestId\":[\"b\"]}}", "", ""},
        {"{\"type\":{\"k\":\"a\"},\"record\":{\"requestId\":{\"k\":\"b\"}}}", "", ""},
        /* text record */
        {"{\"type\":\"function\",\"record\":\"requestId\"}", "function", ""},
        /* escapes are decoded in the copies (never in the raw slice) */
        {"{\"type\":\"platform.\\u0072eport\",\"record\":{\"requestId\":\"r\\u00e9\"}}",
         "platform.report", "r\xc3\xa9"},
        /* the last of duplicate keys wins */
        {"{\"type\":\"a\",\"type\":\"b\"}", "b", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct parsed p;
        parse(&p, cases[i].event, strlen(cases[i].event));
        assert_int_equal(p.rc, 0);
        assert_int_equal(p.l.n, 1);
        assert_slice(&p, 0, 0, strlen(cases[i].event));
        if (strcmp(p.l.v[0].type, cases[i].type) || strcmp(p.l.v[0].request_id, cases[i].rid))
            print_error("case %zu: %s\n", i, cases[i].event);
        assert_string_equal(p.l.v[0].type, cases[i].type);
        assert_string_equal(p.l.v[0].request_id, cases[i].rid);
        parsed_free(&p);
    }
}

/* record.tenantId points into the body, only as written without escapes
 * and within a partition key's 256 bytes. */
static void test_tenant_id(void **state)
{
    (void)state;
    char long_ok[400], too_long[400];
    snprintf(long_ok, sizeof long_ok, "{\"record\":{\"tenantId\":\"%0256d\"}}", 0);
    snprintf(too_long, sizeof too_long, "{\"record\":{\"tenantId\":\"%0257d\"}}", 0);
    const struct {
        const char *event, *tenant;
    } cases[] = {
        {"{\"type\":\"platform.start\",\"record\":{\"requestId\":\"r\",\"tenantId\":\"blue-42\"}}",
         "blue-42"},
        {"{\"record\": { \"tenantId\" :  \"t 1\" }}", "t 1"},
        {"{\"record\":{\"timestamp\":\"x\",\"tenantId\":\"caf\xc3\xa9\"}}", "caf\xc3\xa9"},
        {"{\"tenantId\":\"top\",\"record\":{}}", ""},
        {"{\"record\":{\"m\":{\"tenantId\":\"deep\"}}}", ""},
        {"{\"record\":{\"tenantId\":7}}", ""},
        {"{\"record\":{\"tenantId\":\"\"}}", ""},
        {"{\"record\":{\"tenantId\":\"a\\u0062\"}}", ""}, /* escaped: not used */
        {"{\"record\":\"tenantId\"}", ""},
        {long_ok, long_ok + 23},
        {too_long, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct parsed p;
        parse(&p, cases[i].event, strlen(cases[i].event));
        assert_int_equal(p.rc, 0);
        assert_int_equal(p.l.n, 1);
        const struct kte_event_view *v = &p.l.v[0];
        size_t want = cases[i].tenant == long_ok + 23 ? 256 : strlen(cases[i].tenant);
        if (v->tenant_len != want)
            print_error("case %zu: %s\n", i, cases[i].event);
        assert_int_equal(v->tenant_len, want);
        if (want) {
            assert_memory_equal(v->tenant, cases[i].tenant, want);
            assert_true(v->tenant >= p.body && v->tenant + want <= p.body + p.len);
        }
        parsed_free(&p);
    }
}

static void test_overlong_type_and_request_id_are_empty(void **state)
{
    (void)state;
    char t63[64], t64[65], body[512];
    memset(t63, 't', 63);
    t63[63] = '\0';
    memset(t64, 't', 64);
    t64[64] = '\0';
    struct parsed p;

    snprintf(body, sizeof body, "[{\"type\":\"%s\",\"record\":{\"requestId\":\"%s\"}}]", t63, t63);
    parse(&p, body, strlen(body));
    assert_int_equal(p.l.n, 1);
    assert_string_equal(p.l.v[0].type, t63);
    assert_string_equal(p.l.v[0].request_id, t63);
    parsed_free(&p);

    snprintf(body, sizeof body, "[{\"type\":\"%s\",\"record\":{\"requestId\":\"%s\"}}]", t64, t64);
    parse(&p, body, strlen(body));
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 1); /* still passes through */
    assert_slice(&p, 0, 1, strlen(body) - 2);
    assert_string_equal(p.l.v[0].type, "");
    assert_string_equal(p.l.v[0].request_id, "");
    parsed_free(&p);
}

/* ---- fixtures ----------------------------------------------------------- */

/* A file holding one event, parsed as a body of its own and as the only
 * element of an array: the slice is the file without surrounding blanks. */
static void check_single_event_file(const char *path)
{
    size_t len = 0;
    char *text = kt_must_read(path, &len);
    size_t off = 0, evlen = len;
    kt_trim(text, &off, &evlen);

    struct parsed p;
    parse(&p, text, len);
    if (p.rc != 0)
        print_error("%s: %s\n", path, p.err);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 1);
    assert_slice(&p, 0, off, evlen);
    assert_fields_match_oracle(&p.l.v[0]);
    parsed_free(&p);

    char *arr = malloc(len + 8);
    assert_non_null(arr);
    memcpy(arr, "[\n", 2);
    memcpy(arr + 2, text, len);
    memcpy(arr + 2 + len, " \r\n]", 4);
    parse(&p, arr, len + 6);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, 1);
    assert_slice(&p, 0, 2 + off, evlen);
    parsed_free(&p);
    free(arr);
    free(text);
}

/* Several one-event files joined into one body with assorted separators. */
static void check_files_as_one_array(const char *const *paths, size_t n)
{
    static const char *const seps[] = {" ", "\n\t", "\r\n  ", "", "\t \n"};
    struct kte_buf body;
    kte_buf_init(&body);
    size_t *off = calloc(n, sizeof *off), *len = calloc(n, sizeof *len);
    assert_non_null(off);
    assert_non_null(len);
    assert_int_equal(kte_buf_puts(&body, "["), 0);
    for (size_t i = 0; i < n; i++) {
        size_t flen = 0;
        char *text = kt_must_read(paths[i], &flen);
        if (i)
            assert_int_equal(kte_buf_puts(&body, ","), 0);
        assert_int_equal(kte_buf_puts(&body, seps[i % 5]), 0);
        size_t o = 0, l = flen;
        kt_trim(text, &o, &l);
        off[i] = body.len + o;
        len[i] = l;
        assert_int_equal(kte_buf_append(&body, text, flen), 0);
        assert_int_equal(kte_buf_puts(&body, seps[(i + 2) % 5]), 0);
        free(text);
    }
    assert_int_equal(kte_buf_puts(&body, "]"), 0);

    struct parsed p;
    parse(&p, body.data, body.len);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_slice(&p, i, off[i], len[i]);
        assert_fields_match_oracle(&p.l.v[i]);
    }
    parsed_free(&p);
    kte_buf_free(&body);
    free(off);
    free(len);
}

/* A body file holding a JSON array: slices match an independent splitter. */
static void check_batch_file(const char *path, size_t want_n, const char *const *types,
                             const char *const *rids)
{
    size_t len = 0;
    char *text = kt_must_read(path, &len);
    struct kt_span spans[64];
    size_t n = kt_split_array(text, len, spans, 64);
    assert_int_equal(n, want_n);

    struct parsed p;
    parse(&p, text, len);
    if (p.rc != 0)
        print_error("%s: %s\n", path, p.err);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, want_n);
    for (size_t i = 0; i < n; i++) {
        assert_slice(&p, i, spans[i].off, spans[i].len);
        assert_string_equal(p.l.v[i].type, types[i]);
        assert_string_equal(p.l.v[i].request_id, rids[i]);
        assert_fields_match_oracle(&p.l.v[i]);
    }
    parsed_free(&p);
    free(text);
}

#define OWN(f)    KT_FIXTURES "/telemetry/" f
#define SHARED(f) KT_SHARED_FIXTURES "/telemetry/" f

static const char *const own_single_events[] = {
    OWN("platform.initStart.json"),          OWN("platform.runtimeDone.json"),
    OWN("platform.extension.json"),          OWN("platform.logsDropped.json"),
    OWN("function.text-record.json"),        OWN("extension.text-record.json"),
    OWN("function.json-format-record.json"),
};

static const char *const shared_single_events[] = {
    SHARED("awsdocs-2023/platform.initStart.json"),
    SHARED("awsdocs-2023/platform.initReport.json"),
    SHARED("awsdocs-2023/platform.start.DOC-BUG-type-is-initStart.json"),
    SHARED("awsdocs-2023/platform.runtimeDone.json"),
    SHARED("awsdocs-2023/platform.extension.json"),
    SHARED("awsdocs-2023/platform.telemetrySubscription.json"),
    SHARED("awsdocs-2023/platform.logsDropped.json"),
    SHARED("awsdocs-2023/function.text-record.json"),
    SHARED("awsdocs-2023/extension.text-record.json"),
    SHARED("awsdocs-2023/event-metadata-example.function.json"),
    SHARED("awsdocs-current/platform.initStart.json"),
    SHARED("awsdocs-current/platform.initReport.json"),
    SHARED("awsdocs-current/platform.start.json"),
    SHARED("awsdocs-current/platform.restoreStart.json"),
    SHARED("awsdocs-current/platform.restoreRuntimeDone.json"),
    SHARED("awsdocs-current/platform.restoreReport.json"),
    SHARED("awsdocs-current/platform.logsDropped.json"),
    SHARED("awsdocs-current/function.json-format-record.json"),
    SHARED("awsdocs-current/extension.json-format-record.json"),
    SHARED("aws-lambda-rust-runtime/function.text-record.json"),
    SHARED("aws-lambda-rust-runtime/extension.text-record.json"),
    SHARED("aws-lambda-rust-runtime/platform.start.json"),
    SHARED("aws-lambda-rust-runtime/platform.initStart.json"),
    SHARED("aws-lambda-rust-runtime/platform.runtimeDone.with-spans-metrics.json"),
    SHARED("aws-lambda-rust-runtime/platform.report.json"),
    SHARED("aws-lambda-rust-runtime/platform.telemetrySubscription.json"),
    SHARED("aws-lambda-rust-runtime/platform.initRuntimeDone.json"),
    SHARED("aws-lambda-rust-runtime/platform.extension.json"),
    SHARED("aws-lambda-rust-runtime/platform.initReport.json"),
    SHARED("datadog-lambda-extension/platform.logsDropped.json"),
    SHARED("datadog-lambda-extension/platform.restoreStart.empty-record.json"),
    SHARED("datadog-lambda-extension/platform.restoreReport.success.json"),
    SHARED("datadog-lambda-extension/function.json-object-record.json"),
    SHARED("datadog-lambda-extension/platform.restoreReport.failure-errorType.json"),
    SHARED("datadog-lambda-extension/function.text-record.json"),
    SHARED("datadog-lambda-extension/platform.report.managed-instance.json"),
    SHARED("datadog-lambda-extension/extension.text-record.json"),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_own_single_event_fixtures(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(own_single_events); i++)
        check_single_event_file(own_single_events[i]);
    check_files_as_one_array(own_single_events, COUNT(own_single_events));
}

static void test_own_fixture_field_values(void **state)
{
    (void)state;
    /* Spot checks against values read off the docs by hand. */
    static const struct {
        const char *file, *type, *rid;
    } cases[] = {
        {OWN("platform.runtimeDone.json"), "platform.runtimeDone",
         "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa"},
        {OWN("function.text-record.json"), "function", ""},
        {OWN("function.json-format-record.json"), "function",
         "79b4f56e-95b1-4643-9700-2807f4e68189"},
        {OWN("platform.initStart.json"), "platform.initStart", ""},
    };
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len = 0;
        char *text = kt_must_read(cases[i].file, &len);
        struct parsed p;
        parse(&p, text, len);
        assert_int_equal(p.l.n, 1);
        assert_string_equal(p.l.v[0].type, cases[i].type);
        assert_string_equal(p.l.v[0].request_id, cases[i].rid);
        parsed_free(&p);
        free(text);
    }
}

static void test_own_mixed_batch(void **state)
{
    (void)state;
    static const char *const types[] = {"platform.initStart", "function", "platform.runtimeDone",
                                        "platform.report",    "function", "platform.somethingNew",
                                        "extension"};
    static const char *const rids[] = {"",
                                       "",
                                       "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
                                       "6d68ca91-49c9-448d-89b8-7ca3e6dc66aa",
                                       "79b4f56e-95b1-4643-9700-2807f4e68189",
                                       "",
                                       ""};
    check_batch_file(OWN("batch.docs-mixed.json"), 7, types, rids);

    /* And two slices byte for byte, escapes and spacing untouched. */
    size_t len = 0;
    char *text = kt_must_read(OWN("batch.docs-mixed.json"), &len);
    struct parsed p;
    parse(&p, text, len);
    assert_int_equal(p.l.n, 7);
    kt_assert_bytes(p.l.v[1].raw, p.l.v[1].raw_len,
                    "{\"time\":\"2022-10-12T00:03:50.000Z\",\"type\":\"function\",\"record\":\"["
                    "INFO] caf\\u00e9 \\u2603 \\ud83d\\ude00 \\\"quoted\\\" back\\\\slash "
                    "caf\\u00C9\"}");
    kt_assert_bytes(p.l.v[6].raw, p.l.v[6].raw_len,
                    "{\"record\": \"[INFO] Hello world, I am an extension!\", \"type\": "
                    "\"extension\", \"time\": \"2022-10-12T00:03:50.000Z\"}");
    assert_memory_equal(p.l.v[2].raw, "{ \"time\" : \"2022-10-12T00:01:15.000Z\" ,", 39);
    assert_memory_equal(p.l.v[2].raw + p.l.v[2].raw_len - 8, "16 } } }", 8);
    parsed_free(&p);
    free(text);
}

static void test_shared_single_event_fixtures(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    for (size_t i = 0; i < COUNT(shared_single_events); i++)
        check_single_event_file(shared_single_events[i]);
    check_files_as_one_array(shared_single_events, COUNT(shared_single_events));
}

static void test_shared_datadog_batches(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    static const char *const t1[] = {"platform.initStart"};
    static const char *const r1[] = {""};
    check_batch_file(SHARED("datadog-lambda-extension/batch.listener-test.initStart.json"), 1, t1,
                     r1);
    static const char *const t2[] = {"platform.initStart", "platform.start"};
    static const char *const r2[] = {"", "459921b5-681c-4a96-beb0-81e0aa586026"};
    check_batch_file(
        SHARED("datadog-lambda-extension/batch.logs-integration-test.initStart-start.json"), 2, t2,
        r2);

    /* The one-element body minus its brackets is the event. */
    size_t len = 0;
    char *text =
        kt_must_read(SHARED("datadog-lambda-extension/batch.listener-test.initStart.json"), &len);
    struct parsed p;
    parse(&p, text, len);
    assert_int_equal(p.l.n, 1);
    assert_int_equal(text[len - 1], ']');
    assert_slice(&p, 0, 1, len - 2);
    parsed_free(&p);
    free(text);
}

static void test_shared_rust_runtime_request_ids(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    static const char *const files[] = {
        SHARED("aws-lambda-rust-runtime/platform.runtimeDone.with-spans-metrics.json"),
        SHARED("aws-lambda-rust-runtime/platform.report.json"),
        SHARED("aws-lambda-rust-runtime/platform.start.json"),
    };
    static const char *const types[] = {"platform.runtimeDone", "platform.report",
                                        "platform.start"};
    for (size_t i = 0; i < 3; i++) {
        size_t len = 0;
        char *text = kt_must_read(files[i], &len);
        struct parsed p;
        parse(&p, text, len);
        assert_int_equal(p.l.n, 1);
        assert_string_equal(p.l.v[0].type, types[i]);
        assert_string_equal(p.l.v[0].request_id, "459921b5-681c-4a96-beb0-81e0aa586026");
        parsed_free(&p);
        free(text);
    }
}

/* ---- malformed bodies: -1, a message and no events ------------------------ */

static void check_invalid_file(const char *path)
{
    size_t len = 0;
    char *text = kt_must_read(path, &len);
    assert_fails(text, len, "malformed JSON");

    /* After a good event in the same array: still nothing at all. */
    const char *good = "{\"type\":\"function\",\"record\":\"ok\"}";
    char *arr = malloc(len + strlen(good) + 4);
    assert_non_null(arr);
    size_t n = (size_t)sprintf(arr, "[%s,", good);
    memcpy(arr + n, text, len);
    arr[n + len] = ']';
    assert_fails(arr, n + len + 1, "malformed JSON");
    free(arr);
    free(text);
}

static void test_own_invalid_fixtures(void **state)
{
    (void)state;
    check_invalid_file(OWN("platform.report.INVALID-trailing-comma.json"));
    check_invalid_file(OWN("platform.initRuntimeDone.INVALID-missing-comma.json"));
    check_invalid_file(OWN("invalid-json.INVALID.txt"));
}

static void test_shared_invalid_fixtures(void **state)
{
    (void)state;
    KT_SKIP_WITHOUT_SHARED();
    check_invalid_file(SHARED("awsdocs-2023/platform.report.INVALID-trailing-comma.json"));
    check_invalid_file(SHARED("awsdocs-2023/platform.initRuntimeDone.INVALID-missing-comma.json"));
    check_invalid_file(KT_SHARED_FIXTURES "/extensions/aws-lambda-runtime-interface-emulator/"
                                          "telemetry-subscribe.request.invalid_json_request."
                                          "expect-400.INVALID-JSON.txt");
}

static void test_malformed_inline(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"invalid\": json}",
        "[{\"a\":1},]",
        "[{\"a\":1,}]",
        "[{\"a\":1 \"b\":2}]",
        "[{\"a\":1}",
        "[{\"a\":\"unterminated}]",
        "[{\"a\":1}}",
        "[{'a':1}]",
        "[{\"a\":01}]",
        "[{\"a\":1.}]",
        "[{\"a\":\"\\x41\"}]",
        "[{\"a\":\"\xc3\x28\"}]", /* invalid UTF-8 */
        "[{\"a\":NaN}]",
        "[] []",
        "[{}] x",
        "{} {}",
        "[{\"a\":1}]]",
    };
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_fails(bad[i], strlen(bad[i]), "malformed JSON");
}

static void test_body_not_array_or_object(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\"just a string\"", "42", "-1.5", "true", "null", "x", "", "   ", "\r\n"};
    for (size_t i = 0; i < COUNT(bad); i++)
        assert_fails(bad[i], strlen(bad[i]), NULL);
}

/* Every proper prefix of a valid body is invalid: all of them must yield
 * -1 and no events, never the events completed so far. */
static void test_every_truncation_fails(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = kt_must_read(OWN("batch.docs-mixed.json"), &len);
    while (len && kt_is_json_ws(text[len - 1]))
        len--;
    for (size_t cut = 0; cut < len; cut++)
        assert_fails(text, cut, NULL);
    free(text);

    const char *obj = "{\"type\":\"function\",\"record\":{\"a\":[1,2.5e3,\"s\"]}}";
    for (size_t cut = 0; cut < strlen(obj); cut++)
        assert_fails(obj, cut, NULL);
}

static void test_failure_empties_a_used_list(void **state)
{
    (void)state;
    struct kte_event_list l;
    kte_event_list_init(&l);
    char err[256];
    const char *good = "[{\"type\":\"a\"},{\"type\":\"b\"}]";
    assert_int_equal(kte_event_parse(good, strlen(good), &l, err, sizeof err), 0);
    assert_int_equal(l.n, 2);
    const char *bad = "[{\"type\":\"c\"},{\"type\":]";
    err[0] = '\0';
    assert_int_equal(kte_event_parse(bad, strlen(bad), &l, err, sizeof err), -1);
    assert_int_equal(l.n, 0);
    assert_true(strlen(err) > 0);
    /* And the list is reused, not appended to, after success. */
    const char *one = "[{\"type\":\"d\"}]";
    assert_int_equal(kte_event_parse(good, strlen(good), &l, err, sizeof err), 0);
    assert_int_equal(kte_event_parse(one, strlen(one), &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].type, "d");
    assert_ptr_equal(l.v[0].raw, one + 1);
    kte_event_list_free(&l);
    assert_null(l.v);
    assert_int_equal(l.n, 0);
}

static void test_many_events(void **state)
{
    (void)state;
    /* Far past the list's first allocation. */
    const size_t n = 5000;
    struct kte_buf b;
    kte_buf_init(&b);
    size_t *off = malloc(n * sizeof *off), *len = malloc(n * sizeof *len);
    assert_non_null(off);
    assert_non_null(len);
    assert_int_equal(kte_buf_puts(&b, "["), 0);
    for (size_t i = 0; i < n; i++) {
        if (i)
            assert_int_equal(kte_buf_puts(&b, i % 3 ? "," : ",\n"), 0);
        off[i] = b.len;
        assert_int_equal(kte_buf_printf(&b,
                                        "{\"type\":\"function\",\"record\":{\"requestId\":\"r%zu\","
                                        "\"n\":%zu.5}}",
                                        i, i),
                         0);
        len[i] = b.len - off[i];
    }
    assert_int_equal(kte_buf_puts(&b, "]"), 0);
    struct parsed p;
    parse(&p, b.data, b.len);
    assert_int_equal(p.rc, 0);
    assert_int_equal(p.l.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_slice(&p, i, off[i], len[i]);
        char rid[32];
        snprintf(rid, sizeof rid, "r%zu", i);
        assert_string_equal(p.l.v[i].request_id, rid);
    }
    parsed_free(&p);
    kte_buf_free(&b);
    free(off);
    free(len);
}

/* RFC 8259 whitespace is space, tab, LF and CR only. yajl also skips \f and
 * \v; a body using them is not JSON, and a slice must never start with them
 * (the record would not be JSON either). */
static void test_form_feed_and_vertical_tab_are_not_json(void **state)
{
    (void)state;
    static const char *const bad[] = {"[\f1]", "[\v\"x\"]", "[{}\f]", "[1,\vtrue]"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        struct parsed p;
        parse(&p, bad[i], strlen(bad[i]));
        int rc = p.rc;
        size_t n = p.l.n;
        if (rc == 0)
            for (size_t k = 0; k < n; k++)
                print_error("case %zu accepted, event %zu = '%.*s' (first byte 0x%02x)\n", i, k,
                            (int)p.l.v[k].raw_len, p.l.v[k].raw, (unsigned char)p.l.v[k].raw[0]);
        parsed_free(&p); /* before asserting: no leak report on failure */
        assert_int_equal(rc, -1);
        assert_int_equal(n, 0);
    }
}

/* A form feed or vertical tab is found at every offset of a body, first
 * bytes and tail included; white space JSON allows, and bytes 0x8B and 0x8C
 * (U+008B, U+008C in UTF-8), are not taken for them. */
static void test_form_feed_and_vertical_tab_found_at_every_offset(void **state)
{
    (void)state;
    char body[] = "[1,                                     2]";
    size_t len = strlen(body);
    for (size_t at = 3; at + 2 < len; at++) {
        static const char bad[] = {'\f', '\v'}, good[] = {' ', '\t', '\n', '\r'};
        for (size_t k = 0; k < COUNT(bad); k++) {
            body[at] = bad[k];
            struct parsed p;
            parse(&p, body, len);
            int rc = p.rc;
            parsed_free(&p);
            if (rc != -1)
                print_error("0x%02x at offset %zu accepted\n", (unsigned)bad[k], at);
            assert_int_equal(rc, -1);
        }
        for (size_t k = 0; k < COUNT(good); k++) {
            body[at] = good[k];
            struct parsed p;
            parse(&p, body, len);
            int rc = p.rc;
            size_t n = p.l.n;
            parsed_free(&p);
            assert_int_equal(rc, 0);
            assert_int_equal(n, 2);
        }
        body[at] = ' ';
    }
    const char *high = "[\"\xc2\x8b\xc2\x8c \xc2\x8b\xc2\x8c \xc2\x8b\xc2\x8c\"]";
    struct parsed p;
    parse(&p, high, strlen(high));
    int rc = p.rc;
    size_t n = p.l.n;
    parsed_free(&p);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 1);
}

static void test_message_fits_small_buffer(void **state)
{
    (void)state;
    struct kte_event_list l;
    kte_event_list_init(&l);
    char err[12];
    memset(err, 'X', sizeof err);
    const char *bad = "[{\"a\":1,}]";
    assert_int_equal(kte_event_parse(bad, strlen(bad), &l, err, sizeof err), -1);
    assert_int_equal(strlen(err), sizeof err - 1);
    assert_string_equal(err, "malformed J");
    kte_event_list_free(&l);
}

/* Lambda sends at most 10,000 events per POST (maxItems): a body with more
 * is not from the Telemetry API and is refused whole, so that a body of
 * tiny elements ([0,0,...]) cannot cost memory per element. */
static void test_event_count_limit(void **state)
{
    (void)state;
    for (size_t n = KTE_EVENT_MAX_PER_BODY; n <= KTE_EVENT_MAX_PER_BODY + 1; n++) {
        struct kte_buf b;
        kte_buf_init(&b);
        assert_int_equal(kte_buf_puts(&b, "["), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(kte_buf_puts(&b, i ? ",{}" : "{}"), 0);
        assert_int_equal(kte_buf_puts(&b, "]"), 0);
        struct parsed p;
        parse(&p, b.data, b.len);
        if (n == KTE_EVENT_MAX_PER_BODY) {
            assert_int_equal(p.rc, 0);
            assert_int_equal(p.l.n, n);
            /* The list never grows past the limit's worth of views. */
            assert_true(p.l.cap <= KTE_EVENT_MAX_PER_BODY);
        } else {
            assert_int_equal(p.rc, -1);
            assert_int_equal(p.l.n, 0);
            kt_assert_contains(p.err, "10000");
        }
        parsed_free(&p);
        kte_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_object_is_one_event),
        cmocka_unit_test(test_empty_array_is_no_events),
        cmocka_unit_test(test_exact_slices_with_odd_whitespace),
        cmocka_unit_test(test_scalar_elements_pass_through),
        cmocka_unit_test(test_type_and_request_id_extraction),
        cmocka_unit_test(test_tenant_id),
        cmocka_unit_test(test_overlong_type_and_request_id_are_empty),
        cmocka_unit_test(test_own_single_event_fixtures),
        cmocka_unit_test(test_own_fixture_field_values),
        cmocka_unit_test(test_own_mixed_batch),
        cmocka_unit_test(test_shared_single_event_fixtures),
        cmocka_unit_test(test_shared_datadog_batches),
        cmocka_unit_test(test_shared_rust_runtime_request_ids),
        cmocka_unit_test(test_own_invalid_fixtures),
        cmocka_unit_test(test_shared_invalid_fixtures),
        cmocka_unit_test(test_malformed_inline),
        cmocka_unit_test(test_body_not_array_or_object),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_failure_empties_a_used_list),
        cmocka_unit_test(test_many_events),
        cmocka_unit_test(test_event_count_limit),
        cmocka_unit_test(test_form_feed_and_vertical_tab_are_not_json),
        cmocka_unit_test(test_form_feed_and_vertical_tab_found_at_every_offset),
        cmocka_unit_test(test_message_fits_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
