/*
 * fuzz_util.h - what the libFuzzer targets of tests/fuzz share (header-only: each target
 * is one executable of one source file).
 *
 * A target checks more than "no crash": where a public header promises something (a
 * callback only on success, a finite value for ENPI_VALUE_OK, a window with end > start)
 * the target asserts it with FUZZ_CHECK, which prints the broken promise and aborts, so
 * libFuzzer records the input as a crash like any sanitizer report.
 */
#ifndef ENPI_FUZZ_UTIL_H
#define ENPI_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Hostile input makes the pipeline log every reject: keep the fuzzer's output readable
 * and its speed up. Call from LLVMFuzzerInitialize. */
static inline void fuzz_quiet_logs(void)
{
    enpi_log_max_level = 0;
}

/* Reads every byte of [p, p + n) so that AddressSanitizer reports a span that does not
 * point at live memory, even when nothing else in the target would touch it. */
static inline void fuzz_touch(const void *p, size_t n)
{
    const volatile unsigned char *b = p;
    unsigned char sink = 0;

    for (size_t i = 0; i < n; i++)
        sink ^= b[i];
    (void)sink;
}

/* A NUL-terminated copy of data[0..n) (embedded NULs stay and end the C string early);
 * the caller frees it. Aborts when memory runs out: that is not what is being fuzzed. */
static inline char *fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    FUZZ_CHECK(s != NULL, "out of memory");
    if (n > 0)
        memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#endif
