/*
 * mqtt.c - the adapter over Paho C's MQTTAsync: the client, its callbacks and the calls
 * of mqtt.h. Only the mqtt*.c files include MQTTAsync.h (through mqtt_int.h); the
 * reconnect thread lives in mqtt_reconnect.c, the TLS failure diagnosis, the only user of
 * OpenSSL (which enpid gets with Paho's TLS build), in mqtt_tls_diag.c.
 *
 * It creates the client from the mqtt: section of the configuration (MQTT 3.1.1 or 5,
 * persistent or clean session, keepalive, TLS, user name and a password read from a
 * file), subscribes to every input filter on every connect, turns Paho's callbacks into
 * the handlers of mqtt.h and Paho's return codes into ENPI_EMQTT with the reason logged.
 *
 * It also publishes what the daemon sends (Sparkplug rebirth requests): fire and forget,
 * only while connected, failures logged at a limited rate and dropped.
 *
 * DESIGN: Paho has a send thread and a receive thread and calls every callback on one of
 * them while holding its global mutex, so the callbacks below never run concurrently with
 * each other; that is what makes the rate limiters they use (rl, publish_fail_rl) safe to
 * share between them. enpid_mqtt_publish() runs on the loop thread and has its own
 * (publish_rl); the failure counter, written by callbacks and read by the loop, is atomic.
 * Paho persistence is off: enpid's inbox log is the durable copy of every message.
 * Paho's automaticReconnect is off too: every failed connect and every lost connection
 * hands over to the reconnect thread (mqtt_reconnect.c), which enpid_mqtt_disconnect()
 * and _destroy() stop; _destroy() joins it before destroying the Paho client.
 *
 * Every connect's own onSuccess reports the CONNACK's session-present flag (passed on as
 * ENPID_MQTT_SESSION_PRESENT); the subscription is nevertheless sent again on every
 * connect (connected_cb): with a persistent session that is harmless and covers a broker
 * that lost the session (restart without persistence, session expired).
 *
 * TLS: CA verification and the host name check are on unless tls.insecure (loud warning).
 * When a TLS connect fails, Paho says little ("TCP/TLS connect failure"), so the reconnect
 * thread makes a handshake of its own and logs OpenSSL's reason at error level (see
 * mqtt_tls_diag.c). A TLS failure is retried like any other, never fatal: fixing the
 * broker's certificate must not also need a restart of enpid.
 *
 * Secrets: the password is read from a file, kept in memory only here, wiped on destroy
 * and never logged (nor is any option structure dumped); Paho's own trace does not print
 * it either (test_tls.py runs enpid with Paho's trace at maximum and greps for it).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "mqtt_int.h"
#include "secret.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int enpid_mqtt_from_paho(int rc, const char *what)
{
    const char *why = MQTTAsync_strerror(rc);
    log_err("mqtt: %s failed: %s (%d)", what, why ? why : "unknown error", rc);
    return ENPI_EMQTT;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool uri_is_tls(const char *uri)
{
    return strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0 ||
           strncmp(uri, "wss://", 6) == 0;
}

/* ---- Paho callbacks (Paho threads, under Paho's mutex) ---- */

static int message_arrived_cb(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    enpid_mqtt_t *m = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    atomic_store(&m->in_rx, 1);
    int rc = m->h.on_message(m->h.ctx, topic, tlen, msg, msg->payload, plen, msg->dup != 0);
    enpid_mqtt_note_rx(m);
    atomic_store(&m->in_rx, 0);
    /* 1 hands the message and topic over to the handler; 0 keeps them queued in Paho. */
    return rc == 0 ? 1 : 0;
}

static void connection_lost_cb(void *context, char *cause)
{
    enpid_mqtt_t *m = context;
    int64_t since = atomic_exchange(&m->up_since_ms, 0);
    int64_t up = since ? enpid_mqtt_mono_ms() - since : 0;
    int64_t delay = enpid_mqtt_schedule_reconnect(m, since != 0 && up >= STABLE_MS);
    log_warn("mqtt: connection to %s lost after %.1f s%s%s; reconnecting in %.1f s", m->uri,
             (double)up / 1000.0, cause ? ": " : "", cause ? cause : "",
             delay >= 0 ? (double)delay / 1000.0 : 0.0);
    m->h.on_event(m->h.ctx, ENPID_MQTT_CONNECTION_LOST);
}

static void report_suback(enpid_mqtt_t *m, int i, int granted)
{
    if (granted >= 0x80) {
        log_err("mqtt: broker refused subscription to \"%s\" (reason 0x%02x)", m->filters[i],
                (unsigned)granted);
    } else if (granted < m->qos[i]) {
        log_warn("mqtt: subscription to \"%s\" granted at QoS %d, below the configured %d",
                 m->filters[i], granted, m->qos[i]);
    }
}

static void subscribe_success_cb(void *context, MQTTAsync_successData *data)
{
    enpid_mqtt_t *m = context;
    enpid_mqtt_note_rx(m);
    bool refused = false;
    for (int i = 0; i < m->n_filters; i++) {
        /* Paho reports one filter's grant in alt.qos and several in alt.qosList. */
        int granted = m->n_filters == 1 ? data->alt.qos
                                        : (data->alt.qosList ? data->alt.qosList[i] : m->qos[i]);
        report_suback(m, i, granted);
        refused |= granted >= 0x80;
    }
    if (!refused)
        log_info("mqtt: subscribed to %d filter%s at QoS %d", m->n_filters,
                 m->n_filters == 1 ? "" : "s", m->qos[0]);
    m->h.on_event(m->h.ctx, refused ? ENPID_MQTT_SUBSCRIBE_FAILED : ENPID_MQTT_SUBSCRIBED);
}

static void subscribe_failure_cb(void *context, MQTTAsync_failureData *data)
{
    enpid_mqtt_t *m = context;
    enpid_mqtt_note_rx(m);
    log_err("mqtt: subscribe failed: %s (%d)%s%s", MQTTAsync_strerror(data->code), data->code,
            data->message ? ": " : "", data->message ? data->message : "");
    m->h.on_event(m->h.ctx, ENPID_MQTT_SUBSCRIBE_FAILED);
}

static void subscribe_success5_cb(void *context, MQTTAsync_successData5 *data)
{
    enpid_mqtt_t *m = context;
    enpid_mqtt_note_rx(m);
    bool refused = false;
    for (int i = 0; i < m->n_filters; i++) {
        /* Paho fills alt.sub.reasonCodes only for two or more filters; with one, the
         * pointer is not initialised and reasonCode holds the grant. */
        int code = (int)data->reasonCode;
        if (m->n_filters > 1 && data->alt.sub.reasonCodeCount > i && data->alt.sub.reasonCodes)
            code = (int)data->alt.sub.reasonCodes[i];
        report_suback(m, i, code);
        refused |= code >= 0x80;
    }
    if (!refused)
        log_info("mqtt: subscribed to %d filter%s at QoS %d", m->n_filters,
                 m->n_filters == 1 ? "" : "s", m->qos[0]);
    m->h.on_event(m->h.ctx, refused ? ENPID_MQTT_SUBSCRIBE_FAILED : ENPID_MQTT_SUBSCRIBED);
}

static void subscribe_failure5_cb(void *context, MQTTAsync_failureData5 *data)
{
    enpid_mqtt_t *m = context;
    enpid_mqtt_note_rx(m);
    log_err("mqtt: subscribe failed: %s (%d), reason %s%s%s", MQTTAsync_strerror(data->code),
            data->code, MQTTReasonCode_toString(data->reasonCode), data->message ? ": " : "",
            data->message ? data->message : "");
    m->h.on_event(m->h.ctx, ENPID_MQTT_SUBSCRIBE_FAILED);
}

/* Called by Paho after every successful connect, the first and each automatic reconnect. */
static void connected_cb(void *context, char *cause)
{
    enpid_mqtt_t *m = context;
    bool again = m->connects++ > 0;
    if (again)
        atomic_fetch_add_explicit(&m->reconnects, 1, memory_order_relaxed); /* statistic */
    int64_t t = enpid_mqtt_mono_ms();
    atomic_store(&m->probe_sent_ms, 0);
    atomic_store(&m->last_rx_ms, t);
    atomic_store(&m->up_since_ms, t ? t : 1);
    pthread_mutex_lock(&m->rc_mu);
    m->rc_diag_ms = 0; /* the next TLS failure is diagnosed at once */
    bool paused = m->rc_paused;
    if (paused) {
        /* a connect that was under way when enpid paused: close it again */
        m->rc_pause_close = true;
        pthread_cond_broadcast(&m->rc_cv);
    }
    pthread_mutex_unlock(&m->rc_mu);
    log_notice("mqtt: %s to %s as \"%s\"", again ? "reconnected" : "connected", m->uri,
               m->client_id);
    m->h.on_event(m->h.ctx, ENPID_MQTT_CONNECTED);
    if (paused)
        return; /* no subscribe: the reconnect thread closes the connection */

    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = m;
    if (m->version >= MQTTVERSION_5) {
        ro.onSuccess5 = subscribe_success5_cb;
        ro.onFailure5 = subscribe_failure5_cb;
    } else {
        ro.onSuccess = subscribe_success_cb;
        ro.onFailure = subscribe_failure_cb;
    }
    int rc = MQTTAsync_subscribeMany(m->client, m->n_filters, m->filters, m->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        enpid_mqtt_from_paho(rc, "subscribe");
        m->h.on_event(m->h.ctx, ENPID_MQTT_SUBSCRIBE_FAILED);
    }
}

/* MQTT 3.1.1 CONNACK refusals, which Paho passes on as the failure code itself. */
static const char *connack_reason(int code)
{
    switch (code) {
    case 1:
        return "broker refused: unacceptable protocol version";
    case 2:
        return "broker refused: client identifier rejected";
    case 3:
        return "broker refused: server unavailable";
    case 4:
        return "broker refused: bad user name or password";
    case 5:
        return "broker refused: not authorized";
    default:
        return MQTTAsync_strerror(code);
    }
}

static void connect_failed(enpid_mqtt_t *m, int code, const char *message, const char *reason)
{
    atomic_fetch_add_explicit(&m->connect_failures, 1, memory_order_relaxed); /* statistic */
    if (m->tls && !m->insecure && code == MQTTASYNC_FAILURE) {
        pthread_mutex_lock(&m->rc_mu);
        if (m->rc_diag_ms == 0 || enpid_mqtt_mono_ms() - m->rc_diag_ms >= DIAG_EVERY_MS)
            m->rc_diagnose = true; /* the reconnect thread looks into it */
        pthread_mutex_unlock(&m->rc_mu);
    }
    int64_t delay = enpid_mqtt_schedule_reconnect(m, false);
    uint64_t suppressed = 0;
    if (!enpi_ratelimit_allow(&m->rl, now_ms(), 6, &suppressed))
        return;
    if (delay < 0) {
        log_warn("mqtt: connect to %s failed: %s (%d)%s%s%s%s", m->uri, connack_reason(code), code,
                 reason ? ", reason " : "", reason ? reason : "", message ? ": " : "",
                 message ? message : "");
    } else {
        log_warn("mqtt: connect to %s failed: %s (%d)%s%s%s%s; retrying in %.1f s", m->uri,
                 connack_reason(code), code, reason ? ", reason " : "", reason ? reason : "",
                 message ? ": " : "", message ? message : "", (double)delay / 1000.0);
    }
    if (suppressed)
        log_warn("mqtt: (%llu similar messages suppressed)", (unsigned long long)suppressed);
}

/* A connect's own success callback: the only place Paho reports the CONNACK's
 * session-present flag (connected_cb follows it). */
static void connect_success_cb(void *context, MQTTAsync_successData *data)
{
    enpid_mqtt_t *m = context;
    if (data && data->alt.connect.sessionPresent) {
        log_info("mqtt: the broker resumed the stored session");
        m->h.on_event(m->h.ctx, ENPID_MQTT_SESSION_PRESENT);
    }
}

static void connect_success5_cb(void *context, MQTTAsync_successData5 *data)
{
    enpid_mqtt_t *m = context;
    if (data && data->alt.connect.sessionPresent) {
        log_info("mqtt: the broker resumed the stored session");
        m->h.on_event(m->h.ctx, ENPID_MQTT_SESSION_PRESENT);
    }
}

static void connect_failure_cb(void *context, MQTTAsync_failureData *data)
{
    connect_failed(context, data->code, data->message, NULL);
}

static void connect_failure5_cb(void *context, MQTTAsync_failureData5 *data)
{
    connect_failed(context, data->code, data->message,
                   data->reasonCode ? MQTTReasonCode_toString(data->reasonCode) : NULL);
}

static void disconnect_done_cb(void *context, MQTTAsync_successData *data)
{
    enpid_mqtt_t *m = context;
    log_info("mqtt: disconnected from %s", m->uri);
    m->h.on_event(m->h.ctx, ENPID_MQTT_DISCONNECTED);
}

static void disconnect_failed_cb(void *context, MQTTAsync_failureData *data)
{
    enpid_mqtt_t *m = context;
    log_warn("mqtt: disconnect failed: %s (%d)", MQTTAsync_strerror(data->code), data->code);
    m->h.on_event(m->h.ctx, ENPID_MQTT_DISCONNECTED);
}

static void disconnect_done5_cb(void *context, MQTTAsync_successData5 *data)
{
    disconnect_done_cb(context, NULL);
}

static void disconnect_failed5_cb(void *context, MQTTAsync_failureData5 *data)
{
    enpid_mqtt_t *m = context;
    log_warn("mqtt: disconnect failed: %s (%d)", MQTTAsync_strerror(data->code), data->code);
    m->h.on_event(m->h.ctx, ENPID_MQTT_DISCONNECTED);
}

/* The DISCONNECT of a pause is done (or failed: the connection is gone either way). */
static void pause_closed(enpid_mqtt_t *m)
{
    log_notice("mqtt: disconnected from %s while paused; the broker keeps the session's "
               "messages",
               m->uri);
    m->h.on_event(m->h.ctx, ENPID_MQTT_CONNECTION_LOST);
}

static void pause_closed_cb(void *context, MQTTAsync_successData *data)
{
    pause_closed(context);
}

static void pause_close_failed_cb(void *context, MQTTAsync_failureData *data)
{
    pause_closed(context);
}

static void pause_closed5_cb(void *context, MQTTAsync_successData5 *data)
{
    pause_closed(context);
}

static void pause_close_failed5_cb(void *context, MQTTAsync_failureData5 *data)
{
    pause_closed(context);
}

void enpid_mqtt_pause_close(enpid_mqtt_t *m)
{
    /* Down from here on: the liveness check leaves the connection alone. */
    atomic_store(&m->up_since_ms, 0);
    atomic_store(&m->probe_sent_ms, 0);
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    o.timeout = 1000; /* PUBACKs of what was handed over already may still leave */
    o.context = m;
    if (m->version >= MQTTVERSION_5) {
        o.onSuccess5 = pause_closed5_cb;
        o.onFailure5 = pause_close_failed5_cb;
    } else {
        o.onSuccess = pause_closed_cb;
        o.onFailure = pause_close_failed_cb;
    }
    int prc = MQTTAsync_disconnect(m->client, &o);
    if (prc == MQTTASYNC_DISCONNECTED)
        return; /* not connected: nothing to close */
    if (prc != MQTTASYNC_SUCCESS) {
        enpid_mqtt_from_paho(prc, "disconnecting for a pause");
        pause_closed(m);
    }
}

/* MQTT 5: the broker closed the session with a DISCONNECT carrying a reason. */
static void broker_disconnected_cb(void *context, MQTTProperties *props, enum MQTTReasonCodes rc)
{
    enpid_mqtt_t *m = context;
    log_warn("mqtt: broker %s sent DISCONNECT: %s", m->uri, MQTTReasonCode_toString(rc));
}

static int ssl_error_cb(const char *str, size_t len, void *u)
{
    int n = len > 400 ? 400 : (int)len;
    while (n > 0 && (str[n - 1] == '\n' || str[n - 1] == '\r'))
        n--;
    log_warn("mqtt: TLS: %.*s", n, str);
    return 0;
}

/* ---- public ---- */

int enpid_mqtt_create(const enpi_mqtt_cfg_t *cfg, const char *const *filters, size_t n_filters,
                      const enpid_mqtt_handlers_t *h, enpid_mqtt_t **out)
{
    *out = NULL;
    if (cfg == NULL || cfg->uri == NULL || cfg->client_id == NULL || h == NULL ||
        h->on_message == NULL || h->on_event == NULL || n_filters == 0 || n_filters > 1024)
        return ENPI_EINVAL;
    if (cfg->qos < 0 || cfg->qos > 2)
        return ENPI_EINVAL;

    int rc = ENPI_ENOMEM;
    enpid_mqtt_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return ENPI_ENOMEM;
    m->h = *h;
    m->version = cfg->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
    m->keepalive_s = (int)(cfg->keepalive_ms / 1000);
    if (cfg->keepalive_ms > 0 && m->keepalive_s == 0)
        m->keepalive_s = 1;
    m->clean_session = cfg->clean_session;
    m->reconnect_max_ms =
        cfg->reconnect_max_ms >= RECONNECT_MIN_MS ? cfg->reconnect_max_ms : RECONNECT_MIN_MS;
    if (cfg->session_expiry_s >= 0)
        m->session_expiry_s = cfg->session_expiry_s > (int64_t)UINT32_MAX
                                  ? UINT32_MAX
                                  : (uint32_t)cfg->session_expiry_s;
    else
        m->session_expiry_s = m->clean_session ? 0 : UINT32_MAX; /* MQTT 5: never expires */
    m->n_filters = (int)n_filters;
    m->uri = strdup(cfg->uri);
    m->client_id = strdup(cfg->client_id);
    m->filters = calloc(n_filters, sizeof *m->filters);
    m->qos = calloc(n_filters, sizeof *m->qos);
    if (m->uri == NULL || m->client_id == NULL || m->filters == NULL || m->qos == NULL)
        goto free_m;
    for (size_t i = 0; i < n_filters; i++) {
        if ((m->filters[i] = strdup(filters[i])) == NULL)
            goto free_m;
        m->qos[i] = cfg->qos;
    }
    if (cfg->username && (m->username = strdup(cfg->username)) == NULL)
        goto free_m;
    m->tls = uri_is_tls(cfg->uri);
    if (cfg->has_tls && !m->tls)
        log_warn("mqtt: tls settings ignored: the uri %s is not ssl:// or mqtts://", cfg->uri);
    if (m->tls && cfg->has_tls) {
        m->insecure = cfg->tls.insecure;
        if ((cfg->tls.ca_file && (m->ca_file = dup_or_null(cfg->tls.ca_file)) == NULL) ||
            (cfg->tls.cert_file && (m->cert_file = dup_or_null(cfg->tls.cert_file)) == NULL) ||
            (cfg->tls.key_file && (m->key_file = dup_or_null(cfg->tls.key_file)) == NULL))
            goto free_m;
        if (m->insecure)
            log_warn("mqtt: tls.insecure is true: the broker's certificate and host name are "
                     "NOT verified; anyone on the path can impersonate the broker and read the "
                     "password. Use it for testing only");
    }
    char secret_err[512];
    rc = enpi_secret_read_password(cfg->password_file, &m->password, secret_err, sizeof secret_err);
    if (rc != 0) {
        log_err("mqtt: %s", secret_err[0] ? secret_err : enpi_strerror(rc));
        goto free_m;
    }
    if (m->password)
        log_debug("mqtt: password read from %s",
                  cfg->password_file ? cfg->password_file : "$CREDENTIALS_DIRECTORY/mqtt.secret");
    if (m->password && m->username == NULL)
        log_warn("mqtt: a password is given without a username; MQTT 3.1.1 brokers refuse that");

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = m->version;
    co.sendWhileDisconnected = 0;
    co.maxBufferedMessages = PUBLISH_BUFFERED_MAX;
    int prc = MQTTAsync_createWithOptions(&m->client, m->uri, cfg->client_id,
                                          MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (prc != MQTTASYNC_SUCCESS) {
        rc = enpid_mqtt_from_paho(prc, "create");
        m->client = NULL;
        goto free_m;
    }
    prc = MQTTAsync_setCallbacks(m->client, m, connection_lost_cb, message_arrived_cb, NULL);
    if (prc == MQTTASYNC_SUCCESS)
        prc = MQTTAsync_setConnected(m->client, m, connected_cb);
    if (prc == MQTTASYNC_SUCCESS && m->version >= MQTTVERSION_5)
        prc = MQTTAsync_setDisconnected(m->client, m, broker_disconnected_cb);
    if (prc != MQTTASYNC_SUCCESS) {
        rc = enpid_mqtt_from_paho(prc, "set callbacks");
        goto free_m;
    }
    if ((rc = enpid_mqtt_reconnect_start(m)) != 0)
        goto free_m;
    log_debug("mqtt: client \"%s\" for %s, MQTT %s, %s session, keepalive %d s, reconnect "
              "backoff 1 s .. %lld s, %s%s%s",
              cfg->client_id, m->uri, m->version >= MQTTVERSION_5 ? "5" : "3.1.1",
              m->clean_session ? "clean" : "persistent", m->keepalive_s,
              (long long)(m->reconnect_max_ms / 1000),
              m->tls ? (m->insecure ? "TLS without verification" : "TLS") : "plain TCP",
              m->username ? ", with user name" : "", m->password ? ", with password" : "");
    if (m->version >= MQTTVERSION_5 && m->session_expiry_s > 0)
        log_debug("mqtt: session expiry interval %s",
                  m->session_expiry_s == UINT32_MAX ? "never" : "set");
    *out = m;
    return 0;

free_m:
    enpid_mqtt_destroy(m);
    return rc;
}

/*
 * Starts one connect attempt with the configured options (loop thread for the first, the
 * reconnect thread after, which logs the attempt itself). Its outcome arrives in
 * connect_success*_cb + connected_cb, or connect_failure*_cb, which schedules the next attempt.
 * Returns 0, ENPI_ENOMEM or ENPI_EMQTT when Paho refused to start it (then no callback follows).
 */
int enpid_mqtt_start_connect(enpid_mqtt_t *m, unsigned attempt)
{
    MQTTAsync_connectOptions o5 = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_connectOptions o3 = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions *o = m->version >= MQTTVERSION_5 ? &o5 : &o3;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    MQTTProperties props = MQTTProperties_initializer;

    o->keepAliveInterval = m->keepalive_s;
    o->automaticReconnect = 0; /* ours: reconnect_main */
    o->connectTimeout = CONNECT_TIMEOUT_S;
    o->username = m->username;
    o->password = m->password;
    o->context = m;
    if (m->version >= MQTTVERSION_5) {
        o->cleanstart = m->clean_session;
        o->onSuccess5 = connect_success5_cb;
        o->onFailure5 = connect_failure5_cb;
        if (m->session_expiry_s > 0) {
            /* MQTT 5 ends a session at disconnect unless an expiry is given. */
            MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
            p.value.integer4 = m->session_expiry_s;
            if (MQTTProperties_add(&props, &p) != 0) {
                log_err("mqtt: cannot build the CONNECT properties");
                return ENPI_ENOMEM;
            }
            o->connectProperties = &props;
        }
    } else {
        o->cleansession = m->clean_session;
        o->MQTTVersion = MQTTVERSION_3_1_1;
        o->onSuccess = connect_success_cb;
        o->onFailure = connect_failure_cb;
    }
    if (m->tls) {
        ssl.trustStore = m->ca_file;
        ssl.keyStore = m->cert_file;
        ssl.privateKey = m->key_file;
        ssl.enableServerCertAuth = m->insecure ? 0 : 1;
        ssl.verify = m->insecure ? 0 : 1;
        ssl.ssl_error_cb = ssl_error_cb;
        ssl.ssl_error_context = m;
        o->ssl = &ssl;
    }
    /* Paho copies the options, credentials included, before this returns. */
    if (attempt == 0)
        log_info("mqtt: connecting to %s", m->uri);
    int prc = MQTTAsync_connect(m->client, o);
    MQTTProperties_free(&props);
    if (prc != MQTTASYNC_SUCCESS)
        return enpid_mqtt_from_paho(prc, "connect");
    return 0;
}

int enpid_mqtt_connect(enpid_mqtt_t *m)
{
    return enpid_mqtt_start_connect(m, 0);
}

int enpid_mqtt_disconnect(enpid_mqtt_t *m, int timeout_ms)
{
    enpid_mqtt_reconnect_stop(m);
    MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer;
    o.timeout = timeout_ms;
    o.context = m;
    if (m->version >= MQTTVERSION_5) {
        o.onSuccess5 = disconnect_done5_cb;
        o.onFailure5 = disconnect_failed5_cb;
    } else {
        o.onSuccess = disconnect_done_cb;
        o.onFailure = disconnect_failed_cb;
    }
    int prc = MQTTAsync_disconnect(m->client, &o);
    if (prc == MQTTASYNC_DISCONNECTED)
        return ENPI_ESTATE; /* not connected; reconnecting has been stopped all the same */
    if (prc != MQTTASYNC_SUCCESS)
        return enpid_mqtt_from_paho(prc, "disconnect");
    return 0;
}

void enpid_mqtt_destroy(enpid_mqtt_t *m)
{
    if (m == NULL)
        return;
    enpid_mqtt_reconnect_stop(m);
    if (m->rc_thread_started)
        pthread_join(m->rc_thread, NULL); /* before Paho goes: it may be in MQTTAsync_connect */
    if (m->client)
        MQTTAsync_destroy(&m->client); /* no callback runs after this */
    if (m->rc_sync_ok) {
        pthread_mutex_destroy(&m->rc_mu);
        pthread_cond_destroy(&m->rc_cv);
    }
    if (m->filters)
        for (int i = 0; i < m->n_filters; i++)
            free(m->filters[i]);
    free(m->filters);
    free(m->qos);
    free(m->uri);
    free(m->client_id);
    free(m->username);
    enpi_secret_free(m->password);
    free(m->ca_file);
    free(m->cert_file);
    free(m->key_file);
    free(m);
}

/* A message Paho took from enpid_mqtt_publish() was not sent (called by Paho, under its
 * mutex, like every other callback here). */
static void publish_failed(enpid_mqtt_t *m, int code, const char *reason)
{
    uint64_t suppressed = 0;
    atomic_fetch_add_explicit(&m->publish_failures, 1, memory_order_relaxed); /* statistic */
    if (!enpi_ratelimit_allow(&m->publish_fail_rl, now_ms(), 6, &suppressed))
        return;
    const char *why = MQTTAsync_strerror(code);
    log_warn("mqtt: a published message was not sent: %s (%d)%s%s; dropped",
             why ? why : "unknown error", code, reason ? ", reason " : "", reason ? reason : "");
    if (suppressed)
        log_warn("mqtt: (%llu similar messages suppressed)", (unsigned long long)suppressed);
}

static void publish_failure_cb(void *context, MQTTAsync_failureData *data)
{
    publish_failed(context, data ? data->code : MQTTASYNC_FAILURE, NULL);
}

static void publish_failure5_cb(void *context, MQTTAsync_failureData5 *data)
{
    publish_failed(context, data ? data->code : MQTTASYNC_FAILURE,
                   data && data->reasonCode ? MQTTReasonCode_toString(data->reasonCode) : NULL);
}

int enpid_mqtt_publish(enpid_mqtt_t *m, const char *topic, const void *payload, size_t len, int qos,
                       bool retain)
{
    if (qos < 0 || qos > 2 || len > INT_MAX)
        return ENPI_EINVAL;
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = (void *)payload; /* only read: Paho copies it */
    msg.payloadlen = (int)len;
    msg.qos = qos;
    msg.retained = retain ? 1 : 0;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.context = m;
    if (m->version >= MQTTVERSION_5)
        ro.onFailure5 = publish_failure5_cb;
    else
        ro.onFailure = publish_failure_cb;
    int prc = MQTTAsync_sendMessage(m->client, topic, &msg, &ro);
    if (prc == MQTTASYNC_SUCCESS)
        return 0;
    int rc = prc == MQTTASYNC_DISCONNECTED ? ENPI_ESTATE : ENPI_EMQTT;
    uint64_t suppressed = 0;
    if (enpi_ratelimit_allow(&m->publish_rl, now_ms(), 6, &suppressed)) {
        const char *why = MQTTAsync_strerror(prc);
        log_warn("mqtt: cannot publish to \"%s\": %s (%d); dropped", topic,
                 why ? why : "unknown error", prc);
        if (suppressed)
            log_warn("mqtt: (%llu similar messages suppressed)", (unsigned long long)suppressed);
    }
    return rc;
}

uint64_t enpid_mqtt_publish_failures(const enpid_mqtt_t *m)
{
    /* The atomic is only read; the cast drops the const that atomic_load does not take. */
    return atomic_load_explicit((_Atomic uint64_t *)&m->publish_failures, memory_order_relaxed);
}

uint64_t enpid_mqtt_reconnects(const enpid_mqtt_t *m)
{
    return atomic_load_explicit((_Atomic uint64_t *)&m->reconnects, memory_order_relaxed);
}

uint64_t enpid_mqtt_dead_links(const enpid_mqtt_t *m)
{
    return atomic_load_explicit((_Atomic uint64_t *)&m->dead_links, memory_order_relaxed);
}

uint64_t enpid_mqtt_connect_failures(const enpid_mqtt_t *m)
{
    return atomic_load_explicit((_Atomic uint64_t *)&m->connect_failures, memory_order_relaxed);
}

void enpid_mqtt_message_payload(void *msg, const void **payload, size_t *len)
{
    MQTTAsync_message *mm = msg;
    *payload = mm->payload;
    *len = mm->payloadlen > 0 ? (size_t)mm->payloadlen : 0;
}

void enpid_mqtt_message_free(void *msg, char *topic)
{
    MQTTAsync_message *mm = msg;
    if (mm)
        MQTTAsync_freeMessage(&mm);
    if (topic)
        MQTTAsync_free(topic);
}
