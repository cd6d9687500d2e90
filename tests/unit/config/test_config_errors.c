/*
 * test_config_errors.c - every class of configuration error, each with the exact
 * "FILE:LINE: message" an operator sees and the code returned (ENPI_EPARSE for YAML
 * syntax, ENPI_EINVAL for validation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "test_config.h"

typedef struct {
    const char *yaml;
    int rc;
    const char *message;
} error_case_t;

static void expect_error(const error_case_t *ec)
{
    char err[512] = "";
    enpi_config_t *c = (enpi_config_t *)err; /* must come back NULL */
    int rc = test_parse(ec->yaml, &c, err, sizeof(err));
    if (rc != ec->rc || strcmp(err, ec->message) != 0)
        print_error("yaml:\n%s\nexpected (%d) %s\n     got (%d) %s\n", ec->yaml, ec->rc,
                    ec->message, rc, err);
    assert_int_equal(rc, ec->rc);
    assert_string_equal(err, ec->message);
    assert_null(c);
}

static void run_cases(const error_case_t *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(&cases[i]);
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void unknown_keys_name_line_and_section(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"timezone: UTC\n\ncomit: 1\n", ENPI_EINVAL,
         "enpid.yaml:3: unknown key 'comit' at top level"},
        {"timezone: UTC\nstorage:\n  path: /x\n  comit_interval: 1s\n", ENPI_EINVAL,
         "enpid.yaml:4: unknown key 'comit_interval' in storage (did you mean 'commit_interval'?)"},
        {"mqtt:\n  tls:\n    ca_file: a\n    verify: no\n", ENPI_EINVAL,
         "enpid.yaml:4: unknown key 'verify' in mqtt.tls"},
        {"pipeline: { resolution: [1h] }\n", ENPI_EINVAL,
         "enpid.yaml:1: unknown key 'resolution' in pipeline (did you mean 'resolutions'?)"},
        {"inputs:\n  - topic: a/{meter}\n    fromat: json\n", ENPI_EINVAL,
         "enpid.yaml:3: unknown key 'fromat' in input 'a/{meter}' (did you mean 'format'?)"},
        {"facilities:\n  - id: f1\n    meters:\n      - id: m1\n        kind: energy\n"
         "        unit: kWh\n",
         ENPI_EINVAL, "enpid.yaml:6: unknown key 'unit' in meter 'm1'"},
        {"facilities:\n  - id: f1\n    baseline: { from: 2017-01-01, to: 2018-01-01, modle: sec "
         "}\n",
         ENPI_EINVAL,
         "enpid.yaml:3: unknown key 'modle' in facility 'f1' baseline (did you mean 'model'?)"},
        {"programme:\n  period: { from: 2018-01-01, until: 2019-01-01 }\n", ENPI_EINVAL,
         "enpid.yaml:2: unknown key 'until' in programme.period"},
        {"metrics:\n  port: 9465\n", ENPI_EINVAL, "enpid.yaml:2: unknown key 'port' in metrics"},
    };
    RUN(cases);
}

static void repeated_keys_are_errors(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"mqtt:\n  qos: 1\n  uri: tcp://h\n  qos: 0\n", ENPI_EINVAL,
         "enpid.yaml:4: key 'qos' is given twice in mqtt (first at line 2)"},
        {"timezone: UTC\nmqtt: {}\ntimezone: UTC\n", ENPI_EINVAL,
         "enpid.yaml:3: key 'timezone' is given twice at top level (first at line 1)"},
    };
    RUN(cases);
}

static void yaml_syntax_errors_have_lines(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"timezone: UTC\nmqtt:\n  qos: 1\n uri: x\n", ENPI_EPARSE,
         "enpid.yaml:4: YAML syntax error: did not find expected key (while parsing a block "
         "mapping started at line 1)"},
        {"storage:\n  path: \"unterminated\n", ENPI_EPARSE,
         "enpid.yaml:3: YAML syntax error: found unexpected end of stream (while scanning a "
         "quoted scalar started at line 2)"},
        {"a: 1\n\tb: 2\n", ENPI_EPARSE,
         "enpid.yaml:2: YAML syntax error: found a tab character that violates indentation (while "
         "scanning a plain scalar started at line 1)"},
        {"timezone: UTC\r\nmqtt:\r\n  qos: 1\r\n uri: x\r\n", ENPI_EPARSE,
         "enpid.yaml:4: YAML syntax error: did not find expected key (while parsing a block "
         "mapping started at line 1)"},
        {"timezone: UTC\n---\ntimezone: UTC\n", ENPI_EPARSE,
         "enpid.yaml:2: only one YAML document is allowed (found a second one)"},
        {"? [a, b]\n: 1\n", ENPI_EPARSE,
         "enpid.yaml:1: a mapping key must be a plain value, not a list"},
        {"timezone: UTC\nname: \"\xff\"\n", ENPI_EPARSE,
         "enpid.yaml:2: YAML syntax error: invalid leading UTF-8 octet"},
    };
    RUN(cases);
}

static void bad_values_name_their_line(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        /* durations */
        {"pipeline:\n  allowed_lateness: 1h\n\n  max_gap: 15x\n", ENPI_EINVAL,
         "enpid.yaml:4: pipeline.max_gap: invalid duration '15x' (use e.g. 30s, 15m, 1h, 1d, 1mo)"},
        {"storage: { commit_interval: 5ms }\n", ENPI_EINVAL,
         "enpid.yaml:1: storage.commit_interval: '5ms' is outside 10ms..1h"},
        {"storage: { commit_interval: 2h }\n", ENPI_EINVAL,
         "enpid.yaml:1: storage.commit_interval: '2h' is outside 10ms..1h"},
        {"pipeline: { max_gap: 1mo }\n", ENPI_EINVAL,
         "enpid.yaml:1: pipeline.max_gap: '1mo' is a calendar duration; use a fixed one (e.g. "
         "30s, 15m, 1h, 1d)"},
        {"mqtt: { keepalive: 500ms }\n", ENPI_EINVAL,
         "enpid.yaml:1: mqtt.keepalive: '500ms' must be whole seconds from 1s to 65535s"},
        /* resolutions */
        {"pipeline:\n  resolutions: [15m, 1h, 1mo, 7m]\n", ENPI_EINVAL,
         "enpid.yaml:2: pipeline.resolutions: invalid resolution '7m': a fixed resolution must "
         "divide 24h evenly (e.g. 5m, 15m, 1h, 1d)"},
        {"pipeline:\n  resolutions:\n    - 1h\n    - 2mo\n", ENPI_EINVAL,
         "enpid.yaml:4: pipeline.resolutions: invalid resolution '2mo': calendar resolutions "
         "other than 1mo are not supported"},
        {"pipeline:\n  resolutions:\n    - 2d\n", ENPI_EINVAL,
         "enpid.yaml:3: pipeline.resolutions: invalid resolution '2d': a fixed resolution must "
         "divide 24h evenly (e.g. 5m, 15m, 1h, 1d)"},
        {"pipeline:\n  resolutions: [30s]\n", ENPI_EINVAL,
         "enpid.yaml:2: pipeline.resolutions: invalid resolution '30s': a fixed resolution must "
         "be a whole number of minutes"},
        {"pipeline:\n  resolutions:\n    - 1h\n    - 60m\n", ENPI_EINVAL,
         "enpid.yaml:4: pipeline.resolutions: '60m' is listed twice (first at line 3)"},
        {"pipeline:\n  resolutions: [1m, 2m, 3m, 4m, 5m, 6m, 8m, 10m, 12m]\n", ENPI_EINVAL,
         "enpid.yaml:2: pipeline.resolutions: at most 8 resolutions"},
        {"pipeline:\n  resolutions: []\n", ENPI_EINVAL,
         "enpid.yaml:2: pipeline.resolutions must list at least one resolution"},
        {"pipeline:\n  resolutions: 1h\n", ENPI_EINVAL,
         "enpid.yaml:2: pipeline.resolutions must be a list, not a value"},
        /* retention */
        {"storage:\n  retention: { 15m: 400d, 5m: 1d }\n", ENPI_EINVAL,
         "enpid.yaml:2: storage.retention: 5m is not one of pipeline.resolutions"},
        {"storage:\n  retention:\n    1h: 30m\n", ENPI_EINVAL,
         "enpid.yaml:3: storage.retention: keeping 1h rollups for 30m is shorter than one window"},
        {"storage:\n  retention:\n    1h: 1y\n    60m: 2y\n", ENPI_EINVAL,
         "enpid.yaml:4: storage.retention: resolution '60m' is given twice (first at line 3)"},
        /* dates */
        {"programme:\n  period:\n    from: 2018-02-30\n    to: 2019-01-01\n", ENPI_EINVAL,
         "enpid.yaml:3: programme.period from: invalid date '2018-02-30' (use ISO 8601, e.g. "
         "2018-01-01 or 2018-03-28T10:00:00)"},
        {"facilities:\n  - id: f1\n    aware_since: 1/2/2018\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' aware_since: invalid date '1/2/2018' (use ISO 8601, e.g. "
         "2018-01-01 or 2018-03-28T10:00:00)"},
        {"programme:\n  period: { from: 2019-01-01, to: 2018-01-01 }\n", ENPI_EINVAL,
         "enpid.yaml:2: programme.period: from (2019-01-01) must be before to (2018-01-01)"},
        {"programme:\n  period: { from: 2019-01-01 }\n", ENPI_EINVAL,
         "enpid.yaml:2: programme.period needs both from and to (e.g. { from: 2017-01-01, to: "
         "2018-01-01 })"},
        {"facilities:\n  - id: f1\n    baseline:\n      from: 2018-01-01\n      to: 2018-01-01\n",
         ENPI_EINVAL,
         "enpid.yaml:5: facility 'f1' baseline: from (2018-01-01) must be before to (2018-01-01)"},
        /* time zones */
        {"timezone: Mars/Olympus_Mons\n", ENPI_EINVAL,
         "enpid.yaml:1: timezone: 'Mars/Olympus_Mons' is not a known IANA zone (no zone file "
         "/usr/share/zoneinfo/Mars/Olympus_Mons)"},
        {"facilities:\n  - id: f1\n    timezone: ../../etc/passwd\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' timezone: '../../etc/passwd' is not an IANA zone name "
         "(e.g. Asia/Ho_Chi_Minh, UTC)"},
        {"timezone: /etc/localtime\n", ENPI_EINVAL,
         "enpid.yaml:1: timezone: '/etc/localtime' is not an IANA zone name (e.g. "
         "Asia/Ho_Chi_Minh, UTC)"},
        {"timezone: zone.tab\n", ENPI_EINVAL,
         "enpid.yaml:1: timezone: 'zone.tab' is not a known IANA zone (no zone file "
         "/usr/share/zoneinfo/zone.tab)"},
        {"timezone: Asia\n", ENPI_EINVAL,
         "enpid.yaml:1: timezone: 'Asia' is not a known IANA zone (no zone file "
         "/usr/share/zoneinfo/Asia)"},
        /* percentages */
        {"programme:\n  name: p\n  target_saving: 8 %\n", ENPI_EINVAL,
         "enpid.yaml:3: programme.target_saving: invalid percentage '8 %' (use 0 to 100, e.g. 8% "
         "or 8)"},
        {"programme:\n  aware_increase_pp: 120\n", ENPI_EINVAL,
         "enpid.yaml:2: programme.aware_increase_pp: invalid percentage '120' (use 0 to 100, "
         "e.g. 8% or 8)"},
        {"programme:\n  stretch_saving: -1%\n", ENPI_EINVAL,
         "enpid.yaml:2: programme.stretch_saving: invalid percentage '-1%' (use 0 to 100, e.g. "
         "8% or 8)"},
        {"programme:\n  target_saving: 10\n  stretch_saving: 5\n", ENPI_EINVAL,
         "enpid.yaml:3: programme.stretch_saving (5%) must not be below target_saving (10%)"},
        /* mqtt */
        {"mqtt:\n  qos: 3\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.qos: invalid value '3' (use 0, 1 or 2)"},
        {"mqtt:\n  version: 4\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.version: invalid value '4' (use 3 (MQTT 3.1.1) or 5)"},
        {"mqtt:\n  clean_session: maybe\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.clean_session: invalid boolean 'maybe' (use true or false)"},
        {"mqtt:\n  uri: http://broker\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.uri: invalid URI 'http://broker' (use e.g. tcp://127.0.0.1:1883 or "
         "ssl://broker:8883)"},
        {"mqtt:\n  uri: tcp://broker:1883\n  tls: { ca_file: /etc/ca.pem }\n", ENPI_EINVAL,
         "enpid.yaml:3: mqtt.tls is set but mqtt.uri 'tcp://broker:1883' is not a TLS URI (use "
         "ssl://host:8883)"},
        {"mqtt:\n  uri: ssl://b\n  tls:\n    key_file: k.pem\n", ENPI_EINVAL,
         "enpid.yaml:4: mqtt.tls.key_file is set but cert_file is not (a client key needs its "
         "certificate)"},
        {"mqtt:\n  client_id: \"\"\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.client_id must not be empty"},
        {"mqtt:\n  username: [a, b]\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.username must be a single value, not a list"},
        {"mqtt:\n  reconnect_max: 500ms\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.reconnect_max: '500ms' must be from 1s to 1h"},
        {"mqtt:\n  reconnect_max: 2h\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.reconnect_max: '2h' must be from 1s to 1h"},
        {"mqtt:\n  session_expiry: 1d\n", ENPI_EINVAL,
         "enpid.yaml:2: mqtt.session_expiry needs mqtt.version: 5 (MQTT 3.1.1 has no session "
         "expiry: a persistent session lasts until the broker drops it)"},
        {"mqtt:\n  version: 5\n  session_expiry: 1500ms\n", ENPI_EINVAL,
         "enpid.yaml:3: mqtt.session_expiry: '1500ms' must be whole seconds below 4294967295s, "
         "or never"},
        {"mqtt: tcp://broker\n", ENPI_EINVAL,
         "enpid.yaml:1: expected a mapping (key: value) in mqtt, not a value"},
        {"metrics:\n  listen: 9465\n", ENPI_EINVAL,
         "enpid.yaml:2: metrics.listen: invalid address '9465' (use host:port, e.g. "
         "127.0.0.1:9465)"},
        {"metrics:\n  listen: localhost:99999\n", ENPI_EINVAL,
         "enpid.yaml:2: metrics.listen: invalid address 'localhost:99999' (use host:port, e.g. "
         "127.0.0.1:9465)"},
        {"- a\n- b\n", ENPI_EINVAL,
         "enpid.yaml:1: the configuration must be a mapping of sections (timezone:, mqtt:, "
         "storage:, ...), not a list"},
    };
    RUN(cases);
}

static void meter_errors(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"facilities:\n"
         "  - id: f001\n"
         "    meters:\n"
         "      - { id: f001/em1, kind: energy }\n"
         "  - id: f002\n"
         "    meters:\n"
         "      - { id: f002/em1, kind: energy }\n"
         "      - { id: f001/em1, kind: energy }\n",
         ENPI_EINVAL, "enpid.yaml:8: meter 'f001/em1' is defined twice (first at line 4)"},
        {"facilities:\n  - id: f001\n  - id: f002\n  - id: f001\n", ENPI_EINVAL,
         "enpid.yaml:4: facility 'f001' is defined twice (first at line 2)"},
        {"facilities:\n  - id: f1\n    meters:\n      - id: f1/m\n        reading: delta\n",
         ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' has no kind (add kind: energy or kind: production)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: water }\n", ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' kind: unknown kind 'water' (use energy or production)"},
        {"facilities:\n  - id: f1\n    meters:\n      - id: f1/m\n        kind: energy\n"
         "        interval: 15m\n",
         ENPI_EINVAL,
         "enpid.yaml:6: meter 'f1/m': interval applies only to delta meters (reading: delta)"},
        {"facilities:\n  - id: f1\n    meters:\n      - id: f1/m\n        kind: energy\n"
         "        reading: delta\n        interval: 1mo\n",
         ENPI_EINVAL,
         "enpid.yaml:7: meter 'f1/m' interval: '1mo' is a calendar duration; use a fixed one "
         "(e.g. 30s, 15m, 1h, 1d)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, reading: sum }\n",
         ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' reading: unknown reading 'sum' (use cumulative or delta)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/p, kind: production, to_kwh: 2 "
         "}\n",
         ENPI_EINVAL, "enpid.yaml:4: meter 'f1/p': to_kwh applies only to energy meters"},
        {"facilities:\n  - id: f1\n    meters:\n      - id: f1/m\n        kind: energy\n"
         "        reading: delta\n        rollover: 1000\n",
         ENPI_EINVAL, "enpid.yaml:7: meter 'f1/m': rollover applies only to cumulative meters"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, scale: 0 }\n",
         ENPI_EINVAL, "enpid.yaml:4: meter 'f1/m' scale must be greater than 0, not '0'"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, to_kwh: -2 }\n",
         ENPI_EINVAL, "enpid.yaml:4: meter 'f1/m' to_kwh must be greater than 0, not '-2'"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, max_rate: .nan "
         "}\n",
         ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' max_rate: invalid number '.nan' (use a decimal number, e.g. "
         "10.55)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, rollover: 1e999 "
         "}\n",
         ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' rollover: invalid number '1e999' (use a decimal number, e.g. "
         "10.55)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: f1/m, kind: energy, scale: 0x10 }\n",
         ENPI_EINVAL,
         "enpid.yaml:4: meter 'f1/m' scale: invalid number '0x10' (use a decimal number, e.g. "
         "10.55)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { kind: energy }\n", ENPI_EINVAL,
         "enpid.yaml:4: meter 1 of facility 'f1' has no id"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: \"a\\tb\", kind: energy }\n",
         ENPI_EINVAL, "enpid.yaml:4: meter id 'a?b' contains a control character (byte 2)"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: \"\", kind: energy }\n", ENPI_EINVAL,
         "enpid.yaml:4: meter id '' is empty"},
        {"facilities:\n  - id: f1\n    meters:\n      - { id: \"\\x85x\", kind: energy }\n",
         ENPI_EINVAL, "enpid.yaml:4: meter id '\xc2\x85x' contains a control character (byte 1)"},
        {"facilities:\n  - name: nameless\n", ENPI_EINVAL,
         "enpid.yaml:2: facilities entry 1 has no id"},
        {"facilities:\n  - id: f1\n    meters: { id: m }\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' meters must be a list, not a mapping"},
        {"facilities:\n  -\n", ENPI_EINVAL,
         "enpid.yaml:2: facilities entry 1 is empty (give at least an id)"},
        /* baselines */
        {"facilities:\n  - id: f1\n    baseline: { sec: 412.5, from: 2017-01-01 }\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' baseline: give either { sec: N } or { from, to, model }, "
         "not both"},
        {"facilities:\n  - id: f1\n    baseline: { from: 2017-01-01, to: 2018-01-01, model: avg "
         "}\n",
         ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' baseline model: unknown model 'avg' (use sec or regression)"},
        {"facilities:\n  - id: f1\n    baseline: { model: sec }\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' baseline needs a period { from, to } or a fixed { sec: N }"},
        {"facilities:\n  - id: f1\n    baseline: { sec: 0 }\n", ENPI_EINVAL,
         "enpid.yaml:3: facility 'f1' baseline sec must be greater than 0, not '0'"},
    };
    RUN(cases);
}

static void input_errors(void **state)
{
    (void)state;
    static const error_case_t cases[] = {
        {"inputs:\n  - topic: \"a/x{meter}\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/x{meter}' topic: level 'x{meter}': a {name} capture must be a "
         "whole topic level, e.g. 'a/{meter}/b'"},
        {"inputs:\n  - topic: \"a/{meter}x/b\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/{meter}x/b' topic: level '{meter}x': a {name} capture must be a "
         "whole topic level, e.g. 'a/{meter}/b'"},
        {"inputs:\n  - topic: \"a/{m}{n}\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/{m}{n}' topic: level '{m}{n}': a {name} capture must be a "
         "whole topic level, e.g. 'a/{meter}/b'"},
        {"inputs:\n  - topic: \"a/{meter}/{meter}\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/{meter}/{meter}' topic: capture '{meter}' appears twice"},
        {"inputs:\n  - topic: \"a/{me-ter}\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/{me-ter}' topic: capture name '{me-ter}' must be letters, "
         "digits or '_'"},
        {"inputs:\n  - topic: \"a/#/b\"\n    format: sparkplug\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/#/b' topic: '#' must be the whole last topic level"},
        {"inputs:\n  - topic: \"a/b+/{meter}\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'a/b+/{meter}' topic: '+' must be a whole topic level"},
        {"inputs:\n  - topic: a/{meter}\n    format: xml\n", ENPI_EINVAL,
         "enpid.yaml:3: input 'a/{meter}' format: unknown format 'xml' (use json, protobuf, "
         "tasmota, sparkplug or number)"},
        {"inputs:\n  - topic: a/{meter}\n    format: number\n    value: v\n", ENPI_EINVAL,
         "enpid.yaml:4: input 'a/{meter}': 'value' applies only to format json"},
        {"inputs:\n  - topic: a/{meter}\n    format: tasmota\n    timestamp: Time\n", ENPI_EINVAL,
         "enpid.yaml:4: input 'a/{meter}': 'timestamp' applies only to format json"},
        {"inputs:\n  - topic: a/+\n    format: number\n    meter_id_path: id\n", ENPI_EINVAL,
         "enpid.yaml:4: input 'a/+': 'meter_id_path' applies only to format json"},
        {"inputs:\n  - topic: a/{meter}\n    value: data..v\n", ENPI_EINVAL,
         "enpid.yaml:3: input 'a/{meter}' value: the path has an empty part (write e.g. "
         "'ENERGY.Total')"},
        {"inputs:\n  - topic: \"enpi/{site}/{meter}\"\n    meter_id: \"{facility}/{meter}\"\n",
         ENPI_EINVAL,
         "enpid.yaml:3: input 'enpi/{site}/{meter}' meter_id: '{facility}' is not captured by "
         "the topic"},
        {"inputs:\n  - topic: \"enpi/{meter}\"\n    meter_id: \"x/{meter\"\n", ENPI_EINVAL,
         "enpid.yaml:3: input 'enpi/{meter}' meter_id: '{' without a matching '}'"},
        {"inputs:\n  - topic: \"enpi/{device}\"\n    format: number\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'enpi/{device}': the topic has no {meter} capture, so the meter id "
         "is unknown (add {meter} to the topic, or set meter_id)"},
        {"inputs:\n  - topic: \"enpi/+\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input 'enpi/+': the topic has no {meter} capture, so the meter id is "
         "unknown (add {meter} to the topic, or set meter_id or meter_id_path)"},
        {"inputs:\n  - topic: \"\"\n", ENPI_EINVAL,
         "enpid.yaml:2: input '' topic must not be empty"},
        {"inputs:\n  - format: json\n", ENPI_EINVAL, "enpid.yaml:2: inputs entry 1 has no topic"},
        {"inputs:\n  - { topic: \"a/{meter}\" }\n  - { topic: \"b/{meter}\" }\n"
         "  - { topic: \"a/{meter}\" }\n",
         ENPI_EINVAL, "enpid.yaml:4: input topic 'a/{meter}' is given twice (first at line 2)"},
        {"inputs:\n  topic: a/{meter}\n", ENPI_EINVAL,
         "enpid.yaml:2: inputs must be a list, not a mapping"},
    };
    RUN(cases);
}

int test_config_errors_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_keys_name_line_and_section),
        cmocka_unit_test(repeated_keys_are_errors),
        cmocka_unit_test(yaml_syntax_errors_have_lines),
        cmocka_unit_test(bad_values_name_their_line),
        cmocka_unit_test(meter_errors),
        cmocka_unit_test(input_errors),
    };
    return cmocka_run_group_tests_name("config: errors", tests, NULL, NULL);
}
