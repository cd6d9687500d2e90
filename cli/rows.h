/*
 * rows.h - the arithmetic `enpi` does at query time, kept pure for tests: a facility's
 * window rows as sums of its meters' stored rollups, whether a window is final, and
 * whether a meter is stale.
 *
 * SPEC §5: window energy of a facility = sum over its energy meters, units = sum over its
 * production meters, SEC = energy / units (null when units = 0). A window is final once
 * the newest accepted reading of every meter of its facility is later than window end +
 * allowed_lateness, or the wall clock is past that instant.
 */
#ifndef ENPI_CLI_ROWS_H
#define ENPI_CLI_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pipeline.h"
#include "storage.h"

/* One window of a facility (or of one meter, with the other kind's fields zero). */
typedef struct {
    int64_t start;         /* UTC ms, inclusive */
    int64_t end;           /* UTC ms, exclusive */
    double energy_kwh;     /* sum over energy meters */
    double units;          /* sum over production meters */
    double est_energy_kwh; /* estimated part of energy_kwh */
    double est_units;      /* estimated part of units */
    uint64_t readings;
    uint64_t resets;
    uint64_t late;
    uint64_t duplicates;
} enpi_cli_row_t;

/* The stored rollups of one meter in ascending window order (as enpi_store_rollups gives). */
typedef struct {
    enpi_kind_t kind;
    const enpi_stored_rollup_t *rollups;
    size_t n;
} enpi_cli_meter_rows_t;

/*
 * Sums the meters' rollups window by window into facility rows, ascending by start. A
 * window present for only some meters still appears (the others contribute 0). Meters
 * are added in the order given, so the sums are reproducible. *out is malloc'd (NULL
 * when there are no rows); the caller frees it. Returns 0 or ENPI_ENOMEM.
 */
int enpi_cli_facility_sum(const enpi_cli_meter_rows_t *meters, size_t n_meters,
                          enpi_cli_row_t **out, size_t *n_out);

/* SEC of a row: energy / units, or false (null) when units == 0. */
bool enpi_cli_row_sec(const enpi_cli_row_t *r, double *sec_out);

/*
 * The instant up to which every meter of a facility has reported: the minimum over the
 * meters of their newest accepted reading. INT64_MIN when any meter has never reported
 * (or there are none), so only the wall clock can make a window final then.
 */
int64_t enpi_cli_watermark(const enpi_meter_state_t *const *states, size_t n);

/* Final: end + lateness is before the watermark or before now (both strictly). */
bool enpi_cli_window_final(int64_t end, int64_t allowed_lateness_ms, int64_t watermark,
                           int64_t now_ms);

/* How long a meter may stay silent before it is stale: max(2 x interval, 1 h). */
int64_t enpi_cli_stale_after_ms(const enpi_meter_cfg_t *m);

/* Stale: never reported, its newest reading is older than stale_after before now, or its
 * Sparkplug edge node or device declared itself dead (NDEATH/DDEATH) and the meter has
 * not reported since (dead_since_ms != 0). */
bool enpi_cli_meter_stale(const enpi_meter_cfg_t *m, const enpi_meter_state_t *s, int64_t now_ms);

#endif
