/*
 * context.h - what every data command of `enpi` works against: the configuration, the
 * store opened read-only as a RocksDB secondary, the facilities' time zones and "now".
 *
 * The configuration comes from `--config FILE` (store at its storage.path), or from the
 * copy enpid keeps in the store when `--db DIR` is given, or from $ENPID_CONFIG /
 * /etc/enpid/enpid.yaml. The store is always opened SECONDARY and caught up once, so
 * `enpi` sees the daemon's latest commit and never writes.
 */
#ifndef ENPI_CLI_CONTEXT_H
#define ENPI_CLI_CONTEXT_H

#include <stdint.h>

#include "cli.h"
#include "config.h"
#include "storage.h"
#include "tz.h"

#define ENPI_CLI_DEFAULT_CONFIG "/etc/enpid/enpid.yaml"

typedef struct enpi_cli_zone enpi_cli_zone_t;

typedef struct {
    enpi_config_t *cfg;
    enpi_store_t *store;
    enpi_cli_zone_t *zones; /* opened zones, by name (a list: few distinct zones) */
    int64_t now_ms;         /* wall clock when the context was opened */
} enpi_cli_ctx_t;

/*
 * Loads the configuration and opens the store as g says. Returns 0, or an ENPI_E* code
 * with d filled (and nothing left open).
 */
int enpi_cli_ctx_open(enpi_cli_ctx_t *ctx, const enpi_cli_globals_t *g, enpi_cli_diag_t *d);
void enpi_cli_ctx_close(enpi_cli_ctx_t *ctx);

/*
 * The zone of a facility (NULL: the top-level zone), opened on first use and kept until
 * close. Returns NULL with d filled when the zone cannot be opened.
 */
const enpi_tz_t *enpi_cli_ctx_tz(enpi_cli_ctx_t *ctx, const enpi_facility_cfg_t *f,
                                 enpi_cli_diag_t *d);

/*
 * The stored state of a meter into *out (caller clears with enpi_meter_state_clear). A
 * meter never seen gives a zeroed state with has_state false. Returns 0 or an ENPI_E*
 * code with d filled.
 */
int enpi_cli_ctx_meter_state(enpi_cli_ctx_t *ctx, const char *meter_id, enpi_meter_state_t *out,
                             enpi_cli_diag_t *d);

#endif
