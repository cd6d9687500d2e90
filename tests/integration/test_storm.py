#!/usr/bin/python3
"""test_storm - a storm of hostile messages must not hurt enpid (issue 3, acceptance).

Through the real mosquitto, enpid and enpi: two facilities (UTC and Europe/Berlin) with
five meters on a json input "enpi/{facility}/{meter}" and a number input
"num/{facility}/{meter}". One QoS 1 publisher sends, as fast as the broker takes them,
STORM_TOTAL (100,000) messages: a known valid reading sequence for the json meters,
interleaved (seeded shuffle, valid ones kept in their own order) with
  parse_error     malformed JSON / text that is no number (number input)
  missing_value   value of the wrong type ("12.5", true, null, object) or absent
  not_finite      1e999
  negative        negative registers on cumulative meters
  too_old         timestamps in 1999
  future          timestamps days to years ahead of the wall clock
  too_large       payloads over 256 KiB (a few hundred: they pass through the broker)
  unknown_meter   tens of thousands of distinct random meter ids on the json topic
  off-input       topics under no input's filter (the broker never delivers them)
While it runs, enpid's VmRSS is sampled from /proc. Checks:
  - enpid stays up throughout and exits 0 on SIGTERM; its log has no crash/sanitizer text;
  - RSS bound: peak <= 2 x RSS after warm-up + 64 MiB. Warm-up = a first valid batch
    committed, so RocksDB, the pipeline's tables and the token buffer exist. The storm's
    working set is bounded by design (ring, one batch of at most ENPI_UNKNOWN_MAX unknown
    ids, RocksDB memtables/block cache of fixed size, a 256 KiB payload cap); the 64 MiB
    covers one RocksDB write buffer filling with inbox records of the oversized payloads
    plus malloc arena growth; an unbounded unknown-id table (tens of thousands of ids with
    their topics) or leaked payloads would exceed it. RSS after the storm (settled) must be
    within the same bound;
  - every meter and facility row at 15m/1h/1d/1mo equals reference.py (values to 1e-9
    relative, counters exact), and `enpi meters` lifetime counters incl. `rejected`
    (= the attributed rejects injected per meter);
  - the counters enpid logs on shutdown ("stats: ... rejects N (unknown meter U, parse
    P)") equal what was injected: total rejects, unknown_meter and parse_error;
  - `enpi meters --unknown`: only injected ids, each with a count no larger than injected;
    the sum of counts <= injected unknown messages (sightings beyond ENPI_UNKNOWN_MAX
    distinct ids per commit batch are counted but not named, and that overflow is not
    observable from outside; the test reports the difference).
"""

import collections
import json
import os
import random
import re
import threading
import time

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2020-01-01", "2030-01-01"
MIN = 60_000
STORM_TOTAL = 100_000
N_VALID_PER_METER = 1_500          # 4 json meters: 6,000 valid readings
N_OVERSIZED = 300                  # > 256 KiB each: ~80 MB through the broker
N_UNKNOWN = 40_000                 # unknown-meter messages ...
N_UNKNOWN_IDS = 30_000             # ... over this many distinct ids
N_OFF_INPUT = 3_000                # topics matching no input filter
OVERSIZE = 256 * 1024 + 1 + 3_000  # bytes
T0 = 1_717_200_000_000             # 2024-06-01T00:00:00Z: long past, so windows are final
CRASH_WORDS = ("AddressSanitizer", "LeakSanitizer", "runtime error", "Segmentation fault",
               "Aborted", "core dumped", "SUMMARY:", "assertion", "Assertion")


def facilities():
    return [
        {"id": "f1", "name": "Storm plant", "timezone": "UTC", "product_unit": "pcs",
         "meters": [
             {"id": "f1/em", "kind": "energy", "carrier": "electricity",
              "reading": "cumulative", "scale": 0.001},
             {"id": "f1/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
              "interval": "15m", "to_kwh": 10.55},
             {"id": "f1/prod", "kind": "production", "reading": "cumulative"},
         ]},
        {"id": "f2", "name": "Storm depot", "timezone": "Europe/Berlin", "meters": [
            {"id": "f2/em", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative"},
            {"id": "f2/sh", "kind": "energy", "carrier": "electricity",
             "reading": "cumulative", "scale": 0.001},
        ]},
    ]


INPUTS = [
    {"topic": "enpi/{facility}/{meter}", "meter_id": "{facility}/{meter}", "format": "json"},
    {"topic": "num/{facility}/{meter}", "meter_id": "{facility}/{meter}", "format": "number"},
]
JSON_METERS = ["f1/em", "f1/gas", "f1/prod", "f2/em"]
CUMULATIVE = ["f1/em", "f1/prod", "f2/em"]


def valid_readings():
    """{meter: [(ts, raw)]} in time order: every 5 minutes (with jitter) for ~5 days."""
    rng = random.Random(11)
    out = {}
    for k, mid in enumerate(JSON_METERS):
        seq, t, v = [], T0 + k * 1_250, 1_000.0 * (k + 1)
        for i in range(N_VALID_PER_METER):
            if mid == "f1/gas":
                seq.append((t, round(0.5 + rng.random(), 4)))  # delta per 15m
                t += 15 * MIN if i % 50 else 90 * MIN          # an estimated gap now and then
            else:
                seq.append((t, round(v, 3)))
                v += rng.uniform(0.0, 400.0)
                t += 5 * MIN + rng.randint(-20_000, 20_000)
        out[mid] = seq
    return out


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of one pid every `every` seconds in a thread; notes if it vanished."""

    def __init__(self, pid, every=0.05):
        self.pid = pid
        self.every = every
        self.samples = []
        self.vanished = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid)
            if v is None:
                self.vanished = True
                return
            self.samples.append(v)
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()

    @property
    def peak(self):
        return max(self.samples) if self.samples else 0


def build_storm(ref, valid, now):
    """Returns (messages, injected) where injected counts what enpid must reject:
    {"total", "unknown", "parse", "per_meter": {meter: n}, "unknown_ids": {id: n},
     "off_input", "by_reason": {reason: n}}. Feeds the valid readings to ref."""
    rng = random.Random(2024)
    per_meter = {m["id"]: 0 for f in facilities() for m in f["meters"]}
    by_reason = {}
    bad = []  # (topic, payload)

    def add(reason, meter, topic, payload):
        bad.append((topic, payload))
        by_reason[reason] = by_reason.get(reason, 0) + 1
        if meter is not None:
            per_meter[meter] += 1

    last_t = {m: s[-1][0] for m, s in valid.items()}
    mid_t = {m: s[len(s) // 2][0] for m, s in valid.items()}

    def ts_for(m):
        # a plausible timestamp of that meter (the reading is rejected before it matters)
        return mid_t[m] + rng.randint(0, 10 * MIN)

    n_valid = sum(len(s) for s in valid.values())
    n_fixed = N_OVERSIZED + N_UNKNOWN + N_OFF_INPUT
    n_attr = STORM_TOTAL - n_valid - n_fixed
    check(n_attr > 10_000, "storm mix leaves too few attributed rejects")
    big = "x" * OVERSIZE
    for i in range(N_OVERSIZED):
        m = JSON_METERS[i % len(JSON_METERS)]
        body = '{"ts": %d, "value": 1, "pad": "%s"}' % (ts_for(m), big) if i % 2 else big
        add("too_large", m, "enpi/" + m, body.encode())
    unknown_ids = {}
    pool = ["zz%d/%08x" % (rng.randrange(100), rng.getrandbits(32)) for _ in range(N_UNKNOWN_IDS)]
    pool = list(dict.fromkeys(pool))
    for i in range(N_UNKNOWN):
        uid = pool[i] if i < len(pool) else rng.choice(pool)
        unknown_ids[uid] = unknown_ids.get(uid, 0) + 1
        add("unknown_meter", None, "enpi/" + uid,
            json.dumps({"ts": T0 + rng.randint(0, 5 * 86_400_000), "value": rng.random() * 1e4}))
    for i in range(N_OFF_INPUT):
        topic = rng.choice(["other/f1/em", "enpi/f1/em/extra", "enpi", "num/f2",
                            "enpi/f1/em/x/y", "Enpi/f1/em"])
        bad.append((topic, json.dumps({"ts": T0, "value": 1})))
    off_input = N_OFF_INPUT

    kinds = ["parse_json", "parse_num", "missing_value", "not_finite", "negative",
             "negative_num", "too_old", "future"]
    for i in range(n_attr):
        kind = kinds[i % len(kinds)]
        if kind == "parse_json":
            m = rng.choice(JSON_METERS)
            add("parse_error", m, "enpi/" + m, rng.choice([
                '{"ts": 1, "value": ', "{not json}", "[1, 2", '{"value": 1}}', "NaN",
                '{"ts": %d, "value": NaN}' % ts_for(m), "", "\x00\xff\xfe", "12 kWh",
                "tru", '{"ts": 1, "value": 2']))
        elif kind == "parse_num":
            add("parse_error", "f2/sh", "num/f2/sh",
                rng.choice(["12 kWh", "abc", "", "1.2.3", "0x10", "--5", "1e", "{}"]))
        elif kind == "missing_value":
            m = rng.choice(JSON_METERS)
            v = rng.choice(['"12.5"', "true", "null", "{}", "[1]", None])
            body = '{"ts": %d%s}' % (ts_for(m), "" if v is None else ', "value": ' + v)
            add("missing_value", m, "enpi/" + m, body)
        elif kind == "not_finite":
            m = rng.choice(JSON_METERS)
            add("not_finite", m, "enpi/" + m,
                '{"ts": %d, "value": %s}' % (ts_for(m), rng.choice(["1e999", "-1e999"])))
        elif kind == "negative":
            m = rng.choice(CUMULATIVE)
            add("negative", m, "enpi/" + m,
                json.dumps({"ts": ts_for(m), "value": -rng.uniform(0.001, 1e6)}))
        elif kind == "negative_num":
            add("negative", "f2/sh", "num/f2/sh", "-%d.5" % rng.randint(0, 99999))
        elif kind == "too_old":
            m = rng.choice(JSON_METERS)
            t = rng.randint(915_148_800_000, 946_684_799_999)  # during 1999, in ms
            add("too_old", m, "enpi/" + m, json.dumps({"ts": t, "value": 5.0}))
        elif kind == "future":
            m = rng.choice(JSON_METERS)
            t = now + rng.randint(2 * 86_400_000, 20 * 365 * 86_400_000)
            add("future", m, "enpi/" + m, json.dumps({"ts": t, "value": 5.0}))

    # valid readings: each meter's sequence in order, spread through the storm
    valid_msgs = []
    for mid in JSON_METERS:
        for t, v in valid[mid]:
            valid_msgs.append((mid, t, v))
    rng.shuffle(bad)
    # merge: keep each meter's valid readings in time order (shuffle the interleaving only)
    slots = sorted(rng.sample(range(len(bad) + len(valid_msgs)), len(valid_msgs)))
    by_meter = {m: iter(valid[m]) for m in JSON_METERS}
    order = [m for m in JSON_METERS for _ in valid[m]]
    rng.shuffle(order)
    msgs, bi, si = [], 0, 0
    slot_set = set(slots)
    for pos in range(len(bad) + len(valid_msgs)):
        if pos in slot_set:
            m = order[si]
            si += 1
            t, v = next(by_meter[m])
            check(ref.feed(m, t, v) == "applied", "valid reading not applied: %s %d" % (m, t))
            msgs.append(harness.json_message("enpi/" + m, t, v))
        else:
            msgs.append(bad[bi])
            bi += 1
    check(len(msgs) == STORM_TOTAL, "storm has %d messages, want %d" % (len(msgs), STORM_TOTAL))
    total = sum(by_reason.values())
    return msgs, {"total": total, "unknown": by_reason.get("unknown_meter", 0),
                  "parse": by_reason.get("parse_error", 0), "per_meter": per_meter,
                  "unknown_ids": unknown_ids, "off_input": off_input, "by_reason": by_reason,
                  "last_t": last_t}


def publish_storm(pub, msgs, timeout):
    """QoS 1 as fast as paho goes, waiting for every acknowledgement. At most WINDOW
    messages are outstanding: paho's message ids wrap at 65535 and a publish whose id is
    still in flight is refused (MQTT_ERR_QUEUE_SIZE)."""
    window = 30_000
    deadline = time.monotonic() + timeout
    pending = collections.deque()

    def wait_oldest():
        info = pending.popleft()
        left = deadline - time.monotonic()
        check(left > 0, "broker did not acknowledge every publish in %ss" % timeout)
        info.wait_for_publish(left)
        check(info.is_published(), "publish not acknowledged in %ss" % timeout)

    for topic, payload in msgs:
        if len(pending) >= window:
            wait_oldest()
        info = pub.client.publish(topic, payload, qos=1)
        check(info.rc == 0, "publish failed rc=%s" % info.rc)
        pending.append(info)
    while pending:
        wait_oldest()


STATS_RE = re.compile(r"stats: messages (\d+) .*?readings (\d+), applied (\d+), .*?"
                      r"rejects (\d+) \(unknown meter (\d+), parse (\d+)\)")


def last_stats(text):
    found = STATS_RE.findall(text)
    check(found, "enpid logged no 'stats:' line with rejects (unknown meter, parse)")
    return [int(x) for x in found[-1]]


REJECTS_RE = re.compile(r"stats: rejects((?: [a-z_]+=\d+)+)")


def last_rejects_by_reason(text):
    """The per-reason counts of enpid's last 'stats: rejects reason=N ...' line."""
    found = REJECTS_RE.findall(text)
    check(found, "enpid logged no 'stats: rejects reason=N ...' line")
    return {k: int(v) for k, v in (kv.split("=") for kv in found[-1].split())}


def crash_lines(text):
    return [l for l in text.splitlines() if any(w in l for w in CRASH_WORDS)]


def test(env):
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="UTC", resolutions=RES,
                         commit_interval="200ms", inputs=INPUTS)
    ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                    RES, allowed_lateness="1h", max_gap="1h")
    valid = valid_readings()

    # warm-up: the first 100 readings of each json meter, committed, then measure RSS
    warm = {m: s[:100] for m, s in valid.items()}
    rest = {m: s[100:] for m, s in valid.items()}
    warm_msgs = []
    for m in JSON_METERS:
        for t, v in warm[m]:
            check(ref.feed(m, t, v) == "applied", "warm-up reading not applied")
            warm_msgs.append(harness.json_message("enpi/" + m, t, v))

    # Under ASan freed blocks wait in a quarantine (256 MiB by default) before reuse, which
    # would hide or fake growth: keep it small for this test (no effect without ASan).
    opts = os.environ.get("ASAN_OPTIONS", "")
    os.environ["ASAN_OPTIONS"] = (opts + ":" if opts else "") + "quarantine_size_mb=16"
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    pid = daemon.proc.pid
    cli = env.cli(store)
    pub = harness.Publisher(broker.port, inflight=100)
    pub.publish_all(warm_msgs)
    harness.wait_committed(cli, ["f1", "f2"], "1mo", FROM, TO, ref.totals("1mo"),
                           stable_for=0.5)
    time.sleep(0.5)
    rss_warm = rss_kib(pid)
    check(rss_warm, "cannot read enpid's VmRSS")
    bound = 2 * rss_warm + 64 * 1024
    log("warm-up committed; enpid VmRSS %d KiB, bound %d KiB" % (rss_warm, bound))

    msgs, inj = build_storm(ref, rest, harness.now_ms())
    log("storm: %d messages: %d valid, rejects injected %s, %d distinct unknown ids, "
        "%d off-input topics" % (len(msgs), len(msgs) - inj["total"] - inj["off_input"],
                                 json.dumps(inj["by_reason"], sort_keys=True),
                                 len(inj["unknown_ids"]), inj["off_input"]))
    t0 = time.monotonic()
    with RssSampler(pid) as rs:
        publish_storm(pub, msgs, timeout=600)
        t_pub = time.monotonic() - t0
        log("published %d messages (QoS 1, acknowledged) in %.1fs: %.0f msg/s; enpid alive=%s"
            % (len(msgs), t_pub, len(msgs) / t_pub, daemon.alive()))
        check(daemon.alive(), "enpid died during the storm (exit %s)" % daemon.proc.returncode)
        harness.wait_committed(cli, ["f1", "f2"], "1mo", FROM, TO, ref.totals("1mo"),
                               timeout=180, stable_for=1.0)
        log("everything committed %.1fs after the first publish" % (time.monotonic() - t0))
    pub.close()
    check(not rs.vanished and daemon.alive(), "enpid died during the storm")
    time.sleep(1.0)
    rss_after = rss_kib(pid)
    log("VmRSS: warm-up %d KiB, peak during storm %d KiB (%d samples), after %d KiB; "
        "bound %d KiB" % (rss_warm, rs.peak, len(rs.samples), rss_after, bound))
    check(rs.peak <= bound, "enpid RSS peaked at %d KiB, over the bound 2 x %d + 65536 KiB"
          % (rs.peak, rss_warm))
    check(rss_after <= bound, "enpid RSS after the storm %d KiB over the bound %d KiB"
          % (rss_after, bound))
    bad = crash_lines(daemon.stderr_text())
    check(not bad, "enpid's log shows a crash/sanitizer report:\n  " + "\n  ".join(bad[:10]))

    rows = harness.compare_all(cli, ref, facs, FROM, TO)
    log("all %d rows match the reference at 15m/1h/1d/1mo" % rows)

    # meters' lifetime counters; rejected = attributed rejects injected for each meter
    mm = harness.Mismatches()
    state = {m.get("meter"): m for m in cli.json("meters")}
    for mid, n in inj["per_meter"].items():
        got = (state.get(mid) or {}).get("rejected")
        if got != n:
            mm.add("meters: %s rejected = %r, want %d" % (mid, got, n))
    mm.raise_if_any("rejected per meter")
    # f2/sh (number input) only ever got rejects: no state, no last reading
    sh = state.get("f2/sh") or {}
    check(sh.get("last_reading") is None and sh.get("readings") == 0,
          "meters: f2/sh got only rejects but shows %s" % json.dumps(sh))
    del ref.meters["f2/sh"]  # the reference has no last reading to compare for it
    harness.compare_meter_states(cli, ref, skip_rejected=tuple(inj["per_meter"]))
    log("meters: lifetime counters and rejected per meter %s as injected" %
        json.dumps(inj["per_meter"], sort_keys=True))

    unknown = cli.json("meters", "--unknown")
    mm = harness.Mismatches()
    total_count = 0
    for u in unknown:
        uid, cnt = u.get("meter"), u.get("count")
        want = inj["unknown_ids"].get(uid)
        if want is None:
            mm.add("meters --unknown lists %r, never injected" % uid)
            continue
        if not isinstance(cnt, int) or cnt < 1 or cnt > want:
            mm.add("meters --unknown: %s count %r, injected %d" % (uid, cnt, want))
            continue
        if u.get("last_topic") != "enpi/" + uid:
            mm.add("meters --unknown: %s last_topic %r" % (uid, u.get("last_topic")))
        total_count += cnt
    mm.raise_if_any("enpi meters --unknown")
    check(total_count <= inj["unknown"], "unknown counts sum to %d > %d injected" %
          (total_count, inj["unknown"]))
    log("meters --unknown: %d ids listed (of %d injected), counts sum %d of %d injected "
        "unknown messages (%d sightings in batch overflow, not named)" %
        (len(unknown), len(inj["unknown_ids"]), total_count, inj["unknown"],
         inj["unknown"] - total_count))

    rc, secs = daemon.stop(timeout=60)
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    text = daemon.stderr_text()
    bad = crash_lines(text)
    check(not bad, "enpid's log shows a crash/sanitizer report:\n  " + "\n  ".join(bad[:10]))
    messages, readings, applied, rejects, unk, parse = last_stats(text)
    n_delivered = len(warm_msgs) + len(msgs) - inj["off_input"]
    log("enpid shutdown stats: messages %d, readings %d, applied %d, rejects %d "
        "(unknown meter %d, parse %d)" % (messages, readings, applied, rejects, unk, parse))
    check(messages == n_delivered, "enpid counted %d messages, %d were delivered to its "
          "filters" % (messages, n_delivered))
    check(rejects == inj["total"], "enpid counted %d rejects, %d injected" %
          (rejects, inj["total"]))
    check(unk == inj["unknown"], "enpid counted %d unknown_meter, %d injected" %
          (unk, inj["unknown"]))
    check(parse == inj["parse"], "enpid counted %d parse_error, %d injected" %
          (parse, inj["parse"]))
    log("reject counters in enpid's stats line equal the injected ones (total, unknown, parse)")
    by_reason = last_rejects_by_reason(text)
    for reason, n in sorted(inj["by_reason"].items()):
        check(by_reason.get(reason) == n, "enpid counted %s %s=%s, %d injected" %
              (reason, reason, by_reason.get(reason), n))
    others = {r: n for r, n in by_reason.items() if r not in inj["by_reason"]}
    check(all(n == 0 for n in others.values()),
          "enpid counted rejects that were not injected: %s" % others)
    log("every reason's count in enpid's 'stats: rejects' line equals what was injected: %s" %
        ", ".join("%s %d" % kv for kv in sorted(inj["by_reason"].items())))

if __name__ == "__main__":
    harness.main(test, __doc__)
