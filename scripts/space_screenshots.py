"""The README's Space screenshots, on the models ``make demo`` trained: the Compare tab on held-out test clips
(reference filled in, so the scores show) and the Live tab with Chromium's fake microphone playing the same clips.

    python scripts/space_screenshots.py --demo demo_out --out docs/figures [--clips 3]
    # other models: --whisper DIR --e2e DIR --mt DIR --export DIR --config prelabeled (default: the demo's)

Needs Debian's chromium and playwright (``make setup`` installs both). Prints the transcripts it saw.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def test_clips(export: Path, config: str, n: int, seconds: float = 6.0) -> tuple[np.ndarray, str, str]:
    """``n`` consecutive held-out test utterances (each ≤ ``seconds``), 0.6 s of silence between them."""
    from dataset_builder.foundation.config import SAMPLE_RATE
    from modeling.data import load_split

    split = load_split(str(export), config, "test", need=("transcript", "translation"), max_seconds=seconds,
                       limit=n)
    gap = np.zeros(int(0.6 * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([x for s in split.samples for x in (s.samples(), gap)])
    return audio, " ".join(s.transcript for s in split.samples), " ".join(s.translation for s in split.samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=Path("demo_out"))
    ap.add_argument("--out", type=Path, default=Path("docs/figures"))
    ap.add_argument("--clips", type=int, default=3)
    ap.add_argument("--port", type=int, default=7871)
    ap.add_argument("--whisper", type=Path, help="default: the demo's")
    ap.add_argument("--e2e", type=Path, help="default: the demo's")
    ap.add_argument("--mt", type=Path, help="default: the demo's")
    ap.add_argument("--export", type=Path, help="where the test clips come from (default: the demo's)")
    ap.add_argument("--config", default="verified")
    ap.add_argument("--suffix", default="", help="appended to the PNG names")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium: not installed (make setup installs Debian's)")

    from dataset_builder.cli.demo import off_the_shelf_whisper

    models = args.demo.resolve() / "models"
    whisper, e2e, mt = (str((given or models / name / "best").resolve()) for given, name in
                        ((args.whisper, "whisper"), (args.e2e, "e2e"), (args.mt, "mt")))
    export = (args.export or args.demo / "export").resolve()
    audio, reference, translation = test_clips(export, args.config, args.clips)
    tmp = Path(tempfile.mkdtemp(prefix="vecs-shots-"))
    wav = tmp / "held_out_test_clips.wav"
    sf.write(wav, audio, 16000, subtype="PCM_16")
    env = {**os.environ, "VECS_WHISPER_MODEL": whisper, "VECS_BASELINE_MODEL": str(off_the_shelf_whisper() or whisper),
           "VECS_E2E_MODEL": e2e, "VECS_MT_MODEL": mt, "VECS_DATASET": str(export), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_SERVER_PORT": str(args.port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    url = f"http://127.0.0.1:{args.port}/"
    with open(tmp / "app.log", "wb") as log:
        app = subprocess.Popen([sys.executable, str(ROOT / "spaces" / "app.py")], env=env, stdout=log, stderr=log)
    try:
        for _ in range(480):
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            except OSError:
                if app.poll() is not None:
                    raise SystemExit(f"the Space exited: {(tmp / 'app.log').read_text()[-2000:]}")
                time.sleep(0.5)
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 1100})
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#live-mic", timeout=60000)
            page.get_by_role("tab", name="Compare").click()
            page.locator("#compare-audio input[type=file]").set_input_files(str(wav))
            page.fill("#compare-reference textarea", reference)
            page.fill("#compare-translation textarea", translation)
            page.wait_for_timeout(500)
            page.click("#compare-run")
            page.wait_for_selector("#compare-table tr.system-row", timeout=180000)
            page.wait_for_timeout(1000)
            rows = page.eval_on_selector_all(
                "#compare-table tr.system-row",
                "rs => rs.map(r => [r.dataset.system, r.querySelector('td.transcript').innerText])")
            page.screenshot(path=str(args.out / f"space_compare{args.suffix}.png"), full_page=True)
            browser.close()

            browser = p.chromium.launch(executable_path=chromium, args=[
                *CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}%noloop"])
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#live-mic button.record-button", timeout=60000)
            page.click("#live-mic button.record-button")
            page.wait_for_timeout(int(len(audio) / 16000 * 1000) + 4000)  # the clips play, the last window commits
            page.click("#live-mic button.stop-button")
            page.wait_for_function("!document.querySelector('#live-text .tentative')", timeout=30000)
            live = page.inner_text("#live-text").strip()
            readout = page.inner_text("#live-latency")
            page.screenshot(path=str(args.out / f"space_live{args.suffix}.png"))
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=30)
    print(f"reference: {reference}")
    for system, text in rows:
        print(f"compare {system} (against the reference, misses included): {text}")
    readout = re.sub(r"\s+", " ", readout)
    print(f"live: {live}\n{readout}")
    print(f"wrote {args.out / f'space_compare{args.suffix}.png'}, {args.out / f'space_live{args.suffix}.png'}")


if __name__ == "__main__":
    main()
