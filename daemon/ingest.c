/*
 * ingest.c - how a message gets from Paho into the pipeline, exactly once and in order.
 *
 * Producer (Paho's receive thread, enpid_ingest_on_message): give the message the next
 * inbox sequence number, append it to the RocksDB inbox (durable against kill -9 before
 * Paho acknowledges it), push {seq, msg, topic} into the SPSC ring, or, when the ring is
 * full, free it ("spill": the inbox has it), then publish appended_upto and wake the loop.
 * The broker's redelivery mark (MQTT DUP) travels with the message through the ring item
 * and the inbox record to the pipeline (ENPI_INGEST_REDELIVERED), which then does not
 * count the echo of a reading applied before a crash as a duplicate or late reading.
 *
 * Consumer (loop thread, wake_cb): ingest strictly in sequence order. Items come out of
 * the ring in order but with holes where messages were spilled; those are read back from
 * the inbox before the item after them. When the ring is empty but appended_upto is ahead,
 * the tail was spilled and is read back as well. At most ENPID_DRAIN_BUDGET messages are
 * ingested per wake-up; if more is waiting the loop wakes itself again, so timers and
 * signals keep running under a flood. After each drain the pipeline's outbox (Sparkplug
 * rebirth requests) is published (outbox.c).
 *
 * Start-up replay (enpid_ingest_replay) feeds the whole inbox through the same pipeline
 * before MQTT connects: those are the messages the last run had made durable but not
 * committed.
 *
 * DESIGN: the ring and appended_upto are the only shared state. The producer pushes
 * first and then stores appended_upto with release; the consumer loads it with acquire, so
 * a seq below the loaded value is either visible in the ring or was spilled. A seq the
 * consumer already read back from the inbox may still come out of the ring afterwards
 * (pushed just after the consumer looked); such items are recognised by seq < expected
 * and only freed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "enpid.h"

/* ---- producer ---- */

/*
 * Paho's receive thread, one message at a time (Paho's mutex orders the calls, which is
 * all the single-producer ring needs). Returns 0 when the message is durable (ownership of
 * msg and topic taken: pushed or freed), or ENPI_EIO when the inbox append failed: then
 * nothing changed, no sequence number was used, and Paho keeps the message to offer again.
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
    int rc = enpi_store_inbox_append(d->store, &im);
    if (rc != 0) {
        /* Relaxed: a statistic; the event bit below wakes the loop to log it. */
        atomic_fetch_add_explicit(&d->n_inbox_failed, 1, memory_order_relaxed);
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&d->producer_rl, arrival, 6, &suppressed)) {
            log_err("ingest: inbox append of seq %" PRIu64 " failed (%s); message left with "
                    "the MQTT client, which offers it again",
                    d->next_seq, enpi_strerror(rc));
            if (suppressed)
                log_err("ingest: (%" PRIu64 " similar failures not logged)", suppressed);
        }
        enpid_daemon_post_event(d, ENPID_EV_INBOX_FAILED);
        return ENPI_EIO;
    }
    uint64_t seq = d->next_seq++;
    enpi_ring_item_t it = {
        .seq = seq,
        .msg = msg,
        .topic = topic,
        .topic_len = (uint32_t)(topic_len > UINT32_MAX ? UINT32_MAX : topic_len),
        .arrival_ms = arrival,
        .flags = redelivered ? ENPI_INGEST_REDELIVERED : 0,
    };
    if (!enpi_ring_push(&d->ring, &it)) {
        enpid_mqtt_message_free(msg, topic); /* spilled: the loop reads it back */
        atomic_fetch_add_explicit(&d->n_spilled, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&d->n_received, 1, memory_order_relaxed);
    /* Release: orders the ring push (or the inbox append of a spilled seq) before the
     * new bound; the consumer's acquire load of appended_upto pairs with it. */
    atomic_store_explicit(&d->appended_upto, seq + 1, memory_order_release);
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
    const void *payload;
    size_t len;
    enpid_mqtt_message_payload(it->msg, &payload, &len);
    ingest_one(d, it->seq, it->topic, it->topic_len, payload, len, it->arrival_ms, it->flags);
    enpid_mqtt_message_free(it->msg, it->topic);
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

/*
 * Ingests up to `budget` messages in sequence order. Returns true when more may be
 * waiting (budget exhausted), false when caught up with appended_upto. Loop thread.
 */
static bool drain(enpid_t *d, size_t budget)
{
    while (budget > 0) {
        if (d->held_valid) {
            /* A popped item waits for the spilled seqs before it. */
            if (d->held.seq > d->expected_seq) {
                size_t n = read_back(d, d->held.seq, budget);
                budget -= n;
                if (d->held.seq > d->expected_seq) {
                    if (n == 0)
                        return false; /* read-back failed; the commit tick wakes us again */
                    continue;         /* budget spent, or more to read back */
                }
            }
            if (budget == 0)
                return true;
            d->held_valid = false;
            if (d->held.seq == d->expected_seq) {
                ingest_item(d, &d->held);
                budget--;
            } else {
                enpid_mqtt_message_free(d->held.msg, d->held.topic); /* already read back */
            }
            continue;
        }
        enpi_ring_item_t it;
        if (enpi_ring_pop(&d->ring, &it)) {
            if (it.seq < d->expected_seq) {
                enpid_mqtt_message_free(it.msg, it.topic); /* already read back */
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
            return false;
        if (enpi_ring_pop(&d->ring, &it)) {
            if (it.seq < d->expected_seq) {
                enpid_mqtt_message_free(it.msg, it.topic);
            } else {
                d->held = it;
                d->held_valid = true;
            }
            continue;
        }
        size_t n = read_back(d, upto, budget);
        if (n == 0 && d->expected_seq < upto)
            return false; /* read-back failed (logged); the commit tick wakes us again */
        budget -= n;
    }
    return true;
}

static void wake_cb(uv_async_t *h)
{
    enpid_t *d = h->data;
    if (d->phase == ENPID_CLOSING)
        return;
    bool more = drain(d, ENPID_DRAIN_BUDGET);
    enpid_outbox_flush(d); /* rebirth requests the messages just ingested asked for */
    enpid_commit_maybe(d);
    if (more)
        uv_async_send(&d->wake); /* the rest after one turn of the loop */
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
    return 0;
}

/* Every message appended so far, ring and inbox. Shutdown only, after the MQTT client is
 * destroyed so that nothing more arrives. */
void enpid_ingest_drain_all(enpid_t *d)
{
    while (drain(d, SIZE_MAX)) {
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

/* Frees what is left in the ring (after a drain there is nothing; after an error there
 * may be). The wake handle is closed with all the others. */
void enpid_ingest_close(enpid_t *d)
{
    enpi_ring_item_t it;
    if (d->held_valid) {
        enpid_mqtt_message_free(d->held.msg, d->held.topic);
        d->held_valid = false;
    }
    if (d->ring.slots == NULL)
        return; /* never initialised */
    while (enpi_ring_pop(&d->ring, &it))
        enpid_mqtt_message_free(it.msg, it.topic);
}
