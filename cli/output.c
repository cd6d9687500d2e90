/*
 * output.c - table, CSV and JSON rendering of command results (see output.h).
 *
 * Cells are stored typed and rendered per format at write time: tables round reals to
 * the column's decimals and pad by UTF-8 code points; CSV quotes per RFC 4180 and ends
 * lines with CRLF; JSON is built with json-c, each real handed over as the exact text we
 * formatted (json_object_new_double_s) so json-c never re-rounds it.
 */
#include "output.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"

typedef enum { CELL_NULL = 0, CELL_STR, CELL_UINT, CELL_INT, CELL_REAL, CELL_BOOL } cell_type_t;

typedef struct {
    cell_type_t type;
    union {
        char *s;
        uint64_t u;
        int64_t i;
        double d;
        bool b;
    } v;
} cell_t;

struct enpi_out {
    enpi_out_format_t fmt;
    const enpi_out_col_t *cols;
    size_t n_cols;
    cell_t *cells; /* n_rows * n_cols, row-major */
    size_t n_rows;
    size_t cap_rows;
    size_t next_col; /* column the next cell call fills in the last row */
    int err;         /* first error of a cell call, returned by enpi_out_write */
};

int enpi_out_format_parse(const char *s, enpi_out_format_t *out)
{
    if (strcmp(s, "table") == 0)
        *out = ENPI_OUT_TABLE;
    else if (strcmp(s, "csv") == 0)
        *out = ENPI_OUT_CSV;
    else if (strcmp(s, "json") == 0)
        *out = ENPI_OUT_JSON;
    else
        return ENPI_EINVAL;
    return 0;
}

/* Length of the prefix before '.' of a nested key, 0 for a plain key. */
static size_t key_prefix_len(const char *key)
{
    const char *dot = strchr(key, '.');
    return dot ? (size_t)(dot - key) : 0;
}

static bool same_prefix(const char *a, const char *b)
{
    size_t la = key_prefix_len(a);
    return la > 0 && la == key_prefix_len(b) && memcmp(a, b, la) == 0;
}

/* Nested keys: one level, a non-empty prefix and name, and the columns of one object
 * adjacent (so the JSON object sits where its first column is). */
static bool cols_valid(const enpi_out_col_t *cols, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = cols[i].key;
        if (!k)
            continue;
        const char *dot = strchr(k, '.');
        if (!dot)
            continue;
        if (dot == k || dot[1] == '\0' || strchr(dot + 1, '.'))
            return false;
        bool continues = i > 0 && cols[i - 1].key && same_prefix(cols[i - 1].key, k);
        if (continues)
            continue;
        for (size_t j = 0; j < i; j++)
            if (cols[j].key && same_prefix(cols[j].key, k))
                return false;
    }
    return true;
}

int enpi_out_create(enpi_out_format_t fmt, const enpi_out_col_t *cols, size_t n, enpi_out_t **out)
{
    if (!cols_valid(cols, n))
        return ENPI_EINVAL;
    enpi_out_t *o = calloc(1, sizeof *o);
    if (!o)
        return ENPI_ENOMEM;
    o->fmt = fmt;
    o->cols = cols;
    o->n_cols = n;
    *out = o;
    return 0;
}

void enpi_out_free(enpi_out_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n_rows * o->n_cols; i++)
        if (o->cells[i].type == CELL_STR)
            free(o->cells[i].v.s);
    free(o->cells);
    free(o);
}

static int remember(enpi_out_t *o, int err)
{
    if (err && !o->err)
        o->err = err;
    return err;
}

int enpi_out_row(enpi_out_t *o)
{
    if (o->n_rows > 0 && o->next_col != o->n_cols)
        return remember(o, ENPI_ESTATE);
    if (o->n_rows == o->cap_rows) {
        size_t cap = o->cap_rows ? o->cap_rows * 2 : 64;
        cell_t *c = realloc(o->cells, cap * o->n_cols * sizeof *c);
        if (!c && o->n_cols > 0)
            return remember(o, ENPI_ENOMEM);
        o->cells = c;
        o->cap_rows = cap;
    }
    memset(o->cells + o->n_rows * o->n_cols, 0, o->n_cols * sizeof *o->cells);
    o->n_rows++;
    o->next_col = 0;
    return 0;
}

/* The next cell of the current row, or NULL (error remembered) when there is none. */
static cell_t *next_cell(enpi_out_t *o)
{
    if (o->n_rows == 0 || o->next_col >= o->n_cols) {
        remember(o, ENPI_ESTATE);
        return NULL;
    }
    return &o->cells[(o->n_rows - 1) * o->n_cols + o->next_col++];
}

int enpi_out_null(enpi_out_t *o)
{
    return next_cell(o) ? 0 : ENPI_ESTATE;
}

int enpi_out_str(enpi_out_t *o, const char *s)
{
    cell_t *c = next_cell(o);
    if (!c)
        return ENPI_ESTATE;
    if (!s)
        return 0;
    c->v.s = strdup(s);
    if (!c->v.s)
        return remember(o, ENPI_ENOMEM);
    c->type = CELL_STR;
    return 0;
}

int enpi_out_uint(enpi_out_t *o, uint64_t v)
{
    cell_t *c = next_cell(o);
    if (!c)
        return ENPI_ESTATE;
    c->type = CELL_UINT;
    c->v.u = v;
    return 0;
}

int enpi_out_int(enpi_out_t *o, int64_t v)
{
    cell_t *c = next_cell(o);
    if (!c)
        return ENPI_ESTATE;
    c->type = CELL_INT;
    c->v.i = v;
    return 0;
}

int enpi_out_real(enpi_out_t *o, double v)
{
    cell_t *c = next_cell(o);
    if (!c)
        return ENPI_ESTATE;
    if (isfinite(v)) {
        c->type = CELL_REAL;
        c->v.d = v;
    }
    return 0;
}

int enpi_out_bool(enpi_out_t *o, bool v)
{
    cell_t *c = next_cell(o);
    if (!c)
        return ENPI_ESTATE;
    c->type = CELL_BOOL;
    c->v.b = v;
    return 0;
}

int enpi_out_format_double(double v, char *buf, size_t n)
{
    char tmp[40];
    int len = 0;
    /* %.15g is exact for every decimal of up to 15 digits; when it does not read back,
     * no shorter form does either, so 16 and then 17 digits (always exact) are tried. */
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    if (strspn(tmp, "-0123456789") == (size_t)len) {
        memcpy(tmp + len, ".0", 3);
        len += 2;
    }
    if ((size_t)len >= n)
        return -1;
    memcpy(buf, tmp, (size_t)len + 1);
    return len;
}

/* ---- CSV ---- */

/* One field per RFC 4180: quoted (quotes doubled) when it holds a comma, quote, CR or LF. */
static void csv_field(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The text of a cell for CSV; uses buf for numbers. Null cells are empty fields. */
static const char *csv_text(const cell_t *c, char *buf, size_t n)
{
    switch (c->type) {
    case CELL_STR:
        return c->v.s;
    case CELL_UINT:
        snprintf(buf, n, "%llu", (unsigned long long)c->v.u);
        return buf;
    case CELL_INT:
        snprintf(buf, n, "%lld", (long long)c->v.i);
        return buf;
    case CELL_REAL:
        enpi_out_format_double(c->v.d, buf, n);
        return buf;
    case CELL_BOOL:
        return c->v.b ? "true" : "false";
    case CELL_NULL:
        break;
    }
    return "";
}

static void write_csv(const enpi_out_t *o, FILE *f)
{
    bool first = true;
    for (size_t j = 0; j < o->n_cols; j++) {
        const char *k = o->cols[j].key;
        if (!k)
            continue;
        if (!first)
            fputc(',', f);
        first = false;
        char head[128];
        snprintf(head, sizeof head, "%s", k);
        for (char *p = head; *p; p++)
            if (*p == '.')
                *p = '_';
        csv_field(f, head);
    }
    fputs("\r\n", f);
    for (size_t i = 0; i < o->n_rows; i++) {
        first = true;
        for (size_t j = 0; j < o->n_cols; j++) {
            if (!o->cols[j].key)
                continue;
            if (!first)
                fputc(',', f);
            first = false;
            char buf[48];
            csv_field(f, csv_text(&o->cells[i * o->n_cols + j], buf, sizeof buf));
        }
        fputs("\r\n", f);
    }
}

/* ---- table ---- */

/* Display width of UTF-8 text, counted in code points (continuation bytes skipped). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static const char *table_text(const cell_t *c, int decimals, char *buf, size_t n)
{
    switch (c->type) {
    case CELL_STR:
        return c->v.s;
    case CELL_UINT:
        snprintf(buf, n, "%llu", (unsigned long long)c->v.u);
        return buf;
    case CELL_INT:
        snprintf(buf, n, "%lld", (long long)c->v.i);
        return buf;
    case CELL_REAL:
        snprintf(buf, n, "%.*f", decimals < 0 ? 3 : decimals, c->v.d);
        return buf;
    case CELL_BOOL:
        return c->v.b ? "yes" : "no";
    case CELL_NULL:
        break;
    }
    return "-";
}

/* Writes s padded to width w: right-aligned for numeric columns; left-aligned text gets
 * no trailing blanks in the last column. */
static void table_pad(FILE *f, const char *s, size_t w, bool right, bool last)
{
    size_t sw = text_width(s);
    size_t pad = w > sw ? w - sw : 0;
    if (right)
        for (size_t k = 0; k < pad; k++)
            fputc(' ', f);
    fputs(s, f);
    if (!right && !last)
        for (size_t k = 0; k < pad; k++)
            fputc(' ', f);
}

static int write_table(const enpi_out_t *o, FILE *f)
{
    size_t *width = calloc(o->n_cols ? o->n_cols : 1, sizeof *width);
    if (!width)
        return ENPI_ENOMEM;
    size_t last = 0; /* index of the last shown column */
    char buf[64];
    for (size_t j = 0; j < o->n_cols; j++) {
        const enpi_out_col_t *c = &o->cols[j];
        if (!c->head)
            continue;
        last = j;
        width[j] = text_width(c->head);
        for (size_t i = 0; i < o->n_rows; i++) {
            size_t w =
                text_width(table_text(&o->cells[i * o->n_cols + j], c->decimals, buf, sizeof buf));
            if (w > width[j])
                width[j] = w;
        }
    }
    for (int line = 0; line < 2; line++) {
        bool first = true;
        for (size_t j = 0; j < o->n_cols; j++) {
            const enpi_out_col_t *c = &o->cols[j];
            if (!c->head)
                continue;
            if (!first)
                fputs("  ", f);
            first = false;
            if (line == 0) {
                table_pad(f, c->head, width[j], c->decimals != ENPI_OUT_TEXT, j == last);
            } else {
                for (size_t k = 0; k < width[j]; k++)
                    fputc('-', f);
            }
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < o->n_rows; i++) {
        bool first = true;
        for (size_t j = 0; j < o->n_cols; j++) {
            const enpi_out_col_t *c = &o->cols[j];
            if (!c->head)
                continue;
            if (!first)
                fputs("  ", f);
            first = false;
            const char *s = table_text(&o->cells[i * o->n_cols + j], c->decimals, buf, sizeof buf);
            table_pad(f, s, width[j], c->decimals != ENPI_OUT_TEXT, j == last);
        }
        fputc('\n', f);
    }
    free(width);
    return 0;
}

/* ---- JSON ---- */

/* A new json-c value for a cell; *ok is false when memory ran out (NULL is JSON null). */
static json_object *json_cell(const cell_t *c, bool *ok)
{
    json_object *v = NULL;
    char buf[48];
    switch (c->type) {
    case CELL_NULL:
        return NULL;
    case CELL_STR:
        v = json_object_new_string(c->v.s);
        break;
    case CELL_UINT:
        v = json_object_new_uint64(c->v.u);
        break;
    case CELL_INT:
        v = json_object_new_int64(c->v.i);
        break;
    case CELL_REAL:
        enpi_out_format_double(c->v.d, buf, sizeof buf);
        v = json_object_new_double_s(c->v.d, buf);
        break;
    case CELL_BOOL:
        v = json_object_new_boolean(c->v.b);
        break;
    }
    if (!v)
        *ok = false;
    return v;
}

/* Builds one row's object; NULL when memory ran out. */
static json_object *json_row(const enpi_out_t *o, size_t i)
{
    json_object *row = json_object_new_object();
    if (!row)
        return NULL;
    json_object *nest = NULL; /* the object of the current "prefix." run, owned by row */
    const char *nest_key = NULL;
    bool ok = true;
    for (size_t j = 0; j < o->n_cols && ok; j++) {
        const char *k = o->cols[j].key;
        if (!k)
            continue;
        json_object *v = json_cell(&o->cells[i * o->n_cols + j], &ok);
        if (!ok)
            break;
        size_t pl = key_prefix_len(k);
        if (pl == 0) {
            ok = json_object_object_add(row, k, v) == 0;
            continue;
        }
        if (!nest_key || !same_prefix(nest_key, k)) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)pl, k);
            nest = json_object_new_object();
            if (!nest || json_object_object_add(row, name, nest) != 0) {
                json_object_put(nest);
                json_object_put(v);
                ok = false;
                break;
            }
            nest_key = k;
        }
        ok = json_object_object_add(nest, k + pl + 1, v) == 0;
    }
    if (!ok) {
        json_object_put(row);
        return NULL;
    }
    return row;
}

static int write_json(const enpi_out_t *o, FILE *f)
{
    json_object *arr = json_object_new_array_ext(o->n_rows ? (int)o->n_rows : 1);
    if (!arr)
        return ENPI_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < o->n_rows; i++) {
        json_object *row = json_row(o, i);
        if (!row || json_object_array_add(arr, row) != 0) {
            json_object_put(row);
            rc = ENPI_ENOMEM;
            goto free_arr;
        }
    }
    const char *text = json_object_to_json_string_ext(
        arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text) {
        rc = ENPI_ENOMEM;
        goto free_arr;
    }
    fputs(text, f);
    fputc('\n', f);
free_arr:
    json_object_put(arr);
    return rc;
}

int enpi_out_write(enpi_out_t *o, FILE *f)
{
    if (o->err)
        return o->err;
    if (o->n_rows > 0 && o->next_col != o->n_cols)
        return ENPI_ESTATE;
    int rc = 0;
    switch (o->fmt) {
    case ENPI_OUT_TABLE:
        rc = write_table(o, f);
        break;
    case ENPI_OUT_CSV:
        write_csv(o, f);
        break;
    case ENPI_OUT_JSON:
        rc = write_json(o, f);
        break;
    }
    if (rc)
        return rc;
    if (fflush(f) != 0 || ferror(f))
        return ENPI_EIO;
    return 0;
}
