/*
 * read.c - the read side of the store, in either mode: one meter's state, every meter
 * state, the windows of one (meter, resolution) over a time range, unknown meters,
 * Sparkplug edge node states.
 *
 * Scans bound their iterators with iterate_lower_bound/iterate_upper_bound so RocksDB
 * stops at the end of the range instead of reading into the next one. None of these
 * keys is ever covered by a range deletion (keys.h), so they skip range tombstones.
 * Thread-safe: each call has its own read options and iterator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

/* An iterator over [lower, upper), with bounds copied into caller-owned memory that must
 * outlive it. */
typedef struct {
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
} range_iter_t;

static void range_open(enpi_store_t *st, range_iter_t *r, const uint8_t *lower, size_t lower_len,
                       const uint8_t *upper, size_t upper_len)
{
    r->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_ignore_range_deletions(r->ro, 1);
    rocksdb_readoptions_set_iterate_lower_bound(r->ro, (const char *)lower, lower_len);
    rocksdb_readoptions_set_iterate_upper_bound(r->ro, (const char *)upper, upper_len);
    r->it = rocksdb_create_iterator(st->db, r->ro);
    rocksdb_iter_seek(r->it, (const char *)lower, lower_len);
}

/* Closes the iterator; returns rc, or ENPI_EIO when the iterator failed and rc was 0. */
static int range_close(range_iter_t *r, int rc, const char *what)
{
    char *err = NULL;
    rocksdb_iter_get_error(r->it, &err);
    rocksdb_iter_destroy(r->it);
    rocksdb_readoptions_destroy(r->ro);
    if (err) {
        int io = enpi_store_fail(what, err);
        return rc ? rc : io;
    }
    return rc;
}

int enpi_store_meter_state(enpi_store_t *st, const char *meter_id, enpi_meter_state_t *out)
{
    uint8_t key[ENPI_KEY_METER_MAX];
    size_t klen = enpi_store_key_meter(key, meter_id, strlen(meter_id));
    if (klen == 0)
        return ENPI_EINVAL;
    char *err = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned(st->db, st->ro_records, (const char *)key, klen, &err);
    if (err)
        return enpi_store_fail("reading a meter state", err);
    if (!ps)
        return ENPI_ENOENT;
    size_t vlen;
    const char *v = rocksdb_pinnableslice_value(ps, &vlen);
    int rc = enpi_store_rec_meter_decode(v, vlen, out);
    rocksdb_pinnableslice_destroy(ps);
    if (rc == ENPI_EPARSE)
        log_err("storage: the stored state of meter %s does not decode", meter_id);
    return rc;
}

/* Copies a length-prefixed id out of a key into a NUL-terminated buffer of
 * ENPI_KEY_ID_MAX + 1 bytes. */
static void id_copy(char *dst, const char *id, size_t id_len)
{
    memcpy(dst, id, id_len);
    dst[id_len] = '\0';
}

/* What a scan over one id-keyed record type does with each record: the id (NUL-terminated,
 * valid during the call) and the raw value. Returns nonzero to stop the scan. */
typedef int (*id_record_fn)(void *ctx, const char *id, const char *v, size_t vlen);

/*
 * Walks every record of one id-keyed type ('m' meter states, 'u' unknown meters, 's'
 * Sparkplug nodes) in key order, handing each to fn. A malformed key stops the scan with
 * ENPI_EPARSE; `what` names the records in messages ("meter state", ...).
 */
static int scan_id_records(enpi_store_t *st, uint8_t type, const char *what, id_record_fn fn,
                           void *ctx)
{
    const uint8_t lower[1] = {type};
    const uint8_t upper[1] = {(uint8_t)(type + 1)};
    char scanning[64];
    range_iter_t r;
    range_open(st, &r, lower, sizeof lower, upper, sizeof upper);
    int rc = 0;
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(r.it, &klen);
        const char *v = rocksdb_iter_value(r.it, &vlen);
        const char *id;
        size_t id_len;
        if (!enpi_store_key_parse_id(k, klen, type, &id, &id_len)) {
            log_err("storage: malformed %s key of %zu bytes", what, klen);
            rc = ENPI_EPARSE;
            break;
        }
        char id_buf[ENPI_KEY_ID_MAX + 1];
        id_copy(id_buf, id, id_len);
        if ((rc = fn(ctx, id_buf, v, vlen)) != 0)
            break;
    }
    snprintf(scanning, sizeof scanning, "scanning %ss", what);
    return range_close(&r, rc, scanning);
}

typedef struct {
    enpi_meter_state_cb cb;
    void *ctx;
} meter_scan_t;

static int meter_record(void *ctx, const char *meter_id, const char *v, size_t vlen)
{
    meter_scan_t *m = ctx;
    enpi_meter_state_t s;
    int rc = enpi_store_rec_meter_decode(v, vlen, &s);
    if (rc) {
        log_err("storage: the stored state of meter %s does not decode", meter_id);
        return rc;
    }
    rc = m->cb(m->ctx, meter_id, &s);
    enpi_meter_state_clear(&s);
    return rc;
}

int enpi_store_meter_states(enpi_store_t *st, enpi_meter_state_cb cb, void *ctx)
{
    meter_scan_t m = {cb, ctx};
    return scan_id_records(st, ENPI_KEY_METER, "meter state", meter_record, &m);
}

int enpi_store_rollups(enpi_store_t *st, const char *meter_id, uint32_t res_code, int64_t from,
                       int64_t to, enpi_rollup_cb cb, void *ctx)
{
    if (from >= to)
        return 0;
    size_t id_len = strlen(meter_id);
    uint8_t lower[ENPI_KEY_ROLLUP_MAX];
    uint8_t upper[ENPI_KEY_ROLLUP_MAX];
    size_t lower_len = enpi_store_key_rollup(lower, res_code, meter_id, id_len, from);
    size_t upper_len = enpi_store_key_rollup(upper, res_code, meter_id, id_len, to);
    if (lower_len == 0)
        return ENPI_EINVAL;
    range_iter_t r;
    range_open(st, &r, lower, lower_len, upper, upper_len);
    int rc = 0;
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(r.it, &klen);
        const char *v = rocksdb_iter_value(r.it, &vlen);
        uint32_t res;
        const char *id;
        size_t n;
        enpi_stored_rollup_t sr;
        if (!enpi_store_key_parse_rollup(k, klen, &res, &id, &n, &sr.start)) {
            log_err("storage: malformed rollup key of %zu bytes", klen);
            rc = ENPI_EPARSE;
            break;
        }
        if (enpi_store_rec_rollup_decode(v, vlen, &sr.r, &sr.end) != 0) {
            log_err("storage: a rollup of meter %s does not decode", meter_id);
            rc = ENPI_EPARSE;
            break;
        }
        if ((rc = cb(ctx, &sr)) != 0)
            break;
    }
    return range_close(&r, rc, "scanning rollups");
}

typedef struct {
    enpi_unknown_cb cb;
    void *ctx;
} unknown_scan_t;

static int unknown_record(void *ctx, const char *meter_id, const char *v, size_t vlen)
{
    unknown_scan_t *u = ctx;
    enpi_unknown_meter_t rec = {.meter_id = meter_id};
    char *topic = NULL;
    int rc = enpi_store_rec_unknown_decode(v, vlen, &rec.count, &topic, &rec.last_seen_ms);
    if (rc) {
        log_err("storage: the unknown meter %s does not decode", meter_id);
        return rc;
    }
    rec.last_topic = topic;
    rc = u->cb(u->ctx, &rec);
    free(topic);
    return rc;
}

int enpi_store_unknown_meters(enpi_store_t *st, enpi_unknown_cb cb, void *ctx)
{
    unknown_scan_t u = {cb, ctx};
    return scan_id_records(st, ENPI_KEY_UNKNOWN, "unknown meter", unknown_record, &u);
}

typedef struct {
    enpi_sparkplug_node_record_cb cb;
    void *ctx;
} node_scan_t;

static int node_record(void *ctx, const char *key, const char *v, size_t vlen)
{
    node_scan_t *n = ctx;
    return n->cb(n->ctx, key, v, vlen);
}

int enpi_store_sparkplug_nodes(enpi_store_t *st, enpi_sparkplug_node_record_cb cb, void *ctx)
{
    node_scan_t n = {cb, ctx};
    return scan_id_records(st, ENPI_KEY_SPARKPLUG, "sparkplug node", node_record, &n);
}
