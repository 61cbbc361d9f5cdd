"""browser.py — what the picture tests share: a picture's self-containedness, headless Chromium, its PNGs.

    import browser
    browser.check_self_contained(svg_text, "the SVG")
    exe = browser.find_chromium() or browser.install_chromium()   # None: not installed (and not CI as root)
    rc, out, err = browser.chromium(exe, url, f"--screenshot={png}", size=(1400, 900))
    width, height, rows, channels = browser.read_png(png)
    found = browser.check_rendered(svg_path, (1200, 400), ["label", ...], "the flame graph")  # None: no chromium
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import tracetest as tt

SVG_NS = "http://www.w3.org/2000/svg"


def check_self_contained(text, what):
    """Fail unless the picture needs nothing outside itself: no script, no link, no URL but the SVG namespace."""
    tt.check("<script" not in text.lower(), f"{what} holds a <script>")
    tt.check("<link" not in text.lower(), f"{what} holds a <link>")
    urls = set(re.findall(r"(?:https?|ftp|file)://[^\s\"'<>)]*", text))
    tt.check(urls <= {SVG_NS}, f"{what} refers to {sorted(urls - {SVG_NS})[:5]}: it must be self-contained")
    bad = [u for u in re.findall(r"url\(([^)]*)\)", text) if not u.strip("'\" ").startswith("#")]
    tt.check(not bad, f"{what} uses url() to something else than an #id: {bad[:5]}")
    tt.check(not re.search(r"\s(?:xlink:)?href=\"(?!#)", text), f"{what} links outside itself")


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def install_chromium():
    if os.geteuid() == 0 and os.environ.get("CI") == "true":
        print("chromium is missing: installing Debian's (root, CI=true)", flush=True)
        argv = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        print("+ " + " ".join(argv), flush=True)
        try:
            p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=900,
                               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        except subprocess.TimeoutExpired:
            tt.fail("apt-get install chromium did not finish within 900 s")
        if p.returncode != 0:
            tt.fail(f"apt-get install chromium failed ({p.returncode}): {(p.stdout + p.stderr)[-2000:]}")
    return find_chromium()


def chromium(exe, url, *mode, size):
    """Run headless Chromium in its own session (every child is stopped afterwards); (status, stdout, stderr)."""
    home = Path(tempfile.mkdtemp(prefix="hakmem-chromium-"))
    # A fresh profile and no background traffic; --no-sandbox because as root (CI) Chromium refuses to start its
    # sandbox, and the page is this test's own file.
    argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0", f"--user-data-dir={home / 'profile'}",
            f"--window-size={size[0]},{size[1]}", *mode, url]
    print("+ " + " ".join(argv), flush=True)
    env = dict(os.environ, HOME=str(home))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        shutil.rmtree(home, ignore_errors=True)
        tt.fail(f"chromium {' '.join(mode)} did not finish within 120 s")
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # helpers (crashpad, zygote) that outlive the browser
    except ProcessLookupError:
        pass
    shutil.rmtree(home, ignore_errors=True)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def console_errors(err):
    return [line for line in err.splitlines()
            if ("CONSOLE" in line and ("Uncaught" in line or "rror" in line)) or "Uncaught" in line]


def read_png(path):
    """(width, height, rows of RGB tuples-as-bytes, channels) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = Path(path).read_bytes()
    tt.check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    tt.check(ihdr is not None and idat, f"{path}: no IHDR or no IDAT chunk")
    width, height, depth, ctype, _, _, interlace = ihdr
    tt.check(depth == 8 and ctype in (2, 6) and interlace == 0,
             f"{path}: a PNG of depth {depth}, colour type {ctype}, interlace {interlace}: not read here")
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * ch
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 0xFF
        elif f == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b, c = prev[i], (prev[i - ch] if i >= ch else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif f != 0:
            tt.fail(f"{path}: unknown PNG filter {f} in row {y}")
        rows.append(bytes(line))
        prev = line
    return width, height, rows, ch


def check_not_blank(png, size, what):
    """Fail unless the screenshot is size and a picture (several colours, dark ink on 5 % of it), not a blank page;
    (colours, ink share)."""
    width, height, rows, ch = read_png(png)
    tt.check((width, height) == tuple(size), f"{what}: the screenshot is {width}x{height}, want {size[0]}x{size[1]}")
    colours, ink = set(), 0
    for row in rows:
        for i in range(0, len(row), ch):
            r, g, b = row[i], row[i + 1], row[i + 2]
            colours.add((r, g, b))
            ink += r + g + b < 600
    tt.check(len(colours) >= 8 and len(set(rows)) > 1, f"{what}: the screenshot has {len(colours)} colours: blank or nearly")
    tt.check(ink >= 0.05 * width * height, f"{what}: ink on {100 * ink / (width * height):.1f} % of the pixels: blank or nearly")
    return len(colours), ink / (width * height)


def check_rendered(path, size, labels, what):
    """Headless Chromium renders the picture at path: its DOM names every label (XML-escaped as the SVG holds it),
    no console error, and its screenshot is not blank; (colours, ink share), or None where chromium is not
    installed (and not CI as root, which installs it)."""
    exe = find_chromium() or install_chromium()
    if exe is None:
        return None
    rc, dom, err = chromium(exe, Path(path).as_uri(), "--dump-dom", size=size)
    tt.check(rc == 0, f"{what}: chromium --dump-dom: status {rc}: {err[-3000:]}")
    tt.check(not console_errors(err), f"{what}: console errors: {console_errors(err)[:5]}")
    for label in labels:
        escaped = label.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        tt.check(escaped in dom, f"{what}: the rendered DOM does not name {label!r}")
    png = Path(path).with_suffix(".png")
    rc, _, err = chromium(exe, Path(path).as_uri(), f"--screenshot={png}", size=size)
    tt.check(rc == 0 and png.is_file(), f"{what}: chromium --screenshot: status {rc}: {err[-3000:]}")
    return check_not_blank(png, size, what)
