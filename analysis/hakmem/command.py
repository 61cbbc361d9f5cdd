"""The command a recording runs, judged from its file: whether it can be executed at all (found before any session
is set up, so a typo costs no daemon), why its exec failed when it still did, and whether LD_PRELOAD can reach it."""

import errno
import os

PT_INTERP = 3  # the program header naming the dynamic loader (ELF)


class CommandError(Exception):
    """Why the command cannot run: a sentence for the user."""


def runnable(name):
    """The absolute path of the file that running name executes: name itself when it holds a slash, else the first
    executable file of that name in $PATH (the search subprocess makes). CommandError when there is none."""
    if "/" in name:
        if os.path.isdir(name):
            raise CommandError(f"cannot execute {name}: it is a folder")
        candidates = [name]
    else:
        # An empty $PATH entry is the current folder, for execvp and subprocess alike.
        candidates = [os.path.join(d, name) for d in os.get_exec_path()]
    denied = False
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return os.path.abspath(path)
            denied = True
    if denied:
        raise CommandError(f"cannot execute {name}: permission denied")
    raise CommandError(f"command not found: {name}")


def exec_failure(name, path, err):
    """The sentence for an exec of path (found by runnable(name)) that failed with the OSError err."""
    if err.errno == errno.ENOENT:
        if path and os.path.exists(path):
            # execve(2): ENOENT for an existing file means its interpreter is missing.
            return f"cannot execute {name}: its interpreter (the #! line's program, or the ELF loader) does not exist"
        return f"command not found: {name}"
    if err.errno == errno.EACCES:
        return f"cannot execute {name}: permission denied"
    return f"cannot execute {name}: {err.strerror or err}"


def statically_linked(path):
    """Whether path is an ELF program without a program interpreter: the dynamic loader, which is what honours
    LD_PRELOAD, never runs for it. False for anything else (a script, a dynamic program, an unreadable file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
                return False
            order = "little" if head[5] == 1 else "big"
            if head[4] == 2:  # 64-bit
                phoff, phentsize, phnum = (int.from_bytes(head[32:40], order), int.from_bytes(head[54:56], order),
                                           int.from_bytes(head[56:58], order))
            else:
                phoff, phentsize, phnum = (int.from_bytes(head[28:32], order), int.from_bytes(head[42:44], order),
                                           int.from_bytes(head[44:46], order))
            if phnum == 0 or phentsize < 4:
                return False  # no program headers: not a program the loader would run
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    types = [int.from_bytes(table[i:i + 4], order) for i in range(0, len(table) - 3, phentsize)]
    return len(types) == phnum and PT_INTERP not in types
