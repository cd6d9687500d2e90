/*
 * test_chart.c - the pure parts of cli/chart_ticks.c (nice value ticks, tick labels, the
 * linear scale, date ticks in a zone, across DST changes and month/year ends, the output
 * format from a file name) and a smoke render of both charts to PNG, SVG and PDF files
 * checked for signature and size. ENPI_TEST_KEEP=DIR keeps the pictures there to look at.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chart.h"
#include "enpi_error.h"

#define H 3600000LL
#define DAY (24 * H)

static enpi_tz_t *zone(const char *name)
{
    enpi_tz_t *tz = NULL;
    assert_int_equal(enpi_tz_open(name, &tz), 0);
    return tz;
}

static int64_t at(const enpi_tz_t *tz, int y, int mo, int d, int h)
{
    enpi_civil_t c = {.year = y, .month = mo, .day = d, .hour = h, .has_time = true};
    return enpi_tz_from_civil(tz, &c);
}

/* ---------------------------------------------------------------- value ticks */

static void nice_ticks_pick_1_2_5_steps_covering_the_range(void **state)
{
    (void)state;
    enpi_chart_ticks_t t;
    assert_int_equal(enpi_chart_nice_ticks(0, 97.3, 6, &t), 0);
    assert_true(t.step == 20 && t.first == 0 && t.n == 6 && t.decimals == 0);

    assert_int_equal(enpi_chart_nice_ticks(0.12, 0.87, 10, &t), 0);
    assert_true(fabs(t.step - 0.1) < 1e-15);
    assert_int_equal(t.decimals, 1);
    assert_true(fabs(enpi_chart_tick_value(&t, 0) - 0.1) < 1e-15);
    assert_true(fabs(enpi_chart_tick_value(&t, t.n - 1) - 0.9) < 1e-15);

    /* 9 ticks allowed, 0..8 exactly: step 1 gives 9 ticks, fits */
    assert_int_equal(enpi_chart_nice_ticks(0, 8, 9, &t), 0);
    assert_true(t.step == 1 && t.n == 9);
    /* 8 ticks allowed: 0..8 needs step 2 (5 ticks) */
    assert_int_equal(enpi_chart_nice_ticks(0, 8, 8, &t), 0);
    assert_true(t.step == 2 && t.n == 5);

    /* negative range, last tick at or above hi */
    assert_int_equal(enpi_chart_nice_ticks(-13.2, 4.1, 5, &t), 0);
    assert_true(t.step == 5);
    assert_true(enpi_chart_tick_value(&t, 0) == -15);
    assert_true(enpi_chart_tick_value(&t, t.n - 1) == 5);

    /* large values: SEC in kWh/t of a cement plant */
    assert_int_equal(enpi_chart_nice_ticks(352.7, 418.4, 6, &t), 0);
    assert_true(t.step == 20 && enpi_chart_tick_value(&t, 0) == 340 &&
                enpi_chart_tick_value(&t, t.n - 1) == 420);
}

static void nice_ticks_never_exceed_max_and_always_cover(void **state)
{
    (void)state;
    srand(7);
    for (int i = 0; i < 2000; i++) {
        double a = (rand() / (double)RAND_MAX - 0.3) * pow(10, rand() % 9 - 3);
        double b = a + (rand() / (double)RAND_MAX) * pow(10, rand() % 9 - 3);
        int max = 3 + rand() % 8;
        enpi_chart_ticks_t t;
        assert_int_equal(enpi_chart_nice_ticks(a, b, max, &t), 0);
        assert_true(t.n >= 2 && t.n <= max);
        assert_true(t.first <= a + t.step * 1e-6); /* within a hair of a tick */
        assert_true(t.first + (t.n - 1) * t.step >= b - t.step * 1e-6);
        double m = t.step / pow(10, floor(log10(t.step) + 1e-9));
        assert_true(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9);
    }
}

static void nice_ticks_widen_an_empty_range_and_refuse_garbage(void **state)
{
    (void)state;
    enpi_chart_ticks_t t;
    assert_int_equal(enpi_chart_nice_ticks(0, 0, 5, &t), 0);
    assert_true(enpi_chart_tick_value(&t, 0) == 0 && enpi_chart_tick_value(&t, t.n - 1) >= 1);
    assert_int_equal(enpi_chart_nice_ticks(400, 400, 5, &t), 0);
    assert_true(enpi_chart_tick_value(&t, 0) < 400 && enpi_chart_tick_value(&t, t.n - 1) > 400);
    assert_int_equal(enpi_chart_nice_ticks(NAN, 1, 5, &t), ENPI_EINVAL);
    assert_int_equal(enpi_chart_nice_ticks(0, INFINITY, 5, &t), ENPI_EINVAL);
    assert_int_equal(enpi_chart_nice_ticks(2, 1, 5, &t), ENPI_EINVAL);
    assert_int_equal(enpi_chart_nice_ticks(0, 1, 2, &t), ENPI_EINVAL);
    /* straddling a tick needs 3 ticks whatever the step */
    assert_int_equal(enpi_chart_nice_ticks(-0.1, 0.1, 3, &t), 0);
    assert_true(t.n == 3 && fabs(t.step - 0.1) < 1e-15);
}

static void tick_labels_are_exact_and_grouped(void **state)
{
    (void)state;
    char b[48];
    enpi_chart_ticks_t t;
    assert_int_equal(enpi_chart_nice_ticks(0, 0.3, 4, &t), 0);
    enpi_chart_format_value(enpi_chart_tick_value(&t, 3), t.decimals, b, sizeof b);
    assert_string_equal(b, "0.3"); /* not 0.30000000000000004 */
    enpi_chart_format_value(-0.0001, 1, b, sizeof b);
    assert_string_equal(b, "0.0");
    enpi_chart_format_value(9999, 0, b, sizeof b);
    assert_string_equal(b, "9999");
    enpi_chart_format_value(1250000, 0, b, sizeof b);
    assert_string_equal(b, "1\xe2\x80\x89"
                           "250\xe2\x80\x89"
                           "000");
    enpi_chart_format_value(-12500.5, 1, b, sizeof b);
    assert_string_equal(b, "-12\xe2\x80\x89"
                           "500.5");
    assert_int_equal(enpi_chart_format_value(1250000, 0, b, 4), -1);
}

static void scale_maps_linearly_and_inverts_for_y(void **state)
{
    (void)state;
    enpi_chart_scale_t sx = {100, 200, 50, 1050};
    assert_true(enpi_chart_scale_map(&sx, 100) == 50);
    assert_true(enpi_chart_scale_map(&sx, 150) == 550);
    assert_true(enpi_chart_scale_map(&sx, 250) == 1550);
    enpi_chart_scale_t sy = {0, 10, 400, 0}; /* y grows downwards */
    assert_true(enpi_chart_scale_map(&sy, 0) == 400);
    assert_true(enpi_chart_scale_map(&sy, 10) == 0);
    assert_true(enpi_chart_scale_map(&sy, 2.5) == 300);
    enpi_chart_scale_t empty = {5, 5, 0, 100};
    assert_true(enpi_chart_scale_map(&empty, 5) == 50);
}

/* ---------------------------------------------------------------- date ticks */

static void hour_ticks_follow_the_local_clock_across_spring_forward(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("Europe/Berlin");
    /* 2018-03-25: 02:00 CET jumps to 03:00 CEST */
    int64_t from = at(tz, 2018, 3, 24, 18), to = at(tz, 2018, 3, 25, 12);
    enpi_chart_time_tick_t *k;
    size_t n;
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 12, &k, &n), 0);
    /* 17 real hours: 1 h steps would need 18 ticks, so every 2nd local hour */
    assert_int_equal(n, 9); /* 18 20 22 00 (02 does not exist) 04 06 08 10 12 */
    assert_string_equal(k[0].label, "18:00");
    assert_string_equal(k[0].context, "24 Mar 2018");
    assert_string_equal(k[3].label, "00:00");
    assert_string_equal(k[3].context, "25 Mar 2018");
    assert_string_equal(k[4].label, "04:00");
    assert_string_equal(k[4].context, "");
    assert_true(k[4].t - k[3].t == 3 * H);
    assert_string_equal(k[5].label, "06:00");
    assert_true(k[5].t - k[4].t == 2 * H);
    assert_string_equal(k[8].label, "12:00");
    assert_true(k[8].t == to);
    for (size_t i = 1; i < n; i++)
        assert_true(k[i].t > k[i - 1].t);
    free(k);
    enpi_tz_free(tz);
}

static void day_ticks_sit_on_local_midnights_across_fall_back(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("America/New_York");
    int64_t from = at(tz, 2018, 10, 30, 0), to = at(tz, 2018, 11, 8, 0);
    enpi_chart_time_tick_t *k;
    size_t n;
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 12, &k, &n), 0);
    assert_int_equal(n, 10); /* every day, both ends included */
    assert_string_equal(k[0].label, "30");
    assert_string_equal(k[0].context, "Oct 2018");
    assert_string_equal(k[2].label, "1");
    assert_string_equal(k[2].context, "Nov 2018");
    assert_string_equal(k[3].context, "");
    /* 2018-11-04 has 25 hours */
    assert_true(k[6].t - k[5].t == 25 * H);
    assert_true(k[7].t - k[6].t == 24 * H);
    free(k);
    /* fewer ticks allowed: every 2nd day, then Mondays */
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 5, &k, &n), 0);
    assert_true(n <= 5 && n >= 4);
    for (size_t i = 1; i < n; i++)
        assert_true(k[i].t - k[i - 1].t >= 47 * H);
    free(k);
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 2, &k, &n), 0);
    assert_int_equal(n, 1); /* weeks: the only Monday inside is 5 Nov */
    assert_string_equal(k[0].label, "5");
    free(k);
    enpi_tz_free(tz);
}

static void month_ticks_are_local_month_starts_with_the_year_once(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("Asia/Ho_Chi_Minh");
    int64_t from = at(tz, 2018, 1, 1, 0), to = at(tz, 2019, 1, 1, 0);
    enpi_chart_time_tick_t *k;
    size_t n;
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 14, &k, &n), 0);
    assert_int_equal(n, 13);
    assert_string_equal(k[0].label, "Jan");
    assert_string_equal(k[0].context, "2018");
    assert_string_equal(k[1].label, "Feb");
    assert_string_equal(k[1].context, "");
    assert_string_equal(k[12].label, "Jan");
    assert_string_equal(k[12].context, "2019");
    assert_true(k[0].t == from && k[12].t == to);
    assert_true(k[1].t - k[0].t == 31 * DAY);
    free(k);
    /* 6 ticks allowed: quarters */
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 6, &k, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(k[1].label, "Apr");
    free(k);
    /* ten years in 4 ticks: every 5 years */
    assert_int_equal(enpi_chart_time_ticks(tz, from, at(tz, 2028, 1, 1, 0), 4, &k, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(k[0].label, "2020");
    assert_string_equal(k[1].label, "2025");
    free(k);
    assert_int_equal(enpi_chart_time_ticks(tz, to, from, 4, &k, &n), ENPI_EINVAL);
    enpi_tz_free(tz);
}

static void month_ticks_in_a_dst_zone_keep_local_midnight(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("Europe/Berlin");
    int64_t from = at(tz, 2018, 1, 1, 0), to = at(tz, 2018, 12, 31, 0);
    enpi_chart_time_tick_t *k;
    size_t n;
    assert_int_equal(enpi_chart_time_ticks(tz, from, to, 12, &k, &n), 0);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        enpi_civil_t c;
        enpi_tz_to_civil(tz, k[i].t, &c);
        assert_int_equal(c.day, 1);
        assert_int_equal(c.hour, 0);
        assert_int_equal(c.month, (int)i + 1);
    }
    /* April starts at 22:00 UTC (CEST), January at 23:00 UTC (CET) */
    assert_int_equal(enpi_floor_div(k[3].t, H) % 24, 22);
    assert_int_equal(enpi_floor_div(k[0].t, H) % 24, 23);
    free(k);
    enpi_tz_free(tz);
}

/* ---------------------------------------------------------------- files */

static void format_comes_from_the_extension(void **state)
{
    (void)state;
    enpi_chart_format_t f;
    assert_int_equal(enpi_chart_format_of("a.svg", &f), 0);
    assert_int_equal(f, ENPI_CHART_SVG);
    assert_int_equal(enpi_chart_format_of("dir.x/b.PNG", &f), 0);
    assert_int_equal(f, ENPI_CHART_PNG);
    assert_int_equal(enpi_chart_format_of("r.pdf", &f), 0);
    assert_int_equal(f, ENPI_CHART_PDF);
    assert_int_equal(enpi_chart_format_of("a.jpg", &f), ENPI_EINVAL);
    assert_int_equal(enpi_chart_format_of("svg", &f), ENPI_EINVAL);
    assert_int_equal(enpi_chart_format_of("dir.svg/plot", &f), ENPI_EINVAL);
}

static char *out_path(char *buf, size_t n, const char *name)
{
    const char *keep = getenv("ENPI_TEST_KEEP");
    snprintf(buf, n, "%s/enpi-test-chart-%ld-%s", keep ? keep : "/tmp", keep ? 0L : (long)getpid(),
             name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* A year of daily windows: weekends without production (gaps), one outlier. */
static enpi_chart_window_t *synthetic_days(const enpi_tz_t *tz, int64_t from, size_t *n)
{
    enpi_chart_window_t *w = calloc(365, sizeof *w);
    assert_non_null(w);
    int64_t t = from;
    for (size_t i = 0; i < 365; i++) {
        int64_t next = enpi_tz_day_shift(tz, t, 1);
        double u = (i % 7 == 5 || i % 7 == 6) ? 0 : 40 + 10 * sin((double)i / 20);
        double e = 300 + u * (380 - 30 * (double)i / 365);
        if (i == 100)
            u = 0.5; /* a sliver of production: SEC far above the rest */
        w[i] = (enpi_chart_window_t){t, next, e, u, (300 + 380 * u) / (u > 0 ? u : 1)};
        t = next;
    }
    *n = 365;
    return w;
}

static void charts_render_to_png_svg_and_pdf(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("Asia/Ho_Chi_Minh");
    int64_t from = at(tz, 2018, 1, 1, 0), to = at(tz, 2019, 1, 1, 0);
    size_t nw;
    enpi_chart_window_t *w = synthetic_days(tz, from, &nw);
    enpi_chart_sec_t c = {
        .title = "C\xc3\xb4ng ty C\xe1\xbb\x95 ph\xe1\xba\xa7n Nh\xe1\xbb\xb1"
                 "a M\xc3\xaa Linh",
        .subtitle = "f001 - 1d windows, 2018-01-01 to 2019-01-01",
        .product_unit = "t",
        .tz = tz,
        .from = from,
        .to = to,
        .windows = w,
        .n_windows = nw,
        .baseline = ENPI_CHART_BASELINE_CONSTANT,
        .baseline_sec = 412.5,
        .target_pct = 8,
        .stretch_pct = 13,
        .font_size = 13,
    };
    char path[512], err[256];
    const struct {
        const char *name;
        enpi_chart_format_t fmt;
        const char *magic;
        size_t magic_len;
    } outs[] = {
        {"sec.png", ENPI_CHART_PNG, "\x89PNG\r\n\x1a\n", 8},
        {"sec.svg", ENPI_CHART_SVG, "<?xml", 5},
        {"sec.pdf", ENPI_CHART_PDF, "%PDF-", 5},
    };
    for (size_t i = 0; i < 3; i++) {
        enpi_chart_file_t *f;
        cairo_t *cr;
        out_path(path, sizeof path, outs[i].name);
        assert_int_equal(
            enpi_chart_file_open(path, outs[i].fmt, 1200, 800, &f, &cr, err, sizeof err), 0);
        c.baseline = i == 2 ? ENPI_CHART_BASELINE_WINDOWS : ENPI_CHART_BASELINE_CONSTANT;
        assert_int_equal(enpi_chart_draw_sec(cr, 10, 10, 1180, 780, &c), 0);
        assert_int_equal(enpi_chart_file_close(f, err, sizeof err), 0);
        size_t len;
        unsigned char *b = slurp(path, &len);
        assert_true(len > 1000);
        assert_memory_equal(b, outs[i].magic, outs[i].magic_len);
        if (outs[i].fmt == ENPI_CHART_PNG) {
            /* IHDR: width and height, big endian, at bytes 16 and 20 */
            unsigned wpx = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
            unsigned hpx = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
            assert_int_equal(wpx, 1200);
            assert_int_equal(hpx, 800);
        }
        if (outs[i].fmt == ENPI_CHART_SVG)
            assert_non_null(strstr((char *)b, "width=\"1200px\" height=\"800px\""));
        free(b);
        if (!getenv("ENPI_TEST_KEEP"))
            unlink(path);
    }

    /* the savings bars, with a no-data facility and a negative saving */
    enpi_chart_bar_t bars[] = {
        {"C\xc3\xb4ng ty C\xe1\xbb\x95 ph\xe1\xba\xa7n Nh\xe1\xbb\xb1"
         "a M\xc3\xaa Linh",
         true, 14.2},
        {"Dệt may Thăng Long", true, 9.1},
        {"Cơ khí Hà Nội — a name long enough that it has to be cut", true, -3.4},
        {"Gạch Đồng Tâm", false, 0},
        {"Giấy Bãi Bằng", true, 2.0},
    };
    enpi_chart_file_t *f;
    cairo_t *cr;
    out_path(path, sizeof path, "bars.png");
    assert_int_equal(enpi_chart_file_open(path, ENPI_CHART_PNG, 900, 500, &f, &cr, err, sizeof err),
                     0);
    assert_int_equal(enpi_chart_draw_savings(cr, 10, 10, 880, 480, bars, 5, 8, 13, 13), 0);
    assert_int_equal(enpi_chart_file_close(f, err, sizeof err), 0);
    assert_int_equal(access(path, R_OK), 0);
    if (!getenv("ENPI_TEST_KEEP"))
        unlink(path);

    /* a district of 30 facilities in the PDF's summary size: rows shrink to fit */
    enpi_chart_bar_t many[30];
    char names[30][64];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof names[i], "C\xc3\xb4ng ty s\xe1\xbb\x91 %d", i + 1);
        many[i] = (enpi_chart_bar_t){names[i], i % 9 != 4, -6 + 0.8 * i};
    }
    out_path(path, sizeof path, "bars30.png");
    assert_int_equal(enpi_chart_file_open(path, ENPI_CHART_PNG, 595, 560, &f, &cr, err, sizeof err),
                     0);
    assert_int_equal(enpi_chart_draw_savings(cr, 20, 10, 555, 540, many, 30, 8, 13, 9), 0);
    assert_int_equal(enpi_chart_file_close(f, err, sizeof err), 0);
    if (!getenv("ENPI_TEST_KEEP"))
        unlink(path);

    /* no windows with production at all, and no baseline */
    c.n_windows = 0;
    c.baseline = ENPI_CHART_BASELINE_NONE;
    out_path(path, sizeof path, "empty.png");
    assert_int_equal(enpi_chart_file_open(path, ENPI_CHART_PNG, 600, 400, &f, &cr, err, sizeof err),
                     0);
    assert_int_equal(enpi_chart_draw_sec(cr, 0, 0, 600, 400, &c), 0);
    assert_int_equal(enpi_chart_file_close(f, err, sizeof err), 0);
    if (!getenv("ENPI_TEST_KEEP"))
        unlink(path);
    free(w);
    enpi_tz_free(tz);
}

/* Pixels of the SEC line's colour (cli/chart_int.h c_sec) in column x of an RGB24 image. */
static int sec_pixels_in_column(cairo_surface_t *s, int x)
{
    unsigned char *data = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s), h = cairo_image_surface_get_height(s);
    int n = 0;
    for (int y = 0; y < h; y++) {
        uint32_t px = *(uint32_t *)(data + (size_t)y * (size_t)stride + (size_t)x * 4);
        int r = (px >> 16) & 255, g = (px >> 8) & 255, b = px & 255;
        if (abs(r - 31) < 12 && abs(g - 79) < 12 && abs(b - 156) < 12)
            n++;
    }
    return n;
}

static void a_window_without_production_is_a_gap_not_a_zero(void **state)
{
    (void)state;
    enpi_tz_t *tz = zone("UTC");
    /* three days; the middle one has energy but no production */
    enpi_chart_window_t w[] = {
        {0, DAY, 400, 1, NAN},
        {DAY, 2 * DAY, 50, 0, NAN},
        {2 * DAY, 3 * DAY, 380, 1, NAN},
    };
    enpi_chart_sec_t c = {.title = "gap",
                          .tz = tz,
                          .from = 0,
                          .to = 3 * DAY,
                          .windows = w,
                          .n_windows = 3,
                          .baseline = ENPI_CHART_BASELINE_NONE,
                          .target_pct = 8,
                          .stretch_pct = 13,
                          .font_size = 12};
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 900, 500);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    assert_int_equal(enpi_chart_draw_sec(cr, 0, 0, 900, 500, &c), 0);
    cairo_surface_flush(s);
    /* the plot spans roughly x 70..890: the windows' middles are near 210, 480, 750 */
    assert_true(sec_pixels_in_column(s, 210) > 0);
    assert_int_equal(sec_pixels_in_column(s, 480), 0);
    assert_true(sec_pixels_in_column(s, 750) > 0);
    /* with production in the middle window, the line runs through it */
    w[1].units = 0.125;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    assert_int_equal(enpi_chart_draw_sec(cr, 0, 0, 900, 500, &c), 0);
    cairo_surface_flush(s);
    assert_true(sec_pixels_in_column(s, 480) > 0);
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    enpi_tz_free(tz);
}

static void a_file_that_cannot_be_written_is_an_error_and_leaves_nothing(void **state)
{
    (void)state;
    enpi_chart_file_t *f;
    cairo_t *cr;
    char err[256];
    assert_int_equal(enpi_chart_file_open("/nonexistent-dir/x.png", ENPI_CHART_PNG, 10, 10, &f, &cr,
                                          err, sizeof err),
                     ENPI_EIO);
    assert_non_null(strstr(err, "/nonexistent-dir/x.png"));
    /* abandoned: the temporary file is removed and the target never appears */
    char path[512];
    out_path(path, sizeof path, "abandoned.svg");
    assert_int_equal(enpi_chart_file_open(path, ENPI_CHART_SVG, 10, 10, &f, &cr, err, sizeof err),
                     0);
    enpi_chart_file_abort(f);
    assert_int_not_equal(access(path, F_OK), 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    assert_int_not_equal(access(tmp, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nice_ticks_pick_1_2_5_steps_covering_the_range),
        cmocka_unit_test(nice_ticks_never_exceed_max_and_always_cover),
        cmocka_unit_test(nice_ticks_widen_an_empty_range_and_refuse_garbage),
        cmocka_unit_test(tick_labels_are_exact_and_grouped),
        cmocka_unit_test(scale_maps_linearly_and_inverts_for_y),
        cmocka_unit_test(hour_ticks_follow_the_local_clock_across_spring_forward),
        cmocka_unit_test(day_ticks_sit_on_local_midnights_across_fall_back),
        cmocka_unit_test(month_ticks_are_local_month_starts_with_the_year_once),
        cmocka_unit_test(month_ticks_in_a_dst_zone_keep_local_midnight),
        cmocka_unit_test(format_comes_from_the_extension),
        cmocka_unit_test(charts_render_to_png_svg_and_pdf),
        cmocka_unit_test(a_window_without_production_is_a_gap_not_a_zero),
        cmocka_unit_test(a_file_that_cannot_be_written_is_an_error_and_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
