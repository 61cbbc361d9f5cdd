#!/usr/bin/python3
"""test_symbols_resolve.py — hakmem.symbols turns return addresses into the right `function file:line`, or says why.

Compiles tests/analysis/symbols/sites.c (and the library it dlopens after start, sites_lib.c) with gcc into a
temporary folder, runs each build, and takes what the program prints as the truth: its binaries' load addresses
(dl_iterate_phdr, as lttng-ust's state dump reports them) and the return addresses of calls on lines it names
with __LINE__. From that output the test writes the records a state dump and the dl events would hold, and checks:
- a PIE, a non-PIE executable (offset = the address itself), and the dlopened library: each call's function and
  line, an inlined call as two frames; the library is unknown before its dlopen and after its unload;
- a separate debug file found through .gnu_debuglink; a stripped program: `binary+0xOFFSET (no symbols)`; a
  stripped library: its exported function by name, "no debug info", its static one "no symbols";
- rebuilt after the run: "build id differs" and no line; a truncated, a non-ELF and a deleted binary, and a
  truncated debug file: "cannot read PATH: why"; a stack address: outside any mapped binary; a pid without a
  state dump, and an incomplete dump, named; no eu-addr2line: named; records of the wrong shape: ignored;
- a C++ library (where g++ is installed): a namespaced function's name demangled;
- 10 000 addresses in 5 binaries: exactly 5 eu-addr2line runs, none the second time (the cache).
Then it records the program (forking a child) with the running or a private lttng-sessiond and resolves the sites
through the real state dump and dl events — the field names, baddr, build ids, and the child's own dump.

usage: test_symbols_resolve.py [--lib libhakmem-trace.so (unused: the recording preloads only lttng-ust's)]
Exits 77 only after every check on synthetic records passed, where lttng or bt2 is not installed.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[0] / "trace"))
import tracetest as tt  # noqa: E402  (puts analysis/ on sys.path)
from hakmem import symbols  # noqa: E402

SOURCES = HERE / "symbols"
CFLAGS = ["-g", "-O0", "-Wall", "-Wextra", "-Werror"]
DLOPEN_TS, LATER_TS, UNLOAD_TS = 5_000, 10_000, 20_000
FRAME_KEYS = {"addr", "binary", "offset", "function", "file", "line", "problem", "text"}


def sh(*argv, what=None):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)
    tt.check(p.returncode == 0, f"{what or argv[0]}: status {p.returncode}: {(p.stdout + p.stderr)[-1500:]}")
    return p.stdout


def build(out, *extra, source="sites.c"):
    sh("gcc", *CFLAGS, *extra, "-o", out, SOURCES / source, "-ldl", what=f"gcc {source} -> {Path(out).name}")
    return Path(out)


def build_id(path):
    m = re.search(r"Build ID: ([0-9a-f]+)", sh("readelf", "-n", path))
    tt.check(m, f"readelf -n {path} shows no build id")
    return m.group(1)


class Run:
    """What one run of sites printed: pid, sites [(function, file, line, addr)], inline [(inner, outer, addr)],
    stack, objects {path: (baddr, memsz)}, child pid and its sites."""

    def __init__(self, text):
        self.sites, self.inline, self.objects, self.child_sites = [], [], {}, []
        self.child = None
        for line in text.splitlines():
            w = line.split()
            if w[0] == "pid":
                self.pid = int(w[1])
            elif w[0] == "child":
                self.child = int(w[1])
            elif w[0] == "site":
                site = (w[1], os.path.basename(w[2]), int(w[3]), int(w[4], 16))
                (self.child_sites if self.child else self.sites).append(site)
            elif w[0] == "inline":
                self.inline.append((int(w[2]), int(w[4]), int(w[5], 16)))
            elif w[0] == "stack":
                self.stack = int(w[1], 16)
            elif w[0] == "object":
                self.objects[os.path.realpath(w[1])] = (int(w[2], 16), int(w[3]))


def run(exe, lib, *extra, env=None):
    p = subprocess.run([str(exe), str(lib), *extra], capture_output=True, text=True, timeout=60, env=env)
    tt.check(p.returncode == 0, f"{exe} {lib}: status {p.returncode}: {p.stderr[-1000:]}")
    return Run(p.stdout)


def record(name, ts, vpid, **fields):
    return {"name": name, "ts": ts, "vpid": vpid, "vtid": vpid, "procname": "sites", "fields": fields}


def dump(r, lib, vpid=None, complete=True, skip=()):
    """The records of r's process: a state dump of every binary but the library, which is dlopened at DLOPEN_TS
    (told by both lttng_ust_dl and lttng_ust_lib, as lttng-ust does), then unloaded at UNLOAD_TS."""
    vpid = r.pid if vpid is None else vpid
    lib = os.path.realpath(lib)
    recs = [record("lttng_ust_statedump:start", 100, vpid)]
    for path, (baddr, memsz) in sorted(r.objects.items()):
        if path == lib or path in skip or not os.path.isfile(path):
            continue
        recs.append(record("lttng_ust_statedump:bin_info", 200, vpid, baddr=baddr, memsz=memsz, path=path, is_pic=1,
                           has_build_id=1, has_debug_link=0))
        recs.append(record("lttng_ust_statedump:build_id", 200, vpid, baddr=baddr,
                           build_id=list(bytes.fromhex(build_id(path)))))
    if complete:
        recs.append(record("lttng_ust_statedump:end", 300, vpid))
    baddr, memsz = r.objects[lib]
    ident = list(bytes.fromhex(build_id(lib)))
    for provider, event in (("lttng_ust_dl", "dlopen"), ("lttng_ust_lib", "load")):
        recs.append(record(f"{provider}:{event}", DLOPEN_TS, vpid, baddr=baddr, memsz=memsz, path=lib, has_build_id=1,
                           has_debug_link=0))
        recs.append(record(f"{provider}:build_id", DLOPEN_TS, vpid, baddr=baddr, build_id=ident))
    recs.append(record("lttng_ust_dl:dlclose", UNLOAD_TS - 1, vpid, baddr=baddr))  # a dlclose that kept it loaded
    recs.append(record("lttng_ust_lib:unload", UNLOAD_TS, vpid, baddr=baddr))
    return recs


def check_frame(frame, function, file, line, what):
    tt.check(frame.function == function and frame.file and os.path.basename(frame.file) == file
             and frame.line == line and frame.problem is None,
             f"{what}: resolved to {frame.text!r} (problem {frame.problem!r}), want {function} {file}:{line}")
    tt.check(frame.text == f"{function} {file}:{line}", f"{what}: text {frame.text!r}")
    tt.check(set(frame.to_json()) == FRAME_KEYS, f"{what}: JSON keys {sorted(frame.to_json())}")


def check_sites(sym, r, what, inline=True):
    for function, file, line, addr in r.sites:
        frames = sym.stack(r.pid, [addr], LATER_TS)
        tt.check(len(frames) == 1, f"{what}: {function}'s call gave {len(frames)} frames: {frames}")
        check_frame(frames[0], function, file, line, f"{what}, {function}")
    if inline:
        for inner, outer, addr in r.inline:
            frames = sym.stack(r.pid, [addr], LATER_TS)
            tt.check(len(frames) == 2 and frames[0].inlined and not frames[1].inlined,
                     f"{what}: the inlined call gave {frames}, want inlined_site then alpha")
            check_frame(frames[0], "inlined_site", "sites.c", inner, f"{what}, the inlined call")
            check_frame(frames[1], "alpha", "sites.c", outer, f"{what}, the inlined call's caller")
    return len(r.sites) + len(r.inline)


def check_problem(frame, problem, what, text=None):
    tt.check(frame.problem is not None and frame.problem.startswith(problem) and frame.line is None,
             f"{what}: {frame.text!r} (problem {frame.problem!r}, line {frame.line}), want {problem!r} and no line")
    if text is not None:
        tt.check(frame.text == text, f"{what}: text {frame.text!r}, want {text!r}")


def main():
    if "--lib" in sys.argv:  # given to every recording test; nothing here preloads hakmem
        del sys.argv[sys.argv.index("--lib"):sys.argv.index("--lib") + 2]
    for tool in ("gcc", "readelf", "strip", "objcopy", symbols.ADDR2LINE):
        tt.check(shutil.which(tool), f"{tool} is not installed (Debian: gcc, binutils, elfutils)")
    work = tt.workdir("hakmem-symbols-")
    lib = build(work / "libsites.so", "-shared", "-fPIC", source="sites_lib.c")
    pie = build(work / "sites_pie", "-fPIE", "-pie")
    nopie = build(work / "sites_nopie", "-no-pie")

    # PIE and the library dlopened after start; unknown before the dlopen and after the unload.
    r = run(pie, lib, "fork")
    sym = symbols.Symbolizer(dump(r, lib))
    n = check_sites(sym, r, "PIE")
    lib_addr = next(a for f, _, _, a in r.sites if f == "lib_site")
    for ts in (DLOPEN_TS - 1, UNLOAD_TS, UNLOAD_TS + 1):
        check_problem(sym.stack(r.pid, [lib_addr], ts)[0], symbols.OUTSIDE, f"the library's address at ts {ts}")
    check_problem(sym.stack(r.pid, [r.stack], LATER_TS)[0], symbols.OUTSIDE, "a stack address",
                  f"0x{r.stack:x} (outside any mapped binary)")
    whole = sym.stack(r.pid, [a for _, _, _, a in r.sites], LATER_TS)
    tt.check([f.function for f in whole] == [s[0] for s in r.sites], f"a whole stack: {whole}")
    tt.ok(f"PIE: {n} calls resolved to their function and line (one inlined: two frames); the library only "
          "between its dlopen and unload; a stack address named outside")

    # Non-PIE: ET_EXEC, loaded at its link address, so the offset is the address itself.
    rn = run(nopie, lib)
    sym = symbols.Symbolizer(dump(rn, lib))
    n = check_sites(sym, rn, "non-PIE")
    tt.check(re.search(r"Type:\s+EXEC", sh("readelf", "-h", nopie)), "sites_nopie is not an ET_EXEC")
    alpha = next(a for f, _, _, a in rn.sites if f == "alpha")
    frame = sym.stack(rn.pid, [alpha], LATER_TS)[0]
    tt.check(frame.offset == alpha and frame.binary == str(nopie), f"non-PIE: {frame.to_json()}: the offset of an "
                                                                 "ET_EXEC address is the address")
    tt.ok(f"non-PIE (ET_EXEC, baddr 0x{rn.objects[str(nopie)][0]:x}): {n} calls resolved, offsets are addresses")

    # A separate debug file through .gnu_debuglink: resolved; that file truncated: named, no line.
    dbg = build(work / "sites_dbg", "-fPIE", "-pie")
    debug_file = work / "sites_dbg.debug"
    sh("objcopy", "--only-keep-debug", dbg, debug_file)
    sh("strip", "-g", dbg)
    sh("objcopy", f"--add-gnu-debuglink={debug_file}", dbg)
    rd = run(dbg, lib)
    n = check_sites(symbols.Symbolizer(dump(rd, lib)), rd, "debug link")
    debug_file.write_bytes(debug_file.read_bytes()[:3000])
    frame = symbols.Symbolizer(dump(rd, lib)).stack(rd.pid, [rd.sites[0][3]], LATER_TS)[0]
    check_problem(frame, f"cannot read {debug_file}: truncated", "a truncated debug file")
    tt.ok(f"debug info in a .gnu_debuglink file: {n} calls resolved; that file truncated: {frame.problem!r}")

    # Stripped: the program has no symbols; the library keeps its exported name but no lines.
    stripped, lib_stripped = work / "sites_stripped", work / "libsites_stripped.so"
    shutil.copy(pie, stripped)
    shutil.copy(lib, lib_stripped)
    sh("strip", stripped, lib_stripped)
    rs = run(stripped, lib_stripped)
    sym = symbols.Symbolizer(dump(rs, lib_stripped))
    baddr = rs.objects[str(stripped)][0]
    for function, _, _, addr in rs.sites:
        frame = sym.stack(rs.pid, [addr], LATER_TS)[0]
        if function == "lib_site":
            tt.check(frame.function == "lib_site" and frame.problem == symbols.NO_DEBUG_INFO,
                     f"stripped library, lib_site: {frame.text!r} ({frame.problem!r})")
        elif function == "lib_inner":
            check_problem(frame, symbols.NO_SYMBOLS, "stripped library, a static function")
        else:
            check_problem(frame, symbols.NO_SYMBOLS, f"stripped, {function}",
                          f"sites_stripped+0x{addr - baddr:x} (no symbols)")
    tt.ok("stripped: `sites_stripped+0xOFFSET (no symbols)`; a stripped library's exported function by name, "
          "its static one with no symbols")

    # Rebuilt after the run, truncated, not ELF, deleted.
    rebuilt = build(work / "sites_rebuilt", "-fPIE", "-pie")
    rr = run(rebuilt, lib)
    recs = dump(rr, lib)
    before = build_id(rebuilt)
    build(rebuilt, "-fPIE", "-pie", "-DSITES_VARIANT=1")
    tt.check(build_id(rebuilt) != before, "the rebuilt program kept its build id")
    for function, _, _, addr in rr.sites:
        if not function.startswith("lib_"):
            check_problem(symbols.Symbolizer(recs).stack(rr.pid, [addr], LATER_TS)[0], symbols.BUILD_ID_DIFFERS,
                          f"rebuilt, {function}")
    damaged = {}
    for kind in ("truncated", "text", "gone"):
        exe = work / f"sites_{kind}"
        shutil.copy(pie, exe)
        rk = run(exe, lib)
        damaged[kind] = (exe, rk, dump(rk, lib))
    damaged["truncated"][0].write_bytes(pie.read_bytes()[:4096])
    damaged["text"][0].write_text("#!/bin/sh\necho not a binary\n")
    damaged["gone"][0].unlink()
    whys = {"truncated": "truncated", "text": "not an ELF file", "gone": "No such file or directory"}
    for kind, (exe, rk, recs) in damaged.items():
        frame = symbols.Symbolizer(recs).stack(rk.pid, [rk.sites[0][3]], LATER_TS)[0]
        check_problem(frame, f"cannot read {exe}: {whys[kind]}", f"a {kind} binary")
    tt.ok("rebuilt: build id differs, no line; truncated, not ELF, deleted: cannot read PATH: why")

    # No state dump for the pid; an incomplete one (no end, the program missing); no eu-addr2line.
    sym = symbols.Symbolizer(dump(r, lib))
    check_problem(sym.stack(r.pid + 100000, [r.sites[0][3]])[0], f"no state dump for pid {r.pid + 100000}",
                  "another pid")
    partial = symbols.Symbolizer(dump(r, lib, complete=False, skip={str(pie)}))
    check_problem(partial.stack(r.pid, [r.sites[0][3]], LATER_TS)[0],
                  f"outside any mapped binary (the state dump of pid {r.pid} is incomplete)", "an incomplete dump")
    frame = symbols.Symbolizer(dump(r, lib), addr2line="hakmem-no-such-addr2line").stack(r.pid, [r.sites[0][3]])[0]
    check_problem(frame, "cannot resolve: hakmem-no-such-addr2line is not installed", "no resolver")
    tt.ok("no state dump, an incomplete dump, no resolver: each named")

    # Hostile records: wrong types, missing fields, a build id of strings, None: ignored, never an exception.
    garbage = [{}, {"name": 7}, {"name": "lttng_ust_statedump:bin_info", "vpid": r.pid, "fields": []},
               {"name": "lttng_ust_statedump:bin_info", "ts": "x", "vpid": r.pid,
                "fields": {"baddr": "0x1000", "memsz": -4, "path": None}},
               {"name": "lttng_ust_statedump:build_id", "vpid": r.pid, "fields": {"baddr": 0, "build_id": ["a"]}},
               {"name": "lttng_ust_lib:unload", "vpid": [], "fields": {"baddr": None}}, None]
    check_sites(symbols.Symbolizer(garbage + dump(r, lib)), r, "hostile records around a good dump")
    check_problem(symbols.Symbolizer(garbage).stack(r.pid, [r.sites[0][3]])[0], "no state dump",
                  "hostile records alone")
    odd = symbols.Symbolizer(dump(r, lib)).stack(r.pid, [None, -1, "0x10", True, [1]])
    tt.check(len(odd) == 5 and all(f.problem.startswith("not an address") for f in odd), f"odd addresses: {odd}")
    tt.ok("hostile records: ignored, the good dump still resolves; alone: no state dump; odd addresses: named")

    # C++: a namespaced function comes out demangled (c++filt), as its caller wrote it.
    if shutil.which("g++"):
        cxx = work / "libsites_cxx.so"
        sh("g++", *CFLAGS, "-shared", "-fPIC", "-o", cxx, SOURCES / "sites_cxx.cc", what="g++ sites_cxx.cc")
        rc = run(pie, cxx)
        tt.check(any(f == "sites::inner(int)" for f, _, _, _ in rc.sites), f"the C++ library's sites: {rc.sites}")
        n = check_sites(symbols.Symbolizer(dump(rc, cxx)), rc, "C++ library")
        tt.ok(f"C++: {n} calls resolved, sites::inner(int) demangled")
    else:
        print("g++ is not installed: demangling not checked", flush=True)

    # Batching and the cache: 10 000 addresses over 5 binaries of two processes.
    recs = dump(r, lib) + dump(rn, lib)
    sym = symbols.Symbolizer(recs)
    libc = next(p for p in r.objects if "/libc.so" in p)
    ld = next(p for p in r.objects if "/ld-linux" in p)
    spans = [(r.pid, *r.objects[p]) for p in (str(pie), str(lib), libc, ld)] + [(rn.pid, *rn.objects[str(nopie)])]
    requests = []
    for vpid, baddr, memsz in spans:
        step = max(1, memsz // 2000)
        addrs = [baddr + 1 + i * step for i in range(2000)]
        requests += [(vpid, addrs[i:i + 20], LATER_TS) for i in range(0, len(addrs), 20)]
    start = time.monotonic()
    stacks = sym.stacks(requests)
    took = time.monotonic() - start
    frames = sum(len(s) for s in stacks)
    tt.check(sym.runs == 5, f"10 000 addresses in 5 binaries took {sym.runs} eu-addr2line runs, want 5")
    again = sym.stacks(requests)
    tt.check(sym.runs == 5 and [[f.text for f in s] for s in again] == [[f.text for f in s] for s in stacks],
             f"the same addresses again: {sym.runs} runs in all, or other answers")
    tt.ok(f"10 000 addresses in 5 binaries: {frames} frames in {took:.2f} s with 5 eu-addr2line runs; again from "
          "the cache, no run")

    real_recording(pie, lib)


# ---- a real recording of the program: the state dump's field names and values ----

def real_recording(pie, lib):
    if shutil.which("lttng") is None or shutil.which("babeltrace2") is None:
        tt.skip("lttng or babeltrace2 is not installed: the resolution was checked on synthetic records only")
    try:
        import bt2  # noqa: F401
    except ImportError:
        tt.skip("python3-bt2 is not installed: the resolution was checked on synthetic records only")
    from hakmem import record as rec
    work = tt.workdir("hakmem-symbols-trace-")
    session = f"hakmem-symbols-{os.getpid()}"
    preload = ":".join(["liblttng-ust-fork.so.1", "liblttng-ust-dl.so.1"])
    with rec.RecordingLock(), rec.SessionDaemon():
        steps = [["create", session, f"--output={work / 'trace'}"],
                 ["enable-event", "-u", "-s", session, "lttng_ust_statedump:*,lttng_ust_dl:*,lttng_ust_lib:*"],
                 ["add-context", "-u", "-s", session, "-t", "vpid", "-t", "vtid", "-t", "procname"],
                 ["start", session]]
        try:
            for step in steps:
                sh("lttng", *step)
            r = run(pie, lib, "fork", env=dict(os.environ, LD_PRELOAD=preload))
            sh("lttng", "stop", session)
        finally:
            subprocess.run(["lttng", "destroy", session], capture_output=True, timeout=60)
    events = tt.read_events(work / "trace")
    records = [{"name": e["name"], "ts": e["ts"], "vpid": e["vpid"], "vtid": e["vtid"], "procname": e["procname"],
                "fields": {k: v for k, v in e.items() if k not in ("name", "ts", "vpid", "vtid", "procname", "cpu_id")}}
               for e in events]
    mine = [x for x in records if x["vpid"] in (r.pid, r.child)]
    info = [x for x in mine if x["name"] == "lttng_ust_statedump:bin_info" and x["fields"].get("path") == str(pie)]
    tt.check(info, f"no lttng_ust_statedump:bin_info of {pie} for pid {r.pid} in {len(records)} records")
    f = info[0]["fields"]
    tt.check((f["baddr"], f["memsz"]) == r.objects[str(pie)],
             f"the state dump gives baddr 0x{f['baddr']:x}, memsz {f['memsz']}; the program printed "
             f"{[hex(v) for v in r.objects[str(pie)]]}")
    ids = [bytes(x["fields"]["build_id"]).hex() for x in mine
           if x["name"] == "lttng_ust_statedump:build_id" and x["fields"]["baddr"] == f["baddr"]]
    tt.check(build_id(pie) in ids, f"the state dump's build ids of {pie}: {ids}, readelf says {build_id(pie)}")
    opened = [x for x in mine if x["name"] == "lttng_ust_dl:dlopen" and x["fields"].get("path") == str(lib)]
    tt.check(opened, "no lttng_ust_dl:dlopen of the library")
    tt.check(r.child and any(x["vpid"] == r.child and x["name"] == "lttng_ust_statedump:end" for x in mine),
             f"the forked child {r.child} has no state dump of its own")
    sym = symbols.Symbolizer(records)
    last = max(x["ts"] for x in mine)
    for function, file, line, addr in r.sites + r.child_sites:
        vpid = r.child if (function, file, line, addr) in r.child_sites else r.pid
        check_frame(sym.stack(vpid, [addr], last)[0], function, file, line, f"recorded, {function}")
    tt.ok(f"a real recording: bin_info baddr/memsz and build_id as the program printed, the dlopen, the child's own "
          f"dump; {len(r.sites) + len(r.child_sites)} calls resolved through it")


if __name__ == "__main__":
    main()
