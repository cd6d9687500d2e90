/*
 * state.c - lifetime of the values the pipeline hands out: deep copies of meter states
 * and whole batches. Storage calls these from its own thread on values it owns, so
 * nothing here touches a pipeline.
 */
#include <stdlib.h>
#include <string.h>

#include "enpi_error.h"
#include "meter.h"
#include "pipeline.h"

size_t enpi_meter_recent_cap(size_t n)
{
    size_t cap = 8;

    if (n == 0)
        return 0;
    while (cap < n)
        cap *= 2;
    return cap;
}

/*
 * dst is overwritten, not cleared first. recent_ts gets the capacity the arithmetic
 * expects (enpi_meter_recent_cap), so a copy can be ingested into directly.
 */
int enpi_meter_state_copy(enpi_meter_state_t *dst, const enpi_meter_state_t *src)
{
    int64_t *recent = NULL;

    if (src->n_recent > 0 && src->recent_ts != NULL) {
        recent = malloc(enpi_meter_recent_cap(src->n_recent) * sizeof(*recent));
        if (recent == NULL)
            return ENPI_ENOMEM;
        memcpy(recent, src->recent_ts, src->n_recent * sizeof(*recent));
    }
    *dst = *src;
    dst->recent_ts = recent;
    if (recent == NULL)
        dst->n_recent = 0;
    return 0;
}

void enpi_meter_state_clear(enpi_meter_state_t *st)
{
    if (st == NULL)
        return;
    free(st->recent_ts);
    st->recent_ts = NULL;
    st->n_recent = 0;
}

/* Frees the batch and everything it owns; NULL is a no-op. Any thread. */
void enpi_batch_free(enpi_batch_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n_meters; i++) {
        free(b->meters[i].meter_id);
        enpi_meter_state_clear(&b->meters[i].state);
    }
    for (size_t i = 0; i < b->n_unknown; i++) {
        free(b->unknown[i].meter_id);
        free(b->unknown[i].last_topic);
    }
    free(b->rollups);
    free(b->meters);
    free(b->unknown);
    free(b);
}
