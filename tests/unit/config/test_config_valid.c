/*
 * test_config_valid.c - valid configurations read field by field: a file using every
 * key (block and flow style), the defaults of an empty file, the shipped example, load
 * from disk, and the lookups by id.
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

/* Every key of SPEC §3 plus our extensions; line numbers matter for `line` fields. */
static const char full_yaml[] =
    "timezone: Asia/Ho_Chi_Minh\n"              /* 1 */
    "mqtt:\n"                                   /* 2 */
    "  uri: ssl://broker.example:8883\n"        /* 3 */
    "  client_id: enpid-test\n"                 /* 4 */
    "  clean_session: true\n"                   /* 5 */
    "  qos: 2\n"                                /* 6 */
    "  keepalive: 1m\n"                         /* 7 */
    "  username: meter-gw\n"                    /* 8 */
    "  password_file: /etc/enpid/mqtt.secret\n" /* 9 */
    "  tls: { ca_file: /etc/ca.pem, cert_file: /etc/c.pem, key_file: /etc/c.key, "
    "insecure: true }\n"                                                      /* 10 */
    "  version: 5\n"                                                          /* 11 */
    "storage:\n"                                                              /* 12 */
    "  path: /srv/enpid\n"                                                    /* 13 */
    "  commit_interval: 250ms\n"                                              /* 14 */
    "  retention:\n"                                                          /* 15 */
    "    15m: 400d\n"                                                         /* 16 */
    "    1h: 5y\n"                                                            /* 17 */
    "pipeline:\n"                                                             /* 18 */
    "  resolutions:\n"                                                        /* 19 */
    "    - 5m\n"                                                              /* 20 */
    "    - 15m\n"                                                             /* 21 */
    "    - 1h\n"                                                              /* 22 */
    "    - 1d\n"                                                              /* 23 */
    "    - 1mo\n"                                                             /* 24 */
    "  allowed_lateness: 2h\n"                                                /* 25 */
    "  max_future: 10m\n"                                                     /* 26 */
    "  max_gap: 3h\n"                                                         /* 27 */
    "metrics:\n"                                                              /* 28 */
    "  listen: \"[::1]:9465\"\n"                                              /* 29 */
    "inputs:\n"                                                               /* 30 */
    "  - topic: \"enpi/{facility}/{meter}\"\n"                                /* 31 */
    "    meter_id: \"{facility}/{meter}\"\n"                                  /* 32 */
    "    format: json\n"                                                      /* 33 */
    "    value: data.kwh\n"                                                   /* 34 */
    "    timestamp: data.time\n"                                              /* 35 */
    "  - { topic: \"gw/+/batch\", format: json, meter_id_path: id }\n"        /* 36 */
    "  - topic: tele/{meter}/SENSOR\n"                                        /* 37 */
    "    format: tasmota\n"                                                   /* 38 */
    "  - { topic: \"spBv1.0/#\", format: sparkplug }\n"                       /* 39 */
    "  - { topic: \"enpi/pb\", format: protobuf }\n"                          /* 40 */
    "  - { topic: \"shellies/{meter}/emeter/0/total\", format: number }\n"    /* 41 */
    "  - { topic: \"plant/boiler\", meter_id: f002/steam, format: number }\n" /* 42 */
    "programme:\n"                                                            /* 43 */
    "  name: \"Mê Linh cleaner production 2018\"\n"                           /* 44 */
    "  period: { from: 2018-01-01, to: 2019-01-01 }\n"                        /* 45 */
    "  target_saving: 8.5%\n"                                                 /* 46 */
    "  stretch_saving: 13\n"                                                  /* 47 */
    "  aware_increase_pp: 20\n"                                               /* 48 */
    "  applying_increase_pp: 10%\n"                                           /* 49 */
    "facilities:\n"                                                           /* 50 */
    "  - id: f001\n"                                                          /* 51 */
    "    name: \"Công ty ABC\"\n"                                             /* 52 */
    "    product_unit: t\n"                                                   /* 53 */
    "    aware_since: 2018-02-01\n"                                           /* 54 */
    "    applying_since: 2018-06-01T08:30:00+07:00\n"                         /* 55 */
    "    baseline: { from: 2017-01-01, to: 2018-01-01, model: regression }\n" /* 56 */
    "    meters:\n"                                                           /* 57 */
    "      - { id: f001/em1,  kind: energy, carrier: electricity, reading: cumulative, "
    "scale: 0.001, rollover: 99999999, max_rate: 5000 }\n" /* 58 */
    "      - { id: f001/gas,  kind: energy, carrier: gas, to_kwh: 10.55, reading: delta, "
    "interval: 15m }\n"                                                  /* 59 */
    "      - id: f001/prod\n"                                            /* 60 */
    "        kind: production\n"                                         /* 61 */
    "        reading: cumulative\n"                                      /* 62 */
    "        rollover: 1000000\n"                                        /* 63 */
    "  - id: f002\n"                                                     /* 64 */
    "    timezone: Asia/Bangkok\n"                                       /* 65 */
    "    baseline: { sec: 412.5 }\n"                                     /* 66 */
    "    meters: [ { id: f002/steam, kind: energy, reading: delta } ]\n" /* 67 */
    "  - id: f003\n"                                                     /* 68 */
    "    baseline: { from: 2017-01-01, to: 2017-07-01 }\n";              /* 69 */

static void dur_equal(enpi_duration_t d, int64_t ms, int months)
{
    assert_int_equal(d.ms, ms);
    assert_int_equal(d.months, months);
}

static void date_equal(const enpi_civil_t *c, int y, int m, int d)
{
    assert_int_equal(c->year, y);
    assert_int_equal(c->month, m);
    assert_int_equal(c->day, d);
}

static void full_config_reads_every_key(void **state)
{
    (void)state;
    char err[512] = "";
    enpi_config_t *c = NULL;
    int rc = test_parse(full_yaml, &c, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_string_equal(c->path, "enpid.yaml");
    assert_string_equal(c->timezone, "Asia/Ho_Chi_Minh");

    /* mqtt */
    assert_string_equal(c->mqtt.uri, "ssl://broker.example:8883");
    assert_string_equal(c->mqtt.client_id, "enpid-test");
    assert_true(c->mqtt.clean_session);
    assert_int_equal(c->mqtt.qos, 2);
    assert_int_equal(c->mqtt.keepalive_ms, 60000);
    assert_string_equal(c->mqtt.username, "meter-gw");
    assert_string_equal(c->mqtt.password_file, "/etc/enpid/mqtt.secret");
    assert_true(c->mqtt.has_tls);
    assert_string_equal(c->mqtt.tls.ca_file, "/etc/ca.pem");
    assert_string_equal(c->mqtt.tls.cert_file, "/etc/c.pem");
    assert_string_equal(c->mqtt.tls.key_file, "/etc/c.key");
    assert_true(c->mqtt.tls.insecure);
    assert_int_equal(c->mqtt.mqtt_version, 5);

    /* storage */
    assert_string_equal(c->storage.path, "/srv/enpid");
    assert_int_equal(c->storage.commit_interval_ms, 250);
    assert_int_equal(c->storage.n_retention, 2);
    dur_equal(c->storage.retention[0].resolution, 15 * 60000, 0);
    dur_equal(c->storage.retention[0].keep, 400 * 86400000LL, 0);
    assert_int_equal(c->storage.retention[0].line, 16);
    dur_equal(c->storage.retention[1].resolution, 3600000, 0);
    dur_equal(c->storage.retention[1].keep, 0, 60);
    assert_int_equal(c->storage.retention[1].line, 17);

    /* pipeline */
    assert_int_equal(c->pipeline.n_resolutions, 5);
    dur_equal(c->pipeline.resolutions[0], 5 * 60000, 0);
    dur_equal(c->pipeline.resolutions[1], 15 * 60000, 0);
    dur_equal(c->pipeline.resolutions[2], 3600000, 0);
    dur_equal(c->pipeline.resolutions[3], 86400000, 0);
    dur_equal(c->pipeline.resolutions[4], 0, 1);
    assert_int_equal(c->pipeline.allowed_lateness_ms, 2 * 3600000);
    assert_int_equal(c->pipeline.max_future_ms, 10 * 60000);
    assert_int_equal(c->pipeline.max_gap_ms, 3 * 3600000);

    assert_string_equal(c->metrics_listen, "[::1]:9465");

    /* inputs */
    assert_int_equal(c->n_inputs, 7);
    const enpi_input_cfg_t *in = &c->inputs[0];
    assert_string_equal(in->topic, "enpi/{facility}/{meter}");
    assert_string_equal(in->meter_id, "{facility}/{meter}");
    assert_int_equal(in->format, ENPI_FORMAT_JSON);
    assert_string_equal(in->value_path, "data.kwh");
    assert_string_equal(in->timestamp_path, "data.time");
    assert_null(in->meter_id_path);
    assert_int_equal(in->line, 31);
    in = &c->inputs[1];
    assert_string_equal(in->topic, "gw/+/batch");
    assert_string_equal(in->meter_id, "{meter}");
    assert_string_equal(in->meter_id_path, "id");
    assert_string_equal(in->value_path, "value");
    assert_string_equal(in->timestamp_path, "ts");
    assert_int_equal(in->line, 36);
    in = &c->inputs[2];
    assert_string_equal(in->topic, "tele/{meter}/SENSOR");
    assert_string_equal(in->meter_id, "{meter}");
    assert_int_equal(in->format, ENPI_FORMAT_TASMOTA);
    assert_null(in->value_path);
    assert_null(in->timestamp_path);
    assert_int_equal(c->inputs[3].format, ENPI_FORMAT_SPARKPLUG);
    assert_string_equal(c->inputs[3].topic, "spBv1.0/#");
    assert_int_equal(c->inputs[4].format, ENPI_FORMAT_PROTOBUF);
    assert_int_equal(c->inputs[5].format, ENPI_FORMAT_NUMBER);
    assert_string_equal(c->inputs[6].meter_id, "f002/steam");
    assert_int_equal(c->inputs[6].line, 42);

    /* programme */
    assert_string_equal(c->programme.name, "Mê Linh cleaner production 2018");
    assert_true(c->programme.has_period);
    date_equal(&c->programme.period_from, 2018, 1, 1);
    date_equal(&c->programme.period_to, 2019, 1, 1);
    assert_false(c->programme.period_from.has_time);
    assert_true(c->programme.target_saving_pct == 8.5);
    assert_true(c->programme.stretch_saving_pct == 13);
    assert_true(c->programme.aware_increase_pp == 20);
    assert_true(c->programme.applying_increase_pp == 10);

    /* facilities */
    assert_int_equal(c->n_facilities, 3);
    const enpi_facility_cfg_t *f = &c->facilities[0];
    assert_string_equal(f->id, "f001");
    assert_string_equal(f->name, "Công ty ABC");
    assert_string_equal(f->product_unit, "t");
    assert_string_equal(f->timezone, "Asia/Ho_Chi_Minh");
    assert_true(f->has_aware_since);
    date_equal(&f->aware_since, 2018, 2, 1);
    assert_true(f->has_applying_since);
    date_equal(&f->applying_since, 2018, 6, 1);
    assert_true(f->applying_since.has_time);
    assert_int_equal(f->applying_since.hour, 8);
    assert_int_equal(f->applying_since.minute, 30);
    assert_true(f->applying_since.has_offset);
    assert_int_equal(f->applying_since.offset_s, 7 * 3600);
    assert_int_equal(f->baseline.model, ENPI_BASELINE_REGRESSION);
    assert_true(f->baseline.has_period);
    date_equal(&f->baseline.from, 2017, 1, 1);
    date_equal(&f->baseline.to, 2018, 1, 1);
    assert_false(f->baseline.has_fixed_sec);
    assert_int_equal(f->line, 51);

    assert_int_equal(f->n_meters, 3);
    const enpi_meter_cfg_t *m = &f->meters[0];
    assert_string_equal(m->id, "f001/em1");
    assert_int_equal(m->kind, ENPI_KIND_ENERGY);
    assert_string_equal(m->carrier, "electricity");
    assert_int_equal(m->reading, ENPI_READING_CUMULATIVE);
    assert_int_equal(m->interval_ms, 0);
    assert_true(m->scale == 0.001);
    assert_true(m->to_kwh == 1);
    assert_true(m->rollover == 99999999);
    assert_true(m->max_rate == 5000);
    assert_int_equal(m->line, 58);
    m = &f->meters[1];
    assert_string_equal(m->id, "f001/gas");
    assert_string_equal(m->carrier, "gas");
    assert_true(m->to_kwh == 10.55);
    assert_int_equal(m->reading, ENPI_READING_DELTA);
    assert_int_equal(m->interval_ms, 15 * 60000);
    assert_true(m->scale == 1);
    assert_true(m->rollover == 0);
    assert_true(m->max_rate == 0);
    m = &f->meters[2];
    assert_string_equal(m->id, "f001/prod");
    assert_int_equal(m->kind, ENPI_KIND_PRODUCTION);
    assert_null(m->carrier);
    assert_true(m->rollover == 1000000);
    assert_int_equal(m->line, 60);

    f = &c->facilities[1];
    assert_string_equal(f->id, "f002");
    assert_string_equal(f->name, "f002");
    assert_null(f->product_unit);
    assert_string_equal(f->timezone, "Asia/Bangkok");
    assert_false(f->has_aware_since);
    assert_false(f->has_applying_since);
    assert_int_equal(f->baseline.model, ENPI_BASELINE_SEC);
    assert_true(f->baseline.has_fixed_sec);
    assert_true(f->baseline.fixed_sec == 412.5);
    assert_false(f->baseline.has_period);
    assert_int_equal(f->n_meters, 1);
    assert_string_equal(f->meters[0].id, "f002/steam");
    assert_int_equal(f->meters[0].reading, ENPI_READING_DELTA);
    assert_int_equal(f->meters[0].interval_ms, 0);

    f = &c->facilities[2];
    assert_int_equal(f->baseline.model, ENPI_BASELINE_SEC); /* model defaults to sec */
    assert_true(f->baseline.has_period);
    date_equal(&f->baseline.to, 2017, 7, 1);
    assert_int_equal(f->n_meters, 0);
    assert_null(f->meters);

    enpi_config_free(c);
}

static void empty_config_has_every_default(void **state)
{
    (void)state;
    static const char *const empties[] = {"", "# only a comment\n", "---\n", "~\n", "{}\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        char err[256] = "x";
        enpi_config_t *c = NULL;
        assert_int_equal(test_parse(empties[i], &c, err, sizeof(err)), 0);
        assert_string_equal(err, "");
        assert_string_equal(c->timezone, "UTC");
        assert_string_equal(c->mqtt.uri, "tcp://127.0.0.1:1883");
        assert_string_equal(c->mqtt.client_id, "enpid");
        assert_false(c->mqtt.clean_session);
        assert_int_equal(c->mqtt.qos, 1);
        assert_int_equal(c->mqtt.keepalive_ms, 30000);
        assert_null(c->mqtt.username);
        assert_null(c->mqtt.password_file);
        assert_false(c->mqtt.has_tls);
        assert_false(c->mqtt.tls.insecure);
        assert_int_equal(c->mqtt.mqtt_version, 3);
        assert_int_equal(c->mqtt.reconnect_max_ms, 60000);
        assert_int_equal(c->mqtt.session_expiry_s, -1);
        assert_string_equal(c->storage.path, "/var/lib/enpid");
        assert_int_equal(c->storage.commit_interval_ms, 1000);
        assert_int_equal(c->storage.n_retention, 0);
        assert_int_equal(c->pipeline.n_resolutions, 4);
        dur_equal(c->pipeline.resolutions[0], 15 * 60000, 0);
        dur_equal(c->pipeline.resolutions[1], 3600000, 0);
        dur_equal(c->pipeline.resolutions[2], 86400000, 0);
        dur_equal(c->pipeline.resolutions[3], 0, 1);
        assert_int_equal(c->pipeline.allowed_lateness_ms, 3600000);
        assert_int_equal(c->pipeline.max_future_ms, 300000);
        assert_int_equal(c->pipeline.max_gap_ms, 3600000);
        assert_null(c->metrics_listen);
        assert_int_equal(c->n_inputs, 0);
        assert_null(c->programme.name);
        assert_false(c->programme.has_period);
        assert_true(c->programme.target_saving_pct == 8);
        assert_true(c->programme.stretch_saving_pct == 13);
        assert_true(c->programme.aware_increase_pp == 0);
        assert_true(c->programme.applying_increase_pp == 0);
        assert_int_equal(c->n_facilities, 0);
        enpi_config_free(c);
    }
}

static void null_sections_keep_defaults(void **state)
{
    (void)state;
    char err[256];
    enpi_config_t *c = NULL;
    assert_int_equal(test_parse("mqtt:\nstorage: ~\nmetrics: { listen: }\ninputs:\n"
                                "facilities: []\n",
                                &c, err, sizeof(err)),
                     0);
    assert_string_equal(c->mqtt.uri, "tcp://127.0.0.1:1883");
    assert_null(c->metrics_listen);
    assert_int_equal(c->n_facilities, 0);
    enpi_config_free(c);
}

static void facility_timezone_defaults_to_top_level(void **state)
{
    (void)state;
    char err[256];
    enpi_config_t *c = NULL;
    assert_int_equal(test_parse("facilities:\n  - id: a\n  - id: b\n    timezone: Europe/Berlin\n"
                                "timezone: Asia/Tokyo\n",
                                &c, err, sizeof(err)),
                     0);
    assert_string_equal(c->facilities[0].timezone, "Asia/Tokyo");
    assert_string_equal(enpi_config_facility_tz(c, &c->facilities[0]), "Asia/Tokyo");
    assert_string_equal(enpi_config_facility_tz(c, &c->facilities[1]), "Europe/Berlin");
    assert_string_equal(enpi_config_facility_tz(c, NULL), "Asia/Tokyo");
    enpi_config_free(c);
}

static void lookups_find_facilities_and_meters(void **state)
{
    (void)state;
    char err[512];
    enpi_config_t *c = NULL;
    assert_int_equal(test_parse(full_yaml, &c, err, sizeof(err)), 0);
    const enpi_facility_cfg_t *f = enpi_config_facility(c, "f002");
    assert_non_null(f);
    assert_string_equal(f->id, "f002");
    assert_null(enpi_config_facility(c, "f999"));

    const enpi_facility_cfg_t *owner = NULL;
    const enpi_meter_cfg_t *m = enpi_config_meter(c, "f002/steam", &owner);
    assert_non_null(m);
    assert_string_equal(m->id, "f002/steam");
    assert_ptr_equal(owner, f);
    m = enpi_config_meter(c, "f001/gas", NULL);
    assert_non_null(m);
    assert_true(m->to_kwh == 10.55);
    owner = f;
    assert_null(enpi_config_meter(c, "f001", &owner));
    assert_null(owner);
    enpi_config_free(c);
}

static void example_file_loads_cleanly(void **state)
{
    (void)state;
    char err[512] = "";
    enpi_config_t *c = NULL;
    int rc = enpi_config_load(ENPI_EXAMPLE_YAML, &c, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(c->path, ENPI_EXAMPLE_YAML);
    assert_string_equal(c->timezone, "Asia/Ho_Chi_Minh");
    assert_int_equal(c->mqtt.qos, 1);
    assert_int_equal(c->mqtt.mqtt_version, 3);
    assert_null(c->mqtt.username); /* commented out in the example: no broker login */
    assert_null(c->mqtt.password_file);
    assert_false(c->mqtt.has_tls);
    assert_int_equal(c->storage.n_retention, 2);
    assert_int_equal(c->pipeline.n_resolutions, 4);
    assert_string_equal(c->metrics_listen, "127.0.0.1:9465");
    assert_int_equal(c->n_inputs, 4);
    assert_int_equal(c->inputs[2].format, ENPI_FORMAT_SPARKPLUG);
    assert_string_equal(c->programme.name, "Mê Linh cleaner production 2018");
    assert_int_equal(c->n_facilities, 1);
    assert_int_equal(c->facilities[0].n_meters, 3);
    assert_int_equal(c->facilities[0].baseline.model, ENPI_BASELINE_SEC);
    const enpi_meter_cfg_t *gas = enpi_config_meter(c, "f001/gas", NULL);
    assert_non_null(gas);
    assert_int_equal(gas->interval_ms, 15 * 60000);

    /* Round trip: the text the daemon stores parses to the same configuration. */
    FILE *fp = fopen(ENPI_EXAMPLE_YAML, "rb");
    assert_non_null(fp);
    char *text = malloc(1 << 16);
    assert_non_null(text);
    size_t n = fread(text, 1, 1 << 16, fp);
    fclose(fp);
    enpi_config_t *again = NULL;
    assert_int_equal(enpi_config_parse("stored", text, n, &again, err, sizeof(err)), 0);
    assert_string_equal(again->path, "stored");
    assert_int_equal(again->n_inputs, c->n_inputs);
    assert_int_equal(again->facilities[0].n_meters, c->facilities[0].n_meters);
    for (size_t i = 0; i < c->facilities[0].n_meters; i++) {
        assert_string_equal(again->facilities[0].meters[i].id, c->facilities[0].meters[i].id);
        assert_int_equal(again->facilities[0].meters[i].line, c->facilities[0].meters[i].line);
    }
    free(text);
    enpi_config_free(again);
    enpi_config_free(c);
}

static void load_reports_unreadable_file(void **state)
{
    (void)state;
    char err[256];
    enpi_config_t *c = (enpi_config_t *)&err; /* must be reset to NULL */
    assert_int_equal(enpi_config_load("/nonexistent/enpid.yaml", &c, err, sizeof(err)),
                     ENPI_ENOENT);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/enpid.yaml: cannot read: No such file or directory");
    assert_int_equal(enpi_config_load("/", &c, err, sizeof(err)), ENPI_EIO);
    assert_string_equal(err, "/: cannot read: Is a directory");
}

static void parse_takes_text_with_explicit_length(void **state)
{
    (void)state;
    char err[256];
    enpi_config_t *c = NULL;
    /* Only the first 18 bytes count: the bad key after them is never seen. */
    const char text[] = "timezone: UTC\nx: 1\nbogus: 2\n";
    assert_int_equal(enpi_config_parse("mem", text, 14, &c, err, sizeof(err)), 0);
    assert_string_equal(c->timezone, "UTC");
    enpi_config_free(c);
    assert_int_equal(enpi_config_parse("mem", text, sizeof(text) - 1, &c, err, sizeof(err)),
                     ENPI_EINVAL);
    assert_string_equal(err, "mem:2: unknown key 'x' at top level");
    /* A NULL errbuf is allowed. */
    assert_int_equal(enpi_config_parse("mem", text, sizeof(text) - 1, &c, NULL, 0), ENPI_EINVAL);
    assert_null(c);
}

static void anchors_and_aliases_are_shared(void **state)
{
    (void)state;
    char err[256];
    enpi_config_t *c = NULL;
    const char *yaml =
        "pipeline:\n  allowed_lateness: &d 45m\n  max_gap: *d\n"
        "facilities:\n  - id: a\n    meters:\n      - &m { id: a/1, kind: energy }\n";
    assert_int_equal(test_parse(yaml, &c, err, sizeof(err)), 0);
    assert_int_equal(c->pipeline.max_gap_ms, 45 * 60000);
    enpi_config_free(c);
    assert_int_equal(test_parse("a: *nope\n", &c, err, sizeof(err)), ENPI_EPARSE);
    assert_string_equal(err, "enpid.yaml:1: alias '*nope' does not refer to an earlier, complete "
                             "anchor");
}

int test_config_valid_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_reads_every_key),
        cmocka_unit_test(empty_config_has_every_default),
        cmocka_unit_test(null_sections_keep_defaults),
        cmocka_unit_test(facility_timezone_defaults_to_top_level),
        cmocka_unit_test(lookups_find_facilities_and_meters),
        cmocka_unit_test(example_file_loads_cleanly),
        cmocka_unit_test(load_reports_unreadable_file),
        cmocka_unit_test(parse_takes_text_with_explicit_length),
        cmocka_unit_test(anchors_and_aliases_are_shared),
    };
    return cmocka_run_group_tests_name("config: valid files", tests, NULL, NULL);
}
