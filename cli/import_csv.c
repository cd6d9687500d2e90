/*
 * import_csv.c - the CSV file of `enpi import`: header, records, timestamps, values, and
 * the per-meter time order the daemon needs. See import_csv.h.
 */
#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "enpi_error.h"
#include "import_csv.h"

#define MAX_COLUMNS 64
#define READ_CHUNK 65536

typedef struct {
    const char *name;
    enpi_import_meter_time_fn time_fn;
    void *time_ctx;
    enpi_import_set_t *set;
    char *err;
    size_t errlen;
    int rc;                    /* first error; later callbacks do nothing */
    size_t line;               /* line the current record started on */
    size_t newlines;           /* newlines seen so far (inside quoted fields too) */
    bool have_header;
    int col_meter, col_ts, col_value;
    size_t n_header;
    char *fields[MAX_COLUMNS]; /* the current record's cells, NUL-terminated, owned */
    size_t n_fields;
    size_t cap_readings;
} parser_t;

static int fail(parser_t *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(parser_t *p, int rc, const char *fmt, ...)
{
    if (p->rc != 0)
        return p->rc;
    int n = snprintf(p->err, p->errlen, "%s:%zu: ", p->name, p->line);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    p->rc = rc;
    return rc;
}

static void field_cb(void *data, size_t len, void *ctx)
{
    parser_t *p = ctx;
    const char *s = data;
    if (p->n_fields == 0)
        p->line = p->newlines + 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            p->newlines++;
    if (p->rc != 0)
        return;
    if (p->n_fields == MAX_COLUMNS) {
        fail(p, ENPI_EINVAL, "more than %d columns", MAX_COLUMNS);
        return;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        fail(p, ENPI_ENOMEM, "out of memory");
        return;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    p->fields[p->n_fields++] = copy;
}

static bool name_is(const char *cell, const char *a, const char *b)
{
    while (isspace((unsigned char)*cell))
        cell++;
    size_t len = strlen(cell);
    while (len > 0 && isspace((unsigned char)cell[len - 1]))
        len--;
    return (strlen(a) == len && strncasecmp(cell, a, len) == 0) ||
           (b != NULL && strlen(b) == len && strncasecmp(cell, b, len) == 0);
}

static void take_header(parser_t *p)
{
    p->col_meter = p->col_ts = p->col_value = -1;
    for (size_t i = 0; i < p->n_fields; i++) {
        int *slot = NULL;
        if (name_is(p->fields[i], "meter", "meter_id"))
            slot = &p->col_meter;
        else if (name_is(p->fields[i], "timestamp", "ts"))
            slot = &p->col_ts;
        else if (name_is(p->fields[i], "value", NULL))
            slot = &p->col_value;
        if (slot == NULL)
            continue; /* other columns (a unit, a comment) are ignored */
        if (*slot >= 0) {
            fail(p, ENPI_EINVAL, "column \"%s\" given twice", p->fields[i]);
            return;
        }
        *slot = (int)i;
    }
    if (p->col_meter < 0 || p->col_ts < 0 || p->col_value < 0) {
        fail(p, ENPI_EINVAL,
             "the header must name the columns meter, timestamp and value (got %zu column(s))",
             p->n_fields);
        return;
    }
    p->n_header = p->n_fields;
    p->have_header = true;
}

static size_t meter_index(parser_t *p, const char *id, int *rc)
{
    enpi_import_set_t *s = p->set;
    /* Files list one meter's readings together, so the last meter is the likely one. */
    for (size_t i = s->n_meters; i-- > 0;)
        if (strcmp(s->meters[i], id) == 0)
            return i;
    char **grown = realloc(s->meters, (s->n_meters + 1) * sizeof *grown);
    if (grown == NULL || (grown[s->n_meters] = strdup(id)) == NULL) {
        if (grown != NULL)
            s->meters = grown;
        *rc = ENPI_ENOMEM;
        return 0;
    }
    s->meters = grown;
    return s->n_meters++;
}

static void take_record(parser_t *p)
{
    if (p->n_fields != p->n_header) {
        fail(p, ENPI_EINVAL, "%zu column(s), the header has %zu", p->n_fields, p->n_header);
        return;
    }
    const char *id = p->fields[p->col_meter];
    const char *ts = p->fields[p->col_ts];
    const char *val = p->fields[p->col_value];
    char why[200] = "";
    int64_t t_ms;
    int rc = p->time_fn(p->time_ctx, id, ts, &t_ms, why, sizeof why);
    if (rc == ENPI_ENOENT) {
        fail(p, rc, "meter \"%s\" is not configured", id);
        return;
    }
    if (rc != 0) {
        fail(p, ENPI_EPARSE, "timestamp \"%s\": %s", ts,
             why[0] ? why : "not an ISO 8601 date-time or epoch milliseconds");
        return;
    }
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    while (end != val && isspace((unsigned char)*end))
        end++;
    if (end == val || *end != '\0' || !isfinite(v)) {
        fail(p, ENPI_EPARSE, "value \"%s\" is not a finite number", val);
        return;
    }
    enpi_import_set_t *s = p->set;
    if (s->n_readings == p->cap_readings) {
        size_t cap = p->cap_readings ? p->cap_readings * 2 : 1024;
        enpi_import_reading_t *grown = realloc(s->readings, cap * sizeof *grown);
        if (grown == NULL) {
            fail(p, ENPI_ENOMEM, "out of memory");
            return;
        }
        s->readings = grown;
        p->cap_readings = cap;
    }
    rc = 0;
    size_t m = meter_index(p, id, &rc);
    if (rc != 0) {
        fail(p, rc, "out of memory");
        return;
    }
    s->readings[s->n_readings++] =
        (enpi_import_reading_t){.meter = m, .ts_ms = t_ms, .value = v, .line = p->line};
}

static void clear_fields(parser_t *p)
{
    for (size_t i = 0; i < p->n_fields; i++)
        free(p->fields[i]);
    p->n_fields = 0;
}

/* End of a record (c: its terminator, -1 at the end of the input). With CSV_REPALL_NL
 * every unquoted CR and LF ends a record, so blank lines arrive as empty records. */
static void record_cb(int c, void *ctx)
{
    parser_t *p = ctx;
    if (p->rc == 0 && p->n_fields > 0 &&
        !(p->n_fields == 1 && p->fields[0][0] == '\0')) {
        if (!p->have_header)
            take_header(p);
        else
            take_record(p);
    }
    clear_fields(p);
    if (c == '\n')
        p->newlines++;
}

static int by_meter_then_time(const void *a, const void *b)
{
    const enpi_import_reading_t *x = a, *y = b;
    if (x->meter != y->meter)
        return x->meter < y->meter ? -1 : 1;
    if (x->ts_ms != y->ts_ms)
        return x->ts_ms < y->ts_ms ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

int enpi_import_parse(FILE *f, const char *name, enpi_import_meter_time_fn time_fn, void *ctx,
                      enpi_import_set_t *out, char *err, size_t errlen)
{
    struct csv_parser csv;
    parser_t p = {.name = name, .time_fn = time_fn, .time_ctx = ctx, .set = out,
                  .err = err, .errlen = errlen, .line = 1};
    char *chunk = malloc(READ_CHUNK);
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (errlen > 0)
        err[0] = '\0';
    if (chunk == NULL)
        return ENPI_ENOMEM;
    if (csv_init(&csv, CSV_STRICT | CSV_REPALL_NL | CSV_STRICT_FINI) != 0) {
        rc = ENPI_ENOMEM;
        goto free_chunk;
    }
    size_t n;
    while (p.rc == 0 && (n = fread(chunk, 1, READ_CHUNK, f)) > 0) {
        if (csv_parse(&csv, chunk, n, field_cb, record_cb, &p) != n && p.rc == 0)
            fail(&p, ENPI_EPARSE, "not valid CSV: %s (a quote inside an unquoted cell, or "
                                  "an unterminated quoted cell?)",
                 csv_strerror(csv_error(&csv)));
    }
    if (p.rc == 0 && ferror(f))
        fail(&p, ENPI_EIO, "read error");
    if (p.rc == 0 && csv_fini(&csv, field_cb, record_cb, &p) != 0 && p.rc == 0)
        fail(&p, ENPI_EPARSE, "not valid CSV at the end of the file: %s",
             csv_strerror(csv_error(&csv)));
    clear_fields(&p);
    csv_free(&csv);
    if (p.rc == 0 && !p.have_header)
        fail(&p, ENPI_EINVAL, "empty file: expected a header naming meter, timestamp, value");
    rc = p.rc;
    if (rc == 0) {
        qsort(out->readings, out->n_readings, sizeof *out->readings, by_meter_then_time);
        for (size_t i = 1; i < out->n_readings; i++) {
            const enpi_import_reading_t *a = &out->readings[i - 1], *b = &out->readings[i];
            if (a->meter == b->meter && a->ts_ms == b->ts_ms) {
                p.line = b->line;
                rc = fail(&p, ENPI_EINVAL,
                          "meter \"%s\" has a second reading at the instant of line %zu",
                          out->meters[b->meter], a->line);
                break;
            }
        }
    }
    if (rc != 0)
        enpi_import_set_free(out);
free_chunk:
    free(chunk);
    return rc;
}

void enpi_import_set_free(enpi_import_set_t *s)
{
    for (size_t i = 0; i < s->n_meters; i++)
        free(s->meters[i]);
    free(s->meters);
    free(s->readings);
    memset(s, 0, sizeof *s);
}
