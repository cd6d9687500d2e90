#!/usr/bin/python3
"""test_broker - a broker restart loses nothing (SPEC §8: reconnect, resubscribe, keep
the session).

mosquitto runs with persistence, so enpid's persistent session (clean_session: false) and
its queued QoS 1 messages survive a broker restart. The stream is published in three parts:
before the restart; while the broker is up again but enpid may not have reconnected yet
(queued for its session); and after enpid is back (seen by a fresh SUBSCRIBE or by the
rollups catching up). The rollups must then equal the reference exactly, with duplicates
and late readings allowed to grow only through redeliveries.
"""


import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000


def facilities():
    return [{"id": "b1", "name": "Broker restart works", "timezone": "Europe/Madrid",
             "meters": [
                 {"id": "b1/em", "kind": "energy", "reading": "cumulative", "scale": 0.001},
                 {"id": "b1/gas", "kind": "energy", "reading": "delta", "interval": "5m",
                  "to_kwh": 10.55},
                 {"id": "b1/prod", "kind": "production", "reading": "cumulative"},
             ]}]


def readings():
    out = []
    t0 = 1748728800000  # 2025-06-01T00:00:00+02:00
    wh, pcs = 5_000_000.0, 100.0
    for i in range(600):
        t = t0 + i * 5 * MIN
        out.append(("b1/em", t + 7000, round(wh, 1)))
        out.append(("b1/gas", t, round(0.2 + 0.01 * (i % 13), 3)))
        out.append(("b1/prod", t + 9000, pcs))
        wh += 3000 + 100 * (i % 7)
        pcs += i % 5
    return out


def test(env):
    broker = env.broker(persistence=True)
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, resolutions=RES,
                         clean_session=False, qos=1)
    seq = readings()
    ref = Reference({"b1": "Europe/Madrid"}, harness.reference_meters(facs), RES)
    for mid, t, v in seq:
        ref.feed(mid, t, v)
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    msgs = [harness.json_message("enpi/" + m, t, v) for m, t, v in seq]
    parts = [msgs[:600], msgs[600:1200], msgs[1200:]]

    pub = harness.Publisher(broker.port)
    pub.publish_all(parts[0])
    pub.close()
    subs = broker.subscriptions("enpid")
    broker.restart_same_port()
    log("broker restarted on the same port (persistent sessions kept)")
    pub = harness.Publisher(broker.port)
    pub.publish_all(parts[1])  # enpid may still be reconnecting: queued for its session
    pub.close()
    check(daemon.alive(), "enpid exited when the broker went away")
    harness.wait_until(lambda: broker.subscriptions("enpid") > subs or
                       "enpid" in broker.log_text().split("mosquitto version")[-1], 60, 0.2,
                       "enpid to reconnect to the restarted broker")
    pub = harness.Publisher(broker.port)
    pub.publish_all(parts[2])
    pub.close()

    cli = env.cli(store)
    harness.wait_committed(cli, ["b1"], "1mo", FROM, TO, ref.totals("1mo"), timeout=60,
                           exact=False)
    rows = harness.compare_all(cli, ref, facs, FROM, TO, lenient_counts=True)
    harness.compare_meter_states(cli, ref, lenient_counts=True)
    log("all %d rows and meter states match the reference after a broker restart" % rows)
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
