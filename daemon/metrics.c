/*
 * metrics.c - the Prometheus endpoint of SPEC §8 (placeholder until issue 5's work lands).
 */
#include "enpid.h"

int enpid_metrics_start(enpid_t *d)
{
    return 0;
}

void enpid_metrics_stop(enpid_t *d)
{
}
