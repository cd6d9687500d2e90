/*
 * pipeline_sparkplug.c - the pipeline's side of the Sparkplug B host (sparkplug.c): its
 * callbacks (a rebirth request is queued in the outbox, a ring of ENPI_OUTBOX_MAX with
 * the oldest dropped; a death marks every configured meter under the dead node's or
 * device's id prefix, by a binary search over the meters sorted by id), the outbox the
 * daemon publishes from, and the edge nodes whose learned state changed, packed into the
 * batch's own allocation because enpi_batch_free() only knows the older fields.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "enpi_error.h"
#include "pipeline_int.h"

/* "spBv1.0/" group "/NCMD/" node, where group/node is shorter than a meter id */
_Static_assert(ENPI_OUTBOUND_TOPIC_MAX >= sizeof("spBv1.0//NCMD/") + ENPI_SPARKPLUG_ID_MAX,
               "outbound topics hold any rebirth request topic");
_Static_assert(ENPI_OUTBOUND_PAYLOAD_MAX >= ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX,
               "outbound payloads hold any rebirth request");

/* ---- Sparkplug: rebirth requests, deaths ------------------------------------------ */

/* The host asks edge node group/node to rebirth: queue the NCMD, dropping the oldest
 * queued message when the outbox is full. */
static void sp_rebirth_cb(void *ctx, const char *group, const char *node)
{
    enpi_pipeline_t *p = ctx;
    enpi_outbound_t msg;
    uint64_t suppressed = 0;
    int64_t ts = p->arrival_ms > 0 ? p->arrival_ms : 0;

    memset(&msg, 0, sizeof(msg));
    if (enpi_sparkplug_rebirth_topic(group, node, msg.topic, sizeof(msg.topic), &msg.topic_len) !=
            0 ||
        enpi_sparkplug_rebirth_payload(ts, msg.payload, sizeof(msg.payload), &msg.payload_len) !=
            0) {
        log_err("pipeline: sparkplug: cannot encode a rebirth request for %s/%s", group, node);
        return;
    }
    if (p->outbox_count == ENPI_OUTBOX_MAX) {
        p->outbox_head = (p->outbox_head + 1) % ENPI_OUTBOX_MAX;
        p->outbox_count--;
        p->outbox_dropped++;
    }
    p->outbox[(p->outbox_head + p->outbox_count) % ENPI_OUTBOX_MAX] = msg;
    p->outbox_count++;
    p->outbox_queued++;
    if (enpi_ratelimit_allow(&p->sp_rl, enpi_pipeline_now_coarse_ms(), REJECT_LOG_BURST,
                             &suppressed))
        log_info("pipeline: sparkplug: asking edge node %s/%s to rebirth (%" PRIu64
                 " similar suppressed)",
                 group, node, suppressed);
}

/* The index of the first meter in p->sorted whose id is not below `id`. */
static size_t sorted_lower_bound(const enpi_pipeline_t *p, const char *id)
{
    size_t lo = 0, hi = p->n_sorted;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(p->sorted[mid]->cfg.id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* An edge node or device died: every configured meter whose id starts with id_prefix
 * ("group/node/" or "group/node/device/") is dead from now (the earliest death stays). */
static void sp_death_cb(void *ctx, const char *id_prefix)
{
    enpi_pipeline_t *p = ctx;
    size_t len = strlen(id_prefix), i, n = 0;
    uint64_t suppressed = 0;

    for (i = sorted_lower_bound(p, id_prefix);
         i < p->n_sorted && strncmp(p->sorted[i]->cfg.id, id_prefix, len) == 0; i++) {
        pmeter_t *m = p->sorted[i];

        n++;
        if (m->st.dead_since_ms == 0) {
            m->st.dead_since_ms = p->arrival_ms > 0 ? p->arrival_ms : 1;
            enpi_pipeline_mark_dirty(p, m);
        }
    }
    if (n > 0 && enpi_ratelimit_allow(&p->sp_rl, enpi_pipeline_now_coarse_ms(), REJECT_LOG_BURST,
                                      &suppressed))
        log_notice("pipeline: sparkplug: %s died: %zu meter(s) stale (%" PRIu64
                   " similar suppressed)",
                   id_prefix, n, suppressed);
}

int enpi_pipeline_cmp_meter_id(const void *a, const void *b)
{
    const pmeter_t *const *x = a, *const *y = b;

    return strcmp((*x)->cfg.id, (*y)->cfg.id);
}

/* Creates the Sparkplug host, the outbox and the sorted meter index, when an input needs
 * them. Returns 0 or ENPI_ENOMEM. */
int enpi_pipeline_build_sparkplug(enpi_pipeline_t *p)
{
    enpi_sparkplug_options_t opt;
    bool wanted = false;

    for (size_t i = 0; i < p->n_inputs; i++)
        wanted = wanted || p->inputs[i].cfg->format == ENPI_FORMAT_SPARKPLUG;
    if (!wanted)
        return 0;
    memset(&opt, 0, sizeof(opt));
    opt.rebirth_cb = sp_rebirth_cb;
    opt.death_cb = sp_death_cb;
    opt.cb_ctx = p;
    p->sorted = calloc(p->n_meters ? p->n_meters : 1, sizeof(*p->sorted));
    p->outbox = calloc(ENPI_OUTBOX_MAX, sizeof(*p->outbox));
    p->outbox_out = calloc(ENPI_OUTBOX_MAX, sizeof(*p->outbox_out));
    if (p->sorted == NULL || p->outbox == NULL || p->outbox_out == NULL)
        return ENPI_ENOMEM;
    for (size_t i = 0; i < p->n_meters; i++)
        p->sorted[i] = &p->meters[i];
    p->n_sorted = p->n_meters;
    qsort(p->sorted, p->n_sorted, sizeof(*p->sorted), enpi_pipeline_cmp_meter_id);
    return enpi_sparkplug_create(&opt, &p->sp);
}

int enpi_pipeline_restore_sparkplug(enpi_pipeline_t *p, const char *key, const void *state,
                                    size_t state_len)
{
    if (p->sp == NULL)
        return ENPI_ENOENT;
    return enpi_sparkplug_import_node(p->sp, key, strlen(key), state, state_len);
}

bool enpi_pipeline_sparkplug_stats(const enpi_pipeline_t *p, enpi_sparkplug_stats_t *out)
{
    if (p->sp == NULL) {
        memset(out, 0, sizeof(*out));
        return false;
    }
    *out = *enpi_sparkplug_stats(p->sp);
    return true;
}

size_t enpi_pipeline_take_outbox(enpi_pipeline_t *p, enpi_outbound_t **msgs_out)
{
    size_t n = p->outbox_count;

    *msgs_out = p->outbox_out;
    for (size_t i = 0; i < n; i++)
        p->outbox_out[i] = p->outbox[(p->outbox_head + i) % ENPI_OUTBOX_MAX];
    p->outbox_head = 0;
    p->outbox_count = 0;
    return n;
}

void enpi_pipeline_outbox_stats(const enpi_pipeline_t *p, enpi_outbox_stats_t *out)
{
    out->queued = p->outbox_queued;
    out->dropped = p->outbox_dropped;
    out->pending = p->outbox_count;
}

/* ---- Sparkplug node state in batches ------------------------------------------------ */

/* Where take_batch packs the nodes: first the array, then keys and states. */
typedef struct {
    size_t n;                    /* nodes counted (sizing pass) or written */
    size_t bytes;                /* key + NUL + state bytes counted or written */
    enpi_node_snapshot_t *nodes; /* NULL: sizing pass */
    uint8_t *data;
    size_t n_cap; /* filling pass: what the sizing pass found */
    size_t bytes_cap;
} node_pack_t;

static int node_pack_cb(void *ctx, const char *key, size_t key_len, const uint8_t *state,
                        size_t state_len)
{
    node_pack_t *np = ctx;
    enpi_node_snapshot_t *s;
    uint8_t *d;

    if (np->nodes == NULL) {
        np->n++;
        np->bytes += key_len + 1 + state_len;
        return 0;
    }
    if (np->n == np->n_cap || np->bytes_cap - np->bytes < key_len + 1 + state_len)
        return ENPI_ESTATE; /* the changes moved between the passes: cannot happen */
    s = &np->nodes[np->n++];
    d = np->data + np->bytes;
    memcpy(d, key, key_len);
    d[key_len] = '\0';
    s->key = (const char *)d;
    if (state != NULL) {
        if (state_len > 0)
            memcpy(d + key_len + 1, state, state_len);
        s->state = d + key_len + 1;
        s->state_len = state_len;
    }
    np->bytes += key_len + 1 + state_len;
    return 0;
}

static size_t align_up(size_t n)
{
    const size_t a = _Alignof(max_align_t);

    return (n + a - 1) / a * a;
}

/* A zeroed batch with room behind it for the Sparkplug nodes that changed, filled in.
 * Returns NULL when memory ran out (the changes stay pending). */
enpi_batch_t *enpi_pipeline_batch_with_nodes(enpi_pipeline_t *p)
{
    node_pack_t np;
    enpi_batch_t *b;
    size_t head = align_up(sizeof(*b)), extra = 0;

    memset(&np, 0, sizeof(np));
    if (p->sp != NULL && enpi_sparkplug_changes_pending(p->sp) > 0) {
        if (enpi_sparkplug_changes(p->sp, node_pack_cb, &np) != 0)
            return NULL;
        extra = np.n * sizeof(enpi_node_snapshot_t) + np.bytes;
    }
    b = calloc(1, head + extra);
    if (b == NULL || np.n == 0)
        return b;
    np.nodes = (enpi_node_snapshot_t *)((unsigned char *)b + head);
    np.data = (uint8_t *)(np.nodes + np.n);
    np.n_cap = np.n;
    np.bytes_cap = np.bytes;
    np.n = 0;
    np.bytes = 0;
    if (enpi_sparkplug_changes(p->sp, node_pack_cb, &np) != 0) {
        free(b);
        return NULL;
    }
    b->nodes = np.nodes;
    b->n_nodes = np.n;
    return b;
}
