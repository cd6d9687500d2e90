/*
 * ring.c - the bounded lock-free single-producer / single-consumer ring (see ring.h).
 *
 * DESIGN: head and tail are free-running counters (they are never masked when stored and
 * wrap only at SIZE_MAX, where unsigned subtraction still gives the right occupancy). The
 * slot of counter value i is slots[i & mask]. The ring is full when tail - head equals the
 * capacity and empty when they are equal, so all capacity slots are usable.
 *
 * Each index has exactly one writer. The producer owns tail, the consumer owns head; each
 * reads its own index relaxed (nobody else changes it) and the other's with acquire. The
 * two release stores are the only synchronisation: the producer's store of tail publishes
 * the slot it just filled, the consumer's store of head hands the slot it just emptied back.
 */
#include "ring.h"

#include <stdlib.h>

#include "enpi_error.h"

int enpi_ring_init(enpi_ring_t *r, size_t capacity)
{
    if (r == NULL || capacity < 2 || (capacity & (capacity - 1)) != 0)
        return ENPI_EINVAL;
    enpi_ring_item_t *slots = calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return ENPI_ENOMEM;
    /* Plain initialisation: the ring is not shared with another thread until init returns,
     * and whatever hands it over (thread creation, a mutex) orders these stores. */
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->parked, 1);
    r->mask = capacity - 1;
    r->slots = slots;
    return 0;
}

void enpi_ring_destroy(enpi_ring_t *r)
{
    if (r == NULL)
        return;
    free(r->slots);
    r->slots = NULL;
    r->mask = 0;
}

bool enpi_ring_push(enpi_ring_t *r, const enpi_ring_item_t *item)
{
    /* Relaxed: only this thread ever stores tail, so it reads back its own last value. */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* Acquire pairs with the consumer's release store of head in enpi_ring_pop(): once we
     * see a slot as freed, the consumer's reads of it have happened before, so the write
     * below cannot overwrite an item the consumer is still copying out. */
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head > r->mask)
        return false; /* full: tail - head == capacity */
    r->slots[tail & r->mask] = *item;
    /* Release orders the slot write above (and everything the producer did to the objects
     * the item points to, e.g. Paho filling the message) before the new tail becomes
     * visible; the consumer's acquire load of tail pairs with it. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

bool enpi_ring_pop(enpi_ring_t *r, enpi_ring_item_t *out)
{
    /* Relaxed: only this thread ever stores head. */
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* Acquire pairs with the producer's release store of tail in enpi_ring_push(): the
     * slot contents, and the memory its pointers reach, are visible once tail is. */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head == tail)
        return false;
    *out = r->slots[head & r->mask];
    /* Release orders the slot read above before the producer may reuse the slot: the
     * producer's acquire load of head pairs with it. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return true;
}

void enpi_ring_park(enpi_ring_t *r, bool linger)
{
    /* seq_cst store and fence: in the single total order with the producer's fence and
     * load in enpi_ring_must_wake() (which follow its release store of the work): if that
     * load misses this store, the consumer's re-check after the fence sees the work. */
    atomic_store_explicit(&r->parked, linger ? 2 : 1, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst);
}

void enpi_ring_unpark(enpi_ring_t *r)
{
    /* Relaxed: only a hint to the producer; at worst one needless wake-up. */
    atomic_store_explicit(&r->parked, 0, memory_order_relaxed);
}

bool enpi_ring_must_wake(enpi_ring_t *r)
{
    atomic_thread_fence(memory_order_seq_cst); /* the work published before, then the mark */
    int parked = atomic_load_explicit(&r->parked, memory_order_seq_cst);
    if (parked == 0)
        return false;
    if (parked == 2) {
        /* Lingering: the consumer's timer collects a few items; wake it for a batch. */
        size_t batch = r->mask + 1 < ENPI_RING_WAKE_BATCH ? r->mask + 1 : ENPI_RING_WAKE_BATCH;
        if (enpi_ring_size(r) < batch)
            return false;
    }
    return atomic_exchange_explicit(&r->parked, 0, memory_order_acq_rel) != 0;
}

size_t enpi_ring_size(const enpi_ring_t *r)
{
    /* Head first, then tail: head only grows and never passes tail, so a head read
     * earlier than tail is <= that tail and the difference cannot underflow. Acquire on
     * both keeps the two loads in this order (the second cannot be hoisted above the
     * first). A third thread may still see the pair straddle a pop and a push, hence the
     * clamp. Only a snapshot for metrics and tests; it orders no slot access. */
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t n = tail - head;
    return n > r->mask + 1 ? r->mask + 1 : n;
}

size_t enpi_ring_capacity(const enpi_ring_t *r)
{
    return r->mask + 1;
}
