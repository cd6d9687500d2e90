/*
 * records.h - encoding and decoding of the values of an enpi store (private to storage/
 * and its tests): the protobuf-c messages of proto/store.proto, converted from and to the
 * plain C types of pipeline.h and storage.h.
 *
 * Encoders write into caller-provided memory sized by the matching *_size function (or a
 * fixed *_MAX), so callers choose stack or heap; the messages are stack-initialised and
 * borrow the caller's pointers. Decoders return ENPI_EPARSE for bytes that do not unpack,
 * ENPI_ENOMEM when a copy cannot be allocated. All functions are thread-safe.
 */
#ifndef ENPI_STORAGE_RECORDS_H
#define ENPI_STORAGE_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* The version of the key layout and record meanings this code reads and writes. */
#define ENPI_STORE_FORMAT_VERSION 1

/* Upper bounds of the fixed-size records (every varint at its widest). */
#define ENPI_REC_ROLLUP_MAX 64
#define ENPI_REC_META_MAX 24

/* ---- rollup: one window's figures plus its end ---- */
size_t enpi_store_rec_rollup_encode(const enpi_rollup_t *r, int64_t end_ms, uint8_t *buf);
int enpi_store_rec_rollup_decode(const void *data, size_t len, enpi_rollup_t *r, int64_t *end_ms);

/* ---- meta: store format version and how far the inbox is committed ---- */
size_t enpi_store_rec_meta_encode(uint32_t format_version, uint64_t inbox_upto, uint8_t *buf);
int enpi_store_rec_meta_decode(const void *data, size_t len, uint32_t *format_version,
                               uint64_t *inbox_upto);

/* ---- meter state, stored whole ---- */
size_t enpi_store_rec_meter_size(const enpi_meter_state_t *s);
size_t enpi_store_rec_meter_encode(const enpi_meter_state_t *s, uint8_t *buf);
/* Fills *out from zero; out->recent_ts is malloc'd (NULL when empty): the caller releases
 * it with enpi_meter_state_clear(). On error *out holds nothing to free. */
int enpi_store_rec_meter_decode(const void *data, size_t len, enpi_meter_state_t *out);

/* ---- unknown meter: running count, last topic and time seen ---- */
size_t enpi_store_rec_unknown_size(uint64_t count, const char *topic, size_t topic_len,
                                   int64_t last_seen_ms);
size_t enpi_store_rec_unknown_encode(uint64_t count, const char *topic, size_t topic_len,
                                     int64_t last_seen_ms, uint8_t *buf);
/* *topic_out is malloc'd and NUL-terminated (never NULL on success); the caller frees it. */
int enpi_store_rec_unknown_decode(const void *data, size_t len, uint64_t *count, char **topic_out,
                                  int64_t *last_seen_ms);

#endif
