#!/usr/bin/python3
"""test_notify - enpid's sd_notify protocol, read from a NOTIFY_SOCKET of the test (an
AF_UNIX datagram socket, as systemd's), with WATCHDOG_USEC=1 s in enpid's environment.

  A. READY=1 only once subscribed (the broker has the subscription when READY=1 comes);
     STATUS= with rates; WATCHDOG=1 every ~0.5 s; SIGHUP with a valid file: RELOADING=1
     with MONOTONIC_USEC= (CLOCK_MONOTONIC, now) then READY=1 and a STATUS= saying it was
     reloaded; SIGHUP with an invalid file: the same pair, STATUS= saying it was rejected;
     SIGTERM: STOPPING=1, exit 0.
  B. ENPID_TEST_COMMIT_FAILURES=5 with readings flowing: commits fail for 5 s or more, the
     WATCHDOG=1 pings stop (a gap of more than 2 x WatchdogSec) with STATUS=unhealthy,
     and resume once commits succeed.
  C. Commits failing for good, a large backlog ingested (so the inbox keeps it all), then
     kill -9; the next start replays it: EXTEND_TIMEOUT_USEC= comes before READY=1, and
     every reading is committed afterwards.
"""
# ctest-timeout: 150

import json
import os
import re
import signal
import time

import harness
from faultlib import NotifySocket
from harness import check, log

MIN = 60_000
T0 = 1740787200000  # 2025-03-01T00:00:00Z
WATCHDOG_S = 1.0
BIG_MESSAGES = 300    # backlog of part C: messages ...
BIG_READINGS = 2000   # ... of this many readings each


def facilities(extra_meter=False):
    meters = [{"id": "n1/em", "kind": "energy", "reading": "cumulative"}]
    if extra_meter:
        meters.append({"id": "n1/em2", "kind": "energy", "reading": "cumulative"})
    return [{"id": "n1", "name": "Notify", "meters": meters}]


def readings(start, n):
    return [("enpi/n1/em", json.dumps({"ts": T0 + i * MIN, "value": 10.0 * i}))
            for i in range(start, start + n)]


def big_message(k):
    """One message with BIG_READINGS readings of n1/em, 1 s apart, after every earlier one."""
    base = T0 + 10 * 86400000 + k * BIG_READINGS * 1000
    first = 1e6 + k * BIG_READINGS
    return ("enpi/n1/em", json.dumps([{"ts": base + j * 1000, "value": first + j}
                                      for j in range(BIG_READINGS)]))


def pings(ns, mark):
    return [t for t, _, line in ns.since(mark) if line == "WATCHDOG=1"]


def max_gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)


def start(daemon, broker, ns, failures=None):
    if failures is None:
        os.environ.pop("ENPID_TEST_COMMIT_FAILURES", None)
    else:
        os.environ["ENPID_TEST_COMMIT_FAILURES"] = str(failures)
    mark = ns.mark()
    subs_before = broker.subscriptions("enpid")
    daemon.start(broker)
    return mark, subs_before


def test(env):
    broker = env.broker()
    store, conf = env.path("store"), env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facilities())
    ns = NotifySocket(env.path("notify.sock"))
    os.environ["NOTIFY_SOCKET"] = ns.path
    os.environ["WATCHDOG_USEC"] = str(int(WATCHDOG_S * 1e6))
    os.environ.pop("WATCHDOG_PID", None)  # enpid's pid is not known before the spawn
    daemon = env.daemon(conf)
    pub = harness.Publisher(broker.port, inflight=100)
    cli = env.cli(store)
    committed = 0

    # ---- A: READY after the subscription, STATUS, WATCHDOG cadence, reloads, STOPPING
    mark, subs_before = start(daemon, broker, ns)
    t_ready, _, _ = ns.wait(lambda l: l == "READY=1", mark, 15, "READY=1")
    harness.wait_until(lambda: broker.subscriptions("enpid") > subs_before, 1.0, 0.02,
                       "the broker to have the subscription when READY=1 came")
    pub.publish_all(readings(0, 50))
    committed += 50
    m = ns.mark()
    time.sleep(2.6)
    p = pings(ns, m)
    check(len(p) >= 4, "only %d WATCHDOG=1 in 2.6 s (WatchdogSec=1s)" % len(p))
    check(max_gap(p) < WATCHDOG_S, "WATCHDOG=1 gap of %.2fs >= WatchdogSec" % max_gap(p))
    log("watchdog: %d pings in 2.6 s, largest gap %.2fs" % (len(p), max_gap(p)))
    _, _, status = ns.wait(lambda l: l.startswith("STATUS=") and "msg/s" in l, mark, 15,
                           "STATUS= with rates")
    log("status: %s" % status)
    check(re.match(r"STATUS=subscribed; \d+ msg/s, \d+ readings/s; backlog \d+", status),
          "STATUS= does not read as expected: %r" % status)

    def reload(valid):
        harness.write_config(conf, broker.uri, store, facilities(extra_meter=True),
                             extra="" if valid else "nonsense_key: 1\n")
        m = ns.mark()
        t_sent = time.clock_gettime(time.CLOCK_MONOTONIC)
        daemon.proc.send_signal(signal.SIGHUP)
        ns.wait(lambda l: l.startswith("STATUS=") and "reload" in l and
                "reloading" not in l, m, 15, "the reload's STATUS=")
        lines = ns.since(m)
        names = [l for _, _, l in lines if not l.startswith("WATCHDOG")]
        i_rel = names.index("RELOADING=1") if "RELOADING=1" in names else -1
        check(i_rel >= 0, "no RELOADING=1 after SIGHUP: %s" % names)
        mono = [l for l in names[i_rel:] if l.startswith("MONOTONIC_USEC=")]
        check(mono, "RELOADING=1 without MONOTONIC_USEC=: %s" % names)
        usec = int(mono[0].split("=", 1)[1])
        check(abs(usec / 1e6 - t_sent) < 5, "MONOTONIC_USEC=%d is not CLOCK_MONOTONIC now "
              "(%.0f us)" % (usec, t_sent * 1e6))
        # RELOADING=1 and MONOTONIC_USEC= in one datagram, READY=1 in a later one
        dg = {l: n for _, n, l in lines}
        check(dg["RELOADING=1"] == dg[mono[0]], "MONOTONIC_USEC= not sent with RELOADING=1")
        check("READY=1" in names[i_rel:] and dg.get("READY=1", 0) > dg["RELOADING=1"],
              "no READY=1 after RELOADING=1: %s" % names)
        st = [l for l in names[names.index("READY=1"):] if l.startswith("STATUS=")]
        return st[0] if st else ""

    st = reload(True)
    check("reloaded" in st, "STATUS= after a valid reload: %r" % st)
    st = reload(False)
    check("rejected" in st, "STATUS= after an invalid reload: %r" % st)
    check(re.search(r"reload: %s:\d+: " % re.escape(conf), daemon.stderr_text()),
          "the rejected reload logged no FILE:LINE")
    harness.write_config(conf, broker.uri, store, facilities(extra_meter=True))
    m = ns.mark()
    rc, secs = daemon.stop()
    check(rc == 0, "SIGTERM exited %s" % rc)
    check(any(l == "STOPPING=1" for _, _, l in ns.since(m)), "no STOPPING=1 on SIGTERM")
    log("A: READY, STATUS, WATCHDOG, RELOADING/READY x2, STOPPING as expected")

    # ---- B: commits fail for a while: WATCHDOG=1 withheld, then resumed
    mark, _ = start(daemon, broker, ns, failures=5)
    ns.wait(lambda l: l == "READY=1", mark, 15, "READY=1 (B)")
    m = ns.mark()
    t_pub = time.monotonic()
    for k in range(12):  # readings flowing, so that a commit is always due
        pub.publish_all(readings(50 + 5 * k, 5))
        time.sleep(0.5)
    committed += 60
    ns.wait(lambda l: l.startswith("STATUS=unhealthy"), m, 15, "STATUS=unhealthy")
    # (commit retries may back off: 5 failures last 5 s at a fixed 1 s, longer otherwise)
    harness.wait_until(lambda: "watchdog: healthy again" in daemon.stderr_text(), 45, 0.1,
                       "the watchdog to resume")
    t_resumed = time.monotonic()
    time.sleep(1.5)
    p = [t for t in pings(ns, m) if t >= t_pub]
    gap = max_gap(p)
    check(gap > 2 * WATCHDOG_S, "WATCHDOG=1 kept coming while commits failed (largest gap "
          "%.2fs)" % gap)
    after = [t for t in p if t > t_resumed]
    check(len(after) >= 2, "WATCHDOG=1 did not resume after the commits recovered")
    log("B: watchdog withheld for %.1fs while commits failed, then resumed" % gap)
    harness.wait_committed(cli, ["n1"], "1mo", "2025-01-01", "2026-01-01",
                           {"readings": committed}, stable_for=0.3)
    rc, _ = daemon.stop()
    check(rc == 0, "SIGTERM (B) exited %s" % rc)

    # ---- C: a large backlog left in the inbox by kill -9; EXTEND_TIMEOUT_USEC on replay
    mark, _ = start(daemon, broker, ns, failures=1_000_000)
    ns.wait(lambda l: l == "READY=1", mark, 15, "READY=1 (C, commits failing)")
    pub.publish_all([big_message(k) for k in range(BIG_MESSAGES)], timeout=120)
    committed += BIG_MESSAGES * BIG_READINGS
    # let enpid take in what the broker has for it (what it does not take is delivered
    # after the restart: counted all the same)
    time.sleep(2.0)
    daemon.kill9()
    mark, _ = start(daemon, broker, ns)
    t_ready, n_ready, _ = ns.wait(lambda l: l == "READY=1", mark, 60, "READY=1 (C replay)")
    ext = [(t, l) for t, _, l in ns.since(mark) if l.startswith("EXTEND_TIMEOUT_USEC=")]
    check(ext and ext[0][0] <= t_ready, "no EXTEND_TIMEOUT_USEC= before READY=1 during the "
          "replay: %s" % [l for _, _, l in ns.since(mark)][:10])
    check(int(ext[0][1].split("=", 1)[1]) >= 1_000_000, "EXTEND_TIMEOUT_USEC too small: %s"
          % ext[0][1])
    m = re.search(r"replayed (\d+) message", daemon.stderr_text())
    log("C: %d EXTEND_TIMEOUT_USEC= during the replay of %s message(s)" %
        (len(ext), m.group(1) if m else "?"))
    harness.wait_committed(cli, ["n1"], "1mo", "2025-01-01", "2026-01-01",
                           {"readings": committed}, timeout=90, stable_for=0.3)
    m = ns.mark()
    time.sleep(1.2)
    check(len(pings(ns, m)) >= 2, "no WATCHDOG=1 after the replay")
    rc, secs = daemon.stop()
    check(rc == 0, "SIGTERM exited %s" % rc)
    pub.close()
    ns.close()


if __name__ == "__main__":
    harness.main(test, __doc__)
