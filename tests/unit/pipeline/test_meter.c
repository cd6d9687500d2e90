/*
 * test_meter.c - SPEC §5's per-meter arithmetic on its own (meter.h): cumulative
 * differences with scale and to_kwh, rollover, resets, duplicates and late readings;
 * delta readings with and without interval, redelivery, lateness; every reject the
 * arithmetic owns with its boundary; max_rate; max_gap; the remembered delta timestamps;
 * the bounds on one reading (ENPI_MAX_SPREAD_MS re-bases, ENPI_MAX_AMOUNT is implausible).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "meter.h"
#include "pipeline_testutil.h"

static const int64_t T0 = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */

static enpi_pipeline_cfg_t pcfg(void)
{
    enpi_pipeline_cfg_t pc;

    memset(&pc, 0, sizeof(pc));
    pc.allowed_lateness_ms = HOUR_MS;
    pc.max_future_ms = 5 * MIN_MS;
    pc.max_gap_ms = HOUR_MS;
    return pc;
}

static enpi_meter_cfg_t meter(enpi_kind_t kind, enpi_reading_t reading)
{
    enpi_meter_cfg_t m;

    memset(&m, 0, sizeof(m));
    m.id = "m";
    m.kind = kind;
    m.reading = reading;
    m.scale = 1;
    m.to_kwh = 1;
    return m;
}

/* Evaluates and commits one reading arriving 1 s after its timestamp. */
static enpi_step_t feed(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                        enpi_meter_state_t *st, int64_t ts, double raw)
{
    enpi_step_t s;

    enpi_meter_evaluate(m, pc, st, ts, raw, ts + 1000, &s);
    assert_int_equal(enpi_meter_commit(m, pc, st, ts, raw, &s), 0);
    return s;
}

static void cumulative_first_reading_only_sets_state(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    s = feed(&m, &pc, &st, T0, 1000);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_int_equal(s.readings, 1);
    assert_true(st.has_state);
    assert_int_equal(st.first_ts_ms, T0);
    assert_int_equal(st.last_ts_ms, T0);
    assert_true(st.last_raw == 1000);
    assert_int_equal(st.readings, 1);
}

static void cumulative_difference_scaled_and_converted(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    m.scale = 0.001; /* Wh -> kWh */
    m.to_kwh = 10.55;
    feed(&m, &pc, &st, T0, 1000);
    s = feed(&m, &pc, &st, T0 + 15 * MIN_MS, 3000);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.from, T0);
    assert_int_equal(s.to, T0 + 15 * MIN_MS);
    assert_close(s.value, 2000 * 0.001 * 10.55);
    assert_false(s.estimated);
    assert_int_equal(s.readings, 1);
    assert_int_equal(st.readings, 2);

    /* production meters ignore to_kwh */
    m.kind = ENPI_KIND_PRODUCTION;
    s = feed(&m, &pc, &st, T0 + 30 * MIN_MS, 3500);
    assert_close(s.value, 500 * 0.001);
}

static void cumulative_rollover_and_reset(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_PRODUCTION, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    m.rollover = 1000000;
    feed(&m, &pc, &st, T0, 999990);
    s = feed(&m, &pc, &st, T0 + MIN_MS, 15);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_close(s.value, 25); /* 1000000 - 999990 + 15 */
    assert_int_equal(s.resets, 0);

    /* without rollover a drop is a reset: the new value is the amount since it */
    m.rollover = 0;
    s = feed(&m, &pc, &st, T0 + 2 * MIN_MS, 7);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_close(s.value, 7);
    assert_int_equal(s.resets, 1);
    assert_int_equal(st.resets, 1);
    assert_true(st.last_raw == 7);

    /* a rollover value not above the previous reading cannot explain a drop: reset */
    m.rollover = 5;
    s = feed(&m, &pc, &st, T0 + 3 * MIN_MS, 2);
    assert_int_equal(s.resets, 1);
    assert_close(s.value, 2);
}

static void cumulative_duplicate_and_late_are_counted_and_ignored(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    feed(&m, &pc, &st, T0, 100);
    feed(&m, &pc, &st, T0 + 10 * MIN_MS, 110);
    s = feed(&m, &pc, &st, T0 + 10 * MIN_MS, 999); /* same instant, any value */
    assert_int_equal(s.kind, ENPI_STEP_IGNORED);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.readings, 0);
    s = feed(&m, &pc, &st, T0 + 5 * MIN_MS, 105);
    assert_int_equal(s.kind, ENPI_STEP_IGNORED);
    assert_int_equal(s.late, 1);
    /* cumulative late readings are never too_late, however old */
    s = feed(&m, &pc, &st, T0 - 30 * DAY_MS, 1);
    assert_int_equal(s.kind, ENPI_STEP_IGNORED);
    assert_int_equal(s.late, 1);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.late, 2);
    assert_int_equal(st.readings, 2);
    assert_int_equal(st.last_ts_ms, T0 + 10 * MIN_MS);
    assert_true(st.last_raw == 110);
}

static enpi_reject_t reject_of(const enpi_meter_cfg_t *m, const enpi_pipeline_cfg_t *pc,
                               enpi_meter_state_t *st, int64_t ts, double raw, int64_t arrival)
{
    enpi_step_t s;
    enpi_meter_state_t before = *st;

    enpi_meter_evaluate(m, pc, st, ts, raw, arrival, &s);
    if (s.kind != ENPI_STEP_REJECT)
        return ENPI_REJECT__COUNT;
    assert_int_equal(enpi_meter_commit(m, pc, st, ts, raw, &s), 0);
    /* a reject changes nothing but the counters */
    assert_int_equal(st->rejected, before.rejected + 1);
    assert_int_equal(st->last_ts_ms, before.last_ts_ms);
    assert_true(st->last_raw == before.last_raw || (isnan(st->last_raw) && isnan(before.last_raw)));
    assert_int_equal(st->readings, before.readings);
    return s.reason;
}

static void rejects_and_their_boundaries(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    int64_t y2000 = utc_ms(2000, 1, 1, 0, 0, 0), arrival = T0;

    (void)state;
    assert_int_equal(y2000, ENPI_TS_MIN_MS);
    assert_int_equal(reject_of(&m, &pc, &st, T0, NAN, arrival), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(reject_of(&m, &pc, &st, T0, INFINITY, arrival), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(reject_of(&m, &pc, &st, T0, -0.001, arrival), ENPI_REJECT_NEGATIVE);
    assert_int_equal(reject_of(&m, &pc, &st, utc_ms(1999, 12, 31, 23, 59, 59), 1, arrival),
                     ENPI_REJECT_TOO_OLD);
    assert_int_equal(reject_of(&m, &pc, &st, y2000 - 1, 1, arrival), ENPI_REJECT_TOO_OLD);
    assert_int_equal(reject_of(&m, &pc, &st, arrival + 6 * MIN_MS, 1, arrival), ENPI_REJECT_FUTURE);
    assert_int_equal(reject_of(&m, &pc, &st, arrival + 5 * MIN_MS + 1, 1, arrival),
                     ENPI_REJECT_FUTURE);
    assert_int_equal(st.rejected, 7);
    /* exactly max_future ahead, exactly 2000-01-01: accepted */
    assert_int_equal(reject_of(&m, &pc, &st, arrival + 5 * MIN_MS, 1, arrival), ENPI_REJECT__COUNT);
    assert_int_equal(reject_of(&m, &pc, &st, y2000, 1, arrival), ENPI_REJECT__COUNT);
    /* -0 is not negative; delta meters may go negative */
    assert_int_equal(reject_of(&m, &pc, &st, T0, -0.0, arrival), ENPI_REJECT__COUNT);
    m.reading = ENPI_READING_DELTA;
    assert_int_equal(reject_of(&m, &pc, &st, T0, -5, arrival), ENPI_REJECT__COUNT);
}

static void max_rate_rejects_implausible_jumps(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    m.scale = 0.001;
    m.max_rate = 100; /* kWh per hour, after scale */
    feed(&m, &pc, &st, T0, 0);
    /* 25 kWh in 15 minutes = 100 kWh/h: at the limit, accepted */
    s = feed(&m, &pc, &st, T0 + 15 * MIN_MS, 25000);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    /* 25.001 kWh in the next 15 minutes: above */
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 30 * MIN_MS, 50001, T0 + 30 * MIN_MS),
                     ENPI_REJECT_IMPLAUSIBLE);
    /* the state still holds the last accepted reading: a later plausible one applies */
    s = feed(&m, &pc, &st, T0 + 60 * MIN_MS, 60000);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_close(s.value, 35);

    /* delta meters: the rate over the reading's interval */
    m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    m.interval_ms = 15 * MIN_MS;
    m.max_rate = 8;
    memset(&st, 0, sizeof(st));
    assert_int_equal(reject_of(&m, &pc, &st, T0, 2.01, T0), ENPI_REJECT_IMPLAUSIBLE);
    s = feed(&m, &pc, &st, T0, 2);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    enpi_meter_state_clear(&st);
}

static void long_intervals_are_estimated(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    feed(&m, &pc, &st, T0, 0);
    s = feed(&m, &pc, &st, T0 + HOUR_MS, 1); /* exactly max_gap: measured */
    assert_false(s.estimated);
    s = feed(&m, &pc, &st, T0 + 2 * HOUR_MS + 1, 2); /* 1 ms longer: estimated */
    assert_true(s.estimated);
    pc.max_gap_ms = 0; /* no max_gap: nothing is estimated */
    s = feed(&m, &pc, &st, T0 + 30 * HOUR_MS, 3);
    assert_false(s.estimated);
}

/* Fuzz regression ingest/cumulative_span_24y: a device whose clock ran from 2000 until
 * NTP synced. An interval over ENPI_MAX_SPREAD_MS re-bases instead of being apportioned. */
static void interval_over_400_days_rebases_instead_of_spreading(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_CUMULATIVE);
    enpi_meter_state_t st = {0};
    const int64_t y2000 = utc_ms(2000, 1, 1, 0, 0, 0), y2024 = utc_ms(2024, 5, 1, 0, 0, 0);
    enpi_step_t s;

    (void)state;
    assert_int_equal(ENPI_MAX_SPREAD_MS, 400 * DAY_MS);
    feed(&m, &pc, &st, y2000, 100);
    s = feed(&m, &pc, &st, y2024, 5000);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_true(s.rebased);
    assert_int_equal(s.readings, 1);
    assert_int_equal(s.resets, 0);
    assert_int_equal(st.last_ts_ms, y2024);
    assert_true(st.last_raw == 5000);
    assert_int_equal(st.first_ts_ms, y2000);
    assert_int_equal(st.readings, 2);
    /* the new base applies normally */
    s = feed(&m, &pc, &st, y2024 + 15 * MIN_MS, 5002);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_false(s.rebased);
    assert_int_equal(s.from, y2024);
    assert_close(s.value, 2);
    /* a lower register after the span is a re-base too, not a reset */
    s = feed(&m, &pc, &st, y2024 + 15 * MIN_MS + ENPI_MAX_SPREAD_MS + 1, 7);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_true(s.rebased);
    assert_int_equal(s.resets, 0);
    assert_int_equal(st.resets, 0);
    assert_true(st.last_raw == 7);

    /* 399 days, and exactly 400, are still apportioned (estimated, beyond max_gap) */
    memset(&st, 0, sizeof(st));
    feed(&m, &pc, &st, T0, 0);
    s = feed(&m, &pc, &st, T0 + 399 * DAY_MS, 399);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_false(s.rebased);
    assert_int_equal(s.from, T0);
    assert_int_equal(s.to, T0 + 399 * DAY_MS);
    assert_true(s.estimated);
    assert_close(s.value, 399);
    s = feed(&m, &pc, &st, T0 + 799 * DAY_MS, 400);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);

    /* delta meters without interval: the span since the previous reading, alike */
    m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    memset(&st, 0, sizeof(st));
    feed(&m, &pc, &st, y2000, 1);
    s = feed(&m, &pc, &st, y2024, 3);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_true(s.rebased);
    assert_int_equal(st.last_ts_ms, y2024);
    s = feed(&m, &pc, &st, y2024 + 15 * MIN_MS, 2);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.from, y2024);
    assert_close(s.value, 2);
    s = feed(&m, &pc, &st, y2024 + 15 * MIN_MS + 399 * DAY_MS, 5);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    /* a first reading is state-only but not a re-base */
    enpi_meter_state_clear(&st);
    memset(&st, 0, sizeof(st));
    s = feed(&m, &pc, &st, y2024, 3);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_false(s.rebased);
    enpi_meter_state_clear(&st);
}

/* Fuzz regressions ingest/delta_to_kwh_overflow and ingest/window_sum_overflow: an amount
 * after scale and to_kwh that is not finite or above ENPI_MAX_AMOUNT is implausible. */
static void amount_over_1e15_or_not_finite_is_implausible(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    /* a finite raw value that to_kwh turns infinite */
    m.interval_ms = 15 * MIN_MS;
    m.to_kwh = 10.55;
    assert_int_equal(reject_of(&m, &pc, &st, T0, 1.7e308, T0), ENPI_REJECT_IMPLAUSIBLE);
    assert_int_equal(reject_of(&m, &pc, &st, T0, -1.7e308, T0), ENPI_REJECT_IMPLAUSIBLE);
    assert_false(st.has_state);
    /* the bound is on the amount (kWh), not the raw value: 1e15 / 10.55 raw is still fine */
    assert_int_equal(reject_of(&m, &pc, &st, T0, 2e14, T0), ENPI_REJECT_IMPLAUSIBLE);
    s = feed(&m, &pc, &st, T0, 9e13);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_close(s.value, 9e13 * 10.55);
    enpi_meter_state_clear(&st);
    /* exactly 1e15 passes, the next double above does not; negative deltas alike */
    m.to_kwh = 1;
    memset(&st, 0, sizeof(st));
    s = feed(&m, &pc, &st, T0, ENPI_MAX_AMOUNT);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    s = feed(&m, &pc, &st, T0 + 15 * MIN_MS, -ENPI_MAX_AMOUNT);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 30 * MIN_MS, nextafter(ENPI_MAX_AMOUNT, 2e15),
                               T0 + 30 * MIN_MS),
                     ENPI_REJECT_IMPLAUSIBLE);
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 30 * MIN_MS, -1.1e15, T0 + 30 * MIN_MS),
                     ENPI_REJECT_IMPLAUSIBLE);
    enpi_meter_state_clear(&st);

    /* cumulative steps of 1.7e308 with a reset between: each is rejected, the state holds */
    m = meter(ENPI_KIND_PRODUCTION, ENPI_READING_CUMULATIVE);
    memset(&st, 0, sizeof(st));
    feed(&m, &pc, &st, T0, 0);
    assert_int_equal(reject_of(&m, &pc, &st, T0 + MIN_MS, 1.7e308, T0 + MIN_MS),
                     ENPI_REJECT_IMPLAUSIBLE);
    assert_true(st.last_raw == 0);
    s = feed(&m, &pc, &st, T0 + 2 * MIN_MS, 1e15);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_close(s.value, 1e15);
    /* a reset whose new register is itself too large */
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 3 * MIN_MS, 1e15 - 1, T0 + 3 * MIN_MS),
                     ENPI_REJECT__COUNT); /* a reset to 1e15 - 1: within bounds */
    s = feed(&m, &pc, &st, T0 + 3 * MIN_MS, 1e15 - 1);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.resets, 1);
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 4 * MIN_MS, 5, T0 + 4 * MIN_MS),
                     ENPI_REJECT__COUNT);
    m.scale = 1e300; /* scale overflows the amount of a reset to 5 */
    assert_int_equal(reject_of(&m, &pc, &st, T0 + 4 * MIN_MS, 5, T0 + 4 * MIN_MS),
                     ENPI_REJECT_IMPLAUSIBLE);
    assert_int_equal(st.resets, 1);
}

static void delta_with_interval_covers_the_interval(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    m.interval_ms = 15 * MIN_MS;
    m.to_kwh = 10.55;
    s = feed(&m, &pc, &st, T0, 2); /* even the first reading applies */
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.from, T0 - 15 * MIN_MS);
    assert_int_equal(s.to, T0);
    assert_close(s.value, 21.1);
    s = feed(&m, &pc, &st, T0 + 15 * MIN_MS, 1);
    assert_int_equal(s.from, T0);
    /* a gap does not stretch the interval */
    s = feed(&m, &pc, &st, T0 + 3 * HOUR_MS, 1);
    assert_int_equal(s.from, T0 + 3 * HOUR_MS - 15 * MIN_MS);
    assert_int_equal(st.readings, 3);
    assert_int_equal(st.n_recent, 3);
    enpi_meter_state_clear(&st);
}

static void delta_without_interval_spans_from_the_previous_reading(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    s = feed(&m, &pc, &st, T0, 5); /* first: sets state, its amount is unknown in time */
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_int_equal(s.readings, 1);
    s = feed(&m, &pc, &st, T0 + 10 * MIN_MS, 3);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.from, T0);
    assert_int_equal(s.to, T0 + 10 * MIN_MS);
    assert_close(s.value, 3);
    s = feed(&m, &pc, &st, T0 + 30 * MIN_MS, -1); /* negative deltas are fine */
    assert_int_equal(s.from, T0 + 10 * MIN_MS);
    assert_close(s.value, -1);
    /* a late reading inside allowed_lateness spreads from the applied one before it */
    s = feed(&m, &pc, &st, T0 + 20 * MIN_MS, 4);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.from, T0 + 10 * MIN_MS);
    assert_int_equal(s.to, T0 + 20 * MIN_MS);
    assert_int_equal(s.late, 1);
    assert_int_equal(s.readings, 1);
    assert_int_equal(st.late, 1);
    assert_int_equal(st.last_ts_ms, T0 + 30 * MIN_MS); /* newest unchanged */
    /* before the first applied reading: nothing to spread from */
    s = feed(&m, &pc, &st, T0 - 5 * MIN_MS, 4);
    assert_int_equal(s.kind, ENPI_STEP_STATE_ONLY);
    assert_int_equal(s.late, 1);
    enpi_meter_state_clear(&st);
}

static void delta_redelivery_is_a_duplicate(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;

    (void)state;
    m.interval_ms = 5 * MIN_MS;
    for (int i = 0; i < 6; i++)
        feed(&m, &pc, &st, T0 + i * 5 * MIN_MS, 1);
    /* redelivered: the newest, one in the middle, the oldest */
    for (int i = 5; i >= 0; i -= 2) {
        s = feed(&m, &pc, &st, T0 + i * 5 * MIN_MS, 1);
        assert_int_equal(s.kind, ENPI_STEP_IGNORED);
        assert_int_equal(s.duplicates, 1);
    }
    assert_int_equal(st.duplicates, 3);
    assert_int_equal(st.readings, 6);
    /* a missing one inside the lateness window is applied late, once */
    s = feed(&m, &pc, &st, T0 + 12 * MIN_MS, 1);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.late, 1);
    s = feed(&m, &pc, &st, T0 + 12 * MIN_MS, 1);
    assert_int_equal(s.kind, ENPI_STEP_IGNORED);
    enpi_meter_state_clear(&st);
}

static void delta_beyond_allowed_lateness_is_too_late(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;
    int64_t newest = T0 + 2 * HOUR_MS;

    (void)state;
    m.interval_ms = 15 * MIN_MS;
    feed(&m, &pc, &st, T0, 1);
    feed(&m, &pc, &st, newest, 1);
    /* exactly allowed_lateness before the newest: still applied */
    s = feed(&m, &pc, &st, newest - HOUR_MS, 1);
    assert_int_equal(s.kind, ENPI_STEP_APPLY);
    assert_int_equal(s.late, 1);
    /* 1 ms more: too late, counted late in its window and in the state */
    enpi_meter_evaluate(&m, &pc, &st, newest - HOUR_MS - 1, 1, newest, &s);
    assert_int_equal(s.kind, ENPI_STEP_REJECT);
    assert_int_equal(s.reason, ENPI_REJECT_TOO_LATE);
    assert_int_equal(s.late, 1);
    assert_int_equal(enpi_meter_commit(&m, &pc, &st, newest - HOUR_MS - 1, 1, &s), 0);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.late, 2);
    /* the old reading at T0 is past the horizon too: too_late, not a duplicate */
    enpi_meter_evaluate(&m, &pc, &st, T0, 1, newest, &s);
    assert_int_equal(s.reason, ENPI_REJECT_TOO_LATE);
    enpi_meter_state_clear(&st);
}

static void remembered_timestamps_are_pruned_to_the_horizon(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};

    (void)state;
    /* one reading a minute for 3 hours, lateness 1 h */
    for (int i = 0; i <= 180; i++)
        feed(&m, &pc, &st, T0 + i * MIN_MS, 1);
    assert_true(st.n_recent <= enpi_meter_recent_cap(st.n_recent));
    enpi_meter_prune(&pc, &st);
    /* 61 within the hour (inclusive) plus the predecessor */
    assert_int_equal(st.n_recent, 62);
    assert_int_equal(st.recent_ts[0], T0 + 119 * MIN_MS);
    assert_int_equal(st.recent_ts[61], T0 + 180 * MIN_MS);
    for (size_t i = 1; i < st.n_recent; i++)
        assert_true(st.recent_ts[i - 1] < st.recent_ts[i]);
    enpi_meter_state_clear(&st);
}

static void remembered_timestamps_are_capped(void **state)
{
    enpi_pipeline_cfg_t pc = pcfg();
    enpi_meter_cfg_t m = meter(ENPI_KIND_ENERGY, ENPI_READING_DELTA);
    enpi_meter_state_t st = {0};
    enpi_step_t s;
    int n = ENPI_DELTA_RECENT_MAX + 100;

    (void)state;
    m.interval_ms = 100;
    for (int i = 0; i < n; i++) /* 10 readings a second: all within the hour */
        feed(&m, &pc, &st, T0 + i * 100, 1);
    assert_int_equal(st.n_recent, ENPI_DELTA_RECENT_MAX);
    assert_int_equal(st.recent_ts[0], T0 + 100 * 100);
    /* older than anything remembered, although within the hour: too late, never double */
    enpi_meter_evaluate(&m, &pc, &st, T0 + 50 * 100, 1, T0 + n * 100, &s);
    assert_int_equal(s.reason, ENPI_REJECT_TOO_LATE);
    enpi_meter_evaluate(&m, &pc, &st, T0 + 100 * 100, 1, T0 + n * 100, &s);
    assert_int_equal(s.kind, ENPI_STEP_IGNORED);
    enpi_meter_state_clear(&st);
}

static void state_copy_is_deep(void **state)
{
    enpi_meter_state_t a = {0}, b;
    int64_t ts[3] = {1, 2, 3};

    (void)state;
    a.has_state = true;
    a.readings = 9;
    a.recent_ts = ts;
    a.n_recent = 3;
    assert_int_equal(enpi_meter_state_copy(&b, &a), 0);
    assert_ptr_not_equal(b.recent_ts, a.recent_ts);
    assert_memory_equal(b.recent_ts, ts, sizeof(ts));
    assert_int_equal(b.readings, 9);
    enpi_meter_state_clear(&b);
    assert_null(b.recent_ts);
    assert_int_equal(b.n_recent, 0);
    a.n_recent = 0;
    a.recent_ts = NULL;
    assert_int_equal(enpi_meter_state_copy(&b, &a), 0);
    assert_null(b.recent_ts);
    enpi_meter_state_clear(&b);
}

static void meter_ids_must_be_printable_utf8(void **state)
{
    char long_id[130];

    (void)state;
    assert_true(enpi_meter_id_valid("f001/em1", 8));
    assert_true(enpi_meter_id_valid("Công ty/đồng hồ 1", strlen("Công ty/đồng hồ 1")));
    assert_false(enpi_meter_id_valid("", 0));
    assert_false(enpi_meter_id_valid("a\nb", 3));
    assert_false(enpi_meter_id_valid("a\x7f", 2));
    assert_false(enpi_meter_id_valid("a\xc2\x85", 3));    /* C1 control NEL */
    assert_false(enpi_meter_id_valid("a\xc3", 2));        /* truncated */
    assert_false(enpi_meter_id_valid("\xc0\xaf", 2));     /* overlong '/' */
    assert_false(enpi_meter_id_valid("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(enpi_meter_id_valid("\xff", 1));
    assert_false(enpi_meter_id_valid("a\0b", 3));
    memset(long_id, 'x', sizeof(long_id));
    assert_true(enpi_meter_id_valid(long_id, 128));
    assert_false(enpi_meter_id_valid(long_id, 129));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cumulative_first_reading_only_sets_state),
        cmocka_unit_test(cumulative_difference_scaled_and_converted),
        cmocka_unit_test(cumulative_rollover_and_reset),
        cmocka_unit_test(cumulative_duplicate_and_late_are_counted_and_ignored),
        cmocka_unit_test(rejects_and_their_boundaries),
        cmocka_unit_test(max_rate_rejects_implausible_jumps),
        cmocka_unit_test(long_intervals_are_estimated),
        cmocka_unit_test(interval_over_400_days_rebases_instead_of_spreading),
        cmocka_unit_test(amount_over_1e15_or_not_finite_is_implausible),
        cmocka_unit_test(delta_with_interval_covers_the_interval),
        cmocka_unit_test(delta_without_interval_spans_from_the_previous_reading),
        cmocka_unit_test(delta_redelivery_is_a_duplicate),
        cmocka_unit_test(delta_beyond_allowed_lateness_is_too_late),
        cmocka_unit_test(remembered_timestamps_are_pruned_to_the_horizon),
        cmocka_unit_test(remembered_timestamps_are_capped),
        cmocka_unit_test(state_copy_is_deep),
        cmocka_unit_test(meter_ids_must_be_printable_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
