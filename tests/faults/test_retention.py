#!/usr/bin/python3
"""test_retention - storage.retention deletes expired 15m windows and keeps the rest.

Run 1 (no retention): one cumulative meter reports every 15 minutes over the last three
days; the test waits until everything is committed and records every 15m, 1h and 1d row.
Its first two commits fail (ENPID_TEST_COMMIT_FAILURES, a RocksDB write error as storage
reports it): enpid logs it, replaces the RocksDB instance, retries and loses nothing.
Run 2 (same store, `retention: { 15m: 1d }`, ENPID_TEST_RETENTION_NOW=300 so a sweep runs
right away and every 300 ms): every 15m window that ended more than a day ago disappears
from `enpi query`, the younger 15m windows and every 1h and 1d row stay exactly as they
were, and enpid logs what it removed. Run 3 (one sweep at start, the next in 10 minutes):
a second meter starts reporting two days back; its readings reach 1h and 1d, but the
commit creates no 15m row older than the retention.
"""
# ctest-timeout: 120

import os

import harness
from harness import check, log

MIN = 60_000
DAY = 86_400_000
FROM, TO = "2000-01-01", "2100-01-01"


def facilities():
    return [{"id": "r1", "name": "Retention", "meters": [
        {"id": "r1/em", "kind": "energy", "carrier": "electricity", "reading": "cumulative"},
        {"id": "r1/em2", "kind": "energy", "carrier": "electricity", "reading": "cumulative"},
    ]}]


def with_retention(path, text, retention):
    lines = text.splitlines()
    out = []
    for ln in lines:
        out.append(ln)
        if ln.startswith("  commit_interval:"):
            out.append("  retention: %s" % retention)
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def rows(cli, meter, res):
    """The meter's stored windows at res: {start: row}, rows without readings left out
    (the CLI may list empty windows of a range)."""
    got = cli.query("meter", meter, res, FROM, TO)
    out = {}
    for r in got:
        if (r.get("readings") or 0) == 0 and not r.get("value"):
            continue
        out[harness.parse_time(r["start"])[0]] = r
    return out


def ends(rows_by_start):
    return {s: harness.parse_time(r["end"])[0] for s, r in rows_by_start.items()}


def test(env):
    broker = env.broker()
    store = env.path("store")
    cfg = env.path("enpid.yaml")
    cfg2 = env.path("enpid-retention.yaml")
    text = harness.write_config(cfg, broker.uri, store, facilities(), max_gap="1d")
    with_retention(cfg2, text, "{ 15m: 1d }")

    now = harness.now_ms()
    t0 = (now - 3 * DAY) // (15 * MIN) * (15 * MIN)
    msgs = []
    value = 1000.0
    t = t0 + 7 * MIN
    while t < now - 5 * MIN:
        value += 1.25
        msgs.append(harness.json_message("enpi/r1/em", t, value))
        t += 15 * MIN
    n_readings = len(msgs)

    # ---- run 1: everything stored; the first two commits fail (injected RocksDB write
    # errors): enpid replaces the RocksDB instance, retries the same batch, loses nothing
    os.environ["ENPID_TEST_COMMIT_FAILURES"] = "2"
    d = env.daemon(cfg).start(broker)
    del os.environ["ENPID_TEST_COMMIT_FAILURES"]
    d.wait_ready(broker)
    pub = harness.Publisher(broker.port)
    pub.publish_all(msgs)
    cli = env.cli(store)
    expected = {"readings": n_readings, "late": 0, "duplicates": 0, "resets": 0}
    harness.wait_committed(cli, ["r1"], "1d", FROM, TO, expected, timeout=40, stable_for=0.5)
    before = {res: rows(cli, "r1/em", res) for res in ("15m", "1h", "1d")}
    rc, _ = d.stop()
    check(rc == 0, "enpid run 1 exited %s" % rc)
    text = d.stderr_text()
    check("STORAGE FAILING" in text and "storage: reopened" in text and
          "storage writable again" in text,
          "run 1 did not log the failing commits, the reopen and the recovery")
    check(sum(r["readings"] for r in before["15m"].values()) == n_readings,
          "run 1 lost readings over the failed commits")
    cutoff_run1 = harness.now_ms() - DAY
    old15 = [s for s, e in ends(before["15m"]).items() if e <= cutoff_run1]
    check(len(old15) > 150, "run 1 stored only %d 15m windows older than a day" % len(old15))
    log("run 1: %d 15m windows, %d of them older than a day" % (len(before["15m"]),
                                                                len(old15)))

    # ---- run 2: retention 15m: 1d, sweeping right away
    os.environ["ENPID_TEST_RETENTION_NOW"] = "300"
    d2 = env.daemon(cfg2).start(broker)
    d2.wait_ready(broker)

    def swept():
        cut = harness.now_ms() - DAY
        got = ends(rows(cli, "r1/em", "15m"))
        return all(e > cut for e in got.values()) and len(got) > 0
    harness.wait_until(swept, 30, 0.3, "the expired 15m windows to disappear")
    cut = harness.now_ms() - DAY
    after = {res: rows(cli, "r1/em", res) for res in ("15m", "1h", "1d")}
    # the younger 15m windows are untouched (allowing the ones that expired meanwhile)
    for s, r in before["15m"].items():
        e = harness.parse_time(r["end"])[0]
        if e > cut + 60_000:
            check(after["15m"].get(s) == r, "15m window %s changed or vanished: %r -> %r" %
                  (r["start"], r, after["15m"].get(s)))
    for s in after["15m"]:
        check(s in before["15m"], "a 15m window appeared: %r" % after["15m"][s])
    check(len(after["15m"]) < len(before["15m"]) - 150, "too few 15m windows removed")
    for res in ("1h", "1d"):
        check(after[res] == before[res], "%s rows changed by the sweep" % res)
    log_text = d2.stderr_text()
    check("retention: removed" in log_text, "enpid did not log what it removed")

    rc, _ = d2.stop()
    check(rc == 0, "enpid run 2 exited %s" % rc)

    # ---- run 3: one sweep at start-up, the next in 10 minutes; a new meter reports from
    # two days back: 1h/1d get its readings, 15m only the windows within the retention
    # (the commit filters them: no sweep runs meanwhile to clean up)
    os.environ["ENPID_TEST_RETENTION_NOW"] = "600000"
    d3 = env.daemon(cfg2).start(broker)
    d3.wait_ready(broker)
    t = (now - 2 * DAY) // (15 * MIN) * (15 * MIN) + 3 * MIN
    late = []
    v = 50.0
    while t < now - 5 * MIN:
        v += 2.0
        late.append(harness.json_message("enpi/r1/em2", t, v))
        t += 60 * MIN
    pub.publish_all(late)

    def em2_hours():
        return sum(r.get("readings") or 0 for r in rows(cli, "r1/em2", "1h").values())
    harness.wait_until(lambda: em2_hours() == len(late), 30, 0.3, "r1/em2 to be committed")
    cut = harness.now_ms() - DAY
    em2_15 = ends(rows(cli, "r1/em2", "15m"))
    check(len(em2_15) > 0, "r1/em2 has no 15m windows at all")
    stale = [e for e in em2_15.values() if e <= cut]
    check(not stale, "%d expired 15m windows of r1/em2 were created" % len(stale))
    em2_1h = ends(rows(cli, "r1/em2", "1h"))
    check(min(em2_1h.values()) < cut - DAY // 2, "r1/em2's old 1h windows are missing")
    check("late rollup delta(s) fall in windows past storage.retention" in d3.stderr_text(),
          "enpid did not log the late deltas it dropped")
    pub.close()
    rc, _ = d3.stop()
    check(rc == 0, "enpid run 3 exited %s" % rc)
    del os.environ["ENPID_TEST_RETENTION_NOW"]


if __name__ == "__main__":
    harness.main(test, __doc__)
