/*
 * cfg_ids.c - syntax of identifiers and names: meter/facility ids (printable UTF-8),
 * IANA zone names (must exist in the system tzdata) and rollup resolutions.
 */
#include "cfg_check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

/*
 * Decodes one UTF-8 sequence at s[0..len); returns its length, or 0 when it is malformed
 * (overlong, surrogate, above U+10FFFF, truncated). *cp receives the code point.
 */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        need = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return need;
}

bool enpi_cfg_id_ok(const char *s, size_t len, char *why, size_t n)
{
    if (len == 0) {
        snprintf(why, n, "is empty");
        return false;
    }
    if (len > ENPI_METER_ID_MAX) {
        snprintf(why, n, "is %zu bytes long (at most %d)", len, ENPI_METER_ID_MAX);
        return false;
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = utf8_next(p + i, len - i, &cp);
        if (k == 0) {
            snprintf(why, n, "is not valid UTF-8 (byte %zu)", i + 1);
            return false;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
            snprintf(why, n, "contains a control character (byte %zu)", i + 1);
            return false;
        }
        i += k;
    }
    return true;
}

bool enpi_cfg_zone_ok(const char *name, char *why, size_t n)
{
    size_t len = strlen(name);
    if (len == 0) {
        snprintf(why, n, "is empty");
        return false;
    }
    if (name[0] == '/' || strstr(name, "..") != NULL || len > 200) {
        snprintf(why, n, "is not an IANA zone name (e.g. Asia/Ho_Chi_Minh, UTC)");
        return false;
    }
    char path[sizeof(ENPI_CFG_ZONEINFO) + 256];
    snprintf(path, sizeof(path), "%s/%s", ENPI_CFG_ZONEINFO, name);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool ok = false;
    if (f != NULL) {
        ok = fread(magic, 1, sizeof(magic), f) == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
        fclose(f);
    }
    if (!ok)
        snprintf(why, n, "is not a known IANA zone (no zone file %s)", path);
    return ok;
}

bool enpi_cfg_resolution_ok(const enpi_duration_t *d, char *why, size_t n)
{
    const int64_t day_ms = 86400000;
    if (d->months != 0) {
        if (d->months == 1)
            return true;
        snprintf(why, n, "calendar resolutions other than 1mo are not supported");
        return false;
    }
    if (d->ms <= 0 || day_ms % d->ms != 0) {
        snprintf(why, n, "a fixed resolution must divide 24h evenly (e.g. 5m, 15m, 1h, 1d)");
        return false;
    }
    if (d->ms % 60000 != 0) {
        snprintf(why, n, "a fixed resolution must be a whole number of minutes");
        return false;
    }
    return true;
}
