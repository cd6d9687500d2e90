/*
 * metrics_text.h - the Prometheus text exposition (format 0.0.4) of enpid's counters,
 * rendered from a plain snapshot into a heap buffer; and the commit-latency histogram.
 *
 * Pure code: no libuv, no HTTP, no enpid_t. metrics.c fills an enpid_metrics_snapshot_t
 * on the loop thread from the counters it owns and hands it here; the unit test fills one
 * by hand. Every metric family is always present (a counter that never moved reads 0),
 * so dashboards and alerts never see a series appear from nowhere.
 */
#ifndef ENPID_METRICS_TEXT_H
#define ENPID_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline.h"

/* Upper bounds (seconds) of the commit-latency buckets; +Inf comes on top. */
#define ENPID_COMMIT_BUCKETS 13

typedef struct {
    uint64_t buckets[ENPID_COMMIT_BUCKETS]; /* observations <= bound i (not cumulative) */
    uint64_t count;                         /* all observations, +Inf included */
    uint64_t sum_us;                        /* sum of the observations, microseconds */
} enpid_histogram_t;

/* Counts one observation of `us` microseconds. Never fails. */
void enpid_histogram_observe_us(enpid_histogram_t *h, uint64_t us);

/* One configured input's counters, for the per-input families. */
typedef struct {
    const char *topic; /* the input's topic template as configured (borrowed) */
    enpi_input_stats_t stats;
} enpid_metrics_input_t;

/* Everything one scrape shows, copied on the loop thread. Pointers are borrowed for the
 * duration of enpid_metrics_render(). */
typedef struct {
    const char *version; /* build version, label of enpid_build_info */
    int64_t start_time_ms;

    /* MQTT */
    bool mqtt_up;
    uint64_t mqtt_reconnects;       /* successful connects after the first */
    uint64_t mqtt_connect_failures; /* connect attempts that failed */

    /* ingest (ingest.c) */
    uint64_t received;      /* messages made durable in the inbox */
    uint64_t spilled;       /* of those, not passed through the ring */
    uint64_t read_back;     /* ingested from the inbox instead of the ring */
    uint64_t replayed;      /* inbox messages replayed at start-up */
    uint64_t inbox_failed;  /* inbox appends that failed (message left with the broker) */
    uint64_t inbox_backlog; /* appended but not yet ingested */
    size_t ring_size;
    size_t ring_capacity;

    /* pipeline */
    enpi_pipeline_stats_t pipe;
    const enpid_metrics_input_t *inputs;
    size_t n_inputs;
    size_t pending_rollups;     /* rollup deltas waiting for the next commit */
    uint64_t unknown_meter_ids; /* distinct unconfigured meter ids in the store */

    /* commits (commit.c) */
    uint64_t commits;
    uint64_t commit_failures;
    unsigned commit_failing;  /* consecutive failures of the batch awaiting retry */
    int64_t last_commit_ms;   /* wall clock of the last successful commit; 0 = none */
    enpid_histogram_t commit; /* commit latency, observed by metrics.c */

    /* Sparkplug host and outbox (zeros when no input has format sparkplug) */
    uint64_t rebirth_requests;
    uint64_t outbox_dropped;
    uint64_t outbound_published;
    uint64_t outbound_refused;
} enpid_metrics_snapshot_t;

/*
 * Renders the exposition text of `s`. On success returns 0 with *out a NUL-terminated
 * malloc'd buffer the caller frees (free()) and *out_len its length; ENPI_ENOMEM
 * otherwise (*out NULL). Any thread; touches nothing but its arguments.
 */
int enpid_metrics_render(const enpid_metrics_snapshot_t *s, char **out, size_t *out_len);

#endif
