/*
 * pdf.c - `enpi report --pdf FILE`: the printable programme report. A4 portrait; page 1
 * is the summary (programme, period, the programme figures of SPEC §6 incl. awareness
 * and uptake, and a bar chart of every facility's saving against the target and stretch
 * lines), then one page per facility (its figures, the baseline model with the
 * regression fit where there is one, and its SEC chart over the period).
 *
 * Everything is drawn by cli/chart_*.c into one cairo PDF surface, text through pango, so
 * Vietnamese names come out shaped and selectable (pdftotext finds them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chart.h"
#include "enpi_error.h"
#include "fetch.h"
#include "pdf.h"
#include "report.h"
#include "window.h"

#define A4_W 595.276 /* points */
#define A4_H 841.89
#define MARGIN 42.0
#define FS 9.0 /* body text size, points */
#define DAY_MS 86400000LL

/* ------------------------------------------------------------------ shared with plot */

/* Local days in a window: whole local days for windows of a day or longer (so a 23- or
 * 25-hour day counts 1), else the fraction of 24 hours. */
static double window_days(const enpi_tz_t *tz, int64_t start, int64_t end)
{
    if (end - start < 20 * 3600000LL)
        return (double)(end - start) / (double)DAY_MS;
    int days = 0;
    for (int64_t t = start; t < end && days < 400; days++)
        t = enpi_tz_day_shift(tz, t, 1);
    return days;
}

void enpi_pdf_chart_baseline(const enpi_report_facility_t *f, const enpi_tz_t *tz,
                             enpi_chart_window_t *w, size_t n, enpi_chart_sec_t *c, char *note,
                             size_t note_len)
{
    if (f->model == ENPI_BASELINE_SEC) {
        if (isfinite(f->baseline_sec)) {
            c->baseline = ENPI_CHART_BASELINE_CONSTANT;
            c->baseline_sec = f->baseline_sec;
        } else {
            snprintf(note, note_len, "No baseline SEC: %s",
                     f->no_data_reason ? f->no_data_reason : "no data in the baseline period");
        }
        return;
    }
    if (f->model == ENPI_BASELINE_REGRESSION) {
        if (!f->has_fit || !f->fit.ok) {
            snprintf(note, note_len, "No regression baseline: %s",
                     f->no_data_reason ? f->no_data_reason : "too few baseline days to fit");
            return;
        }
        c->baseline = ENPI_CHART_BASELINE_WINDOWS;
        for (size_t i = 0; i < n; i++) {
            if (w[i].units > 0)
                w[i].baseline_sec =
                    (f->fit.a * window_days(tz, w[i].start, w[i].end) + f->fit.b * w[i].units) /
                    w[i].units;
        }
        if (f->fit.poor_fit)
            snprintf(note, note_len,
                     "Poor regression fit (n = %zu, R\xc2\xb2 = %.2f): the expected SEC is "
                     "uncertain",
                     f->fit.n, f->fit.r2);
        return;
    }
    snprintf(note, note_len, "No baseline configured for this facility");
}

/* ------------------------------------------------------------------ text helpers */

static void fmt_num(double v, int decimals, char *buf, size_t n)
{
    if (!isfinite(v))
        snprintf(buf, n, "\xe2\x80\x94"); /* em dash: does not apply */
    else
        enpi_chart_format_value(v, decimals, buf, n);
}

/* "1 234.5 kWh", or an em dash alone when the figure does not apply. */
static void fmt_qty(double v, int decimals, const char *unit, char *buf, size_t n)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "\xe2\x80\x94");
        return;
    }
    char num[64];
    enpi_chart_format_value(v, decimals, num, sizeof num);
    snprintf(buf, n, "%s %s", num, unit);
}

/* Decimals that show an SEC or a per-unit figure sensibly. */
static int sec_decimals(double v)
{
    double a = fabs(v);
    return a >= 100 ? 1 : a >= 1 ? 3 : 4;
}

static void civil_text(const enpi_civil_t *c, char *buf, size_t n)
{
    if (c->has_time && (c->hour || c->minute || c->second))
        snprintf(buf, n, "%04d-%02d-%02d %02d:%02d", c->year, c->month, c->day, c->hour, c->minute);
    else
        snprintf(buf, n, "%04d-%02d-%02d", c->year, c->month, c->day);
}

static void instant_text(const enpi_tz_t *tz, int64_t t, char *buf, size_t n)
{
    enpi_civil_t c;
    enpi_tz_to_civil(tz, t, &c);
    civil_text(&c, buf, n);
}

static const char *status_text(enpi_report_status_t s)
{
    switch (s) {
    case ENPI_REPORT_STRETCH_MET:
        return "stretch target met";
    case ENPI_REPORT_MET:
        return "target met";
    case ENPI_REPORT_NOT_MET:
        return "target not met";
    case ENPI_REPORT_NO_DATA:
        break;
    }
    return "no data";
}

/* A page-layout cursor: a two-column table of label and value lines. */
typedef struct {
    cairo_t *cr;
    double y;
    double label_w;
} page_t;

static void row(page_t *p, const char *label, const char *value)
{
    cairo_set_source_rgb(p->cr, 0.35, 0.35, 0.35);
    enpi_chart_text(p->cr, label, MARGIN, p->y, FS, false, 0, p->label_w - 6);
    cairo_set_source_rgb(p->cr, 0.1, 0.1, 0.1);
    double h = enpi_chart_text(p->cr, value, MARGIN + p->label_w, p->y, FS, false, 0,
                               A4_W - 2 * MARGIN - p->label_w);
    p->y += h + FS * 0.35;
}

static void heading(page_t *p, const char *s, double size)
{
    cairo_set_source_rgb(p->cr, 0.1, 0.1, 0.1);
    p->y += enpi_chart_text(p->cr, s, MARGIN, p->y, size, true, 0, A4_W - 2 * MARGIN);
}

static void muted(page_t *p, const char *s)
{
    cairo_set_source_rgb(p->cr, 0.4, 0.4, 0.4);
    p->y += enpi_chart_text(p->cr, s, MARGIN, p->y, FS, false, 0, A4_W - 2 * MARGIN);
}

static void rule(page_t *p)
{
    p->y += FS * 0.6;
    cairo_set_source_rgb(p->cr, 0.8, 0.8, 0.8);
    cairo_set_line_width(p->cr, 0.6);
    cairo_move_to(p->cr, MARGIN, p->y);
    cairo_line_to(p->cr, A4_W - MARGIN, p->y);
    cairo_stroke(p->cr);
    p->y += FS * 0.8;
}

static void footer(cairo_t *cr, const enpi_report_t *r, int page, int pages)
{
    char buf[256], when[64];
    time_t now = (time_t)(r->now_ms / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(buf, sizeof buf, "enpi report \xc2\xb7 generated %s \xc2\xb7 page %d of %d", when,
             page, pages);
    cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
    enpi_chart_text(cr, buf, A4_W / 2, A4_H - MARGIN * 0.6 - FS, FS * 0.85, false, 0.5, 0);
}

/* ------------------------------------------------------------------ summary page */

static void uptake_text(const enpi_report_uptake_t *u, size_t total, char *buf, size_t n)
{
    char inc[48] = "", tgt[64] = "";
    if (isfinite(u->increase_pp))
        snprintf(inc, sizeof inc, "; %+.1f pp", u->increase_pp);
    if (isfinite(u->target_pp))
        snprintf(tgt, sizeof tgt, " (target %+.1f pp: %s)", u->target_pp,
                 isfinite(u->increase_pp) && u->increase_pp >= u->target_pp ? "met" : "not met");
    snprintf(buf, n, "%zu at period start \xe2\x86\x92 %zu at period end, of %zu facilities%s%s",
             u->start, u->end, total, inc, tgt);
}

static int summary_page(cairo_t *cr, const enpi_report_t *r)
{
    const enpi_report_programme_t *pg = &r->programme_figures;
    char buf[512], a[64], b[64], c[64];
    page_t p = {cr, MARGIN, 150};
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    p.y += enpi_chart_text(cr, "Cleaner production programme report", MARGIN, p.y, FS, false, 0, 0);
    heading(&p, r->programme ? r->programme : "Programme", 17);
    civil_text(&r->period_from, a, sizeof a);
    civil_text(&r->period_to, b, sizeof b);
    snprintf(buf, sizeof buf,
             "Reporting period %s to %s (end exclusive, in each facility's local time)", a, b);
    muted(&p, buf);
    rule(&p);

    snprintf(buf, sizeof buf, "%zu registered, %zu with data, %zu without (no_data)",
             pg->facilities, pg->with_data, pg->facilities - pg->with_data);
    row(&p, "Facilities", buf);
    fmt_num(pg->met_pct, 1, a, sizeof a);
    snprintf(buf, sizeof buf, "%zu (%s %% of those with data)", pg->met, a);
    snprintf(b, sizeof b, "Met the target (\xe2\x89\xa5 %g %%)", r->target_pct);
    row(&p, b, buf);
    fmt_num(pg->stretch_met_pct, 1, a, sizeof a);
    snprintf(buf, sizeof buf, "%zu (%s %% of those with data)", pg->stretch_met, a);
    snprintf(b, sizeof b, "Met the stretch (\xe2\x89\xa5 %g %%)", r->stretch_pct);
    row(&p, b, buf);
    fmt_num(pg->expected_kwh, 0, a, sizeof a);
    snprintf(buf, sizeof buf, "%s kWh (baseline SEC \xc3\x97 production)", a);
    row(&p, "Expected energy", buf);
    fmt_num(pg->energy_kwh, 0, a, sizeof a);
    snprintf(buf, sizeof buf, "%s kWh", a);
    row(&p, "Energy used", buf);
    fmt_num(pg->saved_kwh, 0, a, sizeof a);
    fmt_num(pg->saving_pct, 1, c, sizeof c);
    snprintf(buf, sizeof buf, "%s kWh \xc2\xb7 programme saving %s %%", a, c);
    row(&p, "Saved", buf);
    uptake_text(&pg->aware, pg->facilities, buf, sizeof buf);
    row(&p, "Aware of cleaner production", buf);
    uptake_text(&pg->applying, pg->facilities, buf, sizeof buf);
    row(&p, "Applying cleaner production", buf);
    if (r->projection.needed) {
        fmt_num(r->projection.saving_pct, 1, a, sizeof a);
        fmt_num(r->projection.saved_kwh, 0, b, sizeof b);
        snprintf(buf, sizeof buf,
                 "saving %s %%, %s kWh saved, if each facility's rate so far persists "
                 "(%zu facilities scaled up from partial data, %zu without data in the "
                 "period counted as they are)",
                 a, b, r->projection.projected, r->projection.unprojectable);
        row(&p, "Projected to period end", buf);
    }
    rule(&p);
    heading(&p, "SEC saving per facility", 11);
    muted(&p, "Saving of specific energy consumption (SEC) against each facility's baseline "
              "over the period. Dark green: stretch met; light green: target met; red: not "
              "met; dashed lines: the target and stretch savings.");
    p.y += FS * 0.5;

    enpi_chart_bar_t *bars = calloc(r->n_facilities ? r->n_facilities : 1, sizeof *bars);
    if (!bars)
        return ENPI_ENOMEM;
    for (size_t i = 0; i < r->n_facilities; i++) {
        const enpi_report_facility_t *f = &r->facilities[i];
        bars[i].label = f->name ? f->name : f->id;
        bars[i].has_value = f->status != ENPI_REPORT_NO_DATA && isfinite(f->saving_pct);
        bars[i].saving_pct = f->saving_pct;
    }
    int rc = enpi_chart_draw_savings(cr, MARGIN, p.y, A4_W - 2 * MARGIN,
                                     A4_H - MARGIN * 1.4 - FS * 2 - p.y, bars, r->n_facilities,
                                     r->target_pct, r->stretch_pct, FS);
    free(bars);
    return rc;
}

/* ------------------------------------------------------------------ facility pages */

/* The finest configured resolution that gives at most 120 windows over [from, to);
 * else the coarsest. */
static enpi_duration_t chart_resolution(const enpi_config_t *cfg, int64_t from, int64_t to)
{
    const enpi_pipeline_cfg_t *pc = &cfg->pipeline;
    enpi_duration_t best = pc->resolutions[0];
    double best_len = 0, fine_ok_len = INFINITY;
    bool have_ok = false;
    for (size_t i = 0; i < pc->n_resolutions; i++) {
        const enpi_duration_t *d = &pc->resolutions[i];
        double len = d->months ? d->months * 30.44 * DAY_MS : (double)d->ms;
        double count = (double)(to - from) / len;
        if (count <= 120 && len < fine_ok_len) {
            fine_ok_len = len;
            best = *d;
            have_ok = true;
        }
        if (!have_ok && len > best_len) {
            best_len = len;
            best = *d;
        }
    }
    return best;
}

static void model_text(const enpi_report_facility_t *f, char *buf, size_t n)
{
    char a[64], b[64];
    switch (f->model) {
    case ENPI_BASELINE_SEC:
        if (f->fixed_sec) {
            snprintf(buf, n, "SEC, fixed (energy audit)");
        } else if (f->has_baseline_period) {
            instant_text(f->tz, f->base_from, a, sizeof a);
            instant_text(f->tz, f->base_to, b, sizeof b);
            snprintf(buf, n, "SEC of the baseline period %s to %s", a, b);
        } else {
            snprintf(buf, n, "SEC");
        }
        break;
    case ENPI_BASELINE_REGRESSION:
        if (f->has_baseline_period) {
            instant_text(f->tz, f->base_from, a, sizeof a);
            instant_text(f->tz, f->base_to, b, sizeof b);
            snprintf(buf, n,
                     "regression E = a + b \xc3\x97 U over the baseline days %s to %s; "
                     "expected = \xce\xa3 (a + b \xc3\x97 U) over the period's days",
                     a, b);
        } else {
            snprintf(buf, n, "regression E = a + b \xc3\x97 U");
        }
        break;
    case ENPI_BASELINE_NONE:
        snprintf(buf, n, "none configured");
        break;
    }
}

static int facility_page(cairo_t *cr, const enpi_report_t *r, const enpi_report_facility_t *f,
                         enpi_cli_ctx_t *ctx, enpi_cli_diag_t *d)
{
    char buf[512], a[64], b[64], c[64];
    const char *unit = f->product_unit && *f->product_unit ? f->product_unit : "unit";
    page_t p = {cr, MARGIN, 130};
    heading(&p, f->name ? f->name : f->id, 15);
    snprintf(buf, sizeof buf, "Facility %s \xc2\xb7 product unit %s \xc2\xb7 time zone %s", f->id,
             unit, f->timezone ? f->timezone : enpi_tz_name(f->tz));
    muted(&p, buf);
    rule(&p);

    instant_text(f->tz, f->from, a, sizeof a);
    instant_text(f->tz, f->to, b, sizeof b);
    snprintf(buf, sizeof buf, "%s to %s", a, b);
    row(&p, "Period", buf);
    model_text(f, buf, sizeof buf);
    row(&p, "Baseline model", buf);
    if (f->has_fit) {
        if (f->fit.ok) {
            fmt_num(f->fit.a, 2, a, sizeof a);
            fmt_num(f->fit.b, 4, b, sizeof b);
            fmt_num(f->fit.r2, 3, c, sizeof c);
            snprintf(buf, sizeof buf, "a = %s kWh/day, b = %s kWh/%s, R\xc2\xb2 = %s, n = %zu days",
                     a, b, unit, c, f->fit.n);
        } else {
            snprintf(buf, sizeof buf, "no fit (n = %zu days with production)", f->fit.n);
        }
        row(&p, "Regression", buf);
        if (f->fit.poor_fit) {
            cairo_set_source_rgb(cr, 0.75, 0.2, 0.15);
            p.y += enpi_chart_text(cr,
                                   "Poor fit (n < 10 or R\xc2\xb2 < 0.5): the expected energy "
                                   "and the saving are uncertain.",
                                   MARGIN + p.label_w, p.y, FS, false, 0,
                                   A4_W - 2 * MARGIN - p.label_w) +
                   FS * 0.35;
        }
    }
    fmt_qty(f->energy_kwh, 1, "kWh", buf, sizeof buf);
    row(&p, "Energy", buf);
    fmt_qty(f->units, 1, unit, buf, sizeof buf);
    row(&p, "Production", buf);
    snprintf(c, sizeof c, "kWh/%s", unit);
    fmt_qty(f->sec, sec_decimals(f->sec), c, buf, sizeof buf);
    row(&p, "SEC", buf);
    fmt_qty(f->baseline_sec, sec_decimals(f->baseline_sec), c, buf, sizeof buf);
    row(&p, "Baseline SEC", buf);
    fmt_qty(f->expected_kwh, 1, "kWh", buf, sizeof buf);
    row(&p, "Expected energy", buf);
    fmt_qty(f->saved_kwh, 1, "kWh", buf, sizeof buf);
    row(&p, "Saved", buf);
    if (f->status == ENPI_REPORT_NO_DATA) {
        snprintf(buf, sizeof buf, "no data: %s", f->no_data_reason ? f->no_data_reason : "");
        row(&p, "Saving", buf);
    } else {
        snprintf(buf, sizeof buf, "%.1f %% \xc2\xb7 %s (target %g %%, stretch %g %%)",
                 f->saving_pct, status_text(f->status), r->target_pct, r->stretch_pct);
        row(&p, "Saving", buf);
    }
    if (f->status != ENPI_REPORT_NO_DATA && !f->complete && isfinite(f->covered)) {
        fmt_num(f->proj_saved_kwh, 1, a, sizeof a);
        snprintf(buf, sizeof buf, "data covers %.0f %% of the period; projected saved %s kWh",
                 100 * f->covered, a);
        row(&p, "Projection", buf);
    }
    if (f->has_aware_since || f->has_applying_since) {
        a[0] = b[0] = '\0';
        if (f->has_aware_since)
            instant_text(f->tz, f->aware_since, a, sizeof a);
        if (f->has_applying_since)
            instant_text(f->tz, f->applying_since, b, sizeof b);
        snprintf(buf, sizeof buf, "aware since %s \xc2\xb7 applying since %s",
                 a[0] ? a : "\xe2\x80\x94", b[0] ? b : "\xe2\x80\x94");
        row(&p, "Cleaner production", buf);
    }
    rule(&p);

    /* the SEC chart over the period */
    enpi_duration_t res = chart_resolution(r->cfg, f->from, f->to);
    enpi_cli_row_t *rows = NULL;
    size_t n = 0;
    int rc = enpi_cli_fetch_facility(ctx, f->cfg, &res, f->from, f->to, &rows, &n, d);
    if (rc)
        return rc;
    enpi_chart_window_t *w = calloc(n ? n : 1, sizeof *w);
    if (!w) {
        free(rows);
        return enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        w[i] = (enpi_chart_window_t){rows[i].start, rows[i].end, rows[i].energy_kwh, rows[i].units,
                                     NAN};
    free(rows);
    char note[384] = "", resname[16];
    enpi_duration_format(&res, resname, sizeof resname);
    snprintf(buf, sizeof buf, "SEC per %s window over the period", resname);
    enpi_chart_sec_t chart = {
        .title = "",
        .subtitle = NULL,
        .product_unit = f->product_unit,
        .tz = f->tz,
        .from = f->from,
        .to = f->to,
        .windows = w,
        .n_windows = n,
        .baseline = ENPI_CHART_BASELINE_NONE,
        .target_pct = r->target_pct,
        .stretch_pct = r->stretch_pct,
        .note = note,
        .font_size = FS * 0.95,
    };
    chart.title = buf;
    enpi_pdf_chart_baseline(f, f->tz, w, n, &chart, note, sizeof note);
    double bottom = A4_H - MARGIN * 1.4 - FS * 2;
    if (bottom - p.y < 200)
        p.y = bottom - 200; /* never squeeze the chart below a readable height */
    rc = enpi_chart_draw_sec(cr, MARGIN, p.y, A4_W - 2 * MARGIN, bottom - p.y, &chart);
    free(w);
    if (rc)
        return enpi_cli_fail(d, rc, "out of memory");
    return 0;
}

/* ------------------------------------------------------------------ the file */

/*
 * See report.h. Pages are 1 + r->n_facilities, in r's order. The file appears at path
 * only when complete (enpi_chart_file_*). The facility charts read the store through
 * ctx. Returns 0 or an ENPI_E* code with d filled.
 */
int enpi_report_pdf(const char *path, const enpi_report_t *r, enpi_cli_ctx_t *ctx,
                    enpi_cli_diag_t *d)
{
    enpi_chart_file_t *file;
    cairo_t *cr;
    char err[384];
    int rc = enpi_chart_file_open(path, ENPI_CHART_PDF, A4_W, A4_H, &file, &cr, err, sizeof err);
    if (rc)
        return enpi_cli_fail(d, rc, "%s", rc == ENPI_ENOMEM ? "out of memory" : err);
    int pages = 1 + (int)r->n_facilities;
    if ((rc = summary_page(cr, r)) != 0) {
        rc = enpi_cli_fail(d, rc, "out of memory");
        goto abort_file;
    }
    footer(cr, r, 1, pages);
    for (size_t i = 0; i < r->n_facilities; i++) {
        enpi_chart_file_page(file);
        if ((rc = facility_page(cr, r, &r->facilities[i], ctx, d)) != 0)
            goto abort_file;
        footer(cr, r, (int)i + 2, pages);
    }
    if ((rc = enpi_chart_file_close(file, err, sizeof err)) != 0)
        rc = enpi_cli_fail(d, rc, "%s", err);
    return rc;
abort_file:
    enpi_chart_file_abort(file);
    return rc;
}
