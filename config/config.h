/*
 * config.h - enpid's configuration (SPEC §3): the parsed, validated YAML as plain data.
 *
 * enpi_config_load() reads one YAML file (libyaml), rejects unknown keys and invalid
 * values with "FILE:LINE: message", and returns an immutable enpi_config_t that the
 * daemon, the pipeline and the CLI read. Nothing here knows MQTT, libuv or RocksDB.
 * Times of day are kept as written (enpi_civil_t); turning them into instants needs the
 * facility's zone and happens in pipeline/tz.
 */
#ifndef ENPI_CONFIG_H
#define ENPI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "civil.h"

#define ENPI_METER_ID_MAX 128 /* bytes; SPEC §3 */
#define ENPI_MAX_RESOLUTIONS 8

typedef enum { ENPI_KIND_ENERGY = 0, ENPI_KIND_PRODUCTION = 1 } enpi_kind_t;
typedef enum { ENPI_READING_CUMULATIVE = 0, ENPI_READING_DELTA = 1 } enpi_reading_t;
typedef enum {
    ENPI_FORMAT_JSON = 0,
    ENPI_FORMAT_PROTOBUF,
    ENPI_FORMAT_TASMOTA,
    ENPI_FORMAT_SPARKPLUG,
    ENPI_FORMAT_NUMBER,
} enpi_format_t;
typedef enum { ENPI_BASELINE_NONE = 0, ENPI_BASELINE_SEC, ENPI_BASELINE_REGRESSION } enpi_baseline_model_t;

typedef struct {
    char *id;              /* 1..128 bytes of printable UTF-8, may contain '/' */
    enpi_kind_t kind;
    char *carrier;         /* electricity, gas, steam, fuel, ... (free text); NULL if absent */
    enpi_reading_t reading;
    int64_t interval_ms;   /* delta meters: each reading covers [t - interval, t]; 0 = since previous */
    double scale;          /* multiplies the raw value; default 1 */
    double to_kwh;         /* carrier unit -> kWh; default 1 (energy meters only) */
    double rollover;       /* register wrap value (raw units); 0 = none */
    double max_rate;       /* per hour after scale; 0 = no limit */
    int line;              /* line of the meter's id in the file, for messages */
} enpi_meter_cfg_t;

typedef struct {
    enpi_baseline_model_t model; /* NONE when no baseline given */
    bool has_period;
    enpi_civil_t from;           /* baseline period [from, to) when has_period */
    enpi_civil_t to;
    bool has_fixed_sec;          /* { sec: 412.5 } from an energy audit */
    double fixed_sec;
} enpi_baseline_cfg_t;

typedef struct {
    char *id;
    char *name;            /* defaults to id */
    char *product_unit;    /* free text; NULL if absent */
    char *timezone;        /* IANA name (our extension); a copy of the top-level one when
                              not given, so never NULL after a successful parse */
    bool has_aware_since;
    enpi_civil_t aware_since;
    bool has_applying_since;
    enpi_civil_t applying_since;
    enpi_baseline_cfg_t baseline;
    enpi_meter_cfg_t *meters;
    size_t n_meters;
    int line;              /* line of the facility's id in the file, for messages */
} enpi_facility_cfg_t;

typedef struct {
    char *topic;           /* template as written, e.g. "enpi/{facility}/{meter}" */
    char *meter_id;        /* template over the captures, or a fixed id; default "{meter}".
                              Every {name} in it is captured by the topic, except that the
                              default "{meter}" may be uncaptured when the payload carries
                              the id (sparkplug, protobuf, json with meter_id_path) */
    enpi_format_t format;  /* default json */
    char *value_path;      /* json: dot path, default "value"; NULL for other formats */
    char *timestamp_path;  /* json: dot path, default "ts"; NULL for other formats */
    char *meter_id_path;   /* json: optional dot path of a meter id in the payload; NULL if absent */
    int line;              /* line of the entry in the file */
} enpi_input_cfg_t;

typedef struct {
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure;         /* skip CA/hostname verification; default false */
} enpi_tls_cfg_t;

typedef struct {
    char *uri;             /* default tcp://127.0.0.1:1883 */
    char *client_id;       /* default "enpid" */
    bool clean_session;    /* default false */
    int qos;               /* 0 or 1 (2 accepted); default 1 */
    int64_t keepalive_ms;  /* default 30s */
    char *username;        /* NULL if absent */
    char *password_file;   /* NULL if absent */
    bool has_tls;          /* a tls: mapping was given (uri is then ssl/mqtts/wss) */
    enpi_tls_cfg_t tls;
    int mqtt_version;      /* `version:` 3 (3.1.1, default) or 5 */
    int64_t reconnect_max_ms; /* our extension `reconnect_max:` cap of the reconnect backoff
                                 (1s..1h, default 60s; it starts at 1s and doubles) */
    int64_t session_expiry_s; /* our extension `session_expiry:` (MQTT 5 only): seconds the
                                 broker keeps the session after a disconnect; -1 (default)
                                 = never when clean_session is false, none when true */
} enpi_mqtt_cfg_t;

typedef struct {
    enpi_duration_t resolution;
    enpi_duration_t keep;
    int line;              /* line of the entry in the file, for messages */
} enpi_retention_cfg_t;

typedef struct {
    char *path;                   /* default /var/lib/enpid */
    int64_t commit_interval_ms;   /* default 1s */
    enpi_retention_cfg_t *retention; /* each names one of pipeline.resolutions */
    size_t n_retention;
} enpi_storage_cfg_t;

typedef struct {
    enpi_duration_t resolutions[ENPI_MAX_RESOLUTIONS]; /* default 15m, 1h, 1d, 1mo; in file
                                                          order, distinct; fixed ones divide
                                                          24h into whole minutes */
    size_t n_resolutions;
    int64_t allowed_lateness_ms;  /* default 1h; may be 0 */
    int64_t max_future_ms;        /* default 5m; may be 0 */
    int64_t max_gap_ms;           /* default 1h */
} enpi_pipeline_cfg_t;

typedef struct {
    char *name;
    bool has_period;
    enpi_civil_t period_from;
    enpi_civil_t period_to;
    double target_saving_pct;     /* default 8 */
    double stretch_saving_pct;    /* default 13 */
    double aware_increase_pp;     /* default 0 = no target */
    double applying_increase_pp;
} enpi_programme_cfg_t;

typedef struct {
    char *path;                   /* the file read */
    char *timezone;               /* IANA name; default "UTC" */
    enpi_mqtt_cfg_t mqtt;
    enpi_storage_cfg_t storage;
    enpi_pipeline_cfg_t pipeline;
    char *metrics_listen;         /* "host:port"; NULL = disabled */
    enpi_input_cfg_t *inputs;
    size_t n_inputs;
    enpi_programme_cfg_t programme;
    enpi_facility_cfg_t *facilities;
    size_t n_facilities;
} enpi_config_t;

/*
 * Reads and validates the YAML file at `path`. On success returns 0 and *out owns a new
 * config (free with enpi_config_free). On failure sets *out to NULL, returns a negative
 * ENPI_E* code and, when errbuf is not NULL, writes one line "FILE:LINE: message" into it
 * (no newline; truncated to errlen): ENPI_EPARSE for YAML syntax, ENPI_EINVAL for a
 * value or key the schema refuses, ENPI_ENOENT/ENPI_EIO ("FILE: cannot read: <reason>")
 * when the file cannot be read, ENPI_ENOMEM. Thread-safe (no shared state).
 */
int enpi_config_load(const char *path, enpi_config_t **out, char *errbuf, size_t errlen);

/*
 * The same from text already in memory (e.g. the copy the daemon keeps in the store);
 * `name` stands for FILE in messages.
 */
int enpi_config_parse(const char *name, const char *text, size_t len, enpi_config_t **out,
                      char *errbuf, size_t errlen);

/* Frees a config from load/parse; NULL is allowed. */
void enpi_config_free(enpi_config_t *cfg);

/* Lookups by id; NULL when absent. Linear; for start-up and the CLI, not the hot path. */
const enpi_facility_cfg_t *enpi_config_facility(const enpi_config_t *cfg, const char *id);
const enpi_meter_cfg_t *enpi_config_meter(const enpi_config_t *cfg, const char *id,
                                          const enpi_facility_cfg_t **facility_out);

/* The facility's zone name (its own, else the top-level one). */
const char *enpi_config_facility_tz(const enpi_config_t *cfg, const enpi_facility_cfg_t *f);

#endif
