/*
 * cache.c - the bounded cache of stored rollups (see cache.h): an open-addressing index
 * (hindex.h) finds an entry by its key, an intrusive doubly-linked list keeps the recency
 * order, so refreshing an entry a commit already looked up costs no hashing. When the
 * index cannot grow, the entry is simply not cached.
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

struct enpi_rollup_cache_entry {
    enpi_rollup_cache_entry_t *older; /* recency list neighbours */
    enpi_rollup_cache_entry_t *newer;
    enpi_rollup_t r; /* the stored figures */
    int64_t end_ms;  /* the stored window end */
    uint32_t hash;   /* of key, as indexed */
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
    enpi_hindex_remove(&c->index, e->hash, e);
    list_unlink(c, e);
    c->count--;
    free(e);
}

void enpi_rollup_cache_clear(enpi_rollup_cache_t *c)
{
    while (c->oldest)
        drop(c, c->oldest);
    enpi_hindex_destroy(&c->index);
}

static enpi_rollup_cache_entry_t *find(const enpi_rollup_cache_t *c, uint32_t hash,
                                       const uint8_t *key, size_t klen)
{
    size_t pos = enpi_hindex_home(&c->index, hash);
    for (enpi_rollup_cache_entry_t *e; (e = enpi_hindex_next(&c->index, hash, &pos)) != NULL;)
        if (e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
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
    enpi_rollup_cache_entry_t *e = find(c, enpi_hindex_hash(key, klen), key, klen);
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
    uint32_t hash = enpi_hindex_hash(key, klen);
    enpi_rollup_cache_entry_t *e = find(c, hash, key, klen);
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
    e->hash = hash;
    if (enpi_hindex_insert(&c->index, hash, e) != 0) {
        free(e);
        return ENPI_ENOMEM;
    }
    list_append(c, e);
    c->count++;
    evict(c);
    return 0;
}
