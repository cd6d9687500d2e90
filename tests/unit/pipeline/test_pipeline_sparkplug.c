/*
 * test_pipeline_sparkplug.c - `format: sparkplug` through enpi_pipeline_ingest: births
 * and data by alias give exact rollups; unresolvable data queues a rebirth request in
 * the bounded outbox; deaths mark meters dead until their next reading; batches carry
 * the edge nodes' learned state, and a pipeline restored from a batch (the crash case)
 * replays data by alias exactly as the first pass did; Tahu-encoded payloads land; bad
 * topics and payloads are counted as rejects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enpi_error.h"
#include "log.h"
#include "pipeline_testutil.h"
#include "sparkplug_testenc.h"

#include "fixtures/sparkplug_tahu.h"

static const char *const YAML =
    "timezone: UTC\n"
    "pipeline:\n"
    "  resolutions: [15m, 1h, 1d]\n"
    "  allowed_lateness: 1h\n"
    "  max_future: 5m\n"
    "  max_gap: 1h\n"
    "inputs:\n"
    "  - topic: \"spBv1.0/#\"\n"
    "    format: sparkplug\n"
    "  - topic: \"enpi/{meter}\"\n"
    "facilities:\n"
    "  - id: f1\n"
    "    meters:\n"
    "      - { id: \"plant/gw1/Energy/Total kWh\", kind: energy }\n"
    "      - { id: \"plant/gw1/m7/kWh\", kind: energy }\n"
    "      - { id: \"plant/gw10/Energy/Total kWh\", kind: energy }\n"
    "      - { id: \"plant/gw2/Energy/Total kWh\", kind: energy }\n"
    "      - { id: \"enpi-test/edge1/Energy/Total kWh\", kind: energy }\n"
    "      - { id: \"enpi-test/edge1/meter1/kWh\", kind: energy, scale: 0.001 }\n";

#define EN1 "plant/gw1/Energy/Total kWh"
#define DEV7 "plant/gw1/m7/kWh"
#define EN10 "plant/gw10/Energy/Total kWh"
#define EN2 "plant/gw2/Energy/Total kWh"

static enpi_config_t *cfg;
static const int64_t T0 = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */
static uint64_t next_seq;                         /* inbox sequence numbers */

static int setup(void **state)
{
    (void)state;
    enpi_log_max_level = ENPI_LOG_ERR; /* rejects and rebirths would log */
    cfg = config_from_yaml(YAML);
    return cfg == NULL;
}

static int teardown(void **state)
{
    (void)state;
    enpi_config_free(cfg);
    return 0;
}

/* Ingests one Sparkplug message stamped ts (payload and metrics), arriving 1 s later. */
static void sp_msg(enpi_pipeline_t *p, const char *topic, int64_t ts, long long seq,
                   const sp_mdef_t *m, size_t n)
{
    uint8_t buf[1024];
    size_t len = sp_encode(buf, sizeof(buf), (uint64_t)ts, seq, m, n);

    enpi_pipeline_ingest(p, next_seq++, topic, strlen(topic), buf, len, ts + 1000, 0);
}

/* NBIRTH of plant/<node>: bdSeq, Energy/Total kWh (alias 1, Double), Power kW (alias 2). */
static void nbirth(enpi_pipeline_t *p, const char *node, int64_t ts, double kwh)
{
    char topic[64];
    const sp_mdef_t m[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = 1},
        {.name = "Node Control/Rebirth", .alias = 0, .dt = SPT_BOOLEAN, .kind = SPV_BOOL},
        {.name = "Energy/Total kWh", .alias = 1, .dt = SPT_DOUBLE, .kind = SPV_DOUBLE, .d = kwh},
        {.name = "Power kW", .alias = 2, .dt = SPT_FLOAT, .kind = SPV_FLOAT, .d = 4},
    };

    snprintf(topic, sizeof(topic), "spBv1.0/plant/NBIRTH/%s", node);
    sp_msg(p, topic, ts, 0, m, 4);
}

/* DBIRTH of plant/gw1/m7: kWh (alias 1, Double). */
static void dbirth_m7(enpi_pipeline_t *p, int64_t ts, long long seq, double kwh)
{
    const sp_mdef_t m[] = {
        {.name = "kWh", .alias = 1, .dt = SPT_DOUBLE, .kind = SPV_DOUBLE, .d = kwh}};

    sp_msg(p, "spBv1.0/plant/DBIRTH/gw1/m7", ts, seq, m, 1);
}

/* NDATA of plant/<node> with one value by alias, no name. */
static void ndata(enpi_pipeline_t *p, const char *node, int64_t ts, long long seq, long long alias,
                  double v)
{
    char topic[64];
    const sp_mdef_t m[] = {{.alias = alias, .kind = SPV_DOUBLE, .d = v}};

    snprintf(topic, sizeof(topic), "spBv1.0/plant/NDATA/%s", node);
    sp_msg(p, topic, ts, seq, m, 1);
}

static void death(enpi_pipeline_t *p, const char *topic, int64_t ts)
{
    const sp_mdef_t m[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = 1}};

    sp_msg(p, topic, ts, -1, m, strstr(topic, "NDEATH") != NULL ? 1 : 0);
}

static enpi_batch_t *take(enpi_pipeline_t *p)
{
    enpi_batch_t *b = NULL;

    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_non_null(b);
    return b;
}

static enpi_sparkplug_stats_t sp_stats(const enpi_pipeline_t *p)
{
    enpi_sparkplug_stats_t s;

    assert_true(enpi_pipeline_sparkplug_stats(p, &s));
    return s;
}

static int64_t dead_since(const enpi_pipeline_t *p, const char *meter)
{
    const enpi_meter_state_t *st = enpi_pipeline_meter_state(p, meter);

    assert_non_null(st);
    return st->dead_since_ms;
}

/* ---- tests ---- */

static void births_and_data_by_alias_give_exact_rollups(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_batch_t *b;

    (void)state;
    nbirth(p, "gw1", T0, 1000);
    ndata(p, "gw1", T0 + 30 * MIN_MS, 1, 1, 1030);
    b = take(p);
    /* 30 kWh over [03:00, 03:30]: 15 + 15 in the quarters, 30 in the hour and the day */
    assert_close(must_rollup(b, EN1, RES_15M, T0)->delta.value, 15);
    assert_close(must_rollup(b, EN1, RES_15M, T0 + 15 * MIN_MS)->delta.value, 15);
    assert_close(must_rollup(b, EN1, RES_1H, T0)->delta.value, 30);
    assert_close(must_rollup(b, EN1, RES_1D, T0 - 3 * HOUR_MS)->delta.value, 30);
    assert_int_equal(must_rollup(b, EN1, RES_1H, T0)->delta.readings, 2);
    assert_true(batch_meter(b, EN1)->state.last_raw == 1030);
    assert_true(batch_meter(b, EN1)->state.last_ts_ms == T0 + 30 * MIN_MS);
    /* Power kW is not configured: an unknown meter, listed with its Sparkplug id */
    assert_int_equal(b->n_unknown, 1);
    assert_string_equal(b->unknown[0].meter_id, "plant/gw1/Power kW");
    assert_string_equal(b->unknown[0].last_topic, "spBv1.0/plant/NBIRTH/gw1");
    assert_int_equal(sp_stats(p).births, 1);
    assert_int_equal(sp_stats(p).readings, 3);
    assert_int_equal(enpi_pipeline_stats(p)->applied, 2);
    assert_int_equal(enpi_pipeline_stats(p)->rejects[ENPI_REJECT_UNKNOWN_METER], 1);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void an_unresolved_alias_queues_a_rebirth_request(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_outbound_t *out = NULL;
    enpi_outbox_stats_t os;
    uint8_t want[ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX];
    size_t want_len = 0;
    const int64_t t = T0 + 15 * MIN_MS;

    (void)state;
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 0);
    nbirth(p, "gw1", T0, 1000);
    ndata(p, "gw1", t, 1, 99, 5); /* alias 99 was never born */
    assert_int_equal(sp_stats(p).unresolved_metrics, 1);
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 1);
    assert_string_equal(out[0].topic, "spBv1.0/plant/NCMD/gw1");
    assert_int_equal(out[0].topic_len, strlen("spBv1.0/plant/NCMD/gw1"));
    assert_int_equal(enpi_sparkplug_rebirth_payload(t + 1000, want, sizeof(want), &want_len), 0);
    assert_int_equal(out[0].payload_len, want_len);
    assert_memory_equal(out[0].payload, want, want_len); /* stamped with the arrival time */
    assert_int_equal(out[0].qos, 0);
    assert_false(out[0].retain);
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 0); /* taken means gone */

    /* data from a node never born asks too */
    ndata(p, "gw2", t, 5, 1, 5);
    assert_int_equal(sp_stats(p).data_before_birth, 1);
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 1);
    assert_string_equal(out[0].topic, "spBv1.0/plant/NCMD/gw2");
    enpi_pipeline_outbox_stats(p, &os);
    assert_int_equal(os.queued, 2);
    assert_int_equal(os.dropped, 0);
    assert_int_equal(os.pending, 0);
    enpi_pipeline_free(p);
}

static void the_outbox_keeps_the_newest_when_full(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_outbound_t *out = NULL;
    enpi_outbox_stats_t os;
    const size_t extra = 5;
    char node[32], want[64];

    (void)state;
    for (size_t i = 0; i < ENPI_OUTBOX_MAX + extra; i++) {
        snprintf(node, sizeof(node), "n%zu", i);
        ndata(p, node, T0, 0, 1, 1); /* each one never born: one request each */
    }
    enpi_pipeline_outbox_stats(p, &os);
    assert_int_equal(os.pending, ENPI_OUTBOX_MAX);
    assert_int_equal(os.dropped, extra);
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), ENPI_OUTBOX_MAX);
    snprintf(want, sizeof(want), "spBv1.0/plant/NCMD/n%zu", extra);
    assert_string_equal(out[0].topic, want);
    snprintf(want, sizeof(want), "spBv1.0/plant/NCMD/n%zu", (size_t)ENPI_OUTBOX_MAX + extra - 1);
    assert_string_equal(out[ENPI_OUTBOX_MAX - 1].topic, want);
    enpi_pipeline_free(p);
}

static void deaths_mark_meters_dead_until_their_next_reading(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_batch_t *b;
    const int64_t td = T0 + 10 * MIN_MS, tn = T0 + 20 * MIN_MS;

    (void)state;
    nbirth(p, "gw1", T0, 1000);
    dbirth_m7(p, T0, 1, 50);
    nbirth(p, "gw10", T0, 7);
    nbirth(p, "gw2", T0, 9);
    enpi_batch_free(take(p));
    assert_int_equal(dead_since(p, EN1), 0);

    death(p, "spBv1.0/plant/DDEATH/gw1/m7", td);
    assert_int_equal(dead_since(p, DEV7), td + 1000); /* the death's arrival */
    assert_int_equal(dead_since(p, EN1), 0);          /* the node lives on */
    death(p, "spBv1.0/plant/NDEATH/gw1", tn);
    assert_int_equal(dead_since(p, EN1), tn + 1000);
    assert_int_equal(dead_since(p, DEV7), td + 1000); /* the earliest death stays */
    assert_int_equal(dead_since(p, EN10), 0);         /* "plant/gw1/" is not a prefix of gw10 */
    assert_int_equal(dead_since(p, EN2), 0);
    b = take(p);
    assert_non_null(batch_meter(b, EN1));
    assert_int_equal(batch_meter(b, EN1)->state.dead_since_ms, tn + 1000);
    assert_int_equal(batch_meter(b, DEV7)->state.dead_since_ms, td + 1000);
    assert_null(batch_meter(b, EN10));
    enpi_batch_free(b);

    /* the rebirth's values are accepted readings: alive again; the device is not reborn */
    nbirth(p, "gw1", T0 + 30 * MIN_MS, 1010);
    assert_int_equal(dead_since(p, EN1), 0);
    assert_int_equal(dead_since(p, DEV7), td + 1000);
    dbirth_m7(p, T0 + 30 * MIN_MS, 1, 51);
    assert_int_equal(dead_since(p, DEV7), 0);
    b = take(p);
    assert_int_equal(batch_meter(b, DEV7)->state.dead_since_ms, 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

static void batches_carry_node_state_when_births_change_it(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    enpi_batch_t *b;

    (void)state;
    nbirth(p, "gw1", T0, 1000);
    b = take(p);
    assert_int_equal(b->n_nodes, 1);
    assert_string_equal(b->nodes[0].key, "plant/gw1");
    assert_non_null(b->nodes[0].state);
    assert_true(b->nodes[0].state_len > 0);
    enpi_batch_free(b);

    ndata(p, "gw1", T0 + MIN_MS, 1, 1, 1001); /* data changes no birth state */
    b = take(p);
    assert_int_equal(b->n_nodes, 0);
    assert_null(b->nodes);
    enpi_batch_free(b);
    assert_false(enpi_pipeline_dirty(p));

    dbirth_m7(p, T0 + 2 * MIN_MS, 2, 50);
    nbirth(p, "gw2", T0 + 2 * MIN_MS, 9);
    b = take(p);
    assert_int_equal(b->n_nodes, 2); /* one entry per node, oldest change first */
    assert_string_equal(b->nodes[0].key, "plant/gw1");
    assert_string_equal(b->nodes[1].key, "plant/gw2");
    enpi_batch_free(b);

    death(p, "spBv1.0/plant/NDEATH/gw2", T0 + 3 * MIN_MS);
    b = take(p);
    assert_int_equal(b->n_nodes, 1);
    assert_string_equal(b->nodes[0].key, "plant/gw2");
    assert_null(b->nodes[0].state); /* delete the stored record */
    assert_int_equal(b->nodes[0].state_len, 0);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
}

/* A fresh pipeline loaded from a batch as storage would keep it. */
static enpi_pipeline_t *restored_from(const enpi_batch_t *b, bool with_nodes)
{
    enpi_pipeline_t *p = pipeline_from(cfg);

    for (size_t i = 0; i < b->n_meters; i++)
        assert_int_equal(enpi_pipeline_restore(p, b->meters[i].meter_id, &b->meters[i].state), 0);
    for (size_t i = 0; with_nodes && i < b->n_nodes; i++)
        if (b->nodes[i].state != NULL)
            assert_int_equal(enpi_pipeline_restore_sparkplug(p, b->nodes[i].key, b->nodes[i].state,
                                                             b->nodes[i].state_len),
                             0);
    return p;
}

static void a_restored_pipeline_replays_data_by_alias_exactly(void **state)
{
    enpi_pipeline_t *a = pipeline_from(cfg), *b, *c;
    enpi_batch_t *committed, *ra, *rb, *rc;
    enpi_outbound_t *out;
    uint64_t replay_from;

    (void)state;
    /* first life: births and data committed, then two messages only in the inbox */
    nbirth(a, "gw1", T0, 1000);
    dbirth_m7(a, T0, 1, 50);
    ndata(a, "gw1", T0 + 15 * MIN_MS, 2, 1, 1015);
    committed = take(a);
    assert_int_equal(committed->n_nodes, 1);
    replay_from = next_seq;
    ndata(a, "gw1", T0 + 30 * MIN_MS, 3, 1, 1030);
    sp_msg(a, "spBv1.0/plant/DDATA/gw1/m7", T0 + 30 * MIN_MS, 4,
           (const sp_mdef_t[]){{.alias = 1, .kind = SPV_DOUBLE, .d = 58}}, 1);
    ra = take(a);
    enpi_pipeline_free(a); /* kill -9 before ra was committed */

    /* second life: restore what was committed, replay the inbox */
    b = restored_from(committed, true);
    next_seq = replay_from;
    ndata(b, "gw1", T0 + 30 * MIN_MS, 3, 1, 1030);
    sp_msg(b, "spBv1.0/plant/DDATA/gw1/m7", T0 + 30 * MIN_MS, 4,
           (const sp_mdef_t[]){{.alias = 1, .kind = SPV_DOUBLE, .d = 58}}, 1);
    rb = take(b);
    assert_close(must_rollup(rb, EN1, RES_15M, T0 + 15 * MIN_MS)->delta.value, 15);
    assert_close(must_rollup(rb, DEV7, RES_15M, T0 + 15 * MIN_MS)->delta.value, 4);
    assert_close(must_rollup(rb, DEV7, RES_15M, T0)->delta.value, 4);
    /* exactly what the first life would have committed */
    assert_int_equal(rb->n_rollups, ra->n_rollups);
    for (size_t i = 0; i < ra->n_rollups; i++) {
        const enpi_rollup_delta_t *x = &ra->rollups[i];
        const enpi_rollup_delta_t *y =
            must_rollup(rb, ra->meters[x->meter].meter_id, x->res_code, x->start);
        assert_true(x->delta.value == y->delta.value);
        assert_int_equal(x->delta.readings, y->delta.readings);
    }
    assert_int_equal(sp_stats(b).unresolved_metrics, 0);
    assert_int_equal(sp_stats(b).data_before_birth, 0);
    assert_int_equal(sp_stats(b).seq_gaps, 0); /* the record was taken after seq 2 */
    assert_int_equal(enpi_pipeline_take_outbox(b, &out), 0);

    /* without the node state the same replay loses the readings and asks for a rebirth */
    c = restored_from(committed, false);
    next_seq = replay_from;
    ndata(c, "gw1", T0 + 30 * MIN_MS, 3, 1, 1030);
    rc = take(c);
    assert_null(batch_rollup(rc, EN1, RES_15M, T0 + 15 * MIN_MS));
    assert_int_equal(sp_stats(c).data_before_birth, 1);
    assert_int_equal(enpi_pipeline_take_outbox(c, &out), 1);

    enpi_batch_free(committed);
    enpi_batch_free(ra);
    enpi_batch_free(rb);
    enpi_batch_free(rc);
    enpi_pipeline_free(b);
    enpi_pipeline_free(c);
}

static void restore_sparkplug_errors(void **state)
{
    enpi_config_t *plain = config_from_yaml("timezone: UTC\n"
                                            "inputs:\n"
                                            "  - topic: \"a/{meter}\"\n"
                                            "facilities:\n"
                                            "  - id: f1\n"
                                            "    meters:\n"
                                            "      - { id: m1, kind: energy }\n");
    enpi_pipeline_t *p = pipeline_from(plain), *q = pipeline_from(cfg);
    enpi_sparkplug_stats_t s;
    enpi_outbound_t *out = NULL;
    enpi_batch_t *b;

    (void)state;
    /* no sparkplug input: records are ignored, no stats, an empty outbox */
    assert_int_equal(enpi_pipeline_restore_sparkplug(p, "plant/gw1", "", 0), ENPI_ENOENT);
    assert_false(enpi_pipeline_sparkplug_stats(p, &s));
    assert_int_equal(s.messages, 0);
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 0);

    assert_int_equal(enpi_pipeline_restore_sparkplug(q, "plant", "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_pipeline_restore_sparkplug(q, "plant/gw1", "\xff", 1), ENPI_EPARSE);
    assert_true(enpi_pipeline_dirty(q)); /* the corrupt record is to be deleted */
    b = take(q);
    assert_int_equal(b->n_nodes, 1);
    assert_string_equal(b->nodes[0].key, "plant/gw1");
    assert_null(b->nodes[0].state);
    enpi_batch_free(b);
    enpi_pipeline_free(p);
    enpi_pipeline_free(q);
    enpi_config_free(plain);
}

static void bad_sparkplug_messages_are_rejects(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    char topic[256];
    const enpi_pipeline_stats_t *ps = enpi_pipeline_stats(p);

    (void)state;
    enpi_pipeline_ingest(p, next_seq++, "spBv1.0/plant/NDATA/gw1", 23, "\xff\xff", 2, T0, 0);
    ingest_str(p, next_seq++, "spBv1.0/plant/BOGUS/gw1", "", T0);
    ingest_str(p, next_seq++, "spBv1.0/plant", "", T0);
    assert_int_equal(ps->rejects[ENPI_REJECT_PARSE], 3);
    memset(topic, 0, sizeof(topic));
    memcpy(topic, "spBv1.0/", 8);
    memset(topic + 8, 'g', 130);
    memcpy(topic + 138, "/NDATA/gw1", 10);
    ingest_str(p, next_seq++, topic, "", T0);
    assert_int_equal(ps->rejects[ENPI_REJECT_BAD_METER_ID], 1);
    assert_int_equal(sp_stats(p).parse_errors, 3);
    assert_int_equal(sp_stats(p).bad_ids, 1);
    /* own rebirth requests, heard back through spBv1.0/#, are ignored quietly */
    ingest_str(p, next_seq++, "spBv1.0/plant/NCMD/gw1", "", T0);
    assert_int_equal(sp_stats(p).ignored, 1);
    assert_int_equal(ps->rejects[ENPI_REJECT_PARSE], 3);
    enpi_pipeline_free(p);
}

/* Payloads encoded by Eclipse Tahu's JavaScript library, through the whole pipeline. */
static void tahu_payloads_land_in_meter_states(void **state)
{
    enpi_pipeline_t *p = pipeline_from(cfg);
    const enpi_meter_state_t *st;

    (void)state;
    for (size_t i = 0; i < sizeof(tahu_fixtures) / sizeof(tahu_fixtures[0]); i++) {
        const tahu_fixture_t *f = &tahu_fixtures[i];
        enpi_pipeline_ingest(p, next_seq++, f->topic, strlen(f->topic), f->bytes, f->len,
                             INT64_C(1700000200000), 0);
    }
    st = enpi_pipeline_meter_state(p, "enpi-test/edge1/Energy/Total kWh");
    assert_true(st->has_state && st->last_raw == 1001.25);
    assert_int_equal(st->last_ts_ms, INT64_C(1700000060000));
    assert_int_equal(st->readings, 2);
    st = enpi_pipeline_meter_state(p, "enpi-test/edge1/meter1/kWh");
    assert_true(st->last_raw == 5000000123.0); /* UInt64 beyond 2^32, raw before scale */
    assert_int_equal(st->last_ts_ms, INT64_C(1700000120000));
    assert_int_equal(sp_stats(p).births, 2);
    assert_int_equal(sp_stats(p).unresolved_metrics, 0);
    enpi_pipeline_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(births_and_data_by_alias_give_exact_rollups),
        cmocka_unit_test(an_unresolved_alias_queues_a_rebirth_request),
        cmocka_unit_test(the_outbox_keeps_the_newest_when_full),
        cmocka_unit_test(deaths_mark_meters_dead_until_their_next_reading),
        cmocka_unit_test(batches_carry_node_state_when_births_change_it),
        cmocka_unit_test(a_restored_pipeline_replays_data_by_alias_exactly),
        cmocka_unit_test(restore_sparkplug_errors),
        cmocka_unit_test(bad_sparkplug_messages_are_rejects),
        cmocka_unit_test(tahu_payloads_land_in_meter_states),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
