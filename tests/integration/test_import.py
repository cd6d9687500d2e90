#!/usr/bin/python3
"""test_import - `enpi import FILE.csv`: history published through the broker, then live data.

Through the real mosquitto, enpid and enpi:
  hcm (Asia/Ho_Chi_Minh): hcm/em (cumulative Wh, scale 0.001) and hcm/prod (cumulative
      units); its CSV has CRLF lines, an extra column, quoted cells, and timestamps in all
      three accepted forms (local time without offset, with an offset, epoch ms). Imported
      with the full configuration, whose protobuf input is the preferred route.
  ber (Europe/Berlin): ber/gas (delta over 15m, to_kwh 10.55) and ber/em (cumulative).
      Imported with a configuration WITHOUT the protobuf input, so the history goes as
      json on enpi/ber/<meter>, the topic the json input's templates invert to.
Three days of history for each meter, then a day of live json readings; every meter and
facility row at 15m/1h/1d/1mo must equal reference.py's. Refusals publish nothing: a bad
timestamp (FILE:LINE on stderr, exit 1), an unconfigured meter, history older than a
meter's live data, a meter no input can carry (json-only configuration); --dry-run shows the routes only; a
missing FILE is bad usage (exit 2).
"""

import datetime as dt
import os
from zoneinfo import ZoneInfo

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2020-01-01", "2030-01-01"
MIN = 60_000
DAY = 86_400_000

FACILITIES = [
    {"id": "hcm", "name": "Công ty Cổ phần Nhựa Mê Linh", "timezone": "Asia/Ho_Chi_Minh",
     "product_unit": "t", "meters": [
         {"id": "hcm/em", "kind": "energy", "carrier": "electricity", "reading": "cumulative",
          "scale": 0.001},
         {"id": "hcm/prod", "kind": "production", "reading": "cumulative"},
     ]},
    {"id": "ber", "name": "Berlin works", "timezone": "Europe/Berlin", "meters": [
        {"id": "ber/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
         "interval": "15m", "to_kwh": 10.55},
        {"id": "ber/em", "kind": "energy", "carrier": "electricity", "reading": "cumulative"},
    ]},
    {"id": "tas", "name": "Plug site", "meters": [
        {"id": "plug1", "kind": "energy", "carrier": "electricity", "reading": "cumulative"},
    ]},
]
JSON_INPUT = {"topic": "enpi/{facility}/{meter}", "meter_id": "{facility}/{meter}",
              "format": "json"}
PB_INPUT = {"topic": "pbgw/{site}", "format": "protobuf"}
TAS_INPUT = {"topic": "tele/{meter}/SENSOR", "format": "tasmota"}


def ms(iso):
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def series(meter_id, t0, t_end, kind):
    """(meter, ts_ms, raw) readings with jittered spacing."""
    out, t, i = [], t0, 0
    v = {"hcm/em": 4_812_337.25, "hcm/prod": 1200.0, "ber/em": 90_210.5}.get(meter_id, 0.0)
    while t < t_end:
        if kind == "delta":
            out.append((meter_id, t, round(0.8 + 0.05 * (i % 7), 4)))
            t += 15 * MIN
        else:
            out.append((meter_id, t, round(v, 3)))
            step = [15 * MIN, 14 * MIN + 7_000, 16 * MIN + 2_500, 45 * MIN][i % 4]
            v += (120 + 9 * (i % 11)) * step / 3_600_000 * (1000 if meter_id == "hcm/em" else 1)
            t += step
        i += 1
    return out


def stamp(zone, t_ms, form):
    local = dt.datetime.fromtimestamp(t_ms / 1000, ZoneInfo(zone))
    if form == 0:
        return local.replace(tzinfo=None).isoformat(timespec="milliseconds")
    if form == 1:
        return local.isoformat(timespec="milliseconds")
    return str(t_ms)


def write_csv(path, rows, zone_of, crlf=False):
    nl = "\r\n" if crlf else "\n"
    with open(path, "w", newline="") as fh:
        fh.write("unit,meter,timestamp,value" + nl)
        for n, (mid, t, v) in enumerate(rows):
            ts = stamp(zone_of[mid], t, n % 3)
            val = repr(float(v))
            if n % 5 == 0:
                val = '"%s"' % val
            fh.write('x,"%s",%s,%s%s' % (mid, ts, val, nl) if n % 2 else
                     "x,%s,%s,%s%s" % (mid, ts, val, nl))


def run_import(env, conf, *args):
    import subprocess
    return subprocess.run([env.args.enpi, "--config", conf, "import"] + list(args),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test(env):
    broker = env.broker()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    json_only = env.path("json-only.yaml")
    harness.write_config(conf, broker.uri, store, FACILITIES, timezone="UTC", resolutions=RES,
                         commit_interval="200ms", inputs=[JSON_INPUT, PB_INPUT, TAS_INPUT])
    harness.write_config(json_only, broker.uri, store, FACILITIES, timezone="UTC",
                         resolutions=RES, inputs=[JSON_INPUT, TAS_INPUT])
    zone_of = {m["id"]: f.get("timezone", "UTC") for f in FACILITIES for m in f["meters"]}
    ref = Reference({f["id"]: f.get("timezone", "UTC") for f in FACILITIES},
                    harness.reference_meters(FACILITIES), RES, allowed_lateness="1h",
                    max_gap="1h")

    t0, t_live = ms("2023-05-01T00:03:00+00:00"), ms("2023-05-04T00:00:00+00:00")
    t_end = t_live + DAY
    hist, live = {}, {}
    for mid in ("hcm/em", "hcm/prod", "ber/gas", "ber/em"):
        kind = "delta" if mid == "ber/gas" else "cumulative"
        rows = series(mid, t0, t_end, kind)
        hist[mid] = [r for r in rows if r[1] < t_live]
        live[mid] = [r for r in rows if r[1] >= t_live]
    for mid in hist:
        for r in hist[mid] + live[mid]:
            check(ref.feed(*r) == "applied", "test data must be clean: %r" % (r,))

    # the hcm file lists its meters interleaved and out of order: import sorts them
    hcm_rows = sorted(hist["hcm/em"] + hist["hcm/prod"], key=lambda r: (-r[1] % 7, r[1]))
    hcm_csv, ber_csv = env.path("hcm.csv"), env.path("ber.csv")
    write_csv(hcm_csv, hcm_rows, zone_of, crlf=True)
    write_csv(ber_csv, hist["ber/gas"] + hist["ber/em"], zone_of)

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    cli = env.cli(store)

    # ---- refusals first: nothing may be published by any of them
    bad = env.path("bad.csv")
    with open(bad, "w") as fh:
        fh.write("meter,timestamp,value\nhcm/em,2023-04-01T00:00:00,1\n\n"
                 "hcm/em,2023-04-01T00:15:00,2\nhcm/em,yesterday,3\n")
    p = run_import(env, conf, bad)
    check(p.returncode == 1 and "bad.csv:5:" in p.stderr and "yesterday" in p.stderr,
          "bad timestamp: exit %d, stderr %r" % (p.returncode, p.stderr))
    with open(bad, "w") as fh:
        fh.write("meter,timestamp,value\nghost/1,2023-04-01T00:00:00,1\n")
    p = run_import(env, conf, bad)
    check(p.returncode == 1 and "ghost/1" in p.stderr and "not configured" in p.stderr,
          "unknown meter: exit %d, stderr %r" % (p.returncode, p.stderr))
    with open(bad, "w") as fh:
        fh.write("meter,timestamp,value\nplug1,2023-04-01T00:00:00,1\n")
    p = run_import(env, json_only, bad)  # (the protobuf input could carry it)
    check(p.returncode == 1 and "no input can carry" in p.stderr,
          "tasmota-only meter: exit %d, stderr %r" % (p.returncode, p.stderr))
    p = run_import(env, conf)
    check(p.returncode == 2 and "missing FILE" in p.stderr,
          "missing FILE: exit %d, stderr %r" % (p.returncode, p.stderr))
    p = run_import(env, conf, hcm_csv, "--dry-run", "--format", "json")
    check(p.returncode == 0, "dry run failed: %s" % p.stderr)
    import json
    plan = {r["meter"]: r for r in json.loads(p.stdout)}
    check(plan["hcm/em"]["format"] == "protobuf" and plan["hcm/em"]["topic"] == "pbgw/_" and
          plan["hcm/em"]["readings"] == len(hist["hcm/em"]) and
          plan["hcm/em"]["published"].startswith("no"),
          "dry-run plan: %s" % json.dumps(plan))
    p = run_import(env, json_only, ber_csv, "--dry-run", "--format", "json")
    plan = {r["meter"]: r for r in json.loads(p.stdout)}
    check(plan["ber/gas"]["format"] == "json" and plan["ber/gas"]["topic"] == "enpi/ber/gas",
          "dry-run plan (json only): %s" % json.dumps(plan))
    check(cli.json("meters", "--unknown") == [] and
          all(m.get("readings", 0) == 0 for m in cli.json("meters")),
          "a refused or dry-run import reached enpid")
    log("refusals and dry runs published nothing")

    # ---- the real imports, then live data
    p = run_import(env, conf, hcm_csv)
    check(p.returncode == 0, "import hcm: exit %d: %s" % (p.returncode, p.stderr))
    p = run_import(env, json_only, ber_csv, "--format", "csv")
    check(p.returncode == 0, "import ber: exit %d: %s" % (p.returncode, p.stderr))
    check("ber/gas,enpi/ber/gas,json,%d," % len(hist["ber/gas"]) in p.stdout,
          "import ber output: %r" % p.stdout)
    n_hist = sum(len(v) for v in hist.values())
    harness.wait_committed(cli, ["hcm", "ber"], "1mo", FROM, TO,
                           {"readings": n_hist, "late": 0, "duplicates": 0, "resets": 0},
                           stable_for=0.3)
    log("%d historical readings imported and committed" % n_hist)

    # importing the same history again is refused: the meters already have it
    p = run_import(env, conf, hcm_csv)
    check(p.returncode == 1 and "already has readings" in p.stderr,
          "re-import: exit %d, stderr %r" % (p.returncode, p.stderr))

    pub = harness.Publisher(broker.port)
    msgs = [harness.json_message("enpi/" + mid, t, v)
            for mid in live for (_, t, v) in live[mid]]
    pub.publish_all(msgs)
    pub.close()
    harness.wait_committed(cli, ["hcm", "ber"], "1mo", FROM, TO, ref.totals("1mo"),
                           stable_for=0.3)
    checked = [f for f in FACILITIES if f["id"] != "tas"]
    rows = harness.compare_all(cli, ref, checked, FROM, TO)
    log("all %d rows (history + live) match the reference" % rows)
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
