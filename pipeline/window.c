/*
 * window.c - the rollup window of an instant for one resolution in one zone (SPEC §5).
 *
 * Fixed resolutions count from the local day's start (its midnight, or the first
 * instant that exists when the midnight is skipped): windows are start + k * len and
 * the last one is clipped at the next day's start. 1d and 1mo are the local calendar
 * day and month. All of it is arithmetic on enpi_tz_t lookups, so it is lock-free and
 * may run on any thread that can read the zone.
 */
#include "window.h"

#include <stddef.h>

#define MS_PER_DAY INT64_C(86400000)

bool enpi_resolution_valid(const enpi_duration_t *res)
{
    if (res == NULL)
        return false;
    if (res->months != 0)
        return res->months == 1 && res->ms == 0;
    return res->ms > 0 && MS_PER_DAY % res->ms == 0;
}

/*
 * Codes: 1..1440 minutes for whole-minute resolutions (15m = 15, 1d = 1440);
 * 0x80000000 | seconds for whole-second resolutions under a minute or not a whole
 * number of minutes (30s = 0x8000001E); 0xC0000000 | ms for the remaining sub-second
 * ones; 0xFFFF0001 for 1mo; 0 for an invalid resolution. The sets do not overlap.
 */
uint32_t enpi_resolution_code(const enpi_duration_t *res)
{
    if (!enpi_resolution_valid(res))
        return 0;
    if (res->months == 1)
        return UINT32_C(0xFFFF0001);
    if (res->ms % 60000 == 0)
        return (uint32_t)(res->ms / 60000);
    if (res->ms % 1000 == 0)
        return UINT32_C(0x80000000) | (uint32_t)(res->ms / 1000);
    return UINT32_C(0xC0000000) | (uint32_t)res->ms;
}

/*
 * An invalid resolution yields the 1 ms window [t, t + 1) rather than dividing by
 * zero; callers validate resolutions when the configuration is loaded.
 */
enpi_window_t enpi_window_containing(const enpi_tz_t *tz, const enpi_duration_t *res, int64_t t_ms)
{
    enpi_window_t w;
    if (!enpi_resolution_valid(res)) {
        w.start = t_ms;
        w.end = t_ms == INT64_MAX ? t_ms : t_ms + 1;
        return w;
    }
    if (res->months == 1) {
        w.start = enpi_tz_month_start(tz, t_ms, 0);
        w.end = enpi_tz_month_start(tz, t_ms, 1);
        return w;
    }
    int64_t day_start = enpi_tz_day_start(tz, t_ms);
    int64_t day_end = enpi_tz_day_shift(tz, t_ms, 1);
    if (res->ms == MS_PER_DAY) {
        /* The calendar day, even when it lasts 23 or 25 hours. */
        w.start = day_start;
        w.end = day_end;
        return w;
    }
    /* tz.c clamps instants millions of years out; clamp t into its day likewise so
     * the sums below cannot overflow. */
    int64_t into = t_ms - day_start;
    if (t_ms < day_start)
        into = 0;
    else if (t_ms >= day_end)
        into = day_end - day_start - 1;
    w.start = day_start + into / res->ms * res->ms;
    w.end = w.start + res->ms < day_end ? w.start + res->ms : day_end;
    return w;
}

enpi_window_t enpi_window_next(const enpi_tz_t *tz, const enpi_duration_t *res, enpi_window_t w)
{
    return enpi_window_containing(tz, res, w.end);
}
