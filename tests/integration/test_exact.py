#!/usr/bin/python3
"""test_exact - a known reading sequence yields exactly the rollups SPEC §5 defines.

Two facilities through the real mosquitto, enpid and enpi:
  ber (Europe/Berlin), 2024-03-30 18:00 .. 2024-04-01 06:00 local: across the 23-hour DST
      day (31 March) and the March/April month boundary.
      ber/em    electricity, cumulative register in Wh (scale 0.001), irregular steps, one
                step of exactly max_gap (not estimated) and one 3h10m gap (estimated)
      ber/gas   gas, delta over a fixed 15m interval, to_kwh 10.55, a 2-hour hole
      ber/steam steam, delta since the previous reading, to_kwh 0.69, a 90-minute gap
                (estimated); its first reading only sets state
      ber/prod  production, cumulative with rollover 100000 (wraps in the middle)
  ktm (Asia/Kathmandu, UTC+05:45: 1h windows start at :15 UTC), the last 4 hours up to
      now: recent windows are not final yet, older ones are.
Every meter and facility is queried at 15m/1h/1d/1mo with --format json, and every row
is compared with reference.py: exact key set and order of SPEC §7, start/end in the
facility's offset, energy_kwh/units/sec/estimated to 1e-9 relative, counters exact,
final. Then enpid is stopped (SIGTERM: exit 0 within 5 s), restarted (its inbox replay
must not change anything) and the rollups are compared again.
"""

import datetime as dt
import itertools
import math

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2020-01-01", "2030-01-01"
MIN = 60_000


def ms(iso):
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def facilities():
    return [
        {"id": "ber", "name": "Berlin works", "timezone": "Europe/Berlin", "product_unit": "t",
         "meters": [
             {"id": "ber/em", "kind": "energy", "carrier": "electricity",
              "reading": "cumulative", "scale": 0.001},
             {"id": "ber/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
              "interval": "15m", "to_kwh": 10.55},
             {"id": "ber/steam", "kind": "energy", "carrier": "steam", "reading": "delta",
              "to_kwh": 0.69},
             {"id": "ber/prod", "kind": "production", "reading": "cumulative",
              "rollover": 100000},
         ]},
        {"id": "ktm", "name": "Kathmandu plant", "timezone": "Asia/Kathmandu",
         "meters": [
             {"id": "ktm/em", "kind": "energy", "carrier": "electricity",
              "reading": "cumulative"},
             {"id": "ktm/prod", "kind": "production", "reading": "cumulative"},
         ]},
    ]


def power_kw(t_ms):
    """A smooth, non-trivial load profile (kW) so every window differs."""
    h = (t_ms / 3_600_000.0) % 24
    return 120 + 80 * math.sin(h / 24 * 2 * math.pi) + 15 * math.cos(h * 1.7)


def readings():
    """(meter_id, ts_ms, raw value) of every meter, merged in time order."""
    out = []
    t0, t_end = ms("2024-03-30T18:00:00+01:00"), ms("2024-04-01T06:00:00+02:00")

    # ber/em: Wh register, irregular steps; one step of exactly 1h, one 3h10m gap
    steps = itertools.cycle([5 * MIN + 13_000, 9 * MIN + 47_000, 15 * MIN, 4 * MIN,
                             11 * MIN + 30_000, 7 * MIN + 1])
    t, wh, i = t0 + 17_123, 48_213_517.25, 0
    while t < t_end:
        out.append(("ber/em", t, round(wh, 3)))
        i += 1
        if i == 40:
            dt_ms = 60 * MIN                # exactly max_gap: not estimated
        elif i == 150:
            dt_ms = 190 * MIN               # longer than max_gap: estimated
        else:
            dt_ms = next(steps)
        wh += power_kw(t) * 1000 * dt_ms / 3_600_000
        t += dt_ms

    # ber/gas: m3 per 15 minutes, stamped at the interval's end; a 2-hour hole
    t = ms("2024-03-30T18:15:00+01:00")
    i = 0
    while t <= t_end:
        if not (40 <= i < 48):
            out.append(("ber/gas", t, round(0.75 + 0.013 * (i % 17) + 0.002 * i, 4)))
        i += 1
        t += 15 * MIN

    # ber/steam: t per reading since the previous one; every 20 min, one 90-minute gap
    t = ms("2024-03-30T18:03:00+01:00")
    i = 0
    while t <= t_end:
        out.append(("ber/steam", t, round(1.5 + 0.1 * (i % 5), 3)))
        i += 1
        t += 90 * MIN if i == 60 else 20 * MIN

    # ber/prod: a counter that wraps at 100000
    t = ms("2024-03-30T18:02:00+01:00")
    v, i = 99_200.0, 0
    while t <= t_end:
        out.append(("ber/prod", t, v))
        i += 1
        v = (v + 7 + (i % 4)) % 100_000
        t += 10 * MIN

    # ktm: the last 4 hours, up to a minute ago
    now = harness.now_ms()
    start = now - 4 * 3_600_000
    t, kwh, units = start, 1234.5, 10.0
    while t <= now - MIN:
        out.append(("ktm/em", t, round(kwh, 4)))
        out.append(("ktm/prod", t + 11_000, units))
        kwh += 17.25 + (t // MIN) % 3
        units += 2
        t += 7 * MIN
    out.sort(key=lambda r: r[1])
    return out


def topic_of(meter_id):
    return "enpi/" + meter_id  # enpi/{facility}/{meter} -> meter id {facility}/{meter}


def test(env):
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="Europe/Berlin",
                         resolutions=RES)
    ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                    RES, allowed_lateness="1h", max_gap="1h")
    seq = readings()
    for mid, t, v in seq:
        check(ref.feed(mid, t, v) == "applied", "test data must be clean: %s %d" % (mid, t))
    expected = ref.totals("1mo")
    check(ref.rollovers == 1, "the sequence should wrap ber/prod once")
    log("%d readings for %d meters; expected totals %s" % (len(seq), 6, expected))

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    pub = harness.Publisher(broker.port)
    pub.publish_all(harness.json_message(topic_of(mid), t, v) for mid, t, v in seq)
    pub.close()
    log("published; waiting for enpid to commit")
    cli = env.cli(store)
    harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, expected)
    rows = harness.compare_all(cli, ref, facs, FROM, TO)
    harness.compare_meter_states(cli, ref)
    log("all %d rows and every meter's state match the reference (enpid running)" % rows)

    # every resolution's rows cover the same energy: a cheap cross-check of the reference
    for f in facs:
        tot = [sum(r["energy_kwh"] for r in ref.facility_rows(f["id"], res)) for res in RES]
        check(all(harness.close(x, tot[0]) for x in tot), "reference totals differ: %s" % tot)

    rc, took = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    check(took < 5.0, "enpid took %.1fs to stop on SIGTERM (SPEC §8: within 5 s)" % took)
    log("enpid stopped on SIGTERM in %.2fs" % took)
    # facility rows are sums of all meter rows: any change would show there
    rows = harness.compare_all(cli, ref, facs, FROM, TO, meters=False)
    log("all %d facility rows still match with enpid stopped" % rows)

    daemon.start(broker)
    daemon.wait_ready(broker)
    harness.compare_all(cli, ref, facs, FROM, TO, meters=False)
    log("after a restart the rollups are unchanged")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM after the restart" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
