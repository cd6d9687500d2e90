/*
 * tmpdir.h - temporary folders for the storage tests: made with mkdtemp under $TMPDIR
 * (or /tmp), removed recursively by the test that made them.
 */
#ifndef ENPI_TEST_TMPDIR_H
#define ENPI_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline char *test_mkdtemp(const char *tag)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + strlen(tag) + 32;
    char *dir = malloc(n);
    if (!dir)
        return NULL;
    snprintf(dir, n, "%s/enpi-test-%s-XXXXXX", tmp, tag);
    if (!mkdtemp(dir)) {
        free(dir);
        return NULL;
    }
    return dir;
}

static inline int test_rm_cb(const char *p, const struct stat *sb, int type, struct FTW *f)
{
    (void)sb;
    (void)type;
    (void)f;
    remove(p);
    return 0;
}

/* Removes dir and everything below it, and frees the string. */
static inline void test_rmtree(char *dir)
{
    if (!dir)
        return;
    nftw(dir, test_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* "dir/name" in a static-free malloc'd string. */
static inline char *test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

#endif
