/*
 * test_decode_protobuf.c - the `protobuf` payload format (enpi.v1.ReadingBatch): the
 * decoder alone on payloads written by `protoc --encode` (an independent encoder) and by
 * the generated protobuf-c code, every malformed class (truncation at every byte, wrong
 * wire types, garbage), odd field values (0 / negative timestamps, NaN, ±Inf, NUL and
 * non-UTF-8 ids, unknown fields), arena reuse across large and small batches; then
 * through enpi_pipeline_ingest: topic and payload ids, exact rollups, every SPEC §4 reject
 * with its boundary, the 256 KiB limit, and unknown payload ids in the unknown table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode.h"
#include "enpi.pb-c.h"
#include "enpi_error.h"
#include "log.h"
#include "pipeline_testutil.h"

/* ---- collecting raw readings -------------------------------------------------------- */

#define MAX_SEEN 10000

typedef struct {
    enpi_raw_reading_t r;
    char id[160];
} seen_reading_t;

typedef struct {
    seen_reading_t *s;
    size_t n;
} seen_t;

static void collect(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    if (s->n >= MAX_SEEN)
        fail_msg("too many readings");
    s->s[s->n].r = *r;
    s->s[s->n].id[0] = '\0';
    if (r->id != NULL) {
        size_t n = r->id_len < 159 ? r->id_len : 159;
        memcpy(s->s[s->n].id, r->id, n);
        s->s[s->n].id[n] = '\0';
    }
    s->n++;
}

static enpi_protobuf_decoder_t *dec;
static seen_t seen;

static int decode(const void *payload, size_t len)
{
    seen.n = 0;
    return enpi_protobuf_decode(dec, payload, len, collect, &seen);
}

/* ---- building payloads with the generated protobuf-c code --------------------------- */

typedef struct {
    const char *id; /* NULL: field left at its default (empty) */
    int64_t ts;
    double v;
} rd_t;

/* Packs a ReadingBatch of n readings into a malloc'd buffer; *len its size. */
static uint8_t *pack(const rd_t *rs, size_t n, size_t *len)
{
    static const Enpi__V1__Reading init = ENPI__V1__READING__INIT;
    Enpi__V1__ReadingBatch batch = ENPI__V1__READING_BATCH__INIT;
    Enpi__V1__Reading *msgs = calloc(n ? n : 1, sizeof(*msgs));
    Enpi__V1__Reading **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    uint8_t *buf;

    assert_non_null(msgs);
    assert_non_null(ptrs);
    for (size_t i = 0; i < n; i++) {
        msgs[i] = init;
        if (rs[i].id != NULL)
            msgs[i].meter_id = (char *)rs[i].id;
        msgs[i].timestamp_ms = rs[i].ts;
        msgs[i].value = rs[i].v;
        ptrs[i] = &msgs[i];
    }
    batch.n_readings = n;
    batch.readings = ptrs;
    *len = enpi__v1__reading_batch__get_packed_size(&batch);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(enpi__v1__reading_batch__pack(&batch, buf), *len);
    free(ptrs);
    free(msgs);
    return buf;
}

/*
 * `protoc --proto_path=proto --encode=enpi.v1.ReadingBatch proto/enpi.proto` of
 *   readings { meter_id: "f1/em" timestamp_ms: 1522206000000 value: 1234.567 }
 *   readings { timestamp_ms: 1522206900000 value: 1235.5 }
 *   readings { meter_id: "gw/x" value: 0.25 }
 */
static const uint8_t PROTOC_SAMPLE[] = {
    0x0a, 0x17, 0x0a, 0x05, 0x66, 0x31, 0x2f, 0x65, 0x6d, 0x10, 0x80, 0x87, 0xb1, 0xd4, 0xa6,
    0x2c, 0x19, 0x54, 0xe3, 0xa5, 0x9b, 0x44, 0x4a, 0x93, 0x40, 0x0a, 0x10, 0x10, 0xa0, 0xfe,
    0xe7, 0xd4, 0xa6, 0x2c, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x4e, 0x93, 0x40, 0x0a, 0x0f,
    0x0a, 0x04, 0x67, 0x77, 0x2f, 0x78, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f,
};

/* The first reading of PROTOC_SAMPLE alone: one length-delimited Reading. */
static const uint8_t PROTOC_ONE[] = {
    0x0a, 0x17, 0x0a, 0x05, 0x66, 0x31, 0x2f, 0x65, 0x6d, 0x10, 0x80, 0x87, 0xb1,
    0xd4, 0xa6, 0x2c, 0x19, 0x54, 0xe3, 0xa5, 0x9b, 0x44, 0x4a, 0x93, 0x40,
};

static int setup(void **state)
{
    (void)state;
    enpi_log_max_level = ENPI_LOG_ERR; /* the rejects below would log warnings */
    seen.s = calloc(MAX_SEEN, sizeof(*seen.s));
    if (seen.s == NULL)
        return -1;
    return enpi_protobuf_decoder_create(&dec);
}

static int teardown(void **state)
{
    (void)state;
    enpi_protobuf_decoder_free(dec);
    free(seen.s);
    return 0;
}

/* ---- the decoder alone -------------------------------------------------------------- */

static void protoc_encoded_batch_gives_readings_in_order(void **state)
{
    (void)state;
    assert_int_equal(decode(PROTOC_SAMPLE, sizeof(PROTOC_SAMPLE)), 0);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.s[0].id, "f1/em");
    assert_int_equal(seen.s[0].r.id_len, 5);
    assert_false(seen.s[0].r.id_invalid);
    assert_false(seen.s[0].r.malformed);
    assert_int_equal(seen.s[0].r.value_kind, ENPI_VALUE_OK);
    assert_true(seen.s[0].r.value == 1234.567);
    assert_int_equal(seen.s[0].r.ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.s[0].r.ts_ms == 1522206000000.0);
    /* no meter_id: the topic's */
    assert_null(seen.s[1].r.id);
    assert_true(seen.s[1].r.value == 1235.5);
    assert_true(seen.s[1].r.ts_ms == 1522206900000.0);
    /* no timestamp_ms: the arrival time */
    assert_string_equal(seen.s[2].id, "gw/x");
    assert_int_equal(seen.s[2].r.ts_kind, ENPI_TS_ARRIVAL);
    assert_true(seen.s[2].r.value == 0.25);
}

static void protobuf_c_encoded_batch_round_trips(void **state)
{
    const rd_t rs[] = {
        {"f1/em", 1522206000000, 1234.567},  {NULL, 1522206000001, 0.1}, {"", 1522206000002, 1e300},
        {"Mê Linh/đồng hồ 1", INT64_MAX, 7}, {"f1/gas", -1, -2.5},       {"x", 0, 0},
    };
    size_t n = sizeof(rs) / sizeof(rs[0]), len;
    uint8_t *buf = pack(rs, n, &len);

    (void)state;
    assert_int_equal(decode(buf, len), 0);
    assert_int_equal(seen.n, n);
    for (size_t i = 0; i < n; i++) {
        const enpi_raw_reading_t *r = &seen.s[i].r;
        if (rs[i].id == NULL || rs[i].id[0] == '\0') {
            assert_null(r->id);
        } else {
            assert_string_equal(seen.s[i].id, rs[i].id);
            assert_int_equal(r->id_len, strlen(rs[i].id));
        }
        assert_false(r->id_invalid);
        assert_int_equal(r->value_kind, ENPI_VALUE_OK);
        assert_true(r->value == rs[i].v);
        if (rs[i].ts == 0) {
            assert_int_equal(r->ts_kind, ENPI_TS_ARRIVAL);
        } else {
            assert_int_equal(r->ts_kind, ENPI_TS_EPOCH_MS);
            assert_true(r->ts_ms == (double)rs[i].ts);
        }
    }
    free(buf);
}

static void empty_payload_is_an_empty_batch(void **state)
{
    static const uint8_t two_empty[] = {0x0a, 0x00, 0x0a, 0x00};

    (void)state;
    assert_int_equal(decode("", 0), 0);
    assert_int_equal(seen.n, 0);
    /* two Readings with every field at its default: topic id, arrival time, value 0 */
    assert_int_equal(decode(two_empty, sizeof(two_empty)), 0);
    assert_int_equal(seen.n, 2);
    assert_null(seen.s[0].r.id);
    assert_int_equal(seen.s[0].r.ts_kind, ENPI_TS_ARRIVAL);
    assert_int_equal(seen.s[0].r.value_kind, ENPI_VALUE_OK);
    assert_true(seen.s[0].r.value == 0);
}

static void every_truncation_is_a_parse_error(void **state)
{
    (void)state;
    /* a single Reading: no shorter prefix but the empty one ends on a field boundary */
    for (size_t len = 1; len < sizeof(PROTOC_ONE); len++) {
        int rc = decode(PROTOC_ONE, len);
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("prefix of %zu bytes: rc %d, %zu readings", len, rc, seen.n);
    }
    /* cut inside the third Reading of three: nothing of the first two is reported */
    assert_int_equal(decode(PROTOC_SAMPLE, sizeof(PROTOC_SAMPLE) - 1), ENPI_EPARSE);
    assert_int_equal(seen.n, 0);
    /* and the decoder is fine afterwards */
    assert_int_equal(decode(PROTOC_SAMPLE, sizeof(PROTOC_SAMPLE)), 0);
    assert_int_equal(seen.n, 3);
}

static void wrong_wire_types_are_parse_errors(void **state)
{
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
    } cases[] = {
        /* Reading.value (double, 64-bit) sent as a varint */
        {"value as varint", {0x0a, 0x02, 0x18, 0x05}, 4},
        /* Reading.value sent as a 32-bit float */
        {"value as fixed32", {0x0a, 0x05, 0x1d, 0x00, 0x00, 0x80, 0x3f}, 7},
        /* Reading.timestamp_ms (int64, varint) sent as fixed64 */
        {"timestamp as fixed64", {0x0a, 0x09, 0x11, 1, 2, 3, 4, 5, 6, 7, 8}, 11},
        /* Reading.meter_id (string) sent as a varint */
        {"meter_id as varint", {0x0a, 0x02, 0x08, 0x01}, 4},
        /* ReadingBatch.readings (message) sent as a varint */
        {"readings as varint", {0x08, 0x01}, 2},
        /* a Reading whose length runs past the payload */
        {"length past the end", {0x0a, 0x7f, 0x18}, 3},
        /* a varint of 11 bytes */
        {"endless varint",
         {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
         12},
        /* field number 0 */
        {"field 0", {0x00, 0x00}, 2},
        /* wire types 6 and 7 do not exist */
        {"wire type 7", {0x0f, 0x00}, 2},
        /* a deprecated group start without its end */
        {"open group", {0x0b, 0x0c}, 2},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = decode(cases[i].bytes, cases[i].len);
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("%s: rc %d, %zu readings", cases[i].what, rc, seen.n);
    }
}

static void text_payloads_are_parse_errors(void **state)
{
    static const char *const garbage[] = {
        "{\"ts\": 1522206000000, \"value\": 1234.567}",
        "1234.5",
        "\xff\xff\xff\xff",
        "hello world",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int rc = decode(garbage[i], strlen(garbage[i]));
        if (rc != ENPI_EPARSE || seen.n != 0)
            fail_msg("\"%s\": rc %d, %zu readings", garbage[i], rc, seen.n);
    }
}

static void non_finite_values_are_reported(void **state)
{
    const rd_t rs[] = {
        {NULL, 1522206000000, NAN},
        {NULL, 1522206000000, INFINITY},
        {NULL, 1522206000000, -INFINITY},
        {NULL, 1522206000000, -0.0},
        {NULL, 1522206000000, 1.7976931348623157e308},
    };
    size_t len;
    uint8_t *buf = pack(rs, 5, &len);

    (void)state;
    assert_int_equal(decode(buf, len), 0);
    assert_int_equal(seen.n, 5);
    assert_int_equal(seen.s[0].r.value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(seen.s[1].r.value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(seen.s[2].r.value_kind, ENPI_VALUE_NOT_FINITE);
    assert_int_equal(seen.s[3].r.value_kind, ENPI_VALUE_OK);
    assert_int_equal(seen.s[4].r.value_kind, ENPI_VALUE_OK);
    free(buf);
}

static void zero_timestamp_is_arrival_and_negative_is_kept(void **state)
{
    const rd_t rs[] = {{NULL, 0, 1}, {NULL, -1, 1}, {NULL, INT64_MIN, 1}, {NULL, 1, 1}};
    size_t len;
    uint8_t *buf = pack(rs, 4, &len);

    (void)state;
    assert_int_equal(decode(buf, len), 0);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.s[0].r.ts_kind, ENPI_TS_ARRIVAL);
    assert_int_equal(seen.s[1].r.ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.s[1].r.ts_ms == -1.0);
    assert_int_equal(seen.s[2].r.ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.s[2].r.ts_ms == (double)INT64_MIN);
    assert_int_equal(seen.s[3].r.ts_kind, ENPI_TS_EPOCH_MS);
    assert_true(seen.s[3].r.ts_ms == 1.0);
    free(buf);
}

static void id_with_a_nul_byte_is_invalid_not_shortened(void **state)
{
    /* Reading { meter_id: "f1/em\0x" } then Reading { meter_id: "f1/\xff" } */
    static const uint8_t bytes[] = {0x0a, 0x09, 0x0a, 0x07, 'f',  '1', '/', 'e', 'm', 0x00,
                                    'x',  0x0a, 0x06, 0x0a, 0x04, 'f', '1', '/', 0xff};

    (void)state;
    assert_int_equal(decode(bytes, sizeof(bytes)), 0);
    assert_int_equal(seen.n, 2);
    assert_true(seen.s[0].r.id_invalid);
    /* protobuf-c does not check UTF-8: the pipeline's id rule rejects it later */
    assert_false(seen.s[1].r.id_invalid);
    assert_int_equal(seen.s[1].r.id_len, 4);
}

/* Fuzz regression protobuf/leading_nul_meter_id: an id whose first byte is NUL is not
 * empty (which would take the topic's id) but invalid, like any id holding a NUL. */
static void id_starting_with_nul_is_invalid_not_empty(void **state)
{
    /* Reading { meter_id: "\0" }, Reading { meter_id: "\0f1/em" },
     * Reading { meter_id: "" } (explicitly on the wire), Reading { } */
    static const uint8_t bytes[] = {0x0a, 0x03, 0x0a, 0x01, 0x00, 0x0a, 0x08, 0x0a, 0x06, 0x00, 'f',
                                    '1',  '/',  'e',  'm',  0x0a, 0x02, 0x0a, 0x00, 0x0a, 0x00};

    (void)state;
    assert_int_equal(decode(bytes, sizeof(bytes)), 0);
    assert_int_equal(seen.n, 4);
    assert_true(seen.s[0].r.id_invalid);
    assert_non_null(seen.s[0].r.id);
    assert_true(seen.s[1].r.id_invalid);
    assert_non_null(seen.s[1].r.id);
    /* a truly empty id, on the wire or absent, still takes the topic's */
    assert_false(seen.s[2].r.id_invalid);
    assert_null(seen.s[2].r.id);
    assert_false(seen.s[3].r.id_invalid);
    assert_null(seen.s[3].r.id);
}

static void unknown_fields_are_skipped(void **state)
{
    /* batch field 2 (varint), Reading { field 4 varint, field 9 bytes "zz", value 2.0,
     * field 6 fixed32 } : a newer schema's extra fields */
    static const uint8_t bytes[] = {0x10, 0x07, 0x0a, 0x14, 0x20, 0x07, 0x4a, 0x02,
                                    'z',  'z',  0x19, 0,    0,    0,    0,    0,
                                    0,    0,    0x40, 0x35, 1,    2,    3,    4};

    (void)state;
    assert_int_equal(decode(bytes, sizeof(bytes)), 0);
    assert_int_equal(seen.n, 1);
    assert_true(seen.s[0].r.value == 2.0);
    assert_null(seen.s[0].r.id);
}

static void count_cb(void *ctx, const enpi_raw_reading_t *r)
{
    size_t *n = ctx;

    if (r->id == NULL && r->ts_kind == ENPI_TS_ARRIVAL && r->value == 0)
        (*n)++;
}

static void arena_serves_huge_medium_and_small_batches(void **state)
{
    size_t n_huge = 100000, n = 8000, len_huge, len;
    rd_t *rs = calloc(n_huge, sizeof(*rs));
    char(*ids)[16] = calloc(n, sizeof(*ids));
    uint8_t *huge, *medium;

    (void)state;
    assert_non_null(rs);
    assert_non_null(ids);
    /* 100000 empty Readings: 200 KB on the wire, several MiB unpacked */
    huge = pack(rs, n_huge, &len_huge);
    assert_int_equal(len_huge, 2 * n_huge);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "m%zu", i);
        rs[i].id = ids[i];
        rs[i].ts = 1522206000000 + (int64_t)i;
        rs[i].v = (double)i / 4;
    }
    medium = pack(rs, n, &len);
    assert_true(len < ENPI_PAYLOAD_MAX && len_huge < ENPI_PAYLOAD_MAX);
    for (int round = 0; round < 3; round++) {
        size_t counted = 0, slen;
        uint8_t *small;

        assert_int_equal(enpi_protobuf_decode(dec, huge, len_huge, count_cb, &counted), 0);
        assert_int_equal(counted, n_huge);
        assert_int_equal(decode(medium, len), 0);
        assert_int_equal(seen.n, n);
        for (size_t i = 0; i < n; i += 997) {
            assert_string_equal(seen.s[i].id, ids[i]);
            assert_true(seen.s[i].r.value == (double)i / 4);
            assert_true(seen.s[i].r.ts_ms == (double)(1522206000000 + (int64_t)i));
        }
        small = pack(rs + 5, 2, &slen);
        assert_int_equal(decode(small, slen), 0);
        assert_int_equal(seen.n, 2);
        assert_string_equal(seen.s[1].id, "m6");
        free(small);
    }
    free(medium);
    free(huge);
    free(ids);
    free(rs);
}

/* ---- through the pipeline ----------------------------------------------------------- */

static const char *const YAML =
    "timezone: UTC\n"
    "pipeline:\n"
    "  resolutions: [15m, 1h, 1d, 1mo]\n"
    "  allowed_lateness: 1h\n"
    "  max_future: 5m\n"
    "  max_gap: 1h\n"
    "inputs:\n"
    "  - topic: \"pb/{facility}/{meter}\"\n"
    "    meter_id: \"{facility}/{meter}\"\n"
    "    format: protobuf\n"
    "  - topic: \"pbgw/{site}\"\n"
    "    format: protobuf\n"
    "facilities:\n"
    "  - id: f1\n"
    "    meters:\n"
    "      - { id: f1/em, kind: energy, reading: cumulative, scale: 0.001 }\n"
    "      - { id: f1/gas, kind: energy, reading: delta, interval: 15m, to_kwh: 10.55 }\n"
    "      - { id: f1/prod, kind: production, reading: cumulative }\n";

static const int64_t A = INT64_C(1522206000000); /* arrival clock: 2018-03-28T03:00:00Z */

static enpi_config_t *cfg;

static int pipeline_setup(void **state)
{
    (void)state;
    cfg = config_from_yaml(YAML);
    return cfg == NULL;
}

static int pipeline_teardown(void **state)
{
    (void)state;
    enpi_config_free(cfg);
    return 0;
}

static void ingest_bytes(enpi_pipeline_t *p, const char *topic, const void *payload, size_t len,
                         int64_t arrival)
{
    static uint64_t seq;
    enpi_pipeline_ingest(p, seq++, topic, strlen(topic), payload, len, arrival, 0);
}

/* Ingests readings packed as one batch on topic, arriving at A. */
static void ingest_batch(enpi_pipeline_t *p, const char *topic, const rd_t *rs, size_t n)
{
    size_t len;
    uint8_t *buf = pack(rs, n, &len);
    ingest_bytes(p, topic, buf, len, A);
    free(buf);
}

/* The single reason one payload was rejected for, or ENPI_REJECT__COUNT when accepted. */
static enpi_reject_t one_bytes(enpi_pipeline_t *p, const char *topic, const void *payload,
                               size_t len)
{
    enpi_pipeline_stats_t before = *enpi_pipeline_stats(p);
    enpi_reject_t found = ENPI_REJECT__COUNT;

    ingest_bytes(p, topic, payload, len, A);
    for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
        uint64_t d = enpi_pipeline_stats(p)->rejects[r] - before.rejects[r];
        if (d > 1 || (d == 1 && found != ENPI_REJECT__COUNT))
            fail_msg("more than one reject");
        if (d == 1)
            found = (enpi_reject_t)r;
    }
    return found;
}

static enpi_reject_t one(enpi_pipeline_t *p, const char *topic, const char *id, int64_t ts,
                         double v)
{
    rd_t r = {id, ts, v};
    size_t len;
    uint8_t *buf = pack(&r, 1, &len);
    enpi_reject_t why = one_bytes(p, topic, buf, len);

    free(buf);
    return why;
}

static void topic_and_payload_ids_give_exact_rollups(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const int64_t t0 = utc_ms(2018, 3, 28, 2, 0, 0);
    const rd_t rs[] = {
        {NULL, t0, 1000000},                    /* f1/em from the topic, Wh */
        {"", t0 + 15 * MIN_MS, 1001500},        /* empty id: the topic's too */
        {"f1/prod", t0 + 5 * MIN_MS, 10},       /* another meter, from the payload */
        {"f1/prod", t0 + 35 * MIN_MS, 16},      /* 30 min: 1/3 in 15m window 1, ... */
        {"f1/gas", t0 + 30 * MIN_MS, 2},        /* delta over [t0+15m, t0+30m] */
        {"f1/em", t0 + 45 * MIN_MS, 1004500.5}, /* the topic's id, spelled out */
        {NULL, 0, 1005000.5},                   /* no timestamp: arrival A = t0 + 1h */
    };
    enpi_batch_t *b = NULL;

    (void)state;
    ingest_batch(p, "pb/f1/em", rs, sizeof(rs) / sizeof(rs[0]));
    assert_int_equal(enpi_pipeline_stats(p)->readings, 7);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 7);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->last_ts_ms, A);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_close(must_rollup(b, "f1/em", RES_15M, t0)->delta.value, 1.5);
    /* 3000.5 Wh over [t0+15m, t0+45m], half in each window */
    assert_close(must_rollup(b, "f1/em", RES_15M, t0 + 15 * MIN_MS)->delta.value, 1.50025);
    assert_close(must_rollup(b, "f1/em", RES_15M, t0 + 30 * MIN_MS)->delta.value, 1.50025);
    assert_close(must_rollup(b, "f1/em", RES_15M, t0 + 45 * MIN_MS)->delta.value, 0.5);
    assert_close(must_rollup(b, "f1/em", RES_1H, t0)->delta.value, 5.0005);
    assert_int_equal(must_rollup(b, "f1/em", RES_1H, t0)->delta.readings, 3);
    assert_close(must_rollup(b, "f1/prod", RES_15M, t0)->delta.value, 2);
    assert_close(must_rollup(b, "f1/prod", RES_15M, t0 + 15 * MIN_MS)->delta.value, 3);
    assert_close(must_rollup(b, "f1/prod", RES_15M, t0 + 30 * MIN_MS)->delta.value, 1);
    assert_close(must_rollup(b, "f1/gas", RES_15M, t0 + 15 * MIN_MS)->delta.value, 21.1);
    assert_close(must_rollup(b, "f1/gas", RES_1D, utc_ms(2018, 3, 28, 0, 0, 0))->delta.value, 21.1);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void value_and_timestamp_rejects_with_boundaries(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, "f1/em");
    enpi_batch_t *b = NULL;

    (void)state;
    assert_int_equal(one(p, "pb/f1/em", NULL, A, NAN), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, "pb/f1/em", NULL, A, INFINITY), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, "pb/f1/em", NULL, A, -INFINITY), ENPI_REJECT_NOT_FINITE);
    assert_int_equal(one(p, "pb/f1/em", NULL, A, -3), ENPI_REJECT_NEGATIVE);
    assert_int_equal(one(p, "pb/f1/em", NULL, A, -1e-300), ENPI_REJECT_NEGATIVE);
    /* 1999-12-31T23:59:59.999Z, and a negative timestamp */
    assert_int_equal(one(p, "pb/f1/em", NULL, 946684799999, 3), ENPI_REJECT_TOO_OLD);
    assert_int_equal(one(p, "pb/f1/em", NULL, -1, 3), ENPI_REJECT_TOO_OLD);
    assert_int_equal(one(p, "pb/f1/em", NULL, INT64_MIN, 3), ENPI_REJECT_TOO_OLD);
    /* 6 minutes ahead of the arrival clock, and 1 ms past max_future (5m) */
    assert_int_equal(one(p, "pb/f1/em", NULL, A + 6 * MIN_MS, 3), ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, "pb/f1/em", NULL, A + 5 * MIN_MS + 1, 3), ENPI_REJECT_FUTURE);
    assert_int_equal(one(p, "pb/f1/em", NULL, INT64_MAX, 3), ENPI_REJECT_FUTURE);
    assert_int_equal(st->rejected, 11);
    assert_false(st->has_state);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_rollups, 0);
    enpi_batch_free(b);

    /* the boundaries themselves: exactly 2000-01-01T00:00Z, exactly 5 minutes ahead */
    assert_int_equal(one(p, "pb/f1/em", "f1/prod", 946684800000, 3), ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/prod")->last_ts_ms, 946684800000);
    assert_int_equal(one(p, "pb/f1/em", NULL, A + 4 * MIN_MS, 3), ENPI_REJECT__COUNT);
    /* a register of 0 after 3 is a reset, not a rejection (proto3's absent value) */
    assert_int_equal(one(p, "pb/f1/em", NULL, A + 5 * MIN_MS, 0), ENPI_REJECT__COUNT);
    assert_int_equal(st->readings, 2);
    assert_int_equal(st->resets, 1);
    assert_int_equal(st->last_ts_ms, A + 5 * MIN_MS);
    enpi_pipeline_free(p);
}

/* Fuzz regressions under ingest/: the bounds of meter.h seen through ingest. A 24-year span
 * re-bases (a few rollups, not millions); amounts that overflow are implausible. */
static void long_spans_rebase_and_huge_amounts_are_implausible(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const int64_t y2000 = utc_ms(2000, 1, 1, 0, 0, 0), y2024 = utc_ms(2024, 5, 1, 0, 0, 0);
    const rd_t span[] = {{NULL, y2000, 100}, {NULL, y2024, 5000}};
    enpi_batch_t *b = NULL;
    size_t len;
    uint8_t *buf = pack(span, 2, &len);

    (void)state;
    ingest_bytes(p, "pb/f1/prod", buf, len, y2024 + 1000);
    free(buf);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 2);
    assert_int_equal(enpi_pipeline_stats(p)->resets, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/prod")->last_ts_ms, y2024);
    assert_true(enpi_pipeline_meter_state(p, "f1/prod")->last_raw == 5000);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    /* each reading counted in its own window at each of the 4 resolutions, nothing spread */
    assert_int_equal(b->n_rollups, 8);
    for (size_t i = 0; i < b->n_rollups; i++) {
        assert_true(b->rollups[i].delta.value == 0);
        assert_int_equal(b->rollups[i].delta.readings, 1);
    }
    assert_int_equal(
        must_rollup(b, "f1/prod", RES_1MO, utc_ms(2024, 5, 1, 0, 0, 0))->delta.readings, 1);
    enpi_batch_free(b);
    enpi_pipeline_free(p);

    p = pipeline_from(cfg);
    /* 1.7e308 m3 of gas x 10.55 overflows: implausible, nothing applied */
    assert_int_equal(one(p, "pb/f1/gas", NULL, A, 1.7e308), ENPI_REJECT_IMPLAUSIBLE);
    assert_false(enpi_pipeline_meter_state(p, "f1/gas")->has_state);
    /* two register steps of 1.7e308 around a reset within one window: both implausible */
    assert_int_equal(one(p, "pb/f1/prod", NULL, A - 4 * MIN_MS, 0), ENPI_REJECT__COUNT);
    assert_int_equal(one(p, "pb/f1/prod", NULL, A - 3 * MIN_MS, 1.7e308), ENPI_REJECT_IMPLAUSIBLE);
    assert_int_equal(one(p, "pb/f1/prod", NULL, A - 2 * MIN_MS, 0), ENPI_REJECT__COUNT);
    assert_int_equal(one(p, "pb/f1/prod", NULL, A - 1 * MIN_MS, 1.7e308), ENPI_REJECT_IMPLAUSIBLE);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_IMPLAUSIBLE], 3);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    for (size_t i = 0; i < b->n_rollups; i++)
        assert_true(isfinite(b->rollups[i].delta.value) && b->rollups[i].delta.value == 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void malformed_payloads_are_one_parse_error(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    static const uint8_t value_as_varint[] = {0x0a, 0x02, 0x18, 0x05};

    (void)state;
    assert_int_equal(one_bytes(p, "pb/f1/em", PROTOC_SAMPLE, sizeof(PROTOC_SAMPLE) - 3),
                     ENPI_REJECT_PARSE);
    assert_int_equal(one_bytes(p, "pb/f1/em", value_as_varint, sizeof(value_as_varint)),
                     ENPI_REJECT_PARSE);
    assert_int_equal(one_bytes(p, "pb/f1/em", "{\"value\": 1}", 12), ENPI_REJECT_PARSE);
    /* counted against the topic's meter */
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->rejected, 3);
    /* on a gateway topic there is no topic meter: counted, charged to none */
    assert_int_equal(one_bytes(p, "pbgw/site1", value_as_varint, sizeof(value_as_varint)),
                     ENPI_REJECT_PARSE);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 0);
    /* an empty payload is an empty batch: nothing to count */
    assert_int_equal(one_bytes(p, "pb/f1/em", "", 0), ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 0);
    enpi_pipeline_free(p);
}

/* A valid one-reading batch padded with an unknown length-delimited field to len bytes. */
static uint8_t *padded_batch(size_t len)
{
    uint8_t *buf = malloc(len);
    size_t head = sizeof(PROTOC_ONE), pad = len - head - 4; /* tag + 3-byte length */

    assert_non_null(buf);
    assert_true(pad < (1u << 21));
    memcpy(buf, PROTOC_ONE, head);
    buf[head] = 0x7a; /* field 15, length-delimited */
    buf[head + 1] = (uint8_t)(0x80 | (pad & 0x7f));
    buf[head + 2] = (uint8_t)(0x80 | ((pad >> 7) & 0x7f));
    buf[head + 3] = (uint8_t)(pad >> 14);
    memset(buf + head + 4, 0xab, pad);
    return buf;
}

static void payload_size_limit_is_256_kib(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    uint8_t *over = padded_batch(ENPI_PAYLOAD_MAX + 1), *exact = padded_batch(ENPI_PAYLOAD_MAX);

    (void)state;
    /* the padded batch is a well-formed one: the decoder alone takes it */
    assert_int_equal(decode(over, ENPI_PAYLOAD_MAX + 1), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(one_bytes(p, "pb/f1/em", over, ENPI_PAYLOAD_MAX + 1), ENPI_REJECT_TOO_LARGE);
    assert_int_equal(enpi_pipeline_stats(p)->readings, 0);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->rejected, 1);
    assert_int_equal(one_bytes(p, "pb/f1/em", exact, ENPI_PAYLOAD_MAX), ENPI_REJECT__COUNT);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 1);
    assert_true(enpi_pipeline_meter_state(p, "f1/em")->last_raw == 1234.567);
    free(over);
    free(exact);
    enpi_pipeline_free(p);
}

static void payload_ids_bad_and_unknown_are_counted(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    char long_id[ENPI_METER_ID_MAX + 2];
    static const uint8_t nul_id[] = {0x0a, 0x09, 0x0a, 0x07, 'f', '1', '/', 'e', 'm', 0x00, 'x'};
    enpi_batch_t *b = NULL;
    rd_t rs[] = {
        {"f1/em", A, 5},   {"f9/em", A, 1}, {"f9/em", A, 2},
        {"nobody", A, 3},  {NULL, A, 4}, /* no id on a gateway topic: bad id */
        {"f1/\xff", A, 4},               /* not UTF-8 */
        {"a\tb", A, 4},                  /* not printable */
        {long_id, A, 4},                 /* 129 bytes */
    };

    (void)state;
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    ingest_batch(p, "pbgw/site1", rs, sizeof(rs) / sizeof(rs[0]));
    assert_int_equal(enpi_pipeline_stats(p)->readings, 8);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 1);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_UNKNOWN_METER], 3);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_BAD_METER_ID], 4);
    /* an id with a NUL inside is not read as "f1/em" */
    assert_int_equal(one_bytes(p, "pbgw/site1", nul_id, sizeof(nul_id)), ENPI_REJECT_BAD_METER_ID);
    assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->readings, 1);
    /* nor is an id of one NUL byte read as empty, taking the topic's meter f1/em */
    {
        static const uint8_t lead_nul[] = {0x0a, 0x03, 0x0a, 0x01, 0x00};
        assert_int_equal(one_bytes(p, "pb/f1/em", lead_nul, sizeof(lead_nul)),
                         ENPI_REJECT_BAD_METER_ID);
        assert_int_equal(enpi_pipeline_meter_state(p, "f1/em")->readings, 1);
    }
    /* 128 bytes is a valid id, unknown here */
    long_id[ENPI_METER_ID_MAX] = '\0';
    assert_int_equal(one(p, "pbgw/site2", long_id, A, 1), ENPI_REJECT_UNKNOWN_METER);

    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, 3);
    for (size_t i = 0; i < b->n_unknown; i++) {
        const enpi_unknown_delta_t *u = &b->unknown[i];
        if (strcmp(u->meter_id, "f9/em") == 0) {
            assert_int_equal(u->count, 2);
            assert_string_equal(u->last_topic, "pbgw/site1");
        } else if (strcmp(u->meter_id, "nobody") == 0) {
            assert_int_equal(u->count, 1);
        } else {
            assert_int_equal(strlen(u->meter_id), ENPI_METER_ID_MAX);
            assert_string_equal(u->last_topic, "pbgw/site2");
        }
        assert_int_equal(u->last_seen_ms, A);
    }
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void flood_of_random_ids_keeps_the_unknown_table_bounded(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    size_t n = 5000;
    rd_t *rs = calloc(n, sizeof(*rs));
    char(*ids)[24] = calloc(n, sizeof(*ids));
    enpi_batch_t *b = NULL;

    (void)state;
    assert_non_null(rs);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "rnd/%zu", i * 7919 % 100003);
        rs[i] = (rd_t){ids[i], A, 1};
    }
    ingest_batch(p, "pbgw/flood", rs, n);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_UNKNOWN_METER], n);
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(b->n_unknown, ENPI_UNKNOWN_MAX);
    assert_int_equal(b->unknown_overflow, n - ENPI_UNKNOWN_MAX);
    enpi_batch_free(b);
    free(ids);
    free(rs);
    enpi_pipeline_free(p);
}

int main(void)
{
    const struct CMUnitTest decoder[] = {
        cmocka_unit_test(protoc_encoded_batch_gives_readings_in_order),
        cmocka_unit_test(protobuf_c_encoded_batch_round_trips),
        cmocka_unit_test(empty_payload_is_an_empty_batch),
        cmocka_unit_test(every_truncation_is_a_parse_error),
        cmocka_unit_test(wrong_wire_types_are_parse_errors),
        cmocka_unit_test(text_payloads_are_parse_errors),
        cmocka_unit_test(non_finite_values_are_reported),
        cmocka_unit_test(zero_timestamp_is_arrival_and_negative_is_kept),
        cmocka_unit_test(id_with_a_nul_byte_is_invalid_not_shortened),
        cmocka_unit_test(id_starting_with_nul_is_invalid_not_empty),
        cmocka_unit_test(unknown_fields_are_skipped),
        cmocka_unit_test(arena_serves_huge_medium_and_small_batches),
    };
    const struct CMUnitTest pipeline[] = {
        cmocka_unit_test(topic_and_payload_ids_give_exact_rollups),
        cmocka_unit_test(value_and_timestamp_rejects_with_boundaries),
        cmocka_unit_test(long_spans_rebase_and_huge_amounts_are_implausible),
        cmocka_unit_test(malformed_payloads_are_one_parse_error),
        cmocka_unit_test(payload_size_limit_is_256_kib),
        cmocka_unit_test(payload_ids_bad_and_unknown_are_counted),
        cmocka_unit_test(flood_of_random_ids_keeps_the_unknown_table_bounded),
    };
    int failed = 0;

    if (setup(NULL) != 0)
        return 1;
    failed += cmocka_run_group_tests_name("protobuf decoder", decoder, NULL, NULL);
    failed += cmocka_run_group_tests_name("protobuf through the pipeline", pipeline, pipeline_setup,
                                          pipeline_teardown);
    teardown(NULL);
    return failed != 0;
}
