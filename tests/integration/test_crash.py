#!/usr/bin/python3
"""test_crash - kill -9 of enpid at random moments mid-stream loses and double-counts nothing.

A publisher streams readings at QoS 1 (about 400 messages/s for ~15 s) for two facilities
with cumulative meters (electricity with a register reset, production with a rollover) and
delta meters (gas over a fixed interval, steam since the previous reading), while the test
kills enpid with SIGKILL at random moments (at least 10 times; sometimes right after a
restart, during its inbox replay) and restarts it each time. enpid uses a persistent session
(clean_session: false), so the broker queues what arrives while it is down and redelivers
what it had not seen acknowledged. At the end every meter and facility row at every
resolution must equal the reference computed from the published sequence: energy, units,
SEC, estimated and every counter exactly (to 1e-9). The broker marks what it sends again
after a crash (MQTT DUP); enpid carries that mark to the pipeline, which counts a
redelivered reading it had applied already as `redelivered`, not as a duplicate or late
reading, so late and duplicates stay exactly the reference's (zero).
"""

import random
import threading
import time

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000
RATE = 400.0            # messages per second
MIN_KILLS = 12


def facilities():
    facs = []
    for fid, tz in (("c1", "UTC"), ("c2", "America/New_York")):
        facs.append({"id": fid, "name": "Crash " + fid, "timezone": tz, "meters": [
            {"id": fid + "/em", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
            {"id": fid + "/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
             "interval": "2m", "to_kwh": 10.55},
            {"id": fid + "/steam", "kind": "energy", "carrier": "steam", "reading": "delta",
             "to_kwh": 0.69},
            {"id": fid + "/prod", "kind": "production", "reading": "cumulative",
             "rollover": 50000},
        ]})
    return facs


def readings(rng, n_steps):
    """A clean stream: every meter every 2 minutes from 2025-06-30 10:00 UTC, time order."""
    out = []
    t0 = 1751277600000  # 2025-06-30T10:00:00Z: ~25 h, across both zones' month ends
    for fid in ("c1", "c2"):
        wh = rng.uniform(1e6, 1e7)
        pcs = 49000.0 if fid == "c1" else 1000.0
        for i in range(n_steps):
            t = t0 + i * 2 * MIN
            if fid == "c1" and i == n_steps // 2:
                wh = 12.5  # register replaced: a reset
            out.append((fid + "/em", t + 1000, round(wh, 2)))
            out.append((fid + "/gas", t, round(rng.uniform(0.1, 0.9), 4)))
            out.append((fid + "/steam", t + 30_000, round(rng.uniform(0.5, 2.0), 4)))
            out.append((fid + "/prod", t + 2000, pcs))
            wh += rng.uniform(2000, 9000)
            pcs = (pcs + rng.randint(0, 25)) % 50000
    out.sort(key=lambda r: (r[1], r[0]))
    return out


def test(env):
    seed = env.args.seed if env.args.seed is not None else int(time.time())
    rng = random.Random(seed)
    log("seed %d (rerun with --seed %d)" % (seed, seed))
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, resolutions=RES,
                         allowed_lateness="1h", max_gap="1h", clean_session=False, qos=1,
                         commit_interval="1s")
    seq = readings(rng, 750)
    ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                    RES, allowed_lateness="1h", max_gap="1h")
    for mid, t, v in seq:
        check(ref.feed(mid, t, v) == "applied", "clean stream expected")
    expected = ref.totals("1mo")
    check(expected["resets"] == 1, "the stream should hold one reset")
    check(ref.rollovers >= 1, "the stream should wrap c1/prod")

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)  # the session (and its subscription) exists from here on

    pub = harness.Publisher(broker.port, inflight=50)
    done = threading.Event()
    err = []

    def publish():
        try:
            t_start = time.monotonic()
            msgs = []
            for i, (mid, t, v) in enumerate(seq):
                msgs.append(harness.json_message("enpi/" + mid, t, v))
            i = [0]

            def pace():
                i[0] += 1
                ahead = i[0] / RATE - (time.monotonic() - t_start)
                if ahead > 0:
                    time.sleep(ahead)
            pub.publish_all(msgs, qos=1, pace=pace, timeout=180)
        except Exception as e:  # reported by the main thread
            err.append(e)
        finally:
            done.set()

    th = threading.Thread(target=publish, daemon=True)
    th.start()
    kills = 0
    while not done.is_set() or kills < MIN_KILLS:
        # up time before the kill: sometimes during start-up / replay, mostly mid-stream
        time.sleep(rng.choice([0.05, 0.2]) if rng.random() < 0.25 else rng.uniform(0.3, 1.3))
        daemon.kill9()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.5))  # down time: the broker queues for the session
        daemon.start()
        if kills > 60:
            break
    th.join(200)
    pub.close()
    check(not err, "publisher failed: %s" % (err[0] if err else ""))
    log("published %d messages; enpid killed with SIGKILL %d times" % (len(seq), kills))

    cli = env.cli(store)
    got = harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, expected,
                                 timeout=60, exact=True, stable_for=2.0)
    log("committed: %s (reference %s)" % (got, expected))
    check(daemon.alive(), "enpid died")
    rows = harness.compare_all(cli, ref, facs, FROM, TO)
    harness.compare_meter_states(cli, ref)
    log("all %d rows and every meter's state match the reference after %d kills" %
        (rows, kills))
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
