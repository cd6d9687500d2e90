/*
 * test_cli_args.c - `enpi` option parsing (forms, errors), time arguments in a facility's
 * zone or with an offset, and resolution arguments checked against the configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "args.h"
#include "enpi_error.h"

typedef struct {
    const char *from;
    const char *to;
    bool unknown;
    bool help;
} parsed_t;

static int parse(parsed_t *p, int argc, char **argv, bool stop, int *idx, char *err)
{
    const enpi_cli_opt_t opts[] = {
        {"from", 0, true, &p->from, NULL},
        {"to", 0, true, &p->to, NULL},
        {"unknown", 0, false, NULL, &p->unknown},
        {"help", 'h', false, NULL, &p->help},
    };
    memset(p, 0, sizeof *p);
    *idx = 0;
    return enpi_cli_parse_opts(argc, argv, idx, opts, 4, stop, err, 256);
}

static void options_take_both_value_forms_and_flags(void **state)
{
    (void)state;
    char *argv[] = {"--from", "2018-01-01", "--to=2018-02-01", "--unknown", "-h"};
    parsed_t p;
    int idx;
    char err[256];
    assert_int_equal(parse(&p, 5, argv, false, &idx, err), 0);
    assert_string_equal(p.from, "2018-01-01");
    assert_string_equal(p.to, "2018-02-01");
    assert_true(p.unknown);
    assert_true(p.help);
    assert_int_equal(idx, 5);
}

static void options_stop_at_operand_or_reject_it(void **state)
{
    (void)state;
    char *argv[] = {"--unknown", "query", "--from", "x"};
    parsed_t p;
    int idx;
    char err[256];
    assert_int_equal(parse(&p, 4, argv, true, &idx, err), 0);
    assert_int_equal(idx, 1);
    assert_true(p.unknown);
    assert_null(p.from);

    assert_int_equal(parse(&p, 4, argv, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "unexpected argument 'query'");

    char *dashdash[] = {"--", "--from"};
    assert_int_equal(parse(&p, 2, dashdash, true, &idx, err), 0);
    assert_int_equal(idx, 1);
    assert_null(p.from);
}

static void option_errors_name_the_option(void **state)
{
    (void)state;
    parsed_t p;
    int idx;
    char err[256];
    char *unknown[] = {"--form=2018"};
    assert_int_equal(parse(&p, 1, unknown, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "unknown option '--form'");
    char *shorty[] = {"-x"};
    assert_int_equal(parse(&p, 1, shorty, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "unknown option '-x'");
    char *missing[] = {"--unknown", "--to"};
    assert_int_equal(parse(&p, 2, missing, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "option '--to' needs a value");
    char *twice[] = {"--to", "a", "--to=b"};
    assert_int_equal(parse(&p, 3, twice, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "option '--to' given twice");
    char *flagval[] = {"--unknown=yes"};
    assert_int_equal(parse(&p, 1, flagval, false, &idx, err), ENPI_EINVAL);
    assert_string_equal(err, "option '--unknown' takes no value");
    char *prefix[] = {"--fro", "x"}; /* no abbreviations */
    assert_int_equal(parse(&p, 2, prefix, false, &idx, err), ENPI_EINVAL);
}

/* 2018-03-28T00:00:00Z */
#define T0 1522195200000LL
#define HOUR 3600000LL

static void times_read_in_zone_unless_offset(void **state)
{
    (void)state;
    enpi_tz_t *hcm, *berlin;
    assert_int_equal(enpi_tz_open("Asia/Ho_Chi_Minh", &hcm), 0);
    assert_int_equal(enpi_tz_open("Europe/Berlin", &berlin), 0);
    int64_t t;
    assert_int_equal(enpi_cli_parse_time("2018-03-28", hcm, &t), 0);
    assert_true(t == T0 - 7 * HOUR);
    assert_int_equal(enpi_cli_parse_time("2018-03-28T10:30", hcm, &t), 0);
    assert_true(t == T0 + 3 * HOUR + 30 * 60000);
    assert_int_equal(enpi_cli_parse_time("2018-03-28T10:00:00+02:00", hcm, &t), 0);
    assert_true(t == T0 + 8 * HOUR);
    assert_int_equal(enpi_cli_parse_time("2018-03-28T00:00:00Z", berlin, &t), 0);
    assert_true(t == T0);
    /* Berlin is on summer time (+02:00) from 2018-03-25 */
    assert_int_equal(enpi_cli_parse_time("2018-03-28", berlin, &t), 0);
    assert_true(t == T0 - 2 * HOUR);
    assert_int_equal(enpi_cli_parse_time("2018-01-15", berlin, &t), 0);
    assert_true(t == T0 - 72LL * 24 * HOUR - 1 * HOUR);

    assert_int_equal(enpi_cli_parse_time("yesterday", hcm, &t), ENPI_EPARSE);
    assert_int_equal(enpi_cli_parse_time("2018-02-30", hcm, &t), ENPI_EPARSE);
    assert_int_equal(enpi_cli_parse_time("2018-03-28T10:00:00+07:00 ", hcm, &t), ENPI_EPARSE);
    assert_int_equal(enpi_cli_parse_time("", hcm, &t), ENPI_EPARSE);
    enpi_tz_free(hcm);
    enpi_tz_free(berlin);
}

static void resolutions_must_be_configured(void **state)
{
    (void)state;
    enpi_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.pipeline.resolutions[0] = (enpi_duration_t){15 * 60000, 0};
    cfg.pipeline.resolutions[1] = (enpi_duration_t){HOUR, 0};
    cfg.pipeline.resolutions[2] = (enpi_duration_t){24 * HOUR, 0};
    cfg.pipeline.resolutions[3] = (enpi_duration_t){0, 1};
    cfg.pipeline.n_resolutions = 4;
    enpi_duration_t d;
    char err[256];
    assert_int_equal(enpi_cli_parse_resolution("1h", &cfg, &d, err, sizeof err), 0);
    assert_true(d.ms == HOUR && d.months == 0);
    assert_int_equal(enpi_cli_parse_resolution("60m", &cfg, &d, err, sizeof err), 0);
    assert_true(d.ms == HOUR);
    assert_int_equal(enpi_cli_parse_resolution("1mo", &cfg, &d, err, sizeof err), 0);
    assert_true(d.ms == 0 && d.months == 1);
    assert_int_equal(enpi_cli_parse_resolution("2h", &cfg, &d, err, sizeof err), ENPI_ENOENT);
    assert_string_equal(err, "resolution '2h' is not configured (configured: 15m, 1h, 1d, 1mo)");
    assert_int_equal(enpi_cli_parse_resolution("hourly", &cfg, &d, err, sizeof err), ENPI_EPARSE);
    assert_string_equal(err, "bad resolution 'hourly' (configured: 15m, 1h, 1d, 1mo)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_take_both_value_forms_and_flags),
        cmocka_unit_test(options_stop_at_operand_or_reject_it),
        cmocka_unit_test(option_errors_name_the_option),
        cmocka_unit_test(times_read_in_zone_unless_offset),
        cmocka_unit_test(resolutions_must_be_configured),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
