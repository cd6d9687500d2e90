#!/usr/bin/python3
"""test_kill9 - issue 5's crash acceptance: ≥ 20 kill -9 cycles at QoS 1 with a persistent
session, every window exact, READY=1 within 5 s of every start.

A publisher streams readings (cumulative with a reset and a rollover, delta with and
without interval) at QoS 1 while the test SIGKILLs enpid at random moments and restarts it:
most cycles wait for READY=1 and kill it a random while later mid-stream; some kill it
during start-up (inbox replay, before READY). Each run gets its own NOTIFY_SOCKET (an
AF_UNIX datagram socket of the test), so READY=1 is what systemd would see, timed from
the spawn. At the end every meter and facility row at every resolution equals
reference.py's, and every meter's lifetime counters too: nothing lost, nothing counted
twice.
"""
# ctest-timeout: 240

import os
import random
import subprocess
import threading
import time

import harness
from faultlib import NotifySocket
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000
RATE = 500.0       # messages per second
READY_CYCLES = 20  # cycles that must reach READY=1 (and then be killed)
READY_LIMIT = 5.0  # seconds from spawn to READY=1


def facilities():
    facs = []
    for fid, tz in (("k1", "Asia/Ho_Chi_Minh"), ("k2", "Europe/Berlin")):
        facs.append({"id": fid, "name": "Kill " + fid, "timezone": tz, "meters": [
            {"id": fid + "/em", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
            {"id": fid + "/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
             "interval": "2m", "to_kwh": 10.55},
            {"id": fid + "/steam", "kind": "energy", "carrier": "steam", "reading": "delta"},
            {"id": fid + "/prod", "kind": "production", "reading": "cumulative",
             "rollover": 50000},
        ]})
    return facs


def readings(rng, n_steps):
    out = []
    t0 = 1751241600000  # 2025-06-30T00:00:00Z
    for fid in ("k1", "k2"):
        wh, pcs = rng.uniform(1e6, 1e7), (49500.0 if fid == "k1" else 10.0)
        for i in range(n_steps):
            t = t0 + i * 2 * MIN
            if fid == "k2" and i == n_steps // 3:
                wh = 3.5  # a register reset
            out.append((fid + "/em", t + 1000, round(wh, 2)))
            out.append((fid + "/gas", t, round(rng.uniform(0.1, 0.9), 4)))
            out.append((fid + "/steam", t + 30_000, round(rng.uniform(0.5, 2.0), 4)))
            out.append((fid + "/prod", t + 2000, pcs))
            wh += rng.uniform(2000, 9000)
            pcs = (pcs + rng.randint(0, 25)) % 50000
    out.sort(key=lambda r: (r[1], r[0]))
    return out


class NotifiedDaemon(harness.Daemon):
    """harness.Daemon whose runs report to a NOTIFY_SOCKET."""

    def __init__(self, enpid, config_path, workdir, notify_path):
        super().__init__(enpid, config_path, workdir)
        self.notify_path = notify_path

    def start(self, broker=None, client_id="enpid"):
        check(self.proc is None or self.proc.poll() is not None, "enpid already running")
        self._subs_before = broker.subscriptions(client_id) if broker else 0
        self.runs += 1
        with open(self.stderr_path, "a") as f:
            f.write("---- run %d (%s) ----\n" % (self.runs, time.strftime("%H:%M:%S")))
        self._err = open(self.stderr_path, "a")
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen([self.enpid, "--config", self.config], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err)
        return self


def test(env):
    seed = env.args.seed if env.args.seed is not None else int(time.time())
    rng = random.Random(seed)
    log("seed %d (rerun with --seed %d)" % (seed, seed))
    broker = env.broker()
    facs = facilities()
    store, conf = env.path("store"), env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, resolutions=RES, qos=1,
                         clean_session=False, commit_interval="500ms")
    seq = readings(rng, 1400)
    ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                    RES, allowed_lateness="1h", max_gap="1h")
    for mid, t, v in seq:
        check(ref.feed(mid, t, v) == "applied", "clean stream expected")
    expected = ref.totals("1mo")
    check(expected["resets"] == 1 and ref.rollovers >= 1, "the stream must hold a reset "
          "and a rollover")

    notify = NotifySocket(env.path("notify.sock"))
    daemon = NotifiedDaemon(env.args.enpid, conf, env.workdir, notify.path)
    env.daemons.append(daemon)
    daemon.start(broker)
    daemon.wait_ready(broker)

    pub = harness.Publisher(broker.port, inflight=50)
    done, err = threading.Event(), []

    def publish():
        try:
            t_start, i = time.monotonic(), [0]

            def pace():
                i[0] += 1
                ahead = i[0] / RATE - (time.monotonic() - t_start)
                if ahead > 0:
                    time.sleep(ahead)
            pub.publish_all([harness.json_message("enpi/" + m, t, v) for m, t, v in seq],
                            qos=1, pace=pace, timeout=200)
        except Exception as e:
            err.append(e)
        finally:
            done.set()

    threading.Thread(target=publish, daemon=True).start()
    ready_times, startup_kills, cycles = [], 0, 0
    while len(ready_times) < READY_CYCLES or not done.is_set():
        cycles += 1
        if cycles > 120:
            break
        if rng.random() < 0.2:
            # during start-up: replay of what the last run left in the inbox
            time.sleep(rng.uniform(0.0, 0.15))
            if daemon.alive() and notify.first_at("READY=1", daemon.spawned) is None:
                startup_kills += 1
        else:
            deadline = daemon.spawned + READY_LIMIT
            while notify.first_at("READY=1", daemon.spawned) is None:
                check(daemon.alive(), "enpid exited during start-up (run %d)" % daemon.runs)
                check(time.monotonic() < deadline,
                      "run %d: no READY=1 within %.0f s of the start" % (daemon.runs,
                                                                        READY_LIMIT))
                time.sleep(0.01)
            ready_times.append(notify.first_at("READY=1", daemon.spawned) - daemon.spawned)
            time.sleep(rng.uniform(0.05, 1.0))
        daemon.kill9()
        time.sleep(rng.uniform(0.0, 0.4))  # the broker queues for the session meanwhile
        daemon.start()
    pub.close()
    check(not err, "publisher failed: %s" % (err[0] if err else ""))
    check(len(ready_times) >= READY_CYCLES, "only %d cycles reached READY" % len(ready_times))
    log("%d messages; %d kill -9 cycles (%d during start-up); READY=1 after %.2f s at most "
        "(median %.2f s)" % (len(seq), cycles, startup_kills, max(ready_times),
                             sorted(ready_times)[len(ready_times) // 2]))

    cli = env.cli(store)
    harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, expected,
                           timeout=90, exact=True, stable_for=1.5)
    rows = harness.compare_all(cli, ref, facs, FROM, TO)
    harness.compare_meter_states(cli, ref)
    log("all %d rows and every meter's lifetime counters match the reference" % rows)
    rc, took = daemon.stop()
    check(rc == 0 and took < 5.0, "SIGTERM: exit %s after %.1f s" % (rc, took))
    notify.close()


if __name__ == "__main__":
    harness.main(test, __doc__)
