/*
 * test_rejects.c - SPEC §4's rejects through enpi_pipeline_ingest: every reason with its
 * boundary, what each counts (stats, the meter's state.rejected, the unknown table), that
 * a rejected reading changes no rollup, the number format, meter ids from the payload,
 * and that a truncated protobuf batch is a parse error.
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
#include "log.h"
#include "pipeline_testutil.h"

static const char *const YAML =
    "timezone: UTC\n"
    "pipeline:\n"
    "  resolutions: [15m, 1h, 1d, 1mo]\n"
    "  allowed_lateness: 1h\n"
    "  max_future: 5m\n"
    "  max_gap: 1h\n"
    "inputs:\n"
    "  - topic: \"enpi/{facility}/{meter}\"\n"
    "    meter_id: \"{facility}/{meter}\"\n"
    "  - topic: \"shellies/{meter}/emeter/0/total\"\n"
    "    format: number\n"
    "  - topic: \"gw/{site}\"\n"
    "    meter_id_path: id\n"
    "  - topic: \"pb/{meter}\"\n"
    "    format: protobuf\n"
    "facilities:\n"
    "  - id: f1\n"
    "    meters:\n"
    "      - { id: f1/em, kind: energy, reading: cumulative }\n"
    "      - { id: f1/gas, kind: energy, reading: delta, interval: 15m }\n"
    "      - { id: f1/rate, kind: energy, reading: cumulative, max_rate: 10 }\n"
    "      - { id: sh1, kind: energy, reading: cumulative }\n";

static enpi_config_t *cfg;
static const int64_t A = INT64_C(1522206000000); /* arrival clock: 2018-03-28T03:00:00Z */

static int setup(void **state)
{
    (void)state;
    enpi_log_max_level = ENPI_LOG_ERR; /* the rejects below would log warnings */
    cfg = config_from_yaml(YAML);
    return cfg == NULL;
}

static int teardown(void **state)
{
    (void)state;
    enpi_config_free(cfg);
    return 0;
}

static uint64_t rejects(enpi_pipeline_t *p, enpi_reject_t r)
{
    return enpi_pipeline_stats(p)->rejects[r];
}

static uint64_t total_rejects(enpi_pipeline_t *p)
{
    uint64_t n = 0;
    for (int r = 0; r < ENPI_REJECT__COUNT; r++)
        n += rejects(p, (enpi_reject_t)r);
    return n;
}

/* Ingests one payload on enpi/f1/em and says which single reason it was rejected for
 * (ENPI_REJECT__COUNT when accepted). */
static enpi_reject_t one(enpi_pipeline_t *p, const char *topic, const char *payload)
{
    static uint64_t seq;
    enpi_pipeline_stats_t before = *enpi_pipeline_stats(p);
    enpi_reject_t found = ENPI_REJECT__COUNT;

    ingest_str(p, seq++, topic, payload, A);
    for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
        uint64_t d = enpi_pipeline_stats(p)->rejects[r] - before.rejects[r];
        if (d > 1 || (d == 1 && found != ENPI_REJECT__COUNT))
            fail_msg("%s: more than one reject", payload);
        if (d == 1)
            found = (enpi_reject_t)r;
    }
    return found;
}

static void reject_names_are_stable(void **state)
{
    (void)state;
    assert_string_equal(enpi_reject_name(ENPI_REJECT_PARSE), "parse_error");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_MISSING_VALUE), "missing_value");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_NOT_FINITE), "not_finite");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_NEGATIVE), "negative");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_TOO_OLD), "too_old");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_FUTURE), "future");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_TOO_LARGE), "too_large");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_BAD_TIMESTAMP), "bad_timestamp");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_BAD_METER_ID), "bad_meter_id");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_UNKNOWN_METER), "unknown_meter");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_NO_INPUT), "no_input");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_TOO_LATE), "too_late");
    assert_string_equal(enpi_reject_name(ENPI_REJECT_IMPLAUSIBLE), "implausible");
    assert_string_equal(enpi_reject_name(ENPI_REJECT__COUNT), "unknown");
}

static void payload_and_value_rejects_count_against_the_meter(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "f1/em");
    char buf[200];
    enpi_batch_t *b;

    (void)state;
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"val"), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"value\": \"12\"}"),
                     ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"value\": true}"),
                     ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000}"), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"value\": 1e999}"),
                     ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"value\": -3}"),
                     ENPI_REJECT_NEGATIVE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": \"yesterday\", \"value\": 3}"),
                     ENPI_REJECT_BAD_TIMESTAMP);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": false, \"value\": 3}"),
                     ENPI_REJECT_BAD_TIMESTAMP);
    /* 1999-12-31T23:59:59Z, in ms, in s and as text */
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 946684799000, \"value\": 3}"),
                     ENPI_REJECT_TOO_OLD);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 946684799, \"value\": 3}"),
                     ENPI_REJECT_TOO_OLD);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": \"1999-12-31T23:59:59Z\", \"value\": 3}"),
                     ENPI_REJECT_TOO_OLD);
    /* 6 minutes ahead of the arrival clock, max_future 5m */
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 3}", (long long)(A + 6 * MIN_MS));
    assert_int_equal(one(p, "enpi/f1/em", buf), ENPI_REJECT_FUTURE);
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 3}", (long long)(A + 5 * MIN_MS + 1));
    assert_int_equal(one(p, "enpi/f1/em", buf), ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1e300, \"value\": 3}"), ENPI_REJECT_FUTURE);
    assert_int_equal(st->rejected, 14);
    assert_false(st->has_state);

    /* nothing rejected reached a rollup; the meter's state (counters) is in the batch */
    b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_rollups, 0);
    assert_int_equal(b->n_meters, 1);
    assert_int_equal(b->meters[0].state.rejected, 14);
    enpi_batch_free(b);

    /* the boundaries themselves are accepted: exactly 2000-01-01, exactly max_future */
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": \"2000-01-01T00:00:00Z\", \"value\": 3}"),
                     ENPI_REJECT__COUNT);
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 3}", (long long)(A + 5 * MIN_MS));
    assert_int_equal(one(p, "enpi/f1/em", buf), ENPI_REJECT__COUNT);
    assert_int_equal(st->readings, 2);
    assert_int_equal(st->last_ts_ms, A + 5 * MIN_MS);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 2);
    enpi_pipeline_free(p);
}

static void payload_size_limit_is_256_kib(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    size_t n = ENPI_PAYLOAD_MAX + 1;
    char *big = malloc(n + 1);
    const char *head = "{\"ts\": 1522206000000, \"value\": 5}";

    (void)state;
    assert_int_equal(ENPI_PAYLOAD_MAX, 262144);
    memset(big, ' ', n);
    memcpy(big, head, strlen(head));
    big[n] = '\0';
    /* 256 KiB + 1 byte: rejected whole, without parsing */
    enpi_pipeline_ingest(p, 0, "enpi/f1/em", 10, big, n, A, 0);
    assert_int_equal(rejects(p, ENPI_REJECT_TOO_LARGE), 1);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->rejected, 1);
    /* exactly 256 KiB (the JSON padded with spaces): accepted */
    enpi_pipeline_ingest(p, 1, "enpi/f1/em", 10, big, n - 1, A, 0);
    assert_int_equal(total_rejects(p), 1);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 1);
    free(big);
    enpi_pipeline_free(p);
}

static void topic_and_meter_id_rejects(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    char topic[300];
    const char *ok = "{\"ts\": 1522206000000, \"value\": 5}";
    enpi_batch_t *b;

    (void)state;
    assert_int_equal(one(p, "other/topic", ok), ENPI_REJECT_NO_INPUT);
    assert_int_equal(one(p, "enpi/f1/em/extra", ok), ENPI_REJECT_NO_INPUT);
    assert_int_equal(one(p, "enpi/f1/a\tb", ok), ENPI_REJECT_BAD_METER_ID);
    assert_int_equal(one(p, "enpi/f1/\xff", ok), ENPI_REJECT_BAD_METER_ID);
    /* the rendered id "f1/" + 126 bytes = 129 bytes: too long; 125 bytes: 128, fine */
    snprintf(topic, sizeof(topic), "enpi/f1/%0126d", 7);
    assert_int_equal(one(p, topic, ok), ENPI_REJECT_BAD_METER_ID);
    snprintf(topic, sizeof(topic), "enpi/f1/%0125d", 7);
    assert_int_equal(one(p, topic, ok), ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one(p, "enpi/f2/em", ok), ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one(p, "enpi/f2/em", ok), ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one(p, "enpi/f2/em", "not json at all"), ENPI_REJECT_PARSE);
    b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, 2);
    for (size_t i = 0; i < b->n_unknown; i++) {
        if (strcmp(b->unknown[i].meter_id, "f2/em") == 0) {
            assert_int_equal(b->unknown[i].count, 2);
            assert_string_equal(b->unknown[i].last_topic, "enpi/f2/em");
        } else {
            assert_int_equal(strlen(b->unknown[i].meter_id), 128);
            assert_int_equal(b->unknown[i].count, 1);
        }
    }
    assert_int_equal(b->n_meters, 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void unknown_table_is_bounded_per_batch(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    char topic[64];
    enpi_batch_t *b;

    (void)state;
    for (int i = 0; i < ENPI_UNKNOWN_MAX + 6; i++) {
        snprintf(topic, sizeof(topic), "enpi/x/m%d", i);
        ingest_reading(p, (uint64_t)i, topic, A, 1, A);
    }
    ingest_reading(p, 5000, "enpi/x/m3", A, 1, A); /* already listed: counted there */
    ingest_reading(p, 5001, "enpi/x/m9999", A, 1, A);
    assert_int_equal(rejects(p, ENPI_REJECT_UNKNOWN_METER), ENPI_UNKNOWN_MAX + 8);
    b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, ENPI_UNKNOWN_MAX);
    assert_int_equal(b->unknown_overflow, 7);
    enpi_batch_free(b);
    /* a new batch has room again */
    ingest_reading(p, 6000, "enpi/x/m9999", A, 1, A);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, 1);
    assert_int_equal(b->unknown_overflow, 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void arithmetic_rejects_through_ingest(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    char buf[128];

    (void)state;
    /* too_late: a delta reading 1 h 1 ms older than the newest */
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 1}", (long long)A);
    assert_int_equal(one(p, "enpi/f1/gas", buf), ENPI_REJECT__COUNT);
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 1}", (long long)(A - HOUR_MS - 1));
    assert_int_equal(one(p, "enpi/f1/gas", buf), ENPI_REJECT_TOO_LATE);
    /* implausible: max_rate 10 per hour; 2.6 in 15 minutes is 10.4 */
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 100}", (long long)(A - HOUR_MS));
    assert_int_equal(one(p, "enpi/f1/rate", buf), ENPI_REJECT__COUNT);
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 102.6}", (long long)(A - 45 * MIN_MS));
    assert_int_equal(one(p, "enpi/f1/rate", buf), ENPI_REJECT_IMPLAUSIBLE);
    snprintf(buf, sizeof(buf), "{\"ts\": %lld, \"value\": 102.5}", (long long)(A - 45 * MIN_MS));
    assert_int_equal(one(p, "enpi/f1/rate", buf), ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/rate")->rejected, 1);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/gas")->rejected, 1);
    enpi_pipeline_free(p);
}

static void number_payloads_are_stamped_on_arrival(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "sh1");
    enpi_batch_t *b;

    (void)state;
    ingest_str(p, 0, "shellies/sh1/emeter/0/total", "1000.5", A);
    assert_int_equal(st->last_ts_ms, A);
    ingest_str(p, 1, "shellies/sh1/emeter/0/total", " 1002.25\n", A + MIN_MS);
    assert_int_equal(st->last_ts_ms, A + MIN_MS);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "12 kWh"), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "inf"), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "-1"), ENPI_REJECT_NEGATIVE);
    b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_close(must_rollup(b, "sh1", RES_1H, utc_ms(2018, 3, 28, 3, 0, 0))->delta.value, 1.75);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void meter_ids_from_the_payload(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);

    (void)state;
    ingest_str(p, 0, "gw/site1",
               "[{\"id\": \"f1/em\", \"ts\": 1522206000000, \"value\": 5},"
               " {\"id\": \"sh1\", \"ts\": 1522206000000, \"value\": 7},"
               " {\"id\": \"nope\", \"value\": 1},"
               " {\"value\": 1},"
               " 42,"
               " {\"id\": [1], \"value\": 1}]",
               A);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 6);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 2);
    assert_true(enpi_pipeline_meter_state(p, "f1/em")->last_raw == 5);
    assert_true(enpi_pipeline_meter_state(p, "sh1")->last_raw == 7);
    assert_int_equal(rejects(p, ENPI_REJECT_UNKNOWN_METER), 1);
    /* no id in the payload, and the topic gives none: bad id; so does an array id */
    assert_int_equal(rejects(p, ENPI_REJECT_BAD_METER_ID), 2);
    assert_int_equal(rejects(p, ENPI_REJECT_PARSE), 1); /* the bare 42 */
    enpi_pipeline_free(p);
}

static void a_truncated_protobuf_batch_is_a_parse_error(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const char *const *filters;

    (void)state;
    assert_int_equal(enpi_pipeline_filters(p, &filters), 4);
    assert_string_equal(filters[0], "enpi/+/+");
    assert_string_equal(filters[1], "shellies/+/emeter/0/total");
    assert_string_equal(filters[2], "gw/+");
    assert_string_equal(filters[3], "pb/+");
    assert_int_equal(one(p, "pb/f1", "\x0a\x03"), ENPI_REJECT_PARSE);
    enpi_pipeline_free(p);
}

static void creation_fails_cleanly_on_an_unknown_zone(void **state)
{
    enpi_config_t *bad = config_from_yaml("timezone: UTC\n"
                                          "inputs:\n"
                                          "  - topic: \"a/{meter}\"\n"
                                          "facilities:\n"
                                          "  - id: f1\n"
                                          "    meters:\n"
                                          "      - { id: m1, kind: energy }\n");
    enpi_pipeline_t *p = NULL;
    char err[256] = "";

    (void)state;
    /* the config checks zones itself; simulate one tzdata lost since */
    free(bad->facilities[0].timezone);
    bad->facilities[0].timezone = strdup("Mars/Olympus_Mons");
    assert_int_equal(enpi_pipeline_create(bad, &p, err, sizeof(err)), ENPI_ENOENT);
    assert_null(p);
    assert_non_null(strstr(err, "Mars/Olympus_Mons"));
    enpi_config_free(bad);
}

/* Issue 3: every reject counts per reason and per input (the first matching input); the
 * per-input counts sum to the global ones, except no_input, which belongs to no input. */
static void rejects_count_per_input(void **state)
{
    enpi_config_t *two = config_from_yaml("timezone: UTC\n"
                                          "pipeline:\n"
                                          "  resolutions: [1h]\n"
                                          "  max_future: 5m\n"
                                          "inputs:\n"
                                          "  - topic: \"enpi/{facility}/{meter}\"\n"
                                          "    meter_id: \"{facility}/{meter}\"\n"
                                          "  - topic: \"shellies/{meter}/emeter/0/total\"\n"
                                          "    format: number\n"
                                          "facilities:\n"
                                          "  - id: f1\n"
                                          "    meters:\n"
                                          "      - { id: f1/em, kind: energy, reading: cumulative }\n"
                                          "      - { id: sh1, kind: energy, reading: cumulative }\n");
    enpi_pipeline_t *p;
    enpi_input_stats_t in[2], bad;
    const enpi_pipeline_stats_t *s;

    (void)state;
    assert_non_null(two);
    p = pipeline_from(two);
    assert_int_equal(enpi_pipeline_n_inputs(p), 2);

    /* input 0 (json): 6 messages, 5 rejected, 1 applied */
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"val"), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000}"), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000}"), ENPI_REJECT_MISSING_VALUE);
    assert_int_equal(one(p, "enpi/f1/nope", "{\"ts\": 1522206000000, \"value\": 1}"),
                     ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1622206000000, \"value\": 1}"),
                     ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, "enpi/f1/em", "{\"ts\": 1522206000000, \"value\": 1}"),
                     ENPI_REJECT__COUNT);
    /* input 1 (number): 5 messages, 4 rejected, 1 applied */
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "abc"), ENPI_REJECT_PARSE);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "-3"), ENPI_REJECT_NEGATIVE);
    assert_int_equal(one(p, "shellies/zz/emeter/0/total", "12"), ENPI_REJECT_UNKNOWN_METER);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "12"), ENPI_REJECT__COUNT);
    assert_int_equal(one(p, "shellies/sh1/emeter/0/total", "1e999"), ENPI_REJECT_NOT_FINITE);
    /* no input: global only */
    assert_int_equal(one(p, "elsewhere/x", "1"), ENPI_REJECT_NO_INPUT);
    assert_int_equal(one(p, "elsewhere/y", "1"), ENPI_REJECT_NO_INPUT);
    /* enpi_pipeline_apply() readings belong to no input either */
    assert_int_equal(enpi_pipeline_apply(p, "ghost", 5, A, 1, A, NULL), -1);

    assert_int_equal(enpi_pipeline_input_stats(p, 0, &in[0]), 0);
    assert_int_equal(enpi_pipeline_input_stats(p, 1, &in[1]), 0);
    assert_int_equal(enpi_pipeline_input_stats(p, 2, &bad), ENPI_ERANGE);
    assert_int_equal(enpi_pipeline_input_stats(p, (size_t)-1, &bad), ENPI_ERANGE);

    assert_int_equal(in[0].messages, 6);
    assert_int_equal(in[0].rejects[ENPI_REJECT_PARSE], 1);
    assert_int_equal(in[0].rejects[ENPI_REJECT_MISSING_VALUE], 2);
    assert_int_equal(in[0].rejects[ENPI_REJECT_UNKNOWN_METER], 1);
    assert_int_equal(in[0].rejects[ENPI_REJECT_FUTURE], 1);
    assert_int_equal(in[0].rejects[ENPI_REJECT_NEGATIVE], 0);
    assert_int_equal(in[0].rejects[ENPI_REJECT_NO_INPUT], 0);

    assert_int_equal(in[1].messages, 5);
    assert_int_equal(in[1].rejects[ENPI_REJECT_PARSE], 1);
    assert_int_equal(in[1].rejects[ENPI_REJECT_NEGATIVE], 1);
    assert_int_equal(in[1].rejects[ENPI_REJECT_UNKNOWN_METER], 1);
    assert_int_equal(in[1].rejects[ENPI_REJECT_NOT_FINITE], 1);
    assert_int_equal(in[1].rejects[ENPI_REJECT_MISSING_VALUE], 0);
    assert_int_equal(in[1].rejects[ENPI_REJECT_NO_INPUT], 0);

    s = enpi_pipeline_stats(p);
    assert_int_equal(s->messages, in[0].messages + in[1].messages + 2);
    for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
        uint64_t extra = r == ENPI_REJECT_NO_INPUT ? 2 : r == ENPI_REJECT_UNKNOWN_METER ? 1 : 0;
        assert_int_equal(s->rejects[r], in[0].rejects[r] + in[1].rejects[r] + extra);
    }
    enpi_pipeline_free(p);
    enpi_config_free(two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reject_names_are_stable),
        cmocka_unit_test(payload_and_value_rejects_count_against_the_meter),
        cmocka_unit_test(payload_size_limit_is_256_kib),
        cmocka_unit_test(topic_and_meter_id_rejects),
        cmocka_unit_test(unknown_table_is_bounded_per_batch),
        cmocka_unit_test(arithmetic_rejects_through_ingest),
        cmocka_unit_test(number_payloads_are_stamped_on_arrival),
        cmocka_unit_test(meter_ids_from_the_payload),
        cmocka_unit_test(a_truncated_protobuf_batch_is_a_parse_error),
        cmocka_unit_test(creation_fails_cleanly_on_an_unknown_zone),
        cmocka_unit_test(rejects_count_per_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
