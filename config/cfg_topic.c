/*
 * cfg_topic.c - the input templates of SPEC §3: topic filters with whole-level {name}
 * captures, meter_id templates over those captures, and JSON dot paths.
 *
 * The pipeline turns a topic template into an MQTT filter ('+' per capture) and matches
 * level by level; these checks make sure every template it meets is well formed.
 */
#include "cfg_check.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static bool capture_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > ENPI_CFG_CAPTURE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_')
            return false;
    }
    return true;
}

bool enpi_cfg_captures_has(const enpi_cfg_captures_t *caps, const char *name)
{
    for (size_t i = 0; i < caps->n; i++) {
        if (strcmp(caps->names[i], name) == 0)
            return true;
    }
    return false;
}

/* Checks one level [s, s+len) of a topic template; `last` when no '/' follows. */
static bool level_ok(const char *s, size_t len, bool last, enpi_cfg_captures_t *caps, char *why,
                     size_t n)
{
    bool has_brace = memchr(s, '{', len) != NULL || memchr(s, '}', len) != NULL;
    if (has_brace) {
        if (len < 2 || s[0] != '{' || s[len - 1] != '}' || memchr(s + 1, '{', len - 2) != NULL ||
            memchr(s + 1, '}', len - 2) != NULL) {
            snprintf(why, n,
                     "level '%.*s': a {name} capture must be a whole topic level, e.g. "
                     "'a/{meter}/b'",
                     (int)len, s);
            return false;
        }
        if (!capture_name_ok(s + 1, len - 2)) {
            snprintf(why, n, "capture name '%.*s' must be letters, digits or '_'", (int)len, s);
            return false;
        }
        if (caps->n == ENPI_CFG_MAX_CAPTURES) {
            snprintf(why, n, "more than %d captures", ENPI_CFG_MAX_CAPTURES);
            return false;
        }
        char name[ENPI_CFG_CAPTURE_MAX + 1];
        memcpy(name, s + 1, len - 2);
        name[len - 2] = '\0';
        if (enpi_cfg_captures_has(caps, name)) {
            snprintf(why, n, "capture '{%s}' appears twice", name);
            return false;
        }
        memcpy(caps->names[caps->n++], name, len - 1);
        return true;
    }
    if (memchr(s, '+', len) != NULL && len != 1) {
        snprintf(why, n, "'+' must be a whole topic level");
        return false;
    }
    if (memchr(s, '#', len) != NULL && (len != 1 || !last)) {
        snprintf(why, n, "'#' must be the whole last topic level");
        return false;
    }
    return true;
}

bool enpi_cfg_topic_ok(const char *topic, enpi_cfg_captures_t *caps, char *why, size_t n)
{
    caps->n = 0;
    size_t len = strlen(topic);
    if (len == 0) {
        snprintf(why, n, "the topic is empty");
        return false;
    }
    if (len > 65535) {
        snprintf(why, n, "the topic is longer than 65535 bytes");
        return false;
    }
    const char *level = topic;
    for (;;) {
        const char *slash = strchr(level, '/');
        size_t llen = slash ? (size_t)(slash - level) : strlen(level);
        if (!level_ok(level, llen, slash == NULL, caps, why, n))
            return false;
        if (slash == NULL)
            return true;
        level = slash + 1;
    }
}

bool enpi_cfg_template_ok(const char *tmpl, const enpi_cfg_captures_t *caps, char *why, size_t n)
{
    if (tmpl[0] == '\0') {
        snprintf(why, n, "the template is empty");
        return false;
    }
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p == '}') {
            snprintf(why, n, "'}' without a matching '{'");
            return false;
        }
        if (*p != '{')
            continue;
        const char *end = strchr(p + 1, '}');
        if (end == NULL) {
            snprintf(why, n, "'{' without a matching '}'");
            return false;
        }
        size_t len = (size_t)(end - p - 1);
        if (!capture_name_ok(p + 1, len) || memchr(p + 1, '{', len) != NULL) {
            snprintf(why, n, "'%.*s' is not a {name} reference", (int)(len + 2), p);
            return false;
        }
        char name[ENPI_CFG_CAPTURE_MAX + 1];
        memcpy(name, p + 1, len);
        name[len] = '\0';
        if (!enpi_cfg_captures_has(caps, name)) {
            snprintf(why, n, "'{%s}' is not captured by the topic", name);
            return false;
        }
        p = end;
    }
    return true;
}

bool enpi_cfg_dot_path_ok(const char *path, char *why, size_t n)
{
    size_t len = strlen(path);
    if (len == 0) {
        snprintf(why, n, "the path is empty");
        return false;
    }
    if (path[0] == '.' || path[len - 1] == '.' || strstr(path, "..") != NULL) {
        snprintf(why, n, "the path has an empty part (write e.g. 'ENERGY.Total')");
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, n, "the path contains a control character");
            return false;
        }
    }
    return true;
}
