"""harness.py - runs the real enpid and enpi against a real mosquitto on loopback.

Shared by the integration tests (like Redis' start_server): a free loopback port (never
1883), a mosquitto with a temporary config (persistence when asked), an enpid config
written from Python data, start / kill -9 / restart / SIGTERM of the real enpid with its
stderr in a file (printed when a test fails), QoS 1 publishing with paho (waiting until the
broker has acknowledged every message), waiting until enpid has committed, and running
`enpi --db DIR ... --format json`. Also the comparison of `enpi query` rows with the rows
of reference.py, field by field, to 1e-9 relative.

Each test owns one work folder (--workdir, under the build tree) with everything in it;
it is wiped at the start and kept after a failure for inspection.
"""

import argparse
import collections
import datetime as _dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback

import paho.mqtt.client as mqtt

REL_TOL = 1e-9
ABS_TOL = 1e-12
QUERY_KEYS_METER = ["meter", "start", "end", "energy_kwh", "units", "sec", "readings",
                    "estimated", "resets", "late", "duplicates", "final"]
QUERY_KEYS_FACILITY = ["facility"] + QUERY_KEYS_METER[1:]


class TestFailure(Exception):
    pass


def log(*args):
    print("[%s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def now_ms():
    return int(time.time() * 1000)


def mosquitto_path():
    """mosquitto lives in /usr/sbin, which a normal user's PATH on Debian lacks."""
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (never 1883)."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port != 1883:
            return port


def wait_until(pred, timeout, interval=0.1, what="condition"):
    """Polls pred() until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TestFailure("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------- mosquitto

class Broker:
    """A mosquitto on a free loopback port, configured in its own folder."""

    def __init__(self, workdir, persistence=False):
        self.dir = os.path.join(workdir, "mosquitto")
        os.makedirs(self.dir, exist_ok=True)
        self.persistence = persistence
        self.port = None
        self.proc = None
        self.log_path = os.path.join(self.dir, "mosquitto.log")

    def _write_conf(self):
        lines = [
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "persistence %s" % ("true" if self.persistence else "false"),
            "persistence_location %s/" % self.dir,
            "autosave_interval 1",
            "max_queued_messages 0",   # no limit: a stopped enpid's session keeps everything
            "max_queued_bytes 0",
            "max_inflight_messages 20",
            "log_dest file %s" % self.log_path,
            "log_type error", "log_type warning", "log_type notice",
            "log_type information", "log_type subscribe",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to a user that cannot write here
        path = os.path.join(self.dir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self):
        for attempt in range(5):
            if self.port is None or attempt > 0:
                self.port = free_port()
            conf = self._write_conf()
            self.proc = subprocess.Popen([mosquitto_path(), "-c", conf], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: self._accepts() or self.proc.poll() is not None, 5,
                           0.05, "mosquitto to listen")
            except TestFailure:
                pass
            if self.proc.poll() is None and self._accepts():
                return self
            self.proc.kill()
            self.proc.wait()
        raise TestFailure("mosquitto did not start; log:\n" + self.log_text())

    def restart_same_port(self):
        self.stop()
        port = self.port
        conf = self._write_conf()
        self.proc = subprocess.Popen([mosquitto_path(), "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._accepts, 10, 0.05, "mosquitto to listen again on %d" % port)

    def _accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def subscriptions(self, client_id):
        """How many SUBSCRIBE lines the broker logged for client_id."""
        prefix = ": %s " % client_id
        return sum(1 for line in self.log_text().splitlines() if prefix in line)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    @property
    def uri(self):
        return "tcp://127.0.0.1:%d" % self.port


# ---------------------------------------------------------------- enpid config

def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v))  # a JSON string is a valid YAML double-quoted scalar


def _yaml_flow(d):
    return "{ " + ", ".join("%s: %s" % (k, _yaml_scalar(v)) for k, v in d.items()) + " }"


def write_config(path, broker_uri, store, facilities, client_id="enpid", timezone="UTC",
                 resolutions=("15m", "1h", "1d", "1mo"), allowed_lateness="1h",
                 max_future="5m", max_gap="1h", commit_interval="1s", qos=1,
                 clean_session=False, inputs=None, extra=""):
    """Writes an enpid YAML config. facilities: list of dicts with id, name, timezone
    (optional), meters (list of dicts of SPEC §3 meter fields)."""
    if inputs is None:
        inputs = [{"topic": "enpi/{facility}/{meter}", "meter_id": "{facility}/{meter}",
                   "format": "json"}]
    out = ["# written by tests/integration/harness.py",
           "timezone: %s" % timezone,
           "mqtt:",
           "  uri: %s" % _yaml_scalar(broker_uri),
           "  client_id: %s" % _yaml_scalar(client_id),
           "  clean_session: %s" % _yaml_scalar(clean_session),
           "  qos: %d" % qos,
           "  keepalive: 30s",
           "storage:",
           "  path: %s" % _yaml_scalar(store),
           "  commit_interval: %s" % commit_interval,
           "pipeline:",
           "  resolutions: [%s]" % ", ".join(resolutions),
           "  allowed_lateness: %s" % allowed_lateness,
           "  max_future: %s" % max_future,
           "  max_gap: %s" % max_gap,
           "inputs:"]
    for inp in inputs:
        first = True
        for k, v in inp.items():
            out.append("%s%s: %s" % ("  - " if first else "    ", k, _yaml_scalar(v)))
            first = False
    out.append("facilities:")
    for f in facilities:
        out.append("  - id: %s" % _yaml_scalar(f["id"]))
        for k in ("name", "timezone", "product_unit"):
            if k in f:
                out.append("    %s: %s" % (k, _yaml_scalar(f[k])))
        out.append("    meters:")
        for m in f["meters"]:
            out.append("      - " + _yaml_flow(m))
    text = "\n".join(out) + "\n" + extra
    with open(path, "w") as fh:
        fh.write(text)
    return text


def reference_meters(facilities):
    """reference.MeterCfg list from the same facility dicts write_config takes."""
    import reference
    res = []
    for f in facilities:
        for m in f["meters"]:
            res.append(reference.MeterCfg(
                m["id"], f["id"], kind=m.get("kind", "energy"),
                reading=m.get("reading", "cumulative"), interval=m.get("interval"),
                scale=m.get("scale", 1.0), to_kwh=m.get("to_kwh", 1.0),
                rollover=m.get("rollover")))
    return res


# ---------------------------------------------------------------- enpid

class Daemon:
    """The real enpid, run with one config; stderr of every run appended to one file."""

    def __init__(self, enpid, config_path, workdir):
        self.enpid = enpid
        self.config = config_path
        self.stderr_path = os.path.join(workdir, "enpid.stderr")
        self.proc = None
        self.runs = 0

    def start(self, broker=None, client_id="enpid"):
        """Starts enpid. With a broker given, wait_ready() can later wait for this run's
        subscription."""
        check(self.proc is None or self.proc.poll() is not None, "enpid already running")
        self._subs_before = broker.subscriptions(client_id) if broker else 0
        self.runs += 1
        with open(self.stderr_path, "a") as f:
            f.write("---- run %d (%s) ----\n" % (self.runs, time.strftime("%H:%M:%S")))
        self._err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen([self.enpid, "--config", self.config],
                                     stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, broker, client_id="enpid", timeout=30):
        """Waits until the broker logged a subscription of this run (start(broker))."""
        def ok():
            if not self.alive():
                raise TestFailure("enpid exited with %s during start-up" % self.proc.returncode)
            return broker.subscriptions(client_id) > self._subs_before
        wait_until(ok, timeout, 0.05, "enpid to subscribe")

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
            self._err.close()
        self.proc = None

    def stop(self, timeout=10):
        """SIGTERM; returns (exit code, seconds taken). Kills after `timeout` seconds."""
        if self.proc is None:
            return None, 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "killed after %ss" % timeout
        self._err.close()
        self.proc = None
        return rc, time.monotonic() - t0

    def stderr_text(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# ---------------------------------------------------------------- publishing

class Publisher:
    """A paho client publishing at QoS 1 (or 0) to the broker; publish_all waits until
    the broker acknowledged every message."""

    def __init__(self, port, client_id=None, inflight=20):
        self.client = mqtt.Client(client_id=client_id or "pub-%d-%d" % (os.getpid(), port),
                                  clean_session=True)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port, keepalive=60)
        self.client.loop_start()

    def publish_all(self, messages, qos=1, timeout=120, pace=None):
        """messages: iterable of (topic, payload bytes|str). pace: optional callable
        invoked after each publish (e.g. to sleep)."""
        infos = []
        for topic, payload in messages:
            info = self.client.publish(topic, payload, qos=qos)
            check(info.rc == mqtt.MQTT_ERR_SUCCESS, "publish failed rc=%s" % info.rc)
            infos.append(info)
            if pace:
                pace()
        deadline = time.monotonic() + timeout
        for info in infos:
            left = deadline - time.monotonic()
            check(left > 0, "broker did not acknowledge every publish in %ss" % timeout)
            info.wait_for_publish(left)
            check(info.is_published(), "publish not acknowledged in %ss" % timeout)
        return len(infos)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def json_message(meter_topic, ts_ms, value):
    return meter_topic, json.dumps({"ts": int(ts_ms), "value": value})


# ---------------------------------------------------------------- enpi (CLI)

class Cli:
    def __init__(self, enpi, db):
        self.enpi = enpi
        self.db = db

    def run(self, *args, timeout=60):
        """Runs `enpi --db DB ARGS`; returns CompletedProcess (text)."""
        return subprocess.run([self.enpi, "--db", self.db] + list(args), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=timeout)

    def json(self, *args):
        """Runs a command with --format json; returns the parsed JSON (key order kept as
        lists of pairs inside OrderedDicts)."""
        p = self.run(*(list(args) + ["--format", "json"]))
        check(p.returncode == 0, "enpi %s exited %d: %s" % (" ".join(args), p.returncode,
                                                            p.stderr.strip()))
        try:
            return json.loads(p.stdout, object_pairs_hook=collections.OrderedDict)
        except ValueError as e:
            raise TestFailure("enpi %s printed invalid JSON (%s):\n%s" %
                              (" ".join(args), e, p.stdout[:2000]))

    def query(self, kind, ident, res, frm, to):
        return self.json("query", "--" + kind, ident, "--resolution", res, "--from", frm,
                         "--to", to)


def totals_of(rows):
    t = {"readings": 0, "late": 0, "duplicates": 0, "resets": 0}
    for r in rows:
        for k in t:
            t[k] += r.get(k) or 0
    return t


def wait_committed(cli, facilities, res, frm, to, expected, timeout=60, exact=True,
                   stable_for=1.0):
    """Polls `enpi query --facility F` for every facility at resolution res until the
    summed counters reach `expected` ({readings, late, duplicates, resets}): equal when
    exact, at least for late/duplicates otherwise (redeliveries). Then waits until the
    numbers stay unchanged for stable_for seconds. Returns the last totals."""
    last = {"t": None, "since": time.monotonic()}

    def poll():
        rows = []
        for fid in facilities:
            p = cli.run("query", "--facility", fid, "--resolution", res, "--from", frm,
                        "--to", to, "--format", "json")
            if p.returncode != 0:
                return False
            try:
                rows += json.loads(p.stdout)
            except ValueError:
                return False
        tot = totals_of(rows)
        reached = all(
            (tot[k] == expected[k]) if (exact or k in ("readings", "resets"))
            else (tot[k] >= expected[k]) for k in expected)
        key = json.dumps(tot, sort_keys=True)
        if key != last["t"]:
            last["t"], last["since"] = key, time.monotonic()
            last["tot"] = tot
        return reached and time.monotonic() - last["since"] >= stable_for

    try:
        wait_until(poll, timeout, 0.25, "enpid to commit %s" % expected)
    except TestFailure:
        raise TestFailure("enpid did not commit everything in %ss: expected %s, have %s" %
                          (timeout, expected, last.get("tot")))
    return last["tot"]


# ---------------------------------------------------------------- comparing rows

def parse_time(text):
    """ISO 8601 with offset -> (UTC ms, offset seconds)."""
    check(isinstance(text, str), "time is not a string: %r" % (text,))
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TestFailure("time %r is not ISO 8601" % text)
    check(t.tzinfo is not None, "time %r has no UTC offset" % text)
    return int(round(t.timestamp() * 1000)), int(t.utcoffset().total_seconds())


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, (int, float)) or isinstance(a, bool):
        return False
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


def iso_of(zone, t_ms):
    return zone.local(t_ms).isoformat()


class Mismatches:
    """Collects differences (keeps the first few in detail)."""

    def __init__(self, limit=25):
        self.items = []
        self.count = 0
        self.limit = limit

    def add(self, msg):
        self.count += 1
        if len(self.items) < self.limit:
            self.items.append(msg)

    def raise_if_any(self, what):
        if self.count:
            raise TestFailure("%d mismatches in %s:\n  %s%s" % (
                self.count, what, "\n  ".join(self.items),
                "\n  ..." if self.count > len(self.items) else ""))


def check_keys(row, kind, where, mm):
    want = QUERY_KEYS_METER if kind == "meter" else QUERY_KEYS_FACILITY
    got = list(row.keys())
    if got != want:
        mm.add("%s: keys %s, SPEC §7 wants %s" % (where, got, want))
        return False
    return True


def _is_zero_ref_row(r, kind):
    if kind == "meter":
        return r["value"] == 0 and r["estimated"] == 0 and not any(
            r[k] for k in ("readings", "resets", "late", "duplicates"))
    return not any(r[k] for k in ("energy_kwh", "units", "est_energy", "est_units",
                                  "readings", "resets", "late", "duplicates"))


def _is_zero_cli_row(r):
    est = r.get("estimated")
    est_vals = list(est.values()) if isinstance(est, dict) else [est]
    return not any(v for v in [r.get("energy_kwh"), r.get("units"), r.get("readings"),
                               r.get("resets"), r.get("late"), r.get("duplicates")]
                   + est_vals)


def compare_rows(kind, ident, res, got, ref_rows, zone, ref, facility, mm,
                 t_before, t_after, energy_meter=True, lenient_counts=False):
    """Compares `enpi query` rows (parsed JSON) with reference rows for one meter or
    facility at one resolution. Windows present on only one side must be all-zero there.
    `final` is checked against the reference evaluated at the query's start and end time
    (rows whose finality changed in between are not judged). lenient_counts: late and
    duplicates may exceed the reference (broker redeliveries after kill -9)."""
    where0 = "%s %s %s" % (kind, ident, res)
    if not isinstance(got, list):
        mm.add("%s: output is not a JSON array" % where0)
        return
    by_start = {}
    for i, row in enumerate(got):
        where = "%s row %d" % (where0, i)
        if not isinstance(row, dict):
            mm.add("%s: not an object" % where)
            continue
        check_keys(row, kind, where, mm)
        if row.get(kind) != ident:
            mm.add("%s: %s is %r, want %r" % (where, kind, row.get(kind), ident))
        try:
            start, off_s = parse_time(row.get("start"))
            end, off_e = parse_time(row.get("end"))
        except TestFailure as e:
            mm.add("%s: %s" % (where, e))
            continue
        if off_s != zone.offset_s(start):
            mm.add("%s: start %s not in the facility's offset (%+d s)" %
                   (where, row["start"], zone.offset_s(start)))
        if off_e != zone.offset_s(end):
            mm.add("%s: end %s not in the facility's offset (%+d s)" %
                   (where, row["end"], zone.offset_s(end)))
        if start in by_start:
            mm.add("%s: window %s listed twice" % (where, row["start"]))
        by_start[start] = (end, row)
    starts = [parse_time(r["start"])[0] for r in got if isinstance(r, dict) and "start" in r]
    if starts != sorted(starts):
        mm.add("%s: rows not in ascending time order" % where0)

    ref_by_start = {r["start"]: r for r in ref_rows}
    for start in sorted(set(by_start) | set(ref_by_start)):
        where = "%s window %s" % (where0, iso_of(zone, start))
        g = by_start.get(start)
        r = ref_by_start.get(start)
        if g is None:
            if not _is_zero_ref_row(r, kind):
                mm.add("%s: missing from enpi's output (reference %s)" % (where, _fmt_ref(r)))
            continue
        end, row = g
        if r is None:
            if not _is_zero_cli_row(row):
                mm.add("%s: enpi has a row the reference does not: %s" %
                       (where, json.dumps(row)))
            continue
        if end != r["end"]:
            mm.add("%s: end %s, want %s" % (where, row.get("end"), iso_of(zone, r["end"])))
        if kind == "meter":
            want = {
                "energy_kwh": r["value"] if energy_meter else None,
                "units": None if energy_meter else r["value"],
                "sec": None,
                "estimated": r["estimated"],
            }
        else:
            want = {
                "energy_kwh": r["energy_kwh"],
                "units": r["units"],
                "sec": r["sec"],
                "estimated": {"energy_kwh": r["est_energy"], "units": r["est_units"]},
            }
        for k, v in want.items():
            gv = row.get(k)
            if isinstance(v, dict):
                if not isinstance(gv, dict) or list(gv.keys()) != list(v.keys()):
                    mm.add("%s: %s is %s, want an object with keys %s" %
                           (where, k, json.dumps(gv), list(v.keys())))
                    continue
                for kk, vv in v.items():
                    if not close(gv[kk], vv):
                        mm.add("%s: %s.%s = %r, want %r" % (where, k, kk, gv[kk], vv))
            elif not close(gv, v):
                mm.add("%s: %s = %r, want %r" % (where, k, gv, v))
        for k in ("readings", "resets", "late", "duplicates"):
            gv = row.get(k)
            if not isinstance(gv, int) or isinstance(gv, bool):
                mm.add("%s: %s = %r is not an integer" % (where, k, gv))
                continue
            if lenient_counts and k in ("late", "duplicates"):
                if gv < r[k]:
                    mm.add("%s: %s = %d, want at least %d" % (where, k, gv, r[k]))
            elif gv != r[k]:
                mm.add("%s: %s = %d, want %d" % (where, k, gv, r[k]))
        f0 = ref.is_final(facility, r["end"], t_before)
        f1 = ref.is_final(facility, r["end"], t_after)
        if not isinstance(row.get("final"), bool):
            mm.add("%s: final = %r is not a boolean" % (where, row.get("final")))
        elif f0 == f1 and row["final"] != f0:
            mm.add("%s: final = %r, want %r" % (where, row["final"], f0))


def _fmt_ref(r):
    return json.dumps({k: v for k, v in r.items() if k not in ("start", "end")})


def compare_all(cli, ref, facilities, frm, to, lenient_counts=False, workers=2,
                meters=True):
    """Queries every meter (unless meters=False) and facility at every resolution (two
    `enpi` processes at a time) and compares with the reference; raises TestFailure
    listing the mismatches. Returns the number of rows seen."""
    import concurrent.futures

    jobs = []  # (kind, ident, res, facility dict, meter dict or None)
    for f in facilities:
        for res in ref.resolutions:
            for m in f["meters"] if meters else []:
                jobs.append(("meter", m["id"], res, f, m))
            jobs.append(("facility", f["id"], res, f, None))

    def run(job):
        kind, ident, res = job[:3]
        t0 = now_ms()
        got = cli.query(kind, ident, res, frm, to)
        return got, t0, now_ms()

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, jobs))
    mm = Mismatches()
    rows_seen = 0
    for (kind, ident, res, f, m), (got, t0, t1) in zip(jobs, results):
        fid = f["id"]
        rows_seen += len(got) if isinstance(got, list) else 0
        if kind == "meter":
            compare_rows("meter", ident, res, got, ref.meter_rows(ident, res), ref.zones[fid],
                         ref, fid, mm, t0, t1,
                         energy_meter=m.get("kind", "energy") == "energy",
                         lenient_counts=lenient_counts)
        else:
            compare_rows("facility", ident, res, got, ref.facility_rows(ident, res),
                         ref.zones[fid], ref, fid, mm, t0, t1, lenient_counts=lenient_counts)
    mm.raise_if_any("enpi query output vs the SPEC §5 reference")
    return rows_seen


def compare_meter_states(cli, ref, extra_rejects=None, skip_rejected=(), lenient_counts=False):
    """Compares `enpi meters --format json` (lifetime readings, resets, late, duplicates,
    rejected, last_reading) with the reference. extra_rejects: {meter: n} rejects the
    reference does not model; skip_rejected: meters whose `rejected` is not judged;
    lenient_counts: late/duplicates/rejected may be higher (redeliveries)."""
    extra_rejects = extra_rejects or {}
    mm = Mismatches()
    state = {m.get("meter"): m for m in cli.json("meters")}
    for mid in ref.meters:
        st = state.get(mid)
        if st is None:
            mm.add("meters: %s missing" % mid)
            continue
        want = {k: sum(r[k] for r in ref.meter_rows(mid, ref.resolutions[-1]))
                for k in ("readings", "resets", "late", "duplicates")}
        if mid not in skip_rejected:
            want["rejected"] = ref.state[mid].rejected + extra_rejects.get(mid, 0)
        for k, v in want.items():
            got = st.get(k)
            if lenient_counts and k in ("late", "duplicates", "rejected"):
                if not isinstance(got, int) or got < v:
                    mm.add("meters: %s %s = %r, want at least %d" % (mid, k, got, v))
            elif got != v:
                mm.add("meters: %s %s = %r, want %d" % (mid, k, got, v))
        try:
            got_last = parse_time(st.get("last_reading"))[0]
        except TestFailure as e:
            mm.add("meters: %s last_reading: %s" % (mid, e))
            continue
        if got_last != ref.last_ts(mid):
            zone = ref.zones[ref.meters[mid].facility]
            mm.add("meters: %s last_reading %s, want %s" % (
                mid, st.get("last_reading"), iso_of(zone, ref.last_ts(mid))))
    mm.raise_if_any("enpi meters vs the reference")


# ---------------------------------------------------------------- test driver

class Env:
    """What a test gets: its args, work folder, and things to clean up."""

    def __init__(self, args):
        self.args = args
        self.workdir = args.workdir
        self.brokers = []
        self.daemons = []

    def broker(self, persistence=False):
        b = Broker(self.workdir, persistence).start()
        self.brokers.append(b)
        return b

    def daemon(self, config_path):
        d = Daemon(self.args.enpid, config_path, self.workdir)
        self.daemons.append(d)
        return d

    def cli(self, db):
        return Cli(self.args.enpi, db)

    def path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def cleanup(self):
        for d in self.daemons:
            if d.proc is not None:
                d.kill9()
        for b in self.brokers:
            b.stop()


def main(test_fn, description=""):
    """Parses --enpid/--enpi/--workdir/--sim, runs test_fn(env), prints enpid's stderr and
    the broker log on failure, exits 0/1."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--enpid", required=True)
    ap.add_argument("--enpi", required=True)
    ap.add_argument("--sim", default=os.path.join(os.path.dirname(__file__), "..", "sim",
                                                  "enpi-sim"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work folder on success")
    args = ap.parse_args()
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    if args.workdir is None:
        args.workdir = os.path.join("/tmp", "enpi-%s-%d" % (name, os.getpid()))
    args.workdir = os.path.abspath(args.workdir)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    for exe in (args.enpid, args.enpi):
        if not os.access(exe, os.X_OK):
            print("FAIL: %s is not an executable" % exe)
            sys.exit(1)
    env = Env(args)
    t0 = time.monotonic()
    ok = False
    try:
        test_fn(env)
        ok = True
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
    except Exception:
        print("FAIL: unexpected error", flush=True)
        traceback.print_exc()
    finally:
        env.cleanup()
    if not ok:
        for d in env.daemons:
            print("\n==== enpid stderr (%s), last 200 lines ====" % d.stderr_path)
            print("\n".join(d.stderr_text().splitlines()[-200:]))
        for b in env.brokers:
            print("\n==== mosquitto log (%s), last 40 lines ====" % b.log_path)
            print("\n".join(b.log_text().splitlines()[-40:]))
        print("\nwork folder kept: %s" % args.workdir)
        print("%s: FAILED after %.1fs" % (name, time.monotonic() - t0))
        sys.exit(1)
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    print("%s: passed in %.1fs" % (name, time.monotonic() - t0))
    sys.exit(0)
