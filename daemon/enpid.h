/*
 * enpid.h - the daemon's state, shared by the files of daemon/ (private to enpid).
 *
 * One enpid_t lives for the whole process. Each file of daemon/ owns one concern and the
 * fields listed under its name below; the others only read them on the loop thread.
 *
 * DESIGN: three kinds of thread touch this struct.
 *  - Paho's receive thread runs enpid_ingest_on_message() (the producer) and the MQTT
 *    event callbacks. It writes only the fields marked "producer" and the atomics.
 *  - The libuv loop thread (main thread) owns everything else: the pipeline, the
 *    consumer end of the ring, timers, signals and the shutdown sequence.
 *  - libuv threadpool workers run enpi_store_commit() on a batch the loop handed over
 *    (one at a time), a retention sweep (retention.c) and the /metrics unknown-meter
 *    count (metrics.c); they touch nothing here but the store and their own inputs.
 * What crosses threads: ring items (release/acquire in ring.c), appended_upto (release
 * by the producer after the push, acquire by the consumer), the event bits and counters
 * below, and uv_async_send(). The store is thread-safe (storage.h), except that replacing
 * its RocksDB instance after a write error (enpi_store_reopen, commit.c) needs every
 * worker idle: enpid_commit_store_usable() says when the others may use it.
 */
#ifndef ENPID_H
#define ENPID_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "log.h"
#include "mqtt.h"
#include "pipeline.h"
#include "ring.h"
#include "storage.h"

#define ENPID_RING_CAPACITY (1u << 16) /* messages between Paho and the loop */
#define ENPID_DRAIN_BUDGET 4096        /* messages ingested per loop wake-up */
#define ENPID_EARLY_COMMIT 200000      /* pending rollup deltas that trigger a commit */
#define ENPID_COMMIT_RETRY_MS 1000     /* delay before retrying a failed commit */
#define ENPID_DISCONNECT_MS 1000       /* MQTT DISCONNECT grace at shutdown */
#define ENPID_STATUS_MS 10000          /* STATUS= rates */
#define ENPID_REPORT_MS 60000          /* periodic info log line */

/* Bits of enpid_t.events: what the MQTT callbacks tell the loop (via uv_async 'control'). */
enum {
    ENPID_EV_CONNECTED = 1u << 0,
    ENPID_EV_SUBSCRIBED = 1u << 1,
    ENPID_EV_SUBSCRIBE_FAILED = 1u << 2,
    ENPID_EV_CONNECTION_LOST = 1u << 3,
    ENPID_EV_DISCONNECTED = 1u << 4,    /* our own DISCONNECT finished (or failed) */
    ENPID_EV_INBOX_FAILED = 1u << 5,    /* an inbox append failed; the message is kept in
                                           memory (backpressure.c pauses MQTT) */
    ENPID_EV_SESSION_PRESENT = 1u << 6, /* the first connect resumed a stored session */
};

typedef enum {
    ENPID_STARTING = 0, /* replaying, connecting, not yet subscribed */
    ENPID_RUNNING,      /* subscribed at least once; READY=1 sent */
    ENPID_STOP_MQTT,    /* shutdown: waiting for the MQTT disconnect */
    ENPID_STOP_COMMIT,  /* shutdown: waiting for the in-flight commit */
    ENPID_CLOSING,      /* shutdown: handles closing, the loop about to end */
} enpid_phase_t;

typedef struct enpid {
    /* ---- main.c / daemon.c: what the process runs with ---- */
    const char *config_path;
    char *config_text; /* the YAML as read (owned), stored with enpi_store_put_config */
    size_t config_len;
    enpi_config_t *cfg;
    enpi_store_t *store;
    enpi_pipeline_t *pipe;
    enpid_mqtt_t *mqtt;
    uv_loop_t loop;
    enpid_phase_t phase;
    int exit_code;           /* what main returns: 0 clean, 1 error */
    uv_async_t control;      /* MQTT callbacks -> loop: see events */
    _Atomic unsigned events; /* ENPID_EV_* bits, set by Paho threads, taken by the loop */
    _Atomic int mqtt_up;     /* 1 while connected (for STATUS=) */
    uv_timer_t stop_timer;   /* bounds the wait for the MQTT disconnect */
    bool ready_sent;

    /* ---- ingest.c, producer (Paho's receive thread only once MQTT is connected) ---- */
    enpi_ring_t ring;
    uint64_t next_seq; /* next inbox sequence number to assign */
    enpi_ratelimit_t producer_rl;
    _Atomic uint64_t appended_upto;  /* one past the highest seq appended to the inbox */
    _Atomic uint64_t n_received;     /* messages made durable */
    _Atomic uint64_t n_spilled;      /* of those, not pushed because the ring was full
                                        (the loop reads them back from the inbox) */
    _Atomic uint64_t n_inbox_failed; /* append failures (message kept in memory) */

    /* ---- ingest.c, consumer (loop thread) ---- */
    uv_async_t wake;       /* Paho -> loop: ring has items / appended_upto moved */
    uint64_t expected_seq; /* next seq to ingest */
    bool held_valid;       /* a popped item waiting for spilled seqs before it */
    enpi_ring_item_t held;
    uint64_t n_readback; /* messages ingested from the inbox instead of the ring */
    uint64_t n_replayed; /* inbox messages replayed at start-up */
    enpi_ratelimit_t consumer_rl;

    /* ---- commit.c (loop thread; the batch is read by one worker while in flight) ---- */
    uv_timer_t commit_timer; /* every storage.commit_interval */
    uv_timer_t retry_timer;  /* re-queues a failed batch after ENPID_COMMIT_RETRY_MS */
    uv_work_t commit_work;
    enpi_batch_t *commit_batch; /* in flight or awaiting retry; NULL when idle */
    bool commit_busy;           /* a worker holds commit_batch */
    int commit_rc;              /* worker's result */
    uint64_t commit_started_ns;
    uint64_t commit_worker_ns; /* time inside enpi_store_commit */
    uint64_t n_commits;
    uint64_t n_commit_failures;
    unsigned commit_failing; /* consecutive failures of the current batch */
    uint64_t last_commit_us;
    enpi_ratelimit_t commit_rl;

    /* ---- outbox.c (loop thread) ---- */
    uint64_t n_outbound_published;     /* outbox messages handed to the MQTT client */
    uint64_t n_outbound_dropped;       /* outbox messages the MQTT client refused */
    uint64_t n_outbound_send_failures; /* enpid_mqtt_publish_failures() when the client
                                          was destroyed (daemon.c), for the last report */

    /* ---- signals.c ---- */
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;

    /* ---- reload.c, metrics.c, retention.c: private state behind a pointer ---- */
    struct enpid_metrics *metrics;
    struct enpid_retention *retention;

    /* ---- notify.c ---- */
    uv_timer_t status_timer;
    uv_timer_t report_timer;
    uv_timer_t watchdog_timer;
    uint64_t watchdog_usec;    /* 0 when systemd's watchdog is off */
    uint64_t status_last_msgs; /* counters at the previous STATUS= */
    uint64_t status_last_applied;
    uint64_t status_last_ns;
    /* watchdog health (watchdog_cb): when each condition was last seen fine, uv_now ms */
    uint64_t wd_commit_ok_ms;  /* a commit succeeded, or none was due */
    uint64_t wd_ingest_ok_ms;  /* the backlog was empty or shrinking */
    uint64_t wd_last_commits;  /* n_commits at the previous tick */
    uint64_t wd_last_expected; /* expected_seq at the previous tick */
    bool wd_withheld;          /* WATCHDOG=1 is being withheld (logged once per episode) */
    struct enpid_extend *extend; /* EXTEND_TIMEOUT_USEC thread during the start-up replay */

    /* ---- reload.c (loop thread) ---- */
    uint64_t n_reloads;         /* configurations applied by SIGHUP */
    uint64_t n_reload_failures; /* SIGHUPs whose file was refused (old one kept) */
    bool config_store_pending;  /* the text could not be stored (storage failing): stored
                                   after the next successful commit (commit.c) */

    /* ---- storage health: backpressure.c (loop thread) and ingest.c's last resort ---- */
    _Atomic uint64_t n_kept_in_memory; /* producer: of n_inbox_failed, messages taken into
                                          memory only (durable at the next commit) */
    uv_timer_t bp_timer;               /* evaluates storage health, ENPID_BACKPRESSURE_MS */
    bool bp_paused;                    /* MQTT paused: storage cannot store */
    uint64_t bp_commits_mark;          /* n_commits that a later commit must pass to resume */
    uint64_t bp_inbox_failed_seen;     /* n_inbox_failed at the previous evaluation */
    int64_t bp_since_ms;               /* when the pause began */
    uint64_t n_bp_pauses;              /* pauses so far */
    enpi_ratelimit_t bp_rl;            /* pause lines: a nearly full disk may take the
                                          backlog a segment at a time, pausing often */
    unsigned store_readers;            /* threadpool reads of the store in flight (metrics.c):
                                          commit.c reopens the store only when none is */
} enpid_t;

/* ---- daemon.c: life cycle ---- */
int enpid_daemon_start(enpid_t *d);        /* everything up to MQTT connect */
void enpid_daemon_stop(enpid_t *d);        /* begin the shutdown sequence (idempotent) */
void enpid_daemon_commit_idle(enpid_t *d); /* commit.c: no commit in flight any more */
void enpid_daemon_cleanup(enpid_t *d);     /* after the loop: free what start made */
void enpid_daemon_post_event(enpid_t *d, unsigned ev); /* any thread */
int64_t enpid_now_ms(void);

/* ---- ingest.c ---- */
int enpid_ingest_init(enpid_t *d);   /* ring + wake handle */
int enpid_ingest_replay(enpid_t *d); /* start-up: inbox -> pipeline, committed */
int enpid_ingest_on_message(void *ctx, char *topic, size_t topic_len, void *msg,
                            const void *payload, size_t payload_len, bool redelivered);
void enpid_ingest_drain_all(enpid_t *d); /* shutdown: everything appended so far */
void enpid_ingest_close(enpid_t *d);     /* frees messages left in the ring */

/* ---- commit.c ---- */
int enpid_commit_init(enpid_t *d);
void enpid_commit_start(enpid_t *d); /* the periodic timer, after the replay */
void enpid_commit_maybe(enpid_t *d); /* after a drain: early commit when large */
int enpid_commit_sync(enpid_t *d);   /* start-up and shutdown only: commit now */
bool enpid_commit_idle(const enpid_t *d);

/* ---- backpressure.c: pause MQTT while storage cannot store (the broker keeps the
 * readings of the persistent session), resume once it can. Started by daemon.c right
 * after enpid_commit_start. ---- */
#define ENPID_BACKPRESSURE_MS 250 /* storage health evaluated this often */
void enpid_backpressure_start(enpid_t *d);
/* Evaluates storage health now (a failed inbox append: ENPID_EV_INBOX_FAILED). Loop. */
void enpid_backpressure_check(enpid_t *d);

/* ---- outbox.c ---- */
void enpid_outbox_flush(enpid_t *d); /* publish the pipeline's outbox while connected */

/* ---- signals.c ---- */
int enpid_signals_init(enpid_t *d);

/* ---- reload.c ---- */
void enpid_reload(enpid_t *d); /* SIGHUP: re-read the configuration file */
/* Reads the whole file into a NUL-terminated malloc'd buffer (at most 16 MiB). Returns 0,
 * or ENPI_EIO/ENPI_ENOMEM with "FILE: reason" in errbuf. Any thread. */
int enpid_config_read(const char *path, char **text_out, size_t *len_out, char *errbuf,
                      size_t errlen);

/* ---- metrics.c ---- */
int enpid_metrics_start(enpid_t *d); /* the /metrics endpoint when metrics.listen is set */
void enpid_metrics_stop(enpid_t *d); /* shutdown: stop listening (idempotent) */

/* ---- retention.c ---- */
int enpid_retention_start(enpid_t *d); /* periodic deletion of expired windows */
void enpid_retention_stop(enpid_t *d); /* shutdown (idempotent) */

/* ---- notify.c ---- */
int enpid_notify_init(enpid_t *d);
void enpid_notify_ready(enpid_t *d);
void enpid_notify_stopping(enpid_t *d);
void enpid_notify_status(enpid_t *d, const char *text);
void enpid_notify_report(enpid_t *d);      /* one info line with the counters */
void enpid_notify_stop_timers(enpid_t *d); /* shutdown */
void enpid_notify_reloading(enpid_t *d);   /* RELOADING=1 + MONOTONIC_USEC= */
void enpid_notify_reloaded(enpid_t *d, const char *status); /* READY=1 + STATUS= */
/* Start-up replay: a thread sends EXTEND_TIMEOUT_USEC= while the pipeline makes progress
 * (only under systemd, $NOTIFY_SOCKET set). begin after the pipeline exists; end joins. */
void enpid_notify_replay_begin(enpid_t *d);
void enpid_notify_replay_end(enpid_t *d);

#endif
