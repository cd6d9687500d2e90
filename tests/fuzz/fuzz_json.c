/*
 * fuzz_json.c - libFuzzer target for the `json` payload decoder (pipeline/decode_json.h):
 * the whole input is one payload, decoded under each of a few path configurations (the
 * defaults, Tasmota-like nested paths, a meter id path, the deepest path allowed, and one
 * path used for value, timestamp and id at once). One decoder is reused across inputs,
 * as the pipeline reuses it, so its token buffer grows and shrinks nothing.
 *
 * Besides memory errors it checks decode_json.h's promises: no callback unless the decode
 * succeeds; a reading's kinds agree with its numbers; a civil timestamp has in-range
 * fields; a meter id span is readable. And it checks the "not well-formed JSON is a parse
 * error" rule both ways against a small independent recogniser of RFC 8259
 * (fuzz_json_ref.h).
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decode_json.h"
#include "enpi_error.h"
#include "fuzz_json_ref.h"
#include "fuzz_util.h"

/* ---- the decoder under test --------------------------------------------------------- */

static const struct {
    const char *value, *ts, *id;
} path_sets[] = {
    {NULL, NULL, NULL},                                /* "value", "ts" */
    {"ENERGY.Total", "Time", NULL},                    /* Tasmota's SENSOR shape */
    {"value", "ts", "meter_id"},                       /* ids from the payload */
    {"a.b.c.d.e.f.g.h", "a.b.c.d.e.f.g.t", "meta.id"}, /* the deepest path allowed */
    {"v", "v", "v"},                                   /* one member read three ways */
};
#define N_PATH_SETS (sizeof(path_sets) / sizeof(path_sets[0]))

static enpi_json_paths_t paths[N_PATH_SETS];
static enpi_json_decoder_t *decoder;

typedef struct {
    const uint8_t *payload;
    size_t size;
    int calls;
} ctx_t;

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

static void on_reading_cb(void *vctx, const enpi_raw_reading_t *r)
{
    ctx_t *c = vctx;
    const enpi_civil_t *cv = &r->civil;

    c->calls++;
    if (r->malformed) {
        FUZZ_CHECK(r->id == NULL && !r->id_invalid, "malformed reading carries an id");
        return;
    }
    if (r->id != NULL) {
        FUZZ_CHECK(!r->id_invalid, "both an id and id_invalid");
        fuzz_touch(r->id, r->id_len);
        if ((const uint8_t *)r->id >= c->payload && (const uint8_t *)r->id < c->payload + c->size)
            FUZZ_CHECK(r->id_len <= c->size - (size_t)((const uint8_t *)r->id - c->payload),
                       "id span runs past the payload");
    }
    switch (r->value_kind) {
    case ENPI_VALUE_OK:
        FUZZ_CHECK(isfinite(r->value), "OK value %g", r->value);
        break;
    case ENPI_VALUE_NOT_FINITE:
        FUZZ_CHECK(!isfinite(r->value), "NOT_FINITE value %g", r->value);
        break;
    case ENPI_VALUE_MISSING:
        break;
    default:
        FUZZ_CHECK(0, "value_kind %d", (int)r->value_kind);
    }
    switch (r->ts_kind) {
    case ENPI_TS_ARRIVAL:
    case ENPI_TS_INVALID:
        break;
    case ENPI_TS_EPOCH_MS:
        FUZZ_CHECK(isfinite(r->ts_ms), "ts_ms %g", r->ts_ms);
        break;
    case ENPI_TS_CIVIL:
        FUZZ_CHECK(cv->month >= 1 && cv->month <= 12, "month %d", cv->month);
        FUZZ_CHECK(cv->day >= 1 && cv->day <= days_in_month(cv->year, cv->month), "day %d-%d-%d",
                   cv->year, cv->month, cv->day);
        FUZZ_CHECK(cv->hour >= 0 && cv->hour <= 23, "hour %d", cv->hour);
        FUZZ_CHECK(cv->minute >= 0 && cv->minute <= 59, "minute %d", cv->minute);
        FUZZ_CHECK(cv->second >= 0 && cv->second <= 59, "second %d", cv->second);
        FUZZ_CHECK(cv->millis >= 0 && cv->millis <= 999, "millis %d", cv->millis);
        FUZZ_CHECK(cv->has_offset || cv->offset_s == 0, "offset without has_offset");
        break;
    default:
        FUZZ_CHECK(0, "ts_kind %d", (int)r->ts_kind);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    for (size_t i = 0; i < N_PATH_SETS; i++)
        FUZZ_CHECK(enpi_json_paths_init(&paths[i], path_sets[i].value, path_sets[i].ts,
                                        path_sets[i].id, err, sizeof(err)) == 0,
                   "path set %zu: %s", i, err);
    FUZZ_CHECK(enpi_json_decoder_create(&decoder) == 0, "decoder_create");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ref_verdict_t ref = ref_judge(data, size, false);

    for (size_t i = 0; i < N_PATH_SETS; i++) {
        ctx_t c = {.payload = data, .size = size, .calls = 0};
        int rc = enpi_json_decode(decoder, &paths[i], (const char *)data, size, on_reading_cb, &c);

        if (rc == ENPI_ENOMEM)
            continue;
        FUZZ_CHECK(rc == 0 || rc == ENPI_EPARSE, "rc %d", rc);
        if (rc != 0)
            FUZZ_CHECK(c.calls == 0, "%d callbacks before a parse error", c.calls);
        FUZZ_CHECK(ref == REF_UNJUDGED || (rc == 0) == (ref == REF_VALID),
                   "well-formedness: decoder %s, RFC 8259 %s", rc == 0 ? "accepts" : "rejects",
                   ref == REF_VALID ? "accepts" : "rejects");
    }
    return 0;
}
