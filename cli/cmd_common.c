/*
 * cmd_common.c - the pieces every `enpi` command shares: diagnostics, parsing of a
 * command's options merged with the global ones, the --format choice, and writing the
 * result to stdout (see cli.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "enpi_error.h"
#include "log.h"

int enpi_cli_fail(enpi_cli_diag_t *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    d->usage = false;
    return err;
}

int enpi_cli_usage(enpi_cli_diag_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    d->usage = true;
    return ENPI_EINVAL;
}

#define MAX_CMD_OPTS 16

int enpi_cli_cmd_args(enpi_cli_globals_t *g, int argc, char **argv, const enpi_cli_opt_t *extra,
                      size_t n_extra, const char *help, enpi_cli_diag_t *d)
{
    enpi_cli_opt_t opts[MAX_CMD_OPTS];
    if (n_extra + 5 > MAX_CMD_OPTS)
        return enpi_cli_fail(d, ENPI_EINVAL, "internal error: too many options");
    /* A global option given before the command keeps its value; giving it again after
     * the command is then reported as given twice, like any other option. */
    const enpi_cli_opt_t common[] = {
        {"config", 0, true, &g->config_path, NULL}, {"db", 0, true, &g->db_dir, NULL},
        {"format", 0, true, &g->format, NULL},      {"verbose", 'v', false, NULL, &g->verbose},
        {"help", 'h', false, NULL, &g->help},
    };
    size_t n = 0;
    for (size_t i = 0; i < n_extra; i++)
        opts[n++] = extra[i];
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        opts[n++] = common[i];
    int idx = 1;
    char err[256];
    if (enpi_cli_parse_opts(argc, argv, &idx, opts, n, false, err, sizeof err) != 0)
        return enpi_cli_usage(d, "%s: %s", argv[0], err);
    if (g->verbose)
        enpi_log_max_level = ENPI_LOG_DEBUG;
    if (g->config_path && g->db_dir)
        return enpi_cli_usage(d, "--config and --db cannot be used together");
    if (g->help)
        fputs(help, stdout);
    return 0;
}

int enpi_cli_format(const enpi_cli_globals_t *g, enpi_out_format_t *out, enpi_cli_diag_t *d)
{
    *out = ENPI_OUT_TABLE;
    if (g->format && enpi_out_format_parse(g->format, out) != 0)
        return enpi_cli_usage(d, "unknown format '%s' (table, csv or json)", g->format);
    return 0;
}

int enpi_cli_emit(enpi_out_t *o, enpi_cli_diag_t *d)
{
    int rc = enpi_out_write(o, stdout);
    enpi_out_free(o);
    if (rc == ENPI_EIO)
        return enpi_cli_fail(d, rc, "cannot write the output");
    if (rc)
        return enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
    return 0;
}
