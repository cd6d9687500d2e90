/*
 * test_store_sparkplug.c - what storage keeps for Sparkplug B: the 's' key of an edge
 * node's learned state, node records committed, replaced, deleted and read back in the
 * batch's one atomic write, a meter's dead_since_ms, and the whole crash story against a
 * real RocksDB: births committed, data left in the inbox, the process gone; a new
 * pipeline restored from the store replays the inbox to exact rollups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "storage.h"
#include "tmpdir.h"
#include "store_fixture.h"

#include "../pipeline/pipeline_testutil.h"
#include "../pipeline/sparkplug_testenc.h"

static int setup(void **state)
{
    return store_fixture_setup(state, "sparkplug");
}

/* ---- reading node records back ---- */

typedef struct {
    size_t n;
    char key[8][64];
    uint8_t state[8][64];
    size_t len[8];
} node_rows_t;

static int collect_node_cb(void *ctx, const char *key, const void *state, size_t len)
{
    node_rows_t *rows = ctx;
    assert_true(rows->n < 8 && strlen(key) < 64 && len <= 64);
    strcpy(rows->key[rows->n], key);
    if (len)
        memcpy(rows->state[rows->n], state, len);
    rows->len[rows->n] = len;
    rows->n++;
    return 0;
}

static node_rows_t read_nodes(enpi_store_t *st)
{
    node_rows_t rows = {0};
    assert_int_equal(enpi_store_sparkplug_nodes(st, collect_node_cb, &rows), 0);
    return rows;
}

/* ---- keys and records ---- */

static void node_keys_are_length_prefixed_in_their_own_range(void **state)
{
    (void)state;
    uint8_t key[ENPI_KEY_METER_MAX];
    const char *id;
    size_t id_len;
    size_t n = enpi_store_key_sparkplug(key, "plant/gw1", 9);
    assert_int_equal(n, 11);
    assert_int_equal(key[0], 's');
    assert_int_equal(key[1], 9);
    assert_memory_equal(key + 2, "plant/gw1", 9);
    assert_true(enpi_store_key_parse_id(key, n, ENPI_KEY_SPARKPLUG, &id, &id_len));
    assert_int_equal(id_len, 9);
    assert_memory_equal(id, "plant/gw1", 9);
    assert_false(enpi_store_key_parse_id(key, n, ENPI_KEY_METER, &id, &id_len));
    assert_int_equal(enpi_store_key_sparkplug(key, "", 0), 0);
    char big[ENPI_KEY_ID_MAX + 1];
    memset(big, 'x', sizeof big);
    assert_int_equal(enpi_store_key_sparkplug(key, big, sizeof big), 0);
}

static void meter_state_keeps_dead_since(void **state)
{
    (void)state;
    enpi_meter_state_t s = {.has_state = true, .last_ts_ms = 5, .dead_since_ms = 1522206001000};
    uint8_t buf[256];
    size_t n = enpi_store_rec_meter_encode(&s, buf);
    assert_int_equal(n, enpi_store_rec_meter_size(&s));
    enpi_meter_state_t out;
    assert_int_equal(enpi_store_rec_meter_decode(buf, n, &out), 0);
    assert_int_equal(out.dead_since_ms, 1522206001000);
    assert_int_equal(out.last_ts_ms, 5);
    enpi_meter_state_clear(&out);
    s.dead_since_ms = 0; /* alive: nothing written for it */
    assert_int_equal(enpi_store_rec_meter_size(&s) + 7, n);
}

/* ---- commits ---- */

static void node_records_are_committed_replaced_and_deleted(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_node_snapshot_t nodes[] = {
        {.key = "plant/gw10", .state = (const uint8_t *)"\x08\x01", .state_len = 2},
        {.key = "plant/gw1", .state = (const uint8_t *)"\x10\x01", .state_len = 2},
        {.key = "z/y", .state = (const uint8_t *)"", .state_len = 0}, /* an empty record */
    };
    enpi_batch_t b = {.nodes = nodes, .n_nodes = 3, .inbox_upto = 1};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    node_rows_t rows = read_nodes(st);
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.key[0], "z/y"); /* shorter keys first (length prefix) */
    assert_int_equal(rows.len[0], 0);
    assert_string_equal(rows.key[1], "plant/gw1");
    assert_memory_equal(rows.state[1], "\x10\x01", 2);
    assert_string_equal(rows.key[2], "plant/gw10");
    assert_memory_equal(rows.state[2], "\x08\x01", 2);

    enpi_node_snapshot_t next[] = {
        {.key = "plant/gw1", .state = (const uint8_t *)"\x18\x05", .state_len = 2},
        {.key = "plant/gw10", .state = NULL}, /* the node died */
        {.key = "never/stored", .state = NULL},
    };
    enpi_batch_t b2 = {.nodes = next, .n_nodes = 3, .inbox_upto = 2};
    assert_int_equal(enpi_store_commit(st, &b2), 0);
    enpi_store_close(st);

    st = open_primary(f->path);
    rows = read_nodes(st);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.key[0], "z/y");
    assert_string_equal(rows.key[1], "plant/gw1");
    assert_memory_equal(rows.state[1], "\x18\x05", 2);
    enpi_store_close(st);
}

static void node_records_fail_with_their_batch(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {{.meter_id = "m", .state = {.has_state = true}}};
    enpi_node_snapshot_t nodes[] = {
        {.key = "g/n", .state = (const uint8_t *)"\x08\x01", .state_len = 2}};
    enpi_batch_t b = {.meters = meters, .n_meters = 1, .nodes = nodes, .n_nodes = 1};
    enpi_store_inject_commit_failures(st, 1);
    assert_int_equal(enpi_store_commit(st, &b), ENPI_EIO);
    assert_int_equal(read_nodes(st).n, 0);
    assert_int_equal(enpi_store_commit(st, &b), 0); /* the retry writes it all */
    assert_int_equal(read_nodes(st).n, 1);

    enpi_node_snapshot_t bad[] = {{.key = "", .state = NULL}};
    enpi_batch_t b2 = {.meters = meters, .n_meters = 1, .nodes = bad, .n_nodes = 1};
    meters[0].state.readings = 9;
    assert_int_equal(enpi_store_commit(st, &b2), ENPI_EINVAL);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "m", &s), 0);
    assert_int_equal(s.readings, 0); /* nothing of the refused batch was written */
    enpi_meter_state_clear(&s);
    enpi_store_close(st);
}

/* ---- a restart of the daemon's data flow, without the daemon ---- */

static const char *const YAML = "timezone: UTC\n"
                                "pipeline:\n"
                                "  resolutions: [15m, 1h]\n"
                                "  allowed_lateness: 1h\n"
                                "  max_future: 5m\n"
                                "inputs:\n"
                                "  - topic: \"spBv1.0/#\"\n"
                                "    format: sparkplug\n"
                                "facilities:\n"
                                "  - id: f1\n"
                                "    meters:\n"
                                "      - { id: \"plant/gw1/Energy/Total kWh\", kind: energy }\n";
#define EN1 "plant/gw1/Energy/Total kWh"
static const int64_t T0 = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */

/* Appends one Sparkplug message to the inbox, then ingests it, as enpid's two threads do. */
static void deliver(enpi_store_t *st, enpi_pipeline_t *p, uint64_t seq, const char *topic,
                    int64_t ts, long long sp_seq, const sp_mdef_t *m, size_t n)
{
    uint8_t buf[512];
    size_t len = sp_encode(buf, sizeof buf, (uint64_t)ts, sp_seq, m, n);
    enpi_inbox_msg_t im = {.seq = seq,
                           .topic = topic,
                           .topic_len = strlen(topic),
                           .payload = buf,
                           .payload_len = len,
                           .arrival_ms = ts + 1000};
    assert_int_equal(enpi_store_inbox_append(st, &im), 0);
    enpi_pipeline_ingest(p, seq, topic, im.topic_len, buf, len, im.arrival_ms, 0);
}

static void commit_all(enpi_store_t *st, enpi_pipeline_t *p)
{
    enpi_batch_t *b = NULL;
    assert_int_equal(enpi_pipeline_take_batch(p, &b), 0);
    assert_int_equal(enpi_store_commit(st, b), 0);
    enpi_batch_free(b);
}

static int restore_meter_cb(void *ctx, const char *id, const enpi_meter_state_t *s)
{
    assert_int_equal(enpi_pipeline_restore(ctx, id, s), 0);
    return 0;
}

static int restore_node_cb(void *ctx, const char *key, const void *state, size_t len)
{
    assert_int_equal(enpi_pipeline_restore_sparkplug(ctx, key, state, len), 0);
    return 0;
}

static int replay_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    enpi_pipeline_ingest(ctx, m->seq, m->topic, m->topic_len, m->payload, m->payload_len,
                         m->arrival_ms, 0);
    return 0;
}

typedef struct {
    size_t n;
    enpi_stored_rollup_t r;
} one_rollup_t;

static int one_rollup_cb(void *ctx, const enpi_stored_rollup_t *r)
{
    one_rollup_t *one = ctx;
    one->r = *r;
    one->n++;
    return 0;
}

/* The stored window of EN1 at (res, start); fails the test when there is not exactly one. */
static enpi_stored_rollup_t one_rollup(enpi_store_t *st, uint32_t res, int64_t start)
{
    one_rollup_t one = {0};
    assert_int_equal(enpi_store_rollups(st, EN1, res, start, start + 1, one_rollup_cb, &one), 0);
    assert_int_equal(one.n, 1);
    return one.r;
}

static int count_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    (void)m;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t scan_inbox_count(enpi_store_t *st)
{
    size_t n = 0;
    assert_int_equal(enpi_store_inbox_scan(st, 0, UINT64_MAX, count_cb, &n), 0);
    return n;
}

static void a_restart_replays_sparkplug_data_by_alias_exactly(void **state)
{
    fixture_t *f = *state;
    enpi_log_max_level = ENPI_LOG_ERR;
    enpi_config_t *cfg = config_from_yaml(YAML);
    const sp_mdef_t birth[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = 4},
        {.name = "Energy/Total kWh", .alias = 1, .dt = SPT_DOUBLE, .kind = SPV_DOUBLE, .d = 1000},
    };
    const sp_mdef_t d15[] = {{.alias = 1, .kind = SPV_DOUBLE, .d = 1015}};
    const sp_mdef_t d30[] = {{.alias = 1, .kind = SPV_DOUBLE, .d = 1030}};
    const sp_mdef_t death[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = 4}};

    /* first life: the birth and one data message committed, two more only in the inbox */
    enpi_store_t *st = open_primary(f->path);
    enpi_pipeline_t *p = pipeline_from(cfg);
    deliver(st, p, 1, "spBv1.0/plant/NBIRTH/gw1", T0, 0, birth, 2);
    deliver(st, p, 2, "spBv1.0/plant/NDATA/gw1", T0 + 15 * MIN_MS, 1, d15, 1);
    commit_all(st, p);
    assert_int_equal(read_nodes(st).n, 1);
    deliver(st, p, 3, "spBv1.0/plant/NDATA/gw1", T0 + 30 * MIN_MS, 2, d30, 1);
    deliver(st, p, 4, "spBv1.0/plant/NDEATH/gw1", T0 + 40 * MIN_MS, -1, death, 1);
    enpi_pipeline_free(p); /* kill -9: nothing of messages 3 and 4 was committed */
    enpi_store_close(st);

    /* second life: restore, replay, commit */
    st = open_primary(f->path);
    p = pipeline_from(cfg);
    assert_int_equal(enpi_store_meter_states(st, restore_meter_cb, p), 0);
    assert_int_equal(enpi_store_sparkplug_nodes(st, restore_node_cb, p), 0);
    assert_int_equal(enpi_store_inbox_scan(st, 0, UINT64_MAX, replay_cb, p), 0);
    enpi_sparkplug_stats_t s;
    assert_true(enpi_pipeline_sparkplug_stats(p, &s));
    assert_int_equal(s.nodes_imported, 1);
    assert_int_equal(s.data_before_birth, 0);
    assert_int_equal(s.unresolved_metrics, 0);
    assert_int_equal(s.seq_gaps, 0);
    enpi_outbound_t *out;
    assert_int_equal(enpi_pipeline_take_outbox(p, &out), 0);
    commit_all(st, p);
    enpi_pipeline_free(p);

    /* exact: 15 kWh in each quarter, 30 in the hour, each reading counted once */
    enpi_stored_rollup_t r0 = one_rollup(st, RES_15M, T0);
    enpi_stored_rollup_t r1 = one_rollup(st, RES_15M, T0 + 15 * MIN_MS);
    enpi_stored_rollup_t h = one_rollup(st, RES_1H, T0);
    assert_close(r0.r.value, 15);
    assert_close(r1.r.value, 15);
    assert_close(h.r.value, 30);
    assert_int_equal(h.r.readings, 3);
    assert_int_equal(one_rollup(st, RES_15M, T0 + 30 * MIN_MS).r.readings, 1);
    /* the death was replayed too: the meter is dead, the node's record gone */
    enpi_meter_state_t ms;
    assert_int_equal(enpi_store_meter_state(st, EN1, &ms), 0);
    assert_int_equal(ms.dead_since_ms, T0 + 40 * MIN_MS + 1000);
    assert_true(ms.last_raw == 1030);
    enpi_meter_state_clear(&ms);
    assert_int_equal(read_nodes(st).n, 0);
    assert_int_equal(scan_inbox_count(st), 0);
    enpi_store_close(st);
    enpi_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(node_keys_are_length_prefixed_in_their_own_range),
        cmocka_unit_test(meter_state_keeps_dead_since),
        cmocka_unit_test_setup_teardown(node_records_are_committed_replaced_and_deleted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(node_records_fail_with_their_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(a_restart_replays_sparkplug_data_by_alias_exactly, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
