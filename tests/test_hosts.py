"""Several hosts, one factory: a shared PostgreSQL store and one shared folder for media, mounted at a
different path on each host. Each "host" is a process with its own hostname (UTS namespace) and its own view
of the share (a bind mount in its own mount namespace), as two machines on NFS would see it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import select

from conftest import ROOT, synthetic_corpus
from dataset_builder.store import Chunk, Video, session_scope


def _can_namespace() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--uts", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_namespace(), reason="needs root and unshare (UTS and mount namespaces)")


def _on_host(name: str, share: Path, mount: Path, *vecs_args: str, db_url: str) -> subprocess.Popen:
    """Run ``vecs …`` as host ``name``: its own hostname, the share bind-mounted at ``mount``, VECS_HOME there."""
    mount.mkdir(parents=True, exist_ok=True)
    vecs = " ".join(map(_quote, [sys.executable, "-m", "dataset_builder.cli", *vecs_args]))
    script = f"hostname {name} && mount --bind {_quote(str(share))} {_quote(str(mount))} && exec {vecs}"
    env = {**os.environ, "VECS_HOME": str(mount / "home"), "VECS_DB_URL": db_url}
    return subprocess.Popen(["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c", script],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def _done(*procs: subprocess.Popen) -> list[str]:
    outs = [p.communicate(timeout=600)[0] for p in procs]
    failed = [f"exit {p.returncode}: {out}" for p, out in zip(procs, outs) if p.returncode != 0]
    assert not failed, "\n".join(failed)
    return outs


def test_two_hosts_share_one_store_and_one_media_folder(pg_settings, tmp_path_factory, tmp_path):
    corpus = synthetic_corpus(tmp_path_factory, "hosts-corpus", videos=4, minutes=0.6, seed=5)
    share = tmp_path / "share"
    (share / "home").mkdir(parents=True)
    db = pg_settings.db_url
    # Both hosts ingest the same sources at once: each video is ingested once, by one of them.
    a = _on_host("ingest-a", share, tmp_path / "site-a", "ingest", str(corpus), "--no-progress", db_url=db)
    b = _on_host("ingest-b", share, tmp_path / "site-b", "ingest", str(corpus), "--no-progress", db_url=db)
    _done(a, b)
    with session_scope(pg_settings) as s:
        videos = s.scalars(select(Video)).all()
        chunk_paths = s.scalars(select(Chunk.audio_path)).all()
        assert len(videos) == 4 and len({v.sha256 for v in videos}) == 4
        stored = [v.audio_path for v in videos] + list(chunk_paths)
        stored += [p for v in videos for p in (v.captions or {}).values()]
    # Every path in the store is relative to VECS_HOME (a host's mount point is not in the store) ...
    for p in stored:
        assert not PurePosixPath(p).is_absolute() and ".." not in PurePosixPath(p).parts, p
        assert (share / "home" / p).is_file(), p
    # ... so a third host, mounting the share elsewhere, pre-labels and exports what the others ingested.
    _done(_on_host("label-c", share, tmp_path / "site-c", "prelabel", "--engine", "captions", "--no-progress",
                   db_url=db))
    out = _done(_on_host("label-c", share, tmp_path / "site-c", "export", str(tmp_path / "site-c" / "home" / "ds"),
                         "--config", "prelabeled", "--no-progress", db_url=db))[0]
    shards = list((share / "home" / "ds").rglob("*.parquet"))
    assert shards, out
    assert str(tmp_path / "site-a") not in out and not any(
        str(tmp_path / "site-") in f.read_text(errors="ignore") for f in (share / "home" / "ds").rglob("*.md"))
