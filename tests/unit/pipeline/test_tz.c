/*
 * test_tz.c - pins pipeline/tz.c: zone validation, day starts on DST days, offsets,
 * gap and ambiguous local times, formatting, the table edges, and agreement with glibc.
 *
 * Instants are derived by hand as day_number * 86400000 - offset; day numbers count
 * from 1970-01-01 (2018-01-01 = 17532, since 1970..2017 is 48 * 365 + 12 leap days).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "enpi_error.h"
#include "tz.h"

#define H INT64_C(3600000)
#define DAY INT64_C(86400000)

/* Day numbers used below (2018-01-01 = 17532). */
#define D_2018_03_25 INT64_C(17615) /* + 31 + 28 + 24 */
#define D_2018_03_28 INT64_C(17618)
#define D_2018_10_28 INT64_C(17832) /* + 273 (Jan..Sep) + 27 */
#define D_2018_11_04 INT64_C(17839)
#define D_2018_02_18 INT64_C(17580)
#define D_2018_04_01 INT64_C(17622)
#define D_2018_10_07 INT64_C(17811)

static enpi_tz_t *open_zone(const char *name)
{
    enpi_tz_t *tz = NULL;
    int err = enpi_tz_open(name, &tz);
    if (err != 0)
        fail_msg("enpi_tz_open(%s) = %d", name, err);
    assert_non_null(tz);
    assert_string_equal(enpi_tz_name(tz), name);
    return tz;
}

static void expect_format(const enpi_tz_t *tz, int64_t t, const char *text)
{
    char buf[64];
    int n = enpi_tz_format(tz, t, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(text));
    assert_string_equal(buf, text);
}

/* Parses a civil time without checking; the test strings are valid. */
static enpi_civil_t civil(const char *s)
{
    enpi_civil_t c;
    assert_int_equal(enpi_civil_parse(s, strlen(s), &c), 0);
    return c;
}

static void test_unknown_zones(void **state)
{
    (void)state;
    static const char *bad[] = {
        "Nope/Zone", "", "Europe", "zone.tab", "tzdata.zi", "../zoneinfo/UTC",
        "Europe/../UTC", "/usr/share/zoneinfo/UTC", "Europe/Berlin ", "europe/berlin",
        "UTC+7", ":UTC", "Europe/Berlin\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enpi_tz_t *tz = (enpi_tz_t *)&tz; /* must not be touched on failure */
        enpi_tz_t *sentinel = tz;
        int err = enpi_tz_open(bad[i], &tz);
        if (err != ENPI_ENOENT)
            fail_msg("enpi_tz_open(\"%s\") = %d, want ENPI_ENOENT", bad[i], err);
        assert_ptr_equal(tz, sentinel);
    }
    enpi_tz_t *tz;
    assert_int_equal(enpi_tz_open(NULL, &tz), ENPI_ENOENT);
    enpi_tz_free(NULL);
}

static void test_open_restores_tz_env(void **state)
{
    (void)state;
    assert_int_equal(setenv("TZ", "Asia/Tokyo", 1), 0);
    tzset();
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    assert_string_equal(getenv("TZ"), "Asia/Tokyo");
    /* glibc was told about the restored value: Tokyo is +09:00 all year */
    time_t t = 1522206000;
    struct tm tm;
    assert_non_null(localtime_r(&t, &tm));
    assert_int_equal(tm.tm_gmtoff, 9 * 3600);
    enpi_tz_free(tz);

    assert_int_equal(unsetenv("TZ"), 0);
    tzset();
    tz = open_zone("UTC");
    assert_null(getenv("TZ"));
    enpi_tz_free(tz);
}

static void test_open_time(void **state)
{
    (void)state;
    static const char *zones[] = {"Europe/Berlin", "America/Sao_Paulo",
                                  "Australia/Lord_Howe", "Asia/Ho_Chi_Minh"};
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        struct timespec a, b, ca, cb;
        clock_gettime(CLOCK_MONOTONIC, &a);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
        enpi_tz_t *tz = open_zone(zones[i]);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        double cpu = (double)(cb.tv_sec - ca.tv_sec) * 1e3 + (double)(cb.tv_nsec - ca.tv_nsec) / 1e6;
        print_message("enpi_tz_open(%s): %.1f ms wall, %.1f ms cpu\n", zones[i], ms, cpu);
        /* Generous bound: the target is tens of ms, but test machines may be loaded. */
        assert_true(ms < 2000.0);
        enpi_tz_free(tz);
    }
}

static void test_berlin_spring_forward(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t start = D_2018_03_25 * DAY - 1 * H;    /* 00:00+01:00 */
    int64_t jump = D_2018_03_25 * DAY + 1 * H;     /* 02:00+01:00 == 03:00+02:00 */
    int64_t end = (D_2018_03_25 + 1) * DAY - 2 * H; /* 2018-03-26 00:00+02:00 */

    assert_int_equal(enpi_tz_offset_s(tz, jump - 1), 3600);
    assert_int_equal(enpi_tz_offset_s(tz, jump), 7200);
    assert_int_equal(enpi_tz_day_start(tz, start), start);
    assert_int_equal(enpi_tz_day_start(tz, jump), start);
    assert_int_equal(enpi_tz_day_start(tz, end - 1), start);
    assert_int_equal(enpi_tz_day_start(tz, start - 1), start - 24 * H);
    assert_int_equal(enpi_tz_day_shift(tz, jump, 1), end);
    assert_int_equal(end - start, 23 * H);
    assert_int_equal(enpi_tz_day_start(tz, end), end);
    expect_format(tz, jump - 1, "2018-03-25T01:59:59.999+01:00");
    expect_format(tz, jump, "2018-03-25T03:00:00+02:00");
    enpi_tz_free(tz);
}

static void test_berlin_fall_back(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t start = D_2018_10_28 * DAY - 2 * H;     /* 00:00+02:00 */
    int64_t back = D_2018_10_28 * DAY + 1 * H;      /* 03:00+02:00 -> 02:00+01:00 */
    int64_t end = (D_2018_10_28 + 1) * DAY - 1 * H; /* 2018-10-29 00:00+01:00 */

    assert_int_equal(enpi_tz_offset_s(tz, back - 1), 7200);
    assert_int_equal(enpi_tz_offset_s(tz, back), 3600);
    assert_int_equal(enpi_tz_day_start(tz, end - 1), start);
    assert_int_equal(enpi_tz_day_shift(tz, start, 1), end);
    assert_int_equal(end - start, 25 * H);
    expect_format(tz, back - H, "2018-10-28T02:00:00+02:00");
    expect_format(tz, back, "2018-10-28T02:00:00+01:00");
    enpi_tz_free(tz);
}

static void test_skipped_midnight(void **state)
{
    (void)state;
    /* Sao Paulo 2018-11-04: 00:00-03:00 became 01:00-02:00, so the day starts at 01:00. */
    enpi_tz_t *tz = open_zone("America/Sao_Paulo");
    int64_t start = D_2018_11_04 * DAY + 3 * H;       /* 01:00-02:00 == 03:00Z */
    int64_t prev_start = (D_2018_11_04 - 1) * DAY + 3 * H;
    int64_t end = (D_2018_11_04 + 1) * DAY + 2 * H;   /* 2018-11-05 00:00-02:00 */
    assert_int_equal(enpi_tz_day_start(tz, start), start);
    assert_int_equal(enpi_tz_day_start(tz, start - 1), prev_start);
    assert_int_equal(enpi_tz_day_shift(tz, start - 1, 1), start);
    assert_int_equal(enpi_tz_day_shift(tz, start, 1), end);
    assert_int_equal(end - start, 23 * H);
    expect_format(tz, start, "2018-11-04T01:00:00-02:00");
    expect_format(tz, start - 1, "2018-11-03T23:59:59.999-03:00");
    enpi_tz_free(tz);

    /* Beirut 2018-03-25 as well: 00:00+02:00 became 01:00+03:00. */
    tz = open_zone("Asia/Beirut");
    assert_int_equal(enpi_tz_day_start(tz, D_2018_03_25 * DAY), D_2018_03_25 * DAY - 2 * H);
    expect_format(tz, D_2018_03_25 * DAY - 2 * H, "2018-03-25T01:00:00+03:00");
    enpi_tz_free(tz);
}

static void test_from_civil_gap_and_ambiguous(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    enpi_civil_t c = civil("2018-03-25T02:30:00");
    /* in the gap: moved forward by the hour, 03:30+02:00 */
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_03_25 * DAY + 90 * 60000);
    c = civil("2018-03-25T03:00:00");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_03_25 * DAY + 1 * H);
    c = civil("2018-03-25T01:59:59.999");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_03_25 * DAY + 1 * H - 1);
    c = civil("2018-10-28T02:30:00");
    /* ambiguous: the earlier instant, 02:30+02:00 */
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_10_28 * DAY + 30 * 60000);
    c = civil("2018-10-28T03:00:00");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_10_28 * DAY + 2 * H);
    c = civil("2018-10-28");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_10_28 * DAY - 2 * H);
    c = civil("2018-03-28T10:00:00+07:00"); /* an offset wins over the zone */
    assert_int_equal(enpi_tz_from_civil(tz, &c), INT64_C(1522206000000));
    enpi_tz_free(tz);

    tz = open_zone("America/Sao_Paulo");
    c = civil("2018-11-04"); /* midnight skipped: the day's first instant */
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_11_04 * DAY + 3 * H);
    c = civil("2018-11-04T00:30");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_11_04 * DAY + 3 * H + 30 * 60000);
    /* 2018-02-18 00:00-02:00 went back to 2018-02-17 23:00-03:00: 23:30 is ambiguous */
    c = civil("2018-02-17T23:30");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_02_18 * DAY + 90 * 60000);
    c = civil("2018-02-18T00:00");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_02_18 * DAY + 3 * H);
    enpi_tz_free(tz);

    tz = open_zone("Australia/Lord_Howe");
    /* 2018-10-07 02:00+10:30 became 02:30+11:00: 02:15 moves forward by 30 min */
    c = civil("2018-10-07T02:15");
    assert_int_equal(enpi_tz_from_civil(tz, &c), D_2018_10_07 * DAY + 2 * H + 45 * 60000 - 11 * H);
    enpi_tz_free(tz);
}

static void test_fixed_zones(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Asia/Ho_Chi_Minh");
    int64_t t = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */
    assert_int_equal(enpi_tz_offset_s(tz, t), 7 * 3600);
    expect_format(tz, t, "2018-03-28T10:00:00+07:00");
    expect_format(tz, t + 123, "2018-03-28T10:00:00.123+07:00");
    assert_int_equal(enpi_tz_day_start(tz, t), D_2018_03_28 * DAY - 7 * H);
    enpi_civil_t c = civil("2018-03-28T10:00:00");
    assert_int_equal(enpi_tz_from_civil(tz, &c), t);
    enpi_tz_to_civil(tz, t + 7, &c);
    assert_int_equal(c.year, 2018);
    assert_int_equal(c.month, 3);
    assert_int_equal(c.day, 28);
    assert_int_equal(c.hour, 10);
    assert_int_equal(c.minute, 0);
    assert_int_equal(c.millis, 7);
    assert_true(c.has_time && c.has_offset);
    assert_int_equal(c.offset_s, 7 * 3600);
    enpi_tz_free(tz);

    tz = open_zone("UTC");
    assert_int_equal(enpi_tz_offset_s(tz, t), 0);
    expect_format(tz, t, "2018-03-28T03:00:00+00:00");
    assert_int_equal(enpi_tz_day_start(tz, t), D_2018_03_28 * DAY);
    assert_int_equal(enpi_tz_day_start(tz, -1), -DAY);
    enpi_tz_free(tz);

    tz = open_zone("Asia/Kolkata");
    expect_format(tz, t, "2018-03-28T08:30:00+05:30");
    assert_int_equal(enpi_tz_day_start(tz, t), D_2018_03_28 * DAY - 5 * H - 30 * 60000);
    enpi_tz_free(tz);

    tz = open_zone("America/Sao_Paulo");
    expect_format(tz, t, "2018-03-28T00:00:00-03:00");
    assert_int_equal(enpi_tz_day_start(tz, t), t);
    enpi_tz_free(tz);
}

static void test_lord_howe_half_hour_dst(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Australia/Lord_Howe");
    /* 2018-04-01: +11:00 until 02:00, then +10:30: 24.5 hours */
    int64_t s1 = D_2018_04_01 * DAY - 11 * H;
    int64_t e1 = (D_2018_04_01 + 1) * DAY - 10 * H - 30 * 60000;
    assert_int_equal(enpi_tz_day_start(tz, s1 + 12 * H), s1);
    assert_int_equal(enpi_tz_day_shift(tz, s1, 1), e1);
    assert_int_equal(e1 - s1, 24 * H + 30 * 60000);
    /* 2018-10-07: +10:30 until 02:00, then +11:00: 23.5 hours */
    int64_t s2 = D_2018_10_07 * DAY - 10 * H - 30 * 60000;
    int64_t e2 = (D_2018_10_07 + 1) * DAY - 11 * H;
    assert_int_equal(enpi_tz_day_shift(tz, s2 + 1, 1), e2);
    assert_int_equal(e2 - s2, 23 * H + 30 * 60000);
    expect_format(tz, s2 + 2 * H, "2018-10-07T02:30:00+11:00");
    assert_int_equal(enpi_tz_offset_s(tz, s2 + 2 * H - 1), 10 * 3600 + 1800);
    enpi_tz_free(tz);
}

static void test_month_start(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    int64_t mar = INT64_C(17591) * DAY - 1 * H; /* 2018-03-01 00:00+01:00 */
    int64_t apr = D_2018_04_01 * DAY - 2 * H;   /* 2018-04-01 00:00+02:00 */
    int64_t mid = D_2018_03_25 * DAY + 5 * H;
    assert_int_equal(enpi_tz_month_start(tz, mid, 0), mar);
    assert_int_equal(enpi_tz_month_start(tz, mid, 1), apr);
    assert_int_equal(apr - mar, 31 * DAY - 1 * H);
    assert_int_equal(enpi_tz_month_start(tz, mar, 0), mar);
    assert_int_equal(enpi_tz_month_start(tz, mar - 1, 1), mar);
    /* 2017-12-01 (day 17501) and 2019-03-01 (day 17956), both +01:00 */
    assert_int_equal(enpi_tz_month_start(tz, mid, -3), INT64_C(17501) * DAY - 1 * H);
    assert_int_equal(enpi_tz_month_start(tz, mid, 12), INT64_C(17956) * DAY - 1 * H);
    enpi_tz_free(tz);
}

static void test_outside_table(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Europe/Berlin");
    /* Before 1990 and after 2100 the edge offset (+01:00, January) is extended. */
    int64_t d1900 = enpi_days_from_civil(1900, 7, 1);
    int64_t d2200 = enpi_days_from_civil(2200, 7, 1);
    assert_int_equal(enpi_tz_day_start(tz, d1900 * DAY + 12 * H), d1900 * DAY - 1 * H);
    assert_int_equal(enpi_tz_day_start(tz, d2200 * DAY + 12 * H), d2200 * DAY - 1 * H);
    assert_int_equal(enpi_tz_offset_s(tz, d2200 * DAY), 3600);
    expect_format(tz, -1, "1970-01-01T00:59:59.999+01:00");
    expect_format(tz, d2200 * DAY, "2200-07-01T01:00:00+01:00");
    enpi_civil_t c = civil("1900-07-01T00:00");
    assert_int_equal(enpi_tz_from_civil(tz, &c), d1900 * DAY - 1 * H);

    /* Days tile across both table edges. */
    int64_t edges[] = {enpi_days_from_civil(1990, 1, 1), enpi_days_from_civil(2101, 1, 1)};
    for (size_t e = 0; e < 2; e++) {
        int64_t t = (edges[e] - 10) * DAY;
        int64_t day = enpi_tz_day_start(tz, t);
        for (int i = 0; i < 20; i++) {
            int64_t next = enpi_tz_day_shift(tz, day, 1);
            assert_int_equal(next - day, DAY); /* both edges are in winter */
            assert_int_equal(enpi_tz_day_start(tz, next - 1), day);
            assert_int_equal(enpi_tz_day_start(tz, next), next);
            assert_int_equal(enpi_tz_day_shift(tz, next, -1), day);
            day = next;
        }
    }

    /* Extremes must not crash or overflow (UBSan checks the arithmetic). */
    int64_t extremes[] = {INT64_MIN, INT64_MIN + 1, -(INT64_C(1) << 62), -1, 0,
                          INT64_C(1) << 62, INT64_MAX};
    for (size_t i = 0; i < sizeof(extremes) / sizeof(extremes[0]); i++) {
        int64_t t = extremes[i];
        char buf[64];
        int64_t s = enpi_tz_day_start(tz, t);
        int64_t e = enpi_tz_day_shift(tz, t, 1);
        assert_true(s < e);
        (void)enpi_tz_day_shift(tz, t, INT32_MAX);
        (void)enpi_tz_day_shift(tz, t, INT32_MIN);
        (void)enpi_tz_month_start(tz, t, INT32_MAX);
        (void)enpi_tz_month_start(tz, t, INT32_MIN);
        (void)enpi_tz_offset_s(tz, t);
        assert_true(enpi_tz_format(tz, t, buf, sizeof(buf)) > 0);
    }
    enpi_civil_t far = {.year = INT32_MAX, .month = 12, .day = 31, .has_time = true};
    (void)enpi_tz_from_civil(tz, &far);
    far.year = INT32_MIN;
    (void)enpi_tz_from_civil(tz, &far);
    enpi_tz_free(tz);
}

static void test_format_buffer(void **state)
{
    (void)state;
    enpi_tz_t *tz = open_zone("Asia/Ho_Chi_Minh");
    char buf[26];
    assert_int_equal(enpi_tz_format(tz, INT64_C(1522206000000), buf, 26), 25);
    assert_string_equal(buf, "2018-03-28T10:00:00+07:00");
    assert_int_equal(enpi_tz_format(tz, INT64_C(1522206000000), buf, 25), -1);
    assert_int_equal(enpi_tz_format(tz, INT64_C(1522206000000), buf, 0), -1);
    enpi_tz_free(tz);
}

/*
 * Cross-check against glibc directly: every local day start from 1990 to 2100 is the
 * first instant whose local date is that day (and a midnight, where mktime finds one),
 * and offsets sampled every 7 hours match tm_gmtoff.
 */
static int check_against_glibc(const char *name)
{
    enpi_tz_t *tz = open_zone(name);
    char env[300];
    snprintf(env, sizeof(env), ":/usr/share/zoneinfo/%s", name);
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    assert_int_equal(setenv("TZ", env, 1), 0);
    tzset();

    int64_t first = enpi_days_from_civil(1990, 1, 1);
    int64_t last = enpi_days_from_civil(2100, 12, 31);
    int skipped = 0;
    int empty = 0;
    for (int64_t d = first; d <= last; d++) {
        int y, m, dd;
        enpi_civil_from_days(d, &y, &m, &dd);
        int64_t start = enpi_tz_day_start(tz, d * DAY);
        /* d * DAY (UTC midnight) may lie in the neighbouring local day; fix that. */
        enpi_civil_t c = {.year = y, .month = m, .day = dd};
        int64_t from_civil = enpi_tz_from_civil(tz, &c);
        assert_int_equal(enpi_tz_day_start(tz, from_civil), from_civil);
        start = from_civil;

        struct tm at, before;
        time_t ts = (time_t)(start / 1000);
        time_t tb = ts - 1;
        assert_non_null(localtime_r(&ts, &at));
        assert_non_null(localtime_r(&tb, &before));
        if (at.tm_mday != dd) {
            /* A day that never happened (Apia 2011-12-30): empty, starts where the
             * next one does. */
            assert_int_equal(enpi_tz_day_shift(tz, start - 1, 1), start);
            empty++;
            continue;
        }
        assert_int_equal(at.tm_year + 1900, y);
        assert_int_equal(at.tm_mon + 1, m);
        assert_int_equal(at.tm_mday, dd);
        assert_true(before.tm_mday != dd);
        assert_int_equal(enpi_tz_offset_s(tz, start), at.tm_gmtoff);

        struct tm want = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = dd, .tm_isdst = -1};
        time_t mk = mktime(&want);
        struct tm chk;
        assert_non_null(localtime_r(&mk, &chk));
        if (chk.tm_hour == 0 && chk.tm_min == 0 && chk.tm_sec == 0 && chk.tm_mday == dd)
            assert_int_equal((int64_t)mk * 1000, start);
        else
            skipped++;
        assert_int_equal(enpi_tz_day_shift(tz, start, 1), enpi_tz_day_start(tz, start + 30 * H));
    }
    for (int64_t t = first * DAY; t < (last + 1) * DAY; t += 7 * H) {
        time_t ts = (time_t)(t / 1000);
        struct tm tm;
        assert_non_null(localtime_r(&ts, &tm));
        if (enpi_tz_offset_s(tz, t) != tm.tm_gmtoff)
            fail_msg("%s: offset at %lld is %d, glibc says %ld", name, (long long)t,
                     enpi_tz_offset_s(tz, t), (long)tm.tm_gmtoff);
    }
    print_message("%s: %d skipped midnights, %d empty days\n", name, skipped, empty);

    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    enpi_tz_free(tz);
    return empty;
}

static void test_agrees_with_glibc(void **state)
{
    (void)state;
    assert_int_equal(check_against_glibc("Europe/Berlin"), 0);
    assert_int_equal(check_against_glibc("America/Sao_Paulo"), 0);
    assert_int_equal(check_against_glibc("Asia/Beirut"), 0);
    assert_int_equal(check_against_glibc("Australia/Lord_Howe"), 0);
    assert_int_equal(check_against_glibc("Asia/Kolkata"), 0);
    /* Samoa skipped 2011-12-30 entirely (from -10:00 to +14:00) */
    assert_int_equal(check_against_glibc("Pacific/Apia"), 1);
}

/* Opening concurrently is serialised; reading one zone from many threads is safe. */
static void *open_and_check(void *arg)
{
    const char *name = arg;
    for (int i = 0; i < 3; i++) {
        enpi_tz_t *tz = NULL;
        if (enpi_tz_open(name, &tz) != 0)
            return (void *)1;
        int64_t t = INT64_C(1522206000000);
        int want = strcmp(name, "Asia/Ho_Chi_Minh") == 0 ? 7 * 3600 : 7200;
        int got = enpi_tz_offset_s(tz, t);
        enpi_tz_free(tz);
        if (got != want)
            return (void *)2;
    }
    return NULL;
}

static void test_concurrent_open(void **state)
{
    (void)state;
    pthread_t th[4];
    const char *names[4] = {"Europe/Berlin", "Asia/Ho_Chi_Minh", "Europe/Berlin",
                            "Asia/Ho_Chi_Minh"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, open_and_check, (void *)names[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_zones),
        cmocka_unit_test(test_open_restores_tz_env),
        cmocka_unit_test(test_open_time),
        cmocka_unit_test(test_berlin_spring_forward),
        cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_skipped_midnight),
        cmocka_unit_test(test_from_civil_gap_and_ambiguous),
        cmocka_unit_test(test_fixed_zones),
        cmocka_unit_test(test_lord_howe_half_hour_dst),
        cmocka_unit_test(test_month_start),
        cmocka_unit_test(test_outside_table),
        cmocka_unit_test(test_format_buffer),
        cmocka_unit_test(test_agrees_with_glibc),
        cmocka_unit_test(test_concurrent_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
