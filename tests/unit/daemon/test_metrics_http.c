/*
 * test_metrics_http.c - daemon/metrics.c on a real libuv loop: libmicrohttpd driven by the
 * loop (no threads of its own) answers a blocking HTTP client running in a second thread.
 * GET /metrics is 200 with the exposition content type, other paths 404, other methods
 * 405; a commit counted on the loop lands in the latency histogram; the distinct unknown
 * meter ids are counted from a real store; stopping with an idle client connected closes
 * it; a busy port and a malformed address fail the start and leave nothing on the loop.
 * Every test closes all handles and checks uv_loop_close() == 0 (ASan checks the frees).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "enpi_error.h"
#include "enpid.h"
#include "retention.h"

/* RocksDB and libstdc++ are not built with TSan (see test_ingest.c). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:librocksdb.so\ncalled_from_lib:libstdc++.so\n";
}

static const char CONFIG_YAML[] = "timezone: UTC\n"
                                  "pipeline:\n"
                                  "  resolutions: [15m]\n"
                                  "inputs:\n"
                                  "  - topic: \"enpi/{facility}/{meter}\"\n"
                                  "    meter_id: \"{facility}/{meter}\"\n"
                                  "facilities:\n"
                                  "  - id: f1\n"
                                  "    meters:\n"
                                  "      - { id: f1/m, kind: energy }\n";

/* ---- stand-ins for the parts of enpid that metrics.c calls but this test leaves out ---- */

int64_t enpid_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t enpid_mqtt_reconnects(const enpid_mqtt_t *m)
{
    (void)m;
    return 0;
}

uint64_t enpid_mqtt_connect_failures(const enpid_mqtt_t *m)
{
    (void)m;
    return 0;
}

/* commit.c's rule, without its reopen state: usable while no commit fails. */
bool enpid_commit_store_usable(const enpid_t *d)
{
    return d->commit_failing == 0;
}

/* ---- fixture ---- */

typedef struct {
    enpid_t d;
    char dir[64];
    char listen[64];
    int port;
    uv_async_t done; /* the client thread -> loop: stop the endpoint */
} fixture_t;

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A loopback port that was free a moment ago. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void done_cb(uv_async_t *h)
{
    fixture_t *f = h->data;
    enpid_metrics_stop(&f->d);
    uv_close((uv_handle_t *)h, NULL);
}

static fixture_t *fixture_open(void)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/enpi-test-metrics-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    enpid_t *d = &f->d;
    char err[512] = "";
    assert_int_equal(enpi_config_parse("test.yaml", CONFIG_YAML, sizeof CONFIG_YAML - 1, &d->cfg,
                                       err, sizeof err),
                     0);
    f->port = free_port();
    snprintf(f->listen, sizeof f->listen, "127.0.0.1:%d", f->port);
    d->cfg->metrics_listen = strdup(f->listen); /* freed by enpi_config_free */
    assert_int_equal(enpi_store_open(f->dir, ENPI_STORE_PRIMARY, &d->store, err, sizeof err), 0);
    assert_int_equal(enpi_pipeline_create(d->cfg, &d->pipe, err, sizeof err), 0);
    assert_int_equal(enpi_ring_init(&d->ring, 8), 0);
    assert_int_equal(uv_loop_init(&d->loop), 0);
    d->loop.data = d;
    assert_int_equal(uv_async_init(&d->loop, &f->done, done_cb), 0);
    f->done.data = f;
    return f;
}

static void fixture_close(fixture_t *f)
{
    enpid_t *d = &f->d;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&d->loop), 0);
    assert_null(d->metrics);
    enpi_ring_destroy(&d->ring);
    enpi_pipeline_free(d->pipe);
    enpi_store_close(d->store);
    enpi_config_free(d->cfg);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
}

/* ---- the client (second thread; blocking sockets) ---- */

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends one HTTP/1.0 request and reads the answer until EOF into a malloc'd string
 * (NULL on failure). */
static char *request(int port, const char *method, const char *path)
{
    int fd = connect_port(port);
    if (fd < 0)
        return NULL;
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: test\r\nContent-Length: 0\r\n\r\n",
                     method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf != NULL && (r = read(fd, buf + len, cap - len - 1)) > 0)
        len += (size_t)r;
    close(fd);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

typedef struct {
    fixture_t *f;
    char *metrics;     /* a GET /metrics answer */
    char *unknown;     /* the first GET /metrics answer that counted the unknown id */
    char *not_found;   /* GET /nope */
    char *not_allowed; /* POST /metrics */
    char *head;        /* HEAD /metrics */
    bool idle_closed;  /* stop closed an idle client's connection */
} client_t;

static void *scrape_thread(void *arg)
{
    client_t *c = arg;
    int port = c->f->port;
    c->metrics = request(port, "GET", "/metrics");
    c->not_found = request(port, "GET", "/nope");
    c->not_allowed = request(port, "POST", "/metrics");
    c->head = request(port, "HEAD", "/metrics");
    for (int i = 0; i < 100 && c->unknown == NULL; i++) {
        char *t = request(port, "GET", "/metrics");
        if (t != NULL && strstr(t, "\nenpid_unknown_meter_ids 1\n") != NULL) {
            c->unknown = t;
            break;
        }
        free(t);
        usleep(50 * 1000);
    }
    uv_async_send(&c->f->done);
    return NULL;
}

static void *idle_thread(void *arg)
{
    client_t *c = arg;
    int fd = connect_port(c->f->port);
    if (fd >= 0) {
        usleep(100 * 1000); /* let the loop accept it */
        uv_async_send(&c->f->done);
        char b;
        c->idle_closed = read(fd, &b, 1) == 0; /* EOF, not the 10 s receive timeout */
        close(fd);
    } else {
        uv_async_send(&c->f->done);
    }
    return NULL;
}

static void run_client(fixture_t *f, client_t *c, void *(*fn)(void *))
{
    pthread_t th;
    c->f = f;
    assert_int_equal(pthread_create(&th, NULL, fn, c), 0);
    uv_run(&f->d.loop, UV_RUN_DEFAULT); /* ends when the endpoint is stopped */
    assert_int_equal(pthread_join(th, NULL), 0);
}

/* The status code of an HTTP answer, 0 if it does not start with a status line. */
static int status_of(const char *text)
{
    int code = 0;
    if (text == NULL || sscanf(text, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

static void assert_contains(const char *text, const char *what)
{
    if (text == NULL || strstr(text, what) == NULL)
        fail_msg("\"%s\" not in:\n%s", what, text ? text : "(no answer)");
}

/* ---- tests ---- */

/* An unknown meter's reading committed to the store, as a running enpid would have. */
static void commit_unknown_meter(fixture_t *f)
{
    static const char payload[] = "{\"ts\": 1700000000000, \"value\": 1}";
    enpi_batch_t *b = NULL;
    enpi_pipeline_ingest(f->d.pipe, 1, "enpi/f1/ghost", 13, payload, sizeof payload - 1,
                         1700000000000, 0);
    assert_int_equal(enpi_pipeline_take_batch(f->d.pipe, &b), 0);
    assert_int_equal(enpi_store_commit(f->d.store, b), 0);
    enpi_batch_free(b);
}

static void serves_metrics_404_405_on_the_loop(void **state)
{
    (void)state;
    fixture_t *f = fixture_open();
    commit_unknown_meter(f);
    assert_int_equal(enpid_metrics_start(&f->d), 0);
    assert_non_null(f->d.metrics);
    /* A commit completing on the loop: observed by the next iteration's check. */
    f->d.n_commits = 1;
    f->d.last_commit_us = 3000;
    client_t c = {0};
    run_client(f, &c, scrape_thread);

    assert_int_equal(status_of(c.metrics), 200);
    assert_contains(c.metrics, "Content-Type: text/plain; version=0.0.4");
    assert_contains(c.metrics, "\nenpid_rejects_total{reason=\"unknown_meter\"} 1\n");
    assert_contains(c.metrics, "\nenpid_commits_total 1\n");
    assert_contains(c.metrics, "\nenpid_commit_duration_seconds_bucket{le=\"0.0025\"} 0\n");
    assert_contains(c.metrics, "\nenpid_commit_duration_seconds_bucket{le=\"0.005\"} 1\n");
    assert_contains(c.metrics, "\nenpid_commit_duration_seconds_sum 0.003000\n");
    assert_contains(c.metrics, "\nenpid_ring_capacity_messages 8\n");
    assert_contains(c.unknown, "\nenpid_unknown_meter_ids 1\n");
    assert_int_equal(status_of(c.not_found), 404);
    assert_int_equal(status_of(c.not_allowed), 405);
    assert_contains(c.not_allowed, "Allow: GET, HEAD");
    assert_int_equal(status_of(c.head), 200);
    assert_null(strstr(c.head, "# HELP")); /* no body for HEAD */
    free(c.metrics);
    free(c.unknown);
    free(c.not_found);
    free(c.not_allowed);
    free(c.head);
    fixture_close(f);
}

static void stop_closes_an_idle_connection(void **state)
{
    (void)state;
    fixture_t *f = fixture_open();
    assert_int_equal(enpid_metrics_start(&f->d), 0);
    client_t c = {0};
    run_client(f, &c, idle_thread);
    assert_true(c.idle_closed);
    enpid_metrics_stop(&f->d); /* idempotent */
    fixture_close(f);
}

static void busy_port_fails_the_start(void **state)
{
    (void)state;
    fixture_t *f = fixture_open();
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)f->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(holder, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(holder, 1), 0);
    assert_int_equal(enpid_metrics_start(&f->d), ENPI_EIO);
    assert_null(f->d.metrics);
    close(holder);
    uv_close((uv_handle_t *)&f->done, NULL);
    fixture_close(f);
}

/* Addresses config.c lets through but that name no host: no socket, nothing left. */
static void malformed_address_fails_the_start(void **state)
{
    (void)state;
    static const char *const bad[] = {"[::1:9465", "[]:9465", ":9465", "9465"};
    fixture_t *f = fixture_open();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        free(f->d.cfg->metrics_listen);
        f->d.cfg->metrics_listen = strdup(bad[i]);
        assert_int_equal(enpid_metrics_start(&f->d), ENPI_EINVAL);
        assert_null(f->d.metrics);
    }
    uv_close((uv_handle_t *)&f->done, NULL);
    fixture_close(f);
}

static void no_listen_address_is_a_no_op(void **state)
{
    (void)state;
    fixture_t *f = fixture_open();
    free(f->d.cfg->metrics_listen);
    f->d.cfg->metrics_listen = NULL;
    assert_int_equal(enpid_metrics_start(&f->d), 0);
    assert_null(f->d.metrics);
    enpid_metrics_stop(&f->d);
    uv_close((uv_handle_t *)&f->done, NULL);
    fixture_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(serves_metrics_404_405_on_the_loop),
        cmocka_unit_test(stop_closes_an_idle_connection),
        cmocka_unit_test(busy_port_fails_the_start),
        cmocka_unit_test(malformed_address_fails_the_start),
        cmocka_unit_test(no_listen_address_is_a_no_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
