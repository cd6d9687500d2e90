/*
 * metrics.c - the Prometheus endpoint of SPEC §8: GET /metrics on metrics.listen, served
 * by libmicrohttpd inside enpid's libuv loop.
 *
 * MHD runs in its "external epoll" mode: no thread of its own. Its epoll descriptor
 * (MHD_DAEMON_INFO_EPOLL_FD) is watched by a uv_poll_t; when it is readable, or when the
 * uv_timer_t armed from MHD_get_timeout() fires, MHD_run() accepts, reads, answers and
 * times out connections without blocking. So every request is answered on the loop
 * thread, which owns the counters: a scrape reads them directly, no locks.
 *
 * Responses: GET (and HEAD) /metrics -> 200 "text/plain; version=0.0.4" rendered by
 * metrics_text.c; any other path -> 404; any other method -> 405 with "Allow: GET, HEAD".
 * At most ENPID_METRICS_MAX_CONN connections at once; one idle for
 * ENPID_METRICS_IDLE_S seconds is closed, so a stuck client cannot keep a slot for long;
 * no client can block the loop (every socket is non-blocking).
 *
 * metrics.listen is "host:port", "[v6-address]:port" or "name:port" (resolved once at
 * start; the first address is used). Failing to listen there is a start-up error: the
 * operator asked for metrics and would rather know now than discover a silent gap later.
 *
 * The commit-latency histogram and the time of the last successful commit are observed
 * here, from a uv_check_t that runs once per loop iteration after I/O: when n_commits has
 * moved, last_commit_us (set by commit.c's completion callback in that iteration's I/O
 * phase) is the new commit's latency. Start-up and shutdown commits (synchronous, before
 * this endpoint starts or after it stops) are not in the histogram, only in
 * enpid_commits_total.
 *
 * The number of distinct unknown meter ids (what `enpi meters --unknown` lists) is
 * counted in the store by a libuv threadpool worker, after commits, at most every
 * ENPID_UNKNOWN_COUNT_MS; the process keeps no unbounded set of ids for it.
 *
 * DESIGN: loop thread, except that one count of unknown ids at a time runs in the
 * threadpool (it reads only the store, which is thread-safe, and its own result fields;
 * uv_queue_work's hand-over orders them). The counters written by Paho's thread are
 * atomics read relaxed (statistics; they order nothing). Lifetime: enpid_metrics_start()
 * allocates the state behind d->metrics; enpid_metrics_stop() stops MHD and closes the
 * three handles; the state is freed when the last close callback (or a count still in
 * flight) has run.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "enpi_error.h"
#include "enpid.h"
#include "retention.h" /* enpid_commit_store_usable */
#include "metrics_text.h"

#define ENPID_METRICS_MAX_CONN 16u /* concurrent connections */
#define ENPID_METRICS_IDLE_S 10u   /* an idle connection is closed after this */
#define ENPID_METRICS_BACKLOG 16
#define ENPID_UNKNOWN_COUNT_MS 10000 /* distinct unknown ids recounted at most this often */

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct enpid_metrics {
    enpid_t *d;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;   /* MHD's epoll descriptor readable -> MHD_run */
    uv_timer_t timer; /* MHD_get_timeout() -> MHD_run */
    uv_check_t check; /* commit observation, once per loop iteration */
    int open_handles; /* handles not yet closed + a count in flight; freed at 0 */
    bool stopped;
    char listen[300]; /* metrics.listen, for log lines */
    int64_t start_ms; /* process start (wall clock) */
    uint64_t seen_commits;
    int64_t last_commit_ms;
    enpid_histogram_t commit;
    enpi_ratelimit_t rl; /* MHD's own error messages */
    /* distinct unknown meter ids in the store, counted by a threadpool worker */
    uv_work_t unknown_work;
    bool unknown_busy;         /* a count is in flight (it holds the state like a handle) */
    bool unknown_stale;        /* a commit since the last count may have added ids */
    uint64_t unknown_last_ms;  /* loop time when the last count started; 0 = never */
    uint64_t unknown_ids;      /* result of the last successful count */
    uint64_t unknown_counting; /* the worker's running count */
    int unknown_rc;            /* the worker's result */
};

static uint64_t load_relaxed(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* ---- when the process started ---- */

/*
 * The wall-clock start of this process, from /proc/self/stat's starttime (clock ticks after
 * boot) and CLOCK_BOOTTIME; enpid_now_ms() when /proc cannot tell. So the gauge means the
 * process start even when the inbox replay before this endpoint took minutes.
 */
static int64_t process_start_ms(void)
{
    int64_t now = enpid_now_ms();
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return now;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may contain anything */
    if (p == NULL)
        return now;
    /* After ") " come fields 3 (state) .. 22 (starttime). */
    unsigned long long ticks = 0;
    int field = 2;
    for (p++; *p && field < 22; p++) {
        if (*p == ' ')
            field++;
    }
    if (field != 22 || sscanf(p, "%llu", &ticks) != 1)
        return now;
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec boot;
    if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return now;
    int64_t since_boot_ms = (int64_t)boot.tv_sec * 1000 + boot.tv_nsec / 1000000;
    int64_t started_ms = (int64_t)(ticks * 1000ull / (unsigned long long)hz);
    if (started_ms > since_boot_ms)
        return now;
    return now - (since_boot_ms - started_ms);
}

/* ---- the scrape ---- */

/*
 * Fills *s from the daemon's counters (loop thread). *inputs_out is a calloc'd array the
 * caller frees (NULL when there are no inputs). Returns 0 or ENPI_ENOMEM.
 */
static int snapshot(struct enpid_metrics *m, enpid_metrics_snapshot_t *s,
                    enpid_metrics_input_t **inputs_out)
{
    enpid_t *d = m->d;
    memset(s, 0, sizeof *s);
    *inputs_out = NULL;
    s->version = ENPI_VERSION;
    s->start_time_ms = m->start_ms;
    s->mqtt_up = atomic_load_explicit(&d->mqtt_up, memory_order_relaxed) != 0;
    if (d->mqtt != NULL) { /* created right after this endpoint, destroyed after it stops */
        s->mqtt_reconnects = enpid_mqtt_reconnects(d->mqtt);
        s->mqtt_connect_failures = enpid_mqtt_connect_failures(d->mqtt);
    }

    s->received = load_relaxed(&d->n_received);
    s->spilled = load_relaxed(&d->n_spilled);
    s->inbox_failed = load_relaxed(&d->n_inbox_failed);
    s->read_back = d->n_readback;
    s->replayed = d->n_replayed;
    uint64_t appended = atomic_load_explicit(&d->appended_upto, memory_order_relaxed);
    s->inbox_backlog = appended > d->expected_seq ? appended - d->expected_seq : 0;
    s->ring_size = enpi_ring_size(&d->ring);
    s->ring_capacity = enpi_ring_capacity(&d->ring);

    if (d->pipe != NULL) {
        s->pipe = *enpi_pipeline_stats(d->pipe);
        s->pending_rollups = enpi_pipeline_pending(d->pipe);
        size_t n_in = enpi_pipeline_n_inputs(d->pipe);
        if (d->cfg != NULL && n_in > d->cfg->n_inputs)
            n_in = d->cfg->n_inputs;
        if (n_in > 0) {
            enpid_metrics_input_t *in = calloc(n_in, sizeof *in);
            if (in == NULL)
                return ENPI_ENOMEM;
            for (size_t i = 0; i < n_in; i++) {
                in[i].topic = d->cfg != NULL ? d->cfg->inputs[i].topic : NULL;
                enpi_pipeline_input_stats(d->pipe, i, &in[i].stats);
            }
            s->inputs = in;
            s->n_inputs = n_in;
            *inputs_out = in;
        }
        enpi_sparkplug_stats_t sp;
        if (enpi_pipeline_sparkplug_stats(d->pipe, &sp))
            s->rebirth_requests = sp.rebirth_requests;
        enpi_outbox_stats_t ob;
        enpi_pipeline_outbox_stats(d->pipe, &ob);
        s->outbox_dropped = ob.dropped;
    }
    s->outbound_published = d->n_outbound_published;
    s->outbound_refused = d->n_outbound_dropped;

    s->commits = d->n_commits;
    s->commit_failures = d->n_commit_failures;
    s->commit_failing = d->commit_failing;
    s->last_commit_ms = m->last_commit_ms;
    s->unknown_meter_ids = m->unknown_ids;
    s->commit = m->commit;
    return 0;
}

static enum MHD_Result respond_static(struct MHD_Connection *c, unsigned status, const char *body,
                                      const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* MHD's request callback (inside MHD_run, so on the loop thread). Answers on the first
 * call, once the headers are in; a request body is never read (405 for such methods). */
static enum MHD_Result request_cb(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct enpid_metrics *m = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    if (strcmp(url, "/metrics") != 0)
        return respond_static(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);

    enpid_metrics_snapshot_t s;
    enpid_metrics_input_t *inputs = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = snapshot(m, &s, &inputs);
    if (rc == 0)
        rc = enpid_metrics_render(&s, &text, &len);
    free(inputs);
    if (rc != 0)
        return respond_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* MHD's error messages (bad requests, accept failures) go to our log, rate-limited. */
static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
    struct enpid_metrics *m = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    uint64_t suppressed;
    if (enpi_ratelimit_allow(&m->rl, enpid_now_ms(), 10, &suppressed)) {
        log_warn("metrics: %s", line);
        if (suppressed)
            log_warn("metrics: (%" PRIu64 " similar messages not logged)", suppressed);
    }
}

/* ---- driving MHD from the loop ---- */

static void timer_cb(uv_timer_t *t);

/* Runs MHD once, then re-arms the timer with what MHD wants next. Loop thread. */
static void run_mhd(struct enpid_metrics *m)
{
    if (m->mhd == NULL)
        return;
    MHD_run(m->mhd);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(m->mhd, &ms) == MHD_YES) {
        if (ms > 60000)
            ms = 60000; /* re-asks MHD at least every minute */
        uv_timer_start(&m->timer, timer_cb, (uint64_t)ms, 0);
    } else {
        uv_timer_stop(&m->timer);
    }
}

static void timer_cb(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
    struct enpid_metrics *m = p->data;
    (void)events;
    if (status < 0)
        log_warn("metrics: polling the HTTP server failed: %s", uv_strerror(status));
    run_mhd(m);
}

/* ---- distinct unknown meter ids ---- */

static void release_ref(struct enpid_metrics *m)
{
    if (--m->open_handles == 0)
        free(m);
}

static int count_unknown_cb(void *ctx, const enpi_unknown_meter_t *u)
{
    struct enpid_metrics *m = ctx;
    (void)u;
    m->unknown_counting++;
    return 0;
}

/* Threadpool worker: reads the store's unknown-meter table (the store is thread-safe;
 * nothing else of m is touched until after_count_cb). */
static void count_work_cb(uv_work_t *req)
{
    struct enpid_metrics *m = req->data;
    m->unknown_counting = 0;
    m->unknown_rc = enpi_store_unknown_meters(m->d->store, count_unknown_cb, m);
}

static void after_count_cb(uv_work_t *req, int status)
{
    struct enpid_metrics *m = req->data;
    m->unknown_busy = false;
    m->d->store_readers--;
    if (status == 0 && m->unknown_rc == 0) {
        m->unknown_ids = m->unknown_counting;
    } else if (!m->stopped) {
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&m->rl, enpid_now_ms(), 10, &suppressed))
            log_warn("metrics: cannot count the unknown meters in the store: %s",
                     status != 0 ? uv_strerror(status) : enpi_strerror(m->unknown_rc));
    }
    release_ref(m);
}

/*
 * Unknown meter ids reach the store only with commits, so the distinct count is redone
 * after commits, at most every ENPID_UNKNOWN_COUNT_MS, in the threadpool (a RocksDB scan
 * does not belong on the loop). Loop thread.
 */
static void maybe_count_unknown(struct enpid_metrics *m)
{
    if (!m->unknown_stale || m->unknown_busy || m->stopped || m->d->store == NULL)
        return;
    /* Not while commits fail: the next retry may replace the store's RocksDB instance
     * (enpi_store_reopen), which nobody else may be using then. */
    if (!enpid_commit_store_usable(m->d))
        return;
    uint64_t now = uv_now(&m->d->loop);
    if (m->unknown_last_ms != 0 && now - m->unknown_last_ms < ENPID_UNKNOWN_COUNT_MS)
        return;
    m->unknown_work.data = m;
    if (uv_queue_work(&m->d->loop, &m->unknown_work, count_work_cb, after_count_cb) != 0)
        return; /* tried again next iteration */
    m->unknown_busy = true;
    m->d->store_readers++; /* commit.c reopens the store only when none is in flight */
    m->unknown_stale = false;
    m->unknown_last_ms = now;
    m->open_handles++; /* the state lives until after_count_cb */
}

/* Once per loop iteration, after I/O: a commit completed in this iteration? */
static void check_cb(uv_check_t *h)
{
    struct enpid_metrics *m = h->data;
    enpid_t *d = m->d;
    maybe_count_unknown(m);
    if (d->n_commits == m->seen_commits)
        return;
    /* One commit is in flight at a time and its completion runs in the I/O phase, so
     * this is normally one commit; should several ever land in one iteration, each is
     * counted with the last one's latency. */
    uint64_t n = d->n_commits - m->seen_commits;
    m->seen_commits = d->n_commits;
    m->last_commit_ms = enpid_now_ms();
    m->unknown_stale = true;
    for (uint64_t i = 0; i < n; i++)
        enpid_histogram_observe_us(&m->commit, d->last_commit_us);
}

static void handle_closed_cb(uv_handle_t *h)
{
    release_ref(h->data);
}

/* Closes one of the state's handles. One already closing (the loop's final uv_walk got
 * there first, without our callback) is only counted off; the state then stays
 * allocated, as it must while that handle's memory may still be in use. */
static void close_handle(struct enpid_metrics *m, uv_handle_t *h)
{
    if (uv_is_closing(h)) {
        log_warn("metrics: a handle was closed before the endpoint was stopped");
        return;
    }
    uv_close(h, handle_closed_cb);
}

/* ---- listening socket ---- */

/*
 * Splits "host:port" / "[v6]:port" and resolves it (numeric addresses without DNS).
 * On success fills *ss and *len and returns 0; else logs why and returns ENPI_EINVAL.
 */
static int resolve_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec) {
        log_err("metrics: listen address \"%s\" is not host:port", spec);
        return ENPI_EINVAL;
    }
    const char *h = spec;
    size_t hlen = (size_t)(colon - spec);
    if (spec[0] == '[') {
        if (hlen < 2 || colon[-1] != ']') {
            log_err("metrics: listen address \"%s\": an IPv6 address goes in brackets", spec);
            return ENPI_EINVAL;
        }
        h = spec + 1;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= sizeof host) {
        log_err("metrics: listen address \"%s\": bad host", spec);
        return ENPI_EINVAL;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
    };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host, colon + 1, &hints, &res);
    if (g != 0 || res == NULL) {
        log_err("metrics: cannot resolve listen address \"%s\": %s", spec,
                g != 0 ? gai_strerror(g) : "no address");
        return ENPI_EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Creates, binds and listens a non-blocking TCP socket. Returns the fd, or -1 (logged). */
static int open_listener(const char *spec, const struct sockaddr_storage *ss, socklen_t len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_err("metrics: cannot create a socket for %s: %s", spec, strerror(errno));
        return -1;
    }
    int one = 1;
    /* A restart must not fail on the previous run's TIME_WAIT connections. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
        log_warn("metrics: SO_REUSEADDR on %s: %s", spec, strerror(errno));
    if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
        log_err("metrics: cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, ENPID_METRICS_BACKLOG) != 0) {
        log_err("metrics: cannot listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- life cycle ---- */

/*
 * Starts the endpoint when metrics.listen is set (else returns 0 and does nothing).
 * Returns 0, ENPI_EINVAL (address does not resolve), ENPI_EIO (cannot listen, or MHD
 * refused to start) or ENPI_ENOMEM; every failure is logged and leaves nothing running
 * (handles already initialised are closing; the loop's next run frees the state).
 * Loop thread, during start-up.
 */
int enpid_metrics_start(enpid_t *d)
{
    const char *spec = d->cfg != NULL ? d->cfg->metrics_listen : NULL;
    if (spec == NULL || d->metrics != NULL)
        return 0;
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int rc = resolve_listen(spec, &ss, &sslen);
    if (rc != 0)
        return rc;

    struct enpid_metrics *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ENPI_ENOMEM;
    m->d = d;
    snprintf(m->listen, sizeof m->listen, "%s", spec);
    m->start_ms = process_start_ms();
    m->seen_commits = d->n_commits;
    if (d->n_commits > 0)
        m->last_commit_ms = enpid_now_ms(); /* the start-up commit just happened */
    m->unknown_stale = true;                /* first count on the first loop iteration */

    int fd = open_listener(spec, &ss, sslen);
    if (fd < 0) {
        rc = ENPI_EIO;
        goto free_state;
    }
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Port 0 is ignored: MHD_OPTION_LISTEN_SOCKET hands over our socket, which
     * MHD_stop_daemon() closes. The logger goes first, or MHD prints what it says about
     * the other options to stderr. */
    m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, request_cb, m, MHD_OPTION_EXTERNAL_LOGGER,
                              mhd_log_cb, m, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                              MHD_OPTION_CONNECTION_LIMIT, ENPID_METRICS_MAX_CONN,
                              MHD_OPTION_CONNECTION_TIMEOUT, ENPID_METRICS_IDLE_S, MHD_OPTION_END);
    if (m->mhd == NULL) {
        log_err("metrics: cannot start the HTTP server on %s", spec);
        /* Whether a failed MHD_start_daemon() closed the socket it was given is not
         * documented: leave it (start-up fails, the process exits) rather than risk
         * closing a descriptor RocksDB's threads may have been handed meanwhile. */
        rc = ENPI_EIO;
        goto free_state;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL || info->epoll_fd < 0) {
        log_err("metrics: the HTTP server has no epoll descriptor");
        rc = ENPI_EIO;
        goto stop_mhd;
    }
    if (uv_poll_init(&d->loop, &m->poll, info->epoll_fd) != 0) {
        log_err("metrics: cannot watch the HTTP server's descriptor");
        rc = ENPI_EIO;
        goto stop_mhd;
    }
    m->poll.data = m;
    m->open_handles++;
    uv_timer_init(&d->loop, &m->timer); /* never fails on Linux */
    m->timer.data = m;
    m->open_handles++;
    uv_check_init(&d->loop, &m->check);
    m->check.data = m;
    m->open_handles++;
    d->metrics = m;
    if (uv_poll_start(&m->poll, UV_READABLE, poll_cb) != 0) {
        log_err("metrics: cannot watch the HTTP server's descriptor");
        enpid_metrics_stop(d);
        return ENPI_EIO;
    }
    uv_check_start(&m->check, check_cb);
    run_mhd(m); /* arms the timer */
    log_info("metrics: serving http://%s/metrics", spec);
    return 0;

stop_mhd:
    MHD_stop_daemon(m->mhd);
free_state:
    free(m);
    return rc;
}

/*
 * Stops listening and closes every connection now; the handles close and the last close
 * callback frees the state. Idempotent; a no-op when metrics are off. Loop thread.
 */
void enpid_metrics_stop(enpid_t *d)
{
    struct enpid_metrics *m = d->metrics;
    if (m == NULL || m->stopped)
        return;
    m->stopped = true;
    d->metrics = NULL;
    /* Stop watching MHD's epoll descriptor before MHD closes it. */
    close_handle(m, (uv_handle_t *)&m->poll);
    close_handle(m, (uv_handle_t *)&m->timer);
    close_handle(m, (uv_handle_t *)&m->check);
    MHD_stop_daemon(m->mhd);
    m->mhd = NULL;
    log_info("metrics: stopped serving %s", m->listen);
}
