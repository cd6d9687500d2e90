/*
 * store_int.h - the inside of enpi_store_t, shared by the files of storage/ (private).
 *
 * DESIGN: the RocksDB handle and the option objects are created at open and read-only
 * afterwards, so any thread may use them (RocksDB is thread-safe). The fields marked
 * "commit thread" belong to the one thread that runs enpi_store_commit() at a time.
 */
#ifndef ENPI_STORAGE_STORE_INT_H
#define ENPI_STORAGE_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <rocksdb/c.h>

#include "cache.h"
#include "storage.h"

/* ---- the inbox segment log (inbox.c) ---- */

#define ENPI_INBOX_SEGMENT_BYTES (64u << 20) /* size of each inbox segment file */

typedef struct enpi_inbox_log enpi_inbox_log_t;

/* Opens (creating) the log in <store_path>/inbox: deletes segments wholly below
 * `committed` (Meta.inbox_upto), recovers the valid prefix of the others. Returns 0,
 * ENPI_EIO (logged) or ENPI_ENOMEM. */
int enpi_inbox_log_open(const char *store_path, uint64_t committed, enpi_inbox_log_t **out);
void enpi_inbox_log_close(enpi_inbox_log_t *log); /* no scan or append may be running */
/* Commit thread, before the commit's write: fdatasync what was appended since the last
 * call. Returns 0 or ENPI_EIO (logged). */
int enpi_inbox_log_sync(enpi_inbox_log_t *log);
/* Commit thread, after a write that stored Meta.inbox_upto = upto: releases the log below. */
void enpi_inbox_log_committed(enpi_inbox_log_t *log, uint64_t upto);

struct enpi_store {
    rocksdb_t *db;
    enpi_store_mode_t mode;
    char *path;                        /* the store folder, as given */
    char *scratch_dir;                 /* SECONDARY: private temp folder, removed at close */
    rocksdb_writeoptions_t *wo_commit; /* WAL on, fsync: a commit survives power loss */
    rocksdb_readoptions_t *ro_records; /* non-inbox keys: range tombstones skipped (keys.h) */
    rocksdb_readoptions_t *ro_plain;   /* default read options */
    uint32_t format_version;           /* Meta.format_version found (or written) at open */
    enpi_inbox_log_t *inbox;           /* PRIMARY: the inbox segment log; NULL on a SECONDARY */
    /* commit thread */
    uint64_t inbox_upto; /* Meta.inbox_upto as stored */
    enpi_rollup_cache_t cache;
    unsigned injected_failures; /* commits still to fail (enpi_store_inject_...) */
};

/*
 * Converts a RocksDB error at the boundary: logs "storage: <what>: <err>" at error level,
 * frees err with rocksdb_free and returns ENPI_EIO.
 */
int enpi_store_fail(const char *what, char *err);

/* Reads Meta; *found false (and zeros) when the store has none yet. ENPI_EIO/EPARSE. */
int enpi_store_meta_read(enpi_store_t *st, bool *found, uint32_t *format_version,
                         uint64_t *inbox_upto);

/* PRIMARY open: deletes inbox keys an older enpi kept in RocksDB (inbox.c). 0 or ENPI_EIO. */
int enpi_inbox_drop_legacy(enpi_store_t *st);

/* True when the store may be written (opened PRIMARY); logs once per call otherwise. */
bool enpi_store_writable(const enpi_store_t *st, const char *what);

#endif
