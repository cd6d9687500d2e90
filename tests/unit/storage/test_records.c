/* test_records.c - every stored record decodes to what was encoded; garbage does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "records.h"

static void rollup_round_trips(void **state)
{
    const enpi_rollup_t cases[] = {
        {0},
        {.value = 1234.5678,
         .estimated = 0.25,
         .readings = 15,
         .resets = 1,
         .late = 2,
         .duplicates = 3},
        {.value = -3.5,
         .estimated = 1e300,
         .readings = UINT32_MAX,
         .resets = UINT32_MAX,
         .late = UINT32_MAX,
         .duplicates = UINT32_MAX},
    };
    const int64_t ends[] = {0, 1522206900000LL, INT64_MIN};
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[ENPI_REC_ROLLUP_MAX];
        size_t n = enpi_store_rec_rollup_encode(&cases[i], ends[i], buf);
        assert_true(n <= ENPI_REC_ROLLUP_MAX);
        enpi_rollup_t r;
        int64_t end;
        assert_int_equal(enpi_store_rec_rollup_decode(buf, n, &r, &end), 0);
        assert_memory_equal(&r.value, &cases[i].value, sizeof r.value);
        assert_memory_equal(&r.estimated, &cases[i].estimated, sizeof r.estimated);
        assert_int_equal(r.readings, cases[i].readings);
        assert_int_equal(r.resets, cases[i].resets);
        assert_int_equal(r.late, cases[i].late);
        assert_int_equal(r.duplicates, cases[i].duplicates);
        assert_int_equal(end, ends[i]);
    }
}

static void meta_round_trips(void **state)
{
    uint8_t buf[ENPI_REC_META_MAX];
    size_t n = enpi_store_rec_meta_encode(UINT32_MAX, UINT64_MAX, buf);
    assert_true(n <= ENPI_REC_META_MAX);
    uint32_t v;
    uint64_t upto;
    assert_int_equal(enpi_store_rec_meta_decode(buf, n, &v, &upto), 0);
    assert_int_equal(v, UINT32_MAX);
    assert_true(upto == UINT64_MAX);
}

static void meter_state_round_trips_with_and_without_recent(void **state)
{
    enpi_meter_state_t s = {.has_state = true,
                            .last_ts_ms = 1522206000000LL,
                            .last_raw = 98765.4321,
                            .first_ts_ms = -5,
                            .readings = UINT64_C(1) << 40,
                            .resets = 2,
                            .late = 3,
                            .duplicates = 4,
                            .rejected = 5};
    for (size_t n_recent = 0; n_recent <= ENPI_DELTA_RECENT_MAX;
         n_recent += ENPI_DELTA_RECENT_MAX) {
        int64_t *recent = NULL;
        if (n_recent) {
            recent = malloc(n_recent * sizeof *recent);
            assert_non_null(recent);
            for (size_t i = 0; i < n_recent; i++)
                recent[i] = 1522206000000LL - (int64_t)(n_recent - i) * 60000;
        }
        s.recent_ts = recent;
        s.n_recent = n_recent;
        size_t size = enpi_store_rec_meter_size(&s);
        uint8_t *buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(enpi_store_rec_meter_encode(&s, buf), size);
        enpi_meter_state_t out;
        assert_int_equal(enpi_store_rec_meter_decode(buf, size, &out), 0);
        assert_true(out.has_state);
        assert_int_equal(out.last_ts_ms, s.last_ts_ms);
        assert_true(out.last_raw == s.last_raw);
        assert_int_equal(out.first_ts_ms, -5);
        assert_true(out.readings == s.readings);
        assert_int_equal(out.resets, 2);
        assert_int_equal(out.late, 3);
        assert_int_equal(out.duplicates, 4);
        assert_int_equal(out.rejected, 5);
        assert_int_equal(out.n_recent, n_recent);
        if (n_recent)
            assert_memory_equal(out.recent_ts, recent, n_recent * sizeof *recent);
        else
            assert_null(out.recent_ts);
        enpi_meter_state_clear(&out);
        free(buf);
        free(recent);
    }
}

static void unknown_meter_round_trips(void **state)
{
    const char *topic = "enpi/f009/x";
    uint8_t buf[128];
    size_t size = enpi_store_rec_unknown_size(12345, topic, strlen(topic), -7);
    assert_int_equal(enpi_store_rec_unknown_encode(12345, topic, strlen(topic), -7, buf), size);
    uint64_t count;
    char *t = NULL;
    int64_t seen;
    assert_int_equal(enpi_store_rec_unknown_decode(buf, size, &count, &t, &seen), 0);
    assert_int_equal(count, 12345);
    assert_string_equal(t, topic);
    assert_int_equal(seen, -7);
    free(t);
    /* an empty topic decodes as "" */
    size = enpi_store_rec_unknown_encode(1, NULL, 0, 0, buf);
    assert_int_equal(enpi_store_rec_unknown_decode(buf, size, &count, &t, &seen), 0);
    assert_string_equal(t, "");
    free(t);
}

static void garbage_does_not_decode(void **state)
{
    /* field 1 declared as a 10-byte length-delimited value with 2 bytes present */
    const uint8_t bad[] = {0x0a, 0x0a, 0x01, 0x02};
    enpi_rollup_t r;
    int64_t end;
    enpi_meter_state_t s;
    uint64_t count;
    char *t = NULL;
    assert_int_equal(enpi_store_rec_rollup_decode(bad, sizeof bad, &r, &end), ENPI_EPARSE);
    assert_int_equal(enpi_store_rec_meter_decode(bad, sizeof bad, &s), ENPI_EPARSE);
    assert_null(s.recent_ts);
    assert_int_equal(enpi_store_rec_unknown_decode(bad, sizeof bad, &count, &t, &end), ENPI_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rollup_round_trips),
        cmocka_unit_test(meta_round_trips),
        cmocka_unit_test(meter_state_round_trips_with_and_without_recent),
        cmocka_unit_test(unknown_meter_round_trips),
        cmocka_unit_test(garbage_does_not_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
