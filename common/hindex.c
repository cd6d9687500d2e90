/*
 * hindex.c - growth, insertion and removal of the open-addressing hash index (hindex.h).
 * Linear probing; the load stays at or below 1/2, so a probe always ends at an empty
 * slot; removal shifts the following entries back instead of leaving tombstones.
 */
#include "hindex.h"

#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "enpi_error.h"

#define HINDEX_MIN_SLOTS 16

uint32_t enpi_hindex_hash(const void *key, size_t len)
{
    unsigned hashv;
    HASH_JEN(key, len, hashv);
    return (uint32_t)hashv;
}

/* The slot count that holds n items at a load of at most 1/2; 0 on overflow. */
static size_t slots_for(size_t n)
{
    size_t cap = HINDEX_MIN_SLOTS;
    while (cap / 2 < n) {
        if (cap > SIZE_MAX / 2 / sizeof(enpi_hindex_slot_t))
            return 0;
        cap *= 2;
    }
    return cap;
}

static void place(enpi_hindex_slot_t *slots, size_t mask, uint32_t hash, void *item)
{
    size_t pos = hash & mask;
    while (slots[pos].item != NULL)
        pos = (pos + 1) & mask;
    slots[pos].hash = hash;
    slots[pos].item = item;
}

int enpi_hindex_reserve(enpi_hindex_t *ix, size_t n)
{
    if (ix->slots != NULL && n <= (ix->mask + 1) / 2)
        return 0;
    size_t cap = slots_for(n);
    if (cap == 0)
        return ENPI_ENOMEM;
    enpi_hindex_slot_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return ENPI_ENOMEM;
    if (ix->slots != NULL) {
        for (size_t i = 0; i <= ix->mask; i++)
            if (ix->slots[i].item != NULL)
                place(slots, cap - 1, ix->slots[i].hash, ix->slots[i].item);
        free(ix->slots);
    }
    ix->slots = slots;
    ix->mask = cap - 1;
    return 0;
}

int enpi_hindex_insert(enpi_hindex_t *ix, uint32_t hash, void *item)
{
    if (ix->count == SIZE_MAX)
        return ENPI_ENOMEM;
    if (ix->slots == NULL || ix->count + 1 > (ix->mask + 1) / 2) {
        /* room for as many items as there are slots now: the array doubles, so inserts
         * stay amortised O(1) */
        int rc = enpi_hindex_reserve(ix, ix->slots == NULL ? 1 : ix->mask + 1);
        if (rc != 0)
            return rc;
    }
    place(ix->slots, ix->mask, hash, item);
    ix->count++;
    return 0;
}

bool enpi_hindex_remove(enpi_hindex_t *ix, uint32_t hash, const void *item)
{
    if (ix->slots == NULL)
        return false;
    size_t mask = ix->mask, hole = hash & mask;
    while (ix->slots[hole].item != item) {
        if (ix->slots[hole].item == NULL)
            return false;
        hole = (hole + 1) & mask;
    }
    /* Backward shift: an entry after the hole may move into it unless its home lies
     * cyclically in (hole, its position], where moving it would put it before its home. */
    for (size_t pos = (hole + 1) & mask; ix->slots[pos].item != NULL; pos = (pos + 1) & mask) {
        size_t home = ix->slots[pos].hash & mask;
        if (((pos - home) & mask) >= ((pos - hole) & mask)) {
            ix->slots[hole] = ix->slots[pos];
            hole = pos;
        }
    }
    ix->slots[hole].item = NULL;
    ix->slots[hole].hash = 0;
    ix->count--;
    return true;
}

void enpi_hindex_clear(enpi_hindex_t *ix)
{
    if (ix->slots != NULL && ix->count > 0)
        memset(ix->slots, 0, (ix->mask + 1) * sizeof *ix->slots);
    ix->count = 0;
}

void enpi_hindex_destroy(enpi_hindex_t *ix)
{
    free(ix->slots);
    memset(ix, 0, sizeof *ix);
}
