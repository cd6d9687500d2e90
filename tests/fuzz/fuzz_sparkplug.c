/*
 * fuzz_sparkplug.c - libFuzzer target for the `sparkplug` input format
 * (pipeline/sparkplug.h): a fresh Sparkplug B host per input, fed a short sequence of
 * MQTT messages, so that births followed by data, deaths and rebirths are exercised.
 *
 * Input: up to MAX_MSGS messages separated by SEP ("#SP#"). Each message's first byte
 * selects its topic: below 0xF0 it picks one of TOPICS (births, data, deaths of group g,
 * node n, devices d and e, plus a few ignored and foreign ones); 0xF0 and above means
 * the topic is the rest up to the first NUL and the payload follows it (so the topic
 * parser is fuzzed too). The rest of the message is the payload. An odd-sized input uses
 * tiny table limits (2 nodes, 6 metrics per node, 10 in all) so the eviction and "full"
 * paths are reached; an even-sized one uses the defaults.
 *
 * Checked promises: the return code is one of those documented, with no reading callback
 * on ENPI_EPARSE or ENPI_EINVAL; every reading has a sane id (id_invalid -> no id,
 * otherwise 1..ENPI_SPARKPLUG_ID_MAX bytes), a value kind that matches the value, a known
 * timestamp kind; the callbacks get NUL-terminated strings (a death prefix ends in '/',
 * a rebirth's group and node are non-empty and contain no '/'); stats.readings counts the
 * callbacks. Finally the learned state goes through enpi_sparkplug_changes() and each
 * record is imported into a second host, which must accept it.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "enpi_error.h"
#include "fuzz_util.h"
#include "sparkplug.h"

#define MAX_MSGS 6
#define SEP "#SP#"
#define SEP_LEN 4
#define MAX_TOPIC 512

static const char *const TOPICS[] = {
    "spBv1.0/g/NBIRTH/n",   "spBv1.0/g/NDATA/n",    "spBv1.0/g/DBIRTH/n/d",
    "spBv1.0/g/DDATA/n/d",  "spBv1.0/g/NDEATH/n",   "spBv1.0/g/DDEATH/n/d",
    "spBv1.0/g/DBIRTH/n/e", "spBv1.0/g/DDATA/n/e",  "spBv1.0/g/NBIRTH/m",
    "spBv1.0/g/NDATA/m",    "spBv1.0/h/NBIRTH/n",   "spBv1.0/h/NDATA/n",
    "spBv1.0/g/NCMD/n",     "spBv1.0/STATE/host",   "spBv1.0/g/DCMD/n/d",
    "spBv1.0/g/NBIRTH",     "spBv1.0/g/DATA/n",     "other/g/NDATA/n",
};
#define N_TOPICS (sizeof(TOPICS) / sizeof(TOPICS[0]))

typedef struct {
    size_t calls; /* readings in the current message */
    size_t total; /* readings over the input */
} ctx_t;

static void check_cstr(const char *s, const char *what)
{
    FUZZ_CHECK(s != NULL, "%s is NULL", what);
    /* strlen reads up to the NUL: ASan reports a string that is not terminated in bounds */
    fuzz_touch(s, strlen(s) + 1);
}

static void on_rebirth(void *ctx, const char *group, const char *node)
{
    FUZZ_CHECK(ctx != NULL, "rebirth ctx NULL");
    check_cstr(group, "rebirth group");
    check_cstr(node, "rebirth node");
    FUZZ_CHECK(group[0] != '\0' && node[0] != '\0', "rebirth with an empty id");
    FUZZ_CHECK(strchr(group, '/') == NULL && strchr(node, '/') == NULL,
               "rebirth ids with '/': \"%s\" \"%s\"", group, node);
    {
        char topic[MAX_TOPIC + 64];
        size_t len = 0;
        if (enpi_sparkplug_rebirth_topic(group, node, topic, sizeof(topic), &len) == 0)
            FUZZ_CHECK(len == strlen(topic), "rebirth topic length %zu", len);
    }
}

static void on_death(void *ctx, const char *prefix)
{
    size_t n;

    FUZZ_CHECK(ctx != NULL, "death ctx NULL");
    check_cstr(prefix, "death prefix");
    n = strlen(prefix);
    FUZZ_CHECK(n >= 4 && prefix[n - 1] == '/', "death prefix \"%s\"", prefix);
}

static void on_reading(void *vctx, const enpi_raw_reading_t *r)
{
    ctx_t *c = vctx;

    c->calls++;
    FUZZ_CHECK(!r->malformed, "malformed reading");
    if (r->id_invalid) {
        FUZZ_CHECK(r->id == NULL, "id_invalid reading with an id");
    } else {
        FUZZ_CHECK(r->id != NULL, "reading without id");
        FUZZ_CHECK(r->id_len >= 1 && r->id_len <= ENPI_SPARKPLUG_ID_MAX, "id of %zu bytes",
                   r->id_len);
        fuzz_touch(r->id, r->id_len);
    }
    switch (r->value_kind) {
    case ENPI_VALUE_OK:
        FUZZ_CHECK(isfinite(r->value), "VALUE_OK with %g", r->value);
        break;
    case ENPI_VALUE_NOT_FINITE:
        FUZZ_CHECK(!isfinite(r->value), "NOT_FINITE with %g", r->value);
        break;
    case ENPI_VALUE_MISSING:
        break;
    default:
        FUZZ_CHECK(0, "value_kind %d", (int)r->value_kind);
    }
    FUZZ_CHECK(r->ts_kind == ENPI_TS_ARRIVAL || r->ts_kind == ENPI_TS_EPOCH_MS,
               "ts_kind %d", (int)r->ts_kind);
    if (r->ts_kind == ENPI_TS_EPOCH_MS)
        FUZZ_CHECK(isfinite(r->ts_ms), "ts_ms %g", r->ts_ms);
}

/* ---- persistence round trip ---------------------------------------------------------- */

typedef struct {
    enpi_sparkplug_t *into;
    const enpi_sparkplug_t *from;
    size_t records;
} import_ctx_t;

static int on_change(void *vctx, const char *key, size_t key_len, const uint8_t *state,
                     size_t state_len)
{
    import_ctx_t *ic = vctx;
    int rc;

    FUZZ_CHECK(key != NULL && key_len >= 3 && memchr(key, '/', key_len) != NULL,
               "change key of %zu bytes", key_len);
    ic->records++;
    if (state == NULL) {
        FUZZ_CHECK(state_len == 0, "deletion with %zu bytes", state_len);
        return 0;
    }
    fuzz_touch(state, state_len);
    rc = enpi_sparkplug_import_node(ic->into, key, key_len, state, state_len);
    if (rc == ENPI_ENOMEM)
        return 0;
    FUZZ_CHECK(rc == 0, "import of a record the host exported: rc %d (key \"%.*s\")", rc,
               (int)key_len, key);
    {
        uint8_t *again = NULL;
        size_t again_len = 0;
        rc = enpi_sparkplug_export_node(ic->into, key, key_len, &again, &again_len);
        FUZZ_CHECK(rc == 0 || rc == ENPI_ENOMEM, "export after import: rc %d", rc);
        if (rc == 0)
            fuzz_touch(again, again_len);
        free(again);
    }
    return 0;
}

/* ---- the target ------------------------------------------------------------------------ */

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
    for (; (size_t)(end - p) >= SEP_LEN; p++)
        if (memcmp(p, SEP, SEP_LEN) == 0)
            return p;
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enpi_sparkplug_options_t opt = {0};
    enpi_sparkplug_t *s = NULL, *s2 = NULL;
    ctx_t c = {0, 0};
    const uint8_t *p = data, *end = data + size;
    int64_t arrival = 1700000000000LL;
    int rc;

    if (size & 1) {
        opt.max_nodes = 2;
        opt.max_node_metrics = 6;
        opt.max_metrics = 10;
        opt.rebirth_interval_ms = 1500;
    }
    opt.rebirth_cb = on_rebirth;
    opt.death_cb = on_death;
    opt.cb_ctx = &c;
    rc = enpi_sparkplug_create(&opt, &s);
    if (rc == ENPI_ENOMEM)
        return 0;
    FUZZ_CHECK(rc == 0 && s != NULL, "create: rc %d", rc);

    for (int m = 0; m < MAX_MSGS && p < end; m++) {
        const uint8_t *next = find_sep(p, end);
        const uint8_t *mend = next ? next : end;
        const uint8_t *payload;
        char *topic_copy = NULL;
        const char *topic;
        size_t topic_len;
        uint8_t sel;
        uint8_t *pl;
        size_t pl_len;

        if (mend == p) { /* an empty message: skip it */
            p = next ? next + SEP_LEN : end;
            continue;
        }
        sel = *p;
        payload = p + 1;
        if (sel < 0xF0) {
            topic = TOPICS[sel % N_TOPICS];
            topic_len = strlen(topic);
        } else {
            const uint8_t *nul = memchr(payload, '\0', (size_t)(mend - payload));
            const uint8_t *tend = nul ? nul : mend;
            /* an exact-size heap copy: ASan sees any read past topic_len */
            topic_len = (size_t)(tend - payload);
            topic_copy = malloc(topic_len ? topic_len : 1);
            FUZZ_CHECK(topic_copy != NULL, "out of memory");
            if (topic_len)
                memcpy(topic_copy, payload, topic_len);
            topic = topic_copy;
            payload = nul ? nul + 1 : mend;
        }
        /* an exact-size heap copy of the payload, for the same reason */
        pl_len = (size_t)(mend - payload);
        pl = malloc(pl_len ? pl_len : 1);
        FUZZ_CHECK(pl != NULL, "out of memory");
        if (pl_len)
            memcpy(pl, payload, pl_len);

        c.calls = 0;
        rc = enpi_sparkplug_ingest(s, topic, topic_len, pl, pl_len, arrival, on_reading, &c);
        FUZZ_CHECK(rc == 0 || rc == ENPI_EPARSE || rc == ENPI_EINVAL || rc == ENPI_ENOMEM,
                   "ingest: rc %d", rc);
        if (rc == ENPI_EPARSE || rc == ENPI_EINVAL)
            FUZZ_CHECK(c.calls == 0, "%zu readings with rc %d", c.calls, rc);
        c.total += c.calls;
        free(pl);
        free(topic_copy);

        arrival += 1000;
        p = next ? next + SEP_LEN : end;
    }

    {
        const enpi_sparkplug_stats_t *st = enpi_sparkplug_stats(s);
        FUZZ_CHECK(st->readings == c.total, "stats.readings %llu, callbacks %zu",
                   (unsigned long long)st->readings, c.total);
        if (size & 1)
            FUZZ_CHECK(enpi_sparkplug_node_count(s) <= 2, "%zu nodes tracked, max 2",
                       enpi_sparkplug_node_count(s));
        (void)enpi_sparkplug_node_born(s, "g", "n");
    }

    /* persistence: every record the host hands out must load into a fresh host */
    opt.rebirth_cb = NULL;
    opt.death_cb = NULL;
    if (enpi_sparkplug_create(&opt, &s2) == 0) {
        import_ctx_t ic = {s2, s, 0};
        rc = enpi_sparkplug_changes(s, on_change, &ic);
        FUZZ_CHECK(rc == 0 || rc == ENPI_ENOMEM, "changes: rc %d", rc);
        FUZZ_CHECK(ic.records <= enpi_sparkplug_changes_pending(s) || rc != 0,
                   "%zu records, pending said %zu", ic.records, enpi_sparkplug_changes_pending(s));
        enpi_sparkplug_changes_done(s);
        FUZZ_CHECK(enpi_sparkplug_changes_pending(s) == 0, "changes pending after done");
        enpi_sparkplug_free(s2);
    }
    enpi_sparkplug_free(s);
    return 0;
}
