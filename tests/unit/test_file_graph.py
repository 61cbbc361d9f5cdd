#!/usr/bin/python3
"""test_file_graph.py — the calls between the files of src/, read from their object files' symbols: no circle, and the README draws them as they are.

usage: test_file_graph.py OBJECTS [--readme README.md] [--print]
OBJECTS is CMake's ;-separated $<TARGET_OBJECTS:hakmem_core>. A file uses another when one of its undefined
symbols is defined there (functions and data alike; inline functions in headers are the header's, not a file's).
"""
import subprocess
import sys
from pathlib import Path

BEGIN, END = "<!-- src file graph: begin -->", "<!-- src file graph: end -->"


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def file_of(obj):
    return Path(obj).name.split(".")[0]


def symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRVW":  # global definitions only (lower case: file-local)
            defined.add(parts[2])
    return defined, undefined


def graph(objects):
    defs, uses = {}, {}
    for obj in objects:
        f = file_of(obj)
        d, u = symbols(obj)
        for s in d:
            defs[s] = f
        uses[f] = u
    return {f: sorted({defs[s] for s in u if s in defs and defs[s] != f}) for f, u in uses.items()}


def cycle(g):
    """One cycle as a list of files, or None (depth-first search, colours)."""
    state, stack = {}, []

    def visit(f):
        state[f] = 1
        stack.append(f)
        for t in g.get(f, []):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[f] = 2
        return None

    for f in sorted(g):
        if f not in state:
            found = visit(f)
            if found:
                return found
    return None


def layers(g):
    """Files by depth: a file's layer is one more than the highest layer it uses (leaves: 0)."""
    depth = {}

    def d(f):
        if f not in depth:
            depth[f] = 1 + max((d(t) for t in g.get(f, [])), default=-1)
        return depth[f]

    for f in g:
        d(f)
    return depth


def drawing(g):
    depth = layers(g)
    width = max(len(f) for f in g)
    lines = []
    for f in sorted(g, key=lambda f: (-depth[f], f)):
        uses = " ".join(g[f]) if g[f] else "(nothing)"
        lines.append(f"{f.ljust(width)}  -> {uses}")
    return "\n".join(lines)


def main():
    args = sys.argv[1:]
    if not args:
        fail(__doc__)
    objects = [o for o in args[0].split(";") if "/src/" in o]
    if not objects:
        fail(f"no object files of src/ in {args[0]!r}")
    g = graph(objects)
    c = cycle(g)
    if c:
        fail("a circle between files of src/: " + " -> ".join(c) + "\n" +
             "\n".join(f"{f} -> {' '.join(g[f])}" for f in sorted(g)))
    pic = drawing(g)
    if "--print" in args:
        print(pic)
    if "--readme" in args:
        readme = Path(args[args.index("--readme") + 1]).read_text()
        if BEGIN not in readme or END not in readme:
            fail(f"the README has no {BEGIN} ... {END} block")
        block = readme.split(BEGIN, 1)[1].split(END, 1)[0].strip().strip("`").strip()
        if block != pic:
            fail(f"the README's graph of src/ is not the build's; it is:\n{pic}\n\nthe README has:\n{block}")
    print(f"file graph ok: {len(g)} files of src/, no circle")


if __name__ == "__main__":
    main()
