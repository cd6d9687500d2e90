/*
 * args.c - option parsing and time/resolution arguments for `enpi` (see args.h).
 */
#include "args.h"

#include <stdio.h>
#include <string.h>

#include "enpi_error.h"

/* The option a "--name[=value]" or "-x" argument names, or NULL. */
static const enpi_cli_opt_t *find_opt(const char *arg, const enpi_cli_opt_t *opts, size_t n,
                                      const char **inline_value)
{
    *inline_value = NULL;
    if (arg[1] != '-') {
        if (arg[1] == '\0' || arg[2] != '\0')
            return NULL;
        for (size_t i = 0; i < n; i++)
            if (opts[i].short_name && opts[i].short_name == arg[1])
                return &opts[i];
        return NULL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (size_t i = 0; i < n; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0) {
            if (eq)
                *inline_value = eq + 1;
            return &opts[i];
        }
    }
    return NULL;
}

int enpi_cli_parse_opts(int argc, char **argv, int *idx, const enpi_cli_opt_t *opts, size_t n,
                        bool stop_at_operand, char *err, size_t errlen)
{
    int i = *idx;
    while (i < argc) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            i++;
            if (!stop_at_operand && i < argc) {
                snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
                *idx = i;
                return ENPI_EINVAL;
            }
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (stop_at_operand)
                break;
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            *idx = i;
            return ENPI_EINVAL;
        }
        const char *value = NULL;
        const enpi_cli_opt_t *o = find_opt(arg, opts, n, &value);
        if (!o) {
            const char *eq = strchr(arg, '=');
            int len = eq ? (int)(eq - arg) : (int)strlen(arg);
            snprintf(err, errlen, "unknown option '%.*s'", len, arg);
            *idx = i;
            return ENPI_EINVAL;
        }
        i++;
        if (!o->takes_value) {
            if (value) {
                snprintf(err, errlen, "option '--%s' takes no value", o->name);
                *idx = i - 1;
                return ENPI_EINVAL;
            }
            *o->flag = true;
            continue;
        }
        if (!value) {
            if (i >= argc) {
                snprintf(err, errlen, "option '--%s' needs a value", o->name);
                *idx = i - 1;
                return ENPI_EINVAL;
            }
            value = argv[i++];
        }
        if (*o->value) {
            snprintf(err, errlen, "option '--%s' given twice", o->name);
            *idx = i - 1;
            return ENPI_EINVAL;
        }
        *o->value = value;
    }
    *idx = i;
    return 0;
}

int enpi_cli_parse_time(const char *s, const enpi_tz_t *tz, int64_t *out_ms)
{
    enpi_civil_t c;
    int rc = enpi_civil_parse(s, strlen(s), &c);
    if (rc)
        return ENPI_EPARSE;
    *out_ms = enpi_tz_from_civil(tz, &c);
    return 0;
}

/* "15m, 1h, 1d, 1mo" into buf. */
static void list_resolutions(const enpi_config_t *cfg, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cfg->pipeline.n_resolutions && used < n; i++) {
        char one[32];
        enpi_duration_format(&cfg->pipeline.resolutions[i], one, sizeof one);
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", one);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

int enpi_cli_parse_resolution(const char *s, const enpi_config_t *cfg, enpi_duration_t *out,
                              char *err, size_t errlen)
{
    char configured[256];
    list_resolutions(cfg, configured, sizeof configured);
    enpi_duration_t d;
    if (enpi_duration_parse(s, strlen(s), &d) != 0) {
        snprintf(err, errlen, "bad resolution '%s' (configured: %s)", s, configured);
        return ENPI_EPARSE;
    }
    for (size_t i = 0; i < cfg->pipeline.n_resolutions; i++) {
        const enpi_duration_t *r = &cfg->pipeline.resolutions[i];
        if (r->ms == d.ms && r->months == d.months) {
            *out = *r;
            return 0;
        }
    }
    snprintf(err, errlen, "resolution '%s' is not configured (configured: %s)", s, configured);
    return ENPI_ENOENT;
}
