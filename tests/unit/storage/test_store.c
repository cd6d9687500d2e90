/*
 * test_store.c - the store against a real RocksDB: commits add up, atomically; the inbox
 * survives a crash and is cleared by commits; reads in secondary mode follow the primary;
 * the lock and missing-store errors; the stored configuration.
 *
 * Run with "--try-primary DIR" the binary only tries to open DIR as primary and exits
 * with -rc: the lock test uses that to open from a second process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "records.h"
#include "storage.h"
#include "tmpdir.h"
#include "store_fixture.h"

extern char **environ;

#define RES_15M 15u
#define RES_1H 60u
#define W15 900000LL

static int setup(void **state)
{
    return store_fixture_setup(state, "store");
}

/* ---- reading rollups back ---- */

typedef struct {
    size_t n;
    enpi_stored_rollup_t rows[64];
} rollup_rows_t;

static int collect_rollup_cb(void *ctx, const enpi_stored_rollup_t *r)
{
    rollup_rows_t *rows = ctx;
    if (rows->n < 64)
        rows->rows[rows->n] = *r;
    rows->n++;
    return 0;
}

static rollup_rows_t read_rollups(enpi_store_t *st, const char *meter, uint32_t res, int64_t from,
                                  int64_t to)
{
    rollup_rows_t rows = {0};
    assert_int_equal(enpi_store_rollups(st, meter, res, from, to, collect_rollup_cb, &rows), 0);
    return rows;
}

/* The one stored window of meter/res starting at start; fails the test if absent. */
static enpi_stored_rollup_t one_rollup(enpi_store_t *st, const char *meter, uint32_t res,
                                       int64_t start)
{
    rollup_rows_t rows = read_rollups(st, meter, res, start, start + 1);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.rows[0].start, start);
    return rows.rows[0];
}

/* ---- building batches on the stack ---- */

static enpi_rollup_delta_t delta(uint32_t meter, uint32_t res, int64_t start, double value,
                                 uint32_t readings)
{
    return (enpi_rollup_delta_t){.meter = meter,
                                 .res_code = res,
                                 .start = start,
                                 .end = start + W15,
                                 .delta = {.value = value, .readings = readings}};
}

static enpi_meter_snapshot_t snap(const char *id, int64_t last_ts)
{
    return (enpi_meter_snapshot_t){.meter_id = (char *)id,
                                   .state = {.has_state = true, .last_ts_ms = last_ts}};
}

/* ---- commits ---- */

static void commit_sums_deltas_within_a_batch_and_across_commits(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 100)};
    enpi_rollup_delta_t d[] = {
        delta(0, RES_15M, 0, 1.5, 1),
        delta(0, RES_15M, 0, 2.25, 2),
        delta(0, RES_15M, W15, 10, 1),
    };
    d[1].delta.estimated = 0.5;
    d[1].delta.resets = 1;
    d[1].delta.late = 2;
    d[1].delta.duplicates = 3;
    enpi_batch_t b = {.rollups = d, .n_rollups = 3, .meters = meters, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b), 0);

    enpi_stored_rollup_t r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 3.75);
    assert_true(r.r.estimated == 0.5);
    assert_int_equal(r.r.readings, 3);
    assert_int_equal(r.r.resets, 1);
    assert_int_equal(r.r.late, 2);
    assert_int_equal(r.r.duplicates, 3);
    assert_int_equal(r.end, W15);

    /* a second commit adds to what is stored (served from the cache) */
    enpi_rollup_delta_t d2[] = {delta(0, RES_15M, 0, 0.25, 1)};
    enpi_batch_t b2 = {.rollups = d2, .n_rollups = 1, .meters = meters, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b2), 0);
    r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 4.0);
    assert_int_equal(r.r.readings, 4);
    /* and a third one finds the second's sum in the cache, not the first's */
    assert_int_equal(enpi_store_commit(st, &b2), 0);
    r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 4.25);
    assert_int_equal(r.r.readings, 5);
    enpi_store_cache_stats_t cs;
    enpi_store_cache_stats(st, &cs);
    assert_int_equal(cs.hits, 2);
    enpi_store_close(st);

    /* after a restart the cache is cold: the sum continues from RocksDB */
    st = open_primary(f->path);
    assert_int_equal(enpi_store_commit(st, &b2), 0);
    r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 4.5);
    assert_int_equal(r.r.readings, 6);
    assert_true(r.r.estimated == 0.5);
    r = one_rollup(st, "a", RES_15M, W15);
    assert_true(r.r.value == 10);
    enpi_store_cache_stats(st, &cs);
    assert_int_equal(cs.hits, 0);
    assert_int_equal(cs.misses, 1);
    enpi_store_close(st);
}

/* Many windows with a cache far smaller than a batch: eviction and multi-get together
 * must still add every increment exactly once. */
static void commit_sums_with_a_small_cache(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_set_cache_limit(st, 50);
    enum { METERS = 300, RESS = 4, ROUNDS = 3 };
    const uint32_t res[RESS] = {15, 60, 1440, 0xFFFF0001u};
    enpi_meter_snapshot_t *meters = calloc(METERS, sizeof *meters);
    char(*ids)[16] = calloc(METERS, 16);
    enpi_rollup_delta_t *d = calloc(METERS * RESS * 2, sizeof *d);
    for (size_t m = 0; m < METERS; m++) {
        snprintf(ids[m], 16, "f%03zu/em", m);
        meters[m] = snap(ids[m], 1);
    }
    for (int round = 0; round < ROUNDS; round++) {
        size_t n = 0;
        for (size_t m = 0; m < METERS; m++)
            for (size_t k = 0; k < RESS; k++) {
                d[n++] = delta((uint32_t)m, res[k], 0, 1.0 + (double)m, 1);
                d[n++] = delta((uint32_t)m, res[k], 0, 0.5, 0); /* same window twice */
            }
        enpi_batch_t b = {.rollups = d, .n_rollups = n, .meters = meters, .n_meters = METERS};
        assert_int_equal(enpi_store_commit(st, &b), 0);
        if (round == 0)
            enpi_store_set_cache_limit(st, 0); /* later rounds: every base from RocksDB */
        else
            enpi_store_set_cache_limit(st, 700);
    }
    for (size_t m = 0; m < METERS; m += 37)
        for (size_t k = 0; k < RESS; k++) {
            enpi_stored_rollup_t r = one_rollup(st, ids[m], res[k], 0);
            assert_true(r.r.value == ROUNDS * (1.5 + (double)m));
            assert_int_equal(r.r.readings, ROUNDS);
        }
    enpi_store_cache_stats_t cs;
    enpi_store_cache_stats(st, &cs);
    assert_true(cs.entries <= 700);
    free(meters);
    free(ids);
    free(d);
    enpi_store_close(st);
}

/* A failed write leaves nothing behind: not in RocksDB, not in the cache; the retried
 * batch then counts once. */
static void failed_commit_writes_nothing_and_can_be_retried(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 100)};
    enpi_rollup_delta_t d[] = {delta(0, RES_15M, 0, 1, 1)};
    enpi_unknown_delta_t u[] = {{.meter_id = (char *)"ghost",
                                 .last_topic = (char *)"t/ghost",
                                 .count = 2,
                                 .last_seen_ms = 5}};
    enpi_batch_t b = {.rollups = d,
                      .n_rollups = 1,
                      .meters = meters,
                      .n_meters = 1,
                      .unknown = u,
                      .n_unknown = 1};
    assert_int_equal(enpi_store_commit(st, &b), 0); /* stored: 1, cached */

    enpi_inbox_msg_t m = {.seq = 1, .topic = "t", .topic_len = 1, .payload = "1", .payload_len = 1};
    assert_int_equal(enpi_store_inbox_append(st, &m), 0);
    meters[0].state.last_ts_ms = 200;
    b.inbox_upto = 2;
    enpi_store_inject_commit_failures(st, 1);
    assert_int_equal(enpi_store_commit(st, &b), ENPI_EIO);

    enpi_stored_rollup_t r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 1);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "a", &s), 0);
    assert_int_equal(s.last_ts_ms, 100);
    enpi_meter_state_clear(&s);
    uint64_t next;
    assert_int_equal(enpi_store_inbox_next_seq(st, &next), 0);
    assert_int_equal(next, 2);

    assert_int_equal(enpi_store_commit(st, &b), 0); /* the retry */
    r = one_rollup(st, "a", RES_15M, 0);
    assert_true(r.r.value == 2);
    assert_int_equal(r.r.readings, 2);
    assert_int_equal(enpi_store_meter_state(st, "a", &s), 0);
    assert_int_equal(s.last_ts_ms, 200);
    enpi_meter_state_clear(&s);
    enpi_store_close(st);
}

/* A batch rejected while being built (here: an unknown meter with an empty id after
 * valid rollups) also writes nothing. */
static void invalid_batch_writes_nothing(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 100)};
    enpi_rollup_delta_t d[] = {delta(0, RES_15M, 0, 1, 1)};
    enpi_unknown_delta_t u[] = {{.meter_id = (char *)"", .last_topic = (char *)"t", .count = 1}};
    enpi_batch_t b = {.rollups = d,
                      .n_rollups = 1,
                      .meters = meters,
                      .n_meters = 1,
                      .unknown = u,
                      .n_unknown = 1};
    assert_int_equal(enpi_store_commit(st, &b), ENPI_EINVAL);
    assert_int_equal(read_rollups(st, "a", RES_15M, INT64_MIN, INT64_MAX).n, 0);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "a", &s), ENPI_ENOENT);

    enpi_rollup_delta_t bad[] = {delta(1, RES_15M, 0, 1, 1)}; /* meter 1 of 1 */
    enpi_batch_t b2 = {.rollups = bad, .n_rollups = 1, .meters = meters, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b2), ENPI_EINVAL);
    b.n_unknown = 0;
    assert_int_equal(enpi_store_commit(st, &b), 0);
    assert_true(one_rollup(st, "a", RES_15M, 0).r.value == 1);
    enpi_store_close(st);
}

/* ---- rollup scans ---- */

static void rollup_scan_orders_by_start_and_keeps_ids_apart(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 1), snap("ab", 1), snap("a/b", 1)};
    enpi_rollup_delta_t d[] = {
        delta(0, RES_15M, W15, 3, 1), delta(0, RES_15M, -W15, 1, 1),
        delta(0, RES_15M, 0, 2, 1),   delta(0, RES_15M, -2 * W15, 0.5, 1),
        delta(1, RES_15M, 0, 100, 1), delta(2, RES_15M, 0, 1000, 1),
        delta(0, RES_1H, 0, 7, 1),
    };
    enpi_batch_t b = {.rollups = d, .n_rollups = 7, .meters = meters, .n_meters = 3};
    assert_int_equal(enpi_store_commit(st, &b), 0);

    rollup_rows_t rows = read_rollups(st, "a", RES_15M, -W15, 2 * W15);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.rows[0].start, -W15);
    assert_true(rows.rows[0].r.value == 1);
    assert_int_equal(rows.rows[1].start, 0);
    assert_true(rows.rows[1].r.value == 2);
    assert_int_equal(rows.rows[2].start, W15);
    assert_int_equal(rows.rows[2].end, 2 * W15);

    /* [from, to) is half-open on the start */
    rows = read_rollups(st, "a", RES_15M, 0, W15);
    assert_int_equal(rows.n, 1);
    rows = read_rollups(st, "a", RES_15M, INT64_MIN, INT64_MAX);
    assert_int_equal(rows.n, 4);
    assert_int_equal(rows.rows[0].start, -2 * W15);
    rows = read_rollups(st, "ab", RES_15M, INT64_MIN, INT64_MAX);
    assert_int_equal(rows.n, 1);
    assert_true(rows.rows[0].r.value == 100);
    rows = read_rollups(st, "a/b", RES_15M, INT64_MIN, INT64_MAX);
    assert_int_equal(rows.n, 1);
    assert_true(rows.rows[0].r.value == 1000);
    rows = read_rollups(st, "a", RES_1H, INT64_MIN, INT64_MAX);
    assert_int_equal(rows.n, 1);
    assert_true(rows.rows[0].r.value == 7);
    assert_int_equal(read_rollups(st, "b", RES_15M, INT64_MIN, INT64_MAX).n, 0);
    assert_int_equal(read_rollups(st, "a", RES_15M, W15, W15).n, 0);
    enpi_store_close(st);
}

static int stop_after_one_cb(void *ctx, const enpi_stored_rollup_t *r)
{
    (*(int *)ctx)++;
    return 42;
}

static void rollup_scan_stops_when_the_callback_says_so(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 1)};
    enpi_rollup_delta_t d[] = {delta(0, RES_15M, 0, 1, 1), delta(0, RES_15M, W15, 1, 1)};
    enpi_batch_t b = {.rollups = d, .n_rollups = 2, .meters = meters, .n_meters = 1};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    int calls = 0;
    assert_int_equal(enpi_store_rollups(st, "a", RES_15M, 0, 10 * W15, stop_after_one_cb, &calls),
                     42);
    assert_int_equal(calls, 1);
    enpi_store_close(st);
}

/* ---- meter states and unknown meters ---- */

typedef struct {
    size_t n;
    char ids[8][32];
    int64_t last_ts[8];
    size_t n_recent[8];
} state_rows_t;

static int collect_state_cb(void *ctx, const char *meter_id, const enpi_meter_state_t *s)
{
    state_rows_t *rows = ctx;
    if (rows->n < 8) {
        snprintf(rows->ids[rows->n], 32, "%s", meter_id);
        rows->last_ts[rows->n] = s->last_ts_ms;
        rows->n_recent[rows->n] = s->n_recent;
    }
    rows->n++;
    return 0;
}

static void meter_states_are_replaced_whole(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    int64_t recent[] = {10, 20, 30};
    enpi_meter_snapshot_t meters[] = {snap("a", 100), snap("ab", 200), snap("a/b", 300)};
    meters[2].state.recent_ts = recent;
    meters[2].state.n_recent = 3;
    meters[2].state.duplicates = 9;
    enpi_batch_t b = {.meters = meters, .n_meters = 3};
    assert_int_equal(enpi_store_commit(st, &b), 0);

    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(st, "a/b", &s), 0);
    assert_true(s.has_state);
    assert_int_equal(s.last_ts_ms, 300);
    assert_int_equal(s.duplicates, 9);
    assert_int_equal(s.n_recent, 3);
    assert_memory_equal(s.recent_ts, recent, sizeof recent);
    enpi_meter_state_clear(&s);
    assert_int_equal(enpi_store_meter_state(st, "b", &s), ENPI_ENOENT);

    meters[2].state.n_recent = 0;
    meters[2].state.recent_ts = NULL;
    meters[2].state.last_ts_ms = 301;
    b.meters = &meters[2];
    b.n_meters = 1;
    assert_int_equal(enpi_store_commit(st, &b), 0);

    state_rows_t rows = {0};
    assert_int_equal(enpi_store_meter_states(st, collect_state_cb, &rows), 0);
    assert_int_equal(rows.n, 3);
    /* key order: shorter ids first (length prefix), then bytes */
    assert_string_equal(rows.ids[0], "a");
    assert_string_equal(rows.ids[1], "ab");
    assert_string_equal(rows.ids[2], "a/b");
    assert_int_equal(rows.last_ts[2], 301);
    assert_int_equal(rows.n_recent[2], 0);
    enpi_store_close(st);
}

typedef struct {
    size_t n;
    char ids[4][32];
    char topics[4][32];
    uint64_t count[4];
    int64_t seen[4];
} unknown_rows_t;

static int collect_unknown_cb(void *ctx, const enpi_unknown_meter_t *u)
{
    unknown_rows_t *rows = ctx;
    if (rows->n < 4) {
        snprintf(rows->ids[rows->n], 32, "%s", u->meter_id);
        snprintf(rows->topics[rows->n], 32, "%s", u->last_topic);
        rows->count[rows->n] = u->count;
        rows->seen[rows->n] = u->last_seen_ms;
    }
    rows->n++;
    return 0;
}

static void unknown_meters_add_counts_and_keep_the_latest_topic(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_unknown_delta_t u[] = {
        {.meter_id = (char *)"x", .last_topic = (char *)"t/x/1", .count = 2, .last_seen_ms = 10},
        {.meter_id = (char *)"y", .last_topic = (char *)"t/y", .count = 1, .last_seen_ms = 11},
        {.meter_id = (char *)"x", .last_topic = (char *)"t/x/2", .count = 3, .last_seen_ms = 12},
    };
    enpi_batch_t b = {.unknown = u, .n_unknown = 3};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    b.n_unknown = 1;
    u[0].last_topic = (char *)"t/x/3";
    u[0].last_seen_ms = 20;
    assert_int_equal(enpi_store_commit(st, &b), 0);

    unknown_rows_t rows = {0};
    assert_int_equal(enpi_store_unknown_meters(st, collect_unknown_cb, &rows), 0);
    assert_int_equal(rows.n, 2);
    assert_string_equal(rows.ids[0], "x");
    assert_int_equal(rows.count[0], 7);
    assert_string_equal(rows.topics[0], "t/x/3");
    assert_int_equal(rows.seen[0], 20);
    assert_string_equal(rows.ids[1], "y");
    assert_int_equal(rows.count[1], 1);
    assert_string_equal(rows.topics[1], "t/y");
    enpi_store_close(st);
}

/* ---- the inbox ---- */

typedef struct {
    size_t n;
    uint64_t seqs[64];
    char payloads[64][16];
    int64_t arrival[64];
} inbox_rows_t;

static int collect_inbox_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    inbox_rows_t *rows = ctx;
    if (rows->n < 64) {
        rows->seqs[rows->n] = m->seq;
        snprintf(rows->payloads[rows->n], 16, "%.*s", (int)m->payload_len,
                 (const char *)m->payload);
        rows->arrival[rows->n] = m->arrival_ms;
    }
    rows->n++;
    return 0;
}

static inbox_rows_t scan_inbox(enpi_store_t *st, uint64_t from, uint64_t to)
{
    inbox_rows_t rows = {0};
    assert_int_equal(enpi_store_inbox_scan(st, from, to, collect_inbox_cb, &rows), 0);
    return rows;
}

static void append(enpi_store_t *st, uint64_t seq)
{
    char payload[16];
    int n = snprintf(payload, sizeof payload, "p%llu", (unsigned long long)seq);
    enpi_inbox_msg_t m = {.seq = seq,
                          .topic = "enpi/f/m",
                          .topic_len = 8,
                          .payload = payload,
                          .payload_len = (size_t)n,
                          .arrival_ms = 1000 + (int64_t)seq};
    assert_int_equal(enpi_store_inbox_append(st, &m), 0);
}

static uint64_t next_seq(enpi_store_t *st)
{
    uint64_t next = 0;
    assert_int_equal(enpi_store_inbox_next_seq(st, &next), 0);
    return next;
}

static void inbox_survives_a_crash_and_commits_clear_it(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    assert_int_equal(next_seq(st), 1);
    for (uint64_t s = 1; s <= 5; s++)
        append(st, s);
    inbox_rows_t rows = scan_inbox(st, 1, 6);
    assert_int_equal(rows.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(rows.seqs[i], i + 1);
        assert_int_equal(rows.arrival[i], 1001 + (int64_t)i);
    }
    assert_string_equal(rows.payloads[4], "p5");
    rows = scan_inbox(st, 2, 4);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.seqs[0], 2);
    assert_int_equal(rows.seqs[1], 3);
    assert_int_equal(next_seq(st), 6);
    enpi_store_close(st); /* no commit: what a kill -9 leaves */

    st = open_primary(f->path);
    assert_int_equal(next_seq(st), 6);
    rows = scan_inbox(st, 0, UINT64_MAX);
    assert_int_equal(rows.n, 5);

    enpi_batch_t b = {.inbox_upto = 4};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    rows = scan_inbox(st, 0, UINT64_MAX);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.seqs[0], 4);
    assert_int_equal(next_seq(st), 6);

    b.inbox_upto = 3; /* a stale inbox_upto never moves it back */
    assert_int_equal(enpi_store_commit(st, &b), 0);
    assert_int_equal(scan_inbox(st, 0, UINT64_MAX).n, 2);

    b.inbox_upto = 6; /* everything committed: the inbox is empty ... */
    assert_int_equal(enpi_store_commit(st, &b), 0);
    assert_int_equal(scan_inbox(st, 0, UINT64_MAX).n, 0);
    enpi_store_close(st);

    st = open_primary(f->path); /* ... and next_seq still remembers where it was */
    assert_int_equal(next_seq(st), 6);
    append(st, 6);
    append(st, 7);
    assert_int_equal(next_seq(st), 8);
    b.inbox_upto = 7;
    assert_int_equal(enpi_store_commit(st, &b), 0);
    rows = scan_inbox(st, 0, UINT64_MAX);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.seqs[0], 7);
    enpi_store_close(st);
}

static void inbox_upto_beyond_the_last_message_raises_next_seq(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    append(st, 1);
    enpi_batch_t b = {.inbox_upto = 100};
    assert_int_equal(enpi_store_commit(st, &b), 0);
    assert_int_equal(next_seq(st), 100);
    assert_int_equal(scan_inbox(st, 0, UINT64_MAX).n, 0);
    enpi_store_close(st);
}

/* Appends alongside commits and scans, segments, torn tails, a full disk: test_inbox.c. */

/* ---- modes ---- */

static char **list_dir(const char *dir, size_t *n_out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    *n_out = n;
    return names;
}

static void free_list(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void secondary_reads_what_the_primary_committed_after_catch_up(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *pri = open_primary(f->path);
    enpi_meter_snapshot_t meters[] = {snap("a", 100)};
    enpi_rollup_delta_t d[] = {delta(0, RES_15M, 0, 1, 1)};
    enpi_batch_t b = {.rollups = d, .n_rollups = 1, .meters = meters, .n_meters = 1};
    assert_int_equal(enpi_store_commit(pri, &b), 0);
    assert_int_equal(enpi_store_put_config(pri, "timezone: UTC\n", 14), 0);

    /* the secondary's scratch folder goes under $TMPDIR: point it at our temp folder */
    char *tmp = test_path(f->dir, "tmp");
    assert_int_equal(mkdir(tmp, 0700), 0);
    char *old_tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    setenv("TMPDIR", tmp, 1);

    enpi_store_t *sec = NULL;
    char err[256];
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &sec, err, sizeof err), 0);
    if (old_tmpdir) {
        setenv("TMPDIR", old_tmpdir, 1);
        free(old_tmpdir);
    } else {
        unsetenv("TMPDIR");
    }
    size_t n_tmp;
    char **tmp_entries = list_dir(tmp, &n_tmp);
    assert_int_equal(n_tmp, 3); /* ".", "..", the scratch folder */
    free_list(tmp_entries, n_tmp);

    assert_true(one_rollup(sec, "a", RES_15M, 0).r.value == 1);
    char *yaml = NULL;
    size_t len = 0;
    assert_int_equal(enpi_store_get_config(sec, &yaml, &len), 0);
    assert_int_equal(len, 14);
    assert_string_equal(yaml, "timezone: UTC\n");
    free(yaml);

    /* the primary stays open and commits more; the secondary sees it after catch-up */
    d[0].delta.value = 2;
    meters[0].state.last_ts_ms = 200;
    assert_int_equal(enpi_store_commit(pri, &b), 0);
    assert_int_equal(enpi_store_catch_up(sec), 0);
    assert_true(one_rollup(sec, "a", RES_15M, 0).r.value == 3);
    enpi_meter_state_t s;
    assert_int_equal(enpi_store_meter_state(sec, "a", &s), 0);
    assert_int_equal(s.last_ts_ms, 200);
    enpi_meter_state_clear(&s);

    /* a secondary never writes */
    assert_int_equal(enpi_store_commit(sec, &b), ENPI_ESTATE);
    assert_int_equal(enpi_store_put_config(sec, "x", 1), ENPI_ESTATE);
    enpi_inbox_msg_t m = {.seq = 1, .topic = "t", .topic_len = 1};
    assert_int_equal(enpi_store_inbox_append(sec, &m), ENPI_ESTATE);

    enpi_store_close(sec);
    tmp_entries = list_dir(tmp, &n_tmp);
    assert_int_equal(n_tmp, 2); /* the scratch folder is gone */
    free_list(tmp_entries, n_tmp);
    free(tmp);
    enpi_store_close(pri);
}

static void secondary_creates_nothing_in_the_store_folder(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *pri = open_primary(f->path);
    enpi_store_close(pri);
    size_t n_before, n_after;
    char **before = list_dir(f->path, &n_before);
    enpi_store_t *sec = NULL;
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &sec, NULL, 0), 0);
    uint64_t next;
    assert_int_equal(enpi_store_inbox_next_seq(sec, &next), 0);
    assert_int_equal(next, 1);
    enpi_store_close(sec);
    char **after = list_dir(f->path, &n_after);
    assert_int_equal(n_before, n_after);
    free_list(before, n_before);
    free_list(after, n_after);
}

static void secondary_on_a_missing_store_is_enoent(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = (enpi_store_t *)1;
    char err[256] = "";
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &st, err, sizeof err),
                     ENPI_ENOENT);
    assert_null(st);
    assert_non_null(strstr(err, f->path));
    assert_int_equal(access(f->path, F_OK), -1); /* nothing was created */

    assert_int_equal(mkdir(f->path, 0700), 0); /* an empty folder is no store either */
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &st, err, sizeof err),
                     ENPI_ENOENT);
    size_t n;
    char **names = list_dir(f->path, &n);
    assert_int_equal(n, 2);
    free_list(names, n);
}

/* Runs this binary as "--try-primary DIR" and returns its exit status. */
static int open_from_another_process(const char *path)
{
    char *argv[] = {(char *)"/proc/self/exe", (char *)"--try-primary", (char *)path, NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void second_primary_is_ebusy(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_t *again = NULL;
    char err[512] = "";
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_PRIMARY, &again, err, sizeof err),
                     ENPI_EBUSY);
    assert_null(again);
    assert_non_null(strstr(err, "in use"));
    assert_int_equal(open_from_another_process(f->path), -ENPI_EBUSY);
    enpi_store_close(st);
    assert_int_equal(open_from_another_process(f->path), 0); /* free again once closed */
}

static void primary_refuses_a_newer_store_format(void **state)
{
    fixture_t *f = *state;
    enpi_store_close(open_primary(f->path));
    /* rewrite Meta as a future enpi would */
    rocksdb_options_t *opts = rocksdb_options_create();
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(opts, f->path, &err);
    assert_null(err);
    uint8_t val[ENPI_REC_META_MAX];
    size_t vlen = enpi_store_rec_meta_encode(ENPI_STORE_FORMAT_VERSION + 1, 0, val);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(db, wo, ENPI_KEY_META, strlen(ENPI_KEY_META), (const char *)val, vlen, &err);
    assert_null(err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(opts);

    enpi_store_t *st = NULL;
    char msg[256] = "";
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_PRIMARY, &st, msg, sizeof msg),
                     ENPI_ERANGE);
    assert_null(st);
    assert_non_null(strstr(msg, "format"));
    assert_int_equal(enpi_store_open(f->path, ENPI_STORE_SECONDARY, &st, msg, sizeof msg),
                     ENPI_ERANGE);
}

static void config_put_get(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    char *yaml = (char *)1;
    size_t len = 99;
    assert_int_equal(enpi_store_get_config(st, &yaml, &len), ENPI_ENOENT);
    assert_null(yaml);
    const char *text = "timezone: Asia/Ho_Chi_Minh\nstorage:\n  path: /var/lib/enpid\n";
    assert_int_equal(enpi_store_put_config(st, text, strlen(text)), 0);
    assert_int_equal(enpi_store_get_config(st, &yaml, &len), 0);
    assert_int_equal(len, strlen(text));
    assert_string_equal(yaml, text);
    free(yaml);
    assert_int_equal(enpi_store_put_config(st, "", 0), 0); /* replaced, even by nothing */
    enpi_store_close(st);
    st = open_primary(f->path);
    assert_int_equal(enpi_store_get_config(st, &yaml, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(yaml, "");
    free(yaml);
    enpi_store_close(st);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--try-primary") == 0) {
        enpi_store_t *st = NULL;
        int rc = enpi_store_open(argv[2], ENPI_STORE_PRIMARY, &st, NULL, 0);
        enpi_store_close(st);
        return -rc;
    }
    enpi_log_max_level = ENPI_LOG_ERR; /* errors only: the failure tests cause some */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(commit_sums_deltas_within_a_batch_and_across_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(commit_sums_with_a_small_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_writes_nothing_and_can_be_retried, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(invalid_batch_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(rollup_scan_orders_by_start_and_keeps_ids_apart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rollup_scan_stops_when_the_callback_says_so, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(meter_states_are_replaced_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_meters_add_counts_and_keep_the_latest_topic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(inbox_survives_a_crash_and_commits_clear_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(inbox_upto_beyond_the_last_message_raises_next_seq, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(secondary_reads_what_the_primary_committed_after_catch_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(secondary_creates_nothing_in_the_store_folder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(secondary_on_a_missing_store_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(second_primary_is_ebusy, setup, teardown),
        cmocka_unit_test_setup_teardown(primary_refuses_a_newer_store_format, setup, teardown),
        cmocka_unit_test_setup_teardown(config_put_get, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
