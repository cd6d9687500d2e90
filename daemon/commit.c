/*
 * commit.c - moves the pipeline's accumulated work into RocksDB without blocking the loop.
 *
 * Every storage.commit_interval (and early, when the pipeline holds more than
 * ENPID_EARLY_COMMIT rollup deltas) the loop takes a batch from the pipeline and hands it
 * to one libuv threadpool worker, which runs enpi_store_commit(): one atomic WriteBatch of
 * rollups, meter states, unknown meters and the inbox cleared below the batch's inbox_upto.
 * One commit is in flight at a time. A failed batch is kept and retried after
 * ENPID_COMMIT_RETRY_MS; no new batch is taken until it succeeds, so commits land in order
 * and the inbox always holds exactly what the stored rollups do not reflect yet.
 *
 * Retention: every batch is filtered before it is committed (enpi_store_retention_filter
 * with cutoffs at the time the batch is taken), so a late reading into a window that
 * storage.retention has expired updates its meter but recreates no row (retention.c).
 *
 * Storage failures (a full disk, any RocksDB write error): the same batch is retried
 * with a backoff from ENPID_COMMIT_RETRY_MS doubling to ENPID_COMMIT_RETRY_MAX_MS, every
 * failure is logged by storage with RocksDB's message and here at a limited rate with
 * how long the store has been failing; nothing is dropped: the batch stays in memory,
 * its messages stay in the inbox, and the pipeline keeps accumulating. After an I/O
 * error the RocksDB instance is replaced (enpi_store_reopen) before the next attempt,
 * never written again: RocksDB 7.8 would resume it by itself once space returns and then
 * abort the process on the next write (storage.h). While the disk is still full the
 * reopen yields a read-only store and the retries go on; the first successful commit
 * logs the recovery. No retention sweep starts while a batch waits (retention.c).
 *
 * DESIGN: the loop thread owns everything here. While a batch is in flight the worker
 * reads it (and uses the store); the loop does not touch commit_batch until after_work_cb.
 * uv_queue_work's hand-over and completion give the ordering between the two.
 */
#include <inttypes.h>

#include "enpi_error.h"
#include "enpid.h"
#include "retention.h"

#define ENPID_COMMIT_RETRY_MAX_MS 8000 /* the longest wait between retries of a failed batch */

/* ms since the current batch first failed (commit_failing > 0); see failing_since_ms. */
static int64_t failing_since_ms;

/* The delay before the next retry: 1 s, 2 s, 4 s, then every ENPID_COMMIT_RETRY_MAX_MS. */
static uint64_t retry_delay_ms(const enpid_t *d)
{
    uint64_t ms = ENPID_COMMIT_RETRY_MS;
    for (unsigned i = 1; i < d->commit_failing && ms < ENPID_COMMIT_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < ENPID_COMMIT_RETRY_MAX_MS ? ms : ENPID_COMMIT_RETRY_MAX_MS;
}

/*
 * Takes a batch from the pipeline and drops its deltas of windows past
 * storage.retention. Loop thread. Returns what enpi_pipeline_take_batch returns.
 */
static int take_batch(enpid_t *d)
{
    int rc = enpi_pipeline_take_batch(d->pipe, &d->commit_batch);
    if (rc != 0) {
        d->commit_batch = NULL;
        return rc;
    }
    if (d->cfg->storage.n_retention == 0)
        return 0;
    enpi_retention_cutoff_t cut[ENPI_MAX_RESOLUTIONS];
    size_t n = enpid_retention_cutoffs(d, enpid_now_ms(), cut);
    size_t dropped = enpi_store_retention_filter(d->commit_batch, cut, n);
    if (dropped > 0)
        log_info("commit: %zu late rollup delta(s) fall in windows past storage.retention; not "
                 "stored",
                 dropped);
    return 0;
}

static void start_commit(enpid_t *d);
static void retry_cb(uv_timer_t *t);


/*
 * After a successful commit: stores the configuration text a reload could not store while
 * storage failed (reload.c). Loop thread, no commit in flight. A failure keeps it pending.
 */
static void store_pending_config(enpid_t *d)
{
    int rc = enpi_store_put_config(d->store, d->config_text, d->config_len);
    if (rc == 0) {
        d->config_store_pending = false;
        log_info("commit: the configuration of the last reload is stored now");
        return;
    }
    if (rc == ENPI_EIO)
        enpid_commit_store_write_failed(d);
    log_err("commit: cannot store the configuration of the last reload (%s); tried again "
            "after the next commit",
            enpi_strerror(rc));
}

/* A commit failed with an I/O error: the RocksDB instance must be replaced before the
 * next write (enpi_store_reopen says why). Loop thread. */
static bool reopen_needed;

/*
 * Replaces the store's RocksDB instance before a retry, when nothing else uses it: no
 * commit in flight (the retry path guarantees it) and no retention sweep (else looks
 * again in ENPID_COMMIT_RETRY_MS). Returns true when the store is writable again;
 * otherwise the retry timer is re-armed. Loop thread; blocks it for the open (tens of ms,
 * more with a large WAL to replay), which only happens while storage is failing.
 */
/* The reopen itself, shared by the retry path and the shutdown commit: REOPEN_BUSY while
 * a retention sweep or a /metrics count still uses the instance (the caller decides how
 * to wait), else enpi_store_reopen's result; success clears reopen_needed. Loop thread. */
#define REOPEN_BUSY 1
static int try_reopen(enpid_t *d, char *errbuf, size_t errlen)
{
    if (!enpid_retention_idle(d) || d->store_readers > 0)
        return REOPEN_BUSY;
    int rc = enpi_store_reopen(d->store, errbuf, errlen);
    if (rc == 0)
        reopen_needed = false;
    return rc;
}

static bool reopen_store(enpid_t *d)
{
    char errbuf[512] = "";
    int rc = try_reopen(d, errbuf, sizeof errbuf);
    if (rc == REOPEN_BUSY) {
        uv_timer_start(&d->retry_timer, retry_cb, ENPID_COMMIT_RETRY_MS, 0);
        return false;
    }
    if (rc == 0)
        return true;
    d->commit_failing++;
    uint64_t suppressed;
    if (enpi_ratelimit_allow(&d->commit_rl, enpid_now_ms(), 6, &suppressed)) {
        log_err("commit: STORAGE FAILING for %" PRId64 " s: the store cannot be written (%s); "
                "trying again in %" PRIu64 " ms",
                (enpid_now_ms() - failing_since_ms) / 1000, errbuf[0] ? errbuf : enpi_strerror(rc),
                retry_delay_ms(d));
        if (suppressed)
            log_err("commit: (%" PRIu64 " similar failures not logged)", suppressed);
    }
    uv_timer_start(&d->retry_timer, retry_cb, retry_delay_ms(d), 0);
    return false;
}

bool enpid_commit_store_usable(const enpid_t *d)
{
    return !reopen_needed && d->commit_failing == 0;
}

void enpid_commit_store_write_failed(enpid_t *d)
{
    if (!reopen_needed && d->commit_failing == 0)
        failing_since_ms = enpid_now_ms();
    reopen_needed = true;
}

static void retry_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    if (reopen_needed && !reopen_store(d))
        return;
    start_commit(d);
}

static void commit_work_cb(uv_work_t *req)
{
    enpid_t *d = req->data;
    uint64_t t0 = uv_hrtime();
    d->commit_rc = enpi_store_commit(d->store, d->commit_batch);
    d->commit_worker_ns = uv_hrtime() - t0;
}

static void after_commit_cb(uv_work_t *req, int status)
{
    enpid_t *d = req->data;
    d->commit_busy = false;
    int rc = status == 0 ? d->commit_rc : ENPI_ESTATE; /* status: UV_ECANCELED only */
    uint64_t total_us = (uv_hrtime() - d->commit_started_ns) / 1000;
    if (rc == 0) {
        const enpi_batch_t *b = d->commit_batch;
        log_debug("commit: %zu rollup deltas, %zu meters, %zu unknown, inbox < %" PRIu64
                  " in %" PRIu64 " us (%" PRIu64 " us in RocksDB)",
                  b->n_rollups, b->n_meters, b->n_unknown, b->inbox_upto, total_us,
                  d->commit_worker_ns / 1000);
        enpi_batch_free(d->commit_batch);
        d->commit_batch = NULL;
        d->n_commits++;
        d->last_commit_us = total_us;
        if (d->commit_failing > 0) {
            log_notice("commit: storage writable again: the held batch is stored after %u "
                       "failed attempt(s) over %" PRId64 " s; nothing was lost",
                       d->commit_failing, (enpid_now_ms() - failing_since_ms) / 1000);
            d->commit_failing = 0;
        }
        if (d->config_store_pending)
            store_pending_config(d);
    } else {
        d->n_commit_failures++;
        if (d->commit_failing++ == 0)
            failing_since_ms = enpid_now_ms();
        if (rc == ENPI_EIO)
            reopen_needed = true;
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->commit_rl, enpid_now_ms(), 6, &suppressed)) {
            log_err(
                "commit: STORAGE FAILING (%s, see the storage line above for RocksDB's "
                "message; a full disk?) for %" PRId64 " s, %u attempt(s); the batch "
                "(%zu rollup deltas, inbox < %" PRIu64 ") is kept and retried in %" PRIu64 " ms",
                enpi_strerror(rc), (enpid_now_ms() - failing_since_ms) / 1000, d->commit_failing,
                d->commit_batch->n_rollups, d->commit_batch->inbox_upto, retry_delay_ms(d));
            if (suppressed)
                log_err("commit: (%" PRIu64 " similar failures not logged)", suppressed);
        }
    }
    if (d->phase >= ENPID_STOP_MQTT) {
        /* Shutdown takes over: it commits what is left synchronously. */
        enpid_daemon_commit_idle(d);
        return;
    }
    if (d->commit_batch != NULL)
        uv_timer_start(&d->retry_timer, retry_cb, retry_delay_ms(d), 0);
    else if (enpi_pipeline_pending(d->pipe) > ENPID_EARLY_COMMIT)
        start_commit(d); /* a flood built up another large batch meanwhile */
}

/*
 * Takes a batch (unless a failed one waits for its retry) and queues it to a worker.
 * Loop thread; does nothing while a commit is in flight.
 */
static void start_commit(enpid_t *d)
{
    if (d->commit_busy)
        return;
    if (reopen_needed && !reopen_store(d))
        return; /* the retry timer takes over */
    if (d->commit_batch == NULL) {
        if (!enpi_pipeline_dirty(d->pipe))
            return;
        int rc = take_batch(d);
        if (rc != 0) {
            log_err("commit: cannot take a batch: %s", enpi_strerror(rc));
            return; /* the pipeline is unchanged; the next tick tries again */
        }
    }
    uv_timer_stop(&d->retry_timer);
    d->commit_work.data = d;
    d->commit_started_ns = uv_hrtime();
    int urc = uv_queue_work(&d->loop, &d->commit_work, commit_work_cb, after_commit_cb);
    if (urc != 0) {
        log_err("commit: cannot queue the commit: %s", uv_strerror(urc));
        uv_timer_start(&d->retry_timer, retry_cb, ENPID_COMMIT_RETRY_MS, 0);
        return;
    }
    d->commit_busy = true;
}

static void commit_tick_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    /* Safety net for the drain: after a failed inbox read-back it waits for the next
     * wake-up, which an idle producer would never send. Relaxed: only a hint; the drain
     * itself loads appended_upto with acquire. */
    if (atomic_load_explicit(&d->appended_upto, memory_order_relaxed) > d->expected_seq)
        uv_async_send(&d->wake);
    if (d->phase >= ENPID_STOP_MQTT || uv_is_active((uv_handle_t *)&d->retry_timer))
        return; /* shutdown commits by itself; a failed batch keeps its own schedule */
    start_commit(d);
}

int enpid_commit_init(enpid_t *d)
{
    if (uv_timer_init(&d->loop, &d->commit_timer) != 0 ||
        uv_timer_init(&d->loop, &d->retry_timer) != 0)
        return ENPI_ENOMEM;
    d->commit_timer.data = d;
    d->retry_timer.data = d;
    return 0;
}

/* Starts the periodic commit (after the start-up replay). */
void enpid_commit_start(enpid_t *d)
{
    uint64_t every = d->cfg->storage.commit_interval_ms > 0
                         ? (uint64_t)d->cfg->storage.commit_interval_ms
                         : 1000;
    uv_timer_start(&d->commit_timer, commit_tick_cb, every, every);
}

void enpid_commit_maybe(enpid_t *d)
{
    if (d->phase >= ENPID_STOP_MQTT || d->commit_busy || d->commit_batch != NULL)
        return;
    if (enpi_pipeline_pending(d->pipe) > ENPID_EARLY_COMMIT)
        start_commit(d);
}

bool enpid_commit_idle(const enpid_t *d)
{
    return !d->commit_busy;
}

/*
 * Commits on the calling (loop) thread, blocking: a batch left by a failed commit first,
 * then whatever the pipeline holds. Start-up and shutdown only, with no commit in flight.
 * Tries each batch up to three times. Returns 0 or the storage error (the batch is then
 * kept in commit_batch; the inbox still holds its messages).
 */
int enpid_commit_sync(enpid_t *d)
{
    if (d->commit_busy)
        return ENPI_ESTATE;
    if (uv_is_active((uv_handle_t *)&d->retry_timer))
        uv_timer_stop(&d->retry_timer);
    for (int round = 0; round < 2; round++) {
        if (d->commit_batch == NULL) {
            if (!enpi_pipeline_dirty(d->pipe))
                return 0;
            int rc = take_batch(d);
            if (rc != 0) {
                log_err("commit: cannot take a batch: %s", enpi_strerror(rc));
                return rc;
            }
        }
        int rc = ENPI_EIO;
        for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
            if (reopen_needed) {
                char errbuf[512] = "";
                int rrc = try_reopen(d, errbuf, sizeof errbuf);
                if (rrc == REOPEN_BUSY) {
                    /* A sweep (or a /metrics count) still uses the instance (it ends
                     * soon, but this is the loop thread: no waiting here). */
                    log_err("commit: the store needs a reopen while a retention sweep runs; "
                            "the inbox keeps the messages for the next start");
                    return ENPI_EIO;
                }
                if (rrc != 0) {
                    log_err("commit: the store cannot be written: %s", errbuf);
                    uv_sleep(100);
                    continue;
                }
            }
            uint64_t t0 = uv_hrtime();
            rc = enpi_store_commit(d->store, d->commit_batch);
            if (rc == ENPI_EIO)
                reopen_needed = true;
            if (rc == 0) {
                log_debug("commit: %zu rollup deltas, %zu meters, inbox < %" PRIu64 " in %" PRIu64
                          " us (synchronous)",
                          d->commit_batch->n_rollups, d->commit_batch->n_meters,
                          d->commit_batch->inbox_upto, (uv_hrtime() - t0) / 1000);
            } else {
                log_err("commit: synchronous commit failed: %s", enpi_strerror(rc));
                uv_sleep(100);
            }
        }
        if (rc != 0) {
            d->n_commit_failures++;
            return rc;
        }
        enpi_batch_free(d->commit_batch);
        d->commit_batch = NULL;
        d->n_commits++;
    }
    return 0;
}
