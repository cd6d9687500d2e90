/*
 * test_report.c - the report's arithmetic (cli/report.c, SPEC §6) against figures worked
 * out by hand: the OLS fit and its poor-fit flag, both baseline models, statuses at the
 * exact target and stretch edges, every no_data cause, the programme's counts, sums,
 * shares and uptake in percentage points, the projection, the choice of resolution for
 * a period, and display widths of Vietnamese names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define DAY 86400000LL

static void fit_exact_line_skips_zero_production(void **state)
{
    (void)state;
    /* e = 1 + 2u on four days; the day without production (u = 0, e = 100) is left out. */
    double u[] = {1, 2, 0, 3, 4}, e[] = {3, 5, 100, 7, 9};
    enpi_report_fit_t f;
    enpi_report_fit(u, e, 5, &f);
    assert_true(f.ok);
    assert_int_equal(f.n, 4);
    assert_true(fabs(f.a - 1) < 1e-12);
    assert_true(fabs(f.b - 2) < 1e-12);
    assert_true(fabs(f.r2 - 1) < 1e-12);
    assert_true(f.poor_fit); /* n = 4 < 10: flagged although R² = 1 */
}

static void fit_by_hand(void **state)
{
    (void)state;
    /* u = 1,2,3, e = 2,3,5: means 2 and 10/3; Suu = 2, Sue = 3, See = 14/3;
     * b = 3/2, a = 10/3 - 3 = 1/3, R² = 9 / (2 * 14/3) = 27/28. */
    double u[] = {1, 2, 3}, e[] = {2, 3, 5};
    enpi_report_fit_t f;
    enpi_report_fit(u, e, 3, &f);
    assert_true(f.ok);
    assert_true(fabs(f.b - 1.5) < 1e-12);
    assert_true(fabs(f.a - 1.0 / 3.0) < 1e-12);
    assert_true(fabs(f.r2 - 27.0 / 28.0) < 1e-12);
}

static void fit_good_with_ten_days_is_not_poor(void **state)
{
    (void)state;
    double u[12], e[12];
    for (int i = 0; i < 12; i++) {
        u[i] = i + 1;
        e[i] = 10 + 2 * u[i];
    }
    enpi_report_fit_t f;
    enpi_report_fit(u, e, 12, &f);
    assert_true(f.ok && !f.poor_fit);
    assert_int_equal(f.n, 12);
    assert_true(fabs(f.a - 10) < 1e-12 && fabs(f.b - 2) < 1e-12);
}

static void fit_low_r2_is_poor(void **state)
{
    (void)state;
    /* u: five 1s and five 3s (mean 2, du = ±1); e alternates 1,3 (mean 2, de = ±1):
     * Suu = 10, See = 10, Sue = 2 -> b = 0.2, a = 1.6, R² = 4 / 100 = 0.04. */
    double u[] = {1, 1, 1, 1, 1, 3, 3, 3, 3, 3}, e[] = {1, 3, 1, 3, 1, 3, 1, 3, 1, 3};
    enpi_report_fit_t f;
    enpi_report_fit(u, e, 10, &f);
    assert_true(f.ok);
    assert_int_equal(f.n, 10);
    assert_true(fabs(f.b - 0.2) < 1e-12);
    assert_true(fabs(f.a - 1.6) < 1e-12);
    assert_true(fabs(f.r2 - 0.04) < 1e-12);
    assert_true(f.poor_fit);
}

static void fit_impossible(void **state)
{
    (void)state;
    enpi_report_fit_t f;
    double u1[] = {5}, e1[] = {7};
    enpi_report_fit(u1, e1, 1, &f);
    assert_false(f.ok);
    assert_int_equal(f.n, 1);
    double u2[] = {2, 2, 2}, e2[] = {1, 2, 3}; /* no spread in production */
    enpi_report_fit(u2, e2, 3, &f);
    assert_false(f.ok);
    assert_true(f.poor_fit);
}

static enpi_report_input_t sec_input(double base_e, double base_u, double e, double u)
{
    enpi_report_input_t in = {0};
    in.model = ENPI_BASELINE_SEC;
    in.baseline_ok = true;
    in.base_energy_kwh = base_e;
    in.base_units = base_u;
    in.base_rows = 12;
    in.energy_kwh = e;
    in.units = u;
    in.target_pct = 8;
    in.stretch_pct = 13;
    return in;
}

static void sec_model_statuses_at_the_edges(void **state)
{
    (void)state;
    enpi_report_facility_t f;
    /* baseline SEC 1000/10 = 100; units(P) 9 -> expected 900 */
    enpi_report_input_t in = sec_input(1000, 10, 828, 9);
    enpi_report_evaluate(&in, &f);
    assert_true(f.baseline_sec == 100);
    assert_true(f.expected_kwh == 900);
    assert_true(f.saved_kwh == 72);
    assert_true(f.saving_pct == 8); /* 100 * 72 / 900 exactly */
    assert_true(f.sec == 828.0 / 9.0);
    assert_int_equal(f.status, ENPI_REPORT_MET);
    assert_null(f.no_data_reason);
    assert_false(f.has_fit);

    in.energy_kwh = 783; /* saved 117: 13 % exactly */
    enpi_report_evaluate(&in, &f);
    assert_true(f.saving_pct == 13);
    assert_int_equal(f.status, ENPI_REPORT_STRETCH_MET);

    in.energy_kwh = 829; /* 71/900 = 7.89 % */
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NOT_MET);

    in.energy_kwh = 1000; /* used more than expected */
    enpi_report_evaluate(&in, &f);
    assert_true(f.saved_kwh == -100);
    assert_true(fabs(f.saving_pct - (-100.0 / 9.0)) < 1e-12);
    assert_int_equal(f.status, ENPI_REPORT_NOT_MET);
    assert_string_equal(enpi_report_status_name(f.status), "not_met");
}

static void fixed_sec(void **state)
{
    (void)state;
    enpi_report_input_t in = sec_input(0, 0, 3600, 10);
    in.fixed_sec = true;
    in.fixed_sec_value = 412.5;
    in.baseline_ok = false; /* a fixed SEC needs no baseline period */
    in.base_rows = 0;
    enpi_report_facility_t f;
    enpi_report_evaluate(&in, &f);
    assert_true(f.fixed_sec);
    assert_true(f.baseline_sec == 412.5);
    assert_true(f.expected_kwh == 4125);
    assert_true(f.saved_kwh == 525);
    assert_true(fabs(f.saving_pct - 52500.0 / 4125.0) < 1e-12); /* 12.73 % */
    assert_int_equal(f.status, ENPI_REPORT_MET);
}

static void no_data_causes(void **state)
{
    (void)state;
    enpi_report_facility_t f;

    /* zero production in the period: energy still shown, SEC null */
    enpi_report_input_t in = sec_input(1000, 10, 250, 0);
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NO_DATA);
    assert_string_equal(f.no_data_reason, "no production in the period");
    assert_true(f.energy_kwh == 250);
    assert_true(isnan(f.sec));
    assert_true(f.baseline_sec == 100); /* the baseline exists; only P lacks production */
    assert_true(isnan(f.expected_kwh) && isnan(f.saved_kwh) && isnan(f.saving_pct));

    /* no baseline configured */
    in = sec_input(0, 0, 500, 5);
    in.model = ENPI_BASELINE_NONE;
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NO_DATA);
    assert_string_equal(f.no_data_reason, "no baseline configured");
    assert_true(f.sec == 100);
    assert_true(isnan(f.baseline_sec));

    /* a baseline period without data, or without production */
    in = sec_input(0, 0, 500, 5);
    in.base_rows = 0;
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NO_DATA);
    assert_string_equal(f.no_data_reason, "no data in the baseline period");
    in = sec_input(700, 0, 500, 5);
    enpi_report_evaluate(&in, &f);
    assert_string_equal(f.no_data_reason, "no production in the baseline period");
    assert_true(isnan(f.baseline_sec));
}

/* Baseline days with e = 10 + 2u for u = 1..12 (a good fit: a = 10, b = 2). */
static void good_days(enpi_cli_row_t *days)
{
    for (int i = 0; i < 12; i++) {
        memset(&days[i], 0, sizeof days[i]);
        days[i].start = i * DAY;
        days[i].end = (i + 1) * DAY;
        days[i].units = i + 1;
        days[i].energy_kwh = 10 + 2 * (i + 1);
        days[i].readings = 2;
    }
}

static void regression_expected_by_hand(void **state)
{
    (void)state;
    enpi_cli_row_t base[12];
    good_days(base);
    /* P: a day with 5 units, a day without production but with readings (counts a),
     * and a day without readings (left out). */
    enpi_cli_row_t p[3] = {{0}};
    p[0].units = 5;
    p[0].readings = 3;
    p[1].units = 0;
    p[1].readings = 1;
    p[2].units = 7;
    p[2].readings = 0;
    enpi_report_input_t in = {0};
    in.model = ENPI_BASELINE_REGRESSION;
    in.days_ok = true;
    in.base_days = base;
    in.n_base_days = 12;
    in.days = p;
    in.n_days = 3;
    in.units = 12;
    in.energy_kwh = 24;
    in.target_pct = 8;
    in.stretch_pct = 13;
    enpi_report_facility_t f;
    enpi_report_evaluate(&in, &f);
    /* expected = (10 + 2*5) + (10 + 0) = 30; saved 6 = 20 % */
    assert_true(f.has_fit && f.fit.ok && !f.fit.poor_fit);
    assert_int_equal(f.fit.n, 12);
    assert_true(fabs(f.expected_kwh - 30) < 1e-9);
    assert_true(fabs(f.saved_kwh - 6) < 1e-9);
    assert_true(fabs(f.saving_pct - 20) < 1e-9);
    assert_true(fabs(f.baseline_sec - 2.5) < 1e-12); /* expected / units(P) */
    assert_true(f.sec == 2);
    assert_int_equal(f.status, ENPI_REPORT_STRETCH_MET);
}

static void regression_poor_fit_is_flagged_not_hidden(void **state)
{
    (void)state;
    /* the low-R² days of fit_low_r2_is_poor: a = 1.6, b = 0.2 */
    enpi_cli_row_t base[10] = {{0}};
    double u[] = {1, 1, 1, 1, 1, 3, 3, 3, 3, 3}, e[] = {1, 3, 1, 3, 1, 3, 1, 3, 1, 3};
    for (int i = 0; i < 10; i++) {
        base[i].units = u[i];
        base[i].energy_kwh = e[i];
        base[i].readings = 1;
    }
    enpi_cli_row_t p[2] = {{0}};
    p[0].units = 2;
    p[0].readings = 1;
    p[1].units = 3;
    p[1].readings = 1;
    enpi_report_input_t in = {0};
    in.model = ENPI_BASELINE_REGRESSION;
    in.days_ok = true;
    in.base_days = base;
    in.n_base_days = 10;
    in.days = p;
    in.n_days = 2;
    in.units = 5;
    in.energy_kwh = 4;
    in.target_pct = 8;
    in.stretch_pct = 13;
    enpi_report_facility_t f;
    enpi_report_evaluate(&in, &f);
    /* expected = (1.6 + 0.4) + (1.6 + 0.6) = 4.2; saved 0.2 = 4.76 % */
    assert_true(f.has_fit && f.fit.poor_fit);
    assert_true(fabs(f.expected_kwh - 4.2) < 1e-12);
    assert_true(fabs(f.saving_pct - 100 * 0.2 / 4.2) < 1e-9);
    assert_int_equal(f.status, ENPI_REPORT_NOT_MET);
}

static void regression_no_data_causes(void **state)
{
    (void)state;
    enpi_cli_row_t base[12];
    good_days(base);
    enpi_report_input_t in = {0};
    in.model = ENPI_BASELINE_REGRESSION;
    in.days_ok = false;
    in.days_reason = "the regression model needs 1d in pipeline.resolutions";
    in.units = 5;
    in.energy_kwh = 5;
    enpi_report_facility_t f;
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NO_DATA);
    assert_string_equal(f.no_data_reason, in.days_reason);
    assert_false(f.has_fit);

    /* baseline without production days */
    in.days_ok = true;
    in.base_days = base;
    in.n_base_days = 0;
    enpi_report_evaluate(&in, &f);
    assert_int_equal(f.status, ENPI_REPORT_NO_DATA);
    assert_string_equal(f.no_data_reason, "no baseline days with production");
    assert_true(f.has_fit && f.fit.n == 0);

    /* a fit, but no production in P */
    in.n_base_days = 12;
    in.units = 0;
    enpi_report_evaluate(&in, &f);
    assert_string_equal(f.no_data_reason, "no production in the period");
    assert_true(f.has_fit && f.fit.ok);
    assert_true(isnan(f.baseline_sec));
}

/* A report of four facilities: stretch_met, met, not_met and no_data. */
static void four_facilities(enpi_report_t *r, enpi_report_facility_t *f)
{
    memset(r, 0, sizeof *r);
    memset(f, 0, 4 * sizeof *f);
    enpi_report_input_t in = sec_input(1000, 10, 783, 9); /* exp 900, saved 117 */
    enpi_report_evaluate(&in, &f[0]);
    in = sec_input(1000, 10, 828, 9); /* exp 900, saved 72 */
    enpi_report_evaluate(&in, &f[1]);
    in = sec_input(2000, 10, 2100, 10); /* exp 2000, saved -100 */
    enpi_report_evaluate(&in, &f[2]);
    in = sec_input(2000, 10, 300, 0); /* no production */
    enpi_report_evaluate(&in, &f[3]);
    for (int i = 0; i < 4; i++) {
        f[i].from = 100 * DAY;
        f[i].to = 465 * DAY;
        f[i].data_end = 465 * DAY;
    }
    /* aware: f0 before the period, f1 on its first instant (counts at start), f2 on
     * its last day, f3 exactly at its end (not counted). applying: f1 only, mid-way. */
    f[0].has_aware_since = true;
    f[0].aware_since = 10 * DAY;
    f[1].has_aware_since = true;
    f[1].aware_since = 100 * DAY;
    f[2].has_aware_since = true;
    f[2].aware_since = 464 * DAY;
    f[3].has_aware_since = true;
    f[3].aware_since = 465 * DAY;
    f[1].has_applying_since = true;
    f[1].applying_since = 200 * DAY;
    r->facilities = f;
    r->n_facilities = 4;
    r->aware_target_pp = 20;
    r->applying_target_pp = 0;
    r->target_pct = 8;
    r->stretch_pct = 13;
}

static void programme_totals_and_shares(void **state)
{
    (void)state;
    enpi_report_t r;
    enpi_report_facility_t f[4];
    four_facilities(&r, f);
    assert_int_equal(f[0].status, ENPI_REPORT_STRETCH_MET);
    assert_int_equal(f[1].status, ENPI_REPORT_MET);
    assert_int_equal(f[2].status, ENPI_REPORT_NOT_MET);
    assert_int_equal(f[3].status, ENPI_REPORT_NO_DATA);
    enpi_report_programme(&r);
    const enpi_report_programme_t *p = &r.programme_figures;
    assert_int_equal(p->facilities, 4);
    assert_int_equal(p->with_data, 3);
    assert_int_equal(p->met, 2); /* stretch included */
    assert_int_equal(p->stretch_met, 1);
    assert_true(fabs(p->met_pct - 200.0 / 3.0) < 1e-12);
    assert_true(fabs(p->stretch_met_pct - 100.0 / 3.0) < 1e-12);
    /* sums over the facilities with data only (f3's 300 kWh stay out) */
    assert_true(p->expected_kwh == 900 + 900 + 2000);
    assert_true(p->energy_kwh == 783 + 828 + 2100);
    assert_true(p->saved_kwh == 117 + 72 - 100);
    assert_true(fabs(p->saving_pct - 100.0 * 89 / 3800) < 1e-12);
    /* aware 2 at start (f0, f1), 3 at end (f0, f1, f2): +25 pp of 4, target 20 */
    assert_int_equal(p->aware.start, 2);
    assert_int_equal(p->aware.end, 3);
    assert_true(fabs(p->aware.increase_pp - 25) < 1e-12);
    assert_true(p->aware.target_pp == 20);
    assert_int_equal(p->applying.start, 0);
    assert_int_equal(p->applying.end, 1);
    assert_true(fabs(p->applying.increase_pp - 25) < 1e-12);
    assert_true(isnan(p->applying.target_pp)); /* 0: no target */
}

static void programme_without_data(void **state)
{
    (void)state;
    enpi_report_facility_t f = {0};
    enpi_report_input_t in = sec_input(0, 0, 5, 5);
    in.model = ENPI_BASELINE_NONE;
    enpi_report_evaluate(&in, &f);
    enpi_report_t r = {0};
    r.facilities = &f;
    r.n_facilities = 1;
    enpi_report_programme(&r);
    assert_int_equal(r.programme_figures.facilities, 1);
    assert_int_equal(r.programme_figures.with_data, 0);
    assert_true(isnan(r.programme_figures.met_pct));
    assert_true(isnan(r.programme_figures.saving_pct));
    assert_true(r.programme_figures.expected_kwh == 0);
    assert_true(r.programme_figures.aware.increase_pp == 0);
}

static void projection_scales_by_covered_share(void **state)
{
    (void)state;
    enpi_report_t r;
    enpi_report_facility_t f[4];
    four_facilities(&r, f);
    enpi_report_programme(&r);
    enpi_report_project(&r);
    assert_false(r.projection.needed); /* every facility's data reaches the period end */
    assert_true(f[0].complete && f[0].covered == 1);
    assert_true(isnan(r.projection.saved_kwh));

    /* f0's data reaches a quarter into the period (91.25 days of 365), f1 none */
    f[0].data_end = f[0].from + (f[0].to - f[0].from) / 4;
    f[1].data_end = INT64_MIN;
    enpi_report_project(&r);
    assert_true(r.projection.needed);
    assert_int_equal(r.projection.projected, 1);
    assert_int_equal(r.projection.unprojectable, 1);
    assert_false(f[0].complete);
    assert_true(f[0].covered == 0.25);
    assert_true(f[0].proj_energy_kwh == 4 * 783);
    assert_true(f[0].proj_expected_kwh == 4 * 900);
    assert_true(f[0].proj_saved_kwh == 4 * 117);
    assert_true(isnan(f[3].proj_energy_kwh)); /* no_data: not projected */
    /* f1 counts as it is, f2 is complete */
    assert_true(r.projection.expected_kwh == 3600 + 900 + 2000);
    assert_true(r.projection.energy_kwh == 3132 + 828 + 2100);
    assert_true(r.projection.saved_kwh == 468 + 72 - 100);
    assert_true(fabs(r.projection.saving_pct - 100.0 * 440 / 6500) < 1e-12);
}

static void resolution_for_a_period(void **state)
{
    (void)state;
    enpi_tz_t *tz;
    assert_int_equal(enpi_tz_open("Asia/Ho_Chi_Minh", &tz), 0);
    enpi_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.pipeline.n_resolutions = 4;
    cfg.pipeline.resolutions[0] = (enpi_duration_t){15 * 60000, 0};
    cfg.pipeline.resolutions[1] = (enpi_duration_t){0, 1};
    cfg.pipeline.resolutions[2] = (enpi_duration_t){DAY, 0};
    cfg.pipeline.resolutions[3] = (enpi_duration_t){3600000, 0};
    const int64_t h7 = 7 * 3600000LL;
    /* 2018-01-01 and 2019-01-01 local (UTC+7): 17532 and 17897 days after the epoch */
    int64_t y18 = 17532 * DAY - h7, y19 = 17897 * DAY - h7;
    enpi_duration_t res;
    assert_true(enpi_report_resolution_for(&cfg, tz, y18, y19, &res));
    assert_int_equal(res.months, 1);
    assert_true(enpi_report_resolution_for(&cfg, tz, y18 + 4 * DAY, y19, &res));
    assert_true(res.months == 0 && res.ms == DAY);
    assert_true(enpi_report_resolution_for(&cfg, tz, y18 + 10 * 3600000LL, y19, &res));
    assert_true(res.ms == 3600000);
    assert_true(enpi_report_resolution_for(&cfg, tz, y18 + 15 * 60000, y19, &res));
    assert_true(res.ms == 15 * 60000);
    assert_false(enpi_report_resolution_for(&cfg, tz, y18 + 7 * 60000, y19, &res));
    assert_true(enpi_report_daily(&cfg, &res) && res.ms == DAY);
    cfg.pipeline.resolutions[2] = (enpi_duration_t){6 * 3600000LL, 0};
    assert_false(enpi_report_daily(&cfg, &res));
    enpi_tz_free(tz);
}

static void display_width_of_names(void **state)
{
    (void)state;
    const char *nfc = "C\xC3\xB4ng ty C\xE1\xBB\x95 ph\xE1\xBA\xA7n Nh\xE1\xBB\xB1"
                      "a M\xC3\xAA Linh"; /* "Công ty Cổ phần Nhựa Mê Linh", 28 columns */
    assert_int_equal(enpi_report_text_width(nfc), 28);
    /* "Cổ" in NFD: C, o, U+0302 (circumflex), U+0309 (hook above): 2 columns */
    const char *nfd = "Co\xCC\x82\xCC\x89";
    assert_int_equal(enpi_report_text_width(nfd), 2);
    assert_int_equal(enpi_report_text_width("\xE5\xB7\xA5\xE5\x8E\x82"), 4); /* 工厂 */

    char buf[128];
    /* cut to 10 columns: 9 characters and the ellipsis, never half a character */
    enpi_report_truncate(nfc, 10, buf, sizeof buf);
    assert_string_equal(buf, "C\xC3\xB4ng ty C\xE2\x80\xA6");
    assert_int_equal(enpi_report_text_width(buf), 10);
    /* a fitting name is kept whole */
    enpi_report_truncate(nfc, 28, buf, sizeof buf);
    assert_string_equal(buf, nfc);
    /* NFD: the cut character's marks go with it */
    enpi_report_truncate("Co\xCC\x82\xCC\x89ng ty", 2, buf, sizeof buf);
    assert_string_equal(buf, "C\xE2\x80\xA6");
    enpi_report_truncate("Co\xCC\x82\xCC\x89ng ty", 3, buf, sizeof buf);
    assert_string_equal(buf, "Co\xCC\x82\xCC\x89\xE2\x80\xA6");
    /* wide characters are not split across the edge */
    enpi_report_truncate("\xE5\xB7\xA5\xE5\x8E\x82\xE5\x8E\x82", 4, buf, sizeof buf);
    assert_string_equal(buf, "\xE5\xB7\xA5\xE2\x80\xA6");
    /* a small buffer still ends on a whole character */
    enpi_report_truncate(nfc, 28, buf, 8);
    assert_true(strlen(buf) < 8);
    assert_true(enpi_report_text_width(buf) <= 28);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fit_exact_line_skips_zero_production),
        cmocka_unit_test(fit_by_hand),
        cmocka_unit_test(fit_good_with_ten_days_is_not_poor),
        cmocka_unit_test(fit_low_r2_is_poor),
        cmocka_unit_test(fit_impossible),
        cmocka_unit_test(sec_model_statuses_at_the_edges),
        cmocka_unit_test(fixed_sec),
        cmocka_unit_test(no_data_causes),
        cmocka_unit_test(regression_expected_by_hand),
        cmocka_unit_test(regression_poor_fit_is_flagged_not_hidden),
        cmocka_unit_test(regression_no_data_causes),
        cmocka_unit_test(programme_totals_and_shares),
        cmocka_unit_test(programme_without_data),
        cmocka_unit_test(projection_scales_by_covered_share),
        cmocka_unit_test(resolution_for_a_period),
        cmocka_unit_test(display_width_of_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
