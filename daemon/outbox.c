/*
 * outbox.c - publishes what the pipeline asks to send: today the Sparkplug rebirth
 * requests (NCMD "Node Control/Rebirth") that ingesting queued in the pipeline's bounded
 * outbox when a message could not be interpreted.
 *
 * The loop flushes the outbox after every ring drain and once after every MQTT
 * (re)connect. While the broker is unreachable, during the start-up replay and during
 * shutdown nothing is taken: the pipeline keeps the newest ENPI_OUTBOX_MAX requests and
 * counts the ones it drops. A request the MQTT client refuses is logged there (at a
 * limited rate) and dropped, never retried, and so is the rest of a flush that finds the
 * connection gone: the edge node's next message that cannot be interpreted asks again,
 * once the pipeline's per-node rate limit allows.
 *
 * DESIGN: loop thread only. mqtt_up is written by Paho threads and is only a hint here:
 * a publish that races a lost connection fails with ENPI_ESTATE and is dropped.
 */
#include <inttypes.h>

#include "enpi_error.h"
#include "enpid.h"

/*
 * Publishes everything in the pipeline's outbox, oldest first, when the MQTT client is
 * connected and the daemon is not stopping; otherwise leaves the outbox alone. Counts
 * each message as published (Paho took it) or dropped. Loop thread.
 */
void enpid_outbox_flush(enpid_t *d)
{
    if (d->mqtt == NULL || d->phase >= ENPID_STOP_MQTT ||
        !atomic_load_explicit(&d->mqtt_up, memory_order_relaxed))
        return;
    enpi_outbound_t *msgs = NULL;
    size_t n = enpi_pipeline_take_outbox(d->pipe, &msgs);
    for (size_t i = 0; i < n; i++) {
        const enpi_outbound_t *o = &msgs[i];
        int rc =
            enpid_mqtt_publish(d->mqtt, o->topic, o->payload, o->payload_len, o->qos, o->retain);
        if (rc == 0) {
            d->n_outbound_published++;
            log_debug("outbox: published %zu bytes to \"%s\"", o->payload_len, o->topic);
        } else if (rc == ENPI_ESTATE) {
            /* The connection went away meanwhile (mqtt.c logged it): the rest would fail
             * the same way. */
            d->n_outbound_dropped += n - i;
            return;
        } else {
            d->n_outbound_dropped++; /* mqtt.c logged why */
        }
    }
}
