/*
 * decode.h - what every payload decoder hands the pipeline: raw readings, one callback
 * per reading, before any meter is known.
 *
 * A decoder only reports what the payload says. Deciding which meter a reading belongs
 * to, resolving a local time in the facility's zone and every SPEC §4 check that needs
 * the meter happen afterwards in the pipeline, so all formats share them. A new format
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

#endif
