/*
 * bench_pub.c - the benchmark's publisher: N JSON readings over M meters, as fast as the
 * broker takes them.
 *
 * Reading i goes to meter i % M and is that meter's (i / M)-th reading, so every meter's
 * timestamps increase by --step and its register grows (cumulative meters). Meter m is
 * "f<facility>/m<index>" with --per-facility meters per facility, on topic
 * "<prefix>/f<facility>/m<index>"; the e2e driver generates enpid's config with the same
 * names (see meter_name()). The payload is {"ts": <ms>, "value": <register>}.
 *
 * DESIGN: libmosquitto driven from this one thread (no loop thread): mosquitto_publish()
 * writes straight to the socket when it can, mosquitto_loop() flushes the rest and reads
 * PUBACKs. published_cb counts completions (QoS 0: written; QoS 1: acknowledged). At most
 * --window messages are outstanding, which is also the QoS 1 in-flight window, so the
 * client's own queue stays bounded. (Paho's MQTTAsync was tried first: its command queue
 * caps a publisher at ~35k/s QoS 0 and ~14k/s QoS 1 here, slower than the subscribers
 * under test.)
 *
 * Prints one line "sent=N ok=N elapsed_s=S rate=R" and exits 0 when all N completed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

typedef struct {
    char host[256];
    int port;
    const char *client_id;
    const char *prefix;
    uint64_t count;
    uint64_t meters;
    uint64_t per_facility;
    int qos;
    int window;
    int64_t t0_ms;
    int64_t step_ms;
} pub_opts_t;

typedef struct {
    uint64_t completed; /* messages written (QoS 0) or acknowledged (QoS 1) */
    bool connected;
    int connack;        /* CONNACK code, -1 until it arrives */
} pub_state_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_pub --uri tcp://HOST:PORT [--count N] [--meters M] [--per-facility K]\n"
            "                 [--qos 0|1] [--window W] [--client-id ID] [--prefix P]\n"
            "                 [--t0 MS] [--step MS]\n"
            "Publishes N readings {\"ts\",\"value\"} round-robin over M meters on\n"
            "P/f<facility>/m<index> (K meters per facility) and prints how many completed.\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

/* "tcp://HOST:PORT" (or "HOST:PORT") into o->host and o->port. */
static bool parse_uri(const char *uri, pub_opts_t *o)
{
    const char *p = strncmp(uri, "tcp://", 6) == 0 ? uri + 6 : uri;
    const char *colon = strrchr(p, ':');
    uint64_t port = 0;
    if (colon == NULL || colon == p || (size_t)(colon - p) >= sizeof o->host ||
        !parse_u64(colon + 1, &port) || port == 0 || port > 65535)
        return false;
    memcpy(o->host, p, (size_t)(colon - p));
    o->host[colon - p] = '\0';
    o->port = (int)port;
    return true;
}

/* Returns 0 and fills *o, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, pub_opts_t *o)
{
    bool have_uri = false;
    *o = (pub_opts_t){
        .client_id = "bench_pub",
        .prefix = "bench",
        .count = 1000000,
        .meters = 10000,
        .per_facility = 10,
        .qos = 1,
        .window = 1000,
        .t0_ms = 0,
        .step_ms = 60000,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        uint64_t u = 0;
        bool ok = v != NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (!ok) {
            /* option without its value */
        } else if (strcmp(a, "--uri") == 0) {
            ok = have_uri = parse_uri(v, o);
        } else if (strcmp(a, "--client-id") == 0) {
            o->client_id = v;
        } else if (strcmp(a, "--prefix") == 0) {
            o->prefix = v;
        } else if (strcmp(a, "--count") == 0) {
            ok = parse_u64(v, &o->count);
        } else if (strcmp(a, "--meters") == 0) {
            ok = parse_u64(v, &o->meters) && o->meters > 0;
        } else if (strcmp(a, "--per-facility") == 0) {
            ok = parse_u64(v, &o->per_facility) && o->per_facility > 0 && o->per_facility < 100;
        } else if (strcmp(a, "--qos") == 0) {
            ok = parse_u64(v, &u) && u <= 1;
            o->qos = (int)u;
        } else if (strcmp(a, "--window") == 0) {
            ok = parse_u64(v, &u) && u > 0 && u <= 65000;
            o->window = (int)u;
        } else if (strcmp(a, "--t0") == 0) {
            ok = parse_i64(v, &o->t0_ms);
        } else if (strcmp(a, "--step") == 0) {
            ok = parse_i64(v, &o->step_ms) && o->step_ms > 0;
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "bench_pub: bad or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!have_uri) {
        fprintf(stderr, "bench_pub: --uri tcp://HOST:PORT is required\n");
        usage(stderr);
        return 2;
    }
    if (o->t0_ms == 0) {
        /* Default: each meter's last reading lands a minute before now, so nothing is
         * stamped in the future and every reading is recent. */
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        int64_t now_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
        int64_t per_meter = (int64_t)((o->count + o->meters - 1) / o->meters);
        o->t0_ms = now_ms - 60000 - per_meter * o->step_ms;
    }
    return 0;
}

/* The topic's last two levels for meter m, "f00012/m03"; also the meter id enpid uses. */
static void meter_name(const pub_opts_t *o, uint64_t m, char *buf, size_t len)
{
    snprintf(buf, len, "f%05" PRIu64 "/m%02" PRIu64, m / o->per_facility, m % o->per_facility);
}

static void connect_cb(struct mosquitto *mosq, void *ud, int rc)
{
    (void)mosq;
    pub_state_t *st = ud;
    st->connack = rc;
    st->connected = rc == 0;
}

static void disconnect_cb(struct mosquitto *mosq, void *ud, int rc)
{
    (void)mosq;
    pub_state_t *st = ud;
    if (st->connected && rc != 0)
        fprintf(stderr, "bench_pub: connection lost (%s)\n", mosquitto_strerror(rc));
    st->connected = false;
}

static void published_cb(struct mosquitto *mosq, void *ud, int mid)
{
    (void)mosq;
    (void)mid;
    pub_state_t *st = ud;
    st->completed++;
}

/* Runs the network loop once; false when the connection is gone. */
static bool pump(struct mosquitto *mosq, pub_state_t *st, int timeout_ms)
{
    int rc = mosquitto_loop(mosq, timeout_ms, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench_pub: loop: %s\n", mosquitto_strerror(rc));
        return false;
    }
    return st->connected;
}

/*
 * Publishes every reading, keeping at most o->window outstanding, and waits until all
 * completed. Returns the number sent (completions are in st->completed).
 */
static uint64_t publish_all(struct mosquitto *mosq, pub_state_t *st, const pub_opts_t *o)
{
    char topic[256];
    char payload[96];
    char name[64];
    uint64_t sent = 0;
    while (sent < o->count) {
        if (sent - st->completed >= (uint64_t)o->window) {
            if (!pump(mosq, st, 10))
                return sent;
            continue;
        }
        uint64_t m = sent % o->meters;
        uint64_t k = sent / o->meters;
        /* A different register start and slope per meter; production meters count slower. */
        double base = 1000.0 + (double)(m % 997) * 10.0;
        double slope =
            (m % o->per_facility == o->per_facility - 1) ? 0.5 : 1.25 + (double)(m % 7) * 0.25;
        int64_t ts = o->t0_ms + (int64_t)k * o->step_ms;
        meter_name(o, m, name, sizeof name);
        snprintf(topic, sizeof topic, "%s/%s", o->prefix, name);
        int plen = snprintf(payload, sizeof payload, "{\"ts\": %" PRId64 ", \"value\": %.3f}", ts,
                            base + (double)k * slope);
        int rc = mosquitto_publish(mosq, NULL, topic, plen, payload, o->qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "bench_pub: publish %" PRIu64 ": %s\n", sent, mosquitto_strerror(rc));
            return sent;
        }
        sent++;
        /* Read PUBACKs and flush now and then without blocking. */
        if ((sent & 63) == 0 && !pump(mosq, st, 0))
            return sent;
    }
    while (st->completed < sent) {
        if (!pump(mosq, st, 10))
            break;
    }
    return sent;
}

int main(int argc, char **argv)
{
    pub_opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    int exit_code = 1;
    pub_state_t st = {.completed = 0, .connected = false, .connack = -1};

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(o.client_id, true, &st);
    if (mosq == NULL) {
        fprintf(stderr, "bench_pub: mosquitto_new failed\n");
        goto cleanup_lib;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, o.window);
    mosquitto_connect_callback_set(mosq, connect_cb);
    mosquitto_disconnect_callback_set(mosq, disconnect_cb);
    mosquitto_publish_callback_set(mosq, published_cb);

    rc = mosquitto_connect(mosq, o.host, o.port, 30);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "bench_pub: connect %s:%d: %s\n", o.host, o.port, mosquitto_strerror(rc));
        goto destroy_client;
    }
    double deadline = now_s() + 10;
    while (st.connack < 0 && now_s() < deadline) {
        if (mosquitto_loop(mosq, 100, 1) != MOSQ_ERR_SUCCESS)
            break;
    }
    if (!st.connected) {
        fprintf(stderr, "bench_pub: no CONNACK from %s:%d (code %d)\n", o.host, o.port,
                st.connack);
        goto destroy_client;
    }

    double t_start = now_s();
    uint64_t sent = publish_all(mosq, &st, &o);
    double elapsed = now_s() - t_start;
    printf("sent=%" PRIu64 " ok=%" PRIu64 " elapsed_s=%.3f rate=%.0f\n", sent, st.completed,
           elapsed, elapsed > 0 ? (double)st.completed / elapsed : 0.0);
    fflush(stdout);
    exit_code = (st.completed == o.count) ? 0 : 1;

    if (st.connected) {
        mosquitto_disconnect(mosq);
        for (int i = 0; i < 20 && mosquitto_want_write(mosq); i++)
            (void)mosquitto_loop(mosq, 50, 1);
    }
destroy_client:
    mosquitto_destroy(mosq);
cleanup_lib:
    mosquitto_lib_cleanup();
    return exit_code;
}
