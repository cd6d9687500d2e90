/*
 * test_decode_json.c - the json and number payload decoders on their own: payload forms,
 * dot paths, timestamp forms (epoch ms / s boundary, ISO 8601), value types, meter ids
 * with escapes, every malformed payload class, and exact number conversion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode_json.h"
#include "enpi_error.h"

#define MAX_SEEN 2100

typedef struct {
    enpi_raw_reading_t r[MAX_SEEN];
    char ids[MAX_SEEN][160];
    size_t n;
} seen_t;

static void collect(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    if (s->n >= MAX_SEEN)
        fail_msg("too many readings");
    s->r[s->n] = *r;
    if (r->id != NULL) {
        size_t n = r->id_len < 159 ? r->id_len : 159;
        memcpy(s->ids[s->n], r->id, n);
        s->ids[s->n][n] = '\0';
    }
    s->n++;
}

static enpi_json_decoder_t *dec;

static int setup(void **state)
{
    (void)state;
    return enpi_json_decoder_create(&dec);
}

static int teardown(void **state)
{
    (void)state;
    enpi_json_decoder_free(dec);
    return 0;
}

/* Decodes with the given paths (NULL = defaults / no id). */
static int decode_paths(const char *json, const char *value, const char *ts, const char *id,
                        seen_t *s)
{
    enpi_json_paths_t jp;
    int rc;

    assert_int_equal(enpi_json_paths_init(&jp, value, ts, id, NULL, 0), 0);
    memset(s, 0, sizeof(*s));
    rc = enpi_json_decode(dec, &jp, json, strlen(json), collect, s);
    enpi_json_paths_free(&jp);
    return rc;
}

static int decode(const char *json, seen_t *s)
{
    return decode_paths(json, NULL, NULL, NULL, s);
}

static seen_t seen;

static void default_object_is_one_reading(void **state)
{
    (void)state;
    assert_int_equal(decode("{\"ts\": 1522206000000, \"value\": 1234.567}", &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_false(seen.r[0].malformed);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    assert_true(seen.r[0].value == 1234.567);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.r[0].ts_ms == 1522206000000.0);
    assert_null(seen.r[0].id);
}

static void array_gives_readings_in_order(void **state)
{
    (void)state;
    assert_int_equal(decode(" [ {\"value\": 1, \"ts\": 1522206000}, {\"value\": 2},\n"
                            "   {\"value\": 3, \"extra\": {\"deep\": [1, 2, {\"x\": null}]}} ] \n",
                            &seen),
                     0);
    assert_int_equal(seen.n, 3);
    assert_true(seen.r[0].value == 1 && seen.r[1].value == 2 && seen.r[2].value == 3);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.r[0].ts_ms == 1522206000000.0); /* seconds, scaled */
    assert_int_equal(seen.r[1].ts_kind, ENPI_TS_ARRIVAL);
    assert_int_equal(seen.r[2].ts_kind, ENPI_TS_ARRIVAL);

    assert_int_equal(decode("[]", &seen), 0);
    assert_int_equal(seen.n, 0);
}

static void non_object_array_element_is_one_parse_error(void **state)
{
    (void)state;
    assert_int_equal(decode("[{\"value\": 1}, 5, \"x\", [1], {\"value\": 2}]", &seen), 0);
    assert_int_equal(seen.n, 5);
    assert_false(seen.r[0].malformed);
    assert_true(seen.r[1].malformed && seen.r[2].malformed && seen.r[3].malformed);
    assert_false(seen.r[4].malformed);
    assert_true(seen.r[4].value == 2);
}

static void epoch_seconds_and_milliseconds_split_at_1e11(void **state)
{
    (void)state;
    assert_int_equal(decode("{\"value\": 1, \"ts\": 99999999999}", &seen), 0);
    assert_true(seen.r[0].ts_ms == 99999999999000.0);
    assert_int_equal(decode("{\"value\": 1, \"ts\": 100000000000}", &seen), 0);
    assert_true(seen.r[0].ts_ms == 100000000000.0);
    assert_int_equal(decode("{\"value\": 1, \"ts\": 1522206000.25}", &seen), 0);
    assert_true(seen.r[0].ts_ms == 1522206000250.0);
    assert_int_equal(decode("{\"value\": 1, \"ts\": 1.522206e12}", &seen), 0);
    assert_true(seen.r[0].ts_ms == 1522206000000.0);
    assert_int_equal(decode("{\"value\": 1, \"ts\": null}", &seen), 0);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_ARRIVAL);
}

static void iso_timestamps_keep_their_offset_or_lack_of_it(void **state)
{
    (void)state;
    assert_int_equal(decode("{\"value\": 1, \"ts\": \"2018-03-28T10:00:00+07:00\"}", &seen), 0);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    assert_true(seen.r[0].civil.has_offset);
    assert_int_equal(seen.r[0].civil.offset_s, 7 * 3600);
    assert_int_equal(seen.r[0].civil.hour, 10);
    assert_int_equal(decode("{\"value\": 1, \"ts\": \"2018-03-28T10:00:00\"}", &seen), 0);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_CIVIL);
    assert_false(seen.r[0].civil.has_offset);
}

static void unusable_timestamps_are_invalid(void **state)
{
    static const char *const bad[] = {
        "{\"value\": 1, \"ts\": \"yesterday\"}",
        "{\"value\": 1, \"ts\": \"1522206000000\"}",
        "{\"value\": 1, \"ts\": true}",
        "{\"value\": 1, \"ts\": {\"s\": 1}}",
        "{\"value\": 1, \"ts\": [1]}",
        "{\"value\": 1, \"ts\": 1e999}",
        "{\"value\": 1, \"ts\": \"2018-02-30T00:00:00Z\"}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(decode(bad[i], &seen), 0);
        if (seen.r[0].ts_kind != ENPI_TS_INVALID)
            fail_msg("%s: ts kind %d", bad[i], seen.r[0].ts_kind);
        assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    }
}

static void value_must_be_a_json_number(void **state)
{
    static const char *const missing[] = {
        "{\"ts\": 1522206000000}", "{\"value\": null}",  "{\"value\": \"12.5\"}",
        "{\"value\": true}",       "{\"value\": false}", "{\"value\": {\"v\": 1}}",
        "{\"value\": [1]}",        "{\"Value\": 1}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        assert_int_equal(decode(missing[i], &seen), 0);
        if (seen.r[0].value_kind != ENPI_VALUE_MISSING)
            fail_msg("%s: value kind %d", missing[i], seen.r[0].value_kind);
    }
    assert_int_equal(decode("{\"value\": -0.5}", &seen), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
    assert_true(seen.r[0].value == -0.5);
}

static void overflowing_numbers_are_not_finite(void **state)
{
    (void)state;
    assert_int_equal(decode("{\"value\": 1e999}", &seen), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(decode("{\"value\": -1E+400}", &seen), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(decode("{\"value\": 1e308}", &seen), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_OK);
}

static void dot_paths_reach_nested_members(void **state)
{
    (void)state;
    assert_int_equal(decode_paths("{\"ENERGY\": {\"Total\": 12.5, \"Today\": 1},"
                                  " \"meta\": {\"time\": 1522206000000, \"id\": \"f1/em\"}}",
                                  "ENERGY.Total", "meta.time", "meta.id", &seen),
                     0);
    assert_int_equal(seen.n, 1);
    assert_true(seen.r[0].value == 12.5);
    assert_true(seen.r[0].ts_ms == 1522206000000.0);
    assert_string_equal(seen.ids[0], "f1/em");
    /* a path through a non-object finds nothing */
    assert_int_equal(decode_paths("{\"ENERGY\": 5}", "ENERGY.Total", NULL, NULL, &seen), 0);
    assert_int_equal(seen.r[0].value_kind, ENPI_VALUE_MISSING);
}

static void bad_paths_are_refused(void **state)
{
    enpi_json_paths_t jp;
    char err[200];

    (void)state;
    assert_int_equal(enpi_json_paths_init(&jp, "a..b", NULL, NULL, err, sizeof(err)), ENPI_EINVAL);
    enpi_json_paths_free(&jp);
    assert_int_equal(enpi_json_paths_init(&jp, "", NULL, NULL, err, sizeof(err)), ENPI_EINVAL);
    enpi_json_paths_free(&jp);
    assert_int_equal(enpi_json_paths_init(&jp, "a.b.c.d.e.f.g.h.i", NULL, NULL, err, sizeof(err)),
                     ENPI_EINVAL);
    enpi_json_paths_free(&jp);
}

static void meter_ids_from_the_payload(void **state)
{
    (void)state;
    assert_int_equal(decode_paths("[{\"id\": \"f1\\/m\\u00e9\\ud83d\\ude00\", \"value\": 1},"
                                  " {\"id\": 17, \"value\": 2}, {\"value\": 3},"
                                  " {\"id\": null, \"value\": 4}, {\"id\": true, \"value\": 5},"
                                  " {\"id\": \"bad\\ud800\", \"value\": 6}]",
                                  NULL, NULL, "id", &seen),
                     0);
    assert_int_equal(seen.n, 6);
    assert_string_equal(seen.ids[0], "f1/m\xc3\xa9\xf0\x9f\x98\x80");
    assert_string_equal(seen.ids[1], "17");
    assert_null(seen.r[2].id); /* absent: the topic's id */
    assert_null(seen.r[3].id);
    assert_true(seen.r[4].id_invalid);
    assert_true(seen.r[5].id_invalid); /* unpaired surrogate */
}

static void malformed_payloads_are_parse_errors(void **state)
{
    static const char *const bad[] = {
        "",
        "   ",
        "{\"ts\": 1522206000000, \"val",        /* truncated */
        "{\"ts\": 1522206000000, \"value\": 1", /* unclosed */
        "{\"value\": 1} x",
        "{\"value\": 1}{\"value\": 2}",
        "\"just a string\"",
        "5",
        "null",
        "{\"a\" \"b\"}",
        "{\"a\"}",
        "{\"value\": tru}",
        "{\"value\": 01}",
        "{\"value\": 1.}",
        "{\"value\": .5}",
        "{\"value\": +1}",
        "{\"value\": NaN}",
        "{\"value\": Infinity}",
        "{value: 1}",
        "{\"value\": 1,}",
        "[{\"value\": 1},]",
        "[1 2]",
        "[,{\"value\": 1}]",
        "[{\"value\": 1},,{\"value\": 2}]",
        "{\"value\": 1 \"ts\": 2}",
        "{\"value\"::1}",
        "{,}",
        "[\"a\": 1]",
        "[{\"value\": 1}",
        "{\"value\": 1]",
        "{\"v\": \"bad \\x escape\"}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode(bad[i], &seen);
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("\"%s\": rc %d, %zu readings", bad[i], rc, seen.n);
    }
    /* nesting deeper than 64 levels */
    {
        char deep[200];
        size_t n = 0;
        for (int i = 0; i < 66; i++)
            deep[n++] = '[';
        for (int i = 0; i < 66; i++)
            deep[n++] = ']';
        deep[n] = '\0';
        assert_int_equal(decode(deep, &seen), ENPI_EPARSE);
        assert_int_equal(decode("[[[[[[[[[[{\"value\":1}]]]]]]]]]]", &seen), 0);
        assert_int_equal(seen.n, 1);
        assert_true(seen.r[0].malformed); /* the element is an array, not an object */
    }
    /* an embedded NUL ends the JSON early: the rest is trailing garbage */
    memset(&seen, 0, sizeof(seen));
    {
        enpi_json_paths_t jp;
        const char js[] = "{\"value\": 1}\0{}";
        assert_int_equal(enpi_json_paths_init(&jp, NULL, NULL, NULL, NULL, 0), 0);
        assert_int_equal(enpi_json_decode(dec, &jp, js, sizeof(js) - 1, collect, &seen),
                         ENPI_EPARSE);
        enpi_json_paths_free(&jp);
    }
}

/* Fuzz regression json/leading_separator: jsmn skips a ',' or ':' before the top-level
 * value, so only the decoder's own check stands between ":[]" and an accepted payload. */
static void anything_before_the_top_level_value_is_a_parse_error(void **state)
{
    static const char *const bad[] = {
        ":[]",
        ",[]",
        ": {\"value\": 1}",
        ", [{\"value\": 1}]",
        " ,{\"value\": 1}",
        "x{\"value\": 1}",
        "1 {\"value\": 1}",
        "::{\"value\": 1}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode(bad[i], &seen);
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("\"%s\": rc %d, %zu readings", bad[i], rc, seen.n);
    }
    /* whitespace alone before it is still fine */
    assert_int_equal(decode(" \t\r\n{\"value\": 1}", &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(decode("\n[]", &seen), 0);
}

static void large_arrays_grow_the_token_buffer(void **state)
{
    size_t cap = 2000 * 40 + 16, off = 0;
    char *js = malloc(cap);

    (void)state;
    off += (size_t)snprintf(js + off, cap - off, "[");
    for (int i = 0; i < 2000; i++)
        off += (size_t)snprintf(js + off, cap - off, "%s{\"ts\":%d,\"value\":%d}", i ? "," : "",
                                1000000000 + i, i);
    snprintf(js + off, cap - off, "]");
    assert_int_equal(decode(js, &seen), 0);
    assert_int_equal(seen.n, 2000);
    assert_true(seen.r[1999].value == 1999);
    assert_true(seen.r[1999].ts_ms == (1000000000.0 + 1999) * 1000);
    free(js);
}

static void number_text_converts_exactly(void **state)
{
    static const char *const nums[] = {
        "0",
        "-0",
        "1234.567",
        "0.1",
        "0.000123",
        "1e5",
        "1E-5",
        "123456789012345",
        "1234567890123456789",
        "9007199254740993",
        "3.14159265358979323846",
        "1522206000000",
        "-42.125",
        "1.7976931348623157e308",
        "4.9e-324",
        "0.30000000000000004",
        "999999999999999.9",
    };
    double v;

    (void)state;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        assert_int_equal(enpi_decode_number_text(nums[i], strlen(nums[i]), &v), 0);
        if (v != strtod(nums[i], NULL))
            fail_msg("%s -> %.17g, strtod %.17g", nums[i], v, strtod(nums[i], NULL));
    }
    /* random decimals with up to 15 significant digits take the fast path */
    srand(7);
    for (int i = 0; i < 100000; i++) {
        char buf[64];
        long long m = ((long long)rand() << 20 ^ rand()) % 1000000000000000LL;
        int frac = rand() % 16;
        snprintf(buf, sizeof(buf), "%lld", m);
        if (frac > 0 && (int)strlen(buf) > frac) {
            size_t len = strlen(buf);
            memmove(buf + len - frac + 1, buf + len - frac, (size_t)frac + 1);
            buf[len - frac] = '.';
        }
        assert_int_equal(enpi_decode_number_text(buf, strlen(buf), &v), 0);
        if (v != strtod(buf, NULL))
            fail_msg("%s -> %.17g, strtod %.17g", buf, v, strtod(buf, NULL));
    }
}

static void number_payloads(void **state)
{
    (void)state;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(enpi_number_decode(" 1234.5\n", 8, collect, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_true(seen.r[0].value == 1234.5);
    assert_int_equal(seen.r[0].ts_kind, ENPI_TS_ARRIVAL);
    assert_int_equal(enpi_number_decode("+7", 2, collect, &seen), 0);
    assert_true(seen.r[1].value == 7);
    assert_int_equal(enpi_number_decode("1e999", 5, collect, &seen), 0);
    assert_int_equal(seen.r[2].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(enpi_number_decode("NaN", 3, collect, &seen), 0);
    assert_int_equal(seen.r[3].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(enpi_number_decode("-inf", 4, collect, &seen), 0);
    assert_int_equal(seen.r[4].value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(seen.n, 5);
    assert_int_equal(enpi_number_decode("", 0, collect, &seen), ENPI_EPARSE);
    assert_int_equal(enpi_number_decode("12 kWh", 6, collect, &seen), ENPI_EPARSE);
    assert_int_equal(enpi_number_decode("0x10", 4, collect, &seen), ENPI_EPARSE);
    assert_int_equal(enpi_number_decode("{\"value\":1}", 11, collect, &seen), ENPI_EPARSE);
    assert_int_equal(seen.n, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_object_is_one_reading),
        cmocka_unit_test(array_gives_readings_in_order),
        cmocka_unit_test(non_object_array_element_is_one_parse_error),
        cmocka_unit_test(epoch_seconds_and_milliseconds_split_at_1e11),
        cmocka_unit_test(iso_timestamps_keep_their_offset_or_lack_of_it),
        cmocka_unit_test(unusable_timestamps_are_invalid),
        cmocka_unit_test(value_must_be_a_json_number),
        cmocka_unit_test(overflowing_numbers_are_not_finite),
        cmocka_unit_test(dot_paths_reach_nested_members),
        cmocka_unit_test(bad_paths_are_refused),
        cmocka_unit_test(meter_ids_from_the_payload),
        cmocka_unit_test(malformed_payloads_are_parse_errors),
        cmocka_unit_test(anything_before_the_top_level_value_is_a_parse_error),
        cmocka_unit_test(large_arrays_grow_the_token_buffer),
        cmocka_unit_test(number_text_converts_exactly),
        cmocka_unit_test(number_payloads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
