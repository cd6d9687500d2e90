/*
 * notify.c - what enpid tells the outside about itself: systemd notifications (READY=1
 * once subscribed, STOPPING=1, WATCHDOG=1 when the unit asks for it, STATUS= with rates
 * every ENPID_STATUS_MS) and one info log line with the counters every ENPID_REPORT_MS.
 *
 * sd_notify() is a no-op outside systemd ($NOTIFY_SOCKET unset), so none of this needs a
 * special case for running by hand. Loop thread only; the counters the producer updates
 * are read with relaxed atomic loads (statistics, they order nothing).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "enpi_error.h"
#include "enpid.h"

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
    char text[256];
    snprintf(text, sizeof text,
             "%s; %.0f msg/s, %.0f readings/s; ring %zu/%zu; %" PRIu64 " spilled",
             atomic_load_explicit(&d->mqtt_up, memory_order_relaxed) ? "connected"
                                                                     : "broker unreachable",
             msg_rate, applied_rate, enpi_ring_size(&d->ring), enpi_ring_capacity(&d->ring),
             load_relaxed(&d->n_spilled));
    enpid_notify_status(d, text);
}

static void report_cb(uv_timer_t *t)
{
    enpid_notify_report(t->data);
}

static void watchdog_cb(uv_timer_t *t)
{
    sd_notify(0, "WATCHDOG=1");
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
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
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
