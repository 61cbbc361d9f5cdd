"""`hakmem-trace timeline`: the refill decisions of every thread on a time axis, OOM paths emphasised, as one
self-contained SVG (or an HTML page holding it inline: no script, no network, no external style).

The trace is read once, through the same analysis core as `oom-paths` (TimelineAnalyzer is a paths.Analyzer
whose core also bins every event it reads). Memory stays bounded whatever the trace length: marks are
kept in time buckets per lane whose width doubles whenever the trace outgrows 2 buckets per pixel column; a
bucket keeps, per event kind and outcome, a count and its first event. The picture then draws at most one mark
per lane, kind/outcome and pixel column (its hover title gives the count and the first event), and says so when
that merged anything. OOM paths come from the analysis itself and are always drawn in full, event by event.

Layout: one lane per thread that emitted hakmem events (pid, tid, procname; the main thread and lttng-ust's own
threads are labelled), one row per event kind inside a lane, colour and shape by outcome (chunk expansions:
reused/new circles, lost race diamond, failed red triangle; mapping refusals squares; a NULL refill exit a
cross). Each OOM: a red band over its thread's lane from the path's first event to the NULL, the path's events
outlined, a red marker (linking to its detail strip). Below, one strip per OOM (the first DETAIL_LIMIT) on its
own microsecond axis: the numbered path and what other threads did on that class meanwhile. Lost events:
hatched where the trace says they were lost.
"""

import math
from xml.sax.saxutils import escape

from . import catalogue, paths, report, trace_input
from .records import Event

DEFAULT_WIDTH = 1400
GUTTER = 230             # left column: lane labels and row names
RIGHT = 24
BUCKETS_PER_PIXEL = 2    # time buckets kept per pixel column while streaming (before the final span is known)
DETAIL_LIMIT = 24        # OOM detail strips drawn
OOM_LIMIT = 2000         # OOMs drawn one by one; beyond, the first OOM per lane and pixel column (with its path)
DETAIL_THREADS = 6       # other threads shown per detail strip (the rest share one row)

ROW_H = 11
LANE_PAD = 10
ROWS = list(catalogue.PATH_STEPS)  # one row per event kind, in the order of a refill's steps
ROW_NAME = {"refill_enter": "enter", "slab_adopt": "adopt", "bitmap_check": "bitmap",
            "mid_simple_choice": "mid choice", "chunk_expand": "expand", "superslab_alloc_fail": "refused",
            "reclaim_retry": "reclaim", "refill_exit": "exit", "oom": "oom"}
OUTCOME_FIELD = {"slab_adopt": "outcome", "bitmap_check": "outcome", "mid_simple_choice": "path",
                 "chunk_expand": "outcome", "superslab_alloc_fail": "reason", "reclaim_retry": "outcome",
                 "refill_exit": "result"}

# (event, outcome) -> (colour, shape, legend text). Shapes: tick, circle, diamond, triangle, square, cross.
STYLE = {
    ("refill_enter", None): ("#8c8c8c", "tick", "refill entry"),
    ("slab_adopt", "adopted"): ("#a6761d", "circle", "adopt: adopted"),
    ("slab_adopt", "none"): ("#c7b07a", "tick", "adopt: none"),
    ("bitmap_check", "claimed"): ("#5aa02c", "tick", "bitmap: claimed"),
    ("bitmap_check", "full"): ("#e6a100", "tick", "bitmap: full"),
    ("bitmap_check", "lost_race"): ("#7a5cc7", "diamond", "bitmap: lost race"),
    ("bitmap_check", "cap_refused"): ("#d7191c", "circle", "bitmap: cap REFUSED"),
    ("mid_simple_choice", "multi_stage"): ("#9ec9e2", "tick", "mid: multi-stage"),
    ("mid_simple_choice", "simple"): ("#1f6fb4", "tick", "mid: simple"),
    ("chunk_expand", "reused_chained_chunk"): ("#1b9e77", "circle", "expand: reused chunk"),
    ("chunk_expand", "new_chunk"): ("#2b55c9", "circle", "expand: new chunk"),
    ("chunk_expand", "lost_race"): ("#a34fb8", "diamond", "expand: lost race"),
    ("chunk_expand", "failed"): ("#d7191c", "triangle", "expand: FAILED"),
    ("superslab_alloc_fail", "os"): ("#7f2704", "square", "refused: OS"),
    ("superslab_alloc_fail", "cap"): ("#f16913", "square", "refused: cap"),
    ("superslab_alloc_fail", "injected"): ("#e7298a", "square", "refused: injected"),
    ("reclaim_retry", "reclaimed_retry"): ("#3690c0", "square", "reclaim: gave back, retry"),
    ("reclaim_retry", "others_reclaimed_retry"): ("#74a9cf", "square", "reclaim: others', retry"),
    ("reclaim_retry", "gave_up"): ("#67001f", "cross", "reclaim: gave up"),
    ("refill_exit", "claimed"): ("#8c8c8c", "tick", "exit: claimed"),
    ("refill_exit", "adopted"): ("#a6761d", "tick", "exit: adopted"),
    ("refill_exit", "null"): ("#b2182b", "cross", "exit: NULL"),
    ("oom", None): ("#e41a1c", "circle", "OOM"),
}
OTHER_STYLE = ("#555555", "tick", "other")
OOM_RED = "#e41a1c"


def kind_of(name, fields):
    field = OUTCOME_FIELD.get(name)
    return name, (fields.get(field) if field else None)


def style_of(kind):
    return STYLE.get(kind) or STYLE.get((kind[0], None)) or OTHER_STYLE


class TimelineAnalyzer(paths.Analyzer):
    """The oom-paths analysis, with every event binned per lane into a bounded number of time buckets by the core
    (analysis/native/bins.c): cells[(vpid, vtid)][bucket][(event, outcome)] = [count, first Event]."""

    def __init__(self, width=DEFAULT_WIDTH):
        self.plot_width = max(200, int(width) - GUTTER - RIGHT)
        self.max_buckets = BUCKETS_PER_PIXEL * self.plot_width
        super().__init__(timeline_buckets=self.max_buckets)
        self.shift = 0            # bucket width is 1 << shift ns
        self.cells = {}
        self.lane_events = {}     # (vpid, vtid) -> events

    def finish(self):
        result = super().finish()
        bins = self.core.result()["bins"]
        self.shift = bins["shift"]
        for vpid, vtid, n, cells in bins["lanes"]:
            self.lane_events[(vpid, vtid)] = n
            self.cells[(vpid, vtid)] = {bucket: {(e[0], outcome): [count, Event(*e[:6])] for outcome, count, e in kinds}
                                        for bucket, kinds in cells}
        return result


# ---- drawing helpers ----

def esc(s):
    return escape(str(s), {'"': "&quot;"})


def text_width(s, size=11):
    return len(str(s)) * size * 0.58


def shape(kind_shape, x, y, r, colour, cls, title, extra="", outline=None):
    """One mark with its hover title. outline: (colour, width) of a stroke around it (not for the cross, which
    is a stroke itself)."""
    t = f"<title>{esc(title)}</title>"
    default = {"triangle": ("#5a0000", 0.8), "square": ("#3a1000", 0.6)}.get(kind_shape)
    o = outline or default
    st = f' stroke="{o[0]}" stroke-width="{o[1]}"' if o else ""
    a = f'class="{cls}" {extra}'.strip()
    if kind_shape == "tick":
        return (f'<rect {a} x="{x - 1.2:.1f}" y="{y - r:.1f}" width="2.4" height="{2 * r:.1f}" fill="{colour}"{st}>'
                f'{t}</rect>')
    if kind_shape == "circle":
        return f'<circle {a} cx="{x:.1f}" cy="{y:.1f}" r="{r * 0.8:.1f}" fill="{colour}"{st}>{t}</circle>'
    if kind_shape == "diamond":
        return (f'<path {a} d="M{x:.1f},{y - r:.1f}L{x + r:.1f},{y:.1f}L{x:.1f},{y + r:.1f}L{x - r:.1f},{y:.1f}Z" '
                f'fill="{colour}"{st}>{t}</path>')
    if kind_shape == "triangle":
        return (f'<path {a} d="M{x:.1f},{y - r - 1:.1f}L{x + r + 1:.1f},{y + r:.1f}L{x - r - 1:.1f},{y + r:.1f}Z" '
                f'fill="{colour}"{st}>{t}</path>')
    if kind_shape == "square":
        return (f'<rect {a} x="{x - r * 0.8:.1f}" y="{y - r * 0.8:.1f}" width="{r * 1.6:.1f}" height="{r * 1.6:.1f}" '
                f'fill="{colour}"{st}>{t}</rect>')
    if kind_shape == "cross":
        q = r * 0.8
        return (f'<path {a} d="M{x - q:.1f},{y - q:.1f}L{x + q:.1f},{y + q:.1f}M{x - q:.1f},{y + q:.1f}L{x + q:.1f},'
                f'{y - q:.1f}" stroke="{colour}" stroke-width="2.2" fill="none">{t}</path>')
    raise ValueError(kind_shape)


def class_of(fields):
    cls = fields.get("class_idx")
    if cls is None:
        return "class ?"
    return report.class_text(cls, fields.get("block_size"))


def rel(ns, unit=None):
    """A duration with a unit fit for its size: 870 ns, 12.5 µs, 3.250 ms, 1.200 s."""
    a = abs(ns)
    if unit is None:
        unit = "s" if a >= 1e9 else "ms" if a >= 1e6 else "µs" if a >= 1e3 else "ns"
    div = {"s": 1e9, "ms": 1e6, "µs": 1e3, "ns": 1}[unit]
    return f"{ns / div:.3f} {unit}" if unit != "ns" else f"{round(ns)} ns"


def nice_step(span, n=8):
    raw = max(span / n, 1)
    p = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * p >= raw:
            return m * p
    return 10 * p


def tick_label(ns, step, span):
    """+ns in the unit that suits the whole axis (span), with the decimals its step needs."""
    unit, div = (("s", 1e9) if span >= 1e9 else ("ms", 1e6) if span >= 1e6 else ("µs", 1e3) if span >= 1e3
                 else ("ns", 1))
    digits = max(0, math.ceil(-math.log10(step / div) - 1e-9)) if step < div else 0
    return f"+{ns / div:.{digits}f} {unit}"


# ---- the picture ----

class Picture:
    def __init__(self, analyzer, result, trace_name, width):
        self.a, self.r = analyzer, result
        self.name = trace_name
        self.width = int(width)
        self.plot_w = analyzer.plot_width
        self.x0 = GUTTER
        s = result["summary"]
        self.t0 = s["first_ns"]
        self.t1 = s["last_ns"]
        self.span = max(1, self.t1 - self.t0)
        self.out = []
        self.marks = 0
        self.merged = 0
        self.oom_bins = 0
        self.total_ooms = s.get("ooms_total", len(result["ooms"]))  # listed or not (paths lists the first ones)
        # A row per event kind the recorded build declares (a failures-only build: two rows), and any seen.
        declared = {n.split(":", 1)[1] for n in getattr(analyzer, "declared", ()) if n.startswith("hakmem:")}
        seen = {k[0] for lane in analyzer.cells.values() for cell in lane.values() for k in cell}
        self.rows = [r for r in ROWS if r in declared or r in seen] or list(ROWS)
        self.ooms_merged = 0

    def x(self, ts):
        return self.x0 + min(max(ts - self.t0, 0), self.span) * self.plot_w / self.span

    def col(self, ts):
        return min(self.plot_w - 1, int(min(max(ts - self.t0, 0), self.span) * self.plot_w / self.span))

    def emit(self, s):
        self.out.append(s)

    def event_title(self, who, ev_name, ts, fields, count=1, col=None):
        off = ts - self.t0
        head = f"{who} — {ev_name}"
        kind = kind_of(ev_name, fields)
        if kind[1] is not None:
            head += f": {kind[1]}"
        lines = [head]
        if count > 1 and col is not None:
            c0 = self.t0 + col * self.span / self.plot_w
            c1 = self.t0 + (col + 1) * self.span / self.plot_w
            lines.append(f"×{count} such events in this pixel column (+{rel(c0 - self.t0)} … +{rel(c1 - self.t0)}); "
                         f"the first:")
        lines.append(f"+{rel(off)}  ({report.clock(ts)})")
        lines.append(f"{class_of(fields)}, refill seq {fields.get('seq', '?')}")
        lines.append(report.describe(ev_name, fields))
        return "\n".join(lines)

    # -- sections --

    def header(self, y):
        s, lost = self.r["summary"], self.r["lost_events"]
        n_ooms = self.total_ooms
        self.emit(f'<text class="h1" x="12" y="{y + 18}">hakmem timeline — {esc(self.name)}</text>')
        y += 38
        self.emit(f'<text class="sub" x="12" y="{y}">{s["hakmem_events"]} hakmem events from '
                  f'{esc(report.clock(self.t0))} to {esc(report.clock(self.t1))} '
                  f'({esc(rel(self.t1 - self.t0))}), {len(s["threads"])} thread(s), {n_ooms} OOM(s); '
                  f'{esc(report.loss_counts(lost))}</text>')
        y += 14
        # legend, flowing over as many rows as it needs
        x, y = 12, y + 12
        items = [(STYLE[k], "legend-item") for k in STYLE if k[0] != "oom" and k[0] in self.rows]
        for (colour, shp, label), cls in items:
            w = 18 + text_width(label, 10) + 14
            if x + w > self.width - RIGHT:
                x, y = 12, y + 16
            self.emit(f'<g class="{cls}">' + shape(shp, x + 6, y - 4, 5, colour, "legend-mark", label)
                      + f'<text class="legend" x="{x + 16}" y="{y}">{esc(label)}</text></g>')
            x += w
        extra = [("OOM (its whole path banded, click for details)", "oom"), ("events lost", "loss")]
        for label, what in extra:
            w = 24 + text_width(label, 10) + 14
            if x + w > self.width - RIGHT:
                x, y = 12, y + 16
            if what == "oom":
                self.emit(f'<g class="legend-item"><rect x="{x}" y="{y - 10}" width="16" height="12" fill="{OOM_RED}" '
                          f'fill-opacity="0.2" stroke="{OOM_RED}" stroke-width="0.8"/>'
                          f'<circle cx="{x + 8}" cy="{y - 4}" r="4.5" fill="{OOM_RED}" stroke="#000" '
                          f'stroke-width="1"/><text class="legend" x="{x + 22}" y="{y}">{esc(label)}</text></g>')
            else:
                self.emit(f'<g class="legend-item"><rect x="{x}" y="{y - 10}" width="16" height="12" '
                          f'fill="url(#lost)" stroke="#666" stroke-width="0.5"/>'
                          f'<text class="legend" x="{x + 22}" y="{y}">{esc(label)}</text></g>')
            x += w
        return y + 10

    def axis(self, y, y_end):
        step = nice_step(self.span)
        self.emit(f'<g class="axis"><line x1="{self.x0}" y1="{y}" x2="{self.x0 + self.plot_w}" y2="{y}" '
                  f'stroke="#444"/>')
        t = 0
        while t <= self.span:
            xx = self.x0 + t * self.plot_w / self.span
            self.emit(f'<line x1="{xx:.1f}" y1="{y}" x2="{xx:.1f}" y2="{y_end}" stroke="#000" stroke-opacity="0.08"/>'
                      f'<line x1="{xx:.1f}" y1="{y - 4}" x2="{xx:.1f}" y2="{y}" stroke="#444"/>'
                      f'<text class="tick" x="{xx:.1f}" y="{y - 6}" text-anchor="middle">'
                      f'{esc(tick_label(t, step, self.span))}</text>')
            t += step
        self.emit("</g>")

    def lanes(self, y):
        """One lane per thread; returns (y after the lanes, {key: (lane top, lane bottom)})."""
        spans = {}
        threads = self.r["summary"]["threads"]
        for i, th in enumerate(threads):
            key = (th["vpid"], th["vtid"])
            top = y
            h = ROW_H * max(len(self.rows), 5) + LANE_PAD  # room for the 4-line label
            proc = th["procname"] or "?"
            label = th["thread"]
            role = label[len(proc):].strip(" ()") if label.startswith(proc) else ""
            ust = "lttng-ust" in role
            n = self.a.lane_events.get(key, 0)
            cls = "lane lane-ust" if ust else "lane"
            self.emit(f'<g class="{cls}" id="lane-{th["vpid"]}-{th["vtid"]}" data-vpid="{th["vpid"]}" '
                      f'data-vtid="{th["vtid"]}" data-events="{n}">')
            self.emit(f'<title>pid {th["vpid"]} tid {th["vtid"]} {esc(label)}: {n} hakmem events, '
                      f'{th["ooms"]} OOM(s)</title>')
            self.emit(f'<rect class="lane-bg" x="4" y="{top}" width="{self.width - 8}" height="{h}" '
                      f'fill="{"#f4f4f8" if i % 2 == 0 else "#ffffff"}"/>')
            ly = top + 15
            self.emit(f'<text class="lane-label{" ust" if ust else ""}" x="10" y="{ly}">'
                      f'<tspan class="tid" x="10" dy="0">pid {th["vpid"]} · tid {th["vtid"]}</tspan>'
                      f'<tspan x="10" dy="14">{esc(proc)}</tspan>'
                      + (f'<tspan x="10" dy="14" class="role">{esc(role)}</tspan>' if role else "")
                      + f'<tspan x="10" dy="14" class="count">{n} events'
                      + (f', <tspan class="oomcount">{th["ooms"]} OOM(s)</tspan>' if th["ooms"] else "")
                      + "</tspan></text>")
            for r, name in enumerate(self.rows):
                ry = top + LANE_PAD / 2 + r * ROW_H + ROW_H / 2
                self.emit(f'<text class="row" x="{self.x0 - 6}" y="{ry + 3:.1f}" text-anchor="end">'
                          f'{ROW_NAME[name]}</text>'
                          f'<line x1="{self.x0}" y1="{ry:.1f}" x2="{self.x0 + self.plot_w}" y2="{ry:.1f}" '
                          f'stroke="#000" stroke-opacity="0.06"/>')
            self.lane_marks(key, label, top)
            self.emit("</g>")
            spans[key] = (top, top + h)
            y = top + h
        return y, spans

    def row_y(self, top, name):
        r = self.rows.index(name) if name in self.rows else len(self.rows) - 1
        return top + LANE_PAD / 2 + r * ROW_H + ROW_H / 2

    def lane_marks(self, key, label, top):
        """Merge the lane's buckets into pixel columns: one mark per kind and column."""
        columns = {}
        for cell in self.a.cells.get(key, {}).values():
            for kind, (n, ev) in cell.items():
                c = self.col(ev.ts)
                slot = columns.setdefault((c, kind), [0, ev])
                slot[0] += n
                if ev.ts < slot[1].ts:
                    slot[1] = ev
        who = f"pid {key[0]} tid {key[1]} {label}"
        for (c, kind), (n, ev) in sorted(columns.items(), key=lambda kv: (self.rows.index(kv[0][1][0])
                                                                           if kv[0][1][0] in self.rows else 99,
                                                                           kv[0][0])):
            colour, shp, _ = style_of(kind)
            if kind[0] == "oom":
                # Every OOM, listed by the analysis or only counted; the listed ones are drawn on top, with
                # their paths, by ooms().
                self.oom_bins += 1
                self.emit(shape("tick", self.x(ev.ts), self.row_y(top, "oom"), ROW_H / 2, OOM_RED, "oom-bin",
                                self.event_title(who, ev.name, ev.ts, ev.fields, n, c).replace(
                                    "such events", "OOMs"), f'data-count="{n}"'))
                continue
            self.marks += 1
            self.merged += n - 1
            title = self.event_title(who, ev.name, ev.ts, ev.fields, n, c)
            self.emit(shape(shp, self.x(ev.ts), self.row_y(top, kind[0]), ROW_H / 2 - 1, colour, "mark", title,
                            f'data-kind="{esc(kind[0])}:{esc(kind[1] or "")}" data-count="{n}"'))

    def loss(self, top, bottom):
        for i, rg in enumerate(self.r["lost_events"]["ranges"]):
            b, e = rg["begin_ns"], rg["end_ns"]
            what = f"{rg['count'] if rg['count'] is not None else 'some'} {rg['kind']} lost"
            if b is None:
                continue
            x0, x1 = self.x(b), self.x(e)
            self.emit(f'<rect class="loss" x="{x0:.1f}" y="{top}" width="{max(2.0, x1 - x0):.1f}" '
                      f'height="{bottom - top}" fill="url(#lost)" stroke="#666" stroke-width="0.5">'
                      f'<title>{esc(what)} between +{esc(rel(b - self.t0))} and +{esc(rel(e - self.t0))}</title>'
                      f'</rect>')

    def ooms(self, spans):
        ooms = self.r["ooms"]
        drawn, count = ooms, {}
        if len(ooms) > OOM_LIMIT:
            first = {}
            for o in ooms:
                k = (o["vpid"], o["vtid"], self.col(o["time_ns"]))
                if k in first:
                    count[first[k]] += 1
                else:
                    first[k] = o["index"]
                    count[o["index"]] = 1
            drawn = [o for o in ooms if o["index"] in count]
        self.ooms_merged = len(ooms) - len(drawn)
        detailed = {o["index"] for o in ooms[:DETAIL_LIMIT]}
        for o in drawn:
            key = (o["vpid"], o["vtid"])
            top, bottom = spans.get(key, (None, None))
            if top is None:
                continue
            start = o["time_ns"] - o["path"][-1]["offset_ns"] if o["path"] else o["time_ns"]
            x0, x1 = self.x(start), self.x(o["time_ns"])
            if x1 - x0 < 4:
                x0 = x1 - 4
            title = (f"OOM {o['index']}/{self.total_ooms}: pid {o['vpid']} tid {o['vtid']} {o['thread']}\n"
                     f"{report.class_text(o['class'], o['block_size'])}, malloc({o['size']}) returned NULL at "
                     f"+{rel(o['time_ns'] - self.t0)} ({report.clock(o['time_ns'])})\n"
                     f"cause: {o['cause']} — {o['cause_detail']}\n"
                     f"path: {len(o['path'])} events over {rel(o['path'][-1]['offset_ns'] if o['path'] else 0)}"
                     + "".join(f"\n  {p['step']}. +{rel(p['offset_ns'])} {p['event']}" for p in o["path"]))
            n = count.get(o["index"], 1)
            if n > 1:
                title += f"\n(the first of {n} OOMs of this thread in this pixel column)"
            link = f"#oom-detail-{o['index']}" if o["index"] in detailed else None
            self.emit(f'<g class="oom" id="oom-{o["index"]}" data-index="{o["index"]}" data-vpid="{o["vpid"]}" '
                      f'data-vtid="{o["vtid"]}" data-cause="{esc(o["cause"])}" data-count="{n}">'
                      + (f'<a href="{link}">' if link else "") + f'<title>{esc(title)}</title>')
            self.emit(f'<rect class="oom-band" x="{x0:.1f}" y="{top + 1}" width="{x1 - x0:.1f}" '
                      f'height="{bottom - top - 2}" fill="{OOM_RED}" fill-opacity="0.18" stroke="{OOM_RED}" '
                      f'stroke-width="0.8"/>')
            self.emit(f'<line x1="{x1:.1f}" y1="{top}" x2="{x1:.1f}" y2="{bottom}" stroke="{OOM_RED}" '
                      f'stroke-width="1.5"/>')
            who = f"pid {o['vpid']} tid {o['vtid']} {o['thread']}"
            for p in o["path"]:
                if p["event"] == "oom":
                    continue
                kind = kind_of(p["event"], p["fields"])
                colour, shp, _ = style_of(kind)
                ts = start + p["offset_ns"]
                self.emit(shape(shp, self.x(ts), self.row_y(top, p["event"]), ROW_H / 2, colour, "path-mark",
                                f"OOM {o['index']} step {p['step']}\n"
                                + self.event_title(who, p["event"], ts, p["fields"]),
                                f'data-step="{p["step"]}"', outline=("#000", 0.9)))
            self.emit(f'<circle class="oom-marker" cx="{x1:.1f}" cy="{self.row_y(top, "oom"):.1f}" r="6" '
                      f'fill="{OOM_RED}" stroke="#000" stroke-width="1.2"/>')
            self.emit(f'<path class="oom-axis-marker" d="M{x1 - 5:.1f},{self.axis_y + 2}L{x1 + 5:.1f},'
                      f'{self.axis_y + 2}L{x1:.1f},{self.axis_y + 11}Z" fill="{OOM_RED}"/>')
            self.emit(("</a>" if link else "") + "</g>")

    def details(self, y):
        ooms = self.r["ooms"]
        if not ooms:
            self.emit(f'<text class="h2" x="12" y="{y + 20}">No OOM in this trace.</text>')
            return y + 34
        shown = ooms[:DETAIL_LIMIT]
        more = f" (the first {len(shown)} of {self.total_ooms}; the others: hakmem-trace oom-paths)" \
            if self.total_ooms > len(shown) else ""
        self.emit(f'<text class="h2" x="12" y="{y + 22}">OOM paths, each on its own time axis{esc(more)}</text>')
        y += 34
        for o in shown:
            y = self.detail(o, self.total_ooms, y)
        return y

    def detail(self, o, total, y):
        path, ctx = o["path"], o["context"]
        dur = max(1, path[-1]["offset_ns"] if path else 1)
        others = []
        for c in ctx:
            k = (c["vpid"], c["vtid"])
            if k not in others:
                others.append(k)
        rows = [("this", None)] + [(k, None) for k in others[:DETAIL_THREADS]]
        if len(others) > DETAIL_THREADS:
            rows.append(("more", None))
        row_of = {k: i for i, (k, _) in enumerate(rows)}
        rh = 28
        top = y
        h = 46 + rh * len(rows) + 4 + 14 * len(o["notes"])
        x0, w = self.x0, self.plot_w

        def dx(off):
            return x0 + min(max(off, 0), dur) * w / dur

        self.emit(f'<g class="oom-detail" id="oom-detail-{o["index"]}" data-index="{o["index"]}" '
                  f'data-vtid="{o["vtid"]}">')
        self.emit(f'<rect x="4" y="{top}" width="{self.width - 8}" height="{h}" fill="#fff6f5" stroke="{OOM_RED}" '
                  f'stroke-width="0.8" rx="3"/>')
        head = (f"OOM {o['index']}/{total} — pid {o['vpid']} tid {o['vtid']} {o['thread']} — "
                f"{report.class_text(o['class'], o['block_size'])}, malloc({o['size']}) at "
                f"{report.clock(o['time_ns'])} — cause: {o['cause']} ({o['cause_detail']})")
        self.emit(f'<text class="dhead" x="12" y="{top + 16}">{esc(head)}</text>')
        if o["begins_midway"] or o["lost_events_in_window"]:
            self.emit(f'<text class="dnote" x="12" y="{top + 29}">the beginning of this path is not in the trace'
                      f'{", events were lost in it" if o["lost_events_in_window"] else ""}</text>')
        ay = top + 40
        step = nice_step(dur, 6)
        self.emit(f'<line x1="{x0}" y1="{ay}" x2="{x0 + w}" y2="{ay}" stroke="#888"/>')
        t = 0
        while t <= dur:
            xx = dx(t)
            self.emit(f'<line x1="{xx:.1f}" y1="{ay - 3}" x2="{xx:.1f}" y2="{top + h - 6}" stroke="#000" '
                      f'stroke-opacity="0.07"/><text class="tick" x="{xx:.1f}" y="{ay - 5}" '
                      f'text-anchor="middle">{esc(tick_label(t, step, dur))}</text>')
            t += step
        for i, (k, _) in enumerate(rows):
            ry = ay + 18 + i * rh
            if k == "this":
                lab = f"tid {o['vtid']} (the OOM)"
            elif k == "more":
                lab = f"{len(others) - DETAIL_THREADS} more thread(s)"
            else:
                lab = f"tid {k[1]}"
            self.emit(f'<text class="row drow" x="{x0 - 6}" y="{ry + 4}" text-anchor="end">{esc(lab)}</text>'
                      f'<line x1="{x0}" y1="{ry}" x2="{x0 + w}" y2="{ry}" stroke="#000" stroke-opacity="0.12"/>')
        # the path, numbered (labels above the marks, staggered when they would collide)
        ry = ay + 18
        self.emit(f'<rect x="{dx(0):.1f}" y="{ry - 9}" width="{max(2.0, dx(dur) - dx(0)):.1f}" height="18" '
                  f'fill="{OOM_RED}" fill-opacity="0.10"/>')
        last_x = {}
        who = f"pid {o['vpid']} tid {o['vtid']} {o['thread']}"
        start = o["time_ns"] - dur
        for p in path:
            xx = dx(p["offset_ns"])
            kind = kind_of(p["event"], p["fields"])
            colour, shp, _ = style_of(kind)
            title = f"OOM {o['index']} step {p['step']}\n" + self.event_title(who, p["event"], start + p["offset_ns"],
                                                                              p["fields"])
            if p["event"] == "oom":
                self.emit(f'<circle class="detail-mark detail-oom" cx="{xx:.1f}" cy="{ry}" r="6" fill="{OOM_RED}" '
                          f'stroke="#000" stroke-width="1.2"><title>{esc(title)}</title></circle>')
            else:
                self.emit(shape(shp, xx, ry, 7, colour, "detail-mark", title,
                                outline=("#000", 0.6) if shp == "tick" else None))
            lvl = 0
            while last_x.get(lvl, -1e9) > xx - 14:
                lvl += 1
            last_x[lvl] = xx
            if lvl < 2:  # one level above the row, one below; the hover title numbers every step anyway
                self.emit(f'<text class="step" x="{xx:.1f}" y="{ry - 10 if lvl == 0 else ry + 18}" '
                          f'text-anchor="middle">{p["step"]}</text>')
        for c in ctx:
            k = (c["vpid"], c["vtid"])
            i = row_of.get(k, row_of.get("more"))
            if i is None:
                continue
            kind = kind_of(c["event"], c["fields"])
            colour, shp, _ = style_of(kind)
            self.emit(shape(shp, dx(c["offset_ns"]), ay + 18 + i * rh, 7, colour, "detail-mark detail-context",
                            self.event_title(f"pid {c['vpid']} tid {c['vtid']} {c['thread']}", c["event"],
                                             start + c["offset_ns"], c["fields"])))
        ny = ay + 18 + (len(rows) - 1) * rh + 24
        for n in o["notes"]:
            self.emit(f'<text class="dnote" x="{x0}" y="{ny}">note: {esc(n)}</text>')
            ny += 14
        self.emit("</g>")
        return top + h + 8

    def notes(self):
        """What the picture leaves out, said in the picture."""
        events = self.r["summary"]["hakmem_events"]
        n_oom_events = sum(len(o["path"]) for o in self.r["ooms"])
        if self.merged:
            out = [f"Downsampled: {events} events drawn as {self.marks} marks — at most one mark per lane, event "
                   f"kind/outcome and pixel column (hover: the count and the first event); OOM paths "
                   f"({n_oom_events} events) drawn in full."]
        else:
            out = [f"Every one of the {events} events is drawn; OOM paths ({n_oom_events} events) outlined."]
        unlisted = self.total_ooms - len(self.r["ooms"])
        if unlisted > 0:
            out.append(f"{self.total_ooms} OOMs: the analysis lists {len(self.r['ooms'])} with their paths (drawn "
                       f"in full); the other {unlisted} are red ticks in the oom rows, one per lane and pixel column.")
        if self.ooms_merged:
            out.append(f"More than {OOM_LIMIT} listed OOMs: the first per lane and pixel column is drawn with its "
                       f"path ({len(self.r['ooms']) - self.ooms_merged} of {len(self.r['ooms'])}; hover: the count).")
        return out, bool(self.merged or unlisted > 0 or self.ooms_merged)

    def wrap(self, text, size):
        lines, line = [], ""
        for word in text.split():
            if line and text_width(line + " " + word, size) > self.width - 24:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        return lines + ([line] if line else [])

    def render(self):
        # The body (axis, lanes, OOMs, details) is drawn first, at y = 0, and moved below the header and the
        # notes, which only then are known.
        self.axis_y = 20
        y = self.axis_y + 14               # a strip under the axis line for the OOM markers
        lanes_top = y
        axis_at = len(self.out)
        y, spans = self.lanes(y)
        lanes_end = y
        self.loss(lanes_top, lanes_end)
        self.ooms(spans)
        grid = []
        self.out, saved = grid, self.out
        self.axis(self.axis_y, lanes_end)
        self.out = saved
        self.out[axis_at:axis_at] = grid
        y = self.details(y + 10)
        body, self.out = self.out, []
        top = self.header(4)
        notes, downsampled = self.notes()
        ny = top + 10
        for n in notes:
            for line in self.wrap(n, 11):
                self.emit(f'<text class="note{" downsampled" if downsampled else ""}" x="12" y="{ny}">'
                          f'{esc(line)}</text>')
                ny += 15
        shift = ny
        self.emit(f'<g class="body" transform="translate(0,{shift})">')
        self.out.extend(body)
        self.emit("</g>")
        height = int(shift + y + 12)
        defs = ('<defs><pattern id="lost" width="6" height="6" patternUnits="userSpaceOnUse" '
                'patternTransform="rotate(45)"><rect width="6" height="6" fill="#dddddd" fill-opacity="0.5"/>'
                '<line x1="0" y1="0" x2="0" y2="6" stroke="#555" stroke-width="2"/></pattern></defs>')
        style = ("<style>"
                 "text{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;fill:#222}"
                 ".h1{font-size:17px;font-weight:bold}.h2{font-size:14px;font-weight:bold}"
                 ".sub{font-size:12px}.legend{font-size:10px}.note{font-size:11px;font-style:italic}"
                 ".note.downsampled{fill:#8a4b00}"
                 ".tick{font-size:9.5px;fill:#444}.row{font-size:8.5px;fill:#666}.drow{font-size:10px}"
                 ".lane-label{font-size:11px}.lane-label .tid{font-weight:bold}.lane-label .role{fill:#555}"
                 ".lane-label .count{font-size:10px;fill:#666}.lane-label .oomcount{fill:#c00;font-weight:bold}"
                 ".lane-label.ust{font-style:italic;fill:#666}.lane-ust .lane-bg{fill:#f7f2e8}"
                 ".dhead{font-size:11.5px;font-weight:bold}.dnote{font-size:10.5px;fill:#8a1010}"
                 ".step{font-size:9.5px;font-weight:bold;fill:#600}"
                 ".oom:hover .oom-band{fill-opacity:.45}.oom-band{cursor:pointer}"
                 ".mark:hover,.path-mark:hover,.detail-mark:hover{stroke:#000;stroke-width:1.5}"
                 "</style>")
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" class="hakmem-timeline" width="{self.width}" '
               f'height="{height}" viewBox="0 0 {self.width} {height}">'
               f'<title>hakmem timeline — {esc(self.name)}</title>{style}{defs}'
               f'<rect width="{self.width}" height="{height}" fill="#ffffff"/>'
               + "\n".join(self.out) + "</svg>\n")
        return svg


def render(analyzer, result, trace_name, fmt="html", width=DEFAULT_WIDTH):
    """The picture as an SVG document or an HTML page holding it inline."""
    pic = Picture(analyzer, result, trace_name, width)
    svg = pic.render()
    if fmt == "svg":
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg, pic
    html = ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
            f'<title>hakmem timeline — {esc(trace_name)}</title>'
            '<style>body{margin:8px;background:#fff;font-family:"DejaVu Sans",Verdana,Arial,sans-serif}'
            'svg{display:block;max-width:100%;height:auto}</style></head>\n<body>\n' + svg + '</body></html>\n')
    return html, pic


def timeline(args):
    from pathlib import Path
    out = Path(args.output)
    fmt = args.format or {".svg": "svg", ".html": "html", ".htm": "html"}.get(out.suffix.lower())
    if fmt is None:
        raise trace_input.TraceError(f"{out}: say --format html or svg (or name the file .html or .svg)")
    if args.width < 400:
        raise trace_input.TraceError(f"--width {args.width}: at least 400 pixels")
    import os
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise trace_input.TraceError(f"cannot write {out}: {parent} is not a writable folder")  # before a long read
    name, group = trace_input.select(args.trace, args.host, args.session)
    a = TimelineAnalyzer(width=args.width)
    result = paths.analyse(name, analyzer=a, group=group)
    text, pic = render(a, result, name, fmt, args.width)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise trace_input.TraceError(f"cannot write {out}: {e.strerror}") from None
    print(f"{out}: {len(result['summary']['threads'])} lane(s), {pic.marks} marks for "
          f"{result['summary']['hakmem_events']} events"
          + (" (downsampled)" if pic.merged else "") + f", {len(result['ooms'])} OOM(s)")
    return 0


def add_parser(sub):
    p = sub.add_parser("timeline", help="every thread's refill decisions on a time axis, OOM paths emphasised "
                                        "(self-contained HTML or SVG)",
                       description="Draw one lane per thread with its refill decisions on a time axis, every OOM "
                                   "with its whole path emphasised, and one detail strip per OOM. The trace is "
                                   "read once; very large traces are downsampled (at most one mark per lane, event "
                                   "kind/outcome and pixel column; OOM paths always in full), and the picture says "
                                   "so. Hover a mark for its details.")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.html or FILE.svg")
    p.add_argument("--format", choices=("html", "svg"), help="default: from the file name")
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH, help=f"picture width in pixels (default "
                                                                    f"{DEFAULT_WIDTH})")
    trace_input.add_group_options(p)
    p.add_argument("trace", metavar="TRACE_DIR")
    p.set_defaults(func=timeline)
