/*
 * fuzz_ingest.c - libFuzzer target for the whole aggregation core (pipeline/pipeline.h):
 * hostile messages through matching, decoding, the meter arithmetic and apportioning
 * into windows of five resolutions in four zones chosen for their awkward days (Berlin's
 * DST, Lord Howe's 30-minute DST, Apia's skipped 2011-12-30, Kathmandu's +05:45).
 *
 * Input layout: records separated by the three bytes "\n~\n" (a separator rather than
 * length prefixes, so that mutations which insert or delete bytes keep the framing; it
 * is rare in JSON and protobuf payloads alike), at most MAX_RECORDS. Each record is one
 * message: its first byte picks the topic (low 4 bits, index into `topics`) and what
 * happens around it (bit 6: take a batch after it; bit 7: the clock jumps 31 days
 * first; bits 5-4 equal to 10, as in ' '..'/' and '`'..'o': a broker redelivery,
 * ENPI_INGEST_REDELIVERED); the rest is the payload. The clock (arrival time) starts at
 * 2024-03-31T00:30Z, half an hour before Berlin's spring-forward, and moves 5 minutes per
 * message. So a seed reads like
 *   0{"ts":1711845000000,"value":1000}
 *   ~
 *   @{"ts":1711845300000,"value":1500}
 * The config is parsed and the pipeline built once (opening the zones costs tens of
 * milliseconds under ASan); before each input every meter's state is reset to empty
 * through enpi_pipeline_restore, and the previous input ended with a take_batch, so no
 * reading, window or unknown id carries over from one input to the next. Only the
 * lifetime counters and the inbox sequence (strictly increasing, as the API requires)
 * keep counting.
 *
 * Every batch taken is checked against pipeline.h's promises: rollups name a meter of the
 * batch and a configured resolution, windows are non-empty and no longer than their
 * resolution allows, values are finite, each meter's increments add up to the same total
 * at every resolution (apportioning conserves energy), meter states are consistent
 * (first <= last, remembered delta timestamps ascending and bounded) and unknown ids are
 * printable and bounded in number.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "enpi_error.h"
#include "fuzz_util.h"
#include "pipeline.h"
#include "window.h"

#define MAX_RECORDS 64
#define SEP "\n~\n"
#define SEP_LEN 3
#define MIN_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
#define ARRIVAL_START_MS INT64_C(1711845000000) /* 2024-03-31T00:30:00Z */
#define RES_1MO 0xFFFF0001u

static const char config_yaml[] =
    "timezone: Europe/Berlin\n"
    "pipeline:\n"
    "  resolutions: [5m, 15m, 1h, 1d, 1mo]\n"
    "  allowed_lateness: 1h\n"
    "  max_future: 5m\n"
    "  max_gap: 1h\n"
    "inputs:\n"
    "  - topic: \"enpi/{facility}/{meter}\"\n"
    "    meter_id: \"{facility}/{meter}\"\n"
    "    format: json\n"
    "  - topic: \"bulk/{site}\"\n"
    "    format: json\n"
    "    value: reading.kwh\n"
    "    timestamp: reading.at\n"
    "    meter_id_path: id\n"
    "  - topic: \"shellies/{meter}/emeter/0/total\"\n"
    "    format: number\n"
    "  - topic: \"tele/{meter}/SENSOR\"\n"
    "    format: tasmota\n"
    "  - topic: \"meters/{meter}/pb\"\n"
    "    format: protobuf\n"
    "facilities:\n"
    "  - id: f1\n"
    "    meters:\n"
    "      - { id: f1/em, kind: energy, reading: cumulative, scale: 0.001, rollover: 1000000000 }\n"
    "      - { id: f1/gas, kind: energy, reading: delta, interval: 5m, to_kwh: 10.55 }\n"
    "      - { id: f1/heat, kind: energy, reading: delta }\n"
    "      - { id: f1/prod, kind: production, reading: cumulative, rollover: 1000000, "
    "max_rate: 5000 }\n"
    "  - id: f2\n"
    "    timezone: Australia/Lord_Howe\n"
    "    meters:\n"
    "      - { id: f2/em, kind: energy, reading: cumulative, max_rate: 100000 }\n"
    "      - { id: f2/steam, kind: energy, reading: delta, to_kwh: 0.7 }\n"
    "  - id: f3\n"
    "    timezone: Pacific/Apia\n"
    "    meters:\n"
    "      - { id: f3/em, kind: energy, reading: cumulative }\n"
    "      - { id: f3/gas, kind: energy, reading: delta, interval: 15m }\n"
    "  - id: f4\n"
    "    timezone: Asia/Kathmandu\n"
    "    meters:\n"
    "      - { id: f4/em, kind: energy, reading: cumulative }\n"
    "      - { id: shelly1, kind: energy, reading: cumulative, scale: 0.001 }\n"
    "      - { id: tasmota1, kind: energy, reading: cumulative }\n"
    "      - { id: pb1, kind: energy, reading: cumulative }\n";

/* Indexed by the low 4 bits of a record's first byte. */
static const char *const topics[16] = {
    "enpi/f1/em",           "enpi/f1/gas",
    "enpi/f1/heat",         "enpi/f1/prod",
    "enpi/f2/em",           "enpi/f2/steam",
    "enpi/f3/em",           "enpi/f3/gas",
    "bulk/site1",           "shellies/shelly1/emeter/0/total",
    "tele/tasmota1/SENSOR", "meters/pb1/pb",
    "enpi/f9/nope",         "nomatch/x",
    "enpi/f4/em",           "shellies/nope/emeter/0/total",
};

static enpi_config_t *cfg;
static enpi_pipeline_t *pipeline;
static uint64_t next_seq; /* inbox sequence across inputs */
static uint32_t res_codes[ENPI_MAX_RESOLUTIONS];
static size_t n_res;

/* Longest window a resolution may produce. */
static int64_t window_max_ms(uint32_t code)
{
    if (code == RES_1MO)
        return 31 * DAY_MS + HOUR_MS;
    if (code >= 1440)
        return DAY_MS + 2 * HOUR_MS; /* a local day, DST included */
    return (int64_t)code * MIN_MS;
}

static void check_state(const char *id, const enpi_meter_state_t *st)
{
    if (st->has_state) {
        FUZZ_CHECK(st->first_ts_ms <= st->last_ts_ms, "%s: first %lld > last %lld", id,
                   (long long)st->first_ts_ms, (long long)st->last_ts_ms);
        FUZZ_CHECK(isfinite(st->last_raw), "%s: last_raw %g", id, st->last_raw);
    }
    FUZZ_CHECK(st->n_recent <= ENPI_DELTA_RECENT_MAX, "%s: %zu recent", id, st->n_recent);
    FUZZ_CHECK(st->n_recent == 0 || st->recent_ts != NULL, "%s: recent_ts NULL", id);
    for (size_t i = 1; i < st->n_recent; i++)
        FUZZ_CHECK(st->recent_ts[i - 1] < st->recent_ts[i], "%s: recent_ts not ascending at %zu",
                   id, i);
}

/* Checks one batch against pipeline.h's promises (see the top of the file); aborts
 * through FUZZ_CHECK at the first broken one. inbox_upto: the sequence it must reach. */
static void check_batch(const enpi_batch_t *b, uint64_t inbox_upto)
{
    long double *sum = calloc((b->n_meters ? b->n_meters : 1) * n_res, sizeof(*sum));
    long double *mag = calloc((b->n_meters ? b->n_meters : 1) * n_res, sizeof(*mag));

    FUZZ_CHECK(sum != NULL && mag != NULL, "out of memory");
    FUZZ_CHECK(b->inbox_upto == inbox_upto, "inbox_upto %llu, want %llu",
               (unsigned long long)b->inbox_upto, (unsigned long long)inbox_upto);
    for (size_t i = 0; i < b->n_meters; i++) {
        FUZZ_CHECK(b->meters[i].meter_id != NULL, "meter %zu has no id", i);
        FUZZ_CHECK(enpi_config_meter(cfg, b->meters[i].meter_id, NULL) != NULL,
                   "snapshot of unconfigured meter %s", b->meters[i].meter_id);
        check_state(b->meters[i].meter_id, &b->meters[i].state);
    }
    for (size_t i = 0; i < b->n_rollups; i++) {
        const enpi_rollup_delta_t *d = &b->rollups[i];
        size_t r = 0;

        FUZZ_CHECK(d->meter < b->n_meters, "rollup %zu: meter %u of %zu", i, d->meter, b->n_meters);
        while (r < n_res && res_codes[r] != d->res_code)
            r++;
        FUZZ_CHECK(r < n_res, "rollup %zu: resolution code %#x not configured", i, d->res_code);
        FUZZ_CHECK(d->start < d->end && d->end - d->start <= window_max_ms(d->res_code),
                   "rollup %zu: window [%lld, %lld) at resolution %#x", i, (long long)d->start,
                   (long long)d->end, d->res_code);
        FUZZ_CHECK(isfinite(d->delta.value) && isfinite(d->delta.estimated),
                   "%s window [%lld, %lld) res %#x: value %g estimated %g",
                   b->meters[d->meter].meter_id, (long long)d->start, (long long)d->end,
                   d->res_code, d->delta.value, d->delta.estimated);
        sum[d->meter * n_res + r] += d->delta.value;
        mag[d->meter * n_res + r] += fabsl((long double)d->delta.value);
    }
    /* Every amount is spread over every resolution's windows: per meter, the totals of
     * all resolutions agree to rounding. */
    for (size_t m = 0; m < b->n_meters; m++) {
        for (size_t r = 1; r < n_res; r++) {
            long double a = sum[m * n_res], c = sum[m * n_res + r];
            long double tol = 1e-9L * (mag[m * n_res] + mag[m * n_res + r]) + 1e-9L;
            FUZZ_CHECK(fabsl(a - c) <= tol, "%s: total %.17Lg at res %#x but %.17Lg at res %#x",
                       b->meters[m].meter_id, a, res_codes[0], c, res_codes[r]);
        }
    }
    FUZZ_CHECK(b->n_unknown <= ENPI_UNKNOWN_MAX, "%zu unknown ids", b->n_unknown);
    for (size_t i = 0; i < b->n_unknown; i++) {
        const enpi_unknown_delta_t *u = &b->unknown[i];
        FUZZ_CHECK(u->meter_id != NULL && u->last_topic != NULL && u->count > 0,
                   "unknown entry %zu incomplete", i);
        FUZZ_CHECK(enpi_config_meter(cfg, u->meter_id, NULL) == NULL,
                   "configured meter %s listed as unknown", u->meter_id);
        for (const char *c = u->meter_id; *c != '\0'; c++)
            FUZZ_CHECK((unsigned char)*c >= 0x20 && *c != 0x7F, "unknown id with control byte");
    }
    free(sum);
    free(mag);
}

/* Takes a batch, checks it and frees it; afterwards the pipeline must be clean. */
static void take_and_check(enpi_pipeline_t *p, uint64_t inbox_upto)
{
    enpi_batch_t *b = NULL;
    int rc = enpi_pipeline_take_batch(p, &b);

    if (rc == ENPI_ENOMEM)
        return;
    FUZZ_CHECK(rc == 0 && b != NULL, "take_batch rc %d", rc);
    check_batch(b, inbox_upto);
    FUZZ_CHECK(!enpi_pipeline_dirty(p) && enpi_pipeline_pending(p) == 0,
               "pipeline dirty right after take_batch");
    enpi_batch_free(b);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[512] = "";
    int rc;

    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    rc = enpi_config_parse("fuzz_ingest.yaml", config_yaml, sizeof(config_yaml) - 1, &cfg, err,
                           sizeof(err));
    FUZZ_CHECK(rc == 0, "config: %s", err);
    n_res = cfg->pipeline.n_resolutions;
    for (size_t r = 0; r < n_res; r++)
        res_codes[r] = enpi_resolution_code(&cfg->pipeline.resolutions[r]);
    rc = enpi_pipeline_create(cfg, &pipeline, err, sizeof(err));
    FUZZ_CHECK(rc == 0, "pipeline_create: %s", err);
    return 0;
}

/* Every configured meter back to "never read". */
static void reset_meters(enpi_pipeline_t *p)
{
    const enpi_meter_state_t empty = {0};

    for (size_t f = 0; f < cfg->n_facilities; f++)
        for (size_t m = 0; m < cfg->facilities[f].n_meters; m++)
            FUZZ_CHECK(enpi_pipeline_restore(p, cfg->facilities[f].meters[m].id, &empty) == 0,
                       "restore %s", cfg->facilities[f].meters[m].id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enpi_pipeline_t *p = pipeline;
    int64_t arrival = ARRIVAL_START_MS;
    size_t pos = 0;

    reset_meters(p);
    for (size_t n = 0; n < MAX_RECORDS && pos < size; n++) {
        const uint8_t *sep = memmem(data + pos, size - pos, SEP, SEP_LEN);
        size_t end = sep != NULL ? (size_t)(sep - data) : size;
        uint8_t sel = data[pos];

        if (end > pos) {
            if (sel & 0x80)
                arrival += 31 * DAY_MS;
            enpi_pipeline_ingest(p, next_seq, topics[sel & 0x0F], strlen(topics[sel & 0x0F]),
                                 data + pos + 1, end - pos - 1, arrival,
                                 (sel & 0x30) == 0x20 ? ENPI_INGEST_REDELIVERED : 0);
            next_seq++;
            if (sel & 0x40)
                take_and_check(p, next_seq);
            arrival += 5 * MIN_MS;
        }
        pos = end + SEP_LEN;
    }
    take_and_check(p, next_seq);
    return 0;
}
