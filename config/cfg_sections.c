/*
 * cfg_sections.c - the fixed-shape sections of SPEC §3: storage, pipeline, metrics and
 * programme, plus the period and list helpers other sections share. mqtt lives in
 * cfg_mqtt.c; the inputs and facilities lists in their own files.
 */
#include "cfg_check.h"
#include "cfg_scalar.h"
#include "cfg_schema.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

int enpi_cfg_expect_list(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what)
{
    if (v->kind != ENPI_CFG_SEQ)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s must be a list, not %s", what,
                             enpi_cfg_kind_name(v));
    return 0;
}

int enpi_cfg_parse_period(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *map, const char *what,
                          enpi_civil_t *from, enpi_civil_t *to)
{
    char key[160];
    const enpi_cfg_node_t *vf = enpi_cfg_map_get(map, "from");
    const enpi_cfg_node_t *vt = enpi_cfg_map_get(map, "to");
    if (vf == NULL || vt == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, map->line,
                             "%s needs both from and to (e.g. { from: 2017-01-01, to: "
                             "2018-01-01 })",
                             what);
    enpi_civil_t f, t;
    snprintf(key, sizeof(key), "%s from", what);
    int rc = enpi_cfg_date(ctx, vf, key, &f);
    if (rc != 0)
        return rc;
    snprintf(key, sizeof(key), "%s to", what);
    rc = enpi_cfg_date(ctx, vt, key, &t);
    if (rc != 0)
        return rc;
    if (enpi_civil_to_utc_ms(&f) >= enpi_civil_to_utc_ms(&t))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, vt->line, "%s: from (%s) must be before to (%s)",
                             what, vf->text, vt->text);
    *from = f;
    *to = t;
    return 0;
}

/* ---- storage ---- */

static int parse_retention(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_storage_cfg_t *out)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    if (v->kind != ENPI_CFG_MAP)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "storage.retention must be a mapping of resolution to age (e.g. "
                             "{ 15m: 400d, 1h: 5y }), not %s",
                             enpi_cfg_kind_name(v));
    out->retention = calloc(v->n_pairs ? v->n_pairs : 1, sizeof(*out->retention));
    if (out->retention == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    for (size_t i = 0; i < v->n_pairs; i++) {
        const enpi_cfg_node_t *k = v->pairs[i].key;
        const enpi_cfg_node_t *val = v->pairs[i].value;
        enpi_retention_cfg_t *r = &out->retention[out->n_retention];
        char why[160];
        int rc = enpi_cfg_duration(ctx, k, "storage.retention resolution", &r->resolution);
        if (rc != 0)
            return rc;
        if (!enpi_cfg_resolution_ok(&r->resolution, why, sizeof(why)))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, k->line,
                                 "storage.retention: invalid resolution '%s': %s",
                                 enpi_cfg_show(k->text, k->len, show, sizeof(show)), why);
        for (size_t j = 0; j < out->n_retention; j++) {
            const enpi_duration_t *d = &out->retention[j].resolution;
            if (d->ms == r->resolution.ms && d->months == r->resolution.months)
                return enpi_cfg_fail(ctx, ENPI_EINVAL, k->line,
                                     "storage.retention: resolution '%s' is given twice "
                                     "(first at line %d)",
                                     enpi_cfg_show(k->text, k->len, show, sizeof(show)),
                                     out->retention[j].line);
        }
        if (enpi_cfg_is_null(val))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, k->line,
                                 "storage.retention: no age given for '%s' (e.g. 400d)",
                                 enpi_cfg_show(k->text, k->len, show, sizeof(show)));
        rc = enpi_cfg_duration(ctx, val, "storage.retention age", &r->keep);
        if (rc != 0)
            return rc;
        /* Months count as 28 days here: only a keep shorter than one window is refused. */
        int64_t keep = r->keep.ms + (int64_t)r->keep.months * 28 * 86400000LL;
        int64_t win = r->resolution.ms + (int64_t)r->resolution.months * 28 * 86400000LL;
        if (keep < win)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, val->line,
                                 "storage.retention: keeping %s rollups for %s is shorter than "
                                 "one window",
                                 k->text, val->text);
        r->line = k->line;
        out->n_retention++;
    }
    return 0;
}

int enpi_cfg_parse_storage(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_storage_cfg_t *out)
{
    static const char *const keys[] = {"path", "commit_interval", "retention", NULL};
    int rc = enpi_cfg_map_check(ctx, v, "in storage", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x;
    if ((x = enpi_cfg_map_get(v, "path")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "storage.path", false, &out->path)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "commit_interval")) != NULL) {
        int64_t ms;
        if ((rc = enpi_cfg_fixed_ms(ctx, x, "storage.commit_interval", false, &ms)) != 0)
            return rc;
        if (ms < 10 || ms > 3600000)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                                 "storage.commit_interval: '%s' is outside 10ms..1h", x->text);
        out->commit_interval_ms = ms;
    }
    if ((x = enpi_cfg_map_get(v, "retention")) != NULL && (rc = parse_retention(ctx, x, out)) != 0)
        return rc;
    return 0;
}

/* ---- pipeline ---- */

static int parse_resolutions(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v,
                             enpi_pipeline_cfg_t *out)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    char why[160];
    int lines[ENPI_MAX_RESOLUTIONS];
    int rc = enpi_cfg_expect_list(ctx, v, "pipeline.resolutions");
    if (rc != 0)
        return rc;
    if (v->n_items == 0)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "pipeline.resolutions must list at least one resolution");
    if (v->n_items > ENPI_MAX_RESOLUTIONS)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->items[ENPI_MAX_RESOLUTIONS]->line,
                             "pipeline.resolutions: at most %d resolutions", ENPI_MAX_RESOLUTIONS);
    out->n_resolutions = 0;
    for (size_t i = 0; i < v->n_items; i++) {
        const enpi_cfg_node_t *it = v->items[i];
        enpi_duration_t d;
        if ((rc = enpi_cfg_duration(ctx, it, "pipeline.resolutions", &d)) != 0)
            return rc;
        if (!enpi_cfg_resolution_ok(&d, why, sizeof(why)))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, it->line,
                                 "pipeline.resolutions: invalid resolution '%s': %s",
                                 enpi_cfg_show(it->text, it->len, show, sizeof(show)), why);
        for (size_t j = 0; j < i; j++) {
            if (out->resolutions[j].ms == d.ms && out->resolutions[j].months == d.months)
                return enpi_cfg_fail(ctx, ENPI_EINVAL, it->line,
                                     "pipeline.resolutions: '%s' is listed twice (first at "
                                     "line %d)",
                                     enpi_cfg_show(it->text, it->len, show, sizeof(show)),
                                     lines[j]);
        }
        lines[i] = it->line;
        out->resolutions[out->n_resolutions++] = d;
    }
    return 0;
}

int enpi_cfg_parse_pipeline(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_pipeline_cfg_t *out)
{
    static const char *const keys[] = {"resolutions", "allowed_lateness", "max_future", "max_gap",
                                       NULL};
    int rc = enpi_cfg_map_check(ctx, v, "in pipeline", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x;
    if ((x = enpi_cfg_map_get(v, "resolutions")) != NULL &&
        (rc = parse_resolutions(ctx, x, out)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "allowed_lateness")) != NULL &&
        (rc = enpi_cfg_fixed_ms(ctx, x, "pipeline.allowed_lateness", true,
                                &out->allowed_lateness_ms)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "max_future")) != NULL &&
        (rc = enpi_cfg_fixed_ms(ctx, x, "pipeline.max_future", true, &out->max_future_ms)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "max_gap")) != NULL &&
        (rc = enpi_cfg_fixed_ms(ctx, x, "pipeline.max_gap", false, &out->max_gap_ms)) != 0)
        return rc;
    return 0;
}

/* ---- metrics ---- */

/* "host:port" or "[v6]:port" with a port from 1 to 65535. */
static bool listen_ok(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return false;
    if (s[0] == '[' && colon[-1] != ']')
        return false;
    const char *port = colon + 1;
    size_t n = strlen(port);
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)port[i]))
            return false;
    }
    long p = strtol(port, NULL, 10);
    if (p < 1 || p > 65535)
        return false;
    for (const char *q = s; q < colon; q++) {
        if (isspace((unsigned char)*q) || iscntrl((unsigned char)*q) || *q == '/')
            return false;
    }
    return true;
}

int enpi_cfg_parse_metrics(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, char **listen)
{
    static const char *const keys[] = {"listen", NULL};
    char show[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_map_check(ctx, v, "in metrics", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x = enpi_cfg_map_get(v, "listen");
    if (x == NULL)
        return 0;
    if ((rc = enpi_cfg_string(ctx, x, "metrics.listen", false, listen)) != 0)
        return rc;
    if (!listen_ok(*listen))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                             "metrics.listen: invalid address '%s' (use host:port, e.g. "
                             "127.0.0.1:9465)",
                             enpi_cfg_show(x->text, x->len, show, sizeof(show)));
    return 0;
}

/* ---- programme ---- */

int enpi_cfg_parse_programme(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v,
                             enpi_programme_cfg_t *out)
{
    static const char *const keys[] = {"name",
                                       "period",
                                       "target_saving",
                                       "stretch_saving",
                                       "aware_increase_pp",
                                       "applying_increase_pp",
                                       NULL};
    static const char *const period_keys[] = {"from", "to", NULL};
    int rc = enpi_cfg_map_check(ctx, v, "in programme", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x;
    if ((x = enpi_cfg_map_get(v, "name")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "programme.name", false, &out->name)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "period")) != NULL) {
        if ((rc = enpi_cfg_map_check(ctx, x, "in programme.period", period_keys)) != 0)
            return rc;
        if ((rc = enpi_cfg_parse_period(ctx, x, "programme.period", &out->period_from,
                                        &out->period_to)) != 0)
            return rc;
        out->has_period = true;
    }
    const enpi_cfg_node_t *target = enpi_cfg_map_get(v, "target_saving");
    const enpi_cfg_node_t *stretch = enpi_cfg_map_get(v, "stretch_saving");
    if (target != NULL && (rc = enpi_cfg_percent(ctx, target, "programme.target_saving",
                                                 &out->target_saving_pct)) != 0)
        return rc;
    if (stretch != NULL && (rc = enpi_cfg_percent(ctx, stretch, "programme.stretch_saving",
                                                  &out->stretch_saving_pct)) != 0)
        return rc;
    if (out->stretch_saving_pct < out->target_saving_pct)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, stretch ? stretch->line : target->line,
                             "programme.stretch_saving (%g%%) must not be below "
                             "target_saving (%g%%)",
                             out->stretch_saving_pct, out->target_saving_pct);
    if ((x = enpi_cfg_map_get(v, "aware_increase_pp")) != NULL &&
        (rc = enpi_cfg_percent(ctx, x, "programme.aware_increase_pp", &out->aware_increase_pp)) !=
            0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "applying_increase_pp")) != NULL &&
        (rc = enpi_cfg_percent(ctx, x, "programme.applying_increase_pp",
                               &out->applying_increase_pp)) != 0)
        return rc;
    return 0;
}
