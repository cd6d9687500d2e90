/*
 * mqtt_reconnect.c - the MQTT adapter's reconnect thread: when to connect again after a
 * failed connect or a lost connection (capped, jittered exponential backoff), and the
 * liveness probe that finds a silent (half-open) connection. It also runs the TLS
 * diagnosis of mqtt_tls_diag.c when a TLS connect failed.
 *
 * DESIGN: reconnection is ours, not Paho's automaticReconnect (which doubles its delay
 * without jitter, so a fleet of clients retries in lock step after a broker restart):
 * every failed connect and every lost connection schedules the next MQTTAsync_connect() on
 * the thread of this file (the "reconnect thread") after a delay drawn uniformly from
 * [d/2, d], where d starts at 1 s and doubles up to mqtt.reconnect_max (default 60 s).
 * d starts again from 1 s only once a connection has stayed up for STABLE_MS, so a broker
 * that accepts and at once drops us (duplicate client id, ACL) is not hammered. The same
 * thread runs the liveness check and the TLS diagnosis. It never holds its mutex (rc_mu)
 * while calling Paho, and Paho's callbacks take rc_mu only briefly, so the only lock order
 * is Paho's mutex -> rc_mu: no cycle. enpid_mqtt_disconnect() and _destroy() stop it;
 * _destroy() joins it before destroying the Paho client.
 *
 * A half-open connection (the broker or a middlebox stops answering without closing the
 * socket) must be found within 2 x keepalive. Paho 1.3.12 alone takes up to about
 * 2.5 x keepalive + 1 s (PINGREQ after one interval of silence, then 1.5 intervals for the
 * PINGRESP, then a DISCONNECT attempt), so the reconnect thread also checks liveness: it
 * notes every packet it can see arrive (messages, SUBACKs, its own probes' answers) and,
 * after half a keepalive of silence, sends a probe that the broker must answer: an
 * UNSUBSCRIBE of PROBE_TOPIC, which enpid never subscribes to (brokers answer UNSUBACK
 * all the same, MQTT 3.1.1 §3.10.4). When neither the answer nor anything else arrived
 * within one keepalive after the probe, the connection is declared dead and closed, so
 * the loss is noticed at most about 1.5 x keepalive (plus one tick) after the last packet
 * (tests/faults/test_blackhole.py measures it). A message being handed to the daemon
 * counts as alive (a slow inbox append is not a dead link).
 */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enpi_error.h"
#include "mqtt_int.h"

/* ---- reconnecting (see DESIGN) ---- */

/* xorshift64*: spreads reconnect times, nothing more. Under rc_mu. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* The wait before the next attempt after `failures` consecutive failures: uniform in
 * [d/2, d] with d = min(reconnect_max, 1 s << failures). Under rc_mu. */
static int64_t backoff_ms(enpid_mqtt_t *m, unsigned failures)
{
    int64_t d = m->reconnect_max_ms;
    if (failures < 30 && ((int64_t)RECONNECT_MIN_MS << failures) < d)
        d = (int64_t)RECONNECT_MIN_MS << failures;
    int64_t half = d / 2;
    return half + (int64_t)(next_random(&m->rc_seed) % (uint64_t)(d - half + 1));
}

/* Under rc_mu: makes the reconnect thread connect after the next backoff step. Returns
 * the delay in ms, or -1 when reconnecting has been stopped. */
static int64_t schedule_locked(enpid_mqtt_t *m)
{
    if (m->rc_stop || m->rc_paused)
        return -1;
    int64_t delay = backoff_ms(m, m->rc_failures);
    if (m->rc_failures < 30)
        m->rc_failures++;
    m->rc_pending = true;
    m->rc_delay_ms = delay;
    m->rc_due_ms = enpid_mqtt_mono_ms() + delay;
    pthread_cond_signal(&m->rc_cv);
    return delay;
}

/*
 * A connect failed or a connection was lost (Paho threads): schedules the next attempt.
 * `stable` (a connection that lasted STABLE_MS) restarts the backoff at 1 s. Returns the
 * delay in ms, or -1 when enpid is disconnecting.
 */
int64_t enpid_mqtt_schedule_reconnect(enpid_mqtt_t *m, bool stable)
{
    pthread_mutex_lock(&m->rc_mu);
    if (stable)
        m->rc_failures = 0;
    int64_t delay = schedule_locked(m);
    pthread_mutex_unlock(&m->rc_mu);
    return delay;
}

/* The answer to a liveness probe (or its failure, which is an answer too when it came
 * from the broker; when the connection died, connected_cb clears the probe later). */
static void probe_answered(enpid_mqtt_t *m)
{
    enpid_mqtt_note_rx(m);
    atomic_store(&m->probe_sent_ms, 0);
}

static void probe_ok_cb(void *context, MQTTAsync_successData *data)
{
    probe_answered(context);
}

static void probe_failed_cb(void *context, MQTTAsync_failureData *data)
{
    probe_answered(context);
}

static void probe_ok5_cb(void *context, MQTTAsync_successData5 *data)
{
    probe_answered(context);
}

static void probe_failed5_cb(void *context, MQTTAsync_failureData5 *data)
{
    probe_answered(context);
}

/* The close of a connection the liveness check declared dead has completed (Paho thread):
 * from here on it is a lost connection like any other. */
static void dead_closed(enpid_mqtt_t *m)
{
    int64_t delay = enpid_mqtt_schedule_reconnect(m, false);
    if (delay >= 0)
        log_warn("mqtt: reconnecting to %s in %.1f s", m->uri, (double)delay / 1000.0);
    m->h.on_event(m->h.ctx, ENPID_MQTT_CONNECTION_LOST);
}

static void dead_closed_cb(void *context, MQTTAsync_successData *data)
{
    dead_closed(context);
}

static void dead_close_failed_cb(void *context, MQTTAsync_failureData *data)
{
    dead_closed(context);
}

static void dead_closed5_cb(void *context, MQTTAsync_successData5 *data)
{
    dead_closed(context);
}

static void dead_close_failed5_cb(void *context, MQTTAsync_failureData5 *data)
{
    dead_closed(context);
}

/*
 * One liveness tick (reconnect thread, rc_mu not held): sends a probe after half a
 * keepalive of silence; closes the connection when a probe went unanswered, and nothing
 * else arrived, for a whole keepalive. See DESIGN.
 */
static void check_liveness(enpid_mqtt_t *m)
{
    int64_t since = atomic_load(&m->up_since_ms);
    if (since == 0 || m->keepalive_s <= 0)
        return;
    int64_t now = enpid_mqtt_mono_ms();
    int64_t ka = (int64_t)m->keepalive_s * 1000;
    int64_t last = atomic_load(&m->last_rx_ms);
    int64_t silence = atomic_load(&m->in_rx) ? 0 : now - last;
    int64_t probe = atomic_load(&m->probe_sent_ms);
    if (probe == 0) {
        if (silence < ka / 2)
            return;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.context = m;
        if (m->version >= MQTTVERSION_5) {
            ro.onSuccess5 = probe_ok5_cb;
            ro.onFailure5 = probe_failed5_cb;
        } else {
            ro.onSuccess = probe_ok_cb;
            ro.onFailure = probe_failed_cb;
        }
        atomic_store(&m->probe_sent_ms, now);
        if (MQTTAsync_unsubscribe(m->client, PROBE_TOPIC, &ro) != MQTTASYNC_SUCCESS)
            atomic_store(&m->probe_sent_ms, 0); /* not connected any more: nothing to probe */
        return;
    }
    if (now - probe < ka || silence < ka)
        return;
    /* Dead. Whoever zeroes up_since_ms first (this or connection_lost_cb) reports it. */
    if (atomic_exchange(&m->up_since_ms, 0) == 0)
        return;
    if (now - since >= STABLE_MS) {
        pthread_mutex_lock(&m->rc_mu);
        m->rc_failures = 0; /* as in connection_lost_cb: a long-lived link restarts at 1 s */
        pthread_mutex_unlock(&m->rc_mu);
    }
    atomic_store(&m->probe_sent_ms, 0);
    atomic_fetch_add_explicit(&m->dead_links, 1, memory_order_relaxed); /* statistic */
    log_warn("mqtt: connection to %s lost: nothing received for %.1f s, a probe unanswered for "
             "%.1f s (keepalive %d s); closing it",
             m->uri, (double)silence / 1000.0, (double)(now - probe) / 1000.0, m->keepalive_s);
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    o.timeout = 0; /* nothing in flight can complete over a dead link */
    o.context = m;
    if (m->version >= MQTTVERSION_5) {
        o.onSuccess5 = dead_closed5_cb;
        o.onFailure5 = dead_close_failed5_cb;
    } else {
        o.onSuccess = dead_closed_cb;
        o.onFailure = dead_close_failed_cb;
    }
    int prc = MQTTAsync_disconnect(m->client, &o);
    if (prc != MQTTASYNC_SUCCESS && prc != MQTTASYNC_DISCONNECTED) {
        enpid_mqtt_from_paho(prc, "closing the dead connection");
        dead_closed(m);
    }
    /* MQTTASYNC_DISCONNECTED: Paho lost it meanwhile; connection_lost_cb reconnects. */
}

/* The reconnect thread: sleeps in ticks, running the liveness check while connected, a
 * TLS diagnosis when one is asked for, and the next connect attempt when it is due; ends
 * on rc_stop (enpid_mqtt_disconnect or _destroy). */
static void *reconnect_main(void *arg)
{
    enpid_mqtt_t *m = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the loop thread */
    /* Liveness ticks: a tenth of the keepalive, 50 ms .. 1 s. */
    int64_t tick = m->keepalive_s > 0 ? (int64_t)m->keepalive_s * 100 : 1000;
    tick = tick < 50 ? 50 : tick > 1000 ? 1000 : tick;
    pthread_mutex_lock(&m->rc_mu);
    for (;;) {
        while (!m->rc_stop && (!m->rc_pending || enpid_mqtt_mono_ms() < m->rc_due_ms)) {
            int64_t wake = enpid_mqtt_mono_ms() + tick;
            if (m->rc_pending && m->rc_due_ms < wake)
                wake = m->rc_due_ms;
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000L};
            pthread_cond_timedwait(&m->rc_cv, &m->rc_mu, &ts);
            if (!m->rc_stop && m->rc_pause_close) {
                m->rc_pause_close = false;
                pthread_mutex_unlock(&m->rc_mu); /* never call Paho holding rc_mu */
                enpid_mqtt_pause_close(m);
                pthread_mutex_lock(&m->rc_mu);
                continue;
            }
            if (!m->rc_stop && m->rc_diagnose) {
                m->rc_diagnose = false;
                m->rc_diag_ms = enpid_mqtt_mono_ms();
                pthread_mutex_unlock(&m->rc_mu);
                enpid_mqtt_diagnose_tls(m);
                pthread_mutex_lock(&m->rc_mu);
                continue;
            }
            if (!m->rc_stop) {
                pthread_mutex_unlock(&m->rc_mu); /* never call Paho holding rc_mu */
                check_liveness(m);
                pthread_mutex_lock(&m->rc_mu);
            }
        }
        if (m->rc_stop)
            break;
        m->rc_pending = false;
        unsigned attempt = m->rc_failures;
        int64_t waited = m->rc_delay_ms;
        pthread_mutex_unlock(&m->rc_mu); /* never call Paho holding rc_mu */
        log_info("mqtt: connecting to %s (attempt %u, after a %.1f s backoff)", m->uri, attempt + 1,
                 (double)waited / 1000.0);
        int rc = enpid_mqtt_start_connect(m, attempt);
        pthread_mutex_lock(&m->rc_mu);
        if (rc != 0) {
            int64_t delay = schedule_locked(m); /* Paho refused at once: no callback */
            if (delay >= 0)
                log_warn("mqtt: next connect attempt in %.1f s", (double)delay / 1000.0);
        }
    }
    pthread_mutex_unlock(&m->rc_mu);
    return NULL;
}

/* ---- back-pressure (mqtt.h): pause and resume ---- */

void enpid_mqtt_pause(enpid_mqtt_t *m)
{
    if (!m->rc_sync_ok)
        return;
    pthread_mutex_lock(&m->rc_mu);
    if (!m->rc_stop && !m->rc_paused) {
        m->rc_paused = true;
        m->rc_pending = false; /* a scheduled reconnect waits for the resume */
        m->rc_pause_close = true;
        pthread_cond_broadcast(&m->rc_cv);
    }
    pthread_mutex_unlock(&m->rc_mu);
}

void enpid_mqtt_resume(enpid_mqtt_t *m)
{
    if (!m->rc_sync_ok)
        return;
    pthread_mutex_lock(&m->rc_mu);
    if (!m->rc_stop && m->rc_paused) {
        m->rc_paused = false;
        bool still_up = m->rc_pause_close && atomic_load(&m->up_since_ms) != 0;
        m->rc_pause_close = false;
        if (!still_up) { /* (still up and not closed yet: the connection goes on) */
            /* Connect now. Should the close still be under way, Paho refuses the connect
             * or its CONNACK fails, and the usual backoff takes over. */
            m->rc_failures = 0;
            m->rc_pending = true;
            m->rc_delay_ms = 0;
            m->rc_due_ms = enpid_mqtt_mono_ms();
        }
        pthread_cond_broadcast(&m->rc_cv);
    }
    pthread_mutex_unlock(&m->rc_mu);
}

bool enpid_mqtt_paused(enpid_mqtt_t *m)
{
    if (!m->rc_sync_ok)
        return false;
    pthread_mutex_lock(&m->rc_mu);
    bool p = m->rc_paused;
    pthread_mutex_unlock(&m->rc_mu);
    return p;
}

/* Stops all further connect attempts (any thread but the reconnect thread). */
void enpid_mqtt_reconnect_stop(enpid_mqtt_t *m)
{
    if (!m->rc_sync_ok)
        return;
    pthread_mutex_lock(&m->rc_mu);
    m->rc_stop = true;
    m->rc_pending = false;
    if (m->rc_diag_fd >= 0)
        shutdown(m->rc_diag_fd, SHUT_RDWR); /* ends a blocking connect or handshake */
    pthread_cond_broadcast(&m->rc_cv);
    pthread_mutex_unlock(&m->rc_mu);
}

int enpid_mqtt_reconnect_start(enpid_mqtt_t *m)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return ENPI_ENOMEM;
    int err = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (err == 0)
        err = pthread_cond_init(&m->rc_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (err != 0)
        return ENPI_ENOMEM;
    if (pthread_mutex_init(&m->rc_mu, NULL) != 0) {
        pthread_cond_destroy(&m->rc_cv);
        return ENPI_ENOMEM;
    }
    m->rc_sync_ok = true;
    m->rc_diag_fd = -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->rc_seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
                 (uint64_t)(uintptr_t)m;
    if (m->rc_seed == 0)
        m->rc_seed = 0x9E3779B97F4A7C15ULL;
    if (pthread_create(&m->rc_thread, NULL, reconnect_main, m) != 0) {
        log_err("mqtt: cannot start the reconnect thread");
        return ENPI_ENOMEM;
    }
    m->rc_thread_started = true;
    return 0;
}
