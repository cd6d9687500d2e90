/*
 * cmd_facilities.c - `enpi facilities`: one row per configured facility with its zone,
 * product unit, meter count, newest reading over its meters and how many are stale.
 */
#include <stdio.h>

#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "rows.h"

static const char help[] =
    "Usage: enpi facilities [--format table|csv|json]\n"
    "\n"
    "Configured facilities: id, name, time zone, product unit, number of meters, the\n"
    "newest reading over its meters (facility time zone) and the number of stale meters\n"
    "(never reported, silent for longer than max(2 x interval, 1h), or dead by Sparkplug\n"
    "NDEATH/DDEATH since their last reading).\n";

static const enpi_out_col_t cols[] = {
    {"facility", "facility", ENPI_OUT_TEXT},
    {"name", "name", ENPI_OUT_TEXT},
    {"timezone", "timezone", ENPI_OUT_TEXT},
    {"product_unit", "unit", ENPI_OUT_TEXT},
    {"meters", "meters", 0},
    {"last_reading", "last_reading", ENPI_OUT_TEXT},
    {"stale_meters", "stale", 0},
};

static int put_facility(enpi_cli_ctx_t *ctx, enpi_out_t *o, const enpi_facility_cfg_t *f,
                        enpi_cli_diag_t *d)
{
    const enpi_tz_t *tz = enpi_cli_ctx_tz(ctx, f, d);
    if (!tz)
        return ENPI_ENOENT;
    bool any = false;
    int64_t last = 0;
    uint64_t stale = 0;
    for (size_t j = 0; j < f->n_meters; j++) {
        enpi_meter_state_t s;
        int rc = enpi_cli_ctx_meter_state(ctx, f->meters[j].id, &s, d);
        if (rc)
            return rc;
        if (s.has_state && (!any || s.last_ts_ms > last)) {
            last = s.last_ts_ms;
            any = true;
        }
        if (enpi_cli_meter_stale(&f->meters[j], &s, ctx->now_ms))
            stale++;
        enpi_meter_state_clear(&s);
    }
    char buf[48];
    enpi_out_row(o);
    enpi_out_str(o, f->id);
    enpi_out_str(o, f->name ? f->name : f->id);
    enpi_out_str(o, enpi_tz_name(tz));
    enpi_out_str(o, f->product_unit);
    enpi_out_uint(o, f->n_meters);
    if (any && enpi_tz_format(tz, last, buf, sizeof buf) >= 0)
        enpi_out_str(o, buf);
    else
        enpi_out_null(o);
    enpi_out_uint(o, stale);
    return 0;
}

int enpi_cmd_facilities(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    int rc = enpi_cli_cmd_args(g, argc, argv, NULL, 0, help, d);
    if (rc || g->help)
        return rc;
    enpi_out_format_t fmt;
    if ((rc = enpi_cli_format(g, &fmt, d)) != 0)
        return rc;
    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    enpi_out_t *o = NULL;
    if ((rc = enpi_out_create(fmt, cols, sizeof cols / sizeof cols[0], &o)) != 0) {
        rc = enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
        goto close_ctx;
    }
    for (size_t i = 0; i < ctx.cfg->n_facilities; i++)
        if ((rc = put_facility(&ctx, o, &ctx.cfg->facilities[i], d)) != 0)
            goto free_out;
    rc = enpi_cli_emit(o, d);
    o = NULL;
free_out:
    enpi_out_free(o);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
