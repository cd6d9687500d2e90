/*
 * daemon.c - enpid's life cycle: the start-up sequence, the events the MQTT client posts
 * to the loop, and the shutdown sequence.
 *
 * Start-up (enpid_daemon_start, before the loop runs): open the store PRIMARY, store the
 * configuration text, build the pipeline, restore every stored meter state and the
 * learned state of every stored Sparkplug edge node, replay and commit the inbox, then
 * create the MQTT client and connect. READY=1 follows the first SUBACK (control_cb).
 * During the replay a thread of notify.c extends systemd's start timeout while the replay
 * makes progress. After every (re)connect the pipeline's outbox is published (outbox.c).
 * SIGHUP reloads the configuration on the loop (reload.c) at any time before the
 * shutdown begins.
 *
 * Shutdown (enpid_daemon_stop, from a signal or a fatal event) runs as a small state
 * machine on the loop: STOPPING=1; MQTT DISCONNECT (bounded by stop_timer); destroy the
 * client, after which no message can arrive; drain the ring and the inbox into the
 * pipeline; wait for an in-flight commit; commit the rest synchronously; close every
 * handle so that uv_run() returns and uv_loop_close() succeeds. A backlog too large to
 * ingest and commit within the 5 s budget is left in the inbox for the next start.
 *
 * DESIGN: Paho threads reach the loop only through post_event (atomic bits + uv_async)
 * and the ingest producer (ingest.c). Everything else here runs on the loop thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "enpid.h"

/* Shutdown ingests at most this many waiting messages (see drain_if_in_time): about 1 s
 * of ingest on a slow (sanitizer) build; the ring alone holds ENPID_RING_CAPACITY. */
#define ENPID_STOP_DRAIN_MAX 100000u

int64_t enpid_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Any thread. Sets event bits and wakes the loop; the loop takes all bits at once. */
void enpid_daemon_post_event(enpid_t *d, unsigned ev)
{
    /* Release: whatever the poster wrote before (e.g. mqtt_up) is visible to the loop's
     * acquire exchange in control_cb. */
    atomic_fetch_or_explicit(&d->events, ev, memory_order_release);
    uv_async_send(&d->control);
}

/* The MQTT client's events (Paho threads). */
static void mqtt_event_cb(void *ctx, enpid_mqtt_event_t ev)
{
    enpid_t *d = ctx;
    switch (ev) {
    case ENPID_MQTT_CONNECTED:
        atomic_store_explicit(&d->mqtt_up, 1, memory_order_relaxed); /* statistic */
        enpid_daemon_post_event(d, ENPID_EV_CONNECTED);
        break;
    case ENPID_MQTT_SUBSCRIBED:
        enpid_daemon_post_event(d, ENPID_EV_SUBSCRIBED);
        break;
    case ENPID_MQTT_SESSION_PRESENT:
        enpid_daemon_post_event(d, ENPID_EV_SESSION_PRESENT);
        break;
    case ENPID_MQTT_SUBSCRIBE_FAILED:
        enpid_daemon_post_event(d, ENPID_EV_SUBSCRIBE_FAILED);
        break;
    case ENPID_MQTT_CONNECTION_LOST:
        atomic_store_explicit(&d->mqtt_up, 0, memory_order_relaxed);
        enpid_daemon_post_event(d, ENPID_EV_CONNECTION_LOST);
        break;
    case ENPID_MQTT_DISCONNECTED:
        atomic_store_explicit(&d->mqtt_up, 0, memory_order_relaxed);
        enpid_daemon_post_event(d, ENPID_EV_DISCONNECTED);
        break;
    }
}

static void after_mqtt(enpid_t *d);

static void control_cb(uv_async_t *h)
{
    enpid_t *d = h->data;
    /* Acquire pairs with post_event's release. */
    unsigned ev = atomic_exchange_explicit(&d->events, 0, memory_order_acquire);
    /* Ready once subscribed: the SUBACK, or a resumed session, which already holds the
     * subscriptions (with a large backlog the broker may send the SUBACK only after it,
     * and systemd would time the start out meanwhile). */
    if ((ev & (ENPID_EV_SUBSCRIBED | ENPID_EV_SESSION_PRESENT)) && d->phase == ENPID_STARTING) {
        d->phase = ENPID_RUNNING;
        enpid_notify_ready(d);
    }
    if (ev & ENPID_EV_SUBSCRIBE_FAILED) {
        if (d->phase == ENPID_STARTING) {
            log_err("mqtt: the broker refused the subscription at start-up; stopping");
            d->exit_code = 1;
            enpid_daemon_stop(d);
        } else {
            log_err("mqtt: resubscribing failed; some inputs receive nothing until the next "
                    "reconnect");
        }
    }
    if ((ev & ENPID_EV_DISCONNECTED) && d->phase == ENPID_STOP_MQTT)
        after_mqtt(d);
    if (ev & ENPID_EV_CONNECTED)
        enpid_outbox_flush(d); /* what waited while the broker was unreachable */
    if (ev & ENPID_EV_INBOX_FAILED)
        enpid_backpressure_check(d); /* pause MQTT now, not at the next tick */
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Last step of a shutdown: final commit, then close every handle (the loop then ends). */
static void finish(enpid_t *d)
{
    int rc = enpid_commit_sync(d);
    if (rc != 0) {
        log_err("stop: final commit failed (%s); the inbox keeps the messages for the next "
                "start",
                enpi_strerror(rc));
        d->exit_code = 1;
    }
    d->phase = ENPID_CLOSING;
    enpid_notify_report(d);
    enpid_ingest_close(d);
    uv_walk(&d->loop, close_walk_cb, NULL);
    log_notice("stop: %s", d->exit_code == 0 ? "clean" : "with errors");
}

/*
 * Shutdown: ingests what was appended but not yet ingested, unless there is so much of it
 * that ingesting and committing it could exceed the 5 s a stop may take (SPEC §8). Then
 * none of it is ingested: the final commit records how far ingestion got (inbox_upto),
 * the inbox keeps the rest and the next start replays it. Correct either way; the bound
 * only keeps systemd from killing a stop that is merely busy. A run that had to keep
 * messages in memory (a failed inbox append) always drains everything.
 * ENPID_TEST_STOP_DRAIN_MAX overrides the bound (tests: 0 forces the hand-over).
 */
static void drain_if_in_time(enpid_t *d)
{
    uint64_t max = ENPID_STOP_DRAIN_MAX;
    const char *env = getenv("ENPID_TEST_STOP_DRAIN_MAX");
    if (env != NULL && *env != '\0')
        max = strtoull(env, NULL, 10);
    uint64_t upto = atomic_load_explicit(&d->appended_upto, memory_order_acquire);
    uint64_t backlog = upto > d->expected_seq ? upto - d->expected_seq : 0;
    /* Messages kept in memory after a failed inbox append (ingest.c) exist only in the
     * ring: they must be ingested and committed now, whatever the budget. */
    bool in_memory = atomic_load_explicit(&d->n_kept_in_memory, memory_order_relaxed) > 0;
    if (backlog <= max || in_memory) {
        enpid_ingest_drain_all(d);
        return;
    }
    log_notice("stop: %" PRIu64 " message(s) not yet ingested stay in the inbox for the next "
               "start (more than %" PRIu64 " could not be committed within the stop budget)",
               backlog, max);
}

/* MQTT is quiet (disconnected, or we stopped waiting): nothing more can arrive. */
static void after_mqtt(enpid_t *d)
{
    if (d->phase != ENPID_STOP_MQTT)
        return;
    d->phase = ENPID_STOP_COMMIT;
    uv_timer_stop(&d->stop_timer);
    if (d->mqtt) {
        d->n_outbound_send_failures = enpid_mqtt_publish_failures(d->mqtt);
        enpid_mqtt_destroy(d->mqtt); /* joins Paho's callbacks: none runs after this */
        d->mqtt = NULL;
    }
    atomic_store_explicit(&d->mqtt_up, 0, memory_order_relaxed);
    drain_if_in_time(d);
    if (enpid_commit_idle(d))
        finish(d);
    /* else after_commit_cb calls enpid_daemon_commit_idle() */
}

void enpid_daemon_commit_idle(enpid_t *d)
{
    if (d->phase == ENPID_STOP_COMMIT)
        finish(d);
}

static void stop_timeout_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    log_warn("mqtt: DISCONNECT did not complete in time; closing the connection");
    after_mqtt(d);
}

void enpid_daemon_stop(enpid_t *d)
{
    if (d->phase >= ENPID_STOP_MQTT)
        return;
    d->phase = ENPID_STOP_MQTT;
    enpid_notify_stopping(d);
    enpid_notify_stop_timers(d);
    enpid_metrics_stop(d);
    enpid_retention_stop(d);
    uv_timer_stop(&d->commit_timer);
    if (d->mqtt) {
        int rc = enpid_mqtt_disconnect(d->mqtt, ENPID_DISCONNECT_MS);
        if (rc == 0) {
            uv_timer_start(&d->stop_timer, stop_timeout_cb, ENPID_DISCONNECT_MS + 1000, 0);
            return; /* control_cb continues on ENPID_EV_DISCONNECTED */
        }
    }
    after_mqtt(d);
}

typedef struct {
    enpid_t *d;
    size_t restored;
    size_t unconfigured; /* stored meters no longer in the configuration */
} restore_t;

static int restore_cb(void *ctx, const char *meter_id, const enpi_meter_state_t *st)
{
    restore_t *r = ctx;
    int rc = enpi_pipeline_restore(r->d->pipe, meter_id, st);
    if (rc == 0) {
        r->restored++;
    } else if (rc == ENPI_ENOENT) {
        r->unconfigured++;
        log_debug("start: stored meter \"%s\" is no longer configured; state kept in the store",
                  meter_id);
    } else {
        log_err("start: cannot restore meter \"%s\": %s", meter_id, enpi_strerror(rc));
        return rc;
    }
    return 0;
}

typedef struct {
    enpid_t *d;
    size_t restored;
    size_t failed;     /* left unborn: the node will be asked to rebirth */
    bool no_sparkplug; /* no input has format sparkplug: records ignored */
} sp_restore_t;

/* One stored Sparkplug edge node. Only a failing read stops the start; a record the
 * pipeline cannot load leaves the node unborn (its next data asks it to rebirth). */
static int sparkplug_restore_cb(void *ctx, const char *key, const void *state, size_t state_len)
{
    sp_restore_t *r = ctx;
    int rc = enpi_pipeline_restore_sparkplug(r->d->pipe, key, state, state_len);
    if (rc == 0) {
        r->restored++;
    } else if (rc == ENPI_ENOENT) {
        r->no_sparkplug = true;
        return 1; /* every record would say the same: stop reading */
    } else {
        r->failed++;
        log_warn("start: cannot restore sparkplug edge node \"%s\": %s; it will be asked to "
                 "rebirth",
                 key, enpi_strerror(rc));
    }
    return 0;
}

/*
 * Loads the learned state of every stored Sparkplug edge node, so that aliases resolve in
 * the inbox replay and after it. Returns 0, or the storage error when the store cannot be
 * read (ENPI_EIO). A malformed record key (ENPI_EPARSE) ends the scan with a warning:
 * the nodes not restored will be asked to rebirth, which is no reason not to start.
 */
static int restore_sparkplug(enpid_t *d)
{
    sp_restore_t r = {.d = d};
    int rc = enpi_store_sparkplug_nodes(d->store, sparkplug_restore_cb, &r);
    if (rc == ENPI_EPARSE) {
        log_warn("start: a stored sparkplug edge node record is malformed; the nodes after it "
                 "will be asked to rebirth");
    } else if (rc < 0) {
        log_err("start: cannot read the stored sparkplug edge nodes: %s", enpi_strerror(rc));
        return rc;
    }
    if (r.no_sparkplug) {
        log_debug("start: stored sparkplug edge nodes ignored: no input has format sparkplug");
        return 0;
    }
    if (r.restored > 0 || r.failed > 0)
        log_info("start: restored %zu sparkplug edge node(s)%s", r.restored,
                 r.failed > 0 ? ", some could not be (see above)" : "");
    return 0;
}

/*
 * Sizes the commit-side rollup cache so that steady-state commits need no reads (every
 * meter's current window at every resolution, twice over). Start-up, before any commit.
 */
static void tune_store(enpid_t *d)
{
    size_t meters = 0;
    for (size_t i = 0; i < d->cfg->n_facilities; i++)
        meters += d->cfg->facilities[i].n_meters;
    size_t want =
        meters * (d->cfg->pipeline.n_resolutions ? d->cfg->pipeline.n_resolutions : 1) * 2;
    if (want > 131072)
        enpi_store_set_cache_limit(d->store, want);
}

/* Test hook: ENPID_TEST_COMMIT_FAILURES=n makes the first n commits after the start-up
 * replay fail, to exercise the retry path against a real store. */
static void arm_fault_injection(enpid_t *d)
{
    const char *inject = getenv("ENPID_TEST_COMMIT_FAILURES");
    if (inject != NULL && *inject != '\0') {
        unsigned n = (unsigned)strtoul(inject, NULL, 10);
        log_warn("start: ENPID_TEST_COMMIT_FAILURES: the next %u commit(s) will fail", n);
        enpi_store_inject_commit_failures(d->store, n);
    }
}

static int init_handles(enpid_t *d)
{
    int rc;
    if (uv_async_init(&d->loop, &d->control, control_cb) != 0 ||
        uv_timer_init(&d->loop, &d->stop_timer) != 0)
        return ENPI_ENOMEM;
    d->control.data = d;
    d->stop_timer.data = d;
    if ((rc = enpid_ingest_init(d)) != 0 || (rc = enpid_commit_init(d)) != 0 ||
        (rc = enpid_signals_init(d)) != 0)
        return rc;
    return 0;
}

/*
 * Everything before the loop runs. On failure returns the error (logged); the caller
 * still runs enpid_daemon_cleanup().
 */
int enpid_daemon_start(enpid_t *d)
{
    char errbuf[512] = "";
    int rc;
    d->phase = ENPID_STARTING;
    if ((rc = uv_loop_init(&d->loop)) != 0) {
        log_err("start: cannot create the event loop: %s", uv_strerror(rc));
        return ENPI_ENOMEM;
    }
    d->loop.data = d;
    if ((rc = init_handles(d)) != 0) {
        log_err("start: cannot set up the event loop: %s", enpi_strerror(rc));
        return rc;
    }

    const char *path = d->cfg->storage.path;
    rc = enpi_store_open(path, ENPI_STORE_PRIMARY, &d->store, errbuf, sizeof errbuf);
    if (rc != 0) {
        if (errbuf[0])
            log_err("start: %s", errbuf);
        else
            log_err("start: cannot open store %s: %s", path, enpi_strerror(rc));
        if (rc == ENPI_EBUSY)
            log_err("start: is another enpid running on %s?", path);
        return rc;
    }
    tune_store(d);
    if ((rc = enpi_store_put_config(d->store, d->config_text, d->config_len)) != 0) {
        log_err("start: cannot store the configuration: %s", enpi_strerror(rc));
        return rc;
    }
    errbuf[0] = '\0';
    if ((rc = enpi_pipeline_create(d->cfg, &d->pipe, errbuf, sizeof errbuf)) != 0) {
        log_err("start: %s: %s", d->config_path, errbuf[0] ? errbuf : enpi_strerror(rc));
        return rc;
    }
    restore_t r = {.d = d};
    if ((rc = enpi_store_meter_states(d->store, restore_cb, &r)) != 0) {
        log_err("start: cannot read the stored meter states: %s", enpi_strerror(rc));
        return rc < 0 ? rc : ENPI_EIO;
    }
    log_info("start: restored %zu meter state(s)", r.restored);
    if (r.unconfigured)
        log_notice("start: %zu stored meter(s) are no longer configured; their data stays",
                   r.unconfigured);
    if ((rc = restore_sparkplug(d)) != 0)
        return rc;
    enpid_notify_replay_begin(d); /* EXTEND_TIMEOUT_USEC while the replay moves */
    rc = enpid_ingest_replay(d);
    enpid_notify_replay_end(d);
    if (rc != 0)
        return rc;
    arm_fault_injection(d);
    if ((rc = enpid_notify_init(d)) != 0)
        return rc;
    enpid_commit_start(d);
    enpid_backpressure_start(d);
    if ((rc = enpid_metrics_start(d)) != 0)
        return rc;
    if ((rc = enpid_retention_start(d)) != 0)
        return rc;

    const char *const *filters = NULL;
    size_t n_filters = enpi_pipeline_filters(d->pipe, &filters);
    if (n_filters == 0) {
        log_err("start: no inputs configured: nothing to subscribe to");
        return ENPI_EINVAL;
    }
    for (size_t i = 0; i < n_filters; i++)
        log_debug("start: input filter \"%s\"", filters[i]);
    enpid_mqtt_handlers_t h = {
        .on_message = enpid_ingest_on_message,
        .on_event = mqtt_event_cb,
        .ctx = d,
    };
    if ((rc = enpid_mqtt_create(&d->cfg->mqtt, filters, n_filters, &h, &d->mqtt)) != 0)
        return rc;
    if ((rc = enpid_mqtt_connect(d->mqtt)) != 0)
        return rc;
    return 0;
}

/* After uv_run() returned (or start failed): releases everything in reverse order. */
void enpid_daemon_cleanup(enpid_t *d)
{
    enpid_notify_replay_end(d); /* a start that failed during the replay */
    if (d->mqtt) {
        enpid_mqtt_destroy(d->mqtt); /* first: Paho may still be appending to the store */
        d->mqtt = NULL;
    }
    if (d->loop.data == d) {
        if (d->phase != ENPID_CLOSING) {
            d->phase = ENPID_CLOSING;
            enpid_ingest_close(d);
        }
        enpid_metrics_stop(d); /* a start that failed after metrics began (no-op otherwise) */
        enpid_retention_stop(d);
        uv_walk(&d->loop, close_walk_cb, NULL);
        uv_run(&d->loop, UV_RUN_DEFAULT); /* runs the close callbacks, ends in-flight work */
        int rc = uv_loop_close(&d->loop);
        if (rc != 0) {
            log_err("stop: event loop still busy at exit: %s", uv_strerror(rc));
            d->exit_code = 1;
        }
        d->loop.data = NULL;
    }
    enpi_ring_destroy(&d->ring);
    if (d->commit_batch) {
        enpi_batch_free(d->commit_batch);
        d->commit_batch = NULL;
    }
    if (d->pipe) {
        enpi_pipeline_free(d->pipe);
        d->pipe = NULL;
    }
    if (d->store) {
        enpi_store_close(d->store);
        d->store = NULL;
    }
}
