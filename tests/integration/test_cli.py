#!/usr/bin/python3
"""test_cli - `enpi`'s contract (SPEC §7): exit codes, error lines, output formats.

With a small store written by the real enpid (one facility, an electricity meter and a
production counter, plus readings of a meter that is not configured):
  - exit 0 for query/meters/facilities in json, csv and table; csv has a header and one
    line per JSON row; `meters --unknown` lists the unconfigured meter; an empty range
    gives [];
  - exit 1 with exactly one line on stderr (and nothing on stdout) for a missing store,
    an unknown facility or meter, a resolution that is not configured;
  - exit 2 for bad usage: no command, an unknown command, an unknown option, a bad
    --format, a query without --facility/--meter;
  - the store is found through --config FILE and through ENPID_CONFIG as well as --db;
  - the CLI works while enpid runs and after it stopped, and never writes the store;
  - enpid --version / --help exit 0, and SIGTERM stops enpid with exit 0 within 5 s.
"""

import csv
import io
import os
import subprocess

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2024-01-01", "2025-01-01"


def facilities():
    return [{"id": "t1", "name": "CLI test works", "timezone": "Europe/Lisbon",
             "product_unit": "t", "meters": [
                 {"id": "t1/em", "kind": "energy", "carrier": "electricity",
                  "reading": "cumulative"},
                 {"id": "t1/prod", "kind": "production", "reading": "cumulative"},
             ]}]


def run(args, env=None):
    return subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=60, env=env)


def expect_error(p, code, what):
    check(p.returncode == code, "%s: exit %d, want %d (stderr: %r)" %
          (what, p.returncode, code, p.stderr.strip()))
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    check(len(lines) >= 1, "%s: no message on stderr" % what)
    if code == 1:
        check(len(lines) == 1, "%s: want one clear line on stderr, got %d:\n%s" %
              (what, len(lines), p.stderr))
        check(p.stdout.strip() == "", "%s: printed to stdout on error: %r" % (what, p.stdout))


def store_files(path):
    """Names, sizes and mtimes of the store's files (to see that the CLI writes nothing)."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            st = os.stat(os.path.join(root, f))
            out[os.path.relpath(os.path.join(root, f), path)] = (st.st_size, st.st_mtime_ns)
    return out


def test(env):
    broker = env.broker()
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, facs, timezone="Europe/Lisbon",
                         resolutions=RES)
    enpid, enpi = env.args.enpid, env.args.enpi

    for flag in ("--version", "--help"):
        p = run([enpid, flag])
        check(p.returncode == 0, "enpid %s exited %d" % (flag, p.returncode))
        check((p.stdout + p.stderr).strip() != "", "enpid %s printed nothing" % flag)

    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    ref = Reference({"t1": "Europe/Lisbon"}, harness.reference_meters(facs), RES)
    msgs = []
    t0 = 1718000000000  # 2024-06-10T06:13:20Z
    for i in range(40):
        t = t0 + i * 600_000
        msgs.append(("t1/em", t, 1000.0 + 12.5 * i))
        msgs.append(("t1/prod", t + 5000, 50.0 + 3 * i))
    for mid, t, v in msgs:
        ref.feed(mid, t, v)
    pub = harness.Publisher(broker.port)
    pub.publish_all([harness.json_message("enpi/" + m, t, v) for m, t, v in msgs] +
                    [harness.json_message("enpi/t1/ghost", t0 + i, 1.0) for i in range(3)])
    pub.close()
    cli = env.cli(store)
    harness.wait_committed(cli, ["t1"], "1mo", FROM, TO, ref.totals("1mo"))

    # ---- success paths, all formats
    rows = cli.query("facility", "t1", "1h", FROM, TO)
    check(isinstance(rows, list) and len(rows) > 0, "no facility rows")
    for fmt in ("csv", "table"):
        p = cli.run("query", "--facility", "t1", "--resolution", "1h", "--from", FROM,
                    "--to", TO, "--format", fmt)
        check(p.returncode == 0, "query --format %s exited %d: %s" %
              (fmt, p.returncode, p.stderr))
        check(p.stdout.strip() != "", "query --format %s printed nothing" % fmt)
        if fmt == "csv":
            table = list(csv.reader(io.StringIO(p.stdout)))
            header = table[0]
            for k in ("facility", "start", "end", "energy_kwh", "units", "sec", "readings",
                      "final"):
                check(k in header, "csv header lacks %s: %s" % (k, header))
            check(len(table) - 1 == len(rows), "csv has %d data lines, json %d rows" %
                  (len(table) - 1, len(rows)))
        else:
            check("t1" in p.stdout or "2024-06-10" in p.stdout,
                  "table output shows neither facility nor dates:\n%s" % p.stdout[:500])
    empty = cli.query("facility", "t1", "1h", "2019-01-01", "2019-02-01")
    check(empty == [], "a range without data should give [], got %r" % (empty,))

    for cmd in (["meters"], ["facilities"]):
        out = cli.json(*cmd)
        text = str(out)
        for mid in ("t1/em", "t1/prod") if cmd == ["meters"] else ("t1",):
            check(mid in text, "`enpi %s` does not list %s: %s" % (cmd[0], mid, text[:500]))
        for fmt in ("csv", "table"):
            p = cli.run(*(cmd + ["--format", fmt]))
            check(p.returncode == 0 and p.stdout.strip(), "enpi %s --format %s failed: %s" %
                  (cmd[0], fmt, p.stderr))
    unknown = cli.json("meters", "--unknown")
    check("t1/ghost" in str(unknown), "`meters --unknown` lacks t1/ghost: %s" % unknown)
    check("t1/em" not in str(unknown), "`meters --unknown` lists a configured meter")

    # the store found through --config and ENPID_CONFIG
    p = run([enpi, "--config", conf, "query", "--meter", "t1/em", "--resolution", "1d",
             "--from", FROM, "--to", TO, "--format", "json"])
    check(p.returncode == 0 and p.stdout.strip().startswith("["),
          "enpi --config exited %d: %s" % (p.returncode, p.stderr))
    e = dict(os.environ, ENPID_CONFIG=conf)
    p = run([enpi, "facilities", "--format", "json"], env=e)
    check(p.returncode == 0, "enpi with ENPID_CONFIG exited %d: %s" % (p.returncode, p.stderr))

    # ---- errors: exit 1, one line
    q = ["--resolution", "1h", "--from", FROM, "--to", TO]
    expect_error(run([enpi, "--db", env.path("no-such-store"), "meters"]), 1, "missing store")
    expect_error(cli.run("query", "--facility", "nope", *q), 1, "unknown facility")
    expect_error(cli.run("query", "--meter", "t1/nope", *q), 1, "unknown meter")
    expect_error(cli.run("query", "--facility", "t1", "--resolution", "5m", "--from", FROM,
                         "--to", TO), 1, "resolution not configured")

    # ---- bad usage: exit 2
    expect_error(run([enpi, "--db", store]), 2, "no command")
    expect_error(cli.run("frobnicate"), 2, "unknown command")
    expect_error(cli.run("meters", "--no-such-option"), 2, "unknown option")
    expect_error(cli.run("meters", "--format", "xml"), 2, "bad --format")
    expect_error(cli.run("query", *q), 2, "query without --facility/--meter")
    for bad in (["--resolution", "7x"], ["--from", "not-a-date"]):
        args = ["query", "--facility", "t1"] + q
        i = args.index(bad[0])
        args[i + 1] = bad[1]
        p = cli.run(*args)
        check(p.returncode in (1, 2) and p.stderr.strip(),
              "query with %s %s: exit %d, want 1 or 2 with a message" %
              (bad[0], bad[1], p.returncode))
    log("exit codes and error lines as SPEC §7 says")

    # ---- the CLI never writes: compare the store before and after some reads (enpid
    # stopped so that nothing else changes it)
    rc, took = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    check(took < 5.0, "enpid took %.1fs to stop on SIGTERM" % took)
    before = store_files(store)
    for res in RES:
        cli.query("facility", "t1", res, FROM, TO)
    cli.json("meters")
    after = store_files(store)
    check(before == after, "the store changed while only enpi read it:\n%s\n%s" %
          (sorted(set(before.items()) ^ set(after.items()))[:10], ""))
    mm = harness.Mismatches()
    harness.compare_rows("facility", "t1", "1h", cli.query("facility", "t1", "1h", FROM, TO),
                         ref.facility_rows("t1", "1h"), ref.zones["t1"], ref, "t1", mm,
                         harness.now_ms(), harness.now_ms())
    mm.raise_if_any("facility t1 1h after enpid stopped")
    log("enpid stopped in %.2fs; reads after stop match; the CLI wrote nothing" % took)


if __name__ == "__main__":
    harness.main(test, __doc__)
