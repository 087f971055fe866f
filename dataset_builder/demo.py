"""``vecs demo``: the factory end to end, offline, on a synthetic corpus. Every step skips what is done,
so a second run (or a run after an interruption) picks up where the last one stopped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console


@dataclass
class Step:
    name: str
    run: Callable[[], None]


def _vecs(*args: str, env: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", "dataset_builder.cli", *args], env=env)
    if proc.returncode != 0:
        raise SystemExit(f"demo: 'vecs {' '.join(args)}' failed (exit {proc.returncode})")


def run_demo(out: Path, videos: int, minutes: float, seed: int, console: Console) -> None:
    out = out.resolve()
    corpus = out / "corpus"
    home = out / "vecs_home"
    env = {**os.environ, "VECS_HOME": str(home)}
    env.pop("VECS_DB_URL", None)

    def synth() -> None:
        if (corpus / "videos.json").exists():
            console.print("  corpus exists, skipped")
            return
        _vecs("synth", str(corpus), "--videos", str(videos), "--minutes", str(minutes), "--seed", str(seed),
              "--channels", "2", "--jobs", "2", env=env)

    def ingest() -> None:
        _vecs("ingest", corpus.as_uri(), "--jobs", "2", env=env)  # through yt-dlp, as a URL

    def prelabel() -> None:
        _vecs("prelabel", "--engine", "captions", env=env)

    def argilla() -> None:
        from annotation.server import launcher

        port = launcher.free_port()
        while not launcher.port_free("127.0.0.1", port + 1):
            port = launcher.free_port()
        info = launcher.serve(home, port=port)  # finds it running on a re-run
        env["ARGILLA_API_URL"], env["ARGILLA_API_KEY"] = info.url, info.api_key
        _vecs("argilla", "push", "--workspace", "vecs", "--create-workspace", "--double-check", "0.05",
              "--audio-base-url", info.audio_url, env=env)
        console.print(f"  Argilla: {info.url} (owner credentials in {home / 'argilla' / 'owner.json'})")

    def status() -> None:
        _vecs("status", "--videos", env=env)

    steps = [
        Step("synthesize a code-switched corpus (espeak-ng)", synth),
        Step("ingest through yt-dlp (file://) into exact 300 s + 5 s chunks", ingest),
        Step("pre-label from captions (offline engine)", prelabel),
        Step("start a local Argilla and push the segments for verification", argilla),
        Step("factory status", status),
    ]
    t_all = time.perf_counter()
    for i, step in enumerate(steps, 1):
        console.rule(f"[bold]{i}/{len(steps)} {step.name}")
        t0 = time.perf_counter()
        step.run()
        console.print(f"  [dim]{time.perf_counter() - t0:.1f} s[/dim]")
    meta = json.loads((corpus / "videos.json").read_text(encoding="utf-8"))
    console.rule("[bold]done")
    console.print(f"{len(meta['videos'])} videos, {sum(v['duration'] for v in meta['videos']) / 60:.1f} min of audio, "
                  f"{time.perf_counter() - t_all:.0f} s in all")
    console.print(f"corpus and ground truth: {corpus}")
    console.print(f"factory home (state store, audio, chunks): {home}")
    console.print(f"inspect it: VECS_HOME={home} vecs status --serve 6910")
    console.print(f"annotate: VECS_HOME={home} ARGILLA_API_KEY=… vecs argilla users add NAME --workspace vecs, "
                  f"sign in at the Argilla URL above; then vecs argilla pull")
    console.print(f"stop Argilla: VECS_HOME={home} vecs argilla serve --stop")
