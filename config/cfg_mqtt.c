/*
 * cfg_mqtt.c - the `mqtt` section of SPEC §3 (broker URI, session, credentials, TLS and
 * our `version:` extension). Files named here are only recorded; the daemon opens them.
 */
#include "cfg_scalar.h"
#include "cfg_schema.h"

#include <ctype.h>
#include <string.h>

#include "enpi_error.h"

/* Scheme://host[:port] with a scheme Paho knows. Sets *tls for ssl/mqtts/wss. */
static bool uri_ok(const char *uri, bool *tls)
{
    static const struct {
        const char *scheme;
        bool tls;
    } schemes[] = {{"tcp://", false}, {"mqtt://", false}, {"ws://", false},
                   {"ssl://", true},  {"mqtts://", true}, {"wss://", true}};
    const char *rest = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(uri, schemes[i].scheme, n) == 0) {
            rest = uri + n;
            *tls = schemes[i].tls;
            break;
        }
    }
    if (rest == NULL || rest[0] == '\0' || rest[0] == ':' || rest[0] == '/')
        return false;
    for (const char *p = rest; *p != '\0'; p++) {
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            return false;
    }
    return true;
}

static int parse_tls(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_tls_cfg_t *tls)
{
    static const char *const keys[] = {"ca_file", "cert_file", "key_file", "insecure", NULL};
    int rc = enpi_cfg_map_check(ctx, v, "in mqtt.tls", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x;
    if ((x = enpi_cfg_map_get(v, "ca_file")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.tls.ca_file", false, &tls->ca_file)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "cert_file")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.tls.cert_file", false, &tls->cert_file)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "key_file")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.tls.key_file", false, &tls->key_file)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "insecure")) != NULL &&
        (rc = enpi_cfg_bool(ctx, x, "mqtt.tls.insecure", &tls->insecure)) != 0)
        return rc;
    if (tls->key_file != NULL && tls->cert_file == NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, enpi_cfg_map_find(v, "key_file")->key->line,
                             "mqtt.tls.key_file is set but cert_file is not (a client key "
                             "needs its certificate)");
    return 0;
}

/*
 * `session_expiry:` (our extension, MQTT 5 only): a whole number of seconds (as a
 * duration, 0s..4294967294s) or `never`. Needs `version: 5`, which is read before.
 */
static int parse_session_expiry(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_mqtt_cfg_t *out)
{
    const enpi_cfg_node_t *x = enpi_cfg_map_get(v, "session_expiry");
    if (x == NULL)
        return 0;
    if (out->mqtt_version != 5)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                             "mqtt.session_expiry needs mqtt.version: 5 (MQTT 3.1.1 has no "
                             "session expiry: a persistent session lasts until the broker "
                             "drops it)");
    if (x->text != NULL && strcmp(x->text, "never") == 0) {
        out->session_expiry_s = 0xFFFFFFFFLL;
        return 0;
    }
    int64_t ms;
    int rc = enpi_cfg_fixed_ms(ctx, x, "mqtt.session_expiry", true, &ms);
    if (rc != 0)
        return rc;
    if (ms % 1000 != 0 || ms / 1000 >= 0xFFFFFFFFLL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                             "mqtt.session_expiry: '%s' must be whole seconds below 4294967295s, "
                             "or never",
                             x->text);
    out->session_expiry_s = ms / 1000;
    return 0;
}

int enpi_cfg_parse_mqtt(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, enpi_mqtt_cfg_t *out)
{
    static const char *const keys[] = {"uri",       "client_id",     "clean_session",  "qos",
                                       "keepalive", "username",      "password_file",  "tls",
                                       "version",   "reconnect_max", "session_expiry", NULL};
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_map_check(ctx, v, "in mqtt", keys);
    if (rc != 0)
        return rc;
    const enpi_cfg_node_t *x;
    if ((x = enpi_cfg_map_get(v, "uri")) != NULL) {
        if ((rc = enpi_cfg_string(ctx, x, "mqtt.uri", false, &out->uri)) != 0)
            return rc;
    }
    bool uri_tls = false;
    if (!uri_ok(out->uri, &uri_tls))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, x ? x->line : v->line,
                             "mqtt.uri: invalid URI '%s' (use e.g. tcp://127.0.0.1:1883 or "
                             "ssl://broker:8883)",
                             enpi_cfg_show(out->uri, strlen(out->uri), buf, sizeof(buf)));
    if ((x = enpi_cfg_map_get(v, "client_id")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.client_id", false, &out->client_id)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "clean_session")) != NULL &&
        (rc = enpi_cfg_bool(ctx, x, "mqtt.clean_session", &out->clean_session)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "qos")) != NULL &&
        (rc = enpi_cfg_int(ctx, x, "mqtt.qos", 0, 2, "use 0, 1 or 2", &out->qos)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "keepalive")) != NULL) {
        int64_t ms;
        if ((rc = enpi_cfg_fixed_ms(ctx, x, "mqtt.keepalive", false, &ms)) != 0)
            return rc;
        if (ms < 1000 || ms > 65535000 || ms % 1000 != 0)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                                 "mqtt.keepalive: '%s' must be whole seconds from 1s to 65535s",
                                 x->text);
        out->keepalive_ms = ms;
    }
    if ((x = enpi_cfg_map_get(v, "username")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.username", false, &out->username)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "password_file")) != NULL &&
        (rc = enpi_cfg_string(ctx, x, "mqtt.password_file", false, &out->password_file)) != 0)
        return rc;
    if ((x = enpi_cfg_map_get(v, "version")) != NULL) {
        int version;
        if ((rc = enpi_cfg_int(ctx, x, "mqtt.version", 3, 5, "use 3 (MQTT 3.1.1) or 5",
                               &version)) != 0)
            return rc;
        if (version == 4)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                                 "mqtt.version: invalid value '4' (use 3 (MQTT 3.1.1) or 5)");
        out->mqtt_version = version;
    }
    if ((x = enpi_cfg_map_get(v, "reconnect_max")) != NULL) {
        int64_t ms;
        if ((rc = enpi_cfg_fixed_ms(ctx, x, "mqtt.reconnect_max", false, &ms)) != 0)
            return rc;
        if (ms < 1000 || ms > 3600000)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, x->line,
                                 "mqtt.reconnect_max: '%s' must be from 1s to 1h", x->text);
        out->reconnect_max_ms = ms;
    }
    if ((rc = parse_session_expiry(ctx, v, out)) != 0)
        return rc;
    const enpi_cfg_pair_t *tp = enpi_cfg_map_find(v, "tls");
    if (tp != NULL && !enpi_cfg_is_null(tp->value)) {
        if ((rc = parse_tls(ctx, tp->value, &out->tls)) != 0)
            return rc;
        out->has_tls = true;
        if (!uri_tls)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, tp->key->line,
                                 "mqtt.tls is set but mqtt.uri '%s' is not a TLS URI (use "
                                 "ssl://host:8883)",
                                 enpi_cfg_show(out->uri, strlen(out->uri), buf, sizeof(buf)));
    }
    return 0;
}
