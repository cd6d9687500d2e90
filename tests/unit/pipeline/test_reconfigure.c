/*
 * test_reconfigure.c - enpi_pipeline_reconfigure (the SIGHUP reload of facilities and
 * meters): surviving meters keep their state and take a changed definition from their
 * next reading on, added meters go live (and may load a stored state), removed meters'
 * readings become unknown while their pending work still reaches the next batch, a
 * meter configured again continues from its state, a kind/reading change re-bases, a
 * zone change re-aligns windows, resolutions and inputs stay, an invalid configuration
 * changes nothing. Every test frees the configuration it reconfigured from at once, so
 * that under ASan any pointer kept into it shows up as a use after free.
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

#define HEAD                                                                                       \
    "timezone: UTC\n"                                                                              \
    "pipeline:\n"                                                                                  \
    "  resolutions: [15m, 1d]\n"                                                                   \
    "  allowed_lateness: 1h\n"                                                                     \
    "  max_future: 5m\n"                                                                           \
    "  max_gap: 1h\n"                                                                              \
    "inputs:\n"                                                                                    \
    "  - topic: \"enpi/{facility}/{meter}\"\n"                                                     \
    "    meter_id: \"{facility}/{meter}\"\n"

static const char *const V1 = HEAD "facilities:\n"
                                   "  - id: f1\n"
                                   "    meters:\n"
                                   "      - { id: f1/a, kind: energy, reading: cumulative }\n"
                                   "      - { id: f1/b, kind: energy, reading: cumulative }\n";

/* f1/b removed, facility f2 with f2/c added, f1/a's scale doubled. */
static const char *const V2 = HEAD "facilities:\n"
                                   "  - id: f1\n"
                                   "    meters:\n"
                                   "      - { id: f1/a, kind: energy, reading: cumulative, "
                                   "scale: 2 }\n"
                                   "  - id: f2\n"
                                   "    meters:\n"
                                   "      - { id: f2/c, kind: production, reading: cumulative }\n";

#define T0 utc_ms(2024, 3, 1, 0, 0, 0)
#define ARRIVAL utc_ms(2024, 3, 2, 0, 0, 0)

typedef struct {
    enpi_pipeline_t *p;
    enpi_config_t *base; /* the configuration the pipeline was created with (inputs) */
    uint64_t seq;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->base = config_from_yaml(V1);
    fx->p = pipeline_from(fx->base);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    enpi_pipeline_free(fx->p);
    enpi_config_free(fx->base);
    free(fx);
    return 0;
}

static void reading(fx_t *fx, const char *topic, int64_t ts, double v)
{
    ingest_reading(fx->p, fx->seq++, topic, ts, v, ARRIVAL);
}

/* Reconfigures from yaml and frees that configuration at once. */
static int reconfigure(fx_t *fx, const char *yaml, enpi_reconfigure_summary_t *sum, char *err,
                       size_t errlen)
{
    enpi_config_t *cfg = config_from_yaml(yaml);
    int rc = enpi_pipeline_reconfigure(fx->p, cfg, sum, err, errlen);
    enpi_config_free(cfg);
    return rc;
}

static enpi_batch_t *take(fx_t *fx)
{
    enpi_batch_t *b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(fx->p, &b), 0);
    return b;
}

static uint64_t unknown_rejects(fx_t *fx)
{
    return enpi_pipeline_stats(fx->p)->rejects[ENPI_REJECT_UNKNOWN_METER];
}

/* Survivor keeps its state, takes the new scale; added meter applies; removed one is
 * unknown, but its increments from before the reload reach the next batch. */
static void test_add_remove_change(void **state)
{
    fx_t *fx = *state;
    enpi_reconfigure_summary_t sum;
    char err[256] = "";

    reading(fx, "enpi/f1/a", T0, 100);
    reading(fx, "enpi/f1/a", T0 + 15 * MIN_MS, 110); /* 10 kWh in the first 15m */
    reading(fx, "enpi/f1/b", T0, 5);
    reading(fx, "enpi/f1/b", T0 + 15 * MIN_MS, 8); /* 3 kWh */
    reading(fx, "enpi/f2/c", T0, 1);                /* unknown for now */
    assert_int_equal(unknown_rejects(fx), 1);

    assert_int_equal(reconfigure(fx, V2, &sum, err, sizeof err), 0);
    assert_int_equal(sum.meters, 2);
    assert_int_equal(sum.added, 1);
    assert_int_equal(sum.removed, 1);
    assert_int_equal(sum.changed, 1);
    assert_int_equal(sum.rebased, 0);
    assert_non_null(enpi_pipeline_meter_state(fx->p, "f2/c"));
    assert_null(enpi_pipeline_meter_state(fx->p, "f1/b"));

    reading(fx, "enpi/f1/a", T0 + 30 * MIN_MS, 130); /* (130 - 110) x 2 = 40 */
    reading(fx, "enpi/f1/b", T0 + 30 * MIN_MS, 9);   /* unknown now */
    reading(fx, "enpi/f2/c", T0 + 15 * MIN_MS, 10);  /* first reading: state only */
    reading(fx, "enpi/f2/c", T0 + 30 * MIN_MS, 16);  /* 6 units */
    assert_int_equal(unknown_rejects(fx), 2);

    enpi_batch_t *b = take(fx);
    assert_close(must_rollup(b, "f1/a", RES_15M, T0)->delta.value, 10);
    assert_close(must_rollup(b, "f1/a", RES_15M, T0 + 15 * MIN_MS)->delta.value, 40);
    assert_close(must_rollup(b, "f1/b", RES_15M, T0)->delta.value, 3);
    /* b's reading at T0+15m counts in its window; the one after the reload does not */
    assert_int_equal(must_rollup(b, "f1/b", RES_15M, T0 + 15 * MIN_MS)->delta.readings, 1);
    assert_null(batch_rollup(b, "f1/b", RES_15M, T0 + 30 * MIN_MS));
    assert_close(must_rollup(b, "f2/c", RES_15M, T0 + 15 * MIN_MS)->delta.value, 6);
    const enpi_meter_snapshot_t *sb = batch_meter(b, "f1/b");
    assert_non_null(sb); /* the removed meter's last state is stored */
    assert_int_equal(sb->state.last_ts_ms, T0 + 15 * MIN_MS);
    assert_int_equal(b->n_unknown, 2); /* f2/c before, f1/b after */
    enpi_batch_free(b);

    /* nothing pending for the removed meter any more: the next batch does not name it */
    reading(fx, "enpi/f1/a", T0 + 45 * MIN_MS, 131);
    b = take(fx);
    assert_null(batch_meter(b, "f1/b"));
    assert_close(must_rollup(b, "f1/a", RES_15M, T0 + 30 * MIN_MS)->delta.value, 2);
    enpi_batch_free(b);
}

/* A meter removed and configured again before its last state was committed continues
 * from the pipeline's state (not a stale stored one). */
static void test_revive(void **state)
{
    fx_t *fx = *state;
    enpi_reconfigure_summary_t sum;
    char err[256] = "";

    reading(fx, "enpi/f1/b", T0, 5);
    reading(fx, "enpi/f1/b", T0 + 15 * MIN_MS, 8);
    assert_int_equal(reconfigure(fx, V2, &sum, err, sizeof err), 0);
    assert_int_equal(reconfigure(fx, V1, &sum, err, sizeof err), 0);
    assert_int_equal(sum.revived, 1);
    assert_int_equal(sum.added, 0); /* f2/c is a removed one now, not new */
    assert_int_equal(sum.removed, 1);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(fx->p, "f1/b");
    assert_non_null(st);
    assert_int_equal(st->last_ts_ms, T0 + 15 * MIN_MS);
    /* a stored (older) state is not loaded over it */
    enpi_meter_state_t stored = {.has_state = true, .last_ts_ms = T0, .last_raw = 5};
    assert_int_equal(enpi_pipeline_restore_added(fx->p, "f1/b", &stored), ENPI_ENOENT);
    reading(fx, "enpi/f1/b", T0 + 30 * MIN_MS, 12);
    enpi_batch_t *b = take(fx);
    assert_close(must_rollup(b, "f1/b", RES_15M, T0 + 15 * MIN_MS)->delta.value, 4);
    assert_close(batch_sum(b, "f1/b", RES_1D, false, NULL), 7);
    enpi_batch_free(b);
}

/* restore_added loads a stored state into a meter the reconfigure added, once. */
static void test_restore_added(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";

    assert_int_equal(reconfigure(fx, V2, NULL, err, sizeof err), 0);
    enpi_meter_state_t stored = {.has_state = true, .last_ts_ms = T0, .last_raw = 50,
                                 .first_ts_ms = T0 - DAY_MS, .readings = 7};
    assert_int_equal(enpi_pipeline_restore_added(fx->p, "f1/a", &stored), ENPI_ENOENT);
    assert_int_equal(enpi_pipeline_restore_added(fx->p, "nope", &stored), ENPI_ENOENT);
    assert_int_equal(enpi_pipeline_restore_added(fx->p, "f2/c", &stored), 0);
    reading(fx, "enpi/f2/c", T0 + 15 * MIN_MS, 53);
    assert_int_equal(enpi_pipeline_restore_added(fx->p, "f2/c", &stored), ENPI_ENOENT);
    enpi_batch_t *b = take(fx);
    assert_close(must_rollup(b, "f2/c", RES_15M, T0)->delta.value, 3);
    assert_int_equal(batch_meter(b, "f2/c")->state.readings, 8);
    enpi_batch_free(b);
}

/* A reading type change re-bases: the next reading sets state only. */
static void test_reading_type_change(void **state)
{
    fx_t *fx = *state;
    enpi_reconfigure_summary_t sum;
    char err[256] = "";
    static const char *const DELTA_A =
        HEAD "facilities:\n"
             "  - id: f1\n"
             "    meters:\n"
             "      - { id: f1/a, kind: energy, reading: delta, interval: 15m }\n"
             "      - { id: f1/b, kind: energy, reading: cumulative }\n";

    reading(fx, "enpi/f1/a", T0, 100);
    reading(fx, "enpi/f1/a", T0 + 15 * MIN_MS, 110);
    assert_int_equal(reconfigure(fx, DELTA_A, &sum, err, sizeof err), 0);
    assert_int_equal(sum.changed, 1);
    assert_int_equal(sum.rebased, 1);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(fx->p, "f1/a");
    assert_false(st->has_state);
    assert_int_equal(st->readings, 2); /* lifetime counters stay */
    /* as a delta meter with interval: 7 kWh over [T0+30m-15m, T0+30m] */
    reading(fx, "enpi/f1/a", T0 + 30 * MIN_MS, 7);
    reading(fx, "enpi/f1/a", T0 + 45 * MIN_MS, 5);
    enpi_batch_t *b = take(fx);
    assert_close(must_rollup(b, "f1/a", RES_15M, T0)->delta.value, 10);
    assert_close(batch_sum(b, "f1/a", RES_1D, false, NULL), 10 + 7 + 5);
    enpi_batch_free(b);
}

/* A zone change re-aligns the facility's windows from the next reading on; resolutions
 * and max_gap follow the rules (resolutions kept, max_gap taken). */
static void test_zone_and_pipeline_section(void **state)
{
    fx_t *fx = *state;
    enpi_reconfigure_summary_t sum;
    char err[256] = "";
    static const char *const HCM =
        "timezone: Asia/Ho_Chi_Minh\n"
        "pipeline:\n"
        "  resolutions: [1h]\n"
        "  allowed_lateness: 1h\n"
        "  max_future: 5m\n"
        "  max_gap: 10m\n"
        "inputs:\n"
        "  - topic: \"other/{meter}\"\n"
        "facilities:\n"
        "  - id: f1\n"
        "    meters:\n"
        "      - { id: f1/a, kind: energy, reading: cumulative }\n"
        "      - { id: f1/b, kind: energy, reading: cumulative }\n";

    reading(fx, "enpi/f1/a", T0, 100);
    assert_int_equal(reconfigure(fx, HCM, &sum, err, sizeof err), 0);
    assert_int_equal(sum.zone_changed, 2);
    assert_int_equal(sum.changed, 0);
    reading(fx, "enpi/f1/a", T0 + 15 * MIN_MS, 115); /* the inputs did not change */
    enpi_batch_t *b = take(fx);
    /* 15m still there (resolutions kept); the 1d window is Ho Chi Minh's day (UTC+7):
     * T0 (UTC midnight) is 07:00 local, so the day started at T0 - 7h */
    const enpi_rollup_delta_t *d = must_rollup(b, "f1/a", RES_1D, T0 - 7 * HOUR_MS);
    assert_close(d->delta.value, 15);
    assert_close(d->delta.estimated, 15); /* 15 minutes > the new max_gap of 10m */
    assert_non_null(batch_rollup(b, "f1/a", RES_15M, T0));
    for (size_t i = 0; i < b->n_rollups; i++)
        assert_int_not_equal(b->rollups[i].res_code, RES_1H);
    enpi_batch_free(b);
}

/* An invalid configuration changes nothing. */
static void test_invalid_changes_nothing(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    enpi_config_t *bad = NULL;

    reading(fx, "enpi/f1/a", T0, 100);
    /* the parser refuses an id configured twice; make one behind its back */
    enpi_config_t *twice = config_from_yaml(V2);
    free(twice->facilities[1].meters[0].id);
    twice->facilities[1].meters[0].id = strdup("f1/a");
    assert_int_equal(enpi_pipeline_reconfigure(fx->p, twice, NULL, err, sizeof err), ENPI_EINVAL);
    assert_non_null(strstr(err, "f1/a"));
    enpi_config_free(twice);
    /* a zone tzdata lacks (the parser checks zones too; go behind its back) */
    bad = config_from_yaml(V2);
    free(bad->facilities[1].timezone);
    bad->facilities[1].timezone = strdup("Mars/Olympus_Mons");
    assert_int_equal(enpi_pipeline_reconfigure(fx->p, bad, NULL, err, sizeof err), ENPI_ENOENT);
    assert_non_null(strstr(err, "Mars/Olympus_Mons"));
    enpi_config_free(bad);
    assert_null(enpi_pipeline_meter_state(fx->p, "f2/c"));
    assert_non_null(enpi_pipeline_meter_state(fx->p, "f1/b"));
    reading(fx, "enpi/f1/a", T0 + 15 * MIN_MS, 104);
    reading(fx, "enpi/f1/b", T0, 1);
    assert_int_equal(unknown_rejects(fx), 0);
    enpi_batch_t *b = take(fx);
    assert_close(must_rollup(b, "f1/a", RES_15M, T0)->delta.value, 4);
    enpi_batch_free(b);
}

/* Many reloads with pending work in between, ids coming and going: every increment lands
 * in some batch exactly once (the sum over batches equals the register's travel). */
static void test_many_reloads(void **state)
{
    fx_t *fx = *state;
    char err[256] = "";
    double total = 0;
    int64_t t = T0;

    reading(fx, "enpi/f1/a", t, 0);
    for (int i = 0; i < 100; i++) {
        t += 5 * MIN_MS;
        reading(fx, "enpi/f1/a", t, (double)(i + 1));
        reading(fx, "enpi/f2/c", t, (double)i); /* known in V2 only */
        assert_int_equal(reconfigure(fx, i % 2 == 0 ? V2 : V1, NULL, err, sizeof err), 0);
        if (i % 3 == 0) {
            enpi_batch_t *b = take(fx);
            total += batch_sum(b, "f1/a", RES_1D, false, NULL);
            enpi_batch_free(b);
        }
    }
    enpi_batch_t *b = take(fx);
    total += batch_sum(b, "f1/a", RES_1D, false, NULL);
    enpi_batch_free(b);
    /* f1/a's scale is 2 in V2 (applied after even i), 1 in V1: the step to i+1 at
     * iteration i was taken under the configuration of iteration i-1 */
    double want = 1; /* i = 0: under V1 */
    for (int i = 1; i < 100; i++)
        want += (i - 1) % 2 == 0 ? 2 : 1;
    assert_close(total, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_remove_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_added, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reading_type_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zone_and_pipeline_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_reloads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
