/*
 * cfg_ctx.h - private to config/: the error context every parsing step reports through.
 *
 * A parse carries one enpi_cfg_ctx_t naming the input (FILE in messages) and the caller's
 * error buffer. enpi_cfg_fail() writes "FILE:LINE: message" there and returns the code it
 * was given, so a step can `return enpi_cfg_fail(...)` and the first error wins.
 */
#ifndef ENPI_CFG_CTX_H
#define ENPI_CFG_CTX_H

#include <stddef.h>

/* Longest value echoed back in a message; longer values are cut with "...". */
#define ENPI_CFG_SHOW_MAX 80

typedef struct {
    const char *name; /* stands for FILE in messages */
    char *errbuf;     /* may be NULL: messages are then dropped */
    size_t errlen;
    int failed; /* set by the first enpi_cfg_fail(); later calls do not overwrite */
} enpi_cfg_ctx_t;

/*
 * Formats the message into ctx->errbuf as "NAME:LINE: message" ("NAME: message" when
 * line <= 0) and returns rc. Control bytes in the message (e.g. from a quoted value) are
 * replaced by '?' so the result is always one line. Only the first failure is kept.
 */
int enpi_cfg_fail(enpi_cfg_ctx_t *ctx, int rc, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Copies at most ENPI_CFG_SHOW_MAX bytes of text into buf for quoting in a message,
 * appending "..." when cut (never in the middle of a UTF-8 sequence). Returns buf.
 */
const char *enpi_cfg_show(const char *text, size_t len, char *buf, size_t n);

#endif
