/*
 * chart.c - the drawing of `enpi plot` and of the charts in `enpi report --pdf`: axis
 * ticks and scales, date ticks in a facility's zone, the SEC chart with its energy and
 * production panels, the savings bar chart, and the files (SVG, PNG, PDF) they go to.
 *
 * Everything is drawn with cairo in user units, and every piece of text goes through
 * pango (pango_cairo_show_layout), so Vietnamese names are shaped properly in DejaVu Sans.
 * Label collisions are avoided by measuring: the number of date ticks is reduced until
 * the measured labels fit, and value axes get at most as many ticks as their height allows.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <pango/pangocairo.h>

#include "chart.h"
#include "enpi_error.h"

#define FONT_FAMILY "DejaVu Sans"

/* ------------------------------------------------------------------ value ticks */

int enpi_chart_nice_ticks(double lo, double hi, int max_ticks, enpi_chart_ticks_t *out)
{
    if (!isfinite(lo) || !isfinite(hi) || lo > hi || max_ticks < 3)
        return ENPI_EINVAL;
    if (lo == hi) {
        double v = lo, pad = v == 0 ? 1 : fabs(v) * 0.1;
        lo = v - pad;
        hi = v + pad;
        if (v >= 0 && lo < 0) /* one non-negative value: keep the axis at >= 0 */
            lo = 0;
    }
    double raw = (hi - lo) / (max_ticks - 1);
    double mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5};
    for (int decade = 0; decade < 4; decade++, mag *= 10) {
        for (int k = 0; k < 3; k++) {
            double step = mult[k] * mag;
            if (step < raw * (1 - 1e-12))
                continue;
            double first = floor(lo / step + 1e-9) * step;
            double last = ceil(hi / step - 1e-9) * step;
            int n = (int)llround((last - first) / step) + 1;
            if (n > max_ticks)
                continue;
            out->first = first;
            out->step = step;
            out->n = n < 2 ? 2 : n;
            int dec = (int)-floor(log10(step) + 1e-9);
            out->decimals = dec > 0 ? dec : 0;
            return 0;
        }
    }
    return ENPI_ERANGE; /* not reached: a step of 10 x raw always fits */
}

double enpi_chart_tick_value(const enpi_chart_ticks_t *t, int i)
{
    double v = t->first + i * t->step;
    /* round away the drift of repeated addition so labels and positions agree */
    double q = pow(10, t->decimals);
    return round(v * q) / q;
}

int enpi_chart_format_value(double v, int decimals, char *buf, size_t n)
{
    char digits[48];
    if (!isfinite(v))
        return snprintf(buf, n, "-") < (int)n ? 1 : -1;
    int len = snprintf(digits, sizeof digits, "%.*f", decimals, v);
    if (len < 0 || (size_t)len >= sizeof digits)
        return -1;
    const char *p = digits;
    bool neg = *p == '-';
    if (neg)
        p++;
    bool zero = strspn(p, "0.") == strlen(p);
    if (zero)
        neg = false;
    size_t int_len = strcspn(p, ".");
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    bool group = fabs(v) >= 10000;
    for (size_t i = 0; i < int_len; i++) {
        if (group && i > 0 && (int_len - i) % 3 == 0) {
            memcpy(out + o, "\xe2\x80\x89", 3); /* U+2009 THIN SPACE */
            o += 3;
        }
        out[o++] = p[i];
    }
    size_t rest = strlen(p + int_len);
    memcpy(out + o, p + int_len, rest);
    o += rest;
    out[o] = '\0';
    if (o + 1 > n)
        return -1;
    memcpy(buf, out, o + 1);
    return (int)o;
}

double enpi_chart_scale_map(const enpi_chart_scale_t *s, double v)
{
    if (s->d1 == s->d0)
        return (s->r0 + s->r1) / 2;
    return s->r0 + (v - s->d0) * (s->r1 - s->r0) / (s->d1 - s->d0);
}

/* ------------------------------------------------------------------ time ticks */

typedef enum { U_HOUR, U_DAY, U_WEEK, U_MONTH, U_YEAR } tick_unit_t;

typedef struct {
    tick_unit_t unit;
    int step;
} tick_step_t;

static const tick_step_t tick_steps[] = {
    {U_HOUR, 1}, {U_HOUR, 2}, {U_HOUR, 3},  {U_HOUR, 6},  {U_HOUR, 12}, {U_DAY, 1},    {U_DAY, 2},
    {U_WEEK, 1}, {U_WEEK, 2}, {U_MONTH, 1}, {U_MONTH, 2}, {U_MONTH, 3}, {U_MONTH, 6},  {U_YEAR, 1},
    {U_YEAR, 2}, {U_YEAR, 5}, {U_YEAR, 10}, {U_YEAR, 20}, {U_YEAR, 50}, {U_YEAR, 100},
};

static const char *const month_abbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - enpi_floor_div(a, b) * b;
}

/* Candidate instants of one step, in order; tick_gen_next gives the next one (> prev). */
typedef struct {
    const enpi_tz_t *tz;
    tick_step_t s;
    int64_t cursor; /* day or month start being looked at */
    int hour;       /* U_HOUR: next local hour in the cursor's day */
    int64_t last;   /* last instant given (dedupes DST-moved hours) */
} tick_gen_t;

static void tick_gen_init(tick_gen_t *g, const enpi_tz_t *tz, tick_step_t s, int64_t from)
{
    g->tz = tz;
    g->s = s;
    g->hour = 0;
    g->last = INT64_MIN;
    if (s.unit == U_MONTH || s.unit == U_YEAR)
        g->cursor = enpi_tz_month_start(tz, from, 0);
    else
        g->cursor = enpi_tz_day_start(tz, from);
}

static int64_t tick_gen_next(tick_gen_t *g)
{
    for (;;) {
        enpi_civil_t c;
        enpi_tz_to_civil(g->tz, g->cursor, &c);
        int64_t t = INT64_MIN;
        switch (g->s.unit) {
        case U_HOUR: {
            if (g->hour >= 24) {
                g->cursor = enpi_tz_day_shift(g->tz, g->cursor, 1);
                g->hour = 0;
                continue;
            }
            enpi_civil_t h = {
                .year = c.year, .month = c.month, .day = c.day, .hour = g->hour, .has_time = true};
            t = enpi_tz_from_civil(g->tz, &h);
            g->hour += g->s.step;
            /* a local hour skipped by DST (from_civil moved it forward): no tick */
            enpi_civil_t back;
            enpi_tz_to_civil(g->tz, t, &back);
            if (back.hour != h.hour || back.day != h.day)
                continue;
            break;
        }
        case U_DAY:
        case U_WEEK: {
            int64_t days = enpi_days_from_civil(c.year, c.month, c.day);
            int64_t cur = g->cursor;
            g->cursor = enpi_tz_day_shift(g->tz, cur, 1);
            bool ok = g->s.unit == U_DAY ? floor_mod(days, g->s.step) == 0
                                         : floor_mod(days - 4, 7LL * g->s.step) == 0;
            if (!ok)
                continue;
            t = cur;
            break;
        }
        case U_MONTH:
        case U_YEAR: {
            int64_t cur = g->cursor;
            g->cursor = enpi_tz_month_start(g->tz, cur, 1);
            bool ok = g->s.unit == U_MONTH ? (c.month - 1) % g->s.step == 0
                                           : c.month == 1 && c.year % g->s.step == 0;
            if (!ok)
                continue;
            t = cur;
            break;
        }
        }
        if (t <= g->last)
            continue;
        g->last = t;
        return t;
    }
}

static void tick_label(const enpi_tz_t *tz, tick_unit_t unit, int64_t t, const int64_t *prev_t,
                       enpi_chart_time_tick_t *k)
{
    enpi_civil_t c, p = {0};
    enpi_tz_to_civil(tz, t, &c);
    if (prev_t)
        enpi_tz_to_civil(tz, *prev_t, &p);
    k->t = t;
    k->context[0] = '\0';
    const char *mon = month_abbr[(c.month - 1) % 12];
    switch (unit) {
    case U_HOUR:
        snprintf(k->label, sizeof k->label, "%02d:%02d", c.hour, c.minute);
        if (!prev_t || p.day != c.day || p.month != c.month || p.year != c.year)
            snprintf(k->context, sizeof k->context, "%d %s %d", c.day, mon, c.year);
        break;
    case U_DAY:
    case U_WEEK:
        snprintf(k->label, sizeof k->label, "%d", c.day);
        if (!prev_t || p.month != c.month || p.year != c.year)
            snprintf(k->context, sizeof k->context, "%s %d", mon, c.year);
        break;
    case U_MONTH:
        snprintf(k->label, sizeof k->label, "%s", mon);
        if (!prev_t || p.year != c.year)
            snprintf(k->context, sizeof k->context, "%d", c.year);
        break;
    case U_YEAR:
        snprintf(k->label, sizeof k->label, "%d", c.year);
        break;
    }
}

int enpi_chart_time_ticks(const enpi_tz_t *tz, int64_t from, int64_t to, int max_ticks,
                          enpi_chart_time_tick_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (from >= to || max_ticks < 1)
        return ENPI_EINVAL;
    int64_t inst[128];
    if (max_ticks > 127)
        max_ticks = 127;
    size_t ns = sizeof tick_steps / sizeof tick_steps[0];
    size_t chosen = ns - 1, count = 0;
    for (size_t i = 0; i < ns; i++) {
        tick_gen_t g;
        tick_gen_init(&g, tz, tick_steps[i], from);
        count = 0;
        bool over = false;
        for (;;) {
            int64_t t = tick_gen_next(&g);
            if (t > to)
                break;
            if (t < from)
                continue;
            if ((int)count == max_ticks) {
                over = true;
                break;
            }
            inst[count++] = t;
        }
        if (!over || i == ns - 1) {
            chosen = i;
            break;
        }
    }
    if (count == 0)
        return 0;
    enpi_chart_time_tick_t *k = calloc(count, sizeof *k);
    if (!k)
        return ENPI_ENOMEM;
    for (size_t i = 0; i < count; i++)
        tick_label(tz, tick_steps[chosen].unit, inst[i], i ? &inst[i - 1] : NULL, &k[i]);
    *out = k;
    *n = count;
    return 0;
}

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

static double text_width(cairo_t *cr, const char *s, double size, bool bold)
{
    PangoLayout *l = make_layout(cr, s, size, bold, false, 0, false);
    double w;
    layout_size(l, &w, NULL);
    g_object_unref(l);
    return w;
}

/* Draws text; align_x, align_y: 0 left/top, 0.5 centre, 1 right/bottom. Returns height. */
static double draw_text(cairo_t *cr, const char *s, double x, double y, double size, bool bold,
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
    return draw_text(cr, s, x, y, size, bold, false, align_x, 0, max_w, false);
}

/* Text turned a quarter left (reading upwards), centred on (x, y), at most max_len long:
 * a longer text is set smaller (down to 0.65 x size), then ellipsized. */
static void draw_text_up(cairo_t *cr, const char *s, double x, double y, double size,
                         double max_len)
{
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    double tw = text_width(cr, s, size, false);
    if (tw > max_len)
        size = fmax(size * 0.65, size * max_len / tw);
    bool cut = text_width(cr, s, size, false) > max_len;
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

/* ------------------------------------------------------------------ colours, lines */

typedef struct {
    double r, g, b;
} rgb_t;

static const rgb_t c_text = {0.13, 0.13, 0.13};
static const rgb_t c_muted = {0.40, 0.40, 0.40};
static const rgb_t c_axis = {0.55, 0.55, 0.55};
static const rgb_t c_grid = {0.90, 0.90, 0.90};
static const rgb_t c_sec = {0.12, 0.31, 0.61};
static const rgb_t c_base = {0.25, 0.25, 0.25};
static const rgb_t c_target = {0.88, 0.50, 0.00};
static const rgb_t c_stretch = {0.16, 0.60, 0.24};
static const rgb_t c_energy = {0.42, 0.60, 0.84};
static const rgb_t c_prod = {0.72, 0.58, 0.36};
static const rgb_t c_notmet = {0.80, 0.27, 0.22};
static const rgb_t c_met = {0.56, 0.80, 0.45};

static void set_rgb(cairo_t *cr, rgb_t c)
{
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
}

static void stroke_line(cairo_t *cr, double x0, double y0, double x1, double y1, rgb_t c, double lw,
                        double dash)
{
    cairo_save(cr);
    set_rgb(cr, c);
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

typedef struct {
    double x, y, w, h; /* plot area */
    enpi_chart_scale_t sx, sy;
    enpi_chart_ticks_t ticks;
} panel_t;

/* Sets p->ticks and p->sy for data in [lo, hi], with as many ticks as the height holds. */
static void panel_value_axis(panel_t *p, double lo, double hi, double fs)
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
static double ticks_label_width(cairo_t *cr, const enpi_chart_ticks_t *t, double fs)
{
    double wmax = 0;
    for (int i = 0; i < t->n; i++) {
        char buf[64];
        enpi_chart_format_value(enpi_chart_tick_value(t, i), t->decimals, buf, sizeof buf);
        double w = text_width(cr, buf, fs, false);
        if (w > wmax)
            wmax = w;
    }
    return wmax;
}

/* Grid lines, tick labels left of the area and the axis label turned upwards at label_x. */
static void panel_draw_value_axis(cairo_t *cr, const panel_t *p, const char *label, double label_x,
                                  double fs)
{
    for (int i = 0; i < p->ticks.n; i++) {
        double v = enpi_chart_tick_value(&p->ticks, i);
        double yy = round(enpi_chart_scale_map(&p->sy, v)) + 0.5;
        stroke_line(cr, p->x, yy, p->x + p->w, yy, c_grid, fs * 0.08, 0);
        char buf[64];
        enpi_chart_format_value(v, p->ticks.decimals, buf, sizeof buf);
        set_rgb(cr, c_text);
        draw_text(cr, buf, p->x - fs * 0.5, yy, fs * 0.9, false, false, 1, 0.5, 0, false);
    }
    set_rgb(cr, c_text);
    draw_text_up(cr, label, label_x, p->y + p->h / 2, fs, p->h);
    cairo_save(cr);
    set_rgb(cr, c_axis);
    cairo_set_line_width(cr, fs * 0.08);
    cairo_rectangle(cr, p->x, p->y, p->w, p->h);
    cairo_stroke(cr);
    cairo_restore(cr);
}

/* ------------------------------------------------------------------ time axis */

/* Chooses date ticks whose measured labels do not collide across width w. */
static int fit_time_ticks(cairo_t *cr, const enpi_tz_t *tz, const enpi_chart_scale_t *sx,
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
            double lw = text_width(cr, (*out)[i].label, fs * 0.9, false);
            if (x - lw / 2 < prev_right + fs * 0.8)
                fits = false;
            prev_right = x + lw / 2;
            if ((*out)[i].context[0]) {
                double cw = text_width(cr, (*out)[i].context, fs * 0.9, false);
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
static void draw_time_axis(cairo_t *cr, const enpi_chart_time_tick_t *k, size_t n,
                           const enpi_chart_scale_t *sx, double top, double bottom,
                           double right_limit, double fs)
{
    for (size_t i = 0; i < n; i++) {
        double x = round(enpi_chart_scale_map(sx, (double)k[i].t)) + 0.5;
        stroke_line(cr, x, top, x, bottom, c_grid, fs * 0.08, 0);
        stroke_line(cr, x, bottom, x, bottom + fs * 0.35, c_axis, fs * 0.08, 0);
        set_rgb(cr, c_text);
        double h = draw_text(cr, k[i].label, x, bottom + fs * 0.45, fs * 0.9, false, false, 0.5, 0,
                             0, false);
        if (k[i].context[0]) {
            double lw = text_width(cr, k[i].label, fs * 0.9, false);
            double cw = text_width(cr, k[i].context, fs * 0.9, false);
            double cx = x - lw / 2;
            if (cx + cw > right_limit)
                cx = right_limit - cw;
            set_rgb(cr, c_muted);
            draw_text(cr, k[i].context, cx, bottom + fs * 0.45 + h, fs * 0.9, false, false, 0, 0, 0,
                      false);
        }
    }
}

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
    set_rgb(cr, col);
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
    set_rgb(cr, c_sec);
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
    set_rgb(cr, c_sec);
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
    set_rgb(cr, col);
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
    double width = sample + fs * 0.4 + text_width(cr, label, fs * 0.9, false);
    if (lg->x > lg->x0 && lg->x + width > lg->x_max) {
        lg->x = lg->x0;
        lg->y += fs * 1.4;
    }
    stroke_line(cr, lg->x, lg->y, lg->x + sample, lg->y, col, lw, dash);
    set_rgb(cr, c_text);
    draw_text(cr, label, lg->x + sample + fs * 0.4, lg->y, fs * 0.9, false, false, 0, 0.5, 0,
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
    set_rgb(cr, c_text);
    cy += draw_text(cr, c->title ? c->title : "", x, cy, fs * 1.45, true, false, 0, 0, w, true);
    if (c->subtitle) {
        set_rgb(cr, c_muted);
        cy += draw_text(cr, c->subtitle, x, cy, fs * 0.95, false, false, 0, 0, w, true);
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
        set_rgb(cr, c_muted);
        draw_text(cr, "No baseline: no target lines", lg.x, lg.y, fs * 0.9, false, true, 0, 0.5, 0,
                  false);
    }
    double ly = lg.y;
    cy = ly + fs * 1.0;
    if (c->note && *c->note) {
        set_rgb(cr, c_notmet);
        cy += draw_text(cr, c->note, x, cy, fs * 0.9, false, true, 0, 0, w, false);
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
    panel_value_axis(&ps, sec_min, sec_top, fs);
    panel_value_axis(&pe, 0, e_max > 0 ? e_max : 1, fs);
    panel_value_axis(&pu, 0, u_max > 0 ? u_max : 1, fs);
    double tw = ticks_label_width(cr, &ps.ticks, fs * 0.9);
    double t2 = ticks_label_width(cr, &pe.ticks, fs * 0.9);
    double t3 = ticks_label_width(cr, &pu.ticks, fs * 0.9);
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
    if ((rc = fit_time_ticks(cr, c->tz, &ps.sx, c->from, c->to, fs, &ticks, &n_ticks)) != 0)
        goto restore;
    for (int i = 0; i < 3; i++) {
        double label_x = x + fs * 0.6;
        if (i == 0)
            snprintf(buf, sizeof buf, "SEC (kWh/%s)", unit);
        else if (i == 1)
            snprintf(buf, sizeof buf, "Energy (kWh)");
        else
            snprintf(buf, sizeof buf, "Production (%s)", unit);
        panel_draw_value_axis(cr, panels[i], buf, label_x, fs);
    }
    for (int i = 0; i < 3; i++) {
        double bottom = panels[i]->y + panels[i]->h;
        if (i < 2) {
            for (size_t k = 0; k < n_ticks; k++) {
                double xx = round(enpi_chart_scale_map(&ps.sx, (double)ticks[k].t)) + 0.5;
                stroke_line(cr, xx, panels[i]->y, xx, bottom, c_grid, fs * 0.08, 0);
            }
        } else {
            draw_time_axis(cr, ticks, n_ticks, &pu.sx, pu.y, bottom, x + w, fs);
        }
    }
    free(ticks);
    tz_caption(c->tz, c->from, buf, sizeof buf);
    set_rgb(cr, c_muted);
    draw_text(cr, buf, (left + right) / 2, y + h, fs * 0.9, false, false, 0.5, 1, 0, false);

    /* data */
    draw_bars(cr, c, &pe, true, c_energy, fs * 0.4);
    draw_bars(cr, c, &pu, false, c_prod, fs * 0.4);
    if (c->baseline == ENPI_CHART_BASELINE_CONSTANT && isfinite(c->baseline_sec)) {
        double f[3] = {1, 1 - c->target_pct / 100, 1 - c->stretch_pct / 100};
        rgb_t col[3] = {c_base, c_target, c_stretch};
        for (int i = 0; i < 3; i++) {
            double yy = enpi_chart_scale_map(&ps.sy, c->baseline_sec * f[i]);
            stroke_line(cr, ps.x, yy, ps.x + ps.w, yy, col[i], lw * 0.8, fs * 0.5);
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
        set_rgb(cr, c_muted);
        draw_text(cr, "No window with production in this period", ps.x + ps.w / 2, ps.y + ps.h / 2,
                  fs * 1.1, false, true, 0.5, 0.5, 0, false);
    }
restore:
    cairo_restore(cr);
    return rc;
}

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
        stroke_line(cr, xx, top, xx, bottom, c_grid, fs * 0.08, 0);
        enpi_chart_format_value(v, t.decimals, buf, sizeof buf);
        set_rgb(cr, c_text);
        draw_text(cr, buf, xx, bottom + fs * 0.3, fs * 0.9, false, false, 0.5, 0, 0, false);
    }
    set_rgb(cr, c_text);
    draw_text(cr, "SEC saving against the baseline (%)", plot_x + plot_w / 2, axis_caption_y,
              fs * 0.9, false, false, 0.5, 1, 0, false);

    /* target and stretch lines beneath the bars and their labels */
    double x0 = enpi_chart_scale_map(&sx, 0);
    double xt = enpi_chart_scale_map(&sx, target_pct);
    double xs = enpi_chart_scale_map(&sx, stretch_pct);
    stroke_line(cr, xt, top - fs * 0.3, xt, bottom, c_target, fs * 0.16, fs * 0.5);
    stroke_line(cr, xs, top - fs * 0.3, xs, bottom, c_stretch, fs * 0.16, fs * 0.5);
    snprintf(buf, sizeof buf, "target %g %%", target_pct);
    double tw1 = text_width(cr, buf, fs * 0.85, false);
    set_rgb(cr, c_target);
    /* labels above the lines; the target's to the left so the two never overlap */
    draw_text(cr, buf, xt, top - fs * 0.4, fs * 0.85, false, false, xs - xt < tw1 ? 1 : 0.5, 1, 0,
              false);
    snprintf(buf, sizeof buf, "stretch %g %%", stretch_pct);
    set_rgb(cr, c_stretch);
    draw_text(cr, buf, xs, top - fs * 0.4, fs * 0.85, false, false, xs - xt < tw1 ? 0 : 0.5, 1, 0,
              false);
    double bar_h = row_h * 0.62;
    for (size_t i = 0; i < n; i++) {
        double ry = top + row_h * (double)i;
        double mid = ry + row_h / 2;
        set_rgb(cr, c_text);
        draw_text(cr, bars[i].label ? bars[i].label : "", x + label_w, mid, tfs, false, false, 1,
                  0.5, label_w, true);
        if (!bars[i].has_value || !isfinite(bars[i].saving_pct)) {
            set_rgb(cr, c_muted);
            draw_text(cr, "no data", x0 + fs * 0.4, mid, tfs * 0.95, false, true, 0, 0.5, 0, false);
            continue;
        }
        double v = bars[i].saving_pct;
        rgb_t col = v >= stretch_pct ? c_stretch : v >= target_pct ? c_met : c_notmet;
        double x1 = enpi_chart_scale_map(&sx, v);
        set_rgb(cr, col);
        cairo_rectangle(cr, x1 < x0 ? x1 : x0, mid - bar_h / 2, fabs(x1 - x0), bar_h);
        cairo_fill(cr);
        snprintf(buf, sizeof buf, "%.1f %%", v);
        double lx = v >= 0 ? x1 + fs * 0.3 : x0 + fs * 0.3;
        /* a white backing keeps the value readable where a dashed line crosses it */
        cairo_set_source_rgb(cr, 1, 1, 1);
        cairo_rectangle(cr, lx - fs * 0.1, mid - tfs * 0.55,
                        text_width(cr, buf, tfs * 0.9, false) + fs * 0.2, tfs * 1.1);
        cairo_fill(cr);
        set_rgb(cr, c_text);
        draw_text(cr, buf, lx, mid, tfs * 0.9, false, false, 0, 0.5, 0, false);
    }
    stroke_line(cr, x0, top, x0, bottom, c_axis, fs * 0.1, 0);
    cairo_restore(cr);
    return 0;
}

/* ------------------------------------------------------------------ files */

int enpi_chart_format_of(const char *path, enpi_chart_format_t *out)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return ENPI_EINVAL;
    if (strcasecmp(dot, ".svg") == 0)
        *out = ENPI_CHART_SVG;
    else if (strcasecmp(dot, ".png") == 0)
        *out = ENPI_CHART_PNG;
    else if (strcasecmp(dot, ".pdf") == 0)
        *out = ENPI_CHART_PDF;
    else
        return ENPI_EINVAL;
    return 0;
}

struct enpi_chart_file {
    enpi_chart_format_t fmt;
    char *path;
    char *tmp;
    FILE *fp;
    bool write_failed;
    cairo_surface_t *surface;
    cairo_t *cr;
};

static cairo_status_t write_cb(void *closure, const unsigned char *data, unsigned int len)
{
    enpi_chart_file_t *f = closure;
    if (fwrite(data, 1, len, f->fp) != len) {
        f->write_failed = true;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

static void file_free(enpi_chart_file_t *f)
{
    if (f->cr)
        cairo_destroy(f->cr);
    if (f->surface)
        cairo_surface_destroy(f->surface);
    if (f->fp)
        fclose(f->fp);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

int enpi_chart_file_open(const char *path, enpi_chart_format_t fmt, double width, double height,
                         enpi_chart_file_t **out, cairo_t **cr_out, char *err, size_t errlen)
{
    *out = NULL;
    *cr_out = NULL;
    enpi_chart_file_t *f = calloc(1, sizeof *f);
    if (!f)
        return ENPI_ENOMEM;
    f->fmt = fmt;
    size_t len = strlen(path);
    f->path = strdup(path);
    f->tmp = malloc(len + 32);
    if (!f->path || !f->tmp) {
        free(f->tmp);
        f->tmp = NULL;
        file_free(f);
        return ENPI_ENOMEM;
    }
    snprintf(f->tmp, len + 32, "%s.tmp-%ld", path, (long)getpid());
    f->fp = fopen(f->tmp, "wb");
    if (!f->fp) {
        snprintf(err, errlen, "cannot write '%s': %s", path, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        file_free(f);
        return ENPI_EIO;
    }
    switch (fmt) {
    case ENPI_CHART_SVG:
        f->surface = cairo_svg_surface_create_for_stream(write_cb, f, width, height);
        cairo_svg_surface_set_document_unit(f->surface, CAIRO_SVG_UNIT_PX);
        break;
    case ENPI_CHART_PDF:
        f->surface = cairo_pdf_surface_create_for_stream(write_cb, f, width, height);
        break;
    case ENPI_CHART_PNG:
        f->surface =
            cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)ceil(width), (int)ceil(height));
        break;
    }
    f->cr = cairo_create(f->surface);
    if (cairo_status(f->cr) != CAIRO_STATUS_SUCCESS) {
        snprintf(err, errlen, "cannot draw '%s': %s", path,
                 cairo_status_to_string(cairo_status(f->cr)));
        file_free(f);
        return ENPI_ENOMEM;
    }
    /* a white page: PNG has no transparency here and SVG viewers vary */
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
    *out = f;
    *cr_out = f->cr;
    return 0;
}

void enpi_chart_file_page(enpi_chart_file_t *f)
{
    cairo_show_page(f->cr);
    cairo_set_source_rgb(f->cr, 1, 1, 1);
    cairo_paint(f->cr);
}

int enpi_chart_file_close(enpi_chart_file_t *f, char *err, size_t errlen)
{
    int rc = 0;
    cairo_status_t st = cairo_status(f->cr);
    if (st == CAIRO_STATUS_SUCCESS && f->fmt == ENPI_CHART_PNG)
        st = cairo_surface_write_to_png_stream(f->surface, write_cb, f);
    cairo_destroy(f->cr);
    f->cr = NULL;
    cairo_surface_finish(f->surface);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_status(f->surface);
    cairo_surface_destroy(f->surface);
    f->surface = NULL;
    if (st != CAIRO_STATUS_SUCCESS || f->write_failed) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path,
                 f->write_failed ? strerror(errno) : cairo_status_to_string(st));
        rc = ENPI_EIO;
        goto free_file;
    }
    FILE *fp = f->fp;
    f->fp = NULL;
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        fclose(fp);
        rc = ENPI_EIO;
        goto free_file;
    }
    if (fclose(fp) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        rc = ENPI_EIO;
        goto free_file;
    }
    if (rename(f->tmp, f->path) != 0) {
        snprintf(err, errlen, "cannot write '%s': %s", f->path, strerror(errno));
        rc = ENPI_EIO;
        goto free_file;
    }
    free(f->tmp);
    f->tmp = NULL; /* renamed: nothing to remove */
free_file:
    file_free(f);
    return rc;
}

void enpi_chart_file_abort(enpi_chart_file_t *f)
{
    if (f)
        file_free(f);
}
