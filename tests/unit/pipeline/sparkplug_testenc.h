/*
 * sparkplug_testenc.h - a small Sparkplug B payload encoder for tests (header-only),
 * built on the protobuf-c code generated from proto/sparkplug_b.proto. Include after
 * <cmocka.h>; link enpi_proto.
 */
#ifndef ENPI_SPARKPLUG_TESTENC_H
#define ENPI_SPARKPLUG_TESTENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sparkplug_b.pb-c.h"

/* Sparkplug DataType codes used by the tests */
#define SPT_UINT64 8u
#define SPT_FLOAT 9u
#define SPT_DOUBLE 10u
#define SPT_BOOLEAN 11u

typedef enum { SPV_NONE, SPV_LONG, SPV_DOUBLE, SPV_FLOAT, SPV_BOOL } spv_kind_t;

/* One metric to encode. */
typedef struct {
    const char *name; /* NULL: no name */
    long long alias;  /* < 0: no alias */
    uint32_t dt;      /* 0: no datatype */
    spv_kind_t kind;
    uint64_t u;  /* SPV_LONG */
    double d;    /* SPV_DOUBLE, SPV_FLOAT */
    uint64_t ts; /* 0: no metric timestamp */
} sp_mdef_t;

/* Encodes a payload into buf; ts 0 omits the payload timestamp, seq < 0 omits seq. */
static inline size_t sp_encode(uint8_t *buf, size_t cap, uint64_t ts, long long seq,
                               const sp_mdef_t *defs, size_t n)
{
    Enpi__Sparkplug__V1__Payload p = ENPI__SPARKPLUG__V1__PAYLOAD__INIT;
    Enpi__Sparkplug__V1__Payload__Metric ms[16], *mp[16];

    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        Enpi__Sparkplug__V1__Payload__Metric m = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__INIT;

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
        switch (defs[i].kind) {
        case SPV_LONG:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_LONG_VALUE;
            m.long_value = defs[i].u;
            break;
        case SPV_DOUBLE:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE;
            m.double_value = defs[i].d;
            break;
        case SPV_FLOAT:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_FLOAT_VALUE;
            m.float_value = (float)defs[i].d;
            break;
        case SPV_BOOL:
            m.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
            m.boolean_value = 1;
            break;
        case SPV_NONE:
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
    assert_true(enpi__sparkplug__v1__payload__get_packed_size(&p) <= cap);
    return enpi__sparkplug__v1__payload__pack(&p, buf);
}

#endif
