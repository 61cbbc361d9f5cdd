#!/usr/bin/python3
"""real_programs — real Debian programs (perl, python3, gcc, sqlite3, git, redis-server) as bench/run workloads: inputs, timed runs, tables.

Each program gets a deterministic input generated into bench/run's temporary folder (nothing large lives in the
repository), runs under each allocator via LD_PRELOAD (which reaches the children it spawns: cc1, as, git's
subcommands) and is timed by GNU time: wall, user and system seconds, minor page faults and peak RSS. redis-server
runs under the allocator on a free port of 127.0.0.1 while redis-benchmark (never preloaded) drives it.
"""
import csv
import hashlib
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

TIME = "/usr/bin/time"
# %e %U %S are wall, user, system seconds; %R minor faults; %M peak RSS (KiB) of the largest process of the tree.
TIME_FORMAT = "wall_s=%e user_s=%U sys_s=%S minor_faults=%R peak_rss_kb=%M"
METRICS = ["wall_s", "user_s", "sys_s", "minor_faults", "peak_rss_kb"]
ALL = ["perl", "python", "gcc", "sqlite", "git", "redis"]
# Debian packages, and the binaries that must exist for a program to run (absolute: the python3 first on PATH
# may not be Debian's).
PACKAGES = {"perl": ["perl"], "python": ["python3"], "gcc": ["gcc"], "sqlite": ["sqlite3"], "git": ["git"],
            "redis": ["redis-server", "redis-tools"]}
BINARIES = {"perl": ["/usr/bin/perl"], "python": ["/usr/bin/python3"], "gcc": ["/usr/bin/gcc"],
            "sqlite": ["/usr/bin/sqlite3"], "git": ["/usr/bin/git"],
            "redis": ["/usr/bin/redis-server", "/usr/bin/redis-benchmark"]}
WHAT = {
    "perl": "hash-heavy script: builds, regroups and prunes hashes of string keys",
    "python": "4 threads building and dropping dicts, lists, tuples and strings (PYTHONMALLOC=malloc)",
    "gcc": "gcc -O2 -c of a generated C file (structs, loops, switches; cc1 does the work)",
    "sqlite": "sqlite3: builds a table with two indexes, groups, joins, updates, deletes, queries",
    "git": "git: fast-import of a generated history, reset, gc, log -p, blame, status",
    "redis": "redis-server under the allocator, redis-benchmark (not preloaded) driving it on 127.0.0.1",
}
# Sizes: (full, quick). Full runs take 1-5 s under glibc on a 2-core machine; quick ones a fraction of a second.
SIZES = {
    "perl": ({"keys": 70000, "rounds": 4}, {"keys": 5000, "rounds": 2}),
    "python": ({"objects": 20000, "rounds": 5}, {"objects": 2000, "rounds": 2}),
    "gcc": ({"functions": 150}, {"functions": 5}),
    "sqlite": ({"rows": 300000}, {"rows": 5000}),
    "git": ({"files": 400, "commits": 300, "changes": 12}, {"files": 20, "commits": 10, "changes": 3}),
    "redis": ({"requests": 40000}, {"requests": 2000}),
}


# Libraries whose malloc a program may link in place of glibc's.
OTHER_MALLOCS = ("libjemalloc", "libtcmalloc", "libmimalloc")


def links_other_malloc(binary):
    """Whether the binary links another allocator (Debian's redis-server links libjemalloc): its malloc then
    comes before libc's, so the glibc column must preload libbench_libc_malloc.so to measure glibc."""
    r = subprocess.run(["ldd", binary], capture_output=True, text=True)
    return any(lib in r.stdout for lib in OTHER_MALLOCS)


def missing(names):
    """{program: the first binary it lacks} for the programs that cannot run here."""
    return {p: b for p in names for b in BINARIES[p] if not Path(b).exists()}


def packages(names):
    return [pkg for p in names for pkg in PACKAGES[p]]


# ---------------------------------------------------------------- inputs

PERL = r"""use strict; use warnings;
my ($n, $rounds) = (@KEYS@, @ROUNDS@);
my ($sum, @kept) = (0);
for my $r (1 .. $rounds) {
    my %h;
    $h{"key-$r-" . ($_ * 7919 % $n)} = ("v" x ($_ % 61)) . $_ for 1 .. $n;
    my %by_len;                                   # regroup: a hash of arrays
    push @{$by_len{length $h{$_}}}, $_ for keys %h;
    my %inv = map { $h{$_} => $_ } grep { /7/ } keys %h;   # a second hash of other strings
    delete $h{"key-$r-$_"} for grep { $_ % 3 } 0 .. $n - 1;
    $sum += keys(%h) + keys(%by_len) + keys(%inv);
    push @kept, { map { $_ => $h{$_} } (sort keys %h)[0 .. 999] };   # a little survives each round
    shift @kept if @kept > 3;
}
print "$sum ", scalar(@kept), "\n";
"""

PYTHON = r"""import threading
OBJECTS, ROUNDS, THREADS = @OBJECTS@, @ROUNDS@, 4
results = [0] * THREADS

def work(tid):
    total, kept = 0, []
    for r in range(ROUNDS):
        objs = [{"id": i, "name": f"t{tid}-r{r}-{i}", "tags": [str(i % 7), str(i % 11)], "pair": (i, i * 2)}
                for i in range(OBJECTS)]
        index = {o["name"]: o for o in objs if o["id"] % 3}
        words = " ".join(o["name"] for o in objs[::4]).split()
        total += len(index) + len(words) + sum(len(o["tags"]) for o in objs)
        kept.append(objs[::97])          # some objects survive a few rounds
        if len(kept) > 4:
            kept.pop(0)
    results[tid] = total + sum(len(k) for k in kept)

threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(sum(results))
"""

SQLITE = """PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
PRAGMA cache_size=-65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, body TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < @ROWS@)
INSERT INTO t SELECT i, (i * 7919) % 10007, 'name' || ((i * 31) % 5000),
                     printf('%.*c', 20 + (i * 13) % 180, char(65 + i % 26)) FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name);
SELECT k, count(*), sum(length(body)) FROM t GROUP BY k ORDER BY 3 DESC, 1 LIMIT 3;
SELECT count(*) FROM t a JOIN t b ON a.k = b.k AND a.id < b.id WHERE a.id % 50 = 0;
UPDATE t SET body = body || name WHERE id % 5 = 0;
DELETE FROM t WHERE id % 7 = 0;
SELECT name, group_concat(id) FROM (SELECT name, id FROM t WHERE k < 20 ORDER BY id) GROUP BY name
  ORDER BY name LIMIT 2;
SELECT count(*), total(length(body)), count(DISTINCT name) FROM t;
"""

GIT = """set -e
rm -rf repo
git init -q repo
cd repo
git fast-import --quiet < ../history.fi
git reset -q --hard
git gc -q
git log -p --stat > /dev/null
git blame f0000.txt | cksum
echo change >> f0001.txt
git status --porcelain
git log --oneline | wc -l
git rev-parse HEAD
"""


def gen_c(functions):
    """A C file of `functions` functions, each with a struct, loops, a switch and calls to its predecessors, so
    cc1 inlines, unrolls and allocates registers at length. No #include: it needs no libc headers."""
    rnd = random.Random(1)
    out = ["typedef unsigned long u64;"]
    for i in range(functions):
        n = rnd.randint(4, 16)
        cases = "\n".join(f"    case {c}: acc += p->a[(i + {c}) % {n}] * {rnd.randint(2, 99)} ^ (acc >> {c + 1}); "
                          f"p->a[i % {n}] = acc; break;" for c in range(rnd.randint(3, 9)))
        calls = " + ".join(f"f{rnd.randrange(i)}(x + {j}, q)" for j in range(min(i, 2))) if i else "0"
        out.append(f"""struct s{i} {{ u64 a[{n}]; double d; struct s{i} *next; }};
static u64 g{i}(struct s{i} *p, u64 x) {{
  u64 acc = x;
  for (int i = 0; i < {n * 3}; i++) {{
    switch ((x + i) % {rnd.randint(3, 9)}) {{
{cases}
    default: acc = acc * 31 + (u64)p->d; p->d += (double)acc / (i + 1);
    }}
    if (p->next && (acc & 1)) acc += g{i}(p->next, acc >> 3) & 0xff;
  }}
  return acc;
}}
u64 f{i}(u64 x, void *q) {{
  struct s{i} s = {{{{0}}, 1.5, 0}}, t = {{{{1}}, 2.5, &s}};
  return g{i}(&t, x) + ({calls});
}}""")
    return "\n".join(out) + "\n"


def gen_history(files, commits, changes):
    """A git fast-import stream: `commits` commits over `files` files of text, each changing `changes` of them
    (some lines replaced, some appended); fixed names and dates, so every run makes the same hashes."""
    rnd = random.Random(2)
    content = [[f"file {f} line {j} {rnd.getrandbits(48):x}" for j in range(rnd.randint(20, 200))]
               for f in range(files)]
    out = []

    def blob(f):
        data = ("\n".join(content[f]) + "\n").encode()
        out.append(f"M 100644 inline f{f:04d}.txt\ndata {len(data)}\n".encode() + data + b"\n")

    for c in range(commits):
        msg = f"commit {c}: change {changes} files\n".encode()
        when = 1700000000 + c * 60
        out.append(f"commit refs/heads/main\nauthor A U Thor <author@example.org> {when} +0000\n"
                   f"committer C O Mitter <committer@example.org> {when} +0000\ndata {len(msg)}\n".encode() + msg)
        for f in (range(files) if c == 0 else rnd.sample(range(files), changes)):
            lines = content[f]
            for _ in range(rnd.randint(1, 4)):
                lines[rnd.randrange(len(lines))] = f"commit {c} rewrote this {rnd.getrandbits(32):x}"
            lines.append(f"commit {c} appended {rnd.getrandbits(32):x}")
            blob(f)
        out.append(b"\n")
    return b"".join(out)


def prepare(name, folder, quick):
    """Writes the program's input into `folder`; returns (argv, extra environment, file whose bytes join the
    output check or None, hook to run before every run or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    size = SIZES[name][1 if quick else 0]

    def fill(text):
        for k, v in size.items():
            text = text.replace(f"@{k.upper()}@", str(v))
        return text

    if name == "perl":
        (folder / "hash.pl").write_text(fill(PERL))
        return ["/usr/bin/perl", "hash.pl"], {}, None, None
    if name == "python":
        (folder / "objects.py").write_text(fill(PYTHON))
        # pymalloc serves objects up to 512 B from its own arenas, so without PYTHONMALLOC=malloc the allocator under
        # test would see only the few larger blocks. Not -I (nor -E): they ignore every PYTHON* variable, this one
        # too — under -I the run made 3 434 mallocs instead of 7.3 million.
        return ["/usr/bin/python3", "-s", "-S", "objects.py"], {"PYTHONMALLOC": "malloc"}, None, None
    if name == "gcc":
        (folder / "big.c").write_text(gen_c(size["functions"]))
        return ["/usr/bin/gcc", "-O2", "-c", "big.c", "-o", "big.o"], {}, folder / "big.o", None
    if name == "sqlite":
        (folder / "script.sql").write_text(fill(SQLITE))
        db = folder / "bench.db"
        return ["/usr/bin/sqlite3", "-batch", str(db), ".read script.sql"], {}, None, lambda: db.unlink(missing_ok=True)
    if name == "git":
        (folder / "history.fi").write_bytes(gen_history(size["files"], size["commits"], size["changes"]))
        (folder / "run.sh").write_text(GIT)
        # No user or system configuration: identity, branch name and gc come from here, and gc runs in the
        # foreground (no detached auto gc outliving the timed run).
        config = {"init.defaultBranch": "main", "gc.autoDetach": "false", "gc.auto": "0", "core.pager": "cat", "core.fsync": "none",
                  "user.name": "Bench", "user.email": "bench@example.org"}
        env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_COUNT": str(len(config)),
               "GIT_TERMINAL_PROMPT": "0"}
        for i, (k, v) in enumerate(config.items()):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = k, v
        return ["/bin/sh", "run.sh"], env, None, None
    raise ValueError(name)


# ---------------------------------------------------------------- running

def base_env(folder):
    """A small fixed environment: no user configuration, locale or preload of the caller leaks in."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(folder), "LC_ALL": "C", "TMPDIR": str(folder)}


def preload_prefix(lib):
    # env sets LD_PRELOAD for the program only, not for /usr/bin/time.
    return ["env", f"LD_PRELOAD={lib}"] if lib else ["env", "-u", "LD_PRELOAD"]


def parse_time(path):
    text = path.read_text() if path.exists() else ""
    vals = dict(re.findall(r"(\w+)=([\d.]+)", text))
    m = re.search(r"terminated by signal (\d+)", text)
    return {k: float(vals[k]) for k in METRICS if k in vals}, (int(m.group(1)) if m else None)


def signal_name(sig):
    try:
        return f"killed by signal {sig} ({signal.Signals(sig).name})"
    except ValueError:
        return f"killed by signal {sig}"


def preload_error(lib, stderr):
    """ld.so names a library it could not preload on stderr and runs the program anyway: that run measured
    glibc, not `lib`."""
    if lib and "cannot be preloaded" in stderr:
        return "the preload did not take: " + stderr.strip().splitlines()[0][:300]
    return None


def run_plain(folder, argv, env, lib, timeout):
    """One timed run of a program in `folder`. Returns (metrics, stdout bytes, error or None)."""
    timefile = folder / "time.out"
    timefile.unlink(missing_ok=True)
    cmd = [TIME, "-f", TIME_FORMAT, "-o", str(timefile), *preload_prefix(lib), *argv]
    proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session holds time and the program's process tree only
        proc.communicate()
        return {}, b"", f"timed out after {timeout:g} s"
    metrics, sig = parse_time(timefile)
    err = err.decode(errors="replace")
    tail = err.strip()[-600:]
    if proc.returncode != 0:
        why = signal_name(sig) if sig else f"exit status {proc.returncode}"
        return metrics, out, f"{why}{': ' + tail if tail else ''}"
    error = preload_error(lib, err)
    if error is None and len(metrics) != len(METRICS):
        error = f"{TIME} reported no numbers"
    return metrics, out, error


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def run_redis(folder, size, lib, timeout):
    """redis-server under `lib` and GNU time on a free port of 127.0.0.1; redis-benchmark, not preloaded, sends
    its requests; then the server is stopped by its pid (SIGTERM: it exits cleanly, and time reports it).
    metrics: the benchmark's wall seconds, the server's user, system, faults and RSS, and requests/s over all
    the benchmark's tests. The server's stdout is not compared: the benchmark's numbers vary."""
    port, pidfile, timefile = free_port(), folder / "redis.pid", folder / "time.out"
    for f in (pidfile, timefile):
        f.unlink(missing_ok=True)
    env = base_env(folder)
    server = [TIME, "-f", TIME_FORMAT, "-o", str(timefile), *preload_prefix(lib), "/usr/bin/redis-server",
              "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              "--pidfile", str(pidfile), "--dir", str(folder), "--logfile", "", "--daemonize", "no"]
    proc = subprocess.Popen(server, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    error, rps, bench_wall = None, None, None
    try:
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and redis_ping(port)):
            if proc.poll() is not None or time.monotonic() > deadline:
                error = "redis-server did not come up"
                break
            time.sleep(0.05)
        if error is None:
            n = size["requests"]
            bench = ["/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-n", str(n), "-c", "50",
                     "-P", "16", "-r", "200000", "-d", "100", "--csv",
                     "-t", "set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100,mset"]
            t0 = time.monotonic()
            r = subprocess.run(bench, env=env, capture_output=True, text=True, timeout=timeout)
            bench_wall = time.monotonic() - t0
            rates = [float(m) for m in re.findall(r'^"[^"]+","([\d.]+)"', r.stdout, re.M)]
            if r.returncode != 0 or not rates:
                error = f"redis-benchmark failed (status {r.returncode}): {(r.stderr or r.stdout).strip()[-400:]}"
            else:
                rps = len(rates) * n / sum(n / x for x in rates)  # all requests over the tests' summed times
    except subprocess.TimeoutExpired:
        error = f"redis-benchmark timed out after {timeout:g} s"
    finally:
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        if proc.poll() is None:
            if text.isdigit():
                os.kill(int(text), signal.SIGTERM)  # the server itself: time then reports it and exits
            else:
                os.killpg(proc.pid, signal.SIGTERM)  # it never wrote its pid: its session holds time and it
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            error = error or "redis-server did not stop on SIGTERM"
    metrics, sig = parse_time(timefile)
    err = err.decode(errors="replace")
    if error is None and sig:
        error = signal_name(sig)
    if error is None and proc.returncode != 0:
        error = f"redis-server exit status {proc.returncode}: {err.strip()[-400:]}"
    error = error or preload_error(lib, err)
    if error is None and len(metrics) != len(METRICS):
        error = f"{TIME} reported no numbers"
    if bench_wall is not None:
        metrics["wall_s"] = bench_wall
    if rps is not None:
        metrics["requests_per_sec"] = rps
    return metrics, b"", error


def run_programs(names, libs, runs, quick, tmp, timeout, log, libc_malloc):
    """Runs each program `runs` rounds under every allocator (order rotated per round, like the workloads).
    libc_malloc: libbench_libc_malloc.so, the glibc column's preload for programs that link another allocator.
    Returns (rows, failures); a row: round, program, allocator, status, metrics, error."""
    allocs = list(libs)
    prepared, own_libs = {}, {}
    for p in names:
        folder = Path(tmp) / f"prog-{p}"
        folder.mkdir(parents=True, exist_ok=True)
        prepared[p] = None if p == "redis" else prepare(p, folder, quick)
        own_libs[p] = dict(libs)
        if "glibc" in libs and links_other_malloc(BINARIES[p][0]):
            own_libs[p]["glibc"] = str(libc_malloc)
            log(f"bench/run: {p} links another allocator; its glibc runs preload {libc_malloc}")
    rows, failures, expected = [], [], {}
    total, done = len(names) * len(allocs) * runs, 0
    for rnd in range(runs):
        for p in names:
            folder = Path(tmp) / f"prog-{p}"
            k = rnd % len(allocs)
            shown = []
            for a in allocs[k:] + allocs[:k]:
                lib = own_libs[p][a]
                if lib and not Path(lib).exists():
                    metrics, out, error = {}, b"", f"{lib} does not exist"
                elif p == "redis":
                    metrics, out, error = run_redis(folder, SIZES[p][1 if quick else 0], lib, timeout)
                else:
                    argv, extra, outfile, before = prepared[p]
                    if before:
                        before()
                    metrics, out, error = run_plain(folder, argv, {**base_env(folder), **extra}, lib, timeout)
                    if error is None:
                        # Every allocator must make the program print (and write) the same: the first run's.
                        digest = hashlib.sha256(out + (outfile.read_bytes() if outfile else b"")).hexdigest()
                        first = expected.setdefault(p, (a, digest))
                        if first[1] != digest:
                            error = f"its output differs from the run under {first[0]}"
                done += 1
                row = {"round": rnd + 1, "program": p, "allocator": a, "status": "FAILED" if error else "ok",
                       "metrics": metrics, "error": error or ""}
                rows.append(row)
                if error:
                    failures.append(row)
                    shown.append(f"{a} FAILED")
                else:
                    shown.append(f"{a} {metrics['wall_s']:.2f}s")
            log(f"[{done}/{total}] round {rnd + 1} {p}: " + "  ".join(shown))
            for row in rows[-len(allocs):]:
                if row["error"]:
                    log(f"    FAILED {row['allocator']} {p}: {row['error']}")
    return rows, failures


# ---------------------------------------------------------------- summarising

def summarise(rows, names, allocs):
    """{program: {allocator: {runs_ok, runs_failed, metric: median}}}."""
    out = {}
    for p in names:
        out[p] = {}
        for a in allocs:
            mine = [r for r in rows if r["program"] == p and r["allocator"] == a]
            ok = [r["metrics"] for r in mine if r["status"] == "ok"]
            med = {"runs_ok": len(ok), "runs_failed": len(mine) - len(ok)}
            for k in METRICS + ["requests_per_sec"]:
                vals = [m[k] for m in ok if k in m]
                med[k] = statistics.median(vals) if vals else None
            out[p][a] = med
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(metric, v):
    if v is None:
        return "-"
    if metric == "peak_rss_kb":
        return f"{v / 1024:.1f}"
    if metric == "minor_faults":
        return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"
    if metric == "requests_per_sec":
        return f"{v / 1000:.1f}k"
    return f"{v:.2f}"


TITLES = {
    "wall_s": "Real programs: wall time, median s (lower is better; ratios > 1: hakmem is slower; redis: "
              "redis-benchmark's time)",
    "user_s": "Real programs: user time, median s (the program and the children it waited for)",
    "sys_s": "Real programs: system time, median s",
    "minor_faults": "Real programs: minor page faults, median",
    "peak_rss_kb": "Real programs: peak RSS, median MiB (of the largest process: cc1 for gcc; redis: the server)",
    "requests_per_sec": "redis-benchmark: requests/s over all its tests, median (higher is better; ratios < 1: "
                        "hakmem is slower)",
}


def tables(summary, names, allocs, md, subject="hakmem", peers=("glibc", "mimalloc", "jemalloc", "tcmalloc")):
    """One table per metric: a row per program, a column per allocator, then hakmem / glibc, / mimalloc and
    / the best peer (for requests/s the fastest, for everything else the lowest) with that peer's name."""
    lines = []
    peers = [a for a in peers if a in allocs]
    have = subject in allocs
    for metric in METRICS + ["requests_per_sec"]:
        progs = [p for p in names if metric != "requests_per_sec" or p == "redis"]
        if not progs:
            continue
        head = ["program", *allocs]
        if have:
            head += [f"{subject[:3]}/{a[:2]}" for a in ("glibc", "mimalloc") if a in allocs]
            if peers:
                head += [f"{subject[:3]}/best", "best peer"]
        body = []
        for p in progs:
            c = summary[p]
            line = [p] + ["FAIL" if c[a][metric] is None and c[a]["runs_failed"] else fmt(metric, c[a][metric])
                          for a in allocs]
            if have:
                s = c[subject][metric]
                line += [("-" if ratio(s, c[a][metric]) is None else f"{ratio(s, c[a][metric]):.2f}")
                         for a in ("glibc", "mimalloc") if a in allocs]
                if peers:
                    have_peers = [a for a in peers if c[a][metric] is not None]
                    pick = max if metric == "requests_per_sec" else min
                    best = pick(have_peers, key=lambda a: c[a][metric]) if have_peers else None
                    r = ratio(s, c[best][metric]) if best else None
                    line += ["-" if r is None else f"{r:.2f}", best or "-"]
            body.append(line)
        if md:
            lines += ["", f"**{TITLES[metric]}**", "", "| " + " | ".join(head) + " |",
                      "|" + "|".join(["---"] + ["---:"] * (len(head) - 2) + ["---" if have and peers else "---:"])
                      + "|"]
            lines += ["| " + " | ".join(line) + " |" for line in body]
        else:
            widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
            last = len(head) - 1 if have and peers else None
            lines += ["", TITLES[metric]]
            lines += ["  ".join(x.ljust(widths[i]) if i in (0, last) else x.rjust(widths[i])
                                for i, x in enumerate(line)).rstrip() for line in [head, *body]]
    if have and "mimalloc" in allocs:
        lines += [""] + geomean_lines(summary, names, allocs, subject)
    return lines


def geomean_lines(summary, names, allocs, subject):
    """hakmem / glibc and / mimalloc per metric, over the programs (a zero, e.g. 0.00 s of system time, drops out)."""
    out = []
    for ref in ("glibc", "mimalloc"):
        if ref not in allocs:
            continue
        parts = []
        for metric in ("wall_s", "sys_s", "minor_faults", "peak_rss_kb"):
            rs = [ratio(summary[p][subject][metric], summary[p][ref][metric]) for p in names]
            rs = [r for r in rs if r]
            if rs:
                parts.append(f"{metric} {math.exp(sum(map(math.log, rs)) / len(rs)):.2f}")
        out.append(f"Geometric mean over the programs of {subject} / {ref}: " + ", ".join(parts))
    return out


def write_csv(base, rows, summary, names, allocs, stamp):
    keys = METRICS + ["requests_per_sec"]
    runs_path = base.with_name(base.name + "-programs-runs.csv")
    with open(runs_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["stamp", "round", "program", "allocator", "status", *keys, "error"])
        for r in rows:
            wr.writerow([stamp, r["round"], r["program"], r["allocator"], r["status"],
                         *(r["metrics"].get(k, "") for k in keys), r["error"]])
    med_path = base.with_name(base.name + "-programs-medians.csv")
    with open(med_path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["stamp", "program", "allocator", "runs_ok", "runs_failed", *(f"median_{k}" for k in keys)])
        for p in names:
            for a in allocs:
                m = summary[p][a]
                wr.writerow([stamp, p, a, m["runs_ok"], m["runs_failed"],
                             *("" if m[k] is None else m[k] for k in keys)])
    return runs_path, med_path
