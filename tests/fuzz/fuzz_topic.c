/*
 * fuzz_topic.c - libFuzzer target for topic templates (pipeline/topic.h): compile a
 * template and a meter_id template, then match topics against it and render ids.
 *
 * Input layout: byte 0 is flags (bit 0: pass NULL as the id template, i.e. the default
 * "{meter}"); the rest is split at '\n' into the topic template, the id template, then up
 * to 16 topics (a topic may be empty). The templates are C strings, so an embedded NUL
 * ends them early, as it would in the daemon.
 *
 * Each result is compared with a small independent model written here from topic.h and
 * MQTT 3.1.1 §4.7: which templates compile, the filter they become, which topics match
 * ('+' and captures take exactly one level, possibly empty; a final '#' takes the rest,
 * including nothing, so "a/#" matches "a"), the captured spans, and the rendered id,
 * including the buffer-size boundary of enpi_topic_render_id.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "fuzz_util.h"
#include "topic.h"

#define MAX_TOPICS 16
#define MAX_LEVELS 512
#define RENDER_BUF 160 /* more than any meter id (128 bytes) */

typedef struct {
    const char *p;
    size_t len;
} span_t;

/* A template or topic split at '/'; n is the count of levels (at least 1). */
typedef struct {
    span_t lv[MAX_LEVELS];
    size_t n;
} levels_t;

static bool split_levels(const char *s, size_t len, levels_t *out)
{
    size_t start = 0;

    out->n = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/')
            continue;
        if (out->n == MAX_LEVELS)
            return false;
        out->lv[out->n].p = s + start;
        out->lv[out->n].len = i - start;
        out->n++;
        start = i + 1;
    }
    return true;
}

static bool name_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_capture(span_t l)
{
    return l.len >= 2 && l.p[0] == '{' && l.p[l.len - 1] == '}';
}

static bool span_is(span_t l, const char *lit)
{
    return l.len == strlen(lit) && memcmp(l.p, lit, l.len) == 0;
}

/* The model's capture index of `name` in the template, or -1. */
static int model_capture(const levels_t *tl, const char *name, size_t len)
{
    int cap = 0;

    for (size_t i = 0; i < tl->n; i++) {
        if (!is_capture(tl->lv[i]))
            continue;
        if (tl->lv[i].len - 2 == len && memcmp(tl->lv[i].p + 1, name, len) == 0)
            return cap;
        cap++;
    }
    return -1;
}

/* topic.h's template rules: does this template compile? */
static bool model_template_ok(const levels_t *tl)
{
    size_t caps = 0;

    if (tl->n == 1 && tl->lv[0].len == 0)
        return false; /* empty template */
    for (size_t i = 0; i < tl->n; i++) {
        span_t l = tl->lv[i];
        if (span_is(l, "#")) {
            if (i + 1 != tl->n)
                return false;
        } else if (span_is(l, "+")) {
            continue;
        } else if (is_capture(l)) {
            if (!name_ok(l.p + 1, l.len - 2) || caps == ENPI_TOPIC_MAX_CAPS)
                return false;
            for (size_t j = 0; j < i; j++)
                if (is_capture(tl->lv[j]) && tl->lv[j].len == l.len &&
                    memcmp(tl->lv[j].p, l.p, l.len) == 0)
                    return false;
            caps++;
        } else if (memchr(l.p, '{', l.len) || memchr(l.p, '}', l.len) || memchr(l.p, '+', l.len) ||
                   memchr(l.p, '#', l.len)) {
            return false;
        }
    }
    return true;
}

/* The id template rules; *from_topic: every name it uses is a capture of the template. */
static bool model_id_ok(const levels_t *tl, const char *id, bool *from_topic)
{
    size_t len = strlen(id), i = 0;

    *from_topic = true;
    if (len == 0)
        return false;
    while (i < len) {
        if (id[i] == '}')
            return false;
        if (id[i] != '{') {
            i++;
            continue;
        }
        const char *close_b = memchr(id + i + 1, '}', len - i - 1);
        if (close_b == NULL)
            return false;
        size_t nlen = (size_t)(close_b - (id + i + 1));
        if (!name_ok(id + i + 1, nlen))
            return false;
        if (model_capture(tl, id + i + 1, nlen) < 0)
            *from_topic = false;
        i = (size_t)(close_b - id) + 1;
    }
    return true;
}

/* MQTT matching of a topic against the template's levels. */
static bool model_match(const levels_t *tl, const levels_t *topic)
{
    for (size_t i = 0; i < tl->n; i++) {
        span_t l = tl->lv[i];
        if (span_is(l, "#"))
            return true;
        if (i >= topic->n)
            return false;
        if (!span_is(l, "+") && !is_capture(l) &&
            (l.len != topic->lv[i].len || memcmp(l.p, topic->lv[i].p, l.len) != 0))
            return false;
    }
    return tl->n == topic->n;
}

/* The id the model renders from a matched topic; returns its length (may exceed cap,
 * in which case buf holds a prefix). */
static size_t model_render(const levels_t *tl, const levels_t *topic, const char *id, char *buf,
                           size_t cap)
{
    size_t len = strlen(id), i = 0, out = 0;

    while (i < len) {
        const char *src = id + i;
        size_t n = 1;

        if (id[i] == '{') {
            const char *close_b = memchr(id + i + 1, '}', len - i - 1);
            size_t nlen = (size_t)(close_b - (id + i + 1));
            int c = model_capture(tl, id + i + 1, nlen);
            size_t lvl = 0;

            for (int seen = -1; lvl < tl->n; lvl++)
                if (is_capture(tl->lv[lvl]) && ++seen == c)
                    break;
            src = topic->lv[lvl].p;
            n = topic->lv[lvl].len;
            i = (size_t)(close_b - id) + 1;
        } else {
            i++;
        }
        for (size_t k = 0; k < n; k++, out++)
            if (out < cap)
                buf[out] = src[k];
    }
    return out;
}

static void check_topic(const enpi_topic_t *t, const levels_t *tl, const char *id_tmpl,
                        const char *topic, size_t topic_len)
{
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];
    levels_t tp;
    char want[RENDER_BUF], got[RENDER_BUF];
    size_t want_len;
    bool match;
    int rc;

    if (!split_levels(topic, topic_len, &tp))
        return; /* more levels than the model holds */
    memset(caps, 0, sizeof(caps));
    match = enpi_topic_match(t, topic, topic_len, caps);
    FUZZ_CHECK(match == model_match(tl, &tp), "template \"%s\", topic \"%.*s\": enpi %d, model %d",
               t->filter, (int)topic_len, topic, match, !match);
    if (!match)
        return;
    for (size_t i = 0, c = 0; i < tl->n; i++) {
        if (!is_capture(tl->lv[i]))
            continue;
        FUZZ_CHECK(caps[c].p == tp.lv[i].p && caps[c].len == tp.lv[i].len,
                   "capture %zu is not level %zu of the topic", c, i);
        c++;
    }
    if (!t->id_from_topic) {
        FUZZ_CHECK(enpi_topic_render_id(t, caps, got, sizeof(got)) == -1,
                   "rendered an id the topic cannot fill");
        return;
    }
    want_len = model_render(tl, &tp, id_tmpl, want, sizeof(want));
    rc = enpi_topic_render_id(t, caps, got, sizeof(got));
    if (want_len >= sizeof(got)) {
        FUZZ_CHECK(rc == -1, "id of %zu bytes fits a %zu-byte buffer", want_len, sizeof(got));
        return;
    }
    FUZZ_CHECK(rc == (int)want_len && memcmp(got, want, want_len) == 0 && got[want_len] == '\0',
               "rendered \"%s\" (%d), model \"%.*s\" (%zu)", rc >= 0 ? got : "", rc, (int)want_len,
               want, want_len);
    /* the size boundary: exactly want_len + 1 bytes fit, one less does not */
    {
        char *exact = malloc(want_len + 1);
        FUZZ_CHECK(exact != NULL, "out of memory");
        FUZZ_CHECK(enpi_topic_render_id(t, caps, exact, want_len + 1) == (int)want_len,
                   "does not fit in len + 1");
        FUZZ_CHECK(memcmp(exact, want, want_len) == 0 && exact[want_len] == '\0', "content");
        if (want_len > 0)
            FUZZ_CHECK(enpi_topic_render_id(t, caps, exact, want_len) == -1,
                       "fits in len bytes, leaving no room for the NUL");
        free(exact);
    }
}

/* The filter the model expects: captures become '+', everything else stays. */
static void check_filter(const enpi_topic_t *t, const levels_t *tl)
{
    size_t pos = 0, flen = strlen(t->filter);

    FUZZ_CHECK(t->n_levels == tl->n, "%zu levels, model %zu", t->n_levels, tl->n);
    for (size_t i = 0; i < tl->n; i++) {
        span_t want = is_capture(tl->lv[i]) ? (span_t){"+", 1} : tl->lv[i];
        FUZZ_CHECK(pos + want.len <= flen && memcmp(t->filter + pos, want.p, want.len) == 0,
                   "filter \"%s\" level %zu", t->filter, i);
        pos += want.len;
        if (i + 1 < tl->n) {
            FUZZ_CHECK(pos < flen && t->filter[pos] == '/', "filter \"%s\" separator", t->filter);
            pos++;
        }
    }
    FUZZ_CHECK(pos == flen, "filter \"%s\" too long", t->filter);
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
    const char *lines[2 + MAX_TOPICS];
    size_t lens[2 + MAX_TOPICS], n_lines = 0, start = 1;
    char *buf, *tmpl, *id_tmpl;
    levels_t *tl;
    enpi_topic_t t;
    char err[256];
    bool want_ok, from_topic = true;
    int rc;

    if (size < 1)
        return 0;
    buf = fuzz_strndup(data, size);
    for (size_t i = 1; i <= size && n_lines < 2 + MAX_TOPICS; i++) {
        if (i < size && buf[i] != '\n')
            continue;
        buf[i] = '\0'; /* i == size writes the terminator fuzz_strndup left */
        lines[n_lines] = buf + start;
        lens[n_lines] = i - start;
        n_lines++;
        start = i + 1;
    }
    tmpl = (char *)lines[0];
    id_tmpl = (data[0] & 1) || n_lines < 2 ? NULL : (char *)lines[1];
    tl = malloc(sizeof(*tl));
    FUZZ_CHECK(tl != NULL, "out of memory");
    if (!split_levels(tmpl, strlen(tmpl), tl))
        goto free_buf;

    rc = enpi_topic_compile(&t, tmpl, id_tmpl, err, sizeof(err));
    want_ok = model_template_ok(tl) &&
              model_id_ok(tl, id_tmpl != NULL ? id_tmpl : "{meter}", &from_topic);
    if (rc == ENPI_ENOMEM)
        goto free_topic;
    FUZZ_CHECK(rc == 0 || rc == ENPI_EINVAL, "rc %d", rc);
    FUZZ_CHECK((rc == 0) == want_ok, "template \"%s\" id \"%s\": enpi %s (%s), model %s", tmpl,
               id_tmpl ? id_tmpl : "(default)", rc == 0 ? "ok" : "refuses", err,
               want_ok ? "ok" : "refuses");
    if (rc != 0) {
        FUZZ_CHECK(err[0] != '\0', "refused without a message");
        goto free_topic;
    }
    FUZZ_CHECK(t.id_from_topic == from_topic, "id_from_topic %d", t.id_from_topic);
    FUZZ_CHECK(t.id_from_topic || t.missing_capture != NULL, "no missing_capture named");
    check_filter(&t, tl);
    for (size_t i = 2; i < n_lines; i++)
        check_topic(&t, tl, id_tmpl != NULL ? id_tmpl : "{meter}", lines[i], lens[i]);

free_topic:
    enpi_topic_free(&t);
free_buf:
    free(tl);
    free(buf);
    return 0;
}
