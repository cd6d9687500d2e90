/*
 * accum.c - the batch's rollup increments: a uthash table over a chunked entry pool.
 * See accum.h for the allocation contract.
 */
#include <stdlib.h>
#include <string.h>

#include "accum.h"
#include "enpi_error.h"
#include "log.h"

#define CHUNK_MIN 256

struct enpi_acc_chunk {
    enpi_acc_chunk_t *next;
    size_t n;
    enpi_acc_entry_t entries[];
};

void enpi_accum_fatal(const char *msg)
{
    log_err("pipeline: out of memory growing the rollup table (%s)", msg);
    abort();
}

void enpi_accum_init(enpi_accum_t *a)
{
    memset(a, 0, sizeof(*a));
}

void enpi_accum_destroy(enpi_accum_t *a)
{
    enpi_acc_chunk_t *c, *next;

    HASH_CLEAR(hh, a->table);
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
        c->entries[i].next_free = a->free;
        a->free = &c->entries[i];
    }
    a->n_free += want;
    return 0;
}

enpi_acc_entry_t *enpi_accum_get(enpi_accum_t *a, uint32_t meter, uint32_t res, enpi_window_t w)
{
    enpi_acc_key_t key;
    enpi_acc_entry_t *e;
    unsigned hashv;

    memset(&key, 0, sizeof(key));
    key.meter = meter;
    key.res = res;
    key.start = w.start;
    if (a->table == NULL) {
        a->sentinel.key.meter = UINT32_MAX;
        HASH_ADD(hh, a->table, key, sizeof(a->sentinel.key), &a->sentinel);
    }
    HASH_VALUE(&key, sizeof(key), hashv);
    HASH_FIND_BYHASHVALUE(hh, a->table, &key, sizeof(key), hashv, e);
    if (e != NULL)
        return e;
    e = a->free;
    if (e == NULL)
        return NULL;
    a->free = e->next_free;
    a->n_free--;
    memset(e, 0, sizeof(*e));
    e->key = key;
    e->end = w.end;
    HASH_ADD_BYHASHVALUE(hh, a->table, key, sizeof(key), hashv, e);
    a->count++;
    return e;
}

void enpi_accum_reset(enpi_accum_t *a)
{
    enpi_acc_entry_t *e, *next;

    for (e = enpi_accum_first(a); e != NULL; e = next) {
        next = enpi_accum_next(e);
        HASH_DELETE(hh, a->table, e);
        e->next_free = a->free;
        a->free = e;
        a->n_free++;
    }
    a->count = 0;
    a->gen++;
}

enpi_acc_entry_t *enpi_accum_first(const enpi_accum_t *a)
{
    return a->table != NULL ? a->table->hh.next : NULL;
}

enpi_acc_entry_t *enpi_accum_next(const enpi_acc_entry_t *e)
{
    return e->hh.next;
}
