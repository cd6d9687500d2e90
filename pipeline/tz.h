/*
 * tz.h - one IANA time zone as a table of local-day starts and UTC-offset transitions.
 *
 * Calendar windows (SPEC §5: fixed windows aligned to local midnight, 1d and 1mo windows)
 * need "when does the local day containing t start" thousands of times a second, for
 * several zones at once. glibc only answers for the one zone in $TZ, so enpi_tz_open()
 * asks glibc once per zone (under a process-wide lock, restoring $TZ afterwards) and
 * keeps the answers: every local day start from 1990 to 2100 and every offset change.
 * Lookups are then O(1) or O(log n), lock-free and thread-safe on a shared enpi_tz_t.
 * Outside 1990..2100 the zone's offset at the nearest edge is extended.
 */
#ifndef ENPI_TZ_H
#define ENPI_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "civil.h"

typedef struct enpi_tz enpi_tz_t;

/*
 * Builds the table for an IANA zone name ("Europe/Berlin", "UTC", "Asia/Ho_Chi_Minh").
 * Returns 0 and a new zone in *out (free with enpi_tz_free), ENPI_ENOENT for a name the
 * system's tzdata does not know, ENPI_ENOMEM. Takes tens of milliseconds: call at
 * start-up or reload, not per reading. Thread-safe (serialised internally).
 */
int enpi_tz_open(const char *name, enpi_tz_t **out);
void enpi_tz_free(enpi_tz_t *tz);
const char *enpi_tz_name(const enpi_tz_t *tz);

/* Seconds east of UTC in force at instant t (ms since the epoch, UTC). */
int enpi_tz_offset_s(const enpi_tz_t *tz, int64_t t_ms);

/* Start (UTC ms) of the local calendar day containing t. On a day whose midnight is
 * skipped by a DST change, the day starts at the first instant that exists. A date
 * skipped entirely (Pacific/Apia 2011-12-30) is an empty day: it starts where the
 * next day starts and contains no instant. */
int64_t enpi_tz_day_start(const enpi_tz_t *tz, int64_t t_ms);

/* Start (UTC ms) of the local day `days` days after the local day containing t
 * (days may be negative). enpi_tz_day_shift(tz, t, 1) is the end of t's day. */
int64_t enpi_tz_day_shift(const enpi_tz_t *tz, int64_t t_ms, int days);

/* Start (UTC ms) of the local calendar month containing t, shifted by `months`. */
int64_t enpi_tz_month_start(const enpi_tz_t *tz, int64_t t_ms, int months);

/*
 * The instant of a civil time: with an offset, exactly that; without, read in this zone.
 * A local time that falls in a DST gap is moved forward by the gap; an ambiguous one
 * (repeated hour) takes the earlier instant.
 */
int64_t enpi_tz_from_civil(const enpi_tz_t *tz, const enpi_civil_t *c);

/* The local civil time of an instant, with has_offset/offset_s filled. */
void enpi_tz_to_civil(const enpi_tz_t *tz, int64_t t_ms, enpi_civil_t *out);

/* Formats t as "2018-03-28T10:00:00+07:00" (".123" before the offset when ms != 0;
 * "Z" is never used, the offset always). Returns bytes written excluding NUL, or -1. */
int enpi_tz_format(const enpi_tz_t *tz, int64_t t_ms, char *buf, size_t n);

#endif
