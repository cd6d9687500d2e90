#!/usr/bin/python3
"""test_config - `enpid --check-config` (SPEC §2, §3) on good and bad files.

A good file (every SPEC §3 section, including the optional ones) and config/demo.yaml
check with exit 0. Each bad file has one defect on a known line: enpid --check-config must
exit 1 and print `FILE:LINE: message` on stderr naming that line. No broker is needed.
"""

import os
import subprocess

import harness
from harness import check, log

GOOD = """\
timezone: Asia/Ho_Chi_Minh
mqtt:
  uri: tcp://127.0.0.1:18830
  client_id: enpid-check
  clean_session: false
  qos: 1
  keepalive: 30s
storage:
  path: {store}
  commit_interval: 1s
  retention: {{ 15m: 400d, 1h: 5y }}
pipeline:
  resolutions: [15m, 1h, 1d, 1mo]
  allowed_lateness: 1h
  max_future: 5m
  max_gap: 1h
inputs:
  - topic: "enpi/{{facility}}/{{meter}}"
    meter_id: "{{facility}}/{{meter}}"
    format: json
    value: value
    timestamp: ts
  - topic: "tele/{{meter}}/SENSOR"
    format: tasmota
  - topic: "shellies/{{meter}}/emeter/0/total"
    format: number
programme:
  name: "Mê Linh cleaner production 2018"
  period: {{ from: 2018-01-01, to: 2019-01-01 }}
  target_saving: 8%
  stretch_saving: 13%
  aware_increase_pp: 20
  applying_increase_pp: 10
facilities:
  - id: f001
    name: "Công ty ABC"
    product_unit: t
    aware_since: 2018-02-01
    applying_since: 2018-06-01
    baseline: {{ from: 2017-01-01, to: 2018-01-01, model: sec }}
    meters:
      - {{ id: f001/em1,  kind: energy, carrier: electricity, reading: cumulative }}
      - {{ id: f001/gas,  kind: energy, carrier: gas, to_kwh: 10.55, reading: delta, interval: 15m }}
      - {{ id: f001/prod, kind: production, reading: cumulative, rollover: 1000000 }}
  - id: f002
    name: "Factory two"
    timezone: Europe/Berlin
    baseline: {{ sec: 412.5 }}
    meters:
      - {{ id: f002/em, kind: energy, scale: 0.001, max_rate: 5000 }}
"""


def good_lines(store):
    return GOOD.format(store=store).splitlines()


def replace_line(lines, startswith, new):
    """Replaces the first line starting with `startswith` (after indentation); returns
    the new text and the 1-based line number."""
    for i, ln in enumerate(lines):
        if ln.strip().startswith(startswith):
            out = list(lines)
            out[i] = new
            return "\n".join(out) + "\n", i + 1
    raise AssertionError("no line starts with %r" % startswith)


def insert_after(lines, startswith, new):
    for i, ln in enumerate(lines):
        if ln.strip().startswith(startswith):
            out = list(lines)
            out.insert(i + 1, new)
            return "\n".join(out) + "\n", i + 2
    raise AssertionError("no line starts with %r" % startswith)


def check_config(enpid, path, first=True):
    args = [enpid, "--check-config", "--config", path] if first else \
        [enpid, "--config", path, "--check-config"]
    return subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=30)


def test(env):
    enpid = env.args.enpid
    store = env.path("store")
    lines = good_lines(store)
    good = env.path("good.yaml")
    with open(good, "w") as f:
        f.write("\n".join(lines) + "\n")
    for first in (True, False):
        p = check_config(enpid, good, first)
        check(p.returncode == 0, "good config: exit %d:\n%s" % (p.returncode, p.stderr))
    check(not os.path.exists(store), "--check-config must not create the store")
    demo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config",
                        "demo.yaml")
    p = check_config(enpid, demo)
    check(p.returncode == 0, "config/demo.yaml: exit %d:\n%s" % (p.returncode, p.stderr))
    log("good configs pass")

    cases = [
        ("unknown top-level key",) + insert_after(lines, "timezone:", "colour: blue"),
        ("unknown mqtt key",) + insert_after(lines, "qos:", "  qos_max: 2"),
        ("unknown meter key",) + replace_line(
            lines, "- { id: f002/em", "      - { id: f002/em, kind: energy, wattage: 5 }"),
        ("bad duration",) + replace_line(lines, "commit_interval:",
                                         "  commit_interval: 5 parsecs"),
        ("resolution not dividing 1d",) + replace_line(lines, "resolutions:",
                                                       "  resolutions: [15m, 7m, 1d]"),
        ("unknown time zone",) + replace_line(lines, "timezone: Asia",
                                              "timezone: Mars/Olympus_Mons"),
        ("unknown facility time zone",) + replace_line(lines, "timezone: Europe",
                                                       "    timezone: Europe/Atlantis"),
        ("bad meter kind",) + replace_line(
            lines, "- { id: f002/em", "      - { id: f002/em, kind: heat }"),
        ("bad reading",) + replace_line(
            lines, "- { id: f002/em", "      - { id: f002/em, kind: energy, reading: sideways }"),
        ("bad format",) + replace_line(lines, "format: number", "    format: xml"),
        ("bad qos",) + replace_line(lines, "qos:", "  qos: 7"),
        ("negative scale",) + replace_line(
            lines, "- { id: f002/em", "      - { id: f002/em, kind: energy, scale: -1 }"),
        ("bad date",) + replace_line(lines, "aware_since:", "    aware_since: 2018-13-45"),
        ("duplicate meter id",) + replace_line(
            lines, "- { id: f002/em", "      - { id: f001/em1, kind: energy }"),
        ("meter id too long",) + replace_line(
            lines, "- { id: f002/em", "      - { id: %s, kind: energy }" % ("m" * 129)),
    ]
    failures = []
    for name, text, line in cases:
        path = env.path("bad-%s.yaml" % name.replace(" ", "-"))
        with open(path, "w") as f:
            f.write(text)
        p = check_config(enpid, path)
        want = "%s:%d:" % (path, line)
        if p.returncode != 1:
            failures.append("%s: exit %d, want 1 (stderr %r)" % (name, p.returncode,
                                                                 p.stderr.strip()))
        elif want not in p.stderr:
            failures.append("%s: stderr lacks %r: %r" % (name, want, p.stderr.strip()))
        else:
            log("%-28s -> %s" % (name, p.stderr.strip().splitlines()[0][-100:]))

    # a YAML syntax error: any line from the defect to the next one is acceptable
    text, line = replace_line(lines, "resolutions:", "  resolutions: [15m, 1h")
    path = env.path("bad-syntax.yaml")
    with open(path, "w") as f:
        f.write(text)
    p = check_config(enpid, path)
    if p.returncode != 1 or not any("%s:%d:" % (path, n) in p.stderr
                                    for n in range(line, line + 3)):
        failures.append("yaml syntax error: exit %d, want 1 and %s:%d..%d: (stderr %r)" %
                        (p.returncode, path, line, line + 2, p.stderr.strip()))
    p = check_config(enpid, env.path("missing.yaml"))
    if p.returncode != 1 or "missing.yaml" not in p.stderr:
        failures.append("missing file: exit %d, want 1 naming the file (stderr %r)" %
                        (p.returncode, p.stderr.strip()))
    check(not failures, "%d of %d bad configs not reported as SPEC §2 says:\n  %s" %
          (len(failures), len(cases) + 2, "\n  ".join(failures)))
    log("%d bad configs rejected with FILE:LINE" % (len(cases) + 2))


if __name__ == "__main__":
    harness.main(test, __doc__)
