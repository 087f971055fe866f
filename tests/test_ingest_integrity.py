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


# -- hostile sources -------------------------------------------------------------------------------------------

import functools  # noqa: E402
import http.server  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import pytest  # noqa: E402


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site(tmp_path):
    """A stand-in for a remote web site: a folder served over HTTP on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_remote_playlist_cannot_smuggle_local_files(settings, tmp_path, site):
    root, url = site
    secret = tmp_path / "private" / "secret.wav"
    make_wav(secret, 3, seed=11)
    (root / "feed.rss").write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>a</title>'
        f'<link>{secret.as_uri()}</link><enclosure url="{secret.as_uri()}" type="audio/wav" length="1"/>'
        "</item></channel></rss>\n")
    (root / "page.html").write_text(f'<html><body><video src="{secret.as_uri()}"></video></body></html>\n')
    outcomes = ingest([f"{url}/feed.rss", f"{url}/page.html"], settings=settings, progress=False)
    assert [o.status for o in outcomes] == ["failed", "failed"], [o.message for o in outcomes]
    assert "remote playlist" in outcomes[0].message and "file" in outcomes[0].message
    assert "file://" in outcomes[1].message or "file: URLs" in outcomes[1].message, outcomes[1].message
    with session_scope(settings) as s:
        assert s.scalars(select(Video)).all() == []


def test_a_yt_dlp_without_the_cve_2024_38519_fix_is_refused(settings, tmp_path, monkeypatch):
    import yt_dlp.version

    monkeypatch.setattr(yt_dlp.version, "__version__", "2024.05.27")
    make_wav(tmp_path / "a.wav", 2, seed=1)
    with pytest.raises(Exception, match="CVE-2024-38519") as err:
        ingest([str(tmp_path / "a.wav")], settings=settings, progress=False)
    assert "\n" not in str(err.value)
    with session_scope(settings) as s:
        assert s.scalars(select(Video)).all() == []


def test_live_streams_and_pipes_are_refused_without_hanging(settings, tmp_path, site):
    """A live HLS stream (no end list) never ends, nor does a named pipe: both fail at once with one line."""
    root, url = site
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f=440:d=2", "-c:a", "aac", "-f", "mpegts",
                    str(root / "seg0.ts")], check=True)
    (root / "live.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                                    "#EXTINF:2.0,\nseg0.ts\n")
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "dataset_builder.cli", "ingest", f"{url}/live.m3u8", str(fifo), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("ingest hung on a live stream or a pipe")
    failed = [ln for ln in err.splitlines() if ln.startswith("FAILED")]
    assert proc.returncode == 1 and len(failed) == 2, err
    assert any("live stream" in ln for ln in failed) and any("not a regular file" in ln for ln in failed)


def test_sources_over_the_caps_are_refused(settings, tmp_path, site, monkeypatch):
    root, url = site
    make_wav(tmp_path / "long.wav", 40, sr=8000, seed=12)  # 0.6 MB, 40 s
    make_wav(root / "big.wav", 40, seed=13)  # 1.28 MB over HTTP
    monkeypatch.setenv("VECS_MAX_SOURCE_HOURS", str(30 / 3600))
    monkeypatch.setenv("VECS_MAX_SOURCE_GB", str(1.0 / 1024))  # 1 MiB
    from dataset_builder.foundation.config import Settings

    capped = Settings.from_env()
    outcomes = ingest([str(tmp_path / "long.wav"), f"{url}/big.wav"], settings=capped, progress=False)
    assert [o.status for o in outcomes] == ["failed", "failed"], [o.message for o in outcomes]
    assert "cap" in outcomes[0].message and "cap" in outcomes[1].message
    assert not list((capped.home / "audio").iterdir())


def test_every_ffprobe_and_ffmpeg_call_has_a_deadline(tmp_path, monkeypatch):
    """A stalled tool is killed at its deadline and the file rejected in one line (here: deadlines of ~0 s)."""
    from dataset_builder.foundation import audio

    src = tmp_path / "a.wav"
    make_wav(src, 30, seed=14)
    monkeypatch.setattr(audio, "FFPROBE_TIMEOUT_S", 0.0001, raising=False)
    with pytest.raises(audio.MediaError, match="did not finish"):
        audio.probe(src)
    monkeypatch.setattr(audio, "FFMPEG_TIMEOUT_FLOOR_S", 0.0001, raising=False)
    monkeypatch.setattr(audio, "FFMPEG_TIMEOUT_PER_AUDIO_S", 0.0, raising=False)
    with pytest.raises(audio.MediaError, match="did not finish"):
        audio.normalize_stream(src, tmp_path / "out.flac", lambda block: None)
    assert not (tmp_path / "out.flac").exists() and not list(tmp_path.glob(TMP_MARK + "*"))
    with pytest.raises(audio.MediaError, match="did not finish"):
        audio.decode_audio_bytes(b"\x00" * 1000 + src.read_bytes())


def test_credentials_and_tokens_never_reach_the_store_or_the_messages(settings, tmp_path, site):
    root, url = site
    make_wav(root / "talk.wav", 3, seed=15)
    secret_url = url.replace("http://", "http://someone:hunter2@") + "/talk.wav?token=SECRETTOKEN&lang=vi"
    missing = url.replace("http://", "http://someone:hunter2@") + "/gone.wav?sig=SECRETSIG"
    cmd = [sys.executable, "-m", "dataset_builder.cli", "ingest", secret_url, missing, "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "ingested talk" in proc.stderr, proc.stderr
    for secret in ("hunter2", "SECRETTOKEN", "SECRETSIG"):
        assert secret not in proc.stderr + proc.stdout
    with session_scope(settings) as s:
        [video] = s.scalars(select(Video)).all()
        assert video.source_url == f"{url}/talk.wav?lang=vi"
