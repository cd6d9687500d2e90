/*
 * mqtt.h - enpid's MQTT client: the adapter over Paho C's MQTTAsync, so that the rest
 * of the daemon never sees a Paho type or return code.
 *
 * DESIGN: Paho runs its own threads, and mqtt_reconnect.c one more (reconnects, liveness
 * checks, pause/resume).
 * Every handler below is called on one of them (messages always on Paho's receive thread,
 * one at a time; events on any of them), never on the caller's thread, and must not call
 * create/destroy. enpid_mqtt_create(),
 * _connect(), _disconnect(), _publish() and _destroy() are for the loop thread.
 */
#ifndef ENPID_MQTT_H
#define ENPID_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct enpid_mqtt enpid_mqtt_t;

typedef enum {
    ENPID_MQTT_CONNECTED = 0,    /* session up; the subscribe has been sent */
    ENPID_MQTT_SESSION_PRESENT,  /* a connect resumed a stored session: the broker holds
                                    our subscriptions already (its SUBACK may queue behind
                                    the backlog it now delivers) */
    ENPID_MQTT_SUBSCRIBED,       /* SUBACK granted every filter */
    ENPID_MQTT_SUBSCRIBE_FAILED, /* SUBACK refused a filter, or the subscribe failed */
    ENPID_MQTT_CONNECTION_LOST,  /* mqtt_reconnect.c reconnects (backoff with jitter) */
    ENPID_MQTT_DISCONNECTED,     /* the DISCONNECT asked by enpid_mqtt_disconnect() is done */
} enpid_mqtt_event_t;

typedef struct {
    /*
     * A message arrived (Paho's receive thread). Return 0 to take it: msg and topic
     * then belong to the handler, which frees them with enpid_mqtt_message_free(). Return
     * nonzero to leave both with Paho, which offers the same message again later (Paho
     * 1.3 has already queued the PUBACK by then; the message lives on in its memory only).
     * topic is NUL-terminated; topic_len is its length. redelivered is the PUBLISH's DUP
     * flag: the broker sent this QoS 1/2 message before (to a connection that died
     * before acknowledging it), so it may have been processed already.
     */
    int (*on_message)(void *ctx, char *topic, size_t topic_len, void *msg, const void *payload,
                      size_t payload_len, bool redelivered);
    /* A connection event (any of the client's threads). Must not block. */
    void (*on_event)(void *ctx, enpid_mqtt_event_t ev);
    void *ctx;
} enpid_mqtt_handlers_t;

/*
 * Creates the client for cfg (uri, client id, version, session and its MQTT 5 expiry,
 * keepalive, reconnect backoff, TLS, credentials) that subscribes to `filters` at cfg->qos
 * on every connect, and starts its reconnect thread (idle until a connect fails). Copies
 * what it keeps. TLS verifies the broker's certificate and host name unless
 * cfg->tls.insecure (logged as a warning). The password comes from cfg->password_file,
 * else $CREDENTIALS_DIRECTORY/mqtt.secret if that exists; it is never logged. Returns 0,
 * ENPI_EINVAL, ENPI_EIO (password file unreadable), ENPI_ENOMEM or ENPI_EMQTT (Paho's reason
 * logged).
 */
int enpid_mqtt_create(const enpi_mqtt_cfg_t *cfg, const char *const *filters, size_t n_filters,
                      const enpid_mqtt_handlers_t *h, enpid_mqtt_t **out);

/* Starts connecting. A failed attempt or a lost connection is retried by
 * mqtt_reconnect.c's own reconnect thread after a jittered, capped exponential backoff (1 s doubling up to
 * cfg->reconnect_max, each wait drawn from [d/2, d]) until enpid_mqtt_disconnect() or
 * _destroy(). Returns 0 or ENPI_EMQTT (Paho refused to start; nothing is retried). */
int enpid_mqtt_connect(enpid_mqtt_t *m);

/* Starts a clean DISCONNECT (waiting up to timeout_ms for in-flight work) and stops
 * reconnecting. ENPID_MQTT_DISCONNECTED follows, unless this returns ENPI_ESTATE (there
 * was no connection: nothing to wait for) or ENPI_EMQTT. */
int enpid_mqtt_disconnect(enpid_mqtt_t *m, int timeout_ms);

/*
 * Back-pressure (loop thread): pause stops receiving without losing anything. It makes
 * the reconnect thread close the connection with a clean DISCONNECT (a persistent session
 * keeps queuing our messages at the broker; what Paho still receives meanwhile is handed
 * over as usual) and keeps it from reconnecting; a connect that completes while paused is
 * closed again at once. ENPID_MQTT_CONNECTION_LOST follows the close. resume connects
 * again at once (resubscribing, as on every connect). Both are idempotent and do nothing
 * after enpid_mqtt_disconnect(). enpid_mqtt_paused() says which state was asked last.
 */
void enpid_mqtt_pause(enpid_mqtt_t *m);
void enpid_mqtt_resume(enpid_mqtt_t *m);
bool enpid_mqtt_paused(enpid_mqtt_t *m);

/* Frees the client; no handler runs after it returns. Loop thread, never in a handler. */
void enpid_mqtt_destroy(enpid_mqtt_t *m);

/*
 * Publishes one message (loop thread). Paho copies topic and payload before this returns,
 * so the caller may reuse both at once; the message then leaves in the background. Nothing
 * is retried: returns 0 when Paho took the message (a later failure to send it is logged
 * and counted in enpid_mqtt_publish_failures()), ENPI_ESTATE when the client is not
 * connected, ENPI_EINVAL for a qos outside 0..2 or a payload over INT_MAX bytes, or
 * ENPI_EMQTT (Paho refused it: invalid UTF-8 topic, too many messages queued...). Every
 * error is logged at a limited rate.
 */
int enpid_mqtt_publish(enpid_mqtt_t *m, const char *topic, const void *payload, size_t len, int qos,
                       bool retain);

/* Messages Paho took from enpid_mqtt_publish() but then failed to send (any thread). */
uint64_t enpid_mqtt_publish_failures(const enpid_mqtt_t *m);

/* Successful connects after the first one (any thread; a statistic for /metrics). */
uint64_t enpid_mqtt_reconnects(const enpid_mqtt_t *m);
/* Connect attempts that failed: refused, timed out, TLS errors (any thread). */
uint64_t enpid_mqtt_connect_failures(const enpid_mqtt_t *m);
/* Connections closed because the broker stopped answering (half-open; any thread). */
uint64_t enpid_mqtt_dead_links(const enpid_mqtt_t *m);

/* The payload of a message handed over by on_message. */
void enpid_mqtt_message_payload(void *msg, const void **payload, size_t *len);
/* Frees a message and its topic handed over by on_message (any thread). */
void enpid_mqtt_message_free(void *msg, char *topic);

#endif
