#!/usr/bin/python3
"""test_heap_profile.py — who ate the memory: a recorded heap profile names the three call sites of heap_sites in the
order and the shares the program itself counted, and the first OOM's stack names the failing call and its callers.

heap_sites (tests/trace/heap_sites_main.c, heap_sites_lib.c) fills the heap 6:3:1 through alloc_big, alloc_mid and
alloc_small on three threads, one turn at a time, under HAKMEM_MAX_MEMORY, until one call gets NULL, and prints the
truth as one JSON line: each site's file:line and bytes, the failing site, the file:line of the failing call and of
its two callers. Each variant is recorded with `hakmem-trace record --heap-profile=16384` (4 KiB blocks: about one
in five is sampled, thousands of samples) and checked in the trace itself (the state dump maps the binary that holds
the sites, call_stack and heap_sample events are there), then through the analysis:
  - `heap --at first-oom --json`: the process of the first OOM; the three sites, in the truth's order of bytes, each
    named `function file:line` and within 5 points of its true share;
  - `oom-paths --json`: the first OOM's stack begins with the failing call's file:line and its two callers';
  - `heap --flamegraph`: the SVG names the three sites, and headless Chromium renders it into a picture, not a
    blank page.
Variants: the PIE executable; the sites in a module dlopen'ed after the threads started; the work in a forked
child; a stripped copy (every site and frame `binary+0xOFFSET`, named as having no symbols — the offsets are checked
against the unstripped binary with addr2line). Then, on a copy of the executable recorded from a folder of the test:
  - rebuilt there afterwards (-DREBUILT=1 moves every site two lines): "build id differs", and no line printed;
  - recorded with LTTNG_UST_WITHOUT_BADDR_STATEDUMP=1 (no state dump of the binaries): "no state dump for pid N";
  - truncated after recording (root ignores file modes, so damage it instead): "cannot read PATH: ...".
Each of those exits 0 with the problem named, and nothing ever prints a Python traceback.

usage: test_heap_profile.py --lib libhakmem-trace.so --program heap_sites --dlopen-program heap_sites_dlopen
         --module libheap_sites_module.so --fork-program heap_sites_fork --stripped-program heap_sites_stripped
         --cc CC --sources tests/trace
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import tracetest as tt
sys.path.insert(0, str(tt.REPO / "tests" / "analysis"))
import browser  # noqa: E402  (headless Chromium, as the flame graph's own test uses it)

CAP = "64M"
INTERVAL = 16384
SHARE_TOLERANCE = 0.05
SCHEMA = "hakmem-trace-heap/1"
# As CMake builds the programs (tests/trace/CMakeLists.txt): the rebuild must differ only by -DREBUILT=1.
BUILD_FLAGS = ["-std=gnu11", "-g", "-O1", "-fno-omit-frame-pointer"]
LIB = None  # libhakmem-trace.so, from the arguments


# ---- recording ----

def record(name, command, env_extra=None, options=()):
    """Records command under the cap with the heap profile on; (trace folder, the program's truth)."""
    work = tt.workdir(f"hakmem-heap-{name}-")
    trace = work / "trace"
    env = dict(os.environ, HAKMEM_MAX_MEMORY=CAP, **(env_extra or {}))
    argv = [tt.PYTHON, str(tt.HAKMEM_TRACE), "record", "--lib", LIB, "-o", str(trace),
            f"--heap-profile={INTERVAL}", *options, "--", *map(str, command)]
    print("+ " + " ".join(argv), flush=True)
    try:
        out = subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, timeout=240)
    except subprocess.TimeoutExpired:
        tt.fail(f"{name}: hakmem-trace record did not finish within 240 s")
    tt.check(out.returncode == 0, f"{name}: hakmem-trace record exited {out.returncode}, want 0 (the program's)")
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    tt.check(len(lines) == 1, f"{name}: the program printed {len(lines)} JSON lines, want 1: {out.stdout[-500:]!r}")
    truth = json.loads(lines[0])
    total = sum(s["bytes"] for s in truth["sites"])
    for s in truth["sites"]:
        s["share"] = s["bytes"] / total
        s["where"] = f"{Path(s['file']).name}:{s['line']}"
    truth["sites"].sort(key=lambda s: -s["bytes"])
    tt.ok(f"{name}: pid {truth['pid']}, {total} bytes at the NULL: "
          + ", ".join(f"{s['function']} {s['where']} {100 * s['share']:.1f} %" for s in truth["sites"])
          + f"; {truth['failed']} got the NULL")
    return trace, truth


def check_trace(name, trace, truth, binary, mapped_by):
    """The trace holds what the analysis needs: the binary of the sites mapped for the truth's pid (with its build
    id), the OOM's call_stack and the samples."""
    t = tt.read_trace(trace)
    pid = truth["pid"]
    mine = [e for e in t.events if e["vpid"] == pid]
    maps = [e for e in mine if e["name"] in mapped_by and Path(e["path"]).resolve() == Path(binary).resolve()]
    tt.check(maps, f"{name}: no {' or '.join(mapped_by)} event of pid {pid} maps {binary}")
    tt.check(all(e["has_build_id"] == 1 for e in maps), f"{name}: {binary} is mapped without its build id: {maps}")
    oom = [e for e in mine if e["name"] == "hakmem:oom" and e["oom_no"] == 1]
    tt.check(len(oom) == 1, f"{name}: {len(oom)} oom events numbered 1 for pid {pid}, want 1")
    stacks = [e for e in mine if e["name"] == "hakmem:call_stack" and e["oom_no"] == 1]
    tt.check(stacks and stacks[-1]["ts"] <= oom[0]["ts"] and stacks[-1]["vtid"] == oom[0]["vtid"],
             f"{name}: no call_stack on the OOM's thread before OOM 1 of pid {pid}")
    samples = [e for e in mine if e["name"] == "hakmem:heap_sample"]
    tt.check(len(samples) >= 1000 and all(e["mean"] == INTERVAL for e in samples),
             f"{name}: {len(samples)} heap_sample events of pid {pid} (want at least 1000, mean {INTERVAL})")
    tt.ok(f"{name}: the trace maps {Path(binary).name} ({len(maps)} events), has the OOM's call_stack "
          f"({len(stacks[-1]['frames'])} frames) and {len(samples)} samples")


# ---- the analysis ----

def run_cli(name, *args, want_status=0):
    """hakmem-trace ARGS: (stdout, stderr), the test failing on another status or any traceback."""
    out = subprocess.run([tt.PYTHON, str(tt.HAKMEM_TRACE), *map(str, args)], capture_output=True, text=True,
                         timeout=300)
    tt.check("Traceback" not in out.stderr and "Traceback" not in out.stdout,
             f"{name}: hakmem-trace {' '.join(map(str, args))} printed a traceback: {out.stderr[-1500:]}")
    tt.check(out.returncode == want_status,
             f"{name}: hakmem-trace {' '.join(map(str, args))} exited {out.returncode}, want {want_status}: "
             f"{out.stderr[-800:]}")
    return out.stdout, out.stderr


def heap_json(name, trace):
    out, _ = run_cli(name, "heap", "--at", "first-oom", "--json", trace)
    try:
        heap = json.loads(out)
    except ValueError as e:
        tt.fail(f"{name}: heap --json printed no JSON ({e}): {out[:300]!r}")
    tt.check(heap.get("schema") == SCHEMA, f"{name}: heap schema {heap.get('schema')!r}, want {SCHEMA}")
    tt.check(heap["by"] == "site" and heap["at"]["kind"] == "first-oom", f"{name}: heap at/by: {heap['at']}")
    entries = heap["entries"]
    tt.check(entries == sorted(entries, key=lambda e: -e["bytes"]), f"{name}: heap entries not sorted by bytes")
    return heap


def names_site(frame, site):
    return (frame["function"] == site["function"] and frame["file"] is not None
            and Path(frame["file"]).name == Path(site["file"]).name and frame["line"] == site["line"])


def check_heap(name, trace, truth, site_of=None):
    """The three sites in the truth's order of bytes, each within the tolerance of its share. site_of(entry) says
    which truth site an entry is (default: its innermost frame names the site's function and file:line)."""
    heap = heap_json(name, trace)
    tt.check(heap["at"]["vpid"] == truth["pid"] and heap["at"]["oom_no"] == 1,
             f"{name}: heap --at first-oom is at {heap['at']}, want OOM 1 of pid {truth['pid']}")
    tt.check(heap["sampling"]["mean"] == INTERVAL and heap["sampling"]["live_samples"] >= 1000,
             f"{name}: sampling {heap['sampling']}, want mean {INTERVAL} and at least 1000 live samples")
    site_of = site_of or (lambda entry: next((s for s in truth["sites"] if entry["stack"]
                                              and names_site(entry["stack"][0], s)), None))
    found = [(i, e, site_of(e)) for i, e in enumerate(heap["entries"])]
    found = [(i, e, s) for i, e, s in found if s is not None]
    order = [s["function"] for _, _, s in found]
    tt.check(order == [s["function"] for s in truth["sites"]],
             f"{name}: heap names the sites in the order {order}, want {[s['function'] for s in truth['sites']]}; "
             f"entries: {[(e['key'], round(e['share'], 3)) for e in heap['entries'][:6]]}")
    for i, e, s in found:
        tt.check(abs(e["share"] - s["share"]) <= SHARE_TOLERANCE,
                 f"{name}: {e['key']} has share {e['share']:.3f}, truth {s['share']:.3f} (+-{SHARE_TOLERANCE})")
        tt.check(i < 3, f"{name}: {e['key']} is entry {i}: another key holds more than a site")
    tt.ok(f"{name}: heap at OOM 1 of pid {truth['pid']}: "
          + ", ".join(f"{e['key']} {100 * e['share']:.1f} % (truth {100 * s['share']:.1f})" for _, e, s in found))
    return heap


def first_oom(name, trace, truth):
    out, _ = run_cli(name, "oom-paths", "--json", trace)
    ooms = [o for o in json.loads(out)["ooms"] if o["vpid"] == truth["pid"] and o["oom_no"] == 1]
    tt.check(len(ooms) == 1, f"{name}: oom-paths lists {len(ooms)} OOMs numbered 1 of pid {truth['pid']}")
    return ooms[0]


def check_oom_stack(name, trace, truth):
    oom = first_oom(name, trace, truth)
    stack = [f for f in oom.get("stack") or [] if not f.get("inlined")]
    want = truth["failing_stack"]
    got = [f["text"] for f in stack[:len(want)]]
    tt.check(len(stack) >= len(want) and all(names_site(f, w) for f, w in zip(stack, want)),
             f"{name}: the first OOM's stack begins {got}, want "
             f"{[w['function'] + ' ' + Path(w['file']).name + ':' + str(w['line']) for w in want]}")
    live = oom.get("live_heap")
    tt.check(live is not None and live["top"] and names_site(live["top"][0]["stack"][0], truth["sites"][0]),
             f"{name}: the first OOM's live_heap does not put {truth['sites'][0]['function']} first: {live}")
    tt.ok(f"{name}: the first OOM was called from {' <- '.join(got)}; its live heap starts with "
          f"{live['top'][0]['key']}")


def check_flamegraph(name, trace, truth):
    """heap --flamegraph: one SVG naming the three sites as heap names them, rendered by headless Chromium into a
    picture that is not blank (where chromium is missing outside CI, the SVG is checked and the rendering is not)."""
    svg = tt.workdir("hakmem-flame-") / "heap.svg"
    run_cli(name, "heap", "--flamegraph", svg, trace)
    tt.check(svg.is_file(), f"{name}: heap --flamegraph wrote no {svg}")
    keys = [next(e["key"] for e in heap_json(name, trace)["entries"] if names_site(e["stack"][0], s))
            for s in truth["sites"]]
    text = svg.read_text(encoding="utf-8")
    browser.check_self_contained(text, f"{name}: the flame graph")
    for key in keys:
        escaped = key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        tt.check(escaped in text, f"{name}: the flame graph does not name {key!r}")
    found = browser.check_rendered(svg, (1200, 500), keys, f"{name}: the flame graph")
    tt.ok(f"{name}: the flame graph names {', '.join(keys)}" +
          (f"; rendered: {found[0]} colours, ink on {100 * found[1]:.0f} %" if found else
           "; chromium is not installed: not rendered"))


# ---- the stripped binary ----

def unstripped_function(program, offset):
    """The function of the unstripped program at a return address' offset (the call is the byte before)."""
    out = subprocess.run(["addr2line", "-f", "-e", program, hex(offset - 1)], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else None


def check_stripped(name, trace, truth, stripped, program):
    def site_of(entry):
        frame = entry["stack"][0] if entry["stack"] else None
        if not frame or frame["binary"] is None or Path(frame["binary"]).name != Path(stripped).name:
            return None
        tt.check(frame["line"] is None and "no symbols" in (frame["problem"] or ""),
                 f"{name}: {entry['key']} of the stripped binary is not named as having no symbols: {frame}")
        shown = f"+0x{frame['offset']:x}"
        tt.check(any(frame["text"].startswith(b + shown) for b in (frame["binary"], Path(frame["binary"]).name)),
                 f"{name}: the stripped site is shown as {frame['text']!r}, want binary+0xOFFSET")
        function = unstripped_function(program, frame["offset"])
        return next((s for s in truth["sites"] if s["function"] == function), None)

    heap = check_heap(name, trace, truth, site_of)
    tt.check(any("no symbols" in p for p in heap["problems"]), f"{name}: problems {heap['problems']} lack no symbols")
    oom = first_oom(name, trace, truth)
    stack = oom.get("stack") or []
    want = truth["failing_stack"]
    functions = [unstripped_function(program, f["offset"]) if f["offset"] is not None else None
                 for f in stack[:len(want)]]
    tt.check(functions == [w["function"] for w in want]
             and all(f["line"] is None and "no symbols" in (f["problem"] or "") for f in stack[:len(want)]),
             f"{name}: the first OOM's stack {[f['text'] for f in stack[:len(want)]]} (functions {functions} in "
             f"the unstripped binary) is not {[w['function'] for w in want]} named as having no symbols")
    tt.ok(f"{name}: sites and the OOM's stack as binary+offset with no symbols, at the right functions")


# ---- a copy recorded, then changed ----

def copy_program(program, name):
    folder = tt.workdir(f"hakmem-heap-{name}-bin-")
    copy = folder / Path(program).name
    shutil.copy2(program, copy)
    return copy


def check_rebuilt(args):
    name = "rebuilt"
    copy = copy_program(args.program, name)
    trace, truth = record(name, [copy])
    sources = Path(args.sources)
    rebuild = [args.cc, *BUILD_FLAGS, "-DREBUILT=1", f"-I{sources}", "-o", str(copy),
               str(sources / "heap_sites_main.c"), str(sources / "heap_sites_lib.c"), "-pthread"]
    out = subprocess.run(rebuild, capture_output=True, text=True)
    tt.check(out.returncode == 0, f"{name}: {' '.join(rebuild)} failed: {out.stderr[-800:]}")
    heap = heap_json(name, trace)
    tt.check(any("build id differs" in p for p in heap["problems"]),
             f"{name}: heap's problems {heap['problems']} do not say the build id differs")
    for e in heap["entries"]:
        for f in e["stack"]:
            if f["binary"] and Path(f["binary"]).resolve() == copy.resolve():
                tt.check(f["line"] is None and f["file"] is None,
                         f"{name}: a frame of the rebuilt binary is resolved to {f['text']}")
    text, _ = run_cli(name, "heap", trace)
    lines = [w for w in ("heap_sites_lib.c:", "heap_sites_main.c:") if w in text]
    tt.check(not lines, f"{name}: heap prints lines ({lines}) of a binary rebuilt since the recording:\n{text[:800]}")
    tt.ok(f"{name}: build id differs, named; no line of the rebuilt binary printed")


def check_no_state_dump(args):
    name = "no-state-dump"
    trace, truth = record(name, [args.program], env_extra={"LTTNG_UST_WITHOUT_BADDR_STATEDUMP": "1"})
    heap = heap_json(name, trace)
    want = f"no state dump for pid {truth['pid']}"
    tt.check(any(want in p for p in heap["problems"]), f"{name}: heap's problems {heap['problems']} lack {want!r}")
    tt.check(heap["entries"], f"{name}: no entries: the samples are there, only their binaries are not")
    for e in heap["entries"][:3]:
        f = e["stack"][0] if e["stack"] else None
        tt.check(f is None or f["line"] is None, f"{name}: {e['key']} resolved to a line without a state dump")
    tt.ok(f"{name}: {want!r} named; top entries {[e['key'] for e in heap['entries'][:3]]}")


def check_unreadable(args):
    name = "unreadable"
    copy = copy_program(args.program, name)
    trace, truth = record(name, [copy])
    with open(copy, "r+b") as f:
        f.truncate(64)  # an ELF header cut short: no section, no note, no line can be read
    heap = heap_json(name, trace)
    tt.check(any(p.startswith(f"cannot read {copy}") for p in heap["problems"]),
             f"{name}: heap's problems {heap['problems']} lack 'cannot read {copy}: ...'")
    for e in heap["entries"]:
        for f in e["stack"]:
            if f["binary"] and Path(f["binary"]).resolve() == copy.resolve():
                tt.check(f["line"] is None, f"{name}: a frame of the damaged binary is resolved to {f['text']}")
    tt.ok(f"{name}: 'cannot read {copy}: ...' named")


def main():
    global LIB
    args = tt.arguments(program="heap_sites (PIE, sites in the executable)",
                        dlopen_program="heap_sites_dlopen (sites in the module it dlopens)",
                        module="libheap_sites_module.so", fork_program="heap_sites_fork (work in a fork child)",
                        stripped_program="a stripped copy of heap_sites", cc="the C compiler (the rebuild)",
                        sources="tests/trace (heap_sites sources)")
    LIB = args.lib
    missing = {"call_stack", "heap_sample", "heap_sample_free", "oom"} - tt.compiled_events()
    if missing:
        tt.skip(f"this build does not compile in {sorted(missing)}")

    state_dump = ("lttng_ust_statedump:bin_info",)
    trace, truth = record("pie", [args.program])
    check_trace("pie", trace, truth, args.program, state_dump)
    check_heap("pie", trace, truth)
    check_oom_stack("pie", trace, truth)
    check_flamegraph("pie", trace, truth)

    trace, truth = record("dlopen", [args.dlopen_program, args.module])
    check_trace("dlopen", trace, truth, args.module, ("lttng_ust_dl:dlopen", "lttng_ust_statedump:bin_info"))
    check_heap("dlopen", trace, truth)
    check_oom_stack("dlopen", trace, truth)

    trace, truth = record("fork", [args.fork_program])
    check_trace("fork", trace, truth, args.fork_program, state_dump)
    check_heap("fork", trace, truth)
    check_oom_stack("fork", trace, truth)

    trace, truth = record("stripped", [args.stripped_program])
    check_trace("stripped", trace, truth, args.stripped_program, state_dump)
    check_stripped("stripped", trace, truth, args.stripped_program, args.program)

    check_rebuilt(args)
    check_unreadable(args)
    check_no_state_dump(args)
    tt.ok("heap profile: every variant and every damaged input")


if __name__ == "__main__":
    main()
