/*
 * bench_json.c - how fast the candidate JSON parsers turn enpi's typical payloads into
 * readings, on one core: jsmn (tokens into a reused buffer, numbers via strtod), json-c
 * (a reused tokener, a DOM per message) and enpi's own decoder (jsmn plus validation and
 * exact fast number conversion, decode_json.c). Payloads: SPEC §4's default object
 * {"ts": 1522206000000, "value": 1234.567} and an array of 20 such objects.
 *
 * Usage: bench_json [seconds per case, default 1]
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "decode_json.h"

static volatile double sink; /* keeps the compiler from dropping the work */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- jsmn: tokens, then the two keys of each object, numbers through strtod ---- */

static jsmntok_t toks[512];

static double jsmn_num(const char *js, const jsmntok_t *t)
{
    char buf[64];
    size_t n = (size_t)(t->end - t->start);
    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    memcpy(buf, js + t->start, n);
    buf[n] = '\0';
    return strtod(buf, NULL);
}

static int jsmn_object(const char *js, int i, int ntok, double *ts, double *v)
{
    int nkeys = toks[i].size, k = i + 1, found = 0;
    for (int m = 0; m < nkeys && k + 1 < ntok; m++, k += 2) {
        size_t len = (size_t)(toks[k].end - toks[k].start);
        if (len == 2 && memcmp(js + toks[k].start, "ts", 2) == 0) {
            *ts = jsmn_num(js, &toks[k + 1]);
            found++;
        } else if (len == 5 && memcmp(js + toks[k].start, "value", 5) == 0) {
            *v = jsmn_num(js, &toks[k + 1]);
            found++;
        }
    }
    return found == 2 ? 0 : -1;
}

static int run_jsmn(const char *js, size_t len)
{
    jsmn_parser p;
    int n, readings = 0;
    double ts = 0, v = 0;

    jsmn_init(&p);
    n = jsmn_parse(&p, js, len, toks, 512);
    if (n <= 0)
        return -1;
    if (toks[0].type == JSMN_OBJECT) {
        if (jsmn_object(js, 0, n, &ts, &v) != 0)
            return -1;
        readings = 1;
    } else {
        /* flat objects of two primitive members: 5 tokens each */
        for (int e = 0, i = 1; e < toks[0].size; e++, i += 5) {
            if (jsmn_object(js, i, n, &ts, &v) != 0)
                return -1;
            readings++;
        }
    }
    sink += ts + v;
    return readings;
}

/* ---- json-c: a DOM per message ---- */

static struct json_tokener *tokener;

static int jsonc_object(struct json_object *o)
{
    struct json_object *ts, *v;
    if (!json_object_object_get_ex(o, "ts", &ts) || !json_object_object_get_ex(o, "value", &v))
        return -1;
    sink += (double)json_object_get_int64(ts) + json_object_get_double(v);
    return 0;
}

static int run_jsonc(const char *js, size_t len)
{
    struct json_object *root;
    int readings = 0;

    json_tokener_reset(tokener);
    root = json_tokener_parse_ex(tokener, js, (int)len);
    if (root == NULL)
        return -1;
    if (json_object_is_type(root, json_type_object)) {
        readings = jsonc_object(root) == 0 ? 1 : -1;
    } else {
        size_t n = json_object_array_length(root);
        for (size_t i = 0; i < n; i++)
            if (jsonc_object(json_object_array_get_idx(root, i)) == 0)
                readings++;
    }
    json_object_put(root);
    return readings;
}

/* ---- enpi's decoder ---- */

static enpi_json_decoder_t *decoder;
static enpi_json_paths_t paths;
static int enpi_count;

static void enpi_cb(void *ctx, const enpi_raw_reading_t *r)
{
    (void)ctx;
    sink += r->value + r->ts_ms;
    enpi_count++;
}

static int run_enpi(const char *js, size_t len)
{
    enpi_count = 0;
    if (enpi_json_decode(decoder, &paths, js, len, enpi_cb, NULL) != 0)
        return -1;
    return enpi_count;
}

/* ---- harness ---- */

typedef int (*parse_fn)(const char *js, size_t len);

static double measure(parse_fn fn, const char *js, double seconds)
{
    size_t len = strlen(js);
    long readings = 0, rounds = 0;
    double t0 = now_s(), t;

    do {
        for (int i = 0; i < 1000; i++) {
            int n = fn(js, len);
            if (n <= 0) {
                fprintf(stderr, "parse failed\n");
                exit(1);
            }
            readings += n;
        }
        rounds++;
        t = now_s();
    } while (t - t0 < seconds);
    return (double)readings / (t - t0);
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    char one[128], many[4096];
    size_t off = 0;
    const char *names[] = {"1 object", "array of 20"};
    const char *payloads[2];

    snprintf(one, sizeof(one), "{\"ts\": 1522206000000, \"value\": 1234.567}");
    off += (size_t)snprintf(many + off, sizeof(many) - off, "[");
    for (int i = 0; i < 20; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s{\"ts\": %lld, \"value\": %.3f}",
                                i ? ", " : "", 1522206000000LL + i * 15000LL, 1234.567 + i * 0.25);
    snprintf(many + off, sizeof(many) - off, "]");
    payloads[0] = one;
    payloads[1] = many;

    tokener = json_tokener_new();
    if (tokener == NULL || enpi_json_decoder_create(&decoder) != 0 ||
        enpi_json_paths_init(&paths, NULL, NULL, NULL, NULL, 0) != 0)
        return 1;

    printf("%-12s %16s %16s %16s %10s %10s\n", "payload", "json-c r/s", "jsmn r/s", "enpi r/s",
           "jsmn/jsonc", "enpi/jsonc");
    for (int k = 0; k < 2; k++) {
        double jc = measure(run_jsonc, payloads[k], seconds);
        double jm = measure(run_jsmn, payloads[k], seconds);
        double en = measure(run_enpi, payloads[k], seconds);
        printf("%-12s %16.0f %16.0f %16.0f %10.2f %10.2f\n", names[k], jc, jm, en, jm / jc,
               en / jc);
    }
    json_tokener_free(tokener);
    enpi_json_decoder_free(decoder);
    enpi_json_paths_free(&paths);
    return 0;
}
