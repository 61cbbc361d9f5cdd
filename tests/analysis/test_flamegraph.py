#!/usr/bin/python3
"""test_flamegraph.py — hakmem.flamegraph draws live bytes per call path as one self-contained, readable SVG.

Three synthetic sites hold 60, 30 and 10 % of the bytes (one label full of XML's special characters, one too long
for its box). The SVG must be well-formed (xml.etree), hold one box per frame of each distinct path with widths
proportional to the bytes within 1 %, each box's full label and share in its hover title, nothing outside itself,
and be the same bytes for the same stacks in another order. A profile of 5 000 paths leaves out the boxes too
narrow to see and says how many. Then headless Chromium renders it: the DOM names the three sites, and the
screenshot is a picture (many colours, the boxes' ink), not a blank page.

Skips (77) only where chromium is not installed (after every structural check); as root with CI=true it installs
Debian's chromium itself.
"""
import random
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trace"))
import tracetest as tt  # noqa: E402  (puts analysis/ on sys.path)
import browser  # noqa: E402
from hakmem import flamegraph  # noqa: E402

SVG = f"{{{browser.SVG_NS}}}"
SIZE = (1200, 400)
SITES = [(["main", "start_thread", "worker_big", "alloc_big heap_sites.c:42"], 60_000_000),
         (["main", "start_thread", "worker_mid", "alloc_mid heap_sites.c:51"], 30_000_000),
         (["main", "start_thread", 'worker_<small> & "co"', "alloc_small_with_a_long_name heap_sites.c:60"],
          10_000_000)]


def boxes(root):
    """(label from the title, depth, x, width, the text drawn) of every frame box."""
    found = []
    for g in root.iter(f"{SVG}g"):
        if "frame" not in (g.get("class") or "").split():
            continue
        title, rect, text = g.find(f"{SVG}title"), g.find(f"{SVG}rect"), g.find(f"{SVG}text")
        tt.check(title is not None and rect is not None, f"a frame box without a title or a rectangle: {g.attrib}")
        label, _, tip = title.text.rpartition(" \u2014 ")
        found.append((label, int(g.get("data-depth")), float(rect.get("x")), float(rect.get("width")),
                      text.text if text is not None else "", tip))
    return found


def check_structure(svg):
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as e:
        tt.fail(f"the SVG is not well-formed XML: {e}")
    tt.check(root.tag == f"{SVG}svg", f"the root element is {root.tag}")
    browser.check_self_contained(svg, "the flame graph")
    found = boxes(root)
    paths = {tuple(frames[:i + 1]) for frames, _ in SITES for i in range(len(frames))}
    tt.check(len(found) == len(paths) + 1, f"{len(found)} boxes for {len(paths)} distinct call path prefixes + all")
    total = sum(w for _, w in SITES)
    full = max(b[3] for b in found)
    by_label = {b[0]: b for b in found}
    for frames, weight in SITES:
        for depth, label in enumerate(frames):
            tt.check(label in by_label, f"no box titled {label!r}: {sorted(by_label)}")
            _, d, _, width, text, tip = by_label[label]
            tt.check(d == depth + 1, f"{label!r} drawn at depth {d}, want {depth + 1}")
        leaf = by_label[frames[-1]]
        want = full * weight / total
        tt.check(abs(leaf[3] - want) <= 0.01 * want, f"{frames[-1]!r} is {leaf[3]:.2f} px wide, want {want:.2f} "
                                                     f"({100 * weight / total:.0f} % of {full:.2f})")
        share = f"{100 * weight / total:.1f} %"
        tt.check(share in leaf[5], f"{frames[-1]!r}'s title says {leaf[5]!r}, not its share {share}")
        tt.check(leaf[4] and (leaf[4] == frames[-1] or (leaf[4].endswith("\u2026") and
                                                       frames[-1].startswith(leaf[4][:-1]))),
                 f"{frames[-1]!r} is drawn as {leaf[4]!r}")
    short = by_label[SITES[2][0][-1]][4]
    tt.check(short.endswith("\u2026"), f"the long label in a 10 % box is not truncated: {short!r}")
    lefts = sorted((b[2], b[0]) for b in found if b[1] == len(SITES[0][0]))
    tt.check([label for _, label in lefts] == [f[-1] for f, _ in SITES], f"sites left to right: {lefts}")
    tt.check(all(b[2] + b[3] <= SIZE[0] + 0.01 for b in found), "a box goes past the picture's width")
    tt.check('worker_&lt;small&gt; &amp; "co"' in svg or "worker_&lt;small&gt; &amp; &quot;co&quot;" in svg,
             "the label with <, & and quotes is not escaped as XML")
    return len(found)


def check_many():
    """5 000 paths, most too narrow to draw: the picture says how many it left out, and stays small."""
    rng = random.Random(12)
    stacks = [(["main", f"caller_{i % 50}", f"site_{i} heap.c:{i}"], rng.randint(1, 4096)) for i in range(5000)]
    stacks.append((["main", "big", "site_big heap.c:1"], 50_000_000))
    svg = flamegraph.render(stacks, "many")
    root = ET.fromstring(svg)
    note = " ".join("".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == "note")
    drawn = len(boxes(root))
    m = re.match(r"(\d+) call paths narrower", note)
    tt.check(m and int(m.group(1)) > 0, f"5 001 paths, {drawn} boxes, and the note says {note!r}")
    tt.check(drawn < 1000 and len(svg) < 500_000, f"5 001 paths drew {drawn} boxes in {len(svg)} bytes")
    empty = flamegraph.render([([], 0), (["x"], -5), (["y"], float("nan"))], "empty")
    tt.check("nothing to draw" in empty and not boxes(ET.fromstring(empty)), "no positive weight: not said so")
    tt.ok(f"5 001 paths: {drawn} boxes, {m.group(1)} too narrow left out and counted; no weight: said so")


def main():
    svg = flamegraph.render(SITES, "hakmem-trace heap: live bytes at OOM 1 <pid 123>")
    n = check_structure(svg)
    tt.check(flamegraph.render(list(reversed(SITES)), "hakmem-trace heap: live bytes at OOM 1 <pid 123>") == svg,
             "the same stacks in another order give another SVG")
    tt.ok(f"structure: {n} boxes, widths within 1 % of 60/30/10, titles with shares, escaped, self-contained, "
          "deterministic")
    check_many()

    work = tt.workdir("hakmem-flamegraph-")
    path = work / "heap.svg"
    path.write_text(svg, encoding="utf-8")
    found = browser.check_rendered(path, SIZE, [frames[-1] for frames, _ in SITES], "the flame graph")
    if found is None:
        tt.skip("chromium is not installed (apt-get install chromium; CI installs it): the SVG's structure was "
                "checked, its rendering was not")
    colours, ink = found
    tt.ok(f"headless Chromium: the DOM names the three sites; the screenshot has {colours} colours, ink on "
          f"{100 * ink:.0f} % of it")


if __name__ == "__main__":
    main()
