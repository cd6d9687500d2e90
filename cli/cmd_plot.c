/*
 * cmd_plot.c - `enpi plot`: one facility's SEC over time at a resolution, with its
 * baseline, target and stretch lines, and the energy and production beneath (SPEC §7),
 * written as SVG or PNG (PDF too) by cli/chart_*.c.
 *
 * The rows come through fetch.h and the baseline through the report (report.h), so the
 * picture shows exactly the figures `enpi query` and `enpi report` print. For the
 * regression model the baseline is the expected SEC of each window,
 * (a x window_days + b x units) / units, and the target and stretch curves scale it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "fetch.h"
#include "pdf.h"
#include "report.h"

static const char help[] =
    "Usage: enpi plot --facility ID --resolution R --from T --to T -o FILE.svg|FILE.png\n"
    "                 [--size WxH]\n"
    "\n"
    "Draws the facility's SEC (energy per unit of product) per window over [FROM, TO):\n"
    "a step line, with gaps where a window has no production; the baseline SEC and the\n"
    "target and stretch lines (baseline x (1 - programme.target_saving) and\n"
    "x (1 - programme.stretch_saving)); for the regression model the baseline is each\n"
    "window's expected SEC, (a x days + b x units) / units. Beneath: energy (kWh) and\n"
    "production per window. Dates are in the facility's time zone.\n"
    "  --facility ID     a configured facility\n"
    "  --resolution R    one of the configured pipeline.resolutions (15m, 1h, 1d, 1mo)\n"
    "  --from T, --to T  ISO 8601 date or date-time, in the facility's zone unless it\n"
    "                    carries an offset\n"
    "  -o, --output FILE the picture; its extension picks the format: .svg, .png (.pdf)\n"
    "  --size WxH        size in pixels (default 1200x800; 400..8000 each)\n";

static int parse_size(const char *s, double *w, double *h)
{
    char *end;
    long a = strtol(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X'))
        return ENPI_EINVAL;
    const char *p = end + 1;
    long b = strtol(p, &end, 10);
    if (end == p || *end != '\0' || a < 400 || a > 8000 || b < 400 || b > 8000)
        return ENPI_EINVAL;
    *w = (double)a;
    *h = (double)b;
    return 0;
}

/* "2018-01-01" for a local midnight, else "2018-01-01 10:15". */
static void local_text(const enpi_tz_t *tz, int64_t t, char *buf, size_t n)
{
    enpi_civil_t c;
    enpi_tz_to_civil(tz, t, &c);
    if (c.hour == 0 && c.minute == 0 && c.second == 0)
        snprintf(buf, n, "%04d-%02d-%02d", c.year, c.month, c.day);
    else
        snprintf(buf, n, "%04d-%02d-%02d %02d:%02d", c.year, c.month, c.day, c.hour, c.minute);
}

/*
 * The baseline of the plot from the report over the plot's own range (so the subtitle
 * can give the saving over what is shown); when that range is not a whole number of
 * windows, over the programme period (the baseline itself does not depend on it).
 * Returns true with *rep built (free it), false when neither can be built (note set).
 */
static bool plot_report(enpi_cli_ctx_t *ctx, const char *facility, const char *from, const char *to,
                        enpi_report_t *rep, bool *over_plot, char *note, size_t note_len)
{
    char period[256];
    enpi_cli_diag_t scratch = {0};
    enpi_report_opts_t o = {period, facility};
    snprintf(period, sizeof period, "%s..%s", from, to);
    *over_plot = true;
    if (enpi_report_build(ctx, &o, rep, &scratch) == 0)
        return true;
    o.period = NULL;
    *over_plot = false;
    enpi_cli_diag_t scratch2 = {0};
    if (enpi_report_build(ctx, &o, rep, &scratch2) == 0)
        return true;
    snprintf(note, note_len, "Baseline not available: %.300s", scratch.msg);
    return false;
}

int enpi_cmd_plot(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    const char *facility = NULL, *res = NULL, *from = NULL, *to = NULL, *output = NULL;
    const char *size = NULL;
    const enpi_cli_opt_t opts[] = {
        {"facility", 0, true, &facility, NULL}, {"resolution", 0, true, &res, NULL},
        {"from", 0, true, &from, NULL},         {"to", 0, true, &to, NULL},
        {"output", 'o', true, &output, NULL},   {"size", 0, true, &size, NULL},
    };
    int rc = enpi_cli_cmd_args(g, argc, argv, opts, sizeof opts / sizeof opts[0], help, d);
    if (rc || g->help)
        return rc;
    if (!facility)
        return enpi_cli_usage(d, "plot: missing --facility ID");
    if (!res)
        return enpi_cli_usage(d, "plot: missing --resolution R");
    if (!from || !to)
        return enpi_cli_usage(d, "plot: missing --%s T", from ? "to" : "from");
    if (!output)
        return enpi_cli_usage(d, "plot: missing -o FILE.svg|FILE.png");
    enpi_chart_format_t fmt;
    if (enpi_chart_format_of(output, &fmt) != 0)
        return enpi_cli_usage(d, "plot: cannot tell the format of '%s' (use .svg or .png)", output);
    double width = 1200, height = 800;
    if (size && parse_size(size, &width, &height) != 0)
        return enpi_cli_usage(d, "plot: bad --size '%s' (WxH, e.g. 1200x800, 400..8000 each)",
                              size);

    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    enpi_cli_row_t *rows = NULL;
    enpi_chart_window_t *w = NULL;
    size_t n_rows = 0;
    const enpi_facility_cfg_t *f = enpi_config_facility(ctx.cfg, facility);
    if (!f) {
        rc = enpi_cli_fail(d, ENPI_ENOENT, "no facility '%s' in the configuration", facility);
        goto close_ctx;
    }
    enpi_duration_t dur;
    char err[384];
    rc = enpi_cli_parse_resolution(res, ctx.cfg, &dur, err, sizeof err);
    if (rc == ENPI_EPARSE) {
        rc = enpi_cli_usage(d, "%s", err);
        goto close_ctx;
    }
    if (rc) {
        rc = enpi_cli_fail(d, rc, "%s", err);
        goto close_ctx;
    }
    const enpi_tz_t *tz = enpi_cli_ctx_tz(&ctx, f, d);
    if (!tz) {
        rc = ENPI_ENOENT;
        goto close_ctx;
    }
    int64_t t_from, t_to;
    if (enpi_cli_parse_time(from, tz, &t_from) != 0) {
        rc = enpi_cli_usage(d, "bad time '%s' for --from (ISO 8601 date or date-time)", from);
        goto close_ctx;
    }
    if (enpi_cli_parse_time(to, tz, &t_to) != 0) {
        rc = enpi_cli_usage(d, "bad time '%s' for --to (ISO 8601 date or date-time)", to);
        goto close_ctx;
    }
    if (t_from >= t_to) {
        rc = enpi_cli_usage(d, "--from '%s' is not before --to '%s'", from, to);
        goto close_ctx;
    }
    if ((rc = enpi_cli_fetch_facility(&ctx, f, &dur, t_from, t_to, &rows, &n_rows, d)) != 0)
        goto close_ctx;
    w = calloc(n_rows ? n_rows : 1, sizeof *w);
    if (!w) {
        rc = enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
        goto free_rows;
    }
    for (size_t i = 0; i < n_rows; i++)
        w[i] = (enpi_chart_window_t){rows[i].start, rows[i].end, rows[i].energy_kwh, rows[i].units,
                                     NAN};

    char note[384] = "", subtitle[512], a[40], b[40], resname[16];
    local_text(tz, t_from, a, sizeof a);
    local_text(tz, t_to, b, sizeof b);
    enpi_duration_format(&dur, resname, sizeof resname);
    int sl = snprintf(subtitle, sizeof subtitle, "%s \xc2\xb7 %s windows \xc2\xb7 %s to %s", f->id,
                      resname, a, b);
    enpi_chart_sec_t c = {
        .title = f->name ? f->name : f->id,
        .subtitle = subtitle,
        .product_unit = f->product_unit,
        .tz = tz,
        .from = t_from,
        .to = t_to,
        .windows = w,
        .n_windows = n_rows,
        .baseline = ENPI_CHART_BASELINE_NONE,
        .target_pct = ctx.cfg->programme.target_saving_pct,
        .stretch_pct = ctx.cfg->programme.stretch_saving_pct,
        .note = note,
        .font_size = 13 * fmin(width / 1200, height / 800),
    };
    if (c.font_size < 9)
        c.font_size = 9;
    enpi_report_t rep;
    bool over_plot = false;
    if (plot_report(&ctx, f->id, from, to, &rep, &over_plot, note, sizeof note)) {
        if (rep.n_facilities == 1) {
            const enpi_report_facility_t *rf = &rep.facilities[0];
            enpi_pdf_chart_baseline(rf, tz, w, n_rows, &c, note, sizeof note);
            if (over_plot && isfinite(rf->saving_pct) && sl > 0 && (size_t)sl < sizeof subtitle)
                snprintf(subtitle + sl, sizeof subtitle - (size_t)sl,
                         " \xc2\xb7 saving %.1f %% (%s)", rf->saving_pct,
                         enpi_report_status_name(rf->status));
        }
        enpi_report_free(&rep);
    }

    enpi_chart_file_t *file;
    cairo_t *cr;
    if ((rc = enpi_chart_file_open(output, fmt, width, height, &file, &cr, err, sizeof err)) != 0) {
        rc = enpi_cli_fail(d, rc, "%s", rc == ENPI_ENOMEM ? "out of memory" : err);
        goto free_rows;
    }
    double m = c.font_size * 0.9;
    if ((rc = enpi_chart_draw_sec(cr, m, m, width - 2 * m, height - 2 * m, &c)) != 0) {
        enpi_chart_file_abort(file);
        rc = enpi_cli_fail(d, rc, "out of memory");
        goto free_rows;
    }
    if ((rc = enpi_chart_file_close(file, err, sizeof err)) != 0)
        rc = enpi_cli_fail(d, rc, "%s", err);
free_rows:
    free(w);
    free(rows);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
