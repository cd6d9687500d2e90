/*
 * chart_sec.c - the SEC chart of `enpi plot` and `enpi report --pdf`: specific energy
 * consumption per window as a step line against the expected (baseline), target and
 * stretch SEC, with panels of energy and production bars below it on a shared date axis.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart_int.h"
#include "enpi_error.h"

/* ------------------------------------------------------------------ SEC chart */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The expected (baseline) SEC of window i, or NAN. */
static double window_baseline(const enpi_chart_sec_t *c, size_t i)
{
    if (c->baseline == ENPI_CHART_BASELINE_CONSTANT)
        return c->baseline_sec;
    if (c->baseline == ENPI_CHART_BASELINE_WINDOWS)
        return c->windows[i].baseline_sec;
    return NAN;
}

/* Upper end of the SEC axis: the largest SEC or expected SEC of a window, unless some
 * lie far above the rest (a window with a sliver of production): values above the upper
 * quartile plus three interquartile ranges are then clipped and marked. Never below
 * floor_top (a constant baseline). Sets *n_sec to the number of windows with a SEC.
 * NAN when out of memory. */
static double sec_axis_top(const enpi_chart_sec_t *c, double floor_top, int *n_sec)
{
    double *v = malloc((c->n_windows ? 2 * c->n_windows : 1) * sizeof *v);
    size_t n = 0;
    if (!v)
        return NAN;
    *n_sec = 0;
    for (size_t i = 0; i < c->n_windows; i++) {
        if (!(c->windows[i].units > 0))
            continue;
        v[n++] = c->windows[i].energy_kwh / c->windows[i].units;
        (*n_sec)++;
        if (c->baseline == ENPI_CHART_BASELINE_WINDOWS && isfinite(c->windows[i].baseline_sec))
            v[n++] = c->windows[i].baseline_sec;
    }
    double top = floor_top;
    if (n > 0) {
        qsort(v, n, sizeof *v, cmp_double);
        double q1 = v[n / 4], q3 = v[(3 * n) / 4];
        double fence = q3 + 3 * (q3 - q1);
        double mx = v[n - 1];
        if (n >= 8 && mx > fence) {
            size_t k = n;
            while (k > 0 && v[k - 1] > fence)
                k--;
            mx = k > 0 ? v[k - 1] : fence;
        }
        if (!(mx <= top))
            top = mx;
    }
    free(v);
    return top;
}

/* Series with gaps: moves along window steps; pen lifted where a window has no value. */
static void draw_step_series(cairo_t *cr, const enpi_chart_sec_t *c, const panel_t *p,
                             double factor, bool actual, rgb_t col, double lw, double dash)
{
    cairo_save(cr);
    cairo_rectangle(cr, p->x, p->y, p->w, p->h);
    cairo_clip(cr);
    chart_set_rgb(cr, col);
    cairo_set_line_width(cr, lw);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
    if (dash > 0) {
        double d[2] = {dash, dash * 0.6};
        cairo_set_dash(cr, d, 2, 0);
    }
    bool pen = false;
    int64_t prev_end = INT64_MIN;
    for (size_t i = 0; i < c->n_windows; i++) {
        const enpi_chart_window_t *w = &c->windows[i];
        double v = NAN;
        if (w->units > 0)
            v = actual ? w->energy_kwh / w->units : window_baseline(c, i) * factor;
        if (!isfinite(v)) {
            pen = false;
            continue;
        }
        double x0 = enpi_chart_scale_map(&p->sx, (double)w->start);
        double x1 = enpi_chart_scale_map(&p->sx, (double)w->end);
        double y = enpi_chart_scale_map(&p->sy, v);
        if (y < p->y - lw * 4)
            y = p->y - lw * 4; /* clipped outlier: its marker is drawn separately */
        if (pen && w->start == prev_end)
            cairo_line_to(cr, x0, y);
        else
            cairo_move_to(cr, x0, y);
        cairo_line_to(cr, x1, y);
        pen = true;
        prev_end = w->end;
    }
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* Markers for SEC values above the axis: small triangles pointing up at the top edge. */
static void draw_clip_marks(cairo_t *cr, const enpi_chart_sec_t *c, const panel_t *p, double fs)
{
    double top = p->sy.d1;
    cairo_save(cr);
    chart_set_rgb(cr, c_sec);
    for (size_t i = 0; i < c->n_windows; i++) {
        const enpi_chart_window_t *w = &c->windows[i];
        if (!(w->units > 0) || w->energy_kwh / w->units <= top)
            continue;
        double xm = enpi_chart_scale_map(&p->sx, (double)(w->start + (w->end - w->start) / 2));
        double s = fs * 0.35;
        cairo_move_to(cr, xm, p->y + s * 0.2);
        cairo_line_to(cr, xm - s, p->y + s * 1.8);
        cairo_line_to(cr, xm + s, p->y + s * 1.8);
        cairo_close_path(cr);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

/* Single isolated windows (no neighbour with a value) are hard to see as a short step:
 * give them a dot. */
static void draw_isolated_dots(cairo_t *cr, const enpi_chart_sec_t *c, const panel_t *p, double lw)
{
    cairo_save(cr);
    cairo_rectangle(cr, p->x, p->y, p->w, p->h);
    cairo_clip(cr);
    chart_set_rgb(cr, c_sec);
    for (size_t i = 0; i < c->n_windows; i++) {
        const enpi_chart_window_t *w = &c->windows[i];
        if (!(w->units > 0))
            continue;
        bool left = i > 0 && c->windows[i - 1].end == w->start && c->windows[i - 1].units > 0;
        bool right = i + 1 < c->n_windows && c->windows[i + 1].start == w->end &&
                     c->windows[i + 1].units > 0;
        double x0 = enpi_chart_scale_map(&p->sx, (double)w->start);
        double x1 = enpi_chart_scale_map(&p->sx, (double)w->end);
        if ((left || right) && x1 - x0 >= lw * 2)
            continue;
        double y = enpi_chart_scale_map(&p->sy, w->energy_kwh / w->units);
        cairo_arc(cr, (x0 + x1) / 2, y, lw * 1.4, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

/* Bars of energy or units per window, from 0. */
static void draw_bars(cairo_t *cr, const enpi_chart_sec_t *c, const panel_t *p, bool energy,
                      rgb_t col, double gap_max)
{
    cairo_save(cr);
    cairo_rectangle(cr, p->x, p->y, p->w, p->h);
    cairo_clip(cr);
    chart_set_rgb(cr, col);
    for (size_t i = 0; i < c->n_windows; i++) {
        const enpi_chart_window_t *w = &c->windows[i];
        double v = energy ? w->energy_kwh : w->units;
        if (!(v > 0))
            continue;
        double x0 = enpi_chart_scale_map(&p->sx, (double)w->start);
        double x1 = enpi_chart_scale_map(&p->sx, (double)w->end);
        double gap = (x1 - x0) > 4 ? fmin((x1 - x0) * 0.12, gap_max) : 0;
        double y0 = enpi_chart_scale_map(&p->sy, 0);
        double y1 = enpi_chart_scale_map(&p->sy, v);
        cairo_rectangle(cr, x0 + gap / 2, y1, (x1 - x0) - gap, y0 - y1);
    }
    cairo_fill(cr);
    cairo_restore(cr);
}

/* The legend's running position: entries flow left to right and wrap at x_max. */
typedef struct {
    double x0;    /* left edge */
    double x_max; /* right edge */
    double x;     /* where the next entry starts */
    double y;     /* centre line of the current row */
    double fs;
} legend_t;

/* One legend entry: a line sample and its text, on a new row when it does not fit. */
static void legend_item(cairo_t *cr, legend_t *lg, const char *label, rgb_t col, double lw,
                        double dash)
{
    double fs = lg->fs, sample = fs * 2.2;
    double width = sample + fs * 0.4 + chart_text_width(cr, label, fs * 0.9, false);
    if (lg->x > lg->x0 && lg->x + width > lg->x_max) {
        lg->x = lg->x0;
        lg->y += fs * 1.4;
    }
    chart_stroke_line(cr, lg->x, lg->y, lg->x + sample, lg->y, col, lw, dash);
    chart_set_rgb(cr, c_text);
    chart_draw_text(cr, label, lg->x + sample + fs * 0.4, lg->y, fs * 0.9, false, false, 0, 0.5, 0,
                    false);
    lg->x += width + fs * 1.4;
}

static void tz_caption(const enpi_tz_t *tz, int64_t t, char *buf, size_t n)
{
    int off = enpi_tz_offset_s(tz, t);
    int a = off < 0 ? -off : off;
    if (a % 3600)
        snprintf(buf, n, "Local time, %s (UTC%c%02d:%02d)", enpi_tz_name(tz), off < 0 ? '-' : '+',
                 a / 3600, a % 3600 / 60);
    else
        snprintf(buf, n, "Local time, %s (UTC%c%d)", enpi_tz_name(tz), off < 0 ? '-' : '+',
                 a / 3600);
}

int enpi_chart_draw_sec(cairo_t *cr, double x, double y, double w, double h,
                        const enpi_chart_sec_t *c)
{
    double fs = c->font_size > 0 ? c->font_size : 12;
    const char *unit = c->product_unit && *c->product_unit ? c->product_unit : "unit";
    double lw = fs * 0.16;
    char buf[256];
    int rc = 0;
    cairo_save(cr);

    /* title, subtitle */
    double cy = y;
    chart_set_rgb(cr, c_text);
    cy +=
        chart_draw_text(cr, c->title ? c->title : "", x, cy, fs * 1.45, true, false, 0, 0, w, true);
    if (c->subtitle) {
        chart_set_rgb(cr, c_muted);
        cy += chart_draw_text(cr, c->subtitle, x, cy, fs * 0.95, false, false, 0, 0, w, true);
    }
    cy += fs * 0.5;

    /* legend */
    legend_t lg = {x, x + w, x, cy + fs * 0.7, fs};
    snprintf(buf, sizeof buf, "SEC (kWh/%s)", unit);
    legend_item(cr, &lg, buf, c_sec, lw, 0);
    char v1[48], v2[48], v3[48];
    if (c->baseline == ENPI_CHART_BASELINE_CONSTANT) {
        int dec = c->baseline_sec < 100 ? 3 : 1;
        enpi_chart_format_value(c->baseline_sec, dec, v1, sizeof v1);
        enpi_chart_format_value(c->baseline_sec * (1 - c->target_pct / 100), dec, v2, sizeof v2);
        enpi_chart_format_value(c->baseline_sec * (1 - c->stretch_pct / 100), dec, v3, sizeof v3);
        snprintf(buf, sizeof buf, "Baseline %s", v1);
        legend_item(cr, &lg, buf, c_base, lw * 0.8, fs * 0.5);
        snprintf(buf, sizeof buf, "Target -%g %% (%s)", c->target_pct, v2);
        legend_item(cr, &lg, buf, c_target, lw * 0.8, fs * 0.5);
        snprintf(buf, sizeof buf, "Stretch -%g %% (%s)", c->stretch_pct, v3);
        legend_item(cr, &lg, buf, c_stretch, lw * 0.8, fs * 0.5);
    } else if (c->baseline == ENPI_CHART_BASELINE_WINDOWS) {
        legend_item(cr, &lg, "Baseline (regression, expected SEC)", c_base, lw * 0.8, fs * 0.5);
        snprintf(buf, sizeof buf, "Target -%g %%", c->target_pct);
        legend_item(cr, &lg, buf, c_target, lw * 0.8, fs * 0.5);
        snprintf(buf, sizeof buf, "Stretch -%g %%", c->stretch_pct);
        legend_item(cr, &lg, buf, c_stretch, lw * 0.8, fs * 0.5);
    } else if (!c->note || !*c->note) {
        chart_set_rgb(cr, c_muted);
        chart_draw_text(cr, "No baseline: no target lines", lg.x, lg.y, fs * 0.9, false, true, 0,
                        0.5, 0, false);
    }
    double ly = lg.y;
    cy = ly + fs * 1.0;
    if (c->note && *c->note) {
        chart_set_rgb(cr, c_notmet);
        cy += chart_draw_text(cr, c->note, x, cy, fs * 0.9, false, true, 0, 0, w, false);
    }
    cy += fs * 0.6;

    /* the value ranges */
    double lines_min = INFINITY, e_max = 0, u_max = 0;
    for (size_t i = 0; i < c->n_windows; i++) {
        const enpi_chart_window_t *win = &c->windows[i];
        if (win->energy_kwh > e_max)
            e_max = win->energy_kwh;
        if (win->units > u_max)
            u_max = win->units;
        double b = window_baseline(c, i);
        if (win->units > 0 && isfinite(b) && b * (1 - c->stretch_pct / 100) < lines_min)
            lines_min = b * (1 - c->stretch_pct / 100);
    }
    double floor_top = -INFINITY;
    if (c->baseline == ENPI_CHART_BASELINE_CONSTANT && isfinite(c->baseline_sec)) {
        floor_top = c->baseline_sec;
        lines_min = c->baseline_sec * (1 - c->stretch_pct / 100);
    }
    int n_sec = 0;
    double sec_top = sec_axis_top(c, floor_top, &n_sec);
    if (isnan(sec_top)) {
        rc = ENPI_ENOMEM;
        goto restore;
    }
    double sec_min = lines_min;
    for (size_t i = 0; i < c->n_windows; i++)
        if (c->windows[i].units > 0 && c->windows[i].energy_kwh / c->windows[i].units < sec_min)
            sec_min = c->windows[i].energy_kwh / c->windows[i].units;
    if (!isfinite(sec_min))
        sec_min = 0;
    if (!isfinite(sec_top) || sec_top < sec_min)
        sec_top = sec_min;
    /* start at 0 unless the data sit far above it */
    if (sec_min > 0 && sec_min < 0.35 * sec_top)
        sec_min = 0;
    else if (sec_top > sec_min)
        sec_min -= (sec_top - sec_min) * 0.08;
    if (sec_min < 0)
        sec_min = 0;
    if (sec_top > sec_min)
        sec_top += (sec_top - sec_min) * 0.05;

    /* layout: left margin from the widest tick label, bottom from the date labels */
    double x_label_h = fs * 2.1 * 1.15 + fs * 1.6; /* two lines of ticks + the axis caption */
    double plot_top = cy, plot_bottom = y + h - x_label_h;
    double avail = plot_bottom - plot_top;
    double gap = fs * 1.5;
    panel_t ps = {0}, pe = {0}, pu = {0};
    ps.h = (avail - 2 * gap) * 0.56;
    pe.h = (avail - 2 * gap) * 0.22;
    pu.h = (avail - 2 * gap) * 0.22;
    ps.y = plot_top;
    pe.y = ps.y + ps.h + gap;
    pu.y = pe.y + pe.h + gap;
    chart_panel_value_axis(&ps, sec_min, sec_top, fs);
    chart_panel_value_axis(&pe, 0, e_max > 0 ? e_max : 1, fs);
    chart_panel_value_axis(&pu, 0, u_max > 0 ? u_max : 1, fs);
    double tw = chart_ticks_label_width(cr, &ps.ticks, fs * 0.9);
    double t2 = chart_ticks_label_width(cr, &pe.ticks, fs * 0.9);
    double t3 = chart_ticks_label_width(cr, &pu.ticks, fs * 0.9);
    if (t2 > tw)
        tw = t2;
    if (t3 > tw)
        tw = t3;
    double left = x + fs * 1.6 + tw + fs * 0.6;
    double right = x + w - fs * 0.8;
    panel_t *panels[3] = {&ps, &pe, &pu};
    for (int i = 0; i < 3; i++) {
        panels[i]->x = left;
        panels[i]->w = right - left;
        panels[i]->sx = (enpi_chart_scale_t){(double)c->from, (double)c->to, left, right};
    }

    /* time grid and labels */
    enpi_chart_time_tick_t *ticks = NULL;
    size_t n_ticks = 0;
    if ((rc = chart_fit_time_ticks(cr, c->tz, &ps.sx, c->from, c->to, fs, &ticks, &n_ticks)) != 0)
        goto restore;
    for (int i = 0; i < 3; i++) {
        double label_x = x + fs * 0.6;
        if (i == 0)
            snprintf(buf, sizeof buf, "SEC (kWh/%s)", unit);
        else if (i == 1)
            snprintf(buf, sizeof buf, "Energy (kWh)");
        else
            snprintf(buf, sizeof buf, "Production (%s)", unit);
        chart_panel_draw_value_axis(cr, panels[i], buf, label_x, fs);
    }
    for (int i = 0; i < 3; i++) {
        double bottom = panels[i]->y + panels[i]->h;
        if (i < 2) {
            for (size_t k = 0; k < n_ticks; k++) {
                double xx = round(enpi_chart_scale_map(&ps.sx, (double)ticks[k].t)) + 0.5;
                chart_stroke_line(cr, xx, panels[i]->y, xx, bottom, c_grid, fs * 0.08, 0);
            }
        } else {
            chart_draw_time_axis(cr, ticks, n_ticks, &pu.sx, pu.y, bottom, x + w, fs);
        }
    }
    free(ticks);
    tz_caption(c->tz, c->from, buf, sizeof buf);
    chart_set_rgb(cr, c_muted);
    chart_draw_text(cr, buf, (left + right) / 2, y + h, fs * 0.9, false, false, 0.5, 1, 0, false);

    /* data */
    draw_bars(cr, c, &pe, true, c_energy, fs * 0.4);
    draw_bars(cr, c, &pu, false, c_prod, fs * 0.4);
    if (c->baseline == ENPI_CHART_BASELINE_CONSTANT && isfinite(c->baseline_sec)) {
        double f[3] = {1, 1 - c->target_pct / 100, 1 - c->stretch_pct / 100};
        rgb_t col[3] = {c_base, c_target, c_stretch};
        for (int i = 0; i < 3; i++) {
            double yy = enpi_chart_scale_map(&ps.sy, c->baseline_sec * f[i]);
            chart_stroke_line(cr, ps.x, yy, ps.x + ps.w, yy, col[i], lw * 0.8, fs * 0.5);
        }
    } else if (c->baseline == ENPI_CHART_BASELINE_WINDOWS) {
        draw_step_series(cr, c, &ps, 1, false, c_base, lw * 0.8, fs * 0.5);
        draw_step_series(cr, c, &ps, 1 - c->target_pct / 100, false, c_target, lw * 0.8, fs * 0.5);
        draw_step_series(cr, c, &ps, 1 - c->stretch_pct / 100, false, c_stretch, lw * 0.8,
                         fs * 0.5);
    }
    draw_step_series(cr, c, &ps, 1, true, c_sec, lw, 0);
    draw_isolated_dots(cr, c, &ps, lw);
    draw_clip_marks(cr, c, &ps, fs);
    if (n_sec == 0) {
        chart_set_rgb(cr, c_muted);
        chart_draw_text(cr, "No window with production in this period", ps.x + ps.w / 2,
                        ps.y + ps.h / 2, fs * 1.1, false, true, 0.5, 0.5, 0, false);
    }
restore:
    cairo_restore(cr);
    return rc;
}
