/*
 * topic.c - compiling and matching input topic templates; rendering meter ids from
 * captures. See topic.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "topic.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ENPI_EINVAL;
}

static bool capture_name_ok(const char *s, size_t len)
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

static int find_capture(const enpi_topic_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n_levels; i++) {
        const enpi_topic_level_t *l = &t->levels[i];
        if (l->kind == ENPI_LEVEL_CAPTURE && l->len == len && memcmp(l->text, name, len) == 0)
            return l->cap;
    }
    return -1;
}

static int compile_levels(enpi_topic_t *t, const char *topic, char *err, size_t errlen)
{
    size_t len = strlen(topic), n = 1, pos = 0, flen = 0;

    if (len == 0)
        return fail(err, errlen, "topic template is empty");
    for (size_t i = 0; i < len; i++)
        n += topic[i] == '/';
    t->levels = calloc(n, sizeof(*t->levels));
    t->filter = malloc(len + 1);
    if (t->levels == NULL || t->filter == NULL)
        return ENPI_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *lv = topic + pos, *slash = memchr(lv, '/', len - pos);
        size_t lvlen = slash != NULL ? (size_t)(slash - lv) : len - pos;
        enpi_topic_level_t *l = &t->levels[i];

        t->n_levels = i + 1;
        if (lvlen == 1 && lv[0] == '#') {
            if (i + 1 != n)
                return fail(err, errlen, "topic template \"%s\": '#' must be the last level",
                            topic);
            l->kind = ENPI_LEVEL_HASH;
        } else if (lvlen == 1 && lv[0] == '+') {
            l->kind = ENPI_LEVEL_PLUS;
        } else if (lvlen >= 2 && lv[0] == '{' && lv[lvlen - 1] == '}') {
            if (!capture_name_ok(lv + 1, lvlen - 2))
                return fail(err, errlen, "topic template \"%s\": bad capture name \"%.*s\"", topic,
                            (int)lvlen, lv);
            if (find_capture(t, lv + 1, lvlen - 2) >= 0)
                return fail(err, errlen, "topic template \"%s\": capture \"%.*s\" repeated", topic,
                            (int)lvlen, lv);
            if (t->n_caps == ENPI_TOPIC_MAX_CAPS)
                return fail(err, errlen, "topic template \"%s\": more than %d captures", topic,
                            ENPI_TOPIC_MAX_CAPS);
            l->kind = ENPI_LEVEL_CAPTURE;
            l->cap = (int)t->n_caps++;
            l->text = strndup(lv + 1, lvlen - 2);
            l->len = lvlen - 2;
            if (l->text == NULL)
                return ENPI_ENOMEM;
        } else {
            if (memchr(lv, '{', lvlen) || memchr(lv, '}', lvlen) || memchr(lv, '+', lvlen) ||
                memchr(lv, '#', lvlen))
                return fail(err, errlen,
                            "topic template \"%s\": level \"%.*s\" mixes text with '{}', '+' "
                            "or '#' (a capture must be a whole level)",
                            topic, (int)lvlen, lv);
            l->kind = ENPI_LEVEL_LITERAL;
            l->text = strndup(lv, lvlen);
            l->len = lvlen;
            if (l->text == NULL)
                return ENPI_ENOMEM;
        }
        if (i > 0)
            t->filter[flen++] = '/';
        if (l->kind == ENPI_LEVEL_LITERAL) {
            memcpy(t->filter + flen, lv, lvlen);
            flen += lvlen;
        } else {
            t->filter[flen++] = l->kind == ENPI_LEVEL_HASH ? '#' : '+';
        }
        pos += lvlen + 1;
    }
    t->filter[flen] = '\0';
    return 0;
}

static int add_id_part(enpi_topic_t *t, int cap, const char *text, size_t len)
{
    enpi_id_part_t *part = &t->id_parts[t->n_id_parts];

    part->cap = cap;
    if (cap < 0) {
        part->text = strndup(text, len);
        part->len = len;
        if (part->text == NULL)
            return ENPI_ENOMEM;
    }
    t->n_id_parts++;
    return 0;
}

static int compile_id(enpi_topic_t *t, const char *tmpl, char *err, size_t errlen)
{
    size_t len = strlen(tmpl), pos = 0;
    int rc;

    if (len == 0)
        return fail(err, errlen, "meter_id template is empty");
    /* at most one part per byte */
    t->id_parts = calloc(len, sizeof(*t->id_parts));
    if (t->id_parts == NULL)
        return ENPI_ENOMEM;
    t->id_from_topic = true;
    while (pos < len) {
        const char *open = memchr(tmpl + pos, '{', len - pos);
        const char *close_b = memchr(tmpl + pos, '}', len - pos);
        size_t lit = open != NULL ? (size_t)(open - (tmpl + pos)) : len - pos;

        if (close_b != NULL && (open == NULL || close_b < open))
            return fail(err, errlen, "meter_id template \"%s\": '}' without '{'", tmpl);
        if (lit > 0) {
            rc = add_id_part(t, -1, tmpl + pos, lit);
            if (rc != 0)
                return rc;
            pos += lit;
        }
        if (open != NULL) {
            const char *name = open + 1, *end = memchr(name, '}', len - (size_t)(name - tmpl));
            size_t nlen;
            int cap;

            if (end == NULL)
                return fail(err, errlen, "meter_id template \"%s\": '{' without '}'", tmpl);
            nlen = (size_t)(end - name);
            if (!capture_name_ok(name, nlen))
                return fail(err, errlen, "meter_id template \"%s\": bad capture name \"{%.*s}\"",
                            tmpl, (int)nlen, name);
            cap = find_capture(t, name, nlen);
            if (cap < 0 && t->id_from_topic) {
                t->id_from_topic = false;
                t->missing_capture = strndup(name, nlen);
                if (t->missing_capture == NULL)
                    return ENPI_ENOMEM;
            }
            rc = add_id_part(t, cap < 0 ? 0 : cap, NULL, 0);
            if (rc != 0)
                return rc;
            pos = (size_t)(end + 1 - tmpl);
        }
    }
    return 0;
}

int enpi_topic_compile(enpi_topic_t *t, const char *topic, const char *id_template, char *err,
                       size_t errlen)
{
    int rc;

    memset(t, 0, sizeof(*t));
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    rc = compile_levels(t, topic, err, errlen);
    if (rc != 0)
        return rc;
    return compile_id(t, id_template != NULL ? id_template : "{meter}", err, errlen);
}

void enpi_topic_free(enpi_topic_t *t)
{
    for (size_t i = 0; i < t->n_levels; i++)
        free(t->levels[i].text);
    for (size_t i = 0; i < t->n_id_parts; i++)
        free(t->id_parts[i].text);
    free(t->levels);
    free(t->id_parts);
    free(t->filter);
    free(t->missing_capture);
    memset(t, 0, sizeof(*t));
}

bool enpi_topic_match(const enpi_topic_t *t, const char *topic, size_t len, enpi_span_t *caps)
{
    size_t pos = 0; /* start of the next level; len + 1 once every level is consumed */

    for (size_t i = 0; i < t->n_levels; i++) {
        const enpi_topic_level_t *l = &t->levels[i];
        const char *slash;
        size_t lvlen;

        if (l->kind == ENPI_LEVEL_HASH)
            return true; /* "a/#" matches "a" and everything below it */
        if (pos > len)
            return false; /* the topic has fewer levels */
        slash = memchr(topic + pos, '/', len - pos);
        lvlen = slash != NULL ? (size_t)(slash - (topic + pos)) : len - pos;
        switch (l->kind) {
        case ENPI_LEVEL_LITERAL:
            if (lvlen != l->len || memcmp(topic + pos, l->text, lvlen) != 0)
                return false;
            break;
        case ENPI_LEVEL_CAPTURE:
            caps[l->cap].p = topic + pos;
            caps[l->cap].len = lvlen;
            break;
        case ENPI_LEVEL_PLUS:
        case ENPI_LEVEL_HASH:
            break;
        }
        pos += lvlen + 1;
    }
    return pos == len + 1;
}

int enpi_topic_render_id(const enpi_topic_t *t, const enpi_span_t *caps, char *buf, size_t n)
{
    size_t out = 0;

    if (!t->id_from_topic || n == 0)
        return -1;
    for (size_t i = 0; i < t->n_id_parts; i++) {
        const enpi_id_part_t *part = &t->id_parts[i];
        const char *src = part->cap < 0 ? part->text : caps[part->cap].p;
        size_t len = part->cap < 0 ? part->len : caps[part->cap].len;

        if (len >= n - out)
            return -1;
        memcpy(buf + out, src, len);
        out += len;
    }
    buf[out] = '\0';
    return (int)out;
}
