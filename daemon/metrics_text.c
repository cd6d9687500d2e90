/*
 * metrics_text.c - renders enpid's counters in the Prometheus text exposition format
 * (version 0.0.4): one "# HELP" and one "# TYPE" line per family, then its samples.
 *
 * Counter names end in _total; gauges do not. Label values are escaped as the format
 * requires (backslash, double quote and line feed), HELP texts likewise (backslash and
 * line feed). Integers print exactly; durations and times print as decimal seconds built
 * from integer microseconds or milliseconds, so nothing depends on float formatting.
 * Pure code, any thread (see metrics_text.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "metrics_text.h"

/* Bucket bounds in microseconds and as the le label prints them: 1 ms .. 10 s. A commit
 * is normally a few milliseconds; seconds mean a struggling disk. */
static const uint64_t bucket_us[ENPID_COMMIT_BUCKETS] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000,
};
static const char *const bucket_le[ENPID_COMMIT_BUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};

void enpid_histogram_observe_us(enpid_histogram_t *h, uint64_t us)
{
    for (int i = 0; i < ENPID_COMMIT_BUCKETS; i++) {
        if (us <= bucket_us[i]) {
            h->buckets[i]++;
            break;
        }
    }
    h->count++;
    h->sum_us += us;
}

/* A growing output buffer. Once an allocation failed, `failed` sticks and every append is
 * a no-op, so the renderer checks once at the end. */
typedef struct {
    char *buf;
    size_t len;
    size_t cap;
    bool failed;
} out_t;

static bool out_reserve(out_t *o, size_t more)
{
    if (o->failed)
        return false;
    if (o->len + more + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < o->len + more + 1)
        cap *= 2;
    char *nb = realloc(o->buf, cap);
    if (nb == NULL) {
        o->failed = true;
        return false;
    }
    o->buf = nb;
    o->cap = cap;
    return true;
}

static void out_bytes(out_t *o, const char *s, size_t n)
{
    if (!out_reserve(o, n))
        return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_str(out_t *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void out_fmt(out_t *o, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        out_bytes(o, small, (size_t)n);
        return;
    }
    if (!out_reserve(o, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    o->len += (size_t)n;
}

/* Appends `s` escaped for a label value ("\\", "\"", "\n") or, with in_help, for a HELP
 * text ("\\", "\n"). */
static void out_escaped(out_t *o, const char *s, bool in_help)
{
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '"' && !in_help)
            esc = "\\\"";
        if (esc == NULL)
            continue;
        out_bytes(o, run, (size_t)(p - run));
        out_str(o, esc);
        run = p + 1;
    }
    out_str(o, run);
}

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    out_fmt(o, "# HELP %s ", name);
    out_escaped(o, help, true);
    out_fmt(o, "\n# TYPE %s %s\n", name, type);
}

static void sample_u64(out_t *o, const char *name, uint64_t v)
{
    out_fmt(o, "%s %" PRIu64 "\n", name, v);
}

static void counter(out_t *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "counter", help);
    sample_u64(o, name, v);
}

static void gauge(out_t *o, const char *name, const char *help, uint64_t v)
{
    family(o, name, "gauge", help);
    sample_u64(o, name, v);
}

/* "S.mmm" seconds from milliseconds (non-negative). */
static void out_ms_as_seconds(out_t *o, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    out_fmt(o, "%" PRId64 ".%03d", ms / 1000, (int)(ms % 1000));
}

static void gauge_time_ms(out_t *o, const char *name, const char *help, int64_t ms)
{
    family(o, name, "gauge", help);
    out_fmt(o, "%s ", name);
    out_ms_as_seconds(o, ms);
    out_str(o, "\n");
}

static void render_build(out_t *o, const enpid_metrics_snapshot_t *s)
{
    family(o, "enpid_build_info", "gauge", "Always 1; the version label names the build.");
    out_str(o, "enpid_build_info{version=\"");
    out_escaped(o, s->version ? s->version : "", false);
    out_str(o, "\"} 1\n");
    gauge_time_ms(o, "enpid_start_time_seconds", "When this enpid process started (unix seconds).",
                  s->start_time_ms);
}

static void render_mqtt(out_t *o, const enpid_metrics_snapshot_t *s)
{
    gauge(o, "enpid_mqtt_connected", "1 while connected to the MQTT broker, else 0.",
          s->mqtt_up ? 1 : 0);
    counter(o, "enpid_mqtt_reconnects_total",
            "Successful connects to the broker after the first one.", s->mqtt_reconnects);
    counter(o, "enpid_mqtt_connect_failures_total",
            "Connect attempts that failed (refused, timed out, TLS errors).",
            s->mqtt_connect_failures);
}

static void render_ingest(out_t *o, const enpid_metrics_snapshot_t *s)
{
    counter(o, "enpid_messages_received_total",
            "MQTT messages made durable in the inbox (acknowledged to the broker).", s->received);
    counter(o, "enpid_messages_ingested_total",
            "Messages ingested by the pipeline (including the start-up replay).", s->pipe.messages);
    counter(o, "enpid_messages_spilled_total",
            "Received messages dropped from memory because the ring was full (kept in the "
            "inbox).",
            s->spilled);
    counter(o, "enpid_messages_read_back_total",
            "Messages ingested from the inbox instead of the ring (spilled ones).", s->read_back);
    counter(o, "enpid_messages_replayed_total",
            "Inbox messages replayed at start-up (not yet committed at the previous stop).",
            s->replayed);
    counter(o, "enpid_inbox_append_failures_total",
            "Inbox appends that failed; those messages are kept in memory until the next "
            "commit.",
            s->inbox_failed);
    gauge(o, "enpid_inbox_backlog_messages", "Messages appended to the inbox but not yet ingested.",
          s->inbox_backlog);
    gauge(o, "enpid_ring_occupancy_messages",
          "Messages waiting in the ring between the MQTT thread and the loop.", s->ring_size);
    gauge(o, "enpid_ring_capacity_messages", "Capacity of that ring.", s->ring_capacity);
}

/* The per-input families: messages, and rejects by every reason but no_input. */
static void render_inputs(out_t *o, const enpid_metrics_snapshot_t *s)
{
    family(o, "enpid_input_messages_total", "counter",
           "Messages matched by each configured input (input = its position in the "
           "configuration).");
    for (size_t i = 0; i < s->n_inputs; i++) {
        out_fmt(o, "enpid_input_messages_total{input=\"%zu\",topic=\"", i);
        out_escaped(o, s->inputs[i].topic ? s->inputs[i].topic : "", false);
        out_fmt(o, "\"} %" PRIu64 "\n", s->inputs[i].stats.messages);
    }
    family(o, "enpid_input_rejects_total", "counter",
           "Rejects of each configured input's messages, by reason (no_input belongs to no "
           "input).");
    for (size_t i = 0; i < s->n_inputs; i++) {
        for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
            if (r == ENPI_REJECT_NO_INPUT)
                continue;
            out_fmt(o, "enpid_input_rejects_total{input=\"%zu\",topic=\"", i);
            out_escaped(o, s->inputs[i].topic ? s->inputs[i].topic : "", false);
            out_fmt(o, "\",reason=\"%s\"} %" PRIu64 "\n", enpi_reject_name((enpi_reject_t)r),
                    s->inputs[i].stats.rejects[r]);
        }
    }
}

static void render_pipeline(out_t *o, const enpid_metrics_snapshot_t *s)
{
    const enpi_pipeline_stats_t *p = &s->pipe;
    counter(o, "enpid_readings_decoded_total", "Readings decoded from messages.", p->readings);
    counter(o, "enpid_readings_applied_total",
            "Readings accepted (including a meter's state-only first reading).", p->applied);
    counter(o, "enpid_readings_duplicate_total",
            "Readings ignored as duplicates (same meter, same timestamp).", p->duplicates);
    counter(o, "enpid_readings_late_total",
            "Late readings (cumulative: ignored; delta: applied to their window).", p->late);
    counter(o, "enpid_readings_redelivered_total",
            "Readings of broker redeliveries found already applied (ignored).", p->redelivered);
    counter(o, "enpid_readings_rebased_total",
            "Readings too far after the meter's previous one: they re-base the meter.", p->rebased);
    counter(o, "enpid_meter_resets_total", "Cumulative registers seen going backwards (resets).",
            p->resets);
    counter(o, "enpid_readings_nomem_total", "Readings dropped because memory ran out.", p->nomem);

    family(o, "enpid_rejects_total", "counter",
           "Messages or readings rejected, by reason (unknown_meter counts unconfigured meter "
           "ids).");
    for (int r = 0; r < ENPI_REJECT__COUNT; r++)
        out_fmt(o, "enpid_rejects_total{reason=\"%s\"} %" PRIu64 "\n",
                enpi_reject_name((enpi_reject_t)r), p->rejects[r]);

    gauge(o, "enpid_unknown_meter_ids",
          "Distinct unconfigured meter ids in the store (enpi meters --unknown), recounted "
          "after commits at most every 10 s.",
          s->unknown_meter_ids);
    if (s->n_inputs > 0) /* a family needs samples; a configuration always has inputs */
        render_inputs(o, s);
    gauge(o, "enpid_pending_rollup_deltas", "Rollup increments waiting for the next commit.",
          s->pending_rollups);
}

static void render_commits(out_t *o, const enpid_metrics_snapshot_t *s)
{
    counter(o, "enpid_commits_total", "Successful commits to the store.", s->commits);
    counter(o, "enpid_commit_failures_total", "Failed commit attempts (each is retried).",
            s->commit_failures);
    gauge(o, "enpid_commit_failing", "Consecutive failed attempts of the batch awaiting retry.",
          s->commit_failing);
    gauge_time_ms(o, "enpid_last_commit_time_seconds",
                  "When the last successful commit finished (unix seconds; 0 = none yet).",
                  s->last_commit_ms);

    const char *h = "enpid_commit_duration_seconds";
    family(o, h, "histogram",
           "Time from taking a batch to its commit being durable, for commits made while "
           "serving.");
    uint64_t cum = 0;
    for (int i = 0; i < ENPID_COMMIT_BUCKETS; i++) {
        cum += s->commit.buckets[i];
        out_fmt(o, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", h, bucket_le[i], cum);
    }
    out_fmt(o, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", h, s->commit.count);
    out_fmt(o, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", h, s->commit.sum_us / 1000000,
            s->commit.sum_us % 1000000);
    out_fmt(o, "%s_count %" PRIu64 "\n", h, s->commit.count);
}

static void render_sparkplug(out_t *o, const enpid_metrics_snapshot_t *s)
{
    counter(o, "enpid_sparkplug_rebirth_requests_total",
            "Sparkplug rebirth requests queued for edge nodes.", s->rebirth_requests);
    counter(o, "enpid_outbox_dropped_total",
            "Outbound messages dropped because the outbox was full.", s->outbox_dropped);
    counter(o, "enpid_outbound_published_total", "Outbound messages handed to the MQTT client.",
            s->outbound_published);
    counter(o, "enpid_outbound_refused_total", "Outbound messages the MQTT client refused.",
            s->outbound_refused);
}

int enpid_metrics_render(const enpid_metrics_snapshot_t *s, char **out, size_t *out_len)
{
    out_t o = {0};
    render_build(&o, s);
    render_mqtt(&o, s);
    render_ingest(&o, s);
    render_pipeline(&o, s);
    render_commits(&o, s);
    render_sparkplug(&o, s);
    if (o.failed || o.buf == NULL) {
        free(o.buf);
        *out = NULL;
        *out_len = 0;
        return ENPI_ENOMEM;
    }
    *out = o.buf;
    *out_len = o.len;
    return 0;
}
