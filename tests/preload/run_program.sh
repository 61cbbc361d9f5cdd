#!/bin/bash
# run_program.sh LIBHAKMEM SCENARIO — runs a real Debian program unchanged
# with LD_PRELOAD=LIBHAKMEM and checks both its result and that hakmem really
# served its allocations (HAKMEM_STATS=1 makes every process print
# "hakmem stats: allocs N ..." to a private copy of stderr at exit).
#
# Scenarios: python, git, sort, sqlite3. A missing program is a failure, not
# a skip: CI installs them (apt-get install git sqlite3 python3 coreutils).
set -euo pipefail

if (($# != 2)); then
    echo "usage: $0 LIBHAKMEM {python|git|sort|sqlite3}" >&2
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

# hak LABEL MIN_ALLOCS CMD...: runs CMD under hakmem (stdout as the caller
# redirects it, stderr kept in $tmp/LABEL.err). Fails when CMD fails, when no
# process printed hakmem's stats (the preload did not take), or when the
# largest per-process alloc count is not above MIN_ALLOCS.
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
    cd repo
    hak git-init 10 "$GIT" init -q -b main .
    hak git-add 1000 "$GIT" add .
    hak git-commit1 200 "$GIT" commit -q -m "first: 200 files"
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
    hak git-log 100 "$GIT" log --stat -p >"$tmp/log.txt"
    hak git-gc 1000 "$GIT" gc --quiet --aggressive
    hak git-fsck 500 "$GIT" fsck --full --strict
    local fsck_out
    fsck_out=$(program_stderr git-fsck)
    [[ -z $fsck_out ]] || fail "git fsck reported: $fsck_out"

    # The results, checked without hakmem.
    local count
    count=$("$GIT" rev-list --count HEAD)
    [[ $count == 2 ]] || fail "git rev-list --count HEAD = $count, want 2"
    grep -q "second: 50 changed, 5 deleted, 10 new" "$tmp/log.txt" || fail "git log lacks the second commit"
    grep -q "first: 200 files" "$tmp/log.txt" || fail "git log lacks the first commit"
    grep -q "65 files changed" "$tmp/log.txt" || fail "git log --stat lacks '65 files changed' for the second commit"
    local files
    files=$("$GIT" ls-files | wc -l)
    [[ $files == 205 ]] || fail "git ls-files lists $files files, want 205"
    [[ -z $("$GIT" status --porcelain) ]] || fail "the work tree differs from HEAD after commit"
    ls .git/objects/pack/*.pack >/dev/null 2>&1 || fail "git gc left no pack"
    "$GIT" fsck --full --strict 2>/dev/null || fail "git fsck without hakmem fails on the repository"
    # Every tracked file's blob in HEAD equals the file on disk.
    "$GIT" diff --quiet HEAD || fail "git diff HEAD is not empty"
    hak git-archive 100 "$GIT" archive --format=tar HEAD >"$tmp/head.tar"
    tar -tf "$tmp/head.tar" | grep -c '\.txt$' | grep -qx 205 || fail "git archive HEAD does not hold 205 files"
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

case $scenario in
python | git | sort | sqlite3) "scenario_$scenario" ;;
*) fail "unknown scenario '$scenario' (python, git, sort, sqlite3)" ;;
esac
echo "PASS [$scenario]: $runs program run(s) under hakmem"
