/*
 * topic_invert.c - the way back from a meter id to a topic: which topic, published to,
 * makes an input render that meter id (used by `enpi import`, which publishes history
 * through the broker so that enpid stays the only writer). See topic.h.
 */
#include <stdint.h>
#include <string.h>

#include "topic.h"

/* A capture's value must be one non-empty topic level without wildcards. */
static bool level_ok(const char *p, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] == '/' || p[i] == '+' || p[i] == '#' || p[i] == '\0')
            return false;
    return true;
}

/*
 * Matches id_parts[i..] against id[pos..], binding captures in caps (len SIZE_MAX =
 * unbound). Backtracks over the possible lengths of each capture. Returns true on a
 * complete match, with caps holding one consistent binding.
 */
static bool bind(const enpi_topic_t *t, size_t i, const char *id, size_t pos, size_t len,
                 enpi_span_t *caps)
{
    if (i == t->n_id_parts)
        return pos == len;
    const enpi_id_part_t *part = &t->id_parts[i];
    if (part->cap < 0) {
        if (len - pos < part->len || memcmp(id + pos, part->text, part->len) != 0)
            return false;
        return bind(t, i + 1, id, pos + part->len, len, caps);
    }
    enpi_span_t *c = &caps[part->cap];
    if (c->len != SIZE_MAX) { /* the same capture named twice: must repeat its value */
        if (len - pos < c->len || memcmp(id + pos, c->p, c->len) != 0)
            return false;
        return bind(t, i + 1, id, pos + c->len, len, caps);
    }
    for (size_t n = 1; pos + n <= len; n++) {
        if (!level_ok(id + pos, n))
            break; /* a longer value would contain the same bad byte */
        c->p = id + pos;
        c->len = n;
        if (bind(t, i + 1, id, pos + n, len, caps))
            return true;
    }
    c->len = SIZE_MAX;
    return false;
}

int enpi_topic_for_id(const enpi_topic_t *t, const char *meter_id, bool id_in_payload, char *buf,
                      size_t n)
{
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];
    size_t id_len = strlen(meter_id), out = 0;

    for (size_t i = 0; i < ENPI_TOPIC_MAX_CAPS; i++)
        caps[i].len = SIZE_MAX;
    bool bound = t->id_from_topic && bind(t, 0, meter_id, 0, id_len, caps);
    if (!bound) {
        if (!id_in_payload)
            return -1;
        for (size_t i = 0; i < ENPI_TOPIC_MAX_CAPS; i++)
            caps[i].len = SIZE_MAX; /* the payload names the meter: any level values do */
    }
    for (size_t i = 0; i < t->n_levels; i++) {
        const enpi_topic_level_t *l = &t->levels[i];
        const char *src = "_";
        size_t len = 1;
        if (l->kind == ENPI_LEVEL_HASH)
            break; /* "a/#" matches "a" itself */
        if (l->kind == ENPI_LEVEL_LITERAL) {
            src = l->text;
            len = l->len;
        } else if (l->kind == ENPI_LEVEL_CAPTURE && caps[l->cap].len != SIZE_MAX) {
            src = caps[l->cap].p;
            len = caps[l->cap].len;
        }
        if (out > 0) {
            if (out + 1 >= n)
                return -2;
            buf[out++] = '/';
        }
        if (len >= n - out)
            return -2;
        memcpy(buf + out, src, len);
        out += len;
    }
    if (out == 0 || n == 0)
        return -1; /* a bare "#" template: no topic of its own to publish to */
    buf[out] = '\0';
    return (int)out;
}
