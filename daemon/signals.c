/*
 * signals.c - SIGTERM, SIGINT and SIGHUP, received as loop events (uv_signal_t), so the
 * handlers run on the loop thread between other work, never inside it.
 *
 * SIGTERM and SIGINT begin the shutdown sequence (daemon.c: stop taking messages, drain,
 * commit, exit 0); SIGHUP reloads the configuration (reload.c). Several SIGHUPs sent
 * quickly may coalesce into fewer reloads: each reload reads the file as it is then, so
 * the last one always applies the latest file. SIGPIPE is ignored: a broker that
 * vanishes mid-write must show up as a connection error, not kill the process.
 */
#include <signal.h>

#include "enpi_error.h"
#include "enpid.h"

static void stop_signal_cb(uv_signal_t *h, int signum)
{
    enpid_t *d = h->data;
    if (d->phase >= ENPID_STOP_MQTT) {
        log_notice("signal %s: already stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
        return;
    }
    log_notice("signal %s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    enpid_daemon_stop(d);
}

static void hup_signal_cb(uv_signal_t *h, int signum)
{
    enpid_reload(h->data);
}

int enpid_signals_init(enpid_t *d)
{
    signal(SIGPIPE, SIG_IGN);
    if (uv_signal_init(&d->loop, &d->sig_term) != 0 || uv_signal_init(&d->loop, &d->sig_int) != 0 ||
        uv_signal_init(&d->loop, &d->sig_hup) != 0)
        return ENPI_ENOMEM;
    d->sig_term.data = d;
    d->sig_int.data = d;
    d->sig_hup.data = d;
    if (uv_signal_start(&d->sig_term, stop_signal_cb, SIGTERM) != 0 ||
        uv_signal_start(&d->sig_int, stop_signal_cb, SIGINT) != 0 ||
        uv_signal_start(&d->sig_hup, hup_signal_cb, SIGHUP) != 0)
        return ENPI_EINVAL;
    return 0;
}
