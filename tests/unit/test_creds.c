/* kte_creds: the credential cache's timing and the parsing of the container
 * endpoint's answer, as pure functions (the fetching itself runs against
 * lambda-sim's endpoint in tests/integration/test_modes.py). */
#include "kte_creds.h"

#include "kte_test_util.h"

#define T0 1795000000000LL /* an epoch ms */

static struct kte_creds set_of(int64_t fetched, int64_t lifetime)
{
    struct kte_creds c;
    memset(&c, 0, sizeof c);
    strcpy(c.access_key_id, "ASIAEXAMPLE");
    c.fetched_ms = fetched;
    c.expiration_ms = lifetime ? fetched + lifetime : 0;
    return c;
}

static void test_environment_credentials_never_refresh(void **state)
{
    (void)state;
    struct kte_creds c = set_of(T0, 0);
    assert_true(kte_creds_refresh_at(&c) == INT64_MAX);
    assert_false(kte_creds_refresh_due(&c, T0 + 100LL * 86400000));
}

static void test_refresh_a_quarter_before_expiry_at_most_five_minutes(void **state)
{
    (void)state;
    /* Lambda's container credentials live hours: refresh 5 min before. */
    struct kte_creds c = set_of(T0, 6 * 3600000LL);
    assert_true(kte_creds_refresh_at(&c) == c.expiration_ms - 300000);
    assert_false(kte_creds_refresh_due(&c, c.expiration_ms - 300001));
    assert_true(kte_creds_refresh_due(&c, c.expiration_ms - 300000));
    /* 20 minutes: a quarter (5 min) too. 4 s: 1 s before. */
    c = set_of(T0, 20 * 60000LL);
    assert_true(kte_creds_refresh_at(&c) == c.expiration_ms - 300000);
    c = set_of(T0, 4000);
    assert_true(kte_creds_refresh_at(&c) == T0 + 3000);
    /* Under a second left of a set fetched late: used until it expires. */
    c = set_of(T0, 900);
    assert_true(kte_creds_refresh_at(&c) == c.expiration_ms);
    assert_false(kte_creds_refresh_due(&c, c.expiration_ms - 1));
}

/* A fake endpoint that, like Lambda's and lambda-sim's, hands out the same
 * set until it expires, then a new one with the same lifetime. */
struct endpoint {
    int64_t lifetime, expires;
    int issued;
};

static struct kte_creds answer(struct endpoint *e, int64_t now)
{
    if (!e->issued || now >= e->expires) {
        e->issued++;
        e->expires = now + e->lifetime;
    }
    struct kte_creds c = set_of(now, 0);
    snprintf(c.access_key_id, sizeof c.access_key_id, "ASIA%d", e->issued);
    c.expiration_ms = e->expires;
    return c;
}

/* Requests every 10 ms for a minute against 2 s credentials: every request
 * is signed with an unexpired set, and the cache fetches a few times per set
 * (never per request). */
static void test_cache_fetches_a_few_times_per_set_not_per_request(void **state)
{
    (void)state;
    struct endpoint ep = {2000, 0, 0};
    struct kte_creds cur;
    memset(&cur, 0, sizeof cur);
    bool have = false;
    int64_t retry_at = 0;
    int fetches = 0, requests = 0;
    for (int64_t now = T0; now < T0 + 60000; now += 10) {
        if (kte_creds_should_fetch(&cur, have, false, retry_at, now)) {
            cur = answer(&ep, now);
            have = true;
            fetches++;
            retry_at = kte_creds_next_fetch(true, now);
        }
        requests++;
        /* Never signs with a set the endpoint no longer hands out. */
        assert_true(now < ep.expires);
        assert_true(strtol(cur.access_key_id + 4, NULL, 10) == ep.issued);
    }
    assert_true(ep.issued >= 29);
    assert_true(fetches <= 3 * ep.issued);
    assert_true(fetches < requests / 50);
}

static void test_stale_fetches_at_once_failures_back_off(void **state)
{
    (void)state;
    struct kte_creds c = set_of(T0, 3600000);
    /* Fresh, not due: cached. Stale (refused by Kinesis, or a restore):
     * fetched at once, whatever the expiration. */
    assert_false(kte_creds_should_fetch(&c, true, false, 0, T0 + 1000));
    assert_true(kte_creds_should_fetch(&c, true, true, 0, T0 + 1000));
    /* No set yet: always. */
    assert_true(kte_creds_should_fetch(&c, false, false, T0 + 5000, T0 + 1000));
    /* After a failed fetch, the next waits a second; after a good one,
     * half a second. */
    int64_t next = kte_creds_next_fetch(false, T0);
    assert_true(next == T0 + KTE_CREDS_RETRY_MS);
    assert_false(kte_creds_should_fetch(&c, true, true, next, T0 + 999));
    assert_true(kte_creds_should_fetch(&c, true, true, next, T0 + 1000));
    assert_true(kte_creds_next_fetch(true, T0) == T0 + KTE_CREDS_MIN_INTERVAL_MS);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(kte_creds_parse_time("1970-01-01T00:00:01Z", &ms), 0);
    assert_true(ms == 1000);
    assert_int_equal(kte_creds_parse_time("2026-11-29T21:00:00Z", &ms), 0);
    assert_true(ms == 1795986000000LL);
    assert_int_equal(kte_creds_parse_time("2026-11-29T21:00:00.250Z", &ms), 0);
    assert_true(ms == 1795986000250LL);
    assert_int_equal(kte_creds_parse_time("2026-11-29T23:00:00+02:00", &ms), 0);
    assert_true(ms == 1795986000000LL);
    assert_int_equal(kte_creds_parse_time("2026-11-29T20:30:00-00:30", &ms), 0);
    assert_true(ms == 1795986000000LL);
    /* 0 means "does not expire"; before it, "expired at every request". */
    const char *bad[] = {"",
                         "1970-01-01T00:00:00Z",
                         "1970-01-01T01:00:00+02:00",
                         "0477-11-29T21:00:00.123+02:00",
                         "2026-11-29",
                         "2026-11-29T21:00:00",
                         "2026-13-29T21:00:00Z",
                         "2026-11-29T21:00:00Zjunk",
                         "2026-11-29T21:00:00.Z",
                         "26-11-29T21:00:00Z",
                         "2026-11-29T21:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kte_creds_parse_time(bad[i], &ms), -1);
}

static void test_parse_answer(void **state)
{
    (void)state;
    struct kte_creds c;
    memset(&c, 0, sizeof c);
    c.fetched_ms = 42;
    char err[160];
    const char *ok = "{\"AccessKeyId\":\"ASIAX\",\"SecretAccessKey\":\"s3cr3t\",\"Token\":\"tok\","
                     "\"Expiration\":\"2026-11-29T21:00:00Z\",\"Code\":\"Success\"}";
    assert_int_equal(kte_creds_parse(ok, strlen(ok), &c, err, sizeof err), 0);
    assert_string_equal(c.access_key_id, "ASIAX");
    assert_string_equal(c.secret_access_key, "s3cr3t");
    assert_string_equal(c.session_token, "tok");
    assert_true(c.expiration_ms == 1795986000000LL);
    assert_true(c.fetched_ms == 42);

    /* Every refusal names a field, never a value. */
    const struct {
        const char *body, *want;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{", "not a JSON object"},
        {"{\"SecretAccessKey\":\"s3cr3t\"}", "AccessKeyId"},
        {"{\"AccessKeyId\":\"A\"}", "SecretAccessKey"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"\"}", "SecretAccessKey"},
        {"{\"AccessKeyId\":\"A:B\",\"SecretAccessKey\":\"s3cr3t\"}", "AccessKeyId"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s3cr3t\",\"Token\":\"a\\r\\nX: y\"}",
         "Token"},
        {"{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s3cr3t\",\"Expiration\":\"soon\"}",
         "Expiration"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kte_creds keep = c;
        assert_int_equal(kte_creds_parse(bad[i].body, strlen(bad[i].body), &c, err, sizeof err),
                         -1);
        kt_assert_contains(err, bad[i].want);
        assert_null(strstr(err, "s3cr3t"));
        assert_memory_equal(&keep, &c, sizeof c); /* untouched */
    }
    /* Without Expiration: a set that does not expire. */
    const char *noexp = "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\"}";
    assert_int_equal(kte_creds_parse(noexp, strlen(noexp), &c, err, sizeof err), 0);
    assert_true(c.expiration_ms == 0);
}

static void test_uri_allowed(void **state)
{
    (void)state;
    const char *ok[] = {"http://127.0.0.1:9001/2021-04-23/credentials",
                        "http://127.1.2.3/x",
                        "http://localhost:80/x",
                        "http://[::1]:8080/x",
                        "http://169.254.170.2/v2/credentials/id",
                        "http://169.254.170.23/v1/credentials",
                        "http://[fd00:ec2::23]/v1/credentials",
                        "https://creds.example.com/x",
                        "HTTPS://creds.example.com"};
    const char *no[] = {"http://creds.example.com/x",
                        "http://169.254.170.2.evil.com/x",
                        "http://169.254.169.254/latest/meta-data",
                        "http://user@127.0.0.1/x",
                        "ftp://127.0.0.1/x",
                        "https://",
                        "127.0.0.1/x",
                        ""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(kte_creds_uri_allowed(ok[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (kte_creds_uri_allowed(no[i]))
            fail_msg("'%s' was allowed", no[i]);
}

static void test_expired_codes(void **state)
{
    (void)state;
    assert_true(kte_creds_error_is_expired("ExpiredTokenException"));
    assert_true(kte_creds_error_is_expired("ExpiredToken"));
    assert_true(kte_creds_error_is_expired("UnrecognizedClientException"));
    assert_false(kte_creds_error_is_expired("InvalidSignatureException"));
    assert_false(kte_creds_error_is_expired("AccessDeniedException"));
    assert_false(kte_creds_error_is_expired("ResourceNotFoundException"));
    assert_false(kte_creds_error_is_expired(""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_environment_credentials_never_refresh),
        cmocka_unit_test(test_refresh_a_quarter_before_expiry_at_most_five_minutes),
        cmocka_unit_test(test_cache_fetches_a_few_times_per_set_not_per_request),
        cmocka_unit_test(test_stale_fetches_at_once_failures_back_off),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_answer),
        cmocka_unit_test(test_uri_allowed),
        cmocka_unit_test(test_expired_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
