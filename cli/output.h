/*
 * output.h - the one result writer every `enpi` command uses: rows of typed cells
 * rendered as an aligned table (people), CSV (RFC 4180, spreadsheets) or JSON (scripts;
 * the shape of SPEC §7 is a contract).
 *
 * A command declares its columns once, fills rows cell by cell in column order, then
 * writes. The writer keeps every row because a table needs all widths before its first
 * line. Numbers in CSV and JSON are printed in the shortest form that reads back to the
 * same double, so a script sees exactly the value that was stored.
 *
 * DESIGN: single-threaded; an enpi_out_t belongs to its creator.
 */
#ifndef ENPI_CLI_OUTPUT_H
#define ENPI_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { ENPI_OUT_TABLE = 0, ENPI_OUT_CSV, ENPI_OUT_JSON } enpi_out_format_t;

/* decimals value of a text column: left-aligned in tables. */
#define ENPI_OUT_TEXT (-1)

typedef struct {
    /* JSON key. "a.b" puts key b into an object a; consecutive columns with the same
     * prefix share that object. The CSV header is the key with '.' replaced by '_'.
     * NULL: the column appears in tables only. */
    const char *key;
    /* Table header; NULL: the column is left out of tables. */
    const char *head;
    /* Tables: digits after the point for real cells, right-aligned; ENPI_OUT_TEXT for a
     * left-aligned text column. */
    int decimals;
} enpi_out_col_t;

typedef struct enpi_out enpi_out_t;

/* Parses "table", "csv" or "json". Returns 0 or ENPI_EINVAL. */
int enpi_out_format_parse(const char *s, enpi_out_format_t *out);

/*
 * A writer for `n` columns. `cols` (and the strings in it) must outlive the writer.
 * Returns 0 or ENPI_ENOMEM / ENPI_EINVAL (a nested key that does not fit the rules).
 */
int enpi_out_create(enpi_out_format_t fmt, const enpi_out_col_t *cols, size_t n, enpi_out_t **out);
void enpi_out_free(enpi_out_t *o);

/*
 * Starts a new row; then exactly one cell call per column, in column order. The cell
 * calls return 0 or an ENPI_E* code (ENPI_ENOMEM, ENPI_ESTATE for a cell beyond the last
 * column or before the first row); the first error is also remembered and returned by
 * enpi_out_write, so a caller may check only there.
 */
int enpi_out_row(enpi_out_t *o);
int enpi_out_null(enpi_out_t *o);
int enpi_out_str(enpi_out_t *o, const char *s); /* copied; NULL is a null cell */
int enpi_out_uint(enpi_out_t *o, uint64_t v);
int enpi_out_int(enpi_out_t *o, int64_t v);
int enpi_out_real(enpi_out_t *o, double v); /* not finite: written as null */
int enpi_out_bool(enpi_out_t *o, bool v);

/*
 * Writes the header (table, CSV) and every row to f, and flushes f. Returns 0, the first
 * remembered cell error, ENPI_ESTATE when a row is incomplete, ENPI_ENOMEM, or ENPI_EIO
 * when f fails (e.g. a closed pipe).
 */
int enpi_out_write(enpi_out_t *o, FILE *f);

/*
 * Formats a finite double in the shortest decimal form that strtod reads back to exactly
 * v ("0.1", "0.30000000000000004", "1e-12"); integral values get ".0" so a reader sees
 * a real. Returns the length, or -1 when n is too small (32 bytes always suffice).
 */
int enpi_out_format_double(double v, char *buf, size_t n);

#endif
