/* test_keys.c - the key layout: order follows time and sequence, ids never collide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "keys.h"

static int cmp_keys(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static bool is_prefix(const uint8_t *p, size_t plen, const uint8_t *k, size_t klen)
{
    return plen <= klen && memcmp(p, k, plen) == 0;
}

static void time_encoding_round_trips_and_orders(void **state)
{
    const int64_t t[] = {INT64_MIN, -86400000LL * 365 * 100, -900000,  -1, 0, 1,
                         900000,    1522206000000LL,         INT64_MAX};
    size_t n = sizeof t / sizeof t[0];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(enpi_store_time_from_key(enpi_store_time_to_key(t[i])), t[i]);
        if (i > 0)
            assert_true(enpi_store_time_to_key(t[i - 1]) < enpi_store_time_to_key(t[i]));
    }
}

static void rollup_keys_sort_by_window_start_including_negative_times(void **state)
{
    const int64_t t[] = {-1800000, -900000, -1, 0, 1, 900000, 1522206000000LL};
    uint8_t prev[ENPI_KEY_ROLLUP_MAX];
    size_t prev_len = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint8_t k[ENPI_KEY_ROLLUP_MAX];
        size_t len = enpi_store_key_rollup(k, 15, "f001/em1", 8, t[i]);
        assert_int_equal(len, 1 + 4 + 1 + 8 + 8);
        if (prev_len)
            assert_true(cmp_keys(prev, prev_len, k, len) < 0);
        memcpy(prev, k, len);
        prev_len = len;
    }
}

static void rollup_keys_parse_back(void **state)
{
    uint8_t k[ENPI_KEY_ROLLUP_MAX];
    size_t len = enpi_store_key_rollup(k, 0xFFFF0001u, "a/b", 3, -42);
    uint32_t res;
    const char *id;
    size_t id_len;
    int64_t start;
    assert_true(enpi_store_key_parse_rollup(k, len, &res, &id, &id_len, &start));
    assert_int_equal(res, 0xFFFF0001u);
    assert_int_equal(id_len, 3);
    assert_memory_equal(id, "a/b", 3);
    assert_int_equal(start, -42);
    /* truncated or extended keys are not rollup keys */
    assert_false(enpi_store_key_parse_rollup(k, len - 1, &res, &id, &id_len, &start));
    k[len] = 0;
    assert_false(enpi_store_key_parse_rollup(k, len + 1, &res, &id, &id_len, &start));
}

/* For every pair of distinct ids, neither id's key range may contain the other's keys. */
static void ids_never_collide_or_prefix_each_other(void **state)
{
    const char *ids[] = {"a", "ab", "a/b", "a/", "b", "a\x01", "ab/c"};
    size_t n = sizeof ids / sizeof ids[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            uint8_t pi[ENPI_KEY_ROLLUP_MAX], kj[ENPI_KEY_ROLLUP_MAX];
            size_t pl = enpi_store_key_rollup_prefix(pi, 60, ids[i], strlen(ids[i]));
            size_t kl = enpi_store_key_rollup(kj, 60, ids[j], strlen(ids[j]), 0);
            assert_false(is_prefix(pi, pl, kj, kl));

            uint8_t mi[ENPI_KEY_METER_MAX], mj[ENPI_KEY_METER_MAX];
            size_t mil = enpi_store_key_meter(mi, ids[i], strlen(ids[i]));
            size_t mjl = enpi_store_key_meter(mj, ids[j], strlen(ids[j]));
            assert_false(is_prefix(mi, mil, mj, mjl));
            uint8_t ui[ENPI_KEY_METER_MAX], uj[ENPI_KEY_METER_MAX];
            size_t uil = enpi_store_key_unknown(ui, ids[i], strlen(ids[i]));
            size_t ujl = enpi_store_key_unknown(uj, ids[j], strlen(ids[j]));
            assert_false(is_prefix(ui, uil, uj, ujl));
        }
    }
}

/* A meter's windows of one resolution are one contiguous range: no other meter's or
 * resolution's key sorts between its first and last window. */
static void one_meter_resolution_is_a_contiguous_range(void **state)
{
    uint8_t lo[ENPI_KEY_ROLLUP_MAX], hi[ENPI_KEY_ROLLUP_MAX], other[ENPI_KEY_ROLLUP_MAX];
    size_t lol = enpi_store_key_rollup(lo, 15, "a", 1, INT64_MIN);
    size_t hil = enpi_store_key_rollup(hi, 15, "a", 1, INT64_MAX);
    const char *ids[] = {"ab", "a/b", "b", "\x7f"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        size_t ol = enpi_store_key_rollup(other, 15, ids[i], strlen(ids[i]), 0);
        assert_true(cmp_keys(other, ol, lo, lol) < 0 || cmp_keys(other, ol, hi, hil) > 0);
    }
    size_t ol = enpi_store_key_rollup(other, 60, "a", 1, 0);
    assert_true(cmp_keys(other, ol, hi, hil) > 0);
}

static void id_length_limits(void **state)
{
    char id[300];
    memset(id, 'x', sizeof id);
    uint8_t k[ENPI_KEY_MAX + 64];
    assert_int_equal(enpi_store_key_rollup(k, 15, id, 0, 0), 0);
    assert_int_equal(enpi_store_key_meter(k, id, 0), 0);
    assert_int_equal(enpi_store_key_unknown(k, id, 256), 0);
    assert_int_equal(enpi_store_key_rollup(k, 15, id, 256, 0), 0);
    assert_int_equal(enpi_store_key_rollup(k, 15, id, 255, 0), ENPI_KEY_ROLLUP_MAX);
    assert_int_equal(enpi_store_key_meter(k, id, 255), ENPI_KEY_METER_MAX);
    const char *pid;
    size_t plen;
    assert_true(enpi_store_key_parse_id(k, ENPI_KEY_METER_MAX, ENPI_KEY_METER, &pid, &plen));
    assert_int_equal(plen, 255);
    assert_false(enpi_store_key_parse_id(k, ENPI_KEY_METER_MAX, ENPI_KEY_UNKNOWN, &pid, &plen));
}

static void record_types_have_distinct_prefixes(void **state)
{
    uint8_t k[ENPI_KEY_MAX];
    enpi_store_key_rollup(k, 15, "m", 1, 0);
    assert_int_equal(k[0], 'r');
    enpi_store_key_meter(k, "m", 1);
    assert_int_equal(k[0], 'm');
    enpi_store_key_unknown(k, "m", 1);
    assert_int_equal(k[0], 'u');
    assert_int_equal(ENPI_KEY_INBOX, 'i'); /* legacy inbox keys, deleted at open */
    assert_int_equal(ENPI_KEY_META[0], 'c');
    assert_int_equal(ENPI_KEY_CONFIG[0], 'c');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(time_encoding_round_trips_and_orders),
        cmocka_unit_test(rollup_keys_sort_by_window_start_including_negative_times),
        cmocka_unit_test(rollup_keys_parse_back),
        cmocka_unit_test(ids_never_collide_or_prefix_each_other),
        cmocka_unit_test(one_meter_resolution_is_a_contiguous_range),
        cmocka_unit_test(id_length_limits),
        cmocka_unit_test(record_types_have_distinct_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
