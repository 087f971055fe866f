"""silero-vad refinement on real (synthetic) speech: jittered pre-label times snap back toward the truth."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from dataset_builder.foundation.audio import load_audio
from dataset_builder.prelabel.parsing import Segment
from dataset_builder.prelabel.refine import load_refiner
from dataset_builder.synth import synthesize_corpus


def test_refinement_moves_times_toward_speech_boundaries(tmp_path):
    refiner = load_refiner()
    if refiner is None:
        pytest.skip("silero-vad / onnxruntime not installed")
    meta = synthesize_corpus(tmp_path, videos=1, minutes=1.0, seed=5, channels=1, progress=False)
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    samples = load_audio(tmp_path / meta["videos"][0]["file"])
    rng = random.Random(0)
    jittered = [Segment(max(0.0, u["start"] + rng.uniform(-0.35, 0.35)), u["end"] + rng.uniform(-0.35, 0.35),
                        u["transcript"], u["translation"]) for u in truth]
    refined = refiner.refine(samples, 16000, jittered)
    before = np.mean([abs(j.start - u["start"]) + abs(j.end - u["end"]) for j, u in zip(jittered, truth)])
    after = np.mean([abs(r.start - u["start"]) + abs(r.end - u["end"]) for r, u in zip(refined, truth)])
    assert after < before / 2, (before, after)
    for a, b in zip(refined, refined[1:]):
        assert a.start < a.end <= b.start + 1e-6  # never crossing a neighbour
