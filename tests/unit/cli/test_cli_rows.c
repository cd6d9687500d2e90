/*
 * test_cli_rows.c - facility rows as sums of meter rollups, SEC, the watermark and
 * finality boundaries, and meter staleness (by age, and by a Sparkplug death).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "rows.h"

#define H 3600000LL

static enpi_stored_rollup_t ru(int64_t start, double value, double est, uint32_t readings,
                               uint32_t resets, uint32_t late, uint32_t dups)
{
    enpi_stored_rollup_t r = {start, start + H, {value, est, readings, resets, late, dups}};
    return r;
}

static void facility_sums_meters_window_by_window(void **state)
{
    (void)state;
    /* em1 at h0, h1; gas at h0, h3; prod at h0, h2. Every window any meter has appears. */
    enpi_stored_rollup_t em1[] = {ru(0, 0.1, 0, 4, 1, 0, 0), ru(H, 1e-12, 0, 1, 0, 0, 2)};
    enpi_stored_rollup_t gas[] = {ru(0, 0.2, 0.05, 1, 0, 1, 0), ru(3 * H, 7, 7, 0, 0, 0, 0)};
    enpi_stored_rollup_t prod[] = {ru(0, 3, 0.5, 2, 0, 0, 1), ru(2 * H, 5, 0, 1, 0, 0, 0)};
    enpi_cli_meter_rows_t m[] = {
        {ENPI_KIND_ENERGY, em1, 2},
        {ENPI_KIND_PRODUCTION, prod, 2},
        {ENPI_KIND_ENERGY, gas, 2},
    };
    enpi_cli_row_t *rows;
    size_t n;
    assert_int_equal(enpi_cli_facility_sum(m, 3, &rows, &n), 0);
    assert_int_equal(n, 4);
    double sec;

    assert_true(rows[0].start == 0 && rows[0].end == H);
    assert_true(rows[0].energy_kwh == 0.1 + 0.2); /* meters added in the given order */
    assert_true(rows[0].units == 3);
    assert_true(rows[0].est_energy_kwh == 0.05);
    assert_true(rows[0].est_units == 0.5);
    assert_int_equal(rows[0].readings, 7);
    assert_int_equal(rows[0].resets, 1);
    assert_int_equal(rows[0].late, 1);
    assert_int_equal(rows[0].duplicates, 1);
    assert_true(enpi_cli_row_sec(&rows[0], &sec));
    assert_true(sec == (0.1 + 0.2) / 3);

    assert_true(rows[1].start == H && rows[1].end == 2 * H);
    assert_true(rows[1].energy_kwh == 1e-12 && rows[1].units == 0);
    assert_int_equal(rows[1].duplicates, 2);
    assert_false(enpi_cli_row_sec(&rows[1], &sec)); /* units 0: null */

    assert_true(rows[2].start == 2 * H);
    assert_true(rows[2].energy_kwh == 0 && rows[2].units == 5);
    assert_true(enpi_cli_row_sec(&rows[2], &sec) && sec == 0);

    assert_true(rows[3].start == 3 * H && rows[3].end == 4 * H);
    assert_true(rows[3].energy_kwh == 7 && rows[3].est_energy_kwh == 7);
    assert_int_equal(rows[3].readings, 0);
    free(rows);
}

static void facility_without_rollups_has_no_rows(void **state)
{
    (void)state;
    enpi_cli_meter_rows_t m[] = {{ENPI_KIND_ENERGY, NULL, 0}, {ENPI_KIND_PRODUCTION, NULL, 0}};
    enpi_cli_row_t *rows = (enpi_cli_row_t *)&rows;
    size_t n = 99;
    assert_int_equal(enpi_cli_facility_sum(m, 2, &rows, &n), 0);
    assert_int_equal(n, 0);
    assert_null(rows);
    assert_int_equal(enpi_cli_facility_sum(NULL, 0, &rows, &n), 0);
    assert_int_equal(n, 0);
}

static void single_meter_rows_keep_their_kind(void **state)
{
    (void)state;
    enpi_stored_rollup_t prod[] = {ru(-H, 2.5, 1.5, 3, 0, 0, 0)};
    enpi_cli_meter_rows_t m = {ENPI_KIND_PRODUCTION, prod, 1};
    enpi_cli_row_t *rows;
    size_t n;
    assert_int_equal(enpi_cli_facility_sum(&m, 1, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_true(rows[0].start == -H && rows[0].end == 0);
    assert_true(rows[0].units == 2.5 && rows[0].est_units == 1.5);
    assert_true(rows[0].energy_kwh == 0 && rows[0].est_energy_kwh == 0);
    free(rows);
}

static void watermark_is_min_and_needs_every_meter(void **state)
{
    (void)state;
    enpi_meter_state_t a = {.has_state = true, .last_ts_ms = 5 * H};
    enpi_meter_state_t b = {.has_state = true, .last_ts_ms = 3 * H};
    enpi_meter_state_t never = {.has_state = false, .last_ts_ms = 9 * H};
    const enpi_meter_state_t *ab[] = {&a, &b};
    assert_true(enpi_cli_watermark(ab, 2) == 3 * H);
    const enpi_meter_state_t *anever[] = {&a, &never};
    assert_true(enpi_cli_watermark(anever, 2) == INT64_MIN);
    assert_true(enpi_cli_watermark(NULL, 0) == INT64_MIN);
}

static void final_needs_strictly_later_reading_or_clock(void **state)
{
    (void)state;
    const int64_t end = 10 * H, late = H;
    /* watermark exactly at end + lateness: a late reading could still land */
    assert_false(enpi_cli_window_final(end, late, end + late, 0));
    assert_true(enpi_cli_window_final(end, late, end + late + 1, 0));
    assert_false(enpi_cli_window_final(end, late, INT64_MIN, end + late));
    assert_true(enpi_cli_window_final(end, late, INT64_MIN, end + late + 1));
    assert_false(enpi_cli_window_final(end, 0, end, end));
    assert_true(enpi_cli_window_final(end, 0, end + 1, end));
}

static void stale_after_twice_interval_or_an_hour(void **state)
{
    (void)state;
    enpi_meter_cfg_t cum = {.reading = ENPI_READING_CUMULATIVE, .interval_ms = 0};
    enpi_meter_cfg_t q = {.reading = ENPI_READING_DELTA, .interval_ms = 15 * 60000};
    enpi_meter_cfg_t slow = {.reading = ENPI_READING_DELTA, .interval_ms = 2 * H};
    assert_true(enpi_cli_stale_after_ms(&cum) == H);
    assert_true(enpi_cli_stale_after_ms(&q) == H);
    assert_true(enpi_cli_stale_after_ms(&slow) == 4 * H);

    enpi_meter_state_t s = {.has_state = true, .last_ts_ms = 100 * H};
    assert_false(enpi_cli_meter_stale(&cum, &s, 101 * H));
    assert_true(enpi_cli_meter_stale(&cum, &s, 101 * H + 1));
    assert_false(enpi_cli_meter_stale(&slow, &s, 103 * H));
    assert_true(enpi_cli_meter_stale(&slow, &s, 104 * H + 1));
    enpi_meter_state_t never = {0};
    assert_true(enpi_cli_meter_stale(&cum, &never, 0));
    assert_true(enpi_cli_meter_stale(&cum, NULL, 0));
}

static void dead_meter_is_stale_until_it_reports(void **state)
{
    (void)state;
    enpi_meter_cfg_t cum = {.reading = ENPI_READING_CUMULATIVE, .interval_ms = 0};
    /* reported a minute ago, but its Sparkplug edge node died since */
    enpi_meter_state_t s = {.has_state = true, .last_ts_ms = 100 * H, .dead_since_ms = 100 * H + 1};
    assert_true(enpi_cli_meter_stale(&cum, &s, 100 * H + 60000));
    s.dead_since_ms = 0; /* its next accepted reading cleared the mark */
    assert_false(enpi_cli_meter_stale(&cum, &s, 100 * H + 60000));
    /* dead and silent: stale by both rules */
    s.dead_since_ms = 100 * H + 1;
    assert_true(enpi_cli_meter_stale(&cum, &s, 200 * H));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(facility_sums_meters_window_by_window),
        cmocka_unit_test(facility_without_rollups_has_no_rows),
        cmocka_unit_test(single_meter_rows_keep_their_kind),
        cmocka_unit_test(watermark_is_min_and_needs_every_meter),
        cmocka_unit_test(final_needs_strictly_later_reading_or_clock),
        cmocka_unit_test(stale_after_twice_interval_or_an_hour),
        cmocka_unit_test(dead_meter_is_stale_until_it_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
