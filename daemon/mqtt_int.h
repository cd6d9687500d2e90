/*
 * mqtt_int.h - the inside of enpid_mqtt_t, shared by the files of the MQTT adapter
 * (private: only mqtt.c, mqtt_reconnect.c and mqtt_tls_diag.c include it, and with it
 * MQTTAsync.h).
 *
 * mqtt.c owns the Paho client, its callbacks and the public calls of mqtt.h;
 * mqtt_reconnect.c the reconnect thread (jittered backoff, liveness probe);
 * mqtt_tls_diag.c the TLS handshake of its own that explains a failed TLS connect.
 *
 * DESIGN: which thread touches which field is said next to the field. The fields from
 * rc_thread on belong to the reconnect thread's mutex rc_mu; the lock order is Paho's
 * mutex -> rc_mu (see mqtt_reconnect.c).
 */
#ifndef ENPID_MQTT_INT_H
#define ENPID_MQTT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <MQTTAsync.h>

#include "log.h"
#include "mqtt.h"

/* Messages Paho may hold between enpid_mqtt_publish() and the socket: above the pipeline's
 * outbox (1024), which one flush may hand over at once, so a burst is not refused. */
#define PUBLISH_BUFFERED_MAX 4096
#define RECONNECT_MIN_MS 1000 /* first backoff step */
#define STABLE_MS 10000       /* a connection that lasted this long resets the backoff */
#define CONNECT_TIMEOUT_S 10  /* TCP + TLS + CONNACK */
#define PROBE_TOPIC "enpid/liveness-probe" /* never subscribed: UNSUBSCRIBE is a pure echo */
#define DIAG_TIMEOUT_MS 3000               /* TCP connect, then TLS handshake, each */
#define DIAG_EVERY_MS (10 * 60 * 1000)     /* TLS diagnosis repeated at most this often */

struct enpid_mqtt {
    MQTTAsync client;
    enpid_mqtt_handlers_t h;
    int version; /* MQTTVERSION_3_1_1 or MQTTVERSION_5 */
    char *uri;
    char *client_id;
    char **filters; /* owned copies, n_filters of them */
    int *qos;       /* requested QoS per filter (all cfg->qos) */
    int n_filters;
    int keepalive_s;
    bool clean_session;
    char *username; /* NULL when none */
    char *password; /* NULL when none; wiped before free, never logged */
    bool tls;
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure;
    int64_t reconnect_max_ms;
    uint32_t session_expiry_s;         /* MQTT 5 Session Expiry Interval sent in CONNECT */
    unsigned connects;                 /* successful connects so far (Paho threads, serialised) */
    enpi_ratelimit_t rl;               /* connect failures; callbacks are serialised by Paho */
    enpi_ratelimit_t publish_rl;       /* publish errors seen by the caller (loop thread) */
    enpi_ratelimit_t publish_fail_rl;  /* send failures reported later (Paho threads) */
    _Atomic uint64_t publish_failures; /* taken by Paho, then not sent */
    _Atomic uint64_t reconnects;       /* successful connects after the first one */
    _Atomic uint64_t connect_failures; /* connect attempts that failed */
    _Atomic int64_t up_since_ms;       /* monotonic ms of the last connect; 0 while down */
    _Atomic int64_t last_rx_ms;        /* monotonic ms of the last packet seen arriving */
    _Atomic int in_rx;                 /* a message is being handed over right now */
    _Atomic int64_t probe_sent_ms;     /* liveness probe outstanding since; 0 = none */
    _Atomic uint64_t dead_links;       /* connections closed by the liveness check */

    /* ---- the reconnect thread; rc_mu guards the fields below it ---- */
    pthread_t rc_thread;
    bool rc_thread_started;
    bool rc_sync_ok; /* rc_mu and rc_cv initialised */
    pthread_mutex_t rc_mu;
    pthread_cond_t rc_cv; /* CLOCK_MONOTONIC */
    bool rc_stop;         /* disconnect or destroy: no more connects */
    bool rc_pending;      /* a connect is due at rc_due_ms */
    int64_t rc_due_ms;    /* monotonic */
    unsigned rc_failures; /* consecutive failed or short-lived connections: backoff exponent */
    int64_t rc_delay_ms;  /* the wait before the pending attempt, for its log line */
    bool rc_diagnose;     /* a TLS connect failed: find out why (reconnect thread) */
    int64_t rc_diag_ms;   /* monotonic ms of the last diagnosis; 0 = none this streak */
    int rc_diag_fd;       /* the diagnosis's socket while it runs, else -1: stop shuts it
                             down so that the thread returns at once */
    uint64_t rc_seed;     /* jitter PRNG state */
    bool rc_paused;       /* enpid_mqtt_pause(): no connects until enpid_mqtt_resume() */
    bool rc_pause_close;  /* the reconnect thread is to close the connection (paused) */
};

/* Monotonic milliseconds (any thread). */
static inline int64_t enpid_mqtt_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Something arrived from the broker (Paho threads). */
static inline void enpid_mqtt_note_rx(enpid_mqtt_t *m)
{
    atomic_store(&m->last_rx_ms, enpid_mqtt_mono_ms());
}

/* mqtt.c: logs "mqtt: <what> failed: <Paho's reason>" and returns ENPI_EMQTT. */
int enpid_mqtt_from_paho(int rc, const char *what);

/*
 * mqtt.c: starts one connect attempt with the configured options (loop thread for the first, the
 * reconnect thread after, which logs the attempt itself). Its outcome arrives in
 * connect_success*_cb + connected_cb, or connect_failure*_cb, which schedules the next attempt.
 * Returns 0, ENPI_ENOMEM or ENPI_EMQTT when Paho refused to start it (then no callback follows).
 */
int enpid_mqtt_start_connect(enpid_mqtt_t *m, unsigned attempt);

/* mqtt.c: closes the connection for a pause with a clean DISCONNECT (reconnect thread,
 * rc_mu not held); ENPID_MQTT_CONNECTION_LOST follows when it is done. */
void enpid_mqtt_pause_close(enpid_mqtt_t *m);

/* mqtt_reconnect.c: starts the reconnect thread (end of enpid_mqtt_create). 0 or
 * ENPI_ENOMEM; undone by enpid_mqtt_reconnect_stop() and the join in enpid_mqtt_destroy(). */
int enpid_mqtt_reconnect_start(enpid_mqtt_t *m);

/* mqtt_reconnect.c: stops all further connect attempts (any thread but the reconnect
 * thread); harmless when the thread never started. */
void enpid_mqtt_reconnect_stop(enpid_mqtt_t *m);

/*
 * mqtt_reconnect.c: a connect failed or a connection was lost (Paho threads): schedules the next
 * attempt. `stable` (a connection that lasted STABLE_MS) restarts the backoff at 1 s. Returns the
 * delay in ms, or -1 when enpid is disconnecting.
 */
int64_t enpid_mqtt_schedule_reconnect(enpid_mqtt_t *m, bool stable);

/*
 * mqtt_tls_diag.c: makes one TLS handshake to the broker as Paho would (same CA, client
 * certificate, host name check) and logs at error level why the broker's certificate is refused, or
 * why the handshake fails. Reconnect thread; blocks up to 2 x DIAG_TIMEOUT_MS.
 */
void enpid_mqtt_diagnose_tls(enpid_mqtt_t *m);

#endif
