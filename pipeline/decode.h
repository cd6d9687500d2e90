/*
 * decode.h - what every payload decoder hands the pipeline: raw readings, one callback
 * per reading, before any meter is known.
 *
 * A decoder only reports what the payload says. Deciding which meter a reading belongs
 * to, resolving a local time in the facility's zone and every SPEC §4 check that needs
 * the meter happen afterwards in the pipeline, so all formats share them (as do the
 * arithmetic's bounds in meter.h: an amount above ENPI_MAX_AMOUNT = 1e15 after scale and
 * to_kwh is implausible, an interval above ENPI_MAX_SPREAD_MS = 400 days re-bases the
 * meter instead of being apportioned; a decoder hands such values on). A new format
 * plugs in as one more decoder behind the dispatch in pipeline.c producing these.
 */
#ifndef ENPI_DECODE_H
#define ENPI_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "civil.h"

typedef enum {
    ENPI_VALUE_OK = 0,     /* value holds a number */
    ENPI_VALUE_MISSING,    /* absent, null, or not a number (missing_value) */
    ENPI_VALUE_NOT_FINITE, /* a number that is NaN or overflows to infinity (not_finite) */
} enpi_value_kind_t;

typedef enum {
    ENPI_TS_ARRIVAL = 0, /* no timestamp in the payload: the arrival time stamps it */
    ENPI_TS_EPOCH_MS,    /* ts_ms holds milliseconds since the epoch (maybe fractional) */
    ENPI_TS_CIVIL,       /* civil holds an ISO 8601 time (local when !civil.has_offset) */
    ENPI_TS_INVALID,     /* present but unusable (bad_timestamp) */
} enpi_ts_kind_t;

typedef struct {
    bool malformed;  /* this element of the payload is not a reading (parse_error) */
    bool id_invalid; /* the payload's meter id has an unusable type (bad_meter_id) */
    const char *id;  /* meter id from the payload, NULL to take the topic's; valid
                        only during the callback, not NUL-terminated */
    size_t id_len;
    enpi_value_kind_t value_kind;
    double value;
    enpi_ts_kind_t ts_kind;
    double ts_ms;
    enpi_civil_t civil;
} enpi_raw_reading_t;

/* Called once per reading, in payload order. */
typedef void (*enpi_reading_cb)(void *ctx, const enpi_raw_reading_t *r);

/*
 * The `number` format: the payload is one decimal number (surrounding whitespace
 * allowed), stamped with the arrival time. "nan", "inf" and overflowing numbers such as
 * 1e999 are readings with a non-finite value; anything else that is not a number is a
 * parse error. Returns 0 after one callback, or ENPI_EPARSE with no callback.
 */
int enpi_number_decode(const char *payload, size_t len, enpi_reading_cb cb, void *ctx);

/*
 * Parses a JSON number token: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? exactly, over
 * s[0..len). Returns 0 with *out set (possibly ±inf on overflow), or ENPI_EPARSE. Numbers
 * of at most 15 significant digits without exponent are converted exactly without
 * strtod (the common case); others go through strtod on a bounded copy.
 */
int enpi_decode_number_text(const char *s, size_t len, double *out);

/*
 * The `protobuf` format (SPEC §4, proto/enpi.proto, package enpi.v1): the payload is one
 * ReadingBatch; each Reading becomes one raw reading, in batch order. For meter vendors:
 * - meter_id: empty (or absent) takes the meter id from the topic (id NULL). A non-empty
 *   id is handed on as is (the pipeline checks it: 1..128 bytes of printable UTF-8); an id
 *   holding a NUL byte anywhere, the first byte included (so "\0" is not empty), is
 *   marked id_invalid (bad_meter_id).
 * - timestamp_ms: milliseconds since the epoch, UTC. proto3 cannot tell an absent field
 *   from 0, so 0 (or absent) means "no timestamp": the arrival time stamps the reading.
 *   Any other value, negative included, is taken as written (the pipeline then rejects
 *   what is before 2000 or too far ahead).
 * - value: the raw reading (register or delta, in the meter's unit before `scale`). An
 *   absent value is 0, as proto3 defines; NaN and ±infinity are not finite (not_finite);
 *   a finite value whose amount exceeds 1e15 kWh (or units) is implausible (meter.h).
 *   So missing_value never arises from this format.
 * A payload that is not a well-formed ReadingBatch (truncated, a known field with the
 * wrong wire type, an invalid tag or length) is one parse error: ENPI_EPARSE, no
 * callback. Unknown fields are skipped (forward compatibility). An empty payload is an
 * empty batch: no reading, no error.
 */
typedef struct enpi_protobuf_decoder enpi_protobuf_decoder_t;

/*
 * A protobuf decoder owns the memory protobuf-c unpacks into: an arena reused from one
 * message to the next, so a steady stream of similar messages allocates nothing. One per
 * thread. Returns 0 or ENPI_ENOMEM.
 */
int enpi_protobuf_decoder_create(enpi_protobuf_decoder_t **out);
void enpi_protobuf_decoder_free(enpi_protobuf_decoder_t *d);

/*
 * Decodes one ReadingBatch, calling cb once per Reading (ids point into the decoder's
 * arena, valid during the callback only). Returns 0, ENPI_EPARSE (no callback made), or
 * ENPI_ENOMEM when the arena could not grow (no callback made).
 */
int enpi_protobuf_decode(enpi_protobuf_decoder_t *d, const void *payload, size_t len,
                         enpi_reading_cb cb, void *ctx);

/*
 * The `tasmota` format: Tasmota's tele/<device>/SENSOR telemetry, a JSON object such as
 *   {"Time":"2024-01-15T10:30:00","ENERGY":{"TotalStartTime":"2023-05-01T12:00:00",
 *    "Total":123.456,"Yesterday":1.2,"Today":0.5,"Power":150,...}}
 * One reading per message, id from the topic:
 * - value: ENERGY.Total, the device's kWh register (a cumulative meter). Absent or not a
 *   JSON number (a sensor-only device; a per-phase array under SetOption129 1, which is
 *   not supported: leave it 0) -> missing_value.
 * - timestamp: Time, ISO 8601; without offset (Tasmota's default) it is local time in the
 *   facility's zone; with one (SetOption52 1) it is that instant. Tasmota always sends
 *   Time, so a SENSOR message without it, or with anything but such a string, is
 *   malformed: bad_timestamp (never the arrival time). A device that has not synced its
 *   clock yet sends 1970 times, rejected as too_old by the pipeline.
 * Otherwise the json format's rules apply (decode_json.h): the payload must be well-formed
 * JSON and, here, an object; else ENPI_EPARSE with no callback. `json` is the pipeline's
 * JSON decoder (its token buffer is reused). Returns 0, ENPI_EPARSE or ENPI_ENOMEM.
 */
struct enpi_json_decoder;
int enpi_tasmota_decode(struct enpi_json_decoder *json, const char *payload, size_t len,
                        enpi_reading_cb cb, void *ctx);

#endif
