/*
 * pipeline.h - the aggregation core: MQTT-free, libuv-free, RocksDB-free.
 *
 * An enpi_pipeline_t takes raw messages (topic + payload, in inbox order), matches them to
 * the configured inputs, decodes readings, applies SPEC §5's per-meter arithmetic
 * (cumulative/delta, scale, to_kwh, resets, rollover, duplicates, late, max_rate) and
 * apportions each interval's energy or production across every configured resolution's
 * windows in the facility's zone. The results accumulate as *increments* until the caller
 * takes them with enpi_pipeline_take_batch(): rollup deltas to add to what is stored, the
 * full state of every meter that changed, unknown-meter sightings, and how far through the
 * inbox the batch reaches. Storage turns one batch into one atomic write.
 *
 * Sparkplug B inputs (`format: sparkplug`) go through the stateful host of sparkplug.h:
 * what NBIRTH/DBIRTH taught each edge node travels in the batches (enpi_node_snapshot_t)
 * and is loaded back at start-up with enpi_pipeline_restore_sparkplug(), so replaying the
 * inbox after a crash resolves aliases exactly as the first pass did. NDEATH/DDEATH mark
 * the edge node's or device's meters dead (enpi_meter_state_t.dead_since_ms). Rebirth
 * requests wait in a bounded outbox for the daemon to publish (enpi_pipeline_take_outbox).
 *
 * DESIGN: single-threaded. The loop thread owns the pipeline; a batch, once taken, is a
 * self-contained value that another thread (the commit worker) may read and then free.
 */
#ifndef ENPI_PIPELINE_H
#define ENPI_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sparkplug.h"

/* Why a message or reading was not applied (SPEC §4 plus the arithmetic's own). */
typedef enum {
    ENPI_REJECT_PARSE = 0,     /* payload does not parse */
    ENPI_REJECT_MISSING_VALUE, /* no value at the configured path / wrong type */
    ENPI_REJECT_NOT_FINITE,    /* NaN or infinity */
    ENPI_REJECT_NEGATIVE,      /* negative value for a cumulative meter */
    ENPI_REJECT_TOO_OLD,       /* stamped before 2000-01-01 */
    ENPI_REJECT_FUTURE,        /* stamped more than max_future after arrival */
    ENPI_REJECT_TOO_LARGE,     /* payload over 256 KiB */
    ENPI_REJECT_BAD_TIMESTAMP, /* timestamp present but not a number or ISO 8601 */
    ENPI_REJECT_BAD_METER_ID,  /* meter id empty, over 128 bytes, or not printable UTF-8 */
    ENPI_REJECT_UNKNOWN_METER, /* meter id not configured */
    ENPI_REJECT_NO_INPUT,      /* topic matches no input's template */
    ENPI_REJECT_TOO_LATE,      /* delta reading older than allowed_lateness */
    ENPI_REJECT_IMPLAUSIBLE,   /* rate above the meter's max_rate */
    ENPI_REJECT__COUNT
} enpi_reject_t;

/* Stable snake_case name for metrics and logs: "parse_error", "unknown_meter", ... */
const char *enpi_reject_name(enpi_reject_t reason);

#define ENPI_PAYLOAD_MAX (256 * 1024)
#define ENPI_DELTA_RECENT_MAX 4096 /* delta timestamps remembered for duplicate detection */
#define ENPI_UNKNOWN_MAX 1024      /* distinct unknown meter ids listed per batch */

/* Per-meter state: what the next reading is compared with. Persisted by storage. */
typedef struct {
    bool has_state;      /* false until the first accepted reading */
    int64_t last_ts_ms;  /* newest accepted reading's timestamp (UTC ms) */
    double last_raw;     /* cumulative: raw register value at last_ts_ms */
    int64_t first_ts_ms; /* first accepted reading ever */
    uint64_t readings;   /* lifetime counters */
    uint64_t resets;
    uint64_t late;
    uint64_t duplicates;
    uint64_t rejected;
    /* delta meters: timestamps already applied within allowed_lateness of last_ts_ms,
     * plus the newest applied one before that horizon (the predecessor a late reading
     * without interval spreads from); ascending, at most ENPI_DELTA_RECENT_MAX; owned
     * (malloc), NULL when none. A state handed to the pipeline is always copied
     * (enpi_pipeline_restore), so its allocation size does not matter. */
    int64_t *recent_ts;
    size_t n_recent;
    /* Sparkplug: arrival time of the NDEATH/DDEATH that declared this meter's edge node or
     * device dead; 0 = alive. Cleared by the meter's next accepted reading. */
    int64_t dead_since_ms;
} enpi_meter_state_t;

/* Deep copy (recent_ts duplicated). Returns 0 or ENPI_ENOMEM. */
int enpi_meter_state_copy(enpi_meter_state_t *dst, const enpi_meter_state_t *src);
/* Frees what the state owns (not the struct itself). */
void enpi_meter_state_clear(enpi_meter_state_t *st);

/* One window's figures for one meter. Stored whole; batches carry increments. */
typedef struct {
    double value;      /* kWh for energy meters, product units for production meters */
    double estimated;  /* the part of value spread from intervals longer than max_gap */
    uint32_t readings; /* accepted readings stamped in the window */
    uint32_t resets;
    uint32_t late;
    uint32_t duplicates;
} enpi_rollup_t;

typedef struct {
    uint32_t meter;    /* index into enpi_batch_t.meters */
    uint32_t res_code; /* enpi_resolution_code() of the resolution */
    int64_t start;     /* window [start, end), UTC ms */
    int64_t end;
    enpi_rollup_t delta; /* to be added to the stored rollup (or stored as is if none) */
} enpi_rollup_delta_t;

typedef struct {
    char *meter_id;           /* owned */
    enpi_meter_state_t state; /* owned deep copy: the meter's full state after the batch */
} enpi_meter_snapshot_t;

typedef struct {
    char *meter_id;   /* owned; as received (already validated as printable) */
    char *last_topic; /* owned */
    uint64_t count;   /* sightings in this batch */
    int64_t last_seen_ms;
} enpi_unknown_delta_t;

/*
 * The learned state of one Sparkplug edge node (sparkplug.h "Persistence"), to be stored
 * under its key in the same write as the rest of the batch. It lives inside the batch's
 * own allocation (see enpi_batch_t.nodes): never free its pointers separately.
 */
typedef struct {
    const char *key;      /* "group/node", NUL-terminated */
    const uint8_t *state; /* serialized store.proto SparkplugNode; NULL: the node is no
                             longer born, delete its stored record */
    size_t state_len;
} enpi_node_snapshot_t;

/* One commit's worth of work. Self-contained: owns every string and array in it. */
typedef struct {
    enpi_rollup_delta_t *rollups;
    size_t n_rollups;
    enpi_meter_snapshot_t *meters;
    size_t n_meters;
    enpi_unknown_delta_t *unknown;
    size_t n_unknown;
    uint64_t inbox_upto;       /* every inbox message with seq < inbox_upto is reflected;
                                  0 = nothing ingested yet; never decreases between batches */
    uint64_t unknown_overflow; /* sightings of unknown ids beyond the ENPI_UNKNOWN_MAX
                                  listed in `unknown` (counted, not named) */
    /* Sparkplug edge nodes whose learned state changed, at most one per key. A batch from
     * enpi_pipeline_take_batch() holds this array and every key and state it points to in
     * the same allocation as the enpi_batch_t itself, so enpi_batch_free() releases them
     * with the struct; a caller-built batch points them wherever it likes. */
    enpi_node_snapshot_t *nodes;
    size_t n_nodes;
} enpi_batch_t;

void enpi_batch_free(enpi_batch_t *b);

/* Counters since the pipeline was created (process lifetime; for metrics and logs). */
typedef struct {
    uint64_t messages; /* messages ingested */
    uint64_t readings; /* readings decoded */
    uint64_t applied;  /* readings accepted (including state-only first readings) */
    uint64_t duplicates;
    uint64_t late; /* late readings (ignored cumulative, applied delta) */
    uint64_t resets;
    uint64_t redelivered; /* readings of broker redeliveries (ENPI_INGEST_REDELIVERED) found
                             already applied: ignored and counted here only, neither as
                             duplicates nor as late */
    uint64_t rebased;     /* readings more than ENPI_MAX_SPREAD_MS after the meter's previous
                             one: they re-base the meter instead of being apportioned */
    uint64_t rejects[ENPI_REJECT__COUNT];
    uint64_t nomem; /* readings dropped because memory ran out (logged) */
} enpi_pipeline_stats_t;

typedef struct enpi_pipeline enpi_pipeline_t;

/*
 * Builds a pipeline for `cfg`: opens every zone, compiles every input's topic template.
 * Returns 0, or an ENPI_E* code with a message in errbuf. `cfg` must outlive the pipeline
 * for its inputs (the pipeline points into cfg->inputs); the pipeline section and every
 * meter's definition are copied, so cfg->facilities may be replaced (see
 * enpi_pipeline_reconfigure) once create returns.
 */
int enpi_pipeline_create(const enpi_config_t *cfg, enpi_pipeline_t **out, char *errbuf,
                         size_t errlen);
void enpi_pipeline_free(enpi_pipeline_t *p);

/* The MQTT subscription filters of the inputs ("enpi/+/+", "tele/+/SENSOR"), one per input. */
size_t enpi_pipeline_filters(const enpi_pipeline_t *p, const char *const **filters_out);

/* Loads a stored meter state (copied). Unknown meter ids are ignored (return ENPI_ENOENT). */
int enpi_pipeline_restore(enpi_pipeline_t *p, const char *meter_id, const enpi_meter_state_t *st);

/* What enpi_pipeline_reconfigure() did. */
typedef struct {
    size_t meters;       /* meters configured now */
    size_t added;        /* ids this pipeline never had: fresh state (see restore_added) */
    size_t revived;      /* ids an earlier reconfigure removed, configured again: the state
                            they had when removed carries on */
    size_t removed;      /* configured before, not now */
    size_t changed;      /* surviving meters whose definition (kind, reading, interval,
                            scale, to_kwh, rollover, max_rate) changed */
    size_t rebased;      /* of those, kind or reading type changed: state re-based */
    size_t zone_changed; /* surviving meters whose facility's time zone changed */
} enpi_reconfigure_summary_t;

/*
 * Replaces the meter table with `cfg`'s facilities and meters (a SIGHUP reload), and
 * allowed_lateness, max_future and max_gap with cfg->pipeline's. Not changed: the inputs
 * and the resolutions the pipeline was created with (cfg's are ignored: the caller keeps
 * those until a restart). Everything used from cfg is copied: cfg may be freed as soon as
 * this returns. Loop thread, between ingests.
 *  - A meter in both configurations keeps its state; a changed definition applies from
 *    its next reading on. When its kind or reading type changed, its state is re-based
 *    (lifetime counters stay): the next reading is a first reading, no amount is spread
 *    across the change (mixing two meanings of the register).
 *  - A new meter starts with no state; its readings are applied instead of counted as
 *    unknown_meter. Call enpi_pipeline_restore_added() for every stored meter state right
 *    after (a meter configured in an earlier run may have one).
 *  - A removed meter's readings become unknown_meter. Its pending increments and state
 *    still go into the next batch (its stored data stays); the pipeline keeps its state
 *    (memory: one entry per id ever configured in the process), so configuring it again
 *    continues from there, even while the batch with its last state is not yet stored.
 *  - A facility whose zone changed: its meters' windows follow the new zone from the next
 *    reading on (the pending increments keep the old windows).
 * Pending increments, the unknown table, the outbox and the Sparkplug host are kept.
 * Returns 0 (and fills *out when not NULL), or ENPI_EINVAL (invalid meter id, id
 * configured twice), ENPI_ENOENT (unknown zone), ENPI_ERANGE, ENPI_ENOMEM with a message
 * in errbuf: then nothing changed.
 */
int enpi_pipeline_reconfigure(enpi_pipeline_t *p, const enpi_config_t *cfg,
                              enpi_reconfigure_summary_t *out, char *errbuf, size_t errlen);

/*
 * Like enpi_pipeline_restore, but only for a meter the last enpi_pipeline_reconfigure
 * added (never known to this pipeline) and that nothing touched since: returns
 * ENPI_ENOENT for every other id (their state in the pipeline is newer than the store's).
 */
int enpi_pipeline_restore_added(enpi_pipeline_t *p, const char *meter_id,
                                const enpi_meter_state_t *st);

/*
 * Loads the stored learned state of one Sparkplug edge node (a batch's
 * enpi_node_snapshot_t as storage kept it; key "group/node" NUL-terminated, state copied).
 * Call at start-up for every stored node, after enpi_pipeline_restore of the meter states
 * and before replaying the inbox. Returns 0; ENPI_ENOENT when no input has format
 * sparkplug (ignored: the record stays in the store); ENPI_EINVAL for a malformed key;
 * ENPI_EPARSE when the state does not decode (the node will be asked to rebirth, and the
 * next batch deletes the record); ENPI_EFULL, ENPI_ENOMEM (see
 * enpi_sparkplug_import_node). None of these need stop the daemon: log and go on.
 */
int enpi_pipeline_restore_sparkplug(enpi_pipeline_t *p, const char *key, const void *state,
                                    size_t state_len);

/* Bits of enpi_pipeline_ingest()'s `flags`. REDELIVERED: the broker marked the message as
 * a redelivery (MQTT DUP), so it may have been applied before. */
#define ENPI_INGEST_REDELIVERED 1u

/*
 * Ingests one message, identified by its inbox sequence number (strictly increasing across
 * calls). Rejects are counted (stats, the meter's state, unknown table) and logged at a
 * limited rate; nothing here fails the caller. `arrival_ms` is the wall clock when the
 * message arrived: it stamps payloads without time and bounds max_future.
 * The first input (config order) whose topic template matches decodes the payload. For
 * each reading the first applicable reject wins, in this order: no_input, too_large,
 * parse_error (message or array element), bad_meter_id, unknown_meter, missing_value,
 * not_finite, bad_timestamp, negative, too_old, future, too_late, implausible. Once the
 * reading's meter is known (from the payload or the topic) the reject also counts in its
 * state.rejected. Allocates nothing per message in the steady state.
 * `flags` holds ENPI_INGEST_* bits. With ENPI_INGEST_REDELIVERED (a broker redelivery
 * after a crash or disconnect, normally already applied before) a reading that turns out
 * to be a duplicate or an ignored late one counts only in stats.redelivered: not in the
 * window's or the meter's late/duplicates, and the meter's state does not change. Such a
 * message's new readings (the first delivery never arrived) apply as usual.
 */
void enpi_pipeline_ingest(enpi_pipeline_t *p, uint64_t seq, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, int64_t arrival_ms,
                          unsigned flags);

/*
 * Applies one decoded reading of a configured meter (raw value before scale). Returns 0
 * when accepted (applied, or state-only first reading), 1 when counted and ignored as a
 * duplicate or late reading, or -1 with *reason set when rejected (an unknown id is also
 * listed in the batch's unknown table, with an empty topic). Out of memory gives -1 with
 * *reason = ENPI_REJECT__COUNT (stats.nomem counts it; nothing changed).
 */
int enpi_pipeline_apply(enpi_pipeline_t *p, const char *meter_id, size_t id_len, int64_t ts_ms,
                        double raw_value, int64_t arrival_ms, enpi_reject_t *reason);

/* True when anything happened since the last batch was taken (including inbox progress
 * and Sparkplug node state to store). */
bool enpi_pipeline_dirty(const enpi_pipeline_t *p);

/* Number of rollup deltas pending (to commit early when a batch grows large). */
size_t enpi_pipeline_pending(const enpi_pipeline_t *p);

/* Moves the accumulated increments into a new batch (caller frees with enpi_batch_free)
 * and starts a fresh accumulation. The batch also carries the Sparkplug edge nodes whose
 * learned state changed since the previous batch (their state as of now, i.e. after the
 * batch's last message); once taken they count as stored, so a failed commit must be
 * retried with the same batch. Returns 0 or ENPI_ENOMEM (pipeline unchanged then). */
int enpi_pipeline_take_batch(enpi_pipeline_t *p, enpi_batch_t **out);

const enpi_pipeline_stats_t *enpi_pipeline_stats(const enpi_pipeline_t *p);

/* stats.messages as of the last ingest, readable from ANY thread (a relaxed atomic): for
 * a watcher that only needs to see progress, e.g. during the start-up replay. */
uint64_t enpi_pipeline_progress(const enpi_pipeline_t *p);

/* Counters of one configured input since the pipeline was created: the messages whose
 * topic it matched (the first matching input, see enpi_pipeline_ingest) and their
 * rejects by reason. no_input rejects belong to no input (global stats only), nor do
 * those of readings given to enpi_pipeline_apply(); every other reject counts both here
 * and in enpi_pipeline_stats_t.rejects. */
typedef struct {
    uint64_t messages;
    uint64_t rejects[ENPI_REJECT__COUNT];
} enpi_input_stats_t;

/* Number of configured inputs (the config's, in order). */
size_t enpi_pipeline_n_inputs(const enpi_pipeline_t *p);

/* Copies input `input`'s counters (index = position in cfg->inputs) into *out. Returns 0,
 * or ENPI_ERANGE (*out untouched) when input >= enpi_pipeline_n_inputs(p). */
int enpi_pipeline_input_stats(const enpi_pipeline_t *p, size_t input, enpi_input_stats_t *out);

/* Copies the Sparkplug host's counters (sparkplug.h) into *out and returns true; false
 * (and *out zeroed) when no input has format sparkplug. Its parse_errors and bad_ids are
 * also counted in the pipeline's rejects (parse_error, bad_meter_id). */
bool enpi_pipeline_sparkplug_stats(const enpi_pipeline_t *p, enpi_sparkplug_stats_t *out);

/* ---- outbox: MQTT messages the pipeline wants published (Sparkplug rebirth requests) ---- */

#define ENPI_OUTBOX_MAX 1024        /* messages kept; when full the oldest is dropped */
#define ENPI_OUTBOUND_TOPIC_MAX 160 /* topic bytes including the NUL */
#define ENPI_OUTBOUND_PAYLOAD_MAX 64

typedef struct {
    char topic[ENPI_OUTBOUND_TOPIC_MAX]; /* NUL-terminated */
    size_t topic_len;
    uint8_t payload[ENPI_OUTBOUND_PAYLOAD_MAX];
    size_t payload_len;
    int qos;     /* 0 for rebirth requests (NCMD) */
    bool retain; /* false for rebirth requests */
} enpi_outbound_t;

/*
 * Hands over the queued messages, oldest first, and empties the outbox. *msgs_out points
 * to an array owned by the pipeline, valid until the next call or enpi_pipeline_free;
 * returns how many it holds (0: *msgs_out may be NULL). Loop thread. A Sparkplug rebirth
 * request (sparkplug.h) is the NCMD "Node Control/Rebirth" = true to
 * "spBv1.0/<group>/NCMD/<node>", stamped with the arrival time of the message that
 * caused it, to be published with the given qos and retain flag. While nothing takes
 * them (start-up replay, broker down) the outbox keeps the newest ENPI_OUTBOX_MAX.
 */
size_t enpi_pipeline_take_outbox(enpi_pipeline_t *p, enpi_outbound_t **msgs_out);

typedef struct {
    uint64_t queued;  /* messages queued since creation */
    uint64_t dropped; /* dropped, oldest first, because the outbox was full */
    size_t pending;   /* waiting now */
} enpi_outbox_stats_t;

void enpi_pipeline_outbox_stats(const enpi_pipeline_t *p, enpi_outbox_stats_t *out);

/* The live state of a configured meter (NULL for an unknown id): for `enpi`-like views,
 * tests, and carrying states into a pipeline rebuilt on reload (copy it with
 * enpi_pipeline_restore). Valid until the next ingest/apply/take_batch. */
const enpi_meter_state_t *enpi_pipeline_meter_state(const enpi_pipeline_t *p, const char *meter_id);

#endif
