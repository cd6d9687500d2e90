/*
 * backpressure.c - storage health: stops receiving MQTT while enpid cannot store what it
 * would acknowledge, and receives again once it can.
 *
 * Paho acknowledges a QoS 1 message before enpid has seen it, so "stop acknowledging"
 * means "stop receiving": enpid_mqtt_pause() closes the connection cleanly, and the
 * broker keeps queuing the readings for the persistent session (mosquitto's
 * max_queued_messages caps that queue; the README says how to size it). Every
 * ENPID_BACKPRESSURE_MS the loop evaluates:
 *   - the inbox's headroom (enpi_store_inbox_low_space: the next 64 MiB segment could
 *     not be allocated; the active segment still has room for what is in flight),
 *   - failing commits (commit_failing > 0: RocksDB cannot write; a full disk, mostly),
 *   - inbox appends that failed anyway (their messages are kept in memory until the next
 *     commit: ingest.c keep_in_memory).
 * Any of them pauses MQTT, logged once per episode at error level. The pause ends when
 * none holds any more and a commit has succeeded since the pause began (or since the
 * last failed append), or nothing waits to be committed; MQTT then connects again and
 * resubscribes, and the broker delivers the backlog.
 *
 * DESIGN: loop thread only (a uv timer), started by the daemon after the start-up
 * replay (right after enpid_commit_start()) and stopped by
 * its own callback once shutdown begins (the loop's final walk closes the handle). It
 * only reads commit.c's and ingest.c's counters; the pause and resume themselves are
 * the MQTT adapter's (mqtt.h), which never blocks the loop.
 */
#include <inttypes.h>
#include <stdio.h>

#include "enpid.h"
#include "retention.h" /* enpid_commit_store_usable */

/* Why storage cannot take more now, or NULL when it can. Loop thread. */
static const char *storage_problem(enpid_t *d, bool append_failed, char *buf, size_t len)
{
    if (append_failed)
        return "an inbox append failed; its messages are in memory until the next commit";
    if (d->commit_failing > 0) {
        snprintf(buf, len, "commits failing, %u attempt(s)", d->commit_failing);
        return buf;
    }
    if (!enpid_commit_store_usable(d))
        return "a write to the store failed; it is reopened before the next commit";
    if (enpi_store_inbox_low_space(d->store))
        return "no room for the next inbox segment";
    return NULL;
}

/* Nothing waits to be committed: no batch held or in flight, the pipeline clean. */
static bool nothing_to_commit(const enpid_t *d)
{
    return !d->commit_busy && d->commit_batch == NULL && !enpi_pipeline_dirty(d->pipe);
}

/* The commit count that must be passed before resuming: a commit in flight now took its
 * batch before this moment, so it cannot hold what arrived since; the next one does. */
static uint64_t commits_mark(const enpid_t *d)
{
    return d->n_commits + (d->commit_busy ? 1 : 0);
}

static void evaluate(enpid_t *d)
{
    /* Relaxed: a counter; a failed append also posts an event, and this runs again soon. */
    uint64_t failed = atomic_load_explicit(&d->n_inbox_failed, memory_order_relaxed);
    bool append_failed = failed != d->bp_inbox_failed_seen;
    d->bp_inbox_failed_seen = failed;
    char buf[64];
    const char *why = storage_problem(d, append_failed, buf, sizeof buf);
    if (!d->bp_paused) {
        if (why == NULL)
            return;
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->bp_rl, enpid_now_ms(), 6, &suppressed)) {
            log_err("storage: cannot store (%s): pausing MQTT; the broker keeps the readings", why);
            if (suppressed)
                log_err("storage: (%" PRIu64 " similar pauses not logged)", suppressed);
        }
        enpid_mqtt_pause(d->mqtt);
        d->bp_paused = true;
        d->bp_commits_mark = commits_mark(d);
        d->bp_since_ms = enpid_now_ms();
        d->n_bp_pauses++;
        return;
    }
    if (append_failed)
        d->bp_commits_mark = commits_mark(d); /* those in memory need a commit of their own */
    if (why != NULL || (d->n_commits <= d->bp_commits_mark && !nothing_to_commit(d)))
        return;
    if (d->bp_rl.suppressed == 0) /* the pause line was logged: so is the end of it */
        log_notice("storage: can store again after %.1f s: resuming MQTT",
                   (double)(enpid_now_ms() - d->bp_since_ms) / 1000.0);
    enpid_mqtt_resume(d->mqtt);
    d->bp_paused = false;
}

void enpid_backpressure_check(enpid_t *d)
{
    if (d->phase >= ENPID_STOP_MQTT || d->mqtt == NULL || d->store == NULL)
        return;
    evaluate(d);
}

static void bp_tick_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    if (d->phase >= ENPID_STOP_MQTT) {
        uv_timer_stop(t); /* shutdown: MQTT is being closed anyway */
        return;
    }
    enpid_backpressure_check(d);
}

/* Starts the periodic evaluation (daemon.c, after the start-up replay). Loop thread. A
 * timer that cannot be made is logged: enpid then runs without back-pressure. */
void enpid_backpressure_start(enpid_t *d)
{
    if (uv_timer_init(&d->loop, &d->bp_timer) != 0) {
        log_err("storage: cannot start the storage health timer; MQTT is not paused when "
                "the disk fills up");
        return;
    }
    d->bp_timer.data = d;
    /* The first look at once (the first loop turn, while MQTT connects): a start on a
     * nearly full disk pauses before the broker's backlog pours in. */
    uv_timer_start(&d->bp_timer, bp_tick_cb, 0, ENPID_BACKPRESSURE_MS);
}
