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
 * path as every decoder's. Its callbacks land here: a rebirth request is queued in the
 * outbox (a ring of ENPI_OUTBOX_MAX, oldest dropped), a death marks every configured
 * meter under the dead node's or device's id prefix (a binary search over the meters
 * sorted by id). take_batch() carries the edge nodes whose learned state changed, packed
 * into the batch's own allocation because enpi_batch_free() only knows the older fields.
 *
 * Broker redeliveries (ENPI_INGEST_REDELIVERED: MQTT DUP, after enpid or its connection
 * died with messages in flight) were normally applied already: their duplicate and late
 * readings are counted apart (stats.redelivered), so the quality counters stay exact.
 *
 * A SIGHUP reload swaps the meter table (enpi_pipeline_reconfigure): meters keep their
 * index for the pipeline's life (the accumulator and the dirty list refer to them by
 * index), removed ones stay behind as not live, added ones are appended; each meter
 * holds its own copy of its definition, so no pointer into a configuration's facilities
 * survives the call that read them.
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
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accum.h"
#include "decode.h"
#include "decode_json.h"
#include "enpi_error.h"
#include "log.h"
#include "meter.h"
#include "pipeline.h"
#include "sparkplug.h"
#include "topic.h"
#include "tz.h"
#include "window.h"

#define REJECT_LOG_BURST 10                /* reject log lines per reason per minute */
#define DAY_MIN_MS (12 * INT64_C(3600000)) /* below any local day in tzdata (17 h, Vostok 1994) */
#define MONTH_MIN_MS (28 * INT64_C(86400000) - INT64_C(3600000))

/* "spBv1.0/" group "/NCMD/" node, where group/node is shorter than a meter id */
_Static_assert(ENPI_OUTBOUND_TOPIC_MAX >= sizeof("spBv1.0//NCMD/") + ENPI_SPARKPLUG_ID_MAX,
               "outbound topics hold any rebirth request topic");
_Static_assert(ENPI_OUTBOUND_PAYLOAD_MAX >= ENPI_SPARKPLUG_REBIRTH_PAYLOAD_MAX,
               "outbound payloads hold any rebirth request");

typedef struct {
    enpi_acc_entry_t *e; /* last entry touched, valid while gen matches the accumulator's */
    uint64_t gen;
} win_cache_t;

typedef struct {
    enpi_meter_cfg_t cfg; /* a copy of the meter's definition: id owned (malloc), carrier
                             NULL; nothing points into the caller's configuration */
    const enpi_tz_t *tz;  /* the facility's zone */
    enpi_meter_state_t st;
    uint32_t index;      /* position in p->meters, stable for the pipeline's life */
    uint32_t batch_slot; /* position in the batch being built (take_batch) */
    bool dirty;          /* state changed since the last batch */
    bool live;           /* configured now; false: removed by a reconfigure (readings of
                            the id are unknown), state kept in case it comes back */
    bool fresh;          /* added by the last reconfigure, never known before, untouched
                            since: enpi_pipeline_restore_added() may load its stored state */
    win_cache_t cache[ENPI_MAX_RESOLUTIONS];
    UT_hash_handle hh; /* by id (cfg.id); live and removed meters alike */
} pmeter_t;

typedef struct {
    const enpi_input_cfg_t *cfg;
    enpi_topic_t topic;
    enpi_json_paths_t json;
    enpi_input_stats_t stats; /* messages matched and their rejects */
} pinput_t;

typedef struct {
    char *id;
    size_t id_len;
    char *topic;
    uint64_t count;
    int64_t last_seen_ms;
    UT_hash_handle hh;
} unknown_t;

struct enpi_pipeline {
    const enpi_config_t *cfg;      /* inputs and the file name; must outlive the pipeline */
    enpi_pipeline_cfg_t pcfg;      /* a copy: resolutions fixed at create, the rest
                                      replaced by enpi_pipeline_reconfigure */
    const enpi_pipeline_cfg_t *pc; /* &pcfg */
    size_t n_res;
    uint32_t res_code[ENPI_MAX_RESOLUTIONS];

    pinput_t *inputs;
    size_t n_inputs;
    const char **filters;

    enpi_tz_t **zones; /* one per distinct zone name ever used (reconfigures add) */
    size_t n_zones;
    size_t zones_cap;

    pmeter_t *meters; /* configured meters, then (after reconfigures) removed ones too */
    size_t n_meters;
    size_t n_live;   /* meters with live set */
    pmeter_t *by_id; /* uthash head over meters (find_meter sees live ones only) */
    uint32_t *dirty; /* indices of dirty meters, n_meters long */
    size_t n_dirty;

    enpi_accum_t acc;

    unknown_t *unknown; /* uthash head: unknown ids seen in this batch */
    size_t n_unknown;
    uint64_t unknown_overflow;

    uint64_t inbox_upto;
    bool inbox_moved; /* inbox_upto advanced since the last batch */

    enpi_pipeline_stats_t stats;
    _Atomic uint64_t progress; /* stats.messages, for other threads (relaxed) */
    enpi_ratelimit_t rl[ENPI_REJECT__COUNT + 1]; /* the extra one: out of memory */
    enpi_json_decoder_t *json;                   /* json and tasmota payloads */
    enpi_protobuf_decoder_t *protobuf;           /* protobuf payloads */

    /* Sparkplug B (all NULL when no input has format sparkplug) */
    enpi_sparkplug_t *sp;
    pmeter_t **sorted;       /* the live meters ascending by id (bytewise), for deaths */
    size_t n_sorted;
    enpi_outbound_t *outbox; /* ring of ENPI_OUTBOX_MAX */
    size_t outbox_head;      /* oldest */
    size_t outbox_count;
    enpi_outbound_t *outbox_out; /* what take_outbox hands out */
    uint64_t outbox_queued;
    uint64_t outbox_dropped;
    enpi_ratelimit_t sp_rl; /* log lines about rebirths and deaths */
    enpi_ratelimit_t rebase_rl; /* log lines about re-based meters */

    /* the message being ingested, for the decoders' callback */
    const char *topic;
    size_t topic_len;
    int topic_id_len; /* -1: the topic gives no usable id */
    char topic_id[ENPI_METER_ID_MAX + 1];
    int64_t arrival_ms;
    bool redelivered; /* the message carries ENPI_INGEST_REDELIVERED */
    pinput_t *in;     /* the input that matched it; NULL outside ingest and for no_input */
};

/* ---- logging ------------------------------------------------------------------------ */

static int64_t now_coarse_ms(void)
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
    if (!enpi_ratelimit_allow(&p->rl[reason], now_coarse_ms(), REJECT_LOG_BURST, &suppressed))
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
    if (enpi_ratelimit_allow(&p->rl[ENPI_REJECT__COUNT], now_coarse_ms(), REJECT_LOG_BURST,
                             &suppressed))
        log_err("pipeline: out of memory %s; reading dropped (%" PRIu64 " similar suppressed)",
                what, suppressed);
}

/* ---- meters ------------------------------------------------------------------------- */

static pmeter_t *find_meter(const enpi_pipeline_t *p, const char *id, size_t len)
{
    pmeter_t *m;

    HASH_FIND(hh, p->by_id, id, len, m);
    return m != NULL && m->live ? m : NULL;
}

static void mark_dirty(enpi_pipeline_t *p, pmeter_t *m)
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
        mark_dirty(p, m);
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
             " it re-bases the meter instead of being apportioned (%" PRIu64
             " similar suppressed)",
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
    mark_dirty(p, m);
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
    m = find_meter(p, id, id_len);
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

static int fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int open_zone(enpi_pipeline_t *p, const char *name, const enpi_tz_t **out)
{
    enpi_tz_t *tz;
    int rc;

    for (size_t i = 0; i < p->n_zones; i++) {
        if (strcmp(enpi_tz_name(p->zones[i]), name) == 0) {
            *out = p->zones[i];
            return 0;
        }
    }
    if (p->n_zones == p->zones_cap)
        return ENPI_EFULL; /* the caller sized zones for every facility */
    rc = enpi_tz_open(name, &tz);
    if (rc != 0)
        return rc;
    p->zones[p->n_zones++] = tz;
    *out = tz;
    return 0;
}

/* Does this input's format carry meter ids in its payload (so the topic need not)? */
static bool format_has_payload_ids(const enpi_input_cfg_t *in)
{
    return in->format == ENPI_FORMAT_PROTOBUF || in->format == ENPI_FORMAT_SPARKPLUG ||
           (in->format == ENPI_FORMAT_JSON && in->meter_id_path != NULL);
}

static bool format_supported(enpi_format_t f)
{
    return f == ENPI_FORMAT_JSON || f == ENPI_FORMAT_NUMBER || f == ENPI_FORMAT_PROTOBUF ||
           f == ENPI_FORMAT_TASMOTA || f == ENPI_FORMAT_SPARKPLUG;
}

static int build_inputs(enpi_pipeline_t *p, char *errbuf, size_t errlen)
{
    const enpi_config_t *cfg = p->cfg;
    char msg[256];
    int rc;

    p->inputs = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*p->inputs));
    p->filters = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof(*p->filters));
    if (p->inputs == NULL || p->filters == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        const enpi_input_cfg_t *ic = &cfg->inputs[i];
        pinput_t *in = &p->inputs[i];

        in->cfg = ic;
        p->n_inputs = i + 1;
        rc = enpi_topic_compile(&in->topic, ic->topic, ic->meter_id, msg, sizeof(msg));
        if (rc == 0 && !in->topic.id_from_topic && !format_has_payload_ids(ic)) {
            snprintf(msg, sizeof(msg),
                     "meter_id template \"%s\" uses {%s}, which topic \"%s\" does not capture",
                     ic->meter_id != NULL ? ic->meter_id : "{meter}", in->topic.missing_capture,
                     ic->topic);
            rc = ENPI_EINVAL;
        }
        if (rc == 0 && ic->format == ENPI_FORMAT_JSON)
            rc = enpi_json_paths_init(&in->json, ic->value_path, ic->timestamp_path,
                                      ic->meter_id_path, msg, sizeof(msg));
        if (rc == ENPI_ENOMEM)
            return fail(errbuf, errlen, rc, "out of memory");
        if (rc != 0)
            return fail(errbuf, errlen, rc, "%s:%d: input: %s", cfg->path ? cfg->path : "config",
                        ic->line, msg);
        p->filters[i] = in->topic.filter;
        if (!format_supported(ic->format))
            log_warn("%s:%d: input \"%s\": this payload format is not implemented yet; its "
                     "messages are rejected as parse_error",
                     cfg->path ? cfg->path : "config", ic->line, ic->topic);
    }
    return 0;
}

/* dst = *src with the id duplicated and no carrier (the arithmetic never reads it).
 * Returns 0 or ENPI_ENOMEM (dst untouched). */
static int meter_cfg_copy(enpi_meter_cfg_t *dst, const enpi_meter_cfg_t *src)
{
    char *id = strdup(src->id);

    if (id == NULL)
        return ENPI_ENOMEM;
    *dst = *src;
    dst->id = id;
    dst->carrier = NULL;
    return 0;
}

static int build_meters(enpi_pipeline_t *p, char *errbuf, size_t errlen)
{
    const enpi_config_t *cfg = p->cfg;
    size_t n = 0, k = 0;
    int rc;

    for (size_t f = 0; f < cfg->n_facilities; f++)
        n += cfg->facilities[f].n_meters;
    p->meters = calloc(n ? n : 1, sizeof(*p->meters));
    p->dirty = calloc(n ? n : 1, sizeof(*p->dirty));
    p->zones_cap = cfg->n_facilities ? cfg->n_facilities : 1;
    p->zones = calloc(p->zones_cap, sizeof(*p->zones));
    if (p->meters == NULL || p->dirty == NULL || p->zones == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t f = 0; f < cfg->n_facilities; f++) {
        const enpi_facility_cfg_t *fc = &cfg->facilities[f];
        const char *zone = enpi_config_facility_tz(cfg, fc);
        const enpi_tz_t *tz;

        rc = open_zone(p, zone != NULL ? zone : "UTC", &tz);
        if (rc == ENPI_ENOMEM)
            return fail(errbuf, errlen, rc, "out of memory");
        if (rc != 0)
            return fail(errbuf, errlen, rc, "facility %s: unknown time zone \"%s\"", fc->id, zone);
        for (size_t i = 0; i < fc->n_meters; i++) {
            const enpi_meter_cfg_t *mc = &fc->meters[i];
            size_t len = strlen(mc->id);
            pmeter_t *m = &p->meters[k];

            if (!enpi_meter_id_valid(mc->id, len))
                return fail(errbuf, errlen, ENPI_EINVAL,
                            "meter id \"%s\" is not 1..%d bytes "
                            "of printable UTF-8",
                            mc->id, ENPI_METER_ID_MAX);
            if (find_meter(p, mc->id, len) != NULL)
                return fail(errbuf, errlen, ENPI_EINVAL, "meter id \"%s\" configured twice",
                            mc->id);
            if (meter_cfg_copy(&m->cfg, mc) != 0)
                return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
            m->tz = tz;
            m->index = (uint32_t)k;
            m->live = true;
            HASH_ADD_KEYPTR(hh, p->by_id, m->cfg.id, len, m);
            p->n_meters = ++k;
            p->n_live = k;
        }
    }
    return 0;
}

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
    if (enpi_ratelimit_allow(&p->sp_rl, now_coarse_ms(), REJECT_LOG_BURST, &suppressed))
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
            mark_dirty(p, m);
        }
    }
    if (n > 0 && enpi_ratelimit_allow(&p->sp_rl, now_coarse_ms(), REJECT_LOG_BURST, &suppressed))
        log_notice("pipeline: sparkplug: %s died: %zu meter(s) stale (%" PRIu64
                   " similar suppressed)",
                   id_prefix, n, suppressed);
}

static int cmp_meter_id(const void *a, const void *b)
{
    const pmeter_t *const *x = a, *const *y = b;

    return strcmp((*x)->cfg.id, (*y)->cfg.id);
}

/* Creates the Sparkplug host, the outbox and the sorted meter index, when an input needs
 * them. Returns 0 or ENPI_ENOMEM. */
static int build_sparkplug(enpi_pipeline_t *p)
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
    qsort(p->sorted, p->n_sorted, sizeof(*p->sorted), cmp_meter_id);
    return enpi_sparkplug_create(&opt, &p->sp);
}

int enpi_pipeline_create(const enpi_config_t *cfg, enpi_pipeline_t **out, char *errbuf,
                         size_t errlen)
{
    enpi_pipeline_t *p;
    int rc;

    *out = NULL;
    if (cfg->pipeline.n_resolutions > ENPI_MAX_RESOLUTIONS)
        return fail(errbuf, errlen, ENPI_EINVAL, "more than %d resolutions", ENPI_MAX_RESOLUTIONS);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    p->cfg = cfg;
    p->pcfg = cfg->pipeline;
    p->pc = &p->pcfg;
    p->topic_id_len = -1;
    enpi_accum_init(&p->acc);
    p->acc.gen = 1; /* zeroed caches (gen 0) never match */
    for (size_t r = 0; r < cfg->pipeline.n_resolutions; r++) {
        char buf[32];
        if (!enpi_resolution_valid(&cfg->pipeline.resolutions[r])) {
            rc = fail(errbuf, errlen, ENPI_EINVAL, "resolution %s does not divide a day",
                      enpi_duration_format(&cfg->pipeline.resolutions[r], buf, sizeof(buf)));
            goto fail_pipeline;
        }
        p->res_code[r] = enpi_resolution_code(&cfg->pipeline.resolutions[r]);
    }
    p->n_res = cfg->pipeline.n_resolutions;
    rc = build_meters(p, errbuf, errlen);
    if (rc == 0)
        rc = build_inputs(p, errbuf, errlen);
    if (rc == 0 && (enpi_json_decoder_create(&p->json) != 0 ||
                    enpi_protobuf_decoder_create(&p->protobuf) != 0 || build_sparkplug(p) != 0))
        rc = fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (rc != 0)
        goto fail_pipeline;
    *out = p;
    return 0;

fail_pipeline:
    enpi_pipeline_free(p);
    return rc;
}

static void unknown_clear(enpi_pipeline_t *p)
{
    unknown_t *u, *tmp;

    HASH_ITER(hh, p->unknown, u, tmp)
    {
        HASH_DEL(p->unknown, u);
        free(u->id);
        free(u->topic);
        free(u);
    }
    p->n_unknown = 0;
    p->unknown_overflow = 0;
}

void enpi_pipeline_free(enpi_pipeline_t *p)
{
    if (p == NULL)
        return;
    unknown_clear(p);
    HASH_CLEAR(hh, p->by_id);
    for (size_t i = 0; i < p->n_meters; i++) {
        enpi_meter_state_clear(&p->meters[i].st);
        free(p->meters[i].cfg.id);
    }
    for (size_t i = 0; i < p->n_inputs; i++) {
        enpi_topic_free(&p->inputs[i].topic);
        enpi_json_paths_free(&p->inputs[i].json);
    }
    for (size_t i = 0; i < p->n_zones; i++)
        enpi_tz_free(p->zones[i]);
    enpi_accum_destroy(&p->acc);
    enpi_json_decoder_free(p->json);
    enpi_protobuf_decoder_free(p->protobuf);
    enpi_sparkplug_free(p->sp);
    free(p->sorted);
    free(p->outbox);
    free(p->outbox_out);
    free(p->meters);
    free(p->dirty);
    free(p->zones);
    free(p->inputs);
    free(p->filters);
    free(p);
}

size_t enpi_pipeline_filters(const enpi_pipeline_t *p, const char *const **filters_out)
{
    *filters_out = p->filters;
    return p->n_inputs;
}

int enpi_pipeline_restore(enpi_pipeline_t *p, const char *meter_id, const enpi_meter_state_t *st)
{
    pmeter_t *m = find_meter(p, meter_id, strlen(meter_id));
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

int enpi_pipeline_restore_sparkplug(enpi_pipeline_t *p, const char *key, const void *state,
                                    size_t state_len)
{
    if (p->sp == NULL)
        return ENPI_ENOENT;
    return enpi_sparkplug_import_node(p->sp, key, strlen(key), state, state_len);
}

/* ---- reconfigure ------------------------------------------------------------------- */

/* One meter of the new configuration while enpi_pipeline_reconfigure() prepares. */
typedef struct {
    const enpi_meter_cfg_t *mc;
    const enpi_tz_t *tz; /* its facility's zone (already open, or opened by this call) */
    bool known;          /* the pipeline has a meter of that id (live or removed) */
    bool was_live;       /* ... and it is configured now */
    uint32_t index;      /* ... at this index */
    char *id;            /* a new meter: its owned id copy */
} plan_t;

static int cmp_plan_id(const void *a, const void *b)
{
    const plan_t *const *x = a, *const *y = b;

    return strcmp((*x)->mc->id, (*y)->mc->id);
}

/* Does the arithmetic of a meter change between a and b? (ids are equal) */
static bool meter_cfg_differs(const enpi_meter_cfg_t *a, const enpi_meter_cfg_t *b)
{
    return a->kind != b->kind || a->reading != b->reading || a->interval_ms != b->interval_ms ||
           a->scale != b->scale || a->to_kwh != b->to_kwh || a->rollover != b->rollover ||
           a->max_rate != b->max_rate;
}

/* Forgets what the arithmetic compares the next reading with (lifetime counters stay):
 * the meter's next accepted reading is a first reading again. */
static void meter_rebase(enpi_meter_state_t *st)
{
    enpi_meter_state_clear(st); /* recent_ts */
    st->has_state = false;
    st->last_raw = 0;
}

/* A zone by name among the pipeline's and those opened so far by this call. */
static const enpi_tz_t *zone_lookup(const enpi_pipeline_t *p, enpi_tz_t *const *opened,
                                    size_t n_opened, const char *name)
{
    for (size_t i = 0; i < p->n_zones; i++)
        if (strcmp(enpi_tz_name(p->zones[i]), name) == 0)
            return p->zones[i];
    for (size_t i = 0; i < n_opened; i++)
        if (strcmp(enpi_tz_name(opened[i]), name) == 0)
            return opened[i];
    return NULL;
}

/*
 * The preparing half of a reconfigure: every check and every allocation. On success the
 * plan, the zones opened and the new arrays are ready and nothing in p changed.
 */
typedef struct {
    plan_t *plan;
    size_t n;
    plan_t **by_id;    /* plan entries sorted by id (duplicate check) */
    enpi_tz_t **opened; /* zones this call opened */
    size_t n_opened;
    size_t added, survivors_live, revived;
    pmeter_t *meters; /* the new meter array: p's meters, then the added ones */
    uint32_t *dirty;
    pmeter_t **sorted; /* Sparkplug only */
    enpi_tz_t **zones; /* NULL when p->zones has room for the opened ones */
} reconf_t;

static void reconf_free(reconf_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->plan[i].id);
    for (size_t i = 0; i < r->n_opened; i++)
        enpi_tz_free(r->opened[i]);
    free(r->plan);
    free(r->by_id);
    free(r->opened);
    free(r->meters);
    free(r->dirty);
    free(r->sorted);
    free(r->zones);
}

static int reconf_prepare(const enpi_pipeline_t *p, const enpi_config_t *cfg, reconf_t *r,
                          char *errbuf, size_t errlen)
{
    size_t n = 0, k = 0, total;

    for (size_t f = 0; f < cfg->n_facilities; f++)
        n += cfg->facilities[f].n_meters;
    r->plan = calloc(n ? n : 1, sizeof(*r->plan));
    r->by_id = calloc(n ? n : 1, sizeof(*r->by_id));
    r->opened = calloc(cfg->n_facilities ? cfg->n_facilities : 1, sizeof(*r->opened));
    if (r->plan == NULL || r->by_id == NULL || r->opened == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    for (size_t f = 0; f < cfg->n_facilities; f++) {
        const enpi_facility_cfg_t *fc = &cfg->facilities[f];
        const char *zone = enpi_config_facility_tz(cfg, fc);
        const enpi_tz_t *tz;

        if (zone == NULL)
            zone = "UTC";
        tz = zone_lookup(p, r->opened, r->n_opened, zone);
        if (tz == NULL) {
            int rc = enpi_tz_open(zone, &r->opened[r->n_opened]);
            if (rc == ENPI_ENOMEM)
                return fail(errbuf, errlen, rc, "out of memory");
            if (rc != 0)
                return fail(errbuf, errlen, rc, "facility %s: unknown time zone \"%s\"", fc->id,
                            zone);
            tz = r->opened[r->n_opened++];
        }
        for (size_t i = 0; i < fc->n_meters; i++) {
            const enpi_meter_cfg_t *mc = &fc->meters[i];
            size_t len = strlen(mc->id);
            plan_t *pl = &r->plan[k];
            pmeter_t *old;

            if (!enpi_meter_id_valid(mc->id, len))
                return fail(errbuf, errlen, ENPI_EINVAL,
                            "meter id \"%s\" is not 1..%d bytes of printable UTF-8", mc->id,
                            ENPI_METER_ID_MAX);
            pl->mc = mc;
            pl->tz = tz;
            HASH_FIND(hh, p->by_id, mc->id, len, old);
            pl->known = old != NULL;
            pl->was_live = old != NULL && old->live;
            pl->index = old != NULL ? old->index : 0;
            r->by_id[k] = pl;
            r->n = ++k;
            if (old == NULL) {
                if ((pl->id = strdup(mc->id)) == NULL)
                    return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
                r->added++;
            } else if (old->live) {
                r->survivors_live++;
            } else {
                r->revived++;
            }
        }
    }
    qsort(r->by_id, n, sizeof(*r->by_id), cmp_plan_id);
    for (size_t i = 1; i < n; i++)
        if (strcmp(r->by_id[i - 1]->mc->id, r->by_id[i]->mc->id) == 0)
            return fail(errbuf, errlen, ENPI_EINVAL, "meter id \"%s\" configured twice",
                        r->by_id[i]->mc->id);
    total = p->n_meters + r->added;
    if (total > UINT32_MAX)
        return fail(errbuf, errlen, ENPI_ERANGE, "too many meters");
    r->meters = calloc(total ? total : 1, sizeof(*r->meters));
    r->dirty = calloc(total ? total : 1, sizeof(*r->dirty));
    if (r->meters == NULL || r->dirty == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (p->sp != NULL && (r->sorted = calloc(n ? n : 1, sizeof(*r->sorted))) == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    if (p->n_zones + r->n_opened > p->zones_cap &&
        (r->zones = calloc(p->n_zones + r->n_opened, sizeof(*r->zones))) == NULL)
        return fail(errbuf, errlen, ENPI_ENOMEM, "out of memory");
    return 0;
}

int enpi_pipeline_reconfigure(enpi_pipeline_t *p, const enpi_config_t *cfg,
                              enpi_reconfigure_summary_t *out, char *errbuf, size_t errlen)
{
    enpi_reconfigure_summary_t sum;
    reconf_t r;
    size_t next, n_before = p->n_meters, live_before = p->n_live;
    int rc;

    memset(&sum, 0, sizeof(sum));
    memset(&r, 0, sizeof(r));
    rc = reconf_prepare(p, cfg, &r, errbuf, errlen);
    if (rc != 0) {
        reconf_free(&r);
        return rc;
    }

    /* From here on nothing can fail. Meters keep their index (the accumulator's entries
     * and the dirty list refer to meters by index); added ones go behind. */
    HASH_CLEAR(hh, p->by_id);
    memcpy(r.meters, p->meters, n_before * sizeof(*r.meters));
    memcpy(r.dirty, p->dirty, p->n_dirty * sizeof(*r.dirty));
    free(p->meters);
    free(p->dirty);
    p->meters = r.meters;
    p->dirty = r.dirty;
    r.meters = NULL;
    r.dirty = NULL;
    for (size_t i = 0; i < n_before; i++) {
        pmeter_t *m = &p->meters[i];
        m->live = false;
        m->fresh = false;
        memset(m->cache, 0, sizeof(m->cache)); /* zones may change: recompute windows */
    }
    next = n_before;
    for (size_t j = 0; j < r.n; j++) {
        plan_t *pl = &r.plan[j];
        pmeter_t *m;

        if (pl->known) {
            m = &p->meters[pl->index];
            if (meter_cfg_differs(&m->cfg, pl->mc)) {
                sum.changed++;
                if ((m->cfg.kind != pl->mc->kind || m->cfg.reading != pl->mc->reading) &&
                    m->st.has_state) {
                    meter_rebase(&m->st);
                    mark_dirty(p, m);
                    sum.rebased++;
                    log_notice("pipeline: meter %s: kind or reading type changed; its next "
                               "reading starts it afresh (no amount across the change)",
                               m->cfg.id);
                }
            }
            if (m->tz != pl->tz && pl->was_live)
                sum.zone_changed++;
            {
                char *id = m->cfg.id;
                m->cfg = *pl->mc;
                m->cfg.id = id;
                m->cfg.carrier = NULL;
            }
        } else {
            m = &p->meters[next];
            m->cfg = *pl->mc;
            m->cfg.id = pl->id;
            m->cfg.carrier = NULL;
            pl->id = NULL;
            m->index = (uint32_t)next++;
            m->fresh = true;
        }
        m->tz = pl->tz;
        m->live = true;
    }
    p->n_meters = next;
    p->n_live = r.n;
    for (size_t i = 0; i < p->n_meters; i++) {
        pmeter_t *m = &p->meters[i];
        HASH_ADD_KEYPTR(hh, p->by_id, m->cfg.id, strlen(m->cfg.id), m);
    }
    if (p->sp != NULL) {
        size_t k = 0;
        for (size_t i = 0; i < p->n_meters; i++)
            if (p->meters[i].live)
                r.sorted[k++] = &p->meters[i];
        qsort(r.sorted, k, sizeof(*r.sorted), cmp_meter_id);
        free(p->sorted);
        p->sorted = r.sorted;
        p->n_sorted = k;
        r.sorted = NULL;
    }
    if (r.zones != NULL) {
        memcpy(r.zones, p->zones, p->n_zones * sizeof(*r.zones));
        free(p->zones);
        p->zones = r.zones;
        p->zones_cap = p->n_zones + r.n_opened;
        r.zones = NULL;
    }
    memcpy(p->zones + p->n_zones, r.opened, r.n_opened * sizeof(*r.opened));
    p->n_zones += r.n_opened;
    r.n_opened = 0;
    p->pcfg.allowed_lateness_ms = cfg->pipeline.allowed_lateness_ms;
    p->pcfg.max_future_ms = cfg->pipeline.max_future_ms;
    p->pcfg.max_gap_ms = cfg->pipeline.max_gap_ms;

    sum.meters = r.n;
    sum.added = r.added;
    sum.revived = r.revived;
    sum.removed = live_before - r.survivors_live;
    reconf_free(&r);
    if (out != NULL)
        *out = sum;
    return 0;
}

int enpi_pipeline_restore_added(enpi_pipeline_t *p, const char *meter_id,
                                const enpi_meter_state_t *st)
{
    pmeter_t *m = find_meter(p, meter_id, strlen(meter_id));

    if (m == NULL || !m->fresh)
        return ENPI_ENOENT;
    return enpi_pipeline_restore(p, meter_id, st);
}

const enpi_meter_state_t *enpi_pipeline_meter_state(const enpi_pipeline_t *p, const char *meter_id)
{
    pmeter_t *m = find_meter(p, meter_id, strlen(meter_id));
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
        m = find_meter(p, p->topic_id, (size_t)p->topic_id_len);
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
    m = find_meter(p, meter_id, id_len);
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
static enpi_batch_t *batch_with_nodes(enpi_pipeline_t *p)
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
    enpi_batch_t *b = batch_with_nodes(p);
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
