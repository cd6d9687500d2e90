/*
 * hindex.h - an open-addressing hash index from a 32-bit hash to items the caller owns.
 *
 * Why not uthash here: uthash chains entries through a handle inside each entry, so a
 * lookup among 10,000 meters walks a bucket and a couple of chained entries, each a cache
 * miss (measured: 37 % of the loop thread's CPU in the e2e benchmark was one such lookup).
 * This index keeps the hash next to the item pointer in one slot array with linear
 * probing at a load of at most 1/2, so a lookup touches one slot line and then the item
 * it returns. Keys stay in the items: the index never compares them, the caller does
 * (enpi_hindex_next yields the items whose hash matches, in probe order).
 *
 * A zeroed enpi_hindex_t is a valid empty index. Items are non-NULL pointers; the index
 * does not own them. Single-threaded.
 */
#ifndef ENPI_HINDEX_H
#define ENPI_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t hash;
    void *item; /* NULL: empty slot */
} enpi_hindex_slot_t;

typedef struct {
    enpi_hindex_slot_t *slots; /* capacity = mask + 1, a power of two; NULL when empty */
    size_t mask;
    size_t count;
} enpi_hindex_t;

/* The hash of a key's bytes (Bob Jenkins' hash, as uthash computes it). */
uint32_t enpi_hindex_hash(const void *key, size_t len);

/* Makes room for n items in all, so that inserts up to that count allocate nothing.
 * 0 or ENPI_ENOMEM (the index is unchanged). */
int enpi_hindex_reserve(enpi_hindex_t *ix, size_t n);

/* Adds item under hash (the caller makes sure its key is not in the index yet); grows
 * the slot array when needed. 0 or ENPI_ENOMEM (nothing added). */
int enpi_hindex_insert(enpi_hindex_t *ix, uint32_t hash, void *item);

/* Removes item, which was inserted under hash. false when it is not in the index. */
bool enpi_hindex_remove(enpi_hindex_t *ix, uint32_t hash, const void *item);

/* Removes every item; keeps the slot array for reuse. */
void enpi_hindex_clear(enpi_hindex_t *ix);

/* Frees the slot array; the index is empty and zeroed afterwards. */
void enpi_hindex_destroy(enpi_hindex_t *ix);

/*
 * Lookup: start at enpi_hindex_home(ix, hash), then call enpi_hindex_next until it
 * returns NULL; every item it returns was inserted with this hash, and the caller
 * compares its key:
 *
 *     size_t pos = enpi_hindex_home(&ix, h);
 *     for (item_t *it; (it = enpi_hindex_next(&ix, h, &pos)) != NULL;)
 *         if (key_equals(it, key)) return it;
 */
static inline size_t enpi_hindex_home(const enpi_hindex_t *ix, uint32_t hash)
{
    return hash & ix->mask;
}

static inline void *enpi_hindex_next(const enpi_hindex_t *ix, uint32_t hash, size_t *pos)
{
    if (ix->slots == NULL)
        return NULL;
    for (;;) {
        const enpi_hindex_slot_t *s = &ix->slots[*pos];
        if (s->item == NULL)
            return NULL;
        *pos = (*pos + 1) & ix->mask;
        if (s->hash == hash)
            return s->item;
    }
}

#endif
