#!/usr/bin/python3
"""test_catalogue.py — tracepoints/hakmem_tp.h and analysis/hakmem/catalogue.py describe the same events."""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analysis"))
from hakmem import catalogue  # noqa: E402


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def balanced(text, start):
    """Index just past the parenthesis group opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    fail("unbalanced parentheses in hakmem_tp.h")


def parse_header(text):
    body = text.replace("\\\n", " ")
    events = {}
    for m in re.finditer(r"(?<![\w#])EVENT\((\w+),\s*(DEBUG|INFO|NOTICE|WARNING|ERR|CRIT|ALERT|EMERG),\s*", body):
        name, level = m.group(1), m.group(2)
        args_end = balanced(body, m.end())
        rest = body[args_end:]
        fields_start = args_end + rest.index("(")
        fields_text = body[fields_start:balanced(body, fields_start)]
        fields = []
        for f in re.finditer(r"lttng_ust_field_(integer_hex|integer|enum|sequence_hex)\(([^()]*)", fields_text):
            parts = [p.strip() for p in f.group(2).split(",")]
            if f.group(1) == "enum":
                fields.append((parts[3], f"enum:{parts[1]}"))
            elif f.group(1) == "sequence_hex":
                fields.append((parts[1], "hex_seq"))
            else:
                fields.append((parts[1], "hex" if f.group(1) == "integer_hex" else "int"))
        events[name] = (level, fields)
    lists = {m.group(1): dict((lab, int(v)) for _, lab, v in re.findall(r"X\((\w+), (\w+), (\d+)\)", m.group(2)))
             for m in re.finditer(r"#define (HAKMEM_TP_\w+)\(X\)\s*((?:X\([^)]*\)\s*)+)", body)}
    enums = {}
    for m in re.finditer(r"LTTNG_UST_TRACEPOINT_ENUM\(hakmem, (\w+), LTTNG_UST_TP_ENUM_VALUES\((HAKMEM_TP_\w+)\(", body):
        enums[m.group(1)] = lists[m.group(2)]
    large = int(re.search(r"#define HAKMEM_TP_LARGE_CLASS (\d+)", body).group(1))
    return events, enums, large


def main():
    text = (REPO / "tracepoints" / "hakmem_tp.h").read_text()
    events, enums, large = parse_header(text)
    if not events:
        fail("no EVENT(...) found in hakmem_tp.h")
    if set(events) != set(catalogue.EVENTS):
        fail(f"events differ: header {sorted(events)}, python {sorted(catalogue.EVENTS)}")
    for name, (level, fields) in events.items():
        plevel, pfields = catalogue.EVENTS[name]
        if level != plevel:
            fail(f"{name}: loglevel {level} in the header, {plevel} in python")
        if fields != pfields:
            fail(f"{name}: fields differ\n  header {fields}\n  python {pfields}")
    if enums != catalogue.ENUMS:
        fail(f"enums differ\n  header {enums}\n  python {catalogue.ENUMS}")
    if large != catalogue.LARGE_CLASS:
        fail(f"large class {large} vs {catalogue.LARGE_CLASS}")
    for ev in catalogue.OOM_PATH:
        if ev not in events:
            fail(f"OOM_PATH names {ev}, not in the catalogue")
    print(f"catalogue ok: {len(events)} events, {len(enums)} enums agree")


if __name__ == "__main__":
    main()
