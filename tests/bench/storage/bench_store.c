/*
 * bench_store.c - micro benchmark of the store: inbox appends per second (what Paho's
 * receive thread pays per message) and the time of one commit shaped like a busy
 * second of a large site: METERS meters x 4 resolutions of rollup deltas plus every
 * meter's state.
 *
 * Usage: bench_store [DIR [METERS [APPENDS]]]   (default: a temp folder, 10000, 200000)
 * The store is created in DIR/bench-db (removed afterwards with the temp folder).
 * BENCH_STEADY=N bench_store "" [METERS]: only N commits shaped like the e2e benchmark's
 * (steady_commits), CPU per commit of the commit thread and of the whole process.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "log.h"
#include "storage.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int rm_cb(const char *p, const struct stat *sb, int type, struct FTW *f)
{
    remove(p);
    return 0;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, enpi_strerror(rc));
    exit(1);
}

typedef struct {
    enpi_batch_t b;
    char (*ids)[32];
} bench_batch_t;

/* METERS meters x {15m, 1h, 1d, 1mo}, all in the windows containing t. */
static void make_batch(bench_batch_t *bb, size_t meters, int64_t t, uint64_t inbox_upto)
{
    static const uint32_t res[4] = {15, 60, 1440, 0xFFFF0001u};
    static const int64_t len[4] = {900000, 3600000, 86400000, 2592000000LL};
    memset(bb, 0, sizeof *bb);
    bb->ids = calloc(meters, sizeof *bb->ids);
    bb->b.meters = calloc(meters, sizeof *bb->b.meters);
    bb->b.rollups = calloc(meters * 4, sizeof *bb->b.rollups);
    if (!bb->ids || !bb->b.meters || !bb->b.rollups)
        die("allocating the batch", ENPI_ENOMEM);
    for (size_t m = 0; m < meters; m++) {
        snprintf(bb->ids[m], sizeof bb->ids[m], "f%03zu/em%05zu", (m / 50) % 1000, m % 100000);
        bb->b.meters[m].meter_id = bb->ids[m];
        bb->b.meters[m].state = (enpi_meter_state_t){
            .has_state = true, .last_ts_ms = t, .last_raw = 1000.0 + (double)m, .readings = 1000};
        for (size_t k = 0; k < 4; k++) {
            enpi_rollup_delta_t *d = &bb->b.rollups[m * 4 + k];
            d->meter = (uint32_t)m;
            d->res_code = res[k];
            d->start = t - t % len[k];
            d->end = d->start + len[k];
            d->delta = (enpi_rollup_t){.value = 0.25, .readings = 1};
        }
    }
    bb->b.n_meters = meters;
    bb->b.n_rollups = meters * 4;
    bb->b.inbox_upto = inbox_upto;
}

static void free_batch(bench_batch_t *bb)
{
    free(bb->ids);
    free(bb->b.meters);
    free(bb->b.rollups);
}

static double timed_commit(enpi_store_t *st, const enpi_batch_t *b)
{
    double t0 = now_s();
    int rc = enpi_store_commit(st, b);
    if (rc)
        die("commit", rc);
    return now_s() - t0;
}

static uint64_t append_run(enpi_store_t *st, uint64_t seq, size_t n, double *secs)
{
    char payload[128];
    double t0 = now_s();
    for (size_t i = 0; i < n; i++, seq++) {
        int len = snprintf(payload, sizeof payload, "{\"ts\": %lld, \"value\": %zu.%03zu}",
                           1522206000000LL + (long long)seq * 1000, 100000 + i, i % 1000);
        enpi_inbox_msg_t m = {.seq = seq,
                              .topic = "enpi/f001/em00001",
                              .topic_len = 17,
                              .payload = payload,
                              .payload_len = (size_t)len,
                              .arrival_ms = 1522206000000LL + (int64_t)seq};
        int rc = enpi_store_inbox_append(st, &m);
        if (rc)
            die("inbox append", rc);
    }
    *secs = now_s() - t0;
    return seq;
}

/* A Paho-like producer appending as fast as it can while commits run, recording the
 * latency of every append: what the receive thread waits while a big batch is written. */
typedef struct {
    enpi_store_t *st;
    uint64_t seq;
    atomic_bool stop;
    double *lat;
    size_t n, cap;
} appender_t;

static void *appender_main(void *arg)
{
    appender_t *a = arg;
    while (!atomic_load(&a->stop) && a->n < a->cap) {
        enpi_inbox_msg_t m = {.seq = a->seq++,
                              .topic = "enpi/f001/em00001",
                              .topic_len = 17,
                              .payload = "{\"ts\": 1522206000000, \"value\": 123456.789}",
                              .payload_len = 42,
                              .arrival_ms = 1522206000000LL};
        double t0 = now_s();
        int rc = enpi_store_inbox_append(a->st, &m);
        if (rc)
            die("inbox append", rc);
        a->lat[a->n++] = now_s() - t0;
    }
    return NULL;
}

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* CPU seconds of CLOCK_THREAD_CPUTIME_ID or CLOCK_PROCESS_CPUTIME_ID. */
static double cpu_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * The e2e benchmark's commits: every meter reports every minute of its own time and a
 * second of wall time brings STEP_MIN minutes of readings per meter, so each commit holds
 * each meter's deltas for the 15m/1h/1d/1mo windows those minutes touch, and the 15m and
 * 1h windows move on. Returns the commit thread's CPU seconds per commit.
 */
#define STEP_MIN 6
static double steady_commits(enpi_store_t *st, size_t meters, int commits, uint64_t *seq)
{
    static const uint32_t res[4] = {15, 60, 1440, 0xFFFF0001u};
    static const int64_t len[4] = {900000, 3600000, 86400000, 2592000000LL};
    bench_batch_t bb;
    make_batch(&bb, meters, 1522206000000LL, *seq);
    for (size_t m = 0; m < meters; m++) /* e2e's ids: not in key order in the batch */
        snprintf(bb.ids[m], sizeof bb.ids[m], "f%zu/m%zu", m / 10, m % 10);
    free(bb.b.rollups);
    bb.b.rollups = calloc(meters * 4 * STEP_MIN, sizeof *bb.b.rollups);
    if (!bb.b.rollups)
        die("allocating the batch", ENPI_ENOMEM);
    double cpu = 0;
    int64_t t0 = 1522206000000LL;
    for (int c = 0; c < commits; c++) {
        size_t n = 0;
        for (size_t m = 0; m < meters; m++) {
            /* One delta per window, as the pipeline's accumulator hands them over. */
            for (size_t r = 0; r < 4; r++) {
                enpi_rollup_delta_t *d = NULL;
                for (int k = 0; k < STEP_MIN; k++) {
                    int64_t t = t0 + ((int64_t)c * STEP_MIN + k) * 60000;
                    if (d == NULL || d->start != t - t % len[r]) {
                        d = &bb.b.rollups[n++];
                        *d = (enpi_rollup_delta_t){.meter = (uint32_t)m,
                                                   .res_code = res[r],
                                                   .start = t - t % len[r]};
                    }
                    d->end = t + 60000;
                    d->delta.value += 0.25;
                    d->delta.readings++;
                }
            }
            bb.b.meters[m].state.last_ts_ms = t0 + ((int64_t)c * STEP_MIN + STEP_MIN) * 60000;
            bb.b.meters[m].state.readings += STEP_MIN;
        }
        bb.b.n_rollups = n;
        bb.b.inbox_upto = ++*seq;
        double c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
        int rc = enpi_store_commit(st, &bb.b);
        if (rc)
            die("commit", rc);
        cpu += cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    free_batch(&bb);
    return cpu / commits;
}

int main(int argc, char **argv)
{
    enpi_log_max_level = getenv("BENCH_DEBUG") ? ENPI_LOG_DEBUG : ENPI_LOG_WARNING;
    char tmpl[] = "/tmp/enpi-bench-XXXXXX";
    bool own_dir = argc <= 1 || argv[1][0] == '\0';
    const char *dir = own_dir ? mkdtemp(tmpl) : argv[1];
    size_t meters = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    size_t appends = argc > 3 ? strtoul(argv[3], NULL, 10) : 200000;
    if (!dir || meters == 0)
        die("usage: bench_store [DIR [METERS [APPENDS]]]", ENPI_EINVAL);
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-db", dir);

    enpi_store_t *st = NULL;
    char err[512];
    int rc = enpi_store_open(path, ENPI_STORE_PRIMARY, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bench_store: %s\n", err);
        return 1;
    }
    if (getenv("BENCH_STEADY") != NULL) {
        /* Only the e2e-shaped commits; the process figure includes RocksDB's flushes and
         * compactions, which the close waits for. */
        int commits = atoi(getenv("BENCH_STEADY"));
        if (commits <= 0)
            die("BENCH_STEADY wants a number of commits", ENPI_EINVAL);
        uint64_t seq = 1;
        double p0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
        double per = steady_commits(st, meters, commits, &seq);
        enpi_store_close(st);
        double proc = cpu_s(CLOCK_PROCESS_CPUTIME_ID) - p0;
        printf("steady commits: %.1f ms CPU each in the commit thread, %.1f ms in the process "
               "(%zu meters, %d minutes each)\n",
               per * 1e3, proc / commits * 1e3, meters, STEP_MIN);
        if (own_dir)
            nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
    }
    printf("store %s, %zu meters x 4 resolutions = %zu rollup deltas per commit\n", path, meters,
           meters * 4);

    double secs;
    uint64_t seq = append_run(st, 1, appends, &secs);
    printf("inbox append: %zu in %.3f s = %.0f /s, %.2f us each\n", appends, secs,
           (double)appends / secs, secs * 1e6 / (double)appends);

    const int64_t t = 1522206000000LL; /* 2018-03-28T03:00Z */
    bench_batch_t bb;
    make_batch(&bb, meters, t, seq);
    printf("commit, new windows (cache and store miss):      %7.1f ms\n",
           timed_commit(st, &bb.b) * 1e3);
    double sum = 0, max = 0;
    const int rounds = 10;
    for (int i = 0; i < rounds; i++) {
        double s = timed_commit(st, &bb.b);
        sum += s;
        if (s > max)
            max = s;
    }
    printf("commit, same windows (cache hits), %d rounds:    %7.1f ms mean, %.1f ms max\n", rounds,
           sum / rounds * 1e3, max * 1e3);

    /* A realistic second: a few thousand appends, then the commit that clears them. */
    sum = 0;
    max = 0;
    double app_total = 0;
    for (int i = 0; i < rounds; i++) {
        seq = append_run(st, seq, 2000, &secs);
        app_total += secs;
        bb.b.inbox_upto = seq;
        double s = timed_commit(st, &bb.b);
        sum += s;
        if (s > max)
            max = s;
    }
    printf("commit after 2000 appends each, %d rounds:       %7.1f ms mean, %.1f ms max"
           " (appends %.2f us each)\n",
           rounds, sum / rounds * 1e3, max * 1e3, app_total * 1e6 / (rounds * 2000.0));

    /* Many small commits leave many inbox range tombstones in the memtable. */
    free_batch(&bb);
    make_batch(&bb, 1, t, seq);
    double small = 0;
    const int small_commits = 2000;
    for (int i = 0; i < small_commits; i++) {
        seq = append_run(st, seq, 5, &secs);
        bb.b.inbox_upto = seq;
        small += timed_commit(st, &bb.b);
    }
    printf("small commits (1 meter, 5 appends), %d:       %7.2f ms mean\n", small_commits,
           small / small_commits * 1e3);
    free_batch(&bb);
    make_batch(&bb, meters, t, seq);
    printf("commit after them (cache hits):                  %7.1f ms\n",
           timed_commit(st, &bb.b) * 1e3);

    /* Appends from another thread while big commits run. */
    appender_t a = {.st = st, .seq = seq + 1000000, .cap = 4000000};
    a.lat = malloc(a.cap * sizeof *a.lat);
    if (!a.lat)
        die("allocating", ENPI_ENOMEM);
    pthread_t th;
    pthread_create(&th, NULL, appender_main, &a);
    sum = 0;
    for (int i = 0; i < 5; i++) {
        struct timespec pause = {0, 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
        sum += timed_commit(st, &bb.b);
    }
    atomic_store(&a.stop, true);
    pthread_join(th, NULL);
    qsort(a.lat, a.n, sizeof *a.lat, cmp_double);
    printf("appends from a thread during 5 commits (%.0f ms each): %zu, p50 %.1f us, "
           "p99 %.1f us, p99.9 %.1f us, max %.1f ms\n",
           sum / 5 * 1e3, a.n, a.lat[a.n / 2] * 1e6, a.lat[a.n * 99 / 100] * 1e6,
           a.lat[a.n * 999 / 1000] * 1e6, a.lat[a.n - 1] * 1e3);
    free(a.lat);
    seq = a.seq;
    enpi_store_close(st);

    rc = enpi_store_open(path, ENPI_STORE_PRIMARY, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "bench_store: reopen: %s\n", err);
        return 1;
    }
    printf("commit after reopen (cold cache, multi-get):     %7.1f ms\n",
           timed_commit(st, &bb.b) * 1e3);
    enpi_store_set_cache_limit(st, 0);
    printf("commit with the cache off (multi-get):           %7.1f ms\n",
           timed_commit(st, &bb.b) * 1e3);
    enpi_store_close(st);
    free_batch(&bb);

    if (own_dir)
        nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
