#!/usr/bin/python3
"""test_sparkplug - Sparkplug B end to end: Tahu's bytes through the real broker into exact
rollups, rebirth requests seen on the broker, and learned aliases surviving kill -9.

The payloads are the ones Eclipse Tahu's JavaScript encoder produced for
tests/unit/pipeline/fixtures/sparkplug_tahu.hex (see tests/integration/sparkplug_edge.js):
edge node enpi-test/edge1 with NBIRTH (seq 0; aliases 1 "Energy/Total kWh" Double, 2
"Power kW" Float, 3 "Pulses" UInt32, 4 "Temperature" Int16, plus a Boolean and a String),
DBIRTH of device meter1 (seq 1; alias 10 "kWh" Int64), NDATA (seq 2, by alias) and DDATA
(seq 3, by alias, stamped by the payload only). Messages the recording lacks are made by
encode_payload() below, which first has to reproduce Tahu's four payloads byte for byte.

Through the real mosquitto (QoS 1), enpid and enpi:
  run 1  NBIRTH, DBIRTH (committed before going on, so the stored node expects seq 2);
         the recorded NDATA is held back, so DDATA (seq 3) shows a seq gap: its reading
         still applies and enpid asks edge1 to rebirth; the recorded NDATA bytes on the
         topic of edge2, a node never born, are data before birth: dropped, and edge2 is
         asked to rebirth. A test subscriber on spBv1.0/+/NCMD/+ must see both requests,
         each a payload with metric "Node Control/Rebirth" = true (Boolean). kill -9.
  run 2  restart; the held-back NDATA (seq 2, aliases only) must resolve through the node
         state enpid stored and restored, then an NDATA (seq 3) and a DDATA (seq 4) made
         here. SIGTERM; its last stats line must show one node imported and no seq gap.
Meters (Europe/Berlin): "enpi-test/edge1/Energy/Total kWh" (cumulative kWh),
"enpi-test/edge1/Pulses" (production), "enpi-test/edge1/meter1/kWh" (cumulative Wh
register: scale 0.001), all compared with reference.py row by row at 15m, 1h, 1d and 1mo
(values to 1e-9, counters exact: no duplicate or late reading anywhere), and their states;
"enpi-test/edge1/Temperature" (cumulative, in a facility of its own) rejects both negative
values; "Power kW" is no configured meter and is listed by `enpi meters --unknown`.
"""

import json
import os
import re
import struct
import threading

import paho.mqtt.client as mqtt

import harness
from harness import check, log
from reference import Reference

HERE = os.path.dirname(os.path.abspath(__file__))
HEX = os.path.join(HERE, "..", "unit", "pipeline", "fixtures", "sparkplug_tahu.hex")
RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2023-01-01", "2024-12-31"
T0 = 1700000000000  # the fixture's session time, 2023-11-14T22:13:20Z
G, N, DEV = "enpi-test", "edge1", "meter1"
ENERGY = "%s/%s/Energy/Total kWh" % (G, N)
PULSES = "%s/%s/Pulses" % (G, N)
DEVKWH = "%s/%s/%s/kWh" % (G, N, DEV)
TEMP = "%s/%s/Temperature" % (G, N)
POWER = "%s/%s/Power kW" % (G, N)

# ---------------------------------------------------------------- Sparkplug B wire format

# Sparkplug B datatypes (the specification's DataType enum) and the Metric value field
# each one travels in as Tahu encodes it: (field number, wire kind).
DATATYPE = {"Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6,
            "UInt32": 7, "UInt64": 8, "Float": 9, "Double": 10, "Boolean": 11,
            "String": 12}
VALUE_FIELD = {"Int8": (10, "u32"), "Int16": (10, "u32"), "Int32": (10, "u32"),
               "UInt8": (10, "u32"), "UInt16": (10, "u32"), "UInt32": (11, "u64"),
               "Int64": (11, "u64"), "UInt64": (11, "u64"), "Float": (12, "f32"),
               "Double": (13, "f64"), "Boolean": (14, "bool"), "String": (15, "str")}


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint(field << 3 | wire)


def _value(kind, v):
    if kind == "u32":
        return _varint(int(v) & 0xFFFFFFFF)  # Int8..Int32 as two's complement uint32
    if kind == "u64":
        return _varint(int(v) & 0xFFFFFFFFFFFFFFFF)
    if kind == "f32":
        return struct.pack("<f", v)
    if kind == "f64":
        return struct.pack("<d", v)
    if kind == "bool":
        return _varint(1 if v else 0)
    data = v.encode()
    return _varint(len(data)) + data


WIRE = {"u32": 0, "u64": 0, "bool": 0, "f32": 5, "f64": 1, "str": 2}


def encode_metric(m):
    """m: dict with optional name, alias, timestamp; type; value. Field order and
    explicit zeros as Tahu (protobuf.js, proto2) writes them."""
    out = bytearray()
    if "name" in m:
        name = m["name"].encode()
        out += _key(1, 2) + _varint(len(name)) + name
    if "alias" in m:
        out += _key(2, 0) + _varint(m["alias"])
    if "timestamp" in m:
        out += _key(3, 0) + _varint(m["timestamp"])
    out += _key(4, 0) + _varint(DATATYPE[m["type"]])
    field, kind = VALUE_FIELD[m["type"]]
    out += _key(field, WIRE[kind]) + _value(kind, m["value"])
    return bytes(out)


def encode_payload(timestamp, metrics, seq=None):
    out = bytearray(_key(1, 0) + _varint(timestamp))
    for m in metrics:
        body = encode_metric(m)
        out += _key(2, 2) + _varint(len(body)) + body
    if seq is not None:
        out += _key(3, 0) + _varint(seq)
    return bytes(out)


def _fields(data):
    """Yields (field, wire, value) of one protobuf message: ints for varints, bytes for
    the rest. Raises ValueError on malformed input."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _read_varint(data, i)
        elif wire == 1:
            v, i = data[i:i + 8], i + 8
        elif wire == 5:
            v, i = data[i:i + 4], i + 4
        elif wire == 2:
            n, i = _read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wire)
        if i > len(data):
            raise ValueError("truncated")
        yield field, wire, v


def _read_varint(data, i):
    n = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode_payload(data):
    """{timestamp, seq, metrics: [{name, alias, timestamp, datatype, boolean_value...}]}"""
    p = {"metrics": []}
    for field, _, v in _fields(data):
        if field == 1:
            p["timestamp"] = v
        elif field == 3:
            p["seq"] = v
        elif field == 2:
            m = {}
            for f, _, mv in _fields(v):
                name = {1: "name", 2: "alias", 3: "timestamp", 4: "datatype",
                        14: "boolean_value"}.get(f)
                if name == "name":
                    m[name] = mv.decode()
                elif name:
                    m[name] = mv
            p["metrics"].append(m)
    return p


# ---------------------------------------------------------------- the recorded session

def tahu_session():
    """The fixture's messages as sparkplug_edge.js describes them (its fixtureSession)."""
    return [
        ("spBv1.0/%s/NBIRTH/%s" % (G, N), encode_payload(T0, [
            {"name": "bdSeq", "type": "UInt64", "value": 0, "timestamp": T0},
            {"name": "Node Control/Rebirth", "alias": 0, "type": "Boolean", "value": False,
             "timestamp": T0},
            {"name": "Energy/Total kWh", "alias": 1, "type": "Double", "value": 1000.5,
             "timestamp": T0},
            {"name": "Power kW", "alias": 2, "type": "Float", "value": 12.5, "timestamp": T0},
            {"name": "Pulses", "alias": 3, "type": "UInt32", "value": 4000000000,
             "timestamp": T0},
            {"name": "Temperature", "alias": 4, "type": "Int16", "value": -12,
             "timestamp": T0},
            {"name": "Properties/Label", "alias": 5, "type": "String", "value": "hall B",
             "timestamp": T0},
        ], seq=0)),
        ("spBv1.0/%s/DBIRTH/%s/%s" % (G, N, DEV), encode_payload(T0, [
            {"name": "kWh", "alias": 10, "type": "Int64", "value": 5000000000, "timestamp": T0},
            {"name": "Status/Online", "alias": 11, "type": "Boolean", "value": True,
             "timestamp": T0},
        ], seq=1)),
        ("spBv1.0/%s/NDATA/%s" % (G, N), encode_payload(T0 + 60000, [
            {"alias": 1, "type": "Double", "value": 1001.25, "timestamp": T0 + 60000},
            {"alias": 2, "type": "Float", "value": 13, "timestamp": T0 + 60000},
            {"alias": 4, "type": "Int16", "value": -13, "timestamp": T0 + 60000},
        ], seq=2)),
        ("spBv1.0/%s/DDATA/%s/%s" % (G, N, DEV), encode_payload(T0 + 120000, [
            {"alias": 10, "type": "Int64", "value": 5000000123},
            {"alias": 11, "type": "Boolean", "value": False},
        ], seq=3)),
    ]


def load_recorded():
    """[(topic, bytes)] from the .hex fixture, in order; checks that encode_payload()
    reproduces each of Tahu's payloads exactly, so the messages it makes below are what
    Tahu would have sent."""
    recorded = []
    with open(HEX) as f:
        for line in f:
            if line.strip():
                topic, hexbytes = line.rstrip("\n").split("\t")
                recorded.append((topic, bytes.fromhex(hexbytes)))
    ours = tahu_session()
    check(len(recorded) == len(ours), "%s holds %d messages, want %d" %
          (HEX, len(recorded), len(ours)))
    for (rt, rb), (ot, ob) in zip(recorded, ours):
        check(rt == ot, "fixture topic %s, want %s" % (rt, ot))
        check(rb == ob, "encode_payload differs from Tahu's bytes for %s:\n  tahu %s\n  ours %s"
              % (rt, rb.hex(), ob.hex()))
    return recorded


def facilities():
    return [
        {"id": "spf", "name": "Sparkplug hall", "timezone": "Europe/Berlin", "meters": [
            {"id": ENERGY, "kind": "energy", "carrier": "electricity",
             "reading": "cumulative"},
            {"id": PULSES, "kind": "production", "reading": "cumulative"},
            {"id": DEVKWH, "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
        ]},
        {"id": "spt", "name": "Sensors", "timezone": "Europe/Berlin", "meters": [
            {"id": TEMP, "kind": "energy", "carrier": "heat", "reading": "cumulative"},
        ]},
    ]


# ---------------------------------------------------------------- helpers

class NcmdWatcher:
    """A paho client subscribed to spBv1.0/+/NCMD/+ that keeps what it hears."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.seen = []  # (topic, payload bytes)
        self.subscribed = threading.Event()
        self.client = mqtt.Client(client_id="ncmd-watch-%d" % os.getpid(), clean_session=True)
        self.client.on_connect = lambda c, u, f, rc: c.subscribe("spBv1.0/+/NCMD/+", qos=1)
        self.client.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()
        check(self.subscribed.wait(10), "the NCMD watcher did not get its SUBACK")

    def _on_message(self, client, userdata, msg):
        with self.lock:
            self.seen.append((msg.topic, bytes(msg.payload)))

    def topics(self):
        with self.lock:
            return [t for t, _ in self.seen]

    def messages(self):
        with self.lock:
            return list(self.seen)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def check_rebirth_request(topic, payload):
    try:
        p = decode_payload(payload)
    except ValueError as e:
        raise harness.TestFailure("NCMD on %s does not decode: %s (%s)" %
                                  (topic, e, payload.hex()))
    rebirth = [m for m in p["metrics"] if m.get("name") == "Node Control/Rebirth"]
    check(len(rebirth) == 1, "NCMD on %s lacks the rebirth metric: %s" % (topic, p))
    m = rebirth[0]
    check(m.get("datatype") == DATATYPE["Boolean"] and m.get("boolean_value") == 1,
          "NCMD on %s: rebirth metric is %s, want Boolean true" % (topic, m))
    check("seq" not in p, "NCMD on %s carries a seq: %s" % (topic, p))
    check(p.get("timestamp", 0) > 0, "NCMD on %s has no timestamp: %s" % (topic, p))


def meter_rows(cli):
    p = cli.run("meters", "--format", "json")
    if p.returncode != 0:
        return {}
    try:
        return {r.get("meter"): r for r in json.loads(p.stdout) if isinstance(r, dict)}
    except ValueError:
        return {}


def wait_readings(cli, want, what):
    """Polls `enpi meters` until every meter in want {id: readings} has committed them."""
    harness.wait_until(lambda: all((meter_rows(cli).get(m) or {}).get("readings") == n
                                   for m, n in want.items()), 20, 0.1, what)


def last_sparkplug_stats(stderr_text):
    """The counters of the last 'stats: sparkplug' line as {name: int}."""
    lines = [ln for ln in stderr_text.splitlines() if "stats: sparkplug" in ln]
    check(lines, "enpid logged no sparkplug stats line")
    out = {}
    for name, num in re.findall(r"([a-z][a-z -]*?) (\d+)", lines[-1].split("stats: ", 1)[1]):
        out[name.strip()] = int(num)
    return out


# ---------------------------------------------------------------- the test

def test(env):
    recorded = load_recorded()
    nbirth, dbirth, ndata, ddata = recorded
    log("encode_payload reproduces Tahu's %d recorded payloads byte for byte" % len(recorded))

    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="UTC", resolutions=RES,
                         commit_interval="200ms",
                         inputs=[{"topic": "spBv1.0/#", "format": "sparkplug"}])
    checked = facs[:1]
    ref = Reference({f["id"]: f["timezone"] for f in checked},
                    harness.reference_meters(checked), RES, allowed_lateness="1h",
                    max_gap="1h")

    # made here: after the restart, new data by alias (seq 3 and 4 follow the held-back 2)
    t3 = T0 + 180000
    ndata3 = ("spBv1.0/%s/NDATA/%s" % (G, N), encode_payload(t3, [
        {"alias": 1, "type": "Double", "value": 1002.0, "timestamp": t3},
        {"alias": 3, "type": "UInt32", "value": 4000000250, "timestamp": t3},
    ], seq=3))
    ddata4 = ("spBv1.0/%s/DDATA/%s/%s" % (G, N, DEV), encode_payload(T0 + 240000, [
        {"alias": 10, "type": "Int64", "value": 5000000999},
    ], seq=4))
    # what enpid receives, in order (edge2's NDATA yields nothing: never born)
    expected_feed = [
        (ENERGY, T0, 1000.5), (PULSES, T0, 4000000000), (DEVKWH, T0, 5000000000),  # births
        (DEVKWH, T0 + 120000, 5000000123),                                          # DDATA
        (ENERGY, T0 + 60000, 1001.25),                                  # NDATA after restart
        (ENERGY, t3, 1002.0), (PULSES, t3, 4000000250),                 # NDATA seq 3
        (DEVKWH, T0 + 240000, 5000000999),                              # DDATA seq 4
    ]
    for mid, t, v in expected_feed:
        check(ref.feed(mid, t, v) == "applied", "test data must be clean: %s %d" % (mid, t))

    watcher = NcmdWatcher(broker.port)
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    cli = env.cli(store)
    pub = harness.Publisher(broker.port)

    # run 1: births, committed (the stored node then expects seq 2)
    pub.publish_all([nbirth, dbirth])
    wait_readings(cli, {ENERGY: 1, PULSES: 1, DEVKWH: 1}, "the births' readings committed")
    check(not watcher.topics(), "rebirth requested after clean births: %s" % watcher.topics())
    # the NDATA (seq 2) is held back: the DDATA (seq 3) is a seq gap
    pub.publish_all([ddata, ("spBv1.0/%s/NDATA/edge2" % G, ndata[1])])
    want_ncmd = {"spBv1.0/%s/NCMD/%s" % (G, N), "spBv1.0/%s/NCMD/edge2" % G}
    harness.wait_until(lambda: want_ncmd <= set(watcher.topics()), 15, 0.05,
                       "rebirth requests on %s" % sorted(want_ncmd))
    for topic, payload in watcher.messages():
        check(topic in want_ncmd, "unexpected NCMD on %s" % topic)
        check_rebirth_request(topic, payload)
    log("rebirth requests seen on the broker: %s" % sorted(set(watcher.topics())))
    wait_readings(cli, {DEVKWH: 2}, "the DDATA after the seq gap committed")
    daemon.kill9()
    log("enpid killed with SIGKILL after committing run 1")

    # run 2: the held-back NDATA resolves by alias through the restored node state
    daemon.start(broker)
    daemon.wait_ready(broker)
    pub.publish_all([ndata, ndata3, ddata4])
    pub.close()
    harness.wait_committed(cli, [f["id"] for f in checked], "1mo", FROM, TO,
                           ref.totals("1mo"), timeout=20, stable_for=0.5)
    rows = harness.compare_all(cli, ref, checked, FROM, TO)
    harness.compare_meter_states(cli, ref)
    log("all %d rows and meter states match the reference exactly" % rows)

    temp = meter_rows(cli).get(TEMP) or {}
    check(temp.get("rejected") == 2 and temp.get("readings") == 0,
          "%s: %s, want 2 rejected (negative) and no reading" % (TEMP, json.dumps(temp)))
    unknown = {r.get("meter"): r for r in cli.json("meters", "--unknown")}
    check(set(unknown) == {POWER}, "unknown meters: %s" % sorted(unknown))
    check(unknown[POWER].get("count") == 2 and
          unknown[POWER].get("last_topic") == "spBv1.0/%s/NDATA/%s" % (G, N),
          "%s listed as %s" % (POWER, json.dumps(unknown[POWER])))

    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    watcher.close()
    st = last_sparkplug_stats(daemon.stderr_text())
    check(st.get("nodes imported") == 1, "run 2 imported %s edge nodes, want 1: %s" %
          (st.get("nodes imported"), st))
    check(st.get("seq gaps") == 0 and st.get("unresolved metrics") == 0 and
          st.get("births") == 0, "run 2 after the restore: %s" % st)
    log("run 2: node state restored (%d imported), no seq gap, nothing unresolved" %
        st["nodes imported"])


if __name__ == "__main__":
    harness.main(test, __doc__)
