/*
 * retention.c - storage.retention: deleting the rollups of windows that ended longer ago
 * than a resolution's retention, and keeping commits out of those windows afterwards.
 *
 * Rollup keys are 'r' | res_code | id_len | id | start (keys.h), so one resolution's
 * windows of one meter are contiguous and ascend by start; the expired ones are a prefix
 * of that run. The sweep walks one resolution with an iterator, deletes each meter's
 * expired prefix and seeks straight past the rest of the meter's windows, so it reads
 * little more than what it deletes.
 *
 * Point deletes, not DeleteRange: the store's readers of non-inbox records skip range
 * tombstones (keys.h: range deletions only ever cover inbox keys), so a range-deleted
 * rollup would stay visible to them. Steady state deletes a handful of windows per meter
 * per hour, which point deletes handle easily; a large backlog (retention shortened, the
 * first sweep of an old store) goes in batches of SWEEP_BATCH keys and ends with a
 * background compaction hint for the swept range so the space really returns.
 *
 * Also here, as the other half of storage health: enpi_store_reopen, which replaces the
 * RocksDB instance after a write error (storage.h says why).
 *
 * DESIGN: the sweep uses only the thread-safe parts of the store (the RocksDB handle and
 * its own option objects), so it runs on any thread alongside inbox appends and commits;
 * each of its writes is a small unsynced WriteBatch, so the one RocksDB write queue is
 * never held long. It leaves the commit's rollup cache alone (that belongs to the commit
 * thread); enpi_store_retention_filter is what keeps commits out of swept windows.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

#define SWEEP_BATCH 1024        /* deletes per WriteBatch: a short hold of the write queue */
#define SWEEP_COMPACT_MIN 65536 /* deletions in one resolution that earn a compaction hint */
#define REOPEN_BLOCK_CACHE_BYTES (32u << 20) /* as store.c's primary open */
#define INFO_LOG_FATAL 4                     /* RocksDB's InfoLogLevel FATAL_LEVEL */

int64_t enpi_store_retention_cutoff(int64_t now_ms, const enpi_duration_t *keep)
{
    if (keep->months <= 0)
        return now_ms - keep->ms;
    const int64_t day_ms = 86400000;
    int64_t days = enpi_floor_div(now_ms, day_ms);
    int64_t time_of_day = now_ms - days * day_ms;
    int y, m, d;
    enpi_civil_from_days(days, &y, &m, &d);
    int64_t month_index = (int64_t)y * 12 + (m - 1) - keep->months;
    int ny = (int)enpi_floor_div(month_index, 12);
    int nm = (int)(month_index - (int64_t)ny * 12) + 1;
    /* Clamp the day to the target month's length: the first of the next month minus one. */
    int next_y = nm == 12 ? ny + 1 : ny;
    int next_m = nm == 12 ? 1 : nm + 1;
    int64_t month_len = enpi_days_from_civil(next_y, next_m, 1) - enpi_days_from_civil(ny, nm, 1);
    int nd = d > month_len ? (int)month_len : d;
    return enpi_days_from_civil(ny, nm, nd) * day_ms + time_of_day;
}

size_t enpi_store_retention_filter(enpi_batch_t *b, const enpi_retention_cutoff_t *cutoffs,
                                   size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *dl = &b->rollups[i];
        bool expired = false;
        for (size_t k = 0; k < n; k++) {
            if (cutoffs[k].res_code == dl->res_code && dl->end <= cutoffs[k].cutoff_ms) {
                expired = true;
                break;
            }
        }
        if (expired)
            continue;
        if (kept != i)
            b->rollups[kept] = *dl;
        kept++;
    }
    size_t removed = b->n_rollups - kept;
    b->n_rollups = kept;
    return removed;
}

/* The state of one resolution's walk: the pending WriteBatch and what it covered. */
typedef struct {
    enpi_store_t *st;
    rocksdb_writeoptions_t *wo;
    rocksdb_writebatch_t *wb;
    uint8_t first[ENPI_KEY_ROLLUP_MAX]; /* the first key deleted in this resolution */
    size_t first_len;
    uint8_t last[ENPI_KEY_ROLLUP_MAX]; /* the last one */
    size_t last_len;
    uint64_t flushed; /* deletions written in this resolution */
} sweep_t;

static int flush_deletes(sweep_t *sw)
{
    if (rocksdb_writebatch_count(sw->wb) == 0)
        return 0;
    char *err = NULL;
    rocksdb_write(sw->st->db, sw->wo, sw->wb, &err);
    uint64_t count = (uint64_t)rocksdb_writebatch_count(sw->wb);
    rocksdb_writebatch_clear(sw->wb);
    if (err)
        return enpi_store_fail("retention: deleting expired windows", err);
    sw->flushed += count;
    return 0;
}

static bool stop_requested(const _Atomic bool *stop)
{
    /* Relaxed: a hint read between batches; nothing else is published through it. */
    return stop && atomic_load_explicit(stop, memory_order_relaxed);
}

/* Asks RocksDB to compact [first, last] of a resolution in the background. A failure
 * only costs disk space until regular compaction gets there: logged, not returned. */
static void suggest_compaction(sweep_t *sw)
{
    /* The limit is exclusive: the last deleted key with a byte appended lies past it and
     * before any other key. */
    uint8_t limit[ENPI_KEY_ROLLUP_MAX + 1];
    memcpy(limit, sw->last, sw->last_len);
    limit[sw->last_len] = 0;
    char *err = NULL;
    rocksdb_suggest_compact_range(sw->st->db, (const char *)sw->first, sw->first_len,
                                  (const char *)limit, sw->last_len + 1, &err);
    if (err) {
        log_warn("storage: retention: compaction hint refused: %s", err);
        rocksdb_free(err);
    }
}

/*
 * Deletes one resolution's expired windows. Walks the resolution's key range; for each
 * meter, deletes windows from its oldest on while they end at or before the cutoff, then
 * seeks to the meter's last possible key and beyond it.
 */
static int sweep_resolution(sweep_t *sw, enpi_retention_cutoff_t *c, const _Atomic bool *stop,
                            enpi_retention_stats_t *stats)
{
    uint8_t lower[5], upper[5];
    lower[0] = ENPI_KEY_ROLLUP;
    enpi_store_put_u32be(lower + 1, c->res_code);
    /* One past the resolution: the next code, or the next record type after 0xFFFFFFFF. */
    if (c->res_code == UINT32_MAX) {
        upper[0] = ENPI_KEY_ROLLUP + 1;
        memset(upper + 1, 0, 4);
    } else {
        upper[0] = ENPI_KEY_ROLLUP;
        enpi_store_put_u32be(upper + 1, c->res_code + 1);
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_fill_cache(ro, 0); /* old windows: keep the block cache for commits */
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lower, sizeof lower);
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, sizeof upper);
    rocksdb_iterator_t *it = rocksdb_create_iterator(sw->st->db, ro);
    int rc = 0;
    sw->first_len = sw->last_len = 0;
    sw->flushed = 0;

    rocksdb_iter_seek(it, (const char *)lower, sizeof lower);
    while (rocksdb_iter_valid(it)) {
        size_t klen, vlen;
        const uint8_t *key = (const uint8_t *)rocksdb_iter_key(it, &klen);
        uint32_t res;
        const char *id;
        size_t id_len;
        int64_t start;
        if (!enpi_store_key_parse_rollup(key, klen, &res, &id, &id_len, &start) ||
            res != c->res_code) {
            log_err("storage: retention: a malformed rollup key in resolution %u", c->res_code);
            rc = ENPI_EPARSE;
            break;
        }
        stats->examined++;
        bool expired = false;
        if (start < c->cutoff_ms) { /* else end > start >= cutoff: no need to decode */
            const char *val = rocksdb_iter_value(it, &vlen);
            enpi_rollup_t r;
            int64_t end;
            if (enpi_store_rec_rollup_decode(val, vlen, &r, &end) != 0) {
                log_err("storage: retention: a stored rollup does not decode");
                rc = ENPI_EPARSE;
                break;
            }
            expired = end <= c->cutoff_ms;
        }
        if (expired) {
            rocksdb_writebatch_delete(sw->wb, (const char *)key, klen);
            if (sw->first_len == 0) {
                memcpy(sw->first, key, klen);
                sw->first_len = klen;
            }
            memcpy(sw->last, key, klen);
            sw->last_len = klen;
            if (rocksdb_writebatch_count(sw->wb) >= SWEEP_BATCH) {
                if ((rc = flush_deletes(sw)) != 0)
                    break;
                if (stop_requested(stop)) {
                    stats->stopped = true;
                    break;
                }
            }
            rocksdb_iter_next(it);
            continue;
        }
        /* This window is live, so are the meter's later ones: go to the next meter. Its
         * last possible key is the prefix followed by the largest encoded start. */
        stats->meters++;
        uint8_t past[ENPI_KEY_ROLLUP_MAX];
        size_t plen = enpi_store_key_rollup_prefix(past, c->res_code, id, id_len);
        memset(past + plen, 0xFF, 8);
        rocksdb_iter_seek(it, (const char *)past, plen + 8);
        if (rocksdb_iter_valid(it)) {
            const char *k2 = rocksdb_iter_key(it, &klen);
            if (klen == plen + 8 && memcmp(k2, past, klen) == 0)
                rocksdb_iter_next(it);
        }
    }
    if (rc == 0) {
        char *err = NULL;
        rocksdb_iter_get_error(it, &err);
        if (err)
            rc = enpi_store_fail("retention: reading rollups", err);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (rc == 0)
        rc = flush_deletes(sw);
    else
        rocksdb_writebatch_clear(sw->wb); /* what was flushed stays deleted; that is fine */
    c->deleted = sw->flushed;             /* the unflushed rest of a failed walk did not happen */
    stats->deleted += c->deleted;
    if (rc == 0 && c->deleted >= SWEEP_COMPACT_MIN) {
        suggest_compaction(sw);
        stats->compaction_suggested = true;
    }
    return rc;
}

int enpi_store_retention_sweep(enpi_store_t *st, enpi_retention_cutoff_t *cutoffs, size_t n,
                               const _Atomic bool *stop, enpi_retention_stats_t *stats)
{
    enpi_retention_stats_t local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (n > 0 && !cutoffs)
        return ENPI_EINVAL;
    if (!enpi_store_writable(st, "retention sweep"))
        return ENPI_ESTATE;
    for (size_t i = 0; i < n; i++)
        cutoffs[i].deleted = 0;

    sweep_t sw = {.st = st};
    sw.wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(sw.wo, 0); /* a lost deletion is redone by the next sweep */
    sw.wb = rocksdb_writebatch_create();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0 && !stats->stopped; i++) {
        if (i > 0 && stop_requested(stop)) {
            stats->stopped = true;
            break;
        }
        rc = sweep_resolution(&sw, &cutoffs[i], stop, stats);
    }
    rocksdb_writebatch_destroy(sw.wb);
    rocksdb_writeoptions_destroy(sw.wo);
    return rc;
}

/* ---- reopening after a write error ---- */

static void set_errbuf(char *errbuf, size_t errlen, const char *what, const char *err)
{
    if (errbuf && errlen > 0)
        snprintf(errbuf, errlen, "%s: %s", what, err ? err : "unknown RocksDB error");
}

/*
 * Opens st->path with the loaded options, as primary (read_only false) or read-only.
 * The column family handles are not kept: the store uses the default family only.
 */
static rocksdb_t *open_with(const enpi_store_t *st, rocksdb_options_t *db_opts, size_t n_cf,
                            char **cf_names, rocksdb_options_t **cf_opts, bool read_only,
                            char **err)
{
    rocksdb_column_family_handle_t **handles = calloc(n_cf, sizeof *handles);
    if (!handles) {
        *err = strdup("out of memory");
        return NULL;
    }
    rocksdb_t *db;
    if (read_only)
        db = rocksdb_open_for_read_only_column_families(
            db_opts, st->path, (int)n_cf, (const char *const *)cf_names,
            (const rocksdb_options_t *const *)cf_opts, handles, 0, err);
    else
        db = rocksdb_open_column_families(db_opts, st->path, (int)n_cf,
                                          (const char *const *)cf_names,
                                          (const rocksdb_options_t *const *)cf_opts, handles, err);
    if (!*err) {
        for (size_t i = 0; i < n_cf; i++)
            rocksdb_column_family_handle_destroy(handles[i]);
    }
    free(handles);
    return *err ? NULL : db;
}

/*
 * The folder for the reopened instance's info LOG: a private folder under $TMPDIR (or
 * /tmp), made once and kept in st->scratch_dir, which enpi_store_close removes (a
 * primary has no other use for it). Away from the store's disk, because RocksDB writes
 * the LOG's header lines while it opens, and a second write to a LOG file that failed
 * once aborts the process (the same assertion as the WAL's). NULL when it cannot be
 * made: the LOG then stays in the store folder.
 */
static const char *reopen_log_dir(enpi_store_t *st)
{
    if (st->scratch_dir)
        return st->scratch_dir;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + sizeof "/enpi-rocksdb-log-XXXXXX";
    char *dir = malloc(n);
    if (!dir)
        return NULL;
    snprintf(dir, n, "%s/enpi-rocksdb-log-XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        log_warn("storage: reopen: cannot make a folder for RocksDB's log in %s", tmp);
        free(dir);
        return NULL;
    }
    st->scratch_dir = dir;
    return dir;
}

int enpi_store_reopen(enpi_store_t *st, char *errbuf, size_t errlen)
{
    if (!enpi_store_writable(st, "reopen"))
        return ENPI_ESTATE;
    rocksdb_cache_t *cache = rocksdb_cache_create_lru(REOPEN_BLOCK_CACHE_BYTES);
    rocksdb_env_t *env = rocksdb_create_default_env();
    rocksdb_options_t *db_opts = NULL;
    rocksdb_options_t **cf_opts = NULL;
    char **cf_names = NULL;
    size_t n_cf = 0;
    char *err = NULL;
    int rc = 0;
    rocksdb_load_latest_options(st->path, env, false, cache, &db_opts, &n_cf, &cf_names, &cf_opts,
                                &err);
    if (err) {
        /* The old instance stays: without its options the store cannot be reopened. */
        set_errbuf(errbuf, errlen, "reopen: reading the store's options", err);
        rc = enpi_store_fail("reopen: reading the store's options", err);
        goto free_env;
    }
    /* A failed write leaves RocksDB's own LOG writer unusable too, and the next line
     * logged through it would abort: keep the new instance's LOG to fatal messages. */
    rocksdb_options_set_info_log_level(db_opts, INFO_LOG_FATAL);
    rocksdb_options_set_create_if_missing(db_opts, 0);
    const char *log_dir = reopen_log_dir(st);
    if (log_dir)
        rocksdb_options_set_db_log_dir(db_opts, log_dir);

    rocksdb_close(st->db);
    st->db = open_with(st, db_opts, n_cf, cf_names, cf_opts, false, &err);
    if (err) {
        set_errbuf(errbuf, errlen, "reopen", err);
        rc = enpi_store_fail("reopen: the store is still not writable", err); /* frees err */
        err = NULL;
        /* Readers must keep a handle: read-only needs no space on disk. */
        st->db = open_with(st, db_opts, n_cf, cf_names, cf_opts, true, &err);
        if (err) {
            /* Cannot happen short of the store vanishing; nothing else can be done. */
            log_err("storage: reopen: cannot open %s even read-only: %s; aborting", st->path, err);
            rocksdb_free(err);
            abort();
        }
    } else {
        log_notice("storage: reopened %s: writable again", st->path);
    }
    rocksdb_load_latest_options_destroy(db_opts, cf_names, cf_opts, n_cf);
free_env:
    rocksdb_env_destroy(env);
    rocksdb_cache_destroy(cache);
    return rc;
}
