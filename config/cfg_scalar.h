/*
 * cfg_scalar.h - private to config/: the text forms of SPEC §3 read from scalar nodes.
 *
 * Each converter takes a value node that is given (not NULL, not null) and `what`, the
 * key's name in messages ("storage.commit_interval", "meter 'f001/gas' interval"). It
 * returns 0 with *out set, or ENPI_EINVAL with "FILE:LINE: what: invalid ..." in ctx and
 * *out untouched. Strings are copied with malloc; the caller owns them.
 */
#ifndef ENPI_CFG_SCALAR_H
#define ENPI_CFG_SCALAR_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg_tree.h"
#include "civil.h"

/* Fails unless v is a scalar without NUL bytes. */
int enpi_cfg_scalar(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what);

/* Copies the text into *out, freeing what *out held before (so defaults can be
 * replaced). Empty text fails unless allow_empty. */
int enpi_cfg_string(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                    bool allow_empty, char **out);

/* true/false (also yes/no, on/off; any case). */
int enpi_cfg_bool(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, bool *out);

/* A decimal integer in [lo, hi]; `hint` (may be NULL) says what is allowed. */
int enpi_cfg_int(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, long lo, long hi,
                 const char *hint, int *out);

/* A finite decimal number ("412.5", "-3", "1e6"; no hex, inf or nan). */
int enpi_cfg_number(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out);

/* A finite number greater than zero. */
int enpi_cfg_positive(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out);

/* "8%" or "8": a number from 0 to 100. */
int enpi_cfg_percent(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what, double *out);

/* A SPEC §3 duration (30s, 15m, 1h, 1d, 1mo ...). */
int enpi_cfg_duration(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                      enpi_duration_t *out);

/* A fixed-length duration in ms (months refused); "0"/"0s" accepted when allow_zero. */
int enpi_cfg_fixed_ms(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                      bool allow_zero, int64_t *out);

/* An ISO 8601 date or date-time (enpi_civil_parse). */
int enpi_cfg_date(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *v, const char *what,
                  enpi_civil_t *out);

#endif
