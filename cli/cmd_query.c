/*
 * cmd_query.c - `enpi query`: the rollup windows of one meter, or of one facility summed
 * over its meters at query time, in the JSON shape of SPEC §7.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "fetch.h"
#include "rows.h"

static const char help[] =
    "Usage: enpi query (--facility ID | --meter ID) --resolution R --from T --to T\n"
    "                  [--format table|csv|json]\n"
    "\n"
    "Rollup windows whose start lies in [FROM, TO), ascending.\n"
    "  --facility ID     the facility's windows: energy and units summed over its meters,\n"
    "                    sec = energy_kwh / units (null when units is 0)\n"
    "  --meter ID        one meter's windows (energy_kwh or units by its kind)\n"
    "  --resolution R    one of the configured pipeline.resolutions (e.g. 15m, 1h, 1d, 1mo)\n"
    "  --from T, --to T  ISO 8601 date or date-time (2018-03-28, 2018-03-28T10:00,\n"
    "                    2018-03-28T10:00:00+07:00), in the facility's time zone unless\n"
    "                    it carries an offset\n"
    "\n"
    "A window is final once every meter of its facility has reported past its end plus\n"
    "pipeline.allowed_lateness, or the clock is past that instant. In tables 'r/l/d' is\n"
    "resets/late/duplicates; JSON and CSV carry every field at full precision.\n";

/* The request after argument checks, with everything the rows need. */
typedef struct {
    const enpi_facility_cfg_t *facility;
    const enpi_meter_cfg_t *meter; /* NULL for a facility query */
    const enpi_tz_t *tz;
    enpi_duration_t res;
    int64_t from;
    int64_t to;
    int64_t watermark; /* see enpi_cli_watermark */
    int64_t lateness_ms;
    int64_t now_ms;
} query_t;

/* Columns: JSON keys in SPEC §7 order; tables leave out what is constant or long. */
static const enpi_out_col_t facility_cols[] = {
    {"facility", NULL, ENPI_OUT_TEXT},
    {"start", "start", ENPI_OUT_TEXT},
    {"end", NULL, ENPI_OUT_TEXT},
    {"energy_kwh", "energy_kwh", 3},
    {"units", "units", 3},
    {"sec", "sec", 3},
    {"readings", "readings", 0},
    {"estimated.energy_kwh", "est_kwh", 3},
    {"estimated.units", "est_units", 3},
    {NULL, "r/l/d", ENPI_OUT_TEXT},
    {"resets", NULL, 0},
    {"late", NULL, 0},
    {"duplicates", NULL, 0},
    {"final", "final", ENPI_OUT_TEXT},
};

static const enpi_out_col_t meter_cols[] = {
    {"meter", NULL, ENPI_OUT_TEXT},
    {"start", "start", ENPI_OUT_TEXT},
    {"end", NULL, ENPI_OUT_TEXT},
    {"energy_kwh", "energy_kwh", 3},
    {"units", "units", 3},
    {"sec", NULL, 3},
    {"readings", "readings", 0},
    {"estimated", "estimated", 3},
    {NULL, "r/l/d", ENPI_OUT_TEXT},
    {"resets", NULL, 0},
    {"late", NULL, 0},
    {"duplicates", NULL, 0},
    {"final", "final", ENPI_OUT_TEXT},
};

/* Writes one row; the layout follows facility_cols / meter_cols. */
static void put_row(enpi_out_t *o, const query_t *q, const enpi_cli_row_t *r)
{
    char start[48], end[48], rld[72];
    enpi_tz_format(q->tz, r->start, start, sizeof start);
    enpi_tz_format(q->tz, r->end, end, sizeof end);
    snprintf(rld, sizeof rld, "%llu/%llu/%llu", (unsigned long long)r->resets,
             (unsigned long long)r->late, (unsigned long long)r->duplicates);
    enpi_out_row(o);
    enpi_out_str(o, q->meter ? q->meter->id : q->facility->id);
    enpi_out_str(o, start);
    enpi_out_str(o, end);
    if (q->meter) {
        bool energy = q->meter->kind == ENPI_KIND_ENERGY;
        if (energy) {
            enpi_out_real(o, r->energy_kwh);
            enpi_out_null(o);
        } else {
            enpi_out_null(o);
            enpi_out_real(o, r->units);
        }
        enpi_out_null(o);
        enpi_out_uint(o, r->readings);
        enpi_out_real(o, energy ? r->est_energy_kwh : r->est_units);
    } else {
        double sec;
        enpi_out_real(o, r->energy_kwh);
        enpi_out_real(o, r->units);
        if (enpi_cli_row_sec(r, &sec))
            enpi_out_real(o, sec);
        else
            enpi_out_null(o);
        enpi_out_uint(o, r->readings);
        enpi_out_real(o, r->est_energy_kwh);
        enpi_out_real(o, r->est_units);
    }
    enpi_out_str(o, rld);
    enpi_out_uint(o, r->resets);
    enpi_out_uint(o, r->late);
    enpi_out_uint(o, r->duplicates);
    enpi_out_bool(o, enpi_cli_window_final(r->end, q->lateness_ms, q->watermark, q->now_ms));
}

/* The rows of the query (one meter's rollups, or the facility's sums) and the
 * watermark over the query's meters, both through fetch.h. */
static int build_rows(enpi_cli_ctx_t *ctx, query_t *q, enpi_cli_row_t **rows_out, size_t *n_out,
                      enpi_cli_diag_t *d)
{
    int rc;
    if (q->meter) {
        enpi_meter_state_t s;
        if ((rc = enpi_cli_ctx_meter_state(ctx, q->meter->id, &s, d)) != 0)
            return rc;
        const enpi_meter_state_t *p = &s;
        q->watermark = enpi_cli_watermark(&p, 1);
        enpi_meter_state_clear(&s);
        return enpi_cli_fetch_meter(ctx, q->meter, &q->res, q->from, q->to, rows_out, n_out, d);
    }
    if ((rc = enpi_cli_fetch_watermark(ctx, q->facility, &q->watermark, d)) != 0)
        return rc;
    return enpi_cli_fetch_facility(ctx, q->facility, &q->res, q->from, q->to, rows_out, n_out, d);
}

/* Resolves the ids, the resolution and the time range against the configuration. */
static int resolve(enpi_cli_ctx_t *ctx, const char *facility_id, const char *meter_id,
                   const char *res, const char *from, const char *to, query_t *q,
                   enpi_cli_diag_t *d)
{
    const enpi_config_t *cfg = ctx->cfg;
    if (meter_id) {
        q->meter = enpi_config_meter(cfg, meter_id, &q->facility);
        if (!q->meter)
            return enpi_cli_fail(d, ENPI_ENOENT, "no meter '%s' in the configuration", meter_id);
    } else {
        q->facility = enpi_config_facility(cfg, facility_id);
        if (!q->facility)
            return enpi_cli_fail(d, ENPI_ENOENT, "no facility '%s' in the configuration",
                                 facility_id);
    }
    char err[384];
    int rc = enpi_cli_parse_resolution(res, cfg, &q->res, err, sizeof err);
    if (rc == ENPI_EPARSE)
        return enpi_cli_usage(d, "%s", err);
    if (rc)
        return enpi_cli_fail(d, rc, "%s", err);
    q->tz = enpi_cli_ctx_tz(ctx, q->facility, d);
    if (!q->tz)
        return ENPI_ENOENT;
    if (enpi_cli_parse_time(from, q->tz, &q->from) != 0)
        return enpi_cli_usage(d, "bad time '%s' for --from (ISO 8601 date or date-time)", from);
    if (enpi_cli_parse_time(to, q->tz, &q->to) != 0)
        return enpi_cli_usage(d, "bad time '%s' for --to (ISO 8601 date or date-time)", to);
    if (q->from >= q->to)
        return enpi_cli_usage(d, "--from '%s' is not before --to '%s'", from, to);
    q->lateness_ms = cfg->pipeline.allowed_lateness_ms;
    q->now_ms = ctx->now_ms;
    return 0;
}

int enpi_cmd_query(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    const char *facility = NULL, *meter = NULL, *res = NULL, *from = NULL, *to = NULL;
    const enpi_cli_opt_t opts[] = {
        {"facility", 0, true, &facility, NULL},
        {"meter", 0, true, &meter, NULL},
        {"resolution", 0, true, &res, NULL},
        {"from", 0, true, &from, NULL},
        {"to", 0, true, &to, NULL},
    };
    int rc = enpi_cli_cmd_args(g, argc, argv, opts, sizeof opts / sizeof opts[0], help, d);
    if (rc || g->help)
        return rc;
    enpi_out_format_t fmt;
    if ((rc = enpi_cli_format(g, &fmt, d)) != 0)
        return rc;
    if (!facility == !meter)
        return enpi_cli_usage(d, "query: give exactly one of --facility ID and --meter ID");
    if (!res)
        return enpi_cli_usage(d, "query: missing --resolution R");
    if (!from || !to)
        return enpi_cli_usage(d, "query: missing --%s T", from ? "to" : "from");

    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    query_t q = {0};
    enpi_cli_row_t *rows = NULL;
    size_t n_rows = 0;
    if ((rc = resolve(&ctx, facility, meter, res, from, to, &q, d)) != 0)
        goto close_ctx;
    if ((rc = build_rows(&ctx, &q, &rows, &n_rows, d)) != 0)
        goto close_ctx;

    const enpi_out_col_t *cols = q.meter ? meter_cols : facility_cols;
    size_t n_cols = q.meter ? sizeof meter_cols / sizeof meter_cols[0]
                            : sizeof facility_cols / sizeof facility_cols[0];
    enpi_out_t *o;
    if ((rc = enpi_out_create(fmt, cols, n_cols, &o)) != 0) {
        rc = enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
        goto free_rows;
    }
    for (size_t i = 0; i < n_rows; i++)
        put_row(o, &q, &rows[i]);
    rc = enpi_cli_emit(o, d);
free_rows:
    free(rows);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
