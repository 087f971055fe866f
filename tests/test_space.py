"""The Space: its handlers called directly (bad input, model errors, metrics, the dataset view) and the real UI in
Chromium — a fake microphone fed from a synthetic code-switched WAV on the Live tab, an upload on Compare.
Models are tiny untrained stand-ins saved as folders (``tiny_models.py``): the contract is checked, not quality."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ARTIFACTS, CHROMIUM_ARGS, ROOT, _free_port, wait_for

SR = 16000


def _load_app():
    spec = importlib.util.spec_from_file_location("vecs_space_app", ROOT / "spaces" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


app = _load_app()
from vecs_space import compare, dataset, live  # noqa: E402 - importable once the app has loaded


def code_switched_wav(path: Path) -> Path:
    """Four espeak-ng utterances, Vietnamese and English, with pauses: what a visitor might say."""
    from dataset_builder.foundation.audio import StreamResampler
    from dataset_builder.foundation.espeak import SR as ESPEAK_SR, espeak

    parts = [np.zeros(ESPEAK_SR // 2, np.float32)]
    for text, voice in [("mình có một meeting rất quan trọng với team", "vi"), ("we need to finish the report", "en-us"),
                        ("trước thứ sáu nha các bạn", "vi"), ("deadline của project này là next week", "vi")]:
        parts += [espeak(text, voice, 150, 50), np.zeros(ESPEAK_SR // 3, np.float32)]
    sf.write(path, 0.8 * StreamResampler(ESPEAK_SR)(np.concatenate(parts), final=True), SR)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from tiny_models import save_tiny_models

    return save_tiny_models(tmp_path_factory.mktemp("space-models"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return code_switched_wav(tmp_path_factory.mktemp("space-audio") / "code_switched.wav")


def _config(models, **over):
    return app.SpaceConfig(**{"whisper": models["whisper"], "baseline": models["baseline"], "e2e": models["e2e"],
                              "mt": models["mt"], **over})


def test_config_comes_from_the_environment_with_clear_errors():
    cfg = app.SpaceConfig.from_env({"VECS_WHISPER_MODEL": "/models/w", "VECS_STREAM_SECONDS": "30",
                                    "VECS_LANGUAGES": "vi, en"})
    assert cfg.whisper == "/models/w" and cfg.stream_seconds == 30 and cfg.pair == ("vi", "en")
    assert app.SpaceConfig.from_env({}).baseline == "openai/whisper-small"  # the Hub repos by default
    with pytest.raises(SystemExit, match="VECS_STREAM_SECONDS='soon': expected a int"):
        app.SpaceConfig.from_env({"VECS_STREAM_SECONDS": "soon"})
    with pytest.raises(SystemExit, match="VECS_PRELOAD='some': expected one of all, live, none"):
        app.SpaceConfig.from_env({"VECS_PRELOAD": "some"})


def test_preload_loads_before_the_first_visitor_and_names_what_cannot_load(models, tmp_path):
    cfg = _config(models, baseline=str(tmp_path / "missing-model"), preload="live", live_translation="mt")
    loaded = app.Models(cfg)
    assert loaded.preload() == []  # the Live tab's Whisper and MT; the broken baseline is not its concern
    assert {kind for kind, _ in loaded._cache} == {"whisper", "mt"}
    cfg.preload = "all"
    everything = app.Models(cfg)
    problems = everything.preload()
    assert len(problems) == 1 and "missing-model' cannot be loaded: no such folder" in problems[0]
    assert {kind for kind, _ in everything._cache} == {"whisper", "e2e", "mt"}
    cfg.preload = "none"
    lazy = app.Models(cfg)
    assert lazy.preload() == [] and not lazy._cache


def test_compare_scores_each_system_and_reports_what_cannot_load(models, clip, tmp_path):
    cfg = _config(models, dataset=str(tmp_path / "none"))
    cfg.baseline = str(tmp_path / "missing-model")
    cmp = compare.CompareHandlers(cfg, app.Models(cfg))
    table, status = cmp.compare(str(clip), "mình có một meeting rất quan trọng với team", "", list(compare.LABELS))
    assert "10.1 s clip · 4 systems" in status
    rows = table.split('<tr class="system-row"')[1:]
    assert len(rows) == 4
    assert "missing-model&#x27; cannot be loaded: no such folder" in rows[0]  # the others still ran
    for row in rows[1:]:
        assert "vecs-error" not in row and " ms<br>" in row and row.count("<td>") >= 5  # latency + WER/CER/en
    assert "—" not in rows[2].split("</td>")[2]  # E2E and the cascade give a Vietnamese translation
    assert "—" not in rows[3].split("</td>")[2]


def test_runners_move_between_devices_and_precisions_per_request(models, clip):
    """What a GPU Space does per request — models to the device and precision, then back to float32 on the CPU —
    run on this CPU with bfloat16; the system still hears the clip in between."""
    import torch

    from modeling.registry import system

    cfg = _config(models, device="cpu")
    shared = app.Models(cfg)
    assert shared.device == "cpu" and cfg.runtime().check()
    cascade = shared.system(system("cascade"))
    audio, _ = sf.read(clip, dtype="float32")
    with shared.placed(cascade) as placed:  # on a CPU Space: nothing moves
        assert placed == (cascade,) and cascade.asr.device.type == "cpu"
    cascade.to("cpu", torch.bfloat16)
    assert next(cascade.asr.model.parameters()).dtype == torch.bfloat16
    assert next(cascade.mt.model.parameters()).dtype == torch.bfloat16
    heard = cascade.hear([audio])[0]
    assert heard.transcript and heard.audio_seconds > 10
    cascade.to("cpu", torch.float32)
    assert next(cascade.asr.model.parameters()).dtype == torch.float32
    with pytest.raises(SystemExit, match="VECS_DEVICE / VECS_DTYPE / VECS_BACKEND: --device cuda: no CUDA GPU"):
        app.SpaceConfig.from_env({"VECS_DEVICE": "cuda"})


def test_compare_refuses_bad_input_with_one_line(models, clip, tmp_path):
    cfg = _config(models, dataset=str(tmp_path / "none"), max_clip_seconds=5.0)
    cmp = compare.CompareHandlers(cfg, app.Models(cfg))
    silent, empty, text = tmp_path / "silent.wav", tmp_path / "empty.wav", tmp_path / "notes.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    empty.write_bytes(b"")
    text.write_text("not audio at all")
    cases = [(None, "no audio: upload or record"), (str(tmp_path / "gone.wav"), "gone.wav: no such file"),
             (str(empty), "empty.wav: empty file"), (str(silent), "silence only"),
             (str(text), "notes.wav: not readable media"), (str(clip), "longer than the 5 s limit")]
    for path, reason in cases:
        with pytest.raises(app.gr.Error) as info:
            cmp.compare(path, "", "", ["VECS Whisper"])
        assert reason in info.value.message and "\n" not in info.value.message
        assert str(tmp_path) not in info.value.message  # the file as the visitor named it
    with pytest.raises(app.gr.Error, match="choose at least one system"):
        cmp.compare(str(clip), "", "", [])


def test_word_diff_marks_misses_insertions_and_substitutions():
    out = compare.word_diff("mình có một meeting", "mình có hai meeting nha")
    assert '<span class="diff-sub" title="một">hai</span>' in out
    assert '<span class="diff-ins">nha</span>' in out and out.startswith("mình có")
    assert '<span class="diff-del">meeting</span>' in compare.word_diff("mình meeting", "mình")


def test_dataset_view_shows_the_export(small_export, tmp_path):
    view = dataset.DatasetView(app.SpaceConfig(dataset=str(small_export)))
    stats = view.stats_markdown()
    assert "| test |" in stats and "| train |" in stats
    assert view.config_name in ("verified", "prelabeled")
    rows = view.table()
    assert rows and all(r[2] for r in rows)
    path, transcript, _ = view.example(0)
    audio, rate = sf.read(path)
    assert rate == SR and len(audio) / SR == pytest.approx(rows[0][1], abs=0.05) and transcript == rows[0][2]
    missing = dataset.DatasetView(app.SpaceConfig(dataset=str(tmp_path / "nothing")))
    assert "cannot be loaded" in missing.stats_markdown() and missing.table() == []


def test_live_handler_streams_and_reports_an_unloadable_model(models, clip, tmp_path):
    cfg = _config(models, dataset=str(tmp_path / "none"), live_translation="mt", stream_seconds=60)
    handlers = live.LiveHandlers(cfg, app.Models(cfg))
    audio, _ = sf.read(clip, dtype="float32")
    from dataset_builder.foundation.audio import StreamResampler

    mic = (StreamResampler(SR, 48000)(audio, final=True) * 30000).astype(np.int16)
    session, seen = None, []
    for i in range(0, len(mic), 24000):
        session, transcript, translation, readout = handlers.stream((48000, mic[i:i + 24000]), session)
        seen.append((transcript, readout))
    session, transcript, translation, readout = handlers.stop(session)
    assert session.view.ended == "stopped" and session.view.segments
    assert 'class="lang-' in transcript and "tentative" not in transcript.split("</div>")[0]
    assert translation and "commits · latency median" in readout
    assert any("listening" in r or "commits" in r for _, r in seen)
    bad = _config(models, whisper=str(tmp_path / "nope"))
    broken = live.LiveHandlers(bad, app.Models(bad))
    state, message, *_ = broken.stream((48000, mic[:24000]), None)
    assert state is None and "cannot be loaded: no such folder" in message


ABUSE = """
import json, resource, sys
import numpy as np
from dataset_builder.foundation.audio import MediaError
from modeling.streaming.live import LiveSession
from modeling.streaming.transcribe import online_processor, read_clip

session = LiveSession(online_processor(sys.argv[1], vad=False, padding=False))
peak = int(open("/proc/self/status").read().split("VmPeak:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (peak + 256 * 2**20, resource.RLIM_INFINITY))
seen = []
for attempt in (lambda: session.push(100, np.zeros(48_000, np.int16)),       # a declared rate of 100 Hz
                lambda: session.push(48_000, np.zeros(48_000 * 20, np.int16)),  # a 20 s chunk
                lambda: read_clip(sys.argv[2], max_seconds=120)):              # 1 h of Opus in 2.6 MB
    try:
        attempt()
        seen.append("accepted")
    except MediaError as exc:
        seen.append(str(exc))
session.push(48_000, np.zeros(24_000, np.int16))  # an honest chunk still works under the limit
seen.append(f"{session.view.seconds:.2f}")
print(json.dumps(seen))
"""


def test_abuse_is_refused_before_it_costs_memory(models, tmp_path):
    """Under RLIMIT_AS (256 MiB above what the models need), a microphone declaring 100 Hz, an oversized chunk and
    an upload that decodes to an hour each get one line; before, the first allocated GBs in the resampler and the
    last decoded all 230 MB of the hour before measuring it."""
    short, long = tmp_path / "short.opus", tmp_path / "hour.opus"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=f=440:d=10:sample_rate=16000", "-ac", "1",
                    "-c:a", "libopus", "-b:a", "6k", str(short)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "359", "-i", str(short), "-c", "copy", str(long)],
                   check=True)
    assert long.stat().st_size < 3_000_000
    proc = subprocess.run([sys.executable, "-c", ABUSE, models["whisper"], str(long)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rate, chunk, upload, honest = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rate == "microphone chunk at 100 Hz: expected 8000–192000 Hz"
    assert chunk == "microphone chunk of 20.0 s: longer than 10 s"
    assert upload.endswith("hour.opus: 3600 s is longer than the 120 s limit")
    assert honest == "0.50"


# -- the real UI -----------------------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def space(models, small_export, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    port = _free_port()
    env = {**os.environ, "VECS_WHISPER_MODEL": models["whisper"], "VECS_BASELINE_MODEL": models["baseline"],
           "VECS_E2E_MODEL": models["e2e"], "VECS_MT_MODEL": models["mt"], "VECS_DATASET": str(small_export),
           "VECS_STREAM_SECONDS": "60", "VECS_MAX_UPLOAD": "1mb", "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = tmp_path_factory.mktemp("space-log") / "app.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, str(ROOT / "spaces" / "app.py")], env=env, stdout=fh, stderr=fh)
    import urllib.request

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
        except OSError:
            return proc.poll() is not None
    try:
        assert wait_for(up, timeout=240, interval=0.5) and proc.poll() is None, log.read_text()[-3000:]
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _browser(p, *extra):
    return p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra])


def test_live_tab_in_chromium_streams_a_fake_microphone(space, clip):
    """Chromium's fake microphone plays the code-switched WAV: the transcript grows while it plays, commits
    carry a latency, and Stop makes the text final. Screenshots in test-artifacts/space/."""
    playwright = pytest.importorskip("playwright.sync_api")
    shots = ARTIFACTS / "space"
    shots.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = _browser(p, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-audio-capture={clip}%noloop")
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(space, wait_until="domcontentloaded")
        page.wait_for_selector("#live-mic button.record-button", timeout=60000)
        page.click("#live-mic button.record-button")
        page.wait_for_function("/s heard|commits/.test(document.querySelector('#live-latency').innerText)",
                               timeout=90000)  # the first stream answered
        lengths, commits = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(set(lengths) - {0}) < 3 or max(commits, default=0) < 2):
            page.wait_for_timeout(500)
            lengths.append(len(page.inner_text("#live-text").strip()))
            readout = page.inner_text("#live-latency")
            found = re.search(r"(\d+) commits", readout)
            commits.append(int(found.group(1)) if found else 0)
            if len(lengths) == 8:
                page.screenshot(path=str(shots / "1-live-streaming.png"))
        page.screenshot(path=str(shots / "2-live-streamed.png"))
        page.click("#live-mic button.stop-button")
        page.wait_for_function("!document.querySelector('#live-text .tentative')", timeout=30000)
        final = page.inner_text("#live-text").strip()
        page.screenshot(path=str(shots / "3-live-stopped.png"))
        browser.close()
    nonzero = [n for n in lengths if n]
    assert nonzero, "no text appeared while the microphone streamed"
    assert len(set(nonzero)) >= 3 and max(nonzero) > nonzero[0], lengths  # it grew while audio arrived
    assert commits == sorted(commits) and commits[-1] >= 2, commits  # commits only accumulate
    assert len(final) >= max(nonzero) * 0.5


def test_compare_and_dataset_tabs_in_chromium(space, clip, tmp_path):
    """Upload a file, compare two systems, see both outputs; a non-audio upload gets a one-line error; the
    Dataset tab lists examples and statistics."""
    playwright = pytest.importorskip("playwright.sync_api")
    shots = ARTIFACTS / "space"
    shots.mkdir(parents=True, exist_ok=True)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with playwright.sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.goto(space, wait_until="domcontentloaded")
        page.wait_for_selector("#live-mic", timeout=60000)
        page.get_by_role("tab", name="Compare").click()
        page.locator("#compare-audio input[type=file]").set_input_files(str(clip))
        page.fill("#compare-reference textarea", "mình có một meeting rất quan trọng với team")
        for name in ("Whisper (off-the-shelf)", "Cascade"):
            page.locator("#compare-systems").get_by_label(name).uncheck()
        page.wait_for_timeout(500)
        page.click("#compare-run")
        page.wait_for_selector("#compare-table tr.system-row", timeout=90000)
        systems = page.eval_on_selector_all("#compare-table tr.system-row", "rs => rs.map(r => r.dataset.system)")
        cells = page.eval_on_selector_all("#compare-table tr.system-row td.transcript", "cs => cs.map(c => c.innerText)")
        status = page.inner_text("#compare-status")
        page.screenshot(path=str(shots / "4-compare.png"), full_page=True)
        page.click("#compare-audio button[aria-label='Clear']")
        page.locator("#compare-audio input[type=file]").set_input_files(str(bad))
        page.wait_for_timeout(500)
        page.click("#compare-run")
        page.wait_for_selector(".toast-body", timeout=30000)
        toast = page.inner_text(".toast-body")
        page.screenshot(path=str(shots / "5-compare-bad-input.png"), full_page=True)
        big = tmp_path / "long.wav"  # 70 s of noise, 2.2 MB: over the 1 MB upload limit
        sf.write(big, np.random.default_rng(0).standard_normal(70 * SR).astype(np.float32) * 0.1, SR)
        page.click("#compare-audio button[aria-label='Clear']")
        page.locator("#compare-audio input[type=file]").set_input_files(str(big))
        page.wait_for_function("[...document.querySelectorAll('.toast-body')].some(t => /1 ?MB|1mb|too large|exceed/i"
                               ".test(t.innerText))", timeout=30000)
        limit_toast = [t for t in page.locator(".toast-body").all_inner_texts() if "long.wav" in t]  # toasts stack
        page.screenshot(path=str(shots / "6-compare-upload-limit.png"), full_page=True)
        page.get_by_role("tab", name="Dataset").click()
        page.wait_for_function("document.querySelectorAll('#dataset-rows tbody tr').length > 0", timeout=60000)
        body = page.inner_text("body")
        page.screenshot(path=str(shots / "7-dataset.png"), full_page=True)
        browser.close()
    assert systems == ["VECS Whisper", "E2E"] and len(cells) == 2 and "2 systems" in status
    assert "bad.wav: not readable media" in toast and "Traceback" not in toast
    assert limit_toast and re.search(r"exceed.*1(\.0)? ?mb", limit_toast[0], re.I) and "Traceback" not in limit_toast[0]
    assert "| split |" not in body and "test" in body and "hours" in body


def test_live_view_colours_segments_and_their_english_words():
    from modeling.streaming.live import LiveView
    from modeling.streaming.online import Commit
    from modeling.streaming.translation import TranslatedCommit

    view = LiveView([TranslatedCommit(Commit("mình có một meeting", "vi", 0.0, 1.2, 0.4), "mình có một cuộc họp", 0.01),
                     TranslatedCommit(Commit("see you", "en", 1.5, 2.0, 0.8), "hẹn gặp lại", 0.01)],
                    tentative="với team", language="en", seconds=2.5)
    transcript, translation, readout = live.render_live(view)
    assert '<span class="lang-vi"' in transcript and 'mình có một <span class="lang-en">meeting</span>' in transcript
    assert '<span class="tentative">với team</span>' in transcript
    assert translation == "mình có một cuộc họp hẹn gặp lại"
    assert readout.startswith("2 commits · latency median 0.60 s") and "last 0.80 s" in readout
