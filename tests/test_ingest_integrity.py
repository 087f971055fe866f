"""Ingest under races and hostile sources: same-named sources in parallel, dead workers' leftovers, temp files
of other hosts, playlists smuggling local files, live streams, oversized sources, hung decoders."""
from __future__ import annotations

import numpy as np
import soundfile as sf
from sqlalchemy import select

from conftest import make_wav
from dataset_builder.foundation.atomic import TMP_MARK
from dataset_builder.ingest import ingest
from dataset_builder.store import Video, VideoStatus, session_scope


def _flac_of(settings, video_id: str) -> np.ndarray:
    return sf.read(str(settings.home / "audio" / f"{video_id}.flac"), dtype="int16")[0]


def test_same_name_in_parallel_gets_distinct_ids_and_files(settings, tmp_path):
    """Two sources named ``ep1`` ingested at once: two videos, each with its own audio."""
    sources = {}
    for folder, seed in (("x", 3), ("y", 4), ("z", 5)):
        sources[folder] = make_wav(tmp_path / folder / "ep1.wav", 320, seed=seed)
    outcomes = ingest([str(tmp_path / f) for f in sources], settings=settings, jobs=3, progress=False)
    assert [o.status for o in outcomes] == ["ingested"] * 3, [o.message for o in outcomes]
    assert len({o.video_id for o in outcomes}) == 3
    for folder, o in zip(sources, outcomes):
        assert np.array_equal(_flac_of(settings, o.video_id), sources[folder]), f"{o.video_id} holds another's audio"
    with session_scope(settings) as s:
        for v in s.scalars(select(Video)).all():
            assert v.status == VideoStatus.READY and len(v.chunks) == 2
            for c in v.chunks:
                data = sf.read(str(settings.home / c.audio_path), dtype="int16")[0]
                src = sources[v.source_url.split("/")[-2]]
                assert np.array_equal(data, src[c.start_sample:c.end_sample])


def test_a_failing_worker_removes_only_its_own_files(settings, tmp_path):
    """A same-named source that fails (silent) while another is ingested must not delete the other's files."""
    goods, sources = {}, []
    for k in range(3):
        goods[f"ep{k}"] = make_wav(tmp_path / f"good{k}" / f"ep{k}.wav", 320, seed=6 + k)
        silent = tmp_path / f"bad{k}" / f"ep{k}.wav"
        silent.parent.mkdir(parents=True)
        sf.write(str(silent), np.zeros(330 * 16000, dtype=np.int16), 16000, subtype="PCM_16")
        sources += [str(tmp_path / f"good{k}" / f"ep{k}.wav"), str(silent)]
    outcomes = ingest(sources, settings=settings, jobs=2, progress=False)
    assert [o.status for o in outcomes] == ["ingested", "failed"] * 3, [o.message for o in outcomes]
    assert all("silent" in o.message for o in outcomes[1::2])
    with session_scope(settings) as s:
        videos = {v.video_id: (v.source_url, [settings.home / c.audio_path for c in v.chunks])
                  for v in s.scalars(select(Video))}
    assert len(videos) == 3
    for video_id, (url, chunk_files) in videos.items():
        assert np.array_equal(_flac_of(settings, video_id), goods[url.rsplit("/", 1)[1][:-4]])
        assert all(p.exists() for p in chunk_files)
    assert sorted(p.name for p in (settings.home / "audio").iterdir()) == sorted(f"{v}.flac" for v in videos)
    assert not list(settings.home.rglob(TMP_MARK + "*"))


def test_a_dead_workers_reservation_is_redone(settings, tmp_path):
    """A worker killed after reserving its id left a row and some files: the next run redoes the video."""
    from dataset_builder.foundation.atomic import pid_alive
    from dataset_builder.store import get_or_create_channel

    original = make_wav(tmp_path / "src" / "talk.wav", 12, seed=9)
    dead = 4_000_000
    while pid_alive(dead):
        dead -= 1
    import socket

    with session_scope(settings) as s:
        ch = get_or_create_channel(s, "src")
        s.add(Video(video_id="talk", channel_id=ch.id, source_url=(tmp_path / "src" / "talk.wav").resolve().as_uri(),
                    status=VideoStatus.INGESTING, claimed_by=f"{socket.gethostname()}:{dead}"))
    (settings.home / "audio").mkdir(parents=True, exist_ok=True)
    (settings.home / "audio" / "talk.flac").write_bytes(b"half a file")
    [o] = ingest([str(tmp_path / "src")], settings=settings, progress=False)
    assert o.status == "ingested" and o.video_id == "talk", o.message
    assert np.array_equal(_flac_of(settings, "talk"), original)


def test_stale_temp_cleanup_leaves_other_hosts_files(tmp_path):
    """On a store shared by several hosts, a pid from another host says nothing about its writer here."""
    from dataset_builder.foundation.atomic import HOST_TAG, pid_alive, remove_stale_temps, temp_prefix

    dead = 4_000_000
    while pid_alive(dead):
        dead -= 1
    other = "0badc0de" if HOST_TAG != "0badc0de" else "0badbeef"
    theirs = tmp_path / f"{TMP_MARK}{other}.{dead}-talk.abc.flac"
    ours_dead = tmp_path / f"{TMP_MARK}{HOST_TAG}.{dead}-talk.def.flac"
    ours_live = tmp_path / f"{temp_prefix()}talk.ghi.flac"
    for p in (theirs, ours_dead, ours_live):
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 1
    assert theirs.exists() and ours_live.exists() and not ours_dead.exists()
