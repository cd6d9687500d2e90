/*
 * store.c - opening and closing an enpi store: RocksDB options for a long-running daemon
 * (primary) or a read-only follower in another process (secondary), the store format
 * check, and the conversion of RocksDB errors at this boundary.
 *
 * Options, kept deliberately few:
 *   - LZ4 compression (Debian's librocksdb is built with it): cheap on CPU, halves the
 *     size of rollup blocks.
 *   - a 32 MiB LRU block cache and a 10-bit full bloom filter per table file, so the
 *     point reads of a commit's rollup read-modify-write that miss (a new window has no
 *     stored rollup yet) rarely touch the disk.
 *   - 16 MiB memtables (RocksDB's default is 64), up to 4 of them: a commit inserts tens
 *     of thousands of keys, and inserting into a smaller skiplist is measurably cheaper;
 *     flushes stay small, and a slow flush does not stall the next commits.
 *   - memtable inserts with a hint per record kind (with_insert_hint).
 *   - two background jobs, dynamic level sizes, and a bounded info LOG (4 files of 8 MiB)
 *     so a daemon that runs for years does not fill its disk with RocksDB's own log.
 *   - a secondary uses max_open_files = -1 (RocksDB requires it) and a private scratch
 *     folder under $TMPDIR (or /tmp) for its own LOG and MANIFEST copy; nothing is created
 *     in the store folder.
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

#define BLOCK_CACHE_BYTES (32u << 20)
#define WRITE_BUFFER_BYTES (16u << 20)
#define WRITE_BUFFERS 4
#define BLOOM_BITS_PER_KEY 10.0
#define INFO_LOG_FILE_BYTES (8u << 20)
#define INFO_LOG_FILES 4
#define SECONDARY_OPEN_ATTEMPTS 3

int enpi_store_fail(const char *what, char *err)
{
    log_err("storage: %s: %s", what, err ? err : "unknown RocksDB error");
    rocksdb_free(err);
    return ENPI_EIO;
}

bool enpi_store_writable(const enpi_store_t *st, const char *what)
{
    if (st->mode == ENPI_STORE_PRIMARY)
        return true;
    log_err("storage: %s: store is open read-only (secondary)", what);
    return false;
}

static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

/* RocksDB reports a LOCK file held elsewhere as an IO error: "While lock file: <path>/LOCK:
 * Resource temporarily unavailable" when another process holds it, "lock hold by current
 * process" when this one does. (Failing to create LOCK reads "While open a file for lock"
 * and is a plain I/O error.) */
static bool is_lock_error(const char *err)
{
    return strstr(err, "While lock file") || strstr(err, "lock hold by current process");
}

/* Test hook: ENPID_TEST_WRITE_BUFFER_BYTES=n (>= 4096) shrinks the memtable so that a
 * short test sees memtable flushes and compactions underneath its readers
 * (tests/faults/test_cli_lag.py). */
static size_t write_buffer_bytes(void)
{
    const char *s = getenv("ENPID_TEST_WRITE_BUFFER_BYTES");
    if (s != NULL && *s != '\0') {
        unsigned long long v = strtoull(s, NULL, 10);
        if (v >= 4096)
            return (size_t)v;
    }
    return WRITE_BUFFER_BYTES;
}

/*
 * Memtable inserts with a hint: RocksDB's skiplist keeps one "splice" (the insert position
 * at every level) per prefix of this extractor and repairs it from the bottom level up,
 * so an insert near the previous one costs O(log distance). Without it (the C API has no
 * setter, only the option string), a commit's sorted keys land between the older versions
 * of the same windows and every insert searches from the top: measured with bench_store's
 * steady commits, the hint saves ~28 % of a commit's CPU. The 1-byte prefix is the record
 * kind ('r' rollups, 'm' meters, ...): each kind's keys are written in order.
 * Returns the options to use (opts itself when the option is unknown to this RocksDB).
 */
static rocksdb_options_t *with_insert_hint(rocksdb_options_t *opts)
{
    rocksdb_options_t *hinted = rocksdb_options_create();
    char *err = NULL;
    rocksdb_get_options_from_string(
        opts, "memtable_insert_with_hint_prefix_extractor=rocksdb.FixedPrefix.1", hinted, &err);
    if (err != NULL) {
        log_warn("storage: memtable insert hints unavailable (%s); commits cost more CPU", err);
        rocksdb_free(err);
        rocksdb_options_destroy(hinted);
        return opts;
    }
    rocksdb_options_destroy(opts);
    return hinted;
}

static rocksdb_options_t *make_options(enpi_store_mode_t mode)
{
    rocksdb_options_t *opts = with_insert_hint(rocksdb_options_create());
    rocksdb_options_set_create_if_missing(opts, mode == ENPI_STORE_PRIMARY);
    rocksdb_options_set_compression(opts, rocksdb_lz4_compression);
    rocksdb_options_set_write_buffer_size(opts, write_buffer_bytes());
    rocksdb_options_set_max_write_buffer_number(opts, WRITE_BUFFERS);
    rocksdb_options_set_max_background_jobs(opts, 2);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(opts, 1);
    rocksdb_options_set_max_log_file_size(opts, INFO_LOG_FILE_BYTES);
    rocksdb_options_set_keep_log_file_num(opts, INFO_LOG_FILES);
    /* Only fatal messages in RocksDB's info LOG (4 = FATAL_LEVEL): Debian's RocksDB 7.8
     * aborts on an assertion when it writes a WARN or ERROR line through a LOG file whose
     * previous write failed, which is exactly what a full disk produces (the failed WAL
     * write is logged there). Errors reach enpid's own log through the returned status. */
    rocksdb_options_set_info_log_level(opts, 4);
    if (mode == ENPI_STORE_SECONDARY)
        rocksdb_options_set_max_open_files(opts, -1);

    /* The factory copies the table options, which hold shared references to the cache
     * and the filter policy: the wrappers can go right away. */
    rocksdb_block_based_table_options_t *topts = rocksdb_block_based_options_create();
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(BLOCK_CACHE_BYTES);
    rocksdb_block_based_options_set_block_cache(topts, cache);
    rocksdb_block_based_options_set_filter_policy(
        topts, rocksdb_filterpolicy_create_bloom_full(BLOOM_BITS_PER_KEY));
    rocksdb_options_set_block_based_table_factory(opts, topts);
    rocksdb_block_based_options_destroy(topts);
    rocksdb_cache_destroy(cache);
    return opts;
}

static int remove_entry_cb(const char *fpath, const struct stat *sb, int typeflag,
                           struct FTW *ftwbuf)
{
    if (remove(fpath) != 0)
        log_warn("storage: cannot remove %s: %s", fpath, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A store exists where RocksDB's CURRENT file names its manifest. */
static int check_store_exists(const char *path, char *errbuf, size_t errlen)
{
    char current[4096];
    if (snprintf(current, sizeof current, "%s/CURRENT", path) >= (int)sizeof current) {
        set_err(errbuf, errlen, "store path too long: %s", path);
        return ENPI_EINVAL;
    }
    if (access(current, F_OK) == 0)
        return 0;
    if (errno == ENOENT || errno == ENOTDIR) {
        set_err(errbuf, errlen, "no enpi store at %s", path);
        return ENPI_ENOENT;
    }
    set_err(errbuf, errlen, "cannot access %s: %s", current, strerror(errno));
    return ENPI_EIO;
}

static int make_scratch_dir(enpi_store_t *st, char *errbuf, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + sizeof "/enpi-secondary-XXXXXX";
    st->scratch_dir = malloc(n);
    if (!st->scratch_dir)
        return ENPI_ENOMEM;
    snprintf(st->scratch_dir, n, "%s/enpi-secondary-XXXXXX", tmp);
    if (!mkdtemp(st->scratch_dir)) {
        set_err(errbuf, errlen, "cannot create a scratch folder in %s: %s", tmp, strerror(errno));
        free(st->scratch_dir);
        st->scratch_dir = NULL;
        return ENPI_EIO;
    }
    return 0;
}

/* Primary: writes Meta into a new store. Both modes: refuse a newer format. */
static int check_format(enpi_store_t *st, char *errbuf, size_t errlen)
{
    bool found;
    uint32_t version;
    uint64_t upto;
    int rc = enpi_store_meta_read(st, &found, &version, &upto);
    if (rc) {
        set_err(errbuf, errlen, "cannot read the store's meta record: %s", enpi_strerror(rc));
        return rc;
    }
    if (found && version > ENPI_STORE_FORMAT_VERSION) {
        set_err(errbuf, errlen, "store %s has format %u; this enpi reads format %u (upgrade enpi)",
                st->path, version, ENPI_STORE_FORMAT_VERSION);
        return ENPI_ERANGE;
    }
    st->format_version = found ? version : ENPI_STORE_FORMAT_VERSION;
    st->inbox_upto = upto;
    if (found || st->mode != ENPI_STORE_PRIMARY)
        return 0;

    uint8_t val[ENPI_REC_META_MAX];
    size_t vlen = enpi_store_rec_meta_encode(ENPI_STORE_FORMAT_VERSION, 0, val);
    char *err = NULL;
    rocksdb_put(st->db, st->wo_commit, ENPI_KEY_META, sizeof ENPI_KEY_META - 1, (char *)val, vlen,
                &err);
    if (err) {
        set_err(errbuf, errlen, "cannot initialise store %s: %s", st->path, err);
        return enpi_store_fail("writing meta", err);
    }
    return 0;
}

int enpi_store_open(const char *path, enpi_store_mode_t mode, enpi_store_t **out, char *errbuf,
                    size_t errlen)
{
    *out = NULL;
    if (!path || !*path || (mode != ENPI_STORE_PRIMARY && mode != ENPI_STORE_SECONDARY)) {
        set_err(errbuf, errlen, "invalid store path or mode");
        return ENPI_EINVAL;
    }
    enpi_store_t *st = calloc(1, sizeof *st);
    if (!st)
        return ENPI_ENOMEM;
    int rc = 0;
    st->mode = mode;
    enpi_rollup_cache_init(&st->cache, ENPI_ROLLUP_CACHE_DEFAULT);
    st->path = strdup(path);
    if (!st->path) {
        rc = ENPI_ENOMEM;
        goto close_store;
    }
    if (mode == ENPI_STORE_SECONDARY) {
        if ((rc = check_store_exists(path, errbuf, errlen)) != 0)
            goto close_store;
        if ((rc = make_scratch_dir(st, errbuf, errlen)) != 0)
            goto close_store;
    }

    st->wo_commit = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(st->wo_commit, 1);
    st->ro_plain = rocksdb_readoptions_create();
    st->ro_records = rocksdb_readoptions_create();
    rocksdb_readoptions_set_ignore_range_deletions(st->ro_records, 1);

    rocksdb_options_t *opts = make_options(mode);
    char *err = NULL;
    if (mode == ENPI_STORE_PRIMARY) {
        st->db = rocksdb_open(opts, path, &err);
    } else {
        /* A running primary may delete a WAL or table file between the secondary listing
         * and opening it; a fresh attempt sees the new file set. */
        for (int attempt = 1;; attempt++) {
            st->db = rocksdb_open_as_secondary(opts, path, st->scratch_dir, &err);
            if (!err || attempt == SECONDARY_OPEN_ATTEMPTS)
                break;
            log_debug("storage: secondary open of %s, attempt %d: %s", path, attempt, err);
            rocksdb_free(err);
            err = NULL;
        }
    }
    rocksdb_options_destroy(opts);
    if (err) {
        st->db = NULL;
        if (mode == ENPI_STORE_PRIMARY && is_lock_error(err)) {
            set_err(errbuf, errlen, "store %s is in use by another process (%s)", path, err);
            rc = ENPI_EBUSY;
        } else {
            set_err(errbuf, errlen, "cannot open store %s: %s", path, err);
            rc = ENPI_EIO;
        }
        log_debug("storage: open %s: %s", path, err);
        rocksdb_free(err);
        goto close_store;
    }
    if ((rc = check_format(st, errbuf, errlen)) != 0)
        goto close_store;
    if (mode == ENPI_STORE_PRIMARY) {
        /* After RocksDB's LOCK is ours: the inbox folder is this process's alone. */
        if ((rc = enpi_inbox_drop_legacy(st)) != 0 ||
            (rc = enpi_inbox_log_open(path, st->inbox_upto, &st->inbox)) != 0) {
            set_err(errbuf, errlen, "cannot open the inbox of store %s: %s", path,
                    enpi_strerror(rc));
            goto close_store;
        }
    }
    log_debug("storage: opened %s (%s, format %u, inbox committed below %llu)", path,
              mode == ENPI_STORE_PRIMARY ? "primary" : "secondary", st->format_version,
              (unsigned long long)st->inbox_upto);
    *out = st;
    return 0;

close_store:
    enpi_store_close(st);
    return rc;
}

void enpi_store_close(enpi_store_t *st)
{
    if (!st)
        return;
    enpi_inbox_log_close(st->inbox);
    if (st->db)
        rocksdb_close(st->db);
    if (st->wo_commit)
        rocksdb_writeoptions_destroy(st->wo_commit);
    if (st->ro_plain)
        rocksdb_readoptions_destroy(st->ro_plain);
    if (st->ro_records)
        rocksdb_readoptions_destroy(st->ro_records);
    enpi_rollup_cache_clear(&st->cache);
    if (st->scratch_dir) {
        remove_tree(st->scratch_dir);
        free(st->scratch_dir);
    }
    free(st->path);
    free(st);
}

int enpi_store_catch_up(enpi_store_t *st)
{
    if (st->mode != ENPI_STORE_SECONDARY)
        return 0; /* a primary is always current */
    char *err = NULL;
    rocksdb_try_catch_up_with_primary(st->db, &err);
    if (err)
        return enpi_store_fail("catching up with the primary", err);
    return 0;
}

void enpi_store_set_cache_limit(enpi_store_t *st, size_t entries)
{
    enpi_rollup_cache_set_limit(&st->cache, entries);
}

void enpi_store_cache_stats(const enpi_store_t *st, enpi_store_cache_stats_t *out)
{
    out->entries = enpi_rollup_cache_count(&st->cache);
    out->limit = st->cache.limit;
    out->hits = st->cache.hits;
    out->misses = st->cache.misses;
}

void enpi_store_inject_commit_failures(enpi_store_t *st, unsigned n)
{
    st->injected_failures = n;
}
