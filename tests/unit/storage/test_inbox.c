/*
 * test_inbox.c - the inbox segment log (storage/inbox.c) through the store's API, with
 * real files: append/scan round trip, rotation into new segments, deletion of segments
 * wholly below the committed inbox_upto, reopening after a torn or corrupt tail record,
 * a segment that cannot be allocated (injected, and a real EFBIG from RLIMIT_FSIZE),
 * next_seq across an emptied inbox, pointers of append_ref, a replay whose callback
 * commits (deleting the segment being read), one producer thread appending while the
 * test thread commits and scans (and prefaults ahead of it), the on-disk checksums against
 * a bitwise CRC32C, and the producer's page faults spared by prefaulting ahead of it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enpi_error.h"
#include "log.h"
#include "storage.h"
#include "tmpdir.h"
#include "store_fixture.h"

#define SMALL_SEGMENT (64u << 10) /* the minimum: a few hundred records each */

static int setup(void **state)
{
    return store_fixture_setup(state, "inbox");
}

static void payload_of(uint64_t seq, char *buf, size_t n, size_t *len)
{
    /* ~100 bytes, different per seq, so that a mix-up shows */
    int k = snprintf(buf, n, "{\"ts\": %llu, \"value\": %llu, \"pad\": \"%060llu\"}",
                     (unsigned long long)seq * 1000, (unsigned long long)seq * 7,
                     (unsigned long long)seq);
    *len = (size_t)k;
}

static int append_seq(enpi_store_t *st, uint64_t seq)
{
    char payload[160];
    size_t len;
    payload_of(seq, payload, sizeof payload, &len);
    char topic[32];
    int tl = snprintf(topic, sizeof topic, "enpi/f/m%llu", (unsigned long long)(seq % 10));
    enpi_inbox_msg_t m = {.seq = seq,
                          .topic = topic,
                          .topic_len = (size_t)tl,
                          .payload = payload,
                          .payload_len = len,
                          .arrival_ms = 5000 + (int64_t)seq,
                          .redelivered = seq % 3 == 0};
    return enpi_store_inbox_append(st, &m);
}

typedef struct {
    uint64_t n;
    uint64_t first, last;
    bool bad; /* a record that is not what append_seq wrote, or out of order */
} scan_check_t;

static int check_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    scan_check_t *c = ctx;
    char payload[160], topic[32];
    size_t len;
    payload_of(m->seq, payload, sizeof payload, &len);
    int tl = snprintf(topic, sizeof topic, "enpi/f/m%llu", (unsigned long long)(m->seq % 10));
    if (m->payload_len != len || memcmp(m->payload, payload, len) != 0 ||
        m->topic_len != (size_t)tl || memcmp(m->topic, topic, (size_t)tl) != 0 ||
        m->topic[tl] != '\0' || m->arrival_ms != 5000 + (int64_t)m->seq ||
        m->redelivered != (m->seq % 3 == 0) || (c->n > 0 && m->seq <= c->last))
        c->bad = true;
    if (c->n == 0)
        c->first = m->seq;
    c->last = m->seq;
    c->n++;
    return 0;
}

static scan_check_t scan_all(enpi_store_t *st, uint64_t from, uint64_t to)
{
    scan_check_t c = {0};
    assert_int_equal(enpi_store_inbox_scan(st, from, to, check_cb, &c), 0);
    assert_false(c.bad);
    return c;
}

static uint64_t next_seq(enpi_store_t *st)
{
    uint64_t next = 0;
    assert_int_equal(enpi_store_inbox_next_seq(st, &next), 0);
    return next;
}

static void commit_upto(enpi_store_t *st, uint64_t upto)
{
    enpi_batch_t b = {.inbox_upto = upto};
    assert_int_equal(enpi_store_commit(st, &b), 0);
}

static size_t files_in(const char *store, const char *sub)
{
    char *dir = test_path(store, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && strcmp(e->d_name, "spare.tmp") != 0) /* not a segment */
            n++;
    closedir(d);
    free(dir);
    return n;
}

/* The path of the one segment file of the inbox whose name sorts first (malloc'd). */
static char *first_segment(const char *store)
{
    char *dir = test_path(store, "inbox");
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && (best[0] == '\0' || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    char *p = test_path(dir, best);
    free(dir);
    return p;
}

/* ---- tests ---- */

static void round_trip_and_ranges(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    assert_int_equal(next_seq(st), 1);
    for (uint64_t s = 1; s <= 100; s++)
        assert_int_equal(append_seq(st, s), 0);
    scan_check_t c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, 100);
    assert_int_equal(c.first, 1);
    assert_int_equal(c.last, 100);
    c = scan_all(st, 40, 60); /* after a scan that stopped further on: from the start */
    assert_int_equal(c.n, 20);
    assert_int_equal(c.first, 40);
    c = scan_all(st, 60, 61); /* resumes where the last one stopped */
    assert_int_equal(c.n, 1);
    assert_int_equal(c.first, 60);
    c = scan_all(st, 10, 11);
    assert_int_equal(c.first, 10);
    assert_int_equal(scan_all(st, 101, UINT64_MAX).n, 0);
    assert_int_equal(next_seq(st), 101);

    /* order is enforced: nothing appended */
    assert_int_equal(append_seq(st, 100), ENPI_EINVAL);
    assert_int_equal(append_seq(st, 7), ENPI_EINVAL);
    assert_int_equal(next_seq(st), 101);
    /* a gap is fine (a commit may have moved inbox_upto beyond the last message) */
    assert_int_equal(append_seq(st, 150), 0);
    assert_int_equal(next_seq(st), 151);
    assert_int_equal(scan_all(st, 101, UINT64_MAX).n, 1);
    enpi_store_close(st);
}

/* append_ref hands out the durable copy; it stays valid while later appends rotate into
 * new segments and until a commit covers it. */
static void append_ref_points_at_the_durable_copy(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_set_segment_bytes(st, SMALL_SEGMENT);
    char topic[] = "a/b";
    char payload[] = "{\"v\": 1}";
    enpi_inbox_msg_t m = {.seq = 1,
                          .topic = topic,
                          .topic_len = 3,
                          .payload = payload,
                          .payload_len = sizeof payload - 1,
                          .arrival_ms = 9};
    enpi_inbox_msg_t out;
    assert_int_equal(enpi_store_inbox_append_ref(st, &m, &out), 0);
    memset(topic, 'x', 3); /* the caller's copy may go at once */
    memset(payload, 'x', sizeof payload - 1);
    for (uint64_t s = 2; s < 2000; s++) /* several segments */
        assert_int_equal(append_seq(st, s), 0);
    assert_true(enpi_store_inbox_segments(st) > 2);
    assert_int_equal(out.seq, 1);
    assert_int_equal(out.topic_len, 3);
    assert_string_equal(out.topic, "a/b");
    assert_int_equal(out.payload_len, 8);
    assert_memory_equal(out.payload, "{\"v\": 1}", 8);
    assert_int_equal(out.arrival_ms, 9);
    enpi_store_close(st);
}

static void segments_rotate_and_go_once_committed(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_set_segment_bytes(st, SMALL_SEGMENT);
    enum { N = 3000 };
    for (uint64_t s = 1; s <= N; s++)
        assert_int_equal(append_seq(st, s), 0);
    size_t segs = enpi_store_inbox_segments(st);
    assert_true(segs >= 5);
    assert_int_equal(files_in(f->path, "inbox"), segs);
    scan_check_t c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, N);
    assert_int_equal(c.last, N);

    commit_upto(st, N / 2); /* the segments wholly below go, the rest stays readable */
    size_t half = enpi_store_inbox_segments(st);
    assert_true(half < segs && half >= segs / 2 - 1);
    assert_int_equal(files_in(f->path, "inbox"), half);
    c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, N - N / 2 + 1);
    assert_int_equal(c.first, N / 2);

    commit_upto(st, N + 1); /* all committed: only the segment being appended to stays */
    assert_int_equal(enpi_store_inbox_segments(st), 1);
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, 0);
    assert_int_equal(next_seq(st), N + 1);
    enpi_store_close(st);

    /* Reopened: that last segment is wholly committed, so it goes too; next_seq stays. */
    st = open_primary(f->path);
    assert_int_equal(enpi_store_inbox_segments(st), 0);
    assert_int_equal(files_in(f->path, "inbox"), 0);
    assert_int_equal(next_seq(st), N + 1);
    assert_int_equal(append_seq(st, N + 1), 0);
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, 1);
    enpi_store_close(st);
}

/* A kill -9 in the middle of an append leaves a torn record at the end of the segment;
 * reopening ignores it and everything after it, and appends go on in a new segment. */
static void reopen_after_a_torn_tail(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    for (uint64_t s = 1; s <= 10; s++)
        assert_int_equal(append_seq(st, s), 0);
    enpi_store_close(st);

    /* Cut the file in the middle of record 10 (each is 32 + ~12 + 1 + ~100 bytes). */
    char *seg = first_segment(f->path);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    int fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    char buf[4096];
    assert_true(pread(fd, buf, sizeof buf, 0) > 0);
    /* find record 10's offset: walk the lengths from the 64-byte header */
    size_t off = 64;
    for (int i = 1; i < 10; i++) {
        uint32_t len = (uint32_t)(unsigned char)buf[off] | (uint32_t)(unsigned char)buf[off + 1]
                                                               << 8;
        off += len;
    }
    assert_int_equal(ftruncate(fd, (off_t)(off + 40)), 0);
    close(fd);

    st = open_primary(f->path);
    assert_int_equal(next_seq(st), 10);
    scan_check_t c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, 9);
    assert_int_equal(c.last, 9);
    assert_int_equal(append_seq(st, 10), 0); /* a new segment */
    assert_int_equal(append_seq(st, 11), 0);
    assert_int_equal(enpi_store_inbox_segments(st), 2);
    enpi_store_close(st);

    /* Now flip one payload byte of record 5 in the old segment: the CRC catches it, and
     * the old segment ends after record 4; the new one still holds 10 and 11. */
    fd = open(seg, O_RDWR);
    assert_true(fd >= 0);
    off = 64;
    for (int i = 1; i < 5; i++) {
        uint32_t len = (uint32_t)(unsigned char)buf[off] | (uint32_t)(unsigned char)buf[off + 1]
                                                               << 8;
        off += len;
    }
    char byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)(off + 60)), 1);
    byte ^= 0x20;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)(off + 60)), 1);
    close(fd);
    free(seg);

    st = open_primary(f->path);
    c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, 6); /* 1..4, 10, 11 */
    assert_int_equal(c.first, 1);
    assert_int_equal(c.last, 11);
    assert_int_equal(next_seq(st), 12);
    commit_upto(st, 12);
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, 0);
    enpi_store_close(st);
}

/* CRC32C, bit by bit, straight from its definition (reflected polynomial 0x82F63B78, the
 * register starting and ending inverted): the reference the on-disk format is pinned to. */
static uint32_t reference_crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The checksums in a segment file are standard CRC32C, so segments written by any build
 * (whatever computes the CRC) read back in any other. */
static void checksums_on_disk_are_crc32c(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(reference_crc32c((const unsigned char *)"123456789", 9), 0xE3069283u);
    enpi_store_t *st = open_primary(f->path);
    for (uint64_t s = 1; s <= 3; s++)
        assert_int_equal(append_seq(st, s), 0);
    enpi_store_close(st);

    char *seg = first_segment(f->path);
    int fd = open(seg, O_RDONLY);
    assert_true(fd >= 0);
    unsigned char buf[4096];
    assert_true(pread(fd, buf, sizeof buf, 0) > 0);
    close(fd);
    free(seg);
    assert_int_equal(le32(buf + 60), reference_crc32c(buf, 60)); /* the segment header */
    size_t off = 64;
    for (int i = 1; i <= 3; i++) {
        const unsigned char *r = buf + off;
        size_t body = 32 + (size_t)(r[28] | r[29] << 8) + 1 + le32(r + 24);
        assert_int_equal(le32(r + 4), reference_crc32c(r + 8, body - 8));
        off += le32(r);
    }
}

/* A segment that cannot be allocated fails the append, which appends nothing: first
 * injected, then for real (posix_fallocate beyond RLIMIT_FSIZE fails with EFBIG, as
 * beyond a full disk with ENOSPC). No file is left behind, and later appends work. */
static void full_disk_fails_the_append_not_the_process(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_inject_alloc_failures(st, 1);
    assert_int_equal(append_seq(st, 1), ENPI_EIO);
    assert_int_equal(next_seq(st), 1);
    assert_int_equal(enpi_store_inbox_segments(st), 0);
    assert_int_equal(files_in(f->path, "inbox"), 0);

    enpi_store_inbox_set_segment_bytes(st, 4u << 20);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 1u << 20;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = append_seq(st, 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, ENPI_EIO);
    assert_int_equal(next_seq(st), 1);
    assert_int_equal(files_in(f->path, "inbox"), 0);

    assert_int_equal(append_seq(st, 1), 0); /* space again */
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, 1);
    /* the segment is allocated whole: its blocks exist before any record is written */
    char *seg = first_segment(f->path);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    assert_int_equal(sb.st_size, 4u << 20);
    assert_true((uint64_t)sb.st_blocks * 512 >= (4u << 20));
    free(seg);
    enpi_store_close(st);
}

typedef struct {
    enpi_store_t *st;
    scan_check_t c;
    int commits;
} replay_t;

static int replay_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    replay_t *r = ctx;
    check_cb(&r->c, m);
    if (m->seq % 97 == 0) { /* a commit, as enpid's replay makes when large; it reaches a
                             * little ahead so that it often covers the end of the
                             * segment being read */
        enpi_batch_t b = {.inbox_upto = m->seq + 60}; /* ahead: often past a segment end */
        if (enpi_store_commit(r->st, &b) != 0)
            return -1;
        r->commits++;
    }
    return 0;
}

/* A scan whose callback commits (start-up replay) deletes segments behind it, at times the
 * very one it reads: the scan still delivers every record once, in order. */
static void replay_that_commits_as_it_goes(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_set_segment_bytes(st, SMALL_SEGMENT);
    for (uint64_t s = 1; s <= 3000; s++)
        assert_int_equal(append_seq(st, s), 0);
    enpi_store_close(st);
    st = open_primary(f->path); /* as after a crash: every segment recovered, sealed */
    size_t segs = enpi_store_inbox_segments(st);
    assert_true(segs >= 5);
    replay_t r = {.st = st};
    assert_int_equal(enpi_store_inbox_scan(st, 0, UINT64_MAX, replay_cb, &r), 0);
    assert_false(r.c.bad);
    assert_int_equal(r.c.n, 3000);
    assert_int_equal(r.c.first, 1);
    assert_int_equal(r.c.last, 3000);
    assert_true(r.commits >= 30);
    assert_true(enpi_store_inbox_segments(st) <= 1);
    enpi_store_close(st);
}

typedef struct {
    enpi_store_t *st;
    uint64_t n;
    int rc;
} producer_t;

static void *producer_main(void *arg)
{
    producer_t *p = arg;
    for (uint64_t s = 1; s <= p->n && p->rc == 0; s++)
        p->rc = append_seq(p->st, s);
    return NULL;
}

typedef struct {
    uint64_t expect; /* the next seq the consumer wants */
    bool bad;
} follow_t;

static int follow_cb(void *ctx, const enpi_inbox_msg_t *m)
{
    follow_t *fl = ctx;
    scan_check_t c = {0};
    check_cb(&c, m);
    if (c.bad || m->seq != fl->expect)
        fl->bad = true;
    fl->expect = m->seq + 1;
    return 0;
}

/* One producer thread appends (rotating through small segments) while this thread plays
 * the loop and the commit worker: it follows the log with scans, and commits how far it
 * got, which deletes segments behind it. Run under TSan in the sanitizer stage. */
static void producer_alongside_scans_and_commits(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_set_segment_bytes(st, SMALL_SEGMENT);
    producer_t p = {.st = st, .n = 20000};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer_main, &p), 0);
    follow_t fl = {.expect = 1};
    int commits = 0;
    while (fl.expect <= p.n && !fl.bad) {
        uint64_t upto = next_seq(st);
        enpi_store_inbox_populate_ahead(st); /* the loop's part, racing rotation and deletes */
        assert_int_equal(enpi_store_inbox_scan(st, fl.expect, upto, follow_cb, &fl), 0);
        if (++commits % 8 == 0)
            commit_upto(st, fl.expect);
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.rc, 0);
    assert_false(fl.bad);
    assert_int_equal(fl.expect, p.n + 1);
    commit_upto(st, p.n + 1);
    assert_int_equal(enpi_store_inbox_segments(st), 1);
    assert_int_equal(next_seq(st), p.n + 1);
    enpi_store_close(st);
}

/* This thread's minor page faults so far. */
static long thread_faults(void)
{
    struct rusage ru;
    assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
    return ru.ru_minflt;
}

/* Appends records from `seq` on until ~`bytes` more of the segment are written; returns
 * the page faults this thread took meanwhile, and the next seq in *next. */
static long faults_appending(enpi_store_t *st, uint64_t seq, size_t bytes, uint64_t *next)
{
    /* append_seq's records take ~150 bytes each */
    uint64_t n = bytes / 150;
    long before = thread_faults();
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(append_seq(st, seq + i), 0);
    long taken = thread_faults() - before;
    *next = seq + n;
    return taken;
}

/* The point of populate_ahead: the producer's stores into a fresh segment each fault
 * their page in (one fault per page, whatever the file system read ahead into its
 * cache); after the call, the next 512 KiB are mapped already and appends take none of
 * those. Compared as differences between equal stretches of appends: a sanitizer's
 * shadow memory faults in as well, alike in both. */
static void populate_ahead_spares_the_producer_its_page_faults(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_populate_ahead(st); /* before the first append: nothing to do */
    assert_int_equal(append_seq(st, 1), 0);
    long pages = (long)((256u << 10) / (size_t)sysconf(_SC_PAGESIZE)); /* in a stretch */
    uint64_t seq = 2;
    long without = faults_appending(st, seq, 256u << 10, &seq);
    enpi_store_inbox_populate_ahead(st);
    long with = faults_appending(st, seq, 256u << 10, &seq);
    print_message("page faults appending 256 KiB: %ld, after populate_ahead %ld\n", without, with);
    assert_true(without - with >= pages / 2);
    /* The window moves on with the next call, and stops 512 KiB ahead: of the next
     * 768 KiB, the first 256 KiB are covered, the last 256 KiB are not. */
    enpi_store_inbox_populate_ahead(st);
    long covered = faults_appending(st, seq, 256u << 10, &seq);
    (void)faults_appending(st, seq, 256u << 10, &seq);
    long beyond = faults_appending(st, seq, 256u << 10, &seq);
    print_message("the next call: %ld, then %ld beyond its reach\n", covered, beyond);
    assert_true(beyond - covered >= pages / 2);
    scan_check_t c = scan_all(st, 0, UINT64_MAX);
    assert_int_equal(c.n, seq - 1);
    assert_int_equal(c.last, seq - 1);
    enpi_store_close(st);
}

static bool spare_exists(const char *store)
{
    char *dir = test_path(store, "inbox");
    char path[4096];
    snprintf(path, sizeof path, "%s/spare.tmp", dir);
    free(dir);
    return access(path, F_OK) == 0;
}

/* Records of append_seq that fit a SMALL_SEGMENT: appends until the segment count grows. */
static uint64_t append_until_switch(enpi_store_t *st, uint64_t seq)
{
    size_t segs = enpi_store_inbox_segments(st);
    while (enpi_store_inbox_segments(st) == segs) {
        assert_int_equal(append_seq(st, seq), 0);
        seq++;
        assert_true(seq < 100000);
    }
    return seq;
}

/* Headroom: the first low-space check allocates the spare segment; a switch takes it
 * (renamed) and allocates the next one. When that fails, low_space says so at once,
 * while appends still have the whole active segment; the next switch then has no
 * segment and fails the append. A retry (at most once a second) that succeeds clears
 * it; the spare file goes at close and is never read as a segment. */
static void low_space_is_known_a_segment_ahead(void **state)
{
    fixture_t *f = *state;
    enpi_store_t *st = open_primary(f->path);
    enpi_store_inbox_set_segment_bytes(st, SMALL_SEGMENT);
    assert_false(spare_exists(f->path));
    assert_false(enpi_store_inbox_low_space(st)); /* allocates the spare */
    assert_true(spare_exists(f->path));
    assert_int_equal(files_in(f->path, "inbox"), 0);

    /* the first append takes the spare; the new spare fails */
    enpi_store_inbox_inject_alloc_failures(st, 1);
    assert_int_equal(append_seq(st, 1), 0);
    assert_int_equal(enpi_store_inbox_segments(st), 1);
    assert_false(spare_exists(f->path));
    assert_true(enpi_store_inbox_low_space(st));
    assert_true(enpi_store_inbox_low_space(st)); /* no retry within the second */

    /* a whole segment of appends still goes in; the switch after it fails */
    uint64_t seq = 2;
    size_t n = 0;
    enpi_store_inbox_inject_alloc_failures(st, 1000);
    for (;; seq++, n++) {
        int rc = append_seq(st, seq);
        if (rc != 0) {
            assert_int_equal(rc, ENPI_EIO);
            break;
        }
        assert_true(n < 100000);
    }
    assert_true(n > 100); /* SMALL_SEGMENT holds a few hundred */
    assert_int_equal(enpi_store_inbox_segments(st), 1);
    assert_true(enpi_store_inbox_low_space(st));

    /* space again: the retry, a second after the last failure, allocates the spare */
    enpi_store_inbox_inject_alloc_failures(st, 0);
    usleep(1100 * 1000);
    assert_false(enpi_store_inbox_low_space(st));
    assert_true(spare_exists(f->path));
    seq = append_until_switch(st, seq); /* the failed seq is free again: reused here */
    assert_int_equal(enpi_store_inbox_segments(st), 2);
    assert_true(spare_exists(f->path)); /* the switch allocated the next one */
    assert_false(enpi_store_inbox_low_space(st));
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, seq - 1);
    enpi_store_close(st);
    assert_false(spare_exists(f->path));

    /* a spare left by a crash is deleted at open, and nothing reads it as a segment */
    char *dir = test_path(f->path, "inbox");
    char path[4096];
    snprintf(path, sizeof path, "%s/spare.tmp", dir);
    free(dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
    st = open_primary(f->path);
    assert_false(spare_exists(f->path));
    assert_int_equal(scan_all(st, 0, UINT64_MAX).n, seq - 1);
    enpi_store_close(st);
}

int main(void)
{
    enpi_log_max_level = 0; /* the expected errors and warnings stay quiet */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trip_and_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(append_ref_points_at_the_durable_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(segments_rotate_and_go_once_committed, setup, teardown),
        cmocka_unit_test_setup_teardown(reopen_after_a_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(checksums_on_disk_are_crc32c, setup, teardown),
        cmocka_unit_test_setup_teardown(full_disk_fails_the_append_not_the_process, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(replay_that_commits_as_it_goes, setup, teardown),
        cmocka_unit_test_setup_teardown(producer_alongside_scans_and_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(low_space_is_known_a_segment_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(populate_ahead_spares_the_producer_its_page_faults, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
