/*
 * decode_protobuf.c - the `protobuf` payload format: one enpi.v1.ReadingBatch per
 * message, unpacked by the protobuf-c code generated from proto/enpi.proto. The rules a
 * meter vendor sees are in decode.h.
 *
 * protobuf-c allocates every unpacked message, pointer array and string through the
 * ProtobufCAllocator it is given. Ours is an arena owned by the decoder: allocation bumps
 * a pointer, free does nothing, and the whole arena is reset after each message. Blocks
 * grow by doubling when a message needs more; at reset the largest block up to
 * ARENA_KEEP is kept and the rest returned, so a steady stream of similar messages costs
 * no malloc at all, while one huge hostile batch does not pin its memory for ever.
 *
 * Each allocation carries its size in a header just before it. protobuf-c hands a proto3
 * string back as a NUL-terminated char * and allocates exactly its length + 1 bytes, so
 * the header tells whether a meter id had a NUL byte inside (which strlen would silently
 * cut off): such an id is reported invalid instead of being read as a shorter one.
 */
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "enpi.pb-c.h"
#include "enpi_error.h"

#define ARENA_FIRST (16 * 1024)  /* first block: a few hundred readings */
#define ARENA_KEEP (1024 * 1024) /* largest block kept across messages */
#define ALIGN alignof(max_align_t)
#define HEADER ((sizeof(size_t) + ALIGN - 1) / ALIGN * ALIGN)

typedef struct block {
    struct block *next; /* older blocks */
    size_t cap;         /* bytes in data */
    size_t used;
    alignas(max_align_t) unsigned char data[];
} block_t;

struct enpi_protobuf_decoder {
    block_t *blocks;              /* newest first; allocation happens in the head */
    bool failed;                  /* an allocation failed during this message */
    ProtobufCAllocator allocator; /* over this decoder (allocator_data = the decoder) */
};

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static block_t *block_new(size_t cap)
{
    block_t *b = malloc(sizeof(*b) + cap);

    if (b == NULL)
        return NULL;
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    return b;
}

/* protobuf-c's alloc: n bytes, aligned for any type, preceded by their size. */
static void *arena_alloc(void *data, size_t n)
{
    enpi_protobuf_decoder_t *d = data;
    block_t *b = d->blocks;
    size_t need;
    unsigned char *p;

    if (n > SIZE_MAX / 2 - HEADER - ALIGN) {
        d->failed = true;
        return NULL;
    }
    need = HEADER + round_up(n);
    if (b == NULL || b->cap - b->used < need) {
        size_t cap = b != NULL ? b->cap * 2 : ARENA_FIRST;
        block_t *nb;

        while (cap < need)
            cap *= 2;
        nb = block_new(cap);
        if (nb == NULL) {
            d->failed = true;
            return NULL;
        }
        nb->next = b;
        d->blocks = b = nb;
    }
    p = b->data + b->used;
    b->used += need;
    memcpy(p, &n, sizeof(n));
    return p + HEADER;
}

/* protobuf-c's free: the memory goes back when the arena is reset. */
static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* Keeps the largest block no bigger than ARENA_KEEP, empty; frees the others. */
static void arena_reset(enpi_protobuf_decoder_t *d)
{
    block_t *keep = NULL, *b, *next;

    for (b = d->blocks; b != NULL; b = b->next)
        if (b->cap <= ARENA_KEEP && (keep == NULL || b->cap > keep->cap))
            keep = b;
    for (b = d->blocks; b != NULL; b = next) {
        next = b->next;
        if (b != keep)
            free(b);
    }
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
    }
    d->blocks = keep;
    d->failed = false;
}

/*
 * The size protobuf-c asked for when it allocated p (which must be the start of an
 * allocation when it lies in the arena), or 0 when p is outside the arena (e.g.
 * protobuf-c's static empty string).
 */
static size_t arena_size_of(const enpi_protobuf_decoder_t *d, const void *p)
{
    const unsigned char *u = p;
    size_t n;

    for (const block_t *b = d->blocks; b != NULL; b = b->next) {
        if (u >= b->data + HEADER && u < b->data + b->used) {
            memcpy(&n, u - HEADER, sizeof(n));
            return n;
        }
    }
    return 0;
}

int enpi_protobuf_decoder_create(enpi_protobuf_decoder_t **out)
{
    enpi_protobuf_decoder_t *d = calloc(1, sizeof(*d));

    *out = NULL;
    if (d == NULL)
        return ENPI_ENOMEM;
    d->blocks = block_new(ARENA_FIRST);
    if (d->blocks == NULL) {
        free(d);
        return ENPI_ENOMEM;
    }
    d->allocator.alloc = arena_alloc;
    d->allocator.free = arena_free;
    d->allocator.allocator_data = d;
    *out = d;
    return 0;
}

void enpi_protobuf_decoder_free(enpi_protobuf_decoder_t *d)
{
    block_t *b, *next;

    if (d == NULL)
        return;
    for (b = d->blocks; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    free(d);
}

/* One Reading as a raw reading (see decode.h for what each field means). */
static void to_raw(const enpi_protobuf_decoder_t *d, const Enpi__V1__Reading *in,
                   enpi_raw_reading_t *r)
{
    memset(r, 0, sizeof(*r));
    if (in->meter_id != NULL) {
        /* protobuf-c stores a string from the wire in length + 1 arena bytes; the default
         * (absent) empty string is not in the arena (alloc 0). A larger allocation than
         * strlen + 1 means a NUL within the id, the first byte included. */
        size_t len = strlen(in->meter_id), alloc = arena_size_of(d, in->meter_id);
        bool has_nul = alloc > len + 1;

        if (len > 0 || has_nul) {
            r->id = in->meter_id;
            r->id_len = len;
            r->id_invalid = has_nul;
        }
    }
    r->value = in->value;
    r->value_kind = isfinite(in->value) ? ENPI_VALUE_OK : ENPI_VALUE_NOT_FINITE;
    if (in->timestamp_ms == 0) {
        r->ts_kind = ENPI_TS_ARRIVAL;
    } else {
        r->ts_kind = ENPI_TS_EPOCH_MS;
        r->ts_ms = (double)in->timestamp_ms;
    }
}

int enpi_protobuf_decode(enpi_protobuf_decoder_t *d, const void *payload, size_t len,
                         enpi_reading_cb cb, void *ctx)
{
    Enpi__V1__ReadingBatch *batch;
    enpi_raw_reading_t r;
    int rc = 0;

    batch = enpi__v1__reading_batch__unpack(&d->allocator, len, payload);
    if (batch == NULL) {
        rc = d->failed ? ENPI_ENOMEM : ENPI_EPARSE;
        goto reset_arena;
    }
    for (size_t i = 0; i < batch->n_readings; i++) {
        to_raw(d, batch->readings[i], &r);
        cb(ctx, &r);
    }
    enpi__v1__reading_batch__free_unpacked(batch, &d->allocator);
reset_arena:
    arena_reset(d);
    return rc;
}
