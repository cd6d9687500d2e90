/*
 * tz.c - an IANA time zone frozen into two tables: the start of every local day from
 * 1990-01-01 to 2101-01-01, and every change of the UTC offset in between.
 *
 * glibc knows every zone but answers only for the one named in $TZ, and switching $TZ
 * per lookup would serialise the whole pipeline on a lock. So enpi_tz_open() switches
 * $TZ once, under a process-wide mutex, samples the zone with localtime_r, and keeps
 * the answers. Everything after open reads immutable tables: lock-free and safe to
 * share between threads.
 *
 * DESIGN. The offset is sampled every SCAN_STEP_S seconds; where two samples differ, a
 * binary search finds the second at which the offset changes (zones change at whole
 * seconds). From the transitions the day starts follow by arithmetic: local day d
 * starts at the first instant t whose local time t + offset(t) is at or past d's
 * midnight. That is the midnight itself on ordinary days, and the end of the gap on a
 * day whose midnight a DST change skips (America/Sao_Paulo 2018-11-04 starts at 01:00).
 * Deriving day starts from the transitions, rather than asking mktime() per day, makes
 * the two tables agree by construction; the unit test checks them against mktime().
 *
 * Outside the table the offset in force at its edge is extended, so every int64_t
 * instant has a day, an offset and a format; instants are clamped to +-T_LIMIT_MS
 * (about three million years) first so that no arithmetic can overflow.
 *
 * Caveat: while enpi_tz_open() runs, another thread calling localtime(), mktime() or
 * getenv("TZ") would see the temporary zone. enpi code never does; the daemon opens
 * its zones on the loop thread at start-up and reload.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "enpi_error.h"

#define MS_PER_DAY INT64_C(86400000)
#define S_PER_DAY INT64_C(86400)
#define T_LIMIT_MS INT64_C(100000000000000000)   /* 1e17 ms, ~3.17 million years */
#define ZONEINFO_DIR "/usr/share/zoneinfo"
#define NAME_MAX_LEN 255
/* Sampling interval of the offset scan. Two offset changes closer together than this
 * would be missed. None are: in tzdata 2025b (Debian 12) the closest pair since 1990 is
 * 6.96 days apart (America/Boa_Vista), and for all 447 zones sampling every 24 h or
 * 48 h gives exactly the tables that sampling every hour gives. */
#define SCAN_STEP_S (24 * 3600)

typedef struct {
    int64_t at_ms;  /* first instant (UTC ms) of the new offset */
    int32_t off_s;  /* offset in force from at_ms on, seconds east of UTC */
} transition_t;

struct enpi_tz {
    char *name;              /* as given to enpi_tz_open */
    int64_t first_day;       /* day number of the first tabled local day (1990-01-01) */
    int64_t last_day;        /* day number of the last tabled local day (2101-01-01) */
    int32_t *day_adj_s;      /* per day d: start = (d * 86400 + adj) s; d - first_day */
    int32_t off_lo;          /* offset extended before the first tabled day */
    int32_t off_hi;          /* offset extended from the last tabled day on */
    transition_t *trans;     /* offset changes inside the table, ascending */
    size_t ntrans;           /* entries in trans */
};

static pthread_mutex_t tz_env_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t clamp_t(int64_t t)
{
    if (t > T_LIMIT_MS)
        return T_LIMIT_MS;
    if (t < -T_LIMIT_MS)
        return -T_LIMIT_MS;
    return t;
}

/* True when name is a plausible zone name: relative, no "..", printable, bounded. */
static bool name_is_safe(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN || name[0] == '/' || strstr(name, "..") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= ' ' || ch >= 0x7f || ch == ',' || ch == ':')
            return false;
    }
    return true;
}

/* True when path is a regular file starting with the TZif magic. glibc would quietly
 * treat anything else (zone.tab, a directory, a typo) as UTC. */
static bool is_tzif_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char magic[4];
    ssize_t got = read(fd, magic, sizeof(magic));
    close(fd);
    return got == (ssize_t)sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

/* The offset glibc reports for t under the current $TZ; false if glibc cannot say. */
static bool sys_offset(int64_t t_s, int32_t *off)
{
    time_t t = (time_t)t_s;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return false;
    *off = (int32_t)tm.tm_gmtoff;
    return true;
}

/* Appends a transition, growing the array geometrically. */
static int push_transition(enpi_tz_t *tz, size_t *cap, int64_t at_s, int32_t off)
{
    if (tz->ntrans == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        transition_t *n = realloc(tz->trans, ncap * sizeof(*n));
        if (n == NULL)
            return ENPI_ENOMEM;
        tz->trans = n;
        *cap = ncap;
    }
    tz->trans[tz->ntrans].at_ms = at_s * 1000;
    tz->trans[tz->ntrans].off_s = off;
    tz->ntrans++;
    return 0;
}

/*
 * Samples the zone in $TZ from lo_s to hi_s (UTC seconds) and records every offset
 * change in tz->trans; *off_first is the offset at lo_s. Caller holds tz_env_lock.
 * Returns 0, ENPI_ENOMEM, or ENPI_EINVAL when glibc cannot convert an instant.
 */
static int scan_transitions(enpi_tz_t *tz, int64_t lo_s, int64_t hi_s, int32_t *off_first)
{
    size_t cap = 0;
    int32_t prev_off;
    if (!sys_offset(lo_s, &prev_off))
        return ENPI_EINVAL;
    *off_first = prev_off;
    for (int64_t t = lo_s; t < hi_s;) {
        int64_t next = t + SCAN_STEP_S < hi_s ? t + SCAN_STEP_S : hi_s;
        int32_t off;
        if (!sys_offset(next, &off))
            return ENPI_EINVAL;
        if (off != prev_off) {
            /* offset(a) == prev_off, offset(b) == off: find the first second of off. */
            int64_t a = t, b = next;
            while (b - a > 1) {
                int64_t mid = a + (b - a) / 2;
                int32_t m;
                if (!sys_offset(mid, &m))
                    return ENPI_EINVAL;
                if (m == prev_off)
                    a = mid;
                else
                    b = mid;
            }
            int32_t at_b;
            if (!sys_offset(b, &at_b))
                return ENPI_EINVAL;
            int err = push_transition(tz, &cap, b, at_b);
            if (err != 0)
                return err;
            prev_off = at_b;
            /* Resume right after the change, in case another follows within the step. */
            if (at_b != off) {
                t = b;
                continue;
            }
        }
        prev_off = off;
        t = next;
    }
    return 0;
}

/*
 * Fills day_adj_s from the transitions: day d starts at the first instant t with
 * t + offset(t) >= d's midnight (all in seconds). Walks days and offset segments
 * together; segment i (i = 0 before the first transition) covers
 * [seg_start(i), seg_start(i + 1)) with offset seg_off(i).
 */
static void build_day_table(enpi_tz_t *tz, int32_t off_first)
{
    size_t seg = 0; /* 0: before trans[0]; i: from trans[i - 1] */
    int64_t ndays = tz->last_day - tz->first_day + 1;
    for (int64_t i = 0; i < ndays; i++) {
        int64_t midnight = (tz->first_day + i) * S_PER_DAY; /* local seconds */
        for (;;) {
            int32_t off = seg == 0 ? off_first : tz->trans[seg - 1].off_s;
            bool has_start = seg > 0;
            int64_t start = has_start ? tz->trans[seg - 1].at_ms / 1000 : 0;
            bool has_end = seg < tz->ntrans;
            int64_t end = has_end ? tz->trans[seg].at_ms / 1000 : 0;
            int64_t cand = midnight - off;
            if (has_start && cand < start)
                cand = start; /* midnight skipped: the day begins where the gap ends */
            if (!has_end || cand < end) {
                tz->day_adj_s[i] = (int32_t)(cand - midnight);
                break;
            }
            seg++;
        }
    }
}

/* Index of the last transition at or before t, or -1 when t precedes them all. */
static ptrdiff_t find_transition(const enpi_tz_t *tz, int64_t t_ms)
{
    size_t lo = 0, hi = tz->ntrans; /* answer + 1 lies in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->trans[mid].at_ms <= t_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

/* Start (UTC ms) of local day number d, tabled or extended. */
static int64_t start_of_day(const enpi_tz_t *tz, int64_t d)
{
    if (d < tz->first_day)
        return (d * S_PER_DAY - tz->off_lo) * 1000;
    if (d > tz->last_day)
        return (d * S_PER_DAY - tz->off_hi) * 1000;
    return (d * S_PER_DAY + tz->day_adj_s[d - tz->first_day]) * 1000;
}

/* Local day number of the day containing t (already clamped). */
static int64_t local_day(const enpi_tz_t *tz, int64_t t_ms)
{
    int64_t first_start = start_of_day(tz, tz->first_day);
    int64_t last_start = start_of_day(tz, tz->last_day);
    if (t_ms < first_start) {
        int64_t d = enpi_floor_div(t_ms + (int64_t)tz->off_lo * 1000, MS_PER_DAY);
        return d < tz->first_day ? d : tz->first_day - 1;
    }
    if (t_ms >= last_start) {
        int64_t d = enpi_floor_div(t_ms + (int64_t)tz->off_hi * 1000, MS_PER_DAY);
        return d > tz->last_day ? d : tz->last_day;
    }
    /* Offsets stay within a day of UTC, so the UTC day number is at most one off. */
    int64_t d = enpi_floor_div(t_ms, MS_PER_DAY);
    if (d < tz->first_day)
        d = tz->first_day;
    if (d > tz->last_day - 1)
        d = tz->last_day - 1;
    while (d > tz->first_day && start_of_day(tz, d) > t_ms)
        d--;
    while (d < tz->last_day - 1 && start_of_day(tz, d + 1) <= t_ms)
        d++;
    return d;
}

/*
 * Opens a zone: validates the name against the tzdata files, then builds the tables
 * under tz_env_lock with $TZ pointing at the zone file, and restores $TZ. Returns 0 and
 * *out (caller frees with enpi_tz_free), ENPI_ENOENT for an unknown or malformed name,
 * ENPI_ENOMEM, or ENPI_EINVAL when glibc fails to convert an instant. Any thread.
 */
int enpi_tz_open(const char *name, enpi_tz_t **out)
{
    int err = 0;
    if (name == NULL || out == NULL || !name_is_safe(name))
        return ENPI_ENOENT;

    char path[sizeof(ZONEINFO_DIR) + NAME_MAX_LEN + 2];
    snprintf(path, sizeof(path), "%s/%s", ZONEINFO_DIR, name);
    bool is_utc = strcmp(name, "UTC") == 0;
    /* "UTC" must work even where tzdata is not installed: glibc's fallback is UTC. */
    if (!is_utc && !is_tzif_file(path))
        return ENPI_ENOENT;

    enpi_tz_t *tz = calloc(1, sizeof(*tz));
    if (tz == NULL)
        return ENPI_ENOMEM;
    tz->name = strdup(name);
    if (tz->name == NULL) {
        err = ENPI_ENOMEM;
        goto free_tz;
    }
    tz->first_day = enpi_days_from_civil(1990, 1, 1);
    tz->last_day = enpi_days_from_civil(2101, 1, 1);
    tz->day_adj_s = malloc((size_t)(tz->last_day - tz->first_day + 1) * sizeof(int32_t));
    if (tz->day_adj_s == NULL) {
        err = ENPI_ENOMEM;
        goto free_tz;
    }

    char tzval[sizeof(path) + 1];
    snprintf(tzval, sizeof(tzval), ":%s", path);
    /* Scan from two days before the first local day to two days after the last, so
     * every tabled midnight (offsets are within +-26 h) lies inside the scan. */
    int64_t scan_lo = (tz->first_day - 2) * S_PER_DAY;
    int64_t scan_hi = (tz->last_day + 2) * S_PER_DAY;
    int32_t off_first = 0;

    pthread_mutex_lock(&tz_env_lock);
    char *saved = NULL;
    const char *cur = getenv("TZ");
    if (cur != NULL && (saved = strdup(cur)) == NULL) {
        pthread_mutex_unlock(&tz_env_lock);
        err = ENPI_ENOMEM;
        goto free_tz;
    }
    if (setenv("TZ", tzval, 1) != 0) {
        err = ENPI_ENOMEM;
    } else {
        tzset();
        err = scan_transitions(tz, scan_lo, scan_hi, &off_first);
    }
    if (saved != NULL)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    pthread_mutex_unlock(&tz_env_lock);
    free(saved);
    if (err != 0)
        goto free_tz;

    build_day_table(tz, off_first);

    /* Keep only transitions strictly inside the tabled span; outside it the edge
     * offsets are extended, so offsets and day starts agree everywhere. */
    int64_t first_start = start_of_day(tz, tz->first_day);
    int64_t last_start = start_of_day(tz, tz->last_day);
    ptrdiff_t before = find_transition(tz, first_start);
    tz->off_lo = before < 0 ? off_first : tz->trans[before].off_s;
    ptrdiff_t upto = find_transition(tz, last_start);
    tz->off_hi = upto < 0 ? off_first : tz->trans[upto].off_s;
    size_t keep_from = (size_t)(before + 1);
    size_t keep_to = (size_t)(upto + 1);
    if (keep_to > tz->ntrans)
        keep_to = tz->ntrans;
    if (keep_from > keep_to)
        keep_from = keep_to;
    /* A transition exactly at first_start is folded into off_lo. */
    if (keep_to > keep_from)
        memmove(tz->trans, tz->trans + keep_from, (keep_to - keep_from) * sizeof(*tz->trans));
    tz->ntrans = keep_to - keep_from;
    if (tz->ntrans == 0) {
        free(tz->trans);
        tz->trans = NULL;
    } else {
        transition_t *shrunk = realloc(tz->trans, tz->ntrans * sizeof(*shrunk));
        if (shrunk != NULL)
            tz->trans = shrunk;
    }

    *out = tz;
    return 0;

free_tz:
    enpi_tz_free(tz);
    return err;
}

void enpi_tz_free(enpi_tz_t *tz)
{
    if (tz == NULL)
        return;
    free(tz->trans);
    free(tz->day_adj_s);
    free(tz->name);
    free(tz);
}

const char *enpi_tz_name(const enpi_tz_t *tz)
{
    return tz->name;
}

int enpi_tz_offset_s(const enpi_tz_t *tz, int64_t t_ms)
{
    ptrdiff_t i = find_transition(tz, clamp_t(t_ms));
    return i < 0 ? tz->off_lo : tz->trans[i].off_s;
}

int64_t enpi_tz_day_start(const enpi_tz_t *tz, int64_t t_ms)
{
    return start_of_day(tz, local_day(tz, clamp_t(t_ms)));
}

int64_t enpi_tz_day_shift(const enpi_tz_t *tz, int64_t t_ms, int days)
{
    return start_of_day(tz, local_day(tz, clamp_t(t_ms)) + days);
}

int64_t enpi_tz_month_start(const enpi_tz_t *tz, int64_t t_ms, int months)
{
    int y, m, d;
    enpi_civil_from_days(local_day(tz, clamp_t(t_ms)), &y, &m, &d);
    int64_t idx = (int64_t)y * 12 + (m - 1) + months;
    /* Keep the year an int and the result inside the clamped range. */
    const int64_t idx_limit = INT64_C(40000000); /* ~3.3 million years of months */
    if (idx > idx_limit)
        idx = idx_limit;
    if (idx < -idx_limit)
        idx = -idx_limit;
    int64_t year = enpi_floor_div(idx, 12);
    int month = (int)(idx - year * 12) + 1;
    return start_of_day(tz, enpi_days_from_civil((int)year, month, 1));
}

/*
 * Without an offset, the civil time names local seconds L; the answer is the earliest
 * t with t + offset(t) == L, or, when L falls in a gap, L read with the offset in force
 * before the gap (which lands as far past the gap's end as L was past its start).
 */
int64_t enpi_tz_from_civil(const enpi_tz_t *tz, const enpi_civil_t *c)
{
    int64_t local = clamp_t(enpi_civil_to_utc_ms(c));
    if (c->has_offset)
        return local;

    /* Segment i (-1 before the first transition) is [trans[i], trans[i + 1]) with
     * trans[i].off_s (off_lo for -1). A candidate t = local - offset lies within
     * 26 h of local, so only the segments overlapping that span can hold it; they are
     * visited in time order, which makes the first hit the earlier of two. */
    const int64_t reach = 26 * 3600 * INT64_C(1000);
    ptrdiff_t lo = find_transition(tz, local - reach);
    ptrdiff_t hi = find_transition(tz, local + reach);
    for (ptrdiff_t i = lo; i <= hi; i++) {
        int32_t off = i < 0 ? tz->off_lo : tz->trans[i].off_s;
        int64_t t = local - (int64_t)off * 1000;
        bool after_start = i < 0 || t >= tz->trans[i].at_ms;
        bool before_end = (size_t)(i + 1) >= tz->ntrans || t < tz->trans[i + 1].at_ms;
        if (after_start && before_end)
            return t;
    }
    /* In a gap: the transition that skipped local decides; use the offset before it. */
    for (ptrdiff_t i = lo < 0 ? 0 : lo; i <= hi; i++) {
        int32_t before = i == 0 ? tz->off_lo : tz->trans[i - 1].off_s;
        int32_t after = tz->trans[i].off_s;
        int64_t gap_lo = tz->trans[i].at_ms + (int64_t)before * 1000;
        int64_t gap_hi = tz->trans[i].at_ms + (int64_t)after * 1000;
        if (local >= gap_lo && local < gap_hi)
            return local - (int64_t)before * 1000;
    }
    /* Not reached for a consistent table; stay total anyway. */
    return local - (int64_t)enpi_tz_offset_s(tz, local) * 1000;
}

void enpi_tz_to_civil(const enpi_tz_t *tz, int64_t t_ms, enpi_civil_t *out)
{
    t_ms = clamp_t(t_ms);
    int off = enpi_tz_offset_s(tz, t_ms);
    int64_t local = t_ms + (int64_t)off * 1000;
    int64_t days = enpi_floor_div(local, MS_PER_DAY);
    int64_t tod = local - days * MS_PER_DAY;

    memset(out, 0, sizeof(*out));
    enpi_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(tod / 3600000);
    out->minute = (int)(tod / 60000 % 60);
    out->second = (int)(tod / 1000 % 60);
    out->millis = (int)(tod % 1000);
    out->has_time = true;
    out->has_offset = true;
    out->offset_s = off;
}

/*
 * ISO 8601 with the zone's offset, never "Z"; milliseconds only when non-zero, and
 * offset seconds only when non-zero (no zone has had those since the 1970s).
 * Returns the length written, or -1 when buf is too small (buf then holds a
 * truncated, NUL-terminated prefix when n > 0).
 */
int enpi_tz_format(const enpi_tz_t *tz, int64_t t_ms, char *buf, size_t n)
{
    enpi_civil_t c;
    enpi_tz_to_civil(tz, t_ms, &c);

    char frac[8] = "";
    if (c.millis != 0)
        snprintf(frac, sizeof(frac), ".%03d", c.millis);
    int off = c.offset_s < 0 ? -c.offset_s : c.offset_s;
    char offs[16];
    if (off % 60 != 0)
        snprintf(offs, sizeof(offs), "%c%02d:%02d:%02d", c.offset_s < 0 ? '-' : '+',
                 off / 3600, off / 60 % 60, off % 60);
    else
        snprintf(offs, sizeof(offs), "%c%02d:%02d", c.offset_s < 0 ? '-' : '+', off / 3600,
                 off / 60 % 60);
    int len = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d%s%s", c.year, c.month, c.day,
                       c.hour, c.minute, c.second, frac, offs);
    if (len < 0 || (size_t)len >= n)
        return -1;
    return len;
}
