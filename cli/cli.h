/*
 * cli.h - what main.c and the command files of `enpi` share: the global options, the
 * one-line diagnostic a command hands back, and the command entry points.
 *
 * Exit codes (SPEC §7): 0 success, 1 error, 2 bad usage. A command never prints its
 * own error: it fills an enpi_cli_diag_t and returns a negative ENPI_E* code, and main.c
 * prints exactly one line "enpi: <message>" (plus "Try 'enpi --help'..." for usage).
 */
#ifndef ENPI_CLI_H
#define ENPI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "args.h"
#include "output.h"

/* Options valid before the command and after it. */
typedef struct {
    const char *config_path; /* --config FILE */
    const char *db_dir;      /* --db DIR */
    const char *format;      /* --format table|csv|json; NULL: table */
    bool verbose;            /* --verbose: let library logs through to stderr */
    bool help;               /* --help / -h */
} enpi_cli_globals_t;

typedef struct {
    char msg[512];
    bool usage; /* bad usage: exit 2 instead of 1 */
} enpi_cli_diag_t;

/* Sets the message; returns err (a negative ENPI_E* code) for `return enpi_cli_fail(...)`. */
int enpi_cli_fail(enpi_cli_diag_t *d, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets the message and marks it bad usage; returns ENPI_EINVAL. */
int enpi_cli_usage(enpi_cli_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A command: argv[0] is the command name, the rest its arguments (global options may
 * appear among them and are merged into *g). Prints its result on stdout; --help prints
 * the command's help. Returns 0, or a negative ENPI_E* code with d filled.
 */
typedef int (*enpi_cli_cmd_fn)(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);

int enpi_cmd_query(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);
int enpi_cmd_meters(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);
int enpi_cmd_facilities(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);
int enpi_cmd_report(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);
int enpi_cmd_plot(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);
int enpi_cmd_import(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d);

/*
 * Parses a command's arguments: its own options `extra` plus the global ones. On --help
 * prints `help` to stdout and sets g->help. Returns 0 or ENPI_EINVAL (usage, d filled).
 */
int enpi_cli_cmd_args(enpi_cli_globals_t *g, int argc, char **argv, const enpi_cli_opt_t *extra,
                      size_t n_extra, const char *help, enpi_cli_diag_t *d);

/* The --format choice (table when absent). Returns 0 or ENPI_EINVAL (usage, d filled). */
int enpi_cli_format(const enpi_cli_globals_t *g, enpi_out_format_t *out, enpi_cli_diag_t *d);

/* Writes a filled writer to stdout and frees it. Returns 0 or an ENPI_E* code, d filled. */
int enpi_cli_emit(enpi_out_t *o, enpi_cli_diag_t *d);

#endif
