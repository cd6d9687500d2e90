/*
 * chart_ticks.c - the arithmetic of chart axes, with no drawing: "nice" value ticks and
 * their labels, linear scales, and date ticks in a facility's zone (hours, days, weeks,
 * months, years, correct across DST changes). Unit-tested in tests/unit/cli/test_chart.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "enpi_error.h"

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
