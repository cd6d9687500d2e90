/*
 * test_ring.c - the SPSC ring: single-thread semantics (capacity checks, empty, full,
 * order, wraparound) and a two-thread stress test that checks strict order, no loss and
 * that what an item points to is fully visible to the consumer (the TSan build checks the
 * release/acquire pairing on the same run).
 *
 * The stress test's message count: ENPI_RING_STRESS_N in the environment if set, else
 * 2,000,000, or 200,000 under a sanitizer (TSan makes every access ~10x slower).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "enpi_error.h"
#include "ring.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STRESS_N_DEFAULT 200000u
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define STRESS_N_DEFAULT 200000u
#endif
#endif
#ifndef STRESS_N_DEFAULT
#define STRESS_N_DEFAULT 2000000u
#endif

static enpi_ring_item_t item_of(uint64_t seq)
{
    enpi_ring_item_t it = {
        .seq = seq,
        .msg = (void *)(uintptr_t)(0x1000 + seq),
        .topic = (char *)(uintptr_t)(0x2000 + seq),
        .topic_len = (uint32_t)(seq % 97),
        .arrival_ms = (int64_t)seq * 3,
    };
    return it;
}

static void assert_item(const enpi_ring_item_t *it, uint64_t seq)
{
    assert_int_equal(it->seq, seq);
    assert_ptr_equal(it->msg, (void *)(uintptr_t)(0x1000 + seq));
    assert_ptr_equal(it->topic, (char *)(uintptr_t)(0x2000 + seq));
    assert_int_equal(it->topic_len, seq % 97);
    assert_int_equal(it->arrival_ms, (int64_t)seq * 3);
}

static void init_rejects_bad_capacity(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 0), ENPI_EINVAL);
    assert_int_equal(enpi_ring_init(&r, 1), ENPI_EINVAL);
    assert_int_equal(enpi_ring_init(&r, 3), ENPI_EINVAL);
    assert_int_equal(enpi_ring_init(&r, 6), ENPI_EINVAL);
    assert_int_equal(enpi_ring_init(&r, 1000), ENPI_EINVAL);
    assert_int_equal(enpi_ring_init(NULL, 8), ENPI_EINVAL);
}

static void init_accepts_powers_of_two(void **state)
{
    size_t caps[] = {2, 4, 64, 1024, 65536};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        enpi_ring_t r;
        assert_int_equal(enpi_ring_init(&r, caps[i]), 0);
        assert_int_equal(enpi_ring_capacity(&r), caps[i]);
        assert_int_equal(enpi_ring_size(&r), 0);
        enpi_ring_destroy(&r);
    }
}

static void empty_ring_pops_nothing(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 4), 0);
    enpi_ring_item_t out = item_of(77);
    assert_false(enpi_ring_pop(&r, &out));
    assert_item(&out, 77); /* untouched */
    assert_int_equal(enpi_ring_size(&r), 0);
    enpi_ring_destroy(&r);
}

static void fills_to_capacity_then_refuses(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 8), 0);
    for (uint64_t i = 0; i < 8; i++) {
        enpi_ring_item_t it = item_of(i);
        assert_true(enpi_ring_push(&r, &it));
        assert_int_equal(enpi_ring_size(&r), i + 1);
    }
    enpi_ring_item_t extra = item_of(8);
    assert_false(enpi_ring_push(&r, &extra));
    assert_false(enpi_ring_push(&r, &extra));
    assert_int_equal(enpi_ring_size(&r), 8);
    /* The refused pushes changed nothing: exactly 0..7 come out, in order. */
    enpi_ring_item_t out;
    for (uint64_t i = 0; i < 8; i++) {
        assert_true(enpi_ring_pop(&r, &out));
        assert_item(&out, i);
    }
    assert_false(enpi_ring_pop(&r, &out));
    assert_int_equal(enpi_ring_size(&r), 0);
    enpi_ring_destroy(&r);
}

static void one_freed_slot_takes_one_push(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 2), 0);
    enpi_ring_item_t a = item_of(1), b = item_of(2), c = item_of(3), out;
    assert_true(enpi_ring_push(&r, &a));
    assert_true(enpi_ring_push(&r, &b));
    assert_false(enpi_ring_push(&r, &c));
    assert_true(enpi_ring_pop(&r, &out));
    assert_item(&out, 1);
    assert_true(enpi_ring_push(&r, &c));
    assert_false(enpi_ring_push(&r, &c));
    assert_true(enpi_ring_pop(&r, &out));
    assert_item(&out, 2);
    assert_true(enpi_ring_pop(&r, &out));
    assert_item(&out, 3);
    assert_false(enpi_ring_pop(&r, &out));
    enpi_ring_destroy(&r);
}

/* Interleaved pushes and pops with varying occupancy, around the slot array many times. */
static void wraps_around_in_order(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 16), 0);
    uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 1000; round++) {
        int burst = 1 + round % 15; /* 1..15 pushes on top of at most one left behind */
        for (int k = 0; k < burst; k++) {
            enpi_ring_item_t it = item_of(next_in);
            assert_true(enpi_ring_push(&r, &it));
            next_in++;
        }
        assert_int_equal(enpi_ring_size(&r), next_in - next_out);
        if (next_in - next_out == 16) {
            enpi_ring_item_t it = item_of(next_in);
            assert_false(enpi_ring_push(&r, &it));
        }
        /* Drain all, or all but one so that the next burst starts mid-array. */
        uint64_t keep = round % 3 == 0 ? 0 : 1;
        while (next_in - next_out > keep) {
            enpi_ring_item_t out;
            assert_true(enpi_ring_pop(&r, &out));
            assert_item(&out, next_out);
            next_out++;
        }
    }
    assert_true(next_in > 16 * 100); /* went round the 16 slots hundreds of times */
    enpi_ring_destroy(&r);
}

/* Counters near SIZE_MAX: occupancy and full/empty must survive the counters' wrap. */
static void survives_counter_wrap(void **state)
{
    enpi_ring_t r;
    assert_int_equal(enpi_ring_init(&r, 4), 0);
    atomic_store(&r.head, SIZE_MAX - 5);
    atomic_store(&r.tail, SIZE_MAX - 5);
    assert_int_equal(enpi_ring_size(&r), 0);
    uint64_t next_in = 0, next_out = 0;
    for (int i = 0; i < 40; i++) {
        while (true) {
            enpi_ring_item_t it = item_of(next_in);
            if (!enpi_ring_push(&r, &it))
                break;
            next_in++;
        }
        assert_int_equal(enpi_ring_size(&r), 4);
        enpi_ring_item_t out;
        for (int k = 0; k < 3; k++) {
            assert_true(enpi_ring_pop(&r, &out));
            assert_item(&out, next_out++);
        }
        assert_int_equal(enpi_ring_size(&r), 1);
    }
    assert_true(atomic_load(&r.tail) < 1000); /* the counters did wrap */
    enpi_ring_destroy(&r);
}

/* ---- two threads ---- */

typedef struct {
    uint64_t seq;
    uint64_t check; /* derived from seq, written before the push, read after the pop */
    char text[24];
} payload_t;

typedef struct {
    enpi_ring_t ring;
    uint64_t n;
    uint64_t producer_full_spins;
    uint64_t consumer_empty_spins;
    size_t max_size_seen;
    uint64_t errors;
    uint64_t first_error_seq;
} stress_t;

static uint64_t check_of(uint64_t seq)
{
    return seq * 0x9E3779B97F4A7C15u ^ 0xA5A5A5A5u;
}

static void *producer_main(void *arg)
{
    stress_t *s = arg;
    for (uint64_t i = 0; i < s->n; i++) {
        payload_t *p = malloc(sizeof *p);
        if (p == NULL)
            abort();
        p->seq = i;
        p->check = check_of(i);
        int len = snprintf(p->text, sizeof p->text, "m%llu", (unsigned long long)i);
        enpi_ring_item_t it = {
            .seq = i,
            .msg = p,
            .topic = p->text,
            .topic_len = (uint32_t)len,
            .arrival_ms = (int64_t)i,
        };
        while (!enpi_ring_push(&s->ring, &it)) {
            s->producer_full_spins++;
            sched_yield();
        }
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    stress_t *s = arg;
    uint64_t expect = 0;
    while (expect < s->n) {
        size_t sz = enpi_ring_size(&s->ring);
        if (sz > s->max_size_seen)
            s->max_size_seen = sz;
        enpi_ring_item_t it;
        if (!enpi_ring_pop(&s->ring, &it)) {
            s->consumer_empty_spins++;
            sched_yield();
            continue;
        }
        payload_t *p = it.msg;
        char want[24];
        int len = snprintf(want, sizeof want, "m%llu", (unsigned long long)expect);
        bool ok = it.seq == expect && p->seq == expect && p->check == check_of(expect) &&
                  it.topic == p->text && it.topic_len == (uint32_t)len &&
                  memcmp(it.topic, want, (size_t)len) == 0 && it.arrival_ms == (int64_t)expect;
        if (!ok && s->errors++ == 0)
            s->first_error_seq = expect;
        free(p);
        expect++;
    }
    return NULL;
}

static uint64_t stress_n(void)
{
    const char *env = getenv("ENPI_RING_STRESS_N");
    if (env != NULL && *env != '\0')
        return strtoull(env, NULL, 10);
    return STRESS_N_DEFAULT;
}

static void run_stress(size_t capacity)
{
    stress_t s = {.n = stress_n()};
    assert_int_equal(enpi_ring_init(&s.ring, capacity), 0);
    pthread_t prod, cons;
    assert_int_equal(pthread_create(&cons, NULL, consumer_main, &s), 0);
    assert_int_equal(pthread_create(&prod, NULL, producer_main, &s), 0);
    assert_int_equal(pthread_join(prod, NULL), 0);
    assert_int_equal(pthread_join(cons, NULL), 0);
    print_message(
        "capacity %zu: %llu items, producer full %llu, consumer empty %llu, max size %zu\n",
        capacity, (unsigned long long)s.n, (unsigned long long)s.producer_full_spins,
        (unsigned long long)s.consumer_empty_spins, s.max_size_seen);
    if (s.errors != 0)
        fail_msg("%llu items out of order or corrupted, first at seq %llu",
                 (unsigned long long)s.errors, (unsigned long long)s.first_error_seq);
    assert_true(s.max_size_seen <= capacity);
    assert_int_equal(enpi_ring_size(&s.ring), 0);
    enpi_ring_item_t out;
    assert_false(enpi_ring_pop(&s.ring, &out)); /* nothing extra came out */
    enpi_ring_destroy(&s.ring);
}

/* A tiny ring: full and empty all the time, the counters wrap the slots N/4 times. */
static void stress_two_threads_tiny_ring(void **state)
{
    run_stress(4);
}

/* A ring the size enpid might use for a small run: mostly the producer races ahead. */
static void stress_two_threads_1024(void **state)
{
    run_stress(1024);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_rejects_bad_capacity),
        cmocka_unit_test(init_accepts_powers_of_two),
        cmocka_unit_test(empty_ring_pops_nothing),
        cmocka_unit_test(fills_to_capacity_then_refuses),
        cmocka_unit_test(one_freed_slot_takes_one_push),
        cmocka_unit_test(wraps_around_in_order),
        cmocka_unit_test(survives_counter_wrap),
        cmocka_unit_test(stress_two_threads_tiny_ring),
        cmocka_unit_test(stress_two_threads_1024),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
