/*
 * meta.c - the store's fixed keys: the Meta record (format version, how far the inbox is
 * committed) and the copy of the daemon's configuration text that lets `enpi --db DIR`
 * work without the YAML file.
 */
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "store_int.h"

int enpi_store_meta_read(enpi_store_t *st, bool *found, uint32_t *format_version,
                         uint64_t *inbox_upto)
{
    *found = false;
    *format_version = 0;
    *inbox_upto = 0;
    char *err = NULL;
    rocksdb_pinnableslice_t *ps =
        rocksdb_get_pinned(st->db, st->ro_records, ENPI_KEY_META, sizeof ENPI_KEY_META - 1, &err);
    if (err)
        return enpi_store_fail("reading meta", err);
    if (!ps)
        return 0;
    size_t vlen = 0;
    const char *val = rocksdb_pinnableslice_value(ps, &vlen);
    int rc = enpi_store_rec_meta_decode(val, vlen, format_version, inbox_upto);
    rocksdb_pinnableslice_destroy(ps);
    if (rc) {
        log_err("storage: the meta record does not decode");
        return rc;
    }
    *found = true;
    return 0;
}

int enpi_store_put_config(enpi_store_t *st, const char *yaml, size_t len)
{
    if (!enpi_store_writable(st, "storing the configuration"))
        return ENPI_ESTATE;
    char *err = NULL;
    rocksdb_put(st->db, st->wo_commit, ENPI_KEY_CONFIG, sizeof ENPI_KEY_CONFIG - 1, len ? yaml : "",
                len, &err);
    if (err)
        return enpi_store_fail("storing the configuration", err);
    return 0;
}

int enpi_store_get_config(enpi_store_t *st, char **yaml_out, size_t *len_out)
{
    *yaml_out = NULL;
    if (len_out)
        *len_out = 0;
    char *err = NULL;
    rocksdb_pinnableslice_t *ps = rocksdb_get_pinned(st->db, st->ro_records, ENPI_KEY_CONFIG,
                                                     sizeof ENPI_KEY_CONFIG - 1, &err);
    if (err)
        return enpi_store_fail("reading the stored configuration", err);
    if (!ps)
        return ENPI_ENOENT;
    size_t vlen = 0;
    const char *val = rocksdb_pinnableslice_value(ps, &vlen);
    char *copy = malloc(vlen + 1);
    if (!copy) {
        rocksdb_pinnableslice_destroy(ps);
        return ENPI_ENOMEM;
    }
    if (vlen)
        memcpy(copy, val, vlen);
    copy[vlen] = '\0';
    rocksdb_pinnableslice_destroy(ps);
    *yaml_out = copy;
    if (len_out)
        *len_out = vlen;
    return 0;
}
