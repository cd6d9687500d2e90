/*
 * decode_number.c - JSON number text to double, and the `number` payload format
 * (SPEC §4: "the payload is a decimal number", stamped with the arrival time).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "decode.h"
#include "enpi_error.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Powers of ten exactly representable as doubles. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int enpi_decode_number_text(const char *s, size_t len, double *out)
{
    size_t i = 0, frac_digits = 0, sig = 0;
    uint64_t mant = 0;
    bool neg = false, has_exp = false;
    char stackbuf[64], *buf;
    double v;

    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= len || !is_digit(s[i]))
        return ENPI_EPARSE;
    if (s[i] == '0' && i + 1 < len && is_digit(s[i + 1]))
        return ENPI_EPARSE; /* no leading zeros */
    for (; i < len && is_digit(s[i]); i++) {
        if (sig > 0 || s[i] != '0')
            sig++;
        mant = mant * 10 + (uint64_t)(s[i] - '0'); /* wraps harmlessly past 15 digits */
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i]))
            return ENPI_EPARSE;
        for (; i < len && is_digit(s[i]); i++) {
            if (sig > 0 || s[i] != '0')
                sig++;
            mant = mant * 10 + (uint64_t)(s[i] - '0');
            frac_digits++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        has_exp = true;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= len || !is_digit(s[i]))
            return ENPI_EPARSE;
        while (i < len && is_digit(s[i]))
            i++;
    }
    if (i != len)
        return ENPI_EPARSE;

    /* Exact fast path: mantissa < 10^15 < 2^53 and the divisor an exact power of ten,
     * so the one division is correctly rounded. */
    if (!has_exp && sig <= 15 && frac_digits <= 22) {
        v = (double)mant / exact_pow10[frac_digits];
        *out = neg ? -v : v;
        return 0;
    }
    buf = len < sizeof(stackbuf) ? stackbuf : malloc(len + 1);
    if (buf == NULL)
        return ENPI_ENOMEM;
    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtod(buf, NULL); /* overflow gives ±HUGE_VAL = ±inf: reported as not finite */
    if (buf != stackbuf)
        free(buf);
    *out = v;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The spellings of NaN and infinity devices print (printf's, JavaScript's). */
static bool is_non_finite_word(const char *s, size_t len)
{
    static const char *const words[] = {"nan", "inf", "infinity"};

    if (len > 0 && (s[0] == '-' || s[0] == '+')) {
        s++;
        len--;
    }
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == len && strncasecmp(s, words[i], len) == 0)
            return true;
    return false;
}

int enpi_number_decode(const char *payload, size_t len, enpi_reading_cb cb, void *ctx)
{
    enpi_raw_reading_t r;
    int rc;

    while (len > 0 && is_space(payload[0])) {
        payload++;
        len--;
    }
    while (len > 0 && is_space(payload[len - 1]))
        len--;
    memset(&r, 0, sizeof(r));
    r.ts_kind = ENPI_TS_ARRIVAL;
    if (is_non_finite_word(payload, len)) {
        r.value_kind = ENPI_VALUE_NOT_FINITE;
        r.value = NAN;
    } else {
        if (len > 0 && payload[0] == '+') { /* tolerated here, unlike in JSON */
            payload++;
            len--;
        }
        rc = enpi_decode_number_text(payload, len, &r.value);
        if (rc != 0)
            return rc;
        r.value_kind = isfinite(r.value) ? ENPI_VALUE_OK : ENPI_VALUE_NOT_FINITE;
    }
    cb(ctx, &r);
    return 0;
}
