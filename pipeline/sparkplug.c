/*
 * sparkplug.c - Sparkplug B host state: topic namespace, births and deaths, alias
 * resolution, seq tracking, rebirth requests, and the rebirth request encoder.
 * The contract is in sparkplug.h.
 *
 * Layout: a uthash table of edge nodes keyed by "group/node". Each node has a root scope
 * (its own metrics) and a uthash table of device scopes keyed by device id; each scope
 * indexes its metrics twice, by alias and by name, and also chains them in a list that
 * owns them. Node and device scopes carry their meter id prefix ("group/node[/device]/"),
 * and every metric stores its whole meter id, so a reading needs no formatting. Nodes that
 * are not born hold no metrics and sit in a list, oldest first, from which the node table
 * evicts when full.
 *
 * protobuf-c unpacks into an arena owned by the enpi_sparkplug_t (bump allocation, free is
 * a no-op, reset after each message, one block of at most ARENA_KEEP kept), so the steady
 * state of data messages calls no malloc at all; only births allocate (their metrics).
 *
 * Persistence: nodes whose birth state changed sit in a second list (`changed`, oldest
 * first) until enpi_sparkplug_changes_done(); `persisted` says whether the store holds
 * (or is about to hold) a record of the node. The node table evicts only unborn nodes
 * without a record, so a pending deletion can never be lost with its node.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1 /* a failed insert leaves elt->hh.tbl NULL; we check it */
#include <uthash.h>

#include "enpi_error.h"
#include "sparkplug.h"
#include "sparkplug_b.pb-c.h"
#include "store.pb-c.h"

typedef Enpi__Sparkplug__V1__Payload sp_payload_t;
typedef Enpi__Sparkplug__V1__Payload__Metric sp_pmetric_t;
typedef Enpi__Store__V1__SparkplugNode rec_node_t;
typedef Enpi__Store__V1__SparkplugDevice rec_device_t;
typedef Enpi__Store__V1__SparkplugMetric rec_metric_t;

#define NS "spBv1.0"
#define REBIRTH_METRIC "Node Control/Rebirth"
#define BDSEQ_METRIC "bdSeq"
/* A scope prefix "group/node[/device]/" leaves room for at least a one-byte name. */
#define PREFIX_MAX (ENPI_SPARKPLUG_ID_MAX - 1)

typedef enum {
    MSG_NBIRTH,
    MSG_NDEATH,
    MSG_NDATA,
    MSG_DBIRTH,
    MSG_DDEATH,
    MSG_DDATA,
    MSG_IGNORED, /* NCMD, DCMD, STATE */
} msg_type_t;

typedef struct {
    msg_type_t type;
    const char *group;
    size_t group_len;
    const char *node;
    size_t node_len;
    const char *device; /* NULL for node-level messages */
    size_t device_len;
} sp_topic_t;

/* A metric declared by a birth. */
typedef struct sp_metric {
    UT_hash_handle hh_alias; /* scope->by_alias, when has_alias */
    UT_hash_handle hh_name;  /* scope->by_name, when has_name */
    struct sp_metric *next;  /* scope->all: the owning list */
    uint64_t alias;
    uint32_t datatype; /* DataType code from the birth */
    bool has_alias;
    bool has_name;   /* false: meter id too long, known by alias only */
    size_t name_off; /* the name starts at id + name_off */
    size_t id_len;
    char id[]; /* "group/node[/device]/name", NUL-terminated; "" if !has_name */
} sp_metric_t;

/* The metrics of an edge node itself, or of one of its devices. */
typedef struct sp_scope {
    UT_hash_handle hh; /* node->devices, keyed by the device id inside prefix */
    sp_metric_t *by_alias;
    sp_metric_t *by_name;
    sp_metric_t *all;
    size_t n_metrics;
    size_t prefix_len;
    char prefix[PREFIX_MAX + 1]; /* "group/node/" or "group/node/device/", NUL-terminated */
} sp_scope_t;

typedef struct sp_node {
    UT_hash_handle hh;           /* s->nodes, keyed by "group/node" (root.prefix minus '/') */
    struct sp_node *prev_unborn; /* s->unborn list, while !born */
    struct sp_node *next_unborn;
    sp_scope_t root;     /* node metrics */
    sp_scope_t *devices; /* born devices */
    size_t n_metrics;    /* metrics of all scopes + one per device */
    bool born;
    bool incomplete; /* a birth hit a limit: unresolved metrics request no rebirth */
    bool has_seq;    /* next_seq is known */
    uint8_t next_seq;
    bool has_bdseq;
    uint64_t bdseq;   /* bdSeq of the NBIRTH */
    bool has_rebirth; /* a rebirth was requested at last_rebirth_ms */
    int64_t last_rebirth_ms;
    bool changed;   /* in s->changed: birth state changed since changes_done */
    bool persisted; /* the store holds (or will hold) a record of this node */
    struct sp_node *prev_changed;
    struct sp_node *next_changed;
    char *group; /* NUL-terminated copies for rebirth_cb, in names */
    char *node;
    char names[PREFIX_MAX + 1];
} sp_node_t;

#define ARENA_FIRST (16 * 1024)  /* first block */
#define ARENA_KEEP (1024 * 1024) /* largest block kept from one message to the next */
#define ARENA_ALIGN (_Alignof(max_align_t))

typedef struct arena_block {
    struct arena_block *next; /* older blocks */
    size_t cap;               /* bytes after the header */
    size_t used;
    max_align_t align_; /* pads the header so the bytes after it are aligned */
} arena_block_t;

struct enpi_sparkplug {
    enpi_sparkplug_options_t opt;
    ProtobufCAllocator allocator; /* the arena below, for protobuf-c */
    arena_block_t *arena;         /* newest block first; allocations bump the newest */
    bool arena_failed;            /* an arena allocation failed during this message */
    enpi_sparkplug_stats_t stats;
    sp_node_t *nodes;
    size_t n_nodes;
    size_t n_metrics;       /* over all nodes, devices included */
    sp_node_t *unborn_head; /* oldest first */
    sp_node_t *unborn_tail;
    sp_node_t *changed_head; /* oldest change first */
    sp_node_t *changed_tail;
    size_t n_changed;
};

/* ---------------------------------------------------------------------------------- */
/* Topics */

static bool level_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

/*
 * Splits a Sparkplug B topic. Returns 0 or ENPI_EPARSE: not spBv1.0, wrong number of
 * levels for the type, an empty level, a NUL byte, or an unknown message type.
 */
static int parse_topic(const char *t, size_t len, sp_topic_t *out)
{
    const char *lv[6];
    size_t lvlen[6], n = 0, start = 0, i;

    if (memchr(t, '\0', len) != NULL)
        return ENPI_EPARSE;
    for (i = 0; i <= len; i++) {
        if (i < len && t[i] != '/')
            continue;
        if (n == 6)
            return ENPI_EPARSE;
        lv[n] = t + start;
        lvlen[n] = i - start;
        n++;
        start = i + 1;
    }
    if (n < 3 || !level_is(lv[0], lvlen[0], NS))
        return ENPI_EPARSE;
    for (i = 0; i < n; i++)
        if (lvlen[i] == 0)
            return ENPI_EPARSE;
    memset(out, 0, sizeof(*out));
    if (n == 3) {
        if (!level_is(lv[1], lvlen[1], "STATE"))
            return ENPI_EPARSE;
        out->type = MSG_IGNORED;
        return 0;
    }
    if (n > 5)
        return ENPI_EPARSE;
    out->group = lv[1];
    out->group_len = lvlen[1];
    out->node = lv[3];
    out->node_len = lvlen[3];
    if (n == 4) {
        if (level_is(lv[2], lvlen[2], "NBIRTH"))
            out->type = MSG_NBIRTH;
        else if (level_is(lv[2], lvlen[2], "NDEATH"))
            out->type = MSG_NDEATH;
        else if (level_is(lv[2], lvlen[2], "NDATA"))
            out->type = MSG_NDATA;
        else if (level_is(lv[2], lvlen[2], "NCMD"))
            out->type = MSG_IGNORED;
        else
            return ENPI_EPARSE;
        return 0;
    }
    out->device = lv[4];
    out->device_len = lvlen[4];
    if (level_is(lv[2], lvlen[2], "DBIRTH"))
        out->type = MSG_DBIRTH;
    else if (level_is(lv[2], lvlen[2], "DDEATH"))
        out->type = MSG_DDEATH;
    else if (level_is(lv[2], lvlen[2], "DDATA"))
        out->type = MSG_DDATA;
    else if (level_is(lv[2], lvlen[2], "DCMD"))
        out->type = MSG_IGNORED;
    else
        return ENPI_EPARSE;
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Protobuf nesting check: protobuf-c unpacks nested messages by recursion without any
 * depth limit, so a payload of nested templates would exhaust the stack. This walks the
 * wire format with the generated descriptors and refuses deep or malformed input first. */

static bool read_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift;

    for (shift = 0; shift < 64 && *i < len; shift += 7) {
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

static int check_nesting(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                         unsigned depth)
{
    size_t i = 0;
    uint64_t key, v;

    if (depth > ENPI_SPARKPLUG_NESTING_MAX)
        return ENPI_EPARSE;
    while (i < len) {
        if (!read_varint(p, len, &i, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
            return ENPI_EPARSE;
        switch (key & 7) {
        case 0: /* varint */
            if (!read_varint(p, len, &i, &v))
                return ENPI_EPARSE;
            break;
        case 1: /* 64-bit */
            if (len - i < 8)
                return ENPI_EPARSE;
            i += 8;
            break;
        case 5: /* 32-bit */
            if (len - i < 4)
                return ENPI_EPARSE;
            i += 4;
            break;
        case 2: { /* length-delimited: maybe a sub-message */
            const ProtobufCFieldDescriptor *f;
            int rc;

            if (!read_varint(p, len, &i, &v) || v > len - i)
                return ENPI_EPARSE;
            f = d != NULL ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                rc = check_nesting(f->descriptor, p + i, (size_t)v, depth + 1);
                if (rc != 0)
                    return rc;
            }
            i += (size_t)v;
            break;
        }
        default: /* groups (3, 4) and reserved wire types: protobuf-c refuses them too */
            return ENPI_EPARSE;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* The unpack arena */

/* protobuf-c's alloc: n bytes aligned for any type. NULL (and arena_failed) when memory
 * runs out; protobuf-c then fails the unpack. */
static void *arena_alloc(void *data, size_t n)
{
    enpi_sparkplug_t *s = data;
    arena_block_t *b = s->arena;
    size_t cap;

    if (n > SIZE_MAX / 4)
        goto fail;
    n = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (b == NULL || b->cap - b->used < n) {
        cap = b != NULL ? 2 * b->cap : ARENA_FIRST;
        if (cap < n)
            cap = n;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            goto fail;
        b->cap = cap;
        b->used = 0;
        b->next = s->arena;
        s->arena = b;
    }
    b->used += n;
    return (unsigned char *)(b + 1) + (b->used - n);
fail:
    s->arena_failed = true;
    return NULL;
}

/* protobuf-c's free: the memory comes back when the arena is reset. */
static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* Empties the arena, keeping its largest block of at most ARENA_KEEP bytes. */
static void arena_reset(enpi_sparkplug_t *s)
{
    arena_block_t *b, *next, *keep = NULL;

    for (b = s->arena; b != NULL; b = b->next)
        if (b->cap <= ARENA_KEEP && (keep == NULL || b->cap > keep->cap))
            keep = b;
    for (b = s->arena; b != NULL; b = next) {
        next = b->next;
        if (b != keep)
            free(b);
    }
    if (keep != NULL) {
        keep->used = 0;
        keep->next = NULL;
    }
    s->arena = keep;
    s->arena_failed = false;
}

/* ---------------------------------------------------------------------------------- */
/* Scopes and nodes */

static void scope_init(sp_scope_t *sc, const char *prefix, size_t prefix_len)
{
    memset(sc, 0, sizeof(*sc));
    memcpy(sc->prefix, prefix, prefix_len);
    sc->prefix[prefix_len] = '\0';
    sc->prefix_len = prefix_len;
}

/* Forgets the scope's metrics (the scope itself stays). Returns how many it held. */
static size_t scope_clear(sp_scope_t *sc)
{
    sp_metric_t *m, *next;
    size_t n = sc->n_metrics;

    HASH_CLEAR(hh_alias, sc->by_alias);
    HASH_CLEAR(hh_name, sc->by_name);
    for (m = sc->all; m != NULL; m = next) {
        next = m->next;
        free(m);
    }
    sc->all = NULL;
    sc->n_metrics = 0;
    return n;
}

static void unborn_remove(enpi_sparkplug_t *s, sp_node_t *n)
{
    if (n->prev_unborn != NULL)
        n->prev_unborn->next_unborn = n->next_unborn;
    else if (s->unborn_head == n)
        s->unborn_head = n->next_unborn;
    if (n->next_unborn != NULL)
        n->next_unborn->prev_unborn = n->prev_unborn;
    else if (s->unborn_tail == n)
        s->unborn_tail = n->prev_unborn;
    n->prev_unborn = n->next_unborn = NULL;
}

static void unborn_append(enpi_sparkplug_t *s, sp_node_t *n)
{
    n->prev_unborn = s->unborn_tail;
    n->next_unborn = NULL;
    if (s->unborn_tail != NULL)
        s->unborn_tail->next_unborn = n;
    else
        s->unborn_head = n;
    s->unborn_tail = n;
}

static void device_free(enpi_sparkplug_t *s, sp_node_t *n, sp_scope_t *dev)
{
    size_t k = scope_clear(dev) + 1; /* the device's own slot */

    HASH_DELETE(hh, n->devices, dev);
    n->n_metrics -= k;
    s->n_metrics -= k;
    free(dev);
}

/* Forgets all the node's metrics and devices and makes it unborn. */
static void node_kill(enpi_sparkplug_t *s, sp_node_t *n)
{
    sp_scope_t *dev, *tmp;
    size_t k;

    HASH_ITER(hh, n->devices, dev, tmp)
    {
        device_free(s, n, dev);
    }
    k = scope_clear(&n->root);
    n->n_metrics -= k;
    s->n_metrics -= k;
    n->incomplete = false;
    if (n->born) {
        n->born = false;
        unborn_append(s, n);
    }
}

/* Records that the node's persistent state changed (its next changes() reports it). */
static void node_changed(enpi_sparkplug_t *s, sp_node_t *n)
{
    if (n->changed)
        return;
    n->changed = true;
    n->prev_changed = s->changed_tail;
    n->next_changed = NULL;
    if (s->changed_tail != NULL)
        s->changed_tail->next_changed = n;
    else
        s->changed_head = n;
    s->changed_tail = n;
    s->n_changed++;
}

static void changed_remove(enpi_sparkplug_t *s, sp_node_t *n)
{
    if (!n->changed)
        return;
    if (n->prev_changed != NULL)
        n->prev_changed->next_changed = n->next_changed;
    else
        s->changed_head = n->next_changed;
    if (n->next_changed != NULL)
        n->next_changed->prev_changed = n->prev_changed;
    else
        s->changed_tail = n->prev_changed;
    n->prev_changed = n->next_changed = NULL;
    n->changed = false;
    s->n_changed--;
}

static void node_free(enpi_sparkplug_t *s, sp_node_t *n)
{
    node_kill(s, n);
    unborn_remove(s, n);
    changed_remove(s, n);
    HASH_DELETE(hh, s->nodes, n);
    s->n_nodes--;
    free(n);
}

/* "group/node" of a topic into key (PREFIX_MAX + 1 bytes); returns its length. */
static size_t node_key(const sp_topic_t *t, char *key)
{
    memcpy(key, t->group, t->group_len);
    key[t->group_len] = '/';
    memcpy(key + t->group_len + 1, t->node, t->node_len);
    return t->group_len + 1 + t->node_len;
}

static sp_node_t *node_find(const enpi_sparkplug_t *s, const sp_topic_t *t)
{
    char key[PREFIX_MAX + 1];
    size_t klen = node_key(t, key);
    sp_node_t *n;

    HASH_FIND(hh, s->nodes, key, klen, n);
    return n;
}

/*
 * Finds the topic's node, creating it (unborn) when absent. With a full table the oldest
 * unborn node without a stored record is evicted; when there is none (every node is born,
 * or dead with its record's deletion pending), *out is NULL and nodes_full counts it.
 * Returns 0 or ENPI_ENOMEM.
 */
static int node_get(enpi_sparkplug_t *s, const sp_topic_t *t, sp_node_t **out)
{
    sp_node_t *n = node_find(s, t);
    size_t klen;

    *out = n;
    if (n != NULL)
        return 0;
    if (s->n_nodes >= s->opt.max_nodes) {
        sp_node_t *victim = s->unborn_head;

        while (victim != NULL && victim->persisted)
            victim = victim->next_unborn;
        if (victim == NULL) {
            s->stats.nodes_full++;
            return 0;
        }
        node_free(s, victim);
    }
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return ENPI_ENOMEM;
    klen = node_key(t, n->names);
    n->names[klen] = '/';
    scope_init(&n->root, n->names, klen + 1); /* "group/node/" */
    n->names[t->group_len] = '\0';            /* names = "group\0node\0" */
    n->names[klen] = '\0';
    n->group = n->names;
    n->node = n->names + t->group_len + 1;
    HASH_ADD_KEYPTR(hh, s->nodes, n->root.prefix, klen, n);
    if (n->hh.tbl == NULL) {
        free(n);
        return ENPI_ENOMEM;
    }
    s->n_nodes++;
    unborn_append(s, n);
    *out = n;
    return 0;
}

static sp_scope_t *device_find(const sp_node_t *n, const sp_topic_t *t)
{
    sp_scope_t *dev;

    HASH_FIND(hh, n->devices, t->device, t->device_len, dev);
    return dev;
}

static bool budget_allows(const enpi_sparkplug_t *s, const sp_node_t *n)
{
    return n->n_metrics < s->opt.max_node_metrics && s->n_metrics < s->opt.max_metrics;
}

/* A fresh device scope for a DBIRTH (a previous one is forgotten). *out is NULL when a
 * limit refuses it (counted). Returns 0 or ENPI_ENOMEM. */
static int device_create(enpi_sparkplug_t *s, sp_node_t *n, const sp_topic_t *t, sp_scope_t **out)
{
    sp_scope_t *dev = device_find(n, t);

    *out = NULL;
    if (dev != NULL)
        device_free(s, n, dev);
    if (!budget_allows(s, n)) {
        s->stats.metrics_full++;
        n->incomplete = true;
        return 0;
    }
    dev = malloc(sizeof(*dev));
    if (dev == NULL)
        return ENPI_ENOMEM;
    scope_init(dev, n->root.prefix, n->root.prefix_len);
    memcpy(dev->prefix + dev->prefix_len, t->device, t->device_len);
    dev->prefix_len += t->device_len;
    dev->prefix[dev->prefix_len++] = '/';
    dev->prefix[dev->prefix_len] = '\0';
    HASH_ADD_KEYPTR(hh, n->devices, dev->prefix + n->root.prefix_len, t->device_len, dev);
    if (dev->hh.tbl == NULL) {
        free(dev);
        return ENPI_ENOMEM;
    }
    n->n_metrics++;
    s->n_metrics++;
    *out = dev;
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Metrics */

static sp_metric_t *metric_resolve(const sp_scope_t *sc, const sp_pmetric_t *pm)
{
    sp_metric_t *m = NULL;

    if (pm->has_alias) {
        HASH_FIND(hh_alias, sc->by_alias, &pm->alias, sizeof(pm->alias), m);
        if (m != NULL)
            return m;
    }
    if (pm->name != NULL)
        HASH_FIND(hh_name, sc->by_name, pm->name, strlen(pm->name), m);
    return m;
}

/*
 * Declares a birth metric in the scope. *out is the learned entry, or NULL when the
 * metric is not learned: a limit (metrics_full, node marked incomplete), neither name nor
 * alias, or a duplicate of a metric this birth already declared (the first declaration
 * stays; *out is then that one). Returns 0 or ENPI_ENOMEM.
 */
static int metric_learn(enpi_sparkplug_t *s, sp_node_t *n, sp_scope_t *sc, const sp_pmetric_t *pm,
                        sp_metric_t **out)
{
    size_t name_len = pm->name != NULL ? strlen(pm->name) : 0;
    bool has_name = pm->name != NULL && sc->prefix_len + name_len <= ENPI_SPARKPLUG_ID_MAX;
    sp_metric_t *m;

    *out = NULL;
    if (pm->name == NULL && !pm->has_alias)
        return 0;
    m = metric_resolve(sc, pm);
    if (m != NULL) {
        *out = m;
        return 0;
    }
    if (!has_name && !pm->has_alias) {
        n->incomplete = true; /* its data can never be resolved: do not loop on it */
        return 0;
    }
    if (!budget_allows(s, n)) {
        s->stats.metrics_full++;
        n->incomplete = true;
        return 0;
    }
    m = calloc(1, sizeof(*m) + (has_name ? sc->prefix_len + name_len : 0) + 1);
    if (m == NULL)
        return ENPI_ENOMEM;
    m->alias = pm->alias;
    m->has_alias = pm->has_alias;
    m->datatype = pm->has_datatype ? pm->datatype : ENPI__SPARKPLUG__V1__DATA_TYPE__Unknown;
    m->has_name = has_name;
    if (has_name) {
        memcpy(m->id, sc->prefix, sc->prefix_len);
        memcpy(m->id + sc->prefix_len, pm->name, name_len);
        m->name_off = sc->prefix_len;
        m->id_len = sc->prefix_len + name_len;
        m->id[m->id_len] = '\0';
    }
    if (m->has_alias) {
        HASH_ADD(hh_alias, sc->by_alias, alias, sizeof(m->alias), m);
        if (m->hh_alias.tbl == NULL) {
            free(m);
            return ENPI_ENOMEM;
        }
    }
    if (m->has_name) {
        HASH_ADD_KEYPTR(hh_name, sc->by_name, m->id + m->name_off, name_len, m);
        if (m->hh_name.tbl == NULL) {
            if (m->has_alias)
                HASH_DELETE(hh_alias, sc->by_alias, m);
            free(m);
            return ENPI_ENOMEM;
        }
    }
    m->next = sc->all;
    sc->all = m;
    sc->n_metrics++;
    n->n_metrics++;
    s->n_metrics++;
    *out = m;
    return 0;
}

static bool datatype_numeric(uint32_t dt)
{
    return dt >= ENPI__SPARKPLUG__V1__DATA_TYPE__Int8 &&
           dt <= ENPI__SPARKPLUG__V1__DATA_TYPE__Double;
}

/* The low `bits` bits of v as a two's-complement signed number. */
static int64_t sign_extend(uint64_t v, unsigned bits)
{
    uint64_t mask = bits == 64 ? UINT64_MAX : (((uint64_t)1 << bits) - 1);
    uint64_t sign = (uint64_t)1 << (bits - 1);

    v &= mask;
    if ((v & sign) == 0)
        return (int64_t)v;
    return -(int64_t)(~v & mask) - 1; /* v - 2^bits, without overflow */
}

/*
 * The numeric value of a metric of numeric datatype dt. Returns false when the metric
 * carries no value of a usable kind (an integer type needs int_value or long_value; a
 * float type float_value or double_value).
 */
static bool metric_number(uint32_t dt, const sp_pmetric_t *pm, double *out)
{
    uint64_t raw;

    if (dt == ENPI__SPARKPLUG__V1__DATA_TYPE__Float ||
        dt == ENPI__SPARKPLUG__V1__DATA_TYPE__Double) {
        if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_FLOAT_VALUE)
            *out = (double)pm->float_value;
        else if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE)
            *out = pm->double_value;
        else
            return false;
        return true;
    }
    if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_INT_VALUE)
        raw = pm->int_value;
    else if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_LONG_VALUE)
        raw = pm->long_value;
    else
        return false;
    switch (dt) {
    case ENPI__SPARKPLUG__V1__DATA_TYPE__Int8:
        *out = (double)sign_extend(raw, 8);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__Int16:
        *out = (double)sign_extend(raw, 16);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__Int32:
        *out = (double)sign_extend(raw, 32);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__Int64:
        *out = (double)sign_extend(raw, 64);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__UInt8:
        *out = (double)(raw & 0xff);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__UInt16:
        *out = (double)(raw & 0xffff);
        break;
    case ENPI__SPARKPLUG__V1__DATA_TYPE__UInt32:
        *out = (double)(raw & 0xffffffffu);
        break;
    default: /* UInt64 */
        *out = (double)raw;
        break;
    }
    return true;
}

/*
 * Turns one metric into a reading (or a counted skip). id NULL means the meter id is too
 * long (id_invalid). In a birth, a metric without any value only declares the metric.
 */
static void metric_emit(enpi_sparkplug_t *s, const char *id, size_t id_len, uint32_t dt,
                        const sp_pmetric_t *pm, const sp_payload_t *p, bool birth,
                        enpi_reading_cb cb, void *ctx)
{
    enpi_raw_reading_t r;
    double v;

    if (pm->has_is_null && pm->is_null) {
        s->stats.null_skipped++;
        return;
    }
    if (!datatype_numeric(dt)) {
        s->stats.non_numeric_skipped++;
        return;
    }
    if (birth && pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE__NOT_SET)
        return;
    memset(&r, 0, sizeof(r));
    r.id = id;
    r.id_len = id != NULL ? id_len : 0;
    r.id_invalid = id == NULL;
    if (!metric_number(dt, pm, &v)) {
        r.value_kind = ENPI_VALUE_MISSING;
    } else {
        r.value = v;
        r.value_kind = isfinite(v) ? ENPI_VALUE_OK : ENPI_VALUE_NOT_FINITE;
    }
    if (pm->has_timestamp) {
        r.ts_kind = ENPI_TS_EPOCH_MS;
        r.ts_ms = (double)pm->timestamp;
    } else if (p->has_timestamp) {
        r.ts_kind = ENPI_TS_EPOCH_MS;
        r.ts_ms = (double)p->timestamp;
    } else {
        r.ts_kind = ENPI_TS_ARRIVAL;
    }
    s->stats.readings++;
    if (cb != NULL)
        cb(ctx, &r);
}

/* ---------------------------------------------------------------------------------- */
/* Messages */

/* Calls rebirth_cb unless this node had one within rebirth_interval_ms of arrival time. */
static void request_rebirth(enpi_sparkplug_t *s, sp_node_t *n, int64_t arrival_ms)
{
    if (n->has_rebirth && arrival_ms >= n->last_rebirth_ms &&
        (uint64_t)arrival_ms - (uint64_t)n->last_rebirth_ms < (uint64_t)s->opt.rebirth_interval_ms)
        return;
    n->has_rebirth = true;
    n->last_rebirth_ms = arrival_ms;
    s->stats.rebirth_requests++;
    if (s->opt.rebirth_cb != NULL)
        s->opt.rebirth_cb(s->opt.cb_ctx, n->group, n->node);
}

/* Compares the payload's seq with the expected one; true on a gap. Absent seq: no check. */
static bool seq_check(enpi_sparkplug_t *s, sp_node_t *n, const sp_payload_t *p)
{
    bool gap = false;

    if (!p->has_seq)
        return false;
    if (n->has_seq && p->seq != n->next_seq) {
        s->stats.seq_gaps++;
        gap = true;
    }
    n->has_seq = true;
    n->next_seq = (uint8_t)((p->seq + 1) & 0xff);
    return gap;
}

static bool payload_bdseq(const sp_payload_t *p, uint64_t *out)
{
    size_t i;

    for (i = 0; i < p->n_metrics; i++) {
        const sp_pmetric_t *pm = p->metrics[i];

        if (pm->name == NULL || strcmp(pm->name, BDSEQ_METRIC) != 0)
            continue;
        if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_LONG_VALUE)
            *out = pm->long_value;
        else if (pm->value_case == ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_INT_VALUE)
            *out = pm->int_value;
        else
            return false;
        return true;
    }
    return false;
}

/* Learns every metric of a birth into sc and emits the values. On ENOMEM the caller
 * unwinds the birth. */
static int birth_learn(enpi_sparkplug_t *s, sp_node_t *n, sp_scope_t *sc, const sp_payload_t *p,
                       enpi_reading_cb cb, void *ctx)
{
    size_t i;
    int rc;

    for (i = 0; i < p->n_metrics; i++) {
        const sp_pmetric_t *pm = p->metrics[i];
        sp_metric_t *m;

        rc = metric_learn(s, n, sc, pm, &m);
        if (rc != 0)
            return rc;
        if (pm->name != NULL && strcmp(pm->name, BDSEQ_METRIC) == 0)
            continue; /* session bookkeeping, not a measurement */
        if (m != NULL)
            metric_emit(s, m->has_name ? m->id : NULL, m->id_len, m->datatype, pm, p, true, cb,
                        ctx);
        else if (pm->name != NULL && sc->prefix_len + strlen(pm->name) > ENPI_SPARKPLUG_ID_MAX)
            metric_emit(s, NULL, 0, pm->has_datatype ? pm->datatype : 0, pm, p, true, cb, ctx);
    }
    return 0;
}

static int on_nbirth(enpi_sparkplug_t *s, const sp_topic_t *t, const sp_payload_t *p,
                     enpi_reading_cb cb, void *ctx)
{
    sp_node_t *n;
    int rc;

    rc = node_get(s, t, &n);
    if (rc != 0 || n == NULL)
        return rc;
    node_changed(s, n);
    node_kill(s, n); /* a rebirth replaces everything the node declared */
    unborn_remove(s, n);
    n->born = true;
    n->has_seq = p->has_seq;
    n->next_seq = (uint8_t)((p->seq + 1) & 0xff);
    n->has_bdseq = payload_bdseq(p, &n->bdseq);
    rc = birth_learn(s, n, &n->root, p, cb, ctx);
    if (rc != 0) {
        node_kill(s, n); /* unborn again: its next data asks for a rebirth */
        return rc;
    }
    s->stats.births++;
    return 0;
}

static void on_ndeath(enpi_sparkplug_t *s, const sp_topic_t *t, const sp_payload_t *p)
{
    sp_node_t *n = node_find(s, t);
    uint64_t bdseq;

    if (n != NULL && n->born && n->has_bdseq && payload_bdseq(p, &bdseq) && bdseq != n->bdseq) {
        s->stats.stale_deaths++;
        return;
    }
    if (n != NULL) {
        if (n->born)
            node_changed(s, n);
        node_kill(s, n);
        n->has_seq = false;
    }
    s->stats.deaths++;
    if (s->opt.death_cb != NULL) {
        char prefix[PREFIX_MAX + 1];
        size_t len = node_key(t, prefix);

        prefix[len] = '/';
        prefix[len + 1] = '\0';
        s->opt.death_cb(s->opt.cb_ctx, prefix);
    }
}

/* Data (or a DBIRTH) from a node that is not born: counted, dropped, rebirth asked. */
static int before_birth(enpi_sparkplug_t *s, const sp_topic_t *t, sp_node_t *n, int64_t arrival_ms)
{
    int rc = 0;

    s->stats.data_before_birth++;
    if (n == NULL)
        rc = node_get(s, t, &n);
    if (n != NULL)
        request_rebirth(s, n, arrival_ms);
    return rc;
}

static int on_dbirth(enpi_sparkplug_t *s, const sp_topic_t *t, const sp_payload_t *p,
                     int64_t arrival_ms, enpi_reading_cb cb, void *ctx)
{
    sp_node_t *n = node_find(s, t);
    sp_scope_t *dev;
    bool gap;
    int rc;

    if (n == NULL || !n->born)
        return before_birth(s, t, n, arrival_ms);
    gap = seq_check(s, n, p);
    node_changed(s, n);
    rc = device_create(s, n, t, &dev);
    if (rc == 0 && dev != NULL) {
        rc = birth_learn(s, n, dev, p, cb, ctx);
        if (rc != 0)
            device_free(s, n, dev); /* unborn: its next data asks for a rebirth */
        else
            s->stats.births++;
    }
    if (gap)
        request_rebirth(s, n, arrival_ms);
    return rc;
}

static void on_ddeath(enpi_sparkplug_t *s, const sp_topic_t *t, const sp_payload_t *p,
                      int64_t arrival_ms)
{
    sp_node_t *n = node_find(s, t);

    if (n != NULL && n->born) {
        sp_scope_t *dev = device_find(n, t);

        if (seq_check(s, n, p))
            request_rebirth(s, n, arrival_ms);
        if (dev != NULL) {
            node_changed(s, n);
            device_free(s, n, dev);
        }
    }
    s->stats.deaths++;
    if (s->opt.death_cb != NULL) {
        char prefix[PREFIX_MAX + 1];
        size_t len = node_key(t, prefix);

        prefix[len++] = '/';
        memcpy(prefix + len, t->device, t->device_len);
        len += t->device_len;
        prefix[len++] = '/';
        prefix[len] = '\0';
        s->opt.death_cb(s->opt.cb_ctx, prefix);
    }
}

static int on_data(enpi_sparkplug_t *s, const sp_topic_t *t, const sp_payload_t *p,
                   int64_t arrival_ms, enpi_reading_cb cb, void *ctx)
{
    sp_node_t *n = node_find(s, t);
    sp_scope_t *sc;
    bool want_rebirth;
    size_t i;

    if (n == NULL || !n->born)
        return before_birth(s, t, n, arrival_ms);
    want_rebirth = seq_check(s, n, p);
    sc = t->device != NULL ? device_find(n, t) : &n->root;
    if (sc == NULL) {
        s->stats.data_before_birth++;
        want_rebirth = true;
    } else {
        for (i = 0; i < p->n_metrics; i++) {
            const sp_pmetric_t *pm = p->metrics[i];
            const sp_metric_t *m = metric_resolve(sc, pm);

            if (m == NULL) {
                s->stats.unresolved_metrics++;
                if (!n->incomplete)
                    want_rebirth = true;
                continue;
            }
            /* the birth's datatype rules; a birth that omitted it defers to the data */
            metric_emit(s, m->has_name ? m->id : NULL, m->id_len,
                        m->datatype != ENPI__SPARKPLUG__V1__DATA_TYPE__Unknown || !pm->has_datatype
                            ? m->datatype
                            : pm->datatype,
                        pm, p, false, cb, ctx);
        }
    }
    if (want_rebirth)
        request_rebirth(s, n, arrival_ms);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Public API */

int enpi_sparkplug_create(const enpi_sparkplug_options_t *opt, enpi_sparkplug_t **out)
{
    enpi_sparkplug_t *s;

    *out = NULL;
    if (opt != NULL && opt->rebirth_interval_ms < 0)
        return ENPI_EINVAL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ENPI_ENOMEM;
    if (opt != NULL)
        s->opt = *opt;
    if (s->opt.max_nodes == 0)
        s->opt.max_nodes = ENPI_SPARKPLUG_MAX_NODES_DEFAULT;
    if (s->opt.max_node_metrics == 0)
        s->opt.max_node_metrics = ENPI_SPARKPLUG_MAX_NODE_METRICS_DEFAULT;
    if (s->opt.max_metrics == 0)
        s->opt.max_metrics = ENPI_SPARKPLUG_MAX_METRICS_DEFAULT;
    if (s->opt.rebirth_interval_ms == 0)
        s->opt.rebirth_interval_ms = ENPI_SPARKPLUG_REBIRTH_INTERVAL_MS_DEFAULT;
    s->allocator.alloc = arena_alloc;
    s->allocator.free = arena_free;
    s->allocator.allocator_data = s;
    *out = s;
    return 0;
}

void enpi_sparkplug_free(enpi_sparkplug_t *s)
{
    sp_node_t *n, *tmp;

    if (s == NULL)
        return;
    HASH_ITER(hh, s->nodes, n, tmp)
    {
        node_free(s, n);
    }
    arena_reset(s);
    free(s->arena);
    free(s);
}

int enpi_sparkplug_ingest(enpi_sparkplug_t *s, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, int64_t arrival_ms,
                          enpi_reading_cb cb, void *ctx)
{
    static const uint8_t empty[1] = {0};
    const uint8_t *bytes = payload_len > 0 ? payload : empty;
    sp_payload_t *p;
    sp_topic_t t;
    size_t id_len;
    int rc;

    s->stats.messages++;
    if (parse_topic(topic, topic_len, &t) != 0) {
        s->stats.parse_errors++;
        return ENPI_EPARSE;
    }
    if (t.type == MSG_IGNORED) {
        s->stats.ignored++;
        return 0;
    }
    id_len = t.group_len + 1 + t.node_len + (t.device != NULL ? 1 + t.device_len : 0);
    if (id_len + 1 > PREFIX_MAX) { /* "group/node[/device]/" must fit a scope prefix */
        s->stats.bad_ids++;
        return ENPI_EINVAL;
    }
    if (check_nesting(&enpi__sparkplug__v1__payload__descriptor, bytes, payload_len, 0) != 0) {
        s->stats.parse_errors++;
        return ENPI_EPARSE;
    }
    p = enpi__sparkplug__v1__payload__unpack(&s->allocator, payload_len, bytes);
    if (p == NULL) {
        rc = s->arena_failed ? ENPI_ENOMEM : ENPI_EPARSE;
        if (rc == ENPI_EPARSE)
            s->stats.parse_errors++;
        arena_reset(s);
        return rc;
    }
    switch (t.type) {
    case MSG_NBIRTH:
        rc = on_nbirth(s, &t, p, cb, ctx);
        break;
    case MSG_NDEATH:
        on_ndeath(s, &t, p);
        rc = 0;
        break;
    case MSG_DBIRTH:
        rc = on_dbirth(s, &t, p, arrival_ms, cb, ctx);
        break;
    case MSG_DDEATH:
        on_ddeath(s, &t, p, arrival_ms);
        rc = 0;
        break;
    default: /* NDATA, DDATA */
        rc = on_data(s, &t, p, arrival_ms, cb, ctx);
        break;
    }
    enpi__sparkplug__v1__payload__free_unpacked(p, &s->allocator);
    arena_reset(s);
    return rc;
}

const enpi_sparkplug_stats_t *enpi_sparkplug_stats(const enpi_sparkplug_t *s)
{
    return &s->stats;
}

bool enpi_sparkplug_node_born(const enpi_sparkplug_t *s, const char *group, const char *node)
{
    sp_topic_t t;
    sp_node_t *n;

    memset(&t, 0, sizeof(t));
    t.group = group;
    t.group_len = strlen(group);
    t.node = node;
    t.node_len = strlen(node);
    if (t.group_len + 1 + t.node_len + 1 > PREFIX_MAX)
        return false;
    n = node_find(s, &t);
    return n != NULL && n->born;
}

size_t enpi_sparkplug_node_count(const enpi_sparkplug_t *s)
{
    return s->n_nodes;
}

/* ---------------------------------------------------------------------------------- */
/* Persistence: a node's learned state <-> store.proto SparkplugNode */

/* The message borrows the metric's name; protobuf-c only reads it while packing. */
static void rec_metric_fill(const sp_metric_t *m, rec_metric_t *r)
{
    enpi__store__v1__sparkplug_metric__init(r);
    if (m->has_name) {
        r->has_name = 1;
        r->name.data = (uint8_t *)(m->id + m->name_off);
        r->name.len = m->id_len - m->name_off;
    }
    if (m->has_alias) {
        r->has_alias = 1;
        r->alias = m->alias;
    }
    r->datatype = m->datatype;
}

/* Fills ptrs[0..sc->n_metrics) in birth order (the scope's list holds them newest first),
 * so that an import learns them in the same order as the births did. */
static void rec_scope_fill(const sp_scope_t *sc, rec_metric_t *slots, rec_metric_t **ptrs)
{
    size_t i = sc->n_metrics;
    const sp_metric_t *m;

    for (m = sc->all; m != NULL && i > 0; m = m->next) {
        i--;
        rec_metric_fill(m, &slots[i]);
        ptrs[i] = &slots[i];
    }
}

/* Serializes a born node into *out (malloc'd, caller frees). Returns 0 or ENPI_ENOMEM. */
static int node_export(const sp_node_t *n, uint8_t **out, size_t *len_out)
{
    rec_node_t rec = ENPI__STORE__V1__SPARKPLUG_NODE__INIT;
    size_t n_dev = HASH_CNT(hh, n->devices), n_met = n->root.n_metrics, off, j = 0, len;
    rec_metric_t *slots = NULL, **ptrs = NULL;
    rec_device_t *devs = NULL, **dptrs = NULL;
    sp_scope_t *dev, *tmp;
    uint8_t *buf;
    int rc = ENPI_ENOMEM;

    HASH_ITER(hh, n->devices, dev, tmp)
    {
        n_met += dev->n_metrics;
    }
    slots = calloc(n_met ? n_met : 1, sizeof(*slots));
    ptrs = calloc(n_met ? n_met : 1, sizeof(*ptrs));
    devs = calloc(n_dev ? n_dev : 1, sizeof(*devs));
    dptrs = calloc(n_dev ? n_dev : 1, sizeof(*dptrs));
    if (slots == NULL || ptrs == NULL || devs == NULL || dptrs == NULL)
        goto free_arrays;
    rec.incomplete = n->incomplete;
    rec.has_seq = n->has_seq;
    rec.next_seq = n->next_seq;
    rec.has_bdseq = n->has_bdseq;
    rec.bdseq = n->bdseq;
    rec_scope_fill(&n->root, slots, ptrs);
    rec.metrics = ptrs;
    rec.n_metrics = n->root.n_metrics;
    off = n->root.n_metrics;
    HASH_ITER(hh, n->devices, dev, tmp)
    {
        rec_device_t *d = &devs[j];

        enpi__store__v1__sparkplug_device__init(d);
        d->id.data = (uint8_t *)dev->prefix + n->root.prefix_len;
        d->id.len = dev->prefix_len - n->root.prefix_len - 1; /* without the final '/' */
        rec_scope_fill(dev, slots + off, ptrs + off);
        d->metrics = ptrs + off;
        d->n_metrics = dev->n_metrics;
        off += dev->n_metrics;
        dptrs[j++] = d;
    }
    rec.devices = dptrs;
    rec.n_devices = j;
    len = enpi__store__v1__sparkplug_node__get_packed_size(&rec);
    buf = malloc(len ? len : 1);
    if (buf == NULL)
        goto free_arrays;
    *len_out = enpi__store__v1__sparkplug_node__pack(&rec, buf);
    *out = buf;
    rc = 0;
free_arrays:
    free(slots);
    free(ptrs);
    free(devs);
    free(dptrs);
    return rc;
}

/* Splits a node key "group/node" as a topic gives it: both parts non-empty, no '/' in
 * either, no NUL, short enough for meter ids (as enpi_sparkplug_ingest requires). */
static bool key_split(const char *key, size_t key_len, sp_topic_t *t)
{
    const char *slash;

    if (key_len == 0 || key_len + 1 > PREFIX_MAX || memchr(key, '\0', key_len) != NULL)
        return false;
    slash = memchr(key, '/', key_len);
    if (slash == NULL)
        return false;
    memset(t, 0, sizeof(*t));
    t->group = key;
    t->group_len = (size_t)(slash - key);
    t->node = slash + 1;
    t->node_len = key_len - t->group_len - 1;
    return t->group_len > 0 && t->node_len > 0 && memchr(t->node, '/', t->node_len) == NULL;
}

static bool rec_metric_valid(const rec_metric_t *r)
{
    return !r->has_name || r->name.len == 0 || memchr(r->name.data, '\0', r->name.len) == NULL;
}

/* Everything an import would have to refuse halfway, checked before any state changes. */
static bool rec_valid(const rec_node_t *rec, size_t key_len)
{
    size_t i, k;

    for (i = 0; i < rec->n_metrics; i++)
        if (!rec_metric_valid(rec->metrics[i]))
            return false;
    for (i = 0; i < rec->n_devices; i++) {
        const rec_device_t *d = rec->devices[i];

        /* "group/node/device/" must fit a scope prefix, as for a DBIRTH topic */
        if (d->id.len == 0 || key_len + 1 + d->id.len + 1 > PREFIX_MAX ||
            memchr(d->id.data, '/', d->id.len) != NULL ||
            memchr(d->id.data, '\0', d->id.len) != NULL)
            return false;
        for (k = 0; k < d->n_metrics; k++)
            if (!rec_metric_valid(d->metrics[k]))
                return false;
    }
    return true;
}

/* Learns one stored metric into sc as a birth would. Returns 0 or ENPI_ENOMEM. */
static int import_metric(enpi_sparkplug_t *s, sp_node_t *n, sp_scope_t *sc, const rec_metric_t *r)
{
    sp_pmetric_t pm = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__INIT;
    char name[ENPI_SPARKPLUG_ID_MAX + 1];
    sp_metric_t *m;

    if (r->has_name && r->name.len <= ENPI_SPARKPLUG_ID_MAX) {
        if (r->name.len > 0)
            memcpy(name, r->name.data, r->name.len);
        name[r->name.len] = '\0';
        pm.name = name;
    }
    pm.has_alias = r->has_alias;
    pm.alias = r->alias;
    pm.has_datatype = 1;
    pm.datatype = r->datatype;
    return metric_learn(s, n, sc, &pm, &m);
}

/* Fills a freshly killed node n from rec. Returns 0 or ENPI_ENOMEM (partly filled). */
static int import_fill(enpi_sparkplug_t *s, sp_node_t *n, sp_topic_t *t, const rec_node_t *rec)
{
    size_t i, k;
    int rc;

    unborn_remove(s, n);
    n->born = true;
    n->incomplete = rec->incomplete; /* learning below may only add to it */
    n->has_seq = rec->has_seq;
    n->next_seq = (uint8_t)(rec->next_seq & 0xff);
    n->has_bdseq = rec->has_bdseq;
    n->bdseq = rec->bdseq;
    n->has_rebirth = false;
    for (i = 0; i < rec->n_metrics; i++)
        if ((rc = import_metric(s, n, &n->root, rec->metrics[i])) != 0)
            return rc;
    for (i = 0; i < rec->n_devices; i++) {
        const rec_device_t *d = rec->devices[i];
        sp_scope_t *dev;

        t->device = (const char *)d->id.data;
        t->device_len = d->id.len;
        if ((rc = device_create(s, n, t, &dev)) != 0)
            return rc;
        if (dev == NULL)
            continue; /* a limit refused it: counted, node incomplete */
        for (k = 0; k < d->n_metrics; k++)
            if ((rc = import_metric(s, n, dev, d->metrics[k])) != 0)
                return rc;
    }
    return 0;
}

/* A stored record that cannot be used: leave the node unborn and have the next changes()
 * report the record deleted. Best effort (no room, no memory: the record stays). */
static void import_forget(enpi_sparkplug_t *s, const sp_topic_t *t)
{
    sp_node_t *n;

    if (node_get(s, t, &n) != 0 || n == NULL)
        return;
    node_kill(s, n);
    n->persisted = true;
    node_changed(s, n);
}

int enpi_sparkplug_import_node(enpi_sparkplug_t *s, const char *key, size_t key_len,
                               const void *state, size_t state_len)
{
    static const uint8_t empty[1] = {0};
    sp_topic_t t;
    rec_node_t *rec;
    sp_node_t *n;
    int rc;

    if (!key_split(key, key_len, &t))
        return ENPI_EINVAL;
    rec = enpi__store__v1__sparkplug_node__unpack(&s->allocator, state_len,
                                                  state_len > 0 ? state : empty);
    if (rec == NULL) {
        rc = s->arena_failed ? ENPI_ENOMEM : ENPI_EPARSE;
        arena_reset(s);
        import_forget(s, &t);
        return rc;
    }
    if (!rec_valid(rec, key_len)) {
        rc = ENPI_EPARSE;
        import_forget(s, &t);
        goto free_rec;
    }
    rc = node_get(s, &t, &n);
    if (rc == 0 && n == NULL)
        rc = ENPI_EFULL;
    if (rc != 0)
        goto free_rec;
    node_kill(s, n);
    rc = import_fill(s, n, &t, rec);
    if (rc != 0) {
        node_kill(s, n); /* unborn; the record is deleted by the next changes */
        n->persisted = true;
        node_changed(s, n);
        goto free_rec;
    }
    n->persisted = true;
    s->stats.nodes_imported++;
free_rec:
    enpi__store__v1__sparkplug_node__free_unpacked(rec, &s->allocator);
    arena_reset(s);
    return rc;
}

int enpi_sparkplug_export_node(const enpi_sparkplug_t *s, const char *key, size_t key_len,
                               uint8_t **state_out, size_t *len_out)
{
    sp_topic_t t;
    sp_node_t *n;

    if (!key_split(key, key_len, &t))
        return ENPI_ENOENT;
    n = node_find(s, &t);
    if (n == NULL || !n->born)
        return ENPI_ENOENT;
    return node_export(n, state_out, len_out);
}

size_t enpi_sparkplug_changes_pending(const enpi_sparkplug_t *s)
{
    return s->n_changed;
}

int enpi_sparkplug_changes(const enpi_sparkplug_t *s, enpi_sparkplug_node_cb cb, void *ctx)
{
    const sp_node_t *n;
    uint8_t *buf;
    size_t len;
    int rc;

    for (n = s->changed_head; n != NULL; n = n->next_changed) {
        size_t klen = n->root.prefix_len - 1; /* "group/node" without the final '/' */

        if (n->born) {
            rc = node_export(n, &buf, &len);
            if (rc != 0)
                return rc;
            rc = cb(ctx, n->root.prefix, klen, buf, len);
            free(buf);
        } else if (n->persisted) {
            rc = cb(ctx, n->root.prefix, klen, NULL, 0);
        } else {
            continue; /* born and dead again before anything was stored */
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

void enpi_sparkplug_changes_done(enpi_sparkplug_t *s)
{
    while (s->changed_head != NULL) {
        sp_node_t *n = s->changed_head;

        n->persisted = n->born;
        changed_remove(s, n);
    }
}

int enpi_sparkplug_rebirth_topic(const char *group, const char *node, char *buf, size_t cap,
                                 size_t *len_out)
{
    size_t g = strlen(group), n = strlen(node);
    size_t len = sizeof(NS) - 1 + 1 + g + sizeof("/NCMD/") - 1 + n;

    if (len + 1 > cap)
        return ENPI_ERANGE;
    memcpy(buf, NS "/", sizeof(NS));
    memcpy(buf + sizeof(NS), group, g);
    memcpy(buf + sizeof(NS) + g, "/NCMD/", sizeof("/NCMD/") - 1);
    memcpy(buf + len - n, node, n);
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return 0;
}

int enpi_sparkplug_rebirth_payload(int64_t ts_ms, uint8_t *buf, size_t cap, size_t *len_out)
{
    sp_pmetric_t metric = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__INIT;
    sp_pmetric_t *metrics[1] = {&metric};
    sp_payload_t p = ENPI__SPARKPLUG__V1__PAYLOAD__INIT;
    char name[] = REBIRTH_METRIC;
    size_t need;

    if (ts_ms < 0)
        return ENPI_EINVAL;
    metric.name = name;
    metric.has_timestamp = 1;
    metric.timestamp = (uint64_t)ts_ms;
    metric.has_datatype = 1;
    metric.datatype = ENPI__SPARKPLUG__V1__DATA_TYPE__Boolean;
    metric.value_case = ENPI__SPARKPLUG__V1__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE;
    metric.boolean_value = 1;
    p.has_timestamp = 1;
    p.timestamp = (uint64_t)ts_ms;
    p.n_metrics = 1;
    p.metrics = metrics;
    need = enpi__sparkplug__v1__payload__get_packed_size(&p);
    if (need > cap)
        return ENPI_ERANGE;
    *len_out = enpi__sparkplug__v1__payload__pack(&p, buf);
    return 0;
}
