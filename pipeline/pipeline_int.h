/*
 * pipeline_int.h - the inside of enpi_pipeline_t, shared by the files of the pipeline's
 * orchestration (private to pipeline/):
 *   pipeline.c             ingest: matching, decoding, the arithmetic, apportioning;
 *                          take_batch, restore and the statistics
 *   pipeline_create.c      create and free: inputs, meters and zones from the configuration
 *   pipeline_sparkplug.c   the Sparkplug B host's callbacks, the outbox, node state in batches
 *   pipeline_reconfigure.c enpi_pipeline_reconfigure (SIGHUP reload) and restore_added
 *
 * DESIGN: single-threaded (the loop thread), like the whole pipeline; only `progress` is
 * read by other threads.
 */
#ifndef ENPI_PIPELINE_INT_H
#define ENPI_PIPELINE_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accum.h"
#include "decode.h"
#include "decode_json.h"
#include "hindex.h"
#include "log.h"
#include "meter.h"
#include "pipeline.h"
#include "sparkplug.h"
#include "topic.h"
#include "tz.h"

#define HASH_NONFATAL_OOM 1 /* a failed insert leaves elt->hh.tbl NULL: unknown_seen checks */
#include <uthash.h>

#define REJECT_LOG_BURST 10 /* reject log lines per reason per minute */

typedef struct {
    enpi_acc_entry_t *e; /* last entry touched, valid while gen matches the accumulator's */
    uint64_t gen;
} win_cache_t;

typedef struct {
    enpi_meter_cfg_t cfg; /* a copy of the meter's definition: id owned (malloc), carrier
                             NULL; nothing points into the caller's configuration */
    const enpi_tz_t *tz;  /* the facility's zone */
    enpi_meter_state_t st;
    uint32_t index;      /* position in p->meters, stable for the pipeline's life */
    uint32_t batch_slot; /* position in the batch being built (take_batch) */
    bool dirty;          /* state changed since the last batch */
    bool live;           /* configured now; false: removed by a reconfigure (readings of
                            the id are unknown), state kept in case it comes back */
    bool fresh;          /* added by the last reconfigure, never known before, untouched
                            since: enpi_pipeline_restore_added() may load its stored state */
    win_cache_t cache[ENPI_MAX_RESOLUTIONS];
    size_t id_len; /* strlen(cfg.id), set when the meter is indexed */
} pmeter_t;

typedef struct {
    const enpi_input_cfg_t *cfg;
    enpi_topic_t topic;
    enpi_json_paths_t json;
    enpi_input_stats_t stats; /* messages matched and their rejects */
} pinput_t;

typedef struct {
    char *id;
    size_t id_len;
    char *topic;
    uint64_t count;
    int64_t last_seen_ms;
    UT_hash_handle hh;
} unknown_t;

struct enpi_pipeline {
    const enpi_config_t *cfg;      /* inputs and the file name; must outlive the pipeline */
    enpi_pipeline_cfg_t pcfg;      /* a copy: resolutions fixed at create, the rest
                                      replaced by enpi_pipeline_reconfigure */
    const enpi_pipeline_cfg_t *pc; /* &pcfg */
    size_t n_res;
    uint32_t res_code[ENPI_MAX_RESOLUTIONS];

    pinput_t *inputs;
    size_t n_inputs;
    const char **filters;

    enpi_tz_t **zones; /* one per distinct zone name ever used (reconfigures add) */
    size_t n_zones;
    size_t zones_cap;

    pmeter_t *meters; /* configured meters, then (after reconfigures) removed ones too */
    size_t n_meters;
    size_t n_live;       /* meters with live set */
    enpi_hindex_t by_id; /* meters by id, live and removed alike (enpi_pipeline_find_meter:
                            live ones only); holds pointers into meters */
    uint32_t *dirty;     /* indices of dirty meters, n_meters long */
    size_t n_dirty;

    enpi_accum_t acc;

    unknown_t *unknown; /* uthash head: unknown ids seen in this batch */
    size_t n_unknown;
    uint64_t unknown_overflow;

    uint64_t inbox_upto;
    bool inbox_moved; /* inbox_upto advanced since the last batch */

    enpi_pipeline_stats_t stats;
    _Atomic uint64_t progress;                   /* stats.messages, for other threads (relaxed) */
    enpi_ratelimit_t rl[ENPI_REJECT__COUNT + 1]; /* the extra one: out of memory */
    enpi_json_decoder_t *json;                   /* json and tasmota payloads */
    enpi_protobuf_decoder_t *protobuf;           /* protobuf payloads */

    /* Sparkplug B (all NULL when no input has format sparkplug) */
    enpi_sparkplug_t *sp;
    pmeter_t **sorted; /* the live meters ascending by id (bytewise), for deaths */
    size_t n_sorted;
    enpi_outbound_t *outbox; /* ring of ENPI_OUTBOX_MAX */
    size_t outbox_head;      /* oldest */
    size_t outbox_count;
    enpi_outbound_t *outbox_out; /* what take_outbox hands out */
    uint64_t outbox_queued;
    uint64_t outbox_dropped;
    enpi_ratelimit_t sp_rl;     /* log lines about rebirths and deaths */
    enpi_ratelimit_t rebase_rl; /* log lines about re-based meters */

    /* the message being ingested, for the decoders' callback */
    const char *topic;
    size_t topic_len;
    int topic_id_len; /* -1: the topic gives no usable id */
    char topic_id[ENPI_METER_ID_MAX + 1];
    int64_t arrival_ms;
    bool redelivered; /* the message carries ENPI_INGEST_REDELIVERED */
    pinput_t *in;     /* the input that matched it; NULL outside ingest and for no_input */
};

/* pipeline.c: CLOCK_REALTIME_COARSE in ms, for rate limits of log lines. */
int64_t enpi_pipeline_now_coarse_ms(void);

/* pipeline.c: the live meter of that id, or NULL (removed meters are not found). */
pmeter_t *enpi_pipeline_find_meter(const enpi_pipeline_t *p, const char *id, size_t len);

/* pipeline.c: the meter of that id in ix, live or removed, or NULL. */
pmeter_t *enpi_pipeline_find_indexed(const enpi_hindex_t *ix, const char *id, size_t len);

/* pipeline.c: adds m to ix under its id (sets m->id_len). 0 or ENPI_ENOMEM; never fails
 * when ix was reserved for it. The index holds &m: it is rebuilt whenever meters moves. */
int enpi_pipeline_index_meter(enpi_hindex_t *ix, pmeter_t *m);

/* pipeline.c: puts m on the dirty list (its state goes into the next batch). */
void enpi_pipeline_mark_dirty(enpi_pipeline_t *p, pmeter_t *m);

/* pipeline_create.c: formats the message into errbuf (when given) and returns rc. */
int enpi_pipeline_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* pipeline_sparkplug.c: qsort order of pmeter_t pointers by id (bytewise). */
int enpi_pipeline_cmp_meter_id(const void *a, const void *b);

/* pipeline_sparkplug.c: creates the Sparkplug host, the outbox and the sorted meter index, when an
 * input needs them. Returns 0 or ENPI_ENOMEM. */
int enpi_pipeline_build_sparkplug(enpi_pipeline_t *p);

/* pipeline_sparkplug.c: a zeroed batch with room behind it for the Sparkplug nodes that changed,
 * filled in. Returns NULL when memory ran out (the changes stay pending). */
enpi_batch_t *enpi_pipeline_batch_with_nodes(enpi_pipeline_t *p);

#endif
