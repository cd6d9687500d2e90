/*
 * decode_tasmota.c - the `tasmota` payload format: Tasmota's tele/<device>/SENSOR JSON
 * (rules in decode.h). It is the json format with fixed paths (ENERGY.Total, Time), an
 * object at the top, and a stricter timestamp: Time must be an ISO 8601 string, so this
 * file only narrows what the json decoder reports, through a relaying callback, instead
 * of walking JSON a second time.
 */
#include <stddef.h>

#include "decode.h"
#include "decode_json.h"
#include "enpi_error.h"

/* Compiled paths built at compile time: `text` is only an owned copy for paths made by
 * enpi_json_paths_init, which the lookup never reads, so it stays NULL here. */
static const enpi_json_paths_t tasmota_paths = {
    .value = {.text = NULL, .n = 2, .comp = {{"ENERGY", 6}, {"Total", 5}}},
    .ts = {.text = NULL, .n = 1, .comp = {{"Time", 4}}},
    .id = {.text = NULL, .n = 0},
};

typedef struct {
    enpi_reading_cb cb;
    void *ctx;
} relay_t;

/* Time absent, null or a number is not Tasmota's: bad_timestamp, never arrival time. */
static void relay_cb(void *ctx, const enpi_raw_reading_t *r)
{
    const relay_t *relay = ctx;
    enpi_raw_reading_t out = *r;

    if (out.ts_kind != ENPI_TS_CIVIL)
        out.ts_kind = ENPI_TS_INVALID;
    relay->cb(relay->ctx, &out);
}

int enpi_tasmota_decode(struct enpi_json_decoder *json, const char *payload, size_t len,
                        enpi_reading_cb cb, void *ctx)
{
    relay_t relay = {cb, ctx};
    size_t i = 0;

    while (i < len &&
           (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\r' || payload[i] == '\n'))
        i++;
    if (i == len || payload[i] != '{')
        return ENPI_EPARSE; /* a SENSOR message is one object, never an array */
    return enpi_json_decode(json, &tasmota_paths, payload, len, relay_cb, &relay);
}
