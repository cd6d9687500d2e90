/*
 * civil.c - the proleptic Gregorian calendar and the text forms of time in SPEC §3.
 *
 * Owns three things: converting between dates and day numbers (days since 1970-01-01,
 * negative before), parsing ISO 8601 dates and date-times as people write them in the
 * configuration and on the CLI, and parsing/formatting the short durations ("15m",
 * "1mo"). No time zones here: a civil time without an offset is just fields, and
 * pipeline/tz.c decides which instant it names.
 *
 * Every parser takes (pointer, length) so callers can hand in slices of YAML, JSON or
 * argv without copying; none of them reads past len or needs a NUL terminator.
 */
#include "civil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "enpi_error.h"

#define MS_PER_DAY INT64_C(86400000)

/* Day numbers are clamped to this so that day * MS_PER_DAY and a few hours on top
 * stay inside int64_t: about 273 million years either way. */
#define DAYS_LIMIT INT64_C(100000000000)

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (m == 2 && is_leap(y)) ? 29 : len[m - 1];
}

/*
 * Counts days with March as the first month of a computational year, so the leap day
 * is the last day of that year and each year splits into 400-year eras of 146097
 * days. A month outside 1..12 is carried into the year and day 0 or day 32 simply
 * count on from the first of the month, so callers may shift dates by adding to the
 * fields; the result is exact for any int inputs (no overflow in int64_t).
 */
int64_t enpi_days_from_civil(int year, int month, int day)
{
    int64_t y = (int64_t)year + enpi_floor_div((int64_t)month - 1, 12);
    int64_t m = (int64_t)month - 1 - 12 * enpi_floor_div((int64_t)month - 1, 12) + 1; /* 1..12 */

    if (m <= 2)
        y -= 1;                                  /* Jan, Feb belong to the previous year */
    int64_t era = enpi_floor_div(y, 400);
    int64_t yoe = y - era * 400;                 /* 0..399 */
    int64_t mp = (m + 9) % 12;                   /* Mar = 0 .. Feb = 11 */
    int64_t doy = (153 * mp + 2) / 5;            /* days before month mp, day 1 = 0 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0..146096 */
    /* 719468 = days from 0000-03-01 to 1970-01-01 */
    return era * 146097 + doe - 719468 + ((int64_t)day - 1);
}

/* The inverse of enpi_days_from_civil. Day numbers beyond roughly +-7e11 would give
 * years that do not fit an int; they are clamped to +-DAYS_LIMIT first. */
void enpi_civil_from_days(int64_t days, int *year, int *month, int *day)
{
    if (days > DAYS_LIMIT)
        days = DAYS_LIMIT;
    if (days < -DAYS_LIMIT)
        days = -DAYS_LIMIT;

    int64_t z = days + 719468;                   /* days since 0000-03-01 */
    int64_t era = enpi_floor_div(z, 146097);
    int64_t doe = z - era * 146097;              /* 0..146096 */
    /* Year of era: remove the leap days accumulated so far, then divide by 365. */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;            /* Mar = 0 .. Feb = 11 */
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);

    *year = (int)y;
    *month = (int)m;
    *day = (int)d;
}

int64_t enpi_civil_to_utc_ms(const enpi_civil_t *c)
{
    int64_t days = enpi_days_from_civil(c->year, c->month, c->day);
    if (days > DAYS_LIMIT)
        days = DAYS_LIMIT;
    if (days < -DAYS_LIMIT)
        days = -DAYS_LIMIT;
    /* The time fields are clamped to their documented ranges so a hand-built struct
     * cannot push the sum out of int64_t. */
    int64_t tod = 0;
    if (c->has_time) {
        int h = c->hour < 0 ? 0 : c->hour > 23 ? 23 : c->hour;
        int mi = c->minute < 0 ? 0 : c->minute > 59 ? 59 : c->minute;
        int s = c->second < 0 ? 0 : c->second > 59 ? 59 : c->second;
        int ms = c->millis < 0 ? 0 : c->millis > 999 ? 999 : c->millis;
        tod = ((int64_t)h * 3600 + mi * 60 + s) * 1000 + ms;
    }
    int64_t t = days * MS_PER_DAY + tod;
    if (c->has_offset) {
        int off = c->offset_s;
        if (off > 86400)
            off = 86400;
        if (off < -86400)
            off = -86400;
        t -= (int64_t)off * 1000;
    }
    return t;
}

/* A cursor over (s, len): the parsers below consume from it and never read past end. */
typedef struct {
    const char *p;
    const char *end;
} cursor_t;

static bool at_end(const cursor_t *c)
{
    return c->p >= c->end;
}

static bool peek_is(const cursor_t *c, char ch)
{
    return !at_end(c) && *c->p == ch;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Reads exactly n decimal digits into *out; false (cursor unspecified) otherwise. */
static bool take_digits(cursor_t *c, int n, int *out)
{
    int v = 0;
    if (c->end - c->p < n)
        return false;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        v = v * 10 + (c->p[i] - '0');
    }
    c->p += n;
    *out = v;
    return true;
}

static bool take_char(cursor_t *c, char ch)
{
    if (!peek_is(c, ch))
        return false;
    c->p++;
    return true;
}

/* "Z", "±HH:MM", "±HHMM" or "±HH" at the cursor; hours up to 23, minutes up to 59. */
static bool take_offset(cursor_t *c, int *offset_s)
{
    if (take_char(c, 'Z') || take_char(c, 'z')) {
        *offset_s = 0;
        return true;
    }
    int sign;
    if (take_char(c, '+'))
        sign = 1;
    else if (take_char(c, '-'))
        sign = -1;
    else
        return false;
    int hh, mm = 0;
    if (!take_digits(c, 2, &hh))
        return false;
    if (take_char(c, ':')) {
        if (!take_digits(c, 2, &mm))
            return false;
    } else if (!at_end(c)) {
        if (!take_digits(c, 2, &mm))
            return false;
    }
    if (hh > 23 || mm > 59)
        return false;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return true;
}

/*
 * Grammar (after the date): [T|t|' '] HH ':' MM [':' SS ['.'|',' digit+]] [offset].
 * A fraction may have any number of digits; digits past the third are dropped
 * (truncated, not rounded, so 59.9999 stays in the same second). Returns 0 or
 * ENPI_EPARSE; *out is fully written on success and untouched on failure.
 */
int enpi_civil_parse(const char *s, size_t len, enpi_civil_t *out)
{
    if (s == NULL || out == NULL)
        return ENPI_EPARSE;

    cursor_t c = {s, s + len};
    enpi_civil_t r;
    memset(&r, 0, sizeof(r));

    if (!take_digits(&c, 4, &r.year) || !take_char(&c, '-') ||
        !take_digits(&c, 2, &r.month) || !take_char(&c, '-') ||
        !take_digits(&c, 2, &r.day))
        return ENPI_EPARSE;
    if (r.month < 1 || r.month > 12 || r.day < 1 || r.day > days_in_month(r.year, r.month))
        return ENPI_EPARSE;

    if (!at_end(&c)) {
        if (!(take_char(&c, 'T') || take_char(&c, 't') || take_char(&c, ' ')))
            return ENPI_EPARSE;
        r.has_time = true;
        if (!take_digits(&c, 2, &r.hour) || !take_char(&c, ':') ||
            !take_digits(&c, 2, &r.minute))
            return ENPI_EPARSE;
        if (take_char(&c, ':')) {
            if (!take_digits(&c, 2, &r.second))
                return ENPI_EPARSE;
            if (take_char(&c, '.') || take_char(&c, ',')) {
                int ndigits = 0;
                while (!at_end(&c) && is_digit(*c.p)) {
                    if (ndigits < 3)
                        r.millis = r.millis * 10 + (*c.p - '0');
                    ndigits++;
                    c.p++;
                }
                if (ndigits == 0)
                    return ENPI_EPARSE;
                for (int i = ndigits; i < 3; i++)
                    r.millis *= 10;
            }
        }
        if (r.hour > 23 || r.minute > 59 || r.second > 59)
            return ENPI_EPARSE;
        if (!at_end(&c)) {
            if (!take_offset(&c, &r.offset_s))
                return ENPI_EPARSE;
            r.has_offset = true;
        }
    }
    if (!at_end(&c))
        return ENPI_EPARSE;
    *out = r;
    return 0;
}

/*
 * Units and their size; "mo" must be tried before "m" and "ms" before "m" and "s",
 * which the exact-suffix match below takes care of.
 */
typedef struct {
    const char *name;
    int64_t ms;     /* fixed length of one unit, 0 for calendar units */
    int months;     /* months in one calendar unit */
} unit_t;

static const unit_t units[] = {
    {"ms", 1, 0},
    {"s", 1000, 0},
    {"m", 60000, 0},
    {"h", 3600000, 0},
    {"d", 86400000, 0},
    {"w", 7 * 86400000, 0},
    {"mo", 0, 1},
    {"y", 0, 12},
};

/* Returns 0 and the duration, or ENPI_EPARSE. Fixed lengths must fit int64_t ms and
 * calendar lengths an int of months; larger numbers are ENPI_EPARSE too. */
int enpi_duration_parse(const char *s, size_t len, enpi_duration_t *out)
{
    if (s == NULL || out == NULL)
        return ENPI_EPARSE;

    size_t i = 0;
    int64_t n = 0;
    while (i < len && is_digit(s[i])) {
        if (n > (INT64_MAX - 9) / 10)
            return ENPI_EPARSE;
        n = n * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0 || n <= 0)
        return ENPI_EPARSE;

    const char *unit = s + i;
    size_t ulen = len - i;
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (strlen(units[u].name) != ulen || memcmp(units[u].name, unit, ulen) != 0)
            continue;
        enpi_duration_t d = {0, 0};
        if (units[u].months > 0) {
            if (n > INT_MAX / units[u].months)
                return ENPI_EPARSE;
            d.months = (int)n * units[u].months;
        } else {
            if (n > INT64_MAX / units[u].ms)
                return ENPI_EPARSE;
            d.ms = n * units[u].ms;
        }
        *out = d;
        return 0;
    }
    return ENPI_EPARSE;
}

/*
 * The largest unit that divides the length exactly: d, h, m, s, ms for fixed lengths
 * (weeks are written as days: "14d", not "2w"), y or mo for months. A duration that
 * is neither (both fields zero or negative) is written "0ms". Truncates to n bytes.
 */
const char *enpi_duration_format(const enpi_duration_t *d, char *buf, size_t n)
{
    if (buf == NULL || n == 0)
        return buf;
    if (d->months > 0) {
        if (d->months % 12 == 0)
            snprintf(buf, n, "%dy", d->months / 12);
        else
            snprintf(buf, n, "%dmo", d->months);
        return buf;
    }
    if (d->ms <= 0) {
        snprintf(buf, n, "0ms");
        return buf;
    }
    static const unit_t fixed[] = {
        {"d", 86400000, 0}, {"h", 3600000, 0}, {"m", 60000, 0}, {"s", 1000, 0}, {"ms", 1, 0},
    };
    for (size_t u = 0; u < sizeof(fixed) / sizeof(fixed[0]); u++) {
        if (d->ms % fixed[u].ms == 0) {
            snprintf(buf, n, "%lld%s", (long long)(d->ms / fixed[u].ms), fixed[u].name);
            break;
        }
    }
    return buf;
}
