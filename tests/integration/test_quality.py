#!/usr/bin/python3
"""test_quality - the new user's scenario: a messy real-world stream gives SPEC-exact rollups.

The meter simulator (tests/sim/enpi-sim) publishes two facilities in Europe/Berlin over
four days that include the 25-hour day of 26 October 2025, every 5 minutes, with timestamp
jitter, silent gaps longer than max_gap, duplicated messages, readings delivered late (within
allowed_lateness), a replaced electricity register (reset) and a production counter that
wraps (rollover); meters em (cumulative Wh), gas (delta over 5m), prod (cumulative with
rollover) and steam (delta since the previous reading). The simulator's record of what it
published is fed to reference.py, and every meter and facility row at every resolution
(15m, 1h, 1d, 1mo) of `enpi query --format json` must match it: values to 1e-9 relative,
readings/estimated/resets/late/duplicates exactly.
"""

import json
import subprocess
import time

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
TZ = "Europe/Berlin"
FROM, TO = "2025-01-01", "2026-01-01"


def facilities_for(ids, step="5m"):
    facs = []
    for fid in ids:
        facs.append({"id": fid, "name": "Facility " + fid, "timezone": TZ,
                     "product_unit": "pcs", "meters": [
                         {"id": fid + "/em", "kind": "energy", "carrier": "electricity",
                          "reading": "cumulative", "scale": 0.001},
                         {"id": fid + "/gas", "kind": "energy", "carrier": "gas",
                          "reading": "delta", "interval": step, "to_kwh": 10.55},
                         {"id": fid + "/prod", "kind": "production", "reading": "cumulative",
                          "rollover": 1000000},
                         {"id": fid + "/steam", "kind": "energy", "carrier": "steam",
                          "reading": "delta", "to_kwh": 0.69},
                     ]})
    return facs


def test(env):
    seed = env.args.seed if env.args.seed is not None else 7
    broker = env.broker()
    ids = ["q01", "q02"]
    facs = facilities_for(ids)
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="Asia/Ho_Chi_Minh",
                         resolutions=RES, allowed_lateness="1h", max_gap="1h")
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)

    emitted = env.path("published.jsonl")
    cmd = ["/usr/bin/python3", env.args.sim, "--port", str(broker.port), "--qos", "1",
           "--facility-ids", ",".join(ids), "--meters", "em,gas,prod,steam", "--tz", TZ,
           "--start", "2025-10-24T00:00:00+02:00", "--end", "2025-10-28T00:00:00+01:00",
           "--step", "5m", "--jitter", "40s", "--dup-prob", "0.03", "--late-prob", "0.03",
           "--late-by", "20m", "--gap-prob", "0.004", "--gap", "150m",
           "--reset", "q01/em@0.4", "--reset", "q02/em@0.7", "--wrap", "q02/prod",
           "--rollover", "1000000", "--seed", str(seed),
           "--client-id", "sim-%d" % broker.port, "--emit", emitted]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=120)
    check(p.returncode == 0, "enpi-sim failed (%d): %s" % (p.returncode, p.stderr))
    log(p.stderr.strip().splitlines()[-1], "(%.1fs)" % (time.monotonic() - t0))

    ref = Reference({f["id"]: TZ for f in facs}, harness.reference_meters(facs), RES,
                    allowed_lateness="1h", max_gap="1h")
    with open(emitted) as fh:
        for line in fh:
            e = json.loads(line)
            ref.feed(e["meter"], e["ts"], e["value"])
    o = ref.outcomes
    log("reference: %(applied)d applied, %(duplicate)d duplicates, %(late)d late, "
        "%(rejected)d rejected" % o)
    # the scenario must really contain what it claims
    check(o["duplicate"] > 20 and o["late"] > 20, "too few duplicates/late readings: %s" % o)
    resets = sum(r["resets"] for f in ids for r in ref.facility_rows(f, "1mo"))
    check(resets == 2, "the scenario should contain 2 resets, has %d" % resets)
    check(ref.rollovers >= 1, "the scenario should contain a rollover")
    est = sum(r["est_energy"] for f in ids for r in ref.facility_rows(f, "1mo"))
    check(est > 0, "the scenario should contain estimated energy (gaps over max_gap)")
    for f in ids:
        check(harness.close(sum(r["energy_kwh"] for r in ref.facility_rows(f, "1d")),
                            sum(r["energy_kwh"] for r in ref.facility_rows(f, "15m"))),
              "reference: 1d and 15m totals differ")

    # what a careless gateway also sends: each is rejected (and counted for its meter) or
    # dropped as unknown, and none may change a rollup. judge: 'ref' = reference.py rejects
    # it itself; 'spec4' = a SPEC §4 reject the reference does not model (not fed to it);
    # None = not attributed to a meter's `rejected` here (q01/steam's count is not checked)
    last = {m: ref.last_ts(m) for m in ref.meters}
    bad = [
        ("q01/em", {"ts": last["q01/em"] + 30_000, "value": -5.0}, "ref"),      # negative
        ("q01/gas", {"ts": last["q01/gas"] - 3 * 3_600_000 + 17_000, "value": 1.0},
         "ref"),                                                                # too late
        ("q02/em", {"ts": harness.now_ms() + 86_400_000, "value": 1e12}, "spec4"),  # future
        ("q02/prod", {"ts": 946_684_799_000, "value": 5.0}, "spec4"),          # before 2000
        ("q01/steam", "this is not json", None),                                # parse error
        ("q01/steam", {"ts": last["q01/steam"] + 1000, "val": 3}, None),        # no value
        ("q01/ghost", {"ts": last["q01/em"], "value": 1.0}, None),              # unknown
        ("q01/ghost", {"ts": last["q01/em"] + 1000, "value": 2.0}, None),
    ]
    extra_rejects = {}
    for mid, body, judge in bad:
        if judge == "ref":
            check(ref.feed(mid, body["ts"], body["value"]) == "rejected",
                  "reference.py should reject %s %s" % (mid, body))
        elif judge == "spec4":
            extra_rejects[mid] = extra_rejects.get(mid, 0) + 1
    sentinel = ("q01/em", last["q01/em"] + 60_000, 1e9)  # applied last: all before is done
    check(ref.feed(*sentinel) == "applied", "sentinel must apply")
    msgs = [("enpi/" + mid, json.dumps(b) if isinstance(b, dict) else b) for mid, b, _ in bad]
    msgs.append(harness.json_message("enpi/" + sentinel[0], sentinel[1], sentinel[2]))
    pub = harness.Publisher(broker.port)
    pub.publish_all(msgs)
    pub.close()

    cli = env.cli(store)
    harness.wait_committed(cli, ids, "1mo", FROM, TO, ref.totals("1mo"))
    rows = harness.compare_all(cli, ref, facs, FROM, TO)
    log("all %d rows match the reference at 15m/1h/1d/1mo" % rows)

    # the meters' lifetime state
    harness.compare_meter_states(cli, ref, extra_rejects, skip_rejected=("q01/steam",))
    mm = harness.Mismatches()
    unknown = {u["meter"]: u for u in cli.json("meters", "--unknown")}
    if set(unknown) != {"q01/ghost"} or unknown["q01/ghost"].get("count") != 2:
        mm.add("meters --unknown: %s, want q01/ghost seen twice" % list(unknown.values()))
    mm.raise_if_any("enpi meters vs the reference")
    n_rej = sum(ref.state[m].rejected for m in ref.meters) + sum(extra_rejects.values())
    log("meter states (lifetime counters incl. %d rejects, last reading) and the unknown "
        "meter match" % n_rej)
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
