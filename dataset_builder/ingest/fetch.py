"""Sources → media files through yt-dlp's Python API (YouTube, any site it supports, ``file://``, local paths).

Local files go through yt-dlp too (as ``file://``), so the path a test exercises is the path production
takes. Playlists and channels expand to their videos without downloading anything.
"""
from __future__ import annotations

import hashlib
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yt_dlp

MEDIA_EXTS = {".m4a", ".webm", ".mp3", ".wav", ".flac", ".ogg", ".opus", ".mp4", ".mkv", ".aac", ".mka", ".mov"}
SUB_LANGS = ["vi", "en", "vi-orig", "en-orig"]


class SourceError(ValueError):
    """A source that cannot be ingested; the message is one line naming it and the reason."""


@dataclass
class SourceEntry:
    """One video to ingest."""

    url: str
    canonical_url: str
    local_path: Path | None = None
    title: str | None = None


@dataclass
class Downloaded:
    path: Path
    info: dict
    subtitles: dict[str, Path] = field(default_factory=dict)

    @property
    def extractor(self) -> str:
        return str(self.info.get("extractor_key") or self.info.get("extractor") or "generic").lower()


def _ydl_opts(**extra) -> dict:
    opts = dict(
        enable_file_urls=True,
        quiet=True,
        no_warnings=True,
        noprogress=True,
        noplaylist=False,
        ignoreerrors=False,
        retries=3,
        socket_timeout=30,
        logger=_QuietLogger(),
    )
    opts.update(extra)
    return opts


class _QuietLogger:
    """yt-dlp prints errors itself unless given a logger; ours keeps them for our one-line messages."""

    def debug(self, msg: str) -> None:  # noqa: D401 - yt-dlp's logger protocol
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def _clean_error(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"\x1b\[[0-9;]*m", "", msg)
    return msg.removeprefix("ERROR: ").strip()


def _local_entry(path: Path) -> SourceEntry:
    path = path.resolve()
    return SourceEntry(url=path.as_uri(), canonical_url=path.as_uri(), local_path=path, title=path.stem)


def expand_source(source: str) -> list[SourceEntry]:
    """One SOURCE argument → the videos it names (a folder or a playlist names several)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        if not path.exists():
            raise SourceError(f"{source}: no such file")
        return expand_source(str(path))
    if parsed.scheme in ("http", "https", "ftp", "ytsearch") or (parsed.scheme and parsed.netloc):
        return _expand_url(source)
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{source}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTS)
        if not files:
            raise SourceError(f"{source}: folder holds no media files ({', '.join(sorted(MEDIA_EXTS))})")
        return [_local_entry(p) for p in files]
    return [_local_entry(path)]


def _expand_url(url: str) -> list[SourceEntry]:
    try:
        with yt_dlp.YoutubeDL(_ydl_opts(extract_flat="in_playlist", skip_download=True)) as ydl:
            info = ydl.extract_info(url, download=False, process=True)
    except Exception as exc:  # yt-dlp raises DownloadError/ExtractorError and friends
        raise SourceError(f"{url}: cannot be reached or is not supported ({_clean_error(exc)})") from None
    if info is None:
        raise SourceError(f"{url}: yt-dlp returned nothing")
    if info.get("_type") in ("playlist", "multi_video"):
        entries = []
        for entry in info.get("entries") or []:
            if not entry:
                continue
            entry_url = entry.get("webpage_url") or entry.get("url")
            if not entry_url:
                continue
            if entry.get("ie_key") == "Youtube" and entry.get("id"):
                entry_url = f"https://www.youtube.com/watch?v={entry['id']}"
            entries.append(SourceEntry(url=entry_url, canonical_url=entry_url, title=entry.get("title")))
        if not entries:
            raise SourceError(f"{url}: playlist or channel has no videos")
        return entries
    canonical = info.get("webpage_url") or url
    return [SourceEntry(url=url, canonical_url=canonical, title=info.get("title"))]


def download(entry: SourceEntry, dest: Path) -> Downloaded:
    """Best audio plus vi/en captions (manual or automatic) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    opts = _ydl_opts(
        # A file:// URL can only be the generic extractor's; naming it skips matching ~1,800 site patterns
        # (about a second on the first call in a process).
        force_generic_extractor=entry.url.startswith("file:"),
        format="bestaudio/best",
        outtmpl=str(dest / "media.%(ext)s"),
        writesubtitles=True,
        writeautomaticsub=True,
        subtitleslangs=SUB_LANGS,
        subtitlesformat="vtt/srt/best",
        overwrites=True,
        continuedl=False,
    )
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(entry.url, download=True)
    except Exception as exc:
        raise SourceError(f"{entry.url}: download failed ({_clean_error(exc)})") from None
    if info is None:
        raise SourceError(f"{entry.url}: yt-dlp returned nothing")
    paths = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    paths = [p for p in paths if p.exists()]
    if not paths:
        raise SourceError(f"{entry.url}: download produced no file")
    subtitles = {}
    for lang, sub in (info.get("requested_subtitles") or {}).items():
        sub_path = sub.get("filepath")
        if sub_path and Path(sub_path).exists():
            subtitles[lang.removesuffix("-orig")] = Path(sub_path)
    return Downloaded(path=paths[0], info=info, subtitles=subtitles)


def canonical_id(info: dict, entry: SourceEntry) -> str:
    """The dataset's ``video_id``: YouTube's id where there is one, else a safe form of the file's name."""
    raw = str(info.get("id") or (entry.local_path.stem if entry.local_path else "") or "")
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-")[:48]
    return safe or url_hash(entry.canonical_url)


def url_hash(url: str, n: int = 10) -> str:
    return hashlib.sha1(url.encode()).hexdigest()[:n]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
