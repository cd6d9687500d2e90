/*
 * report.c - the arithmetic of the programme report (SPEC §6), kept free of the store so
 * unit tests pin it with hand-computed figures: the regression fit, one facility's
 * expected and saved energy and status, the programme's counts and sums, and the
 * projection to period end (see report.h).
 */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

const char *enpi_report_status_name(enpi_report_status_t s)
{
    switch (s) {
    case ENPI_REPORT_NOT_MET:
        return "not_met";
    case ENPI_REPORT_MET:
        return "met";
    case ENPI_REPORT_STRETCH_MET:
        return "stretch_met";
    case ENPI_REPORT_NO_DATA:
        break;
    }
    return "no_data";
}

/* Regression flags: fewer days than this, or an R² below the next, is a poor fit. */
#define FIT_MIN_DAYS 10
#define FIT_MIN_R2 0.5

/*
 * Two passes (means first, then centred sums) so a year of days with large, similar
 * values does not lose its variance to cancellation.
 */
void enpi_report_fit(const double *u, const double *e, size_t n, enpi_report_fit_t *out)
{
    out->a = NAN;
    out->b = NAN;
    out->r2 = NAN;
    out->n = 0;
    out->ok = false;
    out->poor_fit = true;
    double su = 0, se = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(u[i] > 0))
            continue;
        su += u[i];
        se += e[i];
        k++;
    }
    out->n = k;
    if (k < 2)
        return;
    double mu = su / (double)k, me = se / (double)k;
    double suu = 0, sue = 0, see = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(u[i] > 0))
            continue;
        double du = u[i] - mu, de = e[i] - me;
        suu += du * du;
        sue += du * de;
        see += de * de;
    }
    if (!(suu > 0))
        return;
    out->b = sue / suu;
    out->a = me - out->b * mu;
    out->ok = true;
    if (see > 0)
        out->r2 = (sue * sue) / (suu * see);
    out->poor_fit = k < FIT_MIN_DAYS || !(out->r2 >= FIT_MIN_R2);
}

/* Marks f no_data with a reason; the figures that need a baseline become NAN. */
static void no_data(enpi_report_facility_t *f, const char *why)
{
    f->status = ENPI_REPORT_NO_DATA;
    f->no_data_reason = why;
    f->expected_kwh = NAN;
    f->saved_kwh = NAN;
    f->saving_pct = NAN;
}

/* Regression: the fit over the baseline days, then expected over P's days. */
static void evaluate_regression(const enpi_report_input_t *in, enpi_report_facility_t *f)
{
    f->has_fit = false;
    if (!in->days_ok) {
        no_data(f, in->days_reason ? in->days_reason : "daily rollups are not available");
        return;
    }
    size_t n = in->n_base_days;
    double *u = malloc((n ? n : 1) * sizeof *u), *e = malloc((n ? n : 1) * sizeof *e);
    if (!u || !e) {
        free(u);
        free(e);
        no_data(f, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        u[i] = in->base_days[i].units;
        e[i] = in->base_days[i].energy_kwh;
    }
    enpi_report_fit(u, e, n, &f->fit);
    free(u);
    free(e);
    f->has_fit = true;
    if (!f->fit.ok) {
        no_data(f, f->fit.n == 0 ? "no baseline days with production"
                                 : "too few distinct baseline days with production to fit");
        return;
    }
    if (!(in->units > 0)) {
        no_data(f, "no production in the period");
        return;
    }
    double expected = 0;
    size_t days = 0;
    for (size_t i = 0; i < in->n_days; i++) {
        if (in->days[i].readings == 0)
            continue;
        expected += f->fit.a + f->fit.b * in->days[i].units;
        days++;
    }
    if (days == 0) {
        no_data(f, "no days with readings in the period");
        return;
    }
    if (!(expected > 0)) {
        no_data(f, "the regression expects no energy for the period");
        return;
    }
    f->expected_kwh = expected;
    f->baseline_sec = expected / in->units;
}

void enpi_report_evaluate(const enpi_report_input_t *in, enpi_report_facility_t *f)
{
    f->model = in->model;
    f->fixed_sec = in->model == ENPI_BASELINE_SEC && in->fixed_sec;
    f->energy_kwh = in->energy_kwh;
    f->units = in->units;
    f->sec = in->units != 0 ? in->energy_kwh / in->units : NAN;
    f->baseline_sec = NAN;
    f->expected_kwh = NAN;
    f->saved_kwh = NAN;
    f->saving_pct = NAN;
    f->status = ENPI_REPORT_NO_DATA;
    f->no_data_reason = NULL;
    f->has_fit = false;
    f->fit = (enpi_report_fit_t){NAN, NAN, NAN, 0, false, false};

    switch (in->model) {
    case ENPI_BASELINE_NONE:
        no_data(f, "no baseline configured");
        return;
    case ENPI_BASELINE_SEC:
        if (in->fixed_sec) {
            f->baseline_sec = in->fixed_sec_value;
        } else if (!in->baseline_ok) {
            no_data(f, "the baseline period does not fall on window boundaries");
            return;
        } else if (in->base_rows == 0) {
            no_data(f, "no data in the baseline period");
            return;
        } else if (!(in->base_units > 0)) {
            no_data(f, "no production in the baseline period");
            return;
        } else {
            f->baseline_sec = in->base_energy_kwh / in->base_units;
        }
        if (!(in->units > 0)) {
            no_data(f, "no production in the period");
            return;
        }
        f->expected_kwh = f->baseline_sec * in->units;
        if (!(f->expected_kwh > 0)) {
            no_data(f, "the baseline expects no energy for the period");
            return;
        }
        break;
    case ENPI_BASELINE_REGRESSION:
        evaluate_regression(in, f);
        if (f->status == ENPI_REPORT_NO_DATA && f->no_data_reason)
            return;
        break;
    }
    f->saved_kwh = f->expected_kwh - f->energy_kwh;
    f->saving_pct = 100.0 * f->saved_kwh / f->expected_kwh;
    if (f->saving_pct >= in->stretch_pct)
        f->status = ENPI_REPORT_STRETCH_MET;
    else if (f->saving_pct >= in->target_pct)
        f->status = ENPI_REPORT_MET;
    else
        f->status = ENPI_REPORT_NOT_MET;
}

void enpi_report_uptake(const bool *has, const int64_t *since, const int64_t *from,
                        const int64_t *to, size_t n, double target_pp, enpi_report_uptake_t *out)
{
    out->start = 0;
    out->end = 0;
    for (size_t i = 0; i < n; i++) {
        if (!has[i])
            continue;
        if (since[i] <= from[i])
            out->start++;
        if (since[i] < to[i])
            out->end++;
    }
    out->increase_pp =
        n ? 100.0 * (double)out->end / (double)n - 100.0 * (double)out->start / (double)n : NAN;
    out->target_pp = target_pp != 0 ? target_pp : NAN;
}

/* The registry dates of r's facilities as arrays for enpi_report_uptake. */
static void programme_uptake(enpi_report_t *r)
{
    size_t n = r->n_facilities;
    bool *has = calloc(n ? n : 1, sizeof *has);
    int64_t *since = calloc(n ? n : 1, sizeof *since);
    int64_t *from = calloc(n ? n : 1, sizeof *from);
    int64_t *to = calloc(n ? n : 1, sizeof *to);
    enpi_report_programme_t *p = &r->programme_figures;
    if (!has || !since || !from || !to) {
        /* Counting needs no more than this; without memory report the counts unknown. */
        p->aware = (enpi_report_uptake_t){0, 0, NAN, NAN};
        p->applying = p->aware;
        goto free_arrays;
    }
    for (size_t i = 0; i < n; i++) {
        from[i] = r->facilities[i].from;
        to[i] = r->facilities[i].to;
        has[i] = r->facilities[i].has_aware_since;
        since[i] = r->facilities[i].aware_since;
    }
    enpi_report_uptake(has, since, from, to, n, r->aware_target_pp, &p->aware);
    for (size_t i = 0; i < n; i++) {
        has[i] = r->facilities[i].has_applying_since;
        since[i] = r->facilities[i].applying_since;
    }
    enpi_report_uptake(has, since, from, to, n, r->applying_target_pp, &p->applying);
free_arrays:
    free(has);
    free(since);
    free(from);
    free(to);
}

void enpi_report_programme(enpi_report_t *r)
{
    enpi_report_programme_t *p = &r->programme_figures;
    *p = (enpi_report_programme_t){0};
    p->facilities = r->n_facilities;
    for (size_t i = 0; i < r->n_facilities; i++) {
        const enpi_report_facility_t *f = &r->facilities[i];
        if (f->status == ENPI_REPORT_NO_DATA)
            continue;
        p->with_data++;
        if (f->status == ENPI_REPORT_MET || f->status == ENPI_REPORT_STRETCH_MET)
            p->met++;
        if (f->status == ENPI_REPORT_STRETCH_MET)
            p->stretch_met++;
        p->expected_kwh += f->expected_kwh;
        p->energy_kwh += f->energy_kwh;
        p->saved_kwh += f->saved_kwh;
    }
    if (p->with_data) {
        p->met_pct = 100.0 * (double)p->met / (double)p->with_data;
        p->stretch_met_pct = 100.0 * (double)p->stretch_met / (double)p->with_data;
        p->saving_pct = 100.0 * p->saved_kwh / p->expected_kwh;
    } else {
        p->met_pct = NAN;
        p->stretch_met_pct = NAN;
        p->saving_pct = NAN;
    }
    programme_uptake(r);
}

void enpi_report_project(enpi_report_t *r)
{
    enpi_report_projection_t *pr = &r->projection;
    *pr = (enpi_report_projection_t){0};
    for (size_t i = 0; i < r->n_facilities; i++) {
        enpi_report_facility_t *f = &r->facilities[i];
        f->proj_energy_kwh = NAN;
        f->proj_expected_kwh = NAN;
        f->proj_saved_kwh = NAN;
        int64_t len = f->to - f->from;
        if (f->data_end == INT64_MIN || f->data_end <= f->from || len <= 0) {
            f->complete = false;
            f->covered = NAN;
        } else if (f->data_end >= f->to) {
            f->complete = true;
            f->covered = 1.0;
        } else {
            f->complete = false;
            f->covered = (double)(f->data_end - f->from) / (double)len;
        }
        if (f->status == ENPI_REPORT_NO_DATA)
            continue;
        double c = 1.0;
        if (!f->complete) {
            pr->needed = true;
            if (isnan(f->covered))
                pr->unprojectable++;
            else {
                c = f->covered;
                pr->projected++;
            }
        }
        f->proj_energy_kwh = f->energy_kwh / c;
        f->proj_expected_kwh = f->expected_kwh / c;
        f->proj_saved_kwh = f->saved_kwh / c;
        pr->energy_kwh += f->proj_energy_kwh;
        pr->expected_kwh += f->proj_expected_kwh;
        pr->saved_kwh += f->proj_saved_kwh;
    }
    pr->saving_pct = pr->expected_kwh > 0 ? 100.0 * pr->saved_kwh / pr->expected_kwh : NAN;
    if (!pr->needed) {
        pr->energy_kwh = NAN;
        pr->expected_kwh = NAN;
        pr->saved_kwh = NAN;
        pr->saving_pct = NAN;
    }
}

/* Ordering of resolutions by window length: months beat any fixed length. */
static bool coarser(const enpi_duration_t *a, const enpi_duration_t *b)
{
    if (a->months != b->months)
        return a->months > b->months;
    return a->ms > b->ms;
}

bool enpi_report_resolution_for(const enpi_config_t *cfg, const enpi_tz_t *tz, int64_t from,
                                int64_t to, enpi_duration_t *out)
{
    bool found = false;
    for (size_t i = 0; i < cfg->pipeline.n_resolutions; i++) {
        const enpi_duration_t *res = &cfg->pipeline.resolutions[i];
        if (enpi_window_containing(tz, res, from).start != from ||
            enpi_window_containing(tz, res, to).start != to)
            continue;
        if (!found || coarser(res, out)) {
            *out = *res;
            found = true;
        }
    }
    return found;
}

bool enpi_report_daily(const enpi_config_t *cfg, enpi_duration_t *out)
{
    for (size_t i = 0; i < cfg->pipeline.n_resolutions; i++) {
        const enpi_duration_t *res = &cfg->pipeline.resolutions[i];
        if (res->months == 0 && res->ms == 24 * 3600 * 1000LL) {
            *out = *res;
            return true;
        }
    }
    return false;
}

/* Decodes one UTF-8 sequence at s; returns its length (1 for a stray byte, cp = byte). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len <= 1) {
        *cp = c;
        return 1;
    }
    uint32_t v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = c;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

static bool in_ranges(uint32_t cp, const uint32_t (*r)[2], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i][0] && cp <= r[i][1])
            return true;
    return false;
}

/* Columns a code point takes in a terminal. */
static size_t cp_width(uint32_t cp)
{
    static const uint32_t zero[][2] = {
        {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
        {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x2060, 0x2064}, {0x20D0, 0x20FF},
        {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF},
    };
    static const uint32_t wide[][2] = {
        {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF}, {0x3400, 0x4DBF},
        {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3}, {0xF900, 0xFAFF},
        {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6}, {0x1F300, 0x1F64F},
        {0x1F900, 0x1F9FF}, {0x20000, 0x3FFFD},
    };
    if (in_ranges(cp, zero, sizeof zero / sizeof zero[0]))
        return 0;
    if (in_ranges(cp, wide, sizeof wide / sizeof wide[0]))
        return 2;
    return 1;
}

size_t enpi_report_text_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        p += utf8_next(p, &cp);
        w += cp_width(cp);
    }
    return w;
}

char *enpi_report_truncate(const char *s, size_t width, char *buf, size_t n)
{
    static const char ellipsis[] = "\xE2\x80\xA6"; /* U+2026, one column */
    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (enpi_report_text_width(s) <= width && strlen(s) < n) {
        memcpy(buf, s, strlen(s) + 1);
        return buf;
    }
    if (width == 0)
        return buf;
    /* Keep whole characters (with their combining marks) while they and the ellipsis
     * fit in both the columns and the buffer. */
    const unsigned char *p = (const unsigned char *)s;
    size_t used = 0, w = 0;
    while (*p) {
        uint32_t cp;
        size_t len = utf8_next(p, &cp);
        size_t cw = cp_width(cp);
        if (cw > 0 && w + cw > width - 1)
            break;
        if (used + len + sizeof ellipsis > n)
            break;
        memcpy(buf + used, p, len);
        used += len;
        w += cw;
        p += len;
    }
    if (used + sizeof ellipsis <= n) {
        memcpy(buf + used, ellipsis, sizeof ellipsis);
    } else {
        buf[used] = '\0';
    }
    return buf;
}
