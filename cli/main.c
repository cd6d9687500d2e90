/*
 * main.c - `enpi`, the analyst's command line over enpid's store (SPEC §7): global
 * options, command dispatch, and the mapping of results to exit codes and the single
 * diagnostic line on stderr.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "enpi_error.h"
#include "log.h"

static const char usage_text[] =
    "Usage: enpi [--config FILE | --db DIR] COMMAND [OPTIONS]\n"
    "\n"
    "Reads the rollups and meter state of enpid's store (read-only; safe while enpid runs).\n"
    "\n"
    "Commands:\n"
    "  query        window rollups of a facility or a meter\n"
    "  meters       configured meters and their state; --unknown: ids seen but not configured\n"
    "  facilities   facilities, meter counts, last reading, stale meters\n"
    "  report       the programme's target report (SPEC §6); --pdf FILE for a printable one\n"
    "  plot         SEC chart of a facility with baseline, target and stretch lines\n"
    "  import       publish historical readings from a CSV file through the broker\n"
    "\n"
    "Global options:\n"
    "  --config FILE  configuration file; the store is its storage.path\n"
    "                 (default: $ENPID_CONFIG, else /etc/enpid/enpid.yaml)\n"
    "  --db DIR       open the store at DIR and use the configuration enpid stored in it\n"
    "  --format FMT   table (default), csv (RFC 4180, CRLF lines) or json\n"
    "  -v, --verbose  show library log lines on stderr\n"
    "  -h, --help     this help; 'enpi COMMAND --help' for a command's options\n"
    "  --version      print the version\n"
    "\n"
    "Times are ISO 8601 with the facility's UTC offset. Exit status: 0 success, 1 error,\n"
    "2 bad usage.\n";

static const struct {
    const char *name;
    enpi_cli_cmd_fn fn;
} commands[] = {
    {"query", enpi_cmd_query},
    {"meters", enpi_cmd_meters},
    {"facilities", enpi_cmd_facilities},
    {"report", enpi_cmd_report},
    {"plot", enpi_cmd_plot},
    {"import", enpi_cmd_import},
};

/* Prints the diagnostic of a failed command and gives the exit status. */
static int report(const enpi_cli_diag_t *d)
{
    fprintf(stderr, "enpi: %s\n", d->msg[0] ? d->msg : "failed");
    if (d->usage) {
        fputs("Try 'enpi --help' for more information.\n", stderr);
        return 2;
    }
    return 1;
}

int main(int argc, char **argv)
{
    enpi_cli_globals_t g = {0};
    enpi_cli_diag_t d = {{0}, false};
    bool version = false;
    const enpi_cli_opt_t global_opts[] = {
        {"config", 0, true, &g.config_path, NULL}, {"db", 0, true, &g.db_dir, NULL},
        {"format", 0, true, &g.format, NULL},      {"verbose", 'v', false, NULL, &g.verbose},
        {"help", 'h', false, NULL, &g.help},       {"version", 0, false, NULL, &version},
    };
    /* The libraries log their details on stderr; the CLI reports one line per failure
     * itself, so their lines are shown only with --verbose. */
    enpi_log_max_level = ENPI_LOG_ERR - 1;

    int idx = 1;
    char err[256];
    if (enpi_cli_parse_opts(argc, argv, &idx, global_opts,
                            sizeof global_opts / sizeof global_opts[0], true, err,
                            sizeof err) != 0) {
        enpi_cli_usage(&d, "%s", err);
        return report(&d);
    }
    if (g.help) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (version) {
        printf("enpi %s\n", ENPI_VERSION);
        return 0;
    }
    if (g.verbose)
        enpi_log_max_level = ENPI_LOG_DEBUG;
    if (idx >= argc) {
        enpi_cli_usage(&d, "missing command (query, meters, facilities, report, plot or import)");
        return report(&d);
    }
    const char *name = argv[idx];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        int rc = commands[i].fn(&g, argc - idx, argv + idx, &d);
        if (rc < 0)
            return report(&d);
        if (fflush(stdout) != 0) {
            enpi_cli_fail(&d, ENPI_EIO, "cannot write the output");
            return report(&d);
        }
        return 0;
    }
    enpi_cli_usage(&d, "unknown command '%s'", name);
    return report(&d);
}
