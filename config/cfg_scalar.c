/*
 * cfg_scalar.c - converters from scalar text to typed values (see cfg_scalar.h).
 *
 * The grammar is deliberately narrower than what strtod/strtol accept: an operator who
 * writes "0x10", "1,5" or "inf" gets an error naming the line, not a surprising value.
 */
#include "cfg_scalar.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "enpi_error.h"

#define DURATION_HINT "use e.g. 30s, 15m, 1h, 1d, 1mo"
#define DATE_HINT "use ISO 8601, e.g. 2018-01-01 or 2018-03-28T10:00:00"

int enpi_cfg_scalar(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what)
{
    if (v->kind != ENPI_CFG_SCALAR)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s must be a single value, not %s", what,
                             enpi_cfg_kind_name(v));
    if (memchr(v->text, '\0', v->len) != NULL)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s contains a NUL byte", what);
    return 0;
}

/* Quotes the node's text for a message. */
static const char *show(const enpi_cfg_node_t *v, char *buf, size_t n)
{
    return enpi_cfg_show(v->text, v->len, buf, n);
}

int enpi_cfg_string(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                    bool allow_empty, char **out)
{
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    if (v->len == 0 && !allow_empty)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s must not be empty", what);
    char *copy = strdup(v->text);
    if (copy == NULL)
        return enpi_cfg_fail(ctx, ENPI_ENOMEM, v->line, "out of memory");
    free(*out);
    *out = copy;
    return 0;
}

int enpi_cfg_bool(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v->text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v->text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s: invalid boolean '%s' (use true or false)",
                         what, show(v, buf, sizeof(buf)));
}

int enpi_cfg_int(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, long lo, long hi,
                 const char *hint, int *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    const char *s = v->text;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    bool ok = v->len > i && v->len - i <= 9;
    for (size_t j = i; ok && j < v->len; j++)
        ok = isdigit((unsigned char)s[j]) != 0;
    long val = ok ? strtol(s, NULL, 10) : 0;
    if (!ok || val < lo || val > hi) {
        if (hint != NULL)
            return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s: invalid value '%s' (%s)", what,
                                 show(v, buf, sizeof(buf)), hint);
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "%s: invalid value '%s' (use a whole number from %ld to %ld)", what,
                             show(v, buf, sizeof(buf)), lo, hi);
    }
    *out = (int)val;
    return 0;
}

/* Optional sign, digits with an optional fraction, optional exponent: nothing else. */
static bool decimal_syntax(const char *s, size_t len)
{
    size_t i = 0, digits = 0;
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    while (i < len && isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t exp_digits = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0)
            return false;
    }
    return i == len;
}

/* Parses a decimal number; false when the syntax is wrong or the value is not finite. */
static bool parse_decimal(const char *s, size_t len, double *out)
{
    if (!decimal_syntax(s, len))
        return false;
    errno = 0;
    double d = strtod(s, NULL);
    if (!isfinite(d))
        return false;
    *out = d;
    return true;
}

int enpi_cfg_number(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    if (!parse_decimal(v->text, v->len, out))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "%s: invalid number '%s' (use a decimal number, e.g. 10.55)", what,
                             show(v, buf, sizeof(buf)));
    return 0;
}

int enpi_cfg_positive(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    double d;
    int rc = enpi_cfg_number(ctx, v, what, &d);
    if (rc != 0)
        return rc;
    if (!(d > 0))
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s must be greater than 0, not '%s'", what,
                             show(v, buf, sizeof(buf)));
    *out = d;
    return 0;
}

int enpi_cfg_percent(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    size_t len = v->len;
    if (len > 0 && v->text[len - 1] == '%')
        len--;
    double d;
    if (!parse_decimal(v->text, len, &d) || d < 0 || d > 100)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "%s: invalid percentage '%s' (use 0 to 100, e.g. 8%% or 8)", what,
                             show(v, buf, sizeof(buf)));
    *out = d;
    return 0;
}

int enpi_cfg_duration(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                      enpi_duration_t *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    enpi_duration_t d;
    if (enpi_duration_parse(v->text, v->len, &d) != 0)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s: invalid duration '%s' (%s)", what,
                             show(v, buf, sizeof(buf)), DURATION_HINT);
    *out = d;
    return 0;
}

/* "0", "00" or "0<unit>" with a unit enpi_duration_parse knows for fixed lengths. */
static bool is_zero_duration(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && s[i] == '0')
        i++;
    if (i == 0)
        return false;
    if (i == len)
        return true;
    char probe[16] = "1";
    if (len - i > sizeof(probe) - 2)
        return false;
    memcpy(probe + 1, s + i, len - i);
    enpi_duration_t d;
    return enpi_duration_parse(probe, 1 + (len - i), &d) == 0 && d.months == 0;
}

int enpi_cfg_fixed_ms(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                      bool allow_zero, int64_t *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    if (allow_zero && is_zero_duration(v->text, v->len)) {
        *out = 0;
        return 0;
    }
    enpi_duration_t d = {0, 0};
    rc = enpi_cfg_duration(ctx, v, what, &d);
    if (rc != 0)
        return rc;
    if (d.months != 0)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line,
                             "%s: '%s' is a calendar duration; use a fixed one (e.g. 30s, 15m, "
                             "1h, 1d)",
                             what, show(v, buf, sizeof(buf)));
    *out = d.ms;
    return 0;
}

int enpi_cfg_date(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                  enpi_civil_t *out)
{
    char buf[ENPI_CFG_SHOW_MAX + 4];
    int rc = enpi_cfg_scalar(ctx, v, what);
    if (rc != 0)
        return rc;
    enpi_civil_t c;
    if (enpi_civil_parse(v->text, v->len, &c) != 0)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, v->line, "%s: invalid date '%s' (%s)", what,
                             show(v, buf, sizeof(buf)), DATE_HINT);
    *out = c;
    return 0;
}
