/*
 * cmd_import.c - `enpi import` (placeholder until its issue-4 work lands).
 */
#include "cli.h"
#include "enpi_error.h"

int enpi_cmd_import(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    return enpi_cli_fail(d, ENPI_ESTATE, "not implemented yet");
}
