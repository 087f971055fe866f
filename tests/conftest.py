"""Shared fixtures: an isolated ``$VECS_HOME``, media made on the fly, a real PostgreSQL server."""
from __future__ import annotations

import glob
import hashlib
import os
import unicodedata
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# No test may reach the Hub: models and datasets come from configs and local folders (children inherit this).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from dataset_builder.foundation.config import Settings  # noqa: E402
from dataset_builder.store import Chunk, Segment, dispose_engines, session_scope  # noqa: E402
from sqlalchemy import select  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
#: Debian's chromium, headless, offline: without the background-networking flags it keeps dialing Google
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """A fresh ``$VECS_HOME`` on SQLite; subprocesses (the CLI) inherit it through the environment."""
    home = tmp_path / "home"
    monkeypatch.setenv("VECS_HOME", str(home))
    monkeypatch.delenv("VECS_DB_URL", raising=False)
    yield Settings.from_env()
    dispose_engines()


def noise(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Deterministic int16 noise: every sample differs, so an off-by-one cut cannot pass unnoticed."""
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, size=int(round(seconds * sr)), dtype=np.int16)


def make_wav(path: Path, seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    data = noise(seconds, sr, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype="PCM_16")
    return data


def make_m4a(path: Path, seconds: float, freq: int = 440) -> Path:
    """A YouTube-like AAC 44.1 kHz stereo file with the moov atom first (as YouTube serves it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f={freq}:d={seconds}",
         "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:a=0.05:seed={freq}",
         "-filter_complex", "amix=inputs=2", "-ac", "2", "-ar", "44100", "-c:a", "aac",
         "-movflags", "+faststart", str(path)],
        check=True,
    )
    return path


def run_vecs(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    vecs = shutil.which("vecs", path=str(ROOT / ".venv" / "bin")) or shutil.which("vecs")
    return subprocess.run(
        [vecs, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: Debian's server binaries, a throw-away cluster on a free port, started by the test session.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not installed (Debian package 'postgresql'; make setup installs it)")
    bindir = Path(bins[-1]).parent
    # Not under pytest's tmp root: that is private to root, and the server runs as 'postgres'.
    base = Path(tempfile.mkdtemp(prefix="vecs-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    runas: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        runas = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    log = base / "server.log"
    subprocess.run(
        [*runas, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
         "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c max_connections=50 -c fsync=off", "start"],
        check=True, capture_output=True,
    )
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        yield url
    finally:
        subprocess.run([*runas, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_settings(postgres_url, tmp_path, monkeypatch) -> Settings:
    """Settings on a fresh PostgreSQL database (tables dropped afterwards)."""
    from dataset_builder.store import Base, get_engine

    home = tmp_path / "home"
    monkeypatch.setenv("VECS_HOME", str(home))
    monkeypatch.setenv("VECS_DB_URL", postgres_url)
    settings = Settings.from_env()
    engine = get_engine(settings)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield settings
    Base.metadata.drop_all(engine)
    dispose_engines()


def wait_for(predicate, timeout: float = 60, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


# ---------------------------------------------------------------------------------------------------------
# Argilla: the real argilla-server 2.8 (its own venv, .argilla-venv) with the vecs-sql search engine,
# started through the launcher of `vecs argilla serve` in a throw-away $VECS_HOME.


def free_port_pair(host: str = "127.0.0.1") -> int:
    """A port p with p + 1 free too (Argilla on p, the clip server on p + 1)."""
    for _ in range(200):
        p = _free_port()
        if p < 65535:
            with socket.socket() as s:
                try:
                    s.bind((host, p + 1))
                except OSError:
                    continue
            return p
    raise RuntimeError("no free port pair")


class ArgillaServer:
    """What the ``argilla_server`` fixture yields: ``url``, ``api_key`` (owner), ``audio_url``, ``home``
    (the server's ``$VECS_HOME``; clips go in ``home / "argilla_audio"``), ``startup_s``."""

    def __init__(self, info, vecs_home: Path):
        self.url = info.url
        self.api_key = info.api_key
        self.password = info.password
        self.username = info.username
        self.audio_url = info.audio_url
        self.home = vecs_home
        self.server_home = info.home
        self.startup_s = info.startup_s

    @property
    def audio_dir(self) -> Path:
        return self.home / "argilla_audio"

    def client(self):
        import argilla as rg

        return rg.Argilla(api_url=self.url, api_key=self.api_key, timeout=120)

    def env(self) -> dict:
        """Environment for `vecs argilla …` subprocesses talking to this server."""
        return {"VECS_HOME": str(self.home), "ARGILLA_API_URL": self.url, "ARGILLA_API_KEY": self.api_key}


def start_argilla(vecs_home: Path, database_url: str | None = None) -> ArgillaServer:
    """Start a server through the launcher (skips the test when the server venv is not there)."""
    from annotation.server import launcher

    try:
        launcher.check_server_venv()
        launcher.redis_binary()
    except launcher.LaunchError as exc:
        pytest.skip(f"Argilla server unavailable: {exc}")
    info = launcher.serve(vecs_home, port=free_port_pair(), database_url=database_url, timeout=240)
    return ArgillaServer(info, vecs_home)


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    """A real Argilla 2.8 server (SQLite, vecs-sql search engine, redis, rq worker, clip server) for the
    session; ~3.5 s to start on 2 cores, stopped at the end."""
    from annotation.server import launcher

    home = tmp_path_factory.mktemp("argilla-home")
    server = start_argilla(home)
    try:
        yield server
    finally:
        launcher.stop(home)


# ---------------------------------------------------------------------------------------------------------
# A small exported dataset (4 synthetic videos, train / validation / test) for the model tests.


@pytest.fixture(scope="session")
def small_export(tmp_path_factory) -> Path:
    import asyncio

    from dataset_builder.ingest import ingest
    from dataset_builder.prelabel.captions import CaptionsEngine
    from dataset_builder.prelabel.runner import run_engine
    from dataset_builder.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("small-export")
    synthesize_corpus(root / "corpus", videos=4, minutes=0.6, seed=11, channels=2, jobs=2, progress=False)
    settings = Settings(home=root / "home", db_url=f"sqlite:///{root / 'home' / 'factory.db'}")
    ingest([str(root / "corpus")], settings=settings, progress=False)
    asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False))
    proc = run_vecs("export", str(root / "export"), "--config", "prelabeled", "--splits", "50/25/25",
                    "--no-progress", env={"VECS_HOME": str(settings.home)})
    assert proc.returncode == 0, proc.stderr
    return root / "export"


def synthetic_corpus(tmp_path_factory, name: str, **options) -> Path:
    """A small synthetic corpus in a fresh temp folder (two channels, rendered on two processes)."""
    from dataset_builder.synth import synthesize_corpus

    out = tmp_path_factory.mktemp(name)
    synthesize_corpus(out, channels=2, jobs=2, progress=False, **options)
    return out


# -- pre-labeling: chunks with the labels a perfect pre-labeler returns ----------------------------------


def _truth_for(video: str, index: int, duration: float) -> list[dict]:
    segs, t, i = [], 0.5, 0
    while t + 3.0 < duration:
        segs.append({"start": round(t, 3), "end": round(t + 2.5, 3),
                     "text": f"câu {i} của {video} phần {index} với team nha",
                     "translation": f"câu {i} của {video} phần {index} với nhóm nha"})
        t += 4.0 + (i % 3)
        i += 1
    return segs


@pytest.fixture
def chunks(settings, tmp_path):
    """Three videos, five chunks, and the truth a perfect pre-labeler would return for each chunk file."""
    src = tmp_path / "src"
    from dataset_builder.ingest import ingest

    make_wav(src / "long.wav", 610, seed=1)
    make_wav(src / "short1.wav", 40, seed=2)
    make_wav(src / "short2.wav", 30, seed=3)
    assert all(o.status == "ingested" for o in ingest([str(src)], settings=settings, progress=False))
    truth = {}
    with session_scope(settings) as s:
        for c in s.scalars(select(Chunk)).all():
            data = (settings.home / c.audio_path).read_bytes()
            truth[hashlib.sha256(data).hexdigest()] = (c.id, _truth_for(c.video.video_id, c.index, c.duration))
    return truth


def stored_segments(settings) -> dict[int, list[tuple]]:
    with session_scope(settings) as s:
        rows = s.execute(select(Segment.chunk_id, Segment.start, Segment.end, Segment.text).order_by(
            Segment.chunk_id, Segment.start)).all()
    out: dict[int, list[tuple]] = {}
    for cid, a, b, text in rows:
        out.setdefault(cid, []).append((a, b, text))
    return out


def assert_all_valid(settings) -> None:
    """Nothing malformed reaches the store."""
    with session_scope(settings) as s:
        for seg in s.scalars(select(Segment)).all():
            dur = seg.chunk.duration
            assert 0 <= seg.start < seg.end <= dur + 1e-6, (seg.start, seg.end, dur)
            assert seg.text.strip() and unicodedata.is_normalized("NFC", seg.text)


def labeled_store(settings: Settings, corpus: Path, argilla_server) -> object:
    """Ingest ``corpus`` and pre-label it from its captions, with the store's clip folder inside the session
    Argilla's (so the server's clip URL, ``argilla_server.audio_url + /<test>``, serves it). Returns the run."""
    import asyncio
    import uuid

    from dataset_builder.ingest import ingest
    from dataset_builder.prelabel.captions import CaptionsEngine
    from dataset_builder.prelabel.runner import run_engine

    sub = uuid.uuid4().hex[:8]
    (argilla_server.audio_dir / sub).mkdir(parents=True)
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "argilla_audio").symlink_to(argilla_server.audio_dir / sub)
    settings.extra["audio_base"] = f"{argilla_server.audio_url.rstrip('/')}/{sub}"
    assert all(o.status == "ingested" for o in ingest([str(corpus)], settings=settings, progress=False))
    return asyncio.run(run_engine(CaptionsEngine(settings.home), settings, progress=False))
