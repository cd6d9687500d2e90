"""reference.py - an independent Python model of SPEC §5 for the integration tests.

Feeds a sequence of readings (in the order enpid receives them) through the per-meter
arithmetic of SPEC §5 and keeps, for every meter and configured resolution, the rollup of
every window it touched: value (kWh or product units), estimated part, readings, resets,
late, duplicates. Facility rows are sums of their meters' rows, as the CLI computes them.
Windows come from zoneinfo, written here without looking at enpi's C code:
  - fixed resolutions (dividing 1 d) run from the start of the local day in steps of the
    resolution's length, the last one clipped at the next local day start;
  - 1d is the local calendar day, 1mo the local calendar month;
  - a local day starts at local midnight, or at the first instant of that date when
    midnight falls into a DST gap.

Interpretations fixed here (each where SPEC §5 leaves a choice):
  - the first reading of a meter is an accepted reading: it counts in `readings` of its
    window though it only sets state;
  - a cumulative reading stamped at the meter's last accepted timestamp is a duplicate,
    one stamped earlier is late; neither counts in `readings`;
  - a rollover never counts as a reset; `rollover` is in raw register units;
  - a delta reading older than allowed_lateness behind the newest is rejected as too
    late: no value, but it counts in `late` of the window it is stamped in (the window
    misses its energy: that is what its quality field should say) and in the meter's
    `rejected`; exactly at the edge it is still accepted;
  - an interval counts as estimated when its length is strictly greater than max_gap.
Late delta readings are only modelled for meters with an `interval` (for the others,
SPEC's [t_prev, t] is not defined for a reading older than t_prev; the tests avoid it).
"""

import bisect
import datetime as _dt
import math
from zoneinfo import ZoneInfo

DUR_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
DAY_MS = 86_400_000


def parse_duration_ms(text):
    """'15m' -> 900000; '1mo' -> None (calendar month)."""
    if text.endswith("mo"):
        assert text[:-2] == "1", "only 1mo is a valid month resolution"
        return None
    return int(text[:-1]) * DUR_UNITS[text[-1]]


class Zone:
    """Local-day and local-month boundaries of one IANA zone, with caches."""

    def __init__(self, name):
        self.name = name
        self.tz = ZoneInfo(name)
        self._day_start = {}

    def local(self, t_ms):
        return _dt.datetime.fromtimestamp(t_ms / 1000.0, self.tz)

    def offset_s(self, t_ms):
        return int(self.local(t_ms).utcoffset().total_seconds())

    def local_date(self, t_ms):
        # floor to whole seconds: sub-second parts never change the date at a transition
        return _dt.datetime.fromtimestamp(t_ms // 1000, self.tz).date()

    def date_start(self, d):
        """UTC ms of the first instant whose local date is d."""
        hit = self._day_start.get(d)
        if hit is not None:
            return hit
        naive = _dt.datetime(d.year, d.month, d.day)
        # candidate instants: local midnight read with either offset around it
        guess = int(naive.replace(tzinfo=_dt.timezone.utc).timestamp()) * 1000
        lo = guess - 30 * 3_600_000  # local date certainly before d
        hi = guess + 30 * 3_600_000  # local date certainly d or after
        assert self.local_date(lo) < d <= self.local_date(hi)
        # binary search in whole seconds (zone transitions fall on whole seconds)
        lo_s, hi_s = lo // 1000, hi // 1000
        while hi_s - lo_s > 1:
            mid = (lo_s + hi_s) // 2
            if self.local_date(mid * 1000) < d:
                lo_s = mid
            else:
                hi_s = mid
        self._day_start[d] = hi_s * 1000
        return hi_s * 1000

    def day_start(self, t_ms):
        return self.date_start(self.local_date(t_ms))

    def next_day_start(self, t_ms):
        return self.date_start(self.local_date(t_ms) + _dt.timedelta(days=1))

    def month_start(self, t_ms, shift=0):
        d = self.local_date(t_ms)
        m = d.month - 1 + shift
        y = d.year + m // 12
        return self.date_start(_dt.date(y, m % 12 + 1, 1))


def window_containing(zone, res_ms, t_ms):
    """(start, end) UTC ms of the window of resolution res_ms (None = 1mo) holding t."""
    if res_ms is None:
        return zone.month_start(t_ms), zone.month_start(t_ms, 1)
    day0 = zone.day_start(t_ms)
    day1 = zone.next_day_start(t_ms)
    if res_ms == DAY_MS:
        return day0, day1
    k = (t_ms - day0) // res_ms
    start = day0 + k * res_ms
    return start, min(start + res_ms, day1)


def windows_overlapping(zone, res_ms, t1, t2):
    """Yields (start, end, overlap_ms) for every window meeting [t1, t2) with overlap > 0."""
    start, end = window_containing(zone, res_ms, t1)
    while start < t2:
        ov = min(end, t2) - max(start, t1)
        if ov > 0:
            yield start, end, ov
        start, end = window_containing(zone, res_ms, end)


class MeterCfg:
    def __init__(self, meter_id, facility, kind="energy", reading="cumulative",
                 interval=None, scale=1.0, to_kwh=1.0, rollover=None):
        assert kind in ("energy", "production")
        assert reading in ("cumulative", "delta")
        self.id = meter_id
        self.facility = facility
        self.kind = kind
        self.reading = reading
        self.interval_ms = parse_duration_ms(interval) if interval else None
        self.scale = float(scale)
        self.to_kwh = float(to_kwh) if kind == "energy" else 1.0
        self.rollover = float(rollover) if rollover else None


class Rollup:
    __slots__ = ("value", "estimated", "readings", "resets", "late", "duplicates")

    def __init__(self):
        self.value = 0.0
        self.estimated = 0.0
        self.readings = 0
        self.resets = 0
        self.late = 0
        self.duplicates = 0


class _MeterState:
    def __init__(self):
        self.has_state = False
        self.last_ts = None
        self.last_raw = None
        self.applied = []  # delta meters: sorted timestamps applied
        self.rejected = 0


class Reference:
    """The expected rollups for one enpid configuration.

    facilities: {facility_id: zone_name}; meters: [MeterCfg]; resolutions: ['15m', ...].
    """

    def __init__(self, facilities, meters, resolutions, allowed_lateness="1h",
                 max_gap="1h"):
        self.zones = {fid: Zone(tz) for fid, tz in facilities.items()}
        self.meters = {m.id: m for m in meters}
        self.facility_meters = {fid: [m.id for m in meters if m.facility == fid]
                                for fid in facilities}
        self.resolutions = list(resolutions)
        self.res_ms = {r: parse_duration_ms(r) for r in resolutions}
        self.lateness = parse_duration_ms(allowed_lateness)
        self.max_gap = parse_duration_ms(max_gap)
        self.state = {m.id: _MeterState() for m in meters}
        # rollups[meter_id][res] = {window_start: (end, Rollup)}
        self.rollups = {m.id: {r: {} for r in resolutions} for m in meters}
        self.outcomes = {"applied": 0, "duplicate": 0, "late": 0, "rejected": 0}
        self.rollovers = 0  # applied cumulative readings that wrapped the register

    # ---- feeding ----

    def _cell(self, meter, res, t_ms):
        zone = self.zones[meter.facility]
        start, end = window_containing(zone, self.res_ms[res], t_ms)
        cells = self.rollups[meter.id][res]
        if start not in cells:
            cells[start] = (end, Rollup())
        return cells[start][1]

    def _count(self, meter, t_ms, field):
        for res in self.resolutions:
            cell = self._cell(meter, res, t_ms)
            setattr(cell, field, getattr(cell, field) + 1)

    def _spread(self, meter, t1, t2, amount):
        estimated = (t2 - t1) > self.max_gap
        zone = self.zones[meter.facility]
        length = t2 - t1
        for res in self.resolutions:
            cells = self.rollups[meter.id][res]
            for start, end, ov in windows_overlapping(zone, self.res_ms[res], t1, t2):
                if start not in cells:
                    cells[start] = (end, Rollup())
                part = amount * ov / length
                cell = cells[start][1]
                cell.value += part
                if estimated:
                    cell.estimated += part

    def feed(self, meter_id, ts_ms, raw):
        """Applies one reading; returns 'applied', 'duplicate', 'late' or 'rejected'."""
        m = self.meters.get(meter_id)
        if m is None:
            return "rejected"
        out = self._feed(m, int(ts_ms), float(raw))
        self.outcomes[out] += 1
        return out

    def _feed(self, m, t, raw):
        st = self.state[m.id]
        if not math.isfinite(raw):
            st.rejected += 1
            return "rejected"
        factor = m.scale * m.to_kwh
        if m.reading == "cumulative":
            if raw < 0:
                st.rejected += 1
                return "rejected"
            if not st.has_state:
                st.has_state, st.last_ts, st.last_raw = True, t, raw
                self._count(m, t, "readings")
                return "applied"
            if t == st.last_ts:
                self._count(m, t, "duplicates")
                return "duplicate"
            if t < st.last_ts:
                self._count(m, t, "late")
                return "late"
            v1, v2 = st.last_raw, raw
            if v2 >= v1:
                d = v2 - v1
            elif m.rollover is not None:
                d = m.rollover - v1 + v2
                self.rollovers += 1
            else:
                d = v2
                self._count(m, t, "resets")
            self._count(m, t, "readings")
            self._spread(m, st.last_ts, t, d * factor)
            st.last_ts, st.last_raw = t, raw
            return "applied"

        # delta meters
        if st.has_state:
            if t < st.last_ts - self.lateness:
                self._count(m, t, "late")
                st.rejected += 1
                return "rejected"
            i = bisect.bisect_left(st.applied, t)
            if i < len(st.applied) and st.applied[i] == t:
                self._count(m, t, "duplicates")
                return "duplicate"
        late = st.has_state and t < st.last_ts
        if late and m.interval_ms is None:
            raise NotImplementedError("late delta reading on a meter without interval")
        if m.interval_ms is not None:
            self._spread(m, t - m.interval_ms, t, raw * factor)
        elif st.has_state:
            self._spread(m, st.last_ts, t, raw * factor)
        self._count(m, t, "readings")
        if late:
            self._count(m, t, "late")
        bisect.insort(st.applied, t)
        if not st.has_state or t > st.last_ts:
            st.has_state, st.last_ts = True, t
        return "late" if late else "applied"

    # ---- reading the expectations ----

    def last_ts(self, meter_id):
        st = self.state[meter_id]
        return st.last_ts if st.has_state else None

    def is_final(self, facility, end_ms, now_ms):
        """SPEC §5: every meter's newest accepted reading later than end + lateness, or
        the wall clock past end + lateness."""
        edge = end_ms + self.lateness
        if now_ms > edge:
            return True
        lasts = [self.last_ts(mid) for mid in self.facility_meters[facility]]
        return bool(lasts) and all(x is not None and x > edge for x in lasts)

    def meter_rows(self, meter_id, res):
        """Sorted list of dicts: start, end, value, estimated, readings, resets, late,
        duplicates (no 'final': that depends on the query time)."""
        rows = []
        for start, (end, c) in sorted(self.rollups[meter_id][res].items()):
            rows.append({"start": start, "end": end, "value": c.value,
                         "estimated": c.estimated, "readings": c.readings,
                         "resets": c.resets, "late": c.late, "duplicates": c.duplicates})
        return rows

    def facility_rows(self, facility, res):
        """Sorted list of dicts: start, end, energy_kwh, units, sec, est_energy,
        est_units, readings, resets, late, duplicates."""
        acc = {}
        for mid in self.facility_meters[facility]:
            m = self.meters[mid]
            for start, (end, c) in self.rollups[mid][res].items():
                row = acc.setdefault(start, {
                    "start": start, "end": end, "energy_kwh": 0.0, "units": 0.0,
                    "est_energy": 0.0, "est_units": 0.0, "readings": 0, "resets": 0,
                    "late": 0, "duplicates": 0})
                assert row["end"] == end
                if m.kind == "energy":
                    row["energy_kwh"] += c.value
                    row["est_energy"] += c.estimated
                else:
                    row["units"] += c.value
                    row["est_units"] += c.estimated
                for f in ("readings", "resets", "late", "duplicates"):
                    row[f] += getattr(c, f)
        rows = [acc[s] for s in sorted(acc)]
        for row in rows:
            row["sec"] = row["energy_kwh"] / row["units"] if row["units"] != 0 else None
        return rows

    def totals(self, res=None):
        """Sum of readings/late/duplicates/resets over every meter (one resolution)."""
        res = res or self.resolutions[-1]
        t = {"readings": 0, "late": 0, "duplicates": 0, "resets": 0}
        for mid in self.meters:
            for _, (_, c) in self.rollups[mid][res].items():
                for f in t:
                    t[f] += getattr(c, f)
        return t
