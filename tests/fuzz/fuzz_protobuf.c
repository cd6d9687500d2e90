/*
 * fuzz_protobuf.c - libFuzzer target for the `protobuf` payload format
 * (pipeline/decode.h, enpi.v1.ReadingBatch): the whole input is one payload. One decoder
 * is reused across inputs, as the pipeline reuses it, so its arena is exercised across
 * messages of every size.
 *
 * The decoder unpacks into its own bump arena, where AddressSanitizer cannot see an
 * overrun from one allocation into the next; so besides memory errors, every input is
 * also decoded by a small independent reader of the protobuf wire format written here
 * from proto/enpi.proto, and the readings must agree field by field: count and order,
 * meter id bytes (empty -> the topic's, a NUL inside -> invalid), timestamp (0 -> the
 * arrival time) and the value's bits. The reader judges only plainly encoded messages
 * (minimal tags and lengths, known fields with their own wire types, unknown fields of
 * wire types 0, 1, 2 and 5); anything stranger is left to protobuf-c's own rules and
 * only checked for "no callback unless it succeeds".
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "enpi_error.h"
#include "fuzz_util.h"

#define MODEL_MAX 4096 /* readings the model keeps; more leaves the input unjudged */

typedef enum { M_VALID, M_INVALID, M_UNJUDGED } verdict_t;

typedef struct {
    const uint8_t *id; /* last meter_id seen, into the payload; NULL when none */
    size_t id_len;
    int64_t ts;
    uint64_t value_bits;
} model_reading_t;

typedef struct {
    const uint8_t *p, *end;
} cursor_t;

/* A varint of at most max bytes. Returns M_VALID, M_INVALID (truncated or longer than
 * protobuf allows) or M_UNJUDGED (a non-minimal encoding, whose handling we leave to
 * protobuf-c). */
static verdict_t read_varint(cursor_t *c, int max, uint64_t *out)
{
    uint64_t v = 0;

    for (int i = 0; i < max; i++) {
        uint8_t b;
        if (c->p >= c->end)
            return M_INVALID;
        b = *c->p++;
        if (i < 10)
            v |= (uint64_t)(b & 0x7F) << (7 * i);
        if ((b & 0x80) == 0) {
            *out = v;
            if (i > 0 && b == 0)
                return M_UNJUDGED; /* trailing zero group: not minimal */
            if (i == 9 && b > 1)
                return M_UNJUDGED; /* bits beyond 64 */
            return M_VALID;
        }
    }
    return max == 10 ? M_INVALID : M_UNJUDGED;
}

/* Reads one field header and its payload span; *len_span set for wire type 2. */
static verdict_t read_field(cursor_t *c, uint32_t *field, int *wt, uint64_t *varint,
                            const uint8_t **data, size_t *len)
{
    uint64_t key, n;
    verdict_t v = read_varint(c, 4, &key); /* fields up to 2^25: 4 bytes */

    if (v != M_VALID)
        return v;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (*field == 0)
        return M_UNJUDGED;
    switch (*wt) {
    case 0:
        return read_varint(c, 10, varint);
    case 1:
    case 5: {
        size_t w = *wt == 1 ? 8 : 4;
        if ((size_t)(c->end - c->p) < w)
            return M_INVALID;
        *data = c->p;
        *len = w;
        c->p += w;
        return M_VALID;
    }
    case 2:
        v = read_varint(c, 4, &n);
        if (v != M_VALID)
            return v;
        if (n > (uint64_t)(c->end - c->p))
            return M_INVALID;
        *data = c->p;
        *len = (size_t)n;
        c->p += n;
        return M_VALID;
    default:
        return M_UNJUDGED; /* groups and invalid wire types */
    }
}

static verdict_t model_reading(const uint8_t *p, size_t n, model_reading_t *r)
{
    cursor_t c = {p, p + n};

    memset(r, 0, sizeof(*r));
    while (c.p < c.end) {
        uint32_t field;
        int wt;
        uint64_t varint = 0;
        const uint8_t *data = NULL;
        size_t len = 0;
        verdict_t v = read_field(&c, &field, &wt, &varint, &data, &len);

        if (v != M_VALID)
            return v;
        if (field == 1) {
            if (wt != 2)
                return M_INVALID;
            r->id = data;
            r->id_len = len;
        } else if (field == 2) {
            if (wt != 0)
                return M_INVALID;
            r->ts = (int64_t)varint;
        } else if (field == 3) {
            if (wt != 1)
                return M_INVALID;
            memcpy(&r->value_bits, data, 8); /* little-endian, like the host */
        }
    }
    return M_VALID;
}

static verdict_t model_batch(const uint8_t *p, size_t n, model_reading_t *out, size_t *count)
{
    cursor_t c = {p, p + n};
    verdict_t worst = M_VALID;

    *count = 0;
    while (c.p < c.end) {
        uint32_t field;
        int wt;
        uint64_t varint;
        const uint8_t *data = NULL;
        size_t len = 0;
        verdict_t v = read_field(&c, &field, &wt, &varint, &data, &len);

        if (v != M_VALID)
            return v;
        if (field != 1)
            continue;
        if (wt != 2)
            return M_INVALID;
        if (*count == MODEL_MAX)
            return M_UNJUDGED;
        v = model_reading(data, len, &out[*count]);
        if (v == M_INVALID)
            return M_INVALID;
        if (v == M_UNJUDGED)
            worst = M_UNJUDGED; /* a later element may still be invalid */
        (*count)++;
    }
    return worst;
}

/* ---- the decoder under test --------------------------------------------------------- */

typedef struct {
    const model_reading_t *want; /* NULL when the model does not judge */
    size_t n_want;
    size_t calls;
} ctx_t;

static enpi_protobuf_decoder_t *decoder;
static model_reading_t model[MODEL_MAX];

static void on_reading_cb(void *vctx, const enpi_raw_reading_t *r)
{
    ctx_t *c = vctx;
    size_t i = c->calls++;

    FUZZ_CHECK(!r->malformed, "reading %zu malformed", i);
    FUZZ_CHECK(r->value_kind == (isfinite(r->value) ? ENPI_VALUE_OK : ENPI_VALUE_NOT_FINITE),
               "reading %zu: kind %d for %g", i, (int)r->value_kind, r->value);
    if (r->id != NULL)
        fuzz_touch(r->id, r->id_len);
    if (c->want == NULL)
        return;
    FUZZ_CHECK(i < c->n_want, "more readings than the payload holds (%zu)", c->n_want);
    {
        const model_reading_t *m = &c->want[i];
        bool has_nul = m->id != NULL && memchr(m->id, '\0', m->id_len) != NULL;
        uint64_t bits;

        memcpy(&bits, &r->value, sizeof(bits));
        FUZZ_CHECK(bits == m->value_bits, "reading %zu: value %g, payload says %#llx", i, r->value,
                   (unsigned long long)m->value_bits);
        if (m->ts == 0) {
            FUZZ_CHECK(r->ts_kind == ENPI_TS_ARRIVAL, "reading %zu: ts_kind %d for ts 0", i,
                       (int)r->ts_kind);
        } else {
            FUZZ_CHECK(r->ts_kind == ENPI_TS_EPOCH_MS && r->ts_ms == (double)m->ts,
                       "reading %zu: ts %g (kind %d), payload says %lld", i, r->ts_ms,
                       (int)r->ts_kind, (long long)m->ts);
        }
        if (m->id == NULL || m->id_len == 0) {
            FUZZ_CHECK(r->id == NULL && !r->id_invalid, "reading %zu: empty id not the topic's", i);
        } else if (has_nul) {
            FUZZ_CHECK(r->id_invalid, "reading %zu: id of %zu bytes with a NUL not invalid", i,
                       m->id_len);
        } else {
            FUZZ_CHECK(!r->id_invalid && r->id != NULL && r->id_len == m->id_len &&
                           memcmp(r->id, m->id, m->id_len) == 0,
                       "reading %zu: id \"%.*s\", payload says \"%.*s\"", i,
                       r->id ? (int)r->id_len : 0, r->id ? r->id : "", (int)m->id_len,
                       (const char *)m->id);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    FUZZ_CHECK(enpi_protobuf_decoder_create(&decoder) == 0, "decoder_create");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n_model = 0;
    verdict_t v = model_batch(data, size, model, &n_model);
    ctx_t c = {.want = v == M_VALID ? model : NULL, .n_want = n_model, .calls = 0};
    int rc = enpi_protobuf_decode(decoder, data, size, on_reading_cb, &c);

    if (rc == ENPI_ENOMEM) {
        FUZZ_CHECK(c.calls == 0, "%zu callbacks before ENOMEM", c.calls);
        return 0;
    }
    FUZZ_CHECK(rc == 0 || rc == ENPI_EPARSE, "rc %d", rc);
    if (rc != 0)
        FUZZ_CHECK(c.calls == 0, "%zu callbacks before a parse error", c.calls);
    if (v != M_UNJUDGED)
        FUZZ_CHECK((rc == 0) == (v == M_VALID), "decoder %s, wire model %s",
                   rc == 0 ? "accepts" : "rejects", v == M_VALID ? "accepts" : "rejects");
    if (v == M_VALID && rc == 0)
        FUZZ_CHECK(c.calls == n_model, "%zu readings, payload holds %zu", c.calls, n_model);
    return 0;
}
