/*
 * cfg_tree.h - private to config/: a YAML document as a small tree with line numbers.
 *
 * cfg_tree.c is the only file that includes yaml.h. It turns libyaml's event stream into
 * scalars, sequences and mappings that remember the 1-based line they start on, so the
 * schema walk can name the offending line in every message without knowing libyaml.
 * Tags are ignored: every scalar is kept as the text written, and the schema decides what
 * it means. Aliases share the anchored node; all nodes of a document are freed together.
 */
#ifndef ENPI_CFG_TREE_H
#define ENPI_CFG_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "cfg_ctx.h"

typedef enum {
    ENPI_CFG_SCALAR = 0,
    ENPI_CFG_SEQ,
    ENPI_CFG_MAP,
} enpi_cfg_kind_t;

typedef struct enpi_cfg_node enpi_cfg_node_t;

typedef struct {
    enpi_cfg_node_t *key; /* always a scalar */
    enpi_cfg_node_t *value;
} enpi_cfg_pair_t;

struct enpi_cfg_node {
    enpi_cfg_kind_t kind;
    int line;                /* 1-based line where the node starts */
    bool plain;              /* scalar written without quotes (null detection) */
    char *text;              /* scalar: NUL-terminated copy (may contain NUL bytes) */
    size_t len;              /* scalar: bytes in text */
    enpi_cfg_node_t **items; /* sequence entries */
    size_t n_items;
    size_t cap_items;
    enpi_cfg_pair_t *pairs; /* mapping entries in file order */
    size_t n_pairs;
    size_t cap_pairs;
    enpi_cfg_node_t *next_alloc; /* every node of the document, for freeing */
};

typedef struct {
    enpi_cfg_node_t *root; /* NULL for an empty stream */
    enpi_cfg_node_t *all;  /* allocation chain */
} enpi_cfg_doc_t;

/*
 * Parses `len` bytes of YAML (one document at most). On success returns 0 and fills
 * *doc (free with enpi_cfg_doc_free, also after a failure). Returns ENPI_EPARSE for a
 * YAML syntax error, an undefined alias, a non-scalar mapping key, a second document or
 * nesting deeper than 64 levels, and ENPI_ENOMEM; the message goes through ctx.
 */
int enpi_cfg_doc_load(enpi_cfg_ctx_t *ctx, const char *text, size_t len, enpi_cfg_doc_t *doc);

void enpi_cfg_doc_free(enpi_cfg_doc_t *doc);

/* True for a missing node or a plain "", "~", "null", "Null" or "NULL": "not given". */
bool enpi_cfg_is_null(const enpi_cfg_node_t *n);

/* The pair whose key text equals `key`, or NULL. The first one when repeated. */
const enpi_cfg_pair_t *enpi_cfg_map_find(const enpi_cfg_node_t *map, const char *key);

/* The value of `key` when given and not null, else NULL. */
const enpi_cfg_node_t *enpi_cfg_map_get(const enpi_cfg_node_t *map, const char *key);

/* "a mapping", "a list" or "a value": for "must be X, not Y" messages. */
const char *enpi_cfg_kind_name(const enpi_cfg_node_t *n);

/*
 * Checks that `node` is a mapping (or null: no keys) whose keys are all in `keys`
 * (NULL-terminated) and none is repeated. `where` names the mapping in messages, e.g.
 * "in storage", "at top level". Returns 0 or ENPI_EINVAL with the message in ctx; an
 * unknown key close to a known one gets a "did you mean" hint.
 */
int enpi_cfg_map_check(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *node, const char *where,
                       const char *const *keys);

#endif
