/*
 * chart_draw.c - the drawing parts every chart shares: text, lines, and the
 * value and time axes of a panel (chart_int.h).
 *
 * Everything is drawn with cairo in user units, and every piece of text goes through
 * pango (pango_cairo_show_layout), so Vietnamese names are shaped properly in DejaVu Sans.
 * Label collisions are avoided by measuring: the number of date ticks is reduced until
 * the measured labels fit, and value axes get at most as many ticks as their height allows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pango/pangocairo.h>

#include "chart_int.h"

#define FONT_FAMILY "DejaVu Sans"

/* ------------------------------------------------------------------ text */

static PangoLayout *make_layout(cairo_t *cr, const char *s, double size, bool bold, bool italic,
                                double max_w, bool ellipsize)
{
    PangoLayout *l = pango_cairo_create_layout(cr);
    PangoFontDescription *fd = pango_font_description_from_string(FONT_FAMILY);
    pango_font_description_set_absolute_size(fd, size * PANGO_SCALE);
    if (bold)
        pango_font_description_set_weight(fd, PANGO_WEIGHT_BOLD);
    if (italic)
        pango_font_description_set_style(fd, PANGO_STYLE_ITALIC);
    pango_layout_set_font_description(l, fd);
    pango_font_description_free(fd);
    if (max_w > 0) {
        pango_layout_set_width(l, (int)(max_w * PANGO_SCALE));
        if (ellipsize)
            pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
        else
            pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
    }
    pango_layout_set_text(l, s, -1);
    return l;
}

static void layout_size(PangoLayout *l, double *w, double *h)
{
    PangoRectangle ink, logical;
    pango_layout_get_extents(l, &ink, &logical);
    if (w)
        *w = (double)logical.width / PANGO_SCALE;
    if (h)
        *h = (double)logical.height / PANGO_SCALE;
}

double chart_text_width(cairo_t *cr, const char *s, double size, bool bold)
{
    PangoLayout *l = make_layout(cr, s, size, bold, false, 0, false);
    double w;
    layout_size(l, &w, NULL);
    g_object_unref(l);
    return w;
}

/* Draws text; align_x, align_y: 0 left/top, 0.5 centre, 1 right/bottom. Returns height. */
double chart_draw_text(cairo_t *cr, const char *s, double x, double y, double size, bool bold,
                       bool italic, double align_x, double align_y, double max_w, bool ellipsize)
{
    PangoLayout *l = make_layout(cr, s, size, bold, italic, max_w, ellipsize);
    double w, h;
    layout_size(l, &w, &h);
    cairo_move_to(cr, x - align_x * w, y - align_y * h);
    pango_cairo_show_layout(cr, l);
    g_object_unref(l);
    cairo_new_path(cr);
    return h;
}

double enpi_chart_text(cairo_t *cr, const char *s, double x, double y, double size, bool bold,
                       double align_x, double max_w)
{
    return chart_draw_text(cr, s, x, y, size, bold, false, align_x, 0, max_w, false);
}

/* Text turned a quarter left (reading upwards), centred on (x, y), at most max_len long:
 * a longer text is set smaller (down to 0.65 x size), then ellipsized. */
static void draw_text_up(cairo_t *cr, const char *s, double x, double y, double size,
                         double max_len)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    double tw = chart_text_width(cr, s, size, false);
    if (tw > max_len)
        size = fmax(size * 0.65, size * max_len / tw);
    bool cut = chart_text_width(cr, s, size, false) > max_len;
    PangoLayout *l = make_layout(cr, s, size, false, false, cut ? max_len : 0, cut);
    double w, h;
    layout_size(l, &w, &h);
    cairo_move_to(cr, -w / 2, -h / 2);
    pango_cairo_show_layout(cr, l);
    g_object_unref(l);
    cairo_restore(cr);
    cairo_new_path(cr);
}

/*
 * Fontconfig keeps its configuration and font caches for the life of the process and
 * frees them only in FcFini, which is not safe to call while pango's font map may still
 * hold fonts (its fontconfig loader runs on a thread of its own). LeakSanitizer (the
 * ASan build) would report those caches at exit; it reads this hook, and only it does,
 * to know them as held on purpose. Nothing of enpi's own is suppressed.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

/* ------------------------------------------------------------------ lines */

void chart_set_rgb(cairo_t *cr, rgb_t c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

void chart_stroke_line(cairo_t *cr, double x0, double y0, double x1, double y1, rgb_t c, double lw,
                       double dash)
{
    cairo_save(cr);
    chart_set_rgb(cr, c);
    cairo_set_line_width(cr, lw);
    if (dash > 0) {
        double d[2] = {dash, dash * 0.6};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, x0, y0);
    cairo_line_to(cr, x1, y1);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* ------------------------------------------------------------------ value axes */
/* Sets p->ticks and p->sy for data in [lo, hi], with as many ticks as the height holds. */
void chart_panel_value_axis(panel_t *p, double lo, double hi, double fs)
{
    int max_ticks = (int)(p->h / (fs * 2.6));
    if (max_ticks < 3)
        max_ticks = 3;
    if (max_ticks > 8)
        max_ticks = 8;
    if (!isfinite(lo) || !isfinite(hi) || lo > hi)
        lo = 0, hi = 1;
    if (enpi_chart_nice_ticks(lo, hi, max_ticks, &p->ticks) != 0)
        enpi_chart_nice_ticks(0, 1, 3, &p->ticks);
    double top = enpi_chart_tick_value(&p->ticks, p->ticks.n - 1);
    double bot = enpi_chart_tick_value(&p->ticks, 0);
    p->sy = (enpi_chart_scale_t){bot, top, p->y + p->h, p->y};
}

/* The widest tick label of a value axis. */
double chart_ticks_label_width(cairo_t *cr, const enpi_chart_ticks_t *t, double fs)
{
    double wmax = 0;
    for (int i = 0; i < t->n; i++) {
        char buf[64];
        enpi_chart_format_value(enpi_chart_tick_value(t, i), t->decimals, buf, sizeof buf);
        double w = chart_text_width(cr, buf, fs, false);
        if (w > wmax)
            wmax = w;
    }
    return wmax;
}

/* Grid lines, tick labels left of the area and the axis label turned upwards at label_x. */
void chart_panel_draw_value_axis(cairo_t *cr, const panel_t *p, const char *label, double label_x,
                                 double fs)
{
    for (int i = 0; i < p->ticks.n; i++) {
        double v = enpi_chart_tick_value(&p->ticks, i);
        double yy = round(enpi_chart_scale_map(&p->sy, v)) + 0.5;
        chart_stroke_line(cr, p->x, yy, p->x + p->w, yy, c_grid, fs * 0.08, 0);
        char buf[64];
        enpi_chart_format_value(v, p->ticks.decimals, buf, sizeof buf);
        chart_set_rgb(cr, c_text);
        chart_draw_text(cr, buf, p->x - fs * 0.5, yy, fs * 0.9, false, false, 1, 0.5, 0, false);
    }
    chart_set_rgb(cr, c_text);
    draw_text_up(cr, label, label_x, p->y + p->h / 2, fs, p->h);
    cairo_save(cr);
    chart_set_rgb(cr, c_axis);
    cairo_set_line_width(cr, fs * 0.08);
    cairo_rectangle(cr, p->x, p->y, p->w, p->h);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* ------------------------------------------------------------------ time axis */

/* Chooses date ticks whose measured labels do not collide across width w. */
int chart_fit_time_ticks(cairo_t *cr, const enpi_tz_t *tz, const enpi_chart_scale_t *sx,
                         int64_t from, int64_t to, double fs, enpi_chart_time_tick_t **out,
                         size_t *n)
{
    double w = fabs(sx->r1 - sx->r0);
    int max_ticks = (int)(w / (fs * 3.2));
    if (max_ticks < 2)
        max_ticks = 2;
    for (;;) {
        int rc = enpi_chart_time_ticks(tz, from, to, max_ticks, out, n);
        if (rc)
            return rc;
        bool fits = true;
        double prev_right = -INFINITY, prev_ctx_right = -INFINITY;
        for (size_t i = 0; i < *n && fits; i++) {
            double x = enpi_chart_scale_map(sx, (double)(*out)[i].t);
            double lw = chart_text_width(cr, (*out)[i].label, fs * 0.9, false);
            if (x - lw / 2 < prev_right + fs * 0.8)
                fits = false;
            prev_right = x + lw / 2;
            if ((*out)[i].context[0]) {
                double cw = chart_text_width(cr, (*out)[i].context, fs * 0.9, false);
                if (x - lw / 2 < prev_ctx_right + fs * 0.8)
                    fits = false;
                prev_ctx_right = x - lw / 2 + cw;
            }
        }
        if (fits || max_ticks <= 2)
            return 0;
        max_ticks = (int)*n - 1;
        if (max_ticks < 2)
            max_ticks = 2;
        free(*out);
        *out = NULL;
    }
}

/* Vertical grid lines at the ticks from top to bottom, labels (and context) below. */
void chart_draw_time_axis(cairo_t *cr, const enpi_chart_time_tick_t *k, size_t n,
                          const enpi_chart_scale_t *sx, double top, double bottom,
                          double right_limit, double fs)
{
    for (size_t i = 0; i < n; i++) {
        double x = round(enpi_chart_scale_map(sx, (double)k[i].t)) + 0.5;
        chart_stroke_line(cr, x, top, x, bottom, c_grid, fs * 0.08, 0);
        chart_stroke_line(cr, x, bottom, x, bottom + fs * 0.35, c_axis, fs * 0.08, 0);
        chart_set_rgb(cr, c_text);
        double h = chart_draw_text(cr, k[i].label, x, bottom + fs * 0.45, fs * 0.9, false, false,
                                   0.5, 0, 0, false);
        if (k[i].context[0]) {
            double lw = chart_text_width(cr, k[i].label, fs * 0.9, false);
            double cw = chart_text_width(cr, k[i].context, fs * 0.9, false);
            double cx = x - lw / 2;
            if (cx + cw > right_limit)
                cx = right_limit - cw;
            chart_set_rgb(cr, c_muted);
            chart_draw_text(cr, k[i].context, cx, bottom + fs * 0.45 + h, fs * 0.9, false, false, 0,
                            0, 0, false);
        }
    }
}
