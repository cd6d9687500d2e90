/*
 * inbox.c - the inbox: every MQTT message made durable before Paho may acknowledge it,
 * kept in an append-only log of memory-mapped segment files in <store>/inbox/ (not in
 * RocksDB), read back at start-up and when the SPSC ring spilled, and released by the
 * commit that reflects it (commit.c calls enpi_inbox_log_sync/_committed).
 *
 * Segment file "<first seq, 16 hex digits>.log", ENPI_INBOX_SEGMENT_BYTES by default,
 * allocated whole with posix_fallocate BEFORE it is mapped MAP_SHARED: a full disk fails
 * the append that needs a new segment, never a store into a sparse page (SIGBUS). The
 * next segment is allocated ahead as "spare.tmp" (renamed when it becomes active), so
 * enpi_store_inbox_low_space() reports a full disk a whole segment before an append
 * could fail; an open deletes a spare left behind. A write into a MAP_SHARED mapping is in the
 * page cache at once and survives kill -9, like RocksDB's WAL without sync did; the commit
 * fdatasyncs the segments written since the last commit, so a commit still makes every
 * append before it durable against power loss. Layout (little-endian):
 *
 *   segment header (64 bytes): "ENPIINB1" | u64 first_seq | u64 segment bytes |
 *                              zeros | u32 CRC32C of bytes 0..59 at 60
 *   record (8-byte aligned):   u32 record bytes (header + topic + NUL + payload + pad; 0 =
 *                              end) | u32 CRC32C of bytes 8..(32 + topic + 1 + payload) |
 *                              u64 seq | i64 arrival_ms | u32 payload bytes |
 *                              u16 topic bytes | u8 flags (1 = redelivered) | u8 0 |
 *                              topic | NUL | payload | zero padding
 *
 * Rules that make recovery simple:
 *   - Sequence numbers strictly increase along the log, across segments.
 *   - A segment is appended to only by the open that created it: after a restart the first
 *     append starts a new segment. So a torn record (kill -9 in the middle of a memcpy) is
 *     always the last thing in its segment, and the open that finds it (the first record
 *     whose length, CRC or seq is wrong) treats everything from there on as absent.
 *   - A segment is deleted once every record in it is below the committed inbox_upto
 *     (Meta, written by the commit's WriteBatch), and only if it is not the one being
 *     appended to. Scans skip records below inbox_upto, so a half-committed segment reads
 *     exactly like the committed-away RocksDB keys did.
 *
 * DESIGN (threads): one producer appends (enpi_store_inbox_append* are serialised by the
 * caller: Paho's receive thread; a mutex-free path). Each segment publishes how far its
 * records are complete with a release store of `published`; readers (scans on any thread)
 * read only below an acquire load of it, so they never see a record being written. The
 * segment list, the scan hint and segment life are under `mu`, which the producer takes
 * only when it starts a new segment. A scan pins the segment it reads; the commit that
 * deletes a pinned segment unlinks it and leaves the unmapping to the last unpin. Another
 * thread (enpid's loop) prefaults the pages ahead of the producer the same way: it pins
 * the active segment under `mu` and faults its next pages in (enpi_store_inbox_populate_
 * ahead), so the producer's stores find them mapped.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "enpi_error.h"
#include "keys.h"
#include "log.h"
#include "store_int.h"

#define SEG_HEADER_BYTES 64
#define SEG_MAGIC "ENPIINB1"
#define REC_HEADER_BYTES 32
#define REC_FLAG_REDELIVERED 1u
#define SEG_MIN_BYTES (64u << 10)
#define INBOX_DIR "inbox"
/* Mapped pages the producer keeps behind its write position: the loop reads a record soon
 * after it was written (within the ring's reach); older pages are dropped from the
 * mapping (MADV_DONTNEED: the data stays in the page cache and the file, a later read
 * faults it back in), so the inbox does not count in the process's RSS by the segment. */
#define RESIDENT_BEHIND (8u << 20)
#define TRIM_STEP (4u << 20)
/* What the loop keeps prefaulted ahead of the producer (enpi_store_inbox_populate_ahead):
 * 512 KiB is ~35 ms of appends at 150,000 messages/s of the e2e benchmark's ~96-byte
 * records (computed), several times the loop's 4 ms turn; it is asked for in steps of at
 * least 128 KiB. Each page so prepared is dirty, so the
 * commit's fdatasync writes it (zeros) and write-protects it again: the lead is kept
 * short, so that at most this much is written twice and refaulted (cheaply) per commit. */
#define POPULATE_AHEAD (512u << 10)
#define POPULATE_STEP (128u << 10)
#define SPARE_NAME "spare.tmp" /* the next segment, allocated ahead: not a segment name */
#define SPARE_RETRY_MS 1000    /* a failed spare allocation is retried at most this often */

/* ---- CRC32C (Castagnoli) ---- */

/* ISA-L picks the CPU's CRC32 instruction when there is one (a table-driven CRC on this
 * thread was ~1.5 % of Paho's receive thread in the e2e benchmark). ISA-L takes and
 * returns the CRC register without CRC32C's final inversion. */
static uint32_t crc32c(const uint8_t *p, size_t n)
{
    uint32_t reg = 0xFFFFFFFFu;
    for (size_t chunk; n > 0; p += chunk, n -= chunk) { /* ISA-L takes an int length */
        chunk = n < (1u << 30) ? n : (1u << 30);
        reg = crc32_iscsi((unsigned char *)p, (int)chunk, reg);
    }
    return ~reg;
}

/* ---- little-endian fields ---- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* ---- segments and the log ---- */

typedef struct inbox_seg {
    struct inbox_seg *next; /* list in seq order (mu) */
    uint64_t first_seq;
    uint8_t *map;
    size_t size;
    int fd;
    _Atomic size_t published; /* records below this offset are complete */
    _Atomic uint64_t end_seq; /* one past the last record's seq (first_seq if none) */
    bool sealed;              /* no more appends (mu) */
    bool dead;                /* unlinked; unmap at the last unpin (mu) */
    unsigned pins;            /* scans reading it (mu) */
    size_t synced;            /* commit thread: offset fdatasync'ed up to */
    size_t populated;         /* (mu) populate_ahead has prefaulted the pages below this */
} inbox_seg_t;

struct enpi_inbox_log {
    pthread_mutex_t mu;
    char *dir;
    int dirfd;
    inbox_seg_t *head; /* (mu) */
    inbox_seg_t *tail; /* (mu) */
    bool dir_dirty;    /* (mu) a segment was created or deleted since the last sync */
    /* scan hint (mu): where the last scan stopped, to resume without walking */
    inbox_seg_t *hint_seg;
    size_t hint_off;
    uint64_t hint_seq; /* the record at hint_off has a seq >= hint_seq, those before < */
    /* producer */
    inbox_seg_t *active; /* the segment this open appends to, NULL before the first */
    size_t write_off;
    size_t trimmed; /* the active segment's pages below this are dropped from the mapping */
    size_t page;    /* the page size */
    uint64_t last_seq;
    bool has_last;
    size_t seg_bytes;         /* size of segments created from now on */
    unsigned inject_failures; /* segment creations still to fail (tests; spare_mu) */
    /* any thread */
    _Atomic uint64_t next_seq;  /* one past the highest seq appended (0: none) */
    _Atomic uint64_t committed; /* Meta.inbox_upto as stored */
    /* Headroom (spare_mu): the next segment is allocated (SPARE_NAME, mapped, no header
     * yet) while the active one still has room, so that "no space for the next segment"
     * is known a whole segment ahead (enpi_store_inbox_low_space). The producer takes it
     * at a switch; the loop thread's low-space check retries a failed allocation. */
    pthread_mutex_t spare_mu;
    inbox_seg_t *spare;        /* NULL: none allocated (yet, or the disk is full) */
    int64_t spare_failed_ms;   /* monotonic ms of the last failed attempt; 0 = none */
    enpi_ratelimit_t alloc_rl; /* allocation failures logged, at most 6 a minute */
    _Atomic bool low_space;    /* the last spare allocation failed (relaxed: a hint) */
    _Atomic bool no_populate;  /* the kernel refused MADV_POPULATE_WRITE (before 5.14) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void seg_unmap(inbox_seg_t *s)
{
    if (s->map)
        munmap(s->map, s->size);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

static void seg_name(char *buf, size_t n, uint64_t first_seq)
{
    snprintf(buf, n, "%016" PRIx64 ".log", first_seq);
}

/* Under mu: drops s from the list, unlinks its file, unmaps it unless pinned. */
static void seg_delete_locked(enpi_inbox_log_t *log, inbox_seg_t *s, inbox_seg_t *prev)
{
    if (prev)
        prev->next = s->next;
    else
        log->head = s->next;
    if (log->tail == s)
        log->tail = prev;
    if (log->hint_seg == s)
        log->hint_seg = NULL;
    char name[32];
    seg_name(name, sizeof name, s->first_seq);
    if (unlinkat(log->dirfd, name, 0) != 0 && errno != ENOENT)
        log_warn("storage: inbox: cannot delete %s/%s: %s", log->dir, name, strerror(errno));
    log->dir_dirty = true;
    s->dead = true;
    s->next = NULL;
    if (s->pins == 0)
        seg_unmap(s);
}

/* Under mu: appends s to the list. */
static void seg_link_locked(enpi_inbox_log_t *log, inbox_seg_t *s)
{
    s->next = NULL;
    if (log->tail)
        log->tail->next = s;
    else
        log->head = s;
    log->tail = s;
}

/*
 * Walks the records of a recovered segment from its first: each must have a sane length,
 * a seq above the previous one and >= first_seq, and a matching CRC. Sets published and
 * end_seq to the end of the valid prefix. Returns how many records are valid.
 */
static size_t seg_recover(enpi_inbox_log_t *log, inbox_seg_t *s, const char *name)
{
    const uint8_t *h = s->map;
    /* The file may be shorter than the header says (cut short): read what is there. */
    if (memcmp(h, SEG_MAGIC, 8) != 0 || get_u64(h + 8) != s->first_seq ||
        get_u32(h + SEG_HEADER_BYTES - 4) != crc32c(h, SEG_HEADER_BYTES - 4)) {
        log_warn("storage: inbox: %s/%s has no valid header; ignored", log->dir, name);
        atomic_store_explicit(&s->published, SEG_HEADER_BYTES, memory_order_relaxed);
        atomic_store_explicit(&s->end_seq, s->first_seq, memory_order_relaxed);
        return 0;
    }
    size_t off = SEG_HEADER_BYTES, n = 0;
    uint64_t next = s->first_seq;
    while (off + REC_HEADER_BYTES <= s->size) {
        const uint8_t *r = s->map + off;
        uint32_t len = get_u32(r);
        if (len == 0)
            break; /* the end: never written */
        uint64_t seq = get_u64(r + 8);
        uint32_t plen = get_u32(r + 24);
        uint16_t tlen = get_u16(r + 28);
        size_t body = (size_t)REC_HEADER_BYTES + tlen + 1 + plen;
        if (len % 8 != 0 || len < body || len != align8(body) || len > s->size - off ||
            seq < next || r[REC_HEADER_BYTES + tlen] != 0 ||
            get_u32(r + 4) != crc32c(r + 8, body - 8)) {
            log_warn("storage: inbox: %s/%s ends in a torn or invalid record at offset %zu "
                     "(after %zu valid ones); the rest is ignored",
                     log->dir, name, off, n);
            break;
        }
        next = seq + 1;
        off += len;
        n++;
    }
    atomic_store_explicit(&s->published, off, memory_order_relaxed);
    atomic_store_explicit(&s->end_seq, next, memory_order_relaxed);
    s->synced = off;
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment files of the folder, sorted by first seq. *out malloc'd. */
static int list_segments(enpi_inbox_log_t *log, uint64_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int fd = dup(log->dirfd);
    if (fd < 0)
        return ENPI_EIO;
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return ENPI_EIO;
    }
    uint64_t *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        char *end;
        if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".log") != 0)
            continue;
        uint64_t first = strtoull(e->d_name, &end, 16);
        if (end != e->d_name + 16)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = ENPI_ENOMEM;
                break;
            }
            v = nv;
        }
        v[n++] = first;
    }
    closedir(dir);
    if (rc) {
        free(v);
        return rc;
    }
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_u64);
    *out = v;
    *n_out = n;
    return 0;
}

static int open_segment_file(enpi_inbox_log_t *log, uint64_t first, inbox_seg_t **out)
{
    char name[32];
    seg_name(name, sizeof name, first);
    inbox_seg_t *s = calloc(1, sizeof *s);
    if (!s)
        return ENPI_ENOMEM;
    s->first_seq = first;
    s->fd = openat(log->dirfd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (s->fd < 0 || fstat(s->fd, &sb) != 0) {
        log_err("storage: inbox: cannot open %s/%s: %s", log->dir, name, strerror(errno));
        seg_unmap(s);
        return ENPI_EIO;
    }
    s->size = (size_t)sb.st_size;
    if (s->size < SEG_HEADER_BYTES) {
        s->map = NULL;
        *out = s; /* no header: recovered as empty below */
        return 0;
    }
    s->map = mmap(NULL, s->size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        log_err("storage: inbox: cannot map %s/%s: %s", log->dir, name, strerror(errno));
        seg_unmap(s);
        return ENPI_EIO;
    }
    *out = s;
    return 0;
}

/*
 * Opens (creating) <store>/inbox, deletes the segments wholly below `committed` without
 * reading them, recovers the others (valid prefix of each) and those with nothing valid
 * are deleted. Returns 0, ENPI_EIO or ENPI_ENOMEM; the message goes to the log and errbuf.
 */
int enpi_inbox_log_open(const char *store_path, uint64_t committed, enpi_inbox_log_t **out)
{
    *out = NULL;
    enpi_inbox_log_t *log = calloc(1, sizeof *log);
    if (!log)
        return ENPI_ENOMEM;
    pthread_mutex_init(&log->mu, NULL);
    pthread_mutex_init(&log->spare_mu, NULL);
    log->dirfd = -1;
    log->seg_bytes = ENPI_INBOX_SEGMENT_BYTES;
    long page = sysconf(_SC_PAGESIZE);
    log->page = page > 0 && (page & (page - 1)) == 0 ? (size_t)page : 4096;
    atomic_init(&log->next_seq, 0);
    atomic_init(&log->committed, committed);
    int rc = ENPI_ENOMEM;
    size_t n = strlen(store_path) + sizeof "/" INBOX_DIR;
    log->dir = malloc(n);
    if (!log->dir)
        goto close_log;
    snprintf(log->dir, n, "%s/" INBOX_DIR, store_path);
    if (mkdir(log->dir, 0750) != 0 && errno != EEXIST) {
        log_err("storage: inbox: cannot create %s: %s", log->dir, strerror(errno));
        rc = ENPI_EIO;
        goto close_log;
    }
    log->dirfd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dirfd < 0) {
        log_err("storage: inbox: cannot open %s: %s", log->dir, strerror(errno));
        rc = ENPI_EIO;
        goto close_log;
    }
    /* A spare left by an earlier run (never holds records): its space comes back. */
    if (unlinkat(log->dirfd, SPARE_NAME, 0) != 0 && errno != ENOENT)
        log_warn("storage: inbox: cannot delete %s/" SPARE_NAME ": %s", log->dir, strerror(errno));
    uint64_t *firsts;
    size_t n_seg;
    if ((rc = list_segments(log, &firsts, &n_seg)) != 0) {
        log_err("storage: inbox: cannot list %s", log->dir);
        goto close_log;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < n_seg; i++) {
        char name[32];
        seg_name(name, sizeof name, firsts[i]);
        if (i + 1 < n_seg && firsts[i + 1] <= committed) {
            /* Every record here is below the next segment's first seq: committed. */
            if (unlinkat(log->dirfd, name, 0) != 0)
                log_warn("storage: inbox: cannot delete %s/%s: %s", log->dir, name,
                         strerror(errno));
            continue;
        }
        inbox_seg_t *s;
        if ((rc = open_segment_file(log, firsts[i], &s)) != 0) {
            free(firsts);
            goto close_log;
        }
        size_t valid = s->map ? seg_recover(log, s, name) : 0;
        uint64_t end = atomic_load_explicit(&s->end_seq, memory_order_relaxed);
        if (valid == 0 || end <= committed) {
            if (unlinkat(log->dirfd, name, 0) != 0)
                log_warn("storage: inbox: cannot delete %s/%s: %s", log->dir, name,
                         strerror(errno));
            seg_unmap(s);
        } else {
            s->sealed = true;
            seg_link_locked(log, s);
        }
        if (valid > 0 && end > next)
            next = end;
    }
    free(firsts);
    atomic_store_explicit(&log->next_seq, next, memory_order_relaxed);
    if (next > 0) {
        log->last_seq = next - 1;
        log->has_last = true;
    }
    *out = log;
    return 0;

close_log:
    enpi_inbox_log_close(log);
    return rc;
}

void enpi_inbox_log_close(enpi_inbox_log_t *log)
{
    if (!log)
        return;
    for (inbox_seg_t *s = log->head, *nx; s; s = nx) {
        nx = s->next;
        seg_unmap(s); /* no scan runs any more: nothing is pinned */
    }
    if (log->spare) {
        seg_unmap(log->spare);
        unlinkat(log->dirfd, SPARE_NAME, 0); /* its space back; the next open would anyway */
    }
    if (log->dirfd >= 0)
        close(log->dirfd);
    pthread_mutex_destroy(&log->spare_mu);
    pthread_mutex_destroy(&log->mu);
    free(log->dir);
    free(log);
}

/*
 * Under spare_mu: creates the file `name`, allocates log->seg_bytes whole and maps it,
 * with no header yet. A failure (disk full...) is logged at a limited rate and leaves no
 * file. Returns 0, ENPI_ENOMEM or ENPI_EIO.
 */
static int seg_alloc_locked(enpi_inbox_log_t *log, const char *name, inbox_seg_t **out)
{
    inbox_seg_t *s = calloc(1, sizeof *s);
    if (!s)
        return ENPI_ENOMEM;
    s->size = log->seg_bytes;
    int err = 0;
    s->fd = openat(log->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (s->fd < 0) {
        err = errno;
    } else if (log->inject_failures > 0) {
        log->inject_failures--;
        err = ENOSPC;
    } else {
        err = posix_fallocate(s->fd, 0, (off_t)s->size);
    }
    if (err == 0) {
        s->map = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (s->map == MAP_FAILED) {
            s->map = NULL;
            err = errno;
        }
    }
    if (err != 0) {
        uint64_t suppressed;
        if (enpi_ratelimit_allow(&log->alloc_rl, mono_ms(), 6, &suppressed)) {
            log_err("storage: inbox: cannot allocate %s/%s (%zu bytes): %s", log->dir, name,
                    s->size, strerror(err));
            if (suppressed)
                log_err("storage: inbox: (%" PRIu64 " similar failures not logged)", suppressed);
        }
        if (s->fd >= 0)
            unlinkat(log->dirfd, name, 0);
        seg_unmap(s);
        return ENPI_EIO;
    }
    *out = s;
    return 0;
}

/* Writes the header of an allocated segment whose first record will be `first`. */
static void seg_start(inbox_seg_t *s, uint64_t first)
{
    s->first_seq = first;
    uint8_t *h = s->map;
    memcpy(h, SEG_MAGIC, 8);
    put_u64(h + 8, first);
    put_u64(h + 16, s->size);
    put_u32(h + SEG_HEADER_BYTES - 4, crc32c(h, SEG_HEADER_BYTES - 4));
    atomic_init(&s->published, SEG_HEADER_BYTES);
    atomic_init(&s->end_seq, first);
}

/* Under spare_mu: allocates the spare segment unless there is one; notes the outcome. */
static void spare_refill_locked(enpi_inbox_log_t *log)
{
    if (log->spare == NULL) {
        unlinkat(log->dirfd, SPARE_NAME, 0); /* nothing there, normally */
        inbox_seg_t *s;
        if (seg_alloc_locked(log, SPARE_NAME, &s) == 0) {
            log->spare = s;
            log->spare_failed_ms = 0;
        } else {
            log->spare_failed_ms = mono_ms();
        }
    }
    atomic_store_explicit(&log->low_space, log->spare == NULL, memory_order_relaxed);
}

/*
 * Producer: the segment whose first record is `first`, ready to append to: the spare
 * (its header written, then renamed to the segment's name), or, without a usable spare,
 * one allocated now. Then the spare for the next switch is allocated, so a full disk is
 * noticed a segment ahead. Returns 0, ENPI_EIO (no segment: disk full), ENPI_ENOMEM.
 */
static int seg_next(enpi_inbox_log_t *log, uint64_t first, inbox_seg_t **out)
{
    char name[32];
    seg_name(name, sizeof name, first);
    pthread_mutex_lock(&log->spare_mu);
    inbox_seg_t *s = log->spare;
    log->spare = NULL;
    if (s && s->size != log->seg_bytes) {
        /* the segment size changed since (tests): allocate one of the new size */
        seg_unmap(s);
        unlinkat(log->dirfd, SPARE_NAME, 0);
        s = NULL;
    }
    if (s) {
        seg_start(s, first); /* before the rename: a named segment always has a header */
        if (renameat(log->dirfd, SPARE_NAME, log->dirfd, name) != 0) {
            log_err("storage: inbox: cannot rename %s/" SPARE_NAME " to %s: %s", log->dir, name,
                    strerror(errno));
            seg_unmap(s);
            unlinkat(log->dirfd, SPARE_NAME, 0);
            s = NULL;
        }
    }
    int rc = 0;
    if (s == NULL) {
        rc = seg_alloc_locked(log, name, &s);
        if (rc == 0)
            seg_start(s, first);
    }
    if (rc == 0)
        spare_refill_locked(log);
    else
        log->spare_failed_ms = mono_ms();
    if (rc != 0)
        atomic_store_explicit(&log->low_space, true, memory_order_relaxed);
    pthread_mutex_unlock(&log->spare_mu);
    *out = s;
    return rc;
}

static int append(enpi_store_t *st, const enpi_inbox_msg_t *m, enpi_inbox_msg_t *stored)
{
    if (!enpi_store_writable(st, "inbox append"))
        return ENPI_ESTATE;
    enpi_inbox_log_t *log = st->inbox;
    if (m->topic_len > UINT16_MAX || m->payload_len > UINT32_MAX) {
        log_err("storage: inbox: message %" PRIu64 " too large (topic %zu, payload %zu bytes)",
                m->seq, m->topic_len, m->payload_len);
        return ENPI_EINVAL;
    }
    size_t body = REC_HEADER_BYTES + m->topic_len + 1 + m->payload_len;
    size_t len = align8(body);
    if (len > log->seg_bytes - SEG_HEADER_BYTES) {
        log_err("storage: inbox: message %" PRIu64 " of %zu bytes exceeds a segment", m->seq, len);
        return ENPI_EINVAL;
    }
    if (log->has_last && m->seq <= log->last_seq) {
        log_err("storage: inbox: append of seq %" PRIu64 " after %" PRIu64, m->seq, log->last_seq);
        return ENPI_EINVAL;
    }
    inbox_seg_t *s = log->active;
    if (!s || log->write_off + len > s->size) {
        inbox_seg_t *ns;
        int rc = seg_next(log, m->seq, &ns);
        if (rc)
            return rc;
        /* Before sealing: once sealed, a commit may delete and unmap it at any moment.
         * The loop may still read its tail: it refaults from the page cache. */
        if (s && log->trimmed < s->size)
            madvise(s->map + log->trimmed, s->size - log->trimmed, MADV_DONTNEED);
        pthread_mutex_lock(&log->mu);
        if (s)
            s->sealed = true;
        seg_link_locked(log, ns);
        log->dir_dirty = true;
        pthread_mutex_unlock(&log->mu);
        log->active = s = ns;
        log->write_off = SEG_HEADER_BYTES;
        log->trimmed = 0;
    }
    uint8_t *r = s->map + log->write_off;
    put_u32(r, (uint32_t)len);
    put_u64(r + 8, m->seq);
    put_u64(r + 16, (uint64_t)m->arrival_ms);
    put_u32(r + 24, (uint32_t)m->payload_len);
    put_u16(r + 28, (uint16_t)m->topic_len);
    r[30] = m->redelivered ? REC_FLAG_REDELIVERED : 0;
    r[31] = 0;
    uint8_t *t = r + REC_HEADER_BYTES;
    if (m->topic_len)
        memcpy(t, m->topic, m->topic_len);
    t[m->topic_len] = 0;
    uint8_t *p = t + m->topic_len + 1;
    if (m->payload_len)
        memcpy(p, m->payload, m->payload_len);
    if (len > body)
        memset(r + body, 0, len - body); /* a reused tail after a rotation is zero anyway */
    put_u32(r + 4, crc32c(r + 8, body - 8));

    log->write_off += len;
    if (log->write_off - log->trimmed >= RESIDENT_BEHIND + TRIM_STEP) {
        size_t to = (log->write_off - RESIDENT_BEHIND) & ~(log->page - 1);
        madvise(s->map + log->trimmed, to - log->trimmed, MADV_DONTNEED);
        log->trimmed = to;
    }
    log->last_seq = m->seq;
    log->has_last = true;
    atomic_store_explicit(&s->end_seq, m->seq + 1, memory_order_relaxed);
    /* Release: the record's bytes before the offset that lets readers see them. */
    atomic_store_explicit(&s->published, log->write_off, memory_order_release);
    atomic_store_explicit(&log->next_seq, m->seq + 1, memory_order_release);
    if (stored) {
        *stored = *m;
        stored->topic = (const char *)t;
        stored->payload = p;
    }
    return 0;
}

int enpi_store_inbox_append(enpi_store_t *st, const enpi_inbox_msg_t *m)
{
    return append(st, m, NULL);
}

int enpi_store_inbox_append_ref(enpi_store_t *st, const enpi_inbox_msg_t *m,
                                enpi_inbox_msg_t *stored)
{
    return append(st, m, stored);
}

int enpi_store_inbox_next_seq(enpi_store_t *st, uint64_t *next_out)
{
    uint64_t next = 1;
    if (st->inbox) {
        uint64_t c = atomic_load_explicit(&st->inbox->committed, memory_order_acquire);
        uint64_t a = atomic_load_explicit(&st->inbox->next_seq, memory_order_acquire);
        if (c > next)
            next = c;
        if (a > next)
            next = a;
    } else {
        /* SECONDARY: the log is the primary's; what Meta says is the best we know. */
        bool found;
        uint32_t version;
        uint64_t upto;
        int rc = enpi_store_meta_read(st, &found, &version, &upto);
        if (rc)
            return rc;
        if (upto > next)
            next = upto;
    }
    *next_out = next;
    return 0;
}

/* Under mu: the segment to start a scan for `from` at, and the offset in it. */
static inbox_seg_t *scan_start_locked(enpi_inbox_log_t *log, uint64_t from, size_t *off)
{
    if (log->hint_seg && log->hint_seq <= from) {
        /* Resume where the last scan stopped, unless a later segment starts at or
         * below `from` (then that one is closer). */
        inbox_seg_t *best = log->hint_seg;
        *off = log->hint_off;
        for (inbox_seg_t *s = best->next; s && s->first_seq <= from; s = s->next) {
            best = s;
            *off = SEG_HEADER_BYTES;
        }
        return best;
    }
    inbox_seg_t *best = log->head;
    for (inbox_seg_t *s = log->head; s && s->first_seq <= from; s = s->next)
        best = s;
    *off = SEG_HEADER_BYTES;
    return best;
}

/* Under mu. */
static void unpin_locked(inbox_seg_t *s)
{
    if (--s->pins == 0 && s->dead)
        seg_unmap(s);
}

int enpi_store_inbox_scan(enpi_store_t *st, uint64_t from, uint64_t to, enpi_inbox_cb cb, void *ctx)
{
    enpi_inbox_log_t *log = st->inbox;
    if (!log)
        return 0; /* SECONDARY: no inbox to read */
    uint64_t committed = atomic_load_explicit(&log->committed, memory_order_acquire);
    if (from < committed)
        from = committed;
    if (from >= to)
        return 0;

    size_t off;
    pthread_mutex_lock(&log->mu);
    inbox_seg_t *s = scan_start_locked(log, from, &off);
    if (s)
        s->pins++;
    pthread_mutex_unlock(&log->mu);

    int rc = 0;
    bool done = false;
    uint64_t last_seq = from; /* for the hint: records before `off` are below it */
    while (s && !done) {
        size_t end = atomic_load_explicit(&s->published, memory_order_acquire);
        while (off < end) {
            const uint8_t *r = s->map + off;
            uint32_t len = get_u32(r);
            uint64_t seq = get_u64(r + 8);
            if (seq >= to) {
                done = true;
                break;
            }
            if (seq >= from) {
                uint16_t tlen = get_u16(r + 28);
                enpi_inbox_msg_t m = {
                    .seq = seq,
                    .topic = (const char *)r + REC_HEADER_BYTES,
                    .topic_len = tlen,
                    .payload = r + REC_HEADER_BYTES + tlen + 1,
                    .payload_len = get_u32(r + 24),
                    .arrival_ms = (int64_t)get_u64(r + 16),
                    .redelivered = (r[30] & REC_FLAG_REDELIVERED) != 0,
                };
                off += len;
                last_seq = seq + 1;
                rc = cb(ctx, &m);
                if (rc) {
                    done = true;
                    break;
                }
            } else {
                off += len;
            }
        }
        if (done)
            break;
        /* This segment is read up to what was published: go on only once it is sealed
         * and fully read (an unsealed one is the producer's: its end is the log's end). */
        pthread_mutex_lock(&log->mu);
        inbox_seg_t *nx = s->next;
        if (s->dead) {
            /* A commit (perhaps made by cb) deleted it under us: the next one is the first
             * still listed that starts above it (the list keeps seq order). */
            for (nx = log->head; nx && nx->first_seq <= s->first_seq; nx = nx->next) {
            }
        }
        if (s->sealed && off >= atomic_load_explicit(&s->published, memory_order_acquire) && nx) {
            nx->pins++;
            unpin_locked(s);
            s = nx;
            off = SEG_HEADER_BYTES;
            pthread_mutex_unlock(&log->mu);
            continue;
        }
        bool more = s->sealed && off < atomic_load_explicit(&s->published, memory_order_acquire);
        pthread_mutex_unlock(&log->mu);
        if (!more)
            break;
    }
    if (s) {
        pthread_mutex_lock(&log->mu);
        if (!s->dead) {
            log->hint_seg = s;
            log->hint_off = off;
            log->hint_seq = last_seq;
        }
        unpin_locked(s);
        pthread_mutex_unlock(&log->mu);
    }
    return rc;
}

#define SYNC_CHUNK 64 /* segments synced per pass of sync_chunk() */

/* One pass of enpi_inbox_log_sync: up to SYNC_CHUNK written segments, oldest first, and
 * the folder when segments came or went. *more: a full chunk was synced, look again. */
static int sync_chunk(enpi_inbox_log_t *log, bool *more)
{
    int fds[SYNC_CHUNK];
    inbox_seg_t *segs[SYNC_CHUNK];
    size_t offs[SYNC_CHUNK];
    size_t n = 0;
    bool dir = false;
    pthread_mutex_lock(&log->mu);
    for (inbox_seg_t *s = log->head; s && n < SYNC_CHUNK; s = s->next) {
        size_t pub = atomic_load_explicit(&s->published, memory_order_acquire);
        if (pub > s->synced) {
            fds[n] = s->fd;
            segs[n] = s;
            offs[n] = pub;
            s->pins++; /* keeps fd open while we sync outside the lock */
            n++;
        }
    }
    dir = log->dir_dirty;
    log->dir_dirty = false;
    pthread_mutex_unlock(&log->mu);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (fdatasync(fds[i]) != 0) {
            log_err("storage: inbox: fdatasync: %s", strerror(errno));
            rc = ENPI_EIO;
        } else {
            segs[i]->synced = offs[i];
        }
    }
    if (dir && fsync(log->dirfd) != 0) {
        log_err("storage: inbox: fsync of %s: %s", log->dir, strerror(errno));
        rc = ENPI_EIO;
    }
    pthread_mutex_lock(&log->mu);
    if (rc && dir)
        log->dir_dirty = true;
    for (size_t i = 0; i < n; i++)
        unpin_locked(segs[i]);
    pthread_mutex_unlock(&log->mu);
    *more = n == SYNC_CHUNK;
    return rc;
}

/* Commit thread, before the RocksDB write: fdatasync every segment written since the
 * last call, however many (after a long run of failed commits there can be more than one
 * chunk's worth), and the folder when segments came or went. Returns 0 or ENPI_EIO. */
int enpi_inbox_log_sync(enpi_inbox_log_t *log)
{
    bool more = true;
    int rc = 0;
    while (more && rc == 0)
        rc = sync_chunk(log, &more);
    return rc;
}

/* Commit thread, after a write that stored inbox_upto = upto: scans skip below it and
 * every sealed segment wholly below it is deleted. */
void enpi_inbox_log_committed(enpi_inbox_log_t *log, uint64_t upto)
{
    atomic_store_explicit(&log->committed, upto, memory_order_release);
    pthread_mutex_lock(&log->mu);
    inbox_seg_t *prev = NULL;
    for (inbox_seg_t *s = log->head, *nx; s; s = nx) {
        nx = s->next;
        if (s->sealed && atomic_load_explicit(&s->end_seq, memory_order_relaxed) <= upto) {
            seg_delete_locked(log, s, prev);
        } else {
            prev = s;
        }
    }
    pthread_mutex_unlock(&log->mu);
}

void enpi_store_inbox_set_segment_bytes(enpi_store_t *st, size_t bytes)
{
    if (!st->inbox)
        return;
    st->inbox->seg_bytes = bytes < SEG_MIN_BYTES ? SEG_MIN_BYTES : align8(bytes);
}

void enpi_store_inbox_inject_alloc_failures(enpi_store_t *st, unsigned n)
{
    if (!st->inbox)
        return;
    pthread_mutex_lock(&st->inbox->spare_mu);
    st->inbox->inject_failures = n;
    pthread_mutex_unlock(&st->inbox->spare_mu);
}

bool enpi_store_inbox_low_space(enpi_store_t *st)
{
    enpi_inbox_log_t *log = st->inbox;
    if (!log)
        return false;
    /* The producer is switching segments (allocating): its outcome decides; meanwhile
     * the last known answer. */
    if (pthread_mutex_trylock(&log->spare_mu) != 0)
        return atomic_load_explicit(&log->low_space, memory_order_relaxed);
    if (log->spare == NULL &&
        (log->spare_failed_ms == 0 || mono_ms() - log->spare_failed_ms >= SPARE_RETRY_MS))
        spare_refill_locked(log);
    bool low = log->spare == NULL;
    pthread_mutex_unlock(&log->spare_mu);
    return low;
}

void enpi_store_inbox_populate_ahead(enpi_store_t *st)
{
    enpi_inbox_log_t *log = st->inbox;
    if (!log || atomic_load_explicit(&log->no_populate, memory_order_relaxed))
        return;
    pthread_mutex_lock(&log->mu);
    inbox_seg_t *s = log->tail; /* the producer's: a new segment is linked at the tail */
    if (!s || s->sealed || s->dead) {
        pthread_mutex_unlock(&log->mu);
        return;
    }
    /* Relaxed: only where to start; this thread reads none of the records below it, and
     * a stale value at worst prefaults a page the producer has written already. */
    size_t pub = atomic_load_explicit(&s->published, memory_order_relaxed);
    size_t from = pub & ~(log->page - 1);
    if (from < s->populated)
        from = s->populated;
    size_t to = pub + POPULATE_AHEAD > s->size ? s->size : pub + POPULATE_AHEAD;
    to = (to + log->page - 1) & ~(log->page - 1);
    if (to > s->size)
        to = s->size;
    if (to <= from || (to - from < POPULATE_STEP && to < s->size)) {
        pthread_mutex_unlock(&log->mu);
        return;
    }
    s->populated = to;
    s->pins++; /* a commit may seal and delete it meanwhile: the unmap waits for us */
    pthread_mutex_unlock(&log->mu);
    /* Faults the pages in writable without touching their bytes, exactly as the
     * producer's first store into each would (ext4 zero-fills the unwritten extent), but
     * here, on this thread, many pages per call. */
    if (madvise(s->map + from, to - from, MADV_POPULATE_WRITE) != 0) {
        if (errno == EINVAL) {
            atomic_store_explicit(&log->no_populate, true, memory_order_relaxed);
            log_info("storage: inbox: this kernel cannot prefault the inbox "
                     "(MADV_POPULATE_WRITE); appends fault their pages in themselves");
        } else {
            log_debug("storage: inbox: prefaulting %zu bytes: %s", to - from, strerror(errno));
        }
    }
    pthread_mutex_lock(&log->mu);
    unpin_locked(s);
    pthread_mutex_unlock(&log->mu);
}

size_t enpi_store_inbox_segments(enpi_store_t *st)
{
    if (!st->inbox)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&st->inbox->mu);
    for (inbox_seg_t *s = st->inbox->head; s; s = s->next)
        n++;
    pthread_mutex_unlock(&st->inbox->mu);
    return n;
}

/*
 * Removes what an enpi before the segment log left in RocksDB: inbox keys 'i' + seq.
 * Their messages are dropped (there are no deployed stores of that format; a development
 * store loses at most its last uncommitted second). Primary open only.
 */
int enpi_inbox_drop_legacy(enpi_store_t *st)
{
    const char lower[1] = {ENPI_KEY_INBOX};
    const char upper[1] = {ENPI_KEY_INBOX + 1};
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, upper, sizeof upper);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, ro);
    rocksdb_iter_seek(it, lower, sizeof lower);
    bool any = rocksdb_iter_valid(it);
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err)
        return enpi_store_fail("looking for old inbox keys", err);
    if (!any)
        return 0;
    log_warn("storage: dropping inbox messages of an older enpi kept in RocksDB");
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range(wb, lower, sizeof lower, upper, sizeof upper);
    rocksdb_write(st->db, st->wo_commit, wb, &err);
    rocksdb_writebatch_destroy(wb);
    if (err)
        return enpi_store_fail("deleting old inbox keys", err);
    return 0;
}
