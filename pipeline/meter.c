/*
 * meter.c - SPEC §5's per-meter arithmetic: cumulative registers (differences, rollover,
 * resets), delta readings (fixed interval or since the previous reading), duplicates,
 * late readings, allowed_lateness, max_rate and the bounds on one reading (an interval
 * over ENPI_MAX_SPREAD_MS re-bases, an amount over ENPI_MAX_AMOUNT is implausible). Pure
 * functions of config + state.
 *
 * Delta meters remember which timestamps they applied (state.recent_ts, ascending) so a
 * redelivered reading is recognised as a duplicate. The list holds every applied
 * timestamp >= last_ts - allowed_lateness plus the newest one before that horizon (the
 * predecessor of a late reading without interval); it is pruned lazily, when it would
 * otherwise grow, and by enpi_meter_prune() before it is persisted. Readings older than
 * the horizon are rejected as too_late before the list is consulted, so how lazily it is
 * pruned never changes an outcome.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "meter.h"

/* First index i with a[i] >= t (n when none). */
static size_t lower_bound(const int64_t *a, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void step_reject(enpi_step_t *out, enpi_reject_t reason)
{
    memset(out, 0, sizeof(*out));
    out->kind = ENPI_STEP_REJECT;
    out->reason = reason;
}

/* Amount of a raw difference in rollup units: scale, then to_kwh for energy meters. */
static double meter_factor(const enpi_meter_cfg_t *m)
{
    return m->kind == ENPI_KIND_ENERGY ? m->scale * m->to_kwh : m->scale;
}

/*
 * Turns raw difference d over [from, to] into an APPLY step. An interval longer than
 * ENPI_MAX_SPREAD_MS re-bases instead (STATE_ONLY, rebased, no reset counted; the amount
 * is not looked at). An implausible reject when the rate (d x scale per hour) exceeds
 * max_rate, or the amount d x scale (x to_kwh) is not finite or exceeds ENPI_MAX_AMOUNT
 * in magnitude. Other counters set by the caller stay.
 */
static void step_apply(enpi_step_t *out, const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                       int64_t from, int64_t to, double d)
{
    double value = d * meter_factor(m);

    if (to - from > ENPI_MAX_SPREAD_MS) {
        out->kind = ENPI_STEP_STATE_ONLY;
        out->rebased = true;
        out->resets = 0;
        return;
    }
    if (m->max_rate > 0) {
        double hours = (double)(to - from) / 3600000.0;
        if (d * m->scale / hours > m->max_rate) {
            step_reject(out, ENPI_REJECT_IMPLAUSIBLE);
            return;
        }
    }
    if (!isfinite(value) || fabs(value) > ENPI_MAX_AMOUNT) {
        step_reject(out, ENPI_REJECT_IMPLAUSIBLE);
        return;
    }
    out->kind = ENPI_STEP_APPLY;
    out->from = from;
    out->to = to;
    out->value = value;
    out->estimated = pc->max_gap_ms > 0 && to - from > pc->max_gap_ms;
}

static void evaluate_cumulative(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                                const enpi_meter_state_t *st, int64_t ts, double raw,
                                enpi_step_t *out)
{
    double v1 = st->last_raw, d;

    if (!st->has_state) {
        out->kind = ENPI_STEP_STATE_ONLY;
        out->readings = 1;
        return;
    }
    if (ts == st->last_ts_ms) {
        out->kind = ENPI_STEP_IGNORED;
        out->duplicates = 1;
        return;
    }
    if (ts < st->last_ts_ms) {
        out->kind = ENPI_STEP_IGNORED;
        out->late = 1;
        return;
    }
    out->readings = 1;
    if (raw >= v1) {
        d = raw - v1;
    } else if (m->rollover > 0 && m->rollover > v1) {
        d = m->rollover - v1 + raw;
    } else {
        d = raw;
        out->resets = 1;
    }
    step_apply(out, m, pc, st->last_ts_ms, ts, d);
}

static void evaluate_delta(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                           const enpi_meter_state_t *st, int64_t ts, double raw, enpi_step_t *out)
{
    int64_t interval = m->interval_ms;
    const int64_t *recent = st->recent_ts;
    size_t n = st->n_recent, i;

    if (!st->has_state) {
        out->readings = 1;
        if (interval > 0)
            step_apply(out, m, pc, ts - interval, ts, raw);
        else
            out->kind = ENPI_STEP_STATE_ONLY;
        return;
    }
    if (ts > st->last_ts_ms) {
        out->readings = 1;
        step_apply(out, m, pc, interval > 0 ? ts - interval : st->last_ts_ms, ts, raw);
        return;
    }
    /* Not newer than the newest: too late, a duplicate, or a late reading to apply. A full
     * list has forgotten what came before its oldest entry, so that counts as too late. */
    if (ts < st->last_ts_ms - pc->allowed_lateness_ms ||
        (n >= ENPI_DELTA_RECENT_MAX && ts < recent[0])) {
        step_reject(out, ENPI_REJECT_TOO_LATE);
        out->late = 1;
        return;
    }
    i = lower_bound(recent, n, ts);
    if (ts == st->last_ts_ms || (i < n && recent[i] == ts)) {
        out->kind = ENPI_STEP_IGNORED;
        out->duplicates = 1;
        return;
    }
    out->readings = 1;
    out->late = 1;
    if (interval > 0)
        step_apply(out, m, pc, ts - interval, ts, raw);
    else if (i > 0)
        step_apply(out, m, pc, recent[i - 1], ts, raw);
    else
        out->kind = ENPI_STEP_STATE_ONLY; /* nothing applied before it: like a first reading */
}

void enpi_meter_evaluate(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                         const enpi_meter_state_t *st, int64_t ts_ms, double raw,
                         int64_t arrival_ms, enpi_step_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!isfinite(raw)) {
        step_reject(out, ENPI_REJECT_NOT_FINITE);
    } else if (m->reading == ENPI_READING_CUMULATIVE && raw < 0) {
        step_reject(out, ENPI_REJECT_NEGATIVE);
    } else if (ts_ms < ENPI_TS_MIN_MS) {
        step_reject(out, ENPI_REJECT_TOO_OLD);
    } else if (ts_ms > arrival_ms + pc->max_future_ms) {
        step_reject(out, ENPI_REJECT_FUTURE);
    } else if (m->reading == ENPI_READING_CUMULATIVE) {
        evaluate_cumulative(m, pc, st, ts_ms, raw, out);
    } else {
        evaluate_delta(m, pc, st, ts_ms, raw, out);
    }
}

/* Removes entries older than `horizon` except the newest of them. */
static void prune_before(enpi_meter_state_t *st, int64_t horizon)
{
    size_t i = lower_bound(st->recent_ts, st->n_recent, horizon);
    size_t drop = i > 0 ? i - 1 : 0;

    if (drop == 0)
        return;
    memmove(st->recent_ts, st->recent_ts + drop, (st->n_recent - drop) * sizeof(int64_t));
    st->n_recent -= drop;
}

void enpi_meter_prune(const enpi_pipeline_cfg_t *pc, enpi_meter_state_t *st)
{
    if (st->n_recent > 0)
        prune_before(st, st->last_ts_ms - pc->allowed_lateness_ms);
}

/* Inserts ts into the ascending list, pruning or growing it first when it is full.
 * `newest` is the meter's newest applied timestamp including ts. */
static int recent_insert(const enpi_pipeline_cfg_t *pc, enpi_meter_state_t *st, int64_t ts,
                         int64_t newest)
{
    size_t n = st->n_recent, i;

    if (n > 0 && n >= enpi_meter_recent_cap(n)) {
        prune_before(st, newest - pc->allowed_lateness_ms);
        n = st->n_recent;
    }
    if (n >= ENPI_DELTA_RECENT_MAX) {
        size_t drop = n - ENPI_DELTA_RECENT_MAX + 1;
        memmove(st->recent_ts, st->recent_ts + drop, (n - drop) * sizeof(int64_t));
        n -= drop;
        st->n_recent = n;
    }
    if (n >= enpi_meter_recent_cap(n)) {
        int64_t *grown = realloc(st->recent_ts, enpi_meter_recent_cap(n + 1) * sizeof(int64_t));
        if (grown == NULL)
            return ENPI_ENOMEM;
        st->recent_ts = grown;
    }
    i = lower_bound(st->recent_ts, n, ts);
    memmove(st->recent_ts + i + 1, st->recent_ts + i, (n - i) * sizeof(int64_t));
    st->recent_ts[i] = ts;
    st->n_recent = n + 1;
    return 0;
}

int enpi_meter_commit(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                      enpi_meter_state_t *st, int64_t ts_ms, double raw, const enpi_step_t *step)
{
    switch (step->kind) {
    case ENPI_STEP_REJECT:
        st->rejected++;
        st->late += step->late;
        return 0;
    case ENPI_STEP_IGNORED:
        st->duplicates += step->duplicates;
        st->late += step->late;
        return 0;
    case ENPI_STEP_STATE_ONLY:
    case ENPI_STEP_APPLY:
        break;
    }
    if (m->reading == ENPI_READING_DELTA) {
        int64_t newest = st->has_state && st->last_ts_ms > ts_ms ? st->last_ts_ms : ts_ms;
        int rc = recent_insert(pc, st, ts_ms, newest);
        if (rc != 0)
            return rc;
    }
    if (!st->has_state) {
        st->has_state = true;
        st->first_ts_ms = ts_ms;
        st->last_ts_ms = ts_ms;
        st->last_raw = raw;
    } else if (ts_ms > st->last_ts_ms) {
        st->last_ts_ms = ts_ms;
        st->last_raw = raw;
    }
    st->readings += step->readings;
    st->late += step->late;
    st->resets += step->resets;
    return 0;
}
