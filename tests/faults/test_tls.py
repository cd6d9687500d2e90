#!/usr/bin/python3
"""test_tls - TLS with a test CA, client certificates and a password (issue 5).

The test makes a throw-away CA with openssl (faultlib.TestCA): a good server certificate
for 127.0.0.1/localhost, one for a wrong host name, an expired one (openssl ca
-startdate/-enddate) and a client certificate. mosquitto gets a TLS listener for enpid
(and a plain one for the test's publisher) with a mosquitto_passwd password file; enpid
reads the password from $CREDENTIALS_DIRECTORY/mqtt.secret (systemd LoadCredential=),
runs with -v (debug logging) and Paho's trace at its maximum level written to a file.

  0. the broker requires a client certificate, enpid has none: refused, retried;
  1. good certificate, client certificate required, password: enpid connects and the
     data it receives equals the reference exactly;
  2. wrong host name: refused with a clear log line; enpid keeps running and retrying
     (a TLS failure is not fatal: an operator fixing the broker's certificate should not
     have to restart enpid as well);
  3. expired certificate: the same; then the broker gets its good certificate back and
     the still-running enpid connects by itself (password from mqtt.password_file now);
  4. the password never appears in enpid's stderr nor in Paho's trace.
"""
# ctest-timeout: 150

import glob
import os
import secrets
import stat

import faultlib
import harness
from harness import check, log
from reference import Reference

RES = ["1h", "1d"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000


def facilities():
    return [{"id": "t1", "name": "TLS works", "timezone": "UTC",
             "meters": [{"id": "t1/em", "kind": "energy", "reading": "cumulative"}]}]


def readings(start_i, n):
    t0 = 1735689600000  # 2025-01-01T00:00:00Z
    return [("t1/em", t0 + i * 10 * MIN, 1000.0 + 2.5 * i) for i in range(start_i, start_i + n)]


def verbose_daemon(env, conf):
    """harness.Daemon running `enpid -v` (debug logging) through a small wrapper."""
    wrapper = env.path("enpid-v")
    with open(wrapper, "w") as f:
        # Paho's trace (maximum level) into one file per run: Paho truncates it at start.
        f.write("#!/bin/sh\n"
                "export MQTT_C_CLIENT_TRACE='%s/paho-trace.'$$'.txt'\n"
                "export MQTT_C_CLIENT_TRACE_LEVEL=MAXIMUM\n"
                "export MQTT_C_CLIENT_TRACE_MAX_LINES=10000000\n"
                "exec '%s' -v \"$@\"\n" % (env.workdir, env.args.enpid))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    d = harness.Daemon(wrapper, conf, env.workdir)
    env.daemons.append(d)
    return d


def refused(env, broker, daemon, what, pattern):
    """Starts enpid against a broker with a bad certificate: it must log why, stay up and
    retry, and never connect."""
    mark = faultlib.log_mark(daemon)
    daemon.start()
    m, _ = faultlib.wait_log(daemon, pattern, mark, timeout=20,
                             what="enpid to report the %s" % what)
    log("%s refused: %s" % (what, m.group(0).strip()))
    faultlib.wait_log(daemon, r"attempt [3-9]\d*, after", mark, timeout=20,
                      what="enpid to keep retrying after the %s" % what)
    text = faultlib.stderr_since(daemon, mark)
    check(daemon.alive(), "enpid exited after the %s" % what)
    check("mqtt: connected to" not in text and "mqtt: reconnected to" not in text,
          "enpid connected to a broker with a %s" % what)
    return mark


def test(env):
    pki = faultlib.TestCA(env.path("pki"))
    good = pki.issue("server", "127.0.0.1", ["IP:127.0.0.1", "DNS:localhost"])
    wrong = pki.issue("wrong", "wrong.example.com", ["DNS:wrong.example.com"])
    expired = pki.issue("expired", "127.0.0.1", ["IP:127.0.0.1", "DNS:localhost"],
                        startdate="20200101000000Z", enddate="20210101000000Z")
    client_cert, client_key = pki.issue("client", "enpid", client=True)

    password = "pw-" + secrets.token_hex(12)
    passwd = env.path("mosquitto.passwd")
    faultlib.mosquitto_passwd(passwd, "enpid", password)
    creds = env.path("credentials")
    os.makedirs(creds, mode=0o700)
    with open(os.path.join(creds, "mqtt.secret"), "w") as f:
        f.write(password + "\n")
    os.environ["CREDENTIALS_DIRECTORY"] = creds

    broker = faultlib.TlsBroker(env.workdir, pki.cert, good[0], good[1],
                                require_certificate=True, password_file=passwd).start()
    env.brokers.append(broker)
    facs = facilities()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    harness.write_config(conf, broker.tls_uri, store, facs, resolutions=RES)
    cli = env.cli(store)
    seq = readings(0, 200)
    ref = Reference({"t1": "UTC"}, harness.reference_meters(facs), RES)

    # 0. the broker requires a client certificate and enpid has none
    faultlib.mqtt_options(conf, username="enpid", reconnect_max="2s",
                          tls={"ca_file": pki.cert})
    daemon = verbose_daemon(env, conf)
    refused(env, broker, daemon, "missing client certificate",
            r"mqtt: TLS: .*certificate required.*")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM while retrying" % rc)

    # 1. good certificate, client certificate, password from $CREDENTIALS_DIRECTORY
    faultlib.mqtt_options(conf, tls={"ca_file": pki.cert, "cert_file": client_cert,
                                     "key_file": client_key})
    daemon.start(broker)
    daemon.wait_ready(broker)
    check("(p2, c0, k30, u'enpid')" in broker.log_text() or
          "u'enpid'" in broker.log_text(), "the broker did not see user enpid log in")
    pub = harness.Publisher(broker.port)
    pub.publish_all([harness.json_message("enpi/" + m, t, v) for m, t, v in seq])
    for mid, t, v in seq:
        ref.feed(mid, t, v)
    harness.wait_committed(cli, ["t1"], "1d", FROM, TO, ref.totals("1d"), timeout=30)
    harness.compare_all(cli, ref, facs, FROM, TO)
    log("good certificate: connected with a client certificate and a password; data exact")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)

    # 2. wrong host name
    broker.restart_with(wrong[0], wrong[1], require_certificate=False)
    refused(env, broker, daemon, "wrong host name",
            r"<3>mqtt: TLS: the broker's certificate is refused: IP address mismatch.*"
            r"wrong\.example\.com.*")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM while retrying" % rc)

    # 3. expired, then fixed while enpid keeps retrying; the password now from
    #    mqtt.password_file instead of $CREDENTIALS_DIRECTORY
    secret = env.path("mqtt.secret")
    with open(secret, "w") as f:
        f.write(password + "\n")
    os.chmod(secret, 0o600)
    del os.environ["CREDENTIALS_DIRECTORY"]
    faultlib.mqtt_options(conf, password_file=secret)
    broker.restart_with(expired[0], expired[1])
    mark = refused(env, broker, daemon, "expired certificate",
                   r"<3>mqtt: TLS: the broker's certificate is refused: certificate has "
                   r"expired.*2021.*")
    subs = broker.subscriptions("enpid")
    broker.restart_with(good[0], good[1])
    faultlib.wait_log(daemon, r"mqtt: (re)?connected to", mark, timeout=20,
                      what="enpid to connect once the certificate is fixed")
    harness.wait_until(lambda: broker.subscriptions("enpid") > subs, 10, 0.1,
                       "enpid to subscribe once the certificate is fixed")
    more = readings(200, 50)
    pub = harness.Publisher(broker.port)
    pub.publish_all([harness.json_message("enpi/" + m, t, v) for m, t, v in more])
    pub.close()
    for mid, t, v in more:
        ref.feed(mid, t, v)
    harness.wait_committed(cli, ["t1"], "1d", FROM, TO, ref.totals("1d"), timeout=30)
    harness.compare_all(cli, ref, facs, FROM, TO)
    log("expired certificate replaced: enpid connected by itself; data exact")
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)

    # 4. no secret in any log
    text = daemon.stderr_text()
    check("debug" in text.lower() or "<7>" in text, "enpid did not log at debug level")
    check(password not in text, "the MQTT password appears in enpid's stderr")
    traces = glob.glob(env.path("paho-trace.*"))
    check(len(traces) >= 4, "expected a Paho trace per run, found %s" % traces)
    size = 0
    for path in traces:
        with open(path, errors="replace") as f:
            trace_text = f.read()
        size += len(trace_text)
        check(password not in trace_text, "the MQTT password appears in Paho's trace %s" % path)
    check(size > 10000, "Paho's traces are suspiciously small (%d bytes)" % size)
    log("the password is in none of enpid's stderr (debug level) and Paho's traces (%d "
        "bytes)" % size)


if __name__ == "__main__":
    harness.main(test, __doc__)
