/*
 * pipeline.c - the aggregation core's orchestration: a message's topic is matched to an
 * input, its payload decoded into raw readings, each reading's meter looked up and its
 * timestamp resolved, the meter arithmetic evaluated (meter.c), and the resulting amount
 * apportioned into rollup increments of every configured resolution (accum.c) in the
 * facility's zone. take_batch() hands everything accumulated since the previous batch to
 * storage as one self-contained value.
 *
 * Reject order for one reading (the first that applies wins): parse_error (message or
 * element), bad_meter_id, unknown_meter, missing_value, not_finite, bad_timestamp, then
 * meter.c's negative, too_old, future, too_late, implausible. Once the meter is known a
 * reject also counts in its state (state.rejected), so `enpi meters` can show it.
 *
 * Sparkplug B inputs go to the host state of sparkplug.c, whose readings take the same
 * path as every decoder's; its callbacks, the outbox and the node state carried in
 * batches are pipeline_sparkplug.c's.
 *
 * Broker redeliveries (ENPI_INGEST_REDELIVERED: MQTT DUP, after enpid or its connection
 * died with messages in flight) were normally applied already: their duplicate and late
 * readings are counted apart (stats.redelivered), so the quality counters stay exact.
 *
 * Creating and freeing a pipeline is pipeline_create.c's; a SIGHUP reload
 * (enpi_pipeline_reconfigure) is pipeline_reconfigure.c's. The shared inside of
 * enpi_pipeline_t is in pipeline_int.h.
 *
 * Hot path: no allocation per message. Meters are found by id in a hash; each meter
 * caches, per resolution, the batch entry of the window it last touched, so a reading
 * inside the same window costs no zone arithmetic and no hash lookup.
 *
 * DESIGN: single-threaded (the loop thread); batches, once taken, belong to the caller.
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
#include "window.h"

#define DAY_MIN_MS (12 * INT64_C(3600000)) /* below any local day in tzdata (17 h, Vostok 1994) */
#define MONTH_MIN_MS (28 * INT64_C(86400000) - INT64_C(3600000))

/* ---- logging ------------------------------------------------------------------------ */

int64_t enpi_pipeline_now_coarse_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Copies untrusted bytes for a log line: controls become '?', long input is cut. */
static const char *printable(char *dst, size_t cap, const char *src, size_t len)
{
    size_t n = 0;

    if (src == NULL)
        return "-";
    for (size_t i = 0; i < len && n + 4 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[n++] = (c < 0x20 || c == 0x7F || c == '"') ? '?' : (char)c;
    }
    if (n + 4 >= cap && len > n) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
    return dst;
}

static void log_reject(enpi_pipeline_t *p, enpi_reject_t reason, const char *id, size_t id_len)
{
    uint64_t suppressed = 0;
    char tbuf[160], ibuf[160], sbuf[48] = "";

    if (ENPI_LOG_WARNING > enpi_log_max_level)
        return;
    if (!enpi_ratelimit_allow(&p->rl[reason], enpi_pipeline_now_coarse_ms(), REJECT_LOG_BURST,
                              &suppressed))
        return;
    if (suppressed > 0)
        snprintf(sbuf, sizeof(sbuf), " (%" PRIu64 " similar suppressed)", suppressed);
    log_warn("pipeline: rejected %s: topic \"%s\" meter \"%s\"%s", enpi_reject_name(reason),
             printable(tbuf, sizeof(tbuf), p->topic, p->topic_len),
             printable(ibuf, sizeof(ibuf), id, id_len), sbuf);
}

static void log_nomem(enpi_pipeline_t *p, const char *what)
{
    uint64_t suppressed = 0;

    p->stats.nomem++;
    if (enpi_ratelimit_allow(&p->rl[ENPI_REJECT__COUNT], enpi_pipeline_now_coarse_ms(),
                             REJECT_LOG_BURST, &suppressed))
        log_err("pipeline: out of memory %s; reading dropped (%" PRIu64 " similar suppressed)",
                what, suppressed);
}

/* ---- meters ------------------------------------------------------------------------- */

pmeter_t *enpi_pipeline_find_indexed(const enpi_hindex_t *ix, const char *id, size_t len)
{
    uint32_t h = enpi_hindex_hash(id, len);
    size_t pos = enpi_hindex_home(ix, h);

    for (pmeter_t *m; (m = enpi_hindex_next(ix, h, &pos)) != NULL;)
        if (m->id_len == len && memcmp(m->cfg.id, id, len) == 0)
            return m;
    return NULL;
}

pmeter_t *enpi_pipeline_find_meter(const enpi_pipeline_t *p, const char *id, size_t len)
{
    pmeter_t *m = enpi_pipeline_find_indexed(&p->by_id, id, len);

    return m != NULL && m->live ? m : NULL;
}

int enpi_pipeline_index_meter(enpi_hindex_t *ix, pmeter_t *m)
{
    m->id_len = strlen(m->cfg.id);
    return enpi_hindex_insert(ix, enpi_hindex_hash(m->cfg.id, m->id_len), m);
}

void enpi_pipeline_mark_dirty(enpi_pipeline_t *p, pmeter_t *m)
{
    m->fresh = false; /* its state is the pipeline's own now */
    if (!m->dirty) {
        m->dirty = true;
        p->dirty[p->n_dirty++] = m->index;
    }
}

/* Counts a reject globally and against the input of the message being ingested. */
static void count_reject(enpi_pipeline_t *p, enpi_reject_t reason)
{
    p->stats.rejects[reason]++;
    if (p->in != NULL)
        p->in->stats.rejects[reason]++;
}

/* A reject before the arithmetic, of a reading whose meter may be known (m may be NULL). */
static void reject_reading(enpi_pipeline_t *p, pmeter_t *m, enpi_reject_t reason, const char *id,
                           size_t id_len)
{
    count_reject(p, reason);
    if (m != NULL) {
        m->st.rejected++;
        enpi_pipeline_mark_dirty(p, m);
    }
    log_reject(p, reason, id, id_len);
}

static void unknown_seen(enpi_pipeline_t *p, const char *id, size_t len)
{
    const char *topic = p->topic != NULL ? p->topic : "";
    size_t topic_len = p->topic != NULL ? p->topic_len : 0;
    unknown_t *u;

    HASH_FIND(hh, p->unknown, id, len, u);
    if (u == NULL) {
        if (p->n_unknown >= ENPI_UNKNOWN_MAX) {
            p->unknown_overflow++;
            return;
        }
        u = calloc(1, sizeof(*u));
        if (u == NULL || (u->id = strndup(id, len)) == NULL ||
            (u->topic = strndup(topic, topic_len)) == NULL) {
            if (u != NULL)
                free(u->id);
            free(u);
            p->unknown_overflow++;
            return;
        }
        u->id_len = len;
        HASH_ADD_KEYPTR(hh, p->unknown, u->id, len, u);
        if (u->hh.tbl == NULL) {
            free(u->id);
            free(u->topic);
            free(u);
            p->unknown_overflow++;
            return;
        }
        p->n_unknown++;
    }
    u->count++;
    u->last_seen_ms = p->arrival_ms;
    if (strlen(u->topic) != topic_len || memcmp(u->topic, topic, topic_len) != 0) {
        char *t = strndup(topic, topic_len);
        if (t != NULL) {
            free(u->topic);
            u->topic = t;
        }
    }
}

/* ---- apportioning ------------------------------------------------------------------- */

/* The batch entry of the window of resolution r containing t (reserved beforehand). */
static enpi_acc_entry_t *window_entry(enpi_pipeline_t *p, pmeter_t *m, size_t r, int64_t t)
{
    win_cache_t *c = &m->cache[r];
    enpi_window_t w;

    if (c->gen == p->acc.gen && c->e != NULL && c->e->key.start <= t && t < c->e->end)
        return c->e;
    w = enpi_window_containing(m->tz, &p->pc->resolutions[r], t);
    c->e = enpi_accum_get(&p->acc, m->index, (uint32_t)r, w);
    c->gen = p->acc.gen;
    return c->e;
}

/* An upper bound of the windows [from, to] overlaps, summed over resolutions, plus one
 * per resolution for the counters' window. */
static size_t windows_bound(const enpi_pipeline_t *p, int64_t from, int64_t to)
{
    uint64_t span = (uint64_t)(to - from), n = 0;

    for (size_t r = 0; r < p->n_res; r++) {
        const enpi_duration_t *res = &p->pc->resolutions[r];
        if (res->months > 0)
            n += span / (uint64_t)MONTH_MIN_MS + 3;
        else /* each day boundary may clip one window short */
            n += span / (uint64_t)res->ms + span / (uint64_t)DAY_MIN_MS + 5;
    }
    return n > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)n;
}

/*
 * Spreads step->value over [from, to]: window w of every resolution receives
 * value x |w ∩ [from, to]| / (to - from), computed from the overlap itself so the shares
 * add up to the value to rounding; the estimated part likewise when the step is.
 */
static void spread(enpi_pipeline_t *p, pmeter_t *m, const enpi_step_t *step)
{
    double span = (double)(step->to - step->from);

    for (size_t r = 0; r < p->n_res; r++) {
        enpi_acc_entry_t *e = window_entry(p, m, r, step->from);

        for (;;) {
            int64_t lo = e->key.start > step->from ? e->key.start : step->from;
            int64_t hi = e->end < step->to ? e->end : step->to;
            double share = step->value * ((double)(hi - lo) / span);
            enpi_window_t w;

            e->r.value += share;
            if (step->estimated)
                e->r.estimated += share;
            if (e->end >= step->to)
                break;
            w.start = e->key.start;
            w.end = e->end;
            w = enpi_window_next(m->tz, &p->pc->resolutions[r], w);
            e = enpi_accum_get(&p->acc, m->index, (uint32_t)r, w);
        }
        m->cache[r].e = e;
        m->cache[r].gen = p->acc.gen;
    }
}

static void count_in_window(enpi_pipeline_t *p, pmeter_t *m, int64_t ts, const enpi_step_t *step)
{
    if (step->readings == 0 && step->late == 0 && step->duplicates == 0 && step->resets == 0)
        return;
    for (size_t r = 0; r < p->n_res; r++) {
        enpi_acc_entry_t *e = window_entry(p, m, r, ts);
        e->r.readings += step->readings;
        e->r.late += step->late;
        e->r.duplicates += step->duplicates;
        e->r.resets += step->resets;
    }
}

/* A reading that re-bases its meter (SPEC §5 would spread it over more than 400 days, see
 * meter.h) is legitimate but worth an operator's look: a clock that jumped, or a meter
 * back after more than a year. Logged at the reject rate limit. */
static void log_rebased(enpi_pipeline_t *p, const pmeter_t *m, int64_t ts)
{
    uint64_t suppressed;
    if (!enpi_ratelimit_allow(&p->rebase_rl, p->arrival_ms, REJECT_LOG_BURST, &suppressed))
        return;
    log_warn("meter %s: reading at %" PRId64 " ms is more than 400 days after the previous one;"
             " it re-bases the meter instead of being apportioned (%" PRIu64 " similar suppressed)",
             m->cfg.id, ts, suppressed);
}

/*
 * Evaluates and applies one reading of a known meter. Returns 0 accepted, 1 ignored
 * (duplicate, late cumulative), -1 rejected (*reason set; ENPI_REJECT__COUNT when memory
 * ran out and nothing changed). An ignored (or too late) reading of a broker redelivery
 * is the echo of one handled before the crash or reconnect, not a fault of the meter: it
 * counts in stats.redelivered only and leaves the meter's state and windows untouched.
 */
static int apply_reading(enpi_pipeline_t *p, pmeter_t *m, int64_t ts, double raw,
                         enpi_reject_t *reason)
{
    enpi_step_t step;
    size_t need = p->n_res;

    enpi_meter_evaluate(&m->cfg, p->pc, &m->st, ts, raw, p->arrival_ms, &step);
    /* A redelivered delta reading beyond allowed_lateness is the echo of one handled when
     * it first came (applied then, or counted too late then): not a new fault. */
    bool echo_too_late = step.kind == ENPI_STEP_REJECT && step.reason == ENPI_REJECT_TOO_LATE;
    if ((step.kind == ENPI_STEP_IGNORED || echo_too_late) && p->redelivered) {
        p->stats.redelivered++;
        return 1;
    }
    if (step.kind == ENPI_STEP_APPLY)
        need = windows_bound(p, step.from, step.to);
    if (enpi_accum_reserve(&p->acc, need) != 0 ||
        enpi_meter_commit(&m->cfg, p->pc, &m->st, ts, raw, &step) != 0) {
        log_nomem(p, "applying a reading");
        *reason = ENPI_REJECT__COUNT;
        return -1;
    }
    enpi_pipeline_mark_dirty(p, m);
    if (step.kind == ENPI_STEP_APPLY)
        spread(p, m, &step);
    count_in_window(p, m, ts, &step);
    p->stats.late += step.late && step.kind != ENPI_STEP_REJECT;
    p->stats.duplicates += step.duplicates;
    p->stats.resets += step.resets;
    if (step.rebased) {
        p->stats.rebased++;
        log_rebased(p, m, ts);
    }
    switch (step.kind) {
    case ENPI_STEP_REJECT:
        count_reject(p, step.reason);
        log_reject(p, step.reason, m->cfg.id, strlen(m->cfg.id));
        *reason = step.reason;
        return -1;
    case ENPI_STEP_IGNORED:
        return 1;
    case ENPI_STEP_STATE_ONLY:
    case ENPI_STEP_APPLY:
        break;
    }
    m->st.dead_since_ms = 0; /* a Sparkplug node that died is back */
    p->stats.applied++;
    return 0;
}

/* ---- readings from decoders --------------------------------------------------------- */

/* Milliseconds from a decoded number, clamped far outside the accepted range so the
 * too_old/future checks see it without overflowing int64. */
static int64_t ms_from_double(double ms)
{
    const double bound = 4e15; /* about the year 128,000 */

    if (ms < -bound)
        return (int64_t)-bound;
    if (ms > bound)
        return (int64_t)bound;
    return llround(ms);
}

static void on_reading(void *ctx, const enpi_raw_reading_t *r)
{
    enpi_pipeline_t *p = ctx;
    const char *id;
    size_t id_len;
    pmeter_t *m;
    int64_t ts;
    enpi_reject_t reason;

    p->stats.readings++;
    if (r->malformed) {
        reject_reading(p, NULL, ENPI_REJECT_PARSE, NULL, 0);
        return;
    }
    if (r->id != NULL) {
        id = r->id;
        id_len = r->id_len;
    } else {
        id = p->topic_id_len >= 0 ? p->topic_id : NULL;
        id_len = p->topic_id_len >= 0 ? (size_t)p->topic_id_len : 0;
    }
    if (r->id_invalid || id == NULL || !enpi_meter_id_valid(id, id_len)) {
        reject_reading(p, NULL, ENPI_REJECT_BAD_METER_ID, id, id_len);
        return;
    }
    m = enpi_pipeline_find_meter(p, id, id_len);
    if (m == NULL) {
        unknown_seen(p, id, id_len);
        reject_reading(p, NULL, ENPI_REJECT_UNKNOWN_METER, id, id_len);
        return;
    }
    if (r->value_kind != ENPI_VALUE_OK) {
        reject_reading(p, m,
                       r->value_kind == ENPI_VALUE_MISSING ? ENPI_REJECT_MISSING_VALUE
                                                           : ENPI_REJECT_NOT_FINITE,
                       id, id_len);
        return;
    }
    switch (r->ts_kind) {
    case ENPI_TS_ARRIVAL:
        ts = p->arrival_ms;
        break;
    case ENPI_TS_EPOCH_MS:
        ts = ms_from_double(r->ts_ms);
        break;
    case ENPI_TS_CIVIL:
        ts = enpi_tz_from_civil(m->tz, &r->civil);
        break;
    case ENPI_TS_INVALID:
    default:
        reject_reading(p, m, ENPI_REJECT_BAD_TIMESTAMP, id, id_len);
        return;
    }
    apply_reading(p, m, ts, r->value, &reason);
}

/* ---- public ------------------------------------------------------------------------- */

size_t enpi_pipeline_filters(const enpi_pipeline_t *p, const char *const **filters_out)
{
    *filters_out = p->filters;
    return p->n_inputs;
}

int enpi_pipeline_restore(enpi_pipeline_t *p, const char *meter_id, const enpi_meter_state_t *st)
{
    pmeter_t *m = enpi_pipeline_find_meter(p, meter_id, strlen(meter_id));
    enpi_meter_state_t copy;
    int rc;

    if (m == NULL)
        return ENPI_ENOENT;
    rc = enpi_meter_state_copy(&copy, st);
    if (rc != 0)
        return rc;
    enpi_meter_state_clear(&m->st);
    m->st = copy;
    return 0;
}

const enpi_meter_state_t *enpi_pipeline_meter_state(const enpi_pipeline_t *p, const char *meter_id)
{
    pmeter_t *m = enpi_pipeline_find_meter(p, meter_id, strlen(meter_id));
    return m != NULL ? &m->st : NULL;
}

/* The first input whose template matches, or NULL; fills caps. */
static pinput_t *match_input(const enpi_pipeline_t *p, const char *topic, size_t len,
                             enpi_span_t *caps)
{
    for (size_t i = 0; i < p->n_inputs; i++)
        if (enpi_topic_match(&p->inputs[i].topic, topic, len, caps))
            return &p->inputs[i];
    return NULL;
}

/* A reject of a whole message, counted against the topic's meter when there is one. */
static void reject_message(enpi_pipeline_t *p, enpi_reject_t reason)
{
    pmeter_t *m = NULL;

    if (p->topic_id_len >= 0)
        m = enpi_pipeline_find_meter(p, p->topic_id, (size_t)p->topic_id_len);
    reject_reading(p, m, reason, p->topic_id_len >= 0 ? p->topic_id : NULL,
                   p->topic_id_len >= 0 ? (size_t)p->topic_id_len : 0);
}

void enpi_pipeline_ingest(enpi_pipeline_t *p, uint64_t seq, const char *topic, size_t topic_len,
                          const void *payload, size_t payload_len, int64_t arrival_ms,
                          unsigned flags)
{
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];
    pinput_t *in;
    int rc;

    p->stats.messages++;
    atomic_store_explicit(&p->progress, p->stats.messages, memory_order_relaxed);
    if (seq + 1 > p->inbox_upto) {
        p->inbox_upto = seq + 1;
        p->inbox_moved = true;
    }
    p->topic = topic;
    p->topic_len = topic_len;
    p->topic_id_len = -1;
    p->arrival_ms = arrival_ms;
    p->redelivered = (flags & ENPI_INGEST_REDELIVERED) != 0;
    in = match_input(p, topic, topic_len, caps);
    if (in == NULL) {
        reject_message(p, ENPI_REJECT_NO_INPUT);
        goto done;
    }
    p->in = in;
    in->stats.messages++;
    p->topic_id_len = enpi_topic_render_id(&in->topic, caps, p->topic_id, sizeof(p->topic_id));
    if (payload_len > ENPI_PAYLOAD_MAX) {
        reject_message(p, ENPI_REJECT_TOO_LARGE);
        goto done;
    }
    switch (in->cfg->format) {
    case ENPI_FORMAT_JSON:
        rc = enpi_json_decode(p->json, &in->json, payload, payload_len, on_reading, p);
        break;
    case ENPI_FORMAT_NUMBER:
        rc = enpi_number_decode(payload, payload_len, on_reading, p);
        break;
    case ENPI_FORMAT_PROTOBUF:
        rc = enpi_protobuf_decode(p->protobuf, payload, payload_len, on_reading, p);
        break;
    case ENPI_FORMAT_TASMOTA:
        rc = enpi_tasmota_decode(p->json, payload, payload_len, on_reading, p);
        break;
    case ENPI_FORMAT_SPARKPLUG:
        rc = enpi_sparkplug_ingest(p->sp, topic, topic_len, payload, payload_len, arrival_ms,
                                   on_reading, p);
        if (rc == ENPI_EINVAL) { /* group/node/device ids too long to make meter ids */
            reject_message(p, ENPI_REJECT_BAD_METER_ID);
            goto done;
        }
        break;
    default: /* decoders to come plug in here */
        rc = ENPI_EPARSE;
        break;
    }
    if (rc == ENPI_ENOMEM)
        log_nomem(p, "decoding a payload");
    else if (rc != 0)
        reject_message(p, ENPI_REJECT_PARSE);
done:
    p->topic = NULL;
    p->topic_len = 0;
    p->topic_id_len = -1;
    p->in = NULL;
    p->redelivered = false; /* enpi_pipeline_apply() readings are never redeliveries */
}

int enpi_pipeline_apply(enpi_pipeline_t *p, const char *meter_id, size_t id_len, int64_t ts_ms,
                        double raw_value, int64_t arrival_ms, enpi_reject_t *reason)
{
    enpi_reject_t ignored;
    pmeter_t *m;

    if (reason == NULL)
        reason = &ignored;
    p->arrival_ms = arrival_ms;
    p->stats.readings++;
    if (!enpi_meter_id_valid(meter_id, id_len)) {
        reject_reading(p, NULL, ENPI_REJECT_BAD_METER_ID, meter_id, id_len);
        *reason = ENPI_REJECT_BAD_METER_ID;
        return -1;
    }
    m = enpi_pipeline_find_meter(p, meter_id, id_len);
    if (m == NULL) {
        unknown_seen(p, meter_id, id_len);
        reject_reading(p, NULL, ENPI_REJECT_UNKNOWN_METER, meter_id, id_len);
        *reason = ENPI_REJECT_UNKNOWN_METER;
        return -1;
    }
    return apply_reading(p, m, ts_ms, raw_value, reason);
}

bool enpi_pipeline_dirty(const enpi_pipeline_t *p)
{
    return p->n_dirty > 0 || p->acc.count > 0 || p->n_unknown > 0 || p->unknown_overflow > 0 ||
           p->inbox_moved || (p->sp != NULL && enpi_sparkplug_changes_pending(p->sp) > 0);
}

size_t enpi_pipeline_pending(const enpi_pipeline_t *p)
{
    return p->acc.count;
}

uint64_t enpi_pipeline_progress(const enpi_pipeline_t *p)
{
    return atomic_load_explicit(&p->progress, memory_order_relaxed);
}

const enpi_pipeline_stats_t *enpi_pipeline_stats(const enpi_pipeline_t *p)
{
    return &p->stats;
}

size_t enpi_pipeline_n_inputs(const enpi_pipeline_t *p)
{
    return p->n_inputs;
}

int enpi_pipeline_input_stats(const enpi_pipeline_t *p, size_t input, enpi_input_stats_t *out)
{
    if (input >= p->n_inputs)
        return ENPI_ERANGE;
    *out = p->inputs[input].stats;
    return 0;
}

/* Fills the meter snapshots; on failure frees what it made. */
static int snapshot_meters(enpi_pipeline_t *p, enpi_batch_t *b)
{
    for (size_t i = 0; i < p->n_dirty; i++) {
        pmeter_t *m = &p->meters[p->dirty[i]];
        enpi_meter_snapshot_t *s = &b->meters[i];

        enpi_meter_prune(p->pc, &m->st);
        s->meter_id = strdup(m->cfg.id);
        if (s->meter_id == NULL || enpi_meter_state_copy(&s->state, &m->st) != 0) {
            free(s->meter_id);
            s->meter_id = NULL;
            return ENPI_ENOMEM;
        }
        b->n_meters = i + 1;
        m->batch_slot = (uint32_t)i;
    }
    return 0;
}

int enpi_pipeline_take_batch(enpi_pipeline_t *p, enpi_batch_t **out)
{
    enpi_batch_t *b = enpi_pipeline_batch_with_nodes(p);
    enpi_acc_entry_t *e;
    unknown_t *u, *tmp;
    size_t k = 0;

    *out = NULL;
    if (b == NULL)
        return ENPI_ENOMEM;
    if ((p->n_dirty > 0 && (b->meters = calloc(p->n_dirty, sizeof(*b->meters))) == NULL) ||
        (p->acc.count > 0 && (b->rollups = calloc(p->acc.count, sizeof(*b->rollups))) == NULL) ||
        (p->n_unknown > 0 && (b->unknown = calloc(p->n_unknown, sizeof(*b->unknown))) == NULL) ||
        snapshot_meters(p, b) != 0) {
        enpi_batch_free(b);
        return ENPI_ENOMEM;
    }
    /* From here on nothing can fail: move the increments and the unknown table over. */
    for (e = enpi_accum_first(&p->acc); e != NULL; e = enpi_accum_next(e)) {
        enpi_rollup_delta_t *d = &b->rollups[k++];
        d->meter = p->meters[e->key.meter].batch_slot;
        d->res_code = p->res_code[e->key.res];
        d->start = e->key.start;
        d->end = e->end;
        d->delta = e->r;
    }
    b->n_rollups = k;
    k = 0;
    HASH_ITER(hh, p->unknown, u, tmp)
    {
        enpi_unknown_delta_t *d = &b->unknown[k++];
        HASH_DEL(p->unknown, u);
        d->meter_id = u->id;
        d->last_topic = u->topic;
        d->count = u->count;
        d->last_seen_ms = u->last_seen_ms;
        free(u);
    }
    b->n_unknown = k;
    b->unknown_overflow = p->unknown_overflow;
    b->inbox_upto = p->inbox_upto;

    enpi_accum_reset(&p->acc);
    for (size_t i = 0; i < p->n_dirty; i++)
        p->meters[p->dirty[i]].dirty = false;
    p->n_dirty = 0;
    p->n_unknown = 0;
    p->unknown_overflow = 0;
    p->inbox_moved = false;
    if (p->sp != NULL)
        enpi_sparkplug_changes_done(p->sp);
    *out = b;
    return 0;
}
