/*
 * cfg_ctx.c - formatting of configuration errors ("FILE:LINE: message"), see cfg_ctx.h.
 */
#include "cfg_ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int enpi_cfg_fail(enpi_cfg_ctx_t *ctx, int rc, int line, const char *fmt, ...)
{
    if (ctx->failed || ctx->errbuf == NULL || ctx->errlen == 0) {
        ctx->failed = 1;
        return rc;
    }
    ctx->failed = 1;

    int used;
    if (line > 0)
        used = snprintf(ctx->errbuf, ctx->errlen, "%s:%d: ", ctx->name, line);
    else
        used = snprintf(ctx->errbuf, ctx->errlen, "%s: ", ctx->name);
    if (used < 0)
        used = 0;
    if ((size_t)used < ctx->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->errbuf + used, ctx->errlen - (size_t)used, fmt, ap);
        va_end(ap);
    }
    for (char *p = ctx->errbuf; *p != '\0'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f)
            *p = '?';
    }
    return rc;
}

const char *enpi_cfg_show(const char *text, size_t len, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    size_t limit = n - 1 < ENPI_CFG_SHOW_MAX ? n - 1 : ENPI_CFG_SHOW_MAX;
    if (len <= limit) {
        memcpy(buf, text, len);
        buf[len] = '\0';
        return buf;
    }
    /* Cut, leaving room for "...", and never inside a UTF-8 sequence. */
    size_t take = limit >= 3 ? limit - 3 : 0;
    while (take > 0 && ((unsigned char)text[take] & 0xC0) == 0x80)
        take--;
    memcpy(buf, text, take);
    size_t dots = limit - take < 3 ? limit - take : 3;
    memcpy(buf + take, "...", dots);
    buf[take + dots] = '\0';
    return buf;
}
