"""The export folder is replaced whole: built in a staging folder beside it, then swapped in.

A reader (``load_dataset``, a push) sees the previous export or the new one, never shards of one with the card
of the other, and a run killed at any moment leaves the previous export (or, killed between the two renames of
the swap, a backup that the next export — or :func:`recover` — puts back). What the folder holds besides the
export (a ``.git`` of a cloned Hub repo, a ``.gitattributes``, notes) is carried over into the new one.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from ..foundation.atomic import TMP_MARK, remove_stale_temps, temp_prefix

#: What an export writes; everything else in the folder belongs to someone else and is kept.
MANAGED = ("data", "images", "README.md", "export_report.json")


def _backup(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.vecs-old"


def _carry_over(old: Path, new: Path) -> None:
    """Move what the export does not manage from the old folder into the new one."""
    for entry in sorted(old.iterdir()):
        if entry.name not in MANAGED and not (new / entry.name).exists():
            os.replace(entry, new / entry.name)


def recover(out_dir: Path) -> None:
    """Finish a swap that a crash interrupted: the backup goes back if the new folder never arrived."""
    out_dir, backup = Path(out_dir), _backup(Path(out_dir))
    if not backup.exists():
        return
    if not out_dir.exists():
        os.replace(backup, out_dir)
        return
    _carry_over(backup, out_dir)
    shutil.rmtree(backup, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _swap(stage: Path, out_dir: Path) -> None:
    backup = _backup(out_dir)
    if out_dir.exists():
        os.replace(out_dir, backup)
    os.replace(stage, out_dir)
    if backup.exists():
        _carry_over(backup, out_dir)
        shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def staged(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``out_dir`` whole, on any error it is removed."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    recover(out_dir)
    remove_stale_temps(out_dir.parent, pattern=f"{TMP_MARK}*-{out_dir.name}", recursive=False)
    stage = out_dir.parent / f"{temp_prefix()}{out_dir.name}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        _fsync_tree(stage)
        _swap(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
