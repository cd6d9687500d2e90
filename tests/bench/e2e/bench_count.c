/*
 * bench_count.c - the benchmark's reference subscriber: Paho C MQTTAsync that only counts.
 *
 * It connects the way enpid does (MQTT 3.1.1, persistent session unless --clean, the given
 * QoS, keepalive 30 s), subscribes to --filter, and counts messages: messageArrived frees
 * the message and returns 1, nothing else. It stops when it has counted --count, when no
 * message came for --idle seconds after the first one (QoS 0 may lose messages), or after
 * --timeout seconds. Elapsed time runs from the first message to the last one counted.
 *
 * Drain mode: `--create-session` connects with a persistent session, subscribes, and
 * disconnects, leaving the broker to queue what is published meanwhile; a later run with
 * the same --client-id drains that backlog.
 *
 * Diagnosis: `--inbox DIR` also appends every message to a RocksDB at DIR (WAL on, sync
 * off, 8-byte big-endian sequence key, topic + payload value) before returning, the way
 * enpid makes a message durable before Paho acknowledges it. Comparing bench_count with
 * and without it shows what that durability step alone costs on the receive thread.
 * `--inbox-mmap FILE` instead copies each message into a MAP_SHARED mapping of FILE (a
 * length-prefixed log): the page cache keeps it if the process is killed, like a WAL
 * write without sync, but without a system call per message.
 *
 * Output (stdout): "ready" once subscribed (the driver waits for it), then one line
 * "received=N elapsed_s=S rate=R cpu_us_per_msg=C vmhwm_kb=K". Exit 0 when --count
 * messages arrived (or the session was created), 3 on idle/timeout stop, 1 on errors.
 *
 * DESIGN: Paho's receive thread runs msg_arrived_cb and updates atomics; the main thread
 * waits on a semaphore with a 50 ms tick to check the idle and overall timeouts.
 */
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <time.h>

#include <MQTTAsync.h>
#include <rocksdb/c.h>

typedef struct {
    const char *uri;
    const char *client_id;
    const char *filter;
    const char *inbox_dir;   /* --inbox: RocksDB folder, NULL = count only */
    const char *mmap_path;   /* --inbox-mmap: log file, NULL = none */
    uint64_t count;
    int qos;
    bool clean;
    bool create_session;
    double timeout_s;
    double idle_s;
} count_opts_t;

static uint64_t g_target;                 /* --count, read by the callback */
static atomic_uint_fast64_t g_received;
static atomic_int_fast64_t g_first_ns;    /* arrival of the first message */
static atomic_int_fast64_t g_last_ns;     /* arrival of the newest message */
static atomic_int_fast64_t g_cpu_first_us; /* process CPU time at the first message */
static atomic_int_fast64_t g_cpu_done_us;  /* process CPU time at the target count */
static atomic_bool g_lost;
static sem_t g_done;                      /* posted at the target count or on link loss */
static sem_t g_event;                     /* posted by connect/subscribe/disconnect callbacks */
static atomic_int g_event_rc;
static rocksdb_t *g_inbox;                /* --inbox only; written by the Paho thread */
static rocksdb_writeoptions_t *g_inbox_wo;
static uint64_t g_inbox_seq;              /* Paho thread only */
static atomic_uint_fast64_t g_inbox_failed;
static unsigned char *g_map;              /* --inbox-mmap: the mapping, Paho thread writes */
static size_t g_map_size;
static size_t g_map_used;
#define MMAP_BYTES ((size_t)4 << 30)      /* sparse; a benchmark never fills it */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_count --uri URI [--count N] [--qos 0|1] [--client-id ID]\n"
               "                   [--filter F] [--clean] [--create-session]\n"
               "                   [--timeout S] [--idle S] [--inbox DIR | --inbox-mmap FILE]\n");
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

static bool parse_secs(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v > 0))
        return false;
    *out = v;
    return true;
}

/* Returns 0 and fills *o, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, count_opts_t *o)
{
    *o = (count_opts_t){
        .uri = NULL,
        .client_id = "bench_count",
        .filter = "bench/+/+",
        .inbox_dir = NULL,
        .mmap_path = NULL,
        .count = 1000000,
        .qos = 1,
        .clean = false,
        .create_session = false,
        .timeout_s = 600,
        .idle_s = 5,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
        uint64_t u = 0;
        bool ok = true;
        bool takes_value = true;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--clean") == 0) {
            o->clean = true;
            takes_value = false;
        } else if (strcmp(a, "--create-session") == 0) {
            o->create_session = true;
            takes_value = false;
        } else if (v == NULL) {
            ok = false;
        } else if (strcmp(a, "--uri") == 0) {
            o->uri = v;
        } else if (strcmp(a, "--client-id") == 0) {
            o->client_id = v;
        } else if (strcmp(a, "--filter") == 0) {
            o->filter = v;
        } else if (strcmp(a, "--inbox") == 0) {
            o->inbox_dir = v;
        } else if (strcmp(a, "--inbox-mmap") == 0) {
            o->mmap_path = v;
        } else if (strcmp(a, "--count") == 0) {
            ok = parse_u64(v, &o->count) && o->count > 0;
        } else if (strcmp(a, "--qos") == 0) {
            ok = parse_u64(v, &u) && u <= 2;
            o->qos = (int)u;
        } else if (strcmp(a, "--timeout") == 0) {
            ok = parse_secs(v, &o->timeout_s);
        } else if (strcmp(a, "--idle") == 0) {
            ok = parse_secs(v, &o->idle_s);
        } else {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "bench_count: bad or incomplete option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (takes_value)
            i++;
    }
    if (o->uri == NULL) {
        fprintf(stderr, "bench_count: --uri is required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static void connlost_cb(void *ctx, char *cause)
{
    (void)ctx;
    fprintf(stderr, "bench_count: connection lost: %s\n", cause ? cause : "(no cause)");
    atomic_store(&g_lost, true);
    sem_post(&g_done);
}

/* Paho receive thread (--inbox only): one RocksDB put of topic + payload. Returns false
 * when it failed; the message then stays with Paho, as in enpid. */
static bool inbox_append(const char *topic, int topic_len, const MQTTAsync_message *msg)
{
    char stack[2048];
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    size_t vlen = 2 + tlen + plen;
    char *val = vlen <= sizeof stack ? stack : malloc(vlen);
    if (val == NULL)
        return false;
    val[0] = (char)(tlen >> 8);
    val[1] = (char)tlen;
    memcpy(val + 2, topic, tlen);
    memcpy(val + 2 + tlen, msg->payload, plen);
    unsigned char key[8];
    uint64_t seq = g_inbox_seq;
    for (int i = 7; i >= 0; i--) {
        key[i] = (unsigned char)seq;
        seq >>= 8;
    }
    char *err = NULL;
    rocksdb_put(g_inbox, g_inbox_wo, (const char *)key, sizeof key, val, vlen, &err);
    if (val != stack)
        free(val);
    if (err != NULL) {
        rocksdb_free(err);
        return false;
    }
    g_inbox_seq++;
    return true;
}

/* Paho receive thread (--inbox-mmap only): appends [u32 len][u16 topic len][topic]
 * [payload] to the mapping. Returns false when the mapping is full. */
static bool mmap_append(const char *topic, int topic_len, const MQTTAsync_message *msg)
{
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    size_t rec = 4 + 2 + tlen + plen;
    if (tlen > 0xFFFF || g_map_used + rec > g_map_size)
        return false;
    unsigned char *p = g_map + g_map_used;
    uint32_t len = (uint32_t)(2 + tlen + plen);
    uint16_t tl = (uint16_t)tlen;
    memcpy(p + 4, &tl, 2);
    memcpy(p + 6, topic, tlen);
    memcpy(p + 6 + tlen, msg->payload, plen);
    /* The length goes last so a reader never sees a record half written. */
    __atomic_store_n((uint32_t *)(void *)p, len, __ATOMIC_RELEASE);
    g_map_used += (rec + 3) & ~(size_t)3;
    return true;
}

/* Paho receive thread: count, free, done. The first and the target message also sample
 * the clock and the CPU time. */
static int msg_arrived_cb(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    (void)ctx;
    if (g_map != NULL && !mmap_append(topic, topic_len, msg)) {
        atomic_fetch_add_explicit(&g_inbox_failed, 1, memory_order_relaxed);
        return 0;
    }
    if (g_inbox != NULL && !inbox_append(topic, topic_len, msg)) {
        atomic_fetch_add_explicit(&g_inbox_failed, 1, memory_order_relaxed);
        return 0; /* Paho offers it again */
    }
    int64_t t = now_ns();
    uint64_t n = atomic_fetch_add_explicit(&g_received, 1, memory_order_relaxed) + 1;
    if (n == 1) {
        atomic_store(&g_first_ns, t);
        atomic_store(&g_cpu_first_us, cpu_us());
    }
    atomic_store_explicit(&g_last_ns, t, memory_order_relaxed);
    if (n == g_target) {
        atomic_store(&g_cpu_done_us, cpu_us());
        sem_post(&g_done);
    }
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void event_ok_cb(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    atomic_store(&g_event_rc, 0);
    sem_post(&g_event);
}

static void event_fail_cb(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    int code = resp ? resp->code : -1;
    atomic_store(&g_event_rc, code == 0 ? -1 : code);
    sem_post(&g_event);
}

/* Waits for the next connect/subscribe/disconnect callback; returns its code (0 = ok). */
static int wait_event(void)
{
    while (sem_wait(&g_event) != 0 && errno == EINTR)
        ;
    return atomic_load(&g_event_rc);
}

static long vmhwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "VmHWM: %ld", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/*
 * Main thread: waits until the target count, the idle limit after the first message, the
 * overall timeout, or link loss. Returns 0 (target reached), 3 (stopped early), 1 (lost).
 */
static int wait_for_messages(const count_opts_t *o)
{
    int64_t start = now_ns();
    for (;;) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += 50 * 1000000;
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
        if (sem_timedwait(&g_done, &dl) == 0)
            return atomic_load(&g_lost) ? 1 : 0;
        int64_t t = now_ns();
        uint64_t n = atomic_load(&g_received);
        if (n > 0 && (double)(t - atomic_load(&g_last_ns)) / 1e9 > o->idle_s)
            return 3;
        if ((double)(t - start) / 1e9 > o->timeout_s)
            return 3;
    }
}

int main(int argc, char **argv)
{
    count_opts_t o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    g_target = o.count;
    if (sem_init(&g_done, 0, 0) != 0 || sem_init(&g_event, 0, 0) != 0) {
        perror("bench_count: sem_init");
        return 1;
    }
    if (o.inbox_dir != NULL && !o.create_session) {
        rocksdb_options_t *ro = rocksdb_options_create();
        rocksdb_options_set_create_if_missing(ro, 1);
        char *err = NULL;
        g_inbox = rocksdb_open(ro, o.inbox_dir, &err);
        rocksdb_options_destroy(ro);
        if (g_inbox == NULL) {
            fprintf(stderr, "bench_count: cannot open %s: %s\n", o.inbox_dir, err ? err : "?");
            rocksdb_free(err);
            return 1;
        }
        g_inbox_wo = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(g_inbox_wo, 0);
    }
    if (o.mmap_path != NULL && !o.create_session) {
        int fd = open(o.mmap_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)MMAP_BYTES) != 0) {
            perror("bench_count: --inbox-mmap");
            return 1;
        }
        void *map = mmap(NULL, MMAP_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd); /* the mapping keeps the file */
        if (map == MAP_FAILED) {
            perror("bench_count: mmap");
            return 1;
        }
        g_map = map;
        g_map_size = MMAP_BYTES;
    }

    MQTTAsync client = NULL;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    rc = MQTTAsync_createWithOptions(&client, o.uri, o.client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                     NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "bench_count: create: %s\n", MQTTAsync_strerror(rc));
        return 1;
    }
    int exit_code = 1;
    /* Callbacks before connecting: a resumed session delivers right after CONNACK. */
    MQTTAsync_setCallbacks(client, NULL, connlost_cb, msg_arrived_cb, NULL);

    MQTTAsync_connectOptions cop = MQTTAsync_connectOptions_initializer;
    cop.keepAliveInterval = 30;
    cop.cleansession = o.clean ? 1 : 0;
    cop.MQTTVersion = MQTTVERSION_3_1_1;
    cop.onSuccess = event_ok_cb;
    cop.onFailure = event_fail_cb;
    rc = MQTTAsync_connect(client, &cop);
    if (rc != MQTTASYNC_SUCCESS || wait_event() != 0) {
        fprintf(stderr, "bench_count: cannot connect to %s\n", o.uri);
        goto destroy_client;
    }
    MQTTAsync_responseOptions sop = MQTTAsync_responseOptions_initializer;
    sop.onSuccess = event_ok_cb;
    sop.onFailure = event_fail_cb;
    rc = MQTTAsync_subscribe(client, o.filter, o.qos, &sop);
    if (rc != MQTTASYNC_SUCCESS || wait_event() != 0) {
        fprintf(stderr, "bench_count: cannot subscribe to %s\n", o.filter);
        goto disconnect;
    }
    printf("ready\n");
    fflush(stdout);

    if (o.create_session) {
        exit_code = 0;
        goto disconnect;
    }

    exit_code = wait_for_messages(&o);
    uint64_t n = atomic_load(&g_received);
    double elapsed = n > 0 ? (double)(atomic_load(&g_last_ns) - atomic_load(&g_first_ns)) / 1e9 : 0;
    int64_t cpu_end = atomic_load(&g_cpu_done_us);
    if (cpu_end == 0)
        cpu_end = cpu_us();
    double cpu_per = n > 0 ? (double)(cpu_end - atomic_load(&g_cpu_first_us)) / (double)n : 0;
    printf("received=%" PRIu64 " elapsed_s=%.6f rate=%.1f cpu_us_per_msg=%.3f vmhwm_kb=%ld\n", n,
           elapsed, elapsed > 0 ? (double)n / elapsed : 0.0, cpu_per, vmhwm_kb());
    fflush(stdout);

disconnect:
    if (!atomic_load(&g_lost)) {
        MQTTAsync_disconnectOptions dop = MQTTAsync_disconnectOptions_initializer;
        dop.timeout = 2000;
        dop.onSuccess = event_ok_cb;
        dop.onFailure = event_fail_cb;
        if (MQTTAsync_disconnect(client, &dop) == MQTTASYNC_SUCCESS)
            (void)wait_event();
    }
destroy_client:
    MQTTAsync_destroy(&client);
    if (atomic_load(&g_inbox_failed) > 0)
        fprintf(stderr, "bench_count: %" PRIu64 " inbox appends failed\n",
                (uint64_t)atomic_load(&g_inbox_failed));
    if (g_inbox != NULL) {
        rocksdb_writeoptions_destroy(g_inbox_wo);
        rocksdb_close(g_inbox);
    }
    if (g_map != NULL)
        munmap(g_map, g_map_size);
    return exit_code;
}
