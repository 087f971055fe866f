"""A reduced ``make demo`` end to end (three short videos, a few training steps): every stage runs offline through
the real components — yt-dlp, a real Argilla with the simulated reviewer, the export, three trainers, evaluation,
cards — and a second run skips what is done."""
from __future__ import annotations

import json
import time

import pytest

from conftest import run_vecs

pytestmark = pytest.mark.slow


def test_reduced_demo_runs_every_stage_and_resumes(tmp_path):
    out = tmp_path / "demo"
    args = ("demo", "--out", str(out), "--videos", "3", "--minutes", "1.5", "--seed", "3", "--max-steps", "2",
            "--eval-limit", "6", "--whisper-minutes", "1", "--e2e-minutes", "1", "--mt-minutes", "1")
    env = {"VECS_HOME": str(out / "vecs_home")}
    try:
        first = run_vecs(*args, timeout=1200)
        assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
        summary = json.loads((out / "demo_summary.json").read_text())
        # the simulated reviewer's answers reached the store and the verified config
        report = json.loads((out / "export" / "export_report.json").read_text())
        assert report["configs"]["verified"]["kept"] > 0 and report["leakage_check"]["passed"]
        assert "simulated review:" in first.stderr and "SIMULATED" in first.stderr
        for name in ("whisper", "e2e"):
            m = summary[name]
            assert m["split"] == "test" and m["config"] == "verified" and 0 < m["samples"] <= 6
            assert m["wer"] >= 0 and m["cer"] >= 0
            card = (out / "models" / name / "best" / "README.md").read_text()
            assert "model-index" in card and "## Results (test split" in card
        baseline = summary["off-the-shelf"]  # OpenAI's tiny.en (CTranslate2), offline, beside ours
        assert baseline["family"] == "whisper" and baseline["samples"] == summary["whisper"]["samples"]
        assert baseline["device"] == "cpu" and 0 <= baseline["en_error_rate"]
        st = summary["st"]["systems"]
        assert set(st) == {"e2e", "cascade (sentence)", "cascade (English spans)"}
        assert all("bleu_signature" in row for row in st.values())
        for figure in ("eval/asr_scores.png", "eval/st/st_scores.png", "eval/whisper/length_scatter.png",
                       "export/images/duration_histogram.png", "export/images/cmi_histogram.png",
                       "models/whisper/best/length_scatter.png"):
            assert (out / figure).stat().st_size > 1000, figure
        assert "the Space on these models" in first.stderr and "Argilla UI: http://127.0.0.1:" in first.stderr

        t0 = time.monotonic()
        again = run_vecs(*args, timeout=600)
        assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]
        assert again.stderr.count("exists, skipped") >= 4  # corpus + three models
        assert "simulated review: 0 accepted, 0 corrected, 0 discarded" in again.stderr
        assert time.monotonic() - t0 < (summary["seconds"] * 0.8)
    finally:
        run_vecs("argilla", "serve", "--stop", env=env)
