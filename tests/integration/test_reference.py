#!/usr/bin/python3
"""test_reference - checks reference.py itself against values worked out by hand.

The integration tests trust reference.py as their oracle for SPEC §5, so it gets its own
small test: window boundaries on DST days and in a UTC+05:45 zone, apportioning, scale and
to_kwh, rollover, reset, duplicates, late and too-late readings, estimated parts, facility
sums and SEC. Needs no broker and no binaries. Exit 0 when all pass.
"""

import datetime as dt
import sys

import reference as R

H = 3_600_000
MIN = 60_000


def ms(iso):
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def eq(a, b, what):
    ok = abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-12) if isinstance(a, float) or \
        isinstance(b, float) else a == b
    if not ok:
        raise AssertionError("%s: got %r, want %r" % (what, a, b))


def test_windows():
    ber = R.Zone("Europe/Berlin")
    # 2024-03-31: 23 hours; 2024-10-27: 25 hours
    t = ms("2024-03-31T12:00:00+02:00")
    eq(R.window_containing(ber, R.DAY_MS, t),
       (ms("2024-03-31T00:00:00+01:00"), ms("2024-04-01T00:00:00+02:00")), "spring day")
    t = ms("2024-10-27T12:00:00+01:00")
    s, e = R.window_containing(ber, R.DAY_MS, t)
    eq(e - s, 25 * H, "autumn day length")
    # the hour after 01:00+01:00 on the spring day ends at 03:00+02:00 (one real hour)
    eq(R.window_containing(ber, H, ms("2024-03-31T01:30:00+01:00")),
       (ms("2024-03-31T01:00:00+01:00"), ms("2024-03-31T03:00:00+02:00")), "spring 1h")
    # 25 one-hour windows on the autumn day
    n = sum(1 for _ in R.windows_overlapping(ber, H, *R.window_containing(ber, R.DAY_MS, t)))
    eq(n, 25, "hours in the 25-hour day")
    eq(R.window_containing(ber, None, ms("2024-03-31T23:59:00+02:00")),
       (ms("2024-03-01T00:00:00+01:00"), ms("2024-04-01T00:00:00+02:00")), "March")
    ktm = R.Zone("Asia/Kathmandu")
    eq(R.window_containing(ktm, H, ms("2024-05-01T10:00:00+00:00"))[0],
       ms("2024-05-01T09:15:00+00:00"), "hour aligned to local midnight at +05:45")
    eq(R.window_containing(ktm, 15 * MIN, ms("2024-05-01T10:01:00+00:00"))[0],
       ms("2024-05-01T10:00:00+00:00"), "15m at +05:45")
    # a day whose midnight is skipped (Santiago, 2024-09-08 00:00 -> 01:00)
    scl = R.Zone("America/Santiago")
    eq(scl.day_start(ms("2024-09-08T12:00:00-03:00")), ms("2024-09-08T01:00:00-03:00"),
       "day start after a gap at midnight")


def ref_one(meter, **kw):
    return R.Reference({"f": "UTC"}, [meter], ["15m", "1h", "1d", "1mo"], **kw)


def rows(ref, mid, res):
    return {r["start"]: r for r in ref.meter_rows(mid, res)}


def test_cumulative():
    t0 = ms("2024-01-10T10:00:00+00:00")
    ref = ref_one(R.MeterCfg("f/em", "f", scale=0.001, to_kwh=1.0))
    eq(ref.feed("f/em", t0, 1000.0), "applied", "first")
    eq(ref.feed("f/em", t0 + 30 * MIN, 4000.0), "applied", "second")  # 3 kWh over 30 min
    h = rows(ref, "f/em", "1h")[t0]
    eq(h["value"], 3.0, "1h value")
    eq(h["readings"], 2, "readings incl. the first")
    q = rows(ref, "f/em", "15m")
    eq(q[t0]["value"], 1.5, "first quarter")
    eq(q[t0 + 15 * MIN]["value"], 1.5, "second quarter")
    eq(q[t0 + 30 * MIN]["value"], 0.0, "reading at a window start adds nothing to it")
    eq(q[t0 + 30 * MIN]["readings"], 1, "but its reading counts there")
    eq(ref.feed("f/em", t0 + 30 * MIN, 4000.0), "duplicate", "same timestamp")
    eq(ref.feed("f/em", t0 + 20 * MIN, 3000.0), "late", "earlier timestamp")
    eq(ref.feed("f/em", t0 + 40 * MIN, 1000.0), "applied", "reset")   # d = 1000 Wh
    q = rows(ref, "f/em", "15m")
    eq(q[t0 + 30 * MIN]["value"], 1.0, "reset reading's value")
    eq(q[t0 + 30 * MIN]["resets"], 1, "reset counted")
    eq(q[t0 + 30 * MIN]["duplicates"], 1, "duplicate counted in its window")
    eq(q[t0 + 15 * MIN]["late"], 1, "late counted in its window")
    # a 3-hour gap: estimated, spread over four 1h windows
    eq(ref.feed("f/em", t0 + 40 * MIN + 3 * H, 4000.0), "applied", "after gap")
    h = rows(ref, "f/em", "1h")
    eq(h[t0 + H]["estimated"], 1.0, "estimated hour")
    eq(h[t0]["estimated"], 1 / 3.0, "estimated part of the first hour (20 of 180 min)")
    eq(sum(r["value"] for r in h.values()), 7.0, "total: 3 + 1 (reset) + 3")


def test_rollover_and_max_gap_edge():
    t0 = ms("2024-01-10T00:00:00+00:00")
    ref = ref_one(R.MeterCfg("f/p", "f", kind="production", rollover=1000))
    ref.feed("f/p", t0, 990.0)
    ref.feed("f/p", t0 + H, 15.0)               # wraps: 25 units over exactly max_gap
    h = rows(ref, "f/p", "1h")[t0]
    eq(h["value"], 25.0, "rollover")
    eq(h["resets"], 0, "a rollover is no reset")
    eq(h["estimated"], 0.0, "exactly max_gap is not estimated")
    eq(ref.rollovers, 1, "rollover counted")


def test_delta():
    t0 = ms("2024-01-10T00:00:00+00:00")
    ref = ref_one(R.MeterCfg("f/g", "f", reading="delta", interval="15m", to_kwh=10.0))
    eq(ref.feed("f/g", t0 + 15 * MIN, 1.0), "applied", "first with interval applies")
    eq(rows(ref, "f/g", "15m")[t0]["value"], 10.0, "to_kwh")
    ref.feed("f/g", t0 + 45 * MIN, 2.0)
    eq(ref.feed("f/g", t0 + 30 * MIN, 0.5), "late", "late within lateness applies")
    eq(ref.feed("f/g", t0 + 30 * MIN, 0.5), "duplicate", "second delivery")
    eq(ref.feed("f/g", t0 + 45 * MIN, 2.0), "duplicate", "newest again")
    ref.feed("f/g", t0 + 3 * H, 1.0)
    eq(ref.feed("f/g", t0 + H, 9.0), "rejected", "older than allowed_lateness")
    h = rows(ref, "f/g", "1h")
    eq(h[t0]["value"], 35.0, "1h: 10 + 5 + 20")
    eq(h[t0]["late"], 1, "late counted in its window")
    eq(h[t0 + H]["late"], 1, "too late counted in its window")
    eq(h[t0 + H]["value"], 0.0, "too late adds no value")
    eq(ref.state["f/g"].rejected, 1, "too late is rejected")
    # since-previous delta: first reading only sets state; a long interval is estimated
    ref = ref_one(R.MeterCfg("f/s", "f", reading="delta"))
    ref.feed("f/s", t0, 7.0)
    ref.feed("f/s", t0 + 2 * H, 4.0)
    h = rows(ref, "f/s", "1h")
    eq(h[t0]["value"], 2.0, "spread over 2 h")
    eq(h[t0]["estimated"], 2.0, "2 h > max_gap: estimated")
    eq(h[t0]["readings"], 1, "the state-only first reading counts as a reading")


def test_facility():
    t0 = ms("2024-01-10T00:00:00+00:00")
    ref = R.Reference({"f": "UTC"}, [R.MeterCfg("f/e", "f"), R.MeterCfg("f/g", "f"),
                                     R.MeterCfg("f/p", "f", kind="production")], ["1h"])
    for mid, v0, v1 in (("f/e", 0.0, 10.0), ("f/g", 5.0, 7.0), ("f/p", 0.0, 4.0)):
        ref.feed(mid, t0, v0)
        ref.feed(mid, t0 + 30 * MIN, v1)
    r = ref.facility_rows("f", "1h")[0]
    eq(r["energy_kwh"], 12.0, "facility energy")
    eq(r["units"], 4.0, "facility units")
    eq(r["sec"], 3.0, "SEC")
    eq(r["readings"], 6, "facility readings")
    ref2 = R.Reference({"f": "UTC"}, [R.MeterCfg("f/e", "f")], ["1h"])
    ref2.feed("f/e", t0, 0.0)
    ref2.feed("f/e", t0 + MIN, 1.0)
    eq(ref2.facility_rows("f", "1h")[0]["sec"], None, "no units: SEC null")
    eq(ref2.is_final("f", t0 + H, t0 + 2 * H + 1), True, "final by the clock")
    eq(ref2.is_final("f", t0 + H, t0 + 2 * H), False, "not final exactly at the edge")


def main():
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print("ok   %s" % name)
            except AssertionError as e:
                failed += 1
                print("FAIL %s: %s" % (name, e))
    print("test_reference: %s" % ("FAILED" if failed else "passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
