#!/usr/bin/python3
"""test_formats - the protobuf, tasmota and number payload formats end to end.

Through the real mosquitto, enpid and enpi, three facilities:
  ber (Europe/Berlin), 2024-03-31 00:00..06:00 local, across the spring-forward hour:
      protobuf ReadingBatch payloads, every batch encoded either by `protoc --encode` from
      the text format or by the generated protobuf-c code (tests/integration/enpi_pbpub),
      alternately, so both encoders feed every meter:
      ber/em    cumulative Wh (scale 0.001) on pb/ber/em: meter ids empty (the topic's)
                or spelled out in the payload
      ber/gas   delta over 15m (to_kwh 10.55) and ber/prod (production, cumulative) on
                the gateway topic pbgw/site1, ids from the payload only, mixed in batches
                with an unknown id (ghost/1, 3 times), NaN and negative readings for
                ber/prod and a reading without id; plus one truncated batch on pb/ber/em
  ktm (Asia/Kathmandu, UTC+05:45): Tasmota SENSOR messages on tele/plugN/SENSOR with Time
      in local time (one with an offset, as SetOption52 writes it), plus a sensor-only
      message (missing_value), one without Time (bad_timestamp) and an unknown device
  shl (UTC): Shelly-style `number` payloads in Wh (scale 0.001), stamped on arrival, plus
      "inf" and "12 kWh".
ber and ktm are compared with reference.py row by row (every meter and facility, 15m,
1h, 1d, 1mo, values to 1e-9 relative, counters exact); the number meter, whose windows
depend on arrival times, by its totals (energy exactly last - first, readings). Then the
rejected counts per meter and the unknown-meter table (`enpi meters --unknown`).

Needs the enpi_pbpub tool: $ENPI_PBPUB, else <build>/tests/integration/enpi_pbpub.
"""

import datetime as dt
import json
import math
import os
import subprocess

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2020-01-01", "2030-01-01"
MIN = 60_000
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))
KTM = "Asia/Kathmandu"


def ms(iso):
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)


def facilities():
    return [
        {"id": "ber", "name": "Berlin works", "timezone": "Europe/Berlin", "meters": [
            {"id": "ber/em", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
            {"id": "ber/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
             "interval": "15m", "to_kwh": 10.55},
            {"id": "ber/prod", "kind": "production", "reading": "cumulative"},
        ]},
        {"id": "ktm", "name": "Kathmandu plugs", "timezone": KTM, "meters": [
            {"id": "plug1", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative"},
            {"id": "plug2", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative"},
        ]},
        {"id": "shl", "name": "Shelly site", "timezone": "UTC", "meters": [
            {"id": "sh1", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
        ]},
    ]


INPUTS = [
    {"topic": "pb/{facility}/{meter}", "meter_id": "{facility}/{meter}", "format": "protobuf"},
    {"topic": "pbgw/{site}", "format": "protobuf"},
    {"topic": "tele/{meter}/SENSOR", "format": "tasmota"},
    {"topic": "shellies/{meter}/emeter/0/total", "format": "number"},
]


# ---------------------------------------------------------------- encoders

def text_double(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))  # shortest round-trip form; protoc reads it correctly rounded


def encode_protoc(batch):
    """ReadingBatch bytes by `protoc --encode` from the text format. batch: list of
    (meter_id or "", timestamp_ms or 0, value)."""
    lines = []
    for mid, ts, v in batch:
        fields = []
        if mid:
            fields.append("meter_id: %s" % json.dumps(mid))
        if ts:
            fields.append("timestamp_ms: %d" % ts)
        fields.append("value: %s" % text_double(v))
        lines.append("readings { %s }" % " ".join(fields))
    p = subprocess.run(["protoc", "--proto_path=" + PROTO_DIR, "--encode=enpi.v1.ReadingBatch",
                        os.path.join(PROTO_DIR, "enpi.proto")],
                       input="\n".join(lines).encode(), capture_output=True, timeout=30)
    check(p.returncode == 0, "protoc --encode failed: %s" % p.stderr.decode(errors="replace"))
    return p.stdout


def encode_pbpub(pbpub, batch):
    """The same ReadingBatch by the generated protobuf-c code (enpi_pbpub)."""
    text = "".join("%s %d %s\n" % (mid or "-", ts, text_double(v)) for mid, ts, v in batch)
    p = subprocess.run([pbpub], input=text.encode(), capture_output=True, timeout=30)
    check(p.returncode == 0, "enpi_pbpub failed: %s" % p.stderr.decode(errors="replace"))
    return p.stdout


def pbpub_path(env):
    path = os.environ.get("ENPI_PBPUB") or os.path.join(env.workdir, "..", "..", "enpi_pbpub")
    path = os.path.abspath(path)
    check(os.access(path, os.X_OK),
          "enpi_pbpub not found at %s (build it; or set ENPI_PBPUB)" % path)
    return path


# ---------------------------------------------------------------- data

def protobuf_readings():
    """(meter_id, ts_ms, raw) of ber/em, ber/gas, ber/prod, each in time order."""
    t0 = ms("2024-03-31T00:00:00+01:00")
    t_end = ms("2024-03-31T06:00:00+02:00")
    em, gas, prod = [], [], []
    t, wh, i = t0 + 7_250, 73_512_004.5, 0
    while t < t_end:
        em.append(("ber/em", t, round(wh, 3)))
        i += 1
        step = [5 * MIN, 4 * MIN + 31_000, 6 * MIN + 2_500, 15 * MIN][i % 4]
        wh += (90 + 40 * math.sin(i / 7.0)) * 1000 * step / 3_600_000
        t += step
    t, i = t0 + 15 * MIN, 0
    while t <= t_end:
        gas.append(("ber/gas", t, round(1.25 + 0.037 * (i % 9), 4)))
        i += 1
        t += 15 * MIN
    t, units = t0 + 4 * MIN, 5_000.0
    while t <= t_end:
        prod.append(("ber/prod", t, units))
        units += 3 + (t // MIN) % 5
        t += 10 * MIN
    return em, gas, prod


def protobuf_messages(pbpub, em, gas, prod):
    """(topic, payload) list; every other batch by each encoder."""
    batches = []  # (topic, [(id, ts, v)])
    for k in range(0, len(em), 10):
        chunk = em[k:k + 10]
        # ids alternately empty (the topic's) and spelled out
        batches.append(("pb/ber/em", [("" if j % 2 == 0 else mid, t, v)
                                      for j, (mid, t, v) in enumerate(chunk)]))
    gw = sorted(gas + prod, key=lambda r: r[1])
    for k in range(0, len(gw), 8):
        batches.append(("pbgw/site1", list(gw[k:k + 8])))
    # rejects and unknown ids inside otherwise valid gateway batches
    t_some = prod[3][1]
    batches[-1][1].extend([("ghost/1", t_some, 1.0), ("ber/prod", t_some, float("nan")),
                           ("ghost/1", t_some + MIN, 2.0)])
    batches[-2][1].extend([("ber/prod", t_some, -7.0), ("ghost/1", t_some, 3.0),
                           ("", t_some, 1.0)])
    out = []
    for n, (topic, batch) in enumerate(batches):
        enc = encode_protoc if n % 2 == 0 else (lambda b: encode_pbpub(pbpub, b))
        out.append((topic, enc(batch)))
    # both encoders agree byte for byte on a plain batch (a cheap cross-check)
    sample = batches[0][1]
    check(encode_protoc(sample) == encode_pbpub(pbpub, sample),
          "protoc and protobuf-c encode the same batch differently")
    # a truncated batch: parse_error, charged to the topic's meter ber/em
    out.append(("pb/ber/em", encode_protoc(batches[0][1])[:-3]))
    return out


def tasmota_readings():
    """(meter_id, ts_ms, kWh) of plug1 and plug2: every 10 minutes for 5 hours."""
    now = harness.now_ms()
    t0 = ms("2024-06-10T08:00:00+05:45")
    out = []
    for j, (mid, kwh) in enumerate((("plug1", 3.705), ("plug2", 812.25))):
        t = t0 + j * 3_000
        while t <= t0 + 5 * 3_600_000:
            out.append((mid, t, round(kwh, 3)))
            kwh += 0.05 + 0.013 * ((t // MIN) % 7)
            t += 10 * MIN
    check(all(t < now for _, t, _ in out), "tasmota data must lie in the past")
    return out


def sensor_payload(t_ms, total, with_offset=False):
    local = dt.datetime.fromtimestamp(t_ms / 1000, harness_zone(KTM))
    time_text = local.strftime("%Y-%m-%dT%H:%M:%S") + (local.strftime("%z")[:3] + ":" +
                                                       local.strftime("%z")[3:]
                                                       if with_offset else "")
    return json.dumps({
        "Time": time_text,
        "ENERGY": {"TotalStartTime": "2023-11-02T09:12:44", "Total": total,
                   "Yesterday": 1.234, "Today": 0.456, "Period": 2, "Power": 153,
                   "ApparentPower": 167, "ReactivePower": 66, "Factor": 0.92,
                   "Voltage": 229, "Current": 0.729},
    }, separators=(",", ":"))


def harness_zone(name):
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


def tasmota_messages(readings):
    out = []
    for n, (mid, t, kwh) in enumerate(readings):
        out.append(("tele/%s/SENSOR" % mid, sensor_payload(t, kwh, with_offset=(n == 5))))
    t = readings[0][1]
    local = dt.datetime.fromtimestamp(t / 1000, harness_zone(KTM)).strftime("%Y-%m-%dT%H:%M:%S")
    out += [
        ("tele/plug1/SENSOR", json.dumps({"Time": local, "AM2301": {"Temperature": 24.1,
                                                                    "Humidity": 51.0},
                                          "TempUnit": "C"})),          # missing_value
        ("tele/plug1/SENSOR", json.dumps({"ENERGY": {"Total": 9.5}})),  # bad_timestamp
        ("tele/plug9/SENSOR", sensor_payload(t, 1.0)),                 # unknown meter
        ("tele/plug1/LWT", "Online"),                                 # no input
    ]
    return out


# ---------------------------------------------------------------- CLI helpers

def meter_rows(cli):
    """`enpi meters` as {meter id: row}; {} while the store cannot be read yet."""
    p = cli.run("meters", "--format", "json")
    if p.returncode != 0:
        return {}
    try:
        rows = json.loads(p.stdout)
    except ValueError:
        return {}
    return {r.get("meter"): r for r in rows if isinstance(r, dict)}


def test(env):
    pbpub = pbpub_path(env)
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="UTC", resolutions=RES,
                         commit_interval="200ms", inputs=INPUTS)
    checked = [f for f in facs if f["id"] != "shl"]
    ref = Reference({f["id"]: f["timezone"] for f in checked},
                    harness.reference_meters(checked), RES, allowed_lateness="1h",
                    max_gap="1h")

    em, gas, prod = protobuf_readings()
    plugs = tasmota_readings()
    for mid, t, v in sorted(em + gas + prod, key=lambda r: r[1]) + plugs:
        check(ref.feed(mid, t, v) == "applied", "test data must be clean: %s %d" % (mid, t))
    pb_msgs = protobuf_messages(pbpub, em, gas, prod)
    tas_msgs = tasmota_messages(plugs)
    log("%d protobuf messages (%d readings), %d tasmota messages" %
        (len(pb_msgs), len(em) + len(gas) + len(prod), len(tas_msgs)))

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    cli = env.cli(store)
    pub = harness.Publisher(broker.port)
    pub.publish_all(pb_msgs + tas_msgs)

    # number payloads: each is stamped with its arrival time, so publish the next only
    # once the previous one is committed (two in the same millisecond would be duplicates)
    numbers = ["1000", "1500.5", " 2250.25\n", "3000"]
    for k, text in enumerate(numbers, 1):
        pub.publish_all([("shellies/sh1/emeter/0/total", text)])
        harness.wait_until(lambda: (meter_rows(cli).get("sh1") or {}).get("readings") == k,
                           20, 0.05, "number reading %d to be committed" % k)
    pub.publish_all([("shellies/sh1/emeter/0/total", "inf"),
                     ("shellies/sh1/emeter/0/total", "12 kWh")])
    pub.close()

    expected = ref.totals("1mo")
    expected["readings"] += len(numbers)
    harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, expected,
                           stable_for=0.5)
    rows = harness.compare_all(cli, ref, checked, FROM, TO)
    log("all %d rows of ber (protobuf) and ktm (tasmota) match the reference" % rows)

    # the number meter: its windows depend on arrival times, its totals do not
    for res in RES:
        got = cli.query("meter", "sh1", res, FROM, TO)
        total = sum(r["energy_kwh"] for r in got)
        check(harness.close(total, (3000 - 1000) * 0.001),
              "sh1 %s: energy %r, want 2.0" % (res, total))
        check(sum(r["readings"] for r in got) == len(numbers),
              "sh1 %s: readings %d, want %d" % (res, sum(r["readings"] for r in got),
                                                len(numbers)))
    log("number meter totals exact at every resolution")

    # rejects charged to meters, and the unknown ids from payload and topic
    want_rejected = {"ber/em": 1, "ber/gas": 0, "ber/prod": 2, "plug1": 2, "plug2": 0,
                     "sh1": 2}

    def rejected_ok():
        got = meter_rows(cli)
        return all(got.get(m, {}).get("rejected") == n for m, n in want_rejected.items())
    try:
        harness.wait_until(rejected_ok, 10, 0.1, "rejected counts")
    except harness.TestFailure:
        got = {m: r.get("rejected") for m, r in meter_rows(cli).items()}
        raise harness.TestFailure("rejected per meter %s, want %s" % (got, want_rejected))
    unknown = {r.get("meter"): r for r in cli.json("meters", "--unknown")}
    check(set(unknown) == {"ghost/1", "plug9"}, "unknown meters: %s" % sorted(unknown))
    check(unknown["ghost/1"].get("count") == 3 and
          unknown["ghost/1"].get("last_topic") == "pbgw/site1",
          "ghost/1 listed as %s" % json.dumps(unknown["ghost/1"]))
    check(unknown["plug9"].get("count") == 1 and
          unknown["plug9"].get("last_topic") == "tele/plug9/SENSOR",
          "plug9 listed as %s" % json.dumps(unknown["plug9"]))
    log("rejects per meter and unknown ids as injected")

    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
