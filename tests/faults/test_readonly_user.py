#!/usr/bin/python3
"""test_readonly_user - an analyst's account reads the store while enpid runs: read
access only, no write.

enpid runs as root and ingests; the store is made readable, not writable, for others
(what the unit's group access gives an analyst). Then `enpi` runs as another user (uid
and gid 65534, no supplementary groups, through setpriv) while enpid keeps running:
`facilities`, `meters` and `query` succeed and print what root's `enpi` prints (the same
query rows), and that user cannot create a file in the store (so enpi needs no write
access: its secondary instance keeps its scratch files in $TMPDIR). Needs root and setpriv (util-linux); otherwise it says why
and fails, since CI runs as root.
"""
# ctest-timeout: 120

import json
import os
import shutil
import subprocess

import harness
from harness import check, log

T0 = 1717200000000  # 2024-06-01T00:00:00Z
FACS = [{"id": "ro", "name": "Read-only works", "timezone": "UTC", "meters": [
    {"id": "ro/em", "kind": "energy", "reading": "cumulative"},
    {"id": "ro/prod", "kind": "production", "reading": "cumulative"}]}]
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def snapshot(store):
    out = {}
    for root, _, files in os.walk(store):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            out[os.path.relpath(p, store)] = (st.st_size, st.st_mtime_ns)
    return out


def test(env):
    check(os.geteuid() == 0, "this test needs root (to run enpi as another user)")
    check(shutil.which("setpriv"), "setpriv (util-linux) is missing")
    broker = env.broker()
    store, conf = env.path("store"), env.path("enpid.yaml")
    harness.write_config(conf, broker.uri, store, FACS, resolutions=["1h", "1d"],
                         commit_interval="200ms")
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    pub = harness.Publisher(broker.port)
    msgs = []
    for i in range(48):
        msgs.append(harness.json_message("enpi/ro/em", T0 + i * 1800_000, 1000.0 + 37.5 * i))
        msgs.append(harness.json_message("enpi/ro/prod", T0 + i * 1800_000, 10.0 * i))
    pub.publish_all(msgs)
    pub.close()
    cli = env.cli(store)
    harness.wait_committed(cli, ["ro"], "1d", "2024-01-01", "2025-01-01",
                           {"readings": 96}, stable_for=0.5)

    # read access for others, no write: what a member of the store's group gets
    os.chmod(env.workdir, 0o755)
    for root, dirs, files in os.walk(store):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    os.chmod(store, 0o755)
    tmp = env.path("tmp-nobody")
    os.makedirs(tmp)
    os.chmod(tmp, 0o777)
    before = snapshot(store)

    def as_nobody(*args):
        return subprocess.run(NOBODY + ["env", "TMPDIR=" + tmp, env.args.enpi, "--db", store]
                              + list(args) + ["--format", "json"], capture_output=True,
                              text=True, timeout=60)
    for args in (["facilities"], ["meters"],
                 ["query", "--facility", "ro", "--resolution", "1h", "--from", "2024-06-01",
                  "--to", "2024-06-02"]):
        p = as_nobody(*args)
        check(p.returncode == 0, "enpi %s as uid 65534: exit %d: %s" % (args[0], p.returncode,
                                                                       p.stderr.strip()))
        mine = cli.json(*args)
        theirs = json.loads(p.stdout)
        if args[0] != "query":  # row order and content; 'stale' depends on the clock only
            check(len(theirs) == len(mine), "%s: %d rows as uid 65534, %d as root" %
                  (args[0], len(theirs), len(mine)))
        else:
            check(theirs == mine, "query rows differ between uid 65534 and root")
    log("enpi facilities/meters/query work as uid 65534 with read access only")
    check(daemon.alive(), "enpid died")
    after = snapshot(store)
    changed = [k for k in before if k in after and before[k] != after[k]]
    # enpid itself may have written (a flush, its LOG); enpi as nobody cannot write at all:
    p = subprocess.run(NOBODY + ["touch", os.path.join(store, "nobody-was-here")],
                       capture_output=True, text=True)
    check(p.returncode != 0 and not os.path.exists(os.path.join(store, "nobody-was-here")),
          "uid 65534 could create a file in the store")
    log("the store is not writable for that user (%d file(s) changed meanwhile, by enpid)" %
        len(changed))
    rc, _ = daemon.stop()
    check(rc == 0, "enpid exited %s on SIGTERM" % rc)


if __name__ == "__main__":
    harness.main(test, __doc__)
