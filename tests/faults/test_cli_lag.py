#!/usr/bin/python3
"""test_cli_lag - `enpi` reading continuously while enpid ingests and RocksDB compacts.

A publisher streams QoS 1 readings for 400 meters for ~20 s while a reader runs
`enpi meters --format json` back to back (a RocksDB secondary instance catching up with
the primary each time). enpid runs with a tiny memtable (test hook
ENPID_TEST_WRITE_BUFFER_BYTES) so that memtables flush and SST files compact all the time
underneath the reader. Every `enpi` call must succeed with valid JSON, and its view may
lag by at most 2 s: every reading the broker acknowledged more than 2 s before a call
began must be visible in that call (each meter's last_reading at least that reading's
time). The store's table files must show flushes (new .sst files) and compactions (.sst
files that vanish: only a compaction deletes them) during the run, and at the end the
rollups are exact. (enpid keeps RocksDB's own LOG at FATAL level, so the test watches
the files instead.)
"""
# ctest-timeout: 240

import json
import os
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d"]
FROM, TO = "2024-01-01", "2025-01-01"
METERS = 400
RATE = 400.0          # messages per second
SECONDS = 20
LAG_LIMIT = 2.0       # seconds
T0 = 1717200000000    # 2024-06-01T00:00:00Z


def facilities():
    meters = [{"id": "lag/m%02d" % i, "kind": "energy", "carrier": "electricity",
               "reading": "cumulative"} for i in range(METERS)]
    meters.append({"id": "lag/prod", "kind": "production", "reading": "cumulative"})
    return [{"id": "lag", "name": "Lag works", "timezone": "UTC", "meters": meters}]


def test(env):
    broker = env.broker()
    facs = facilities()
    store, conf = env.path("store"), env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, resolutions=RES, qos=1,
                         clean_session=False, commit_interval="1s")
    ids = [m["id"] for m in facs[0]["meters"]]
    n_msgs = int(RATE * SECONDS)
    seq = []  # (meter, ts, value): round-robin, every meter every len(ids) seconds
    for i in range(n_msgs):
        mid = ids[i % len(ids)]
        seq.append((mid, T0 + i * 1000, 1000.0 + i * 0.5))
    ref = Reference({"lag": "UTC"}, harness.reference_meters(facs), RES)
    for r in seq:
        check(ref.feed(*r) == "applied", "clean stream expected")

    os.environ["ENPID_TEST_WRITE_BUFFER_BYTES"] = "65536"
    try:
        daemon = env.daemon(conf).start(broker)
    finally:
        del os.environ["ENPID_TEST_WRITE_BUFFER_BYTES"]
    daemon.wait_ready(broker)

    acked = {}  # mid -> monotonic ack time
    lock = threading.Lock()
    client = mqtt.Client(client_id="lag-pub", clean_session=True)
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)

    def on_publish(c, userdata, mid):
        with lock:
            acked[mid] = time.monotonic()
    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port, keepalive=60)
    client.loop_start()

    sent = []  # (paho mid, meter, ts)
    done = threading.Event()

    def publish():
        t_start = time.monotonic()
        for i, (mid, t, v) in enumerate(seq):
            info = client.publish("enpi/" + mid, json.dumps({"ts": t, "value": v}), qos=1)
            sent.append((info.mid, mid, t))
            ahead = (i + 1) / RATE - (time.monotonic() - t_start)
            if ahead > 0:
                time.sleep(ahead)
        done.set()
    th = threading.Thread(target=publish, daemon=True)
    th.start()

    calls, worst, failures = 0, 0.0, []
    seen_sst, alive_sst = set(), set()

    def watch_tables():
        now_sst = {f for f in os.listdir(store) if f.endswith(".sst")}
        seen_sst.update(now_sst)
        alive_sst.clear()
        alive_sst.update(now_sst)
    while not done.is_set():
        watch_tables()
        began = time.monotonic()
        with lock:
            snapshot = list(sent), dict(acked)
        p = subprocess.run([env.args.enpi, "--db", store, "meters", "--format", "json"],
                           capture_output=True, text=True, timeout=30)
        calls += 1
        if p.returncode != 0:
            failures.append("exit %d: %s" % (p.returncode, p.stderr.strip()))
            continue
        try:
            rows = {r["meter"]: r for r in json.loads(p.stdout)}
        except (ValueError, KeyError, TypeError) as e:
            failures.append("bad JSON (%s): %r" % (e, p.stdout[:200]))
            continue
        seen = {}
        for mid, r in rows.items():
            if r.get("last_reading"):
                seen[mid] = harness.parse_time(r["last_reading"])[0]
        # the oldest acknowledged reading this call does not show gives the lag
        lag = 0.0
        for pmid, meter, t in snapshot[0]:
            at = snapshot[1].get(pmid)
            if at is None or at > began:
                continue
            if seen.get(meter, -1) < t:
                lag = max(lag, began - at)
                break  # sent in time order: the first one missing is the oldest
        worst = max(worst, lag)
    th.join(10)
    client.loop_stop()
    client.disconnect()
    check(not failures, "%d of %d enpi calls failed, first: %s" % (len(failures), calls,
                                                                    failures[0] if failures
                                                                    else ""))
    log("%d enpi calls during the stream, none failed; worst lag %.2f s" % (calls, worst))
    check(calls >= 10, "only %d enpi calls ran during the stream" % calls)
    check(worst <= LAG_LIMIT, "enpi lagged %.2f s behind acknowledged readings (limit %.1f)"
          % (worst, LAG_LIMIT))

    watch_tables()
    vanished = seen_sst - alive_sst
    log("table files: %d seen during the run, %d of them compacted away" % (len(seen_sst),
                                                                           len(vanished)))
    check(len(seen_sst) >= 5 and vanished, "the run should flush and compact (%d .sst files "
          "seen, %d vanished): is ENPID_TEST_WRITE_BUFFER_BYTES honoured?" % (len(seen_sst),
                                                                            len(vanished)))

    cli = env.cli(store)
    harness.wait_committed(cli, ["lag"], "1d", FROM, TO, ref.totals("1d"), stable_for=0.5)
    rows = harness.compare_all(cli, ref, facs, FROM, TO, meters=False)
    log("all %d facility rows exact" % rows)
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
