"""reference_report.py - an independent Python model of the programme report (SPEC §6).

Computes every figure of `enpi report --format json` from the readings the test
published, through reference.py's rollups (never from enpi's output), written from the
SPEC without looking at enpi's C code:
  - a period FROM..TO is half-open and read in each facility's zone (zoneinfo);
  - energy(P) and units(P) are sums of the facility's 1d rows whose start lies in P (enpi
    may sum coarser windows; the totals agree to rounding);
  - model sec: baseline SEC = energy / units over the baseline period, or the fixed sec;
    expected = baseline SEC x units(P);
  - model regression: statistics.linear_regression over the baseline days with U_d > 0,
    R² = statistics.correlation(U, E)²; expected = Σ (a + b U_d) over the days of P whose
    1d row has readings; baseline_sec = expected / units(P); poor fit: n < 10 or R² < 0.5;
  - saved = expected - energy(P), saving % = 100 saved / expected; status by target and
    stretch (>=); no_data without a baseline, a baseline without data or production, no
    production in P, or a regression that cannot be fitted;
  - programme: counts, shares of the facilities with data, sums over them, and aware /
    applying counts at the period start (since <= from) and end (since < to) with the
    increase in percentage points of all facilities;
  - projection (enpi's documented rule): a facility whose data (the oldest newest reading
    over its meters that reported) ends at e < to covers c = (e - from) / (to - from) of
    the period; its energy, expected and saved are divided by c.
Also writes the YAML of the facilities, baselines and programme for enpid.
"""

import datetime as _dt
import math
import statistics
from zoneinfo import ZoneInfo

import harness
from reference import Zone


def instant(zone_name, text):
    """UTC ms of an ISO 8601 date or date-time, read in zone_name unless it has an offset."""
    d = _dt.datetime.fromisoformat(text)
    if d.tzinfo is None:
        d = d.replace(tzinfo=ZoneInfo(zone_name))
    return int(d.timestamp() * 1000)


class Facility:
    """A facility of the report: id, name, zone, meters (dicts as harness takes them),
    baseline: None | {"sec": x} | {"from", "to", "model"}; aware/applying dates or None."""

    def __init__(self, fid, name, zone, meters, baseline=None, aware=None, applying=None,
                 own_zone=False, product_unit="t"):
        self.id = fid
        self.name = name
        self.zone = zone
        self.meters = meters
        self.baseline = baseline
        self.aware = aware
        self.applying = applying
        self.own_zone = own_zone  # write `timezone:` for it
        self.product_unit = product_unit

    def harness_dict(self):
        return {"id": self.id, "name": self.name, "timezone": self.zone, "meters": self.meters}


def config_yaml(facilities, programme):
    """The facilities: list and programme: mapping of an enpid config, as text to append
    after harness.write_config(..., facilities=[])."""
    out = []
    for f in facilities:
        out.append("  - id: %s" % harness._yaml_scalar(f.id))
        out.append("    name: %s" % harness._yaml_scalar(f.name))
        out.append("    product_unit: %s" % harness._yaml_scalar(f.product_unit))
        if f.own_zone:
            out.append("    timezone: %s" % f.zone)
        if f.aware:
            out.append("    aware_since: %s" % f.aware)
        if f.applying:
            out.append("    applying_since: %s" % f.applying)
        if f.baseline is not None:
            out.append("    baseline: " + harness._yaml_flow(f.baseline).replace('"', ""))
        out.append("    meters:")
        for m in f.meters:
            out.append("      - " + harness._yaml_flow(m))
    out.append("programme:")
    for k, v in programme.items():
        if k == "period":
            out.append("  period: { from: %s, to: %s }" % v)
        else:
            out.append("  %s: %s" % (k, harness._yaml_scalar(v)))
    return "\n".join(out) + "\n"


def _days(ref, fid, frm, to):
    return [r for r in ref.facility_rows(fid, "1d") if frm <= r["start"] < to]


def _status(pct, target, stretch):
    if pct >= stretch:
        return "stretch_met"
    if pct >= target:
        return "met"
    return "not_met"


def facility_report(ref, f, period, target, stretch):
    frm, to = instant(f.zone, period[0]), instant(f.zone, period[1])
    days = _days(ref, f.id, frm, to)
    energy = sum(r["energy_kwh"] for r in days)
    units = sum(r["units"] for r in days)
    out = {"facility": f.id, "name": f.name, "model": None, "energy_kwh": energy,
           "units": units, "sec": energy / units if units != 0 else None,
           "baseline_sec": None, "expected_kwh": None, "saved_kwh": None,
           "saving_pct": None, "status": "no_data", "regression": None, "poor_fit": None,
           "from": harness.iso_of(Zone(f.zone), frm), "to": harness.iso_of(Zone(f.zone), to),
           "_from": frm, "_to": to}
    b = f.baseline
    if b is None:
        return out
    expected = None
    if "sec" in b:
        out["model"] = "sec"
        out["baseline_sec"] = float(b["sec"])
    else:
        bfrom, bto = instant(f.zone, b["from"]), instant(f.zone, b["to"])
        bdays = _days(ref, f.id, bfrom, bto)
        if b.get("model", "sec") == "sec":
            out["model"] = "sec"
            bu = sum(r["units"] for r in bdays)
            be = sum(r["energy_kwh"] for r in bdays)
            if not bdays or bu <= 0:
                return out
            out["baseline_sec"] = be / bu
        else:
            out["model"] = "regression"
            pts = [(r["units"], r["energy_kwh"]) for r in bdays if r["units"] > 0]
            n = len(pts)
            out["regression"] = {"a": None, "b": None, "r2": None, "n": n}
            if n < 2 or len(set(u for u, _ in pts)) < 2:
                out["poor_fit"] = True
                return out
            u = [p[0] for p in pts]
            e = [p[1] for p in pts]
            slope, intercept = statistics.linear_regression(u, e)
            r2 = statistics.correlation(u, e) ** 2
            out["regression"] = {"a": intercept, "b": slope, "r2": r2, "n": n}
            out["poor_fit"] = n < 10 or r2 < 0.5
            if units <= 0:
                return out
            expected = sum(intercept + slope * r["units"] for r in days if r["readings"] > 0)
            out["baseline_sec"] = expected / units
    if units <= 0:
        return out
    if expected is None:
        expected = out["baseline_sec"] * units
    saved = expected - energy
    pct = 100.0 * saved / expected
    out.update({"expected_kwh": expected, "saved_kwh": saved, "saving_pct": pct,
                "status": _status(pct, target, stretch)})
    return out


def data_end(ref, f):
    lasts = [ref.last_ts(m["id"]) for m in f.meters]
    lasts = [x for x in lasts if x is not None]
    return min(lasts) if lasts else None


def report(ref, facilities, programme, period=None):
    """The expected report as a dict shaped like enpi's JSON (plus private '_' keys)."""
    period = period or programme["period"]
    target = float(programme.get("target_saving", 8))
    stretch = float(programme.get("stretch_saving", 13))
    facs = [facility_report(ref, f, period, target, stretch) for f in facilities]
    data = [x for x in facs if x["status"] != "no_data"]
    n = len(facs)
    met = sum(1 for x in data if x["status"] in ("met", "stretch_met"))
    stretch_met = sum(1 for x in data if x["status"] == "stretch_met")
    exp = sum(x["expected_kwh"] for x in data)
    used = sum(x["energy_kwh"] for x in data)
    saved = sum(x["saved_kwh"] for x in data)
    prog = {"facilities": n, "with_data": len(data), "met": met, "stretch_met": stretch_met,
            "met_pct": 100.0 * met / len(data) if data else None,
            "stretch_met_pct": 100.0 * stretch_met / len(data) if data else None,
            "expected_kwh": exp, "energy_kwh": used, "saved_kwh": saved,
            "saving_pct": 100.0 * saved / exp if data else None}
    for key, attr, tkey in (("aware", "aware", "aware_increase_pp"),
                            ("applying", "applying", "applying_increase_pp")):
        start = end = 0
        for f, x in zip(facilities, facs):
            since = getattr(f, attr)
            if since is None:
                continue
            t = instant(f.zone, since)
            start += t <= x["_from"]
            end += t < x["_to"]
        target_pp = programme.get(tkey)
        prog[key] = {"start": start, "end": end,
                     "increase_pp": 100.0 * end / n - 100.0 * start / n if n else None,
                     "target_pp": float(target_pp) if target_pp else None}
    # projection
    needed = False
    pe = px = ps = 0.0
    for f, x in zip(facilities, facs):
        e = data_end(ref, f)
        x["_complete"] = e is not None and e >= x["_to"]
        if x["status"] == "no_data":
            continue
        c = 1.0
        if not x["_complete"]:
            needed = True
            if e is not None and e > x["_from"]:
                c = (e - x["_from"]) / (x["_to"] - x["_from"])
        x["_proj"] = (x["energy_kwh"] / c, x["expected_kwh"] / c, x["saved_kwh"] / c)
        pe += x["energy_kwh"] / c
        px += x["expected_kwh"] / c
        ps += x["saved_kwh"] / c
    prog["projection"] = ({"energy_kwh": pe, "expected_kwh": px, "saved_kwh": ps,
                           "saving_pct": 100.0 * ps / px} if needed else None)
    return {"facilities": facs, "programme": prog}


# ---------------------------------------------------------------- comparison

FACILITY_KEYS = ["facility", "name", "model", "energy_kwh", "units", "sec", "baseline_sec",
                 "expected_kwh", "saved_kwh", "saving_pct", "status", "regression"]
PROGRAMME_KEYS = ["facilities", "with_data", "met", "stretch_met", "met_pct",
                  "stretch_met_pct", "expected_kwh", "energy_kwh", "saved_kwh", "saving_pct",
                  "aware", "applying"]
UPTAKE_KEYS = ["start", "end", "increase_pp", "target_pp"]


def _same(got, want, scale=None):
    """Equal for None/str/bool/int; reals to 1e-9 relative (or 1e-9 of `scale`, for a
    difference of two large sums such as saved = expected - energy)."""
    if want is None or got is None or isinstance(want, (str, bool)):
        return got == want
    if isinstance(want, int) and not isinstance(want, bool) and isinstance(got, int):
        return got == want
    if not isinstance(got, (int, float)):
        return False
    tol = max(harness.REL_TOL * max(abs(got), abs(want)), harness.ABS_TOL)
    if scale is not None:
        tol = max(tol, harness.REL_TOL * abs(scale))
    return abs(got - want) <= tol


def compare(got, want, mm, where="report"):
    """Adds every difference between enpi's JSON `got` and the oracle's `want` to mm."""
    for k in ("period", "facilities", "programme"):
        if k not in got:
            mm.add("%s: key %r absent" % (where, k))
    gf = {x.get("facility"): x for x in got.get("facilities", [])}
    if [x.get("facility") for x in got.get("facilities", [])] != \
            [x["facility"] for x in want["facilities"]]:
        mm.add("%s: facilities %s, expected %s" % (
            where, [x.get("facility") for x in got.get("facilities", [])],
            [x["facility"] for x in want["facilities"]]))
    for w in want["facilities"]:
        g = gf.get(w["facility"])
        if g is None:
            continue
        fw = "%s %s" % (where, w["facility"])
        for k in FACILITY_KEYS + ["poor_fit", "from", "to"]:
            if k not in g:
                mm.add("%s: key %r absent (never absent, null when it does not apply)" % (fw, k))
                continue
            if k == "regression":
                if (g[k] is None) != (w[k] is None):
                    mm.add("%s: regression %s, expected %s" % (fw, g[k], w[k]))
                elif w[k] is not None:
                    for rk in ("a", "b", "r2", "n"):
                        if not _same(g[k].get(rk), w[k][rk]):
                            mm.add("%s: regression.%s %r, expected %r" % (fw, rk, g[k].get(rk),
                                                                        w[k][rk]))
                continue
            scale = w.get("expected_kwh") if k == "saved_kwh" else None
            if k == "saving_pct" and w[k] is not None:
                scale = 100.0 * (abs(w["energy_kwh"]) / abs(w["expected_kwh"]) + 1)
            if not _same(g[k], w[k], scale):
                mm.add("%s: %s %r, expected %r" % (fw, k, g[k], w[k]))
        if "_proj" in w and not w.get("_complete"):
            p = g.get("projection") or {}
            for k, v in zip(("energy_kwh", "expected_kwh", "saved_kwh"), w["_proj"]):
                if not _same(p.get(k), v, w["_proj"][1] if k == "saved_kwh" else None):
                    mm.add("%s: projection.%s %r, expected %r" % (fw, k, p.get(k), v))
    gp = got.get("programme", {})
    wp = want["programme"]
    for k in PROGRAMME_KEYS:
        if k not in gp:
            mm.add("%s programme: key %r absent" % (where, k))
            continue
        if k in ("aware", "applying"):
            for uk in UPTAKE_KEYS:
                if not _same((gp[k] or {}).get(uk, "absent"), wp[k][uk]):
                    mm.add("%s programme.%s.%s %r, expected %r" % (
                        where, k, uk, (gp[k] or {}).get(uk, "absent"), wp[k][uk]))
            continue
        scale = wp["expected_kwh"] if k == "saved_kwh" else None
        if k == "saving_pct" and wp[k] is not None:
            scale = 100.0 * (wp["energy_kwh"] / wp["expected_kwh"] + 1)
        if not _same(gp[k], wp[k], scale):
            mm.add("%s programme.%s %r, expected %r" % (where, k, gp[k], wp[k]))
    wpr, gpr = wp["projection"], gp.get("projection", "absent")
    if wpr is None or gpr is None or gpr == "absent":
        if (wpr is None) != (gpr is None):
            mm.add("%s programme.projection %r, expected %r" % (where, gpr, wpr))
    else:
        for k in ("energy_kwh", "expected_kwh", "saved_kwh", "saving_pct"):
            scale = wpr["expected_kwh"] if k == "saved_kwh" else None
            if k == "saving_pct":
                scale = 100.0 * (wpr["energy_kwh"] / wpr["expected_kwh"] + 1)
            if not _same(gpr.get(k), wpr[k], scale):
                mm.add("%s programme.projection.%s %r, expected %r" % (where, k, gpr.get(k),
                                                                      wpr[k]))


# ---------------------------------------------------------------- test data

def daily_readings(f, first_day, last_day, day_values, energy_hour=6):
    """Readings of facility f's two meters, f.id/em (cumulative kWh register, read daily
    at energy_hour local time) and f.id/prod (delta over 1d, stamped at the local midnight
    ending the day it covers), for the days first_day..last_day (datetime.date, inclusive).
    day_values(date) -> (kwh, units) of that day. Returns [(meter_id, ts_ms, value)]."""
    tz = ZoneInfo(f.zone)
    out = []
    reg = 100000.0
    d = first_day
    start = _dt.datetime(d.year, d.month, d.day, energy_hour, tzinfo=tz)
    out.append((f.id + "/em", int(start.timestamp() * 1000), reg))
    while d <= last_day:
        kwh, units = day_values(d)
        nxt = d + _dt.timedelta(days=1)
        t_e = _dt.datetime(nxt.year, nxt.month, nxt.day, energy_hour, tzinfo=tz)
        t_p = _dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
        reg = round(reg + kwh, 3)
        out.append((f.id + "/em", int(t_e.timestamp() * 1000), reg))
        out.append((f.id + "/prod", int(t_p.timestamp() * 1000), round(units, 3)))
        d = nxt
    return out


def meters_of(fid):
    return [{"id": fid + "/em", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative"},
            {"id": fid + "/prod", "kind": "production", "reading": "delta", "interval": "1d"}]


def batched_messages(readings, per_message=60):
    """JSON array payloads of up to per_message readings of one meter each, in time order
    per meter (MQTT keeps one publisher's order)."""
    import json
    by_meter = {}
    for mid, t, v in readings:
        by_meter.setdefault(mid, []).append((t, v))
    msgs = []
    for mid, rows in by_meter.items():
        rows.sort()
        for i in range(0, len(rows), per_message):
            chunk = rows[i:i + per_message]
            msgs.append(("enpi/" + mid, json.dumps([{"ts": t, "value": v} for t, v in chunk])))
    return msgs


def wait_all_applied(cli, n_readings, timeout=90):
    """Waits until enpid has committed every published reading: `enpi meters` (one call,
    whatever the number of facilities) shows readings summing to n_readings. A meter's
    state and its rollups are written in one batch, so the rollups are complete then."""
    import json

    def poll():
        p = cli.run("meters", "--format", "json")
        if p.returncode != 0:
            return False
        return sum(m.get("readings") or 0 for m in json.loads(p.stdout)) == n_readings
    harness.wait_until(poll, timeout, 0.2, "enpid to commit %d readings" % n_readings)
