#!/usr/bin/python3
"""test_symbols.py — release libhakmem.so carries no tracing at all (no unwinder, no sampler); libhakmem-trace.so carries the whole catalogue.

Usage: test_symbols.py RELEASE_LIB TRACE_LIB [EVENT ...]  (events: those compiled in; default: the catalogue)
"""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "analysis"))
from hakmem import catalogue  # noqa: E402

MALLOC_FAMILY = {"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
                 "memalign", "valloc", "pvalloc", "malloc_usable_size"}


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run(*cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=True).stdout


def exported(lib):
    names = set()
    for line in run("nm", "-D", "--defined-only", lib).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWwDdBbRrVvi":
            names.add(parts[2].split("@")[0])
    return names


def check_exports(lib):
    extra = {n for n in exported(lib) if n not in MALLOC_FAMILY and not n.startswith("hak_")}
    if extra:
        fail(f"{lib} exports more than the malloc family and hak_*: {sorted(extra)}")
    missing = MALLOC_FAMILY - exported(lib)
    if missing:
        fail(f"{lib} does not export {sorted(missing)}")


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    release, trace = sys.argv[1], sys.argv[2]
    events = sys.argv[3:] or list(catalogue.EVENTS)
    for lib in (release, trace):
        if not Path(lib).is_file():
            preset = Path(lib).parent.name
            fail(f"{lib} is not built: build every preset with scripts/test, or this one with "
                 f"cmake --preset {preset} && cmake --build --preset {preset}")

    check_exports(release)
    if re.search(r"lttng|tracepoint", run("nm", "-a", release), re.I):
        fail(f"{release} has an LTTng or tracepoint symbol")
    if re.search(r"NEEDED.*lttng", run("readelf", "-d", release), re.I):
        fail(f"{release} depends on an LTTng library")
    if re.search(r"lttng|tracepoint", run("readelf", "-S", "-W", release), re.I):
        fail(f"{release} has a tracepoint section")
    # Stacks and the heap profile are the trace build's: the release library neither unwinds nor samples.
    if re.search(r"\b(unw_|_ULx86_64_|_Ux86_64_)\w*|hak_stack_capture|hak_sample_", run("nm", "-a", release)):
        fail(f"{release} has an unwinder or sampler symbol")
    if re.search(r"NEEDED.*libunwind", run("readelf", "-d", release)):
        fail(f"{release} depends on libunwind")

    check_exports(trace)
    if not re.search(r"NEEDED.*liblttng-ust\.so", run("readelf", "-d", trace)):
        fail(f"{trace} does not depend on liblttng-ust")
    symbols = run("nm", "-a", trace)
    if "call_stack" in events and not re.search(r"\bhak_stack_capture\b", symbols):
        fail(f"{trace} records call_stack but has no stack capture")
    for ev in catalogue.EVENTS:
        present = re.search(rf"\blttng_ust_tracepoint_hakmem___{ev}\b", symbols) is not None
        if present != (ev in events):
            fail(f"{trace}: event {ev} is {'present' if present else 'absent'}, "
                 f"expected {'present' if ev in events else 'absent'}")
    print(f"symbols ok: release clean; trace carries {sorted(events)} and nothing else of the catalogue")


if __name__ == "__main__":
    main()
