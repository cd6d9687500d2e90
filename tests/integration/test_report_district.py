#!/usr/bin/python3
"""test_report_district - a district of 30 facilities, tried as a new user would: a year of
baseline (2017) and a year of reporting (2018) published through the real broker give a
report whose every figure matches an independent computation (reference_report.py).

The facilities mix both models (sec from a baseline period, a fixed sec from an audit,
regression), three time zones, savings from -5 % to 25 % (every status), programme
registry dates before, inside and after the period, and the no_data cases: no baseline,
no production in 2018, meters that only started in 2018 (a baseline without data), a
regression on too few production days (flagged as a poor fit, still reported). Daily
readings, JSON batches of 60 readings per message, resolutions [1d, 1mo].
"""

import datetime as dt
import random

import harness
import reference_report as rr
from harness import check, log
from reference import Reference

RES = ["1d", "1mo"]
ZONE = "Asia/Ho_Chi_Minh"
PROGRAMME = {"name": "Chương trình sản xuất sạch hơn huyện Mê Linh 2018",
             "period": ("2018-01-01", "2019-01-01"), "target_saving": 8,
             "stretch_saving": 13, "aware_increase_pp": 20, "applying_increase_pp": 10}

NAMES = ["Công ty Cổ phần Nhựa Mê Linh", "Xưởng dệt Tiền Phong", "Nhà máy giấy Kim Anh",
         "Gạch Thanh Lâm", "Cơ khí Quang Minh", "Thực phẩm Đại Thịnh", "May mặc Tráng Việt",
         "Bao bì Hoàng Kim", "Gỗ Văn Khê", "Thép Tam Đồng", "Sơn Chu Phan", "Nước giải khát Tự Lập",
         "Gốm sứ Liên Mạc", "Dược phẩm Thạch Đà", "Điện tử Hoàng Kim", "Kính Mê Linh",
         "Giày da Chi Đông", "Hóa chất Kim Hoa", "In ấn Vạn Yên", "Bê tông Tiến Thịnh",
         "Chế biến nông sản Tiến Thắng", "Phân bón Thanh Lâm", "Cao su Đại Thịnh",
         "Linh kiện ô tô Quang Minh", "Mỹ phẩm Tam Đồng", "Xi măng Chu Phan",
         "Dệt nhuộm Tráng Việt", "Nhôm kính Liên Mạc", "Bánh kẹo Văn Khê",
         "Công ty TNHH Một thành viên Cơ điện lạnh và Thiết bị Công nghiệp Mê Linh"]

NO_BASELINE = {7, 19}
NO_PRODUCTION_2018 = {23}
STARTS_2018 = {28}
FEW_DAYS = {12}


def plan():
    """(Facility, first day of data, daily values) for the 30 facilities."""
    rnd = random.Random(30)
    out = []
    for i in range(30):
        fid = "mp%02d" % (i + 1)
        zone = {5: "Asia/Tokyo", 17: "Europe/Berlin"}.get(i, ZONE)
        kind = i % 5
        base = {"from": "2017-01-01", "to": "2018-01-01"}
        if i in NO_BASELINE:
            baseline = None
        elif kind == 1:
            baseline = {"sec": round(180 + 7 * i, 1)}
        elif kind in (2, 4) or i in FEW_DAYS:
            baseline = dict(base, model="regression")
        else:
            baseline = dict(base, model="sec")
        aware = [None, "2016-05-01", "2018-01-01", "2018-06-15", "2019-01-01",
                 "2017-12-31T23:59:59"][i % 6]
        applying = [None, None, "2018-02-01", "2017-03-01", "2018-12-31"][i % 5]
        f = rr.Facility(fid, NAMES[i], zone, rr.meters_of(fid), baseline, aware=aware,
                        applying=applying, own_zone=zone != ZONE)
        factor = 1.05 - 0.3 * ((i * 7) % 30) / 29.0  # this year's energy vs the baseline's
        a = 150 + 20 * i
        b = 30 + 11 * (i % 9)
        fixed = baseline["sec"] if baseline and "sec" in baseline else None
        phase = rnd.random() * 7

        def values(d, i=i, a=a, b=b, fixed=fixed, factor=factor, phase=phase,
                   r=random.Random(i)):
            units = 15 + 5 * abs(((d.toordinal() + phase) % 7) - 3) + r.uniform(-2, 2)
            if d.weekday() == 6:
                units = 0.0
            report_year = d.year == 2018
            if i in NO_PRODUCTION_2018 and report_year:
                units = 0.0
            if i in FEW_DAYS and not report_year:
                # production on 8 baseline days only: a fit on n < 10 days
                units = 20.0 + d.month + r.uniform(-1, 1) if d.day == 15 and d.month <= 8 else 0.0
            kwh = (fixed * units if fixed else a + b * units) + r.uniform(-0.05, 0.05) * a
            return max(kwh, 0.0) * (factor if report_year else 1.0), units

        first = dt.date(2018, 1, 1) if i in STARTS_2018 else dt.date(2017, 1, 1)
        out.append((f, first, values))
    return out


def test(env):
    broker = env.broker()
    p = plan()
    facs = [f for f, _, _ in p]
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, [], timezone=ZONE, resolutions=RES,
                         max_gap="2d", extra=rr.config_yaml(facs, PROGRAMME))
    seq = []
    for f, first, values in p:
        seq += rr.daily_readings(f, first, dt.date(2018, 12, 31), values)
    ref = Reference({f.id: f.zone for f in facs},
                    harness.reference_meters([f.harness_dict() for f in facs]), RES,
                    allowed_lateness="1h", max_gap="2d")
    for mid, t, v in sorted(seq, key=lambda r: r[1]):
        check(ref.feed(mid, t, v) == "applied", "test data must be clean: %s %d" % (mid, t))
    check(ref.totals("1mo")["readings"] == len(seq), "every reading counts once")
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    msgs = rr.batched_messages(seq)
    pub = harness.Publisher(broker.port, inflight=500)
    pub.publish_all(msgs)
    pub.close()
    log("published %d readings of 30 facilities in %d messages" % (len(seq), len(msgs)))
    cli = env.cli(store)
    rr.wait_all_applied(cli, len(seq))

    got = cli.json("report")
    want = rr.report(ref, facs, PROGRAMME)
    mm = harness.Mismatches(limit=60)
    rr.compare(got, want, mm, "district")
    mm.raise_if_any("the district's report vs the independent computation")
    st = {x["facility"]: x["status"] for x in got["facilities"]}
    counts = {s: list(st.values()).count(s) for s in set(st.values())}
    log("every figure of 30 facilities and the programme matches; statuses %s" % counts)
    check(set(counts) == {"met", "not_met", "stretch_met", "no_data"}, "every status: %s" % st)
    nd = {x["facility"]: x["no_data_reason"] for x in got["facilities"]
          if x["status"] == "no_data"}
    want_nd = {"mp%02d" % (i + 1) for i in NO_BASELINE | NO_PRODUCTION_2018 | STARTS_2018}
    check(want_nd <= set(nd), "no_data facilities %s, expected at least %s" % (nd, want_nd))
    check(got["programme"]["facilities"] == 30 and
          got["programme"]["with_data"] == 30 - len(nd), "no_data counted, never dropped")
    few = got["facilities"][min(FEW_DAYS)]
    check(few["poor_fit"] is True and few["regression"]["n"] == 8, "poor fit: %s" % few)
    log("no_data: %s" % nd)
    prog = got["programme"]
    log("programme: %d/%d with data, met %d (%.1f %%), stretch %d, saved %.0f kWh (%.2f %%), "
        "aware %+.1f pp, applying %+.1f pp" % (
            prog["with_data"], prog["facilities"], prog["met"], prog["met_pct"],
            prog["stretch_met"], prog["saved_kwh"], prog["saving_pct"],
            prog["aware"]["increase_pp"], prog["applying"]["increase_pp"]))

    # the table a person reads: every facility, at most 100 columns
    t = cli.run("report")
    check(t.returncode == 0, "table: %s" % t.stderr)
    lines = t.stdout.splitlines()
    check(sum(1 for ln in lines if ln[:5] in {f.id + " " for f in facs}) == 30, "30 rows")
    over = [ln for ln in lines if len(ln) > 100]  # NFC names: one column per code point
    check(not over, "table lines over 100 columns:\n" + "\n".join(over))
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
