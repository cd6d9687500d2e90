/*
 * reload.c - SIGHUP: re-reading the configuration file and applying what can change at
 * run time without touching the MQTT session; also the one function that reads the file
 * (start-up uses it too, so that what is parsed is exactly what gets stored).
 *
 * Reloadable (SPEC §3): facilities (with their meters, time zones, baselines and
 * registry fields), programme, the top-level timezone (the default of facilities), and
 * pipeline.allowed_lateness / max_future / max_gap. Everything else — mqtt.*, storage.*,
 * inputs, pipeline.resolutions, metrics.listen — is fixed for the life of the process: a
 * change is named in one warning ("takes effect after a restart") and the old values stay.
 *
 * A reload is all or nothing: the new file must parse, validate and build a pipeline
 * exactly as a start would (--check-config's checks); otherwise the error is logged as
 * FILE:LINE: message and the configuration in force does not change at all.
 *
 * DESIGN (lifetimes): d->cfg keeps its address for the life of the process. The
 * reloadable sections of the new configuration are swapped INTO it, and the new object
 * (now holding the old facilities and programme and the unused new fixed sections) is
 * freed at once. That is safe because nothing keeps a pointer into the reloadable
 * sections: the pipeline copies every meter definition and its pipeline section
 * (enpi_pipeline_create/reconfigure), batches own their strings, and the commit worker
 * reads only its batch and the store. The fixed sections (mqtt, storage, inputs — the
 * pipeline points into cfg->inputs) never move. Readers of d->cfg on the loop thread see
 * the new facilities after a reload; no other thread reads d->cfg.
 *
 * What is stored (enpi_store_put_config) after a reload is the new file's text as read:
 * the store always holds the file the daemon last accepted, so `enpi --db DIR` sees what
 * `enpi --config FILE` sees. When fixed parts changed, those parts in the stored text are
 * the ones that take effect at the next restart (the warning says so).
 *
 * Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "enpi_error.h"
#include "enpid.h"
#include "retention.h" /* enpid_commit_store_write_failed */

#define CONFIG_MAX (16u << 20)

int enpid_config_read(const char *path, char **text_out, size_t *len_out, char *errbuf,
                      size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
        return ENPI_EIO;
    }
    int rc = ENPI_EIO;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(errbuf, errlen, "%s: not a regular file", path);
        goto close_file;
    }
    if ((uint64_t)sb.st_size > CONFIG_MAX) {
        snprintf(errbuf, errlen, "%s: larger than 16 MiB", path);
        goto close_file;
    }
    char *text = malloc((size_t)sb.st_size + 1);
    if (text == NULL) {
        snprintf(errbuf, errlen, "%s: out of memory", path);
        rc = ENPI_ENOMEM;
        goto close_file;
    }
    size_t len = fread(text, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        snprintf(errbuf, errlen, "%s: read error", path);
        free(text);
        goto close_file;
    }
    text[len] = '\0';
    *text_out = text;
    *len_out = len;
    rc = 0;
close_file:
    fclose(f);
    return rc;
}

/* ---- what differs in the fixed sections ---- */

static bool str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool dur_eq(const enpi_duration_t *a, const enpi_duration_t *b)
{
    return a->ms == b->ms && a->months == b->months;
}

static bool mqtt_eq(const enpi_mqtt_cfg_t *a, const enpi_mqtt_cfg_t *b)
{
    return str_eq(a->uri, b->uri) && str_eq(a->client_id, b->client_id) &&
           a->clean_session == b->clean_session && a->qos == b->qos &&
           a->keepalive_ms == b->keepalive_ms && str_eq(a->username, b->username) &&
           str_eq(a->password_file, b->password_file) && a->has_tls == b->has_tls &&
           str_eq(a->tls.ca_file, b->tls.ca_file) && str_eq(a->tls.cert_file, b->tls.cert_file) &&
           str_eq(a->tls.key_file, b->tls.key_file) && a->tls.insecure == b->tls.insecure &&
           a->mqtt_version == b->mqtt_version && a->reconnect_max_ms == b->reconnect_max_ms &&
           a->session_expiry_s == b->session_expiry_s;
}

static bool storage_eq(const enpi_storage_cfg_t *a, const enpi_storage_cfg_t *b)
{
    if (!str_eq(a->path, b->path) || a->commit_interval_ms != b->commit_interval_ms ||
        a->n_retention != b->n_retention)
        return false;
    for (size_t i = 0; i < a->n_retention; i++)
        if (!dur_eq(&a->retention[i].resolution, &b->retention[i].resolution) ||
            !dur_eq(&a->retention[i].keep, &b->retention[i].keep))
            return false;
    return true;
}

static bool inputs_eq(const enpi_config_t *a, const enpi_config_t *b)
{
    if (a->n_inputs != b->n_inputs)
        return false;
    for (size_t i = 0; i < a->n_inputs; i++) {
        const enpi_input_cfg_t *x = &a->inputs[i], *y = &b->inputs[i];
        if (!str_eq(x->topic, y->topic) || !str_eq(x->meter_id, y->meter_id) ||
            x->format != y->format || !str_eq(x->value_path, y->value_path) ||
            !str_eq(x->timestamp_path, y->timestamp_path) ||
            !str_eq(x->meter_id_path, y->meter_id_path))
            return false;
    }
    return true;
}

static bool resolutions_eq(const enpi_pipeline_cfg_t *a, const enpi_pipeline_cfg_t *b)
{
    if (a->n_resolutions != b->n_resolutions)
        return false;
    for (size_t i = 0; i < a->n_resolutions; i++)
        if (!dur_eq(&a->resolutions[i], &b->resolutions[i]))
            return false;
    return true;
}

/* Writes the names of the fixed sections that differ ("mqtt, inputs") into buf; returns
 * true when any does. */
static bool fixed_changes(const enpi_config_t *cur, const enpi_config_t *next, char *buf,
                          size_t len)
{
    const char *names[5];
    size_t n = 0, used = 0;
    if (!mqtt_eq(&cur->mqtt, &next->mqtt))
        names[n++] = "mqtt";
    if (!storage_eq(&cur->storage, &next->storage))
        names[n++] = "storage";
    if (!inputs_eq(cur, next))
        names[n++] = "inputs";
    if (!resolutions_eq(&cur->pipeline, &next->pipeline))
        names[n++] = "pipeline.resolutions";
    if (!str_eq(cur->metrics_listen, next->metrics_listen))
        names[n++] = "metrics.listen";
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
    return n > 0;
}

/* Moves the reloadable sections of `next` into `cur` (and the old ones into `next`). */
static void swap_reloadable(enpi_config_t *cur, enpi_config_t *next)
{
    char *tz = cur->timezone;
    cur->timezone = next->timezone;
    next->timezone = tz;

    enpi_programme_cfg_t prog = cur->programme;
    cur->programme = next->programme;
    next->programme = prog;

    enpi_facility_cfg_t *fac = cur->facilities;
    size_t n_fac = cur->n_facilities;
    cur->facilities = next->facilities;
    cur->n_facilities = next->n_facilities;
    next->facilities = fac;
    next->n_facilities = n_fac;

    cur->pipeline.allowed_lateness_ms = next->pipeline.allowed_lateness_ms;
    cur->pipeline.max_future_ms = next->pipeline.max_future_ms;
    cur->pipeline.max_gap_ms = next->pipeline.max_gap_ms;
}

/* Facilities of `next` that `cur` lacks, and the other way round. */
static void count_facilities(const enpi_config_t *cur, const enpi_config_t *next, size_t *added,
                             size_t *removed)
{
    *added = 0;
    *removed = 0;
    for (size_t i = 0; i < next->n_facilities; i++)
        if (enpi_config_facility(cur, next->facilities[i].id) == NULL)
            (*added)++;
    for (size_t i = 0; i < cur->n_facilities; i++)
        if (enpi_config_facility(next, cur->facilities[i].id) == NULL)
            (*removed)++;
}

typedef struct {
    enpid_t *d;
    size_t restored;
} restore_added_t;

static int restore_added_cb(void *ctx, const char *meter_id, const enpi_meter_state_t *st)
{
    restore_added_t *r = ctx;
    int rc = enpi_pipeline_restore_added(r->d->pipe, meter_id, st);
    if (rc == 0)
        r->restored++;
    else if (rc != ENPI_ENOENT)
        log_warn("reload: cannot restore the stored state of meter \"%s\": %s", meter_id,
                 enpi_strerror(rc));
    return 0;
}

/*
 * Parses and validates the file's text like a start would. Returns the new config, or
 * NULL with the error ("FILE:LINE: message") logged.
 */
static enpi_config_t *load_checked(enpid_t *d, const char *text, size_t len)
{
    char errbuf[1024] = "";
    enpi_config_t *next = NULL;
    int rc = enpi_config_parse(d->config_path, text, len, &next, errbuf, sizeof errbuf);
    if (rc != 0) {
        log_err("reload: %s; the current configuration stays in force",
                errbuf[0] ? errbuf : enpi_strerror(rc));
        return NULL;
    }
    /* The checks of a start: zones exist, topic templates compile, meter ids are valid. */
    enpi_pipeline_t *probe = NULL;
    errbuf[0] = '\0';
    rc = enpi_pipeline_create(next, &probe, errbuf, sizeof errbuf);
    if (rc != 0) {
        log_err("reload: %s: %s; the current configuration stays in force", d->config_path,
                errbuf[0] ? errbuf : enpi_strerror(rc));
        enpi_config_free(next);
        return NULL;
    }
    enpi_pipeline_free(probe);
    return next;
}

/* Applies `next` (checked) to the pipeline and d->cfg. Takes ownership of next and text.
 * Returns 0, or an error (logged) with nothing changed. */
static int apply(enpid_t *d, enpi_config_t *next, char *text, size_t len, char *status,
                 size_t status_len)
{
    char errbuf[512] = "";
    char fixed[128];
    enpi_reconfigure_summary_t sum;
    size_t fac_added, fac_removed;

    int rc = enpi_pipeline_reconfigure(d->pipe, next, &sum, errbuf, sizeof errbuf);
    if (rc != 0) {
        log_err("reload: %s: %s; the current configuration stays in force", d->config_path,
                errbuf[0] ? errbuf : enpi_strerror(rc));
        enpi_config_free(next);
        free(text);
        return rc;
    }
    restore_added_t ra = {.d = d};
    if (sum.added > 0) {
        rc = enpi_store_meter_states(d->store, restore_added_cb, &ra);
        if (rc != 0)
            log_warn("reload: cannot read the stored meter states (%s); the %zu added meter(s) "
                     "start without their earlier state",
                     enpi_strerror(rc), sum.added);
    }
    bool fixed_changed = fixed_changes(d->cfg, next, fixed, sizeof fixed);
    count_facilities(d->cfg, next, &fac_added, &fac_removed);
    swap_reloadable(d->cfg, next);
    enpi_config_free(next); /* the old facilities and programme, the unused fixed parts */
    free(d->config_text);
    d->config_text = text;
    d->config_len = len;
    d->n_reloads++;

    if (!enpid_commit_store_usable(d)) {
        /* A write now could hit a RocksDB instance that must be replaced first (commit.c):
         * the text is stored after the next successful commit instead. */
        d->config_store_pending = true;
        log_warn("reload: storage is failing; the new configuration is stored once a "
                 "commit succeeds again (`enpi --db` shows the previous one until then)");
    } else {
        rc = enpi_store_put_config(d->store, d->config_text, d->config_len);
        if (rc == ENPI_EIO)
            enpid_commit_store_write_failed(d); /* never write through that instance again */
        if (rc != 0) {
            d->config_store_pending = true;
            log_err("reload: cannot store the new configuration (%s); tried again after the "
                    "next successful commit",
                    enpi_strerror(rc));
        } else {
            d->config_store_pending = false;
        }
    }
    log_notice("reload: applied %s: %zu facilities (+%zu -%zu), %zu meters (+%zu new, %zu "
               "back, -%zu removed, %zu changed, %zu re-based, %zu restored from the store)",
               d->config_path, d->cfg->n_facilities, fac_added, fac_removed, sum.meters,
               sum.added, sum.revived, sum.removed, sum.changed, sum.rebased, ra.restored);
    if (sum.zone_changed > 0)
        log_warn("reload: the time zone of %zu meter(s) changed: their windows align to the "
                 "new zone from their next reading on; stored windows keep the old alignment",
                 sum.zone_changed);
    if (fixed_changed) {
        log_warn("reload: %s changed: takes effect after a restart (running with the old "
                 "values until then)",
                 fixed);
        snprintf(status, status_len,
                 "configuration reloaded (%zu facilities, %zu meters); restart needed for: %s",
                 d->cfg->n_facilities, sum.meters, fixed);
    } else {
        snprintf(status, status_len, "configuration reloaded (%zu facilities, %zu meters)",
                 d->cfg->n_facilities, sum.meters);
    }
    return 0;
}

void enpid_reload(enpid_t *d)
{
    if (d->phase >= ENPID_STOP_MQTT || d->pipe == NULL || d->store == NULL) {
        log_notice("signal SIGHUP: %s; reload ignored",
                   d->phase >= ENPID_STOP_MQTT ? "stopping" : "not started");
        return;
    }
    log_notice("signal SIGHUP: reloading %s", d->config_path);
    /* Before READY=1 systemd is not waiting for a reload: no RELOADING=1/READY=1 then. */
    bool tell = d->phase == ENPID_RUNNING;
    if (tell)
        enpid_notify_reloading(d);
    char status[256];
    char errbuf[1024] = "";
    char *text = NULL;
    size_t len = 0;
    int rc = enpid_config_read(d->config_path, &text, &len, errbuf, sizeof errbuf);
    if (rc != 0) {
        log_err("reload: %s; the current configuration stays in force", errbuf);
        snprintf(status, sizeof status, "reload failed (cannot read the file); previous "
                                        "configuration in force");
        d->n_reload_failures++;
        goto done;
    }
    enpi_config_t *next = load_checked(d, text, len);
    if (next == NULL) {
        free(text);
        snprintf(status, sizeof status,
                 "reload rejected (invalid file, see the log); previous configuration in force");
        d->n_reload_failures++;
        goto done;
    }
    if (apply(d, next, text, len, status, sizeof status) != 0) {
        snprintf(status, sizeof status, "reload failed (see the log); previous configuration "
                                        "in force");
        d->n_reload_failures++;
    }
done:
    if (tell)
        enpid_notify_reloaded(d, status);
    else
        enpid_notify_status(d, status);
}
