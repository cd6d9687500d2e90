/*
 * inbox.c - the inbox: every MQTT message made durable (key 'i' + seq) before Paho may
 * acknowledge it, read back at start-up and when the SPSC ring spilled, and deleted by
 * the commit that reflects it (commit.c).
 *
 * DESIGN: enpi_store_inbox_append() runs on Paho's receive thread while the loop thread
 * scans and the commit worker writes; it touches only the read-only parts of the store
 * and its own stack or heap buffer, and RocksDB orders the writes.
 */
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

#define APPEND_STACK_BYTES 2048 /* most messages encode within this; larger ones malloc */

int enpi_store_inbox_append(enpi_store_t *st, const enpi_inbox_msg_t *m)
{
    if (!enpi_store_writable(st, "inbox append"))
        return ENPI_ESTATE;
    uint8_t key[ENPI_KEY_INBOX_LEN];
    enpi_store_key_inbox(key, m->seq);

    uint8_t stack_buf[APPEND_STACK_BYTES];
    size_t size = enpi_store_rec_inbox_size(m);
    uint8_t *buf = stack_buf;
    if (size > sizeof stack_buf) {
        buf = malloc(size);
        if (!buf)
            return ENPI_ENOMEM;
    }
    size_t vlen = enpi_store_rec_inbox_encode(m, buf);
    char *err = NULL;
    rocksdb_put(st->db, st->wo_inbox, (const char *)key, sizeof key, (const char *)buf, vlen, &err);
    if (buf != stack_buf)
        free(buf);
    if (err)
        return enpi_store_fail("inbox append", err);
    return 0;
}

/*
 * next = max(1, Meta.inbox_upto, highest inbox key + 1). Keys below inbox_upto are
 * deleted by the commit that raised it, so the search for the highest key starts there
 * and never walks deleted entries. The two reads need no snapshot: inbox_upto only grows
 * and new keys only appear above it, so any interleaving yields a number not yet used.
 */
int enpi_store_inbox_next_seq(enpi_store_t *st, uint64_t *next_out)
{
    bool found;
    uint32_t version;
    uint64_t upto;
    int rc = enpi_store_meta_read(st, &found, &version, &upto);
    if (rc)
        return rc;
    uint64_t next = upto > 1 ? upto : 1;

    uint8_t lower[ENPI_KEY_INBOX_LEN];
    enpi_store_key_inbox(lower, upto);
    const char upper[1] = {ENPI_KEY_INBOX + 1};
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lower, sizeof lower);
    rocksdb_readoptions_set_iterate_upper_bound(ro, upper, sizeof upper);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, ro);
    rocksdb_iter_seek_to_last(it);
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        uint64_t seq;
        if (enpi_store_key_parse_inbox((const uint8_t *)k, klen, &seq) && seq + 1 > next)
            next = seq + 1;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err)
        return enpi_store_fail("finding the last inbox message", err);
    *next_out = next;
    return 0;
}

int enpi_store_inbox_scan(enpi_store_t *st, uint64_t from, uint64_t to, enpi_inbox_cb cb, void *ctx)
{
    if (from >= to)
        return 0;
    uint8_t lower[ENPI_KEY_INBOX_LEN];
    uint8_t upper[ENPI_KEY_INBOX_LEN];
    enpi_store_key_inbox(lower, from);
    size_t upper_len = enpi_store_key_inbox(upper, to);
    if (to == UINT64_MAX) { /* include seq UINT64_MAX: bound by the next record type */
        upper[0] = ENPI_KEY_INBOX + 1;
        upper_len = 1;
    }
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_lower_bound(ro, (const char *)lower, sizeof lower);
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)upper, upper_len);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, ro);

    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)lower, sizeof lower); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        uint64_t seq;
        if (!enpi_store_key_parse_inbox((const uint8_t *)k, klen, &seq)) {
            log_err("storage: malformed inbox key of %zu bytes", klen);
            rc = ENPI_EPARSE;
            break;
        }
        enpi_inbox_msg_t m;
        void *handle = NULL;
        rc = enpi_store_rec_inbox_decode(v, vlen, seq, &m, &handle);
        if (rc) {
            log_err("storage: inbox message %llu does not decode", (unsigned long long)seq);
            break;
        }
        rc = cb(ctx, &m);
        enpi_store_rec_inbox_release(handle);
        if (rc)
            break;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        int io = enpi_store_fail("scanning the inbox", err);
        return rc ? rc : io;
    }
    return rc;
}
