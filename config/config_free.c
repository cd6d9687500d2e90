/*
 * config_free.c - releasing an enpi_config_t and the lookups by id over it.
 *
 * enpi_config_free() accepts a partly built config (any pointer may be NULL), which is
 * how the parser cleans up after an error.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

static void free_facility(enpi_facility_cfg_t *f)
{
    for (size_t j = 0; j < f->n_meters; j++) {
        free(f->meters[j].id);
        free(f->meters[j].carrier);
    }
    free(f->meters);
    free(f->id);
    free(f->name);
    free(f->product_unit);
    free(f->timezone);
}

void enpi_config_free(enpi_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_facilities; i++)
        free_facility(&cfg->facilities[i]);
    free(cfg->facilities);
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        enpi_input_cfg_t *in = &cfg->inputs[i];
        free(in->topic);
        free(in->meter_id);
        free(in->value_path);
        free(in->timestamp_path);
        free(in->meter_id_path);
    }
    free(cfg->inputs);
    free(cfg->programme.name);
    free(cfg->metrics_listen);
    free(cfg->storage.path);
    free(cfg->storage.retention);
    free(cfg->mqtt.uri);
    free(cfg->mqtt.client_id);
    free(cfg->mqtt.username);
    free(cfg->mqtt.password_file);
    free(cfg->mqtt.tls.ca_file);
    free(cfg->mqtt.tls.cert_file);
    free(cfg->mqtt.tls.key_file);
    free(cfg->timezone);
    free(cfg->path);
    free(cfg);
}

const enpi_facility_cfg_t *enpi_config_facility(const enpi_config_t *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->n_facilities; i++) {
        if (strcmp(cfg->facilities[i].id, id) == 0)
            return &cfg->facilities[i];
    }
    return NULL;
}

const enpi_meter_cfg_t *enpi_config_meter(const enpi_config_t *cfg, const char *id,
                                          const enpi_facility_cfg_t **facility_out)
{
    for (size_t i = 0; i < cfg->n_facilities; i++) {
        const enpi_facility_cfg_t *f = &cfg->facilities[i];
        for (size_t j = 0; j < f->n_meters; j++) {
            if (strcmp(f->meters[j].id, id) == 0) {
                if (facility_out != NULL)
                    *facility_out = f;
                return &f->meters[j];
            }
        }
    }
    if (facility_out != NULL)
        *facility_out = NULL;
    return NULL;
}

const char *enpi_config_facility_tz(const enpi_config_t *cfg, const enpi_facility_cfg_t *f)
{
    if (f != NULL && f->timezone != NULL)
        return f->timezone;
    return cfg->timezone;
}
