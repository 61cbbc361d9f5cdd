#!/bin/bash
# run_program.sh LIBHAKMEM SCENARIO — runs a real Debian program unchanged
# with LD_PRELOAD=LIBHAKMEM and checks both its result and that hakmem really
# served its allocations (HAKMEM_STATS=1 makes every process print
# "hakmem stats: allocs N ..." to a private copy of stderr at exit).
#
# Scenarios (each well under a minute on two idle cores):
#   python   4 threads build and drop dicts, lists, strings and bytes (some
#            above 32 KiB) and pass them around; checksum vs. a glibc run
#   git      init, 43 commits on two branches, a merge, log, diff, blame,
#            gc, fsck, archive; output vs. the same commands without hakmem
#   sort     2 million lines with --parallel=2, output vs. sort without hakmem
#   sqlite3  200 000 rows, indexes, joins, GROUP BY, integrity check;
#            results vs. sqlite3 without hakmem
#   make     make -j2 of a generated 21-file C project: make, gcc, cc1, as,
#            collect2 and ld all under hakmem; the program's output, and
#            every object file byte for byte vs. a build without hakmem
# A missing program is a failure, not a skip: CI installs them
# (scripts/deps.sh: python3 git coreutils sqlite3 make gcc binutils libc6-dev).
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 LIBHAKMEM {python|git|sort|sqlite3|make}" >&2
    exit 2
fi
lib=$1
scenario=$2

fail() {
    echo "FAIL [$scenario]: $*" >&2
    exit 1
}

[[ $lib == /* ]] || lib=$PWD/$lib
[[ -f $lib ]] || fail "library $lib does not exist"

need() {
    [[ -x $1 ]] || fail "$1 is not installed (apt-get install $2); this test does not skip"
}

PY=/usr/bin/python3
need "$PY" python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hakmem-preload-$scenario.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$tmp"

# Keep the programs' behaviour independent of the caller's environment.
export LC_ALL=C
unset LD_PRELOAD HAKMEM_STATS MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES

runs=0
hak_procs=0 # processes that printed stats in the last hak run

# hak LABEL MIN_ALLOCS CMD...: runs CMD under hakmem (stdout as the caller
# redirects it, stderr kept in $tmp/LABEL.err). Fails when CMD fails, when no
# process printed hakmem's stats (the preload did not take), or when the
# largest per-process alloc count is not above MIN_ALLOCS. Leaves the number
# of processes that printed stats in hak_procs.
hak() {
    local label=$1 min=$2
    shift 2
    local err="$tmp/$label.err" rc=0
    runs=$((runs + 1))
    LD_PRELOAD=$lib HAKMEM_STATS=1 "$@" 2>"$err" || rc=$?
    if ((rc != 0)); then
        echo "---- stderr of '$*' under hakmem ----" >&2
        cat "$err" >&2
        fail "'$*' under hakmem exited with status $rc"
    fi
    local max=-1 n=0 total=0 a
    while read -r a; do
        n=$((n + 1))
        total=$((total + a))
        if ((a > max)); then max=$a; fi
    done < <(sed -n 's/^hakmem stats: allocs \([0-9][0-9]*\) .*/\1/p' "$err")
    if ((n == 0)); then
        echo "---- stderr of '$*' under hakmem ----" >&2
        cat "$err" >&2
        fail "'$*': no \"hakmem stats: allocs N\" line on stderr: hakmem was not serving this program"
    fi
    if ((max <= min)); then
        grep '^hakmem stats:' "$err" >&2 || true
        fail "'$*': hakmem served only $max allocations (want > $min): the program is not using hakmem"
    fi
    hak_procs=$n
    echo "$label: ok, $n process(es) under hakmem, max allocs $max, total $total" >&2
}

# The program's own stderr lines (everything but hakmem's stats table).
program_stderr() {
    grep -v -E '^(hakmem stats:|class |C[0-9]+ )' "$tmp/$1.err" || true
}

# ---------------------------------------------------------------------------
scenario_python() {
    cat >work.py <<'EOF'
# Four threads build and drop dicts, lists and strings of varied sizes (some
# well above 32 KiB), and hand objects around a ring of queues so most
# objects are freed by a thread other than the one that allocated them.
import queue, random, sys, threading, zlib

THREADS = 4
ITEMS = int(sys.argv[1])
queues = [queue.Queue() for _ in range(THREADS)]
produced = [0] * THREADS
consumed = [0] * THREADS
received = [0] * THREADS
errors = []

def item_crc(item):
    crc = zlib.crc32(item["blob"])
    for s in item["strings"]:
        crc = zlib.crc32(s.encode(), crc)
    crc = zlib.crc32(repr(sorted(item["table"].items())).encode(), crc)
    return zlib.crc32(repr(item["numbers"]).encode(), crc)

def make_item(rng, tid, i):
    r = rng.random()
    if r < 0.05:
        blob_len = rng.randrange(33 * 1024, 300 * 1024)   # large: > 32 KiB
    elif r < 0.35:
        blob_len = rng.randrange(512, 33 * 1024)
    else:
        blob_len = rng.randrange(0, 512)
    blob = bytes(rng.getrandbits(8) for _ in range(min(blob_len, 64))) * (blob_len // 64 + 1)
    strings = ["%d-%d-" % (tid, i) + "x" * rng.randrange(0, 3000) for _ in range(rng.randrange(1, 12))]
    if rng.random() < 0.02:
        strings.append("y" * rng.randrange(40000, 120000))
    table = {("k%d" % k): k * i for k in range(rng.randrange(0, 200))}
    numbers = [rng.random() for _ in range(rng.randrange(0, 500))]
    item = {"blob": blob[:blob_len], "strings": strings, "table": table, "numbers": numbers}
    item["crc"] = item_crc(item)
    return item

def churn(rng):
    # Thread-local garbage: grow and drop containers of mixed sizes.
    d = {}
    for k in range(rng.randrange(10, 400)):
        d[str(k) * (k % 7 + 1)] = [k] * (k % 50)
    s = "".join(chr(65 + k % 26) for k in range(rng.randrange(100, 50000)))
    lst = [s[k:k + 40] for k in range(0, len(s), 40)]
    return len(d) + len(lst)

def worker(tid):
    rng = random.Random(1000 + tid)
    inbox, outbox = queues[tid], queues[(tid + 1) % THREADS]
    def take(item):
        if item_crc(item) != item["crc"]:
            errors.append("thread %d received a corrupted item" % tid)
        consumed[tid] = (consumed[tid] + item["crc"]) % (1 << 64)
        received[tid] += 1
    try:
        upstream_done = False
        for i in range(ITEMS):
            item = make_item(rng, tid, i)
            produced[tid] = (produced[tid] + item["crc"]) % (1 << 64)
            outbox.put(item)
            del item
            churn(rng)
            while not upstream_done:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    upstream_done = True  # the previous thread has finished
                else:
                    take(item)
        outbox.put(None)
        while not upstream_done:
            item = inbox.get()
            if item is None:
                upstream_done = True
            else:
                take(item)
    except Exception as e:  # reported by the main thread
        errors.append("thread %d: %r" % (tid, e))
        outbox.put(None)

threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    print("errors:", errors[:5], file=sys.stderr)
    sys.exit(1)
if sum(received) != THREADS * ITEMS:
    print("received %d items, sent %d" % (sum(received), THREADS * ITEMS), file=sys.stderr)
    sys.exit(1)
total_p = sum(produced) % (1 << 64)
total_c = sum(consumed) % (1 << 64)
if total_p != total_c:
    print("checksum mismatch: produced %x consumed %x" % (total_p, total_c), file=sys.stderr)
    sys.exit(1)
print("items %d checksum %016x" % (sum(received), total_c))
EOF
    local items=300
    # The reference checksum: the same workload under the C library's malloc.
    "$PY" work.py "$items" >expected.txt
    # pymalloc (the default) sends blocks above 512 bytes to malloc;
    # PYTHONMALLOC=malloc sends every object there, the harder case.
    hak python-pymalloc 10000 "$PY" work.py "$items" >got-pymalloc.txt
    cmp expected.txt got-pymalloc.txt || fail "python checksum differs under hakmem: $(cat got-pymalloc.txt) vs $(cat expected.txt)"
    PYTHONMALLOC=malloc hak python-malloc 100000 "$PY" work.py "$items" >got-malloc.txt
    cmp expected.txt got-malloc.txt || fail "python (PYTHONMALLOC=malloc) checksum differs under hakmem: $(cat got-malloc.txt) vs $(cat expected.txt)"
    echo "python: $(cat got-malloc.txt)"
}

# ---------------------------------------------------------------------------
scenario_git() {
    local GIT=/usr/bin/git
    need "$GIT" git
    export HOME=$tmp GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat GIT_TERMINAL_PROMPT=0
    export GIT_AUTHOR_NAME="hakmem test" GIT_AUTHOR_EMAIL="test@hakmem.invalid"
    export GIT_COMMITTER_NAME="hakmem test" GIT_COMMITTER_EMAIL="test@hakmem.invalid"
    export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
    unset XDG_CONFIG_HOME GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE

    mkdir repo
    # ~200 files of text, some of them large, in a few directories.
    "$PY" - <<'EOF'
import os, random
rng = random.Random(7)
words = ["alpha", "beta", "gamma", "delta", "hakmem", "slab", "chunk", "free", "list", "thread"]
for i in range(200):
    d = os.path.join("repo", "dir%02d" % (i % 10))
    os.makedirs(d, exist_ok=True)
    lines = rng.randrange(5, 4000 if i % 25 == 0 else 300)
    with open(os.path.join(d, "file%03d.txt" % i), "w") as f:
        for n in range(lines):
            f.write("%d %s\n" % (n, " ".join(rng.choice(words) for _ in range(rng.randrange(1, 16)))))
EOF
    # The edits of one branch commit: commit K of BRANCH rewrites lines of
    # three files in its own half of the tree (main: dir00-dir04, feature:
    # dir05-dir09), adds a file, now and then renames one, and appends
    # (main) or prepends (feature) a line to shared.txt, so that the merge
    # has a file both sides changed, without a conflict.
    cat >"$tmp/edit.py" <<'EOF'
import os, random, sys
branch, k = sys.argv[1], int(sys.argv[2])
rng = random.Random("%s-%d" % (branch, k))
base = 0 if branch == "main" else 5
for _ in range(3):
    d = "dir%02d" % (base + rng.randrange(5))
    p = os.path.join(d, rng.choice(sorted(os.listdir(d))))
    with open(p) as f:
        lines = f.readlines()
    for _ in range(rng.randrange(1, 20)):
        lines[rng.randrange(len(lines))] = "%s %d edited %s\n" % (branch, k, "z" * rng.randrange(0, 200))
    with open(p, "w") as f:
        f.writelines(lines)
with open("dir%02d/%s-%03d.txt" % (base + k % 5, branch, k), "w") as f:
    f.write("".join("%s commit %d line %d\n" % (branch, k, n) for n in range(rng.randrange(10, 2000))))
if k % 7 == 3:
    d = "dir%02d" % (base + k % 5)
    victim = sorted(n for n in os.listdir(d) if n.startswith("file"))[0]
    os.rename(os.path.join(d, victim), os.path.join(d, "renamed-%s-%d-%s" % (branch, k, victim)))
with open("shared.txt") as f:
    text = f.read()
with open("shared.txt", "w") as f:
    f.write(text + "main %d\n" % k if branch == "main" else "feature %d\n" % k + text)
EOF
    cd repo
    seq 1 500 | sed 's/^/shared line /' >shared.txt
    hak git-init 10 "$GIT" init -q -b main .
    hak git-add 1000 "$GIT" add .
    hak git-commit1 200 "$GIT" commit -q -m "first: 201 files"
    # Modify 50 files, delete 5, add 10.
    "$PY" - <<'EOF'
import os
for i in range(0, 200, 4):
    p = "dir%02d/file%03d.txt" % (i % 10, i)
    with open(p, "a") as f:
        f.write("changed line %d\n" % i * (i % 7 + 1))
for i in range(1, 50, 10):
    os.remove("dir%02d/file%03d.txt" % (i % 10, i))
for i in range(10):
    with open("new%02d.txt" % i, "w") as f:
        f.write("new file %d\n" % i * 100)
EOF
    hak git-add2 200 "$GIT" add -A
    hak git-commit2 200 "$GIT" commit -q -m "second: 50 changed, 5 deleted, 10 new"
    hak git-branch 10 "$GIT" branch feature

    # Two lines of history from the second commit, 20 commits each, merged.
    local branch k
    for branch in main feature; do
        hak "git-switch-$branch" 50 "$GIT" switch -q "$branch"
        for ((k = 1; k <= 20; k++)); do
            "$PY" "$tmp/edit.py" "$branch" "$k"
            hak "git-add-$branch-$k" 50 "$GIT" add -A
            hak "git-commit-$branch-$k" 50 "$GIT" commit -q -m "$branch $k"
        done
    done
    hak git-switch-back 50 "$GIT" switch -q main
    hak git-merge 1000 "$GIT" merge --no-ff -m "merge feature into main" feature >"$tmp/merge.txt"
    grep -qx "Auto-merging shared.txt" "$tmp/merge.txt" || fail "git merge did not merge shared.txt's contents"
    local first
    first=$("$GIT" rev-list --max-parents=0 HEAD)
    hak git-log 100 "$GIT" log --stat -p --first-parent -n 3 >"$tmp/log.txt"
    hak git-graph 100 "$GIT" log --graph --oneline --all >"$tmp/graph.txt"
    hak git-diffstat 1000 "$GIT" diff -M --stat --summary HEAD~1 HEAD >"$tmp/diffstat.txt"
    hak git-diff 1000 "$GIT" diff -M "$first" HEAD >"$tmp/diff.txt"
    hak git-blame 100 "$GIT" blame -s shared.txt >"$tmp/blame.txt"
    hak git-gc 1000 "$GIT" gc --quiet --aggressive
    hak git-fsck 500 "$GIT" fsck --full --strict
    local fsck_out
    fsck_out=$(program_stderr git-fsck)
    [[ -z $fsck_out ]] || fail "git fsck reported: $fsck_out"

    # The results, checked without hakmem.
    local count
    count=$("$GIT" rev-list --count HEAD)
    # first, second, 20 on main, 20 on feature, the merge
    [[ $count == 43 ]] || fail "git rev-list --count HEAD = $count, want 43"
    [[ $("$GIT" rev-parse HEAD^2) == $("$GIT" rev-parse feature) ]] || fail "the merge's second parent is not feature"
    [[ $("$GIT" log -1 --format=%s) == "merge feature into main" ]] || fail "HEAD is not the merge"
    "$GIT" log --format=%s >"$tmp/subjects.txt"
    grep -qx "second: 50 changed, 5 deleted, 10 new" "$tmp/subjects.txt" || fail "git log lacks the second commit"
    grep -qx "first: 201 files" "$tmp/subjects.txt" || fail "git log lacks the first commit"
    # Both sides' edits of shared.txt are in the merge: 20 lines, the 500, 20 lines.
    [[ $(head -n 1 shared.txt) == "feature 20" && $(tail -n 1 shared.txt) == "main 20" ]] ||
        fail "shared.txt lacks one side's edits after the merge"
    [[ $(wc -l <shared.txt) == 540 ]] || fail "shared.txt has $(wc -l <shared.txt) lines, want 540"
    local files
    files=$("$GIT" ls-files | wc -l)
    # 206 after the second commit, one more per branch commit
    [[ $files == 246 ]] || fail "git ls-files lists $files files, want 246"
    [[ -z $("$GIT" status --porcelain) ]] || fail "the work tree differs from HEAD after the merge"
    ls .git/objects/pack/*.pack >/dev/null 2>&1 || fail "git gc left no pack"
    "$GIT" fsck --full --strict 2>/dev/null || fail "git fsck without hakmem fails on the repository"
    "$GIT" diff --quiet HEAD || fail "git diff HEAD is not empty"
    # What git printed under hakmem is what it prints without it.
    "$GIT" log --stat -p --first-parent -n 3 | cmp -s "$tmp/log.txt" - || fail "git log prints otherwise without hakmem"
    "$GIT" log --graph --oneline --all | cmp -s "$tmp/graph.txt" - || fail "git log --graph prints otherwise without hakmem"
    "$GIT" diff -M --stat --summary HEAD~1 HEAD | cmp -s "$tmp/diffstat.txt" - ||
        fail "git diff --stat prints otherwise without hakmem"
    "$GIT" diff -M "$first" HEAD | cmp -s "$tmp/diff.txt" - || fail "git diff prints otherwise without hakmem"
    "$GIT" blame -s shared.txt | cmp -s "$tmp/blame.txt" - || fail "git blame prints otherwise without hakmem"
    grep -q "merge feature into main" "$tmp/log.txt" || fail "git log lacks the merge"
    grep -q "rename .*renamed-feature-3-" "$tmp/diffstat.txt" || fail "git diff -M did not see feature's renames"
    local difflines
    difflines=$(wc -l <"$tmp/diff.txt")
    ((difflines > 10000)) || fail "the diff from the first commit has only $difflines lines"
    hak git-archive 100 "$GIT" archive --format=tar HEAD >"$tmp/head.tar"
    tar -tf "$tmp/head.tar" | grep -c '\.txt$' | grep -qx 246 || fail "git archive HEAD does not hold 246 files"
    echo "git: $count commits, $files files, a merge, a $difflines-line diff"
    cd ..
}

# ---------------------------------------------------------------------------
scenario_sort() {
    local SORT=/usr/bin/sort
    need "$SORT" coreutils
    # 2,000,000 random lines of varied length, about 30 MB.
    "$PY" - <<'EOF'
import base64, os
chunk = base64.b64encode(os.urandom(30_000_000)).decode()
out, pos = [], 0
for i in range(2_000_000):
    n = 4 + (i * 7919) % 19
    out.append(chunk[pos:pos + n])
    pos += n
with open("input.txt", "w") as f:
    f.write("\n".join(out))
    f.write("\n")
EOF
    local bytes
    bytes=$(stat -c %s input.txt)
    ((bytes >= 20000000)) || fail "input.txt is only $bytes bytes"
    mkdir tmp-ref tmp-hak
    "$SORT" -S 50M --parallel=2 -T tmp-ref input.txt -o expected.txt
    # A 50 MB buffer for ~30 MB of short lines (plus sort's per-line records)
    # and two threads; coreutils closes stderr at exit, so the stats line
    # only arrives through hakmem's private copy of fd 2.
    hak sort 10 "$SORT" -S 50M --parallel=2 -T tmp-hak input.txt -o got.txt
    cmp expected.txt got.txt || fail "sort output under hakmem differs from sort without it"
    # Keyed, reversed and unique: other comparison and merge code.
    head -n 500000 input.txt >part.txt
    "$SORT" -S 10M --parallel=2 -T tmp-ref -t/ -k2,2 -k1,1r -u part.txt -o expected2.txt
    hak sort-keys 10 "$SORT" -S 10M --parallel=2 -T tmp-hak -t/ -k2,2 -k1,1r -u part.txt -o got2.txt
    cmp expected2.txt got2.txt || fail "sort -t/ -k2,2 -k1,1r -u output under hakmem differs"
    local lines
    lines=$(wc -l <got.txt)
    [[ $lines == 2000000 ]] || fail "sorted output has $lines lines, want 2000000"
}

# ---------------------------------------------------------------------------
scenario_sqlite3() {
    local SQLITE=/usr/bin/sqlite3
    need "$SQLITE" sqlite3
    cat >script.sql <<'EOF'
PRAGMA journal_mode = WAL;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, score REAL, payload BLOB);
BEGIN;
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000)
INSERT INTO t(id, grp, name, score, payload)
SELECT x, (x * 7919) % 997, printf('name-%08d-%s', (x * 104729) % 1000003, substr('abcdefghijklmnopqrstuvwxyz', 1 + x % 26)),
       ((x * 31337) % 100000) / 7.0, zeroblob(x % 300)
FROM n;
COMMIT;
CREATE INDEX t_grp ON t(grp, score);
CREATE INDEX t_name ON t(name);
CREATE TABLE big(id INTEGER PRIMARY KEY, body TEXT);
INSERT INTO big(body) SELECT group_concat(name, ',') FROM t GROUP BY grp % 40;
SELECT count(*), sum(grp), round(avg(score), 6), min(name), max(name), sum(length(payload)) FROM t;
SELECT grp, count(*), round(sum(score), 4), min(id), max(id) FROM t GROUP BY grp ORDER BY grp LIMIT 20;
SELECT grp, count(*) FROM t WHERE score BETWEEN 1000 AND 2000 GROUP BY grp HAVING count(*) > 3 ORDER BY 2 DESC, 1 LIMIT 10;
SELECT name FROM t WHERE name LIKE 'name-0000%' ORDER BY name LIMIT 10;
SELECT count(DISTINCT name), count(DISTINCT grp) FROM t;
SELECT a.grp, count(*) FROM t a JOIN t b ON b.id = a.id - 1 AND (a.grp + b.grp) % 3 = 0 GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;
SELECT count(*), sum(length(body)), max(length(body)), min(length(body)) FROM big;
SELECT substr(body, 1, 40), length(body) FROM big ORDER BY length(body) DESC, id LIMIT 3;
UPDATE t SET name = upper(name) WHERE id % 10 = 0;
DELETE FROM t WHERE grp < 100;
SELECT count(*), sum(id % 1000), max(name) FROM t;
PRAGMA integrity_check;
EOF
    "$SQLITE" -bail ref.db <script.sql >expected.txt
    hak sqlite3 100000 "$SQLITE" -bail hak.db <script.sql >got.txt
    [[ -s expected.txt ]] || fail "sqlite3 produced no output"
    cmp expected.txt got.txt || {
        diff expected.txt got.txt | head -20 >&2
        fail "sqlite3 results under hakmem differ from sqlite3 without it"
    }
    grep -qx ok got.txt || fail "PRAGMA integrity_check under hakmem did not say ok"
    # The database hakmem's sqlite wrote is sound when read without it.
    local check='PRAGMA quick_check; SELECT count(*), sum(grp), max(name) FROM t; SELECT count(*) FROM big;'
    local want got
    want=$("$SQLITE" ref.db "$check")
    got=$("$SQLITE" hak.db "$check")
    [[ $got == "$want" ]] || fail "the database written under hakmem reads back (quick_check, aggregates) as '$got', want '$want'"
}

# ---------------------------------------------------------------------------
scenario_make() {
    local MAKE=/usr/bin/make GCC=/usr/bin/gcc
    need "$MAKE" make
    need "$GCC" gcc
    need /usr/bin/as binutils
    # A small C project: 20 modules of generated code and a main, built with
    # -O2 so that cc1 does real work (each module has a table of 24 functions
    # of 16-way switches). The program's expected output is computed here in
    # Python from the same constants the C code is generated from.
    mkdir project
    "$PY" - <<'EOF'
import os, random
MODULES, FUNCS, CASES, M32, M64 = 20, 24, 16, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
rng = random.Random(20240101)
os.makedirs("project/include")
with open("project/include/util.h", "w") as f:
    f.write("#ifndef UTIL_H\n#define UTIL_H\n")
    for m in range(MODULES):
        f.write("unsigned long long mod%02d_checksum(void);\nunsigned mod%02d_mix(unsigned x);\n" % (m, m))
    f.write("#endif\n")
expected = []
total = 0
for m in range(MODULES):
    consts = [[(rng.randrange(1, M32) | 1, rng.randrange(M32), rng.randrange(1, 31)) for _ in range(CASES)]
              for _ in range(FUNCS)]
    n = 1500 + 97 * m
    with open("project/mod%02d.c" % m, "w") as f:
        f.write('#include <stdlib.h>\n#include "util.h"\n\n')
        for k, cases in enumerate(consts):
            f.write("static unsigned f%d(unsigned x) {\n    switch (x & %d) {\n" % (k, CASES - 1))
            for c, (a, b, s) in enumerate(cases):
                f.write("    case %d: return (x * %uu + %uu) ^ (x >> %d);\n" % (c, a, b, s))
            f.write("    }\n    return x;\n}\n\n")
        f.write("static unsigned (*const table[%d])(unsigned) = {%s};\n\n"
                % (FUNCS, ", ".join("f%d" % k for k in range(FUNCS))))
        f.write("unsigned mod%02d_mix(unsigned x) {\n"
                "    for (int r = 0; r < 1000; r++) x = table[x %% %d](x);\n    return x;\n}\n\n" % (m, FUNCS))
        f.write("static int cmp(const void *a, const void *b) {\n"
                "    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;\n"
                "    return (x > y) - (x < y);\n}\n\n")
        f.write("unsigned long long mod%02d_checksum(void) {\n"
                "    unsigned *v = malloc(%d * sizeof *v), s = %du;\n"
                "    if (!v) return 0;\n"
                "    for (int i = 0; i < %d; i++) v[i] = s = (s * 1103515245u + 12345u) & 0x7fffffffu;\n"
                "    qsort(v, %d, sizeof *v, cmp);\n"
                "    unsigned long long sum = 0;\n"
                "    for (int i = 0; i < %d; i++) sum += (unsigned long long)(i + 1) * v[i];\n"
                "    free(v);\n    return sum;\n}\n" % (m, n, m + 1, n, n, n))
    # The same computations in Python.
    s, vals = m + 1, []
    for _ in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        vals.append(s)
    checksum = sum((i + 1) * v for i, v in enumerate(sorted(vals))) & M64
    x = (m * 2654435761) & M32
    for _ in range(1000):
        a, b, sh = consts[x % FUNCS][x & (CASES - 1)]
        x = ((x * a + b) & M32) ^ (x >> sh)
    expected.append("mod%02d %d %d" % (m, checksum, x))
    total = (total + checksum + x) & M64
expected.append("total %d" % total)
with open("project/main.c", "w") as f:
    f.write('#include <stdio.h>\n#include "util.h"\n\nint main(void) {\n    unsigned long long total = 0;\n')
    for m in range(MODULES):
        f.write("    {\n        unsigned long long c = mod%02d_checksum();\n"
                "        unsigned x = mod%02d_mix(%uu);\n"
                '        printf("mod%02d %%llu %%u\\n", c, x);\n'
                "        total += c + x;\n    }\n" % (m, m, (m * 2654435761) & M32, m))
    f.write('    printf("total %llu\\n", total);\n    return 0;\n}\n')
with open("project/Makefile", "w") as f:
    f.write("CC = gcc\nCFLAGS = -O2 -Wall -Wextra -Werror -Iinclude\n"
            "OBJS = main.o %s\n\n" % " ".join("mod%02d.o" % m for m in range(MODULES)) +
            "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n\n"
            "%.o: %.c include/util.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n"
            "clean:\n\trm -f prog $(OBJS)\n")
with open("expected.txt", "w") as f:
    f.write("\n".join(expected) + "\n")
EOF
    cp -r project ref
    "$MAKE" -s -C ref -j2 >/dev/null || fail "the generated project does not build without hakmem"
    ref/prog >ref-output.txt
    cmp -s expected.txt ref-output.txt || fail "the generated project prints otherwise than computed: a generator bug"

    cd project
    # make, and everything it starts (gcc, cc1, as, collect2, ld, in parallel
    # with -j2), run under hakmem: each prints its own stats line.
    hak make 100 "$MAKE" -j2 >"$tmp/make.out"
    local procs=$hak_procs compiles
    compiles=$(grep -c -- '-c -o' "$tmp/make.out")
    ((compiles == 21)) || fail "make ran $compiles compilations, want 21"
    # make itself, then gcc, cc1 and as per compilation, then gcc, collect2 and ld for the link.
    ((procs >= 1 + 3 * compiles + 3)) ||
        fail "only $procs processes of make -j2 printed hakmem stats, want at least $((1 + 3 * compiles + 3)): some compiler or assembler did not run under hakmem"
    hak prog 10 ./prog >"$tmp/prog-output.txt"
    cmp -s ../expected.txt "$tmp/prog-output.txt" || {
        diff ../expected.txt "$tmp/prog-output.txt" | head -10 >&2
        fail "the program built under hakmem prints wrong results"
    }
    # The compiler's output does not depend on the allocator: every object
    # file and the program are byte for byte what the build without hakmem made.
    local f
    for f in *.o prog; do
        cmp -s "$f" "../ref/$f" || fail "$f built under hakmem differs from the one built without it"
    done
    echo "make: $compiles compilations and a link, $procs processes under hakmem, $(tail -n 1 "$tmp/prog-output.txt")"
    cd ..
}

case $scenario in
python | git | sort | sqlite3 | make) "scenario_$scenario" ;;
*) fail "unknown scenario '$scenario' (python, git, sort, sqlite3, make)" ;;
esac
echo "PASS [$scenario]: $runs program run(s) under hakmem"
