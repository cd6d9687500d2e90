/*
 * sparkplug.h - the `sparkplug` input format: Eclipse Sparkplug B (specification 3.0.0)
 * seen from a host application that only listens.
 *
 * Sparkplug messages are not self-describing: an edge node announces its metrics once, in
 * NBIRTH (node metrics) and DBIRTH (each device's metrics), with name, alias and datatype,
 * and its NDATA/DDATA messages then carry mostly aliases and bare values. So unlike the
 * other decoders this one keeps state: an enpi_sparkplug_t remembers, per edge node
 * (group_id + edge_node_id), whether it is born, its metrics (name <-> alias <-> datatype,
 * per device), its bdSeq and the next expected message seq (0..255, wrapping).
 *
 * Topics: spBv1.0/<group>/<type>/<node>[/<device>], types NBIRTH NDEATH NDATA NCMD
 * (node level, no device) and DBIRTH DDEATH DDATA DCMD (device level). NCMD, DCMD and the
 * v3 host form spBv1.0/STATE/<host> are counted as ignored (enpid subscribes to spBv1.0/#
 * and so also hears its own rebirth requests).
 *
 * Readings: every numeric metric value of NBIRTH, DBIRTH, NDATA and DDATA becomes one
 * enpi_raw_reading_t (decode.h) with meter id "group/node/metric name" or
 * "group/node/device/metric name". Int8..Int64 are read signed and UInt8..UInt64 unsigned
 * from int_value or long_value (whichever the sender used: Tahu's JavaScript encoder puts
 * UInt32 in long_value), Float and Double from float_value or double_value. The timestamp
 * is the metric's, else the payload's, else the arrival time. Metrics with is_null, and
 * metrics of any other datatype (Boolean, String, DateTime, Text, DataSet, Template,
 * arrays ...) are counted and skipped. A DATA metric of a numeric datatype that carries
 * no value (or a value of the wrong kind) is a reading with ENPI_VALUE_MISSING; a birth
 * metric without a value only declares the metric. A float NaN or infinity is a reading
 * with ENPI_VALUE_NOT_FINITE. A meter id longer than ENPI_SPARKPLUG_ID_MAX bytes gives a
 * reading with id_invalid set (bad_meter_id) and no id. The NBIRTH's "bdSeq" metric is
 * session bookkeeping and gives no reading.
 *
 * Rebirth: when a data message cannot be interpreted - data (or a DBIRTH) from an edge
 * node that is not born, data for a device that is not born, a metric whose alias or
 * name the births did not declare, or a seq that is not the expected one - the host asks
 * the edge node to publish its births again, as the specification describes: the
 * rebirth_cb option is called with the group and node, at most once per
 * rebirth_interval_ms of arrival time per edge node, and the caller publishes
 * enpi_sparkplug_rebirth_payload() to enpi_sparkplug_rebirth_topic(). A seq gap does not
 * drop the message's readings (their metrics still resolve); the expected seq follows the
 * message. The reorder timeout of the specification is zero: enpid reads one broker, which
 * keeps one client's messages in order.
 *
 * Death: NDEATH (whose bdSeq metric, when both it and the NBIRTH's are present, matches
 * the NBIRTH's - an older session's late will message is counted in stale_deaths and
 * ignored) makes the node unborn, forgets all its metrics and devices, and calls death_cb
 * with "group/node/"; DDEATH makes the device unborn, forgets its metrics and calls
 * death_cb with "group/node/device/". The prefix ends in '/', so every meter id that
 * starts with it belongs to the dead node or device (the pipeline marks them stale).
 *
 * Bounds: at most max_nodes edge nodes (an edge node that is not born is evicted, oldest
 * first, to make room; when all are born the new node's message is counted in nodes_full
 * and dropped), at most max_node_metrics metrics per edge node (each device counts one as
 * well) and max_metrics in all; birth metrics beyond them are counted in metrics_full and
 * not learned, and the node is marked incomplete until its next NBIRTH so that its
 * unresolvable metrics are counted without asking for rebirths in a loop. Metric names
 * whose meter id would exceed ENPI_SPARKPLUG_ID_MAX are learned by alias only. Topics
 * whose group/node/device part alone exceeds ENPI_SPARKPLUG_ID_MAX are refused
 * (ENPI_EINVAL) before any state is created. Protobuf nesting deeper than
 * ENPI_SPARKPLUG_NESTING_MAX is refused before protobuf-c sees it (protobuf-c recurses
 * without limit). Payload size is bounded by the caller (the pipeline refuses payloads
 * over ENPI_PAYLOAD_MAX before any decoder runs).
 *
 * Persistence: what births taught must outlive a restart, because the births themselves
 * were committed and left the inbox long ago. The host tracks which edge nodes' learned
 * state changed (NBIRTH, DBIRTH, NDEATH, DDEATH - data messages never change it) and
 * hands each one out, serialized as the SparkplugNode message of proto/store.proto, with
 * enpi_sparkplug_changes(); the caller stores them with the batch of the same moment and
 * then calls enpi_sparkplug_changes_done(). At start-up enpi_sparkplug_import_node()
 * loads each stored node back. A record holds the node's metrics (name, alias, datatype,
 * per device), bdSeq, the incomplete mark and the seq expected when it was taken. The seq
 * is only as fresh as the node's last birth-state change (data after it moves the seq but
 * is not persisted, to keep commits small), so after a restart the node's first message
 * usually shows a seq gap: it is counted and asks for one rebirth, which also
 * resynchronises a node that rebirthed while enpid was down. Only born nodes have
 * records; a node that dies or whose record does not decode is deleted from the store by
 * the next batch, and an unborn node whose record deletion is still pending is never
 * evicted (so no deletion is lost). Edge nodes never born, and the rebirth rate limit,
 * are not persisted: after a restart their first data counts as data_before_birth and
 * asks for a rebirth.
 *
 * DESIGN: single-threaded. One thread (enpid's loop thread, inside the pipeline) owns an
 * enpi_sparkplug_t and calls everything on it; the callbacks run on that thread, inside
 * enpi_sparkplug_ingest(), and must not call back into the same object. The
 * rebirth_topic/rebirth_payload helpers are pure and thread-safe.
 */
#ifndef ENPI_SPARKPLUG_H
#define ENPI_SPARKPLUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decode.h"

#define ENPI_SPARKPLUG_MAX_NODES_DEFAULT 10000
#define ENPI_SPARKPLUG_MAX_NODE_METRICS_DEFAULT 10000
#define ENPI_SPARKPLUG_MAX_METRICS_DEFAULT 500000
#define ENPI_SPARKPLUG_REBIRTH_INTERVAL_MS_DEFAULT 5000
#define ENPI_SPARKPLUG_ID_MAX 128     /* longest meter id (SPEC §3) */
#define ENPI_SPARKPLUG_NESTING_MAX 32 /* deepest protobuf message nesting accepted */
/* Enough for enpi_sparkplug_rebirth_payload() at any timestamp. */
#define ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX 64

/* Ask the edge node `group`/`node` to rebirth (publish the NCMD). NUL-terminated strings,
 * valid only during the call. */
typedef void (*enpi_sparkplug_rebirth_cb)(void *ctx, const char *group, const char *node);
/* Every meter id starting with `id_prefix` (NUL-terminated, ends in '/', valid only
 * during the call) belongs to an edge node or device that just died. */
typedef void (*enpi_sparkplug_death_cb)(void *ctx, const char *id_prefix);

/* Options of enpi_sparkplug_create(). Zero-initialise; zero fields take the defaults. */
typedef struct {
    size_t max_nodes;            /* edge nodes tracked (ENPI_SPARKPLUG_MAX_NODES_DEFAULT) */
    size_t max_node_metrics;     /* metrics + devices per edge node */
    size_t max_metrics;          /* metrics + devices over all edge nodes */
    int64_t rebirth_interval_ms; /* at most one rebirth request per node per interval */
    enpi_sparkplug_rebirth_cb rebirth_cb; /* may be NULL (requests are still counted) */
    enpi_sparkplug_death_cb death_cb;     /* may be NULL */
    void *cb_ctx;                         /* passed to both callbacks */
} enpi_sparkplug_options_t;

/* Counters since creation. One message may count in several (a data message with a seq
 * gap and an unknown alias: seq_gaps, unresolved_metrics, rebirth_requests). */
typedef struct {
    uint64_t messages;            /* enpi_sparkplug_ingest() calls */
    uint64_t parse_errors;        /* topic outside the namespace, or payload not parsing */
    uint64_t bad_ids;             /* topics refused with ENPI_EINVAL (ids too long) */
    uint64_t ignored;             /* NCMD, DCMD, STATE */
    uint64_t births;              /* NBIRTH + DBIRTH learned */
    uint64_t deaths;              /* NDEATH + DDEATH applied */
    uint64_t stale_deaths;        /* NDEATH of an older session (bdSeq mismatch), ignored */
    uint64_t seq_gaps;            /* messages whose seq was not the expected one */
    uint64_t data_before_birth;   /* data or DBIRTH of a node/device not born (dropped) */
    uint64_t unresolved_metrics;  /* DATA metrics whose alias/name no birth declared */
    uint64_t non_numeric_skipped; /* metrics of non-numeric datatypes (Boolean, String...) */
    uint64_t null_skipped;        /* metrics with is_null */
    uint64_t rebirth_requests;    /* rebirth requests made (rate limit passed) */
    uint64_t readings;            /* readings handed to the reading callback */
    uint64_t nodes_full;          /* messages dropped: node table full of born nodes */
    uint64_t metrics_full;        /* birth metrics not learned: a metric limit reached */
    uint64_t nodes_imported;      /* edge nodes loaded by enpi_sparkplug_import_node() */
} enpi_sparkplug_stats_t;

typedef struct enpi_sparkplug enpi_sparkplug_t;

/* Creates the state of a Sparkplug host. `opt` may be NULL (all defaults); it is copied.
 * Returns 0, ENPI_EINVAL (a negative rebirth_interval_ms) or ENPI_ENOMEM. */
int enpi_sparkplug_create(const enpi_sparkplug_options_t *opt, enpi_sparkplug_t **out);
/* Frees everything; NULL is a no-op. */
void enpi_sparkplug_free(enpi_sparkplug_t *s);

/*
 * Handles one MQTT message of the Sparkplug namespace: updates the edge node's state and
 * calls cb(ctx, reading) once per reading, in payload order (the reading's id points into
 * a buffer valid only during the call). `topic` need not be NUL-terminated. `arrival_ms`
 * stamps metrics without a timestamp and clocks the rebirth rate limit.
 * Returns 0 when the message was understood - including messages counted and dropped
 * (ignored types, data before birth, full tables); ENPI_EPARSE when the topic is not a
 * Sparkplug B topic or the payload does not parse (no state changed, no callback);
 * ENPI_EINVAL when the topic's group/node/device ids are too long to make meter ids
 * (refused, no state changed); ENPI_ENOMEM when memory ran out (the message may be
 * partly applied: readings already delivered stay delivered; a birth that ran out is
 * undone, leaving the node or device unborn, so that its next data asks for a rebirth).
 * The pipeline counts ENPI_EPARSE as parse_error and ENPI_EINVAL as bad_meter_id.
 */
int enpi_sparkplug_ingest(enpi_sparkplug_t *s, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, int64_t arrival_ms,
                          enpi_reading_cb cb, void *ctx);

const enpi_sparkplug_stats_t *enpi_sparkplug_stats(const enpi_sparkplug_t *s);

/* True when the edge node group/node (NUL-terminated) is born. */
bool enpi_sparkplug_node_born(const enpi_sparkplug_t *s, const char *group, const char *node);

/* Edge nodes currently tracked (born or not). */
size_t enpi_sparkplug_node_count(const enpi_sparkplug_t *s);

/* ---- persistence of the learned state (see "Persistence" above) ---- */

/* One edge node's persistent state: key "group/node" (key_len bytes, not NUL-terminated);
 * state the serialized SparkplugNode, or NULL (state_len 0) when the node is no longer
 * born and its stored record is to be deleted. Pointers valid only during the call.
 * Returns 0 to go on, nonzero to stop. */
typedef int (*enpi_sparkplug_node_cb)(void *ctx, const char *key, size_t key_len,
                                      const uint8_t *state, size_t state_len);

/* An upper bound of the edge nodes enpi_sparkplug_changes() would report (0: none). */
size_t enpi_sparkplug_changes_pending(const enpi_sparkplug_t *s);

/*
 * Calls cb once per edge node whose persistent state changed since the last
 * enpi_sparkplug_changes_done() (oldest change first), with its current state - so a
 * caller that takes them together with the readings up to some message stores exactly
 * the state after that message (seq aside). Nodes that were born and died again before
 * anything was stored are left out. Changes nothing: call it again (e.g. after a failure)
 * and it reports the same. Returns 0, ENPI_ENOMEM, or cb's nonzero return.
 */
int enpi_sparkplug_changes(const enpi_sparkplug_t *s, enpi_sparkplug_node_cb cb, void *ctx);

/* The changes reported so far are saved (or will be, the caller retrying until they
 * are): forget them. */
void enpi_sparkplug_changes_done(enpi_sparkplug_t *s);

/*
 * Serializes the learned state of the edge node `key` ("group/node", key_len bytes) into
 * *state_out (malloc'd; the caller frees it). Returns 0, ENPI_ENOENT when the node is not
 * tracked or not born, or ENPI_ENOMEM.
 */
int enpi_sparkplug_export_node(const enpi_sparkplug_t *s, const char *key, size_t key_len,
                               uint8_t **state_out, size_t *len_out);

/*
 * Loads a stored edge node (start-up, before any message): the node `key` ("group/node")
 * becomes born with the metrics, devices, bdSeq, seq and incomplete mark of `state`,
 * replacing whatever was known of it; no callback is called and nothing counts as a
 * birth. Limits apply as to births (metrics beyond them: metrics_full, incomplete). The
 * record counts as stored: it is not reported by enpi_sparkplug_changes() until a later
 * message changes the node. Returns 0; ENPI_EINVAL for a key that is not "group/node" as
 * a topic gives it (nothing changed); ENPI_EPARSE when state does not decode or holds an
 * impossible device id or name (the node is left unborn and its record is reported as
 * deleted by the next enpi_sparkplug_changes(), so its next data asks for a rebirth);
 * ENPI_EFULL when the node table is full of born nodes; ENPI_ENOMEM (the node is left
 * unborn).
 */
int enpi_sparkplug_import_node(enpi_sparkplug_t *s, const char *key, size_t key_len,
                               const void *state, size_t state_len);

/*
 * Writes the rebirth request topic "spBv1.0/<group>/NCMD/<node>" and a NUL into buf.
 * Returns 0 with *len_out (if not NULL) the topic length, or ENPI_ERANGE when it does
 * not fit in cap bytes.
 */
int enpi_sparkplug_rebirth_topic(const char *group, const char *node, char *buf, size_t cap,
                                 size_t *len_out);

/*
 * Encodes the specification's rebirth request into buf: a Sparkplug B payload with
 * timestamp ts_ms, no seq (NCMD carries none), and one metric "Node Control/Rebirth" of
 * datatype Boolean, value true, timestamp ts_ms. Returns 0 with *len_out the encoded
 * length, ENPI_ERANGE when cap is too small (ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX always
 * suffices), or ENPI_EINVAL for a negative ts_ms.
 */
int enpi_sparkplug_rebirth_payload(int64_t ts_ms, uint8_t *buf, size_t cap, size_t *len_out);

#endif
