/*
 * chart_savings.c - the savings bar chart of `enpi report --pdf`: one horizontal bar per
 * facility (its saving in percent), with the programme's target and stretch lines.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart_int.h"
#include "enpi_error.h"

/* ------------------------------------------------------------------ savings chart */

int enpi_chart_draw_savings(cairo_t *cr, double x, double y, double w, double h,
                            const enpi_chart_bar_t *bars, size_t n, double target_pct,
                            double stretch_pct, double font_size)
{
    double fs = font_size > 0 ? font_size : 10;
    char buf[64];
    cairo_save(cr);
    /* value range: always show 0, the target and the stretch lines */
    double lo = 0, hi = stretch_pct > target_pct ? stretch_pct : target_pct;
    for (size_t i = 0; i < n; i++) {
        if (!bars[i].has_value || !isfinite(bars[i].saving_pct))
            continue;
        if (bars[i].saving_pct < lo)
            lo = bars[i].saving_pct;
        if (bars[i].saving_pct > hi)
            hi = bars[i].saving_pct;
    }
    hi += (hi - lo) * 0.04;

    /* rows: shrink the text when many facilities share the height */
    double head = fs * 2.2, foot = fs * 3.2;
    double row_h = n ? (h - head - foot) / (double)n : h;
    if (row_h > fs * 2.6) /* few facilities: compact rows, not fat bars */
        row_h = fs * 2.6;
    double tfs = fs;
    if (row_h < tfs * 1.5)
        tfs = row_h / 1.5;
    if (tfs < 4)
        tfs = 4;
    double label_w = w * 0.36;
    double plot_x = x + label_w + fs * 0.8;
    double plot_w = w - label_w - fs * 0.8 - fs * 3.6; /* room for value labels */

    int max_ticks = (int)(plot_w / (fs * 3.5));
    enpi_chart_ticks_t t;
    if (enpi_chart_nice_ticks(lo, hi, max_ticks < 3 ? 3 : max_ticks, &t) != 0)
        enpi_chart_nice_ticks(0, 15, 4, &t);
    enpi_chart_scale_t sx = {enpi_chart_tick_value(&t, 0), enpi_chart_tick_value(&t, t.n - 1),
                             plot_x, plot_x + plot_w};
    double top = y + head, bottom = top + row_h * (double)n;
    double axis_caption_y = bottom + foot;

    for (int i = 0; i < t.n; i++) {
        double v = enpi_chart_tick_value(&t, i);
        double xx = round(enpi_chart_scale_map(&sx, v)) + 0.5;
        chart_stroke_line(cr, xx, top, xx, bottom, c_grid, fs * 0.08, 0);
        enpi_chart_format_value(v, t.decimals, buf, sizeof buf);
        chart_set_rgb(cr, c_text);
        chart_draw_text(cr, buf, xx, bottom + fs * 0.3, fs * 0.9, false, false, 0.5, 0, 0, false);
    }
    chart_set_rgb(cr, c_text);
    chart_draw_text(cr, "SEC saving against the baseline (%)", plot_x + plot_w / 2, axis_caption_y,
                    fs * 0.9, false, false, 0.5, 1, 0, false);

    /* target and stretch lines beneath the bars and their labels */
    double x0 = enpi_chart_scale_map(&sx, 0);
    double xt = enpi_chart_scale_map(&sx, target_pct);
    double xs = enpi_chart_scale_map(&sx, stretch_pct);
    chart_stroke_line(cr, xt, top - fs * 0.3, xt, bottom, c_target, fs * 0.16, fs * 0.5);
    chart_stroke_line(cr, xs, top - fs * 0.3, xs, bottom, c_stretch, fs * 0.16, fs * 0.5);
    snprintf(buf, sizeof buf, "target %g %%", target_pct);
    double tw1 = chart_text_width(cr, buf, fs * 0.85, false);
    chart_set_rgb(cr, c_target);
    /* labels above the lines; the target's to the left so the two never overlap */
    chart_draw_text(cr, buf, xt, top - fs * 0.4, fs * 0.85, false, false, xs - xt < tw1 ? 1 : 0.5,
                    1, 0, false);
    snprintf(buf, sizeof buf, "stretch %g %%", stretch_pct);
    chart_set_rgb(cr, c_stretch);
    chart_draw_text(cr, buf, xs, top - fs * 0.4, fs * 0.85, false, false, xs - xt < tw1 ? 0 : 0.5,
                    1, 0, false);
    double bar_h = row_h * 0.62;
    for (size_t i = 0; i < n; i++) {
        double ry = top + row_h * (double)i;
        double mid = ry + row_h / 2;
        chart_set_rgb(cr, c_text);
        chart_draw_text(cr, bars[i].label ? bars[i].label : "", x + label_w, mid, tfs, false, false,
                        1, 0.5, label_w, true);
        if (!bars[i].has_value || !isfinite(bars[i].saving_pct)) {
            chart_set_rgb(cr, c_muted);
            chart_draw_text(cr, "no data", x0 + fs * 0.4, mid, tfs * 0.95, false, true, 0, 0.5, 0,
                            false);
            continue;
        }
        double v = bars[i].saving_pct;
        rgb_t col = v >= stretch_pct ? c_stretch : v >= target_pct ? c_met : c_notmet;
        double x1 = enpi_chart_scale_map(&sx, v);
        chart_set_rgb(cr, col);
        cairo_rectangle(cr, x1 < x0 ? x1 : x0, mid - bar_h / 2, fabs(x1 - x0), bar_h);
        cairo_fill(cr);
        snprintf(buf, sizeof buf, "%.1f %%", v);
        double lx = v >= 0 ? x1 + fs * 0.3 : x0 + fs * 0.3;
        /* a white backing keeps the value readable where a dashed line crosses it */
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_rectangle(cr, lx - fs * 0.1, mid - tfs * 0.55,
                        chart_text_width(cr, buf, tfs * 0.9, false) + fs * 0.2, tfs * 1.1);
        cairo_fill(cr);
        chart_set_rgb(cr, c_text);
        chart_draw_text(cr, buf, lx, mid, tfs * 0.9, false, false, 0, 0.5, 0, false);
    }
    chart_stroke_line(cr, x0, top, x0, bottom, c_axis, fs * 0.1, 0);
    cairo_restore(cr);
    return 0;
}
