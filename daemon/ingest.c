/*
 * ingest.c - how a message gets from Paho into the pipeline, exactly once and in order.
 *
 * Producer (Paho's receive thread, enpid_ingest_on_message): give the message the next
 * inbox sequence number, append it to the inbox log (a copy into a MAP_SHARED segment:
 * durable against kill -9 before Paho acknowledges it), free Paho's message right there
 * (on the thread that allocated it: Paho's allocator takes a global mutex, which the loop
 * thread would contend for), push {seq, topic, payload} pointing INTO the inbox record
 * into the SPSC ring, or, when the ring is full, push nothing ("spill": the inbox has
 * it), then publish appended_upto and wake the loop only if it sleeps (enpi_ring_park /
 * enpi_ring_must_wake: no uv_async_send, i.e. no eventfd write, per message while the
 * loop is draining, nor while it lingers: see linger_timer).
 * The broker's redelivery mark (MQTT DUP) travels with the message through the ring item
 * and the inbox record to the pipeline (ENPI_INGEST_REDELIVERED), which then does not
 * count the echo of a reading applied before a crash as a duplicate or late reading.
 *
 * Consumer (loop thread, wake_cb): ingest strictly in sequence order. Items come out of
 * the ring in order but with holes where messages were spilled; those are read back from
 * the inbox before the item after them. When the ring is empty but appended_upto is ahead,
 * the tail was spilled and is read back as well. At most ENPID_DRAIN_BUDGET messages are
 * ingested per wake-up; if more is waiting the loop wakes itself again, so timers and
 * signals keep running under a flood. After a drain that found messages the loop has the
 * inbox prefault the pages the producer will write next (enpi_store_inbox_populate_ahead),
 * so Paho's thread does not stop for a page fault every few dozen messages. After each
 * drain the pipeline's outbox (Sparkplug rebirth requests) is published (outbox.c).
 *
 * Start-up replay (enpid_ingest_replay) feeds the whole inbox through the same pipeline
 * before MQTT connects: those are the messages the last run had made durable but not
 * committed.
 *
 * DESIGN: the ring, appended_upto and the ring's park mark are the only shared state. The
 * producer pushes first and then stores appended_upto with release; the consumer loads it
 * with acquire, so a seq below the loaded value is either visible in the ring or was
 * spilled. A seq the consumer already read back from the inbox may still come out of the
 * ring afterwards (pushed just after the consumer looked); such items are recognised by
 * seq < expected and dropped. Ring items point into the inbox log; a segment is only
 * deleted by a commit whose inbox_upto is <= expected_seq, so every item the consumer
 * still reads (seq >= expected_seq) lies in a live segment.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "enpid.h"

/* ---- producer ---- */

/* A ring item flag of ingest.c's own (never passed to the pipeline): the item owns one
 * malloc'd block, topic NUL payload, at item.topic, because no inbox record holds it. */
#define INGEST_ITEM_OWNED 0x80u
/* How long the producer waits for room in a full ring for such an item. */
#define INGEST_OWNED_WAIT_MS 2000

/*
 * Producer, after a failed inbox append (disk full: no segment could be allocated). Paho
 * 1.3.12 has sent the PUBACK before calling us, so a message refused here would wait in
 * Paho's memory until more traffic arrives, and a crash meanwhile would lose it. Instead
 * a copy goes into the ring as an item owning its memory (INGEST_ITEM_OWNED) under the
 * next sequence number; it is durable once a commit covers that seq (before that, a
 * kill -9 loses it: the price of a full disk, which back-pressure keeps rare by pausing
 * MQTT a whole segment ahead, backpressure.c). The ring never spills such an item: when
 * full, the producer waits for the loop to drain it, at most INGEST_OWNED_WAIT_MS; only
 * then, or without memory, is the message left with Paho (ENPI_EIO). Returns 0 when taken
 * (msg and topic freed here).
 */
static int keep_in_memory(enpid_t *d, char *topic, size_t topic_len, void *msg, const void *payload,
                          size_t payload_len, int64_t arrival, bool redelivered)
{
    if (topic_len > UINT32_MAX - 1 || payload_len > UINT32_MAX)
        return ENPI_EIO;
    char *copy = malloc(topic_len + 1 + payload_len + 1);
    if (copy == NULL)
        return ENPI_EIO;
    memcpy(copy, topic, topic_len);
    copy[topic_len] = '\0';
    if (payload_len)
        memcpy(copy + topic_len + 1, payload, payload_len);
    uint64_t seq = d->next_seq;
    enpi_ring_item_t it = {
        .seq = seq,
        .msg = copy + topic_len + 1,
        .topic = copy,
        .topic_len = (uint32_t)topic_len,
        .payload_len = (uint32_t)payload_len,
        .arrival_ms = arrival,
        .flags = (uint8_t)((redelivered ? ENPI_INGEST_REDELIVERED : 0) | INGEST_ITEM_OWNED),
    };
    for (int waited = 0; !enpi_ring_push(&d->ring, &it); waited++) {
        if (waited >= INGEST_OWNED_WAIT_MS) {
            free(copy);
            return ENPI_EIO;
        }
        uv_async_send(&d->wake);
        uv_sleep(1);
    }
    d->next_seq++;
    enpid_mqtt_message_free(msg, topic);
    atomic_fetch_add_explicit(&d->n_received, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->n_kept_in_memory, 1, memory_order_relaxed);
    /* Release: the push before the bound, as for an inbox append. */
    atomic_store_explicit(&d->appended_upto, seq + 1, memory_order_release);
    uv_async_send(&d->wake);
    return 0;
}

/* Consumer: releases what an item owns (nothing, unless INGEST_ITEM_OWNED). */
static void item_release(const enpi_ring_item_t *it)
{
    if (it->flags & INGEST_ITEM_OWNED)
        free(it->topic);
}

/*
 * Paho's receive thread, one message at a time (Paho's mutex orders the calls, which is
 * all the single-producer ring and the inbox append need). Returns 0 when the message is
 * taken (msg and topic freed here): durable in the inbox, or, when the inbox append
 * failed, kept in memory until the next commit (keep_in_memory; counted in
 * n_inbox_failed, and the loop is told, which pauses MQTT). ENPI_EIO only when even that
 * failed: then no sequence number was used and Paho keeps the message to offer again.
 */
int enpid_ingest_on_message(void *ctx, char *topic, size_t topic_len, void *msg,
                            const void *payload, size_t payload_len, bool redelivered)
{
    enpid_t *d = ctx;
    int64_t arrival = enpid_now_ms();
    /* An oversized payload is rejected by the pipeline whatever it holds; keep one byte
     * more than the limit in the inbox so a replay rejects it the same way. */
    size_t stored_len = payload_len > ENPI_PAYLOAD_MAX ? ENPI_PAYLOAD_MAX + 1 : payload_len;
    enpi_inbox_msg_t im = {
        .seq = d->next_seq,
        .topic = topic,
        .topic_len = topic_len,
        .payload = payload,
        .payload_len = stored_len,
        .arrival_ms = arrival,
        .redelivered = redelivered,
    };
    enpi_inbox_msg_t stored;
    int rc = enpi_store_inbox_append_ref(d->store, &im, &stored);
    if (rc != 0) {
        /* Relaxed: a statistic; the event bit below wakes the loop to log it. */
        atomic_fetch_add_explicit(&d->n_inbox_failed, 1, memory_order_relaxed);
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->producer_rl, arrival, 6, &suppressed)) {
            log_err("ingest: inbox append of seq %" PRIu64 " failed (%s); the message is "
                    "kept in memory until the next commit, and MQTT is paused",
                    d->next_seq, enpi_strerror(rc));
            if (suppressed)
                log_err("ingest: (%" PRIu64 " similar failures not logged)", suppressed);
        }
        enpid_daemon_post_event(d, ENPID_EV_INBOX_FAILED);
        return keep_in_memory(d, topic, topic_len, msg, payload, stored_len, arrival, redelivered);
    }
    enpid_mqtt_message_free(msg, topic); /* the inbox record is the copy from now on */
    uint64_t seq = d->next_seq++;
    enpi_ring_item_t it = {
        .seq = seq,
        .msg = (void *)stored.payload,
        .topic = (char *)stored.topic,
        .topic_len = (uint32_t)stored.topic_len, /* <= 65535: the inbox checked it */
        .payload_len = (uint32_t)stored.payload_len, /* <= ENPI_PAYLOAD_MAX + 1 */
        .arrival_ms = arrival,
        .flags = redelivered ? ENPI_INGEST_REDELIVERED : 0,
    };
    if (!enpi_ring_push(&d->ring, &it)) /* spilled: the loop reads it back */
        atomic_fetch_add_explicit(&d->n_spilled, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->n_received, 1, memory_order_relaxed);
    /* Release: orders the ring push (or the inbox append of a spilled seq) before the
     * new bound; the consumer's acquire load of appended_upto pairs with it. */
    atomic_store_explicit(&d->appended_upto, seq + 1, memory_order_release);
    if (enpi_ring_must_wake(&d->ring))
        uv_async_send(&d->wake);
    return 0;
}

/* ---- consumer (loop thread) ---- */

static void ingest_one(enpid_t *d, uint64_t seq, const char *topic, size_t topic_len,
                       const void *payload, size_t payload_len, int64_t arrival_ms, unsigned flags)
{
    enpi_pipeline_ingest(d->pipe, seq, topic, topic_len, payload, payload_len, arrival_ms, flags);
    d->expected_seq = seq + 1;
}

/* The pipeline's flags of a message read from the inbox. */
static unsigned inbox_flags(const enpi_inbox_msg_t *m)
{
    return m->redelivered ? ENPI_INGEST_REDELIVERED : 0;
}

static void ingest_item(enpid_t *d, const enpi_ring_item_t *it)
{
    ingest_one(d, it->seq, it->topic, it->topic_len, it->msg, it->payload_len, it->arrival_ms,
               it->flags & ~INGEST_ITEM_OWNED);
    item_release(it);
}

typedef struct {
    enpid_t *d;
    size_t budget; /* messages still allowed in this call */
    size_t done;
} readback_t;

static int readback_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    readback_t *rb = ctx;
    if (m->seq < rb->d->expected_seq)
        return 0; /* cannot happen with a well-ordered inbox; never ingest twice */
    ingest_one(rb->d, m->seq, m->topic, m->topic_len, m->payload, m->payload_len, m->arrival_ms,
               inbox_flags(m));
    rb->done++;
    return --rb->budget == 0 ? 1 : 0;
}

/*
 * Ingests spilled messages [expected_seq, upto) from the inbox, at most `budget` of them.
 * Returns how many were ingested. A hole the inbox cannot fill (it never should) is
 * logged and skipped, so that the loop cannot spin on it.
 */
static size_t read_back(enpid_t *d, uint64_t upto, size_t budget)
{
    if (budget == 0 || d->expected_seq >= upto)
        return 0;
    readback_t rb = {.d = d, .budget = budget};
    uint64_t from = d->expected_seq;
    int rc = enpi_store_inbox_scan(d->store, from, upto, readback_cb, &rb);
    if (rc < 0) {
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->consumer_rl, enpid_now_ms(), 6, &suppressed)) {
            log_err("ingest: inbox read-back of seq %" PRIu64 "..%" PRIu64 " failed: %s", from,
                    upto - 1, enpi_strerror(rc));
            if (suppressed)
                log_err("ingest: (%" PRIu64 " similar failures not logged)", suppressed);
        }
        return rb.done; /* retried on the next wake-up */
    }
    if (rb.budget > 0 && d->expected_seq < upto) {
        /* The scan ended before upto: seqs missing from the inbox. */
        log_err("ingest: inbox lacks seq %" PRIu64 "..%" PRIu64 "; skipped", d->expected_seq,
                upto - 1);
        d->expected_seq = upto;
    }
    d->n_readback += rb.done;
    return rb.done;
}

typedef enum {
    DRAIN_IDLE,   /* caught up with appended_upto */
    DRAIN_MORE,   /* budget exhausted; more may be waiting */
    DRAIN_FAILED, /* an inbox read-back failed (logged); the commit tick wakes us again */
} drain_result_t;

/* Ingests up to `budget` messages in sequence order. Loop thread. */
static drain_result_t drain(enpid_t *d, size_t budget)
{
    while (budget > 0) {
        if (d->held_valid) {
            /* A popped item waits for the spilled seqs before it. */
            if (d->held.seq > d->expected_seq) {
                size_t n = read_back(d, d->held.seq, budget);
                budget -= n;
                if (d->held.seq > d->expected_seq) {
                    if (n == 0)
                        return DRAIN_FAILED;
                    continue; /* budget spent, or more to read back */
                }
            }
            if (budget == 0)
                return DRAIN_MORE;
            d->held_valid = false;
            if (d->held.seq == d->expected_seq) {
                ingest_item(d, &d->held);
                budget--;
            } else {
                item_release(&d->held); /* already read back */
            }
            continue;
        }
        enpi_ring_item_t it;
        if (enpi_ring_pop(&d->ring, &it)) {
            if (it.seq < d->expected_seq) {
                item_release(&it); /* already read back */
            } else if (it.seq == d->expected_seq) {
                ingest_item(d, &it);
                budget--;
            } else {
                d->held = it;
                d->held_valid = true;
            }
            continue;
        }
        /* Acquire pairs with the producer's release store: every push made before that
         * store is visible to the pop below, so what is still missing was spilled. */
        uint64_t upto = atomic_load_explicit(&d->appended_upto, memory_order_acquire);
        if (upto <= d->expected_seq)
            return DRAIN_IDLE;
        if (enpi_ring_pop(&d->ring, &it)) {
            if (it.seq >= d->expected_seq) {
                d->held = it;
                d->held_valid = true;
            } else {
                item_release(&it); /* already read back */
            }
            continue;
        }
        size_t n = read_back(d, upto, budget);
        if (n == 0 && d->expected_seq < upto)
            return DRAIN_FAILED;
        budget -= n;
    }
    return DRAIN_MORE;
}

/*
 * The linger timer: after a drain that found messages, the loop parks "lingering" and
 * looks again after INGEST_LINGER_MS by itself, and the producer wakes it early only for a
 * batch (enpi_ring_must_wake). So a loop that keeps up with a steady stream is woken about
 * every INGEST_LINGER_MS rather than once a message (each wake-up is an eventfd write by
 * Paho's thread and an epoll return here, each timer turn an epoll return). 4 ms and a
 * batch of 512: below 512 per 4 ms (~128,000/s) no eventfd write at all, 250 turns a
 * second (e2e benchmark, QoS 1 live, ~20,000 readings/s: the loop's CPU per reading was
 * 1.9-2.9 us with 4 ms against 3.1-3.9 us with 1 ms, on a noisy machine); the ring holds
 * 65,536, so a batch never waits on a full ring. A drain that found nothing parks without
 * lingering: an idle daemon has no timer running, and the first message wakes it at once.
 * One enpid per process, so the handle is file-static (closed by the loop's final walk).
 */
#define INGEST_LINGER_MS 4
static uv_timer_t linger_timer;

static void consume(enpid_t *d);

static void linger_cb(uv_timer_t *t)
{
    consume(t->data);
}

static void wake_cb(uv_async_t *h)
{
    consume(h->data);
}

static void consume(enpid_t *d)
{
    if (d->phase == ENPID_CLOSING)
        return;
    uint64_t before = d->expected_seq;
    drain_result_t r = drain(d, ENPID_DRAIN_BUDGET);
    if (d->expected_seq != before)
        enpi_store_inbox_populate_ahead(d->store); /* Paho's thread then takes no faults */
    enpid_outbox_flush(d); /* rebirth requests the messages just ingested asked for */
    enpid_commit_maybe(d);
    if (r == DRAIN_MORE) {
        uv_async_send(&d->wake); /* the rest after one turn of the loop */
    } else if (r == DRAIN_IDLE) {
        /* Sleep until woken (or the linger timer); but first look once more, after the
         * park mark is visible, for work that came in meanwhile (it would not wake us). */
        bool linger = d->expected_seq != before;
        enpi_ring_park(&d->ring, linger);
        if (linger)
            uv_timer_start(&linger_timer, linger_cb, INGEST_LINGER_MS, 0);
        if (atomic_load_explicit(&d->appended_upto, memory_order_acquire) > d->expected_seq) {
            enpi_ring_unpark(&d->ring);
            uv_async_send(&d->wake);
        }
    }
    /* DRAIN_FAILED: not parked; the commit tick wakes us to retry the read-back. */
}

/* The ring's capacity: ENPID_RING_CAPACITY, or the environment variable of that name (a
 * power of two >= 2), which tests use to force the spill path with a tiny ring. */
static size_t ring_capacity(void)
{
    const char *env = getenv("ENPID_RING_CAPACITY");
    if (env == NULL || *env == '\0')
        return ENPID_RING_CAPACITY;
    char *end;
    unsigned long long v = strtoull(env, &end, 10);
    if (*end != '\0' || v < 2 || v > (1ull << 24) || (v & (v - 1)) != 0) {
        log_warn("ingest: ignoring ENPID_RING_CAPACITY=%s (want a power of two, 2..2^24)", env);
        return ENPID_RING_CAPACITY;
    }
    log_notice("ingest: ring capacity %llu (ENPID_RING_CAPACITY)", v);
    return (size_t)v;
}

int enpid_ingest_init(enpid_t *d)
{
    int rc = enpi_ring_init(&d->ring, ring_capacity());
    if (rc != 0)
        return rc;
    if (uv_async_init(&d->loop, &d->wake, wake_cb) != 0) {
        enpi_ring_destroy(&d->ring);
        return ENPI_ENOMEM;
    }
    d->wake.data = d;
    if (uv_timer_init(&d->loop, &linger_timer) != 0) {
        uv_close((uv_handle_t *)&d->wake, NULL);
        enpi_ring_destroy(&d->ring);
        return ENPI_ENOMEM;
    }
    linger_timer.data = d;
    return 0;
}

/* Every message appended so far, ring and inbox. Shutdown only, after the MQTT client is
 * destroyed so that nothing more arrives. */
void enpid_ingest_drain_all(enpid_t *d)
{
    while (drain(d, SIZE_MAX) == DRAIN_MORE) {
    }
    uint64_t upto = atomic_load_explicit(&d->appended_upto, memory_order_acquire);
    if (d->expected_seq < upto)
        log_warn("ingest: %" PRIu64 " message(s) left in the inbox for the next start",
                 upto - d->expected_seq);
}

static int replay_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    enpid_t *d = ctx;
    ingest_one(d, m->seq, m->topic, m->topic_len, m->payload, m->payload_len, m->arrival_ms,
               inbox_flags(m));
    d->n_replayed++;
    if (enpi_pipeline_pending(d->pipe) > ENPID_EARLY_COMMIT) {
        int rc = enpid_commit_sync(d);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * Start-up, before MQTT: ingests every message left in the inbox, commits, and sets the
 * producer's next sequence number. Returns 0 or the storage error.
 */
int enpid_ingest_replay(enpid_t *d)
{
    uint64_t next = 0;
    int rc = enpi_store_inbox_next_seq(d->store, &next);
    if (rc != 0) {
        log_err("ingest: cannot read the inbox position: %s", enpi_strerror(rc));
        return rc;
    }
    d->expected_seq = 0;
    rc = enpi_store_inbox_scan(d->store, 0, UINT64_MAX, replay_cb, d);
    if (rc != 0) {
        log_err("ingest: inbox replay failed: %s", enpi_strerror(rc));
        return rc;
    }
    if (d->n_replayed > 0) {
        log_notice("ingest: replayed %" PRIu64 " message(s) from the inbox", d->n_replayed);
        if (d->expected_seq > next)
            next = d->expected_seq; /* never reuse a sequence number */
    }
    rc = enpid_commit_sync(d);
    if (rc != 0)
        return rc;
    d->next_seq = next;
    d->expected_seq = next;
    atomic_store_explicit(&d->appended_upto, next, memory_order_relaxed); /* no Paho yet */
    log_debug("ingest: next inbox seq %" PRIu64, next);
    return 0;
}

/* Empties the ring (after a drain there is nothing; after an error there may be). Its
 * items point into the inbox and own nothing, but for those kept in memory after a failed
 * append (freed here). The wake handle is closed with the others. */
void enpid_ingest_close(enpid_t *d)
{
    enpi_ring_item_t it;
    if (d->held_valid)
        item_release(&d->held);
    d->held_valid = false;
    if (d->ring.slots == NULL)
        return; /* never initialised */
    while (enpi_ring_pop(&d->ring, &it))
        item_release(&it);
}
