/*
 * test_civil.c - pins common/civil.c: day numbers, ISO 8601 parsing and durations.
 * Expected values are derived by hand (noted next to them), not from the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "civil.h"
#include "enpi_error.h"

static int parse(const char *s, enpi_civil_t *c)
{
    return enpi_civil_parse(s, strlen(s), c);
}

static int dur(const char *s, enpi_duration_t *d)
{
    return enpi_duration_parse(s, strlen(s), d);
}

static void test_days_known_dates(void **state)
{
    (void)state;
    assert_int_equal(enpi_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(enpi_days_from_civil(1969, 12, 31), -1);
    /* 1970..1999: 30 * 365 + 7 leap days (72..96) = 10957 */
    assert_int_equal(enpi_days_from_civil(2000, 1, 1), 10957);
    /* + 31 (Jan) + 29 (Feb, 2000 is a leap year) */
    assert_int_equal(enpi_days_from_civil(2000, 3, 1), 10957 + 60);
    /* 2018-01-01: 48 * 365 + 12 leap days = 17532; +31 +28 +27 for March 28 */
    assert_int_equal(enpi_days_from_civil(2018, 3, 28), 17618);
    /* 1900 is not a leap year: Feb 28 is followed by Mar 1 */
    assert_int_equal(enpi_days_from_civil(1900, 3, 1) - enpi_days_from_civil(1900, 2, 28), 1);
    assert_int_equal(enpi_days_from_civil(2000, 3, 1) - enpi_days_from_civil(2000, 2, 28), 2);
    /* 0000-03-01 is 719468 days before the epoch */
    assert_int_equal(enpi_days_from_civil(0, 3, 1), -719468);
}

static void test_days_month_carry(void **state)
{
    (void)state;
    /* Month 13 of 2017 is January 2018; month 0 of 2018 is December 2017. */
    assert_int_equal(enpi_days_from_civil(2017, 13, 1), enpi_days_from_civil(2018, 1, 1));
    assert_int_equal(enpi_days_from_civil(2018, 0, 1), enpi_days_from_civil(2017, 12, 1));
    assert_int_equal(enpi_days_from_civil(2018, -11, 1), enpi_days_from_civil(2017, 1, 1));
    /* Day 0 is the last day of the previous month. */
    assert_int_equal(enpi_days_from_civil(2018, 3, 0), enpi_days_from_civil(2018, 2, 28));
}

static void test_days_round_trip(void **state)
{
    (void)state;
    /* Every day from year -1000 to 3000 maps back to itself and dates advance by one
     * day with correct month lengths. */
    int64_t first = enpi_days_from_civil(-1000, 1, 1);
    int64_t last = enpi_days_from_civil(3000, 12, 31);
    int py, pm, pd;
    enpi_civil_from_days(first - 1, &py, &pm, &pd);
    assert_int_equal(py, -1001);
    assert_int_equal(pm, 12);
    assert_int_equal(pd, 31);
    for (int64_t n = first; n <= last; n++) {
        int y, m, d;
        enpi_civil_from_days(n, &y, &m, &d);
        assert_int_equal(enpi_days_from_civil(y, m, d), n);
        if (d == 1)
            assert_true(m == pm % 12 + 1 && pd >= 28);
        else
            assert_true(y == py && m == pm && d == pd + 1);
        py = y;
        pm = m;
        pd = d;
    }
}

static void test_civil_from_days_extremes(void **state)
{
    (void)state;
    int y, m, d;
    enpi_civil_from_days(INT64_MAX, &y, &m, &d); /* clamped, must not overflow */
    assert_true(y > 1000000);
    enpi_civil_from_days(INT64_MIN, &y, &m, &d);
    assert_true(y < -1000000);
    assert_true(m >= 1 && m <= 12 && d >= 1 && d <= 31);
}

static void test_parse_date(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2018-01-01", &c), 0);
    assert_int_equal(c.year, 2018);
    assert_int_equal(c.month, 1);
    assert_int_equal(c.day, 1);
    assert_false(c.has_time);
    assert_false(c.has_offset);
    assert_int_equal(c.hour, 0);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(17532) * 86400000);
}

static void test_parse_leap_days(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2016-02-29", &c), 0);
    assert_int_equal(parse("2000-02-29", &c), 0);
    assert_int_equal(parse("2018-02-29", &c), ENPI_EPARSE);
    assert_int_equal(parse("1900-02-29", &c), ENPI_EPARSE);
    assert_int_equal(parse("2016-02-30", &c), ENPI_EPARSE);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "2018", "2018-01", "2018-13-01", "2018-00-10", "2018-04-31", "2018-01-00",
        "2018-1-01", "18-01-01", "2018/01/01", "2018-01-01x", "2018-01-01 ", "2018-01-01T",
        "2018-01-01T10", "2018-01-01T10:0", "2018-01-01T24:00", "2018-01-01T10:60",
        "2018-01-01T10:00:60", "2018-01-01T10:00:00.", "2018-01-01T10:00:00.5x",
        "2018-01-01T10:00+7", "2018-01-01T10:00+07:0", "2018-01-01T10:00+070",
        "2018-01-01T10:00+24:00", "2018-01-01T10:00+07:60", "2018-01-01T10:00:00Z ",
        "2018-01-01T10:00:00ZZ", "2018-01-01Z", "2018-01-01T10:00:00 +07:00",
        " 2018-01-01", "2018-01-01T10:00.5", "+2018-01-01", "2018-01-01T-1:00",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enpi_civil_t c;
        if (parse(bad[i], &c) != ENPI_EPARSE)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    enpi_civil_t c;
    assert_int_equal(enpi_civil_parse(NULL, 0, &c), ENPI_EPARSE);
}

static void test_parse_date_time(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2018-03-28T10:00:00", &c), 0);
    assert_true(c.has_time);
    assert_false(c.has_offset);
    assert_int_equal(c.hour, 10);
    assert_int_equal(c.minute, 0);
    assert_int_equal(c.second, 0);
    /* Read as UTC: 17618 days + 10 h */
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(17618) * 86400000 + 36000000);

    assert_int_equal(parse("2018-03-28 23:59", &c), 0);
    assert_int_equal(c.hour, 23);
    assert_int_equal(c.minute, 59);
    assert_int_equal(c.second, 0);
    assert_int_equal(parse("2018-03-28t00:00:59", &c), 0);
    assert_int_equal(c.second, 59);
}

static void test_parse_offsets(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2018-03-28T03:00:00Z", &c), 0);
    assert_true(c.has_offset);
    assert_int_equal(c.offset_s, 0);
    /* SPEC §4's example timestamp 1522206000000 is 2018-03-28T03:00:00Z */
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));

    assert_int_equal(parse("2018-03-28T10:00:00+07:00", &c), 0);
    assert_int_equal(c.offset_s, 7 * 3600);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));
    assert_int_equal(parse("2018-03-28T10:00:00+0700", &c), 0);
    assert_int_equal(c.offset_s, 7 * 3600);
    assert_int_equal(parse("2018-03-28T10:00+07", &c), 0);
    assert_int_equal(c.offset_s, 7 * 3600);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));
    assert_int_equal(parse("2018-03-27T23:30:00-03:30", &c), 0);
    assert_int_equal(c.offset_s, -(3 * 3600 + 1800));
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));
    assert_int_equal(parse("2018-03-28T08:30:00+05:30", &c), 0);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));
}

static void test_parse_fractions(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2018-03-28T03:00:00.5Z", &c), 0);
    assert_int_equal(c.millis, 500);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000500));
    assert_int_equal(parse("2018-03-28T03:00:00.123456789", &c), 0);
    assert_int_equal(c.millis, 123); /* truncated, not rounded */
    assert_int_equal(parse("2018-03-28T03:00:59.9999+00:00", &c), 0);
    assert_int_equal(c.second, 59);
    assert_int_equal(c.millis, 999);
    assert_int_equal(parse("2018-03-28T03:00:00,25", &c), 0);
    assert_int_equal(c.millis, 250);
    assert_int_equal(parse("2018-03-28T03:00:00.007", &c), 0);
    assert_int_equal(c.millis, 7);
}

static void test_parse_respects_length(void **state)
{
    (void)state;
    enpi_civil_t c;
    const char *s = "2018-03-28T03:00:00Zgarbage";
    assert_int_equal(enpi_civil_parse(s, 20, &c), 0);
    assert_int_equal(enpi_civil_to_utc_ms(&c), INT64_C(1522206000000));
    assert_int_equal(enpi_civil_parse(s, 10, &c), 0);
    assert_false(c.has_time);
    assert_int_equal(enpi_civil_parse(s, 9, &c), ENPI_EPARSE);
    assert_int_equal(enpi_civil_parse(s, 21, &c), ENPI_EPARSE);
}

static void test_parse_failure_leaves_output(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("2018-03-28", &c), 0);
    assert_int_equal(parse("2019-04-29T10:00:61", &c), ENPI_EPARSE);
    assert_int_equal(c.year, 2018);
    assert_int_equal(c.day, 28);
}

static void test_pre_epoch(void **state)
{
    (void)state;
    enpi_civil_t c;
    assert_int_equal(parse("1969-12-31T23:59:59.999Z", &c), 0);
    assert_int_equal(enpi_civil_to_utc_ms(&c), -1);
    assert_int_equal(parse("1970-01-01T00:00:00+01:00", &c), 0);
    assert_int_equal(enpi_civil_to_utc_ms(&c), -3600000);
}

static void test_floor_div(void **state)
{
    (void)state;
    assert_int_equal(enpi_floor_div(7, 2), 3);
    assert_int_equal(enpi_floor_div(-7, 2), -4);
    assert_int_equal(enpi_floor_div(-8, 2), -4);
    assert_int_equal(enpi_floor_div(-1, 86400000), -1);
    assert_int_equal(enpi_floor_div(0, 86400000), 0);
}

static void test_duration_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
        int months;
    } ok[] = {
        {"30s", 30000, 0},          {"15m", 900000, 0},     {"1h", 3600000, 0},
        {"1d", 86400000, 0},        {"1mo", 0, 1},          {"3mo", 0, 3},
        {"1y", 0, 12},              {"5y", 0, 60},          {"250ms", 250, 0},
        {"1w", 604800000, 0},       {"400d", INT64_C(400) * 86400000, 0},
        {"90m", 5400000, 0},        {"015m", 900000, 0},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        enpi_duration_t d = {-1, -1};
        if (dur(ok[i].s, &d) != 0)
            fail_msg("rejected \"%s\"", ok[i].s);
        assert_int_equal(d.ms, ok[i].ms);
        assert_int_equal(d.months, ok[i].months);
    }
}

static void test_duration_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",   "0m",  "-1h", "+1h", "1.5h", "1x",  "m",   "1",  "1 h", " 1h", "1h ",
        "1H", "1M",  "1mos", "0mo", "1hm", "1e3s", "99999999999999999999ms",
        "9999999999999999d", "999999999999y", "1m0",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        enpi_duration_t d;
        if (dur(bad[i], &d) != ENPI_EPARSE)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    enpi_duration_t d;
    assert_int_equal(enpi_duration_parse(NULL, 0, &d), ENPI_EPARSE);
    /* the length bounds the text: "15m" cut to "15" has no unit */
    assert_int_equal(enpi_duration_parse("15m", 2, &d), ENPI_EPARSE);
    assert_int_equal(enpi_duration_parse("15mo", 3, &d), 0);
    assert_int_equal(d.ms, 900000);
}

static void test_duration_format(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        int months;
        const char *text;
    } cases[] = {
        {900000, 0, "15m"},    {3600000, 0, "1h"},  {86400000, 0, "1d"},
        {0, 1, "1mo"},         {0, 12, "1y"},       {0, 18, "18mo"},
        {30000, 0, "30s"},     {90000, 0, "90s"},   {5400000, 0, "90m"},
        {1500, 0, "1500ms"},   {604800000, 0, "7d"}, {INT64_C(400) * 86400000, 0, "400d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enpi_duration_t d = {cases[i].ms, cases[i].months};
        char buf[32];
        assert_ptr_equal(enpi_duration_format(&d, buf, sizeof(buf)), buf);
        assert_string_equal(buf, cases[i].text);
        /* canonical text parses back to the same duration */
        enpi_duration_t back;
        assert_int_equal(dur(buf, &back), 0);
        assert_int_equal(back.ms, d.ms);
        assert_int_equal(back.months, d.months);
    }
    enpi_duration_t d = {900000, 0};
    char small[3];
    enpi_duration_format(&d, small, sizeof(small));
    assert_string_equal(small, "15");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_days_known_dates),
        cmocka_unit_test(test_days_month_carry),
        cmocka_unit_test(test_days_round_trip),
        cmocka_unit_test(test_civil_from_days_extremes),
        cmocka_unit_test(test_parse_date),
        cmocka_unit_test(test_parse_leap_days),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_date_time),
        cmocka_unit_test(test_parse_offsets),
        cmocka_unit_test(test_parse_fractions),
        cmocka_unit_test(test_parse_respects_length),
        cmocka_unit_test(test_parse_failure_leaves_output),
        cmocka_unit_test(test_pre_epoch),
        cmocka_unit_test(test_floor_div),
        cmocka_unit_test(test_duration_accepts),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_duration_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
