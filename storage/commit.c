/*
 * commit.c - turns one enpi_batch_t into one atomic RocksDB WriteBatch.
 *
 * Rollups are stored whole, batches carry increments: for every window a batch touches,
 * the stored rollup is fetched (from the bounded cache of recently written rollups, else
 * with one multi-get for all the misses), the batch's increments for that window are
 * added (several for the same window are first summed, in batch order), and the sum is
 * put. Meter states are put whole; unknown meters add their counts and keep the newest
 * topic and time; Sparkplug edge node states are put whole (or deleted); the inbox below
 * the batch's inbox_upto is released: Meta records the new inbox_upto in the same write,
 * and the inbox log (inbox.c, files outside RocksDB) skips and deletes what lies below it.
 * All of it goes through a single rocksdb_write, so after a crash the store holds either
 * the whole batch or none of it, and the inbox holds exactly the messages not yet
 * reflected. The cache is
 * updated only after the write succeeded, so a failed commit leaves no trace and the same
 * batch can simply be retried.
 *
 * DESIGN: one commit at a time (the commit worker); it may run while another thread
 * appends to the inbox log or reads.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

#define MULTI_GET_CHUNK 1024 /* keys per rocksdb_multi_get call: bounds the temporary arrays */

/* A key of the batch (a rollup window or a meter state), sorted with its index in the
 * batch: equal rollup keys are the deltas of one window. */
typedef struct {
    const uint8_t *key; /* into the key arena */
    uint32_t klen;
    uint32_t idx; /* the delta's index in the batch: ties keep batch order */
} delta_key_t;

/* One distinct window of the batch and the figures it will be stored with. */
typedef struct {
    const uint8_t *key;
    uint32_t klen;
    enpi_rollup_cache_entry_t *cached; /* the cache entry the base came from, or NULL */
    enpi_rollup_t r;                   /* the sum to store */
    int64_t end_ms;
} window_work_t;

typedef struct {
    uint8_t *key_arena;
    delta_key_t *keys;
    window_work_t *work;
    size_t n_work;
    uint8_t *scratch; /* growable encode buffer for variable-size records */
    size_t scratch_cap;
} commit_ctx_t;

static int cmp_key_bytes(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int cmp_delta_key(const void *pa, const void *pb)
{
    const delta_key_t *a = pa, *b = pb;
    int c = cmp_key_bytes(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void rollup_add(enpi_rollup_t *acc, const enpi_rollup_t *d)
{
    acc->value += d->value;
    acc->estimated += d->estimated;
    acc->readings += d->readings;
    acc->resets += d->resets;
    acc->late += d->late;
    acc->duplicates += d->duplicates;
}

static uint8_t *scratch_reserve(commit_ctx_t *cx, size_t n)
{
    if (n > cx->scratch_cap) {
        size_t cap = cx->scratch_cap ? cx->scratch_cap : 256;
        while (cap < n)
            cap *= 2;
        uint8_t *p = realloc(cx->scratch, cap);
        if (!p)
            return NULL;
        cx->scratch = p;
        cx->scratch_cap = cap;
    }
    return cx->scratch;
}

/* Builds every delta's key, sorts them and folds equal keys into window_work_t entries
 * holding the summed increments. ENPI_EINVAL for a delta naming no meter or a bad id. */
static int fold_deltas(commit_ctx_t *cx, const enpi_batch_t *b)
{
    if (b->n_rollups == 0)
        return 0;
    if (b->n_rollups > UINT32_MAX)
        return ENPI_ERANGE;
    size_t *id_len = calloc(b->n_meters ? b->n_meters : 1, sizeof *id_len);
    if (!id_len)
        return ENPI_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < b->n_meters; i++) {
        const char *id = b->meters[i].meter_id;
        id_len[i] = id ? strlen(id) : 0;
    }
    size_t arena = 0;
    for (size_t i = 0; i < b->n_rollups; i++) {
        uint32_t m = b->rollups[i].meter;
        if (m >= b->n_meters || id_len[m] == 0 || id_len[m] > ENPI_KEY_ID_MAX) {
            log_err("storage: commit: rollup delta %zu names meter %u of %zu (or a bad id)", i, m,
                    b->n_meters);
            rc = ENPI_EINVAL;
            goto free_id_len;
        }
        arena += 6 + id_len[m] + 8;
    }
    cx->key_arena = malloc(arena);
    cx->keys = malloc(b->n_rollups * sizeof *cx->keys);
    cx->work = malloc(b->n_rollups * sizeof *cx->work);
    if (!cx->key_arena || !cx->keys || !cx->work) {
        rc = ENPI_ENOMEM;
        goto free_id_len;
    }
    uint8_t *p = cx->key_arena;
    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *d = &b->rollups[i];
        size_t klen = enpi_store_key_rollup(p, d->res_code, b->meters[d->meter].meter_id,
                                            id_len[d->meter], d->start);
        cx->keys[i] = (delta_key_t){.key = p, .klen = (uint32_t)klen, .idx = (uint32_t)i};
        p += klen;
    }
    qsort(cx->keys, b->n_rollups, sizeof *cx->keys, cmp_delta_key);

    for (size_t i = 0; i < b->n_rollups;) {
        window_work_t *w = &cx->work[cx->n_work++];
        memset(w, 0, sizeof *w);
        w->key = cx->keys[i].key;
        w->klen = cx->keys[i].klen;
        size_t j = i;
        for (; j < b->n_rollups &&
               cmp_key_bytes(cx->keys[j].key, cx->keys[j].klen, w->key, w->klen) == 0;
             j++) {
            const enpi_rollup_delta_t *d = &b->rollups[cx->keys[j].idx];
            rollup_add(&w->r, &d->delta);
            w->end_ms = d->end; /* the latest delta's end wins */
        }
        i = j;
    }
free_id_len:
    free(id_len);
    return rc;
}

/* Adds the stored figures of every window to its summed increments: the cache first,
 * then one multi-get per chunk of misses. ENPI_EIO when RocksDB fails, ENPI_EPARSE when
 * a stored rollup does not decode. */
static int add_stored_rollups(enpi_store_t *st, commit_ctx_t *cx)
{
    size_t *miss = malloc((cx->n_work ? cx->n_work : 1) * sizeof *miss);
    if (!miss)
        return ENPI_ENOMEM;
    size_t n_miss = 0;
    for (size_t i = 0; i < cx->n_work; i++) {
        window_work_t *w = &cx->work[i];
        enpi_rollup_t base;
        int64_t end_ms;
        w->cached = enpi_rollup_cache_lookup(&st->cache, w->key, w->klen, &base, &end_ms);
        if (w->cached) {
            rollup_add(&w->r, &base);
        } else {
            miss[n_miss++] = i;
        }
    }

    int rc = 0;
    const char *keys[MULTI_GET_CHUNK];
    size_t key_lens[MULTI_GET_CHUNK];
    char *vals[MULTI_GET_CHUNK];
    size_t val_lens[MULTI_GET_CHUNK];
    char *errs[MULTI_GET_CHUNK];
    for (size_t off = 0; off < n_miss; off += MULTI_GET_CHUNK) {
        size_t n = n_miss - off < MULTI_GET_CHUNK ? n_miss - off : MULTI_GET_CHUNK;
        for (size_t k = 0; k < n; k++) {
            const window_work_t *w = &cx->work[miss[off + k]];
            keys[k] = (const char *)w->key;
            key_lens[k] = w->klen;
        }
        rocksdb_multi_get(st->db, st->ro_records, n, keys, key_lens, vals, val_lens, errs);
        for (size_t k = 0; k < n; k++) {
            if (errs[k]) {
                if (rc == 0)
                    rc = enpi_store_fail("commit: reading stored rollups", errs[k]);
                else
                    rocksdb_free(errs[k]);
            } else if (vals[k] && rc == 0) {
                window_work_t *w = &cx->work[miss[off + k]];
                enpi_rollup_t base;
                int64_t end_ms;
                if (enpi_store_rec_rollup_decode(vals[k], val_lens[k], &base, &end_ms) != 0) {
                    log_err("storage: commit: a stored rollup does not decode");
                    rc = ENPI_EPARSE;
                } else {
                    rollup_add(&w->r, &base);
                }
            }
            rocksdb_free(vals[k]);
        }
        if (rc)
            break;
    }
    free(miss);
    return rc;
}

static int put_rollups(rocksdb_writebatch_t *wb, const commit_ctx_t *cx)
{
    for (size_t i = 0; i < cx->n_work; i++) {
        const window_work_t *w = &cx->work[i];
        uint8_t val[ENPI_REC_ROLLUP_MAX];
        size_t vlen = enpi_store_rec_rollup_encode(&w->r, w->end_ms, val);
        rocksdb_writebatch_put(wb, (const char *)w->key, w->klen, (const char *)val, vlen);
    }
    return 0;
}

/* Meter states, put in key order: RocksDB's insert hint (store.c) makes an insert next to
 * the previous one cheap, so sorted puts cost a fraction of puts in the batch's order. */
static int put_meters(rocksdb_writebatch_t *wb, commit_ctx_t *cx, const enpi_batch_t *b)
{
    if (b->n_meters == 0)
        return 0;
    if (b->n_meters > UINT32_MAX)
        return ENPI_ERANGE;
    size_t arena_len = 0;
    for (size_t i = 0; i < b->n_meters; i++) {
        const char *id = b->meters[i].meter_id;
        size_t len = id ? strlen(id) : 0;
        arena_len += len < ENPI_KEY_ID_MAX ? ENPI_KEY_METER_MAX - ENPI_KEY_ID_MAX + len
                                           : ENPI_KEY_METER_MAX;
    }
    uint8_t *arena = malloc(arena_len);
    delta_key_t *mk = malloc(b->n_meters * sizeof *mk);
    int rc = 0;
    if (!arena || !mk) {
        rc = ENPI_ENOMEM;
        goto free_keys;
    }
    uint8_t *p = arena;
    for (size_t i = 0; i < b->n_meters; i++) {
        const char *id = b->meters[i].meter_id;
        size_t klen = enpi_store_key_meter(p, id, id ? strlen(id) : 0);
        if (klen == 0) {
            log_err("storage: commit: meter snapshot %zu has an empty or too long id", i);
            rc = ENPI_EINVAL;
            goto free_keys;
        }
        mk[i] = (delta_key_t){.key = p, .klen = (uint32_t)klen, .idx = (uint32_t)i};
        p += klen;
    }
    qsort(mk, b->n_meters, sizeof *mk, cmp_delta_key);
    for (size_t i = 0; i < b->n_meters; i++) {
        const enpi_meter_snapshot_t *s = &b->meters[mk[i].idx];
        uint8_t *buf = scratch_reserve(cx, enpi_store_rec_meter_size(&s->state));
        if (!buf) {
            rc = ENPI_ENOMEM;
            goto free_keys;
        }
        size_t vlen = enpi_store_rec_meter_encode(&s->state, buf);
        rocksdb_writebatch_put(wb, (const char *)mk[i].key, mk[i].klen, (const char *)buf,
                               vlen);
    }
free_keys:
    free(arena);
    free(mk);
    return rc;
}

/* Sparkplug edge node states: opaque bytes under 's' + "group/node"; a snapshot without
 * state deletes the node's record. */
static int put_nodes(rocksdb_writebatch_t *wb, const enpi_batch_t *b)
{
    for (size_t i = 0; i < b->n_nodes; i++) {
        const enpi_node_snapshot_t *n = &b->nodes[i];
        uint8_t key[ENPI_KEY_METER_MAX];
        size_t klen = enpi_store_key_sparkplug(key, n->key, n->key ? strlen(n->key) : 0);
        if (klen == 0) {
            log_err("storage: commit: sparkplug node %zu has an empty or too long key", i);
            return ENPI_EINVAL;
        }
        if (n->state)
            rocksdb_writebatch_put(wb, (const char *)key, klen, (const char *)n->state,
                                   n->state_len);
        else
            rocksdb_writebatch_delete(wb, (const char *)key, klen);
    }
    return 0;
}

/* Unknown meters, like rollups, are stored as running totals: fold the batch's entries
 * per id (the last one's topic and time win), add the stored count, put. */
typedef struct {
    uint8_t key[ENPI_KEY_METER_MAX];
    size_t klen;
    size_t idx;
} unknown_key_t;

static int cmp_unknown_key(const void *pa, const void *pb)
{
    const unknown_key_t *a = pa, *b = pb;
    int c = cmp_key_bytes(a->key, a->klen, b->key, b->klen);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int put_unknown(enpi_store_t *st, rocksdb_writebatch_t *wb, commit_ctx_t *cx,
                       const enpi_batch_t *b)
{
    if (b->n_unknown == 0)
        return 0;
    unknown_key_t *uk = malloc(b->n_unknown * sizeof *uk);
    if (!uk)
        return ENPI_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < b->n_unknown; i++) {
        const char *id = b->unknown[i].meter_id;
        uk[i].klen = enpi_store_key_unknown(uk[i].key, id, id ? strlen(id) : 0);
        uk[i].idx = i;
        if (uk[i].klen == 0) {
            log_err("storage: commit: unknown meter %zu has an empty or too long id", i);
            rc = ENPI_EINVAL;
            goto free_keys;
        }
    }
    qsort(uk, b->n_unknown, sizeof *uk, cmp_unknown_key);

    for (size_t i = 0; i < b->n_unknown;) {
        uint64_t count = 0;
        const enpi_unknown_delta_t *last = NULL;
        size_t j = i;
        for (; j < b->n_unknown && cmp_key_bytes(uk[j].key, uk[j].klen, uk[i].key, uk[i].klen) == 0;
             j++) {
            last = &b->unknown[uk[j].idx];
            count += last->count;
        }
        char *err = NULL;
        rocksdb_pinnableslice_t *ps =
            rocksdb_get_pinned(st->db, st->ro_records, (const char *)uk[i].key, uk[i].klen, &err);
        if (err) {
            rc = enpi_store_fail("commit: reading an unknown meter", err);
            goto free_keys;
        }
        if (ps) {
            size_t vlen;
            const char *v = rocksdb_pinnableslice_value(ps, &vlen);
            uint64_t stored;
            char *topic = NULL;
            int64_t seen;
            rc = enpi_store_rec_unknown_decode(v, vlen, &stored, &topic, &seen);
            rocksdb_pinnableslice_destroy(ps);
            if (rc) {
                log_err("storage: commit: a stored unknown meter does not decode");
                goto free_keys;
            }
            free(topic);
            count += stored;
        }
        const char *topic = last->last_topic ? last->last_topic : "";
        size_t tlen = strlen(topic);
        uint8_t *buf = scratch_reserve(
            cx, enpi_store_rec_unknown_size(count, topic, tlen, last->last_seen_ms));
        if (!buf) {
            rc = ENPI_ENOMEM;
            goto free_keys;
        }
        size_t vlen = enpi_store_rec_unknown_encode(count, topic, tlen, last->last_seen_ms, buf);
        rocksdb_writebatch_put(wb, (const char *)uk[i].key, uk[i].klen, (const char *)buf, vlen);
        i = j;
    }
free_keys:
    free(uk);
    return rc;
}

/*
 * Records how far the inbox is reflected (Meta.inbox_upto) when the batch moves it up; a
 * stale inbox_upto never moves it back. The inbox log itself is released after the write
 * (enpi_inbox_log_committed). *new_upto receives the inbox_upto the store will hold.
 */
static void put_inbox_progress(enpi_store_t *st, rocksdb_writebatch_t *wb, uint64_t upto,
                               uint64_t *new_upto)
{
    *new_upto = st->inbox_upto;
    if (upto <= st->inbox_upto)
        return;
    uint8_t val[ENPI_REC_META_MAX];
    size_t vlen = enpi_store_rec_meta_encode(st->format_version, upto, val);
    rocksdb_writebatch_put(wb, ENPI_KEY_META, sizeof ENPI_KEY_META - 1, (const char *)val, vlen);
    *new_upto = upto;
}

/* After a successful write: the cache learns the stored sums. The entries the lookups
 * returned are refreshed first (through their pointers, which nothing has invalidated
 * since), so inserting the misses can only evict entries no longer referred to. */
static void update_cache(enpi_store_t *st, const commit_ctx_t *cx)
{
    for (size_t i = 0; i < cx->n_work; i++) {
        const window_work_t *w = &cx->work[i];
        if (w->cached)
            enpi_rollup_cache_update(&st->cache, w->cached, &w->r, w->end_ms);
    }
    for (size_t i = 0; i < cx->n_work; i++) {
        const window_work_t *w = &cx->work[i];
        if (!w->cached)
            enpi_rollup_cache_put(&st->cache, w->key, w->klen, &w->r, w->end_ms);
    }
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int enpi_store_commit(enpi_store_t *st, const enpi_batch_t *b)
{
    if (!enpi_store_writable(st, "commit"))
        return ENPI_ESTATE;
    double t_start = mono_ms(), t_write = 0, t_done = 0;
    commit_ctx_t cx = {0};
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    uint64_t new_upto = st->inbox_upto;
    char *err = NULL;
    int rc;
    if ((rc = fold_deltas(&cx, b)) != 0)
        goto free_batch;
    if ((rc = add_stored_rollups(st, &cx)) != 0)
        goto free_batch;
    if ((rc = put_rollups(wb, &cx)) != 0)
        goto free_batch;
    if ((rc = put_meters(wb, &cx, b)) != 0)
        goto free_batch;
    if ((rc = put_unknown(st, wb, &cx, b)) != 0)
        goto free_batch;
    if ((rc = put_nodes(wb, b)) != 0)
        goto free_batch;
    put_inbox_progress(st, wb, b->inbox_upto, &new_upto);
    if (rocksdb_writebatch_count(wb) == 0)
        goto free_batch;

    if (st->injected_failures > 0) {
        st->injected_failures--;
        rc = enpi_store_fail("commit", strdup("injected write failure (test)"));
        goto free_batch;
    }
    /* The inbox appends before this commit become durable with it (as the RocksDB WAL's
     * fdatasync made them when the inbox lived there). */
    if (st->inbox && (rc = enpi_inbox_log_sync(st->inbox)) != 0)
        goto free_batch;
    t_write = mono_ms();
    rocksdb_write(st->db, st->wo_commit, wb, &err);
    t_done = mono_ms();
    if (err) {
        rc = enpi_store_fail("commit", err);
        goto free_batch;
    }
    st->inbox_upto = new_upto;
    if (st->inbox)
        enpi_inbox_log_committed(st->inbox, new_upto);
    update_cache(st, &cx);
    log_debug("storage: commit: %zu deltas in %zu windows, %zu meters, %zu unknown, %zu "
              "sparkplug nodes, inbox below %llu; prepare %.1f ms, write %.1f ms, cache %.1f ms",
              b->n_rollups, cx.n_work, b->n_meters, b->n_unknown, b->n_nodes,
              (unsigned long long)st->inbox_upto, t_write - t_start, t_done - t_write,
              mono_ms() - t_done);

free_batch:
    rocksdb_writebatch_destroy(wb);
    free(cx.key_arena);
    free(cx.keys);
    free(cx.work);
    free(cx.scratch);
    return rc;
}
