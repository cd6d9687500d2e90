/*
 * test_aggregate.c - the pipeline end to end through enpi_pipeline_ingest/apply and
 * take_batch: apportioning across 15m/1h/1d/1mo windows in Europe/Berlin (a month
 * boundary, both DST days), per-facility zones, quality counters in the window of the
 * offending reading, estimated with max_gap, batch contents and inbox_upto, restore
 * from a batch snapshot continuing exactly like an uninterrupted run, and broker
 * redeliveries flagged ENPI_INGEST_REDELIVERED counted apart from late/duplicates.
 * Expectations are computed by hand from overlap lengths (see each test's comment).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "pipeline_testutil.h"

static const char *const YAML =
    "timezone: Europe/Berlin\n"
    "pipeline:\n"
    "  resolutions: [15m, 1h, 1d, 1mo]\n"
    "  allowed_lateness: 1h\n"
    "  max_future: 5m\n"
    "  max_gap: 1h\n"
    "inputs:\n"
    "  - topic: \"enpi/{facility}/{meter}\"\n"
    "    meter_id: \"{facility}/{meter}\"\n"
    "facilities:\n"
    "  - id: f1\n"
    "    meters:\n"
    "      - { id: f1/em, kind: energy, reading: cumulative }\n"
    "      - { id: f1/gas, kind: energy, reading: delta, interval: 15m, to_kwh: 10 }\n"
    "      - { id: f1/d, kind: energy, reading: delta }\n"
    "      - { id: f1/prod, kind: production, reading: cumulative, rollover: 1000 }\n"
    "      - { id: f1/wh, kind: energy, reading: cumulative, scale: 0.001 }\n"
    "  - id: f2\n"
    "    timezone: Asia/Ho_Chi_Minh\n"
    "    meters:\n"
    "      - { id: f2/em, kind: energy, reading: cumulative }\n";

static enpi_config_t *cfg;

static int setup(void **state)
{
    (void)state;
    cfg = config_from_yaml(YAML);
    return cfg == NULL;
}

static int teardown(void **state)
{
    (void)state;
    enpi_config_free(cfg);
    return 0;
}

static enpi_batch_t *take(enpi_pipeline_t *p)
{
    enpi_batch_t *b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_non_null(b);
    return b;
}

/* Applies a reading arriving 1 s after its stamp; returns apply's result. */
static int apply(enpi_pipeline_t *p, const char *meter, int64_t ts, double v)
{
    enpi_reject_t reason = ENPI_REJECT__COUNT;
    return enpi_pipeline_apply(p, meter, strlen(meter), ts, v, ts + 1000, &reason);
}

/*
 * Cumulative 0 -> 1710 from 2018-03-24T22:00+01:00 (21:00Z) to 2018-04-01T02:00+02:00
 * (00:00Z): 171 hours, across the 23-hour DST day (25 March) and the local month
 * boundary (31 March 22:00Z), so 10 per hour, 2.5 per quarter hour.
 */
static void apportions_across_a_month_boundary_and_the_spring_dst_day(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t1 = utc_ms(2018, 3, 24, 21, 0, 0), t2 = utc_ms(2018, 4, 1, 0, 0, 0);
    int64_t march = utc_ms(2018, 2, 28, 23, 0, 0), april = utc_ms(2018, 3, 31, 22, 0, 0);
    const enpi_rollup_delta_t *d;
    enpi_batch_t *b;
    size_t n;

    (void)state;
    assert_int_equal(apply(p, "f1/em", t1, 0), 0);
    assert_int_equal(apply(p, "f1/em", t2, 1710), 0);
    b = take(p);

    /* months: March gets 169 h, April 2 h */
    d = must_rollup(b, "f1/em", RES_1MO, march);
    assert_int_equal(d->end, april);
    assert_close(d->delta.value, 1690);
    assert_close(d->delta.estimated, 1690); /* 171 h > max_gap */
    assert_int_equal(d->delta.readings, 1);
    d = must_rollup(b, "f1/em", RES_1MO, april);
    assert_int_equal(d->end, utc_ms(2018, 4, 30, 22, 0, 0));
    assert_close(d->delta.value, 20);
    assert_int_equal(d->delta.readings, 1);
    assert_close(batch_sum(b, "f1/em", RES_1MO, false, &n), 1710);
    assert_int_equal(n, 2);

    /* days: 24th 2 h, 25th the whole 23-hour day, 26th-31st 24 h each, 1 April 2 h */
    d = must_rollup(b, "f1/em", RES_1D, utc_ms(2018, 3, 23, 23, 0, 0));
    assert_close(d->delta.value, 20);
    assert_int_equal(d->delta.readings, 1);
    d = must_rollup(b, "f1/em", RES_1D, utc_ms(2018, 3, 24, 23, 0, 0));
    assert_int_equal(d->end, utc_ms(2018, 3, 25, 22, 0, 0));
    assert_close(d->delta.value, 230);
    for (int day = 26; day <= 31; day++) {
        d = must_rollup(b, "f1/em", RES_1D, utc_ms(2018, 3, day - 1, 22, 0, 0));
        assert_int_equal(d->end - d->start, 24 * HOUR_MS);
        assert_close(d->delta.value, 240);
        assert_int_equal(d->delta.readings, 0);
    }
    d = must_rollup(b, "f1/em", RES_1D, april);
    assert_close(d->delta.value, 20);
    assert_int_equal(d->delta.readings, 1);
    assert_close(batch_sum(b, "f1/em", RES_1D, false, &n), 1710);
    assert_int_equal(n, 9);

    /* hours: 171 windows of 10, plus the (empty) window the second reading is stamped in;
     * on the DST day local 01:00 CET (00:00Z) is followed by 03:00 CEST (01:00Z) */
    assert_close(batch_sum(b, "f1/em", RES_1H, false, &n), 1710);
    assert_int_equal(n, 172);
    d = must_rollup(b, "f1/em", RES_1H, utc_ms(2018, 3, 25, 0, 0, 0));
    assert_int_equal(d->end, utc_ms(2018, 3, 25, 1, 0, 0));
    assert_close(d->delta.value, 10);
    d = must_rollup(b, "f1/em", RES_1H, utc_ms(2018, 3, 25, 1, 0, 0));
    assert_close(d->delta.value, 10);
    d = must_rollup(b, "f1/em", RES_1H, t2);
    assert_close(d->delta.value, 0);
    assert_int_equal(d->delta.readings, 1);

    /* quarter hours: 684 windows of 2.5, plus the reading's window */
    assert_close(batch_sum(b, "f1/em", RES_15M, false, &n), 1710);
    assert_int_equal(n, 685);
    assert_close(batch_sum(b, "f1/em", RES_15M, true, NULL), 1710);
    d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 3, 31, 21, 45, 0));
    assert_close(d->delta.value, 2.5);
    d = must_rollup(b, "f1/em", RES_15M, t1);
    assert_close(d->delta.value, 2.5);
    assert_int_equal(d->delta.readings, 1);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/*
 * The autumn DST day (28 October 2018) has 25 hours. Cumulative 0 -> 145 from
 * 00:55 CEST (27th 22:55Z) to 02:20 CET (01:20Z): 145 minutes, 1 per minute. Windows are
 * local midnight (22:00Z) + k x length: hours get 5, 60, 60, 20; quarter hours 5, nine
 * times 15, then 5; the day window is 25 hours long and gets everything.
 */
static void apportions_unaligned_interval_on_the_autumn_dst_day(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t1 = utc_ms(2018, 10, 27, 22, 55, 0), t2 = utc_ms(2018, 10, 28, 1, 20, 0);
    static const double hours[] = {5, 60, 60, 20};
    const enpi_rollup_delta_t *d;
    enpi_batch_t *b;
    size_t n;

    (void)state;
    apply(p, "f1/em", t1, 0);
    apply(p, "f1/em", t2, 145);
    b = take(p);
    for (int h = 0; h < 4; h++) {
        d = must_rollup(b, "f1/em", RES_1H, utc_ms(2018, 10, 27, 22, 0, 0) + h * HOUR_MS);
        assert_int_equal(d->end - d->start, HOUR_MS);
        assert_close(d->delta.value, hours[h]);
        assert_close(d->delta.estimated, hours[h]); /* 145 min > max_gap */
    }
    assert_close(batch_sum(b, "f1/em", RES_1H, false, &n), 145);
    assert_int_equal(n, 4); /* t2's window [01:00Z, 02:00Z) already holds 20 */
    d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 10, 27, 22, 45, 0));
    assert_close(d->delta.value, 5);
    for (int q = 0; q < 9; q++) {
        d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 10, 27, 23, 0, 0) + q * 15 * MIN_MS);
        assert_close(d->delta.value, 15);
    }
    d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 10, 28, 1, 15, 0));
    assert_close(d->delta.value, 5);
    assert_int_equal(d->delta.readings, 1);
    assert_close(batch_sum(b, "f1/em", RES_15M, false, &n), 145);
    assert_int_equal(n, 11);
    d = must_rollup(b, "f1/em", RES_1D, utc_ms(2018, 10, 27, 22, 0, 0));
    assert_int_equal(d->end, utc_ms(2018, 10, 28, 23, 0, 0)); /* 25 hours */
    assert_close(d->delta.value, 145);
    assert_int_equal(d->delta.readings, 2);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/*
 * Delta with interval 15m (to_kwh 10): 2 at 10:15 CEST (08:15Z) covers [08:00Z, 08:15Z):
 * 20 kWh there, while its `readings` count goes to the window it is stamped in,
 * [08:15Z, 08:30Z). Delta without interval: 6 over the two hours since the previous
 * reading, 0.75 per quarter hour, all estimated (2 h > max_gap).
 */
static void delta_amounts_and_their_reading_windows(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t = utc_ms(2018, 3, 28, 8, 15, 0);
    const enpi_rollup_delta_t *d;
    enpi_batch_t *b;
    size_t n;

    (void)state;
    assert_int_equal(apply(p, "f1/gas", t, 2), 0);
    assert_int_equal(apply(p, "f1/d", t - 2 * HOUR_MS, 99), 0); /* state only */
    assert_int_equal(apply(p, "f1/d", t, 6), 0);
    b = take(p);
    d = must_rollup(b, "f1/gas", RES_15M, utc_ms(2018, 3, 28, 8, 0, 0));
    assert_close(d->delta.value, 20);
    assert_close(d->delta.estimated, 0);
    assert_int_equal(d->delta.readings, 0);
    d = must_rollup(b, "f1/gas", RES_15M, t);
    assert_close(d->delta.value, 0);
    assert_int_equal(d->delta.readings, 1);
    d = must_rollup(b, "f1/gas", RES_1H, utc_ms(2018, 3, 28, 8, 0, 0));
    assert_close(d->delta.value, 20);
    assert_int_equal(d->delta.readings, 1);

    assert_close(batch_sum(b, "f1/d", RES_15M, false, &n), 6);
    assert_close(batch_sum(b, "f1/d", RES_15M, true, NULL), 6);
    assert_int_equal(n, 9); /* 8 quarters + the one t is stamped in */
    d = must_rollup(b, "f1/d", RES_15M, utc_ms(2018, 3, 28, 6, 30, 0));
    assert_close(d->delta.value, 0.75);
    assert_close(d->delta.estimated, 0.75);
    d = must_rollup(b, "f1/d", RES_1D, utc_ms(2018, 3, 27, 22, 0, 0));
    assert_close(d->delta.value, 6);
    assert_int_equal(d->delta.readings, 2);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/*
 * f1/em: 100 at 10:00Z, 150 at 10:20Z (+50), 30 at 10:40Z (a reset: +30), the 10:40Z
 * reading again (duplicate), one stamped 10:10Z (late). Each counter lands in the window
 * of its own timestamp, at every resolution. f1/gas: a reading 1.5 h older than its
 * newest is too late, counted late where it is stamped.
 */
static void quality_counters_land_where_the_reading_is_stamped(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_rollup_delta_t *d;
    const enpi_meter_snapshot_t *ms;
    enpi_reject_t reason;
    enpi_batch_t *b;

    (void)state;
    assert_int_equal(apply(p, "f1/em", utc_ms(2018, 3, 28, 10, 0, 0), 100), 0);
    assert_int_equal(apply(p, "f1/em", utc_ms(2018, 3, 28, 10, 20, 0), 150), 0);
    assert_int_equal(apply(p, "f1/em", utc_ms(2018, 3, 28, 10, 40, 0), 30), 0);
    assert_int_equal(apply(p, "f1/em", utc_ms(2018, 3, 28, 10, 40, 0), 31), 1);
    assert_int_equal(apply(p, "f1/em", utc_ms(2018, 3, 28, 10, 10, 0), 120), 1);
    assert_int_equal(apply(p, "f1/gas", utc_ms(2018, 3, 28, 12, 0, 0), 1), 0);
    assert_int_equal(enpi_pipeline_apply(p, "f1/gas", 6, utc_ms(2018, 3, 28, 10, 30, 0), 1,
                                         utc_ms(2018, 3, 28, 12, 0, 1), &reason),
                     -1);
    assert_int_equal(reason, ENPI_REJECT_TOO_LATE);
    b = take(p);

    d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 3, 28, 10, 30, 0));
    assert_int_equal(d->delta.resets, 1);
    assert_int_equal(d->delta.duplicates, 1);
    assert_int_equal(d->delta.readings, 1);
    /* [10:30, 10:45) holds 10 of the 20 minutes of the reset interval's 30 */
    assert_close(d->delta.value, 15);
    d = must_rollup(b, "f1/em", RES_15M, utc_ms(2018, 3, 28, 10, 0, 0));
    assert_int_equal(d->delta.late, 1);
    assert_int_equal(d->delta.readings, 1);
    d = must_rollup(b, "f1/em", RES_1H, utc_ms(2018, 3, 28, 10, 0, 0));
    assert_int_equal(d->delta.readings, 3);
    assert_int_equal(d->delta.resets, 1);
    assert_int_equal(d->delta.duplicates, 1);
    assert_int_equal(d->delta.late, 1);
    assert_close(d->delta.value, 80);
    d = must_rollup(b, "f1/em", RES_1MO, utc_ms(2018, 2, 28, 23, 0, 0));
    assert_int_equal(d->delta.readings, 3);
    assert_int_equal(d->delta.late, 1);

    d = must_rollup(b, "f1/gas", RES_15M, utc_ms(2018, 3, 28, 10, 30, 0));
    assert_int_equal(d->delta.late, 1);
    assert_int_equal(d->delta.readings, 0);
    assert_close(d->delta.value, 0);

    ms = batch_meter(b, "f1/em");
    assert_non_null(ms);
    assert_int_equal(ms->state.readings, 3);
    assert_int_equal(ms->state.resets, 1);
    assert_int_equal(ms->state.duplicates, 1);
    assert_int_equal(ms->state.late, 1);
    ms = batch_meter(b, "f1/gas");
    assert_int_equal(ms->state.rejected, 1);
    assert_int_equal(ms->state.late, 1);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_TOO_LATE], 1);
    assert_int_equal(enpi_pipeline_stats(p)->duplicates, 1);
    assert_int_equal(enpi_pipeline_stats(p)->late, 1);
    assert_int_equal(enpi_pipeline_stats(p)->resets, 1);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void batch_contents_and_inbox_progress(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t = utc_ms(2018, 3, 28, 8, 0, 0);
    enpi_batch_t *b;

    (void)state;
    b = take(p); /* nothing ingested yet */
    assert_int_equal(b->inbox_upto, 0);
    assert_int_equal(b->n_rollups + b->n_meters + b->n_unknown, 0);
    enpi_batch_free(b);
    assert_false(enpi_pipeline_dirty(p));

    ingest_reading(p, 0, "enpi/f1/em", t, 10, t + 1000);
    ingest_reading(p, 1, "enpi/f1/em", t + 5 * MIN_MS, 12, t + 5 * MIN_MS + 1000);
    ingest_reading(p, 2, "enpi/f9/nope", t, 1, t + 1000);
    ingest_reading(p, 3, "enpi/f9/nope", t, 1, t + 2000);
    assert_true(enpi_pipeline_dirty(p));
    assert_int_equal(enpi_pipeline_pending(p), 4); /* one window per resolution */
    b = take(p);
    assert_int_equal(b->inbox_upto, 4);
    assert_int_equal(b->n_meters, 1);
    assert_string_equal(b->meters[0].meter_id, "f1/em");
    assert_int_equal(b->meters[0].state.readings, 2);
    assert_int_equal(b->meters[0].state.last_ts_ms, t + 5 * MIN_MS);
    assert_true(b->meters[0].state.last_raw == 12);
    assert_int_equal(b->n_rollups, 4);
    for (size_t i = 0; i < b->n_rollups; i++) {
        assert_int_equal(b->rollups[i].meter, 0);
        assert_close(b->rollups[i].delta.value, 2);
        assert_int_equal(b->rollups[i].delta.readings, 2);
    }
    assert_non_null(must_rollup(b, "f1/em", RES_1MO, utc_ms(2018, 2, 28, 23, 0, 0)));
    assert_int_equal(b->n_unknown, 1);
    assert_string_equal(b->unknown[0].meter_id, "f9/nope");
    assert_string_equal(b->unknown[0].last_topic, "enpi/f9/nope");
    assert_int_equal(b->unknown[0].count, 2);
    assert_int_equal(b->unknown[0].last_seen_ms, t + 2000);
    enpi_batch_free(b);

    /* nothing new: an empty batch that still says how far the inbox is reflected */
    assert_false(enpi_pipeline_dirty(p));
    assert_int_equal(enpi_pipeline_pending(p), 0);
    b = take(p);
    assert_int_equal(b->inbox_upto, 4);
    assert_int_equal(b->n_rollups + b->n_meters + b->n_unknown, 0);
    enpi_batch_free(b);

    /* a redelivered (older) seq never moves inbox_upto back; a counter-only change (a
     * duplicate) still carries the meter's state and a rollup with the count */
    ingest_reading(p, 1, "enpi/f1/em", t + 5 * MIN_MS, 12, t + 6 * MIN_MS);
    b = take(p);
    assert_int_equal(b->inbox_upto, 4);
    assert_int_equal(b->n_meters, 1);
    assert_int_equal(b->meters[0].state.duplicates, 1);
    assert_int_equal(
        must_rollup(b, "f1/em", RES_1H, utc_ms(2018, 3, 28, 8, 0, 0))->delta.duplicates, 1);
    enpi_batch_free(b);

    /* a message that changes nothing but inbox progress still makes the pipeline dirty */
    ingest_str(p, 9, "no/such/input", "{}", t);
    assert_true(enpi_pipeline_dirty(p));
    b = take(p);
    assert_int_equal(b->inbox_upto, 10);
    assert_int_equal(b->n_meters, 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/* A facility with its own zone (Asia/Ho_Chi_Minh, UTC+7): its day starts 17:00Z. ISO
 * timestamps without offset are read in the meter's facility zone. */
static void facility_zones_shape_windows_and_local_timestamps(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_batch_t *b;

    (void)state;
    ingest_str(p, 0, "enpi/f2/em", "{\"ts\": \"2018-03-28T06:00:00\", \"value\": 0}",
               utc_ms(2018, 3, 28, 12, 0, 0));
    ingest_str(p, 1, "enpi/f2/em", "{\"ts\": \"2018-03-28T08:00:00+07:00\", \"value\": 20}",
               utc_ms(2018, 3, 28, 12, 0, 0));
    assert_int_equal(enpi_pipeline_meter_state(p, "f2/em")->last_ts_ms,
                     utc_ms(2018, 3, 28, 1, 0, 0));
    ingest_str(p, 2, "enpi/f1/em", "{\"ts\": \"2018-03-28T10:00:00\", \"value\": 0}",
               utc_ms(2018, 3, 28, 12, 0, 0));
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->last_ts_ms,
                     utc_ms(2018, 3, 28, 8, 0, 0)); /* CEST */
    b = take(p);
    /* 23:00Z-01:00Z of the local day that started 27 March 17:00Z */
    assert_close(must_rollup(b, "f2/em", RES_1D, utc_ms(2018, 3, 27, 17, 0, 0))->delta.value, 20);
    assert_close(must_rollup(b, "f2/em", RES_1MO, utc_ms(2018, 2, 28, 17, 0, 0))->delta.value, 20);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/* Random intervals: the shares of every resolution add up to the amount. */
static void shares_add_up_to_the_amount(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t = utc_ms(2018, 1, 1, 0, 0, 0);
    static const uint32_t res[] = {RES_15M, RES_1H, RES_1D, RES_1MO};

    (void)state;
    srand(11);
    apply(p, "f1/d", t, 0);
    for (int i = 0; i < 300; i++) {
        enpi_batch_t *b;
        double amount = (double)(rand() % 100000) / 7.0 + 0.001;

        /* from 1 ms to about 40 days, so month and DST boundaries are crossed */
        t += 1 + (int64_t)(rand() % 4) * (rand() % 1000) * (rand() % 1000) * 3457;
        assert_int_equal(apply(p, "f1/d", t, amount), 0);
        b = take(p);
        for (size_t r = 0; r < 4; r++) {
            double sum = batch_sum(b, "f1/d", res[r], false, NULL);
            if (fabs(sum - amount) > 1e-12 * amount)
                fail_msg("res %u: shares sum to %.17g, amount %.17g", res[r], sum, amount);
        }
        enpi_batch_free(b);
    }
    enpi_pipeline_free(p);
}

/* ---- restore then continue ---------------------------------------------------------- */

typedef struct {
    char meter[32];
    uint32_t res;
    int64_t start;
    enpi_rollup_t r;
} row_t;

typedef struct {
    row_t *rows;
    size_t n, cap;
} table_t;

static void table_add(table_t *t, const enpi_batch_t *b)
{
    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *d = &b->rollups[i];
        const char *meter = b->meters[d->meter].meter_id;
        row_t *row = NULL;

        for (size_t k = 0; k < t->n && row == NULL; k++)
            if (t->rows[k].res == d->res_code && t->rows[k].start == d->start &&
                strcmp(t->rows[k].meter, meter) == 0)
                row = &t->rows[k];
        if (row == NULL) {
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 256;
                t->rows = realloc(t->rows, t->cap * sizeof(*t->rows));
                assert_non_null(t->rows);
            }
            row = &t->rows[t->n++];
            memset(row, 0, sizeof(*row));
            snprintf(row->meter, sizeof(row->meter), "%s", meter);
            row->res = d->res_code;
            row->start = d->start;
        }
        row->r.value += d->delta.value;
        row->r.estimated += d->delta.estimated;
        row->r.readings += d->delta.readings;
        row->r.resets += d->delta.resets;
        row->r.late += d->delta.late;
        row->r.duplicates += d->delta.duplicates;
    }
}

static void tables_equal(const table_t *a, const table_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const row_t *x = &a->rows[i], *y = NULL;
        for (size_t k = 0; k < b->n && y == NULL; k++)
            if (b->rows[k].res == x->res && b->rows[k].start == x->start &&
                strcmp(b->rows[k].meter, x->meter) == 0)
                y = &b->rows[k];
        if (y == NULL)
            fail_msg("row %s %u %lld missing", x->meter, x->res, (long long)x->start);
        assert_close(x->r.value, y->r.value);
        assert_close(x->r.estimated, y->r.estimated);
        assert_int_equal(x->r.readings, y->r.readings);
        assert_int_equal(x->r.resets, y->r.resets);
        assert_int_equal(x->r.late, y->r.late);
        assert_int_equal(x->r.duplicates, y->r.duplicates);
    }
}

/* A message sequence with every kind of reading; part two redelivers part one's tail as
 * a broker does after a crash. */
static size_t make_sequence(char topics[][32], char payloads[][96], int64_t *arrivals)
{
    static const char *const meters[] = {"em", "gas", "d", "prod"};
    int64_t t0 = utc_ms(2018, 3, 24, 20, 0, 0);
    size_t n = 0;

    for (int i = 0; i < 120; i++) {
        int m = i % 4;
        int64_t ts = t0 + (int64_t)(i / 4) * 7 * MIN_MS + (i % 3) * 1000;
        double v = m == 0 ? 100.0 + i * 3.5 - (i == 60 ? 90 : 0) : m == 3 ? (i * 37) % 1000 : 1.25;

        if (i % 17 == 16)
            ts -= 20 * MIN_MS; /* late */
        snprintf(topics[n], 32, "enpi/f1/%s", meters[m]);
        snprintf(payloads[n], 96, "{\"ts\": %lld, \"value\": %.17g}", (long long)ts, v);
        arrivals[n] = ts + 2000;
        n++;
    }
    return n;
}

static uint32_t table_ignored(const table_t *t)
{
    uint32_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->rows[i].r.duplicates + t->rows[i].r.late;
    return n;
}

static void table_forget_ignored(table_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->rows[i].r.duplicates = t->rows[i].r.late = 0;
}

/*
 * Runs the sequence once uninterrupted, and once with a restart after `cut` messages:
 * the second pipeline starts from the states of the first one's batch snapshot, and the
 * broker redelivers the `redeliver` messages before the cut, ingested with `flags`.
 * Rollups and states must be the same, except that without ENPI_INGEST_REDELIVERED every
 * redelivered message is counted once more as a duplicate or late reading in every
 * resolution; with it, they count in stats.redelivered only and everything is equal.
 */
static void run_restart(size_t cut, size_t redeliver, unsigned flags)
{
    static char topics[240][32], payloads[240][96];
    static int64_t arrivals[240];
    size_t n = make_sequence(topics, payloads, arrivals);
    enpi_pipeline_t *whole = pipeline_from(cfg), *before = pipeline_from(cfg), *after;
    table_t a = {0}, b = {0};
    enpi_batch_t *batch, *snap;
    uint64_t ignored_x = 0, ignored_y = 0;

    for (size_t i = 0; i < n; i++)
        ingest_str(whole, i, topics[i], payloads[i], arrivals[i]);
    batch = take(whole);
    table_add(&a, batch);
    enpi_batch_free(batch);

    for (size_t i = 0; i < cut; i++)
        ingest_str(before, i, topics[i], payloads[i], arrivals[i]);
    snap = take(before);
    table_add(&b, snap);
    after = pipeline_from(cfg);
    for (size_t i = 0; i < snap->n_meters; i++)
        assert_int_equal(
            enpi_pipeline_restore(after, snap->meters[i].meter_id, &snap->meters[i].state), 0);
    for (size_t i = cut - redeliver; i < n; i++)
        enpi_pipeline_ingest(after, 1000 + i, topics[i], strlen(topics[i]), payloads[i],
                             strlen(payloads[i]), arrivals[i], i < cut ? flags : 0);
    batch = take(after);
    table_add(&b, batch);

    if (flags & ENPI_INGEST_REDELIVERED) {
        assert_int_equal(enpi_pipeline_stats(after)->redelivered, redeliver);
        redeliver = 0; /* nothing may differ from the uninterrupted run */
    } else {
        assert_int_equal(enpi_pipeline_stats(after)->redelivered, 0);
    }
    assert_int_equal(table_ignored(&b), table_ignored(&a) + 4 * redeliver);
    if (redeliver > 0) {
        table_forget_ignored(&a);
        table_forget_ignored(&b);
    }
    tables_equal(&a, &b);
    for (size_t i = 0; i < batch->n_meters; i++) {
        const char *id = batch->meters[i].meter_id;
        const enpi_meter_state_t *x = enpi_pipeline_meter_state(whole, id);
        const enpi_meter_state_t *y = enpi_pipeline_meter_state(after, id);
        assert_int_equal(x->last_ts_ms, y->last_ts_ms);
        assert_true(x->last_raw == y->last_raw);
        assert_int_equal(x->first_ts_ms, y->first_ts_ms);
        assert_int_equal(x->readings, y->readings);
        assert_int_equal(x->resets, y->resets);
        assert_int_equal(x->rejected, y->rejected);
        assert_int_equal(x->n_recent, y->n_recent);
        ignored_x += x->duplicates + x->late;
        ignored_y += y->duplicates + y->late;
    }
    assert_int_equal(ignored_y, ignored_x + redeliver);
    enpi_batch_free(batch);
    enpi_batch_free(snap);
    free(a.rows);
    free(b.rows);
    enpi_pipeline_free(whole);
    enpi_pipeline_free(before);
    enpi_pipeline_free(after);
}

static void restore_then_continue_equals_an_uninterrupted_run(void **state)
{
    (void)state;
    run_restart(70, 0, 0);
    run_restart(33, 0, 0);
}

static void redelivery_after_restart_only_counts(void **state)
{
    (void)state;
    run_restart(70, 10, 0);
    run_restart(101, 25, 0);
}

/* The same redeliveries flagged as such (MQTT DUP) change nothing at all. */
static void flagged_redelivery_after_restart_changes_nothing(void **state)
{
    (void)state;
    run_restart(70, 10, ENPI_INGEST_REDELIVERED);
    run_restart(101, 25, ENPI_INGEST_REDELIVERED);
}

static void ingest_flags(enpi_pipeline_t *p, uint64_t seq, const char *topic, int64_t ts, double v,
                         unsigned flags)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": %.17g}", (long long)ts, v);
    enpi_pipeline_ingest(p, seq, topic, strlen(topic), buf, strlen(buf), ts + 1000, flags);
}

/*
 * f1/em (cumulative) 100 at 10:00Z, 150 at 10:20Z. Then the 10:20Z reading comes again:
 * flagged as a redelivery it only counts in stats.redelivered; unflagged it is a
 * duplicate in the window and the meter. A flagged late reading (10:10Z) is ignored the
 * same way; a flagged reading with new data (10:40Z, 170) is applied as usual. f1/gas
 * (delta): a flagged repeat is not a duplicate. A later enpi_pipeline_apply() duplicate
 * counts again (the flag belongs to the message only).
 */
/*
 * f1/gas (delta, allowed_lateness 1h): a redelivered reading older than the lateness
 * horizon is an echo (stats.redelivered), while the same reading unflagged is rejected as
 * too_late and counted late.
 */
static void redelivered_too_late_delta_is_an_echo(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t0 = utc_ms(2018, 3, 28, 10, 0, 0);
    const enpi_pipeline_stats_t *st = enpi_pipeline_stats(p);

    (void)state;
    ingest_flags(p, 0, "enpi/f1/gas", t0, 2, 0);
    ingest_flags(p, 1, "enpi/f1/gas", t0 + 3 * 60 * MIN_MS, 2, 0);
    ingest_flags(p, 2, "enpi/f1/gas", t0, 2, ENPI_INGEST_REDELIVERED);
    assert_int_equal(st->redelivered, 1);
    assert_int_equal(st->rejects[ENPI_REJECT_TOO_LATE], 0);
    assert_int_equal(st->late, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/gas")->late, 0);
    ingest_flags(p, 3, "enpi/f1/gas", t0, 2, 0);
    assert_int_equal(st->redelivered, 1);
    assert_int_equal(st->rejects[ENPI_REJECT_TOO_LATE], 1);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/gas")->late, 1);
    enpi_pipeline_free(p);
}

static void redelivered_duplicates_count_apart(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    int64_t t0 = utc_ms(2018, 3, 28, 10, 0, 0);
    const enpi_pipeline_stats_t *st = enpi_pipeline_stats(p);
    const enpi_rollup_delta_t *d;
    const enpi_meter_snapshot_t *ms;
    enpi_batch_t *b;

    (void)state;
    ingest_flags(p, 0, "enpi/f1/em", t0, 100, 0);
    ingest_flags(p, 1, "enpi/f1/em", t0 + 20 * MIN_MS, 150, 0);
    ingest_flags(p, 2, "enpi/f1/gas", t0 + 15 * MIN_MS, 2, 0);
    b = take(p);
    enpi_batch_free(b);

    ingest_flags(p, 3, "enpi/f1/em", t0 + 20 * MIN_MS, 150, ENPI_INGEST_REDELIVERED);
    ingest_flags(p, 4, "enpi/f1/em", t0 + 10 * MIN_MS, 120, ENPI_INGEST_REDELIVERED);
    ingest_flags(p, 5, "enpi/f1/gas", t0 + 15 * MIN_MS, 2, ENPI_INGEST_REDELIVERED);
    assert_int_equal(st->redelivered, 3);
    assert_int_equal(st->duplicates, 0);
    assert_int_equal(st->late, 0);
    assert_int_equal(st->messages, 6);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->duplicates, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->late, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/gas")->duplicates, 0);
    b = take(p);
    assert_int_equal(b->n_rollups, 0); /* no window touched, no meter changed */
    assert_int_equal(b->n_meters, 0);
    assert_int_equal(b->inbox_upto, 6);
    enpi_batch_free(b);

    /* new data in a redelivered message, and the same repeat without the flag */
    ingest_flags(p, 6, "enpi/f1/em", t0 + 40 * MIN_MS, 170, ENPI_INGEST_REDELIVERED);
    ingest_flags(p, 7, "enpi/f1/em", t0 + 40 * MIN_MS, 170, 0);
    ingest_flags(p, 8, "enpi/f1/em", t0 + 30 * MIN_MS, 160, 0);
    assert_int_equal(st->redelivered, 3);
    assert_int_equal(st->duplicates, 1);
    assert_int_equal(st->late, 1);
    b = take(p);
    d = must_rollup(b, "f1/em", RES_1H, t0);
    assert_close(d->delta.value, 20);
    assert_int_equal(d->delta.readings, 1);
    assert_int_equal(d->delta.duplicates, 1);
    assert_int_equal(d->delta.late, 1);
    d = must_rollup(b, "f1/em", RES_15M, t0 + 30 * MIN_MS);
    assert_int_equal(d->delta.duplicates, 1);
    assert_int_equal(d->delta.late, 1);
    ms = batch_meter(b, "f1/em");
    assert_non_null(ms);
    assert_int_equal(ms->state.readings, 3);
    assert_int_equal(ms->state.duplicates, 1);
    assert_int_equal(ms->state.late, 1);
    assert_int_equal(ms->state.last_ts_ms, t0 + 40 * MIN_MS);
    enpi_batch_free(b);

    assert_int_equal(apply(p, "f1/gas", t0 + 15 * MIN_MS, 2), 1);
    assert_int_equal(st->duplicates, 2);
    assert_int_equal(st->redelivered, 3);
    enpi_pipeline_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(apportions_across_a_month_boundary_and_the_spring_dst_day),
        cmocka_unit_test(apportions_unaligned_interval_on_the_autumn_dst_day),
        cmocka_unit_test(delta_amounts_and_their_reading_windows),
        cmocka_unit_test(quality_counters_land_where_the_reading_is_stamped),
        cmocka_unit_test(batch_contents_and_inbox_progress),
        cmocka_unit_test(facility_zones_shape_windows_and_local_timestamps),
        cmocka_unit_test(shares_add_up_to_the_amount),
        cmocka_unit_test(restore_then_continue_equals_an_uninterrupted_run),
        cmocka_unit_test(redelivery_after_restart_only_counts),
        cmocka_unit_test(flagged_redelivery_after_restart_changes_nothing),
        cmocka_unit_test(redelivered_duplicates_count_apart),
        cmocka_unit_test(redelivered_too_late_delta_is_an_echo),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
