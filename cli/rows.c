/*
 * rows.c - facility sums, finality and staleness at query time (see rows.h).
 *
 * Every meter's rollups arrive sorted by start, so the facility rows are a k-way merge:
 * at each step the smallest start among the meters' cursors is one output row and every
 * meter whose cursor sits on it contributes. k is a facility's meter count (a handful), so
 * the linear scan per step is cheaper than a heap.
 */
#include "rows.h"

#include <stdlib.h>

#include "enpi_error.h"

static void add_rollup(enpi_cli_row_t *row, enpi_kind_t kind, const enpi_stored_rollup_t *s)
{
    if (kind == ENPI_KIND_ENERGY) {
        row->energy_kwh += s->r.value;
        row->est_energy_kwh += s->r.estimated;
    } else {
        row->units += s->r.value;
        row->est_units += s->r.estimated;
    }
    row->readings += s->r.readings;
    row->resets += s->r.resets;
    row->late += s->r.late;
    row->duplicates += s->r.duplicates;
    if (s->end > row->end)
        row->end = s->end;
}

int enpi_cli_facility_sum(const enpi_cli_meter_rows_t *meters, size_t n_meters,
                          enpi_cli_row_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (size_t m = 0; m < n_meters; m++)
        total += meters[m].n;
    if (total == 0)
        return 0;
    size_t *cursor = calloc(n_meters, sizeof *cursor);
    enpi_cli_row_t *rows = calloc(total, sizeof *rows); /* at most one row per rollup */
    if (!cursor || !rows) {
        free(cursor);
        free(rows);
        return ENPI_ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        bool any = false;
        int64_t start = 0;
        for (size_t m = 0; m < n_meters; m++) {
            if (cursor[m] == meters[m].n)
                continue;
            int64_t s = meters[m].rollups[cursor[m]].start;
            if (!any || s < start)
                start = s;
            any = true;
        }
        if (!any)
            break;
        enpi_cli_row_t *row = &rows[n++];
        row->start = start;
        row->end = start;
        for (size_t m = 0; m < n_meters; m++) {
            if (cursor[m] == meters[m].n || meters[m].rollups[cursor[m]].start != start)
                continue;
            add_rollup(row, meters[m].kind, &meters[m].rollups[cursor[m]]);
            cursor[m]++;
        }
    }
    free(cursor);
    *out = rows;
    *n_out = n;
    return 0;
}

bool enpi_cli_row_sec(const enpi_cli_row_t *r, double *sec_out)
{
    if (r->units == 0)
        return false;
    *sec_out = r->energy_kwh / r->units;
    return true;
}

int64_t enpi_cli_watermark(const enpi_meter_state_t *const *states, size_t n)
{
    if (n == 0)
        return INT64_MIN;
    int64_t w = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!states[i] || !states[i]->has_state)
            return INT64_MIN;
        if (states[i]->last_ts_ms < w)
            w = states[i]->last_ts_ms;
    }
    return w;
}

bool enpi_cli_window_final(int64_t end, int64_t allowed_lateness_ms, int64_t watermark,
                           int64_t now_ms)
{
    int64_t closes = end + allowed_lateness_ms;
    return watermark > closes || now_ms > closes;
}

int64_t enpi_cli_stale_after_ms(const enpi_meter_cfg_t *m)
{
    const int64_t hour = 3600 * 1000;
    int64_t twice = 2 * m->interval_ms;
    return twice > hour ? twice : hour;
}

bool enpi_cli_meter_stale(const enpi_meter_cfg_t *m, const enpi_meter_state_t *s, int64_t now_ms)
{
    if (!s || !s->has_state || s->dead_since_ms != 0)
        return true;
    return now_ms - s->last_ts_ms > enpi_cli_stale_after_ms(m);
}
