/*
 * test_sparkplug.c - the Sparkplug B host state (pipeline/sparkplug.h): births teach
 * names, aliases and datatypes; data resolves to readings with the right value, sign and
 * timestamp; seq gaps, data before birth and unknown aliases are counted and ask for a
 * (rate-limited) rebirth; deaths forget and report; hostile bytes and topics are refused;
 * limits hold; and payloads encoded by Eclipse Tahu's JavaScript library decode.
 * Payloads are encoded here with the protobuf-c code generated from proto/sparkplug_b.proto.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "sparkplug.h"
#include "sparkplug_b.pb-c.h"

#include "fixtures/sparkplug_tahu.h"

typedef Enpi__Sparkplug__V1__Payload payload_t;
typedef Enpi__Sparkplug__V1__Payload__Metric pmetric_t;

#define T0 1700000000000ULL /* a payload timestamp (2023-11-14) */
#define ARRIVAL 1700000100000LL

enum {
    DT_INT8 = 1,
    DT_INT16,
    DT_INT32,
    DT_INT64,
    DT_UINT8,
    DT_UINT16,
    DT_UINT32,
    DT_UINT64,
    DT_FLOAT,
    DT_DOUBLE,
    DT_BOOLEAN,
    DT_STRING,
    DT_DATETIME,
    DT_TEXT
};

typedef enum { V_NONE, V_INT, V_LONG, V_FLOAT, V_DOUBLE, V_BOOL, V_STRING } vkind_t;

/* One metric to encode. */
typedef struct {
    const char *name; /* NULL: none */
    long long alias;  /* < 0: none */
    uint32_t dt;      /* 0: no datatype field */
    vkind_t kind;
    uint64_t u;  /* V_INT (low 32 bits), V_LONG */
    double d;    /* V_FLOAT, V_DOUBLE */
    uint64_t ts; /* 0: no metric timestamp */
    bool is_null;
} mdef_t;

/* Encodes a payload; seq < 0 omits it, ts 0 omits the payload timestamp. */
static size_t encode(uint8_t *buf, size_t cap, uint64_t ts, long long seq, const mdef_t *defs,
                     size_t n)
{
    payload_t p = ENPI__SPARKPLUG__V1__PAYLOAD__INIT;
    pmetric_t ms[16], *mp[16];
    size_t i, len;

    assert_true(n <= 16);
    for (i = 0; i < n; i++) {
        pmetric_t m = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__INIT;

        m.name = (char *)defs[i].name;
        if (defs[i].alias >= 0) {
            m.has_alias = 1;
            m.alias = (uint64_t)defs[i].alias;
        }
        if (defs[i].dt != 0) {
            m.has_datatype = 1;
            m.datatype = defs[i].dt;
        }
        if (defs[i].ts != 0) {
            m.has_timestamp = 1;
            m.timestamp = defs[i].ts;
        }
        if (defs[i].is_null) {
            m.has_is_null = 1;
            m.is_null = 1;
        }
        switch (defs[i].kind) {
        case V_INT:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_INT_VALUE;
            m.int_value = (uint32_t)defs[i].u;
            break;
        case V_LONG:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_LONG_VALUE;
            m.long_value = defs[i].u;
            break;
        case V_FLOAT:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_FLOAT_VALUE;
            m.float_value = (float)defs[i].d;
            break;
        case V_DOUBLE:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
            m.double_value = defs[i].d;
            break;
        case V_BOOL:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
            m.boolean_value = 1;
            break;
        case V_STRING:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_STRING_VALUE;
            m.string_value = (char *)"text";
            break;
        case V_NONE:
            break;
        }
        ms[i] = m;
        mp[i] = &ms[i];
    }
    if (ts != 0) {
        p.has_timestamp = 1;
        p.timestamp = ts;
    }
    if (seq >= 0) {
        p.has_seq = 1;
        p.seq = (uint64_t)seq;
    }
    p.n_metrics = n;
    p.metrics = mp;
    len = enpi__sparkplug__v1__payload__get_packed_size(&p);
    assert_true(len <= cap);
    return enpi__sparkplug__v1__payload__pack(&p, buf);
}

/* What the callbacks saw. */
#define MAX_SEEN 64
typedef struct {
    char id[MAX_SEEN][160];
    bool id_invalid[MAX_SEEN];
    enpi_value_kind_t kind[MAX_SEEN];
    double value[MAX_SEEN];
    enpi_ts_kind_t ts_kind[MAX_SEEN];
    double ts[MAX_SEEN];
    size_t n;
    char rebirth[8][64];
    size_t n_rebirth;
    char death[8][160];
    size_t n_death;
} seen_t;

static void on_reading(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    assert_true(s->n < MAX_SEEN);
    assert_false(r->malformed);
    if (r->id != NULL) {
        assert_true(r->id_len < sizeof(s->id[0]));
        memcpy(s->id[s->n], r->id, r->id_len);
        s->id[s->n][r->id_len] = '\0';
    } else {
        s->id[s->n][0] = '\0';
    }
    s->id_invalid[s->n] = r->id_invalid;
    s->kind[s->n] = r->value_kind;
    s->value[s->n] = r->value;
    s->ts_kind[s->n] = r->ts_kind;
    s->ts[s->n] = r->ts_ms;
    s->n++;
}

static void on_rebirth(void *ctx, const char *group, const char *node)
{
    seen_t *s = ctx;

    assert_true(s->n_rebirth < 8);
    snprintf(s->rebirth[s->n_rebirth++], sizeof(s->rebirth[0]), "%s|%s", group, node);
}

static void on_death(void *ctx, const char *prefix)
{
    seen_t *s = ctx;

    assert_true(s->n_death < 8);
    snprintf(s->death[s->n_death++], sizeof(s->death[0]), "%s", prefix);
}

typedef struct {
    enpi_sparkplug_t *sp;
    seen_t seen;
} fx_t;

static int setup_opts(void **state, const enpi_sparkplug_options_t *base)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    enpi_sparkplug_options_t opt;

    assert_non_null(fx);
    memset(&opt, 0, sizeof(opt));
    if (base != NULL)
        opt = *base;
    opt.rebirth_cb = on_rebirth;
    opt.death_cb = on_death;
    opt.cb_ctx = &fx->seen;
    assert_int_equal(enpi_sparkplug_create(&opt, &fx->sp), 0);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_opts(state, NULL);
}

static int teardown(void **state)
{
    fx_t *fx = *state;

    enpi_sparkplug_free(fx->sp);
    free(fx);
    return 0;
}

static int ingest_at(fx_t *fx, const char *topic, const uint8_t *buf, size_t len, int64_t arrival)
{
    return enpi_sparkplug_ingest(fx->sp, topic, strlen(topic), buf, len, arrival, on_reading,
                                 &fx->seen);
}

static int ingest(fx_t *fx, const char *topic, const uint8_t *buf, size_t len)
{
    return ingest_at(fx, topic, buf, len, ARRIVAL);
}

static const enpi_sparkplug_stats_t *st(fx_t *fx)
{
    return enpi_sparkplug_stats(fx->sp);
}

/* NBIRTH of plant/gw1: bdSeq, the rebirth control, two numeric metrics with aliases. */
static void birth_gw1(fx_t *fx)
{
    uint8_t buf[512];
    const mdef_t m[] = {
        {.name = "bdSeq", .alias = -1, .dt = DT_UINT64, .kind = V_LONG, .u = 3, .ts = T0},
        {.name = "Node Control/Rebirth", .alias = 0, .dt = DT_BOOLEAN, .kind = V_BOOL, .ts = T0},
        {.name = "Energy/Total",
         .alias = 1,
         .dt = DT_UINT64,
         .kind = V_LONG,
         .u = 123456,
         .ts = T0},
        {.name = "Power", .alias = 2, .dt = DT_FLOAT, .kind = V_FLOAT, .d = 1.5, .ts = T0},
    };
    size_t len = encode(buf, sizeof(buf), T0, 0, m, 4);

    assert_int_equal(ingest(fx, "spBv1.0/plant/NBIRTH/gw1", buf, len), 0);
}

static void nbirth_learns_and_emits_numeric_values(void **state)
{
    fx_t *fx = *state;

    birth_gw1(fx);
    assert_true(enpi_sparkplug_node_born(fx->sp, "plant", "gw1"));
    assert_false(enpi_sparkplug_node_born(fx->sp, "plant", "gw2"));
    assert_int_equal(st(fx)->births, 1);
    /* bdSeq gives no reading; the Boolean is counted and skipped */
    assert_int_equal(fx->seen.n, 2);
    assert_int_equal(st(fx)->non_numeric_skipped, 1);
    assert_string_equal(fx->seen.id[0], "plant/gw1/Energy/Total");
    assert_int_equal(fx->seen.kind[0], ENPI_VALUE_OK);
    assert_true(fx->seen.value[0] == 123456.0);
    assert_int_equal(fx->seen.ts_kind[0], ENPI_TS_EPOCH_MS);
    assert_true(fx->seen.ts[0] == (double)T0);
    assert_string_equal(fx->seen.id[1], "plant/gw1/Power");
    assert_true(fx->seen.value[1] == 1.5);
}

static void ndata_resolves_alias_and_name(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t by_alias[] = {
        {.alias = 1, .dt = DT_UINT64, .kind = V_LONG, .u = 123500, .ts = T0 + 1000}};
    const mdef_t by_name[] = {{.name = "Power",
                               .alias = -1,
                               .dt = DT_FLOAT,
                               .kind = V_FLOAT,
                               .d = 2.25,
                               .ts = T0 + 2000}};
    size_t len;

    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0 + 1000, 1, by_alias, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    len = encode(buf, sizeof(buf), T0 + 2000, 2, by_name, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(fx->seen.n, 2);
    assert_string_equal(fx->seen.id[0], "plant/gw1/Energy/Total");
    assert_true(fx->seen.value[0] == 123500.0);
    assert_true(fx->seen.ts[0] == (double)(T0 + 1000));
    assert_string_equal(fx->seen.id[1], "plant/gw1/Power");
    assert_true(fx->seen.value[1] == 2.25);
    assert_int_equal(st(fx)->seq_gaps, 0);
    assert_int_equal(st(fx)->unresolved_metrics, 0);
    assert_int_equal(st(fx)->rebirth_requests, 0);
}

static void dbirth_and_ddata_use_the_device_scope(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    /* alias 1 again: device aliases resolve within the device, even if a node reuses one */
    const mdef_t dbirth[] = {
        {.name = "kWh", .alias = 1, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 10.5, .ts = T0}};
    const mdef_t ddata[] = {{.alias = 1, .kind = V_DOUBLE, .d = 11.25, .ts = T0 + 60000}};
    size_t len;

    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 1, dbirth, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DBIRTH/gw1/meter-7", buf, len), 0);
    len = encode(buf, sizeof(buf), T0 + 60000, 2, ddata, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DDATA/gw1/meter-7", buf, len), 0);
    assert_int_equal(st(fx)->births, 2);
    assert_int_equal(fx->seen.n, 2);
    assert_string_equal(fx->seen.id[0], "plant/gw1/meter-7/kWh");
    assert_true(fx->seen.value[0] == 10.5);
    assert_string_equal(fx->seen.id[1], "plant/gw1/meter-7/kWh");
    assert_true(fx->seen.value[1] == 11.25);
    assert_true(fx->seen.ts[1] == (double)(T0 + 60000));
    /* the node's own alias 1 is still the node's metric */
    len = encode(buf, sizeof(buf), T0, 3,
                 (const mdef_t[]){{.alias = 1, .kind = V_LONG, .u = 7, .ts = T0}}, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_string_equal(fx->seen.id[2], "plant/gw1/Energy/Total");
}

static void metric_timestamp_then_payload_timestamp_then_arrival(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {
        {.alias = 1, .kind = V_LONG, .u = 1, .ts = T0 + 5},
        {.alias = 1, .kind = V_LONG, .u = 2},
    };
    size_t len;

    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0 + 9, 1, m, 2);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    len = encode(buf, sizeof(buf), 0, 2, &m[1], 1); /* no payload timestamp either */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(fx->seen.n, 3);
    assert_int_equal(fx->seen.ts_kind[0], ENPI_TS_EPOCH_MS);
    assert_true(fx->seen.ts[0] == (double)(T0 + 5));
    assert_int_equal(fx->seen.ts_kind[1], ENPI_TS_EPOCH_MS);
    assert_true(fx->seen.ts[1] == (double)(T0 + 9));
    assert_int_equal(fx->seen.ts_kind[2], ENPI_TS_ARRIVAL);
}

static void seq_gap_is_counted_and_asks_for_rebirth(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {{.alias = 1, .kind = V_LONG, .u = 5, .ts = T0}};
    size_t len;

    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 1, m, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(st(fx)->seq_gaps, 0);
    len = encode(buf, sizeof(buf), T0, 3, m, 1); /* seq 2 lost */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(st(fx)->seq_gaps, 1);
    assert_int_equal(st(fx)->rebirth_requests, 1);
    assert_int_equal(fx->seen.n_rebirth, 1);
    assert_string_equal(fx->seen.rebirth[0], "plant|gw1");
    assert_int_equal(fx->seen.n, 2);             /* the message's readings still count */
    len = encode(buf, sizeof(buf), T0, 4, m, 1); /* follows the message it resynced on */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(st(fx)->seq_gaps, 1);
}

static void seq_wraps_from_255_to_0(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {{.alias = 1, .kind = V_LONG, .u = 5, .ts = T0}};
    long long seq;
    size_t len;

    birth_gw1(fx);
    for (seq = 1; seq <= 300; seq++) {
        fx->seen.n = 0;
        len = encode(buf, sizeof(buf), T0, seq % 256, m, 1);
        assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    }
    assert_int_equal(st(fx)->seq_gaps, 0);
    len = encode(buf, sizeof(buf), T0, 256, m, 1); /* out of range: a gap */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(st(fx)->seq_gaps, 1);
}

static void data_before_birth_is_counted_and_asks_for_rebirth(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {{.alias = 1, .kind = V_LONG, .u = 5, .ts = T0}};
    size_t len = encode(buf, sizeof(buf), T0, 17, m, 1);

    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw9", buf, len), 0);
    assert_int_equal(st(fx)->data_before_birth, 1);
    assert_int_equal(fx->seen.n, 0);
    assert_int_equal(fx->seen.n_rebirth, 1);
    assert_string_equal(fx->seen.rebirth[0], "plant|gw9");
    assert_false(enpi_sparkplug_node_born(fx->sp, "plant", "gw9"));
    /* a DBIRTH before the NBIRTH is no better */
    assert_int_equal(ingest_at(fx, "spBv1.0/plant/DBIRTH/gw9/d1", buf, len, ARRIVAL + 6000), 0);
    assert_int_equal(st(fx)->data_before_birth, 2);
    assert_int_equal(st(fx)->births, 0);
    assert_int_equal(fx->seen.n_rebirth, 2);
    /* DDATA of a device that has no DBIRTH, on a born node */
    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 1, m, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DDATA/gw1/nodev", buf, len), 0);
    assert_int_equal(st(fx)->data_before_birth, 3);
    assert_int_equal(fx->seen.n, 0);
    assert_int_equal(fx->seen.n_rebirth, 3);
    assert_string_equal(fx->seen.rebirth[2], "plant|gw1");
}

static void unknown_alias_is_unresolved_and_asks_for_rebirth(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {
        {.alias = 99, .kind = V_LONG, .u = 5, .ts = T0},
        {.name = "Nope", .alias = -1, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 1, .ts = T0},
        {.alias = 2, .kind = V_FLOAT, .d = 3.5, .ts = T0},
    };
    size_t len;

    birth_gw1(fx);
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 1, m, 3);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(st(fx)->unresolved_metrics, 2);
    assert_int_equal(fx->seen.n, 1); /* the known one still reads */
    assert_string_equal(fx->seen.id[0], "plant/gw1/Power");
    assert_int_equal(st(fx)->rebirth_requests, 1); /* once per message */
    assert_int_equal(fx->seen.n_rebirth, 1);
}

static void non_numeric_and_null_metrics_are_counted_and_skipped(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[512];
    const mdef_t birth[] = {
        {.name = "Flag", .alias = 10, .dt = DT_BOOLEAN, .kind = V_BOOL, .ts = T0},
        {.name = "Label", .alias = 11, .dt = DT_STRING, .kind = V_STRING, .ts = T0},
        {.name = "When", .alias = 12, .dt = DT_DATETIME, .kind = V_LONG, .u = T0, .ts = T0},
        {.name = "kWh", .alias = 13, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 4, .ts = T0},
        {.name = "Declared", .alias = 14, .dt = DT_DOUBLE, .kind = V_NONE, .ts = T0},
    };
    const mdef_t data[] = {
        {.alias = 10, .kind = V_BOOL, .ts = T0},
        {.alias = 11, .kind = V_STRING, .ts = T0},
        {.alias = 13, .is_null = true, .ts = T0},
        {.alias = 13, .kind = V_STRING, .ts = T0}, /* a numeric metric without a number */
        {.alias = 14, .kind = V_DOUBLE, .d = 8, .ts = T0},
    };
    size_t len;

    len = encode(buf, sizeof(buf), T0, 0, birth, 5);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NBIRTH/gw2", buf, len), 0);
    assert_int_equal(st(fx)->non_numeric_skipped, 3);
    assert_int_equal(fx->seen.n, 1); /* kWh; "Declared" has no value yet */
    len = encode(buf, sizeof(buf), T0, 1, data, 5);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw2", buf, len), 0);
    assert_int_equal(st(fx)->non_numeric_skipped, 5);
    assert_int_equal(st(fx)->null_skipped, 1);
    assert_int_equal(fx->seen.n, 3);
    assert_string_equal(fx->seen.id[1], "plant/gw2/kWh");
    assert_int_equal(fx->seen.kind[1], ENPI_VALUE_MISSING);
    assert_string_equal(fx->seen.id[2], "plant/gw2/Declared");
    assert_true(fx->seen.value[2] == 8.0);
    assert_int_equal(st(fx)->rebirth_requests, 0);
}

static void integer_types_keep_their_sign_and_width(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[1024];
    const mdef_t birth[] = {
        /* Int8 -5 as sign-extended 32 bits (protobufjs) and as the 8-bit pattern */
        {.name = "i8a", .alias = 1, .dt = DT_INT8, .kind = V_INT, .u = 0xFFFFFFFBu, .ts = T0},
        {.name = "i8b", .alias = 2, .dt = DT_INT8, .kind = V_INT, .u = 0xFBu, .ts = T0},
        {.name = "i16", .alias = 3, .dt = DT_INT16, .kind = V_INT, .u = 0xFFFEu, .ts = T0},
        {.name = "i32",
         .alias = 4,
         .dt = DT_INT32,
         .kind = V_INT,
         .u = (uint32_t)-100000,
         .ts = T0},
        {.name = "i64", .alias = 5, .dt = DT_INT64, .kind = V_LONG, .u = (uint64_t)-1, .ts = T0},
        {.name = "u8", .alias = 6, .dt = DT_UINT8, .kind = V_INT, .u = 250, .ts = T0},
        {.name = "u16", .alias = 7, .dt = DT_UINT16, .kind = V_INT, .u = 65535, .ts = T0},
        /* UInt32 in long_value, as Tahu's JavaScript encoder sends it, and in int_value */
        {.name = "u32a", .alias = 8, .dt = DT_UINT32, .kind = V_LONG, .u = 4000000000u, .ts = T0},
        {.name = "u32b", .alias = 9, .dt = DT_UINT32, .kind = V_INT, .u = 4000000000u, .ts = T0},
        {.name = "u64", .alias = 10, .dt = DT_UINT64, .kind = V_LONG, .u = 1ULL << 60, .ts = T0},
        {.name = "f", .alias = 11, .dt = DT_FLOAT, .kind = V_FLOAT, .d = -0.5, .ts = T0},
        {.name = "nan", .alias = 12, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = NAN, .ts = T0},
        {.name = "inf", .alias = 13, .dt = DT_FLOAT, .kind = V_FLOAT, .d = INFINITY, .ts = T0},
    };
    const double want[] = {-5,  -5,    -2,           -100000,      -1,
                           250, 65535, 4000000000.0, 4000000000.0, 1152921504606846976.0,
                           -0.5};
    size_t len, i;

    len = encode(buf, sizeof(buf), T0, 0, birth, 13);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NBIRTH/gw3", buf, len), 0);
    assert_int_equal(fx->seen.n, 13);
    for (i = 0; i < 11; i++) {
        assert_int_equal(fx->seen.kind[i], ENPI_VALUE_OK);
        if (fx->seen.value[i] != want[i])
            fail_msg("%s: %.17g, want %.17g", fx->seen.id[i], fx->seen.value[i], want[i]);
    }
    assert_int_equal(fx->seen.kind[11], ENPI_VALUE_NOT_FINITE);
    assert_int_equal(fx->seen.kind[12], ENPI_VALUE_NOT_FINITE);
}

static void ndeath_forgets_aliases_and_reports_the_node(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t death[] = {
        {.name = "bdSeq", .alias = -1, .dt = DT_UINT64, .kind = V_LONG, .u = 3}};
    const mdef_t data[] = {{.alias = 1, .kind = V_LONG, .u = 5, .ts = T0}};
    size_t len;

    birth_gw1(fx);
    len = encode(buf, sizeof(buf), 0, -1, death, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDEATH/gw1", buf, len), 0);
    assert_int_equal(st(fx)->deaths, 1);
    assert_int_equal(fx->seen.n_death, 1);
    assert_string_equal(fx->seen.death[0], "plant/gw1/");
    assert_false(enpi_sparkplug_node_born(fx->sp, "plant", "gw1"));
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 1, data, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(fx->seen.n, 0);
    assert_int_equal(st(fx)->data_before_birth, 1);
    assert_int_equal(fx->seen.n_rebirth, 1);
    /* the node rebirths and its aliases work again */
    birth_gw1(fx);
    len = encode(buf, sizeof(buf), T0, 1, data, 1);
    fx->seen.n = 0;
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(fx->seen.n, 1);
    assert_string_equal(fx->seen.id[0], "plant/gw1/Energy/Total");
}

static void ndeath_of_an_older_session_is_ignored(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t death[] = {
        {.name = "bdSeq", .alias = -1, .dt = DT_UINT64, .kind = V_LONG, .u = 2}};
    size_t len;

    birth_gw1(fx); /* bdSeq 3 */
    len = encode(buf, sizeof(buf), 0, -1, death, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDEATH/gw1", buf, len), 0);
    assert_int_equal(st(fx)->stale_deaths, 1);
    assert_int_equal(st(fx)->deaths, 0);
    assert_int_equal(fx->seen.n_death, 0);
    assert_true(enpi_sparkplug_node_born(fx->sp, "plant", "gw1"));
}

static void ddeath_forgets_the_device_and_reports_it(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t dbirth[] = {
        {.name = "kWh", .alias = 5, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 1, .ts = T0}};
    const mdef_t ddata[] = {{.alias = 5, .kind = V_DOUBLE, .d = 2, .ts = T0}};
    size_t len;

    birth_gw1(fx);
    len = encode(buf, sizeof(buf), T0, 1, dbirth, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DBIRTH/gw1/m1", buf, len), 0);
    len = encode(buf, sizeof(buf), T0, 2, NULL, 0);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DDEATH/gw1/m1", buf, len), 0);
    assert_int_equal(st(fx)->deaths, 1);
    assert_int_equal(fx->seen.n_death, 1);
    assert_string_equal(fx->seen.death[0], "plant/gw1/m1/");
    assert_true(enpi_sparkplug_node_born(fx->sp, "plant", "gw1"));
    fx->seen.n = 0;
    len = encode(buf, sizeof(buf), T0, 3, ddata, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DDATA/gw1/m1", buf, len), 0);
    assert_int_equal(fx->seen.n, 0);
    assert_int_equal(st(fx)->data_before_birth, 1);
    assert_int_equal(st(fx)->seq_gaps, 0);
}

static void rebirth_request_encodes_the_specification_ncmd(void **state)
{
    uint8_t buf[ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX];
    char topic[64];
    size_t len = 0, tlen = 0;
    payload_t *p;

    (void)state;
    assert_int_equal(enpi_sparkplug_rebirth_payload((int64_t)T0, buf, sizeof(buf), &len), 0);
    p = enpi__sparkplug__v1__payload__unpack(NULL, len, buf);
    assert_non_null(p);
    assert_true(p->has_timestamp);
    assert_true(p->timestamp == T0);
    assert_false(p->has_seq); /* NCMD carries no seq */
    assert_int_equal(p->n_metrics, 1);
    assert_string_equal(p->metrics[0]->name, "Node Control/Rebirth");
    assert_true(p->metrics[0]->has_datatype);
    assert_int_equal(p->metrics[0]->datatype, DT_BOOLEAN);
    assert_int_equal(p->metrics[0]->value_case,
                     ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE);
    assert_true(p->metrics[0]->boolean_value);
    assert_true(p->metrics[0]->has_timestamp);
    assert_true(p->metrics[0]->timestamp == T0);
    enpi__sparkplug__v1__payload__free_unpacked(p, NULL);
    /* the largest timestamp still fits the documented buffer; a small one is refused */
    assert_int_equal(enpi_sparkplug_rebirth_payload(INT64_MAX, buf, sizeof(buf), &len), 0);
    assert_int_equal(enpi_sparkplug_rebirth_payload((int64_t)T0, buf, 10, &len), ENPI_ERANGE);
    assert_int_equal(enpi_sparkplug_rebirth_payload(-1, buf, sizeof(buf), &len), ENPI_EINVAL);

    assert_int_equal(enpi_sparkplug_rebirth_topic("plant", "gw1", topic, sizeof(topic), &tlen), 0);
    assert_string_equal(topic, "spBv1.0/plant/NCMD/gw1");
    assert_int_equal(tlen, strlen("spBv1.0/plant/NCMD/gw1"));
    assert_int_equal(enpi_sparkplug_rebirth_topic("plant", "gw1", topic, 22, NULL), ENPI_ERANGE);
    assert_int_equal(enpi_sparkplug_rebirth_topic("plant", "gw1", topic, 23, NULL), 0);
}

static void truncated_payloads_are_refused_without_state(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[512];
    const mdef_t m[] = {
        {.name = "Energy/Total", .alias = 1, .dt = DT_UINT64, .kind = V_LONG, .u = 99, .ts = T0},
    };
    size_t len = encode(buf, sizeof(buf), T0, 0, m, 1), cut, refused = 0;

    /* cut inside the metric: its length prefix promises more than there is */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NBIRTH/gw1", buf, len - 3), ENPI_EPARSE);
    assert_int_equal(st(fx)->parse_errors, 1);
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 0);
    assert_int_equal(fx->seen.n, 0);
    /* every prefix: refused or (at a field boundary) a shorter valid message, never a crash */
    for (cut = 0; cut < len; cut++)
        if (ingest(fx, "spBv1.0/plant/NBIRTH/gwx", buf, cut) == ENPI_EPARSE)
            refused++;
    assert_true(refused > len / 2);
    /* garbage */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", (const uint8_t *)"\xff\xff\xff", 3),
                     ENPI_EPARSE);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", (const uint8_t *)"{\"v\":1}", 7),
                     ENPI_EPARSE);
}

/* Payload { metrics { template_value { metrics { template_value ... } } } } */
static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;

    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Builds the nesting backwards from the end of buf, then moves it to the front. */
static size_t nest(uint8_t *buf, size_t cap, unsigned depth)
{
    size_t pos = cap, h;
    unsigned i;

    for (i = 0; i < depth; i++) {
        unsigned field = (i % 2 == 0) ? 18 : 2; /* Metric.template_value, Template.metrics */
        uint8_t hdr[20];

        h = put_varint(hdr, field << 3 | 2);
        h += put_varint(hdr + h, cap - pos);
        assert_true(pos >= h);
        pos -= h;
        memcpy(buf + pos, hdr, h);
    }
    memmove(buf, buf + pos, cap - pos);
    return cap - pos;
}

static void deep_nesting_is_refused_before_protobuf_c_recurses(void **state)
{
    fx_t *fx = *state;
    size_t cap = 200000, len;
    uint8_t *buf = malloc(cap);

    assert_non_null(buf);
    birth_gw1(fx);
    /* shallow nesting (a template inside a metric) is fine */
    len = nest(buf, cap, 6);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    len = nest(buf, cap, 40000); /* would overflow protobuf-c's recursion */
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), ENPI_EPARSE);
    free(buf);
}

static void rebirth_requests_are_rate_limited_per_node(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {{.alias = 99, .kind = V_LONG, .u = 5, .ts = T0}};
    size_t len;

    birth_gw1(fx);
    len = encode(buf, sizeof(buf), T0, -1, m, 1);
    assert_int_equal(ingest_at(fx, "spBv1.0/plant/NDATA/gw1", buf, len, ARRIVAL), 0);
    assert_int_equal(ingest_at(fx, "spBv1.0/plant/NDATA/gw1", buf, len, ARRIVAL + 4999), 0);
    assert_int_equal(st(fx)->unresolved_metrics, 2);
    assert_int_equal(st(fx)->rebirth_requests, 1);
    /* another node has its own budget */
    assert_int_equal(ingest_at(fx, "spBv1.0/plant/NDATA/other", buf, len, ARRIVAL + 4999), 0);
    assert_int_equal(st(fx)->rebirth_requests, 2);
    assert_int_equal(ingest_at(fx, "spBv1.0/plant/NDATA/gw1", buf, len, ARRIVAL + 5000), 0);
    assert_int_equal(st(fx)->rebirth_requests, 3);
    assert_int_equal(fx->seen.n_rebirth, 3);
    assert_string_equal(fx->seen.rebirth[1], "plant|other");
    assert_string_equal(fx->seen.rebirth[2], "plant|gw1");
}

static void topics_outside_the_namespace_are_refused_and_commands_ignored(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[256];
    const mdef_t m[] = {{.name = "x", .alias = 1, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 1}};
    size_t len = encode(buf, sizeof(buf), T0, 0, m, 1);
    static const char *const bad[] = {
        "spBv1.0",
        "spBv1.0/plant",
        "spBv1.0/plant/NBIRTH",
        "spAv1.0/plant/NBIRTH/gw1",
        "spBv1.0//NBIRTH/gw1",
        "spBv1.0/plant/NBIRTH/",
        "spBv1.0/plant/NBIRTH/gw1/d1",
        "spBv1.0/plant/DBIRTH/gw1",
        "spBv1.0/plant/NFOO/gw1",
        "spBv1.0/plant/DDATA/gw1/d1/x",
        "spBv1.0/plant/STATE",
        "enpi/f001/em1",
    };
    char longtopic[300];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ingest(fx, bad[i], buf, len) != ENPI_EPARSE)
            fail_msg("topic %s was not refused", bad[i]);
    assert_int_equal(st(fx)->parse_errors, sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(ingest(fx, "spBv1.0/plant/NCMD/gw1", buf, len), 0);
    assert_int_equal(ingest(fx, "spBv1.0/plant/DCMD/gw1/d1", buf, len), 0);
    assert_int_equal(ingest(fx, "spBv1.0/STATE/scada-host", (const uint8_t *)"{}", 2), 0);
    assert_int_equal(st(fx)->ignored, 3);
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 0);
    /* a NUL inside the topic */
    assert_int_equal(enpi_sparkplug_ingest(fx->sp, "spBv1.0/p\0x/NBIRTH/gw1", 22, buf, len, ARRIVAL,
                                           on_reading, &fx->seen),
                     ENPI_EPARSE);
    /* ids too long to make any meter id */
    memset(longtopic, 0, sizeof(longtopic));
    snprintf(longtopic, sizeof(longtopic), "spBv1.0/plant/NBIRTH/%0130d", 0);
    assert_int_equal(ingest(fx, longtopic, buf, len), ENPI_EINVAL);
    assert_int_equal(st(fx)->bad_ids, 1);
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 0);
}

static void long_metric_names_give_invalid_ids(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[512];
    char name[200];
    mdef_t m[] = {{.name = name, .alias = 4, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 1, .ts = T0}};
    size_t len;

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    len = encode(buf, sizeof(buf), T0, 0, m, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NBIRTH/gw1", buf, len), 0);
    m[0].name = NULL;
    len = encode(buf, sizeof(buf), T0, 1, m, 1);
    assert_int_equal(ingest(fx, "spBv1.0/plant/NDATA/gw1", buf, len), 0);
    assert_int_equal(fx->seen.n, 2);
    assert_true(fx->seen.id_invalid[0]);
    assert_true(fx->seen.id_invalid[1]);
    assert_int_equal(st(fx)->unresolved_metrics, 0);
}

static int setup_small(void **state)
{
    enpi_sparkplug_options_t opt;

    memset(&opt, 0, sizeof(opt));
    opt.max_nodes = 2;
    opt.max_node_metrics = 3;
    return setup_opts(state, &opt);
}

static void limits_bound_nodes_and_metrics(void **state)
{
    fx_t *fx = *state;
    uint8_t buf[512];
    const mdef_t birth[] = {
        {.name = "a", .alias = 1, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 1, .ts = T0},
        {.name = "b", .alias = 2, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 2, .ts = T0},
        {.name = "c", .alias = 3, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 3, .ts = T0},
        {.name = "d", .alias = 4, .dt = DT_DOUBLE, .kind = V_DOUBLE, .d = 4, .ts = T0},
    };
    const mdef_t data[] = {{.alias = 4, .kind = V_DOUBLE, .d = 5, .ts = T0}};
    size_t len;

    len = encode(buf, sizeof(buf), T0, 0, birth, 4);
    assert_int_equal(ingest(fx, "spBv1.0/g/NBIRTH/n1", buf, len), 0);
    assert_int_equal(st(fx)->metrics_full, 1);
    assert_int_equal(fx->seen.n, 3);
    /* the metric left out cannot resolve; no rebirth loop for a node we cannot hold */
    len = encode(buf, sizeof(buf), T0, 1, data, 1);
    assert_int_equal(ingest(fx, "spBv1.0/g/NDATA/n1", buf, len), 0);
    assert_int_equal(st(fx)->unresolved_metrics, 1);
    assert_int_equal(st(fx)->rebirth_requests, 0);
    /* nodes: data from an unknown node takes an (unborn) slot, a birth may evict it */
    assert_int_equal(ingest(fx, "spBv1.0/g/NDATA/n2", buf, len), 0);
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 2);
    len = encode(buf, sizeof(buf), T0, 0, birth, 1);
    assert_int_equal(ingest(fx, "spBv1.0/g/NBIRTH/n3", buf, len), 0);
    assert_true(enpi_sparkplug_node_born(fx->sp, "g", "n3"));
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 2);
    /* now both are born: a third node is counted and dropped */
    assert_int_equal(ingest(fx, "spBv1.0/g/NBIRTH/n4", buf, len), 0);
    assert_false(enpi_sparkplug_node_born(fx->sp, "g", "n4"));
    assert_int_equal(st(fx)->nodes_full, 1);
    assert_int_equal(enpi_sparkplug_node_count(fx->sp), 2);
    /* a device takes a slot of its node's budget */
    len = encode(buf, sizeof(buf), T0, 1, birth, 2);
    assert_int_equal(ingest(fx, "spBv1.0/g/DBIRTH/n3/d", buf, len), 0);
    assert_int_equal(st(fx)->metrics_full, 2);
}

/* The bytes Eclipse Tahu's sparkplug-payload (JavaScript) encoded: see
 * tests/integration/sparkplug_edge.js, which wrote fixtures/sparkplug_tahu.h. */
static void tahu_javascript_payloads_decode(void **state)
{
    fx_t *fx = *state;
    size_t i;

    for (i = 0; i < sizeof(tahu_fixtures) / sizeof(tahu_fixtures[0]); i++) {
        const tahu_fixture_t *f = &tahu_fixtures[i];
        size_t before = fx->seen.n;

        if (ingest(fx, f->topic, f->bytes, f->len) != 0)
            fail_msg("%s refused", f->topic);
        if (fx->seen.n - before != f->n_readings)
            fail_msg("%s: %zu readings, want %zu", f->topic, fx->seen.n - before, f->n_readings);
    }
    for (i = 0; i < sizeof(tahu_readings) / sizeof(tahu_readings[0]); i++) {
        assert_true(i < fx->seen.n);
        assert_string_equal(fx->seen.id[i], tahu_readings[i].id);
        assert_int_equal(fx->seen.kind[i], ENPI_VALUE_OK);
        if (fx->seen.value[i] != tahu_readings[i].value)
            fail_msg("%s: %.17g, want %.17g", tahu_readings[i].id, fx->seen.value[i],
                     tahu_readings[i].value);
        assert_true(fx->seen.ts[i] == tahu_readings[i].ts_ms);
    }
    assert_int_equal(fx->seen.n, sizeof(tahu_readings) / sizeof(tahu_readings[0]));
    assert_int_equal(st(fx)->births, 2);
    assert_int_equal(st(fx)->seq_gaps, 0);
    assert_int_equal(st(fx)->unresolved_metrics, 0);
    assert_int_equal(st(fx)->rebirth_requests, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nbirth_learns_and_emits_numeric_values, setup, teardown),
        cmocka_unit_test_setup_teardown(ndata_resolves_alias_and_name, setup, teardown),
        cmocka_unit_test_setup_teardown(dbirth_and_ddata_use_the_device_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(metric_timestamp_then_payload_timestamp_then_arrival, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(seq_gap_is_counted_and_asks_for_rebirth, setup, teardown),
        cmocka_unit_test_setup_teardown(seq_wraps_from_255_to_0, setup, teardown),
        cmocka_unit_test_setup_teardown(data_before_birth_is_counted_and_asks_for_rebirth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unknown_alias_is_unresolved_and_asks_for_rebirth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(non_numeric_and_null_metrics_are_counted_and_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(integer_types_keep_their_sign_and_width, setup, teardown),
        cmocka_unit_test_setup_teardown(ndeath_forgets_aliases_and_reports_the_node, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ndeath_of_an_older_session_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(ddeath_forgets_the_device_and_reports_it, setup, teardown),
        cmocka_unit_test(rebirth_request_encodes_the_specification_ncmd),
        cmocka_unit_test_setup_teardown(truncated_payloads_are_refused_without_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(deep_nesting_is_refused_before_protobuf_c_recurses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rebirth_requests_are_rate_limited_per_node, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            topics_outside_the_namespace_are_refused_and_commands_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(long_metric_names_give_invalid_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(limits_bound_nodes_and_metrics, setup_small, teardown),
        cmocka_unit_test_setup_teardown(tahu_javascript_payloads_decode, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
