/*
 * keys.h - the byte layout of every RocksDB key in an enpi store (private to storage/
 * and its tests).
 *
 * Every key starts with a one-byte record type, so each kind of record is one contiguous
 * key range. Multi-byte integers are big-endian so byte order is numeric order; window
 * starts have the sign bit flipped so negative instants sort before positive ones. Meter
 * ids are preceded by their length (1..255 bytes), so no id can collide with, or be a
 * prefix of, another id's keys ("a" vs "ab" vs "a/b"), whatever bytes the ids contain.
 *
 *   rollup      'r' | res_code u32 BE | id_len u8 | id | window start i64 BE ^ sign bit
 *   meter state 'm' | id_len u8 | id
 *   unknown     'u' | id_len u8 | id
 *   sparkplug   's' | key_len u8 | "group/node"   (a Sparkplug edge node's learned state)
 *   inbox       'i' | seq u64 BE   (legacy: the inbox is now storage/inbox.c's log; such keys
 *                                   left by an older store are deleted at open)
 *   meta        'c' | "meta"        (store.proto Meta)
 *   config      'c' | "config"      (the daemon's YAML text, raw)
 *
 * Invariant relied on by the readers: range deletions only ever cover inbox keys, so reads
 * of any other record type may skip range tombstones (ignore_range_deletions).
 */
#ifndef ENPI_STORAGE_KEYS_H
#define ENPI_STORAGE_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENPI_KEY_ROLLUP 'r'
#define ENPI_KEY_METER 'm'
#define ENPI_KEY_UNKNOWN 'u'
#define ENPI_KEY_INBOX 'i'
#define ENPI_KEY_CONF 'c'
#define ENPI_KEY_SPARKPLUG 's'

#define ENPI_KEY_ID_MAX 255 /* the length prefix is one byte */
#define ENPI_KEY_ROLLUP_PREFIX_MAX (1 + 4 + 1 + ENPI_KEY_ID_MAX)
#define ENPI_KEY_ROLLUP_MAX (ENPI_KEY_ROLLUP_PREFIX_MAX + 8)
#define ENPI_KEY_METER_MAX (1 + 1 + ENPI_KEY_ID_MAX)
#define ENPI_KEY_MAX ENPI_KEY_ROLLUP_MAX

/* The fixed keys of the 'c' range. */
#define ENPI_KEY_META "cmeta"
#define ENPI_KEY_CONFIG "cconfig"

/*
 * Key builders: write into buf (at least the *_MAX of the kind) and return the key's
 * length, or 0 when id_len is 0 or above ENPI_KEY_ID_MAX (nothing usable was written).
 */
size_t enpi_store_key_rollup(uint8_t *buf, uint32_t res_code, const char *id, size_t id_len,
                             int64_t start_ms);
/* The part of a rollup key before the window start: all windows of one (meter, res). */
size_t enpi_store_key_rollup_prefix(uint8_t *buf, uint32_t res_code, const char *id, size_t id_len);
size_t enpi_store_key_meter(uint8_t *buf, const char *id, size_t id_len);
size_t enpi_store_key_unknown(uint8_t *buf, const char *id, size_t id_len);
/* A Sparkplug edge node's key: same layout and bounds as a meter state key (parse it with
 * enpi_store_key_parse_id(..., ENPI_KEY_SPARKPLUG, ...)). */
size_t enpi_store_key_sparkplug(uint8_t *buf, const char *node_key, size_t len);

/* Parsers: true when key is a well-formed key of that kind. Pointers point into key. */
bool enpi_store_key_parse_rollup(const uint8_t *key, size_t len, uint32_t *res_code,
                                 const char **id, size_t *id_len, int64_t *start_ms);
bool enpi_store_key_parse_id(const uint8_t *key, size_t len, char type, const char **id,
                             size_t *id_len);

/* Order-preserving encodings, exposed for tests. */
void enpi_store_put_u32be(uint8_t *p, uint32_t v);
void enpi_store_put_u64be(uint8_t *p, uint64_t v);
uint32_t enpi_store_get_u32be(const uint8_t *p);
uint64_t enpi_store_get_u64be(const uint8_t *p);
/* int64 -> uint64 with the sign bit flipped: unsigned order equals signed order. */
uint64_t enpi_store_time_to_key(int64_t t);
int64_t enpi_store_time_from_key(uint64_t k);

#endif
