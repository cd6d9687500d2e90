/*
 * test_cli_output.c - the CLI's result writer: shortest round-trip doubles, JSON shape and
 * key order (nested "estimated"), CSV quoting per RFC 4180, table alignment, misuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "output.h"

/* Renders o into a malloc'd string (test owns it). */
static char *render(enpi_out_t *o, int *rc_out)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    *rc_out = enpi_out_write(o, f);
    fclose(f);
    return buf;
}

static void format_double_is_shortest_round_trip(void **state)
{
    (void)state;
    char buf[32];
    enpi_out_format_double(0.1, buf, sizeof buf);
    assert_string_equal(buf, "0.1");
    enpi_out_format_double(0.1 + 0.2, buf, sizeof buf);
    assert_string_equal(buf, "0.30000000000000004");
    enpi_out_format_double(1e-12, buf, sizeof buf);
    assert_string_equal(buf, "1e-12");
    enpi_out_format_double(5.0, buf, sizeof buf);
    assert_string_equal(buf, "5.0");
    enpi_out_format_double(-1234.5, buf, sizeof buf);
    assert_string_equal(buf, "-1234.5");
    enpi_out_format_double(1.0 / 3.0, buf, sizeof buf);
    assert_string_equal(buf, "0.3333333333333333");
    assert_int_equal(enpi_out_format_double(0.1 + 0.2, buf, 8), -1);
}

static void format_double_round_trips_random_bits(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (v != v || v - v != 0) /* NaN or infinity */
            continue;
        char buf[32];
        int n = enpi_out_format_double(v, buf, sizeof buf);
        assert_true(n > 0);
        assert_true(strtod(buf, NULL) == v);
    }
}

static const enpi_out_col_t cols[] = {
    {"facility", NULL, ENPI_OUT_TEXT},
    {"start", "start", ENPI_OUT_TEXT},
    {"energy_kwh", "energy_kwh", 3},
    {"sec", "sec", 2},
    {"readings", "readings", 0},
    {"estimated.energy_kwh", "est_kwh", 3},
    {"estimated.units", "est_units", 3},
    {NULL, "note", ENPI_OUT_TEXT},
    {"late", NULL, 0},
    {"final", "final", ENPI_OUT_TEXT},
};
#define N_COLS (sizeof cols / sizeof cols[0])

static void fill(enpi_out_t *o)
{
    assert_int_equal(enpi_out_row(o), 0);
    enpi_out_str(o, "f/1,\"x\"");
    enpi_out_str(o, "2018-03-28T00:00:00+07:00");
    enpi_out_real(o, 0.1 + 0.2);
    enpi_out_null(o);
    enpi_out_uint(o, 18446744073709551615ull);
    enpi_out_real(o, 1e-12);
    enpi_out_real(o, 0.0);
    enpi_out_str(o, "table only");
    enpi_out_int(o, -3);
    enpi_out_bool(o, true);
    assert_int_equal(enpi_out_row(o), 0);
    enpi_out_str(o, "Công ty\nABC");
    enpi_out_str(o, "2018-03-28T01:00:00+07:00");
    enpi_out_real(o, 12345.6789);
    enpi_out_real(o, 2.0 / 3.0);
    enpi_out_uint(o, 7);
    enpi_out_null(o);
    enpi_out_real(o, 1.0 / 0.0); /* not finite: null */
    enpi_out_null(o);
    enpi_out_int(o, 0);
    enpi_out_bool(o, false);
}

static void json_keeps_order_nesting_and_exact_numbers(void **state)
{
    (void)state;
    enpi_out_t *o;
    assert_int_equal(enpi_out_create(ENPI_OUT_JSON, cols, N_COLS, &o), 0);
    fill(o);
    int rc;
    char *text = render(o, &rc);
    enpi_out_free(o);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(text, "\"f/1,\\\"x\\\"\"")); /* '/' not escaped */

    json_object *arr = json_tokener_parse(text);
    assert_non_null(arr);
    assert_int_equal(json_object_array_length(arr), 2);
    json_object *r0 = json_object_array_get_idx(arr, 0);
    const char *want[] = {"facility", "start",     "energy_kwh", "sec",
                          "readings", "estimated", "late",       "final"};
    size_t k = 0;
    json_object_object_foreach(r0, key, val)
    {
        (void)val;
        assert_true(k < sizeof want / sizeof want[0]);
        assert_string_equal(key, want[k]);
        k++;
    }
    assert_int_equal(k, sizeof want / sizeof want[0]);

    json_object *v;
    assert_true(json_object_object_get_ex(r0, "energy_kwh", &v));
    assert_true(json_object_is_type(v, json_type_double));
    assert_true(json_object_get_double(v) == 0.1 + 0.2);
    assert_true(json_object_object_get_ex(r0, "sec", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(r0, "readings", &v));
    assert_true(json_object_get_uint64(v) == 18446744073709551615ull);
    assert_true(json_object_object_get_ex(r0, "late", &v));
    assert_int_equal(json_object_get_int64(v), -3);
    assert_true(json_object_object_get_ex(r0, "final", &v));
    assert_true(json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v));
    json_object *est;
    assert_true(json_object_object_get_ex(r0, "estimated", &est));
    assert_true(json_object_object_get_ex(est, "energy_kwh", &v));
    assert_true(json_object_get_double(v) == 1e-12);
    assert_true(json_object_object_get_ex(est, "units", &v));
    assert_true(json_object_is_type(v, json_type_double) && json_object_get_double(v) == 0.0);

    json_object *r1 = json_object_array_get_idx(arr, 1);
    assert_true(json_object_object_get_ex(r1, "facility", &v));
    assert_string_equal(json_object_get_string(v), "Công ty\nABC");
    assert_true(json_object_object_get_ex(r1, "sec", &v));
    assert_true(json_object_get_double(v) == 2.0 / 3.0);
    assert_true(json_object_object_get_ex(r1, "estimated", &est));
    assert_true(json_object_object_get_ex(est, "energy_kwh", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(est, "units", &v));
    assert_null(v);
    json_object_put(arr);
    free(text);
}

static void json_without_rows_is_empty_array(void **state)
{
    (void)state;
    enpi_out_t *o;
    assert_int_equal(enpi_out_create(ENPI_OUT_JSON, cols, N_COLS, &o), 0);
    int rc;
    char *text = render(o, &rc);
    enpi_out_free(o);
    assert_int_equal(rc, 0);
    json_object *arr = json_tokener_parse(text);
    assert_non_null(arr);
    assert_true(json_object_is_type(arr, json_type_array));
    assert_int_equal(json_object_array_length(arr), 0);
    json_object_put(arr);
    free(text);
}

static void csv_quotes_per_rfc4180(void **state)
{
    (void)state;
    enpi_out_t *o;
    assert_int_equal(enpi_out_create(ENPI_OUT_CSV, cols, N_COLS, &o), 0);
    fill(o);
    int rc;
    char *text = render(o, &rc);
    enpi_out_free(o);
    assert_int_equal(rc, 0);
    assert_string_equal(
        text, "facility,start,energy_kwh,sec,readings,estimated_energy_kwh,estimated_units,"
              "late,final\r\n"
              "\"f/1,\"\"x\"\"\",2018-03-28T00:00:00+07:00,0.30000000000000004,,"
              "18446744073709551615,1e-12,0.0,-3,true\r\n"
              "\"Công ty\nABC\",2018-03-28T01:00:00+07:00,12345.6789,0.6666666666666666,7,,,"
              "0,false\r\n");
    free(text);
}

static void table_aligns_and_rounds(void **state)
{
    (void)state;
    static const enpi_out_col_t tcols[] = {
        {"name", "name", ENPI_OUT_TEXT}, {"kwh", "energy_kwh", 3}, {"n", "n", 0},
        {"ok", "ok", ENPI_OUT_TEXT},     {"hidden", NULL, 0},      {"tail", "tail", ENPI_OUT_TEXT},
    };
    enpi_out_t *o;
    assert_int_equal(enpi_out_create(ENPI_OUT_TABLE, tcols, 6, &o), 0);
    enpi_out_row(o);
    enpi_out_str(o, "Công");
    enpi_out_real(o, 0.1 + 0.2);
    enpi_out_uint(o, 12);
    enpi_out_bool(o, true);
    enpi_out_uint(o, 99);
    enpi_out_str(o, "x");
    enpi_out_row(o);
    enpi_out_str(o, "a");
    enpi_out_real(o, 123456.78951);
    enpi_out_null(o);
    enpi_out_bool(o, false);
    enpi_out_uint(o, 99);
    enpi_out_null(o);
    int rc;
    char *text = render(o, &rc);
    enpi_out_free(o);
    assert_int_equal(rc, 0);
    assert_string_equal(text, "name  energy_kwh   n  ok   tail\n"
                              "----  ----------  --  ---  ----\n"
                              "Công       0.300  12  yes  x\n"
                              "a     123456.790   -  no   -\n");
    free(text);
}

static void misuse_is_reported(void **state)
{
    (void)state;
    enpi_out_t *o;
    /* cells of one nested object must be adjacent */
    static const enpi_out_col_t split[] = {{"e.a", "a", 0}, {"x", "x", 0}, {"e.b", "b", 0}};
    assert_int_equal(enpi_out_create(ENPI_OUT_JSON, split, 3, &o), ENPI_EINVAL);
    static const enpi_out_col_t deep[] = {{"a.b.c", "a", 0}};
    assert_int_equal(enpi_out_create(ENPI_OUT_JSON, deep, 1, &o), ENPI_EINVAL);

    static const enpi_out_col_t two[] = {{"a", "a", 0}, {"b", "b", 0}};
    assert_int_equal(enpi_out_create(ENPI_OUT_JSON, two, 2, &o), 0);
    assert_int_equal(enpi_out_uint(o, 1), ENPI_ESTATE); /* before the first row */
    enpi_out_free(o);

    assert_int_equal(enpi_out_create(ENPI_OUT_CSV, two, 2, &o), 0);
    enpi_out_row(o);
    enpi_out_uint(o, 1);
    int rc;
    char *text = render(o, &rc); /* incomplete row */
    assert_int_equal(rc, ENPI_ESTATE);
    free(text);
    enpi_out_free(o);

    assert_int_equal(enpi_out_create(ENPI_OUT_CSV, two, 2, &o), 0);
    enpi_out_row(o);
    enpi_out_uint(o, 1);
    enpi_out_uint(o, 2);
    assert_int_equal(enpi_out_uint(o, 3), ENPI_ESTATE); /* one cell too many */
    text = render(o, &rc);
    assert_int_equal(rc, ENPI_ESTATE);
    free(text);
    enpi_out_free(o);
}

static void format_names_parse(void **state)
{
    (void)state;
    enpi_out_format_t f;
    assert_int_equal(enpi_out_format_parse("table", &f), 0);
    assert_int_equal(f, ENPI_OUT_TABLE);
    assert_int_equal(enpi_out_format_parse("csv", &f), 0);
    assert_int_equal(f, ENPI_OUT_CSV);
    assert_int_equal(enpi_out_format_parse("json", &f), 0);
    assert_int_equal(f, ENPI_OUT_JSON);
    assert_int_equal(enpi_out_format_parse("JSON", &f), ENPI_EINVAL);
    assert_int_equal(enpi_out_format_parse("", &f), ENPI_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_double_is_shortest_round_trip),
        cmocka_unit_test(format_double_round_trips_random_bits),
        cmocka_unit_test(json_keeps_order_nesting_and_exact_numbers),
        cmocka_unit_test(json_without_rows_is_empty_array),
        cmocka_unit_test(csv_quotes_per_rfc4180),
        cmocka_unit_test(table_aligns_and_rounds),
        cmocka_unit_test(misuse_is_reported),
        cmocka_unit_test(format_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
