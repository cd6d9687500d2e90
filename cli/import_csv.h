/*
 * import_csv.h - reading the historical readings `enpi import` publishes: a CSV file with
 * a header naming the columns meter (or meter_id), timestamp (or ts) and value, in any
 * order, RFC 4180 quoting (libcsv). Store-free, so unit tests link it alone.
 *
 * A timestamp is an ISO 8601 date-time (in the meter's facility zone unless it carries an
 * offset) or integer epoch milliseconds. The whole file is read and checked before
 * anything is published: one bad line fails the import with "FILE:LINE: message".
 */
#ifndef ENPI_CLI_IMPORT_CSV_H
#define ENPI_CLI_IMPORT_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    size_t meter;  /* index into enpi_import_set_t.meters */
    int64_t ts_ms; /* UTC ms */
    double value;  /* raw, as the meter would publish it (before scale/to_kwh) */
    size_t line;   /* 1-based line of the record in the file */
} enpi_import_reading_t;

typedef struct {
    char **meters; /* distinct meter ids in order of first appearance; owned */
    size_t n_meters;
    enpi_import_reading_t *readings; /* after enpi_import_parse: by meter, then time */
    size_t n_readings;
} enpi_import_set_t;

/*
 * Resolves a timestamp cell of a configured meter. Returns 0 with *out_ms, ENPI_ENOENT
 * when the meter is not configured, or ENPI_EPARSE when the text is not a time; it may
 * write a reason into err.
 */
typedef int (*enpi_import_meter_time_fn)(void *ctx, const char *meter_id, const char *text,
                                         int64_t *out_ms, char *err, size_t errlen);

/*
 * Reads the whole of f (named `name` in messages) into *out, sorted by meter and time. A
 * meter given twice at the same instant is an error (which value would be true?).
 * Returns 0, or ENPI_EPARSE / ENPI_ENOENT / ENPI_EINVAL with "NAME:LINE: message" in err
 * (or ENPI_EIO, ENPI_ENOMEM); *out is then empty. Free with enpi_import_set_free.
 */
int enpi_import_parse(FILE *f, const char *name, enpi_import_meter_time_fn time_fn, void *ctx,
                      enpi_import_set_t *out, char *err, size_t errlen);
void enpi_import_set_free(enpi_import_set_t *s);

#endif
