#!/usr/bin/python3
"""test_full_disk - a full disk under the store loses no acknowledged reading.

Round 0 (when tests/faults/enospc_shim.so is built): an LD_PRELOAD shim makes every
RocksDB write in the store fail with ENOSPC while a control file exists, the inbox log
still writable: commits fail and are retried, enpid replaces the RocksDB instance (which
cannot open for writing while the fault lasts) and stores everything once it ends, without
a restart.

The store lives on a small tmpfs the test mounts (we run as root in the test container;
without the privilege to mount, the test reports SKIP and passes). enpid runs with a
persistent session at QoS 1 while a publisher streams readings of two meters. Mid-stream
the test fills the file system with a filler file until ENOSPC and keeps publishing:
enpid must log the storage failure, stay alive, and stop receiving (it pauses MQTT: a
clean disconnect, the broker keeps queuing for the persistent session) before it would
acknowledge what it cannot store; the inbox keeps its next segment allocated ahead, so
the pause comes while the active segment still has room for what is in flight. After a while the filler is removed; enpid must recover by
itself (no restart) and, once the stream is through, every row at every resolution and
every meter's state must equal tests/integration/reference.py exactly. A second round
fills the disk again and kills enpid with SIGKILL while it is full; started on the full
disk enpid must fail to start (exit 1, or RocksDB's abort while writing its LOG header),
and once the space is back it starts and the same check holds.

The padding makes each message 128 KiB so that the inbox's preallocated segment (64 MiB)
fills within seconds; the file system is 200 MiB.
"""
# ctest-timeout: 150

import json
import os
import random
import subprocess
import threading
import time

import harness
from harness import check, log
from reference import Reference

RES = ["15m", "1h", "1d", "1mo"]
FROM, TO = "2025-01-01", "2026-01-01"
MIN = 60_000
RATE = 200.0          # messages per second
FS_SIZE = "200m"


def facilities():
    return [{"id": "fd", "name": "Full disk", "timezone": "Europe/Berlin", "meters": [
        {"id": "fd/em", "kind": "energy", "carrier": "electricity", "reading": "cumulative",
         "scale": 0.001},
        {"id": "fd/gas", "kind": "energy", "carrier": "gas", "reading": "delta",
         "interval": "1m", "to_kwh": 10.55},
    ]}]


def readings(rng, n_steps):
    out = []
    t0 = 1751277600000  # 2025-06-30T10:00:00Z
    wh = rng.uniform(1e6, 1e7)
    for i in range(n_steps):
        t = t0 + i * MIN
        out.append(("fd/em", t + 1000, round(wh, 2)))
        out.append(("fd/gas", t, round(rng.uniform(0.1, 0.9), 4)))
        wh += rng.uniform(200, 900)
    return out


def mount_small_fs(path):
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + FS_SIZE, "tmpfs", path],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return p.stderr.strip() or "mount exited %d" % p.returncode
    return None


def fill(path):
    """Writes a filler file until the file system is full; returns its size."""
    n = 0
    chunk = b"\0" * (256 * 1024)
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                n += f.write(chunk)
        except OSError:
            pass
        # the last partial blocks too
        try:
            while True:
                n += f.write(b"\0" * 4096)
        except OSError:
            pass
    return n


class Stream:
    """Publishes the messages in a thread at RATE; each phase waits for the broker's
    acknowledgements of its part."""

    def __init__(self, port, msgs):
        self.pub = harness.Publisher(port, inflight=50)
        self.msgs = msgs
        self.pos = 0

    def publish(self, n):
        part = self.msgs[self.pos:self.pos + n]
        self.pos += len(part)
        t_start = time.monotonic()
        i = [0]

        def pace():
            i[0] += 1
            ahead = i[0] / RATE - (time.monotonic() - t_start)
            if ahead > 0:
                time.sleep(ahead)
        self.pub.publish_all(part, qos=1, pace=pace, timeout=120)

    def rest(self):
        return len(self.msgs) - self.pos


def find_shim(env):
    """enospc_shim.so from tests/faults/CMakeLists.txt: next to the work/ folder ctest
    gives us, or in the build tree of the enpid under test."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(env.workdir)))
    build = os.path.dirname(os.path.dirname(os.path.abspath(env.args.enpid)))
    for path in (os.path.join(here, "enospc_shim.so"),
                 os.path.join(build, "tests", "faults", "enospc_shim.so")):
        if os.path.exists(path):
            return path
    return None


def asan_options():
    """The shim is preloaded ahead of the sanitizer runtime of an ASan build."""
    opts = os.environ.get("ASAN_OPTIONS", "")
    return (opts + ":" if opts else "") + "verify_asan_link_order=0"


def wait_all_so_far(cli, facs, seq, n):
    ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                    RES, allowed_lateness="1h", max_gap="1h")
    for mid, t, v in seq[:n]:
        ref.feed(mid, t, v)
    harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, ref.totals("1mo"),
                           timeout=60, exact=True, stable_for=1.0)


def wait_failure_logged(daemon, since, what):
    def failing():
        check(daemon.alive(), "enpid died while the disk was full")
        text = daemon.stderr_text()[since:]
        return ("pausing MQTT" in text or "STORAGE FAILING" in text
                or "inbox append" in text)
    harness.wait_until(failing, 30, 0.2, what)


def test(env):
    seed = env.args.seed if env.args.seed is not None else int(time.time())
    rng = random.Random(seed)
    log("seed %d (rerun with --seed %d)" % (seed, seed))
    disk = env.path("disk")
    err = mount_small_fs(disk)
    if err:
        log("SKIP: cannot mount a small tmpfs (%s)" % err)
        return
    daemon = None
    try:
        broker = env.broker()
        facs = facilities()
        store = os.path.join(disk, "store")
        filler = os.path.join(disk, "filler")
        conf = env.path("enpid.yaml")
        harness.write_config(conf, broker.uri, store, facs, resolutions=RES,
                             allowed_lateness="1h", max_gap="1h", clean_session=False, qos=1,
                             commit_interval="500ms")
        seq = readings(rng, 1000)
        ref = Reference({f["id"]: f["timezone"] for f in facs}, harness.reference_meters(facs),
                        RES, allowed_lateness="1h", max_gap="1h")
        for mid, t, v in seq:
            check(ref.feed(mid, t, v) == "applied", "clean stream expected")
        expected = ref.totals("1mo")
        # 128 KiB of padding per message: the inbox must take real space, so that the disk
        # fills within seconds rather than after its preallocated segment (64 MiB)
        pad = "x" * 131072
        msgs = [("enpi/" + mid, json.dumps({"ts": t, "value": v, "pad": pad}))
                for mid, t, v in seq]

        shim = find_shim(env)
        control = env.path("enospc-on")
        # enpid's reopen keeps RocksDB's LOG in a folder under $TMPDIR, removed at a clean
        # stop only: keep the ones of killed runs inside the work folder
        os.makedirs(env.path("tmp"), exist_ok=True)
        os.environ["TMPDIR"] = env.path("tmp")
        if shim:
            os.environ.update({"LD_PRELOAD": shim, "ENOSPC_SHIM_DIR": store,
                               "ENOSPC_SHIM_CONTROL": control,
                               "ASAN_OPTIONS": asan_options()})
        try:
            daemon = env.daemon(conf).start(broker)
        finally:
            for k in ("LD_PRELOAD", "ENOSPC_SHIM_DIR", "ENOSPC_SHIM_CONTROL"):
                os.environ.pop(k, None)
        daemon.wait_ready(broker)
        stream = Stream(broker.port, msgs)
        stream.publish(150)
        cli = env.cli(store)

        # ---- round 0: RocksDB's writes fail with ENOSPC (the shim), the inbox still has
        # room: commits fail, enpid replaces the RocksDB instance, which cannot open for
        # writing while the fault lasts; once it ends, the held batch and everything after
        # it is stored, without a restart
        if shim:
            mark = len(daemon.stderr_text())
            open(control, "w").close()
            stream.publish(150)

            def reopen_refused():
                check(daemon.alive(), "enpid died while RocksDB could not write")
                return "the store is still not writable" in daemon.stderr_text()[mark:]
            harness.wait_until(reopen_refused, 30, 0.2, "enpid to try a reopen and fail")
            check("STORAGE FAILING" in daemon.stderr_text()[mark:],
                  "enpid did not log the failing commits")
            os.unlink(control)
            log("RocksDB writes failed and recovered")
            wait_all_so_far(cli, facs, seq, stream.pos)
            check(daemon.alive(), "enpid died")
            text = daemon.stderr_text()[mark:]
            check("storage writable again" in text, "enpid did not log its recovery")
            log("round 0: %d messages committed after RocksDB's write errors" % stream.pos)
        else:
            log("no enospc_shim.so: round 0 (RocksDB write errors) skipped")
        stream.publish(150)

        # ---- round 1: the disk fills up while enpid runs, then space returns
        mark = len(daemon.stderr_text())
        size = fill(filler)
        log("disk full (filler %.1f MiB)" % (size / 1048576))
        stream.publish(600)
        wait_failure_logged(daemon, mark, "enpid to log the storage failure")
        time.sleep(3)
        check(daemon.alive(), "enpid died while the disk was full")
        os.unlink(filler)
        log("space returned")
        stream.publish(200)

        # everything published so far is committed, with no restart
        wait_all_so_far(cli, facs, seq, stream.pos)
        check(daemon.alive(), "enpid died")
        log("recovered without a restart: %d messages committed" % stream.pos)
        text = daemon.stderr_text()[mark:]
        check("storage writable again" in text or "STORAGE FAILING" not in text,
              "enpid did not log its recovery")
        # back-pressure: enpid stopped receiving (the broker kept the readings) rather
        # than acknowledge what it could not store, and received again afterwards
        check("pausing MQTT" in text, "enpid did not pause MQTT on the full disk")
        check("resuming MQTT" in text, "enpid did not resume MQTT once space returned")
        # the pause came a whole inbox segment ahead: no acknowledged message had to be
        # kept in memory only (ingest.c's last resort)
        check("kept in memory" not in text, "an inbox append failed before the pause")

        # ---- round 2: full again, SIGKILL while full; a start on the full disk must fail
        # cleanly (exit status, no corruption); space back, start again
        mark = len(daemon.stderr_text())
        size = fill(filler)
        stream.publish(600)
        wait_failure_logged(daemon, mark, "enpid to log the second storage failure")
        daemon.kill9()
        daemon.start()
        try:
            daemon.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        if daemon.alive():
            log("enpid started on the full disk (its files had room)")
        else:
            # exit 1 ("cannot open store"), or SIGABRT: RocksDB 7.8 (Debian's build keeps
            # its assertions) aborts when a second line of its LOG header cannot be
            # written into the full store folder. Either way systemd restarts it; what
            # matters is that nothing is corrupted, checked below.
            code = daemon.proc.returncode
            check(code in (1, -6), "enpid on a full disk exited with %s" % code)
            daemon.kill9()  # reaps it
            log("enpid did not start on the full disk (exit status %s)" % code)
        os.unlink(filler)
        if not daemon.alive():
            daemon.start()
        stream.publish(stream.rest())

        got = harness.wait_committed(cli, [f["id"] for f in facs], "1mo", FROM, TO, expected,
                                     timeout=60, exact=True, stable_for=1.0)
        log("committed: %s (reference %s)" % (got, expected))
        check(daemon.alive(), "enpid died")
        rows = harness.compare_all(cli, ref, facs, FROM, TO)
        harness.compare_meter_states(cli, ref)
        log("all %d rows and both meters' states match the reference" % rows)
        stream.pub.close()
        rc, _ = daemon.stop()
        check(rc == 0, "enpid exited %s on SIGTERM" % rc)
    finally:
        if daemon is not None:
            daemon.kill9()
        subprocess.run(["umount", "-l", disk], capture_output=True)


if __name__ == "__main__":
    harness.main(test, __doc__)
