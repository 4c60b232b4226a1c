/* The listener over real HTTP: only POSTs to the secret path reach the sink;
 * everything else is answered and counted, and a bad body never reaches it. */
#include "kte_listener.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PATH "/0123456789abcdef0123456789abcdef"

struct sink_log {
    int calls;
    size_t last_len;
    char last[256];
};

static int sink(void *ctx, const char *body, size_t len, char *msg, size_t msg_len)
{
    struct sink_log *s = ctx;
    if (len && body[0] != '[') {
        snprintf(msg, msg_len, "not an array");
        return -1;
    }
    s->calls++;
    s->last_len = len;
    snprintf(s->last, sizeof s->last, "%.*s", (int)len, body);
    return 0;
}

struct fixture {
    struct kte_listener *l;
    struct kte_metrics m;
    struct sink_log log;
    char base[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    kte_metrics_init(&f->m);
    f->l = kte_listener_start("127.0.0.1", 0, PATH, 1024, sink, &f->log, &f->m, err, sizeof err);
    if (!f->l) {
        fprintf(stderr, "listener: %s\n", err);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", kte_listener_port(f->l));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kte_listener_stop(f->l);
    free(f);
    return 0;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static long request(struct fixture *f, const char *method, const char *path, const char *body,
                    size_t len)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    long code = 0;
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static void test_post_to_secret_path_reaches_sink(void **state)
{
    struct fixture *f = *state;
    const char *body = "[{\"type\":\"function\",\"record\":\"hi\"}]";
    assert_int_equal(request(f, "POST", PATH, body, strlen(body)), 200);
    assert_int_equal(f->log.calls, 1);
    assert_string_equal(f->log.last, body);
    assert_int_equal(atomic_load(&f->m.posts), 1);
    assert_int_equal(atomic_load(&f->m.posts_rejected), 0);
}

static void test_other_paths_are_404_and_counted(void **state)
{
    struct fixture *f = *state;
    const char *body = "[{\"type\":\"function\",\"record\":\"forged\"}]";
    assert_int_equal(request(f, "POST", "/", body, strlen(body)), 404);
    assert_int_equal(request(f, "POST", PATH "x", body, strlen(body)), 404);
    assert_int_equal(request(f, "POST", "/0123456789abcdef", body, strlen(body)), 404);
    assert_int_equal(f->log.calls, 0);
    assert_int_equal(atomic_load(&f->m.posts_rejected), 3);
    assert_int_equal(atomic_load(&f->m.posts), 0);
}

static void test_non_post_is_405(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, "GET", PATH, NULL, 0), 405);
    assert_int_equal(request(f, "PUT", PATH, "[]", 2), 405);
    assert_int_equal(f->log.calls, 0);
    assert_int_equal(atomic_load(&f->m.posts_rejected), 2);
}

static void test_malformed_is_400_and_counted(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(request(f, "POST", PATH, "{oops", 5), 400);
    assert_int_equal(atomic_load(&f->m.posts_malformed), 1);
    /* The next good body still goes through. */
    assert_int_equal(request(f, "POST", PATH, "[]", 2), 200);
    assert_int_equal(f->log.calls, 1);
    assert_int_equal(atomic_load(&f->m.posts), 1);
}

static void test_oversized_is_413_and_counted(void **state)
{
    struct fixture *f = *state;
    char big[2048];
    memset(big, ' ', sizeof big);
    big[0] = '[';
    big[sizeof big - 1] = ']';
    assert_int_equal(request(f, "POST", PATH, big, sizeof big), 413);
    assert_int_equal(f->log.calls, 0);
    assert_int_equal(atomic_load(&f->m.posts_oversized), 1);
    /* Exactly at the cap is accepted. */
    assert_int_equal(request(f, "POST", PATH, big + sizeof big - 1024, 1024), 400);
    big[sizeof big - 1024] = '[';
    assert_int_equal(request(f, "POST", PATH, big + sizeof big - 1024, 1024), 200);
    assert_int_equal(f->log.calls, 1);
    assert_int_equal(f->log.last_len, 1024);
}

static void test_unresolvable_host_fails_with_message(void **state)
{
    (void)state;
    struct kte_metrics m;
    struct sink_log log = {0};
    char err[256] = "";
    kte_metrics_init(&m);
    struct kte_listener *l =
        kte_listener_start("no-such-host.invalid", 0, PATH, 1024, sink, &log, &m, err, sizeof err);
    assert_null(l);
    assert_non_null(strstr(err, "KTE_LISTENER_HOST"));
    assert_non_null(strstr(err, "no-such-host.invalid"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_post_to_secret_path_reaches_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_paths_are_404_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_post_is_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_is_400_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_is_413_and_counted, setup, teardown),
        cmocka_unit_test(test_unresolvable_host_fails_with_message),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
