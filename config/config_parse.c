/*
 * config_parse.c - enpi_config_parse() and enpi_config_load(): defaults, the top-level
 * mapping, and the checks that need several sections at once.
 *
 * Sections are read in file order so that the first error reported is the first one an
 * operator meets reading the file; cross-section checks run last.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_check.h"
#include "cfg_scalar.h"
#include "cfg_schema.h"
#include "enpi_error.h"

#define CONFIG_MAX_BYTES (16u << 20) /* a configuration file is text, not a database */

static const char *const top_keys[] = {"timezone", "mqtt",      "storage",    "pipeline", "metrics",
                                       "inputs",   "programme", "facilities", NULL};

/* Fills the SPEC §3 defaults; strings are heap copies so free is uniform. */
static int set_defaults(enpi_config_t *cfg, const char *name)
{
    cfg->path = strdup(name);
    cfg->timezone = strdup("UTC");
    cfg->mqtt.uri = strdup("tcp://127.0.0.1:1883");
    cfg->mqtt.client_id = strdup("enpid");
    cfg->mqtt.clean_session = false;
    cfg->mqtt.qos = 1;
    cfg->mqtt.keepalive_ms = 30000;
    cfg->mqtt.mqtt_version = 3;
    cfg->mqtt.reconnect_max_ms = 60000;
    cfg->mqtt.session_expiry_s = -1;
    cfg->storage.path = strdup("/var/lib/enpid");
    cfg->storage.commit_interval_ms = 1000;
    cfg->pipeline.resolutions[0] = (enpi_duration_t){.ms = 15 * 60000};
    cfg->pipeline.resolutions[1] = (enpi_duration_t){.ms = 3600000};
    cfg->pipeline.resolutions[2] = (enpi_duration_t){.ms = 86400000};
    cfg->pipeline.resolutions[3] = (enpi_duration_t){.months = 1};
    cfg->pipeline.n_resolutions = 4;
    cfg->pipeline.allowed_lateness_ms = 3600000;
    cfg->pipeline.max_future_ms = 5 * 60000;
    cfg->pipeline.max_gap_ms = 3600000;
    cfg->programme.target_saving_pct = 8;
    cfg->programme.stretch_saving_pct = 13;
    if (cfg->path == NULL || cfg->timezone == NULL || cfg->mqtt.uri == NULL ||
        cfg->mqtt.client_id == NULL || cfg->storage.path == NULL)
        return ENPI_ENOMEM;
    return 0;
}

static int parse_timezone(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_config_t *cfg)
{
    char why[256], show[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_string(ctx, v, "timezone", false, &cfg->timezone);
    if (rc != 0)
        return rc;
    if (!enpi_cfg_zone_ok(cfg->timezone, why, sizeof(why)))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "timezone: '%s' %s",
                             enpi_cfg_show(v->text, v->len, show, sizeof(show)), why);
    return 0;
}

/* Dispatches one top-level key (already known to be valid) to its section parser. */
static int parse_section(enpi_cfg_ctx_t *ctx, const enpi_cfg_pair_t *p, enpi_config_t *cfg)
{
    const char *key = p->key->text;
    const enpi_cfg_node_t *v = p->value;
    if (enpi_cfg_is_null(v))
        return 0; /* "key:" with nothing after it: the defaults stay */
    if (strcmp(key, "timezone") == 0)
        return parse_timezone(ctx, v, cfg);
    if (strcmp(key, "mqtt") == 0)
        return enpi_cfg_parse_mqtt(ctx, v, &cfg->mqtt);
    if (strcmp(key, "storage") == 0)
        return enpi_cfg_parse_storage(ctx, v, &cfg->storage);
    if (strcmp(key, "pipeline") == 0)
        return enpi_cfg_parse_pipeline(ctx, v, &cfg->pipeline);
    if (strcmp(key, "metrics") == 0)
        return enpi_cfg_parse_metrics(ctx, v, &cfg->metrics_listen);
    if (strcmp(key, "inputs") == 0)
        return enpi_cfg_parse_inputs(ctx, v, cfg);
    if (strcmp(key, "programme") == 0)
        return enpi_cfg_parse_programme(ctx, v, &cfg->programme);
    return enpi_cfg_parse_facilities(ctx, v, cfg);
}

/* Every retention entry must name a resolution the pipeline computes. */
static int check_retention(enpi_cfg_ctx_t *ctx, const enpi_config_t *cfg)
{
    char buf[32];
    for (size_t i = 0; i < cfg->storage.n_retention; i++) {
        const enpi_retention_cfg_t *r = &cfg->storage.retention[i];
        bool found = false;
        for (size_t j = 0; j < cfg->pipeline.n_resolutions; j++) {
            const enpi_duration_t *d = &cfg->pipeline.resolutions[j];
            found = found || (d->ms == r->resolution.ms && d->months == r->resolution.months);
        }
        if (!found)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, r->line,
                                 "storage.retention: %s is not one of pipeline.resolutions",
                                 enpi_duration_format(&r->resolution, buf, sizeof(buf)));
    }
    return 0;
}

/* Facilities without their own zone take the top-level one (a copy: never NULL). */
static int fill_facility_zones(enpi_cfg_ctx_t *ctx, enpi_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_facilities; i++) {
        enpi_facility_cfg_t *f = &cfg->facilities[i];
        if (f->timezone == NULL && (f->timezone = strdup(cfg->timezone)) == NULL)
            return enpi_cfg_fail(ctx, ENPI_ENOMEM, 0, "out of memory");
    }
    return 0;
}

static int parse_root(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *root, enpi_config_t *cfg)
{
    int rc = 0;
    if (!enpi_cfg_is_null(root)) {
        if (root->kind != ENPI_CFG_MAP)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, root->line,
                                 "the configuration must be a mapping of sections (timezone:, "
                                 "mqtt:, storage:, ...), not %s",
                                 enpi_cfg_kind_name(root));
        if ((rc = enpi_cfg_map_check(ctx, root, "at top level", top_keys)) != 0)
            return rc;
        for (size_t i = 0; i < root->n_pairs && rc == 0; i++)
            rc = parse_section(ctx, &root->pairs[i], cfg);
        if (rc != 0)
            return rc;
    }
    if ((rc = check_retention(ctx, cfg)) != 0)
        return rc;
    return fill_facility_zones(ctx, cfg);
}

int enpi_config_parse(const char *name, const char *text, size_t len, enpi_config_t **out,
                      char *errbuf, size_t errlen)
{
    enpi_cfg_ctx_t ctx = {.name = name ? name : "<config>", .errbuf = errbuf, .errlen = errlen};
    enpi_cfg_doc_t doc = {0};
    int rc;

    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    *out = NULL;
    enpi_config_t *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return enpi_cfg_fail(&ctx, ENPI_ENOMEM, 0, "out of memory");
    if ((rc = set_defaults(cfg, ctx.name)) != 0) {
        enpi_cfg_fail(&ctx, rc, 0, "out of memory");
        goto free_cfg;
    }
    if ((rc = enpi_cfg_doc_load(&ctx, text, len, &doc)) != 0)
        goto free_doc;
    if ((rc = parse_root(&ctx, doc.root, cfg)) != 0)
        goto free_doc;
    enpi_cfg_doc_free(&doc);
    *out = cfg;
    return 0;

free_doc:
    enpi_cfg_doc_free(&doc);
free_cfg:
    enpi_config_free(cfg);
    return rc;
}

/* Reads the whole file into a malloc'd buffer. Returns 0 or -errno (EFBIG when huge). */
static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int err = 0;
    if (buf == NULL) {
        err = -ENOMEM;
        goto close_file;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CONFIG_MAX_BYTES) {
                err = -EFBIG;
                goto free_buf;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                err = -ENOMEM;
                goto free_buf;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                err = errno ? -errno : -EIO;
                goto free_buf;
            }
            break;
        }
    }
    fclose(f);
    *text = buf;
    *len = n;
    return 0;

free_buf:
    free(buf);
close_file:
    fclose(f);
    return err;
}

int enpi_config_load(const char *path, enpi_config_t **out, char *errbuf, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int err = read_file(path, &text, &len);
    if (err != 0) {
        enpi_cfg_ctx_t ctx = {.name = path, .errbuf = errbuf, .errlen = errlen};
        if (err == -EFBIG)
            return enpi_cfg_fail(&ctx, ENPI_EIO, 0, "cannot read: larger than %u MiB",
                                 CONFIG_MAX_BYTES >> 20);
        int rc = err == -ENOENT ? ENPI_ENOENT : err == -ENOMEM ? ENPI_ENOMEM : ENPI_EIO;
        return enpi_cfg_fail(&ctx, rc, 0, "cannot read: %s", strerror(-err));
    }
    int rc = enpi_config_parse(path, text, len, out, errbuf, errlen);
    free(text);
    return rc;
}
