#!/usr/bin/python3
"""test_timeline.py — `hakmem-trace timeline` draws a readable, self-contained picture of a real trace.

Records the capped 4-thread trace_oom_workload (12 OOMs), renders TRACE -o t.html and -o t.svg, and checks:
- both parse (the SVG as XML; the HTML holds exactly one inline <svg>, parsed the same way), and hold no script,
  no external reference (the only URL is the SVG namespace; url() only to #ids);
- one lane per thread that had hakmem events (the threads of `oom-paths --json`), labelled pid/tid/procname;
- one OOM marker per OOM of `oom-paths --json`, on its thread's lane, with its band inside that lane, its path's
  events outlined (as many as the JSON's paths hold), and a detail strip per OOM;
- hover titles on every mark; failed chunk expansions drawn differently from the others (where compiled in);
- the note says whether marks were merged, and agrees with the marks' counts.
Then the HTML is rendered by headless Chromium: --dump-dom must show the same lanes and markers, without a
console error, and a 1400x900 --screenshot must be a real picture (decoded with zlib+struct by browser.py: many
colours, the OOM red, the bitmap-claimed green, ink on at least a few percent of the pixels).

usage: test_timeline.py --lib libhakmem-trace.so --workload trace_oom_workload
Skips (77) where lttng or bt2 is not installed, or where chromium is not (after the picture's structure has been
checked); as root with CI=true it installs Debian's chromium itself.
"""
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trace"))
import tracetest as tt  # noqa: E402
import analysistest as at  # noqa: E402
from browser import (check_self_contained, chromium, console_errors, find_chromium, install_chromium,  # noqa: E402
                     read_png)

CAP = "48M"
REFUSALS = 3
OOMS = 4 * REFUSALS
TIMEOUT = 300
SVG_NS = "http://www.w3.org/2000/svg"
W, H = 1400, 900
OOM_RED = (0xE4, 0x1A, 0x1C)
CLAIMED_GREEN = (0x5A, 0xA0, 0x2C)
DETAIL_LIMIT = 24


def run(argv, what, timeout=TIMEOUT, env=None):
    print("+ " + " ".join(map(str, argv)), flush=True)
    try:
        p = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=env)
    except subprocess.TimeoutExpired:
        tt.fail(f"{what} did not finish within {timeout} s")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


# ---- the picture's structure ----

def classes(el):
    return (el.get("class") or "").split()


def title_of(el):
    t = el.find(f"{{{SVG_NS}}}title")
    return t.text if t is not None else None


def check_svg(root, report, what, compiled):
    tt.check(root.tag == f"{{{SVG_NS}}}svg", f"{what}: the root is {root.tag}, not an SVG element")
    threads = report["summary"]["threads"]
    ooms = report["ooms"]
    lanes = [g for g in root.iter(f"{{{SVG_NS}}}g") if "lane" in classes(g)]
    tt.check(len(lanes) == len(threads), f"{what}: {len(lanes)} lanes for {len(threads)} threads with events")
    lane_at = {}
    for lane, th in zip(lanes, threads):
        key = (lane.get("data-vpid"), lane.get("data-vtid"))
        tt.check(key == (str(th["vpid"]), str(th["vtid"])),
                 f"{what}: lane for pid/tid {key}, want {th['vpid']}/{th['vtid']} (the JSON's thread order)")
        label = "".join(t for el in lane.iter(f"{{{SVG_NS}}}text") if "lane-label" in classes(el)
                        for t in el.itertext())
        for part in (f"pid {th['vpid']}", f"tid {th['vtid']}", th["procname"] or "?"):
            tt.check(part in label, f"{what}: the lane of tid {th['vtid']} is labelled {label!r}, without {part!r}")
        tt.check(int(lane.get("data-events", 0)) > 0, f"{what}: the lane of tid {th['vtid']} has no events")
        bg = [r for r in lane.iter(f"{{{SVG_NS}}}rect") if "lane-bg" in classes(r)]
        tt.check(len(bg) == 1, f"{what}: the lane of tid {th['vtid']} has {len(bg)} backgrounds")
        y0 = float(bg[0].get("y"))
        lane_at[key] = (y0, y0 + float(bg[0].get("height")))
        marks = [el for el in lane.iter() if "mark" in classes(el)]
        tt.check(marks, f"{what}: the lane of tid {th['vtid']} has no marks")
        for m in marks:
            tt.check(title_of(m), f"{what}: a mark without a hover title in the lane of tid {th['vtid']}")
            tt.check(int(m.get("data-count", "0")) >= 1, f"{what}: a mark without its count")

    groups = [g for g in root.iter(f"{{{SVG_NS}}}g") if "oom" in classes(g)]
    markers = [el for el in root.iter() if "oom-marker" in classes(el)]
    tt.check(len(markers) == len(ooms), f"{what}: {len(markers)} OOM markers, oom-paths --json lists {len(ooms)}")
    tt.check(len(groups) == len(ooms), f"{what}: {len(groups)} OOM groups for {len(ooms)} OOMs")
    tt.check(sorted(g.get("data-vtid") for g in groups) == sorted(str(o["vtid"]) for o in ooms),
             f"{what}: OOMs drawn on tids {sorted(g.get('data-vtid') for g in groups)}, "
             f"the JSON's on {sorted(str(o['vtid']) for o in ooms)}")
    by_index = {o["index"]: o for o in ooms}
    path_marks = 0
    for g in groups:
        o = by_index.get(int(g.get("data-index")))
        tt.check(o is not None, f"{what}: an OOM group for index {g.get('data-index')}, not in the JSON")
        t = "".join(el.text or "" for el in g.iter(f"{{{SVG_NS}}}title"))
        tt.check(f"OOM {o['index']}/" in t and o["cause"] in t, f"{what}: OOM {o['index']}'s title lacks its "
                                                                f"number or cause: {t[:300]!r}")
        band = [r for r in g.iter(f"{{{SVG_NS}}}rect") if "oom-band" in classes(r)]
        tt.check(len(band) == 1, f"{what}: OOM {o['index']} has {len(band)} bands")
        y0, y1 = lane_at[(str(o["vpid"]), str(o["vtid"]))]
        by = float(band[0].get("y"))
        tt.check(y0 <= by and by + float(band[0].get("height")) <= y1,
                 f"{what}: OOM {o['index']}'s band ({by}) is outside its thread's lane ({y0}..{y1})")
        tt.check(float(band[0].get("width")) >= 3, f"{what}: OOM {o['index']}'s band is too thin to see")
        pm = [el for el in g.iter() if "path-mark" in classes(el)]
        tt.check(len(pm) == len(o["path"]) - 1, f"{what}: OOM {o['index']}: {len(pm)} path marks for a path of "
                                                f"{len(o['path'])} events (the oom is the marker)")
        path_marks += len(pm)
    details = [g for g in root.iter(f"{{{SVG_NS}}}g") if "oom-detail" in classes(g)]
    tt.check(len(details) == min(len(ooms), DETAIL_LIMIT), f"{what}: {len(details)} OOM detail strips")

    kinds = {}  # data-kind -> {(element, fill)}
    for el in root.iter():
        if "mark" in classes(el):
            kinds.setdefault(el.get("data-kind"), set()).add((el.tag.split("}")[1], el.get("fill")))
    # The refusals — a failed expansion (a new chunk refused), a claim the cap refused (a free slab's pages) —
    # are drawn unlike the other outcomes of their event; the capped run shows at least one of them.
    refusals = {"chunk_expand": "chunk_expand:failed", "bitmap_check": "bitmap_check:cap_refused"}
    drawn = 0
    for event, refusal in refusals.items():
        if event not in compiled or refusal not in kinds:
            continue
        drawn += 1
        refused = kinds[refusal]
        others = set().union(*[v for k, v in kinds.items() if k.startswith(event + ":") and k != refusal])
        tt.check(others, f"{what}: {refusal} drawn, but no other {event}")
        tt.check(not ({f for _, f in refused} & {f for _, f in others}) and
                 not ({t for t, _ in refused} & {t for t, _ in others}),
                 f"{what}: {refusal} ({refused}) is not drawn differently from the other outcomes ({others})")
    if "chunk_expand" in compiled:
        tt.check(drawn, f"{what}: no refusal drawn ({kinds})")
    note = " ".join("".join(el.itertext()) for el in root.iter(f"{{{SVG_NS}}}text") if "note" in classes(el))
    merged = sum(int(el.get("data-count")) - 1 for el in root.iter() if "mark" in classes(el))
    if merged:
        tt.check("Downsampled" in note, f"{what}: {merged} events merged into marks, and the picture does not say so")
    else:
        tt.check("Every one of the" in note, f"{what}: nothing merged, and the note says {note!r}")
    return len(lanes), len(markers), path_marks


def parse_svg(text, what):
    try:
        return ET.fromstring(text)
    except ET.ParseError as e:
        tt.fail(f"{what} is not well-formed XML: {e}")


# ---- Chromium ----

def check_screenshot(path):
    tt.check(Path(path).is_file() and Path(path).stat().st_size > 0, f"chromium wrote no screenshot {path}")
    width, height, rows, ch = read_png(path)
    tt.check((width, height) == (W, H), f"the screenshot is {width}x{height}, want {W}x{H}")
    colours, ink, red, green = set(), 0, 0, 0
    for row in rows:
        for i in range(0, len(row), ch):
            r, g, b = row[i], row[i + 1], row[i + 2]
            colours.add((r >> 3, g >> 3, b >> 3))
            if r + g + b < 600:
                ink += 1
            if abs(r - OOM_RED[0]) < 30 and abs(g - OOM_RED[1]) < 30 and abs(b - OOM_RED[2]) < 30:
                red += 1
            if abs(r - CLAIMED_GREEN[0]) < 30 and abs(g - CLAIMED_GREEN[1]) < 30 and abs(b - CLAIMED_GREEN[2]) < 30:
                green += 1
    total = width * height
    print(f"screenshot: {len(colours)} colours, {100 * ink / total:.1f}% ink, {red} OOM-red pixels, "
          f"{green} bitmap-claimed-green pixels", flush=True)
    tt.check(len(colours) >= 20, f"the screenshot has {len(colours)} colours: blank or nearly")
    tt.check(ink >= total * 0.03, f"the screenshot has ink on {100 * ink / total:.2f}% of its pixels: blank or nearly")
    tt.check(red >= 100, f"the screenshot shows {red} pixels of OOM red: the OOM markers are not visible")
    return green


def synthetic():
    """Downsampling, without a recording: 3 threads (main, worker, lttng-ust's), 10 s of refills, 3 OOM paths, fed
    to TimelineAnalyzer as Events. Every event must be accounted for by the marks' counts, the memory (cells kept)
    must stay within its bound, the picture must say it merged marks, and every OOM keeps its whole path."""
    sys.path.insert(0, str(tt.REPO / "analysis"))
    from hakmem import catalogue, records, timeline
    a = timeline.TimelineAnalyzer(width=W)
    a.declared = {catalogue.full_name(n) for n in catalogue.EVENTS}  # as a trace's stream classes declare them
    enum_default = {"outcome": "claimed", "path": "multi_stage", "why": "option_off", "reason": "cap",
                    "result": "claimed"}

    def ev(name, ts, tid, proc, **kw):
        fields = {}
        for k, kind in catalogue.EVENTS[name][1]:
            fields[k] = kw.get(k, enum_default.get(k, "claimed") if kind.startswith("enum:") else 0)
        fields.update(kw)
        return records.Event(name, ts, 100, tid, proc, fields)

    events, seq = [], {}
    t0, span = 1_000_000_000_000, 10_000_000_000
    for tid, proc, n in ((100, "prog", 50), (101, "prog", 20000), (102, "prog-ust", 300)):
        for i in range(n):
            ts = t0 + (i * span) // n + tid
            s = seq[tid] = seq.get(tid, 0) + 1
            common = dict(class_idx=4, block_size=128, seq=s)
            events += [ev("refill_enter", ts, tid, proc, **common),
                       ev("bitmap_check", ts + 100, tid, proc, chunk=0x200000, bitmap=1, full_mask=0xFFFFFFFF,
                          capacity=32, active_slabs=1, **common),
                       ev("refill_exit", ts + 300, tid, proc, slab=0x210000, **common)]
    ooms = [t0 + span // 4 + 7, t0 + span // 2 + 7, t0 + span - 1000]
    for k, ts in enumerate(ooms):
        s = 10_000 + k
        common = dict(class_idx=4, block_size=128, seq=s)
        events += [ev("refill_enter", ts - 60, 101, "prog", **common),
                   ev("bitmap_check", ts - 50, 101, "prog", chunk=0x200000, bitmap=0xFFFFFFFF, full_mask=0xFFFFFFFF,
                      capacity=32, active_slabs=32, outcome="full", **common),
                   ev("mid_simple_choice", ts - 40, 101, "prog", **common),
                   ev("chunk_expand", ts - 30, 101, "prog", outcome="failed", chunk=0x200000, chunk_count=8,
                      **common),
                   ev("superslab_alloc_fail", ts - 20, 101, "prog", bytes=2 << 20, err=12, **common),
                   ev("refill_exit", ts - 10, 101, "prog", result="null", **common),
                   ev("oom", ts, 101, "prog", size=128, **common)]
    events.sort(key=lambda e: e.ts)
    for e in events:
        a.event(e)
    result = a.finish()
    text, pic = timeline.render(a, result, "synthetic", "svg", W)
    root = parse_svg(text[text.index("<svg"):], "the synthetic SVG")
    marks = [el for el in root.iter() if "mark" in classes(el)]
    bins = [el for el in root.iter() if "oom-bin" in classes(el)]
    counted = sum(int(el.get("data-count")) for el in marks + bins)
    tt.check(counted == len(events), f"synthetic: the marks count {counted} events, {len(events)} were fed")
    cells = sum(len(cell) for lane in a.cells.values() for cell in lane.values())
    bound = 3 * a.max_buckets * len(timeline.STYLE)
    tt.check(a.shift > 0 and cells <= bound, f"synthetic: {cells} cells kept (bucket width 2^{a.shift} ns), "
                                             f"bound {bound}")
    tt.check(len(marks) < len(events) // 4, f"synthetic: {len(marks)} marks for {len(events)} events: not "
                                            "downsampled")
    note = " ".join("".join(el.itertext()) for el in root.iter(f"{{{SVG_NS}}}text") if "note" in classes(el))
    tt.check("Downsampled" in note, f"synthetic: the picture does not say it is downsampled: {note!r}")
    markers = [el for el in root.iter() if "oom-marker" in classes(el)]
    path_marks = [el for el in root.iter() if "path-mark" in classes(el)]
    tt.check(len(markers) == 3 and len(path_marks) == 18,
             f"synthetic: {len(markers)} OOM markers and {len(path_marks)} path marks, want 3 and 18")
    lanes = {g.get("data-vtid"): g for g in root.iter(f"{{{SVG_NS}}}g") if "lane" in classes(g)}
    tt.check(sorted(lanes) == ["100", "101", "102"], f"synthetic: lanes {sorted(lanes)}")
    label = {k: " ".join("".join(el.itertext()) for el in g.iter(f"{{{SVG_NS}}}text") if "lane-label" in classes(el))
             for k, g in lanes.items()}
    tt.check("lane-ust" in classes(lanes["102"]) and "lttng-ust thread" in label["102"],
             f"synthetic: lttng-ust's thread is not labelled as such: {label['102']!r}")
    tt.check("main thread" in label["100"] and "lane-ust" not in classes(lanes["101"]),
             f"synthetic: lane labels {label}")
    tt.ok(f"synthetic: {len(events)} events in {len(marks)} marks + {len(bins)} OOM ticks (counts add up), "
          f"{cells} cells kept, 3 OOM paths in full, lttng-ust's thread labelled")


def main():
    args = tt.arguments(workload="trace_oom_workload")
    compiled = tt.compiled_events()
    synthetic()
    trace, _ = at.record_workload(args, HAKMEM_MAX_MEMORY=CAP)
    work = trace.parent

    rc, out, err = run([tt.PYTHON, tt.HAKMEM_TRACE, "oom-paths", "--json", trace], "oom-paths --json")
    tt.check(rc == 0, f"oom-paths --json: status {rc}: {err[-2000:]}")
    report = json.loads(out)
    tt.check(len(report["ooms"]) == OOMS, f"oom-paths --json lists {len(report['ooms'])} OOMs, want {OOMS}")

    html, svg = work / "timeline.html", work / "timeline.svg"
    for f in (html, svg):
        rc, out, err = run([tt.PYTHON, tt.HAKMEM_TRACE, "timeline", trace, "-o", f], f"timeline -o {f.name}")
        tt.check(rc == 0, f"hakmem-trace timeline -o {f.name}: status {rc}: {err[-3000:]}")
        tt.check(f.is_file() and f.stat().st_size > 0, f"hakmem-trace timeline wrote no {f}")
    svg_text = svg.read_text(encoding="utf-8")
    html_text = html.read_text(encoding="utf-8")
    check_self_contained(svg_text, "the SVG")
    check_self_contained(html_text, "the HTML")
    n_lanes, n_markers, n_path = check_svg(parse_svg(svg_text, "the SVG"), report, "the SVG", compiled)
    tt.check(html_text.lstrip().lower().startswith("<!doctype html>"), "the HTML does not begin with <!DOCTYPE html>")
    inline = re.findall(r"<svg\b.*?</svg>", html_text, re.S)
    tt.check(len(inline) == 1, f"the HTML holds {len(inline)} inline <svg> elements, want 1")
    check_svg(parse_svg(inline[0], "the HTML's SVG"), report, "the HTML's SVG", compiled)
    tt.ok(f"structure: {n_lanes} lanes, {n_markers} OOM markers with {n_path} path marks, in the SVG and the HTML")

    exe = find_chromium() or install_chromium()
    if exe is None:
        tt.skip("chromium is not installed (apt-get install chromium; CI installs it): the picture's structure "
                "was checked, its rendering was not")
    url = html.resolve().as_uri()
    rc, dom, err = chromium(exe, url, "--dump-dom", size=(W, H))
    tt.check(rc == 0, f"chromium --dump-dom: status {rc}: {err[-3000:]}")
    tt.check(not console_errors(err), f"console errors while rendering: {console_errors(err)[:5]}")
    lanes = len(re.findall(r'<g class="lane[ "]', dom))
    markers = len(re.findall(r'class="oom-marker"', dom))
    tt.check(lanes == n_lanes and markers == n_markers,
             f"the rendered DOM has {lanes} lanes and {markers} OOM markers, want {n_lanes} and {n_markers}")
    tt.check("<svg" in dom and "hakmem timeline" in dom, "the rendered DOM lacks the picture")

    png = work / "timeline.png"
    rc, _, err = chromium(exe, url, f"--screenshot={png}", size=(W, H))
    tt.check(rc == 0, f"chromium --screenshot: status {rc}: {err[-3000:]}")
    green = check_screenshot(png)
    if "bitmap_check" in compiled:
        tt.check(green >= 100, f"the screenshot shows {green} pixels of the bitmap-claimed green: no refill marks")
    tt.ok(f"headless Chromium: the DOM holds {lanes} lanes and {markers} OOM markers, no console error; the "
          f"{W}x{H} screenshot is a picture")


if __name__ == "__main__":
    main()
