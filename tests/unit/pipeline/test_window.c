/*
 * test_window.c - pins pipeline/window.c: resolution validity and codes, fixed windows
 * aligned to local midnight and clipped on DST days, calendar days and months, and
 * that walking with enpi_window_next tiles time exactly.
 *
 * Instants are derived by hand as day_number * 86400000 - offset (2018-01-01 = 17532).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "window.h"

#define MIN INT64_C(60000)
#define H INT64_C(3600000)
#define DAY INT64_C(86400000)

#define D_2018_01_01 INT64_C(17532)
#define D_2018_03_25 INT64_C(17615)
#define D_2018_10_28 INT64_C(17832)
#define D_2018_11_04 INT64_C(17839)
#define D_2018_04_01 INT64_C(17622)
#define D_2018_10_07 INT64_C(17811)
#define D_2019_01_01 INT64_C(17897)

static const enpi_duration_t R15M = {15 * MIN, 0};
static const enpi_duration_t R1H = {H, 0};
static const enpi_duration_t R1D = {DAY, 0};
static const enpi_duration_t R1MO = {0, 1};

static enpi_tz_t *open_zone(const char *name)
{
    enpi_tz_t *tz = NULL;
    if (enpi_tz_open(name, &tz) != 0)
        fail_msg("cannot open %s", name);
    return tz;
}

static void expect_format(const enpi_tz_t *tz, int64_t t, const char *text)
{
    char buf[64];
    assert_true(enpi_tz_format(tz, t, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, text);
}

/*
 * Walks the windows from the one containing `from` while they start before `to`,
 * checking that each starts where the previous ended, is non-empty, is no longer
 * than the resolution, and is what enpi_window_containing says for its first and
 * last instant. Returns the number of windows.
 */
static int walk(const enpi_tz_t *tz, const enpi_duration_t *res, int64_t from, int64_t to)
{
    enpi_window_t w = enpi_window_containing(tz, res, from);
    assert_true(w.start <= from && from < w.end);
    int n = 0;
    while (w.start < to) {
        assert_true(w.start < w.end);
        if (res->months == 0 && res->ms != DAY)
            assert_true(w.end - w.start <= res->ms);
        enpi_window_t a = enpi_window_containing(tz, res, w.start);
        enpi_window_t b = enpi_window_containing(tz, res, w.end - 1);
        assert_int_equal(a.start, w.start);
        assert_int_equal(a.end, w.end);
        assert_int_equal(b.start, w.start);
        assert_int_equal(b.end, w.end);
        enpi_window_t next = enpi_window_next(tz, res, w);
        assert_int_equal(next.start, w.end);
        w = next;
        n++;
    }
    return n;
}

static void test_resolution_valid(void **state)
{
    (void)state;
    static const struct {
        enpi_duration_t d;
        bool valid;
    } cases[] = {
        {{15 * MIN, 0}, true},  {{H, 0}, true},          {{DAY, 0}, true},
        {{0, 1}, true},         {{30000, 0}, true},      {{5 * MIN, 0}, true},
        {{90000, 0}, true},     {{250, 0}, true},        {{12 * H, 0}, true},
        {{7 * MIN, 0}, false},  {{7 * DAY, 0}, false},   {{2 * DAY, 0}, false},
        {{0, 2}, false},        {{0, 12}, false},        {{0, 0}, false},
        {{-H, 0}, false},       {{5 * H, 0}, false},     {{H, 1}, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (enpi_resolution_valid(&cases[i].d) != cases[i].valid)
            fail_msg("case %zu: ms=%lld months=%d", i, (long long)cases[i].d.ms,
                     cases[i].d.months);
    }
    assert_false(enpi_resolution_valid(NULL));
}

static void test_resolution_code(void **state)
{
    (void)state;
    assert_int_equal(enpi_resolution_code(&R15M), 15);
    assert_int_equal(enpi_resolution_code(&R1H), 60);
    assert_int_equal(enpi_resolution_code(&R1D), 1440);
    assert_int_equal(enpi_resolution_code(&R1MO), 0xFFFF0001u);
    enpi_duration_t d = {30000, 0};
    assert_int_equal(enpi_resolution_code(&d), 0x80000000u | 30);
    d.ms = 90000; /* 90 s is not a whole number of minutes */
    assert_int_equal(enpi_resolution_code(&d), 0x80000000u | 90);
    d.ms = 250;
    assert_int_equal(enpi_resolution_code(&d), 0xC0000000u | 250);
    d.ms = 7 * MIN; /* invalid */
    assert_int_equal(enpi_resolution_code(&d), 0);
}

static void test_berlin_short_day(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t start = D_2018_03_25 * DAY - 1 * H;
    int64_t end = (D_2018_03_25 + 1) * DAY - 2 * H;
    assert_int_equal(walk(tz, &R15M, start, end), 92);
    assert_int_equal(walk(tz, &R1H, start, end), 23);
    assert_int_equal(walk(tz, &R1D, start, end), 1);

    /* The window after 01:45+01:00 is 03:00+02:00 (the same instant as 02:00+01:00). */
    enpi_window_t w = enpi_window_containing(tz, &R15M, start + 105 * MIN + 7);
    assert_int_equal(w.start, start + 105 * MIN);
    expect_format(tz, w.start, "2018-03-25T01:45:00+01:00");
    w = enpi_window_next(tz, &R15M, w);
    assert_int_equal(w.start, start + 2 * H);
    assert_int_equal(w.end, start + 2 * H + 15 * MIN);
    expect_format(tz, w.start, "2018-03-25T03:00:00+02:00");

    enpi_window_t d = enpi_window_containing(tz, &R1D, end - 1);
    assert_int_equal(d.start, start);
    assert_int_equal(d.end, end);
    enpi_tz_free(tz);
}

static void test_berlin_long_day(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t start = D_2018_10_28 * DAY - 2 * H;
    int64_t end = (D_2018_10_28 + 1) * DAY - 1 * H;
    assert_int_equal(walk(tz, &R15M, start, end), 100);
    assert_int_equal(walk(tz, &R1H, start, end), 25);
    assert_int_equal(walk(tz, &R1D, start, end), 1);

    /* 02:00+02:00 and 02:00+01:00 are different hours. */
    enpi_window_t a = enpi_window_containing(tz, &R1H, start + 2 * H);
    enpi_window_t b = enpi_window_next(tz, &R1H, a);
    expect_format(tz, a.start, "2018-10-28T02:00:00+02:00");
    expect_format(tz, b.start, "2018-10-28T02:00:00+01:00");
    assert_int_equal(b.start - a.start, H);

    /* The last hour of the 25-hour day still belongs to that day's 1d window. */
    enpi_window_t d = enpi_window_containing(tz, &R1D, end - 1);
    assert_int_equal(d.start, start);
    assert_int_equal(d.end, end);
    assert_int_equal(d.end - d.start, 25 * H);
    enpi_tz_free(tz);
}

static void test_months_across_dst(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t mar = INT64_C(17591) * DAY - 1 * H; /* 2018-03-01 00:00+01:00 */
    int64_t apr = D_2018_04_01 * DAY - 2 * H;   /* 2018-04-01 00:00+02:00 */
    enpi_window_t w = enpi_window_containing(tz, &R1MO, D_2018_03_25 * DAY + 12 * H);
    assert_int_equal(w.start, mar);
    assert_int_equal(w.end, apr);
    assert_int_equal(w.end - w.start, 31 * DAY - 1 * H);
    w = enpi_window_next(tz, &R1MO, w);
    assert_int_equal(w.start, apr);
    assert_int_equal(w.end - w.start, 30 * DAY);
    /* October 2018 has the 25-hour day. */
    w = enpi_window_containing(tz, &R1MO, D_2018_10_28 * DAY);
    assert_int_equal(w.end - w.start, 31 * DAY + 1 * H);
    assert_int_equal(walk(tz, &R1MO, D_2018_01_01 * DAY - H, D_2019_01_01 * DAY - H), 12);
    enpi_tz_free(tz);
}

static void test_berlin_year_of_quarter_hours(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t from = D_2018_01_01 * DAY - 1 * H; /* 2018-01-01 00:00+01:00 */
    int64_t to = D_2019_01_01 * DAY - 1 * H;
    /* 365 days * 96, the 92-window and the 100-window day compensate */
    assert_int_equal(walk(tz, &R15M, from, to), 35040);
    assert_int_equal(walk(tz, &R1H, from, to), 8760);
    assert_int_equal(walk(tz, &R1D, from, to), 365);
    /* the walk ends exactly at the next year's first window */
    enpi_window_t w = enpi_window_containing(tz, &R15M, to);
    assert_int_equal(w.start, to);
    enpi_tz_free(tz);
}

static void test_fixed_offset_zones(void **state)
{
    (void)state;
    int64_t t = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */
    enpi_tz_t *tz = open_zone("Asia/Ho_Chi_Minh");
    enpi_window_t w = enpi_window_containing(tz, &R15M, t + 1);
    assert_int_equal(w.start, t);
    assert_int_equal(w.end, t + 15 * MIN);
    expect_format(tz, w.start, "2018-03-28T10:00:00+07:00");
    w = enpi_window_containing(tz, &R1D, t);
    expect_format(tz, w.start, "2018-03-28T00:00:00+07:00");
    assert_int_equal(w.end - w.start, DAY);
    assert_int_equal(walk(tz, &R15M, w.start, w.end), 96);
    enpi_tz_free(tz);

    /* Kolkata: local hours start at :30 UTC because local midnight is 18:30Z; t is
     * 08:30+05:30, in the middle of the 08:00 hour. */
    tz = open_zone("Asia/Kolkata");
    w = enpi_window_containing(tz, &R1H, t);
    assert_int_equal(w.start, t - 30 * MIN);
    assert_int_equal(w.end, t + 30 * MIN);
    expect_format(tz, w.start, "2018-03-28T08:00:00+05:30");
    w = enpi_window_containing(tz, &R15M, t);
    assert_int_equal(w.start, t);
    w = enpi_window_containing(tz, &R1D, t);
    assert_int_equal(w.start, INT64_C(17618) * DAY - 5 * H - 30 * MIN);
    enpi_tz_free(tz);

    tz = open_zone("UTC");
    w = enpi_window_containing(tz, &R1H, t + 1);
    assert_int_equal(w.start, t);
    w = enpi_window_containing(tz, &R1MO, INT64_C(16860) * DAY); /* 2016-02-29 */
    assert_int_equal(w.start, INT64_C(16832) * DAY);              /* 2016-02-01 */
    assert_int_equal(w.end - w.start, 29 * DAY);
    /* windows before the epoch */
    w = enpi_window_containing(tz, &R15M, -1);
    assert_int_equal(w.start, -15 * MIN);
    assert_int_equal(w.end, 0);
    enpi_tz_free(tz);
}

static void test_half_hour_dst(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Australia/Lord_Howe");
    /* 2018-10-07 lasts 23.5 h: 23 full hours and a last half-hour window. */
    int64_t s = D_2018_10_07 * DAY - 10 * H - 30 * MIN;
    int64_t e = (D_2018_10_07 + 1) * DAY - 11 * H;
    assert_int_equal(walk(tz, &R1H, s, e), 24);
    assert_int_equal(walk(tz, &R15M, s, e), 94);
    enpi_window_t last = enpi_window_containing(tz, &R1H, e - 1);
    assert_int_equal(last.start, s + 23 * H);
    assert_int_equal(last.end, e);
    assert_int_equal(last.end - last.start, 30 * MIN);
    /* 2018-04-01 lasts 24.5 h: 25 windows, the last one 30 min. */
    s = D_2018_04_01 * DAY - 11 * H;
    e = (D_2018_04_01 + 1) * DAY - 10 * H - 30 * MIN;
    assert_int_equal(walk(tz, &R1H, s, e), 25);
    assert_int_equal(walk(tz, &R15M, s, e), 98);
    last = enpi_window_containing(tz, &R1H, e - 1);
    assert_int_equal(last.end - last.start, 30 * MIN);
    enpi_tz_free(tz);
}

static void test_skipped_midnight_windows(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("America/Sao_Paulo");
    int64_t s = D_2018_11_04 * DAY + 3 * H;       /* 01:00-02:00 */
    int64_t e = (D_2018_11_04 + 1) * DAY + 2 * H; /* 2018-11-05 00:00-02:00 */
    enpi_window_t w = enpi_window_containing(tz, &R1H, s);
    assert_int_equal(w.start, s);
    expect_format(tz, w.start, "2018-11-04T01:00:00-02:00");
    /* the previous day ends at 23:00-03:00's end, i.e. at s */
    w = enpi_window_containing(tz, &R1H, s - 1);
    assert_int_equal(w.end, s);
    assert_int_equal(w.start, s - H);
    assert_int_equal(walk(tz, &R1H, s, e), 23);
    w = enpi_window_containing(tz, &R1D, s + 5 * H);
    assert_int_equal(w.start, s);
    assert_int_equal(w.end, e);
    enpi_tz_free(tz);
}

static void test_table_edges_and_extremes(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    /* Walk across 2100-12-30 .. 2101-01-03 and 1989-12-30 .. 1990-01-03: tiles. */
    int64_t a = enpi_days_from_civil(2100, 12, 30) * DAY - H;
    assert_int_equal(walk(tz, &R15M, a, a + 4 * DAY), 4 * 96);
    a = enpi_days_from_civil(1989, 12, 30) * DAY - H;
    assert_int_equal(walk(tz, &R15M, a, a + 4 * DAY), 4 * 96);
    assert_int_equal(walk(tz, &R1MO, a, a + 4 * DAY), 2);

    int64_t extremes[] = {INT64_MIN, -1, 0, INT64_MAX};
    const enpi_duration_t *res[] = {&R15M, &R1H, &R1D, &R1MO};
    for (size_t i = 0; i < sizeof(extremes) / sizeof(extremes[0]); i++) {
        for (size_t r = 0; r < sizeof(res) / sizeof(res[0]); r++) {
            enpi_window_t w = enpi_window_containing(tz, res[r], extremes[i]);
            assert_true(w.start < w.end);
            w = enpi_window_next(tz, res[r], w);
            assert_true(w.start <= w.end);
        }
    }
    /* an invalid resolution gives a 1 ms window instead of dividing by zero */
    enpi_duration_t bad = {0, 0};
    enpi_window_t w = enpi_window_containing(tz, &bad, 1000);
    assert_int_equal(w.start, 1000);
    assert_int_equal(w.end, 1001);
    enpi_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolution_valid),
        cmocka_unit_test(test_resolution_code),
        cmocka_unit_test(test_berlin_short_day),
        cmocka_unit_test(test_berlin_long_day),
        cmocka_unit_test(test_months_across_dst),
        cmocka_unit_test(test_berlin_year_of_quarter_hours),
        cmocka_unit_test(test_fixed_offset_zones),
        cmocka_unit_test(test_half_hour_dst),
        cmocka_unit_test(test_skipped_midnight_windows),
        cmocka_unit_test(test_table_edges_and_extremes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
