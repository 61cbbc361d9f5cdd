"""The estimated live heap as one self-contained SVG flame graph: one box per frame of each distinct call path.

Drawn as an icicle: the whole heap ("all") on top, each caller above its callees, so the allocating sites are the
lowest boxes and a box's width is the bytes live below it. Nothing outside the file (no script, font or link);
the hover text is each box's <title>. The same stacks give the same bytes whatever their order: children are
ordered by weight, then label, and every number is printed with fixed precision.
"""

import math
import re
import zlib
from xml.sax.saxutils import escape, quoteattr

WIDTH = 1200
ROW = 18
MARGIN = 10
HEADER = 50
FOOTER = 24
FONT_SIZE = 12
CHAR_WIDTH = 7.4   # px per character of the 12 px monospace font (7.2 in Chromium), so labels stay in their box
MIN_WIDTH = 0.1    # px: narrower boxes are left out (and counted in the note), or a big profile is all slivers
ELLIPSIS = "\u2026"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold at all


class _Node:
    __slots__ = ("label", "weight", "children")

    def __init__(self, label):
        self.label, self.weight, self.children = label, 0.0, {}


def _tree(stacks):
    root = _Node("all")
    for frames, weight in stacks:
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            continue
        if not weight > 0 or math.isinf(weight):
            continue
        root.weight += weight
        node = root
        for label in frames:
            label = str(label)
            node = node.children.setdefault(label, _Node(label))
            node.weight += weight
    return root


def human(amount, unit):
    if unit != "bytes":
        return f"{amount:,.0f} {unit}"
    for scale, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if amount >= scale:
            return f"{amount / scale:.1f} {name}"
    return f"{amount:.0f} B"


def _clean(text):
    return _NOT_XML.sub("?", text)


def _colour(label):
    """A warm colour that depends only on the label, so a site keeps its colour from one picture to the next."""
    h = zlib.crc32(label.encode("utf-8", "replace"))
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 130},{40 + (h >> 16) % 50})"


def _fit(label, width):
    room = int((width - 6) // CHAR_WIDTH)
    if room < 3:
        return ""
    return label if len(label) <= room else label[:room - 1] + ELLIPSIS


def render(stacks, title, unit="bytes"):
    """stacks: [(frames outermost first (labels), weight)]; returns the SVG document as a str."""
    root = _tree(stacks)
    total = root.weight
    boxes, omitted, depth = [], 0, 0
    scale = (WIDTH - 2 * MARGIN) / total if total > 0 else 0.0
    pending = [(root, 0, MARGIN)] if total > 0 else []
    while pending:
        node, level, x = pending.pop()
        width = node.weight * scale
        if width < MIN_WIDTH:
            omitted += 1
            continue
        boxes.append((node, level, x, width))
        depth = max(depth, level + 1)
        placed = []
        for child in sorted(node.children.values(), key=lambda n: (-n.weight, n.label)):
            placed.append((child, level + 1, x))
            x += child.weight * scale
        pending.extend(reversed(placed))  # popped left to right: the document reads in the picture's order
    height = HEADER + max(depth, 1) * ROW + FOOTER
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="{FONT_SIZE}">\n'
           '<style>.frame rect{stroke:#fff;stroke-width:0.5}.frame:hover rect{stroke:#000;stroke-width:1}'
           '.frame text{fill:#000;pointer-events:none}.title{font-size:16px;font-weight:bold}</style>\n'
           f'<rect class="background" x="0" y="0" width="{WIDTH}" height="{height}" fill="#f8f8f0"/>\n'
           f'<text class="title" x="{MARGIN}" y="22">{escape(_clean(str(title)))}</text>\n'
           f'<text class="subtitle" x="{MARGIN}" y="40">{escape(human(total, unit))} in all; width is '
           f'{escape(unit)}, callers above callees; hover a box for its full label</text>\n']
    if not boxes:
        out.append(f'<text class="empty" x="{MARGIN}" y="{HEADER + ROW}">nothing to draw: no positive weight</text>\n')
    for node, level, x, width in boxes:
        label = _clean(node.label)
        y = HEADER + level * ROW
        share = node.weight / total
        tip = f"{label} \u2014 {human(node.weight, unit)}, {100 * share:.1f} %"
        out.append(f'<g class="frame" data-depth="{level}" data-weight="{node.weight:.0f}">'
                   f'<title>{escape(tip)}</title>'
                   f'<rect x="{x:.3f}" y="{y}" width="{width:.3f}" height="{ROW - 1}" '
                   f'fill={quoteattr(_colour(node.label))}/>')
        text = _fit(label, width)
        if text:
            out.append(f'<text x="{x + 3:.3f}" y="{y + ROW - 5}">{escape(text)}</text>')
        out.append('</g>\n')
    note = (f"{omitted} call paths narrower than {MIN_WIDTH} px are not drawn (their bytes are in their callers' "
            "boxes)" if omitted else "every call path is drawn")
    out.append(f'<text class="note" x="{MARGIN}" y="{height - 8}">{escape(note)}</text>\n</svg>\n')
    return "".join(out)
