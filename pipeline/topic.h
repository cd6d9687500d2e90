/*
 * topic.h - input topic templates (SPEC §3 `inputs[].topic` and `meter_id`).
 *
 * A template such as "enpi/{facility}/{meter}" names one capture per `{name}` level; it
 * becomes the MQTT filter "enpi/+/+". A bare "+" level matches without capturing, and
 * "#" may end a template (e.g. Sparkplug's "spBv1.0/#"), matching any remaining levels.
 * A received topic is matched level by level; the captures then fill the meter_id
 * template ("{facility}/{meter}", default "{meter}"). Matching allocates nothing.
 */
#ifndef ENPI_TOPIC_H
#define ENPI_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define ENPI_TOPIC_MAX_CAPS 16

typedef struct {
    const char *p;
    size_t len;
} enpi_span_t;

typedef enum {
    ENPI_LEVEL_LITERAL,
    ENPI_LEVEL_CAPTURE,
    ENPI_LEVEL_PLUS,
    ENPI_LEVEL_HASH,
} enpi_level_kind_t;

typedef struct {
    enpi_level_kind_t kind;
    char *text; /* literal text, or the capture's name; owned */
    size_t len;
    int cap; /* ENPI_LEVEL_CAPTURE: index into the captures */
} enpi_topic_level_t;

typedef struct {
    int cap;    /* capture index, or -1 for literal text */
    char *text; /* literal text; owned */
    size_t len;
} enpi_id_part_t;

typedef struct {
    char *filter; /* the MQTT subscription filter; owned */
    enpi_topic_level_t *levels;
    size_t n_levels;
    size_t n_caps;
    enpi_id_part_t *id_parts; /* the meter_id template, split */
    size_t n_id_parts;
    bool id_from_topic;    /* every capture the id template names exists */
    char *missing_capture; /* when !id_from_topic: the first unknown name; owned */
} enpi_topic_t;

/*
 * Compiles a topic template and a meter_id template (NULL means "{meter}"). Returns 0,
 * ENPI_EINVAL with a message in err (malformed template: a '{' that does not span a whole
 * level, a repeated capture name, '#' before the last level, an empty id template ...),
 * or ENPI_ENOMEM. An id template that names a capture the topic lacks is not an error
 * here (the id may come from the payload): id_from_topic is then false. Free with
 * enpi_topic_free, also after a failure.
 */
int enpi_topic_compile(enpi_topic_t *t, const char *topic, const char *id_template, char *err,
                       size_t errlen);
void enpi_topic_free(enpi_topic_t *t);

/* True when `topic` matches; caps[] (ENPI_TOPIC_MAX_CAPS long) then point into topic. */
bool enpi_topic_match(const enpi_topic_t *t, const char *topic, size_t len, enpi_span_t *caps);

/*
 * Renders the meter id from the captures of a match into buf (NUL-terminated). Returns
 * its length, or -1 when it does not fit in n - 1 bytes or the template cannot be filled
 * from the topic (!id_from_topic).
 */
int enpi_topic_render_id(const enpi_topic_t *t, const enpi_span_t *caps, char *buf, size_t n);

/*
 * The inverse (topic_invert.c): writes into buf a topic that matches t and whose captures
 * render meter_id. Capture values are single levels, so an id the template cannot produce
 * (e.g. one with '/' where "{meter}" stands) has no topic: -1. When id_in_payload (the
 * format carries the id itself), such an id still gets a topic, with "_" for every
 * capture; "_" also fills '+' levels and captures the id does not use. Returns the length,
 * -1 when there is no such topic, -2 when it does not fit in n - 1 bytes.
 */
int enpi_topic_for_id(const enpi_topic_t *t, const char *meter_id, bool id_in_payload, char *buf,
                      size_t n);

#endif
