#!/usr/bin/python3
"""test_broker_outage - the broker is away for 30 s, twice; nothing is lost (issue 5).

mosquitto runs with persistence (autosave every second). enpid has a persistent session
(clean_session: false, QoS 1) and mqtt.reconnect_max: 3s so that the backoff ramps
1 s -> 2 s -> 3 s within the outage. Two outages of 30 s each:
  1. graceful: mosquitto stopped with SIGTERM (it saves its state and closes sockets);
  2. brutal: kill -9, after enpid committed everything and the broker autosaved.
After each outage the broker starts again on the same port; a publisher at once publishes
QoS 1 messages, which the broker queues for enpid's persistent session while enpid is
still backing off, and keeps publishing after enpid is back. enpid must stay up, log
its backoff (growing, jittered, capped), reconnect, resubscribe (a new SUBSCRIBE in the
broker's log each time), and every window must equal tests/integration/reference.py
exactly (duplicates may only grow through redeliveries).
"""
# ctest-timeout: 180

import re
import time

import faultlib
import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000
OUTAGE_S = 30
RECONNECT_MAX_S = 3


def facilities():
    return [{"id": "o1", "name": "Outage works", "timezone": "Europe/Madrid",
             "meters": [
                 {"id": "o1/em", "kind": "energy", "reading": "cumulative", "scale": 0.001},
                 {"id": "o1/gas", "kind": "energy", "reading": "delta", "interval": "5m",
                  "to_kwh": 10.55},
                 {"id": "o1/prod", "kind": "production", "reading": "cumulative"},
             ]}]


def readings():
    out = []
    t0 = 1748728800000  # 2025-06-01T00:00:00+02:00
    wh, pcs = 5_000_000.0, 100.0
    for i in range(500):
        t = t0 + i * 5 * MIN
        out.append(("o1/em", t + 7000, round(wh, 1)))
        out.append(("o1/gas", t, round(0.2 + 0.01 * (i % 13), 3)))
        out.append(("o1/prod", t + 9000, pcs))
        wh += 3000 + 100 * (i % 7)
        pcs += i % 5
    return out


def check_backoff(text):
    """The reconnect attempts logged during one outage: waits grow from <= 1 s to the
    cap, never exceed it, and are jittered (not all equal once capped)."""
    waits = [float(w) for w in re.findall(r"attempt \d+, after a ([0-9.]+) s backoff", text)]
    log("backoff waits during the outage: %s" % waits)
    check(len(waits) >= 4, "only %d reconnect attempts logged in a %d s outage" %
          (len(waits), OUTAGE_S))
    check(waits[0] <= 1.0, "first reconnect wait %.1f s, want <= 1 s" % waits[0])
    check(max(waits) <= RECONNECT_MAX_S + 0.05, "a wait of %.1f s exceeds reconnect_max %d s" %
          (max(waits), RECONNECT_MAX_S))
    check(max(waits) >= RECONNECT_MAX_S / 2, "the backoff never reached half the cap: %s" % waits)
    capped = waits[3:]
    check(len(set(capped)) > 1 or len(capped) < 3, "no jitter in the capped waits: %s" % capped)


def outage(broker, daemon, queued, after, kill):
    """One outage; returns when enpid reconnected (time.monotonic()), raises on failure.
    queued: messages published right after the broker is back (before enpid reconnects,
    as a rule); after: published once enpid has resubscribed."""
    how = "kill -9" if kill else "graceful stop"
    mark = faultlib.log_mark(daemon)
    subs = broker.subscriptions("enpid")
    if kill:
        faultlib.broker_kill9(broker)
    else:
        broker.stop()
    log("broker down (%s) for %d s" % (how, OUTAGE_S))
    faultlib.wait_log(daemon, r"mqtt: connection to .* lost", mark, timeout=10,
                      what="enpid to notice the broker is gone")
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        check(daemon.alive(), "enpid exited while the broker was down")
        time.sleep(0.5)
    down_text = faultlib.stderr_since(daemon, mark)
    faultlib.broker_start_again(broker)
    log("broker back on port %d" % broker.port)
    pub = harness.Publisher(broker.port)
    pub.publish_all(queued)
    reconnected = "mqtt: reconnected to" in faultlib.stderr_since(daemon, mark)
    log("%d messages published %s enpid reconnected" %
        (len(queued), "after" if reconnected else "before"))
    _, t_up = faultlib.wait_log(daemon, r"mqtt: reconnected to", mark,
                                timeout=RECONNECT_MAX_S + 15,
                                what="enpid to reconnect after the %s" % how)
    harness.wait_until(lambda: broker.subscriptions("enpid") > subs, 10, 0.1,
                       "enpid to resubscribe after the %s" % how)
    check_backoff(down_text)
    pub.publish_all(after)
    pub.close()
    return t_up


def test(env):
    broker = env.broker(persistence=True)
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, resolutions=RES,
                         clean_session=False, qos=1)
    faultlib.mqtt_options(conf, reconnect_max="%ds" % RECONNECT_MAX_S)
    seq = readings()
    ref = Reference({"o1": "Europe/Madrid"}, harness.reference_meters(facs), RES)
    for mid, t, v in seq:
        ref.feed(mid, t, v)
    msgs = [harness.json_message("enpi/" + m, t, v) for m, t, v in seq]
    n = len(msgs)
    cuts = [0, 300, 600, 800, 1100, 1300, n]
    parts = [msgs[cuts[i]:cuts[i + 1]] for i in range(len(cuts) - 1)]
    cli = env.cli(store)

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    pub = harness.Publisher(broker.port)
    pub.publish_all(parts[0])
    pub.close()

    t_up = outage(broker, daemon, parts[1], parts[2], kill=False)

    # Before kill -9: enpid has everything so far, and the broker has autosaved since
    # enpid resubscribed (its session must survive the crash).
    harness.wait_committed(cli, ["o1"], "1mo", FROM, TO, {"readings": cuts[3]}, timeout=30,
                           exact=False, stable_for=0.2)
    time.sleep(2.5)  # > 2 autosave intervals
    pub = harness.Publisher(broker.port)
    pub.publish_all(parts[3])
    pub.close()
    harness.wait_committed(cli, ["o1"], "1mo", FROM, TO, {"readings": cuts[4]}, timeout=30,
                           exact=False, stable_for=0.2)
    # The backoff starts again at 1 s only after a connection that lasted 10 s (mqtt_reconnect.c's
    # STABLE_MS); check_backoff() wants to see that, so wait that long since the reconnect.
    time.sleep(max(1.5, t_up + 11 - time.monotonic()))

    outage(broker, daemon, parts[4], parts[5], kill=True)

    harness.wait_committed(cli, ["o1"], "1mo", FROM, TO, ref.totals("1mo"), timeout=40,
                           exact=False, stable_for=0.5)
    rows = harness.compare_all(cli, ref, facs, FROM, TO, lenient_counts=True)
    harness.compare_meter_states(cli, ref, lenient_counts=True)
    log("all %d rows and meter states match the reference after two 30 s outages" % rows)
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
