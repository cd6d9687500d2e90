/*
 * cmd_meters.c - `enpi meters`: every configured meter with its stored state, or with
 * --unknown the meter ids enpid received but found in no facility.
 */
#include <stdio.h>

#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "rows.h"

static const char help[] =
    "Usage: enpi meters [--unknown] [--format table|csv|json]\n"
    "\n"
    "Configured meters in configuration order: facility, kind, reading mode, first and\n"
    "last accepted reading (facility time zone), lifetime counts of readings, resets,\n"
    "late readings, duplicates and rejects. A meter is stale when it has never reported,\n"
    "its last reading is older than max(2 x interval, 1h) before now, or its Sparkplug\n"
    "edge node or device announced its death (NDEATH/DDEATH) and it has not reported\n"
    "since. Tables abbreviate resets, duplicates and rejected to rst, dup and rej and\n"
    "leave out the reading mode and first reading; CSV and JSON carry every field.\n"
    "  --unknown   meter ids seen on the inputs but not configured: how many messages,\n"
    "              the last topic and when (top-level time zone)\n";

static const enpi_out_col_t meter_cols[] = {
    {"meter", "meter", ENPI_OUT_TEXT},
    {"facility", "facility", ENPI_OUT_TEXT},
    {"kind", "kind", ENPI_OUT_TEXT},
    {"reading", NULL, ENPI_OUT_TEXT},
    {"last_reading", "last_reading", ENPI_OUT_TEXT},
    {"first_reading", NULL, ENPI_OUT_TEXT},
    {"readings", "readings", 0},
    {"resets", "rst", 0},
    {"late", "late", 0},
    {"duplicates", "dup", 0},
    {"rejected", "rej", 0},
    {"stale", "stale", ENPI_OUT_TEXT},
};

static const enpi_out_col_t unknown_cols[] = {
    {"meter", "meter", ENPI_OUT_TEXT},
    {"count", "count", 0},
    {"last_topic", "last_topic", ENPI_OUT_TEXT},
    {"last_seen", "last_seen", ENPI_OUT_TEXT},
};

/* A time cell: ISO 8601 in tz, or null when the meter has no state. */
static void put_time(enpi_out_t *o, const enpi_tz_t *tz, bool has, int64_t t)
{
    char buf[48];
    if (!has || enpi_tz_format(tz, t, buf, sizeof buf) < 0) {
        enpi_out_null(o);
        return;
    }
    enpi_out_str(o, buf);
}

static int put_meter(enpi_cli_ctx_t *ctx, enpi_out_t *o, const enpi_facility_cfg_t *f,
                     const enpi_meter_cfg_t *m, enpi_cli_diag_t *d)
{
    const enpi_tz_t *tz = enpi_cli_ctx_tz(ctx, f, d);
    if (!tz)
        return ENPI_ENOENT;
    enpi_meter_state_t s;
    int rc = enpi_cli_ctx_meter_state(ctx, m->id, &s, d);
    if (rc)
        return rc;
    enpi_out_row(o);
    enpi_out_str(o, m->id);
    enpi_out_str(o, f->id);
    enpi_out_str(o, m->kind == ENPI_KIND_ENERGY ? "energy" : "production");
    enpi_out_str(o, m->reading == ENPI_READING_DELTA ? "delta" : "cumulative");
    put_time(o, tz, s.has_state, s.last_ts_ms);
    put_time(o, tz, s.has_state, s.first_ts_ms);
    enpi_out_uint(o, s.readings);
    enpi_out_uint(o, s.resets);
    enpi_out_uint(o, s.late);
    enpi_out_uint(o, s.duplicates);
    enpi_out_uint(o, s.rejected);
    enpi_out_bool(o, enpi_cli_meter_stale(m, &s, ctx->now_ms));
    enpi_meter_state_clear(&s);
    return 0;
}

typedef struct {
    enpi_out_t *o;
    const enpi_tz_t *tz;
} unknown_ctx_t;

static int unknown_cb(void *arg, const enpi_unknown_meter_t *u)
{
    unknown_ctx_t *uc = arg;
    enpi_out_row(uc->o);
    enpi_out_str(uc->o, u->meter_id);
    enpi_out_uint(uc->o, u->count);
    enpi_out_str(uc->o, u->last_topic);
    put_time(uc->o, uc->tz, true, u->last_seen_ms);
    return 0;
}

int enpi_cmd_meters(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    bool unknown = false;
    const enpi_cli_opt_t opts[] = {{"unknown", 0, false, NULL, &unknown}};
    int rc = enpi_cli_cmd_args(g, argc, argv, opts, 1, help, d);
    if (rc || g->help)
        return rc;
    enpi_out_format_t fmt;
    if ((rc = enpi_cli_format(g, &fmt, d)) != 0)
        return rc;
    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    enpi_out_t *o = NULL;
    if (unknown)
        rc = enpi_out_create(fmt, unknown_cols, sizeof unknown_cols / sizeof unknown_cols[0], &o);
    else
        rc = enpi_out_create(fmt, meter_cols, sizeof meter_cols / sizeof meter_cols[0], &o);
    if (rc) {
        rc = enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
        goto close_ctx;
    }
    if (unknown) {
        unknown_ctx_t uc = {o, enpi_cli_ctx_tz(&ctx, NULL, d)};
        if (!uc.tz) {
            rc = ENPI_ENOENT;
            goto free_out;
        }
        rc = enpi_store_unknown_meters(ctx.store, unknown_cb, &uc);
        if (rc) {
            rc = enpi_cli_fail(d, rc, "cannot read the unknown meters: %s", enpi_strerror(rc));
            goto free_out;
        }
    } else {
        const enpi_config_t *cfg = ctx.cfg;
        for (size_t i = 0; i < cfg->n_facilities; i++) {
            const enpi_facility_cfg_t *f = &cfg->facilities[i];
            for (size_t j = 0; j < f->n_meters; j++)
                if ((rc = put_meter(&ctx, o, f, &f->meters[j], d)) != 0)
                    goto free_out;
        }
    }
    rc = enpi_cli_emit(o, d);
    o = NULL;
free_out:
    enpi_out_free(o);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
