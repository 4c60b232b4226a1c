/* kte_rules: exact outputs of every built-in redaction (matches and
 * near-misses), JSON validity after redaction, level filtering in both log
 * formats, per-invoke sampling, bounded matching and every load error. */
#include "kte_rules.h"

#include "kte_test_util.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

struct rt {
    struct kt_env env;
    struct kte_rules *rules;
    struct kte_rules_scratch *s;
    struct kte_buf out;
    struct kte_rules_outcome oc;
    char msg[512];
};

static void rt_load(struct rt *t)
{
    t->msg[0] = '\0';
    int rc = kte_rules_load(&t->rules, kt_env_get, &t->env, t->msg, sizeof t->msg);
    if (rc != 0)
        print_error("load: %s\n", t->msg);
    assert_int_equal(rc, 0);
    assert_non_null(t->rules);
    t->s = kte_rules_scratch_new(t->rules);
    assert_non_null(t->s);
    kte_buf_init(&t->out);
}

static void rt_free(struct rt *t)
{
    kte_rules_scratch_free(t->s);
    kte_rules_free(t->rules);
    kte_buf_free(&t->out);
    memset(t, 0, sizeof *t);
}

/* Applies the rules to one event's JSON text; returns the text shipped,
 * "FILTERED" or "SAMPLED" (static storage, valid until the next call). */
static const char *apply_rid(struct rt *t, const char *event, const char *rid)
{
    static char res[8192];
    struct kte_event_list l;
    kte_event_list_init(&l);
    char err[256];
    assert_int_equal(kte_event_parse(event, strlen(event), &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    kte_rules_apply(t->rules, t->s, &l.v[0], rid, &t->out, &t->oc);
    if (t->oc.verdict == KTE_VERDICT_FILTERED)
        snprintf(res, sizeof res, "FILTERED");
    else if (t->oc.verdict == KTE_VERDICT_SAMPLED_OUT)
        snprintf(res, sizeof res, "SAMPLED");
    else if (t->oc.redacted)
        snprintf(res, sizeof res, "%.*s", (int)t->out.len, t->out.data);
    else
        snprintf(res, sizeof res, "%.*s", (int)l.v[0].raw_len, l.v[0].raw);
    kte_event_list_free(&l);
    if (t->oc.redacted) { /* always valid JSON */
        yajl_val v = kt_json_parse(res, strlen(res));
        assert_non_null(v);
        yajl_tree_free(v);
    }
    return res;
}

static const char *apply(struct rt *t, const char *event)
{
    return apply_rid(t, event, "");
}

/* A text-format function log line event around a JSON string body. */
static const char *fn_line(const char *json_body)
{
    static char bufs[4][4096]; /* two calls may appear in one comparison */
    static unsigned k;
    char *ev = bufs[k++ % 4];
    size_t cap = sizeof bufs[0];
    int n = snprintf(
        ev, cap, "{\"time\":\"2026-11-29T10:00:00.000Z\",\"type\":\"function\",\"record\":\"%s\"}",
        json_body);
    assert_true(n > 0 && (size_t)n < cap);
    return ev;
}

/* Redacts body with one KTE_REDACT rule and compares the record's text. */
static void expect_redact(const char *rule, const char *body, const char *want)
{
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_REDACT", rule);
    rt_load(&t);
    char exp[4096];
    snprintf(exp, sizeof exp, "%s", fn_line(want));
    const char *got = apply(&t, fn_line(body));
    if (strcmp(got, exp))
        print_error("rule %s on '%s':\n got  %s\n want %s\n", rule, body, got, exp);
    assert_string_equal(got, exp);
    rt_free(&t);
}

static void test_email(void **state)
{
    (void)state;
    expect_redact("email", "mail bob.smith+x@mail.example.co.uk now", "mail [REDACTED:email] now");
    expect_redact("email", "a@b.io,c@d.org", "[REDACTED:email],[REDACTED:email]");
    expect_redact("email", "bob@localhost", "bob@localhost");
    expect_redact("email", "x@y.c", "x@y.c");
    expect_redact("email", "@example.com", "@example.com");
}

static void test_credit_card(void **state)
{
    (void)state;
    expect_redact("credit-card", "card 4111 1111 1111 1111 ok", "card [REDACTED:credit-card] ok");
    expect_redact("credit-card", "4111-1111-1111-1111", "[REDACTED:credit-card]");
    expect_redact("credit-card", "amex 378282246310005.", "amex [REDACTED:credit-card].");
    /* 16 digits failing Luhn, too few digits, too many: kept. */
    expect_redact("credit-card", "id 4111111111111112", "id 4111111111111112");
    expect_redact("credit-card", "n 411111111111", "n 411111111111");
    expect_redact("credit-card", "n 41111111111111111111", "n 41111111111111111111");
    assert_true(kte_luhn_ok("4111111111111111", 16));
    assert_false(kte_luhn_ok("4111111111111112", 16));
}

static void test_aws_keys(void **state)
{
    (void)state;
    expect_redact("aws-access-key-id", "key AKIAIOSFODNN7EXAMPLE end",
                  "key [REDACTED:aws-access-key-id] end");
    expect_redact("aws-access-key-id", "ASIAY34FZKBOKMUTVV7A", "[REDACTED:aws-access-key-id]");
    expect_redact("aws-access-key-id", "AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX");
    expect_redact("aws-access-key-id", "akiaiosfodnn7example", "akiaiosfodnn7example");
    expect_redact("aws-secret-key",
                  "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "aws_secret_access_key=[REDACTED:aws-secret-key]");
    expect_redact("aws-secret-key",
                  "{\\\"SecretAccessKey\\\": \\\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\\\"}",
                  "{\\\"SecretAccessKey\\\": \\\"[REDACTED:aws-secret-key]\\\"}");
    /* Without a key name, or 39 characters: kept. */
    expect_redact("aws-secret-key", "value wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "value wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    expect_redact("aws-secret-key", "AWS_SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE",
                  "AWS_SECRET_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE");
}

static void test_jwt_bearer(void **state)
{
    (void)state;
    expect_redact("jwt", "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc_DEF-123 x",
                  "token [REDACTED:jwt] x");
    expect_redact("jwt", "eyJhbGciOiJIUzI1NiJ9.notjwt.abc", "eyJhbGciOiJIUzI1NiJ9.notjwt.abc");
    expect_redact("bearer-token", "Authorization: Bearer abcdef123456789",
                  "Authorization: Bearer [REDACTED:bearer-token]");
    expect_redact("bearer-token", "bearer  dGhpcyBpcyBh/b+c==;",
                  "bearer  [REDACTED:bearer-token];");
    expect_redact("bearer-token", "Bearer abc", "Bearer abc");
    expect_redact("bearer-token", "bearerabcdefghij", "bearerabcdefghij");
    /* With both, the JWT rule (listed first) names the span. */
    expect_redact("all", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig",
                  "Bearer [REDACTED:jwt]");
}

static void test_ip(void **state)
{
    (void)state;
    expect_redact("ip-address", "from 192.168.1.20 and 2001:db8::1 at 12:30:45",
                  "from [REDACTED:ip-address] and [REDACTED:ip-address] at 12:30:45");
    expect_redact("ip-address", "peer ::ffff:10.0.0.1.", "peer [REDACTED:ip-address].");
    expect_redact("ip-address", "fe80::1ff:fe23:4567:890a", "[REDACTED:ip-address]");
    expect_redact("ip-address", "v1.2.3.4.5 256.1.1.1 1.2.3", "v1.2.3.4.5 256.1.1.1 1.2.3");
    expect_redact("ip-address", "mac 00:1a:2b:3c:4d:5e", "mac 00:1a:2b:3c:4d:5e");
}

/* The prefilter runs a built-in pattern only when the string holds what
 * every match contains: matches at the edges of the string, in other cases,
 * and behind an escape must still be found. */
static void test_prefilter_edges(void **state)
{
    (void)state;
    expect_redact("ip-address", "1.2.3.4", "[REDACTED:ip-address]");
    expect_redact("ip-address", "ip=10.0.0.1", "ip=[REDACTED:ip-address]");
    expect_redact("ip-address", "v 1.2.3 and 4.5", "v 1.2.3 and 4.5");
    expect_redact("ip-address", "a\\u00201.2.3.4", "a\\u0020[REDACTED:ip-address]");
    expect_redact("bearer-token", "BEARER abcdefgh12", "BEARER [REDACTED:bearer-token]");
    expect_redact("bearer-token", "\\u0062earer abcdefgh12",
                  "\\u0062earer [REDACTED:bearer-token]");
    expect_redact("aws-secret-key", "SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "SECRET_ACCESS_KEY=[REDACTED:aws-secret-key]");
    expect_redact("aws-secret-key",
                  "aws\\u005fsecret\\u005fkey: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                  "aws\\u005fsecret\\u005fkey: [REDACTED:aws-secret-key]");
    expect_redact("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.s", "[REDACTED:jwt]");
    expect_redact("jwt", "e\\u0079JhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.s", "[REDACTED:jwt]");
}

static void test_json_validity(void **state)
{
    (void)state;
    /* Escapes and unicode outside the match stay as sent, byte for byte. */
    expect_redact("email", "a\\\"b\\\\c\\tuser@example.com \\u00e9\\ud83d\\ude00 \xc3\xa9",
                  "a\\\"b\\\\c\\t[REDACTED:email] \\u00e9\\ud83d\\ude00 \xc3\xa9");
    /* A match across an escape: matched on the decoded text, the whole
     * escape goes with it. */
    expect_redact("email", "x us\\u0065r@example.com y", "x [REDACTED:email] y");
    expect_redact("email", "\\nbob@example.com\\n", "\\n[REDACTED:email]\\n");

    /* A custom pattern ending inside a UTF-8 character takes all of it. */
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_REDACT_REGEX", "caf.");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("un caf\xc3\xa9!")), fn_line("un [REDACTED:custom]!"));
    assert_string_equal(apply(&t, fn_line("un caf\\u00e9!")), fn_line("un [REDACTED:custom]!"));
    rt_free(&t);

    /* JSON-format logs: every string value, keys and other values untouched. */
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_REDACT", "ip-address,email");
    rt_load(&t);
    const char *ev = "{\"time\":\"2026-11-29T10:00:00.000Z\", \"type\":\"function\",\"record\":"
                     "{\"timestamp\":\"2026-11-29T10:00:00Z\",\"level\":\"INFO\",\"message\":"
                     "\"call 10.0.0.1\",\"n\":1.50,\"a\":[\"x@example.com\",{\"10.0.0.2\":true}],"
                     "\"requestId\":\"r1\"}}";
    assert_string_equal(apply(&t, ev),
                        "{\"time\":\"2026-11-29T10:00:00.000Z\", \"type\":\"function\",\"record\":"
                        "{\"timestamp\":\"2026-11-29T10:00:00Z\",\"level\":\"INFO\",\"message\":"
                        "\"call [REDACTED:ip-address]\",\"n\":1.50,\"a\":[\"[REDACTED:email]\","
                        "{\"10.0.0.2\":true}],\"requestId\":\"r1\"}}");
    assert_int_equal(t.oc.redactions[KTE_RX_IP_ADDRESS], 1);
    assert_int_equal(t.oc.redactions[KTE_RX_EMAIL], 1);
    /* Platform events are not log lines: never rewritten. */
    const char *pl = "{\"time\":\"t\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"r\","
                     "\"x\":\"10.0.0.1\"}}";
    assert_string_equal(apply(&t, pl), pl);
    rt_free(&t);
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(kte_level_of_text("[INFO]\t2026-11-29T10:00:00.000Z\trid\thello", 41),
                     KTE_LEVEL_INFO);
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_MIN_LEVEL", "WARN");
    rt_load(&t);
    /* Python's text format: [LEVEL]\tTIMESTAMP\tREQUEST_ID\tMESSAGE */
    assert_string_equal(apply(&t, fn_line("[INFO]\\t2026-11-29T10:00:00.000Z\\trid-1\\thello\\n")),
                        "FILTERED");
    const char *py_err = fn_line("[ERROR]\\t2026-11-29T10:00:00.000Z\\trid-1\\tboom\\n");
    assert_string_equal(apply(&t, py_err), py_err);
    const char *py_warn = fn_line("[WARNING]\\t2026-11-29T10:00:00.000Z\\trid-1\\tx");
    assert_string_equal(apply(&t, py_warn), py_warn);
    /* Node.js: TIMESTAMP\tREQUEST_ID\tLEVEL\tMESSAGE */
    assert_string_equal(apply(&t, fn_line("2026-11-29T10:00:00.000Z\\trid-1\\tDEBUG\\tx")),
                        "FILTERED");
    const char *node_warn = fn_line("2026-11-29T10:00:00.000Z\\trid-1\\tWARN\\tx");
    assert_string_equal(apply(&t, node_warn), node_warn);
    /* No level we know (START lines, plain prints): kept. */
    const char *plain = fn_line("hello world");
    assert_string_equal(apply(&t, plain), plain);
    /* JSON format: the record's level. */
    assert_string_equal(apply(&t, "{\"time\":\"t\",\"type\":\"function\",\"record\":{\"level\":"
                                  "\"DEBUG\",\"message\":\"m\"}}"),
                        "FILTERED");
    const char *js = "{\"time\":\"t\",\"type\":\"function\",\"record\":{\"level\":\"error\","
                     "\"message\":\"m\"}}";
    assert_string_equal(apply(&t, js), js);
    /* Platform events have no level. */
    const char *pl =
        "{\"time\":\"t\",\"type\":\"platform.start\",\"record\":{\"requestId\":\"r\"}}";
    assert_string_equal(apply(&t, pl), pl);
    rt_free(&t);
}

static void test_types_and_regex(void **state)
{
    (void)state;
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_EXCLUDE_TYPES", "platform.start, extension");
    kt_env_set(&t.env, "KTE_INCLUDE_REGEX", "order|payment");
    kt_env_set(&t.env, "KTE_EXCLUDE_REGEX", "healthcheck");
    rt_load(&t);
    assert_string_equal(apply(&t, "{\"time\":\"t\",\"type\":\"platform.start\",\"record\":{}}"),
                        "FILTERED");
    assert_string_equal(apply(&t, "{\"time\":\"t\",\"type\":\"extension\",\"record\":\"x\"}"),
                        "FILTERED");
    const char *rd = "{\"time\":\"t\",\"type\":\"platform.runtimeDone\",\"record\":{}}";
    assert_string_equal(apply(&t, rd), rd);
    const char *order = fn_line("new order 7");
    assert_string_equal(apply(&t, order), order);
    assert_string_equal(apply(&t, fn_line("other")), "FILTERED");
    assert_string_equal(apply(&t, fn_line("order healthcheck")), "FILTERED");
    /* JSON format: the message field. */
    assert_string_equal(apply(&t, "{\"time\":\"t\",\"type\":\"function\",\"record\":{\"message\":"
                                  "\"nothing\",\"x\":\"order\"}}"),
                        "FILTERED");
    rt_free(&t);

    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_EXCLUDE_TYPES", "platform");
    rt_load(&t);
    assert_string_equal(apply(&t, rd), "FILTERED");
    assert_string_equal(apply(&t, order), order);
    rt_free(&t);
}

static void test_sampling(void **state)
{
    (void)state;
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_SAMPLE_RATE", "0.25");
    rt_load(&t);
    int kept = 0;
    for (int i = 0; i < 400; i++) {
        char rid[64], line[256], ev[512];
        snprintf(rid, sizeof rid, "8476a536-e9f4-11e8-9739-%012d", i);
        bool keep = kte_sample_keep(rid, 0.25);
        kept += keep;
        /* Every line of the invoke, in either format and with or without its
         * id in the line, gets the invoke's decision. */
        snprintf(line, sizeof line, "2026-11-29T10:00:00.000Z\\t%s\\tINFO\\tline", rid);
        assert_string_equal(apply(&t, fn_line(line)), keep ? fn_line(line) : "SAMPLED");
        assert_true(snprintf(ev, sizeof ev, "%s", fn_line("print without id")) < (int)sizeof ev);
        assert_string_equal(apply_rid(&t, ev, rid), keep ? ev : "SAMPLED");
        snprintf(ev, sizeof ev,
                 "{\"time\":\"t\",\"type\":\"function\",\"record\":{\"level\":\"DEBUG\","
                 "\"requestId\":\"%s\"}}",
                 rid);
        assert_string_equal(apply_rid(&t, ev, "another-invoke"), keep ? ev : "SAMPLED");
        /* ERROR and above, and platform events, are never sampled away. */
        snprintf(line, sizeof line, "[ERROR]\\t2026-11-29T10:00:00.000Z\\t%s\\tboom", rid);
        assert_string_equal(apply(&t, fn_line(line)), fn_line(line));
        snprintf(ev, sizeof ev,
                 "{\"time\":\"t\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"%s\"}}",
                 rid);
        assert_string_equal(apply(&t, ev), ev);
    }
    assert_in_range(kept, 70, 130); /* 100 expected */
    rt_free(&t);

    /* Platform events too, when asked. */
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_SAMPLE_RATE", "0");
    kt_env_set(&t.env, "KTE_SAMPLE_PLATFORM", "true");
    rt_load(&t);
    assert_string_equal(
        apply(&t, "{\"time\":\"t\",\"type\":\"platform.report\",\"record\":{\"requestId\":\"r\"}}"),
        "SAMPLED");
    const char *init = "{\"time\":\"t\",\"type\":\"platform.initStart\",\"record\":{}}";
    assert_string_equal(apply(&t, init), init); /* no invoke to decide for */
    rt_free(&t);
}

static void test_match_limit(void **state)
{
    (void)state;
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_REDACT_REGEX", "[\"(a+)+$\", \"(x|x)*y\"]");
    kt_env_set(&t.env, "KTE_EXCLUDE_REGEX", "^(b+)+$");
    rt_load(&t);
    char body[4096];
    memset(body, 'a', 3000);
    body[3000] = '!';
    body[3001] = '\0';
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    /* Fails closed: the whole string is replaced. */
    assert_string_equal(apply(&t, fn_line(body)), fn_line("[REDACTED:match-limit]"));
    assert_true(t.oc.match_limit);
    memset(body, 'b', 3000);
    const char *ev = fn_line(body);
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", ev);
    assert_string_equal(apply(&t, copy), copy); /* the exclude filter gave up: kept */
    assert_true(t.oc.match_limit);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    assert_true(ms < 2000);
    rt_free(&t);
}

/* Writes text to a new temporary file; path receives its name. */
static void write_tmp(char *path, const char *text)
{
    strcpy(path, "/tmp/kte-rules-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_named_custom(void **state)
{
    (void)state;
    struct rt t = {0};
    /* Strings (named "custom", as before) and {"name","pattern"} objects mixed. */
    kt_env_set(&t.env, "KTE_REDACT_REGEX",
               "[\"order-[0-9]{6}\", {\"name\":\"order-id\",\"pattern\":\"ord-[0-9]{4}\"},"
               " {\"pattern\":\"(?i)api_key=\\\\S+\",\"name\":\"api.key_2\"},"
               " {\"name\":\"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345\",\"pattern\":\"zz+\"}]");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("o order-123456 ord-1234 API_KEY=abc zzz.")),
                        fn_line("o [REDACTED:custom] [REDACTED:order-id] [REDACTED:api.key_2] "
                                "[REDACTED:ABCDEFGHIJKLMNOPQRSTUVWXYZ012345]."));
    /* RedactedCustom counts every custom rule, named or not. */
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 4);
    for (int i = 0; i < KTE_RX_CUSTOM; i++)
        assert_int_equal(t.oc.redactions[i], 0);
    /* Next to each other: one marker each. */
    assert_string_equal(apply(&t, fn_line("ord-1234order-123456")),
                        fn_line("[REDACTED:order-id][REDACTED:custom]"));
    assert_string_equal(apply(&t, fn_line("xord-12345")), fn_line("x[REDACTED:order-id]5"));
    /* JSON-format record: named markers in string values, valid JSON. */
    const char *ev = "{\"time\":\"t\",\"type\":\"function\",\"record\":{\"message\":\"ord-\\u0031"
                     "234\",\"k\":[\"api_key=\\\"x\\\"\"]}}";
    assert_string_equal(apply(&t, ev), "{\"time\":\"t\",\"type\":\"function\",\"record\":{"
                                       "\"message\":\"[REDACTED:order-id]\",\"k\":["
                                       "\"[REDACTED:api.key_2]\"]}}");
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 2);
    rt_free(&t);

    /* A named rule together with the built-ins: each keeps its marker. */
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_REDACT", "email");
    kt_env_set(&t.env, "KTE_REDACT_REGEX", "[{\"name\":\"Email\",\"pattern\":\"mail=\\\\w+\"}]");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("a@b.io mail=bob")),
                        fn_line("[REDACTED:email] [REDACTED:Email]"));
    assert_int_equal(t.oc.redactions[KTE_RX_EMAIL], 1);
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 1);
    rt_free(&t);

    /* Overlapping matches merge into one marker, named by the earliest
     * match, at equal start by the rule listed first; counted once. */
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_REDACT_REGEX",
               "[{\"name\":\"p1\",\"pattern\":\"ab+\"}, {\"name\":\"p2\",\"pattern\":\"b+c\"},"
               " {\"name\":\"p3\",\"pattern\":\"cd\"}, {\"name\":\"p4\",\"pattern\":\"c\"}]");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("xabbbcy")), fn_line("x[REDACTED:p1]y"));
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 1);
    assert_string_equal(apply(&t, fn_line("xbbcdy")), fn_line("x[REDACTED:p2]y"));
    assert_string_equal(apply(&t, fn_line("cd c")), fn_line("[REDACTED:p3] [REDACTED:p4]"));
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 2);
    rt_free(&t);

    /* One pattern, not starting with '[': as before, named "custom". */
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_REDACT_REGEX", "{\"name\":\"x\"}");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("a {\\\"name\\\":\\\"x\\\"} b")),
                        fn_line("a [REDACTED:custom] b"));
    rt_free(&t);

    /* docs/rules.md's example. */
    memset(&t, 0, sizeof t);
    kt_env_set(
        &t.env, "KTE_REDACT_REGEX",
        "[\"(?i)password=\\\\S+\", {\"name\": \"order-id\", \"pattern\": \"order-[0-9]{6}\"},"
        " {\"name\": \"user.id\", \"pattern\": \"uid=[0-9]+\"}]");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("paid order-123456 uid=42 password=x")),
                        fn_line("paid [REDACTED:order-id] [REDACTED:user.id] [REDACTED:custom]"));
    rt_free(&t);

    /* The rules file's redactRegex takes the same forms; the variable adds. */
    char path[32];
    write_tmp(path, "{\"redactRegex\":[\"tok-[a-z]+\",{\"name\":\"user-id\",\"pattern\":"
                    "\"uid=[0-9]+\"}]}");
    memset(&t, 0, sizeof t);
    kt_env_set(&t.env, "KTE_RULES_FILE", path);
    kt_env_set(&t.env, "KTE_REDACT_REGEX", "[{\"name\":\"session\",\"pattern\":\"sid=[0-9]+\"}]");
    rt_load(&t);
    assert_string_equal(apply(&t, fn_line("tok-abc uid=42 sid=7")),
                        fn_line("[REDACTED:custom] [REDACTED:user-id] [REDACTED:session]"));
    assert_int_equal(t.oc.redactions[KTE_RX_CUSTOM], 3);
    rt_free(&t);
    unlink(path);
}

static void expect_load_error(const char *var, const char *val, const char *needle)
{
    struct kt_env env = {0};
    kt_env_set(&env, var, val);
    struct kte_rules *r = (struct kte_rules *)1;
    char msg[512] = "";
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), -1);
    assert_null(r);
    if (!strstr(msg, needle) || !strstr(msg, var))
        print_error("message '%s' lacks '%s' or '%s'\n", msg, needle, var);
    assert_non_null(strstr(msg, needle));
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("KTE_REDACT", "email,phone", "unknown rule 'phone'");
    expect_load_error("KTE_REDACT_REGEX", "(abc", "'(abc' is not a valid PCRE2 regex");
    expect_load_error("KTE_REDACT_REGEX", "[\"ok\", \"[z-a]\"]", "pattern 2");
    expect_load_error("KTE_REDACT_REGEX", "[\"ok\", 3]", "not a string");
    expect_load_error("KTE_INCLUDE_REGEX", "*x", "not a valid PCRE2 regex");
    expect_load_error("KTE_SAMPLE_RATE", "1.5", "'1.5' is not a rate");
    expect_load_error("KTE_SAMPLE_RATE", "10%", "'10%' is not a rate");
    expect_load_error("KTE_MIN_LEVEL", "LOUD", "'LOUD' is not a level");
    expect_load_error("KTE_EXCLUDE_TYPES", "platform.begin", "unknown event type 'platform.begin'");
    expect_load_error("KTE_RULES_FILE", "/nonexistent/rules.json", "cannot be read");

    /* Nothing set: no rules, nothing to do per event. */
    struct kt_env env = {0};
    struct kte_rules *r = NULL;
    char msg[64];
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), 0);
    assert_null(r);
    kt_env_set(&env, "KTE_SAMPLE_RATE", "1");
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), 0);
    assert_null(r);
}

/* The message must be exactly want. */
static void expect_load_message(const char *var, const char *val, const char *want)
{
    struct kt_env env = {0};
    kt_env_set(&env, var, val);
    struct kte_rules *r = (struct kte_rules *)1;
    char msg[512] = "";
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), -1);
    assert_null(r);
    assert_string_equal(msg, want);
}

static void test_named_custom_errors(void **state)
{
    (void)state;
    const char *v = "KTE_REDACT_REGEX";
#define NAMED(name) "[\"a\", {\"name\":\"" name "\",\"pattern\":\"x\"}]"
    expect_load_message(v, NAMED(""),
                        "KTE_REDACT_REGEX: pattern 2 name '' must be 1 to 32 characters long");
    expect_load_message(v, NAMED("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"),
                        "KTE_REDACT_REGEX: pattern 2 name 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456' must "
                        "be 1 to 32 characters long");
    expect_load_message(v, NAMED("order id"),
                        "KTE_REDACT_REGEX: pattern 2 name 'order id' has ' ' at offset 5; use only "
                        "A-Z, a-z, 0-9, '_', '.' and '-'");
    expect_load_message(v, NAMED("x]y"),
                        "KTE_REDACT_REGEX: pattern 2 name 'x]y' has ']' at offset 1; use only A-Z, "
                        "a-z, 0-9, '_', '.' and '-'");
    expect_load_message(
        v, NAMED("caf\xc3\xa9"),
        "KTE_REDACT_REGEX: pattern 2 name 'caf\xc3\xa9' has '\xc3' at offset 3; use "
        "only A-Z, a-z, 0-9, '_', '.' and '-'");
    static const char *const builtin[] = {"email",          "credit-card", "aws-access-key-id",
                                          "aws-secret-key", "jwt",         "bearer-token",
                                          "ip-address"};
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++) {
        char val[128], want[256];
        snprintf(val, sizeof val, "[\"a\", {\"name\":\"%s\",\"pattern\":\"x\"}]", builtin[i]);
        snprintf(want, sizeof want,
                 "KTE_REDACT_REGEX: pattern 2 name '%s' is a built-in rule's name (KTE_REDACT "
                 "enables the built-in); choose another name",
                 builtin[i]);
        expect_load_message(v, val, want);
    }
    expect_load_message(v, NAMED("all"),
                        "KTE_REDACT_REGEX: pattern 2 name 'all' is reserved (KTE_REDACT=all names "
                        "every built-in); choose another name");
    expect_load_message(v, NAMED("custom"),
                        "KTE_REDACT_REGEX: pattern 2 name 'custom' is reserved (it marks custom "
                        "patterns given without a name); choose another name");
    expect_load_message(v, NAMED("match-limit"),
                        "KTE_REDACT_REGEX: pattern 2 name 'match-limit' is reserved (it marks "
                        "strings a pattern gave up on); choose another name");
#undef NAMED
    expect_load_message(v,
                        "[{\"name\":\"o\",\"pattern\":\"a\"}, {\"name\":\"p\",\"pattern\":\"b\"}, "
                        "{\"name\":\"o\",\"pattern\":\"c\"}]",
                        "KTE_REDACT_REGEX: pattern 3 name 'o' is already used by another pattern "
                        "(names are unique across KTE_RULES_FILE and KTE_REDACT_REGEX)");
    expect_load_message(v, "[\"a\", {\"name\":\"order-id\",\"pattern\":\"[z-a]\"}]",
                        "KTE_REDACT_REGEX: pattern 2 ('order-id') '[z-a]' is not a valid PCRE2 "
                        "regex: range out of order in character class at offset 3");
    /* The object's shape. */
    expect_load_message(v, "[{\"name\":\"o\"}]",
                        "KTE_REDACT_REGEX starts with '[' but is not a JSON array of patterns: "
                        "element 1: an object needs both \"name\" and \"pattern\"");
    expect_load_message(v, "[\"a\", {\"pattern\":\"x\"}]",
                        "KTE_REDACT_REGEX starts with '[' but is not a JSON array of patterns: "
                        "element 2: an object needs both \"name\" and \"pattern\"");
    expect_load_message(v, "[{\"name\":\"o\",\"pattern\":\"x\",\"flags\":\"i\"}]",
                        "KTE_REDACT_REGEX starts with '[' but is not a JSON array of patterns: "
                        "element 1: key \"flags\" is not understood; use \"name\" and \"pattern\"");
    expect_load_message(v, "[{\"name\":7,\"pattern\":\"x\"}]",
                        "KTE_REDACT_REGEX starts with '[' but is not a JSON array of patterns: "
                        "element 1: \"name\" is not a string");
    expect_load_message(
        v, "[[\"x\"]]",
        "KTE_REDACT_REGEX starts with '[' but is not a JSON array of patterns: "
        "element 1 is not a string nor an object {\"name\": ..., \"pattern\": ...}");

    /* In the rules file, and across the file and the variable. */
    char path[32], want[512];
    write_tmp(path, "{\"redactRegex\":[{\"name\":\"jwt\",\"pattern\":\"x\"}]}");
    expect_load_message("KTE_RULES_FILE", path,
                        "KTE_RULES_FILE key \"redactRegex\": pattern 1 name 'jwt' is a built-in "
                        "rule's name (KTE_REDACT enables the built-in); choose another name");
    unlink(path);
    write_tmp(path, "{\"redact\":[{\"name\":\"n\",\"pattern\":\"x\"}]}");
    expect_load_message("KTE_RULES_FILE", path,
                        "KTE_RULES_FILE key \"redact\" must be an array of strings: element 1 is "
                        "not a string");
    unlink(path);
    write_tmp(path, "{\"redactRegex\":[{\"name\":\"n\",\"pattern\":\"x\"}]}");
    struct kt_env env = {0};
    kt_env_set(&env, "KTE_RULES_FILE", path);
    kt_env_set(&env, "KTE_REDACT_REGEX", "[\"y\", {\"name\":\"n\",\"pattern\":\"z\"}]");
    struct kte_rules *r = NULL;
    char msg[512];
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), -1);
    assert_null(r);
    snprintf(want, sizeof want,
             "KTE_REDACT_REGEX: pattern 2 name 'n' is already used by another pattern (names are "
             "unique across KTE_RULES_FILE and KTE_REDACT_REGEX)");
    assert_string_equal(msg, want);
    unlink(path);
}

static void test_rules_file(void **state)
{
    (void)state;
    char path[] = "/tmp/kte-rules-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "{\"excludeTypes\":[\"platform.start\"],\"minLevel\":\"INFO\","
                       "\"redact\":[\"email\"],\"redactRegex\":[\"order-[0-9]+\"],"
                       "\"sampleRate\":1}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct rt t = {0};
    kt_env_set(&t.env, "KTE_RULES_FILE", path);
    kt_env_set(&t.env, "KTE_REDACT", "ip-address");
    rt_load(&t);
    assert_string_equal(apply(&t, "{\"time\":\"t\",\"type\":\"platform.start\",\"record\":{}}"),
                        "FILTERED");
    assert_string_equal(apply(&t, fn_line("2026-11-29T10:00:00.000Z\\tr\\tDEBUG\\tx")), "FILTERED");
    assert_string_equal(apply(&t, fn_line("a@b.io order-12 1.2.3.4")),
                        fn_line("[REDACTED:email] [REDACTED:custom] [REDACTED:ip-address]"));
    rt_free(&t);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    text = "{\"redact\":[\"email\"],\"mask\":true}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct kt_env env = {0};
    kt_env_set(&env, "KTE_RULES_FILE", path);
    struct kte_rules *r = NULL;
    char msg[512];
    assert_int_equal(kte_rules_load(&r, kt_env_get, &env, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "key \"mask\" is not understood"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_credit_card),
        cmocka_unit_test(test_aws_keys),
        cmocka_unit_test(test_jwt_bearer),
        cmocka_unit_test(test_prefilter_edges),
        cmocka_unit_test(test_ip),
        cmocka_unit_test(test_json_validity),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_types_and_regex),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_rules_file),
        cmocka_unit_test(test_named_custom),
        cmocka_unit_test(test_named_custom_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
