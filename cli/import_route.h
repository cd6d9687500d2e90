/*
 * import_route.h - how `enpi import` hands a meter's history to enpid: through which
 * configured input (a topic the daemon routes to that input, and that input's payload
 * format), encoded as that input would receive it from a meter. enpid stays the only
 * writer of the store and applies its one implementation of SPEC §5 to the history.
 *
 * Routes, in order of preference: a protobuf input (enpi.v1.ReadingBatch with the meter
 * id in every reading, exact doubles); a json input whose payload carries the id
 * (meter_id_path); a json input whose meter_id template yields the id from the topic.
 * tasmota, sparkplug and number inputs cannot carry arbitrary history.
 */
#ifndef ENPI_CLI_IMPORT_ROUTE_H
#define ENPI_CLI_IMPORT_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "import_csv.h"

#define ENPI_IMPORT_TOPIC_MAX 1024
#define ENPI_IMPORT_PAYLOAD_MAX (200 * 1024) /* below enpid's 256 KiB payload limit */
#define ENPI_IMPORT_BATCH 500                /* readings per message at most */

typedef struct {
    size_t input; /* index into cfg->inputs */
    enpi_format_t format;
    char topic[ENPI_IMPORT_TOPIC_MAX];
} enpi_import_route_t;

/*
 * Finds the route for a meter id. The topic must be one the daemon gives to that input
 * (the first input whose template matches it, as enpid does). Returns 0, ENPI_ENOENT
 * with a reason in err when no input can carry the id, or ENPI_ENOMEM.
 */
int enpi_import_route(const enpi_config_t *cfg, const char *meter_id, enpi_import_route_t *out,
                      char *err, size_t errlen);

/*
 * Encodes readings[0..n) of one meter (at most ENPI_IMPORT_BATCH) as one payload of the
 * route's format into a malloc'd buffer (*out, *out_len; the caller frees). Fewer readings
 * than n may fit: *used says how many went in (at least one). Returns 0, ENPI_ENOMEM, or
 * ENPI_ERANGE when even one reading does not fit in ENPI_IMPORT_PAYLOAD_MAX.
 */
int enpi_import_encode(const enpi_config_t *cfg, const enpi_import_route_t *route,
                       const char *meter_id, const enpi_import_reading_t *readings, size_t n,
                       void **out, size_t *out_len, size_t *used);

#endif
