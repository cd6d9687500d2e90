/*
 * pipeline_create.c - a pipeline from a configuration, and its end: the inputs (topic
 * templates, payload formats), the meters with their facilities' zones and the
 * decoders; enpi_pipeline_free releases all of it.
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

/* ---- building from the configuration ---------------------------------------------- */

int enpi_pipeline_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int open_zone(enpi_pipeline_t *p, const char *name, const enpi_tz_t **out)
{
    enpi_tz_t *tz;
    int rc;

    for (size_t i = 0; i < p->n_zones; i++) {
        if (strcmp(enpi_tz_name(p->zones[i]), name) == 0) {
            *out = p->zones[i];
            return 0;
        }
    }
    if (p->n_zones == p->zones_cap)
        return ENPI_EFULL; /* the caller sized zones for every facility */
    rc = enpi_tz_open(name, &tz);
    if (rc != 0)
        return rc;
    p->zones[p->n_zones++] = tz;
    *out = tz;
    return 0;
}

/* Does this input's format carry meter ids in its payload (so the topic need not)? */
static bool format_has_payload_ids(const enpi_input_cfg_t *in)
{
    return in->format == ENPI_FORMAT_PROTOBUF || in->format == ENPI_FORMAT_SPARKPLUG ||
           (in->format == ENPI_FORMAT_JSON && in->meter_id_path != NULL);
}

static bool format_supported(enpi_format_t f)
{
    return f == ENPI_FORMAT_JSON || f == ENPI_FORMAT_NUMBER || f == ENPI_FORMAT_PROTOBUF ||
           f == ENPI_FORMAT_TASMOTA || f == ENPI_FORMAT_SPARKPLUG;
}

static int build_inputs(enpi_pipeline_t *p, char *errbuf, size_t errlen)
{
    const enpi_config_t *cfg = p->cfg;
    char msg[256];
    int rc;

    p->inputs = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*p->inputs));
    p->filters = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*p->filters));
    if (p->inputs == NULL || p->filters == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        const enpi_input_cfg_t *ic = &cfg->inputs[i];
        pinput_t *in = &p->inputs[i];

        in->cfg = ic;
        p->n_inputs = i + 1;
        rc = enpi_topic_compile(&in->topic, ic->topic, ic->meter_id, msg, sizeof(msg));
        if (rc == 0 && !in->topic.id_from_topic && !format_has_payload_ids(ic)) {
            snprintf(msg, sizeof(msg),
                     "meter_id template \"%s\" uses {%s}, which topic \"%s\" does not capture",
                     ic->meter_id != NULL ? ic->meter_id : "{meter}", in->topic.missing_capture,
                     ic->topic);
            rc = ENPI_EINVAL;
        }
        if (rc == 0 && ic->format == ENPI_FORMAT_JSON)
            rc = enpi_json_paths_init(&in->json, ic->value_path, ic->timestamp_path,
                                      ic->meter_id_path, msg, sizeof(msg));
        if (rc == ENPI_ENOMEM)
            return enpi_pipeline_fail(errbuf, errlen, rc, "out of memory");
        if (rc != 0)
            return enpi_pipeline_fail(errbuf, errlen, rc, "%s:%d: input: %s",
                                      cfg->path ? cfg->path : "config", ic->line, msg);
        p->filters[i] = in->topic.filter;
        if (!format_supported(ic->format))
            log_warn("%s:%d: input \"%s\": this payload format is not implemented yet; its "
                     "messages are rejected as parse_error",
                     cfg->path ? cfg->path : "config", ic->line, ic->topic);
    }
    return 0;
}

/* dst = *src with the id duplicated and no carrier (the arithmetic never reads it).
 * Returns 0 or ENPI_ENOMEM (dst untouched). */
static int meter_cfg_copy(enpi_meter_cfg_t *dst, const enpi_meter_cfg_t *src)
{
    char *id = strdup(src->id);

    if (id == NULL)
        return ENPI_ENOMEM;
    *dst = *src;
    dst->id = id;
    dst->carrier = NULL;
    return 0;
}

static int build_meters(enpi_pipeline_t *p, char *errbuf, size_t errlen)
{
    const enpi_config_t *cfg = p->cfg;
    size_t n = 0, k = 0;
    int rc;

    for (size_t f = 0; f < cfg->n_facilities; f++)
        n += cfg->facilities[f].n_meters;
    p->meters = calloc(n ? n : 1, sizeof(*p->meters));
    p->dirty = calloc(n ? n : 1, sizeof(*p->dirty));
    p->zones_cap = cfg->n_facilities ? cfg->n_facilities : 1;
    p->zones = calloc(p->zones_cap, sizeof(*p->zones));
    if (p->meters == NULL || p->dirty == NULL || p->zones == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t f = 0; f < cfg->n_facilities; f++) {
        const enpi_facility_cfg_t *fc = &cfg->facilities[f];
        const char *zone = enpi_config_facility_tz(cfg, fc);
        const enpi_tz_t *tz;

        rc = open_zone(p, zone != NULL ? zone : "UTC", &tz);
        if (rc == ENPI_ENOMEM)
            return enpi_pipeline_fail(errbuf, errlen, rc, "out of memory");
        if (rc != 0)
            return enpi_pipeline_fail(errbuf, errlen, rc, "facility %s: unknown time zone \"%s\"",
                                      fc->id, zone);
        for (size_t i = 0; i < fc->n_meters; i++) {
            const enpi_meter_cfg_t *mc = &fc->meters[i];
            size_t len = strlen(mc->id);
            pmeter_t *m = &p->meters[k];

            if (!enpi_meter_id_valid(mc->id, len))
                return enpi_pipeline_fail(errbuf, errlen, ENPI_EINVAL,
                                          "meter id \"%s\" is not 1..%d bytes "
                                          "of printable UTF-8",
                                          mc->id, ENPI_METER_ID_MAX);
            if (enpi_pipeline_find_meter(p, mc->id, len) != NULL)
                return enpi_pipeline_fail(errbuf, errlen, ENPI_EINVAL,
                                          "meter id \"%s\" configured twice", mc->id);
            if (meter_cfg_copy(&m->cfg, mc) != 0)
                return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
            m->tz = tz;
            m->index = (uint32_t)k;
            m->live = true;
            if (enpi_pipeline_index_meter(&p->by_id, m) != 0)
                return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
            p->n_meters = ++k;
            p->n_live = k;
        }
    }
    return 0;
}

int enpi_pipeline_create(const enpi_config_t *cfg, enpi_pipeline_t **out, char *errbuf,
                         size_t errlen)
{
    enpi_pipeline_t *p;
    int rc;

    *out = NULL;
    if (cfg->pipeline.n_resolutions > ENPI_MAX_RESOLUTIONS)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_EINVAL, "more than %d resolutions",
                                  ENPI_MAX_RESOLUTIONS);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    p->cfg = cfg;
    p->pcfg = cfg->pipeline;
    p->pc = &p->pcfg;
    p->topic_id_len = -1;
    enpi_accum_init(&p->acc);
    p->acc.gen = 1; /* zeroed caches (gen 0) never match */
    for (size_t r = 0; r < cfg->pipeline.n_resolutions; r++) {
        char buf[32];
        if (!enpi_resolution_valid(&cfg->pipeline.resolutions[r])) {
            rc = enpi_pipeline_fail(
                errbuf, errlen, ENPI_EINVAL, "resolution %s does not divide a day",
                enpi_duration_format(&cfg->pipeline.resolutions[r], buf, sizeof(buf)));
            goto fail_pipeline;
        }
        p->res_code[r] = enpi_resolution_code(&cfg->pipeline.resolutions[r]);
    }
    p->n_res = cfg->pipeline.n_resolutions;
    rc = build_meters(p, errbuf, errlen);
    if (rc == 0)
        rc = build_inputs(p, errbuf, errlen);
    if (rc == 0 &&
        (enpi_json_decoder_create(&p->json) != 0 ||
         enpi_protobuf_decoder_create(&p->protobuf) != 0 || enpi_pipeline_build_sparkplug(p) != 0))
        rc = enpi_pipeline_fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (rc != 0)
        goto fail_pipeline;
    *out = p;
    return 0;

fail_pipeline:
    enpi_pipeline_free(p);
    return rc;
}

static void unknown_clear(enpi_pipeline_t *p)
{
    unknown_t *u, *tmp;

    HASH_ITER(hh, p->unknown, u, tmp)
    {
        HASH_DEL(p->unknown, u);
        free(u->id);
        free(u->topic);
        free(u);
    }
    p->n_unknown = 0;
    p->unknown_overflow = 0;
}

void enpi_pipeline_free(enpi_pipeline_t *p)
{
    if (p == NULL)
        return;
    unknown_clear(p);
    enpi_hindex_destroy(&p->by_id);
    for (size_t i = 0; i < p->n_meters; i++) {
        enpi_meter_state_clear(&p->meters[i].st);
        free(p->meters[i].cfg.id);
    }
    for (size_t i = 0; i < p->n_inputs; i++) {
        enpi_topic_free(&p->inputs[i].topic);
        enpi_json_paths_free(&p->inputs[i].json);
    }
    for (size_t i = 0; i < p->n_zones; i++)
        enpi_tz_free(p->zones[i]);
    enpi_accum_destroy(&p->acc);
    enpi_json_decoder_free(p->json);
    enpi_protobuf_decoder_free(p->protobuf);
    enpi_sparkplug_free(p->sp);
    free(p->sorted);
    free(p->outbox);
    free(p->outbox_out);
    free(p->meters);
    free(p->dirty);
    free(p->zones);
    free(p->inputs);
    free(p->filters);
    free(p);
}
