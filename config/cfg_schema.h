/*
 * cfg_schema.h - private to config/: one parser per section of SPEC §3.
 *
 * Each takes the section's value node (already known to be given, i.e. not null) and
 * fills its part of enpi_config_t, which holds the defaults beforehand. They return 0 or
 * a negative ENPI_E* code with the message in ctx; on failure the partly filled config is
 * still safe to pass to enpi_config_free. Checks that span sections (retention against
 * resolutions, facility time zones) run in config_parse.c once every section is read.
 */
#ifndef ENPI_CFG_SCHEMA_H
#define ENPI_CFG_SCHEMA_H

#include "cfg_tree.h"
#include "config.h"

int enpi_cfg_parse_mqtt(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_mqtt_cfg_t *out);
int enpi_cfg_parse_storage(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_storage_cfg_t *out);
int enpi_cfg_parse_pipeline(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v,
                            enpi_pipeline_cfg_t *out);
int enpi_cfg_parse_metrics(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, char **listen);
int enpi_cfg_parse_programme(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v,
                             enpi_programme_cfg_t *out);
int enpi_cfg_parse_inputs(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_config_t *cfg);
int enpi_cfg_parse_facilities(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_config_t *cfg);

/* Reads `from` and `to` of a period mapping (both required) and checks from < to. */
int enpi_cfg_parse_period(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *map, const char *what,
                          enpi_civil_t *from, enpi_civil_t *to);

/* Checks that v is a list (sequence); `what` names it in the message. */
int enpi_cfg_expect_list(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what);

#endif
