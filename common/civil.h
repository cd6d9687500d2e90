/*
 * civil.h - calendar arithmetic and the text forms of SPEC §3: ISO 8601 dates and
 * date-times, and durations (30s, 15m, 1h, 1d, 1mo).
 *
 * Pure functions on the proleptic Gregorian calendar; no time zones here (pipeline/tz.h
 * turns a civil time without offset into an instant for a given zone).
 */
#ifndef ENPI_CIVIL_H
#define ENPI_CIVIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A calendar date and time as written, before any time zone is applied. */
typedef struct {
    int year;
    int month;      /* 1..12 */
    int day;        /* 1..31 */
    int hour;       /* 0..23 (0 when has_time is false) */
    int minute;     /* 0..59 */
    int second;     /* 0..59 (a leap second 60 is rejected) */
    int millis;     /* 0..999, from a fraction of the second */
    bool has_time;  /* false for a bare date: midnight */
    bool has_offset;/* "Z" or "+07:00" given */
    int offset_s;   /* seconds east of UTC when has_offset */
} enpi_civil_t;

/*
 * Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.fff...]]" with an optional "Z" or "±HH:MM"
 * ("±HHMM", "±HH" accepted); a space may stand for the 'T'. Rejects out-of-range fields
 * (Feb 30, hour 24) and trailing bytes. Returns 0 or ENPI_EPARSE.
 */
int enpi_civil_parse(const char *s, size_t len, enpi_civil_t *out);

/* Days from 1970-01-01 to the given proleptic Gregorian date (negative before). */
int64_t enpi_days_from_civil(int year, int month, int day);

/* The date of a day number counted from 1970-01-01. */
void enpi_civil_from_days(int64_t days, int *year, int *month, int *day);

/* The instant of a civil time read as UTC, in ms since the epoch; the offset, when
 * present, is applied (so this is the true instant when has_offset is true). */
int64_t enpi_civil_to_utc_ms(const enpi_civil_t *c);

/* Floor division and modulo for negative timestamps. */
static inline int64_t enpi_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* A SPEC §3 duration: either a fixed length in ms or a number of calendar months. */
typedef struct {
    int64_t ms;  /* fixed length; 0 when months > 0 */
    int months;  /* calendar months ("1mo"); 0 for fixed durations */
} enpi_duration_t;

/*
 * Parses "<positive integer><unit>" with unit ms, s, m, h, d, w, mo or y (y = 12 months).
 * Returns 0, or ENPI_EPARSE for anything else (zero, sign, fraction, unknown unit).
 */
int enpi_duration_parse(const char *s, size_t len, enpi_duration_t *out);

/* Writes the canonical short form ("15m", "1h", "1d", "1mo") into buf; returns buf. */
const char *enpi_duration_format(const enpi_duration_t *d, char *buf, size_t n);

#endif
