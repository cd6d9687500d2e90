/*
 * decode_json.c - the `json` payload decoder over jsmn. See decode_json.h for the rules.
 *
 * jsmn is used strict (JSMN_STRICT: primitives are numbers, true, false, null and never
 * keys) with parent links (JSMN_PARENT_LINKS: closing brackets in O(1) instead of a
 * backward scan, which would make large arrays quadratic). jsmn does not check
 * everything JSON requires (it skips commas and colons it does not need, so "[1 2]" and
 * "{\"a\":1,}" pass), so a validation pass over the tokens completes it: exactly one
 * separator between members and elements and none dangling, each object member a string
 * key with one value, each primitive a literal or a well-formed number, nesting at most
 * 64 deep, only whitespace before and after the top-level value. (Raw control characters
 * inside strings are tolerated.)
 */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "config.h"
#include "decode_json.h"
#include "enpi_error.h"

#define TOKENS_INITIAL 64
#define ID_BUF (ENPI_METER_ID_MAX + 8)

struct enpi_json_decoder {
    jsmntok_t *toks;
    unsigned cap;
    char idbuf[ID_BUF]; /* an escaped meter id, decoded */
};

/* ---- dot paths ---------------------------------------------------------------------- */

static int path_init(enpi_json_path_t *p, const char *text, const char *what, char *err,
                     size_t errlen)
{
    size_t len, start = 0;

    memset(p, 0, sizeof(*p));
    if (text == NULL)
        return 0;
    len = strlen(text);
    p->text = strdup(text);
    if (p->text == NULL)
        return ENPI_ENOMEM;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        if (i == start || p->n == ENPI_JSON_PATH_DEPTH) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "%s path \"%s\": %s", what, text,
                         i == start ? "empty component" : "nested too deeply");
            return ENPI_EINVAL;
        }
        p->comp[p->n].p = p->text + start;
        p->comp[p->n].len = i - start;
        p->n++;
        start = i + 1;
    }
    return 0;
}

int enpi_json_paths_init(enpi_json_paths_t *jp, const char *value, const char *ts, const char *id,
                         char *err, size_t errlen)
{
    int rc;

    memset(jp, 0, sizeof(*jp));
    rc = path_init(&jp->value, value != NULL ? value : "value", "value", err, errlen);
    if (rc == 0)
        rc = path_init(&jp->ts, ts != NULL ? ts : "ts", "timestamp", err, errlen);
    if (rc == 0)
        rc = path_init(&jp->id, id, "meter id", err, errlen);
    return rc;
}

void enpi_json_paths_free(enpi_json_paths_t *jp)
{
    free(jp->value.text);
    free(jp->ts.text);
    free(jp->id.text);
    memset(jp, 0, sizeof(*jp));
}

/* ---- decoder ------------------------------------------------------------------------ */

int enpi_json_decoder_create(enpi_json_decoder_t **out)
{
    enpi_json_decoder_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return ENPI_ENOMEM;
    d->toks = malloc(TOKENS_INITIAL * sizeof(*d->toks));
    if (d->toks == NULL) {
        free(d);
        return ENPI_ENOMEM;
    }
    d->cap = TOKENS_INITIAL;
    *out = d;
    return 0;
}

void enpi_json_decoder_free(enpi_json_decoder_t *d)
{
    if (d == NULL)
        return;
    free(d->toks);
    free(d);
}

/* Index just past the subtree rooted at token i. */
static int tok_skip(const jsmntok_t *t, int ntok, int i)
{
    int pending = 1;

    while (pending > 0 && i < ntok) {
        pending += t[i].size - 1;
        i++;
    }
    return i;
}

static bool tok_is(const jsmntok_t *t, const char *js, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(t->end - t->start) == n && memcmp(js + t->start, lit, n) == 0;
}

static bool prim_is_null(const jsmntok_t *t, const char *js)
{
    return t->type == JSMN_PRIMITIVE && js[t->start] == 'n';
}

static bool prim_is_number(const jsmntok_t *t, const char *js)
{
    char c = js[t->start];
    return t->type == JSMN_PRIMITIVE && (c == '-' || (c >= '0' && c <= '9'));
}

/* Where a token's text begins and ends, quotes included. */
static int span_start(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->start - 1 : t->start;
}

static int span_end(const jsmntok_t *t)
{
    return t->type == JSMN_STRING ? t->end + 1 : t->end;
}

/* js[from, to) is whitespace around exactly one `sep` (or only whitespace, sep == 0). */
static bool gap_ok(const char *js, int from, int to, char sep)
{
    bool seen = sep == 0;

    for (int i = from; i < to; i++) {
        char c = js[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c != sep || seen)
            return false;
        seen = true;
    }
    return seen;
}

#define MAX_DEPTH 64

/*
 * The checks jsmn leaves out, over the subtree of token i (see the file comment):
 * separators between members and elements, string keys with one value each, literal and
 * number syntax, nesting depth. Sets *next to the index after the subtree.
 */
static bool value_ok(const jsmntok_t *t, int ntok, const char *js, int i, int depth, int *next)
{
    int j = i + 1, pos;
    double ignored;

    switch (t[i].type) {
    case JSMN_PRIMITIVE:
        *next = i + 1;
        return tok_is(&t[i], js, "true") || tok_is(&t[i], js, "false") ||
               tok_is(&t[i], js, "null") ||
               enpi_decode_number_text(js + t[i].start, (size_t)(t[i].end - t[i].start),
                                       &ignored) == 0;
    case JSMN_STRING:
        *next = i + 1;
        return t[i].size == 0;
    case JSMN_OBJECT:
    case JSMN_ARRAY:
        break;
    default:
        return false;
    }
    if (depth > MAX_DEPTH)
        return false;
    pos = t[i].start + 1;
    for (int m = 0; m < t[i].size; m++) {
        if (j >= ntok || !gap_ok(js, pos, span_start(&t[j]), m > 0 ? ',' : 0))
            return false;
        if (t[i].type == JSMN_OBJECT) {
            int key = j;
            if (t[key].type != JSMN_STRING || t[key].size != 1 || key + 1 >= ntok ||
                !gap_ok(js, span_end(&t[key]), span_start(&t[key + 1]), ':'))
                return false;
            j = key + 1;
        }
        pos = span_end(&t[j]);
        if (!value_ok(t, ntok, js, j, depth + 1, &j))
            return false;
    }
    *next = j;
    return gap_ok(js, pos, t[i].end - 1, 0);
}

/* Token index of the value at `path` inside object token obj, or -1. */
static int lookup(const jsmntok_t *t, int ntok, const char *js, int obj, const enpi_json_path_t *p)
{
    int cur = obj;

    for (size_t c = 0; c < p->n; c++) {
        int k, found = -1;

        if (t[cur].type != JSMN_OBJECT)
            return -1;
        k = cur + 1;
        for (int m = 0; m < t[cur].size && k < ntok; m++) {
            if ((size_t)(t[k].end - t[k].start) == p->comp[c].len &&
                memcmp(js + t[k].start, p->comp[c].p, p->comp[c].len) == 0) {
                found = k + 1;
                break;
            }
            k = tok_skip(t, ntok, k); /* the key's subtree includes its value */
        }
        if (found < 0)
            return -1;
        cur = found;
    }
    return cur;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int read_u4(const char *s, size_t len, size_t i, unsigned *out)
{
    unsigned v = 0;

    if (i + 4 > len)
        return -1;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(s[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}

/*
 * Decodes a JSON string body with escapes into out (capacity cap). Returns the decoded
 * length, clamped to cap when longer (the caller then sees an over-long id), or -1 for an
 * invalid escape or unpaired surrogate.
 */
static long unescape(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    char enc[4];

    for (size_t i = 0; i < len; i++) {
        size_t n = 1;
        unsigned cp;

        enc[0] = s[i];
        if (s[i] == '\\') {
            if (++i >= len)
                return -1;
            switch (s[i]) {
            case '"':
            case '\\':
            case '/':
                enc[0] = s[i];
                break;
            case 'b':
                enc[0] = '\b';
                break;
            case 'f':
                enc[0] = '\f';
                break;
            case 'n':
                enc[0] = '\n';
                break;
            case 'r':
                enc[0] = '\r';
                break;
            case 't':
                enc[0] = '\t';
                break;
            case 'u':
                if (read_u4(s, len, i + 1, &cp) != 0)
                    return -1;
                i += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (i + 2 >= len || s[i + 1] != '\\' || s[i + 2] != 'u' ||
                        read_u4(s, len, i + 3, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xC0 | (cp >> 6));
                    enc[1] = (char)(0x80 | (cp & 0x3F));
                    n = 2;
                } else if (cp < 0x10000) {
                    enc[0] = (char)(0xE0 | (cp >> 12));
                    enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[2] = (char)(0x80 | (cp & 0x3F));
                    n = 3;
                } else {
                    enc[0] = (char)(0xF0 | (cp >> 18));
                    enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    enc[3] = (char)(0x80 | (cp & 0x3F));
                    n = 4;
                }
                break;
            default:
                return -1;
            }
        }
        for (size_t k = 0; k < n; k++) {
            if (o == cap)
                return (long)cap;
            out[o++] = enc[k];
        }
    }
    return (long)o;
}

static void read_value(const jsmntok_t *t, int v, const char *js, enpi_raw_reading_t *r)
{
    r->value_kind = ENPI_VALUE_MISSING;
    if (v < 0 || !prim_is_number(&t[v], js))
        return;
    enpi_decode_number_text(js + t[v].start, (size_t)(t[v].end - t[v].start), &r->value);
    r->value_kind = isfinite(r->value) ? ENPI_VALUE_OK : ENPI_VALUE_NOT_FINITE;
}

static void read_ts(const jsmntok_t *t, int v, const char *js, enpi_raw_reading_t *r)
{
    double x;

    r->ts_kind = ENPI_TS_ARRIVAL;
    if (v < 0 || prim_is_null(&t[v], js))
        return;
    r->ts_kind = ENPI_TS_INVALID;
    if (prim_is_number(&t[v], js)) {
        enpi_decode_number_text(js + t[v].start, (size_t)(t[v].end - t[v].start), &x);
        if (!isfinite(x))
            return;
        /* |x| >= 1e11: epoch ms (1e11 ms = 1973-03-03); below: epoch s (1e11 s = 5138) */
        r->ts_ms = fabs(x) >= 1e11 ? x : x * 1000.0;
        r->ts_kind = ENPI_TS_EPOCH_MS;
    } else if (t[v].type == JSMN_STRING) {
        if (enpi_civil_parse(js + t[v].start, (size_t)(t[v].end - t[v].start), &r->civil) == 0)
            r->ts_kind = ENPI_TS_CIVIL;
    }
}

static void read_id(enpi_json_decoder_t *d, const jsmntok_t *t, int v, const char *js,
                    enpi_raw_reading_t *r)
{
    const char *s;
    size_t len;

    if (v < 0 || prim_is_null(&t[v], js))
        return; /* the topic's id */
    s = js + t[v].start;
    len = (size_t)(t[v].end - t[v].start);
    if (prim_is_number(&t[v], js)) {
        r->id = s;
        r->id_len = len;
    } else if (t[v].type == JSMN_STRING) {
        if (memchr(s, '\\', len) == NULL) {
            r->id = s;
            r->id_len = len;
        } else {
            long n = unescape(s, len, d->idbuf, ENPI_METER_ID_MAX + 1);
            if (n < 0) {
                r->id_invalid = true;
                return;
            }
            r->id = d->idbuf;
            r->id_len = (size_t)n;
        }
    } else {
        r->id_invalid = true;
    }
}

static void decode_object(enpi_json_decoder_t *d, const enpi_json_paths_t *paths, const char *js,
                          int ntok, int obj, enpi_reading_cb cb, void *ctx)
{
    const jsmntok_t *t = d->toks;
    enpi_raw_reading_t r;

    memset(&r, 0, sizeof(r));
    if (t[obj].type != JSMN_OBJECT) {
        r.malformed = true;
    } else {
        read_value(t, lookup(t, ntok, js, obj, &paths->value), js, &r);
        read_ts(t, lookup(t, ntok, js, obj, &paths->ts), js, &r);
        if (paths->id.n > 0)
            read_id(d, t, lookup(t, ntok, js, obj, &paths->id), js, &r);
    }
    cb(ctx, &r);
}

/* Parses into d->toks, growing it as needed. Returns the token count or a jsmn error. */
static int tokenize(enpi_json_decoder_t *d, const char *js, size_t len)
{
    for (;;) {
        jsmn_parser parser;
        int r;
        unsigned want;
        jsmntok_t *grown;

        jsmn_init(&parser);
        r = jsmn_parse(&parser, js, len, d->toks, d->cap);
        if (r != JSMN_ERROR_NOMEM)
            return r;
        /* every token spans at least one byte */
        if (d->cap > len + 1)
            return JSMN_ERROR_INVAL;
        want = d->cap * 4 < len + 2 ? d->cap * 4 : (unsigned)len + 2;
        grown = realloc(d->toks, (size_t)want * sizeof(*grown));
        if (grown == NULL)
            return JSMN_ERROR_NOMEM;
        d->toks = grown;
        d->cap = want;
    }
}

int enpi_json_decode(enpi_json_decoder_t *d, const enpi_json_paths_t *paths, const char *payload,
                     size_t len, enpi_reading_cb cb, void *ctx)
{
    const jsmntok_t *t;
    int ntok, next;

    if (len == 0 || len > INT_MAX / 2)
        return ENPI_EPARSE;
    ntok = tokenize(d, payload, len);
    if (ntok == JSMN_ERROR_NOMEM)
        return ENPI_ENOMEM;
    if (ntok <= 0)
        return ENPI_EPARSE;
    t = d->toks;
    if ((t[0].type != JSMN_OBJECT && t[0].type != JSMN_ARRAY) || tok_skip(t, ntok, 0) != ntok)
        return ENPI_EPARSE;
    /* Only whitespace around the top-level value: jsmn skips a ',' or ':' before it. */
    if (!gap_ok(payload, 0, t[0].start, 0) || !gap_ok(payload, t[0].end, (int)len, 0))
        return ENPI_EPARSE;
    if (!value_ok(t, ntok, payload, 0, 0, &next) || next != ntok)
        return ENPI_EPARSE;
    if (t[0].type == JSMN_OBJECT) {
        decode_object(d, paths, payload, ntok, 0, cb, ctx);
    } else {
        int i = 1;
        for (int e = 0; e < t[0].size && i < ntok; e++) {
            decode_object(d, paths, payload, ntok, i, cb, ctx);
            i = tok_skip(t, ntok, i);
        }
    }
    return 0;
}
