/*
 * meter_id.c - SPEC §3's rule for meter ids: 1..128 bytes of printable UTF-8. Applied to
 * every id a payload or topic brings before it is looked up, logged or stored.
 */
#include "meter.h"

/*
 * Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF) without control
 * characters (C0, DEL, C1). Space and '/' are allowed.
 */
bool enpi_meter_id_valid(const char *id, size_t len)
{
    const unsigned char *s = (const unsigned char *)id;
    size_t i = 0;

    if (len == 0 || len > ENPI_METER_ID_MAX)
        return false;
    while (i < len) {
        unsigned c = s[i], cp, min;
        size_t n;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F)
                return false;
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (i + n >= len) /* truncated sequence */
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0)
            return false;
        i += n + 1;
    }
    return true;
}
