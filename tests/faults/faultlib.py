"""faultlib.py - what the broker fault tests share on top of tests/integration/harness.py.

- Proxy: a loopback TCP proxy (threads) in front of the broker that can turn into a
  silent blackhole: it stops reading and forwarding in both directions but keeps every
  socket open, like a dead link or a hung middlebox, and can forward again later.
- Broker outages: kill -9 the broker and start it again on the same port and folder.
- mqtt_options(): rewrites the mqtt: lines of a config written by harness.write_config
  (keepalive, reconnect_max, uri, tls, credentials ...).
- A throw-away test PKI made with the openssl command line: a CA, a server certificate for
  127.0.0.1/localhost, one for a wrong host name, an expired one (`openssl ca` with
  -startdate/-enddate: OpenSSL 3.0's `openssl x509` has no -not_before), a client one.
- TlsBroker: mosquitto with a plain listener (for the test's publishers) and a TLS
  listener for enpid, optionally requiring a client certificate and/or a password.
- Log helpers: wait for a line in enpid's stderr, count lines.
- NotifySocket: a NOTIFY_SOCKET of the test (AF_UNIX datagrams), recording what enpid's
  sd_notify calls send, with the time each arrived.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import threading
import time

import harness
from harness import TestFailure, check, wait_until


# ---------------------------------------------------------------- blackhole proxy

class Proxy:
    """Forwards 127.0.0.1:port to 127.0.0.1:target_port, one thread per direction."""

    def __init__(self, target_port):
        self.target_port = target_port
        self._forward = threading.Event()
        self._forward.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socks = []
        self.accepted = 0
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def uri(self):
        return "tcp://127.0.0.1:%d" % self.port

    def blackhole(self):
        """From now on nothing is read or forwarded; sockets stay open."""
        self._forward.clear()

    def resume(self):
        self._forward.set()

    def _accept_loop(self):
        self.lsock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                c.close()  # broker down: refuse like the broker itself would
                continue
            with self._lock:
                self.accepted += 1
                self._socks += [c, u]
            pair = {"open": 2}
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        try:
            while not self._stop.is_set():
                if not self._forward.is_set():
                    time.sleep(0.05)  # blackhole: leave the bytes unread in the kernel
                    continue
                r, _, _ = select.select([src], [], [], 0.1)
                if not r:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self._lock:
                pair["open"] -= 1
                if pair["open"] == 0:
                    src.close()
                    dst.close()

    def close(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self._thread.join(2)


# ---------------------------------------------------------------- broker outages

def broker_kill9(broker):
    """kill -9 the broker (no clean shutdown, persistence only as of its last autosave)."""
    if broker.proc is not None and broker.proc.poll() is None:
        broker.proc.kill()
        broker.proc.wait()
    broker.proc = None


def broker_start_again(broker):
    """Starts the stopped broker again on its port with its folder (and persistence)."""
    check(broker.proc is None, "broker still running")
    conf = broker._write_conf()
    broker.proc = subprocess.Popen([harness.mosquitto_path(), "-c", conf],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    wait_until(broker._accepts, 15, 0.05, "mosquitto to listen again on %d" % broker.port)


# ---------------------------------------------------------------- enpid config

def mqtt_options(config_path, **opts):
    """Replaces or adds keys of the mqtt: section of a harness.write_config file. A value
    that is a dict becomes a flow mapping (tls:); None removes the key."""
    with open(config_path) as f:
        lines = f.read().split("\n")
    start = lines.index("mqtt:")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    section = {}
    order = []
    for line in lines[start + 1:end]:
        k, _, v = line.strip().partition(":")
        section[k] = v.strip()
        order.append(k)
    for k, v in opts.items():
        if k not in section:
            order.append(k)
        if v is None:
            section[k] = None
        elif isinstance(v, dict):
            section[k] = "{ " + ", ".join("%s: %s" % (kk, harness._yaml_scalar(vv))
                                         for kk, vv in v.items()) + " }"
        else:
            section[k] = harness._yaml_scalar(v) if not isinstance(v, str) else (
                v if re.fullmatch(r"[0-9]+(ms|s|m|h|d)", v) else harness._yaml_scalar(v))
    body = ["  %s: %s" % (k, section[k]) for k in order if section.get(k) is not None]
    lines[start + 1:end] = body
    with open(config_path, "w") as f:
        f.write("\n".join(lines))


# ---------------------------------------------------------------- enpid log

def stderr_since(daemon, mark):
    return daemon.stderr_text()[mark:]


def wait_log(daemon, pattern, mark=0, timeout=30, interval=0.05, what=None):
    """Waits until a line matching regex `pattern` appears in enpid's stderr after offset
    `mark`; returns (match, time.monotonic() when seen)."""
    rx = re.compile(pattern, re.M)
    found = {}

    def poll():
        if not daemon.alive():
            raise TestFailure("enpid exited (%s) while waiting for %r" %
                              (daemon.proc.returncode if daemon.proc else "?", pattern))
        m = rx.search(daemon.stderr_text()[mark:])
        if m:
            found["m"] = m
            found["t"] = time.monotonic()
            return True
        return False

    wait_until(poll, timeout, interval, what or "enpid to log /%s/" % pattern)
    return found["m"], found["t"]


def log_mark(daemon):
    return len(daemon.stderr_text())


# ---------------------------------------------------------------- test PKI

def _openssl(*args, cwd=None):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise TestFailure("openssl %s failed:\n%s" % (" ".join(args), p.stdout))
    return p.stdout


class TestCA:
    """A CA in dir (openssl ca's database files), issuing EC P-256 certificates."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(os.path.join(dir, "issued"), exist_ok=True)
        open(os.path.join(dir, "index.txt"), "w").close()
        with open(os.path.join(dir, "serial"), "w") as f:
            f.write("1000\n")
        self.key = os.path.join(dir, "ca.key")
        self.cert = os.path.join(dir, "ca.pem")
        self.conf = os.path.join(dir, "ca.cnf")
        with open(self.conf, "w") as f:
            f.write("\n".join([
                "[ ca ]", "default_ca = test_ca",
                "[ test_ca ]",
                "dir = %s" % dir,
                "database = $dir/index.txt", "serial = $dir/serial",
                "new_certs_dir = $dir/issued",
                "certificate = %s" % self.cert, "private_key = %s" % self.key,
                "default_md = sha256", "policy = any", "unique_subject = no",
                "copy_extensions = none", "email_in_dn = no",
                "[ any ]", "commonName = supplied",
                "[ req ]", "distinguished_name = dn", "prompt = no",
                "[ dn ]", "CN = enpi test CA",
                "[ v3_ca ]", "basicConstraints = critical,CA:true",
                "keyUsage = critical,keyCertSign,cRLSign",
                "subjectKeyIdentifier = hash",
                ""]))
        _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "3650",
                 "-config", self.conf, "-extensions", "v3_ca")

    def issue(self, name, cn, sans=(), client=False, startdate=None, enddate=None):
        """Issues name.pem/name.key signed by this CA. sans: ["DNS:localhost",
        "IP:127.0.0.1"]. startdate/enddate: YYYYMMDDHHMMSSZ (default: now-1d .. +1y).
        Returns (cert path, key path)."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints = CA:false\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage = %s\n" % ("clientAuth" if client else "serverAuth"))
            if sans:
                f.write("subjectAltName = %s\n" % ",".join(sans))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
        def stamp(t):
            return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))
        now = time.time()
        _openssl("ca", "-batch", "-config", self.conf, "-in", csr, "-out", cert,
                 "-extfile", ext, "-notext",
                 "-startdate", startdate or stamp(now - 86400),
                 "-enddate", enddate or stamp(now + 365 * 86400))
        return cert, key


# ---------------------------------------------------------------- TLS broker

class TlsBroker(harness.Broker):
    """mosquitto with a plain listener (self.port: the test's publishers and the harness's
    readiness probe) and a TLS listener (self.tls_port) for enpid. require_certificate asks
    enpid for a client certificate; password_file (mosquitto_passwd format) turns off
    anonymous access on the TLS listener."""

    def __init__(self, workdir, cafile, certfile, keyfile, require_certificate=False,
                 password_file=None):
        super().__init__(workdir, persistence=False)
        self.cafile, self.certfile, self.keyfile = cafile, certfile, keyfile
        self.require_certificate = require_certificate
        self.password_file = password_file
        self.tls_port = None

    def _write_conf(self):
        if self.tls_port is None or self.tls_port == self.port:
            self.tls_port = harness.free_port()
        lines = [
            "per_listener_settings true",
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "listener %d 127.0.0.1" % self.tls_port,
            "cafile %s" % self.cafile,
            "certfile %s" % self.certfile,
            "keyfile %s" % self.keyfile,
            "require_certificate %s" % ("true" if self.require_certificate else "false"),
        ]
        if self.password_file:
            lines += ["allow_anonymous false", "password_file %s" % self.password_file]
        else:
            lines.append("allow_anonymous true")
        lines += [
            "persistence false",
            "max_queued_messages 0", "max_queued_bytes 0",
            "log_dest file %s" % self.log_path,
            "log_type error", "log_type warning", "log_type notice",
            "log_type information", "log_type subscribe",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        path = os.path.join(self.dir, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def restart_with(self, certfile, keyfile, require_certificate=None):
        """Same ports, another server certificate."""
        self.stop()
        self.certfile, self.keyfile = certfile, keyfile
        if require_certificate is not None:
            self.require_certificate = require_certificate
        broker_start_again(self)

    @property
    def tls_uri(self):
        return "ssl://127.0.0.1:%d" % self.tls_port


def mosquitto_passwd(path, user, password):
    """Writes a mosquitto password file with one user."""
    exe = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    check(os.access(exe, os.X_OK), "mosquitto_passwd not found")
    p = subprocess.run([exe, "-b", "-c", path, user, password], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    check(p.returncode == 0, "mosquitto_passwd failed: %s" % p.stdout)
    os.chmod(path, 0o600)


# ---------------------------------------------------------------- sd_notify

class NotifySocket:
    """The test's NOTIFY_SOCKET: every datagram's lines with the monotonic time seen."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.1)
        self.lines = []  # (time, datagram number, line)
        self.n = 0
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self.lock:
                self.n += 1
                for line in data.decode(errors="replace").split("\n"):
                    if line:
                        self.lines.append((now, self.n, line))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def since(self, mark):
        with self.lock:
            return list(self.lines[mark:])

    def wait(self, pred, mark, timeout, what):
        """Waits for a line after `mark` satisfying pred(line); returns (time, dgram, line)."""
        def find():
            for item in self.since(mark):
                if pred(item[2]):
                    return item
            return None
        return harness.wait_until(find, timeout, 0.02, what)

    def first_at(self, line, since):
        """The time of the first datagram line equal to `line` seen at or after the
        monotonic time `since`, or None."""
        with self.lock:
            for t, _, text in self.lines:
                if t >= since and text == line:
                    return t
        return None

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()
