"""Return addresses recorded in a process turned into `function file:line`, from the trace's lttng-ust state dump.

What the state dump says (checked on lttng-ust 2.13.5 recordings):
- `lttng_ust_statedump:bin_info` (baddr, memsz, path, is_pic, has_build_id, has_debug_link), then for the same
  baddr `build_id` (build_id: a list of bytes) and `debug_link` (filename, crc), between `start` and `end`, all
  emitted by the process's `<procname>-ust` thread shortly after it registers - so they describe binaries mapped
  since the process began, whatever their timestamp.
- baddr is where the binary's first PT_LOAD segment sits in memory: dl_iterate_phdr's dlpi_addr plus that
  segment's p_vaddr. For a PIE or a shared library the first p_vaddr is 0 and baddr is the load bias; for a
  non-PIE executable (ET_EXEC) baddr is 0x400000, the link address itself. Either way an address's ELF virtual
  address is `addr - baddr + first PT_LOAD p_vaddr`, read here from the file's program headers.
- With liblttng-ust-dl.so preloaded, a dlopen after the dump gives `lttng_ust_dl:dlopen` and `lttng_ust_lib:load`
  (same fields but is_pic, plus dlopen's flags), each followed by its own build_id / debug_link events; dlclose
  gives `lttng_ust_dl:dlclose` on every call but `lttng_ust_lib:unload` only when the library really goes, so the
  latter closes a mapping wherever the trace has lib events.
- A child forked with liblttng-ust-fork.so preloaded registers again and gets its own full state dump under its
  own vpid (libraries its parent dlopened before the fork included); nothing is inherited here. A process whose
  dump is missing is named ("no state dump for pid N"), never resolved with another's maps.
- The vDSO is listed as `[linux-vdso.so.1]` with memsz 0: no file to read, so its addresses are "outside".

Why elfutils' eu-addr2line (package elfutils), not binutils' addr2line or python3-pyelftools: all three read
inline frames, but on this project's Debian 12 machine binutils 2.40 named the wrong file for an inlined function
in libc (`__libc_start_call_main at libc-start.c:74`, where eu-addr2line says libc_start_call_main.h:74, the
header that function is written in) - a wrong line is what this module must never print. eu-addr2line finds
separate debug info by build id under /usr/lib/debug/.build-id and by .gnu_debuglink (libdwfl's standard search,
so Debian's -dbgsym packages are used as installed), and with -S falls back to the ELF symbol table, checking
symbol sizes (a stripped library's static function is not given its exported neighbour's name). pyelftools
decodes DWARF in the interpreter and has no debug-file search of its own. Speed, measured here: 10 000
addresses in libc.so.6 with its debug info take eu-addr2line 1.8 s (binutils 0.15 s); the test's 10 000
addresses in 5 binaries, 0.7 s. One process per binary with all of its addresses on stdin; results are cached
per (path, build id). C++ names are demangled by binutils' c++filt, one run per batch (eu-addr2line -C would put
spaces into the names its one-line output separates by).

A return address points after its call, so `addr - 1` is resolved: the line is the call's own.
"""

import mmap
import os
import re
import shutil
import stat
import struct
import subprocess

STATE_EVENTS = frozenset(
    f"{provider}:{name}"
    for provider, names in (("lttng_ust_statedump", ("start", "end", "bin_info", "build_id", "debug_link")),
                            ("lttng_ust_dl", ("dlopen", "dlclose", "build_id", "debug_link")),
                            ("lttng_ust_lib", ("load", "unload", "build_id", "debug_link")))
    for name in names)
DEBUG_ROOT = "/usr/lib/debug"
ADDR2LINE = "eu-addr2line"
DEMANGLER = "c++filt"  # binutils: eu-addr2line -C would put spaces in names, which its one-line output cannot frame

BUILD_ID_DIFFERS = "build id differs"
NO_SYMBOLS = "no symbols"
NO_DEBUG_INFO = "no debug info"
OUTSIDE = "outside any mapped binary"


def no_state_dump(vpid):
    return f"no state dump for pid {vpid}"


def cannot_read(path, why):
    return f"cannot read {path}: {why}"


class Frame:
    """One resolved return address. `inlined` marks a frame whose code the next (outer) frame inlined: both share
    the address. function/file/line are None where unknown, and `problem` then says why."""
    __slots__ = ("addr", "binary", "offset", "function", "file", "line", "problem", "inlined")

    def __init__(self, addr, binary=None, offset=None, function=None, file=None, line=None, problem=None,
                 inlined=False):
        self.addr, self.binary, self.offset = addr, binary, offset
        self.function, self.file, self.line, self.problem, self.inlined = function, file, line, problem, inlined

    @property
    def text(self):
        where = f"{os.path.basename(self.binary)}+0x{self.offset:x}" if self.binary is not None else None
        if self.function and self.file and self.line:
            return f"{self.function} {os.path.basename(self.file)}:{self.line}"
        if self.function:
            return f"{self.function} ({where})" if where else self.function
        return f"{where or f'0x{self.addr:x}'} ({self.problem or 'unknown'})"

    def to_json(self):
        return {"addr": self.addr, "binary": self.binary, "offset": self.offset, "function": self.function,
                "file": self.file, "line": self.line, "problem": self.problem, "text": self.text}

    def __repr__(self):
        return f"Frame(0x{self.addr:x}, {self.text!r})"


# ---- ELF files, read with struct: what the resolution must know before trusting a file ----

class ElfError(Exception):
    """The file cannot be used; the message is the why of "cannot read PATH: why"."""


class ElfInfo:
    __slots__ = ("path", "first_vaddr", "build_id", "has_debug_info", "has_symtab", "debuglink")


PT_LOAD, PT_NOTE, SHT_NOBITS, NT_GNU_BUILD_ID = 1, 4, 8, 3


def read_elf(path):
    """The facts of one ELF file (ElfError: missing, unreadable, not ELF, truncated)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ElfError("not a regular file")  # a FIFO or a device would block or never end
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ElfError("empty file")
            # Mapped, not read: a binary with its debug info can be hundreds of MiB, of which a few pages matter.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _parse_elf(path, data)
    except OSError as e:
        raise ElfError(e.strerror or str(e)) from None


def _parse_elf(path, data):
    if data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    if len(data) < 52 or data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError(f"truncated or malformed ELF header ({len(data)} bytes)")
    wide, end = data[4] == 2, "<" if data[5] == 1 else ">"

    def unpack(fmt, at):
        size = struct.calcsize(end + fmt)
        if at < 0 or at + size > len(data):
            raise ElfError(f"truncated: {len(data)} bytes, its headers need {at + size}")
        return struct.unpack_from(end + fmt, data, at)

    if wide:
        phoff, shoff = unpack("QQ", 32)
        phentsize, phnum, shentsize, shnum, shstrndx = unpack("HHHHH", 54)
    else:
        phoff, shoff = unpack("II", 28)
        phentsize, phnum, shentsize, shnum, shstrndx = unpack("HHHHH", 42)
    info = ElfInfo()
    info.path, info.first_vaddr, info.build_id, info.debuglink = path, None, None, None
    notes = []
    for i in range(phnum):
        at = phoff + i * phentsize
        if wide:
            p_type, _, p_offset, p_vaddr, _, p_filesz = unpack("IIQQQQ", at)
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = unpack("IIIII", at)
        if p_type == PT_LOAD and info.first_vaddr is None:
            info.first_vaddr = p_vaddr
        elif p_type == PT_NOTE:
            notes.append((p_offset, p_filesz))
    sections = {}
    if shoff and shnum:
        raw = []
        for i in range(shnum):
            at = shoff + i * shentsize
            if wide:
                name, sh_type, _, _, offset, size = unpack("IIQQQQ", at)
            else:
                name, sh_type, _, _, offset, size = unpack("IIIIII", at)
            if sh_type != SHT_NOBITS and offset + size > len(data):
                raise ElfError(f"truncated: {len(data)} bytes, section {i} ends at {offset + size}")
            raw.append((name, sh_type, offset, size))
        if shstrndx < len(raw):
            strtab = raw[shstrndx][2]
            for name, sh_type, offset, size in raw:
                stop = data.find(b"\0", strtab + name) if strtab + name < len(data) else -1
                label = data[strtab + name:stop] if stop >= 0 else b""
                sections[label.decode(errors="replace")] = (sh_type, offset, size)
    if info.first_vaddr is None:
        raise ElfError("no loadable segment (not an executable or shared library)")
    for offset, size in notes:
        info.build_id = info.build_id or _build_id_note(data[offset:offset + size], end)
    info.has_debug_info = ".debug_info" in sections and sections[".debug_info"][0] != SHT_NOBITS
    info.has_symtab = ".symtab" in sections
    if ".gnu_debuglink" in sections:
        _, offset, size = sections[".gnu_debuglink"]
        info.debuglink = data[offset:offset + size].split(b"\0")[0].decode(errors="replace") or None
    return info


def _build_id_note(notes, end):
    at = 0
    while at + 12 <= len(notes):
        namesz, descsz, kind = struct.unpack_from(end + "III", notes, at)
        name_at = at + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        if kind == NT_GNU_BUILD_ID and notes[name_at:name_at + namesz].rstrip(b"\0") == b"GNU":
            return notes[desc_at:desc_at + descsz].hex()
        at = desc_at + ((descsz + 3) & ~3)
    return None


def debug_file_candidates(info):
    """Where libdwfl looks for separate debug info of this file (build id first, then .gnu_debuglink)."""
    found = []
    if info.build_id and len(info.build_id) > 2:
        found.append(os.path.join(DEBUG_ROOT, ".build-id", info.build_id[:2], info.build_id[2:] + ".debug"))
    if info.debuglink:
        folder = os.path.dirname(os.path.abspath(info.path))
        found += [os.path.join(folder, info.debuglink), os.path.join(folder, ".debug", info.debuglink),
                  DEBUG_ROOT + os.path.join(folder, info.debuglink)]
    return [p for p in found if os.path.lexists(p) and os.path.abspath(p) != os.path.abspath(info.path)]


# ---- the processes' maps over time ----

class Mapping:
    __slots__ = ("baddr", "memsz", "path", "build_id", "debug_link", "start", "end")

    def __init__(self, baddr, memsz, path, start):
        self.baddr, self.memsz, self.path, self.start = baddr, memsz, path, start
        self.build_id = self.debug_link = self.end = None

    def holds(self, addr, ts):
        return (self.baddr <= addr < self.baddr + self.memsz
                and (ts is None or ((self.start is None or self.start <= ts) and (self.end is None or ts < self.end))))


def _record(r):
    """(name, ts, vpid, fields) of a dict record or of an object with those attributes (records.Event)."""
    if isinstance(r, dict):
        name, ts, vpid, fields = r.get("name"), r.get("ts"), r.get("vpid"), r.get("fields")
    else:
        name, ts, vpid, fields = (getattr(r, k, None) for k in ("name", "ts", "vpid", "fields"))
    return (name if isinstance(name, str) else None, ts if isinstance(ts, int) else None,
            vpid if isinstance(vpid, int) else None, fields if isinstance(fields, dict) else {})


class ProcessMaps:
    """The binaries each process had mapped, over time, from the state dump and dl events."""

    def __init__(self, records):
        self.maps = {}          # vpid -> [Mapping] in the order they were reported
        self.dumped = set()     # vpids whose dump reached `end`
        self.listed = set()     # vpids whose dump listed a binary (LTTNG_UST_WITHOUT_BADDR_STATEDUMP: none, but the
                                # dump's start and end and the dl events of libraries loaded later still come)
        events = [_record(r) for r in records]
        with_lib_events = {vpid for name, _, vpid, _ in events if name and name.startswith("lttng_ust_lib:")}
        for name, ts, vpid, fields in events:
            if name not in STATE_EVENTS or vpid is None:
                continue
            kind = name.split(":", 1)[1]
            maps = self.maps.setdefault(vpid, [])
            if kind == "end":
                self.dumped.add(vpid)
            elif kind in ("bin_info", "dlopen", "load"):
                if kind == "bin_info":
                    self.listed.add(vpid)
                self._open(maps, fields, None if kind == "bin_info" else ts)
            elif kind in ("build_id", "debug_link"):
                m = next((m for m in reversed(maps) if m.baddr == fields.get("baddr")), None)
                if m is None:
                    continue
                ident = fields.get("build_id")
                if kind == "build_id" and isinstance(ident, (list, tuple, bytes)) and ident and \
                        all(isinstance(b, int) for b in ident):
                    m.build_id = bytes(b & 0xFF for b in ident).hex()
                elif kind == "debug_link" and isinstance(fields.get("filename"), str):
                    m.debug_link = fields["filename"]
            elif kind == "unload" or (kind == "dlclose" and vpid not in with_lib_events):
                for m in reversed(maps):
                    if m.baddr == fields.get("baddr") and m.end is None and ts is not None:
                        m.end = ts
                        break
        for vpid in [v for v, m in self.maps.items() if not m]:
            del self.maps[vpid]

    @staticmethod
    def _open(maps, fields, ts):
        baddr, memsz, path = fields.get("baddr"), fields.get("memsz"), fields.get("path")
        if not isinstance(baddr, int) or not isinstance(memsz, int) or not isinstance(path, str) or memsz <= 0:
            return
        if any(m.baddr == baddr and m.path == path and m.end is None for m in maps):
            return  # the same load told twice (dl and lib events, or a dlopen the dump also lists)
        maps.append(Mapping(baddr, memsz, path, ts))

    def find(self, vpid, addr, ts=None):
        """The mapping that held addr in vpid at ts (None: at any time, the latest), or a problem string."""
        maps = self.maps.get(vpid)
        if not maps:
            return no_state_dump(vpid)
        held = [m for m in maps if m.holds(addr, ts)]
        if not held:
            if vpid not in self.listed:
                return no_state_dump(vpid)
            if vpid not in self.dumped:
                return f"{OUTSIDE} (the state dump of pid {vpid} is incomplete)"
            return OUTSIDE
        return max(held, key=lambda m: -1 if m.start is None else m.start)


# ---- resolution ----

# FILE:LINE:COLUMN, or FILE:LINE where the column is unknown (eu-addr2line omits a zero column).
_LOCATION = (re.compile(r"^(.*):(\d+):\d+$"), re.compile(r"^(.*):(\d+)$"))


def _parse_rest(rest):
    """eu-addr2line's `LEFT at FILE:LINE` -> (function, symbol, file, line); None where it printed ??."""
    left, _, where = rest.rpartition(" at ")
    function = symbol = file = line = None
    for word in left.split():
        if "+0x" in word:
            symbol = None if word.startswith("()") else word.split("+0x")[0]
        elif word != "??":
            function = word
    m = _LOCATION[0].match(where) or _LOCATION[1].match(where)
    if m and m.group(1) != "??" and int(m.group(2)) > 0:
        file, line = m.group(1), int(m.group(2))
    return function, symbol, file, line


class Symbolizer:
    """Resolve stacks of one trace. `runs` counts the eu-addr2line processes started (one per binary and batch)."""

    def __init__(self, records, addr2line=ADDR2LINE):
        self.maps = ProcessMaps(records)
        self.addr2line = shutil.which(addr2line) if addr2line else None
        self.addr2line_name = addr2line or ADDR2LINE
        self.runs = 0
        self._elf = {}       # path -> ElfInfo or ElfError
        self._lines = {}     # (path, build id) -> {vaddr: [(function, symbol, file, line), ...] innermost first}
        self.problems = {}   # problem sentence -> how many frames had it

    def locate(self, vpid, addr, ts=None):
        """(Mapping, ELF virtual address) of addr in vpid at ts (None: the latest mapping that ever held it), or a
        problem string; the address is None where the file cannot be read."""
        m = self.maps.find(vpid, addr, ts)
        if isinstance(m, str):
            return m
        info = self.elf(m.path)
        if isinstance(info, ElfError):
            return m, None
        return m, addr - m.baddr + info.first_vaddr

    def elf(self, path):
        if path not in self._elf:
            try:
                self._elf[path] = read_elf(path)
            except ElfError as e:
                self._elf[path] = e
        return self._elf[path]

    def stack(self, vpid, addrs, ts=None, inline=True):
        return self.stacks([(vpid, addrs, ts)], inline)[0]

    def stacks(self, requests, inline=True):
        """[(vpid, return addresses innermost first, ts)] -> one list of Frames per request, innermost first;
        with inline, an address inside inlined code gives one Frame per inlined function, innermost first."""
        requests = [(vpid, list(addrs), ts) for vpid, addrs, ts in requests]
        located = {}   # (vpid, addr, ts) -> Frame (a problem) or (Mapping, ElfInfo, vaddr)
        wanted = {}    # (path, build id) -> set of vaddrs of call instructions
        for vpid, addrs, ts in requests:
            for addr in addrs:
                key = (vpid, addr if isinstance(addr, int) else repr(addr), ts)  # repr: a list is no key
                if key not in located:
                    located[key] = self._place(vpid, addr, ts)
                    place = located[key]
                    if isinstance(place, tuple):
                        m, info, vaddr = place
                        wanted.setdefault((m.path, info.build_id), set()).add(vaddr - 1)
        for cache_key, vaddrs in wanted.items():
            self._resolve(cache_key, vaddrs)
        out = []
        for vpid, addrs, ts in requests:
            frames = []
            for addr in addrs:
                key = (vpid, addr if isinstance(addr, int) else repr(addr), ts)
                for frame in self._frames(addr, located[key], inline):
                    if frame.problem:
                        self.problems[frame.problem] = self.problems.get(frame.problem, 0) + 1
                    frames.append(frame)
            out.append(frames)
        return out

    def _place(self, vpid, addr, ts):
        if not isinstance(addr, int) or isinstance(addr, bool) or addr < 0:
            return Frame(0, problem=f"not an address: {addr!r}"[:80])
        m = self.maps.find(vpid, addr, ts)
        if isinstance(m, str):
            return Frame(addr, problem=m)
        info = self.elf(m.path)
        if isinstance(info, ElfError):
            return Frame(addr, m.path, addr - m.baddr, problem=cannot_read(m.path, info))
        vaddr = addr - m.baddr + info.first_vaddr
        if m.build_id and m.build_id != info.build_id:
            return Frame(addr, m.path, vaddr, problem=BUILD_ID_DIFFERS)
        return m, info, vaddr

    def _frames(self, addr, place, inline):
        if isinstance(place, Frame):
            return [place]
        m, info, vaddr = place
        lines = self._lines.get((m.path, info.build_id), {}).get(vaddr - 1)
        if isinstance(lines, str):
            return [Frame(addr, m.path, vaddr, problem=lines)]
        if not lines or not any(f or s for f, s, _, _ in lines):
            return [Frame(addr, m.path, vaddr, problem=self._why_no_lines(info, named=False))]
        kept = lines if inline else lines[:1]
        frames = []
        for depth, (function, symbol, file, line) in enumerate(kept):
            name = function or symbol
            problem = None if file else self._why_no_lines(info, named=bool(name))
            frames.append(Frame(addr, m.path, vaddr, name, file, line, problem, inlined=depth < len(kept) - 1))
        return frames

    def _why_no_lines(self, info, named):
        """No DWARF line: a separate debug file that exists but cannot be read is named first; then a name from
        the symbol table without lines, or nothing at all (stripped)."""
        for candidate in debug_file_candidates(info):
            found = self.elf(candidate)
            if isinstance(found, ElfError):
                return cannot_read(candidate, found)
        return NO_DEBUG_INFO if named else NO_SYMBOLS

    def _resolve(self, cache_key, vaddrs):
        path, _ = cache_key
        cache = self._lines.setdefault(cache_key, {})
        todo = sorted(v for v in vaddrs if v not in cache)
        if not todo:
            return
        if self.addr2line is None:
            why = f"cannot resolve: {self.addr2line_name} is not installed (apt-get install elfutils)"
            cache.update((v, why) for v in todo)
            return
        self.runs += 1
        try:
            p = subprocess.run([self.addr2line, "-e", path, "-a", "-f", "-i", "-S", "--pretty-print"],
                               input="".join(f"0x{v:x}\n" for v in todo), capture_output=True, text=True,
                               errors="replace", timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            cache.update((v, cannot_read(path, f"{self.addr2line_name} failed: {e}")) for v in todo)
            return
        current = None
        for text in p.stdout.splitlines():
            if text.startswith(" (inlined by) ") and current is not None:
                cache[current].append(_parse_rest(text[len(" (inlined by) "):]))
            elif text.startswith("0x") and ": " in text:
                head, rest = text.split(": ", 1)
                current = int(head, 16)
                cache[current] = [_parse_rest(rest)]
        for v in todo:
            if v not in cache:
                why = (p.stderr.strip().splitlines() or ["no answer"])[-1]
                cache[v] = cannot_read(path, f"{self.addr2line_name}: {why}")
        self._demangle([cache[v] for v in todo if isinstance(cache[v], list)])

    def _demangle(self, answers):
        """C++ names, demangled in one c++filt run per batch (left mangled where c++filt is missing)."""
        mangled = sorted({n for lines in answers for entry in lines for n in entry[:2] if n and n.startswith("_Z")})
        tool = shutil.which(DEMANGLER) if mangled else None
        if not tool:
            return
        try:
            p = subprocess.run([tool], input="".join(n + "\n" for n in mangled), capture_output=True, text=True,
                               errors="replace", timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return
        plain = p.stdout.splitlines()
        if p.returncode != 0 or len(plain) != len(mangled):
            return
        names = dict(zip(mangled, plain))
        for lines in answers:
            lines[:] = [(names.get(f, f), names.get(sym, sym), file, line) for f, sym, file, line in lines]
