/*
 * cfg_tree.c - libyaml's event stream turned into the line-numbered tree of cfg_tree.h.
 *
 * The only file of enpi that includes yaml.h. Containers are built with an explicit
 * stack (no recursion, depth capped), so hostile input cannot exhaust the C stack.
 * An anchor becomes usable once its node is complete; an alias then points at that same
 * node, which is why nodes are freed through one allocation chain rather than by walking
 * the tree. Syntax errors keep libyaml's wording and gain FILE:LINE.
 */
#include "cfg_tree.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "enpi_error.h"

#define TREE_MAX_DEPTH 64

typedef struct anchor {
    char *name;
    enpi_cfg_node_t *node;
    struct anchor *next;
} anchor_t;

typedef struct {
    enpi_cfg_node_t *node;    /* open sequence or mapping */
    char *anchor;             /* its anchor, registered when it closes; NULL if none */
    enpi_cfg_node_t *pending; /* mapping: key waiting for its value */
} frame_t;

typedef struct {
    enpi_cfg_ctx_t *ctx;
    enpi_cfg_doc_t *doc;
    frame_t stack[TREE_MAX_DEPTH];
    int depth;
    anchor_t *anchors;
    int documents;
    const char *text; /* for line numbers of reader errors */
    size_t len;
} builder_t;

static enpi_cfg_node_t *node_new(builder_t *b, enpi_cfg_kind_t kind, int line)
{
    enpi_cfg_node_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = line;
    n->next_alloc = b->doc->all;
    b->doc->all = n;
    return n;
}

static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * size);
    if (p == NULL)
        return ENPI_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int oom(builder_t *b)
{
    return enpi_cfg_fail(b->ctx, ENPI_ENOMEM, 0, "out of memory");
}

/* Hangs a finished (or just opened) node under the innermost open container. */
static int attach(builder_t *b, enpi_cfg_node_t *n)
{
    if (b->depth == 0) {
        b->doc->root = n;
        return 0;
    }
    frame_t *top = &b->stack[b->depth - 1];
    enpi_cfg_node_t *parent = top->node;
    if (parent->kind == ENPI_CFG_SEQ) {
        if (grow((void **)&parent->items, &parent->cap_items, parent->n_items + 1,
                 sizeof(*parent->items)) != 0)
            return oom(b);
        parent->items[parent->n_items++] = n;
        return 0;
    }
    if (top->pending == NULL) {
        if (n->kind != ENPI_CFG_SCALAR)
            return enpi_cfg_fail(b->ctx, ENPI_EPARSE, n->line,
                                 "a mapping key must be a plain value, not %s",
                                 enpi_cfg_kind_name(n));
        top->pending = n;
        return 0;
    }
    if (grow((void **)&parent->pairs, &parent->cap_pairs, parent->n_pairs + 1,
             sizeof(*parent->pairs)) != 0)
        return oom(b);
    parent->pairs[parent->n_pairs].key = top->pending;
    parent->pairs[parent->n_pairs].value = n;
    parent->n_pairs++;
    top->pending = NULL;
    return 0;
}

static int anchor_add(builder_t *b, const yaml_char_t *name, enpi_cfg_node_t *n)
{
    if (name == NULL)
        return 0;
    anchor_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return oom(b);
    a->name = strdup((const char *)name);
    if (a->name == NULL) {
        free(a);
        return oom(b);
    }
    a->node = n;
    a->next = b->anchors; /* newest first: a redefined anchor shadows the old one */
    b->anchors = a;
    return 0;
}

static int on_scalar(builder_t *b, const yaml_event_t *ev)
{
    enpi_cfg_node_t *n = node_new(b, ENPI_CFG_SCALAR, (int)ev->start_mark.line + 1);
    if (n == NULL)
        return oom(b);
    n->len = ev->data.scalar.length;
    n->text = malloc(n->len + 1);
    if (n->text == NULL)
        return oom(b);
    memcpy(n->text, ev->data.scalar.value, n->len);
    n->text[n->len] = '\0';
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    int rc = attach(b, n);
    if (rc != 0)
        return rc;
    return anchor_add(b, ev->data.scalar.anchor, n);
}

static int on_open(builder_t *b, const yaml_event_t *ev, enpi_cfg_kind_t kind,
                   const yaml_char_t *anchor)
{
    int line = (int)ev->start_mark.line + 1;
    if (b->depth == TREE_MAX_DEPTH)
        return enpi_cfg_fail(b->ctx, ENPI_EPARSE, line, "nesting deeper than %d levels",
                             TREE_MAX_DEPTH);
    enpi_cfg_node_t *n = node_new(b, kind, line);
    if (n == NULL)
        return oom(b);
    int rc = attach(b, n);
    if (rc != 0)
        return rc;
    frame_t *f = &b->stack[b->depth++];
    f->node = n;
    f->pending = NULL;
    f->anchor = NULL;
    if (anchor != NULL) {
        f->anchor = strdup((const char *)anchor);
        if (f->anchor == NULL)
            return oom(b);
    }
    return 0;
}

static int on_close(builder_t *b)
{
    frame_t *f = &b->stack[--b->depth];
    int rc = 0;
    if (f->anchor != NULL) {
        rc = anchor_add(b, (const yaml_char_t *)f->anchor, f->node);
        free(f->anchor);
        f->anchor = NULL;
    }
    return rc;
}

static int on_alias(builder_t *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (anchor_t *a = b->anchors; a != NULL; a = a->next) {
        if (strcmp(a->name, name) == 0)
            return attach(b, a->node);
    }
    char show[ENPI_CFG_SHOW_MAX + 4];
    return enpi_cfg_fail(b->ctx, ENPI_EPARSE, (int)ev->start_mark.line + 1,
                         "alias '*%s' does not refer to an earlier, complete anchor",
                         enpi_cfg_show(name, strlen(name), show, sizeof(show)));
}

/* Line of a byte offset, for reader errors (bad UTF-8) that carry no mark. */
static int line_of_offset(const builder_t *b, size_t off)
{
    int line = 1;
    for (size_t i = 0; i < off && i < b->len; i++) {
        if (b->text[i] == '\n')
            line++;
    }
    return line;
}

static int syntax_error(builder_t *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR)
        return oom(b);
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR)
        return enpi_cfg_fail(b->ctx, ENPI_EPARSE, line_of_offset(b, p->problem_offset),
                             "YAML syntax error: %s", problem);
    int line = (int)p->problem_mark.line + 1;
    if (p->context != NULL)
        return enpi_cfg_fail(b->ctx, ENPI_EPARSE, line,
                             "YAML syntax error: %s (%s started at line %d)", problem, p->context,
                             (int)p->context_mark.line + 1);
    return enpi_cfg_fail(b->ctx, ENPI_EPARSE, line, "YAML syntax error: %s", problem);
}

/* Handles one event; *done is set at the end of the stream. */
static int on_event(builder_t *b, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1)
            return enpi_cfg_fail(b->ctx, ENPI_EPARSE, (int)ev->start_mark.line + 1,
                                 "only one YAML document is allowed (found a second one)");
        return 0;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_open(b, ev, ENPI_CFG_SEQ, ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return on_open(b, ev, ENPI_CFG_MAP, ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_close(b);
    }
    return 0;
}

int enpi_cfg_doc_load(enpi_cfg_ctx_t *ctx, const char *text, size_t len, enpi_cfg_doc_t *doc)
{
    builder_t b = {.ctx = ctx, .doc = doc, .text = text, .len = len};
    yaml_parser_t parser;
    int rc = 0;

    doc->root = NULL;
    doc->all = NULL;
    if (!yaml_parser_initialize(&parser))
        return oom(&b);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = syntax_error(&b, &parser);
            break;
        }
        rc = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
    }

    yaml_parser_delete(&parser);
    while (b.depth > 0)
        free(b.stack[--b.depth].anchor);
    while (b.anchors != NULL) {
        anchor_t *next = b.anchors->next;
        free(b.anchors->name);
        free(b.anchors);
        b.anchors = next;
    }
    return rc;
}

void enpi_cfg_doc_free(enpi_cfg_doc_t *doc)
{
    enpi_cfg_node_t *n = doc->all;
    while (n != NULL) {
        enpi_cfg_node_t *next = n->next_alloc;
        free(n->text);
        free(n->items);
        free(n->pairs);
        free(n);
        n = next;
    }
    doc->all = NULL;
    doc->root = NULL;
}
