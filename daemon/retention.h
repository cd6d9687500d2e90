/*
 * retention.h - what retention.c offers the other files of daemon/ (private to enpid):
 * the cutoffs of storage.retention at an instant, so that commit.c can keep late
 * readings out of windows a sweep has deleted, and whether a sweep is in flight; and what
 * commit.c offers retention.c: word of a failed write.
 */
#ifndef ENPID_RETENTION_H
#define ENPID_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enpid.h"

/* Fills out[] (room for ENPI_MAX_RESOLUTIONS) with one cutoff per storage.retention entry
 * of d->cfg at now_ms, and returns how many. Loop thread. */
size_t enpid_retention_cutoffs(const enpid_t *d, int64_t now_ms, enpi_retention_cutoff_t *out);

/* True when no sweep is running in the threadpool. Loop thread. */
bool enpid_retention_idle(const enpid_t *d);

/* commit.c: a write through the store's RocksDB instance failed outside a commit (a
 * sweep's deletions): the next commit replaces the instance first (enpi_store_reopen).
 * Loop thread. */
void enpid_commit_store_write_failed(enpid_t *d);

/* commit.c: true while the store's RocksDB instance may be used beyond the commit itself:
 * no commit is failing and no write error waits for a reopen. Every other writer (a
 * reload's stored configuration, a retention sweep) and every threadpool reader (the
 * /metrics unknown-meter count) asks this first. Loop thread. */
bool enpid_commit_store_usable(const enpid_t *d);

#endif
