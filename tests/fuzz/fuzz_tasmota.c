/*
 * fuzz_tasmota.c - libFuzzer target for the `tasmota` payload format (pipeline/decode.h):
 * the whole input is one SENSOR payload, decoded with a JSON decoder reused across
 * inputs as the pipeline reuses it.
 *
 * Besides memory errors it checks decode.h's promises: exactly one reading when the
 * decode succeeds and none otherwise; success exactly when the payload is one well-formed
 * JSON object (fuzz_json_ref.h); no meter id from the payload; and the reading agrees
 * with the generic json decoder reading the same payload at ENERGY.Total and Time (same
 * value and kind; Time must be an ISO 8601 string, anything else is bad_timestamp, never
 * the arrival time).
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decode.h"
#include "decode_json.h"
#include "enpi_error.h"
#include "fuzz_json_ref.h"
#include "fuzz_util.h"

typedef struct {
    int calls;
    enpi_raw_reading_t r;
} seen_t;

static enpi_json_decoder_t *decoder;
static enpi_json_paths_t tasmota_paths;

static void on_reading_cb(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    s->calls++;
    s->r = *r;
}

static bool civil_equal(const enpi_civil_t *a, const enpi_civil_t *b)
{
    return a->year == b->year && a->month == b->month && a->day == b->day && a->hour == b->hour &&
           a->minute == b->minute && a->second == b->second && a->millis == b->millis &&
           a->has_time == b->has_time && a->has_offset == b->has_offset &&
           a->offset_s == b->offset_s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];

    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    FUZZ_CHECK(enpi_json_decoder_create(&decoder) == 0, "decoder_create");
    FUZZ_CHECK(
        enpi_json_paths_init(&tasmota_paths, "ENERGY.Total", "Time", NULL, err, sizeof(err)) == 0,
        "paths: %s", err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ref_verdict_t ref = ref_judge(data, size, true);
    seen_t got, json;
    int rc, jrc;

    memset(&got, 0, sizeof(got));
    memset(&json, 0, sizeof(json));
    rc = enpi_tasmota_decode(decoder, (const char *)data, size, on_reading_cb, &got);
    if (rc == ENPI_ENOMEM)
        return 0;
    FUZZ_CHECK(rc == 0 || rc == ENPI_EPARSE, "rc %d", rc);
    FUZZ_CHECK(got.calls == (rc == 0 ? 1 : 0), "%d readings with rc %d", got.calls, rc);
    FUZZ_CHECK(ref == REF_UNJUDGED || (rc == 0) == (ref == REF_VALID),
               "decoder %s, RFC 8259 says %s object", rc == 0 ? "accepts" : "rejects",
               ref == REF_VALID ? "a well-formed" : "not a");
    if (rc != 0)
        return 0;
    FUZZ_CHECK(!got.r.malformed && got.r.id == NULL && !got.r.id_invalid,
               "a tasmota reading has no id of its own");

    jrc = enpi_json_decode(decoder, &tasmota_paths, (const char *)data, size, on_reading_cb, &json);
    if (jrc == ENPI_ENOMEM)
        return 0;
    FUZZ_CHECK(jrc == 0 && json.calls == 1, "json decoder: rc %d, %d readings", jrc, json.calls);
    FUZZ_CHECK(got.r.value_kind == json.r.value_kind, "value kind %d, json says %d",
               (int)got.r.value_kind, (int)json.r.value_kind);
    if (got.r.value_kind == ENPI_VALUE_OK)
        FUZZ_CHECK(got.r.value == json.r.value, "value %.17g, json says %.17g", got.r.value,
                   json.r.value);
    if (json.r.ts_kind == ENPI_TS_CIVIL) {
        FUZZ_CHECK(got.r.ts_kind == ENPI_TS_CIVIL && civil_equal(&got.r.civil, &json.r.civil),
                   "Time read differently (kind %d)", (int)got.r.ts_kind);
    } else {
        FUZZ_CHECK(got.r.ts_kind == ENPI_TS_INVALID,
                   "Time that is no ISO 8601 string gives ts_kind %d, not bad_timestamp",
                   (int)got.r.ts_kind);
    }
    return 0;
}
