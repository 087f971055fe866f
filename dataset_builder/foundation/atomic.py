"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

TMP_MARK = ".vecs-tmp-"
_UMASK = os.umask(0)
os.umask(_UMASK)
#: This host in temp names: a store on shared storage is written by several hosts, and a pid means nothing
#: on another host (a live writer there must not look dead here).
HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNER = re.compile(r"^(?:(?P<host>[0-9a-f]{8})\.)?(?P<pid>\d+)-")
#: Temp files that name no writer we can check (another host's, or unreadable names) are left this long.
FOREIGN_TEMP_TTL_S = 7 * 24 * 3600


def temp_prefix() -> str:
    """``.vecs-tmp-<host>.<pid>-``: how every temp name begins, so cleanup knows whose it is."""
    return f"{TMP_MARK}{HOST_TAG}.{os.getpid()}-"


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The temp file keeps the target's extension (ffmpeg and soundfile pick formats by it).
    On any exception it is removed and ``target`` is left as it was. ``mode`` (e.g. 0o600 for a file holding
    a secret) is the file's mode from creation to rename; by default it gets what a plain ``open()`` would.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = target.suffix if suffix is None else suffix
    prefix = f"{temp_prefix()}{target.stem}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes 0600: a secret keeps it, anything else gets the mode a plain open() would
        os.chmod(tmp_path, (0o666 & ~_UMASK) if mode is None else mode)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(target: str | os.PathLike, text: str, mode: int | None = None) -> Path:
    with atomic_path(target, mode=mode) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def private_dir(path: str | os.PathLike) -> Path:
    """A folder only its owner can enter (0700), made so from the start, tightened if it already exists."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (how killed runs are told from live workers)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _stale(path: Path) -> bool:
    """Whether a temp file's writer is gone: a dead process of this host; another host's (or an unreadable
    name's) only once it is a week old, since its writer cannot be checked from here."""
    m = _OWNER.match(path.name[len(TMP_MARK):])
    if m and m.group("host") in (None, HOST_TAG):  # no host tag: a name from before hosts were recorded
        pid = int(m.group("pid"))
        return pid != os.getpid() and not pid_alive(pid)
    try:
        return time.time() - path.lstat().st_mtime > FOREIGN_TEMP_TTL_S
    except FileNotFoundError:
        return False


def remove_stale_temps(root: str | os.PathLike, pattern: str = TMP_MARK + "*", recursive: bool = True) -> int:
    """Delete temp files (and folders) left by killed runs (kill -9 skips the cleanup above).

    Only those whose writer process is gone are removed, so concurrent workers sharing ``root`` are safe —
    on this host and on others (their temp names carry their host).
    """
    root = Path(root)
    if not root.exists():
        return 0
    removed = 0
    for path in sorted(root.rglob(pattern) if recursive else root.glob(pattern)):
        if not _stale(path):
            continue
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed
