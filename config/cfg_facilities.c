/*
 * cfg_facilities.c - the `facilities` list of SPEC §3: each facility's registry fields,
 * its baseline and its meters, plus the rule that ids are unique (facility ids among
 * facilities, meter ids across the whole file, since a reading names only its meter).
 */
#include "cfg_check.h"
#include "cfg_scalar.h"
#include "cfg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

typedef struct {
    const char *id;
    int line;
} id_ref_t;

static int id_ref_cmp(const void *a, const void *b)
{
    const id_ref_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/*
 * Finds a repeated id among `n` refs (sorted in place). Reports the repeat that comes
 * earliest in the file, naming the first definition. `what` is "meter" or "facility".
 */
static int check_unique(enpi_cfg_ctx_t *ctx, id_ref_t *refs, size_t n, const char *what)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    qsort(refs, n, sizeof(*refs), id_ref_cmp);
    const id_ref_t *dup = NULL, *first = NULL;
    size_t start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && strcmp(refs[i].id, refs[start].id) == 0)
            continue;
        /* refs[start..i) share one id, sorted by line: the second is its first repeat. */
        if (i - start > 1 && (dup == NULL || refs[start + 1].line < dup->line)) {
            dup = &refs[start + 1];
            first = &refs[start];
        }
        start = i;
    }
    if (dup == NULL)
        return 0;
    return enpi_cfg_fail(ctx, ENPI_EINVAL, dup->line, "%s '%s' is defined twice (first at line %d)",
                         what, enpi_cfg_show(dup->id, strlen(dup->id), show, sizeof(show)),
                         first->line);
}

static int parse_id(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, char **out)
{
    char why[160], show[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    if (!enpi_cfg_id_ok(v->text, v->len, why, sizeof(why)))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s '%s' %s", what,
                             enpi_cfg_show(v->text, v->len, show, sizeof(show)), why);
    return enpi_cfg_string(ctx, v, what, false, out);
}

static int parse_meter(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *fwhere,
                       size_t index, enpi_meter_cfg_t *m)
{
    static const char *const keys[] = {"id",    "kind",   "carrier",  "reading",  "interval",
                                       "scale", "to_kwh", "rollover", "max_rate", NULL};
    char where[ENPI_CFG_SHOW_MAX + 300], what[ENPI_CFG_SHOW_MAX + 340], show[ENPI_CFG_SHOW_MAX + 4];
    const enpi_cfg_node_t *x;
    int rc;

    m->line = v->line;
    m->scale = 1;
    m->to_kwh = 1;
    const enpi_cfg_node_t *vid = enpi_cfg_map_get(v, "id");
    if (v->kind == ENPI_CFG_MAP && vid != NULL && vid->kind == ENPI_CFG_SCALAR)
        snprintf(where, sizeof(where), "meter '%s'",
                 enpi_cfg_show(vid->text, vid->len, show, sizeof(show)));
    else
        snprintf(where, sizeof(where), "meter %zu of %s", index + 1, fwhere);
    snprintf(what, sizeof(what), "in %s", where);
    if ((rc = enpi_cfg_map_check(ctx, v, what, keys)) != 0)
        return rc;
    if (vid == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s has no id", where);
    if ((rc = parse_id(ctx, vid, "meter id", &m->id)) != 0)
        return rc;
    m->line = vid->line;

    if ((x = enpi_cfg_map_get(v, "kind")) == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, m->line,
                             "%s has no kind (add kind: energy or kind: production)", where);
    snprintf(what, sizeof(what), "%s kind", where);
    if ((rc = enpi_cfg_scalar(ctx, x, what)) != 0)
        return rc;
    if (strcmp(x->text, "energy") == 0)
        m->kind = ENPI_KIND_ENERGY;
    else if (strcmp(x->text, "production") == 0)
        m->kind = ENPI_KIND_PRODUCTION;
    else
        return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                             "%s: unknown kind '%s' (use energy or production)", what,
                             enpi_cfg_show(x->text, x->len, show, sizeof(show)));

    if ((x = enpi_cfg_map_get(v, "carrier")) != NULL) {
        snprintf(what, sizeof(what), "%s carrier", where);
        if ((rc = enpi_cfg_string(ctx, x, what, false, &m->carrier)) != 0)
            return rc;
    }
    m->reading = ENPI_READING_CUMULATIVE;
    if ((x = enpi_cfg_map_get(v, "reading")) != NULL) {
        snprintf(what, sizeof(what), "%s reading", where);
        if ((rc = enpi_cfg_scalar(ctx, x, what)) != 0)
            return rc;
        if (strcmp(x->text, "cumulative") == 0)
            m->reading = ENPI_READING_CUMULATIVE;
        else if (strcmp(x->text, "delta") == 0)
            m->reading = ENPI_READING_DELTA;
        else
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                                 "%s: unknown reading '%s' (use cumulative or delta)", what,
                                 enpi_cfg_show(x->text, x->len, show, sizeof(show)));
    }
    const enpi_cfg_pair_t *p;
    if ((p = enpi_cfg_map_find(v, "interval")) != NULL && !enpi_cfg_is_null(p->value)) {
        if (m->reading != ENPI_READING_DELTA)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, p->key->line,
                                 "%s: interval applies only to delta meters (reading: delta)",
                                 where);
        snprintf(what, sizeof(what), "%s interval", where);
        if ((rc = enpi_cfg_fixed_ms(ctx, p->value, what, false, &m->interval_ms)) != 0)
            return rc;
    }
    if ((x = enpi_cfg_map_get(v, "scale")) != NULL) {
        snprintf(what, sizeof(what), "%s scale", where);
        if ((rc = enpi_cfg_positive(ctx, x, what, &m->scale)) != 0)
            return rc;
    }
    if ((p = enpi_cfg_map_find(v, "to_kwh")) != NULL && !enpi_cfg_is_null(p->value)) {
        if (m->kind != ENPI_KIND_ENERGY)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, p->key->line,
                                 "%s: to_kwh applies only to energy meters", where);
        snprintf(what, sizeof(what), "%s to_kwh", where);
        if ((rc = enpi_cfg_positive(ctx, p->value, what, &m->to_kwh)) != 0)
            return rc;
    }
    if ((p = enpi_cfg_map_find(v, "rollover")) != NULL && !enpi_cfg_is_null(p->value)) {
        if (m->reading != ENPI_READING_CUMULATIVE)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, p->key->line,
                                 "%s: rollover applies only to cumulative meters", where);
        snprintf(what, sizeof(what), "%s rollover", where);
        if ((rc = enpi_cfg_positive(ctx, p->value, what, &m->rollover)) != 0)
            return rc;
    }
    if ((x = enpi_cfg_map_get(v, "max_rate")) != NULL) {
        snprintf(what, sizeof(what), "%s max_rate", where);
        if ((rc = enpi_cfg_positive(ctx, x, what, &m->max_rate)) != 0)
            return rc;
    }
    return 0;
}

static int parse_baseline(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *fwhere,
                          enpi_baseline_cfg_t *b)
{
    static const char *const keys[] = {"from", "to", "model", "sec", NULL};
    char what[260], show[ENPI_CFG_SHOW_MAX + 4];
    int rc;
    snprintf(what, sizeof(what), "in %s baseline", fwhere);
    if ((rc = enpi_cfg_map_check(ctx, v, what, keys)) != 0)
        return rc;
    const enpi_cfg_node_t *from = enpi_cfg_map_get(v, "from");
    const enpi_cfg_node_t *to = enpi_cfg_map_get(v, "to");
    const enpi_cfg_node_t *model = enpi_cfg_map_get(v, "model");
    const enpi_cfg_node_t *sec = enpi_cfg_map_get(v, "sec");

    if (sec != NULL) {
        if (from != NULL || to != NULL || model != NULL)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, sec->line,
                                 "%s baseline: give either { sec: N } or { from, to, model }, "
                                 "not both",
                                 fwhere);
        snprintf(what, sizeof(what), "%s baseline sec", fwhere);
        if ((rc = enpi_cfg_positive(ctx, sec, what, &b->fixed_sec)) != 0)
            return rc;
        b->has_fixed_sec = true;
        b->model = ENPI_BASELINE_SEC;
        return 0;
    }
    if (from == NULL && to == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "%s baseline needs a period { from, to } or a fixed { sec: N }",
                             fwhere);
    snprintf(what, sizeof(what), "%s baseline", fwhere);
    if ((rc = enpi_cfg_parse_period(ctx, v, what, &b->from, &b->to)) != 0)
        return rc;
    b->has_period = true;
    b->model = ENPI_BASELINE_SEC;
    if (model != NULL) {
        snprintf(what, sizeof(what), "%s baseline model", fwhere);
        if ((rc = enpi_cfg_scalar(ctx, model, what)) != 0)
            return rc;
        if (strcmp(model->text, "sec") == 0)
            b->model = ENPI_BASELINE_SEC;
        else if (strcmp(model->text, "regression") == 0)
            b->model = ENPI_BASELINE_REGRESSION;
        else
            return enpi_cfg_fail(ctx, ENPI_EINVAL, model->line,
                                 "%s: unknown model '%s' (use sec or regression)", what,
                                 enpi_cfg_show(model->text, model->len, show, sizeof(show)));
    }
    return 0;
}

static int parse_facility(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, size_t index,
                          enpi_facility_cfg_t *f)
{
    static const char *const keys[] = {"id",       "name",        "product_unit",
                                       "timezone", "aware_since", "applying_since",
                                       "baseline", "meters",      NULL};
    char where[200], what[260], why[256], show[ENPI_CFG_SHOW_MAX + 4];
    const enpi_cfg_node_t *x;
    int rc;

    f->line = v->line;
    const enpi_cfg_node_t *vid = enpi_cfg_map_get(v, "id");
    if (v->kind == ENPI_CFG_MAP && vid != NULL && vid->kind == ENPI_CFG_SCALAR)
        snprintf(where, sizeof(where), "facility '%s'",
                 enpi_cfg_show(vid->text, vid->len, show, sizeof(show)));
    else
        snprintf(where, sizeof(where), "facilities entry %zu", index + 1);
    snprintf(what, sizeof(what), "in %s", where);
    if ((rc = enpi_cfg_map_check(ctx, v, what, keys)) != 0)
        return rc;
    if (vid == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s has no id", where);
    if ((rc = parse_id(ctx, vid, "facility id", &f->id)) != 0)
        return rc;
    f->line = vid->line;

    if ((x = enpi_cfg_map_get(v, "name")) != NULL) {
        snprintf(what, sizeof(what), "%s name", where);
        if ((rc = enpi_cfg_string(ctx, x, what, false, &f->name)) != 0)
            return rc;
    } else if ((f->name = strdup(f->id)) == NULL) {
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    }
    if ((x = enpi_cfg_map_get(v, "product_unit")) != NULL) {
        snprintf(what, sizeof(what), "%s product_unit", where);
        if ((rc = enpi_cfg_string(ctx, x, what, false, &f->product_unit)) != 0)
            return rc;
    }
    if ((x = enpi_cfg_map_get(v, "timezone")) != NULL) {
        snprintf(what, sizeof(what), "%s timezone", where);
        if ((rc = enpi_cfg_string(ctx, x, what, false, &f->timezone)) != 0)
            return rc;
        if (!enpi_cfg_zone_ok(f->timezone, why, sizeof(why)))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line, "%s: '%s' %s", what,
                                 enpi_cfg_show(x->text, x->len, show, sizeof(show)), why);
    }
    if ((x = enpi_cfg_map_get(v, "aware_since")) != NULL) {
        snprintf(what, sizeof(what), "%s aware_since", where);
        if ((rc = enpi_cfg_date(ctx, x, what, &f->aware_since)) != 0)
            return rc;
        f->has_aware_since = true;
    }
    if ((x = enpi_cfg_map_get(v, "applying_since")) != NULL) {
        snprintf(what, sizeof(what), "%s applying_since", where);
        if ((rc = enpi_cfg_date(ctx, x, what, &f->applying_since)) != 0)
            return rc;
        f->has_applying_since = true;
    }
    if ((x = enpi_cfg_map_get(v, "baseline")) != NULL &&
        (rc = parse_baseline(ctx, x, where, &f->baseline)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "meters")) != NULL) {
        snprintf(what, sizeof(what), "%s meters", where);
        if ((rc = enpi_cfg_expect_list(ctx, x, what)) != 0)
            return rc;
        if (x->n_items > 0) {
            f->meters = calloc(x->n_items, sizeof(*f->meters));
            if (f->meters == NULL)
                return enpi_cfg_fail(ctx, ENPI_ENOMEM, x->line, "out of memory");
            f->n_meters = x->n_items;
            for (size_t i = 0; i < x->n_items; i++) {
                if ((rc = parse_meter(ctx, x->items[i], where, i, &f->meters[i])) != 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* Facility ids unique among facilities; meter ids unique across all facilities. */
static int check_ids(enpi_cfg_ctx_t *ctx, const enpi_config_t *cfg)
{
    size_t n_meters = 0;
    for (size_t i = 0; i < cfg->n_facilities; i++)
        n_meters += cfg->facilities[i].n_meters;
    size_t n = cfg->n_facilities > n_meters ? cfg->n_facilities : n_meters;
    id_ref_t *refs = malloc((n ? n : 1) * sizeof(*refs));
    if (refs == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, 0, "out of memory");

    for (size_t i = 0; i < cfg->n_facilities; i++)
        refs[i] = (id_ref_t){cfg->facilities[i].id, cfg->facilities[i].line};
    int rc = check_unique(ctx, refs, cfg->n_facilities, "facility");
    if (rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < cfg->n_facilities; i++) {
            const enpi_facility_cfg_t *f = &cfg->facilities[i];
            for (size_t j = 0; j < f->n_meters; j++)
                refs[k++] = (id_ref_t){f->meters[j].id, f->meters[j].line};
        }
        rc = check_unique(ctx, refs, n_meters, "meter");
    }
    free(refs);
    return rc;
}

int enpi_cfg_parse_facilities(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_config_t *cfg)
{
    int rc = enpi_cfg_expect_list(ctx, v, "facilities");
    if (rc != 0)
        return rc;
    if (v->n_items == 0)
        return 0;
    cfg->facilities = calloc(v->n_items, sizeof(*cfg->facilities));
    if (cfg->facilities == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    cfg->n_facilities = v->n_items;
    for (size_t i = 0; i < v->n_items; i++) {
        const enpi_cfg_node_t *it = v->items[i];
        if (enpi_cfg_is_null(it))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, it->line,
                                 "facilities entry %zu is empty (give at least an id)", i + 1);
        if ((rc = parse_facility(ctx, it, i, &cfg->facilities[i])) != 0)
            return rc;
    }
    return check_ids(ctx, cfg);
}
