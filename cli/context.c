/*
 * context.c - configuration, read-only store and time zones for `enpi` (see context.h).
 */
#include "context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"

struct enpi_cli_zone {
    char *name;
    enpi_tz_t *tz;
    enpi_cli_zone_t *next;
};

static int64_t wall_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens the store at path as a secondary and catches up with the primary. */
static int open_store(const char *path, enpi_store_t **out, enpi_cli_diag_t *d)
{
    char err[512] = "";
    int rc = enpi_store_open(path, ENPI_STORE_SECONDARY, out, err, sizeof err);
    if (rc == ENPI_ENOENT)
        return enpi_cli_fail(d, rc, "no store at '%s'", path);
    if (rc)
        return enpi_cli_fail(d, rc, "cannot open the store at '%s': %s", path,
                             err[0] ? err : enpi_strerror(rc));
    rc = enpi_store_catch_up(*out);
    if (rc) {
        enpi_store_close(*out);
        *out = NULL;
        return enpi_cli_fail(d, rc, "cannot read the store at '%s': %s", path, enpi_strerror(rc));
    }
    return 0;
}

/* --db DIR: the store first, then the configuration enpid stored in it. */
static int open_from_store(enpi_cli_ctx_t *ctx, const char *dir, enpi_cli_diag_t *d)
{
    int rc = open_store(dir, &ctx->store, d);
    if (rc)
        return rc;
    char *yaml = NULL;
    size_t len = 0;
    rc = enpi_store_get_config(ctx->store, &yaml, &len);
    if (rc == ENPI_ENOENT) {
        rc = enpi_cli_fail(d, rc,
                           "no configuration stored in '%s' (enpid has not run on it); "
                           "use --config FILE",
                           dir);
        goto close_store;
    }
    if (rc) {
        rc = enpi_cli_fail(d, rc, "cannot read the stored configuration in '%s': %s", dir,
                           enpi_strerror(rc));
        goto close_store;
    }
    char name[1024];
    snprintf(name, sizeof name, "%s (stored configuration)", dir);
    char err[512] = "";
    rc = enpi_config_parse(name, yaml, len, &ctx->cfg, err, sizeof err);
    free(yaml);
    if (rc) {
        rc = enpi_cli_fail(d, rc, "%s", err[0] ? err : enpi_strerror(rc));
        goto close_store;
    }
    return 0;
close_store:
    enpi_store_close(ctx->store);
    ctx->store = NULL;
    return rc;
}

/* --config FILE (or the default file): the configuration, then the store it names. */
static int open_from_config(enpi_cli_ctx_t *ctx, const char *path, enpi_cli_diag_t *d)
{
    char err[512] = "";
    int rc = enpi_config_load(path, &ctx->cfg, err, sizeof err);
    if (rc)
        return enpi_cli_fail(d, rc, "%s", err[0] ? err : enpi_strerror(rc));
    rc = open_store(ctx->cfg->storage.path, &ctx->store, d);
    if (rc) {
        enpi_config_free(ctx->cfg);
        ctx->cfg = NULL;
    }
    return rc;
}

int enpi_cli_ctx_open(enpi_cli_ctx_t *ctx, const enpi_cli_globals_t *g, enpi_cli_diag_t *d)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->now_ms = wall_clock_ms();
    if (g->db_dir)
        return open_from_store(ctx, g->db_dir, d);
    const char *path = g->config_path;
    if (!path) {
        path = getenv("ENPID_CONFIG");
        if (!path || !path[0])
            path = ENPI_CLI_DEFAULT_CONFIG;
    }
    return open_from_config(ctx, path, d);
}

void enpi_cli_ctx_close(enpi_cli_ctx_t *ctx)
{
    while (ctx->zones) {
        enpi_cli_zone_t *z = ctx->zones;
        ctx->zones = z->next;
        enpi_tz_free(z->tz);
        free(z->name);
        free(z);
    }
    if (ctx->store)
        enpi_store_close(ctx->store);
    if (ctx->cfg)
        enpi_config_free(ctx->cfg);
    memset(ctx, 0, sizeof *ctx);
}

const enpi_tz_t *enpi_cli_ctx_tz(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f,
                                 enpi_cli_diag_t *d)
{
    const char *name = f ? enpi_config_facility_tz(ctx->cfg, f) : ctx->cfg->timezone;
    if (!name)
        name = "UTC";
    for (enpi_cli_zone_t *z = ctx->zones; z; z = z->next)
        if (strcmp(z->name, name) == 0)
            return z->tz;
    enpi_cli_zone_t *z = calloc(1, sizeof *z);
    if (!z || !(z->name = strdup(name))) {
        free(z);
        enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = enpi_tz_open(name, &z->tz);
    if (rc) {
        free(z->name);
        free(z);
        enpi_cli_fail(d, rc, "cannot open time zone '%s': %s", name, enpi_strerror(rc));
        return NULL;
    }
    z->next = ctx->zones;
    ctx->zones = z;
    return z->tz;
}

int enpi_cli_ctx_meter_state(enpi_cli_ctx_t *ctx, const char *meter_id, enpi_meter_state_t *out,
                             enpi_cli_diag_t *d)
{
    memset(out, 0, sizeof *out);
    int rc = enpi_store_meter_state(ctx->store, meter_id, out);
    if (rc == ENPI_ENOENT) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (rc)
        return enpi_cli_fail(d, rc, "cannot read the state of meter '%s': %s", meter_id,
                             enpi_strerror(rc));
    return 0;
}
