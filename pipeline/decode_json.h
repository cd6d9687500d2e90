/*
 * decode_json.h - the `json` payload format (SPEC §4): an object, or an array of
 * objects, each one reading. Where the value, the timestamp and (optionally) the meter id
 * sit is given per input as dot paths ("value", "ts", "ENERGY.Total", "meta.id").
 *
 * Parsing uses jsmn (header-only, tokens into a reused buffer): no allocation per
 * message once the token buffer has grown to the largest payload seen. Measured against
 * json-c in tests/bench/json (see the figures there).
 *
 * Reading rules:
 * - value: must be a JSON number. A string, even a numeric one ("12.5"), true/false, an
 *   object or an array count as no value (missing_value), as do null and absence. A number
 *   that overflows a double (1e999) is not finite (not_finite). JSON has no NaN literal:
 *   a bare NaN is a parse error.
 * - timestamp: absent or null -> the arrival time. A number x is epoch milliseconds when
 *   |x| >= 1e11 and epoch seconds otherwise (1e11 s is the year 5138, 1e11 ms is 1973:
 *   every plausible reading is unambiguous); fractions allowed. A string is ISO 8601
 *   (common/civil.h), read in the facility's zone when it carries no offset. Anything
 *   else is bad_timestamp.
 * - meter id (only when a path is configured): a string (JSON escapes decoded) or a
 *   number's text; absent or null -> the topic's id; true/false/object/array -> bad id.
 * - Object keys are matched byte for byte (a key written with escapes does not match).
 * A payload that is not well-formed JSON, has trailing bytes, or whose top level is not an
 * object or array is one parse error; an array element that is not an object is one
 * parse error reading. Duplicate keys: the first wins.
 */
#ifndef ENPI_DECODE_JSON_H
#define ENPI_DECODE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "decode.h"

#define ENPI_JSON_PATH_DEPTH 8

typedef struct {
    char *text; /* owned copy of the path */
    size_t n;   /* components; 0 = not configured */
    struct {
        const char *p; /* into text */
        size_t len;
    } comp[ENPI_JSON_PATH_DEPTH];
} enpi_json_path_t;

typedef struct {
    enpi_json_path_t value;
    enpi_json_path_t ts;
    enpi_json_path_t id; /* n == 0 when the input takes ids from the topic only */
} enpi_json_paths_t;

/*
 * Compiles the dot paths of one input (value/ts NULL = "value"/"ts", id NULL = none).
 * Returns 0, ENPI_EINVAL with a message in err (empty component, too deep), ENPI_ENOMEM.
 * Free with enpi_json_paths_free, also after a failure.
 */
int enpi_json_paths_init(enpi_json_paths_t *jp, const char *value, const char *ts, const char *id,
                         char *err, size_t errlen);
void enpi_json_paths_free(enpi_json_paths_t *jp);

typedef struct enpi_json_decoder enpi_json_decoder_t;

/* A decoder owns the token buffer; one per thread. 0 or ENPI_ENOMEM. */
int enpi_json_decoder_create(enpi_json_decoder_t **out);
void enpi_json_decoder_free(enpi_json_decoder_t *d);

/*
 * Decodes one payload, calling cb once per reading (raw readings point into payload and
 * into the decoder; valid during the callback only). Returns 0, ENPI_EPARSE when the
 * payload as a whole is not usable JSON (no callback made), or ENPI_ENOMEM when the token
 * buffer could not grow (no callback made).
 */
int enpi_json_decode(enpi_json_decoder_t *d, const enpi_json_paths_t *paths, const char *payload,
                     size_t len, enpi_reading_cb cb, void *ctx);

#endif
