/*
 * retention.c - enforces storage.retention while enpid runs: a loop timer queues a sweep
 * (enpi_store_retention_sweep) to the libuv threadpool shortly after start-up and then
 * every ENPID_RETENTION_EVERY_MS, and logs what it removed.
 *
 * Retention durations are measured back from the wall clock: fixed ones exactly (400d =
 * 400 × 24 h), calendar ones ("1mo", "5y" = 60 months) on the UTC calendar
 * (enpi_store_retention_cutoff). A window goes once its END is at or before the cutoff,
 * compared as instants, so the facility's zone only shifts which windows exist, not
 * the comparison; UTC instead of the facility's zone moves a calendar cutoff by at
 * most the zone's offset, i.e. hours in years.
 *
 * A sweep never runs concurrently with itself, and starts only while no commit is in
 * flight or waiting for a retry: every batch taken after that point is filtered by
 * commit.c with cutoffs computed at least as late (enpid_retention_cutoffs), so no
 * commit writes into a window the sweep deletes, and the store's rollup cache can never
 * bring a deleted window back. Commits and inbox appends continue while a sweep runs;
 * the sweep writes small batches of deletions (storage.h).
 *
 * Test hook: ENPID_TEST_RETENTION_NOW=<ms> runs the first sweep right away and then
 * every <ms> milliseconds (at least 100).
 *
 * DESIGN: loop thread, except sweep_work_cb (one threadpool worker), which uses only the
 * store, the cutoff array and the result fields, handed over by uv_queue_work. The
 * state is static: one enpid per process, and the timers must outlive any failed
 * start-up, whose cleanup closes them without a callback of ours.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "enpid.h"
#include "retention.h"
#include "window.h"

#define ENPID_RETENTION_FIRST_MS 60000   /* first sweep: after the start-up has settled */
#define ENPID_RETENTION_EVERY_MS 3600000 /* then hourly */
#define ENPID_RETENTION_WAIT_MS 500      /* a commit was in flight: look again this soon */

struct enpid_retention {
    enpid_t *d;
    uv_timer_t timer; /* the schedule */
    uv_work_t work;
    bool started;      /* the timer was initialised */
    bool busy;         /* a worker runs the sweep */
    bool stopping;     /* shutdown: queue nothing more */
    _Atomic bool stop; /* read by the worker between batches */
    uint64_t every_ms;
    enpi_retention_cutoff_t cut[ENPI_MAX_RESOLUTIONS];
    char res_name[ENPI_MAX_RESOLUTIONS][16];
    size_t n_cut;
    int rc;                       /* worker's result */
    enpi_retention_stats_t stats; /* worker's figures */
    uint64_t started_ns;
    uint64_t n_sweeps;
    uint64_t n_deleted; /* windows deleted since start */
    enpi_ratelimit_t rl;
};

static struct enpid_retention g_retention;

size_t enpid_retention_cutoffs(const enpid_t *d, int64_t now_ms, enpi_retention_cutoff_t *out)
{
    const enpi_storage_cfg_t *s = &d->cfg->storage;
    size_t n = 0;
    for (size_t i = 0; i < s->n_retention && n < ENPI_MAX_RESOLUTIONS; i++) {
        uint32_t code = enpi_resolution_code(&s->retention[i].resolution);
        if (code == 0)
            continue; /* the configuration check refuses these; nothing to sweep */
        out[n].res_code = code;
        out[n].cutoff_ms = enpi_store_retention_cutoff(now_ms, &s->retention[i].keep);
        out[n].deleted = 0;
        n++;
    }
    return n;
}

bool enpid_retention_idle(const enpid_t *d)
{
    return !(d->retention && d->retention->busy);
}

static void format_utc(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)enpi_floor_div(ms, 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, n, "%" PRId64 " ms", ms);
}

static void sweep_work_cb(uv_work_t *req)
{
    struct enpid_retention *r = req->data;
    r->rc = enpi_store_retention_sweep(r->d->store, r->cut, r->n_cut, &r->stop, &r->stats);
}

static void after_sweep_cb(uv_work_t *req, int status)
{
    struct enpid_retention *r = req->data;
    r->busy = false;
    uint64_t ms = (uv_hrtime() - r->started_ns) / 1000000;
    int rc = status == 0 ? r->rc : ENPI_ESTATE;
    r->n_sweeps++;
    r->n_deleted += r->stats.deleted;
    if (rc == ENPI_EIO)
        enpid_commit_store_write_failed(r->d); /* never write through that instance again */
    if (rc != 0) {
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&r->rl, enpid_now_ms(), 3, &suppressed))
            log_err("retention: sweep failed after removing %" PRIu64 " window(s): %s; the next "
                    "sweep tries again",
                    r->stats.deleted, enpi_strerror(rc));
    } else if (r->stats.deleted > 0) {
        char line[512];
        size_t off = 0;
        for (size_t i = 0; i < r->n_cut && off < sizeof line; i++) {
            char when[40];
            format_utc(r->cut[i].cutoff_ms, when, sizeof when);
            int w = snprintf(line + off, sizeof line - off, "%s%s: %" PRIu64 " ending by %s",
                             i ? ", " : "", r->res_name[i], r->cut[i].deleted, when);
            if (w < 0)
                break;
            off += (size_t)w;
        }
        log_notice("retention: removed %" PRIu64 " expired window(s) in %" PRIu64 " ms (%s)%s%s",
                   r->stats.deleted, ms, line,
                   r->stats.compaction_suggested ? "; compaction requested" : "",
                   r->stats.stopped ? "; interrupted, the rest follows" : "");
    } else {
        log_debug("retention: nothing expired (%" PRIu64 " windows of %" PRIu64
                  " meter ranges looked at, %" PRIu64 " ms)",
                  r->stats.examined, r->stats.meters, ms);
    }
}

/* Queues a sweep unless one runs, a commit is in flight or waiting, or the store awaits a
 * reopen after a write error; then looks again
 * in ENPID_RETENTION_WAIT_MS. Loop thread. */
static void tick_cb(uv_timer_t *t)
{
    struct enpid_retention *r = t->data;
    enpid_t *d = r->d;
    if (r->stopping || d->phase >= ENPID_STOP_MQTT || r->busy)
        return;
    if (!enpid_commit_idle(d) || d->commit_batch != NULL || !enpid_commit_store_usable(d)) {
        uv_timer_start(&r->timer, tick_cb, ENPID_RETENTION_WAIT_MS, r->every_ms);
        return;
    }
    r->n_cut = enpid_retention_cutoffs(d, enpid_now_ms(), r->cut);
    if (r->n_cut == 0)
        return;
    size_t k = 0;
    for (size_t i = 0; i < d->cfg->storage.n_retention && k < r->n_cut; i++) {
        const enpi_duration_t *res = &d->cfg->storage.retention[i].resolution;
        if (enpi_resolution_code(res) == r->cut[k].res_code)
            enpi_duration_format(res, r->res_name[k++], sizeof r->res_name[0]);
    }
    memset(&r->stats, 0, sizeof r->stats);
    r->work.data = r;
    r->started_ns = uv_hrtime();
    int urc = uv_queue_work(&d->loop, &r->work, sweep_work_cb, after_sweep_cb);
    if (urc != 0) {
        log_err("retention: cannot queue a sweep: %s", uv_strerror(urc));
        return; /* the timer's next period tries again */
    }
    r->busy = true;
    /* Back to the regular period from now, whatever brought us here. */
    uv_timer_start(&r->timer, tick_cb, r->every_ms, r->every_ms);
}

int enpid_retention_start(enpid_t *d)
{
    struct enpid_retention *r = &g_retention;
    if (d->cfg->storage.n_retention == 0)
        return 0; /* everything is kept forever */
    memset(r, 0, sizeof *r);
    r->d = d;
    if (uv_timer_init(&d->loop, &r->timer) != 0)
        return ENPI_ENOMEM;
    r->timer.data = r;
    r->started = true;
    d->retention = r;
    uint64_t first = ENPID_RETENTION_FIRST_MS;
    r->every_ms = ENPID_RETENTION_EVERY_MS;
    const char *test = getenv("ENPID_TEST_RETENTION_NOW");
    if (test && *test) {
        uint64_t every = strtoull(test, NULL, 10);
        r->every_ms = every < 100 ? 100 : every;
        first = 0;
        log_warn("start: ENPID_TEST_RETENTION_NOW: retention sweeps now and every %" PRIu64 " ms",
                 r->every_ms);
    }
    uv_timer_start(&r->timer, tick_cb, first, r->every_ms);
    enpi_retention_cutoff_t cut[ENPI_MAX_RESOLUTIONS];
    size_t n = enpid_retention_cutoffs(d, enpid_now_ms(), cut);
    log_info("start: retention on for %zu resolution(s); first sweep in %" PRIu64 " s", n,
             first / 1000);
    return 0;
}

void enpid_retention_stop(enpid_t *d)
{
    struct enpid_retention *r = d->retention;
    if (!r || r->stopping)
        return;
    r->stopping = true;
    /* Relaxed: the worker only needs to see it eventually; it orders nothing. */
    atomic_store_explicit(&r->stop, true, memory_order_relaxed);
    if (r->started && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_timer_stop(&r->timer);
    /* An in-flight sweep ends after its current batch; its request keeps the loop running
     * until after_sweep_cb, and the shutdown's handle walk closes the timer. */
}
