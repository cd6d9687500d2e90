/*
 * args.h - command-line parsing for `enpi`: the long options of one command, and the
 * turning of time and resolution arguments into instants and configured resolutions.
 *
 * Options are GNU style: "--name value", "--name=value", flags "--name", and a few
 * one-letter aliases ("-h"). An option given twice is an error, so a script that builds
 * a command line never has one value silently shadow another. Every failure comes back
 * as ENPI_EINVAL (or ENPI_EPARSE / ENPI_ENOENT for the time helpers) with one line of
 * text for the user; the caller decides the exit code.
 */
#ifndef ENPI_CLI_ARGS_H
#define ENPI_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "civil.h"
#include "config.h"
#include "tz.h"

typedef struct {
    const char *name; /* long name without "--" */
    char short_name;  /* one-letter alias ("-h"), or 0 */
    bool takes_value;
    const char **value; /* takes_value: where the value goes (must start NULL) */
    bool *flag;         /* !takes_value: set to true when present */
} enpi_cli_opt_t;

/*
 * Parses options from argv[*idx] on. Stops at the end, after "--", or (stop_at_operand)
 * at the first argument that is not an option, leaving *idx on it. Without
 * stop_at_operand an operand is an error. Values point into argv.
 * Returns 0, or ENPI_EINVAL with a message in err: unknown option, missing value, a value
 * given to a flag, an option given twice, an unexpected operand.
 */
int enpi_cli_parse_opts(int argc, char **argv, int *idx, const enpi_cli_opt_t *opts, size_t n,
                        bool stop_at_operand, char *err, size_t errlen);

/*
 * A time argument (SPEC §7): an ISO 8601 date or date-time, read in `tz` unless it
 * carries an offset. Returns 0 and the instant (UTC ms), or ENPI_EPARSE.
 */
int enpi_cli_parse_time(const char *s, const enpi_tz_t *tz, int64_t *out_ms);

/*
 * A resolution argument that must be one of cfg's pipeline.resolutions. Returns 0 and the
 * configured duration, ENPI_EPARSE when s is not a duration, or ENPI_ENOENT when it is not
 * configured; in both error cases err lists the configured resolutions.
 */
int enpi_cli_parse_resolution(const char *s, const enpi_config_t *cfg, enpi_duration_t *out,
                              char *err, size_t errlen);

#endif
