/*
 * accum.h - the rollup increments of the batch being built, keyed by
 * (meter, resolution, window start), found through an open-addressing index (hindex.h).
 *
 * Entries come from a pool that is refilled in chunks and never shrinks, so the hot path
 * allocates nothing once the pool has grown to the size of a typical batch. A caller
 * reserves as many entries as a reading may create (enpi_accum_reserve: entries and index
 * slots) before it changes any state; after that enpi_accum_get() cannot fail.
 * enpi_accum_reset() empties the table, keeping the pool and the index's slot array for
 * the next batch, and bumps `gen`, which lets callers cache entry pointers and notice when
 * they go stale. Single-threaded.
 */
#ifndef ENPI_ACCUM_H
#define ENPI_ACCUM_H

#include <stddef.h>
#include <stdint.h>

#include "hindex.h"
#include "pipeline.h"
#include "window.h"

typedef struct {
    uint32_t meter; /* the pipeline's meter index */
    uint32_t res;   /* index into the configured resolutions */
    int64_t start;  /* window start, UTC ms */
} enpi_acc_key_t;

typedef struct enpi_acc_entry {
    enpi_acc_key_t key;
    int64_t end;                 /* window end, UTC ms */
    enpi_rollup_t r;             /* increments accumulated in this batch */
    struct enpi_acc_entry *next; /* in the table: the next one in batch order; in the pool:
                                    the next free one */
} enpi_acc_entry_t;

typedef struct enpi_acc_chunk enpi_acc_chunk_t;

typedef struct {
    enpi_hindex_t index;     /* the table's entries by key */
    enpi_acc_entry_t *first; /* the table's entries in batch order */
    enpi_acc_entry_t *last;
    size_t count;           /* entries in the table */
    enpi_acc_entry_t *free; /* pool of unused entries */
    size_t n_free;
    enpi_acc_chunk_t *chunks; /* every allocation of the pool, for destroy */
    uint64_t gen;             /* bumped by reset: entry pointers from older gens are stale */
} enpi_accum_t;

void enpi_accum_init(enpi_accum_t *a);
void enpi_accum_destroy(enpi_accum_t *a);

/* Makes sure the next n enpi_accum_get() calls need no allocation (entries and index
 * slots). 0 or ENPI_ENOMEM. */
int enpi_accum_reserve(enpi_accum_t *a, size_t n);

/* The entry of window w of (meter, res), created zeroed when absent. Only returns NULL
 * when the pool is empty, i.e. when the caller did not reserve. */
enpi_acc_entry_t *enpi_accum_get(enpi_accum_t *a, uint32_t meter, uint32_t res, enpi_window_t w);

/* Returns every entry to the pool and bumps gen. */
void enpi_accum_reset(enpi_accum_t *a);

/* The batch's entries in insertion order: first, then next until NULL. */
enpi_acc_entry_t *enpi_accum_first(const enpi_accum_t *a);
enpi_acc_entry_t *enpi_accum_next(const enpi_acc_entry_t *e);

#endif
