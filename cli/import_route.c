/*
 * import_route.c - choosing the input that carries a meter's history and encoding the
 * payloads it expects (protobuf-c, json-c). See import_route.h.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi.pb-c.h"
#include "enpi_error.h"
#include "import_route.h"
#include "topic.h"

/* The first input whose template matches `topic` (enpid's rule), or SIZE_MAX. */
static size_t routed_input(const enpi_config_t *cfg, const enpi_topic_t *compiled,
                           const char *topic)
{
    enpi_span_t caps[ENPI_TOPIC_MAX_CAPS];
    for (size_t i = 0; i < cfg->n_inputs; i++)
        if (enpi_topic_match(&compiled[i], topic, strlen(topic), caps))
            return i;
    return SIZE_MAX;
}

/* Preference of an input for carrying history: lower is better, -1 cannot. */
static int rank(const enpi_input_cfg_t *in)
{
    if (in->format == ENPI_FORMAT_PROTOBUF)
        return 0;
    if (in->format == ENPI_FORMAT_JSON)
        return in->meter_id_path != NULL ? 1 : 2;
    return -1;
}

int enpi_import_route(const enpi_config_t *cfg, const char *meter_id, enpi_import_route_t *out,
                      char *err, size_t errlen)
{
    int rc = 0;
    enpi_topic_t *compiled = calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof *compiled);
    if (compiled == NULL)
        return ENPI_ENOMEM;
    size_t n_compiled = 0;
    for (; n_compiled < cfg->n_inputs; n_compiled++) {
        const enpi_input_cfg_t *in = &cfg->inputs[n_compiled];
        rc = enpi_topic_compile(&compiled[n_compiled], in->topic, in->meter_id, NULL, 0);
        if (rc != 0) { /* the configuration was validated: only ENOMEM is expected */
            n_compiled++;
            goto free_compiled;
        }
    }
    int best_rank = -1;
    for (size_t i = 0; i < cfg->n_inputs; i++) {
        const enpi_input_cfg_t *in = &cfg->inputs[i];
        int r = rank(in);
        if (r < 0 || (best_rank >= 0 && r >= best_rank))
            continue;
        char topic[ENPI_IMPORT_TOPIC_MAX];
        bool id_in_payload = r < 2;
        if (enpi_topic_for_id(&compiled[i], meter_id, id_in_payload, topic, sizeof topic) < 0)
            continue;
        if (routed_input(cfg, compiled, topic) != i)
            continue; /* an earlier input would take the message */
        best_rank = r;
        out->input = i;
        out->format = in->format;
        memcpy(out->topic, topic, sizeof topic);
    }
    if (best_rank < 0) {
        snprintf(err, errlen,
                 "no input can carry meter \"%s\": import needs a protobuf input, a json "
                 "input with meter_id_path, or a json input whose topic and meter_id "
                 "templates produce this id",
                 meter_id);
        rc = ENPI_ENOENT;
    }
free_compiled:
    for (size_t i = 0; i < n_compiled; i++)
        enpi_topic_free(&compiled[i]);
    free(compiled);
    return rc;
}

static int encode_protobuf(const char *meter_id, const enpi_import_reading_t *r, size_t n,
                           void **out, size_t *out_len)
{
    Enpi__V1__Reading *items = calloc(n, sizeof *items);
    Enpi__V1__Reading **ptrs = calloc(n, sizeof *ptrs);
    int rc = 0;
    if (items == NULL || ptrs == NULL) {
        rc = ENPI_ENOMEM;
        goto free_arrays;
    }
    for (size_t i = 0; i < n; i++) {
        enpi__v1__reading__init(&items[i]);
        items[i].meter_id = (char *)meter_id; /* borrowed; pack only reads it */
        items[i].timestamp_ms = r[i].ts_ms;
        items[i].value = r[i].value;
        ptrs[i] = &items[i];
    }
    Enpi__V1__ReadingBatch batch;
    enpi__v1__reading_batch__init(&batch);
    batch.n_readings = n;
    batch.readings = ptrs;
    size_t len = enpi__v1__reading_batch__get_packed_size(&batch);
    if (len > ENPI_IMPORT_PAYLOAD_MAX) {
        rc = ENPI_ERANGE;
        goto free_arrays;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        rc = ENPI_ENOMEM;
        goto free_arrays;
    }
    *out_len = enpi__v1__reading_batch__pack(&batch, buf);
    *out = buf;
free_arrays:
    free(ptrs);
    free(items);
    return rc;
}

/* Puts v at the dot path inside obj, creating the objects on the way. Takes v. */
static int put_path(json_object *obj, const char *path, json_object *v)
{
    const char *dot;
    while ((dot = strchr(path, '.')) != NULL) {
        char key[256];
        size_t len = (size_t)(dot - path);
        if (len >= sizeof key)
            goto refuse;
        memcpy(key, path, len);
        key[len] = '\0';
        json_object *next;
        if (!json_object_object_get_ex(obj, key, &next)) {
            if ((next = json_object_new_object()) == NULL ||
                json_object_object_add(obj, key, next) != 0)
                goto refuse;
        } else if (!json_object_is_type(next, json_type_object)) {
            goto refuse;
        }
        obj = next;
        path = dot + 1;
    }
    if (json_object_object_add(obj, path, v) == 0)
        return 0;
refuse:
    json_object_put(v);
    return ENPI_EINVAL;
}

static int encode_json(const enpi_input_cfg_t *in, const char *meter_id,
                       const enpi_import_reading_t *r, size_t n, void **out, size_t *out_len)
{
    int rc = 0;
    json_object *arr = json_object_new_array_ext((int)n);
    if (arr == NULL)
        return ENPI_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_object *o = json_object_new_object();
        char num[40];
        snprintf(num, sizeof num, "%.17g", r[i].value); /* round-trips every double */
        if (o == NULL || json_object_array_add(arr, o) != 0) {
            json_object_put(o);
            rc = ENPI_ENOMEM;
            break;
        }
        rc = put_path(o, in->timestamp_path ? in->timestamp_path : "ts",
                      json_object_new_int64(r[i].ts_ms));
        if (rc == 0)
            rc = put_path(o, in->value_path ? in->value_path : "value",
                          json_object_new_double_s(r[i].value, num));
        if (rc == 0 && in->meter_id_path != NULL)
            rc = put_path(o, in->meter_id_path, json_object_new_string(meter_id));
    }
    if (rc == 0) {
        size_t len;
        const char *text = json_object_to_json_string_length(arr, JSON_C_TO_STRING_PLAIN, &len);
        if (text == NULL) {
            rc = ENPI_ENOMEM;
        } else if (len > ENPI_IMPORT_PAYLOAD_MAX) {
            rc = ENPI_ERANGE;
        } else if ((*out = malloc(len)) == NULL) {
            rc = ENPI_ENOMEM;
        } else {
            memcpy(*out, text, len);
            *out_len = len;
        }
    }
    json_object_put(arr);
    return rc;
}

int enpi_import_encode(const enpi_config_t *cfg, const enpi_import_route_t *route,
                       const char *meter_id, const enpi_import_reading_t *readings, size_t n,
                       void **out, size_t *out_len, size_t *used)
{
    if (n > ENPI_IMPORT_BATCH)
        n = ENPI_IMPORT_BATCH;
    for (;;) {
        int rc = route->format == ENPI_FORMAT_PROTOBUF
                     ? encode_protobuf(meter_id, readings, n, out, out_len)
                     : encode_json(&cfg->inputs[route->input], meter_id, readings, n, out,
                                   out_len);
        if (rc != ENPI_ERANGE || n == 1) {
            if (rc == 0)
                *used = n;
            return rc;
        }
        n /= 2; /* long ids or paths: fewer readings per message */
    }
}
