"""Sources → media files through yt-dlp's Python API (YouTube, any site it supports, ``file://``, local paths).

Local files go through yt-dlp too (as ``file://``), so the path a test exercises is the path production
takes. Playlists and channels expand to their videos without downloading anything.

What a remote source says is untrusted: ``file://`` URLs are enabled only for sources the operator named
as local, so a remote playlist or page cannot make yt-dlp read a local file; live streams (which never end)
and sources over the size or duration cap are refused before their download, or as soon as they pass the cap.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import yt_dlp

from ..foundation.urls import strip_secrets

#: yt-dlp 2024.07.01 fixed CVE-2024-38519 (file extensions taken from the network could write and run files).
MIN_YTDLP = (2024, 7, 1)
#: Schemes a remote playlist may list; anything else (``file:``, ``data:``…) is refused.
REMOTE_SCHEMES = ("http", "https")
LIVE = ("is_live", "is_upcoming", "post_live")
MEDIA_EXTS = {".m4a", ".webm", ".mp3", ".wav", ".flac", ".ogg", ".opus", ".mp4", ".mkv", ".aac", ".mka", ".mov"}
SUB_LANGS = ["vi", "en", "vi-orig", "en-orig"]


class SourceError(ValueError):
    """A source that cannot be ingested; the message is one line naming it and the reason."""


class LicenseSkipped(SourceError):
    """A source left out by ``--license cc``: skipped and counted, not a failure."""


class UnsafeToolError(RuntimeError):
    """A tool whose known vulnerabilities make ingesting untrusted sources unsafe."""


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def check_ytdlp() -> None:
    """Refuse to run a yt-dlp without the CVE-2024-38519 fix (one line, before any source is touched)."""
    from yt_dlp import version

    have = getattr(version, "__version__", "0")
    if _version(have) < MIN_YTDLP:
        need = ".".join(f"{p:02d}" if i else str(p) for i, p in enumerate(MIN_YTDLP))
        raise UnsafeToolError(f"yt-dlp {have} is older than {need}, which fixed CVE-2024-38519 (file extensions "
                              f"from the network): pip install -U 'yt-dlp>={need}'")


@dataclass(frozen=True)
class Caps:
    """What a single source may be at most; a bigger or longer one is refused, not truncated."""

    max_seconds: float = 12 * 3600.0
    max_bytes: int = 8 * 1024**3


@dataclass
class SourceEntry:
    """One video to ingest."""

    url: str
    canonical_url: str
    local_path: Path | None = None
    title: str | None = None
    #: Why this entry of a playlist is refused (reported as a failed source), or None.
    refused: str | None = None

    @property
    def name(self) -> str:
        """How messages name the source: its path, or its URL without credentials or tokens."""
        return str(self.local_path) if self.local_path is not None else strip_secrets(self.url) or "<url>"


@dataclass
class Downloaded:
    path: Path
    info: dict
    subtitles: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # yt-dlp's, shown with the video in the summary

    @property
    def extractor(self) -> str:
        return str(self.info.get("extractor_key") or self.info.get("extractor") or "generic").lower()


def js_runtime() -> dict:
    """yt-dlp's ``js_runtimes``: YouTube needs a JavaScript runtime (with yt-dlp's EJS scripts, from
    ``yt-dlp[default]``) to read its players. PyPI's ``deno`` installs the binary beside this Python, which is not
    on PATH when the venv is not activated: named explicitly, else whatever ``deno`` PATH has."""
    chosen = os.environ.get("VECS_JS_RUNTIME", "")  # "none", or "node:/usr/bin/node" to pick another one
    if chosen == "none":
        return {}
    if chosen:
        name, _, path = chosen.partition(":")
        return {name: {"path": path} if path else {}}
    beside = Path(sys.executable).parent / "deno"
    path = str(beside) if beside.exists() else shutil.which("deno")
    return {"deno": {"path": path}} if path else {}


def youtube_readiness() -> dict:
    """What yt-dlp itself reports about its YouTube support, offline: its version, the JavaScript runtime it
    found and the EJS components (its verbose header, the lines it prints with ``-v``)."""
    logger = _QuietLogger()
    with yt_dlp.YoutubeDL({"verbose": True, "logger": logger, "js_runtimes": js_runtime()}) as ydl:
        if not logger.debugs:  # older releases print the header only when asked
            ydl.print_debug_header()
    header = "\n".join(logger.debugs)
    runtime = re.search(r"JS runtimes: (\S+)", header)
    ejs = re.search(r"\b(yt_dlp_ejs-[\w.]+)", header)
    from yt_dlp import version

    return {"yt_dlp": getattr(version, "__version__", "?"),
            "js_runtime": None if runtime is None or runtime.group(1) == "none" else runtime.group(1),
            "ejs": ejs.group(1) if ejs else None}


NO_RUNTIME = ("YouTube needs a JavaScript runtime for yt-dlp and none was found: pip install deno "
              "'yt-dlp[default]' (or install Deno and put it on PATH)")
CC = "creative commons"


def is_creative_commons(info: dict) -> bool | None:
    """YouTube reports "Creative Commons Attribution license (reuse allowed)"; the standard license is reported
    as nothing. None: the source does not say (a local file, a site without license metadata)."""
    license_ = info.get("license")
    if license_:
        return CC in str(license_).lower()
    return False if str(info.get("extractor_key") or "").lower().startswith("youtube") else None


def _ydl_opts(*, local: bool = False, **extra) -> dict:
    opts = dict(
        # Only a source the operator named as local may be read from disk: for anything remote, yt-dlp
        # itself refuses file:// URLs found in a playlist, a feed or a page.
        enable_file_urls=local,
        quiet=True,
        no_warnings=True,
        noprogress=True,
        noplaylist=False,
        ignoreerrors=False,
        retries=3,
        socket_timeout=30,
        logger=_QuietLogger(),
        js_runtimes=js_runtime(),
    )
    opts.update(extra)
    return opts


class _QuietLogger:
    """yt-dlp prints errors itself unless given a logger; ours keeps them for our one-line messages, and keeps
    its warnings (a missing JS runtime, formats it could not read) for the ingest summary."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.debugs: list[str] = []

    def debug(self, msg: str) -> None:  # noqa: D401 - yt-dlp's logger protocol
        if msg.startswith("[debug] "):
            self.debugs.append(msg)

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        msg = re.sub(r"\x1b\[[0-9;]*m", "", msg).removeprefix("WARNING: ").strip()
        if msg and msg not in self.warnings:
            self.warnings.append(strip_secrets(msg) if "://" in msg else msg)

    def error(self, msg: str) -> None:
        pass


def _clean_error(exc: BaseException, url: str | None = None) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"\x1b\[[0-9;]*m", "", msg)
    if url:  # yt-dlp may quote the URL it was given: never with its credentials or tokens
        msg = msg.replace(url, strip_secrets(url) or "<url>")
    return msg.removeprefix("ERROR: ").strip()


def _local_entry(path: Path) -> SourceEntry:
    path = path.resolve()
    return SourceEntry(url=path.as_uri(), canonical_url=path.as_uri(), local_path=path, title=path.stem)


def _regular(path: Path, source: str) -> None:
    """A pipe or a device never ends (and yt-dlp would block reading it): only regular files are media."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise SourceError(f"{source}: not a regular file (a pipe, socket or device)")


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
    _regular(path, source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_EXTS)
        if not files:
            raise SourceError(f"{source}: folder holds no media files ({', '.join(sorted(MEDIA_EXTS))})")
        return [_local_entry(p) for p in files]
    return [_local_entry(path)]


def _expand_url(url: str) -> list[SourceEntry]:
    shown = strip_secrets(url) or "<url>"
    try:
        with yt_dlp.YoutubeDL(_ydl_opts(local=False, extract_flat="in_playlist", skip_download=True)) as ydl:
            info = ydl.extract_info(url, download=False, process=True)
    except Exception as exc:  # yt-dlp raises DownloadError/ExtractorError and friends
        raise SourceError(f"{shown}: cannot be reached or is not supported ({_clean_error(exc, url)})") from None
    if info is None:
        raise SourceError(f"{shown}: yt-dlp returned nothing")
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
            scheme = urllib.parse.urlparse(str(entry_url)).scheme.lower()
            refused = None
            if scheme not in REMOTE_SCHEMES and not (scheme == "" and entry.get("ie_key")):
                refused = (f"{_short(strip_secrets(str(entry_url)) or '<url>')}: listed by the remote playlist "
                           f"{shown}, which may only list {' or '.join(REMOTE_SCHEMES)} URLs (a {scheme or 'bare'}: "
                           f"entry could read local files)")
            entries.append(SourceEntry(url=entry_url, canonical_url=strip_secrets(entry_url) or entry_url,
                                       title=entry.get("title"), refused=refused))
        if not entries:
            raise SourceError(f"{shown}: playlist or channel has no videos")
        return entries
    # Stored and shown without credentials or tokens (they are needed to download, never afterwards).
    canonical = strip_secrets(info.get("webpage_url") or url) or url
    return [SourceEntry(url=url, canonical_url=canonical, title=info.get("title"))]


def _size(n: float) -> str:
    return f"{n / 1024**3:.2f} GB" if n >= 1024**3 else f"{n / 1024**2:.1f} MB"


def _short(url: str, n: int = 120) -> str:
    return url if len(url) <= n else url[: n - 3] + "..."


class _OverCap(Exception):
    """Raised from yt-dlp's progress hook: the download passed the size cap (a stream without a length)."""


def download(entry: SourceEntry, dest: Path, caps: Caps | None = None, *, license_filter: str | None = None) -> Downloaded:
    """Best audio plus vi/en captions (manual or automatic) into ``dest``; live streams, sources over ``caps``
    and, with ``license_filter="cc"``, sources not under a Creative Commons license are refused before they
    download (or, when their size is not announced, once they pass it)."""
    caps = caps or Caps()
    local = entry.local_path is not None
    if local:
        _regular(entry.local_path, str(entry.local_path))
        size = entry.local_path.stat().st_size
        if size > caps.max_bytes:
            raise SourceError(f"{entry.name}: {_size(size)}, over the {_size(caps.max_bytes)} cap per source")
    dest.mkdir(parents=True, exist_ok=True)
    refusal: list[str] = []

    def screen(info: dict, *, incomplete: bool = False) -> str | None:
        """yt-dlp's match_filter: called with what is known before the download."""
        if license_filter == "cc" and not is_creative_commons(info):
            known = is_creative_commons(info) is not None
            refusal.append(f"not Creative Commons ({info.get('license') or 'standard license'})" if known else
                           "its license is unknown (only Creative Commons sources are ingested with --license cc)")
        elif info.get("is_live") or info.get("live_status") in LIVE:
            refusal.append(f"a live stream ({info.get('live_status') or 'is_live'}): it never ends; ingest the "
                           f"recording once it is published")
        elif (info.get("duration") or 0) > caps.max_seconds:
            refusal.append(f"{info['duration'] / 3600:.2f} h, over the {caps.max_seconds / 3600:.2f} h cap per source")
        else:
            size = info.get("filesize") or info.get("filesize_approx") or 0
            if size > caps.max_bytes:
                refusal.append(f"{_size(size)}, over the {_size(caps.max_bytes)} cap per source")
        return refusal[-1] if refusal else None

    def watch(progress: dict) -> None:
        """yt-dlp's progress hook: the announced size, or what has arrived of a stream that announced none."""
        total = progress.get("total_bytes") or progress.get("total_bytes_estimate") or 0
        if total > caps.max_bytes:
            raise _OverCap(f"{_size(total)}, over the {_size(caps.max_bytes)} cap per source")
        if (progress.get("downloaded_bytes") or 0) > caps.max_bytes:
            raise _OverCap(f"passed the {_size(caps.max_bytes)} cap per source while downloading")

    logger = _QuietLogger()
    opts = _ydl_opts(
        local=local,
        logger=logger,
        match_filter=screen,
        progress_hooks=[watch],
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
    except _OverCap as exc:
        raise SourceError(f"{entry.name}: {exc}") from None
    except Exception as exc:
        raise SourceError(f"{entry.name}: download failed ({_clean_error(exc, entry.url)})") from None
    if refusal:
        if refusal[-1].startswith(("not Creative Commons", "its license is unknown")):
            raise LicenseSkipped(f"{entry.name}: {refusal[-1]}")
        raise SourceError(f"{entry.name}: refused: {refusal[-1]}")
    if info is None:
        raise SourceError(f"{entry.name}: yt-dlp returned nothing")
    paths = [Path(d["filepath"]) for d in info.get("requested_downloads") or [] if d.get("filepath")]
    paths = [p for p in paths if p.exists()]
    if not paths:
        raise SourceError(f"{entry.name}: download produced no file")
    subtitles = {}
    for lang, sub in (info.get("requested_subtitles") or {}).items():
        sub_path = sub.get("filepath")
        if sub_path and Path(sub_path).exists():
            subtitles[lang.removesuffix("-orig")] = Path(sub_path)
    return Downloaded(path=paths[0], info=info, subtitles=subtitles, warnings=logger.warnings)


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
