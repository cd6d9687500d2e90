/*
 * cache.h - the bounded cache of recently written rollups that lets a commit add its
 * increments without reading RocksDB for every window it touches (private to storage/).
 *
 * Keys are full rollup keys (keys.h); values are exactly what the store holds for them,
 * because the cache is changed only after the write that stored them succeeded. Least
 * recently written entries are evicted beyond the limit.
 *
 * DESIGN: not thread-safe; owned by the store and used only by the one thread that runs
 * enpi_store_commit() at a time. An entry pointer returned by a lookup stays valid until
 * the next put, set_limit or clear.
 */
#ifndef ENPI_STORAGE_CACHE_H
#define ENPI_STORAGE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "hindex.h"
#include "pipeline.h"

typedef struct enpi_rollup_cache_entry enpi_rollup_cache_entry_t;

typedef struct {
    enpi_hindex_t index;               /* the entries by key */
    enpi_rollup_cache_entry_t *oldest; /* recency list: least recently written first */
    enpi_rollup_cache_entry_t *newest;
    size_t count;
    size_t limit;  /* most entries kept */
    uint64_t hits; /* lookups answered, since creation */
    uint64_t misses;
} enpi_rollup_cache_t;

#define ENPI_ROLLUP_CACHE_DEFAULT (1u << 17) /* 131072 windows, ~20 MiB with 20-byte ids */

void enpi_rollup_cache_init(enpi_rollup_cache_t *c, size_t limit);
/* Frees every entry; the cache is empty and usable afterwards. */
void enpi_rollup_cache_clear(enpi_rollup_cache_t *c);
size_t enpi_rollup_cache_count(const enpi_rollup_cache_t *c);
/* Lowers or raises the limit, evicting the least recently written entries now if needed. */
void enpi_rollup_cache_set_limit(enpi_rollup_cache_t *c, size_t limit);

/* Returns key's entry and copies its rollup into *r, *end_ms, or returns NULL. Counts a
 * hit or a miss; does not change the recency order. */
enpi_rollup_cache_entry_t *enpi_rollup_cache_lookup(enpi_rollup_cache_t *c, const uint8_t *key,
                                                    size_t klen, enpi_rollup_t *r, int64_t *end_ms);

/* Replaces the value of an entry from a lookup and makes it the most recently written;
 * no hashing, nothing evicted. */
void enpi_rollup_cache_update(enpi_rollup_cache_t *c, enpi_rollup_cache_entry_t *e,
                              const enpi_rollup_t *r, int64_t end_ms);

/* Sets key's value (inserting or replacing) and makes it the most recently written, then
 * evicts beyond the limit. If memory for a new entry cannot be had, the key is left out
 * of the cache (never stale) and ENPI_ENOMEM returned; the caller may ignore that. */
int enpi_rollup_cache_put(enpi_rollup_cache_t *c, const uint8_t *key, size_t klen,
                          const enpi_rollup_t *r, int64_t end_ms);

#endif
