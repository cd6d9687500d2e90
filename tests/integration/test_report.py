#!/usr/bin/python3
"""test_report - a baseline year and a reporting year published through the real broker
give the programme report SPEC §6 defines.

Seven facilities (Asia/Ho_Chi_Minh; f7 in Europe/Berlin by its own `timezone:`), each an
electricity register read daily at 06:00 local and a daily production delta, 2017 (the
baseline) and 2018 (the programme period):
  f1 sec from its baseline period, meets the target      (a long Vietnamese name)
  f2 fixed sec 412.5 (an energy audit), misses it
  f3 regression, a good fit, meets the target
  f4 regression on 6 baseline production days: poor fit, flagged, still reported
  f5 no baseline: no_data
  f6 sec, no production in 2018: no_data
  f7 sec, Berlin: the period is read in its own zone
Checked against reference_report.py (computed from the published readings through
reference.py, never from enpi's output) to 1e-9 relative: the default period (1mo
windows), a period of whole days given as date-times for one facility, a period running
past the data (projection), a configuration without 1d (regression facilities no_data
with the reason), the table at 100 columns, the CSV, and refusals (a bad, reversed or
unaligned period, an unknown facility, a PDF that cannot be written: nothing printed).
"""

import csv
import datetime as dt
import io
import json
import random
import subprocess

import harness
import reference_report as rr
from harness import check, log
from reference import Reference

RES = ["1d", "1mo"]
ZONE = "Asia/Ho_Chi_Minh"
PROGRAMME = {"name": "Mê Linh cleaner production 2018", "period": ("2018-01-01", "2019-01-01"),
             "target_saving": "8%", "stretch_saving": "13%", "aware_increase_pp": 20,
             "applying_increase_pp": 10}
PROG_NUM = dict(PROGRAMME, target_saving=8, stretch_saving=13)


def facilities():
    base = {"from": "2017-01-01", "to": "2018-01-01"}
    f = rr.Facility
    return [
        f("f1", "Công ty Cổ phần Nhựa Mê Linh và các Đối tác Sản xuất Bao bì", ZONE,
          rr.meters_of("f1"), dict(base, model="sec"), aware="2017-06-01",
          applying="2018-03-15"),
        f("f2", "Xưởng dệt Tiền Phong", ZONE, rr.meters_of("f2"), {"sec": 412.5},
          aware="2018-01-01"),
        f("f3", "Nhà máy giấy Kim Anh", ZONE, rr.meters_of("f3"),
          dict(base, model="regression"), aware="2018-05-01", applying="2018-09-01"),
        f("f4", "Gạch Thanh Lâm", ZONE, rr.meters_of("f4"), dict(base, model="regression")),
        f("f5", "Cơ khí Quang Minh", ZONE, rr.meters_of("f5"), None, aware="2019-01-01"),
        f("f6", "Thực phẩm Đại Thịnh", ZONE, rr.meters_of("f6"), dict(base, model="sec")),
        f("f7", "Berlin Kunststoff GmbH", "Europe/Berlin", rr.meters_of("f7"),
          dict(base, model="sec"), own_zone=True, applying="2017-12-31T23:30:00"),
    ]


def day_values(fid, rnd):
    """(kWh, units) of a day: each facility's own production pattern and energy model."""
    def values(d):
        report_year = d.year == 2018
        wd = d.weekday()
        units = 20 + 3 * (wd % 5) + rnd.uniform(-2, 2)
        if wd == 6:
            units = 0.0
        if fid == "f1":
            kwh = 400 * units + 500 + rnd.uniform(-60, 60)
            return kwh * (0.9 if report_year else 1.0), units
        if fid == "f2":
            return 412.5 * units * (0.97 if report_year else 1.0) + rnd.uniform(0, 50), units
        if fid == "f3":
            kwh = 300 + 35 * units + rnd.uniform(-15, 15)
            return kwh * (0.85 if report_year else 1.0), units
        if fid == "f4":
            # production on six baseline days only
            if not report_year and d.timetuple().tm_yday not in (10, 40, 70, 100, 130, 160):
                units = 0.0
            return 200 + 30 * units + rnd.uniform(-150, 150), units
        if fid == "f6":
            if report_year:
                units = 0.0
            return 150 + 18 * units + rnd.uniform(-5, 5), units
        if fid == "f7":
            kwh = 250 * units + 80 + rnd.uniform(-10, 10)
            return kwh * (0.8 if report_year else 1.0), units
        return 50 + 10 * units, units
    return values


def readings(facs):
    rnd = random.Random(4)
    out = []
    for f in facs:
        out += rr.daily_readings(f, dt.date(2017, 1, 1), dt.date(2018, 12, 31),
                                 day_values(f.id, rnd))
    return out


def write_config(path, broker, store, facs, resolutions=RES):
    harness.write_config(path, broker.uri if broker else "tcp://127.0.0.1:1", store, [],
                         timezone=ZONE, resolutions=resolutions, max_gap="2d",
                         extra=rr.config_yaml(facs, PROGRAMME))


def check_report(cli, ref, facs, what, *args, facilities_in=None, period=None):
    got = cli.json("report", *args)
    want = rr.report(ref, facilities_in or facs, PROG_NUM, period)
    mm = harness.Mismatches()
    rr.compare(got, want, mm, what)
    mm.raise_if_any(what)
    return got


def display_width(s):
    import unicodedata
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def test(env):
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    write_config(conf, broker, store, facs)
    ref = Reference({f.id: f.zone for f in facs},
                    harness.reference_meters([f.harness_dict() for f in facs]), RES,
                    allowed_lateness="1h", max_gap="2d")
    seq = readings(facs)
    for mid, t, v in sorted(seq, key=lambda r: r[1]):
        check(ref.feed(mid, t, v) == "applied", "test data must be clean: %s %d" % (mid, t))
    check(ref.totals("1mo")["readings"] == len(seq), "every reading counts once")
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    msgs = rr.batched_messages(seq)
    pub = harness.Publisher(broker.port, inflight=200)
    pub.publish_all(msgs)
    pub.close()
    log("published %d readings in %d messages; waiting for enpid" % (len(seq), len(msgs)))
    cli = env.cli(store)
    rr.wait_all_applied(cli, len(seq))

    got = check_report(cli, ref, facs, "default period")
    st = {x["facility"]: x["status"] for x in got["facilities"]}
    log("statuses: %s" % st)
    check(set(st.values()) == {"met", "not_met", "stretch_met", "no_data"} and
          st["f5"] == st["f6"] == "no_data", "the data was built for every status: %s" % st)
    f4 = got["facilities"][3]
    check(f4["poor_fit"] is True and f4["regression"]["n"] == 6 and f4["status"] != "no_data",
          "f4's fit on 6 days must be flagged, not hidden: %s" % f4)
    check(got["facilities"][2]["poor_fit"] is False, "f3's fit is good")
    check(got["period"] == {"from": "2018-01-01T00:00:00+07:00",
                            "to": "2019-01-01T00:00:00+07:00"}, "period %s" % got["period"])
    check(got["facilities"][6]["from"] == "2018-01-01T00:00:00+01:00",
          "f7's period is read in Berlin: %s" % got["facilities"][6]["from"])
    check(got["programme"]["projection"] is None, "the data covers the period: no projection")
    for x in got["facilities"]:
        if x["status"] == "no_data":
            check(x["no_data_reason"], "%s: no_data without a reason" % x["facility"])
    log("default period matches the oracle: programme %s" % json.dumps(
        {k: got["programme"][k] for k in ("with_data", "met", "stretch_met", "saving_pct")}))

    # whole days as date-times, one facility (the programme then covers it alone)
    period = ("2018-03-05T00:00:00", "2018-06-01")
    check_report(cli, ref, facs, "f3, days", "--facility", "f3", "--period", "..".join(period),
                 facilities_in=[facs[2]], period=period)
    check_report(cli, ref, facs, "all, days", "--period", "2018-03-05..2018-06-01",
                 period=("2018-03-05", "2018-06-01"))
    # a period running past the data: projection to its end
    period = ("2018-01-01", "2019-07-01")
    got = check_report(cli, ref, facs, "projection", "--period", "..".join(period),
                       period=period)
    pr = got["programme"]["projection"]
    check(pr is not None and pr["projected"] == 5, "projection: %s" % pr)
    log("projection to 2019-07-01 matches: saved %.0f kWh -> %.0f kWh" %
        (got["programme"]["saved_kwh"], pr["saved_kwh"]))

    # without 1d configured the regression facilities are no_data, with the reason
    alt = env.path("no-1d.yaml")
    write_config(alt, None, store, facs, resolutions=["1mo"])
    p = subprocess.run([env.args.enpi, "--config", alt, "report", "--format", "json"],
                               capture_output=True, text=True)
    check(p.returncode == 0, "report without 1d: %s" % p.stderr)
    noday = {x["facility"]: x for x in json.loads(p.stdout)["facilities"]}
    for fid in ("f3", "f4"):
        check(noday[fid]["status"] == "no_data" and "1d" in noday[fid]["no_data_reason"],
              "%s without 1d: %s" % (fid, noday[fid]))
    check(noday["f1"]["status"] == "met", "sec facilities need no 1d")

    # the table: 100 columns, names cut by display width, marks and reasons shown
    p = cli.run("report", "--format", "table")
    check(p.returncode == 0, "table: %s" % p.stderr)
    lines = p.stdout.splitlines()
    wide = [ln for ln in lines if display_width(ln) > 100]
    check(not wide, "table lines over 100 columns:\n" + "\n".join(wide))
    check(any(ln.startswith("f1 ") and "Công ty Cổ phần" in ln and ln.endswith("…")
              for ln in lines), "f1's long name should be cut with an ellipsis:\n" + p.stdout)
    check(any(ln.startswith("f4 ") and " reg* " in ln for ln in lines), "f4's poor fit mark")
    check("poor fit" in p.stdout and "no production in the period" in p.stdout and
          "no baseline configured" in p.stdout, "table footer:\n" + p.stdout)
    log("table:\n" + p.stdout)
    # CSV: the facilities, a blank line, the programme
    p = cli.run("report", "--format", "csv")
    check(p.returncode == 0, "csv: %s" % p.stderr)
    parts = p.stdout.replace("\r\n", "\n").split("\n\n")  # text mode may translate CRLF
    check(len(parts) == 2, "csv: two tables separated by a blank line")
    rows = list(csv.DictReader(io.StringIO(parts[0])))
    check([r["facility"] for r in rows] == [f.id for f in facs], "csv facilities")
    check(rows[0]["name"] == facs[0].name, "csv keeps the whole name")
    check(rows[2]["regression_n"] == "365" or int(rows[2]["regression_n"]) > 300, "csv reg n")
    prog = list(csv.DictReader(io.StringIO(parts[1])))
    check(len(prog) == 1 and prog[0]["facilities"] == "7", "csv programme: %s" % prog)
    # errors
    p = cli.run("report", "--period", "2018-01-01")
    check(p.returncode == 2 and "FROM..TO" in p.stderr, "bad period: %s" % p.stderr)
    p = cli.run("report", "--facility", "nope")
    check(p.returncode == 1 and "nope" in p.stderr, "unknown facility: %s" % p.stderr)
    p = cli.run("report", "--period", "2018-01-01T10:07..2018-02-01")
    check(p.returncode == 2 and "window boundaries" in p.stderr, "unaligned: %s" % p.stderr)
    p = cli.run("report", "--period", "2018-02-01..2018-01-01")
    check(p.returncode == 2 and "not before" in p.stderr, "reversed period: %s" % p.stderr)
    p = cli.run("report", "--pdf", env.path("no-such-dir", "r.pdf"))
    check(p.returncode == 1 and p.stdout == "", "--pdf that cannot be written: exit 1, "
          "nothing printed (%d, %r, %s)" % (p.returncode, p.stdout[:80], p.stderr))
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
