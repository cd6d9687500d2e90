/*
 * cfg_inputs.c - the `inputs` list of SPEC §3: which topics to subscribe, how to decode
 * their payloads and how to build a meter id from topic captures or payload fields.
 */
#include "cfg_check.h"
#include "cfg_scalar.h"
#include "cfg_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

static const struct {
    const char *name;
    enpi_format_t format;
} formats[] = {
    {"json", ENPI_FORMAT_JSON},       {"protobuf", ENPI_FORMAT_PROTOBUF},
    {"tasmota", ENPI_FORMAT_TASMOTA}, {"sparkplug", ENPI_FORMAT_SPARKPLUG},
    {"number", ENPI_FORMAT_NUMBER},
};

static int parse_format(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                        enpi_format_t *out)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (strcmp(v->text, formats[i].name) == 0) {
            *out = formats[i].format;
            return 0;
        }
    }
    return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                         "%s: unknown format '%s' (use json, protobuf, tasmota, sparkplug or "
                         "number)",
                         what, enpi_cfg_show(v->text, v->len, show, sizeof(show)));
}

/* Reads a json dot path key; refuses it for other formats. */
static int parse_path(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *map, const char *key,
                      const char *where, enpi_format_t format, char **out)
{
    char what[200], why[160];
    const enpi_cfg_pair_t *p = enpi_cfg_map_find(map, key);
    if (p == NULL || enpi_cfg_is_null(p->value))
        return 0;
    if (format != ENPI_FORMAT_JSON)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, p->key->line, "%s: '%s' applies only to format json",
                             where, key);
    snprintf(what, sizeof(what), "%s %s", where, key);
    int rc = enpi_cfg_string(ctx, p->value, what, false, out);
    if (rc != 0)
        return rc;
    if (!enpi_cfg_dot_path_ok(*out, why, sizeof(why)))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, p->value->line, "%s: %s", what, why);
    return 0;
}

static int parse_input(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, size_t index,
                       enpi_input_cfg_t *in)
{
    static const char *const keys[] = {"topic",     "meter_id",      "format", "value",
                                       "timestamp", "meter_id_path", NULL};
    char where[200], what[240], why[256], show[ENPI_CFG_SHOW_MAX + 4];
    enpi_cfg_captures_t caps;

    in->line = v->line;
    const enpi_cfg_node_t *vt = enpi_cfg_map_get(v, "topic");
    if (v->kind == ENPI_CFG_MAP && vt != NULL && vt->kind == ENPI_CFG_SCALAR)
        snprintf(where, sizeof(where), "input '%s'",
                 enpi_cfg_show(vt->text, vt->len, show, sizeof(show)));
    else
        snprintf(where, sizeof(where), "inputs entry %zu", index + 1);
    snprintf(what, sizeof(what), "in %s", where);
    int rc = enpi_cfg_map_check(ctx, v, what, keys);
    if (rc != 0)
        return rc;
    if (v->kind != ENPI_CFG_MAP)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "inputs entry %zu is empty (give at least a topic)", index + 1);
    if (vt == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s has no topic", where);
    snprintf(what, sizeof(what), "%s topic", where);
    if ((rc = enpi_cfg_string(ctx, vt, what, false, &in->topic)) != 0)
        return rc;
    if (!enpi_cfg_topic_ok(in->topic, &caps, why, sizeof(why)))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, vt->line, "%s: %s", what, why);

    const enpi_cfg_node_t *x;
    in->format = ENPI_FORMAT_JSON;
    if ((x = enpi_cfg_map_get(v, "format")) != NULL) {
        snprintf(what, sizeof(what), "%s format", where);
        if ((rc = parse_format(ctx, x, what, &in->format)) != 0)
            return rc;
    }
    if ((rc = parse_path(ctx, v, "value", where, in->format, &in->value_path)) != 0 ||
        (rc = parse_path(ctx, v, "timestamp", where, in->format, &in->timestamp_path)) != 0 ||
        (rc = parse_path(ctx, v, "meter_id_path", where, in->format, &in->meter_id_path)) != 0)
        return rc;
    if (in->format == ENPI_FORMAT_JSON) {
        if (in->value_path == NULL && (in->value_path = strdup("value")) == NULL)
            return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
        if (in->timestamp_path == NULL && (in->timestamp_path = strdup("ts")) == NULL)
            return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    }

    if ((x = enpi_cfg_map_get(v, "meter_id")) != NULL) {
        snprintf(what, sizeof(what), "%s meter_id", where);
        if ((rc = enpi_cfg_string(ctx, x, what, false, &in->meter_id)) != 0)
            return rc;
        if (!enpi_cfg_template_ok(in->meter_id, &caps, why, sizeof(why)))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line, "%s: %s", what, why);
        if (strchr(in->meter_id, '{') == NULL &&
            !enpi_cfg_id_ok(in->meter_id, x->len, why, sizeof(why)))
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line, "%s: the fixed meter id %s", what, why);
        return 0;
    }
    /* Default template. The payload may carry the id instead: sparkplug (metric names),
     * protobuf (Reading.meter_id) and json with meter_id_path. */
    if ((in->meter_id = strdup("{meter}")) == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    bool payload_has_id = in->format == ENPI_FORMAT_SPARKPLUG ||
                          in->format == ENPI_FORMAT_PROTOBUF || in->meter_id_path != NULL;
    if (!payload_has_id && !enpi_cfg_captures_has(&caps, "meter"))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, vt->line,
                             "%s: the topic has no {meter} capture, so the meter id is "
                             "unknown (add {meter} to the topic, or set meter_id%s)",
                             where, in->format == ENPI_FORMAT_JSON ? " or meter_id_path" : "");
    return 0;
}

int enpi_cfg_parse_inputs(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_config_t *cfg)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_expect_list(ctx, v, "inputs");
    if (rc != 0)
        return rc;
    if (v->n_items == 0)
        return 0;
    cfg->inputs = calloc(v->n_items, sizeof(*cfg->inputs));
    if (cfg->inputs == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    cfg->n_inputs = v->n_items;
    for (size_t i = 0; i < v->n_items; i++) {
        enpi_input_cfg_t *in = &cfg->inputs[i];
        if ((rc = parse_input(ctx, v->items[i], i, in)) != 0)
            return rc;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->inputs[j].topic, in->topic) == 0)
                return enpi_cfg_fail(
                    ctx, ENPI_EINVAL, in->line,
                    "input topic '%s' is given twice (first at line %d)",
                    enpi_cfg_show(in->topic, strlen(in->topic), show, sizeof(show)),
                    cfg->inputs[j].line);
        }
    }
    return 0;
}
