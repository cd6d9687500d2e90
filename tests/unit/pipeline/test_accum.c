/*
 * test_accum.c - pins pipeline/accum.c: a window's entry is created once per batch and
 * found again, entries come out in batch order, reserve makes get infallible, and reset
 * empties the table for the next batch - also when a small batch follows one that grew
 * the index (entries removed one by one instead of wiping the slot array).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accum.h"

static enpi_window_t win(int64_t start)
{
    return (enpi_window_t){.start = start, .end = start + 900000};
}

/* Fills a batch of n distinct windows (meter i % 7, resolution i % 3, start i) with
 * value i + 1, getting each twice; checks the count and the batch order. */
static void fill_batch(enpi_accum_t *a, uint32_t n)
{
    assert_int_equal(enpi_accum_reserve(a, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        enpi_acc_entry_t *e = enpi_accum_get(a, i % 7, i % 3, win(i));
        assert_non_null(e);
        assert_true(e->r.value == 0.0); /* new this batch: zeroed */
        e->r.value = i + 1;
        assert_ptr_equal(enpi_accum_get(a, i % 7, i % 3, win(i)), e);
    }
    assert_int_equal(a->count, n);
    uint32_t i = 0;
    for (enpi_acc_entry_t *e = enpi_accum_first(a); e != NULL; e = enpi_accum_next(e), i++) {
        assert_int_equal(e->key.meter, i % 7);
        assert_int_equal(e->key.res, i % 3);
        assert_int_equal(e->key.start, i);
        assert_int_equal(e->end, (int64_t)i + 900000);
        assert_true(e->r.value == i + 1);
    }
    assert_int_equal(i, n);
}

static void test_same_window_same_entry_and_batch_order(void **state)
{
    (void)state;
    enpi_accum_t a;
    enpi_accum_init(&a);
    fill_batch(&a, 50);
    /* same start, other meter or resolution: other windows */
    assert_int_equal(enpi_accum_reserve(&a, 2), 0);
    enpi_acc_entry_t *x = enpi_accum_get(&a, 1, 0, win(0));
    enpi_acc_entry_t *y = enpi_accum_get(&a, 0, 1, win(0));
    assert_ptr_not_equal(x, y);
    assert_int_equal(a.count, 52);
    enpi_accum_destroy(&a);
}

static void test_get_without_reserve_returns_null(void **state)
{
    (void)state;
    enpi_accum_t a;
    enpi_accum_init(&a);
    assert_null(enpi_accum_get(&a, 0, 0, win(0)));
    assert_int_equal(a.count, 0);
    enpi_accum_destroy(&a);
}

static void test_reset_after_large_batch_then_small_batches(void **state)
{
    (void)state;
    enpi_accum_t a;
    enpi_accum_init(&a);
    fill_batch(&a, 5000); /* grows the index to thousands of slots */
    uint64_t gen = a.gen;
    size_t pool = a.n_free + a.count;
    enpi_accum_reset(&a);
    assert_int_equal(a.gen, gen + 1);
    assert_int_equal(a.count, 0);
    assert_int_equal(a.n_free, pool);
    assert_null(enpi_accum_first(&a));
    assert_int_equal(a.index.count, 0);
    for (int round = 0; round < 3; round++) {
        fill_batch(&a, 20);   /* the same keys again: found absent, created zeroed */
        enpi_accum_reset(&a); /* small: removed one by one */
        assert_int_equal(a.index.count, 0);
        for (size_t s = 0; s <= a.index.mask; s++)
            assert_null(a.index.slots[s].item);
        assert_int_equal(a.n_free, pool);
    }
    enpi_accum_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_window_same_entry_and_batch_order),
        cmocka_unit_test(test_get_without_reserve_returns_null),
        cmocka_unit_test(test_reset_after_large_batch_then_small_batches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
