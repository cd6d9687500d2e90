/*
 * pipeline_reconfigure.c - a SIGHUP reload of the pipeline (enpi_pipeline_reconfigure):
 * all or nothing, it swaps the meter table, the facilities' zones and the lateness
 * limits while every meter keeps its state; a meter whose arithmetic changed (kind,
 * reading, ...) is re-based.
 *
 * Meters keep their index for the pipeline's life (the accumulator and the dirty list
 * refer to them by index), removed ones stay behind as not live, added ones are
 * appended; each meter holds its own copy of its definition, so no pointer into a
 * configuration's facilities survives the call that read them.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "pipeline_int.h"

/* ---- reconfigure ------------------------------------------------------------------- */

/* One meter of the new configuration while enpi_pipeline_reconfigure() prepares. */
typedef struct {
    const enpi_meter_cfg_t *mc;
    const enpi_tz_t *tz; /* its facility's zone (already open, or opened by this call) */
    bool known;          /* the pipeline has a meter of that id (live or removed) */
    bool was_live;       /* ... and it is configured now */
    uint32_t index;      /* ... at this index */
    char *id;            /* a new meter: its owned id copy */
} plan_t;

static int cmp_plan_id(const void *a, const void *b)
{
    const plan_t *const *x = a, *const *y = b;

    return strcmp((*x)->mc->id, (*y)->mc->id);
}

/* Does the arithmetic of a meter change between a and b? (ids are equal) */
static bool meter_cfg_differs(const enpi_meter_cfg_t *a, const enpi_meter_cfg_t *b)
{
    return a->kind != b->kind || a->reading != b->reading || a->interval_ms != b->interval_ms ||
           a->scale != b->scale || a->to_kwh != b->to_kwh || a->rollover != b->rollover ||
           a->max_rate != b->max_rate;
}

/* Forgets what the arithmetic compares the next reading with (lifetime counters stay):
 * the meter's next accepted reading is a first reading again. */
static void meter_rebase(enpi_meter_state_t *st)
{
    enpi_meter_state_clear(st); /* recent_ts */
    st->has_state = false;
    st->last_raw = 0;
}

/* A zone by name among the pipeline's and those opened so far by this call. */
static const enpi_tz_t *zone_lookup(const enpi_pipeline_t *p, enpi_tz_t *const *opened,
                                    size_t n_opened, const char *name)
{
    for (size_t i = 0; i < p->n_zones; i++)
        if (strcmp(enpi_tz_name(p->zones[i]), name) == 0)
            return p->zones[i];
    for (size_t i = 0; i < n_opened; i++)
        if (strcmp(enpi_tz_name(opened[i]), name) == 0)
            return opened[i];
    return NULL;
}

/*
 * The preparing half of a reconfigure: every check and every allocation. On success the
 * plan, the zones opened and the new arrays are ready and nothing in p changed.
 */
typedef struct {
    plan_t *plan;
    size_t n;
    plan_t **by_id;     /* plan entries sorted by id (duplicate check) */
    enpi_tz_t **opened; /* zones this call opened */
    size_t n_opened;
    size_t added, survivors_live, revived;
    pmeter_t *meters;    /* the new meter array: p's meters, then the added ones */
    enpi_hindex_t index; /* reserved for all of them (filled when meters is in place) */
    uint32_t *dirty;
    pmeter_t **sorted; /* Sparkplug only */
    enpi_tz_t **zones; /* NULL when p->zones has room for the opened ones */
} reconf_t;

static void reconf_free(reconf_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->plan[i].id);
    for (size_t i = 0; i < r->n_opened; i++)
        enpi_tz_free(r->opened[i]);
    free(r->plan);
    free(r->by_id);
    free(r->opened);
    free(r->meters);
    enpi_hindex_destroy(&r->index);
    free(r->dirty);
    free(r->sorted);
    free(r->zones);
}

static int reconf_prepare(const enpi_pipeline_t *p, const enpi_config_t *cfg, reconf_t *r,
                          char *errbuf, size_t errlen)
{
    size_t n = 0, k = 0, total;

    for (size_t f = 0; f < cfg->n_facilities; f++)
        n += cfg->facilities[f].n_meters;
    r->plan = calloc(n ? n : 1, sizeof(*r->plan));
    r->by_id = calloc(n ? n : 1, sizeof(*r->by_id));
    r->opened = calloc(cfg->n_facilities ? cfg->n_facilities : 1, sizeof(*r->opened));
    if (r->plan == NULL || r->by_id == NULL || r->opened == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t f = 0; f < cfg->n_facilities; f++) {
        const enpi_facility_cfg_t *fc = &cfg->facilities[f];
        const char *zone = enpi_config_facility_tz(cfg, fc);
        const enpi_tz_t *tz;

        if (zone == NULL)
            zone = "UTC";
        tz = zone_lookup(p, r->opened, r->n_opened, zone);
        if (tz == NULL) {
            int rc = enpi_tz_open(zone, &r->opened[r->n_opened]);
            if (rc == ENPI_ENOMEM)
                return enpi_pipeline_fail(errbuf, errlen, rc, "out of memory");
            if (rc != 0)
                return enpi_pipeline_fail(errbuf, errlen, rc,
                                          "facility %s: unknown time zone \"%s\"", fc->id, zone);
            tz = r->opened[r->n_opened++];
        }
        for (size_t i = 0; i < fc->n_meters; i++) {
            const enpi_meter_cfg_t *mc = &fc->meters[i];
            size_t len = strlen(mc->id);
            plan_t *pl = &r->plan[k];
            pmeter_t *old;

            if (!enpi_meter_id_valid(mc->id, len))
                return enpi_pipeline_fail(errbuf, errlen, ENPI_EINVAL,
                                          "meter id \"%s\" is not 1..%d bytes of printable UTF-8",
                                          mc->id, ENPI_METER_ID_MAX);
            pl->mc = mc;
            pl->tz = tz;
            old = enpi_pipeline_find_indexed(&p->by_id, mc->id, len);
            pl->known = old != NULL;
            pl->was_live = old != NULL && old->live;
            pl->index = old != NULL ? old->index : 0;
            r->by_id[k] = pl;
            r->n = ++k;
            if (old == NULL) {
                if ((pl->id = strdup(mc->id)) == NULL)
                    return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
                r->added++;
            } else if (old->live) {
                r->survivors_live++;
            } else {
                r->revived++;
            }
        }
    }
    qsort(r->by_id, n, sizeof(*r->by_id), cmp_plan_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->by_id[i - 1]->mc->id, r->by_id[i]->mc->id) == 0)
            return enpi_pipeline_fail(errbuf, errlen, ENPI_EINVAL,
                                      "meter id \"%s\" configured twice", r->by_id[i]->mc->id);
    total = p->n_meters + r->added;
    if (total > UINT32_MAX)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ERANGE, "too many meters");
    r->meters = calloc(total ? total : 1, sizeof(*r->meters));
    r->dirty = calloc(total ? total : 1, sizeof(*r->dirty));
    if (r->meters == NULL || r->dirty == NULL || enpi_hindex_reserve(&r->index, total) != 0)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (p->sp != NULL && (r->sorted = calloc(n ? n : 1, sizeof(*r->sorted))) == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (p->n_zones + r->n_opened > p->zones_cap &&
        (r->zones = calloc(p->n_zones + r->n_opened, sizeof(*r->zones))) == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    return 0;
}

int enpi_pipeline_reconfigure(enpi_pipeline_t *p, const enpi_config_t *cfg,
                              enpi_reconfigure_summary_t *out, char *errbuf, size_t errlen)
{
    enpi_reconfigure_summary_t sum;
    reconf_t r;
    size_t next, n_before = p->n_meters, live_before = p->n_live;
    int rc;

    memset(&sum, 0, sizeof(sum));
    memset(&r, 0, sizeof(r));
    rc = reconf_prepare(p, cfg, &r, errbuf, errlen);
    if (rc != 0) {
        reconf_free(&r);
        return rc;
    }

    /* From here on nothing can fail. Meters keep their index (the accumulator's entries
     * and the dirty list refer to meters by index); added ones go behind. */
    memcpy(r.meters, p->meters, n_before * sizeof(*r.meters));
    memcpy(r.dirty, p->dirty, p->n_dirty * sizeof(*r.dirty));
    free(p->meters);
    free(p->dirty);
    p->meters = r.meters;
    p->dirty = r.dirty;
    r.meters = NULL;
    r.dirty = NULL;
    for (size_t i = 0; i < n_before; i++) {
        pmeter_t *m = &p->meters[i];
        m->live = false;
        m->fresh = false;
        memset(m->cache, 0, sizeof(m->cache)); /* zones may change: recompute windows */
    }
    next = n_before;
    for (size_t j = 0; j < r.n; j++) {
        plan_t *pl = &r.plan[j];
        pmeter_t *m;

        if (pl->known) {
            m = &p->meters[pl->index];
            if (meter_cfg_differs(&m->cfg, pl->mc)) {
                sum.changed++;
                if ((m->cfg.kind != pl->mc->kind || m->cfg.reading != pl->mc->reading) &&
                    m->st.has_state) {
                    meter_rebase(&m->st);
                    enpi_pipeline_mark_dirty(p, m);
                    sum.rebased++;
                    log_notice("pipeline: meter %s: kind or reading type changed; its next "
                               "reading starts it afresh (no amount across the change)",
                               m->cfg.id);
                }
            }
            if (m->tz != pl->tz && pl->was_live)
                sum.zone_changed++;
            {
                char *id = m->cfg.id;
                m->cfg = *pl->mc;
                m->cfg.id = id;
                m->cfg.carrier = NULL;
            }
        } else {
            m = &p->meters[next];
            m->cfg = *pl->mc;
            m->cfg.id = pl->id;
            m->cfg.carrier = NULL;
            pl->id = NULL;
            m->index = (uint32_t)next++;
            m->fresh = true;
        }
        m->tz = pl->tz;
        m->live = true;
    }
    p->n_meters = next;
    p->n_live = r.n;
    for (size_t i = 0; i < p->n_meters; i++)
        (void)enpi_pipeline_index_meter(&r.index, &p->meters[i]); /* reserved: cannot fail */
    enpi_hindex_destroy(&p->by_id);
    p->by_id = r.index;
    memset(&r.index, 0, sizeof(r.index));
    if (p->sp != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < p->n_meters; i++)
            if (p->meters[i].live)
                r.sorted[k++] = &p->meters[i];
        qsort(r.sorted, k, sizeof(*r.sorted), enpi_pipeline_cmp_meter_id);
        free(p->sorted);
        p->sorted = r.sorted;
        p->n_sorted = k;
        r.sorted = NULL;
    }
    if (r.zones != NULL) {
        memcpy(r.zones, p->zones, p->n_zones * sizeof(*r.zones));
        free(p->zones);
        p->zones = r.zones;
        p->zones_cap = p->n_zones + r.n_opened;
        r.zones = NULL;
    }
    memcpy(p->zones + p->n_zones, r.opened, r.n_opened * sizeof(*r.opened));
    p->n_zones += r.n_opened;
    r.n_opened = 0;
    p->pcfg.allowed_lateness_ms = cfg->pipeline.allowed_lateness_ms;
    p->pcfg.max_future_ms = cfg->pipeline.max_future_ms;
    p->pcfg.max_gap_ms = cfg->pipeline.max_gap_ms;

    sum.meters = r.n;
    sum.added = r.added;
    sum.revived = r.revived;
    sum.removed = live_before - r.survivors_live;
    reconf_free(&r);
    if (out != NULL)
        *out = sum;
    return 0;
}

int enpi_pipeline_restore_added(enpi_pipeline_t *p, const char *meter_id,
                                const enpi_meter_state_t *st)
{
    pmeter_t *m = enpi_pipeline_find_meter(p, meter_id, strlen(meter_id));

    if (m == NULL || !m->fresh)
        return ENPI_ENOENT;
    return enpi_pipeline_restore(p, meter_id, st);
}
