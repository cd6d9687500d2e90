/*
 * window.h - which rollup window an instant falls in, for one resolution in one zone.
 *
 * Fixed resolutions (15m, 1h, ... any duration dividing 1d) are aligned to local
 * midnight: windows run midnight + k*len and the last window of a local day ends at the
 * next local midnight (so a 25-hour DST day has 25 one-hour windows, a 23-hour day 23).
 * 1d is the local calendar day; 1mo the local calendar month. Windows are half-open
 * [start, end). Also used to walk the windows an interval overlaps (apportioning).
 */
#ifndef ENPI_WINDOW_H
#define ENPI_WINDOW_H

#include <stdbool.h>
#include <stdint.h>

#include "civil.h"
#include "tz.h"

typedef struct {
    int64_t start; /* UTC ms, inclusive */
    int64_t end;   /* UTC ms, exclusive */
} enpi_window_t;

/* True when a duration is usable as a resolution: months == 1, or a fixed length that
 * divides 24 h exactly (1d itself included). */
bool enpi_resolution_valid(const enpi_duration_t *res);

/* A stable 32-bit code for storage keys: minutes for fixed lengths (15m = 15,
 * 1d = 1440), 0xFFFF0001 for 1mo. Lengths that are not whole minutes (30s, 90s) are
 * 0x80000000 | seconds, and those not whole seconds 0xC0000000 | ms. 0 when the
 * resolution is not valid. */
uint32_t enpi_resolution_code(const enpi_duration_t *res);

/* The window of resolution `res` in zone `tz` that contains t. For an invalid
 * resolution, the 1 ms window [t, t + 1). */
enpi_window_t enpi_window_containing(const enpi_tz_t *tz, const enpi_duration_t *res, int64_t t_ms);

/* The window right after w (w must come from enpi_window_containing/next). */
enpi_window_t enpi_window_next(const enpi_tz_t *tz, const enpi_duration_t *res, enpi_window_t w);

#endif
