/* The listener over real HTTP: only POSTs to the secret path reach the sink;
 * everything else is answered and counted, and a bad body never reaches it. */
#include "kte_listener.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* Three connections, so that floods are cheap to make; 3 s idle. */
static const struct kte_listener_limits small = {3, 3, 60};

static int setup_with(void **state, const struct kte_listener_limits *lim)
{
    struct fixture *f = calloc(1, sizeof *f);
    char err[256];
    kte_metrics_init(&f->m);
    f->l =
        lim ? kte_listener_start_limited("127.0.0.1", 0, PATH, 1024, lim, sink, &f->log, &f->m, err,
                                         sizeof err)
            : kte_listener_start("127.0.0.1", 0, PATH, 1024, sink, &f->log, &f->m, err, sizeof err);
    if (!f->l) {
        fprintf(stderr, "listener: %s\n", err);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", kte_listener_port(f->l));
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int setup_small(void **state)
{
    return setup_with(state, &small);
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

/* A raw client connection to the listener; sends text unless NULL. */
static int raw_connect(struct fixture *f, const char *text)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(kte_listener_port(f->l))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (text)
        assert_int_equal(send(fd, text, strlen(text), 0), (ssize_t)strlen(text));
    return fd;
}

/* True when the server closed fd (end of stream or reset) within ms. */
static bool closed_by_server(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return false;
    char c[512];
    ssize_t n;
    while ((n = recv(fd, c, sizeof c, MSG_DONTWAIT)) > 0)
        ;
    return n == 0 || (n < 0 && errno != EAGAIN);
}

/* Waits (up to 5 s) for a counter to reach want; returns its value. */
static uint64_t wait_count(atomic_uint_fast64_t *c, uint64_t want)
{
    for (int i = 0; i < 500 && atomic_load(c) < want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(c);
}

static int bind_port(int port, bool reuseport, bool any)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    int e = errno;
    close(fd);
    return rc == 0 ? 0 : e;
}

/* Issue 10: with SO_REUSEPORT another process of the same user could bind
 * the port and take a share of the Telemetry API's POSTs. */
static void test_second_bind_on_the_port_fails(void **state)
{
    struct fixture *f = *state;
    int port = kte_listener_port(f->l);
    assert_int_equal(bind_port(port, true, false), EADDRINUSE);
    assert_int_equal(bind_port(port, false, false), EADDRINUSE);
    assert_int_equal(bind_port(port, true, true), EADDRINUSE);
    assert_int_equal(bind_port(port, false, true), EADDRINUSE);
    /* A second listener on the same port fails with a message. */
    char err[256] = "";
    struct kte_metrics m;
    kte_metrics_init(&m);
    assert_null(kte_listener_start("127.0.0.1", port, PATH, 1024, sink, NULL, &m, err, sizeof err));
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(request(f, "POST", PATH, "[]", 2), 200);
}

static void test_pick_victim_prefers_untrusted_longest_idle(void **state)
{
    (void)state;
    struct kte_conn_state c[4] = {
        {.trusted = true, .idle_since = 1},
        {.trusted = false, .idle_since = 30},
        {.trusted = false, .busy = true, .idle_since = 20},
        {.trusted = false, .idle_since = 40},
    };
    assert_int_equal(kte_listener_pick_victim(c, 4), 2); /* a busy untrusted one too */
    c[2].evicting = true;
    assert_int_equal(kte_listener_pick_victim(c, 4), 1);
    c[1].trusted = c[3].trusted = true;
    assert_int_equal(kte_listener_pick_victim(c, 4), 0); /* idle trusted, oldest */
    c[0].busy = true;
    assert_int_equal(kte_listener_pick_victim(c, 4), 1);
    c[1].busy = c[3].busy = true;
    assert_int_equal(kte_listener_pick_victim(c, 4), -1); /* all Telemetry API requests */
    assert_int_equal(kte_listener_pick_victim(c, 0), -1);
}

/* Issue 10: idle connections must not starve the Telemetry API. */
static void test_idle_flood_is_evicted_and_telemetry_gets_through(void **state)
{
    struct fixture *f = *state;
    int fds[10];
    for (int i = 0; i < 10; i++) {
        fds[i] = raw_connect(f, i % 2 ? "POST /wrong HTTP/1.1\r\nHo" : NULL);
        /* Each one is accepted before the next so the order is known. */
        assert_int_equal(wait_count(&f->m.connections_accepted, (uint64_t)i + 1), i + 1);
    }
    assert_int_equal(atomic_load(&f->m.connections_evicted), 7);
    for (int i = 0; i < 7; i++)
        assert_true(closed_by_server(fds[i], 2000)); /* the oldest went first */
    for (int i = 7; i < 10; i++)
        assert_false(closed_by_server(fds[i], 0));
    /* The Telemetry API still gets in (evicting one more), twice over one
     * connection counted once. */
    assert_int_equal(request(f, "POST", PATH, "[]", 2), 200);
    assert_int_equal(atomic_load(&f->m.connections_evicted), 8);
    assert_true(closed_by_server(fds[7], 2000));
    for (int i = 0; i < 10; i++)
        close(fds[i]);
    assert_int_equal(wait_count(&f->m.connections_without_request, 2), 2);
    assert_int_equal(atomic_load(&f->m.posts), 1);
    assert_int_equal(atomic_load(&f->m.connections_refused), 0);
}

static void test_untrusted_idle_connection_times_out(void **state)
{
    struct fixture *f = *state;
    int fd = raw_connect(f, "POST " PATH " HTTP/1.1\r\nHost: x\r\n"); /* slow headers */
    assert_true(closed_by_server(fd, 10000));                         /* 3 s idle limit */
    close(fd);
    assert_int_equal(wait_count(&f->m.connections_without_request, 1), 1);
    assert_int_equal(atomic_load(&f->m.connections_evicted), 0);
}

static void test_telemetry_requests_in_progress_are_never_evicted(void **state)
{
    struct fixture *f = *state;
    const char *head = "POST " PATH " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n[";
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = raw_connect(f, head);
    /* Once all three are in a request (headers parsed, which takes
     * libmicrohttpd far less than the pause), a fourth connection is
     * refused, not let in by evicting one of them. */
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    int extra = raw_connect(f, NULL);
    assert_true(closed_by_server(extra, 2000));
    close(extra);
    assert_int_equal(atomic_load(&f->m.connections_evicted), 0);
    assert_int_equal(atomic_load(&f->m.connections_refused), 1);
    for (int i = 0; i < 3; i++) {
        assert_false(closed_by_server(fds[i], 0));
        assert_int_equal(send(fds[i], "]  ", 3, 0), 3); /* finish the bodies */
    }
    assert_int_equal(wait_count(&f->m.posts, 3), 3);
    /* A body that never completes is counted when its connection goes. */
    int fd = raw_connect(f, head);
    nanosleep(&pause, NULL);
    close(fd);
    assert_int_equal(wait_count(&f->m.requests_incomplete, 1), 1);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
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
        cmocka_unit_test_setup_teardown(test_second_bind_on_the_port_fails, setup, teardown),
        cmocka_unit_test(test_pick_victim_prefers_untrusted_longest_idle),
        cmocka_unit_test_setup_teardown(test_idle_flood_is_evicted_and_telemetry_gets_through,
                                        setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_idle_connection_times_out, setup_small,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_telemetry_requests_in_progress_are_never_evicted,
                                        setup_small, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
