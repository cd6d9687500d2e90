#!/usr/bin/python3
"""test_blackhole - a silent half-open connection is detected and recovered (issue 5).

enpid (MQTT 5, session expiry 1 h, keepalive 3 s) talks to mosquitto through a loopback
proxy (faultlib.Proxy). The
proxy then stops reading and forwarding in both directions but keeps every socket open,
like a dead link: no FIN, no RST. enpid must notice within 2 x keepalive (mqtt_reconnect.c's
liveness probe; Paho 1.3.12's keepalive alone takes about 2.5 x keepalive + 1 s) and
keep retrying with backoff; messages published meanwhile are queued by the broker for enpid's
persistent session (or stuck unacknowledged in the dead connection, then redelivered).
When the proxy forwards again enpid reconnects, resubscribes, and every window equals
the reference exactly (duplicates may only grow through redeliveries). Last, enpid is
stopped, more is published, and the restarted enpid finds it queued in its MQTT 5 session
(which the broker keeps only because enpid sent a Session Expiry Interval).
"""
# ctest-timeout: 120

import time

import faultlib
import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000
KEEPALIVE_S = 3


def facilities():
    return [{"id": "h1", "name": "Half-open link", "timezone": "Asia/Ho_Chi_Minh",
             "meters": [
                 {"id": "h1/em", "kind": "energy", "reading": "cumulative", "scale": 0.001},
                 {"id": "h1/prod", "kind": "production", "reading": "cumulative"},
             ]}]


def readings():
    out = []
    t0 = 1748710800000  # 2025-06-01T00:00:00+07:00
    wh, pcs = 1_000_000.0, 10.0
    for i in range(450):
        t = t0 + i * 5 * MIN
        out.append(("h1/em", t + 3000, round(wh, 1)))
        out.append(("h1/prod", t + 4000, pcs))
        wh += 2000 + 50 * (i % 11)
        pcs += i % 3
    return out


def test(env):
    broker = env.broker(persistence=False)
    proxy = faultlib.Proxy(broker.port)
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, proxy.uri, store, facs, resolutions=RES, clean_session=False,
                         qos=1)
    # MQTT 5 here (the other fault tests use 3.1.1): the probe's UNSUBACK carries reason
    # "no subscription existed", and the session must outlive the dead connection.
    faultlib.mqtt_options(conf, keepalive="%ds" % KEEPALIVE_S, reconnect_max="2s", version=5,
                          session_expiry="1h")
    seq = readings()
    ref = Reference({"h1": "Asia/Ho_Chi_Minh"}, harness.reference_meters(facs), RES)
    for mid, t, v in seq:
        ref.feed(mid, t, v)
    msgs = [harness.json_message("enpi/" + m, t, v) for m, t, v in seq]
    parts = [msgs[:300], msgs[300:600], msgs[600:]]
    cli = env.cli(store)
    try:
        daemon = env.daemon(conf).start(broker)
        daemon.wait_ready(broker)
        pub = harness.Publisher(broker.port)
        pub.publish_all(parts[0])
        harness.wait_committed(cli, ["h1"], "1mo", FROM, TO, {"readings": 300}, timeout=30,
                               exact=False, stable_for=0.3)

        # Blackhole: measure from the moment the proxy goes silent to the log line.
        mark = faultlib.log_mark(daemon)
        subs = broker.subscriptions("enpid")
        proxy.blackhole()
        t0 = time.monotonic()
        log("proxy is a blackhole now")
        pub.publish_all(parts[1])  # the broker takes them; enpid's link is dead
        _, t_lost = faultlib.wait_log(daemon, r"mqtt: connection to .* lost", mark,
                                      timeout=4 * KEEPALIVE_S, interval=0.02,
                                      what="enpid to notice the dead link")
        detected = t_lost - t0
        log("enpid noticed the half-open connection after %.2f s (keepalive %d s)" %
            (detected, KEEPALIVE_S))
        check(detected <= 2 * KEEPALIVE_S,
              "half-open connection noticed after %.2f s, more than 2 x keepalive (%d s)" %
              (detected, 2 * KEEPALIVE_S))
        # While the link stays dead, connect attempts time out and are retried.
        time.sleep(2)
        check(daemon.alive(), "enpid exited while the link was dead")
        proxy.resume()
        log("proxy forwards again")
        faultlib.wait_log(daemon, r"mqtt: reconnected to", mark, timeout=30,
                          what="enpid to reconnect through the proxy")
        harness.wait_until(lambda: broker.subscriptions("enpid") > subs, 10, 0.1,
                           "enpid to resubscribe")
        # MQTT 5 keeps a session after a clean DISCONNECT only with a Session Expiry
        # Interval: stop enpid, publish, start it again; the messages must be waiting.
        rc, _ = daemon.stop()
        check(rc == 0, "enpid exited %s on SIGTERM" % rc)
        pub.publish_all(parts[2])
        pub.close()
        mark = faultlib.log_mark(daemon)
        daemon.start(broker)
        faultlib.wait_log(daemon, r"mqtt: the broker resumed the stored session", mark,
                          timeout=15, what="the MQTT 5 session to outlive enpid's restart")

        harness.wait_committed(cli, ["h1"], "1mo", FROM, TO, ref.totals("1mo"), timeout=40,
                               exact=False)
        rows = harness.compare_all(cli, ref, facs, FROM, TO, lenient_counts=True)
        harness.compare_meter_states(cli, ref, lenient_counts=True)
        log("all %d rows match the reference after the blackhole" % rows)
        rc, _ = daemon.stop()
        check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    finally:
        proxy.close()


if __name__ == "__main__":
    harness.main(test, __doc__)
