#!/usr/bin/python3
"""test_readme_tables.py — README.md's options and events tables list what src/options.h and tracepoints/hakmem_tp.h declare."""
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def table_rows(readme, first_header):
    """The rows of the markdown table whose header row starts with `first_header`, as lists of cells."""
    lines = readme.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"| {first_header} |"):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split(" | ")])
            return rows
    fail(f"README.md has no table headed '| {first_header} |'")


def plain(cell):
    return cell.replace("`", "").strip()


def declared_in(path, pattern, what):
    found = re.findall(pattern, (REPO / path).read_text().replace("\\\n", " "))
    if not found:
        fail(f"no {what} found in {path}")
    return found


def check_table(readme, header, declared, path, what):
    documented = [(plain(r[0]), plain(r[1])) for r in table_rows(readme, header)]
    if documented != declared:
        fail(f"{what}: {path} declares {declared}\nREADME.md lists {documented}")


def main():
    readme = (REPO / "README.md").read_text()
    options = declared_in("src/options.h", r'X\(\w+,\s*"(HAKMEM_\w+)",\s*\w+,\s*"([^"]*)"', "options")
    check_table(readme, "variable", options, "src/options.h", "options")
    events = declared_in("tracepoints/hakmem_tp.h",
                         r"(?<![\w#])EVENT\((\w+),\s*(DEBUG|INFO|NOTICE|WARNING|ERR|CRIT|ALERT|EMERG),", "events")
    check_table(readme, "event", events, "tracepoints/hakmem_tp.h", "events")
    print(f"README tables ok: {len(options)} options, {len(events)} events")


if __name__ == "__main__":
    main()
