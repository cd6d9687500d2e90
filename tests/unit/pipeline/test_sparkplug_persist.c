/*
 * test_sparkplug_persist.c - persistence of the Sparkplug host's learned state
 * (sparkplug.h "Persistence"): which messages count as changes, export/import round
 * trips that resolve aliases exactly as the births did (Tahu-encoded payloads included),
 * the seq a record carries, refusal of bad keys and records, and that the node table
 * never evicts a node whose record deletion is still pending.
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
#include "sparkplug.h"
#include "sparkplug_testenc.h"
#include "store.pb-c.h"

#include "fixtures/sparkplug_tahu.h"

#define T0 1700000000000ULL
#define ARRIVAL 1700000100000LL

/* ---- what the callbacks saw ---- */

#define MAX_SEEN 32
typedef struct {
    char id[MAX_SEEN][160];
    double value[MAX_SEEN];
    double ts[MAX_SEEN];
    size_t n;
    size_t n_rebirth;
} seen_t;

static void on_reading(void *ctx, const enpi_raw_reading_t *r)
{
    seen_t *s = ctx;

    assert_true(s->n < MAX_SEEN);
    assert_non_null(r->id);
    assert_true(r->id_len < sizeof(s->id[0]));
    memcpy(s->id[s->n], r->id, r->id_len);
    s->id[s->n][r->id_len] = '\0';
    s->value[s->n] = r->value;
    s->ts[s->n] = r->ts_ms;
    s->n++;
}

static void on_rebirth(void *ctx, const char *group, const char *node)
{
    seen_t *s = ctx;

    (void)group;
    (void)node;
    s->n_rebirth++;
}

/* ---- what enpi_sparkplug_changes reported ---- */

typedef struct {
    size_t n;
    char key[8][64];
    bool has_state[8];
    uint8_t state[8][1024];
    size_t len[8];
} changes_t;

static int on_change(void *ctx, const char *key, size_t key_len, const uint8_t *state,
                     size_t state_len)
{
    changes_t *c = ctx;

    assert_true(c->n < 8 && key_len < sizeof(c->key[0]) && state_len <= sizeof(c->state[0]));
    memcpy(c->key[c->n], key, key_len);
    c->key[c->n][key_len] = '\0';
    c->has_state[c->n] = state != NULL;
    if (state_len > 0)
        memcpy(c->state[c->n], state, state_len);
    c->len[c->n] = state_len;
    c->n++;
    return 0;
}

static changes_t changes(enpi_sparkplug_t *sp)
{
    changes_t c;

    memset(&c, 0, sizeof(c));
    assert_int_equal(enpi_sparkplug_changes(sp, on_change, &c), 0);
    return c;
}

/* ---- hosts ---- */

typedef struct {
    enpi_sparkplug_t *sp;
    seen_t seen;
} host_t;

static host_t *host_new(size_t max_nodes)
{
    host_t *h = calloc(1, sizeof(*h));
    enpi_sparkplug_options_t opt;

    assert_non_null(h);
    memset(&opt, 0, sizeof(opt));
    opt.max_nodes = max_nodes;
    opt.rebirth_cb = on_rebirth;
    opt.cb_ctx = &h->seen;
    assert_int_equal(enpi_sparkplug_create(&opt, &h->sp), 0);
    return h;
}

static void host_free(host_t *h)
{
    enpi_sparkplug_free(h->sp);
    free(h);
}

static int sp_send(host_t *h, const char *topic, long long seq, const sp_mdef_t *m, size_t n)
{
    uint8_t buf[1024];
    size_t len = sp_encode(buf, sizeof(buf), T0, seq, m, n);

    return enpi_sparkplug_ingest(h->sp, topic, strlen(topic), buf, len, ARRIVAL, on_reading,
                                 &h->seen);
}

static void nbirth(host_t *h, const char *node, long long bdseq)
{
    char topic[96];
    const sp_mdef_t m[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = (uint64_t)bdseq},
        {.name = "Energy/Total", .alias = 1, .dt = SPT_DOUBLE, .kind = SPV_DOUBLE, .d = 100},
        {.name = "Power", .alias = 2, .dt = SPT_FLOAT, .kind = SPV_FLOAT, .d = 1.5},
    };

    snprintf(topic, sizeof(topic), "spBv1.0/plant/NBIRTH/%s", node);
    assert_int_equal(sp_send(h, topic, 0, m, 3), 0);
}

static void dbirth(host_t *h, const char *node, const char *dev, long long seq)
{
    char topic[96];
    const sp_mdef_t m[] = {
        {.name = "kWh", .alias = 1, .dt = SPT_DOUBLE, .kind = SPV_DOUBLE, .d = 7},
        {.name = "Voltage", .alias = 5, .dt = SPT_FLOAT, .kind = SPV_FLOAT, .d = 230},
    };

    snprintf(topic, sizeof(topic), "spBv1.0/plant/DBIRTH/%s/%s", node, dev);
    assert_int_equal(sp_send(h, topic, seq, m, 2), 0);
}

static void ndeath(host_t *h, const char *node, long long bdseq)
{
    char topic[96];
    const sp_mdef_t m[] = {
        {.name = "bdSeq", .alias = -1, .dt = SPT_UINT64, .kind = SPV_LONG, .u = (uint64_t)bdseq}};

    snprintf(topic, sizeof(topic), "spBv1.0/plant/NDEATH/%s", node);
    assert_int_equal(sp_send(h, topic, -1, m, 1), 0);
}

/* NDATA (or DDATA when dev != NULL) with one value by alias. */
static void data_alias(host_t *h, const char *node, const char *dev, long long seq, long long alias,
                       double v)
{
    char topic[96];
    const sp_mdef_t m[] = {{.alias = alias, .kind = SPV_DOUBLE, .d = v}};

    if (dev != NULL)
        snprintf(topic, sizeof(topic), "spBv1.0/plant/DDATA/%s/%s", node, dev);
    else
        snprintf(topic, sizeof(topic), "spBv1.0/plant/NDATA/%s", node);
    assert_int_equal(sp_send(h, topic, seq, m, 1), 0);
}

static void export_into(host_t *from, host_t *to, const char *key)
{
    uint8_t *state = NULL;
    size_t len = 0;

    assert_int_equal(enpi_sparkplug_export_node(from->sp, key, strlen(key), &state, &len), 0);
    assert_int_equal(enpi_sparkplug_import_node(to->sp, key, strlen(key), state, len), 0);
    free(state);
}

/* ---- tests ---- */

static void births_and_deaths_are_changes_data_is_not(void **state)
{
    host_t *h = host_new(0);
    changes_t c;

    (void)state;
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 0);
    nbirth(h, "gw1", 3);
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 1);
    c = changes(h->sp);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.key[0], "plant/gw1");
    assert_true(c.has_state[0] && c.len[0] > 0);
    /* reporting changes nothing: a retry sees the same */
    assert_int_equal(changes(h->sp).n, 1);
    enpi_sparkplug_changes_done(h->sp);
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 0);

    data_alias(h, "gw1", NULL, 1, 1, 101);
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 0);
    dbirth(h, "gw1", "m7", 2);
    assert_int_equal(changes(h->sp).n, 1);
    enpi_sparkplug_changes_done(h->sp);
    data_alias(h, "gw1", "m7", 3, 1, 8);
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 0);

    ndeath(h, "gw1", 3);
    c = changes(h->sp);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.key[0], "plant/gw1");
    assert_false(c.has_state[0]); /* the stored record is to be deleted */
    assert_int_equal(c.len[0], 0);
    enpi_sparkplug_changes_done(h->sp);
    /* a second death of a node already dead (and deleted) is no change */
    ndeath(h, "gw1", 3);
    assert_int_equal(changes(h->sp).n, 0);
    host_free(h);
}

static void a_node_born_and_dead_before_any_store_reports_nothing(void **state)
{
    host_t *h = host_new(0);

    (void)state;
    nbirth(h, "gw1", 1);
    ndeath(h, "gw1", 1);
    assert_int_equal(changes(h->sp).n, 0);
    enpi_sparkplug_changes_done(h->sp);
    assert_int_equal(enpi_sparkplug_changes_pending(h->sp), 0);
    host_free(h);
}

static void an_imported_node_resolves_aliases_like_the_original(void **state)
{
    host_t *a = host_new(0), *b = host_new(0);
    uint8_t *ea = NULL, *eb = NULL;
    size_t la = 0, lb = 0;

    (void)state;
    nbirth(a, "gw1", 3);
    dbirth(a, "gw1", "m7", 1);
    export_into(a, b, "plant/gw1");
    assert_true(enpi_sparkplug_node_born(b->sp, "plant", "gw1"));
    assert_int_equal(enpi_sparkplug_stats(b->sp)->nodes_imported, 1);
    assert_int_equal(enpi_sparkplug_stats(b->sp)->births, 0);
    assert_int_equal(b->seen.n, 0); /* an import emits no reading */
    /* an import is what the store holds already: no change to report */
    assert_int_equal(enpi_sparkplug_changes_pending(b->sp), 0);

    data_alias(b, "gw1", NULL, 2, 1, 101.5);
    data_alias(b, "gw1", NULL, 3, 2, 2.5);
    data_alias(b, "gw1", "m7", 4, 1, 9);
    data_alias(b, "gw1", "m7", 5, 5, 231);
    assert_int_equal(b->seen.n, 4);
    assert_string_equal(b->seen.id[0], "plant/gw1/Energy/Total");
    assert_true(b->seen.value[0] == 101.5);
    assert_string_equal(b->seen.id[1], "plant/gw1/Power");
    assert_true(b->seen.value[1] == 2.5); /* Float kept from the birth's datatype */
    assert_string_equal(b->seen.id[2], "plant/gw1/m7/kWh");
    assert_string_equal(b->seen.id[3], "plant/gw1/m7/Voltage");
    assert_int_equal(enpi_sparkplug_stats(b->sp)->unresolved_metrics, 0);
    assert_int_equal(enpi_sparkplug_stats(b->sp)->seq_gaps, 0);
    assert_int_equal(b->seen.n_rebirth, 0);

    /* exporting the import gives the same bytes: metric and device order survive */
    data_alias(a, "gw1", NULL, 2, 1, 101.5);
    data_alias(a, "gw1", NULL, 3, 2, 2.5);
    data_alias(a, "gw1", "m7", 4, 1, 9);
    data_alias(a, "gw1", "m7", 5, 5, 231);
    assert_int_equal(enpi_sparkplug_export_node(a->sp, "plant/gw1", 9, &ea, &la), 0);
    assert_int_equal(enpi_sparkplug_export_node(b->sp, "plant/gw1", 9, &eb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ea, eb, la);
    free(ea);
    free(eb);
    host_free(a);
    host_free(b);
}

static void an_imported_node_keeps_its_bdseq_and_its_death_is_a_change(void **state)
{
    host_t *a = host_new(0), *b = host_new(0);
    changes_t c;

    (void)state;
    nbirth(a, "gw1", 7);
    export_into(a, b, "plant/gw1");
    ndeath(b, "gw1", 6); /* an older session's will: ignored */
    assert_int_equal(enpi_sparkplug_stats(b->sp)->stale_deaths, 1);
    assert_true(enpi_sparkplug_node_born(b->sp, "plant", "gw1"));
    assert_int_equal(enpi_sparkplug_changes_pending(b->sp), 0);
    ndeath(b, "gw1", 7);
    assert_false(enpi_sparkplug_node_born(b->sp, "plant", "gw1"));
    c = changes(b->sp);
    assert_int_equal(c.n, 1);
    assert_false(c.has_state[0]); /* imported = stored: its death deletes the record */
    host_free(a);
    host_free(b);
}

static void a_record_carries_the_seq_of_when_it_was_taken(void **state)
{
    host_t *a = host_new(0), *b = host_new(0), *c = host_new(0);

    (void)state;
    nbirth(a, "gw1", 1);            /* seq 0 */
    export_into(a, b, "plant/gw1"); /* expects seq 1 */
    data_alias(a, "gw1", NULL, 1, 1, 101);
    data_alias(a, "gw1", NULL, 2, 1, 102);
    export_into(a, c, "plant/gw1"); /* expects seq 3 */

    data_alias(c, "gw1", NULL, 3, 1, 103);
    assert_int_equal(enpi_sparkplug_stats(c->sp)->seq_gaps, 0);
    assert_int_equal(c->seen.n_rebirth, 0);

    /* b's record is older than the data: the gap is counted and asks for one rebirth, but
     * the reading still resolves */
    data_alias(b, "gw1", NULL, 3, 1, 103);
    assert_int_equal(enpi_sparkplug_stats(b->sp)->seq_gaps, 1);
    assert_int_equal(b->seen.n_rebirth, 1);
    assert_int_equal(b->seen.n, 1);
    assert_string_equal(b->seen.id[0], "plant/gw1/Energy/Total");
    host_free(a);
    host_free(b);
    host_free(c);
}

static void export_of_an_unknown_or_dead_node_is_enoent(void **state)
{
    host_t *h = host_new(0);
    uint8_t *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(enpi_sparkplug_export_node(h->sp, "plant/gw1", 9, &buf, &len), ENPI_ENOENT);
    nbirth(h, "gw1", 1);
    ndeath(h, "gw1", 1);
    assert_int_equal(enpi_sparkplug_export_node(h->sp, "plant/gw1", 9, &buf, &len), ENPI_ENOENT);
    assert_int_equal(enpi_sparkplug_export_node(h->sp, "plant", 5, &buf, &len), ENPI_ENOENT);
    assert_null(buf);
    host_free(h);
}

static void import_refuses_bad_keys(void **state)
{
    host_t *h = host_new(0);
    char longkey[200];

    (void)state;
    memset(longkey, 'g', sizeof(longkey));
    longkey[100] = '/';
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "", 0, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant", 5, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "/gw1", 4, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant/", 6, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "a/b/c", 5, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "a/b\0c", 5, "", 0), ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_import_node(h->sp, longkey, sizeof(longkey), "", 0),
                     ENPI_EINVAL);
    assert_int_equal(enpi_sparkplug_node_count(h->sp), 0);
    /* an empty record is a born node without metrics */
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "a/b", 3, "", 0), 0);
    assert_true(enpi_sparkplug_node_born(h->sp, "a", "b"));
    host_free(h);
}

/* A record whose only device id is `dev` (packed with the generated store code). */
static size_t record_with_device(uint8_t *buf, size_t cap, const char *dev)
{
    Enpi__Store__V1__SparkplugNode rec = ENPI__STORE__V1__SPARKPLUG_NODE__INIT;
    Enpi__Store__V1__SparkplugDevice d = ENPI__STORE__V1__SPARKPLUG_DEVICE__INIT;
    Enpi__Store__V1__SparkplugDevice *dp[1] = {&d};

    d.id.data = (uint8_t *)dev;
    d.id.len = strlen(dev);
    rec.devices = dp;
    rec.n_devices = 1;
    assert_true(enpi__store__v1__sparkplug_node__get_packed_size(&rec) <= cap);
    return enpi__store__v1__sparkplug_node__pack(&rec, buf);
}

static void a_corrupt_record_leaves_the_node_unborn_and_is_deleted(void **state)
{
    host_t *h = host_new(0);
    uint8_t buf[256];
    size_t len;
    changes_t c;

    (void)state;
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant/gw1", 9, "\xff\xff\xff", 3),
                     ENPI_EPARSE);
    len = record_with_device(buf, sizeof(buf), "a/b");
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant/gw2", 9, buf, len), ENPI_EPARSE);
    len = record_with_device(buf, sizeof(buf), "");
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant/gw3", 9, buf, len), ENPI_EPARSE);
    len = record_with_device(buf, sizeof(buf), "m7");
    assert_int_equal(enpi_sparkplug_import_node(h->sp, "plant/gw4", 9, buf, len), 0);
    assert_false(enpi_sparkplug_node_born(h->sp, "plant", "gw1"));
    assert_false(enpi_sparkplug_node_born(h->sp, "plant", "gw2"));
    assert_true(enpi_sparkplug_node_born(h->sp, "plant", "gw4"));
    c = changes(h->sp);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.key[0], "plant/gw1");
    assert_string_equal(c.key[1], "plant/gw2");
    assert_string_equal(c.key[2], "plant/gw3");
    assert_false(c.has_state[0] || c.has_state[1] || c.has_state[2]);
    /* the node's next data asks for a rebirth */
    data_alias(h, "gw1", NULL, 1, 1, 5);
    assert_int_equal(h->seen.n_rebirth, 1);
    assert_int_equal(h->seen.n, 0);
    host_free(h);
}

static void eviction_spares_a_node_whose_deletion_is_pending(void **state)
{
    host_t *h = host_new(2);
    changes_t c;

    (void)state;
    nbirth(h, "gw1", 1);
    nbirth(h, "gw2", 1);
    enpi_sparkplug_changes_done(h->sp);  /* both stored */
    ndeath(h, "gw1", 1);                 /* unborn, its deletion pending */
    data_alias(h, "gw3", NULL, 0, 1, 1); /* needs a slot: none may go */
    assert_int_equal(enpi_sparkplug_stats(h->sp)->nodes_full, 1);
    c = changes(h->sp);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.key[0], "plant/gw1");
    assert_false(c.has_state[0]);
    enpi_sparkplug_changes_done(h->sp);
    /* deletion taken: gw1 may be evicted now */
    data_alias(h, "gw3", NULL, 0, 1, 1);
    assert_int_equal(enpi_sparkplug_stats(h->sp)->nodes_full, 1);
    assert_int_equal(enpi_sparkplug_node_count(h->sp), 2);
    assert_int_equal(h->seen.n_rebirth, 1); /* gw3's data before birth */
    nbirth(h, "gw3", 1);
    assert_true(enpi_sparkplug_node_born(h->sp, "plant", "gw3"));
    host_free(h);
}

static void import_applies_the_metric_limits(void **state)
{
    host_t *a = host_new(0), *b;
    enpi_sparkplug_options_t opt;
    uint8_t *rec = NULL;
    size_t len = 0;

    (void)state;
    b = calloc(1, sizeof(*b));
    assert_non_null(b);
    memset(&opt, 0, sizeof(opt));
    opt.max_node_metrics = 2; /* bdSeq and Energy/Total; not Power */
    assert_int_equal(enpi_sparkplug_create(&opt, &b->sp), 0);
    nbirth(a, "gw1", 1);
    assert_int_equal(enpi_sparkplug_export_node(a->sp, "plant/gw1", 9, &rec, &len), 0);
    assert_int_equal(enpi_sparkplug_import_node(b->sp, "plant/gw1", 9, rec, len), 0);
    assert_int_equal(enpi_sparkplug_stats(b->sp)->metrics_full, 1);
    data_alias(b, "gw1", NULL, 1, 2, 3.5); /* Power: not learned; node incomplete */
    assert_int_equal(enpi_sparkplug_stats(b->sp)->unresolved_metrics, 1);
    assert_int_equal(enpi_sparkplug_stats(b->sp)->rebirth_requests, 0);
    free(rec);
    host_free(a);
    host_free(b);
}

/* Births encoded by Eclipse Tahu's JavaScript library, carried over an export/import:
 * the data that follows decodes to the readings the fixture lists. */
static void tahu_births_survive_a_round_trip(void **state)
{
    host_t *a = host_new(0), *b = host_new(0);
    size_t i, skip = 0;

    (void)state;
    for (i = 0; i < 2; i++) {
        const tahu_fixture_t *f = &tahu_fixtures[i];
        assert_int_equal(enpi_sparkplug_ingest(a->sp, f->topic, strlen(f->topic), f->bytes, f->len,
                                               ARRIVAL, on_reading, &a->seen),
                         0);
        skip += f->n_readings;
    }
    export_into(a, b, "enpi-test/edge1");
    for (i = 2; i < sizeof(tahu_fixtures) / sizeof(tahu_fixtures[0]); i++) {
        const tahu_fixture_t *f = &tahu_fixtures[i];
        assert_int_equal(enpi_sparkplug_ingest(b->sp, f->topic, strlen(f->topic), f->bytes, f->len,
                                               ARRIVAL, on_reading, &b->seen),
                         0);
    }
    assert_int_equal(b->seen.n, sizeof(tahu_readings) / sizeof(tahu_readings[0]) - skip);
    for (i = 0; i < b->seen.n; i++) {
        const tahu_reading_t *want = &tahu_readings[skip + i];
        assert_string_equal(b->seen.id[i], want->id);
        assert_true(b->seen.value[i] == want->value);
        assert_true(b->seen.ts[i] == want->ts_ms);
    }
    assert_int_equal(enpi_sparkplug_stats(b->sp)->unresolved_metrics, 0);
    assert_int_equal(b->seen.n_rebirth, 0);
    host_free(a);
    host_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(births_and_deaths_are_changes_data_is_not),
        cmocka_unit_test(a_node_born_and_dead_before_any_store_reports_nothing),
        cmocka_unit_test(an_imported_node_resolves_aliases_like_the_original),
        cmocka_unit_test(an_imported_node_keeps_its_bdseq_and_its_death_is_a_change),
        cmocka_unit_test(a_record_carries_the_seq_of_when_it_was_taken),
        cmocka_unit_test(export_of_an_unknown_or_dead_node_is_enoent),
        cmocka_unit_test(import_refuses_bad_keys),
        cmocka_unit_test(a_corrupt_record_leaves_the_node_unborn_and_is_deleted),
        cmocka_unit_test(eviction_spares_a_node_whose_deletion_is_pending),
        cmocka_unit_test(import_applies_the_metric_limits),
        cmocka_unit_test(tahu_births_survive_a_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
