/*
 * cmd_report.c - `enpi report` (SPEC §6, §7): reads what the programme report needs from
 * the store through fetch.h (enpi_report_build), lets report.c do the arithmetic, and
 * prints the result as a table for people, CSV for spreadsheets or the JSON of SPEC §7.
 * `--pdf FILE` hands the built report to enpi_report_pdf (cli/pdf.c).
 *
 * Choices the SPEC leaves open, documented in the help and the README: the regression
 * model without 1d configured makes its facilities no_data with that reason (not an
 * error: the others still report); "regression" is null for the other models and
 * "poor_fit" null where no fit was attempted; CSV is the facilities, an empty line, then
 * the programme as a one-row table.
 */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "fetch.h"
#include "report.h"
#include "window.h"

static const char help[] =
    "Usage: enpi report [--period FROM..TO] [--facility ID] [--pdf FILE]\n"
    "                   [--format table|csv|json]\n"
    "\n"
    "The programme's target report (SPEC §6): per facility its energy and production over\n"
    "the period, its specific energy consumption (SEC = kWh per unit), the energy its\n"
    "baseline expects, the energy saved and the saving against the programme's target\n"
    "and stretch; then the programme's figures.\n"
    "  --period FROM..TO  half-open, dates or date-times (2018-01-01..2019-01-01), read in\n"
    "                     each facility's time zone; default programme.period\n"
    "  --facility ID      only this facility (the programme figures then cover it alone)\n"
    "  --pdf FILE         also write a printable report (summary and a page per facility)\n"
    "\n"
    "Models: sec - baseline SEC = energy / units over the baseline period (or the fixed\n"
    "sec:), expected = baseline SEC x units; regression - least squares E = a + b x U over\n"
    "the baseline days with production (needs 1d in pipeline.resolutions), expected = sum\n"
    "of a + b x U over the period's days with readings; a fit on fewer than 10 days or\n"
    "with R2 below 0.5 is a poor fit, marked reg* (poor_fit in JSON) and still reported.\n"
    "Status: stretch_met, met, not_met, or no_data (no baseline, a baseline without data,\n"
    "or no production in the period) with the reason. When the data does not cover the\n"
    "period yet, the totals are also projected to its end, assuming each facility keeps\n"
    "its saving rate so far.\n";

/* ---- building the report from the store ---- */

/* Splits "FROM..TO" and parses both ends. Returns 0 or ENPI_EINVAL (usage, d filled). */
static int parse_period(const char *s, enpi_civil_t *from, enpi_civil_t *to, enpi_cli_diag_t *d)
{
    const char *dots = strstr(s, "..");
    if (!dots)
        return enpi_cli_usage(d, "bad --period '%s' (FROM..TO, e.g. 2018-01-01..2019-01-01)", s);
    if (enpi_civil_parse(s, (size_t)(dots - s), from) != 0 ||
        enpi_civil_parse(dots + 2, strlen(dots + 2), to) != 0)
        return enpi_cli_usage(d, "bad --period '%s' (FROM..TO with ISO 8601 dates or date-times)",
                              s);
    return 0;
}

/* Sums the facility's energy and units over [from, to) at resolution res. */
static int period_totals(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f,
                         const enpi_duration_t *res, int64_t from, int64_t to, double *energy,
                         double *units, size_t *n_rows, enpi_cli_diag_t *d)
{
    enpi_cli_row_t *rows;
    size_t n;
    int rc = enpi_cli_fetch_facility(ctx, f, res, from, to, &rows, &n, d);
    if (rc)
        return rc;
    *energy = 0;
    *units = 0;
    for (size_t i = 0; i < n; i++) {
        *energy += rows[i].energy_kwh;
        *units += rows[i].units;
    }
    *n_rows = n;
    free(rows);
    return 0;
}

/* The 1d rows of the regression model: the baseline's days and the period's days. */
typedef struct {
    enpi_cli_row_t *base;
    size_t n_base;
    enpi_cli_row_t *period;
    size_t n_period;
} day_rows_t;

static int read_days(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, enpi_report_facility_t *rf,
                     enpi_report_input_t *in, day_rows_t *days, enpi_cli_diag_t *d)
{
    enpi_duration_t day;
    in->days_ok = false;
    if (!enpi_report_daily(ctx->cfg, &day)) {
        in->days_reason = "the regression model needs 1d in pipeline.resolutions";
        return 0;
    }
    if (enpi_window_containing(rf->tz, &day, rf->from).start != rf->from ||
        enpi_window_containing(rf->tz, &day, rf->to).start != rf->to) {
        in->days_reason = "the period is not whole local days (the regression model needs them)";
        return 0;
    }
    int rc = enpi_cli_fetch_facility(ctx, f, &day, rf->base_from, rf->base_to, &days->base,
                                     &days->n_base, d);
    if (rc)
        return rc;
    rc = enpi_cli_fetch_facility(ctx, f, &day, rf->from, rf->to, &days->period, &days->n_period, d);
    if (rc)
        return rc;
    in->base_days = days->base;
    in->n_base_days = days->n_base;
    in->days = days->period;
    in->n_days = days->n_period;
    in->days_ok = true;
    return 0;
}

/* Fills one facility of the report: its period and dates in its zone, then its figures. */
static int build_facility(enpi_cli_ctx_t *ctx, const enpi_report_t *r, const enpi_facility_cfg_t *f,
                          enpi_report_facility_t *rf, enpi_cli_diag_t *d)
{
    memset(rf, 0, sizeof *rf);
    rf->cfg = f;
    rf->id = f->id;
    rf->name = f->name ? f->name : f->id;
    rf->product_unit = f->product_unit;
    rf->tz = enpi_cli_ctx_tz(ctx, f, d);
    if (!rf->tz)
        return ENPI_ENOENT;
    rf->timezone = enpi_tz_name(rf->tz);
    rf->from = enpi_tz_from_civil(rf->tz, &r->period_from);
    rf->to = enpi_tz_from_civil(rf->tz, &r->period_to);
    if (rf->from >= rf->to)
        return enpi_cli_usage(d, "the period's start is not before its end (facility '%s')", f->id);
    const enpi_baseline_cfg_t *b = &f->baseline;
    if (b->has_period) {
        rf->has_baseline_period = true;
        rf->base_from = enpi_tz_from_civil(rf->tz, &b->from);
        rf->base_to = enpi_tz_from_civil(rf->tz, &b->to);
    }
    rf->has_aware_since = f->has_aware_since;
    if (f->has_aware_since)
        rf->aware_since = enpi_tz_from_civil(rf->tz, &f->aware_since);
    rf->has_applying_since = f->has_applying_since;
    if (f->has_applying_since)
        rf->applying_since = enpi_tz_from_civil(rf->tz, &f->applying_since);

    enpi_duration_t res;
    if (!enpi_report_resolution_for(ctx->cfg, rf->tz, rf->from, rf->to, &res))
        return enpi_cli_usage(d,
                              "the period does not start and end on window boundaries of any "
                              "configured resolution in facility '%s''s zone %s",
                              f->id, rf->timezone);
    enpi_report_input_t in = {0};
    in.model = b->model;
    in.fixed_sec = b->has_fixed_sec;
    in.fixed_sec_value = b->fixed_sec;
    in.target_pct = r->target_pct;
    in.stretch_pct = r->stretch_pct;
    size_t n_rows;
    int rc = period_totals(ctx, f, &res, rf->from, rf->to, &in.energy_kwh, &in.units, &n_rows, d);
    if (rc)
        return rc;
    if ((rc = enpi_cli_fetch_data_end(ctx, f, &rf->data_end, d)) != 0)
        return rc;
    day_rows_t days = {0};
    if (b->model == ENPI_BASELINE_SEC && b->has_period) {
        enpi_duration_t bres;
        in.baseline_ok =
            rf->base_from < rf->base_to &&
            enpi_report_resolution_for(ctx->cfg, rf->tz, rf->base_from, rf->base_to, &bres);
        if (in.baseline_ok)
            rc = period_totals(ctx, f, &bres, rf->base_from, rf->base_to, &in.base_energy_kwh,
                               &in.base_units, &in.base_rows, d);
    } else if (b->model == ENPI_BASELINE_REGRESSION) {
        rc = read_days(ctx, f, rf, &in, &days, d);
    }
    if (!rc)
        enpi_report_evaluate(&in, rf);
    free(days.base);
    free(days.period);
    return rc;
}

int enpi_report_build(enpi_cli_ctx_t *ctx, const enpi_report_opts_t *opts, enpi_report_t *out,
                      enpi_cli_diag_t *d)
{
    const enpi_config_t *cfg = ctx->cfg;
    memset(out, 0, sizeof *out);
    out->cfg = cfg;
    out->programme = cfg->programme.name;
    out->target_pct = cfg->programme.target_saving_pct;
    out->stretch_pct = cfg->programme.stretch_saving_pct;
    out->aware_target_pp = cfg->programme.aware_increase_pp;
    out->applying_target_pp = cfg->programme.applying_increase_pp;
    out->now_ms = ctx->now_ms;
    int rc;
    if (opts && opts->period) {
        if ((rc = parse_period(opts->period, &out->period_from, &out->period_to, d)) != 0)
            return rc;
    } else if (cfg->programme.has_period) {
        out->period_from = cfg->programme.period_from;
        out->period_to = cfg->programme.period_to;
    } else {
        return enpi_cli_usage(d, "report: no --period FROM..TO and no programme.period in the "
                                 "configuration");
    }
    const enpi_facility_cfg_t *only = NULL;
    if (opts && opts->facility_id) {
        only = enpi_config_facility(cfg, opts->facility_id);
        if (!only)
            return enpi_cli_fail(d, ENPI_ENOENT, "no facility '%s' in the configuration",
                                 opts->facility_id);
    }
    out->tz = enpi_cli_ctx_tz(ctx, NULL, d);
    if (!out->tz)
        return ENPI_ENOENT;
    out->from = enpi_tz_from_civil(out->tz, &out->period_from);
    out->to = enpi_tz_from_civil(out->tz, &out->period_to);
    if (out->from >= out->to)
        return enpi_cli_usage(d, "report: the period's start is not before its end");
    size_t n = only ? 1 : cfg->n_facilities;
    out->facilities = calloc(n ? n : 1, sizeof *out->facilities);
    if (!out->facilities)
        return enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
    out->n_facilities = n;
    for (size_t i = 0; i < n; i++) {
        rc = build_facility(ctx, out, only ? only : &cfg->facilities[i], &out->facilities[i], d);
        if (rc) {
            enpi_report_free(out);
            return rc;
        }
    }
    enpi_report_programme(out);
    enpi_report_project(out);
    return 0;
}

void enpi_report_free(enpi_report_t *r)
{
    if (!r)
        return;
    free(r->facilities);
    memset(r, 0, sizeof *r);
}

/* ---- JSON (SPEC §7) ---- */

static const char *model_name(enpi_baseline_model_t m)
{
    switch (m) {
    case ENPI_BASELINE_SEC:
        return "sec";
    case ENPI_BASELINE_REGRESSION:
        return "regression";
    case ENPI_BASELINE_NONE:
        break;
    }
    return NULL;
}

/* A JSON number carrying the exact shortest text of v; NULL (JSON null) when v is not
 * finite. *ok becomes false when memory runs out. */
static json_object *jnum(double v, bool *ok)
{
    if (!isfinite(v))
        return NULL;
    char buf[48];
    enpi_out_format_double(v, buf, sizeof buf);
    json_object *o = json_object_new_double_s(v, buf);
    if (!o)
        *ok = false;
    return o;
}

static json_object *jstr(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    json_object *o = json_object_new_string(s);
    if (!o)
        *ok = false;
    return o;
}

static json_object *jtime(const enpi_tz_t *tz, int64_t t, bool *ok)
{
    char buf[48];
    if (enpi_tz_format(tz, t, buf, sizeof buf) < 0)
        return NULL;
    return jstr(buf, ok);
}

static json_object *juint(uint64_t v, bool *ok)
{
    json_object *o = json_object_new_uint64(v);
    if (!o)
        *ok = false;
    return o;
}

/* Adds key: v to obj (v may be NULL: JSON null); on failure frees v and clears *ok. */
static void jadd(json_object *obj, const char *key, json_object *v, bool *ok)
{
    if (!obj || json_object_object_add(obj, key, v) != 0) {
        json_object_put(v);
        *ok = false;
    }
}

static json_object *jobj(bool *ok)
{
    json_object *o = json_object_new_object();
    if (!o)
        *ok = false;
    return o;
}

static json_object *facility_json(const enpi_report_facility_t *f, bool *ok)
{
    json_object *o = jobj(ok);
    jadd(o, "facility", jstr(f->id, ok), ok);
    jadd(o, "name", jstr(f->name, ok), ok);
    jadd(o, "model", jstr(model_name(f->model), ok), ok);
    jadd(o, "energy_kwh", jnum(f->energy_kwh, ok), ok);
    jadd(o, "units", jnum(f->units, ok), ok);
    jadd(o, "sec", jnum(f->sec, ok), ok);
    jadd(o, "baseline_sec", jnum(f->baseline_sec, ok), ok);
    jadd(o, "expected_kwh", jnum(f->expected_kwh, ok), ok);
    jadd(o, "saved_kwh", jnum(f->saved_kwh, ok), ok);
    jadd(o, "saving_pct", jnum(f->saving_pct, ok), ok);
    jadd(o, "status", jstr(enpi_report_status_name(f->status), ok), ok);
    json_object *reg = NULL;
    if (f->model == ENPI_BASELINE_REGRESSION) {
        reg = jobj(ok);
        jadd(reg, "a", jnum(f->fit.a, ok), ok);
        jadd(reg, "b", jnum(f->fit.b, ok), ok);
        jadd(reg, "r2", jnum(f->fit.r2, ok), ok);
        jadd(reg, "n", juint(f->has_fit ? f->fit.n : 0, ok), ok);
    }
    jadd(o, "regression", reg, ok);
    jadd(o, "poor_fit", f->has_fit ? json_object_new_boolean(f->fit.poor_fit) : NULL, ok);
    jadd(o, "no_data_reason", jstr(f->no_data_reason, ok), ok);
    jadd(o, "baseline_source",
         jstr(f->model == ENPI_BASELINE_NONE ? NULL
              : f->fixed_sec                 ? "fixed"
                                             : "period",
              ok),
         ok);
    json_object *bp = NULL;
    if (f->has_baseline_period && !f->fixed_sec && f->model != ENPI_BASELINE_NONE) {
        bp = jobj(ok);
        jadd(bp, "from", jtime(f->tz, f->base_from, ok), ok);
        jadd(bp, "to", jtime(f->tz, f->base_to, ok), ok);
    }
    jadd(o, "baseline_period", bp, ok);
    jadd(o, "product_unit", jstr(f->product_unit, ok), ok);
    jadd(o, "timezone", jstr(f->timezone, ok), ok);
    jadd(o, "from", jtime(f->tz, f->from, ok), ok);
    jadd(o, "to", jtime(f->tz, f->to, ok), ok);
    jadd(o, "data_to",
         f->data_end == INT64_MIN ? NULL
                                  : jtime(f->tz, f->data_end < f->to ? f->data_end : f->to, ok),
         ok);
    json_object *pj = NULL;
    if (!f->complete && f->status != ENPI_REPORT_NO_DATA) {
        pj = jobj(ok);
        jadd(pj, "covered_pct", jnum(100.0 * f->covered, ok), ok);
        jadd(pj, "energy_kwh", jnum(f->proj_energy_kwh, ok), ok);
        jadd(pj, "expected_kwh", jnum(f->proj_expected_kwh, ok), ok);
        jadd(pj, "saved_kwh", jnum(f->proj_saved_kwh, ok), ok);
    }
    jadd(o, "projection", pj, ok);
    return o;
}

static json_object *uptake_json(const enpi_report_uptake_t *u, bool *ok)
{
    json_object *o = jobj(ok);
    jadd(o, "start", juint(u->start, ok), ok);
    jadd(o, "end", juint(u->end, ok), ok);
    jadd(o, "increase_pp", jnum(u->increase_pp, ok), ok);
    jadd(o, "target_pp", jnum(u->target_pp, ok), ok);
    return o;
}

static json_object *programme_json(const enpi_report_t *r, bool *ok)
{
    const enpi_report_programme_t *p = &r->programme_figures;
    json_object *o = jobj(ok);
    jadd(o, "facilities", juint(p->facilities, ok), ok);
    jadd(o, "with_data", juint(p->with_data, ok), ok);
    jadd(o, "met", juint(p->met, ok), ok);
    jadd(o, "stretch_met", juint(p->stretch_met, ok), ok);
    jadd(o, "met_pct", jnum(p->met_pct, ok), ok);
    jadd(o, "stretch_met_pct", jnum(p->stretch_met_pct, ok), ok);
    jadd(o, "expected_kwh", jnum(p->expected_kwh, ok), ok);
    jadd(o, "energy_kwh", jnum(p->energy_kwh, ok), ok);
    jadd(o, "saved_kwh", jnum(p->saved_kwh, ok), ok);
    jadd(o, "saving_pct", jnum(p->saving_pct, ok), ok);
    jadd(o, "aware", uptake_json(&p->aware, ok), ok);
    jadd(o, "applying", uptake_json(&p->applying, ok), ok);
    jadd(o, "name", jstr(r->programme, ok), ok);
    jadd(o, "target_pct", jnum(r->target_pct, ok), ok);
    jadd(o, "stretch_pct", jnum(r->stretch_pct, ok), ok);
    json_object *pj = NULL;
    const enpi_report_projection_t *pr = &r->projection;
    if (pr->needed) {
        pj = jobj(ok);
        jadd(pj, "energy_kwh", jnum(pr->energy_kwh, ok), ok);
        jadd(pj, "expected_kwh", jnum(pr->expected_kwh, ok), ok);
        jadd(pj, "saved_kwh", jnum(pr->saved_kwh, ok), ok);
        jadd(pj, "saving_pct", jnum(pr->saving_pct, ok), ok);
        jadd(pj, "projected", juint(pr->projected, ok), ok);
        jadd(pj, "unprojectable", juint(pr->unprojectable, ok), ok);
    }
    jadd(o, "projection", pj, ok);
    return o;
}

static int write_json(const enpi_report_t *r, enpi_cli_diag_t *d)
{
    bool ok = true;
    json_object *root = jobj(&ok);
    json_object *period = jobj(&ok);
    jadd(period, "from", jtime(r->tz, r->from, &ok), &ok);
    jadd(period, "to", jtime(r->tz, r->to, &ok), &ok);
    jadd(root, "period", period, &ok);
    json_object *arr = json_object_new_array_ext(r->n_facilities ? (int)r->n_facilities : 1);
    if (!arr)
        ok = false;
    for (size_t i = 0; i < r->n_facilities && arr; i++) {
        json_object *f = facility_json(&r->facilities[i], &ok);
        if (!f || json_object_array_add(arr, f) != 0) {
            json_object_put(f);
            ok = false;
        }
    }
    jadd(root, "facilities", arr, &ok);
    jadd(root, "programme", programme_json(r, &ok), &ok);
    int rc = 0;
    const char *text = ok ? json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
                                                                     JSON_C_TO_STRING_SPACED |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
                          : NULL;
    if (!text) {
        rc = enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
        goto put_root;
    }
    if (fputs(text, stdout) < 0 || fputc('\n', stdout) < 0 || fflush(stdout) != 0)
        rc = enpi_cli_fail(d, ENPI_EIO, "cannot write the output");
put_root:
    json_object_put(root);
    return rc;
}

/* ---- table and CSV ---- */

/* One list for both: a NULL key keeps a column out of CSV, a NULL head out of tables.
 * The name comes last in tables, cut to the columns left of 100, so a long Vietnamese
 * name neither wraps the line nor upsets the alignment of the columns before it. */
static const enpi_out_col_t facility_cols[] = {
    {"facility", "facility", ENPI_OUT_TEXT},
    {"name", NULL, ENPI_OUT_TEXT},
    {"model", NULL, ENPI_OUT_TEXT},
    {NULL, "model", ENPI_OUT_TEXT},
    {"energy_kwh", NULL, 0},
    {"units", NULL, 3},
    {"sec", "sec", 2},
    {"baseline_sec", "base_sec", 2},
    {NULL, "energy_kwh", 0},
    {"expected_kwh", NULL, 0},
    {"saved_kwh", "saved_kwh", 0},
    {"saving_pct", "saving%", 1},
    {"status", "status", ENPI_OUT_TEXT},
    {"regression.a", NULL, 3},
    {"regression.b", NULL, 3},
    {"regression.r2", NULL, 3},
    {"regression.n", NULL, 0},
    {"poor_fit", NULL, ENPI_OUT_TEXT},
    {"no_data_reason", NULL, ENPI_OUT_TEXT},
    {"baseline_source", NULL, ENPI_OUT_TEXT},
    {"timezone", NULL, ENPI_OUT_TEXT},
    {"from", NULL, ENPI_OUT_TEXT},
    {"to", NULL, ENPI_OUT_TEXT},
    {"data_to", NULL, ENPI_OUT_TEXT},
    {"projection.covered_pct", NULL, 1},
    {"projection.energy_kwh", NULL, 0},
    {"projection.expected_kwh", NULL, 0},
    {"projection.saved_kwh", NULL, 0},
    {NULL, "name", ENPI_OUT_TEXT},
};

static const enpi_out_col_t programme_cols[] = {
    {"period.from", NULL, ENPI_OUT_TEXT},
    {"period.to", NULL, ENPI_OUT_TEXT},
    {"facilities", NULL, 0},
    {"with_data", NULL, 0},
    {"met", NULL, 0},
    {"stretch_met", NULL, 0},
    {"met_pct", NULL, 1},
    {"stretch_met_pct", NULL, 1},
    {"expected_kwh", NULL, 0},
    {"energy_kwh", NULL, 0},
    {"saved_kwh", NULL, 0},
    {"saving_pct", NULL, 1},
    {"aware.start", NULL, 0},
    {"aware.end", NULL, 0},
    {"aware.increase_pp", NULL, 1},
    {"aware.target_pp", NULL, 1},
    {"applying.start", NULL, 0},
    {"applying.end", NULL, 0},
    {"applying.increase_pp", NULL, 1},
    {"applying.target_pp", NULL, 1},
    {"name", NULL, ENPI_OUT_TEXT},
    {"target_pct", NULL, 1},
    {"stretch_pct", NULL, 1},
    {"projection.energy_kwh", NULL, 0},
    {"projection.expected_kwh", NULL, 0},
    {"projection.saved_kwh", NULL, 0},
    {"projection.saving_pct", NULL, 1},
};

#define TABLE_WIDTH 100

/* The table's model column; "reg*" marks a poor regression fit. */
static const char *model_short(const enpi_report_facility_t *f)
{
    if (f->model == ENPI_BASELINE_REGRESSION)
        return f->has_fit && f->fit.poor_fit ? "reg*" : "reg";
    if (f->model == ENPI_BASELINE_SEC)
        return f->fixed_sec ? "fixed" : "sec";
    return "-";
}

static void put_time(enpi_out_t *o, const enpi_tz_t *tz, int64_t t)
{
    char buf[48];
    if (enpi_tz_format(tz, t, buf, sizeof buf) >= 0)
        enpi_out_str(o, buf);
    else
        enpi_out_null(o);
}

/* Width of a real as the table prints it ("-" for null). */
static size_t real_width(double v, int decimals)
{
    char buf[64];
    if (!isfinite(v))
        return 1;
    return (size_t)snprintf(buf, sizeof buf, "%.*f", decimals, v);
}

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* Columns left for the name in a table line of TABLE_WIDTH: the widths the writer will
 * give the other shown columns (same formats), plus two blanks between columns. */
static size_t name_budget(const enpi_report_t *r)
{
    size_t w[8] = {strlen("facility"),   strlen("model"),     strlen("sec"),     strlen("base_sec"),
                   strlen("energy_kwh"), strlen("saved_kwh"), strlen("saving%"), strlen("status")};
    for (size_t i = 0; i < r->n_facilities; i++) {
        const enpi_report_facility_t *f = &r->facilities[i];
        w[0] = max_sz(w[0], enpi_report_text_width(f->id));
        w[1] = max_sz(w[1], strlen(model_short(f)));
        w[2] = max_sz(w[2], real_width(f->sec, 2));
        w[3] = max_sz(w[3], real_width(f->baseline_sec, 2));
        w[4] = max_sz(w[4], real_width(f->energy_kwh, 0));
        w[5] = max_sz(w[5], real_width(f->saved_kwh, 0));
        w[6] = max_sz(w[6], real_width(f->saving_pct, 1));
        w[7] = max_sz(w[7], strlen(enpi_report_status_name(f->status)));
    }
    size_t used = 2 * 8;
    for (size_t i = 0; i < 8; i++)
        used += w[i];
    return used + 12 <= TABLE_WIDTH ? TABLE_WIDTH - used : 12;
}

static void put_facility(enpi_out_t *o, const enpi_report_facility_t *f, size_t name_width)
{
    char name[512];
    enpi_out_row(o);
    enpi_out_str(o, f->id);
    enpi_out_str(o, f->name);
    enpi_out_str(o, model_name(f->model));
    enpi_out_str(o, model_short(f));
    enpi_out_real(o, f->energy_kwh);
    enpi_out_real(o, f->units);
    enpi_out_real(o, f->sec);
    enpi_out_real(o, f->baseline_sec);
    enpi_out_real(o, f->energy_kwh);
    enpi_out_real(o, f->expected_kwh);
    enpi_out_real(o, f->saved_kwh);
    enpi_out_real(o, f->saving_pct);
    enpi_out_str(o, enpi_report_status_name(f->status));
    if (f->model == ENPI_BASELINE_REGRESSION) {
        enpi_out_real(o, f->fit.a);
        enpi_out_real(o, f->fit.b);
        enpi_out_real(o, f->fit.r2);
        enpi_out_uint(o, f->has_fit ? f->fit.n : 0);
    } else {
        for (int k = 0; k < 4; k++)
            enpi_out_null(o);
    }
    if (f->has_fit)
        enpi_out_bool(o, f->fit.poor_fit);
    else
        enpi_out_null(o);
    enpi_out_str(o, f->no_data_reason);
    enpi_out_str(o, f->model == ENPI_BASELINE_NONE ? NULL : f->fixed_sec ? "fixed" : "period");
    enpi_out_str(o, f->timezone);
    put_time(o, f->tz, f->from);
    put_time(o, f->tz, f->to);
    if (f->data_end == INT64_MIN)
        enpi_out_null(o);
    else
        put_time(o, f->tz, f->data_end < f->to ? f->data_end : f->to);
    bool proj = !f->complete && f->status != ENPI_REPORT_NO_DATA;
    enpi_out_real(o, proj ? 100.0 * f->covered : NAN);
    enpi_out_real(o, proj ? f->proj_energy_kwh : NAN);
    enpi_out_real(o, proj ? f->proj_expected_kwh : NAN);
    enpi_out_real(o, proj ? f->proj_saved_kwh : NAN);
    enpi_out_str(o, enpi_report_truncate(f->name, name_width, name, sizeof name));
}

static void put_uptake(enpi_out_t *o, const enpi_report_uptake_t *u)
{
    enpi_out_uint(o, u->start);
    enpi_out_uint(o, u->end);
    enpi_out_real(o, u->increase_pp);
    enpi_out_real(o, u->target_pp);
}

static void put_programme(enpi_out_t *o, const enpi_report_t *r)
{
    const enpi_report_programme_t *p = &r->programme_figures;
    const enpi_report_projection_t *pr = &r->projection;
    enpi_out_row(o);
    put_time(o, r->tz, r->from);
    put_time(o, r->tz, r->to);
    enpi_out_uint(o, p->facilities);
    enpi_out_uint(o, p->with_data);
    enpi_out_uint(o, p->met);
    enpi_out_uint(o, p->stretch_met);
    enpi_out_real(o, p->met_pct);
    enpi_out_real(o, p->stretch_met_pct);
    enpi_out_real(o, p->expected_kwh);
    enpi_out_real(o, p->energy_kwh);
    enpi_out_real(o, p->saved_kwh);
    enpi_out_real(o, p->saving_pct);
    put_uptake(o, &p->aware);
    put_uptake(o, &p->applying);
    enpi_out_str(o, r->programme);
    enpi_out_real(o, r->target_pct);
    enpi_out_real(o, r->stretch_pct);
    enpi_out_real(o, pr->needed ? pr->energy_kwh : NAN);
    enpi_out_real(o, pr->needed ? pr->expected_kwh : NAN);
    enpi_out_real(o, pr->needed ? pr->saved_kwh : NAN);
    enpi_out_real(o, pr->needed ? pr->saving_pct : NAN);
}

/* "12.3" or "-" for a percentage or a count that may not apply. */
static const char *fmt_real(double v, int decimals, char *buf, size_t n)
{
    if (!isfinite(v))
        return "-";
    snprintf(buf, n, "%.*f", decimals, v);
    return buf;
}

/* The table's footer: fits, reasons, programme figures, projection. */
static void table_footer(const enpi_report_t *r, FILE *out)
{
    const enpi_report_programme_t *p = &r->programme_figures;
    char a[48], b[48], c[48], e[48];
    enpi_tz_format(r->tz, r->from, a, sizeof a);
    enpi_tz_format(r->tz, r->to, b, sizeof b);
    fprintf(out, "\nPeriod %s .. %s, read in each facility's time zone.\n", a, b);
    fprintf(out, "Target: a saving of %s %% in SEC against the baseline; stretch %s %%.\n",
            fmt_real(r->target_pct, 1, c, sizeof c), fmt_real(r->stretch_pct, 1, e, sizeof e));
    bool any_fit = false;
    for (size_t i = 0; i < r->n_facilities; i++) {
        const enpi_report_facility_t *f = &r->facilities[i];
        if (!f->has_fit || !f->fit.ok)
            continue;
        if (!any_fit)
            fprintf(out, "Regressions E = a + b x U per day (reg* = poor fit: n < 10 or "
                         "R2 < 0.5; shown, not hidden):\n");
        any_fit = true;
        fprintf(out, "  %-10s a = %.3f kWh/day, b = %.4f kWh/unit, R2 = %s, n = %zu%s\n", f->id,
                f->fit.a, f->fit.b, fmt_real(f->fit.r2, 3, c, sizeof c), f->fit.n,
                f->fit.poor_fit ? "  (poor fit)" : "");
    }
    bool any_nd = false;
    for (size_t i = 0; i < r->n_facilities; i++) {
        const enpi_report_facility_t *f = &r->facilities[i];
        if (f->status != ENPI_REPORT_NO_DATA)
            continue;
        if (!any_nd)
            fprintf(out, "No data (counted, not dropped):\n");
        any_nd = true;
        fprintf(out, "  %-10s %s\n", f->id, f->no_data_reason ? f->no_data_reason : "-");
    }
    char name[256];
    fprintf(out, "Programme%s%s\n", r->programme ? ": " : "",
            r->programme ? enpi_report_truncate(r->programme, TABLE_WIDTH - 11, name, sizeof name)
                         : "");
    fprintf(out,
            "  %zu facilities, %zu with data; met %zu (%s %% of those with data), "
            "stretch met %zu (%s %%)\n",
            p->facilities, p->with_data, p->met, fmt_real(p->met_pct, 1, a, sizeof a),
            p->stretch_met, fmt_real(p->stretch_met_pct, 1, b, sizeof b));
    fprintf(out, "  expected %.0f kWh, used %.0f kWh, saved %.0f kWh (%s %%)\n", p->expected_kwh,
            p->energy_kwh, p->saved_kwh, fmt_real(p->saving_pct, 2, a, sizeof a));
    const enpi_report_uptake_t *u[2] = {&p->aware, &p->applying};
    const char *label[2] = {"aware", "applying"};
    for (int k = 0; k < 2; k++)
        fprintf(out, "  %-8s %zu at start, %zu at end: %s pp of all facilities (target %s pp)\n",
                label[k], u[k]->start, u[k]->end, fmt_real(u[k]->increase_pp, 1, a, sizeof a),
                fmt_real(u[k]->target_pp, 1, b, sizeof b));
    const enpi_report_projection_t *pr = &r->projection;
    if (pr->needed) {
        fprintf(out, "Projection to period end, assuming each facility keeps its saving rate: "
                     "its energy,\n  expected and saved are scaled by period length / "
                     "the length its data covers so far.\n");
        fprintf(out, "  expected %.0f kWh, used %.0f kWh, saved %.0f kWh (%s %%)\n",
                pr->expected_kwh, pr->energy_kwh, pr->saved_kwh,
                fmt_real(pr->saving_pct, 2, a, sizeof a));
        fprintf(out,
                "  %zu facilities projected, %zu with no data inside the period counted "
                "as they are\n",
                pr->projected, pr->unprojectable);
    }
}

static int write_rows(const enpi_report_t *r, enpi_out_format_t fmt, enpi_cli_diag_t *d)
{
    enpi_out_t *o;
    int rc =
        enpi_out_create(fmt, facility_cols, sizeof facility_cols / sizeof facility_cols[0], &o);
    if (rc)
        return enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
    size_t budget = name_budget(r);
    for (size_t i = 0; i < r->n_facilities; i++)
        put_facility(o, &r->facilities[i], budget);
    if ((rc = enpi_cli_emit(o, d)) != 0)
        return rc;
    if (fmt == ENPI_OUT_TABLE) {
        table_footer(r, stdout);
        if (fflush(stdout) != 0 || ferror(stdout))
            return enpi_cli_fail(d, ENPI_EIO, "cannot write the output");
        return 0;
    }
    /* CSV: a blank line, then the programme as a second table with its own header. */
    fputs("\r\n", stdout);
    rc = enpi_out_create(fmt, programme_cols, sizeof programme_cols / sizeof programme_cols[0], &o);
    if (rc)
        return enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
    put_programme(o, r);
    return enpi_cli_emit(o, d);
}

int enpi_cmd_report(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    const char *period = NULL, *facility = NULL, *pdf = NULL;
    const enpi_cli_opt_t opts[] = {
        {"period", 0, true, &period, NULL},
        {"facility", 0, true, &facility, NULL},
        {"pdf", 0, true, &pdf, NULL},
    };
    int rc = enpi_cli_cmd_args(g, argc, argv, opts, sizeof opts / sizeof opts[0], help, d);
    if (rc || g->help)
        return rc;
    enpi_out_format_t fmt;
    if ((rc = enpi_cli_format(g, &fmt, d)) != 0)
        return rc;
    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    enpi_report_t r;
    enpi_report_opts_t ro = {period, facility};
    if ((rc = enpi_report_build(&ctx, &ro, &r, d)) != 0)
        goto close_ctx;
    /* The PDF first: when it cannot be written, nothing is printed. */
    if (pdf && (rc = enpi_report_pdf(pdf, &r, &ctx, d)) != 0)
        goto free_report;
    rc = fmt == ENPI_OUT_JSON ? write_json(&r, d) : write_rows(&r, fmt, d);
free_report:
    enpi_report_free(&r);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
