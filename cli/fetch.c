/*
 * fetch.c - stored rollups into facility and meter rows, and how far a facility's data
 * reaches (see fetch.h). The one place `enpi` reads rollups from the store.
 */
#include "fetch.h"

#include <stdlib.h>

#include "enpi_error.h"
#include "window.h"

/* Growable list of one meter's stored rollups. */
typedef struct {
    enpi_stored_rollup_t *v;
    size_t n;
    size_t cap;
} rollup_vec_t;

static int collect_cb(void *ctx, const enpi_stored_rollup_t *r)
{
    rollup_vec_t *vec = ctx;
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 64;
        enpi_stored_rollup_t *v = realloc(vec->v, cap * sizeof *v);
        if (!v)
            return ENPI_ENOMEM;
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = *r;
    return 0;
}

static int read_rollups(enpi_cli_ctx_t *ctx, const char *meter_id, uint32_t code, int64_t from,
                        int64_t to, rollup_vec_t *vec, enpi_cli_diag_t *d)
{
    int rc = enpi_store_rollups(ctx->store, meter_id, code, from, to, collect_cb, vec);
    if (rc)
        return enpi_cli_fail(d, rc, "cannot read the rollups of meter '%s': %s", meter_id,
                             enpi_strerror(rc));
    return 0;
}

/* Reads the meters' rollups and sums them window by window (one meter: its rows). */
static int fetch_meters(enpi_cli_ctx_t *ctx, const enpi_meter_cfg_t *const *meters, size_t n_meters,
                        const enpi_duration_t *res, int64_t from, int64_t to, enpi_cli_row_t **rows,
                        size_t *n, enpi_cli_diag_t *d)
{
    *rows = NULL;
    *n = 0;
    uint32_t code = enpi_resolution_code(res);
    int rc = 0;
    rollup_vec_t *vecs = calloc(n_meters ? n_meters : 1, sizeof *vecs);
    enpi_cli_meter_rows_t *mr = calloc(n_meters ? n_meters : 1, sizeof *mr);
    if (!vecs || !mr) {
        rc = enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
        goto free_vecs;
    }
    for (size_t i = 0; i < n_meters; i++) {
        rc = read_rollups(ctx, meters[i]->id, code, from, to, &vecs[i], d);
        if (rc)
            goto free_vecs;
        mr[i].kind = meters[i]->kind;
        mr[i].rollups = vecs[i].v;
        mr[i].n = vecs[i].n;
    }
    rc = enpi_cli_facility_sum(mr, n_meters, rows, n);
    if (rc)
        rc = enpi_cli_fail(d, rc, "out of memory");
free_vecs:
    for (size_t i = 0; vecs && i < n_meters; i++)
        free(vecs[i].v);
    free(vecs);
    free(mr);
    return rc;
}

int enpi_cli_fetch_facility(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f,
                            const enpi_duration_t *res, int64_t from, int64_t to,
                            enpi_cli_row_t **rows, size_t *n, enpi_cli_diag_t *d)
{
    *rows = NULL;
    *n = 0;
    const enpi_meter_cfg_t **meters = calloc(f->n_meters ? f->n_meters : 1, sizeof *meters);
    if (!meters)
        return enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->n_meters; i++)
        meters[i] = &f->meters[i];
    int rc = fetch_meters(ctx, meters, f->n_meters, res, from, to, rows, n, d);
    free(meters);
    return rc;
}

int enpi_cli_fetch_meter(enpi_cli_ctx_t *ctx, const enpi_meter_cfg_t *m, const enpi_duration_t *res,
                         int64_t from, int64_t to, enpi_cli_row_t **rows, size_t *n,
                         enpi_cli_diag_t *d)
{
    return fetch_meters(ctx, &m, 1, res, from, to, rows, n, d);
}

/* Walks the stored states of the facility's meters: the minimum newest reading over
 * all of them (watermark) and over those that reported (data end). */
static int meter_extent(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, int64_t *watermark,
                        int64_t *data_end, enpi_cli_diag_t *d)
{
    bool all = f->n_meters > 0, any = false;
    int64_t lo = INT64_MAX;
    for (size_t i = 0; i < f->n_meters; i++) {
        enpi_meter_state_t s;
        int rc = enpi_cli_ctx_meter_state(ctx, f->meters[i].id, &s, d);
        if (rc)
            return rc;
        if (s.has_state) {
            any = true;
            if (s.last_ts_ms < lo)
                lo = s.last_ts_ms;
        } else {
            all = false;
        }
        enpi_meter_state_clear(&s);
    }
    *watermark = all ? lo : INT64_MIN;
    *data_end = any ? lo : INT64_MIN;
    return 0;
}

int enpi_cli_fetch_watermark(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, int64_t *out,
                             enpi_cli_diag_t *d)
{
    int64_t end;
    return meter_extent(ctx, f, out, &end, d);
}

int enpi_cli_fetch_data_end(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f, int64_t *out,
                            enpi_cli_diag_t *d)
{
    int64_t watermark;
    return meter_extent(ctx, f, &watermark, out, d);
}
