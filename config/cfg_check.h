/*
 * cfg_check.h - private to config/: value rules that do not depend on YAML.
 *
 * Identifier syntax, time-zone existence, resolution validity, MQTT topic templates with
 * {name} captures, meter-id templates over those captures and JSON dot paths. Each check
 * answers true/false and, on false, writes a short reason (no FILE:LINE) for the schema
 * code to wrap into a message.
 */
#ifndef ENPI_CFG_CHECK_H
#define ENPI_CFG_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "civil.h"

#define ENPI_CFG_MAX_CAPTURES 16
#define ENPI_CFG_CAPTURE_MAX 64 /* bytes of a capture name */

/* Directory searched for zone files; "/usr/share/zoneinfo". */
#define ENPI_CFG_ZONEINFO "/usr/share/zoneinfo"

/* Meter and facility ids: 1..128 bytes of valid UTF-8 without control characters. */
bool enpi_cfg_id_ok(const char *s, size_t len, char *why, size_t n);

/* True when `name` is a relative path below ENPI_CFG_ZONEINFO (no "..", no leading '/')
 * naming a TZif file. */
bool enpi_cfg_zone_ok(const char *name, char *why, size_t n);

/* True for 1mo and for fixed lengths that divide 24h into whole minutes. */
bool enpi_cfg_resolution_ok(const enpi_duration_t *d, char *why, size_t n);

/* The capture names of a topic template, in order. */
typedef struct {
    char names[ENPI_CFG_MAX_CAPTURES][ENPI_CFG_CAPTURE_MAX + 1];
    size_t n;
} enpi_cfg_captures_t;

/*
 * Checks an input topic: an MQTT topic filter where a level may also be a whole "{name}"
 * capture (name: letters, digits, '_'); '+' and '#' follow MQTT rules; capture names are
 * unique. Fills *caps.
 */
bool enpi_cfg_topic_ok(const char *topic, enpi_cfg_captures_t *caps, char *why, size_t n);

/* True when the topic has a capture called `name`. */
bool enpi_cfg_captures_has(const enpi_cfg_captures_t *caps, const char *name);

/* Checks a meter_id template: literal text plus "{name}" references, each captured. */
bool enpi_cfg_template_ok(const char *tmpl, const enpi_cfg_captures_t *caps, char *why, size_t n);

/* Checks a JSON dot path ("value", "ENERGY.Total", "data.0.v"): non-empty segments. */
bool enpi_cfg_dot_path_ok(const char *path, char *why, size_t n);

#endif
