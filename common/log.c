/* log.c - the stderr sink with syslog priority prefixes, and the rate limiter (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

int enpi_log_max_level = ENPI_LOG_INFO;

void enpi_log_write(int level, const char *fmt, ...)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "<%d>", level);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    /* One line per record: a newline inside the message would split it for journald. */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

bool enpi_ratelimit_allow(enpi_ratelimit_t *rl, int64_t now_ms, uint32_t burst,
                          uint64_t *suppressed_out)
{
    if (suppressed_out)
        *suppressed_out = 0;
    if (now_ms - rl->window_start_ms >= 60000 || now_ms < rl->window_start_ms) {
        rl->window_start_ms = now_ms;
        rl->in_window = 0;
    }
    if (rl->in_window >= burst) {
        rl->suppressed++;
        return false;
    }
    rl->in_window++;
    if (suppressed_out)
        *suppressed_out = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
