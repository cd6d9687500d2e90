#!/usr/bin/python3
"""test_metrics - the Prometheus endpoint (SPEC §8, issue 5) of the real enpid.

enpid serves GET /metrics from its libuv loop (libmicrohttpd without threads). Against a
real mosquitto this test scrapes it with urllib and holds every scrape to a strict parser
of the text exposition format 0.0.4 (HELP and TYPE once per family before its samples,
counters end in _total, escaped label values, numeric values). Then:
- the counters move as readings are published: messages received/ingested, readings
  applied, duplicates and late readings, each injected reject under its own reason and
  under its input, every other reason present at 0; the distinct unknown meter ids;
  commits, the commit-latency histogram (cumulative, +Inf = _count) and the last-commit
  time;
- other paths are 404, other methods 405 (with Allow), HEAD is 200 without a body;
- eight concurrent scrapers all get complete, identical-shaped answers;
- idle and half-sent connections neither delay scrapes nor stop ingestion, and the server
  closes them after its idle timeout;
- mqtt_connected drops to 0 when the broker stops and returns to 1, with the reconnect
  counted, when it is back;
- SIGTERM releases the port; a metrics.listen port already in use is a start-up error.
"""
# ctest-timeout: 120

import concurrent.futures
import json
import re
import socket
import time
import urllib.error
import urllib.request

import harness
from harness import check, log

MIN = 60_000
T0 = 1748736000000  # 2025-06-01T00:00:00Z
REASONS = ["parse_error", "missing_value", "not_finite", "negative", "too_old", "future",
           "too_large", "bad_timestamp", "bad_meter_id", "unknown_meter", "no_input",
           "too_late", "implausible"]
IDLE_TIMEOUT_S = 10  # ENPID_METRICS_IDLE_S in daemon/metrics.c


# ---------------------------------------------------------------- exposition parser

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)\})? (\S+)$" % (NAME, LABEL, LABEL))


def unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def parse_exposition(text):
    """Strictly parses Prometheus text format 0.0.4. Returns (types, samples): types maps
    a family to its type; samples maps (name, ((label, value), ...)) to a float. Raises
    TestFailure on anything malformed."""
    check(text.endswith("\n"), "exposition does not end with a line feed")
    types, helps, samples = {}, {}, {}
    current = None
    seen_sample_of = set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("# HELP "):
            m = re.match(r"^# HELP (%s) (.*)$" % NAME, line)
            check(m is not None, "bad HELP " + where)
            fam = m.group(1)
            check(fam not in helps, "second HELP " + where)
            check(re.fullmatch(r"(?:[^\\]|\\[\\n])*", m.group(2)) is not None,
                  "bad escape in HELP " + where)
            helps[fam] = m.group(2)
            current = fam
            continue
        if line.startswith("# TYPE "):
            m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME,
                         line)
            check(m is not None, "bad TYPE " + where)
            fam = m.group(1)
            check(fam == current and fam not in types and fam not in seen_sample_of,
                  "TYPE not right after its HELP " + where)
            types[fam] = m.group(2)
            check((m.group(2) == "counter") == fam.endswith("_total"),
                  "counters, and only counters, end in _total: " + where)
            continue
        check(not line.startswith("#"), "unexpected comment " + where)
        m = SAMPLE.match(line)
        check(m is not None, "malformed sample " + where)
        name = m.group(1)
        fam = name
        if types.get(current) == "histogram" and name in (current + "_bucket",
                                                          current + "_sum",
                                                          current + "_count"):
            fam = current
        check(fam == current and fam in types, "sample outside its family " + where)
        seen_sample_of.add(fam)
        labels = tuple((k, unescape(v)) for k, v in re.findall(LABEL, m.group(2) or ""))
        check(len(set(k for k, _ in labels)) == len(labels), "repeated label " + where)
        key = (name, labels)
        check(key not in samples, "duplicate series " + where)
        try:
            samples[key] = float(m.group(m.re.groups))
        except ValueError:
            raise harness.TestFailure("bad value " + where)
    for fam in helps:
        check(fam in types and fam in seen_sample_of, "family %s without TYPE or samples" % fam)
    return types, samples


class Scrape:
    """One parsed scrape, with lookups."""

    def __init__(self, text):
        self.text = text
        self.types, self.samples = parse_exposition(text)

    def get(self, name, **labels):
        key = (name, tuple(sorted(labels.items())))
        for (n, ls), v in self.samples.items():
            if n == name and tuple(sorted(ls)) == key[1]:
                return v
        raise harness.TestFailure("no sample %s%s in the scrape" % (name, labels or ""))

    def series(self, name):
        return {ls: v for (n, ls), v in self.samples.items() if n == name}


# ---------------------------------------------------------------- HTTP helpers

def http(port, path="/metrics", method="GET", body=None, timeout=5, host="127.0.0.1"):
    """Returns (status, headers, body bytes)."""
    req = urllib.request.Request("http://%s:%d%s" % (host, port, path), data=body,
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def scrape(port, host="127.0.0.1"):
    status, headers, body = http(port, host=host)
    check(status == 200, "GET /metrics: status %s" % status)
    ctype = headers.get("Content-Type", "")
    check(ctype.startswith("text/plain; version=0.0.4"), "content type %r" % ctype)
    return Scrape(body.decode("utf-8"))


# ---------------------------------------------------------------- the test

def facilities():
    return [{"id": "f1", "name": "Metrics", "meters": [
        {"id": "f1/em", "kind": "energy", "reading": "cumulative"},
        {"id": "f1/gas", "kind": "energy", "reading": "delta", "interval": "5m"},
    ]}]


def good_readings(n):
    out = []
    for i in range(n):
        t = T0 + i * 5 * MIN
        out.append(harness.json_message("enpi/f1/em", t, 1000.0 + 3 * i))
        out.append(harness.json_message("enpi/f1/gas", t, 0.5))
    return out


def bad_messages(last_em_ts, last_em_value):
    """Messages each counted under one reason (or as duplicate/late); returns the list
    and the counts expected."""
    now = harness.now_ms()
    msgs = []
    want = {r: 0 for r in REASONS}

    def add(reason, topic, payload, times=1):
        for _ in range(times):
            msgs.append((topic, payload))
        if reason:
            want[reason] += times
    add("parse_error", "enpi/f1/em", "this is not json", 3)
    add("missing_value", "enpi/f1/em", json.dumps({"ts": last_em_ts + MIN}), 2)
    add("bad_timestamp", "enpi/f1/em", json.dumps({"ts": "yesterday", "value": 5}), 1)
    add("negative", "enpi/f1/em", json.dumps({"ts": last_em_ts + 2 * MIN, "value": -4}), 1)
    add("too_old", "enpi/f1/em", json.dumps({"ts": 946684799000, "value": 1}), 1)
    add("future", "enpi/f1/em", json.dumps({"ts": now + 3600_000, "value": 1e6}), 2)
    add("unknown_meter", "enpi/f1/ghost", json.dumps({"ts": last_em_ts, "value": 1}), 4)
    # a duplicate (the last reading again) and a late one (between two earlier readings)
    add(None, "enpi/f1/em", json.dumps({"ts": last_em_ts, "value": last_em_value}), 1)
    add(None, "enpi/f1/em", json.dumps({"ts": last_em_ts - 7 * MIN, "value": 1}), 1)
    return msgs, want


def check_counters(s, n_msgs, n_applied, want_rejects):
    check(s.get("enpid_messages_received_total") == n_msgs,
          "received %s, want %d" % (s.get("enpid_messages_received_total"), n_msgs))
    check(s.get("enpid_messages_ingested_total") == n_msgs,
          "ingested %s, want %d" % (s.get("enpid_messages_ingested_total"), n_msgs))
    check(s.get("enpid_readings_applied_total") == n_applied,
          "applied %s, want %d" % (s.get("enpid_readings_applied_total"), n_applied))
    check(s.get("enpid_readings_duplicate_total") == 1, "duplicates %s, want 1" %
          s.get("enpid_readings_duplicate_total"))
    check(s.get("enpid_readings_late_total") == 1, "late %s, want 1" %
          s.get("enpid_readings_late_total"))
    got = {ls[0][1]: v for ls, v in s.series("enpid_rejects_total").items()}
    check(sorted(got) == sorted(REASONS), "reject reasons %s" % sorted(got))
    for r in REASONS:
        check(got[r] == want_rejects[r], "rejects{reason=%s} = %s, want %d" %
              (r, got[r], want_rejects[r]))
    per_input = {}
    for ls, v in s.series("enpid_input_rejects_total").items():
        d = dict(ls)
        check(d["input"] == "0" and d["topic"] == "enpi/{facility}/{meter}",
              "unexpected input labels %s" % d)
        per_input[d["reason"]] = v
    for r in REASONS:
        if r == "no_input":
            check(r not in per_input, "no_input listed under an input")
            continue
        check(per_input.get(r) == want_rejects[r], "input 0 rejects{reason=%s} = %s, want %d"
              % (r, per_input.get(r), want_rejects[r]))
    check(s.get("enpid_input_messages_total", input="0", topic="enpi/{facility}/{meter}")
          == n_msgs, "input 0 messages")


def check_commits(s):
    check(s.get("enpid_commits_total") >= 1, "no commit counted")
    buckets = sorted(((float(dict(ls)["le"]), v) for ls, v in
                      s.series("enpid_commit_duration_seconds_bucket").items()))
    check(buckets[-1][0] == float("inf"), "no +Inf bucket")
    counts = [v for _, v in buckets]
    check(counts == sorted(counts), "histogram buckets not cumulative: %s" % buckets)
    count = s.get("enpid_commit_duration_seconds_count")
    check(counts[-1] == count and count >= 1, "+Inf %s != count %s" % (counts[-1], count))
    check(count <= s.get("enpid_commits_total"), "more latencies than commits")
    check(0 < s.get("enpid_commit_duration_seconds_sum") < 60 * count, "implausible sum")
    last = s.get("enpid_last_commit_time_seconds")
    check(abs(last - time.time()) < 30, "last commit time %s is not recent" % last)


def check_http_errors(port):
    status, _, _ = http(port, "/")
    check(status == 404, "GET / -> %s, want 404" % status)
    status, _, _ = http(port, "/metrics/x")
    check(status == 404, "GET /metrics/x -> %s, want 404" % status)
    for method, body in (("POST", b"x=1"), ("PUT", b"{}"), ("DELETE", None)):
        status, headers, _ = http(port, "/metrics", method, body)
        check(status == 405, "%s /metrics -> %s, want 405" % (method, status))
        check("GET" in headers.get("Allow", ""), "405 without Allow: GET")
    status, _, body = http(port, "/metrics", "HEAD")
    check(status == 200 and body == b"", "HEAD /metrics -> %s with %d bytes" % (status, len(body)))
    status, _, _ = http(port, "/metrics?x=1")
    check(status == 200, "GET /metrics?x=1 -> %s" % status)


def concurrent_scrapes(port, n_threads=8, each=5):
    def worker(_):
        shapes = set()
        for _ in range(each):
            s = scrape(port)
            shapes.add(frozenset(s.types.items()))
        return shapes
    with concurrent.futures.ThreadPoolExecutor(max_workers=n_threads) as pool:
        results = list(pool.map(worker, range(n_threads)))
    shapes = set().union(*results)
    check(len(shapes) == 1, "concurrent scrapes saw %d different family sets" % len(shapes))


def idle_clients(port, publisher, n_before):
    """Holds idle and half-sent connections open while scraping and publishing."""
    socks = []
    for i in range(12):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if i % 3 == 0:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
        socks.append(s)
    t_open = time.monotonic()
    for _ in range(3):
        t = time.monotonic()
        scrape(port)
        check(time.monotonic() - t < 1.0, "a scrape took %.1fs beside idle clients" %
              (time.monotonic() - t))
    more = [harness.json_message("enpi/f1/gas", T0 + 10**8 + i * MIN, 0.25) for i in range(50)]
    publisher.publish_all(more)
    harness.wait_until(lambda: scrape(port).get("enpid_messages_ingested_total") ==
                       n_before + len(more), 15, 0.1, "ingestion beside idle clients")
    # The server closes them after its idle timeout (recv gives EOF or a reset).
    for s in socks:
        s.settimeout(max(0.1, IDLE_TIMEOUT_S + 5 - (time.monotonic() - t_open)))
        try:
            data = s.recv(4096)
            while data:
                data = s.recv(4096)
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise harness.TestFailure("an idle connection was still open after %.0fs" %
                                      (time.monotonic() - t_open))
        s.close()
    log("idle connections closed by the server after %.1fs" % (time.monotonic() - t_open))
    return len(more)


def port_refuses(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


def ipv6_loopback_port():
    """A free port on [::1], or None when this host has no IPv6 loopback."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        port = s.getsockname()[1]
        s.close()
        return port
    except OSError:
        return None


def serves_on_ipv6(env, broker, facs, daemon, conf):
    """Restarts enpid with metrics.listen: "[::1]:PORT" and scrapes it there."""
    port = ipv6_loopback_port()
    if port is None:
        log("no IPv6 loopback here: [::1] listen address not tried")
        return
    harness.write_config(conf, broker.uri, env.path("store"), facs, resolutions=["15m", "1h"],
                         extra="metrics:\n  listen: \"[::1]:%d\"\n" % port)
    daemon.start(broker)
    daemon.wait_ready(broker)
    s = scrape(port, host="[::1]")
    check(s.get("enpid_mqtt_connected") == 1, "not connected (IPv6 run)")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s after SIGTERM (IPv6 run)" % rc)
    log("served on [::1]:%d" % port)


def listen_in_use_is_a_start_error(env, broker, facs):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        conf = env.path("enpid-busy.yaml")
        harness.write_config(conf, broker.uri, env.path("store-busy"), facs,
                             client_id="enpid-busy",
                             extra="metrics:\n  listen: 127.0.0.1:%d\n" % port)
        d = env.daemon(conf)
        mark = len(d.stderr_text())
        d.start()
        rc = d.proc.wait(15)
        d._err.close()
        d.proc = None
        err = d.stderr_text()[mark:]
        check(rc == 1, "enpid with a busy metrics port exited %s, want 1" % rc)
        check("metrics: cannot listen on 127.0.0.1:%d" % port in err,
              "no clear error for the busy port:\n" + err)
    finally:
        holder.close()


def test(env):
    broker = env.broker()
    facs = facilities()
    mport = harness.free_port()
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, env.path("store"), facs, resolutions=["15m", "1h"],
                         extra="metrics:\n  listen: 127.0.0.1:%d\n" % mport)
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    t_start = time.time()

    s0 = scrape(mport)
    check(s0.get("enpid_mqtt_connected") == 1, "not connected at READY")
    check(len(s0.series("enpid_build_info")) == 1, "build_info")
    check(abs(s0.get("enpid_start_time_seconds") - t_start) < 30, "start time far off")
    check(s0.get("enpid_ring_capacity_messages") > 0, "ring capacity")
    for r in REASONS:
        check(s0.get("enpid_rejects_total", reason=r) == 0, "reject %s not 0 at start" % r)
    check(s0.get("enpid_messages_received_total") == 0, "messages before publishing")
    log("first scrape: %d families, %d series" % (len(s0.types), len(s0.samples)))

    pub = harness.Publisher(broker.port)
    good = good_readings(60)
    pub.publish_all(good)
    harness.wait_until(lambda: scrape(mport).get("enpid_messages_ingested_total") == len(good),
                       20, 0.1, "the good readings to be ingested")
    s1 = scrape(mport)
    check(s1.get("enpid_readings_applied_total") == len(good), "applied %s, want %d" %
          (s1.get("enpid_readings_applied_total"), len(good)))

    last_ts = T0 + 59 * 5 * MIN
    bad, want = bad_messages(last_ts, 1000.0 + 3 * 59)
    pub.publish_all(bad)
    n_msgs = len(good) + len(bad)
    harness.wait_until(lambda: scrape(mport).get("enpid_messages_ingested_total") == n_msgs,
                       20, 0.1, "the injected messages to be ingested")
    harness.wait_until(lambda: scrape(mport).get("enpid_commit_duration_seconds_count") >= 1,
                       10, 0.1, "a commit to be observed")
    s2 = scrape(mport)
    check_counters(s2, n_msgs, len(good), want)
    check_commits(s2)
    log("counters, rejects by reason and input, commits: ok")

    check_http_errors(mport)
    concurrent_scrapes(mport)
    log("404/405/HEAD and 8 concurrent scrapers: ok")

    n_msgs += idle_clients(mport, pub, n_msgs)
    pub.close()
    # f1/ghost, committed; recounted in the store at most every 10 s
    harness.wait_until(lambda: scrape(mport).get("enpid_unknown_meter_ids") == 1, 15, 0.2,
                       "enpid_unknown_meter_ids to count f1/ghost")

    broker.stop()
    harness.wait_until(lambda: scrape(mport).get("enpid_mqtt_connected") == 0, 15, 0.1,
                       "mqtt_connected to drop to 0")
    reconnects = scrape(mport).get("enpid_mqtt_reconnects_total")
    broker.restart_same_port()
    harness.wait_until(lambda: scrape(mport).get("enpid_mqtt_connected") == 1, 30, 0.1,
                       "mqtt_connected back to 1")
    s3 = scrape(mport)
    check(s3.get("enpid_mqtt_reconnects_total") >= reconnects + 1, "reconnect not counted")
    check(s3.get("enpid_messages_ingested_total") == n_msgs, "messages changed over the outage")
    log("broker outage: connected 1 -> 0 -> 1, reconnects %d" %
        s3.get("enpid_mqtt_reconnects_total"))

    rc, secs = daemon.stop()
    check(rc == 0, "enpid exited %s after SIGTERM" % rc)
    check(port_refuses(mport), "the metrics port still accepts after exit")

    serves_on_ipv6(env, broker, facs, daemon, conf)

    listen_in_use_is_a_start_error(env, broker, facs)
    log("busy metrics port: start-up error")


if __name__ == "__main__":
    harness.main(test, __doc__)
