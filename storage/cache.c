/*
 * cache.c - the bounded cache of stored rollups (see cache.h): uthash finds an entry by
 * its key, an intrusive doubly-linked list keeps the recency order, so refreshing an
 * entry a commit already looked up costs no hashing. Allocation failures inside uthash
 * are made non-fatal: the entry is then simply not cached.
 */
#include "cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) ((obj)->oom = true)
#include <uthash.h>

struct enpi_rollup_cache_entry {
    UT_hash_handle hh;
    enpi_rollup_cache_entry_t *older; /* recency list neighbours */
    enpi_rollup_cache_entry_t *newer;
    enpi_rollup_t r; /* the stored figures */
    int64_t end_ms;  /* the stored window end */
    bool oom;        /* set by uthash when it could not index this entry */
    uint16_t klen;
    uint8_t key[]; /* the full rollup key, klen bytes */
};

void enpi_rollup_cache_init(enpi_rollup_cache_t *c, size_t limit)
{
    memset(c, 0, sizeof *c);
    c->limit = limit;
}

size_t enpi_rollup_cache_count(const enpi_rollup_cache_t *c)
{
    return c->count;
}

static void list_unlink(enpi_rollup_cache_t *c, enpi_rollup_cache_entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    e->older = e->newer = NULL;
}

static void list_append(enpi_rollup_cache_t *c, enpi_rollup_cache_entry_t *e)
{
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
}

static void drop(enpi_rollup_cache_t *c, enpi_rollup_cache_entry_t *e)
{
    HASH_DELETE(hh, c->table, e);
    list_unlink(c, e);
    c->count--;
    free(e);
}

void enpi_rollup_cache_clear(enpi_rollup_cache_t *c)
{
    while (c->oldest)
        drop(c, c->oldest);
}

static void evict(enpi_rollup_cache_t *c)
{
    while (c->count > c->limit)
        drop(c, c->oldest);
}

void enpi_rollup_cache_set_limit(enpi_rollup_cache_t *c, size_t limit)
{
    c->limit = limit;
    evict(c);
}

enpi_rollup_cache_entry_t *enpi_rollup_cache_lookup(enpi_rollup_cache_t *c, const uint8_t *key,
                                                    size_t klen, enpi_rollup_t *r, int64_t *end_ms)
{
    enpi_rollup_cache_entry_t *e = NULL;
    HASH_FIND(hh, c->table, key, klen, e);
    if (!e) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    *r = e->r;
    *end_ms = e->end_ms;
    return e;
}

void enpi_rollup_cache_update(enpi_rollup_cache_t *c, enpi_rollup_cache_entry_t *e,
                              const enpi_rollup_t *r, int64_t end_ms)
{
    e->r = *r;
    e->end_ms = end_ms;
    if (c->newest != e) {
        list_unlink(c, e);
        list_append(c, e);
    }
}

int enpi_rollup_cache_put(enpi_rollup_cache_t *c, const uint8_t *key, size_t klen,
                          const enpi_rollup_t *r, int64_t end_ms)
{
    if (c->limit == 0 || klen > UINT16_MAX)
        return 0;
    enpi_rollup_cache_entry_t *e = NULL;
    HASH_FIND(hh, c->table, key, klen, e);
    if (e) {
        enpi_rollup_cache_update(c, e, r, end_ms);
        return 0;
    }
    e = malloc(sizeof *e + klen);
    if (!e)
        return ENPI_ENOMEM;
    e->klen = (uint16_t)klen;
    memcpy(e->key, key, klen);
    e->r = *r;
    e->end_ms = end_ms;
    e->oom = false;
    HASH_ADD_KEYPTR(hh, c->table, e->key, e->klen, e);
    if (e->oom) {
        free(e);
        return ENPI_ENOMEM;
    }
    list_append(c, e);
    c->count++;
    evict(c);
    return 0;
}
