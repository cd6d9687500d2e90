/*
 * test_import_csv.c - the CSV reader of `enpi import`: header forms, quoting, line numbers
 * in messages (CRLF, blank lines, quoted newlines), sorting, and every refusal.
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
#include "import_csv.h"

/* Meters named "m..." are configured; timestamps are plain integers here. */
static int fake_time(void *ctx, const char *meter_id, const char *text, int64_t *out_ms,
                     char *err, size_t errlen)
{
    (void)ctx;
    if (meter_id[0] != 'm')
        return ENPI_ENOENT;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0') {
        snprintf(err, errlen, "want digits");
        return ENPI_EPARSE;
    }
    *out_ms = v;
    return 0;
}

static int parse(const char *text, enpi_import_set_t *set, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    int rc = enpi_import_parse(f, "in.csv", fake_time, NULL, set, err, errlen);
    fclose(f);
    return rc;
}

static void reads_sorts_and_ignores_other_columns(void **state)
{
    enpi_import_set_t s;
    char err[256];
    (void)state;
    assert_int_equal(parse("Value, Meter_ID ,ts,unit\r\n"
                           "2.5,m2,20,kWh\r\n"
                           "\"1.25\",\"m1\",30,kWh\r\n"
                           "\r\n"
                           "7,m2,10,\"k\"\"Wh\"\r\n",
                           &s, err, sizeof err),
                     0);
    assert_int_equal(s.n_meters, 2);
    assert_string_equal(s.meters[0], "m2");
    assert_string_equal(s.meters[1], "m1");
    assert_int_equal(s.n_readings, 3);
    assert_int_equal(s.readings[0].meter, 0); /* m2 at 10 (line 5), then m2 at 20 */
    assert_int_equal(s.readings[0].ts_ms, 10);
    assert_int_equal(s.readings[0].line, 5);
    assert_true(s.readings[0].value == 7.0);
    assert_int_equal(s.readings[1].ts_ms, 20);
    assert_int_equal(s.readings[1].line, 2);
    assert_int_equal(s.readings[2].meter, 1);
    assert_true(s.readings[2].value == 1.25);
    enpi_import_set_free(&s);
}

/* Each refusal names the line of the offending record. */
static void expect_error(const char *text, int rc_want, const char *needle)
{
    enpi_import_set_t s;
    char err[256];
    int rc = parse(text, &s, err, sizeof err);
    if (rc != rc_want || strstr(err, needle) == NULL)
        fail_msg("input %s: rc %d, err \"%s\"; want rc %d and \"%s\"", text, rc, err, rc_want,
                 needle);
    assert_int_equal(s.n_readings, 0);
    assert_null(s.readings);
}

static void refusals_name_file_and_line(void **state)
{
    (void)state;
    expect_error("meter,timestamp,value\nm1,1,1\n\nm1,2,x\n", ENPI_EPARSE, "in.csv:4: value");
    expect_error("meter,timestamp,value\nm1,1,1\nm1,soon,2\n", ENPI_EPARSE,
                 "in.csv:3: timestamp \"soon\": want digits");
    expect_error("meter,timestamp,value\n\"m1\nstill m1\",1,1\nq,2,2\n", ENPI_ENOENT,
                 "in.csv:4: meter \"q\" is not configured");
    expect_error("meter,timestamp,value\nm1,1,inf\n", ENPI_EPARSE, "not a finite number");
    expect_error("meter,timestamp,value\nm1,1\n", ENPI_EINVAL, "in.csv:2: 2 column(s)");
    expect_error("meter,time,value\nm1,1,1\n", ENPI_EINVAL, "in.csv:1: the header must name");
    expect_error("meter,ts,timestamp,value\n", ENPI_EINVAL, "given twice");
    expect_error("", ENPI_EINVAL, "empty file");
    expect_error("meter,timestamp,value\nm1,5,1\nm1,6,2\nm1,5,1\n", ENPI_EINVAL,
                 "in.csv:4: meter \"m1\" has a second reading at the instant of line 2");
    expect_error("meter,timestamp,value\nm1,1,\"1\n", ENPI_EPARSE, "not valid CSV");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_sorts_and_ignores_other_columns),
        cmocka_unit_test(refusals_name_file_and_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
