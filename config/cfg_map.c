/*
 * cfg_map.c - questions asked of the tree (cfg_tree.h): is a node "not given", what does
 * a mapping hold under a key, and does a mapping use only the keys the schema knows.
 */
#include "cfg_tree.h"

#include <string.h>

#include "enpi_error.h"

bool enpi_cfg_is_null(const enpi_cfg_node_t *n)
{
    if (n == NULL)
        return true;
    if (n->kind != ENPI_CFG_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

const enpi_cfg_pair_t *enpi_cfg_map_find(const enpi_cfg_node_t *map, const char *key)
{
    if (map == NULL || map->kind != ENPI_CFG_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n_pairs; i++) {
        const enpi_cfg_node_t *k = map->pairs[i].key;
        if (k->len == klen && memcmp(k->text, key, klen) == 0)
            return &map->pairs[i];
    }
    return NULL;
}

const enpi_cfg_node_t *enpi_cfg_map_get(const enpi_cfg_node_t *map, const char *key)
{
    const enpi_cfg_pair_t *p = enpi_cfg_map_find(map, key);
    if (p == NULL || enpi_cfg_is_null(p->value))
        return NULL;
    return p->value;
}

const char *enpi_cfg_kind_name(const enpi_cfg_node_t *n)
{
    switch (n->kind) {
    case ENPI_CFG_MAP:
        return "a mapping";
    case ENPI_CFG_SEQ:
        return "a list";
    case ENPI_CFG_SCALAR:
        break;
    }
    return "a value";
}

/* Edit distance (insert, delete, substitute, swap of neighbours) capped for short keys. */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXL = 40 };
    if (la > MAXL || lb > MAXL)
        return (size_t)-1;
    size_t d[MAXL + 1][MAXL + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The known key closest to `text`, when it is close enough to be a likely typo. */
static const char *suggest(const enpi_cfg_node_t *key, const char *const *keys)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; keys[i] != NULL; i++) {
        size_t d = distance(key->text, key->len, keys[i], strlen(keys[i]));
        if (d < best_d) {
            best_d = d;
            best = keys[i];
        }
    }
    size_t allowed = key->len <= 4 ? 1 : 2;
    return best_d <= allowed ? best : NULL;
}

static bool known(const enpi_cfg_node_t *key, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (strlen(keys[i]) == key->len && memcmp(keys[i], key->text, key->len) == 0)
            return true;
    }
    return false;
}

int enpi_cfg_map_check(enpi_cfg_ctx_t *ctx, const enpi_cfg_node_t *node, const char *where,
                       const char *const *keys)
{
    char show[ENPI_CFG_SHOW_MAX + 4];
    if (enpi_cfg_is_null(node))
        return 0;
    if (node->kind != ENPI_CFG_MAP)
        return enpi_cfg_fail(ctx, ENPI_EINVAL, node->line,
                             "expected a mapping (key: value) %s, not %s", where,
                             enpi_cfg_kind_name(node));
    for (size_t i = 0; i < node->n_pairs; i++) {
        const enpi_cfg_node_t *k = node->pairs[i].key;
        if (!known(k, keys)) {
            const char *hint = suggest(k, keys);
            enpi_cfg_show(k->text, k->len, show, sizeof(show));
            if (hint != NULL)
                return enpi_cfg_fail(ctx, ENPI_EINVAL, k->line,
                                     "unknown key '%s' %s (did you mean '%s'?)", show, where, hint);
            return enpi_cfg_fail(ctx, ENPI_EINVAL, k->line, "unknown key '%s' %s", show, where);
        }
        for (size_t j = 0; j < i; j++) {
            const enpi_cfg_node_t *prev = node->pairs[j].key;
            if (prev->len == k->len && memcmp(prev->text, k->text, k->len) == 0)
                return enpi_cfg_fail(
                    ctx, ENPI_EINVAL, k->line, "key '%s' is given twice %s (first at line %d)",
                    enpi_cfg_show(k->text, k->len, show, sizeof(show)), where, prev->line);
        }
    }
    return 0;
}
