#!/usr/bin/python3
# ctest-timeout: 150
"""test_install - the install layout, the man pages, the systemd unit and the .deb (issue 5).

The build folder is the one the tested enpid was built in (the parent of daemon/enpid).
1. `cmake --install BUILD --prefix /usr` with DESTDIR=WORK/root: every file is where the
   packaging says (binaries, unit, sysusers entry, man pages, example, README); the unit
   names the installed daemon; the installed enpid runs and accepts the shipped example
   configuration; a second install with --prefix /opt/enpi rewrites the unit's paths.
2. Each man page renders with `groff -man -Tutf8 -ww -z` without a single warning and
   through `man -l`; enpid.yaml(5) names every key config/*.c accepts (read from its
   keys[] tables, so a new key without documentation fails here), enpid(8) its options,
   signals and exit codes, enpi(1) every command.
3. `systemd-analyze verify` of the installed unit (in a root holding the installed daemon
   and the host's targets) prints nothing and exits 0; `systemd-analyze security
   --offline=true` rates it 2.0 or lower (parsed from its last line).
4. `cpack -G DEB` in the build folder (into WORK/pkg) builds one .deb: `dpkg-deb -c` lists
   the same files; `dpkg-deb -I` shows the maintainer scripts, which parse with `sh -n`, and
   Depends names fonts-dejavu-core and the Debian package of every shared library the two
   binaries link directly (readelf NEEDED -> ldconfig -> dpkg -S), e.g. libpaho-mqtt1.3,
   libuv1, libsystemd0 (and librocksdb7.8 in the sanitizer builds, which do not link
   RocksDB's static archive).
cpack takes about 15-20 s of this test's ~25 s, most of it in dpkg-shlibdeps.
"""

import glob
import os
import re
import shutil
import subprocess

import harness
from harness import check, log

MAN_PAGES = {"share/man/man8/enpid.8": ["--check-config", "SIGHUP", "SIGTERM", "EXIT STATUS",
                                        "LoadCredential", "journalctl", "max_queued_messages"],
             "share/man/man1/enpi.1": ["facilities", "meters", "query", "report", "plot",
                                       "import", "--db", "EXIT STATUS", "usermod"],
             "share/man/man5/enpid.yaml.5": ["timezone", "meter_id_path", "insecure", "version"]}


def run(cmd, cwd=None, env=None, timeout=120):
    """Runs cmd; returns (rc, stdout, stderr) as text."""
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def must(cmd, what, **kw):
    rc, out, err = run(cmd, **kw)
    check(rc == 0, "%s failed (exit %d): %s\n%s%s" % (what, rc, " ".join(cmd), out, err))
    return out, err


def cache_value(build, name):
    """A variable from BUILD/CMakeCache.txt, or None."""
    with open(os.path.join(build, "CMakeCache.txt"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^%s:[A-Z]+=(.*)$" % re.escape(name), line.rstrip("\n"))
            if m:
                return m.group(1)
    return None


def under(prefix, d):
    """Install destination d (absolute, or relative to the prefix) as a path without the
    leading slash, as it appears inside DESTDIR and a .deb."""
    return (d if os.path.isabs(d) else os.path.join(prefix, d)).lstrip("/")


def config_keys(src):
    """Every key the configuration parser accepts: the strings of each `keys[] = {...}`
    table in config/*.c (top level, sections, inputs, tls, facilities, meters ...)."""
    keys = set()
    for path in glob.glob(os.path.join(src, "config", "*.c")):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for table in re.findall(r"keys\[\]\s*=\s*\{(.*?)\}", text, re.S):
            keys.update(re.findall(r'"([a-z_]+)"', table))
    return keys


def install_tree(env, build):
    root = env.path("root")
    e = dict(os.environ, DESTDIR=root)
    must(["cmake", "--install", build, "--prefix", "/usr"], "cmake --install", env=e)
    unitdir = under("/usr", cache_value(build, "ENPI_SYSTEMD_UNITDIR") or "lib/systemd/system")
    sysusers = under("/usr", cache_value(build, "ENPI_SYSUSERSDIR") or "lib/sysusers.d")
    expected = {
        "usr/sbin/enpid": True, "usr/bin/enpi": True,
        unitdir + "/enpid.service": False, sysusers + "/enpid.conf": False,
        "usr/share/doc/enpi/examples/enpid.example.yaml": False,
        "usr/share/doc/enpi/README.md": False,
    }
    for page in MAN_PAGES:
        expected["usr/" + page] = False
    for rel, exe in expected.items():
        p = os.path.join(root, rel)
        check(os.path.isfile(p), "not installed: /%s" % rel)
        check(os.access(p, os.X_OK) == exe, "/%s: executable bit %s" % (rel, not exe))
    found = set()
    for d, _, files in os.walk(root):
        for f in files:
            found.add(os.path.relpath(os.path.join(d, f), root))
    check(found == set(expected), "unexpected installed files: %s" % sorted(found - set(expected)))

    with open(os.path.join(root, unitdir, "enpid.service"), encoding="utf-8") as f:
        unit = f.read()
    check("\nExecStart=/usr/sbin/enpid --config /etc/enpid/enpid.yaml\n" in unit,
          "installed unit does not start /usr/sbin/enpid")
    with open(os.path.join(root, sysusers, "enpid.conf"), encoding="utf-8") as f:
        check(re.search(r"^u enpid ", f.read(), re.M), "sysusers.d entry declares no user enpid")

    enpid = os.path.join(root, "usr/sbin/enpid")
    out, _ = must([enpid, "--version"], "installed enpid --version")
    check(out.startswith("enpid "), "enpid --version printed %r" % out)
    example = os.path.join(root, "usr/share/doc/enpi/examples/enpid.example.yaml")
    must([enpid, "--check-config", "--config", example], "enpid --check-config on the example")
    rc, out, err = run([os.path.join(root, "usr/bin/enpi"), "--version"])
    check(rc == 0 and out.startswith("enpi "),
          "installed enpi --version: %d %r %r" % (rc, out, err))

    # The unit follows the prefix given at install time, not at configure time.
    other = env.path("root-opt")
    must(["cmake", "--install", build, "--prefix", "/opt/enpi"], "cmake --install /opt/enpi",
         env=dict(os.environ, DESTDIR=other))
    opt_unitdir = under("/opt/enpi", cache_value(build, "ENPI_SYSTEMD_UNITDIR")
                        or "lib/systemd/system")
    with open(os.path.join(other, opt_unitdir, "enpid.service"), encoding="utf-8") as f:
        opt_unit = f.read()
    check("\nExecStart=/opt/enpi/sbin/enpid --config" in opt_unit and "/usr/sbin" not in opt_unit,
          "unit installed with --prefix /opt/enpi still names another path")
    log("install tree: %d files in place" % len(expected))
    return root, unitdir, set(expected)


def check_man_pages(root, src):
    keys = config_keys(src)
    check(len(keys) > 40, "found only %d config keys in config/*.c" % len(keys))
    for page, words in MAN_PAGES.items():
        path = os.path.join(root, "usr", page)
        rc, _, err = run(["groff", "-man", "-Tutf8", "-ww", "-z", path])
        check(rc == 0 and err == "", "groff warnings for %s:\n%s" % (page, err))
        rc, text, err = run(["man", "-l", "-P", "cat", path],
                            env=dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8"))
        check(rc == 0 and "NAME" in text and "SEE ALSO" in text, "man -l %s: %s" % (page, err))
        # man hyphenates long words at line ends; the checks want whole words.
        flat = re.sub(r"[\u2010-]\n\s*", "", text)
        flat = flat.replace("\u2010", "-").replace("\u2212", "-")
        want = set(words) | (keys if page.endswith(".5") else set())
        missing = [w for w in sorted(want)
                   if not re.search(r"(?<![\w-])%s(?![\w])" % re.escape(w), flat)]
        check(not missing, "%s does not mention: %s" % (page, ", ".join(missing)))
    log("man pages: 3 render without warnings; enpid.yaml(5) covers %d config keys" % len(keys))


def check_unit(env, root, unitdir):
    vroot = env.path("verify-root")
    os.makedirs(os.path.join(vroot, "usr/sbin"))
    os.makedirs(os.path.join(vroot, "etc/systemd/system"))
    os.makedirs(os.path.join(vroot, unitdir))
    shutil.copy2(os.path.join(root, "usr/sbin/enpid"), os.path.join(vroot, "usr/sbin/enpid"))
    unit = os.path.join(vroot, unitdir, "enpid.service")
    shutil.copy2(os.path.join(root, unitdir, "enpid.service"), unit)
    # verify loads the unit's dependencies (multi-user.target, network-online.target ...)
    targets = (glob.glob("/lib/systemd/system/*.target") +
               glob.glob("/usr/lib/systemd/system/*.target"))
    check(targets, "no systemd targets on this host to verify against")
    for t in targets:
        dst = os.path.join(vroot, "etc/systemd/system", os.path.basename(t))
        if not os.path.exists(dst):
            shutil.copy(os.path.realpath(t), dst)
    rc, out, err = run(["systemd-analyze", "verify", "--man=no", "--root=" + vroot,
                        "enpid.service"])
    check(rc == 0 and out.strip() == "" and err.strip() == "",
          "systemd-analyze verify (exit %d):\n%s%s" % (rc, out, err))
    rc, out, err = run(["systemd-analyze", "security", "--offline=true", "--no-pager", unit])
    m = re.search(r"Overall exposure level for enpid\.service:\s*([0-9.]+)\s+(\S+)", out + err)
    check(m is not None, "systemd-analyze security printed no rating (exit %d):\n%s%s"
          % (rc, out[-2000:], err))
    rating = float(m.group(1))
    check(rating <= 2.0, "security exposure %.1f %s > 2.0:\n%s" % (rating, m.group(2), out))
    log("unit: verify clean, security exposure %.1f %s" % (rating, m.group(2)))


def needed_packages(binaries):
    """Debian packages owning the shared libraries the binaries link directly."""
    cache = {}
    out, _ = must(["ldconfig", "-p"], "ldconfig -p")
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if m and re.search(r"x86-64|AArch64|64bit", m.group(2)):
            cache.setdefault(m.group(1), m.group(3))
    pkgs = {}
    for b in binaries:
        out, _ = must(["readelf", "-d", b], "readelf -d")
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
            path = cache.get(lib)
            check(path is not None, "%s: %s not in the ldconfig cache" % (b, lib))
            rc, owner, err = run(["dpkg", "-S", os.path.realpath(path)])
            if rc != 0:
                rc, owner, err = run(["dpkg", "-S", path])
            check(rc == 0, "dpkg -S %s: %s" % (path, err))
            pkgs[owner.split(":")[0].strip()] = lib
    return pkgs


def check_deb(env, build, root, files):
    pkgdir = env.path("pkg")
    must(["cpack", "-G", "DEB", "-B", pkgdir], "cpack -G DEB", cwd=build, timeout=120)
    debs = glob.glob(os.path.join(pkgdir, "*.deb"))
    check(len(debs) == 1, "cpack made %s" % debs)
    deb = debs[0]
    info, _ = must(["dpkg-deb", "-I", deb], "dpkg-deb -I")
    fields = dict(re.findall(r"^ ([A-Z][\w-]*): (.*)$", info, re.M))
    check(fields.get("Package") == "enpi", "Package: %r" % fields.get("Package"))
    depends = {d.strip().split()[0] for d in fields.get("Depends", "").split(",") if d.strip()}
    want = needed_packages([os.path.join(root, "usr/sbin/enpid"),
                            os.path.join(root, "usr/bin/enpi")])
    missing = sorted(p for p in want if p not in depends)
    check(not missing, "Depends lacks %s (Depends: %s)" % (missing, fields.get("Depends")))
    for p in ("fonts-dejavu-core", "libpaho-mqtt1.3", "libuv1", "libsystemd0"):
        check(p in depends, "Depends lacks %s: %s" % (p, fields.get("Depends")))
    ctl = env.path("deb-control")
    must(["dpkg-deb", "-e", deb, ctl], "dpkg-deb -e")
    for script in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctl, script)
        check(os.access(p, os.X_OK), "%s missing or not executable in the .deb" % script)
        must(["sh", "-n", p], "sh -n " + script)
    listing, _ = must(["dpkg-deb", "-c", deb], "dpkg-deb -c")
    packaged = set()
    for line in listing.splitlines():
        name = line.split()[-1]
        if not line.startswith("d"):
            packaged.add(os.path.normpath(name).lstrip("./"))
    check(packaged == files, "the .deb holds %s, the install %s" %
          (sorted(packaged ^ files), "(same otherwise)"))
    log("deb: %s, Depends %s" % (os.path.basename(deb), fields.get("Depends")))


def test(env):
    enpid = os.path.realpath(env.args.enpid)
    build = os.path.dirname(os.path.dirname(enpid))
    check(os.path.isfile(os.path.join(build, "CMakeCache.txt")),
          "%s is not a build folder (no CMakeCache.txt)" % build)
    src = cache_value(build, "CMAKE_HOME_DIRECTORY")
    check(src and os.path.isdir(src), "no source folder in %s/CMakeCache.txt" % build)
    for tool in ("cmake", "cpack", "groff", "man", "systemd-analyze", "dpkg-deb", "readelf"):
        check(shutil.which(tool), "%s is not installed" % tool)
    root, unitdir, files = install_tree(env, build)
    check_man_pages(root, src)
    check_unit(env, root, unitdir)
    check_deb(env, build, root, files)


if __name__ == "__main__":
    harness.main(test, __doc__)
