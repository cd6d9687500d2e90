/*
 * log.h - the one log sink: stderr lines prefixed "<N>" with the syslog priority, which
 * journald reads as the line's level (SPEC §8).
 *
 * The level check happens in the macro, before any formatting work. enpi_ratelimit_t
 * lets a caller log a repeated condition at most a few times a minute and report how
 * many lines it suppressed (collectd's utils_complain habit).
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef ENPI_LOG_H
#define ENPI_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum enpi_log_level {
    ENPI_LOG_ERR = 3,
    ENPI_LOG_WARNING = 4,
    ENPI_LOG_NOTICE = 5,
    ENPI_LOG_INFO = 6,
    ENPI_LOG_DEBUG = 7,
};

/* Lines above this level are skipped; default ENPI_LOG_INFO. Set once at start-up. */
extern int enpi_log_max_level;

void enpi_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define ENPI_LOG(level, ...)                                                                       \
    do {                                                                                           \
        if ((level) <= enpi_log_max_level)                                                         \
            enpi_log_write((level), __VA_ARGS__);                                                  \
    } while (0)
#define log_err(...) ENPI_LOG(ENPI_LOG_ERR, __VA_ARGS__)
#define log_warn(...) ENPI_LOG(ENPI_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) ENPI_LOG(ENPI_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) ENPI_LOG(ENPI_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ENPI_LOG(ENPI_LOG_DEBUG, __VA_ARGS__)

/* At most `burst` lines per minute per limiter. Zero-initialise; one thread per limiter. */
typedef struct {
    int64_t window_start_ms; /* start of the current one-minute window */
    uint32_t in_window;      /* lines allowed in this window so far */
    uint64_t suppressed;     /* lines refused since the last allowed one */
} enpi_ratelimit_t;

/*
 * Returns true when a line may be logged now. When it returns true after refusing some,
 * *suppressed_out (if not NULL) receives how many were refused since, so the caller can
 * say "(N similar suppressed)"; otherwise it receives 0.
 */
bool enpi_ratelimit_allow(enpi_ratelimit_t *rl, int64_t now_ms, uint32_t burst,
                          uint64_t *suppressed_out);

#endif
