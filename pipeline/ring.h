/*
 * ring.h - the bounded lock-free single-producer / single-consumer ring that carries
 * messages from Paho's receive thread to the libuv loop.
 *
 * DESIGN: exactly one producer thread calls enpi_ring_push() and exactly one consumer
 * thread calls enpi_ring_pop()/enpi_ring_peek(). Head and tail are C11 atomics on
 * separate cache lines; a push publishes the slot with a release store of the tail that
 * the consumer's acquire load pairs with (and the reverse for freeing slots). No mutex,
 * no allocation after enpi_ring_init(). A full ring refuses the push immediately: the
 * producer decides what to do (enpid spills, the message being durable already).
 */
#ifndef ENPI_RING_H
#define ENPI_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One slot: opaque pointers the producer hands over plus what the consumer needs to
 * process them in order. What msg/topic point to is the producer's business (enpid: the
 * durable copy in the inbox log, or a copy the item owns); the ring only carries them. */
typedef struct {
    uint64_t seq; /* inbox sequence number of the message */
    void *msg;    /* producer's opaque pointer (enpid: the payload of the inbox record) */
    char *topic;  /* topic bytes, not necessarily NUL-terminated */
    uint32_t topic_len;
    uint32_t payload_len; /* bytes at msg, when msg is a payload */
    int64_t arrival_ms;   /* wall clock when the message arrived */
    uint8_t flags;        /* ENPI_INGEST_* bits (pipeline.h) for enpi_pipeline_ingest() */
} enpi_ring_item_t;

typedef struct {
    alignas(64) _Atomic size_t head; /* next slot to pop; written by the consumer only */
    alignas(64) _Atomic size_t tail; /* next slot to push; written by the producer only */
    alignas(64) _Atomic int parked;  /* 0 running, 1 parked, 2 parked lingering (below) */
    alignas(64) size_t mask;         /* capacity - 1 */
    enpi_ring_item_t *slots;
} enpi_ring_t;

/* capacity must be a power of two >= 2. Returns 0, ENPI_EINVAL or ENPI_ENOMEM. */
int enpi_ring_init(enpi_ring_t *r, size_t capacity);
/* Frees the slots; items still inside are the caller's to release first. */
void enpi_ring_destroy(enpi_ring_t *r);

/* Producer only. Returns false (and changes nothing) when full. */
bool enpi_ring_push(enpi_ring_t *r, const enpi_ring_item_t *item);

/* Consumer only. Returns false when empty. */
bool enpi_ring_pop(enpi_ring_t *r, enpi_ring_item_t *out);

/*
 * Wake-ups without a lost one and without a system call per message. The consumer, out of
 * work, calls enpi_ring_park() and then looks for work once more (its own acquire load of
 * whatever the producer publishes, e.g. the ring or a sequence bound): found some, it
 * calls enpi_ring_unpark() and goes on; else it sleeps until woken. The producer, after
 * publishing work (its release store), calls enpi_ring_must_wake(): true means the
 * consumer parked and must be woken now (the mark is cleared, so one wake-up per sleep).
 * Both calls put a sequentially consistent fence between the store and the load, so
 * either the producer sees the mark or the consumer's re-check sees the work.
 * A consumer that parks with `linger` promises to look again by itself soon (a timer):
 * the producer then wakes it only once ENPI_RING_WAKE_BATCH items (or the whole ring)
 * wait, so a consumer faster than its producer is not woken once per item. A new ring
 * starts parked without linger (its consumer has not run yet).
 */
#define ENPI_RING_WAKE_BATCH 512
void enpi_ring_park(enpi_ring_t *r, bool linger); /* consumer */
void enpi_ring_unpark(enpi_ring_t *r);            /* consumer */
bool enpi_ring_must_wake(enpi_ring_t *r);         /* producer */

/* Either thread: items in the ring right now (a snapshot), and its capacity. */
size_t enpi_ring_size(const enpi_ring_t *r);
size_t enpi_ring_capacity(const enpi_ring_t *r);

#endif
