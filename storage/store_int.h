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

struct enpi_store {
    rocksdb_t *db;
    enpi_store_mode_t mode;
    char *path;                        /* the store folder, as given */
    char *scratch_dir;                 /* SECONDARY: private temp folder, removed at close */
    rocksdb_writeoptions_t *wo_inbox;  /* WAL on, no fsync */
    rocksdb_writeoptions_t *wo_commit; /* WAL on, fsync: a commit survives power loss */
    rocksdb_readoptions_t *ro_records; /* non-inbox keys: range tombstones skipped (keys.h) */
    rocksdb_readoptions_t *ro_plain;   /* default read options */
    uint32_t format_version;           /* Meta.format_version found (or written) at open */
    /* commit thread */
    uint64_t inbox_upto; /* Meta.inbox_upto as stored */
    bool inbox_swept;    /* a commit of this open deleted the inbox from seq 0 */
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

/* True when the store may be written (opened PRIMARY); logs once per call otherwise. */
bool enpi_store_writable(const enpi_store_t *st, const char *what);

#endif
