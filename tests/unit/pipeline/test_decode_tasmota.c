/*
 * test_decode_tasmota.c - the `tasmota` payload format (tele/<device>/SENSOR JSON): the
 * decoder alone on SENSOR payloads written from Tasmota's documentation (energy plug,
 * energy plus a temperature sensor, a sensor-only device, SetOption52 offsets, per-phase
 * arrays), then through enpi_pipeline_ingest in a facility zone with DST (Europe/Berlin):
 * local Time to instant, exact rollups, and every SPEC §4 reject with its boundary (no or
 * bad Time, 1970 before NTP sync, 1999, 6 minutes ahead, NaN-like values, negative
 * register, 256 KiB + 1 byte, not JSON, not an object).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "decode_json.h"
#include "enpi_error.h"
#include "log.h"
#include "pipeline_testutil.h"

/* A Sonoff POW-style plug (the documented SENSOR telemetry of an energy monitor). */
static const char *const PLUG =
    "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"TotalStartTime\":\"2023-05-01T12:00:00\","
    "\"Total\":123.456,\"Yesterday\":1.2,\"Today\":0.5,\"Period\":3,\"Power\":150,"
    "\"ApparentPower\":160,\"ReactivePower\":50,\"Factor\":0.94,\"Voltage\":230,"
    "\"Current\":0.65}}";

/* An energy monitor with a DS18B20 attached: other sensors sit beside ENERGY. */
static const char *const PLUG_WITH_SENSOR =
    "{\n  \"Time\": \"2022-01-11T21:57:38\",\n  \"DS18B20\": {\"Id\": \"01191ED79AFF\", "
    "\"Temperature\": 21.4},\n  \"ENERGY\": {\n    \"TotalStartTime\": \"2020-10-21T22:15:00\",\n"
    "    \"Total\": 3.705,\n    \"Yesterday\": 0.028,\n    \"Today\": 0.026,\n"
    "    \"Period\": 1,\n    \"Power\": 5,\n    \"ApparentPower\": 5,\n"
    "    \"ReactivePower\": 0,\n    \"Factor\": 1.00,\n    \"Voltage\": 233,\n"
    "    \"Current\": 0.021\n  },\n  \"TempUnit\": \"C\"\n}\n";

/* A device with sensors but no energy monitor. */
static const char *const SENSOR_ONLY =
    "{\"Time\":\"2024-01-15T10:30:00\",\"AM2301\":{\"Temperature\":21.3,\"Humidity\":45.2,"
    "\"DewPoint\":9.1},\"TempUnit\":\"C\"}";

/* ---- the decoder alone -------------------------------------------------------------- */

#define MAX_SEEN 8

typedef struct {
    enpi_raw_reading_t r[MAX_SEEN];
    size_t n;
} seen_t;

static void collect(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    if (s->n >= MAX_SEEN)
        fail_msg("too many readings");
    s->r[s->n++] = *r;
}

static enpi_json_decoder_t *dec;
static seen_t seen;

static int decode(const char *payload)
{
    memset(&seen, 0, sizeof(seen));
    return enpi_tasmota_decode(dec, payload, strlen(payload), collect, &seen);
}

static void energy_total_and_local_time(void **state)
{
    (void)state;
    assert_int_equal(decode(PLUG), 0);
    assert_int_equal(seen.n, 1);
    assert_false(seen.r[0].malformed);
    assert_null(seen.r[0].id); /* always the topic's */
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    assert_true(seen.r[0].value == 123.456);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    assert_false(seen.r[0].civil.has_offset);
    assert_int_equal(seen.r[0].civil.year, 2024);
    assert_int_equal(seen.r[0].civil.month, 1);
    assert_int_equal(seen.r[0].civil.day, 15);
    assert_int_equal(seen.r[0].civil.hour, 10);
    assert_int_equal(seen.r[0].civil.minute, 30);
    assert_int_equal(seen.r[0].civil.second, 0);

    assert_int_equal(decode(PLUG_WITH_SENSOR), 0);
    assert_int_equal(seen.n, 1);
    assert_true(seen.r[0].value == 3.705);
    assert_int_equal(seen.r[0].civil.hour, 21);
}

static void offset_and_fraction_in_time_are_kept(void **state)
{
    (void)state;
    /* SetOption52 1 adds the zone offset */
    assert_int_equal(decode("{\"Time\":\"2024-01-15T10:30:00+01:00\",\"ENERGY\":{\"Total\":1}}"),
                     0);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    assert_true(seen.r[0].civil.has_offset);
    assert_int_equal(seen.r[0].civil.offset_s, 3600);
    assert_int_equal(decode("{\"Time\":\"2024-01-15T10:30:00.250\",\"ENERGY\":{\"Total\":1}}"), 0);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    assert_int_equal(seen.r[0].civil.millis, 250);
}

static void without_energy_total_the_value_is_missing(void **state)
{
    static const char *const missing[] = {
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Power\":150}}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":\"123.4\"}}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":null}}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":true}}",
        /* SetOption129 1: per-phase totals, not supported */
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":[1.2,3.4]}}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":123.4}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"Total\":123.4}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"energy\":{\"total\":123.4}}",
    };

    (void)state;
    assert_int_equal(decode(SENSOR_ONLY), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_MISSING);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        assert_int_equal(decode(missing[i]), 0);
        if (seen.n != 1 || seen.r[0].value_kind != ENPI_VALUE_MISSING)
            fail_msg("%s: %zu readings, value kind %d", missing[i], seen.n, seen.r[0].value_kind);
    }
    assert_int_equal(decode("{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1e999}}"), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(decode("{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":-0.5}}"), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    assert_true(seen.r[0].value == -0.5);
}

static void time_must_be_an_iso_string(void **state)
{
    static const char *const bad[] = {
        "{\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":null,\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":1705314600,\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":1705314600000,\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":true,\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":{\"t\":1},\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":\"\",\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":\"yesterday\",\"ENERGY\":{\"Total\":1}}",
        "{\"Time\":\"2018.02.15 01:00:50\",\"ENERGY\":{\"Total\":1}}", /* Tasmota 5.x */
        "{\"Time\":\"2024-02-30T10:30:00\",\"ENERGY\":{\"Total\":1}}",
        "{\"time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1}}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode(bad[i]), 0);
        if (seen.n != 1 || seen.r[0].ts_kind != ENPI_TS_INVALID)
            fail_msg("%s: %zu readings, ts kind %d", bad[i], seen.n, seen.r[0].ts_kind);
        assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    }
}

static void only_a_json_object_parses(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "[{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1}}]",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1}} x",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":NaN}}",
        "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1,}}",
        "123.456",
        "\"text\"",
        "Online", /* what tele/<device>/LWT carries */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode(bad[i]);
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("\"%s\": rc %d, %zu readings", bad[i], rc, seen.n);
    }
    /* whitespace around the object is fine */
    assert_int_equal(decode(" \r\n\t{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":1}}\n"),
                     0);
    assert_int_equal(seen.n, 1);
}

/* ---- through the pipeline ----------------------------------------------------------- */

static const char *const YAML = "timezone: UTC\n"
                                "pipeline:\n"
                                "  resolutions: [15m, 1h, 1d, 1mo]\n"
                                "  allowed_lateness: 1h\n"
                                "  max_future: 5m\n"
                                "  max_gap: 1h\n"
                                "inputs:\n"
                                "  - topic: \"tele/{meter}/SENSOR\"\n"
                                "    format: tasmota\n"
                                "facilities:\n"
                                "  - id: ber\n"
                                "    timezone: Europe/Berlin\n"
                                "    meters:\n"
                                "      - { id: plug1, kind: energy, reading: cumulative }\n"
                                "      - { id: plug2, kind: energy, reading: cumulative }\n";

/* arrival clock: 2024-01-15T09:35:00Z = 10:35 in Berlin (CET, +01:00) */
static int64_t A;
static enpi_config_t *cfg;

static int pipeline_setup(void **state)
{
    (void)state;
    A = utc_ms(2024, 1, 15, 9, 35, 0);
    cfg = config_from_yaml(YAML);
    return cfg == NULL;
}

static int pipeline_teardown(void **state)
{
    (void)state;
    enpi_config_free(cfg);
    return 0;
}

/* A SENSOR payload with Time (a JSON token, quoted by the caller) and ENERGY.Total. */
static const char *sensor(const char *time_token, const char *total)
{
    static char buf[512];

    snprintf(buf, sizeof(buf),
             "{\"Time\":%s,\"ENERGY\":{\"TotalStartTime\":\"2023-05-01T12:00:00\","
             "\"Total\":%s,\"Yesterday\":1.2,\"Today\":0.5,\"Period\":3,\"Power\":150,"
             "\"ApparentPower\":160,\"ReactivePower\":50,\"Factor\":0.94,\"Voltage\":230,"
             "\"Current\":0.65}}",
             time_token, total);
    return buf;
}

/* The single reason one payload was rejected for, or ENPI_REJECT__COUNT when accepted. */
static enpi_reject_t one_len(enpi_pipeline_t *p, const char *topic, const char *payload, size_t len)
{
    static uint64_t seq;
    enpi_pipeline_stats_t before = *enpi_pipeline_stats(p);
    enpi_reject_t found = ENPI_REJECT__COUNT;

    enpi_pipeline_ingest(p, seq++, topic, strlen(topic), payload, len, A, 0);
    for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
        uint64_t d = enpi_pipeline_stats(p)->rejects[r] - before.rejects[r];
        if (d > 1 || (d == 1 && found != ENPI_REJECT__COUNT))
            fail_msg("%s: more than one reject", payload);
        if (d == 1)
            found = (enpi_reject_t)r;
    }
    return found;
}

static enpi_reject_t one(enpi_pipeline_t *p, const char *payload)
{
    return one_len(p, "tele/plug1/SENSOR", payload, strlen(payload));
}

static void local_time_in_the_facility_zone_gives_exact_rollups(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "plug1");
    enpi_batch_t *b = NULL;

    (void)state;
    /* 10:00 and 10:30 local are 09:00Z and 09:30Z in January (CET) */
    assert_int_equal(one(p, sensor("\"2024-01-15T10:00:00\"", "120.25")), ENPI_REJECT__COUNT);
    assert_int_equal(st->last_ts_ms, utc_ms(2024, 1, 15, 9, 0, 0));
    assert_int_equal(one(p, sensor("\"2024-01-15T10:30:00\"", "123.456")), ENPI_REJECT__COUNT);
    assert_int_equal(st->last_ts_ms, utc_ms(2024, 1, 15, 9, 30, 0));
    assert_true(st->last_raw == 123.456);
    /* the same instant written with its offset (SetOption52 1): a duplicate */
    assert_int_equal(one(p, sensor("\"2024-01-15T10:30:00+01:00\"", "123.456")),
                     ENPI_REJECT__COUNT);
    assert_int_equal(st->duplicates, 1);
    /* the documented sample, on another device */
    assert_int_equal(one_len(p, "tele/plug2/SENSOR", PLUG, strlen(PLUG)), ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_meter_state(p, "plug2")->last_ts_ms,
                     utc_ms(2024, 1, 15, 9, 30, 0));

    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    /* 3.206 kWh over 09:00Z..09:30Z: half in each 15m window; the local hour 10:00 */
    assert_close(must_rollup(b, "plug1", RES_15M, utc_ms(2024, 1, 15, 9, 0, 0))->delta.value,
                 1.603);
    assert_close(must_rollup(b, "plug1", RES_15M, utc_ms(2024, 1, 15, 9, 15, 0))->delta.value,
                 1.603);
    assert_close(must_rollup(b, "plug1", RES_1H, utc_ms(2024, 1, 15, 9, 0, 0))->delta.value, 3.206);
    /* the local day starts at 23:00Z the day before */
    assert_close(must_rollup(b, "plug1", RES_1D, utc_ms(2024, 1, 14, 23, 0, 0))->delta.value,
                 3.206);
    assert_int_equal(must_rollup(b, "plug1", RES_1D, utc_ms(2024, 1, 14, 23, 0, 0))->delta.readings,
                     2);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void summer_time_is_applied_to_local_time(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "plug1");
    int64_t t = utc_ms(2024, 7, 1, 10, 0, 0);
    char buf[512];

    (void)state;
    /* in July Berlin is +02:00: 12:00 local is 10:00Z */
    snprintf(buf, sizeof(buf), "%s", sensor("\"2024-07-01T12:00:00\"", "5"));
    enpi_pipeline_ingest(p, 0, "tele/plug1/SENSOR", 17, buf, strlen(buf), t, 0);
    assert_int_equal(st->last_ts_ms, t);
    enpi_pipeline_free(p);
}

static void every_reject_with_its_boundary(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "plug1");
    const char *t = "\"2024-01-15T10:30:00\"";

    (void)state;
    assert_int_equal(one(p, "{\"Time\":\"2024-01-15T10:30:00\",\"ENERGY\":{\"Total\":"),
                     ENPI_REJECT_PARSE);
    assert_int_equal(one(p, "[]"), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, ""), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, SENSOR_ONLY), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, sensor(t, "\"123.4\"")), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, sensor(t, "[1.2,3.4]")), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, sensor(t, "1e999")), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, sensor(t, "-1e999")), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, sensor(t, "-0.001")), ENPI_REJECT_NEGATIVE);
    assert_int_equal(one(p, "{\"ENERGY\":{\"Total\":1}}"), ENPI_REJECT_BAD_TIMESTAMP);
    assert_int_equal(one(p, sensor("null", "1")), ENPI_REJECT_BAD_TIMESTAMP);
    assert_int_equal(one(p, sensor("1705311000", "1")), ENPI_REJECT_BAD_TIMESTAMP);
    assert_int_equal(one(p, sensor("\"15.01.2024 10:30:00\"", "1")), ENPI_REJECT_BAD_TIMESTAMP);
    /* a clock not yet synced by NTP */
    assert_int_equal(one(p, sensor("\"1970-01-01T00:00:12\"", "1")), ENPI_REJECT_TOO_OLD);
    /* 2000-01-01T00:00Z is 01:00 in Berlin: one second before is 1999 */
    assert_int_equal(one(p, sensor("\"1999-12-31T23:59:59\"", "1")), ENPI_REJECT_TOO_OLD);
    assert_int_equal(one(p, sensor("\"2000-01-01T00:59:59\"", "1")), ENPI_REJECT_TOO_OLD);
    /* 6 minutes ahead of the arrival clock (10:35 local), and 1 ms past max_future */
    assert_int_equal(one(p, sensor("\"2024-01-15T10:41:00\"", "1")), ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, sensor("\"2024-01-15T10:40:00.001\"", "1")), ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, sensor("\"2024-01-15T09:41:00Z\"", "1")), ENPI_REJECT_FUTURE);
    assert_int_equal(st->rejected, 19);
    assert_false(st->has_state);

    /* the boundaries themselves: 2000-01-01T00:00Z, then exactly 5 minutes ahead */
    assert_int_equal(one(p, sensor("\"2000-01-01T01:00:00\"", "1")), ENPI_REJECT__COUNT);
    assert_int_equal(st->last_ts_ms, utc_ms(2000, 1, 1, 0, 0, 0));
    assert_int_equal(one_len(p, "tele/plug2/SENSOR", sensor("\"2024-01-15T10:40:00\"", "7"),
                             strlen(sensor("\"2024-01-15T10:40:00\"", "7"))),
                     ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_meter_state(p, "plug2")->last_ts_ms, A + 5 * MIN_MS);
    enpi_pipeline_free(p);
}

static void topic_rejects_and_unknown_devices(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_batch_t *b = NULL;

    (void)state;
    assert_int_equal(one_len(p, "tele/plug9/SENSOR", PLUG, strlen(PLUG)),
                     ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one_len(p, "tele/plug9/SENSOR", PLUG, strlen(PLUG)),
                     ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one_len(p, "tele/plug1/STATE", PLUG, strlen(PLUG)), ENPI_REJECT_NO_INPUT);
    assert_int_equal(one_len(p, "tele/plug1/LWT", "Online", 6), ENPI_REJECT_NO_INPUT);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, 1);
    assert_string_equal(b->unknown[0].meter_id, "plug9");
    assert_int_equal(b->unknown[0].count, 2);
    assert_string_equal(b->unknown[0].last_topic, "tele/plug9/SENSOR");
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void payload_size_limit_is_256_kib(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    size_t n = ENPI_PAYLOAD_MAX + 1;
    char *big = malloc(n + 1);

    (void)state;
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, PLUG, strlen(PLUG));
    big[n] = '\0';
    assert_int_equal(one_len(p, "tele/plug1/SENSOR", big, n), ENPI_REJECT_TOO_LARGE);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "plug1")->rejected, 1);
    assert_int_equal(one_len(p, "tele/plug1/SENSOR", big, n - 1), ENPI_REJECT__COUNT);
    assert_true(enpi_pipeline_meter_state(p, "plug1")->last_raw == 123.456);
    free(big);
    enpi_pipeline_free(p);
}

int main(void)
{
    const struct CMUnitTest decoder[] = {
        cmocka_unit_test(energy_total_and_local_time),
        cmocka_unit_test(offset_and_fraction_in_time_are_kept),
        cmocka_unit_test(without_energy_total_the_value_is_missing),
        cmocka_unit_test(time_must_be_an_iso_string),
        cmocka_unit_test(only_a_json_object_parses),
    };
    const struct CMUnitTest pipeline[] = {
        cmocka_unit_test(local_time_in_the_facility_zone_gives_exact_rollups),
        cmocka_unit_test(summer_time_is_applied_to_local_time),
        cmocka_unit_test(every_reject_with_its_boundary),
        cmocka_unit_test(topic_rejects_and_unknown_devices),
        cmocka_unit_test(payload_size_limit_is_256_kib),
    };
    int failed = 0;

    enpi_log_max_level = ENPI_LOG_ERR; /* the rejects below would log warnings */
    if (enpi_json_decoder_create(&dec) != 0)
        return 1;
    failed += cmocka_run_group_tests_name("tasmota decoder", decoder, NULL, NULL);
    failed += cmocka_run_group_tests_name("tasmota through the pipeline", pipeline, pipeline_setup,
                                          pipeline_teardown);
    enpi_json_decoder_free(dec);
    return failed != 0;
}
