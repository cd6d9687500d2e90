/*
 * storage.h - enpi's RocksDB store: rollups, meter state, unknown meters, the learned
 * state of Sparkplug edge nodes, the inbox of messages not yet committed, and a copy of
 * the daemon's configuration text.
 *
 * The only module that includes rocksdb/c.h. Records are protobuf-c messages from
 * proto/store.proto. Keys (see keys.h) range-scan one meter's windows of one resolution
 * in time order and cannot collide between meter ids (the id is length-prefixed).
 *
 * DESIGN: enpid opens the store PRIMARY. enpi_store_inbox_append() may be called from
 * any thread (Paho's receive thread) concurrently with enpi_store_commit(), which one
 * thread at a time calls (the commit worker); RocksDB serialises the writes. A commit is
 * one atomic WriteBatch: merged rollups, meter states, unknown meters, Sparkplug edge node
 * states, the inbox cleared below the batch's inbox_upto. The CLI opens SECONDARY
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

typedef struct {
    uint64_t seq; /* strictly increasing, assigned by the producer */
    const char *topic;
    size_t topic_len;
    const void *payload;
    size_t payload_len;
    int64_t arrival_ms;
    bool redelivered; /* the broker marked it as a redelivery (MQTT DUP) */
} enpi_inbox_msg_t;

/* Appends one message (WAL on, no fsync: survives kill -9 of the process). Thread-safe.
 * Returns 0, or ENPI_EIO / ENPI_ENOMEM (then the caller must not acknowledge the message).
 * It waits while RocksDB inserts a concurrent commit's batch into its memtable (the one
 * write queue): tens to hundreds of ms for a batch of tens of thousands of windows. */
int enpi_store_inbox_append(enpi_store_t *st, const enpi_inbox_msg_t *m);

/* One past the highest sequence number ever appended or committed (1 for a new store):
 * max(1, highest inbox key + 1, the last commit's inbox_upto). Survives restarts, also when
 * the last commit emptied the inbox. */
int enpi_store_inbox_next_seq(enpi_store_t *st, uint64_t *next_out);

/* Calls cb for every inbox message with from <= seq < to, ascending. The message's
 * pointers are valid only during the call. cb returns nonzero to stop (returned as is).
 * Otherwise 0, ENPI_EIO, or ENPI_EPARSE for a record that does not decode. */
typedef int (*enpi_inbox_cb)(void *ctx, const enpi_inbox_msg_t *m);
int enpi_store_inbox_scan(enpi_store_t *st, uint64_t from, uint64_t to, enpi_inbox_cb cb,
                          void *ctx);

/* ---- commits ---- */

/*
 * Applies one batch atomically: each rollup delta is added to the stored rollup of its
 * (meter, resolution, window), meter states replaced, unknown meters' counts added,
 * Sparkplug edge node states replaced (or deleted, for a snapshot without state), inbox
 * messages below b->inbox_upto deleted. One caller at a time (keeps a cache of recent
 * rollups). On error nothing of the batch is written and the batch may be retried.
 * Several deltas of one batch for the same window are summed; a window's stored end is
 * that of its latest delta. The batch is only read (the caller still frees it). The write
 * is synced (fdatasync of the WAL), which also makes every inbox append before it durable
 * against power loss; a commit of 40,000 windows costs a few hundred ms, mostly RocksDB's.
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

#endif
