/*
 * keys.c - builds and parses the RocksDB keys of an enpi store (layout in keys.h).
 *
 * Pure byte arithmetic, no allocation; every builder checks the id length so that a key
 * can never be ambiguous.
 */
#include "keys.h"

#include <string.h>

void enpi_store_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void enpi_store_put_u64be(uint8_t *p, uint64_t v)
{
    enpi_store_put_u32be(p, (uint32_t)(v >> 32));
    enpi_store_put_u32be(p + 4, (uint32_t)v);
}

uint32_t enpi_store_get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

uint64_t enpi_store_get_u64be(const uint8_t *p)
{
    return (uint64_t)enpi_store_get_u32be(p) << 32 | enpi_store_get_u32be(p + 4);
}

uint64_t enpi_store_time_to_key(int64_t t)
{
    return (uint64_t)t ^ (UINT64_C(1) << 63);
}

int64_t enpi_store_time_from_key(uint64_t k)
{
    uint64_t u = k ^ (UINT64_C(1) << 63);
    int64_t t;
    memcpy(&t, &u, sizeof t); /* two's complement reinterpretation without UB */
    return t;
}

static bool id_len_ok(size_t id_len)
{
    return id_len >= 1 && id_len <= ENPI_KEY_ID_MAX;
}

size_t enpi_store_key_rollup_prefix(uint8_t *buf, uint32_t res_code, const char *id, size_t id_len)
{
    if (!id_len_ok(id_len))
        return 0;
    buf[0] = ENPI_KEY_ROLLUP;
    enpi_store_put_u32be(buf + 1, res_code);
    buf[5] = (uint8_t)id_len;
    memcpy(buf + 6, id, id_len);
    return 6 + id_len;
}

size_t enpi_store_key_rollup(uint8_t *buf, uint32_t res_code, const char *id, size_t id_len,
                             int64_t start_ms)
{
    size_t n = enpi_store_key_rollup_prefix(buf, res_code, id, id_len);
    if (n == 0)
        return 0;
    enpi_store_put_u64be(buf + n, enpi_store_time_to_key(start_ms));
    return n + 8;
}

static size_t key_with_id(uint8_t *buf, char type, const char *id, size_t id_len)
{
    if (!id_len_ok(id_len))
        return 0;
    buf[0] = (uint8_t)type;
    buf[1] = (uint8_t)id_len;
    memcpy(buf + 2, id, id_len);
    return 2 + id_len;
}

size_t enpi_store_key_meter(uint8_t *buf, const char *id, size_t id_len)
{
    return key_with_id(buf, ENPI_KEY_METER, id, id_len);
}

size_t enpi_store_key_unknown(uint8_t *buf, const char *id, size_t id_len)
{
    return key_with_id(buf, ENPI_KEY_UNKNOWN, id, id_len);
}

size_t enpi_store_key_sparkplug(uint8_t *buf, const char *node_key, size_t len)
{
    return key_with_id(buf, ENPI_KEY_SPARKPLUG, node_key, len);
}

bool enpi_store_key_parse_rollup(const uint8_t *key, size_t len, uint32_t *res_code,
                                 const char **id, size_t *id_len, int64_t *start_ms)
{
    if (len < 6 + 1 + 8 || key[0] != ENPI_KEY_ROLLUP)
        return false;
    size_t n = key[5];
    if (n == 0 || len != 6 + n + 8)
        return false;
    *res_code = enpi_store_get_u32be(key + 1);
    *id = (const char *)key + 6;
    *id_len = n;
    *start_ms = enpi_store_time_from_key(enpi_store_get_u64be(key + 6 + n));
    return true;
}

bool enpi_store_key_parse_id(const uint8_t *key, size_t len, char type, const char **id,
                             size_t *id_len)
{
    if (len < 3 || key[0] != (uint8_t)type)
        return false;
    size_t n = key[1];
    if (n == 0 || len != 2 + n)
        return false;
    *id = (const char *)key + 2;
    *id_len = n;
    return true;
}
