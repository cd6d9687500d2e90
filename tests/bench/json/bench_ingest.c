/*
 * bench_ingest.c - readings per second through enpi_pipeline_ingest() on one core: topic
 * match, JSON decode, meter lookup, cumulative arithmetic and apportioning into 15m, 1h,
 * 1d and 1mo windows (Europe/Berlin), with a batch taken every N messages as the daemon's
 * commit timer would (N = what arrives in one commit_interval). Messages are generated up front, so
 * only the pipeline is timed. Payloads carry 1, 2 or 20 readings.
 *
 * Usage: bench_ingest [readings per case, default 2000000] [meters, default 1000]
 *                     [messages per batch, default 100000]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "pipeline.h"

#define FACILITIES 10

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *make_config(int meters)
{
    size_t cap = 4096 + (size_t)meters * 96, off = 0;
    char *y = malloc(cap);
    int per = meters / FACILITIES;

    off += (size_t)snprintf(y + off, cap - off,
                            "timezone: Europe/Berlin\n"
                            "inputs:\n"
                            "  - topic: \"enpi/{facility}/{meter}\"\n"
                            "    meter_id: \"{facility}/{meter}\"\n"
                            "    format: json\n"
                            "facilities:\n");
    for (int f = 0; f < FACILITIES; f++) {
        off += (size_t)snprintf(y + off, cap - off, "  - id: f%02d\n    meters:\n", f);
        for (int m = 0; m < per; m++)
            off += (size_t)snprintf(y + off, cap - off,
                                    "      - { id: f%02d/m%04d, kind: energy, reading: "
                                    "cumulative, scale: 0.001 }\n",
                                    f, m);
    }
    return y;
}

typedef struct {
    char *arena;
    size_t *topic_off, *payload_off;
    size_t *topic_len, *payload_len;
    int64_t *arrival;
    size_t n;
} messages_t;

static void make_messages(messages_t *ms, long readings, int meters, int per_msg)
{
    size_t n = (size_t)(readings / per_msg), cap = n * (40 + (size_t)per_msg * 48) + 64, off = 0;
    int64_t base = INT64_C(1522206000000); /* 2018-03-28T03:00:00Z */

    ms->arena = malloc(cap);
    ms->topic_off = malloc(n * sizeof(size_t));
    ms->payload_off = malloc(n * sizeof(size_t));
    ms->topic_len = malloc(n * sizeof(size_t));
    ms->payload_len = malloc(n * sizeof(size_t));
    ms->arrival = malloc(n * sizeof(int64_t));
    ms->n = n;
    for (size_t i = 0; i < n; i++) {
        int m = (int)(i % (size_t)meters), per = meters / FACILITIES;
        long round = (long)(i / (size_t)meters);
        int64_t ts = base + (int64_t)round * per_msg * 7000 + m;
        double value = 1000.0 + (double)round * per_msg * 12.5 + m;

        ms->topic_off[i] = off;
        ms->topic_len[i] =
            (size_t)snprintf(ms->arena + off, cap - off, "enpi/f%02d/m%04d", m / per, m % per);
        off += ms->topic_len[i];
        ms->payload_off[i] = off;
        if (per_msg == 1) {
            off += (size_t)snprintf(ms->arena + off, cap - off,
                                    "{\"ts\": %" PRId64 ", \"value\": %.3f}", ts, value);
        } else {
            off += (size_t)snprintf(ms->arena + off, cap - off, "[");
            for (int k = 0; k < per_msg; k++)
                off += (size_t)snprintf(ms->arena + off, cap - off,
                                        "%s{\"ts\": %" PRId64 ", \"value\": %.3f}", k ? "," : "",
                                        ts + k * 7000, value + k * 12.5);
            off += (size_t)snprintf(ms->arena + off, cap - off, "]");
        }
        ms->payload_len[i] = off - ms->payload_off[i];
        ms->arrival[i] = ts + per_msg * 7000;
    }
}

static void free_messages(messages_t *ms)
{
    free(ms->arena);
    free(ms->topic_off);
    free(ms->payload_off);
    free(ms->topic_len);
    free(ms->payload_len);
    free(ms->arrival);
}

int main(int argc, char **argv)
{
    long readings = argc > 1 ? atol(argv[1]) : 2000000;
    int meters = argc > 2 ? atoi(argv[2]) : 1000;
    size_t batch_every = argc > 3 ? (size_t)atol(argv[3]) : 100000;
    char *yaml = make_config(meters), err[256];
    enpi_config_t *cfg;
    static const int per_msg[] = {1, 2, 20};

    if (enpi_config_parse("bench.yaml", yaml, strlen(yaml), &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return 1;
    }
    printf("%d meters, resolutions 15m/1h/1d/1mo, Europe/Berlin, batch every %zu messages\n",
           meters, batch_every);
    printf("%-10s %12s %14s %14s %12s %10s\n", "readings", "messages", "ingest r/s",
           "incl. batch r/s", "ns/reading", "rollups");
    for (size_t c = 0; c < sizeof(per_msg) / sizeof(per_msg[0]); c++) {
        messages_t ms;
        enpi_pipeline_t *p;
        double t_ingest = 0, t_batch = 0, t0;
        size_t rollups = 0;
        const enpi_pipeline_stats_t *st;

        make_messages(&ms, readings, meters, per_msg[c]);
        if (enpi_pipeline_create(cfg, &p, err, sizeof(err)) != 0) {
            fprintf(stderr, "pipeline: %s\n", err);
            return 1;
        }
        for (size_t i = 0; i < ms.n; i += batch_every) {
            size_t end = i + batch_every < ms.n ? i + batch_every : ms.n;
            enpi_batch_t *b;

            t0 = now_s();
            for (size_t k = i; k < end; k++)
                enpi_pipeline_ingest(p, k, ms.arena + ms.topic_off[k], ms.topic_len[k],
                                     ms.arena + ms.payload_off[k], ms.payload_len[k],
                                     ms.arrival[k], 0);
            t_ingest += now_s() - t0;
            t0 = now_s();
            if (enpi_pipeline_take_batch(p, &b) != 0)
                return 1;
            rollups += b->n_rollups;
            enpi_batch_free(b);
            t_batch += now_s() - t0;
        }
        st = enpi_pipeline_stats(p);
        if (st->applied != st->readings) {
            fprintf(stderr, "only %" PRIu64 " of %" PRIu64 " readings applied\n", st->applied,
                    st->readings);
            return 1;
        }
        printf("%-10d %12zu %14.0f %14.0f %12.1f %10zu\n", per_msg[c], ms.n,
               (double)st->readings / t_ingest, (double)st->readings / (t_ingest + t_batch),
               t_ingest * 1e9 / (double)st->readings, rollups);
        enpi_pipeline_free(p);
        free_messages(&ms);
    }
    enpi_config_free(cfg);
    free(yaml);
    return 0;
}
