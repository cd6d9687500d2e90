/*
 * fetch.h - the one path by which `enpi` turns stored rollups into rows: a facility's
 * window rows (its meters' rollups summed at query time, rows.h) or one meter's, at a
 * configured resolution, for the windows whose start lies in [from, to).
 *
 * `enpi query`, `enpi report` and `enpi plot` all read through here, so a figure shown
 * by one command is the figure the others compute with.
 *
 * DESIGN: single-threaded, on the caller's context; the store is read, never written.
 */
#ifndef ENPI_CLI_FETCH_H
#define ENPI_CLI_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include "civil.h"
#include "cli.h"
#include "config.h"
#include "context.h"
#include "rows.h"

/*
 * The facility's rows at resolution `res` (one of the configured pipeline.resolutions;
 * not checked here) whose window start lies in [from, to) (UTC ms), ascending by start.
 * Each row sums the facility's meters' rollups of that window (enpi_cli_facility_sum);
 * a window no meter has a rollup for is absent. *rows is malloc'd (NULL when there are
 * none) and the caller frees it. Returns 0, or an ENPI_E* code with d filled (and
 * *rows NULL, *n 0).
 */
int enpi_cli_fetch_facility(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f,
                            const enpi_duration_t *res, int64_t from, int64_t to,
                            enpi_cli_row_t **rows, size_t *n, enpi_cli_diag_t *d);

/*
 * The same for one meter: its rollups as rows, the value in energy_kwh or units by the
 * meter's kind (the other field 0). Same ownership and errors.
 */
int enpi_cli_fetch_meter(enpi_cli_ctx_t *ctx, const enpi_meter_cfg_t *m, const enpi_duration_t *res,
                         int64_t from, int64_t to, enpi_cli_row_t **rows, size_t *n,
                         enpi_cli_diag_t *d);

/*
 * The facility's watermark (enpi_cli_watermark over all its meters' stored states):
 * the newest instant every meter has reported up to, INT64_MIN when a meter never
 * reported. Returns 0 or an ENPI_E* code with d filled.
 */
int enpi_cli_fetch_watermark(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, int64_t *out,
                             enpi_cli_diag_t *d);

/*
 * How far the facility's data reaches: the minimum, over the meters that have reported
 * at all, of their newest accepted reading (meters that never reported are left out;
 * INT64_MIN when none has reported). The report's projection uses it. Returns 0 or an
 * ENPI_E* code with d filled.
 */
int enpi_cli_fetch_data_end(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, int64_t *out,
                            enpi_cli_diag_t *d);

#endif
