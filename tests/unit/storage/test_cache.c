/* test_cache.c - the bounded rollup cache: exact values, LRU eviction, the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cache.h"

static void put(enpi_rollup_cache_t *c, const char *key, double value)
{
    enpi_rollup_t r = {.value = value, .readings = 1};
    assert_int_equal(enpi_rollup_cache_put(c, (const uint8_t *)key, strlen(key), &r, 900), 0);
}

static bool get(enpi_rollup_cache_t *c, const char *key, double *value)
{
    enpi_rollup_t r;
    int64_t end;
    if (!enpi_rollup_cache_lookup(c, (const uint8_t *)key, strlen(key), &r, &end))
        return false;
    assert_int_equal(end, 900);
    *value = r.value;
    return true;
}

static void put_then_get_returns_the_value_and_replaces(void **state)
{
    enpi_rollup_cache_t c;
    enpi_rollup_cache_init(&c, 8);
    double v;
    assert_false(get(&c, "a", &v));
    put(&c, "a", 1.5);
    put(&c, "ab", 2.5);
    assert_true(get(&c, "a", &v));
    assert_true(v == 1.5);
    put(&c, "a", 3.0);
    assert_true(get(&c, "a", &v));
    assert_true(v == 3.0);
    assert_true(get(&c, "ab", &v));
    assert_true(v == 2.5);
    assert_int_equal(enpi_rollup_cache_count(&c), 2);
    assert_int_equal(c.hits, 3);
    assert_int_equal(c.misses, 1);
    enpi_rollup_cache_clear(&c);
    assert_int_equal(enpi_rollup_cache_count(&c), 0);
}

static void evicts_the_least_recently_written(void **state)
{
    enpi_rollup_cache_t c;
    enpi_rollup_cache_init(&c, 2);
    double v;
    put(&c, "a", 1);
    put(&c, "b", 2);
    put(&c, "a", 11); /* a is now the most recent */
    put(&c, "c", 3);  /* evicts b */
    assert_int_equal(enpi_rollup_cache_count(&c), 2);
    assert_false(get(&c, "b", &v));
    assert_true(get(&c, "a", &v));
    assert_true(v == 11);
    assert_true(get(&c, "c", &v));
    enpi_rollup_cache_set_limit(&c, 1); /* evicts a, the older */
    assert_false(get(&c, "a", &v));
    assert_true(get(&c, "c", &v));
    enpi_rollup_cache_clear(&c);
}

static void update_through_a_lookup_refreshes_recency(void **state)
{
    enpi_rollup_cache_t c;
    enpi_rollup_cache_init(&c, 2);
    double v;
    put(&c, "a", 1);
    put(&c, "b", 2);
    enpi_rollup_t r;
    int64_t end;
    enpi_rollup_cache_entry_t *e = enpi_rollup_cache_lookup(&c, (const uint8_t *)"a", 1, &r, &end);
    assert_non_null(e);
    r.value = 5;
    enpi_rollup_cache_update(&c, e, &r, 900);
    put(&c, "c", 3); /* evicts b, not the refreshed a */
    assert_true(get(&c, "a", &v));
    assert_true(v == 5);
    assert_false(get(&c, "b", &v));
    enpi_rollup_cache_clear(&c);
}

static void limit_zero_caches_nothing(void **state)
{
    enpi_rollup_cache_t c;
    enpi_rollup_cache_init(&c, 0);
    double v;
    put(&c, "a", 1);
    assert_false(get(&c, "a", &v));
    assert_int_equal(enpi_rollup_cache_count(&c), 0);
    enpi_rollup_cache_clear(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_then_get_returns_the_value_and_replaces),
        cmocka_unit_test(evicts_the_least_recently_written),
        cmocka_unit_test(update_through_a_lookup_refreshes_recency),
        cmocka_unit_test(limit_zero_caches_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
