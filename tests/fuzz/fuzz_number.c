/*
 * fuzz_number.c - libFuzzer target for the `number` payload format and the JSON number
 * text conversion under it (pipeline/decode.h), over arbitrary bytes.
 *
 * Besides memory errors it checks what decode.h promises: enpi_number_decode calls back
 * exactly once when it returns 0 and never otherwise, with the kind matching the value;
 * enpi_decode_number_text accepts exactly JSON's number grammar (checked against an
 * independent recogniser below) and, when it does, returns bit for bit what glibc's
 * correctly rounded strtod returns (its strtod-free fast path claims to be exact).
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "enpi_error.h"
#include "fuzz_util.h"

typedef struct {
    int calls;
    enpi_raw_reading_t last;
} seen_t;

static void on_reading_cb(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    s->calls++;
    s->last = *r;
}

static bool digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 §6: number = [ minus ] int [ frac ] [ exp ], over the whole span. */
static bool json_number_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;

    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !digit(s[i]))
        return false;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < n && digit(s[i]))
            i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !digit(s[i]))
            return false;
        while (i < n && digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !digit(s[i]))
            return false;
        while (i < n && digit(s[i]))
            i++;
    }
    return i == n;
}

static void check_number_text(const uint8_t *data, size_t size)
{
    double got = 0, want;
    int rc = enpi_decode_number_text((const char *)data, size, &got);
    bool ok = json_number_ok(data, size);
    char *copy, *end;

    if (rc == ENPI_ENOMEM)
        return;
    FUZZ_CHECK(rc == 0 || rc == ENPI_EPARSE, "rc %d", rc);
    FUZZ_CHECK((rc == 0) == ok, "grammar: enpi says %s, RFC 8259 says %s", rc == 0 ? "ok" : "no",
               ok ? "ok" : "no");
    if (rc != 0)
        return;
    copy = fuzz_strndup(data, size);
    want = strtod(copy, &end);
    FUZZ_CHECK(end == copy + size, "strtod stopped early on \"%s\"", copy);
    FUZZ_CHECK(memcmp(&got, &want, sizeof(got)) == 0, "\"%s\": enpi %.17g, strtod %.17g", copy, got,
               want);
    free(copy);
}

static void check_number_decode(const uint8_t *data, size_t size)
{
    seen_t s;
    int rc;

    memset(&s, 0, sizeof(s));
    rc = enpi_number_decode((const char *)data, size, on_reading_cb, &s);
    if (rc != 0) {
        FUZZ_CHECK(rc == ENPI_EPARSE || rc == ENPI_ENOMEM, "rc %d", rc);
        FUZZ_CHECK(s.calls == 0, "%d callbacks on failure", s.calls);
        return;
    }
    FUZZ_CHECK(s.calls == 1, "%d callbacks", s.calls);
    FUZZ_CHECK(!s.last.malformed && !s.last.id_invalid && s.last.id == NULL, "id fields set");
    FUZZ_CHECK(s.last.ts_kind == ENPI_TS_ARRIVAL, "ts_kind %d", (int)s.last.ts_kind);
    switch (s.last.value_kind) {
    case ENPI_VALUE_OK:
        FUZZ_CHECK(isfinite(s.last.value), "OK value %g", s.last.value);
        break;
    case ENPI_VALUE_NOT_FINITE:
        FUZZ_CHECK(!isfinite(s.last.value), "NOT_FINITE value %g", s.last.value);
        break;
    case ENPI_VALUE_MISSING:
    default:
        FUZZ_CHECK(0, "value_kind %d", (int)s.last.value_kind);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_number_text(data, size);
    check_number_decode(data, size);
    return 0;
}
