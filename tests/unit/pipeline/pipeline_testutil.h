/*
 * pipeline_testutil.h - helpers shared by the pipeline core's tests (header-only: each
 * test is one executable of one source file). Include after <cmocka.h>.
 */
#ifndef ENPI_PIPELINE_TESTUTIL_H
#define ENPI_PIPELINE_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "civil.h"
#include "config.h"
#include "pipeline.h"

#define RES_15M 15u
#define RES_1H 60u
#define RES_1D 1440u
#define RES_1MO 0xFFFF0001u

#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* An instant given as UTC fields. */
static inline int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    return enpi_days_from_civil(y, mo, d) * DAY_MS + h * HOUR_MS + mi * MIN_MS + s * 1000;
}

/* Parses inline YAML; the test fails with the config's message when it does not parse. */
static inline enpi_config_t *config_from_yaml(const char *yaml)
{
    enpi_config_t *cfg = NULL;
    char err[512] = "";
    int rc = enpi_config_parse("test.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err));

    if (rc != 0)
        fail_msg("config does not parse: %s", err);
    return cfg;
}

static inline enpi_pipeline_t *pipeline_from(const enpi_config_t *cfg)
{
    enpi_pipeline_t *p = NULL;
    char err[512] = "";

    if (enpi_pipeline_create(cfg, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    return p;
}

/* The rollup delta of (meter, resolution, window start) in a batch, or NULL. */
static inline const enpi_rollup_delta_t *batch_rollup(const enpi_batch_t *b, const char *meter,
                                                      uint32_t res, int64_t start)
{
    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *d = &b->rollups[i];
        if (d->res_code == res && d->start == start && d->meter < b->n_meters &&
            strcmp(b->meters[d->meter].meter_id, meter) == 0)
            return d;
    }
    return NULL;
}

/* Like batch_rollup, failing the test when absent. */
static inline const enpi_rollup_delta_t *must_rollup(const enpi_batch_t *b, const char *meter,
                                                     uint32_t res, int64_t start)
{
    const enpi_rollup_delta_t *d = batch_rollup(b, meter, res, start);
    if (d == NULL)
        fail_msg("no rollup for %s res %u start %lld", meter, res, (long long)start);
    return d;
}

static inline const enpi_meter_snapshot_t *batch_meter(const enpi_batch_t *b, const char *meter)
{
    for (size_t i = 0; i < b->n_meters; i++)
        if (strcmp(b->meters[i].meter_id, meter) == 0)
            return &b->meters[i];
    return NULL;
}

/* Sum of value (or estimated) over one meter's rollups of one resolution. */
static inline double batch_sum(const enpi_batch_t *b, const char *meter, uint32_t res,
                               bool estimated, size_t *count)
{
    double sum = 0;
    size_t n = 0;

    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *d = &b->rollups[i];
        if (d->res_code == res && strcmp(b->meters[d->meter].meter_id, meter) == 0) {
            sum += estimated ? d->delta.estimated : d->delta.value;
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return sum;
}

/* |a - b| within 1e-9 relative (or 1e-12 absolute near zero). */
#define assert_close(a, b)                                                                         \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        double tol_ = 1e-9 * fmax(fabs(a_), fabs(b_));                                             \
        if (!(fabs(a_ - b_) <= fmax(tol_, 1e-12)))                                                 \
            fail_msg("%s = %.17g, expected %s = %.17g", #a, a_, #b, b_);                           \
    } while (0)

/* Ingests a NUL-terminated payload. */
static inline void ingest_str(enpi_pipeline_t *p, uint64_t seq, const char *topic,
                              const char *payload, int64_t arrival_ms)
{
    enpi_pipeline_ingest(p, seq, topic, strlen(topic), payload, strlen(payload), arrival_ms, 0);
}

/* Ingests {"ts": ts, "value": v} on topic. */
static inline void ingest_reading(enpi_pipeline_t *p, uint64_t seq, const char *topic, int64_t ts,
                                  double v, int64_t arrival_ms)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": %.17g}", (long long)ts, v);
    ingest_str(p, seq, topic, buf, arrival_ms);
}

#endif
