/*
 * cmd_import.c - `enpi import FILE.csv`: loads historical readings (a baseline period
 * before enpid existed) by publishing them through the broker, so that enpid stays the
 * only writer of the store and applies the same arithmetic as to live data.
 *
 * The whole file is read and checked first (import_csv.c); each meter's route is chosen
 * (import_route.c); a meter whose stored state already holds a reading at or after the
 * first imported one is refused, because enpid would count the history as late or
 * duplicate readings and ignore it (history must come before a meter's live data).
 * Nothing is published unless every check passed. Then each meter's readings go out in
 * time order, in batches, with the configured QoS (default 1), and the command waits for
 * the broker to acknowledge every message. Prints one row per meter.
 */
#include <MQTTClient.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "context.h"
#include "enpi_error.h"
#include "import_csv.h"
#include "import_route.h"
#include "secret.h"

#define INFLIGHT 16            /* QoS 1 messages awaiting their PUBACK */
#define ACK_TIMEOUT_MS 30000UL /* a broker that does not acknowledge within this fails */

static const char help[] =
    "Usage: enpi import FILE.csv [--qos 0|1] [--dry-run] [--config FILE | --db DIR]\n"
    "\n"
    "Publishes historical readings through the broker enpid subscribes to, so enpid\n"
    "applies them like live data (e.g. a baseline year before enpid was installed).\n"
    "FILE ('-' for stdin) is CSV with a header naming the columns meter, timestamp and\n"
    "value (others ignored). timestamp: ISO 8601, in the meter's facility zone unless it\n"
    "has an offset, or epoch milliseconds. value: what the meter publishes (a register\n"
    "reading for cumulative meters, the amount for delta meters).\n"
    "\n"
    "Import a meter's history BEFORE its live data: enpid ignores readings older than a\n"
    "meter's newest one (late/duplicate). Meters that already have newer readings are\n"
    "refused. enpid must be running (or its persistent session must be able to queue\n"
    "every message: see mosquitto's max_queued_messages).\n"
    "\n"
    "  --qos N     0 or 1 (default: mqtt.qos of the configuration)\n"
    "  --dry-run   check the file and show the routes; publish nothing\n";

typedef struct {
    enpi_cli_ctx_t *ctx;
} time_ctx_t;

static int meter_time(void *vctx, const char *meter_id, const char *text, int64_t *out_ms,
                      char *err, size_t errlen)
{
    time_ctx_t *tc = vctx;
    const enpi_facility_cfg_t *f = NULL;
    if (enpi_config_meter(tc->ctx->cfg, meter_id, &f) == NULL)
        return ENPI_ENOENT;
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (isdigit((unsigned char)*p)) {
        const char *q = p;
        while (isdigit((unsigned char)*q))
            q++;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '\0') { /* only digits: epoch milliseconds */
            errno = 0;
            long long v = strtoll(p, NULL, 10);
            if (errno != 0)
                return ENPI_EPARSE;
            *out_ms = v;
            return 0;
        }
    }
    enpi_cli_diag_t d = {{0}, false};
    const enpi_tz_t *tz = enpi_cli_ctx_tz(tc->ctx, f, &d);
    if (tz == NULL) {
        snprintf(err, errlen, "%s", d.msg);
        return ENPI_EPARSE;
    }
    return enpi_cli_parse_time(p, tz, out_ms) == 0 ? 0 : ENPI_EPARSE;
}

/* The readings of meter m: a run in the sorted set. */
typedef struct {
    const enpi_import_reading_t *r;
    size_t n;
    enpi_import_route_t route;
} meter_plan_t;

static int check_history_first(enpi_cli_ctx_t *ctx, const char *id, const meter_plan_t *mp,
                               enpi_cli_diag_t *d)
{
    enpi_meter_state_t st;
    int rc = enpi_cli_ctx_meter_state(ctx, id, &st, d);
    if (rc != 0)
        return rc;
    if (st.has_state && mp->r[0].ts_ms <= st.last_ts_ms) {
        const enpi_facility_cfg_t *f = NULL;
        enpi_config_meter(ctx->cfg, id, &f);
        const enpi_tz_t *tz = enpi_cli_ctx_tz(ctx, f, d);
        char when[64] = "?";
        if (tz != NULL)
            enpi_tz_format(tz, st.last_ts_ms, when, sizeof when);
        rc = enpi_cli_fail(d, ENPI_ESTATE,
                           "meter \"%s\" already has readings up to %s (line %zu is not "
                           "later): enpid would ignore this history; import a meter's "
                           "history before its live data",
                           id, when, mp->r[0].line);
    }
    enpi_meter_state_clear(&st);
    return rc;
}

typedef struct {
    MQTTClient client;
    MQTTClient_deliveryToken tokens[INFLIGHT];
    size_t head, count; /* ring of outstanding tokens */
    int qos;
    int version;
} pub_t;

static int wait_oldest(pub_t *p, enpi_cli_diag_t *d)
{
    int rc = MQTTClient_waitForCompletion(p->client, p->tokens[p->head], ACK_TIMEOUT_MS);
    p->head = (p->head + 1) % INFLIGHT;
    p->count--;
    if (rc != MQTTCLIENT_SUCCESS)
        return enpi_cli_fail(d, ENPI_EMQTT, "the broker did not acknowledge a message: %s",
                             MQTTClient_strerror(rc));
    return 0;
}

static int publish(pub_t *p, const char *topic, void *payload, size_t len, enpi_cli_diag_t *d)
{
    if (p->count == INFLIGHT) {
        int rc = wait_oldest(p, d);
        if (rc != 0)
            return rc;
    }
    MQTTClient_message msg = MQTTClient_message_initializer;
    msg.payload = payload;
    msg.payloadlen = (int)len;
    msg.qos = p->qos;
    MQTTClient_deliveryToken tok = 0;
    int rc;
    if (p->version == 5) {
        MQTTResponse r = MQTTClient_publishMessage5(p->client, topic, &msg, &tok);
        rc = r.reasonCode;
        MQTTResponse_free(r);
    } else {
        rc = MQTTClient_publishMessage(p->client, topic, &msg, &tok);
    }
    if (rc != MQTTCLIENT_SUCCESS)
        return enpi_cli_fail(d, ENPI_EMQTT, "cannot publish to %s: %s", topic,
                             MQTTClient_strerror(rc));
    if (p->qos > 0) {
        p->tokens[(p->head + p->count) % INFLIGHT] = tok;
        p->count++;
    }
    return 0;
}

static int connect_broker(const enpi_mqtt_cfg_t *m, pub_t *p, enpi_cli_diag_t *d)
{
    char client_id[96], host[64] = "host", err[512];
    char *password = NULL;
    int rc;
    gethostname(host, sizeof host - 1);
    snprintf(client_id, sizeof client_id, "enpi-import-%.40s-%ld", host, (long)getpid());
    if ((rc = enpi_secret_read_password(m->password_file, &password, err, sizeof err)) != 0)
        return enpi_cli_fail(d, rc, "mqtt: %s", err);
    MQTTClient_createOptions co = MQTTClient_createOptions_initializer;
    co.MQTTVersion = m->mqtt_version == 5 ? MQTTVERSION_5 : MQTTVERSION_DEFAULT;
    if ((rc = MQTTClient_createWithOptions(&p->client, m->uri, client_id,
                                           MQTTCLIENT_PERSISTENCE_NONE, NULL, &co)) !=
        MQTTCLIENT_SUCCESS) {
        rc = enpi_cli_fail(d, ENPI_EMQTT, "mqtt: cannot create a client for %s: %s", m->uri,
                           MQTTClient_strerror(rc));
        goto wipe_password;
    }
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    MQTTClient_connectOptions opts5 = MQTTClient_connectOptions_initializer5;
    MQTTClient_connectOptions *o = m->mqtt_version == 5 ? &opts5 : &opts;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    o->keepAliveInterval = 30;
    o->username = m->username;
    o->password = password;
    o->connectTimeout = 10;
    if (m->has_tls) {
        ssl.trustStore = m->tls.ca_file;
        ssl.keyStore = m->tls.cert_file;
        ssl.privateKey = m->tls.key_file;
        ssl.enableServerCertAuth = !m->tls.insecure;
        ssl.verify = !m->tls.insecure; /* host name check too */
        o->ssl = &ssl;
    }
    p->version = m->mqtt_version;
    if (p->version == 5) {
        MQTTResponse r = MQTTClient_connect5(p->client, o, NULL, NULL);
        rc = r.reasonCode;
        MQTTResponse_free(r);
    } else {
        rc = MQTTClient_connect(p->client, o);
    }
    if (rc != MQTTCLIENT_SUCCESS) {
        MQTTClient_destroy(&p->client);
        rc = enpi_cli_fail(d, ENPI_EMQTT, "mqtt: cannot connect to %s: %s", m->uri,
                           rc > 0 ? "refused by the broker (credentials or authorisation?)"
                                  : MQTTClient_strerror(rc));
        goto wipe_password;
    }
    rc = 0;
wipe_password:
    enpi_secret_free(password);
    return rc;
}

static int publish_all(enpi_cli_ctx_t *ctx, const enpi_import_set_t *set, meter_plan_t *plans,
                       int qos, size_t *messages, enpi_cli_diag_t *d)
{
    pub_t p = {.qos = qos};
    int rc = connect_broker(&ctx->cfg->mqtt, &p, d);
    if (rc != 0)
        return rc;
    for (size_t m = 0; m < set->n_meters && rc == 0; m++) {
        const meter_plan_t *mp = &plans[m];
        for (size_t i = 0; i < mp->n && rc == 0;) {
            void *payload = NULL;
            size_t len = 0, used = 0;
            rc = enpi_import_encode(ctx->cfg, &mp->route, set->meters[m], mp->r + i, mp->n - i,
                                    &payload, &len, &used);
            if (rc != 0) {
                rc = enpi_cli_fail(d, rc, "cannot encode the readings of meter \"%s\": %s",
                                   set->meters[m], enpi_strerror(rc));
                break;
            }
            rc = publish(&p, mp->route.topic, payload, len, d);
            free(payload); /* Paho copied it */
            i += used;
            (*messages)++;
        }
    }
    while (p.count > 0 && rc == 0)
        rc = wait_oldest(&p, d);
    if (p.version == 5)
        MQTTClient_disconnect5(p.client, 5000, MQTTREASONCODE_SUCCESS, NULL);
    else
        MQTTClient_disconnect(p.client, 5000);
    MQTTClient_destroy(&p.client);
    return rc;
}

static const enpi_out_col_t cols[] = {
    {"meter", "meter", ENPI_OUT_TEXT},   {"topic", "topic", ENPI_OUT_TEXT},
    {"format", "format", ENPI_OUT_TEXT}, {"readings", "readings", 0},
    {"from", "from", ENPI_OUT_TEXT},     {"to", "to", ENPI_OUT_TEXT},
    {"published", "published", ENPI_OUT_TEXT},
};

static int emit(enpi_cli_ctx_t *ctx, const enpi_import_set_t *set, const meter_plan_t *plans,
                enpi_out_format_t fmt, bool published, enpi_cli_diag_t *d)
{
    enpi_out_t *o;
    int rc = enpi_out_create(fmt, cols, sizeof cols / sizeof cols[0], &o);
    if (rc != 0)
        return enpi_cli_fail(d, rc, "cannot format the output: %s", enpi_strerror(rc));
    for (size_t m = 0; m < set->n_meters; m++) {
        const meter_plan_t *mp = &plans[m];
        const enpi_facility_cfg_t *f = NULL;
        enpi_config_meter(ctx->cfg, set->meters[m], &f);
        const enpi_tz_t *tz = enpi_cli_ctx_tz(ctx, f, d);
        char from[64] = "", to[64] = "";
        if (tz != NULL) {
            enpi_tz_format(tz, mp->r[0].ts_ms, from, sizeof from);
            enpi_tz_format(tz, mp->r[mp->n - 1].ts_ms, to, sizeof to);
        }
        enpi_out_row(o);
        enpi_out_str(o, set->meters[m]);
        enpi_out_str(o, mp->route.topic);
        enpi_out_str(o, mp->route.format == ENPI_FORMAT_PROTOBUF ? "protobuf" : "json");
        enpi_out_uint(o, mp->n);
        enpi_out_str(o, from);
        enpi_out_str(o, to);
        enpi_out_str(o, published ? "yes" : "no (dry run)");
    }
    return enpi_cli_emit(o, d);
}

/* Takes the FILE operand out of argv (the option parser accepts no operands). */
static int split_operand(int argc, char **argv, char **kept, int *n_kept, const char **file,
                         enpi_cli_diag_t *d)
{
    static const char *const with_value[] = {"--config", "--db", "--format", "--qos"};
    *file = NULL;
    *n_kept = 0;
    kept[(*n_kept)++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool is_operand = strcmp(a, "-") == 0 || a[0] != '-';
        if (strcmp(a, "--") == 0 && i + 1 < argc && *file == NULL) {
            *file = argv[++i];
            continue;
        }
        if (is_operand) {
            if (*file != NULL)
                return enpi_cli_usage(d, "import: one FILE only ('%s' and '%s')", *file, a);
            *file = a;
            continue;
        }
        kept[(*n_kept)++] = argv[i];
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strcmp(a, with_value[k]) == 0 && i + 1 < argc)
                kept[(*n_kept)++] = argv[++i];
    }
    return 0;
}

int enpi_cmd_import(enpi_cli_globals_t *g, int argc, char **argv, enpi_cli_diag_t *d)
{
    const char *qos_arg = NULL, *file = NULL;
    bool dry_run = false;
    const enpi_cli_opt_t opts[] = {
        {"qos", 0, true, &qos_arg, NULL},
        {"dry-run", 0, false, NULL, &dry_run},
    };
    char **kept = calloc((size_t)argc + 1, sizeof *kept);
    int n_kept = 0, rc;
    if (kept == NULL)
        return enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
    rc = split_operand(argc, argv, kept, &n_kept, &file, d);
    if (rc == 0)
        rc = enpi_cli_cmd_args(g, n_kept, kept, opts, sizeof opts / sizeof opts[0], help, d);
    free(kept);
    if (rc || g->help)
        return rc;
    enpi_out_format_t fmt;
    if ((rc = enpi_cli_format(g, &fmt, d)) != 0)
        return rc;
    if (file == NULL)
        return enpi_cli_usage(d, "import: missing FILE.csv");
    int qos = -1;
    if (qos_arg != NULL) {
        if (strcmp(qos_arg, "0") != 0 && strcmp(qos_arg, "1") != 0)
            return enpi_cli_usage(d, "import: --qos must be 0 or 1");
        qos = qos_arg[0] - '0';
    }

    enpi_cli_ctx_t ctx;
    if ((rc = enpi_cli_ctx_open(&ctx, g, d)) != 0)
        return rc;
    if (qos < 0)
        qos = ctx.cfg->mqtt.qos > 0 ? 1 : 0;
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (f == NULL) {
        rc = enpi_cli_fail(d, ENPI_EIO, "cannot open %s: %s", file, strerror(errno));
        goto close_ctx;
    }
    enpi_import_set_t set;
    char err[512];
    time_ctx_t tc = {&ctx};
    rc = enpi_import_parse(f, strcmp(file, "-") == 0 ? "<stdin>" : file, meter_time, &tc, &set,
                           err, sizeof err);
    if (f != stdin)
        fclose(f);
    if (rc != 0) {
        rc = enpi_cli_fail(d, rc, "%s", err);
        goto close_ctx;
    }
    if (set.n_readings == 0) {
        rc = enpi_cli_fail(d, ENPI_EINVAL, "%s: no readings after the header", file);
        goto free_set;
    }
    meter_plan_t *plans = calloc(set.n_meters, sizeof *plans);
    if (plans == NULL) {
        rc = enpi_cli_fail(d, ENPI_ENOMEM, "out of memory");
        goto free_set;
    }
    for (size_t i = 0; i < set.n_readings; i++) {
        meter_plan_t *mp = &plans[set.readings[i].meter];
        if (mp->n++ == 0)
            mp->r = &set.readings[i];
    }
    for (size_t m = 0; m < set.n_meters && rc == 0; m++) {
        rc = enpi_import_route(ctx.cfg, set.meters[m], &plans[m].route, err, sizeof err);
        if (rc != 0)
            rc = enpi_cli_fail(d, rc, "%s", err);
        else
            rc = check_history_first(&ctx, set.meters[m], &plans[m], d);
    }
    size_t messages = 0;
    if (rc == 0 && !dry_run)
        rc = publish_all(&ctx, &set, plans, qos, &messages, d);
    if (rc == 0)
        rc = emit(&ctx, &set, plans, fmt, !dry_run, d);
    free(plans);
free_set:
    enpi_import_set_free(&set);
close_ctx:
    enpi_cli_ctx_close(&ctx);
    return rc;
}
