/*
 * records.c - protobuf-c encoding of the values of an enpi store (see records.h).
 *
 * Encoding packs from a stack-initialised message that borrows the caller's data, so
 * nothing is allocated; every unpack is paired with its free_unpacked before returning.
 */
#include "records.h"

#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "store.pb-c.h"

typedef Enpi__Store__V1__Rollup pb_rollup_t;
typedef Enpi__Store__V1__Meta pb_meta_t;
typedef Enpi__Store__V1__MeterState pb_meter_t;
typedef Enpi__Store__V1__UnknownMeter pb_unknown_t;

/* ---- rollup ---- */

size_t enpi_store_rec_rollup_encode(const enpi_rollup_t *r, int64_t end_ms, uint8_t *buf)
{
    pb_rollup_t m = ENPI__STORE__V1__ROLLUP__INIT;
    m.value = r->value;
    m.estimated = r->estimated;
    m.readings = r->readings;
    m.resets = r->resets;
    m.late = r->late;
    m.duplicates = r->duplicates;
    m.end_ms = end_ms;
    return enpi__store__v1__rollup__pack(&m, buf);
}

int enpi_store_rec_rollup_decode(const void *data, size_t len, enpi_rollup_t *r, int64_t *end_ms)
{
    pb_rollup_t *m = enpi__store__v1__rollup__unpack(NULL, len, data);
    if (!m)
        return ENPI_EPARSE;
    r->value = m->value;
    r->estimated = m->estimated;
    r->readings = m->readings;
    r->resets = m->resets;
    r->late = m->late;
    r->duplicates = m->duplicates;
    *end_ms = m->end_ms;
    enpi__store__v1__rollup__free_unpacked(m, NULL);
    return 0;
}

/* ---- meta ---- */

size_t enpi_store_rec_meta_encode(uint32_t format_version, uint64_t inbox_upto, uint8_t *buf)
{
    pb_meta_t m = ENPI__STORE__V1__META__INIT;
    m.format_version = format_version;
    m.inbox_upto = inbox_upto;
    return enpi__store__v1__meta__pack(&m, buf);
}

int enpi_store_rec_meta_decode(const void *data, size_t len, uint32_t *format_version,
                               uint64_t *inbox_upto)
{
    pb_meta_t *m = enpi__store__v1__meta__unpack(NULL, len, data);
    if (!m)
        return ENPI_EPARSE;
    *format_version = m->format_version;
    *inbox_upto = m->inbox_upto;
    enpi__store__v1__meta__free_unpacked(m, NULL);
    return 0;
}

/* ---- meter state ---- */

/* The message borrows s->recent_ts; protobuf-c only reads it while packing. */
static void meter_to_pb(const enpi_meter_state_t *s, pb_meter_t *m)
{
    m->has_state = s->has_state;
    m->last_ts_ms = s->last_ts_ms;
    m->last_raw = s->last_raw;
    m->first_ts_ms = s->first_ts_ms;
    m->readings = s->readings;
    m->resets = s->resets;
    m->late = s->late;
    m->duplicates = s->duplicates;
    m->rejected = s->rejected;
    m->dead_since_ms = s->dead_since_ms;
    if (s->recent_ts && s->n_recent > 0) {
        m->recent_ts = s->recent_ts;
        m->n_recent_ts = s->n_recent;
    }
}

size_t enpi_store_rec_meter_size(const enpi_meter_state_t *s)
{
    pb_meter_t m = ENPI__STORE__V1__METER_STATE__INIT;
    meter_to_pb(s, &m);
    return enpi__store__v1__meter_state__get_packed_size(&m);
}

size_t enpi_store_rec_meter_encode(const enpi_meter_state_t *s, uint8_t *buf)
{
    pb_meter_t m = ENPI__STORE__V1__METER_STATE__INIT;
    meter_to_pb(s, &m);
    return enpi__store__v1__meter_state__pack(&m, buf);
}

int enpi_store_rec_meter_decode(const void *data, size_t len, enpi_meter_state_t *out)
{
    memset(out, 0, sizeof *out);
    pb_meter_t *m = enpi__store__v1__meter_state__unpack(NULL, len, data);
    if (!m)
        return ENPI_EPARSE;
    int rc = 0;
    if (m->n_recent_ts > 0) {
        out->recent_ts = malloc(m->n_recent_ts * sizeof *out->recent_ts);
        if (!out->recent_ts) {
            rc = ENPI_ENOMEM;
            goto free_message;
        }
        memcpy(out->recent_ts, m->recent_ts, m->n_recent_ts * sizeof *out->recent_ts);
        out->n_recent = m->n_recent_ts;
    }
    out->has_state = m->has_state;
    out->last_ts_ms = m->last_ts_ms;
    out->last_raw = m->last_raw;
    out->first_ts_ms = m->first_ts_ms;
    out->readings = m->readings;
    out->resets = m->resets;
    out->late = m->late;
    out->duplicates = m->duplicates;
    out->rejected = m->rejected;
    out->dead_since_ms = m->dead_since_ms;
free_message:
    enpi__store__v1__meter_state__free_unpacked(m, NULL);
    return rc;
}

/* ---- unknown meter ---- */

static void unknown_to_pb(uint64_t count, const char *topic, size_t topic_len, int64_t last_seen_ms,
                          pb_unknown_t *m)
{
    m->count = count;
    m->last_topic.data = (uint8_t *)topic;
    m->last_topic.len = topic ? topic_len : 0;
    m->last_seen_ms = last_seen_ms;
}

size_t enpi_store_rec_unknown_size(uint64_t count, const char *topic, size_t topic_len,
                                   int64_t last_seen_ms)
{
    pb_unknown_t m = ENPI__STORE__V1__UNKNOWN_METER__INIT;
    unknown_to_pb(count, topic, topic_len, last_seen_ms, &m);
    return enpi__store__v1__unknown_meter__get_packed_size(&m);
}

size_t enpi_store_rec_unknown_encode(uint64_t count, const char *topic, size_t topic_len,
                                     int64_t last_seen_ms, uint8_t *buf)
{
    pb_unknown_t m = ENPI__STORE__V1__UNKNOWN_METER__INIT;
    unknown_to_pb(count, topic, topic_len, last_seen_ms, &m);
    return enpi__store__v1__unknown_meter__pack(&m, buf);
}

int enpi_store_rec_unknown_decode(const void *data, size_t len, uint64_t *count, char **topic_out,
                                  int64_t *last_seen_ms)
{
    pb_unknown_t *m = enpi__store__v1__unknown_meter__unpack(NULL, len, data);
    if (!m)
        return ENPI_EPARSE;
    int rc = 0;
    char *topic = malloc(m->last_topic.len + 1);
    if (!topic) {
        rc = ENPI_ENOMEM;
        goto free_message;
    }
    if (m->last_topic.len)
        memcpy(topic, m->last_topic.data, m->last_topic.len);
    topic[m->last_topic.len] = '\0';
    *topic_out = topic;
    *count = m->count;
    *last_seen_ms = m->last_seen_ms;
free_message:
    enpi__store__v1__unknown_meter__free_unpacked(m, NULL);
    return rc;
}
