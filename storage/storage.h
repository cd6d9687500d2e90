/*
 * storage.h - enpi's RocksDB store: rollups, meter state, unknown meters, the learned
 * state of Sparkplug edge nodes, the inbox of messages not yet committed, and a copy of
 * the daemon's configuration text.
 *
 * The only module that includes rocksdb/c.h. Records are protobuf-c messages from
 * proto/store.proto. Keys (see keys.h) range-scan one meter's windows of one resolution
 * in time order and cannot collide between meter ids (the id is length-prefixed).
 *
 * DESIGN: enpid opens the store PRIMARY. enpi_store_inbox_append() is called by one
 * producer thread (Paho's receive thread) concurrently with enpi_store_commit(), which one
 * thread at a time calls (the commit worker). A commit is one atomic WriteBatch: merged
 * rollups, meter states, unknown meters, Sparkplug edge node states, and Meta's
 * inbox_upto, below which the inbox log (files in <store>/inbox/) is then released. The CLI opens SECONDARY
 * (rocksdb_open_as_secondary), which is safe while enpid writes, and never writes.
 */
#ifndef ENPI_STORAGE_H
#define ENPI_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pipeline.h"

typedef struct enpi_store enpi_store_t;

typedef enum { ENPI_STORE_PRIMARY = 0, ENPI_STORE_SECONDARY = 1 } enpi_store_mode_t;

/*
 * Opens (PRIMARY: creating if missing) the store at `path`. SECONDARY needs an existing
 * store and keeps its own scratch folder in a private temporary directory removed at close;
 * it creates nothing in `path`.
 * Returns 0, ENPI_EBUSY when another primary holds the lock, ENPI_ENOENT (secondary, no
 * store), ENPI_ERANGE when the store was written by a newer enpi (format version), ENPI_EIO;
 * a one-line message (with RocksDB's, if any) goes into errbuf (may be NULL).
 * Writes (inbox append, commit, put_config) on a SECONDARY return ENPI_ESTATE.
 */
int enpi_store_open(const char *path, enpi_store_mode_t mode, enpi_store_t **out, char *errbuf,
                    size_t errlen);
void enpi_store_close(enpi_store_t *st);

/* SECONDARY: catch up with the primary's latest writes. Returns 0 or ENPI_EIO.
 * A no-op returning 0 on a PRIMARY. */
int enpi_store_catch_up(enpi_store_t *st);

/* ---- inbox: messages made durable before Paho acknowledges them ---- */
/*
 * The inbox is an append-only log of memory-mapped segment files in <store>/inbox/ (not
 * RocksDB keys): an append is a copy into a MAP_SHARED mapping, in the page cache at once
 * (survives kill -9 of the process, like a WAL write without sync), made durable against
 * power loss by the next commit. Segments (64 MiB) are allocated whole before use, so a
 * full disk fails an append, never a later store into the mapping. A commit releases the
 * log below its inbox_upto. Only a PRIMARY has an inbox; on a SECONDARY scans find nothing.
 */

typedef struct {
    uint64_t seq; /* strictly increasing along the inbox, assigned by the producer */
    const char *topic;
    size_t topic_len;
    const void *payload;
    size_t payload_len;
    int64_t arrival_ms;
    bool redelivered; /* the broker marked it as a redelivery (MQTT DUP) */
} enpi_inbox_msg_t;

/* Appends one message. ONE producer thread at a time (calls must not overlap); m->seq must
 * be above every seq appended before (else ENPI_EINVAL). It may run while another thread
 * scans or commits. Never blocks on a commit. Returns 0, or ENPI_EIO (a new segment could
 * not be created: disk full...), ENPI_EINVAL (order, or a topic over 65535 bytes, or a
 * message larger than a segment), ENPI_ENOMEM, ENPI_ESTATE (SECONDARY); then nothing was
 * appended and the caller must not acknowledge the message. */
int enpi_store_inbox_append(enpi_store_t *st, const enpi_inbox_msg_t *m);

/* enpi_store_inbox_append() that also fills *stored with m's fields pointing at the
 * durable copy (topic NUL-terminated): valid until a commit with inbox_upto > m->seq
 * returns, or the store closes. Lets the producer free its own copy at once. */
int enpi_store_inbox_append_ref(enpi_store_t *st, const enpi_inbox_msg_t *m,
                                enpi_inbox_msg_t *stored);

/* One past the highest sequence number ever appended or committed (1 for a new store):
 * max(1, last valid record + 1, the last commit's inbox_upto). Survives restarts, also
 * when the last commit emptied the inbox. Any thread. */
int enpi_store_inbox_next_seq(enpi_store_t *st, uint64_t *next_out);

/* Calls cb for every inbox message with from <= seq < to not yet committed (seq >= the
 * stored inbox_upto), ascending. The message's pointers are valid only during the call.
 * cb returns nonzero to stop (returned as is); otherwise 0. Any thread; a scan resumes
 * cheaply where the previous one stopped. cb may call enpi_store_commit. */
typedef int (*enpi_inbox_cb)(void *ctx, const enpi_inbox_msg_t *m);
int enpi_store_inbox_scan(enpi_store_t *st, uint64_t from, uint64_t to, enpi_inbox_cb cb,
                          void *ctx);

/* Tests: the size of inbox segments created from now on (rounded up to 64 KiB minimum). */
void enpi_store_inbox_set_segment_bytes(enpi_store_t *st, size_t bytes);
/* Tests: the next n segment creations fail as on a full disk (ENPI_EIO from the append). */
void enpi_store_inbox_inject_alloc_failures(enpi_store_t *st, unsigned n);
/* Segment files the inbox holds now (tests, metrics). */
size_t enpi_store_inbox_segments(enpi_store_t *st);

/* ---- commits ---- */

/*
 * Applies one batch atomically: each rollup delta is added to the stored rollup of its
 * (meter, resolution, window), meter states replaced, unknown meters' counts added,
 * Sparkplug edge node states replaced (or deleted, for a snapshot without state), inbox
 * messages below b->inbox_upto released. One caller at a time (keeps a cache of recent
 * rollups). On error nothing of the batch is written and the batch may be retried.
 * Several deltas of one batch for the same window are summed; a window's stored end is
 * that of its latest delta. The batch is only read (the caller still frees it). The write
 * is synced (fdatasync of the WAL), and the inbox segments written since the last commit
 * are fdatasync'ed before it, so every inbox append before it is durable against power
 * loss; a commit of 40,000 windows costs a few hundred ms, mostly RocksDB's.
 * Returns 0, ENPI_EIO (RocksDB failed), ENPI_EINVAL (a delta names no meter of the batch,
 * or an id is empty or over 255 bytes), ENPI_ENOMEM, ENPI_EPARSE (a stored record is corrupt).
 */
int enpi_store_commit(enpi_store_t *st, const enpi_batch_t *b);

/* ---- reads (either mode) ---- */

/* Fills *out (caller clears it with enpi_meter_state_clear). Returns 0 or ENPI_ENOENT
 * (then *out holds nothing to clear); ENPI_EINVAL for an empty or over-long id; ENPI_EIO,
 * ENPI_EPARSE, ENPI_ENOMEM. */
int enpi_store_meter_state(enpi_store_t *st, const char *meter_id, enpi_meter_state_t *out);

/* Calls cb for every stored meter state, in key order (shorter ids first, then bytewise);
 * the state is valid only during the call. cb returns nonzero to stop (returned as is). */
typedef int (*enpi_meter_state_cb)(void *ctx, const char *meter_id, const enpi_meter_state_t *s);
int enpi_store_meter_states(enpi_store_t *st, enpi_meter_state_cb cb, void *ctx);

typedef struct {
    int64_t start;
    int64_t end;
    enpi_rollup_t r;
} enpi_stored_rollup_t;

/* Calls cb, ascending by start, for every stored window of (meter, res_code) whose start
 * lies in [from, to). cb returns nonzero to stop. */
typedef int (*enpi_rollup_cb)(void *ctx, const enpi_stored_rollup_t *r);
int enpi_store_rollups(enpi_store_t *st, const char *meter_id, uint32_t res_code, int64_t from,
                       int64_t to, enpi_rollup_cb cb, void *ctx);

typedef struct {
    const char *meter_id;
    const char *last_topic;
    uint64_t count;
    int64_t last_seen_ms;
} enpi_unknown_meter_t;
/* Calls cb for every meter id seen but not configured, in key order; the strings are valid
 * only during the call. count is the total over all commits; last_topic/last_seen_ms are
 * from the newest sighting. cb returns nonzero to stop (returned as is). */
typedef int (*enpi_unknown_cb)(void *ctx, const enpi_unknown_meter_t *u);
int enpi_store_unknown_meters(enpi_store_t *st, enpi_unknown_cb cb, void *ctx);

/* Calls cb for every stored Sparkplug edge node state (enpi_node_snapshot_t of past
 * batches), in key order: key "group/node" NUL-terminated, state the bytes as committed
 * (store.proto SparkplugNode, for enpi_pipeline_restore_sparkplug). Both are valid only
 * during the call. cb returns nonzero to stop (returned as is). Otherwise 0, ENPI_EIO, or
 * ENPI_EPARSE for a malformed key. */
typedef int (*enpi_sparkplug_node_record_cb)(void *ctx, const char *key, const void *state,
                                             size_t state_len);
int enpi_store_sparkplug_nodes(enpi_store_t *st, enpi_sparkplug_node_record_cb cb, void *ctx);

/* ---- the configuration the daemon runs with, so `enpi --db DIR` needs no YAML file ---- */
/* PRIMARY: replaces the stored text (synced). Returns 0, ENPI_EIO or ENPI_ESTATE. */
int enpi_store_put_config(enpi_store_t *st, const char *yaml, size_t len);
/* *yaml_out is malloc'd and NUL-terminated; caller frees. ENPI_ENOENT when none stored. */
int enpi_store_get_config(enpi_store_t *st, char **yaml_out, size_t *len_out);

/* ---- tuning and introspection of the commit-side rollup cache (commit thread) ---- */

/* Most windows the rollup cache keeps (default 131072, ~20 MiB with 20-byte meter ids);
 * size it to at least meters x resolutions so steady-state commits need no reads. 0 disables. */
void enpi_store_set_cache_limit(enpi_store_t *st, size_t entries);

typedef struct {
    size_t entries; /* windows cached now */
    size_t limit;
    uint64_t hits;   /* windows of commits found in the cache, since open */
    uint64_t misses; /* windows read from RocksDB (or new) instead */
} enpi_store_cache_stats_t;
void enpi_store_cache_stats(const enpi_store_t *st, enpi_store_cache_stats_t *out);

/* ---- fault injection, for tests of the callers' failure and retry paths ---- */

/* The next n commits fail with ENPI_EIO right before their write, as a RocksDB write error
 * would (logged; nothing written; cache untouched). Call from the commit thread. */
void enpi_store_inject_commit_failures(enpi_store_t *st, unsigned n);

/* ---- retention: deleting expired rollups (storage/retention.c) ---- */

/*
 * One resolution's retention for a sweep: every stored window of resolution res_code
 * whose end is at or before cutoff_ms is deleted (windows are [start, end), so such a
 * window holds no instant at or after the cutoff). Resolutions not listed are kept.
 */
typedef struct {
    uint32_t res_code; /* enpi_resolution_code() */
    int64_t cutoff_ms; /* in: windows ending at or before this instant go */
    uint64_t deleted;  /* out: windows this sweep deleted */
} enpi_retention_cutoff_t;

typedef struct {
    uint64_t deleted;  /* windows deleted, all resolutions */
    uint64_t examined; /* stored windows looked at (the expired ones and one more per meter) */
    uint64_t meters;   /* (meter, resolution) key ranges visited */
    bool stopped;      /* *stop became true: the sweep ended early (run it again later) */
    bool compaction_suggested; /* enough was deleted to ask RocksDB to compact the range */
} enpi_retention_stats_t;

/* The instant `keep` before now: a fixed duration subtracted exactly, calendar months
 * ("1mo", "5y" = 60 months) counted on the UTC calendar with the day clamped to the
 * month's length (2024-02-29 - 1y = 2023-02-28) and the time of day kept. */
int64_t enpi_store_retention_cutoff(int64_t now_ms, const enpi_duration_t *keep);

/*
 * Deletes every expired window of the listed resolutions, for every meter in the store
 * (configured or not), with point deletes written in small unsynced batches (WAL on: a
 * crash loses at most deletions the next sweep repeats), so concurrent inbox appends and
 * commits wait for at most one small batch. Idempotent. Fills cutoffs[i].deleted and
 * *stats (may be NULL). When stop is not NULL it is read after each written batch and
 * between resolutions (so at least one batch is written); once true the sweep returns 0
 * early with stats->stopped set, and a later sweep carries on. After deleting many
 * windows it asks RocksDB to compact the swept key range in the background
 * (suggest_compact_range), so the disk space returns without blocking writes.
 *
 * Thread: any thread, concurrently with inbox appends and commits, but not with another
 * sweep of the same store. The sweep never touches the commit's rollup cache: the caller
 * must keep later commits out of swept windows (enpi_store_retention_filter with cutoffs
 * at least as late), or a cached window could be written back. Returns 0, ENPI_EIO
 * (logged with RocksDB's message; what was deleted stays deleted), ENPI_ESTATE on a
 * SECONDARY store, ENPI_EINVAL for a NULL cutoffs with n > 0.
 */
int enpi_store_retention_sweep(enpi_store_t *st, enpi_retention_cutoff_t *cutoffs, size_t n,
                               const _Atomic bool *stop, enpi_retention_stats_t *stats);

/*
 * Removes from b, in place, the rollup deltas of windows that a sweep with these cutoffs
 * deletes (end <= cutoff of their resolution), keeping the order of the others; the rest
 * of the batch (meter states, inbox_upto, ...) is untouched. A late reading into an
 * expired window thus changes its meter's state but recreates no expired row. Returns the
 * number of deltas removed. Pure; the caller owns b.
 */
size_t enpi_store_retention_filter(enpi_batch_t *b, const enpi_retention_cutoff_t *cutoffs,
                                   size_t n);

/* ---- storage health: getting writable again after a write error (storage/retention.c) ---- */

/*
 * Closes the store's RocksDB instance and opens it again as primary, with the options
 * RocksDB persisted at the last open (its OPTIONS file), its info LOG limited to fatal
 * messages and kept in a private folder under $TMPDIR (removed at close), off the
 * store's disk. Meant for after a failed write (a full disk): RocksDB 7.8 keeps the
 * failed WAL writer of the old instance, and once it resumes by itself (when space
 * returns) the next write through that instance aborts the process on an assertion of
 * Debian's build; a fresh instance replays the WAL and starts a new one. Nothing
 * committed is lost: a failed write changed nothing. When the primary open fails (the
 * disk is still full), the store opens read-only instead, so readers keep working and
 * writes fail with ENPI_EIO until a later reopen succeeds.
 * Returns 0 (writable again), ENPI_EIO (read-only for now; logged with RocksDB's message
 * into errbuf, which may be NULL), ENPI_ESTATE on a SECONDARY.
 * Thread: the caller guarantees that no other thread uses the store's RocksDB instance
 * during the call (no commit, sweep, read or put_config in flight); inbox appends and
 * scans (the segment log) may go on. The commit cache is kept: it only ever holds what
 * a successful write stored.
 */
int enpi_store_reopen(enpi_store_t *st, char *errbuf, size_t errlen);

/* ---- storage health: room in the inbox (storage/inbox.c) ---- */

/*
 * True while the inbox could not allocate its spare segment: the next segment is
 * allocated (<store>/inbox/spare.tmp) as soon as a segment becomes active, so a full disk
 * shows here while the active segment still has up to a whole segment (64 MiB) of room,
 * enough for what the broker has in flight once the caller stops receiving. A failed
 * allocation is retried at most every second by this call (and at every segment switch
 * by the producer); the first call allocates the spare. False on a SECONDARY.
 * Thread: any, concurrently with appends; never waits for a producer that is allocating
 * (then the last known answer). Cheap when the spare exists (one uncontended lock).
 */
bool enpi_store_inbox_low_space(enpi_store_t *st);

/*
 * Prefaults the next pages the producer will append to (up to 512 KiB ahead of its write
 * position, in steps of at least 128 KiB), so that its appends find them mapped and do
 * not each stop for a page fault (the file system zero-filling a fresh page) on the
 * thread that must hand the message back to Paho quickly. Call it regularly from another
 * thread (enpid: the loop, after each drain); without it appends still work, only
 * slower. Does nothing on a kernel without MADV_POPULATE_WRITE (Linux < 5.14; logged
 * once), on a SECONDARY, or before the first append of this open.
 * Thread: any one thread, concurrently with appends, scans and commits.
 */
void enpi_store_inbox_populate_ahead(enpi_store_t *st);

#endif
