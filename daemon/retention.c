/*
 * retention.c - storage.retention enforcement (placeholder until issue 5's work lands).
 */
#include "enpid.h"

int enpid_retention_start(enpid_t *d)
{
    return 0;
}

void enpid_retention_stop(enpid_t *d)
{
}
