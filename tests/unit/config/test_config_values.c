/*
 * test_config_values.c - the accepted forms of values (durations, percentages, booleans,
 * ids, templates) at their edges, and how messages behave at theirs (small buffers,
 * long values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "test_config.h"

static enpi_config_t *parse_ok(const char *yaml)
{
    char err[512] = "";
    enpi_config_t *c = NULL;
    int rc = test_parse(yaml, &c, err, sizeof(err));
    if (rc != 0)
        print_error("yaml:\n%s\n%s\n", yaml, err);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    return c;
}

static void month_and_day_dividing_resolutions_are_accepted(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("pipeline:\n  resolutions: [1mo, 1d, 4h, 90m, 1m, 12h]\n");
    assert_int_equal(c->pipeline.n_resolutions, 6);
    assert_int_equal(c->pipeline.resolutions[0].months, 1);
    assert_int_equal(c->pipeline.resolutions[0].ms, 0);
    assert_int_equal(c->pipeline.resolutions[3].ms, 90 * 60000);
    assert_int_equal(c->pipeline.resolutions[5].ms, 12 * 3600000);
    enpi_config_free(c);
    /* 24h and 1d are the same resolution. */
    char err[256];
    assert_int_equal(test_parse("pipeline: { resolutions: [1d, 24h] }\n", &c, err, sizeof(err)),
                     ENPI_EINVAL);
    assert_string_equal(err, "enpid.yaml:1: pipeline.resolutions: '24h' is listed twice (first "
                             "at line 1)");
}

static void zero_lateness_and_future_are_allowed(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("pipeline: { allowed_lateness: 0, max_future: 0s }\n");
    assert_int_equal(c->pipeline.allowed_lateness_ms, 0);
    assert_int_equal(c->pipeline.max_future_ms, 0);
    enpi_config_free(c);
    char err[256];
    assert_int_equal(test_parse("pipeline: { max_gap: 0 }\n", &c, err, sizeof(err)), ENPI_EINVAL);
    assert_string_equal(err, "enpid.yaml:1: pipeline.max_gap: invalid duration '0' (use e.g. "
                             "30s, 15m, 1h, 1d, 1mo)");
}

static void percentages_with_and_without_sign(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("programme:\n  target_saving: 0%\n  stretch_saving: 100\n"
                                "  aware_increase_pp: \"12.5%\"\n  applying_increase_pp: 7.25\n");
    assert_true(c->programme.target_saving_pct == 0);
    assert_true(c->programme.stretch_saving_pct == 100);
    assert_true(c->programme.aware_increase_pp == 12.5);
    assert_true(c->programme.applying_increase_pp == 7.25);
    enpi_config_free(c);
}

static void booleans_accept_common_spellings(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true},   {"True", true},   {"yes", true}, {"on", true},
                 {"false", false}, {"FALSE", false}, {"no", false}, {"off", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[64];
        snprintf(yaml, sizeof(yaml), "mqtt: { clean_session: %s }\n", cases[i].text);
        enpi_config_t *c = parse_ok(yaml);
        assert_int_equal(c->mqtt.clean_session, cases[i].value);
        enpi_config_free(c);
    }
}

static void meter_ids_up_to_128_bytes_of_utf8(void **state)
{
    (void)state;
    char id[200];
    memset(id, 'a', 128);
    id[128] = '\0';
    char yaml[512];
    snprintf(
        yaml, sizeof(yaml),
        "facilities:\n  - id: \"Nhà máy 1\"\n    meters:\n"
        "      - { id: \"%s\", kind: energy }\n      - { id: \"điện/tầng 2\", kind: energy }\n",
        id);
    enpi_config_t *c = parse_ok(yaml);
    assert_int_equal(strlen(c->facilities[0].meters[0].id), 128);
    assert_string_equal(c->facilities[0].meters[1].id, "điện/tầng 2");
    assert_string_equal(c->facilities[0].id, "Nhà máy 1");
    enpi_config_free(c);

    id[128] = 'a';
    id[129] = '\0';
    snprintf(yaml, sizeof(yaml),
             "facilities:\n  - id: f\n    meters:\n      - { id: %s, kind: energy }\n", id);
    char err[512];
    assert_int_equal(test_parse(yaml, &c, err, sizeof(err)), ENPI_EINVAL);
    /* The value is shown cut to 77 bytes and "...". */
    char expect[512];
    snprintf(expect, sizeof(expect),
             "enpid.yaml:4: meter id '%.77s...' is 129 bytes long (at most 128)", id);
    assert_string_equal(err, expect);
}

static void numeric_looking_ids_stay_text(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("facilities:\n  - id: 001\n    meters:\n"
                                "      - { id: 0x1F, kind: production }\n"
                                "      - { id: 'true', kind: production }\n");
    assert_string_equal(c->facilities[0].id, "001");
    assert_string_equal(c->facilities[0].meters[0].id, "0x1F");
    assert_string_equal(c->facilities[0].meters[1].id, "true");
    enpi_config_free(c);
}

static void payload_carried_ids_need_no_meter_capture(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("inputs:\n"
                                "  - { topic: \"spBv1.0/plant/#\", format: sparkplug }\n"
                                "  - { topic: enpi/batch, format: protobuf }\n"
                                "  - { topic: \"gw/{gw}/json\", meter_id_path: dev.id }\n"
                                "  - { topic: \"site/{site}/{dev}\", meter_id: \"{site}-{dev}\" }\n"
                                "  - { topic: \"plant/boiler/total\", meter_id: \"f1/steam\", "
                                "format: number }\n");
    assert_int_equal(c->n_inputs, 5);
    assert_string_equal(c->inputs[0].meter_id, "{meter}");
    assert_string_equal(c->inputs[2].meter_id_path, "dev.id");
    assert_string_equal(c->inputs[3].meter_id, "{site}-{dev}");
    assert_string_equal(c->inputs[4].meter_id, "f1/steam");
    enpi_config_free(c);
}

static void tls_block_with_ssl_uri(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("mqtt:\n  uri: mqtts://broker\n  tls: {}\n");
    assert_true(c->mqtt.has_tls);
    assert_null(c->mqtt.tls.ca_file);
    assert_false(c->mqtt.tls.insecure);
    enpi_config_free(c);
    c = parse_ok("mqtt:\n  uri: ssl://broker:8883\n");
    assert_false(c->mqtt.has_tls);
    enpi_config_free(c);
}

static void mqtt_reconnect_and_session_expiry(void **state)
{
    (void)state;
    enpi_config_t *c = parse_ok("mqtt:\n  reconnect_max: 5s\n");
    assert_int_equal(c->mqtt.reconnect_max_ms, 5000);
    assert_int_equal(c->mqtt.session_expiry_s, -1);
    enpi_config_free(c);
    c = parse_ok("mqtt:\n  version: 5\n  session_expiry: 7d\n");
    assert_int_equal(c->mqtt.session_expiry_s, 7 * 86400);
    enpi_config_free(c);
    c = parse_ok("mqtt:\n  version: 5\n  session_expiry: 0s\n");
    assert_int_equal(c->mqtt.session_expiry_s, 0);
    enpi_config_free(c);
    c = parse_ok("mqtt:\n  version: 5\n  session_expiry: never\n  reconnect_max: 1h\n");
    assert_int_equal(c->mqtt.session_expiry_s, 0xFFFFFFFFLL);
    assert_int_equal(c->mqtt.reconnect_max_ms, 3600000);
    enpi_config_free(c);
}

static void small_error_buffers_are_terminated(void **state)
{
    (void)state;
    char err[16];
    memset(err, 'x', sizeof(err));
    enpi_config_t *c = NULL;
    assert_int_equal(test_parse("bogus: 1\n", &c, err, sizeof(err)), ENPI_EINVAL);
    assert_string_equal(err, "enpid.yaml:1: u");
    char one[1] = {'x'};
    assert_int_equal(test_parse("bogus: 1\n", &c, one, sizeof(one)), ENPI_EINVAL);
    assert_int_equal(one[0], '\0');
}

static void deep_nesting_is_refused_not_crashed(void **state)
{
    (void)state;
    size_t depth = 100;
    char *yaml = malloc(depth * 2 + 16);
    assert_non_null(yaml);
    char *p = yaml;
    p += sprintf(p, "x: ");
    for (size_t i = 0; i < depth; i++)
        *p++ = '[';
    for (size_t i = 0; i < depth; i++)
        *p++ = ']';
    *p++ = '\n';
    *p = '\0';
    char err[256];
    enpi_config_t *c = NULL;
    assert_int_equal(test_parse(yaml, &c, err, sizeof(err)), ENPI_EPARSE);
    assert_string_equal(err, "enpid.yaml:1: nesting deeper than 64 levels");
    free(yaml);
}

int test_config_values_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(month_and_day_dividing_resolutions_are_accepted),
        cmocka_unit_test(zero_lateness_and_future_are_allowed),
        cmocka_unit_test(percentages_with_and_without_sign),
        cmocka_unit_test(booleans_accept_common_spellings),
        cmocka_unit_test(meter_ids_up_to_128_bytes_of_utf8),
        cmocka_unit_test(numeric_looking_ids_stay_text),
        cmocka_unit_test(payload_carried_ids_need_no_meter_capture),
        cmocka_unit_test(tls_block_with_ssl_uri),
        cmocka_unit_test(mqtt_reconnect_and_session_expiry),
        cmocka_unit_test(small_error_buffers_are_terminated),
        cmocka_unit_test(deep_nesting_is_refused_not_crashed),
    };
    return cmocka_run_group_tests_name("config: values", tests, NULL, NULL);
}
