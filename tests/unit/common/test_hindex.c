/*
 * test_hindex.c - pins common/hindex.c: lookups find exactly the inserted items, through
 * collisions, wrap-around at the end of the slot array, removals that shift entries back,
 * growth and reserve; checked against a plain array as the reference under a long random
 * mix of operations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "hindex.h"

typedef struct {
    uint32_t key;
    uint32_t hash;
    bool present;
} item_t;

static item_t *find(const enpi_hindex_t *ix, uint32_t hash, uint32_t key)
{
    size_t pos = enpi_hindex_home(ix, hash);
    for (item_t *it; (it = enpi_hindex_next(ix, hash, &pos)) != NULL;)
        if (it->key == key)
            return it;
    return NULL;
}

static void test_empty_index_finds_nothing(void **state)
{
    (void)state;
    enpi_hindex_t ix = {0};
    assert_null(find(&ix, 7, 7));
    assert_false(enpi_hindex_remove(&ix, 7, &ix));
    enpi_hindex_clear(&ix);
    enpi_hindex_destroy(&ix);
}

static void test_hash_depends_on_every_byte_and_the_length(void **state)
{
    (void)state;
    /* same bytes, same hash; a different last byte or length, a different hash */
    assert_int_equal(enpi_hindex_hash("f1/m1", 5), enpi_hindex_hash("f1/m1", 5));
    assert_int_not_equal(enpi_hindex_hash("f1/m1", 5), enpi_hindex_hash("f1/m2", 5));
    assert_int_not_equal(enpi_hindex_hash("ab", 2), enpi_hindex_hash("ab", 1));
}

/* Every item collides on one hash: lookups must compare keys past hash matches, and
 * removing from the middle of the run must keep the rest reachable. */
static void test_one_hash_for_all(void **state)
{
    (void)state;
    enpi_hindex_t ix = {0};
    item_t it[40];
    for (uint32_t i = 0; i < 40; i++) {
        it[i] = (item_t){.key = i, .hash = 0xdeadbeefu};
        assert_int_equal(enpi_hindex_insert(&ix, it[i].hash, &it[i]), 0);
    }
    assert_int_equal(ix.count, 40);
    assert_true(ix.mask + 1 >= 80);
    for (uint32_t i = 0; i < 40; i++)
        assert_ptr_equal(find(&ix, 0xdeadbeefu, i), &it[i]);
    for (uint32_t i = 0; i < 40; i += 3)
        assert_true(enpi_hindex_remove(&ix, 0xdeadbeefu, &it[i]));
    for (uint32_t i = 0; i < 40; i++)
        assert_ptr_equal(find(&ix, 0xdeadbeefu, i), i % 3 == 0 ? NULL : &it[i]);
    assert_null(find(&ix, 0xdeadbeeeu, 1));
    enpi_hindex_destroy(&ix);
    assert_null(ix.slots);
}

/* Homes at the last slots: the run wraps to slot 0, and a removal before the wrap must
 * pull the wrapped entries back. */
static void test_wrap_around_and_shift_back(void **state)
{
    (void)state;
    enpi_hindex_t ix = {0};
    assert_int_equal(enpi_hindex_reserve(&ix, 8), 0);
    size_t cap = ix.mask + 1;
    assert_int_equal(cap, 16);
    item_t it[6];
    for (uint32_t i = 0; i < 6; i++) {
        /* homes cap-2, cap-2, cap-1, cap-1, 0, cap-2 */
        static const uint32_t home_from_end[6] = {2, 2, 1, 1, 0, 2};
        uint32_t home = home_from_end[i] ? (uint32_t)cap - home_from_end[i] : 0;
        it[i] = (item_t){.key = i, .hash = home | 0x100u * (i + 1)};
        assert_int_equal(enpi_hindex_insert(&ix, it[i].hash, &it[i]), 0);
    }
    assert_int_equal(ix.mask + 1, cap); /* 6 items fit in 16 slots without growing */
    assert_true(enpi_hindex_remove(&ix, it[0].hash, &it[0]));
    assert_true(enpi_hindex_remove(&ix, it[2].hash, &it[2]));
    for (uint32_t i = 0; i < 6; i++)
        assert_ptr_equal(find(&ix, it[i].hash, i), (i == 0 || i == 2) ? NULL : &it[i]);
    /* no probe run is longer than the items left: each entry sits at most 3 past home */
    for (size_t s = 0; s < cap; s++) {
        const item_t *p = ix.slots[s].item;
        if (p != NULL)
            assert_true(((s - (p->hash & ix.mask)) & ix.mask) <= 3);
    }
    enpi_hindex_destroy(&ix);
}

static void test_reserve_then_inserts_keep_the_array(void **state)
{
    (void)state;
    enum { RESERVED = 1000, ALL = 4000 };
    enpi_hindex_t ix = {0};
    assert_int_equal(enpi_hindex_reserve(&ix, RESERVED), 0);
    enpi_hindex_slot_t *slots = ix.slots;
    size_t cap = ix.mask + 1;
    assert_true(cap >= 2 * RESERVED && cap < 4 * RESERVED); /* load <= 1/2, not more */
    item_t *it = calloc(ALL, sizeof *it);
    assert_non_null(it);
    for (uint32_t i = 0; i < ALL; i++)
        it[i] = (item_t){.key = i, .hash = enpi_hindex_hash(&i, sizeof i)};
    /* up to half the slots: the reserved array stays */
    uint32_t n = 0;
    for (; n < cap / 2; n++)
        assert_int_equal(enpi_hindex_insert(&ix, it[n].hash, &it[n]), 0);
    assert_ptr_equal(ix.slots, slots);
    assert_int_equal(ix.mask + 1, cap);
    /* one more doubles it, and so on, keeping every item reachable */
    assert_int_equal(enpi_hindex_insert(&ix, it[n].hash, &it[n]), 0);
    n++;
    assert_int_equal(ix.mask + 1, 2 * cap);
    for (; n < ALL; n++)
        assert_int_equal(enpi_hindex_insert(&ix, it[n].hash, &it[n]), 0);
    assert_int_equal(ix.count, ALL);
    assert_true(ix.count * 2 <= ix.mask + 1);
    for (uint32_t i = 0; i < ALL; i++)
        assert_ptr_equal(find(&ix, it[i].hash, i), &it[i]);
    enpi_hindex_clear(&ix);
    assert_int_equal(ix.count, 0);
    for (uint32_t i = 0; i < ALL; i += 97)
        assert_null(find(&ix, it[i].hash, i));
    free(it);
    enpi_hindex_destroy(&ix);
}

/* A long random mix of inserts and removals over few hash values (many collisions and
 * long runs) against the reference: which items are present. */
static void test_random_against_reference(void **state)
{
    (void)state;
    enum { N = 3000, OPS = 200000 };
    enpi_hindex_t ix = {0};
    item_t *it = calloc(N, sizeof *it);
    assert_non_null(it);
    for (uint32_t i = 0; i < N; i++)
        it[i] = (item_t){.key = i, .hash = enpi_hindex_hash(&i, sizeof i) % 257u};
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    size_t present = 0;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        item_t *t = &it[x % N];
        if (t->present) {
            assert_ptr_equal(find(&ix, t->hash, t->key), t);
            assert_true(enpi_hindex_remove(&ix, t->hash, t));
            assert_false(enpi_hindex_remove(&ix, t->hash, t));
            t->present = false;
            present--;
        } else {
            assert_null(find(&ix, t->hash, t->key));
            assert_int_equal(enpi_hindex_insert(&ix, t->hash, t), 0);
            t->present = true;
            present++;
        }
        assert_int_equal(ix.count, present);
        if (op % 20000 == 0)
            for (uint32_t i = 0; i < N; i++)
                assert_ptr_equal(find(&ix, it[i].hash, i), it[i].present ? &it[i] : NULL);
    }
    for (uint32_t i = 0; i < N; i++)
        assert_ptr_equal(find(&ix, it[i].hash, i), it[i].present ? &it[i] : NULL);
    free(it);
    enpi_hindex_destroy(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_index_finds_nothing),
        cmocka_unit_test(test_hash_depends_on_every_byte_and_the_length),
        cmocka_unit_test(test_one_hash_for_all),
        cmocka_unit_test(test_wrap_around_and_shift_back),
        cmocka_unit_test(test_reserve_then_inserts_keep_the_array),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
