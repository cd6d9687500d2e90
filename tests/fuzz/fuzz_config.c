/*
 * fuzz_config.c - libFuzzer target for the configuration parser (config/config.h): the
 * whole input is the YAML text given to enpi_config_parse.
 *
 * Besides memory errors and leaks (libyaml's events and the parser's partial trees on
 * every error path) it checks config.h's promises: 0 exactly when a config comes back,
 * otherwise a one-line "NAME:..." message; a config's lookups find each of its own
 * facilities and meters. A config that parses is then handed to enpi_pipeline_create and
 * freed, which opens the zones it names and compiles its topic templates: everything a
 * file that passed validation makes the daemon do before the first message.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "enpi_error.h"
#include "fuzz_util.h"
#include "pipeline.h"

#define NAME "fuzz.yaml"

static void check_config(const enpi_config_t *cfg)
{
    FUZZ_CHECK(cfg->timezone != NULL, "no top-level zone");
    FUZZ_CHECK(cfg->pipeline.n_resolutions <= ENPI_MAX_RESOLUTIONS, "%zu resolutions",
               cfg->pipeline.n_resolutions);
    for (size_t i = 0; i < cfg->n_inputs; i++)
        FUZZ_CHECK(cfg->inputs[i].topic != NULL && cfg->inputs[i].meter_id != NULL,
                   "input %zu without topic or meter_id", i);
    for (size_t f = 0; f < cfg->n_facilities; f++) {
        const enpi_facility_cfg_t *fc = &cfg->facilities[f];

        FUZZ_CHECK(fc->id != NULL && fc->name != NULL && fc->timezone != NULL,
                   "facility %zu incomplete", f);
        FUZZ_CHECK(enpi_config_facility(cfg, fc->id) == fc, "facility %s not found by id", fc->id);
        for (size_t m = 0; m < fc->n_meters; m++) {
            const enpi_facility_cfg_t *owner = NULL;
            const enpi_meter_cfg_t *mc = &fc->meters[m];
            size_t len = mc->id != NULL ? strlen(mc->id) : 0;

            FUZZ_CHECK(len >= 1 && len <= ENPI_METER_ID_MAX, "meter id of %zu bytes", len);
            FUZZ_CHECK(enpi_config_meter(cfg, mc->id, &owner) == mc && owner == fc,
                       "meter %s not found by id (duplicate accepted?)", mc->id);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enpi_config_t *cfg = (enpi_config_t *)&cfg; /* must be overwritten */
    enpi_pipeline_t *p = NULL;
    char err[512];
    int rc;

    memset(err, 'x', sizeof(err));
    rc = enpi_config_parse(NAME, (const char *)data, size, &cfg, err, sizeof(err));
    if (rc != 0) {
        FUZZ_CHECK(cfg == NULL, "failed (%d) but *out not NULL", rc);
        FUZZ_CHECK(rc == ENPI_EPARSE || rc == ENPI_EINVAL || rc == ENPI_ENOMEM, "rc %d", rc);
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "message not terminated");
        FUZZ_CHECK(strncmp(err, NAME, strlen(NAME)) == 0, "message \"%s\" does not name the file",
                   err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "message \"%s\" is not one line", err);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL, "success without a config");
    check_config(cfg);
    if (enpi_pipeline_create(cfg, &p, err, sizeof(err)) == 0)
        enpi_pipeline_free(p);
    enpi_config_free(cfg);
    return 0;
}
