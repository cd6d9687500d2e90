/*
 * reject.c - the stable names of the reject reasons (SPEC §4), as they appear in metrics
 * labels and log lines. Changing a name breaks dashboards: add, never rename.
 */
#include "pipeline.h"

/* clang-format off */
static const char *const reject_names[ENPI_REJECT__COUNT] = {
    [ENPI_REJECT_PARSE] = "parse_error",
    [ENPI_REJECT_MISSING_VALUE] = "missing_value",
    [ENPI_REJECT_NOT_FINITE] = "not_finite",
    [ENPI_REJECT_NEGATIVE] = "negative",
    [ENPI_REJECT_TOO_OLD] = "too_old",
    [ENPI_REJECT_FUTURE] = "future",
    [ENPI_REJECT_TOO_LARGE] = "too_large",
    [ENPI_REJECT_BAD_TIMESTAMP] = "bad_timestamp",
    [ENPI_REJECT_BAD_METER_ID] = "bad_meter_id",
    [ENPI_REJECT_UNKNOWN_METER] = "unknown_meter",
    [ENPI_REJECT_NO_INPUT] = "no_input",
    [ENPI_REJECT_TOO_LATE] = "too_late",
    [ENPI_REJECT_IMPLAUSIBLE] = "implausible",
};
/* clang-format on */

const char *enpi_reject_name(enpi_reject_t reason)
{
    if ((unsigned)reason >= ENPI_REJECT__COUNT)
        return "unknown";
    return reject_names[reason];
}
