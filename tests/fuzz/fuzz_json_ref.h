/*
 * fuzz_json_ref.h - a small independent recogniser of RFC 8259 JSON for the fuzz targets
 * whose formats sit on JSON (fuzz_json, fuzz_tasmota), written from the RFC, not from
 * decode_json.c. It answers one question: is the payload one JSON object or array, alone
 * but for whitespace? It follows decode_json.h's documented leniency: raw control bytes
 * other than NUL inside strings are tolerated. UTF-8 is not validated (neither side does).
 */
#ifndef ENPI_FUZZ_JSON_REF_H
#define ENPI_FUZZ_JSON_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Nesting our recogniser follows; deeper documents are left unjudged (decode_json.c
 * draws its own line at 64 and we do not pin where exactly). */
#define REF_DEPTH_MAX 48

typedef enum { REF_VALID, REF_INVALID, REF_UNJUDGED } ref_verdict_t;

typedef struct {
    const uint8_t *s;
    size_t n;
    size_t i;
    bool too_deep;
} ref_t;

static void ref_ws(ref_t *r)
{
    while (r->i < r->n &&
           (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static bool ref_hex(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool ref_string(ref_t *r)
{
    if (r->i >= r->n || r->s[r->i] != '"')
        return false;
    r->i++;
    while (r->i < r->n) {
        uint8_t c = r->s[r->i++];
        if (c == '"')
            return true;
        if (c == '\0')
            return false;
        if (c != '\\')
            continue;
        if (r->i >= r->n)
            return false;
        c = r->s[r->i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++)
                if (r->i >= r->n || !ref_hex(r->s[r->i++]))
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return false;
        }
    }
    return false;
}

static bool ref_digits(ref_t *r)
{
    size_t start = r->i;

    while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9')
        r->i++;
    return r->i > start;
}

static bool ref_number(ref_t *r)
{
    if (r->i < r->n && r->s[r->i] == '-')
        r->i++;
    if (r->i < r->n && r->s[r->i] == '0')
        r->i++;
    else if (!ref_digits(r))
        return false;
    if (r->i < r->n && r->s[r->i] == '.') {
        r->i++;
        if (!ref_digits(r))
            return false;
    }
    if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        r->i++;
        if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-'))
            r->i++;
        if (!ref_digits(r))
            return false;
    }
    return true;
}

static bool ref_literal(ref_t *r, const char *lit)
{
    size_t len = strlen(lit);

    if (r->n - r->i < len || memcmp(r->s + r->i, lit, len) != 0)
        return false;
    r->i += len;
    return true;
}

static bool ref_value(ref_t *r, int depth);

/* Members or elements after the opening bracket, up to and including the closing one. */
static bool ref_container(ref_t *r, int depth, bool object)
{
    uint8_t close = object ? '}' : ']';

    r->i++; /* the opening bracket */
    if (depth >= REF_DEPTH_MAX) {
        r->too_deep = true;
        return false;
    }
    ref_ws(r);
    if (r->i < r->n && r->s[r->i] == close) {
        r->i++;
        return true;
    }
    for (;;) {
        if (object) {
            ref_ws(r);
            if (!ref_string(r))
                return false;
            ref_ws(r);
            if (r->i >= r->n || r->s[r->i] != ':')
                return false;
            r->i++;
        }
        if (!ref_value(r, depth + 1))
            return false;
        ref_ws(r);
        if (r->i >= r->n)
            return false;
        if (r->s[r->i] == close) {
            r->i++;
            return true;
        }
        if (r->s[r->i] != ',')
            return false;
        r->i++;
    }
}

static bool ref_value(ref_t *r, int depth)
{
    ref_ws(r);
    if (r->i >= r->n)
        return false;
    switch (r->s[r->i]) {
    case '{':
        return ref_container(r, depth, true);
    case '[':
        return ref_container(r, depth, false);
    case '"':
        return ref_string(r);
    case 't':
        return ref_literal(r, "true");
    case 'f':
        return ref_literal(r, "false");
    case 'n':
        return ref_literal(r, "null");
    default:
        return ref_number(r);
    }
}

/* Is the payload one JSON object (or, unless object_only, array), alone but for
 * whitespace? */
static ref_verdict_t ref_judge(const uint8_t *s, size_t n, bool object_only)
{
    ref_t r = {.s = s, .n = n, .i = 0, .too_deep = false};
    bool ok;

    ref_ws(&r);
    if (r.i >= n || (s[r.i] != '{' && (object_only || s[r.i] != '[')))
        return REF_INVALID;
    ok = ref_value(&r, 0);
    if (r.too_deep)
        return REF_UNJUDGED;
    if (!ok)
        return REF_INVALID;
    ref_ws(&r);
    return r.i == n ? REF_VALID : REF_INVALID;
}

#endif
