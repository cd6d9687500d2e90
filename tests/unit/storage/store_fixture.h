/*
 * store_fixture.h - the cmocka fixture the storage tests share: a temporary folder with
 * the store at dir/db, removed after the test, and opening that store as primary.
 * Include after <cmocka.h>, storage.h and tmpdir.h.
 */
#ifndef ENPI_TEST_STORE_FIXTURE_H
#define ENPI_TEST_STORE_FIXTURE_H

typedef struct {
    char *dir;  /* the test's temp folder */
    char *path; /* dir/db, the store */
} fixture_t;

/* Makes the temp folder (named after `tag`) and *state; for a test file's setup. */
static inline int store_fixture_setup(void **state, const char *tag)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = test_mkdtemp(tag);
    if (!f->dir) {
        free(f);
        return -1;
    }
    f->path = test_path(f->dir, "db");
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    test_rmtree(f->dir);
    free(f->path);
    free(f);
    return 0;
}

/* Opens the store at path as primary; fails the test on error. */
static inline enpi_store_t *open_primary(const char *path)
{
    enpi_store_t *st = NULL;
    char err[512] = "";
    int rc = enpi_store_open(path, ENPI_STORE_PRIMARY, &st, err, sizeof err);
    if (rc)
        print_error("open %s: %s (%s)\n", path, enpi_strerror(rc), err);
    assert_int_equal(rc, 0);
    return st;
}

#endif
