/*
 * test_cli_binary.c - the real `enpi` binary against a real store: this test opens a
 * temporary store PRIMARY (as enpid would), stores a configuration and commits hand-made
 * batches, and while the store stays open runs `enpi --db DIR ...` (and --config FILE,
 * $ENPID_CONFIG) and checks stdout, stderr and the exit status: SPEC §7's JSON keys in
 * order with numbers that round-trip exactly, facility sums, SEC, final, CSV and table
 * output, meters, unknown meters, facilities, and the error and usage exits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage.h"
#include "window.h"

extern char **environ;

#define H 3600000LL
/* 2018-03-28T00:00:00+07:00 */
#define D0 1522170000000LL

static char tmpdir[64];
static char dbdir[128];
static char cfgfile[128];
static enpi_store_t *store;
static int64_t hour_now; /* the current UTC hour, for windows that are not final yet */

static const char config_yaml[] =
    "timezone: Asia/Ho_Chi_Minh\n"
    "storage:\n"
    "  path: %s\n"
    "pipeline:\n"
    "  resolutions: [15m, 1h, 1d, 1mo]\n"
    "  allowed_lateness: 1h\n"
    "inputs:\n"
    "  - topic: \"enpi/{facility}/{meter}\"\n"
    "    meter_id: \"{facility}/{meter}\"\n"
    "    format: json\n"
    "facilities:\n"
    "  - id: f001\n"
    "    name: \"Công ty ABC, \\\"North\\\"\"\n"
    "    product_unit: t\n"
    "    meters:\n"
    "      - { id: f001/em1, kind: energy, reading: cumulative }\n"
    "      - { id: f001/gas, kind: energy, carrier: gas, reading: delta, interval: 15m }\n"
    "      - { id: f001/prod, kind: production, reading: cumulative }\n"
    "      - { id: f001/steam, kind: energy }\n"
    "  - id: f002\n"
    "    timezone: Europe/Berlin\n"
    "    meters:\n"
    "      - { id: f002/em, kind: energy }\n";

typedef struct {
    int status; /* exit status, or -1 when killed */
    char *out;
    char *err;
} run_t;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    fclose(f);
    return buf;
}

static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* Runs ENPI_BIN with the NULL-terminated args; extra_env (may be NULL) is added. */
static run_t run_env(const char *extra_env, const char *const *args)
{
    char out_path[160], err_path[160];
    snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
    snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
    const char *argv[32] = {ENPI_BIN};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = args[argc - 1];
    argv[argc] = NULL;

    size_t n_env = 0;
    while (environ[n_env])
        n_env++;
    char **envp = calloc(n_env + 2, sizeof *envp);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], "ENPID_CONFIG=", 13) != 0)
            envp[k++] = environ[i];
    if (extra_env)
        envp[k++] = (char *)extra_env;
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, ENPI_BIN, &fa, NULL, (char *const *)argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    run_t r = {WIFEXITED(ws) ? WEXITSTATUS(ws) : -1, slurp(out_path), slurp(err_path)};
    return r;
}

#define RUN(...) run_env(NULL, (const char *const[]){__VA_ARGS__, NULL})

/* Runs and expects exit 0 with JSON on stdout and nothing on stderr; returns the JSON. */
static json_object *run_json(const char *const *args)
{
    run_t r = run_env(NULL, args);
    if (r.status != 0)
        fail_msg("enpi exited %d: %s", r.status, r.err);
    assert_string_equal(r.err, "");
    json_object *j = json_tokener_parse(r.out);
    if (!j)
        fail_msg("not JSON: %s", r.out);
    run_free(&r);
    return j;
}
#define RUN_JSON(...)                                                                              \
    run_json((const char *const[]){"--db", dbdir, __VA_ARGS__, "--format", "json", NULL})

/* Expects the exit status and exactly one diagnostic line (plus the usage hint for 2). */
static void expect_failure(run_t r, int status, const char *needle)
{
    if (r.status != status)
        fail_msg("expected exit %d, got %d; stderr: %s", status, r.status, r.err);
    assert_string_equal(r.out, "");
    assert_true(strncmp(r.err, "enpi: ", 6) == 0);
    if (needle && !strstr(r.err, needle))
        fail_msg("stderr lacks '%s': %s", needle, r.err);
    const char *nl = strchr(r.err, '\n');
    assert_non_null(nl);
    if (status == 2)
        assert_string_equal(nl + 1, "Try 'enpi --help' for more information.\n");
    else
        assert_string_equal(nl + 1, "");
    run_free(&r);
}

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("key '%s' missing", key);
    return v;
}

static void expect_keys(json_object *o, const char *const *keys)
{
    size_t k = 0;
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        assert_non_null(keys[k]);
        assert_string_equal(key, keys[k]);
        k++;
    }
    assert_null(keys[k]);
}

static void expect_real(json_object *v, double want)
{
    assert_true(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int));
    if (json_object_get_double(v) != want)
        fail_msg("got %.17g, want %.17g", json_object_get_double(v), want);
}

static void expect_uint(json_object *v, uint64_t want)
{
    assert_true(json_object_is_type(v, json_type_int));
    assert_true(json_object_get_uint64(v) == want);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static enpi_rollup_delta_t delta(uint32_t meter, uint32_t res, int64_t start, int64_t len,
                                 double value, double est, uint32_t readings, uint32_t resets,
                                 uint32_t late, uint32_t dups)
{
    enpi_rollup_delta_t d = {
        meter, res, start, start + len, {value, est, readings, resets, late, dups}};
    return d;
}

static enpi_meter_snapshot_t snap(const char *id, int64_t first, int64_t last, uint64_t readings,
                                  uint64_t rejected)
{
    enpi_meter_snapshot_t s = {(char *)id, {0}};
    s.state.has_state = true;
    s.state.first_ts_ms = first;
    s.state.last_ts_ms = last;
    s.state.last_raw = 1000;
    s.state.readings = readings;
    s.state.resets = 1;
    s.state.late = 2;
    s.state.duplicates = 3;
    s.state.rejected = rejected;
    return s;
}

static int setup(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/enpi-cli-test-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    snprintf(dbdir, sizeof dbdir, "%s/db", tmpdir);
    snprintf(cfgfile, sizeof cfgfile, "%s/enpid.yaml", tmpdir);
    char yaml[4096];
    int len = snprintf(yaml, sizeof yaml, config_yaml, dbdir);
    FILE *f = fopen(cfgfile, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);

    char err[256];
    assert_int_equal(enpi_store_open(dbdir, ENPI_STORE_PRIMARY, &store, err, sizeof err), 0);
    assert_int_equal(enpi_store_put_config(store, yaml, (size_t)len), 0);

    hour_now = (int64_t)time(NULL) * 1000 / H * H;
    enpi_duration_t hd = {H, 0}, dd = {24 * H, 0};
    uint32_t h = enpi_resolution_code(&hd), d = enpi_resolution_code(&dd);
    enpi_rollup_delta_t rollups[] = {
        delta(0, h, D0 - H, H, 100, 0, 1, 0, 0, 0), /* before --from */
        delta(0, h, D0, H, 0.1, 0, 4, 1, 0, 0),
        delta(0, h, D0 + H, H, 1e-12, 0, 1, 0, 0, 2),
        delta(0, h, D0 + 3 * H, H, 9, 0, 1, 0, 0, 0), /* at --to: excluded */
        delta(1, h, D0, H, 0.2, 0.05, 1, 0, 1, 0),
        delta(2, h, D0, H, 3, 0.5, 2, 0, 0, 1),
        delta(2, h, D0 + 2 * H, H, 5, 0, 1, 0, 0, 0),
        delta(0, d, D0, 24 * H, 42.5, 0, 9, 0, 0, 0),
        delta(3, h, hour_now + H, H, 1.25, 0, 2, 0, 0, 0),
        delta(3, h, hour_now + 2 * H, H, 2.5, 0, 2, 0, 0, 0),
    };
    enpi_meter_snapshot_t meters[] = {
        snap("f001/em1", D0 - 2 * H, D0 + 3 * H + H / 2, 12, 0),
        snap("f001/gas", D0, D0 + 2 * H, 5, 1),
        snap("f001/prod", D0, D0 + 3 * H, 6, 0),
        snap("f002/em", hour_now, hour_now + 3 * H + H / 2, 4, 0),
    };
    enpi_unknown_delta_t unknown[] = {
        {(char *)"x/ghost", (char *)"enpi/x/ghost", 3, D0 + 5 * 60000},
    };
    enpi_batch_t b = {.rollups = rollups,
                      .n_rollups = sizeof rollups / sizeof rollups[0],
                      .meters = meters,
                      .n_meters = sizeof meters / sizeof meters[0],
                      .unknown = unknown,
                      .n_unknown = 1,
                      .inbox_upto = 1};
    assert_int_equal(enpi_store_commit(store, &b), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    enpi_store_close(store);
    if (getenv("ENPI_CLI_TEST_KEEP")) /* for a look at the store: enpi --db DIR ... */
        fprintf(stderr, "kept %s\n", dbdir);
    else
        nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const char *const facility_keys[] = {
    "facility",  "start",  "end",  "energy_kwh", "units", "sec", "readings",
    "estimated", "resets", "late", "duplicates", "final", NULL};
static const char *const meter_keys[] = {
    "meter",     "start",  "end",  "energy_kwh", "units", "sec", "readings",
    "estimated", "resets", "late", "duplicates", "final", NULL};

static void query_facility_json(void **state)
{
    (void)state;
    json_object *a = RUN_JSON("query", "--facility", "f001", "--resolution", "1h", "--from",
                              "2018-03-28", "--to", "2018-03-28T03:00");
    assert_int_equal(json_object_array_length(a), 3);
    json_object *r = json_object_array_get_idx(a, 0);
    expect_keys(r, facility_keys);
    assert_string_equal(json_object_get_string(get(r, "facility")), "f001");
    assert_string_equal(json_object_get_string(get(r, "start")), "2018-03-28T00:00:00+07:00");
    assert_string_equal(json_object_get_string(get(r, "end")), "2018-03-28T01:00:00+07:00");
    expect_real(get(r, "energy_kwh"), 0.1 + 0.2);
    expect_real(get(r, "units"), 3);
    expect_real(get(r, "sec"), (0.1 + 0.2) / 3);
    expect_uint(get(r, "readings"), 7);
    json_object *est = get(r, "estimated");
    static const char *const est_keys[] = {"energy_kwh", "units", NULL};
    expect_keys(est, est_keys);
    expect_real(get(est, "energy_kwh"), 0.05);
    expect_real(get(est, "units"), 0.5);
    expect_uint(get(r, "resets"), 1);
    expect_uint(get(r, "late"), 1);
    expect_uint(get(r, "duplicates"), 1);
    assert_true(json_object_get_boolean(get(r, "final")));

    r = json_object_array_get_idx(a, 1);
    assert_string_equal(json_object_get_string(get(r, "start")), "2018-03-28T01:00:00+07:00");
    expect_real(get(r, "energy_kwh"), 1e-12);
    expect_real(get(r, "units"), 0);
    assert_null(get(r, "sec"));
    expect_uint(get(r, "duplicates"), 2);

    r = json_object_array_get_idx(a, 2);
    assert_string_equal(json_object_get_string(get(r, "start")), "2018-03-28T02:00:00+07:00");
    expect_real(get(r, "energy_kwh"), 0);
    expect_real(get(r, "units"), 5);
    expect_real(get(r, "sec"), 0);
    json_object_put(a);

    /* the same window through an offset, and the daily resolution */
    a = RUN_JSON("query", "--facility", "f001", "--resolution", "1d", "--from",
                 "2018-03-27T17:00:00Z", "--to", "2018-03-29T00:00:00+07:00");
    assert_int_equal(json_object_array_length(a), 1);
    r = json_object_array_get_idx(a, 0);
    assert_string_equal(json_object_get_string(get(r, "end")), "2018-03-29T00:00:00+07:00");
    expect_real(get(r, "energy_kwh"), 42.5);
    assert_null(get(r, "sec"));
    json_object_put(a);

    /* a resolution with no rollups stored: an empty array */
    a = RUN_JSON("query", "--facility", "f001", "--resolution", "15m", "--from", "2018-03-28",
                 "--to", "2018-03-29");
    assert_int_equal(json_object_array_length(a), 0);
    json_object_put(a);
}

static void query_meter_json(void **state)
{
    (void)state;
    json_object *a = RUN_JSON("query", "--meter", "f001/prod", "--resolution", "1h", "--from",
                              "2018-03-28", "--to", "2018-03-29");
    assert_int_equal(json_object_array_length(a), 2);
    json_object *r = json_object_array_get_idx(a, 0);
    expect_keys(r, meter_keys);
    assert_string_equal(json_object_get_string(get(r, "meter")), "f001/prod");
    assert_null(get(r, "energy_kwh"));
    expect_real(get(r, "units"), 3);
    assert_null(get(r, "sec"));
    expect_real(get(r, "estimated"), 0.5);
    json_object_put(a);

    a = RUN_JSON("query", "--meter", "f001/em1", "--resolution", "1h", "--from", "2018-03-27",
                 "--to", "2018-03-29");
    assert_int_equal(json_object_array_length(a), 4);
    r = json_object_array_get_idx(a, 0);
    expect_real(get(r, "energy_kwh"), 100);
    assert_null(get(r, "units"));
    json_object_put(a);
}

static void final_follows_watermark_and_clock(void **state)
{
    (void)state;
    char from[32], to[32];
    time_t s = (time_t)(hour_now / 1000);
    strftime(from, sizeof from, "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
    s += 4 * 3600;
    strftime(to, sizeof to, "%Y-%m-%dT%H:%M:%SZ", gmtime(&s));
    json_object *a =
        RUN_JSON("query", "--facility", "f002", "--resolution", "1h", "--from", from, "--to", to);
    assert_int_equal(json_object_array_length(a), 2);
    /* end + 1h = now+3h is before the meter's last reading (now+3h30): final */
    assert_true(json_object_get_boolean(get(json_object_array_get_idx(a, 0), "final")));
    /* end + 1h = now+4h: neither the reading nor the clock is past it */
    assert_false(json_object_get_boolean(get(json_object_array_get_idx(a, 1), "final")));
    expect_real(get(json_object_array_get_idx(a, 1), "energy_kwh"), 2.5);
    json_object_put(a);
}

static void query_csv_and_table(void **state)
{
    (void)state;
    run_t r = RUN("--db", dbdir, "query", "--meter", "f001/gas", "--resolution", "1h", "--from",
                  "2018-03-28", "--to", "2018-03-29", "--format", "csv");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out,
                        "meter,start,end,energy_kwh,units,sec,readings,estimated,resets,late,"
                        "duplicates,final\r\n"
                        "f001/gas,2018-03-28T00:00:00+07:00,2018-03-28T01:00:00+07:00,0.2,,,1,"
                        "0.05,0,1,0,true\r\n");
    run_free(&r);

    r = RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "1h", "--from",
            "2018-03-28", "--to", "2018-03-28T01:00");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(
        r.out, "start                      energy_kwh  units    sec  readings  est_kwh  est_units  "
               "r/l/d  final\n"
               "-------------------------  ----------  -----  -----  --------  -------  ---------  "
               "-----  -----\n"
               "2018-03-28T00:00:00+07:00       0.300  3.000  0.100         7    0.050      0.500  "
               "1/1/1  yes\n");
    run_free(&r);
}

static void meters_and_unknown(void **state)
{
    (void)state;
    json_object *a = RUN_JSON("meters");
    assert_int_equal(json_object_array_length(a), 5);
    json_object *r = json_object_array_get_idx(a, 0);
    static const char *const keys[] = {
        "meter",         "facility", "kind",   "reading", "last_reading",
        "first_reading", "readings", "resets", "late",    "duplicates",
        "rejected",      "stale",    NULL};
    expect_keys(r, keys);
    assert_string_equal(json_object_get_string(get(r, "meter")), "f001/em1");
    assert_string_equal(json_object_get_string(get(r, "facility")), "f001");
    assert_string_equal(json_object_get_string(get(r, "kind")), "energy");
    assert_string_equal(json_object_get_string(get(r, "reading")), "cumulative");
    assert_string_equal(json_object_get_string(get(r, "last_reading")),
                        "2018-03-28T03:30:00+07:00");
    assert_string_equal(json_object_get_string(get(r, "first_reading")),
                        "2018-03-27T22:00:00+07:00");
    expect_uint(get(r, "readings"), 12);
    expect_uint(get(r, "resets"), 1);
    expect_uint(get(r, "late"), 2);
    expect_uint(get(r, "duplicates"), 3);
    expect_uint(get(r, "rejected"), 0);
    assert_true(json_object_get_boolean(get(r, "stale")));
    r = json_object_array_get_idx(a, 1);
    assert_string_equal(json_object_get_string(get(r, "reading")), "delta");
    expect_uint(get(r, "rejected"), 1);
    r = json_object_array_get_idx(a, 3); /* never reported */
    assert_string_equal(json_object_get_string(get(r, "meter")), "f001/steam");
    assert_null(get(r, "last_reading"));
    assert_null(get(r, "first_reading"));
    expect_uint(get(r, "readings"), 0);
    assert_true(json_object_get_boolean(get(r, "stale")));
    r = json_object_array_get_idx(a, 4);
    assert_string_equal(json_object_get_string(get(r, "facility")), "f002");
    assert_false(json_object_get_boolean(get(r, "stale")));
    json_object_put(a);

    a = RUN_JSON("meters", "--unknown");
    assert_int_equal(json_object_array_length(a), 1);
    r = json_object_array_get_idx(a, 0);
    static const char *const ukeys[] = {"meter", "count", "last_topic", "last_seen", NULL};
    expect_keys(r, ukeys);
    assert_string_equal(json_object_get_string(get(r, "meter")), "x/ghost");
    expect_uint(get(r, "count"), 3);
    assert_string_equal(json_object_get_string(get(r, "last_topic")), "enpi/x/ghost");
    assert_string_equal(json_object_get_string(get(r, "last_seen")), "2018-03-28T00:05:00+07:00");
    json_object_put(a);
}

static void facilities_json_and_csv(void **state)
{
    (void)state;
    json_object *a = RUN_JSON("facilities");
    assert_int_equal(json_object_array_length(a), 2);
    json_object *r = json_object_array_get_idx(a, 0);
    static const char *const keys[] = {"facility", "name",         "timezone",     "product_unit",
                                       "meters",   "last_reading", "stale_meters", NULL};
    expect_keys(r, keys);
    assert_string_equal(json_object_get_string(get(r, "name")), "Công ty ABC, \"North\"");
    assert_string_equal(json_object_get_string(get(r, "timezone")), "Asia/Ho_Chi_Minh");
    assert_string_equal(json_object_get_string(get(r, "product_unit")), "t");
    expect_uint(get(r, "meters"), 4);
    assert_string_equal(json_object_get_string(get(r, "last_reading")),
                        "2018-03-28T03:30:00+07:00");
    expect_uint(get(r, "stale_meters"), 4);
    r = json_object_array_get_idx(a, 1);
    assert_string_equal(json_object_get_string(get(r, "name")), "f002");
    assert_string_equal(json_object_get_string(get(r, "timezone")), "Europe/Berlin");
    assert_null(get(r, "product_unit"));
    expect_uint(get(r, "stale_meters"), 0);
    json_object_put(a);

    run_t x = RUN("--db", dbdir, "--format", "csv", "facilities");
    assert_int_equal(x.status, 0);
    assert_true(strncmp(x.out,
                        "facility,name,timezone,product_unit,meters,last_reading,stale_meters\r\n"
                        "f001,\"Công ty ABC, \"\"North\"\"\",Asia/Ho_Chi_Minh,t,4,"
                        "2018-03-28T03:30:00+07:00,4\r\nf002,f002,Europe/Berlin,,1,",
                        strlen("facility,name,timezone,product_unit,meters,last_reading,"
                               "stale_meters\r\nf001,\"Công ty ABC, \"\"North\"\"\",Asia/"
                               "Ho_Chi_Minh,t,4,2018-03-28T03:30:00+07:00,4\r\nf002,f002,"
                               "Europe/Berlin,,1,")) == 0);
    run_free(&x);
}

static void config_file_and_environment(void **state)
{
    (void)state;
    run_t r = RUN("--config", cfgfile, "facilities", "--format", "json");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"f002\""));
    run_free(&r);
    char env[200];
    snprintf(env, sizeof env, "ENPID_CONFIG=%s", cfgfile);
    r = run_env(env, (const char *const[]){"meters", "--format", "json", NULL});
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "\"f001/steam\""));
    run_free(&r);
}

static void sees_later_commits(void **state)
{
    (void)state;
    enpi_duration_t hd = {H, 0};
    enpi_rollup_delta_t rollups[] = {
        delta(0, enpi_resolution_code(&hd), D0, H, 0.5, 0, 1, 0, 0, 0)};
    enpi_meter_snapshot_t meters[] = {snap("f001/em1", D0 - 2 * H, D0 + 4 * H, 13, 0)};
    enpi_batch_t b = {
        .rollups = rollups, .n_rollups = 1, .meters = meters, .n_meters = 1, .inbox_upto = 2};
    assert_int_equal(enpi_store_commit(store, &b), 0);
    json_object *a = RUN_JSON("query", "--meter", "f001/em1", "--resolution", "1h", "--from",
                              "2018-03-28", "--to", "2018-03-28T01:00");
    assert_int_equal(json_object_array_length(a), 1);
    json_object *r = json_object_array_get_idx(a, 0);
    expect_real(get(r, "energy_kwh"), 0.1 + 0.5);
    expect_uint(get(r, "readings"), 5);
    json_object_put(a);
}

static void errors_exit_1_with_one_line(void **state)
{
    (void)state;
    expect_failure(RUN("--db", dbdir, "query", "--facility", "nope", "--resolution", "1h", "--from",
                       "2018-03-28", "--to", "2018-03-29"),
                   1, "no facility 'nope'");
    expect_failure(RUN("--db", dbdir, "query", "--meter", "f001/none", "--resolution", "1h",
                       "--from", "2018-03-28", "--to", "2018-03-29"),
                   1, "no meter 'f001/none'");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "2h", "--from",
                       "2018-03-28", "--to", "2018-03-29"),
                   1, "configured: 15m, 1h, 1d, 1mo");
    char missing[160];
    snprintf(missing, sizeof missing, "%s/absent", tmpdir);
    expect_failure(RUN("--db", missing, "meters"), 1, "no store at");
    expect_failure(RUN("--config", missing, "meters"), 1, missing);

    /* a store enpid never ran on holds no configuration */
    char empty[160], err[256];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    enpi_store_t *e;
    assert_int_equal(enpi_store_open(empty, ENPI_STORE_PRIMARY, &e, err, sizeof err), 0);
    enpi_store_close(e);
    expect_failure(RUN("--db", empty, "facilities"), 1, "no configuration stored");
}

static void bad_usage_exits_2(void **state)
{
    (void)state;
    expect_failure(RUN("--db", dbdir, "forecast"), 2, "unknown command 'forecast'");
    expect_failure(RUN("--db", dbdir), 2, "missing command");
    expect_failure(RUN("--bogus", "meters"), 2, "unknown option '--bogus'");
    expect_failure(RUN("--db", dbdir, "meters", "--format", "xml"), 2, "unknown format 'xml'");
    expect_failure(RUN("--db", dbdir, "meters", "extra"), 2, "unexpected argument 'extra'");
    expect_failure(RUN("--db", dbdir, "--config", cfgfile, "meters"), 2, "cannot be used together");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "1h", "--from",
                       "2018-03-28"),
                   2, "missing --to");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--meter", "f001/em1",
                       "--resolution", "1h", "--from", "2018-03-28", "--to", "2018-03-29"),
                   2, "exactly one of");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "1h", "--from",
                       "28/03/2018", "--to", "2018-03-29"),
                   2, "bad time '28/03/2018' for --from");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "1h", "--from",
                       "2018-03-29", "--to", "2018-03-28"),
                   2, "not before");
    expect_failure(RUN("--db", dbdir, "query", "--facility", "f001", "--resolution", "hourly",
                       "--from", "2018-03-28", "--to", "2018-03-29"),
                   2, "bad resolution 'hourly'");
}

static void help_and_version(void **state)
{
    (void)state;
    run_t r = RUN("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: enpi"));
    assert_string_equal(r.err, "");
    run_free(&r);
    r = RUN("query", "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--resolution R"));
    run_free(&r);
    r = RUN("--version");
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.out, "enpi ", 5) == 0);
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(query_facility_json),
        cmocka_unit_test(query_meter_json),
        cmocka_unit_test(final_follows_watermark_and_clock),
        cmocka_unit_test(query_csv_and_table),
        cmocka_unit_test(meters_and_unknown),
        cmocka_unit_test(facilities_json_and_csv),
        cmocka_unit_test(config_file_and_environment),
        cmocka_unit_test(sees_later_commits),
        cmocka_unit_test(errors_exit_1_with_one_line),
        cmocka_unit_test(bad_usage_exits_2),
        cmocka_unit_test(help_and_version),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
