/*
 * test_metrics_text.c - daemon/metrics_text.c: the Prometheus text exposition of enpid's
 * counters. A strict line checker (below) holds every rendering to the 0.0.4 format: HELP
 * then TYPE once per family before its samples, valid names, counters ending in _total,
 * well-formed and correctly escaped label sets, numeric values. On top of it: every reject
 * reason is present even at 0, values print exactly (up to UINT64_MAX), label values with
 * quotes, backslashes and line feeds are escaped, the commit histogram is cumulative with
 * +Inf = _count and an exact _sum, and times print as seconds with milliseconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics_text.h"

/* ---- a strict checker of the exposition format ---- */

#define MAX_FAMILIES 128

typedef struct {
    char name[128];
    char type[16];
    bool has_help;
    bool has_samples;
} fam_t;

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Length of the metric or label name at s (0 if none). */
static size_t name_len(const char *s)
{
    size_t n = 0;
    while (name_char(s[n], n == 0))
        n++;
    return n;
}

static fam_t *find_family(fam_t *f, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0)
            return &f[i];
    return NULL;
}

/* Which family a sample name belongs to: itself, or a histogram's base for
 * _bucket/_sum/_count. */
static fam_t *family_of_sample(fam_t *f, size_t n, const char *name, size_t len)
{
    fam_t *fam = find_family(f, n, name, len);
    if (fam != NULL)
        return fam;
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t k = 0; k < 3; k++) {
        size_t sl = strlen(suffixes[k]);
        if (len > sl && memcmp(name + len - sl, suffixes[k], sl) == 0) {
            fam = find_family(f, n, name, len - sl);
            if (fam != NULL && strcmp(fam->type, "histogram") == 0)
                return fam;
        }
    }
    return NULL;
}

static char g_err[4200]; /* why exposition_error() refused the text */

static const char *refuse(const char *why, const char *line)
{
    snprintf(g_err, sizeof g_err, "%s: %s", why, line);
    return g_err;
}

/* Parses a label set starting after '{'; returns a pointer past '}' or NULL. */
static const char *parse_labels(const char *p)
{
    for (;;) {
        size_t ln = name_len(p);
        if (ln == 0)
            return NULL;
        p += ln;
        if (*p++ != '=' || *p++ != '"')
            return NULL;
        while (*p != '"') {
            if (*p == '\0')
                return NULL;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n')
                    return NULL;
            }
            p++;
        }
        p++;
        if (*p == '}')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static bool value_ok(const char *p)
{
    if (strcmp(p, "+Inf") == 0 || strcmp(p, "-Inf") == 0 || strcmp(p, "NaN") == 0)
        return true;
    char *end = NULL;
    strtod(p, &end);
    return end != p && *end == '\0';
}

/*
 * Checks a whole exposition text. Returns NULL when it is valid (and *n_fams_out gets the
 * number of families), else why not.
 */
static const char *exposition_error(const char *text, size_t *n_fams_out)
{
    static fam_t fams[MAX_FAMILIES];
    size_t n_fams = 0;
    fam_t *current = NULL;
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return refuse("empty or not ending in a line feed", "");
    const char *p = text;
    char line[4096];
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t ll = (size_t)(nl - p);
        if (ll >= sizeof line)
            return refuse("line too long", "");
        memcpy(line, p, ll);
        line[ll] = '\0';
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            bool help = line[2] == 'H';
            const char *q = line + 7;
            size_t nlen = name_len(q);
            if (nlen == 0 || q[nlen] != ' ')
                return refuse("bad family name", line);
            fam_t *f = find_family(fams, n_fams, q, nlen);
            if (help) {
                if (f != NULL)
                    return refuse("second HELP for a family", line);
                if (n_fams == MAX_FAMILIES)
                    return refuse("too many families", line);
                f = &fams[n_fams++];
                memset(f, 0, sizeof *f);
                memcpy(f->name, q, nlen);
                f->has_help = true;
                for (const char *h = q + nlen + 1; *h; h++) {
                    if (*h == '\\' && h[1] != '\\' && h[1] != 'n')
                        return refuse("bad escape in HELP", line);
                    if (*h == '\\')
                        h++;
                }
            } else {
                if (f == NULL || f->type[0] != '\0' || f->has_samples)
                    return refuse("TYPE without HELP, twice, or after samples", line);
                const char *t = q + nlen + 1;
                if (strcmp(t, "counter") != 0 && strcmp(t, "gauge") != 0 &&
                    strcmp(t, "histogram") != 0 && strcmp(t, "summary") != 0)
                    return refuse("bad TYPE", line);
                snprintf(f->type, sizeof f->type, "%s", t);
                bool total = nlen > 6 && memcmp(q + nlen - 6, "_total", 6) == 0;
                if ((strcmp(t, "counter") == 0) != total)
                    return refuse("counters, and only counters, end in _total", line);
            }
            current = f;
            continue;
        }
        if (line[0] == '#')
            return refuse("unexpected comment", line);
        size_t nlen = name_len(line);
        if (nlen == 0)
            return refuse("sample name expected", line);
        fam_t *f = family_of_sample(fams, n_fams, line, nlen);
        if (f == NULL || f != current || f->type[0] == '\0')
            return refuse("sample outside its family's block", line);
        f->has_samples = true;
        const char *q = line + nlen;
        if (*q == '{' && (q = parse_labels(q + 1)) == NULL)
            return refuse("malformed label set", line);
        if (*q++ != ' ' || !value_ok(q))
            return refuse("bad sample value", line);
    }
    for (size_t i = 0; i < n_fams; i++) {
        if (fams[i].type[0] == '\0' || !fams[i].has_samples)
            return refuse("family lacks a TYPE or samples", fams[i].name);
    }
    if (n_fams_out)
        *n_fams_out = n_fams;
    return NULL;
}

/* ---- fixtures ---- */

static char *render(const enpid_metrics_snapshot_t *s, size_t *families)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(enpid_metrics_render(s, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    const char *err = exposition_error(text, families);
    if (err != NULL)
        fail_msg("invalid exposition (%s):\n%s", err, text);
    return text;
}

/* True when `line` is one whole line of text. */
static bool has_line(const char *text, const char *line)
{
    size_t ll = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        if ((p == text || p[-1] == '\n') && p[ll] == '\n')
            return true;
    }
    return false;
}

static void assert_line(const char *text, const char *line)
{
    if (!has_line(text, line))
        fail_msg("missing line \"%s\" in:\n%s", line, text);
}

/* ---- tests ---- */

static void empty_snapshot_has_every_family_and_reason(void **state)
{
    (void)state;
    enpid_metrics_snapshot_t s = {0};
    size_t fams = 0;
    char *t = render(&s, &fams);
    assert_true(fams >= 25);
    for (int r = 0; r < ENPI_REJECT__COUNT; r++) {
        char want[128];
        snprintf(want, sizeof want, "enpid_rejects_total{reason=\"%s\"} 0",
                 enpi_reject_name((enpi_reject_t)r));
        assert_line(t, want);
    }
    assert_line(t, "enpid_build_info{version=\"\"} 1");
    assert_line(t, "enpid_mqtt_connected 0");
    assert_line(t, "enpid_commits_total 0");
    assert_line(t, "enpid_last_commit_time_seconds 0.000");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"+Inf\"} 0");
    assert_line(t, "enpid_commit_duration_seconds_sum 0.000000");
    assert_line(t, "# TYPE enpid_commit_duration_seconds histogram");
    assert_line(t, "# TYPE enpid_ring_occupancy_messages gauge");
    assert_line(t, "enpid_mqtt_reconnects_total 0");
    assert_line(t, "enpid_mqtt_connect_failures_total 0");
    free(t);
}

static void values_print_exactly(void **state)
{
    (void)state;
    enpid_metrics_snapshot_t s = {0};
    s.version = "1.2.3";
    s.mqtt_up = true;
    s.received = UINT64_MAX;
    s.pipe.messages = 42;
    s.pipe.applied = 40;
    s.pipe.late = 3;
    s.pipe.duplicates = 2;
    s.pipe.resets = 1;
    s.pipe.rejects[ENPI_REJECT_UNKNOWN_METER] = 7;
    s.pipe.rejects[ENPI_REJECT_PARSE] = 5;
    s.spilled = 11;
    s.read_back = 11;
    s.inbox_backlog = 9;
    s.ring_size = 3;
    s.ring_capacity = 65536;
    s.commits = 12;
    s.commit_failures = 2;
    s.last_commit_ms = 1700000000123;
    s.start_time_ms = 1699999999005;
    s.rebirth_requests = 4;
    s.unknown_meter_ids = 17;
    s.mqtt_reconnects = 6;
    s.mqtt_connect_failures = 13;
    char *t = render(&s, NULL);
    assert_line(t, "enpid_build_info{version=\"1.2.3\"} 1");
    assert_line(t, "enpid_mqtt_connected 1");
    assert_line(t, "enpid_mqtt_reconnects_total 6");
    assert_line(t, "enpid_mqtt_connect_failures_total 13");
    assert_line(t, "enpid_messages_received_total 18446744073709551615");
    assert_line(t, "enpid_messages_ingested_total 42");
    assert_line(t, "enpid_readings_applied_total 40");
    assert_line(t, "enpid_readings_late_total 3");
    assert_line(t, "enpid_readings_duplicate_total 2");
    assert_line(t, "enpid_meter_resets_total 1");
    assert_line(t, "enpid_rejects_total{reason=\"unknown_meter\"} 7");
    assert_line(t, "enpid_rejects_total{reason=\"parse_error\"} 5");
    assert_line(t, "enpid_rejects_total{reason=\"implausible\"} 0");
    assert_line(t, "enpid_messages_spilled_total 11");
    assert_line(t, "enpid_messages_read_back_total 11");
    assert_line(t, "enpid_inbox_backlog_messages 9");
    assert_line(t, "enpid_ring_occupancy_messages 3");
    assert_line(t, "enpid_ring_capacity_messages 65536");
    assert_line(t, "enpid_commits_total 12");
    assert_line(t, "enpid_commit_failures_total 2");
    assert_line(t, "enpid_last_commit_time_seconds 1700000000.123");
    assert_line(t, "enpid_start_time_seconds 1699999999.005");
    assert_line(t, "enpid_sparkplug_rebirth_requests_total 4");
    assert_line(t, "enpid_unknown_meter_ids 17");
    free(t);
}

static void label_values_are_escaped(void **state)
{
    (void)state;
    enpid_metrics_input_t in[2];
    memset(in, 0, sizeof in);
    in[0].topic = "plant \"A\"\\{meter}\nnext";
    in[0].stats.messages = 8;
    in[0].stats.rejects[ENPI_REJECT_MISSING_VALUE] = 2;
    in[1].topic = "tele/{meter}/SENSOR";
    enpid_metrics_snapshot_t s = {0};
    s.version = "v\"1\\\n";
    s.inputs = in;
    s.n_inputs = 2;
    char *t = render(&s, NULL);
    assert_line(t, "enpid_build_info{version=\"v\\\"1\\\\\\n\"} 1");
    assert_line(
        t, "enpid_input_messages_total{input=\"0\",topic=\"plant \\\"A\\\"\\\\{meter}\\nnext\"} 8");
    assert_line(t,
                "enpid_input_rejects_total{input=\"0\",topic=\"plant \\\"A\\\"\\\\{meter}\\nnext\","
                "reason=\"missing_value\"} 2");
    assert_line(t, "enpid_input_messages_total{input=\"1\",topic=\"tele/{meter}/SENSOR\"} 0");
    assert_line(t, "enpid_input_rejects_total{input=\"1\",topic=\"tele/{meter}/SENSOR\","
                   "reason=\"parse_error\"} 0");
    /* no_input belongs to no input */
    assert_null(strstr(t, "input=\"1\",topic=\"tele/{meter}/SENSOR\",reason=\"no_input\""));
    free(t);
}

static void histogram_is_cumulative_with_exact_sum(void **state)
{
    (void)state;
    enpid_histogram_t h = {0};
    enpid_histogram_observe_us(&h, 0);        /* le 0.001 */
    enpid_histogram_observe_us(&h, 1000);     /* le 0.001 (bounds are inclusive) */
    enpid_histogram_observe_us(&h, 1001);     /* le 0.0025 */
    enpid_histogram_observe_us(&h, 750000);   /* le 1 */
    enpid_histogram_observe_us(&h, 10000000); /* le 10 */
    enpid_histogram_observe_us(&h, 25000000); /* +Inf only */
    assert_int_equal(h.count, 6);
    assert_int_equal(h.sum_us, 35752001);
    enpid_metrics_snapshot_t s = {0};
    s.commit = h;
    char *t = render(&s, NULL);
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"0.001\"} 2");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"0.0025\"} 3");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"0.5\"} 3");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"1\"} 4");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"5\"} 4");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"10\"} 5");
    assert_line(t, "enpid_commit_duration_seconds_bucket{le=\"+Inf\"} 6");
    assert_line(t, "enpid_commit_duration_seconds_sum 35.752001");
    assert_line(t, "enpid_commit_duration_seconds_count 6");
    free(t);
}

/* The checker above must be able to fail, or the other tests prove nothing. */
static void checker_refuses_malformed_text(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "x_total 1\n",                                             /* no HELP/TYPE */
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n", /* value */
        "# HELP x h\n# TYPE x counter\nx 1\n",                     /* counter without _total */
        "# HELP x_total h\n# TYPE x_total gauge\nx_total 1\n",     /* gauge with _total */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",                /* unterminated label */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\q\"} 1\n",            /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP x h\n# TYPE x gauge\n", /* twice */
        "# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\nx 2\ny 1\n",
        "# HELP x h\n# TYPE x gauge\nx 1", /* no final line feed */
        "# HELP x h\n# TYPE x gauge\n",    /* no samples */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (exposition_error(bad[i], NULL) == NULL)
            fail_msg("checker accepted bad text %zu:\n%s", i, bad[i]);
    }
    assert_null(exposition_error("# HELP x_total a \\\\ b\n# TYPE x_total counter\n"
                                 "x_total{a=\"\\\"\\n\",b=\"\"} 1e3\n",
                                 NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_snapshot_has_every_family_and_reason),
        cmocka_unit_test(values_print_exactly),
        cmocka_unit_test(label_values_are_escaped),
        cmocka_unit_test(histogram_is_cumulative_with_exact_sum),
        cmocka_unit_test(checker_refuses_malformed_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
