"""Captions kept at ingest for the captions pre-labeler: sidecars next to local files, or YouTube's."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..foundation.atomic import atomic_path

CAPTION_EXTS = (".vtt", ".srt")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)*$")


def find_sidecars(media: Path) -> dict[str, Path]:
    """``talk.m4a`` → ``talk.vtt`` / ``talk.srt`` (language ``und``) or ``talk.vi.vtt`` (language ``vi``)."""
    found: dict[str, Path] = {}
    for candidate in sorted(media.parent.glob(media.stem + ".*")):
        if candidate == media or candidate.suffix.lower() not in CAPTION_EXTS:
            continue
        middle = candidate.name[len(media.stem) + 1 : -len(candidate.suffix)]
        if middle == "":
            lang = "und"
        elif _LANG_RE.match(middle):
            lang = middle
        else:
            continue
        found.setdefault(lang, candidate)
    return found


def store_captions(found: dict[str, Path], captions_dir: Path, video_id: str, home: Path) -> dict[str, str]:
    """Copy captions into ``$VECS_HOME/captions``; returns ``{lang: path relative to home}``."""
    stored: dict[str, str] = {}
    for lang, src in sorted(found.items()):
        dst = captions_dir / f"{video_id}.{lang}{src.suffix.lower()}"
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
        stored[lang] = str(dst.relative_to(home))
    return stored
