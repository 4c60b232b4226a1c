/* The listener end to end: LLVMFuzzerInitialize starts it once on
 * 127.0.0.1:<free port>; each input is written as raw bytes (one request,
 * several pipelined ones, or garbage) on a new TCP connection, which is
 * half-closed once the listener has read it all, and the answers are read
 * until the listener closes: so each input is done with when the next one
 * starts, and a finding points at the input that caused it. The sink
 * parses bodies as the pipeline does (kte_event_parse) and counts events.
 *
 * The secret path is /fuzz-0123456789abcdef (in the dictionary and seeds);
 * max_body is 4 KiB so that small inputs reach the 413 branches. A listener
 * that neither answers nor closes within 10 s is a finding (a hang). */
#include "kte_event.h"
#include "kte_listener.h"
#include "kte_metrics.h"

#include "fuzz_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATH     "/fuzz-0123456789abcdef"
#define MAX_BODY 4096

static struct kte_listener *listener;
static struct kte_metrics metrics;
static struct sockaddr_in addr;
static atomic_uint_fast64_t events;

/* As the pipeline's intake: a body that is not a list of events is
 * malformed (400). A body with no event is answered as after shutdown (503)
 * so that branch is reached too. */
static int sink(void *ctx, const char *body, size_t len, char *msg, size_t msg_len)
{
    (void)ctx;
    FUZZ_CHECK(len <= MAX_BODY);
    struct kte_event_list l;
    kte_event_list_init(&l);
    int rc = kte_event_parse(body, len, &l, msg, msg_len);
    size_t n = l.n;
    kte_event_list_free(&l);
    if (rc != 0)
        return KTE_SINK_MALFORMED;
    if (n == 0)
        return KTE_SINK_CLOSED;
    atomic_fetch_add(&events, n);
    return KTE_SINK_OK;
}

static void stop_listener(void)
{
    kte_listener_stop(listener);
    /* What the inputs reached, to see that the run covered every answer. */
    fprintf(stderr,
            "fuzz_listener: %llu POSTs accepted (%llu events), %llu rejected, %llu malformed, "
            "%llu oversized, %llu after close\n",
            (unsigned long long)metrics.posts, (unsigned long long)events,
            (unsigned long long)metrics.posts_rejected, (unsigned long long)metrics.posts_malformed,
            (unsigned long long)metrics.posts_oversized,
            (unsigned long long)metrics.posts_after_close);
    listener = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    kte_metrics_init(&metrics);
    listener =
        kte_listener_start("127.0.0.1", 0, PATH, MAX_BODY, sink, NULL, &metrics, err, sizeof err);
    if (!listener) {
        fprintf(stderr, "fuzz_listener: %s\n", err);
        exit(1);
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)kte_listener_port(listener));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The listener lives until the process exits (libFuzzer never returns
     * from its loop); stop it on a normal exit so LeakSanitizer's report at
     * exit shows only real leaks. */
    atexit(stop_listener);
    return 0;
}

/* The listener's end of our connection (the socket whose peer is our local
 * address), or -1 while it has not been accepted or once it is closed. The
 * last one found is tried first: the listener reuses the lowest free fd. */
static int server_fd(const struct sockaddr_in *local)
{
    static int hint = 3;
    for (int i = -1; i < 1024; i++) {
        int fd = i < 0 ? hint : i;
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 && len == sizeof peer &&
            peer.sin_family == AF_INET && peer.sin_port == local->sin_port &&
            peer.sin_addr.s_addr == local->sin_addr.s_addr) {
            hint = fd;
            return fd;
        }
    }
    return -1;
}

/* Whether the listener has read every byte we sent. Only then may we
 * half-close: libmicrohttpd's edge-triggered epoll misses a FIN that arrives
 * together with the data (the connection then lingers until its idle
 * timeout), so the FIN must come after the last read. */
static bool listener_read_all(const struct sockaddr_in *local, size_t sent)
{
    int fd = server_fd(local);
    if (fd < 0)
        return false;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    int queued = 0;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
           len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received &&
           ti.tcpi_bytes_received == sent && ioctl(fd, FIONREAD, &queued) == 0 && queued == 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new connection to the listener. Our side closes first, so each
 * connection leaves a TIME_WAIT behind; at thousands a second (and with
 * other tests on the machine) ephemeral ports can run short for a moment:
 * that is retried for a while, not taken as a finding. */
static int connect_listener(void)
{
    for (int attempt = 0;; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        FUZZ_CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        int e = errno;
        close(fd);
        if (attempt == 1000 || (e != EADDRNOTAVAIL && e != EAGAIN && e != EINTR)) {
            fprintf(stderr, "fuzz_listener: connect: %s\n", strerror(e));
            abort();
        }
        usleep(10000);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = connect_listener();
    struct sockaddr_in local;
    socklen_t llen = sizeof local;
    FUZZ_CHECK(getsockname(fd, (struct sockaddr *)&local, &llen) == 0);
    FUZZ_CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0);

    /* Send the input while reading answers (pipelined requests must not
     * stall on a full buffer), half-close once the listener has read it
     * all, then read until the listener closes. */
    long long deadline = now_ms() + 10000;
    size_t off = 0;
    bool fin = false;
    char buf[4096];
    for (;;) {
        ssize_t r;
        while ((r = recv(fd, buf, sizeof buf, 0)) > 0)
            ;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
            break; /* closed (or reset) by the listener: done */
        if (off < size) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                off = size; /* the listener stopped reading: the rest is moot */
        }
        if (off == size && !fin && listener_read_all(&local, size)) {
            shutdown(fd, SHUT_WR);
            fin = true;
        }
        long long left = deadline - now_ms();
        FUZZ_CHECK(left > 0); /* else the listener hung on this input */
        if (fin || off < size) {
            struct pollfd p = {.fd = fd, .events = POLLIN | (off < size ? POLLOUT : 0)};
            poll(&p, 1, (int)left);
        } else {
            sched_yield(); /* the listener is still reading */
        }
    }
    close(fd);
    return 0;
}
