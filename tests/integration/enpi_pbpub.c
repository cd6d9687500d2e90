/*
 * enpi_pbpub.c - test tool: encodes one enpi.v1.ReadingBatch with the protobuf-c code
 * generated from proto/enpi.proto, so the integration tests can publish payloads made by
 * the same generated code a C meter gateway would use (test_formats.py; `protoc --encode`
 * is the second, independent encoder there).
 *
 * Reads lines "METER_ID TIMESTAMP_MS VALUE" from stdin (METER_ID "-" leaves the field
 * empty, so the pipeline takes the id from the topic; VALUE as strtod reads it, so "nan"
 * and "inf" work) and writes the packed batch to stdout. Blank lines are skipped. Exit
 * status 0, or 2 with a message on stderr for a malformed line or an I/O error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enpi.pb-c.h"

#define LINE_MAX_BYTES 1024

typedef struct {
    Enpi__V1__Reading *msgs; /* the readings, each initialised with READING__INIT */
    char **ids;              /* owned copies of the non-empty ids */
    size_t n;
    size_t cap;
} readings_t;

static void readings_free(readings_t *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->ids[i]);
    free(rs->ids);
    free(rs->msgs);
}

/* Appends one reading; returns 0, or -1 when out of memory. */
static int readings_add(readings_t *rs, const char *id, int64_t ts, double value)
{
    static const Enpi__V1__Reading init = ENPI__V1__READING__INIT;
    Enpi__V1__Reading *m;

    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 64;
        Enpi__V1__Reading *msgs = realloc(rs->msgs, cap * sizeof(*msgs));
        char **ids;

        if (msgs == NULL)
            return -1;
        rs->msgs = msgs;
        ids = realloc(rs->ids, cap * sizeof(*ids));
        if (ids == NULL)
            return -1;
        rs->ids = ids;
        rs->cap = cap;
    }
    rs->ids[rs->n] = NULL;
    m = &rs->msgs[rs->n];
    *m = init;
    if (strcmp(id, "-") != 0) {
        rs->ids[rs->n] = strdup(id);
        if (rs->ids[rs->n] == NULL)
            return -1;
        m->meter_id = rs->ids[rs->n];
    }
    m->timestamp_ms = ts;
    m->value = value;
    rs->n++;
    return 0;
}

/* Parses one input line into the batch; returns 0 or -1 (message printed). */
static int parse_line(readings_t *rs, char *line, unsigned lineno)
{
    char *id, *ts_text, *value_text, *end, *save = NULL;
    long long ts;
    double value;

    id = strtok_r(line, " \t\r\n", &save);
    if (id == NULL)
        return 0; /* blank */
    ts_text = strtok_r(NULL, " \t\r\n", &save);
    value_text = strtok_r(NULL, " \t\r\n", &save);
    if (ts_text == NULL || value_text == NULL || strtok_r(NULL, " \t\r\n", &save) != NULL) {
        fprintf(stderr, "enpi_pbpub: line %u: want \"METER_ID TIMESTAMP_MS VALUE\"\n", lineno);
        return -1;
    }
    errno = 0;
    ts = strtoll(ts_text, &end, 10);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "enpi_pbpub: line %u: bad timestamp \"%s\"\n", lineno, ts_text);
        return -1;
    }
    value = strtod(value_text, &end);
    if (*end != '\0') {
        fprintf(stderr, "enpi_pbpub: line %u: bad value \"%s\"\n", lineno, value_text);
        return -1;
    }
    if (readings_add(rs, id, (int64_t)ts, value) != 0) {
        fprintf(stderr, "enpi_pbpub: out of memory\n");
        return -1;
    }
    return 0;
}

int main(void)
{
    Enpi__V1__ReadingBatch batch = ENPI__V1__READING_BATCH__INIT;
    Enpi__V1__Reading **ptrs = NULL;
    readings_t rs = {0};
    char line[LINE_MAX_BYTES];
    unsigned lineno = 0;
    uint8_t *buf = NULL;
    size_t len;
    int status = 2;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        lineno++;
        if (parse_line(&rs, line, lineno) != 0)
            goto free_readings;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "enpi_pbpub: reading stdin: %s\n", strerror(errno));
        goto free_readings;
    }
    ptrs = calloc(rs.n ? rs.n : 1, sizeof(*ptrs));
    if (ptrs == NULL)
        goto free_readings;
    for (size_t i = 0; i < rs.n; i++)
        ptrs[i] = &rs.msgs[i];
    batch.n_readings = rs.n;
    batch.readings = ptrs;
    len = enpi__v1__reading_batch__get_packed_size(&batch);
    buf = malloc(len ? len : 1);
    if (buf == NULL)
        goto free_ptrs;
    if (enpi__v1__reading_batch__pack(&batch, buf) != len || fwrite(buf, 1, len, stdout) != len ||
        fflush(stdout) != 0) {
        fprintf(stderr, "enpi_pbpub: writing stdout failed\n");
        goto free_buf;
    }
    status = 0;
free_buf:
    free(buf);
free_ptrs:
    free(ptrs);
free_readings:
    readings_free(&rs);
    return status;
}
