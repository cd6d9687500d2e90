/*
 * accum.c - the batch's rollup increments: an open-addressing index (hindex.h) over a
 * chunked entry pool. See accum.h for the allocation contract.
 */
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "enpi_error.h"

#define CHUNK_MIN 256

struct enpi_acc_chunk {
    enpi_acc_chunk_t *next;
    size_t n;
    enpi_acc_entry_t entries[];
};

void enpi_accum_init(enpi_accum_t *a)
{
    memset(a, 0, sizeof(*a));
}

void enpi_accum_destroy(enpi_accum_t *a)
{
    enpi_acc_chunk_t *c, *next;

    enpi_hindex_destroy(&a->index);
    for (c = a->chunks; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    memset(a, 0, sizeof(*a));
}

int enpi_accum_reserve(enpi_accum_t *a, size_t n)
{
    enpi_acc_chunk_t *c;
    size_t want;

    if (n > SIZE_MAX - a->count || enpi_hindex_reserve(&a->index, a->count + n) != 0)
        return ENPI_ENOMEM;
    if (a->n_free >= n)
        return 0;
    want = n - a->n_free;
    if (want < CHUNK_MIN)
        want = CHUNK_MIN;
    if (want > (SIZE_MAX - sizeof(*c)) / sizeof(enpi_acc_entry_t))
        return ENPI_ENOMEM;
    c = malloc(sizeof(*c) + want * sizeof(enpi_acc_entry_t));
    if (c == NULL)
        return ENPI_ENOMEM;
    c->n = want;
    c->next = a->chunks;
    a->chunks = c;
    for (size_t i = 0; i < want; i++) {
        c->entries[i].next = a->free;
        a->free = &c->entries[i];
    }
    a->n_free += want;
    return 0;
}

enpi_acc_entry_t *enpi_accum_get(enpi_accum_t *a, uint32_t meter, uint32_t res, enpi_window_t w)
{
    enpi_acc_key_t key = {.meter = meter, .res = res, .start = w.start};
    uint32_t h = enpi_hindex_hash(&key, sizeof(key));
    size_t pos = enpi_hindex_home(&a->index, h);
    enpi_acc_entry_t *e;

    while ((e = enpi_hindex_next(&a->index, h, &pos)) != NULL)
        if (e->key.meter == meter && e->key.res == res && e->key.start == w.start)
            return e;
    e = a->free;
    if (e == NULL || enpi_hindex_insert(&a->index, h, e) != 0)
        return NULL;
    a->free = e->next;
    a->n_free--;
    memset(e, 0, sizeof(*e));
    e->key = key;
    e->end = w.end;
    if (a->last != NULL)
        a->last->next = e;
    else
        a->first = e;
    a->last = e;
    a->count++;
    return e;
}

void enpi_accum_reset(enpi_accum_t *a)
{
    if (a->count < (a->index.mask + 1) / 16) {
        /* a small batch in a slot array grown by a large one (a backfill): remove its
         * entries one by one rather than wipe every slot */
        for (enpi_acc_entry_t *e = a->first; e != NULL; e = e->next)
            enpi_hindex_remove(&a->index, enpi_hindex_hash(&e->key, sizeof(e->key)), e);
    } else {
        enpi_hindex_clear(&a->index);
    }
    if (a->last != NULL) {
        a->last->next = a->free; /* the whole batch list goes back to the pool */
        a->free = a->first;
        a->n_free += a->count;
    }
    a->first = a->last = NULL;
    a->count = 0;
    a->gen++;
}

enpi_acc_entry_t *enpi_accum_first(const enpi_accum_t *a)
{
    return a->first;
}

enpi_acc_entry_t *enpi_accum_next(const enpi_acc_entry_t *e)
{
    return e->next;
}
