/*
 * test_retention.c - storage.retention against a real RocksDB: the sweep deletes exactly
 * the windows that ended at or before the cutoff, only for the listed resolutions, for
 * every meter (ids that are prefixes of each other included), is idempotent, can be
 * stopped between batches and resumed, and a late reading into a swept window recreates
 * no row once the batch went through enpi_store_retention_filter. Plus the calendar
 * arithmetic of the cutoff, and enpi_store_reopen (the instance swap after a write error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "civil.h"
#include "enpi_error.h"
#include "storage.h"
#include "tmpdir.h"
#include "store_fixture.h"

#define RES_15M 15u
#define RES_1H 60u
#define RES_1MO 0xFFFF0001u
#define W15 900000LL
#define H1 3600000LL
#define DAY 86400000LL

static int setup(void **state)
{
    return store_fixture_setup(state, "retention");
}

/* ---- helpers ---- */

typedef struct {
    size_t n;
    int64_t first_start;
    enpi_stored_rollup_t last;
} count_t;

static int count_cb(void *ctx, const enpi_stored_rollup_t *r)
{
    count_t *c = ctx;
    if (c->n == 0)
        c->first_start = r->start;
    c->last = *r;
    c->n++;
    return 0;
}

/* Every stored window of (meter, res). */
static count_t rows(enpi_store_t *st, const char *meter, uint32_t res)
{
    count_t c = {0};
    assert_int_equal(enpi_store_rollups(st, meter, res, INT64_MIN, INT64_MAX, count_cb, &c), 0);
    return c;
}

/* Commits n consecutive windows of `len` from `start` for each meter, value 1 each. */
static void commit_windows(enpi_store_t *st, const char *const *ids, size_t n_ids, uint32_t res,
                           int64_t start, int64_t len, size_t n)
{
    enpi_meter_snapshot_t *meters = calloc(n_ids, sizeof *meters);
    enpi_rollup_delta_t *d = calloc(n_ids * n, sizeof *d);
    assert_non_null(meters);
    assert_non_null(d);
    for (size_t m = 0; m < n_ids; m++) {
        meters[m].meter_id = (char *)ids[m];
        meters[m].state.has_state = true;
        for (size_t i = 0; i < n; i++)
            d[m * n + i] = (enpi_rollup_delta_t){.meter = (uint32_t)m,
                                                 .res_code = res,
                                                 .start = start + (int64_t)i * len,
                                                 .end = start + (int64_t)(i + 1) * len,
                                                 .delta = {.value = 1, .readings = 1}};
    }
    enpi_batch_t b = {.rollups = d, .n_rollups = n_ids * n, .meters = meters, .n_meters = n_ids};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    free(d);
    free(meters);
}

/* ---- the cutoff ---- */

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return enpi_days_from_civil(y, mo, d) * DAY + (int64_t)h * H1 + (int64_t)mi * 60000;
}

static void cutoff_subtracts_fixed_durations_exactly(void **state)
{
    enpi_duration_t d400 = {.ms = 400 * DAY};
    int64_t now = utc(2026, 11, 28, 16, 45) + 123;
    assert_int_equal(enpi_store_retention_cutoff(now, &d400), now - 400 * DAY);
}

static void cutoff_counts_calendar_months_and_clamps_the_day(void **state)
{
    enpi_duration_t y5 = {.months = 60}, mo1 = {.months = 1}, y1 = {.months = 12};
    /* the time of day is kept */
    assert_int_equal(enpi_store_retention_cutoff(utc(2026, 11, 28, 16, 45) + 7, &y5),
                     utc(2021, 11, 28, 16, 45) + 7);
    /* Mar 31 - 1 month = Feb 29 in a leap year, Feb 28 otherwise */
    assert_int_equal(enpi_store_retention_cutoff(utc(2024, 3, 31, 1, 0), &mo1),
                     utc(2024, 2, 29, 1, 0));
    assert_int_equal(enpi_store_retention_cutoff(utc(2023, 3, 31, 1, 0), &mo1),
                     utc(2023, 2, 28, 1, 0));
    assert_int_equal(enpi_store_retention_cutoff(utc(2024, 2, 29, 0, 0), &y1),
                     utc(2023, 2, 28, 0, 0));
    /* January back into the previous year, and before the epoch */
    assert_int_equal(enpi_store_retention_cutoff(utc(2026, 1, 15, 0, 0), &mo1),
                     utc(2025, 12, 15, 0, 0));
    assert_int_equal(enpi_store_retention_cutoff(utc(1970, 1, 1, 0, 0), &y5),
                     utc(1965, 1, 1, 0, 0));
}

/* ---- the sweep ---- */

static void sweep_deletes_exactly_the_expired_windows_of_listed_resolutions(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    /* ids that are prefixes of each other, and one with a '/' */
    const char *ids[] = {"a", "ab", "a/b", "b"};
    commit_windows(st, ids, 4, RES_15M, 0, W15, 96); /* one day of 15m windows */
    commit_windows(st, ids, 4, RES_1H, 0, H1, 24);
    commit_windows(st, ids, 4, RES_1MO, 0, 31 * DAY, 2);
    /* "c" has only old 15m windows: all of them go */
    const char *old[] = {"c"};
    commit_windows(st, old, 1, RES_15M, 0, W15, 4);

    /* cutoff 10:00: windows ending at or before 10:00 go (40 of them); 10:00-10:15 stays */
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 10 * H1}};
    enpi_retention_stats_t stats;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(cut[0].deleted, 4 * 40 + 4);
    assert_int_equal(stats.deleted, 4 * 40 + 4);
    assert_false(stats.stopped);
    for (size_t m = 0; m < 4; m++) {
        count_t c = rows(st, ids[m], RES_15M);
        assert_int_equal(c.n, 96 - 40);
        assert_int_equal(c.first_start, 10 * H1);
        /* other resolutions untouched */
        assert_int_equal(rows(st, ids[m], RES_1H).n, 24);
        assert_int_equal(rows(st, ids[m], RES_1MO).n, 2);
    }
    assert_int_equal(rows(st, "c", RES_15M).n, 0);

    /* a cutoff inside a window keeps that window (its end is after the cutoff) */
    cut[0].cutoff_ms = 10 * H1 + W15 - 1;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 0);
    assert_int_equal(rows(st, "a", RES_15M).first_start, 10 * H1);

    /* the end decides, not the start: a short (clipped) window ending at the cutoff goes */
    enpi_meter_snapshot_t ms[] = {{.meter_id = "d", .state = {.has_state = true}}};
    enpi_rollup_delta_t d[] = {
        {.meter = 0, .res_code = RES_1H, .start = 0, .end = H1 / 2, .delta = {.value = 1}},
        {.meter = 0, .res_code = RES_1H, .start = H1 / 2, .end = 2 * H1, .delta = {.value = 1}},
    };
    enpi_batch_t b = {.rollups = d, .n_rollups = 2, .meters = ms, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    enpi_retention_cutoff_t two[] = {{.res_code = RES_1H, .cutoff_ms = H1 / 2},
                                     {.res_code = RES_1MO, .cutoff_ms = 31 * DAY}};
    assert_int_equal(enpi_store_retention_sweep(st, two, 2, NULL, &stats), 0);
    assert_int_equal(two[0].deleted, 1);
    assert_int_equal(two[1].deleted, 4); /* the first month of a, ab, a/b, b */
    count_t c = rows(st, "d", RES_1H);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.first_start, H1 / 2);
    assert_int_equal(rows(st, "a", RES_1H).n, 24); /* its first hour ends after H1/2 */
    assert_int_equal(rows(st, "b", RES_1MO).n, 1);
    enpi_store_close(st);

    /* the deletions survive a reopen */
    st = open_primary(f->path);
    assert_int_equal(rows(st, "ab", RES_15M).n, 96 - 40);
    assert_int_equal(rows(st, "c", RES_15M).n, 0);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "c", &s), 0); /* meter states stay */
    enpi_meter_state_clear(&s);
    enpi_store_close(st);
}

static void sweep_is_idempotent(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    const char *ids[] = {"m1", "m10", "m2"};
    commit_windows(st, ids, 3, RES_15M, -4 * W15, W15, 12); /* windows before the epoch too */
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = W15}};
    enpi_retention_stats_t stats;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 3 * 5);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
        assert_int_equal(stats.deleted, 0);
        assert_int_equal(cut[0].deleted, 0);
        for (size_t m = 0; m < 3; m++) {
            count_t c = rows(st, ids[m], RES_15M);
            assert_int_equal(c.n, 7);
            assert_int_equal(c.first_start, W15);
        }
    }
    /* nothing listed: nothing deleted */
    assert_int_equal(enpi_store_retention_sweep(st, NULL, 0, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 0);
    assert_int_equal(enpi_store_retention_sweep(st, NULL, 1, NULL, &stats), ENPI_EINVAL);
    enpi_store_close(st);
}

static void sweep_stops_between_batches_and_resumes(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    const char *ids[] = {"big"};
    commit_windows(st, ids, 1, RES_15M, 0, W15, 3000);
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 2500 * W15},
                                     {.res_code = RES_1H, .cutoff_ms = 2500 * W15}};
    /* the stop flag is read after each written batch: one batch (1024 deletes) goes in */
    _Atomic bool stop = true;
    enpi_retention_stats_t stats;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 2, &stop, &stats), 0);
    assert_true(stats.stopped);
    assert_int_equal(stats.deleted, 1024);
    assert_int_equal(cut[0].deleted, 1024);
    assert_int_equal(rows(st, "big", RES_15M).n, 3000 - 1024);
    assert_int_equal(rows(st, "big", RES_15M).first_start, 1024 * W15);

    /* the next sweep carries on from there */
    atomic_store(&stop, false);
    assert_int_equal(enpi_store_retention_sweep(st, cut, 2, &stop, &stats), 0);
    assert_false(stats.stopped);
    assert_int_equal(stats.deleted, 2500 - 1024);
    assert_int_equal(rows(st, "big", RES_15M).n, 500);
    assert_int_equal(rows(st, "big", RES_15M).first_start, 2500 * W15);
    enpi_store_close(st);
}

static void large_sweep_asks_for_compaction(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    const char *ids[] = {"x", "y"};
    commit_windows(st, ids, 2, RES_15M, 0, W15, 35000);
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 34000 * W15}};
    enpi_retention_stats_t stats;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 68000);
    assert_true(stats.compaction_suggested);
    assert_int_equal(rows(st, "x", RES_15M).n, 1000);
    assert_int_equal(rows(st, "y", RES_15M).first_start, 34000 * W15);
    /* a small sweep does not */
    cut[0].cutoff_ms = 34010 * W15;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 20);
    assert_false(stats.compaction_suggested);
    enpi_store_close(st);
}

static void late_reading_into_a_swept_window_recreates_no_row(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    const char *ids[] = {"late"};
    commit_windows(st, ids, 1, RES_15M, 0, W15, 8); /* cached by the commit */
    commit_windows(st, ids, 1, RES_1H, 0, H1, 2);
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 4 * W15}};
    enpi_retention_stats_t stats;
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 4);

    /* a late reading spread over windows 2..5 (15m) and hour 0 (1h) */
    enpi_meter_snapshot_t ms[] = {
        {.meter_id = "late", .state = {.has_state = true, .last_ts_ms = 6 * W15}}};
    enpi_rollup_delta_t d[] = {
        {.meter = 0, .res_code = RES_15M, .start = 2 * W15, .end = 3 * W15, .delta = {.value = 5}},
        {.meter = 0, .res_code = RES_1H, .start = 0, .end = H1, .delta = {.value = 20}},
        {.meter = 0, .res_code = RES_15M, .start = 3 * W15, .end = 4 * W15, .delta = {.value = 5}},
        {.meter = 0, .res_code = RES_15M, .start = 4 * W15, .end = 5 * W15, .delta = {.value = 5}},
        {.meter = 0, .res_code = RES_15M, .start = 5 * W15, .end = 6 * W15, .delta = {.value = 5}},
    };
    enpi_batch_t b = {.rollups = d, .n_rollups = 5, .meters = ms, .n_meters = 1};
    assert_int_equal(enpi_store_retention_filter(&b, cut, 1), 2);
    assert_int_equal(b.n_rollups, 3);
    /* the others keep their order */
    assert_int_equal(b.rollups[0].res_code, RES_1H);
    assert_int_equal(b.rollups[1].start, 4 * W15);
    assert_int_equal(b.rollups[2].start, 5 * W15);
    assert_int_equal(enpi_store_commit(st, &b), 0);

    count_t c = rows(st, "late", RES_15M);
    assert_int_equal(c.n, 4); /* windows 4..7 only: 0..3 stay gone */
    assert_int_equal(c.first_start, 4 * W15);
    enpi_stored_rollup_t r;
    count_t one = {0};
    assert_int_equal(enpi_store_rollups(st, "late", RES_15M, 4 * W15, 4 * W15 + 1, count_cb, &one),
                     0);
    r = one.last;
    assert_true(r.r.value == 6.0); /* 1 stored + 5 late */
    one = (count_t){0};
    assert_int_equal(enpi_store_rollups(st, "late", RES_1H, 0, 1, count_cb, &one), 0);
    assert_true(one.last.r.value == 21.0);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "late", &s), 0); /* the state moved on */
    assert_int_equal(s.last_ts_ms, 6 * W15);
    enpi_meter_state_clear(&s);

    /* a window the cache never held, written after a sweep without the filter, holds the
     * new delta alone (the sweep left nothing to add to), and the next sweep removes it */
    enpi_rollup_delta_t d2[] = {
        {.meter = 0, .res_code = RES_15M, .start = -W15, .end = 0, .delta = {.value = 7}}};
    enpi_batch_t b2 = {.rollups = d2, .n_rollups = 1, .meters = ms, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b2), 0);
    one = (count_t){0};
    assert_int_equal(enpi_store_rollups(st, "late", RES_15M, -W15, 0, count_cb, &one), 0);
    assert_int_equal(one.n, 1);
    assert_true(one.last.r.value == 7.0);
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, &stats), 0);
    assert_int_equal(stats.deleted, 1);
    enpi_store_close(st);
}

static void sweep_refuses_a_secondary(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_close(st);
    enpi_store_t *sec = NULL;
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &sec, NULL, 0), 0);
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 0}};
    assert_int_equal(enpi_store_retention_sweep(sec, cut, 1, NULL, NULL), ENPI_ESTATE);
    enpi_store_close(sec);
}

/* ---- reopening after a write error ---- */

static void reopen_keeps_everything_and_writes_again(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    const char *ids[] = {"r1", "r2"};
    commit_windows(st, ids, 2, RES_15M, 0, W15, 10);
    /* a failed commit leaves no trace; the reopened instance carries on from the last
     * good one, with the cache (which saw the good commit) still in use */
    enpi_store_inject_commit_failures(st, 1);
    enpi_meter_snapshot_t ms[] = {{.meter_id = "r1", .state = {.has_state = true}}};
    enpi_rollup_delta_t d[] = {
        {.meter = 0, .res_code = RES_15M, .start = 0, .end = W15, .delta = {.value = 2}}};
    enpi_batch_t b = {.rollups = d, .n_rollups = 1, .meters = ms, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b), ENPI_EIO);
    char err[256] = "";
    assert_int_equal(enpi_store_reopen(st, err, sizeof err), 0);
    assert_int_equal(rows(st, "r1", RES_15M).n, 10);
    assert_int_equal(enpi_store_commit(st, &b), 0);
    count_t one = {0};
    assert_int_equal(enpi_store_rollups(st, "r1", RES_15M, 0, 1, count_cb, &one), 0);
    assert_true(one.last.r.value == 3.0);
    /* twice in a row, and the sweep works on the new instance */
    assert_int_equal(enpi_store_reopen(st, NULL, 0), 0);
    enpi_retention_cutoff_t cut[] = {{.res_code = RES_15M, .cutoff_ms = 2 * W15}};
    assert_int_equal(enpi_store_retention_sweep(st, cut, 1, NULL, NULL), 0);
    assert_int_equal(cut[0].deleted, 4);
    enpi_store_close(st);
    st = open_primary(f->path);
    one = (count_t){0};
    assert_int_equal(enpi_store_rollups(st, "r1", RES_15M, 2 * W15, 2 * W15 + 1, count_cb, &one),
                     0);
    assert_int_equal(one.n, 1);
    assert_int_equal(rows(st, "r2", RES_15M).n, 8);
    enpi_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cutoff_subtracts_fixed_durations_exactly),
        cmocka_unit_test(cutoff_counts_calendar_months_and_clamps_the_day),
        cmocka_unit_test_setup_teardown(
            sweep_deletes_exactly_the_expired_windows_of_listed_resolutions, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(sweep_stops_between_batches_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(large_sweep_asks_for_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(late_reading_into_a_swept_window_recreates_no_row, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(sweep_refuses_a_secondary, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_keeps_everything_and_writes_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
