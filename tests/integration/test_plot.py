#!/usr/bin/python3
"""test_plot - `enpi plot` (SVG, PNG) and `enpi report --pdf` on data from the real daemon.

Four facilities in Asia/Ho_Chi_Minh, a baseline month (January 2018) and a reporting
month (February 2018, the programme period) of daily cumulative readings published
through the real mosquitto into the real enpid:
  nhua  "Công ty Cổ phần Nhựa Mê Linh"  model sec from January; February 10 % below,
        no production on Sundays (gaps in the SEC line, not zeros)
  det   "Dệt may Thăng Long"  model regression, E = 1000 + 300 U exactly in January,
        15 % below that in February
  gach  "Gạch Đồng Tâm"  no baseline: no_data
  giay  "Giấy Bãi Bằng"  fixed audit SEC 500, February at 490 (2 %)
  cokhi "Cơ khí Hà Nội"  model regression over 7 noisy baseline days: a poor fit
Checked:
  - plot .svg: XML whose root is <svg> of 1200x800 px with a viewBox, glyphs drawn;
  - plot .pdf (same drawing; cairo's SVG has glyphs, not text): title, legend values,
    axis labels with units, dates and the zone are there as text;
  - plot .png: PNG signature, IHDR 1200x800 (and --size 900x600); decoded pixels show the
    SEC line, the baseline/target/stretch colours and the energy and production bars;
  - refusals: an unknown extension and a missing -o are bad usage (exit 2), an unknown
    facility and an unwritable path exit 1 with one line, leaving no file;
  - report --pdf: pdfinfo gives 1 + 5 pages of A4; pdftotext shows the programme name,
    and on each facility's page its exact Vietnamese name and its saving % as `enpi
    report --format json` computes it (or "no data"); the regression pages show R² and
    n, and the poor fit is flagged.
With --keep the pictures stay in the work folder (pdftoppm them to look).
"""

import datetime as dt
import json
import os
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from zoneinfo import ZoneInfo

import harness
from harness import check, log

TZ = "Asia/Ho_Chi_Minh"
ZONE = ZoneInfo(TZ)
RES = ["1h", "1d", "1mo"]
PROGRAMME = "Chương trình sản xuất sạch hơn Mê Linh 2018"

FACILITIES = [
    {"id": "nhua", "name": "Công ty Cổ phần Nhựa Mê Linh", "product_unit": "t",
     "baseline": "{ from: 2018-01-01, to: 2018-02-01, model: sec }",
     "aware_since": "2018-01-15", "applying_since": "2018-02-10"},
    {"id": "det", "name": "Dệt may Thăng Long", "product_unit": "pcs",
     "baseline": "{ from: 2018-01-01, to: 2018-02-01, model: regression }",
     "aware_since": "2018-02-20"},
    {"id": "gach", "name": "Gạch Đồng Tâm", "product_unit": "m2"},
    {"id": "giay", "name": "Giấy Bãi Bằng", "product_unit": "t", "baseline": "{ sec: 500 }"},
    {"id": "cokhi", "name": "Cơ khí Hà Nội", "product_unit": "pcs",
     "baseline": "{ from: 2018-01-25, to: 2018-02-01, model: regression }"},
]


def write_config(path, broker_uri, store):
    out = ["timezone: %s" % TZ,
           "mqtt:", "  uri: %s" % json.dumps(broker_uri), "  client_id: enpid",
           "  clean_session: false", "  qos: 1",
           "storage:", "  path: %s" % json.dumps(store), "  commit_interval: 200ms",
           "pipeline:", "  resolutions: [%s]" % ", ".join(RES),
           "  allowed_lateness: 1h", "  max_future: 5m", "  max_gap: 2d",
           "inputs:",
           '  - { topic: "enpi/{facility}/{meter}", meter_id: "{facility}/{meter}", '
           'format: json }',
           "programme:", "  name: %s" % json.dumps(PROGRAMME),
           "  period: { from: 2018-02-01, to: 2018-03-01 }",
           "  target_saving: 8%", "  stretch_saving: 13%",
           "  aware_increase_pp: 20", "  applying_increase_pp: 10",
           "facilities:"]
    for f in FACILITIES:
        out.append("  - id: %s" % f["id"])
        out.append("    name: %s" % json.dumps(f["name"]))
        out.append("    product_unit: %s" % f["product_unit"])
        for k in ("aware_since", "applying_since", "baseline"):
            if k in f:
                out.append("    %s: %s" % (k, f[k]))
        out.append("    meters:")
        out.append("      - { id: %s/em, kind: energy, reading: cumulative }" % f["id"])
        out.append("      - { id: %s/prod, kind: production, reading: cumulative }" % f["id"])
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


def daily_figures(fid, day):
    """(energy kWh, units) of one local day; day 0 = 2018-01-01."""
    feb = day >= 31
    u = 20.0 + (day * 7) % 11          # varies so the regression is determined
    if fid == "nhua":
        if feb and day % 7 == 3:       # Sundays in February: no production, base load
            return 50.0, 0.0
        return (360.0 if feb else 400.0) * u, u
    if fid == "det":
        e = 1000.0 + 300.0 * u
        return (0.85 * e if feb else e), u
    if fid == "gach":
        return 250.0 * u, u
    if fid == "cokhi":                 # 7 baseline days, noisy: a poor fit
        return 800.0 + 200.0 * u + (150.0 if day % 2 else -150.0), u
    return (490.0 if feb else 505.0) * u, u   # giay


def messages():
    """Cumulative registers read at every local midnight from 2018-01-01 to 2018-03-01."""
    msgs = []
    t0 = dt.datetime(2018, 1, 1, tzinfo=ZONE)
    for f in FACILITIES:
        e_reg = u_reg = 0.0
        for day in range(60):
            ts = int((t0 + dt.timedelta(days=day)).timestamp() * 1000)
            msgs.append(harness.json_message("enpi/%s/em" % f["id"], ts, e_reg))
            msgs.append(harness.json_message("enpi/%s/prod" % f["id"], ts, u_reg))
            e, u = daily_figures(f["id"], day)
            e_reg += e
            u_reg += u
    return msgs


# ---------------------------------------------------------------- PNG reading

def png_decode(data):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA non-interlaced PNG."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature: %r" % data[:8])
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        ln, typ = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + ln]
        if typ == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif typ == b"IDAT":
            idat += body
        pos += 12 + ln
    check(ihdr is not None, "PNG without IHDR")
    w, h, depth, ctype, _, _, interlace = ihdr
    check(depth == 8 and ctype in (2, 6) and interlace == 0,
          "unexpected PNG layout depth=%d type=%d interlace=%d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, rows, bpp


def count_colour(rows, bpp, rgb, tol=18):
    n = 0
    for line in rows:
        for i in range(0, len(line), bpp):
            if (abs(line[i] - rgb[0]) <= tol and abs(line[i + 1] - rgb[1]) <= tol and
                    abs(line[i + 2] - rgb[2]) <= tol):
                n += 1
    return n


# the chart's colours (cli/chart_*.c), as 8-bit RGB
SEC_BLUE = (31, 79, 156)
TARGET_ORANGE = (224, 128, 0)
STRETCH_GREEN = (41, 153, 61)
ENERGY_BLUE = (107, 153, 214)
PROD_BROWN = (184, 148, 92)


def expect_error(p, code, what):
    check(p.returncode == code, "%s: exit %d, want %d (stderr: %r)" %
          (what, p.returncode, code, p.stderr.strip()))
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    check(lines, "%s: no message on stderr" % what)
    if code == 1:
        check(len(lines) == 1, "%s: want one line on stderr, got:\n%s" % (what, p.stderr))


def pdftotext(path, page=None):
    args = ["pdftotext", "-enc", "UTF-8"]
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    p = subprocess.run(args + [path, "-"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "pdftotext failed: %s" % p.stderr)
    # thin spaces group thousands; pdftotext may turn them into spaces
    return p.stdout


def test(env):
    for tool in ("pdfinfo", "pdftotext"):
        check(shutil.which(tool), "%s is not installed (poppler-utils)" % tool)
    broker = env.broker()
    store = env.path("store")
    conf = env.path("enpid.yaml")
    write_config(conf, broker.uri, store)
    daemon = env.daemon(conf).start(broker)
    daemon.wait_ready(broker)
    pub = harness.Publisher(broker.port)
    n = pub.publish_all(messages())
    pub.close()
    cli = env.cli(store)
    harness.wait_committed(cli, [f["id"] for f in FACILITIES], "1mo", "2018-01-01",
                           "2018-04-01", {"readings": n, "late": 0, "duplicates": 0,
                                          "resets": 0})
    log("%d readings committed" % n)

    # ---- plot: SVG
    svg = env.path("nhua.svg")
    p = cli.run("plot", "--facility", "nhua", "--resolution", "1d", "--from", "2018-02-01",
                "--to", "2018-03-01", "-o", svg)
    check(p.returncode == 0, "plot .svg exited %d: %s" % (p.returncode, p.stderr))
    root = ET.parse(svg).getroot()
    check(root.tag == "{http://www.w3.org/2000/svg}svg", "SVG root is %s" % root.tag)
    check(root.get("width") in ("1200px", "1200") and root.get("height") in ("800px", "800"),
          "SVG size %s x %s, want 1200 x 800" % (root.get("width"), root.get("height")))
    check(root.get("viewBox") == "0 0 1200 800", "SVG viewBox %s" % root.get("viewBox"))
    uses = sum(1 for e in root.iter() if e.tag.endswith("}use"))
    paths = sum(1 for e in root.iter() if e.tag.endswith("}path"))
    check(uses > 150, "SVG has only %d glyph uses: text missing" % uses)
    check(paths > 20, "SVG has only %d paths" % paths)
    log("SVG: 1200x800, %d glyphs, %d paths" % (uses, paths))

    # ---- plot: the same drawing as PDF, whose text can be extracted: labels and units
    pdf_plot = env.path("nhua-plot.pdf")
    p = cli.run("plot", "--facility", "nhua", "--resolution", "1d", "--from", "2018-02-01",
                "--to", "2018-03-01", "-o", pdf_plot)
    check(p.returncode == 0, "plot .pdf exited %d: %s" % (p.returncode, p.stderr))
    text = pdftotext(pdf_plot)
    for want in ("Công ty Cổ phần Nhựa Mê Linh", "SEC (kWh/t)", "Energy (kWh)",
                 "Production (t)", "Baseline 400.0", "Target -8 % (368.0)",
                 "Stretch -13 % (348.0)", "Feb 2018", "Asia/Ho_Chi_Minh (UTC+7)",
                 "saving 9.9 % (met)"):
        check(want in text, "the plot lacks the text %r:\n%s" % (want, text[:1500]))
    log("plot text: title, legend with baseline/target/stretch, axis labels with units")

    # ---- plot: PNG, decoded
    for fid, res, frm, to, size in (("nhua", "1d", "2018-02-01", "2018-03-01", None),
                                    ("det", "1d", "2018-01-15", "2018-03-01", None),
                                    ("giay", "1h", "2018-02-10", "2018-02-13", "900x600")):
        png = env.path("%s-%s.png" % (fid, res))
        args = ["plot", "--facility", fid, "--resolution", res, "--from", frm, "--to", to,
                "-o", png]
        if size:
            args += ["--size", size]
        p = cli.run(*args)
        check(p.returncode == 0, "plot %s .png exited %d: %s" % (fid, p.returncode, p.stderr))
        with open(png, "rb") as fh:
            data = fh.read()
        w, h, rows, bpp = png_decode(data)
        want = (900, 600) if size else (1200, 800)
        check((w, h) == want, "%s PNG is %dx%d, want %dx%d" % (fid, w, h, *want))
        counts = {name: count_colour(rows, bpp, rgb) for name, rgb in
                  (("SEC line", SEC_BLUE), ("target", TARGET_ORANGE),
                   ("stretch", STRETCH_GREEN), ("energy bars", ENERGY_BLUE),
                   ("production bars", PROD_BROWN))}
        for name, cnt in counts.items():
            check(cnt > 200, "%s PNG: hardly any %s pixels (%d)" % (fid, name, cnt))
        log("PNG %s %s %dx%d: %s" % (fid, res, w, h, counts))

    # ---- refusals
    expect_error(cli.run("plot", "--facility", "nhua", "--resolution", "1d", "--from",
                         "2018-02-01", "--to", "2018-03-01", "-o", env.path("x.jpg")), 2,
                 "plot to .jpg")
    expect_error(cli.run("plot", "--facility", "nhua", "--resolution", "1d", "--from",
                         "2018-02-01", "--to", "2018-03-01"), 2, "plot without -o")
    expect_error(cli.run("plot", "--facility", "nope", "--resolution", "1d", "--from",
                         "2018-02-01", "--to", "2018-03-01", "-o", env.path("n.svg")), 1,
                 "plot of an unknown facility")
    bad = env.path("no-such-dir", "p.png")
    expect_error(cli.run("plot", "--facility", "nhua", "--resolution", "1d", "--from",
                         "2018-02-01", "--to", "2018-03-01", "-o", bad), 1,
                 "plot into a missing folder")
    check(not os.path.exists(env.path("n.svg")) and not os.path.exists(env.path("x.jpg")),
          "a refused plot left a file behind")
    log("refusals: exit 2 for usage, 1 for errors, no files left")

    # ---- report --pdf
    pdf = env.path("report.pdf")
    p = cli.run("report", "--pdf", pdf, "--format", "json")
    check(p.returncode == 0, "report --pdf exited %d: %s" % (p.returncode, p.stderr))
    report = json.loads(p.stdout)
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, timeout=60)
    check(info.returncode == 0, "pdfinfo failed: %s" % info.stderr)
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))
    check(pages == 1 + len(FACILITIES), "PDF has %d pages, want %d" %
          (pages, 1 + len(FACILITIES)))
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+) pts", info.stdout, re.M)
    check(size and abs(float(size.group(1)) - 595.28) < 1 and
          abs(float(size.group(2)) - 841.89) < 1, "PDF page is not A4: %s" % info.stdout)
    first = pdftotext(pdf, 1)
    check(PROGRAMME in first, "page 1 lacks the programme name:\n%s" % first[:800])
    by_id = {f["facility"]: f for f in report["facilities"]}
    check(by_id["gach"]["status"] == "no_data", "gach should be no_data: %s" % by_id["gach"])
    check(by_id["nhua"]["status"] == "met" and by_id["det"]["status"] == "stretch_met",
          "unexpected statuses: %s" % {k: v["status"] for k, v in by_id.items()})
    for i, f in enumerate(FACILITIES):
        text = pdftotext(pdf, i + 2)
        check(f["name"] in text, "page %d lacks the name %r:\n%s" % (i + 2, f["name"], text[:800]))
        check(f["name"] in first, "page 1 lacks the name %r" % f["name"])
        sp = by_id[f["id"]]["saving_pct"]
        want = "no data" if sp is None else "%.1f %%" % sp
        check(want in text, "page %d (%s) lacks its saving %r:\n%s" %
              (i + 2, f["id"], want, text[:1500]))
        if sp is not None:
            check(want in first, "page 1 lacks the saving %r of %s" % (want, f["id"]))
    det_text = pdftotext(pdf, 3)
    check("R²" in det_text and "n = 31" in det_text,
          "the regression page lacks R² or n:\n%s" % det_text[:1500])
    poor = pdftotext(pdf, 6)
    check(by_id["cokhi"]["regression"]["n"] == 7, "cokhi n: %s" % by_id["cokhi"])
    check("Poor fit" in poor and "n = 7" in poor, "the poor fit is not flagged:\n%s" % poor[:1500])
    check("Poor fit" not in det_text, "a good fit is flagged as poor:\n%s" % det_text[:1500])
    log("PDF: %d A4 pages, names and savings on every page, poor fit flagged" % pages)


if __name__ == "__main__":
    harness.main(test, __doc__)
