/*
 * meter.h - SPEC §5's per-meter arithmetic as two pure steps over one meter's state.
 *
 * enpi_meter_evaluate() decides what a reading means (rejected, duplicate, late, the
 * interval and amount it contributes, which quality counters it bumps) without touching
 * the state; enpi_meter_commit() then writes that decision into the state. Splitting the
 * two lets the caller reserve every allocation the reading needs in between, so a reading
 * is either applied completely or not at all. No windows, zones or hashing here: the
 * caller apportions the interval (accum.h).
 */
#ifndef ENPI_METER_H
#define ENPI_METER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pipeline.h"

/* 2000-01-01T00:00:00Z: readings stamped earlier are rejected as too_old (SPEC §4). */
#define ENPI_TS_MIN_MS INT64_C(946684800000)

/*
 * The longest interval [from, to] an amount is apportioned over: 400 days. A longer one
 * (a device whose clock ran from 2000 until NTP synced, a meter back after years) would
 * spread one reading over hundreds of thousands of windows per resolution. Instead the
 * reading re-bases the meter like a first reading: ENPI_STEP_STATE_ONLY with `rebased`
 * set, the state moves to (ts, raw), it counts as an accepted reading in its own window,
 * no amount is spread and no reset is counted. Applies to cumulative meters and to delta
 * meters without interval (the interval since the previous reading); a configured
 * interval longer than this re-bases every reading alike.
 */
#define ENPI_MAX_SPREAD_MS (INT64_C(400) * 86400000)

/*
 * The largest magnitude of one reading's amount after scale and to_kwh (kWh, or the
 * meter's unit): 1e15. A reading whose amount is larger or not finite (a finite raw value
 * times to_kwh can overflow) is rejected as implausible, state unchanged, like max_rate.
 * Every window sum stays a sum of such amounts, so it cannot overflow a double.
 */
#define ENPI_MAX_AMOUNT 1e15

typedef enum {
    ENPI_STEP_STATE_ONLY, /* accepted, no amount: a meter's first reading (or a late delta
                             reading with no applied reading before it), or one re-basing
                             the meter after more than ENPI_MAX_SPREAD_MS (`rebased`) */
    ENPI_STEP_APPLY,      /* accepted: `value` spread over [from, to] */
    ENPI_STEP_IGNORED,    /* duplicate, or late cumulative reading: counted, not applied */
    ENPI_STEP_REJECT,     /* rejected for `reason` */
} enpi_step_kind_t;

typedef struct {
    enpi_step_kind_t kind;
    enpi_reject_t reason; /* ENPI_STEP_REJECT only */
    int64_t from;         /* ENPI_STEP_APPLY: interval [from, to], from < to, UTC ms */
    int64_t to;
    double value;   /* ENPI_STEP_APPLY: amount after scale and to_kwh */
    bool estimated; /* ENPI_STEP_APPLY: to - from > max_gap */
    bool rebased;   /* ENPI_STEP_STATE_ONLY: its interval exceeded ENPI_MAX_SPREAD_MS */
    /* quality counters for the windows containing the reading's own timestamp */
    uint8_t readings;
    uint8_t late;
    uint8_t duplicates;
    uint8_t resets;
} enpi_step_t;

/*
 * Decides what reading (ts_ms, raw) does to a meter in state `st`. Never fails and never
 * changes anything. Checks, in order: not_finite, negative (cumulative only), too_old,
 * future (ts_ms > arrival_ms + max_future), then the arithmetic (duplicate, late,
 * too_late, an interval over ENPI_MAX_SPREAD_MS re-bases, implausible: max_rate or an
 * amount over ENPI_MAX_AMOUNT).
 */
void enpi_meter_evaluate(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                         const enpi_meter_state_t *st, int64_t ts_ms, double raw,
                         int64_t arrival_ms, enpi_step_t *out);

/*
 * Writes an evaluated step into the state: lifetime counters always; for accepted steps
 * also last_ts/last_raw/first_ts and, for delta meters, the remembered timestamps.
 * Returns 0, or ENPI_ENOMEM when growing recent_ts failed — then nothing observable
 * changed (the step must be dropped).
 */
int enpi_meter_commit(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                      enpi_meter_state_t *st, int64_t ts_ms, double raw, const enpi_step_t *step);

/*
 * Drops remembered delta timestamps that can no longer matter: those older than
 * last_ts - allowed_lateness, except the newest of them (the predecessor a late reading
 * without interval spreads from). Commit prunes lazily; call this before persisting.
 */
void enpi_meter_prune(const enpi_pipeline_cfg_t *pc, enpi_meter_state_t *st);

/* SPEC §3: 1..ENPI_METER_ID_MAX bytes of printable UTF-8 (no C0/C1 controls, no DEL,
 * strict UTF-8). '/' and spaces are allowed. */
bool enpi_meter_id_valid(const char *id, size_t len);

/* The allocated length of recent_ts for n entries: 0, or a power of two >= max(n, 8).
 * Every recent_ts the pipeline owns has at least this capacity. */
size_t enpi_meter_recent_cap(size_t n);

#endif
