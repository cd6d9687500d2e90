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
 * DESIGN: the loop thread owns everything here. While a batch is in flight the worker
 * reads it (and uses the store); the loop does not touch commit_batch until after_work_cb.
 * uv_queue_work's hand-over and completion give the ordering between the two.
 */
#include <inttypes.h>

#include "enpi_error.h"
#include "enpid.h"

static void start_commit(enpid_t *d);

static void retry_cb(uv_timer_t *t)
{
    start_commit(t->data);
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
            log_notice("commit: succeeded after %u failed attempt(s)", d->commit_failing);
            d->commit_failing = 0;
        }
    } else {
        d->n_commit_failures++;
        d->commit_failing++;
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->commit_rl, enpid_now_ms(), 6, &suppressed)) {
            log_err("commit: failed (%s); retrying the same batch in %d ms", enpi_strerror(rc),
                    ENPID_COMMIT_RETRY_MS);
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
        uv_timer_start(&d->retry_timer, retry_cb, ENPID_COMMIT_RETRY_MS, 0);
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
    if (d->commit_batch == NULL) {
        if (!enpi_pipeline_dirty(d->pipe))
            return;
        int rc = enpi_pipeline_take_batch(d->pipe, &d->commit_batch);
        if (rc != 0) {
            log_err("commit: cannot take a batch: %s", enpi_strerror(rc));
            d->commit_batch = NULL;
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
            int rc = enpi_pipeline_take_batch(d->pipe, &d->commit_batch);
            if (rc != 0) {
                d->commit_batch = NULL;
                log_err("commit: cannot take a batch: %s", enpi_strerror(rc));
                return rc;
            }
        }
        int rc = ENPI_EIO;
        for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
            uint64_t t0 = uv_hrtime();
            rc = enpi_store_commit(d->store, d->commit_batch);
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
