"""The folder a recording writes its trace to: created private, made private again after lttng wrote into it, told
whether it holds a trace, and taken away again when it holds none (a recording that recorded nothing leaves
nothing behind)."""

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path


class OutputFolderError(Exception):
    """The folder cannot be used: a sentence for the user."""


def holds_trace(root, channel, since=None):
    """Whether a CTF trace of channel lies under root: a `metadata` file with the channel's stream files beside it
    (lttng writes both once a traced program has registered with the session daemon; before that, only empty
    folders), its metadata written at or after since (a time.time(), when given)."""
    try:
        for metadata in Path(root).rglob("metadata"):
            if (metadata.is_file() and (since is None or metadata.stat().st_mtime >= since)
                    and any(p.name.startswith(channel + "_") and p.is_file() for p in metadata.parent.iterdir())):
                return True
    except OSError:
        return False  # gone meanwhile, or unreadable: there is no trace to read
    return False


def _topmost_missing(path):
    """The highest folder mkdir(parents=True) would create for path (path itself when only it is missing)."""
    top = None
    while not os.path.lexists(path):
        top, path = path, path.parent
    return top


class OutputFolder:
    """path (None when the trace is streamed: nothing is written here); made, the topmost folder this run created
    (path or one of its parents; None when path already existed); before, the entries path held before the run."""

    # A trace in a folder that was there before counts only if written by this run: its metadata is no older than
    # the run's start, less this margin (a file's time comes from the kernel's coarser clock).
    CLOCK_MARGIN = 1.0

    def __init__(self, path, made, before):
        self.path, self.made, self.before = path, made, before
        self.since = None if made is not None else time.time() - self.CLOCK_MARGIN

    @classmethod
    def streamed(cls):
        return cls(None, None, set())

    @classmethod
    def create(cls, requested):
        """The folder given with -o (made 0700 when missing, with any missing parents), or a new private
        hakmem-trace-* folder under $TMPDIR when requested is None."""
        if requested is None:
            out = Path(tempfile.mkdtemp(prefix="hakmem-trace-"))  # mkdtemp: 0700
            return cls(out, out, set())
        out = Path(requested).resolve()
        top = _topmost_missing(out)
        try:
            out.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            if not out.is_dir():
                raise OutputFolderError(f"{out} exists and is not a folder") from None
            try:
                return cls(out, None, {e.name for e in out.iterdir()})
            except OSError as e:
                raise OutputFolderError(f"cannot read {out}: {e.strerror}") from None
        except OSError as e:
            raise OutputFolderError(f"cannot create {out}: {e.strerror}") from None
        os.chmod(out, 0o700)  # whatever the umask left
        return cls(out, top, set())

    def holds_trace(self, channel):
        """Whether this run left a trace of channel here."""
        return self.path is not None and holds_trace(self.path, channel, self.since)

    def make_private(self):
        """What the recording wrote (entries not in before) loses group and world write permission: lttng creates
        trace folders 0770 and files 0660. (Inside a folder of mode 0700 nobody else could reach them; a folder
        given with -o may be more open, and a trace is often copied or moved on.)"""
        if self.path is None or not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name in self.before:
                continue
            for path in [entry, *(entry.rglob("*") if entry.is_dir() and not entry.is_symlink() else [])]:
                try:
                    st = path.lstat()
                    if not stat.S_ISLNK(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o022:
                        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)
                except OSError:
                    pass  # gone meanwhile, or not ours to change

    def remove_untraced(self, channel):
        """Takes back what this run made, as long as it holds no trace: the folder and the parents it created, or,
        in a folder that was there before, the empty folders lttng left in it (never a file: those may be the
        user's)."""
        if self.path is None or not self.path.is_dir() or self.holds_trace(channel):
            return
        if self.made is None:
            for entry in self.path.iterdir():
                if entry.name not in self.before and entry.is_dir() and not entry.is_symlink():
                    _remove_empty_folders(entry)
            return
        shutil.rmtree(self.path, ignore_errors=True)  # made by this run, mode 0700: all in it is this run's
        parent = self.path
        while parent != self.made:
            parent = parent.parent
            try:
                parent.rmdir()  # only while empty: someone else may have put something there meanwhile
            except OSError:
                return


def _remove_empty_folders(top):
    """Removes top and the folders below it, deepest first, as far as they are empty."""
    for folder, _, _ in os.walk(top, topdown=False):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty: kept
