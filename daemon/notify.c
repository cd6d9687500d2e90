/*
 * notify.c - what enpid tells the outside about itself: systemd notifications and one
 * info log line with the counters every ENPID_REPORT_MS.
 *
 * The sd_notify protocol as enpid speaks it (Type=notify or notify-reload):
 *  - EXTEND_TIMEOUT_USEC= every second while the start-up inbox replay makes progress
 *    (a thread, because the replay runs before the loop), so that a long but moving
 *    replay is not killed by TimeoutStartSec=, while a stuck one still is.
 *  - READY=1 once the store is open, the inbox replayed and MQTT subscribed (daemon.c).
 *  - STATUS= every ENPID_STATUS_MS: connection, message and reading rates, backlog, ring,
 *    commits; and a line for every reload.
 *  - WATCHDOG=1 from a loop timer at half of WatchdogSec=, but ONLY while the pipeline is
 *    healthy: the loop turns (the timer fires at all), commits succeed (or none is due)
 *    and the ingest backlog drains. "Not healthy" means a condition failed for longer than
 *    a grace of 2 x WatchdogSec (commits: plus storage.commit_interval): then the pings
 *    stop, systemd's watchdog fires (WatchdogSec= later) and Restart=on-failure restarts
 *    enpid; the inbox and the broker keep what was not committed.
 *  - RELOADING=1 with MONOTONIC_USEC= when a SIGHUP reload begins, READY=1 with a STATUS=
 *    saying what happened when it was applied or refused (reload.c).
 *  - STOPPING=1 when the shutdown begins.
 * sd_notify() is a no-op outside systemd ($NOTIFY_SOCKET unset). Loop thread only, except
 * the replay thread; the counters the producer updates are read with relaxed atomic loads
 * (statistics, they order nothing).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "enpi_error.h"
#include "enpid.h"

#define EXTEND_USEC 10000000ull  /* each EXTEND_TIMEOUT_USEC= gives 10 s more */
#define EXTEND_FIRST_MS 100      /* first look at the replay's progress */
#define EXTEND_EVERY_MS 1000     /* then every second */
#define WATCHDOG_GRACE_PERIODS 2 /* unhealthy after this many WatchdogSec= */

static uint64_t load_relaxed(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static uint64_t sum_rejects(const enpi_pipeline_stats_t *s)
{
    uint64_t n = 0;
    for (int i = 0; i < ENPI_REJECT__COUNT; i++)
        n += s->rejects[i];
    return n;
}

/* One STATUS= line, e.g. "subscribed; 1830 msg/s, 5490 readings/s; backlog 0, ring
 * 0/65536, 0 spilled; 412 commits, last 3 ms". */
static void status_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    const enpi_pipeline_stats_t *s = enpi_pipeline_stats(d->pipe);
    uint64_t now = uv_hrtime();
    double secs = (double)(now - d->status_last_ns) / 1e9;
    if (secs <= 0)
        secs = 1;
    double msg_rate = (double)(s->messages - d->status_last_msgs) / secs;
    double applied_rate = (double)(s->applied - d->status_last_applied) / secs;
    d->status_last_msgs = s->messages;
    d->status_last_applied = s->applied;
    d->status_last_ns = now;
    uint64_t upto = atomic_load_explicit(&d->appended_upto, memory_order_relaxed);
    uint64_t backlog = upto > d->expected_seq ? upto - d->expected_seq : 0;
    const char *conn = !atomic_load_explicit(&d->mqtt_up, memory_order_relaxed)
                           ? "broker unreachable"
                       : d->phase == ENPID_RUNNING ? "subscribed"
                                                   : "connected, subscribing";
    char commits[96];
    if (d->commit_failing > 0)
        snprintf(commits, sizeof commits, "COMMITS FAILING (%u attempts)", d->commit_failing);
    else
        snprintf(commits, sizeof commits, "%" PRIu64 " commits, last %" PRIu64 " ms",
                 d->n_commits, d->last_commit_us / 1000);
    char text[320];
    snprintf(text, sizeof text,
             "%s; %.0f msg/s, %.0f readings/s; backlog %" PRIu64 ", ring %zu/%zu, %" PRIu64
             " spilled; %s%s",
             conn, msg_rate, applied_rate, backlog, enpi_ring_size(&d->ring),
             enpi_ring_capacity(&d->ring), load_relaxed(&d->n_spilled), commits,
             d->wd_withheld ? "; watchdog withheld" : "");
    enpid_notify_status(d, text);
}

static void report_cb(uv_timer_t *t)
{
    enpid_notify_report(t->data);
}

/*
 * Why the pipeline is not healthy (NULL when it is), from what the loop saw since the
 * previous tick; see the file comment. Loop thread.
 */
static const char *unhealthy_reason(enpid_t *d, uint64_t now_ms, char *buf, size_t len)
{
    uint64_t grace = WATCHDOG_GRACE_PERIODS * (d->watchdog_usec / 1000);
    uint64_t commit_grace = grace + (uint64_t)(d->cfg->storage.commit_interval_ms > 0
                                                   ? d->cfg->storage.commit_interval_ms
                                                   : 1000);
    bool due = d->commit_batch != NULL || enpi_pipeline_dirty(d->pipe);
    if (d->n_commits != d->wd_last_commits || !due)
        d->wd_commit_ok_ms = now_ms;
    d->wd_last_commits = d->n_commits;
    uint64_t upto = atomic_load_explicit(&d->appended_upto, memory_order_relaxed);
    if (upto <= d->expected_seq || d->expected_seq != d->wd_last_expected)
        d->wd_ingest_ok_ms = now_ms;
    d->wd_last_expected = d->expected_seq;
    if (d->phase >= ENPID_STOP_MQTT)
        return NULL; /* shutdown commits and exits on its own clock */
    if (now_ms - d->wd_commit_ok_ms > commit_grace) {
        snprintf(buf, len, "no successful commit for %.1f s (%u failed attempts in a row)",
                 (double)(now_ms - d->wd_commit_ok_ms) / 1000, d->commit_failing);
        return buf;
    }
    if (now_ms - d->wd_ingest_ok_ms > grace) {
        snprintf(buf, len, "ingest stuck for %.1f s with %" PRIu64 " message(s) waiting",
                 (double)(now_ms - d->wd_ingest_ok_ms) / 1000, upto - d->expected_seq);
        return buf;
    }
    return NULL;
}

static void watchdog_cb(uv_timer_t *t)
{
    enpid_t *d = t->data;
    char buf[160];
    const char *why = unhealthy_reason(d, uv_now(&d->loop), buf, sizeof buf);
    if (why == NULL) {
        if (d->wd_withheld) {
            d->wd_withheld = false;
            log_notice("watchdog: healthy again; WATCHDOG=1 resumed");
        }
        sd_notify(0, "WATCHDOG=1");
        return;
    }
    if (!d->wd_withheld) {
        d->wd_withheld = true;
        log_err("watchdog: %s; withholding WATCHDOG=1 (systemd will restart enpid if this "
                "lasts)",
                why);
        sd_notifyf(0, "STATUS=unhealthy: %s", why);
    }
}

int enpid_notify_init(enpid_t *d)
{
    if (uv_timer_init(&d->loop, &d->status_timer) != 0 ||
        uv_timer_init(&d->loop, &d->report_timer) != 0 ||
        uv_timer_init(&d->loop, &d->watchdog_timer) != 0)
        return ENPI_ENOMEM;
    d->status_timer.data = d;
    d->report_timer.data = d;
    d->watchdog_timer.data = d;
    d->status_last_ns = uv_hrtime();
    d->wd_commit_ok_ms = uv_now(&d->loop);
    d->wd_ingest_ok_ms = d->wd_commit_ok_ms;
    d->wd_last_commits = d->n_commits;
    d->wd_last_expected = d->expected_seq;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        d->watchdog_usec = usec;
        uint64_t every_ms = usec / 2000; /* twice per watchdog period */
        if (every_ms == 0)
            every_ms = 1;
        uv_timer_start(&d->watchdog_timer, watchdog_cb, every_ms, every_ms);
        log_info("notify: systemd watchdog every %" PRIu64 " ms", usec / 1000);
    }
    uv_timer_start(&d->status_timer, status_cb, ENPID_STATUS_MS, ENPID_STATUS_MS);
    uv_timer_start(&d->report_timer, report_cb, ENPID_REPORT_MS, ENPID_REPORT_MS);
    return 0;
}

void enpid_notify_ready(enpid_t *d)
{
    if (d->ready_sent)
        return;
    d->ready_sent = true;
    sd_notify(0, "READY=1\nSTATUS=subscribed, processing messages");
    log_notice("ready: store open, inbox replayed, subscribed");
}

void enpid_notify_stopping(enpid_t *d)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: draining and committing");
}

void enpid_notify_reloading(enpid_t *d)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading the configuration",
               usec);
}

void enpid_notify_reloaded(enpid_t *d, const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

/* ---- EXTEND_TIMEOUT_USEC during the start-up replay ---- */

struct enpid_extend {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool stop;         /* under mu */
    const enpi_pipeline_t *pipe;
};

static void add_ms(struct timespec *ts, long ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The replay thread: extends the start timeout whenever the replay moved since the
 * last look. Touches nothing of enpid_t; reads the pipeline's progress atomic only. */
static void *extend_main(void *arg)
{
    struct enpid_extend *x = arg;
    uint64_t last = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    add_ms(&next, EXTEND_FIRST_MS);
    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        if (pthread_cond_timedwait(&x->cv, &x->mu, &next) == 0 || x->stop)
            continue; /* woken: re-check stop (spurious wake-ups wait again) */
        uint64_t now = enpi_pipeline_progress(x->pipe);
        if (now != last)
            sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=replaying the inbox: %" PRIu64
                          " message(s) so far",
                       EXTEND_USEC, now);
        last = now;
        add_ms(&next, EXTEND_EVERY_MS);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

void enpid_notify_replay_begin(enpid_t *d)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (sock == NULL || *sock == '\0' || d->pipe == NULL || d->extend != NULL)
        return;
    struct enpid_extend *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return; /* only a courtesy to systemd */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    x->pipe = d->pipe;
    if (pthread_create(&x->thread, NULL, extend_main, x) != 0) {
        log_warn("notify: cannot start the replay watcher; no EXTEND_TIMEOUT_USEC");
        pthread_cond_destroy(&x->cv);
        pthread_mutex_destroy(&x->mu);
        free(x);
        return;
    }
    d->extend = x;
}

void enpid_notify_replay_end(enpid_t *d)
{
    struct enpid_extend *x = d->extend;
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x);
    d->extend = NULL;
}

void enpid_notify_status(enpid_t *d, const char *text)
{
    sd_notifyf(0, "STATUS=%s", text);
}

/* One line with every reject reason's count ("rejects parse_error=0 missing_value=2 ..."),
 * in enpi_reject_t order, and the re-based readings, so an operator (and the storm test)
 * can see what was refused and why. */
static void log_rejects_by_reason(const enpi_pipeline_stats_t *s)
{
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof line, "stats: rejects");
    for (int r = 0; r < ENPI_REJECT__COUNT && n < sizeof line; r++)
        n += (size_t)snprintf(line + n, sizeof line - n, " %s=%" PRIu64,
                              enpi_reject_name((enpi_reject_t)r), s->rejects[r]);
    if (n < sizeof line)
        snprintf(line + n, sizeof line - n, "; rebased %" PRIu64, s->rebased);
    log_info("%s", line);
}

/* One line per configured input with anything counted: `stats: input N "<topic>" messages M
 * rejects reason=n ...` (nonzero reasons only), N its position in the config's inputs. */
static void log_inputs(const enpid_t *d)
{
    size_t n_in = enpi_pipeline_n_inputs(d->pipe);

    if (d->cfg == NULL)
        return;
    if (n_in > d->cfg->n_inputs) /* the pipeline is built from d->cfg: never, but be safe */
        n_in = d->cfg->n_inputs;
    for (size_t i = 0; i < n_in; i++) {
        enpi_input_stats_t is;
        if (enpi_pipeline_input_stats(d->pipe, i, &is) != 0)
            continue;
        bool any = is.messages > 0;
        for (int r = 0; r < ENPI_REJECT__COUNT && !any; r++)
            any = is.rejects[r] > 0;
        if (!any)
            continue;
        char line[1024];
        const char *topic = d->cfg->inputs[i].topic != NULL ? d->cfg->inputs[i].topic : "";
        size_t n = (size_t)snprintf(line, sizeof line, "stats: input %zu \"%s\" messages %" PRIu64
                                    " rejects", i, topic, is.messages);
        for (int r = 0; r < ENPI_REJECT__COUNT && n < sizeof line; r++)
            if (is.rejects[r] > 0)
                n += (size_t)snprintf(line + n, sizeof line - n, " %s=%" PRIu64,
                                      enpi_reject_name((enpi_reject_t)r), is.rejects[r]);
        log_info("%s", line);
    }
}

/*
 * The periodic info line: message flow, arithmetic, rejects, commits, ring; then, when an
 * input has format sparkplug, the Sparkplug host's counters and the outbox of rebirth
 * requests (queued by the pipeline, dropped when full, published or refused by MQTT).
 */
void enpid_notify_report(enpid_t *d)
{
    const enpi_pipeline_stats_t *s = enpi_pipeline_stats(d->pipe);
    log_info("stats: messages %" PRIu64 " (received %" PRIu64 ", spilled %" PRIu64
             ", read back %" PRIu64 ", replayed %" PRIu64 "), readings %" PRIu64
             ", applied %" PRIu64 ", duplicates %" PRIu64 ", late %" PRIu64 ", redelivered %" PRIu64
             ", resets %" PRIu64 ", rejects %" PRIu64 " (unknown meter %" PRIu64 ", parse %" PRIu64
             "), commits %" PRIu64 " (failed %" PRIu64 ", last %" PRIu64 " us), ring %zu/%zu",
             s->messages, load_relaxed(&d->n_received), load_relaxed(&d->n_spilled), d->n_readback,
             d->n_replayed, s->readings, s->applied, s->duplicates, s->late, s->redelivered,
             s->resets, sum_rejects(s), s->rejects[ENPI_REJECT_UNKNOWN_METER],
             s->rejects[ENPI_REJECT_PARSE], d->n_commits, d->n_commit_failures, d->last_commit_us,
             enpi_ring_size(&d->ring), enpi_ring_capacity(&d->ring));
    log_rejects_by_reason(s);
    log_inputs(d);
    enpi_sparkplug_stats_t sp;
    if (!enpi_pipeline_sparkplug_stats(d->pipe, &sp))
        return;
    enpi_outbox_stats_t ob;
    enpi_pipeline_outbox_stats(d->pipe, &ob);
    log_info("stats: sparkplug messages %" PRIu64 ", births %" PRIu64 ", deaths %" PRIu64
             " (stale %" PRIu64 "), seq gaps %" PRIu64 ", data before birth %" PRIu64
             ", unresolved metrics %" PRIu64 ", rebirth requests %" PRIu64 ", readings %" PRIu64
             ", skipped non-numeric %" PRIu64 " null %" PRIu64 ", ignored %" PRIu64
             ", nodes imported %" PRIu64 ", node table full %" PRIu64 ", metrics full %" PRIu64
             "; outbox queued %" PRIu64 ", dropped %" PRIu64 ", pending %zu, published %" PRIu64
             ", refused %" PRIu64 ", send failures %" PRIu64,
             sp.messages, sp.births, sp.deaths, sp.stale_deaths, sp.seq_gaps, sp.data_before_birth,
             sp.unresolved_metrics, sp.rebirth_requests, sp.readings, sp.non_numeric_skipped,
             sp.null_skipped, sp.ignored, sp.nodes_imported, sp.nodes_full, sp.metrics_full,
             ob.queued, ob.dropped, ob.pending, d->n_outbound_published, d->n_outbound_dropped,
             d->mqtt ? enpid_mqtt_publish_failures(d->mqtt) : d->n_outbound_send_failures);
}

/* Stops the periodic timers (the handles are closed with the others at exit). */
void enpid_notify_stop_timers(enpid_t *d)
{
    uv_timer_stop(&d->status_timer);
    uv_timer_stop(&d->report_timer);
    /* The watchdog keeps ticking until the loop ends: shutdown may take a few seconds. */
}
