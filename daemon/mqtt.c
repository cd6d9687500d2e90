/*
 * mqtt.c - the adapter over Paho C's MQTTAsync (the only file that includes MQTTAsync.h,
 * and the only one that uses OpenSSL, which it gets with Paho's TLS build).
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
 * Paho persistence is off: enpid's RocksDB inbox is the durable copy of every message.
 *
 * Reconnection is ours, not Paho's automaticReconnect (which doubles its delay without
 * jitter, so a fleet of clients retries in lock step after a broker restart): every failed
 * connect and every lost connection schedules the next MQTTAsync_connect() on a thread of
 * this file (the "reconnect thread") after a delay drawn uniformly from [d/2, d], where d
 * starts at 1 s and doubles up to mqtt.reconnect_max (default 60 s). d starts again from
 * 1 s only once a connection has stayed up for STABLE_MS, so a broker that accepts and at
 * once drops us (duplicate client id, ACL) is not hammered. The same thread runs the
 * liveness check and the TLS diagnosis below. It never holds its mutex (rc_mu) while
 * calling Paho, and Paho's callbacks take rc_mu only briefly, so the only lock order is
 * Paho's mutex -> rc_mu: no cycle. enpid_mqtt_disconnect() and _destroy() stop it;
 * _destroy() joins it before destroying the Paho client.
 *
 * Every connect's own onSuccess reports the CONNACK's session-present flag (passed on as
 * ENPID_MQTT_SESSION_PRESENT); the subscription is nevertheless sent again on every
 * connect (connected_cb): with a persistent session that is harmless and covers a broker
 * that lost the session (restart without persistence, session expired).
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
 *
 * TLS: CA verification and the host name check are on unless tls.insecure (loud warning).
 * When a TLS connect fails, Paho says little ("TCP/TLS connect failure"), so the reconnect
 * thread makes a handshake of its own and logs OpenSSL's reason at error level (see
 * diagnose_tls). A TLS failure is retried like any other, never fatal: fixing the
 * broker's certificate must not also need a restart of enpid.
 *
 * Secrets: the password is read from a file, kept in memory only here, wiped on destroy
 * and never logged (nor is any option structure dumped); Paho's own trace does not print
 * it either (test_tls.py runs enpid with Paho's trace at maximum and greps for it).
 */
#include "mqtt.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include "enpi_error.h"
#include "log.h"
#include "secret.h"

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
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Something arrived from the broker (Paho threads). */
static void note_rx(enpid_mqtt_t *m)
{
    atomic_store(&m->last_rx_ms, mono_ms());
}

static int from_paho(int rc, const char *what)
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
    if (m->rc_stop)
        return -1;
    int64_t delay = backoff_ms(m, m->rc_failures);
    if (m->rc_failures < 30)
        m->rc_failures++;
    m->rc_pending = true;
    m->rc_delay_ms = delay;
    m->rc_due_ms = mono_ms() + delay;
    pthread_cond_signal(&m->rc_cv);
    return delay;
}

/*
 * A connect failed or a connection was lost (Paho threads): schedules the next attempt.
 * `stable` (a connection that lasted STABLE_MS) restarts the backoff at 1 s. Returns the
 * delay in ms, or -1 when enpid is disconnecting.
 */
static int64_t schedule_reconnect(enpid_mqtt_t *m, bool stable)
{
    pthread_mutex_lock(&m->rc_mu);
    if (stable)
        m->rc_failures = 0;
    int64_t delay = schedule_locked(m);
    pthread_mutex_unlock(&m->rc_mu);
    return delay;
}

static int start_connect(enpid_mqtt_t *m, unsigned attempt);

/* ---- TLS diagnosis (reconnect thread) ----
 *
 * Paho reports a failed TLS connect as "TCP/TLS connect failure", with at best OpenSSL's
 * "certificate verify failed" and nothing at all for a host name mismatch (its own check
 * after the handshake). So after such a failure the reconnect thread makes one TLS
 * handshake of its own to the broker with the same CA, client certificate and host name,
 * and logs what OpenSSL says: "certificate has expired", "hostname mismatch", "unable to
 * get local issuer certificate", the broker's alert when it wants a client certificate...
 * It runs on the first TLS failure after a start or a connection, then at most every
 * DIAG_EVERY_MS, each step bounded by DIAG_TIMEOUT_MS. enpid links OpenSSL anyway (Paho's
 * TLS library); nothing here touches Paho's connection.
 */

/* Splits ssl://host:port (or [v6]:port) into host and port (default 8883). Returns false
 * for what it cannot diagnose (websockets). */
static bool split_uri(const char *uri, char *host, size_t host_len, char *port, size_t port_len)
{
    const char *p = strstr(uri, "://");
    if (p == NULL || strncmp(uri, "wss://", 6) == 0)
        return false;
    p += 3;
    const char *h = p, *h_end;
    if (*p == '[') {
        h = p + 1;
        h_end = strchr(h, ']');
        if (h_end == NULL)
            return false;
        p = h_end + 1;
    } else {
        h_end = p + strcspn(p, ":/");
        p = h_end;
    }
    size_t n = (size_t)(h_end - h);
    if (n == 0 || n >= host_len)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    const char *pt = "8883";
    size_t pn = 4;
    if (*p == ':') {
        pt = p + 1;
        pn = strcspn(pt, "/");
    }
    if (pn == 0 || pn >= port_len)
        return false;
    memcpy(port, pt, pn);
    port[pn] = '\0';
    return true;
}

/* Publishes the diagnosis's socket for stop_reconnecting(); false when stopping. */
static bool diag_register(enpid_mqtt_t *m, int fd)
{
    pthread_mutex_lock(&m->rc_mu);
    bool ok = !m->rc_stop;
    m->rc_diag_fd = ok ? fd : -1;
    pthread_mutex_unlock(&m->rc_mu);
    return ok;
}

/* A TCP connection to host:port within DIAG_TIMEOUT_MS, blocking with send/receive
 * timeouts after, registered as rc_diag_fd (the caller unregisters and closes it).
 * Returns the socket, or -1 with *why set (NULL when enpid is stopping). */
static int diag_connect(enpid_mqtt_t *m, const char *host, const char *port, const char **why)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        *why = gai_strerror(gai);
        return -1;
    }
    int fd = -1;
    *why = "no address";
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            *why = strerror(errno);
            continue;
        }
        if (!diag_register(m, fd)) {
            *why = NULL;
            close(fd);
            fd = -1;
            break;
        }
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int pr = poll(&pfd, 1, DIAG_TIMEOUT_MS);
                socklen_t len = sizeof err;
                if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0)
                    ; /* err is the connect's result */
                else
                    err = pr == 0 ? ETIMEDOUT : errno;
            }
        }
        if (err != 0) {
            *why = strerror(err);
            diag_register(m, -1);
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {.tv_sec = DIAG_TIMEOUT_MS / 1000,
                             .tv_usec = (DIAG_TIMEOUT_MS % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* OpenSSL's first queued error as text (cleared), or `dflt`. */
static const char *ssl_err_text(char *buf, size_t len, const char *dflt)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return dflt;
    ERR_error_string_n(e, buf, len);
    return buf;
}

/* Subject and validity of the broker's certificate, for the log line. */
static void describe_cert(X509 *cert, char *out, size_t len)
{
    out[0] = '\0';
    if (cert == NULL)
        return;
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    char from[64] = "?", to[64] = "?";
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL) {
        int n;
        if (ASN1_TIME_print(b, X509_get0_notBefore(cert)) == 1 &&
            (n = BIO_read(b, from, (int)sizeof from - 1)) > 0)
            from[n] = '\0';
        (void)BIO_reset(b);
        if (ASN1_TIME_print(b, X509_get0_notAfter(cert)) == 1 &&
            (n = BIO_read(b, to, (int)sizeof to - 1)) > 0)
            to[n] = '\0';
        BIO_free(b);
    }
    snprintf(out, len, " (certificate %s, valid %s to %s)", subject, from, to);
}

/*
 * With TLS 1.3 a broker checks the client's certificate after the client's handshake has
 * completed, and says so in an alert. Waits up to 1 s for one. Returns true with its text
 * in buf when the broker ended the connection; false when it waits for our CONNECT.
 */
static bool diag_peer_alert(SSL *ssl, int fd, char *buf, size_t len)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char byte;
    ERR_clear_error();
    int n = SSL_peek(ssl, &byte, 1);
    if (n > 0)
        return false;
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ ||
        (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)))
        return false; /* nothing within the second: it waits for CONNECT */
    ssl_err_text(buf, len, "the connection was closed");
    return true;
}

/*
 * Makes one TLS handshake to the broker as Paho would (same CA, client certificate, host
 * name check) and logs at error level why the broker's certificate is refused, or why
 * the handshake fails. Reconnect thread; blocks up to 2 x DIAG_TIMEOUT_MS.
 */
static void diagnose_tls(enpid_mqtt_t *m)
{
    char host[256], port[16], errbuf[256];
    if (!split_uri(m->uri, host, sizeof host, port, sizeof port))
        return;
    const char *why = NULL;
    int fd = diag_connect(m, host, port, &why);
    if (fd < 0) {
        if (why != NULL)
            log_err("mqtt: cannot reach %s port %s: %s", host, port, why);
        return;
    }
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = NULL;
    X509 *cert = NULL;
    if (ctx == NULL)
        goto close_fd;
    if (m->ca_file ? SSL_CTX_load_verify_locations(ctx, m->ca_file, NULL) != 1
                   : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        log_err("mqtt: TLS: cannot load the CA certificates%s%s: %s", m->ca_file ? " of " : "",
                m->ca_file ? m->ca_file : "", ssl_err_text(errbuf, sizeof errbuf, "?"));
        goto free_ctx;
    }
    if (m->cert_file && (SSL_CTX_use_certificate_chain_file(ctx, m->cert_file) != 1 ||
                         SSL_CTX_use_PrivateKey_file(ctx, m->key_file ? m->key_file : m->cert_file,
                                                     SSL_FILETYPE_PEM) != 1)) {
        log_err("mqtt: TLS: cannot load the client certificate %s or its key: %s", m->cert_file,
                ssl_err_text(errbuf, sizeof errbuf, "?"));
        goto free_ctx;
    }
    /* Verify by hand after the handshake, so that the reason can be read. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1)
        goto free_ssl;
    struct in6_addr a6;
    struct in_addr a4;
    bool is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    else {
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
    }
    if (SSL_connect(ssl) != 1) {
        if (!diag_register(m, fd))
            goto free_ssl; /* stopping: the socket was shut down under the handshake */
        log_err("mqtt: TLS handshake with %s port %s failed: %s", host, port,
                ssl_err_text(errbuf, sizeof errbuf, "the connection was closed"));
        goto free_ssl;
    }
    cert = SSL_get1_peer_certificate(ssl);
    long v = SSL_get_verify_result(ssl);
    char desc[512];
    describe_cert(cert, desc, sizeof desc);
    if (cert == NULL)
        log_err("mqtt: TLS: the broker at %s port %s sent no certificate", host, port);
    else if (v != X509_V_OK)
        log_err("mqtt: TLS: the broker's certificate is refused: %s%s",
                X509_verify_cert_error_string(v), desc);
    else if (!diag_peer_alert(ssl, fd, errbuf, sizeof errbuf))
        log_notice("mqtt: TLS: a test handshake with %s port %s verifies%s; the failure lies "
                   "elsewhere (see above)",
                   host, port, desc);
    else if (diag_register(m, fd)) /* not stopping */
        log_err("mqtt: TLS: the broker at %s port %s ended the connection after the handshake: "
                "%s (does it want a client certificate, or not trust ours?)",
                host, port, errbuf);
    X509_free(cert);
free_ssl:
    SSL_free(ssl);
free_ctx:
    SSL_CTX_free(ctx);
    ERR_clear_error();
close_fd:
    pthread_mutex_lock(&m->rc_mu);
    m->rc_diag_fd = -1;
    pthread_mutex_unlock(&m->rc_mu);
    close(fd);
}

/* The answer to a liveness probe (or its failure, which is an answer too when it came
 * from the broker; when the connection died, connected_cb clears the probe later). */
static void probe_answered(enpid_mqtt_t *m)
{
    note_rx(m);
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
    int64_t delay = schedule_reconnect(m, false);
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
    int64_t now = mono_ms();
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
        from_paho(prc, "closing the dead connection");
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
        while (!m->rc_stop && (!m->rc_pending || mono_ms() < m->rc_due_ms)) {
            int64_t wake = mono_ms() + tick;
            if (m->rc_pending && m->rc_due_ms < wake)
                wake = m->rc_due_ms;
            struct timespec ts = {.tv_sec = (time_t)(wake / 1000),
                                  .tv_nsec = (long)(wake % 1000) * 1000000L};
            pthread_cond_timedwait(&m->rc_cv, &m->rc_mu, &ts);
            if (!m->rc_stop && m->rc_diagnose) {
                m->rc_diagnose = false;
                m->rc_diag_ms = mono_ms();
                pthread_mutex_unlock(&m->rc_mu);
                diagnose_tls(m);
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
        int rc = start_connect(m, attempt);
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

/* Stops all further connect attempts (any thread but the reconnect thread). */
static void stop_reconnecting(enpid_mqtt_t *m)
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

static int init_reconnect(enpid_mqtt_t *m)
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

/* ---- Paho callbacks (Paho threads, under Paho's mutex) ---- */

static int message_arrived_cb(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
    enpid_mqtt_t *m = context;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    atomic_store(&m->in_rx, 1);
    int rc = m->h.on_message(m->h.ctx, topic, tlen, msg, msg->payload, plen, msg->dup != 0);
    note_rx(m);
    atomic_store(&m->in_rx, 0);
    /* 1 hands the message and topic over to the handler; 0 keeps them queued in Paho. */
    return rc == 0 ? 1 : 0;
}

static void connection_lost_cb(void *context, char *cause)
{
    enpid_mqtt_t *m = context;
    int64_t since = atomic_exchange(&m->up_since_ms, 0);
    int64_t up = since ? mono_ms() - since : 0;
    int64_t delay = schedule_reconnect(m, since != 0 && up >= STABLE_MS);
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
    note_rx(m);
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
    note_rx(m);
    log_err("mqtt: subscribe failed: %s (%d)%s%s", MQTTAsync_strerror(data->code), data->code,
            data->message ? ": " : "", data->message ? data->message : "");
    m->h.on_event(m->h.ctx, ENPID_MQTT_SUBSCRIBE_FAILED);
}

static void subscribe_success5_cb(void *context, MQTTAsync_successData5 *data)
{
    enpid_mqtt_t *m = context;
    note_rx(m);
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
    note_rx(m);
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
    int64_t t = mono_ms();
    atomic_store(&m->probe_sent_ms, 0);
    atomic_store(&m->last_rx_ms, t);
    atomic_store(&m->up_since_ms, t ? t : 1);
    pthread_mutex_lock(&m->rc_mu);
    m->rc_diag_ms = 0; /* the next TLS failure is diagnosed at once */
    pthread_mutex_unlock(&m->rc_mu);
    log_notice("mqtt: %s to %s as \"%s\"", again ? "reconnected" : "connected", m->uri,
               m->client_id);
    m->h.on_event(m->h.ctx, ENPID_MQTT_CONNECTED);

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
        from_paho(rc, "subscribe");
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
        if (m->rc_diag_ms == 0 || mono_ms() - m->rc_diag_ms >= DIAG_EVERY_MS)
            m->rc_diagnose = true; /* the reconnect thread looks into it */
        pthread_mutex_unlock(&m->rc_mu);
    }
    int64_t delay = schedule_reconnect(m, false);
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
    rc = enpi_secret_read_password(cfg->password_file, &m->password, secret_err,
                                   sizeof secret_err);
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
        rc = from_paho(prc, "create");
        m->client = NULL;
        goto free_m;
    }
    prc = MQTTAsync_setCallbacks(m->client, m, connection_lost_cb, message_arrived_cb, NULL);
    if (prc == MQTTASYNC_SUCCESS)
        prc = MQTTAsync_setConnected(m->client, m, connected_cb);
    if (prc == MQTTASYNC_SUCCESS && m->version >= MQTTVERSION_5)
        prc = MQTTAsync_setDisconnected(m->client, m, broker_disconnected_cb);
    if (prc != MQTTASYNC_SUCCESS) {
        rc = from_paho(prc, "set callbacks");
        goto free_m;
    }
    if ((rc = init_reconnect(m)) != 0)
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
static int start_connect(enpid_mqtt_t *m, unsigned attempt)
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
        return from_paho(prc, "connect");
    return 0;
}

int enpid_mqtt_connect(enpid_mqtt_t *m)
{
    return start_connect(m, 0);
}

int enpid_mqtt_disconnect(enpid_mqtt_t *m, int timeout_ms)
{
    stop_reconnecting(m);
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
        return from_paho(prc, "disconnect");
    return 0;
}

void enpid_mqtt_destroy(enpid_mqtt_t *m)
{
    if (m == NULL)
        return;
    stop_reconnecting(m);
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
